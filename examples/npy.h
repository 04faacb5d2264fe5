/* npy.h - read and write NumPy .npy files (the command-line tool's arrays).

   npy_load(path, &arr, err, errlen)   float32, int32, int64 and uint8 arrays, C order,
                                       format versions 1-3; every size checked against the
                                       file; returns 0 or -1 with a message naming the file.
   npy_parse(buf, n, name, &arr, err, errlen)
                                       the same from a whole file held in memory (one parser
                                       serves both; `name` stands for the path in messages).
   npy_load_as(path, &want, &arr, err, errlen)
                                       npy_load of an array of the element type and shape
                                       want describes, checked before the data is read; a
                                       mismatch names what was given next to what was
                                       expected, and the NumPy call that fixes it when there
                                       is one ("v.npy: float64 (2, 36, 2048); expected float32
                                       (B, K, 2048): x.astype(np.float32)").
   npy_write(f, descr, ndim, shape, data)   the array to a stream; 0 or -1
   npy_save(path, descr, ndim, shape, data, err, errlen)
                                       npy_write through util.h's atomic writer.
   Define NPY_IMPLEMENTATION in one file, with UTIL_IMPLEMENTATION (examples/util.h).
   Little-endian hosts only (as ban.h).
*/
#ifndef NPY_H_INCLUDED
#define NPY_H_INCLUDED
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

#define NPY_MAX_DIMS 8

typedef struct npy_array {
    char kind;                 /* 'f' float32, 'i' int32, 'l' int64, 'u' uint8 */
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    size_t count;              /* elements */
    void *data;
    char dtype[32];            /* NumPy's name of the element type: "float32", "float64", ... */
} npy_array;

/* what npy_load_as expects */
typedef struct npy_want {
    const char *kinds;         /* the element types accepted: "f", "il" (int32 or int64), "u" */
    int ndim;
    int64_t dims[NPY_MAX_DIMS];  /* a size, or -1: any size from 1 */
    const char *names;         /* the letter a -1 dimension is called in the message: "BK" */
} npy_want;

int npy_load(const char *path, npy_array *out, char *err, size_t errlen);
int npy_parse(const void *buf, size_t n, const char *name, npy_array *out, char *err, size_t errlen);
int npy_load_as(const char *path, const npy_want *want, npy_array *out, char *err, size_t errlen);
int npy_write(FILE *f, const char *descr, int ndim, const int64_t *shape, const void *data);
int npy_save(const char *path, const char *descr, int ndim, const int64_t *shape, const void *data, char *err,
             size_t errlen);
void npy_free(npy_array *a);
/* integer arrays (int32 or int64) as int32 values; -1 with a message when a value does not fit */
int npy_to_int32(const npy_array *a, const char *path, int32_t *out, char *err, size_t errlen);

#endif

#if defined(NPY_IMPLEMENTATION) && !defined(NPY__IMPLEMENTED)
#define NPY__IMPLEMENTED
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the value of 'key' in the header dict: a pointer just past "'key':" and blanks */
static const char *npy__value(const char *h, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

void npy_free(npy_array *a)
{
    if (a) {
        free(a->data);
        a->data = NULL;
    }
}

static const char *npy__kind_name(char kind)
{
    return kind == 'f' ? "float32" : kind == 'u' ? "uint8" : kind == 'i' ? "int32" : kind == 'l' ? "int64" : "?";
}

/* The element type of a descr such as '<f4': out->kind (0 when this reader cannot load
   it), *item its size in bytes (0 when unknown), out->dtype NumPy's name for the messages
   ("float64", "float32, big-endian", or the descr itself when it is not a plain number). */
static void npy__dtype(const char *descr, npy_array *out, size_t *item)
{
    static const struct { const char *code, *name; char kind; size_t item; } types[] = {
        {"<f4", "float32", 'f', 4}, {"<i4", "int32", 'i', 4}, {"<i8", "int64", 'l', 8}, {"|u1", "uint8", 'u', 1},
        {"f2", "float16", 0, 2},   {"f4", "float32", 0, 4},  {"f8", "float64", 0, 8},  {"f16", "float128", 0, 16},
        {"i1", "int8", 0, 1},      {"i2", "int16", 0, 2},    {"i4", "int32", 0, 4},    {"i8", "int64", 0, 8},
        {"u1", "uint8", 0, 1},     {"u2", "uint16", 0, 2},   {"u4", "uint32", 0, 4},   {"u8", "uint64", 0, 8},
        {"b1", "bool", 0, 1},      {"c8", "complex64", 0, 8}, {"c16", "complex128", 0, 16}};
    out->kind = 0, *item = 0;
    const char quote = *descr;
    const char *end = quote == '\'' || quote == '"' ? strchr(descr + 1, quote) : NULL;
    if (!end) { /* a list of fields, or malformed */
        const char *stop = strpbrk(descr, ",}");
        snprintf(out->dtype, sizeof out->dtype, "%.*s", stop ? (int)(stop - descr) : 20, descr);
        return;
    }
    const char *code = descr + 1;
    const size_t len = (size_t)(end - code);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const size_t tl = strlen(types[t].code);
        if (types[t].kind && tl == len && !memcmp(code, types[t].code, len)) {
            out->kind = types[t].kind, *item = types[t].item;
            snprintf(out->dtype, sizeof out->dtype, "%s", types[t].name);
            return;
        }
        /* the others, in any byte order: named, never loaded */
        if (!types[t].kind && len == tl + 1 && strchr("<>|=", code[0]) && !memcmp(code + 1, types[t].code, tl)) {
            *item = types[t].item;
            snprintf(out->dtype, sizeof out->dtype, "%s%s", types[t].name,
                     code[0] == '>' && types[t].item > 1 ? ", big-endian" : "");
            return;
        }
    }
    snprintf(out->dtype, sizeof out->dtype, "%.*s", (int)(len < 24 ? len : 24), code);
}

