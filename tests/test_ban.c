/* test_ban.c - the C tests of ban.h, through its API. TAP output ("ok N - name").

   build/test_ban [FIXTURE_DIR]   (default: fixtures/ next to the binary, made by tests/prepare_fixtures.py)

   Golden parity with the reference, padding invariance, attention sums, the glimpse
   option and entropy, threads, allocation-free forward passes, and bad input: corrupted
   and truncated model files, bad shapes and values, tokens outside the vocabulary. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* count the library's allocations to prove the forward pass makes none */
static long g_allocs;
static void *counting_malloc(size_t n)
{
    __atomic_add_fetch(&g_allocs, 1, __ATOMIC_SEQ_CST);
    return malloc(n);
}
#define BAN_MALLOC(n) counting_malloc(n)
#define BAN_FREE(p) free(p)
#define BAN_IMPLEMENTATION
#include "../ban.h"
#include "test_util.h"

static float max_abs_diff(const float *a, const float *b, size_t n)
{
    float d = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float e = fabsf(a[i] - b[i]);
        if (!(e <= d)) d = e; /* NaN propagates */
    }
    return d;
}

static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) n = -1;
    fclose(f);
    *size = (size_t)n;
    return buf;
}

/* The VQA fixture: 6 examples, 24 boxes (some zero-padded), 14 tokens. */
typedef struct {
    ban_model *m;
    npy_array v, b, q, logits, att;
    int32_t *tok;
    int box_counts[6];
    int B, K, L, A, G;
} vqa_fixture;

static vqa_fixture vqa_open(void)
{
    vqa_fixture f;
    f.m = open_model("g2.ban");
    f.v = load("g2_v.npy"), f.b = load("g2_b.npy"), f.q = load("g2_q.npy");
    f.logits = load("g2_logits.npy"), f.att = load("g2_att.npy");
    f.tok = ints(&f.q);
    npy_array n = load("g2_box_counts.npy");
    int32_t *counts = ints(&n);
    for (int i = 0; i < 6; i++) f.box_counts[i] = counts[i];
    free(counts);
    npy_free(&n);
    f.B = (int)f.v.shape[0], f.K = (int)f.v.shape[1], f.L = (int)f.q.shape[1];
    f.A = ban_model_config(f.m)->num_answers, f.G = ban_model_config(f.m)->num_glimpses;
    return f;
}

static void vqa_close(vqa_fixture *f)
{
    npy_free(&f->v), npy_free(&f->b), npy_free(&f->q), npy_free(&f->logits), npy_free(&f->att);
    free(f->tok);
    ban_model_free(f->m);
}

static ban_input vqa_input(const vqa_fixture *f)
{
    ban_input in;
    memset(&in, 0, sizeof in);
    in.batch = f->B, in.boxes = f->K, in.features = f->v.data, in.spatials = f->b.data;
    in.tokens_len = f->L, in.tokens = f->tok;
    return in;
}

static ban_ctx *new_ctx(const ban_model *m, int batch, int boxes, int tokens, int entities)
{
    ban_limits lim = {batch, boxes, tokens, entities, 0};
    ban_ctx *c;
    if (ban_ctx_create(m, &lim, &c) != BAN_OK) {
        printf("Bail out! %s\n", ban_ctx_error(c));
        exit(1);
    }
    return c;
}

/* ---- golden parity --------------------------------------------------------------------- */

static void test_golden_vqa(void)
{
    const char *files[] = {"g2.ban", "g2_legacy.ban", "g2_rows.ban"};
    for (int i = 0; i < 3; i++) {
        vqa_fixture f = vqa_open();
        ban_model_free(f.m);
        f.m = open_model(files[i]);
        ban_ctx *c = new_ctx(f.m, 8, 32, 14, 0);
        float *logits = malloc(sizeof(float) * f.B * f.A), *att = malloc(sizeof(float) * f.B * f.G * f.K * 14);
        ban_input in = vqa_input(&f);
        ban_output out = {logits, att, NULL};
        REQUIRE(ban_forward(c, &in, &out) == BAN_OK, "%s", ban_ctx_error(c));
        float dl = max_abs_diff(logits, f.logits.data, (size_t)f.B * f.A);
        float da = max_abs_diff(att, f.att.data, (size_t)f.B * f.G * f.K * 14);
        CHECK(dl <= 1e-4f, "%s: logits differ from the reference by %g", files[i], dl);
        CHECK(da <= 1e-5f, "%s: attention differs from the reference by %g", files[i], da);
        for (int b = 0; b < f.B; b++)
            CHECK(ban_argmax(logits + b * f.A, f.A) == ban_argmax((float *)f.logits.data + b * f.A, f.A),
                  "%s: example %d answers differently", files[i], b);
        free(logits), free(att);
        ban_ctx_free(c);
        vqa_close(&f);
    }
}

static void test_golden_grounding(void)
{
    ban_model *m = open_model("flickr.ban");
    npy_array v = load("flickr_v.npy"), b = load("flickr_b.npy"), q = load("flickr_q.npy"), e = load("flickr_e.npy");
    npy_array gold = load("flickr_att_logits.npy");
    int32_t *tok = ints(&q), *ent = ints(&e);
    int B = (int)v.shape[0], K = (int)v.shape[1], L = (int)q.shape[1], E = (int)e.shape[1];
    int G = ban_model_config(m)->num_glimpses;
    ban_ctx *c = new_ctx(m, B, K, L, E);
    float *out_l = malloc(sizeof(float) * B * G * K * E);
    ban_input in;
    memset(&in, 0, sizeof in);
    in.batch = B, in.boxes = K, in.features = v.data, in.spatials = b.data, in.tokens_len = L, in.tokens = tok;
    in.entities_len = E, in.entities = ent;
    ban_output out = {out_l, NULL, NULL};
    REQUIRE(ban_forward(c, &in, &out) == BAN_OK, "%s", ban_ctx_error(c));
    float d = max_abs_diff(out_l, gold.data, (size_t)B * G * K * E);
    CHECK(d <= 1e-4f, "grounding logits differ from the reference by %g", d);

    /* explicit counts: the real slots are unchanged, the rest become -99 */
    npy_array ec = load("flickr_entity_counts.npy"), bc = load("flickr_box_counts.npy");
    int32_t *ecount = ints(&ec), *bcount = ints(&bc);
    int ecounts[16], bcounts[16];
    for (int i = 0; i < B; i++) ecounts[i] = ecount[i], bcounts[i] = bcount[i];
    in.entity_counts = ecounts, in.box_counts = bcounts;
    float *out2 = malloc(sizeof(float) * B * G * K * E);
    out.logits = out2;
    REQUIRE(ban_forward(c, &in, &out) == BAN_OK, "%s", ban_ctx_error(c));
    int bad = 0;
    for (int i = 0; i < B; i++)
        for (int k = 0; k < K; k++)
            for (int j = 0; j < E; j++) {
                size_t at = ((size_t)i * G * K + k) * E + j;
                float want = (j < ecounts[i] && k < bcounts[i]) ? ((float *)gold.data)[at] : -99.0f;
                if (fabsf(out2[at] - want) > 1e-4f) bad++;
            }
    CHECK(bad == 0, "%d logits differ with explicit entity and box counts", bad);
    free(out_l), free(out2), free(tok), free(ent), free(ecount), free(bcount);
    npy_free(&v), npy_free(&b), npy_free(&q), npy_free(&e), npy_free(&gold), npy_free(&ec), npy_free(&bc);
    ban_ctx_free(c);
    ban_model_free(m);
}

