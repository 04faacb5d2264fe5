/* image.h - PNG and BMP images for the examples (`ban ask`, `ban easyvqa-eval`:
   examples/cmd_pixels.c), decoded by stb_image and refused before decoding when they
   announce more than the caps.

   load_image(path, W, H, err, errlen)              RGB bytes (H, W, 3), resized to W x H with
                                                    stb_image_resize; malloc'd (free());
                                                    NULL with a message naming the file
   load_image_memory(buf, n, name, W, H, err, errlen)  the same from a whole file in memory
                                                    (`name` stands for the path in messages)
   image_decode(buf, n, name, &w, &h, err, errlen)  RGB bytes (h, w, 3) at the image's own size
   image_probe(buf, n, name, &info, err, errlen)    the checks made before anything is decoded:
                                                    0 and info (format, width, height), or -1

   Before stb_image sees a byte, the file's own header (PNG: IHDR; BMP: the info header) is
   read here, and the image refused unless it is 1 to IMAGE_MAX_BYTES bytes, 1..IMAGE_MAX_SIDE
   pixels a side and at most IMAGE_MAX_PIXELS pixels ("W x H pixels: refused"), and whole: a
   BMP holds every row its header announces (stb_image would read zeros past the end), a
   PNG's chunks all fit in the file up to IEND and hold enough compressed data for the pixels
   (stb_image allocates what a header claims before reading the data). A PNG's data is then
   inflated here (zlib, 16 KB at a time, nothing kept) and must make exactly the bytes its
   pixels need (a filter byte and the packed samples of each row, of each pass when
   interlaced): no more, since stb_image inflates whatever the data holds into one buffer (a
   1 MB file of a 1 x 1 image inflated to 1 GB), and no less. These refusals read "cannot
   decode: ...", as stb_image's own do. stb_image's reading of the header must then agree
   with this one, and so must the size it decodes.

   JPEG is refused. Debian 12's stb_image 2.27 overflows a heap table on a JPEG Huffman table
   of more than 256 codes, decodes with tables no segment defined, and shifts by 32 bits or
   more on corrupt entropy-coded data (tests/fuzz/regressions/image/): the first two could be
   checked before decoding, the last not without decoding the scan. The PNG and BMP paths are
   checked completely here.

   Define IMAGE_IMPLEMENTATION in exactly one C file (in build/ban: examples/cmd_pixels.c);
   it compiles stb_image (PNG and BMP only) and stb_image_resize there; UTIL_IMPLEMENTATION
   in one too (util_read_file); link with -lz. STBI_MALLOC,
   STBI_REALLOC and STBI_FREE may be defined before it (tests/fuzz/fuzz_image.c counts
   stb_image's allocations). */
#ifndef IMAGE_H_INCLUDED
#define IMAGE_H_INCLUDED
#include <stddef.h>

#define IMAGE_MAX_BYTES (64u << 20)   /* a file larger than this is refused unread */
#define IMAGE_MAX_SIDE 8192           /* width and height, checked in the header */
#define IMAGE_MAX_PIXELS (32u << 20)  /* width x height */

typedef struct image_info {
    const char *format;               /* "PNG" or "BMP" */
    long long width, height;          /* as the header announces them (a BMP's height: its magnitude) */
} image_info;

unsigned char *load_image(const char *path, int W, int H, char *err, size_t errlen);
unsigned char *load_image_memory(const void *buf, size_t n, const char *name, int W, int H, char *err, size_t errlen);
unsigned char *image_decode(const void *buf, size_t n, const char *name, int *w, int *h, char *err, size_t errlen);
int image_probe(const void *buf, size_t n, const char *name, image_info *info, char *err, size_t errlen);

#endif /* IMAGE_H_INCLUDED */

#if defined(IMAGE_IMPLEMENTATION) && !defined(IMAGE__IMPLEMENTED)
#define IMAGE__IMPLEMENTED
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util.h"

#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_MAX_DIMENSIONS 16384
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#pragma GCC diagnostic pop

