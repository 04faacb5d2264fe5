/* ban.h - Bilinear Attention Networks inference in one C header.   v0.1.0
   MIT licence (see the end of this file).

   Bilinear Attention Networks (Kim, Jun, Zhang, NeurIPS 2018) answer questions about
   images (VQA) and ground phrases in them (Flickr30k Entities). This header runs the
   models of the reference implementation (jnhwkim/ban-vqa) on caller-supplied tensors,
   reproducing its outputs to float precision, with weights mapped straight from a
   .ban file that tools/ban_export.py writes from the reference's PyTorch checkpoints.

   BUILD
     In exactly one C file:
         #define BAN_IMPLEMENTATION
         #include "ban.h"
     and link with a CBLAS (OpenBLAS: -lopenblas), libm and pthreads (-lpthread). C99,
     POSIX for mmap and threads.

   EXAMPLE (VQA: one image of K boxes, one question)
         ban_model *model;  ban_ctx *ctx;
         if (ban_model_load("model.ban", &model) != BAN_OK) {
             fprintf(stderr, "%s\n", model ? ban_model_error(model) : "out of memory");
             return 1;
         }
         ban_limits lim = {0};  lim.max_boxes = K;          // zeros take defaults
         if (ban_ctx_create(model, &lim, &ctx) != BAN_OK) return 1;
         int32_t tokens[64];  int n;
         ban_tokenize(ctx, "What color is the bus?", tokens, 64, &n);
         float logits[4096];  // A = ban_model_config(model)->num_answers
         ban_input in = {0};  ban_output out = {0};
         in.batch = 1;  in.boxes = K;  in.features = feats;  in.spatials = spats;
         in.tokens_len = n;  in.tokens = tokens;  out.logits = logits;
         if (ban_forward(ctx, &in, &out) != BAN_OK) fprintf(stderr, "%s\n", ban_ctx_error(ctx));
         else printf("%s\n", ban_model_answer(model, ban_argmax(logits, ban_model_config(model)->num_answers)));
         ban_ctx_free(ctx);  ban_model_free(model);

   SHAPES (row-major, the same letters everywhere)
     B batch, K boxes, L tokens, P question positions, E entities, G glimpses, D hidden size,
     Dv box-feature size, A answers, N images. Inputs: features (N, K, Dv); spatials
     (N, K, 6) = normalised x1, y1, x2, y2, width, height; tokens (B, L) as int32 ids.
     N = B unless several questions share an image (input.images, input.image_index):
     the boxes of each image are then projected once for all its questions. Outputs: VQA
     logits (B, A), attention maps (B, G, K, P), attention entropy (B, G); grounding
     logits (B, G, K, E).

   CONVENTIONS (recorded in the model file by the exporter; ban_config says which)
     The reference marks padded boxes as all-zero feature rows and does not mask question
     padding: the GRU runs over padding tokens, attention may land on them, and the
     classifier sums all P = 14 positions. Weights trained that way need the same, so for
     such a model ban.h pads every question to P = question_length positions (truncating
     longer ones, as the reference's tokenizer does) and masks all-zero rows. Explicit
     per-example counts (box_counts, token_counts) mark padding too; with them, padding
     may hold any values. A model trained with question masking ("masked") instead runs
     the GRU, attention and sum over real tokens only, and P = L.
     Padding never changes the outputs: appending padded boxes or tokens is a no-op.

   API (all functions return a ban_status; messages name the file, offset, tensor,
   example or token concerned)
     ban_model_load(path, &model)        map and validate a .ban file; on failure
                                         *model still holds ban_model_error() (free it)
     ban_model_load_memory(data, n, &m)  the same from a buffer that outlives the model
     ban_model_free, ban_model_error, ban_model_config, ban_model_parameter_count
     ban_model_answer(m, i), ban_model_word(m, id), ban_model_meta_string/int(m, key)
     ban_ctx_create(model, &limits, &ctx) buffers for up to limits (batch, boxes,
                                         tokens, entities), allocated once; threads
     ban_ctx_free, ban_ctx_error
     ban_tokenize(ctx, text, ids, max, &n) the reference tokenizer; n may exceed max
     ban_question_positions(model, L)    P for an input of L tokens
     ban_forward(ctx, &input, &output)   one batch; allocates nothing
     ban_encode(ctx, pixels, n, f, s)    an image encoder's grid features on their own
     ban_argmax(x, n), ban_status_string(status)

   THREADS
     A model is immutable once loaded and may be shared by any number of threads; each
     thread needs its own context. The big Linear weights of a file in the exporter's
     default layout (panels of 32 rows) go through ban.h's own matrix product: AVX-512,
     AVX2+FMA or plain C, chosen at run time (the environment variable BAN_SIMD=avx2 or
     none caps it), split among limits.threads threads per context (default: the
     processors online), which sleep between calls. Other products, and weights in rows,
     run through CBLAS, whose own threads (OPENBLAS_NUM_THREADS) apply. The thread count
     changes no bit of the outputs. Running one context per core, set limits.threads = 1.

   OPTIONS (#define before including the implementation)
     BAN_MALLOC(n), BAN_FREE(p)   allocator (default malloc, free)
     BAN_ASSERT(x)                internal invariants only, never bad input (default assert)
     BAN_STATIC                   make every function static (BANDEF)
     BAN_NO_MMAP                  read model files into memory instead of mapping them
     BAN_NO_THREADS               no threads of ban.h's own (always on Windows)
     BAN_NO_SIMD                  the plain C kernel only (always, but on x86-64 with GCC or Clang)

   LIMITS (inputs beyond them are refused with BAN_ERR_ARG / BAN_ERR_FORMAT)
     BAN_MAX_BATCH, BAN_MAX_BOXES, BAN_MAX_TOKENS, BAN_MAX_ENTITIES, BAN_MAX_THREADS, BAN_MAX_GLIMPSES,
     BAN_MAX_DIM (any model dimension), BAN_MAX_VOCAB, BAN_MAX_ANSWERS, BAN_MAX_STRING,
     BAN_MAX_ENTRIES, BAN_MAX_IMAGE_SIDE, BAN_MAX_ENCODER_FLOATS, BAN_MAX_FILE_SIZE; see their
     definitions below.
*/
#ifndef BAN_H_INCLUDED
#define BAN_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifndef BANDEF
#ifdef BAN_STATIC
#define BANDEF static
#else
#define BANDEF extern
#endif
#endif

#define BAN_VERSION "0.1.0"
#define BAN_FILE_VERSION 1            /* the .ban format version this build reads */

#define BAN_MAX_BATCH 4096            /* examples in one forward call */
#define BAN_MAX_BOXES 1024            /* boxes per example */
#define BAN_MAX_TOKENS 1024           /* question positions per example */
#define BAN_MAX_ENTITIES 256          /* entities per sentence (grounding) */
#define BAN_MAX_THREADS 256           /* threads of one context */
#define BAN_MAX_GLIMPSES 32           /* the reference's limit for its attention */
#define BAN_MAX_DIM 65536             /* hidden, feature, embedding and classifier sizes */
#define BAN_MAX_VOCAB 10000000        /* words */
#define BAN_MAX_ANSWERS 1000000       /* answers */
#define BAN_MAX_STRING 65535          /* bytes of one word, answer or metadata string */
#define BAN_MAX_COUNTER_OBJECTS 64    /* boxes the counting module looks at */
#define BAN_MAX_ENCODER_LAYERS 64     /* layers of an image encoder */
#define BAN_MAX_IMAGE_SIDE 4096       /* an image encoder's input height and width */
#define BAN_MAX_ENCODER_FLOATS (1 << 26) /* an encoder's largest activation + im2col, per image */
#define BAN_MAX_ENTRIES 4096          /* metadata entries, and tensors, in a model file */
#define BAN_MAX_FILE_SIZE ((uint64_t)64 << 30) /* bytes of a model file */

typedef enum ban_status {
    BAN_OK = 0,
    BAN_ERR_IO = 1,          /* a file could not be opened, read or mapped */
    BAN_ERR_FORMAT = 2,      /* the model file is malformed */
    BAN_ERR_UNSUPPORTED = 3, /* well-formed, but needs something this build lacks */
    BAN_ERR_NOMEM = 4,       /* an allocation failed */
    BAN_ERR_ARG = 5,         /* a bad argument: NULL, or a size beyond the limits */
    BAN_ERR_INPUT = 6        /* bad input data: token outside the vocabulary, no boxes, NaN */
} ban_status;

enum { BAN_TASK_VQA = 0, BAN_TASK_GROUNDING = 1 };

typedef struct ban_config {
    int task;              /* BAN_TASK_VQA or BAN_TASK_GROUNDING */
    int vocab_size;        /* V words; ids 0..V-1, and V is the padding id */
    int embedding_dim;     /* size of one embedding table (300) */
    int embedding_tables;  /* 1, or 2 concatenated (the reference's op 'c') */
    int feature_dim;       /* Dv, the size of a box feature as the caller passes it */
    int spatial_concat;    /* 1: the 6 spatial values are appended to each feature (op 's') */
    int hidden_dim;        /* D */
    int attention_rank;    /* k: the attention projections are k*D wide (3) */
    int num_glimpses;      /* G */
    int num_answers;       /* A (VQA) */
    int classifier_hidden; /* width of the classifier's hidden layer (2*D) */
    int counter_objects;   /* boxes the counting module looks at (10); 0: no counter */
    int question_length;   /* positions questions were padded to in training (14) */
    int question_masking;  /* 0: the reference (padding not masked); 1: masked */
    int zero_row_padding;  /* 1: all-zero feature rows are padded boxes (the reference) */
    int padding_id;        /* = vocab_size */
    int unknown_id;        /* id of words outside the vocabulary (the reference: V-1) */
    int has_vocabulary;    /* the file carries the words (ban_tokenize works) */
    int has_answers;       /* the file carries the answer strings */
    int image_height;      /* an image encoder's input size; 0: the model takes box features */
    int image_width;
    int grid_height;       /* its output grid: K = grid_height * grid_width visual channels */
    int grid_width;
    int encoder_layers;    /* layers of the encoder (conv, ReLU, max-pool) */
    int linear_weights;    /* the model's Linear weights that may be stored in panels, */
    int panel_weights;     /* and those that are (ban.h's own product makes theirs) */
} ban_config;

typedef struct ban_limits {   /* a context's capacity; 0 takes the default in brackets */
    int max_batch;            /* [1] */
    int max_boxes;            /* [100] */
    int max_tokens;           /* [question_length] */
    int max_entities;         /* [16] grounding only */
    int threads;              /* [processors online] threads of ban.h's own matrix product
                                 (weights in panels), the caller's included; CBLAS has its own */
} ban_limits;

typedef struct ban_input {
    int batch;                 /* B questions (sentences) */
    int boxes;                 /* K: row count of features and spatials per image */
    int images;                /* N images in features/spatials/box_counts; 0: one per example */
    const int *image_index;    /* (B) the image of each example, 0..N-1; NULL: example b, image b */
    const float *features;     /* (N, K, Dv) */
    const float *spatials;     /* (N, K, 6); needed by the counter and by op 's' */
    const int *box_counts;     /* (N) real boxes first; NULL: K each (zero rows still pad) */
    const unsigned char *pixels; /* (N, H, W, 3) RGB bytes, for a model with an image encoder,
                                    instead of features, spatials, boxes and box_counts */
    int tokens_len;            /* L */
    const int32_t *tokens;     /* (B, L) ids in 0..V (V = padding) */
    const int *token_counts;   /* (B) real tokens first; NULL: up to the first padding id */
    int entities_len;          /* E (grounding) */
    const int32_t *entities;   /* (B, E) token positions of the entities (their last word) */
    const int *entity_counts;  /* (B) or NULL: the reference's rule, a slot > 0 holding
                                  position 0 is padding */
    int glimpses;              /* run the first N glimpses only (0: all); VQA */
} ban_input;

typedef struct ban_output {
    float *logits;             /* VQA (B, A); grounding (B, G, K, E), padding = -99 */
    float *attention;          /* optional, VQA: (B, G, K, P) probabilities, 0 on padding */
    float *entropy;            /* optional, VQA: (B, G) entropy (nats) of each map */
} ban_output;

typedef struct ban_model ban_model;
typedef struct ban_ctx ban_ctx;

#ifdef __cplusplus
extern "C" {
#endif

BANDEF int ban_model_load(const char *path, ban_model **model);
BANDEF int ban_model_load_memory(const void *data, size_t size, ban_model **model);
BANDEF void ban_model_free(ban_model *model);
BANDEF const char *ban_model_error(const ban_model *model);
BANDEF const ban_config *ban_model_config(const ban_model *model);
BANDEF size_t ban_model_parameter_count(const ban_model *model);
BANDEF const char *ban_model_answer(const ban_model *model, int index);  /* NULL if none */
BANDEF const char *ban_model_word(const ban_model *model, int id);      /* NULL if none */
BANDEF const char *ban_model_meta_string(const ban_model *model, const char *key);
BANDEF int ban_model_meta_int(const ban_model *model, const char *key, int64_t *value);

BANDEF int ban_ctx_create(const ban_model *model, const ban_limits *limits, ban_ctx **ctx);
BANDEF void ban_ctx_free(ban_ctx *ctx);
BANDEF const char *ban_ctx_error(const ban_ctx *ctx);
BANDEF const ban_limits *ban_ctx_limits(const ban_ctx *ctx);

BANDEF int ban_tokenize(ban_ctx *ctx, const char *text, int32_t *ids, int max_ids, int *n_tokens);
BANDEF int ban_question_positions(const ban_model *model, int tokens_len);
BANDEF int ban_forward(ban_ctx *ctx, const ban_input *input, ban_output *output);
/* an encoder model's grid for n images (N, H, W, 3): features (n, K, C), spatials (n, K, 6) */
BANDEF int ban_encode(ban_ctx *ctx, const unsigned char *pixels, int n, float *features, float *spatials);

BANDEF int ban_argmax(const float *x, int n);
BANDEF const char *ban_status_string(int status);

#ifdef __cplusplus
}
#endif
#endif /* BAN_H_INCLUDED */

/* ======================================================================== */
/*                              IMPLEMENTATION                              */
/* ======================================================================== */
#if defined(BAN_IMPLEMENTATION) && !defined(BAN__IMPLEMENTED)
#define BAN__IMPLEMENTED

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef BAN_NO_MMAP
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#ifndef BAN_MALLOC
#define BAN_MALLOC(n) malloc(n)
#define BAN_FREE(p) free(p)
#endif
#ifndef BAN_ASSERT
#include <assert.h>
#define BAN_ASSERT(x) assert(x)
#endif

#ifdef __cplusplus
#define BAN__RESTRICT __restrict
#else
#define BAN__RESTRICT restrict
#endif

/* the threads and x86 SIMD kernels of ban.h's own matrix product, where the system and the
   compiler have them; BAN_NO_THREADS and BAN_NO_SIMD turn either off */
#if !defined(BAN_NO_THREADS) && !defined(_WIN32)
#define BAN__THREADS 1
#include <pthread.h>
#include <unistd.h>
#else
#define BAN__THREADS 0
#endif
#if !defined(BAN_NO_SIMD) && (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define BAN__X86 1
#include <immintrin.h>
#define BAN__AVX512 __attribute__((target("avx512f,fma"))) static inline __attribute__((always_inline))
#define BAN__AVX2 __attribute__((target("avx2,fma"))) static inline __attribute__((always_inline))
#else
#define BAN__X86 0
#endif

#define BAN__ERR 512
#define BAN__ALIGN 64
#define BAN__MASKED_GROUNDING (-99.0f) /* the reference's MINUS_INFINITE */

/* ---- small helpers ------------------------------------------------------ */

static int ban__fail(char *buf, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, BAN__ERR, fmt, ap);
    va_end(ap);
    return status;
}

/* a*b without wrapping: 0 on overflow (every caller treats 0 as "too large") */
static size_t ban__mul(size_t a, size_t b)
{
    if (a != 0 && b > (size_t)-1 / a) return 0;
    return a * b;
}

static float ban__sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

BANDEF int ban_argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return n > 0 ? best : -1;
}

BANDEF const char *ban_status_string(int status)
{
    switch (status) {
    case BAN_OK: return "ok";
    case BAN_ERR_IO: return "i/o error";
    case BAN_ERR_FORMAT: return "malformed model file";
    case BAN_ERR_UNSUPPORTED: return "unsupported";
    case BAN_ERR_NOMEM: return "out of memory";
    case BAN_ERR_ARG: return "bad argument";
    case BAN_ERR_INPUT: return "bad input";
    default: return "unknown status";
    }
}

/* ---- linear layers ------------------------------------------------------- */

/* row += b, and the same followed by max(0, .): in blocks of 16 so that compilers vectorise
   them at -O2 too (the box projections' output alone is (boxes, (k+G)*D) floats) */
static void ban__add(float *BAN__RESTRICT row, const float *BAN__RESTRICT b, int n)
{
    int j = 0;
    for (; j + 16 <= n; j += 16)
        for (int u = 0; u < 16; u++) row[j + u] += b[j + u];
    for (; j < n; j++) row[j] += b[j];
}

static void ban__add_relu(float *BAN__RESTRICT row, const float *BAN__RESTRICT b, int n)
{
    int j = 0;
    for (; j + 16 <= n; j += 16)
        for (int u = 0; u < 16; u++) {
            const float v = row[j + u] + b[j + u];
            row[j + u] = v > 0.0f ? v : 0.0f;
        }
    for (; j < n; j++) {
        const float v = row[j] + b[j];
        row[j] = v > 0.0f ? v : 0.0f;
    }
}

/* y (M, N) = x (M, K) W^T + b, with W (N, K) as PyTorch's Linear stores it;
   relu != 0 applies max(0, .). ldx and ldy are row strides. */
static void ban__linear_rows(int M, int N, int K, const float *x, int ldx, const float *W, const float *b,
                        float *y, int ldy, int relu)
{
    if (M == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, 1.0f, W, K, x, 1, 0.0f, y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, ldx, W, K, 0.0f, y, ldy);
    for (int i = 0; i < M; i++) {
        float *row = y + (size_t)i * ldy;
        if (relu) ban__add_relu(row, b, N);
        else ban__add(row, b, N);
    }
}

/* ---- ban.h's own matrix product -----------------------------------------------
   y (M, N) = x (M, K) W^T (+ b, then max(0, .) if relu) for W given in panels of 32 of its
   rows: element [p][k][j] = W[32p + j][k] sits at B + p * pstride + k * ldb + j. A weight
   stored in panels (the exporter's default layout) has ldb = 32 and pstride = 32 K: each
   panel is one contiguous stream, read once per slice of rows, with none of the re-packing
   a BLAS does on every call (at batch 1 that is a quarter of OpenBLAS's visual product).
   A matrix V (K, N) in rows is W = V^T in panels with ldb = its row stride, pstride = 32.
   The kernel holds a tile of rows x 32 columns in registers and sums BAN__KC products at a
   time; rows run in slices of BAN__MC so that x's slice stays in cache while panels stream
   by. Threads take work items (a slice of rows, BAN__CHUNK panels) as they come; every
   output is computed the same way whichever thread takes it. Columns past N are neither
   stored nor, in a partial last panel, loaded. */
#define BAN__NR 32
#define BAN__KC 256
#define BAN__MC 128
#define BAN__CHUNK 4
enum { BAN__ISA_C, BAN__ISA_AVX2, BAN__ISA_AVX512 };
/* the weights a file may store in panels (tensor name + "_panels") */
enum {
    BAN__PW_GRU_IH = 1, BAN__PW_GRU_HH = 2, BAN__PW_VIS = 4, BAN__PW_ATT_Q = 8,
    BAN__PW_GQ = 16, BAN__PW_GP = 32, BAN__PW_GC = 64, BAN__PW_CLS1 = 128, BAN__PW_CLS2 = 256
};

typedef struct ban__pgemm {
    int M, N, K, ldx, ldy, relu, isa;
    const float *x;
    const float *B;       /* W in panels, as above */
    size_t ldb, pstride;
    const float *bias;    /* (N) or NULL */
    float *y;
} ban__pgemm;

/* the arguments of one tile: C (mr, nc) (+)= A (mr, kc) B (kc, nc); first: C is written,
   not added to; last: the bias (if any) and the ReLU (if relu) follow */
typedef struct ban__tile {
    int mr, kc, nc, first, last, relu;
    const float *A, *B, *bias;
    size_t lda, ldb, ldc;
    float *C;
} ban__tile;

