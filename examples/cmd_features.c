/* ban features - bottom-up-attention TSV files -> one feature store (examples/store.h).

   ban features import --tsv FILE [FILE ...] --output STORE [--image-ids IDS.txt]
                       [--feature-dim D] [--skip-bad]
   ban features info STORE

   The TSV files are those of peteanderson80/bottom-up-attention: one image a line, no
   header, six tab-separated fields image_id, image_w, image_h, num_boxes, boxes,
   features, the last two base64 of float32 (num_boxes, 4) pixel boxes and (num_boxes, D)
   features; lines end in \r\n (Python's csv writer) or \n. The import streams: memory
   holds one line and the index (constant in the size of the input but for 32 bytes and a
   few more an image), and the store is written atomically. Bad records are errors naming
   the file and line, or with --skip-bad warnings, counted and listed at the end. */
#define _POSIX_C_SOURCE 200809L
#define STORE_IMPLEMENTATION
#include "store.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

int cmd_features(int argc, char **argv);

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- strict base64 (RFC 4648, standard alphabet, padded) ------------------------ */

static int16_t b64_value[256];

static void b64_init(void)
{
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 256; i++) b64_value[i] = -1;
    for (int i = 0; i < 64; i++) b64_value[(unsigned char)alphabet[i]] = (int16_t)i;
}

/* Bytes a base64 text of n characters decodes to, or -1 with the reason in why (length
   not a multiple of 4, '=' anywhere but the last two places). Characters are checked by
   b64_decode. */
static long long b64_size(const char *s, size_t n, char *why, size_t whylen)
{
    if (n % 4) {
        snprintf(why, whylen, "%zu base64 characters, not a multiple of 4", n);
        return -1;
    }
    size_t pad = 0;
    while (pad < 2 && pad < n && s[n - 1 - pad] == '=') pad++;
    const char *eq = memchr(s, '=', n - pad);
    if (eq) {
        snprintf(why, whylen, "base64 padding '=' at character %zu, before the end", (size_t)(eq - s));
        return -1;
    }
    return (long long)(n / 4 * 3 - pad);
}

/* Decode n characters (b64_size said they hold `size` bytes) into out; -1 with the reason
   on a character outside the alphabet or padding bits that are not zero. */
