/* ban vqa - answer an official VQA questions file, or a GQA questions file, from a feature
   store and write the results file of the evaluation server (GQA: its predictions file).

   ban vqa MODEL.ban --features STORE --questions QUESTIONS.json --output RESULTS.json
           [--top-k N] [--attention DIR] [--batch B] [--skip-missing]

   Questions are tokenised with the model's vocabulary (and tokenizer), grouped by image and run in
   batches of up to B questions spanning as few images as possible: each image's boxes
   are copied once into the batch and projected once for all its questions
   (ban_input.images / image_index), with K = the most boxes among the batch's images and
   explicit box counts. The results file is a JSON array of {"question_id", "answer"} in
   the order of the questions file, every question once, written atomically (for a GQA
   questions file, {"questionId": "...", "prediction": "..."} as GQA's evaluation reads
   them; the image ids are the store's strings, "2354786", "n161313"); --top-k adds
   "top_k": [{"answer", "probability"}, ...] to each record, where the probability is
   sigmoid(logit): the model is trained with binary cross-entropy over the answers, so
   each is the model's independent estimate for that answer and they need not sum to 1
   (the official evaluator ignores keys it does not know). --attention DIR writes each
   question's attention maps as DIR/<question_id>.npy, float32 (G, K, P): K the image's
   boxes, P the question positions the model runs (14 for the reference's models; the
   question's own tokens for a model trained with masking). --attention-png OUT.png with
   --question-id QID and --image PHOTO.png (the photo of that question's image, the one the
   features came from) draws that question's attention as the paper's Fig. 3
   (examples/picture.h); the other questions are answered as without it.

   parse -> open the output (its path checked, and a signal from here on leaves nothing
   behind) -> load (model, store, questions, their images) -> run (the batches) -> write. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <sys/stat.h>

#include "cli.h"
#include "npy.h"
#include "picture.h"
#include "questions.h"
#include "store.h"

typedef struct {
    int64_t question_id;       /* VQA: the id as the results file holds it */
    const char *qkey, *ikey;   /* the question's and its image's ids as text (into the questions) */
    int index;                 /* position in the questions file */
    int n_tok;                 /* tokens kept (at most the positions the model runs) */
    size_t tok_at;             /* in the flat token array */
    store_record rec;          /* the image's boxes (rec.features == NULL: no features) */
    int answer;                /* argmax of the logits, -1 until answered */
} question;

typedef struct {
    /* the options */
    const cli_args *args;
    const char *model_path, *store_path, *q_path, *out_path, *att_dir;
    int skip_missing;
    long batch, k;
    /* loaded */
    ban_model *m;
    const ban_config *c;
    store *st;
    vqa_questions qs;          /* the questions file's strings */
    int gqa;                   /* it is a GQA file: GQA's predictions format */
    question *q;               /* (nq) in file order */
    size_t nq, n_run, missing;
    int32_t *tokens;           /* every question's kept tokens, back to back */
    size_t n_tokens, cap_tokens;
    question **order;          /* the n_run questions with features, by image */
    int max_tok;
    /* run */
    int *top_index;            /* (nq, k) answers by decreasing logit */
    float *top_prob;           /* (nq, k) sigmoid of their logits */
    size_t n_batches, n_images;
    double t_start, t_run, t_done;
    util_out out;
    /* the picture of one question: --attention-png, --question-id, --image */
    util_out pic;
    const char *pic_key;       /* --question-id: the pictured question */
    const char *photo_path;
    char *pic_question;        /* its text */
    picture_image photo;
} vqa_job;

static void vqa_free(vqa_job *j)
{
    util_out_abort(&j->out);
    util_out_abort(&j->pic);
    picture_image_free(&j->photo);
    free(j->pic_question);
    free(j->q), free(j->tokens), free(j->order), free(j->top_index), free(j->top_prob);
    if (j->qs.items) vqa_questions_free(&j->qs);
    store_close(j->st);
    ban_model_free(j->m);
}

/* ---- parse --------------------------------------------------------------------------------------- */