static void ban__tile_c(const ban__tile *t)
{
    for (int r = 0; r < t->mr; r++) {
        float acc[BAN__NR] = {0};
        for (int k = 0; k < t->kc; k++) {
            const float a = t->A[r * t->lda + k], *b = t->B + k * t->ldb;
            if (t->nc == BAN__NR)
                for (int j = 0; j < BAN__NR; j++) acc[j] += a * b[j];
            else
                for (int j = 0; j < t->nc; j++) acc[j] += a * b[j];
        }
        float *cr = t->C + r * t->ldc;
        for (int j = 0; j < t->nc; j++) {
            float v = t->first ? acc[j] : cr[j] + acc[j];
            if (t->last && t->bias) v += t->bias[j];
            if (t->last && t->relu) v = v > 0.0f ? v : 0.0f;
            cr[j] = v;
        }
    }
}

#if BAN__X86
#define BAN__ROWS6(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define BAN__ROWS10(X) BAN__ROWS6(X) X(6) X(7) X(8) X(9)

/* AVX-512: up to 10 rows x 32 columns, 20 accumulators */
BAN__AVX512 void ban__tile512(int mr, const ban__tile *t)
{
    const int nc = t->nc, kc = t->kc;
    const __mmask16 m0 = (__mmask16)(nc >= 16 ? 0xFFFFu : (1u << nc) - 1u);
    const __mmask16 m1 = (__mmask16)(nc >= 32 ? 0xFFFFu : nc <= 16 ? 0u : (1u << (nc - 16)) - 1u);
    const float *A = t->A, *B = t->B;
    const size_t lda = t->lda, ldb = t->ldb;
    const __m512 zero = _mm512_setzero_ps();
#define BAN__D(r) __m512 c##r##0 = zero, c##r##1 = zero;
    BAN__ROWS10(BAN__D)
#undef BAN__D
#define BAN__F(r)                                              \
    if (r < mr) {                                              \
        const __m512 a = _mm512_set1_ps(A[(r) * lda + k]);     \
        c##r##0 = _mm512_fmadd_ps(a, b0, c##r##0);             \
        c##r##1 = _mm512_fmadd_ps(a, b1, c##r##1);             \
    }
    if (nc == BAN__NR)
        for (int k = 0; k < kc; k++) {
            const __m512 b0 = _mm512_loadu_ps(B + k * ldb), b1 = _mm512_loadu_ps(B + k * ldb + 16);
            BAN__ROWS10(BAN__F)
        }
    else
        for (int k = 0; k < kc; k++) {
            const __m512 b0 = _mm512_maskz_loadu_ps(m0, B + k * ldb), b1 = _mm512_maskz_loadu_ps(m1, B + k * ldb + 16);
            BAN__ROWS10(BAN__F)
        }
#undef BAN__F
    const int bias = t->last && t->bias, relu = t->last && t->relu;
    const __m512 bb0 = bias ? _mm512_maskz_loadu_ps(m0, t->bias) : zero;
    const __m512 bb1 = bias ? _mm512_maskz_loadu_ps(m1, t->bias + 16) : zero;
#define BAN__S(r)                                                                    \
    if (r < mr) {                                                                    \
        float *cr = t->C + (r) * t->ldc;                                             \
        if (!t->first) {                                                             \
            c##r##0 = _mm512_add_ps(c##r##0, _mm512_maskz_loadu_ps(m0, cr));         \
            c##r##1 = _mm512_add_ps(c##r##1, _mm512_maskz_loadu_ps(m1, cr + 16));    \
        }                                                                            \
        c##r##0 = _mm512_add_ps(c##r##0, bb0), c##r##1 = _mm512_add_ps(c##r##1, bb1); \
        if (relu) c##r##0 = _mm512_max_ps(c##r##0, zero), c##r##1 = _mm512_max_ps(c##r##1, zero); \
        _mm512_mask_storeu_ps(cr, m0, c##r##0);                                      \
        _mm512_mask_storeu_ps(cr + 16, m1, c##r##1);                                 \
    }
    BAN__ROWS10(BAN__S)
#undef BAN__S
}
__attribute__((target("avx512f,fma"))) static void ban__tile512_full(const ban__tile *t) { ban__tile512(10, t); }
/* fewer rows: one copy of the kernel per row count, each without a test per row and product */
__attribute__((target("avx512f,fma"))) static void ban__tile512_part(const ban__tile *t)
{
    switch (t->mr) {
    case 1: ban__tile512(1, t); break;
    case 2: ban__tile512(2, t); break;
    case 3: ban__tile512(3, t); break;
    case 4: ban__tile512(4, t); break;
    case 5: ban__tile512(5, t); break;
    case 6: ban__tile512(6, t); break;
    case 7: ban__tile512(7, t); break;
    case 8: ban__tile512(8, t); break;
    default: ban__tile512(9, t); break;
    }
}

/* AVX2: up to 6 rows x 16 columns (half a panel: nc <= 16), 12 accumulators */
BAN__AVX2 void ban__tile256(int mr, const ban__tile *t)
{
    const int nc = t->nc, kc = t->kc;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nc), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nc - 8), lane);
    const float *A = t->A, *B = t->B;
    const size_t lda = t->lda, ldb = t->ldb;
    const __m256 zero = _mm256_setzero_ps();
#define BAN__D(r) __m256 c##r##0 = zero, c##r##1 = zero;
    BAN__ROWS6(BAN__D)
#undef BAN__D
#define BAN__F(r)                                                  \
    if (r < mr) {                                                  \
        const __m256 a = _mm256_broadcast_ss(A + (r) * lda + k);   \
        c##r##0 = _mm256_fmadd_ps(a, b0, c##r##0);                 \
        c##r##1 = _mm256_fmadd_ps(a, b1, c##r##1);                 \
    }
    if (nc == 16)
        for (int k = 0; k < kc; k++) {
            const __m256 b0 = _mm256_loadu_ps(B + k * ldb), b1 = _mm256_loadu_ps(B + k * ldb + 8);
            BAN__ROWS6(BAN__F)
        }
    else
        for (int k = 0; k < kc; k++) {
            const __m256 b0 = _mm256_maskload_ps(B + k * ldb, m0), b1 = _mm256_maskload_ps(B + k * ldb + 8, m1);
            BAN__ROWS6(BAN__F)
        }
#undef BAN__F
    const int bias = t->last && t->bias, relu = t->last && t->relu;
    const __m256 bb0 = bias ? _mm256_maskload_ps(t->bias, m0) : zero;
    const __m256 bb1 = bias ? _mm256_maskload_ps(t->bias + 8, m1) : zero;
    /* masked moves only in a partial panel: they are slow on some processors (AMD) */
#define BAN__S(r)                                                                    \
    if (r < mr) {                                                                    \
        float *cr = t->C + (r) * t->ldc;                                             \
        if (!t->first && nc == 16) {                                                 \
            c##r##0 = _mm256_add_ps(c##r##0, _mm256_loadu_ps(cr));                   \
            c##r##1 = _mm256_add_ps(c##r##1, _mm256_loadu_ps(cr + 8));               \
        } else if (!t->first) {                                                      \
            c##r##0 = _mm256_add_ps(c##r##0, _mm256_maskload_ps(cr, m0));            \
            c##r##1 = _mm256_add_ps(c##r##1, _mm256_maskload_ps(cr + 8, m1));        \
        }                                                                            \
        c##r##0 = _mm256_add_ps(c##r##0, bb0), c##r##1 = _mm256_add_ps(c##r##1, bb1); \
        if (relu) c##r##0 = _mm256_max_ps(c##r##0, zero), c##r##1 = _mm256_max_ps(c##r##1, zero); \
        if (nc == 16) _mm256_storeu_ps(cr, c##r##0), _mm256_storeu_ps(cr + 8, c##r##1); \
        else _mm256_maskstore_ps(cr, m0, c##r##0), _mm256_maskstore_ps(cr + 8, m1, c##r##1); \
    }
    BAN__ROWS6(BAN__S)
#undef BAN__S
}
__attribute__((target("avx2,fma"))) static void ban__tile256_full(const ban__tile *t) { ban__tile256(6, t); }
__attribute__((target("avx2,fma"))) static void ban__tile256_part(const ban__tile *t)
{
    switch (t->mr) {
    case 1: ban__tile256(1, t); break;
    case 2: ban__tile256(2, t); break;
    case 3: ban__tile256(3, t); break;
    case 4: ban__tile256(4, t); break;
    default: ban__tile256(5, t); break;
    }
}
#endif

/* the best kernel this processor runs, capped by the environment variable BAN_SIMD
   ("avx2" or "none"; for comparing them) */
static int ban__isa(void)
{
    int isa = BAN__ISA_C;
#if BAN__X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) isa = BAN__ISA_AVX2;
    if (isa == BAN__ISA_AVX2 && __builtin_cpu_supports("avx512f")) isa = BAN__ISA_AVX512;
#endif
    const char *cap = getenv("BAN_SIMD");
    if (cap && strcmp(cap, "none") == 0) isa = BAN__ISA_C;
    if (cap && strcmp(cap, "avx2") == 0 && isa > BAN__ISA_AVX2) isa = BAN__ISA_AVX2;
    return isa;
}

/* the product's work items: slices of rows times chunks of panels */
static int ban__pgemm_items(const ban__pgemm *g)
{
    const int P = (g->N + BAN__NR - 1) / BAN__NR, C = (P + BAN__CHUNK - 1) / BAN__CHUNK;
    return (g->M + BAN__MC - 1) / BAN__MC * C;
}

/* work item t: rows [i0, i0 + BAN__MC) of slice t / C, panels [p0, p0 + BAN__CHUNK) of chunk t % C */
static void ban__pgemm_item(const ban__pgemm *g, int t)
{
    const int P = (g->N + BAN__NR - 1) / BAN__NR, C = (P + BAN__CHUNK - 1) / BAN__CHUNK;
    const int i0 = t / C * BAN__MC, p0 = t % C * BAN__CHUNK, p1 = p0 + BAN__CHUNK < P ? p0 + BAN__CHUNK : P;
    const int mc = g->M - i0 < BAN__MC ? g->M - i0 : BAN__MC;
    for (int p = p0; p < p1; p++) {
        ban__tile tl;
        tl.nc = g->N - p * BAN__NR < BAN__NR ? g->N - p * BAN__NR : BAN__NR;
        tl.relu = g->relu, tl.lda = (size_t)g->ldx, tl.ldb = g->ldb, tl.ldc = (size_t)g->ldy;
        for (int k0 = 0; k0 < g->K; k0 += BAN__KC) {
            tl.kc = g->K - k0 < BAN__KC ? g->K - k0 : BAN__KC;
            tl.first = k0 == 0, tl.last = k0 + tl.kc == g->K;
            tl.B = g->B + (size_t)p * g->pstride + (size_t)k0 * g->ldb;
            tl.bias = g->bias ? g->bias + (size_t)p * BAN__NR : NULL;
            switch (g->isa) {
#if BAN__X86
            case BAN__ISA_AVX512:
                for (int i = 0; i < mc; i += 10) {
                    tl.mr = mc - i < 10 ? mc - i : 10;
                    tl.A = g->x + (size_t)(i0 + i) * g->ldx + k0;
                    tl.C = g->y + (size_t)(i0 + i) * g->ldy + (size_t)p * BAN__NR;
                    if (tl.mr == 10) ban__tile512_full(&tl);
                    else ban__tile512_part(&tl);
                }
                break;
            case BAN__ISA_AVX2: {
                const int nc = tl.nc;
                const float *B = tl.B, *bias = tl.bias;
                for (int h = 0; h < 2 && nc > 16 * h; h++) {
                    tl.nc = nc - 16 * h < 16 ? nc - 16 * h : 16;
                    tl.B = B + 16 * h, tl.bias = bias ? bias + 16 * h : NULL;
                    for (int i = 0; i < mc; i += 6) {
                        tl.mr = mc - i < 6 ? mc - i : 6;
                        tl.A = g->x + (size_t)(i0 + i) * g->ldx + k0;
                        tl.C = g->y + (size_t)(i0 + i) * g->ldy + (size_t)p * BAN__NR + 16 * h;
                        if (tl.mr == 6) ban__tile256_full(&tl);
                        else ban__tile256_part(&tl);
                    }
                }
                tl.nc = nc, tl.B = B, tl.bias = bias;
                break;
            }
#endif
            default:
                tl.mr = mc;
                tl.A = g->x + (size_t)i0 * g->ldx + k0;
                tl.C = g->y + (size_t)i0 * g->ldy + (size_t)p * BAN__NR;
                ban__tile_c(&tl);
            }
        }
    }
}

/* ---- a context's threads: they take work items of ban.h's own product ------- */
#if BAN__THREADS
typedef struct ban__worker {
    struct ban__pool *pool;
    pthread_t thread;
} ban__worker;

typedef struct ban__pool {
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    const ban__pgemm *job; /* the product of generation `gen` */
    int next, items;       /* its next work item to take, and how many there are */
    unsigned gen;
    int pending;           /* workers still on it */
    int quit;
    int n;                 /* workers started */
    ban__worker *workers;
} ban__pool;

/* the next work item of the current product, -1 when none is left */
static int ban__take_item(ban__pool *pl)
{
    pthread_mutex_lock(&pl->mu);
    const int t = pl->next < pl->items ? pl->next++ : -1;
    pthread_mutex_unlock(&pl->mu);
    return t;
}

static void *ban__worker_main(void *arg)
{
    ban__worker *w = (ban__worker *)arg;
    ban__pool *pl = w->pool;
    unsigned seen = 0;
    pthread_mutex_lock(&pl->mu);
    for (;;) {
        while (pl->gen == seen && !pl->quit) pthread_cond_wait(&pl->go, &pl->mu);
        if (pl->quit) break;
        seen = pl->gen;
        const ban__pgemm *g = pl->job;
        pthread_mutex_unlock(&pl->mu);
        for (int t; (t = ban__take_item(pl)) >= 0;) ban__pgemm_item(g, t);
        pthread_mutex_lock(&pl->mu);
        if (--pl->pending == 0) pthread_cond_signal(&pl->done);
    }
    pthread_mutex_unlock(&pl->mu);
    return NULL;
}

static void ban__pool_free(ban__pool *pl)
{
    if (!pl) return;
    pthread_mutex_lock(&pl->mu);
    pl->quit = 1;
    pthread_cond_broadcast(&pl->go);
    pthread_mutex_unlock(&pl->mu);
    for (int i = 0; i < pl->n; i++) pthread_join(pl->workers[i].thread, NULL);
    pthread_cond_destroy(&pl->go);
    pthread_cond_destroy(&pl->done);
    pthread_mutex_destroy(&pl->mu);
    BAN_FREE(pl->workers);
    BAN_FREE(pl);
}

/* n workers (fewer if the system refuses some: the product is then split fewer ways) */
static ban__pool *ban__pool_new(int n)
{
    ban__pool *pl = (ban__pool *)BAN_MALLOC(sizeof(ban__pool));
    if (!pl) return NULL;
    memset(pl, 0, sizeof *pl);
    pl->workers = (ban__worker *)BAN_MALLOC((size_t)n * sizeof(ban__worker));
    const int mu = pl->workers && !pthread_mutex_init(&pl->mu, NULL);
    const int go = mu && !pthread_cond_init(&pl->go, NULL);
    if (!(go && !pthread_cond_init(&pl->done, NULL))) {
        if (go) pthread_cond_destroy(&pl->go);
        if (mu) pthread_mutex_destroy(&pl->mu);
        BAN_FREE(pl->workers);
        BAN_FREE(pl);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        pl->workers[i].pool = pl;
        if (pthread_create(&pl->workers[i].thread, NULL, ban__worker_main, &pl->workers[i])) break;
        pl->n++;
    }
    return pl;
}

/* processors online: the default thread count */
static int ban__processors(void)
{
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > BAN_MAX_THREADS ? BAN_MAX_THREADS : (int)n;
}
#else
typedef struct ban__pool ban__pool;
static void ban__pool_free(ban__pool *pl) { (void)pl; }
static int ban__processors(void) { return 1; }
#endif

/* the whole product: split among the context's threads when it is large enough to pay for
   waking them (8 MFLOP, or 1 MB of weights to stream) */
static void ban__pgemm_run(ban__pool *pl, const ban__pgemm *g)
{
#if BAN__THREADS
    if (pl && pl->n && (2.0 * g->M * g->N * g->K >= (double)(1 << 23) || (double)g->N * g->K >= (double)(1 << 18))) {
        pthread_mutex_lock(&pl->mu);
        pl->job = g;
        pl->next = 0, pl->items = ban__pgemm_items(g);
        pl->pending = pl->n;
        pl->gen++;
        pthread_cond_broadcast(&pl->go);
        pthread_mutex_unlock(&pl->mu);
        for (int t; (t = ban__take_item(pl)) >= 0;) ban__pgemm_item(g, t);
        pthread_mutex_lock(&pl->mu);
        while (pl->pending) pthread_cond_wait(&pl->done, &pl->mu);
        pthread_mutex_unlock(&pl->mu);
        return;
    }
#else
    (void)pl;
#endif
    for (int t = 0, n = ban__pgemm_items(g); t < n; t++) ban__pgemm_item(g, t);
}

/* ---- model and context ---------------------------------------------------- */

typedef struct {
    const char *key;
    uint32_t type;
    uint64_t size;
    const unsigned char *value;
} ban__meta;

typedef struct {
    const char *name;
    uint32_t dtype, ndim;
    uint64_t dims[4];
    uint64_t offset, nbytes;
    const unsigned char *data;
    int bound; /* claimed by the model */
} ban__tensor;

struct ban_model {
    ban_config config;
    char path[256];
    const unsigned char *file;
    size_t file_size;
    int mapped; /* file came from mmap */
    unsigned char *owned; /* file read into memory (BAN_NO_MMAP) */
    ban__meta *meta;
    size_t n_meta;
    ban__tensor *tensors;
    size_t n_tensors;
    float *converted; /* float16 tensors widened to float32 */
    size_t n_params;

    /* weights (pointing into the file or `converted`) */
    const float *emb, *emb2;                     /* (V+1, Ew) each */
    const float *gru_wih, *gru_whh;              /* (3D, Ein), (3D, D) */
    const float *gru_bih, *gru_bhh;              /* (3D) */
    const float *vis_w, *vis_b;                  /* ((k+G)D, Dv'): attention rows, then glimpse rows */
    unsigned panels;                             /* BAN__PW_* bits: that weight is in panels */
    size_t panel_padding;                        /* zeros past the last row of those panels */
    const float *att_qw, *att_qb;                /* (kD, D), (kD) */
    const float *att_hmat, *att_hbias;           /* (G, kD), (G) */
    const float *gq_w, *gq_b;                    /* (G, D, D), (G, D) */
    const float *gp_w, *gp_b;                    /* (G, D, D), (G, D) */
    const float *gc_w, *gc_b;                    /* (G, D, O+1), (G, D) */
    const float *cls1_w, *cls1_b;                /* (H, D), (H) */
    const float *cls2_w, *cls2_b;                /* (A, H), (A) */
    float *counter_w, *counter_csum;             /* (F, S+1): normalised |w| and its cumsum */
    int counter_segments;                        /* S */
    /* image encoder: layer l is kind, out channels, kernel, stride, padding */
    int enc[BAN_MAX_ENCODER_LAYERS][5];
    const float *enc_w[BAN_MAX_ENCODER_LAYERS];  /* conv (O, C, k, k) */
    const float *enc_b[BAN_MAX_ENCODER_LAYERS];  /* conv (O) */
    const float *enc_affine;                     /* (2, 3): pixel byte * scale[c] + shift[c] */
    size_t enc_act, enc_col;                     /* floats per image: largest activation, im2col */

    const char **words, **answers;               /* strings inside the file */
    uint32_t *word_len;
    int32_t *word_hash;                          /* open addressing: word id or -1 */
    size_t hash_mask;
    int max_word_bytes;
    char error[BAN__ERR];
};

struct ban_ctx {
    const ban_model *model;
    ban_limits lim;
    int max_pos;            /* Pm: question positions the buffers hold */
    unsigned char *block;   /* every buffer below lives in this one allocation */
    float *emb;             /* (Bm*Pm, Ein) */
    float *gates_x;         /* (Bm*Pm, 3D) input halves of the GRU gates */
    float *gates_h;         /* (Bm, 3D) */
    float *hidden;          /* (Bm, D) */
    float *q;               /* (Bm*Pm, D) question channels: GRU states, then residual sums */
    float *q_ent;           /* (Bm*Em, D) grounding: the states at the entities */
    float *q_att;           /* (Bm*max(Pm,Em), kD) */
    float *q_scaled;        /* (G*max(Pm,Em), kD) */
    float *vpack;           /* (Bm*Km, Dv') real boxes, packed */
    float *vproj;           /* (Bm*Km, (k+G)D) projections of the boxes */
    float *att_tmp;         /* (Km, G*max(Pm,Em)) */
    float *att;             /* (Bm, G, Km, Pm) attention logits, then probabilities, packed rows */
    float *box_score;       /* (Bm, G, Km) logits maxed over positions (counter) */
    float *q_glimpse;       /* (Bm*Pm, D) */
    float *chain;           /* (Pm, D) */
    float *att_t;           /* (Pm, Km) one attention map transposed */
    float *joint;           /* (Bm, D) */
    float *proj;            /* (Bm, max(D, H)) */
    float *count_feat;      /* (Bm, O+1) */
    float *counter_tmp;     /* counter scratch */
    int32_t *tok;           /* (Bm, Pm) the tokens as run */
    int *n_tok;             /* (Bm) positions that count (classifier sum, attention) */
    int *n_box;             /* (Bm) */
    int *n_rows;            /* (Bm) packed rows */
    int *row0;              /* (Bm) first packed row */
    int *box_row;           /* (Bm*Km) packed row of each box, or -1 when masked */
    float *enc_a, *enc_b;   /* (Bm * act) encoder activations, ping-pong, layout (C, N, H, W) */
    float *enc_col;         /* (Bm * col) im2col of one conv layer over the batch */
    float *enc_feat;        /* (Bm, K, C) the encoder's grid as box features */
    float *enc_spat;        /* (Bm, K, 6) the cells' boxes */
    char *word;             /* tokenizer word buffer */
    size_t word_cap;
    int isa;                /* the kernel of ban.h's own product (BAN__ISA_*) */
    ban__pool *pool;        /* its threads besides the caller's; NULL: none */
    char error[BAN__ERR];
};

/* y (M, N) = x (M, K) W^T + b (then max(0, .) if relu), W either in rows (N, K), for CBLAS,
   or in panels (ceil(N/32), K, 32) for ban.h's own product; the first N rows of W only,
   when fewer than all of them are needed (fewer glimpses) */
static void ban__linear(ban_ctx *c, int M, int N, int K, const float *x, int ldx, const float *W, int panels,
                        const float *b, float *y, int ldy, int relu)
{
    if (!panels) {
        ban__linear_rows(M, N, K, x, ldx, W, b, y, ldy, relu);
        return;
    }
    const ban__pgemm g = {M, N, K, ldx, ldy, relu, c->isa, x, W, BAN__NR, (size_t)K * BAN__NR, b, y};
    ban__pgemm_run(c->pool, &g);
}

/* the g-th of a stack of (rows, cols) weights, in rows or in panels */
static const float *ban__stacked(const float *W, int g, int rows, int cols, int panels)
{
    const size_t r = panels ? (size_t)(rows + BAN__NR - 1) / BAN__NR * BAN__NR : (size_t)rows;
    return W + (size_t)g * r * (size_t)cols;
}

BANDEF const char *ban_model_error(const ban_model *m) { return m ? m->error : "no model"; }
BANDEF const ban_config *ban_model_config(const ban_model *m) { return &m->config; }
BANDEF size_t ban_model_parameter_count(const ban_model *m) { return m->n_params; }
BANDEF const char *ban_ctx_error(const ban_ctx *c) { return c ? c->error : "no context"; }
BANDEF const ban_limits *ban_ctx_limits(const ban_ctx *c) { return &c->lim; }

BANDEF const char *ban_model_answer(const ban_model *m, int i)
{
    return (m->answers && i >= 0 && i < m->config.num_answers) ? m->answers[i] : NULL;
}

BANDEF const char *ban_model_word(const ban_model *m, int id)
{
    return (m->words && id >= 0 && id < m->config.vocab_size) ? m->words[id] : NULL;
}

BANDEF int ban_question_positions(const ban_model *m, int tokens_len)
{
    const ban_config *c = &m->config;
    if (c->task == BAN_TASK_VQA && !c->question_masking) return c->question_length;
    return tokens_len;
}

/* ---- counting module (Zhang, Hare, Pruegel-Bennett, ICLR 2018) ------------ */

/* PiecewiseLin f_i(x): the cumulative sum of |w| / sum |w| read at 16x, linear in between */
static float ban__plin(const ban_model *m, int f, float x)
{
    const int n = m->counter_segments;
    const float *w = m->counter_w + (size_t)f * (n + 1), *csum = m->counter_csum + (size_t)f * (n + 1);
    float y = (float)n * x;
    if (y != y) return y;                      /* NaN stays NaN */
    float t = truncf(y), frac = y - t;         /* torch: y.long(), y.frac() */
    int idx = t <= 0.0f ? 0 : (t >= (float)n ? n : (int)t);
    int next = idx + 1 > n ? n : idx + 1;
    if (t < 0.0f) frac = y;                    /* -1 < y < 0: index 0, fraction y */
    return csum[idx] + frac * w[next];
}

/* The count feature (O+1) of one example for one glimpse. score (K): the glimpse's
   attention logits maxed over positions (-inf on masked boxes); xyxy: box k's corners
   at xyxy + k*6, used for k < n_real; boxes beyond hold zeros, as padded rows do in
   the reference, and so do the virtual boxes when K < O. tmp: 7*O*O + 4*O floats. */
static void ban__count(const ban_model *m, const float *score, const float *xyxy, int K, int n_real,
                       float *out, float *tmp)
{
    const int O = m->config.counter_objects;
    float *a = tmp, *box = a + O, *row_sims = box + 4 * O;    /* O, 4*O ... */
    float *rel = tmp + 6 * O, *dist = rel + O * O, *score_m = dist + O * O, *dedup = score_m + O * O;
    float *sim = dedup + O * O, *dconf = sim + O * O;
    int chosen[BAN_MAX_COUNTER_OBJECTS];
    int n_cand = K > O ? K : O;

    /* top O boxes by score; ties go to the lower index */
    for (int s = 0; s < O; s++) {
        int best = -1;
        float best_v = 0.0f;
        for (int k = 0; k < n_cand; k++) {
            int taken = 0;
            for (int t = 0; t < s; t++) taken |= chosen[t] == k;
            if (taken) continue;
            float v = k < K ? score[k] : -INFINITY;
            if (best < 0 || v > best_v) best = k, best_v = v;
        }
        chosen[s] = best;
        a[s] = ban__sigmoid(best_v);
        for (int c = 0; c < 4; c++) box[s * 4 + c] = best < n_real ? xyxy[(size_t)best * 6 + c] : 0.0f;
    }
    /* relevancy a_i a_j and distance 1 - IoU */
    for (int i = 0; i < O; i++)
        for (int j = 0; j < O; j++) {
            const float *p = box + i * 4, *q = box + j * 4;
            float iw = fminf(p[2], q[2]) - fmaxf(p[0], q[0]), ih = fminf(p[3], q[3]) - fmaxf(p[1], q[1]);
            float inter = (iw > 0.0f ? iw : 0.0f) * (ih > 0.0f ? ih : 0.0f);
            float wa = p[2] - p[0], ha = p[3] - p[1], wb = q[2] - q[0], hb = q[3] - q[1];
            float area_a = (wa > 0.0f ? wa : 0.0f) * (ha > 0.0f ? ha : 0.0f);
            float area_b = (wb > 0.0f ? wb : 0.0f) * (hb > 0.0f ? hb : 0.0f);
            rel[i * O + j] = a[i] * a[j];
            dist[i * O + j] = 1.0f - inter / (area_a + area_b - inter + 1e-12f);
        }
    /* intra-object (score) and inter-object (dedup) scores */
    for (int i = 0; i < O * O; i++) {
        score_m[i] = ban__plin(m, 0, rel[i]) * ban__plin(m, 1, dist[i]);
        dedup[i] = ban__plin(m, 3, rel[i]) * ban__plin(m, 4, dist[i]);
    }
    /* similarity of boxes j and k: prod_i f2(1 - |dedup_ij - dedup_ik|) * f2(1 - |a_j - a_k|) */
    for (int j = 0; j < O; j++) {
        for (int k = 0; k < O; k++) {
            float prod = 1.0f;
            for (int i = 0; i < O; i++)
                prod *= ban__plin(m, 2, 1.0f - fabsf(dedup[i * O + j] - dedup[i * O + k]));
            sim[j * O + k] = prod * ban__plin(m, 2, 1.0f - fabsf(a[j] - a[k]));
        }
    }
    for (int j = 0; j < O; j++) {
        float s = 0.0f;
        for (int k = 0; k < O; k++) s += sim[j * O + k];
        row_sims[j] = s;
    }
    /* the count: sum_ij score_ij / (r_i r_j) + sum_i f0(a_i^2) / r_i */
    float total = 0.0f, correction = 0.0f;
    for (int i = 0; i < O; i++) {
        float row = 0.0f;
        for (int j = 0; j < O; j++) row += score_m[i * O + j] / (row_sims[i] * row_sims[j]);
        total += row;
    }
    for (int i = 0; i < O; i++) correction += ban__plin(m, 0, a[i] * a[i]) / row_sims[i];
    float count = sqrtf(total + correction + 1e-20f);

    /* confidence: f7(mean |f5(a) - .5| + mean |f6(dist) - .5|) */
    float att_conf = 0.0f, dist_conf = 0.0f;
    for (int i = 0; i < O; i++) att_conf += fabsf(ban__plin(m, 5, a[i]) - 0.5f);
    att_conf /= (float)O;
    for (int i = 0; i < O; i++) {
        float row = 0.0f;
        for (int j = 0; j < O; j++) row += fabsf(ban__plin(m, 6, dist[i * O + j]) - 0.5f);
        dconf[i] = row / (float)O;
    }
    for (int i = 0; i < O; i++) dist_conf += dconf[i];
    dist_conf /= (float)O;
    float conf = ban__plin(m, 7, att_conf + dist_conf);

    /* one-hot of the count, interpolated between floor and ceiling */
    for (int i = 0; i <= O; i++) out[i] = 0.0f;
    if (count != count) {
        for (int i = 0; i <= O; i++) out[i] = count;
        return;
    }
    if (count > (float)O) count = (float)O;
    int lo = (int)count;
    float frac = count - (float)lo;
    int hi = lo + 1 > O ? O : lo + 1;
    out[lo] += (1.0f - frac) * conf;
    out[hi] += frac * conf;
}

/* ---- loader ---------------------------------------------------------------- */

enum { BAN__T_INT64 = 1, BAN__T_FLOAT64 = 2, BAN__T_STRING = 3, BAN__T_STRING_ARRAY = 4, BAN__T_INT64_ARRAY = 5 };
enum { BAN__F32 = 0, BAN__F16 = 1 };
#define BAN__HEADER 48

static uint32_t ban__u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t ban__u64(const unsigned char *p) { return ban__u32(p) | (uint64_t)ban__u32(p + 4) << 32; }

typedef struct {
    const unsigned char *base;
    uint64_t pos, end; /* absolute offsets into the file */
} ban__cursor;

static int ban__take(ban__cursor *c, uint64_t n, const unsigned char **out)
{
    if (n > c->end - c->pos) return 0;
    *out = c->base + c->pos;
    c->pos += n;
    return 1;
}

/* a string: u32 length, the bytes, a NUL; no NUL inside */
static int ban__string(ban_model *m, ban__cursor *c, const char *what, const char **out, uint32_t *len_out)
{
    const unsigned char *p;
    uint64_t at = c->pos;
    if (!ban__take(c, 4, &p))
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: offset %llu: %s: length runs past its section", m->path,
                         (unsigned long long)at, what);
    uint32_t len = ban__u32(p);
    if (len > BAN_MAX_STRING)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: offset %llu: %s: length %u exceeds %d", m->path,
                         (unsigned long long)at, what, len, BAN_MAX_STRING);
    if (!ban__take(c, (uint64_t)len + 1, &p))
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: offset %llu: %s: %u bytes run past its section", m->path,
                         (unsigned long long)at, what, len);
    if (p[len] != 0)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: offset %llu: %s is not NUL-terminated", m->path,
                         (unsigned long long)at, what);
    if (memchr(p, 0, len))
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: offset %llu: %s holds a NUL byte", m->path,
                         (unsigned long long)at, what);
    *out = (const char *)p;
    if (len_out) *len_out = len;
    return BAN_OK;
}

