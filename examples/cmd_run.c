/* ban run - a model on arrays: .npy features (or pixels) and tokens (or a file of questions)
   in, logits, attention and entropy .npy files (and answers) out.

   parse (the options) -> open the outputs (their paths checked before any work) -> load the
   model and the arrays -> run them in chunks of --batch -> write the outputs. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <sys/types.h>

#include "cli.h"
#include "npy.h"

enum { OUT_LOGITS, OUT_ATTENTION, OUT_ENTROPY, OUT_ANSWERS, N_OUT };

typedef struct {
    /* the options */
    const char *f_v, *f_b, *f_px, *f_ii, *f_q, *f_txt, *f_n, *f_tn, *f_e, *f_ec;
    const char *out_path[N_OUT];
    long glimpses, chunk;
    /* the model and the inputs */
    const char *model_path;
    ban_model *m;
    const ban_config *c;
    ban_ctx *ctx;
    int vqa, pixels;
    npy_array v, b, px;            /* features (N, K, Dv) and spatials (N, K, 6), or pixels (N, H, W, 3) */
    int64_t N, K, B;               /* images, boxes, questions */
    size_t img_bytes;              /* one image's features, or pixels */
    int L, E;                      /* tokens and entities per question */
    int32_t *tokens, *box_counts, *token_counts, *entities, *entity_counts, *image_of;
    /* the outputs */
    int G, P;
    size_t per_logits;
    float *logits, *attention, *entropy;
    util_out out[N_OUT];
} run_job;

static void run_free(run_job *j)
{
    for (int i = 0; i < N_OUT; i++) util_out_abort(&j->out[i]);
    npy_free(&j->v), npy_free(&j->b), npy_free(&j->px);
    free(j->tokens), free(j->box_counts), free(j->token_counts), free(j->entities), free(j->entity_counts);
    free(j->image_of), free(j->logits), free(j->attention), free(j->entropy);
    ban_ctx_free(j->ctx);
    ban_model_free(j->m);
}

/* ---- parse --------------------------------------------------------------------------------------- */

static int run_parse(const cli_args *a, run_job *j)
{
    j->f_v = cli_get(a, "--features"), j->f_b = cli_get(a, "--spatials");
    j->f_px = cli_get(a, "--pixels"), j->f_ii = cli_get(a, "--image-index");
    j->f_q = cli_get(a, "--tokens"), j->f_txt = cli_get(a, "--questions");
    j->f_n = cli_get(a, "--box-counts"), j->f_tn = cli_get(a, "--token-counts");
    j->f_e = cli_get(a, "--entities"), j->f_ec = cli_get(a, "--entity-counts");
    j->out_path[OUT_LOGITS] = cli_get(a, "--logits"), j->out_path[OUT_ATTENTION] = cli_get(a, "--attention");
    j->out_path[OUT_ENTROPY] = cli_get(a, "--entropy"), j->out_path[OUT_ANSWERS] = cli_get(a, "--answers-out");
    j->chunk = 32;
    if (!j->f_v && !j->f_px) return cli_usage(a, "--features or --pixels is required");
    if (j->f_v && j->f_px) return cli_usage(a, "give --features or --pixels, not both");
    if (j->f_px && (j->f_b || j->f_n)) return cli_usage(a, "--spatials and --box-counts go with --features");
    if (!j->f_q && !j->f_txt) return cli_usage(a, "--tokens or --questions is required");
    if (j->f_q && j->f_txt) return cli_usage(a, "give --tokens or --questions, not both");
    if (j->f_tn && !j->f_q) return cli_usage(a, "--token-counts goes with --tokens");
    if (j->f_ec && !j->f_e) return cli_usage(a, "--entity-counts goes with --entities");
    if (cli_long(a, "--glimpses", 0, BAN_MAX_GLIMPSES, &j->glimpses) ||
        cli_long(a, "--batch", 1, BAN_MAX_BATCH, &j->chunk))
        return CLI_USAGE;
    return CLI_OK;
}

/* ---- load ---------------------------------------------------------------------------------------- */

