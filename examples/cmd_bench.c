/* ban bench: the speed of ban.h on a model of the paper's size, next to the machine's own sgemm.

   ban bench --preset paper-ban8 [--batch B] [--threads T] [--boxes K] [--runs N] [--json] [--layout panels|rows]
             [--dtype f32|bf16|int8]
   ban bench --preset openvqa-ban8 [the same options]
   ban bench --preset paper-flickr [--threads T] [--json]

   The model is built here with random weights as a .ban file (a temporary file, mapped by
   ban_model_load like any model: its load time is reported), so no download is needed.
   paper-ban8: the paper's VQA configuration (hidden 1280, 8 glimpses, 2048-d features, 100
   boxes, 14 tokens, 3,129 answers, two 300-d embeddings, counter), its big weights in panels
   (the exporter's default; --layout rows: in rows, through CBLAS), in f32, bf16 or int8
   (--dtype; written as ban quantize writes them, through examples/banwrite.h). After two
   warm-up rounds (the second records the products it makes: ban_ctx_record), the forward
   passes, then as many passes of those matrix products as bare CBLAS calls (same shapes,
   threads, sgemv for one row); the medians of both give the achieved and
   the sgemm GFLOP/s, and efficiency = achieved / sgemm (above 100% when ban.h's own product
   beats OpenBLAS's on these shapes).
   openvqa-ban8: OpenVQA's BAN-8 (hidden 1024, K_TIMES 3 in the attention and in every glimpse,
   8 glimpses, 2048-d features, 100 boxes, 3,129 answers, FLAT_OUT 2048, no counter): about twice
   the reference's FLOPs, every glimpse projecting to 3 x 1024.
   paper-flickr: the grounding model at the paper's size on sentences of 1-8 entities and
   10-100 boxes, all of a sentence's entities in one pass against one entity at a time. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <sys/resource.h>
#include <unistd.h>

#include "banwrite.h"
#include "cli.h"
#include <cblas.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
float rand_uniform(void) /* xorshift64*, in [-1, 1) */
{
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return (float)((rng_state * 2685821657736338717ull) >> 40) / (float)(1 << 23) - 1.0f;
}

/* ---- the random model ------------------------------------------------------------------------- */

/* Tensor i of the configuration's list (ban_config_tensor_dtype): drawn uniformly, as PyTorch
   initialises a Linear layer (+-1/sqrt(columns)), word embeddings +-0.5, vectors (biases,
   h_bias) +-0.1, the counter's functions too (only |w| / sum |w| matters there); a weight's
   values drawn in its rows' order, 32 rows at a time (a panel), then laid out as the file
   stores them (panels, a reduced dtype: banwrite_reduce_weight), int8 scales kept for the
   NAME_scales tensor that follows. Memory: one panel, so the benchmark's peak RSS is its own. */
typedef struct {
    const ban_config *c;
    int panels;
    const char *dtype;
    float *scales;              /* the last int8 weight's, for its NAME_scales */
} random_model;

static int random_fill(void *ctx, int i, banwrite_sink *sink)
{
    random_model *r = (random_model *)ctx;
    ban_tensor_info t, rows;
    if (ban_config_tensor_dtype(r->c, r->panels, r->dtype, i, &t) != BAN_OK) return -1;
    /* the same tensor in rows and f32: its shape (stack?, N, K), or a vector */
    int j = 0;
    while (ban_config_tensor(r->c, 0, j, &rows) == BAN_OK && !(rows.spec == t.spec && rows.is_bias == t.is_bias))
        j++;
    const int stacked = strcmp(rows.spec->stack, "0") != 0, matrix = rows.ndim - stacked == 2;
    const size_t stack = stacked ? (size_t)rows.dims[0] : 1, N = (size_t)rows.dims[stacked];
    const size_t K = matrix ? (size_t)rows.dims[stacked + 1] : 1;
    if (t.is_scale) return banwrite_put(sink, r->scales, stack * N * sizeof(float));
    const int reduced = strcmp(t.dtype, "f32") != 0, panels = !strcmp(t.layout, "panels");
    const int embedding = !strncmp(rows.name, "word_embedding", 14);
    const float scale = embedding ? 0.5f : matrix ? 1.0f / sqrtf((float)K) : 0.1f;
    const size_t block = panels ? 32 : 1, stored = panels ? t.dims[t.ndim - 2] * 32 : K; /* rows a block, its elements */
    float *w = (float *)malloc(block * K * sizeof(float)), *s = (float *)realloc(r->scales, stack * N * sizeof(float));
    unsigned char *out = (unsigned char *)malloc(stored * 4);
    int rc = w && s && out ? 0 : -1;
    if (s) r->scales = s;
    for (size_t g = 0; g < stack && !rc; g++)
        for (size_t n0 = 0; n0 < N && !rc; n0 += block) {
            const size_t nb = N - n0 < block ? N - n0 : block;
            for (size_t e = 0; e < nb * K; e++) w[e] = rand_uniform() * scale;
            if (reduced) { /* one panel (or row) of bf16 or int8 */
                rc = banwrite_reduce_weight(w, 0, 1, (int)nb, (int)K, t.dtype, panels, out, r->scales + g * N + n0);
                if (!rc) rc = banwrite_put(sink, out, panels ? stored * (strcmp(t.dtype, "int8") ? 2 : 1)
                                                             : nb * K * (strcmp(t.dtype, "int8") ? 2 : 1));
            } else if (panels) { /* f32: W[32p + j][k] at [k][j], zeros past N */
                float *panel = (float *)(void *)out;
                for (size_t k = 0; k < K; k++)
                    for (size_t jj = 0; jj < 32; jj++) panel[k * 32 + jj] = jj < nb ? w[jj * K + k] : 0.0f;
                rc = banwrite_put(sink, panel, K * 32 * sizeof(float));
            } else {
                rc = banwrite_put(sink, w, nb * K * sizeof(float));
            }
        }
    free(w), free(out);
    return rc;
}

