/* picture.h - the pictures build/ban draws, as the paper draws them (Kim, Jun, Zhang 2018,
   Fig. 3 and 4), with cairo (text and shapes; link -lcairo -lfontconfig: build/ban only,
   ban.h stays dependency-free; cairo's text needs a font: Debian's fonts-dejavu-core).

   OPTIONS (what the commands share)
     picture_open(a, option, &o)          the picture's path checked before any work: a name ending
                                          in .png (any case), its folder there and writable (the
                                          output is opened through util.h's one writer, committed
                                          when the picture is drawn, removed on failure). CLI_OK
                                          (o.f NULL when the option is absent), or CLI_USAGE /
                                          CLI_FAIL with the message printed.
     picture_photo(path, maxw, maxh, &p)  a photo (PNG or BMP, read by image.h) resized to fit
                                          maxw x maxh (its aspect kept); CLI_OK or CLI_FAIL
     picture_photo_id(path, id, len)      1 when path names a photo (.png, .bmp, .jpg, .jpeg) and
                                          its file name without the extension into id (Flickr30k's
                                          and GQA's photos are named by their image id), else 0
     picture_words(ctx, question, n, P)   the labels of a map's P rows: the question's first n
                                          tokens as it writes them (a word the vocabulary does not
                                          know marked "(?)"), then "(padding)"; malloc'd (one
                                          free()), NULL when out of memory

   PICTURES (each commits o, or removes it on failure: CLI_OK or CLI_FAIL, message printed)
     picture_grid(&o, &v)       a pixel model's attention (ban ask): a panel per glimpse (its
                                number and entropy) with the image under the attention of
                                each grid cell (the map summed over the question's positions)
                                in a colour map; the question and answer in a title band; the
                                colour scale on the right.
     picture_boxes(&o, &v)      Fig. 3, a box-feature model's attention (ban ask, ban vqa): a
                                panel per glimpse: the photo with the six boxes the glimpse
                                attends to most (its map summed over the words) numbered 1-6,
                                beside the log-scaled box x word map (rows: the words; columns:
                                the boxes by decreasing attention, at most PICTURE_MAP_BOXES,
                                the first six numbered as on the photo); the scale on the right.
     picture_grounding(&o, &g)  Fig. 4 (ban ground): each phrase's top box solid in its own
                                colour, labelled with the phrase; the annotations' boxes of its
                                chain dashed in the same colour; the sentence in the title band,
                                and a key below the photo (phrase, score).

   LAYOUT (in pixels; fixed, so that the size of a picture follows from its input alone and no
   text changes it: what does not fit is cut with an ellipsis)
     title band PICTURE_TITLE_H tall across the top; then a margin of PICTURE_MARGIN all round.
     picture_grid: the image at PICTURE_GRID_SIDE / max(W, H) times its size (iw x ih); a panel
       is iw + 2 PICTURE_PAD wide and PICTURE_LABEL_H + ih + PICTURE_PAD tall; up to 4 panels a
       row, PICTURE_GAP apart; the legend PICTURE_LEGEND_W wide, PICTURE_GAP right of them.
     picture_boxes: the photo fits PICTURE_PHOTO_SIDE x PICTURE_PHOTO_SIDE; the map has
       cols = min(K, PICTURE_MAP_BOXES) columns of cw = clamp(288 / cols, 8, 24) and P rows of
       rh = clamp(288 / P, 1, 20); with the photo pw x ph, a panel is PAD + pw + 16 +
       PICTURE_WORDS_W + 6 + cols cw + PAD wide and LABEL_H + max(ph, P rh + 36) + PAD tall;
       2 panels a row; the legend as picture_grid's.
     picture_grounding: the photo fits PICTURE_GROUND_W x PICTURE_GROUND_H (dw x dh); the width
       is 2 MARGIN + max(dw, 400); below the photo, PICTURE_GAP, then a key row of
       PICTURE_KEY_H per phrase and one for the key of the lines.
     tests/test_pictures.py checks these sizes and where the panels, labels and title are.

   Define PICTURE_IMPLEMENTATION in exactly one C file (in build/ban: examples/impl.c). */
#ifndef PICTURE_H_INCLUDED
#define PICTURE_H_INCLUDED
#include <stddef.h>

#include "cli.h"

enum {
    PICTURE_TITLE_H = 60, PICTURE_MARGIN = 16, PICTURE_PAD = 8, PICTURE_GAP = 12, PICTURE_LABEL_H = 28,
    PICTURE_LEGEND_W = 84, PICTURE_GRID_SIDE = 256, PICTURE_GRID_COLUMNS = 4, PICTURE_PHOTO_SIDE = 320,
    PICTURE_WORDS_W = 96, PICTURE_MAP_BOXES = 36, PICTURE_BOX_COLUMNS = 2, PICTURE_TOP_BOXES = 6,
    PICTURE_GROUND_W = 640, PICTURE_GROUND_H = 480, PICTURE_KEY_H = 20
};

typedef struct picture_image {
    unsigned char *rgb;        /* (height, width, 3) */
    int width, height;
} picture_image;

