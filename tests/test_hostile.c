/* test_hostile.c - model files that lie about their sizes. TAP output ("ok N - name").

   build/test_hostile [FIXTURE_DIR]   (default: the fixtures next to the binary)

   A file that claims huge counts (metadata entries, tensors, vocabulary, strings) or
   dimensions must be refused with a message before the loader allocates anything in
   proportion to the claim: every allocation the library makes is recorded through
   BAN_MALLOC, and none may exceed a small multiple of the file's size. Files are built
   here, byte by byte, by a small writer of the format in docs/FORMAT.md. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the largest single allocation and the total, since the last reset */
static size_t g_largest, g_total;
static void *recording_malloc(size_t n)
{
    if (n > g_largest) g_largest = n;
    g_total += n;
    return malloc(n);
}
#define BAN_MALLOC(n) recording_malloc(n)
#define BAN_FREE(p) free(p)
#define BAN_IMPLEMENTATION
#include "../ban.h"
#include "test_util.h"

/* ---- a writer of .ban files --------------------------------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *src, size_t n)
{
    if (n == 0) return; /* src may be NULL then, which memcpy does not allow */
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put_u32(bytes *b, uint32_t v) { put(b, &v, 4); }  /* little-endian hosts, as ban.h */
static void put_u64(bytes *b, uint64_t v) { put(b, &v, 8); }
static void put_str(bytes *b, const char *s)
{
    put_u32(b, (uint32_t)strlen(s));
    put(b, s, strlen(s) + 1);
}

typedef struct {
    bytes dir, tensors, data; /* metadata entries, tensor entries, tensor data */
    uint64_t n_meta, n_tensors;
} writer;

static void meta_int(writer *w, const char *key, int64_t v)
{
    put_str(&w->dir, key), put_u32(&w->dir, 1), put_u64(&w->dir, 8), put_u64(&w->dir, (uint64_t)v);
    w->n_meta++;
}
static void meta_str(writer *w, const char *key, const char *v)
{
    put_str(&w->dir, key), put_u32(&w->dir, 3), put_u64(&w->dir, strlen(v) + 1), put(&w->dir, v, strlen(v) + 1);
    w->n_meta++;
}
/* an entry of a type no reader knows, and no value: the smallest there is (skipped on reading) */
static void meta_unknown(writer *w, const char *key)
{
    put_str(&w->dir, key), put_u32(&w->dir, 99), put_u64(&w->dir, 0);
    w->n_meta++;
}
/* a string array claiming `claimed` strings and holding `held` ("w0", "w1", ...) */
static void meta_words(writer *w, const char *key, uint64_t claimed, uint64_t held)
{
    bytes v = {0};
    char word[32];
    put_u64(&v, claimed);
    for (uint64_t i = 0; i < held; i++) snprintf(word, sizeof word, "w%llu", (unsigned long long)i), put_str(&v, word);
    put_str(&w->dir, key), put_u32(&w->dir, 4), put_u64(&w->dir, v.n), put(&w->dir, v.p, v.n);
    free(v.p);
    w->n_meta++;
}
/* a tensor of small random-ish values; dtype 0 = f32, 1 = f16 */
static void tensor(writer *w, const char *name, int dtype, int ndim, uint64_t d0, uint64_t d1, uint64_t d2)
{
    const uint64_t dims[3] = {d0, d1, d2};
    uint64_t count = 1;
    put_str(&w->tensors, name), put_u32(&w->tensors, (uint32_t)dtype), put_u32(&w->tensors, (uint32_t)ndim);
    for (int i = 0; i < ndim; i++) put_u64(&w->tensors, dims[i]), count *= dims[i];
    put_u64(&w->tensors, w->data.n);
    for (uint64_t i = 0; i < count; i++) {
        if (dtype == 0) {
            float f = (float)(i % 7) * 0.125f - 0.25f;
            put(&w->data, &f, 4);
        } else {
            uint16_t h = (uint16_t)(0x3000 + (i % 7)); /* about 0.125 */
            put(&w->data, &h, 2);
        }
    }
    while (w->data.n % 64) put(&w->data, "", 1);
    w->n_tensors++;
}

