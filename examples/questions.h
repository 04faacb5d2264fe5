/* questions.h - the questions files `ban vqa` reads (examples/cmd_vqa.c), in either format:

   VQA   the official VQA questions file (e.g. v2_OpenEnded_mscoco_val2014_questions.json):
         a JSON object whose "questions" array holds objects {"question_id", "image_id",
         "question"}; the ids are whole numbers written as JSON integers (digits, no fraction
         or exponent), held exactly as int64 (9007199254740993 stays itself; beyond int64 is
         refused), the question a string.
   GQA   GQA's questions files (e.g. testdev_balanced_questions.json): a JSON object of
         questions by question id, {"<questionId>": {"imageId": "<id>", "question": "...",
         "answer": "...", "types": {...}, ...}}; "answer" is optional (the test files have
         none).
   A file is VQA when its object has a "questions" array, GQA otherwise. Every other key
   (VQA's "info" and "license", GQA's "semantic", "entailed", "annotations", ...) is skipped
   as it is read, never built. Question ids and image ids must be 1..64 letters, digits,
   '_', '-' or '.' (store_id_check of examples/store.h: the store's image ids, and safe as
   file names: `ban vqa --attention DIR` writes DIR/<question id>.npy); each question id
   appears once. A question or an answer is at most QUESTIONS_MAX_TEXT bytes, with no NUL
   (\u0000) and no lone surrogate escape (raw bytes are kept as they are: the tokenizer
   checks their UTF-8).

   vqa_questions_load(path, &qs, each, data, err, errlen)   read a regular file (not a pipe or
                                    a device: /dev/zero is refused) and parse it
   vqa_questions_parse(buf, n, name, &qs, each, data, err, errlen)
                                    the same from a whole file held in memory (`name`
                                    stands for the path in messages)
       0: qs.count >= 1 questions in qs.items[0 .. count), in file order; qs.format says
          which format the file is (QUESTIONS_VQA or QUESTIONS_GQA); the strings are
          NUL-terminated and owned by qs;
       -1: err holds a message naming the file (and the line and column of malformed JSON,
          or the question); nothing is left to free.
       each: NULL, or called with (data, &qs, i, err, errlen) for every question i in order
          once the whole file has been read and checked; a non-zero return stops there with
          the message each left in err.
   vqa_questions_free(&qs)

   Memory: the file is read twice in chunks of 1 MB, once to check it and count what the
   questions need, once to fill arrays of exactly that size: 48 bytes a question and its
   strings, whatever else the file holds (a key nobody reads costs nothing).

   Define QUESTIONS_IMPLEMENTATION in exactly one C file (in build/ban: examples/impl.c), and
   UTIL_IMPLEMENTATION in one (util_open_file). */
#ifndef QUESTIONS_H_INCLUDED
#define QUESTIONS_H_INCLUDED
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define QUESTIONS_MAX_TEXT 65535    /* bytes of a question or an answer */
#define QUESTIONS_MAX_DEPTH 1000    /* nesting of a skipped value (cJSON's limit) */

enum { QUESTIONS_VQA = 1, QUESTIONS_GQA = 2 };

typedef struct vqa_question {
    int64_t question_id, image_id;  /* VQA: the ids, exactly; GQA: 0 (its ids are strings) */
    const char *question_key;       /* the question id as text: VQA its decimal digits, GQA the key */
    const char *image_key;          /* the image id as the store holds it: VQA decimal, GQA "imageId" */
    const char *question;
    const char *answer;             /* GQA's "answer" when the file has one, else NULL */
} vqa_question;