/* A .ban file of that configuration (the reference's conventions) with random weights in a
   dtype ("f32", "bf16", "int8"), its Linear weights in panels or rows; words w0, w1, ... */
int write_random_model(const char *path, const ban_config *c, int panels, const char *dtype, size_t *file_size)
{
    const int vqa = c->task == BAN_TASK_VQA;
    banwrite w;
    banwrite_init(&w);
    banwrite_meta_string(&w, "ban.task", vqa ? "vqa" : "grounding");
    banwrite_meta_int(&w, "ban.vocab_size", c->vocab_size);
    banwrite_meta_int(&w, "ban.embedding_dim", c->embedding_dim);
    banwrite_meta_int(&w, "ban.embedding_tables", c->embedding_tables);
    banwrite_meta_int(&w, "ban.feature_dim", c->feature_dim);
    banwrite_meta_int(&w, "ban.hidden_dim", c->hidden_dim);
    banwrite_meta_int(&w, "ban.attention_rank", c->attention_rank);
    banwrite_meta_int(&w, "ban.glimpses", c->num_glimpses);
    banwrite_meta_int(&w, "ban.question_length", c->question_length);
    banwrite_meta_string(&w, "ban.question_padding", "unmasked");
    banwrite_meta_string(&w, "ban.box_padding", "zero_rows");
    if (vqa) {
        banwrite_meta_int(&w, "ban.answer_count", c->num_answers);
        banwrite_meta_int(&w, "ban.classifier_hidden", c->classifier_hidden);
        banwrite_meta_int(&w, "ban.counter_objects", c->counter_objects);
    }
    /* OpenVQA's conventions, where the configuration has them */
    if (c->glimpse_rank > 1) banwrite_meta_int(&w, "ban.glimpse_rank", c->glimpse_rank);
    if (c->tokenizer == BAN_TOKENIZER_OPENVQA) banwrite_meta_string(&w, "tokenizer.rules", "openvqa");
    if (c->num_ids && c->padding_id != c->vocab_size) {
        banwrite_meta_int(&w, "tokenizer.padding_id", c->padding_id);
        banwrite_meta_int(&w, "tokenizer.unknown_id", c->unknown_id);
    }
    char **words = (char **)malloc((size_t)c->vocab_size * sizeof *words), *text = (char *)malloc((size_t)c->vocab_size * 12);
    for (int i = 0; words && text && i < c->vocab_size; i++) /* tokenizer.words: w0, w1, ... */
        snprintf(words[i] = text + (size_t)i * 12, 12, "w%d", i);
    if (words && text) banwrite_meta_strings(&w, "tokenizer.words", (const char *const *)words, (size_t)c->vocab_size);
    else w.failed = 1;
    free(words), free(text);
    random_model r = {c, panels, dtype, NULL};
    ban_tensor_info t;
    for (int i = 0; ban_config_tensor_dtype(c, panels, dtype, i, &t) == BAN_OK; i++)
        banwrite_tensor(&w, t.name, t.dtype, t.ndim, t.dims, random_fill, &r, i);
    char err[512];
    uint64_t size = 0;
    const int failed = banwrite_commit(&w, path, NULL, &size, err, sizeof err);
    banwrite_free(&w);
    free(r.scales);
    if (failed) return cli_error("%s", err);
    *file_size = (size_t)size;
    return CLI_OK;
}

