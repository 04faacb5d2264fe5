/* test_threads.c - one model, many threads. TAP output ("ok N - name").

   build/test_threads [FIXTURE_DIR [ROUNDS]]   (default: the fixtures next to the binary,
                                               500 calls per thread)

   A pool of mixed calls on the golden models - VQA with varying batch, boxes, question
   length, box and token counts, shared images, the glimpse option, attention and entropy;
   grounding with varying batch and counts; the tokenizer; and calls that must fail - is
   run once on one thread. Then THREADS threads, each with its own contexts (created
   concurrently), make ROUNDS calls each from the pool on the same two models, in
   different orders, and every status, message and output must equal the single-threaded
   one bit for bit. `make tsan` runs this under ThreadSanitizer. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAN_IMPLEMENTATION
#include "../ban.h"
#include "test_util.h"

enum { THREADS = 6, POOL = 240, OUT_MAX = 8192, TOK_MAX = 64 };


/* ---- the two models and their inputs ------------------------------------------------- */

enum { VQA_B = 6, VQA_K = 24, VQA_DV = 40, VQA_L = 14, VQA_LMAX = 20, FL_B = 4, FL_K = 20, FL_DV = 32, FL_L = 30,
       FL_E = 16 };
static const int g_box_variants[3] = {24, 16, 7}; /* the first K boxes of each image */
static const int g_len_variants[4] = {14, 4, 9, 20}; /* questions cut or padded to L tokens */

static struct {
    ban_model *vqa, *flickr;
    float *v[3], *b[3];    /* (B, K, Dv), (B, K, 6) for each box variant */
    int32_t *q[4];         /* (B, L) for each length variant */
    npy_array fv, fb;
    int32_t *fq, *fe;
    int fl_box_counts[FL_B], fl_entity_counts[FL_B], vqa_box_counts[VQA_B];
} g;

static const char *g_texts[] = {
    "What color is the man's shirt?", "How many people are there in the picture?", "Is it sunny outside?",
    "what is on the table", "ΟΔΥΣΣΕΥΣ ΣΟΦΟΣ", "İSTANBUL straße it's the dog's", "", "bad \xff byte",
};
enum { N_TEXTS = sizeof g_texts / sizeof g_texts[0] };

static void open_fixtures(void)
{
    g.vqa = open_model("g2.ban");
    g.flickr = open_model("flickr.ban");
    npy_array v = load("g2_v.npy"), b = load("g2_b.npy"), q = load("g2_q.npy"), n = load("g2_box_counts.npy");
    int32_t *tok = ints(&q), *counts = ints(&n);
    for (int i = 0; i < VQA_B; i++) g.vqa_box_counts[i] = counts[i];
    for (int s = 0; s < 3; s++) {
        const int K = g_box_variants[s];
        g.v[s] = malloc(sizeof(float) * VQA_B * K * VQA_DV);
        g.b[s] = malloc(sizeof(float) * VQA_B * K * 6);
        for (int i = 0; i < VQA_B; i++) {
            memcpy(g.v[s] + (size_t)i * K * VQA_DV, (float *)v.data + (size_t)i * VQA_K * VQA_DV,
                   sizeof(float) * K * VQA_DV);
            memcpy(g.b[s] + (size_t)i * K * 6, (float *)b.data + (size_t)i * VQA_K * 6, sizeof(float) * K * 6);
        }
    }
    const int pad = ban_model_config(g.vqa)->padding_id;
    for (int s = 0; s < 4; s++) {
        const int L = g_len_variants[s];
        g.q[s] = malloc(sizeof(int32_t) * VQA_B * L);
        for (int i = 0; i < VQA_B; i++)
            for (int t = 0; t < L; t++) g.q[s][i * L + t] = t < VQA_L ? tok[i * VQA_L + t] : pad;
    }
    npy_free(&v), npy_free(&b), npy_free(&q), npy_free(&n);
    free(tok), free(counts);

    g.fv = load("flickr_v.npy"), g.fb = load("flickr_b.npy");
    npy_array fq = load("flickr_q.npy"), fe = load("flickr_e.npy"), fbc = load("flickr_box_counts.npy"),
              fec = load("flickr_entity_counts.npy");
    g.fq = ints(&fq), g.fe = ints(&fe);
    int32_t *bc = ints(&fbc), *ec = ints(&fec);
    for (int i = 0; i < FL_B; i++) g.fl_box_counts[i] = bc[i], g.fl_entity_counts[i] = ec[i];
    npy_free(&fq), npy_free(&fe), npy_free(&fbc), npy_free(&fec);
    free(bc), free(ec);
}

static void close_fixtures(void)
{
    for (int s = 0; s < 3; s++) free(g.v[s]), free(g.b[s]);
    for (int s = 0; s < 4; s++) free(g.q[s]);
    npy_free(&g.fv), npy_free(&g.fb);
    free(g.fq), free(g.fe);
    ban_model_free(g.vqa);
    ban_model_free(g.flickr);
}

/* ---- calls ------------------------------------------------------------------------------ */

