/* fuzz_npy.c - the .npy reader of examples/npy.h.

   The input is a .npy file. npy_parse (in memory) must refuse it with a message or return
   an array whose data holds count elements of its kind, count being the product of its
   shape; npy_load (the same parser, reading a file) must agree with it: the same verdict,
   the same message, shape and bytes. Seeds: corpus/npy, written by make_seeds.py. */
#define _POSIX_C_SOURCE 200809L
#define UTIL_IMPLEMENTATION /* npy.h writes through util.h */
#define NPY_IMPLEMENTATION
#include "../../examples/npy.h"

#include <unistd.h>

#include "fuzz.h"

static char g_path[64];

static void remove_file(void) { unlink(g_path); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_path[0]) { /* one scratch file per process, for npy_load */
        snprintf(g_path, sizeof g_path, "/tmp/fuzz_npy.%ld.npy", (long)getpid());
        atexit(remove_file);
    }
    npy_array a, b;
    char err_a[512] = "", err_b[512] = "";
    int rc = npy_parse(data, size, g_path, &a, err_a, sizeof err_a);
    if (rc == 0) {
        size_t count = 1, item = a.kind == 'l' ? 8 : a.kind == 'u' ? 1 : 4;
        FUZZ_CHECK(a.ndim >= 0 && a.ndim <= NPY_MAX_DIMS && a.data, "ndim %d", a.ndim);
        for (int i = 0; i < a.ndim; i++) count *= (size_t)a.shape[i];
        FUZZ_CHECK(count == a.count, "count %zu, shape product %zu", a.count, count);
        unsigned sum = 0; /* touch every byte: the sanitizer checks the extent */
        for (size_t i = 0; i < count * item; i++) sum += ((const unsigned char *)a.data)[i];
        (void)sum;
        if (a.kind == 'i' || a.kind == 'l') {
            int32_t *out = malloc(count ? count * sizeof *out : 1);
            npy_to_int32(&a, "fuzz", out, err_b, sizeof err_b);
            free(out);
        }
    } else {
        FUZZ_CHECK(err_a[0] != 0, "refused without a message");
    }
    FILE *f = fopen(g_path, "wb");
    FUZZ_CHECK(f && fwrite(data, 1, size, f) == size && fclose(f) == 0, "cannot write %s", g_path);
    int rc_b = npy_load(g_path, &b, err_b, sizeof err_b);
    FUZZ_CHECK(rc_b == rc, "npy_parse says %d (%s), npy_load %d (%s)", rc, err_a, rc_b, err_b);
    if (rc) {
        FUZZ_CHECK(strcmp(err_a, err_b) == 0, "messages differ: '%s' and '%s'", err_a, err_b);
    } else {
        size_t item = a.kind == 'l' ? 8 : a.kind == 'u' ? 1 : 4;
        FUZZ_CHECK(a.kind == b.kind && a.ndim == b.ndim && a.count == b.count &&
                       !memcmp(a.shape, b.shape, sizeof a.shape) && !memcmp(a.data, b.data, a.count * item),
                   "npy_parse and npy_load read different arrays");
    }
    npy_free(&a);
    npy_free(&b);
    return 0;
}
