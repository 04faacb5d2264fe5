/* fuzz_image.c - the capped image loader of the examples (examples/image.h, on stb_image).

   The input is an image file (PNG, BMP, a refused JPEG, or anything). Every allocation stb_image
   makes is counted (STBI_MALLOC, STBI_REALLOC) and held to a budget before it is made: what the
   image justifies (16 bytes a pixel of the size the probe read, twice the file, and 1 MB), or
   nothing when the probe refuses the file. A request beyond it aborts the target there, before
   the memory is taken (a 16 KB PNG of 1 x 1 pixels whose data inflates to 16 MB did, in
   regressions/image/), as libFuzzer's -malloc_limit_mb would for the largest ones. Properties:
   - image_probe (the header read here, and the PNG data inflated within what its pixels need)
     refuses what announces more than the caps, or whose data is not what it announces, before
     stb_image sees it: when it refuses, image_decode refuses with the same message and stb_image
     has allocated nothing at all;
   - an image that decodes is exactly the size its header announces, within the caps
     (IMAGE_MAX_SIDE a side, IMAGE_MAX_PIXELS), its w x h x 3 bytes all readable, and no
     allocation of stb_image exceeded the budget;
   - a refusal comes with a message naming the image;
   - load_image_memory (resized to 8 x 8) and load_image (the file) agree with image_decode.
   With FUZZ_IMAGE_REPORT set in the environment, each input's verdict is printed (as
   "decoded W x H", "refused before decoding: MESSAGE" or "refused by stb_image: MESSAGE"),
   which tests/test_images.py reads. Seeds: corpus/image, written by make_seeds.py. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

static size_t g_allocs, g_largest, g_budget;

static void count(size_t n)
{
    g_allocs++;
    if (n > g_largest) g_largest = n;
    FUZZ_CHECK(n <= g_budget, "stb_image asks for %zu bytes, beyond the %zu this image justifies", n, g_budget);
}

static void *count_malloc(size_t n)
{
    count(n);
    return malloc(n);
}

static void *count_realloc(void *p, size_t n)
{
    count(n);
    return realloc(p, n);
}

#define STBI_MALLOC(n) count_malloc(n)
#define STBI_REALLOC(p, n) count_realloc(p, n)
#define STBI_FREE(p) free(p)
#define UTIL_IMPLEMENTATION /* load_image reads through util.h */
#define IMAGE_IMPLEMENTATION
#include "../../examples/image.h"

static char g_path[64];

static void remove_file(void) { unlink(g_path); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_path[0]) {
        snprintf(g_path, sizeof g_path, "/tmp/fuzz_image.%ld.img", (long)getpid());
        atexit(remove_file);
    }
    const int report = getenv("FUZZ_IMAGE_REPORT") != NULL;
    image_info info;
    char err_p[512] = "", err[512] = "", err_m[512] = "", err_f[512] = "";
    const int probed = image_probe(data, size, "img", &info, err_p, sizeof err_p) == 0;
    g_allocs = g_largest = 0;
    g_budget = probed ? (size_t)info.width * (size_t)info.height * 16 + 2 * size + (1u << 20) : 0;
    int w = 0, h = 0;
    unsigned char *px = image_decode(data, size, "img", &w, &h, err, sizeof err);
    if (!probed) {
        FUZZ_CHECK(!px && !strcmp(err, err_p), "the probe refuses (%s), the decoder says: %s", err_p, px ? "ok" : err);
        FUZZ_CHECK(g_allocs == 0, "refused before decoding, yet stb_image allocated %zu times (%zu bytes at most)",
                   g_allocs, g_largest);
    }
    if (px) {
        FUZZ_CHECK(probed && w == info.width && h == info.height, "decoded %d x %d, the header says %lld x %lld", w, h,
                   info.width, info.height);
        FUZZ_CHECK(w >= 1 && h >= 1 && w <= IMAGE_MAX_SIDE && h <= IMAGE_MAX_SIDE &&
                       (unsigned long long)w * h <= IMAGE_MAX_PIXELS, "decoded %d x %d: over the caps", w, h);
        unsigned sum = 0; /* every byte readable */
        for (size_t i = 0; i < (size_t)w * h * 3; i++) sum += px[i];
        (void)sum;
    } else {
        FUZZ_CHECK(!strncmp(err, "img: ", 5), "message without the name: %s", err);
    }
    if (report) {
        if (px) printf("decoded %d x %d\n", w, h);
        else printf("refused %s: %s\n", probed ? "by stb_image" : "before decoding", err);
        fflush(stdout);
    }
    /* resized from memory, and from a file: the same verdict (not for large images: slow) */
    if (!px || (size_t)w * h <= (1u << 16)) {
        unsigned char *small = load_image_memory(data, size, "img", 8, 8, err_m, sizeof err_m);
        FUZZ_CHECK(!small == !px && (px || !strcmp(err, err_m)), "image_decode says %s, load_image_memory %s",
                   px ? "ok" : err, small ? "ok" : err_m);
        if (small) {
            unsigned sum = 0;
            for (size_t i = 0; i < 8 * 8 * 3; i++) sum += small[i];
            (void)sum;
        }
        free(small);
        FILE *f = fopen(g_path, "wb");
        FUZZ_CHECK(f && fwrite(data, 1, size, f) == size && fclose(f) == 0, "cannot write %s", g_path);
        unsigned char *from_file = load_image(g_path, 8, 8, err_f, sizeof err_f);
        const size_t lp = strlen(g_path);
        FUZZ_CHECK(!from_file == !px, "load_image disagrees: %s", from_file ? "ok" : err_f);
        if (!px) /* the same message, the path in place of the name */
            FUZZ_CHECK(!strncmp(err_f, g_path, lp) && !strcmp(err_f + lp, err + 3), "messages differ: '%s' and '%s'",
                       err, err_f);
        free(from_file);
    }
    free(px);
    return 0;
}
