/* simple.c - the README's example: answer one question about one image.
   usage: simple MODEL.ban FEATURES.npy SPATIALS.npy "question"   (the first image of the arrays) */
#define _POSIX_C_SOURCE 200809L /* npy.h's writer (examples/util.h) is POSIX */
#define BAN_IMPLEMENTATION
#include "../ban.h"
#define UTIL_IMPLEMENTATION
#define NPY_IMPLEMENTATION
#include "npy.h"

int main(int argc, char **argv)
{
    npy_array v, b;
    char err[512];
    if (argc != 5) return fprintf(stderr, "usage: simple MODEL.ban FEATURES.npy SPATIALS.npy QUESTION\n"), 2;
    if (npy_load(argv[2], &v, err, sizeof err) || npy_load(argv[3], &b, err, sizeof err))
        return fprintf(stderr, "%s\n", err), 1;
    /* features (B, K, Dv), spatials (B, K, 6): use the first image */
    if (v.kind != 'f' || v.ndim != 3 || v.shape[0] < 1 || v.shape[1] < 1 || v.shape[1] > BAN_MAX_BOXES ||
        b.kind != 'f' || b.ndim != 3 || b.shape[0] < 1 || b.shape[1] != v.shape[1] || b.shape[2] != 6)
        return fprintf(stderr, "features must be float32 (B, K, Dv) and spatials float32 (B, K, 6)\n"), 1;
    int K = (int)v.shape[1];

    /* --- the README's 15 lines --- */
    ban_model *model;
    ban_ctx *ctx;
    if (ban_model_load(argv[1], &model) != BAN_OK)
        return fprintf(stderr, "%s\n", model ? ban_model_error(model) : "out of memory"), 1;
    if (v.shape[2] != ban_model_config(model)->feature_dim)
        return fprintf(stderr, "%s: features of %d values, the model reads %d\n", argv[2], (int)v.shape[2],
                       ban_model_config(model)->feature_dim), 1;
    ban_limits lim = {1, K, 64, 0, 0};              /* batch, boxes, tokens, entities, threads */
    if (ban_ctx_create(model, &lim, &ctx) != BAN_OK) return fprintf(stderr, "%s\n", ban_ctx_error(ctx)), 1;
    int32_t tokens[64];
    int n;
    if (ban_tokenize(ctx, argv[4], tokens, 64, &n) != BAN_OK) return fprintf(stderr, "%s\n", ban_ctx_error(ctx)), 1;
    int A = ban_model_config(model)->num_answers;
    float *logits = malloc(sizeof(float) * A);
    ban_input in = {.batch = 1, .boxes = K, .features = v.data, .spatials = b.data,
                    .tokens_len = n < 64 ? (n ? n : 1) : 64, .tokens = tokens};
    if (n == 0) tokens[0] = ban_model_config(model)->padding_id; /* an empty question is all padding */
    ban_output out = {.logits = logits};
    if (ban_forward(ctx, &in, &out) != BAN_OK) return fprintf(stderr, "%s\n", ban_ctx_error(ctx)), 1;
    const char *answer = ban_model_answer(model, ban_argmax(logits, A));
    printf("%s\n", answer ? answer : "(the model file has no answer strings)");
    /* --- */

    free(logits);
    ban_ctx_free(ctx);
    ban_model_free(model);
    npy_free(&v), npy_free(&b);
    return 0;
}