static int vqa_parse(const cli_args *a, vqa_job *j)
{
    j->args = a, j->model_path = a->model, j->store_path = cli_get(a, "--features");
    j->q_path = cli_get(a, "--questions"), j->out_path = cli_get(a, "--output");
    j->att_dir = cli_get(a, "--attention");
    j->skip_missing = cli_flag(a, "--skip-missing");
    j->batch = 32;
    if (cli_long(a, "--batch", 1, BAN_MAX_BATCH, &j->batch) || cli_long(a, "--top-k", 1, BAN_MAX_ANSWERS, &j->k))
        return CLI_USAGE;
    j->pic_key = cli_get(a, "--question-id");
    j->photo_path = cli_get(a, "--image");
    const int pic = !!cli_get(a, "--attention-png");
    if ((pic || j->photo_path || cli_get(a, "--question-id")) &&
        !(pic && j->photo_path && cli_get(a, "--question-id")))
        return cli_usage(a, "--attention-png OUT.png, --question-id QID and --image PHOTO.png draw one question's "
                            "attention: give all three");
    return picture_open(a, "--attention-png", &j->pic); /* before any work */
}

/* ---- load ---------------------------------------------------------------------------------------- */

/* Each question tokenised as questions.h reads it (at most keep tokens): errors come in the
   order of the file. */
typedef struct {
    vqa_job *j;
    ban_ctx *tctx;
    int keep;
    int32_t *ids;              /* (BAN_MAX_TOKENS) scratch */
    cli_words words;
} question_reader;

static int read_question(void *data, const vqa_questions *qs, size_t i, char *err, size_t errlen)
{
    question_reader *r = (question_reader *)data;
    vqa_job *j = r->j;
    if (!j->q) { /* the first question: now the count is known */
        const size_t count = qs->count;
        j->q = (question *)calloc(count, sizeof(question));
        j->cap_tokens = count * (size_t)(r->keep < 16 ? r->keep : 16);
        j->tokens = (int32_t *)malloc(j->cap_tokens * sizeof(int32_t));
        if (!j->q || !j->tokens) return util_fail(err, errlen, "out of memory for %zu questions", count);
    }
    const vqa_question *v = &qs->items[i];
    question *q = &j->q[i];
    q->question_id = v->question_id;
    q->qkey = v->question_key, q->ikey = v->image_key;
    char where[4200];
    int n;
    snprintf(where, sizeof where, "%s: question %s", j->q_path, q->qkey);
    if (cli_question(r->tctx, v->question, where, r->ids, r->keep, &n, &r->words, err, errlen)) return -1;
    if (j->pic.f && !strcmp(q->qkey, j->pic_key) && !j->pic_question && !(j->pic_question = strdup(v->question)))
        return util_fail(err, errlen, "out of memory");
    if (j->n_tokens + (size_t)n > j->cap_tokens) {
        size_t cap = j->cap_tokens * 2 + (size_t)n;
        int32_t *t = (int32_t *)realloc(j->tokens, cap * sizeof(int32_t));
        if (!t) return util_fail(err, errlen, "out of memory");
        j->tokens = t, j->cap_tokens = cap;
    }
    memcpy(j->tokens + j->n_tokens, r->ids, (size_t)n * sizeof(int32_t));
    q->tok_at = j->n_tokens;
    q->n_tok = n;
    q->index = (int)i;
    q->answer = -1;
    j->n_tokens += (size_t)n;
    j->nq = i + 1;
    return 0;
}

