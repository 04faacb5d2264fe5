/* From pixels to answers: ban ask, ban easyvqa-eval, ban demo.

   ban ask --model MODEL.ban --image IMG.png --question "what color is the shape?" [--top-k 5]
           [--attention-png OUT.png]
   ban ask --model MODEL.ban --features STORE (--image-id ID | --image PHOTO.png) --question TEXT
           [--top-k 5] [--attention-png OUT.png]     (a model of box features: the paper's Fig. 3)
   ban easyvqa-eval --model MODEL.ban --data SPLIT_DIR [--json] [--batch N] [--predictions-out FILE]
   ban encode MODEL.ban --pixels p.npy --features-out f.npy [--spatials-out s.npy]
   ban demo [--model MODEL.ban] [--out DIR]

   Images are read with stb_image (examples/image.h, fuzzed: tests/fuzz/fuzz_image.c): their
   header is checked (size, dimensions, a BMP's rows all there) before any pixel is decoded,
   and they are resized to the model's input with stb_image_resize. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "image.h"
#include "npy.h"
#include "picture.h"
#include "store.h"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

static ban_model *open_model(const char *path)
{
    ban_model *m = cli_load_model(path);
    if (!m) return NULL;
    const ban_config *c = ban_model_config(m);
    if (!c->encoder_layers || c->task != BAN_TASK_VQA || !c->has_answers || !c->has_vocabulary) {
        cli_error("%s: needs a VQA model with an image encoder, a vocabulary and answers (like "
                  "examples/models/easyvqa.ban)", path);
        ban_model_free(m);
        return NULL;
    }
    return m;
}

/* One batch of questions about n_img images (pixels back to back); logits (B, A),
   attention (B, G, K, P) and entropy (B, G) when wanted. */
static int answer_batch(ban_ctx *ctx, const unsigned char *pixels, int n_img, const int *image_index, int B,
                        const int32_t *tokens, const int *counts, int L, float *logits, float *attention,
                        float *entropy)
{
    ban_input in;
    memset(&in, 0, sizeof in);
    in.batch = B;
    in.images = n_img;
    in.image_index = image_index;
    in.pixels = pixels;
    in.tokens_len = L;
    in.tokens = tokens;
    in.token_counts = counts;
    ban_output out = {logits, attention, entropy};
    return ban_forward(ctx, &in, &out);
}

/* one question's tokens as every command reads them (cli_question), padded to L */
static int tokenize_question(ban_ctx *ctx, const ban_model *m, const char *text, const char *where, int32_t *ids,
                             int L, int *count, cli_words *words)
{
    char err[4400];
    if (cli_question(ctx, text, where, ids, L, count, words, err, sizeof err)) return cli_error("%s", err);
    cli_pad_tokens(ids, ids, *count, L, ban_model_config(m)->padding_id);
    return CLI_OK;
}

static void write_to_file(void *f, void *data, int size) { fwrite(data, 1, (size_t)size, (FILE *)f); }

/* rgb (h, w, 3) as a PNG into an open output, committed */
static int write_png(util_out *o, const unsigned char *rgb, int w, int h)
{
    if (!stbi_write_png_to_func(write_to_file, o->f, w, h, 3, rgb, w * 3)) {
        const int rc = cli_error("%s: cannot encode the PNG", o->path);
        util_out_abort(o);
        return rc;
    }
    return cli_commit_output(o);
}

/* ---- ban ask ----------------------------------------------------------------------------- */

/* "answer: ..." and the top k with their probabilities; the answer's probability into *p.
   softmax: over the answers (a model trained with cross-entropy, as easy-VQA's), otherwise
   each answer's sigmoid (trained with binary cross-entropy, as the reference's VQA models) */
static int ask_report(const ban_model *m, const float *logits, long top_k, int softmax, double *p)
{
    const int A = ban_model_config(m)->num_answers, best = ban_argmax(logits, A);
    const int shown = top_k < A ? (int)top_k : A;
    float *prob = (float *)malloc(sizeof(float) * A);
    int *order = (int *)malloc(sizeof(int) * (shown ? shown : 1));
    if (!prob || !order) return free(prob), free(order), cli_error("out of memory");
    float sum = 0.0f;
    for (int i = 0; i < A; i++)
        sum += prob[i] = softmax ? expf(logits[i] - logits[best]) : 1.0f / (1.0f + expf(-logits[i]));
    if (!softmax) sum = 1.0f;
    printf("answer: %s\n", ban_model_answer(m, best));
    util_top_k(logits, A, shown, order);
    for (int i = 0; i < shown; i++)
        printf("%2d. %-12s %.4f\n", i + 1, ban_model_answer(m, order[i]), prob[order[i]] / sum);
    *p = prob[best] / sum;
    free(prob), free(order);
    return CLI_OK;
}

