/* ban features - bottom-up-attention TSV files -> one feature store (examples/store.h).

   ban features import --tsv FILE [FILE ...] --output STORE [--image-ids IDS.txt]
                       [--feature-dim D] [--skip-bad]
   ban features info STORE

   The TSV files are those of peteanderson80/bottom-up-attention: one image a line, no
   header, six tab-separated fields image_id, image_w, image_h, num_boxes, boxes,
   features, the last two base64 of float32 (num_boxes, 4) pixel boxes and (num_boxes, D)
   features; lines end in \r\n (Python's csv writer) or \n. The import streams: memory
   holds one line and the index (constant in the size of the input but for 32 bytes and a
   few more an image), and the store is written atomically. Bad records are errors naming
   the file and line, or with --skip-bad warnings, counted and listed at the end. The
   records and lines are read by examples/tsv.h (fuzzed: tests/fuzz/fuzz_tsv.c). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <sys/types.h>

#include <dirent.h>
#include <sys/stat.h>

#include "cli.h"
#include "npz.h"
#include "store.h"
#include "tsv.h"

/* ---- a set of image ids (--image-ids) ------------------------------------------------ */

typedef struct {
    int64_t *ids;
    unsigned char *used, *found;
    size_t mask, n;
} id_set;

static size_t id_hash(int64_t id)
{
    uint64_t x = (uint64_t)id;
    x ^= x >> 33, x *= 0xff51afd7ed558ccdULL, x ^= x >> 33;
    return (size_t)x;
}

/* slot of id, or of the empty place where it would go */
static size_t id_slot(const id_set *s, int64_t id)
{
    size_t i = id_hash(id) & s->mask;
    while (s->used[i] && s->ids[i] != id) i = (i + 1) & s->mask;
    return i;
}

static int id_set_add(id_set *s, int64_t id)
{
    if ((s->n + 1) * 2 > s->mask + 1) {
        id_set t = {NULL, NULL, NULL, s->mask ? s->mask * 2 + 1 : 1023, 0};
        t.ids = (int64_t *)malloc((t.mask + 1) * sizeof(int64_t));
        t.used = (unsigned char *)calloc(t.mask + 1, 1);
        t.found = (unsigned char *)calloc(t.mask + 1, 1);
        if (!t.ids || !t.used || !t.found) return free(t.ids), free(t.used), free(t.found), -1;
        for (size_t i = 0; s->used && i <= s->mask; i++)
            if (s->used[i]) {
                size_t j = id_slot(&t, s->ids[i]);
                t.used[j] = 1, t.ids[j] = s->ids[i], t.found[j] = s->found[i];
                t.n++;
            }
        free(s->ids), free(s->used), free(s->found);
        *s = t;
    }
    size_t i = id_slot(s, id);
    if (!s->used[i]) s->used[i] = 1, s->ids[i] = id, s->n++;
    return 0;
}

/* 1 and marks it found when id is in the set */
static int id_set_take(id_set *s, int64_t id)
{
    size_t i = id_slot(s, id);
    if (!s->used[i]) return 0;
    s->found[i] = 1;
    return 1;
}

/* tsv_parser's select: 1 (and marks it found) when id is in the set */
static int id_set_select(void *set, int64_t id) { return id_set_take((id_set *)set, id); }

static void id_set_free(id_set *s) { free(s->ids), free(s->used), free(s->found); }