/* the questions, tokenised; tokens past the positions the model runs are dropped */
static int load_questions(vqa_job *j)
{
    question_reader r;
    memset(&r, 0, sizeof r);
    r.j = j;
    r.keep = j->c->question_masking ? BAN_MAX_TOKENS : j->c->question_length;
    if (ban_ctx_create(j->m, NULL, &r.tctx) != BAN_OK) {
        int rc = cli_error("%s", ban_ctx_error(r.tctx));
        ban_ctx_free(r.tctx);
        return rc;
    }
    char err[8192];
    int rc = !(r.ids = (int32_t *)malloc(BAN_MAX_TOKENS * sizeof(int32_t))) ? cli_error("out of memory")
             : vqa_questions_load(j->q_path, &j->qs, read_question, &r, err, sizeof err) ? cli_error("%s", err)
                                                                                         : CLI_OK;
    j->gqa = rc == CLI_OK && j->qs.format == QUESTIONS_GQA;
    if (rc == CLI_OK) cli_words_report(&r.words);
    free(r.ids);
    ban_ctx_free(r.tctx);
    return rc;
}

/* by the image's place in the store (sequential reads of the mapping), then file order */
static int by_image(const void *a, const void *b)
{
    const question *x = *(question *const *)a, *y = *(question *const *)b;
    if (x->rec.features != y->rec.features) return x->rec.features < y->rec.features ? -1 : 1;
    return x->index - y->index;
}

/* each question's image in the store; j->order: those found, by image */
static int find_images(vqa_job *j)
{
    j->max_tok = 1;
    for (size_t i = 0; i < j->nq; i++) {
        question *q = &j->q[i];
        if (!store_find(j->st, q->ikey, &q->rec)) {
            q->rec.features = NULL;
            if (!j->skip_missing)
                return cli_error("question %s: its image %s has no features in %s (--skip-missing leaves such "
                                 "questions out)", q->qkey, q->ikey, j->store_path);
            if (j->missing < 5) cli_warn("question %s: image %s has no features; question skipped", q->qkey, q->ikey);
            j->missing++;
            continue;
        }
        j->order[j->n_run++] = q;
        if (q->n_tok > j->max_tok) j->max_tok = q->n_tok;
    }
    if (j->n_run == 0) return cli_error("none of the %zu questions has its image in %s", j->nq, j->store_path);
    qsort(j->order, j->n_run, sizeof *j->order, by_image);
    return CLI_OK;
}

/* the pictured question is there, with features; its photo */
static int find_picture(vqa_job *j)
{
    const question *q = NULL;
    for (size_t i = 0; i < j->nq && !q; i++)
        if (!strcmp(j->q[i].qkey, j->pic_key)) q = &j->q[i];
    if (!q) return cli_error("--question-id %s: no such question in %s", j->pic_key, j->q_path);
    if (!q->rec.features)
        return cli_error("--question-id %s: its image %s has no features in %s", j->pic_key, q->ikey, j->store_path);
    return picture_photo(j->photo_path, PICTURE_PHOTO_SIDE, PICTURE_PHOTO_SIDE, &j->photo);
}

static int vqa_load(vqa_job *j)
{
    char err[4400];
    int rc;
    if (!(j->m = cli_load_model(j->model_path))) return CLI_FAIL;
    const ban_config *c = j->c = ban_model_config(j->m);
    if (c->task != BAN_TASK_VQA) return cli_error("%s is a grounding model, not a VQA model", j->model_path);
    if (!c->has_vocabulary || !c->has_answers)
        return cli_error("%s carries no %s (export it with %s)", j->model_path,
                         c->has_vocabulary ? "answer strings" : "vocabulary",
                         c->has_vocabulary ? "--answers" : "--dictionary");
    if (j->k > c->num_answers) return cli_usage(j->args, "--top-k %ld: the model has %d answers", j->k, c->num_answers);
    if (store_open(j->store_path, &j->st, err, sizeof err)) return cli_error("%s", err);
    if (store_feature_dim(j->st) != c->feature_dim)
        return cli_error("%s holds %d-d box features, but %s expects %d-d features", j->store_path,
                         store_feature_dim(j->st), j->model_path, c->feature_dim);
    if (j->att_dir && mkdir(j->att_dir, 0777) != 0 && errno != EEXIST)
        return cli_error("%s: cannot create the folder: %s", j->att_dir, strerror(errno));
    if ((rc = load_questions(j))) return rc; /* questions.h refuses a question id given twice */
    if (!(j->order = (question **)malloc(j->nq * sizeof *j->order))) return cli_error("out of memory");
    if ((rc = find_images(j))) return rc;
    return j->pic.f ? find_picture(j) : CLI_OK;
}