static const ban__meta *ban__find_meta(const ban_model *m, const char *key)
{
    for (size_t i = 0; i < m->n_meta; i++)
        if (strcmp(m->meta[i].key, key) == 0) return &m->meta[i];
    return NULL;
}

BANDEF const char *ban_model_meta_string(const ban_model *m, const char *key)
{
    const ban__meta *e = ban__find_meta(m, key);
    return e && e->type == BAN__T_STRING ? (const char *)e->value : NULL;
}

BANDEF int ban_model_meta_int(const ban_model *m, const char *key, int64_t *value)
{
    const ban__meta *e = ban__find_meta(m, key);
    if (!e || e->type != BAN__T_INT64) return 0;
    *value = (int64_t)ban__u64(e->value);
    return 1;
}

/* an INT64 entry within [lo, hi]; absent: *out = def, or an error when def < lo */
static int ban__cfg_int(ban_model *m, const char *key, int64_t lo, int64_t hi, int64_t def, int *out)
{
    const ban__meta *e = ban__find_meta(m, key);
    if (!e) {
        if (def < lo) return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' is missing", m->path, key);
        *out = (int)def;
        return BAN_OK;
    }
    if (e->type != BAN__T_INT64)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' has type %u, expected an integer", m->path,
                         key, e->type);
    int64_t v = (int64_t)ban__u64(e->value);
    if (v < lo || v > hi)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' = %lld, expected %lld..%lld", m->path, key,
                         (long long)v, (long long)lo, (long long)hi);
    *out = (int)v;
    return BAN_OK;
}

/* a STRING entry that must be one of the choices (index into them) */
static int ban__cfg_choice(ban_model *m, const char *key, const char *const *choices, int n, int def, int *out)
{
    const ban__meta *e = ban__find_meta(m, key);
    if (!e) {
        if (def < 0) return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' is missing", m->path, key);
        *out = def;
        return BAN_OK;
    }
    if (e->type != BAN__T_STRING)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' has type %u, expected a string", m->path, key,
                         e->type);
    for (int i = 0; i < n; i++)
        if (strcmp((const char *)e->value, choices[i]) == 0) return *out = i, BAN_OK;
    return ban__fail(m->error, BAN_ERR_UNSUPPORTED, "%s: metadata '%s' = '%.64s' is not one this build knows",
                     m->path, key, (const char *)e->value);
}

enum { BAN__CONV = 1, BAN__RELU = 2, BAN__MAXPOOL = 3 };

/* an INT64_ARRAY entry: its count and a pointer to the values (checked against its size) */
static int ban__int_array(ban_model *m, const ban__meta *e, uint64_t *count, const unsigned char **values)
{
    if (e->type != BAN__T_INT64_ARRAY)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' has type %u, expected an integer array",
                         m->path, e->key, e->type);
    *count = ban__u64(e->value);
    if (*count > (e->size - 8) / 8 || e->size != 8 + *count * 8)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' holds %llu integers in %llu bytes", m->path,
                         e->key, (unsigned long long)*count, (unsigned long long)e->size);
    *values = e->value + 8;
    return BAN_OK;
}

/* The image encoder, when the file has one: its input size and layers, checked layer by
   layer so that every size stays positive and every buffer is known before any forward. */
static int ban__parse_encoder(ban_model *m)
{
    ban_config *c = &m->config;
    const ban__meta *size = ban__find_meta(m, "encoder.input_size"), *layers = ban__find_meta(m, "encoder.layers");
    uint64_t n_size, n_layers;
    const unsigned char *v_size, *v_layers;
    int rc;
    if (!size && !layers) return BAN_OK;
    if (!size || !layers)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: an image encoder needs both encoder.input_size and "
                         "encoder.layers", m->path);
    if ((rc = ban__int_array(m, size, &n_size, &v_size)) || (rc = ban__int_array(m, layers, &n_layers, &v_layers)))
        return rc;
    if (n_size != 2 || n_layers == 0 || n_layers % 5 || n_layers / 5 > BAN_MAX_ENCODER_LAYERS)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: encoder.input_size must hold 2 integers and encoder.layers "
                         "1..%d groups of 5", m->path, BAN_MAX_ENCODER_LAYERS);
    int64_t h = (int64_t)ban__u64(v_size), w = (int64_t)ban__u64(v_size + 8), ch = 3;
    if (h < 1 || w < 1 || h > BAN_MAX_IMAGE_SIDE || w > BAN_MAX_IMAGE_SIDE)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: encoder.input_size %lld x %lld outside 1..%d", m->path,
                         (long long)h, (long long)w, BAN_MAX_IMAGE_SIDE);
    c->image_height = (int)h, c->image_width = (int)w;
    m->enc_act = (size_t)(3 * h * w);
    c->encoder_layers = (int)(n_layers / 5);
    for (int l = 0; l < c->encoder_layers; l++) {
        int64_t f[5];
        for (int j = 0; j < 5; j++) f[j] = (int64_t)ban__u64(v_layers + 8 * (5 * l + j));
        int ok = 1;
        if (f[0] == BAN__CONV) {
            ok = f[1] >= 1 && f[1] <= 4096 && f[2] >= 1 && f[2] <= 15 && f[3] >= 1 && f[3] <= 8 && f[4] >= 0 &&
                 f[4] < f[2] && h + 2 * f[4] >= f[2] && w + 2 * f[4] >= f[2];
            if (ok) {
                int64_t oh = (h + 2 * f[4] - f[2]) / f[3] + 1, ow = (w + 2 * f[4] - f[2]) / f[3] + 1;
                size_t col = (size_t)(ch * f[2] * f[2] * oh * ow);
                if (col > m->enc_col) m->enc_col = col;
                h = oh, w = ow, ch = f[1];
            }
        } else if (f[0] == BAN__MAXPOOL) {
            ok = f[2] >= 1 && f[2] <= 8 && f[3] >= 1 && f[3] <= 8 && h >= f[2] && w >= f[2];
            if (ok) h = (h - f[2]) / f[3] + 1, w = (w - f[2]) / f[3] + 1;
        } else {
            ok = f[0] == BAN__RELU;
        }
        if (!ok)
            return ban__fail(m->error, BAN_ERR_FORMAT, "%s: encoder layer %d (%lld, %lld, %lld, %lld, %lld) is not a "
                             "valid conv, ReLU or max-pool for a %lld x %lld input", m->path, l, (long long)f[0],
                             (long long)f[1], (long long)f[2], (long long)f[3], (long long)f[4], (long long)h,
                             (long long)w);
        for (int j = 0; j < 5; j++) m->enc[l][j] = (int)f[j];
        if ((size_t)(ch * h * w) > m->enc_act) m->enc_act = (size_t)(ch * h * w);
    }
    if (ch != c->feature_dim)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: the encoder ends with %lld channels, ban.feature_dim is %d",
                         m->path, (long long)ch, c->feature_dim);
    /* the image size is not backed by any weight: bound the context it would need */
    if (m->enc_act + m->enc_col > BAN_MAX_ENCODER_FLOATS)
        return ban__fail(m->error, BAN_ERR_UNSUPPORTED, "%s: the encoder needs %zu floats of buffers per image "
                         "(largest activation and im2col), above BAN_MAX_ENCODER_FLOATS (%d)", m->path,
                         m->enc_act + m->enc_col, BAN_MAX_ENCODER_FLOATS);
    if (h * w > BAN_MAX_BOXES || c->spatial_concat)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: an encoder grid of %lld x %lld cells (at most %d, and no "
                         "spatial_concat)", m->path, (long long)h, (long long)w, BAN_MAX_BOXES);
    c->grid_height = (int)h, c->grid_width = (int)w;
    return BAN_OK;
}

