/* ban bench --preset paper-flickr: all entities of a sentence in one pass against one entity at
   a time, on a grounding model of the paper's size.

   ban bench --preset paper-flickr [--threads T] [--runs N] [--json] [--model-out PATH]

   The paper (section 5.3) infers all entities of a sentence at once in 0.67 ms per entity
   against 0.84 ms one entity at a time. Here: the reference's Flickr30k configuration (hidden
   1280, one glimpse, two 300-d embedding tables, 2048-d features, 18,000 words, sentences
   padded to 82 positions) with random weights, written as a .ban file and mapped like any
   model; N sentences (--runs, default 200) of 8-30 tokens with 1-8 entities at distinct
   positions, five on each image of 10-100 boxes. Each sentence is timed both ways, one right after the
   other (so that a busy machine slows both alike): all at once = one ban_forward with all its
   entities (batch 1); one at a time = one ban_forward per entity (batch 1, E = 1), as the paper
   compares. ms per entity = the total time / the total entities. A third pass times all at
   once with 32 sentences a call (about 7 images, each image's boxes projected once for all its
   sentences), as ban ground --split runs. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

enum {
    FL_IMAGES = 40,        /* distinct images */
    FL_PER_IMAGE = 5,      /* consecutive sentences on one image (Flickr30k has five captions each) */
    FL_MAX_BOXES = 100,
    FL_MIN_BOXES = 10,
    FL_MIN_TOKENS = 8,
    FL_MAX_TOKENS = 30,
    FL_MAX_ENTITIES = 8,
    FL_LENGTH = 82,        /* the reference pads Flickr30k sentences to 82 positions */
    FL_BATCH = 32
};

/* a whole number in [lo, hi] from the benchmark's fixed pseudo-random sequence */
static int rand_int(int lo, int hi)
{
    int v = lo + (int)((rand_uniform() + 1.0f) * 0.5f * (float)(hi - lo + 1));
    return v > hi ? hi : v;
}

static double load_average(void)
{
    double l = -1.0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1.0;
        fclose(f);
    }
    return l;
}

typedef struct {
    int image, n_tok, n_ent;
    int32_t tokens[FL_LENGTH];
    int32_t pos[FL_MAX_ENTITIES];  /* increasing */
} fl_sentence;

