/* ban info, ban tokenize: what a model file holds, and how it reads a question. */
#define _POSIX_C_SOURCE 200809L
#include <sys/types.h>

#include "cli.h"

/* ---- ban info -------------------------------------------------------------------------------- */

/* ban.h's weight table (ban_weight_specs): what a model may hold, in the table's letters */
static void print_weight_table(int as_json)
{
    int n;
    const ban_weight_spec *w = ban_weight_specs(&n);
    if (as_json) printf("{\"weights\": [");
    else printf("%-30s %-28s %-6s %-20s %-18s %s\n", "tensor", "bias", "stack", "rows", "cols", "when (linear: L)");
    for (int i = 0; i < n; i++) {
        if (as_json) {
            printf("%s\n  {\"name\": ", i ? "," : "");
            cli_json_cstr(stdout, w[i].name);
            printf(", \"bias\": ");
            if (w[i].bias) cli_json_cstr(stdout, w[i].bias);
            else printf("null");
            printf(", \"stack\": "), cli_json_cstr(stdout, w[i].stack);
            printf(", \"rows\": "), cli_json_cstr(stdout, w[i].rows);
            printf(", \"cols\": "), cli_json_cstr(stdout, w[i].cols);
            printf(", \"when\": "), cli_json_cstr(stdout, w[i].when);
            printf(", \"linear\": %s}", w[i].linear ? "true" : "false");
        } else {
            printf("%-30s %-28s %-6s %-20s %-18s %s%s\n", w[i].name, w[i].bias ? w[i].bias : "-", w[i].stack,
                   w[i].rows, w[i].cols, w[i].when, w[i].linear ? "  L" : "");
        }
    }
    if (as_json) printf("\n]}\n");
}

/* a model's tensors as stored: name, dtype, layout, dims, bytes, and the table's row; then
   the file's bytes by dtype */
static void print_tensors(const ban_model *m, int as_json)
{
    const int n = ban_model_tensor_count(m);
    const char *dtypes[8];
    uint64_t bytes[8];
    int n_dtypes = 0;
    if (as_json) printf("{\"tensors\": [");
    else printf("%-36s %-5s %-7s %-22s %12s  %s\n", "tensor", "dtype", "layout", "dims", "bytes", "table row (rows, cols)");
    for (int i = 0; i < n; i++) {
        ban_tensor_info t;
        if (ban_model_tensor(m, i, &t) != BAN_OK) continue;
        char dims[96] = "";
        for (int d = 0; d < t.ndim; d++)
            snprintf(dims + strlen(dims), sizeof dims - strlen(dims), "%s%llu", d ? ", " : "",
                     (unsigned long long)t.dims[d]);
        int k = 0;
        while (k < n_dtypes && strcmp(dtypes[k], t.dtype)) k++;
        if (k == n_dtypes && n_dtypes < 8) dtypes[n_dtypes] = t.dtype, bytes[n_dtypes++] = 0;
        if (k < 8) bytes[k] += t.bytes;
        if (as_json) {
            printf("%s\n  {\"name\": ", i ? "," : "");
            cli_json_cstr(stdout, t.name);
            printf(", \"dtype\": \"%s\", \"layout\": \"%s\", \"dims\": [%s], \"offset\": %llu, \"bytes\": %llu, "
                   "\"weight\": ", t.dtype, t.layout, dims, (unsigned long long)t.offset, (unsigned long long)t.bytes);
            if (t.spec) cli_json_cstr(stdout, t.spec->name);
            else printf("null");
            printf(", \"bias\": %s}", t.is_bias ? "true" : "false");
        } else {
            char row[128] = "-";
            if (t.spec)
                snprintf(row, sizeof row, "%s%s (%s%s%s%s%s)", t.spec->name, t.is_bias ? " bias" : "",
                         strcmp(t.spec->stack, "0") ? t.spec->stack : "", strcmp(t.spec->stack, "0") ? ", " : "",
                         t.spec->rows, t.is_bias || !strcmp(t.spec->cols, "0") ? "" : ", ",
                         t.is_bias || !strcmp(t.spec->cols, "0") ? "" : t.spec->cols);
            printf("%-36s %-5s %-7s %-22s %12llu  %s\n", t.name, t.dtype, *t.layout ? t.layout : "-", dims,
                   (unsigned long long)t.bytes, row);
        }
    }
    if (as_json) {
        printf("\n], \"bytes_by_dtype\": {");
        for (int k = 0; k < n_dtypes; k++) printf("%s\"%s\": %llu", k ? ", " : "", dtypes[k], (unsigned long long)bytes[k]);
        printf("}}\n");
    } else {
        printf("bytes by dtype:");
        for (int k = 0; k < n_dtypes; k++)
            printf("%s %s %.2f MB", k ? "," : "", dtypes[k], (double)bytes[k] / 1048576.0);
        printf("\n");
    }
}