/* The preamble and header dict at the start of b, of which n bytes are at hand (the whole
   file, or only its first bytes). Fills out->kind (0: a type this reader does not load),
   dtype, ndim, shape and count, *item (bytes per element) and *data_at (where the data
   starts). -1 with a message when the header is malformed, or when the n bytes end before
   it does: *data_at > n is then the size it needs, so a reader holding a prefix of the file
   can fetch the rest of the header and try again. */
static int npy__header(const unsigned char *b, size_t n, const char *name, npy_array *out, size_t *item,
                       size_t *data_at, char *err, size_t errlen)
{
    size_t hlen, pre_len;
    *data_at = 0;
    if (n < 10 || memcmp(b, "\x93NUMPY", 6) != 0) return util_fail(err, errlen, "%s: not a .npy file", name);
    if (b[6] == 1) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        pre_len = 10;
    } else if (b[6] == 2 || b[6] == 3) {
        if (n < 12) return *data_at = 12, util_fail(err, errlen, "%s: truncated header", name);
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        pre_len = 12;
    } else {
        return util_fail(err, errlen, "%s: .npy format version %d is not supported", name, b[6]);
    }
    if (hlen > (1u << 20)) return util_fail(err, errlen, "%s: header of %zu bytes is too long", name, hlen);
    if (n - pre_len < hlen) return *data_at = pre_len + hlen, util_fail(err, errlen, "%s: truncated header", name);
    if (memchr(b + pre_len, 0, hlen)) return util_fail(err, errlen, "%s: NUL byte in the header", name);
    char *header = (char *)malloc(hlen + 1);
    if (!header) return util_fail(err, errlen, "%s: out of memory", name);
    memcpy(header, b + pre_len, hlen);
    header[hlen] = 0;
    int rc = -1;
    const char *descr = npy__value(header, "descr"), *fortran = npy__value(header, "fortran_order"),
               *shape = npy__value(header, "shape");
    if (!descr || !fortran || !shape) {
        util_fail(err, errlen, "%s: header lacks descr, fortran_order or shape: %.80s", name, header);
        goto done;
    }
    npy__dtype(descr, out, item);
    if (strncmp(fortran, "False", 5) != 0) {
        util_fail(err, errlen, "%s: Fortran-ordered arrays are not supported (save with np.ascontiguousarray)", name);
        goto done;
    }
    if (*shape != '(') {
        util_fail(err, errlen, "%s: malformed shape in the header", name);
        goto done;
    }
    const char *p = shape + 1;
    size_t count = 1;
    for (;;) {
        while (*p == ' ') p++;
        if (*p == ')') break;
        if (*p < '0' || *p > '9' || out->ndim == NPY_MAX_DIMS) {
            util_fail(err, errlen, "%s: malformed shape or more than %d dimensions", name, NPY_MAX_DIMS);
            goto done;
        }
        char *e;
        errno = 0;
        long long d = strtoll(p, &e, 10);
        if (errno || d < 0 || d > ((long long)1 << 40)) {
            util_fail(err, errlen, "%s: dimension out of range", name);
            goto done;
        }
        out->shape[out->ndim++] = d;
        if (d && count > ((size_t)1 << 50) / (size_t)d) {
            util_fail(err, errlen, "%s: array too large", name);
            goto done;
        }
        count *= (size_t)d;
        p = e;
        while (*p == ' ') p++;
        if (*p == ',') p++;
        else if (*p != ')') {
            util_fail(err, errlen, "%s: malformed shape", name);
            goto done;
        }
    }
    out->count = count;
    *data_at = pre_len + hlen;
    rc = 0;
