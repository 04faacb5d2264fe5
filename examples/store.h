/* store.h - the feature store: the bottom-up-attention boxes of many images in one flat,
   mmap-able file, looked up by image id (the format: docs/STORE.md).

   IMAGE IDS are strings (GQA's "n161313" as COCO's "42"): 1..STORE_MAX_ID bytes of letters,
   digits, '_', '-' and '.' (store_id_check), so that an id is safe in a message, a JSON
   string and a file name. A numeric id is its decimal digits without leading zeros (what
   the TSV import and the VQA questions file give); ids are compared as bytes, never as
   numbers ("042" is not "42").

   READER (validates the whole header, index and ids on open: the file may be hostile)
     store_open(path, &s, err, errlen)   map the file; 0, or -1 with a message naming it.
                                         Version 2 is written; version 1 (ids as int64, the
                                         first release) is read as well, its ids as decimal
     store_close(s)
     store_version(s)                    1 or 2
     store_image_count(s)                images N
     store_feature_dim(s)                D, floats per box feature
     store_box_count(s)                  boxes of all images
     store_max_boxes(s)                  the most boxes of any image
     store_find(s, id, &rec)             1 and *rec filled, or 0 when the image is absent
     store_get(s, i, &rec)               the i-th image of the index, 0 <= i < N (ids in
                                         increasing order: shorter first, then by bytes, which
                                         for numeric ids is their numeric order)
   A record points into the mapping (valid until store_close):
     id, features (n, D), boxes (n, 4) x1, y1, x2, y2 in pixels, spatials (n, 6) as the
     reference computes them (store_spatials). Values are not read on open (the file can
     be tens of GB): the writer refused NaN, infinities and impossible boxes
     (store_check_record), and ban_forward checks finiteness again. The reader is immutable
     once open and may be shared by threads. The file is mapped: replace a store that may
     be in use by renaming a new one over it (as the writer does), never by rewriting it in
     place; a mapped file truncated under a reader kills it with SIGBUS (README, Safety).

   WRITER (streams the records to disk; only the index, 32 bytes an image, and the ids stay
   in memory)
     store_writer_open(path, D, &w, err, errlen)   a temporary file next to path (util.h's writer)
     store_writer_find(w, id)                      order of addition of that image, or -1
     store_writer_add(w, &rec, err, errlen)        features and boxes, checked by
                                                   store_check_record; spatials computed here
     store_writer_commit(w, err, errlen)           index, ids, header, fsync, rename to path;
                                                   frees w
     store_writer_abort(w)                         removes the temporary file; frees w
   On any failure, or a signal, nothing is left at path or beside it.

   store_check_record(rec, D, why, whylen)   what every importer (TSV, npz) and the writer
     require of a record: a valid id, 1..STORE_MAX_BOXES boxes, sides 1..STORE_MAX_SIDE,
     every box and feature finite, and every box a box of the image: x1 <= x2 within
     [-W, 2W] and y1 <= y2 within [-H, 2H] for a W x H image. Detectors clip their boxes
     to the image, so real boxes are well inside; the bound keeps the spatial features
     within [-1, 3] and refuses boxes such as [-3e38, 0, 3e38, 10], which are finite but
     make infinite spatial features. 0, or -1 with the reason (without the image id).

   store_spatials(boxes, n, width, height, out)   the 6-d spatial features of the reference's
     tools/adaptive_detection_features_converter.py, in float32 as numpy computes them:
     w = x2-x1, h = y2-y1; [x1/W, y1/H, x1/W + w/W, y1/H + h/H, w/W, h/H].

   Define STORE_IMPLEMENTATION in exactly one C file, with UTIL_IMPLEMENTATION (in build/ban:
   examples/impl.c).
   POSIX (mmap, fsync), little-endian hosts only (as ban.h).
*/
#ifndef STORE_H_INCLUDED
#define STORE_H_INCLUDED
#include <stddef.h>
#include <stdint.h>

#define STORE_MAGIC "BANF"
#define STORE_VERSION 2             /* what the writer writes */
#define STORE_ALIGNMENT 64          /* every record starts at a multiple of it */
#define STORE_HEADER_SIZE 64
#define STORE_ENTRY_SIZE 32
#define STORE_MAX_BOXES 1024        /* boxes per image (= ban.h's BAN_MAX_BOXES) */
#define STORE_MAX_DIM 65536         /* floats per box feature (= ban.h's BAN_MAX_DIM) */
#define STORE_MAX_SIDE 1000000      /* image width and height in pixels */
#define STORE_MAX_ID 64             /* bytes of an image id */

