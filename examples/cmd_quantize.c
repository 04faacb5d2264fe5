/* ban quantize: a model's Linear weights and word embeddings in bf16 or int8 (docs/FORMAT.md,
   "Reduced weights"), as llama.cpp's quantize makes a smaller model from a full one.

   ban quantize IN.ban --dtype bf16|int8 --output OUT.ban

   IN holds f32 weights, in panels or rows (the exporter's files); OUT holds the same
   metadata and the same tensors in the same order, but for the Linear weights (in panels,
   K padded to the dtype's group) and the word embeddings, reduced by ban.h's rule
   (ban_reduce; int8 with NAME_scales after each), through examples/banwrite.h: the bytes
   tools/ban_export.py --dtype writes from the checkpoint. Written atomically, a line per
   tensor on stderr as it goes; OUT is loaded back before the command says it is done. */
#define _POSIX_C_SOURCE 200809L
#include "banwrite.h"
#include "cli.h"

typedef struct {
    const ban_model *m;
    const char *dtype;
    int src[3 * BAN_MAX_ENTRIES]; /* per output tensor: the input tensor it comes from */
    float *scales;                /* the last int8 weight's, for its NAME_scales */
} quantize_job;

/* the listed tensor (ban_config_tensor_dtype) of a weight-table row in a role (0 the weight,
   1 its bias, 2 its scales), or BAN_ERR_ARG */
static int listed(const ban_config *c, int panels, const char *dtype, const ban_weight_spec *spec, int role,
                  ban_tensor_info *t)
{
    for (int i = 0; ban_config_tensor_dtype(c, panels, dtype, i, t) == BAN_OK; i++)
        if (t->spec == spec && t->is_bias == (role == 1) && t->is_scale == (role == 2)) return BAN_OK;
    return BAN_ERR_ARG;
}

/* an input tensor the reduced dtypes reduce: a Linear weight or a word embedding */
static int reduced(const ban_tensor_info *t)
{
    return t->spec && !t->is_bias && !t->is_scale && (t->spec->linear || !strncmp(t->spec->name, "word_embedding", 14));
}

static int quantize_fill(void *ctx, int i, banwrite_sink *sink)
{
    quantize_job *q = (quantize_job *)ctx;
    const ban_config *c = ban_model_config(q->m);
    ban_tensor_info in, rows, out;
    if (ban_model_tensor(q->m, q->src[i] < 0 ? -q->src[i] - 1 : q->src[i], &in) != BAN_OK) return -1;
    if (q->src[i] >= 0 && !reduced(&in)) return banwrite_put(sink, in.data, (size_t)in.bytes); /* as it is */
    if (listed(c, 0, "f32", in.spec, 0, &rows)) return -1; /* its shape in rows: (stack?, N, K) */
    const int stacked = rows.ndim == 3;
    const size_t stack = stacked ? (size_t)rows.dims[0] : 1, N = (size_t)rows.dims[stacked];
    const size_t K = (size_t)rows.dims[stacked + 1];
    if (q->src[i] < 0) return banwrite_put(sink, q->scales, stack * N * sizeof(float)); /* its NAME_scales */
    const int panels = !strcmp(in.layout, "panels"), eb = !strcmp(q->dtype, "int8") ? 1 : 2;
    if (listed(c, 1, q->dtype, in.spec, 0, &out)) return -1;
    /* a panel (32 rows) at a time, from either layout; an embedding a row at a time */
    const size_t block = in.spec->linear ? 32 : 1, Kp = in.spec->linear ? (size_t)out.dims[out.ndim - 2] : K;
    const size_t bytes = (in.spec->linear ? Kp * 32 : K) * (size_t)eb, P = (N + 31) / 32;
    float *s = (float *)realloc(q->scales, stack * N * sizeof(float));
    unsigned char *dst = (unsigned char *)malloc(bytes);
    int rc = s && dst ? 0 : -1;
    if (s) q->scales = s;
    for (size_t g = 0; g < stack && !rc; g++)
        for (size_t n0 = 0; n0 < N && !rc; n0 += block) {
            const size_t nb = N - n0 < block ? N - n0 : block;
            const float *w = (const float *)in.data + (panels ? (g * P + n0 / 32) * K * 32 : (g * N + n0) * K);
            rc = banwrite_reduce_weight(w, panels, 1, (int)nb, (int)K, q->dtype, in.spec->linear, dst,
                                        q->scales + g * N + n0);
            if (!rc) rc = banwrite_put(sink, dst, in.spec->linear ? bytes : nb * K * (size_t)eb);
        }
    free(dst);
    return rc;
}