/* a model that reads the image itself: the picture is its grid of cells over the image */
static int ask_pixels(const cli_args *a, ban_model *m, util_out *png, long top_k)
{
    const char *f_img = cli_get(a, "--image"), *question = cli_get(a, "--question");
    if (cli_get(a, "--features") || cli_get(a, "--image-id"))
        return cli_usage(a, "%s reads the image itself (--image IMG.png): --features and --image-id are for models "
                         "of box features", a->model);
    if (!f_img) return cli_usage(a, "--image IMG.png is required (%s reads the image itself)", a->model);
    const ban_config *c = ban_model_config(m);
    char err[600];
    int rc = CLI_OK;
    ban_ctx *ctx = NULL;
    float *logits = NULL, *att = NULL, entropy[BAN_MAX_GLIMPSES];
    cli_words words = {0, 0};
    unsigned char *px = load_image(f_img, c->image_width, c->image_height, err, sizeof err);
    if (!px) return cli_error("%s", err);
    const int L = c->question_length, A = c->num_answers, P = ban_question_positions(m, L);
    const int K = c->grid_height * c->grid_width;
    ban_limits lim = {1, 0, L, 0, 0};
    int32_t tokens[BAN_MAX_TOKENS];
    int count, index = 0;
    if (ban_ctx_create(m, &lim, &ctx) != BAN_OK) {
        rc = cli_error("%s", ban_ctx_error(ctx));
        goto done;
    }
    if ((rc = tokenize_question(ctx, m, question, "--question", tokens, L, &count, &words))) goto done;
    logits = (float *)malloc(sizeof(float) * A);
    att = (float *)malloc(sizeof(float) * c->num_glimpses * K * P);
    if (!logits || !att) {
        rc = cli_error("out of memory");
        goto done;
    }
    if (answer_batch(ctx, px, 1, &index, 1, tokens, &count, L, logits, att, entropy) != BAN_OK) {
        rc = cli_error("%s", ban_ctx_error(ctx));
        goto done;
    }
    double p;
    if ((rc = ask_report(m, logits, top_k, 1, &p))) goto done;
    if (png->f) {
        const picture_image image = {px, c->image_width, c->image_height};
        const picture_vqa v = {question, ban_model_answer(m, ban_argmax(logits, A)), p, c->num_glimpses, K, P, att,
                               entropy, &image, c->grid_width, c->grid_height, NULL, 0, 0, NULL};
        rc = picture_grid(png, &v);
    }
done:
    free(px), free(logits), free(att);
    ban_ctx_free(ctx);
    return rc;
}

/* a model of box features: the image's boxes from a feature store; the picture is the paper's
   Fig. 3 on the photo the features came from */
