/* fuzz_store.c - the feature-store reader of examples/store.h (and its writer, on what reads).

   The input is a store file: written to a scratch file (in /dev/shm when there is one),
   it goes to store_open, which must refuse it with a message naming the file or open it.
   A store that opens must satisfy what docs/STORE.md promises: store_get(i) for every
   0 <= i < N gives strictly increasing ids, 1..max_boxes boxes and sides in
   1..STORE_MAX_SIDE, box counts summing to store_box_count and peaking at store_max_boxes;
   each record's features, boxes and spatials are its bytes of the file, back to back at the
   offset its index entry gives (compared with the input itself, so that a record reaching
   past the end of the file is an over-read the sanitizer sees); store_find finds every id,
   and nothing between them or out of range. Then the records go through the writer
   (store_writer_add, store_writer_commit) and the new file must open and read the same:
   ids, sizes, features and boxes bit for bit, spatials as store_spatials computes them.
   Seeds: corpus/store, written by make_seeds.py. */
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
    char err[512] = "";
    const int64_t N = store_image_count(s);
    const int D = store_feature_dim(s);
    FUZZ_CHECK(store_writer_open(g_out, D, &w, err, sizeof err) == 0, "%s", err);
    store_record rec;
    for (int64_t i = 0; i < N; i++) {
        FUZZ_CHECK(store_get(s, i, &rec), "store_get %lld", (long long)i);
        FUZZ_CHECK(store_writer_add(w, &rec, err, sizeof err) == 0, "the writer refuses image %lld: %s",
                   (long long)rec.image_id, err);
    }
    FUZZ_CHECK(store_writer_commit(w, err, sizeof err) == 0, "%s", err);
    store *t;
    FUZZ_CHECK(store_open(g_out, &t, err, sizeof err) == 0, "the rewritten store is refused: %s", err);
    FUZZ_CHECK(store_image_count(t) == N && store_feature_dim(t) == D && store_box_count(t) == store_box_count(s) &&
                   store_max_boxes(t) == store_max_boxes(s),
               "the rewritten store has other counts");
    float *spatials = malloc((size_t)STORE_MAX_BOXES * 6 * sizeof(float));
    for (int64_t i = 0; i < N; i++) {
        store_record a, b;
        FUZZ_CHECK(store_get(s, i, &a) && store_get(t, i, &b), "rewritten image %lld", (long long)i);
        FUZZ_CHECK(a.image_id == b.image_id && a.n_boxes == b.n_boxes && a.width == b.width && a.height == b.height,
                   "rewritten image %lld differs", (long long)a.image_id);
        FUZZ_CHECK(!memcmp(a.features, b.features, (size_t)a.n_boxes * D * sizeof(float)) &&
                       !memcmp(a.boxes, b.boxes, (size_t)a.n_boxes * 4 * sizeof(float)),
                   "rewritten image %lld has other values", (long long)a.image_id);
        store_spatials(a.boxes, a.n_boxes, a.width, a.height, spatials);
        FUZZ_CHECK(!memcmp(b.spatials, spatials, (size_t)a.n_boxes * 6 * sizeof(float)),
                   "rewritten image %lld: spatials", (long long)a.image_id);
    }
    free(spatials);
    store_close(t);
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
        FUZZ_CHECK(rec.n_boxes >= 1 && rec.n_boxes <= most, "image %lld: %d boxes (at most %d)",
                   (long long)rec.image_id, rec.n_boxes, most);
        FUZZ_CHECK(rec.width >= 1 && rec.width <= STORE_MAX_SIDE && rec.height >= 1 && rec.height <= STORE_MAX_SIDE,
                   "image %lld: %d x %d", (long long)rec.image_id, rec.width, rec.height);
        /* the record is the file's bytes at the entry's offset: compared with the input (its exact
           extent, for the sanitizer), not only with the mapping */
        const uint64_t offset = u64_at(data + index_off + (uint64_t)i * STORE_ENTRY_SIZE + 8);
        const size_t nf = (size_t)rec.n_boxes * D * 4, nb = (size_t)rec.n_boxes * 16, ns = (size_t)rec.n_boxes * 24;
        FUZZ_CHECK(rec.boxes == rec.features + (size_t)rec.n_boxes * D && rec.spatials == rec.boxes + rec.n_boxes * 4,
                   "image %lld: the parts of the record are not back to back", (long long)rec.image_id);
        FUZZ_CHECK(offset % STORE_ALIGNMENT == 0 && !memcmp(rec.features, data + offset, nf + nb + ns),
                   "image %lld: the record is not the bytes at offset %llu", (long long)rec.image_id,
                   (unsigned long long)offset);
        if (i > 0) {
            store_record prev;
            FUZZ_CHECK(store_get(s, i - 1, &prev), "store_get %lld", (long long)i - 1);
            FUZZ_CHECK(prev.image_id < rec.image_id, "ids %lld then %lld", (long long)prev.image_id,
                       (long long)rec.image_id);
            if (rec.image_id > prev.image_id + 1) /* an id between two images is absent */
                FUZZ_CHECK(!store_find(s, prev.image_id + 1, &found), "id %lld found", (long long)prev.image_id + 1);
        }
        FUZZ_CHECK(store_find(s, rec.image_id, &found) == 1 && found.features == rec.features &&
                       found.n_boxes == rec.n_boxes, "image %lld not found", (long long)rec.image_id);
        total += rec.n_boxes;
        if (rec.n_boxes > peak) peak = rec.n_boxes;
    }
    FUZZ_CHECK(total == boxes && peak == most, "boxes %lld (header %lld), most %d (header %d)", (long long)total,
               (long long)boxes, peak, most);
    FUZZ_CHECK(!store_get(s, -1, &rec) && !store_get(s, N, &rec), "store_get out of range");
    if (N > 0) {
        store_record first, last;
        FUZZ_CHECK(store_get(s, 0, &first) && store_get(s, N - 1, &last), "first and last");
        if (first.image_id > INT64_MIN) FUZZ_CHECK(!store_find(s, first.image_id - 1, &found), "before the first");
        if (last.image_id < INT64_MAX) FUZZ_CHECK(!store_find(s, last.image_id + 1, &found), "after the last");
    } else {
        FUZZ_CHECK(!store_find(s, 0, &found), "an empty store finds an image");
    }
    if (N > 0) rewrite(s);
    store_close(s);
    return 0;
}