static int read_id_list(const char *path, id_set *set)
{
    FILE *f = fopen(path, "rb");
    if (!f) return cli_error("%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;
    int rc = CLI_OK;
    while (rc == CLI_OK && (got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t a = 0, b = (size_t)got;
        while (a < b && (line[a] == ' ' || line[a] == '\t')) a++;
        while (b > a && (line[b - 1] == '\n' || line[b - 1] == '\r' || line[b - 1] == ' ' || line[b - 1] == '\t')) b--;
        if (a == b || line[a] == '#') continue; /* blank lines and comments */
        uint64_t id;
        if (!tsv_parse_uint(line + a, b - a, INT64_MAX, &id))
            rc = cli_error("%s:%ld: '%.*s' is not an image id (a whole number)", path, lineno, (int)(b - a < 40 ? b - a : 40),
                           line + a);
        else if (id_set_add(set, (int64_t)id))
            rc = cli_error("out of memory for the image ids");
    }
    if (rc == CLI_OK && ferror(f)) rc = cli_error("%s: read error", path);
    free(line);
    fclose(f);
    if (rc == CLI_OK && set->n == 0) rc = cli_error("%s: no image ids", path);
    return rc;
}

/* ---- ban features import ---------------------------------------------------------------- */

#define MAX_LISTED 20 /* skipped lines named in the final report */

typedef struct {
    tsv_parser p;               /* p.feature_dim: 0 until the first record (or --feature-dim) fixes it */
    int skip_bad;
    id_set *select;             /* NULL: every image */
    store_writer *w;
    const char *output;
    const char **files;
    int *src_file;              /* per record added: where it came from */
    uint64_t *src_line;
    size_t src_cap;
    uint64_t images, boxes_total, unselected, skipped, bytes;
    int npz;                    /* reading .npz files, not TSV */
    char listed[MAX_LISTED][160];
    double t0, last_report;
} importer;

static void progress(importer *im, const char *file, int final)
{
    double t = util_now();
    if (!final && t - im->last_report < 2.0) return;
    im->last_report = t;
    double mb = (double)im->bytes / 1e6, dt = t - im->t0 > 1e-9 ? t - im->t0 : 1e-9;
    if (final)
        fprintf(stderr, "ban: features: imported %llu images (%llu boxes of %d floats) from %.1f MB of %s in %.1f s "
                "(%.1f MB/s) into %s\n", (unsigned long long)im->images, (unsigned long long)im->boxes_total,
                im->p.feature_dim, mb, im->npz ? ".npz files" : "TSV", dt,
                mb / dt, im->output);
    else
        fprintf(stderr, "ban: features: %s: %llu images, %.1f MB read (%.1f MB/s)\n", file,
                (unsigned long long)im->images, mb, mb / dt);
}

/* Record one bad line (line 0: a bad .npz file): an error, or with --skip-bad a warning and a count. */
static int bad_record(importer *im, const char *file, uint64_t line, const char *why, int cut)
{
    const char *hint = cut ? " (the file ends in the middle of this line: truncated?)" : "";
    char where[sizeof im->listed[0]];
    if (line) snprintf(where, sizeof where, "%s:%llu", file, (unsigned long long)line);
    else snprintf(where, sizeof where, "%s", file);
    if (!im->skip_bad) return cli_error("%s: %s%s", where, why, hint);
    cli_warn("%s: %s%s; %s skipped", where, why, hint, line ? "record" : "file");
    if (im->skipped < MAX_LISTED) snprintf(im->listed[im->skipped], sizeof im->listed[0], "%s", where);
    im->skipped++;
    return CLI_OK;
}

static int import_file(importer *im, int file_index)
{
    const char *path = im->files[file_index];
    FILE *f = fopen(path, "rb");
    if (!f) return cli_error("%s: cannot open: %s", path, strerror(errno));
    tsv_reader r;
    if (tsv_reader_init(&r, f, (size_t)4 << 20, 0)) {
        fclose(f);
        return cli_error("out of memory");
    }
    uint64_t lineno = 0, base = im->bytes;
    int rc = CLI_OK;
    char why[512], err[512];
    for (;;) {
        r.max_line = tsv_max_line(im->p.feature_dim); /* the longest line a record may take */
        char *line;
        size_t len;
        int newline, too_long;
        int got = tsv_read_line(&r, &line, &len, &newline, &too_long);
        if (got < 0) { rc = cli_error("%s: read error after line %llu", path, (unsigned long long)lineno); break; }
        if (got == 0) break;
        lineno++;
        im->bytes = base + r.bytes;
        if (too_long) {
            snprintf(why, sizeof why, "a line longer than %zu bytes cannot be a record of at most %d boxes%s",
                     r.max_line, STORE_MAX_BOXES, im->p.feature_dim ? "" : " (of at most 16384 floats)");
            if ((rc = bad_record(im, path, lineno, why, !newline))) break;
            continue;
        }
        if (len == 0) continue; /* blank lines, as Python's csv reader */
        store_record rec;
        int status = tsv_parse_record(&im->p, line, len, &rec, why, sizeof why);
        if (status == TSV_UNSELECTED) { im->unselected++; continue; }
        if (status == TSV_OK) {
            int64_t prev = im->w ? store_writer_find(im->w, rec.id) : -1;
            if (prev >= 0) {
                snprintf(why, sizeof why, "image %s appears twice (first at %s:%llu)", rec.id,
                         im->files[im->src_file[prev]], (unsigned long long)im->src_line[prev]);
                status = TSV_BAD;
            }
        }
        if (status == TSV_BAD) {
            if ((rc = bad_record(im, path, lineno, why, !newline))) break;
            continue;
        }
        if (!im->w) {
            if (store_writer_open(im->output, im->p.feature_dim, &im->w, err, sizeof err)) { rc = cli_error("%s", err); break; }
        }
        if (im->images + 1 > im->src_cap) {
            size_t cap = im->src_cap ? im->src_cap * 2 : 4096;
            int *sf = (int *)realloc(im->src_file, cap * sizeof(int));
            if (sf) im->src_file = sf;
            uint64_t *sl = sf ? (uint64_t *)realloc(im->src_line, cap * sizeof(uint64_t)) : NULL;
            if (!sl) { rc = cli_error("out of memory for the index"); break; }
            im->src_line = sl, im->src_cap = cap;
        }
        if (store_writer_add(im->w, &rec, err, sizeof err)) { rc = cli_error("%s:%llu: %s", path, (unsigned long long)lineno, err); break; }
        im->src_file[im->images] = file_index;
        im->src_line[im->images] = lineno;
        im->images++;
        im->boxes_total += (uint64_t)rec.n_boxes;
        progress(im, path, 0);
    }
    im->bytes = base + r.bytes;
    tsv_reader_free(&r);
    fclose(f);
    return rc;
}

/* one .npz file of OpenVQA's (examples/npz.h) into the store: an error, or with --skip-bad a
   warning and a count */
static int import_npz(importer *im, const char *path, long dim)
{
    npz_features f;
    char err[4400];
    struct stat st;
    if (stat(path, &st) == 0) im->bytes += (uint64_t)st.st_size;
    if (npz_read_features(path, &f, err, sizeof err)) {
        const size_t n = strlen(path); /* the message names the file first: keep its reason */
        return bad_record(im, path, 0, strncmp(err, path, n) == 0 && err[n] == ':' ? err + n + 2 : err, 0);
    }
    int rc = CLI_OK;
    const store_record rec = npz_record(&f);
    if (!im->p.feature_dim) im->p.feature_dim = dim ? (int)dim : f.feature_dim; /* the first file's, or --feature-dim */
    if (f.feature_dim != im->p.feature_dim) {
        snprintf(err, sizeof err, "%d-d features, the store's are %d-d", f.feature_dim, im->p.feature_dim);
        rc = bad_record(im, path, 0, err, 0);
    } else if (!im->w && store_writer_open(im->output, im->p.feature_dim, &im->w, err, sizeof err)) {
        rc = cli_error("%s", err);
    } else if (store_writer_find(im->w, rec.id) >= 0) {
        snprintf(err, sizeof err, "image %s appears twice in the folder", rec.id);
        rc = bad_record(im, path, 0, err, 0);
    } else if (store_writer_add(im->w, &rec, err, sizeof err)) {
        rc = cli_error("%s: %s", path, err);
    } else {
        im->images++;
        im->boxes_total += (uint64_t)rec.n_boxes;
    }
    npz_features_free(&f);
    return rc;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* every DIR/<name>.npz, in the order of their names */
static int import_npz_dir(importer *im, const char *dir, long dim)
{
    DIR *d = opendir(dir);
    if (!d) return cli_error("%s: cannot open the folder: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = CLI_OK;
    for (struct dirent *e; rc == CLI_OK && (e = readdir(d));) {
        const size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".npz")) continue;
        if (n == cap) {
            char **t = (char **)realloc(names, (cap = cap ? 2 * cap : 1024) * sizeof *names);
            if (!t) { rc = cli_error("out of memory for the file names"); break; }
            names = t;
        }
        if (!(names[n] = (char *)malloc(strlen(dir) + len + 2))) { rc = cli_error("out of memory"); break; }
        sprintf(names[n++], "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (rc == CLI_OK && n == 0) rc = cli_error("%s: no .npz files", dir);
    if (rc == CLI_OK) qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; rc == CLI_OK && i < n; i++) {
        rc = import_npz(im, names[i], dim);
        progress(im, names[i], 0);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

static int import_main(const cli_args *a)
{
    const char *ids_path = cli_get(a, "--image-ids"), *output = cli_get(a, "--output");
    const char *npz_dir = cli_get(a, "--npz-dir");
    long dim = 0;
    if (cli_long(a, "--feature-dim", 1, STORE_MAX_DIM, &dim)) return CLI_USAGE;
    if (!npz_dir == !cli_get(a, "--tsv")) return cli_usage(a, "--tsv or --npz-dir is required (one of them)");
    if (npz_dir && (a->n_args || ids_path))
        return cli_usage(a, "--npz-dir imports every .npz file of its folder: no further files, no --image-ids");
    /* the files: --tsv's value, then the arguments */
    const char **files = (const char **)malloc((size_t)(a->n_args + 1) * sizeof(char *));
    if (!files) return cli_error("out of memory");
    files[0] = cli_get(a, "--tsv");
    for (int i = 0; i < a->n_args; i++) files[i + 1] = a->arg[i];
    const int n_files = a->n_args + 1;

    id_set select = {NULL, NULL, NULL, 0, 0};
    importer im;
    memset(&im, 0, sizeof im);
    im.skip_bad = cli_flag(a, "--skip-bad");
    im.output = output;
    im.files = files;
    im.t0 = im.last_report = util_now();
    int rc = CLI_OK;
    char err[512];
    if (tsv_parser_init(&im.p, (int)dim)) rc = cli_error("out of memory");
    if (rc == CLI_OK && ids_path) {
        if ((rc = read_id_list(ids_path, &select)) == CLI_OK) {
            im.select = &select;
            im.p.select = id_set_select, im.p.select_data = &select;
        }
    }
    if (rc == CLI_OK && dim && store_writer_open(output, (int)dim, &im.w, err, sizeof err)) rc = cli_error("%s", err);
    im.npz = npz_dir != NULL;
    if (rc == CLI_OK && npz_dir) {
        fprintf(stderr, "ban: features: reading %s/*.npz\n", npz_dir);
        rc = import_npz_dir(&im, npz_dir, dim);
    }
    for (int i = 0; rc == CLI_OK && !npz_dir && i < n_files; i++) {
        fprintf(stderr, "ban: features: reading %s\n", files[i]);
        rc = import_file(&im, i);
    }
    if (rc == CLI_OK && im.images == 0)
        rc = cli_error("no image imported (%llu records%s%s); %s not written",
                       (unsigned long long)(im.unselected + im.skipped), im.select ? ", none of them listed in " : "",
                       im.select ? ids_path : "", output);
    if (rc == CLI_OK) {
        store_writer *w = im.w;
        im.w = NULL;
        if (store_writer_commit(w, err, sizeof err)) rc = cli_error("%s", err);
    }
    if (im.w) store_writer_abort(im.w);
    if (rc == CLI_OK) {
        progress(&im, NULL, 1);
        if (im.skipped) {
            fprintf(stderr, "ban: features: skipped %llu bad record%s: ", (unsigned long long)im.skipped,
                    im.skipped == 1 ? "" : "s");
            for (uint64_t i = 0; i < im.skipped && i < MAX_LISTED; i++) fprintf(stderr, "%s%s", i ? ", " : "", im.listed[i]);
            if (im.skipped > MAX_LISTED) fprintf(stderr, ", ... (%llu more)", (unsigned long long)(im.skipped - MAX_LISTED));
            fputc('\n', stderr);
        }
        if (im.select) {
            uint64_t missing = 0;
            for (size_t i = 0; i <= select.mask; i++) missing += select.used[i] && !select.found[i];
            if (im.unselected) fprintf(stderr, "ban: features: %llu images not listed in %s were left out\n",
                                       (unsigned long long)im.unselected, ids_path);
            if (missing) {
                fprintf(stderr, "ban: warning: %llu of the %zu image ids of %s are in none of the TSV files (e.g.",
                        (unsigned long long)missing, select.n, ids_path);
                int shown = 0;
                for (size_t i = 0; i <= select.mask && shown < 5; i++)
                    if (select.used[i] && !select.found[i]) fprintf(stderr, " %lld", (long long)select.ids[i]), shown++;
                fprintf(stderr, ")\n");
            }
        }
    }
    id_set_free(&select);
    tsv_parser_free(&im.p);
    free(im.src_file), free(im.src_line);
    free(files);
    return rc;
}

/* ---- ban features info ------------------------------------------------------------------ */

static int info_main(const cli_args *a)
{
    if (a->n_args != 1) return cli_usage(a, "the store is required: ban features info STORE");
    const char *path = a->arg[0];
    store *s;
    char err[512];
    if (store_open(path, &s, err, sizeof err)) return cli_error("%s", err);
    const int64_t N = store_image_count(s);
    const int D = store_feature_dim(s), most = store_max_boxes(s);
    int least = most;
    enum { BINS = STORE_MAX_BOXES / 10 + 1 };
    static uint64_t hist[BINS];
    memset(hist, 0, sizeof hist);
    store_record rec, lo, hi;
    memset(&lo, 0, sizeof lo);
    memset(&hi, 0, sizeof hi);
    for (int64_t i = 0; i < N; i++) {
        store_get(s, i, &rec);
        if (rec.n_boxes < least) least = rec.n_boxes;
        hist[rec.n_boxes / 10]++;
    }
    FILE *f = fopen(path, "rb");
    long long bytes = -1;
    if (f && fseek(f, 0, SEEK_END) == 0) bytes = (long long)ftell(f);
    if (f) fclose(f);
    printf("store:            %s\n", path);
    printf("format:           feature store version %d, %lld bytes\n", store_version(s), bytes);
    printf("images:           %lld\n", (long long)N);
    printf("boxes:            %lld (%d to %d an image, mean %.1f)\n", (long long)store_box_count(s), N ? least : 0,
           most, N ? (double)store_box_count(s) / (double)N : 0.0);
    printf("feature size:     %d floats (%d bytes a box)\n", D, D * 4);
    if (N) {
        store_get(s, 0, &lo);
        store_get(s, N - 1, &hi);
        printf("image ids:        %s to %s\n", lo.id, hi.id);
    }
    printf("boxes per image:\n");
    uint64_t top = 0;
    for (int b = 0; b < BINS; b++) if (hist[b] > top) top = hist[b];
    if (N && least == most) {
        printf("  %9d  %10lld  %s\n", most, (long long)N, "########################################");
    } else {
        for (int b = least / 10; N && b <= most / 10; b++) {
            char range[32], bar[41];
            int lo_b = b * 10 < 1 ? 1 : b * 10, hi_b = b * 10 + 9;
            snprintf(range, sizeof range, "%d-%d", lo_b, hi_b);
            int w = top ? (int)((hist[b] * 40 + top - 1) / top) : 0;
            memset(bar, '#', (size_t)w);
            bar[w] = 0;
            printf("  %9s  %10llu  %s\n", range, (unsigned long long)hist[b], bar);
        }
    }
    store_close(s);
    return CLI_OK;
}

static const cli_option import_options[] = {
    {"--tsv", "FILE", 0, "a bottom-up-attention TSV file (image_id, image_w, image_h, num_boxes, boxes, features;\n"
                         "base64 float32); more files may follow as arguments"},
    {"--npz-dir", "DIR", 0, "instead of TSV: OpenVQA's per-image feature files, every DIR/*.npz (VQA-v2's\n"
                            "COCO_<split>_<id>.jpg.npz with x (2048, K), bbox, image_w, image_h; GQA's <imageId>.npz\n"
                            "with x (K, 2048), bbox, width, height); the image id comes from the file name"},
    {"--output", "STORE", 1, "the feature store (docs/STORE.md), written atomically"},
    {"--image-ids", "IDS.txt", 0, "keep the listed images only (one id a line; default: every image)"},
    {"--feature-dim", "D", 0, "floats a box feature (default: the first record's)"},
    {"--skip-bad", NULL, 0, "skip, count and list bad records or .npz files (default: an error naming the file\n"
                            "and line)"},
    {NULL, NULL, 0, NULL}};

const cli_command cli_features_import = {
    "features import", import_main, CLI_NO_MODEL, "(--tsv FILE [FILE ...] | --npz-dir DIR) --output STORE [options]",
    "bottom-up-attention TSV files, or OpenVQA's .npz files, -> one mmap-able feature store\n"
    "The store keeps the pixel boxes, the image sizes and the reference's spatial features. Streamed (memory\n"
    "holds one line and the index), written atomically; a bad record is an error naming its file and line.",
    import_options, -1,
    "ban features import --tsv trainval/karpathy_*_resnet101_faster_rcnn_genome.tsv* --image-ids val2014_ids.txt \\\n"
    "    --output val2014.store\n"
    "ban features import --npz-dir data/gqa/feats/gqa-frcn --output gqa.store"};

const cli_command cli_features_info = {
    "features info", info_main, CLI_NO_MODEL, "STORE",
    "what a feature store holds: images, boxes, feature size, a histogram of boxes per image",
    NULL, 1,
    "ban features info val2014.store"};