static int ask_boxes(const cli_args *a, ban_model *m, util_out *png, long top_k)
{
    const char *f_store = cli_get(a, "--features"), *f_photo = cli_get(a, "--image");
    const char *id_text = cli_get(a, "--image-id"), *question = cli_get(a, "--question");
    char id_buf[256], err[4400];
    if (!f_store)
        return cli_usage(a, "%s reads box features: --features STORE is required, with --image-id ID (or --image "
                         "PHOTO.png named by its id)", a->model);
    if (!id_text && f_photo && picture_photo_id(f_photo, id_buf, sizeof id_buf)) id_text = id_buf;
    if (!id_text) return cli_usage(a, "--image-id ID is required (or --image PHOTO.png named by its image id)");
    if (png->f && !f_photo) return cli_usage(a, "--attention-png draws on the photo: give --image PHOTO.png");
    if (!store_id_check(id_text, strlen(id_text)))
        return cli_usage(a, "'%.80s' is not an image id: 1 to %d letters, digits, '_', '-' or '.'", id_text,
                         STORE_MAX_ID);
    const ban_config *c = ban_model_config(m);
    const int L = c->question_length, A = c->num_answers, G = c->num_glimpses, P = ban_question_positions(m, L);
    store *st = NULL;
    store_record rec;
    ban_ctx *ctx = NULL;
    picture_image photo = {NULL, 0, 0};
    float *logits = NULL, *att = NULL, entropy[BAN_MAX_GLIMPSES];
    int32_t tokens[BAN_MAX_TOKENS];
    int count, rc = CLI_OK;
    cli_words words = {0, 0};
    if (store_open(f_store, &st, err, sizeof err)) return cli_error("%s", err);
    if (store_feature_dim(st) != c->feature_dim) {
        rc = cli_error("%s holds %d-d box features, but %s expects %d-d features", f_store, store_feature_dim(st),
                       a->model, c->feature_dim);
        goto done;
    }
    if (!store_find(st, id_text, &rec)) {
        rc = cli_error("image %s has no features in %s%s", id_text, f_store,
                       id_text == id_buf ? " (the id is the photo's name: give --image-id when it is not)" : "");
        goto done;
    }
    if (png->f && (rc = picture_photo(f_photo, PICTURE_PHOTO_SIDE, PICTURE_PHOTO_SIDE, &photo))) goto done;
    ban_limits lim = {1, rec.n_boxes, L, 0, 0};
    if (ban_ctx_create(m, &lim, &ctx) != BAN_OK) {
        rc = cli_error("%s", ban_ctx_error(ctx));
        goto done;
    }
    if ((rc = tokenize_question(ctx, m, question, "--question", tokens, L, &count, &words))) goto done;
    logits = (float *)malloc(sizeof(float) * A);
    att = (float *)malloc(sizeof(float) * G * rec.n_boxes * P);
    if (!logits || !att) {
        rc = cli_error("out of memory");
        goto done;
    }
    ban_input in;
    memset(&in, 0, sizeof in);
    in.batch = 1, in.boxes = rec.n_boxes, in.features = rec.features, in.spatials = rec.spatials;
    in.box_counts = &rec.n_boxes, in.tokens_len = L, in.tokens = tokens, in.token_counts = &count;
    ban_output out = {logits, att, entropy};
    if (ban_forward(ctx, &in, &out) != BAN_OK) {
        rc = cli_error("image %s: %s", id_text, ban_ctx_error(ctx));
        goto done;
    }
    double p;
    if ((rc = ask_report(m, logits, top_k, 0, &p)) || !png->f) goto done;
    /* the rows: the positions the model attends over (a masked model's are the question's tokens) */
    const int Pq = c->question_masking ? count : P;
    const char **labels = picture_words(ctx, question, count, Pq);
    if (!labels) {
        rc = cli_error("out of memory");
        goto done;
    }
    for (int i = 1; i < G * rec.n_boxes && Pq < P; i++) /* (G, K, P) -> (G, K, Pq) */
        memmove(att + (size_t)i * Pq, att + (size_t)i * P, sizeof(float) * Pq);
    const picture_vqa v = {question, ban_model_answer(m, ban_argmax(logits, A)), p, G, rec.n_boxes, Pq, att, entropy,
                           &photo, 0, 0, rec.boxes, rec.width, rec.height, labels};
    rc = picture_boxes(png, &v);
    free(labels);
done:
    picture_image_free(&photo);
    free(logits), free(att);
    ban_ctx_free(ctx);
    store_close(st);
    return rc;
}

static int ask_main(const cli_args *a)
{
    long top_k = 5;
    if (cli_long(a, "--top-k", 0, 1000, &top_k)) return CLI_USAGE;
    util_out png;
    int rc = picture_open(a, "--attention-png", &png); /* before any work */
    if (rc) return rc;
    ban_model *m = cli_load_model(a->model);
    if (!m) return util_out_abort(&png), CLI_FAIL;
    const ban_config *c = ban_model_config(m);
    if (c->task != BAN_TASK_VQA || !c->has_answers || !c->has_vocabulary)
        rc = cli_error("%s: needs a VQA model with a vocabulary and answers (like examples/models/easyvqa.ban)",
                       a->model);
    else rc = c->encoder_layers ? ask_pixels(a, m, &png, top_k) : ask_boxes(a, m, &png, top_k);
    util_out_abort(&png);
    ban_model_free(m);
    return rc;
}

