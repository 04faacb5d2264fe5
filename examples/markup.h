/* markup.h - Flickr30k Entities sentences: the markup of one line, and the entities and
   positions the reference (jnhwkim/ban-vqa) and the official utilities
   (BryanPlummer/flickr30k_entities) read in it, as `ban ground` does (examples/cmd_ground.c,
   whose top comment says what each rule follows).

   markup_parse_line(line, len, &g, err, errlen)
       one line of a Sentences file (valid UTF-8 without NUL: markup_check_line first), e.g.
       "[/EN#1/people A man] in [/EN#2/clothing a red shirt] ."; 0, or -1 with a message (no
       location). Whatever it returns, markup_line_free(&g) frees it. On success:
         g.sent       the line, stripped (str.strip)
         g.sentence   the words the tokenizer reads: re.sub(r'\[[^ ]+ ', '', sent).replace(']', '')
         g.ent[0 .. n_ent)  in order: chain (the reference's int() of the digits after "/EN#"),
                      phrase_id (those digits as written: the official utilities'), info and
                      phrase (the markup split at its first space), first_word_index (the
                      official utilities': whitespace words, markup removed) and position (the
                      reference's: the index of the last word of the first occurrence of the
                      phrase's words in g.sentence split on single spaces; always found)
   markup_check_line(line, len, err, errlen)   no NUL, valid UTF-8 (as Python's strict decoder), at
                                  most MARKUP_MAX_LINE bytes (entities cost time in proportion to the
                                  words they search, so a line is bounded)
   markup_utf8_check(s, n)        n, or the offset of the first byte that is not valid UTF-8
   markup_py_strip(s, n, &a, &b)  str.strip(): s[a, b) without Python's whitespace at its ends
   markup_py_int(s, &v)           Python's int() of a text (ASCII digits, at most 18): 1, or 0
   markup_read_file(path, &size, err, errlen)  a whole file, NUL-terminated (malloc'd), or NULL
   markup_lines r = {buf, size, 0, 0};  markup_next_line(&r, &line, &len)
                                  lines as Python's text mode reads them ("\n", "\r\n", "\r")

   Define MARKUP_IMPLEMENTATION in exactly one C file (in build/ban: examples/cmd_ground.c). */
#ifndef MARKUP_H_INCLUDED
#define MARKUP_H_INCLUDED
#include <stddef.h>
#include <stdint.h>

#define MARKUP_ID 32 /* bytes of a chain id as written, NUL included */
#define MARKUP_MAX_LINE 16384 /* bytes of a line (Flickr30k's longest sentence has a few hundred) */

/* lines as Python's text mode reads them: "\n", "\r\n" and "\r" all end a line */
typedef struct {
    const char *buf;
    size_t n, at;
    long lineno;
} markup_lines;

typedef struct {
    int64_t chain;                /* the reference's int() of the digits after "/EN#" */
    char phrase_id[MARKUP_ID];    /* the official utilities' phrase_id: those digits as written */
    const char *info, *phrase;    /* the markup split at its first space: "/EN#1/people", "A man" */
    int first_word_index;         /* the official utilities': whitespace words, markup removed */
    int position;                 /* the reference's: utils.py find_sublist's last word */
    int grounded;                 /* for the caller (ban ground: the chain has a box); 0 here */
} markup_entity;

typedef struct {
    char *sent;                   /* the line, stripped */
    char *sentence;               /* without markup: what the tokenizer reads */
    char *marks;                  /* a copy of sent, cut into the entities' info and phrase */
    markup_entity *ent;
    int n_ent;
} markup_line;

size_t markup_utf8_check(const unsigned char *s, size_t n);
void markup_py_strip(const char *s, size_t n, size_t *a, size_t *b);
int markup_py_int(const char *s, int64_t *out);
char *markup_read_file(const char *path, size_t *size, char *err, size_t errlen);
int markup_next_line(markup_lines *r, const char **line, size_t *len);
int markup_check_line(const char *line, size_t len, char *err, size_t errlen);
int markup_parse_line(const char *line, size_t len, markup_line *g, char *err, size_t errlen);
void markup_line_free(markup_line *g);

#endif /* MARKUP_H_INCLUDED */

#if defined(MARKUP_IMPLEMENTATION) && !defined(MARKUP__IMPLEMENTED)
#define MARKUP__IMPLEMENTED
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int markup__fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- text: UTF-8 and Python's whitespace ------------------------------------------------- */

/* n if s[0..n) is UTF-8 as Python's strict decoder takes it, else the offset of the first bad byte */
size_t markup_utf8_check(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const unsigned c = s[i];
        size_t need;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c >= 0xE0 && c <= 0xEF) need = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        else if (c >= 0xF0 && c <= 0xF4) need = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        else return i;
        if (n - i <= need || s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80) return i;
        i += need + 1;
    }
    return n;
}