typedef struct vqa_questions {
    vqa_question *items;            /* (count) */
    size_t count;
    int format;                     /* QUESTIONS_VQA or QUESTIONS_GQA */
    char *text;                     /* the strings, back to back */
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
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "util.h"

/* ---- JSON, read byte by byte from a file or from memory ---------------------------------- */

#ifndef QUESTIONS_CHUNK
#define QUESTIONS_CHUNK ((size_t)1 << 20) /* bytes read at a time (tests/fuzz/fuzz_questions.c: 7) */
#endif

typedef struct {
    FILE *f;                        /* NULL: the input is mem */
    const unsigned char *mem;
    uint64_t size;                  /* bytes of input (a file: its size when opened) */
    unsigned char *buf;             /* a file's bytes [base, base + len) */
    size_t pos, len;
    uint64_t base;
    const char *name;
    char *err;
    size_t errlen;
    int failed;                     /* err holds the reason */
    char *str;                      /* the last string kept (qj__string), NUL-terminated */
    size_t str_len, str_cap;
    int str_over, str_nul, str_surrogate; /* it was longer than asked, held \u0000, a lone surrogate */
} qj;

/* the next bytes of a file into buf; 0 at the end of the input */
static int qj__fill(qj *j)
{
    if (!j->f) return 0;
    j->base += j->len;
    j->pos = j->len = 0;
    if (j->base >= j->size) return 0;
    const uint64_t left = j->size - j->base;
    const size_t want = left < QUESTIONS_CHUNK ? (size_t)left : QUESTIONS_CHUNK;
    j->len = fread(j->buf, 1, want, j->f);
    if (j->len < want && !j->failed) { /* shorter than it was when opened */
        j->failed = 1;
        util_fail(j->err, j->errlen, "%s: %s after %llu bytes (the file was %llu bytes when opened)", j->name,
                        ferror(j->f) ? "read error" : "the file ends", (unsigned long long)(j->base + j->len),
                        (unsigned long long)j->size);
    }
    return j->len > 0;
}

static inline int qj__peek(qj *j)
{
    if (j->pos < j->len) return j->buf[j->pos];
    return qj__fill(j) ? j->buf[j->pos] : -1;
}

static inline void qj__next(qj *j) { j->pos++; }
static inline uint64_t qj__offset(const qj *j) { return j->base + j->pos; }

/* line and column (1-based, in bytes) of input offset `at`, read again from the start */
static void qj__where(qj *j, uint64_t at, long *line, long *col)
{
    *line = 1, *col = 1;
    if (!j->f) {
        for (uint64_t i = 0; i < at; i++) {
            if (j->mem[i] == '\n') (*line)++, *col = 1;
            else (*col)++;
        }
        return;
    }
    if (fseek(j->f, 0, SEEK_SET) != 0) return;
    uint64_t done = 0;
    while (done < at) {
        const size_t want = at - done < QUESTIONS_CHUNK ? (size_t)(at - done) : QUESTIONS_CHUNK;
        const size_t got = fread(j->buf, 1, want, j->f);
        for (size_t i = 0; i < got; i++) {
            if (j->buf[i] == '\n') (*line)++, *col = 1;
            else (*col)++;
        }
        if (got < want) break;
        done += got;
    }
    j->pos = j->len = 0, j->base = j->size; /* the reader is done with the file */
}

/* malformed JSON at the current byte: -1 */
static int qj__syntax(qj *j, const char *what)
{
    if (j->failed) return -1; /* a read error said it first */
    const int at_end = qj__peek(j) < 0;
    long line, col;
    qj__where(j, qj__offset(j), &line, &col);
    j->failed = 1;
    return util_fail(j->err, j->errlen, "%s: malformed JSON at line %ld, column %ld: %s%s", j->name, line, col,
                           what, at_end ? " (the file ends there: truncated?)" : "");
}

/* a question that breaks the rules (the JSON itself is fine so far): -1 */
static int qj__error(qj *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (j->err && j->errlen) {
        const int n = snprintf(j->err, j->errlen, "%s: ", j->name);
        if (n >= 0 && (size_t)n < j->errlen) vsnprintf(j->err + n, j->errlen - (size_t)n, fmt, ap);
    }
    va_end(ap);
    j->failed = 1;
    return -1;
}

static int qj__ws(qj *j)
{
    for (;;) {
        const int c = qj__peek(j);
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return c;
        qj__next(j);
    }
}

static int qj__expect(qj *j, int want, const char *what)
{
    if (qj__ws(j) != want) return qj__syntax(j, what);
    qj__next(j);
    return 0;
}

static int qj__keep(qj *j, const unsigned char *p, size_t n, size_t max)
{
    if (j->str_len + n > max) { /* keep what fits (the same bytes however the input is read), note the rest */
        j->str_over = 1;
        n = max - j->str_len;
    }
    if (j->str_len + n + 1 > j->str_cap) {
        size_t cap = j->str_cap ? j->str_cap : 256;
        while (cap < j->str_len + n + 1) cap *= 2;
        char *s = (char *)realloc(j->str, cap);
        if (!s) return j->failed = 1, util_fail(j->err, j->errlen, "%s: out of memory", j->name);
        j->str = s, j->str_cap = cap;
    }
    memcpy(j->str + j->str_len, p, n);
    j->str_len += n;
    j->str[j->str_len] = 0;
    return 0;
}

static int qj__hex4(qj *j, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        const int c = qj__peek(j);
        const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ?
                      c - 'A' + 10 : -1;
        if (d < 0) return qj__syntax(j, "a \\u escape needs four hex digits");
        v = v * 16 + (unsigned)d;
        qj__next(j);
    }
    *out = v;
    return 0;
}