static unsigned long image__be32(const unsigned char *p)
{
    return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
}
static unsigned image__le16(const unsigned char *p) { return (unsigned)p[1] << 8 | p[0]; }
static unsigned long image__le32(const unsigned char *p)
{
    return (unsigned long)p[3] << 24 | (unsigned long)p[2] << 16 | (unsigned long)p[1] << 8 | p[0];
}

/* Bytes a w x h PNG of `channels` samples of `depth` bits a pixel inflates to: each row's filter
   byte and packed samples, for the whole image or, interlaced (Adam7), for each of its 7 passes. */
static unsigned long long image__png_raw_bytes(unsigned long long w, unsigned long long h, unsigned channels,
                                               unsigned depth, int interlaced)
{
    static const unsigned x0[7] = {0, 4, 0, 2, 0, 1, 0}, y0[7] = {0, 0, 4, 0, 2, 0, 1};
    static const unsigned dx[7] = {8, 8, 4, 4, 2, 2, 1}, dy[7] = {8, 8, 8, 4, 4, 2, 2};
    unsigned long long bytes = 0;
    for (int p = 0; p < (interlaced ? 7 : 1); p++) {
        const unsigned long long pw = interlaced ? (w > x0[p] ? (w - x0[p] + dx[p] - 1) / dx[p] : 0) : w;
        const unsigned long long ph = interlaced ? (h > y0[p] ? (h - y0[p] + dy[p] - 1) / dy[p] : 0) : h;
        if (pw && ph) bytes += ph * (1 + (pw * channels * depth + 7) / 8);
    }
    return bytes;
}

/* Inflate the IDAT chunks of the n-byte PNG at b (chunks already checked to fit), stopping as
   soon as they make more than `need` bytes; 0 when they make exactly `need`, or -1 with why. */
static int image__png_inflate_check(const unsigned char *b, size_t n, unsigned long long need, char *why,
                                    size_t whylen)
{
    unsigned char out[16384];
    unsigned long long made = 0;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK) return snprintf(why, whylen, "out of memory for zlib"), -1;
    int ret = Z_OK, bad = 0;
    for (size_t p = 8; p + 12 <= n && ret != Z_STREAM_END && !bad;) {
        const unsigned long len = image__be32(b + p);
        if (!memcmp(b + p + 4, "IEND", 4)) break;
        if (!memcmp(b + p + 4, "IDAT", 4)) {
            z.next_in = (unsigned char *)b + p + 8; /* zlib's API is not const; it only reads */
            z.avail_in = (unsigned)len;
            do { /* until the chunk is used up: output left over means inflate wants more input */
                z.next_out = out, z.avail_out = sizeof out;
                ret = inflate(&z, Z_NO_FLUSH);
                made += sizeof out - z.avail_out;
                if (made > need) {
                    bad = 1;
                    snprintf(why, whylen, "PNG data inflates to more than the %llu bytes its pixels need (a "
                             "decompression bomb?)", need);
                } else if (ret == Z_BUF_ERROR) { /* no progress: this chunk holds no more */
                    ret = Z_OK;
                    break;
                } else if (ret != Z_OK && ret != Z_STREAM_END) {
                    bad = 1;
                    snprintf(why, whylen, "corrupt PNG data (zlib: %s)", z.msg ? z.msg : "error");
                }
            } while (!bad && ret == Z_OK && z.avail_out == 0);
        }
        p += 12 + len;
    }
    inflateEnd(&z);
    if (!bad && (ret != Z_STREAM_END || made < need)) {
        bad = 1;
        snprintf(why, whylen, "PNG data inflates to %llu of the %llu bytes its pixels need%s: truncated or corrupt",
                 made, need, ret != Z_STREAM_END ? ", and its deflate stream does not end" : "");
    }
    return bad ? -1 : 0;
}

/* A PNG's chunks, from the first: each must fit in the file, up to IEND, and the IDAT chunks
   must hold enough deflate data for the w x h pixels the header announces (deflate expands
   at most 1032 times): stb_image allocates what a chunk header or the image header claims
   before it reads the data. Then the data must inflate to exactly what the pixels need.
   0, or -1 with the reason. */
