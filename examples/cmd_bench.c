/* ban bench: the speed of ban.h on a model of the paper's size, next to the machine's own sgemm.

   ban bench --preset paper-ban8 [--batch B] [--threads T] [--boxes K] [--runs N] [--json] [--layout panels|rows]
   ban bench --preset paper-flickr [--threads T] [--json]

   The model is built here with random weights as a .ban file (a temporary file, mapped by
   ban_model_load like any model: its load time is reported), so no download is needed.
   paper-ban8: the paper's VQA configuration (hidden 1280, 8 glimpses, 2048-d features, 100
   boxes, 14 tokens, 3,129 answers, two 300-d embeddings, counter), its big weights in panels
   (the exporter's default; --layout rows: in rows, through CBLAS). After two warm-up
   rounds, the forward passes, then as many passes of the same matrix products as bare CBLAS
   calls (same shapes, threads, sgemv for one row); the medians of both give the achieved and
   the sgemm GFLOP/s, and efficiency = achieved / sgemm (above 100% when ban.h's own product
   beats OpenBLAS's on these shapes).
   paper-flickr: the grounding model at the paper's size on sentences of 1-8 entities and
   10-100 boxes, all of a sentence's entities in one pass against one entity at a time. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"
#include <cblas.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
float rand_uniform(void) /* xorshift64*, in [-1, 1) */
{
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return (float)((rng_state * 2685821657736338717ull) >> 40) / (float)(1 << 23) - 1.0f;
}

/* ---- a .ban file in memory (docs/FORMAT.md) ---------------------------------------------- */

typedef struct {
    unsigned char *buf;
    size_t len, cap;
} bytes;

static void put(bytes *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->buf = (unsigned char *)realloc(b->buf, b->cap);
        if (!b->buf) { fprintf(stderr, "ban: out of memory\n"); exit(1); }
    }
    memcpy(b->buf + b->len, p, n);
    b->len += n;
}
static void put32(bytes *b, uint32_t v) { put(b, &v, 4); }
static void put64(bytes *b, uint64_t v) { put(b, &v, 8); }
static void put_str(bytes *b, const char *s)
{
    put32(b, (uint32_t)strlen(s));
    put(b, s, strlen(s) + 1);
}
static void meta_int(bytes *b, int *n, const char *key, int64_t v)
{
    put_str(b, key), put32(b, 1), put64(b, 8), put64(b, (uint64_t)v), (*n)++;
}
static void meta_str(bytes *b, int *n, const char *key, const char *v)
{
    put_str(b, key), put32(b, 3), put64(b, strlen(v) + 1), put(b, v, strlen(v) + 1), (*n)++;
}

typedef struct {
    char name[48];
    int nd;
    uint64_t dims[4];
    float scale;
} tensor_spec;

/* Random weights for the configuration; words w0..wV-1 and answers a0..aA-1; panels: the visual
   weights in the exporter's default layout, panels of 32 rows (else plain rows, for CBLAS). */
int write_random_model(const char *path, const ban_config *c, int panels, size_t *file_size)
{
    const int D = c->hidden_dim, kD = c->attention_rank * D, G = c->num_glimpses, V = c->vocab_size;
    const int Ew = c->embedding_dim, Ein = Ew * c->embedding_tables, vqa = c->task == BAN_TASK_VQA;
    const int O = c->counter_objects, H = c->classifier_hidden, A = c->num_answers, vis = kD + (vqa ? G * D : 0);
    tensor_spec t[32];
    int n = 0;
#define T(nm, s, ...) do { uint64_t d_[] = {__VA_ARGS__}; snprintf(t[n].name, 48, "%s", nm); \
        t[n].nd = (int)(sizeof d_ / sizeof d_[0]); memcpy(t[n].dims, d_, sizeof d_); t[n].scale = s; n++; } while (0)
    /* a Linear weight (rows, cols), or a stack of G of them, in rows or in panels */
#define W(nm, s, rows, cols) do { if (panels) T(nm "_panels", s, ((rows) + 31) / 32, cols, 32); \
        else T(nm, s, rows, cols); } while (0)
