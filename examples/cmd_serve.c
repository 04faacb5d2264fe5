/* ban serve - visual questions and phrase grounding over HTTP, with dynamic batching and a
   web page.

   ban serve --model M.ban [--features STORE] [--host 127.0.0.1] [--port 8080] [--workers N]
             [--max-batch B] [--batch-wait-ms T] [--max-body-mb S] [--max-queue Q]

   ROUTES (every body JSON; every refusal {"error": "FIELD: why", "field": "FIELD" or null})
     POST /v1/answer  {"question": str | "questions": [str, ...], "image": base64 PNG/BMP (a model
                      with an image encoder) | "image_id": id (a model of box features, from the
                      store), "top_k": N (5), "glimpses": N (all), "attention": bool (false)}
                      -> {"question", "answer", "top_k": [{"answer", "probability"}], "entropy": [G],
                      "words": [{"word", "known"}], "attention": (G, K, P) when asked, "image" when
                      asked (its boxes or grid), "ms"}; several questions: {"answers": [...], "image",
                      "ms"}, all of them in one forward pass. The answers and probabilities are those
                      of `ban ask` (a softmax: an encoder model is trained with cross-entropy) and of
                      `ban vqa --top-k` (sigmoid(logit): trained with binary cross-entropy); the
                      attention is what `ban vqa --attention` writes, (G, K, P) for the image's K boxes.
     POST /v1/ground  {"image_id", "sentence": Flickr30k Entities markup, "top_k": N (5; 0: all)}
                      -> what `ban ground --json --sentence` prints, and "ms"
     GET /v1/model    the configuration, answers, conventions, the store, the server's settings
     GET /health      {"status": "ok", ...} (503 "draining" once a signal stops the server)
     GET /metrics     Prometheus text format: requests and errors by route and status, latency
                      histogram by route, questions-per-batch histogram, queue depth, workers busy
     GET /            the web page (examples/serve_page.h), which fetches nothing but this server

   THREADS
     libmicrohttpd gives every connection a thread of its own (MHD_USE_THREAD_PER_CONNECTION):
     it reads the request, parses it (JSON, base64, the image decoded and resized by image.h,
     the questions tokenised under ban.h's one question rule), queues the job and sleeps until
     a worker has answered it. A slow or stalled client holds its own thread, never a worker,
     until SERVE_TIMEOUT_S without a byte closes it; at most SERVE_CONNECTIONS connections are
     open at once (more are closed on arrival). The scheduler forms batches: once a worker is
     free and a job waits, it takes up to B questions, waiting for more until T ms after the
     oldest arrived while another batch is running (with every worker idle, waiting could only
     add latency: a lone request pays batch-1 time). Each of the N workers owns a ban_ctx sized
     for B questions (limits.threads = 1 when N > 1; by default N = 1 for a model in panels
     without an image encoder, whose products ban.h's own threads split, and one a processor
     otherwise, since CBLAS and the encoder run on the worker's thread: benchmarks/README.md,
     "ban serve") and batch buffers allocated once: a batch
     allocates nothing. The questions of a batch about one image (one record of the store, or
     the same pixels) share it, as in ban vqa: its boxes are projected, or its pixels encoded,
     once. Jobs with different "glimpses" are not mixed. OpenBLAS runs on the calling thread.

   REFUSALS (the server stays up): not a JSON object, a missing, unknown, repeated or mistyped
     field, invalid base64 (tsv.h's strict decoder), an image image.h refuses, an image id not
     in the store, a question with no known word: 400 naming the field. A body over
     --max-body-mb: 413 from its header, nothing of it read; a body without Content-Length: 411.
     More than Q questions waiting: 503 with Retry-After. Unknown routes 404, wrong methods 405.

   SHUTDOWN (SIGTERM or SIGINT): the listening socket stops accepting (new connections are
     refused), requests already read are answered (with Connection: close), and the server exits
     0 once every connection is done or has been idle for SERVE_GRACE_S; a second signal stops
     it at once (exit 1). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h> /* OpenBLAS's, as ban.h's: openblas_set_num_threads */
#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "cli.h"
#include "image.h"
#include "markup.h"
#include "serve_page.h"
#include "store.h"
#include "tsv.h"

enum {
    SERVE_TIMEOUT_S = 10,        /* a connection silent this long is closed */
    SERVE_CONNECTIONS = 256,     /* connections open at once */
    SERVE_TOP_K = 5,             /* answers (boxes) listed by default */
    SERVE_MAX_ENTITIES = 16,     /* entities of a sentence: the reference's limit, ban ground's default */
    SERVE_LISTED_IDS = 100,      /* image ids /v1/model lists, for the page to offer */
    SERVE_ERR = 1024             /* a message */
};
#define SERVE_GRACE_S 1.0        /* at shutdown: how long idle connections may still send a request */

/* ---- the server's state ---------------------------------------------------------------------- */

enum { R_PAGE, R_HEALTH, R_METRICS, R_MODEL, R_ANSWER, R_GROUND, R_OTHER, N_ROUTES };
static const struct {
    const char *path;
    int post;
} routes[N_ROUTES] = {{"/", 0},           {"/health", 0},    {"/metrics", 0}, {"/v1/model", 0},
                      {"/v1/answer", 1}, {"/v1/ground", 1}, {"other", 0}};

static const int statuses[] = {200, 400, 404, 405, 411, 413, 500, 503};
#define N_STATUSES ((int)(sizeof statuses / sizeof statuses[0]))
static const double latency_le[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_LATENCY ((int)(sizeof latency_le / sizeof latency_le[0]))
#define N_BATCH 13               /* questions-per-batch buckets 1, 2, 4, ..., 4096 (BAN_MAX_BATCH) */

typedef struct {
    uint64_t requests[N_ROUTES][N_STATUSES];
    uint64_t latency[N_ROUTES][N_LATENCY + 1];   /* the last: above every bound */
    double latency_sum[N_ROUTES];
    uint64_t batch[N_BATCH + 1], batches, questions, images;
} serve_metrics;

/* One request's work for a worker: its image, its questions (or sentence), and the results. */
typedef struct serve_job {
    struct serve_job *next;      /* in the queue */
    int n;                       /* questions (VQA) or sentences (grounding: 1) */
    int glimpses;                /* ban_input.glimpses (0: all) */
    int attention;               /* the maps were asked for */
    unsigned char *pixels;       /* (H, W, 3) for an encoder model */
    uint64_t pixels_hash;        /* of those pixels, to find the batch's requests about one image */
    store_record rec;            /* the image's boxes, for a model of box features */
    int boxes;                   /* K of this image: its boxes, or the encoder's grid cells */
    int32_t *tokens;             /* (n, L) padded */
    int *counts;                 /* (n) tokens each */
    int32_t entities[SERVE_MAX_ENTITIES];
    int n_entities;
    float *logits;               /* VQA (n, A); grounding (G, boxes, n_entities) */
    float *entropy;              /* (n, G) */
    float *att;                  /* (n, G, boxes, P): question q's maps (G, boxes, Pq) at q * G * boxes * P */
    double t_queued;
    int done;                    /* set by the worker */
    int failed;                  /* ban_forward refused the image: error holds why */
    char error[SERVE_ERR];
    pthread_cond_t cond;
} serve_job;

typedef struct serve serve;

/* A worker: its context and the buffers of one batch, allocated once. */
typedef struct {
    serve *s;
    pthread_t thread;
    pthread_cond_t cond;
    ban_ctx *ctx;
    serve_job **jobs;            /* the batch handed over (B at most) */
    int n_jobs;
    unsigned char *pixels;       /* (B, H, W, 3) */
    float *feats, *spats;        /* (B, K, Dv), (B, K, 6) */
    float *logits, *entropy, *att; /* VQA (B, A), (B, G), (B, G, K, P); grounding (B, G, K, E) */
    int *box_counts, *image_index, *counts;
    int *slot;                   /* (B) each job's image in the batch: jobs about one image share it */
    int32_t *tokens, *entities;  /* (B, L), (B, E) */
} serve_worker;

struct serve {
    ban_model *m;
    const ban_config *c;
    store *st;
    const char *model_path, *store_path;
    int pixels, grounding;       /* an image encoder reads pixels; a grounding model */
    int L, P, A, G, K, E;        /* tokens and positions a question, answers, glimpses, boxes, entities */
    int workers, max_batch, max_queue;
    double wait_s;
    size_t max_body;
    /* the tokenizer's context (tokenising takes microseconds: one, shared) */
    pthread_mutex_t tok_lock;
    ban_ctx *tok;
    cli_words words;
    /* cJSON's parser writes a global on failure: one parse at a time */
    pthread_mutex_t json_lock;
    /* everything below under lock */
    pthread_mutex_t lock;
    pthread_cond_t sched_cond;
    serve_job *head, *tail;
    int queued;                  /* questions waiting */
    int busy;                    /* workers with a batch */
    int stop;                    /* the scheduler and the workers end (after the last request) */
    int draining;                /* a signal came: answer what is read, accept nothing new */
    int active, connections;     /* requests being handled, connections open */
    uint64_t read;               /* requests whose header was read */
    serve_metrics met;
    serve_worker *w;
    pthread_t scheduler;
    char *model_json;            /* GET /v1/model, made once */
    size_t model_json_len;
};

/* a condition variable on the monotonic clock (util_now's) */
static int cond_init(pthread_cond_t *c)
{
    pthread_condattr_t at;
    if (pthread_condattr_init(&at)) return -1;
    int rc = pthread_condattr_setclock(&at, CLOCK_MONOTONIC) || pthread_cond_init(c, &at);
    pthread_condattr_destroy(&at);
    return rc ? -1 : 0;
}

static void cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, double t)
{
    struct timespec ts;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_cond_timedwait(c, m, &ts);
}

