/* ban ground - phrase grounding on Flickr30k Entities, from a feature store.

   ban ground --model M.ban --features STORE --image ID (--sentence TEXT | --sentences FILE --line N)
              [--annotations FILE.xml | --annotations-dir DIR] [--top-k N] [--json] [--max-entities N]
   ban ground --model M.ban --features STORE --split SPLIT.txt --annotations-dir DIR --output P.json
              [--batch N] [--max-entities N] [--skip-bad] [--skip-missing]

   Entities are found exactly as the reference finds them (jnhwkim/ban-vqa: dataset.py
   _load_flickr30k, FlickrDataset.tokenize; utils.py remove_annotations, find_sublist), so that
   a model trained there reads what it was trained on. For one line of a Sentences file:
     sent      the line, stripped (Python's str.strip)
     sentence  sent with every match of \[[^ ]+<space> deleted, then every ']' deleted: the words
               the tokenizer reads (ban_tokenize, truncated to the model's question length, 82)
     entities  every \[(.*?)\] of sent, split at its first space into info and phrase; the chain
               is the digits after the first "/EN#" of info, the types are info split on '/'
               from the third part on
     position  the index of the LAST word of the FIRST occurrence of the phrase's words in
               sentence split on single spaces. That split keeps a standalone "," as a word while
               the tokenizer deletes it, so after a comma the position points one token further
               than the phrase's last word: the reference trains and tests that way, and so does
               this command (it reports the token each position reads).
   An entity whose chain has no <object> with a non-empty <bndbox> in the image's annotations
   (chain 0, "notvisual", never has one) is skipped and counted, before the limit of
   --max-entities (16 in the reference) is applied; a sentence left without entities is dropped.
   All entities of a sentence run in one ban_forward (entity_counts NULL: the reference's rule
   masks a slot other than the first whose position is 0). A box's score is its logit (the sum
   over glimpses when G > 1; the reference trains one glimpse for Flickr30k). Padded boxes are
   never ranked; coordinates are the store's pixel boxes (x1, y1, x2, y2).

   For the predictions file, every phrase record also carries the keys of the official
   utilities (BryanPlummer/flickr30k_entities, get_sentence_data): first_word_index (words
   split on whitespace, markup tokens removed), phrase_id (the text after "EN#"), and
   sentence_index (the line's place among the file's non-empty lines), which is how
   tools/flickr30k.py evaluate matches predictions to its entities. A line whose markup the
   reference and the official utilities would read differently is malformed.

   Bad input is an error naming the file and line: malformed markup, a phrase missing from its
   sentence (the reference asserts), more entities than --max-entities, an entity position past
   the model's question length, malformed XML (expat's line), a chain id that is not a whole
   number. --skip-bad skips such sentences (or the image, for a bad file) and counts them;
   --skip-missing skips and counts images missing from the store. The line parser and the
   annotations reader are examples/markup.h and examples/annotations.h (fuzzed:
   tests/fuzz/fuzz_markup.c, fuzz_annotations.c). */
#define _POSIX_C_SOURCE 200809L
#include "../ban.h"
#define MARKUP_IMPLEMENTATION
#include "markup.h"
#define ANNOTATIONS_IMPLEMENTATION
#include "annotations.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

int cmd_ground(int argc, char **argv);

#define GROUND_MSG 1024  /* a message */
#define GROUND_ERR 6144  /* a message with its file and line */

static int ground_fail(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, GROUND_MSG, fmt, ap);
    va_end(ap);
    return -1;
}

static double ground_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}


/* Which entities the model grounds (chains with a box; without annotations, every chain but 0),
   the tokens (at most L), and the checks on what is left. Returns 0, or -1 with a message. */
typedef struct {
    int max_entities, L;
    ban_ctx *ctx;
    int32_t *ids;                 /* (L) scratch */
    size_t skipped_no_box;        /* entities of chains without a box */
} line_rules;

static int ground_line(markup_line *g, const annotations_chains *chains, line_rules *r, int *n_tok, int *n_grounded,
                       char *err)
{
    int kept = 0, n;
    for (int k = 0; k < g->n_ent; k++) {
        markup_entity *e = &g->ent[k];
        e->grounded = e->chain != 0 && (!chains || annotations_has(chains, e->chain));
        kept += e->grounded;
    }
    if (ban_tokenize(r->ctx, g->sentence, r->ids, r->L, &n) != BAN_OK)
        return ground_fail(err, "%s", ban_ctx_error(r->ctx));
    *n_tok = n < r->L ? n : r->L;
    if (kept > r->max_entities)
        return ground_fail(err, "%d entities with a box, more than --max-entities %d (the reference's limit is 16)",
                           kept, r->max_entities);
    for (int k = 0; k < g->n_ent; k++)
        if (g->ent[k].grounded && g->ent[k].position >= r->L)
            return ground_fail(err, "entity '%s' (chain %s) is at position %d, past the %d positions the model reads "
                               "(the reference asserts here)", g->ent[k].phrase, g->ent[k].phrase_id,
                               g->ent[k].position, r->L);
    for (int k = 0; k < g->n_ent; k++) r->skipped_no_box += !g->ent[k].grounded;
    *n_grounded = kept;
    return 0;
}