typedef struct store_record {
    const char *id;                 /* the image id, NUL-terminated (store_id_check) */
    int n_boxes;                    /* n, 1..STORE_MAX_BOXES */
    int width, height;              /* the image size in pixels */
    const float *features;          /* (n, D) */
    const float *boxes;             /* (n, 4) x1, y1, x2, y2 in pixels */
    const float *spatials;          /* (n, 6); ignored by store_writer_add, which computes them */
} store_record;

typedef struct store store;
typedef struct store_writer store_writer;

/* 1 when the n bytes at s are an image id: 1..STORE_MAX_ID letters, digits, '_', '-', '.' */
static inline int store_id_check(const char *s, size_t n)
{
    if (n < 1 || n > STORE_MAX_ID) return 0;
    for (size_t i = 0; i < n; i++) {
        const char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-' ||
              c == '.'))
            return 0;
    }
    return 1;
}

int store_open(const char *path, store **out, char *err, size_t errlen);
void store_close(store *s);
int store_version(const store *s);
int64_t store_image_count(const store *s);
int store_feature_dim(const store *s);
int64_t store_box_count(const store *s);
int store_max_boxes(const store *s);
int store_find(const store *s, const char *id, store_record *rec);
int store_get(const store *s, int64_t index, store_record *rec);

int store_writer_open(const char *path, int feature_dim, store_writer **out, char *err, size_t errlen);
int64_t store_writer_find(const store_writer *w, const char *id);
int store_writer_add(store_writer *w, const store_record *rec, char *err, size_t errlen);
int store_writer_commit(store_writer *w, char *err, size_t errlen);
void store_writer_abort(store_writer *w);
int64_t store_writer_count(const store_writer *w);

int store_check_record(const store_record *rec, int feature_dim, char *why, size_t whylen);
void store_spatials(const float *boxes, int n, int width, int height, float *out);

#endif /* STORE_H_INCLUDED */

#if defined(STORE_IMPLEMENTATION) && !defined(STORE__IMPLEMENTED)
#define STORE__IMPLEMENTED
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* one index entry as it lies in the file (natural alignment: no padding). Version 2: key is
   where the entry's id lies in the file and extra its length; version 1: key is the id, an
   int64, and extra a reserved 0. */
typedef struct {
    uint64_t key;
    uint64_t offset;                /* of the record, from the start of the file */
    uint32_t n_boxes, width, height, extra;
} store__entry;

#define STORE__V1_ID 24             /* a version-1 id in decimal, with its NUL */

struct store {
    const unsigned char *map;
    size_t size;
    const store__entry *index;      /* (N) sorted by id */
    int64_t n_images, n_boxes;
    int feature_dim, max_boxes, version;
    char *v1_ids;                   /* version 1: (N, STORE__V1_ID) the ids in decimal */
};

static int store__fail(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && len) vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}

static uint32_t store__u32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t store__u64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static int store__little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* bytes of one record of n boxes of D floats, before padding */
static uint64_t store__record_bytes(uint64_t n, uint64_t D) { return n * (D + 10) * 4; }

/* the order of ids: shorter first, then by bytes (numeric ids come in numeric order) */
static int store__id_cmp(const char *a, size_t na, const char *b, size_t nb)
{
    if (na != nb) return na < nb ? -1 : 1;
    return memcmp(a, b, na);
}

/* bytes of a NUL-terminated id, looking at no more than STORE_MAX_ID + 1 of them */
static size_t store__id_len(const char *id)
{
    size_t n = 0;
    while (n <= STORE_MAX_ID && id[n]) n++;
    return n;
}

void store_spatials(const float *boxes, int n, int width, int height, float *out)
{
    /* float32 throughout, in the reference's order of operations (numpy: a float32 array
       divided by a Python float stays float32) */
    const float W = (float)width, H = (float)height;
    for (int i = 0; i < n; i++) {
        const float *b = boxes + (size_t)i * 4;
        float *s = out + (size_t)i * 6;
        const float bw = b[2] - b[0], bh = b[3] - b[1];
        const float sw = bw / W, sh = bh / H, sx = b[0] / W, sy = b[1] / H;
        s[0] = sx;
        s[1] = sy;
        s[2] = sx + sw;
        s[3] = sy + sh;
        s[4] = sw;
        s[5] = sh;
    }
}

