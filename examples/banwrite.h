/* banwrite.h - a writer of .ban model files (docs/FORMAT.md): ban bench's random models and
   ban quantize's reduced ones, both through util.h's one atomic writer.

   banwrite w;  banwrite_init(&w);
   banwrite_meta(&w, key, type, value, size)     a metadata entry as stored (ban_model_meta's)
   banwrite_meta_int(&w, key, v), banwrite_meta_string(&w, key, s), banwrite_meta_strings(&w, key, s, n)
   banwrite_tensor(&w, name, dtype, ndim, dims, fill, ctx, arg)
                                                 a tensor ("f32", "f16", "bf16", "int8"), whose
                                                 fill(ctx, arg, sink) streams exactly its bytes
                                                 with banwrite_put(sink, p, n)
   banwrite_commit(&w, path, progress, &size, err, errlen)
                                                 the file, atomically (progress: a line per
                                                 tensor on that stream, or NULL)
   banwrite_free(&w)

   banwrite_reduce_weight(src, src_panels, stack, N, K, dtype, out, scales)
       a weight given as f32 in rows (stack, N, K) or in f32 panels (stack, P, K, 32), stored
       as bf16 or int8 (ban_reduce's rule, a scale per row into scales (stack, N)): in panels
       with K padded to the dtype's group when dst_panels, else in rows (an embedding). The one
       place the examples lay reduced weights out; tools/banfile.py is the Python one, and a
       test holds the two byte for byte equal.

   Define BANWRITE_IMPLEMENTATION in one C file (examples/impl.c), after ban.h's and util.h's. */
#ifndef BANWRITE_H_INCLUDED
#define BANWRITE_H_INCLUDED
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct banwrite_sink banwrite_sink;
typedef int (*banwrite_fill)(void *ctx, int arg, banwrite_sink *sink);

typedef struct banwrite_tensor_entry {
    char *name;
    int dtype;                 /* the file's code: 0 f32, 1 f16, 2 bf16, 3 int8 */
    int ndim;
    uint64_t dims[4];
    uint64_t bytes;
    banwrite_fill fill;
    void *ctx;
    int arg;
} banwrite_tensor_entry;

typedef struct banwrite_bytes {
    unsigned char *p;
    size_t len, cap;
    int failed;                /* out of memory */
} banwrite_bytes;

typedef struct banwrite {
    banwrite_bytes meta;       /* the metadata entries, encoded */
    uint64_t n_meta;
    banwrite_tensor_entry *t;
    int n, cap;
    int failed;                /* out of memory, or a bad entry: commit refuses */
} banwrite;

void banwrite_init(banwrite *w);
void banwrite_free(banwrite *w);
void banwrite_meta(banwrite *w, const char *key, uint32_t type, const void *value, uint64_t size);
void banwrite_meta_int(banwrite *w, const char *key, int64_t v);
void banwrite_meta_string(banwrite *w, const char *key, const char *s);
void banwrite_meta_strings(banwrite *w, const char *key, const char *const *s, size_t n);
void banwrite_tensor(banwrite *w, const char *name, const char *dtype, int ndim, const uint64_t *dims,
                     banwrite_fill fill, void *ctx, int arg);
int banwrite_put(banwrite_sink *sink, const void *p, size_t n);
int banwrite_commit(banwrite *w, const char *path, FILE *progress, uint64_t *size, char *err, size_t errlen);
int banwrite_reduce_weight(const float *src, int src_panels, int stack, int N, int K, const char *dtype,
                           int dst_panels, unsigned char *out, float *scales);
#endif /* BANWRITE_H_INCLUDED */

#if defined(BANWRITE_IMPLEMENTATION) && !defined(BANWRITE__IMPLEMENTED)
#define BANWRITE__IMPLEMENTED
#include <stdlib.h>
#include <string.h>

#define BANWRITE__ALIGN 64 /* as tools/banfile.py writes */

static const char *const banwrite__dtypes[4] = {"f32", "f16", "bf16", "int8"};
static const int banwrite__bytes[4] = {4, 2, 2, 1};

static int banwrite__dtype(const char *name)
{
    for (int d = 0; d < 4; d++)
        if (name && !strcmp(name, banwrite__dtypes[d])) return d;
    return -1;
}

struct banwrite_sink {
    FILE *f;
    uint64_t written;
    int error;
};

void banwrite_init(banwrite *w) { memset(w, 0, sizeof *w); }

void banwrite_free(banwrite *w)
{
    for (int i = 0; i < w->n; i++) free(w->t[i].name);
    free(w->t);
    free(w->meta.p);
    memset(w, 0, sizeof *w);
}