/* ---- ranking ------------------------------------------------------------------------------------ */

typedef struct {
    float score;
    int index;
} ranked;

static int by_score(const void *a, const void *b)
{
    const ranked *x = (const ranked *)a, *y = (const ranked *)b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->index - y->index;
}

/* the n real boxes of entity j of example b by decreasing score (the sum over glimpses), ties
   to the lower index; logits (B, G, K, E) */
static void rank_boxes(const float *logits, int b, int G, int K, int E, int j, int n, ranked *out)
{
    for (int k = 0; k < n; k++) {
        float s = 0.0f;
        for (int g = 0; g < G; g++) s += logits[(((size_t)b * G + g) * K + k) * E + j];
        out[k].score = s, out[k].index = k;
    }
    qsort(out, (size_t)n, sizeof *out, by_score);
}

/* ---- the shared set-up -------------------------------------------------------------------------- */

typedef struct {
    ban_model *model;
    const ban_config *c;
    store *st;
} ground_setup;

static int setup_open(ground_setup *s, const char *model_path, const char *store_path)
{
    char err[512];
    if (!(s->model = cli_load_model(model_path))) return CLI_FAIL;
    s->c = ban_model_config(s->model);
    if (s->c->task != BAN_TASK_GROUNDING)
        return cli_error("%s is a VQA model; ban ground needs a grounding model (Flickr30k Entities)", model_path);
    if (!s->c->has_vocabulary)
        return cli_error("%s carries no vocabulary (export it with --dictionary)", model_path);
    if (s->c->encoder_layers) return cli_error("%s reads images; ban ground reads box features", model_path);
    if (store_open(store_path, &s->st, err, sizeof err)) return cli_error("%s", err);
    if (store_feature_dim(s->st) != s->c->feature_dim)
        return cli_error("%s holds %d-d box features, but %s expects %d-d features", store_path,
                         store_feature_dim(s->st), model_path, s->c->feature_dim);
    return CLI_OK;
}

static void setup_close(ground_setup *s)
{
    store_close(s->st);
    ban_model_free(s->model);
}

/* an image id as the store holds them (examples/store.h): safe in a file name too */
static int parse_image_id(const char *text) { return store_id_check(text, strlen(text)); }

/* ---- one sentence ------------------------------------------------------------------------------- */

static void print_types(FILE *f, const char *info, int as_json)
{
    /* info.split('/')[2:] */
    const char *p = strchr(info, '/');
    p = p ? strchr(p + 1, '/') : NULL;
    int first = 1;
    if (as_json) fputc('[', f);
    while (p) {
        const char *start = p + 1, *end = strchr(start, '/');
        size_t len = end ? (size_t)(end - start) : strlen(start);
        if (as_json) fputs(first ? "" : ", ", f), cli_json_string(f, start, len);
        else fprintf(f, "%s%.*s", first ? "" : "/", (int)len, start);
        first = 0;
        p = end;
    }
    if (as_json) fputc(']', f);
    else if (first) fputs("-", f);
}

