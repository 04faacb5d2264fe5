/* ban vqa - answer an official VQA questions file from a feature store and write the
   results file of the evaluation server.

   ban vqa --model MODEL.ban --features STORE --questions QUESTIONS.json --output RESULTS.json
           [--top-k N] [--attention DIR] [--batch B] [--skip-missing]

   Questions are tokenised with the model's vocabulary, grouped by image and run in
   batches of up to B questions spanning as few images as possible: each image's boxes
   are copied once into the batch and projected once for all its questions
   (ban_input.images / image_index), with K = the most boxes among the batch's images and
   explicit box counts. The results file is a JSON array of {"question_id", "answer"} in
   the order of the questions file, every question once, written atomically; --top-k adds
   "top_k": [{"answer", "probability"}, ...] to each record, where the probability is
   sigmoid(logit): the model is trained with binary cross-entropy over the answers, so
   each is the model's independent estimate for that answer and they need not sum to 1
   (the official evaluator ignores keys it does not know). --attention DIR writes each
   question's attention maps as DIR/<question_id>.npy, float32 (G, K, P): K the image's
   boxes, P the question positions the model runs (14 for the reference's models; the
   question's own tokens for a model trained with masking). */
#define _POSIX_C_SOURCE 200809L
#include "../ban.h"
#include "npy.h"
#define QUESTIONS_IMPLEMENTATION
#include "questions.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

int cmd_vqa(int argc, char **argv);

typedef struct {
    int64_t question_id, image_id;
    int index;                 /* position in the questions file */
    int n_tok;                 /* tokens kept (at most the positions the model runs) */
    size_t tok_at;             /* in the flat token array */
    store_record rec;          /* the image's boxes (rec.features == NULL: no features) */
    int answer;                /* argmax of the logits, -1 until answered */
} question;

static double vqa_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    question *q;
    size_t n;
    int32_t *tokens;
    size_t n_tokens, cap_tokens;
} question_list;

/* Read the questions file and tokenise every question (at most keep tokens each), one by one
   as they are read (questions.h calls back): errors come in the order of the file. */
typedef struct {
    ban_ctx *tctx;
    int masked, keep;
    const char *path;
    int32_t *ids;              /* (BAN_MAX_TOKENS) scratch */
    question_list *out;
} question_reader;

static int tokenize_question(void *data, const vqa_questions *qs, size_t i, char *err, size_t errlen)
{
    question_reader *r = (question_reader *)data;
    question_list *out = r->out;
    if (qs->format != QUESTIONS_VQA)
        return snprintf(err, errlen, "%s: a GQA questions file: ban vqa answers VQA questions files only", r->path), -1;
    if (!out->q) { /* the first question: now the count is known */
        const size_t count = qs->count;
        out->q = (question *)calloc(count, sizeof(question));
        out->cap_tokens = count * (size_t)(r->keep < 16 ? r->keep : 16);
        out->tokens = (int32_t *)malloc(out->cap_tokens * sizeof(int32_t));
        if (!out->q || !out->tokens) return snprintf(err, errlen, "out of memory for %zu questions", count), -1;
    }
    const vqa_question *v = &qs->items[i];
    question *q = &out->q[i];
    q->question_id = v->question_id;
    q->image_id = v->image_id;
    int n;
    if (ban_tokenize(r->tctx, v->question, r->ids, BAN_MAX_TOKENS, &n) != BAN_OK)
        return snprintf(err, errlen, "%s: question %lld: %s", r->path, (long long)q->question_id,
                        ban_ctx_error(r->tctx)), -1;
    if (n > r->keep) n = r->keep;
    if (n == 0 && r->masked)
        return snprintf(err, errlen, "%s: question %lld has no words (\"%.60s\"), and this model masks question "
                        "padding", r->path, (long long)q->question_id, v->question), -1;
    if (out->n_tokens + (size_t)n > out->cap_tokens) {
        size_t cap = out->cap_tokens * 2 + (size_t)n;
        int32_t *t = (int32_t *)realloc(out->tokens, cap * sizeof(int32_t));
        if (!t) return snprintf(err, errlen, "out of memory"), -1;
        out->tokens = t, out->cap_tokens = cap;
    }
    memcpy(out->tokens + out->n_tokens, r->ids, (size_t)n * sizeof(int32_t));
    q->tok_at = out->n_tokens;
    q->n_tok = n;
    q->index = (int)i;
    q->answer = -1;
    out->n_tokens += (size_t)n;
    out->n = i + 1;
    return 0;
}