static int ban__parse_config(ban_model *m)
{
    ban_config *c = &m->config;
    static const char *const tasks[] = {"vqa", "grounding"};
    static const char *const qpad[] = {"unmasked", "masked"};
    static const char *const bpad[] = {"counts", "zero_rows"};
    int rc;
    memset(c, 0, sizeof *c);
    if ((rc = ban__cfg_choice(m, "ban.task", tasks, 2, -1, &c->task)) ||
        (rc = ban__cfg_int(m, "ban.vocab_size", 1, BAN_MAX_VOCAB, -1, &c->vocab_size)) ||
        (rc = ban__cfg_int(m, "ban.embedding_dim", 1, BAN_MAX_DIM, -1, &c->embedding_dim)) ||
        (rc = ban__cfg_int(m, "ban.embedding_tables", 1, 2, -1, &c->embedding_tables)) ||
        (rc = ban__cfg_int(m, "ban.feature_dim", 1, BAN_MAX_DIM, -1, &c->feature_dim)) ||
        (rc = ban__cfg_int(m, "ban.spatial_concat", 0, 1, 0, &c->spatial_concat)) ||
        (rc = ban__cfg_int(m, "ban.hidden_dim", 1, BAN_MAX_DIM, -1, &c->hidden_dim)) ||
        (rc = ban__cfg_int(m, "ban.attention_rank", 1, 64, -1, &c->attention_rank)) ||
        (rc = ban__cfg_int(m, "ban.glimpses", 1, BAN_MAX_GLIMPSES, -1, &c->num_glimpses)) ||
        (rc = ban__cfg_int(m, "ban.question_length", 1, BAN_MAX_TOKENS, -1, &c->question_length)) ||
        (rc = ban__cfg_choice(m, "ban.question_padding", qpad, 2, -1, &c->question_masking)) ||
        (rc = ban__cfg_choice(m, "ban.box_padding", bpad, 2, -1, &c->zero_row_padding)))
        return rc;
    if (c->task == BAN_TASK_VQA) {
        if ((rc = ban__cfg_int(m, "ban.answer_count", 1, BAN_MAX_ANSWERS, -1, &c->num_answers)) ||
            (rc = ban__cfg_int(m, "ban.classifier_hidden", 1, BAN_MAX_DIM, -1, &c->classifier_hidden)) ||
            (rc = ban__cfg_int(m, "ban.counter_objects", 0, BAN_MAX_COUNTER_OBJECTS, -1, &c->counter_objects)))
            return rc;
        if (c->spatial_concat)
            return ban__fail(m->error, BAN_ERR_UNSUPPORTED, "%s: spatial_concat is a grounding option", m->path);
    }
    if ((size_t)c->attention_rank * c->hidden_dim > BAN_MAX_DIM * 4u ||
        (size_t)c->embedding_dim * c->embedding_tables > BAN_MAX_DIM)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: attention width or embedding width too large", m->path);
    c->padding_id = c->vocab_size;
    c->unknown_id = c->vocab_size - 1;
    if ((rc = ban__cfg_int(m, "tokenizer.unknown_id", 0, c->vocab_size - 1, c->vocab_size - 1, &c->unknown_id)))
        return rc;
    return ban__parse_encoder(m);
}

static float ban__half(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal: renormalise */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 1024));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 1023) << 13;
        }
    } else if (exp == 31) bits = sign | 0x7F800000u | man << 13;
    else bits = sign | (exp + 127 - 15) << 23 | man << 13;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static int ban__cmp_offset(const void *a, const void *b)
{
    const ban__tensor *x = *(const ban__tensor *const *)a, *y = *(const ban__tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* header, metadata and tensor directory */
static int ban__parse_file(ban_model *m)
{
    const unsigned char *f = m->file, *p;
    uint64_t size = m->file_size;
    if (size < BAN__HEADER)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: %llu bytes, too short for the %d-byte header", m->path,
                         (unsigned long long)size, BAN__HEADER);
    if (memcmp(f, "BANM", 4) != 0)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: not a ban.h model file (magic %02x %02x %02x %02x)", m->path,
                         f[0], f[1], f[2], f[3]);
    uint32_t version = ban__u32(f + 4), align = ban__u32(f + 8);
    uint64_t n_meta = ban__u64(f + 16), n_tensors = ban__u64(f + 24);
    uint64_t data_off = ban__u64(f + 32), data_size = ban__u64(f + 40);
    if (version != BAN_FILE_VERSION)
        return ban__fail(m->error, BAN_ERR_UNSUPPORTED, "%s: format version %u; this build reads version %d",
                         m->path, version, BAN_FILE_VERSION);
    if (align < 8 || align > 4096 || (align & (align - 1)))
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: offset 8: alignment %u is not a power of two in 8..4096",
                         m->path, align);
    if (data_off < BAN__HEADER || data_off > size || data_off % align)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: offset 32: data section offset %llu (file of %llu bytes, "
                         "alignment %u)", m->path, (unsigned long long)data_off, (unsigned long long)size, align);
    if (data_size > size - data_off)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: offset 40: data section of %llu bytes at %llu runs past "
                         "the end of the file (%llu bytes): truncated?", m->path, (unsigned long long)data_size,
                         (unsigned long long)data_off, (unsigned long long)size);
    /* every entry takes at least 14 (metadata) or 22 (tensor) bytes of the directory */
    if (n_meta > (data_off - BAN__HEADER) / 14 || n_tensors > (data_off - BAN__HEADER) / 22)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: offset 16: %llu metadata entries and %llu tensors cannot "
                         "fit in a %llu-byte directory", m->path, (unsigned long long)n_meta,
                         (unsigned long long)n_tensors, (unsigned long long)(data_off - BAN__HEADER));
    /* keys and names are checked for duplicates pair by pair: bound the pairs */
    if (n_meta > BAN_MAX_ENTRIES || n_tensors > BAN_MAX_ENTRIES)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: offset 16: %llu metadata entries or %llu tensors exceed "
                         "BAN_MAX_ENTRIES (%d)", m->path, (unsigned long long)n_meta, (unsigned long long)n_tensors,
                         BAN_MAX_ENTRIES);
    m->meta = (ban__meta *)BAN_MALLOC((n_meta ? n_meta : 1) * sizeof *m->meta);
    m->tensors = (ban__tensor *)BAN_MALLOC((n_tensors ? n_tensors : 1) * sizeof *m->tensors);
    if (!m->meta || !m->tensors) return ban__fail(m->error, BAN_ERR_NOMEM, "%s: out of memory", m->path);
    memset(m->tensors, 0, (n_tensors ? n_tensors : 1) * sizeof *m->tensors);

    ban__cursor cur = {f, BAN__HEADER, data_off};
    int rc;
    for (uint64_t i = 0; i < n_meta; i++) {
        ban__meta *e = &m->meta[i];
        char what[64];
        snprintf(what, sizeof what, "metadata entry %llu key", (unsigned long long)i);
        if ((rc = ban__string(m, &cur, what, &e->key, NULL))) return rc;
        uint64_t at = cur.pos;
        if (!ban__take(&cur, 12, &p))
            return ban__fail(m->error, BAN_ERR_FORMAT, "%s: offset %llu: metadata '%s' is truncated", m->path,
                             (unsigned long long)at, e->key);
        e->type = ban__u32(p);
        e->size = ban__u64(p + 4);
        if (!ban__take(&cur, e->size, &e->value))
            return ban__fail(m->error, BAN_ERR_FORMAT, "%s: offset %llu: metadata '%s' value of %llu bytes runs "
                             "past the directory", m->path, (unsigned long long)at, e->key,
                             (unsigned long long)e->size);
        for (uint64_t j = 0; j < i; j++)
            if (strcmp(m->meta[j].key, e->key) == 0)
                return ban__fail(m->error, BAN_ERR_FORMAT, "%s: offset %llu: metadata '%s' appears twice", m->path,
                                 (unsigned long long)at, e->key);
        m->n_meta = i + 1;
        int ok = 1;
        switch (e->type) {
        case BAN__T_INT64: case BAN__T_FLOAT64: ok = e->size == 8; break;
        case BAN__T_STRING:
            ok = e->size >= 1 && e->size <= BAN_MAX_STRING + 1u && e->value[e->size - 1] == 0 &&
                 !memchr(e->value, 0, e->size - 1);
            break;
        case BAN__T_STRING_ARRAY: case BAN__T_INT64_ARRAY: ok = e->size >= 8; break;
        default: break; /* unknown types are skipped: newer writers may add some */
        }
        if (!ok)
            return ban__fail(m->error, BAN_ERR_FORMAT, "%s: offset %llu: metadata '%s' (type %u) has a malformed "
                             "value of %llu bytes", m->path, (unsigned long long)at, e->key, e->type,
                             (unsigned long long)e->size);
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        ban__tensor *t = &m->tensors[i];
        char what[64];
        snprintf(what, sizeof what, "tensor %llu name", (unsigned long long)i);
        if ((rc = ban__string(m, &cur, what, &t->name, NULL))) return rc;
        uint64_t at = cur.pos;
        m->n_tensors = i + 1;
        if (!ban__take(&cur, 8, &p))
            return ban__fail(m->error, BAN_ERR_FORMAT, "%s: offset %llu: tensor '%s' is truncated", m->path,
                             (unsigned long long)at, t->name);
        t->dtype = ban__u32(p);
        t->ndim = ban__u32(p + 4);
        if (t->dtype != BAN__F32 && t->dtype != BAN__F16)
            return ban__fail(m->error, BAN_ERR_UNSUPPORTED, "%s: offset %llu: tensor '%s' has dtype %u (known: 0 = "
                             "f32, 1 = f16)", m->path, (unsigned long long)at, t->name, t->dtype);
        if (t->ndim < 1 || t->ndim > 4)
            return ban__fail(m->error, BAN_ERR_FORMAT, "%s: offset %llu: tensor '%s' has %u dimensions (1..4)",
                             m->path, (unsigned long long)at + 4, t->name, t->ndim);
        if (!ban__take(&cur, 8ull * t->ndim + 8, &p))
            return ban__fail(m->error, BAN_ERR_FORMAT, "%s: offset %llu: tensor '%s' is truncated", m->path,
                             (unsigned long long)at, t->name);
        uint64_t count = 1;
        for (uint32_t d = 0; d < t->ndim; d++) {
            t->dims[d] = ban__u64(p + 8 * d);
            /* at most 2^60 elements, so that the byte count (4 each) cannot wrap around */
            if (t->dims[d] < 1 || t->dims[d] > ((uint64_t)1 << 40) || count > (((uint64_t)1 << 60) / t->dims[d]))
                return ban__fail(m->error, BAN_ERR_FORMAT, "%s: offset %llu: tensor '%s' dimension %u is %llu", m->path,
                                 (unsigned long long)at + 8 + 8 * d, t->name, d, (unsigned long long)t->dims[d]);
            count *= t->dims[d];
        }
        t->nbytes = count * (t->dtype == BAN__F32 ? 4 : 2);
        t->offset = ban__u64(p + 8 * t->ndim);
        if (t->offset % align)
            return ban__fail(m->error, BAN_ERR_FORMAT, "%s: offset %llu: tensor '%s' at data offset %llu is "
                             "misaligned (alignment %u)", m->path, (unsigned long long)at + 8 + 8 * t->ndim, t->name,
                             (unsigned long long)t->offset, align);
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return ban__fail(m->error, BAN_ERR_FORMAT, "%s: offset %llu: tensor '%s' (%llu bytes at data offset %llu) "
                             "runs outside the %llu-byte data section", m->path,
                             (unsigned long long)at + 8 + 8 * t->ndim, t->name, (unsigned long long)t->nbytes,
                             (unsigned long long)t->offset, (unsigned long long)data_size);
        t->data = f + data_off + t->offset;
        for (uint64_t j = 0; j < i; j++)
            if (strcmp(m->tensors[j].name, t->name) == 0)
                return ban__fail(m->error, BAN_ERR_FORMAT, "%s: tensor '%s' appears twice", m->path, t->name);
    }
    /* no two tensors share bytes */
    if (n_tensors > 1) {
        ban__tensor **order = (ban__tensor **)BAN_MALLOC(n_tensors * sizeof *order);
        if (!order) return ban__fail(m->error, BAN_ERR_NOMEM, "%s: out of memory", m->path);
        for (uint64_t i = 0; i < n_tensors; i++) order[i] = &m->tensors[i];
        qsort(order, n_tensors, sizeof *order, ban__cmp_offset);
        rc = BAN_OK;
        for (uint64_t i = 1; i < n_tensors && !rc; i++)
            if (order[i - 1]->offset + order[i - 1]->nbytes > order[i]->offset)
                rc = ban__fail(m->error, BAN_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data section",
                               m->path, order[i - 1]->name, order[i]->name);
        BAN_FREE(order);
        if (rc) return rc;
    }
    return BAN_OK;
}

/* a tensor the configuration needs: its name, where its data goes, its exact shape */
typedef struct {
    const char *name;
    const float **dst;
    int nd, dims[4];
} ban__spec;

static int ban__bind(ban_model *m, const ban__spec *sp)
{
    ban__tensor *t = NULL;
    for (size_t i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, sp->name) == 0) t = &m->tensors[i];
    if (!t) return ban__fail(m->error, BAN_ERR_FORMAT, "%s: tensor '%s' is missing", m->path, sp->name);
    int same = (int)t->ndim == sp->nd;
    for (int d = 0; same && d < sp->nd; d++) same = t->dims[d] == (uint64_t)sp->dims[d];
    if (!same) {
        char got[96] = "", exp[96] = "";
        for (uint32_t d = 0; d < t->ndim; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", d ? ", " : "", (unsigned long long)t->dims[d]);
        for (int d = 0; d < sp->nd; d++)
            snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s%d", d ? ", " : "", sp->dims[d]);
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: tensor '%s' has shape (%s), the configuration needs (%s)",
                         m->path, sp->name, got, exp);
    }
    t->bound = 1;
    if (t->dtype == BAN__F32) {
        if ((uintptr_t)t->data % 4)
            return ban__fail(m->error, BAN_ERR_ARG, "%s: tensor '%s' is not 4-byte aligned in memory (load from "
                             "an aligned buffer)", m->path, sp->name);
        *sp->dst = (const float *)(const void *)t->data;
    } else {
        *sp->dst = NULL; /* widened below, once every shape is known */
    }
    m->n_params += (size_t)(t->nbytes / (t->dtype == BAN__F32 ? 4 : 2));
    return BAN_OK;
}

static int ban__has_tensor(const ban_model *m, const char *name)
{
    for (size_t i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return 1;
    return 0;
}

/* a weight of a Linear layer (a stack of them when stack > 0), in rows (rows, cols) under its
   own name, or in panels (ceil(rows/32), cols, 32) under paneled, which sets its bit */
static ban__spec ban__weight_spec(ban_model *m, const char *name, const char *paneled, const float **dst,
                                  unsigned bit, int stack, int rows, int cols)
{
    ban__spec sp;
    m->config.linear_weights++;
    if (ban__has_tensor(m, paneled)) {
        const int p = (int)(((int64_t)rows + BAN__NR - 1) / BAN__NR);
        m->panels |= bit;
        m->config.panel_weights++;
        m->panel_padding += (size_t)(stack ? stack : 1) * (size_t)(p * BAN__NR - rows) * (size_t)cols;
        sp = stack ? (ban__spec){paneled, dst, 4, {stack, p, cols, BAN__NR}}
                   : (ban__spec){paneled, dst, 3, {p, cols, BAN__NR, 0}};
    } else {
        sp = stack ? (ban__spec){name, dst, 3, {stack, rows, cols, 0}} : (ban__spec){name, dst, 2, {rows, cols, 0, 0}};
    }
    return sp;
}

static int ban__bind_weights(ban_model *m)
{
    const ban_config *c = &m->config;
    const int V1 = c->vocab_size + 1, Ew = c->embedding_dim, Ein = Ew * c->embedding_tables, D = c->hidden_dim;
    const int kD = c->attention_rank * D, G = c->num_glimpses;
    const int Dvin = c->feature_dim + 6 * c->spatial_concat, vis = kD + (c->task == BAN_TASK_VQA ? G * D : 0);
    ban__spec spec[33 + 2 * BAN_MAX_ENCODER_LAYERS];
    char names[BAN_MAX_ENCODER_LAYERS][2][32];
    int n = 0;
#define BAN__SPEC(nm, p, a, b, cc) \
    (spec[n] = (ban__spec){nm, &m->p, (cc) ? 3 : (b) ? 2 : 1, {a, b, cc, 0}}, n++)
#define BAN__WSPEC(nm, p, bit, stack, rows, cols) \
    (spec[n] = ban__weight_spec(m, nm, nm "_panels", &m->p, bit, stack, rows, cols), n++)
    BAN__SPEC("word_embedding.weight", emb, V1, Ew, 0);
    if (c->embedding_tables == 2) BAN__SPEC("word_embedding_extra.weight", emb2, V1, Ew, 0);
    BAN__WSPEC("gru.weight_ih", gru_wih, BAN__PW_GRU_IH, 0, 3 * D, Ein);
    BAN__WSPEC("gru.weight_hh", gru_whh, BAN__PW_GRU_HH, 0, 3 * D, D);
    BAN__SPEC("gru.bias_ih", gru_bih, 3 * D, 0, 0);
    BAN__SPEC("gru.bias_hh", gru_bhh, 3 * D, 0, 0);
    BAN__WSPEC("visual.weight", vis_w, BAN__PW_VIS, 0, vis, Dvin);
    BAN__SPEC("visual.bias", vis_b, vis, 0, 0);
    BAN__WSPEC("attention.q_net.weight", att_qw, BAN__PW_ATT_Q, 0, kD, D);
    BAN__SPEC("attention.q_net.bias", att_qb, kD, 0, 0);
    BAN__SPEC("attention.h_mat", att_hmat, G, kD, 0);
    BAN__SPEC("attention.h_bias", att_hbias, G, 0, 0);
    if (c->task == BAN_TASK_VQA) {
        BAN__WSPEC("glimpse.q_net.weight", gq_w, BAN__PW_GQ, G, D, D);
        BAN__SPEC("glimpse.q_net.bias", gq_b, G, D, 0);
        BAN__WSPEC("glimpse.q_prj.weight", gp_w, BAN__PW_GP, G, D, D);
        BAN__SPEC("glimpse.q_prj.bias", gp_b, G, D, 0);
        if (c->counter_objects) {
            BAN__WSPEC("glimpse.c_prj.weight", gc_w, BAN__PW_GC, G, D, c->counter_objects + 1);
            BAN__SPEC("glimpse.c_prj.bias", gc_b, G, D, 0);
        }
        BAN__WSPEC("classifier.0.weight", cls1_w, BAN__PW_CLS1, 0, c->classifier_hidden, D);
        BAN__SPEC("classifier.0.bias", cls1_b, c->classifier_hidden, 0, 0);
        BAN__WSPEC("classifier.1.weight", cls2_w, BAN__PW_CLS2, 0, c->num_answers, c->classifier_hidden);
        BAN__SPEC("classifier.1.bias", cls2_b, c->num_answers, 0, 0);
    }
    if (c->encoder_layers) {
        int ch = 3, conv = 0;
        BAN__SPEC("encoder.input_affine", enc_affine, 2, 3, 0);
        for (int l = 0; l < c->encoder_layers; l++) {
            if (m->enc[l][0] != BAN__CONV) continue;
            const int k = m->enc[l][2], out = m->enc[l][1];
            snprintf(names[l][0], sizeof names[l][0], "encoder.conv%d.weight", conv);
            snprintf(names[l][1], sizeof names[l][1], "encoder.conv%d.bias", conv++);
            spec[n++] = (ban__spec){names[l][0], &m->enc_w[l], 4, {out, ch, k, k}};
            spec[n++] = (ban__spec){names[l][1], &m->enc_b[l], 1, {out, 0, 0, 0}};
            ch = out;
        }
    }
#undef BAN__SPEC
#undef BAN__WSPEC
    int rc;
    for (int i = 0; i < n; i++)
        if ((rc = ban__bind(m, &spec[i]))) return rc;
    m->n_params -= m->panel_padding; /* parameters, not floats stored */

    /* the counter's piecewise-linear functions: (F >= 8, S + 1) */
    const float *cw = NULL;
    ban__tensor *ct = NULL;
    if (c->task == BAN_TASK_VQA && c->counter_objects) {
        for (size_t i = 0; i < m->n_tensors; i++)
            if (strcmp(m->tensors[i].name, "counter.functions") == 0) ct = &m->tensors[i];
        if (!ct) return ban__fail(m->error, BAN_ERR_FORMAT, "%s: tensor 'counter.functions' is missing", m->path);
        if (ct->ndim != 2 || ct->dims[0] < 8 || ct->dims[0] > 64 || ct->dims[1] < 2 || ct->dims[1] > 4097)
            return ban__fail(m->error, BAN_ERR_FORMAT, "%s: tensor 'counter.functions' must be (8..64, 2..4097)",
                             m->path);
        ban__spec cs = {"counter.functions", &cw, 2, {(int)ct->dims[0], (int)ct->dims[1], 0, 0}};
        if ((rc = ban__bind(m, &cs))) return rc;
        m->counter_segments = (int)ct->dims[1] - 1;
    }
    for (size_t i = 0; i < m->n_tensors; i++)
        if (!m->tensors[i].bound)
            return ban__fail(m->error, BAN_ERR_FORMAT, "%s: tensor '%s' is not part of this configuration", m->path,
                             m->tensors[i].name);

    /* float16 tensors are widened once, into memory the model owns */
    size_t wide = 0;
    for (size_t i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].dtype == BAN__F16) wide += (size_t)m->tensors[i].nbytes / 2;
    if (wide) {
        m->converted = (float *)BAN_MALLOC(ban__mul(wide, sizeof(float)) ? wide * sizeof(float) : (size_t)-1);
        if (!m->converted) return ban__fail(m->error, BAN_ERR_NOMEM, "%s: out of memory widening float16", m->path);
        /* many half values go through a table of all 65,536 (a few times faster than decoding
           each; built only when the file holds at least as many values as the table) */
        float *table = wide >= 65536 ? (float *)BAN_MALLOC(65536 * sizeof(float)) : NULL, *out = m->converted;
        if (wide >= 65536 && !table)
            return ban__fail(m->error, BAN_ERR_NOMEM, "%s: out of memory widening float16", m->path);
        for (uint32_t h = 0; table && h < 65536; h++) table[h] = ban__half((uint16_t)h);
        for (size_t i = 0; i < m->n_tensors; i++) {
            ban__tensor *t = &m->tensors[i];
            if (t->dtype != BAN__F16) continue;
            size_t cnt = (size_t)t->nbytes / 2;
            for (size_t j = 0; j < cnt; j++) {
                const uint16_t h = (uint16_t)(t->data[2 * j] | t->data[2 * j + 1] << 8);
                out[j] = table ? table[h] : ban__half(h);
            }
            for (int s = 0; s < n; s++)
                if (strcmp(spec[s].name, t->name) == 0) *spec[s].dst = out;
            if (t == ct) cw = out;
            out += cnt;
        }
        BAN_FREE(table);
    }
    if (ct) {
        size_t cnt = (size_t)ct->dims[0] * ct->dims[1];
        m->counter_w = (float *)BAN_MALLOC(2 * cnt * sizeof(float));
        if (!m->counter_w) return ban__fail(m->error, BAN_ERR_NOMEM, "%s: out of memory", m->path);
        m->counter_csum = m->counter_w + cnt;
        for (size_t f = 0; f < ct->dims[0]; f++) {
            const size_t w1 = ct->dims[1];
            float sum = 0.0f, run = 0.0f, *w = m->counter_w + f * w1, *cs = m->counter_csum + f * w1;
            for (size_t j = 0; j < w1; j++) sum += fabsf(cw[f * w1 + j]);
            for (size_t j = 0; j < w1; j++) {
                w[j] = fabsf(cw[f * w1 + j]) / sum;
                cs[j] = run += w[j];
            }
        }
    }
    return BAN_OK;
}