static int image__png_walk(const unsigned char *b, size_t n, long long w, long long h, char *why, size_t whylen)
{
    static const unsigned char channels[7] = {1, 0, 3, 1, 2, 0, 4}; /* by colour type (0: not a PNG one) */
    if (n < 8 + 8 + 13 + 4) /* the signature and the whole IHDR chunk, before reading its fields */
        return snprintf(why, whylen, "truncated PNG (%zu bytes: no complete IHDR chunk)", n), -1;
    const unsigned depth = b[24], type = b[25], interlace = b[28];
    unsigned long long idat = 0;
    size_t p = 8;
    for (;;) {
        if (n - p < 12) return snprintf(why, whylen, "truncated PNG (no IEND chunk)"), -1;
        const unsigned long len = image__be32(b + p);
        if (len > 0x7FFFFFFFul || len > n - p - 12)
            return snprintf(why, whylen, "truncated PNG (chunk '%.4s' of %lu bytes at byte %zu runs past the end)",
                            (const char *)b + p + 4, len, p), -1;
        if (!memcmp(b + p + 4, "IDAT", 4)) idat += len;
        p += 12 + len;
        if (!memcmp(b + p - len - 8, "IEND", 4)) break;
    }
    /* others (a colour type or depth PNG does not have, a palette of 16 bits, an interlace method
       but 0 and 1): stb_image refuses them before it inflates anything */
    if (type <= 6 && channels[type] && (depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16) &&
        !(type == 3 && depth == 16) && interlace <= 1) {
        const unsigned long long need = image__png_raw_bytes((unsigned long long)w, (unsigned long long)h,
                                                             channels[type], depth, interlace);
        if (need > 1032 * idat)
            return snprintf(why, whylen, "PNG data of %llu bytes cannot hold %lld x %lld pixels (%llu bytes): "
                            "truncated or corrupt", idat, w, h, need), -1;
        if (image__png_inflate_check(b, n, need, why, whylen)) return -1;
    }
    return 0;
}

int image_probe(const void *buf, size_t n, const char *name, image_info *info, char *err, size_t errlen)
{
    const unsigned char *b = (const unsigned char *)buf;
    char why[160];
    long long w = 0, h = 0;
    unsigned long long need = 0; /* bytes the header says the file holds at least (BMP) */
    memset(info, 0, sizeof *info);
    if (n == 0 || n > IMAGE_MAX_BYTES)
        return snprintf(err, errlen, "%s: %zu bytes: not an image of 1 byte to %u MB", name, n, IMAGE_MAX_BYTES >> 20),
               -1;
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) {
        info->format = "PNG";
        if (n < 24) return snprintf(err, errlen, "%s: truncated PNG header (%zu bytes)", name, n), -1;
        if (memcmp(b + 12, "IHDR", 4)) return snprintf(err, errlen, "%s: PNG without its IHDR chunk first", name), -1;
        w = (long long)image__be32(b + 16), h = (long long)image__be32(b + 20);
    } else if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) {
        return snprintf(err, errlen, "%s: a JPEG image: not accepted (stb_image 2.27's JPEG decoder misbehaves on "
                        "corrupt data that no check before decoding can rule out); convert it to PNG", name), -1;
    } else if (n >= 2 && b[0] == 'B' && b[1] == 'M') {
        info->format = "BMP";
        if (n < 26) return snprintf(err, errlen, "%s: truncated BMP header (%zu bytes)", name, n), -1;
        const unsigned long offset = image__le32(b + 10), hsz = image__le32(b + 14);
        unsigned bpp = 0;
        unsigned long compression = 0;
        if (hsz == 12) {
            w = image__le16(b + 18), h = image__le16(b + 20), bpp = image__le16(b + 24);
        } else if (hsz == 40 || hsz == 56 || hsz == 108 || hsz == 124) {
            if (n < 34) return snprintf(err, errlen, "%s: truncated BMP header (%zu bytes)", name, n), -1;
            w = (int32_t)image__le32(b + 18), h = (int32_t)image__le32(b + 22);
            bpp = image__le16(b + 28), compression = image__le32(b + 30);
            if (h < 0) h = -h; /* rows from the top */
        } else {
            return snprintf(err, errlen, "%s: BMP info header of %lu bytes (stb_image reads 12, 40, 56, 108 or 124)",
                            name, hsz), -1;
        }
        if (w >= 1 && w <= IMAGE_MAX_SIDE && h >= 1 && h <= IMAGE_MAX_SIDE &&
            (compression == 0 || compression == 3) &&
            (bpp == 1 || bpp == 4 || bpp == 8 || bpp == 16 || bpp == 24 || bpp == 32)) {
            /* rows padded to 4 bytes; the last one may lack its padding */
            const unsigned long long bits = (unsigned long long)w * bpp, row = (bits + 31) / 32 * 4;
            need = (unsigned long long)offset + row * (unsigned long long)(h - 1) + (bits + 7) / 8;
        }
    } else {
        return snprintf(err, errlen, "%s: not a PNG or BMP image", name), -1;
    }
    if (w < 1 || h < 1 || w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE || (unsigned long long)w * h > IMAGE_MAX_PIXELS)
        return snprintf(err, errlen, "%s: %lld x %lld pixels: refused (at most %d per side and %u pixels)", name, w, h,
                        IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS), -1;
    if (need > n)
        return snprintf(err, errlen, "%s: cannot decode: truncated %s: %zu bytes, but its header announces %lld x %lld "
                        "pixels in %llu", name, info->format, n, w, h, need), -1;
    if (info->format[0] == 'P' && image__png_walk(b, n, w, h, why, sizeof why))
        return snprintf(err, errlen, "%s: cannot decode: %s", name, why), -1;
    info->width = w, info->height = h;
    return 0;
}

