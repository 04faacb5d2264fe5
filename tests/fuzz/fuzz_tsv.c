/* fuzz_tsv.c - the TSV reader of `ban features import` (examples/tsv.h): lines and records.

   The input is a TSV file. It is read line by line twice from memory (fmemopen): once as
   the import reads it (a line may be as long as a record can be), and once through a
   16-byte buffer with lines of at most 64 bytes. Both must see the same number of lines;
   a line the second refuses as too long must be longer than 64 bytes, and any other must be
   the same bytes in both. Every line goes to tsv_parse_record, as the import sends them
   (the first good record fixes the feature size). A record that parses must satisfy the
   documented invariants: the image id in decimal without leading zeros, 1..STORE_MAX_BOXES
   boxes, sides 1..STORE_MAX_SIDE, the feature size fixed from then on, every float finite
   and every box a box of the image, as store_check_record (which the store's writer applies)
   requires (all of them are read, so the sanitizer checks the extent); written back as a TSV
   line (decimal numbers, base64) it must parse again to the same record. A refused line must
   come with a reason, which names the image once its id is read. Seeds: corpus/tsv, written
   by make_parser_seeds.py. */
#define _POSIX_C_SOURCE 200809L
#define UTIL_IMPLEMENTATION /* store.h writes through util.h */
#define STORE_IMPLEMENTATION
#define TSV_IMPLEMENTATION
#include "../../examples/tsv.h"

#include <math.h>
#include <string.h>

#include "fuzz.h"

enum { SMALL_CAP = 16, SMALL_LINE = 64 };

static char *b64_encode(const unsigned char *p, size_t n, size_t *out_len)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = alphabet[v >> 18], *o++ = alphabet[(v >> 12) & 63], *o++ = alphabet[(v >> 6) & 63], *o++ = alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *o++ = alphabet[v >> 18], *o++ = alphabet[(v >> 12) & 63], *o++ = '=', *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *o++ = alphabet[v >> 18], *o++ = alphabet[(v >> 12) & 63], *o++ = alphabet[(v >> 6) & 63], *o++ = '=';
    }
    *o = 0;
    *out_len = (size_t)(o - out);
    return out;
}

/* the record as a TSV line, parsed again: the same record */
static void round_trip(const store_record *rec, int D)
{
    const size_t nb = (size_t)rec->n_boxes * 16, nf = (size_t)rec->n_boxes * D * 4;
    size_t lb, lf;
    char *boxes = b64_encode((const unsigned char *)rec->boxes, nb, &lb);
    char *feats = b64_encode((const unsigned char *)rec->features, nf, &lf);
    char *line = malloc(lb + lf + 100);
    int head = snprintf(line, 100, "%s\t%d\t%d\t%d\t", rec->id, rec->width, rec->height, rec->n_boxes);
    memcpy(line + head, boxes, lb);
    line[head + lb] = '\t';
    memcpy(line + head + lb + 1, feats, lf);
    const size_t len = (size_t)head + lb + 1 + lf;
    tsv_parser p;
    store_record again;
    char why[512] = "";
    FUZZ_CHECK(tsv_parser_init(&p, D) == 0, "out of memory");
    int rc = tsv_parse_record(&p, line, len, &again, why, sizeof why);
    FUZZ_CHECK(rc == TSV_OK, "the record written back is refused: %s", why);
    FUZZ_CHECK(!strcmp(again.id, rec->id) && again.width == rec->width && again.height == rec->height &&
                   again.n_boxes == rec->n_boxes && p.feature_dim == D,
               "the record written back reads differently");
    FUZZ_CHECK(!memcmp(again.boxes, rec->boxes, nb) && !memcmp(again.features, rec->features, nf),
               "the record written back has other values");
    tsv_parser_free(&p);
    free(line), free(boxes), free(feats);
}

static int g_selecting; /* this input is read with a selection */