/* ---- run ----------------------------------------------------------------------------------------- */

typedef struct {
    float *feats, *spats, *logits, *att, *att_one, *entropy;
    int *box_counts, *image_index, *tok_counts;
    int32_t *tokens;
} batch_buffers;

/* ban_forward's batch positions, named by ids: "image 458752", "question 458752000" */
typedef struct {
    question *const *q;        /* the batch's questions */
    const int *image_index;
    int nb;
} batch_names;

static void name_position(void *data, const char *kind, int position, char *out, size_t len)
{
    const batch_names *n = (const batch_names *)data;
    const question *q = NULL;
    for (int b = 0; b < n->nb && !q; b++)
        if (strcmp(kind, "image") ? b == position : n->image_index[b] == position) q = n->q[b];
    if (!q) snprintf(out, len, "%s %d of a batch", kind, position);
    else if (!strcmp(kind, "image")) snprintf(out, len, "image %s (question %s)", q->ikey, q->qkey);
    else snprintf(out, len, "question %s (image %s)", q->qkey, q->ikey);
}

/* the batch's images (each once, zero rows after its boxes) and tokens; K and L: the most */
static void fill_batch(const vqa_job *j, question *const *q, int nb, const batch_buffers *bb, int *K_out, int *L_out)
{
    const int D = j->c->feature_dim;
    int K = 1, L = 1, img = -1;
    for (int b = 0; b < nb; b++) {
        if (b == 0 || q[b]->rec.features != q[b - 1]->rec.features) img++;
        bb->image_index[b] = img;
        bb->box_counts[img] = q[b]->rec.n_boxes;
        if (q[b]->rec.n_boxes > K) K = q[b]->rec.n_boxes;
        if (q[b]->n_tok > L) L = q[b]->n_tok;
    }
    for (int b = 0; b < nb; b++) {
        const int i = bb->image_index[b], n = q[b]->rec.n_boxes;
        if (b > 0 && bb->image_index[b - 1] == i) continue;
        float *fv = bb->feats + (size_t)i * K * D, *sv = bb->spats + (size_t)i * K * 6;
        memcpy(fv, q[b]->rec.features, (size_t)n * D * sizeof(float));
        memset(fv + (size_t)n * D, 0, (size_t)(K - n) * D * sizeof(float));
        memcpy(sv, q[b]->rec.spatials, (size_t)n * 6 * sizeof(float));
        memset(sv + (size_t)n * 6, 0, (size_t)(K - n) * 6 * sizeof(float));
    }
    for (int b = 0; b < nb; b++) {
        cli_pad_tokens(bb->tokens + (size_t)b * L, j->tokens + q[b]->tok_at, q[b]->n_tok, L, j->c->padding_id);
        bb->tok_counts[b] = q[b]->n_tok;
    }
    *K_out = K, *L_out = L;
}

/* the pictured question's attention, (G, n, Pq) in bb->att_one */
static int draw_picture(vqa_job *j, ban_ctx *ctx, const question *q, const batch_buffers *bb, int b, int Pq)
{
    const int A = j->c->num_answers, G = j->c->num_glimpses;
    const char **words = picture_words(ctx, j->pic_question, q->n_tok, Pq);
    if (!words) return cli_error("out of memory");
    const float logit = bb->logits[(size_t)b * A + q->answer];
    const picture_vqa v = {j->pic_question, ban_model_answer(j->m, q->answer), 1.0 / (1.0 + exp(-logit)), G,
                           q->rec.n_boxes, Pq, bb->att_one, bb->entropy + (size_t)b * G, &j->photo, 0, 0, q->rec.boxes,
                           q->rec.width, q->rec.height, words};
    const int rc = picture_boxes(&j->pic, &v);
    free(words);
    return rc;
}

