/* questions.h - the questions file of the official VQA evaluation (e.g.
   v2_OpenEnded_mscoco_val2014_questions.json), as `ban vqa` reads it (examples/cmd_vqa.c):
   a JSON object whose "questions" array holds objects {"question_id", "image_id",
   "question"}; ids are whole numbers a double holds exactly (|id| <= 2^53), the question a
   string. Other keys are ignored. Parsed with cJSON (link -lcjson).

   vqa_questions_load(path, &qs, each, data, err, errlen)   read the file and parse it
   vqa_questions_parse(buf, n, name, &qs, each, data, err, errlen)
                                    the same from a whole file held in memory (`name`
                                    stands for the path in messages)
       0: qs.count >= 1 questions in qs.items[0 .. count), in file order, each question a
          NUL-terminated string (cJSON's: a \u0000 escape ends it) owned by qs;
       -1: err holds a message naming the file (and the line and column of malformed JSON,
          or the index of the bad question); nothing is left to free.
       each: NULL, or called with (data, &qs, i, err, errlen) as soon as question i has been
          read (qs.count is known then, qs.items[0 .. i] are filled); a non-zero return stops
          the parse with the message each left in err (so that its errors come in file order
          with the parser's own).
   vqa_questions_free(&qs)

   Define QUESTIONS_IMPLEMENTATION in exactly one C file (in build/ban: examples/cmd_vqa.c). */
#ifndef QUESTIONS_H_INCLUDED
#define QUESTIONS_H_INCLUDED
#include <stddef.h>
#include <stdint.h>

typedef struct vqa_question {
    int64_t question_id, image_id;
    const char *question;
} vqa_question;

typedef struct vqa_questions {
    vqa_question *items;        /* (count) */
    size_t count;
    char *text;                 /* the questions' texts, back to back */
} vqa_questions;

typedef int (*vqa_question_fn)(void *data, const vqa_questions *qs, size_t index, char *err, size_t errlen);

int vqa_questions_load(const char *path, vqa_questions *out, vqa_question_fn each, void *data, char *err,
                       size_t errlen);
int vqa_questions_parse(const void *buf, size_t n, const char *name, vqa_questions *out, vqa_question_fn each,
                        void *data, char *err, size_t errlen);
void vqa_questions_free(vqa_questions *qs);

#endif /* QUESTIONS_H_INCLUDED */

#if defined(QUESTIONS_IMPLEMENTATION) && !defined(QUESTIONS__IMPLEMENTED)
#define QUESTIONS__IMPLEMENTED
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int questions__fail(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && len) vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* a JSON number that is a whole number a double holds exactly */
static int questions__int(const cJSON *item, int64_t *out)
{
    if (!cJSON_IsNumber(item)) return 0;
    double d = item->valuedouble;
    if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0) || d != floor(d)) return 0;
    *out = (int64_t)d;
    return 1;
}

/* line and column (1-based) of byte `at` */
static void questions__line_col(const char *buf, size_t at, long *line, long *col)
{
    *line = 1, *col = 1;
    for (size_t i = 0; i < at; i++) {
        if (buf[i] == '\n') (*line)++, *col = 1;
        else (*col)++;
    }
}

void vqa_questions_free(vqa_questions *qs)
{
    if (!qs) return;
    free(qs->items), free(qs->text);
    memset(qs, 0, sizeof *qs);
}