enum { CALL_VQA, CALL_GROUNDING, CALL_TOKENIZE };

typedef struct {
    int kind;
    int start, batch;   /* examples start..start+batch-1 */
    int boxes;          /* index into g_box_variants */
    int len;            /* index into g_len_variants */
    int box_counts, token_counts, shared, glimpses, maps;
    int text;           /* tokenize: index into g_texts */
} call;

typedef struct {
    int status;
    char error[512];
    int n;              /* floats in out, or tokens */
    float out[OUT_MAX];
    int32_t ids[TOK_MAX];
} result;

static call make_call(unsigned i)
{
    unsigned h = i * 2654435761u;
    call c;
    memset(&c, 0, sizeof c);
    c.kind = i % 5 < 3 ? CALL_VQA : i % 5 == 3 ? CALL_GROUNDING : CALL_TOKENIZE;
    const int B = c.kind == CALL_GROUNDING ? FL_B : VQA_B;
    c.start = (int)((h >> 3) % B);
    c.batch = 1 + (int)((h >> 7) % (unsigned)(B - c.start));
    c.boxes = (int)((h >> 11) % 3);
    c.len = (int)((h >> 13) % 4);
    c.box_counts = (h >> 16) & 1;
    c.token_counts = (h >> 17) & 1;
    c.shared = ((h >> 18) & 3) == 0;
    c.glimpses = (int)((h >> 20) % 3);
    c.maps = (h >> 22) & 1;
    c.text = (int)((h >> 23) % N_TEXTS);
    if (i % 37 == 0) c.glimpses = 3; /* beyond the model's 2: must fail the same way everywhere */
    return c;
}

static void run_call(ban_ctx *vqa_ctx, ban_ctx *fl_ctx, const call *c, result *r)
{
    ban_input in;
    ban_output out;
    memset(&in, 0, sizeof in);
    memset(&out, 0, sizeof out);
    memset(r, 0, sizeof *r);
    if (c->kind == CALL_TOKENIZE) {
        r->status = ban_tokenize(vqa_ctx, g_texts[c->text], r->ids, TOK_MAX, &r->n);
        if (r->status) snprintf(r->error, sizeof r->error, "%s", ban_ctx_error(vqa_ctx));
        return;
    }
    int counts[VQA_B], tcounts[VQA_B], index[VQA_B];
    if (c->kind == CALL_VQA) {
        const int K = g_box_variants[c->boxes], L = g_len_variants[c->len];
        const ban_config *cf = ban_model_config(g.vqa);
        const int G = cf->num_glimpses, A = cf->num_answers, P = ban_question_positions(g.vqa, L);
        in.batch = c->batch, in.boxes = K, in.tokens_len = L;
        in.features = g.v[c->boxes] + (size_t)c->start * K * VQA_DV;
        in.spatials = g.b[c->boxes] + (size_t)c->start * K * 6;
        in.tokens = g.q[c->len] + (size_t)c->start * L;
        for (int i = 0; i < c->batch; i++) {
            const int n = g.vqa_box_counts[c->start + i];
            counts[i] = n < K ? n : K;
            tcounts[i] = 0;
            while (tcounts[i] < L && in.tokens[i * L + tcounts[i]] != cf->padding_id) tcounts[i]++;
            index[i] = (i * 5) % 2; /* questions asking about the first two images */
        }
        if (c->box_counts) in.box_counts = counts;
        if (c->token_counts) in.token_counts = tcounts;
        if (c->shared && c->batch >= 2) in.images = 2, in.image_index = index;
        in.glimpses = c->glimpses;
        out.logits = r->out;
        r->n = c->batch * A;
        if (c->maps) {
            out.attention = r->out + r->n;
            r->n += c->batch * G * K * P;
            out.entropy = r->out + r->n;
            r->n += c->batch * G;
        }
        r->status = ban_forward(vqa_ctx, &in, &out);
        if (r->status) snprintf(r->error, sizeof r->error, "%s", ban_ctx_error(vqa_ctx));
    } else {
        const int G = ban_model_config(g.flickr)->num_glimpses;
        in.batch = c->batch, in.boxes = FL_K, in.tokens_len = FL_L, in.entities_len = FL_E;
        in.features = (const float *)g.fv.data + (size_t)c->start * FL_K * FL_DV;
        in.spatials = (const float *)g.fb.data + (size_t)c->start * FL_K * 6;
        in.tokens = g.fq + (size_t)c->start * FL_L;
        in.entities = g.fe + (size_t)c->start * FL_E;
        if (c->box_counts) in.box_counts = g.fl_box_counts + c->start;
        if (c->token_counts) in.entity_counts = g.fl_entity_counts + c->start;
        out.logits = r->out;
        r->n = c->batch * G * FL_K * FL_E;
        r->status = ban_forward(fl_ctx, &in, &out);
        if (r->status) snprintf(r->error, sizeof r->error, "%s", ban_ctx_error(fl_ctx));
    }
}