/* the answers of one batch; top-k, the attention files and the picture */
static int batch_results(vqa_job *j, ban_ctx *ctx, question *const *q, int nb, const batch_buffers *bb, int K, int L)
{
    const int A = j->c->num_answers, G = j->c->num_glimpses, Pb = ban_question_positions(j->m, L);
    for (int b = 0; b < nb; b++) {
        const float *lg = bb->logits + (size_t)b * A;
        q[b]->answer = ban_argmax(lg, A);
        if (j->k) {
            int *ti = j->top_index + (size_t)q[b]->index * j->k;
            float *tp = j->top_prob + (size_t)q[b]->index * j->k;
            util_top_k(lg, A, (int)j->k, ti);
            for (int r = 0; r < j->k; r++) tp[r] = 1.0f / (1.0f + expf(-lg[ti[r]]));
        }
        const int pictured = j->pic.f && !strcmp(q[b]->qkey, j->pic_key);
        if (j->att_dir || pictured) { /* (G, n, Pq): the image's boxes, the positions of this question */
            const int n = q[b]->rec.n_boxes, Pq = j->c->question_masking ? q[b]->n_tok : Pb;
            for (int g = 0; g < G; g++)
                for (int r = 0; r < n; r++)
                    memcpy(bb->att_one + ((size_t)g * n + r) * Pq, bb->att + (((size_t)b * G + g) * K + r) * Pb,
                           (size_t)Pq * sizeof(float));
            if (j->att_dir) {
                char path[4200], err[4400];
                const int64_t shape[3] = {G, n, Pq};
                snprintf(path, sizeof path, "%s/%s.npy", j->att_dir, q[b]->qkey);
                if (npy_save(path, "<f4", 3, shape, bb->att_one, err, sizeof err)) return cli_error("%s", err);
            }
            if (pictured && draw_picture(j, ctx, q[b], bb, b, Pq)) return CLI_FAIL;
        }
    }
    return CLI_OK;
}