#define WS(nm, s, g, rows, cols) do { if (panels) T(nm "_panels", s, g, ((rows) + 31) / 32, cols, 32); \
        else T(nm, s, g, rows, cols); } while (0)
    T("word_embedding.weight", 0.5f, (uint64_t)V + 1, (uint64_t)Ew);
    if (c->embedding_tables == 2) T("word_embedding_extra.weight", 0.5f, (uint64_t)V + 1, (uint64_t)Ew);
    W("gru.weight_ih", 1.0f / sqrtf((float)Ein), 3 * (uint64_t)D, (uint64_t)Ein);
    W("gru.weight_hh", 1.0f / sqrtf((float)D), 3 * (uint64_t)D, (uint64_t)D);
    T("gru.bias_ih", 0.1f, 3 * (uint64_t)D);
    T("gru.bias_hh", 0.1f, 3 * (uint64_t)D);
    W("visual.weight", 1.0f / sqrtf((float)c->feature_dim), (uint64_t)vis, (uint64_t)c->feature_dim);
    T("visual.bias", 0.1f, (uint64_t)vis);
    W("attention.q_net.weight", 1.0f / sqrtf((float)D), (uint64_t)kD, (uint64_t)D);
    T("attention.q_net.bias", 0.1f, (uint64_t)kD);
    T("attention.h_mat", 1.0f / sqrtf((float)kD), (uint64_t)G, (uint64_t)kD);
    T("attention.h_bias", 0.1f, (uint64_t)G);
    if (vqa) {
        WS("glimpse.q_net.weight", 1.0f / sqrtf((float)D), (uint64_t)G, (uint64_t)D, (uint64_t)D);
        T("glimpse.q_net.bias", 0.1f, (uint64_t)G, (uint64_t)D);
        WS("glimpse.q_prj.weight", 1.0f / sqrtf((float)D), (uint64_t)G, (uint64_t)D, (uint64_t)D);
        T("glimpse.q_prj.bias", 0.1f, (uint64_t)G, (uint64_t)D);
        if (O) {
            WS("glimpse.c_prj.weight", 0.3f, (uint64_t)G, (uint64_t)D, (uint64_t)O + 1);
            T("glimpse.c_prj.bias", 0.1f, (uint64_t)G, (uint64_t)D);
            T("counter.functions", 1.0f, 16, 17);
        }
        W("classifier.0.weight", 1.0f / sqrtf((float)D), (uint64_t)H, (uint64_t)D);
        T("classifier.0.bias", 0.1f, (uint64_t)H);
        W("classifier.1.weight", 1.0f / sqrtf((float)H), (uint64_t)A, (uint64_t)H);
        T("classifier.1.bias", 0.1f, (uint64_t)A);
    }
