/* fuzz_tokenizer.c - ban_tokenize on arbitrary bytes.

   The input is question text (up to its first NUL, as a C string ends). The vocabulary is
   the golden model's 48 words plus words that need Unicode lowering, in a tiny model
   (corpus/model/vqa_words.ban, written by make_seeds.py); BAN_FUZZ_MODEL=path.ban uses
   another model. Properties beyond "no crash": the status is BAN_OK, or BAN_ERR_INPUT for
   invalid UTF-8; ids lie in 0..V-1; a smaller max_ids gives the same count and a prefix
   of the same ids; and, as str.split() works word by word, the text twice with a space
   between gives the tokens twice. */
#define BAN_IMPLEMENTATION
#include "../../ban.h"

#include <string.h>

#include "fuzz.h"

static ban_model *g_model;
static ban_ctx *g_ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *path = getenv("BAN_FUZZ_MODEL");
    if (!path) path = FUZZ_DIR "/corpus/model/vqa_words.ban";
    if (ban_model_load(path, &g_model) != BAN_OK || !ban_model_config(g_model)->has_vocabulary) {
        fprintf(stderr, "fuzz_tokenizer: %s: %s\n", path, g_model ? ban_model_error(g_model) : "no vocabulary");
        exit(2);
    }
    if (ban_ctx_create(g_model, NULL, &g_ctx) != BAN_OK) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", ban_ctx_error(g_ctx));
        exit(2);
    }
    return 0;
}

enum { MAX = 256 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const int V = ban_model_config(g_model)->vocab_size;
    char *text = malloc(2 * size + 2);
    memcpy(text, data, size);
    text[size] = 0;
    size_t len = strlen(text);
    int32_t ids[MAX], few[4], twice[2 * MAX];
    int n, n_few, n_twice;
    int rc = ban_tokenize(g_ctx, text, ids, MAX, &n);
    FUZZ_CHECK(rc == BAN_OK || rc == BAN_ERR_INPUT, "status %d: %s", rc, ban_ctx_error(g_ctx));
    if (rc == BAN_OK) {
        FUZZ_CHECK(n >= 0 && (size_t)n <= len, "%d tokens from %zu bytes", n, len);
        for (int i = 0; i < n && i < MAX; i++) FUZZ_CHECK(ids[i] >= 0 && ids[i] < V, "id %d", ids[i]);
        FUZZ_CHECK(ban_tokenize(g_ctx, text, few, 4, &n_few) == BAN_OK && n_few == n, "%d tokens, then %d", n, n_few);
        for (int i = 0; i < n && i < 4; i++) FUZZ_CHECK(few[i] == ids[i], "token %d: %d, then %d", i, ids[i], few[i]);
        FUZZ_CHECK(ban_tokenize(g_ctx, text, NULL, 0, &n_few) == BAN_OK && n_few == n, "count only: %d", n_few);
        text[len] = ' ';
        memcpy(text + len + 1, text, len);
        text[2 * len + 1] = 0;
        FUZZ_CHECK(ban_tokenize(g_ctx, text, twice, 2 * MAX, &n_twice) == BAN_OK && n_twice == 2 * n,
                   "%d tokens, twice: %d", n, n_twice);
        for (int i = 0; i < n && n <= MAX; i++) /* (beyond MAX, the second copy is not kept) */
            FUZZ_CHECK(twice[i] == ids[i] && twice[n + i] == ids[i], "token %d, twice: %d %d, once %d", i, twice[i],
                       twice[n + i], ids[i]);
    }
    free(text);
    return 0;
}