/* the file: header, directory, padding to 64, data; header fields may be overridden after */
static bytes finish(writer *w)
{
    bytes f = {0};
    put(&w->dir, w->tensors.p, w->tensors.n);
    const uint64_t data_off = (48 + w->dir.n + 63) / 64 * 64;
    put(&f, "BANM", 4), put_u32(&f, 1), put_u32(&f, 64), put_u32(&f, 0);
    put_u64(&f, w->n_meta), put_u64(&f, w->n_tensors), put_u64(&f, data_off), put_u64(&f, w->data.n);
    put(&f, w->dir.p, w->dir.n);
    while (f.n < data_off) put(&f, "", 1);
    put(&f, w->data.p, w->data.n);
    free(w->dir.p), free(w->tensors.p), free(w->data.p);
    memset(w, 0, sizeof *w);
    return f;
}

/* the smallest VQA model there is (every size 1, no counter), with a vocabulary of V words
   whose embedding is float16 (2 bytes a word): the cheapest way to claim a large V */
static void small_vqa(writer *w, int64_t V)
{
    meta_str(w, "ban.task", "vqa");
    meta_int(w, "ban.vocab_size", V);
    meta_int(w, "ban.embedding_dim", 1), meta_int(w, "ban.embedding_tables", 1), meta_int(w, "ban.feature_dim", 1);
    meta_int(w, "ban.hidden_dim", 1), meta_int(w, "ban.attention_rank", 1), meta_int(w, "ban.glimpses", 1);
    meta_int(w, "ban.question_length", 4);
    meta_str(w, "ban.question_padding", "unmasked"), meta_str(w, "ban.box_padding", "zero_rows");
    meta_int(w, "ban.answer_count", 1), meta_int(w, "ban.classifier_hidden", 1), meta_int(w, "ban.counter_objects", 0);
    tensor(w, "word_embedding.weight", 1, 2, (uint64_t)V + 1, 1, 0);
    tensor(w, "gru.weight_ih", 0, 2, 3, 1, 0), tensor(w, "gru.weight_hh", 0, 2, 3, 1, 0);
    tensor(w, "gru.bias_ih", 0, 1, 3, 0, 0), tensor(w, "gru.bias_hh", 0, 1, 3, 0, 0);
    tensor(w, "visual.weight", 0, 2, 2, 1, 0), tensor(w, "visual.bias", 0, 1, 2, 0, 0);
    tensor(w, "attention.q_net.weight", 0, 2, 1, 1, 0), tensor(w, "attention.q_net.bias", 0, 1, 1, 0, 0);
    tensor(w, "attention.h_mat", 0, 2, 1, 1, 0), tensor(w, "attention.h_bias", 0, 1, 1, 0, 0);
    tensor(w, "glimpse.q_net.weight", 0, 3, 1, 1, 1), tensor(w, "glimpse.q_net.bias", 0, 2, 1, 1, 0);
    tensor(w, "glimpse.q_prj.weight", 0, 3, 1, 1, 1), tensor(w, "glimpse.q_prj.bias", 0, 2, 1, 1, 0);
    tensor(w, "classifier.0.weight", 0, 2, 1, 1, 0), tensor(w, "classifier.0.bias", 0, 1, 1, 0, 0);
    tensor(w, "classifier.1.weight", 0, 2, 1, 1, 0), tensor(w, "classifier.1.bias", 0, 1, 1, 0, 0);
}

/* Load a file from memory (copied to a malloc'd, hence aligned, buffer). Returns the status;
   *largest: the largest single allocation the loader made; the message goes to msg. */
static int load_bytes(const bytes *f, size_t *largest, char *msg, size_t msglen)
{
    unsigned char *buf = malloc(f->n);
    memcpy(buf, f->p, f->n);
    ban_model *m;
    g_largest = g_total = 0;
    int rc = ban_model_load_memory(buf, f->n, &m);
    *largest = g_largest;
    snprintf(msg, msglen, "%s", m ? ban_model_error(m) : "no model");
    ban_model_free(m);
    free(buf);
    return rc;
}

static void patch_u64(bytes *f, size_t at, uint64_t v) { memcpy(f->p + at, &v, 8); }

/* where the value of a metadata entry or the dims of a tensor called `name` start */
static size_t field_after(const bytes *f, const char *name, size_t skip)
{
    const size_t n = strlen(name) + 1;
    for (size_t i = 48; i + n <= f->n; i++)
        if (!memcmp(f->p + i, name, n)) return i + n + skip;
    return 0;
}

/* ---- the tests ------------------------------------------------------------------------------ */

/* Header counts: refused when the directory cannot hold them; otherwise the arrays they
   size are bounded by the directory (an entry takes at least 14 or 22 bytes of it). */