#undef T
#undef W
#undef WS
    bytes dir = {NULL, 0, 0};
    int n_meta = 0;
    meta_str(&dir, &n_meta, "ban.task", vqa ? "vqa" : "grounding");
    meta_int(&dir, &n_meta, "ban.vocab_size", V);
    meta_int(&dir, &n_meta, "ban.embedding_dim", Ew);
    meta_int(&dir, &n_meta, "ban.embedding_tables", c->embedding_tables);
    meta_int(&dir, &n_meta, "ban.feature_dim", c->feature_dim);
    meta_int(&dir, &n_meta, "ban.hidden_dim", D);
    meta_int(&dir, &n_meta, "ban.attention_rank", c->attention_rank);
    meta_int(&dir, &n_meta, "ban.glimpses", G);
    meta_int(&dir, &n_meta, "ban.question_length", c->question_length);
    meta_str(&dir, &n_meta, "ban.question_padding", "unmasked");
    meta_str(&dir, &n_meta, "ban.box_padding", "zero_rows");
    if (vqa) {
        meta_int(&dir, &n_meta, "ban.answer_count", A);
        meta_int(&dir, &n_meta, "ban.classifier_hidden", H);
        meta_int(&dir, &n_meta, "ban.counter_objects", O);
    }
    /* the vocabulary: "w0", "w1", ... */
    bytes words = {NULL, 0, 0};
    put64(&words, (uint64_t)V);
    for (int i = 0; i < V; i++) {
        char w[24];
        snprintf(w, sizeof w, "w%d", i);
        put_str(&words, w);
    }
    put_str(&dir, "tokenizer.words"), put32(&dir, 4), put64(&dir, words.len), put(&dir, words.buf, words.len), n_meta++;
    free(words.buf);
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        uint64_t count = 1;
        for (int d = 0; d < t[i].nd; d++) count *= t[i].dims[d];
        put_str(&dir, t[i].name), put32(&dir, 0), put32(&dir, (uint32_t)t[i].nd);
        for (int d = 0; d < t[i].nd; d++) put64(&dir, t[i].dims[d]);
        put64(&dir, off);
        off += (count * 4 + 63) / 64 * 64;
    }
    const uint64_t data_off = (48 + dir.len + 63) / 64 * 64, data_size = off;
    FILE *f = fopen(path, "wb");
    if (!f) return free(dir.buf), cli_error("%s: cannot create", path);
    unsigned char head[48] = {'B', 'A', 'N', 'M'};
    uint32_t u32[3] = {1, 64, 0};
    uint64_t u64[4] = {(uint64_t)n_meta, (uint64_t)n, data_off, data_size};
    memcpy(head + 4, u32, 12), memcpy(head + 16, u64, 32);
    int ok = fwrite(head, 1, 48, f) == 48 && fwrite(dir.buf, 1, dir.len, f) == dir.len;
    static const unsigned char zeros[64];
    ok = ok && fwrite(zeros, 1, data_off - 48 - dir.len, f) == data_off - 48 - dir.len;
    float *chunk = (float *)malloc(sizeof(float) * 65536);
    for (int i = 0; ok && i < n; i++) {
        uint64_t count = 1;
        for (int d = 0; d < t[i].nd; d++) count *= t[i].dims[d];
        for (uint64_t done = 0; ok && done < count;) {
            size_t k = count - done < 65536 ? (size_t)(count - done) : 65536;
            for (size_t j = 0; j < k; j++) chunk[j] = rand_uniform() * t[i].scale;
            ok = fwrite(chunk, 4, k, f) == k;
            done += k;
        }
        size_t pad = (size_t)((count * 4 + 63) / 64 * 64 - count * 4);
        ok = ok && fwrite(zeros, 1, pad, f) == pad;
    }
    free(chunk);
    free(dir.buf);
    ok = (fclose(f) == 0) && ok;
    if (!ok) return cli_error("%s: cannot write", path);
    *file_size = (size_t)(data_off + data_size);
    return CLI_OK;
}

/* ---- the products the forward pass makes (kept in step with ban.h's forward) --------------- */

typedef struct {
    int trans_a, trans_b, M, N, K, count;
} gemm_shape;

/* VQA with B questions of P positions on B images of K real boxes, all glimpses */
static int vqa_products(const ban_config *c, int B, int K, int P, gemm_shape *s)
{
    const int D = c->hidden_dim, kD = c->attention_rank * D, G = c->num_glimpses;
    const int Ein = c->embedding_dim * c->embedding_tables, O = c->counter_objects;
    int n = 0;
    s[n++] = (gemm_shape){0, 1, B * P, 3 * D, Ein, 1};              /* GRU input gates */
    s[n++] = (gemm_shape){0, 1, B, 3 * D, D, P - 1};                /* GRU hidden gates, t > 0 */
    s[n++] = (gemm_shape){0, 1, B * K, kD + G * D, c->feature_dim, 1}; /* every visual projection */
    s[n++] = (gemm_shape){0, 1, B * P, kD, D, 1};                   /* attention question projection */
    s[n++] = (gemm_shape){0, 1, K, G * P, kD, B};                   /* attention logits, per example */
    s[n++] = (gemm_shape){0, 1, B * P, D, D, G};                    /* glimpse question projections */
    s[n++] = (gemm_shape){1, 0, P, D, K, B * G};                    /* A^T V', per example and glimpse */
    s[n++] = (gemm_shape){0, 1, B, D, D, G};                        /* q_prj */
    if (O) s[n++] = (gemm_shape){0, 1, B, D, O + 1, G};             /* c_prj */
    s[n++] = (gemm_shape){0, 1, B, c->classifier_hidden, D, 1};     /* classifier */
    s[n++] = (gemm_shape){0, 1, B, c->num_answers, c->classifier_hidden, 1};
    return n;
}