/* A string at the current '"'. max > 0: its decoded bytes are kept in j->str, up to max of them
   (j->str_over beyond; j->str_nul for a \u0000, j->str_surrogate for a lone surrogate); max 0:
   only checked. */
static int qj__string(qj *j, size_t max)
{
    j->str_len = 0, j->str_over = j->str_nul = j->str_surrogate = 0;
    if (j->str) j->str[0] = 0;
    qj__next(j); /* the opening quote */
    for (;;) {
        /* a run of plain bytes at once */
        if (j->pos < j->len) {
            size_t k = j->pos;
            while (k < j->len && j->buf[k] != '"' && j->buf[k] != '\\' && j->buf[k] >= 0x20) k++;
            if (k > j->pos) {
                if (max && qj__keep(j, j->buf + j->pos, k - j->pos, max)) return -1;
                j->pos = k;
                continue;
            }
        }
        const int c = qj__peek(j);
        if (c < 0) return qj__syntax(j, "the file ends inside a string");
        if (c == '"') {
            qj__next(j);
            return 0;
        }
        if (c < 0x20) return qj__syntax(j, c ? "a control character inside a string" : "a NUL byte inside a string");
        if (c != '\\') continue; /* a plain byte of a new chunk: the run above takes it */
        qj__next(j); /* the backslash */
        int e = qj__peek(j);
        unsigned char out[4];
        size_t n = 1;
        if (e == 'u') {
            unsigned u, lo;
            qj__next(j);
            if (qj__hex4(j, &u)) return -1;
            e = 0; /* no other escape follows */
            if (u >= 0xD800 && u <= 0xDBFF && qj__peek(j) == '\\') { /* the first half of a pair? */
                qj__next(j);
                if ((e = qj__peek(j)) == 'u') {
                    qj__next(j);
                    if (qj__hex4(j, &lo)) return -1;
                    e = 0;
                    if (lo >= 0xDC00 && lo <= 0xDFFF) u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                    else j->str_surrogate = 1;
                } else {
                    j->str_surrogate = 1; /* and e is an escape of its own */
                }
            } else if (u >= 0xD800 && u <= 0xDFFF) {
                j->str_surrogate = 1;
            }
            if (u == 0) j->str_nul = 1;
            if (u < 0x80) out[0] = (unsigned char)u;
            else if (u < 0x800) out[0] = (unsigned char)(0xC0 | u >> 6), out[1] = (unsigned char)(0x80 | (u & 63)), n = 2;
            else if (u < 0x10000)
                out[0] = (unsigned char)(0xE0 | u >> 12), out[1] = (unsigned char)(0x80 | ((u >> 6) & 63)),
                out[2] = (unsigned char)(0x80 | (u & 63)), n = 3;
            else
                out[0] = (unsigned char)(0xF0 | u >> 18), out[1] = (unsigned char)(0x80 | ((u >> 12) & 63)),
                out[2] = (unsigned char)(0x80 | ((u >> 6) & 63)), out[3] = (unsigned char)(0x80 | (u & 63)), n = 4;
            /* what is refused anyway (a NUL, a lone surrogate) is not kept */
            if (max && !j->str_surrogate && u && qj__keep(j, out, n, max)) return -1;
            if (!e) continue;
            n = 1;
        }
        switch (e) {
        case '"': case '\\': case '/': out[0] = (unsigned char)e; break;
        case 'b': out[0] = '\b'; break;
        case 'f': out[0] = '\f'; break;
        case 'n': out[0] = '\n'; break;
        case 'r': out[0] = '\r'; break;
        case 't': out[0] = '\t'; break;
        default: return qj__syntax(j, "a bad escape in a string");
        }
        qj__next(j);
        if (max && qj__keep(j, out, n, max)) return -1;
    }
}

/* A number at the current byte (JSON's grammar). *whole: written as an integer (no fraction,
   no exponent) that fits in int64, then *value holds it exactly. */