/* an integer array of that shape as int32; *shape: its own (NPY_MAX_DIMS), when not NULL */
static int load_ints(const char *path, const npy_want *want, int32_t **out, int64_t *shape)
{
    char err[600];
    npy_array arr;
    if (npy_load_as(path, want, &arr, err, sizeof err)) return cli_error("%s", err);
    if (shape) memcpy(shape, arr.shape, sizeof arr.shape);
    *out = (int32_t *)malloc(arr.count ? arr.count * sizeof(int32_t) : 1);
    int rc = !*out ? cli_error("out of memory") : npy_to_int32(&arr, path, *out, err, sizeof err) ? cli_error("%s", err)
                                                                                                  : CLI_OK;
    npy_free(&arr);
    return rc;
}

/* the images: box features (and spatials, box counts), or pixels for an image encoder */
static int load_images(run_job *j)
{
    const ban_config *c = j->c;
    char err[600];
    if (j->pixels) {
        const npy_want want = {"u", 4, {-1, c->image_height, c->image_width, 3}, "N"};
        if (npy_load_as(j->f_px, &want, &j->px, err, sizeof err)) return cli_error("%s", err);
        j->N = j->px.shape[0], j->K = (int64_t)c->grid_height * c->grid_width;
        j->img_bytes = (size_t)c->image_height * c->image_width * 3;
        return CLI_OK;
    }
    const npy_want want = {"f", 3, {-1, -1, c->feature_dim}, "BK"};
    if (npy_load_as(j->f_v, &want, &j->v, err, sizeof err)) return cli_error("%s", err);
    j->N = j->v.shape[0], j->K = j->v.shape[1];
    j->img_bytes = (size_t)j->K * c->feature_dim * sizeof(float);
    if (j->K > BAN_MAX_BOXES)
        return cli_error("%s: %lld boxes exceed BAN_MAX_BOXES (%d)", j->f_v, (long long)j->K, BAN_MAX_BOXES);
    if (j->f_b) {
        const npy_want ws = {"f", 3, {j->N, j->K, 6}, NULL};
        if (npy_load_as(j->f_b, &ws, &j->b, err, sizeof err)) return cli_error("%s", err);
    }
    const npy_want wn = {"il", 1, {j->N}, NULL};
    return j->f_n ? load_ints(j->f_n, &wn, &j->box_counts, NULL) : CLI_OK;
}

/* Questions one per line -> tokens (B, L) padded with the padding id, and their counts. */
static int tokenize_file(run_job *j, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return cli_error("%s: cannot open: %s", path, strerror(errno));
    const int cap = BAN_MAX_TOKENS;
    int32_t *ids = (int32_t *)malloc((size_t)j->B * cap * sizeof(int32_t));
    int32_t *n = (int32_t *)malloc((size_t)j->B * sizeof(int32_t));
    char *line = NULL, where[4200], err[4600];
    size_t line_cap = 0;
    int64_t row = 0;
    int L = 1, rc = CLI_OK;
    ssize_t got;
    cli_words words = {0, 0};
    if (!ids || !n) rc = cli_error("out of memory");
    while (rc == CLI_OK && (got = getline(&line, &line_cap, f)) >= 0) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (row >= j->B) {
            rc = cli_error("%s: more than the %lld questions the features hold", path, (long long)j->B);
            break;
        }
        int count;
        snprintf(where, sizeof where, "%s:%lld", path, (long long)row + 1);
        if (strlen(line) != (size_t)got) rc = cli_error("%s: NUL byte in the line", where);
        else if (cli_question(j->ctx, line, where, ids + row * cap, cap, &count, &words, err, sizeof err))
            rc = cli_error("%s", err);
        else {
            n[row] = count;
            if (count > L) L = count;
            row++;
        }
    }
    free(line);
    fclose(f);
    if (rc == CLI_OK && row != j->B)
        rc = cli_error("%s: %lld questions for %lld examples of features", path, (long long)row, (long long)j->B);
    if (rc == CLI_OK) {
        cli_words_report(&words);
        /* the question length as the model runs it: at least its trained length */
        const int P = ban_question_positions(j->m, L);
        if (P > L) L = P;
        if (!(j->tokens = (int32_t *)malloc((size_t)j->B * L * sizeof(int32_t)))) rc = cli_error("out of memory");
        for (int64_t b = 0; j->tokens && b < j->B; b++)
            cli_pad_tokens(j->tokens + b * L, ids + b * cap, n[b], L, j->c->padding_id);
        j->token_counts = n, j->L = L;
        n = NULL;
    }
    free(ids);
    free(n);
    return rc;
}