static void test_huge_counts(void)
{
    writer w = {0};
    small_vqa(&w, 8);
    bytes f = finish(&w);
    const uint64_t claims[] = {(uint64_t)1 << 40, (uint64_t)1 << 62, UINT64_MAX, 1000000};
    char msg[512];
    size_t largest;
    for (int field = 0; field < 2; field++)
        for (size_t i = 0; i < sizeof claims / sizeof claims[0]; i++) {
            bytes g = {0};
            put(&g, f.p, f.n);
            patch_u64(&g, 16 + 8 * field, claims[i]);
            int rc = load_bytes(&g, &largest, msg, sizeof msg);
            CHECK(rc == BAN_ERR_FORMAT && strstr(msg, "cannot fit"), "%s count %llu: %d %s",
                  field ? "tensor" : "metadata", (unsigned long long)claims[i], rc, msg);
            CHECK(largest <= 4096, "%s count %llu: an allocation of %zu bytes for a %zu-byte file",
                  field ? "tensor" : "metadata", (unsigned long long)claims[i], largest, g.n);
            free(g.p);
        }
    /* the most entries a 64 KB directory of zeros could hold: allocations stay near its size */
    bytes z = {0};
    put(&z, f.p, 48);
    const size_t dir = 65536;
    while (z.n < 48 + dir) put(&z, "", 1);
    patch_u64(&z, 32, 48 + dir), patch_u64(&z, 40, 0);
    for (int field = 0; field < 2; field++) {
        patch_u64(&z, 16, field ? 0 : dir / 14);
        patch_u64(&z, 24, field ? dir / 22 : 0);
        int rc = load_bytes(&z, &largest, msg, sizeof msg);
        CHECK(rc == BAN_ERR_FORMAT && strlen(msg) > 0, "a directory of zeros: %d %s", rc, msg);
        CHECK(largest <= 4 * z.n, "a directory of zeros: an allocation of %zu bytes for a %zu-byte file", largest,
              z.n);
    }
    free(z.p);
    free(f.p);

    /* 60,000 distinct keys in 1.4 MB: every key is compared with those before it, 1.8e9
       comparisons (seconds of CPU; hours for 100 MB), so BAN_MAX_ENTRIES refuses the count */
    char key[32];
    for (int i = 0; i < 60000; i++) snprintf(key, sizeof key, "k%d", i), meta_unknown(&w, key);
    bytes many = finish(&w);
    int rc = load_bytes(&many, &largest, msg, sizeof msg);
    CHECK(rc == BAN_ERR_FORMAT && strstr(msg, "60000 metadata entries") && strstr(msg, "BAN_MAX_ENTRIES"), "%d %s",
          rc, msg);
    CHECK(largest <= 4096, "an allocation of %zu bytes for a %zu-byte file", largest, many.n);
    free(many.p);
}

/* A vocabulary or answer count is only believed with the tensors it sizes in the file, and
   a string array only with the bytes its strings need. */
static void test_huge_vocabulary(void)
{
    char msg[512];
    size_t largest;
    /* 10M words claimed, the embedding tensor of 9 rows: refused at the tensor's shape */
    writer w = {0};
    small_vqa(&w, 8);
    bytes f = finish(&w);
    const size_t at = field_after(&f, "ban.vocab_size", 12); /* after type and size */
    CHECK(at > 0, "no vocab_size in the test file");
    if (at) {
        patch_u64(&f, at, BAN_MAX_VOCAB);
        int rc = load_bytes(&f, &largest, msg, sizeof msg);
        CHECK(rc == BAN_ERR_FORMAT && strstr(msg, "word_embedding.weight' has shape (9, 1)"), "%d %s", rc, msg);
        CHECK(largest <= 4 * f.n, "an allocation of %zu bytes for a %zu-byte file", largest, f.n);
    }
    free(f.p);

    /* 200,000 words (a 400 KB float16 embedding) whose string array claims them all but
       holds 3: refused before the 1.6 MB of pointers the claim would take; what it does
       allocate is the embedding widened to float32, twice its bytes in the file */
    const int64_t V = 200000;
    small_vqa(&w, V);
    meta_words(&w, "tokenizer.words", (uint64_t)V, 3);
    f = finish(&w);
    int rc = load_bytes(&f, &largest, msg, sizeof msg);
    CHECK(rc == BAN_ERR_FORMAT && strstr(msg, "'tokenizer.words' claims 200000 strings in"), "%d %s", rc, msg);
    CHECK(largest <= 2 * f.n, "an allocation of %zu bytes for a %zu-byte file", largest, f.n);
    free(f.p);

    /* the same with every word present: loads, and its allocations stay near the file's size */
    small_vqa(&w, V);
    meta_words(&w, "tokenizer.words", (uint64_t)V, (uint64_t)V);
    f = finish(&w);
    rc = load_bytes(&f, &largest, msg, sizeof msg);
    CHECK(rc == BAN_OK, "a valid file of %lld words: %s", (long long)V, msg);
    CHECK(largest <= 2 * f.n, "an allocation of %zu bytes for a %zu-byte file", largest, f.n);
    free(f.p);

    /* answers: as many strings as classifier.1 has rows, and no fewer bytes than they need */
    small_vqa(&w, 8);
    meta_words(&w, "answers.labels", 1u << 30, 1);
    f = finish(&w);
    rc = load_bytes(&f, &largest, msg, sizeof msg);
    CHECK(rc == BAN_ERR_FORMAT && strstr(msg, "answers.labels"), "%d %s", rc, msg);
    CHECK(largest <= 4096, "an allocation of %zu bytes for a %zu-byte file", largest, f.n);
    free(f.p);
}