static int qj__number(qj *j, int64_t *value, int *whole)
{
    uint64_t mag = 0;
    int neg = 0, fits = 1;
    *whole = 0, *value = 0;
    if (qj__peek(j) == '-') neg = 1, qj__next(j);
    int c = qj__peek(j);
    if (c < '0' || c > '9') return qj__syntax(j, "a number needs a digit");
    if (c == '0') {
        qj__next(j);
        c = qj__peek(j);
        if (c >= '0' && c <= '9') return qj__syntax(j, "a number with a leading zero");
    }
    for (; c >= '0' && c <= '9'; c = qj__peek(j)) {
        const unsigned d = (unsigned)(c - '0');
        const uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        if (mag > (limit - d) / 10) fits = 0;
        else mag = mag * 10 + d;
        qj__next(j);
    }
    int integer = 1;
    if (c == '.') {
        integer = 0;
        qj__next(j);
        if ((c = qj__peek(j)) < '0' || c > '9') return qj__syntax(j, "a fraction needs a digit");
        while ((c = qj__peek(j)) >= '0' && c <= '9') qj__next(j);
    }
    if (c == 'e' || c == 'E') {
        integer = 0;
        qj__next(j);
        if ((c = qj__peek(j)) == '+' || c == '-') qj__next(j);
        if ((c = qj__peek(j)) < '0' || c > '9') return qj__syntax(j, "an exponent needs a digit");
        while ((c = qj__peek(j)) >= '0' && c <= '9') qj__next(j);
    }
    if (integer && fits) {
        *whole = 1;
        *value = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
    }
    return 0;
}

static int qj__literal(qj *j, const char *word)
{
    for (const char *p = word; *p; p++) {
        if (qj__peek(j) != *p) return qj__syntax(j, "an unknown word (not true, false or null)");
        qj__next(j);
    }
    return 0;
}

/* Any value at the current byte, checked and skipped: nothing is kept. Nesting is followed
   with one bit a level (1: inside an object), at most QUESTIONS_MAX_DEPTH levels. */
static int qj__skip(qj *j)
{
    unsigned char stack[(QUESTIONS_MAX_DEPTH + 7) / 8];
    int depth = 0;
    for (;;) {
        int c = qj__ws(j);
        /* a value */
        if (c == '{' || c == '[') {
            if (depth == QUESTIONS_MAX_DEPTH) return qj__syntax(j, "nested more than 1000 levels deep");
            if (c == '{') stack[depth / 8] |= (unsigned char)(1u << (depth % 8));
            else stack[depth / 8] &= (unsigned char)~(1u << (depth % 8));
            depth++;
            qj__next(j);
            c = qj__ws(j);
            if (c == (stack[(depth - 1) / 8] >> ((depth - 1) % 8) & 1 ? '}' : ']')) {
                qj__next(j), depth--;
            } else {
                if (stack[(depth - 1) / 8] >> ((depth - 1) % 8) & 1) { /* the first key */
                    if (c != '"') return qj__syntax(j, "expected a string key");
                    if (qj__string(j, 0) || qj__expect(j, ':', "expected ':' after a key")) return -1;
                }
                continue;
            }
        } else if (c == '"') {
            if (qj__string(j, 0)) return -1;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            int64_t v;
            int whole;
            if (qj__number(j, &v, &whole)) return -1;
        } else if (c == 't' || c == 'f' || c == 'n') {
            if (qj__literal(j, c == 't' ? "true" : c == 'f' ? "false" : "null")) return -1;
        } else {
            return qj__syntax(j, c < 0 ? "the file ends where a value should be" : "expected a value");
        }
        /* after a value: the end of its containers, or the next member */
        for (;;) {
            if (depth == 0) return 0;
            const int in_object = stack[(depth - 1) / 8] >> ((depth - 1) % 8) & 1;
            c = qj__ws(j);
            if (c == ',') {
                qj__next(j);
                if (in_object) {
                    if (qj__ws(j) != '"') return qj__syntax(j, "expected a string key");
                    if (qj__string(j, 0) || qj__expect(j, ':', "expected ':' after a key")) return -1;
                }
                break;
            }
            if (c != (in_object ? '}' : ']')) return qj__syntax(j, in_object ? "expected ',' or '}'" : "expected ',' or ']'");
            qj__next(j), depth--;
        }
    }
}

/* a key (up to STORE_MAX_ID bytes kept, *long_key beyond) and its ':' */
static int qj__key(qj *j, char *key, int *long_key)
{
    if (qj__ws(j) != '"') return qj__syntax(j, "expected a string key");
    if (qj__string(j, STORE_MAX_ID)) return -1;
    *long_key = j->str_over || j->str_nul || j->str_surrogate; /* then it matches no name */
    memcpy(key, j->str ? j->str : "", j->str_len + 1 > STORE_MAX_ID + 1 ? STORE_MAX_ID + 1 : j->str_len + 1);
    key[j->str_len < STORE_MAX_ID ? j->str_len : STORE_MAX_ID] = 0;
    return qj__expect(j, ':', "expected ':' after a key");
}