static void test_tokenizer_golden(void)
{
    vqa_fixture f = vqa_open();
    ban_ctx *c = new_ctx(f.m, 1, 1, 14, 0);
    FILE *fq = fopen(path_of("g2_questions.txt"), "r");
    REQUIRE(fq, "no questions file");
    char line[1024];
    int row = 0;
    while (fgets(line, sizeof line, fq)) {
        line[strcspn(line, "\n")] = 0;
        int32_t ids[64];
        int n;
        REQUIRE(ban_tokenize(c, line, ids, 64, &n) == BAN_OK, "%s", ban_ctx_error(c));
        for (int t = 0; t < 14; t++) {
            int32_t want = f.tok[row * 14 + t], got = t < n ? ids[t] : ban_model_config(f.m)->padding_id;
            CHECK(got == want, "question %d token %d: %d, the reference has %d", row, t, got, want);
        }
        row++;
    }
    fclose(fq);
    CHECK(row == 6, "read %d questions", row);
    ban_ctx_free(c);
    vqa_close(&f);
}

/* ---- properties ------------------------------------------------------------------------ */

/* Appending padded boxes (zero rows, or garbage rows beyond explicit counts) and padded
   tokens never changes the outputs. */
static void test_padding_invariance(void)
{
    vqa_fixture f = vqa_open();
    const int K2 = f.K + 13, L2 = 20, Dv = ban_model_config(f.m)->feature_dim;
    ban_ctx *c = new_ctx(f.m, f.B, K2, L2, 0);
    float *base = malloc(sizeof(float) * f.B * f.A), *att0 = malloc(sizeof(float) * f.B * f.G * f.K * 14);
    ban_input in = vqa_input(&f);
    ban_output out = {base, att0, NULL};
    REQUIRE(ban_forward(c, &in, &out) == BAN_OK, "%s", ban_ctx_error(c));

    float *v2 = calloc((size_t)f.B * K2 * Dv, sizeof(float)), *b2 = calloc((size_t)f.B * K2 * 6, sizeof(float));
    int32_t *q2 = malloc(sizeof(int32_t) * f.B * L2);
    for (int b = 0; b < f.B; b++) {
        memcpy(v2 + (size_t)b * K2 * Dv, (float *)f.v.data + (size_t)b * f.K * Dv, sizeof(float) * f.K * Dv);
        memcpy(b2 + (size_t)b * K2 * 6, (float *)f.b.data + (size_t)b * f.K * 6, sizeof(float) * f.K * 6);
        for (int t = 0; t < L2; t++) q2[b * L2 + t] = t < f.L ? f.tok[b * f.L + t] : ban_model_config(f.m)->padding_id;
    }
    float *logits = malloc(sizeof(float) * f.B * f.A), *att = malloc(sizeof(float) * f.B * f.G * K2 * 14);
    in.boxes = K2, in.features = v2, in.spatials = b2, in.tokens_len = L2, in.tokens = q2;
    out.logits = logits, out.attention = att;
    REQUIRE(ban_forward(c, &in, &out) == BAN_OK, "%s", ban_ctx_error(c));
    float d = max_abs_diff(logits, base, (size_t)f.B * f.A);
    CHECK(d <= 1e-6f, "zero-row padded boxes and padded tokens change the logits by %g", d);
    float worst = 0.0f;
    for (int b = 0; b < f.B; b++)
        for (int g = 0; g < f.G; g++)
            for (int k = 0; k < K2; k++)
                for (int l = 0; l < 14; l++) {
                    float got = att[(((size_t)b * f.G + g) * K2 + k) * 14 + l];
                    float want = k < f.K ? att0[(((size_t)b * f.G + g) * f.K + k) * 14 + l] : 0.0f;
                    if (fabsf(got - want) > worst) worst = fabsf(got - want);
                }
    CHECK(worst <= 1e-7f, "padded boxes change the attention by %g", worst);

    /* explicit counts: whatever the padded rows and tokens hold */
    int counts[6], tcounts[6];
    for (int b = 0; b < f.B; b++) {
        counts[b] = f.box_counts[b];
        tcounts[b] = 0;
        while (tcounts[b] < f.L && f.tok[b * f.L + tcounts[b]] != ban_model_config(f.m)->padding_id) tcounts[b]++;
        for (int k = counts[b]; k < K2; k++) {
            for (int j = 0; j < Dv; j++) v2[((size_t)b * K2 + k) * Dv + j] = (float)(k * 31 + j) * 0.01f;
            for (int j = 0; j < 6; j++) b2[((size_t)b * K2 + k) * 6 + j] = 0.25f;
        }
        for (int t = tcounts[b]; t < L2; t++) q2[b * L2 + t] = (t * 7) % ban_model_config(f.m)->vocab_size;
    }
    in.box_counts = counts, in.token_counts = tcounts;
    REQUIRE(ban_forward(c, &in, &out) == BAN_OK, "%s", ban_ctx_error(c));
    d = max_abs_diff(logits, base, (size_t)f.B * f.A);
    CHECK(d <= 1e-6f, "garbage beyond explicit counts changes the logits by %g", d);
    free(base), free(att0), free(v2), free(b2), free(q2), free(logits), free(att);
    ban_ctx_free(c);
    vqa_close(&f);
}

static void test_attention_sums(void)
{
    vqa_fixture f = vqa_open();
    ban_ctx *c = new_ctx(f.m, f.B, f.K, 14, 0);
    float *logits = malloc(sizeof(float) * f.B * f.A), *att = malloc(sizeof(float) * f.B * f.G * f.K * 14);
    float *ent = malloc(sizeof(float) * f.B * f.G);
    ban_input in = vqa_input(&f);
    ban_output out = {logits, att, ent};
    REQUIRE(ban_forward(c, &in, &out) == BAN_OK, "%s", ban_ctx_error(c));
    const int Dv = ban_model_config(f.m)->feature_dim;
    for (int b = 0; b < f.B; b++)
        for (int g = 0; g < f.G; g++) {
            double sum = 0.0, h = 0.0;
            int zero_on_padding = 1;
            for (int k = 0; k < f.K; k++) {
                int padded = 1;
                for (int j = 0; j < Dv; j++) padded &= ((float *)f.v.data)[((size_t)b * f.K + k) * Dv + j] == 0.0f;
                for (int l = 0; l < 14; l++) {
                    float p = att[(((size_t)b * f.G + g) * f.K + k) * 14 + l];
                    sum += p;
                    if (p > 0) h -= p * log(p);
                    if (padded && p != 0.0f) zero_on_padding = 0;
                }
            }
            CHECK(fabs(sum - 1.0) < 1e-5, "example %d glimpse %d: attention sums to %.8f", b, g, sum);
            CHECK(zero_on_padding, "example %d glimpse %d: attention on a padded box", b, g);
            CHECK(fabs(h - ent[b * f.G + g]) < 1e-4, "entropy %g, recomputed %g", ent[b * f.G + g], h);
            CHECK(h > 0.0 && h <= log((double)f.K * 14) + 1e-6, "entropy %g out of range", h);
        }
    free(logits), free(att), free(ent);
    ban_ctx_free(c);
    vqa_close(&f);
}

/* Running the first N glimpses: N = G is the full model, fewer changes the answer scores;
   the attention maps are those of the full model either way. */