static int ground_one(const ground_setup *s, const char *image_text, const char *text_arg, const char *sent_path,
                      long line_no, const char *xml_path, int top_k, int as_json, int max_entities)
{
    const ban_config *c = s->c;
    ban_model *m = s->model;
    char err[GROUND_ERR], where[4200];
    store_record rec;
    if (!parse_image_id(image_text))
        return cli_usage("--image must be an image id: 1 to %d letters, digits, '_', '-' or '.' (got '%.80s')",
                         STORE_MAX_ID, image_text);
    if (!store_find(s->st, image_text, &rec)) return cli_error("image %s has no features in the store", image_text);

    /* the line: from the command line, or line N of a Sentences file */
    char *file = NULL;
    const char *line = text_arg;
    size_t len = text_arg ? strlen(text_arg) : 0;
    long sentence_index = -1;
    if (text_arg) snprintf(where, sizeof where, "--sentence");
    else {
        size_t size;
        if (!(file = markup_read_file(sent_path, &size, err, GROUND_MSG))) return cli_error("%s", err);
        markup_lines lr = {file, size, 0, 0};
        const char *l;
        size_t ll;
        int found = 0;
        sentence_index = 0;
        while (markup_next_line(&lr, &l, &ll)) {
            if (lr.lineno == line_no) {
                found = 1, line = l, len = ll;
                break;
            }
            sentence_index += ll > 0;
        }
        snprintf(where, sizeof where, "%s:%ld", sent_path, line_no);
        if (!found) return free(file), cli_error("%s: the file has %ld lines", where, lr.lineno);
        if (len == 0) return free(file), cli_error("%s: the line is empty (not a sentence)", where);
    }
    annotations_chains chains = {NULL, 0, 0};
    if (xml_path && annotations_read(xml_path, &chains, err, sizeof err)) return free(file), cli_error("%s", err);

    markup_line g;
    memset(&g, 0, sizeof g);
    ban_ctx *ctx = NULL;
    int32_t *tokens = NULL, *ents = NULL;
    float *logits = NULL;
    ranked *rank = NULL;
    int rc = CLI_OK, n_tok = 0, E = 0;
    const int L = c->question_length, n = rec.n_boxes, G = c->num_glimpses;
    if (markup_check_line(line, len, err, GROUND_MSG) || markup_parse_line(line, len, &g, err, GROUND_MSG)) {
        rc = cli_error("%s: %s", where, err);
        goto done;
    }
    int E_all = g.n_ent > 0 ? g.n_ent : 1;
    ban_limits lim = {1, n, L, E_all < max_entities ? E_all : max_entities, 0};
    if (lim.max_entities < 1) lim.max_entities = 1;
    if (ban_ctx_create(m, &lim, &ctx) != BAN_OK) {
        rc = cli_error("%s", ban_ctx_error(ctx));
        goto done;
    }
    tokens = (int32_t *)malloc((size_t)L * sizeof(int32_t));
    ents = (int32_t *)malloc((size_t)E_all * sizeof(int32_t));
    logits = (float *)malloc((size_t)G * n * E_all * sizeof(float));
    rank = (ranked *)malloc((size_t)n * sizeof(ranked));
    if (!tokens || !ents || !logits || !rank) {
        rc = cli_error("out of memory");
        goto done;
    }
    line_rules rules = {max_entities, L, ctx, tokens, 0};
    if (ground_line(&g, xml_path ? &chains : NULL, &rules, &n_tok, &E, err)) {
        rc = cli_error("%s: %s", where, err);
        goto done;
    }
    if (E == 0) {
        rc = cli_error("%s: no entity to ground (%d in the line, none of a chain with a box%s)", where, g.n_ent,
                       xml_path ? " in the annotations" : "; chain 0 is notvisual");
        goto done;
    }
    for (int t = n_tok; t < L; t++) tokens[t] = c->padding_id;
    for (int k = 0, j = 0; k < g.n_ent; k++)
        if (g.ent[k].grounded) ents[j++] = g.ent[k].position;

    ban_input in;
    ban_output out;
    memset(&in, 0, sizeof in);
    memset(&out, 0, sizeof out);
    in.batch = 1, in.boxes = n, in.features = rec.features, in.spatials = rec.spatials;
    in.tokens_len = L, in.tokens = tokens, in.entities_len = E, in.entities = ents;
    out.logits = logits;
    if (ban_forward(ctx, &in, &out) != BAN_OK) {
        rc = cli_error("%s: %s", where, ban_ctx_error(ctx));
        goto done;
    }

    const int shown = top_k > 0 && top_k < n ? top_k : n;
    if (as_json) {
        printf("{\"image_id\": ");
        cli_json_cstr(stdout, image_text);
        printf(", \"width\": %d, \"height\": %d, \"boxes\": %d, ", rec.width, rec.height, n);
        if (sentence_index >= 0) {
            printf("\"sentences\": ");
            cli_json_cstr(stdout, sent_path);
            printf(", \"line\": %ld, \"sentence_index\": %ld, ", line_no, sentence_index);
        }
        printf("\"sentence\": ");
        cli_json_cstr(stdout, g.sentence);
        printf(", \"tokens\": %d, \"positions\": %d, \"glimpses\": %d,\n \"phrases\": [", n_tok, L, G);
        int first = 1;
        for (int k = 0, j = 0; k < g.n_ent; k++) {
            const markup_entity *e = &g.ent[k];
            if (!e->grounded) continue;
            const int pos = e->position;
            const char *word = pos < n_tok ? ban_model_word(m, tokens[pos]) : NULL;
            printf("%s\n  {\"phrase\": ", first ? "" : ",");
            cli_json_cstr(stdout, e->phrase);
            printf(", \"phrase_id\": ");
            cli_json_cstr(stdout, e->phrase_id);
            printf(", \"types\": ");
            print_types(stdout, e->info, 1);
            printf(", \"position\": %d, \"token\": ", pos);
            if (word) cli_json_cstr(stdout, word);
            else printf("null");
            printf(", \"first_word_index\": %d, \"masked\": %s,\n   \"boxes\": [", e->first_word_index,
                   j > 0 && pos == 0 ? "true" : "false");
            rank_boxes(logits, 0, G, n, E, j, n, rank);
            for (int r = 0; r < shown; r++) {
                const float *bx = rec.boxes + (size_t)rank[r].index * 4;
                printf("%s{\"rank\": %d, \"index\": %d, \"score\": %.9g, \"box\": [%.9g, %.9g, %.9g, %.9g]}",
                       r ? ", " : "", r + 1, rank[r].index, (double)rank[r].score, (double)bx[0], (double)bx[1],
                       (double)bx[2], (double)bx[3]);
            }
            printf("]}");
            first = 0;
            j++;
        }
        printf("],\n \"skipped\": [");
        first = 1;
        for (int k = 0; k < g.n_ent; k++) {
            if (g.ent[k].grounded) continue;
            printf("%s{\"phrase\": ", first ? "" : ", ");
            cli_json_cstr(stdout, g.ent[k].phrase);
            printf(", \"phrase_id\": ");
            cli_json_cstr(stdout, g.ent[k].phrase_id);
            printf(", \"reason\": \"%s\"}", g.ent[k].chain == 0 ? "chain 0 (notvisual)" : "no box in the annotations");
            first = 0;
        }
        printf("]}\n");
    } else {
        printf("image %s: %d x %d pixels, %d boxes", image_text, rec.width, rec.height, n);
        if (sentence_index >= 0) printf("; %s (sentence %ld)", where, sentence_index);
        printf("\nsentence: %s\n%d tokens of the %d positions the model reads; box scores are %s\n", g.sentence, n_tok,
               L, G > 1 ? "the sum of the glimpses' logits" : "logits");
        for (int k = 0, j = 0; k < g.n_ent; k++) {
            const markup_entity *e = &g.ent[k];
            if (!e->grounded) continue;
            const int pos = e->position;
            const char *word = pos < n_tok ? ban_model_word(m, tokens[pos]) : NULL;
            printf("\n[%s %s]  chain %s (", e->info, e->phrase, e->phrase_id);
            print_types(stdout, e->info, 0);
            printf("), position %d reads %s%s%s\n", pos, word ? "'" : "", word ? word : "padding", word ? "'" : "");
            if (j > 0 && pos == 0)
                printf("   masked: the reference masks an entity after the first whose position is 0 (score -99)\n");
            printf("   rank   box      score        x1        y1        x2        y2\n");
            rank_boxes(logits, 0, G, n, E, j, n, rank);
            for (int r = 0; r < shown; r++) {
                const float *bx = rec.boxes + (size_t)rank[r].index * 4;
                printf("  %5d %5d %10.4f %9.2f %9.2f %9.2f %9.2f\n", r + 1, rank[r].index, (double)rank[r].score,
                       (double)bx[0], (double)bx[1], (double)bx[2], (double)bx[3]);
            }
            j++;
        }
        for (int k = 0; k < g.n_ent; k++)
            if (!g.ent[k].grounded)
                printf("\nskipped: [%s %s]  chain %s %s\n", g.ent[k].info, g.ent[k].phrase, g.ent[k].phrase_id,
                       g.ent[k].chain == 0 ? "(notvisual) has no box" : "has no box in the annotations");
    }
done:
    markup_line_free(&g);
    free(tokens), free(ents), free(logits), free(rank), free(file), annotations_free(&chains);
    ban_ctx_free(ctx);
    return rc;
}