static int load_questions(const char *path, ban_ctx *tctx, const ban_model *m, int keep, question_list *out)
{
    question_reader r = {tctx, ban_model_config(m)->question_masking, keep, path, NULL, out};
    vqa_questions qs;
    char err[8192];
    if (!(r.ids = (int32_t *)malloc(BAN_MAX_TOKENS * sizeof(int32_t)))) return cli_error("out of memory");
    int rc = vqa_questions_load(path, &qs, tokenize_question, &r, err, sizeof err) ? cli_error("%s", err) : CLI_OK;
    vqa_questions_free(&qs);
    free(r.ids);
    return rc;
}

static int by_question_id(const void *a, const void *b)
{
    const question *x = *(question *const *)a, *y = *(question *const *)b;
    if (x->question_id != y->question_id) return x->question_id < y->question_id ? -1 : 1;
    return x->index - y->index;
}

/* by the image's place in the store (sequential reads of the mapping), then file order */
static int by_image(const void *a, const void *b)
{
    const question *x = *(question *const *)a, *y = *(question *const *)b;
    if (x->rec.features != y->rec.features) return x->rec.features < y->rec.features ? -1 : 1;
    return x->index - y->index;
}

typedef struct {
    int k;
    int *index;                /* (Q, k) answers by decreasing logit */
    float *prob;               /* (Q, k) sigmoid of their logits */
} top_k;

/* the k largest of x (n) by decreasing value, ties to the lower index (as ban_argmax) */
static void select_top(const float *x, int n, int k, int *idx)
{
    int have = 0;
    for (int i = 0; i < n; i++) {
        if (have == k && !(x[i] > x[idx[k - 1]])) continue;
        int at = have < k ? have++ : k - 1;
        while (at > 0 && x[i] > x[idx[at - 1]]) idx[at] = idx[at - 1], at--;
        idx[at] = i;
    }
}

