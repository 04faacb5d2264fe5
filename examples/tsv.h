/* tsv.h - the records of bottom-up-attention TSV files (peteanderson80/bottom-up-attention),
   as `ban features import` reads them (examples/cmd_features.c).

   One image a line, no header, six tab-separated fields image_id, image_w, image_h,
   num_boxes, boxes, features; the last two are base64 of float32 (num_boxes, 4) pixel boxes
   and (num_boxes, D) features. Lines end in \r\n (Python's csv writer) or \n.

   RECORDS
     tsv_parser p;  tsv_parser_init(&p, D)    D: the feature size, or 0 for "the first record
                                              fixes it"; -1 when out of memory
     p.select, p.select_data                  optional: select(select_data, image_id) == 0
                                              leaves a record out (TSV_UNSELECTED) before its
                                              other fields are read
     tsv_parse_record(&p, line, len, &rec, why, whylen)
         TSV_OK: rec (a store_record, examples/store.h) holds id (the image id in decimal,
                 without leading zeros), width, height, n_boxes (1..STORE_MAX_BOXES) and
                 points into p's buffers (valid until the next call): boxes (n, 4) and
                 features (n, D), as store_check_record requires them (every value finite,
                 every box a box of the image); p.feature_dim is D from then on;
                 rec.spatials is NULL
         TSV_UNSELECTED: only rec.id is set
         TSV_BAD: why says what is wrong with the line, after "image ID: " once the id is
                 read (the caller adds file and line)
     tsv_parser_free(&p)

   LINES of any length, read in chunks from a FILE
     tsv_reader r;  tsv_reader_init(&r, f, cap, max_line)   a buffer of cap bytes (grown as
                                                            needed); -1 when out of memory
     tsv_read_line(&r, &line, &len, &newline, &too_long)   1, 0 at the end, -1 on a read error
     tsv_reader_free(&r)
     tsv_max_line(D)       the longest line a record of at most STORE_MAX_BOXES boxes of D
                           floats (D = 0: of at most 16384) may take

   AND THEIR PARTS
     tsv_parse_uint(s, n, max, &v)            digits only, at most max
     tsv_b64_size(s, n, why, whylen)          bytes a strict base64 text decodes to, or -1
     tsv_b64_decode(s, n, out, why, whylen)   0, or -1 with the reason

   Define TSV_IMPLEMENTATION in exactly one C file (in build/ban: examples/impl.c), and
   STORE_IMPLEMENTATION in one (store_check_record). */
#ifndef TSV_H_INCLUDED
#define TSV_H_INCLUDED
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store.h"

enum { TSV_OK, TSV_UNSELECTED, TSV_BAD };

typedef struct tsv_parser {
    int feature_dim;            /* 0 until the first record (or the caller) fixes it */
    int (*select)(void *select_data, int64_t image_id); /* NULL: every image */
    void *select_data;
    unsigned char *boxes;       /* (STORE_MAX_BOXES, 4) float32 */
    unsigned char *features;    /* (n, D) float32, grown as needed */
    size_t features_cap;
    char id[24];                /* the record's image id, in decimal */
} tsv_parser;

typedef struct tsv_reader {
    FILE *f;
    char *buf;
    size_t cap, start, end;     /* unread bytes are buf[start, end) */
    size_t max_line;
    int eof;
    uint64_t bytes;             /* consumed so far */
} tsv_reader;

int tsv_parser_init(tsv_parser *p, int feature_dim);
void tsv_parser_free(tsv_parser *p);
int tsv_parse_record(tsv_parser *p, const char *line, size_t len, store_record *rec, char *why, size_t whylen);

int tsv_reader_init(tsv_reader *r, FILE *f, size_t cap, size_t max_line);
void tsv_reader_free(tsv_reader *r);
int tsv_read_line(tsv_reader *r, char **line, size_t *len, int *newline, int *too_long);
size_t tsv_max_line(int feature_dim);

int tsv_parse_uint(const char *s, size_t n, uint64_t max, uint64_t *out);
long long tsv_b64_size(const char *s, size_t n, char *why, size_t whylen);
int tsv_b64_decode(const char *s, size_t n, unsigned char *out, char *why, size_t whylen);

