/* ban ground - phrase grounding on Flickr30k Entities, from a feature store.

   ban ground --model M.ban --features STORE --image (ID | PHOTO.png) (--sentence TEXT | --sentences FILE --line N)
              [--annotations FILE.xml | --annotations-dir DIR] [--top-k N] [--json] [--max-entities N]
              [--image-id ID] [--picture OUT.png]
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
   tests/fuzz/fuzz_markup.c, fuzz_annotations.c).

   --picture OUT.png draws one sentence as the paper's Fig. 4 (examples/picture.h) on its photo,
   given as --image PHOTO.png in place of the id: the photo is named by its image id
   (Flickr30k's are, <id>.jpg converted to PNG) unless --image-id says otherwise. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>

#include "annotations.h"
#include "cli.h"
#include "markup.h"
#include "picture.h"
#include "store.h"

#define GROUND_MSG 1024  /* a message */
#define GROUND_ERR 6144  /* a message with its file and line */

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
        return util_fail(err, GROUND_MSG, "%s", ban_ctx_error(r->ctx));
    *n_tok = n < r->L ? n : r->L;
    if (kept > r->max_entities)
        return util_fail(err, GROUND_MSG, "%d entities with a box, more than --max-entities %d (the reference's "
                         "limit is 16)", kept, r->max_entities);
    for (int k = 0; k < g->n_ent; k++)
        if (g->ent[k].grounded && g->ent[k].position >= r->L)
            return util_fail(err, GROUND_MSG, "entity '%s' (chain %s) is at position %d, past the %d positions the "
                             "model reads (the reference asserts here)", g->ent[k].phrase, g->ent[k].phrase_id,
                               g->ent[k].position, r->L);
    for (int k = 0; k < g->n_ent; k++) r->skipped_no_box += !g->ent[k].grounded;
    *n_grounded = kept;
    return 0;
}

/* ---- ranking ------------------------------------------------------------------------------------ */

/* The first k of the n real boxes of entity j of example b by decreasing score (the sum over
   glimpses), ties to the lower index, into rank; score (n): every box's. logits (B, G, K, E) */