/* one question's attention, for picture_grid and picture_boxes */
typedef struct picture_vqa {
    const char *question, *answer;
    double probability;        /* the answer's */
    int glimpses, boxes, positions; /* G, K, P */
    const float *attention;    /* (G, K, P): ban_output.attention of the question */
    const float *entropy;      /* (G) nats: ban_output.entropy */
    const picture_image *image; /* grid: the image as the model read it; boxes: the photo */
    int grid_width, grid_height; /* grid: the encoder's cells (K = their product) */
    const float *box_xyxy;     /* boxes: (K, 4) x1, y1, x2, y2 in pixels of an image of */
    int source_width, source_height; /*   source_width x source_height (the feature store's) */
    const char *const *words;  /* boxes: (P) the row labels */
} picture_vqa;

typedef struct picture_phrase {
    const char *text;
    float box[4];              /* its top box, x1, y1, x2, y2 in the source's pixels */
    float score;
    const float *truth;        /* (n_truth, 4) the annotations' boxes of its chain */
    int n_truth;
} picture_phrase;

typedef struct picture_ground {
    const picture_image *photo;
    int source_width, source_height;
    const char *sentence;
    const picture_phrase *phrases;
    int n;
    int annotated;             /* the annotations were given (dashed boxes, when there are) */
} picture_ground;

int picture_open(const cli_args *a, const char *option, util_out *o);
int picture_photo(const char *path, int max_w, int max_h, picture_image *photo);
int picture_photo_id(const char *path, char *id, size_t len);
void picture_image_free(picture_image *p);
const char **picture_words(ban_ctx *ctx, const char *question, int n_tok, int positions);

int picture_grid(util_out *o, const picture_vqa *v);
int picture_boxes(util_out *o, const picture_vqa *v);
int picture_grounding(util_out *o, const picture_ground *g);

#endif /* PICTURE_H_INCLUDED */

#if defined(PICTURE_IMPLEMENTATION) && !defined(PICTURE__IMPLEMENTED)
#define PICTURE__IMPLEMENTED
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cairo.h>
#include <fontconfig/fontconfig.h>

#include "image.h"
#include "markup.h"

#define PICTURE__FONT "DejaVu Sans"

/* ---- options ----------------------------------------------------------------------------------- */

static int picture__png_name(const char *path)
{
    const size_t n = strlen(path);
    if (n < 5) return 0; /* a name before the extension */
    const char *e = path + n - 4;
    return e[0] == '.' && tolower((unsigned char)e[1]) == 'p' && tolower((unsigned char)e[2]) == 'n' &&
           tolower((unsigned char)e[3]) == 'g';
}

int picture_open(const cli_args *a, const char *option, util_out *o)
{
    const char *path = cli_get(a, option);
    memset(o, 0, sizeof *o);
    o->slot = -1;
    if (!path) return CLI_OK;
    if (!picture__png_name(path))
        return cli_usage(a, "%s %s: the picture is written as PNG, so its name must end in .png", option, path);
    return cli_open_output(o, path); /* a temporary beside it now: its folder exists and is writable */
}

int picture_photo_id(const char *path, char *id, size_t len)
{
    static const char *const ext[] = {".png", ".bmp", ".jpg", ".jpeg"};
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const size_t n = strlen(base);
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        const size_t e = strlen(ext[i]);
        if (n <= e) continue;
        size_t k = 0;
        while (k < e && tolower((unsigned char)base[n - e + k]) == ext[i][k]) k++;
        if (k < e) continue;
        if (len) snprintf(id, len, "%.*s", (int)(n - e), base);
        return 1;
    }
    return 0;
}

int picture_photo(const char *path, int max_w, int max_h, picture_image *p)
{
    char err[4600];
    size_t n;
    image_info info;
    memset(p, 0, sizeof *p);
    unsigned char *buf = (unsigned char *)util_read_file(path, IMAGE_MAX_BYTES, &n, err, sizeof err);
    if (!buf) return cli_error("%s", err);
    /* the size from the header, so that the photo is decoded straight to the size drawn */
    if (image_probe(buf, n, path, &info, err, sizeof err)) return free(buf), cli_error("%s", err);
    const double s = fmin((double)max_w / (double)info.width, (double)max_h / (double)info.height);
    p->width = (int)fmax(1.0, floor((double)info.width * s + 0.5));
    p->height = (int)fmax(1.0, floor((double)info.height * s + 0.5));
    p->rgb = load_image_memory(buf, n, path, p->width, p->height, err, sizeof err);
    free(buf);
    return p->rgb ? CLI_OK : cli_error("%s", err);
}

void picture_image_free(picture_image *p)
{
    free(p->rgb);
    p->rgb = NULL;
}

