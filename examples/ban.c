/* ban - the command-line tool of ban.h.

   ban info MODEL.ban
   ban run MODEL.ban --features v.npy --spatials b.npy (--tokens q.npy | --questions FILE) ...

   Arrays travel as NumPy .npy files so that research code can call the library
   without writing C. Run `ban help` for every subcommand and option. */
#define _POSIX_C_SOURCE 200809L
#define BAN_IMPLEMENTATION
#include "../ban.h"
#define NPY_IMPLEMENTATION
#include "npy.h"

#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ban: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_FAIL;
}

int cli_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ban: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see 'ban help')\n", stderr);
    va_end(ap);
    return CLI_USAGE;
}

int cli_parse(int argc, char **argv, int first, cli_opt *opts, const char **pos, int max_pos, int *n_pos)
{
    *n_pos = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] == '-') {
            cli_opt *o = opts;
            while (o->name && strcmp(o->name, a) != 0) o++;
            if (!o->name) return cli_usage("unknown option %s", a), -1;
            if (!o->takes_value) o->value = "1";
            else if (i + 1 >= argc) return cli_usage("%s needs a value", a), -1;
            else o->value = argv[++i];
        } else {
            if (*n_pos >= max_pos) return cli_usage("unexpected argument '%s'", a), -1;
            pos[(*n_pos)++] = a;
        }
    }
    return 0;
}

FILE *cli_atomic_open(const char *path, char *tmp, size_t tmplen)
{
    const char *slash = strrchr(path, '/');
    const size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    if (snprintf(tmp, tmplen, "%.*s.%s.XXXXXX", (int)dir_len, path, path + dir_len) >= (int)tmplen) return NULL;
    int fd = mkstemp(tmp);
    if (fd < 0) return NULL;
    mode_t mask = umask(0);
    umask(mask);
    FILE *f = fchmod(fd, 0666 & ~mask) == 0 ? fdopen(fd, "wb") : NULL;
    if (!f) close(fd), unlink(tmp);
    return f;
}

int cli_atomic_close(FILE *f, const char *tmp, const char *path)
{
    int ok = fflush(f) == 0 && !ferror(f) && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return cli_error("%s: cannot write: %s", path, strerror(e));
    }
    return CLI_OK;
}