static void rank_boxes(const float *logits, int b, int G, int K, int E, int j, int n, int k, float *score, int *rank)
{
    for (int r = 0; r < n; r++) {
        float s = 0.0f;
        for (int g = 0; g < G; g++) s += logits[(((size_t)b * G + g) * K + r) * E + j];
        score[r] = s;
    }
    util_top_k(score, n, k, rank);
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

/* one sentence: its line, the image's boxes and annotations, the tokens, the logits */
typedef struct {
    const char *image_text, *sent_path;
    long line_no, sentence_index;  /* sentence_index: among the file's non-empty lines; -1 for --sentence */
    store_record rec;
    char *file;                    /* the Sentences file, when the line comes from one */
    const char *line;
    size_t len;
    char where[4200];              /* "--sentence", or FILE:LINE */
    annotations_chains chains;
    markup_line g;
    ban_ctx *ctx;
    int32_t *tokens, *ents;
    float *logits, *score;
    int *rank;
    int n_tok, E, L, n, G;
} one_sentence;

static void one_free(one_sentence *o)
{
    markup_line_free(&o->g);
    free(o->tokens), free(o->ents), free(o->logits), free(o->score), free(o->rank), free(o->file);
    annotations_free(&o->chains);
    ban_ctx_free(o->ctx);
}

/* the line: from the command line, or line N of a Sentences file; the image's record; its
   annotations; the line's markup */
static int one_load(const ground_setup *s, one_sentence *o, const cli_args *a, const char *text_arg,
                    const char *xml_path)
{
    char err[GROUND_ERR];
    if (!parse_image_id(o->image_text))
        return cli_usage(a, "--image must be an image id: 1 to %d letters, digits, '_', '-' or '.' (got '%.80s')",
                         STORE_MAX_ID, o->image_text);
    if (!store_find(s->st, o->image_text, &o->rec))
        return cli_error("image %s has no features in the store", o->image_text);
    o->line = text_arg;
    o->len = text_arg ? strlen(text_arg) : 0;
    o->sentence_index = -1;
    if (text_arg) snprintf(o->where, sizeof o->where, "--sentence");
    else {
        size_t size;
        if (!(o->file = markup_read_file(o->sent_path, &size, err, GROUND_MSG))) return cli_error("%s", err);
        markup_lines lr = {o->file, size, 0, 0};
        const char *l;
        size_t ll;
        int found = 0;
        o->sentence_index = 0;
        while (markup_next_line(&lr, &l, &ll)) {
            if (lr.lineno == o->line_no) {
                found = 1, o->line = l, o->len = ll;
                break;
            }
            o->sentence_index += ll > 0;
        }
        snprintf(o->where, sizeof o->where, "%s:%ld", o->sent_path, o->line_no);
        if (!found) return cli_error("%s: the file has %ld lines", o->where, lr.lineno);
        if (o->len == 0) return cli_error("%s: the line is empty (not a sentence)", o->where);
    }
    if (xml_path && annotations_read(xml_path, &o->chains, err, sizeof err)) return cli_error("%s", err);
    if (markup_check_line(o->line, o->len, err, GROUND_MSG) ||
        markup_parse_line(o->line, o->len, &o->g, err, GROUND_MSG))
        return cli_error("%s: %s", o->where, err);
    return CLI_OK;
}

/* the entities to ground, the tokens, one forward pass */
static int one_run(const ground_setup *s, one_sentence *o, int has_chains, int max_entities)
{
    char err[GROUND_ERR];
    const ban_config *c = s->c;
    const int E_all = o->g.n_ent > 0 ? o->g.n_ent : 1;
    o->L = c->question_length, o->n = o->rec.n_boxes, o->G = c->num_glimpses;
    ban_limits lim = {1, o->n, o->L, E_all < max_entities ? E_all : max_entities, 0};
    if (lim.max_entities < 1) lim.max_entities = 1;
    if (ban_ctx_create(s->model, &lim, &o->ctx) != BAN_OK) return cli_error("%s", ban_ctx_error(o->ctx));
    o->tokens = (int32_t *)malloc((size_t)o->L * sizeof(int32_t));
    o->ents = (int32_t *)malloc((size_t)E_all * sizeof(int32_t));
    o->logits = (float *)malloc((size_t)o->G * o->n * E_all * sizeof(float));
    o->score = (float *)malloc((size_t)o->n * sizeof(float));
    o->rank = (int *)malloc((size_t)o->n * sizeof(int));
    if (!o->tokens || !o->ents || !o->logits || !o->score || !o->rank) return cli_error("out of memory");
    line_rules rules = {max_entities, o->L, o->ctx, o->tokens, 0};
    if (ground_line(&o->g, has_chains ? &o->chains : NULL, &rules, &o->n_tok, &o->E, err))
        return cli_error("%s: %s", o->where, err);
    if (o->E == 0)
        return cli_error("%s: no entity to ground (%d in the line, none of a chain with a box%s)", o->where, o->g.n_ent,
                         has_chains ? " in the annotations" : "; chain 0 is notvisual");
    cli_pad_tokens(o->tokens, o->tokens, o->n_tok, o->L, c->padding_id);
    for (int k = 0, j = 0; k < o->g.n_ent; k++)
        if (o->g.ent[k].grounded) o->ents[j++] = o->g.ent[k].position;
    ban_input in;
    ban_output out;
    memset(&in, 0, sizeof in);
    memset(&out, 0, sizeof out);
    in.batch = 1, in.boxes = o->n, in.features = o->rec.features, in.spatials = o->rec.spatials;
    in.tokens_len = o->L, in.tokens = o->tokens, in.entities_len = o->E, in.entities = o->ents;
    out.logits = o->logits;
    if (ban_forward(o->ctx, &in, &out) != BAN_OK) return cli_error("%s: %s", o->where, ban_ctx_error(o->ctx));
    return CLI_OK;
}

static void one_print_json(const ground_setup *s, one_sentence *o, int shown)
{
    const markup_line *g = &o->g;
    printf("{\"image_id\": ");
    cli_json_cstr(stdout, o->image_text);
    printf(", \"width\": %d, \"height\": %d, \"boxes\": %d, ", o->rec.width, o->rec.height, o->n);
    if (o->sentence_index >= 0) {
        printf("\"sentences\": ");
        cli_json_cstr(stdout, o->sent_path);
        printf(", \"line\": %ld, \"sentence_index\": %ld, ", o->line_no, o->sentence_index);
    }
    printf("\"sentence\": ");
    cli_json_cstr(stdout, g->sentence);
    printf(", \"tokens\": %d, \"positions\": %d, \"glimpses\": %d,\n \"phrases\": [", o->n_tok, o->L, o->G);
    int first = 1;
    for (int k = 0, j = 0; k < g->n_ent; k++) {
        const markup_entity *e = &g->ent[k];
        if (!e->grounded) continue;
        const int pos = e->position;
        const char *word = pos < o->n_tok ? ban_model_word(s->model, o->tokens[pos]) : NULL;
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
        rank_boxes(o->logits, 0, o->G, o->n, o->E, j, o->n, shown, o->score, o->rank);
        for (int r = 0; r < shown; r++) {
            const float *bx = o->rec.boxes + (size_t)o->rank[r] * 4;
            printf("%s{\"rank\": %d, \"index\": %d, \"score\": %.9g, \"box\": [%.9g, %.9g, %.9g, %.9g]}",
                   r ? ", " : "", r + 1, o->rank[r], (double)o->score[o->rank[r]], (double)bx[0], (double)bx[1],
                   (double)bx[2], (double)bx[3]);
        }
        printf("]}");
        first = 0;
        j++;
    }
    printf("],\n \"skipped\": [");
    first = 1;
    for (int k = 0; k < g->n_ent; k++) {
        if (g->ent[k].grounded) continue;
        printf("%s{\"phrase\": ", first ? "" : ", ");
        cli_json_cstr(stdout, g->ent[k].phrase);
        printf(", \"phrase_id\": ");
        cli_json_cstr(stdout, g->ent[k].phrase_id);
        printf(", \"reason\": \"%s\"}", g->ent[k].chain == 0 ? "chain 0 (notvisual)" : "no box in the annotations");
        first = 0;
    }
    printf("]}\n");
}

static void one_print_text(const ground_setup *s, one_sentence *o, int shown)
{
    const markup_line *g = &o->g;
    printf("image %s: %d x %d pixels, %d boxes", o->image_text, o->rec.width, o->rec.height, o->n);
    if (o->sentence_index >= 0) printf("; %s (sentence %ld)", o->where, o->sentence_index);
    printf("\nsentence: %s\n%d tokens of the %d positions the model reads; box scores are %s\n", g->sentence, o->n_tok,
           o->L, o->G > 1 ? "the sum of the glimpses' logits" : "logits");
    for (int k = 0, j = 0; k < g->n_ent; k++) {
        const markup_entity *e = &g->ent[k];
        if (!e->grounded) continue;
        const int pos = e->position;
        const char *word = pos < o->n_tok ? ban_model_word(s->model, o->tokens[pos]) : NULL;
        printf("\n[%s %s]  chain %s (", e->info, e->phrase, e->phrase_id);
        print_types(stdout, e->info, 0);
        printf("), position %d reads %s%s%s\n", pos, word ? "'" : "", word ? word : "padding", word ? "'" : "");
        if (j > 0 && pos == 0)
            printf("   masked: the reference masks an entity after the first whose position is 0 (score -99)\n");
        printf("   rank   box      score        x1        y1        x2        y2\n");
        rank_boxes(o->logits, 0, o->G, o->n, o->E, j, o->n, shown, o->score, o->rank);
        for (int r = 0; r < shown; r++) {
            const float *bx = o->rec.boxes + (size_t)o->rank[r] * 4;
            printf("  %5d %5d %10.4f %9.2f %9.2f %9.2f %9.2f\n", r + 1, o->rank[r], (double)o->score[o->rank[r]],
                   (double)bx[0], (double)bx[1], (double)bx[2], (double)bx[3]);
        }
        j++;
    }
    for (int k = 0; k < g->n_ent; k++)
        if (!g->ent[k].grounded)
            printf("\nskipped: [%s %s]  chain %s %s\n", g->ent[k].info, g->ent[k].phrase, g->ent[k].phrase_id,
                   g->ent[k].chain == 0 ? "(notvisual) has no box" : "has no box in the annotations");
}

/* --picture: the photo, and the output (out.f NULL when not asked for) */
typedef struct {
    util_out out;
    picture_image photo;
} ground_picture;

/* the paper's Fig. 4: each phrase's top box, and its chain's boxes in the annotations */
static int one_draw(one_sentence *o, ground_picture *pic, int annotated)
{
    int n_truth = 0;
    for (int k = 0; k < o->g.n_ent; k++)
        for (int t = 0; o->g.ent[k].grounded && t < o->chains.n_boxes; t++)
            n_truth += o->chains.boxes[t].chain == o->g.ent[k].chain;
    picture_phrase *ph = (picture_phrase *)calloc((size_t)o->E, sizeof *ph);
    float *truth = (float *)malloc(sizeof(float) * 4 * (size_t)(n_truth ? n_truth : 1)), *at = truth;
    if (!ph || !truth) return free(ph), free(truth), util_out_abort(&pic->out), cli_error("out of memory");
    for (int k = 0, j = 0; k < o->g.n_ent; k++) {
        const markup_entity *e = &o->g.ent[k];
        if (!e->grounded) continue;
        rank_boxes(o->logits, 0, o->G, o->n, o->E, j, o->n, 1, o->score, o->rank);
        ph[j].text = e->phrase, ph[j].score = o->score[o->rank[0]], ph[j].truth = at;
        memcpy(ph[j].box, o->rec.boxes + (size_t)o->rank[0] * 4, sizeof ph[j].box);
        for (int t = 0; t < o->chains.n_boxes; t++)
            if (o->chains.boxes[t].chain == e->chain) {
                for (int c = 0; c < 4; c++) *at++ = (float)o->chains.boxes[t].box[c];
                ph[j].n_truth++;
            }
        j++;
    }
    const picture_ground g = {&pic->photo, o->rec.width, o->rec.height, o->g.sentence, ph, o->E, annotated};
    const int rc = picture_grounding(&pic->out, &g);
    free(ph), free(truth);
    return rc;
}

static int ground_one(const ground_setup *s, const cli_args *a, const char *image_id, const char *text_arg,
                      const char *sent_path, long line_no, const char *xml_path, int top_k, int as_json,
                      int max_entities, ground_picture *pic)
{
    one_sentence o;
    memset(&o, 0, sizeof o);
    o.image_text = image_id, o.sent_path = sent_path, o.line_no = line_no;
    int rc = one_load(s, &o, a, text_arg, xml_path);
    if (rc == CLI_OK) rc = one_run(s, &o, xml_path != NULL, max_entities);
    if (rc == CLI_OK) {
        const int shown = top_k > 0 && top_k < o.n ? top_k : o.n;
        if (as_json) one_print_json(s, &o, shown);
        else one_print_text(s, &o, shown);
        if (pic->out.f) rc = one_draw(&o, pic, xml_path != NULL);
    }
    one_free(&o);
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
            rc = util_fail(err, GROUND_MSG, "%s:%ld: %s", path, lr.lineno, msg);
            break;
        }
        markup_py_strip(l, ll, &a, &b);
        if (a == b) continue;
        char *id = (char *)malloc(b - a + 1);
        if (!id) { rc = util_fail(err, GROUND_MSG, "out of memory"); break; }
        memcpy(id, l + a, b - a), id[b - a] = 0;
        if (!parse_image_id(id)) {
            rc = util_fail(err, GROUND_MSG, "%s:%ld: image id '%.80s' is not 1 to %d letters, digits, '_', '-' or '.'",
                           path, lr.lineno, id, STORE_MAX_ID);
            free(id);
            break;
        }
        for (size_t i = 0; i < s->n_img && rc == 0; i++)
            if (!strcmp(s->img[i].id, id))
                rc = util_fail(err, GROUND_MSG, "%s:%ld: image id %s listed twice", path, lr.lineno, id);
        if (rc == 0 && grow((void **)&s->img, &s->cap_img, s->n_img + 1, sizeof(g_image)))
            rc = util_fail(err, GROUND_MSG, "out of memory");
        if (rc) { free(id); break; }
        memset(&s->img[s->n_img], 0, sizeof(g_image));
        s->img[s->n_img].id = id;
        s->n_img++;
    }
    free(buf);
    if (rc == 0 && s->n_img == 0) rc = util_fail(err, GROUND_MSG, "%s: no image ids", path);
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
    annotations_chains chains = {0};
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
            rc = util_fail(err, GROUND_MSG, "out of memory");
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