/* ---- a split: every sentence of every image, into the predictions file --------------------------- */

typedef struct {
    char *id;                     /* as written in the split file (the key of the predictions) */
    store_record rec;
    int found;
} g_image;

typedef struct {
    int image;                    /* in the image list */
    int sentence_index;           /* among the non-empty lines of its file */
    int n_tok, n_ent;             /* tokens kept; entities grounded */
    size_t tok_at, ent_at;        /* in the flat arrays */
} g_sentence;

typedef struct {
    int32_t position;             /* the reference's */
    int32_t first_word_index;     /* with phrase_id: the key of the official utilities */
    char phrase_id[MARKUP_ID];
} g_key;

typedef struct {
    g_image *img;
    size_t n_img, cap_img;
    g_sentence *sen;
    size_t n_sen, cap_sen;
    int32_t *tok;
    size_t n_tok, cap_tok;
    g_key *ent;
    size_t n_ent, cap_ent;
} g_split;

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q, *cap = c;
    return 0;
}

static void split_free(g_split *s)
{
    for (size_t i = 0; i < s->n_img; i++) free(s->img[i].id);
    free(s->img), free(s->sen), free(s->tok), free(s->ent);
}

/* the split file: one image id a line, stripped, blank lines ignored, each id once */
static int read_split(const char *path, g_split *s, char *err)
{
    size_t size;
    char *buf = markup_read_file(path, &size, err, GROUND_MSG);
    if (!buf) return -1;
    markup_lines lr = {buf, size, 0, 0};
    const char *l;
    size_t ll, a, b;
    int rc = 0;
    while (rc == 0 && markup_next_line(&lr, &l, &ll)) {
        if (markup_check_line(l, ll, err, GROUND_MSG)) {
            char msg[GROUND_ERR];
            snprintf(msg, sizeof msg, "%s", err);
            rc = ground_fail(err, "%s:%ld: %s", path, lr.lineno, msg);
            break;
        }
        markup_py_strip(l, ll, &a, &b);
        if (a == b) continue;
        char *id = (char *)malloc(b - a + 1);
        if (!id) { rc = ground_fail(err, "out of memory"); break; }
        memcpy(id, l + a, b - a), id[b - a] = 0;
        if (!parse_image_id(id)) {
            rc = ground_fail(err, "%s:%ld: image id '%.80s' is not 1 to %d letters, digits, '_', '-' or '.'", path,
                             lr.lineno, id, STORE_MAX_ID);
            free(id);
            break;
        }
        for (size_t i = 0; i < s->n_img && rc == 0; i++)
            if (!strcmp(s->img[i].id, id)) rc = ground_fail(err, "%s:%ld: image id %s listed twice", path, lr.lineno, id);
        if (rc == 0 && grow((void **)&s->img, &s->cap_img, s->n_img + 1, sizeof(g_image)))
            rc = ground_fail(err, "out of memory");
        if (rc) { free(id); break; }
        memset(&s->img[s->n_img], 0, sizeof(g_image));
        s->img[s->n_img].id = id;
        s->n_img++;
    }
    free(buf);
    if (rc == 0 && s->n_img == 0) rc = ground_fail(err, "%s: no image ids", path);
    return rc;
}

