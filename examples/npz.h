/* npz.h - OpenVQA's per-image feature files: NumPy .npz archives (a zip of .npy members,
   np.savez stored or np.savez_compressed deflated), one image each, as `ban features import
   --npz-dir` reads them.

   THE FILES (MILVLG/openvqa: openvqa/datasets/vqa/vqa_loader.py, .../gqa/gqa_loader.py)
     VQA-v2  COCO_<split>_<12-digit id>.jpg.npz: x (2048, K) float32, transposed; bbox (K, 4)
             float32, x1, y1, x2, y2 in pixels; image_w, image_h; num_bbox (= K)
     GQA     <imageId>.npz (data/gqa/gqa_feat_preproc.py): x (K, 2048) float32; bbox (K, 4);
             width, height
   The image id comes from the file name, as OpenVQA's loaders take it: a COCO name gives the
   number after its last '_' (COCO_val2014_000000000042.jpg.npz is image 42), any other name
   what comes before its first '.' (n161313.npz is image n161313). The layout comes from the
   members: image_w and image_h (VQA-v2: x transposed), or width and height (GQA). Other
   members (cls_prob, attr_prob, a pickled info dict) are never read. The sizes are whole
   numbers (int32, int64, or float32 holding one) in 1..STORE_MAX_SIDE; K is 1..STORE_MAX_BOXES
   and the feature size 1..STORE_MAX_DIM; the record then passes store_check_record.

   npz_read_features(path, &f, err, errlen)       a regular file of at most NPZ_MAX_FILE bytes
                                                   (util_read_file reads it, with malloc)
   npz_parse_features(buf, n, name, &f, err, errlen)
                                   the same from a whole file in memory (`name`, the file's
                                   path or name, gives the image id and stands for it in messages)
       0: f.id, f.layout ("VQA" or "GQA"), f.width, f.height, f.n_boxes (K), f.feature_dim (D),
          f.boxes (K, 4) and f.features (K, D) row-major, both malloc'd;
       -1: err names the file, and the member when one is at fault ("F: member x.npy: ...");
          nothing is left to free.
   npz_record(&f)                  the store_record of f (examples/store.h), for
                                   store_writer_add: `ban features import` is
                                   npz_read_features, then store_writer_add(w, &rec), per file
   npz_features_free(&f)
   npz_image_id(name, id)          the image id a file name gives: 0, or -1 when it gives none

   THE ARCHIVE: the end-of-central-directory record (zip64's too), the central directory and
   each member's local header are checked against the file before use; members flagged
   encrypted, or compressed otherwise than stored (0) or deflated (8), are refused by name. A
   member is read only as far as its declared size: deflated data must inflate to exactly the
   size the central directory declares (never beyond: inflation stops there), that size must
   be one deflate can make of the compressed bytes (at most 1032 times them) and at most
   NPZ_MAX_MEMBER, and the CRC-32 must match. Then npy_parse (examples/npy.h) reads it.

   Define NPZ_IMPLEMENTATION in exactly one C file (in build/ban: examples/impl.c), with
   NPY_IMPLEMENTATION, STORE_IMPLEMENTATION and UTIL_IMPLEMENTATION in one; link with -lz. NPZ_MALLOC and NPZ_FREE may be defined before it
   (tests/fuzz/fuzz_npz.c holds every allocation to what the file justifies). */
#ifndef NPZ_H_INCLUDED
#define NPZ_H_INCLUDED
#include <stddef.h>
#include <stdint.h>

#include "npy.h"
#include "store.h"

#define NPZ_MAX_FILE ((uint64_t)1 << 30)               /* bytes of an .npz file */
#define NPZ_MAX_MEMBER (((uint64_t)256 << 20) + (1 << 20)) /* a member: 1024 boxes x 65536 floats, a header */

typedef struct npz_features {
    char id[STORE_MAX_ID + 1];      /* the image id, from the file name */
    const char *layout;             /* "VQA" (OpenVQA's VQA-v2 files: x transposed) or "GQA" */
    int width, height;              /* the image size in pixels */
    int n_boxes, feature_dim;       /* K, D */
    float *boxes;                   /* (K, 4) x1, y1, x2, y2 in pixels */
    float *features;                /* (K, D) */
} npz_features;

