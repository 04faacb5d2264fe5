/* fuzz_npz.c - OpenVQA's per-image feature files (examples/npz.h): zip archives of .npy members.

   The input is an .npz file; the parity of its size names it COCO_val2014_000000000042.jpg.npz
   (image 42) or n161313.npz. Every allocation of the reader (NPZ_MALLOC) is held to what the file
   justifies, before it is made: deflate makes at most 1032 bytes of each, so 1040 times the file
   and 4 KB; a member that claims more is refused unread. Properties:
   - npz_parse_features refuses the file with a message naming it, and nothing to free, or
     returns the image id its name gives, a layout (VQA or GQA), 1..STORE_MAX_BOXES boxes of
     1..STORE_MAX_DIM features, sizes in 1..STORE_MAX_SIDE, and a record store_check_record
     accepts (every value is read, so the sanitizer checks the extent);
   - written back as an .npz of its layout (VQA's x transposed), once stored and once deflated
     (by the writer below, as np.savez and np.savez_compressed lay them out), the features read
     the same, bit for bit;
   - npz_read_features (the file, under the same name) agrees: the same verdict, message and
     values.
   With FUZZ_NPZ_REPORT set in the environment, each input's verdict is printed ("refused:
   MESSAGE", or the id, layout, sizes and every value as hex float32 bits), which
   tests/test_npz.py reads; FUZZ_NPZ_NAME then names the file instead of its first byte. Seeds:
   corpus/npz, written by make_parser_seeds.py. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>

static size_t g_budget;
static void *budget_malloc(size_t n);
#define NPZ_MALLOC(n) budget_malloc(n)
#define NPZ_FREE(p) free(p)
#define UTIL_IMPLEMENTATION /* the file is read through util.h */
#define NPY_IMPLEMENTATION
#define STORE_IMPLEMENTATION
#define NPZ_IMPLEMENTATION
#include "../../examples/npz.h"

#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

static void *budget_malloc(size_t n)
{
    FUZZ_CHECK(n <= g_budget, "npz.h asks for %zu bytes, beyond the %zu this file justifies", n, g_budget);
    return malloc(n);
}

static char g_dir[64], g_path[2][160];
static const char *const g_names[2] = {"COCO_val2014_000000000042.jpg.npz", "n161313.npz"};

static void remove_files(void)
{
    for (int i = 0; i < 2; i++) unlink(g_path[i]);
    rmdir(g_dir);
}

/* ---- a writer of .npz files, as numpy's np.savez (stored) and np.savez_compressed lay them out ---- */

typedef struct {
    unsigned char *buf;
    size_t len, cap;
    unsigned char cd[4096];
    size_t cd_len;
    int count;
} zip_out;

static void put(zip_out *z, const void *p, size_t n)
{
    if (z->len + n > z->cap) {
        z->cap = (z->len + n) * 2;
        z->buf = realloc(z->buf, z->cap);
        FUZZ_CHECK(z->buf != NULL, "out of memory");
    }
    memcpy(z->buf + z->len, p, n);
    z->len += n;
}

