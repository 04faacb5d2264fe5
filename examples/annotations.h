/* annotations.h - Flickr30k Entities annotations (Annotations/<image id>.xml): which
   coreference chains have a box in the image, read as the reference (jnhwkim/ban-vqa,
   dataset.py _load_flickr30k) reads them with ElementTree, for `ban ground`
   (examples/cmd_ground.c). Parsed with expat (link -lexpat); numbers as markup.h's
   markup_py_int (Python's int()).

   For each <object> child of the root whose first <bndbox> child has child elements, every
   <name> child is a chain id (int(name.text), > 0) owning that box (int() of the texts of
   ./bndbox/xmin, ymin, xmax, ymax, which must be there). Objects without such a box are
   passed over unread.

   annotations_chains chains = {0};
   annotations_read(path, &chains, err, errlen)       0, or -1 with "path:line: message"
   annotations_parse(buf, n, name, &chains, err, errlen)  the same from a whole file in memory
       (`name` stands for the path); either replaces what chains held (none on failure)
   annotations_has(&chains, id)                       1 when chain id has a box
   chains.boxes[0 .. n_boxes)                         every box with its chain, in file order (the
                                                      ground truth `ban ground --picture` draws)
   annotations_free(&chains)

   Define ANNOTATIONS_IMPLEMENTATION in exactly one C file (in build/ban: examples/cmd_ground.c),
   and MARKUP_IMPLEMENTATION in one (the same or another). */
#ifndef ANNOTATIONS_H_INCLUDED
#define ANNOTATIONS_H_INCLUDED
#include <stddef.h>
#include <stdint.h>

#include "markup.h"

typedef struct {
    int64_t chain;
    int64_t box[4];            /* xmin, ymin, xmax, ymax as written */
} annotations_box;

typedef struct {
    int64_t *ids;              /* the chain ids with a box, each once, in increasing order */
    int n, cap;
    annotations_box *boxes;    /* (chain, box) for every <name> of an object with a box */
    int n_boxes, cap_boxes;
} annotations_chains;

int annotations_read(const char *path, annotations_chains *chains, char *err, size_t errlen);
int annotations_parse(const void *buf, size_t n, const char *name, annotations_chains *chains, char *err,
                      size_t errlen);
int annotations_has(const annotations_chains *chains, int64_t id);
void annotations_free(annotations_chains *chains);

#endif /* ANNOTATIONS_H_INCLUDED */

#if defined(ANNOTATIONS_IMPLEMENTATION) && !defined(ANNOTATIONS__IMPLEMENTED)
#define ANNOTATIONS__IMPLEMENTED
#include <expat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int annotations__fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

