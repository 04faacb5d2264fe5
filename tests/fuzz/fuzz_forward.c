/* fuzz_forward.c - ban_forward on hostile inputs.

   The input bytes choose a model (a VQA model with a counter, a grounding model with op
   's', a VQA model with an image encoder, and one with OpenVQA's GQA conventions: glimpses
   of rank 3, the box adapter, boxes padded to 6 and never masked, from corpus/model), the sizes of a call (batch, boxes, tokens, entities, images,
   glimpses; some beyond the context's limits), which optional arrays are given, and their
   values: features and spatials (NaN, infinity and all-zero rows among them), token ids,
   pixels, box, token and entity counts, image indices and entity positions, all possibly
   out of range. Every array is allocated at exactly its declared shape, outputs included,
   so that a read or write past one is caught. ban_forward must return BAN_OK, BAN_ERR_ARG
   or BAN_ERR_INPUT with a message; on BAN_OK the logits are finite. */
#define BAN_IMPLEMENTATION
#include "../../ban.h"

#include <math.h>
#include <string.h>

#include "fuzz.h"

enum { MB = 4, MK = 8, ML = 16, ME = 4 }; /* the contexts' limits */

enum { MODELS = 4 };
static ban_model *g_model[MODELS];
static ban_ctx *g_ctx[MODELS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    static const char *const files[MODELS] = {"vqa_words.ban", "grounding_s.ban", "vqa_encoder.ban",
                                              "openvqa_gqa.ban"};
    for (int i = 0; i < MODELS; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/corpus/model/%s", FUZZ_DIR, files[i]);
        if (ban_model_load(path, &g_model[i]) != BAN_OK) {
            fprintf(stderr, "fuzz_forward: %s\n", ban_model_error(g_model[i]));
            exit(2);
        }
        const ban_config *cf = ban_model_config(g_model[i]);
        ban_limits lim = {MB, cf->encoder_layers ? cf->grid_height * cf->grid_width : MK, ML, ME, 0};
        if (ban_ctx_create(g_model[i], &lim, &g_ctx[i]) != BAN_OK) {
            fprintf(stderr, "fuzz_forward: %s\n", ban_ctx_error(g_ctx[i]));
            exit(2);
        }
    }
    return 0;
}

typedef struct {
    const uint8_t *p;
    size_t n, at;
} reader;

static int byte(reader *r) { return r->at < r->n ? r->p[r->at++] : 0; }
static int small(reader *r) { return (int)(int8_t)byte(r); } /* -128..127 */

static float value(reader *r)
{
    int b = byte(r);
    return b == 255 ? NAN : b == 254 ? INFINITY : b < 16 ? 0.0f : (float)(b - 128) / 16.0f;
}