static void le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* one member: an .npy of float32 (ndim 2) or int64 (ndim 0) */
static void member(zip_out *z, const char *name, int deflated, const void *data, int ndim, long long d0, long long d1)
{
    char header[128];
    int h = ndim == 2 ? snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, "
                                 "%lld), }", d0, d1)
                      : snprintf(header, sizeof header, "{'descr': '<i8', 'fortran_order': False, 'shape': (), }");
    const int total = (10 + h + 1 + 63) / 64 * 64;
    const size_t nbytes = ndim == 2 ? (size_t)(d0 * d1) * 4 : 8;
    unsigned char *npy = malloc((size_t)total + nbytes);
    memcpy(npy, "\x93NUMPY\x01\x00", 8);
    le(npy + 8, (uint64_t)(total - 10), 2);
    memcpy(npy + 10, header, (size_t)h);
    memset(npy + 10 + h, ' ', (size_t)(total - 10 - h - 1));
    npy[total - 1] = '\n';
    memcpy(npy + total, data, nbytes);
    const size_t usize = (size_t)total + nbytes;
    const uint32_t crc = (uint32_t)crc32(0, npy, (uInt)usize);
    unsigned char *body = npy;
    size_t csize = usize;
    if (deflated) {
        z_stream s;
        memset(&s, 0, sizeof s);
        FUZZ_CHECK(deflateInit2(&s, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK, "deflateInit2");
        csize = deflateBound(&s, usize);
        body = malloc(csize);
        s.next_in = npy, s.avail_in = (uInt)usize, s.next_out = body, s.avail_out = (uInt)csize;
        FUZZ_CHECK(deflate(&s, Z_FINISH) == Z_STREAM_END, "deflate");
        csize = s.total_out;
        deflateEnd(&s);
    }
    const size_t nlen = strlen(name), local = z->len;
    unsigned char lh[30] = {0x50, 0x4b, 0x03, 0x04, 20, 0};
    le(lh + 8, deflated ? 8 : 0, 2), le(lh + 14, crc, 4), le(lh + 18, csize, 4), le(lh + 22, usize, 4);
    le(lh + 26, nlen, 2), le(lh + 28, 20, 2);
    put(z, lh, 30), put(z, name, nlen);
    unsigned char extra[20] = {1, 0, 16, 0}; /* zip64 sizes in the local header, as numpy forces them */
    le(extra + 4, usize, 8), le(extra + 12, csize, 8);
    put(z, extra, 20), put(z, body, csize);
    unsigned char *c = z->cd + z->cd_len;
    FUZZ_CHECK(z->cd_len + 46 + nlen <= sizeof z->cd, "central directory");
    memset(c, 0, 46);
    le(c, 0x02014b50, 4), le(c + 4, 20, 2), le(c + 6, 20, 2), le(c + 10, deflated ? 8 : 0, 2), le(c + 16, crc, 4);
    le(c + 20, csize, 4), le(c + 24, usize, 4), le(c + 28, nlen, 2), le(c + 42, local, 4);
    memcpy(c + 46, name, nlen);
    z->cd_len += 46 + nlen;
    z->count++;
    if (body != npy) free(body);
    free(npy);
}

static void finish(zip_out *z)
{
    unsigned char end[22] = {0x50, 0x4b, 0x05, 0x06};
    const size_t cd_off = z->len;
    put(z, z->cd, z->cd_len);
    le(end + 8, (uint64_t)z->count, 2), le(end + 10, (uint64_t)z->count, 2), le(end + 12, z->cd_len, 4);
    le(end + 16, cd_off, 4);
    put(z, end, 22);
}

/* f as an .npz of its layout */
static zip_out write_npz(const npz_features *f, int deflated)
{
    zip_out z;
    memset(&z, 0, sizeof z);
    const int K = f->n_boxes, D = f->feature_dim, vqa = !strcmp(f->layout, "VQA");
    float *x = malloc((size_t)K * D * sizeof(float));
    for (int k = 0; k < K; k++)
        for (int d = 0; d < D; d++) {
            if (vqa) x[(size_t)d * K + k] = f->features[(size_t)k * D + d];
            else x[(size_t)k * D + d] = f->features[(size_t)k * D + d];
        }
    const int64_t w = f->width, h = f->height, n = K;
    member(&z, "x.npy", deflated, x, 2, vqa ? D : K, vqa ? K : D);
    member(&z, "bbox.npy", deflated, f->boxes, 2, K, 4);
    member(&z, vqa ? "image_w.npy" : "width.npy", deflated, &w, 0, 0, 0);
    member(&z, vqa ? "image_h.npy" : "height.npy", deflated, &h, 0, 0, 0);
    if (vqa) member(&z, "num_bbox.npy", deflated, &n, 0, 0, 0);
    finish(&z);
    free(x);
    return z;
}

static int same(const npz_features *a, const npz_features *b)
{
    return !strcmp(a->id, b->id) && !strcmp(a->layout, b->layout) && a->width == b->width &&
           a->height == b->height && a->n_boxes == b->n_boxes && a->feature_dim == b->feature_dim &&
           !memcmp(a->boxes, b->boxes, (size_t)a->n_boxes * 16) &&
           !memcmp(a->features, b->features, (size_t)a->n_boxes * a->feature_dim * 4);
}

