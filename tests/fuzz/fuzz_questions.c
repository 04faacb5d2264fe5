/* fuzz_questions.c - the questions-file reader of `ban vqa` (examples/questions.h).

   The input is a questions file (JSON). vqa_questions_parse must refuse it with a message
   naming the file, or return count >= 1 questions whose ids are whole numbers of at most
   2^53 in magnitude and whose questions are strings; the callback sees every question once,
   in order, with the count known. A callback that refuses question k (k from the input)
   stops the parse there with its message, and nothing leaks. vqa_questions_load (the same
   parser, reading a file) must agree: the same verdict, message and questions. The questions
   written back as a questions file must parse to the same list. Seeds: corpus/questions,
   written by make_seeds.py. */
#define _POSIX_C_SOURCE 200809L
#define QUESTIONS_IMPLEMENTATION
#include "../../examples/questions.h"

#include <unistd.h>

#include "fuzz.h"

static char g_path[64];

static void remove_file(void) { unlink(g_path); }

typedef struct {
    size_t seen, stop_at;
} counter;

static int each(void *data, const vqa_questions *qs, size_t i, char *err, size_t errlen)
{
    counter *c = (counter *)data;
    FUZZ_CHECK(i == c->seen && i < qs->count, "callback for question %zu after %zu of %zu", i, c->seen, qs->count);
    FUZZ_CHECK(qs->items[i].question != NULL, "question %zu has no text", i);
    c->seen++;
    if (i == c->stop_at) return snprintf(err, errlen, "stopped at %zu", i), -1;
    return 0;
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fputc('\\', f), fputc(*p, f);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static int same(const vqa_questions *a, const vqa_questions *b)
{
    if (a->count != b->count) return 0;
    for (size_t i = 0; i < a->count; i++)
        if (a->items[i].question_id != b->items[i].question_id || a->items[i].image_id != b->items[i].image_id ||
            strcmp(a->items[i].question, b->items[i].question))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_path[0]) {
        snprintf(g_path, sizeof g_path, "/tmp/fuzz_questions.%ld.json", (long)getpid());
        atexit(remove_file);
    }
    vqa_questions a, b, c;
    char err_a[512] = "", err_b[512] = "";
    counter ca = {0, (size_t)-1};
    int rc = vqa_questions_parse(data, size, "q.json", &a, each, &ca, err_a, sizeof err_a);
    if (rc == 0) {
        FUZZ_CHECK(a.count >= 1 && ca.seen == a.count, "%zu questions, %zu seen", a.count, ca.seen);
        for (size_t i = 0; i < a.count; i++) {
            const vqa_question *q = &a.items[i];
            FUZZ_CHECK(q->question_id >= -(INT64_C(1) << 53) && q->question_id <= (INT64_C(1) << 53) &&
                           q->image_id >= -(INT64_C(1) << 53) && q->image_id <= (INT64_C(1) << 53),
                       "question %zu: ids %lld, %lld", i, (long long)q->question_id, (long long)q->image_id);
            FUZZ_CHECK(q->question && strlen(q->question) <= size, "question %zu", i);
        }
        /* a callback that refuses question k stops there, with its message */
        const size_t k = size ? data[size - 1] % a.count : 0;
        counter cc = {0, k};
        char err_c[512] = "";
        FUZZ_CHECK(vqa_questions_parse(data, size, "q.json", &c, each, &cc, err_c, sizeof err_c) == -1 &&
                       cc.seen == k + 1 && !c.items && !c.text,
                   "stopping at question %zu: %zu seen", k, cc.seen);
        char want[64];
        snprintf(want, sizeof want, "stopped at %zu", k);
        FUZZ_CHECK(!strcmp(err_c, want), "message '%s'", err_c);
        /* written back, the same questions */
        FILE *f = fopen(g_path, "wb");
        FUZZ_CHECK(f != NULL, "cannot write %s", g_path);
        fputs("{\"info\": {}, \"questions\": [", f);
        for (size_t i = 0; i < a.count; i++) {
            fprintf(f, "%s{\"image_id\": %lld, \"question\": ", i ? ",\n" : "\n", (long long)a.items[i].image_id);
            json_string(f, a.items[i].question);
            fprintf(f, ", \"question_id\": %lld}", (long long)a.items[i].question_id);
        }
        fputs("]}\n", f);
        FUZZ_CHECK(fclose(f) == 0, "cannot write %s", g_path);
        FUZZ_CHECK(vqa_questions_load(g_path, &b, NULL, NULL, err_b, sizeof err_b) == 0, "written back: %s", err_b);
        FUZZ_CHECK(same(&a, &b), "written back, the questions read differently");
        vqa_questions_free(&b);
    } else {
        FUZZ_CHECK(!a.items && !a.text && a.count == 0, "refused, but questions are handed out");
        FUZZ_CHECK(!strncmp(err_a, "q.json: ", 8) || !strncmp(err_a, "out of memory", 13), "message: %s", err_a);
    }
    /* the file reader: the same verdict, message (the path in place of the name) and questions */
    FILE *f = fopen(g_path, "wb");
    FUZZ_CHECK(f && fwrite(data, 1, size, f) == size && fclose(f) == 0, "cannot write %s", g_path);
    counter cb = {0, (size_t)-1};
    int rc_b = vqa_questions_load(g_path, &b, each, &cb, err_b, sizeof err_b);
    FUZZ_CHECK(rc_b == rc, "parse says %d (%s), load %d (%s)", rc, err_a, rc_b, err_b);
    if (rc == 0) {
        FUZZ_CHECK(same(&a, &b), "parse and load read different questions");
    } else {
        const size_t lp = strlen(g_path);
        FUZZ_CHECK(!strncmp(err_b, g_path, lp) && !strcmp(err_b + lp, err_a + 6), "messages differ: '%s' and '%s'",
                   err_a, err_b);
    }
    vqa_questions_free(&a);
    vqa_questions_free(&b);
    return 0;
}
