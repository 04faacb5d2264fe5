/* ban info, ban tokenize: what a model file holds, and how it reads a question. */
#define _POSIX_C_SOURCE 200809L
#include <sys/types.h>

#include "cli.h"

/* ---- ban info -------------------------------------------------------------------------------- */

/* the file's size by dtype, then each tensor: dtype, layout, shape, bytes */
static void info_tensors(const ban_model *m)
{
    static const char *const dtypes[] = {"f32", "f16", "bf16", "int8"};
    uint64_t bytes[4] = {0}, all = 0;
    int count[4] = {0};
    const int n = ban_model_tensor_count(m);
    for (int i = 0; i < n; i++) {
        ban_tensor_info t;
        ban_model_tensor(m, i, &t);
        for (int d = 0; d < 4; d++)
            if (!strcmp(t.dtype, dtypes[d])) bytes[d] += t.bytes, count[d]++;
        all += t.bytes;
    }
    printf("tensor bytes:       %.2f MB:", (double)all / 1048576.0);
    for (int d = 0, first = 1; d < 4; d++)
        if (count[d]) printf("%s %s %.2f MB (%d tensor%s)", first ? "" : ",", dtypes[d], (double)bytes[d] / 1048576.0,
                             count[d], count[d] == 1 ? "" : "s"), first = 0;
    printf("\ntensors:\n");
    for (int i = 0; i < n; i++) {
        ban_tensor_info t;
        char shape[96] = "";
        ban_model_tensor(m, i, &t);
        for (int d = 0; d < t.ndim; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%llu", d ? ", " : "",
                     (unsigned long long)t.dims[d]);
        printf("  %-38s %-4s %-6s (%s) %llu bytes\n", t.name, t.dtype, t.is_scale ? "scales" : t.layout, shape,
               (unsigned long long)t.bytes);
    }
}

static int info_main(const cli_args *a)
{
    ban_model *m = cli_load_model(a->model);
    if (!m) return CLI_FAIL;
    const ban_config *c = ban_model_config(m);
    int64_t epoch;
    const char *src = ban_model_meta_string(m, "source.checkpoint");
    printf("model:              %s\n", a->model);
    printf("task:               %s\n", c->task == BAN_TASK_VQA ? "vqa (visual question answering)"
                                                               : "grounding (phrase localisation)");
    if (src) printf("source:             %s%s", src, ban_model_meta_int(m, "source.epoch", &epoch) ? "" : "\n");
    if (src && ban_model_meta_int(m, "source.epoch", &epoch)) printf(", epoch %lld\n", (long long)epoch);
    printf("parameters:         %zu\n", ban_model_parameter_count(m));
    printf("vocabulary:         %d words%s (padding id %d, unknown words -> %d)\n", c->vocab_size,
           c->has_vocabulary ? "" : ", not in the file", c->padding_id, c->unknown_id);
    printf("word embedding:     %d x %d%s\n", c->embedding_tables, c->embedding_dim,
           c->embedding_tables == 2 ? " (two tables concatenated)" : "");
    printf("box features:       %d%s\n", c->feature_dim, c->spatial_concat ? " + 6 spatial values appended" : "");
    printf("hidden size:        %d\n", c->hidden_dim);
    printf("glimpses:           %d (attention width %d x %d)\n", c->num_glimpses, c->attention_rank, c->hidden_dim);
    if (c->task == BAN_TASK_VQA) {
        printf("answers:            %d%s\n", c->num_answers, c->has_answers ? "" : " (strings not in the file)");
        printf("classifier hidden:  %d\n", c->classifier_hidden);
        if (c->counter_objects) printf("counter:            top %d boxes\n", c->counter_objects);
        else printf("counter:            none\n");
    }
    printf("questions:          %s, trained on %d positions\n",
           c->question_masking ? "padding masked" : "padding not masked (reference)", c->question_length);
    printf("padded boxes:       %s\n", c->zero_row_padding ? "all-zero feature rows (reference)" : "by count only");
    if (c->panel_weights == c->linear_weights)
        printf("weights:            in panels (ban.h's own matrix products)\n");
    else if (!c->panel_weights)
        printf("weights:            in rows (CBLAS matrix products)\n");
    else
        printf("weights:            %d of %d in panels (ban.h's own products), the rest in rows (CBLAS)\n",
               c->panel_weights, c->linear_weights);
    if (c->encoder_layers)
        printf("image encoder:      %d x %d RGB -> %d layers -> %d x %d grid of %d-d cells\n", c->image_height,
               c->image_width, c->encoder_layers, c->grid_height, c->grid_width, c->feature_dim);
    info_tensors(m);
    ban_model_free(m);
    return CLI_OK;
}

const cli_command cli_info = {
    "info", info_main, CLI_MODEL, "",
    "configuration, parameter count, vocabulary, answers, conventions of a model file\n"
    "then its bytes by dtype (f32, f16, bf16, int8) and each tensor: dtype, layout, shape, bytes",
    NULL, 0,
    "ban info build/fixtures/g2.ban"};

/* ---- ban tokenize ---------------------------------------------------------------------------- */

static int tokenize_main(const cli_args *a)
{
    long pad = 0;
    if (cli_long(a, "--pad", 1, BAN_MAX_TOKENS, &pad)) return CLI_USAGE;
    ban_ctx *ctx = NULL;
    int rc = CLI_OK;
    ban_model *m = cli_load_model(a->model);
    if (!m) return CLI_FAIL;
    if (ban_ctx_create(m, NULL, &ctx) != BAN_OK) rc = cli_error("%s", ban_ctx_error(ctx));
    enum { CAP = 4096 };
    int32_t *ids = (int32_t *)malloc(CAP * sizeof(int32_t));
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    if (!ids) rc = cli_error("out of memory");
    for (int i = 0; rc == CLI_OK; i++) {
        const char *text;
        if (a->n_args > 0) {
            if (i >= a->n_args) break;
            text = a->arg[i];
        } else {
            ssize_t got = getline(&line, &cap, stdin);
            if (got < 0) break;
            while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
            text = line;
        }
        lineno++;
        int n;
        if (ban_tokenize(ctx, text, ids, CAP, &n) != BAN_OK) {
            rc = cli_error("line %ld: %s", lineno, ban_ctx_error(ctx));
            break;
        }
        const int shown = pad ? (int)pad : (n < CAP ? n : CAP);
        cli_pad_tokens(ids, ids, n < CAP ? n : CAP, shown, ban_model_config(m)->padding_id);
        for (int t = 0; t < shown; t++) printf("%s%d", t ? " " : "", ids[t]);
        printf("\n");
    }
    free(line);
    free(ids);
    ban_ctx_free(ctx);
    ban_model_free(m);
    return rc;
}

static const cli_option tokenize_options[] = {
    {"--pad", "N", 0, "truncate or pad to N positions with the padding id, as the reference does with 14\n"
                      "(default: the question's own tokens)"},
    {NULL, NULL, 0, NULL}};

const cli_command cli_tokenize = {
    "tokenize", tokenize_main, CLI_MODEL, "[--pad N] [TEXT ...]",
    "token ids of each TEXT (or of each line of stdin) by the reference's tokenizer\n"
    "(Python's lower() and split(), ',' and '?' deleted, \"'s\" split off; unknown words -> the unknown id)",
    tokenize_options, -1,
    "ban tokenize build/fixtures/g2.ban --pad 14 \"What is on the table?\""};