typedef struct {
    size_t missing_images, bad_files, bad_sentences, no_entity_sentences, lines;
} split_counts;

/* the sentences of one image into s; -1 on an error that stops the run (message in err) */
static int load_image(g_split *s, size_t im, const char *dir, line_rules *rules, int skip_bad, split_counts *cnt,
                      char *err)
{
    char sent_path[4096], xml_path[4096], msg[GROUND_MSG];
    const char *id = s->img[im].id;
    annotations_chains chains = {NULL, 0, 0};
    snprintf(sent_path, sizeof sent_path, "%s/Sentences/%s.txt", dir, id);
    snprintf(xml_path, sizeof xml_path, "%s/Annotations/%s.xml", dir, id);
    size_t size = 0;
    char *buf = NULL;
    int rc = 0;
    if (annotations_read(xml_path, &chains, err, GROUND_ERR) ||
        !(buf = markup_read_file(sent_path, &size, err, GROUND_MSG))) {
        annotations_free(&chains);
        if (!skip_bad) return -1;
        if (cnt->bad_files++ < 5) fprintf(stderr, "ban: warning: %s; image %s skipped\n", err, id);
        return 0;
    }
    markup_lines lr = {buf, size, 0, 0};
    const char *l;
    size_t ll;
    int sentence_index = 0;
    while (markup_next_line(&lr, &l, &ll)) {
        if (ll == 0) continue; /* only exactly empty lines are not sentences */
        const int si = sentence_index++;
        markup_line g;
        int n_tok = 0, n_ent = 0;
        cnt->lines++;
        memset(&g, 0, sizeof g);
        if (markup_check_line(l, ll, msg, sizeof msg) || markup_parse_line(l, ll, &g, msg, sizeof msg) ||
            ground_line(&g, &chains, rules, &n_tok, &n_ent, msg)) {
            markup_line_free(&g);
            snprintf(err, GROUND_ERR, "%s:%ld: %s", sent_path, lr.lineno, msg);
            if (!skip_bad) { rc = -1; break; }
            if (cnt->bad_sentences++ < 5) fprintf(stderr, "ban: warning: %s; sentence skipped\n", err);
            continue;
        }
        if (n_ent == 0) { /* the reference drops a sentence without entities */
            cnt->no_entity_sentences++;
            markup_line_free(&g);
            continue;
        }
        if (grow((void **)&s->sen, &s->cap_sen, s->n_sen + 1, sizeof(g_sentence)) ||
            grow((void **)&s->tok, &s->cap_tok, s->n_tok + (size_t)n_tok, sizeof(int32_t)) ||
            grow((void **)&s->ent, &s->cap_ent, s->n_ent + (size_t)n_ent, sizeof(g_key))) {
            markup_line_free(&g);
            rc = ground_fail(err, "out of memory");
            break;
        }
        g_sentence *q = &s->sen[s->n_sen++];
        q->image = (int)im, q->sentence_index = si, q->n_tok = n_tok, q->n_ent = n_ent;
        q->tok_at = s->n_tok, q->ent_at = s->n_ent;
        memcpy(s->tok + s->n_tok, rules->ids, (size_t)n_tok * sizeof(int32_t));
        s->n_tok += (size_t)n_tok;
        for (int k = 0; k < g.n_ent; k++) {
            if (!g.ent[k].grounded) continue;
            g_key *key = &s->ent[s->n_ent++];
            key->position = g.ent[k].position;
            key->first_word_index = g.ent[k].first_word_index;
            memcpy(key->phrase_id, g.ent[k].phrase_id, MARKUP_ID);
        }
        markup_line_free(&g);
    }
    free(buf);
    annotations_free(&chains);
    return rc;
}