static double shapes_flops(const gemm_shape *s, int n)
{
    double f = 0.0;
    for (int i = 0; i < n; i++) f += 2.0 * s[i].M * s[i].N * (double)s[i].K * s[i].count;
    return f;
}

/* Buffers for the products alone: room for the largest operand of any of them. */
typedef struct {
    float *a, *b, *c;
} product_buffers;

static int product_buffers_alloc(product_buffers *p, const gemm_shape *s, int n)
{
    size_t most = 0;
    for (int i = 0; i < n; i++) {
        size_t a = (size_t)s[i].M * s[i].K, b = (size_t)s[i].K * s[i].N, c = (size_t)s[i].M * s[i].N;
        if (a > most) most = a;
        if (b > most) most = b;
        if (c > most) most = c;
    }
    p->a = (float *)malloc(most * 4), p->b = (float *)malloc(most * 4), p->c = (float *)malloc(most * 4);
    if (!p->a || !p->b || !p->c) return -1;
    for (size_t i = 0; i < most; i++) p->a[i] = rand_uniform(), p->b[i] = rand_uniform();
    return 0;
}

/* one pass of the products alone, as ban.h calls them (sgemv for one row); milliseconds */
static double time_products(const gemm_shape *s, int n, const product_buffers *p)
{
    double t0 = 1e3 * util_now();
    for (int i = 0; i < n; i++)
        for (int k = 0; k < s[i].count; k++) {
            const gemm_shape *g = &s[i];
            if (g->M == 1 && !g->trans_a && g->trans_b)
                cblas_sgemv(CblasRowMajor, CblasNoTrans, g->N, g->K, 1.0f, p->b, g->K, p->a, 1, 0.0f, p->c, 1);
            else
                cblas_sgemm(CblasRowMajor, g->trans_a ? CblasTrans : CblasNoTrans,
                            g->trans_b ? CblasTrans : CblasNoTrans, g->M, g->N, g->K, 1.0f, p->a,
                            g->trans_a ? g->M : g->K, p->b, g->trans_b ? g->K : g->N, 0.0f, p->c, g->N);
        }
    return 1e3 * util_now() - t0;
}

double median(double *x, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && x[j] < x[j - 1]; j--) {
            double t = x[j];
            x[j] = x[j - 1], x[j - 1] = t;
        }
    return x[n / 2];
}

long peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

/* ---- paper-ban8 --------------------------------------------------------------------------- */