static void test_glimpse_option(void)
{
    vqa_fixture f = vqa_open();
    ban_ctx *c = new_ctx(f.m, f.B, f.K, 14, 0);
    float *full = malloc(sizeof(float) * f.B * f.A), *one = malloc(sizeof(float) * f.B * f.A);
    float *att = malloc(sizeof(float) * f.B * f.G * f.K * 14);
    ban_input in = vqa_input(&f);
    in.glimpses = f.G;
    ban_output out = {full, NULL, NULL};
    REQUIRE(ban_forward(c, &in, &out) == BAN_OK, "%s", ban_ctx_error(c));
    CHECK(max_abs_diff(full, f.logits.data, (size_t)f.B * f.A) <= 1e-4f, "glimpses = G is not the full model");
    in.glimpses = 1;
    out.logits = one, out.attention = att;
    REQUIRE(ban_forward(c, &in, &out) == BAN_OK, "%s", ban_ctx_error(c));
    CHECK(max_abs_diff(one, full, (size_t)f.B * f.A) > 1e-3f, "one glimpse gives the full model's logits");
    CHECK(max_abs_diff(att, f.att.data, (size_t)f.B * f.G * f.K * 14) <= 1e-5f, "attention depends on --glimpses");
    in.glimpses = f.G + 1;
    CHECK(ban_forward(c, &in, &out) == BAN_ERR_ARG, "glimpses beyond G accepted");
    free(full), free(one), free(att);
    ban_ctx_free(c);
    vqa_close(&f);
}

/* Questions sharing images: the same outputs as one image per question. */
static void test_shared_images(void)
{
    vqa_fixture f = vqa_open();
    ban_ctx *c = new_ctx(f.m, f.B, f.K, 14, 0);
    const size_t per_img = (size_t)f.K * f.v.shape[2];
    /* every question asked about images 1 and 4 */
    float *v = malloc(sizeof(float) * 2 * per_img), *b = malloc(sizeof(float) * 2 * f.K * 6);
    memcpy(v, (float *)f.v.data + per_img, sizeof(float) * per_img);
    memcpy(v + per_img, (float *)f.v.data + 4 * per_img, sizeof(float) * per_img);
    memcpy(b, (float *)f.b.data + f.K * 6, sizeof(float) * f.K * 6);
    memcpy(b + f.K * 6, (float *)f.b.data + 4 * f.K * 6, sizeof(float) * f.K * 6);
    int index[6] = {0, 1, 1, 0, 1, 0};
    float *shared = malloc(sizeof(float) * f.B * f.A), *alone = malloc(sizeof(float) * f.A);
    float *att = malloc(sizeof(float) * f.B * f.G * f.K * 14), *att1 = malloc(sizeof(float) * f.G * f.K * 14);
    ban_input in = vqa_input(&f);
    in.images = 2, in.image_index = index, in.features = v, in.spatials = b;
    ban_output out = {shared, att, NULL};
    REQUIRE(ban_forward(c, &in, &out) == BAN_OK, "%s", ban_ctx_error(c));
    for (int q = 0; q < f.B; q++) {
        ban_input one = vqa_input(&f);
        one.batch = 1, one.tokens = f.tok + q * f.L;
        one.features = v + index[q] * per_img, one.spatials = b + index[q] * f.K * 6;
        ban_output o1 = {alone, att1, NULL};
        REQUIRE(ban_forward(c, &one, &o1) == BAN_OK, "%s", ban_ctx_error(c));
        float d = max_abs_diff(alone, shared + q * f.A, (size_t)f.A);
        float da = max_abs_diff(att1, att + (size_t)q * f.G * f.K * 14, (size_t)f.G * f.K * 14);
        CHECK(d <= 1e-5f && da <= 1e-6f, "question %d on shared image %d differs by %g (attention %g)", q, index[q],
              d, da);
    }
    int bad_index[6] = {0, 1, 2, 0, 1, 0};
    in.image_index = bad_index;
    CHECK(ban_forward(c, &in, &out) == BAN_ERR_INPUT && strstr(ban_ctx_error(c), "example 2: image index 2"),
          "image index out of range: %s", ban_ctx_error(c));
    in.image_index = NULL;
    CHECK(ban_forward(c, &in, &out) == BAN_ERR_ARG, "images without an index accepted");
    free(v), free(b), free(shared), free(alone), free(att), free(att1);
    ban_ctx_free(c);
    vqa_close(&f);
}

/* ban_forward allocates nothing */
static void test_no_allocation(void)
{
    vqa_fixture f = vqa_open();
    ban_ctx *c = new_ctx(f.m, f.B, f.K, 14, 0);
    float *logits = malloc(sizeof(float) * f.B * f.A), *att = malloc(sizeof(float) * f.B * f.G * f.K * 14);
    ban_input in = vqa_input(&f);
    ban_output out = {logits, att, NULL};
    long before = g_allocs;
    for (int i = 0; i < 3; i++) REQUIRE(ban_forward(c, &in, &out) == BAN_OK, "%s", ban_ctx_error(c));
    int32_t ids[32];
    int n;
    ban_tokenize(c, "What color is the man's shirt?", ids, 32, &n);
    CHECK(g_allocs == before, "the forward pass and tokenizer allocated %ld times", g_allocs - before);
    free(logits), free(att);
    ban_ctx_free(c);
    vqa_close(&f);
}

/* ---- threads ----------------------------------------------------------------------------- */

typedef struct {
    const vqa_fixture *f;
    const float *expect; /* (B, B, A): the single-threaded result of call pattern (start, n) */
    int rounds, mismatches, failures;
} thread_job;

/* call r of every thread: a batch of n examples from `start`, mixing sizes and offsets */
static void call_pattern(const vqa_fixture *f, int r, int *start, int *n)
{
    *start = r % f->B;
    *n = 1 + (r * 7) % (f->B - *start);
}

static int run_pattern(ban_ctx *c, const vqa_fixture *f, int start, int n, float *logits)
{
    ban_input in = vqa_input(f);
    in.batch = n;
    in.features = (const float *)f->v.data + (size_t)start * f->K * f->v.shape[2];
    in.spatials = (const float *)f->b.data + (size_t)start * f->K * 6;
    in.tokens = f->tok + start * f->L;
    ban_output out = {logits, NULL, NULL};
    return ban_forward(c, &in, &out);
}

static void *thread_main(void *arg)
{
    thread_job *job = arg;
    const vqa_fixture *f = job->f;
    ban_ctx *c;
    ban_limits lim = {f->B, f->K, 14, 0, 0};
    if (ban_ctx_create(f->m, &lim, &c) != BAN_OK) {
        job->failures++;
        ban_ctx_free(c);
        return NULL;
    }
    float *logits = malloc(sizeof(float) * f->B * f->A);
    for (int r = 0; r < job->rounds; r++) {
        int start, n;
        call_pattern(f, r, &start, &n);
        if (run_pattern(c, f, start, n, logits) != BAN_OK) job->failures++;
        else if (memcmp(logits, job->expect + ((size_t)start * f->B + n - 1) * f->B * f->A, sizeof(float) * n * f->A))
            job->mismatches++;
    }
    free(logits);
    ban_ctx_free(c);
    return NULL;
}

static void test_threads(void)
{
    vqa_fixture f = vqa_open();
    float *expect = malloc(sizeof(float) * f.B * f.B * f.B * f.A);
    ban_ctx *c = new_ctx(f.m, f.B, f.K, 14, 0);
    for (int start = 0; start < f.B; start++)
        for (int n = 1; start + n <= f.B; n++)
            REQUIRE(run_pattern(c, &f, start, n, expect + ((size_t)start * f.B + n - 1) * f.B * f.A) == BAN_OK, "%s",
                    ban_ctx_error(c));
    ban_ctx_free(c);
    enum { T = 4, ROUNDS = 300 };
    pthread_t th[T];
    thread_job jobs[T];
    for (int t = 0; t < T; t++) {
        jobs[t] = (thread_job){&f, expect, ROUNDS, 0, 0};
        pthread_create(&th[t], NULL, thread_main, &jobs[t]);
    }
    int mism = 0, fails = 0;
    for (int t = 0; t < T; t++) {
        pthread_join(th[t], NULL);
        mism += jobs[t].mismatches, fails += jobs[t].failures;
    }
    CHECK(fails == 0, "%d calls failed", fails);
    CHECK(mism == 0, "%d of %d threaded calls differ from the single-threaded results", mism, T * ROUNDS);
    free(expect);
    vqa_close(&f);
}