void cli_json_string(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fputc('\\', f), fputc(c, f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

void cli_json_cstr(FILE *f, const char *s) { cli_json_string(f, s, strlen(s)); }

ban_model *cli_load_model(const char *path)
{
    ban_model *m;
    if (ban_model_load(path, &m) == BAN_OK) return m;
    cli_error("%s", m ? ban_model_error(m) : "out of memory");
    ban_model_free(m);
    return NULL;
}

const char *cli_get(const cli_opt *opts, const char *name)
{
    for (; opts->name; opts++)
        if (strcmp(opts->name, name) == 0) return opts->value;
    return NULL;
}

int cli_int(const char *text, const char *what, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (!*text || *end || v < lo || v > hi) {
        cli_usage("%s must be a whole number in %ld..%ld (got '%s')", what, lo, hi, text);
        return 0;
    }
    *out = v;
    return 1;
}

/* ---- ban info ------------------------------------------------------------------ */

int cmd_info(int argc, char **argv)
{
    cli_opt opts[] = {{NULL, 0, NULL}};
    const char *pos[1];
    int n_pos;
    if (cli_parse(argc, argv, 2, opts, pos, 1, &n_pos) || n_pos != 1)
        return n_pos != 1 ? cli_usage("usage: ban info MODEL.ban") : CLI_USAGE;
    ban_model *m = cli_load_model(pos[0]);
    if (!m) return CLI_FAIL;
    const ban_config *c = ban_model_config(m);
    int64_t epoch;
    const char *src = ban_model_meta_string(m, "source.checkpoint");
    printf("model:              %s\n", pos[0]);
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
    ban_model_free(m);
    return CLI_OK;
}

/* ---- ban run --------------------------------------------------------------------- */

typedef struct {
    npy_array v, b, q, n, tn, e, ec, px, ii;
} run_arrays;

static void run_free(run_arrays *a)
{
    npy_free(&a->v), npy_free(&a->b), npy_free(&a->q), npy_free(&a->n), npy_free(&a->tn), npy_free(&a->e);
    npy_free(&a->ec), npy_free(&a->px), npy_free(&a->ii);
}

static int load_ints(const char *path, npy_array *arr, int ndim, int64_t rows, const char *what, int32_t **out)
{
    char err[512];
    if (npy_load(path, arr, err, sizeof err)) return cli_error("%s", err);
    if ((arr->kind != 'i' && arr->kind != 'l') || arr->ndim != ndim || arr->shape[0] != rows)
        return cli_error("%s: %s must be int32 or int64 of %d dimension%s with %lld rows", path, what, ndim,
                         ndim > 1 ? "s" : "", (long long)rows);
    *out = (int32_t *)malloc(arr->count ? arr->count * sizeof(int32_t) : 1);
    if (!*out) return cli_error("out of memory");
    if (npy_to_int32(arr, path, *out, err, sizeof err)) return cli_error("%s", err);
    return CLI_OK;
}

/* Questions one per line -> tokens (B, L) padded with the padding id, and counts. */
static int tokenize_file(ban_ctx *ctx, const ban_model *m, const char *path, int64_t B, int32_t **tokens,
                         int **counts, int *L_out)
{
    FILE *f = fopen(path, "rb");
    if (!f) return cli_error("%s: cannot open", path);
    const int cap = BAN_MAX_TOKENS;
    int32_t *ids = (int32_t *)malloc((size_t)B * cap * sizeof(int32_t));
    int *n = (int *)malloc((size_t)B * sizeof(int));
    char *line = NULL;
    size_t line_cap = 0;
    int64_t row = 0;
    int L = 1, rc = CLI_OK;
    ssize_t got;
    if (!ids || !n) rc = cli_error("out of memory");
    while (rc == CLI_OK && (got = getline(&line, &line_cap, f)) >= 0) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (row >= B) {
            rc = cli_error("%s: more than the %lld questions the features hold", path, (long long)B);
            break;
        }
        int count;
        if (strlen(line) != (size_t)got) rc = cli_error("%s:%lld: NUL byte in the line", path, (long long)row + 1);
        else if (ban_tokenize(ctx, line, ids + row * cap, cap, &count) != BAN_OK)
            rc = cli_error("%s:%lld: %s", path, (long long)row + 1, ban_ctx_error(ctx));
        else {
            if (count > cap) count = cap;
            n[row] = count;
            if (count > L) L = count;
            row++;
        }
    }
    free(line);
    fclose(f);
    if (rc == CLI_OK && row != B)
        rc = cli_error("%s: %lld questions for %lld examples of features", path, (long long)row, (long long)B);
    if (rc == CLI_OK) {
        /* the question length as the model runs it: at least its trained length */
        int P = ban_question_positions(m, L);
        if (P > L) L = P;
        int32_t *out = (int32_t *)malloc((size_t)B * L * sizeof(int32_t));
        if (!out) rc = cli_error("out of memory");
        for (int64_t b = 0; out && b < B; b++)
            for (int t = 0; t < L; t++) out[b * L + t] = t < n[b] ? ids[b * cap + t] : ban_model_config(m)->padding_id;
        *tokens = out;
        *counts = n;
        *L_out = L;
        n = NULL;
    }
    free(ids);
    free(n);
    return rc;
}

static int save(const char *path, const char *descr, int ndim, const int64_t *shape, const void *data)
{
    char err[512];
    if (npy_save(path, descr, ndim, shape, data, err, sizeof err)) return cli_error("%s", err);
    return CLI_OK;
}

int cmd_run(int argc, char **argv)
{
    cli_opt opts[] = {{"--features", 1, NULL},      {"--spatials", 1, NULL},   {"--tokens", 1, NULL},
                      {"--questions", 1, NULL},     {"--box-counts", 1, NULL}, {"--token-counts", 1, NULL},
                      {"--entities", 1, NULL},      {"--entity-counts", 1, NULL}, {"--logits", 1, NULL},
                      {"--attention", 1, NULL},     {"--entropy", 1, NULL},    {"--answers-out", 1, NULL},
                      {"--glimpses", 1, NULL},      {"--batch", 1, NULL},      {"--pixels", 1, NULL},
                      {"--image-index", 1, NULL},   {NULL, 0, NULL}};
    const char *pos[1];
    int n_pos;
    if (cli_parse(argc, argv, 2, opts, pos, 1, &n_pos)) return CLI_USAGE;
    const char *f_v = cli_get(opts, "--features"), *f_b = cli_get(opts, "--spatials");
    const char *f_px = cli_get(opts, "--pixels"), *f_ii = cli_get(opts, "--image-index");
    const char *f_q = cli_get(opts, "--tokens"), *f_txt = cli_get(opts, "--questions");
    const char *f_n = cli_get(opts, "--box-counts"), *f_tn = cli_get(opts, "--token-counts");
    const char *f_e = cli_get(opts, "--entities"), *f_ec = cli_get(opts, "--entity-counts");
    const char *o_logits = cli_get(opts, "--logits"), *o_att = cli_get(opts, "--attention");
    const char *o_ent = cli_get(opts, "--entropy"), *o_ans = cli_get(opts, "--answers-out");
    long glimpses = 0, chunk = 32;
    if (n_pos != 1 || (!f_v == !f_px) || (!f_q == !f_txt) || !o_logits)
        return cli_usage("usage: ban run MODEL.ban (--features v.npy [--spatials b.npy] | --pixels p.npy) (--tokens "
                         "q.npy | --questions FILE) --logits OUT.npy [...]");
    if (cli_get(opts, "--glimpses") && !cli_int(cli_get(opts, "--glimpses"), "--glimpses", 0, BAN_MAX_GLIMPSES, &glimpses))
        return CLI_USAGE;
    if (cli_get(opts, "--batch") && !cli_int(cli_get(opts, "--batch"), "--batch", 1, BAN_MAX_BATCH, &chunk))
        return CLI_USAGE;

    ban_model *m = NULL;
    ban_ctx *ctx = NULL;
    run_arrays a;
    memset(&a, 0, sizeof a);
    int32_t *tokens = NULL, *box_n = NULL, *tok_n32 = NULL, *ents = NULL, *ent_n = NULL, *img_of = NULL;
    int *tok_n = NULL, *box_counts = NULL, *ent_counts = NULL;
    float *logits = NULL, *att = NULL, *entropy = NULL;
    unsigned char *gather = NULL; /* the images of one chunk */
    int *chunk_img = NULL, *chunk_counts = NULL;
    int rc = CLI_OK;
    char err[512];
    if (!(m = cli_load_model(pos[0]))) {
        rc = CLI_FAIL;
        goto done;
    }
    const ban_config *c = ban_model_config(m);
    const int vqa = c->task == BAN_TASK_VQA, pixels = c->encoder_layers != 0;
    int64_t N, K;
    size_t img_bytes; /* one image's features, or pixels */
    if (pixels != !!f_px) {
        rc = cli_error("%s %s", pos[0], pixels ? "reads images: give --pixels (N, H, W, 3) uint8"
                                               : "reads box features: give --features");
        goto done;
    }
    if (pixels) {
        if (npy_load(f_px, &a.px, err, sizeof err)) { rc = cli_error("%s", err); goto done; }
        if (a.px.kind != 'u' || a.px.ndim != 4 || a.px.shape[1] != c->image_height || a.px.shape[2] != c->image_width ||
            a.px.shape[3] != 3 || a.px.shape[0] < 1) {
            rc = cli_error("%s: pixels must be uint8 (N, %d, %d, 3)", f_px, c->image_height, c->image_width);
            goto done;
        }
        N = a.px.shape[0], K = (int64_t)c->grid_height * c->grid_width;
        img_bytes = (size_t)c->image_height * c->image_width * 3;
    } else {
        if (npy_load(f_v, &a.v, err, sizeof err)) { rc = cli_error("%s", err); goto done; }
        if (a.v.kind != 'f' || a.v.ndim != 3 || a.v.shape[2] != c->feature_dim || a.v.shape[0] < 1 || a.v.shape[1] < 1) {
            rc = cli_error("%s: features must be float32 (B, K, %d), not %s of %d dimensions (last %lld)", f_v,
                           c->feature_dim, a.v.kind == 'f' ? "float32" : "integers", a.v.ndim,
                           (long long)(a.v.ndim ? a.v.shape[a.v.ndim - 1] : 0));
            goto done;
        }
        N = a.v.shape[0], K = a.v.shape[1];
        img_bytes = (size_t)K * c->feature_dim * sizeof(float);
        if (K > BAN_MAX_BOXES) { rc = cli_error("%s: %lld boxes exceed BAN_MAX_BOXES (%d)", f_v, (long long)K, BAN_MAX_BOXES); goto done; }
        if (f_b) {
            if (npy_load(f_b, &a.b, err, sizeof err)) { rc = cli_error("%s", err); goto done; }
            if (a.b.kind != 'f' || a.b.ndim != 3 || a.b.shape[0] != N || a.b.shape[1] != K || a.b.shape[2] != 6) {
                rc = cli_error("%s: spatials must be float32 (%lld, %lld, 6)", f_b, (long long)N, (long long)K);
                goto done;
            }
        }
        if (f_n) {
            if ((rc = load_ints(f_n, &a.n, 1, N, "box counts", &box_n))) goto done;
            box_counts = (int *)box_n;
        }
    }
    int64_t B = N; /* questions: one per image, unless --image-index maps them */
    if (f_ii) {
        char e2[512];
        if (npy_load(f_ii, &a.ii, e2, sizeof e2)) { rc = cli_error("%s", e2); goto done; }
        if (a.ii.ndim != 1 || a.ii.shape[0] < 1) { rc = cli_error("%s: the image index must be (B,) integers", f_ii); goto done; }
        B = a.ii.shape[0];
        npy_free(&a.ii);
        if ((rc = load_ints(f_ii, &a.ii, 1, B, "image index", &img_of))) goto done;
        for (int64_t b = 0; b < B; b++)
            if (img_of[b] < 0 || img_of[b] >= N) {
                rc = cli_error("%s: question %lld refers to image %d of %lld", f_ii, (long long)b, img_of[b], (long long)N);
                goto done;
            }
    }
    if (!vqa && !f_e) { rc = cli_error("%s is a grounding model: give --entities", pos[0]); goto done; }
    if (vqa && (f_e || f_ec)) { rc = cli_error("%s is a VQA model: --entities is for grounding models", pos[0]); goto done; }
    if (!vqa && (o_att || o_ent || o_ans)) {
        rc = cli_error("--attention, --entropy and --answers-out are VQA outputs; a grounding model's logits are its "
                       "attention logits");
        goto done;
    }
    if (o_ans && !c->has_answers) { rc = cli_error("%s carries no answer strings (export it with --answers)", pos[0]); goto done; }
    int E = 0;
    if (f_e) {
        if ((rc = load_ints(f_e, &a.e, 2, B, "entities", &ents))) goto done;
        if (a.e.shape[1] < 1 || a.e.shape[1] > BAN_MAX_ENTITIES) {
            rc = cli_error("%s: %lld entities per sentence (1..%d)", f_e, (long long)a.e.shape[1], BAN_MAX_ENTITIES);
            goto done;
        }
        E = (int)a.e.shape[1];
        if (f_ec) {
            if ((rc = load_ints(f_ec, &a.ec, 1, B, "entity counts", &ent_n))) goto done;
            ent_counts = (int *)ent_n;
        }
    }

    ban_limits lim = {0, 0, 0, 0, 0};
    lim.max_batch = (int)(B < chunk ? B : chunk);
    lim.max_boxes = (int)K;
    lim.max_entities = E ? E : 1;
    lim.max_tokens = BAN_MAX_TOKENS;
    int L = 0;
    if (f_txt) {
        if (ban_ctx_create(m, &lim, &ctx) != BAN_OK) { rc = cli_error("%s", ban_ctx_error(ctx)); goto done; }
        if ((rc = tokenize_file(ctx, m, f_txt, B, &tokens, &tok_n, &L))) goto done;
    } else {
        if ((rc = load_ints(f_q, &a.q, 2, B, "tokens", &tokens))) goto done;
        L = (int)a.q.shape[1];
        if (L < 1 || L > BAN_MAX_TOKENS) { rc = cli_error("%s: %d tokens per question (1..%d)", f_q, L, BAN_MAX_TOKENS); goto done; }
        if (f_tn) {
            if ((rc = load_ints(f_tn, &a.tn, 1, B, "token counts", &tok_n32))) goto done;
            tok_n = (int *)tok_n32;
        }
    }
    ban_ctx_free(ctx);
    ctx = NULL;
    lim.max_tokens = L;
    if (ban_ctx_create(m, &lim, &ctx) != BAN_OK) { rc = cli_error("%s", ban_ctx_error(ctx)); goto done; }

    const int G = c->num_glimpses, P = ban_question_positions(m, L);
    const size_t per_logits = vqa ? (size_t)c->num_answers : (size_t)G * K * E;
    logits = (float *)malloc((size_t)B * per_logits * sizeof(float));
    if (o_att) att = (float *)malloc((size_t)B * G * K * P * sizeof(float));
    if (o_ent) entropy = (float *)malloc((size_t)B * G * sizeof(float));
    gather = (unsigned char *)malloc((size_t)lim.max_batch * (img_bytes + (size_t)K * 6 * sizeof(float)));
    chunk_img = (int *)malloc(sizeof(int) * (size_t)lim.max_batch * 3);
    if (!logits || (o_att && !att) || (o_ent && !entropy) || !gather || !chunk_img) {
        rc = cli_error("out of memory for the outputs");
        goto done;
    }
    chunk_counts = chunk_img + lim.max_batch;
    int *local = chunk_counts + lim.max_batch;
    for (int64_t b0 = 0; b0 < B; b0 += lim.max_batch) {
        const int n = (int)(B - b0 < lim.max_batch ? B - b0 : lim.max_batch);
        ban_input in;
        ban_output out;
        memset(&in, 0, sizeof in);
        memset(&out, 0, sizeof out);
        const unsigned char *imgs = pixels ? (const unsigned char *)a.px.data : (const unsigned char *)a.v.data;
        const float *spats = a.b.data;
        in.batch = n;
        if (img_of) { /* gather the chunk's distinct images, in order of first use */
            int n_img = 0;
            float *sp = (float *)(void *)(gather + (size_t)lim.max_batch * img_bytes);
            for (int q = 0; q < n; q++) {
                int src = img_of[b0 + q], j = 0;
                while (j < n_img && chunk_img[j] != src) j++;
                if (j == n_img) {
                    chunk_img[n_img] = src;
                    memcpy(gather + (size_t)j * img_bytes, imgs + (size_t)src * img_bytes, img_bytes);
                    if (spats) memcpy(sp + (size_t)j * K * 6, spats + (size_t)src * K * 6, sizeof(float) * K * 6);
                    if (box_counts) chunk_counts[j] = box_counts[src];
                    n_img++;
                }
                local[q] = j;
            }
            in.images = n_img, in.image_index = local;
            imgs = gather;
            spats = spats ? sp : NULL;
            in.box_counts = box_counts ? chunk_counts : NULL;
        } else {
            imgs += (size_t)b0 * img_bytes;
            spats = spats ? spats + b0 * K * 6 : NULL;
            in.box_counts = box_counts ? box_counts + b0 : NULL;
        }
        if (pixels) in.pixels = imgs;
        else in.boxes = (int)K, in.features = (const float *)(const void *)imgs, in.spatials = spats;
        in.tokens_len = L;
        in.tokens = tokens + b0 * L;
        in.token_counts = tok_n ? tok_n + b0 : NULL;
        in.entities_len = E;
        in.entities = ents ? ents + b0 * E : NULL;
        in.entity_counts = ent_counts ? ent_counts + b0 : NULL;
        in.glimpses = (int)glimpses;
        out.logits = logits + b0 * per_logits;
        out.attention = att ? att + (size_t)b0 * G * K * P : NULL;
        out.entropy = entropy ? entropy + b0 * G : NULL;
        if (ban_forward(ctx, &in, &out) != BAN_OK) {
            rc = cli_error("%s (examples %lld..%lld)", ban_ctx_error(ctx), (long long)b0, (long long)(b0 + n - 1));
            goto done;
        }
    }
    if (vqa) {
        int64_t shape[2] = {B, c->num_answers};
        if ((rc = save(o_logits, "<f4", 2, shape, logits))) goto done;
    } else {
        int64_t shape[4] = {B, G, K, E};
        if ((rc = save(o_logits, "<f4", 4, shape, logits))) goto done;
    }
    if (att) {
        int64_t shape[4] = {B, G, K, P};
        if ((rc = save(o_att, "<f4", 4, shape, att))) goto done;
    }
    if (entropy) {
        int64_t shape[2] = {B, G};
        if ((rc = save(o_ent, "<f4", 2, shape, entropy))) goto done;
    }
    if (o_ans) { /* "-" is stdout; a file is written atomically */
        char tmp[4096];
        int to_stdout = !strcmp(o_ans, "-");
        FILE *f = to_stdout ? stdout : cli_atomic_open(o_ans, tmp, sizeof tmp);
        if (!f) { rc = cli_error("%s: cannot create a temporary file beside it", o_ans); goto done; }
        for (int64_t b = 0; b < B; b++)
            fprintf(f, "%s\n", ban_model_answer(m, ban_argmax(logits + b * per_logits, c->num_answers)));
        if (to_stdout) fflush(stdout);
        else if ((rc = cli_atomic_close(f, tmp, o_ans))) goto done;
    }
done:
    run_free(&a);
    free(tokens), free(box_n), free(tok_n32), free(ents), free(ent_n), free(img_of);
    if (f_txt) free(tok_n);
    free(logits), free(att), free(entropy), free(gather), free(chunk_img);
    ban_ctx_free(ctx);
    ban_model_free(m);
    return rc;
}

/* ---- ban tokenize ------------------------------------------------------------------ */

int cmd_tokenize(int argc, char **argv)
{
    cli_opt opts[] = {{"--pad", 1, NULL}, {NULL, 0, NULL}};
    const char *pos[64];
    int n_pos;
    long pad = 0;
    if (cli_parse(argc, argv, 2, opts, pos, 64, &n_pos)) return CLI_USAGE;
    if (n_pos < 1) return cli_usage("usage: ban tokenize MODEL.ban [--pad N] [TEXT ...]  (no TEXT: lines of stdin)");
    if (cli_get(opts, "--pad") && !cli_int(cli_get(opts, "--pad"), "--pad", 1, BAN_MAX_TOKENS, &pad)) return CLI_USAGE;
    ban_ctx *ctx = NULL;
    int rc = CLI_OK;
    ban_model *m = cli_load_model(pos[0]);
    if (!m) return CLI_FAIL;
    if (ban_ctx_create(m, NULL, &ctx) != BAN_OK) rc = cli_error("%s", ban_ctx_error(ctx));
    enum { CAP = 4096 };
    int32_t *ids = (int32_t *)malloc(CAP * sizeof(int32_t));
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    for (int i = 1; rc == CLI_OK; i++) {
        const char *text;
        if (n_pos > 1) {
            if (i >= n_pos) break;
            text = pos[i];
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
        int shown = pad ? (int)pad : (n < CAP ? n : CAP);
        for (int t = 0; t < shown; t++)
            printf("%s%d", t ? " " : "", t < n && t < CAP ? ids[t] : ban_model_config(m)->padding_id);
        printf("\n");
    }
    free(line);
    free(ids);
    ban_ctx_free(ctx);
    ban_model_free(m);
    return rc;
}

/* ---- main -------------------------------------------------------------------------- */
/* subcommands defined in the other examples/cmd_*.c files */
int cmd_ask(int argc, char **argv);
int cmd_easyvqa_eval(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_encode(int argc, char **argv);

int cmd_features(int argc, char **argv); /* examples/cmd_features.c */
int cmd_vqa(int argc, char **argv);      /* examples/cmd_vqa.c */
int cmd_ground(int argc, char **argv);   /* examples/cmd_ground.c */

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *help;
} commands[] = {
    {"info", cmd_info, "info MODEL.ban\n      configuration, parameter count, vocabulary, answers, conventions"},
    {"tokenize", cmd_tokenize,
     "tokenize MODEL.ban [--pad N] [TEXT ...]\n      token ids of each TEXT (or each line of stdin) by the reference tokenizer; --pad N\n"
     "      truncates or pads to N positions with the padding id, as the reference does with 14"},
    {"ask", cmd_ask,
     "ask --model MODEL.ban --image IMG.png --question TEXT [--top-k 5] [--attention-png OUT.png]\n"
     "      answer a question about an image (PNG or BMP; resized to the model's input) with a model that has\n"
     "      an image encoder; prints the answer, the top-k with probabilities, and draws each glimpse's attention"},
    {"easyvqa-eval", cmd_easyvqa_eval,
     "easyvqa-eval --model MODEL.ban --data SPLIT_DIR [--json] [--batch N] [--predictions-out FILE]\n"
     "      accuracy on an easy-VQA split (images/<id>.png, questions.json), overall and per kind"},
    {"encode", cmd_encode,
     "encode MODEL.ban --pixels p.npy --features-out f.npy [--spatials-out s.npy]\n"
     "      an image encoder's grid features (N, K, C) and cell boxes (N, K, 6) for uint8 images (N, H, W, 3)"},
    {"demo", cmd_demo,
     "demo [--model examples/models/easyvqa.ban] [--out DIR]\n"
     "      draw a few shapes, ask questions about them, print the answers"},
    {"bench", cmd_bench,
     "bench --preset paper-ban8 [--batch B] [--threads T] [--boxes K] [--runs N] [--json] [--layout L]\n"
     "      speed on a random model of the paper's size: ms per question, GFLOP/s, the machine's sgemm on the same\n"
     "      products, efficiency, model load time, peak RSS; --layout rows stores the weights in rows (CBLAS\n"
     "      does the products) instead of the exporter's panels (ban.h's own kernel)\n"
     "  ban bench --preset paper-flickr [--threads T] [--runs N] [--json] [--layout L]\n"
     "      the paper's Flickr30k grounding model: ms per entity with all entities of a sentence in one pass\n"
     "      against one entity at a time, and batched, over N sentences (default 200) of 1-8 entities"},
    {"run", cmd_run,
     "run MODEL.ban (--features v.npy [--spatials b.npy] | --pixels p.npy) (--tokens q.npy | --questions FILE)\n"
     "      --logits OUT.npy [--image-index i.npy] [--box-counts n.npy] [--token-counts t.npy]\n"
     "      [--entities e.npy [--entity-counts c.npy]]\n"
     "      [--attention OUT.npy] [--entropy OUT.npy] [--answers-out FILE|-] [--glimpses N] [--batch N]\n"
     "      features float32 (B, K, Dv), spatials float32 (B, K, 6), tokens int32/int64 (B, L) or one question\n"
     "      per line; without --box-counts all-zero feature rows are padding, as in the reference. --pixels:\n"
     "      uint8 (N, H, W, 3) images for a model with an image encoder; --image-index (B): the image of each\n"
     "      question when questions share images (features, pixels hold N images). VQA writes\n"
     "      logits (B, A), attention (B, G, K, P), entropy (B, G); grounding (--entities) logits (B, G, K, E)."},
    {"features", cmd_features,
     "features import --tsv FILE [FILE ...] --output STORE [--image-ids IDS.txt] [--feature-dim D] [--skip-bad]\n"
     "      bottom-up-attention TSV files (image_id, image_w, image_h, num_boxes, boxes, features; base64 float32)\n"
     "      -> one mmap-able feature store (docs/STORE.md): pixel boxes, image sizes, the reference's spatial\n"
     "      features; streamed, written atomically; bad records are errors naming file and line (--skip-bad:\n"
     "      skipped, counted and listed); --image-ids keeps the listed images only\n"
     "  ban features info STORE\n"
     "      images, boxes, feature size, histogram of boxes per image"},
    {"vqa", cmd_vqa,
     "vqa --model MODEL.ban --features STORE --questions QUESTIONS.json --output RESULTS.json [--top-k N]\n"
     "      [--attention DIR] [--batch B] [--skip-missing]\n"
     "      answers an official VQA questions file (v2_OpenEnded_mscoco_*_questions.json), questions batched by\n"
     "      image (B, default 32); writes [{\"question_id\", \"answer\"}] for the evaluation server; --top-k adds\n"
     "      \"top_k\": [{\"answer\", \"probability\" = sigmoid(logit)}]; --attention writes DIR/<question_id>.npy\n"
     "      (G, K, P); a question whose image is not in STORE is an error (--skip-missing: counted, left out)"},
    {"ground", cmd_ground,
     "ground --model MODEL.ban --features STORE --image ID (--sentence TEXT | --sentences FILE --line N)\n"
     "      [--annotations FILE.xml | --annotations-dir DIR] [--top-k N] [--json] [--max-entities N]\n"
     "      grounds every entity of a Flickr30k Entities sentence ('[/EN#1/people A man] in [/EN#2/clothing a\n"
     "      red shirt] .') in one pass: each phrase's top N boxes (default 5, 0: all) with their scores (logits;\n"
     "      the sum over glimpses when G > 1) and pixel coordinates x1, y1, x2, y2. Positions as the reference\n"
     "      computes them (the last word of the phrase's first occurrence in the sentence split on spaces, so one\n"
     "      token too far after a standalone comma, as in training); chains without a box in the annotations\n"
     "      (without annotations: chain 0) are skipped; at most --max-entities (16) entities a sentence\n"
     "  ban ground --model MODEL.ban --features STORE --split SPLIT.txt --annotations-dir DIR --output P.json\n"
     "      [--batch N] [--max-entities N] [--skip-bad] [--skip-missing]\n"
     "      every sentence of every image of a split (DIR/Sentences/<id>.txt, DIR/Annotations/<id>.xml), batched\n"
     "      (N sentences, default 32; an image's boxes projected once) -> the predictions file that\n"
     "      tools/flickr30k.py evaluate scores (Recall@1/5/10, upper bound, per type), written atomically. Bad\n"
     "      markup or XML, a phrase missing from its sentence, too many entities: an error naming file and line\n"
     "      (--skip-bad: skipped and counted); an image missing from STORE: an error (--skip-missing: counted)"},
};

static int usage(FILE *f)
{
    fprintf(f, "ban %s - Bilinear Attention Networks (ban.h)\n\nusage:\n", BAN_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) fprintf(f, "  ban %s\n", commands[i].help);
    return f == stdout ? CLI_OK : CLI_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage(stderr);
    if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return usage(stdout);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc, argv);
    return cli_usage("unknown command '%s'", argv[1]);
}
