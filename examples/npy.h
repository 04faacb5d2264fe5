/* npy.h - read and write NumPy .npy files (the command-line tool's arrays).

   npy_load(path, &arr, err, errlen)   float32, int32, int64 and uint8 arrays, C order,
                                       format versions 1-3; every size checked against the
                                       file; returns 0 or -1 with a message naming the file.
   npy_save(path, descr, ndim, shape, data, err, errlen)
                                       written atomically: a temporary file, then rename().
   Define NPY_IMPLEMENTATION in one file. Little-endian hosts only (as ban.h).
*/
#ifndef NPY_H_INCLUDED
#define NPY_H_INCLUDED
#include <stddef.h>
#include <stdint.h>

#define NPY_MAX_DIMS 8

typedef struct npy_array {
    char kind;                 /* 'f' float32, 'i' int32, 'l' int64, 'u' uint8 */
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    size_t count;              /* elements */
    void *data;
} npy_array;

int npy_load(const char *path, npy_array *out, char *err, size_t errlen);
int npy_save(const char *path, const char *descr, int ndim, const int64_t *shape, const void *data, char *err,
             size_t errlen);
void npy_free(npy_array *a);
/* integer arrays (int32 or int64) as int32 values; -1 with a message when a value does not fit */
int npy_to_int32(const npy_array *a, const char *path, int32_t *out, char *err, size_t errlen);

#endif

#if defined(NPY_IMPLEMENTATION) && !defined(NPY__IMPLEMENTED)
#define NPY__IMPLEMENTED
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int npy__fail(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && len) vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}

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

int npy_load(const char *path, npy_array *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return npy__fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    unsigned char pre[12];
    char *header = NULL;
    int rc = -1;
    size_t hlen, pre_len;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        npy__fail(err, errlen, "%s: not a .npy file", path);
        goto done;
    }
    if (pre[6] == 1) {
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
        pre_len = 10;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            npy__fail(err, errlen, "%s: truncated header", path);
            goto done;
        }
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        pre_len = 12;
    } else {
        npy__fail(err, errlen, "%s: .npy format version %d is not supported", path, pre[6]);
        goto done;
    }
    if (hlen > (1u << 20)) {
        npy__fail(err, errlen, "%s: header of %zu bytes is too long", path, hlen);
        goto done;
    }
    header = (char *)malloc(hlen + 1);
    if (!header || fread(header, 1, hlen, f) != hlen) {
        npy__fail(err, errlen, "%s: truncated header", path);
        goto done;
    }
    header[hlen] = 0;
    if (strlen(header) != hlen) {
        npy__fail(err, errlen, "%s: NUL byte in the header", path);
        goto done;
    }
    const char *descr = npy__value(header, "descr"), *fortran = npy__value(header, "fortran_order"),
               *shape = npy__value(header, "shape");
    if (!descr || !fortran || !shape) {
        npy__fail(err, errlen, "%s: header lacks descr, fortran_order or shape: %.80s", path, header);
        goto done;
    }
    size_t item;
    if (!strncmp(descr, "'<f4'", 5)) out->kind = 'f', item = 4;
    else if (!strncmp(descr, "'<i4'", 5)) out->kind = 'i', item = 4;
    else if (!strncmp(descr, "'<i8'", 5)) out->kind = 'l', item = 8;
    else if (!strncmp(descr, "'|u1'", 5)) out->kind = 'u', item = 1;
    else {
        const char *end = strchr(descr, ',');
        npy__fail(err, errlen, "%s: dtype %.*s is not one of float32 '<f4', int32 '<i4', int64 '<i8', uint8 '|u1'",
                  path, end ? (int)(end - descr) : 8, descr);
        goto done;
    }
    if (strncmp(fortran, "False", 5) != 0) {
        npy__fail(err, errlen, "%s: Fortran-ordered arrays are not supported (save with np.ascontiguousarray)", path);
        goto done;
    }
    if (*shape != '(') {
        npy__fail(err, errlen, "%s: malformed shape in the header", path);
        goto done;
    }
    const char *p = shape + 1;
    size_t count = 1;
    for (;;) {
        while (*p == ' ') p++;
        if (*p == ')') break;
        if (*p < '0' || *p > '9' || out->ndim == NPY_MAX_DIMS) {
            npy__fail(err, errlen, "%s: malformed shape or more than %d dimensions", path, NPY_MAX_DIMS);
            goto done;
        }
        char *e;
        errno = 0;
        long long d = strtoll(p, &e, 10);
        if (errno || d < 0 || d > ((long long)1 << 40)) {
            npy__fail(err, errlen, "%s: dimension out of range", path);
            goto done;
        }
        out->shape[out->ndim++] = d;
        if (d && count > ((size_t)1 << 50) / (size_t)d) {
            npy__fail(err, errlen, "%s: array too large", path);
            goto done;
        }
        count *= (size_t)d;
        p = e;
        while (*p == ' ') p++;
        if (*p == ',') p++;
        else if (*p != ')') {
            npy__fail(err, errlen, "%s: malformed shape", path);
            goto done;
        }
    }
    out->count = count;
    if (fseek(f, 0, SEEK_END) != 0) {
        npy__fail(err, errlen, "%s: cannot seek", path);
        goto done;
    }
    long size = ftell(f);
    size_t data_at = pre_len + hlen;
    if (size < 0 || (size_t)size < data_at || (size_t)size - data_at != count * item) {
        npy__fail(err, errlen, "%s: %ld bytes of data for a %s array of %zu elements (%zu bytes expected)", path,
                  size < 0 ? -1L : size - (long)data_at, out->kind == 'f' ? "float32" : out->kind == 'u' ? "uint8" :
                  out->kind == 'i' ? "int32" : "int64", count, count * item);
        goto done;
    }
    out->data = malloc(count * item > 0 ? count * item : 1);
    if (!out->data || fseek(f, (long)data_at, SEEK_SET) != 0 || fread(out->data, 1, count * item, f) != count * item) {
        npy__fail(err, errlen, "%s: cannot read the data", path);
        goto done;
    }
    rc = 0;
done:
    free(header);
    fclose(f);
    if (rc) npy_free(out);
    return rc;
}

int npy_to_int32(const npy_array *a, const char *path, int32_t *out, char *err, size_t errlen)
{
    for (size_t i = 0; i < a->count; i++) {
        int64_t v;
        if (a->kind == 'i') v = ((const int32_t *)a->data)[i];
        else if (a->kind == 'l') v = ((const int64_t *)a->data)[i];
        else return npy__fail(err, errlen, "%s: expected an int32 or int64 array", path);
        if (v < INT32_MIN || v > INT32_MAX) return npy__fail(err, errlen, "%s: element %zu = %lld does not fit", path, i,
                                                             (long long)v);
        out[i] = (int32_t)v;
    }
    return 0;
}

int npy_save(const char *path, const char *descr, int ndim, const int64_t *shape, const void *data, char *err,
             size_t errlen)
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
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return npy__fail(err, errlen, "%s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return npy__fail(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    int hl = padded - 10;
    pre[8] = (unsigned char)(hl & 255);
    pre[9] = (unsigned char)(hl >> 8);
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(header, 1, (size_t)n, f) == (size_t)n;
    for (int i = 10 + n; ok && i < padded - 1; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF && fwrite(data, item, count, f) == count;
    ok = (fflush(f) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return npy__fail(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    }
    return 0;
}
#endif