/* Dimensions: zero, beyond 2^40, or whose product (in bytes) overflows 64 bits. */
static void test_huge_dimensions(void)
{
    static const struct {
        uint64_t d0, d1;
        const char *needle;
    } cases[] = {
        {0, 1, "dimension 0 is 0"},
        {(uint64_t)1 << 41, 1, "dimension 0 is 2199023255552"},
        {(uint64_t)1 << 39, (uint64_t)1 << 39, "dimension 1 is 549755813888"},
        /* 2^62 elements: 2^64 bytes, which wraps to 0 in 64 bits */
        {(uint64_t)1 << 40, (uint64_t)1 << 22, "dimension 1 is 4194304"},
        {(uint64_t)1 << 31, (uint64_t)1 << 31, "dimension 1 is 2147483648"},
    };
    char msg[512];
    size_t largest;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        writer w = {0};
        small_vqa(&w, 8);
        bytes f = finish(&w);
        const char *name = "attention.h_mat";
        const size_t dims = field_after(&f, name, 8); /* after dtype and ndim */
        if (!dims) {
            CHECK(0, "no %s in the test file", name);
            free(f.p);
            continue;
        }
        patch_u64(&f, dims, cases[i].d0), patch_u64(&f, dims + 8, cases[i].d1);
        int rc = load_bytes(&f, &largest, msg, sizeof msg);
        CHECK(rc == BAN_ERR_FORMAT && strstr(msg, cases[i].needle) && strstr(msg, name), "dims (%llu, %llu): %d %s",
              (unsigned long long)cases[i].d0, (unsigned long long)cases[i].d1, rc, msg);
        CHECK(largest <= 4 * f.n, "an allocation of %zu bytes for a %zu-byte file", largest, f.n);
        free(f.p);
    }
}

/* A model loaded from a mapped file points into the map: no allocation near its size; bf16
   and int8 weights are read in place too (the int8 row sums take 4 bytes a row of at least
   4 bytes stored) */
static void test_mapped_file_is_not_copied(void)
{
    static const char *const files[] = {"g2.ban", "g2_bf16.ban", "g2_int8.ban"};
    for (int i = 0; i < 3; i++) {
        const char *path = path_of(files[i]);
        FILE *fp = fopen(path, "rb");
        if (!fp) {
            printf("Bail out! %s: cannot open\n", path);
            exit(1);
        }
        fseek(fp, 0, SEEK_END);
        long size = ftell(fp);
        fclose(fp);
        ban_model *m;
        g_largest = g_total = 0;
        int rc = ban_model_load(path, &m);
        CHECK(rc == BAN_OK, "%s", ban_model_error(m));
        CHECK(g_total < (size_t)size / 8, "loading %s, %ld bytes, allocated %zu bytes", files[i], size, g_total);
        ban_model_free(m);
    }
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {        {"huge metadata and tensor counts: refused, no allocation beyond the directory", test_huge_counts},
        {"huge vocabulary and string counts: refused before allocating for them", test_huge_vocabulary},
        {"zero, huge and overflowing dimensions are refused by name", test_huge_dimensions},
        {"a mapped model file is not copied (f32, bf16, int8)", test_mapped_file_is_not_copied},
    };
    test_fixture_dir(argc, argv);
    return run_tests(tests, (int)(sizeof tests / sizeof tests[0]));
}