/* the split's images and their boxes, every sentence parsed and tokenised; *Kmax, *Emax: the most */
static int split_load(const ground_setup *gs, const char *split_path, const char *dir, g_split *s, line_rules *rules,
                      int skip_bad, int skip_missing, split_counts *cnt, int *Kmax, int *Emax)
{
    char err[GROUND_ERR];
    if (read_split(split_path, s, err)) return cli_error("%s", err);
    *Kmax = *Emax = 1;
    for (size_t i = 0; i < s->n_img; i++) {
        g_image *im = &s->img[i];
        if (!(im->found = store_find(gs->st, im->id, &im->rec))) {
            if (!skip_missing)
                return cli_error("image %s (%s) has no features in the store (--skip-missing leaves it out)", im->id,
                                 split_path);
            if (cnt->missing_images++ < 5) cli_warn("image %s has no features in the store; skipped", im->id);
            continue;
        }
        if (im->rec.n_boxes > *Kmax) *Kmax = im->rec.n_boxes;
        if (load_image(s, i, dir, rules, skip_bad, cnt, err)) return cli_error("%s", err);
    }
    for (size_t q = 0; q < s->n_sen; q++)
        if (s->sen[q].n_ent > *Emax) *Emax = s->sen[q].n_ent;
    if (s->n_sen == 0) return cli_error("%s: no sentence with an entity to ground", split_path);
    return CLI_OK;
}