/* index of the first non-finite float among n, or -1 */
static long long store__first_nonfinite(const float *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, p + i, 4);
        if ((bits & 0x7f800000u) == 0x7f800000u) return (long long)i;
    }
    return -1;
}

static const char *store__nonfinite_name(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, 4);
    return bits & 0x007fffffu ? "NaN" : bits >> 31 ? "-Inf" : "Inf";
}

int store_check_record(const store_record *rec, int D, char *why, size_t whylen)
{
    const int n = rec->n_boxes;
    if (!rec->id || !store_id_check(rec->id, store__id_len(rec->id)))
        return store__fail(why, whylen, "the image id is not 1 to %d letters, digits, '_', '-' or '.'", STORE_MAX_ID);
    if (n < 1 || n > STORE_MAX_BOXES) return store__fail(why, whylen, "%d boxes outside 1..%d", n, STORE_MAX_BOXES);
    if (D < 1 || D > STORE_MAX_DIM) return store__fail(why, whylen, "feature size %d outside 1..%d", D, STORE_MAX_DIM);
    if (rec->width < 1 || rec->width > STORE_MAX_SIDE || rec->height < 1 || rec->height > STORE_MAX_SIDE)
        return store__fail(why, whylen, "size %d x %d outside 1..%d", rec->width, rec->height, STORE_MAX_SIDE);
    long long bad = store__first_nonfinite(rec->boxes, (size_t)n * 4);
    if (bad >= 0)
        return store__fail(why, whylen, "boxes: %s at box %lld, coordinate %lld",
                           store__nonfinite_name(rec->boxes[bad]), bad / 4, bad % 4);
    const double W = rec->width, H = rec->height;
    for (int i = 0; i < n; i++) {
        const float *b = rec->boxes + (size_t)i * 4;
        const double x1 = b[0], y1 = b[1], x2 = b[2], y2 = b[3];
        if (!(x1 <= x2 && y1 <= y2 && x1 >= -W && x2 <= 2 * W && y1 >= -H && y2 <= 2 * H))
            return store__fail(why, whylen, "boxes: box %d [%.9g, %.9g, %.9g, %.9g] is not a box of the %d x %d image "
                               "(x1 <= x2 within [%d, %d], y1 <= y2 within [%d, %d])", i, x1, y1, x2, y2, rec->width,
                               rec->height, -rec->width, 2 * rec->width, -rec->height, 2 * rec->height);
    }
    bad = store__first_nonfinite(rec->features, (size_t)n * (size_t)D);
    if (bad >= 0)
        return store__fail(why, whylen, "features: %s at box %lld, value %lld",
                           store__nonfinite_name(rec->features[bad]), bad / D, bad % D);
    return 0;
}

/* ---- reader ------------------------------------------------------------------ */

typedef struct {
    uint64_t begin, end;
} store__span;