int annotations_has(const annotations_chains *s, int64_t id)
{
    int lo = 0, hi = s->n; /* binary search in [lo, hi) */
    while (lo < hi) {
        const int mid = lo + (hi - lo) / 2;
        if (s->ids[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < s->n && s->ids[lo] == id;
}

static int annotations__cmp(const void *a, const void *b)
{
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* room for one more of n items of size elem in *p (cap of them) */
static int annotations__grow(void **p, int n, int *cap, size_t elem)
{
    if (n < *cap) return 0;
    if (*cap > INT32_MAX / 2) return -1;
    const int c = *cap ? *cap * 2 : 16;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q) return -1;
    *p = q, *cap = c;
    return 0;
}

/* every chain of every boxed object, repeats too: the ids sorted and made unique once the file
   is read (a check for repeats here would make a file of many chains cost quadratic time) */
static int annotations__add(annotations_chains *s, int64_t id, const int64_t box[4])
{
    if (annotations__grow((void **)&s->ids, s->n, &s->cap, sizeof(int64_t)) ||
        annotations__grow((void **)&s->boxes, s->n_boxes, &s->cap_boxes, sizeof(annotations_box)))
        return -1;
    s->ids[s->n++] = id;
    annotations_box *b = &s->boxes[s->n_boxes++];
    b->chain = id;
    memcpy(b->box, box, sizeof b->box);
    return 0;
}

enum { ANNOTATIONS__TEXT_MAX = 256, ANNOTATIONS__NAMES_MAX = 64 };
static const char *const annotations__coords[4] = {"xmin", "ymin", "xmax", "ymax"};

typedef struct {
    XML_Parser parser;
    const char *path;
    char *err;
    size_t errlen;
    int failed;
    int depth;
    int in_object, in_bndbox;   /* a depth-2 <object>; a <bndbox> child of it */
    int first_bndbox;           /* 0: none yet, 1: the object's first <bndbox> is open, 2: it closed */
    int box_children;           /* elements in the first <bndbox> */
    long object_line;
    int n_names;                /* <name> children of the object */
    char names[ANNOTATIONS__NAMES_MAX][ANNOTATIONS__TEXT_MAX];
    long name_lines[ANNOTATIONS__NAMES_MAX];
    int have_coord[4];          /* the first ./bndbox/<tag> text of each coordinate */
    char coords[4][ANNOTATIONS__TEXT_MAX];
    long coord_lines[4];
    int capture;                /* -1, or what the text goes to: 0..3 a coordinate, 4 a name */
    int capture_depth, capture_open; /* ElementTree's .text stops at the first child */
    char text[ANNOTATIONS__TEXT_MAX];
    size_t text_len;
    annotations_chains *chains;
} annotations__reader;

static void annotations__stop(annotations__reader *x, long line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(x->err, x->errlen, "%s:%ld: %s", x->path, line, msg);
    x->failed = 1;
    XML_StopParser(x->parser, XML_FALSE);
}

static void XMLCALL annotations__start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    annotations__reader *x = (annotations__reader *)ud;
    (void)atts;
    if (x->failed) return;
    const long line = (long)XML_GetCurrentLineNumber(x->parser);
    x->depth++;
    if (x->capture >= 0) x->capture_open = 0;
    if (x->depth == 2 && !strcmp(name, "object")) {
        x->in_object = 1, x->in_bndbox = 0, x->first_bndbox = 0, x->box_children = 0, x->n_names = 0;
        x->object_line = line;
        memset(x->have_coord, 0, sizeof x->have_coord);
    } else if (x->depth == 3 && x->in_object) {
        if (!strcmp(name, "name")) {
            if (x->n_names == ANNOTATIONS__NAMES_MAX)
                return annotations__stop(x, line, "more than %d <name> in one <object>", ANNOTATIONS__NAMES_MAX);
            x->name_lines[x->n_names] = line;
            x->capture = 4, x->capture_depth = x->depth, x->capture_open = 1, x->text_len = 0;
        } else if (!strcmp(name, "bndbox")) {
            x->in_bndbox = 1;
            if (x->first_bndbox == 0) x->first_bndbox = 1;
        }
    } else if (x->depth == 4 && x->in_bndbox) {
        if (x->first_bndbox == 1) x->box_children++;
        for (int i = 0; i < 4; i++)
            if (!strcmp(name, annotations__coords[i]) && !x->have_coord[i]) {
                x->coord_lines[i] = line;
                x->capture = i, x->capture_depth = x->depth, x->capture_open = 1, x->text_len = 0;
            }
    }
}

static void XMLCALL annotations__text(void *ud, const XML_Char *s, int len)
{
    annotations__reader *x = (annotations__reader *)ud;
    if (x->failed || x->capture < 0 || !x->capture_open || x->depth != x->capture_depth) return;
    if (x->text_len >= ANNOTATIONS__TEXT_MAX) return;
    size_t room = ANNOTATIONS__TEXT_MAX - 1 - x->text_len, n = (size_t)len < room ? (size_t)len : room;
    memcpy(x->text + x->text_len, s, n);
    x->text_len += n;
    if ((size_t)len > room) x->text_len = ANNOTATIONS__TEXT_MAX; /* too long to be a number: marked */
}

static void XMLCALL annotations__end(void *ud, const XML_Char *name)
{
    annotations__reader *x = (annotations__reader *)ud;
    (void)name;
    if (x->failed) return;
    if (x->capture >= 0 && x->depth == x->capture_depth) {
        char *dst = x->capture == 4 ? x->names[x->n_names++] : x->coords[x->capture];
        if (x->text_len >= ANNOTATIONS__TEXT_MAX) snprintf(dst, ANNOTATIONS__TEXT_MAX, "%s", "(more than 255 bytes)");
        else memcpy(dst, x->text, x->text_len), dst[x->text_len] = 0;
        if (x->capture < 4) x->have_coord[x->capture] = 1;
        x->capture = -1;
    }
    if (x->depth == 3 && x->in_bndbox) {
        x->in_bndbox = 0;
        if (x->first_bndbox == 1) x->first_bndbox = 2;
    }
    if (x->depth == 2 && x->in_object) {
        x->in_object = 0;
        if (x->first_bndbox && x->box_children > 0) {
            int64_t v, box[4];
            for (int i = 0; i < 4; i++) {
                if (!x->have_coord[i])
                    return annotations__stop(x, x->object_line, "<object> has a <bndbox> without <%s>",
                                             annotations__coords[i]);
                if (!markup_py_int(x->coords[i], &box[i]))
                    return annotations__stop(x, x->coord_lines[i], "<%s> is not a whole number: '%s'",
                                             annotations__coords[i], x->coords[i]);
            }
            if (x->n_names == 0)
                return annotations__stop(x, x->object_line, "<object> with a <bndbox> has no <name>");
            for (int i = 0; i < x->n_names; i++) {
                if (!markup_py_int(x->names[i], &v) || v <= 0)
                    return annotations__stop(x, x->name_lines[i], "<name> of an object with a box is not a chain id "
                                             "(a whole number > 0): '%s'", x->names[i]);
                if (annotations__add(x->chains, v, box))
                    return annotations__stop(x, x->name_lines[i], "out of memory");
            }
        }
    }
    x->depth--;
}

int annotations_parse(const void *buf, size_t size, const char *name, annotations_chains *chains, char *err,
                      size_t errlen)
{
    annotations__reader *x = (annotations__reader *)calloc(1, sizeof *x);
    XML_Parser p = XML_ParserCreate(NULL);
    int rc = 0;
    chains->n = chains->n_boxes = 0;
    if (!x || !p) {
        rc = annotations__fail(err, errlen, "%s: out of memory", name);
    } else {
        x->parser = p, x->path = name, x->err = err, x->errlen = errlen, x->capture = -1, x->chains = chains;
        XML_SetUserData(p, x);
        XML_SetElementHandler(p, annotations__start, annotations__end);
        XML_SetCharacterDataHandler(p, annotations__text);
        if (size > (size_t)INT32_MAX) rc = annotations__fail(err, errlen, "%s: too large for an annotation file", name);
        else if (XML_Parse(p, (const char *)buf, (int)size, XML_TRUE) == XML_STATUS_ERROR) {
            if (x->failed) rc = -1;
            else
                rc = annotations__fail(err, errlen, "%s:%lu: malformed XML: %s (column %lu)", name,
                                       (unsigned long)XML_GetCurrentLineNumber(p),
                                       XML_ErrorString(XML_GetErrorCode(p)),
                                       (unsigned long)XML_GetCurrentColumnNumber(p) + 1);
        } else if (x->failed) rc = -1;
    }
    if (p) XML_ParserFree(p);
    free(x);
    if (rc) chains->n = chains->n_boxes = 0;
    else if (chains->n > 1) { /* sorted, each once */
        qsort(chains->ids, (size_t)chains->n, sizeof(int64_t), annotations__cmp);
        int k = 1;
        for (int i = 1; i < chains->n; i++)
            if (chains->ids[i] != chains->ids[k - 1]) chains->ids[k++] = chains->ids[i];
        chains->n = k;
    }
    return rc;
}

int annotations_read(const char *path, annotations_chains *chains, char *err, size_t errlen)
{
    size_t size;
    chains->n = chains->n_boxes = 0;
    char *buf = markup_read_file(path, &size, err, errlen);
    if (!buf) return -1;
    int rc = annotations_parse(buf, size, path, chains, err, errlen);
    free(buf);
    return rc;
}

void annotations_free(annotations_chains *chains)
{
    free(chains->ids), free(chains->boxes);
    chains->ids = NULL, chains->boxes = NULL;
    chains->n = chains->cap = chains->n_boxes = chains->cap_boxes = 0;
}

#endif /* ANNOTATIONS_IMPLEMENTATION */