/* batches: whole images while they fit; an image with more than B questions is split */
static int vqa_run(vqa_job *j)
{
    const ban_config *c = j->c;
    const int D = c->feature_dim, A = c->num_answers, G = c->num_glimpses, B = (int)j->batch;
    const int Kmax = store_max_boxes(j->st), P = ban_question_positions(j->m, j->max_tok);
    ban_limits lim = {B, Kmax, j->max_tok, 0, 0};
    ban_ctx *ctx = NULL;
    batch_buffers bb;
    memset(&bb, 0, sizeof bb);
    int rc = CLI_OK;
    if (ban_ctx_create(j->m, &lim, &ctx) != BAN_OK) {
        rc = cli_error("%s", ban_ctx_error(ctx));
        goto done;
    }
    bb.feats = (float *)malloc((size_t)B * Kmax * D * sizeof(float));
    bb.spats = (float *)malloc((size_t)B * Kmax * 6 * sizeof(float));
    bb.logits = (float *)malloc((size_t)B * A * sizeof(float));
    bb.box_counts = (int *)malloc((size_t)B * sizeof(int));
    bb.image_index = (int *)malloc((size_t)B * sizeof(int));
    bb.tok_counts = (int *)malloc((size_t)B * sizeof(int));
    bb.tokens = (int32_t *)malloc((size_t)B * j->max_tok * sizeof(int32_t));
    if (j->att_dir || j->pic.f) {
        bb.att = (float *)malloc((size_t)B * G * Kmax * P * sizeof(float));
        bb.att_one = (float *)malloc((size_t)G * Kmax * P * sizeof(float));
        bb.entropy = (float *)malloc((size_t)B * G * sizeof(float));
    }
    if (j->k) {
        j->top_index = (int *)malloc(j->nq * (size_t)j->k * sizeof(int));
        j->top_prob = (float *)malloc(j->nq * (size_t)j->k * sizeof(float));
    }
    if (!bb.feats || !bb.spats || !bb.logits || !bb.box_counts || !bb.image_index || !bb.tok_counts || !bb.tokens ||
        ((j->att_dir || j->pic.f) && (!bb.att || !bb.att_one || !bb.entropy)) ||
        (j->k && (!j->top_index || !j->top_prob))) {
        rc = cli_error("out of memory for batches of %d questions", B);
        goto done;
    }
    j->t_run = util_now();
    double last_report = j->t_run;
    for (size_t at = 0; at < j->n_run;) {
        question *const *q = j->order + at;
        int nb = 0, ni = 0;
        while (at + (size_t)nb < j->n_run) { /* the next image's questions, if they fit */
            size_t g = at + (size_t)nb, e = g;
            while (e < j->n_run && j->order[e]->rec.features == j->order[g]->rec.features) e++;
            if ((size_t)nb + (e - g) <= (size_t)B) nb += (int)(e - g), ni++;
            else {
                if (nb == 0) nb = B, ni = 1;
                break;
            }
        }
        int K, L;
        fill_batch(j, q, nb, &bb, &K, &L);
        ban_input in;
        ban_output out;
        memset(&in, 0, sizeof in);
        memset(&out, 0, sizeof out);
        in.batch = nb, in.boxes = K, in.images = ni, in.image_index = bb.image_index;
        in.features = bb.feats, in.spatials = bb.spats, in.box_counts = bb.box_counts;
        in.tokens_len = L, in.tokens = bb.tokens, in.token_counts = bb.tok_counts;
        out.logits = bb.logits, out.attention = bb.att, out.entropy = bb.entropy;
        if (ban_forward(ctx, &in, &out) != BAN_OK) {
            batch_names names = {q, bb.image_index, nb};
            char prefix[128];
            snprintf(prefix, sizeof prefix, "questions %.64s..: ", q[0]->qkey);
            rc = cli_forward_error(ban_ctx_error(ctx), name_position, &names, prefix);
            goto done;
        }
        if ((rc = batch_results(j, ctx, q, nb, &bb, K, L))) goto done;
        at += (size_t)nb;
        j->n_batches++;
        j->n_images += (size_t)ni;
        const double t = util_now();
        if (t - last_report >= 2.0) {
            last_report = t;
            fprintf(stderr, "ban: vqa: %zu/%zu questions (%.1f%%), %.1f questions/s\n", at, j->n_run,
                    100.0 * (double)at / (double)j->n_run, (double)at / (t - j->t_run));
        }
    }
    j->t_done = util_now();
done:
    free(bb.feats), free(bb.spats), free(bb.logits), free(bb.att), free(bb.att_one), free(bb.entropy);
    free(bb.box_counts), free(bb.image_index), free(bb.tok_counts), free(bb.tokens);
    ban_ctx_free(ctx);
    return rc;
}

/* ---- write --------------------------------------------------------------------------------------- */

/* the results file, in the order of the questions file: VQA's [{"question_id", "answer"}],
   or GQA's [{"questionId", "prediction"}] */
static int vqa_write(vqa_job *j)
{
    FILE *f = j->out.f;
    fputs("[", f);
    int first = 1;
    for (size_t i = 0; i < j->nq; i++) {
        const question *q = &j->q[i];
        if (q->answer < 0) continue;
        if (j->gqa) {
            fprintf(f, "%s\n{\"questionId\": ", first ? "" : ",");
            cli_json_cstr(f, q->qkey);
            fputs(", \"prediction\": ", f);
        } else {
            fprintf(f, "%s\n{\"question_id\": %lld, \"answer\": ", first ? "" : ",", (long long)q->question_id);
        }
        cli_json_cstr(f, ban_model_answer(j->m, q->answer));
        if (j->k) {
            fputs(", \"top_k\": [", f);
            for (int r = 0; r < j->k; r++) {
                const float p = j->top_prob[i * (size_t)j->k + (size_t)r];
                fputs(r ? ", {\"answer\": " : "{\"answer\": ", f);
                cli_json_cstr(f, ban_model_answer(j->m, j->top_index[i * (size_t)j->k + (size_t)r]));
                fprintf(f, ", \"probability\": %.6g}", isfinite(p) ? (double)p : 0.0);
            }
            fputs("]", f);
        }
        fputs("}", f);
        first = 0;
    }
    fputs("\n]\n", f);
    if (cli_commit_output(&j->out)) return CLI_FAIL;
    const double secs = j->t_done - j->t_run > 1e-9 ? j->t_done - j->t_run : 1e-9;
    fprintf(stderr, "ban: vqa: answered %zu questions (%zu images, %zu batches of up to %ld) in %.2f s: %.1f "
            "questions/s; %.2f s in all; wrote %s\n", j->n_run, j->n_images, j->n_batches, j->batch, secs,
            (double)j->n_run / secs, util_now() - j->t_start, j->out_path);
    if (j->missing)
        fprintf(stderr, "ban: vqa: skipped %zu question%s whose image has no features in %s\n", j->missing,
                j->missing == 1 ? "" : "s", j->store_path);
    return CLI_OK;
}