static const cli_option ask_options[] = {
    {"--image", "IMG.png", 0, "the image (PNG or BMP): a pixel model reads it, resized to its input; for a model of\n"
                              "box features, the photo the features came from (drawn on; PHOTO.png named <id>.png\n"
                              "gives the image id)"},
    {"--question", "TEXT", 1, "the question; an empty one, or one with no word in the vocabulary, is an error"},
    {"--features", "STORE", 0, "a model of box features: the store holding the image's boxes"},
    {"--image-id", "ID", 0, "the image's id in STORE (default: the name of --image PHOTO.png without .png)"},
    {"--top-k", "N", 0, "answers listed with their probability (default 5; 0: only the answer)"},
    {"--attention-png", "OUT.png", 0, "draw each glimpse's attention (checked before any work): over the image's grid\n"
                                      "cells, or the six most attended boxes on the photo beside the box x word map"},
    {NULL, NULL, 0, NULL}};

const cli_command cli_ask = {
    "ask", ask_main, CLI_MODEL, "--image IMG.png --question TEXT [options]\n"
    "       ban ask MODEL.ban --features STORE (--image-id ID | --image PHOTO.png) --question TEXT [options]",
    "answers a question about an image: the answer, the top-k with their probabilities, and each glimpse's\n"
    "attention drawn as the paper draws it. A model with an image encoder (like examples/models/easyvqa.ban)\n"
    "reads the image; its probabilities are a softmax over the answers (it is trained with cross-entropy), its\n"
    "picture a panel per glimpse of the grid cells over the image. A model of box features reads the image's\n"
    "boxes from a feature store; its probabilities are each answer's sigmoid (binary cross-entropy, as\n"
    "ban vqa --top-k), its picture the paper's Fig. 3 on the photo.",
    ask_options, 0,
    "ban ask examples/models/easyvqa.ban --image build/demo/shape0.png --question \"what shape is in the image?\" \\\n"
    "    --attention-png attention.png\n"
    "ban ask ban.ban --features val2014.store --image 42.png --question \"what color is the bus?\" \\\n"
    "    --attention-png attention.png"};

/* ---- ban easyvqa-eval ----------------------------------------------------------------------- */

static const char *answer_kind(const char *answer)
{
    if (!strcmp(answer, "yes") || !strcmp(answer, "no")) return "yes/no";
    if (!strcmp(answer, "circle") || !strcmp(answer, "rectangle") || !strcmp(answer, "triangle")) return "shape";
    return "color";
}

typedef struct {
    const char *text, *answer;
    long long image;
    int correct, order;  /* order: the question's place in questions.json */
    const char *predicted;
} eval_question;

static int cmp_by_image(const void *a, const void *b)
{
    const eval_question *x = a, *y = b;
    return (x->image > y->image) - (x->image < y->image);
}

/* questions.json: [question, answer, image_id] rows, sorted by image (their order kept) */
static int eval_load(const char *path, char **text, cJSON **root, eval_question **qs, int *n)
{
    char err[4600];
    size_t len;
    if (!(*text = util_read_file(path, (size_t)1 << 30, &len, err, sizeof err))) return cli_error("%s", err);
    *root = cJSON_Parse(*text);
    if (!*root || !cJSON_IsArray(*root)) {
        const char *at = cJSON_GetErrorPtr();
        return cli_error("%s: not a JSON array of [question, answer, image_id]%s%.20s", path, at ? " near: " : "",
                         at ? at : "");
    }
    *n = cJSON_GetArraySize(*root);
    if (!(*qs = (eval_question *)calloc((size_t)(*n ? *n : 1), sizeof **qs))) return cli_error("out of memory");
    for (int i = 0; i < *n; i++) {
        cJSON *row = cJSON_GetArrayItem(*root, i), *q = cJSON_GetArrayItem(row, 0), *a = cJSON_GetArrayItem(row, 1),
              *id = cJSON_GetArrayItem(row, 2);
        if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != 3 || !cJSON_IsString(q) || !cJSON_IsString(a) ||
            !cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > 1e15 ||
            id->valuedouble != floor(id->valuedouble))
            return cli_error("%s: entry %d is not [question, answer, image_id]", path, i);
        (*qs)[i].text = q->valuestring, (*qs)[i].answer = a->valuestring, (*qs)[i].image = (long long)id->valuedouble;
        (*qs)[i].order = i;
    }
    qsort(*qs, (size_t)*n, sizeof **qs, cmp_by_image);
    return CLI_OK;
}

/* batches of questions, each image decoded once: a batch takes whole groups of an image's
   questions while they fit */