/* the parser proper: buf holds size bytes and a NUL after them */
static int questions__parse(const char *buf, size_t size, const char *path, vqa_questions *out, vqa_question_fn each,
                            void *data, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int rc = 0;
    const char *nul = (const char *)memchr(buf, 0, size);
    const char *end = NULL;
    cJSON *root = NULL;
    if (nul) {
        long line, col;
        questions__line_col(buf, (size_t)(nul - buf), &line, &col);
        rc = questions__fail(err, errlen, "%s: malformed JSON: NUL byte at line %ld, column %ld", path, line, col);
    } else if (!(root = cJSON_ParseWithOpts(buf, &end, 1))) {
        long line, col;
        questions__line_col(buf, end && end >= buf && end <= buf + size ? (size_t)(end - buf) : 0, &line, &col);
        rc = questions__fail(err, errlen, "%s: malformed JSON at line %ld, column %ld", path, line, col);
    }
    const cJSON *list = root ? cJSON_GetObjectItemCaseSensitive(root, "questions") : NULL;
    if (rc == 0 && (!cJSON_IsObject(root) || !cJSON_IsArray(list)))
        rc = questions__fail(err, errlen, "%s: expected an object with a \"questions\" array (the official questions "
                             "file)", path);
    size_t count = rc == 0 ? (size_t)cJSON_GetArraySize(list) : 0;
    if (rc == 0 && count == 0) rc = questions__fail(err, errlen, "%s: the \"questions\" array is empty", path);
    if (rc == 0) {
        out->items = (vqa_question *)calloc(count, sizeof(vqa_question));
        if (!out->items) rc = questions__fail(err, errlen, "out of memory for %zu questions", count);
        out->count = count;
    }
    size_t i = 0, text_bytes = 0;
    const cJSON *item, *items = rc == 0 ? list : NULL;
    cJSON_ArrayForEach(item, items)
    {
        vqa_question *q = &out->items[i];
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(item, "question");
        if (!cJSON_IsObject(item)) {
            rc = questions__fail(err, errlen, "%s: questions[%zu] is not an object", path, i);
            break;
        }
        if (!questions__int(cJSON_GetObjectItemCaseSensitive(item, "question_id"), &q->question_id)) {
            rc = questions__fail(err, errlen, "%s: questions[%zu]: \"question_id\" is missing or not a whole number",
                                 path, i);
            break;
        }
        if (!questions__int(cJSON_GetObjectItemCaseSensitive(item, "image_id"), &q->image_id)) {
            rc = questions__fail(err, errlen, "%s: questions[%zu] (question %lld): \"image_id\" is missing or not a "
                                 "whole number", path, i, (long long)q->question_id);
            break;
        }
        if (!cJSON_IsString(text) || !text->valuestring) {
            rc = questions__fail(err, errlen, "%s: questions[%zu] (question %lld): \"question\" is missing or not a "
                                 "string", path, i, (long long)q->question_id);
            break;
        }
        q->question = text->valuestring; /* until the tree is freed; copied below */
        text_bytes += strlen(text->valuestring) + 1;
        if (each && (rc = each(data, out, i, err, errlen)) != 0) break;
        i++;
    }
    if (rc == 0 && i != count) /* cJSON's count and its list disagree: never, but do not trust it */
        rc = questions__fail(err, errlen, "%s: the \"questions\" array has %zu entries, not %zu", path, i, count);
    if (rc == 0 && !(out->text = (char *)malloc(text_bytes ? text_bytes : 1)))
        rc = questions__fail(err, errlen, "out of memory for %zu questions", count);
    if (rc == 0) {
        char *t = out->text;
        for (size_t k = 0; k < count; k++) {
            const size_t n = strlen(out->items[k].question) + 1;
            memcpy(t, out->items[k].question, n);
            out->items[k].question = t;
            t += n;
        }
    }
    cJSON_Delete(root);
    if (rc) {
        vqa_questions_free(out);
        return -1;
    }
    return 0;
}

int vqa_questions_parse(const void *buf, size_t n, const char *name, vqa_questions *out, vqa_question_fn each,
                        void *data, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char *copy = (char *)malloc(n + 1); /* cJSON reads up to a NUL */
    if (!copy) return questions__fail(err, errlen, "%s: out of memory", name);
    if (n) memcpy(copy, buf, n);
    copy[n] = 0;
    int rc = questions__parse(copy, n, name, out, each, data, err, errlen);
    free(copy);
    return rc;
}

int vqa_questions_load(const char *path, vqa_questions *out, vqa_question_fn each, void *data, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return questions__fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 1 >= cap) {
            cap = cap ? cap * 2 : (size_t)1 << 20;
            char *b = (char *)realloc(buf, cap);
            if (!b) return free(buf), fclose(f), questions__fail(err, errlen, "%s: out of memory", path);
            buf = b;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) return free(buf), questions__fail(err, errlen, "%s: read error", path);
    buf[n] = 0;
    int rc = questions__parse(buf, n, path, out, each, data, err, errlen);
    free(buf);
    return rc;
}

#endif /* QUESTIONS_IMPLEMENTATION */
