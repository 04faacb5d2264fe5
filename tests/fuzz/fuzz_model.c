/* fuzz_model.c - the model loader, and everything a loaded model feeds.

   The input is a .ban file. ban_model_load_memory must refuse it with a status and a
   message, or load it; a model that loads must then take a context, run a small forward
   pass (VQA: a batch of two with and without counts, one glimpse, attention and entropy;
   grounding: two sentences of entities; a model with an image encoder reads pixels, and
   ban_encode runs too), tokenize, and hand out its strings, all without a crash, an
   over-read or a sanitizer report. Seeds: corpus/model (tiny valid models of
   every configuration, and cut ones), written by make_seeds.py. */
#define BAN_IMPLEMENTATION
#include "../../ban.h"

#include <string.h>

#include "fuzz.h"

enum { B = 2, E = 2 };

/* small deterministic values, so that the same input always runs the same way */
static float next_value(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return (float)(*state >> 8) / (float)(1u << 24) - 0.5f;
}

static void run_model(const ban_model *m, const uint8_t *data, size_t size)
{
    const ban_config *cf = ban_model_config(m);
    const int vqa = cf->task == BAN_TASK_VQA;
    /* the strings the model hands out are NUL-terminated inside the file */
    for (int i = 0; i < cf->vocab_size && cf->has_vocabulary; i++)
        FUZZ_CHECK(ban_model_word(m, i) && strlen(ban_model_word(m, i)) <= BAN_MAX_STRING, "word %d", i);
    for (int i = 0; i < cf->num_answers && cf->has_answers; i++)
        FUZZ_CHECK(ban_model_answer(m, i) != NULL, "answer %d", i);
    const char *s = ban_model_meta_string(m, "source.checkpoint");
    if (s) FUZZ_CHECK(strlen(s) <= BAN_MAX_STRING, "source.checkpoint");
    int64_t v;
    ban_model_meta_int(m, "source.epoch", &v);

    const int L = cf->question_length < 8 ? cf->question_length : 8;
    const int enc = cf->encoder_layers > 0, K = enc ? cf->grid_height * cf->grid_width : 3;
    ban_limits lim = {B, K, L, vqa ? 0 : E, 0};
    ban_ctx *c;
    if (ban_ctx_create(m, &lim, &c) != BAN_OK) { /* a context too large for the limits: refused, fine */
        FUZZ_CHECK(strlen(ban_ctx_error(c)) > 0, "ban_ctx_create failed without a message");
        ban_ctx_free(c);
        return;
    }
    if (cf->has_vocabulary) {
        int32_t ids[8];
        int n;
        FUZZ_CHECK(ban_tokenize(c, "What color is the man's shirt? ΣΑΣ straße", ids, 8, &n) == BAN_OK, "%s",
                   ban_ctx_error(c));
        for (int i = 0; i < n && i < 8; i++) FUZZ_CHECK(ids[i] >= 0 && ids[i] < cf->vocab_size, "token %d", ids[i]);
    }

    const size_t Dv = (size_t)cf->feature_dim, n_pixels = enc ? (size_t)B * cf->image_height * cf->image_width * 3 : 0;
    float *features = malloc(sizeof(float) * B * K * Dv), *spatials = malloc(sizeof(float) * B * K * 6);
    unsigned char *pixels = malloc(n_pixels ? n_pixels : 1);
    for (size_t i = 0; i < n_pixels; i++) pixels[i] = size ? data[i % size] : 0;
    int32_t tokens[B * 8], entities[B * E];
    uint32_t state = (uint32_t)size;
    for (size_t i = 0; i < B * K * Dv; i++) features[i] = next_value(&state);
    for (int i = 0; i < B * K; i++) {
        float x = next_value(&state) + 0.5f, y = next_value(&state) + 0.5f;
        float w = 0.25f * (next_value(&state) + 0.5f), h = 0.25f * (next_value(&state) + 0.5f);
        const float box[6] = {x, y, x + w, y + h, w, h};
        memcpy(spatials + i * 6, box, sizeof box);
    }
    for (int i = 0; i < B * L; i++) tokens[i] = size ? data[i % size] % (cf->vocab_size + 1) : 0;
    for (int i = 0; i < B * E; i++) entities[i] = i % L;

    const size_t A = vqa ? (size_t)cf->num_answers : (size_t)cf->num_glimpses * K * E;
    const size_t P = (size_t)ban_question_positions(m, L);
    float *logits = malloc(sizeof(float) * B * A);
    float *att = malloc(sizeof(float) * B * cf->num_glimpses * K * P), *ent = malloc(sizeof(float) * B * cf->num_glimpses);
    ban_input in;
    memset(&in, 0, sizeof in);
    in.batch = B, in.tokens_len = L, in.tokens = tokens;
    if (enc) { /* an encoder's grid from pixels, through ban_encode and through ban_forward */
        int rc = ban_encode(c, pixels, B, features, spatials);
        FUZZ_CHECK(rc == BAN_OK, "ban_encode: %d %s", rc, ban_ctx_error(c));
        in.pixels = pixels;
    } else {
        in.boxes = K, in.features = features, in.spatials = spatials;
    }
    ban_output out = {logits, NULL, NULL};
    int rc;
    if (vqa) {
        out.attention = att, out.entropy = ent;
        rc = ban_forward(c, &in, &out);
        FUZZ_CHECK(rc == BAN_OK || rc == BAN_ERR_INPUT, "VQA forward: %d %s", rc, ban_ctx_error(c));
        int box_counts[B] = {K, 1}, token_counts[B] = {L, 1};
        in.box_counts = enc ? NULL : box_counts, in.token_counts = token_counts, in.glimpses = 1;
        out.attention = NULL, out.entropy = NULL;
        rc = ban_forward(c, &in, &out);
        FUZZ_CHECK(rc == BAN_OK || rc == BAN_ERR_INPUT, "VQA forward with counts: %d %s", rc, ban_ctx_error(c));
    } else {
        in.entities_len = E, in.entities = entities;
        rc = ban_forward(c, &in, &out);
        FUZZ_CHECK(rc == BAN_OK || rc == BAN_ERR_INPUT, "grounding forward: %d %s", rc, ban_ctx_error(c));
    }
    free(features), free(spatials), free(pixels), free(logits), free(att), free(ent);
    ban_ctx_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The loader needs 4-byte aligned tensors (a mapped file is page-aligned): malloc's
       alignment is enough, and a buffer of exactly `size` bytes lets the sanitizer catch
       a read one byte past the end. */
    uint8_t *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data, size);
    ban_model *m;
    int rc = ban_model_load_memory(buf, size, &m);
    FUZZ_CHECK(m != NULL, "no model to hold the message");
    if (rc == BAN_OK) run_model(m, data, size);
    else FUZZ_CHECK(strlen(ban_model_error(m)) > 0, "status %d without a message", rc);
    ban_model_free(m);
    free(buf);
    return 0;
}