/* after a member: 1 and the ',' read, 0 at the closing byte (read), -1 on anything else */
static int qj__more(qj *j, int close)
{
    const int c = qj__ws(j);
    qj__next(j);
    if (c == ',') return 1;
    if (c == close) return 0;
    j->pos--; /* point at it in the message */
    return qj__syntax(j, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
}

/* ---- the questions ------------------------------------------------------------------------- */

typedef struct {
    qj j;
    int pass;                       /* 1: check and count; 2: fill */
    int format;                     /* pass 2: what pass 1 found */
    /* pass 1 */
    size_t vqa_count, vqa_text, gqa_count, gqa_text, gqa_good;
    int saw_questions, gqa_bad;
    char gqa_why[400];              /* why the first member that is not a GQA question is not */
    /* pass 2 */
    vqa_questions *out;
    size_t filled;
    char *text_at, *text_end;
} questions__pass;

static int questions__changed(questions__pass *p)
{
    return qj__error(&p->j, "the file changed while it was being read");
}

/* a string of the output (pass 2), appended; NULL when the file changed under us */
static const char *questions__put(questions__pass *p, const char *s, size_t n)
{
    if ((size_t)(p->text_end - p->text_at) < n + 1) return NULL;
    char *at = p->text_at;
    memcpy(at, s, n);
    at[n] = 0;
    p->text_at += n + 1;
    return at;
}

/* the next question of the output (pass 2); NULL when there is no room */
static vqa_question *questions__slot(questions__pass *p)
{
    if (p->filled >= p->out->count) return NULL;
    vqa_question *q = &p->out->items[p->filled++];
    memset(q, 0, sizeof *q);
    return q;
}

enum { QF_MISSING, QF_BAD, QF_OK };

/* why a string just read cannot be kept, or "" */
static void questions__string_rule(const qj *j, size_t max, char *why, size_t whylen)
{
    if (j->str_over) snprintf(why, whylen, "is longer than %zu bytes", max);
    else if (j->str_nul) snprintf(why, whylen, "holds a NUL (\\u0000)");
    else if (j->str_surrogate) snprintf(why, whylen, "holds a lone surrogate escape");
    else why[0] = 0;
}

/* s as a message may show it: bytes outside printable ASCII as '?', "..." after STORE_MAX_ID */
static const char *questions__shown(const char *s, int cut, char *out)
{
    size_t n = 0;
    for (; s[n] && n < STORE_MAX_ID; n++) out[n] = s[n] >= 0x20 && s[n] < 0x7f ? s[n] : '?';
    strcpy(out + n, cut || s[n] ? "..." : "");
    return out;
}

/* the index of key among names (n of them), or n */
static int questions__field(const char *key, int long_key, const char *const *names, int n)
{
    int k = 0;
    while (k < n && (long_key || strcmp(key, names[k]))) k++;
    return k;
}

/* One object of VQA's "questions" array, at its '{' (i: its index). Every error stops the parse. */
static int questions__vqa_item(questions__pass *p, size_t i)
{
    qj *j = &p->j;
    static const char *const names[3] = {"question_id", "image_id", "question"};
    int state[3] = {QF_MISSING, QF_MISSING, QF_MISSING};
    int64_t ids[2] = {0, 0};
    char key[STORE_MAX_ID + 1], why[160] = "";
    const char *text = "";
    size_t text_len = 0;
    int long_key;
    qj__next(j);
    if (qj__ws(j) == '}') qj__next(j);
    else
        for (;;) {
            if (qj__key(j, key, &long_key)) return -1;
            const int k = questions__field(key, long_key, names, 3);
            if (k < 3 && state[k] != QF_MISSING) return qj__error(j, "questions[%zu]: \"%s\" appears twice", i, names[k]);
            const int c = qj__ws(j);
            if (k < 2 && (c == '-' || (c >= '0' && c <= '9'))) {
                int whole;
                if (qj__number(j, &ids[k], &whole)) return -1;
                state[k] = whole ? QF_OK : QF_BAD;
            } else if (k == 2 && c == '"') {
                if (qj__string(j, QUESTIONS_MAX_TEXT)) return -1;
                questions__string_rule(j, QUESTIONS_MAX_TEXT, why, sizeof why);
                state[k] = why[0] ? QF_BAD : QF_OK;
                text_len = j->str_len;
                if (p->pass == 2 && state[k] == QF_OK && !(text = questions__put(p, j->str ? j->str : "", text_len)))
                    return questions__changed(p);
            } else {
                if (k < 3) state[k] = QF_BAD;
                if (qj__skip(j)) return -1;
            }
            const int more = qj__more(j, '}');
            if (more < 0) return -1;
            if (!more) break;
        }
    if (state[0] != QF_OK)
        return qj__error(j, "questions[%zu]: \"question_id\" is missing or not a whole number (a JSON integer of "
                         "64 bits)", i);
    if (state[1] != QF_OK)
        return qj__error(j, "questions[%zu] (question %lld): \"image_id\" is missing or not a whole number (a JSON "
                         "integer of 64 bits)", i, (long long)ids[0]);
    if (state[2] != QF_OK)
        return qj__error(j, "questions[%zu] (question %lld): \"question\" is missing or not a string%s%s", i,
                         (long long)ids[0], why[0] ? ": it " : "", why);
    char qkey[24], ikey[24];
    const int nq = snprintf(qkey, sizeof qkey, "%lld", (long long)ids[0]);
    const int ni = snprintf(ikey, sizeof ikey, "%lld", (long long)ids[1]);
    if (p->pass == 1) {
        p->vqa_count++;
        p->vqa_text += (size_t)nq + 1 + (size_t)ni + 1 + text_len + 1;
        return 0;
    }
    vqa_question *q = questions__slot(p);
    if (!q) return questions__changed(p);
    q->question_id = ids[0], q->image_id = ids[1];
    q->question = text;
    if (!(q->question_key = questions__put(p, qkey, (size_t)nq)) || !(q->image_key = questions__put(p, ikey, (size_t)ni)))
        return questions__changed(p);
    return 0;
}

/* VQA's "questions" array, at its '[' */
static int questions__vqa_list(questions__pass *p)
{
    qj *j = &p->j;
    qj__next(j);
    if (qj__ws(j) == ']') return qj__next(j), 0;
    for (size_t i = 0;; i++) {
        if (qj__ws(j) != '{') {
            if (qj__skip(j)) return -1; /* malformed JSON says so first */
            return qj__error(j, "questions[%zu] is not an object", i);
        }
        if (questions__vqa_item(p, i)) return -1;
        const int more = qj__more(j, ']');
        if (more < 0) return -1;
        if (!more) return 0;
    }
}

/* One member of a GQA file, at its value (key: the question id). What is not a question is
   noted, not an error: the file may be VQA's, whose other keys are skipped. */
static int questions__gqa_item(questions__pass *p, const char *key, int long_key)
{
    qj *j = &p->j;
    static const char *const names[3] = {"imageId", "question", "answer"};
    static const size_t max[3] = {STORE_MAX_ID, QUESTIONS_MAX_TEXT, QUESTIONS_MAX_TEXT};
    int state[3] = {QF_MISSING, QF_MISSING, QF_MISSING};
    const char *kept[3] = {NULL, NULL, NULL};
    size_t kept_len[3] = {0, 0, 0};
    char why[400] = "", sub[160], fkey[STORE_MAX_ID + 1], shown[STORE_MAX_ID + 4], shown_id[STORE_MAX_ID + 4];
    int flong;
    const size_t index = p->pass == 1 ? p->gqa_count : p->filled;
    const int key_ok = !long_key && store_id_check(key, strlen(key));
    questions__shown(key, long_key, shown);
    key = shown; /* messages show the key; qkey below keeps it */
    const char *qkey = NULL;
    if (p->pass == 2 && (!key_ok || !(qkey = questions__put(p, shown, strlen(shown))))) return questions__changed(p);
    if (qj__ws(j) != '{') {
        if (qj__skip(j)) return -1;
        snprintf(why, sizeof why, "\"%s\" (member %zu) is not a question object", key, index);
    } else {
        qj__next(j);
        if (qj__ws(j) == '}') qj__next(j);
        else
            for (;;) {
                if (qj__key(j, fkey, &flong)) return -1;
                const int k = questions__field(fkey, flong, names, 3);
                if (k < 3 && state[k] != QF_MISSING && !why[0])
                    snprintf(why, sizeof why, "question %s: \"%s\" appears twice", key, names[k]);
                const int c = qj__ws(j);
                if (k < 3 && c == '"') {
                    if (qj__string(j, max[k])) return -1;
                    const char *str = j->str ? j->str : "";
                    questions__string_rule(j, max[k], sub, sizeof sub);
                    if (!sub[0] && k == 0 && !store_id_check(str, j->str_len))
                        snprintf(sub, sizeof sub, "'%s' is not 1 to %d letters, digits, '_', '-' or '.'",
                                 questions__shown(str, 0, shown_id), STORE_MAX_ID);
                    if (sub[0] && !why[0]) snprintf(why, sizeof why, "question %s: \"%s\" %s", key, names[k], sub);
                    state[k] = sub[0] ? QF_BAD : QF_OK;
                    kept_len[k] = j->str_len;
                    if (p->pass == 2 && state[k] == QF_OK && !(kept[k] = questions__put(p, str, j->str_len)))
                        return questions__changed(p);
                } else {
                    if (k < 3 && !(k == 2 && c == 'n')) state[k] = QF_BAD; /* "answer": null is no answer */
                    if (qj__skip(j)) return -1;
                }
                const int more = qj__more(j, '}');
                if (more < 0) return -1;
                if (!more) break;
            }
        if (!why[0] && !key_ok)
            snprintf(why, sizeof why, "the question id \"%s\" (member %zu) is not 1 to %d letters, digits, '_', '-' "
                     "or '.'", key, index, STORE_MAX_ID);
        for (int k = 0; k < 3 && !why[0]; k++)
            if ((k < 2 && state[k] == QF_MISSING) || state[k] == QF_BAD)
                snprintf(why, sizeof why, "question %s: \"%s\" is %s", key, names[k],
                         state[k] == QF_MISSING ? "missing" : "not a string");
    }
    if (p->pass == 1) {
        if (why[0] && !p->gqa_bad) p->gqa_bad = 1, snprintf(p->gqa_why, sizeof p->gqa_why, "%s", why);
        if (!p->gqa_bad) p->gqa_good++;
        p->gqa_count++;
        p->gqa_text += strlen(key) + 1 + kept_len[0] + 1 + kept_len[1] + 1 + (state[2] == QF_OK ? kept_len[2] + 1 : 0);
        return 0;
    }
    vqa_question *q = why[0] ? NULL : questions__slot(p); /* pass 1 found no fault: the file changed */
    if (!q) return questions__changed(p);
    q->question_key = qkey, q->image_key = kept[0], q->question = kept[1], q->answer = kept[2];
    return 0;
}

/* The whole document, in either pass. */
static int questions__document(questions__pass *p)
{
    qj *j = &p->j;
    char key[STORE_MAX_ID + 1];
    int long_key;
    if (qj__ws(j) != '{') {
        if (qj__skip(j)) return -1; /* malformed JSON says so first */
        return qj__error(j, "expected an object with a \"questions\" array (a VQA questions file) or of questions by "
                         "id (a GQA questions file)");
    }
    qj__next(j);
    if (qj__ws(j) == '}') qj__next(j);
    else
        for (;;) {
            if (qj__key(j, key, &long_key)) return -1;
            const int questions = !long_key && !strcmp(key, "questions") && qj__ws(j) == '[';
            if (questions && p->pass == 1 && p->saw_questions++) return qj__error(j, "two \"questions\" arrays");
            if (questions && (p->pass == 1 || p->format == QUESTIONS_VQA)) {
                if (questions__vqa_list(p)) return -1;
            } else if (p->pass == 1 || p->format == QUESTIONS_GQA) {
                if (questions__gqa_item(p, key, long_key)) return -1;
            } else if (qj__skip(j)) {
                return -1;
            }
            const int more = qj__more(j, '}');
            if (more < 0) return -1;
            if (!more) break;
        }
    if (qj__ws(j) >= 0) return qj__syntax(j, "more after the end of the JSON object");
    return j->failed ? -1 : 0;
}

void vqa_questions_free(vqa_questions *qs)
{
    if (!qs) return;
    free(qs->items), free(qs->text);
    memset(qs, 0, sizeof *qs);
}

/* question ids by length, then bytes; the same id in file order */
static int questions__key_cmp(const void *a, const void *b)
{
    const vqa_question *x = *(const vqa_question *const *)a, *y = *(const vqa_question *const *)b;
    const size_t nx = strlen(x->question_key), ny = strlen(y->question_key);
    if (nx != ny) return nx < ny ? -1 : 1;
    const int c = memcmp(x->question_key, y->question_key, nx);
    return c ? c : x < y ? -1 : 1;
}

/* every question id once (a results file holds each question once) */
static int questions__unique(const vqa_questions *qs, const char *name, char *err, size_t errlen)
{
    const vqa_question **order = (const vqa_question **)malloc(qs->count * sizeof *order);
    if (!order) return util_fail(err, errlen, "%s: out of memory for %zu questions", name, qs->count);
    for (size_t i = 0; i < qs->count; i++) order[i] = &qs->items[i];
    qsort(order, qs->count, sizeof *order, questions__key_cmp);
    int rc = 0;
    for (size_t i = 1; i < qs->count && !rc; i++) {
        const size_t a = (size_t)(order[i - 1] - qs->items), b = (size_t)(order[i] - qs->items);
        if (strcmp(order[i - 1]->question_key, order[i]->question_key)) continue;
        if (qs->format == QUESTIONS_VQA)
            rc = util_fail(err, errlen, "%s: question_id %s appears twice (questions[%zu] and questions[%zu]); a "
                                 "results file holds each question once", name, order[i]->question_key, a, b);
        else
            rc = util_fail(err, errlen, "%s: question %s appears twice (members %zu and %zu)", name,
                                 order[i]->question_key, a, b);
    }
    free(order);
    return rc;
}

/* Both passes over one input (rewound in between); j holds the source. */
static int questions__read(qj *src, vqa_questions *out, vqa_question_fn each, void *data)
{
    questions__pass p;
    memset(&p, 0, sizeof p);
    p.j = *src;
    p.pass = 1;
    int rc = questions__document(&p);
    char *err = p.j.err;
    const size_t errlen = p.j.errlen;
    const char *name = p.j.name;
    if (rc == 0) {
        if (p.saw_questions) p.format = QUESTIONS_VQA;
        else if (p.gqa_bad)
            rc = p.gqa_good ? util_fail(err, errlen, "%s: %s", name, p.gqa_why)
                            : util_fail(err, errlen, "%s: expected an object with a \"questions\" array (a VQA "
                                              "questions file) or of questions by id (a GQA questions file): %s", name,
                                              p.gqa_why);
        else p.format = QUESTIONS_GQA;
    }
    const size_t count = p.format == QUESTIONS_VQA ? p.vqa_count : p.gqa_count;
    const size_t text = p.format == QUESTIONS_VQA ? p.vqa_text : p.gqa_text;
    if (rc == 0 && count == 0)
        rc = util_fail(err, errlen, p.format == QUESTIONS_VQA ? "%s: the \"questions\" array is empty"
                                                                    : "%s: the file holds no questions", name);
    if (rc == 0) {
        out->items = (vqa_question *)calloc(count, sizeof(vqa_question));
        out->text = (char *)malloc(text ? text : 1);
        if (!out->items || !out->text) rc = util_fail(err, errlen, "%s: out of memory for %zu questions", name,
                                                            count);
        out->count = count;
        out->format = p.format;
    }
    if (rc == 0) { /* pass 2: the same bytes again, into arrays of exactly the size pass 1 counted */
        char *str = p.j.str;
        const size_t str_cap = p.j.str_cap;
        const int format = p.format;
        memset(&p, 0, sizeof p);
        p.j = *src;
        p.j.str = str, p.j.str_cap = str_cap;
        p.pass = 2, p.format = format, p.out = out;
        p.text_at = out->text, p.text_end = out->text + text;
        if (p.j.f && fseek(p.j.f, 0, SEEK_SET) != 0) rc = util_fail(err, errlen, "%s: cannot read it again", name);
        else if ((rc = questions__document(&p)) == 0 && (p.filled != count || p.text_at != p.text_end))
            rc = questions__changed(&p);
    }
    free(p.j.str);
    if (rc == 0) rc = questions__unique(out, name, err, errlen);
    for (size_t i = 0; rc == 0 && each && i < out->count; i++) rc = each(data, out, i, err, errlen) ? -1 : 0;
    if (rc) vqa_questions_free(out);
    return rc;
}

int vqa_questions_parse(const void *buf, size_t n, const char *name, vqa_questions *out, vqa_question_fn each,
                        void *data, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    qj j;
    memset(&j, 0, sizeof j);
    j.mem = (const unsigned char *)(buf ? buf : "");
    j.buf = (unsigned char *)j.mem, j.len = buf ? n : 0, j.size = j.len; /* all of it at hand */
    j.name = name, j.err = err, j.errlen = errlen;
    return questions__read(&j, out, each, data);
}

int vqa_questions_load(const char *path, vqa_questions *out, vqa_question_fn each, void *data, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof *out);
    unsigned long long size;
    const int fd = util_open_file(path, &size, err, errlen); /* read twice: a regular file */
    if (fd < 0) return -1;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return util_fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    }
    qj j;
    memset(&j, 0, sizeof j);
    j.f = f, j.size = (uint64_t)size;
    j.name = path, j.err = err, j.errlen = errlen;
    if (!(j.buf = (unsigned char *)malloc(QUESTIONS_CHUNK))) {
        fclose(f);
        return util_fail(err, errlen, "%s: out of memory", path);
    }
    int rc = questions__read(&j, out, each, data);
    free(j.buf);
    fclose(f);
    return rc;
}

#endif /* QUESTIONS_IMPLEMENTATION */
