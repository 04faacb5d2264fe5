/* fuzz_store.c - the feature-store reader of examples/store.h (and its writer, on what reads).

   The input is a store file: written to a scratch file (in /dev/shm when there is one),
   it goes to store_open, which must refuse it with a message naming the file or open it.
   A store that opens must satisfy what docs/STORE.md promises: store_get(i) for every
   0 <= i < N gives valid ids (store_id_check) in strictly increasing order (version 2:
   shorter first, then by bytes; version 1: as numbers), 1..max_boxes boxes and sides in
   1..STORE_MAX_SIDE, box counts summing to store_box_count and peaking at store_max_boxes;
   each record's features, boxes and spatials are its bytes of the file, back to back at the
   offset its index entry gives (compared with the input itself, so that a record reaching
   past the end of the file is an over-read the sanitizer sees), and a version-2 id is the
   file's bytes at the offset its entry gives; store_find finds every id, and no id next to
   them (one byte changed, one more or fewer, leading zeros) that the store does not hold.
   Then the records go through the writer (store_writer_add, store_writer_commit), which
   refuses exactly those store_check_record refuses (the reader does not read the floats),
   and the new file (version 2) must open and read the same: ids, sizes, features and boxes
   bit for bit, spatials as store_spatials computes them. Seeds: corpus/store, written by
   make_parser_seeds.py. */
#define _POSIX_C_SOURCE 200809L
#define UTIL_IMPLEMENTATION /* store.h writes through util.h */
#define STORE_IMPLEMENTATION
#include "../../examples/store.h"

#include <string.h>
#include <unistd.h>

#include "fuzz.h"

static char g_in[96], g_out[96];

static void remove_files(void)
{
    unlink(g_in);
    unlink(g_out);
}