static int same_result(const result *a, const result *b)
{
    if (a->status != b->status || strcmp(a->error, b->error) || a->n != b->n) return 0;
    if (a->status) return 1;
    return !memcmp(a->out, b->out, sizeof(float) * (size_t)a->n) && !memcmp(a->ids, b->ids, sizeof a->ids);
}

static int new_contexts(ban_ctx **vqa_ctx, ban_ctx **fl_ctx)
{
    ban_limits lv = {VQA_B, VQA_K, VQA_LMAX, 0, 0}, lf = {FL_B, FL_K, FL_L, FL_E, 0};
    int rc = ban_ctx_create(g.vqa, &lv, vqa_ctx);
    if (rc == BAN_OK) rc = ban_ctx_create(g.flickr, &lf, fl_ctx);
    else *fl_ctx = NULL;
    return rc;
}

/* ---- the tests --------------------------------------------------------------------------- */

static call g_pool[POOL];
static result *g_expect;
static int g_rounds = 500;

static void test_pool_single_threaded(void)
{
    ban_ctx *cv, *cf;
    int kinds[3] = {0, 0, 0}, failures = 0;
    if (new_contexts(&cv, &cf) != BAN_OK) {
        printf("Bail out! cannot create contexts\n");
        exit(1);
    }
    g_expect = malloc(sizeof(result) * POOL);
    for (int i = 0; i < POOL; i++) {
        g_pool[i] = make_call((unsigned)i);
        run_call(cv, cf, &g_pool[i], &g_expect[i]);
        kinds[g_pool[i].kind]++;
        failures += g_expect[i].status != BAN_OK;
    }
    /* the same call twice on one context: the baseline is itself reproducible */
    result *again = malloc(sizeof *again);
    int differ = 0;
    for (int i = 0; i < POOL; i += 7) {
        run_call(cv, cf, &g_pool[i], again);
        differ += !same_result(again, &g_expect[i]);
    }
    free(again);
    CHECK(differ == 0, "%d calls differ when repeated on one thread", differ);
    CHECK(failures > 0 && failures < POOL / 4, "%d of %d calls failed (some should, few)", failures, POOL);
    printf("#   pool: %d VQA, %d grounding, %d tokenizer calls; %d must fail\n", kinds[0], kinds[1], kinds[2], failures);
    ban_ctx_free(cv);
    ban_ctx_free(cf);
}

typedef struct {
    int id, calls, mismatches, failures;
    int first_bad;
} job;

static void *worker(void *arg)
{
    job *j = arg;
    ban_ctx *cv, *cf;
    j->first_bad = -1;
    if (new_contexts(&cv, &cf) != BAN_OK) {
        j->failures++;
        ban_ctx_free(cv);
        ban_ctx_free(cf);
        return NULL;
    }
    result *r = malloc(sizeof *r);
    for (int k = 0; k < g_rounds; k++) {
        /* every thread walks the pool in its own order */
        const int i = (int)(((unsigned)j->id * 7919u + (unsigned)k * (13u + 2u * (unsigned)j->id)) % POOL);
        run_call(cv, cf, &g_pool[i], r);
        j->calls++;
        if (!same_result(r, &g_expect[i])) {
            j->mismatches++;
            if (j->first_bad < 0) j->first_bad = i;
        }
    }
    free(r);
    ban_ctx_free(cv);
    ban_ctx_free(cf);
    return NULL;
}

static void test_threads(void)
{
    pthread_t th[THREADS];
    job jobs[THREADS];
    for (int t = 0; t < THREADS; t++) {
        memset(&jobs[t], 0, sizeof jobs[t]);
        jobs[t].id = t;
        CHECK(pthread_create(&th[t], NULL, worker, &jobs[t]) == 0, "pthread_create");
    }
    int calls = 0, mism = 0, fails = 0, first = -1;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        calls += jobs[t].calls, mism += jobs[t].mismatches, fails += jobs[t].failures;
        if (first < 0) first = jobs[t].first_bad;
    }
    CHECK(fails == 0, "%d threads could not create their contexts", fails);
    CHECK(mism == 0, "%d of %d calls differ from the single-threaded run (first: pool call %d)", mism, calls, first);
    CHECK(calls == THREADS * g_rounds, "%d calls made", calls);
    printf("#   %d threads, %d calls, %d differences\n", THREADS, calls, mism);
}

int main(int argc, char **argv)
{
    test_fixture_dir(argc, argv);
    if (argc > 2) g_rounds = atoi(argv[2]);
    if (g_rounds < 1) g_rounds = 1;
    open_fixtures();
    printf("1..2\n");
    g_test_failed = 0;
    test_pool_single_threaded();
    printf("%s 1 - %d mixed calls on one thread, reproducible\n", g_test_failed ? "not ok" : "ok", POOL);
    int failed = g_test_failed;
    g_test_failed = 0;
    test_threads();
    printf("%s 2 - one model per task, %d threads with their own contexts, identical to one thread\n",
           g_test_failed ? "not ok" : "ok", THREADS);
    failed += g_test_failed;
    free(g_expect);
    close_fixtures();
    return failed ? 1 : 0;
}