/* exactly n elements (a valid pointer when n is 0), or NULL when `give` is 0 */
static void *array(size_t n, size_t size, int give) { return give ? malloc(n ? n * size : 1) : NULL; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r = {data, size, 0};
    const int which = byte(&r) % MODELS;
    const ban_model *m = g_model[which];
    ban_ctx *c = g_ctx[which];
    const ban_config *cf = ban_model_config(m);
    const int vqa = cf->task == BAN_TASK_VQA, enc = cf->encoder_layers > 0;

    /* sizes: mostly within the limits, sometimes one beyond, sometimes 0 or negative */
    ban_input in;
    memset(&in, 0, sizeof in);
    in.batch = byte(&r) % (MB + 2);
    in.boxes = byte(&r) % (MK + 2);
    in.tokens_len = byte(&r) % (ML + 2);
    in.entities_len = byte(&r) % (ME + 2);
    const int flags = byte(&r) | byte(&r) << 8;
    in.images = flags & 1 ? byte(&r) % (MB + 2) : 0;
    in.glimpses = small(&r) % (cf->num_glimpses + 2);
    const int B = in.batch > 0 ? in.batch : 0, K = in.boxes > 0 ? in.boxes : 0;
    const int L = in.tokens_len > 0 ? in.tokens_len : 0, E = in.entities_len > 0 ? in.entities_len : 0;
    const int N = in.images > 0 ? in.images : B, Dv = cf->feature_dim, G = cf->num_glimpses;

    /* an encoder model takes pixels; features and spatials given to it are an error */
    unsigned char *pixels = array(enc ? (size_t)N * cf->image_height * cf->image_width * 3 : 0, 1, enc && !(flags & 2));
    float *features = array((size_t)N * K * Dv, sizeof(float), enc ? flags & 2 : !(flags & 2));
    float *spatials = array((size_t)N * K * 6, sizeof(float), enc ? flags & 4 : !(flags & 4));
    for (size_t i = 0; pixels && i < (size_t)N * cf->image_height * cf->image_width * 3; i++) pixels[i] = (uint8_t)byte(&r);
    int32_t *tokens = array((size_t)B * L, sizeof(int32_t), !(flags & 8));
    int *box_counts = array((size_t)N, sizeof(int), flags & 16);
    int *token_counts = array((size_t)B, sizeof(int), flags & 32);
    int *image_index = array((size_t)B, sizeof(int), flags & 1 ? !(flags & 64) : (flags & 64));
    int32_t *entities = array((size_t)B * E, sizeof(int32_t), !(flags & 128));
    int *entity_counts = array((size_t)B, sizeof(int), flags & 256);
    const int zero_rows = flags & 512; /* many all-zero (padding) rows */
    for (size_t i = 0; features && i < (size_t)N * K * Dv; i++) features[i] = zero_rows && (i / Dv) % 3 ? 0.0f : value(&r);
    for (size_t i = 0; spatials && i < (size_t)N * K * 6; i++) spatials[i] = value(&r);
    for (size_t i = 0; tokens && i < (size_t)B * L; i++) tokens[i] = flags & 1024 ? small(&r) : byte(&r) % (cf->vocab_size + 1);
    for (int i = 0; box_counts && i < N; i++) box_counts[i] = flags & 2048 ? small(&r) : byte(&r) % (K + 1);
    for (int i = 0; token_counts && i < B; i++) token_counts[i] = flags & 2048 ? small(&r) : byte(&r) % (L + 1);
    for (int i = 0; image_index && i < B; i++) image_index[i] = flags & 2048 ? small(&r) : byte(&r) % (N ? N : 1);
    for (size_t i = 0; entities && i < (size_t)B * E; i++) entities[i] = flags & 2048 ? small(&r) : byte(&r) % (L ? L : 1);
    for (int i = 0; entity_counts && i < B; i++) entity_counts[i] = flags & 2048 ? small(&r) : byte(&r) % (E + 1);
    in.pixels = pixels, in.features = features, in.spatials = spatials, in.tokens = tokens, in.box_counts = box_counts;
    in.token_counts = token_counts, in.image_index = image_index, in.entities = entities;
    in.entity_counts = entity_counts;

    /* outputs at exactly their shapes: an encoder model's maps cover its grid whatever boxes says */
    const size_t P = (size_t)ban_question_positions(m, L), Kout = enc ? (size_t)cf->grid_height * cf->grid_width : (size_t)K;
    const size_t n_logits = vqa ? (size_t)B * cf->num_answers : (size_t)B * G * Kout * E;
    ban_output out = {array(n_logits, sizeof(float), !(flags & 4096)), NULL, NULL};
    if (vqa && (flags & 8192)) out.attention = array((size_t)B * G * Kout * P, sizeof(float), 1);
    if (vqa && (flags & 16384)) out.entropy = array((size_t)B * G, sizeof(float), 1);

    int rc = ban_forward(c, &in, &out);
    FUZZ_CHECK(rc == BAN_OK || rc == BAN_ERR_ARG || rc == BAN_ERR_INPUT, "status %d: %s", rc, ban_ctx_error(c));
    if (rc != BAN_OK) FUZZ_CHECK(strlen(ban_ctx_error(c)) > 0, "status %d without a message", rc);
    else
        for (size_t i = 0; i < n_logits; i++) FUZZ_CHECK(isfinite(out.logits[i]), "logit %zu is %g", i, out.logits[i]);

    free(pixels), free(features), free(spatials), free(tokens), free(box_counts), free(token_counts), free(image_index);
    free(entities), free(entity_counts), free(out.logits), free(out.attention), free(out.entropy);
    return 0;
}