static int eval_run(ban_model *m, const char *dir, eval_question *qs, int n, int batch)
{
    const ban_config *c = ban_model_config(m);
    const int L = c->question_length, A = c->num_answers, W = c->image_width, H = c->image_height;
    const size_t img_bytes = (size_t)W * H * 3;
    ban_limits lim = {batch, 0, L, 0, 0};
    ban_ctx *ctx = NULL;
    unsigned char *pixels = (unsigned char *)malloc(img_bytes * batch);
    float *logits = (float *)malloc(sizeof(float) * A * batch);
    int32_t *tokens = (int32_t *)malloc(sizeof(int32_t) * L * batch);
    int *counts = (int *)malloc(sizeof(int) * batch), *index = (int *)malloc(sizeof(int) * batch), rc = CLI_OK;
    cli_words words = {0, 0};
    char path[4200], err[4600];
    if (!pixels || !logits || !tokens || !counts || !index) rc = cli_error("out of memory");
    else if (ban_ctx_create(m, &lim, &ctx) != BAN_OK) rc = cli_error("%s", ban_ctx_error(ctx));
    for (int q0 = 0; q0 < n && rc == CLI_OK;) {
        int B = 0, n_img = 0;
        long long last = -1;
        while (q0 + B < n && B < batch && rc == CLI_OK) {
            const eval_question *q = &qs[q0 + B];
            if (q->image != last) {
                snprintf(path, sizeof path, "%s/images/%lld.png", dir, q->image);
                unsigned char *px = load_image(path, W, H, err, sizeof err);
                if (!px) {
                    rc = cli_error("%s", err);
                    break;
                }
                memcpy(pixels + (size_t)n_img * img_bytes, px, img_bytes);
                free(px);
                last = q->image;
                n_img++;
            }
            index[B] = n_img - 1;
            snprintf(path, sizeof path, "%s/questions.json: question %d", dir, q->order);
            rc = tokenize_question(ctx, m, q->text, path, tokens + (size_t)B * L, L, &counts[B], &words);
            B++;
        }
        if (rc == CLI_OK && answer_batch(ctx, pixels, n_img, index, B, tokens, counts, L, logits, NULL, NULL) != BAN_OK)
            rc = cli_error("%s", ban_ctx_error(ctx));
        for (int b = 0; rc == CLI_OK && b < B; b++) {
            qs[q0 + b].predicted = ban_model_answer(m, ban_argmax(logits + (size_t)b * A, A));
            qs[q0 + b].correct = !strcmp(qs[q0 + b].predicted, qs[q0 + b].answer);
        }
        q0 += B;
    }
    if (rc == CLI_OK) cli_words_report(&words);
    free(pixels), free(logits), free(tokens), free(counts), free(index);
    ban_ctx_free(ctx);
    return rc;
}

/* the accuracy, overall and per kind of answer */
static void eval_report(const eval_question *qs, int n, int as_json)
{
    static const char *kinds[3] = {"shape", "color", "yes/no"};
    int right = 0, k_total[3] = {0, 0, 0}, k_right[3] = {0, 0, 0};
    for (int i = 0; i < n; i++) {
        const char *kind = answer_kind(qs[i].answer);
        right += qs[i].correct;
        for (int k = 0; k < 3; k++)
            if (!strcmp(kind, kinds[k])) k_total[k]++, k_right[k] += qs[i].correct;
    }
    const double acc = n ? 100.0 * right / n : 0.0;
    if (as_json) {
        printf("{\"accuracy\": %.3f, \"questions\": %d, \"correct\": %d, \"per_type\": {", acc, n, right);
        for (int k = 0; k < 3; k++)
            printf("%s\"%s\": {\"accuracy\": %.3f, \"questions\": %d}", k ? ", " : "", kinds[k],
                   k_total[k] ? 100.0 * k_right[k] / k_total[k] : 0.0, k_total[k]);
        printf("}}\n");
    } else {
        printf("accuracy: %.3f%% (%d of %d questions)\n", acc, right, n);
        for (int k = 0; k < 3; k++)
            printf("  %-7s %.3f%% (%d of %d)\n", kinds[k], k_total[k] ? 100.0 * k_right[k] / k_total[k] : 0.0,
                   k_right[k], k_total[k]);
    }
}