static void report(const npz_features *f, int rc, const char *err)
{
    if (rc) {
        printf("refused: %s\n", err);
        return;
    }
    printf("%s %s %d %d %d %d\n", f->id, f->layout, f->width, f->height, f->n_boxes, f->feature_dim);
    for (int k = 0; k < f->n_boxes * 4; k++) {
        uint32_t bits;
        memcpy(&bits, &f->boxes[k], 4);
        printf("%08x%c", bits, k + 1 < f->n_boxes * 4 ? ' ' : '\n');
    }
    for (size_t k = 0; k < (size_t)f->n_boxes * f->feature_dim; k++) {
        uint32_t bits;
        memcpy(&bits, &f->features[k], 4);
        printf("%08x%c", bits, k + 1 < (size_t)f->n_boxes * f->feature_dim ? ' ' : '\n');
    }
    fflush(stdout);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_dir[0]) { /* a folder per process, in memory when possible, for the files under their names */
        const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(g_dir, sizeof g_dir, "%s/fuzz_npz.%ld", tmp, (long)getpid());
        mkdir(g_dir, 0700);
        for (int i = 0; i < 2; i++) snprintf(g_path[i], sizeof g_path[i], "%s/%s", g_dir, g_names[i]);
        atexit(remove_files);
    }
    const char *report_name = getenv("FUZZ_NPZ_NAME");
    const int which = (int)(size & 1);
    const char *name = report_name ? report_name : g_names[which];
    npz_features a, b;
    char err_a[4400] = "", err_b[4400] = "";
    g_budget = 1040 * (size_t)size + 4096;
    const int rc = npz_parse_features(data, size, name, &a, err_a, sizeof err_a);
    if (getenv("FUZZ_NPZ_REPORT")) report(&a, rc, err_a);
    if (rc) {
        FUZZ_CHECK(!a.boxes && !a.features, "refused, but arrays are handed out");
        FUZZ_CHECK(!strncmp(err_a, name, strlen(name)) && err_a[strlen(name)] == ':', "message: %s", err_a);
    } else {
        char id[STORE_MAX_ID + 1], why[400];
        FUZZ_CHECK(npz_image_id(name, id) == 0 && !strcmp(id, a.id), "image id %s for %s", a.id, name);
        FUZZ_CHECK(!strcmp(a.layout, "VQA") || !strcmp(a.layout, "GQA"), "layout %s", a.layout);
        FUZZ_CHECK(a.n_boxes >= 1 && a.n_boxes <= STORE_MAX_BOXES && a.feature_dim >= 1 &&
                       a.feature_dim <= STORE_MAX_DIM, "%d boxes of %d features", a.n_boxes, a.feature_dim);
        store_record rec = npz_record(&a);
        FUZZ_CHECK(store_check_record(&rec, a.feature_dim, why, sizeof why) == 0, "the store refuses it: %s", why);
        for (int deflated = 0; deflated < 2; deflated++) { /* written back, read back: the same */
            zip_out z = write_npz(&a, deflated);
            g_budget = 1040 * z.len + 4096;
            FUZZ_CHECK(npz_parse_features(z.buf, z.len, name, &b, err_b, sizeof err_b) == 0, "written back (%s): %s",
                       deflated ? "deflated" : "stored", err_b);
            FUZZ_CHECK(same(&a, &b), "written back (%s), the features read differently", deflated ? "deflated" : "stored");
            npz_features_free(&b);
            free(z.buf);
        }
    }
    if (report_name) { /* reports read memory only: the name may be anything */
        npz_features_free(&a);
        return 0;
    }
    /* the same file, read from disk under its name: the same verdict */
    const char *path = g_path[which];
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f && fwrite(data, 1, size, f) == size && fclose(f) == 0, "cannot write %s", path);
    g_budget = 1040 * (size_t)size + 4096;
    const int rc_b = npz_read_features(path, &b, err_b, sizeof err_b);
    FUZZ_CHECK(rc_b == rc, "parse says %d (%s), read %d (%s)", rc, err_a, rc_b, err_b);
    if (rc == 0) {
        FUZZ_CHECK(same(&a, &b), "parse and read give other features");
    } else {
        const size_t lp = strlen(path), ln = strlen(name);
        FUZZ_CHECK(!strncmp(err_b, path, lp) && !strcmp(err_b + lp, err_a + ln), "messages differ: '%s' and '%s'",
                   err_a, err_b);
    }
    npz_features_free(&a);
    npz_features_free(&b);
    return 0;
}