const char **picture_words(ban_ctx *ctx, const char *question, int n_tok, int P)
{
    int32_t ids[BAN_MAX_TOKENS];
    ban_token_info info[BAN_MAX_TOKENS];
    enum { WORD = 64 };
    int n = 0;
    if (ban_tokenize_info(ctx, question, ids, info, BAN_MAX_TOKENS, &n) != BAN_OK) n = 0;
    if (n > BAN_MAX_TOKENS) n = BAN_MAX_TOKENS;
    const char **w = (const char **)malloc((size_t)P * (sizeof(char *) + WORD));
    if (!w) return NULL;
    char *text = (char *)(w + P);
    for (int l = 0; l < P; l++) {
        char *t = text + (size_t)l * WORD;
        if (l >= n_tok) snprintf(t, WORD, "(padding)");
        else if (l >= n) snprintf(t, WORD, "?");
        else snprintf(t, WORD, "%.*s%s", info[l].end - info[l].start < 40 ? info[l].end - info[l].start : 40,
                      question + info[l].start, info[l].known ? "" : " (?)");
        w[l] = t;
    }
    return w;
}

/* ---- colours ------------------------------------------------------------------------------------ */

typedef struct {
    double r, g, b;
} picture__rgb;

static const picture__rgb picture__ink = {0.13, 0.16, 0.18}, picture__white = {1, 1, 1};
static const picture__rgb picture__band = {38 / 255.0, 50 / 255.0, 56 / 255.0};  /* the title band */
static const picture__rgb picture__card = {236 / 255.0, 239 / 255.0, 241 / 255.0}; /* a panel */

/* Matplotlib's tab10: the boxes and phrases, told apart by colour */
static picture__rgb picture__palette(int i)
{
    static const unsigned char c[10][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                           {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                                           {188, 189, 34},  {23, 190, 207}};
    const unsigned char *p = c[i % 10];
    picture__rgb r = {p[0] / 255.0, p[1] / 255.0, p[2] / 255.0};
    return r;
}

/* viridis (perceptually uniform, readable in grey) at t in [0, 1] */
static picture__rgb picture__colormap(double t)
{
    static const unsigned char v[9][3] = {{68, 1, 84},    {71, 44, 122},  {59, 81, 139},
                                          {44, 113, 142}, {33, 144, 141}, {39, 173, 129},
                                          {92, 200, 99},  {170, 220, 50}, {253, 231, 37}};
    if (!(t > 0)) t = 0; /* NaN too */
    if (t > 1) t = 1;
    const double x = t * 8;
    const int i = x >= 8 ? 7 : (int)x;
    const double f = x - i;
    picture__rgb r = {((1 - f) * v[i][0] + f * v[i + 1][0]) / 255, ((1 - f) * v[i][1] + f * v[i + 1][1]) / 255,
                      ((1 - f) * v[i][2] + f * v[i + 1][2]) / 255};
    return r;
}

static void picture__set(cairo_t *cr, picture__rgb c) { cairo_set_source_rgb(cr, c.r, c.g, c.b); }

/* text that reads well on a fill of colour c */
static picture__rgb picture__on(picture__rgb c)
{
    return 0.299 * c.r + 0.587 * c.g + 0.114 * c.b > 0.6 ? picture__ink : picture__white;
}

static void picture__fill(cairo_t *cr, picture__rgb c, double x, double y, double w, double h)
{
    picture__set(cr, c);
    cairo_rectangle(cr, x, y, w, h);
    cairo_fill(cr);
}

/* ---- text ---------------------------------------------------------------------------------------- */

enum { PICTURE__LEFT, PICTURE__CENTER, PICTURE__RIGHT };

/* s as cairo can show it: valid UTF-8 (each bad byte a '?'), controls as spaces, at most
   cap - 1 bytes (cut at a character) */
static void picture__clean(const char *s, char *out, size_t cap)
{
    const size_t n = strlen(s);
    size_t at = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; /* what its first byte announces */
        if (len > n - i || markup_utf8_check((const unsigned char *)s + i, len) != len) len = 0;
        if (at + (len ? len : 1) >= cap) break;
        if (len == 0) out[at++] = '?', i++; /* a byte that starts no character */
        else if (len == 1) out[at++] = c < 0x20 || c == 0x7F ? ' ' : (char)c, i++;
        else memcpy(out + at, s + i, len), at += len, i += len;
    }
    out[at] = 0;
}