#endif /* TSV_H_INCLUDED */

#if defined(TSV_IMPLEMENTATION) && !defined(TSV__IMPLEMENTED)
#define TSV__IMPLEMENTED
#include <stdlib.h>
#include <string.h>

/* ---- strict base64 (RFC 4648, standard alphabet, padded) ------------------------ */

static const int8_t tsv__b64_value[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
    -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

/* Bytes a base64 text of n characters decodes to, or -1 with the reason in why (length
   not a multiple of 4, '=' anywhere but the last two places). Characters are checked by
   tsv_b64_decode. */
long long tsv_b64_size(const char *s, size_t n, char *why, size_t whylen)
{
    if (n % 4) {
        snprintf(why, whylen, "%zu base64 characters, not a multiple of 4", n);
        return -1;
    }
    size_t pad = 0;
    while (pad < 2 && pad < n && s[n - 1 - pad] == '=') pad++;
    const char *eq = (const char *)memchr(s, '=', n - pad);
    if (eq) {
        snprintf(why, whylen, "base64 padding '=' at character %zu, before the end", (size_t)(eq - s));
        return -1;
    }
    return (long long)(n / 4 * 3 - pad);
}

/* Decode n characters (tsv_b64_size said they hold `size` bytes) into out; -1 with the
   reason on a character outside the alphabet or padding bits that are not zero. */
int tsv_b64_decode(const char *s, size_t n, unsigned char *out, char *why, size_t whylen)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t full = n / 4, i;
    if (n && s[n - 1] == '=') full--;
    for (i = 0; i < full; i++, p += 4, out += 3) {
        int32_t a = tsv__b64_value[p[0]], b = tsv__b64_value[p[1]], c = tsv__b64_value[p[2]], d = tsv__b64_value[p[3]];
        if ((a | b | c | d) < 0) break;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[0] = (unsigned char)(v >> 16), out[1] = (unsigned char)(v >> 8), out[2] = (unsigned char)v;
    }
    if (i < full) {
        for (int k = 0; k < 4; k++)
            if (tsv__b64_value[p[k]] < 0) {
                if (p[k] > 32 && p[k] < 127)
                    snprintf(why, whylen, "character '%c' (byte 0x%02x) at %zu is not base64", p[k], p[k],
                             i * 4 + (size_t)k);
                else snprintf(why, whylen, "byte 0x%02x at %zu is not base64", p[k], i * 4 + (size_t)k);
                return -1;
            }
    }
    if (full * 4 < n) { /* the padded last group: xx== or xxx= */
        const int has3 = p[2] != '=';
        int32_t a = tsv__b64_value[p[0]], b = tsv__b64_value[p[1]], c = has3 ? tsv__b64_value[p[2]] : 0;
        if ((a | b | c) < 0) {
            int k = a < 0 ? 0 : b < 0 ? 1 : 2;
            snprintf(why, whylen, "byte 0x%02x at %zu is not base64", p[k], full * 4 + (size_t)k);
            return -1;
        }
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
        if (has3 ? (v & 0xff) : (v & 0xffff)) {
            snprintf(why, whylen, "bad base64 padding: the unused bits of the last group are not zero");
            return -1;
        }
        out[0] = (unsigned char)(v >> 16);
        if (has3) out[1] = (unsigned char)(v >> 8);
    }
    return 0;
}

/* ---- lines of any length, read in chunks ------------------------------------------ */

int tsv_reader_init(tsv_reader *r, FILE *f, size_t cap, size_t max_line)
{
    memset(r, 0, sizeof *r);
    r->f = f;
    r->cap = cap ? cap : 1;
    r->max_line = max_line;
    r->buf = (char *)malloc(r->cap);
    return r->buf ? 0 : -1;
}

void tsv_reader_free(tsv_reader *r)
{
    free(r->buf);
    r->buf = NULL;
}

size_t tsv_max_line(int feature_dim)
{
    /* the numbers, then base64 of the floats */
    const uint64_t D = feature_dim ? (uint64_t)feature_dim : (uint64_t)16384;
    return (size_t)(256 + ((uint64_t)STORE_MAX_BOXES * (D + 4) * 4 + 2) / 3 * 4 + 8);
}