/* the questions: which image each reads, their tokens, the entities of a grounding model */
static int load_questions(run_job *j, ban_limits *lim)
{
    int64_t shape[NPY_MAX_DIMS];
    int rc;
    j->B = j->N; /* one question an image, unless --image-index maps them */
    if (j->f_ii) {
        const npy_want wi = {"il", 1, {-1}, "B"};
        if ((rc = load_ints(j->f_ii, &wi, &j->image_of, shape))) return rc;
        j->B = shape[0];
        for (int64_t b = 0; b < j->B; b++)
            if (j->image_of[b] < 0 || j->image_of[b] >= j->N)
                return cli_error("%s: question %lld refers to image %d of %lld", j->f_ii, (long long)b, j->image_of[b],
                                 (long long)j->N);
    }
    if (!j->vqa && !j->f_e) return cli_error("%s is a grounding model: give --entities", j->model_path);
    if (j->vqa && j->f_e) return cli_error("%s is a VQA model: --entities is for grounding models", j->model_path);
    if (!j->vqa && (j->out_path[OUT_ATTENTION] || j->out_path[OUT_ENTROPY] || j->out_path[OUT_ANSWERS]))
        return cli_error("--attention, --entropy and --answers-out are VQA outputs; a grounding model's logits are its "
                         "attention logits");
    if (j->out_path[OUT_ANSWERS] && !j->c->has_answers)
        return cli_error("%s carries no answer strings (export it with --answers)", j->model_path);
    const npy_want per_question = {"il", 1, {j->B}, NULL};
    if (j->f_e) {
        const npy_want we = {"il", 2, {j->B, -1}, " E"};
        if ((rc = load_ints(j->f_e, &we, &j->entities, shape))) return rc;
        if (shape[1] > BAN_MAX_ENTITIES)
            return cli_error("%s: %lld entities per sentence (1..%d)", j->f_e, (long long)shape[1], BAN_MAX_ENTITIES);
        j->E = (int)shape[1];
        if (j->f_ec && (rc = load_ints(j->f_ec, &per_question, &j->entity_counts, NULL))) return rc;
    }
    lim->max_batch = (int)(j->B < j->chunk ? j->B : j->chunk);
    lim->max_boxes = (int)j->K;
    lim->max_entities = j->E ? j->E : 1;
    lim->max_tokens = BAN_MAX_TOKENS;
    if (j->f_txt) {
        if (ban_ctx_create(j->m, lim, &j->ctx) != BAN_OK) return cli_error("%s", ban_ctx_error(j->ctx));
        return tokenize_file(j, j->f_txt);
    }
    const npy_want wq = {"il", 2, {j->B, -1}, " L"};
    if ((rc = load_ints(j->f_q, &wq, &j->tokens, shape))) return rc;
    if (shape[1] > BAN_MAX_TOKENS)
        return cli_error("%s: %lld tokens per question (1..%d)", j->f_q, (long long)shape[1], BAN_MAX_TOKENS);
    j->L = (int)shape[1];
    return j->f_tn ? load_ints(j->f_tn, &per_question, &j->token_counts, NULL) : CLI_OK;
}

/* the model, the inputs, a context for chunks of --batch questions, the output buffers */
static int run_load(run_job *j)
{
    if (!(j->m = cli_load_model(j->model_path))) return CLI_FAIL;
    j->c = ban_model_config(j->m);
    j->vqa = j->c->task == BAN_TASK_VQA, j->pixels = j->c->encoder_layers != 0;
    if (j->pixels != !!j->f_px)
        return cli_error("%s %s", j->model_path, j->pixels ? "reads images: give --pixels (N, H, W, 3) uint8"
                                                           : "reads box features: give --features");
    ban_limits lim = {0, 0, 0, 0, 0};
    int rc;
    if ((rc = load_images(j)) || (rc = load_questions(j, &lim))) return rc;
    ban_ctx_free(j->ctx);
    j->ctx = NULL;
    lim.max_tokens = j->L;
    if (ban_ctx_create(j->m, &lim, &j->ctx) != BAN_OK) return cli_error("%s", ban_ctx_error(j->ctx));
    j->G = j->c->num_glimpses, j->P = ban_question_positions(j->m, j->L);
    j->per_logits = j->vqa ? (size_t)j->c->num_answers : (size_t)j->G * j->K * j->E;
    j->logits = (float *)malloc((size_t)j->B * j->per_logits * sizeof(float));
    if (j->out_path[OUT_ATTENTION]) j->attention = (float *)malloc((size_t)j->B * j->G * j->K * j->P * sizeof(float));
    if (j->out_path[OUT_ENTROPY]) j->entropy = (float *)malloc((size_t)j->B * j->G * sizeof(float));
    if (!j->logits || (j->out_path[OUT_ATTENTION] && !j->attention) || (j->out_path[OUT_ENTROPY] && !j->entropy))
        return cli_error("out of memory for the outputs");
    return CLI_OK;
}