static void picture__font(cairo_t *cr, double size, int bold)
{
    cairo_select_font_face(cr, PICTURE__FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double picture__width(cairo_t *cr, const char *s)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

/* text (already clean) cut to max_w with an ellipsis when longer, into out (cap bytes) */
static void picture__fit(cairo_t *cr, const char *text, double max_w, char *out, size_t cap)
{
    snprintf(out, cap, "%s", text);
    if (picture__width(cr, out) <= max_w) return;
    size_t n = strlen(out);
    while (n > 0) { /* drop a character at a time (a picture's text is short) */
        do n--;
        while (n > 0 && ((unsigned char)out[n] & 0xC0) == 0x80);
        if (n + 4 > cap) continue;
        memcpy(out + n, "\xE2\x80\xA6", 4); /* U+2026 */
        if (picture__width(cr, out) <= max_w) return;
    }
    out[0] = 0;
}

/* text at baseline y, aligned at x, cut to max_w */
static void picture__text(cairo_t *cr, const char *text, double x, double y, double max_w, int align)
{
    char clean[1024], shown[1024];
    picture__clean(text, clean, sizeof clean);
    picture__fit(cr, clean, max_w, shown, sizeof shown);
    const double w = picture__width(cr, shown);
    cairo_move_to(cr, align == PICTURE__LEFT ? x : align == PICTURE__CENTER ? x - w / 2 : x - w, y);
    cairo_show_text(cr, shown);
}

/* ---- parts every picture has ----------------------------------------------------------------------- */

/* a white page with the title band; line2 may be NULL */
static void picture__title(cairo_t *cr, int W, int H, const char *line1, const char *line2)
{
    picture__fill(cr, picture__white, 0, 0, W, H);
    picture__fill(cr, picture__band, 0, 0, W, PICTURE_TITLE_H);
    picture__set(cr, picture__white);
    picture__font(cr, 15, 1);
    picture__text(cr, line1, PICTURE_MARGIN, line2 ? 25 : 36, W - 2 * PICTURE_MARGIN, PICTURE__LEFT);
    if (line2) {
        picture__font(cr, 14, 0);
        picture__text(cr, line2, PICTURE_MARGIN, 47, W - 2 * PICTURE_MARGIN, PICTURE__LEFT);
    }
}

/* a panel: its background and its label band ("glimpse 1", "entropy 1.23 nats") */
static void picture__panel(cairo_t *cr, double x, double y, double w, double h, int glimpse, double entropy)
{
    char label[64], value[64];
    picture__fill(cr, picture__card, x, y, w, h);
    snprintf(label, sizeof label, "glimpse %d", glimpse);
    snprintf(value, sizeof value, "entropy %.3g nats", entropy);
    picture__set(cr, picture__ink);
    picture__font(cr, 13, 1);
    picture__text(cr, label, x + PICTURE_PAD, y + 19, w / 2 - PICTURE_PAD, PICTURE__LEFT);
    picture__font(cr, 12, 0);
    picture__text(cr, value, x + w - PICTURE_PAD, y + 19, w / 2 - PICTURE_PAD, PICTURE__RIGHT);
}

/* rgb (h0, w0, 3) drawn into the rectangle (x, y, w, h) */
static void picture__paint(cairo_t *cr, const unsigned char *rgb, int w0, int h0, double x, double y, double w,
                           double h)
{
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w0, h0);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(s);
        return; /* the picture's own status is checked at the end: a failed surface leaves a grey patch */
    }
    cairo_surface_flush(s);
    unsigned char *data = cairo_image_surface_get_data(s);
    const int stride = cairo_image_surface_get_stride(s);
    for (int r = 0; r < h0; r++) {
        uint32_t *row = (uint32_t *)(void *)(data + (size_t)r * stride);
        const unsigned char *p = rgb + (size_t)r * w0 * 3;
        for (int c = 0; c < w0; c++)
            row[c] = 0xFF000000u | (uint32_t)p[3 * c] << 16 | (uint32_t)p[3 * c + 1] << 8 | p[3 * c + 2];
    }
    cairo_surface_mark_dirty(s);
    cairo_save(cr);
    cairo_rectangle(cr, x, y, w, h);
    cairo_clip(cr);
    cairo_translate(cr, x, y);
    cairo_scale(cr, w / w0, h / h0);
    cairo_set_source_surface(cr, s, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_GOOD);
    cairo_paint(cr);
    cairo_restore(cr);
    cairo_surface_destroy(s);
}

/* Ticks for [lo, hi]: steps of 1, 2 or 5 times a power of ten, 3 to 6 of them */
static int picture__ticks(double lo, double hi, double *t, int max)
{
    if (!(hi > lo)) return t[0] = lo, 1;
    const double raw = (hi - lo) / 4, p = pow(10, floor(log10(raw)));
    const double step = raw / p < 1.5 ? p : raw / p < 3.5 ? 2 * p : raw / p < 7.5 ? 5 * p : 10 * p;
    int n = 0;
    for (double v = ceil(lo / step - 1e-9) * step; v <= hi * (1 + 1e-9) && n < max; v += step) t[n++] = v;
    return n;
}

/* The colour scale: a bar h tall at (x, y), values lo..hi (log10 values when logarithmic),
   ticks and their labels on its right, the caption above */