static uint64_t ban__hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* a STRING_ARRAY entry of exactly `count` strings; pointers into the file */
static int ban__string_array(ban_model *m, const ban__meta *e, uint64_t count, const char ***out, uint32_t **lens)
{
    const unsigned char *p;
    uint64_t base = (uint64_t)(e->value - m->file);
    ban__cursor cur = {m->file, base, base + e->size};
    if (e->type != BAN__T_STRING_ARRAY)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' has type %u, expected a string array", m->path,
                         e->key, e->type);
    if (!ban__take(&cur, 8, &p))
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' is too short for a string array", m->path,
                         e->key);
    uint64_t n = ban__u64(p);
    if (n != count)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' holds %llu strings, the configuration needs "
                         "%llu", m->path, e->key, (unsigned long long)n, (unsigned long long)count);
    if (n > (e->size - 8) / 5) /* each string takes 5 bytes or more: believe no count its bytes cannot hold */
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' claims %llu strings in %llu bytes", m->path,
                         e->key, (unsigned long long)n, (unsigned long long)e->size);
    *out = (const char **)BAN_MALLOC((size_t)(count ? count : 1) * sizeof **out);
    if (lens) *lens = (uint32_t *)BAN_MALLOC((size_t)(count ? count : 1) * sizeof **lens);
    if (!*out || (lens && !*lens)) return ban__fail(m->error, BAN_ERR_NOMEM, "%s: out of memory", m->path);
    for (uint64_t i = 0; i < n; i++) {
        char what[96];
        int rc;
        snprintf(what, sizeof what, "'%s' string %llu", e->key, (unsigned long long)i);
        if ((rc = ban__string(m, &cur, what, &(*out)[i], lens ? &(*lens)[i] : NULL))) return rc;
    }
    if (cur.pos != cur.end)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' has %llu stray bytes after its strings",
                         m->path, e->key, (unsigned long long)(cur.end - cur.pos));
    return BAN_OK;
}

static int ban__parse_strings(ban_model *m)
{
    ban_config *c = &m->config;
    const ban__meta *e;
    int rc;
    if ((e = ban__find_meta(m, "tokenizer.words"))) {
        if ((rc = ban__string_array(m, e, (uint64_t)c->vocab_size, &m->words, &m->word_len))) return rc;
        size_t cap = 2;
        while (cap < 2 * (size_t)c->vocab_size) cap <<= 1;
        m->word_hash = (int32_t *)BAN_MALLOC(cap * sizeof *m->word_hash);
        if (!m->word_hash) return ban__fail(m->error, BAN_ERR_NOMEM, "%s: out of memory", m->path);
        memset(m->word_hash, 0xff, cap * sizeof *m->word_hash);
        m->hash_mask = cap - 1;
        for (int id = 0; id < c->vocab_size; id++) {
            size_t h = (size_t)ban__hash(m->words[id], m->word_len[id]) & m->hash_mask;
            while (m->word_hash[h] >= 0) {
                int other = m->word_hash[h];
                if (m->word_len[other] == m->word_len[id] && !memcmp(m->words[other], m->words[id], m->word_len[id]))
                    return ban__fail(m->error, BAN_ERR_FORMAT, "%s: tokenizer.words: '%.64s' is both word %d and %d",
                                     m->path, m->words[id], other, id);
                h = (h + 1) & m->hash_mask;
            }
            m->word_hash[h] = id;
            if ((int)m->word_len[id] > m->max_word_bytes) m->max_word_bytes = (int)m->word_len[id];
        }
        c->has_vocabulary = 1;
    }
    if ((e = ban__find_meta(m, "answers.labels"))) {
        if (c->task != BAN_TASK_VQA)
            return ban__fail(m->error, BAN_ERR_FORMAT, "%s: a grounding model has no answers", m->path);
        if ((rc = ban__string_array(m, e, (uint64_t)c->num_answers, &m->answers, NULL))) return rc;
        c->has_answers = 1;
    }
    return BAN_OK;
}

static int ban__load(ban_model *m)
{
    const uint16_t probe = 1;
    int rc;
    if (*(const unsigned char *)&probe != 1)
        return ban__fail(m->error, BAN_ERR_UNSUPPORTED, "%s: ban.h maps little-endian files and needs a "
                         "little-endian machine", m->path);
    if ((rc = ban__parse_file(m)) || (rc = ban__parse_config(m)) || (rc = ban__bind_weights(m)) ||
        (rc = ban__parse_strings(m)))
        return rc;
    return BAN_OK;
}

static ban_model *ban__new_model(const char *path)
{
    ban_model *m = (ban_model *)BAN_MALLOC(sizeof *m);
    if (!m) return NULL;
    memset(m, 0, sizeof *m);
    snprintf(m->path, sizeof m->path, "%s", path);
    return m;
}

BANDEF int ban_model_load_memory(const void *data, size_t size, ban_model **out)
{
    if (!out) return BAN_ERR_ARG;
    ban_model *m = *out = ban__new_model("<memory>");
    if (!m) return BAN_ERR_NOMEM;
    if (!data) return ban__fail(m->error, BAN_ERR_ARG, "<memory>: NULL buffer");
    if ((uint64_t)size > BAN_MAX_FILE_SIZE)
        return ban__fail(m->error, BAN_ERR_FORMAT, "<memory>: %zu bytes exceed BAN_MAX_FILE_SIZE", size);
    m->file = (const unsigned char *)data;
    m->file_size = size;
    return ban__load(m);
}