static int store__span_cmp(const void *a, const void *b)
{
    const store__span *x = (const store__span *)a, *y = (const store__span *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* the id of index entry i and its length */
static const char *store__id(const store *s, int64_t i, size_t *len)
{
    const char *id = s->version == 1 ? s->v1_ids + (size_t)i * STORE__V1_ID : (const char *)s->map + s->index[i].key;
    *len = s->version == 1 ? strlen(id) : s->index[i].extra;
    return id;
}

/* Version 2: the ids follow the index, each NUL-terminated, in index order, back to back up
   to the end of the file; valid, and increasing. Version 1: the int64 ids increase; they are
   written out in decimal. 0, or -1 with a message. */
static int store__check_ids(store *s, const char *path, uint64_t index_off, char *err, size_t errlen)
{
    const store__entry *idx = s->index;
    const uint64_t N = (uint64_t)s->n_images, size = s->size;
    if (s->version == 1) {
        if (!(s->v1_ids = (char *)malloc(N ? N * STORE__V1_ID : 1)))
            return store__fail(err, errlen, "%s: out of memory for the ids of %llu images", path,
                               (unsigned long long)N);
        for (uint64_t i = 0; i < N; i++) {
            const unsigned long long at = (unsigned long long)(index_off + i * STORE_ENTRY_SIZE);
            if (i > 0 && (int64_t)idx[i].key <= (int64_t)idx[i - 1].key)
                return store__fail(err, errlen, "%s: index entry %llu (offset %llu): image id %lld after %lld (the "
                                   "index must be sorted, without repeats)", path, (unsigned long long)i, at,
                                   (long long)idx[i].key, (long long)idx[i - 1].key);
            if (idx[i].extra != 0)
                return store__fail(err, errlen, "%s: image %lld (index offset %llu): reserved field is %u, not 0", path,
                                   (long long)idx[i].key, at, idx[i].extra);
            snprintf(s->v1_ids + i * STORE__V1_ID, STORE__V1_ID, "%lld", (long long)idx[i].key);
        }
        return 0;
    }
    uint64_t expect = index_off + N * STORE_ENTRY_SIZE; /* where the next id must start */
    for (uint64_t i = 0; i < N; i++) {
        const unsigned long long at = (unsigned long long)(index_off + i * STORE_ENTRY_SIZE);
        const uint64_t key = idx[i].key, len = idx[i].extra;
        if (key != expect || len < 1 || len > STORE_MAX_ID || len >= size - key)
            return store__fail(err, errlen, "%s: index entry %llu (offset %llu): an id of %llu bytes at offset %llu "
                               "(ids of 1..%d bytes follow the index back to back, from offset %llu)", path,
                               (unsigned long long)i, at, (unsigned long long)len, (unsigned long long)key,
                               STORE_MAX_ID, (unsigned long long)expect);
        const char *id = (const char *)s->map + key;
        if (!store_id_check(id, len) || id[len] != 0)
            return store__fail(err, errlen, "%s: index entry %llu (offset %llu): the id at offset %llu is not %llu "
                               "letters, digits, '_', '-' or '.' and a NUL", path, (unsigned long long)i, at,
                               (unsigned long long)key, (unsigned long long)len);
        if (i > 0) {
            size_t plen;
            const char *prev = store__id(s, (int64_t)i - 1, &plen);
            if (store__id_cmp(prev, plen, id, len) >= 0)
                return store__fail(err, errlen, "%s: index entry %llu (offset %llu): image id %s after %s (the index "
                                   "must be sorted, shorter ids first, without repeats)", path, (unsigned long long)i,
                                   at, id, prev);
        }
        expect = key + len + 1;
    }
    if (expect != size)
        return store__fail(err, errlen, "%s: the ids end at offset %llu, but the file at %llu", path,
                           (unsigned long long)expect, (unsigned long long)size);
    return 0;
}

/* Check the header, every index entry and every id against the file; 0 or -1 with a message. */
static int store__validate(store *s, const char *path, char *err, size_t errlen)
{
    const unsigned char *h = s->map;
    const uint64_t size = s->size;
    if (size < STORE_HEADER_SIZE || memcmp(h, STORE_MAGIC, 4) != 0)
        return store__fail(err, errlen, "%s: not a feature store (no '%s' magic)", path, STORE_MAGIC);
    const uint32_t version = store__u32(h + 4), D = store__u32(h + 8), align = store__u32(h + 12);
    const uint64_t n_images = store__u64(h + 16), n_boxes = store__u64(h + 24), data_off = store__u64(h + 32);
    const uint64_t data_size = store__u64(h + 40), index_off = store__u64(h + 48);
    const uint32_t max_boxes = store__u32(h + 56), flags = store__u32(h + 60);
    if (version != 1 && version != 2)
        return store__fail(err, errlen, "%s: feature store version %u (this build reads versions 1 and 2)", path,
                           version);
    if (D < 1 || D > STORE_MAX_DIM)
        return store__fail(err, errlen, "%s: feature size %u outside 1..%d", path, D, STORE_MAX_DIM);
    if (align != STORE_ALIGNMENT)
        return store__fail(err, errlen, "%s: record alignment %u (expected %d)", path, align, STORE_ALIGNMENT);
    if (flags != 0) return store__fail(err, errlen, "%s: header flags 0x%x (expected 0)", path, flags);
    if (data_off < STORE_HEADER_SIZE || data_off % STORE_ALIGNMENT || data_off > size || data_size > size - data_off)
        return store__fail(err, errlen, "%s: data section [%llu, +%llu) runs outside the file (%llu bytes)", path,
                           (unsigned long long)data_off, (unsigned long long)data_size, (unsigned long long)size);
    const uint64_t data_end = data_off + data_size;
    /* the index: version 1 ends the file with it; version 2 has at least 2 bytes of ids after each entry */
    if (index_off < data_end || index_off % 8 || index_off > size ||
        n_images > (size - index_off) / (STORE_ENTRY_SIZE + (version == 1 ? 0 : 2)) ||
        (version == 1 && (size - index_off) != n_images * STORE_ENTRY_SIZE))
        return store__fail(err, errlen, "%s: index of %llu images at offset %llu %s (%llu bytes; data ends at %llu)",
                           path, (unsigned long long)n_images, (unsigned long long)index_off,
                           version == 1 ? "does not end the file" : "and their ids do not fit in the file",
                           (unsigned long long)size, (unsigned long long)data_end);
    if (max_boxes > STORE_MAX_BOXES)
        return store__fail(err, errlen, "%s: header says %u boxes per image at most (limit %d)", path, max_boxes,
                           STORE_MAX_BOXES);
    s->version = (int)version;
    s->index = (const store__entry *)(h + index_off);
    s->n_images = (int64_t)n_images;
    if (store__check_ids(s, path, index_off, err, errlen)) return -1;
    const store__entry *idx = s->index;
    store__span *spans = (store__span *)malloc(n_images ? n_images * sizeof(store__span) : 1);
    if (!spans) return store__fail(err, errlen, "%s: out of memory for an index of %llu images", path,
                                   (unsigned long long)n_images);
    uint64_t total = 0, most = 0;
    int rc = 0;
    for (uint64_t i = 0; i < n_images && !rc; i++) {
        const store__entry *e = &idx[i];
        const unsigned long long at = (unsigned long long)(index_off + i * STORE_ENTRY_SIZE);
        size_t len;
        const char *id = store__id(s, (int64_t)i, &len);
        if (e->n_boxes < 1 || e->n_boxes > STORE_MAX_BOXES || e->n_boxes > max_boxes)
            rc = store__fail(err, errlen, "%s: image %s (index offset %llu): %u boxes outside 1..%u", path, id, at,
                             e->n_boxes, max_boxes);
        else if (e->width < 1 || e->width > STORE_MAX_SIDE || e->height < 1 || e->height > STORE_MAX_SIDE)
            rc = store__fail(err, errlen, "%s: image %s (index offset %llu): size %u x %u outside 1..%d", path, id, at,
                             e->width, e->height, STORE_MAX_SIDE);
        else {
            const uint64_t bytes = store__record_bytes(e->n_boxes, D);
            if (e->offset % STORE_ALIGNMENT || e->offset < data_off || e->offset > data_end ||
                bytes > data_end - e->offset)
                rc = store__fail(err, errlen, "%s: image %s: record [%llu, +%llu) runs outside the data section "
                                 "[%llu, %llu) or is misaligned", path, id, (unsigned long long)e->offset,
                                 (unsigned long long)bytes, (unsigned long long)data_off,
                                 (unsigned long long)data_end);
            spans[i].begin = e->offset;
            spans[i].end = e->offset + bytes;
            total += e->n_boxes;
            if (e->n_boxes > most) most = e->n_boxes;
        }
    }
    if (!rc && (total != n_boxes || most != max_boxes))
        rc = store__fail(err, errlen, "%s: the header counts %llu boxes (at most %u an image), the index %llu (at most "
                         "%llu)", path, (unsigned long long)n_boxes, max_boxes, (unsigned long long)total,
                         (unsigned long long)most);
    if (!rc && n_images > 1) { /* records never overlap */
        qsort(spans, n_images, sizeof *spans, store__span_cmp);
        for (uint64_t i = 1; i < n_images && !rc; i++)
            if (spans[i].begin < spans[i - 1].end)
                rc = store__fail(err, errlen, "%s: records at offsets %llu and %llu overlap", path,
                                 (unsigned long long)spans[i - 1].begin, (unsigned long long)spans[i].begin);
    }
    free(spans);
    if (rc) return rc;
    s->n_boxes = (int64_t)n_boxes;
    s->feature_dim = (int)D;
    s->max_boxes = (int)max_boxes;
    return 0;
}

int store_open(const char *path, store **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!store__little_endian()) return store__fail(err, errlen, "%s: feature stores need a little-endian host", path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return store__fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return store__fail(err, errlen, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size < STORE_HEADER_SIZE || (uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return store__fail(err, errlen, "%s: %lld bytes cannot be a feature store (the header alone is %d)", path,
                           (long long)st.st_size, STORE_HEADER_SIZE);
    }
    store *s = (store *)calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return store__fail(err, errlen, "%s: out of memory", path);
    }
    s->size = (size_t)st.st_size;
    void *map = mmap(NULL, s->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        free(s);
        return store__fail(err, errlen, "%s: cannot map: %s", path, strerror(errno));
    }
    s->map = (const unsigned char *)map;
    if (store__validate(s, path, err, errlen)) {
        store_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void store_close(store *s)
{
    if (!s) return;
    if (s->map) munmap((void *)s->map, s->size);
    free(s->v1_ids);
    free(s);
}

int store_version(const store *s) { return s->version; }
int64_t store_image_count(const store *s) { return s->n_images; }
int store_feature_dim(const store *s) { return s->feature_dim; }
int64_t store_box_count(const store *s) { return s->n_boxes; }
int store_max_boxes(const store *s) { return s->max_boxes; }

static void store__fill(const store *s, int64_t i, store_record *rec)
{
    const store__entry *e = &s->index[i];
    const float *base = (const float *)(s->map + e->offset);
    size_t len;
    rec->id = store__id(s, i, &len);
    rec->n_boxes = (int)e->n_boxes;
    rec->width = (int)e->width;
    rec->height = (int)e->height;
    rec->features = base;
    rec->boxes = base + (size_t)e->n_boxes * s->feature_dim;
    rec->spatials = rec->boxes + (size_t)e->n_boxes * 4;
}

int store_get(const store *s, int64_t index, store_record *rec)
{
    if (index < 0 || index >= s->n_images) return 0;
    store__fill(s, index, rec);
    return 1;
}

/* a version-1 id: the decimal digits of an int64 as "%lld" writes them (so "042" is absent) */
static int store__v1_key(const char *id, int64_t *out)
{
    char back[STORE__V1_ID];
    char *end;
    errno = 0;
    long long v = strtoll(id, &end, 10);
    if (errno || end == id || *end) return 0;
    snprintf(back, sizeof back, "%lld", v);
    if (strcmp(back, id)) return 0;
    *out = (int64_t)v;
    return 1;
}

int store_find(const store *s, const char *id, store_record *rec)
{
    const size_t len = store__id_len(id);
    int64_t key = 0, lo = 0, hi = s->n_images; /* binary search in [lo, hi) */
    if (!store_id_check(id, len) || (s->version == 1 && !store__v1_key(id, &key))) return 0;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        size_t mlen;
        const char *m = store__id(s, mid, &mlen);
        const int below = s->version == 1 ? (int64_t)s->index[mid].key < key : store__id_cmp(m, mlen, id, len) < 0;
        if (below) lo = mid + 1;
        else hi = mid;
    }
    if (lo >= s->n_images) return 0;
    size_t flen;
    const char *found = store__id(s, lo, &flen);
    if (store__id_cmp(found, flen, id, len) != 0) return 0;
    store__fill(s, lo, rec);
    return 1;
}

/* ---- writer ------------------------------------------------------------------ */

struct store_writer {
    util_out out;
    FILE *f;                        /* out.f */
    const char *path;               /* out.path */
    int feature_dim;
    uint64_t offset;                /* where the next record goes */
    store__entry *entries;          /* in order of addition; key: where its id is in ids */
    size_t n, cap;
    char *ids;                      /* every id added, each with its NUL */
    size_t ids_len, ids_cap;
    uint32_t *slots;                /* open addressing over image ids: entry + 1, or 0 */
    size_t mask;
    float *spatials;                /* (STORE_MAX_BOXES, 6) scratch */
    uint32_t max_boxes;
    uint64_t n_boxes;
};

static size_t store__hash(const char *id, size_t n)
{
    uint64_t x = 0xcbf29ce484222325ULL; /* FNV-1a, then splitmix64's finaliser */
    for (size_t i = 0; i < n; i++) x = (x ^ (unsigned char)id[i]) * 0x100000001b3ULL;
    x ^= x >> 30, x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27, x *= 0x94d049bb133111ebULL;
    return (size_t)(x ^ (x >> 31));
}

static void store__writer_free(store_writer *w)
{
    free(w->entries), free(w->ids), free(w->slots), free(w->spatials);
    free(w);
}

int store_writer_open(const char *path, int feature_dim, store_writer **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!store__little_endian()) return store__fail(err, errlen, "%s: feature stores need a little-endian host", path);
    if (feature_dim < 1 || feature_dim > STORE_MAX_DIM)
        return store__fail(err, errlen, "%s: feature size %d outside 1..%d", path, feature_dim, STORE_MAX_DIM);
    store_writer *w = (store_writer *)calloc(1, sizeof *w);
    if (!w) return store__fail(err, errlen, "out of memory");
    w->feature_dim = feature_dim;
    w->mask = 1023;
    w->slots = (uint32_t *)calloc(w->mask + 1, sizeof(uint32_t));
    w->spatials = (float *)malloc((size_t)STORE_MAX_BOXES * 6 * sizeof(float));
    if (!w->slots || !w->spatials) {
        store__writer_free(w);
        return store__fail(err, errlen, "out of memory");
    }
    if (util_out_open(&w->out, path, err, errlen)) {
        store__writer_free(w);
        return -1;
    }
    w->f = w->out.f, w->path = w->out.path;
    setvbuf(w->f, NULL, _IOFBF, (size_t)1 << 20);
    unsigned char header[STORE_HEADER_SIZE] = {0}; /* rewritten by the commit */
    if (fwrite(header, 1, sizeof header, w->f) != sizeof header) {
        store_writer_abort(w);
        return store__fail(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    }
    w->offset = STORE_HEADER_SIZE;
    *out = w;
    return 0;
}

int64_t store_writer_count(const store_writer *w) { return (int64_t)w->n; }

int64_t store_writer_find(const store_writer *w, const char *id)
{
    const size_t len = store__id_len(id);
    for (size_t i = store__hash(id, len) & w->mask;; i = (i + 1) & w->mask) {
        uint32_t e = w->slots[i];
        if (!e) return -1;
        const store__entry *x = &w->entries[e - 1];
        if (x->extra == len && !memcmp(w->ids + x->key, id, len)) return (int64_t)(e - 1);
    }
}

/* room for one more entry, its id of len bytes and its slot */
static int store__grow(store_writer *w, size_t len)
{
    if (w->n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        store__entry *e = (store__entry *)realloc(w->entries, cap * sizeof *e);
        if (!e) return -1;
        w->entries = e, w->cap = cap;
    }
    if (w->ids_len + len + 1 > w->ids_cap) {
        size_t cap = w->ids_cap ? w->ids_cap * 2 : 16384;
        char *ids = (char *)realloc(w->ids, cap);
        if (!ids) return -1;
        w->ids = ids, w->ids_cap = cap;
    }
    if ((w->n + 1) * 2 > w->mask + 1) { /* keep the table at most half full */
        size_t mask = w->mask * 2 + 1;
        uint32_t *slots = (uint32_t *)calloc(mask + 1, sizeof(uint32_t));
        if (!slots) return -1;
        for (size_t k = 0; k < w->n; k++) {
            size_t i = store__hash(w->ids + w->entries[k].key, w->entries[k].extra) & mask;
            while (slots[i]) i = (i + 1) & mask;
            slots[i] = (uint32_t)(k + 1);
        }
        free(w->slots);
        w->slots = slots, w->mask = mask;
    }
    return 0;
}

static int store__write(store_writer *w, const void *p, size_t n, char *err, size_t errlen)
{
    if (n && fwrite(p, 1, n, w->f) != n)
        return store__fail(err, errlen, "%s: cannot write: %s", w->path, strerror(errno));
    return 0;
}

int store_writer_add(store_writer *w, const store_record *rec, char *err, size_t errlen)
{
    const int n = rec->n_boxes, D = w->feature_dim;
    char why[400];
    if (store_check_record(rec, D, why, sizeof why)) {
        const int named = rec->id && store_id_check(rec->id, store__id_len(rec->id));
        return store__fail(err, errlen, "image %s: %s", named ? rec->id : "?", why);
    }
    const size_t len = store__id_len(rec->id);
    if (store_writer_find(w, rec->id) >= 0) return store__fail(err, errlen, "image %s is already in the store", rec->id);
    if (w->n >= UINT32_MAX - 1 || store__grow(w, len))
        return store__fail(err, errlen, "out of memory for the index (%zu images)", w->n);
    store_spatials(rec->boxes, n, rec->width, rec->height, w->spatials);
    const uint64_t bytes = store__record_bytes((uint64_t)n, (uint64_t)D);
    static const unsigned char zeros[STORE_ALIGNMENT];
    const size_t pad = (size_t)((STORE_ALIGNMENT - bytes % STORE_ALIGNMENT) % STORE_ALIGNMENT);
    if (store__write(w, rec->features, (size_t)n * D * sizeof(float), err, errlen) ||
        store__write(w, rec->boxes, (size_t)n * 4 * sizeof(float), err, errlen) ||
        store__write(w, w->spatials, (size_t)n * 6 * sizeof(float), err, errlen) ||
        store__write(w, zeros, pad, err, errlen))
        return -1;
    store__entry *e = &w->entries[w->n];
    e->key = w->ids_len;
    e->offset = w->offset;
    e->n_boxes = (uint32_t)n;
    e->width = (uint32_t)rec->width;
    e->height = (uint32_t)rec->height;
    e->extra = (uint32_t)len;
    memcpy(w->ids + w->ids_len, rec->id, len + 1);
    w->ids_len += len + 1;
    size_t i = store__hash(rec->id, len) & w->mask;
    while (w->slots[i]) i = (i + 1) & w->mask;
    w->slots[i] = (uint32_t)(++w->n);
    w->offset += bytes + pad;
    w->n_boxes += (uint64_t)n;
    if ((uint32_t)n > w->max_boxes) w->max_boxes = (uint32_t)n;
    return 0;
}

typedef struct {
    const char *id;
    uint32_t len, entry;
} store__sorted;

static int store__sorted_cmp(const void *a, const void *b)
{
    const store__sorted *x = (const store__sorted *)a, *y = (const store__sorted *)b;
    return store__id_cmp(x->id, x->len, y->id, y->len);
}

static void store__put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void store__put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

int store_writer_commit(store_writer *w, char *err, size_t errlen)
{
    /* the index sorted by id right after the data (its records are 64-aligned), then the ids in
       the same order */
    int rc = 0;
    store__sorted *order = (store__sorted *)malloc(w->n ? w->n * sizeof *order : 1);
    if (!order) rc = store__fail(err, errlen, "%s: out of memory for the index", w->path);
    for (size_t k = 0; !rc && k < w->n; k++)
        order[k].id = w->ids + w->entries[k].key, order[k].len = w->entries[k].extra, order[k].entry = (uint32_t)k;
    if (!rc) qsort(order, w->n, sizeof *order, store__sorted_cmp);
    uint64_t id_at = w->offset + (uint64_t)w->n * STORE_ENTRY_SIZE;
    for (size_t k = 0; !rc && k < w->n; k++) {
        store__entry e = w->entries[order[k].entry];
        e.key = id_at;
        id_at += e.extra + 1;
        rc = store__write(w, &e, sizeof e, err, errlen);
    }
    for (size_t k = 0; !rc && k < w->n; k++) rc = store__write(w, order[k].id, order[k].len + 1, err, errlen);
    free(order);
    unsigned char h[STORE_HEADER_SIZE] = {0};
    memcpy(h, STORE_MAGIC, 4);
    store__put32(h + 4, STORE_VERSION);
    store__put32(h + 8, (uint32_t)w->feature_dim);
    store__put32(h + 12, STORE_ALIGNMENT);
    store__put64(h + 16, (uint64_t)w->n);
    store__put64(h + 24, w->n_boxes);
    store__put64(h + 32, STORE_HEADER_SIZE);
    store__put64(h + 40, w->offset - STORE_HEADER_SIZE);
    store__put64(h + 48, w->offset);
    store__put32(h + 56, w->max_boxes);
    if (!rc && (fflush(w->f) != 0 || fseek(w->f, 0, SEEK_SET) != 0 || fwrite(h, 1, sizeof h, w->f) != sizeof h))
        rc = store__fail(err, errlen, "%s: cannot write: %s", w->path, strerror(errno));
    if (rc) util_out_abort(&w->out);
    else rc = util_out_commit(&w->out, err, errlen);
    store__writer_free(w);
    return rc;
}

void store_writer_abort(store_writer *w)
{
    if (!w) return;
    util_out_abort(&w->out);
    store__writer_free(w);
}

#endif /* STORE_IMPLEMENTATION */