static int b64_decode(const char *s, size_t n, unsigned char *out, char *why, size_t whylen)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t full = n / 4, i;
    if (n && s[n - 1] == '=') full--;
    for (i = 0; i < full; i++, p += 4, out += 3) {
        int32_t a = b64_value[p[0]], b = b64_value[p[1]], c = b64_value[p[2]], d = b64_value[p[3]];
        if ((a | b | c | d) < 0) break;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[0] = (unsigned char)(v >> 16), out[1] = (unsigned char)(v >> 8), out[2] = (unsigned char)v;
    }
    if (i < full) {
        for (int k = 0; k < 4; k++)
            if (b64_value[p[k]] < 0) {
                if (p[k] > 32 && p[k] < 127)
                    snprintf(why, whylen, "character '%c' (byte 0x%02x) at %zu is not base64", p[k], p[k],
                             i * 4 + (size_t)k);
                else snprintf(why, whylen, "byte 0x%02x at %zu is not base64", p[k], i * 4 + (size_t)k);
                return -1;
            }
    }
    if (full * 4 < n) { /* the padded last group: xx== or xxx= */
        const int has3 = p[2] != '=';
        int32_t a = b64_value[p[0]], b = b64_value[p[1]], c = has3 ? b64_value[p[2]] : 0;
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

typedef struct {
    FILE *f;
    char *buf;
    size_t cap, start, end;   /* unread bytes are buf[start, end) */
    size_t max_line;
    int eof;
    uint64_t bytes;           /* consumed so far */
} line_reader;

/* The next line without its "\n" (and one "\r" before it): 1, or 0 at the end of the file,
   -1 on a read error. *newline says whether the line ended with "\n" (not at a cut-off end
   of file); *too_long that it exceeded max_line bytes and was discarded (*len = 0). */
static int read_line(line_reader *r, char **line, size_t *len, int *newline, int *too_long)
{
    size_t scanned = 0;
    *too_long = 0;
    for (;;) {
        char *nl = memchr(r->buf + r->start + scanned, '\n', r->end - r->start - scanned);
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

/* ---- a set of image ids (--image-ids) ------------------------------------------------ */

typedef struct {
    int64_t *ids;
    unsigned char *used, *found;
    size_t mask, n;
} id_set;

static size_t id_hash(int64_t id)
{
    uint64_t x = (uint64_t)id;
    x ^= x >> 33, x *= 0xff51afd7ed558ccdULL, x ^= x >> 33;
    return (size_t)x;
}

/* slot of id, or of the empty place where it would go */
static size_t id_slot(const id_set *s, int64_t id)
{
    size_t i = id_hash(id) & s->mask;
    while (s->used[i] && s->ids[i] != id) i = (i + 1) & s->mask;
    return i;
}

static int id_set_add(id_set *s, int64_t id)
{
    if ((s->n + 1) * 2 > s->mask + 1) {
        id_set t = {NULL, NULL, NULL, s->mask ? s->mask * 2 + 1 : 1023, 0};
        t.ids = (int64_t *)malloc((t.mask + 1) * sizeof(int64_t));
        t.used = (unsigned char *)calloc(t.mask + 1, 1);
        t.found = (unsigned char *)calloc(t.mask + 1, 1);
        if (!t.ids || !t.used || !t.found) return free(t.ids), free(t.used), free(t.found), -1;
        for (size_t i = 0; s->used && i <= s->mask; i++)
            if (s->used[i]) {
                size_t j = id_slot(&t, s->ids[i]);
                t.used[j] = 1, t.ids[j] = s->ids[i], t.found[j] = s->found[i];
                t.n++;
            }
        free(s->ids), free(s->used), free(s->found);
        *s = t;
    }
    size_t i = id_slot(s, id);
    if (!s->used[i]) s->used[i] = 1, s->ids[i] = id, s->n++;
    return 0;
}

/* 1 and marks it found when id is in the set */
static int id_set_take(id_set *s, int64_t id)
{
    size_t i = id_slot(s, id);
    if (!s->used[i]) return 0;
    s->found[i] = 1;
    return 1;
}

static void id_set_free(id_set *s) { free(s->ids), free(s->used), free(s->found); }

/* a whole number of digits only (no sign, blank or other text), at most max */
static int parse_uint(const char *s, size_t n, uint64_t max, uint64_t *out)
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

static int read_id_list(const char *path, id_set *set)
{
    FILE *f = fopen(path, "rb");
    if (!f) return cli_error("%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;
    int rc = CLI_OK;
    while (rc == CLI_OK && (got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t a = 0, b = (size_t)got;
        while (a < b && (line[a] == ' ' || line[a] == '\t')) a++;
        while (b > a && (line[b - 1] == '\n' || line[b - 1] == '\r' || line[b - 1] == ' ' || line[b - 1] == '\t')) b--;
        if (a == b || line[a] == '#') continue; /* blank lines and comments */
        uint64_t id;
        if (!parse_uint(line + a, b - a, INT64_MAX, &id))
            rc = cli_error("%s:%ld: '%.*s' is not an image id (a whole number)", path, lineno, (int)(b - a < 40 ? b - a : 40),
                           line + a);
        else if (id_set_add(set, (int64_t)id))
            rc = cli_error("out of memory for the image ids");
    }
    if (rc == CLI_OK && ferror(f)) rc = cli_error("%s: read error", path);
    free(line);
    fclose(f);
    if (rc == CLI_OK && set->n == 0) rc = cli_error("%s: no image ids", path);
    return rc;
}

/* ---- ban features import ---------------------------------------------------------------- */

static char temp_path[4096]; /* the writer's temporary file, for the signal handler */

static void on_signal(int sig)
{
    if (temp_path[0]) unlink(temp_path);
    signal(sig, SIG_DFL);
    raise(sig);
}

enum { REC_OK, REC_UNSELECTED, REC_BAD };
#define MAX_LISTED 20 /* skipped lines named in the final report */

typedef struct {
    int feature_dim;            /* 0 until the first record (or --feature-dim) fixes it */
    int skip_bad;
    id_set *select;             /* NULL: every image */
    unsigned char *boxes;       /* (STORE_MAX_BOXES, 4) float32 */
    unsigned char *features;    /* (n, D) float32, grown as needed */
    size_t features_cap;
    store_writer *w;
    const char *output;
    const char **files;
    int *src_file;              /* per record added: where it came from */
    uint64_t *src_line;
    size_t src_cap;
    uint64_t images, boxes_total, unselected, skipped, bytes;
    char listed[MAX_LISTED][160];
    double t0, last_report;
} importer;

/* index of the first non-finite float32 among n, or -1 */
static long long first_nonfinite(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, p + 4 * i, 4);
        if ((bits & 0x7f800000u) == 0x7f800000u) return (long long)i;
    }
    return -1;
}

static const char *nonfinite_name(const unsigned char *p, long long i)
{
    uint32_t bits;
    memcpy(&bits, p + 4 * i, 4);
    return bits & 0x007fffffu ? "NaN" : bits >> 31 ? "-Inf" : "Inf";
}

/* Parse one TSV line into *rec (pointing into the importer's buffers). REC_BAD sets why. */
static int parse_record(importer *im, const char *line, size_t len, store_record *rec, char *why, size_t whylen)
{
    static const char *names[6] = {"image_id", "image_w", "image_h", "num_boxes", "boxes", "features"};
    const char *field[6];
    size_t flen[6];
    int nf = 0; /* fields found; the first six are kept */
    const char *p = line, *end = line + len;
    for (;;) {
        const char *tab = memchr(p, '\t', (size_t)(end - p));
        if (nf < 6) field[nf] = p, flen[nf] = tab ? (size_t)(tab - p) : (size_t)(end - p);
        nf++;
        if (!tab) break;
        p = tab + 1;
    }
    if (nf != 6) {
        snprintf(why, whylen, "%d tab-separated field%s, expected 6 (image_id, image_w, image_h, num_boxes, boxes, "
                 "features)", nf, nf == 1 ? "" : "s");
        return REC_BAD;
    }
    uint64_t id, w, h, n;
    if (!parse_uint(field[0], flen[0], INT64_MAX, &id)) {
        snprintf(why, whylen, "image_id '%.*s' is not a whole number", (int)(flen[0] < 40 ? flen[0] : 40), field[0]);
        return REC_BAD;
    }
    rec->image_id = (int64_t)id;
    if (im->select && !id_set_take(im->select, rec->image_id)) return REC_UNSELECTED;
    for (int k = 1; k <= 3; k++) {
        uint64_t max = k == 3 ? (uint64_t)STORE_MAX_BOXES : (uint64_t)STORE_MAX_SIDE, v;
        uint64_t *dst = k == 1 ? &w : k == 2 ? &h : &n;
        if (!parse_uint(field[k], flen[k], UINT64_MAX / 16, &v) || v < 1 || v > max) {
            snprintf(why, whylen, "%s '%.*s' is not a whole number in 1..%llu%s", names[k],
                     (int)(flen[k] < 40 ? flen[k] : 40), field[k], (unsigned long long)max,
                     k == 3 ? " (the most boxes an image may have)" : "");
            return REC_BAD;
        }
        *dst = v;
    }
    rec->width = (int)w, rec->height = (int)h, rec->n_boxes = (int)n;
    char sub[200];
    long long nb = b64_size(field[4], flen[4], sub, sizeof sub);
    if (nb < 0) return snprintf(why, whylen, "boxes: %s", sub), REC_BAD;
    if ((unsigned long long)nb != n * 16) {
        if (nb % 4) snprintf(why, whylen, "boxes: %lld bytes, not a whole number of float32 values", nb);
        else snprintf(why, whylen, "boxes: %lld bytes = %lld float32 values, expected num_boxes x 4 = %llu", nb,
                      nb / 4, (unsigned long long)n * 4);
        return REC_BAD;
    }
    long long nfeat = b64_size(field[5], flen[5], sub, sizeof sub);
    if (nfeat < 0) return snprintf(why, whylen, "features: %s", sub), REC_BAD;
    if (nfeat % 4) {
        snprintf(why, whylen, "features: %lld bytes is not a whole number of float32 values", nfeat);
        return REC_BAD;
    }
    const unsigned long long floats = (unsigned long long)nfeat / 4;
    int D = im->feature_dim;
    if (D == 0) { /* the first record fixes the feature size */
        if (floats % n || floats / n < 1 || floats / n > STORE_MAX_DIM) {
            snprintf(why, whylen, "features: %llu float32 values are not num_boxes (%llu) x a feature size in 1..%d",
                     floats, (unsigned long long)n, STORE_MAX_DIM);
            return REC_BAD;
        }
        D = (int)(floats / n);
    } else if (floats != n * (unsigned long long)D) {
        snprintf(why, whylen, "features: %llu float32 values, expected num_boxes x feature size = %llu x %d = %llu",
                 floats, (unsigned long long)n, D, n * (unsigned long long)D);
        return REC_BAD;
    }
    if ((size_t)nfeat > im->features_cap) {
        unsigned char *f = (unsigned char *)realloc(im->features, (size_t)nfeat);
        if (!f) return snprintf(why, whylen, "out of memory for %lld bytes of features", nfeat), REC_BAD;
        im->features = f, im->features_cap = (size_t)nfeat;
    }
    if (b64_decode(field[4], flen[4], im->boxes, sub, sizeof sub))
        return snprintf(why, whylen, "boxes: %s", sub), REC_BAD;
    if (b64_decode(field[5], flen[5], im->features, sub, sizeof sub))
        return snprintf(why, whylen, "features: %s", sub), REC_BAD;
    long long bad = first_nonfinite(im->boxes, n * 4);
    if (bad >= 0) {
        snprintf(why, whylen, "boxes: %s at box %lld, coordinate %lld", nonfinite_name(im->boxes, bad), bad / 4,
                 bad % 4);
        return REC_BAD;
    }
    bad = first_nonfinite(im->features, floats);
    if (bad >= 0) {
        snprintf(why, whylen, "features: %s at box %lld, value %lld", nonfinite_name(im->features, bad), bad / D,
                 bad % D);
        return REC_BAD;
    }
    im->feature_dim = D;
    rec->boxes = (const float *)(const void *)im->boxes;
    rec->features = (const float *)(const void *)im->features;
    rec->spatials = NULL;
    return REC_OK;
}

static void progress(importer *im, const char *file, int final)
{
    double t = now_seconds();
    if (!final && t - im->last_report < 2.0) return;
    im->last_report = t;
    double mb = (double)im->bytes / 1e6, dt = t - im->t0 > 1e-9 ? t - im->t0 : 1e-9;
    if (final)
        fprintf(stderr, "ban: features: imported %llu images (%llu boxes of %d floats) from %.1f MB of TSV in %.1f s "
                "(%.1f MB/s) into %s\n", (unsigned long long)im->images, (unsigned long long)im->boxes_total,
                im->feature_dim, mb, dt, mb / dt, im->output);
    else
        fprintf(stderr, "ban: features: %s: %llu images, %.1f MB read (%.1f MB/s)\n", file,
                (unsigned long long)im->images, mb, mb / dt);
}

/* Record one bad line: an error, or with --skip-bad a warning and a count. */
static int bad_record(importer *im, const char *file, uint64_t line, const char *why, int cut)
{
    const char *hint = cut ? " (the file ends in the middle of this line: truncated?)" : "";
    if (!im->skip_bad) return cli_error("%s:%llu: %s%s", file, (unsigned long long)line, why, hint);
    fprintf(stderr, "ban: warning: %s:%llu: %s%s; record skipped\n", file, (unsigned long long)line, why, hint);
    if (im->skipped < MAX_LISTED)
        snprintf(im->listed[im->skipped], sizeof im->listed[0], "%s:%llu", file, (unsigned long long)line);
    im->skipped++;
    return CLI_OK;
}

static int import_file(importer *im, int file_index)
{
    const char *path = im->files[file_index];
    FILE *f = fopen(path, "rb");
    if (!f) return cli_error("%s: cannot open: %s", path, strerror(errno));
    line_reader r = {f, NULL, (size_t)4 << 20, 0, 0, 0, 0, 0};
    r.buf = (char *)malloc(r.cap);
    if (!r.buf) {
        fclose(f);
        return cli_error("out of memory");
    }
    uint64_t lineno = 0, base = im->bytes;
    int rc = CLI_OK;
    char why[512], err[512];
    for (;;) {
        /* the longest line a record may take: the numbers, then base64 of its floats */
        const uint64_t D = im->feature_dim ? (uint64_t)im->feature_dim : (uint64_t)16384;
        r.max_line = (size_t)(256 + ((uint64_t)STORE_MAX_BOXES * (D + 4) * 4 + 2) / 3 * 4 + 8);
        char *line;
        size_t len;
        int newline, too_long;
        int got = read_line(&r, &line, &len, &newline, &too_long);
        if (got < 0) { rc = cli_error("%s: read error after line %llu", path, (unsigned long long)lineno); break; }
        if (got == 0) break;
        lineno++;
        im->bytes = base + r.bytes;
        if (too_long) {
            snprintf(why, sizeof why, "a line longer than %zu bytes cannot be a record of at most %d boxes%s",
                     r.max_line, STORE_MAX_BOXES, im->feature_dim ? "" : " (of at most 16384 floats)");
            if ((rc = bad_record(im, path, lineno, why, !newline))) break;
            continue;
        }
        if (len == 0) continue; /* blank lines, as Python's csv reader */
        store_record rec;
        int status = parse_record(im, line, len, &rec, why, sizeof why);
        if (status == REC_UNSELECTED) { im->unselected++; continue; }
        if (status == REC_OK) {
            int64_t prev = im->w ? store_writer_find(im->w, rec.image_id) : -1;
            if (prev >= 0) {
                snprintf(why, sizeof why, "image %lld appears twice (first at %s:%llu)", (long long)rec.image_id,
                         im->files[im->src_file[prev]], (unsigned long long)im->src_line[prev]);
                status = REC_BAD;
            }
        }
        if (status == REC_BAD) {
            if ((rc = bad_record(im, path, lineno, why, !newline))) break;
            continue;
        }
        if (!im->w) {
            if (store_writer_open(im->output, im->feature_dim, &im->w, err, sizeof err)) { rc = cli_error("%s", err); break; }
            snprintf(temp_path, sizeof temp_path, "%s", store_writer_temp_path(im->w));
        }
        if (im->images + 1 > im->src_cap) {
            size_t cap = im->src_cap ? im->src_cap * 2 : 4096;
            int *sf = (int *)realloc(im->src_file, cap * sizeof(int));
            if (sf) im->src_file = sf;
            uint64_t *sl = sf ? (uint64_t *)realloc(im->src_line, cap * sizeof(uint64_t)) : NULL;
            if (!sl) { rc = cli_error("out of memory for the index"); break; }
            im->src_line = sl, im->src_cap = cap;
        }
        if (store_writer_add(im->w, &rec, err, sizeof err)) { rc = cli_error("%s:%llu: %s", path, (unsigned long long)lineno, err); break; }
        im->src_file[im->images] = file_index;
        im->src_line[im->images] = lineno;
        im->images++;
        im->boxes_total += (uint64_t)rec.n_boxes;
        progress(im, path, 0);
    }
    im->bytes = base + r.bytes;
    free(r.buf);
    fclose(f);
    return rc;
}

static int features_import(int argc, char **argv)
{
    cli_opt opts[] = {{"--tsv", 1, NULL}, {"--output", 1, NULL}, {"--image-ids", 1, NULL},
                      {"--feature-dim", 1, NULL}, {"--skip-bad", 0, NULL}, {NULL, 0, NULL}};
    const char **pos = (const char **)malloc((size_t)argc * sizeof(char *));
    int n_pos;
    if (!pos) return cli_error("out of memory");
    if (cli_parse(argc, argv, 3, opts, pos, argc, &n_pos)) return free(pos), CLI_USAGE;
    const char *first = cli_get(opts, "--tsv"), *output = cli_get(opts, "--output");
    const char *ids_path = cli_get(opts, "--image-ids"), *dim_text = cli_get(opts, "--feature-dim");
    long dim = 0;
    if (!first || !output) {
        free(pos);
        return cli_usage("usage: ban features import --tsv FILE [FILE ...] --output STORE [--image-ids IDS.txt] "
                         "[--feature-dim D] [--skip-bad]");
    }
    if (dim_text && !cli_int(dim_text, "--feature-dim", 1, STORE_MAX_DIM, &dim)) return free(pos), CLI_USAGE;
    /* the files: --tsv's value, then the positional arguments */
    const char **files = (const char **)malloc((size_t)(n_pos + 1) * sizeof(char *));
    if (!files) return free(pos), cli_error("out of memory");
    files[0] = first;
    for (int i = 0; i < n_pos; i++) files[i + 1] = pos[i];
    const int n_files = n_pos + 1;
    free(pos);

    b64_init();
    id_set select = {NULL, NULL, NULL, 0, 0};
    importer im;
    memset(&im, 0, sizeof im);
    im.feature_dim = (int)dim;
    im.skip_bad = cli_get(opts, "--skip-bad") != NULL;
    im.output = output;
    im.files = files;
    im.boxes = (unsigned char *)malloc((size_t)STORE_MAX_BOXES * 16);
    im.t0 = im.last_report = now_seconds();
    int rc = CLI_OK;
    char err[512];
    if (!im.boxes) rc = cli_error("out of memory");
    if (rc == CLI_OK && ids_path) {
        if ((rc = read_id_list(ids_path, &select)) == CLI_OK) im.select = &select;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    if (rc == CLI_OK && dim && store_writer_open(output, (int)dim, &im.w, err, sizeof err)) rc = cli_error("%s", err);
    if (rc == CLI_OK && im.w) snprintf(temp_path, sizeof temp_path, "%s", store_writer_temp_path(im.w));
    for (int i = 0; rc == CLI_OK && i < n_files; i++) {
        fprintf(stderr, "ban: features: reading %s\n", files[i]);
        rc = import_file(&im, i);
    }
    if (rc == CLI_OK && im.images == 0)
        rc = cli_error("no image imported (%llu records%s%s); %s not written",
                       (unsigned long long)(im.unselected + im.skipped), im.select ? ", none of them listed in " : "",
                       im.select ? ids_path : "", output);
    if (rc == CLI_OK) {
        store_writer *w = im.w;
        im.w = NULL;
        if (store_writer_commit(w, err, sizeof err)) rc = cli_error("%s", err);
    }
    if (im.w) store_writer_abort(im.w);
    temp_path[0] = 0;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    if (rc == CLI_OK) {
        progress(&im, NULL, 1);
        if (im.skipped) {
            fprintf(stderr, "ban: features: skipped %llu bad record%s: ", (unsigned long long)im.skipped,
                    im.skipped == 1 ? "" : "s");
            for (uint64_t i = 0; i < im.skipped && i < MAX_LISTED; i++) fprintf(stderr, "%s%s", i ? ", " : "", im.listed[i]);
            if (im.skipped > MAX_LISTED) fprintf(stderr, ", ... (%llu more)", (unsigned long long)(im.skipped - MAX_LISTED));
            fputc('\n', stderr);
        }
        if (im.select) {
            uint64_t missing = 0;
            for (size_t i = 0; i <= select.mask; i++) missing += select.used[i] && !select.found[i];
            if (im.unselected) fprintf(stderr, "ban: features: %llu images not listed in %s were left out\n",
                                       (unsigned long long)im.unselected, ids_path);
            if (missing) {
                fprintf(stderr, "ban: warning: %llu of the %zu image ids of %s are in none of the TSV files (e.g.",
                        (unsigned long long)missing, select.n, ids_path);
                int shown = 0;
                for (size_t i = 0; i <= select.mask && shown < 5; i++)
                    if (select.used[i] && !select.found[i]) fprintf(stderr, " %lld", (long long)select.ids[i]), shown++;
                fprintf(stderr, ")\n");
            }
        }
    }
    id_set_free(&select);
    free(im.boxes), free(im.features), free(im.src_file), free(im.src_line);
    free(files);
    return rc;
}

/* ---- ban features info ------------------------------------------------------------------ */

static int features_info(int argc, char **argv)
{
    cli_opt opts[] = {{NULL, 0, NULL}};
    const char *pos[1];
    int n_pos;
    if (cli_parse(argc, argv, 3, opts, pos, 1, &n_pos) || n_pos != 1)
        return n_pos != 1 ? cli_usage("usage: ban features info STORE") : CLI_USAGE;
    store *s;
    char err[512];
    if (store_open(pos[0], &s, err, sizeof err)) return cli_error("%s", err);
    const int64_t N = store_image_count(s);
    const int D = store_feature_dim(s), most = store_max_boxes(s);
    int least = most;
    enum { BINS = STORE_MAX_BOXES / 10 + 1 };
    static uint64_t hist[BINS];
    memset(hist, 0, sizeof hist);
    store_record rec, lo, hi;
    memset(&lo, 0, sizeof lo);
    memset(&hi, 0, sizeof hi);
    for (int64_t i = 0; i < N; i++) {
        store_get(s, i, &rec);
        if (rec.n_boxes < least) least = rec.n_boxes;
        hist[rec.n_boxes / 10]++;
    }
    FILE *f = fopen(pos[0], "rb");
    long long bytes = -1;
    if (f && fseek(f, 0, SEEK_END) == 0) bytes = (long long)ftell(f);
    if (f) fclose(f);
    printf("store:            %s\n", pos[0]);
    printf("format:           feature store version %d, %lld bytes\n", STORE_VERSION, bytes);
    printf("images:           %lld\n", (long long)N);
    printf("boxes:            %lld (%d to %d an image, mean %.1f)\n", (long long)store_box_count(s), N ? least : 0,
           most, N ? (double)store_box_count(s) / (double)N : 0.0);
    printf("feature size:     %d floats (%d bytes a box)\n", D, D * 4);
    if (N) {
        store_get(s, 0, &lo);
        store_get(s, N - 1, &hi);
        printf("image ids:        %lld to %lld\n", (long long)lo.image_id, (long long)hi.image_id);
    }
    printf("boxes per image:\n");
    uint64_t top = 0;
    for (int b = 0; b < BINS; b++) if (hist[b] > top) top = hist[b];
    if (N && least == most) {
        printf("  %9d  %10lld  %s\n", most, (long long)N, "########################################");
    } else {
        for (int b = least / 10; N && b <= most / 10; b++) {
            char range[32], bar[41];
            int lo_b = b * 10 < 1 ? 1 : b * 10, hi_b = b * 10 + 9;
            snprintf(range, sizeof range, "%d-%d", lo_b, hi_b);
            int w = top ? (int)((hist[b] * 40 + top - 1) / top) : 0;
            memset(bar, '#', (size_t)w);
            bar[w] = 0;
            printf("  %9s  %10llu  %s\n", range, (unsigned long long)hist[b], bar);
        }
    }
    store_close(s);
    return CLI_OK;
}

int cmd_features(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[2], "import")) return features_import(argc, argv);
    if (argc >= 3 && !strcmp(argv[2], "info")) return features_info(argc, argv);
    return cli_usage("usage: ban features import --tsv FILE [FILE ...] --output STORE [--image-ids IDS.txt] "
                     "[--feature-dim D] [--skip-bad] | ban features info STORE");
}