/* ---- run ----------------------------------------------------------------------------------------- */

/* every question, in chunks of the context's batch; with --image-index, each chunk's distinct
   images gathered once (in order of first use) */
static int run_forward(run_job *j)
{
    const int chunk = (int)(j->B < j->chunk ? j->B : j->chunk);
    const int64_t K = j->K;
    unsigned char *gather = (unsigned char *)malloc((size_t)chunk * (j->img_bytes + (size_t)K * 6 * sizeof(float)));
    int *chunk_img = (int *)malloc(sizeof(int) * (size_t)chunk * 3);
    if (!gather || !chunk_img) return free(gather), free(chunk_img), cli_error("out of memory");
    int *chunk_counts = chunk_img + chunk, *local = chunk_counts + chunk, rc = CLI_OK;
    const unsigned char *images = j->pixels ? (const unsigned char *)j->px.data : (const unsigned char *)j->v.data;
    const float *spatials = j->b.data;
    for (int64_t b0 = 0; b0 < j->B && rc == CLI_OK; b0 += chunk) {
        const int n = (int)(j->B - b0 < chunk ? j->B - b0 : chunk);
        ban_input in;
        ban_output out;
        memset(&in, 0, sizeof in);
        memset(&out, 0, sizeof out);
        const unsigned char *imgs = images;
        const float *spats = spatials;
        in.batch = n;
        if (j->image_of) {
            int n_img = 0;
            float *sp = (float *)(void *)(gather + (size_t)chunk * j->img_bytes);
            for (int q = 0; q < n; q++) {
                int src = j->image_of[b0 + q], i = 0;
                while (i < n_img && chunk_img[i] != src) i++;
                if (i == n_img) {
                    chunk_img[n_img] = src;
                    memcpy(gather + (size_t)i * j->img_bytes, images + (size_t)src * j->img_bytes, j->img_bytes);
                    if (spatials) memcpy(sp + (size_t)i * K * 6, spatials + (size_t)src * K * 6, sizeof(float) * K * 6);
                    if (j->box_counts) chunk_counts[i] = j->box_counts[src];
                    n_img++;
                }
                local[q] = i;
            }
            in.images = n_img, in.image_index = local;
            imgs = gather;
            spats = spatials ? sp : NULL;
            in.box_counts = j->box_counts ? chunk_counts : NULL;
        } else {
            imgs += (size_t)b0 * j->img_bytes;
            spats = spatials ? spatials + b0 * K * 6 : NULL;
            in.box_counts = j->box_counts ? (const int *)j->box_counts + b0 : NULL;
        }
        if (j->pixels) in.pixels = imgs;
        else in.boxes = (int)K, in.features = (const float *)(const void *)imgs, in.spatials = spats;
        in.tokens_len = j->L;
        in.tokens = j->tokens + b0 * j->L;
        in.token_counts = j->token_counts ? (const int *)j->token_counts + b0 : NULL;
        in.entities_len = j->E;
        in.entities = j->entities ? j->entities + b0 * j->E : NULL;
        in.entity_counts = j->entity_counts ? (const int *)j->entity_counts + b0 : NULL;
        in.glimpses = (int)j->glimpses;
        out.logits = j->logits + b0 * j->per_logits;
        out.attention = j->attention ? j->attention + (size_t)b0 * j->G * K * j->P : NULL;
        out.entropy = j->entropy ? j->entropy + b0 * j->G : NULL;
        if (ban_forward(j->ctx, &in, &out) != BAN_OK)
            rc = cli_error("%s (examples %lld..%lld)", ban_ctx_error(j->ctx), (long long)b0, (long long)(b0 + n - 1));
    }
    free(gather), free(chunk_img);
    return rc;
}

/* ---- write --------------------------------------------------------------------------------------- */