/* the predictions file's images: every one found, with its proposals */
static void split_write_images(FILE *f, const g_split *s)
{
    fputs("{\"version\": 1,\n \"images\": {", f);
    int first = 1;
    for (size_t i = 0; i < s->n_img; i++) {
        const g_image *im = &s->img[i];
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
}

typedef struct {
    float *feats, *spats, *logits, *score;
    int32_t *tokens, *ents;
    int *box_counts, *image_index, *rank;
} split_buffers;

/* ban_forward's batch positions named by the split's image ids */
typedef struct {
    const g_split *s;
    size_t at;                     /* the batch's first sentence */
    const int *image_index;
    int nb;
} split_names;

static void name_position(void *data, const char *kind, int position, char *out, size_t len)
{
    const split_names *n = (const split_names *)data;
    const int image = !strcmp(kind, "image");
    for (int b = 0; b < n->nb; b++) {
        const g_sentence *q = &n->s->sen[n->at + (size_t)b];
        if (image ? n->image_index[b] == position : b == position) {
            if (image) snprintf(out, len, "image %s", n->s->img[q->image].id);
            else snprintf(out, len, "image %s, sentence %d", n->s->img[q->image].id, q->sentence_index);
            return;
        }
    }
    snprintf(out, len, "%s %d of a batch", kind, position);
}

/* the batch's images (each once, zero rows after its boxes), tokens and entity positions */
static void split_fill(const ground_setup *gs, const g_split *s, size_t at, int nb, const split_buffers *bb, int *K_out,
                       int *E_out, int *ni_out)
{
    const int L = gs->c->question_length, D = gs->c->feature_dim;
    int K = 1, E = 1, ni = 0;
    for (int b = 0; b < nb; b++) { /* sentences of an image are consecutive: each image once */
        const g_sentence *q = &s->sen[at + (size_t)b];
        if (b == 0 || q->image != s->sen[at + (size_t)b - 1].image) {
            const store_record *r = &s->img[q->image].rec;
            bb->box_counts[ni++] = r->n_boxes;
            if (r->n_boxes > K) K = r->n_boxes;
        }
        bb->image_index[b] = ni - 1;
        if (q->n_ent > E) E = q->n_ent;
    }
    for (int b = 0; b < nb; b++) {
        const g_sentence *q = &s->sen[at + (size_t)b];
        const int i = bb->image_index[b];
        if (b == 0 || bb->image_index[b - 1] != i) {
            const store_record *r = &s->img[q->image].rec;
            float *fv = bb->feats + (size_t)i * K * D, *sv = bb->spats + (size_t)i * K * 6;
            memcpy(fv, r->features, (size_t)r->n_boxes * D * sizeof(float));
            memset(fv + (size_t)r->n_boxes * D, 0, (size_t)(K - r->n_boxes) * D * sizeof(float));
            memcpy(sv, r->spatials, (size_t)r->n_boxes * 6 * sizeof(float));
            memset(sv + (size_t)r->n_boxes * 6, 0, (size_t)(K - r->n_boxes) * 6 * sizeof(float));
        }
        cli_pad_tokens(bb->tokens + (size_t)b * L, s->tok + q->tok_at, q->n_tok, L, gs->c->padding_id);
        /* slots past a sentence's entities hold position 0: masked by the reference's rule */
        for (int j = 0; j < E; j++)
            bb->ents[(size_t)b * E + j] = j < q->n_ent ? s->ent[q->ent_at + (size_t)j].position : 0;
    }
    *K_out = K, *E_out = E, *ni_out = ni;
}

/* the phrases of one batch's sentences: every box ranked, with its score */
static int split_write_batch(FILE *f, const ground_setup *gs, const g_split *s, size_t at, int nb,
                             const split_buffers *bb, int K, int E, int *first, size_t *masked, size_t *done_ent)
{
    for (int b = 0; b < nb; b++) {
        const g_sentence *q = &s->sen[at + (size_t)b];
        const g_image *im = &s->img[q->image];
        const int n = im->rec.n_boxes;
        for (int j = 0; j < q->n_ent; j++) {
            const g_key *key = &s->ent[q->ent_at + (size_t)j];
            *masked += j > 0 && key->position == 0;
            rank_boxes(bb->logits, b, gs->c->num_glimpses, K, E, j, n, n, bb->score, bb->rank);
            fputs(*first ? "\n  {\"image_id\": " : ",\n  {\"image_id\": ", f);
            cli_json_cstr(f, im->id);
            fprintf(f, ", \"sentence_index\": %d, \"phrase_id\": ", q->sentence_index);
            cli_json_cstr(f, key->phrase_id);
            fprintf(f, ", \"first_word_index\": %d, \"position\": %d, \"ranking\": [", key->first_word_index,
                    key->position);
            for (int r = 0; r < n; r++) fprintf(f, "%s%d", r ? ", " : "", bb->rank[r]);
            fputs("], \"scores\": [", f);
            for (int r = 0; r < n; r++) {
                const float score = bb->score[bb->rank[r]];
                if (!isfinite(score))
                    return cli_error("image %s, sentence %d: a box score is not finite", im->id, q->sentence_index);
                fprintf(f, "%s%.9g", r ? ", " : "", (double)score);
            }
            fputs("]}", f);
            *first = 0;
        }
        *done_ent += (size_t)q->n_ent;
    }
    return CLI_OK;
}

typedef struct {
    size_t n_batches, masked;
    double t_run, t_done;
} split_progress;

/* the batches, their phrases written as they come */
static int split_run(const ground_setup *gs, const g_split *s, int B, int Kmax, int Emax, FILE *f, split_progress *p)
{
    const int L = gs->c->question_length, G = gs->c->num_glimpses, D = gs->c->feature_dim;
    ban_limits lim = {B, Kmax, L, Emax, 0};
    ban_ctx *ctx = NULL;
    split_buffers bb;
    memset(&bb, 0, sizeof bb);
    int rc = CLI_OK, first = 1;
    if (ban_ctx_create(gs->model, &lim, &ctx) != BAN_OK) {
        rc = cli_error("%s", ban_ctx_error(ctx));
        goto done;
    }
    bb.feats = (float *)malloc((size_t)B * Kmax * D * sizeof(float));
    bb.spats = (float *)malloc((size_t)B * Kmax * 6 * sizeof(float));
    bb.logits = (float *)malloc((size_t)B * G * Kmax * Emax * sizeof(float));
    bb.tokens = (int32_t *)malloc((size_t)B * L * sizeof(int32_t));
    bb.ents = (int32_t *)malloc((size_t)B * Emax * sizeof(int32_t));
    bb.box_counts = (int *)malloc((size_t)B * sizeof(int));
    bb.image_index = (int *)malloc((size_t)B * sizeof(int));
    bb.score = (float *)malloc((size_t)Kmax * sizeof(float));
    bb.rank = (int *)malloc((size_t)Kmax * sizeof(int));
    if (!bb.feats || !bb.spats || !bb.logits || !bb.tokens || !bb.ents || !bb.box_counts || !bb.image_index ||
        !bb.score || !bb.rank) {
        rc = cli_error("out of memory for batches of %d sentences", B);
        goto done;
    }
    p->t_run = util_now();
    double last_report = p->t_run;
    size_t done_ent = 0;
    for (size_t at = 0; at < s->n_sen;) {
        const int nb = (int)(s->n_sen - at < (size_t)B ? s->n_sen - at : (size_t)B);
        int K, E, ni;
        split_fill(gs, s, at, nb, &bb, &K, &E, &ni);
        ban_input in;
        ban_output out;
        memset(&in, 0, sizeof in);
        memset(&out, 0, sizeof out);
        in.batch = nb, in.boxes = K, in.images = ni, in.image_index = bb.image_index;
        in.features = bb.feats, in.spatials = bb.spats, in.box_counts = bb.box_counts;
        in.tokens_len = L, in.tokens = bb.tokens, in.entities_len = E, in.entities = bb.ents;
        out.logits = bb.logits;
        if (ban_forward(ctx, &in, &out) != BAN_OK) {
            const g_sentence *q = &s->sen[at];
            split_names names = {s, at, bb.image_index, nb};
            char prefix[256];
            snprintf(prefix, sizeof prefix, "image %s, sentence %d and the next %d: ", s->img[q->image].id,
                     q->sentence_index, nb - 1);
            rc = cli_forward_error(ban_ctx_error(ctx), name_position, &names, prefix);
            goto done;
        }
        if ((rc = split_write_batch(f, gs, s, at, nb, &bb, K, E, &first, &p->masked, &done_ent))) goto done;
        at += (size_t)nb;
        p->n_batches++;
        const double t = util_now();
        if (t - last_report >= 2.0) {
            last_report = t;
            fprintf(stderr, "ban: ground: %zu/%zu sentences (%.1f%%), %.1f entities/s\n", at, s->n_sen,
                    100.0 * (double)at / (double)s->n_sen, (double)done_ent / (t - p->t_run));
        }
    }
    fputs("\n ]}\n", f);
    p->t_done = util_now();
done:
    free(bb.feats), free(bb.spats), free(bb.logits), free(bb.tokens), free(bb.ents), free(bb.box_counts);
    free(bb.image_index), free(bb.score), free(bb.rank);
    ban_ctx_free(ctx);
    return rc;
}

static void split_report(const g_split *s, const split_progress *p, const split_counts *cnt, const line_rules *rules,
                         int B, double t_start, const char *out_path)
{
    const double secs = p->t_done - p->t_run > 1e-9 ? p->t_done - p->t_run : 1e-9;
    size_t n_found = 0;
    for (size_t i = 0; i < s->n_img; i++) n_found += s->img[i].found;
    fprintf(stderr, "ban: ground: %zu entities of %zu sentences in %zu images grounded (%zu batches of up to %d) "
            "in %.2f s: %.3f ms per entity; %.2f s in all; wrote %s\n", s->n_ent, s->n_sen, n_found, p->n_batches, B,
            secs, 1e3 * secs / (double)s->n_ent, util_now() - t_start, out_path);
    fprintf(stderr, "ban: ground: skipped %zu entit%s of chains without a box; %zu sentence%s left without an "
            "entity\n", rules->skipped_no_box, rules->skipped_no_box == 1 ? "y" : "ies", cnt->no_entity_sentences,
            cnt->no_entity_sentences == 1 ? "" : "s");
    if (p->masked)
        fprintf(stderr, "ban: ground: %zu entit%s after the first of its sentence at position 0: masked (every "
                "score -99), as the reference masks them\n", p->masked, p->masked == 1 ? "y" : "ies");
    if (cnt->missing_images)
        fprintf(stderr, "ban: ground: skipped %zu image%s without features in the store\n", cnt->missing_images,
                cnt->missing_images == 1 ? "" : "s");
    if (cnt->bad_sentences || cnt->bad_files)
        fprintf(stderr, "ban: ground: skipped %zu bad sentence%s and %zu image%s with a bad file (--skip-bad)\n",
                cnt->bad_sentences, cnt->bad_sentences == 1 ? "" : "s", cnt->bad_files, cnt->bad_files == 1 ? "" : "s");
}

/* load -> images -> batches of phrases -> the predictions file committed; out is open already */
static int ground_split(const ground_setup *gs, const char *split_path, const char *dir, util_out *out, int batch,
                        int max_entities, int skip_bad, int skip_missing, double t_start)
{
    const int L = gs->c->question_length;
    g_split s;
    split_counts cnt;
    split_progress p;
    memset(&s, 0, sizeof s);
    memset(&cnt, 0, sizeof cnt);
    memset(&p, 0, sizeof p);
    ban_ctx *tctx = NULL;
    ban_limits tl = {1, 1, L, 1, 0};
    int32_t *ids = (int32_t *)malloc((size_t)L * sizeof(int32_t));
    int rc = CLI_OK, Kmax, Emax;
    if (!ids) rc = cli_error("out of memory");
    else if (ban_ctx_create(gs->model, &tl, &tctx) != BAN_OK) rc = cli_error("%s", ban_ctx_error(tctx));
    line_rules rules = {max_entities, L, tctx, ids, 0};
    if (rc == CLI_OK)
        rc = split_load(gs, split_path, dir, &s, &rules, skip_bad, skip_missing, &cnt, &Kmax, &Emax);
    if (rc == CLI_OK) {
        split_write_images(out->f, &s);
        rc = split_run(gs, &s, batch, Kmax, Emax, out->f, &p);
    }
    if (rc == CLI_OK) rc = cli_commit_output(out);
    if (rc == CLI_OK) split_report(&s, &p, &cnt, &rules, batch, t_start, out->path ? out->path : "");
    free(ids);
    split_free(&s);
    ban_ctx_free(tctx);
    return rc;
}

/* ---- the command ---------------------------------------------------------------------------------- */

static int ground_main(const cli_args *a)
{
    const double t_start = util_now();
    const char *store_path = cli_get(a, "--features"), *image = cli_get(a, "--image");
    const char *text = cli_get(a, "--sentence"), *sent_path = cli_get(a, "--sentences");
    const char *xml_path = cli_get(a, "--annotations"), *dir = cli_get(a, "--annotations-dir");
    const char *split = cli_get(a, "--split"), *out_path = cli_get(a, "--output");
    const char *photo = NULL, *picture = cli_get(a, "--picture");
    long top_k = 5, max_entities = 16, batch = 32, line_no = 0;
    char id_buf[256];
    if (!split && !image) return cli_usage(a, "--image ID or --split SPLIT.txt is required");
    /* --image PHOTO.png: the photo, named by its image id unless --image-id says */
    if (image && picture_photo_id(image, id_buf, sizeof id_buf))
        photo = image, image = cli_get(a, "--image-id") ? cli_get(a, "--image-id") : id_buf;
    else if (cli_get(a, "--image-id")) return cli_usage(a, "--image-id names the image of --image PHOTO.png");
    if (split && image) return cli_usage(a, "give --image ID (one sentence) or --split SPLIT.txt (a split), not both");
    if (cli_long(a, "--top-k", 0, BAN_MAX_BOXES, &top_k) ||
        cli_long(a, "--max-entities", 1, BAN_MAX_ENTITIES, &max_entities) ||
        cli_long(a, "--batch", 1, BAN_MAX_BATCH, &batch) || cli_long(a, "--line", 1, 1L << 30, &line_no))
        return CLI_USAGE;
    char sent_buf[4096], xml_buf[4096];
    if (split) {
        if (!dir || !out_path) return cli_usage(a, "--split needs --annotations-dir DIR and --output P.json");
        if (text || sent_path || xml_path || line_no || cli_get(a, "--top-k") || cli_flag(a, "--json") || picture)
            return cli_usage(a, "--split grounds a whole split: --sentence, --sentences, --line, --annotations, "
                                "--top-k, --json and --picture are for one sentence (--image)");
    } else {
        if (out_path || cli_get(a, "--batch") || cli_flag(a, "--skip-bad") || cli_flag(a, "--skip-missing"))
            return cli_usage(a, "--output, --batch, --skip-bad and --skip-missing are for --split");
        if (xml_path && dir) return cli_usage(a, "give --annotations FILE.xml or --annotations-dir DIR, not both");
        if (picture && !photo)
            return cli_usage(a, "--picture draws on the photo: give --image PHOTO.png (the image's, named <id>.png, or "
                                "with --image-id ID)");
        if (dir && !sent_path && line_no) {
            snprintf(sent_buf, sizeof sent_buf, "%s/Sentences/%s.txt", dir, image);
            sent_path = sent_buf;
        }
        if (dir) {
            snprintf(xml_buf, sizeof xml_buf, "%s/Annotations/%s.xml", dir, image);
            xml_path = xml_buf;
        }
        if (!text && !sent_path) return cli_usage(a, "--sentence TEXT, or --sentences FILE (or --annotations-dir DIR) "
                                                     "with --line N, is required");
        if (text && sent_path) return cli_usage(a, "give --sentence TEXT or --sentences FILE, not both");
        if (sent_path && !line_no) return cli_usage(a, "--line N is required with --sentences (or --annotations-dir)");
        if (text && line_no) return cli_usage(a, "--line is for --sentences FILE, not --sentence TEXT");
        if (text && strlen(text) != markup_utf8_check((const unsigned char *)text, strlen(text)))
            return cli_usage(a, "--sentence is not valid UTF-8");
    }
    util_out out;
    ground_picture pic;
    memset(&out, 0, sizeof out);
    memset(&pic, 0, sizeof pic);
    if (split && cli_open_output(&out, out_path)) return CLI_FAIL;
    int rc = picture_open(a, "--picture", &pic.out); /* before any work */
    if (rc == CLI_OK && picture) rc = picture_photo(photo, PICTURE_GROUND_W, PICTURE_GROUND_H, &pic.photo);
    ground_setup gs;
    memset(&gs, 0, sizeof gs);
    if (rc == CLI_OK) rc = setup_open(&gs, a->model, store_path);
    if (rc == CLI_OK)
        rc = split ? ground_split(&gs, split, dir, &out, (int)batch, (int)max_entities, cli_flag(a, "--skip-bad"),
                                  cli_flag(a, "--skip-missing"), t_start)
                   : ground_one(&gs, a, image, text, sent_path, line_no, xml_path, (int)top_k, cli_flag(a, "--json"),
                                (int)max_entities, &pic);
    util_out_abort(&out);
    util_out_abort(&pic.out);
    picture_image_free(&pic.photo);
    setup_close(&gs);
    return rc;
}

static const cli_option ground_options[] = {
    {"--features", "STORE", 1, "the images' box features (a store of ban features import)"},
    {"--image", "ID", 0, "one sentence: the image's id, or its photo PHOTO.png (PNG or BMP, named <id>.png)"},
    {"--image-id", "ID", 0, "the image's id when --image PHOTO.png is not named by it"},
    {"--picture", "OUT.png", 0, "draw the paper's Fig. 4 on the photo: each phrase's top box, labelled; the\n"
                                "annotations' boxes dashed (the path checked before any work)"},
    {"--sentence", "TEXT", 0, "the sentence, in Flickr30k Entities markup"},
    {"--sentences", "FILE", 0, "or a Sentences file, with --line N"},
    {"--line", "N", 0, "the line of --sentences (1 = the first)"},
    {"--annotations", "FILE.xml", 0, "the image's annotations: only chains with a box are grounded (default: every\n"
                                     "chain but 0)"},
    {"--annotations-dir", "DIR", 0, "Flickr30k Entities' folder: DIR/Sentences/<id>.txt, DIR/Annotations/<id>.xml"},
    {"--top-k", "N", 0, "boxes shown for each phrase (default 5; 0: all)"},
    {"--json", NULL, 0, "one JSON object instead of text"},
    {"--max-entities", "N", 0, "entities a sentence at most (default 16, the reference's)"},
    {"--split", "SPLIT.txt", 0, "a split: one image id a line (with --annotations-dir and --output)"},
    {"--output", "P.json", 0, "the predictions file of a split, as tools/flickr30k.py evaluate reads it"},
    {"--batch", "N", 0, "sentences a forward pass for a split (default 32)"},
    {"--skip-bad", NULL, 0, "skip, and count, bad sentences and files of a split (default: an error)"},
    {"--skip-missing", NULL, 0, "skip, and count, the split's images missing from STORE (default: an error)"},
    {NULL, NULL, 0, NULL}};

const cli_command cli_ground = {
    "ground", ground_main, CLI_MODEL,
    "--features STORE --image (ID | PHOTO.png) (--sentence TEXT | --sentences FILE --line N) [options]\n"
    "       ban ground MODEL.ban --features STORE --split SPLIT.txt --annotations-dir DIR --output P.json [options]",
    "grounds the phrases of Flickr30k Entities sentences in an image's boxes (one sentence, or a split)\n"
    "Every entity of a sentence ('[/EN#1/people A man] in [/EN#2/clothing a red shirt] .') is grounded in one\n"
    "pass: each phrase's top boxes with their scores (logits; the sum over glimpses when G > 1) and pixel\n"
    "coordinates. Positions as the reference computes them (the last word of the phrase's first occurrence in\n"
    "the sentence split on spaces); chains without a box in the annotations (without annotations: chain 0) are\n"
    "skipped. --split: every sentence of every image of a split, batched, into the predictions file that\n"
    "tools/flickr30k.py evaluate scores (Recall@1/5/10), written atomically; bad markup or XML is an error\n"
    "naming the file and line. --picture OUT.png draws one sentence as the paper's Fig. 4 on --image PHOTO.png.",
    ground_options, 0,
    "ban ground flickr.ban --features flickr30k.store --image 1000 --sentence '[/EN#1/people A man] runs .'\n"
    "ban ground flickr.ban --features flickr30k.store --image 1000.png --annotations-dir flickr30k_entities \\\n"
    "    --line 1 --picture grounding.png\n"
    "ban ground flickr.ban --features flickr30k.store --split test.txt --annotations-dir flickr30k_entities \\\n"
    "    --output predictions.json"};