static void picture__legend(cairo_t *cr, double x, double y, double h, double lo, double hi, int logarithmic,
                            const char *caption)
{
    const double bw = 14;
    for (int i = 0; i < (int)h; i++) /* hi at the top */
        picture__fill(cr, picture__colormap(1.0 - (i + 0.5) / h), x, y + i, bw, 1.0);
    picture__set(cr, picture__ink);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, x + 0.5, y + 0.5, bw - 1, h - 1);
    cairo_stroke(cr);
    picture__font(cr, 11, 1);
    picture__text(cr, caption, x - 2, y - 8, PICTURE_LEGEND_W, PICTURE__LEFT);
    picture__font(cr, 10, 0);
    double t[20];
    int n;
    if (logarithmic) { /* both ends, and a tick per power of ten between them */
        n = 0;
        t[n++] = lo;
        for (double e = ceil(lo); e <= hi && n < 19; e += 1) t[n++] = e;
        t[n++] = hi;
    } else {
        n = picture__ticks(lo, hi, t, 20);
    }
    double last = INFINITY;
    for (int i = 0; i < n; i++) {
        const double ty = y + h - (hi > lo ? (t[i] - lo) / (hi - lo) : 0) * h;
        /* a label 14 px from the last one shown, and an inner one as far from the top's */
        if (fabs(ty - last) < 14 || (i > 0 && i < n - 1 && ty - y < 14)) continue;
        last = ty;
        char label[32];
        if (logarithmic) snprintf(label, sizeof label, "%.2g", pow(10, t[i]));
        else snprintf(label, sizeof label, "%.2g", fabs(t[i]) < 1e-12 ? 0.0 : t[i]);
        cairo_move_to(cr, x + bw, floor(ty) + 0.5);
        cairo_line_to(cr, x + bw + 4, floor(ty) + 0.5);
        cairo_stroke(cr);
        picture__text(cr, label, x + bw + 6, ty + 3.5, PICTURE_LEGEND_W - bw - 6, PICTURE__LEFT);
    }
}