/* bytes of the whitespace character at s (str.isspace in Python 3), 0 if it is not one;
   s holds valid UTF-8 with n > 0 bytes left */
static int markup__space_len(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    uint32_t c;
    int len;
    if (s[0] < 0x80) c = s[0], len = 1;
    else if (s[0] < 0xE0 && n >= 2) c = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F), len = 2;
    else if (s[0] < 0xF0 && n >= 3)
        c = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F), len = 3;
    else return 0; /* four-byte characters are never whitespace */
    int space = (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
                (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
                c == 0x3000;
    return space ? len : 0;
}

static size_t markup__char_len(const char *s, size_t n)
{
    const unsigned char c = (unsigned char)s[0];
    size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    return len < n ? len : n;
}

/* str.strip(): the bounds [*a, *b) of s without leading and trailing whitespace */
void markup_py_strip(const char *s, size_t n, size_t *a, size_t *b)
{
    size_t lo = 0, hi = n;
    int l;
    while (lo < hi && (l = markup__space_len(s + lo, hi - lo))) lo += (size_t)l;
    while (hi > lo) {
        size_t c = hi - 1;
        while (c > lo && ((unsigned char)s[c] & 0xC0) == 0x80) c--;
        if (!markup__space_len(s + c, hi - c)) break;
        hi = c;
    }
    *a = lo, *b = hi;
}

typedef struct {
    const char *p;
    size_t n;
} markup__span;

/* the next token of str.split() (runs of whitespace separate); 0 at the end */
static int markup__next_word(const char *s, size_t n, size_t *at, markup__span *w)
{
    int l;
    while (*at < n && (l = markup__space_len(s + *at, n - *at))) *at += (size_t)l;
    if (*at >= n) return 0;
    const size_t start = *at;
    while (*at < n && !markup__space_len(s + *at, n - *at)) *at += markup__char_len(s + *at, n - *at);
    w->p = s + start, w->n = *at - start;
    return 1;
}

/* str.split(' '): every single space separates, empty pieces are kept; NULL when out of memory */
static markup__span *markup__split_spaces(const char *s, int *count)
{
    size_t n = strlen(s), pieces = 1;
    for (size_t i = 0; i < n; i++) pieces += s[i] == ' ';
    markup__span *out = (markup__span *)malloc(pieces * sizeof(markup__span));
    if (!out) return NULL;
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= n; i++)
        if (i == n || s[i] == ' ') {
            out[k].p = s + start, out[k].n = i - start, k++;
            start = i + 1;
        }
    *count = (int)k;
    return out;
}

/* utils.py find_sublist: the index of the last element of the first occurrence of sub in arr, or -1 */
static int markup__same(const markup__span *a, const markup__span *b)
{
    return a->n == b->n && !memcmp(a->p, b->p, a->n);
}

/* (Knuth-Morris-Pratt, m >= 1: linear where the reference's scan is quadratic, with the same
   answer; -2 when out of memory) */
static int markup__find_sublist(const markup__span *arr, int n, const markup__span *sub, int m)
{
    int *next = (int *)malloc((size_t)m * sizeof(int)); /* next[j]: the longest proper border of sub[0..j] */
    if (!next) return -2;
    next[0] = 0;
    for (int j = 1, k = 0; j < m; j++) {
        while (k > 0 && !markup__same(&sub[j], &sub[k])) k = next[k - 1];
        if (markup__same(&sub[j], &sub[k])) k++;
        next[j] = k;
    }
    int found = -1;
    for (int i = 0, k = 0; i < n; i++) {
        while (k > 0 && !markup__same(&arr[i], &sub[k])) k = next[k - 1];
        if (markup__same(&arr[i], &sub[k])) k++;
        if (k == m) {
            found = i;
            break;
        }
    }
    free(next);
    return found;
}

/* utils.py remove_annotations: re.sub(r'\[[^ ]+ ', '', s).replace(']', '') */
static char *markup__remove_annotations(const char *s)
{
    const size_t n = strlen(s);
    char *out = (char *)malloc(n + 1);
    size_t o = 0;
    if (!out) return NULL;
    for (size_t i = 0; i < n;) {
        if (s[i] == '[' && i + 1 < n && s[i + 1] != ' ') {
            /* [^ ]+ takes every non-space, so the match needs a space after the run */
            const char *sp = (const char *)memchr(s + i + 1, ' ', n - i - 1);
            if (sp) {
                i = (size_t)(sp - s) + 1;
                continue;
            }
        }
        if (s[i] != ']') out[o++] = s[i];
        i++;
    }
    out[o] = 0;
    return out;
}

