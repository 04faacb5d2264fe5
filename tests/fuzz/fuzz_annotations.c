/* fuzz_annotations.c - the Flickr30k Entities annotations reader of `ban ground`
   (examples/annotations.h, on expat).

   The input is an Annotations/<id>.xml file. annotations_parse must refuse it with
   "NAME:LINE: message" (or "NAME: message"), or give the chains that have a box: each a
   whole number > 0, each once, in increasing order, all found by annotations_has (and no
   number next to them). A chain set that already held
   ids is reset by the parse. annotations_read (the same parser, reading a file) must agree:
   the same verdict, message (the path in place of the name) and chains. Seeds:
   corpus/annotations, written by make_seeds.py. */
#define _POSIX_C_SOURCE 200809L
#define MARKUP_IMPLEMENTATION
#define ANNOTATIONS_IMPLEMENTATION
#include "../../examples/annotations.h"

#include <string.h>
#include <unistd.h>

#include "fuzz.h"

static char g_path[64];

static void remove_file(void) { unlink(g_path); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_path[0]) {
        snprintf(g_path, sizeof g_path, "/tmp/fuzz_annotations.%ld.xml", (long)getpid());
        atexit(remove_file);
    }
    annotations_chains a = {0}, b = {0};
    char err_a[8192] = "", err_b[8192] = "";
    /* a set that held chains before: the parse replaces them */
    for (int64_t id = 1000001; id <= 1000040; id++) {
        if (a.n == a.cap) {
            a.cap = a.cap ? a.cap * 2 : 8;
            a.ids = realloc(a.ids, (size_t)a.cap * sizeof(int64_t));
        }
        a.ids[a.n++] = id;
    }
    int rc = annotations_parse(data, size, "a.xml", &a, err_a, sizeof err_a);
    if (rc == 0) {
        int64_t most = 0;
        for (int i = 0; i < a.n; i++) {
            FUZZ_CHECK(a.ids[i] > 0, "chain %lld", (long long)a.ids[i]);
            FUZZ_CHECK(i == 0 || a.ids[i - 1] < a.ids[i], "chains %lld, %lld: not increasing",
                       (long long)a.ids[i > 0 ? i - 1 : 0], (long long)a.ids[i]);
            FUZZ_CHECK(annotations_has(&a, a.ids[i]), "chain %lld not found", (long long)a.ids[i]);
            if (a.ids[i] > most) most = a.ids[i];
        }
        if (most < INT64_MAX) FUZZ_CHECK(!annotations_has(&a, most + 1), "chain %lld found", (long long)most + 1);
        for (int i = 0; i + 1 < a.n; i++)
            if (a.ids[i] + 1 < a.ids[i + 1])
                FUZZ_CHECK(!annotations_has(&a, a.ids[i] + 1), "chain %lld found", (long long)a.ids[i] + 1);
        FUZZ_CHECK(!annotations_has(&a, 0), "chain 0 found");
    } else {
        FUZZ_CHECK(a.n == 0, "refused, with %d chains", a.n);
        FUZZ_CHECK(!strncmp(err_a, "a.xml:", 6), "message: %s", err_a);
    }
    FILE *f = fopen(g_path, "wb");
    FUZZ_CHECK(f && fwrite(data, 1, size, f) == size && fclose(f) == 0, "cannot write %s", g_path);
    int rc_b = annotations_read(g_path, &b, err_b, sizeof err_b);
    FUZZ_CHECK(rc_b == rc, "parse says %d (%s), read %d (%s)", rc, err_a, rc_b, err_b);
    if (rc == 0) {
        FUZZ_CHECK(a.n == b.n && (a.n == 0 || !memcmp(a.ids, b.ids, (size_t)a.n * sizeof(int64_t))),
                   "parse and read found different chains");
    } else {
        const size_t lp = strlen(g_path);
        FUZZ_CHECK(!strncmp(err_b, g_path, lp) && !strcmp(err_b + lp, err_a + 5), "messages differ: '%s' and '%s'",
                   err_a, err_b);
    }
    annotations_free(&a);
    annotations_free(&b);
    return 0;
}