static int run_write(run_job *j)
{
    const int64_t B = j->B, G = j->G, K = j->K;
    if (j->vqa) {
        const int64_t shape[2] = {B, j->c->num_answers};
        npy_write(j->out[OUT_LOGITS].f, "<f4", 2, shape, j->logits);
    } else {
        const int64_t shape[4] = {B, G, K, j->E};
        npy_write(j->out[OUT_LOGITS].f, "<f4", 4, shape, j->logits);
    }
    if (j->attention) {
        const int64_t shape[4] = {B, G, K, j->P};
        npy_write(j->out[OUT_ATTENTION].f, "<f4", 4, shape, j->attention);
    }
    if (j->entropy) {
        const int64_t shape[2] = {B, G};
        npy_write(j->out[OUT_ENTROPY].f, "<f4", 2, shape, j->entropy);
    }
    for (int64_t b = 0; j->out_path[OUT_ANSWERS] && b < B; b++)
        fprintf(j->out[OUT_ANSWERS].f, "%s\n",
                ban_model_answer(j->m, ban_argmax(j->logits + b * j->per_logits, j->c->num_answers)));
    /* a failed write shows in the commit, which names the file and the reason */
    for (int i = 0; i < N_OUT; i++)
        if (j->out_path[i] && cli_commit_output(&j->out[i])) return CLI_FAIL;
    return CLI_OK;
}

static int run_main(const cli_args *a)
{
    run_job j;
    memset(&j, 0, sizeof j);
    j.model_path = a->model;
    int rc = run_parse(a, &j);
    for (int i = 0; rc == CLI_OK && i < N_OUT; i++)
        if (j.out_path[i]) rc = cli_open_output(&j.out[i], j.out_path[i]);
    if (rc == CLI_OK) rc = run_load(&j);
    if (rc == CLI_OK) rc = run_forward(&j);
    if (rc == CLI_OK) rc = run_write(&j);
    run_free(&j);
    return rc;
}

static const cli_option run_options[] = {
    {"--features", "v.npy", 0, "box features, float32 (N, K, Dv); without --box-counts, all-zero rows are padding\n"
                               "(as in the reference)"},
    {"--spatials", "b.npy", 0, "their spatial features, float32 (N, K, 6): x1, y1, x2, y2, w, h, normalised"},
    {"--box-counts", "n.npy", 0, "real boxes of each image, int (N,)"},
    {"--pixels", "p.npy", 0, "images, uint8 (N, H, W, 3), for a model with an image encoder (instead of --features)"},
    {"--image-index", "i.npy", 0, "the image of each question, int (B,), when questions share images\n"
                                  "(default: question b reads image b, B = N)"},
    {"--tokens", "q.npy", 0, "token ids, int32 or int64 (B, L)"},
    {"--token-counts", "t.npy", 0, "real tokens of each question, int (B,)"},
    {"--questions", "FILE", 0, "one question a line, tokenised by the model (instead of --tokens); an empty line\n"
                               "or one with no word in the vocabulary is an error, unknown words a warning"},
    {"--entities", "e.npy", 0, "a grounding model's entity positions, int (B, E)"},
    {"--entity-counts", "c.npy", 0, "real entities of each sentence, int (B,)"},
    {"--logits", "OUT.npy", 1, "VQA: logits (B, A); grounding: attention logits (B, G, K, E)"},
    {"--attention", "OUT.npy", 0, "VQA: the attention maps (B, G, K, P)"},
    {"--entropy", "OUT.npy", 0, "VQA: their entropy (B, G)"},
    {"--answers-out", "FILE", 0, "VQA: the best answer of each question, one a line ('-': stdout)"},
    {"--glimpses", "N", 0, "run only the first N glimpses (the paper's Fig. 2c; default 0: all)"},
    {"--batch", "N", 0, "questions a forward pass (default 32)"},
    {NULL, NULL, 0, NULL}};

const cli_command cli_run = {
    "run", run_main, CLI_MODEL,
    "(--features v.npy [--spatials b.npy] | --pixels p.npy) (--tokens q.npy | --questions FILE)\n"
    "           --logits OUT.npy [options]",
    "the model on arrays: .npy features (or pixels) and tokens (or questions) in, .npy outputs out\n"
    "VQA writes logits (B, A), attention (B, G, K, P), entropy (B, G); grounding (--entities) logits (B, G, K, E).\n"
    "The outputs are written atomically once every question is answered; their paths are checked before any work.",
    run_options, 0,
    "ban run g2.ban --features v.npy --spatials b.npy --questions questions.txt --logits logits.npy \\\n"
    "    --answers-out -\n"
    "ban run grounding.ban --features v.npy --tokens q.npy --entities e.npy --logits logits.npy"};