int npz_read_features(const char *path, npz_features *out, char *err, size_t errlen);
int npz_parse_features(const void *buf, size_t n, const char *name, npz_features *out, char *err, size_t errlen);
void npz_features_free(npz_features *f);
store_record npz_record(const npz_features *f);
int npz_image_id(const char *name, char id[STORE_MAX_ID + 1]);

#endif /* NPZ_H_INCLUDED */

#if defined(NPZ_IMPLEMENTATION) && !defined(NPZ__IMPLEMENTED)
#define NPZ__IMPLEMENTED
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util.h"

#if defined(NPZ_MALLOC) != defined(NPZ_FREE)
#error "define both NPZ_MALLOC and NPZ_FREE, or neither"
#endif
#ifndef NPZ_MALLOC
#define NPZ_MALLOC(n) malloc(n)
#define NPZ_FREE(p) free(p)
#endif

static uint32_t npz__u16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t npz__u32(const unsigned char *p) { return npz__u16(p) | npz__u16(p + 2) << 16; }
static uint64_t npz__u64(const unsigned char *p) { return npz__u32(p) | (uint64_t)npz__u32(p + 4) << 32; }

int npz_image_id(const char *name, char id[STORE_MAX_ID + 1])
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *dot = strchr(base, '.');
    size_t n = dot ? (size_t)(dot - base) : strlen(base);
    id[0] = 0;
    if (!strncmp(base, "COCO_", 5)) { /* the number after the last '_', without its leading zeros */
        const char *u = base + n;
        while (u > base && u[-1] != '_') u--;
        const size_t digits = (size_t)(base + n - u);
        if (digits < 1 || digits > 18) return -1;
        unsigned long long v = 0;
        for (size_t i = 0; i < digits; i++) {
            if (u[i] < '0' || u[i] > '9') return -1;
            v = v * 10 + (unsigned)(u[i] - '0');
        }
        snprintf(id, STORE_MAX_ID + 1, "%llu", v);
        return 0;
    }
    if (!store_id_check(base, n)) return -1;
    memcpy(id, base, n);
    id[n] = 0;
    return 0;
}

/* ---- the archive --------------------------------------------------------------------------- */

enum { NPZ__X, NPZ__BBOX, NPZ__IMAGE_W, NPZ__IMAGE_H, NPZ__NUM_BBOX, NPZ__WIDTH, NPZ__HEIGHT, NPZ__MEMBERS };
static const char *const npz__names[NPZ__MEMBERS] = {"x.npy",       "bbox.npy",  "image_w.npy", "image_h.npy",
                                                     "num_bbox.npy", "width.npy", "height.npy"};

typedef struct {
    int found;
    uint32_t method, crc;
    uint64_t csize, usize, data;    /* data: where the member's bytes start in the file */
} npz__member;

/* The central directory of the n-byte zip at b: every entry checked, those named in npz__names
   noted in m. 0, or -1 with a message naming the file. */