BANDEF int ban_model_load(const char *path, ban_model **out)
{
    if (!out) return BAN_ERR_ARG;
    ban_model *m = *out = ban__new_model(path ? path : "(null)");
    if (!m) return BAN_ERR_NOMEM;
    if (!path) return ban__fail(m->error, BAN_ERR_ARG, "NULL path");
#ifndef BAN_NO_MMAP
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ban__fail(m->error, BAN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ban__fail(m->error, BAN_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > BAN_MAX_FILE_SIZE || st.st_size < BAN__HEADER) {
        close(fd);
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: %lld bytes: %s", path, (long long)st.st_size,
                         st.st_size < BAN__HEADER ? "too short for the header" : "exceeds BAN_MAX_FILE_SIZE");
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return ban__fail(m->error, BAN_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    m->file = (const unsigned char *)map;
    m->file_size = (size_t)st.st_size;
    m->mapped = 1;
#else
    FILE *fp = fopen(path, "rb");
    if (!fp) return ban__fail(m->error, BAN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    long n = (fseek(fp, 0, SEEK_END) == 0) ? ftell(fp) : -1;
    if (n < BAN__HEADER || (uint64_t)n > BAN_MAX_FILE_SIZE || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: unreadable size or %ld bytes out of range", path, n);
    }
    m->owned = (unsigned char *)BAN_MALLOC((size_t)n);
    if (!m->owned) { fclose(fp); return ban__fail(m->error, BAN_ERR_NOMEM, "%s: out of memory", path); }
    size_t got = fread(m->owned, 1, (size_t)n, fp);
    fclose(fp);
    if (got != (size_t)n) return ban__fail(m->error, BAN_ERR_IO, "%s: short read", path);
    m->file = m->owned;
    m->file_size = (size_t)n;
#endif
    return ban__load(m);
}

BANDEF void ban_model_free(ban_model *m)
{
    if (!m) return;
#ifndef BAN_NO_MMAP
    if (m->mapped) munmap((void *)(uintptr_t)m->file, m->file_size);
#endif
    BAN_FREE(m->owned);
    BAN_FREE(m->meta);
    BAN_FREE(m->tensors);
    BAN_FREE(m->converted);
    BAN_FREE(m->counter_w);
    BAN_FREE((void *)m->words);
    BAN_FREE(m->word_len);
    BAN_FREE(m->word_hash);
    BAN_FREE((void *)m->answers);
    BAN_FREE(m);
}

/* ---- context ------------------------------------------------------------------ */

typedef struct {
    size_t size;
    int overflow;
} ban__plan;

/* reserve n1*n2*n3 elements of `elem` bytes, 64-byte aligned; returns the offset */
static size_t ban__reserve(ban__plan *p, size_t elem, size_t n1, size_t n2, size_t n3)
{
    size_t bytes = ban__mul(ban__mul(ban__mul(elem, n1), n2), n3);
    size_t at = (p->size + BAN__ALIGN - 1) & ~(size_t)(BAN__ALIGN - 1);
    if ((elem && n1 && n2 && n3 && !bytes) || at < p->size || bytes > (size_t)-1 - at - BAN__ALIGN) p->overflow = 1;
    else p->size = at + bytes;
    return at;
}

BANDEF int ban_ctx_create(const ban_model *m, const ban_limits *limits, ban_ctx **out)
{
    if (!out) return BAN_ERR_ARG;
    *out = NULL;
    ban_ctx *c = (ban_ctx *)BAN_MALLOC(sizeof *c);
    if (!c) return BAN_ERR_NOMEM;
    memset(c, 0, sizeof *c);
    *out = c;
    if (!m) return ban__fail(c->error, BAN_ERR_ARG, "NULL model");
    const ban_config *cf = &m->config;
    c->model = m;
    ban_limits lim = {0, 0, 0, 0, 0};
    if (limits) lim = *limits;
    if (!lim.max_batch) lim.max_batch = 1;
    const int grid = cf->grid_height * cf->grid_width;
    if (!lim.max_boxes) lim.max_boxes = grid ? grid : 100;
    if (!lim.max_tokens) lim.max_tokens = cf->question_length;
    if (!lim.max_entities) lim.max_entities = cf->task == BAN_TASK_GROUNDING ? 16 : 1;
    if (!lim.threads) lim.threads = ban__processors();
    c->lim = lim;
    if (lim.max_batch < 1 || lim.max_batch > BAN_MAX_BATCH || lim.max_boxes < 1 || lim.max_boxes > BAN_MAX_BOXES ||
        lim.max_tokens < 1 || lim.max_tokens > BAN_MAX_TOKENS || lim.max_entities < 1 ||
        lim.max_entities > BAN_MAX_ENTITIES)
        return ban__fail(c->error, BAN_ERR_ARG, "limits (batch %d, boxes %d, tokens %d, entities %d) outside "
                         "1..(%d, %d, %d, %d)", lim.max_batch, lim.max_boxes, lim.max_tokens, lim.max_entities,
                         BAN_MAX_BATCH, BAN_MAX_BOXES, BAN_MAX_TOKENS, BAN_MAX_ENTITIES);
    if (lim.threads < 1 || lim.threads > BAN_MAX_THREADS)
        return ban__fail(c->error, BAN_ERR_ARG, "limits: %d threads outside 1..%d", lim.threads, BAN_MAX_THREADS);
    if (grid && lim.max_boxes < grid)
        return ban__fail(c->error, BAN_ERR_ARG, "limits: %d boxes, but the image encoder makes %d", lim.max_boxes, grid);
    const size_t Bm = (size_t)lim.max_batch, Km = (size_t)lim.max_boxes, Em = (size_t)lim.max_entities;
    const int vqa = cf->task == BAN_TASK_VQA;
    size_t Pm = (size_t)lim.max_tokens;
    if (vqa && !cf->question_masking && Pm < (size_t)cf->question_length) Pm = (size_t)cf->question_length;
    c->max_pos = (int)Pm;
    const size_t D = (size_t)cf->hidden_dim, kD = (size_t)cf->attention_rank * D, G = (size_t)cf->num_glimpses;
    const size_t Ein = (size_t)cf->embedding_dim * cf->embedding_tables, O = (size_t)cf->counter_objects;
    const size_t Dvin = (size_t)cf->feature_dim + 6 * (size_t)cf->spatial_concat;
    const size_t vis = kD + (vqa ? G * D : 0), Q = vqa ? Pm : (Pm > Em ? Pm : Em), H = (size_t)cf->classifier_hidden;
    const size_t F = sizeof(float);
    ban__plan p = {0, 0};
    size_t o_emb = ban__reserve(&p, F, Bm * Pm, Ein, 1);
    size_t o_gx = ban__reserve(&p, F, Bm * Pm, 3 * D, 1);
    size_t o_gh = ban__reserve(&p, F, Bm, 3 * D, 1);
    size_t o_hid = ban__reserve(&p, F, Bm, D, 1);
    size_t o_q = ban__reserve(&p, F, Bm * Pm, D, 1);
    size_t o_qe = ban__reserve(&p, F, vqa ? 1 : Bm * Em, D, 1);
    size_t o_qa = ban__reserve(&p, F, Bm * Q, kD, 1);
    size_t o_qs = ban__reserve(&p, F, (G * Q + BAN__NR - 1) / BAN__NR * BAN__NR, kD, 1); /* panels, maybe */
    size_t o_vp = ban__reserve(&p, F, Bm * Km, Dvin, 1);
    size_t o_vj = ban__reserve(&p, F, Bm * Km, vis, 1);
    size_t o_at = ban__reserve(&p, F, Km, G * Q, 1);
    size_t o_att = ban__reserve(&p, F, Bm * G, Km, vqa ? Pm : 1);
    size_t o_bs = ban__reserve(&p, F, Bm * G, Km, 1);
    size_t o_qg = ban__reserve(&p, F, vqa ? Bm * Pm : 1, D, 1);
    size_t o_ch = ban__reserve(&p, F, Pm, D, 1);
    size_t o_att_t = ban__reserve(&p, F, Pm, Km, 1);
    size_t o_jo = ban__reserve(&p, F, Bm, D, 1);
    size_t o_pr = ban__reserve(&p, F, Bm, D > H ? D : H, 1);
    size_t o_cf = ban__reserve(&p, F, Bm, O + 1, 1);
    size_t o_ct = ban__reserve(&p, F, 7 * O * O + 4 * O + 1, 1, 1);
    size_t o_tok = ban__reserve(&p, sizeof(int32_t), Bm, Pm, 1);
    size_t o_nt = ban__reserve(&p, sizeof(int), Bm, 4, 1);
    size_t o_br = ban__reserve(&p, sizeof(int), Bm, Km, 1);
    const int enc = cf->encoder_layers != 0;
    size_t o_ea = ban__reserve(&p, F, enc ? Bm : 0, m->enc_act, 1);
    size_t o_eb = ban__reserve(&p, F, enc ? Bm : 0, m->enc_act, 1);
    size_t o_ec = ban__reserve(&p, F, enc ? Bm : 0, m->enc_col, 1);
    size_t o_ef = ban__reserve(&p, F, enc ? Bm : 0, (size_t)grid, (size_t)cf->feature_dim);
    size_t o_es = ban__reserve(&p, F, enc ? Bm : 0, (size_t)grid, 6);
    c->word_cap = (size_t)m->max_word_bytes + 8;
    size_t o_w = ban__reserve(&p, 1, c->word_cap, 1, 1);
    if (p.overflow || p.size > ((size_t)1 << 40))
        return ban__fail(c->error, BAN_ERR_ARG, "limits (batch %d, boxes %d, tokens %d, entities %d) need more "
                         "memory than a context may take", lim.max_batch, lim.max_boxes, lim.max_tokens,
                         lim.max_entities);
    c->block = (unsigned char *)BAN_MALLOC(p.size + BAN__ALIGN);
    if (!c->block)
        return ban__fail(c->error, BAN_ERR_NOMEM, "out of memory: a context for these limits takes %zu MB",
                         p.size >> 20);
    unsigned char *base = c->block + ((BAN__ALIGN - (uintptr_t)c->block % BAN__ALIGN) % BAN__ALIGN);
    c->emb = (float *)(void *)(base + o_emb);
    c->gates_x = (float *)(void *)(base + o_gx);
    c->gates_h = (float *)(void *)(base + o_gh);
    c->hidden = (float *)(void *)(base + o_hid);
    c->q = (float *)(void *)(base + o_q);
    c->q_ent = (float *)(void *)(base + o_qe);
    c->q_att = (float *)(void *)(base + o_qa);
    c->q_scaled = (float *)(void *)(base + o_qs);
    c->vpack = (float *)(void *)(base + o_vp);
    c->vproj = (float *)(void *)(base + o_vj);
    c->att_tmp = (float *)(void *)(base + o_at);
    c->att = (float *)(void *)(base + o_att);
    c->box_score = (float *)(void *)(base + o_bs);
    c->q_glimpse = (float *)(void *)(base + o_qg);
    c->chain = (float *)(void *)(base + o_ch);
    c->att_t = (float *)(void *)(base + o_att_t);
    c->joint = (float *)(void *)(base + o_jo);
    c->proj = (float *)(void *)(base + o_pr);
    c->count_feat = (float *)(void *)(base + o_cf);
    c->counter_tmp = (float *)(void *)(base + o_ct);
    c->tok = (int32_t *)(void *)(base + o_tok);
    c->n_tok = (int *)(void *)(base + o_nt);
    c->n_box = c->n_tok + Bm;
    c->n_rows = c->n_box + Bm;
    c->row0 = c->n_rows + Bm;
    c->box_row = (int *)(void *)(base + o_br);
    c->word = (char *)(base + o_w);
    c->enc_a = (float *)(void *)(base + o_ea);
    c->enc_b = (float *)(void *)(base + o_eb);
    c->enc_col = (float *)(void *)(base + o_ec);
    c->enc_feat = (float *)(void *)(base + o_ef);
    c->enc_spat = (float *)(void *)(base + o_es);
    c->isa = ban__isa();
#if BAN__THREADS
    if (m->panels && lim.threads > 1 && !(c->pool = ban__pool_new(lim.threads - 1)))
        return ban__fail(c->error, BAN_ERR_NOMEM, "out of memory for %d threads", lim.threads);
#endif
    return BAN_OK;
}

BANDEF void ban_ctx_free(ban_ctx *c)
{
    if (!c) return;
    ban__pool_free(c->pool);
    BAN_FREE(c->block);
    BAN_FREE(c);
}

/* ---- tokenizer -------------------------------------------------------------------- */
/* The reference's Dictionary.tokenize: str.lower(); delete ',' and '?'; "'s" -> " 's";
   str.split(); unknown words -> unknown_id. Text is UTF-8; lower() and split() follow
   Python 3's Unicode tables, final sigma included. */

/* Generated by tools/gen_unicode_lower.py from Python 3.11.2 (Unicode 14.0.0): 181 lowercase runs, 427 case-ignorable and 149 cased ranges. */
static const int32_t ban__lower_runs[][4] = {
    {0x41,26,1,32}, {0xC0,23,1,32}, {0xD8,7,1,32}, {0x100,24,2,1},
    {0x132,3,2,1}, {0x139,8,2,1}, {0x14A,23,2,1}, {0x178,1,1,-121},
    {0x179,3,2,1}, {0x181,1,1,210}, {0x182,2,2,1}, {0x186,1,1,206},
    {0x187,1,1,1}, {0x189,2,1,205}, {0x18B,1,1,1}, {0x18E,1,1,79},
    {0x18F,1,1,202}, {0x190,1,1,203}, {0x191,1,1,1}, {0x193,1,1,205},
    {0x194,1,1,207}, {0x196,1,1,211}, {0x197,1,1,209}, {0x198,1,1,1},
    {0x19C,1,1,211}, {0x19D,1,1,213}, {0x19F,1,1,214}, {0x1A0,3,2,1},
    {0x1A6,1,1,218}, {0x1A7,1,1,1}, {0x1A9,1,1,218}, {0x1AC,1,1,1},
    {0x1AE,1,1,218}, {0x1AF,1,1,1}, {0x1B1,2,1,217}, {0x1B3,2,2,1},
    {0x1B7,1,1,219}, {0x1B8,1,1,1}, {0x1BC,1,1,1}, {0x1C4,1,1,2},
    {0x1C5,1,1,1}, {0x1C7,1,1,2}, {0x1C8,1,1,1}, {0x1CA,1,1,2},
    {0x1CB,9,2,1}, {0x1DE,9,2,1}, {0x1F1,1,1,2}, {0x1F2,2,2,1},
    {0x1F6,1,1,-97}, {0x1F7,1,1,-56}, {0x1F8,20,2,1}, {0x220,1,1,-130},
    {0x222,9,2,1}, {0x23A,1,1,10795}, {0x23B,1,1,1}, {0x23D,1,1,-163},
    {0x23E,1,1,10792}, {0x241,1,1,1}, {0x243,1,1,-195}, {0x244,1,1,69},
    {0x245,1,1,71}, {0x246,5,2,1}, {0x370,2,2,1}, {0x376,1,1,1},
    {0x37F,1,1,116}, {0x386,1,1,38}, {0x388,3,1,37}, {0x38C,1,1,64},
    {0x38E,2,1,63}, {0x391,17,1,32}, {0x3A3,9,1,32}, {0x3CF,1,1,8},
    {0x3D8,12,2,1}, {0x3F4,1,1,-60}, {0x3F7,1,1,1}, {0x3F9,1,1,-7},
    {0x3FA,1,1,1}, {0x3FD,3,1,-130}, {0x400,16,1,80}, {0x410,32,1,32},
    {0x460,17,2,1}, {0x48A,27,2,1}, {0x4C0,1,1,15}, {0x4C1,7,2,1},
    {0x4D0,48,2,1}, {0x531,38,1,48}, {0x10A0,38,1,7264}, {0x10C7,1,1,7264},
    {0x10CD,1,1,7264}, {0x13A0,80,1,38864}, {0x13F0,6,1,8}, {0x1C90,43,1,-3008},
    {0x1CBD,3,1,-3008}, {0x1E00,75,2,1}, {0x1E9E,1,1,-7615}, {0x1EA0,48,2,1},
    {0x1F08,8,1,-8}, {0x1F18,6,1,-8}, {0x1F28,8,1,-8}, {0x1F38,8,1,-8},
    {0x1F48,6,1,-8}, {0x1F59,4,2,-8}, {0x1F68,8,1,-8}, {0x1F88,8,1,-8},
    {0x1F98,8,1,-8}, {0x1FA8,8,1,-8}, {0x1FB8,2,1,-8}, {0x1FBA,2,1,-74},
    {0x1FBC,1,1,-9}, {0x1FC8,4,1,-86}, {0x1FCC,1,1,-9}, {0x1FD8,2,1,-8},
    {0x1FDA,2,1,-100}, {0x1FE8,2,1,-8}, {0x1FEA,2,1,-112}, {0x1FEC,1,1,-7},
    {0x1FF8,2,1,-128}, {0x1FFA,2,1,-126}, {0x1FFC,1,1,-9}, {0x2126,1,1,-7517},
    {0x212A,1,1,-8383}, {0x212B,1,1,-8262}, {0x2132,1,1,28}, {0x2160,16,1,16},
    {0x2183,1,1,1}, {0x24B6,26,1,26}, {0x2C00,48,1,48}, {0x2C60,1,1,1},
    {0x2C62,1,1,-10743}, {0x2C63,1,1,-3814}, {0x2C64,1,1,-10727}, {0x2C67,3,2,1},
    {0x2C6D,1,1,-10780}, {0x2C6E,1,1,-10749}, {0x2C6F,1,1,-10783}, {0x2C70,1,1,-10782},
    {0x2C72,1,1,1}, {0x2C75,1,1,1}, {0x2C7E,2,1,-10815}, {0x2C80,50,2,1},
    {0x2CEB,2,2,1}, {0x2CF2,1,1,1}, {0xA640,23,2,1}, {0xA680,14,2,1},
    {0xA722,7,2,1}, {0xA732,31,2,1}, {0xA779,2,2,1}, {0xA77D,1,1,-35332},
    {0xA77E,5,2,1}, {0xA78B,1,1,1}, {0xA78D,1,1,-42280}, {0xA790,2,2,1},
    {0xA796,10,2,1}, {0xA7AA,1,1,-42308}, {0xA7AB,1,1,-42319}, {0xA7AC,1,1,-42315},
    {0xA7AD,1,1,-42305}, {0xA7AE,1,1,-42308}, {0xA7B0,1,1,-42258}, {0xA7B1,1,1,-42282},
    {0xA7B2,1,1,-42261}, {0xA7B3,1,1,928}, {0xA7B4,8,2,1}, {0xA7C4,1,1,-48},
    {0xA7C5,1,1,-42307}, {0xA7C6,1,1,-35384}, {0xA7C7,2,2,1}, {0xA7D0,1,1,1},
    {0xA7D6,2,2,1}, {0xA7F5,1,1,1}, {0xFF21,26,1,32}, {0x10400,40,1,40},
    {0x104B0,36,1,40}, {0x10570,11,1,39}, {0x1057C,15,1,39}, {0x1058C,7,1,39},
    {0x10594,2,1,39}, {0x10C80,51,1,64}, {0x118A0,32,1,32}, {0x16E40,32,1,32},
    {0x1E900,34,1,34},
};
static const int32_t ban__case_ignorable[][2] = {
    {0x27,0x27}, {0x2E,0x2E}, {0x3A,0x3A}, {0x5E,0x5E}, {0x60,0x60}, {0xA8,0xA8},
    {0xAD,0xAD}, {0xAF,0xAF}, {0xB4,0xB4}, {0xB7,0xB8}, {0x2B0,0x36F}, {0x374,0x375},
    {0x37A,0x37A}, {0x384,0x385}, {0x387,0x387}, {0x483,0x489}, {0x559,0x559}, {0x55F,0x55F},
    {0x591,0x5BD}, {0x5BF,0x5BF}, {0x5C1,0x5C2}, {0x5C4,0x5C5}, {0x5C7,0x5C7}, {0x5F4,0x5F4},
    {0x600,0x605}, {0x610,0x61A}, {0x61C,0x61C}, {0x640,0x640}, {0x64B,0x65F}, {0x670,0x670},
    {0x6D6,0x6DD}, {0x6DF,0x6E8}, {0x6EA,0x6ED}, {0x70F,0x70F}, {0x711,0x711}, {0x730,0x74A},
    {0x7A6,0x7B0}, {0x7EB,0x7F5}, {0x7FA,0x7FA}, {0x7FD,0x7FD}, {0x816,0x82D}, {0x859,0x85B},
    {0x888,0x888}, {0x890,0x891}, {0x898,0x89F}, {0x8C9,0x902}, {0x93A,0x93A}, {0x93C,0x93C},
    {0x941,0x948}, {0x94D,0x94D}, {0x951,0x957}, {0x962,0x963}, {0x971,0x971}, {0x981,0x981},
    {0x9BC,0x9BC}, {0x9C1,0x9C4}, {0x9CD,0x9CD}, {0x9E2,0x9E3}, {0x9FE,0x9FE}, {0xA01,0xA02},
    {0xA3C,0xA3C}, {0xA41,0xA42}, {0xA47,0xA48}, {0xA4B,0xA4D}, {0xA51,0xA51}, {0xA70,0xA71},
    {0xA75,0xA75}, {0xA81,0xA82}, {0xABC,0xABC}, {0xAC1,0xAC5}, {0xAC7,0xAC8}, {0xACD,0xACD},
    {0xAE2,0xAE3}, {0xAFA,0xAFF}, {0xB01,0xB01}, {0xB3C,0xB3C}, {0xB3F,0xB3F}, {0xB41,0xB44},
    {0xB4D,0xB4D}, {0xB55,0xB56}, {0xB62,0xB63}, {0xB82,0xB82}, {0xBC0,0xBC0}, {0xBCD,0xBCD},
    {0xC00,0xC00}, {0xC04,0xC04}, {0xC3C,0xC3C}, {0xC3E,0xC40}, {0xC46,0xC48}, {0xC4A,0xC4D},
    {0xC55,0xC56}, {0xC62,0xC63}, {0xC81,0xC81}, {0xCBC,0xCBC}, {0xCBF,0xCBF}, {0xCC6,0xCC6},
    {0xCCC,0xCCD}, {0xCE2,0xCE3}, {0xD00,0xD01}, {0xD3B,0xD3C}, {0xD41,0xD44}, {0xD4D,0xD4D},
    {0xD62,0xD63}, {0xD81,0xD81}, {0xDCA,0xDCA}, {0xDD2,0xDD4}, {0xDD6,0xDD6}, {0xE31,0xE31},
    {0xE34,0xE3A}, {0xE46,0xE4E}, {0xEB1,0xEB1}, {0xEB4,0xEBC}, {0xEC6,0xEC6}, {0xEC8,0xECD},
    {0xF18,0xF19}, {0xF35,0xF35}, {0xF37,0xF37}, {0xF39,0xF39}, {0xF71,0xF7E}, {0xF80,0xF84},
    {0xF86,0xF87}, {0xF8D,0xF97}, {0xF99,0xFBC}, {0xFC6,0xFC6}, {0x102D,0x1030}, {0x1032,0x1037},
    {0x1039,0x103A}, {0x103D,0x103E}, {0x1058,0x1059}, {0x105E,0x1060}, {0x1071,0x1074}, {0x1082,0x1082},
    {0x1085,0x1086}, {0x108D,0x108D}, {0x109D,0x109D}, {0x10FC,0x10FC}, {0x135D,0x135F}, {0x1712,0x1714},
    {0x1732,0x1733}, {0x1752,0x1753}, {0x1772,0x1773}, {0x17B4,0x17B5}, {0x17B7,0x17BD}, {0x17C6,0x17C6},
    {0x17C9,0x17D3}, {0x17D7,0x17D7}, {0x17DD,0x17DD}, {0x180B,0x180F}, {0x1843,0x1843}, {0x1885,0x1886},
    {0x18A9,0x18A9}, {0x1920,0x1922}, {0x1927,0x1928}, {0x1932,0x1932}, {0x1939,0x193B}, {0x1A17,0x1A18},
    {0x1A1B,0x1A1B}, {0x1A56,0x1A56}, {0x1A58,0x1A5E}, {0x1A60,0x1A60}, {0x1A62,0x1A62}, {0x1A65,0x1A6C},
    {0x1A73,0x1A7C}, {0x1A7F,0x1A7F}, {0x1AA7,0x1AA7}, {0x1AB0,0x1ACE}, {0x1B00,0x1B03}, {0x1B34,0x1B34},
    {0x1B36,0x1B3A}, {0x1B3C,0x1B3C}, {0x1B42,0x1B42}, {0x1B6B,0x1B73}, {0x1B80,0x1B81}, {0x1BA2,0x1BA5},
    {0x1BA8,0x1BA9}, {0x1BAB,0x1BAD}, {0x1BE6,0x1BE6}, {0x1BE8,0x1BE9}, {0x1BED,0x1BED}, {0x1BEF,0x1BF1},
    {0x1C2C,0x1C33}, {0x1C36,0x1C37}, {0x1C78,0x1C7D}, {0x1CD0,0x1CD2}, {0x1CD4,0x1CE0}, {0x1CE2,0x1CE8},
    {0x1CED,0x1CED}, {0x1CF4,0x1CF4}, {0x1CF8,0x1CF9}, {0x1D2C,0x1D6A}, {0x1D78,0x1D78}, {0x1D9B,0x1DFF},
    {0x1FBD,0x1FBD}, {0x1FBF,0x1FC1}, {0x1FCD,0x1FCF}, {0x1FDD,0x1FDF}, {0x1FED,0x1FEF}, {0x1FFD,0x1FFE},
    {0x200B,0x200F}, {0x2018,0x2019}, {0x2024,0x2024}, {0x2027,0x2027}, {0x202A,0x202E}, {0x2060,0x2064},
    {0x2066,0x206F}, {0x2071,0x2071}, {0x207F,0x207F}, {0x2090,0x209C}, {0x20D0,0x20F0}, {0x2C7C,0x2C7D},
    {0x2CEF,0x2CF1}, {0x2D6F,0x2D6F}, {0x2D7F,0x2D7F}, {0x2DE0,0x2DFF}, {0x2E2F,0x2E2F}, {0x3005,0x3005},
    {0x302A,0x302D}, {0x3031,0x3035}, {0x303B,0x303B}, {0x3099,0x309E}, {0x30FC,0x30FE}, {0xA015,0xA015},
    {0xA4F8,0xA4FD}, {0xA60C,0xA60C}, {0xA66F,0xA672}, {0xA674,0xA67D}, {0xA67F,0xA67F}, {0xA69C,0xA69F},
    {0xA6F0,0xA6F1}, {0xA700,0xA721}, {0xA770,0xA770}, {0xA788,0xA78A}, {0xA7F2,0xA7F4}, {0xA7F8,0xA7F9},
    {0xA802,0xA802}, {0xA806,0xA806}, {0xA80B,0xA80B}, {0xA825,0xA826}, {0xA82C,0xA82C}, {0xA8C4,0xA8C5},
    {0xA8E0,0xA8F1}, {0xA8FF,0xA8FF}, {0xA926,0xA92D}, {0xA947,0xA951}, {0xA980,0xA982}, {0xA9B3,0xA9B3},
    {0xA9B6,0xA9B9}, {0xA9BC,0xA9BD}, {0xA9CF,0xA9CF}, {0xA9E5,0xA9E6}, {0xAA29,0xAA2E}, {0xAA31,0xAA32},
    {0xAA35,0xAA36}, {0xAA43,0xAA43}, {0xAA4C,0xAA4C}, {0xAA70,0xAA70}, {0xAA7C,0xAA7C}, {0xAAB0,0xAAB0},
    {0xAAB2,0xAAB4}, {0xAAB7,0xAAB8}, {0xAABE,0xAABF}, {0xAAC1,0xAAC1}, {0xAADD,0xAADD}, {0xAAEC,0xAAED},
    {0xAAF3,0xAAF4}, {0xAAF6,0xAAF6}, {0xAB5B,0xAB5F}, {0xAB69,0xAB6B}, {0xABE5,0xABE5}, {0xABE8,0xABE8},
    {0xABED,0xABED}, {0xFB1E,0xFB1E}, {0xFBB2,0xFBC2}, {0xFE00,0xFE0F}, {0xFE13,0xFE13}, {0xFE20,0xFE2F},
    {0xFE52,0xFE52}, {0xFE55,0xFE55}, {0xFEFF,0xFEFF}, {0xFF07,0xFF07}, {0xFF0E,0xFF0E}, {0xFF1A,0xFF1A},
    {0xFF3E,0xFF3E}, {0xFF40,0xFF40}, {0xFF70,0xFF70}, {0xFF9E,0xFF9F}, {0xFFE3,0xFFE3}, {0xFFF9,0xFFFB},
    {0x101FD,0x101FD}, {0x102E0,0x102E0}, {0x10376,0x1037A}, {0x10780,0x10785}, {0x10787,0x107B0}, {0x107B2,0x107BA},
    {0x10A01,0x10A03}, {0x10A05,0x10A06}, {0x10A0C,0x10A0F}, {0x10A38,0x10A3A}, {0x10A3F,0x10A3F}, {0x10AE5,0x10AE6},
    {0x10D24,0x10D27}, {0x10EAB,0x10EAC}, {0x10F46,0x10F50}, {0x10F82,0x10F85}, {0x11001,0x11001}, {0x11038,0x11046},
    {0x11070,0x11070}, {0x11073,0x11074}, {0x1107F,0x11081}, {0x110B3,0x110B6}, {0x110B9,0x110BA}, {0x110BD,0x110BD},
    {0x110C2,0x110C2}, {0x110CD,0x110CD}, {0x11100,0x11102}, {0x11127,0x1112B}, {0x1112D,0x11134}, {0x11173,0x11173},
    {0x11180,0x11181}, {0x111B6,0x111BE}, {0x111C9,0x111CC}, {0x111CF,0x111CF}, {0x1122F,0x11231}, {0x11234,0x11234},
    {0x11236,0x11237}, {0x1123E,0x1123E}, {0x112DF,0x112DF}, {0x112E3,0x112EA}, {0x11300,0x11301}, {0x1133B,0x1133C},
    {0x11340,0x11340}, {0x11366,0x1136C}, {0x11370,0x11374}, {0x11438,0x1143F}, {0x11442,0x11444}, {0x11446,0x11446},
    {0x1145E,0x1145E}, {0x114B3,0x114B8}, {0x114BA,0x114BA}, {0x114BF,0x114C0}, {0x114C2,0x114C3}, {0x115B2,0x115B5},
    {0x115BC,0x115BD}, {0x115BF,0x115C0}, {0x115DC,0x115DD}, {0x11633,0x1163A}, {0x1163D,0x1163D}, {0x1163F,0x11640},
    {0x116AB,0x116AB}, {0x116AD,0x116AD}, {0x116B0,0x116B5}, {0x116B7,0x116B7}, {0x1171D,0x1171F}, {0x11722,0x11725},
    {0x11727,0x1172B}, {0x1182F,0x11837}, {0x11839,0x1183A}, {0x1193B,0x1193C}, {0x1193E,0x1193E}, {0x11943,0x11943},
    {0x119D4,0x119D7}, {0x119DA,0x119DB}, {0x119E0,0x119E0}, {0x11A01,0x11A0A}, {0x11A33,0x11A38}, {0x11A3B,0x11A3E},
    {0x11A47,0x11A47}, {0x11A51,0x11A56}, {0x11A59,0x11A5B}, {0x11A8A,0x11A96}, {0x11A98,0x11A99}, {0x11C30,0x11C36},
    {0x11C38,0x11C3D}, {0x11C3F,0x11C3F}, {0x11C92,0x11CA7}, {0x11CAA,0x11CB0}, {0x11CB2,0x11CB3}, {0x11CB5,0x11CB6},
    {0x11D31,0x11D36}, {0x11D3A,0x11D3A}, {0x11D3C,0x11D3D}, {0x11D3F,0x11D45}, {0x11D47,0x11D47}, {0x11D90,0x11D91},
    {0x11D95,0x11D95}, {0x11D97,0x11D97}, {0x11EF3,0x11EF4}, {0x13430,0x13438}, {0x16AF0,0x16AF4}, {0x16B30,0x16B36},
    {0x16B40,0x16B43}, {0x16F4F,0x16F4F}, {0x16F8F,0x16F9F}, {0x16FE0,0x16FE1}, {0x16FE3,0x16FE4}, {0x1AFF0,0x1AFF3},
    {0x1AFF5,0x1AFFB}, {0x1AFFD,0x1AFFE}, {0x1BC9D,0x1BC9E}, {0x1BCA0,0x1BCA3}, {0x1CF00,0x1CF2D}, {0x1CF30,0x1CF46},
    {0x1D167,0x1D169}, {0x1D173,0x1D182}, {0x1D185,0x1D18B}, {0x1D1AA,0x1D1AD}, {0x1D242,0x1D244}, {0x1DA00,0x1DA36},
    {0x1DA3B,0x1DA6C}, {0x1DA75,0x1DA75}, {0x1DA84,0x1DA84}, {0x1DA9B,0x1DA9F}, {0x1DAA1,0x1DAAF}, {0x1E000,0x1E006},
    {0x1E008,0x1E018}, {0x1E01B,0x1E021}, {0x1E023,0x1E024}, {0x1E026,0x1E02A}, {0x1E130,0x1E13D}, {0x1E2AE,0x1E2AE},
    {0x1E2EC,0x1E2EF}, {0x1E8D0,0x1E8D6}, {0x1E944,0x1E94B}, {0x1F3FB,0x1F3FF}, {0xE0001,0xE0001}, {0xE0020,0xE007F},
    {0xE0100,0xE01EF},
};
static const int32_t ban__cased[][2] = {
    {0x41,0x5A}, {0x61,0x7A}, {0xAA,0xAA}, {0xB5,0xB5}, {0xBA,0xBA}, {0xC0,0xD6},
    {0xD8,0xF6}, {0xF8,0x1BA}, {0x1BC,0x1BF}, {0x1C4,0x293}, {0x295,0x2AF}, {0x370,0x373},
    {0x376,0x377}, {0x37B,0x37D}, {0x37F,0x37F}, {0x386,0x386}, {0x388,0x38A}, {0x38C,0x38C},
    {0x38E,0x3A1}, {0x3A3,0x3F5}, {0x3F7,0x481}, {0x48A,0x52F}, {0x531,0x556}, {0x560,0x588},
    {0x10A0,0x10C5}, {0x10C7,0x10C7}, {0x10CD,0x10CD}, {0x10D0,0x10FA}, {0x10FD,0x10FF}, {0x13A0,0x13F5},
    {0x13F8,0x13FD}, {0x1C80,0x1C88}, {0x1C90,0x1CBA}, {0x1CBD,0x1CBF}, {0x1D00,0x1D2B}, {0x1D6B,0x1D77},
    {0x1D79,0x1D9A}, {0x1E00,0x1F15}, {0x1F18,0x1F1D}, {0x1F20,0x1F45}, {0x1F48,0x1F4D}, {0x1F50,0x1F57},
    {0x1F59,0x1F59}, {0x1F5B,0x1F5B}, {0x1F5D,0x1F5D}, {0x1F5F,0x1F7D}, {0x1F80,0x1FB4}, {0x1FB6,0x1FBC},
    {0x1FBE,0x1FBE}, {0x1FC2,0x1FC4}, {0x1FC6,0x1FCC}, {0x1FD0,0x1FD3}, {0x1FD6,0x1FDB}, {0x1FE0,0x1FEC},
    {0x1FF2,0x1FF4}, {0x1FF6,0x1FFC}, {0x2102,0x2102}, {0x2107,0x2107}, {0x210A,0x2113}, {0x2115,0x2115},
    {0x2119,0x211D}, {0x2124,0x2124}, {0x2126,0x2126}, {0x2128,0x2128}, {0x212A,0x212D}, {0x212F,0x2134},
    {0x2139,0x2139}, {0x213C,0x213F}, {0x2145,0x2149}, {0x214E,0x214E}, {0x2160,0x217F}, {0x2183,0x2184},
    {0x24B6,0x24E9}, {0x2C00,0x2C7B}, {0x2C7E,0x2CE4}, {0x2CEB,0x2CEE}, {0x2CF2,0x2CF3}, {0x2D00,0x2D25},
    {0x2D27,0x2D27}, {0x2D2D,0x2D2D}, {0xA640,0xA66D}, {0xA680,0xA69B}, {0xA722,0xA76F}, {0xA771,0xA787},
    {0xA78B,0xA78E}, {0xA790,0xA7CA}, {0xA7D0,0xA7D1}, {0xA7D3,0xA7D3}, {0xA7D5,0xA7D9}, {0xA7F5,0xA7F6},
    {0xA7FA,0xA7FA}, {0xAB30,0xAB5A}, {0xAB60,0xAB68}, {0xAB70,0xABBF}, {0xFB00,0xFB06}, {0xFB13,0xFB17},
    {0xFF21,0xFF3A}, {0xFF41,0xFF5A}, {0x10400,0x1044F}, {0x104B0,0x104D3}, {0x104D8,0x104FB}, {0x10570,0x1057A},
    {0x1057C,0x1058A}, {0x1058C,0x10592}, {0x10594,0x10595}, {0x10597,0x105A1}, {0x105A3,0x105B1}, {0x105B3,0x105B9},
    {0x105BB,0x105BC}, {0x10C80,0x10CB2}, {0x10CC0,0x10CF2}, {0x118A0,0x118DF}, {0x16E40,0x16E7F}, {0x1D400,0x1D454},
    {0x1D456,0x1D49C}, {0x1D49E,0x1D49F}, {0x1D4A2,0x1D4A2}, {0x1D4A5,0x1D4A6}, {0x1D4A9,0x1D4AC}, {0x1D4AE,0x1D4B9},
    {0x1D4BB,0x1D4BB}, {0x1D4BD,0x1D4C3}, {0x1D4C5,0x1D505}, {0x1D507,0x1D50A}, {0x1D50D,0x1D514}, {0x1D516,0x1D51C},
    {0x1D51E,0x1D539}, {0x1D53B,0x1D53E}, {0x1D540,0x1D544}, {0x1D546,0x1D546}, {0x1D54A,0x1D550}, {0x1D552,0x1D6A5},
    {0x1D6A8,0x1D6C0}, {0x1D6C2,0x1D6DA}, {0x1D6DC,0x1D6FA}, {0x1D6FC,0x1D714}, {0x1D716,0x1D734}, {0x1D736,0x1D74E},
    {0x1D750,0x1D76E}, {0x1D770,0x1D788}, {0x1D78A,0x1D7A8}, {0x1D7AA,0x1D7C2}, {0x1D7C4,0x1D7CB}, {0x1DF00,0x1DF09},
    {0x1DF0B,0x1DF1E}, {0x1E900,0x1E943}, {0x1F130,0x1F149}, {0x1F150,0x1F169}, {0x1F170,0x1F189},
};

static uint32_t ban__lower(uint32_t cp)
{
    int lo = 0, hi = (int)(sizeof ban__lower_runs / sizeof ban__lower_runs[0]) - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const int32_t *r = ban__lower_runs[mid];
        if ((int64_t)cp < r[0]) hi = mid - 1;
        else if ((int64_t)cp >= (int64_t)r[0] + (int64_t)(r[1] - 1) * r[2] + 1) lo = mid + 1;
        else return ((cp - (uint32_t)r[0]) % (uint32_t)r[2]) ? cp : (uint32_t)((int32_t)cp + r[3]);
    }
    return cp;
}

static int ban__in_ranges(const int32_t (*r)[2], int n, uint32_t cp)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if ((int64_t)cp < r[mid][0]) hi = mid - 1;
        else if ((int64_t)cp > r[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}
#define BAN__IGNORABLE(cp) ban__in_ranges(ban__case_ignorable, (int)(sizeof ban__case_ignorable / sizeof ban__case_ignorable[0]), cp)
#define BAN__CASED(cp) ban__in_ranges(ban__cased, (int)(sizeof ban__cased / sizeof ban__cased[0]), cp)

static int ban__isspace(uint32_t cp)
{
    return (cp >= 9 && cp <= 13) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
           cp == 0x3000;
}

/* decode one code point; 0 bytes on invalid UTF-8 (overlong, surrogate, truncated) */
static int ban__utf8(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x80) return *cp = s[0], 1;
    int n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (!n || s[0] > 0xf4) return 0;
    uint32_t v = s[0] & (0x7f >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10ffff)) || (v >= 0xd800 && v <= 0xdfff)) return 0;
    return *cp = v, n;
}