static int easyvqa_eval_main(const cli_args *a)
{
    const char *dir = cli_get(a, "--data"), *f_pred = cli_get(a, "--predictions-out");
    long batch = 64;
    if (cli_long(a, "--batch", 1, BAN_MAX_BATCH, &batch)) return CLI_USAGE;
    util_out pred;
    memset(&pred, 0, sizeof pred);
    if (f_pred && cli_open_output(&pred, f_pred)) return CLI_FAIL;
    char path[4200], *text = NULL;
    cJSON *root = NULL;
    eval_question *qs = NULL;
    int n = 0, rc = CLI_OK;
    ban_model *m = open_model(a->model);
    snprintf(path, sizeof path, "%s/questions.json", dir);
    if (!m) rc = CLI_FAIL;
    if (rc == CLI_OK) rc = eval_load(path, &text, &root, &qs, &n);
    if (rc == CLI_OK) rc = eval_run(m, dir, qs, n, (int)batch);
    if (rc == CLI_OK && f_pred) { /* one answer per line, in the order of questions.json */
        const char **by_order = (const char **)malloc(sizeof(char *) * (n ? n : 1));
        if (!by_order) rc = cli_error("out of memory");
        for (int i = 0; by_order && i < n; i++) by_order[qs[i].order] = qs[i].predicted;
        for (int i = 0; by_order && i < n; i++) fprintf(pred.f, "%s\n", by_order[i]);
        free(by_order);
        if (rc == CLI_OK) rc = cli_commit_output(&pred);
    }
    if (rc == CLI_OK) eval_report(qs, n, cli_flag(a, "--json"));
    util_out_abort(&pred);
    free(text), free(qs);
    cJSON_Delete(root);
    ban_model_free(m);
    return rc;
}

static const cli_option easyvqa_eval_options[] = {
    {"--data", "SPLIT_DIR", 1, "an easy-VQA split: SPLIT_DIR/images/<id>.png, SPLIT_DIR/questions.json"},
    {"--json", NULL, 0, "the accuracies as one JSON object"},
    {"--batch", "N", 0, "questions a forward pass (default 64)"},
    {"--predictions-out", "FILE", 0, "the predicted answers, one a line in the order of questions.json"},
    {NULL, NULL, 0, NULL}};

const cli_command cli_easyvqa_eval = {
    "easyvqa-eval", easyvqa_eval_main, CLI_MODEL, "--data SPLIT_DIR [options]",
    "accuracy on an easy-VQA split, overall and per kind of question (shape, color, yes/no)",
    easyvqa_eval_options, 0,
    "ban easyvqa-eval examples/models/easyvqa.ban --data easy-vqa/data/test --json"};

/* ---- ban demo: shapes drawn here, questions answered by the committed model -------------------- */

typedef struct {
    const char *name;
    unsigned char rgb[3];
} demo_color;

static const demo_color demo_colors[] = {{"red", {255, 0, 0}},   {"green", {0, 255, 0}},   {"blue", {0, 0, 255}},
                                         {"yellow", {255, 255, 0}}, {"teal", {0, 128, 128}}, {"brown", {165, 42, 42}},
                                         {"black", {0, 0, 0}},    {"gray", {128, 128, 128}}};

/* A filled shape on a light background, drawn at twice the size and averaged down 2 x 2
   (anti-aliased edges, as in easy-VQA). shape: 0 circle, 1 rectangle, 2 triangle (apex up);
   x, y, size in the final image's pixels. */
static void draw_shape(unsigned char *out, int S, int shape, const unsigned char rgb[3], const unsigned char bg[3],
                       float x, float y, float w, float h)
{
    const int D = 2 * S;
    for (int py = 0; py < S; py++)
        for (int px = 0; px < S; px++) {
            int inside_n = 0;
            for (int sy = 0; sy < 2; sy++)
                for (int sx = 0; sx < 2; sx++) {
                    const float u = (2 * px + sx + 0.5f) * S / D, v = (2 * py + sy + 0.5f) * S / D; /* sample point */
                    int inside;
                    if (shape == 0) {
                        const float cx = x + w / 2, cy = y + w / 2, r = w / 2;
                        inside = (u - cx) * (u - cx) + (v - cy) * (v - cy) <= r * r;
                    } else if (shape == 1) {
                        inside = u >= x && u <= x + w && v >= y && v <= y + h;
                    } else { /* base from (x, y+w*0.866) to (x+w, ...), apex at (x+w/2, y) */
                        const float base = y + w * 0.8660254f, t = (base - v) / (w * 0.8660254f);
                        inside = v <= base && t <= 1.0f && fabsf(u - (x + w / 2)) <= (1.0f - t) * w / 2;
                    }
                    inside_n += inside;
                }
            unsigned char *p = out + ((size_t)py * S + px) * 3;
            for (int c = 0; c < 3; c++) p[c] = (unsigned char)((rgb[c] * inside_n + bg[c] * (4 - inside_n) + 2) / 4);
        }
}