/* ---- the packed product ------------------------------------------------------------------- */

static float frand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

/* y = max(0, x W^T + b) through ban.h's own product against a double-precision sum, with
   every kernel this processor runs, 1-3 threads, row and column tails, K past one slice and
   M past one slice of rows; the panels' padding is NaN (never reaches y) and y's columns
   past N keep their sentinel. One kernel gives the same bits whatever the thread count. */
static void test_packed_product(void)
{
    static const int shapes[][3] = {{1, 1, 1},   {1, 33, 7},    {10, 32, 256},  {11, 64, 257}, {37, 95, 300},
                                    {129, 70, 513}, {3, 300, 40}, {37, 200, 600}, {260, 64, 129}};
    unsigned seed = 7;
    char tested[64] = "";
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], P = (N + 31) / 32;
        const int ldx = K + 3, ldy = N + 5;
        float *x = malloc(sizeof(float) * M * ldx), *W = malloc(sizeof(float) * N * K);
        float *Wp = malloc(sizeof(float) * P * K * 32), *b = malloc(sizeof(float) * N);
        float *y = malloc(sizeof(float) * M * ldy), *y1 = malloc(sizeof(float) * M * ldy);
        double *ref = malloc(sizeof(double) * M * N), *mag = malloc(sizeof(double) * M * N);
        for (int i = 0; i < M * ldx; i++) x[i] = frand(&seed);
        for (int i = 0; i < N * K; i++) W[i] = frand(&seed);
        for (int i = 0; i < N; i++) b[i] = frand(&seed);
        for (int p = 0; p < P; p++)
            for (int k = 0; k < K; k++)
                for (int j = 0; j < 32; j++)
                    Wp[((size_t)p * K + k) * 32 + j] = p * 32 + j < N ? W[(size_t)(p * 32 + j) * K + k] : NAN;
        for (int i = 0; i < M; i++)
            for (int n = 0; n < N; n++) {
                double acc = b[n], m = fabs(b[n]);
                for (int k = 0; k < K; k++)
                    acc += (double)x[i * ldx + k] * W[(size_t)n * K + k], m += fabs((double)x[i * ldx + k] * W[(size_t)n * K + k]);
                ref[i * N + n] = acc, mag[i * N + n] = m;
            }
        for (int isa = 0; isa < BAN__N_KERNELS; isa++)
            for (int relu = 0; relu < 2 && ban__kernels[isa].runs(); relu++)
                for (int threads = 1; threads <= 3; threads++) {
                    ban__pool *pool = NULL;
#if BAN__THREADS
                    if (threads > 1) REQUIRE(pool = ban__pool_new(threads - 1), "no threads");
#endif
                    for (int i = 0; i < M * ldy; i++) y[i] = 12345.0f;
                    const ban__pgemm g = {M, N, K, ldx, ldy, relu, &ban__kernels[isa], x, Wp, 32, (size_t)K * 32, b, y};
                    ban__pgemm_run(pool, &g);
                    ban__pool_free(pool);
                    int bad = 0;
                    for (int i = 0; i < M && !bad; i++) {
                        for (int n = 0; n < N && !bad; n++) {
                            const double want = relu && ref[i * N + n] < 0 ? 0.0 : ref[i * N + n];
                            const float got = y[i * ldy + n];
                            if (!(fabs(got - want) <= 1e-6 * mag[i * N + n] + 1e-6)) {
                                CHECK(0, "%dx%dx%d, kernel %s, relu %d, %d threads: y[%d][%d] = %g, want %g", M, N, K,
                                      ban__kernels[isa].name, relu, threads, i, n, got, want);
                                bad = 1;
                            }
                        }
                        for (int n = N; n < ldy && !bad; n++)
                            if (y[i * ldy + n] != 12345.0f) {
                                CHECK(0, "%dx%dx%d, kernel %d: wrote y[%d][%d], past N", M, N, K, isa, i, n);
                                bad = 1;
                            }
                    }
                    if (threads == 1) memcpy(y1, y, sizeof(float) * M * ldy);
                    else CHECK(!memcmp(y, y1, sizeof(float) * M * ldy), "%dx%dx%d, kernel %d: %d threads change bits",
                               M, N, K, isa, threads);
                }
        /* W^T given in rows, V (K, N) = W^T, read in place (row stride N, panel stride 32),
           without a bias: the partial last panel's loads stop at N (V ends the allocation) */
        float *V = malloc(sizeof(float) * K * N);
        for (int k = 0; k < K; k++)
            for (int n = 0; n < N; n++) V[(size_t)k * N + n] = W[(size_t)n * K + k];
        for (int isa = 0; isa < BAN__N_KERNELS; isa++) {
            if (!ban__kernels[isa].runs()) continue;
            if (s == 0) snprintf(tested + strlen(tested), sizeof tested - strlen(tested), " %s", ban__kernels[isa].name);
            for (int i = 0; i < M * ldy; i++) y[i] = 12345.0f;
            const ban__pgemm g = {M, N, K, ldx, ldy, 0, &ban__kernels[isa], x, V, (size_t)N, 32, NULL, y};
            ban__pgemm_run(NULL, &g);
            int bad = 0;
            for (int i = 0; i < M && !bad; i++)
                for (int n = 0; n < ldy && !bad; n++) {
                    const double want = n < N ? ref[i * N + n] - b[n] : 12345.0;
                    if (!(fabs(y[i * ldy + n] - want) <= 1e-6 * mag[i * N + (n < N ? n : 0)] + 1e-6)) {
                        CHECK(0, "%dx%dx%d, kernel %d, W^T in rows: y[%d][%d] = %g, want %g", M, N, K, isa, i, n,
                              y[i * ldy + n], want);
                        bad = 1;
                    }
                }
        }
        free(V);
        free(x), free(W), free(Wp), free(b), free(y), free(y1), free(ref), free(mag);
    }
    printf("# kernels tested:%s\n", tested);
}

/* A context's own threads change no bit of the outputs, and their count is checked */
static void test_context_threads(void)
{
    vqa_fixture f = vqa_open();
    float *l1 = malloc(sizeof(float) * f.B * f.A), *l3 = malloc(sizeof(float) * f.B * f.A);
    ban_input in = vqa_input(&f);
    ban_limits lim = {f.B, f.K, 14, 0, 1};
    ban_ctx *c;
    REQUIRE(ban_ctx_create(f.m, &lim, &c) == BAN_OK, "%s", ban_ctx_error(c));
    ban_output out = {l1, NULL, NULL};
    REQUIRE(ban_forward(c, &in, &out) == BAN_OK, "%s", ban_ctx_error(c));
    ban_ctx_free(c);
    lim.threads = 3;
    REQUIRE(ban_ctx_create(f.m, &lim, &c) == BAN_OK, "%s", ban_ctx_error(c));
    out.logits = l3;
    REQUIRE(ban_forward(c, &in, &out) == BAN_OK, "%s", ban_ctx_error(c));
    ban_ctx_free(c);
    CHECK(!memcmp(l1, l3, sizeof(float) * f.B * f.A), "3 threads give other logits than 1");
    lim.threads = BAN_MAX_THREADS + 1;
    CHECK(ban_ctx_create(f.m, &lim, &c) == BAN_ERR_ARG && strstr(ban_ctx_error(c), "threads outside"), "%s",
          ban_ctx_error(c));
    ban_ctx_free(c);
    lim.threads = -1;
    CHECK(ban_ctx_create(f.m, &lim, &c) == BAN_ERR_ARG, "-1 threads accepted");
    ban_ctx_free(c);
    free(l1), free(l3);
    vqa_close(&f);
}