int bench_flickr(int threads, int runs, int as_json, const char *model_path, int panels)
{
    ban_config c;
    memset(&c, 0, sizeof c);
    c.task = BAN_TASK_GROUNDING, c.vocab_size = 18000, c.embedding_dim = 300, c.embedding_tables = 2;
    c.feature_dim = 2048, c.hidden_dim = 1280, c.attention_rank = 3, c.num_glimpses = 1;
    c.question_length = FL_LENGTH;
    const int S = runs > 0 ? runs : 200, Dv = c.feature_dim, L = FL_LENGTH;
    char path[4096];
    int rc = CLI_OK;
    if (model_path) snprintf(path, sizeof path, "%s", model_path);
    else {
        snprintf(path, sizeof path, "/tmp/ban-bench-paper-flickr-XXXXXX");
        int fd = mkstemp(path);
        if (fd < 0) return cli_error("%s: cannot create a temporary file", path);
        close(fd);
    }
    size_t file_size = 0;
    double t0 = 1e3 * util_now();
    if ((rc = write_random_model(path, &c, panels, &file_size))) {
        if (!model_path) unlink(path);
        return rc;
    }
    const double write_ms = 1e3 * util_now() - t0;
    ban_model *m;
    t0 = 1e3 * util_now();
    const int loaded = ban_model_load(path, &m);
    const double load_ms = 1e3 * util_now() - t0;
    if (!model_path) unlink(path); /* the mapping stays valid */
    if (loaded != BAN_OK) {
        rc = cli_error("%s", m ? ban_model_error(m) : "out of memory");
        ban_model_free(m);
        return rc;
    }

    /* the inputs: images of 10-100 boxes (ReLU-like features, boxes inside the image) and
       sentences of 8-30 tokens with 1-8 entities at distinct positions */
    int boxes[FL_IMAGES];
    float *v = (float *)calloc((size_t)FL_IMAGES * FL_MAX_BOXES * Dv, sizeof(float));
    float *b = (float *)calloc((size_t)FL_IMAGES * FL_MAX_BOXES * 6, sizeof(float));
    fl_sentence *sen = (fl_sentence *)calloc((size_t)S, sizeof(fl_sentence));
    float *gv = (float *)malloc((size_t)FL_BATCH * FL_MAX_BOXES * Dv * sizeof(float));
    float *gb = (float *)malloc((size_t)FL_BATCH * FL_MAX_BOXES * 6 * sizeof(float));
    float *logits = (float *)malloc((size_t)FL_BATCH * FL_MAX_BOXES * FL_MAX_ENTITIES * sizeof(float));
    int32_t *tok = (int32_t *)malloc((size_t)FL_BATCH * L * sizeof(int32_t));
    int32_t *ent = (int32_t *)malloc((size_t)FL_BATCH * FL_MAX_ENTITIES * sizeof(int32_t));
    int img_of[FL_BATCH], counts[FL_BATCH], chosen[FL_BATCH];
    ban_ctx *ctx = NULL;
    if (!v || !b || !sen || !gv || !gb || !logits || !tok || !ent) {
        rc = cli_error("out of memory");
        goto done;
    }
    long box_sum = 0, tok_sum = 0, ent_total = 0;
    for (int i = 0; i < FL_IMAGES; i++) {
        boxes[i] = rand_int(FL_MIN_BOXES, FL_MAX_BOXES);
        for (int k = 0; k < boxes[i]; k++) {
            float *f = v + ((size_t)i * FL_MAX_BOXES + k) * Dv, *s = b + ((size_t)i * FL_MAX_BOXES + k) * 6;
            for (int d = 0; d < Dv; d++) f[d] = fabsf(rand_uniform());
            float x = (rand_uniform() + 1) * 0.35f, y = (rand_uniform() + 1) * 0.35f;
            float w = 0.05f + (rand_uniform() + 1) * 0.1f, h = 0.05f + (rand_uniform() + 1) * 0.1f;
            s[0] = x, s[1] = y, s[2] = x + w, s[3] = y + h, s[4] = w, s[5] = h;
        }
    }
    for (int q = 0; q < S; q++) {
        fl_sentence *s = &sen[q];
        s->image = (q / FL_PER_IMAGE) % FL_IMAGES;
        s->n_tok = rand_int(FL_MIN_TOKENS, FL_MAX_TOKENS);
        s->n_ent = rand_int(1, FL_MAX_ENTITIES);
        for (int t = 0; t < L; t++) s->tokens[t] = t < s->n_tok ? rand_int(0, c.vocab_size - 1) : c.vocab_size;
        int order[FL_MAX_TOKENS];
        for (int t = 0; t < s->n_tok; t++) order[t] = t;
        for (int j = 0; j < s->n_ent; j++) { /* distinct positions: a partial shuffle, then sorted */
            int r = rand_int(j, s->n_tok - 1), x = order[j];
            order[j] = order[r], order[r] = x;
        }
        for (int j = 0; j < s->n_ent; j++) {
            int p = order[j], at = j;
            while (at > 0 && s->pos[at - 1] > p) s->pos[at] = s->pos[at - 1], at--;
            s->pos[at] = p;
        }
        box_sum += boxes[s->image], tok_sum += s->n_tok, ent_total += s->n_ent;
    }

    ban_limits lim = {FL_BATCH, FL_MAX_BOXES, L, FL_MAX_ENTITIES, threads};
    if (ban_ctx_create(m, &lim, &ctx) != BAN_OK) {
        rc = cli_error("%s", ban_ctx_error(ctx));
        goto done;
    }
    ban_input in;
    ban_output out;
    memset(&out, 0, sizeof out);
    out.logits = logits;
    double t_all = 0.0, t_one = 0.0, t_batched = 0.0;
    for (int q = -3; q < S && rc == CLI_OK; q++) { /* three warm-up sentences map the weights in */
        const fl_sentence *s = &sen[q < 0 ? ((q % S) + S) % S : q];
        memset(&in, 0, sizeof in);
        in.batch = 1, in.boxes = boxes[s->image], in.tokens_len = L, in.tokens = s->tokens;
        in.features = v + (size_t)s->image * FL_MAX_BOXES * Dv, in.spatials = b + (size_t)s->image * FL_MAX_BOXES * 6;
        in.entities_len = s->n_ent, in.entities = s->pos;
        double a = 1e3 * util_now();
        if (ban_forward(ctx, &in, &out) != BAN_OK) rc = cli_error("%s", ban_ctx_error(ctx));
        double mid = 1e3 * util_now();
        in.entities_len = 1;
        for (int j = 0; j < s->n_ent && rc == CLI_OK; j++) {
            in.entities = s->pos + j;
            if (ban_forward(ctx, &in, &out) != BAN_OK) rc = cli_error("%s", ban_ctx_error(ctx));
        }
        if (q >= 0) t_all += mid - a, t_one += 1e3 * util_now() - mid;
    }
    /* batched: FL_BATCH sentences a call, each image's boxes once, entity slots padded with 0 */
    for (int q0 = 0; q0 < S && rc == CLI_OK; q0 += FL_BATCH) {
        const int nb = S - q0 < FL_BATCH ? S - q0 : FL_BATCH;
        int ni = 0, K = 1, E = 1;
        for (int q = 0; q < nb; q++) {
            const fl_sentence *s = &sen[q0 + q];
            int j = 0;
            while (j < ni && chosen[j] != s->image) j++;
            if (j == ni) chosen[ni] = s->image, counts[ni] = boxes[s->image], ni++;
            img_of[q] = j;
            if (boxes[s->image] > K) K = boxes[s->image];
            if (s->n_ent > E) E = s->n_ent;
        }
        double a = 1e3 * util_now(); /* the copy into the batch is part of the cost */
        for (int i = 0; i < ni; i++) {
            memcpy(gv + (size_t)i * K * Dv, v + (size_t)chosen[i] * FL_MAX_BOXES * Dv, (size_t)K * Dv * sizeof(float));
            memcpy(gb + (size_t)i * K * 6, b + (size_t)chosen[i] * FL_MAX_BOXES * 6, (size_t)K * 6 * sizeof(float));
        }
        for (int q = 0; q < nb; q++) {
            const fl_sentence *s = &sen[q0 + q];
            memcpy(tok + (size_t)q * L, s->tokens, (size_t)L * sizeof(int32_t));
            for (int j = 0; j < E; j++) ent[(size_t)q * E + j] = j < s->n_ent ? s->pos[j] : 0;
        }
        memset(&in, 0, sizeof in);
        in.batch = nb, in.boxes = K, in.images = ni, in.image_index = img_of, in.box_counts = counts;
        in.features = gv, in.spatials = gb, in.tokens_len = L, in.tokens = tok, in.entities_len = E, in.entities = ent;
        if (ban_forward(ctx, &in, &out) != BAN_OK) rc = cli_error("%s", ban_ctx_error(ctx));
        t_batched += 1e3 * util_now() - a;
    }
    if (rc == CLI_OK) {
        const double n_e = (double)ent_total, all = t_all / n_e, one = t_one / n_e, batched = t_batched / n_e;
        const double load = load_average();
        if (as_json)
            printf("{\"preset\": \"paper-flickr\", \"threads\": %d, \"sentences\": %d, \"entities\": %ld, "
                   "\"entities_per_sentence\": %.2f, \"tokens_per_sentence\": %.2f, \"boxes_per_sentence\": %.2f, "
                   "\"ms_per_entity_all_at_once\": %.4f, \"ms_per_entity_one_at_a_time\": %.4f, "
                   "\"ratio_all_at_once_to_one_at_a_time\": %.4f, \"ms_per_sentence_all_at_once\": %.4f, "
                   "\"ms_per_entity_batched\": %.4f, \"batch\": %d, \"paper_ms_per_entity_all_at_once\": 0.67, "
                   "\"paper_ms_per_entity_one_at_a_time\": 0.84, \"hidden\": %d, \"glimpses\": %d, "
                   "\"feature_dim\": %d, \"vocabulary\": %d, \"positions\": %d, \"peak_rss_mb\": %ld, "
                   "\"model_mb\": %.1f, \"load_ms\": %.3f, \"model_write_ms\": %.0f, \"load_average_1min\": %.2f}\n",
                   threads, S, ent_total, n_e / S, (double)tok_sum / S, (double)box_sum / S, all, one, all / one,
                   t_all / S, batched, FL_BATCH, c.hidden_dim, c.num_glimpses, Dv, c.vocab_size, L, peak_rss_mb(),
                   file_size / 1048576.0, load_ms, write_ms, load);
        else
            printf("paper-flickr: hidden %d, %d glimpse, 2 x 300-d embeddings, %d-d features, %d words; %d threads\n"
                   "  %d sentences: %.1f tokens, %.2f entities (%ld in all, 1-%d), %.1f boxes (%d-%d) on average\n"
                   "  all entities of a sentence at once: %8.3f ms per entity (%.3f ms per sentence)\n"
                   "  one entity at a time:               %8.3f ms per entity\n"
                   "  ratio %.3f (the paper: 0.67 / 0.84 = 0.80)\n"
                   "  all at once, %d sentences a call:   %8.3f ms per entity\n"
                   "  model %.0f MB mapped in %.2f ms; peak RSS %ld MB; load average %.2f\n",
                   c.hidden_dim, c.num_glimpses, Dv, c.vocab_size, threads, S, (double)tok_sum / S, n_e / S, ent_total,
                   FL_MAX_ENTITIES, (double)box_sum / S, FL_MIN_BOXES, FL_MAX_BOXES, all, t_all / S, one, all / one,
                   FL_BATCH, batched, file_size / 1048576.0, load_ms, peak_rss_mb(), load);
    }
done:
    free(v), free(b), free(sen), free(gv), free(gb), free(logits), free(tok), free(ent);
    ban_ctx_free(ctx);
    ban_model_free(m);
    return rc;
}