static int npz__index(const unsigned char *b, size_t n, const char *name, npz__member *m, char *err, size_t errlen)
{
    memset(m, 0, NPZ__MEMBERS * sizeof *m);
    /* the end-of-central-directory record: the last 22 bytes and a comment of up to 65535 */
    size_t eocd = (size_t)-1;
    for (size_t back = 0; n >= 22 && back <= 65535 && back <= n - 22; back++) {
        const size_t at = n - 22 - back;
        if (npz__u32(b + at) == 0x06054b50 && npz__u16(b + at + 20) == back) {
            eocd = at;
            break;
        }
    }
    if (eocd == (size_t)-1)
        return util_fail(err, errlen, "%s: not an .npz file (no zip end-of-central-directory record)", name);
    uint64_t entries = npz__u16(b + eocd + 10), cd_size = npz__u32(b + eocd + 12), cd_off = npz__u32(b + eocd + 16);
    uint64_t cd_end_limit = eocd; /* the directory ends before the end records */
    if (npz__u16(b + eocd + 4) != 0 || npz__u16(b + eocd + 6) != 0 || npz__u16(b + eocd + 8) != entries)
        return util_fail(err, errlen, "%s: a zip archive split over several disks", name);
    if (entries == 0xFFFF || cd_size == 0xFFFFFFFF || cd_off == 0xFFFFFFFF) { /* zip64 */
        if (eocd < 20 || npz__u32(b + eocd - 20) != 0x07064b50)
            return util_fail(err, errlen, "%s: zip64 sizes without a zip64 end-of-central-directory locator", name);
        const uint64_t z64 = npz__u64(b + eocd - 20 + 8);
        if (npz__u32(b + eocd - 20 + 4) != 0 || npz__u32(b + eocd - 20 + 16) != 1 || z64 > eocd - 20 ||
            eocd - 20 - z64 < 56 || npz__u32(b + z64) != 0x06064b50)
            return util_fail(err, errlen, "%s: the zip64 end-of-central-directory record is not where its locator "
                             "says (offset %llu)", name, (unsigned long long)z64);
        if (npz__u32(b + z64 + 16) != 0 || npz__u32(b + z64 + 20) != 0 || npz__u64(b + z64 + 24) != npz__u64(b + z64 + 32))
            return util_fail(err, errlen, "%s: a zip archive split over several disks", name);
        entries = npz__u64(b + z64 + 32), cd_size = npz__u64(b + z64 + 40), cd_off = npz__u64(b + z64 + 48);
        cd_end_limit = z64;
    }
    if (cd_off > cd_end_limit || cd_size > cd_end_limit - cd_off || entries > cd_size / 46)
        return util_fail(err, errlen, "%s: a central directory of %llu entries in [%llu, +%llu) does not fit before "
                         "its end record at %llu", name, (unsigned long long)entries, (unsigned long long)cd_off,
                         (unsigned long long)cd_size, (unsigned long long)cd_end_limit);
    uint64_t p = cd_off;
    const uint64_t cd_end = cd_off + cd_size;
    for (uint64_t i = 0; i < entries; i++) {
        if (cd_end - p < 46 || npz__u32(b + p) != 0x02014b50)
            return util_fail(err, errlen, "%s: central directory entry %llu (offset %llu) is not one", name,
                             (unsigned long long)i, (unsigned long long)p);
        const uint32_t flags = npz__u16(b + p + 8), method = npz__u16(b + p + 10), crc = npz__u32(b + p + 16);
        uint64_t csize = npz__u32(b + p + 20), usize = npz__u32(b + p + 24), local = npz__u32(b + p + 42);
        const uint32_t nlen = npz__u16(b + p + 28), xlen = npz__u16(b + p + 30), clen = npz__u16(b + p + 32);
        if (cd_end - p - 46 < (uint64_t)nlen + xlen + clen)
            return util_fail(err, errlen, "%s: central directory entry %llu runs past the directory", name,
                             (unsigned long long)i);
        const unsigned char *mname = b + p + 46, *extra = mname + nlen;
        /* zip64: the sizes and offset that do not fit in 32 bits follow in the extra field 0x0001 */
        for (uint32_t x = 0; x + 4 <= xlen;) {
            const uint32_t id = npz__u16(extra + x), len = npz__u16(extra + x + 2);
            if (len > xlen - x - 4) break;
            if (id == 0x0001) {
                uint32_t at = x + 4;
                uint64_t *fields[3] = {&usize, &csize, &local};
                for (int f = 0; f < 3; f++)
                    if (*fields[f] == 0xFFFFFFFF) {
                        if (at + 8 > x + 4 + len)
                            return util_fail(err, errlen, "%s: central directory entry %llu: a zip64 field short of "
                                             "its sizes", name, (unsigned long long)i);
                        *fields[f] = npz__u64(extra + at), at += 8;
                    }
            }
            x += 4 + len;
        }
        int k = 0;
        while (k < NPZ__MEMBERS && (strlen(npz__names[k]) != nlen || memcmp(npz__names[k], mname, nlen))) k++;
        if (k < NPZ__MEMBERS) {
            const char *mn = npz__names[k];
            if (m[k].found) return util_fail(err, errlen, "%s: member %s appears twice", name, mn);
            if (flags & 1) return util_fail(err, errlen, "%s: member %s is encrypted", name, mn);
            if (method != 0 && method != 8)
                return util_fail(err, errlen, "%s: member %s is compressed with method %u (np.savez stores, "
                                 "np.savez_compressed deflates: 0 or 8)", name, mn, method);
            /* the local header: its own name and extra field come before the data */
            if (local > cd_off || cd_off - local < 30 || npz__u32(b + local) != 0x04034b50)
                return util_fail(err, errlen, "%s: member %s: no local header at offset %llu", name, mn,
                                 (unsigned long long)local);
            const uint64_t lnlen = npz__u16(b + local + 26), lxlen = npz__u16(b + local + 28);
            const uint64_t data = local + 30 + lnlen + lxlen;
            if (lnlen != nlen || data > cd_off || memcmp(b + local + 30, mname, nlen) || csize > cd_off - data)
                return util_fail(err, errlen, "%s: member %s: its local header (offset %llu) and %llu bytes of data do "
                                 "not fit before the central directory, or name another member", name, mn,
                                 (unsigned long long)local, (unsigned long long)csize);
            if (method == 0 ? usize != csize : usize > csize * 1032 + 64)
                return util_fail(err, errlen, "%s: member %s: %llu bytes %s from %llu: not possible", name, mn,
                                 (unsigned long long)usize, method == 0 ? "stored" : "inflated",
                                 (unsigned long long)csize);
            if (usize > NPZ_MAX_MEMBER)
                return util_fail(err, errlen, "%s: member %s of %llu bytes: larger than any feature array (%llu)",
                                 name, mn, (unsigned long long)usize, (unsigned long long)NPZ_MAX_MEMBER);
            m[k].found = 1, m[k].method = method, m[k].crc = crc;
            m[k].csize = csize, m[k].usize = usize, m[k].data = data;
        }
        p += 46 + (uint64_t)nlen + xlen + clen;
    }
    return 0;
}