typedef struct {
    ban_ctx *ctx;
    int32_t *ids;
    int max_ids, count;
    size_t len;
    int overflow, pending_apostrophe;
} ban__tokenizer;

static void ban__word_end(ban__tokenizer *t)
{
    const ban_model *m = t->ctx->model;
    if (t->len == 0 && !t->overflow) return;
    int id = m->config.unknown_id;
    if (!t->overflow) {
        size_t h = (size_t)ban__hash(t->ctx->word, t->len) & m->hash_mask;
        for (; m->word_hash[h] >= 0; h = (h + 1) & m->hash_mask) {
            int w = m->word_hash[h];
            if (m->word_len[w] == t->len && !memcmp(m->words[w], t->ctx->word, t->len)) { id = w; break; }
        }
    }
    if (t->count < t->max_ids) t->ids[t->count] = id;
    t->count++;
    t->len = 0;
    t->overflow = 0;
}

static void ban__word_add(ban__tokenizer *t, uint32_t cp)
{
    unsigned char b[4];
    int n = cp < 0x80 ? (b[0] = (unsigned char)cp, 1)
          : cp < 0x800 ? (b[0] = (unsigned char)(0xc0 | cp >> 6), b[1] = (unsigned char)(0x80 | (cp & 0x3f)), 2)
          : cp < 0x10000 ? (b[0] = (unsigned char)(0xe0 | cp >> 12), b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f)),
                            b[2] = (unsigned char)(0x80 | (cp & 0x3f)), 3)
          : (b[0] = (unsigned char)(0xf0 | cp >> 18), b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f)),
             b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f)), b[3] = (unsigned char)(0x80 | (cp & 0x3f)), 4);
    /* a word longer than every vocabulary word can only be unknown */
    if (t->len + (size_t)n > (size_t)t->ctx->model->max_word_bytes) t->overflow = 1;
    else memcpy(t->ctx->word + t->len, b, (size_t)n), t->len += (size_t)n;
}

/* one lowered code point after ',' and '?' are gone */
static void ban__token_char(ban__tokenizer *t, uint32_t cp)
{
    if (t->pending_apostrophe) {
        t->pending_apostrophe = 0;
        if (cp == 's') ban__word_end(t); /* "'s" -> " 's" */
        ban__word_add(t, '\'');
    }
    if (ban__isspace(cp)) ban__word_end(t);
    else if (cp == '\'') t->pending_apostrophe = 1;
    else ban__word_add(t, cp);
}

BANDEF int ban_tokenize(ban_ctx *ctx, const char *text, int32_t *ids, int max_ids, int *n_tokens)
{
    if (!ctx) return BAN_ERR_ARG;
    if (!text || !n_tokens || max_ids < 0 || (max_ids > 0 && !ids))
        return ban__fail(ctx->error, BAN_ERR_ARG, "ban_tokenize: NULL text, ids or count");
    *n_tokens = 0;
    if (!ctx->model->config.has_vocabulary)
        return ban__fail(ctx->error, BAN_ERR_UNSUPPORTED, "%s: the model file carries no vocabulary (export it "
                         "with --dictionary)", ctx->model->path);
    ban__tokenizer t = {ctx, ids, max_ids, 0, 0, 0, 0};
    const unsigned char *s = (const unsigned char *)text;
    size_t at = 0;
    int prev_cased = 0; /* the last code point that is not case-ignorable is cased */
    while (s[at]) {
        uint32_t cp, orig;
        int n = ban__utf8(s + at, &cp);
        if (!n) return ban__fail(ctx->error, BAN_ERR_INPUT, "byte %zu of the question is not valid UTF-8", at);
        at += (size_t)n;
        orig = cp;
        if (cp == 0x130) { /* the one code point whose lowercase is two: i + combining dot */
            ban__token_char(&t, 'i');
            ban__token_char(&t, 0x307);
            prev_cased = 1;
            continue;
        }
        if (cp == 0x3a3) { /* capital sigma: final form after a cased letter not followed by one */
            int next_cased = 0;
            uint32_t nx;
            for (size_t p = at; s[p];) {
                int k = ban__utf8(s + p, &nx);
                if (!k) break;
                p += (size_t)k;
                if (!BAN__IGNORABLE(nx)) { next_cased = BAN__CASED(nx); break; }
            }
            cp = prev_cased && !next_cased ? 0x3c2 : 0x3c3;
        } else {
            cp = ban__lower(cp);
        }
        if (!BAN__IGNORABLE(orig)) prev_cased = BAN__CASED(orig);
        if (cp == ',' || cp == '?') continue;
        ban__token_char(&t, cp);
    }
    if (t.pending_apostrophe) t.pending_apostrophe = 0, ban__word_add(&t, '\'');
    ban__word_end(&t);
    *n_tokens = t.count;
    return BAN_OK;
}

/* ---- forward pass ------------------------------------------------------------------ */

static int ban__all_finite(const float *x, size_t n, size_t *bad)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return *bad = i, 0;
    return 1;
}

/* Validate the input, decide which boxes of each image are real and pack them (with
   the spatial features appended for op 's') when the caller's rows cannot be used as
   they are. Sets n_box, n_rows, row0, box_row per image; *vin: the rows to project. */
static int ban__prepare_boxes(ban_ctx *c, const ban_input *in, const float **vin)
{
    const ban_model *m = c->model;
    const ban_config *cf = &m->config;
    const int N = in->images ? in->images : in->batch, K = in->boxes, Dv = cf->feature_dim;
    const int Dvin = Dv + 6 * cf->spatial_concat;
    const int need_spatials = cf->spatial_concat || (cf->task == BAN_TASK_VQA && cf->counter_objects);
    const char *what = in->images ? "image" : "example";
    int pack = cf->spatial_concat, rows = 0;
    for (int b = 0; b < in->batch && in->image_index; b++)
        if (in->image_index[b] < 0 || in->image_index[b] >= N)
            return ban__fail(c->error, BAN_ERR_INPUT, "example %d: image index %d outside 0..%d", b,
                             in->image_index[b], N - 1);
    for (int b = 0; b < N; b++) {
        int n = in->box_counts ? in->box_counts[b] : K, real = 0;
        if (n < 0 || n > K)
            return ban__fail(c->error, BAN_ERR_INPUT, "%s %d: box count %d outside 0..%d", what, b, n, K);
        if (n < K) pack = 1;
        c->n_box[b] = n;
        c->row0[b] = rows;
        for (int k = 0; k < K; k++) {
            int *slot = &c->box_row[(size_t)b * c->lim.max_boxes + k];
            *slot = -1;
            if (k >= n) continue;
            const float *f = in->features + ((size_t)b * K + k) * Dv;
            const float *s = need_spatials ? in->spatials + ((size_t)b * K + k) * 6 : NULL;
            size_t bad;
            if (!ban__all_finite(f, (size_t)Dv, &bad))
                return ban__fail(c->error, BAN_ERR_INPUT, "%s %d, box %d: feature %zu is not finite", what, b, k, bad);
            if (s && !ban__all_finite(s, 6, &bad))
                return ban__fail(c->error, BAN_ERR_INPUT, "%s %d, box %d: spatial value %zu is not finite", what, b,
                                 k, bad);
            if (cf->zero_row_padding) { /* the reference: a row whose |values| sum to 0 is padding */
                int zero = 1;
                for (int j = 0; j < Dv && zero; j++) zero = f[j] == 0.0f;
                for (int j = 0; cf->spatial_concat && j < 6 && zero; j++) zero = s[j] == 0.0f;
                if (zero) { pack = 1; continue; }
            }
            *slot = real++;
        }
        if (real == 0)
            return ban__fail(c->error, BAN_ERR_INPUT, "%s %d has no boxes (%d rows, all padding)", what, b, K);
        c->n_rows[b] = real;
        rows += real;
    }
    if (!pack) {
        *vin = in->features;
        return BAN_OK;
    }
    for (int b = 0; b < N; b++)
        for (int k = 0; k < K; k++) {
            int r = c->box_row[(size_t)b * c->lim.max_boxes + k];
            if (r < 0) continue;
            float *dst = c->vpack + (size_t)(c->row0[b] + r) * Dvin;
            memcpy(dst, in->features + ((size_t)b * K + k) * Dv, (size_t)Dv * sizeof(float));
            if (cf->spatial_concat) memcpy(dst + Dv, in->spatials + ((size_t)b * K + k) * 6, 6 * sizeof(float));
        }
    *vin = c->vpack;
    return BAN_OK;
}

/* Tokens as the model runs them: (B, P) into c->tok, real positions into c->n_tok. */
static int ban__prepare_tokens(ban_ctx *c, const ban_input *in, int P)
{
    const ban_config *cf = &c->model->config;
    const int B = in->batch, L = in->tokens_len, pad = cf->padding_id;
    const int masked = cf->task == BAN_TASK_VQA && cf->question_masking;
    for (int b = 0; b < B; b++) {
        const int32_t *src = in->tokens + (size_t)b * L;
        int n = L;
        if (in->token_counts) {
            n = in->token_counts[b];
            if (n < 0 || n > L)
                return ban__fail(c->error, BAN_ERR_INPUT, "example %d: token count %d outside 0..%d", b, n, L);
        } else if (masked) {
            for (n = 0; n < L && src[n] != pad; n++) {}
        }
        for (int t = 0; t < L; t++)
            if (src[t] < 0 || src[t] > pad)
                return ban__fail(c->error, BAN_ERR_INPUT, "example %d, token %d: id %d outside the vocabulary "
                                 "(0..%d, %d = padding)", b, t, src[t], pad, pad);
        if (masked && n == 0) return ban__fail(c->error, BAN_ERR_INPUT, "example %d has no tokens", b);
        for (int t = 0; t < P; t++) c->tok[(size_t)b * P + t] = (t < L && t < n) ? src[t] : pad;
        c->n_tok[b] = masked ? n : P;
    }
    return BAN_OK;
}

/* Word embeddings and the GRU: c->q (B*P, D) = every hidden state (PyTorch's gates) */
static void ban__encode_question(ban_ctx *c, int B, int P)
{
    const ban_model *m = c->model;
    const ban_config *cf = &m->config;
    const int Ew = cf->embedding_dim, Ein = Ew * cf->embedding_tables, D = cf->hidden_dim;
    for (int i = 0; i < B * P; i++) {
        const int32_t id = c->tok[i];
        memcpy(c->emb + (size_t)i * Ein, m->emb + (size_t)id * Ew, (size_t)Ew * sizeof(float));
        if (m->emb2) memcpy(c->emb + (size_t)i * Ein + Ew, m->emb2 + (size_t)id * Ew, (size_t)Ew * sizeof(float));
    }
    /* input halves of the gates for every position at once: (B*P, 3D) */
    ban__linear(c, B * P, 3 * D, Ein, c->emb, Ein, m->gru_wih, m->panels & BAN__PW_GRU_IH, m->gru_bih, c->gates_x,
                3 * D, 0);
    memset(c->hidden, 0, (size_t)B * D * sizeof(float));
    for (int t = 0; t < P; t++) {
        if (t == 0) /* h0 = 0: the hidden halves are the bias */
            for (int b = 0; b < B; b++) memcpy(c->gates_h + (size_t)b * 3 * D, m->gru_bhh, 3 * (size_t)D * sizeof(float));
        else
            ban__linear(c, B, 3 * D, D, c->hidden, D, m->gru_whh, m->panels & BAN__PW_GRU_HH, m->gru_bhh, c->gates_h,
                        3 * D, 0);
        for (int b = 0; b < B; b++) {
            const float *gx = c->gates_x + ((size_t)b * P + t) * 3 * D, *gh = c->gates_h + (size_t)b * 3 * D;
            float *h = c->hidden + (size_t)b * D;
            for (int d = 0; d < D; d++) {
                float r = ban__sigmoid(gh[d] + gx[d]);
                float z = ban__sigmoid(gh[D + d] + gx[D + d]);
                float n = tanhf(gx[2 * D + d] + gh[2 * D + d] * r);
                h[d] = (h[d] - n) * z + n;
            }
            memcpy(c->q + ((size_t)b * P + t) * D, h, (size_t)D * sizeof(float));
        }
    }
}

/* ---- image encoder ---------------------------------------------------------------------- */

/* Pixels (N, H, W, 3) -> c->enc_feat (N, K, C) and c->enc_spat (N, K, 6): the model's convs
   (im2col, then one product per layer for the whole batch), ReLUs and max-pools, with
   activations laid out (C, N, H, W); cell k = y * W + x of the final grid is box k. */