static int bench_vqa(int B, int K, int threads, int runs, int as_json, const char *model_path, int panels)
{
    ban_config c;
    memset(&c, 0, sizeof c);
    c.task = BAN_TASK_VQA, c.vocab_size = 19901, c.embedding_dim = 300, c.embedding_tables = 2;
    c.feature_dim = 2048, c.hidden_dim = 1280, c.attention_rank = 3, c.num_glimpses = 8, c.num_answers = 3129;
    c.classifier_hidden = 2560, c.counter_objects = 10, c.question_length = 14;
    const int P = 14;
    char path[4096];
    snprintf(path, sizeof path, "%s", model_path ? model_path : "/tmp/ban-bench-paper-ban8.ban");
    size_t file_size = 0;
    int rc;
    double t0 = 1e3 * util_now();
    if ((rc = write_random_model(path, &c, panels, &file_size))) return rc;
    const double write_ms = 1e3 * util_now() - t0;
    ban_model *m;
    t0 = 1e3 * util_now();
    if (ban_model_load(path, &m) != BAN_OK) {
        rc = cli_error("%s", m ? ban_model_error(m) : "out of memory");
        ban_model_free(m);
        return rc;
    }
    const double load_ms = 1e3 * util_now() - t0;
    if (!model_path) unlink(path); /* the mapping stays valid */
    ban_limits lim = {B, K, P, 0, threads};
    ban_ctx *ctx;
    if (ban_ctx_create(m, &lim, &ctx) != BAN_OK) {
        rc = cli_error("%s", ban_ctx_error(ctx));
        ban_ctx_free(ctx);
        ban_model_free(m);
        return rc;
    }
    float *v = (float *)malloc(sizeof(float) * B * K * c.feature_dim), *b = (float *)malloc(sizeof(float) * B * K * 6);
    int32_t *q = (int32_t *)malloc(sizeof(int32_t) * B * P);
    float *logits = (float *)malloc(sizeof(float) * B * c.num_answers);
    for (size_t i = 0; i < (size_t)B * K * c.feature_dim; i++) v[i] = fabsf(rand_uniform()); /* ReLU features */
    for (int i = 0; i < B * K; i++) {
        float x = (rand_uniform() + 1) * 0.35f, y = (rand_uniform() + 1) * 0.35f, w = 0.05f + (rand_uniform() + 1) * 0.1f;
        float *s = b + (size_t)i * 6;
        s[0] = x, s[1] = y, s[2] = x + w, s[3] = y + w, s[4] = w, s[5] = w;
    }
    for (int i = 0; i < B * P; i++) q[i] = (i % P) < 9 ? (int32_t)((rand_uniform() + 1) * 9000) : c.vocab_size;
    ban_input in;
    memset(&in, 0, sizeof in);
    in.batch = B, in.boxes = K, in.features = v, in.spatials = b, in.tokens_len = P, in.tokens = q;
    ban_output out = {logits, NULL, NULL};
    double *times = (double *)malloc(sizeof(double) * runs * 2), *gemm_times = times + runs;
    gemm_shape shapes[16];
    const int ns = vqa_products(&c, B, K, P, shapes);
    product_buffers pb = {NULL, NULL, NULL};
    if (product_buffers_alloc(&pb, shapes, ns)) rc = cli_error("out of memory for the sgemm baseline");
    /* two warm-up rounds map the weights in and fill the caches; then the forward passes,
       then as many passes of the same products alone, each after a warm-up of its own. Not
       interleaved: OpenBLAS's idle threads spin for a while after each call, and a forward
       pass of a model in panels (which calls no CBLAS) would share the cores with them */
    for (int r = -2; r < runs && rc == CLI_OK; r++) {
        double s0 = 1e3 * util_now();
        if (ban_forward(ctx, &in, &out) != BAN_OK) {
            rc = cli_error("%s", ban_ctx_error(ctx));
            break;
        }
        if (r >= 0) times[r] = 1e3 * util_now() - s0;
    }
    for (int r = -2; r < runs && rc == CLI_OK; r++) {
        double g = time_products(shapes, ns, &pb);
        if (r >= 0) gemm_times[r] = g;
    }
    free(pb.a), free(pb.b), free(pb.c);
    if (rc == CLI_OK) {
        const double flops = shapes_flops(shapes, ns) / B, t_med = median(times, runs);
        const double t_gemm = median(gemm_times, runs);
        const double ms_q = t_med / B, gflops = flops * B / (t_med * 1e6), gemm_gflops = flops * B / (t_gemm * 1e6);
        if (as_json)
            printf("{\"preset\": \"paper-ban8\", \"layout\": \"%s\", \"batch\": %d, \"boxes\": %d, \"threads\": %d, \"runs\": %d, "
                   "\"ms_per_question\": %.3f, \"questions_per_s\": %.2f, \"gflop_per_question\": %.4f, "
                   "\"gflops\": %.2f, \"sgemm_gflops\": %.2f, \"efficiency\": %.4f, \"peak_rss_mb\": %ld, "
                   "\"model_mb\": %.1f, \"load_ms\": %.3f, \"model_write_ms\": %.0f}\n",
                   panels ? "panels" : "rows", B, K, threads, runs, ms_q, 1000.0 / ms_q, flops / 1e9, gflops, gemm_gflops,
                   gflops / gemm_gflops,
                   peak_rss_mb(), file_size / 1048576.0, load_ms, write_ms);
        else
            printf("paper-ban8: batch %d, %d boxes, %d tokens, %d threads, median of %d runs\n"
                   "  %.3f ms per question, %.2f questions/s, %.3f GFLOP per question\n"
                   "  %.1f GFLOP/s achieved; the same products as bare sgemm: %.1f GFLOP/s; efficiency %.1f%%\n"
                   "  model %.0f MB mapped in %.2f ms; peak RSS %ld MB\n",
                   B, K, P, threads, runs, ms_q, 1000.0 / ms_q, flops / 1e9, gflops, gemm_gflops,
                   100.0 * gflops / gemm_gflops, file_size / 1048576.0, load_ms, peak_rss_mb());
    }
    free(v), free(b), free(q), free(logits), free(times);
    ban_ctx_free(ctx);
    ban_model_free(m);
    return rc;
}