done:
    free(header);
    return rc;
}

/* "(2, 36, 2048)"; with names, each -1 of dims written as its letter: "(B, K, 2048)" */
static void npy__shape_text(char *out, size_t len, int ndim, const int64_t *dims, const char *names)
{
    size_t at = (size_t)snprintf(out, len, "(");
    for (int i = 0; i < ndim && at < len; i++) {
        const char *sep = i + 1 < ndim ? ", " : ndim == 1 ? "," : "";
        if (dims[i] < 0 && names && (int)strlen(names) > i)
            at += (size_t)snprintf(out + at, len - at, "%c%s", names[i], sep);
        else
            at += (size_t)snprintf(out + at, len - at, "%lld%s", (long long)dims[i], sep);
    }
    if (at < len) snprintf(out + at, len - at, ")");
}

static int npy__dims_fit(const npy_want *w, int ndim, const int64_t *shape, int skip)
{
    if (ndim + skip != w->ndim) return 0;
    for (int i = 0; i < ndim; i++) {
        const int64_t want = w->dims[i + skip];
        if (want < 0 ? shape[i] < 1 : shape[i] != want) return 0;
    }
    return 1;
}

/* The header's type and shape against what the caller expects: 0, or -1 with a message
   giving both and the NumPy call that fixes it when there is one. */
static int npy__expect(const npy_array *a, const npy_want *w, const char *name, char *err, size_t errlen)
{
    const int type_ok = a->kind && strchr(w->kinds, a->kind);
    const int shape_ok = npy__dims_fit(w, a->ndim, a->shape, 0);
    if (type_ok && shape_ok) return 0;
    const char *want_type = strchr(w->kinds, 'f') ? "float32" : strchr(w->kinds, 'u') ? "uint8" : "int32 or int64";
    const char *np_type = strchr(w->kinds, 'f') ? "np.float32" : strchr(w->kinds, 'u') ? "np.uint8" : "np.int64";
    char given[160], wanted[160], fix[64] = "";
    npy__shape_text(given, sizeof given, a->ndim, a->shape, NULL);
    npy__shape_text(wanted, sizeof wanted, w->ndim, w->dims, w->names);
    const int one_short = !shape_ok && npy__dims_fit(w, a->ndim, a->shape, 1); /* the batch axis missing */
    if (shape_ok || one_short)
        snprintf(fix, sizeof fix, ": x%s%s%s%s", one_short ? "[np.newaxis]" : "", type_ok ? "" : ".astype(",
                 type_ok ? "" : np_type, type_ok ? "" : ")");
    return util_fail(err, errlen, "%s: %s %s; expected %s %s%s", name, a->dtype, given, want_type, wanted, fix);
}

static int npy__loadable(const npy_array *a, const char *name, char *err, size_t errlen)
{
    if (a->kind) return 0;
    return util_fail(err, errlen, "%s: dtype %s is not one of float32 '<f4', int32 '<i4', int64 '<i8', uint8 '|u1'",
                     name, a->dtype);
}

/* the data must fill the rest of the file exactly; avail < 0: its size is unknown */
static int npy__check_data(const npy_array *a, size_t item, long long avail, const char *name, char *err,
                           size_t errlen)
{
    if (avail >= 0 && (unsigned long long)avail == (unsigned long long)(a->count * item)) return 0;
    return util_fail(err, errlen, "%s: %lld bytes of data for a %s array of %zu elements (%zu bytes expected)", name,
                     avail < 0 ? -1LL : avail, npy__kind_name(a->kind), a->count, a->count * item);
}

int npy_parse(const void *buf, size_t n, const char *name, npy_array *out, char *err, size_t errlen)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t item = 0, data_at;
    memset(out, 0, sizeof *out);
    if (!b) n = 0;
    if (npy__header(b, n, name, out, &item, &data_at, err, errlen) || npy__loadable(out, name, err, errlen) ||
        npy__check_data(out, item, (long long)(n - data_at), name, err, errlen))
        return -1;
    const size_t bytes = out->count * item;
    out->data = malloc(bytes > 0 ? bytes : 1);
    if (!out->data) return util_fail(err, errlen, "%s: out of memory", name);
    if (bytes > 0) memcpy(out->data, b + data_at, bytes);
    return 0;
}