static int vqa_main(const cli_args *a)
{
    vqa_job j;
    memset(&j, 0, sizeof j);
    j.t_start = util_now();
    int rc = vqa_parse(a, &j);
    if (rc == CLI_OK) rc = cli_open_output(&j.out, j.out_path);
    if (rc == CLI_OK) rc = vqa_load(&j);
    if (rc == CLI_OK) rc = vqa_run(&j);
    if (rc == CLI_OK) rc = vqa_write(&j);
    vqa_free(&j);
    return rc;
}

static const cli_option vqa_options[] = {
    {"--features", "STORE", 1, "the images' box features (a store of ban features import)"},
    {"--questions", "FILE", 1, "an official VQA questions file (v2_OpenEnded_mscoco_*_questions.json) or a GQA\n"
                               "questions file (testdev_balanced_questions.json); an empty question, or one with no\n"
                               "word in the vocabulary, is an error"},
    {"--output", "RESULTS.json", 1, "the results, [{\"question_id\", \"answer\"}] as the evaluation server reads them\n"
                                    "(a GQA file: [{\"questionId\", \"prediction\"}], GQA's predictions format)"},
    {"--top-k", "N", 0, "add \"top_k\": [{\"answer\", \"probability\" = sigmoid(logit)}] to each (default: none)"},
    {"--attention", "DIR", 0, "write each question's attention maps as DIR/<question_id>.npy, float32 (G, K, P)"},
    {"--batch", "B", 0, "questions a forward pass, whole images while they fit (default 32)"},
    {"--skip-missing", NULL, 0, "leave out, and count, the questions whose image is not in STORE (default: an error)"},
    {"--attention-png", "OUT.png", 0, "draw one question's attention as the paper's Fig. 3 (with --question-id and\n"
                                      "--image; the path checked before any work)"},
    {"--question-id", "QID", 0, "the question drawn by --attention-png"},
    {"--image", "PHOTO.png", 0, "the photo of that question's image, the one its features came from (PNG or BMP)"},
    {NULL, NULL, 0, NULL}};

const cli_command cli_vqa = {
    "vqa", vqa_main, CLI_MODEL, "--features STORE --questions QUESTIONS.json --output RESULTS.json [options]",
    "answers an official VQA (or GQA) questions file from a feature store, for the evaluation server\n"
    "Questions are batched by image, each image's boxes projected once for all its questions; the results file\n"
    "is written atomically, in the order of the questions file.",
    vqa_options, 0,
    "ban vqa ban.ban --features val2014.store --questions v2_OpenEnded_mscoco_val2014_questions.json \\\n"
    "    --output results.json --top-k 5\n"
    "ban vqa ban.ban --features val2014.store --questions v2_OpenEnded_mscoco_val2014_questions.json \\\n"
    "    --output results.json --attention-png q42000.png --question-id 42000 --image COCO_val2014_000000000042.png\n"

    "ban vqa ban8-gqa.ban --features gqa.store --questions testdev_balanced_questions.json --output predictions.json"};