/* ---- metrics --------------------------------------------------------------------------------- */

/* one reply (under s->lock) */
static void metrics_reply(serve *s, int route, int status, double seconds)
{
    int k = 0;
    while (k < N_STATUSES - 1 && statuses[k] != status) k++;
    s->met.requests[route][k]++;
    int b = 0;
    while (b < N_LATENCY && seconds > latency_le[b]) b++;
    s->met.latency[route][b]++;
    s->met.latency_sum[route] += seconds;
}

/* one batch of n questions about `images` images (under s->lock) */
static void metrics_batch(serve *s, int n, int images)
{
    int b = 0;
    while (b < N_BATCH && n > (1 << b)) b++;
    s->met.batch[b]++;
    s->met.batches++;
    s->met.questions += (uint64_t)n;
    s->met.images += (uint64_t)images;
}

/* GET /metrics: the Prometheus text exposition format (version 0.0.4) */
static void metrics_write(FILE *f, serve *s)
{
    pthread_mutex_lock(&s->lock);
    const serve_metrics m = s->met;
    const int queued = s->queued, busy = s->busy, connections = s->connections;
    pthread_mutex_unlock(&s->lock);
    fputs("# HELP ban_requests_total Requests answered, by route and status.\n"
          "# TYPE ban_requests_total counter\n", f);
    for (int r = 0; r < N_ROUTES; r++)
        for (int k = 0; k < N_STATUSES; k++)
            if (m.requests[r][k] || (r == R_ANSWER && k == 0))
                fprintf(f, "ban_requests_total{route=\"%s\",status=\"%d\"} %llu\n", routes[r].path, statuses[k],
                        (unsigned long long)m.requests[r][k]);
    fputs("# HELP ban_errors_total Requests refused or failed (status 400 and above), by route and status.\n"
          "# TYPE ban_errors_total counter\n", f);
    for (int r = 0; r < N_ROUTES; r++)
        for (int k = 1; k < N_STATUSES; k++)
            if (m.requests[r][k])
                fprintf(f, "ban_errors_total{route=\"%s\",status=\"%d\"} %llu\n", routes[r].path, statuses[k],
                        (unsigned long long)m.requests[r][k]);
    fputs("# HELP ban_request_duration_seconds From the request's header to its reply being queued, by route.\n"
          "# TYPE ban_request_duration_seconds histogram\n", f);
    for (int r = 0; r < N_ROUTES; r++) {
        uint64_t total = 0;
        for (int b = 0; b <= N_LATENCY; b++) total += m.latency[r][b];
        if (!total && r != R_ANSWER) continue;
        uint64_t below = 0;
        for (int b = 0; b <= N_LATENCY; b++) {
            below += m.latency[r][b];
            if (b < N_LATENCY)
                fprintf(f, "ban_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n", routes[r].path,
                        latency_le[b], (unsigned long long)below);
            else
                fprintf(f, "ban_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", routes[r].path,
                        (unsigned long long)below);
        }
        fprintf(f, "ban_request_duration_seconds_sum{route=\"%s\"} %.6f\n", routes[r].path, m.latency_sum[r]);
        fprintf(f, "ban_request_duration_seconds_count{route=\"%s\"} %llu\n", routes[r].path,
                (unsigned long long)total);
    }
    fputs("# HELP ban_batch_questions Questions (or sentences) per forward pass.\n"
          "# TYPE ban_batch_questions histogram\n", f);
    uint64_t below = 0;
    for (int b = 0; b < N_BATCH; b++) {
        below += m.batch[b];
        fprintf(f, "ban_batch_questions_bucket{le=\"%d\"} %llu\n", 1 << b, (unsigned long long)below);
    }
    fprintf(f, "ban_batch_questions_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)(below + m.batch[N_BATCH]));
    fprintf(f, "ban_batch_questions_sum %llu\nban_batch_questions_count %llu\n", (unsigned long long)m.questions,
            (unsigned long long)m.batches);
    fprintf(f, "# HELP ban_batch_images_total Images of the forward passes (questions of a batch about one image "
               "share it).\n# TYPE ban_batch_images_total counter\nban_batch_images_total %llu\n",
            (unsigned long long)m.images);
    fprintf(f, "# HELP ban_queue_questions Questions waiting for a worker.\n# TYPE ban_queue_questions gauge\n"
               "ban_queue_questions %d\n", queued);
    fprintf(f, "# HELP ban_queue_capacity Questions that may wait (--max-queue).\n# TYPE ban_queue_capacity gauge\n"
               "ban_queue_capacity %d\n", s->max_queue);
    fprintf(f, "# HELP ban_workers_busy Workers running a batch.\n# TYPE ban_workers_busy gauge\n"
               "ban_workers_busy %d\n", busy);
    fprintf(f, "# HELP ban_workers Workers (--workers).\n# TYPE ban_workers gauge\nban_workers %d\n", s->workers);
    fprintf(f, "# HELP ban_connections Connections open.\n# TYPE ban_connections gauge\nban_connections %d\n",
            connections);
}

/* ---- JSON out ---------------------------------------------------------------------------------- */

/* a float as JSON: finite, or null */
static void json_float(FILE *f, const char *fmt, float x)
{
    if (isfinite(x)) fprintf(f, fmt, (double)x);
    else fputs("null", f);
}

/* ---- requests ---------------------------------------------------------------------------------- */

/* One HTTP request: its body as it arrives, what was parsed from it, its job. */
typedef struct {
    int route;
    double t0;                   /* when its header was read */
    char *body;
    size_t len, cap, expect;
    int counted;                 /* in s->active */
    cJSON *json;
    const char *field;           /* a refusal's field (NULL: the request as a whole) */
    char err[SERVE_ERR];
    serve_job job;
    int job_ready;               /* job.cond initialised */
    const char **questions;      /* (job.n) into json */
    ban_token_info *info;        /* (job.n, L) where each token is in its question */
    int top_k;
    char image_id[STORE_MAX_ID + 1];
    markup_line sentence;        /* grounding */
    int n_tok;
} serve_request;

static void request_free(serve_request *r)
{
    if (!r) return;
    free(r->body);
    cJSON_Delete(r->json);
    free(r->job.pixels), free(r->job.tokens), free(r->job.counts);
    free(r->job.logits), free(r->job.entropy), free(r->job.att);
    if (r->job_ready) pthread_cond_destroy(&r->job.cond);
    free(r->questions), free(r->info);
    markup_line_free(&r->sentence);
    free(r);
}

/* a refusal: "FIELD: why" (or "why") into r->err; returns -1 */
static int refuse(serve_request *r, const char *field, const char *fmt, ...) UTIL_PRINTF(3, 4);
static int refuse(serve_request *r, const char *field, const char *fmt, ...)
{
    va_list ap;
    int at = field ? snprintf(r->err, sizeof r->err, "%s: ", field) : 0;
    va_start(ap, fmt);
    vsnprintf(r->err + at, sizeof r->err - (size_t)at, fmt, ap);
    va_end(ap);
    r->field = field;
    return -1;
}

/* a name from the request (a field, a path), safe to quote: letters, digits, '_', '-', '.', '/' (others as
   '?'), 40 at most */
static void safe_name(const char *s, char *out, size_t len)
{
    size_t i = 0;
    for (; s[i] && i + 4 < len && i < 40; i++) {
        const char ch = s[i];
        out[i] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                 ch == '-' || ch == '.' || ch == '/' ? ch : '?';
    }
    strcpy(out + i, s[i] ? "..." : "");
}

/* the body as a JSON object whose every field the route knows, none twice */
static int parse_object(serve *s, serve_request *r, const char *const *known)
{
    const char *end = NULL;
    pthread_mutex_lock(&s->json_lock);
    r->json = cJSON_ParseWithLengthOpts(r->body, r->len, &end, 0);
    pthread_mutex_unlock(&s->json_lock);
    if (!r->json) {
        const size_t at = end && end >= r->body && end <= r->body + r->len ? (size_t)(end - r->body) : 0;
        return refuse(r, NULL, "the body is not JSON (byte %zu of %zu)", at, r->len);
    }
    for (const char *p = end; p < r->body + r->len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
            return refuse(r, NULL, "the body holds more than one JSON value (byte %zu)", (size_t)(p - r->body));
    free(r->body); /* cJSON holds copies of what is needed */
    r->body = NULL;
    if (!cJSON_IsObject(r->json)) return refuse(r, NULL, "the body must be a JSON object");
    for (const cJSON *it = r->json->child; it; it = it->next) {
        int k = 0;
        while (known[k] && strcmp(known[k], it->string)) k++;
        char name[64];
        safe_name(it->string, name, sizeof name);
        if (!known[k]) {
            char list[256] = "";
            for (int j = 0; known[j]; j++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s\"%s\"", j ? ", " : "", known[j]);
            return refuse(r, NULL, "\"%s\" is not a field of %s (it reads %s)", name, routes[r->route].path, list);
        }
        for (const cJSON *o = r->json->child; o != it; o = o->next) /* at most as many as known */
            if (!strcmp(o->string, it->string)) return refuse(r, known[k], "given twice");
    }
    return 0;
}

static const cJSON *field(const serve_request *r, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(r->json, name);
}

/* an optional whole number in [lo, hi] into *out (unchanged when absent) */
static int int_field(serve_request *r, const char *name, long lo, long hi, int *out)
{
    const cJSON *v = field(r, name);
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < (double)lo ||
        v->valuedouble > (double)hi)
        return refuse(r, name, "must be a whole number in %ld..%ld", lo, hi);
    *out = (int)v->valuedouble;
    return 0;
}

/* "image_id": a string (store.h's ids: GQA's "n161313", COCO's "42"), or a whole number, read as
   its decimal digits (ids are compared as strings: "042" is not "42") */
static int id_field(serve_request *r)
{
    const cJSON *v = field(r, "image_id");
    if (!v) return refuse(r, "image_id", "missing (an image of the store: GET /v1/model lists some)");
    if (cJSON_IsNumber(v)) {
        if (v->valuedouble < 0 || v->valuedouble > 9007199254740992.0 || v->valuedouble != floor(v->valuedouble))
            return refuse(r, "image_id", "a number must be a whole number in 0..2^53 (or give the id as a string)");
        snprintf(r->image_id, sizeof r->image_id, "%lld", (long long)v->valuedouble);
        return 0;
    }
    if (!cJSON_IsString(v)) return refuse(r, "image_id", "must be a string (or a whole number)");
    const size_t n = strlen(v->valuestring);
    if (!store_id_check(v->valuestring, n))
        return refuse(r, "image_id", "not an image id (1 to %d letters, digits, '_', '-' or '.')", STORE_MAX_ID);
    memcpy(r->image_id, v->valuestring, n + 1);
    return 0;
}

/* the image of an /v1/answer or /v1/ground request: its record in the store */
static int store_image(serve *s, serve_request *r)
{
    if (id_field(r)) return -1;
    if (!store_find(s->st, r->image_id, &r->job.rec))
        return refuse(r, "image_id", "'%s' is not in the store (%lld images)", r->image_id,
                      (long long)store_image_count(s->st));
    r->job.boxes = r->job.rec.n_boxes;
    return 0;
}

/* "image": base64 PNG or BMP, decoded and resized to the encoder's input */
static int pixel_image(serve *s, serve_request *r)
{
    const cJSON *v = field(r, "image");
    if (!v) return refuse(r, "image", "missing (a PNG or BMP image, base64)");
    if (!cJSON_IsString(v)) return refuse(r, "image", "must be a string (a PNG or BMP image, base64)");
    /* strict base64 (tsv.h's, the TSV import's), after a data URL's "data:<type>;base64," if any */
    const char *text = v->valuestring, *comma = strchr(text, ',');
    if (!strncmp(text, "data:", 5)) {
        if (!comma || comma - text < 12 || memcmp(comma - 7, ";base64", 7))
            return refuse(r, "image", "a data URL must read data:<type>;base64,<data>");
        text = comma + 1;
    }
    const size_t n = strlen(text);
    char why[SERVE_ERR];
    const long long len = tsv_b64_size(text, n, why, sizeof why);
    if (len <= 0) return refuse(r, "image", "not base64: %s", len == 0 ? "empty" : why);
    unsigned char *bytes = (unsigned char *)malloc((size_t)len);
    if (!bytes) return refuse(r, "image", "out of memory for %lld bytes", len);
    if (tsv_b64_decode(text, n, bytes, why, sizeof why)) {
        free(bytes);
        return refuse(r, "image", "not base64: %s", why);
    }
    r->job.pixels = load_image_memory(bytes, (size_t)len, "image", s->c->image_width, s->c->image_height, r->err,
                                      sizeof r->err);
    free(bytes);
    if (!r->job.pixels) return r->field = "image", -1; /* image.h's message names "image" */
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (size_t i = 0; i < (size_t)s->c->image_width * s->c->image_height * 3; i++)
        h = (h ^ r->job.pixels[i]) * 1099511628211ull;
    r->job.pixels_hash = h;
    r->job.boxes = s->K;
    return 0;
}

/* the questions: one ("question") or several ("questions"), tokenised by ban.h's one rule */
static int questions_field(serve *s, serve_request *r)
{
    const cJSON *one = field(r, "question"), *many = field(r, "questions");
    if (one && many) return refuse(r, "questions", "give \"question\" (one) or \"questions\" (several), not both");
    if (!one && !many) return refuse(r, "question", "missing (a string; or \"questions\", a list of strings)");
    if (one && !cJSON_IsString(one)) return refuse(r, "question", "must be a string");
    int n = 1;
    if (many) {
        if (!cJSON_IsArray(many)) return refuse(r, "questions", "must be a list of strings");
        n = 0;
        for (const cJSON *q = many->child; q; q = q->next)
            if (++n > s->max_batch)
                return refuse(r, "questions", "more than %d questions (--max-batch) about one image", s->max_batch);
        if (n == 0) return refuse(r, "questions", "an empty list");
    }
    const int L = s->L;
    r->job.n = n;
    r->questions = (const char **)calloc((size_t)n, sizeof(char *));
    r->info = (ban_token_info *)calloc((size_t)n * L, sizeof(ban_token_info));
    r->job.tokens = (int32_t *)malloc((size_t)n * L * sizeof(int32_t));
    r->job.counts = (int *)malloc((size_t)n * sizeof(int));
    if (!r->questions || !r->info || !r->job.tokens || !r->job.counts) return refuse(r, NULL, "out of memory");
    int i = 0;
    for (const cJSON *q = many ? many->child : one; q && i < n; q = q->next, i++) {
        char where[32];
        if (many) snprintf(where, sizeof where, "questions[%d]", i);
        if (!cJSON_IsString(q)) return refuse(r, "questions", "%s: must be a string", where);
        r->questions[i] = q->valuestring;
        int32_t *ids = r->job.tokens + (size_t)i * L;
        int kept, count = 0, rc;
        pthread_mutex_lock(&s->tok_lock);
        rc = cli_question(s->tok, q->valuestring, many ? where : "question", ids, L, &kept, &s->words, r->err,
                          sizeof r->err);
        if (rc == 0) ban_tokenize_info(s->tok, q->valuestring, ids, r->info + (size_t)i * L, L, &count);
        pthread_mutex_unlock(&s->tok_lock);
        if (rc) return r->field = many ? "questions" : "question", -1;
        /* a masked model reads every token; ban vqa would, and this server's contexts hold L */
        if (s->c->question_masking && !s->pixels && count > L)
            return refuse(r, many ? "questions" : "question", "%s%s%d words, more than the %d this model reads here",
                          many ? where : "", many ? ": " : "", count, L);
        cli_pad_tokens(ids, ids, kept, L, s->c->padding_id);
        r->job.counts[i] = kept;
    }
    return 0;
}

/* the buffers the worker fills, sized by what the request asks */
static int job_outputs(serve *s, serve_request *r)
{
    serve_job *j = &r->job;
    const size_t n = (size_t)j->n, G = (size_t)s->G, K = (size_t)j->boxes;
    if (s->grounding) j->logits = (float *)malloc(G * K * (size_t)j->n_entities * sizeof(float));
    else {
        j->logits = (float *)malloc(n * (size_t)s->A * sizeof(float));
        j->entropy = (float *)malloc(n * G * sizeof(float));
        if (j->attention) j->att = (float *)malloc(n * G * K * (size_t)s->P * sizeof(float));
    }
    if (!j->logits || (!s->grounding && (!j->entropy || (j->attention && !j->att))))
        return refuse(r, NULL, "out of memory");
    if (cond_init(&j->cond)) return refuse(r, NULL, "cannot create a condition variable");
    r->job_ready = 1;
    return 0;
}

/* POST /v1/answer: the cheap checks first, the image last */
static int parse_answer(serve *s, serve_request *r)
{
    static const char *const known[] = {"question", "questions", "image", "image_id", "top_k", "glimpses",
                                        "attention", NULL};
    if (s->grounding)
        return refuse(r, NULL, "this model grounds phrases (POST /v1/ground); /v1/answer needs a VQA model");
    if (parse_object(s, r, known)) return -1;
    const cJSON *att = field(r, "attention");
    r->top_k = SERVE_TOP_K < s->A ? SERVE_TOP_K : s->A;
    if (int_field(r, "top_k", 0, s->A, &r->top_k) || int_field(r, "glimpses", 1, s->G, &r->job.glimpses)) return -1;
    if (att && !cJSON_IsBool(att)) return refuse(r, "attention", "must be true or false");
    r->job.attention = cJSON_IsTrue(att);
    if (s->pixels && field(r, "image_id"))
        return refuse(r, "image_id", "this model reads pixels: send \"image\", a PNG or BMP image in base64");
    if (!s->pixels && field(r, "image"))
        return refuse(r, "image", "this model reads box features: send \"image_id\", an image of its store");
    if (questions_field(s, r)) return -1;
    if (s->pixels ? pixel_image(s, r) : store_image(s, r)) return -1;
    return job_outputs(s, r);
}

/* POST /v1/ground: the sentence's entities as ban ground finds them (without annotations,
   every chain but 0), at most SERVE_MAX_ENTITIES, each at a position the model reads */
static int parse_ground(serve *s, serve_request *r)
{
    static const char *const known[] = {"image_id", "sentence", "top_k", NULL};
    if (!s->grounding) return refuse(r, NULL, "this model answers questions (POST /v1/answer); /v1/ground needs a "
                                              "grounding model");
    if (parse_object(s, r, known)) return -1;
    r->top_k = SERVE_TOP_K;
    if (int_field(r, "top_k", 0, BAN_MAX_BOXES, &r->top_k)) return -1;
    const cJSON *v = field(r, "sentence");
    if (!v) return refuse(r, "sentence", "missing (Flickr30k Entities markup: \"[/EN#1/people A man] runs .\")");
    if (!cJSON_IsString(v)) return refuse(r, "sentence", "must be a string");
    char why[SERVE_ERR];
    markup_line *g = &r->sentence;
    const size_t len = strlen(v->valuestring);
    if (markup_check_line(v->valuestring, len, why, sizeof why) ||
        markup_parse_line(v->valuestring, len, g, why, sizeof why))
        return refuse(r, "sentence", "%s", why);
    int E = 0;
    for (int k = 0; k < g->n_ent; k++) E += g->ent[k].grounded = g->ent[k].chain != 0;
    if (E == 0)
        return refuse(r, "sentence", "no entity to ground (%d in the sentence, none of a chain but 0, which is "
                      "notvisual)", g->n_ent);
    if (E > SERVE_MAX_ENTITIES)
        return refuse(r, "sentence", "%d entities, more than %d (the reference's limit)", E, SERVE_MAX_ENTITIES);
    const int L = s->L;
    r->job.n = 1, r->job.n_entities = E;
    r->job.tokens = (int32_t *)malloc((size_t)L * sizeof(int32_t));
    r->job.counts = (int *)malloc(sizeof(int));
    if (!r->job.tokens || !r->job.counts) return refuse(r, NULL, "out of memory");
    int n = 0, rc;
    pthread_mutex_lock(&s->tok_lock);
    if ((rc = ban_tokenize(s->tok, g->sentence, r->job.tokens, L, &n))) snprintf(why, sizeof why, "%s",
                                                                                 ban_ctx_error(s->tok));
    pthread_mutex_unlock(&s->tok_lock);
    if (rc) return refuse(r, "sentence", "%s", why);
    r->n_tok = n < L ? n : L;
    for (int k = 0, j = 0; k < g->n_ent; k++) {
        if (!g->ent[k].grounded) continue;
        if (g->ent[k].position >= L)
            return refuse(r, "sentence", "entity '%.200s' (chain %s) is at position %d, past the %d positions the "
                          "model reads", g->ent[k].phrase, g->ent[k].phrase_id, g->ent[k].position, L);
        r->job.entities[j++] = g->ent[k].position;
    }
    cli_pad_tokens(r->job.tokens, r->job.tokens, r->n_tok, L, s->c->padding_id);
    r->job.counts[0] = r->n_tok;
    if (store_image(s, r)) return -1;
    return job_outputs(s, r);
}

/* ---- queue, scheduler, workers ------------------------------------------------------------------ */

static serve_worker *free_worker(serve *s)
{
    for (int i = 0; i < s->workers; i++)
        if (!s->w[i].n_jobs) return &s->w[i];
    return NULL;
}

/* the job queued, or -1 when Q questions wait already (under s->lock) */
static int enqueue(serve *s, serve_job *j)
{
    if (s->queued + j->n > s->max_queue) return -1;
    j->t_queued = util_now();
    j->next = NULL;
    if (s->tail) s->tail->next = j;
    else s->head = j;
    s->tail = j;
    s->queued += j->n;
    pthread_cond_signal(&s->sched_cond);
    return 0;
}

static void *scheduler_main(void *arg)
{
    serve *s = (serve *)arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->stop && (!s->head || !free_worker(s))) pthread_cond_wait(&s->sched_cond, &s->lock);
        if (!s->head) break; /* stopping, nothing left */
        /* more may come while another batch runs: wait for them until T after the oldest */
        const double deadline = s->head->t_queued + s->wait_s;
        while (!s->stop && s->busy > 0 && s->queued < s->max_batch && util_now() < deadline)
            cond_wait_until(&s->sched_cond, &s->lock, deadline);
        serve_worker *w = free_worker(s);
        const int glimpses = s->head->glimpses;
        int taken = 0;
        while (s->head && s->head->glimpses == glimpses && taken + s->head->n <= s->max_batch) {
            serve_job *j = s->head;
            s->head = j->next;
            if (!s->head) s->tail = NULL;
            taken += j->n;
            w->jobs[w->n_jobs++] = j;
        }
        s->queued -= taken;
        s->busy++;
        pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* two jobs about the same image: the same record of the store, or the same pixels */
static int same_image(const serve *s, const serve_job *a, const serve_job *b)
{
    if (!s->pixels) return a->rec.features == b->rec.features;
    return a->pixels_hash == b->pixels_hash &&
           !memcmp(a->pixels, b->pixels, (size_t)s->c->image_width * s->c->image_height * 3);
}

/* The batch's images (each once, as ban vqa has them: the boxes of an image are projected, or
   its pixels encoded, once for all the batch's questions about it; boxes with zero rows after
   them) and its questions. */
static void fill_batch(serve_worker *w, serve_job *const *jobs, int nj, ban_input *in, int *K_out)
{
    const serve *s = w->s;
    const ban_config *c = s->c;
    const int L = s->L, D = c->feature_dim;
    const size_t img = (size_t)c->image_width * c->image_height * 3;
    int K = 1, B = 0, E = 1, N = 0; /* the most boxes and entities of the batch; its images */
    for (int i = 0; i < nj; i++) {
        if (jobs[i]->boxes > K) K = jobs[i]->boxes;
        if (jobs[i]->n_entities > E) E = jobs[i]->n_entities;
    }
    for (int i = 0; i < nj; i++) {
        const serve_job *j = jobs[i];
        int k = 0;
        while (k < i && !same_image(s, jobs[k], j)) k++;
        if (k < i) w->slot[i] = w->slot[k];
        else if (s->pixels) memcpy(w->pixels + (size_t)(w->slot[i] = N++) * img, j->pixels, img);
        else {
            const int n = j->rec.n_boxes, at = w->slot[i] = N++;
            float *fv = w->feats + (size_t)at * K * D, *sv = w->spats + (size_t)at * K * 6;
            memcpy(fv, j->rec.features, (size_t)n * D * sizeof(float));
            memset(fv + (size_t)n * D, 0, (size_t)(K - n) * D * sizeof(float));
            memcpy(sv, j->rec.spatials, (size_t)n * 6 * sizeof(float));
            memset(sv + (size_t)n * 6, 0, (size_t)(K - n) * 6 * sizeof(float));
            w->box_counts[at] = n;
        }
        for (int q = 0; q < j->n; q++, B++) {
            w->image_index[B] = w->slot[i];
            memcpy(w->tokens + (size_t)B * L, j->tokens + (size_t)q * L, (size_t)L * sizeof(int32_t));
            w->counts[B] = j->counts[q];
            /* slots past a sentence's entities hold position 0: masked by the reference's rule */
            for (int e = 0; s->grounding && e < E; e++)
                w->entities[(size_t)B * E + e] = e < j->n_entities ? j->entities[e] : 0;
        }
    }
    memset(in, 0, sizeof *in);
    in->batch = B, in->images = N, in->image_index = w->image_index;
    if (s->pixels) in->pixels = w->pixels;
    else in->boxes = K, in->features = w->feats, in->spatials = w->spats, in->box_counts = w->box_counts;
    in->tokens_len = L, in->tokens = w->tokens, in->token_counts = w->counts;
    if (s->grounding) in->entities_len = E, in->entities = w->entities;
    in->glimpses = jobs[0]->glimpses;
    *K_out = K;
}

/* each job's share of the batch's outputs */
static void scatter_results(serve_worker *w, serve_job *const *jobs, int nj, const ban_input *in, int K)
{
    const serve *s = w->s;
    const int G = s->G, A = s->A, P = s->P, Eb = in->entities_len;
    int b = 0;
    for (int i = 0; i < nj; i++) {
        serve_job *j = jobs[i];
        const int n = j->boxes;
        for (int q = 0; q < j->n; q++, b++) {
            if (s->grounding) { /* (G, n, E_job) of the batch's (B, G, K, Eb) */
                for (int g = 0; g < G; g++)
                    for (int r = 0; r < n; r++)
                        for (int e = 0; e < j->n_entities; e++)
                            j->logits[((size_t)g * n + r) * j->n_entities + e] =
                                w->logits[(((size_t)b * G + g) * K + r) * Eb + e];
                continue;
            }
            memcpy(j->logits + (size_t)q * A, w->logits + (size_t)b * A, (size_t)A * sizeof(float));
            memcpy(j->entropy + (size_t)q * G, w->entropy + (size_t)b * G, (size_t)G * sizeof(float));
            if (!j->att) continue;
            /* (G, n, Pq): the image's boxes, the question's positions (its tokens when masked) */
            const int Pq = s->c->question_masking ? j->counts[q] : P;
            float *dst = j->att + (size_t)q * G * n * P;
            for (int g = 0; g < G; g++)
                for (int r = 0; r < n; r++)
                    memcpy(dst + ((size_t)g * n + r) * Pq, w->att + (((size_t)b * G + g) * K + r) * P,
                           (size_t)Pq * sizeof(float));
        }
    }
}

/* one forward pass over nj jobs (*images: of how many images); 0, or -1 with ban.h's message in err */
static int run_batch(serve_worker *w, serve_job *const *jobs, int nj, int *images, char *err, size_t errlen)
{
    ban_input in;
    int K, attention = 0;
    fill_batch(w, jobs, nj, &in, &K);
    *images = in.images;
    for (int i = 0; i < nj; i++) attention |= jobs[i]->att != NULL;
    ban_output out = {w->logits, attention ? w->att : NULL, w->s->grounding ? NULL : w->entropy};
    if (ban_forward(w->ctx, &in, &out) != BAN_OK)
        return util_fail(err, errlen, "%s", ban_ctx_error(w->ctx));
    scatter_results(w, jobs, nj, &in, K);
    return 0;
}

static void *worker_main(void *arg)
{
    serve_worker *w = (serve_worker *)arg;
    serve *s = w->s;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!w->n_jobs && !s->stop) pthread_cond_wait(&w->cond, &s->lock);
        if (!w->n_jobs) break;
        const int nj = w->n_jobs;
        pthread_mutex_unlock(&s->lock);
        char err[SERVE_ERR];
        int questions = 0, images = 0, one;
        for (int i = 0; i < nj; i++) questions += w->jobs[i]->n;
        if (run_batch(w, w->jobs, nj, &images, err, sizeof err)) {
            /* a record of the store the library refuses (a value not finite): find whose, alone */
            for (int i = 0; i < nj; i++)
                if (nj == 1 || run_batch(w, w->jobs + i, 1, &one, err, sizeof err)) {
                    w->jobs[i]->failed = 1;
                    snprintf(w->jobs[i]->error, sizeof w->jobs[i]->error, "%s", err);
                }
        }
        pthread_mutex_lock(&s->lock);
        for (int i = 0; i < nj; i++) {
            w->jobs[i]->done = 1;
            pthread_cond_signal(&w->jobs[i]->cond);
        }
        metrics_batch(s, questions, images);
        w->n_jobs = 0;
        s->busy--;
        pthread_cond_signal(&s->sched_cond);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- responses ---------------------------------------------------------------------------------- */

/* The answer to question q: fields of a JSON object, without its braces. */
static void write_answer(FILE *f, const serve *s, const serve_request *r, int q, int *order)
{
    const serve_job *j = &r->job;
    const int A = s->A, G = j->glimpses ? j->glimpses : s->G, L = s->L, n = j->boxes, P = s->P;
    const float *lg = j->logits + (size_t)q * A;
    const int best = ban_argmax(lg, A);
    fputs("\"question\": ", f);
    cli_json_cstr(f, r->questions[q]);
    fputs(", \"answer\": ", f);
    cli_json_cstr(f, ban_model_answer(s->m, best));
    /* as ban ask (a softmax, computed as it computes it) and ban vqa --top-k (sigmoid) */
    float sum = 0.0f;
    for (int i = 0; s->pixels && i < A; i++) sum += expf(lg[i] - lg[best]);
    util_top_k(lg, A, r->top_k, order);
    fputs(", \"top_k\": [", f);
    for (int k = 0; k < r->top_k; k++) {
        const float p = s->pixels ? expf(lg[order[k]] - lg[best]) / sum : 1.0f / (1.0f + expf(-lg[order[k]]));
        fputs(k ? ", {\"answer\": " : "{\"answer\": ", f);
        cli_json_cstr(f, ban_model_answer(s->m, order[k]));
        fputs(", \"probability\": ", f);
        json_float(f, "%.6g", p);
        fputc('}', f);
    }
    fputs("], \"entropy\": [", f);
    for (int g = 0; g < G; g++) fputs(g ? ", " : "", f), json_float(f, "%.9g", j->entropy[(size_t)q * s->G + g]);
    fputs("], \"words\": [", f);
    const ban_token_info *info = r->info + (size_t)q * L;
    for (int t = 0; t < j->counts[q]; t++) {
        fputs(t ? ", {\"word\": " : "{\"word\": ", f);
        cli_json_string(f, r->questions[q] + info[t].start, (size_t)(info[t].end - info[t].start));
        fprintf(f, ", \"known\": %s}", info[t].known ? "true" : "false");
    }
    fputc(']', f);
    if (!j->att) return;
    const int Pq = s->c->question_masking ? j->counts[q] : P;
    const float *a = j->att + (size_t)q * s->G * n * P;
    fprintf(f, ", \"positions\": %d, \"attention\": [", Pq);
    for (int g = 0; g < G; g++) {
        fputs(g ? ", [" : "[", f);
        for (int k = 0; k < n; k++) {
            fputs(k ? ", [" : "[", f);
            for (int p = 0; p < Pq; p++)
                fputs(p ? ", " : "", f), json_float(f, "%.9g", a[((size_t)g * n + k) * Pq + p]);
            fputc(']', f);
        }
        fputc(']', f);
    }
    fputc(']', f);
}

/* "image": what the attention maps lie over (the grid of the encoder's input, or the boxes) */
static void write_image(FILE *f, const serve *s, const serve_request *r)
{
    const ban_config *c = s->c;
    if (s->pixels) {
        fprintf(f, "\"image\": {\"width\": %d, \"height\": %d, \"grid\": [%d, %d]}", c->image_width, c->image_height,
                c->grid_height, c->grid_width);
        return;
    }
    const store_record *rec = &r->job.rec;
    fputs("\"image\": {\"id\": ", f);
    cli_json_cstr(f, r->image_id);
    fprintf(f, ", \"width\": %d, \"height\": %d, \"boxes\": [", rec->width, rec->height);
    for (int k = 0; k < rec->n_boxes; k++) {
        const float *b = rec->boxes + (size_t)k * 4;
        fprintf(f, "%s[%.9g, %.9g, %.9g, %.9g]", k ? ", " : "", (double)b[0], (double)b[1], (double)b[2],
                (double)b[3]);
    }
    fputs("]}", f);
}

/* info.split('/')[2:] as a JSON list, as ban ground --json writes an entity's types */
static void write_types(FILE *f, const char *info)
{
    const char *p = strchr(info, '/');
    p = p ? strchr(p + 1, '/') : NULL;
    fputc('[', f);
    for (int first = 1; p; first = 0) {
        const char *start = p + 1, *end = strchr(start, '/');
        fputs(first ? "" : ", ", f);
        cli_json_string(f, start, end ? (size_t)(end - start) : strlen(start));
        p = end;
    }
    fputc(']', f);
}

/* what ban ground --json --sentence prints for the request's sentence, with the same keys */
static void write_ground(FILE *f, const serve *s, const serve_request *r, float *score, int *rank)
{
    const serve_job *j = &r->job;
    const markup_line *g = &r->sentence;
    const int n = j->boxes, G = s->G, E = j->n_entities, shown = r->top_k > 0 && r->top_k < n ? r->top_k : n;
    fputs("{\"image_id\": ", f);
    cli_json_cstr(f, r->image_id);
    fprintf(f, ", \"width\": %d, \"height\": %d, \"boxes\": %d, \"sentence\": ", j->rec.width, j->rec.height, n);
    cli_json_cstr(f, g->sentence);
    fprintf(f, ", \"tokens\": %d, \"positions\": %d, \"glimpses\": %d,\n \"phrases\": [", r->n_tok, s->L, G);
    for (int k = 0, e = 0; k < g->n_ent; k++) {
        const markup_entity *ent = &g->ent[k];
        if (!ent->grounded) continue;
        const int pos = ent->position;
        const char *word = pos < r->n_tok ? ban_model_word(s->m, j->tokens[pos]) : NULL;
        fputs(e ? ",\n  {\"phrase\": " : "\n  {\"phrase\": ", f);
        cli_json_cstr(f, ent->phrase);
        fputs(", \"phrase_id\": ", f);
        cli_json_cstr(f, ent->phrase_id);
        fputs(", \"types\": ", f);
        write_types(f, ent->info);
        fprintf(f, ", \"position\": %d, \"token\": ", pos);
        if (word) cli_json_cstr(f, word);
        else fputs("null", f);
        fprintf(f, ", \"first_word_index\": %d, \"masked\": %s,\n   \"boxes\": [", ent->first_word_index,
                e > 0 && pos == 0 ? "true" : "false");
        for (int b = 0; b < n; b++) { /* a box's score: its logits summed over the glimpses */
            float sc = 0.0f;
            for (int gl = 0; gl < G; gl++) sc += j->logits[((size_t)gl * n + b) * E + e];
            score[b] = sc;
        }
        util_top_k(score, n, shown, rank);
        for (int k2 = 0; k2 < shown; k2++) {
            const float *bx = j->rec.boxes + (size_t)rank[k2] * 4;
            fprintf(f, "%s{\"rank\": %d, \"index\": %d, \"score\": %.9g, \"box\": [%.9g, %.9g, %.9g, %.9g]}",
                    k2 ? ", " : "", k2 + 1, rank[k2], (double)score[rank[k2]], (double)bx[0], (double)bx[1],
                    (double)bx[2], (double)bx[3]);
        }
        fputs("]}", f);
        e++;
    }
    fputs("],\n \"skipped\": [", f);
    for (int k = 0, first = 1; k < g->n_ent; k++) {
        if (g->ent[k].grounded) continue;
        fputs(first ? "{\"phrase\": " : ", {\"phrase\": ", f);
        cli_json_cstr(f, g->ent[k].phrase);
        fputs(", \"phrase_id\": ", f);
        cli_json_cstr(f, g->ent[k].phrase_id);
        fputs(", \"reason\": \"chain 0 (notvisual)\"}", f);
        first = 0;
    }
    fputs("]", f);
}

/* ---- HTTP ------------------------------------------------------------------------------------- */

/* A reply with body[0..n) (freed by libmicrohttpd when must_free), counted in the metrics. */
static enum MHD_Result reply(serve *s, serve_request *r, struct MHD_Connection *conn, int status, const char *type,
                             char *body, size_t n, int must_free)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(n, body, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        if (must_free) free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (r->route == R_PAGE && status == 200) /* the page may talk to this server only, and load nothing */
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                "img-src data: blob:; connect-src 'self'; form-action 'none'; base-uri 'none'");
    if (status == 503) MHD_add_response_header(resp, "Retry-After", "1");
    if (status == 405) MHD_add_response_header(resp, "Allow", routes[r->route].post ? "POST" : "GET, HEAD");
    pthread_mutex_lock(&s->lock);
    if (s->draining) MHD_add_response_header(resp, "Connection", "close");
    metrics_reply(s, r->route, status, util_now() - r->t0);
    pthread_mutex_unlock(&s->lock);
    const enum MHD_Result rc = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* text built with stdio into memory */
typedef struct {
    FILE *f;
    char *buf;
    size_t n;
} membuf;

static FILE *membuf_open(membuf *m)
{
    m->buf = NULL, m->n = 0;
    return m->f = open_memstream(&m->buf, &m->n);
}

/* the text, as a reply (an error if it could not be built) */
static enum MHD_Result reply_text(serve *s, serve_request *r, struct MHD_Connection *conn, int status,
                                  const char *type, membuf *m)
{
    if (fclose(m->f) != 0 || !m->buf) {
        free(m->buf);
        return MHD_NO;
    }
    return reply(s, r, conn, status, type, m->buf, m->n, 1);
}

/* {"error": message, "field": field} */
static enum MHD_Result reply_error(serve *s, serve_request *r, struct MHD_Connection *conn, int status,
                                   const char *field_name, const char *msg)
{
    membuf m;
    if (!membuf_open(&m)) return MHD_NO;
    fputs("{\"error\": ", m.f);
    cli_json_cstr(m.f, msg);
    fputs(", \"field\": ", m.f);
    if (field_name) cli_json_cstr(m.f, field_name);
    else fputs("null", m.f);
    fputs("}\n", m.f);
    return reply_text(s, r, conn, status, "application/json", &m);
}

/* a request parsed: queue its job and wait for a worker's results, then the reply */
static enum MHD_Result answer_job(serve *s, serve_request *r, struct MHD_Connection *conn)
{
    serve_job *j = &r->job;
    pthread_mutex_lock(&s->lock);
    const int queued = enqueue(s, j);
    const int waiting = s->queued;
    if (queued == 0)
        while (!j->done) pthread_cond_wait(&j->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
    if (queued) {
        char msg[160];
        snprintf(msg, sizeof msg, "busy: %d questions wait already (--max-queue %d); retry later", waiting,
                 s->max_queue);
        return reply_error(s, r, conn, 503, NULL, msg);
    }
    if (j->failed) return reply_error(s, r, conn, 500, NULL, j->error);
    membuf m;
    const int n_work = s->grounding ? j->boxes : s->A;
    int *order = (int *)malloc((size_t)n_work * sizeof(int));
    float *score = (float *)malloc((size_t)n_work * sizeof(float));
    if (!order || !score || !membuf_open(&m)) {
        free(order), free(score);
        return reply_error(s, r, conn, 500, NULL, "out of memory");
    }
    if (s->grounding) write_ground(m.f, s, r, score, order);
    else if (j->n == 1 && field(r, "question")) {
        fputc('{', m.f);
        write_answer(m.f, s, r, 0, order);
        if (j->att) fputs(", ", m.f), write_image(m.f, s, r);
    } else {
        fputs("{\"answers\": [", m.f);
        for (int q = 0; q < j->n; q++) {
            fputs(q ? ",\n  {" : "\n  {", m.f);
            write_answer(m.f, s, r, q, order);
            fputc('}', m.f);
        }
        fputs("]", m.f);
        if (j->att) fputs(", ", m.f), write_image(m.f, s, r);
    }
    fprintf(m.f, ", \"ms\": %.3f}\n", 1e3 * (util_now() - r->t0));
    free(order), free(score);
    return reply_text(s, r, conn, 200, "application/json", &m);
}

static enum MHD_Result get_route(serve *s, serve_request *r, struct MHD_Connection *conn)
{
    membuf m;
    switch (r->route) {
    case R_PAGE:
        return reply(s, r, conn, 200, "text/html; charset=utf-8", (char *)serve_page_html, sizeof serve_page_html - 1,
                     0);
    case R_MODEL:
        return reply(s, r, conn, 200, "application/json", s->model_json, s->model_json_len, 0);
    case R_METRICS:
        if (!membuf_open(&m)) return MHD_NO;
        metrics_write(m.f, s);
        return reply_text(s, r, conn, 200, "text/plain; version=0.0.4; charset=utf-8", &m);
    default: { /* R_HEALTH */
        if (!membuf_open(&m)) return MHD_NO;
        pthread_mutex_lock(&s->lock);
        const int draining = s->draining, queued = s->queued, busy = s->busy;
        pthread_mutex_unlock(&s->lock);
        fprintf(m.f, "{\"status\": \"%s\", \"queued\": %d, \"workers_busy\": %d, \"workers\": %d}\n",
                draining ? "draining" : "ok", queued, busy, s->workers);
        return reply_text(s, r, conn, draining ? 503 : 200, "application/json", &m);
    }
    }
}

/* The request's first call (its header read): the route, the method, the body's size. A refusal
   made here is sent before any of the body is read, and libmicrohttpd reads none of it. */
static enum MHD_Result on_header(serve *s, serve_request *r, struct MHD_Connection *conn, const char *url,
                                 const char *method)
{
    char msg[256];
    r->route = R_OTHER;
    for (int i = 0; i < R_OTHER; i++)
        if (!strcmp(url, routes[i].path)) r->route = i;
    if (r->route == R_OTHER) {
        char name[64];
        safe_name(url, name, sizeof name);
        snprintf(msg, sizeof msg, "no route %s (POST /v1/answer, POST /v1/ground, GET /v1/model, /health, /metrics, /)",
                 name);
        return reply_error(s, r, conn, 404, NULL, msg);
    }
    const int post = !strcmp(method, "POST"), get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (routes[r->route].post ? !post : !get) {
        snprintf(msg, sizeof msg, "%s takes %s", routes[r->route].path, routes[r->route].post ? "POST" : "GET");
        return reply_error(s, r, conn, 405, NULL, msg);
    }
    const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *chunked = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (!post) return MHD_YES; /* a body of a GET is read and dropped (libmicrohttpd bounds what it reads) */
    if (!length || chunked) {
        snprintf(msg, sizeof msg, "a body needs a Content-Length header (at most %zu bytes)", s->max_body);
        return reply_error(s, r, conn, 411, NULL, msg);
    }
    char *end;
    errno = 0;
    const unsigned long long n = strtoull(length, &end, 10);
    if (errno || end == length || *end || length[0] == '-' || n > s->max_body) {
        snprintf(msg, sizeof msg, "a body of %.24s bytes: more than the %zu this server reads (--max-body-mb %zu)",
                 length, s->max_body, s->max_body >> 20);
        return reply_error(s, r, conn, 413, NULL, msg);
    }
    r->expect = (size_t)n;
    return MHD_YES;
}

/* body bytes as they come; the buffer grows with what arrives, never past Content-Length */
static int append_body(serve_request *r, const char *data, size_t n)
{
    if (r->len + n > r->expect) return -1; /* libmicrohttpd holds the body to Content-Length */
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 65536;
        if (cap < r->len + n + 1) cap = r->len + n + 1;
        if (cap > r->expect + 1) cap = r->expect + 1;
        char *b = (char *)realloc(r->body, cap);
        if (!b) return -1;
        r->body = b, r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = 0;
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    serve *s = (serve *)cls;
    serve_request *r = (serve_request *)*con_cls;
    if (!r) {
        if (!(r = (serve_request *)calloc(1, sizeof *r))) return MHD_NO;
        *con_cls = r;
        r->t0 = util_now();
        pthread_mutex_lock(&s->lock);
        s->active++;
        s->read++;
        r->counted = 1;
        pthread_mutex_unlock(&s->lock);
        return on_header(s, r, conn, url, method);
    }
    if (*upload_size) {
        if (routes[r->route].post && append_body(r, upload, *upload_size)) return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (!routes[r->route].post) return get_route(s, r, conn);
    if (!r->body && append_body(r, "", 0)) return MHD_NO; /* an empty body: "" */
    if (r->route == R_ANSWER ? parse_answer(s, r) : parse_ground(s, r))
        return reply_error(s, r, conn, 400, r->field, r->err);
    return answer_job(s, r, conn);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)conn, (void)toe;
    serve *s = (serve *)cls;
    serve_request *r = (serve_request *)*con_cls;
    if (!r) return;
    if (r->counted) {
        pthread_mutex_lock(&s->lock);
        s->active--;
        pthread_mutex_unlock(&s->lock);
    }
    request_free(r);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)conn, (void)socket_context;
    serve *s = (serve *)cls;
    pthread_mutex_lock(&s->lock);
    s->connections += code == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1;
    pthread_mutex_unlock(&s->lock);
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    const size_t n = strlen(msg);
    fprintf(stderr, "ban: serve: libmicrohttpd: %.*s\n", (int)(n && msg[n - 1] == '\n' ? n - 1 : n), msg);
}

/* ---- set-up ------------------------------------------------------------------------------------ */

/* GET /v1/model, made once */
static int model_json(serve *s)
{
    const ban_config *c = s->c;
    membuf m;
    if (!membuf_open(&m)) return -1;
    FILE *f = m.f;
    const char *name = strrchr(s->model_path, '/');
    fputs("{\"model\": ", f);
    cli_json_cstr(f, name ? name + 1 : s->model_path);
    fprintf(f, ", \"ban_version\": \"%s\", \"task\": \"%s\", \"input\": \"%s\",\n", BAN_VERSION,
            s->grounding ? "grounding" : "vqa", s->pixels ? "pixels" : "features");
    fprintf(f, " \"config\": {\"vocab_size\": %d, \"embedding_dim\": %d, \"embedding_tables\": %d, \"feature_dim\": %d, "
               "\"hidden_dim\": %d, \"glimpses\": %d, \"answers\": %d, \"counter_objects\": %d, "
               "\"question_length\": %d, \"positions\": %d},\n",
            c->vocab_size, c->embedding_dim, c->embedding_tables, c->feature_dim, c->hidden_dim, c->num_glimpses,
            s->grounding ? 0 : c->num_answers, c->counter_objects, c->question_length, s->P);
    fprintf(f, " \"conventions\": {\"question_padding\": \"%s\", \"box_padding\": \"%s\", \"probability\": \"%s\"},\n",
            c->question_masking ? "masked" : "not masked (the reference)",
            c->zero_row_padding ? "all-zero rows (the reference)" : "by count only",
            s->grounding ? "none (box scores are logits)" : s->pixels ? "softmax" : "sigmoid");
    if (s->pixels)
        fprintf(f, " \"image\": {\"width\": %d, \"height\": %d, \"grid\": [%d, %d], \"formats\": [\"PNG\", \"BMP\"]},\n",
                c->image_width, c->image_height, c->grid_height, c->grid_width);
    else {
        const char *sname = strrchr(s->store_path, '/');
        fputs(" \"store\": {\"file\": ", f);
        cli_json_cstr(f, sname ? sname + 1 : s->store_path);
        fprintf(f, ", \"images\": %lld, \"feature_dim\": %d, \"max_boxes\": %d, \"ids\": [",
                (long long)store_image_count(s->st), store_feature_dim(s->st), store_max_boxes(s->st));
        const int64_t n = store_image_count(s->st) < SERVE_LISTED_IDS ? store_image_count(s->st) : SERVE_LISTED_IDS;
        for (int64_t i = 0; i < n; i++) {
            store_record rec;
            if (!store_get(s->st, i, &rec)) break;
            fputs(i ? ", " : "", f);
            cli_json_cstr(f, rec.id);
        }
        fputs("]},\n", f);
    }
    if (!s->grounding) {
        fputs(" \"answers\": [", f);
        for (int i = 0; i < c->num_answers; i++) fputs(i ? ", " : "", f), cli_json_cstr(f, ban_model_answer(s->m, i));
        fputs("],\n", f);
    }
    fprintf(f, " \"server\": {\"workers\": %d, \"max_batch\": %d, \"batch_wait_ms\": %g, \"max_body_mb\": %zu, "
               "\"max_queue\": %d, \"connections\": %d, \"timeout_s\": %d, \"top_k\": %d}}\n",
            s->workers, s->max_batch, s->wait_s * 1e3, s->max_body >> 20, s->max_queue, SERVE_CONNECTIONS,
            SERVE_TIMEOUT_S, SERVE_TOP_K);
    if (fclose(f) != 0) return free(m.buf), -1;
    s->model_json = m.buf, s->model_json_len = m.n;
    return 0;
}

static int worker_init(serve *s, serve_worker *w)
{
    const ban_config *c = s->c;
    const size_t B = (size_t)s->max_batch, K = (size_t)s->K, G = (size_t)s->G, E = (size_t)s->E;
    ban_limits lim = {s->max_batch, s->pixels ? 0 : s->K, s->L, s->grounding ? s->E : 0, s->workers > 1 ? 1 : 0};
    w->s = s;
    if (cond_init(&w->cond)) return cli_error("cannot create a condition variable");
    if (ban_ctx_create(s->m, &lim, &w->ctx) != BAN_OK) return cli_error("%s", ban_ctx_error(w->ctx));
    w->jobs = (serve_job **)malloc(B * sizeof(serve_job *));
    w->image_index = (int *)malloc(B * sizeof(int));
    w->counts = (int *)malloc(B * sizeof(int));
    w->slot = (int *)malloc(B * sizeof(int));
    w->box_counts = (int *)malloc(B * sizeof(int));
    w->tokens = (int32_t *)malloc(B * (size_t)s->L * sizeof(int32_t));
    if (s->pixels) w->pixels = (unsigned char *)malloc(B * (size_t)c->image_width * c->image_height * 3);
    else {
        w->feats = (float *)malloc(B * K * (size_t)c->feature_dim * sizeof(float));
        w->spats = (float *)malloc(B * K * 6 * sizeof(float));
    }
    if (s->grounding) {
        w->logits = (float *)malloc(B * G * K * E * sizeof(float));
        w->entities = (int32_t *)malloc(B * E * sizeof(int32_t));
    } else {
        w->logits = (float *)malloc(B * (size_t)s->A * sizeof(float));
        w->entropy = (float *)malloc(B * G * sizeof(float));
        w->att = (float *)malloc(B * G * K * (size_t)s->P * sizeof(float));
    }
    if (!w->jobs || !w->image_index || !w->counts || !w->slot || !w->box_counts || !w->tokens || !w->logits ||
        (s->pixels ? !w->pixels : !w->feats || !w->spats) ||
        (s->grounding ? !w->entities : !w->entropy || !w->att))
        return cli_error("out of memory for batches of %d questions", s->max_batch);
    return CLI_OK;
}

static void worker_free(serve_worker *w)
{
    ban_ctx_free(w->ctx);
    free(w->jobs), free(w->image_index), free(w->counts), free(w->slot), free(w->box_counts), free(w->tokens);
    free(w->pixels), free(w->feats), free(w->spats), free(w->logits), free(w->entropy), free(w->att);
    free(w->entities);
}

/* the model (and store) checked against each other and the routes */
static int serve_load(serve *s)
{
    char err[SERVE_ERR];
    if (!(s->m = cli_load_model(s->model_path))) return CLI_FAIL;
    const ban_config *c = s->c = ban_model_config(s->m);
    s->pixels = c->encoder_layers > 0;
    s->grounding = c->task == BAN_TASK_GROUNDING;
    if (!c->has_vocabulary) return cli_error("%s carries no vocabulary (export it with --dictionary)", s->model_path);
    if (!s->grounding && !c->has_answers)
        return cli_error("%s carries no answer strings (export it with --answers)", s->model_path);
    if (s->pixels && s->store_path)
        return cli_error("%s reads pixels (its image encoder): --features is for models of box features",
                         s->model_path);
    if (!s->pixels && !s->store_path)
        return cli_error("%s reads box features: --features STORE is required (ban features import makes one)",
                         s->model_path);
    s->L = c->question_length;
    s->P = ban_question_positions(s->m, s->L);
    s->A = s->grounding ? 0 : c->num_answers;
    s->G = c->num_glimpses;
    s->E = SERVE_MAX_ENTITIES;
    s->K = c->grid_height * c->grid_width;
    if (s->store_path) {
        if (store_open(s->store_path, &s->st, err, sizeof err)) return cli_error("%s", err);
        if (store_feature_dim(s->st) != c->feature_dim)
            return cli_error("%s holds %d-d box features, but %s expects %d-d features", s->store_path,
                             store_feature_dim(s->st), s->model_path, c->feature_dim);
        s->K = store_max_boxes(s->st);
    }
    ban_limits tl = {1, 0, s->L, 0, 1};
    if (ban_ctx_create(s->m, &tl, &s->tok) != BAN_OK) return cli_error("%s", ban_ctx_error(s->tok));
    return CLI_OK;
}

/* A listening socket for host:port (port 0: one the system picks); *port_out: the port. */
static int listen_on(const char *host, int port, int *port_out, int *fd_out)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    const int g = getaddrinfo(host, ps, &hints, &res);
    if (g) return cli_error("--host %s: %s", host, gai_strerror(g));
    int fd = -1, e = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol)) < 0) {
            e = errno;
            continue;
        }
        const int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
            e = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) return cli_error("cannot listen on %s:%d: %s", host, port, strerror(e));
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                              : ((struct sockaddr_in *)&sa)->sin_port);
    *port_out = port, *fd_out = fd;
    return CLI_OK;
}