/* ---- bad input ------------------------------------------------------------------------------ */

static void test_bad_forward_input(void)
{
    vqa_fixture f = vqa_open();
    ban_ctx *c = new_ctx(f.m, 2, f.K, 14, 0);
    float *logits = malloc(sizeof(float) * f.B * f.A);
    ban_input in = vqa_input(&f);
    ban_output out = {logits, NULL, NULL};
    in.batch = 3;
    CHECK(ban_forward(c, &in, &out) == BAN_ERR_ARG && strstr(ban_ctx_error(c), "batch 3"),
          "batch larger than the context: %s", ban_ctx_error(c));
    in.batch = 2;
    in.boxes = f.K + 1;
    CHECK(ban_forward(c, &in, &out) == BAN_ERR_ARG, "more boxes than the context");
    in.boxes = f.K;
    /* a reference model pads questions to 14 positions: a longer question is its first 14
       tokens, whatever the context's max_tokens, up to BAN_MAX_TOKENS */
    {
        const int L2 = f.L + 9;
        int32_t *longer = malloc(sizeof(int32_t) * f.B * L2);
        float *l2 = malloc(sizeof(float) * f.B * f.A);
        for (int b = 0; b < f.B; b++)
            for (int t = 0; t < L2; t++) longer[b * L2 + t] = t < f.L ? f.tok[b * f.L + t] : 5 + t;
        ban_input lin = in;
        ban_output lout = {l2, NULL, NULL};
        lin.tokens_len = L2, lin.tokens = longer;
        CHECK(ban_forward(c, &in, &out) == BAN_OK && ban_forward(c, &lin, &lout) == BAN_OK &&
                  !memcmp(logits, l2, sizeof(float) * f.B * f.A),
              "%d tokens (the context's limit: 14) are not the first 14: %s", L2, ban_ctx_error(c));
        lin.tokens_len = BAN_MAX_TOKENS + 1;
        CHECK(ban_forward(c, &lin, &lout) == BAN_ERR_ARG, "more tokens than BAN_MAX_TOKENS accepted");
        lin.tokens_len = 0;
        CHECK(ban_forward(c, &lin, &lout) == BAN_ERR_ARG && strstr(ban_ctx_error(c), "at least one"),
              "an empty question: %s", ban_ctx_error(c));
        free(longer), free(l2);
    }
    in.tokens_len = f.L;

    int32_t *tok = malloc(sizeof(int32_t) * f.B * f.L);
    memcpy(tok, f.tok, sizeof(int32_t) * f.B * f.L);
    tok[f.L + 3] = 4000;
    in.tokens = tok;
    CHECK(ban_forward(c, &in, &out) == BAN_ERR_INPUT && strstr(ban_ctx_error(c), "example 1, token 3") &&
              strstr(ban_ctx_error(c), "outside the vocabulary"), "token outside the vocabulary: %s", ban_ctx_error(c));
    tok[f.L + 3] = -1;
    CHECK(ban_forward(c, &in, &out) == BAN_ERR_INPUT, "negative token accepted");
    in.tokens = f.tok;

    int zero[2] = {5, 0};
    in.box_counts = zero;
    CHECK(ban_forward(c, &in, &out) == BAN_ERR_INPUT && strstr(ban_ctx_error(c), "example 1 has no boxes"),
          "zero boxes: %s", ban_ctx_error(c));
    int over[2] = {5, f.K + 2};
    in.box_counts = over;
    CHECK(ban_forward(c, &in, &out) == BAN_ERR_INPUT, "box count beyond K accepted");
    in.box_counts = NULL;

    const int Dv = (int)f.v.shape[2];
    float *v = calloc((size_t)2 * f.K * Dv, sizeof(float));
    in.features = v; /* every row zero: padding everywhere */
    CHECK(ban_forward(c, &in, &out) == BAN_ERR_INPUT && strstr(ban_ctx_error(c), "no boxes"),
          "all-zero features: %s", ban_ctx_error(c));
    memcpy(v, f.v.data, sizeof(float) * 2 * f.K * Dv);
    v[f.K * Dv + 5] = NAN;
    CHECK(ban_forward(c, &in, &out) == BAN_ERR_INPUT && strstr(ban_ctx_error(c), "example 1, box 0: feature 5"),
          "NaN feature: %s", ban_ctx_error(c));
    v[f.K * Dv + 5] = INFINITY;
    CHECK(ban_forward(c, &in, &out) == BAN_ERR_INPUT, "infinite feature accepted");
    in.features = f.v.data;
    in.spatials = NULL;
    CHECK(ban_forward(c, &in, &out) == BAN_ERR_ARG && strstr(ban_ctx_error(c), "spatial"),
          "the counter without spatials: %s", ban_ctx_error(c));
    in.spatials = f.b.data;
    out.logits = NULL;
    CHECK(ban_forward(c, &in, &out) == BAN_ERR_ARG, "NULL logits accepted");
    CHECK(ban_forward(c, NULL, &out) == BAN_ERR_ARG, "NULL input accepted");
    out.logits = logits;
    /* still usable after every error */
    CHECK(ban_forward(c, &in, &out) == BAN_OK, "the context fails after errors: %s", ban_ctx_error(c));
    int32_t ids[4];
    int n;
    CHECK(ban_tokenize(c, "bad \xff byte", ids, 4, &n) == BAN_ERR_INPUT && strstr(ban_ctx_error(c), "byte 4"),
          "invalid UTF-8: %s", ban_ctx_error(c));
    CHECK(ban_tokenize(c, "what is the the the the color", ids, 4, &n) == BAN_OK && n == 7,
          "token count beyond max_ids: %d", n);
    free(logits), free(tok), free(v);
    ban_ctx_free(c);

    ban_limits huge = {BAN_MAX_BATCH + 1, 10, 10, 1, 0};
    CHECK(ban_ctx_create(f.m, &huge, &c) == BAN_ERR_ARG, "limits beyond BAN_MAX_BATCH accepted");
    ban_ctx_free(c);
    vqa_close(&f);

    /* grounding: entity positions must fall inside the sentence */
    ban_model *g = open_model("flickr.ban");
    npy_array gv = load("flickr_v.npy"), gq = load("flickr_q.npy");
    int32_t *gt = ints(&gq), ent[2] = {3, 30};
    ban_ctx *gc = new_ctx(g, 1, 20, 30, 2);
    float *gl = malloc(sizeof(float) * 20 * 2);
    ban_input gin;
    memset(&gin, 0, sizeof gin);
    gin.batch = 1, gin.boxes = 20, gin.features = gv.data, gin.tokens_len = 30, gin.tokens = gt;
    gin.entities_len = 2, gin.entities = ent;
    ban_output gout = {gl, NULL, NULL};
    CHECK(ban_forward(gc, &gin, &gout) == BAN_ERR_INPUT && strstr(ban_ctx_error(gc), "entity 1: position 30"),
          "entity beyond the sentence: %s", ban_ctx_error(gc));
    gin.entities = NULL;
    CHECK(ban_forward(gc, &gin, &gout) == BAN_ERR_ARG, "grounding without entities accepted");
    /* a sentence of grounding runs at its own length: no more tokens than the context holds */
    gin.entities = ent, ent[1] = 3, gin.tokens_len = 31;
    CHECK(ban_forward(gc, &gin, &gout) == BAN_ERR_ARG && strstr(ban_ctx_error(gc), "31 tokens"),
          "more tokens than a grounding context: %s", ban_ctx_error(gc));
    free(gt), free(gl);
    npy_free(&gv), npy_free(&gq);
    ban_ctx_free(gc);
    ban_model_free(g);
}