static int demo_main(const cli_args *a)
{
    const char *f_model = a->model ? a->model : "examples/models/easyvqa.ban";
    const char *out_dir = cli_get(a, "--out");
    cli_words words = {0, 0};
    ban_model *m = open_model(f_model);
    if (!m) return CLI_FAIL;
    const ban_config *c = ban_model_config(m);
    const int S = c->image_width;
    if (c->image_height != S) {
        ban_model_free(m);
        return cli_error("the demo draws square images; %s takes %d x %d", f_model, c->image_width, c->image_height);
    }
    static const struct {
        int shape, color;
        float x, y, w, h;
        unsigned char bg[3];
    } scenes[] = {{0, 0, 14, 18, 30, 30, {245, 240, 236}}, {1, 2, 8, 30, 40, 20, {236, 248, 240}},
                  {2, 4, 20, 12, 34, 0, {250, 244, 232}},  {0, 3, 40, 6, 16, 16, {238, 238, 250}},
                  {2, 6, 4, 30, 24, 0, {246, 250, 244}},   {1, 5, 30, 28, 22, 30, {240, 236, 246}}};
    static const char *shape_names[3] = {"circle", "rectangle", "triangle"};
    const char *questions[] = {"what shape is in the image?", "what color is the shape?", "is there a triangle?",
                               "is there not a red shape?"};
    const int n_scenes = (int)(sizeof scenes / sizeof scenes[0]), n_q = 4, L = c->question_length, A = c->num_answers;
    unsigned char *pixels = (unsigned char *)malloc((size_t)n_scenes * S * S * 3);
    int32_t *tokens = (int32_t *)malloc(sizeof(int32_t) * n_scenes * n_q * L);
    int counts[64], index[64], rc = CLI_OK, right = 0;
    float *logits = (float *)malloc(sizeof(float) * n_scenes * n_q * A);
    ban_limits lim = {n_scenes * n_q, 0, L, 0, 0};
    ban_ctx *ctx = NULL;
    if (!pixels || !tokens || !logits || ban_ctx_create(m, &lim, &ctx) != BAN_OK) {
        rc = cli_error("%s", ctx ? ban_ctx_error(ctx) : "out of memory");
        goto done;
    }
    if (out_dir && mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        rc = cli_error("%s: cannot create: %s", out_dir, strerror(errno));
        goto done;
    }
    for (int i = 0; i < n_scenes; i++) {
        const float sc = S / 64.0f;
        draw_shape(pixels + (size_t)i * S * S * 3, S, scenes[i].shape, demo_colors[scenes[i].color].rgb, scenes[i].bg,
                   scenes[i].x * sc, scenes[i].y * sc, scenes[i].w * sc, scenes[i].h * sc);
        for (int j = 0; j < n_q; j++) {
            const int b = i * n_q + j;
            index[b] = i;
            if ((rc = tokenize_question(ctx, m, questions[j], questions[j], tokens + (size_t)b * L, L, &counts[b],
                                        &words)))
                goto done;
        }
        if (out_dir) {
            char path[4096];
            util_out o;
            snprintf(path, sizeof path, "%s/shape%d.png", out_dir, i);
            if ((rc = cli_open_output(&o, path)) || (rc = write_png(&o, pixels + (size_t)i * S * S * 3, S, S)))
                goto done;
        }
    }
    if (answer_batch(ctx, pixels, n_scenes, index, n_scenes * n_q, tokens, counts, L, logits, NULL, NULL) != BAN_OK) {
        rc = cli_error("%s", ban_ctx_error(ctx));
        goto done;
    }
    printf("%s: %d images drawn by ban demo, %d questions each%s%s\n", f_model, n_scenes, n_q,
           out_dir ? ", saved in " : "", out_dir ? out_dir : "");
    for (int i = 0; i < n_scenes; i++) {
        const int shape = scenes[i].shape, color = scenes[i].color;
        printf("\nimage %d: a %s %s\n", i, demo_colors[color].name, shape_names[shape]);
        for (int j = 0; j < n_q; j++) {
            const char *ans = ban_model_answer(m, ban_argmax(logits + (size_t)(i * n_q + j) * A, A));
            const char *truth = j == 0 ? shape_names[shape] : j == 1 ? demo_colors[color].name
                              : j == 2 ? (shape == 2 ? "yes" : "no") : (color == 0 ? "no" : "yes");
            right += !strcmp(ans, truth);
            printf("  %-28s -> %-10s%s\n", questions[j], ans, strcmp(ans, truth) ? "  (wrong)" : "");
        }
    }
    printf("\n%d of %d answers right\n", right, n_scenes * n_q);
done:
    free(pixels), free(tokens), free(logits);
    ban_ctx_free(ctx);
    ban_model_free(m);
    return rc;
}