/* After the first signal: nothing new is accepted; what is read is answered. Returns the
   second signal, or 0 once every connection is done (or idle for SERVE_GRACE_S). */
static int drain(serve *s, struct MHD_Daemon *d, const sigset_t *signals)
{
    const MHD_socket fd = MHD_quiesce_daemon(d);
    /* the socket stays open (libmicrohttpd's threads may still hold it) but listens no more:
       new connections are refused, not left waiting in the backlog */
    if (fd != MHD_INVALID_SOCKET) shutdown(fd, SHUT_RDWR);
    const double t0 = util_now();
    for (;;) {
        pthread_mutex_lock(&s->lock);
        const int active = s->active, connections = s->connections;
        pthread_mutex_unlock(&s->lock);
        const double t = util_now() - t0;
        if (connections == 0 || (active == 0 && t >= SERVE_GRACE_S) || t > SERVE_TIMEOUT_S + 2.0) return 0;
        const struct timespec tick = {0, 10 * 1000 * 1000};
        const int sig = sigtimedwait(signals, NULL, &tick);
        if (sig > 0) return sig;
    }
}

static int serve_main(const cli_args *a)
{
    static serve srv;
    serve *s = &srv;
    memset(s, 0, sizeof *s);
    s->model_path = a->model, s->store_path = cli_get(a, "--features");
    const char *host = cli_get(a, "--host") ? cli_get(a, "--host") : "127.0.0.1";
    long port = 8080, workers = 0, max_batch = 32, wait_ms = 2, body_mb = 16, max_queue = 256;
    if (cli_long(a, "--port", 0, 65535, &port) || cli_long(a, "--workers", 1, 64, &workers) ||
        cli_long(a, "--max-batch", 1, 1024, &max_batch) || cli_long(a, "--batch-wait-ms", 0, 10000, &wait_ms) ||
        cli_long(a, "--max-body-mb", 1, 1024, &body_mb) || cli_long(a, "--max-queue", 1, 1000000, &max_queue))
        return CLI_USAGE;
    s->max_batch = (int)max_batch, s->wait_s = (double)wait_ms / 1e3;
    s->max_body = (size_t)body_mb << 20, s->max_queue = (int)max_queue;
    if (s->max_queue < s->max_batch)
        return cli_usage(a, "--max-queue %d is less than --max-batch %d: a full batch could never wait", s->max_queue,
                         s->max_batch);

    /* every thread, ban.h's and libmicrohttpd's, is created with SIGINT and SIGTERM blocked:
       they reach this thread's sigwait only; a client gone mid-reply is an error, not SIGPIPE */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* CBLAS (weights in rows, an image encoder's convolutions) on the worker's own thread: the
       workers (and ban.h's own threads, for weights in panels) are the parallelism, and
       OpenBLAS's idle threads would spin on the cores the connections and the workers need
       (the easy-VQA model under 64 clients: 224 answers/s with its two threads, 352 with one) */
    openblas_set_num_threads(1);

    int rc = serve_load(s), fd = -1, bound_port = 0, started = 0;
    struct MHD_Daemon *d = NULL;
    if (rc == CLI_OK && !workers) { /* the default: see --workers */
        const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        workers = s->c->panel_weights > 0 && !s->pixels ? 1 : cpus < 1 ? 1 : cpus > 64 ? 64 : cpus;
    }
    s->workers = (int)workers;
    if (rc == CLI_OK && model_json(s)) rc = cli_error("out of memory");
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->tok_lock, NULL);
    pthread_mutex_init(&s->json_lock, NULL);
    if (rc == CLI_OK && (cond_init(&s->sched_cond) || !(s->w = (serve_worker *)calloc(workers, sizeof *s->w))))
        rc = cli_error("out of memory");
    for (int i = 0; rc == CLI_OK && i < s->workers; i++) rc = worker_init(s, &s->w[i]);
    if (rc == CLI_OK) {
        for (int i = 0; i < s->workers; i++) pthread_create(&s->w[i].thread, NULL, worker_main, &s->w[i]);
        pthread_create(&s->scheduler, NULL, scheduler_main, s);
        started = 1;
        rc = listen_on(host, (int)port, &bound_port, &fd);
    }
    if (rc == CLI_OK) {
        d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                                 MHD_USE_ITC | MHD_USE_ERROR_LOG,
                             0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_log, s,
                             MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)SERVE_CONNECTIONS,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SERVE_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED,
                             on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_END);
        if (!d) rc = cli_error("libmicrohttpd could not start on %s:%d", host, bound_port);
    }
    int second = 0;
    if (rc == CLI_OK) {
        printf("listening on http://%s%s%s:%d\n", strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
               bound_port);
        fflush(stdout);
        int sig = 0;
        sigwait(&signals, &sig);
        pthread_mutex_lock(&s->lock);
        s->draining = 1;
        const int active = s->active;
        pthread_mutex_unlock(&s->lock);
        fprintf(stderr, "ban: serve: %s: accepting no more connections; answering the %d request%s read\n",
                sig == SIGINT ? "SIGINT" : "SIGTERM", active, active == 1 ? "" : "s");
        if ((second = drain(s, d, &signals)))
            fprintf(stderr, "ban: serve: %s again: stopping now\n", second == SIGINT ? "SIGINT" : "SIGTERM");
    }
    if (d) MHD_stop_daemon(d);
    if (fd >= 0) close(fd);
    if (started) {
        pthread_mutex_lock(&s->lock);
        s->stop = 1;
        pthread_cond_broadcast(&s->sched_cond);
        for (int i = 0; i < s->workers; i++) pthread_cond_broadcast(&s->w[i].cond);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->scheduler, NULL);
        for (int i = 0; i < s->workers; i++) pthread_join(s->w[i].thread, NULL);
    }
    if (d) { /* what was answered, for the logs (and the tests, which count their own) */
        uint64_t total[N_STATUSES] = {0}, all = 0;
        for (int r = 0; r < N_ROUTES; r++)
            for (int k = 0; k < N_STATUSES; k++) total[k] += s->met.requests[r][k], all += s->met.requests[r][k];
        fprintf(stderr, "ban: serve: stopped: %llu requests read, %llu answered (", (unsigned long long)s->read,
                (unsigned long long)all);
        for (int k = 0, first = 1; k < N_STATUSES; k++)
            if (total[k]) fprintf(stderr, "%s%d: %llu", first ? "" : ", ", statuses[k], (unsigned long long)total[k]),
                              first = 0;
        fprintf(stderr, "); %llu questions in %llu batches\n", (unsigned long long)s->met.questions,
                (unsigned long long)s->met.batches);
    }
    if (rc == CLI_OK && !second) cli_words_report(&s->words);
    for (int i = 0; s->w && i < s->workers; i++) worker_free(&s->w[i]);
    free(s->w);
    free(s->model_json);
    ban_ctx_free(s->tok);
    store_close(s->st);
    ban_model_free(s->m);
    return rc != CLI_OK ? rc : second ? CLI_FAIL : CLI_OK;
}