/* Every truncation of the file's head, and thinner samples of the rest, and every byte
   of the header and directory flipped: an error code and message or a valid model,
   never a crash (run under the sanitizers by `make asan`). */
static void test_corrupt_models(void)
{
    size_t size;
    unsigned char *file = read_file(path_of("g2.ban"), &size);
    REQUIRE(file && size > 4096, "cannot read g2.ban");
    size_t dir_end = (size_t)file[32] | (size_t)file[33] << 8 | (size_t)file[34] << 16; /* data offset */
    unsigned char *buf = malloc(size);
    int crashes_avoided = 0, accepted_truncated = 0, silent = 0;
    for (size_t n = 0; n < size; n += n < dir_end + 64 ? 1 : 997) {
        memcpy(buf, file, n);
        ban_model *m;
        int rc = ban_model_load_memory(buf, n, &m);
        if (rc == BAN_OK) accepted_truncated++;
        else if (!m || !strlen(ban_model_error(m))) silent++;
        ban_model_free(m);
        crashes_avoided++;
    }
    CHECK(accepted_truncated == 0, "%d truncated files loaded", accepted_truncated);
    CHECK(silent == 0, "%d failures without a message", silent);
    int flips_ok = 0, flips_err = 0;
    for (size_t i = 0; i < dir_end; i++)
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(buf, file, size);
            buf[i] ^= (unsigned char)(1 << bit);
            ban_model *m;
            int rc = ban_model_load_memory(buf, size, &m);
            if (rc == BAN_OK) {
                flips_ok++;
                /* a model that loads must also run */
                ban_ctx *c;
                if (ban_ctx_create(m, NULL, &c) == BAN_OK) {
                    int32_t ids[16];
                    int n;
                    ban_tokenize(c, "what color is it", ids, 16, &n);
                }
                ban_ctx_free(c);
            } else {
                flips_err++;
                if (!strlen(ban_model_error(m))) silent++;
            }
            ban_model_free(m);
        }
    CHECK(silent == 0, "%d failures without a message", silent);
    CHECK(flips_err > flips_ok, "only %d of %d bit flips in the directory were refused", flips_err, flips_ok + flips_err);
    printf("#   %d truncations refused, %d directory bit flips refused, %d harmless (inside strings)\n",
           crashes_avoided, flips_err, flips_ok);

    /* specific errors */
    ban_model *m;
    memcpy(buf, file, size);
    buf[4] = 2;
    CHECK(ban_model_load_memory(buf, size, &m) == BAN_ERR_UNSUPPORTED && strstr(ban_model_error(m), "version 2"),
          "future version: %s", ban_model_error(m));
    ban_model_free(m);
    memcpy(buf, file, size);
    buf[0] = 'X';
    CHECK(ban_model_load_memory(buf, size, &m) == BAN_ERR_FORMAT && strstr(ban_model_error(m), "magic"),
          "bad magic: %s", ban_model_error(m));
    ban_model_free(m);
    memcpy(buf, file, size);
    buf[16 + 7] = 0x7f; /* metadata count near 2^63 */
    CHECK(ban_model_load_memory(buf, size, &m) == BAN_ERR_FORMAT && strstr(ban_model_error(m), "cannot fit"),
          "huge metadata count: %s", ban_model_error(m));
    ban_model_free(m);
    CHECK(ban_model_load_memory(file + 1, size - 1, &m) != BAN_OK, "shifted buffer accepted");
    ban_model_free(m);
    CHECK(ban_model_load(path_of("does-not-exist.ban"), &m) == BAN_ERR_IO && strstr(ban_model_error(m), "cannot open"),
          "missing file: %s", ban_model_error(m));
    ban_model_free(m);
    /* misaligned memory: refused with a message, not a misaligned read */
    unsigned char *odd = malloc(size + 1);
    memcpy(odd + 1, file, size);
    int rc = ban_model_load_memory(odd + 1, size, &m);
    CHECK(rc == BAN_ERR_ARG && strstr(ban_model_error(m), "aligned"), "misaligned buffer: %s", ban_model_error(m));
    ban_model_free(m);
    free(odd), free(buf), free(file);
}

static void test_model_info(void)
{
    ban_model *m = open_model("g2.ban");
    const ban_config *c = ban_model_config(m);
    CHECK(c->task == BAN_TASK_VQA && c->vocab_size == 48 && c->feature_dim == 40 && c->hidden_dim == 48 &&
              c->num_glimpses == 2 && c->num_answers == 30 && c->embedding_tables == 2 && c->counter_objects == 10 &&
              c->question_length == 14 && !c->question_masking && c->zero_row_padding && c->attention_rank == 3,
          "configuration of g2.ban");
    /* the reference counts 158,645 parameters, 13 of them weight-norm gains folded by the exporter */
    CHECK(ban_model_parameter_count(m) == 158645 - 13, "%zu parameters", ban_model_parameter_count(m));
    CHECK(!strcmp(ban_model_answer(m, 0), "yes") && !strcmp(ban_model_answer(m, 29), "skiing") &&
              !ban_model_answer(m, 30) && !ban_model_answer(m, -1), "answer strings");
    CHECK(!strcmp(ban_model_word(m, 47), "sport") && !ban_model_word(m, 48), "vocabulary strings");
    int64_t epoch;
    CHECK(ban_model_meta_int(m, "source.epoch", &epoch) && epoch == 12, "source.epoch");
    CHECK(ban_question_positions(m, 5) == 14, "reference models run 14 positions");
    ban_model_free(m);
}

/* Misuse is an error, never a crash: NULL for every pointer of every entry point, and a model
   and a context whose creation failed given to every call but error and free */