/* Python's int() of a text: surrounding whitespace, a sign, digits with single underscores
   between them (ASCII digits only); 0 when it is not one or needs more than 18 digits */
int markup_py_int(const char *s, int64_t *out)
{
    size_t a, b, digits = 0;
    markup_py_strip(s, strlen(s), &a, &b);
    int neg = 0;
    if (a < b && (s[a] == '+' || s[a] == '-')) neg = s[a++] == '-';
    if (a >= b || s[a] < '0' || s[a] > '9' || s[b - 1] == '_') return 0;
    int64_t v = 0;
    for (size_t i = a; i < b; i++) {
        if (s[i] == '_' && s[i - 1] != '_') continue;
        if (s[i] < '0' || s[i] > '9' || ++digits > 18) return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return 1;
}

/* ---- files -------------------------------------------------------------------------------- */

/* the whole file, NUL-terminated; NULL with a message in err */
char *markup_read_file(const char *path, size_t *size, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) return markup__fail(err, errlen, "%s: cannot open: %s", path, strerror(errno)), NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 1 >= cap) {
            cap = cap ? cap * 2 : 65536;
            char *b = (char *)realloc(buf, cap);
            if (!b) return free(buf), fclose(f), markup__fail(err, errlen, "%s: out of memory", path), NULL;
            buf = b;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) return free(buf), markup__fail(err, errlen, "%s: read error", path), NULL;
    buf[n] = 0;
    *size = n;
    return buf;
}

int markup_next_line(markup_lines *r, const char **line, size_t *len)
{
    if (r->at >= r->n) return 0;
    size_t i = r->at;
    while (i < r->n && r->buf[i] != '\n' && r->buf[i] != '\r') i++;
    *line = r->buf + r->at;
    *len = i - r->at;
    if (i + 1 < r->n && r->buf[i] == '\r' && r->buf[i + 1] == '\n') i++;
    r->at = i + 1;
    r->lineno++;
    return 1;
}

/* a line fit to parse: no NUL, valid UTF-8; 0 or -1 with a message (no location) */
int markup_check_line(const char *line, size_t len, char *err, size_t errlen)
{
    if (len > MARKUP_MAX_LINE)
        return markup__fail(err, errlen, "a line of %zu bytes, longer than a sentence may be (%d)", len,
                            MARKUP_MAX_LINE);
    if (memchr(line, 0, len)) return markup__fail(err, errlen, "NUL byte in the line");
    size_t bad = markup_utf8_check((const unsigned char *)line, len);
    if (bad < len) return markup__fail(err, errlen, "not valid UTF-8 (byte %zu of the line)", bad + 1);
    return 0;
}

/* ---- sentences: the entities of one line -------------------------------------------------------- */

void markup_line_free(markup_line *g)
{
    free(g->sent), free(g->sentence), free(g->marks), free(g->ent);
    memset(g, 0, sizeof *g);
}