static void ban__encode_images(ban_ctx *c, const unsigned char *pixels, int N)
{
    const ban_model *m = c->model;
    const ban_config *cf = &m->config;
    int C = 3, H = cf->image_height, W = cf->image_width;
    float *x = c->enc_a, *y = c->enc_b;
    for (int ch = 0; ch < 3; ch++) {
        const float scale = m->enc_affine[ch], shift = m->enc_affine[3 + ch];
        float *dst = x + (size_t)ch * N * H * W;
        for (size_t i = 0; i < (size_t)N * H * W; i++) dst[i] = (float)pixels[i * 3 + ch] * scale + shift;
    }
    for (int l = 0; l < cf->encoder_layers; l++) {
        const int kind = m->enc[l][0], O = m->enc[l][1], k = m->enc[l][2], st = m->enc[l][3], pad = m->enc[l][4];
        if (kind == BAN__RELU) {
            for (size_t i = 0; i < (size_t)C * N * H * W; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
            continue;
        }
        const int OH = (H + 2 * (kind == BAN__CONV ? pad : 0) - k) / st + 1;
        const int OW = (W + 2 * (kind == BAN__CONV ? pad : 0) - k) / st + 1;
        const size_t plane = (size_t)N * OH * OW; /* one channel of the output, every image */
        if (kind == BAN__MAXPOOL) {
            for (int ch = 0; ch < C; ch++)
                for (int n = 0; n < N; n++)
                    for (int oy = 0; oy < OH; oy++)
                        for (int ox = 0; ox < OW; ox++) {
                            const float *src = x + (((size_t)ch * N + n) * H + oy * st) * W + ox * st;
                            float best = src[0];
                            for (int i = 0; i < k; i++)
                                for (int j = 0; j < k; j++)
                                    if (src[(size_t)i * W + j] > best) best = src[(size_t)i * W + j];
                            y[(((size_t)ch * N + n) * OH + oy) * OW + ox] = best;
                        }
        } else { /* conv: col (C*k*k, N*OH*OW), then out (O, N*OH*OW) = W (O, C*k*k) . col + b */
            float *col = c->enc_col;
            for (int ch = 0; ch < C; ch++)
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++) {
                        float *row = col + (((size_t)ch * k + i) * k + j) * plane;
                        for (int n = 0; n < N; n++)
                            for (int oy = 0; oy < OH; oy++) {
                                const int iy = oy * st - pad + i;
                                float *dst = row + ((size_t)n * OH + oy) * OW;
                                /* a padding row has no source row: not even its address may be formed */
                                const float *src = iy >= 0 && iy < H ? x + (((size_t)ch * N + n) * H + iy) * W : NULL;
                                for (int ox = 0; ox < OW; ox++) {
                                    const int ix = ox * st - pad + j;
                                    dst[ox] = (src && ix >= 0 && ix < W) ? src[ix] : 0.0f;
                                }
                            }
                    }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, O, (int)plane, C * k * k, 1.0f, m->enc_w[l],
                        C * k * k, col, (int)plane, 0.0f, y, (int)plane);
            for (int o = 0; o < O; o++)
                for (size_t i = 0; i < plane; i++) y[(size_t)o * plane + i] += m->enc_b[l][o];
            C = O;
        }
        H = OH, W = OW;
        float *t = x;
        x = y, y = t;
    }
    const int K = H * W;
    for (int n = 0; n < N; n++)
        for (int kk = 0; kk < K; kk++) {
            float *f = c->enc_feat + ((size_t)n * K + kk) * C, *sp = c->enc_spat + ((size_t)n * K + kk) * 6;
            for (int ch = 0; ch < C; ch++) f[ch] = x[((size_t)ch * N + n) * K + kk];
            const float gx = (float)(kk % W), gy = (float)(kk / W);
            sp[0] = gx / (float)W, sp[1] = gy / (float)H, sp[2] = (gx + 1.0f) / (float)W, sp[3] = (gy + 1.0f) / (float)H;
            sp[4] = 1.0f / (float)W, sp[5] = 1.0f / (float)H;
        }
}

/* Bilinear attention logits of one example, every glimpse at once:
   tmp (R, G*Q) = Vatt (R, kD) . (Qatt (Q, kD) scaled by h_mat[g])^T; add h_bias[g] later. */
static void ban__attention_logits(ban_ctx *c, const float *vatt, int ldv, int R, const float *qatt, int Q)
{
    const ban_model *m = c->model;
    const int kD = m->config.attention_rank * m->config.hidden_dim, G = m->config.num_glimpses;
    if (!m->panels) {
        for (int g = 0; g < G; g++)
            for (int l = 0; l < Q; l++) {
                const float *src = qatt + (size_t)l * kD, *h = m->att_hmat + (size_t)g * kD;
                float *dst = c->q_scaled + ((size_t)g * Q + l) * kD;
                for (int j = 0; j < kD; j++) dst[j] = src[j] * h[j];
            }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, G * Q, kD, 1.0f, vatt, ldv, c->q_scaled, kD, 0.0f,
                    c->att_tmp, G * Q);
        return;
    }
    /* a model in panels: no CBLAS in the forward pass at all (OpenBLAS's idle threads spin
       for a while after each call, and would take the cores from ban.h's own); the scaled
       question rows go straight into panels, the last one padded with zeros */
    const int rows = G * Q, padded = (rows + BAN__NR - 1) / BAN__NR * BAN__NR;
    for (int r = 0; r < padded; r++) {
        float *dst = c->q_scaled + (size_t)(r / BAN__NR) * kD * BAN__NR + r % BAN__NR;
        if (r >= rows) {
            for (int j = 0; j < kD; j++) dst[(size_t)j * BAN__NR] = 0.0f;
            continue;
        }
        const float *src = qatt + (size_t)(r % Q) * kD, *h = m->att_hmat + (size_t)(r / Q) * kD;
        for (int j = 0; j < kD; j++) dst[(size_t)j * BAN__NR] = src[j] * h[j];
    }
    const ban__pgemm g = {R, rows, kD, ldv, rows, 0, c->isa, vatt, c->q_scaled, BAN__NR, (size_t)kD * BAN__NR,
                          NULL, c->att_tmp};
    ban__pgemm_run(c->pool, &g);
}

/* the image of example b */
static int ban__image_of(const ban_input *in, int b) { return in->image_index ? in->image_index[b] : b; }

/* q (B, P, D) += v (B, D) at every position: a glimpse's or the counter's vector joins every
   question channel (residual learning of attention) */
static void ban__add_to_positions(float *q, const float *v, int B, int P, int D)
{
    for (int b = 0; b < B; b++)
        for (int l = 0; l < P; l++)
            for (int d = 0; d < D; d++) q[((size_t)b * P + l) * D + d] += v[(size_t)b * D + d];
}

static int ban__forward_vqa(ban_ctx *c, const ban_input *in, ban_output *out, const float *vin)
{
    const ban_model *m = c->model;
    const ban_config *cf = &m->config;
    const int B = in->batch, K = in->boxes, Km = c->lim.max_boxes, D = cf->hidden_dim, G = cf->num_glimpses;
    const int kD = cf->attention_rank * D, P = ban_question_positions(m, in->tokens_len);
    const int Gr = in->glimpses ? in->glimpses : G, cols = kD + Gr * D, O = cf->counter_objects;
    const int Dvin = cf->feature_dim, H = cf->classifier_hidden, A = cf->num_answers;
    const size_t plane = (size_t)Km * c->max_pos; /* one (b, g) attention map */
    const int N = in->images ? in->images : B;
    int total_rows = 0, rc;
    for (int i = 0; i < N; i++) total_rows += c->n_rows[i];
    if ((rc = ban__prepare_tokens(c, in, P))) return rc;

    /* 1. question: embeddings, GRU -> q (B*P, D) */
    ban__encode_question(c, B, P);

    /* 2. every projection of the boxes in one product, once per image: attention (kD), then
       each glimpse (D) */
    ban__linear(c, total_rows, cols, Dvin, vin, Dvin, m->vis_w, m->panels & BAN__PW_VIS, m->vis_b, c->vproj, cols, 1);

    /* 3. bilinear attention maps of all G glimpses, from the GRU states */
    ban__linear(c, B * P, kD, D, c->q, D, m->att_qw, m->panels & BAN__PW_ATT_Q, m->att_qb, c->q_att, kD, 1);
    for (int b = 0; b < B; b++) {
        const int i = ban__image_of(in, b), R = c->n_rows[i], valid = c->n_tok[b];
        ban__attention_logits(c, c->vproj + (size_t)c->row0[i] * cols, cols, R, c->q_att + (size_t)b * P * kD, P);
        for (int g = 0; g < G; g++) {
            float *map = c->att + (size_t)(b * G + g) * plane, *score = c->box_score + (size_t)(b * G + g) * Km;
            const float bias = m->att_hbias[g];
            float top = -INFINITY;
            for (int k = 0; k < K; k++) {
                const int r = c->box_row[(size_t)i * Km + k];
                float best = -INFINITY;
                if (r >= 0)
                    for (int l = 0; l < P; l++) {
                        float v = map[(size_t)r * P + l] = c->att_tmp[(size_t)r * G * P + (size_t)g * P + l] + bias;
                        if (l < valid && v > best) best = v;
                    }
                score[k] = best; /* the counter's box score: logits maxed over positions */
                if (best > top) top = best;
            }
            /* softmax over every (box, position) pair of the map */
            float sum = 0.0f, entropy = 0.0f;
            for (int r = 0; r < R; r++)
                for (int l = 0; l < P; l++) {
                    float *v = &map[(size_t)r * P + l];
                    *v = l < valid ? expf(*v - top) : 0.0f;
                    sum += *v;
                }
            const float inv = 1.0f / sum;
            for (int r = 0; r < R; r++)
                for (int l = 0; l < P; l++) {
                    float *v = &map[(size_t)r * P + l];
                    *v *= inv;
                    if (*v > 0.0f) entropy -= *v * logf(*v);
                }
            if (out->entropy) out->entropy[b * G + g] = entropy;
            if (out->attention) {
                float *dst = out->attention + (size_t)(b * G + g) * K * P;
                for (int k = 0; k < K; k++) {
                    const int r = c->box_row[(size_t)i * Km + k];
                    if (r < 0) memset(dst + (size_t)k * P, 0, (size_t)P * sizeof(float));
                    else memcpy(dst + (size_t)k * P, map + (size_t)r * P, (size_t)P * sizeof(float));
                }
            }
        }
    }

    /* 4. glimpses: joint vector f_g = sum_kl V'_k A_kl Q'_l, projected and added to every
       question channel (residual learning of attention), then the count feature */
    for (int g = 0; g < Gr; g++) {
        const unsigned pq = m->panels & BAN__PW_GQ, pp = m->panels & BAN__PW_GP, pc = m->panels & BAN__PW_GC;
        ban__linear(c, B * P, D, D, c->q, D, ban__stacked(m->gq_w, g, D, D, pq), pq, m->gq_b + (size_t)g * D,
                    c->q_glimpse, D, 1);
        for (int b = 0; b < B; b++) {
            const int i = ban__image_of(in, b), R = c->n_rows[i], valid = c->n_tok[b];
            /* chain (P, D) = A^T (P, R) . V'_g (R, D) */
            const float *att = c->att + (size_t)(b * G + g) * plane;
            const float *vg = c->vproj + (size_t)c->row0[i] * cols + kD + (size_t)g * D;
            if (!m->panels) {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, P, D, R, 1.0f, att, P, vg, cols, 0.0f, c->chain,
                            D);
            } else { /* V'_g in rows is V'_g^T in panels of stride 32 */
                for (int r = 0; r < R; r++)
                    for (int l = 0; l < P; l++) c->att_t[(size_t)l * R + r] = att[(size_t)r * P + l];
                const ban__pgemm pg = {P, D, R, R, D, 0, c->isa, c->att_t, vg, (size_t)cols, BAN__NR, NULL, c->chain};
                ban__pgemm_run(c->pool, &pg);
            }
            float *joint = c->joint + (size_t)b * D;
            const float *qg = c->q_glimpse + (size_t)b * P * D;
            for (int d = 0; d < D; d++) joint[d] = 0.0f;
            for (int l = 0; l < valid; l++)
                for (int d = 0; d < D; d++) joint[d] += c->chain[(size_t)l * D + d] * qg[(size_t)l * D + d];
        }
        ban__linear(c, B, D, D, c->joint, D, ban__stacked(m->gp_w, g, D, D, pp), pp, m->gp_b + (size_t)g * D, c->proj,
                    D, 0);
        ban__add_to_positions(c->q, c->proj, B, P, D);
        if (O) {
            for (int b = 0; b < B; b++) {
                const int i = ban__image_of(in, b);
                ban__count(m, c->box_score + (size_t)(b * G + g) * Km, in->spatials + (size_t)i * K * 6, K,
                           c->n_box[i], c->count_feat + (size_t)b * (O + 1), c->counter_tmp);
            }
            ban__linear(c, B, D, O + 1, c->count_feat, O + 1, ban__stacked(m->gc_w, g, D, O + 1, pc), pc,
                        m->gc_b + (size_t)g * D, c->proj, D, 1);
            ban__add_to_positions(c->q, c->proj, B, P, D);
        }
    }

    /* 5. classifier over the sum of the question channels */
    for (int b = 0; b < B; b++) {
        float *s = c->joint + (size_t)b * D;
        for (int d = 0; d < D; d++) s[d] = 0.0f;
        for (int l = 0; l < c->n_tok[b]; l++)
            for (int d = 0; d < D; d++) s[d] += c->q[((size_t)b * P + l) * D + d];
    }
    ban__linear(c, B, H, D, c->joint, D, m->cls1_w, m->panels & BAN__PW_CLS1, m->cls1_b, c->proj, H, 1);
    ban__linear(c, B, A, H, c->proj, H, m->cls2_w, m->panels & BAN__PW_CLS2, m->cls2_b, out->logits, A, 0);
    return BAN_OK;
}

static int ban__forward_grounding(ban_ctx *c, const ban_input *in, ban_output *out, const float *vin)
{
    const ban_model *m = c->model;
    const ban_config *cf = &m->config;
    const int B = in->batch, K = in->boxes, Km = c->lim.max_boxes, D = cf->hidden_dim, G = cf->num_glimpses;
    const int kD = cf->attention_rank * D, E = in->entities_len, L = in->tokens_len;
    const int Dvin = cf->feature_dim + 6 * cf->spatial_concat;
    const int N = in->images ? in->images : B;
    int P = 1, total_rows = 0, rc;
    for (int i = 0; i < N; i++) total_rows += c->n_rows[i];
    for (int b = 0; b < B; b++) {
        if (in->entity_counts && (in->entity_counts[b] < 0 || in->entity_counts[b] > E))
            return ban__fail(c->error, BAN_ERR_INPUT, "example %d: entity count %d outside 0..%d", b,
                             in->entity_counts[b], E);
        for (int j = 0; j < E; j++) {
            int e = in->entities[(size_t)b * E + j];
            if (e < 0 || e >= L)
                return ban__fail(c->error, BAN_ERR_INPUT, "example %d, entity %d: position %d outside the sentence's "
                                 "%d tokens", b, j, e, L);
            if (e + 1 > P) P = e + 1; /* the GRU is causal: later tokens cannot change these states */
        }
    }
    if ((rc = ban__prepare_tokens(c, in, P))) return rc;
    ban__encode_question(c, B, P);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < E; j++)
            memcpy(c->q_ent + ((size_t)b * E + j) * D, c->q + ((size_t)b * P + in->entities[(size_t)b * E + j]) * D,
                   (size_t)D * sizeof(float));
    ban__linear(c, total_rows, kD, Dvin, vin, Dvin, m->vis_w, m->panels & BAN__PW_VIS, m->vis_b, c->vproj, kD, 1);
    ban__linear(c, B * E, kD, D, c->q_ent, D, m->att_qw, m->panels & BAN__PW_ATT_Q, m->att_qb, c->q_att, kD, 1);
    for (int b = 0; b < B; b++) {
        const int i = ban__image_of(in, b);
        ban__attention_logits(c, c->vproj + (size_t)c->row0[i] * kD, kD, c->n_rows[i], c->q_att + (size_t)b * E * kD, E);
        for (int g = 0; g < G; g++)
            for (int k = 0; k < K; k++) {
                const int r = c->box_row[(size_t)i * Km + k];
                float *dst = out->logits + (((size_t)b * G + g) * K + k) * E;
                for (int j = 0; j < E; j++) {
                    /* padding: masked boxes; slots past the count, or (the reference's rule) a slot
                       other than the first that holds position 0 */
                    int pad = r < 0 || (in->entity_counts ? j >= in->entity_counts[b]
                                                          : (j > 0 && in->entities[(size_t)b * E + j] == 0));
                    dst[j] = pad ? BAN__MASKED_GROUNDING
                                 : c->att_tmp[(size_t)r * G * E + (size_t)g * E + j] + m->att_hbias[g];
                }
            }
    }
    return BAN_OK;
}

static int ban__forward_boxes(ban_ctx *c, const ban_input *in, ban_output *out)
{
    const ban_config *cf = &c->model->config;
    const int vqa = cf->task == BAN_TASK_VQA;
    if (in->batch < 1 || in->batch > c->lim.max_batch)
        return ban__fail(c->error, BAN_ERR_ARG, "batch %d outside the context's 1..%d", in->batch, c->lim.max_batch);
    if (in->images < 0 || in->images > in->batch || (in->images && !in->image_index) ||
        (!in->images && in->image_index))
        return ban__fail(c->error, BAN_ERR_ARG, "images %d: 0, or 1..batch (%d) with an image index", in->images,
                         in->batch);
    if (in->boxes < 1 || in->boxes > c->lim.max_boxes)
        return ban__fail(c->error, BAN_ERR_ARG, "%d boxes outside the context's 1..%d", in->boxes, c->lim.max_boxes);
    if (in->tokens_len < 1 || in->tokens_len > c->lim.max_tokens)
        return ban__fail(c->error, BAN_ERR_ARG, "%d tokens outside the context's 1..%d", in->tokens_len,
                         c->lim.max_tokens);
    if (!in->features || !in->tokens)
        return ban__fail(c->error, BAN_ERR_ARG, "ban_forward: NULL features or tokens");
    if (!in->spatials && (cf->spatial_concat || (vqa && cf->counter_objects)))
        return ban__fail(c->error, BAN_ERR_ARG, "this model needs spatial features (%s)",
                         cf->spatial_concat ? "op 's'" : "the counting module");
    if (vqa) {
        if (in->glimpses < 0 || in->glimpses > cf->num_glimpses)
            return ban__fail(c->error, BAN_ERR_ARG, "glimpses %d outside 0..%d", in->glimpses, cf->num_glimpses);
    } else {
        if (!in->entities || in->entities_len < 1 || in->entities_len > c->lim.max_entities)
            return ban__fail(c->error, BAN_ERR_ARG, "a grounding model needs entities: %d outside the context's "
                             "1..%d", in->entities_len, c->lim.max_entities);
        if (out->attention || out->entropy)
            return ban__fail(c->error, BAN_ERR_ARG, "attention maps and entropy are VQA outputs; a grounding "
                             "model's logits are its attention");
    }
    const float *vin = NULL;
    int rc = ban__prepare_boxes(c, in, &vin);
    if (rc) return rc;
    return vqa ? ban__forward_vqa(c, in, out, vin) : ban__forward_grounding(c, in, out, vin);
}

/* An encoder model: the image encoder's grid stands in for the box features. */
static int ban__forward_pixels(ban_ctx *c, const ban_input *in, ban_output *out)
{
    const ban_config *cf = &c->model->config;
    const int N = in->images ? in->images : in->batch, K = cf->grid_height * cf->grid_width;
    if (!in->pixels) return ban__fail(c->error, BAN_ERR_ARG, "this model reads images: give input.pixels");
    if (in->features || in->spatials || in->box_counts || (in->boxes && in->boxes != K))
        return ban__fail(c->error, BAN_ERR_ARG, "this model reads pixels: leave features, spatials and box counts "
                         "empty (boxes is its grid, %d)", K);
    if (in->batch < 1 || in->batch > c->lim.max_batch || in->images < 0 || in->images > in->batch)
        return ban__fail(c->error, BAN_ERR_ARG, "batch %d (images %d) outside the context's 1..%d", in->batch,
                         in->images, c->lim.max_batch);
    ban__encode_images(c, in->pixels, N);
    ban_input grid = *in;
    grid.pixels = NULL, grid.boxes = K, grid.features = c->enc_feat, grid.spatials = c->enc_spat;
    return ban__forward_boxes(c, &grid, out);
}

BANDEF int ban_encode(ban_ctx *c, const unsigned char *pixels, int n, float *features, float *spatials)
{
    if (!c) return BAN_ERR_ARG;
    const ban_config *cf = &c->model->config;
    const size_t K = (size_t)cf->grid_height * cf->grid_width;
    if (!cf->encoder_layers) return ban__fail(c->error, BAN_ERR_UNSUPPORTED, "this model has no image encoder");
    if (!pixels || !features || n < 1 || n > c->lim.max_batch)
        return ban__fail(c->error, BAN_ERR_ARG, "ban_encode: NULL pixels or features, or %d images outside 1..%d",
                         n, c->lim.max_batch);
    ban__encode_images(c, pixels, n);
    memcpy(features, c->enc_feat, (size_t)n * K * cf->feature_dim * sizeof(float));
    if (spatials) memcpy(spatials, c->enc_spat, (size_t)n * K * 6 * sizeof(float));
    return BAN_OK;
}

BANDEF int ban_forward(ban_ctx *c, const ban_input *in, ban_output *out)
{
    if (!c) return BAN_ERR_ARG;
    if (!in || !out || !out->logits)
        return ban__fail(c->error, BAN_ERR_ARG, "ban_forward: NULL input, output or output logits");
    if (c->model->config.encoder_layers) return ban__forward_pixels(c, in, out);
    if (in->pixels) return ban__fail(c->error, BAN_ERR_ARG, "this model reads box features, not pixels");
    return ban__forward_boxes(c, in, out);
}

#endif /* BAN_IMPLEMENTATION */

/*
MIT License

Copyright (c) 2026 The ban.h authors

Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software
without restriction, including without limitation the rights to use, copy, modify,
merge, publish, distribute, sublicense, and/or sell copies of the Software, and to
permit persons to whom the Software is furnished to do so, subject to the following
conditions:

The above copyright notice and this permission notice shall be included in all copies
or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A
PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT
HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF
CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE
OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
*/