/* One member, inflated to exactly its declared size and checked, then parsed by npy_parse. */
static int npz__member_array(const unsigned char *b, const char *name, int k, const npz__member *m, npy_array *arr,
                             char *err, size_t errlen)
{
    char where[4200];
    snprintf(where, sizeof where, "%s: member %s", name, npz__names[k]);
    memset(arr, 0, sizeof *arr);
    const unsigned char *bytes = b + m->data;
    unsigned char *inflated = NULL;
    if (m->method == 8) {
        if (!(inflated = (unsigned char *)NPZ_MALLOC(m->usize ? m->usize : 1)))
            return util_fail(err, errlen, "%s: out of memory for %llu bytes", where, (unsigned long long)m->usize);
        z_stream z;
        memset(&z, 0, sizeof z);
        if (inflateInit2(&z, -15) != Z_OK) { /* raw deflate, as zip holds it */
            NPZ_FREE(inflated);
            return util_fail(err, errlen, "%s: out of memory for zlib", where);
        }
        /* sizes fit zlib's 32-bit counts: at most NPZ_MAX_MEMBER out, NPZ_MAX_FILE in */
        z.next_in = (unsigned char *)bytes, z.avail_in = (uInt)m->csize; /* zlib's API is not const; it only reads */
        z.next_out = inflated, z.avail_out = (uInt)m->usize;
        int ret = inflate(&z, Z_FINISH);
        if (ret != Z_STREAM_END && ret != Z_DATA_ERROR && ret != Z_MEM_ERROR && z.avail_out == 0) {
            unsigned char probe; /* full: the stream may end here, or want room for more */
            z.next_out = &probe, z.avail_out = 1;
            ret = inflate(&z, Z_FINISH);
            if (z.avail_out == 0) ret = Z_NEED_DICT; /* it made one byte more than declared */
        }
        const uint64_t made = z.total_out;
        inflateEnd(&z);
        const char *why = ret == Z_STREAM_END ? (made == m->usize ? NULL : "ends before its declared size")
                          : ret == Z_NEED_DICT ? "inflates past its declared size (inflating stopped there)"
                          : ret == Z_BUF_ERROR ? "ends before its deflate stream does"
                          : ret == Z_MEM_ERROR ? "cannot be inflated: out of memory"
                          : "is not valid deflate data";
        if (why) {
            NPZ_FREE(inflated);
            return util_fail(err, errlen, "%s: %s (%llu bytes declared, from %llu)", where, why,
                             (unsigned long long)m->usize, (unsigned long long)m->csize);
        }
        bytes = inflated;
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    for (uint64_t at = 0; at < m->usize;) { /* crc32 counts in 32 bits too */
        const uInt step = (uInt)(m->usize - at < (1u << 30) ? m->usize - at : (1u << 30));
        crc = crc32(crc, bytes + at, step);
        at += step;
    }
    int rc = 0;
    if ((uint32_t)crc != m->crc)
        rc = util_fail(err, errlen, "%s: CRC-32 %08x, but the archive says %08x: corrupt", where, (unsigned)crc, m->crc);
    else if (npy_parse(bytes, (size_t)m->usize, where, arr, err, errlen))
        rc = -1;
    if (inflated) NPZ_FREE(inflated);
    return rc;
}

/* a size member: a whole number in 1..STORE_MAX_SIDE (or 1..STORE_MAX_BOXES for num_bbox) */
static int npz__size(const npy_array *a, const char *name, const char *member, long long max, int *out, char *err,
                     size_t errlen)
{
    double v = -1;
    if (a->count == 1 && a->ndim <= 1) {
        if (a->kind == 'i') v = *(const int32_t *)a->data;
        else if (a->kind == 'l') v = (double)*(const int64_t *)a->data;
        else if (a->kind == 'f') v = *(const float *)a->data;
    }
    if (!(v >= 1 && v <= (double)max && v == (double)(long long)v))
        return util_fail(err, errlen, "%s: member %s is not one whole number in 1..%lld", name, member, max);
    *out = (int)v;
    return 0;
}

void npz_features_free(npz_features *f)
{
    if (!f) return;
    NPZ_FREE(f->boxes), NPZ_FREE(f->features);
    f->boxes = f->features = NULL;
}

store_record npz_record(const npz_features *f)
{
    store_record r;
    memset(&r, 0, sizeof r);
    r.id = f->id, r.n_boxes = f->n_boxes, r.width = f->width, r.height = f->height;
    r.features = f->features, r.boxes = f->boxes;
    return r;
}

int npz_parse_features(const void *buf, size_t n, const char *name, npz_features *out, char *err, size_t errlen)
{
    const unsigned char *b = (const unsigned char *)buf;
    memset(out, 0, sizeof *out);
    if (npz_image_id(name, out->id))
        return util_fail(err, errlen, "%s: the file name gives no image id (COCO_<split>_<number>.jpg.npz, or "
                         "<id>.npz with 1 to %d letters, digits, '_' or '-')", name, STORE_MAX_ID);
    npz__member m[NPZ__MEMBERS];
    if (npz__index(b, n, name, m, err, errlen)) return -1;
    const int vqa = m[NPZ__IMAGE_W].found || m[NPZ__IMAGE_H].found, gqa = m[NPZ__WIDTH].found || m[NPZ__HEIGHT].found;
    if (vqa == gqa || !m[NPZ__X].found || !m[NPZ__BBOX].found)
        return util_fail(err, errlen, "%s: expected the members x, bbox and image_w, image_h (OpenVQA's VQA-v2 "
                         "features) or width, height (GQA's)", name);
    out->layout = vqa ? "VQA" : "GQA";
    const int want[3] = {vqa ? NPZ__IMAGE_W : NPZ__WIDTH, vqa ? NPZ__IMAGE_H : NPZ__HEIGHT, NPZ__NUM_BBOX};
    npy_array x, bbox, s;
    int sizes[3] = {0, 0, -1};
    for (int i = 0; i < 3; i++) {
        if (!m[want[i]].found) {
            if (i < 2) return util_fail(err, errlen, "%s: member %s is missing", name, npz__names[want[i]]);
            continue; /* num_bbox: checked when it is there */
        }
        if (npz__member_array(b, name, want[i], &m[want[i]], &s, err, errlen)) return -1;
        const int rc = npz__size(&s, name, npz__names[want[i]], i < 2 ? STORE_MAX_SIDE : STORE_MAX_BOXES, &sizes[i],
                                 err, errlen);
        npy_free(&s);
        if (rc) return -1;
    }
    out->width = sizes[0], out->height = sizes[1];
    if (npz__member_array(b, name, NPZ__BBOX, &m[NPZ__BBOX], &bbox, err, errlen)) return -1;
    if (bbox.kind != 'f' || bbox.ndim != 2 || bbox.shape[1] != 4 || bbox.shape[0] < 1 ||
        bbox.shape[0] > STORE_MAX_BOXES) {
        npy_free(&bbox);
        return util_fail(err, errlen, "%s: member bbox.npy is not a float32 array (K, 4) of 1..%d boxes", name,
                         STORE_MAX_BOXES);
    }
    const int K = (int)bbox.shape[0];
    if (sizes[2] >= 0 && sizes[2] != K) {
        npy_free(&bbox);
        return util_fail(err, errlen, "%s: member num_bbox.npy says %d boxes, bbox.npy holds %d", name, sizes[2], K);
    }
    if (npz__member_array(b, name, NPZ__X, &m[NPZ__X], &x, err, errlen)) {
        npy_free(&bbox);
        return -1;
    }
    /* VQA-v2: x is (D, K), the boxes' features in columns; GQA: (K, D) */
    const int64_t xk = x.ndim == 2 ? x.shape[vqa ? 1 : 0] : -1, xd = x.ndim == 2 ? x.shape[vqa ? 0 : 1] : -1;
    if (x.kind != 'f' || x.ndim != 2 || xk != K || xd < 1 || xd > STORE_MAX_DIM) {
        npy_free(&bbox), npy_free(&x);
        return util_fail(err, errlen, "%s: member x.npy is not a float32 array %s of the %d boxes of bbox.npy and "
                         "1..%d features", name, vqa ? "(D, K), transposed as OpenVQA's VQA-v2 files hold it"
                                                     : "(K, D)", K, STORE_MAX_DIM);
    }
    const int D = (int)xd;
    out->n_boxes = K, out->feature_dim = D;
    out->boxes = (float *)NPZ_MALLOC((size_t)K * 4 * sizeof(float));
    out->features = (float *)NPZ_MALLOC((size_t)K * D * sizeof(float));
    if (!out->boxes || !out->features) {
        npy_free(&bbox), npy_free(&x), npz_features_free(out);
        return util_fail(err, errlen, "%s: out of memory for %d boxes of %d features", name, K, D);
    }
    memcpy(out->boxes, bbox.data, (size_t)K * 4 * sizeof(float));
    const float *xv = (const float *)x.data;
    if (vqa)
        for (int k = 0; k < K; k++)
            for (int d = 0; d < D; d++) out->features[(size_t)k * D + d] = xv[(size_t)d * K + k];
    else
        memcpy(out->features, xv, (size_t)K * D * sizeof(float));
    npy_free(&bbox), npy_free(&x);
    char why[400];
    store_record rec = npz_record(out);
    if (store_check_record(&rec, D, why, sizeof why)) {
        npz_features_free(out);
        return util_fail(err, errlen, "%s: image %s: %s", name, out->id, why);
    }
    return 0;
}

int npz_read_features(const char *path, npz_features *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t n;
    unsigned char *buf = (unsigned char *)util_read_file(path, NPZ_MAX_FILE, &n, err, errlen);
    if (!buf) return -1;
    const int rc = npz_parse_features(buf, n, path, out, err, errlen);
    free(buf);
    return rc;
}

#endif /* NPZ_IMPLEMENTATION */