static uint64_t u64_at(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static void rewrite(const store *s)
{
    store_writer *w;
    char err[512] = "", why[512];
    const int64_t N = store_image_count(s);
    const int D = store_feature_dim(s);
    FUZZ_CHECK(store_writer_open(g_out, D, &w, err, sizeof err) == 0, "%s", err);
    store_record rec;
    int64_t added = 0, boxes = 0;
    for (int64_t i = 0; i < N; i++) {
        FUZZ_CHECK(store_get(s, i, &rec), "store_get %lld", (long long)i);
        const int valid = store_check_record(&rec, D, why, sizeof why) == 0;
        const int rc = store_writer_add(w, &rec, err, sizeof err);
        FUZZ_CHECK((rc == 0) == valid, "image %s: the writer says %s, store_check_record %s", rec.id,
                   rc ? err : "yes", valid ? "yes" : why);
        if (rc) {
            const size_t n = strlen(rec.id);
            FUZZ_CHECK(!strncmp(err, "image ", 6) && !strncmp(err + 6, rec.id, n) && !strcmp(err + 6 + n + 2, why),
                       "the writer's message '%s' is not 'image %s: %s'", err, rec.id, why);
        } else {
            added++, boxes += rec.n_boxes;
        }
    }
    FUZZ_CHECK(store_writer_count(w) == added, "%lld images added, the writer counts %lld", (long long)added,
               (long long)store_writer_count(w));
    FUZZ_CHECK(store_writer_commit(w, err, sizeof err) == 0, "%s", err);
    store *t;
    FUZZ_CHECK(store_open(g_out, &t, err, sizeof err) == 0, "the rewritten store is refused: %s", err);
    FUZZ_CHECK(store_version(t) == STORE_VERSION && store_image_count(t) == added && store_feature_dim(t) == D &&
                   store_box_count(t) == boxes, "the rewritten store has other counts");
    float *spatials = malloc((size_t)STORE_MAX_BOXES * 6 * sizeof(float));
    for (int64_t i = 0; i < N; i++) {
        store_record a, b;
        FUZZ_CHECK(store_get(s, i, &a), "image %lld", (long long)i);
        if (store_check_record(&a, D, why, sizeof why)) {
            FUZZ_CHECK(!store_find(t, a.id, &b), "image %s was refused, yet it is in the rewritten store", a.id);
            continue;
        }
        FUZZ_CHECK(store_find(t, a.id, &b), "image %s is not in the rewritten store", a.id);
        FUZZ_CHECK(!strcmp(a.id, b.id) && a.n_boxes == b.n_boxes && a.width == b.width && a.height == b.height,
                   "rewritten image %s differs", a.id);
        FUZZ_CHECK(!memcmp(a.features, b.features, (size_t)a.n_boxes * D * sizeof(float)) &&
                       !memcmp(a.boxes, b.boxes, (size_t)a.n_boxes * 4 * sizeof(float)),
                   "rewritten image %s has other values", a.id);
        store_spatials(a.boxes, a.n_boxes, a.width, a.height, spatials);
        FUZZ_CHECK(!memcmp(b.spatials, spatials, (size_t)a.n_boxes * 6 * sizeof(float)), "rewritten image %s: spatials",
                   a.id);
    }
    free(spatials);
    store_close(t);
}

/* ids next to id that the store must not find unless it holds them: one byte changed, one
   byte more, one fewer, a leading zero */
static void near_ids(const store *s, const char *id)
{
    char probe[STORE_MAX_ID + 2];
    const size_t n = strlen(id);
    store_record found;
    for (int k = 0; k < 4; k++) {
        if (k == 0) snprintf(probe, sizeof probe, "%s", id), probe[n - 1] = probe[n - 1] == '0' ? '1' : '0';
        else if (k == 1) snprintf(probe, sizeof probe, "%s0", id);
        else if (k == 2) snprintf(probe, sizeof probe, "%.*s", (int)n - 1, id);
        else snprintf(probe, sizeof probe, "0%s", id);
        if (!store_find(s, probe, &found)) continue;
        FUZZ_CHECK(!strcmp(found.id, probe), "looking for %s, store_find gives %s", probe, found.id);
        int held = 0; /* the store holds probe: then store_get has it somewhere */
        for (int64_t i = 0; i < store_image_count(s) && !held; i++) {
            store_record r;
            store_get(s, i, &r);
            held = !strcmp(r.id, probe);
        }
        FUZZ_CHECK(held, "store_find finds %s, which no entry holds", probe);
    }
}

/* the order of the index: version 2 by length then bytes, version 1 as numbers */
static int in_order(const store *s, const char *a, const char *b)
{
    if (store_version(s) == 1) return strtoll(a, NULL, 10) < strtoll(b, NULL, 10);
    const size_t na = strlen(a), nb = strlen(b);
    return na < nb || (na == nb && memcmp(a, b, na) < 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_in[0]) { /* scratch files per process, in memory when possible */
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(g_in, sizeof g_in, "%s/fuzz_store.%ld.in", dir, (long)getpid());
        snprintf(g_out, sizeof g_out, "%s/fuzz_store.%ld.out", dir, (long)getpid());
        atexit(remove_files);
    }
    /* a new file each time (by rename): a mapping of the previous one never sees it change */
    char tmp[112];
    snprintf(tmp, sizeof tmp, "%s.tmp", g_in);
    FILE *f = fopen(tmp, "wb");
    FUZZ_CHECK(f && fwrite(data, 1, size, f) == size && fclose(f) == 0 && rename(tmp, g_in) == 0, "cannot write %s",
               g_in);
    store *s;
    char err[512] = "";
    if (store_open(g_in, &s, err, sizeof err) != 0) {
        FUZZ_CHECK(s == NULL, "refused, but a store is handed out");
        FUZZ_CHECK(strncmp(err, g_in, strlen(g_in)) == 0 && err[strlen(g_in)] == ':', "message without the file: %s",
                   err);
        return 0;
    }
    const int64_t N = store_image_count(s), boxes = store_box_count(s);
    const int D = store_feature_dim(s), most = store_max_boxes(s);
    FUZZ_CHECK(size >= STORE_HEADER_SIZE && N >= 0 && (uint64_t)N <= (size - STORE_HEADER_SIZE) / STORE_ENTRY_SIZE,
               "%lld images in %zu bytes", (long long)N, size);
    FUZZ_CHECK(D >= 1 && D <= STORE_MAX_DIM && most >= 0 && most <= STORE_MAX_BOXES, "D %d, max boxes %d", D, most);
    const uint64_t index_off = u64_at(data + 48);
    int64_t total = 0;
    int peak = 0;
    store_record rec, found;
    for (int64_t i = 0; i < N; i++) {
        FUZZ_CHECK(store_get(s, i, &rec) == 1, "store_get %lld of %lld", (long long)i, (long long)N);
        FUZZ_CHECK(rec.id && store_id_check(rec.id, strlen(rec.id)), "image %lld: an invalid id", (long long)i);
        FUZZ_CHECK(rec.n_boxes >= 1 && rec.n_boxes <= most, "image %s: %d boxes (at most %d)", rec.id, rec.n_boxes,
                   most);
        FUZZ_CHECK(rec.width >= 1 && rec.width <= STORE_MAX_SIDE && rec.height >= 1 && rec.height <= STORE_MAX_SIDE,
                   "image %s: %d x %d", rec.id, rec.width, rec.height);
        /* the record is the file's bytes at the entry's offset: compared with the input (its exact
           extent, for the sanitizer), not only with the mapping; so is a version-2 id */
        const uint8_t *entry = data + index_off + (uint64_t)i * STORE_ENTRY_SIZE;
        const uint64_t offset = u64_at(entry + 8);
        const size_t nf = (size_t)rec.n_boxes * D * 4, nb = (size_t)rec.n_boxes * 16, ns = (size_t)rec.n_boxes * 24;
        FUZZ_CHECK(rec.boxes == rec.features + (size_t)rec.n_boxes * D && rec.spatials == rec.boxes + rec.n_boxes * 4,
                   "image %s: the parts of the record are not back to back", rec.id);
        FUZZ_CHECK(offset % STORE_ALIGNMENT == 0 && !memcmp(rec.features, data + offset, nf + nb + ns),
                   "image %s: the record is not the bytes at offset %llu", rec.id, (unsigned long long)offset);
        if (store_version(s) == 2) {
            const size_t len = strlen(rec.id);
            FUZZ_CHECK(!memcmp(rec.id, data + u64_at(entry), len + 1), "image %s: not the bytes at its id offset",
                       rec.id);
        }
        if (i > 0) {
            store_record prev;
            FUZZ_CHECK(store_get(s, i - 1, &prev), "store_get %lld", (long long)i - 1);
            FUZZ_CHECK(in_order(s, prev.id, rec.id), "ids %s then %s", prev.id, rec.id);
        }
        FUZZ_CHECK(store_find(s, rec.id, &found) == 1 && found.features == rec.features &&
                       found.n_boxes == rec.n_boxes && !strcmp(found.id, rec.id), "image %s not found", rec.id);
        near_ids(s, rec.id);
        total += rec.n_boxes;
        if (rec.n_boxes > peak) peak = rec.n_boxes;
    }
    FUZZ_CHECK(total == boxes && peak == most, "boxes %lld (header %lld), most %d (header %d)", (long long)total,
               (long long)boxes, peak, most);
    FUZZ_CHECK(!store_get(s, -1, &rec) && !store_get(s, N, &rec), "store_get out of range");
    FUZZ_CHECK(!store_find(s, "", &found) && !store_find(s, "a/b", &found), "an invalid id is found");
    if (N == 0) FUZZ_CHECK(!store_find(s, "0", &found), "an empty store finds an image");
    if (N > 0) rewrite(s);
    store_close(s);
    return 0;
}