unsigned char *image_decode(const void *buf, size_t n, const char *name, int *w, int *h, char *err, size_t errlen)
{
    image_info info;
    int iw, ih, comp;
    if (image_probe(buf, n, name, &info, err, errlen)) return NULL;
    if (!stbi_info_from_memory((const stbi_uc *)buf, (int)n, &iw, &ih, &comp))
        return snprintf(err, errlen, "%s: not a valid %s image (%s)", name, info.format, stbi_failure_reason()), NULL;
    if (ih < 0) ih = -ih; /* stb_image gives a top-down BMP's height as it is written */
    if (iw != info.width || ih != info.height)
        return snprintf(err, errlen, "%s: %s header of %lld x %lld pixels, which stb_image reads as %d x %d: refused",
                        name, info.format, info.width, info.height, iw, ih), NULL;
    unsigned char *px = stbi_load_from_memory((const stbi_uc *)buf, (int)n, w, h, &comp, 3);
    if (!px) return snprintf(err, errlen, "%s: cannot decode: %s", name, stbi_failure_reason()), NULL;
    if (*w != info.width || *h != info.height) {
        stbi_image_free(px);
        return snprintf(err, errlen, "%s: decoded as %d x %d pixels, not the %lld x %lld of its header: refused", name,
                        *w, *h, info.width, info.height), NULL;
    }
    return px;
}

unsigned char *load_image_memory(const void *buf, size_t n, const char *name, int W, int H, char *err, size_t errlen)
{
    int w, h;
    unsigned char *px = image_decode(buf, n, name, &w, &h, err, errlen);
    if (!px) return NULL;
    if (w == W && h == H) return px;
    unsigned char *out = (unsigned char *)malloc((size_t)W * H * 3);
    if (!out || !stbir_resize_uint8(px, w, h, 0, out, W, H, 0, 3)) {
        free(out);
        stbi_image_free(px);
        return snprintf(err, errlen, "%s: cannot resize %d x %d to %d x %d", name, w, h, W, H), NULL;
    }
    stbi_image_free(px);
    return out;
}

unsigned char *load_image(const char *path, int W, int H, char *err, size_t errlen)
{
    size_t n;
    unsigned char *buf = (unsigned char *)util_read_file(path, IMAGE_MAX_BYTES, &n, err, errlen);
    if (!buf) return NULL;
    unsigned char *px = load_image_memory(buf, n, path, W, H, err, errlen);
    free(buf);
    return px;
}

#endif /* IMAGE_IMPLEMENTATION */