static cairo_status_t picture__write(void *closure, const unsigned char *data, unsigned int n)
{
    return fwrite(data, 1, n, (FILE *)closure) == n ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

/* the drawing's status, then the PNG into o, committed */
static int picture__finish(cairo_t *cr, cairo_surface_t *s, util_out *o)
{
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_write_to_png_stream(s, picture__write, o->f);
    cairo_surface_destroy(s);
    if (st != CAIRO_STATUS_SUCCESS) {
        const int rc = cli_error("%s: cannot draw the picture: %s", o->path, cairo_status_to_string(st));
        util_out_abort(o);
        return rc;
    }
    return cli_commit_output(o);
}

/* cairo's caches and fontconfig's configuration (the fonts cairo found through it) released
   when the process ends, so that a leak checker sees only what is really lost; no cairo
   object is alive by then */
static void picture__release(void)
{
    cairo_debug_reset_static_data();
    FcFini();
}

/* a page of W x H, or CLI_FAIL once the output is removed */
static int picture__start(util_out *o, int W, int H, cairo_surface_t **s, cairo_t **cr)
{
    static int registered;
    if (!registered) registered = 1, atexit(picture__release);
    *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    *cr = cairo_create(*s);
    if (cairo_status(*cr) == CAIRO_STATUS_SUCCESS) return CLI_OK;
    const int rc = cli_error("%s: cannot draw a picture of %d x %d pixels: %s", o->path, W, H,
                             cairo_status_to_string(cairo_status(*cr)));
    cairo_destroy(*cr), cairo_surface_destroy(*s);
    util_out_abort(o);
    return rc;
}

/* the question and answer lines of the title */
static void picture__vqa_title(cairo_t *cr, int W, int H, const picture_vqa *v)
{
    char q[1100], ans[1100];
    snprintf(q, sizeof q, "Q: %.1000s", v->question);
    snprintf(ans, sizeof ans, "A: %.1000s   (probability %.3f)", v->answer, v->probability);
    picture__title(cr, W, H, q, ans);
}

/* each box's attention summed over the positions: sum (G, K) */
static void picture__marginal(const picture_vqa *v, float *sum)
{
    for (int g = 0; g < v->glimpses; g++)
        for (int k = 0; k < v->boxes; k++) {
            const float *a = v->attention + ((size_t)g * v->boxes + k) * v->positions;
            double s = 0;
            for (int l = 0; l < v->positions; l++) s += a[l];
            sum[(size_t)g * v->boxes + k] = (float)s;
        }
}

/* ---- a pixel model's grid -------------------------------------------------------------------------- */

int picture_grid(util_out *o, const picture_vqa *v)
{
    const int G = v->glimpses, K = v->boxes, GW = v->grid_width, GH = v->grid_height;
    const int W0 = v->image->width, H0 = v->image->height, side = W0 > H0 ? W0 : H0;
    const int iw = (int)floor((double)W0 * PICTURE_GRID_SIDE / side + 0.5);
    const int ih = (int)floor((double)H0 * PICTURE_GRID_SIDE / side + 0.5);
    const int pw = iw + 2 * PICTURE_PAD, ph = PICTURE_LABEL_H + ih + PICTURE_PAD;
    const int cols = G < PICTURE_GRID_COLUMNS ? G : PICTURE_GRID_COLUMNS, rows = (G + cols - 1) / cols;
    const int gx = PICTURE_MARGIN, gy = PICTURE_TITLE_H + PICTURE_MARGIN, grid_w = cols * pw + (cols - 1) * PICTURE_GAP;
    const int W = gx + grid_w + PICTURE_GAP + PICTURE_LEGEND_W + PICTURE_MARGIN;
    const int H = gy + rows * ph + (rows - 1) * PICTURE_GAP + PICTURE_MARGIN;
    float *cell = (float *)malloc(sizeof(float) * (size_t)G * K);
    if (!cell) return util_out_abort(o), cli_error("out of memory");
    picture__marginal(v, cell);
    float top = 0;
    for (int i = 0; i < G * K; i++)
        if (cell[i] > top) top = cell[i];
    cairo_surface_t *s;
    cairo_t *cr;
    if (picture__start(o, W, H, &s, &cr)) return free(cell), CLI_FAIL;
    picture__vqa_title(cr, W, H, v);
    for (int g = 0; g < G; g++) {
        const double x = gx + (g % cols) * (pw + PICTURE_GAP), y = gy + (g / cols) * (ph + PICTURE_GAP);
        const double ix = x + PICTURE_PAD, iy = y + PICTURE_LABEL_H;
        picture__panel(cr, x, y, pw, ph, g + 1, v->entropy[g]);
        picture__paint(cr, v->image->rgb, W0, H0, ix, iy, iw, ih);
        /* the cells in the colour map over the image, the more opaque the more attended: the
           image shows through where the glimpse does not look */
        for (int r = 0; r < GH; r++)
            for (int c = 0; c < GW; c++) {
                const double x0 = ix + (double)c * iw / GW, y0 = iy + (double)r * ih / GH;
                const double t = top > 0 ? cell[(size_t)g * K + r * GW + c] / top : 0;
                const picture__rgb col = picture__colormap(t);
                cairo_set_source_rgba(cr, col.r, col.g, col.b, 0.3 + 0.5 * t);
                cairo_rectangle(cr, x0, y0, ix + (double)(c + 1) * iw / GW - x0, iy + (double)(r + 1) * ih / GH - y0);
                cairo_fill(cr);
            }
    }
    picture__legend(cr, gx + grid_w + PICTURE_GAP, gy + PICTURE_LABEL_H, ih, 0, top, 0, "attention");
    free(cell);
    return picture__finish(cr, s, o);
}

/* ---- a box model's attention: Fig. 3 ------------------------------------------------------------------ */

static int picture__clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* a box in the source's pixels as drawn at scale (sx, sy) from (x, y), inset by d: x1, y1, x2,
   y2, each within 10,000 pixels of the page (an annotation's numbers may be anything) */
static void picture__box(const float *b, double x, double y, double sx, double sy, double d, double *out)
{
    const double v[4] = {x + b[0] * sx + d, y + b[1] * sy + d, x + b[2] * sx - d, y + b[3] * sy - d};
    for (int i = 0; i < 4; i++) out[i] = v[i] > -1e4 ? (v[i] < 1e4 ? v[i] : 1e4) : -1e4; /* NaN too */
}

static void picture__box_path(cairo_t *cr, const float *b, double x, double y, double sx, double sy, double d)
{
    double r[4];
    picture__box(b, x, y, sx, sy, d, r);
    cairo_rectangle(cr, r[0], r[1], r[2] - r[0], r[3] - r[1]);
}

int picture_boxes(util_out *o, const picture_vqa *v)
{
    const int G = v->glimpses, K = v->boxes, P = v->positions;
    const int n_cols = K < PICTURE_MAP_BOXES ? K : PICTURE_MAP_BOXES, cw = picture__clampi(288 / n_cols, 8, 24);
    const int rh = picture__clampi(288 / P, 1, 20), map_w = n_cols * cw, map_h = P * rh;
    const picture_image *photo = v->image;
    const int body_h = photo->height > map_h + 36 ? photo->height : map_h + 36;
    const int pw = 2 * PICTURE_PAD + photo->width + 16 + PICTURE_WORDS_W + 6 + map_w;
    const int ph = PICTURE_LABEL_H + body_h + PICTURE_PAD;
    const int cols = G < PICTURE_BOX_COLUMNS ? G : PICTURE_BOX_COLUMNS, rows = (G + cols - 1) / cols;
    const int gx = PICTURE_MARGIN, gy = PICTURE_TITLE_H + PICTURE_MARGIN, grid_w = cols * pw + (cols - 1) * PICTURE_GAP;
    const int W = gx + grid_w + PICTURE_GAP + PICTURE_LEGEND_W + PICTURE_MARGIN;
    const int H = gy + rows * ph + (rows - 1) * PICTURE_GAP + PICTURE_MARGIN;
    const double sx = (double)photo->width / v->source_width, sy = (double)photo->height / v->source_height;
    float *sum = (float *)malloc(sizeof(float) * (size_t)G * K);
    int *order = (int *)malloc(sizeof(int) * (size_t)K);
    if (!sum || !order) return free(sum), free(order), util_out_abort(o), cli_error("out of memory");
    picture__marginal(v, sum);
    /* one log scale for every map: from the smallest value to the largest, at most four
       powers of ten (what is smaller takes the lowest colour) */
    float top = 0, least = INFINITY;
    for (size_t i = 0; i < (size_t)G * K * P; i++) {
        if (v->attention[i] > top) top = v->attention[i];
        if (v->attention[i] > 0 && v->attention[i] < least) least = v->attention[i];
    }
    const double hi = top > 0 ? log10(top) : 0, lo = top > 0 && least < top ? fmax(hi - 4, log10(least)) : hi - 1;
    cairo_surface_t *s;
    cairo_t *cr;
    if (picture__start(o, W, H, &s, &cr)) return free(sum), free(order), CLI_FAIL;
    picture__vqa_title(cr, W, H, v);
    for (int g = 0; g < G; g++) {
        const double x = gx + (g % cols) * (pw + PICTURE_GAP), y = gy + (g / cols) * (ph + PICTURE_GAP);
        const double px = x + PICTURE_PAD, py = y + PICTURE_LABEL_H;
        const double mx = px + photo->width + 16 + PICTURE_WORDS_W + 6, my = py;
        const float *a = v->attention + (size_t)g * K * P;
        util_top_k(sum + (size_t)g * K, K, n_cols, order);
        picture__panel(cr, x, y, pw, ph, g + 1, v->entropy[g]);
        picture__paint(cr, photo->rgb, photo->width, photo->height, px, py, photo->width, photo->height);
        /* the six boxes, the first drawn last (on top), each numbered in a tag at its corner */
        const int top_n = K < PICTURE_TOP_BOXES ? K : PICTURE_TOP_BOXES;
        cairo_save(cr);
        cairo_rectangle(cr, px, py, photo->width, photo->height);
        cairo_clip(cr);
        for (int r = top_n - 1; r >= 0; r--) {
            const float *b = v->box_xyxy + (size_t)order[r] * 4;
            const picture__rgb c = picture__palette(r);
            char num[12];
            picture__set(cr, c);
            cairo_set_line_width(cr, r == 0 ? 3.5 : 2.5);
            double d[4];
            picture__box(b, px, py, sx, sy, 0, d);
            picture__box_path(cr, b, px, py, sx, sy, 0);
            cairo_stroke(cr);
            const double tx = fmax(px, d[0]), ty = fmax(py, d[1]);
            picture__fill(cr, c, tx, ty, 15, 15);
            picture__set(cr, picture__on(c));
            picture__font(cr, 11, 1);
            snprintf(num, sizeof num, "%d", r + 1);
            picture__text(cr, num, tx + 7.5, ty + 11.5, 15, PICTURE__CENTER);
        }
        cairo_restore(cr);
        /* the map: a row per word, a column per box (by decreasing attention), log-scaled */
        for (int c = 0; c < n_cols; c++)
            for (int l = 0; l < P; l++) {
                const float val = a[(size_t)order[c] * P + l];
                picture__fill(cr, picture__colormap(val > 0 ? (log10(val) - lo) / (hi - lo) : 0), mx + c * cw,
                              my + l * rh, cw, rh);
            }
        picture__set(cr, picture__ink);
        cairo_set_line_width(cr, 1);
        cairo_rectangle(cr, mx - 0.5, my - 0.5, map_w + 1, map_h + 1);
        cairo_stroke(cr);
        const int every = rh >= 10 ? 1 : (10 + rh - 1) / rh; /* labels at least 10 px apart */
        picture__font(cr, rh >= 14 ? 11 : 9, 0);
        for (int l = 0; l < P; l += every)
            picture__text(cr, v->words[l], mx - 5, my + l * rh + rh / 2.0 + 3.5, PICTURE_WORDS_W, PICTURE__RIGHT);
        picture__font(cr, 10, 1);
        for (int c = 0; c < top_n; c++) {
            char num[12];
            snprintf(num, sizeof num, "%d", c + 1);
            picture__set(cr, picture__palette(c));
            picture__text(cr, num, mx + c * cw + cw / 2.0, my + map_h + 13, cw + 4, PICTURE__CENTER);
        }
        char caption[96];
        if (n_cols < K) snprintf(caption, sizeof caption, "the %d most attended of %d boxes", n_cols, K);
        else snprintf(caption, sizeof caption, "%d boxes, most attended first", K);
        picture__set(cr, picture__ink);
        picture__font(cr, 10, 0);
        picture__text(cr, caption, mx, my + map_h + 29, map_w + PICTURE_WORDS_W, PICTURE__LEFT);
    }
    picture__legend(cr, gx + grid_w + PICTURE_GAP, gy + PICTURE_LABEL_H, 240, lo, hi, 1, "attention");
    free(sum), free(order);
    return picture__finish(cr, s, o);
}

/* ---- grounding: Fig. 4 --------------------------------------------------------------------------------- */

typedef struct {
    double x, y, w, h;
} picture__rect;

static int picture__overlap(picture__rect a, picture__rect b)
{
    return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

int picture_grounding(util_out *o, const picture_ground *g)
{
    const picture_image *photo = g->photo;
    const int n = g->n, inner = photo->width > 400 ? photo->width : 400;
    const int W = 2 * PICTURE_MARGIN + inner;
    const int px = PICTURE_MARGIN + (inner - photo->width) / 2, py = PICTURE_TITLE_H + PICTURE_MARGIN;
    const int ky = py + photo->height + PICTURE_GAP;
    const int H = ky + (n + 1) * PICTURE_KEY_H + PICTURE_MARGIN;
    const double sx = (double)photo->width / g->source_width, sy = (double)photo->height / g->source_height;
    picture__rect *tags = (picture__rect *)malloc(sizeof(picture__rect) * (size_t)(n ? n : 1));
    if (!tags) return util_out_abort(o), cli_error("out of memory");
    cairo_surface_t *s;
    cairo_t *cr;
    if (picture__start(o, W, H, &s, &cr)) return free(tags), CLI_FAIL;
    picture__title(cr, W, H, g->sentence, NULL);
    picture__paint(cr, photo->rgb, photo->width, photo->height, px, py, photo->width, photo->height);
    cairo_save(cr);
    cairo_rectangle(cr, px, py, photo->width, photo->height);
    cairo_clip(cr);
    const double dash[2] = {7, 4};
    for (int i = 0; i < n; i++) { /* the annotations' boxes first: the predictions are drawn over them */
        picture__set(cr, picture__palette(i));
        cairo_set_line_width(cr, 2.5);
        cairo_set_dash(cr, dash, 2, 0);
        for (int t = 0; t < g->phrases[i].n_truth; t++) {
            picture__box_path(cr, g->phrases[i].truth + (size_t)t * 4, px, py, sx, sy, 0);
            cairo_stroke(cr);
        }
    }
    cairo_set_dash(cr, NULL, 0, 0);
    for (int i = 0; i < n; i++) { /* a box some phrase before has too is drawn inside it */
        int same = 0;
        for (int j = 0; j < i; j++) same += !memcmp(g->phrases[j].box, g->phrases[i].box, sizeof g->phrases[i].box);
        picture__set(cr, picture__palette(i));
        cairo_set_line_width(cr, 3);
        picture__box_path(cr, g->phrases[i].box, px, py, sx, sy, 3.0 * same);
        cairo_stroke(cr);
    }
    /* each phrase's tag at its box's top left corner, above the box when there is room,
       moved down past the tags placed before it */
    picture__font(cr, 12, 1);
    for (int i = 0; i < n; i++) {
        double b[4];
        char clean[512], shown[512];
        picture__box(g->phrases[i].box, px, py, sx, sy, 0, b);
        picture__clean(g->phrases[i].text, clean, sizeof clean);
        picture__fit(cr, clean, 220, shown, sizeof shown);
        picture__rect r = {fmax(px, b[0] - 1.5), b[1] - 18, picture__width(cr, shown) + 8, 18};
        if (r.x + r.w > px + photo->width) r.x = fmax(px, px + photo->width - r.w);
        if (r.y < py) r.y = fmax(py, b[1]);
        for (int tries = 0; tries < n; tries++) {
            int moved = 0;
            for (int j = 0; j < i; j++)
                if (picture__overlap(r, tags[j])) r.y = tags[j].y + tags[j].h + 1, moved = 1;
            if (!moved) break;
        }
        tags[i] = r;
        const picture__rgb c = picture__palette(i);
        picture__fill(cr, c, r.x, r.y, r.w, r.h);
        picture__set(cr, picture__on(c));
        cairo_move_to(cr, r.x + 4, r.y + 13.5);
        cairo_show_text(cr, shown);
    }
    cairo_restore(cr);
    /* the key: a row per phrase, then what the lines mean */
    for (int i = 0; i <= n; i++) {
        const double y = ky + i * PICTURE_KEY_H, mid = y + PICTURE_KEY_H / 2.0;
        const picture__rgb c = i < n ? picture__palette(i) : picture__ink;
        char text[600];
        picture__set(cr, c);
        cairo_set_line_width(cr, 3);
        cairo_move_to(cr, PICTURE_MARGIN, mid);
        cairo_line_to(cr, PICTURE_MARGIN + 22, mid);
        cairo_stroke(cr);
        if (i == n || g->phrases[i].n_truth) {
            cairo_set_line_width(cr, 2.5);
            cairo_set_dash(cr, dash, 2, 0);
            cairo_move_to(cr, PICTURE_MARGIN + 28, mid);
            cairo_line_to(cr, PICTURE_MARGIN + 50, mid);
            cairo_stroke(cr);
            cairo_set_dash(cr, NULL, 0, 0);
        }
        if (i < n) snprintf(text, sizeof text, "%.500s   (score %.3g)", g->phrases[i].text, g->phrases[i].score);
        else if (g->annotated) snprintf(text, sizeof text, "solid: the model's top box;  dashed: the annotations' boxes");
        else snprintf(text, sizeof text, "solid: the model's top box (no annotations given)");
        picture__set(cr, picture__ink);
        picture__font(cr, 12, i < n);
        picture__text(cr, text, PICTURE_MARGIN + 58, mid + 4.5, W - 2 * PICTURE_MARGIN - 58, PICTURE__LEFT);
    }
    free(tags);
    return picture__finish(cr, s, o);
}

#endif /* PICTURE_IMPLEMENTATION */