/* ---- the sgemm baseline: the products a forward pass made (ban_ctx_record), through CBLAS ---- */

static double products_flops(const ban_product *s, int n)
{
    double f = 0.0;
    for (int i = 0; i < n; i++) f += 2.0 * s[i].m * s[i].n * (double)s[i].k * s[i].count;
    return f;
}

/* Buffers for the products alone: room for the largest operand of any of them. */
typedef struct {
    float *a, *b, *c;
} product_buffers;

static int product_buffers_alloc(product_buffers *p, const ban_product *s, int n)
{
    size_t most = 0;
    for (int i = 0; i < n; i++) {
        size_t a = (size_t)s[i].m * s[i].k, b = (size_t)s[i].k * s[i].n, c = (size_t)s[i].m * s[i].n;
        if (a > most) most = a;
        if (b > most) most = b;
        if (c > most) most = c;
    }
    p->a = (float *)malloc(most * 4), p->b = (float *)malloc(most * 4), p->c = (float *)malloc(most * 4);
    if (!p->a || !p->b || !p->c) return -1;
    for (size_t i = 0; i < most; i++) p->a[i] = rand_uniform(), p->b[i] = rand_uniform();
    return 0;
}

/* one pass of the products alone, as a model in rows makes them (sgemv for one row); milliseconds */
static double time_products(const ban_product *s, int n, const product_buffers *p)
{
    double t0 = 1e3 * util_now();
    for (int i = 0; i < n; i++)
        for (int k = 0; k < s[i].count; k++) {
            const ban_product *g = &s[i];
            if (g->m == 1 && !g->trans_x && g->trans_w)
                cblas_sgemv(CblasRowMajor, CblasNoTrans, g->n, g->k, 1.0f, p->b, g->k, p->a, 1, 0.0f, p->c, 1);
            else
                cblas_sgemm(CblasRowMajor, g->trans_x ? CblasTrans : CblasNoTrans,
                            g->trans_w ? CblasTrans : CblasNoTrans, g->m, g->n, g->k, 1.0f, p->a,
                            g->trans_x ? g->m : g->k, p->b, g->trans_w ? g->k : g->n, 0.0f, p->c, g->n);
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

/* the process's CPU time so far (user and system, every thread), milliseconds: what a run
   costs whatever else the machine runs meanwhile */
static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-3;
}

/* ---- paper-ban8, openvqa-ban8 -------------------------------------------------------------- */

/* the VQA presets' configurations: the paper's BAN-8 (the reference's, with the counter and two
   embedding tables) and OpenVQA's BAN-8 (configs/vqa/ban_8.yml: hidden 1024, K_TIMES 3 in the
   attention and in every glimpse, FLAT_OUT 2048, no counter, PAD in the vocabulary; its
   vocabulary is about OpenVQA's VQA-v2 one, whose size does not change the time) */
static int vqa_preset(const char *name, ban_config *c)
{
    memset(c, 0, sizeof *c);
    c->task = BAN_TASK_VQA, c->embedding_dim = 300, c->feature_dim = 2048, c->attention_rank = 3;
    c->num_glimpses = 8, c->num_answers = 3129, c->question_length = 14, c->glimpse_rank = 1;
    if (!strcmp(name, "paper-ban8")) {
        c->vocab_size = 19901, c->embedding_tables = 2, c->hidden_dim = 1280, c->classifier_hidden = 2560;
        c->counter_objects = 10, c->padding_id = c->vocab_size, c->num_ids = c->vocab_size + 1;
        return 0;
    }
    if (!strcmp(name, "openvqa-ban8")) {
        c->vocab_size = 20573, c->embedding_tables = 1, c->hidden_dim = 1024, c->classifier_hidden = 2048;
        c->glimpse_rank = 3, c->tokenizer = BAN_TOKENIZER_OPENVQA, c->padding_id = 0, c->unknown_id = 1;
        c->num_ids = c->vocab_size;
        return 0;
    }
    return -1;
}

static int bench_vqa(const char *preset, int B, int K, int threads, int runs, int as_json, const char *model_path,
                     int panels, const char *dtype)
{
    ban_config c;
    vqa_preset(preset, &c);
    const int P = 14;
    char path[4096];
    snprintf(path, sizeof path, "%s", model_path ? model_path : preset);
    if (!model_path) snprintf(path, sizeof path, "/tmp/ban-bench-%s.ban", preset);
    size_t file_size = 0;
    int rc;
    double t0 = 1e3 * util_now();
    if ((rc = write_random_model(path, &c, panels, dtype, &file_size))) return rc;
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
    const char *kernel = ban_ctx_kernel_for(ctx, dtype);
    float *v = (float *)malloc(sizeof(float) * B * K * c.feature_dim), *b = (float *)malloc(sizeof(float) * B * K * 6);
    int32_t *q = (int32_t *)malloc(sizeof(int32_t) * B * P);
    float *logits = (float *)malloc(sizeof(float) * B * c.num_answers);
    for (size_t i = 0; i < (size_t)B * K * c.feature_dim; i++) v[i] = fabsf(rand_uniform()); /* ReLU features */
    for (int i = 0; i < B * K; i++) {
        float x = (rand_uniform() + 1) * 0.35f, y = (rand_uniform() + 1) * 0.35f, w = 0.05f + (rand_uniform() + 1) * 0.1f;
        float *s = b + (size_t)i * 6;
        s[0] = x, s[1] = y, s[2] = x + w, s[3] = y + w, s[4] = w, s[5] = w;
    }
    for (int i = 0; i < B * P; i++) q[i] = (i % P) < 9 ? (int32_t)((rand_uniform() + 1) * 9000) : c.padding_id;
    ban_input in;
    memset(&in, 0, sizeof in);
    in.batch = B, in.boxes = K, in.features = v, in.spatials = b, in.tokens_len = P, in.tokens = q;
    ban_output out = {logits, NULL, NULL};
    double *times = (double *)malloc(sizeof(double) * runs * 2), *gemm_times = times + runs;
    enum { MAX_PRODUCTS = 64 };
    ban_product shapes[MAX_PRODUCTS];
    int ns = 0;
    product_buffers pb = {NULL, NULL, NULL};
    /* two warm-up rounds map the weights in and fill the caches (the second one records the
       products the forward pass makes, for the FLOP count and the sgemm baseline); then the
       forward passes, then as many passes of the same products alone, each after a warm-up of
       its own. Not interleaved: OpenBLAS's idle threads spin for a while after each call, and a
       forward pass of a model in panels (which calls no CBLAS) would share the cores with them */
    double cpu0 = 0.0, cpu = 0.0;
    for (int r = -2; r < runs && rc == CLI_OK; r++) {
        if (r == -1) ban_ctx_record(ctx, shapes, MAX_PRODUCTS, &ns);
        if (r == 0) cpu0 = cpu_ms();
        double s0 = 1e3 * util_now();
        if (ban_forward(ctx, &in, &out) != BAN_OK) {
            rc = cli_error("%s", ban_ctx_error(ctx));
            break;
        }
        if (r >= 0) times[r] = 1e3 * util_now() - s0;
        if (r == -1) ban_ctx_record(ctx, NULL, 0, NULL);
    }
    cpu = cpu_ms() - cpu0;
    if (rc == CLI_OK && (ns > MAX_PRODUCTS || product_buffers_alloc(&pb, shapes, ns)))
        rc = cli_error("%s for the sgemm baseline", ns > MAX_PRODUCTS ? "too many kinds of products" : "out of memory");
    for (int r = -2; r < runs && rc == CLI_OK; r++) {
        double g = time_products(shapes, ns, &pb);
        if (r >= 0) gemm_times[r] = g;
    }
    free(pb.a), free(pb.b), free(pb.c);
    if (rc == CLI_OK) {
        const double flops = products_flops(shapes, ns) / B, t_med = median(times, runs);
        const double t_gemm = median(gemm_times, runs);
        const double ms_q = t_med / B, gflops = flops * B / (t_med * 1e6), gemm_gflops = flops * B / (t_gemm * 1e6);
        if (as_json)
            printf("{\"preset\": \"%s\", \"layout\": \"%s\", \"dtype\": \"%s\", \"kernel\": \"%s\", "
                   "\"batch\": %d, \"boxes\": %d, \"threads\": %d, \"runs\": %d, "
                   "\"ms_per_question\": %.3f, \"cpu_ms_per_question\": %.3f, \"questions_per_s\": %.2f, "
                   "\"gflop_per_question\": %.4f, "
                   "\"gflops\": %.2f, \"sgemm_gflops\": %.2f, \"efficiency\": %.4f, \"peak_rss_mb\": %ld, "
                   "\"model_mb\": %.1f, \"load_ms\": %.3f, \"model_write_ms\": %.0f}\n",
                   preset, panels ? "panels" : "rows", dtype, kernel, B, K, threads, runs, ms_q, cpu / runs / B, 1000.0 / ms_q, flops / 1e9, gflops, gemm_gflops,
                   gflops / gemm_gflops,
                   peak_rss_mb(), file_size / 1048576.0, load_ms, write_ms);
        else
            printf("%s, %s weights (kernel %s): batch %d, %d boxes, %d tokens, %d threads, median of %d runs\n"
                   "  %.3f ms per question, %.2f questions/s, %.3f GFLOP per question\n"
                   "  %.1f GFLOP/s achieved; the same products as bare sgemm: %.1f GFLOP/s; efficiency %.1f%%\n"
                   "  model %.0f MB mapped in %.2f ms; peak RSS %ld MB\n",
                   preset, dtype, kernel, B, K, P, threads, runs, ms_q, 1000.0 / ms_q, flops / 1e9, gflops, gemm_gflops,
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
    const char *dtype = cli_get(a, "--dtype") ? cli_get(a, "--dtype") : "f32";
    if (strcmp(dtype, "f32") && strcmp(dtype, "bf16") && strcmp(dtype, "int8"))
        return cli_usage(a, "--dtype is f32, bf16 or int8");
    if (!panels && strcmp(dtype, "f32"))
        return cli_usage(a, "--dtype %s needs --layout panels (ban.h's kernels read reduced weights in panels)", dtype);
    openblas_set_num_threads((int)T);
    ban_config c;
    if (!vqa_preset(preset, &c)) {
        if (!runs) runs = B >= 16 ? 5 : 15;
        return bench_vqa(preset, (int)B, (int)K, (int)T, (int)runs, cli_flag(a, "--json"), cli_get(a, "--model-out"),
                         panels, dtype);
    }
    if (!strcmp(preset, "paper-flickr")) {
        if (cli_get(a, "--batch") || cli_get(a, "--boxes"))
            return cli_usage(a, "paper-flickr draws its own sentences (1-8 entities) and boxes (10-100); --runs is "
                                "its number of sentences; --batch and --boxes do not apply");
        return bench_flickr((int)T, (int)runs, cli_flag(a, "--json"), cli_get(a, "--model-out"), panels, dtype);
    }
    return cli_usage(a, "unknown preset '%s' (paper-ban8, openvqa-ban8, paper-flickr)", preset);
}

static const cli_option bench_options[] = {
    {"--preset", "NAME", 1, "paper-ban8: the paper's VQA model; openvqa-ban8: OpenVQA's BAN-8 (hidden 1024,\n"
                            "K_TIMES 3 in every glimpse, no counter); paper-flickr: the paper's Flickr30k model"},
    {"--batch", "B", 0, "paper-ban8: questions a forward pass (default 1)"},
    {"--threads", "T", 0, "threads of the context and of OpenBLAS (default 2)"},
    {"--boxes", "K", 0, "paper-ban8: boxes an image (default 100)"},
    {"--runs", "N", 0, "paper-ban8: forward passes timed (default 15, 5 from batch 16);\n"
                       "paper-flickr: sentences timed (default 200)"},
    {"--json", NULL, 0, "the figures as one JSON object"},
    {"--layout", "L", 0, "panels (ban.h's own product, the exporter's default) or rows (CBLAS does the products)"},
    {"--dtype", "D", 0, "the weights' dtype: f32 (default), bf16 or int8 (docs/FORMAT.md), as ban quantize\n"
                        "writes them; in panels"},
    {"--model-out", "PATH", 0, "keep the random model there (default: a temporary file, removed once mapped)"},
    {NULL, NULL, 0, NULL}};

const cli_command cli_bench = {
    "bench", bench_main, CLI_NO_MODEL, "--preset paper-ban8|openvqa-ban8|paper-flickr [options]",
    "speed on a random model of the paper's size, next to the machine's sgemm\n"
    "paper-ban8: ms per question, GFLOP/s, the machine's sgemm on the same products, efficiency, model load\n"
    "time, peak RSS. paper-flickr: ms per entity with all the entities of a sentence in one pass against one\n"
    "entity at a time, and batched.",
    bench_options, 0,
    "ban bench --preset paper-ban8 --batch 32 --threads 2\n"
    "ban bench --preset paper-ban8 --dtype int8 --json\n"
    "ban bench --preset openvqa-ban8 --batch 32\n"
    "ban bench --preset paper-flickr --json"};