static void print_config(const ban_model *m, const char *path)
{
    const ban_config *c = ban_model_config(m);
    int64_t epoch;
    const char *src = ban_model_meta_string(m, "source.checkpoint");
    const char *framework = ban_model_meta_string(m, "source.framework");
    printf("model:              %s\n", path);
    printf("task:               %s\n", c->task == BAN_TASK_VQA ? "vqa (visual question answering)"
                                                               : "grounding (phrase localisation)");
    if (src) printf("source:             %s%s%s%s", src, framework ? " (" : "", framework ? framework : "",
                    framework ? ")" : "");
    if (src && ban_model_meta_int(m, "source.epoch", &epoch)) printf(", epoch %lld", (long long)epoch);
    if (src) printf("\n");
    printf("parameters:         %zu\n", ban_model_parameter_count(m));
    printf("vocabulary:         %d words%s (padding id %d, unknown words -> %d)\n", c->vocab_size,
           c->has_vocabulary ? "" : ", not in the file", c->padding_id, c->unknown_id);
    printf("tokenizer:          %s\n", c->tokenizer == BAN_TOKENIZER_OPENVQA
                                           ? "OpenVQA's (delete .,'!?\"()*#:; and split on - and /)"
                                           : "the reference's (delete , and ?, split off 's)");
    printf("word embedding:     %d x %d%s\n", c->embedding_tables, c->embedding_dim,
           c->embedding_tables == 2 ? " (two tables concatenated)" : "");
    printf("box features:       %d%s\n", c->feature_dim, c->spatial_concat ? " + 6 spatial values appended" : "");
    if (c->adapter_dim)
        printf("box adapter:        OpenVQA's GQA adapter to %d (box values embedded in %d)\n", c->adapter_dim,
               c->adapter_box_dim);
    printf("hidden size:        %d\n", c->hidden_dim);
    printf("glimpses:           %d (attention width %d x %d", c->num_glimpses, c->attention_rank, c->hidden_dim);
    if (c->glimpse_rank > 1) printf(", glimpses %d x %d, sum-pooled", c->glimpse_rank, c->hidden_dim);
    printf(")\n");
    if (c->task == BAN_TASK_VQA) {
        printf("answers:            %d%s\n", c->num_answers, c->has_answers ? "" : " (strings not in the file)");
        printf("classifier hidden:  %d\n", c->classifier_hidden);
        if (c->counter_objects) printf("counter:            top %d boxes\n", c->counter_objects);
        else printf("counter:            none\n");
    }
    printf("questions:          %s, trained on %d positions\n",
           c->question_masking ? "padding masked" : "padding not masked (as the reference and OpenVQA train)",
           c->question_length);
    if (c->pad_boxes)
        printf("padded boxes:       padded with zero rows to %d, not masked (OpenVQA's GQA models)\n", c->pad_boxes);
    else
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
}

static int info_main(const cli_args *a)
{
    const int tensors = cli_flag(a, "--tensors"), as_json = cli_flag(a, "--json");
    if (as_json && !tensors) return cli_usage(a, "--json goes with --tensors");
    if (!a->model) {
        if (!tensors)
            return cli_usage(a, "a model is required: ban info MODEL.ban ..., or --model MODEL.ban (or --tensors "
                                "alone: ban.h's weight table)");
        print_weight_table(as_json);
        return CLI_OK;
    }
    ban_model *m = cli_load_model(a->model);
    if (!m) return CLI_FAIL;
    if (tensors) print_tensors(m, as_json);
    else print_config(m, a->model);
    ban_model_free(m);
    return CLI_OK;
}

static const cli_option info_options[] = {
    {"--tensors", NULL, 0, "the model's tensors (name, dtype, layout, dims, bytes, their row of ban.h's weight\n"
                           "table) and its bytes by dtype; without a model, ban.h's weight table itself"},
    {"--json", NULL, 0, "with --tensors: as JSON"},
    {NULL, NULL, 0, NULL}};

const cli_command cli_info = {
    "info", info_main, CLI_MODEL_OPTIONAL, "[--tensors [--json]]",
    "configuration, parameter count, vocabulary, answers, conventions of a model file; --tensors: its tensors",
    info_options, 0,
    "ban info build/fixtures/g2.ban\nban info build/fixtures/g2.ban --tensors\nban info --tensors --json"};

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
    "token ids of each TEXT (or of each line of stdin) by the model's tokenizer: the reference's\n"
    "(Python's lower() and split(), ',' and '?' deleted, \"'s\" split off) or OpenVQA's (.,'!?\"()*#:;\n"
    "deleted, - and / split on); unknown words -> the unknown id",
    tokenize_options, -1,
    "ban tokenize build/fixtures/g2.ban --pad 14 \"What is on the table?\""};