static const cli_option demo_options[] = {
    {"--out", "DIR", 0, "save the drawn images there (default: not saved)"},
    {NULL, NULL, 0, NULL}};

const cli_command cli_demo = {
    "demo", demo_main, CLI_MODEL_OPTIONAL, "[--out DIR]",
    "draws a few shapes, asks questions about them, prints the answers\n"
    "(the model: examples/models/easyvqa.ban unless given)",
    demo_options, 0,
    "ban demo --out build/demo"};

/* ---- ban encode ---------------------------------------------------------------------------------- */

static int encode_main(const cli_args *a)
{
    const char *f_px = cli_get(a, "--pixels"), *f_out = cli_get(a, "--features-out");
    const char *f_sp = cli_get(a, "--spatials-out");
    util_out out[2];
    memset(out, 0, sizeof out);
    npy_array px;
    memset(&px, 0, sizeof px);
    char err[600];
    int rc = CLI_OK;
    ban_ctx *ctx = NULL;
    float *feats = NULL, *spats = NULL;
    ban_model *m = NULL;
    if ((rc = cli_open_output(&out[0], f_out)) || (f_sp && (rc = cli_open_output(&out[1], f_sp)))) goto done;
    if (!(m = cli_load_model(a->model))) {
        rc = CLI_FAIL;
        goto done;
    }
    const ban_config *c = ban_model_config(m);
    if (!c->encoder_layers) {
        rc = cli_error("%s has no image encoder", a->model);
        goto done;
    }
    const npy_want want = {"u", 4, {-1, c->image_height, c->image_width, 3}, "N"};
    if (npy_load_as(f_px, &want, &px, err, sizeof err)) {
        rc = cli_error("%s", err);
        goto done;
    }
    if (px.shape[0] > BAN_MAX_BATCH) {
        rc = cli_error("%s: %lld images, more than BAN_MAX_BATCH (%d) at once", f_px, (long long)px.shape[0],
                       BAN_MAX_BATCH);
        goto done;
    }
    const int N = (int)px.shape[0], K = c->grid_height * c->grid_width;
    ban_limits lim = {N, 0, 0, 0, 0};
    feats = (float *)malloc(sizeof(float) * N * K * c->feature_dim);
    spats = (float *)malloc(sizeof(float) * N * K * 6);
    if (!feats || !spats || ban_ctx_create(m, &lim, &ctx) != BAN_OK ||
        ban_encode(ctx, (const unsigned char *)px.data, N, feats, spats) != BAN_OK) {
        rc = cli_error("%s", ctx ? ban_ctx_error(ctx) : "out of memory");
        goto done;
    }
    const int64_t fshape[3] = {N, K, c->feature_dim}, sshape[3] = {N, K, 6};
    npy_write(out[0].f, "<f4", 3, fshape, feats);
    if (f_sp) npy_write(out[1].f, "<f4", 3, sshape, spats);
    if ((rc = cli_commit_output(&out[0])) || (f_sp && (rc = cli_commit_output(&out[1])))) goto done;
done:
    util_out_abort(&out[0]), util_out_abort(&out[1]);
    npy_free(&px);
    free(feats), free(spats);
    ban_ctx_free(ctx);
    ban_model_free(m);
    return rc;
}

static const cli_option encode_options[] = {
    {"--pixels", "p.npy", 1, "images, uint8 (N, H, W, 3) at the model's input size"},
    {"--features-out", "f.npy", 1, "the encoder's grid features, float32 (N, K, C)"},
    {"--spatials-out", "s.npy", 0, "the grid cells' boxes, float32 (N, K, 6)"},
    {NULL, NULL, 0, NULL}};

const cli_command cli_encode = {
    "encode", encode_main, CLI_MODEL, "--pixels p.npy --features-out f.npy [--spatials-out s.npy]",
    "an image encoder's grid features (N, K, C) and cell boxes (N, K, 6) for uint8 images (N, H, W, 3)",
    encode_options, 0,
    "ban encode examples/models/easyvqa.ban --pixels p.npy --features-out f.npy --spatials-out s.npy"};