int cmd_vqa(int argc, char **argv)
{
    cli_opt opts[] = {{"--model", 1, NULL},     {"--features", 1, NULL}, {"--questions", 1, NULL},
                      {"--output", 1, NULL},    {"--top-k", 1, NULL},    {"--attention", 1, NULL},
                      {"--batch", 1, NULL},     {"--skip-missing", 0, NULL}, {NULL, 0, NULL}};
    const char *pos[1];
    int n_pos;
    if (cli_parse(argc, argv, 2, opts, pos, 1, &n_pos)) return CLI_USAGE;
    const char *model_path = cli_get(opts, "--model"), *store_path = cli_get(opts, "--features");
    const char *q_path = cli_get(opts, "--questions"), *out_path = cli_get(opts, "--output");
    const char *att_dir = cli_get(opts, "--attention");
    const int skip_missing = cli_get(opts, "--skip-missing") != NULL;
    long batch = 32, k = 0;
    if (n_pos || !model_path || !store_path || !q_path || !out_path)
        return cli_usage("usage: ban vqa --model MODEL.ban --features STORE --questions QUESTIONS.json --output "
                         "RESULTS.json [--top-k N] [--attention DIR] [--batch B] [--skip-missing]");
    if (cli_get(opts, "--batch") && !cli_int(cli_get(opts, "--batch"), "--batch", 1, BAN_MAX_BATCH, &batch))
        return CLI_USAGE;
    if (cli_get(opts, "--top-k") && !cli_int(cli_get(opts, "--top-k"), "--top-k", 1, BAN_MAX_ANSWERS, &k))
        return CLI_USAGE;

    const double t_start = vqa_now();
    ban_model *m = NULL;
    ban_ctx *tctx = NULL, *ctx = NULL;
    store *st = NULL;
    question_list ql = {NULL, 0, NULL, 0, 0};
    question **order = NULL;
    top_k top = {0, NULL, NULL};
    float *feats = NULL, *spats = NULL, *logits = NULL, *att = NULL, *att_one = NULL;
    int *box_counts = NULL, *image_index = NULL, *tok_counts = NULL;
    int32_t *tokens = NULL;
    int rc = CLI_OK;
    char err[512];

    if (!(m = cli_load_model(model_path))) {
        rc = CLI_FAIL;
        goto done;
    }
    const ban_config *c = ban_model_config(m);
    if (c->task != BAN_TASK_VQA) { rc = cli_error("%s is a grounding model, not a VQA model", model_path); goto done; }
    if (!c->has_vocabulary || !c->has_answers) {
        rc = cli_error("%s carries no %s (export it with %s)", model_path, c->has_vocabulary ? "answer strings" :
                       "vocabulary", c->has_vocabulary ? "--answers" : "--dictionary");
        goto done;
    }
    if (k > c->num_answers) { rc = cli_usage("--top-k %ld: the model has %d answers", k, c->num_answers); goto done; }
    if (store_open(store_path, &st, err, sizeof err)) { rc = cli_error("%s", err); goto done; }
    if (store_feature_dim(st) != c->feature_dim) {
        rc = cli_error("%s holds %d-d box features, but %s expects %d-d features", store_path, store_feature_dim(st),
                       model_path, c->feature_dim);
        goto done;
    }
    if (att_dir && mkdir(att_dir, 0777) != 0 && errno != EEXIST) {
        rc = cli_error("%s: cannot create the folder: %s", att_dir, strerror(errno));
        goto done;
    }

    /* 1. the questions, tokenised; tokens past the positions the model runs are dropped */
    if (ban_ctx_create(m, NULL, &tctx) != BAN_OK) { rc = cli_error("%s", ban_ctx_error(tctx)); goto done; }
    const int keep = c->question_masking ? BAN_MAX_TOKENS : c->question_length;
    if ((rc = load_questions(q_path, tctx, m, keep, &ql))) goto done;
    const size_t nq = ql.n;
    order = (question **)malloc(nq * sizeof *order);
    if (!order) { rc = cli_error("out of memory"); goto done; }
    for (size_t i = 0; i < nq; i++) order[i] = &ql.q[i];
    qsort(order, nq, sizeof *order, by_question_id);
    for (size_t i = 1; i < nq; i++)
        if (order[i]->question_id == order[i - 1]->question_id) {
            rc = cli_error("%s: question_id %lld appears twice (questions[%d] and questions[%d]); a results file "
                           "holds each question once", q_path, (long long)order[i]->question_id, order[i - 1]->index,
                           order[i]->index);
            goto done;
        }

    /* 2. their images in the store */
    size_t missing = 0, n_run = 0;
    int max_tok = 1;
    for (size_t i = 0; i < nq; i++) {
        question *q = &ql.q[i];
        char image_key[24]; /* the store's id of a numeric image id */
        snprintf(image_key, sizeof image_key, "%lld", (long long)q->image_id);
        if (!store_find(st, image_key, &q->rec)) {
            q->rec.features = NULL;
            if (!skip_missing) {
                rc = cli_error("question %lld: its image %lld has no features in %s (--skip-missing leaves such "
                               "questions out)", (long long)q->question_id, (long long)q->image_id, store_path);
                goto done;
            }
            if (missing < 5)
                fprintf(stderr, "ban: warning: question %lld: image %lld has no features; question skipped\n",
                        (long long)q->question_id, (long long)q->image_id);
            missing++;
            continue;
        }
        order[n_run++] = q;
        if (q->n_tok > max_tok) max_tok = q->n_tok;
    }
    if (n_run == 0) { rc = cli_error("none of the %zu questions has its image in %s", nq, store_path); goto done; }
    qsort(order, n_run, sizeof *order, by_image);

    /* 3. buffers for one batch */
    const int D = c->feature_dim, A = c->num_answers, G = c->num_glimpses, B = (int)batch;
    const int Kmax = store_max_boxes(st);
    const int P = ban_question_positions(m, max_tok);
    ban_limits lim = {B, Kmax, max_tok, 0, 0};
    if (ban_ctx_create(m, &lim, &ctx) != BAN_OK) { rc = cli_error("%s", ban_ctx_error(ctx)); goto done; }
    feats = (float *)malloc((size_t)B * Kmax * D * sizeof(float));
    spats = (float *)malloc((size_t)B * Kmax * 6 * sizeof(float));
    logits = (float *)malloc((size_t)B * A * sizeof(float));
    box_counts = (int *)malloc((size_t)B * sizeof(int));
    image_index = (int *)malloc((size_t)B * sizeof(int));
    tok_counts = (int *)malloc((size_t)B * sizeof(int));
    tokens = (int32_t *)malloc((size_t)B * max_tok * sizeof(int32_t));
    if (att_dir) {
        att = (float *)malloc((size_t)B * G * Kmax * P * sizeof(float));
        att_one = (float *)malloc((size_t)G * Kmax * P * sizeof(float));
    }
    if (k) {
        top.k = (int)k;
        top.index = (int *)malloc(nq * (size_t)k * sizeof(int));
        top.prob = (float *)malloc(nq * (size_t)k * sizeof(float));
    }
    if (!feats || !spats || !logits || !box_counts || !image_index || !tok_counts || !tokens ||
        (att_dir && (!att || !att_one)) || (k && (!top.index || !top.prob))) {
        rc = cli_error("out of memory for batches of %d questions", B);
        goto done;
    }

    /* 4. batches: whole images while they fit; an image with more than B questions is split */
    const double t_run = vqa_now();
    double last_report = t_run;
    size_t at = 0, n_batches = 0, n_images = 0;
    while (at < n_run) {
        int nb = 0, ni = 0;
        while (at + (size_t)nb < n_run) {
            size_t g = at + (size_t)nb, e = g;
            while (e < n_run && order[e]->rec.features == order[g]->rec.features) e++;
            if ((size_t)nb + (e - g) <= (size_t)B) nb += (int)(e - g), ni++;
            else {
                if (nb == 0) nb = B, ni = 1;
                break;
            }
        }
        int K = 1, L = 1, img = -1;
        for (int b = 0; b < nb; b++) {
            const question *q = order[at + (size_t)b];
            if (b == 0 || q->rec.features != order[at + (size_t)b - 1]->rec.features) img++;
            image_index[b] = img;
            box_counts[img] = q->rec.n_boxes;
            if (q->rec.n_boxes > K) K = q->rec.n_boxes;
            if (q->n_tok > L) L = q->n_tok;
        }
        for (int b = 0; b < nb; b++) { /* copy each image once, zero its padding rows */
            const question *q = order[at + (size_t)b];
            const int i = image_index[b], n = q->rec.n_boxes;
            if (b > 0 && image_index[b - 1] == i) continue;
            float *fv = feats + (size_t)i * K * D, *sv = spats + (size_t)i * K * 6;
            memcpy(fv, q->rec.features, (size_t)n * D * sizeof(float));
            memset(fv + (size_t)n * D, 0, (size_t)(K - n) * D * sizeof(float));
            memcpy(sv, q->rec.spatials, (size_t)n * 6 * sizeof(float));
            memset(sv + (size_t)n * 6, 0, (size_t)(K - n) * 6 * sizeof(float));
        }
        for (int b = 0; b < nb; b++) {
            const question *q = order[at + (size_t)b];
            int32_t *t = tokens + (size_t)b * L;
            memcpy(t, ql.tokens + q->tok_at, (size_t)q->n_tok * sizeof(int32_t));
            for (int j = q->n_tok; j < L; j++) t[j] = c->padding_id;
            tok_counts[b] = q->n_tok;
        }
        ban_input in;
        ban_output out;
        memset(&in, 0, sizeof in);
        memset(&out, 0, sizeof out);
        in.batch = nb;
        in.boxes = K;
        in.images = ni;
        in.image_index = image_index;
        in.features = feats;
        in.spatials = spats;
        in.box_counts = box_counts;
        in.tokens_len = L;
        in.tokens = tokens;
        in.token_counts = tok_counts;
        out.logits = logits;
        out.attention = att;
        if (ban_forward(ctx, &in, &out) != BAN_OK) {
            rc = cli_error("questions %lld..: %s", (long long)order[at]->question_id, ban_ctx_error(ctx));
            goto done;
        }
        const int Pb = ban_question_positions(m, L);
        for (int b = 0; b < nb; b++) {
            question *q = order[at + (size_t)b];
            const float *lg = logits + (size_t)b * A;
            q->answer = ban_argmax(lg, A);
            if (top.k) {
                int *ti = top.index + (size_t)q->index * top.k;
                float *tp = top.prob + (size_t)q->index * top.k;
                select_top(lg, A, top.k, ti);
                for (int j = 0; j < top.k; j++) tp[j] = 1.0f / (1.0f + expf(-lg[ti[j]]));
            }
            if (att_dir) { /* (G, n, Pq): the image's boxes, the positions of this question */
                const int n = q->rec.n_boxes, Pq = c->question_masking ? q->n_tok : Pb;
                for (int g = 0; g < G; g++)
                    for (int r = 0; r < n; r++)
                        memcpy(att_one + ((size_t)g * n + r) * Pq, att + (((size_t)b * G + g) * K + r) * Pb,
                               (size_t)Pq * sizeof(float));
                char path[4096];
                int64_t shape[3] = {G, n, Pq};
                snprintf(path, sizeof path, "%s/%lld.npy", att_dir, (long long)q->question_id);
                if (npy_save(path, "<f4", 3, shape, att_one, err, sizeof err)) { rc = cli_error("%s", err); goto done; }
            }
        }
        at += (size_t)nb;
        n_batches++;
        n_images += (size_t)ni;
        double t = vqa_now();
        if (t - last_report >= 2.0) {
            last_report = t;
            fprintf(stderr, "ban: vqa: %zu/%zu questions (%.1f%%), %.1f questions/s\n", at, n_run,
                    100.0 * (double)at / (double)n_run, (double)at / (t - t_run));
        }
    }
    const double t_done = vqa_now();

    /* 5. the results file, in the order of the questions file */
    char tmp[4096];
    FILE *f = cli_atomic_open(out_path, tmp, sizeof tmp);
    if (!f) { rc = cli_error("%s: cannot create a temporary file beside it: %s", out_path, strerror(errno)); goto done; }
    fputs("[", f);
    int first = 1;
    for (size_t i = 0; i < nq; i++) {
        const question *q = &ql.q[i];
        if (q->answer < 0) continue;
        fprintf(f, "%s\n{\"question_id\": %lld, \"answer\": ", first ? "" : ",", (long long)q->question_id);
        cli_json_cstr(f, ban_model_answer(m, q->answer));
        if (top.k) {
            fputs(", \"top_k\": [", f);
            for (int j = 0; j < top.k; j++) {
                const float p = top.prob[i * (size_t)top.k + (size_t)j];
                fputs(j ? ", {\"answer\": " : "{\"answer\": ", f);
                cli_json_cstr(f, ban_model_answer(m, top.index[i * (size_t)top.k + (size_t)j]));
                fprintf(f, ", \"probability\": %.6g}", isfinite(p) ? (double)p : 0.0);
            }
            fputs("]", f);
        }
        fputs("}", f);
        first = 0;
    }
    fputs("\n]\n", f);
    if ((rc = cli_atomic_close(f, tmp, out_path))) goto done;
    const double secs = t_done - t_run > 1e-9 ? t_done - t_run : 1e-9;
    fprintf(stderr, "ban: vqa: answered %zu questions (%zu images, %zu batches of up to %d) in %.2f s: %.1f "
            "questions/s; %.2f s in all; wrote %s\n", n_run, n_images, n_batches, B, secs, (double)n_run / secs,
            vqa_now() - t_start, out_path);
    if (missing)
        fprintf(stderr, "ban: vqa: skipped %zu question%s whose image has no features in %s\n", missing,
                missing == 1 ? "" : "s", store_path);
done:
    free(feats), free(spats), free(logits), free(att), free(att_one);
    free(box_counts), free(image_index), free(tok_counts), free(tokens);
    free(top.index), free(top.prob);
    free(order), free(ql.q), free(ql.tokens);
    ban_ctx_free(ctx);
    ban_ctx_free(tctx);
    store_close(st);
    ban_model_free(m);
    return rc;
}