/* The next line without its "\n" (and one "\r" before it): 1, or 0 at the end of the file,
   -1 on a read error. *newline says whether the line ended with "\n" (not at a cut-off end
   of file); *too_long that it exceeded max_line bytes and was discarded (*len = 0). */
int tsv_read_line(tsv_reader *r, char **line, size_t *len, int *newline, int *too_long)
{
    size_t scanned = 0;
    *too_long = 0;
    for (;;) {
        char *nl = (char *)memchr(r->buf + r->start + scanned, '\n', r->end - r->start - scanned);
        if (nl || (r->eof && (r->end > r->start || *too_long))) {
            size_t n = nl ? (size_t)(nl - (r->buf + r->start)) : r->end - r->start;
            *line = r->buf + r->start;
            *len = *too_long ? 0 : n;
            *newline = nl != NULL;
            r->start += n + (nl != NULL);
            r->bytes += n + (nl != NULL);
            if (!*too_long && *len && (*line)[*len - 1] == '\r') (*len)--;
            return 1;
        }
        if (r->eof) return 0;
        scanned = r->end - r->start;
        if (scanned > r->max_line) { /* drop what is held, keep looking for the end */
            *too_long = 1;
            r->bytes += scanned;
            r->start = r->end = scanned = 0;
        }
        if (r->start > 0) { /* move the partial line to the front */
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }
        if (r->end == r->cap) {
            size_t cap = r->cap * 2;
            char *b = (char *)realloc(r->buf, cap);
            if (!b) return -1;
            r->buf = b, r->cap = cap;
        }
        size_t got = fread(r->buf + r->end, 1, r->cap - r->end, r->f);
        if (got == 0) {
            if (ferror(r->f)) return -1;
            r->eof = 1;
        }
        r->end += got;
    }
}

/* ---- records ----------------------------------------------------------------------- */

/* a whole number of digits only (no sign, blank or other text), at most max */
int tsv_parse_uint(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 20) return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10) return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

int tsv_parser_init(tsv_parser *p, int feature_dim)
{
    memset(p, 0, sizeof *p);
    p->feature_dim = feature_dim;
    p->boxes = (unsigned char *)malloc((size_t)STORE_MAX_BOXES * 16);
    return p->boxes ? 0 : -1;
}

void tsv_parser_free(tsv_parser *p)
{
    free(p->boxes), free(p->features);
    p->boxes = p->features = NULL;
    p->features_cap = 0;
}

