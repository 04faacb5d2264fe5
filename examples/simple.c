/* simple.c - answer one question about one image with ban.h (the README shows this file whole).
   usage: simple MODEL.ban FEATURES.npy SPATIALS.npy "question"
   FEATURES float32 (1, K, Dv) and SPATIALS float32 (1, K, 6) of the image (the first one, if more).
   build: cc -I. examples/simple.c -lopenblas -lm -lpthread  (or $(pkg-config --cflags --libs ban)) */
#define _POSIX_C_SOURCE 200809L /* npy.h's helpers are POSIX */
#define BAN_IMPLEMENTATION      /* in exactly one file of a program */
#include "ban.h"
#define UTIL_IMPLEMENTATION
#define NPY_IMPLEMENTATION
#include "npy.h" /* examples/npy.h: reads .npy files */

int main(int argc, char **argv)
{
    npy_array v, s;
    char err[512];
    if (argc != 5) return fprintf(stderr, "usage: simple MODEL.ban FEATURES.npy SPATIALS.npy QUESTION\n"), 2;
    if (npy_load(argv[2], &v, err, sizeof err) || npy_load(argv[3], &s, err, sizeof err))
        return fprintf(stderr, "%s\n", err), 1;
    if (v.kind != 'f' || v.ndim != 3 || v.shape[1] < 1 || v.shape[1] > BAN_MAX_BOXES || s.kind != 'f' ||
        s.ndim != 3 || s.shape[1] != v.shape[1] || s.shape[2] != 6)
        return fprintf(stderr, "features must be float32 (1, K, Dv), spatials float32 (1, K, 6)\n"), 1;
    const int K = (int)v.shape[1];

    ban_model *model;
    ban_ctx *ctx;
    if (ban_model_load(argv[1], &model) != BAN_OK) return fprintf(stderr, "%s\n", ban_model_error(model)), 1;
    const ban_config *cfg = ban_model_config(model);
    if (v.shape[2] != cfg->feature_dim)
        return fprintf(stderr, "%s: %d-d features; the model reads %d\n", argv[2], (int)v.shape[2],
                       cfg->feature_dim), 1;
    ban_limits lim = {1, K, 0, 0, 0}; /* batch, boxes, tokens, entities, threads; 0: the defaults */
    if (ban_ctx_create(model, &lim, &ctx) != BAN_OK) return fprintf(stderr, "%s\n", ban_ctx_error(ctx)), 1;

    /* the question: at least one known word (ban_tokenize_info says which are known) */
    static int32_t tokens[BAN_MAX_TOKENS];
    static ban_token_info info[BAN_MAX_TOKENS];
    int n;
    if (ban_tokenize_info(ctx, argv[4], tokens, info, BAN_MAX_TOKENS, &n) != BAN_OK)
        return fprintf(stderr, "%s\n", ban_ctx_error(ctx)), 1;
    ban_input in = {0};
    in.batch = 1, in.boxes = K, in.features = (const float *)v.data, in.spatials = (const float *)s.data;
    in.tokens_len = n < BAN_MAX_TOKENS ? n : BAN_MAX_TOKENS, in.tokens = tokens;
    float *logits = (float *)malloc(sizeof(float) * (size_t)cfg->num_answers);
    ban_output out = {0};
    out.logits = logits;
    if (!logits || ban_forward(ctx, &in, &out) != BAN_OK) return fprintf(stderr, "%s\n", ban_ctx_error(ctx)), 1;
    const char *answer = ban_model_answer(model, ban_argmax(logits, cfg->num_answers));
    printf("%s\n", answer ? answer : "(the model file has no answer strings)");

    free(logits);
    ban_ctx_free(ctx);
    ban_model_free(model);
    npy_free(&v), npy_free(&s);
    return 0;
}