static void test_misuse(void)
{
    ban_model *m = NULL, *bad = NULL;
    ban_ctx *c = NULL, *failed = NULL;
    int32_t ids[8];
    ban_token_info info[8];
    int n = 5;
    int64_t v;
    float x[4] = {0, 3, 1, 2}, logits[64];
    unsigned char px[12] = {0};
    ban_input in;
    ban_output out = {logits, NULL, NULL};
    ban_tensor_info ti;
    memset(&in, 0, sizeof in);
    CHECK(ban_model_load(NULL, &m) == BAN_ERR_ARG && m && strstr(ban_model_error(m), "NULL"), "NULL path");
    ban_model_free(m);
    CHECK(ban_model_load(path_of("g2.ban"), NULL) == BAN_ERR_ARG, "NULL model pointer");
    CHECK(ban_model_load_memory(NULL, 100, &m) == BAN_ERR_ARG, "NULL buffer");
    ban_model_free(m);
    CHECK(ban_model_load_memory(x, sizeof x, NULL) == BAN_ERR_ARG, "NULL model pointer (memory)");
    CHECK(ban_model_load("/nonexistent/m.ban", &bad) == BAN_ERR_IO && bad, "a model that does not load");
    ban_model_free(NULL), ban_ctx_free(NULL);
    CHECK(strlen(ban_model_error(NULL)) && strlen(ban_ctx_error(NULL)), "errors of NULL objects");
    const ban_model *models[] = {NULL, bad};
    for (int i = 0; i < 2; i++) {
        const ban_model *b = models[i];
        CHECK(!ban_model_config(b) && !ban_model_parameter_count(b) && !ban_model_answer(b, 0) &&
                  !ban_model_word(b, 0) && !ban_model_meta_string(b, "ban.task") && !ban_model_meta_int(b, "x", &v) &&
                  !ban_model_tensor_count(b) && ban_model_tensor(b, 0, &ti) == BAN_ERR_ARG &&
                  !ban_question_positions(b, 14),
              "the getters of a %s model", i ? "failed" : "NULL");
        CHECK(ban_ctx_create(b, NULL, &failed) == BAN_ERR_ARG && failed, "a context of a %s model",
              i ? "failed" : "NULL");
        if (i) CHECK(strstr(ban_ctx_error(failed), "did not load") && strstr(ban_ctx_error(failed), "nonexistent"),
                     "the failed model's context says why: %s", ban_ctx_error(failed));
        ban_ctx_free(failed);
    }
    ban_model_free(bad);
    m = open_model("g2.ban");
    CHECK(!ban_model_meta_string(m, NULL) && !ban_model_meta_int(m, NULL, &v) && !ban_model_meta_int(m, "ban.task", NULL),
          "NULL keys and values");
    CHECK(ban_model_tensor(m, -1, &ti) == BAN_ERR_ARG && ban_model_tensor(m, ban_model_tensor_count(m), &ti) ==
              BAN_ERR_ARG && ban_model_tensor(m, 0, NULL) == BAN_ERR_ARG, "tensor index and info");
    int specs = 0;
    CHECK(ban_weight_specs(NULL) && ban_weight_specs(&specs) && specs > 10, "the weight table");
    CHECK(ban_ctx_create(m, NULL, NULL) == BAN_ERR_ARG, "NULL context pointer");
    ban_limits lim = {BAN_MAX_BATCH + 1, 0, 0, 0, 0};
    CHECK(ban_ctx_create(m, &lim, &failed) == BAN_ERR_ARG && failed, "bad limits");
    ban_ctx *ctxs[] = {NULL, failed};
    for (int i = 0; i < 2; i++) {
        ban_ctx *b = ctxs[i];
        const char *before = b ? ban_ctx_error(b) : "";
        char kept[512];
        snprintf(kept, sizeof kept, "%s", before);
        CHECK(!ban_ctx_limits(b) && !ban_ctx_kernel(b), "the getters of a %s context", i ? "failed" : "NULL");
        CHECK(ban_tokenize(b, "what", ids, 8, &n) == BAN_ERR_ARG && n == 0, "ban_tokenize on a %s context",
              i ? "failed" : "NULL");
        CHECK(ban_tokenize_info(b, "what", ids, info, 8, &n) == BAN_ERR_ARG, "ban_tokenize_info, %s", i ? "failed" : "NULL");
        CHECK(ban_forward(b, &in, &out) == BAN_ERR_ARG, "ban_forward on a %s context", i ? "failed" : "NULL");
        CHECK(ban_encode(b, px, 1, logits, NULL) == BAN_ERR_ARG, "ban_encode on a %s context", i ? "failed" : "NULL");
        if (b) CHECK(!strcmp(kept, ban_ctx_error(b)), "a failed context's message changed: %s", ban_ctx_error(b));
    }
    ban_ctx_free(failed);
    c = new_ctx(m, 1, 10, 14, 0);
    CHECK(ban_tokenize(c, NULL, ids, 8, &n) == BAN_ERR_ARG && ban_tokenize(c, "a", NULL, 8, &n) == BAN_ERR_ARG &&
              ban_tokenize(c, "a", ids, 8, NULL) == BAN_ERR_ARG && ban_tokenize(c, "a", ids, -1, &n) == BAN_ERR_ARG,
          "NULL tokenizer arguments");
    CHECK(ban_tokenize_info(c, "a", ids, NULL, 8, &n) == BAN_ERR_ARG, "NULL token info");
    CHECK(ban_forward(c, NULL, &out) == BAN_ERR_ARG && ban_forward(c, &in, NULL) == BAN_ERR_ARG &&
              ban_forward(c, &in, &out) == BAN_ERR_ARG, "NULL or empty forward arguments");
    CHECK(ban_encode(c, NULL, 1, logits, NULL) == BAN_ERR_UNSUPPORTED, "ban_encode without an encoder");
    CHECK(ban_argmax(NULL, 3) == -1 && ban_argmax(x, 0) == -1 && ban_argmax(x, 4) == 1, "ban_argmax");
    CHECK(strlen(ban_status_string(99)) && strlen(ban_kernels_available()), "status strings, kernels");
    ban_ctx_free(c);
    ban_model_free(m);
}

/* A question needs a word the vocabulary knows; every token says where it was read and
   whether the vocabulary has it */
static void test_tokenize_info(void)
{
    ban_model *m = open_model("g2.ban");
    ban_ctx *c = new_ctx(m, 1, 10, 14, 0);
    int32_t ids[16];
    ban_token_info info[16];
    int n = -1;
    const char *words[2] = {ban_model_word(m, 0), ban_model_word(m, 1)};
    char q[256];
    snprintf(q, sizeof q, "  %s, zzqx?\t%s's", words[0], words[1]);
    CHECK(ban_tokenize_info(c, q, ids, info, 16, &n) == BAN_OK && n == 4, "%s: %d tokens, %s", q, n, ban_ctx_error(c));
    if (n == 4) {
        CHECK(ids[0] == 0 && info[0].known && info[0].start == 2 && info[0].end == 2 + (int)strlen(words[0]),
              "token 0: id %d, bytes %d..%d", ids[0], info[0].start, info[0].end);
        CHECK(!info[1].known && ids[1] == ban_model_config(m)->unknown_id &&
                  !strncmp(q + info[1].start, "zzqx", (size_t)(info[1].end - info[1].start)),
              "token 1 (unknown): %d..%d", info[1].start, info[1].end);
        CHECK(info[2].known && ids[2] == 1, "token 2");
        CHECK(q[info[3].start] == '\'' && info[3].end == (int)strlen(q), "token 3 ('s): %d..%d", info[3].start,
              info[3].end);
    }
    int32_t plain[16];
    int np = 0;
    CHECK(ban_tokenize(c, q, plain, 16, &np) == BAN_OK && np == n && !memcmp(plain, ids, sizeof(int32_t) * n),
          "ban_tokenize and ban_tokenize_info give other ids");
    CHECK(ban_tokenize_info(c, " \t ", ids, info, 16, &n) == BAN_ERR_INPUT && n == 0 &&
              strstr(ban_ctx_error(c), "empty"), "an empty question: %s", ban_ctx_error(c));
    CHECK(ban_tokenize_info(c, "zzqx qqzz", ids, info, 16, &n) == BAN_ERR_INPUT && n == 2 &&
              strstr(ban_ctx_error(c), "vocabulary"), "no known word: %s", ban_ctx_error(c));
    CHECK(ban_tokenize(c, "zzqx qqzz", ids, 16, &n) == BAN_OK && n == 2, "ban_tokenize refuses unknown words");
    ban_ctx_free(c);
    ban_model_free(m);
}

/* ban_config_tensor lists what a file of that configuration holds, in either layout; and
   ban_ctx_record logs the forward pass's products */