static int ground_split(const ground_setup *gs, const char *split_path, const char *dir, const char *out_path,
                        int batch, int max_entities, int skip_bad, int skip_missing)
{
    const ban_config *c = gs->c;
    ban_model *m = gs->model;
    const int L = c->question_length, G = c->num_glimpses, D = c->feature_dim;
    char err[GROUND_ERR];
    g_split s;
    split_counts cnt;
    memset(&s, 0, sizeof s);
    memset(&cnt, 0, sizeof cnt);
    ban_ctx *tctx = NULL, *ctx = NULL;
    int32_t *ids = NULL, *tokens = NULL, *ents = NULL;
    float *feats = NULL, *spats = NULL, *logits = NULL;
    int *box_counts = NULL, *image_index = NULL;
    ranked *rank = NULL;
    FILE *f = NULL;
    char tmp[4200];
    int rc = CLI_OK;
    const double t_start = ground_now();

    /* 1. the split's images, their boxes, every sentence parsed and tokenised */
    if (read_split(split_path, &s, err)) { rc = cli_error("%s", err); goto done; }
    ban_limits tl = {1, 1, L, 1, 0};
    ids = (int32_t *)malloc((size_t)L * sizeof(int32_t));
    if (!ids) { rc = cli_error("out of memory"); goto done; }
    if (ban_ctx_create(m, &tl, &tctx) != BAN_OK) { rc = cli_error("%s", ban_ctx_error(tctx)); goto done; }
    line_rules rules = {max_entities, L, tctx, ids, 0};
    int Kmax = 1, Emax = 1;
    for (size_t i = 0; i < s.n_img; i++) {
        g_image *im = &s.img[i];
        if (!(im->found = store_find(gs->st, im->id, &im->rec))) {
            if (!skip_missing) {
                rc = cli_error("image %s (%s) has no features in the store (--skip-missing leaves it out)", im->id,
                               split_path);
                goto done;
            }
            if (cnt.missing_images++ < 5)
                fprintf(stderr, "ban: warning: image %s has no features in the store; skipped\n", im->id);
            continue;
        }
        if (im->rec.n_boxes > Kmax) Kmax = im->rec.n_boxes;
        if (load_image(&s, i, dir, &rules, skip_bad, &cnt, err)) { rc = cli_error("%s", err); goto done; }
    }
    for (size_t q = 0; q < s.n_sen; q++)
        if (s.sen[q].n_ent > Emax) Emax = s.sen[q].n_ent;
    if (s.n_sen == 0) { rc = cli_error("%s: no sentence with an entity to ground", split_path); goto done; }

    /* 2. buffers for one batch */
    const int B = batch;
    ban_limits lim = {B, Kmax, L, Emax, 0};
    if (ban_ctx_create(m, &lim, &ctx) != BAN_OK) { rc = cli_error("%s", ban_ctx_error(ctx)); goto done; }
    feats = (float *)malloc((size_t)B * Kmax * D * sizeof(float));
    spats = (float *)malloc((size_t)B * Kmax * 6 * sizeof(float));
    logits = (float *)malloc((size_t)B * G * Kmax * Emax * sizeof(float));
    tokens = (int32_t *)malloc((size_t)B * L * sizeof(int32_t));
    ents = (int32_t *)malloc((size_t)B * Emax * sizeof(int32_t));
    box_counts = (int *)malloc((size_t)B * sizeof(int));
    image_index = (int *)malloc((size_t)B * sizeof(int));
    rank = (ranked *)malloc((size_t)Kmax * sizeof(ranked));
    if (!feats || !spats || !logits || !tokens || !ents || !box_counts || !image_index || !rank) {
        rc = cli_error("out of memory for batches of %d sentences", B);
        goto done;
    }

    /* 3. the predictions file: every image found, then the phrases batch by batch */
    if (!(f = cli_atomic_open(out_path, tmp, sizeof tmp))) {
        rc = cli_error("%s: cannot create a temporary file beside it: %s", out_path, strerror(errno));
        goto done;
    }
    fputs("{\"version\": 1,\n \"images\": {", f);
    int first = 1;
    for (size_t i = 0; i < s.n_img; i++) {
        const g_image *im = &s.img[i];
        if (!im->found) continue;
        fputs(first ? "\n  " : ",\n  ", f);
        cli_json_cstr(f, im->id);
        fputs(": {\"proposals\": [", f);
        for (int k = 0; k < im->rec.n_boxes; k++) {
            const float *bx = im->rec.boxes + (size_t)k * 4;
            fprintf(f, "%s[%.9g, %.9g, %.9g, %.9g]", k ? ", " : "", (double)bx[0], (double)bx[1], (double)bx[2],
                    (double)bx[3]);
        }
        fputs("]}", f);
        first = 0;
    }
    fputs("},\n \"phrases\": [", f);

    const double t_run = ground_now();
    double last_report = t_run;
    size_t at = 0, n_batches = 0, done_ent = 0, masked = 0;
    first = 1;
    while (at < s.n_sen) {
        const int nb = (int)(s.n_sen - at < (size_t)B ? s.n_sen - at : (size_t)B);
        int K = 1, E = 1, ni = 0;
        for (int b = 0; b < nb; b++) { /* sentences of an image are consecutive: each image once */
            const g_sentence *q = &s.sen[at + (size_t)b];
            if (b == 0 || q->image != s.sen[at + (size_t)b - 1].image) {
                const store_record *r = &s.img[q->image].rec;
                box_counts[ni++] = r->n_boxes;
                if (r->n_boxes > K) K = r->n_boxes;
            }
            image_index[b] = ni - 1;
            if (q->n_ent > E) E = q->n_ent;
        }
        for (int b = 0; b < nb; b++) {
            const g_sentence *q = &s.sen[at + (size_t)b];
            const int i = image_index[b];
            if (b == 0 || image_index[b - 1] != i) { /* the image's boxes, zero rows after them */
                const store_record *r = &s.img[q->image].rec;
                float *fv = feats + (size_t)i * K * D, *sv = spats + (size_t)i * K * 6;
                memcpy(fv, r->features, (size_t)r->n_boxes * D * sizeof(float));
                memset(fv + (size_t)r->n_boxes * D, 0, (size_t)(K - r->n_boxes) * D * sizeof(float));
                memcpy(sv, r->spatials, (size_t)r->n_boxes * 6 * sizeof(float));
                memset(sv + (size_t)r->n_boxes * 6, 0, (size_t)(K - r->n_boxes) * 6 * sizeof(float));
            }
            int32_t *t = tokens + (size_t)b * L;
            memcpy(t, s.tok + q->tok_at, (size_t)q->n_tok * sizeof(int32_t));
            for (int j = q->n_tok; j < L; j++) t[j] = c->padding_id;
            /* slots past a sentence's entities hold position 0: masked by the reference's rule */
            for (int j = 0; j < E; j++) ents[(size_t)b * E + j] = j < q->n_ent ? s.ent[q->ent_at + (size_t)j].position : 0;
        }
        ban_input in;
        ban_output out;
        memset(&in, 0, sizeof in);
        memset(&out, 0, sizeof out);
        in.batch = nb, in.boxes = K, in.images = ni, in.image_index = image_index;
        in.features = feats, in.spatials = spats, in.box_counts = box_counts;
        in.tokens_len = L, in.tokens = tokens, in.entities_len = E, in.entities = ents;
        out.logits = logits;
        if (ban_forward(ctx, &in, &out) != BAN_OK) {
            const g_sentence *q = &s.sen[at];
            rc = cli_error("image %s, sentence %d and the next %d: %s", s.img[q->image].id, q->sentence_index, nb - 1,
                           ban_ctx_error(ctx));
            goto done;
        }
        for (int b = 0; b < nb; b++) {
            const g_sentence *q = &s.sen[at + (size_t)b];
            const g_image *im = &s.img[q->image];
            for (int j = 0; j < q->n_ent; j++) {
                const g_key *key = &s.ent[q->ent_at + (size_t)j];
                masked += j > 0 && key->position == 0;
                rank_boxes(logits, b, G, K, E, j, im->rec.n_boxes, rank);
                fputs(first ? "\n  {\"image_id\": " : ",\n  {\"image_id\": ", f);
                cli_json_cstr(f, im->id);
                fprintf(f, ", \"sentence_index\": %d, \"phrase_id\": ", q->sentence_index);
                cli_json_cstr(f, key->phrase_id);
                fprintf(f, ", \"first_word_index\": %d, \"position\": %d, \"ranking\": [", key->first_word_index,
                        key->position);
                for (int r = 0; r < im->rec.n_boxes; r++) fprintf(f, "%s%d", r ? ", " : "", rank[r].index);
                fputs("], \"scores\": [", f);
                for (int r = 0; r < im->rec.n_boxes; r++) {
                    if (!isfinite(rank[r].score)) {
                        rc = cli_error("image %s, sentence %d: a box score is not finite", im->id, q->sentence_index);
                        goto done;
                    }
                    fprintf(f, "%s%.9g", r ? ", " : "", (double)rank[r].score);
                }
                fputs("]}", f);
                first = 0;
            }
            done_ent += (size_t)q->n_ent;
        }
        at += (size_t)nb;
        n_batches++;
        const double t = ground_now();
        if (t - last_report >= 2.0) {
            last_report = t;
            fprintf(stderr, "ban: ground: %zu/%zu sentences (%.1f%%), %.1f entities/s\n", at, s.n_sen,
                    100.0 * (double)at / (double)s.n_sen, (double)done_ent / (t - t_run));
        }
    }
    fputs("\n ]}\n", f);
    const double t_done = ground_now();
    rc = cli_atomic_close(f, tmp, out_path);
    f = NULL;
    if (rc) goto done;
    {
        const double secs = t_done - t_run > 1e-9 ? t_done - t_run : 1e-9;
        size_t n_found = 0;
        for (size_t i = 0; i < s.n_img; i++) n_found += s.img[i].found;
        fprintf(stderr, "ban: ground: %zu entities of %zu sentences in %zu images grounded (%zu batches of up to %d) "
                "in %.2f s: %.3f ms per entity; %.2f s in all; wrote %s\n", s.n_ent, s.n_sen, n_found, n_batches, B,
                secs, 1e3 * secs / (double)s.n_ent, ground_now() - t_start, out_path);
        fprintf(stderr, "ban: ground: skipped %zu entit%s of chains without a box; %zu sentence%s left without an "
                "entity\n", rules.skipped_no_box, rules.skipped_no_box == 1 ? "y" : "ies", cnt.no_entity_sentences,
                cnt.no_entity_sentences == 1 ? "" : "s");
        if (masked)
            fprintf(stderr, "ban: ground: %zu entit%s after the first of its sentence at position 0: masked (every "
                    "score -99), as the reference masks them\n", masked, masked == 1 ? "y" : "ies");
        if (cnt.missing_images)
            fprintf(stderr, "ban: ground: skipped %zu image%s without features in the store\n", cnt.missing_images,
                    cnt.missing_images == 1 ? "" : "s");
        if (cnt.bad_sentences || cnt.bad_files)
            fprintf(stderr, "ban: ground: skipped %zu bad sentence%s and %zu image%s with a bad file (--skip-bad)\n",
                    cnt.bad_sentences, cnt.bad_sentences == 1 ? "" : "s", cnt.bad_files, cnt.bad_files == 1 ? "" : "s");
    }
done:
    if (f) fclose(f), unlink(tmp);
    free(ids), free(tokens), free(ents), free(feats), free(spats), free(logits), free(box_counts), free(image_index);
    free(rank);
    split_free(&s);
    ban_ctx_free(tctx);
    ban_ctx_free(ctx);
    return rc;
}