static int bench_main(const cli_args *a)
{
    long B = 1, T = 2, K = 100, runs = 0;
    const char *preset = cli_get(a, "--preset");
    if (cli_long(a, "--batch", 1, 256, &B) || cli_long(a, "--threads", 1, 64, &T) ||
        cli_long(a, "--boxes", 1, BAN_MAX_BOXES, &K) || cli_long(a, "--runs", 1, 10000, &runs))
        return CLI_USAGE;
    const char *layout = cli_get(a, "--layout") ? cli_get(a, "--layout") : "panels";
    if (strcmp(layout, "panels") && strcmp(layout, "rows"))
        return cli_usage(a, "--layout is panels (ban.h's own product, the exporter's default) or rows (CBLAS)");
    const int panels = !strcmp(layout, "panels");
    openblas_set_num_threads((int)T);
    if (!strcmp(preset, "paper-ban8")) {
        if (!runs) runs = B >= 16 ? 5 : 15;
        return bench_vqa((int)B, (int)K, (int)T, (int)runs, cli_flag(a, "--json"), cli_get(a, "--model-out"), panels);
    }
    if (!strcmp(preset, "paper-flickr")) {
        if (cli_get(a, "--batch") || cli_get(a, "--boxes"))
            return cli_usage(a, "paper-flickr draws its own sentences (1-8 entities) and boxes (10-100); --runs is "
                                "its number of sentences; --batch and --boxes do not apply");
        return bench_flickr((int)T, (int)runs, cli_flag(a, "--json"), cli_get(a, "--model-out"), panels);
    }
    return cli_usage(a, "unknown preset '%s' (paper-ban8, paper-flickr)", preset);
}

static const cli_option bench_options[] = {
    {"--preset", "NAME", 1, "paper-ban8: the paper's VQA model; paper-flickr: its Flickr30k grounding model"},
    {"--batch", "B", 0, "paper-ban8: questions a forward pass (default 1)"},
    {"--threads", "T", 0, "threads of the context and of OpenBLAS (default 2)"},
    {"--boxes", "K", 0, "paper-ban8: boxes an image (default 100)"},
    {"--runs", "N", 0, "paper-ban8: forward passes timed (default 15, 5 from batch 16);\n"
                       "paper-flickr: sentences timed (default 200)"},
    {"--json", NULL, 0, "the figures as one JSON object"},
    {"--layout", "L", 0, "panels (ban.h's own product, the exporter's default) or rows (CBLAS does the products)"},
    {"--model-out", "PATH", 0, "keep the random model there (default: a temporary file, removed once mapped)"},
    {NULL, NULL, 0, NULL}};

const cli_command cli_bench = {
    "bench", bench_main, CLI_NO_MODEL, "--preset paper-ban8|paper-flickr [options]",
    "speed on a random model of the paper's size, next to the machine's sgemm\n"
    "paper-ban8: ms per question, GFLOP/s, the machine's sgemm on the same products, efficiency, model load\n"
    "time, peak RSS. paper-flickr: ms per entity with all the entities of a sentence in one pass against one\n"
    "entity at a time, and batched.",
    bench_options, 0,
    "ban bench --preset paper-ban8 --batch 32 --threads 2\n"
    "ban bench --preset paper-flickr --json"};