/* little-endian values appended to a growing buffer (docs/FORMAT.md's encoding) */
static void banwrite__put(banwrite_bytes *b, const void *p, size_t n)
{
    if (b->failed || !n) return;
    if (b->len + n > b->cap) {
        const size_t cap = (b->len + n) * 2 + 256;
        unsigned char *grown = (unsigned char *)realloc(b->p, cap);
        if (!grown) { b->failed = 1; return; }
        b->p = grown, b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}
static void banwrite__u32(banwrite_bytes *b, uint32_t v)
{
    const unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                                (unsigned char)(v >> 24)};
    banwrite__put(b, x, 4);
}
static void banwrite__u64(banwrite_bytes *b, uint64_t v)
{
    banwrite__u32(b, (uint32_t)v);
    banwrite__u32(b, (uint32_t)(v >> 32));
}
static void banwrite__string(banwrite_bytes *b, const char *s)
{
    banwrite__u32(b, (uint32_t)strlen(s));
    banwrite__put(b, s, strlen(s) + 1);
}

void banwrite_meta(banwrite *w, const char *key, uint32_t type, const void *value, uint64_t size)
{
    banwrite__string(&w->meta, key);
    banwrite__u32(&w->meta, type);
    banwrite__u64(&w->meta, size);
    banwrite__put(&w->meta, value, (size_t)size);
    w->n_meta++;
}

void banwrite_meta_int(banwrite *w, const char *key, int64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)v >> (8 * i));
    banwrite_meta(w, key, 1, b, 8);
}

void banwrite_meta_string(banwrite *w, const char *key, const char *s) { banwrite_meta(w, key, 3, s, strlen(s) + 1); }

void banwrite_meta_strings(banwrite *w, const char *key, const char *const *s, size_t n)
{
    banwrite_bytes array = {NULL, 0, 0, 0}; /* a count, then the strings */
    banwrite__u64(&array, (uint64_t)n);
    for (size_t i = 0; i < n; i++) banwrite__string(&array, s[i]);
    if (array.failed) w->failed = 1;
    else banwrite_meta(w, key, 4, array.p, array.len);
    free(array.p);
}

void banwrite_tensor(banwrite *w, const char *name, const char *dtype, int ndim, const uint64_t *dims,
                     banwrite_fill fill, void *ctx, int arg)
{
    const int d = banwrite__dtype(dtype);
    if (w->failed || d < 0 || ndim < 1 || ndim > 4) { w->failed = 1; return; }
    if (w->n == w->cap) {
        const int cap = w->cap ? 2 * w->cap : 32;
        banwrite_tensor_entry *grown = (banwrite_tensor_entry *)realloc(w->t, (size_t)cap * sizeof *grown);
        if (!grown) { w->failed = 1; return; }
        w->t = grown, w->cap = cap;
    }
    banwrite_tensor_entry *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    if (!(t->name = (char *)malloc(strlen(name) + 1))) { w->failed = 1; return; }
    memcpy(t->name, name, strlen(name) + 1);
    t->dtype = d, t->ndim = ndim, t->bytes = (uint64_t)banwrite__bytes[d], t->fill = fill, t->ctx = ctx, t->arg = arg;
    for (int i = 0; i < ndim; i++) t->dims[i] = dims[i], t->bytes *= dims[i];
    w->n++;
}

int banwrite_put(banwrite_sink *sink, const void *p, size_t n)
{
    if (sink->error || (n && fwrite(p, 1, n, sink->f) != n)) return sink->error = 1, -1;
    sink->written += n;
    return 0;
}

static int banwrite__pad(banwrite_sink *sink, uint64_t n)
{
    static const unsigned char zeros[BANWRITE__ALIGN];
    return banwrite_put(sink, zeros, (size_t)((BANWRITE__ALIGN - n % BANWRITE__ALIGN) % BANWRITE__ALIGN));
}