/* ---- the command ---------------------------------------------------------------------------------- */

int cmd_ground(int argc, char **argv)
{
    cli_opt opts[] = {{"--model", 1, NULL},        {"--features", 1, NULL},   {"--image", 1, NULL},
                      {"--sentence", 1, NULL},     {"--sentences", 1, NULL},  {"--line", 1, NULL},
                      {"--annotations", 1, NULL},  {"--annotations-dir", 1, NULL}, {"--top-k", 1, NULL},
                      {"--json", 0, NULL},         {"--max-entities", 1, NULL}, {"--split", 1, NULL},
                      {"--output", 1, NULL},       {"--batch", 1, NULL},      {"--skip-bad", 0, NULL},
                      {"--skip-missing", 0, NULL}, {NULL, 0, NULL}};
    const char *pos[1];
    int n_pos;
    if (cli_parse(argc, argv, 2, opts, pos, 1, &n_pos)) return CLI_USAGE;
    const char *model_path = cli_get(opts, "--model"), *store_path = cli_get(opts, "--features");
    const char *image = cli_get(opts, "--image"), *text = cli_get(opts, "--sentence");
    const char *sent_path = cli_get(opts, "--sentences"), *xml_path = cli_get(opts, "--annotations");
    const char *dir = cli_get(opts, "--annotations-dir"), *split = cli_get(opts, "--split");
    const char *out_path = cli_get(opts, "--output");
    long top_k = 5, max_entities = 16, batch = 32, line_no = 0;
    static const char usage[] =
        "usage: ban ground --model M.ban --features STORE --image ID (--sentence TEXT | --sentences FILE --line N)\n"
        "           [--annotations FILE.xml | --annotations-dir DIR] [--top-k N] [--json] [--max-entities N]\n"
        "       ban ground --model M.ban --features STORE --split SPLIT.txt --annotations-dir DIR --output P.json\n"
        "           [--batch N] [--max-entities N] [--skip-bad] [--skip-missing]";
    if (n_pos || !model_path || !store_path || (!split == !image)) return cli_usage("%s", usage);
    if ((cli_get(opts, "--top-k") && !cli_int(cli_get(opts, "--top-k"), "--top-k", 0, BAN_MAX_BOXES, &top_k)) ||
        (cli_get(opts, "--max-entities") &&
         !cli_int(cli_get(opts, "--max-entities"), "--max-entities", 1, BAN_MAX_ENTITIES, &max_entities)) ||
        (cli_get(opts, "--batch") && !cli_int(cli_get(opts, "--batch"), "--batch", 1, BAN_MAX_BATCH, &batch)) ||
        (cli_get(opts, "--line") && !cli_int(cli_get(opts, "--line"), "--line", 1, 1L << 30, &line_no)))
        return CLI_USAGE;
    char sent_buf[4096], xml_buf[4096];
    if (split) {
        if (!dir || !out_path) return cli_usage("--split needs --annotations-dir DIR and --output P.json");
        if (text || sent_path || xml_path || line_no || cli_get(opts, "--top-k") || cli_get(opts, "--json"))
            return cli_usage("--split grounds a whole split: --sentence, --sentences, --line, --annotations, --top-k "
                             "and --json are for one sentence (--image)");
    } else {
        if (out_path || cli_get(opts, "--batch") || cli_get(opts, "--skip-bad") || cli_get(opts, "--skip-missing"))
            return cli_usage("--output, --batch, --skip-bad and --skip-missing are for --split");
        if (xml_path && dir) return cli_usage("give --annotations FILE.xml or --annotations-dir DIR, not both");
        if (dir && !sent_path && line_no) {
            snprintf(sent_buf, sizeof sent_buf, "%s/Sentences/%s.txt", dir, image);
            sent_path = sent_buf;
        }
        if (dir) {
            snprintf(xml_buf, sizeof xml_buf, "%s/Annotations/%s.xml", dir, image);
            xml_path = xml_buf;
        }
        if (!text == !sent_path || (sent_path && !line_no) || (text && line_no))
            return cli_usage("give --sentence TEXT, or --sentences FILE (or --annotations-dir DIR) with --line N");
        if (text && (strlen(text) != markup_utf8_check((const unsigned char *)text, strlen(text))))
            return cli_usage("--sentence is not valid UTF-8");
    }
    ground_setup gs;
    memset(&gs, 0, sizeof gs);
    int rc = setup_open(&gs, model_path, store_path);
    if (rc == CLI_OK)
        rc = split ? ground_split(&gs, split, dir, out_path, (int)batch, (int)max_entities,
                                  cli_get(opts, "--skip-bad") != NULL, cli_get(opts, "--skip-missing") != NULL)
                   : ground_one(&gs, image, text, sent_path, line_no, xml_path, (int)top_k,
                                cli_get(opts, "--json") != NULL, (int)max_entities);
    setup_close(&gs);
    return rc;
}
