/* fuzz_markup.c - the Flickr30k Entities sentence markup of `ban ground` (examples/markup.h).

   The input is a Sentences file: its lines (as Python's text mode splits them) go through
   markup_check_line and markup_parse_line, as ban ground sends them. A line must be refused
   with a message, or give entities that satisfy what the reference and the official
   utilities would read: the phrase id is 1 to 18 ASCII digits and the chain its value; the
   first word indexes increase; the sentence the tokenizer reads holds no ']' and is no longer
   than the stripped line; each entity's position is the last word of the FIRST occurrence of
   its phrase's words in the sentence split on single spaces (checked here by a search of
   its own). markup_py_int of each line must give the value of what it accepts. Seeds:
   corpus/markup, written by make_seeds.py. */
#define _POSIX_C_SOURCE 200809L
#define MARKUP_IMPLEMENTATION
#include "../../examples/markup.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

/* the pieces of s split on single spaces (str.split(' ')): starts and lengths */
static int pieces(const char *s, const char ***start, size_t **len)
{
    size_t n = strlen(s);
    int count = 1;
    for (size_t i = 0; i < n; i++) count += s[i] == ' ';
    *start = malloc(sizeof(char *) * count);
    *len = malloc(sizeof(size_t) * count);
    int k = 0;
    const char *p = s;
    for (;;) {
        const char *sp = strchr(p, ' ');
        (*start)[k] = p;
        (*len)[k] = sp ? (size_t)(sp - p) : strlen(p);
        k++;
        if (!sp) break;
        p = sp + 1;
    }
    FUZZ_CHECK(k == count, "split");
    return count;
}

static void check_entities(const markup_line *g)
{
    const char **ws, **ps;
    size_t *wl, *pl;
    const int nw = pieces(g->sentence, &ws, &wl);
    FUZZ_CHECK(!strchr(g->sentence, ']') && strlen(g->sentence) <= strlen(g->sent), "sentence '%s' of '%s'",
               g->sentence, g->sent);
    for (int k = 0; k < g->n_ent; k++) {
        const markup_entity *e = &g->ent[k];
        const size_t nd = strlen(e->phrase_id);
        FUZZ_CHECK(nd >= 1 && nd <= 18 && strspn(e->phrase_id, "0123456789") == nd, "phrase id '%s'", e->phrase_id);
        FUZZ_CHECK(e->chain == strtoll(e->phrase_id, NULL, 10), "chain %lld, phrase id %s", (long long)e->chain,
                   e->phrase_id);
        FUZZ_CHECK(e->info && e->phrase && !strncmp(e->info, "/EN#", 4), "entity %d: info '%s'", k, e->info);
        FUZZ_CHECK(e->first_word_index >= 0 && (k == 0 || e->first_word_index > g->ent[k - 1].first_word_index),
                   "entity %d: first word %d", k, e->first_word_index);
        /* the first occurrence of the phrase's words ends at the position */
        const int np = pieces(e->phrase, &ps, &pl);
        int first = -1;
        for (int i = 0; i + np <= nw && first < 0; i++) {
            int j = 0;
            while (j < np && wl[i + j] == pl[j] && !memcmp(ws[i + j], ps[j], pl[j])) j++;
            if (j == np) first = i + np - 1;
        }
        FUZZ_CHECK(first >= 0 && e->position == first, "entity %d ('%s'): position %d, first occurrence ends at %d",
                   k, e->phrase, e->position, first);
        free(ps), free(pl);
    }
    free(ws), free(wl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    markup_lines r = {(const char *)data, size, 0, 0};
    const char *line;
    size_t len;
    char err[1024];
    while (markup_next_line(&r, &line, &len)) {
        FUZZ_CHECK(line >= (const char *)data && line + len <= (const char *)data + size &&
                       !memchr(line, '\n', len) && !memchr(line, '\r', len), "line %ld", r.lineno);
        char *text = malloc(len + 1);
        memcpy(text, line, len);
        text[len] = 0;
        int64_t v;
        if (markup_py_int(text, &v)) { /* what it accepts holds that value (underscores and blanks aside) */
            char digits[64];
            size_t nd = 0;
            int neg = 0;
            for (size_t i = 0; text[i] && nd < 63; i++) { /* a C string: up to a NUL in the line */
                if (text[i] >= '0' && text[i] <= '9') digits[nd++] = text[i];
                if (text[i] == '-') neg = 1;
            }
            digits[nd] = 0;
            FUZZ_CHECK(nd >= 1 && nd <= 18 && (neg ? -1 : 1) * strtoll(digits, NULL, 10) == v, "int('%s') = %lld",
                       text, (long long)v);
        }
        free(text);
        markup_line g;
        err[0] = 0;
        if (markup_check_line(line, len, err, sizeof err)) {
            FUZZ_CHECK(err[0], "line %ld refused without a message", r.lineno);
            continue;
        }
        FUZZ_CHECK(markup_utf8_check((const unsigned char *)line, len) == len, "line %ld", r.lineno);
        if (markup_parse_line(line, len, &g, err, sizeof err) == 0) {
            FUZZ_CHECK(g.sent && g.sentence && (g.n_ent == 0 || g.ent), "line %ld", r.lineno);
            check_entities(&g);
        } else {
            FUZZ_CHECK(err[0], "line %ld refused without a message", r.lineno);
        }
        markup_line_free(&g);
    }
    FUZZ_CHECK(r.at >= size, "stopped at byte %zu of %zu", r.at, size);
    return 0;
}