/* npy_load, and npy_load_as when want is not NULL */
static int npy__load(const char *path, const npy_want *want, npy_array *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return util_fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    unsigned char pre[12], *head = NULL;
    size_t got = fread(pre, 1, sizeof pre, f), item = 0, data_at;
    int rc = npy__header(pre, got, path, out, &item, &data_at, err, errlen);
    if (rc && got == sizeof pre && data_at > got) { /* the header goes on: read it whole, parse it again */
        if (!(head = (unsigned char *)malloc(data_at))) {
            util_fail(err, errlen, "%s: out of memory", path);
            goto done;
        }
        memcpy(head, pre, got);
        got += fread(head + got, 1, data_at - got, f);
        memset(out, 0, sizeof *out);
        rc = npy__header(head, got, path, out, &item, &data_at, err, errlen);
    }
    if (!rc) rc = want ? npy__expect(out, want, path, err, errlen) : npy__loadable(out, path, err, errlen);
    if (rc) goto done;
    rc = -1;
    if (fseek(f, 0, SEEK_END) != 0) {
        util_fail(err, errlen, "%s: cannot seek", path);
        goto done;
    }
    long size = ftell(f);
    if (npy__check_data(out, item, size < 0 ? -1LL : (long long)size - (long long)data_at, path, err, errlen))
        goto done;
    out->data = malloc(out->count * item > 0 ? out->count * item : 1);
    if (!out->data || fseek(f, (long)data_at, SEEK_SET) != 0 ||
        fread(out->data, 1, out->count * item, f) != out->count * item) {
        util_fail(err, errlen, "%s: cannot read the data", path);
        goto done;
    }
    rc = 0;
done:
    free(head);
    fclose(f);
    if (rc) npy_free(out);
    return rc;
}

int npy_load(const char *path, npy_array *out, char *err, size_t errlen)
{
    return npy__load(path, NULL, out, err, errlen);
}

int npy_load_as(const char *path, const npy_want *want, npy_array *out, char *err, size_t errlen)
{
    return npy__load(path, want, out, err, errlen);
}

int npy_to_int32(const npy_array *a, const char *path, int32_t *out, char *err, size_t errlen)
{
    for (size_t i = 0; i < a->count; i++) {
        int64_t v;
        if (a->kind == 'i') v = ((const int32_t *)a->data)[i];
        else if (a->kind == 'l') v = ((const int64_t *)a->data)[i];
        else return util_fail(err, errlen, "%s: expected an int32 or int64 array", path);
        if (v < INT32_MIN || v > INT32_MAX)
            return util_fail(err, errlen, "%s: element %zu = %lld does not fit", path, i, (long long)v);
        out[i] = (int32_t)v;
    }
    return 0;
}

int npy_write(FILE *f, const char *descr, int ndim, const int64_t *shape, const void *data)
{
    char header[256], dims[200] = "";
    size_t count = 1, item = strcmp(descr, "<i8") == 0 ? 8 : strcmp(descr, "|u1") == 0 ? 1 : 4;
    for (int i = 0; i < ndim; i++) {
        snprintf(dims + strlen(dims), sizeof dims - strlen(dims), "%lld,%s", (long long)shape[i],
                 i + 1 < ndim ? " " : "");
        count *= (size_t)shape[i];
    }
    if (ndim > 1) dims[strlen(dims) - 1] = 0; /* (3,) keeps its comma, (3, 4) does not */
    int n = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, dims);
    int total = 10 + n + 1, padded = (total + 63) / 64 * 64;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    int hl = padded - 10;
    pre[8] = (unsigned char)(hl & 255);
    pre[9] = (unsigned char)(hl >> 8);
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(header, 1, (size_t)n, f) == (size_t)n;
    for (int i = 10 + n; ok && i < padded - 1; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF && fwrite(data, item, count, f) == count;
    return ok ? 0 : -1;
}

int npy_save(const char *path, const char *descr, int ndim, const int64_t *shape, const void *data, char *err,
             size_t errlen)
{
    util_out o;
    if (util_out_open(&o, path, err, errlen)) return -1;
    npy_write(o.f, descr, ndim, shape, data); /* a failed write shows in the commit's flush */
    return util_out_commit(&o, err, errlen);
}
#endif