static const cli_option serve_options[] = {
    {"--features", "STORE", 0, "the images' box features (a store of ban features import), for a model that reads\n"
                               "them; a model with an image encoder reads uploaded PNG or BMP images instead"},
    {"--host", "HOST", 0, "the address to listen on (default 127.0.0.1; 0.0.0.0 or :: for every interface)"},
    {"--port", "PORT", 0, "the port (default 8080; 0: one the system picks, printed)"},
    {"--workers", "N", 0, "workers, each with a context of its own, on one thread each when there are several;\n"
                          "default: one whose context uses every processor for a model in panels without an image\n"
                          "encoder, else one a processor (products through CBLAS, and the encoder, run on the\n"
                          "worker's thread)"},
    {"--max-batch", "B", 0, "questions a forward pass at most (default 32; a request may ask up to B)"},
    {"--batch-wait-ms", "T", 0, "while another batch runs, how long a batch waits to fill (default 2 ms after its\n"
                                "oldest question came)"},
    {"--max-body-mb", "S", 0, "the largest request body, in MB (default 16; larger: 413 before reading it)"},
    {"--max-queue", "Q", 0, "questions that may wait for a worker (default 256; more: 503 with Retry-After)"},
    {NULL, NULL, 0, NULL}};

const cli_command cli_serve = {
    "serve", serve_main, CLI_MODEL, "[--features STORE] [--host HOST] [--port PORT] [options]",
    "answers visual questions (and grounds phrases) over HTTP, with dynamic batching and a web page\n"
    "POST /v1/answer {\"question\", \"image\" (base64 PNG/BMP) or \"image_id\"}, POST /v1/ground {\"image_id\",\n"
    "\"sentence\"}, GET /v1/model, /health, /metrics (Prometheus), / (the page). Prints \"listening on\n"
    "http://HOST:PORT\"; SIGTERM or SIGINT stops accepting, answers what is in flight and exits 0. Connections\n"
    "idle for 10 s are closed, at most 256 are open at once.",
    serve_options, 0,
    "ban serve examples/models/easyvqa.ban --port 8080\n"
    "curl -s localhost:8080/v1/answer -d '{\"question\": \"what shape is this?\", \"image\": \"'$(base64 -w0 shape.png)'\"}'"};