/* Parse one line (valid UTF-8, no NUL) both ways; 0, or -1 with a message (no location). */
int markup_parse_line(const char *line, size_t len, markup_line *g, char *err, size_t errlen)
{
    memset(g, 0, sizeof *g);
    size_t a, b;
    markup_py_strip(line, len, &a, &b);
    const size_t n = b - a;
    size_t brackets = 0;
    for (size_t i = a; i < b; i++) brackets += line[i] == '[';
    g->sent = (char *)malloc(n + 1);
    g->marks = (char *)malloc(n + 1);
    g->ent = (markup_entity *)calloc(brackets ? brackets : 1, sizeof(markup_entity));
    if (!g->sent || !g->marks || !g->ent) return markup__fail(err, errlen, "out of memory");
    memcpy(g->sent, line + a, n), g->sent[n] = 0;
    memcpy(g->marks, line + a, n), g->marks[n] = 0;
    const char *s = g->sent;

    /* 1. the official utilities (get_sentence_data), with tools/flickr30k.py's checks: a
          whitespace token starting with '[' opens a phrase, the next one ending in ']' closes it */
    int words = 0, n_off = 0, open = 0;
    size_t at = 0;
    markup__span w;
    while (markup__next_word(s, n, &at, &w)) {
        if (open) {
            if (w.n >= 5 && !memcmp(w.p, "[/EN#", 5))
                return markup__fail(err, errlen, "phrase '%.*s' opened inside the phrase of chain %s (nested markup)",
                                    (int)w.n, w.p, g->ent[n_off - 1].phrase_id);
            if (w.p[w.n - 1] == ']') open = 0;
            words++;
            continue;
        }
        if (w.p[0] != '[') {
            words++;
            continue;
        }
        const char *p1 = w.p + 2, *slash = w.n > 2 ? (const char *)memchr(p1, '/', w.n - 2) : NULL;
        const size_t l1 = w.n < 2 ? 0 : slash ? (size_t)(slash - p1) : w.n - 2; /* parts[1]: "EN#<chain>" */
        if (w.n < 5 || memcmp(w.p, "[/EN#", 5) || l1 <= 3)
            return markup__fail(err, errlen, "malformed phrase markup '%.*s' (expected '[/EN#<chain>/<type>...')",
                                (int)w.n, w.p);
        if (w.p[w.n - 1] == ']')
            return markup__fail(err, errlen, "phrase markup '%.*s' closes before any word", (int)w.n, w.p);
        if (l1 - 3 >= MARKUP_ID)
            return markup__fail(err, errlen, "chain id '%.*s' is too long", (int)(l1 - 3), p1 + 3);
        if ((size_t)n_off >= brackets) return markup__fail(err, errlen, "internal error: more phrases than brackets");
        memcpy(g->ent[n_off].phrase_id, p1 + 3, l1 - 3);
        g->ent[n_off].phrase_id[l1 - 3] = 0;
        g->ent[n_off].first_word_index = words;
        n_off++;
        open = 1;
    }
    if (open)
        return markup__fail(err, errlen, "unclosed bracket: the phrase of chain %s starting at word %d has no closing "
                            "']'", g->ent[n_off - 1].phrase_id, g->ent[n_off - 1].first_word_index);

    /* 2. the reference: re.findall(r'\[(.*?)\]', sent), each split once at a space, the chain
          from re.findall(r'\/EN\#(\d+)', info)[0] */
    char *m = g->marks;
    int n_ref = 0;
    for (size_t i = 0; i < n; i++) {
        if (m[i] != '[') continue;
        char *close = (char *)memchr(m + i + 1, ']', n - i - 1);
        if (!close) break;
        *close = 0;
        char *info = m + i + 1, *space = strchr(info, ' ');
        if (!space)
            return markup__fail(err, errlen, "markup '[%s]' has no space between the chain and the phrase", info);
        *space = 0;
        const char *d = info;
        while ((d = strstr(d, "/EN#")) && !(d[4] >= '0' && d[4] <= '9')) d++;
        if (!d) return markup__fail(err, errlen, "markup '[%s %s]' has no chain id ('/EN#<digits>')", info, space + 1);
        d += 4;
        size_t nd = 0;
        int64_t chain = 0;
        for (; d[nd] >= '0' && d[nd] <= '9'; nd++)
            if (nd < 18) chain = chain * 10 + (d[nd] - '0'); /* (more digits are refused below) */
        if (nd > 18) return markup__fail(err, errlen, "chain id '%.*s' is too long", (int)nd, d);
        if (n_ref >= n_off || strlen(g->ent[n_ref].phrase_id) != nd || memcmp(g->ent[n_ref].phrase_id, d, nd))
            return markup__fail(err, errlen, "markup '[%s %s]' reads differently to the reference (chain %.*s) and to "
                                "the official utilities (%s)", info, space + 1, (int)nd, d,
                                n_ref < n_off ? g->ent[n_ref].phrase_id : "no such phrase");
        g->ent[n_ref].chain = chain;
        g->ent[n_ref].info = info;
        g->ent[n_ref].phrase = space + 1;
        n_ref++;
        i = (size_t)(close - m);
    }
    if (n_ref != n_off)
        return markup__fail(err, errlen, "the reference finds %d entities in this line, the official utilities %d "
                            "phrases", n_ref, n_off);
    g->n_ent = n_ref;

    /* 3. the sentence the tokenizer reads, and each entity's position in it */
    g->sentence = markup__remove_annotations(s);
    if (!g->sentence) return markup__fail(err, errlen, "out of memory");
    int n_words;
    markup__span *words_sp = markup__split_spaces(g->sentence, &n_words);
    if (!words_sp) return markup__fail(err, errlen, "out of memory");
    for (int k = 0; k < g->n_ent; k++) {
        int n_sub;
        markup__span *sub = markup__split_spaces(g->ent[k].phrase, &n_sub);
        if (!sub) return free(words_sp), markup__fail(err, errlen, "out of memory");
        g->ent[k].position = markup__find_sublist(words_sp, n_words, sub, n_sub);
        free(sub);
        if (g->ent[k].position == -2) return free(words_sp), markup__fail(err, errlen, "out of memory");
        if (g->ent[k].position < 0) {
            free(words_sp);
            return markup__fail(err, errlen, "phrase '%s' (chain %s) is not in the sentence once the markup is "
                                "removed ('%s'); the reference asserts here", g->ent[k].phrase, g->ent[k].phrase_id,
                                g->sentence);
        }
    }
    free(words_sp);
    return 0;
}

#endif /* MARKUP_IMPLEMENTATION */