static int quantize_main(const cli_args *a)
{
    const char *dtype = cli_get(a, "--dtype"), *output = cli_get(a, "--output");
    if (strcmp(dtype, "bf16") && strcmp(dtype, "int8")) return cli_usage(a, "--dtype is bf16 or int8");
    ban_model *m = cli_load_model(a->model);
    if (!m) return CLI_FAIL;
    const ban_config *c = ban_model_config(m);
    quantize_job q;
    memset(&q, 0, sizeof q);
    q.m = m, q.dtype = dtype;
    banwrite w;
    banwrite_init(&w);
    int rc = CLI_OK, n_out = 0, n_reduced = 0;
    for (int i = 0; i < ban_model_meta_count(m); i++) { /* the metadata as it is */
        ban_meta_info e;
        ban_model_meta(m, i, &e);
        banwrite_meta(&w, e.key, (uint32_t)e.type, e.value, e.size);
    }
    uint64_t in_bytes = 0;
    for (int i = 0; i < ban_model_tensor_count(m) && rc == CLI_OK; i++) {
        ban_tensor_info t, out;
        ban_model_tensor(m, i, &t);
        in_bytes += t.bytes;
        if (strcmp(t.dtype, "f32"))
            rc = cli_error("%s: tensor '%s' is %s; ban quantize reads models of f32 weights (export one with "
                           "tools/ban_export.py)", a->model, t.name, t.dtype);
        else if (!reduced(&t)) {
            q.src[n_out++] = i;
            banwrite_tensor(&w, t.name, "f32", t.ndim, t.dims, quantize_fill, &q, n_out - 1);
        } else if (listed(c, 1, dtype, t.spec, 0, &out)) {
            rc = cli_error("%s: tensor '%s' is not one of this configuration's", a->model, t.name);
        } else {
            q.src[n_out++] = i, n_reduced++;
            banwrite_tensor(&w, out.name, out.dtype, out.ndim, out.dims, quantize_fill, &q, n_out - 1);
            if (!listed(c, 1, dtype, t.spec, 2, &out)) { /* int8: NAME_scales next */
                q.src[n_out++] = -i - 1;
                banwrite_tensor(&w, out.name, out.dtype, out.ndim, out.dims, quantize_fill, &q, n_out - 1);
            }
        }
    }
    char err[512];
    uint64_t size = 0;
    if (rc == CLI_OK && banwrite_commit(&w, output, stderr, &size, err, sizeof err)) rc = cli_error("%s", err);
    banwrite_free(&w);
    free(q.scales);
    ban_model_free(m);
    if (rc == CLI_OK) { /* what was written loads */
        ban_model *back = cli_load_model(output);
        if (!back) return CLI_FAIL;
        printf("%s: %s, %d of %d tensors reduced, %.1f MB (from %.1f MB)\n", output, dtype, n_reduced, n_out,
               (double)size / 1048576.0, (double)in_bytes / 1048576.0);
        ban_model_free(back);
    }
    return rc;
}

static const cli_option quantize_options[] = {
    {"--dtype", "D", 1, "bf16, or int8 (a scale per row): the Linear weights and word embeddings; the rest stays f32"},
    {"--output", "OUT.ban", 1, "the model to write (atomically: the old file stays until the new one is whole)"},
    {NULL, NULL, 0, NULL}};

const cli_command cli_quantize = {
    "quantize", quantize_main, CLI_MODEL, "--dtype bf16|int8 --output OUT.ban",
    "a model with its Linear weights and word embeddings in bf16 or int8 (docs/FORMAT.md)\n"
    "from a model of f32 weights (panels or rows; the output's reduced weights are in panels), read by\n"
    "ban.h's AVX-512 BF16 / VNNI kernels (plain C elsewhere, the same results); a line per tensor on stderr",
    quantize_options, 0,
    "ban quantize build/fixtures/g2.ban --dtype int8 --output g2_int8.ban"};