/* The record's fields after its image id (tsv_parse_record, which names the image). */
static int tsv__parse_fields(tsv_parser *p, const char **field, const size_t *flen, store_record *rec, char *why,
                             size_t whylen)
{
    static const char *names[4] = {"image_id", "image_w", "image_h", "num_boxes"};
    uint64_t w, h, n;
    for (int k = 1; k <= 3; k++) {
        uint64_t max = k == 3 ? (uint64_t)STORE_MAX_BOXES : (uint64_t)STORE_MAX_SIDE, v;
        uint64_t *dst = k == 1 ? &w : k == 2 ? &h : &n;
        if (!tsv_parse_uint(field[k], flen[k], UINT64_MAX / 16, &v) || v < 1 || v > max) {
            snprintf(why, whylen, "%s '%.*s' is not a whole number in 1..%llu%s", names[k],
                     (int)(flen[k] < 40 ? flen[k] : 40), field[k], (unsigned long long)max,
                     k == 3 ? " (the most boxes an image may have)" : "");
            return TSV_BAD;
        }
        *dst = v;
    }
    rec->width = (int)w, rec->height = (int)h, rec->n_boxes = (int)n;
    char sub[200];
    long long nb = tsv_b64_size(field[4], flen[4], sub, sizeof sub);
    if (nb < 0) return snprintf(why, whylen, "boxes: %s", sub), TSV_BAD;
    if ((unsigned long long)nb != n * 16) {
        if (nb % 4) snprintf(why, whylen, "boxes: %lld bytes, not a whole number of float32 values", nb);
        else snprintf(why, whylen, "boxes: %lld bytes = %lld float32 values, expected num_boxes x 4 = %llu", nb,
                      nb / 4, (unsigned long long)n * 4);
        return TSV_BAD;
    }
    long long nfeat = tsv_b64_size(field[5], flen[5], sub, sizeof sub);
    if (nfeat < 0) return snprintf(why, whylen, "features: %s", sub), TSV_BAD;
    if (nfeat % 4) {
        snprintf(why, whylen, "features: %lld bytes is not a whole number of float32 values", nfeat);
        return TSV_BAD;
    }
    const unsigned long long floats = (unsigned long long)nfeat / 4;
    int D = p->feature_dim;
    if (D == 0) { /* the first record fixes the feature size */
        if (floats % n || floats / n < 1 || floats / n > STORE_MAX_DIM) {
            snprintf(why, whylen, "features: %llu float32 values are not num_boxes (%llu) x a feature size in 1..%d",
                     floats, (unsigned long long)n, STORE_MAX_DIM);
            return TSV_BAD;
        }
        D = (int)(floats / n);
    } else if (floats != n * (unsigned long long)D) {
        snprintf(why, whylen, "features: %llu float32 values, expected num_boxes x feature size = %llu x %d = %llu",
                 floats, (unsigned long long)n, D, n * (unsigned long long)D);
        return TSV_BAD;
    }
    if ((size_t)nfeat > p->features_cap) {
        unsigned char *f = (unsigned char *)realloc(p->features, (size_t)nfeat);
        if (!f) return snprintf(why, whylen, "out of memory for %lld bytes of features", nfeat), TSV_BAD;
        p->features = f, p->features_cap = (size_t)nfeat;
    }
    if (tsv_b64_decode(field[4], flen[4], p->boxes, sub, sizeof sub))
        return snprintf(why, whylen, "boxes: %s", sub), TSV_BAD;
    if (tsv_b64_decode(field[5], flen[5], p->features, sub, sizeof sub))
        return snprintf(why, whylen, "features: %s", sub), TSV_BAD;
    rec->boxes = (const float *)(const void *)p->boxes;
    rec->features = (const float *)(const void *)p->features;
    rec->spatials = NULL;
    if (store_check_record(rec, D, why, whylen)) return TSV_BAD;
    p->feature_dim = D;
    return TSV_OK;
}

/* Parse one TSV line into *rec (pointing into the parser's buffers). TSV_BAD sets why. */
int tsv_parse_record(tsv_parser *p, const char *line, size_t len, store_record *rec, char *why, size_t whylen)
{
    const char *field[6];
    size_t flen[6];
    int nf = 0; /* fields found; the first six are kept */
    const char *at = line, *end = line + len;
    for (;;) {
        const char *tab = (const char *)memchr(at, '\t', (size_t)(end - at));
        if (nf < 6) field[nf] = at, flen[nf] = tab ? (size_t)(tab - at) : (size_t)(end - at);
        nf++;
        if (!tab) break;
        at = tab + 1;
    }
    if (nf != 6) {
        snprintf(why, whylen, "%d tab-separated field%s, expected 6 (image_id, image_w, image_h, num_boxes, boxes, "
                 "features)", nf, nf == 1 ? "" : "s");
        return TSV_BAD;
    }
    uint64_t id;
    if (!tsv_parse_uint(field[0], flen[0], INT64_MAX, &id)) {
        snprintf(why, whylen, "image_id '%.*s' is not a whole number", (int)(flen[0] < 40 ? flen[0] : 40), field[0]);
        return TSV_BAD;
    }
    snprintf(p->id, sizeof p->id, "%llu", (unsigned long long)id);
    rec->id = p->id;
    if (p->select && !p->select(p->select_data, (int64_t)id)) return TSV_UNSELECTED;
    char sub[400];
    const int rc = tsv__parse_fields(p, field, flen, rec, sub, sizeof sub);
    if (rc == TSV_BAD) snprintf(why, whylen, "image %s: %s", p->id, sub);
    return rc;
}

#endif /* TSV_IMPLEMENTATION */