static void check_record(tsv_parser *p, const char *line, size_t len, int *D)
{
    store_record rec;
    char why[512] = "";
    memset(&rec, 0, sizeof rec);
    int rc = tsv_parse_record(p, line, len, &rec, why, sizeof why);
    FUZZ_CHECK(rc == TSV_OK || rc == TSV_UNSELECTED || rc == TSV_BAD, "status %d", rc);
    if (rc == TSV_BAD) {
        FUZZ_CHECK(why[0] != 0, "refused without a reason");
        if (rec.id) { /* the id was read: the reason names it */
            char want[40];
            snprintf(want, sizeof want, "image %s: ", rec.id);
            FUZZ_CHECK(!strncmp(why, want, strlen(want)), "the reason does not name image %s: %s", rec.id, why);
        }
        FUZZ_CHECK(p->feature_dim == *D, "a refused record changed the feature size %d to %d", *D, p->feature_dim);
        return;
    }
    const long long id = rec.id ? strtoll(rec.id, NULL, 10) : -1;
    if (rc == TSV_UNSELECTED) {
        FUZZ_CHECK(g_selecting && id % 7 == 3, "image %s left out, but it is selected", rec.id);
        return;
    }
    char canonical[24];
    snprintf(canonical, sizeof canonical, "%lld", id);
    FUZZ_CHECK(id >= 0 && !strcmp(canonical, rec.id) && !(g_selecting && id % 7 == 3), "image id %s", rec.id);
    FUZZ_CHECK(rec.n_boxes >= 1 && rec.n_boxes <= STORE_MAX_BOXES, "%d boxes", rec.n_boxes);
    FUZZ_CHECK(rec.width >= 1 && rec.width <= STORE_MAX_SIDE && rec.height >= 1 && rec.height <= STORE_MAX_SIDE,
               "size %d x %d", rec.width, rec.height);
    FUZZ_CHECK(p->feature_dim >= 1 && p->feature_dim <= STORE_MAX_DIM && (*D == 0 || p->feature_dim == *D),
               "feature size %d (was %d)", p->feature_dim, *D);
    FUZZ_CHECK(rec.boxes && rec.features && !rec.spatials, "record pointers");
    *D = p->feature_dim;
    FUZZ_CHECK(store_check_record(&rec, *D, why, sizeof why) == 0, "image %s, which the store refuses: %s", rec.id, why);
    for (size_t i = 0; i < (size_t)rec.n_boxes * 4; i++) FUZZ_CHECK(isfinite(rec.boxes[i]), "box value %zu", i);
    for (size_t i = 0; i < (size_t)rec.n_boxes * *D; i++)
        FUZZ_CHECK(isfinite(rec.features[i]), "feature value %zu", i);
    round_trip(&rec, *D);
}

/* the selection: image ids that are 3 modulo 7 are left out, as --image-ids would */
static int select_id(void *data, int64_t id)
{
    (void)data;
    return id % 7 != 3;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* fmemopen needs a non-empty buffer; an empty file is /dev/null */
    FILE *big = size ? fmemopen((void *)data, size, "rb") : fopen("/dev/null", "rb");
    FILE *small = size ? fmemopen((void *)data, size, "rb") : fopen("/dev/null", "rb");
    FUZZ_CHECK(big && small, "fmemopen");
    tsv_reader rb, rs;
    FUZZ_CHECK(tsv_reader_init(&rb, big, 4096, tsv_max_line(0)) == 0 && tsv_reader_init(&rs, small, SMALL_CAP,
                                                                                       SMALL_LINE) == 0, "memory");
    tsv_parser p;
    FUZZ_CHECK(tsv_parser_init(&p, 0) == 0, "memory");
    /* every other input is read with a selection, as --image-ids makes the import do */
    g_selecting = size && (data[0] & 1);
    if (g_selecting) p.select = select_id;
    int D = 0;
    size_t lines = 0;
    for (;;) {
        char *lb, *ls;
        size_t nb, ns;
        int nlb, nls, tlb, tls;
        const uint64_t before = rb.bytes;
        int gb = tsv_read_line(&rb, &lb, &nb, &nlb, &tlb);
        int gs = tsv_read_line(&rs, &ls, &ns, &nls, &tls);
        FUZZ_CHECK(gb >= 0 && gs >= 0, "read error");
        FUZZ_CHECK(gb == gs, "line %zu: one reader has it, the other not", lines + 1);
        if (!gb) break;
        lines++;
        FUZZ_CHECK(!tlb, "line %zu: too long for a record", lines);
        FUZZ_CHECK(nlb == nls, "line %zu: ends in a newline for one reader only", lines);
        if (tls) {
            const uint64_t raw = rb.bytes - before - (uint64_t)nlb; /* with a '\r' before the '\n' */
            FUZZ_CHECK(raw > SMALL_LINE, "line %zu of %llu bytes refused as longer than %d", lines,
                       (unsigned long long)raw, SMALL_LINE);
            FUZZ_CHECK(ns == 0, "a line refused as too long has %zu bytes", ns);
        } else {
            FUZZ_CHECK(nb == ns && !memcmp(lb, ls, nb), "line %zu: the readers disagree", lines);
        }
        FUZZ_CHECK(nb <= size && !memchr(lb, '\n', nb), "line %zu: %zu bytes", lines, nb);
        if (nb) check_record(&p, lb, nb, &D);
    }
    FUZZ_CHECK(rb.bytes == size && rs.bytes == size, "consumed %llu and %llu of %zu bytes",
               (unsigned long long)rb.bytes, (unsigned long long)rs.bytes, size);
    tsv_parser_free(&p);
    tsv_reader_free(&rb), tsv_reader_free(&rs);
    fclose(big), fclose(small);
    return 0;
}