int banwrite_commit(banwrite *w, const char *path, FILE *progress, uint64_t *size, char *err, size_t errlen)
{
    if (w->failed || w->meta.failed)
        return util_fail(err, errlen, "%s: out of memory, or a bad tensor, while listing the file", path);
    banwrite_bytes dir = {NULL, 0, 0, 0}, header = {NULL, 0, 0, 0};
    uint64_t offset = 0;
    for (int i = 0; i < w->n; i++) { /* tensor entries: name, dtype, ndim, dims, offset */
        const banwrite_tensor_entry *t = &w->t[i];
        banwrite__string(&dir, t->name);
        banwrite__u32(&dir, (uint32_t)t->dtype);
        banwrite__u32(&dir, (uint32_t)t->ndim);
        for (int d = 0; d < t->ndim; d++) banwrite__u64(&dir, t->dims[d]);
        banwrite__u64(&dir, offset);
        offset += (t->bytes + BANWRITE__ALIGN - 1) / BANWRITE__ALIGN * BANWRITE__ALIGN;
    }
    const uint64_t head = 48 + w->meta.len + dir.len;
    const uint64_t data_offset = (head + BANWRITE__ALIGN - 1) / BANWRITE__ALIGN * BANWRITE__ALIGN;
    banwrite__put(&header, "BANM", 4);
    banwrite__u32(&header, 1), banwrite__u32(&header, BANWRITE__ALIGN), banwrite__u32(&header, 0);
    banwrite__u64(&header, w->n_meta), banwrite__u64(&header, (uint64_t)w->n);
    banwrite__u64(&header, data_offset), banwrite__u64(&header, offset);
    util_out o;
    const int oom = dir.failed || header.failed;
    if (oom || util_out_open(&o, path, err, errlen)) {
        free(dir.p), free(header.p);
        return oom ? util_fail(err, errlen, "%s: out of memory", path) : -1;
    }
    banwrite_sink sink = {o.f, 0, 0};
    banwrite_put(&sink, header.p, header.len);
    banwrite_put(&sink, w->meta.p, w->meta.len);
    banwrite_put(&sink, dir.p, dir.len);
    banwrite__pad(&sink, sink.written);
    free(dir.p), free(header.p);
    for (int i = 0; i < w->n && !sink.error; i++) {
        const banwrite_tensor_entry *t = &w->t[i];
        const uint64_t start = sink.written;
        if (progress) {
            fprintf(progress, "[%*d/%d] %-36s %-4s (", w->n >= 10 ? 2 : 1, i + 1, w->n, t->name, banwrite__dtypes[t->dtype]);
            for (int d = 0; d < t->ndim; d++) fprintf(progress, "%s%llu", d ? ", " : "", (unsigned long long)t->dims[d]);
            fprintf(progress, ") %.1f MB\n", (double)t->bytes / 1048576.0);
        }
        if (t->fill(t->ctx, t->arg, &sink) || sink.written - start != t->bytes) {
            util_out_abort(&o);
            return util_fail(err, errlen, "%s: tensor '%s': %s", path, t->name,
                             sink.error ? "cannot write" : "its bytes did not come out as its shape says");
        }
        banwrite__pad(&sink, t->bytes);
    }
    if (sink.error) {
        util_out_abort(&o);
        return util_fail(err, errlen, "%s: cannot write", path);
    }
    if (util_out_commit(&o, err, errlen)) return -1;
    if (size) *size = data_offset + offset;
    return 0;
}

int banwrite_reduce_weight(const float *src, int src_panels, int stack, int N, int K, const char *dtype,
                           int dst_panels, unsigned char *out, float *scales)
{
    const int d = banwrite__dtype(dtype);
    if ((d != 2 && d != 3) || N < 1 || K < 1 || stack < 1) return -1;
    const size_t P = ((size_t)N + 31) / 32, group = d == 2 ? 2 : 4, eb = (size_t)banwrite__bytes[d];
    const size_t Kp = ((size_t)K + group - 1) / group * group;
    float *row = (float *)malloc((size_t)K * sizeof(float));
    unsigned char *q = (unsigned char *)malloc((size_t)K * eb);
    if (!row || !q) return free(row), free(q), -1;
    if (dst_panels) memset(out, 0, (size_t)stack * P * Kp * 32 * eb); /* the padding: zeros */
    for (size_t g = 0; g < (size_t)stack; g++)
        for (size_t n = 0; n < (size_t)N; n++) {
            for (size_t k = 0; k < (size_t)K; k++) /* row n of W, from either layout */
                row[k] = src_panels ? src[((g * P + n / 32) * (size_t)K + k) * 32 + n % 32]
                                    : src[(g * (size_t)N + n) * (size_t)K + k];
            float s = 1.0f;
            ban_reduce(dtype, row, (size_t)K, q, &s);
            if (d == 3) scales[g * (size_t)N + n] = s;
            if (!dst_panels) {
                memcpy(out + (g * (size_t)N + n) * (size_t)K * eb, q, (size_t)K * eb);
                continue;
            }
            unsigned char *panel = out + (g * P + n / 32) * Kp * 32 * eb;
            for (size_t k = 0; k < (size_t)K; k++) /* docs/FORMAT.md: (k / group) 32 group + j group + k % group */
                memcpy(panel + (k / group * 32 * group + n % 32 * group + k % group) * eb, q + k * eb, eb);
        }
    free(row), free(q);
    return 0;
}
#endif /* BANWRITE_IMPLEMENTATION */