static void test_config_tensors_and_products(void)
{
    const char *files[] = {"g2.ban", "g2_rows.ban", "flickr.ban"};
    for (int f = 0; f < 3; f++) {
        ban_model *m = open_model(files[f]);
        const ban_config *cf = ban_model_config(m);
        ban_tensor_info listed, stored;
        int n = 0, same = 1;
        while (ban_config_tensor(cf, cf->panel_weights > 0, n, &listed) == BAN_OK) n++;
        CHECK(n == ban_model_tensor_count(m), "%s: %d tensors listed, %d in the file", files[f], n,
              ban_model_tensor_count(m));
        for (int i = 0; i < n && i < ban_model_tensor_count(m); i++) {
            int found = 0;
            ban_config_tensor(cf, cf->panel_weights > 0, i, &listed);
            for (int j = 0; j < ban_model_tensor_count(m) && !found; j++) {
                ban_model_tensor(m, j, &stored);
                found = !strcmp(stored.name, listed.name) && stored.ndim == listed.ndim &&
                        !memcmp(stored.dims, listed.dims, sizeof(uint64_t) * listed.ndim) &&
                        stored.spec == listed.spec && stored.is_bias == listed.is_bias &&
                        !strcmp(stored.layout, listed.layout);
            }
            if (!found) {
                same = 0;
                CHECK(0, "%s: listed tensor %s is not in the file as listed", files[f], listed.name);
            }
        }
        CHECK(same, "%s", files[f]);
        ban_model_free(m);
    }
    vqa_fixture f = vqa_open();
    ban_ctx *c = new_ctx(f.m, f.B, f.K, 14, 0);
    float *logits = malloc(sizeof(float) * f.B * f.A);
    ban_input in = vqa_input(&f);
    ban_output out = {logits, NULL, NULL};
    ban_product log[64];
    int n = -1;
    const ban_config *cf = ban_model_config(f.m);
    const int D = cf->hidden_dim, P = 14;
    CHECK(ban_ctx_record(c, log, 64, &n) == BAN_OK && ban_forward(c, &in, &out) == BAN_OK && n > 8 && n <= 64,
          "recorded %d products", n);
    if (n > 8) {
        CHECK(log[0].m == f.B * P && log[0].n == 3 * D && log[0].k == cf->embedding_dim * cf->embedding_tables &&
                  log[0].count == 1 && log[0].trans_w, "first product: the GRU's input gates (%d, %d, %d)", log[0].m,
              log[0].n, log[0].k);
        CHECK(log[1].m == f.B && log[1].n == 3 * D && log[1].k == D && log[1].count == P - 1,
              "then %d hidden steps (%d, %d, %d)", log[1].count, log[1].m, log[1].n, log[1].k);
        CHECK(log[n - 1].m == f.B && log[n - 1].n == f.A, "last: the classifier's output");
    }
    const int first = n;
    CHECK(ban_forward(c, &in, &out) == BAN_OK && n == 2 * first, "a second pass: %d entries after %d", n, first);
    CHECK(ban_ctx_record(c, NULL, 0, NULL) == BAN_OK && ban_forward(c, &in, &out) == BAN_OK, "stop recording");
    free(logits);
    ban_ctx_free(c);
    vqa_close(&f);
}

/* OpenVQA's models (exported from tests/fixtures/openvqa) through the API: the golden
   outputs, and the same bits for 1, 2 and 3 of a context's threads and for one example a call */
static void test_openvqa_models(void)
{
    const char *cases[] = {"ovqa_vqa", "ovqa_gqa"};
    for (int c = 0; c < 2; c++) {
        char name[64];
        snprintf(name, sizeof name, "%s.ban", cases[c]);
        ban_model *m = open_model(name);
        npy_array arr[6];
        const char *keys[] = {"v", "b", "q", "logits", "att", "box_counts"};
        for (int k = 0; k < 6; k++) snprintf(name, sizeof name, "%s_%s.npy", cases[c], keys[k]), arr[k] = load(name);
        int32_t *tok = ints(&arr[2]), *counts = ints(&arr[5]);
        const int B = (int)arr[0].shape[0], K = (int)arr[0].shape[1], L = (int)arr[2].shape[1];
        const int A = ban_model_config(m)->num_answers, G = ban_model_config(m)->num_glimpses;
        int nb[16];
        for (int b = 0; b < B; b++) nb[b] = counts[b];
        float *first = malloc(sizeof(float) * B * A), *logits = malloc(sizeof(float) * B * A);
        float *att = malloc(sizeof(float) * B * G * K * L);
        for (int threads = 1; threads <= 3; threads++) {
            ban_limits lim = {B, K, L, 0, threads};
            ban_ctx *ctx;
            REQUIRE(ban_ctx_create(m, &lim, &ctx) == BAN_OK, "%s", ban_ctx_error(ctx));
            ban_input in;
            memset(&in, 0, sizeof in);
            in.batch = B, in.boxes = K, in.features = arr[0].data, in.spatials = arr[1].data, in.box_counts = nb;
            in.tokens_len = L, in.tokens = tok;
            ban_output out = {logits, att, NULL};
            CHECK(ban_forward(ctx, &in, &out) == BAN_OK, "%s: %s", cases[c], ban_ctx_error(ctx));
            CHECK(max_abs_diff(logits, arr[3].data, (size_t)B * A) < 1e-4f &&
                      max_abs_diff(att, arr[4].data, (size_t)B * G * K * L) < 1e-5f,
                  "%s, %d threads: logits %g, attention %g from the golden", cases[c], threads,
                  max_abs_diff(logits, arr[3].data, (size_t)B * A), max_abs_diff(att, arr[4].data, (size_t)B * G * K * L));
            if (threads == 1) memcpy(first, logits, sizeof(float) * B * A);
            else CHECK(!memcmp(first, logits, sizeof(float) * B * A), "%s: %d threads change bits", cases[c], threads);
            /* one example a call, with its image alone: the same bits as in the batch */
            for (int b = 0; b < B && threads == 2; b++) {
                ban_input one = in;
                one.batch = 1, one.features = (const float *)arr[0].data + (size_t)b * K * arr[0].shape[2];
                one.spatials = (const float *)arr[1].data + (size_t)b * K * 6, one.box_counts = nb + b;
                one.tokens = tok + (size_t)b * L;
                ban_output o1 = {logits + (size_t)b * A, NULL, NULL};
                CHECK(ban_forward(ctx, &one, &o1) == BAN_OK, "%s", ban_ctx_error(ctx));
            }
            if (threads == 2)
                CHECK(!memcmp(first, logits, sizeof(float) * B * A), "%s: one example a call changes bits", cases[c]);
            ban_ctx_free(ctx);
        }
        free(first), free(logits), free(att), free(tok), free(counts);
        for (int k = 0; k < 6; k++) npy_free(&arr[k]);
        ban_model_free(m);
    }
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {        {"golden VQA fixture (zip and legacy exports)", test_golden_vqa},
        {"golden grounding fixture, with and without counts", test_golden_grounding},
        {"tokenizer reproduces the fixture's token ids", test_tokenizer_golden},
        {"padded boxes and tokens never change the outputs", test_padding_invariance},
        {"attention sums to 1 over real pairs, 0 on padding; entropy", test_attention_sums},
        {"first-N-glimpses option", test_glimpse_option},
        {"questions sharing images match one image per question", test_shared_images},
        {"forward pass allocates nothing", test_no_allocation},
        {"one model, four threads, identical results", test_threads},
        {"packed product: every kernel, tails, threads, against double sums", test_packed_product},
        {"a context's own threads change no bit; their count is checked", test_context_threads},
        {"bad forward input gets codes and messages", test_bad_forward_input},
        {"truncated and corrupted model files are refused", test_corrupt_models},
        {"model configuration, strings and metadata", test_model_info},
        {"misuse of every entry point is an error, never a crash", test_misuse},
        {"ban_tokenize_info: spans, known words, empty and unknown questions", test_tokenize_info},
        {"ban_config_tensor lists a file's tensors; ban_ctx_record logs the products", test_config_tensors_and_products},
        {"OpenVQA's models: golden outputs, the same bits for any thread count and batch", test_openvqa_models},
    };
    test_fixture_dir(argc, argv);
    return run_tests(tests, (int)(sizeof tests / sizeof tests[0]));
}
