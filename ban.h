/* ban.h - Bilinear Attention Networks inference in one C header.   v0.2.0
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

   EXAMPLE (VQA: one image of K boxes, one question; examples/simple.c is a whole program)
         ban_model *model;  ban_ctx *ctx;
         if (ban_model_load("model.ban", &model) != BAN_OK) {
             fprintf(stderr, "%s\n", ban_model_error(model));   // NULL-safe
             return 1;
         }
         ban_limits lim = {1, K, 0, 0, 0};   // batch, boxes, tokens, entities, threads (0: default)
         if (ban_ctx_create(model, &lim, &ctx) != BAN_OK) { fprintf(stderr, "%s\n", ban_ctx_error(ctx)); return 1; }
         int32_t tokens[BAN_MAX_TOKENS];  int n;
         if (ban_tokenize(ctx, "What color is the bus?", tokens, BAN_MAX_TOKENS, &n) != BAN_OK) return 1;
         ban_input in = {0};  ban_output out = {0};
         in.batch = 1;  in.boxes = K;  in.features = feats;  in.spatials = spats;   // (1, K, Dv), (1, K, 6)
         in.tokens_len = n;  in.tokens = tokens;  out.logits = logits;    // logits: num_answers floats
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
     such a model ban.h pads every question to P = question_length positions (a longer one
     is truncated to its first P tokens, as the reference's tokenizer does; tokens_len may
     then exceed limits.max_tokens) and masks all-zero rows. Explicit per-example counts
     (box_counts, token_counts) mark padding too; with them, padding may hold any values.
     A model trained with question masking ("masked") instead runs the GRU, attention and
     sum over real tokens only, and P = L. Padding never changes the outputs: appending
     padded boxes or tokens is a no-op.

   QUESTIONS
     ban_tokenize is the model's tokenizer on its own (any text, unknown words mapped to the
     unknown id). The one policy every front end of this project follows (build/ban, its
     server, the Python package) is ban_tokenize_info's: a question needs at least one word
     the vocabulary knows (an empty question is refused with the same message), and
     unknown words among known ones are answered as the model's unknown id and reported.

   API (functions return a ban_status unless noted; messages name the file, offset,
   tensor, example or token concerned)
     ban_model_load(path, &model)        map and validate a .ban file; on failure *model
                                         still holds ban_model_error() (free it)
     ban_model_load_memory(data, n, &m)  the same from a buffer that outlives the model
     ban_model_free, ban_model_error, ban_model_config, ban_model_parameter_count
     ban_model_answer(m, i), ban_model_word(m, id), ban_model_meta_string/int(m, key)
     ban_model_tensor_count, ban_model_tensor(m, i, &info)   the file's tensors (dtype, bytes)
     ban_model_meta_count, ban_model_meta(m, i, &info)       its metadata entries as stored
     ban_weight_specs(&n)                ban.h's table of the weights a model may hold
     ban_config_tensor(cfg, panels, i, &info)  tensor i of a model of that configuration,
                                         as a writer of .ban files lays it out;
                                         ban_config_tensor_dtype the same in bf16, int8, f16
     ban_reduce(dtype, x, n, out, &scale) floats to bf16 or int8 as ban.h's kernels do
     ban_ctx_create(model, &limits, &ctx) buffers for up to limits (batch, boxes,
                                         tokens, entities), allocated once; threads; on
                                         failure *ctx still holds ban_ctx_error() (free it)
     ban_ctx_free, ban_ctx_error, ban_ctx_limits, ban_ctx_kernel, ban_ctx_kernel_for(ctx, dtype)
     ban_ctx_record(ctx, log, max, &n)   the matrix products of the next forward passes
                                         (shapes, for FLOP counts and benchmarks)
     ban_tokenize(ctx, text, ids, max, &n) the model's tokenizer; n may exceed max
     ban_tokenize_info(ctx, text, ids, info, max, &n)  the same, with where each token is
                                         and whether it is known; refuses a question with
                                         no known word
     ban_question_positions(model, L)    P for an input of L tokens
     ban_forward(ctx, &input, &output)   one batch; allocates nothing
     ban_encode(ctx, pixels, n, f, s)    an image encoder's grid features on their own
     ban_argmax(x, n), ban_status_string(status), ban_kernels_available(), ban_simd_warning()
     Misuse is an error, never a crash: NULL for any pointer argument gives BAN_ERR_ARG
     (getters return NULL, 0 or -1). A model or context whose creation failed is only good
     for ban_model_error / ban_ctx_error and ban_model_free / ban_ctx_free; every other call
     refuses it (BAN_ERR_ARG, or NULL / 0).

   THREADS
     A model is immutable once loaded and may be shared by any number of threads; each
     thread needs its own context. The big Linear weights of a file in the exporter's
     default layout (panels of 32 rows) go through ban.h's own matrix product: AVX-512,
     AVX2+FMA or plain C, chosen when a context is created (the environment variable
     BAN_SIMD=avx512|avx2|none caps it; ban_simd_warning() says when it holds anything
     else, which is ignored), split among limits.threads threads per context (default: the
     processors online), which sleep between calls. Other products, and weights in rows,
     run through CBLAS, whose own threads (OPENBLAS_NUM_THREADS) apply. The thread count
     changes no bit of the outputs. Running one context per core, set limits.threads = 1.
     Weights stored in bf16 or int8 (docs/FORMAT.md, "Reduced weights") are multiplied as
     stored by AVX-512 BF16 or VNNI kernels, the activations of each product rounded to
     bf16 or quantized to int8 once; the plain C kernels for them give the same bits, so a
     reduced model's outputs depend neither on the thread count nor on BAN_SIMD.

   OPTIONS (#define before including the implementation)
     BAN_MALLOC(n), BAN_FREE(p)   allocator (default malloc, free; define both or neither)
     BAN_ASSERT(x)                internal invariants only, never bad input (default assert)
     BAN_STATIC                   make every function static (BANDEF)
     BAN_NO_MMAP                  read model files into memory instead of mapping them
     BAN_NO_THREADS               no threads of ban.h's own (always on Windows)
     BAN_NO_SIMD                  the plain C kernel only (always, but on x86-64 with GCC or Clang)
     BAN_MAX_*                    the limits below, each overridable (#define before ban.h)

   LIMITS (inputs beyond them are refused with BAN_ERR_ARG / BAN_ERR_FORMAT)
     BAN_MAX_BATCH, BAN_MAX_BOXES, BAN_MAX_TOKENS, BAN_MAX_ENTITIES, BAN_MAX_THREADS,
     BAN_MAX_GLIMPSES, BAN_MAX_DIM (any model dimension), BAN_MAX_VOCAB, BAN_MAX_ANSWERS,
     BAN_MAX_STRING, BAN_MAX_ENTRIES, BAN_MAX_IMAGE_SIDE, BAN_MAX_ENCODER_FLOATS,
     BAN_MAX_FILE_SIZE; see their definitions below.

   EXTENDING
     The implementation runs top-down: options, helpers, kernels and threads, file reader,
     model, context, layers, forward pass, tokenizer, generated tables.
     - A layer is one function in LAYERS, with its formula and shapes above it, called from
       the forward pass (ban__forward_vqa reads like the paper). Its weights are rows of
       BAN__WEIGHTS (file name, shape in the letters of ban__letters, which configurations
       have it), its scratch rows of BAN__BUFFERS; both generate the struct fields, the
       binding and the reservation. tools/banfile.py mirrors BAN__WEIGHTS, and
       tests/test_tables.py checks the mirror against `ban info --tensors --json`.
     - A dtype is a row of ban__dtypes (bytes, the k-group of its panels, read in place or
       widened, scaled); kernels that multiply it in place are rows of ban__kernels. A kernel
       is a pair of tile functions (full tile, fewer rows), optionally a one-row function and
       a `prepare` that converts the activations of a product to its dtype (into the
       context's act_q, a row of BAN__BUFFERS), and a row of ban__kernels; a context picks
       one per dtype once, when it is created. Every kernel of a reduced dtype must give the
       plain C one's bits (tests/test_quant.c holds them to it).
     - A command of build/ban is a file examples/cmd_NAME.c and a row of its command table.
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

#define BAN_VERSION "0.2.0"
#define BAN_FILE_VERSION 1            /* the .ban format version this build reads */

#ifndef BAN_MAX_BATCH
#define BAN_MAX_BATCH 4096            /* examples in one forward call */
#endif
#ifndef BAN_MAX_BOXES
#define BAN_MAX_BOXES 1024            /* boxes per example */
#endif
#ifndef BAN_MAX_TOKENS
#define BAN_MAX_TOKENS 1024           /* question positions per example */
#endif
#ifndef BAN_MAX_ENTITIES
#define BAN_MAX_ENTITIES 256          /* entities per sentence (grounding) */
#endif
#ifndef BAN_MAX_THREADS
#define BAN_MAX_THREADS 256           /* threads of one context */
#endif
#ifndef BAN_MAX_GLIMPSES
#define BAN_MAX_GLIMPSES 32           /* the reference's limit for its attention */
#endif
#ifndef BAN_MAX_DIM
#define BAN_MAX_DIM 65536             /* hidden, feature, embedding and classifier sizes */
#endif
#ifndef BAN_MAX_VOCAB
#define BAN_MAX_VOCAB 10000000        /* words */
#endif
#ifndef BAN_MAX_ANSWERS
#define BAN_MAX_ANSWERS 1000000       /* answers */
#endif
#ifndef BAN_MAX_STRING
#define BAN_MAX_STRING 65535          /* bytes of one word, answer or metadata string */
#endif
#ifndef BAN_MAX_COUNTER_OBJECTS
#define BAN_MAX_COUNTER_OBJECTS 64    /* boxes the counting module looks at */
#endif
#ifndef BAN_MAX_ENCODER_LAYERS
#define BAN_MAX_ENCODER_LAYERS 64     /* layers of an image encoder */
#endif
#ifndef BAN_MAX_IMAGE_SIDE
#define BAN_MAX_IMAGE_SIDE 4096       /* an image encoder's input height and width */
#endif
#ifndef BAN_MAX_ENCODER_FLOATS
#define BAN_MAX_ENCODER_FLOATS (1 << 26) /* an encoder's largest activation + im2col, per image */
#endif
#ifndef BAN_MAX_ENTRIES
#define BAN_MAX_ENTRIES 4096          /* metadata entries, and tensors, in a model file */
#endif
#ifndef BAN_MAX_FILE_SIZE
#define BAN_MAX_FILE_SIZE ((uint64_t)64 << 30) /* bytes of a model file */
#endif

typedef enum ban_status {
    BAN_OK = 0,
    BAN_ERR_IO = 1,          /* a file could not be opened, read or mapped */
    BAN_ERR_FORMAT = 2,      /* the model file is malformed */
    BAN_ERR_UNSUPPORTED = 3, /* well-formed, but needs something this build lacks */
    BAN_ERR_NOMEM = 4,       /* an allocation failed */
    BAN_ERR_ARG = 5,         /* a bad argument: NULL, a failed object, or a size beyond the limits */
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
    int padding_id;        /* the reference: V (an id of its own); OpenVQA: 0 (its word PAD) */
    int unknown_id;        /* id of words outside the vocabulary (the reference: V-1; OpenVQA: 1, UNK) */
    int has_vocabulary;    /* the file carries the words (ban_tokenize works) */
    int has_answers;       /* the file carries the answer strings */
    int image_height;      /* an image encoder's input size; 0: the model takes box features */
    int image_width;
    int grid_height;       /* its output grid: K = grid_height * grid_width visual channels */
    int grid_width;
    int encoder_layers;    /* layers of the encoder (conv, ReLU, max-pool) */
    int linear_weights;    /* the model's Linear weights that may be stored in panels, */
    int panel_weights;     /* and those that are (ban.h's own product makes theirs) */
    /* OpenVQA's BAN (MILVLG/openvqa) differs from the reference in these; the reference's are 1, 0, 0, 0, 0 */
    int glimpse_rank;      /* k_g: a glimpse's projections are k_g*D wide, sum-pooled to D (OpenVQA: K_TIMES) */
    int pad_boxes;         /* > 0: every image's boxes are padded with zero rows to this many (or cut to it),
                              and none is masked (OpenVQA's GQA models, whose padding takes part in attention) */
    int adapter_dim;       /* > 0: box features first go through OpenVQA's GQA adapter, to this width */
    int adapter_box_dim;   /* the adapter's embedding of each box's 5 values (0: the adapter reads no boxes) */
    int tokenizer;         /* BAN_TOKENIZER_REFERENCE or BAN_TOKENIZER_OPENVQA */
    int num_ids;           /* token ids are 0..num_ids-1: vocab_size + 1 when the padding id is V, else V */
} ban_config;

enum { BAN_TOKENIZER_REFERENCE = 0, BAN_TOKENIZER_OPENVQA = 1 };

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
    const float *spatials;     /* (N, K, 6); needed by the counter, op 's' and OpenVQA's GQA adapter */
    const int *box_counts;     /* (N) real boxes first; NULL: K each (zero rows still pad) */
    const unsigned char *pixels; /* (N, H, W, 3) RGB bytes, for a model with an image encoder,
                                    instead of features, spatials, boxes and box_counts */
    int tokens_len;            /* L */
    const int32_t *tokens;     /* (B, L) ids in 0..num_ids-1 (padding_id pads) */
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

typedef struct ban_token_info {
    int start, end;            /* bytes [start, end) of the text the token was read from */
    int known;                 /* 1: a word of the vocabulary; 0: mapped to the unknown id */
} ban_token_info;

typedef struct ban_weight_spec {
    const char *name;          /* "gru.weight_ih" */
    const char *bias;          /* its bias tensor ("gru.bias_ih"), or NULL */
    const char *stack;         /* how many of them are stacked ("G"), or "0": one */
    const char *rows, *cols;   /* the shape of one, in letters ("3*D", "Ein"); cols "0": 1-D */
    const char *when;          /* the configurations that hold it, an expression ("vqa*(O>0)") */
    int linear;                /* 1: a Linear weight, which may be stored as NAME_panels */
} ban_weight_spec;

typedef struct ban_tensor_info {
    const char *name;          /* as stored: "gru.weight_ih" or "gru.weight_ih_panels" */
    const char *dtype;         /* "f32", "f16", "bf16", "int8" */
    const char *layout;        /* a Linear weight's: "rows" or "panels"; "" for other tensors */
    const ban_weight_spec *spec; /* the row of ban.h's weight table it belongs to */
    int is_bias;               /* 1: it is that row's bias */
    int ndim;
    uint64_t dims[4];          /* as stored */
    uint64_t offset, bytes;    /* in the file's data section */
    int is_scale;              /* 1: the scales of an int8 weight (NAME_scales, f32) */
    const void *data;          /* its bytes as stored (ban_model_tensor) */
} ban_tensor_info;

typedef struct ban_meta_info {
    const char *key;
    int type;                  /* 1 int64, 2 float64, 3 string, 4 string array, 5 int64 array, or a newer one */
    const void *value;         /* its bytes as stored (docs/FORMAT.md) */
    uint64_t size;
} ban_meta_info;

typedef struct ban_product {   /* one matrix product a forward pass made: y (m, n) = x (m, k) w (k, n) */
    int m, n, k;
    int trans_x, trans_w;      /* as CBLAS would take its operands: x stored (k, m); w stored (n, k) */
    int count;                 /* how many products of this shape came one after the other */
} ban_product;

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
/* metadata entry i (0, 1, ...) as stored, for tools that copy a file's metadata (ban quantize) */
BANDEF int ban_model_meta_count(const ban_model *model);
BANDEF int ban_model_meta(const ban_model *model, int index, ban_meta_info *info);
BANDEF int ban_model_tensor_count(const ban_model *model);
BANDEF int ban_model_tensor(const ban_model *model, int index, ban_tensor_info *info);
/* the weights table: what a model may hold, in the letters ban.h's comments define */
BANDEF const ban_weight_spec *ban_weight_specs(int *count);
/* tensor i (0, 1, ...) of a model of configuration cfg (the fields ban.h reads from a file's
   metadata; an image encoder's tensors are not listed), with the Linear weights in panels
   when panels: its name and dims; the counter's functions are (16, 17) as the reference's.
   BAN_ERR_ARG past the last one. For writers of .ban files. */
BANDEF int ban_config_tensor(const ban_config *cfg, int panels, int index, ban_tensor_info *info);
/* the same for a file of weights in dtype "f32", "f16" (every tensor), "bf16" or "int8" (the
   Linear weights and word embeddings, an int8 one followed by its NAME_scales; int8 needs
   panels), as tools/ban_export.py --dtype and ban quantize lay them out (docs/FORMAT.md) */
BANDEF int ban_config_tensor_dtype(const ban_config *cfg, int panels, const char *dtype, int index,
                                   ban_tensor_info *info);

BANDEF int ban_ctx_create(const ban_model *model, const ban_limits *limits, ban_ctx **ctx);
BANDEF void ban_ctx_free(ban_ctx *ctx);
BANDEF const char *ban_ctx_error(const ban_ctx *ctx);
BANDEF const ban_limits *ban_ctx_limits(const ban_ctx *ctx);
BANDEF const char *ban_ctx_kernel(const ban_ctx *ctx);   /* "avx512", "avx2" or "c" */
/* the kernel of its products by weights of that dtype: "f32" as ban_ctx_kernel; "bf16":
   "avx512_bf16" or "c"; "int8": "avx512_vnni" or "c"; NULL for f16 (widened to f32 at load) */
BANDEF const char *ban_ctx_kernel_for(const ban_ctx *ctx, const char *dtype);
/* from now on, log the matrix products of forward passes into log[0..max) (consecutive ones of
   one shape as one entry with a count), *n their number (past max: counted, not stored);
   log NULL stops. The caller's arrays must outlive the recording. */
BANDEF int ban_ctx_record(ban_ctx *ctx, ban_product *log, int max, int *n);

BANDEF int ban_tokenize(ban_ctx *ctx, const char *text, int32_t *ids, int max_ids, int *n_tokens);
BANDEF int ban_tokenize_info(ban_ctx *ctx, const char *text, int32_t *ids, ban_token_info *info, int max_ids,
                             int *n_tokens);
BANDEF int ban_question_positions(const ban_model *model, int tokens_len);
BANDEF int ban_forward(ban_ctx *ctx, const ban_input *input, ban_output *output);
/* an encoder model's grid for n images (N, H, W, 3): features (n, K, C), spatials (n, K, 6) */
BANDEF int ban_encode(ban_ctx *ctx, const unsigned char *pixels, int n, float *features, float *spatials);

BANDEF int ban_argmax(const float *x, int n);
/* n floats in a reduced dtype, as ban.h's kernels and tools/ban_export.py reduce them: "bf16"
   (out: n uint16, round to nearest even, subnormals to zero), or "int8" (out: n int8_t,
   *scale = max |x| / 127, each x / scale rounded to nearest even; *scale NaN when x holds a
   NaN or infinity, 0 when max |x| < 2^-120, with zeros). BAN_ERR_ARG for other dtypes. */
BANDEF int ban_reduce(const char *dtype, const float *x, size_t n, void *out, float *scale);
BANDEF const char *ban_status_string(int status);
BANDEF const char *ban_kernels_available(void); /* this processor's, best first: "avx512 avx2 c" */
BANDEF const char *ban_simd_warning(void);      /* NULL, or why BAN_SIMD's value was ignored */

#ifdef __cplusplus
}
#endif
#endif /* BAN_H_INCLUDED */

/* ======================================================================== */
/*                              IMPLEMENTATION                              */
/* ======================================================================== */
#if defined(BAN_IMPLEMENTATION) && !defined(BAN__IMPLEMENTED)
#define BAN__IMPLEMENTED

/* ---- options ------------------------------------------------------------- */

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

#if defined(BAN_MALLOC) != defined(BAN_FREE)
#error "ban.h: define both BAN_MALLOC and BAN_FREE, or neither"
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
#define BAN__AVX512BF16 __attribute__((target("avx512f,avx512bf16,fma"))) static inline __attribute__((always_inline))
#define BAN__AVX512VNNI __attribute__((target("avx512f,avx512vnni,fma"))) static inline __attribute__((always_inline))
#else
#define BAN__X86 0
#endif

#define BAN__ERR 512
#define BAN__ALIGN 64
#define BAN__MASKED_GROUNDING (-99.0f) /* the reference's MINUS_INFINITE */

/* ---- helpers --------------------------------------------------------------- */

static int ban__fail(char *buf, int status, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
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
    if (!x || n < 1) return -1;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
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

/* A matrix of activations: rows x cols floats, rows ld apart. Layers pass them to the
   products below; an input is never written through (ban__mat_in only drops its const). */
typedef struct ban__mat {
    float *p;
    int rows, cols, ld;
} ban__mat;

static ban__mat ban__mat_of(float *p, int rows, int cols, int ld)
{
    ban__mat a;
    a.p = p, a.rows = rows, a.cols = cols, a.ld = ld;
    return a;
}
static ban__mat ban__mat_in(const float *p, int rows, int cols, int ld)
{
    return ban__mat_of((float *)(uintptr_t)p, rows, cols, ld);
}

/* ---- dtypes ----------------------------------------------------------------
   How a tensor's elements are stored (docs/FORMAT.md, "Reduced weights"). f32 is read in
   place. bf16 and int8 Linear weights in panels are read in place by the kernels that multiply
   them (ban__kernels), and bf16 and int8 word embeddings row by row (ban__weight_row); every
   other tensor of a widened dtype (f16 always, bf16 elsewhere) is converted to f32 once, at
   load, into memory the model owns. An int8 tensor NAME comes with NAME_scales (f32, one per
   row: row r is q[r][.] * scale[r]), and is refused anywhere else. In panels, the k values of a
   column come in groups of 4 bytes (2 for bf16, 4 for int8: what one 32-bit lane of
   vdpbf16ps or vpdpbusd reads), K padded with zeros to a multiple of the group. */
enum { BAN__F32 = 0, BAN__F16 = 1, BAN__BF16 = 2, BAN__I8 = 3, BAN__N_DTYPES };

typedef struct ban__dtype {
    const char *name;
    int bytes;                                   /* per element, as stored */
    int group;                                   /* consecutive k of one column in a panel */
    int in_place;                                /* Linear weights in panels and embeddings are read as stored */
    int scaled;                                  /* a tensor comes with NAME_scales */
    void (*widen)(const unsigned char *src, size_t n, float *dst, const float *table);
} ban__dtype;

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

/* n IEEE halves to floats, through a table of all 65,536 when there is one (a few times
   faster than decoding each) */
static void ban__widen_f16(const unsigned char *src, size_t n, float *dst, const float *table)
{
    for (size_t j = 0; j < n; j++) {
        const uint16_t h = (uint16_t)(src[2 * j] | src[2 * j + 1] << 8);
        dst[j] = table ? table[h] : ban__half(h);
    }
}

/* bf16: the upper half of an f32, so widening is exact */
static float ban__bf16_f32(uint16_t h)
{
    const uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* f32 -> bf16 as AVX-512 BF16 converts (vcvtne2ps2bf16): round to nearest even, subnormals to
   signed zero, NaN kept (quieted) */
static uint16_t ban__bf16_of(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    if ((b & 0x7F800000u) == 0) return (uint16_t)((b >> 16) & 0x8000u);
    if ((b & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((b >> 16) | 0x40u);
    return (uint16_t)((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

static void ban__widen_bf16(const unsigned char *src, size_t n, float *dst, const float *table)
{
    (void)table;
    for (size_t j = 0; j < n; j++) dst[j] = ban__bf16_f32((uint16_t)(src[2 * j] | src[2 * j + 1] << 8));
}

/* One row of n floats to int8 with one scale, the rule of every int8 tensor and of the
   activations the int8 kernels read: s = max |x| / 127, q = round-to-nearest-even(x 127 / max |x|).
   A row that holds infinity or NaN gets s = NaN (its products are NaN, as in f32); a row whose
   largest magnitude is below 2^-120 (127 / max |x| would overflow) is zeros, s = 0. The AVX-512
   version (ban__prepare_i8_512) computes the same bits. */
static uint32_t ban__amax_bits(const float *x, int n)
{
    uint32_t top = 0;
    for (int j = 0; j < n; j++) {
        uint32_t b;
        memcpy(&b, &x[j], 4);
        b &= 0x7FFFFFFFu;
        top = b > top ? b : top; /* on the bits: NaN sorts above infinity, and no float compare is involved */
    }
    return top;
}

/* the scale of a row whose largest magnitude has the bits `top`, and 127 / that magnitude
   (0: the row is quantized to zeros) */
static float ban__i8_scale(uint32_t top, float *inv)
{
    float amax;
    *inv = 0.0f;
    if (top >= 0x7F800000u) return NAN;
    if (top < 0x03800000u) return 0.0f; /* below 2^-120 */
    memcpy(&amax, &top, 4);
    *inv = 127.0f / amax;
    return amax / 127.0f;
}

/* v rounded to the nearest integer (even on ties) in -127..127; NaN (inf * 0, in a row of
   scale NaN) is 0 */
static int8_t ban__i8_of(float v)
{
    const float r = rintf(v);
    return (int8_t)(r > 127.0f ? 127 : r < -127.0f ? -127 : r == r ? (int)r : 0);
}

static float ban__i8_row(const float *x, int n, int8_t *q)
{
    float inv;
    const float s = ban__i8_scale(ban__amax_bits(x, n), &inv);
    for (int j = 0; j < n; j++) q[j] = ban__i8_of(x[j] * inv);
    return s;
}

static const ban__dtype ban__dtypes[BAN__N_DTYPES] = {
    {"f32", 4, 1, 1, 0, NULL},
    {"f16", 2, 1, 0, 0, ban__widen_f16},
    {"bf16", 2, 2, 1, 0, ban__widen_bf16},
    {"int8", 1, 4, 1, 1, NULL},
};

/* the dtype named s, or -1 */
static int ban__dtype_named(const char *s)
{
    for (int d = 0; s && d < BAN__N_DTYPES; d++)
        if (strcmp(s, ban__dtypes[d].name) == 0) return d;
    return -1;
}

/* K as a panel of dtype d stores it: padded to a multiple of its group */
static size_t ban__padded_k(int d, size_t K)
{
    const size_t g = (size_t)ban__dtypes[d].group;
    return (K + g - 1) / g * g;
}

BANDEF int ban_reduce(const char *dtype, const float *x, size_t n, void *out, float *scale)
{
    const int d = ban__dtype_named(dtype);
    if (!x || !out || (d == BAN__I8 && (!scale || n > (size_t)1 << 30)) || (d != BAN__BF16 && d != BAN__I8))
        return BAN_ERR_ARG;
    if (d == BAN__I8) {
        *scale = ban__i8_row(x, (int)n, (int8_t *)out);
        return BAN_OK;
    }
    for (size_t j = 0; j < n; j++) {
        const uint16_t h = ban__bf16_of(x[j]);
        memcpy((unsigned char *)out + 2 * j, &h, 2);
    }
    if (scale) *scale = 1.0f;
    return BAN_OK;
}

/* ---- kernels and threads ------------------------------------------------------
   ban.h's own matrix product: y (M, N) = x (M, K) W^T (+ b, then max(0, .) if relu) for W
   given in panels of 32 of its rows: element [p][k][j] = W[32p + j][k] sits at
   B + p * pstride + k * ldb + j. A weight stored in panels (the exporter's default layout)
   has ldb = 32 and pstride = 32 K: each panel is one contiguous stream, read once per slice
   of rows, with none of the re-packing a BLAS does on every call (at batch 1 that is a
   quarter of OpenBLAS's visual product). A matrix V (K, N) in rows is W = V^T in panels with
   ldb = its row stride, pstride = 32.
   A kernel holds a tile of mr rows x nr (<= 32) columns in registers and sums BAN__KC
   products at a time; rows run in slices of BAN__MC so that x's slice stays in cache while
   panels stream by. Threads take work items (a slice of rows, BAN__CHUNK panels) as they
   come; every output is computed the same way whichever thread takes it, and whatever the
   other rows of the product are. Columns past N are neither stored nor, in a partial last
   panel, loaded. */
#define BAN__NR 32
#define BAN__KC 256
#define BAN__MC 128
#define BAN__CHUNK 4

/* the arguments of one tile: C (mr, nc) (+)= A (mr, kc) B (kc, nc); first: C is written,
   not added to; last: the bias (if any) and the ReLU (if relu) follow. A and B hold the
   kernel's dtype (f32; bf16; int8 weights and u8 activations), lda and ldb count its elements;
   an int8 tile has all of K (first and last), A's row scales and B's column scales and sums. */
typedef struct ban__tile {
    int mr, kc, nc, first, last, relu;
    const void *A, *B;
    const float *bias, *a_scale, *b_scale;
    const int32_t *b_sum;
    size_t lda, ldb, ldc;
    float *C;
} ban__tile;

/* row r of a tile's f32 sums into C: added to C unless first; then, when last, the bias (if
   any) and the ReLU (if relu) */
static void ban__tile_store(const ban__tile *t, int r, const float *acc)
{
    float *cr = t->C + r * t->ldc;
    for (int j = 0; j < t->nc; j++) {
        float v = t->first ? acc[j] : cr[j] + acc[j];
        if (t->last && t->bias) v += t->bias[j];
        if (t->last && t->relu) v = v > 0.0f ? v : 0.0f;
        cr[j] = v;
    }
}

static void ban__tile_c(const ban__tile *t)
{
    const float *A = (const float *)t->A, *B = (const float *)t->B;
    for (int r = 0; r < t->mr; r++) {
        float acc[BAN__NR] = {0};
        for (int k = 0; k < t->kc; k++) {
            const float a = A[r * t->lda + k], *b = B + k * t->ldb;
            if (t->nc == BAN__NR)
                for (int j = 0; j < BAN__NR; j++) acc[j] += a * b[j];
            else
                for (int j = 0; j < t->nc; j++) acc[j] += a * b[j];
        }
        ban__tile_store(t, r, acc);
    }
}

/* The bf16 and int8 tiles. bf16: each pair of k is added as vdpbf16ps adds it: the odd
   product, then the even one, each sum rounded to f32 and flushed to zero when subnormal,
   subnormal inputs read as zero; the product of two bf16 values is exact in f32 (whatever a
   compiler fuses), so this kernel and the AVX-512 BF16 one give the same bits (a test holds
   them to it). int8: A holds u8 = q + 128, as vpdpbusd multiplies unsigned bytes by signed
   ones; the sum over all of K is exact in int32, here as sum (u - 128) w and in the VNNI kernel
   as sum u w - 128 sum w (the column sums, b_sum, known at load), then y = sum * (a_scale *
   b_scale) + bias as one fused multiply-add: the same bits again. */
static float ban__ftz(float x) { return fabsf(x) < 1.17549435e-38f ? 0.0f * x : x; }
static float ban__bf16_in(uint16_t h) { return ban__bf16_f32((h & 0x7F80u) ? h : (uint16_t)(h & 0x8000u)); }

static void ban__tile_bf16_c(const ban__tile *t)
{
    const uint16_t *A = (const uint16_t *)t->A, *B = (const uint16_t *)t->B;
    for (int r = 0; r < t->mr; r++) {
        float acc[BAN__NR] = {0};
        for (int k = 0; k < t->kc; k += 2) {
            const float a0 = ban__bf16_in(A[r * t->lda + k]), a1 = ban__bf16_in(A[r * t->lda + k + 1]);
            const uint16_t *b = B + (size_t)k * t->ldb;
            for (int j = 0; j < t->nc; j++) {
                acc[j] = ban__ftz(acc[j] + a1 * ban__bf16_in(b[2 * j + 1]));
                acc[j] = ban__ftz(acc[j] + a0 * ban__bf16_in(b[2 * j]));
            }
        }
        ban__tile_store(t, r, acc);
    }
}

static void ban__tile_i8_c(const ban__tile *t)
{
    const unsigned char *A = (const unsigned char *)t->A;
    const int8_t *B = (const int8_t *)t->B;
    BAN_ASSERT(t->first && t->last);
    for (int r = 0; r < t->mr; r++) {
        int32_t acc[BAN__NR] = {0};
        const unsigned char *a = A + r * t->lda;
        for (int k = 0; k < t->kc; k += 4) {
            const int8_t *b = B + (size_t)k * t->ldb;
            for (int j = 0; j < t->nc; j++)
                for (int u = 0; u < 4; u++) acc[j] += ((int32_t)a[k + u] - 128) * b[4 * j + u];
        }
        float *cr = t->C + r * t->ldc;
        for (int j = 0; j < t->nc; j++) {
            const float s = t->a_scale[r] * t->b_scale[j];
            float v = t->bias ? fmaf((float)acc[j], s, t->bias[j]) : (float)acc[j] * s;
            if (t->relu) v = v > 0.0f ? v : 0.0f;
            cr[j] = v;
        }
    }
}

/* The activations of one product in the kernel's dtype, rows of ldo (K padded to the group)
   elements: bf16 (rounded as ban__bf16_of), or u8 = q + 128 with a scale per row (the rule of
   ban__i8_row). The AVX-512 versions below give the same bytes. */
static void ban__prepare_bf16_c(const float *x, int M, int K, size_t ldx, void *out, size_t ldo, float *scale)
{
    (void)scale;
    for (int r = 0; r < M; r++) {
        uint16_t *o = (uint16_t *)out + (size_t)r * ldo;
        const float *xr = x + (size_t)r * ldx;
        for (int k = 0; k < K; k++) o[k] = ban__bf16_of(xr[k]);
        for (size_t k = (size_t)K; k < ldo; k++) o[k] = 0;
    }
}

static void ban__prepare_i8_c(const float *x, int M, int K, size_t ldx, void *out, size_t ldo, float *scale)
{
    for (int r = 0; r < M; r++) {
        unsigned char *o = (unsigned char *)out + (size_t)r * ldo;
        const float *xr = x + (size_t)r * ldx;
        float inv;
        scale[r] = ban__i8_scale(ban__amax_bits(xr, K), &inv);
        for (int k = 0; k < K; k++) o[k] = (unsigned char)(ban__i8_of(xr[k] * inv) + 128);
        memset(o + K, 128, ldo - (size_t)K);
    }
}

#if BAN__X86
#define BAN__ROWS6(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define BAN__ALL16 ((__mmask16)0xFFFF)
/* the two entry points of an AVX-512 kernel TILE(mr, t) of up to 10 rows: TILE_full, 10 rows;
   TILE_part, fewer: one copy of the kernel per row count, each without a test per row and
   product */
#define BAN__TILES10(TILE, TARGET)                                                                   \
    __attribute__((target(TARGET))) static void TILE##_full(const ban__tile *t) { TILE(10, t); }     \
    __attribute__((target(TARGET))) static void TILE##_part(const ban__tile *t)                      \
    {                                                                                                \
        switch (t->mr) {                                                                             \
        case 1: TILE(1, t); break;                                                                   \
        case 2: TILE(2, t); break;                                                                   \
        case 3: TILE(3, t); break;                                                                   \
        case 4: TILE(4, t); break;                                                                   \
        case 5: TILE(5, t); break;                                                                   \
        case 6: TILE(6, t); break;                                                                   \
        case 7: TILE(7, t); break;                                                                   \
        case 8: TILE(8, t); break;                                                                   \
        default: TILE(9, t); break;                                                                  \
        }                                                                                            \
    }
#define BAN__ROWS10(X) BAN__ROWS6(X) X(6) X(7) X(8) X(9)

/* max(x, 0); not _mm512_max_ps, whose GCC 12 definition starts from _mm512_undefined_ps and
   warns (-Wmaybe-uninitialized) in every C++ file that includes ban.h */
BAN__AVX512 __m512 ban__relu512(__m512 x) { return _mm512_mask_max_ps(_mm512_setzero_ps(), (__mmask16)0xFFFF, x, _mm512_setzero_ps()); }

/* The end of an AVX-512 tile of f32 sums c<r>0, c<r>1 (columns 0-15, 16-31 of row r, masks m0,
   m1): into C, added to it unless first; when last, the bias (added when ADD: the f32 kernel
   adds a zero one when there is none) and the ReLU */
#define BAN__STORE512(ADD)                                                                         \
    const int bias = t->last && t->bias, relu = t->last && t->relu;                                \
    const __m512 bb0 = bias ? _mm512_maskz_loadu_ps(m0, t->bias) : zero;                           \
    const __m512 bb1 = bias ? _mm512_maskz_loadu_ps(m1, t->bias + 16) : zero;                      \
    const int add_bias = (ADD);                                                                    \
    BAN__ROWS10(BAN__STORE512_ROW)
#define BAN__STORE512_ROW(r)                                                                       \
    if (r < mr) {                                                                                  \
        float *cr = t->C + (r) * t->ldc;                                                           \
        if (!t->first) {                                                                           \
            c##r##0 = _mm512_add_ps(c##r##0, _mm512_maskz_loadu_ps(m0, cr));                       \
            c##r##1 = _mm512_add_ps(c##r##1, _mm512_maskz_loadu_ps(m1, cr + 16));                  \
        }                                                                                          \
        if (add_bias) c##r##0 = _mm512_add_ps(c##r##0, bb0), c##r##1 = _mm512_add_ps(c##r##1, bb1); \
        if (relu) c##r##0 = ban__relu512(c##r##0), c##r##1 = ban__relu512(c##r##1);                \
        _mm512_mask_storeu_ps(cr, m0, c##r##0);                                                    \
        _mm512_mask_storeu_ps(cr + 16, m1, c##r##1);                                               \
    }

/* AVX-512: up to 10 rows x 32 columns, 20 accumulators */
BAN__AVX512 void ban__tile512(int mr, const ban__tile *t)
{
    const int nc = t->nc, kc = t->kc;
    const __mmask16 m0 = (__mmask16)(nc >= 16 ? 0xFFFFu : (1u << nc) - 1u);
    const __mmask16 m1 = (__mmask16)(nc >= 32 ? 0xFFFFu : nc <= 16 ? 0u : (1u << (nc - 16)) - 1u);
    const float *A = (const float *)t->A, *B = (const float *)t->B;
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
    BAN__STORE512(1)
}
BAN__TILES10(ban__tile512, "avx512f,fma")

/* One row by up to 4 panels (t->nc: the last one's columns, the others 32; panel q at t->B +
   q * pstride), each output summed exactly as ban__tile512 sums it: a one-row tile has two
   chains of dependent FMAs, this one eight, which is what lets a product of one row (a GRU
   step, the classifier at batch 1) run at the speed memory brings its weights. */
__attribute__((target("avx512f,fma"))) static void ban__row512(const ban__tile *t, int panels, size_t pstride)
{
    const int nc = t->nc, kc = t->kc, last = panels - 1;
    const __mmask16 m0 = (__mmask16)(nc >= 16 ? 0xFFFFu : (1u << nc) - 1u);
    const __mmask16 m1 = (__mmask16)(nc >= 32 ? 0xFFFFu : nc <= 16 ? 0u : (1u << (nc - 16)) - 1u);
    const float *A = (const float *)t->A, *B = (const float *)t->B;
    const size_t ldb = t->ldb;
    const __m512 zero = _mm512_setzero_ps();
    __m512 c[8] = {zero, zero, zero, zero, zero, zero, zero, zero};
    if (nc == BAN__NR && panels == 4)
        for (int k = 0; k < kc; k++) {
            const __m512 a = _mm512_set1_ps(A[k]);
            const float *b = B + k * ldb;
            c[0] = _mm512_fmadd_ps(a, _mm512_loadu_ps(b), c[0]);
            c[1] = _mm512_fmadd_ps(a, _mm512_loadu_ps(b + 16), c[1]);
            c[2] = _mm512_fmadd_ps(a, _mm512_loadu_ps(b + pstride), c[2]);
            c[3] = _mm512_fmadd_ps(a, _mm512_loadu_ps(b + pstride + 16), c[3]);
            c[4] = _mm512_fmadd_ps(a, _mm512_loadu_ps(b + 2 * pstride), c[4]);
            c[5] = _mm512_fmadd_ps(a, _mm512_loadu_ps(b + 2 * pstride + 16), c[5]);
            c[6] = _mm512_fmadd_ps(a, _mm512_loadu_ps(b + 3 * pstride), c[6]);
            c[7] = _mm512_fmadd_ps(a, _mm512_loadu_ps(b + 3 * pstride + 16), c[7]);
        }
    else
        for (int k = 0; k < kc; k++) {
            const __m512 a = _mm512_set1_ps(A[k]);
            for (int q = 0; q < panels; q++) {
                const float *b = B + k * ldb + q * pstride;
                c[2 * q] = _mm512_fmadd_ps(a, q < last ? _mm512_loadu_ps(b) : _mm512_maskz_loadu_ps(m0, b), c[2 * q]);
                c[2 * q + 1] = _mm512_fmadd_ps(a, q < last ? _mm512_loadu_ps(b + 16) : _mm512_maskz_loadu_ps(m1, b + 16),
                                               c[2 * q + 1]);
            }
        }
    const int bias = t->last && t->bias, relu = t->last && t->relu;
    for (int q = 0; q < panels; q++) {
        const __mmask16 k0 = q < last ? (__mmask16)0xFFFF : m0, k1 = q < last ? (__mmask16)0xFFFF : m1;
        float *cr = t->C + q * BAN__NR;
        __m512 v0 = c[2 * q], v1 = c[2 * q + 1];
        if (!t->first) v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(k0, cr)), v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(k1, cr + 16));
        v0 = _mm512_add_ps(v0, bias ? _mm512_maskz_loadu_ps(k0, t->bias + q * BAN__NR) : zero);
        v1 = _mm512_add_ps(v1, bias ? _mm512_maskz_loadu_ps(k1, t->bias + q * BAN__NR + 16) : zero);
        if (relu) v0 = ban__relu512(v0), v1 = ban__relu512(v1);
        _mm512_mask_storeu_ps(cr, k0, v0);
        _mm512_mask_storeu_ps(cr + 16, k1, v1);
    }
}
/* AVX2: up to 6 rows x 16 columns (half a panel: nc <= 16), 12 accumulators */
BAN__AVX2 void ban__tile256(int mr, const ban__tile *t)
{
    const int nc = t->nc, kc = t->kc;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nc), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nc - 8), lane);
    const float *A = (const float *)t->A, *B = (const float *)t->B;
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

/* AVX-512 BF16: up to 10 rows x 32 columns; a 512-bit B vector holds 16 columns x 2 k */
BAN__AVX512BF16 void ban__tile512_bf16(int mr, const ban__tile *t)
{
    const int nc = t->nc, kc = t->kc;
    const __mmask16 m0 = (__mmask16)(nc >= 16 ? 0xFFFFu : (1u << nc) - 1u);
    const __mmask16 m1 = (__mmask16)(nc >= 32 ? 0xFFFFu : nc <= 16 ? 0u : (1u << (nc - 16)) - 1u);
    const unsigned char *A = (const unsigned char *)t->A, *B = (const unsigned char *)t->B;
    const size_t lda = 2 * t->lda, ldb = 2 * t->ldb; /* bytes */
    const __m512 zero = _mm512_setzero_ps();
#define BAN__D(r) __m512 c##r##0 = zero, c##r##1 = zero;
    BAN__ROWS10(BAN__D)
#undef BAN__D
#define BAN__F(r)                                                        \
    if (r < mr) {                                                        \
        int32_t pair;                                                    \
        memcpy(&pair, A + (r) * lda + 2 * (size_t)k, 4);                 \
        const __m512bh a = (__m512bh)_mm512_set1_epi32(pair);            \
        c##r##0 = _mm512_dpbf16_ps(c##r##0, a, b0);                      \
        c##r##1 = _mm512_dpbf16_ps(c##r##1, a, b1);                      \
    }
    for (int k = 0; k < kc; k += 2) { /* a weight panel holds all 32 columns: no masked loads */
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(B + k * ldb);
        const __m512bh b1 = (__m512bh)_mm512_loadu_si512(B + k * ldb + 64);
        BAN__ROWS10(BAN__F)
    }
#undef BAN__F
    BAN__STORE512(bias) /* only a bias is added, as the plain C kernel does (-0 stays -0) */
}
BAN__TILES10(ban__tile512_bf16, "avx512f,avx512bf16,fma")

/* acc += u8 a . s8 b, lane by lane over 4 bytes. In assembly: GCC 12 copies every accumulator
   through other registers and the stack around _mm512_dpbusd_epi32 in this loop (half the
   speed, measured) */
#define BAN__DPBUSD(acc, a, b) __asm__("vpdpbusd %1, %2, %0" : "+v"(acc) : "v"(b), "v"(a))

/* AVX-512 VNNI: up to 10 rows x 32 columns; a 512-bit B vector holds 16 columns x 4 k */
BAN__AVX512VNNI void ban__tile512_i8(int mr, const ban__tile *t)
{
    const int nc = t->nc, kc = t->kc;
    const __mmask16 m0 = (__mmask16)(nc >= 16 ? 0xFFFFu : (1u << nc) - 1u);
    const __mmask16 m1 = (__mmask16)(nc >= 32 ? 0xFFFFu : nc <= 16 ? 0u : (1u << (nc - 16)) - 1u);
    const unsigned char *A = (const unsigned char *)t->A, *B = (const unsigned char *)t->B;
    const size_t lda = t->lda, ldb = t->ldb;
    const __m512i zero = _mm512_setzero_si512();
#define BAN__D(r) __m512i c##r##0 = zero, c##r##1 = zero;
    BAN__ROWS10(BAN__D)
#undef BAN__D
#define BAN__F(r)                                                        \
    if (r < mr) {                                                        \
        int32_t quad;                                                    \
        memcpy(&quad, A + (r) * lda + (size_t)k, 4);                     \
        const __m512i a = _mm512_set1_epi32(quad);                       \
        BAN__DPBUSD(c##r##0, a, b0);                                     \
        BAN__DPBUSD(c##r##1, a, b1);                                     \
    }
    for (int k = 0; k < kc; k += 4) {
        const __m512i b0 = _mm512_loadu_si512(B + k * ldb), b1 = _mm512_loadu_si512(B + k * ldb + 64);
        BAN__ROWS10(BAN__F)
    }
#undef BAN__F
    /* masked forms throughout: GCC 12's unmasked ones start from _mm512_undefined_* (see ban__relu512) */
    const __m512i s0 = _mm512_maskz_slli_epi32(BAN__ALL16, _mm512_maskz_loadu_epi32(m0, t->b_sum), 7);
    const __m512i s1 = _mm512_maskz_slli_epi32(BAN__ALL16, _mm512_maskz_loadu_epi32(m1, t->b_sum + 16), 7);
    const __m512 w0 = _mm512_maskz_loadu_ps(m0, t->b_scale), w1 = _mm512_maskz_loadu_ps(m1, t->b_scale + 16);
    const int bias = t->bias != NULL;
    const __m512 bb0 = bias ? _mm512_maskz_loadu_ps(m0, t->bias) : _mm512_setzero_ps();
    const __m512 bb1 = bias ? _mm512_maskz_loadu_ps(m1, t->bias + 16) : _mm512_setzero_ps();
#define BAN__S(r)                                                                          \
    if (r < mr) {                                                                          \
        float *cr = t->C + (r) * t->ldc;                                                   \
        const __m512 as = _mm512_set1_ps(t->a_scale[r]);                                   \
        const __m512 sc0 = _mm512_mul_ps(as, w0), sc1 = _mm512_mul_ps(as, w1);             \
        __m512 v0 = _mm512_maskz_cvtepi32_ps(BAN__ALL16, _mm512_sub_epi32(c##r##0, s0));   \
        __m512 v1 = _mm512_maskz_cvtepi32_ps(BAN__ALL16, _mm512_sub_epi32(c##r##1, s1));   \
        if (bias) v0 = _mm512_fmadd_ps(v0, sc0, bb0), v1 = _mm512_fmadd_ps(v1, sc1, bb1);  \
        else v0 = _mm512_mul_ps(v0, sc0), v1 = _mm512_mul_ps(v1, sc1);                     \
        if (t->relu) v0 = ban__relu512(v0), v1 = ban__relu512(v1);                         \
        _mm512_mask_storeu_ps(cr, m0, v0);                                                 \
        _mm512_mask_storeu_ps(cr + 16, m1, v1);                                            \
    }
    BAN__ROWS10(BAN__S)
#undef BAN__S
}
BAN__TILES10(ban__tile512_i8, "avx512f,avx512vnni,fma")

/* ban__prepare_bf16_c and ban__prepare_i8_c, 16 floats at a time */
__attribute__((target("avx512f,avx512bf16,fma"))) static void ban__prepare_bf16_512(const float *x, int M, int K,
                                                                                      size_t ldx, void *out,
                                                                                      size_t ldo, float *scale)
{
    (void)scale;
    for (int r = 0; r < M; r++) {
        uint16_t *o = (uint16_t *)out + (size_t)r * ldo;
        const float *xr = x + (size_t)r * ldx;
        int k = 0;
        for (; k + 16 <= K; k += 16)
            _mm256_storeu_si256((__m256i *)(void *)(o + k), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(xr + k)));
        for (; k < K; k++) o[k] = ban__bf16_of(xr[k]);
        for (size_t j = (size_t)K; j < ldo; j++) o[j] = 0;
    }
}

__attribute__((target("avx512f,avx512vnni,fma"))) static void ban__prepare_i8_512(const float *x, int M, int K,
                                                                                    size_t ldx, void *out, size_t ldo,
                                                                                    float *scale)
{
    const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF), lo = _mm512_set1_epi32(-127);
    const __m512i hi = _mm512_set1_epi32(127), offset = _mm512_set1_epi32(128);
    for (int r = 0; r < M; r++) {
        unsigned char *o = (unsigned char *)out + (size_t)r * ldo;
        const float *xr = x + (size_t)r * ldx;
        __m512i top16 = _mm512_setzero_si512();
        int k = 0;
        for (; k + 16 <= K; k += 16)
            top16 = _mm512_maskz_max_epu32(BAN__ALL16, top16, _mm512_and_si512(_mm512_loadu_si512(xr + k), magnitude));
        uint32_t lanes[16], top = ban__amax_bits(xr + k, K - k);
        _mm512_storeu_si512(lanes, top16);
        for (int j = 0; j < 16; j++) top = lanes[j] > top ? lanes[j] : top;
        float inv;
        scale[r] = ban__i8_scale(top, &inv);
        memset(o, 128, ldo);
        if (inv == 0.0f) continue;
        const __m512 vinv = _mm512_set1_ps(inv);
        for (k = 0; k + 16 <= K; k += 16) {
            __m512i q = _mm512_maskz_cvtps_epi32(BAN__ALL16, _mm512_mul_ps(_mm512_loadu_ps(xr + k), vinv));
            q = _mm512_maskz_min_epi32(BAN__ALL16, _mm512_maskz_max_epi32(BAN__ALL16, q, lo), hi);
            _mm_storeu_si128((__m128i *)(void *)(o + k), _mm512_maskz_cvtepi32_epi8(BAN__ALL16, _mm512_add_epi32(q, offset)));
        }
        for (; k < K; k++) o[k] = (unsigned char)(ban__i8_of(xr[k] * inv) + 128);
    }
}

static int ban__runs_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
}
static int ban__runs_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static int ban__runs_avx512_bf16(void) { return ban__runs_avx512() && __builtin_cpu_supports("avx512bf16"); }
static int ban__runs_avx512_vnni(void) { return ban__runs_avx512() && __builtin_cpu_supports("avx512vnni"); }
#endif
static int ban__runs_always(void) { return 1; }

/* The kernels, best first. level: what BAN_SIMD must allow (2 avx512, 1 avx2, 0 none); a
   context takes, for each dtype, the first row this processor runs within that cap. */
typedef struct ban__kernel {
    const char *name;
    int dtype;                            /* the weights (B) it reads; C is f32 */
    int level;
    int mr, nr;                           /* a full tile: rows, and columns of a panel per call */
    int kc;                               /* k per tile: BAN__KC, or 0: all of K (int8's exact sums) */
    int (*runs)(void);
    void (*full)(const ban__tile *t);     /* a tile of mr rows */
    void (*part)(const ban__tile *t);     /* fewer rows (t->mr < mr) */
    /* one row by `panels` (<= BAN__CHUNK) consecutive panels, pstride elements apart, each
       output as full / part compute it; NULL: part, a panel at a time */
    void (*row)(const ban__tile *t, int panels, size_t pstride);
    /* the activations (M, K) in the kernel's dtype, once per product (rows of ldo elements, a
       scale per row for int8); NULL: it reads them as f32 */
    void (*prepare)(const float *x, int M, int K, size_t ldx, void *out, size_t ldo, float *scale);
} ban__kernel;

static const ban__kernel ban__kernels[] = {
#if BAN__X86
    {"avx512", BAN__F32, 2, 10, 32, BAN__KC, ban__runs_avx512, ban__tile512_full, ban__tile512_part, ban__row512, NULL},
    {"avx2", BAN__F32, 1, 6, 16, BAN__KC, ban__runs_avx2, ban__tile256_full, ban__tile256_part, NULL, NULL},
    {"avx512_bf16", BAN__BF16, 2, 10, 32, 0, ban__runs_avx512_bf16, ban__tile512_bf16_full, ban__tile512_bf16_part,
     NULL, ban__prepare_bf16_512},
    {"avx512_vnni", BAN__I8, 2, 10, 32, 0, ban__runs_avx512_vnni, ban__tile512_i8_full, ban__tile512_i8_part,
     NULL, ban__prepare_i8_512},
#endif
    {"c", BAN__F32, 0, BAN__MC, 32, BAN__KC, ban__runs_always, ban__tile_c, ban__tile_c, NULL, NULL},
    {"c", BAN__BF16, 0, BAN__MC, 32, 0, ban__runs_always, ban__tile_bf16_c, ban__tile_bf16_c, NULL, ban__prepare_bf16_c},
    {"c", BAN__I8, 0, BAN__MC, 32, 0, ban__runs_always, ban__tile_i8_c, ban__tile_i8_c, NULL, ban__prepare_i8_c},
};
#define BAN__N_KERNELS ((int)(sizeof ban__kernels / sizeof ban__kernels[0]))

/* BAN_SIMD's cap on the kernels' level (2: none), and whether its value was understood */
static int ban__simd_cap(int *understood)
{
    static const char *const names[] = {"none", "avx2", "avx512"};
    const char *cap = getenv("BAN_SIMD");
    *understood = 1;
    if (!cap || !*cap) return 2;
    for (int i = 0; i < 3; i++)
        if (strcmp(cap, names[i]) == 0) return i;
    *understood = 0;
    return 2;
}

/* the best kernel for weights of dtype d on this processor, within BAN_SIMD's cap */
static const ban__kernel *ban__pick_kernel(int d)
{
    int understood;
    const int cap = ban__simd_cap(&understood);
    for (int i = 0; i < BAN__N_KERNELS; i++)
        if (ban__kernels[i].dtype == d && ban__kernels[i].level <= cap && ban__kernels[i].runs())
            return &ban__kernels[i];
    return NULL;
}

BANDEF const char *ban_kernels_available(void)
{
#if BAN__X86
    if (ban__runs_avx512()) return "avx512 avx2 c";
    if (ban__runs_avx2()) return "avx2 c";
#endif
    return "c";
}

BANDEF const char *ban_simd_warning(void)
{
    int understood;
    ban__simd_cap(&understood);
    return understood ? NULL : "BAN_SIMD is not one of avx512, avx2, none: ignored (the best kernel runs)";
}

/* one product: y (M, N) = x (M, K) W^T (+ bias, relu) with W in panels as above; x and W in
   the kernel's dtype (K, ldx, ldb and pstride count its elements; K padded to its group) */
typedef struct ban__pgemm {
    int M, N, K, ldx, ldy, relu;
    const ban__kernel *kernel;
    const void *x;
    const void *B;        /* W in panels */
    size_t ldb, pstride;
    const float *bias;    /* (N) or NULL */
    float *y;
    const float *x_scale, *w_scale; /* int8: a scale per row of x, per row of W (N) */
    const int32_t *w_sum; /* int8: per row of W, the sum of its elements */
} ban__pgemm;

/* the product's work items: slices of rows times chunks of panels */
static int ban__pgemm_items(const ban__pgemm *g)
{
    const int P = (g->N + BAN__NR - 1) / BAN__NR, C = (P + BAN__CHUNK - 1) / BAN__CHUNK;
    return (g->M + BAN__MC - 1) / BAN__MC * C;
}

/* work item t: rows [i0, i0 + BAN__MC) of slice t / C, panels [p0, p0 + BAN__CHUNK) of chunk
   t % C, cut into the kernel's tiles: nr columns of a panel by mr rows at a time */
static void ban__pgemm_item(const ban__pgemm *g, int t)
{
    const ban__kernel *kr = g->kernel;
    const size_t eb = (size_t)ban__dtypes[kr->dtype].bytes, grp = (size_t)ban__dtypes[kr->dtype].group;
    const unsigned char *X = (const unsigned char *)g->x, *W = (const unsigned char *)g->B;
    const int P = (g->N + BAN__NR - 1) / BAN__NR, C = (P + BAN__CHUNK - 1) / BAN__CHUNK, KC = kr->kc ? kr->kc : g->K;
    const int i0 = t / C * BAN__MC, p0 = t % C * BAN__CHUNK, p1 = p0 + BAN__CHUNK < P ? p0 + BAN__CHUNK : P;
    const int mc = g->M - i0 < BAN__MC ? g->M - i0 : BAN__MC;
    if (mc == 1 && kr->row) { /* one row: every panel of the item at once, a slice of k at a time */
        ban__tile tl;
        const int nlast = g->N - (p1 - 1) * BAN__NR < BAN__NR ? g->N - (p1 - 1) * BAN__NR : BAN__NR;
        tl.relu = g->relu, tl.lda = (size_t)g->ldx, tl.ldb = g->ldb, tl.ldc = (size_t)g->ldy, tl.mr = 1, tl.nc = nlast;
        tl.bias = g->bias ? g->bias + (size_t)p0 * BAN__NR : NULL, tl.C = g->y + (size_t)i0 * g->ldy + (size_t)p0 * BAN__NR;
        tl.a_scale = tl.b_scale = NULL, tl.b_sum = NULL;
        for (int k0 = 0; k0 < g->K; k0 += KC) {
            tl.kc = g->K - k0 < KC ? g->K - k0 : KC;
            tl.first = k0 == 0, tl.last = k0 + tl.kc == g->K;
            tl.A = X + ((size_t)i0 * g->ldx + k0) * eb;
            tl.B = W + ((size_t)p0 * g->pstride + (size_t)k0 * g->ldb) * eb;
            kr->row(&tl, p1 - p0, g->pstride);
        }
        return;
    }
    for (int p = p0; p < p1; p++) {
        const int np = g->N - p * BAN__NR < BAN__NR ? g->N - p * BAN__NR : BAN__NR; /* columns of this panel */
        ban__tile tl;
        tl.relu = g->relu, tl.lda = (size_t)g->ldx, tl.ldb = g->ldb, tl.ldc = (size_t)g->ldy;
        for (int k0 = 0; k0 < g->K; k0 += KC) {
            tl.kc = g->K - k0 < KC ? g->K - k0 : KC;
            tl.first = k0 == 0, tl.last = k0 + tl.kc == g->K;
            for (int h = 0; h < np; h += kr->nr) {
                const size_t col = (size_t)p * BAN__NR + h;
                tl.nc = np - h < kr->nr ? np - h : kr->nr;
                tl.B = W + ((size_t)p * g->pstride + (size_t)k0 * g->ldb + (size_t)h * grp) * eb;
                tl.bias = g->bias ? g->bias + col : NULL;
                tl.b_scale = g->w_scale ? g->w_scale + col : NULL;
                tl.b_sum = g->w_sum ? g->w_sum + col : NULL;
                for (int i = 0; i < mc; i += kr->mr) {
                    tl.mr = mc - i < kr->mr ? mc - i : kr->mr;
                    tl.A = X + ((size_t)(i0 + i) * g->ldx + k0) * eb;
                    tl.a_scale = g->x_scale ? g->x_scale + i0 + i : NULL;
                    tl.C = g->y + (size_t)(i0 + i) * g->ldy + col;
                    if (tl.mr == kr->mr) kr->full(&tl);
                    else kr->part(&tl);
                }
            }
        }
    }
}

/* a context's threads: they take work items of ban.h's own product */
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

/* how long a caller waits awake for its workers, in pauses (27 ns each on the machine this was
   measured on, 54 us in all; 2.7 ms was as good alone and lost a third of the throughput when
   more threads than cores ran contexts), and one pause */
#ifndef BAN__SPIN
#define BAN__SPIN 2000L
#endif
#if BAN__X86
#define ban__pause() _mm_pause()
#else
#define ban__pause() ((void)0)
#endif

/* the next work item of the current product, -1 when none is left (one atomic add: items of a
   row's product take microseconds, a lock each would be a good part of them) */
static int ban__take_item(ban__pool *pl)
{
    const int t = __atomic_fetch_add(&pl->next, 1, __ATOMIC_RELAXED);
    return t < pl->items ? t : -1;
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
        if (__atomic_sub_fetch(&pl->pending, 1, __ATOMIC_RELEASE) == 0) pthread_cond_signal(&pl->done);
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
    BAN_ASSERT(g->kernel && g->M >= 1 && g->N >= 1 && g->K >= 1);
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
        /* a running worker is at most one item behind: wait for it awake first (a short spin),
           as falling asleep and being woken costs the caller about what a second thread saves
           on a row's product (GRU step 0.23 -> 0.12 ms at 2 threads); the workers themselves
           sleep between products, so they never take a core from OpenBLAS's threads */
        for (long spin = 0; spin < BAN__SPIN && __atomic_load_n(&pl->pending, __ATOMIC_ACQUIRE); spin++) ban__pause();
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

/* ---- file reader -------------------------------------------------------------
   The .ban file (docs/FORMAT.md): a 48-byte header, typed metadata entries, a tensor
   directory, then the aligned data section. Every size, count and offset is checked against
   the file before it is used. */

enum { BAN__T_INT64 = 1, BAN__T_FLOAT64 = 2, BAN__T_STRING = 3, BAN__T_STRING_ARRAY = 4, BAN__T_INT64_ARRAY = 5 };
#define BAN__HEADER 48

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
    const unsigned char *data; /* as stored */
    const float *f32;          /* the elements as floats: data itself, or its widened copy (NULL:
                                  read as stored) */
    const ban_weight_spec *spec; /* the row of the weight table that claims it, */
    int is_bias, is_scale;     /* as its weight, its bias or its scales */
    int bound;                 /* claimed by the model */
    int in_place;              /* read as stored by a kernel or ban__weight_row, not widened */
} ban__tensor;

/* what a file holds, and what the model reads from it: ban_model below */
typedef struct ban__file {
    char path[256];
    const unsigned char *bytes;
    size_t size;
    ban__meta *meta;
    size_t n_meta;
    ban__tensor *tensors;
    size_t n_tensors;
} ban__file;

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
static int ban__string(const ban__file *f, char *err, ban__cursor *c, const char *what, const char **out,
                       uint32_t *len_out)
{
    const unsigned char *p;
    uint64_t at = c->pos;
    if (!ban__take(c, 4, &p))
        return ban__fail(err, BAN_ERR_FORMAT, "%s: offset %llu: %s: length runs past its section", f->path,
                         (unsigned long long)at, what);
    uint32_t len = ban__u32(p);
    if (len > BAN_MAX_STRING)
        return ban__fail(err, BAN_ERR_FORMAT, "%s: offset %llu: %s: length %u exceeds %d", f->path,
                         (unsigned long long)at, what, len, BAN_MAX_STRING);
    if (!ban__take(c, (uint64_t)len + 1, &p))
        return ban__fail(err, BAN_ERR_FORMAT, "%s: offset %llu: %s: %u bytes run past its section", f->path,
                         (unsigned long long)at, what, len);
    if (p[len] != 0)
        return ban__fail(err, BAN_ERR_FORMAT, "%s: offset %llu: %s is not NUL-terminated", f->path,
                         (unsigned long long)at, what);
    if (memchr(p, 0, len))
        return ban__fail(err, BAN_ERR_FORMAT, "%s: offset %llu: %s holds a NUL byte", f->path,
                         (unsigned long long)at, what);
    *out = (const char *)p;
    if (len_out) *len_out = len;
    return BAN_OK;
}

static int ban__cmp_offset(const void *a, const void *b)
{
    const ban__tensor *x = *(const ban__tensor *const *)a, *y = *(const ban__tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* the one message of a file cut short, wherever the cut falls */
static int ban__truncated(const ban__file *f, char *err, uint64_t need)
{
    return ban__fail(err, BAN_ERR_FORMAT, "%s: %llu bytes, but the file needs %llu: truncated? (an interrupted "
                     "download or copy; export or copy it again)", f->path, (unsigned long long)f->size,
                     (unsigned long long)need);
}

/* what a file that is not a .ban file probably is, for the message that refuses it */
static const char *ban__not_ban_hint(const unsigned char *b, size_t n)
{
    if (n >= 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4)
        return ": a zip archive, like a PyTorch checkpoint (.pth/.pkl): convert it with tools/ban_export.py";
    if (n >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5)
        return ": a pickle, like a legacy PyTorch checkpoint (.pth/.pkl): convert it with tools/ban_export.py";
    if (n >= 6 && memcmp(b, "\x93NUMPY", 6) == 0) return ": a NumPy .npy array, not a model";
    return "";
}

/* header, metadata and tensor directory */
static int ban__parse_file(ban__file *fl, char *err)
{
    const unsigned char *f = fl->bytes, *p;
    uint64_t size = fl->size;
    if (size >= 4 && memcmp(f, "BANM", 4) != 0)
        return ban__fail(err, BAN_ERR_FORMAT, "%s: not a ban.h model file (magic %02x %02x %02x %02x)%s", fl->path,
                         f[0], f[1], f[2], f[3], ban__not_ban_hint(f, fl->size));
    if (size < BAN__HEADER) return ban__truncated(fl, err, BAN__HEADER);
    uint32_t version = ban__u32(f + 4), align = ban__u32(f + 8);
    uint64_t n_meta = ban__u64(f + 16), n_tensors = ban__u64(f + 24);
    uint64_t data_off = ban__u64(f + 32), data_size = ban__u64(f + 40);
    if (version != BAN_FILE_VERSION)
        return ban__fail(err, BAN_ERR_UNSUPPORTED, "%s: format version %u; this build reads version %d", fl->path,
                         version, BAN_FILE_VERSION);
    if (align < 8 || align > 4096 || (align & (align - 1)))
        return ban__fail(err, BAN_ERR_FORMAT, "%s: offset 8: alignment %u is not a power of two in 8..4096",
                         fl->path, align);
    if (data_off < BAN__HEADER || data_off % align || data_off > BAN_MAX_FILE_SIZE)
        return ban__fail(err, BAN_ERR_FORMAT, "%s: offset 32: data section offset %llu (file of %llu bytes, "
                         "alignment %u)", fl->path, (unsigned long long)data_off, (unsigned long long)size, align);
    if (data_size > BAN_MAX_FILE_SIZE)
        return ban__fail(err, BAN_ERR_FORMAT, "%s: offset 40: a data section of %llu bytes exceeds "
                         "BAN_MAX_FILE_SIZE", fl->path, (unsigned long long)data_size);
    if (data_off > size || data_size > size - data_off) return ban__truncated(fl, err, data_off + data_size);
    /* every entry takes at least 14 (metadata) or 22 (tensor) bytes of the directory */
    if (n_meta > (data_off - BAN__HEADER) / 14 || n_tensors > (data_off - BAN__HEADER) / 22)
        return ban__fail(err, BAN_ERR_FORMAT, "%s: offset 16: %llu metadata entries and %llu tensors cannot "
                         "fit in a %llu-byte directory", fl->path, (unsigned long long)n_meta,
                         (unsigned long long)n_tensors, (unsigned long long)(data_off - BAN__HEADER));
    /* keys and names are checked for duplicates pair by pair: bound the pairs */
    if (n_meta > BAN_MAX_ENTRIES || n_tensors > BAN_MAX_ENTRIES)
        return ban__fail(err, BAN_ERR_FORMAT, "%s: offset 16: %llu metadata entries or %llu tensors exceed "
                         "BAN_MAX_ENTRIES (%d)", fl->path, (unsigned long long)n_meta, (unsigned long long)n_tensors,
                         BAN_MAX_ENTRIES);
    fl->meta = (ban__meta *)BAN_MALLOC((size_t)(n_meta ? n_meta : 1) * sizeof *fl->meta);
    fl->tensors = (ban__tensor *)BAN_MALLOC((size_t)(n_tensors ? n_tensors : 1) * sizeof *fl->tensors);
    if (!fl->meta || !fl->tensors) return ban__fail(err, BAN_ERR_NOMEM, "%s: out of memory", fl->path);
    memset(fl->tensors, 0, (size_t)(n_tensors ? n_tensors : 1) * sizeof *fl->tensors);

    ban__cursor cur = {f, BAN__HEADER, data_off};
    int rc;
    for (uint64_t i = 0; i < n_meta; i++) {
        ban__meta *e = &fl->meta[i];
        char what[64];
        snprintf(what, sizeof what, "metadata entry %llu key", (unsigned long long)i);
        if ((rc = ban__string(fl, err, &cur, what, &e->key, NULL))) return rc;
        uint64_t at = cur.pos;
        if (!ban__take(&cur, 12, &p))
            return ban__fail(err, BAN_ERR_FORMAT, "%s: offset %llu: metadata '%s' is truncated", fl->path,
                             (unsigned long long)at, e->key);
        e->type = ban__u32(p);
        e->size = ban__u64(p + 4);
        if (!ban__take(&cur, e->size, &e->value))
            return ban__fail(err, BAN_ERR_FORMAT, "%s: offset %llu: metadata '%s' value of %llu bytes runs "
                             "past the directory", fl->path, (unsigned long long)at, e->key,
                             (unsigned long long)e->size);
        for (uint64_t j = 0; j < i; j++)
            if (strcmp(fl->meta[j].key, e->key) == 0)
                return ban__fail(err, BAN_ERR_FORMAT, "%s: offset %llu: metadata '%s' appears twice", fl->path,
                                 (unsigned long long)at, e->key);
        fl->n_meta = (size_t)i + 1;
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
            return ban__fail(err, BAN_ERR_FORMAT, "%s: offset %llu: metadata '%s' (type %u) has a malformed "
                             "value of %llu bytes", fl->path, (unsigned long long)at, e->key, e->type,
                             (unsigned long long)e->size);
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        ban__tensor *t = &fl->tensors[i];
        char what[64];
        snprintf(what, sizeof what, "tensor %llu name", (unsigned long long)i);
        if ((rc = ban__string(fl, err, &cur, what, &t->name, NULL))) return rc;
        uint64_t at = cur.pos;
        fl->n_tensors = (size_t)i + 1;
        if (!ban__take(&cur, 8, &p))
            return ban__fail(err, BAN_ERR_FORMAT, "%s: offset %llu: tensor '%s' is truncated", fl->path,
                             (unsigned long long)at, t->name);
        t->dtype = ban__u32(p);
        t->ndim = ban__u32(p + 4);
        if (t->dtype >= BAN__N_DTYPES)
            return ban__fail(err, BAN_ERR_UNSUPPORTED, "%s: offset %llu: tensor '%s' has dtype %u (known: 0 = "
                             "f32, 1 = f16, 2 = bf16, 3 = int8)", fl->path, (unsigned long long)at, t->name, t->dtype);
        if (t->ndim < 1 || t->ndim > 4)
            return ban__fail(err, BAN_ERR_FORMAT, "%s: offset %llu: tensor '%s' has %u dimensions (1..4)",
                             fl->path, (unsigned long long)at + 4, t->name, t->ndim);
        if (!ban__take(&cur, 8ull * t->ndim + 8, &p))
            return ban__fail(err, BAN_ERR_FORMAT, "%s: offset %llu: tensor '%s' is truncated", fl->path,
                             (unsigned long long)at, t->name);
        uint64_t count = 1;
        for (uint32_t d = 0; d < t->ndim; d++) {
            t->dims[d] = ban__u64(p + 8 * d);
            /* at most 2^60 elements, so that the byte count cannot wrap around */
            if (t->dims[d] < 1 || t->dims[d] > ((uint64_t)1 << 40) || count > (((uint64_t)1 << 60) / t->dims[d]))
                return ban__fail(err, BAN_ERR_FORMAT, "%s: offset %llu: tensor '%s' dimension %u is %llu", fl->path,
                                 (unsigned long long)at + 8 + 8 * d, t->name, d, (unsigned long long)t->dims[d]);
            count *= t->dims[d];
        }
        t->nbytes = count * (uint64_t)ban__dtypes[t->dtype].bytes;
        t->offset = ban__u64(p + 8 * t->ndim);
        if (t->offset % align)
            return ban__fail(err, BAN_ERR_FORMAT, "%s: offset %llu: tensor '%s' at data offset %llu is "
                             "misaligned (alignment %u)", fl->path, (unsigned long long)at + 8 + 8 * t->ndim,
                             t->name, (unsigned long long)t->offset, align);
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return ban__fail(err, BAN_ERR_FORMAT, "%s: offset %llu: tensor '%s' (%llu bytes at data offset %llu) "
                             "runs outside the %llu-byte data section", fl->path,
                             (unsigned long long)at + 8 + 8 * t->ndim, t->name, (unsigned long long)t->nbytes,
                             (unsigned long long)t->offset, (unsigned long long)data_size);
        t->data = f + data_off + t->offset;
        for (uint64_t j = 0; j < i; j++)
            if (strcmp(fl->tensors[j].name, t->name) == 0)
                return ban__fail(err, BAN_ERR_FORMAT, "%s: tensor '%s' appears twice", fl->path, t->name);
    }
    /* no two tensors share bytes */
    if (n_tensors > 1) {
        ban__tensor **order = (ban__tensor **)BAN_MALLOC((size_t)n_tensors * sizeof *order);
        if (!order) return ban__fail(err, BAN_ERR_NOMEM, "%s: out of memory", fl->path);
        for (uint64_t i = 0; i < n_tensors; i++) order[i] = &fl->tensors[i];
        qsort(order, (size_t)n_tensors, sizeof *order, ban__cmp_offset);
        rc = BAN_OK;
        for (uint64_t i = 1; i < n_tensors && !rc; i++)
            if (order[i - 1]->offset + order[i - 1]->nbytes > order[i]->offset)
                rc = ban__fail(err, BAN_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data section",
                               fl->path, order[i - 1]->name, order[i]->name);
        BAN_FREE(order);
        if (rc) return rc;
    }
    return BAN_OK;
}

static const ban__meta *ban__find_meta(const ban__file *f, const char *key)
{
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0) return &f->meta[i];
    return NULL;
}

/* the one tensor lookup */
static ban__tensor *ban__find_tensor(const ban__file *f, const char *name)
{
    for (size_t i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

/* ---- model ------------------------------------------------------------------
   A model is its configuration (metadata keys), its weights (handles into the file, or
   into the widened copy of a dtype the kernels do not read), and its strings. */

/* a weight the model reads: one, or a stack of `stack`, (rows, cols) matrices and their biases */
typedef struct ban__weight {
    const float *data;    /* in rows (stack, rows, cols), or panels (stack, ceil(rows/32), cols, 32);
                             NULL when the weight is read as stored (raw) */
    const float *bias;    /* (stack, rows), or NULL */
    int rows, cols, stack;
    int panels;           /* 1: stored in panels (ban.h's own product); 0: in rows (CBLAS) */
    int dtype;            /* what data or raw holds (a widened dtype's is f32) */
    size_t stride;        /* elements from one of the stack to the next */
    const unsigned char *raw; /* bf16 or int8 read as stored: panels of K padded to the group
                                 (stack, ceil(rows/32), Kp, 32), or embedding rows */
    const float *scale;   /* int8: (stack, rows), row r of W is q[r][.] * scale[r] */
    const int32_t *sums;  /* int8 in panels: (stack, ceil(rows/32) * 32) the sums of each row's q */
    ban__tensor *tensor, *bias_tensor, *scale_tensor;
} ban__weight;

/* The model's weights, a row each: X(field, file name, bias name, stack, rows, cols, when,
   linear). One weight is (rows, cols) = (out, in) as PyTorch's Linear stores it (cols 0: a
   vector of rows values), `stack` of them are (stack, rows, cols) (0: one); a Linear weight
   (linear 1) may instead be stored in panels of 32 rows, as NAME_panels (docs/FORMAT.md).
   `when`: the configurations that hold it. The letters are the configuration's, computed in
   ban__letters: V words, Vr embedding rows, Ew embedding size, Ein = Ew x tables, D hidden,
   kD the attention's width (rank k), Dg a glimpse's width (rank k_g), G glimpses, Dv the box
   features' size, Eb the GQA adapter's box embedding, Dvis what the visual projections read
   (Dv, + 6 with op 's', or the adapter's width), O counter objects, H classifier hidden, A
   answers, vqa (1 for the VQA task), adapter (1 with OpenVQA's GQA adapter). tools/banfile.py mirrors this table (WEIGHTS), and
   tests/test_tables.py holds the two equal. */
#define BAN__WEIGHTS(X)                                                                                          \
    X(emb, "word_embedding.weight", NULL, 0, Vr, Ew, 1, 0)                                                        \
    X(emb2, "word_embedding_extra.weight", NULL, 0, Vr, Ew, tables == 2, 0)                                       \
    X(gru_ih, "gru.weight_ih", "gru.bias_ih", 0, 3 * D, Ein, 1, 1)                                                \
    X(gru_hh, "gru.weight_hh", "gru.bias_hh", 0, 3 * D, D, 1, 1)                                                  \
    X(adapter_box, "adapter.bbox_linear.weight", "adapter.bbox_linear.bias", 0, Eb, 5, adapter * (Eb > 0), 1)     \
    X(adapter_vis, "adapter.frcn_linear.weight", "adapter.frcn_linear.bias", 0, Dvis, Dv + Eb, adapter, 1)        \
    X(visual, "visual.weight", "visual.bias", 0, kD + vqa * G * Dg, Dvis, 1, 1)                                   \
    X(att_q, "attention.q_net.weight", "attention.q_net.bias", 0, kD, D, 1, 1)                                    \
    X(att_h, "attention.h_mat", NULL, 0, G, kD, 1, 0)                                                             \
    X(att_hb, "attention.h_bias", NULL, 0, G, 0, 1, 0)                                                            \
    X(glimpse_q, "glimpse.q_net.weight", "glimpse.q_net.bias", G, Dg, D, vqa, 1)                                  \
    X(glimpse_p, "glimpse.q_prj.weight", "glimpse.q_prj.bias", G, D, D, vqa, 1)                                   \
    X(glimpse_c, "glimpse.c_prj.weight", "glimpse.c_prj.bias", G, D, O + 1, vqa * (O > 0), 1)                     \
    X(cls1, "classifier.0.weight", "classifier.0.bias", 0, H, D, vqa, 1)                                          \
    X(cls2, "classifier.1.weight", "classifier.1.bias", 0, A, H, vqa, 1)

#define BAN__WEIGHT_FIELD(field, name, bias, stack, rows, cols, when, linear) ban__weight field;
typedef struct ban__weights {
    BAN__WEIGHTS(BAN__WEIGHT_FIELD)
    ban__weight counter;                         /* counter.functions (F >= 8, S + 1) */
    ban__weight *enc;                            /* encoder_layers of them: encoder.convN.weight (O, C, k, k)
                                                    as (O, C k k) and its bias, for the conv layers */
    ban__weight enc_affine;                      /* encoder.input_affine (2, 3) */
} ban__weights;
#undef BAN__WEIGHT_FIELD

/* the table as ban_weight_specs hands it out, with the rows whose shapes are not fixed by
   the configuration alone last */
#define BAN__WEIGHT_SPEC(field, name, bias, stack, rows, cols, when, linear) {name, bias, #stack, #rows, #cols, #when, linear},
static const ban_weight_spec ban__weight_specs[] = {
    BAN__WEIGHTS(BAN__WEIGHT_SPEC)
    {"counter.functions", NULL, "0", "F", "S + 1", "vqa * (O > 0)", 0},
    {"encoder.input_affine", NULL, "0", "2", "3", "encoder", 0},
    {"encoder.convN.weight", "encoder.convN.bias", "0", "O_n", "C_n * k_n * k_n", "encoder", 0},
};
#define BAN__N_SPECS ((int)(sizeof ban__weight_specs / sizeof ban__weight_specs[0]))
#define BAN__PANEL_NAME(field, name, bias, stack, rows, cols, when, linear) name "_panels",
static const char *const ban__panel_names[] = {BAN__WEIGHTS(BAN__PANEL_NAME)};
#undef BAN__PANEL_NAME
#define BAN__SCALE_NAME(field, name, bias, stack, rows, cols, when, linear) name "_scales",
static const char *const ban__scale_names[] = {BAN__WEIGHTS(BAN__SCALE_NAME)};
#undef BAN__SCALE_NAME

/* the word embeddings are read a row at a time (ban__weight_row), so bf16 and int8 ones stay
   as stored */
static int ban__is_embedding(const ban_weight_spec *spec) { return strncmp(spec->name, "word_embedding", 14) == 0; }
#define BAN__SPEC_COUNTER (&ban__weight_specs[BAN__N_SPECS - 3])
#define BAN__SPEC_AFFINE (&ban__weight_specs[BAN__N_SPECS - 2])
#define BAN__SPEC_CONV (&ban__weight_specs[BAN__N_SPECS - 1])
#undef BAN__WEIGHT_SPEC

enum { BAN__CONV = 1, BAN__RELU = 2, BAN__MAXPOOL = 3 };

struct ban_model {
    ban_config config;
    ban__file file;
    int status;           /* not BAN_OK: the load failed, and only error and free may be called */
    int mapped;           /* file.bytes came from mmap */
    unsigned char *owned; /* the file read into memory (BAN_NO_MMAP) */
    float *widened;       /* the tensors of a widened dtype, as f32 */
    size_t n_params;
    size_t panel_padding; /* stored values that are not parameters: the zeros past the last row
                             (and k) of weights in panels, int8 scales */
    ban__weights w;
    int32_t *sums;        /* the int8 weights' row sums (ban__weight.sums), one block */
    size_t reduced_bytes; /* bytes of one row of activations in a bf16 or int8 product, the
                             largest (0: the model has no such weight) */
    float *counter_w, *counter_csum;             /* (F, S+1): normalised |w| and its cumsum */
    int counter_segments;                        /* S */
    /* image encoder: layer l is kind, out channels, kernel, stride, padding */
    int enc[BAN_MAX_ENCODER_LAYERS][5];
    size_t enc_act, enc_col;                     /* floats per image: largest activation, im2col */
    const char **words, **answers;               /* strings inside the file */
    uint32_t *word_len;
    int32_t *word_hash;                          /* open addressing: word id or -1 */
    size_t hash_mask;
    int max_word_bytes;
    char error[BAN__ERR];
};

/* a model that may be used: not NULL, loaded */
#define BAN__USABLE(m) ((m) && (m)->status == BAN_OK)

BANDEF const char *ban_model_meta_string(const ban_model *m, const char *key)
{
    const ban__meta *e = BAN__USABLE(m) && key ? ban__find_meta(&m->file, key) : NULL;
    return e && e->type == BAN__T_STRING ? (const char *)e->value : NULL;
}

BANDEF int ban_model_meta_int(const ban_model *m, const char *key, int64_t *value)
{
    const ban__meta *e = BAN__USABLE(m) && key && value ? ban__find_meta(&m->file, key) : NULL;
    if (!e || e->type != BAN__T_INT64) return 0;
    *value = (int64_t)ban__u64(e->value);
    return 1;
}

/* an INT64 entry within [lo, hi]; absent: *out = def, or an error when def < lo */
static int ban__cfg_int(ban_model *m, const char *key, int64_t lo, int64_t hi, int64_t def, int *out)
{
    const ban__meta *e = ban__find_meta(&m->file, key);
    if (!e) {
        if (def < lo) return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' is missing", m->file.path, key);
        *out = (int)def;
        return BAN_OK;
    }
    if (e->type != BAN__T_INT64)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' has type %u, expected an integer",
                         m->file.path, key, e->type);
    int64_t v = (int64_t)ban__u64(e->value);
    if (v < lo || v > hi)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' = %lld, expected %lld..%lld", m->file.path, key,
                         (long long)v, (long long)lo, (long long)hi);
    *out = (int)v;
    return BAN_OK;
}

/* a STRING entry that must be one of the choices (index into them) */
static int ban__cfg_choice(ban_model *m, const char *key, const char *const *choices, int n, int def, int *out)
{
    const ban__meta *e = ban__find_meta(&m->file, key);
    if (!e) {
        if (def < 0) return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' is missing", m->file.path, key);
        *out = def;
        return BAN_OK;
    }
    if (e->type != BAN__T_STRING)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' has type %u, expected a string", m->file.path,
                         key, e->type);
    for (int i = 0; i < n; i++)
        if (strcmp((const char *)e->value, choices[i]) == 0) return *out = i, BAN_OK;
    return ban__fail(m->error, BAN_ERR_UNSUPPORTED, "%s: metadata '%s' = '%.64s' is not one this build knows",
                     m->file.path, key, (const char *)e->value);
}

/* an INT64_ARRAY entry: its count and a pointer to the values (checked against its size) */
static int ban__int_array(ban_model *m, const ban__meta *e, uint64_t *count, const unsigned char **values)
{
    if (e->type != BAN__T_INT64_ARRAY)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' has type %u, expected an integer array",
                         m->file.path, e->key, e->type);
    *count = ban__u64(e->value);
    if (*count > (e->size - 8) / 8 || e->size != 8 + *count * 8)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' holds %llu integers in %llu bytes",
                         m->file.path, e->key, (unsigned long long)*count, (unsigned long long)e->size);
    *values = e->value + 8;
    return BAN_OK;
}

/* The image encoder, when the file has one: its input size and layers, checked layer by
   layer so that every size stays positive and every buffer is known before any forward. */
static int ban__parse_encoder(ban_model *m)
{
    ban_config *c = &m->config;
    const ban__meta *size = ban__find_meta(&m->file, "encoder.input_size");
    const ban__meta *layers = ban__find_meta(&m->file, "encoder.layers");
    uint64_t n_size = 0, n_layers = 0;
    const unsigned char *v_size = NULL, *v_layers = NULL;
    int rc;
    if (!size && !layers) return BAN_OK;
    if (!size || !layers)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: an image encoder needs both encoder.input_size and "
                         "encoder.layers", m->file.path);
    if ((rc = ban__int_array(m, size, &n_size, &v_size)) || (rc = ban__int_array(m, layers, &n_layers, &v_layers)))
        return rc;
    if (n_size != 2 || n_layers == 0 || n_layers % 5 || n_layers / 5 > BAN_MAX_ENCODER_LAYERS)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: encoder.input_size must hold 2 integers and encoder.layers "
                         "1..%d groups of 5", m->file.path, BAN_MAX_ENCODER_LAYERS);
    int64_t h = (int64_t)ban__u64(v_size), w = (int64_t)ban__u64(v_size + 8), ch = 3;
    if (h < 1 || w < 1 || h > BAN_MAX_IMAGE_SIDE || w > BAN_MAX_IMAGE_SIDE)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: encoder.input_size %lld x %lld outside 1..%d", m->file.path,
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
                             "valid conv, ReLU or max-pool for a %lld x %lld input", m->file.path, l, (long long)f[0],
                             (long long)f[1], (long long)f[2], (long long)f[3], (long long)f[4], (long long)h,
                             (long long)w);
        for (int j = 0; j < 5; j++) m->enc[l][j] = (int)f[j];
        if ((size_t)(ch * h * w) > m->enc_act) m->enc_act = (size_t)(ch * h * w);
    }
    if (ch != c->feature_dim)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: the encoder ends with %lld channels, ban.feature_dim is %d",
                         m->file.path, (long long)ch, c->feature_dim);
    /* the image size is not backed by any weight: bound the context it would need */
    if (m->enc_act + m->enc_col > BAN_MAX_ENCODER_FLOATS)
        return ban__fail(m->error, BAN_ERR_UNSUPPORTED, "%s: the encoder needs %zu floats of buffers per image "
                         "(largest activation and im2col), above BAN_MAX_ENCODER_FLOATS (%d)", m->file.path,
                         m->enc_act + m->enc_col, BAN_MAX_ENCODER_FLOATS);
    if (h * w > BAN_MAX_BOXES || c->spatial_concat)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: an encoder grid of %lld x %lld cells (at most %d, and no "
                         "spatial_concat)", m->file.path, (long long)h, (long long)w, BAN_MAX_BOXES);
    c->grid_height = (int)h, c->grid_width = (int)w;
    return BAN_OK;
}

static int ban__parse_config(ban_model *m)
{
    ban_config *c = &m->config;
    static const char *const tasks[] = {"vqa", "grounding"};
    static const char *const qpad[] = {"unmasked", "masked"};
    static const char *const bpad[] = {"counts", "zero_rows", "fixed"};
    static const char *const adapters[] = {"none", "box_embedding"};
    static const char *const tokenizers[] = {"reference", "openvqa"};
    int rc, box_padding = 0, adapter = 0;
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
        (rc = ban__cfg_choice(m, "ban.box_padding", bpad, 3, -1, &box_padding)) ||
        (rc = ban__cfg_int(m, "ban.glimpse_rank", 1, 64, 1, &c->glimpse_rank)) ||
        (rc = ban__cfg_choice(m, "ban.adapter", adapters, 2, 0, &adapter)) ||
        (rc = ban__cfg_choice(m, "tokenizer.rules", tokenizers, 2, 0, &c->tokenizer)))
        return rc;
    c->zero_row_padding = box_padding == 1;
    if (box_padding == 2 && (rc = ban__cfg_int(m, "ban.pad_boxes", 1, BAN_MAX_BOXES, -1, &c->pad_boxes))) return rc;
    if (adapter && ((rc = ban__cfg_int(m, "ban.adapter_dim", 1, BAN_MAX_DIM, -1, &c->adapter_dim)) ||
                    (rc = ban__cfg_int(m, "ban.adapter_box_dim", 0, BAN_MAX_DIM, -1, &c->adapter_box_dim))))
        return rc;
    if ((c->pad_boxes || adapter) && c->task != BAN_TASK_VQA)
        return ban__fail(m->error, BAN_ERR_UNSUPPORTED, "%s: padded boxes and the box adapter are VQA options",
                         m->file.path);
    if (c->task == BAN_TASK_VQA) {
        if ((rc = ban__cfg_int(m, "ban.answer_count", 1, BAN_MAX_ANSWERS, -1, &c->num_answers)) ||
            (rc = ban__cfg_int(m, "ban.classifier_hidden", 1, BAN_MAX_DIM, -1, &c->classifier_hidden)) ||
            (rc = ban__cfg_int(m, "ban.counter_objects", 0, BAN_MAX_COUNTER_OBJECTS, -1, &c->counter_objects)))
            return rc;
        if (c->spatial_concat)
            return ban__fail(m->error, BAN_ERR_UNSUPPORTED, "%s: spatial_concat is a grounding option", m->file.path);
    }
    if ((size_t)c->attention_rank * c->hidden_dim > BAN_MAX_DIM * 4u ||
        (size_t)c->glimpse_rank * c->hidden_dim > BAN_MAX_DIM * 4u ||
        (size_t)c->feature_dim + c->adapter_box_dim > BAN_MAX_DIM ||
        (size_t)c->embedding_dim * c->embedding_tables > BAN_MAX_DIM)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: attention width or embedding width too large", m->file.path);
    if ((rc = ban__cfg_int(m, "tokenizer.unknown_id", 0, c->vocab_size - 1, c->vocab_size - 1, &c->unknown_id)) ||
        (rc = ban__cfg_int(m, "tokenizer.padding_id", 0, c->vocab_size, c->vocab_size, &c->padding_id)))
        return rc;
    c->num_ids = c->vocab_size + (c->padding_id == c->vocab_size);
    return ban__parse_encoder(m);
}

/* the configuration's letters, as the weight table and the context's buffers use them */
typedef struct ban__letters {
    int V, Vr, Ew, tables, Ein, D, kD, Dg, G, Dv, Eb, Dvis, O, H, A, vqa, adapter;
} ban__letters;

static ban__letters ban__letters_of(const ban_config *c)
{
    ban__letters l;
    l.V = c->vocab_size, l.Vr = c->num_ids ? c->num_ids : c->vocab_size + 1; /* + 1: the padding id V's row */
    l.Ew = c->embedding_dim, l.tables = c->embedding_tables, l.Ein = l.Ew * l.tables;
    l.D = c->hidden_dim, l.kD = c->attention_rank * l.D, l.Dg = (c->glimpse_rank ? c->glimpse_rank : 1) * l.D, l.G = c->num_glimpses;
    l.Dv = c->feature_dim, l.Eb = c->adapter_box_dim, l.adapter = c->adapter_dim > 0;
    l.Dvis = l.adapter ? c->adapter_dim : c->feature_dim + 6 * c->spatial_concat;
    l.O = c->counter_objects, l.H = c->classifier_hidden, l.A = c->num_answers;
    l.vqa = c->task == BAN_TASK_VQA;
    return l;
}

/* the shape a tensor must have: its dims as text for messages */
static void ban__dims_text(char *buf, size_t n, int nd, const uint64_t *dims)
{
    buf[0] = 0;
    for (int d = 0; d < nd; d++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%llu", d ? ", " : "", (unsigned long long)dims[d]);
}

/* claim the tensor `name`, which must have exactly the shape (dims); *out: it */
static int ban__claim(ban_model *m, const char *name, int nd, const uint64_t *dims, const ban_weight_spec *spec,
                      int is_bias, ban__tensor **out)
{
    ban__tensor *t = ban__find_tensor(&m->file, name);
    if (!t) return ban__fail(m->error, BAN_ERR_FORMAT, "%s: tensor '%s' is missing", m->file.path, name);
    int same = (int)t->ndim == nd;
    for (int d = 0; same && d < nd; d++) same = t->dims[d] == dims[d];
    if (!same) {
        char got[96], exp[96];
        ban__dims_text(got, sizeof got, (int)t->ndim, t->dims);
        ban__dims_text(exp, sizeof exp, nd, dims);
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: tensor '%s' has shape (%s), the configuration needs (%s)",
                         m->file.path, name, got, exp);
    }
    const int align = t->dtype == BAN__F32 || t->dtype == BAN__BF16 ? ban__dtypes[t->dtype].bytes : 1;
    if ((uintptr_t)t->data % (uintptr_t)align)
        return ban__fail(m->error, BAN_ERR_ARG, "%s: tensor '%s' is not %d-byte aligned in memory (load from "
                         "an aligned buffer)", m->file.path, name, align);
    t->bound = 1;
    t->spec = spec, t->is_bias = is_bias;
    m->n_params += (size_t)(t->nbytes / (uint64_t)ban__dtypes[t->dtype].bytes);
    *out = t;
    return BAN_OK;
}

/* bind one row of the weight table, in this configuration's shape: the weight (in rows under
   its name, or in panels under NAME_panels when it is a Linear weight stored so), its scales
   (int8) and its bias. A bf16 or int8 weight in panels is read as stored by the kernels, a bf16
   or int8 word embedding row by row (ban__weight_row); other bf16 weights are widened to f32. */
static int ban__bind_weight(ban_model *m, ban__weight *w, const ban_weight_spec *spec, int stack, int rows, int cols)
{
    char paneled[96], scales[96];
    uint64_t dims[4];
    int nd = 0, rc;
    snprintf(paneled, sizeof paneled, "%s_panels", spec->name);
    snprintf(scales, sizeof scales, "%s_scales", spec->name);
    w->rows = rows, w->cols = cols ? cols : 1, w->stack = stack ? stack : 1, w->dtype = BAN__F32;
    w->panels = spec->linear && ban__find_tensor(&m->file, paneled) != NULL;
    const ban__tensor *stored = ban__find_tensor(&m->file, w->panels ? paneled : spec->name);
    const int dt = stored ? (int)stored->dtype : BAN__F32, lookup = ban__is_embedding(spec);
    const int raw = dt != BAN__F32 && ban__dtypes[dt].in_place && (w->panels || lookup);
    const uint64_t K = raw && w->panels ? (uint64_t)ban__padded_k(dt, (size_t)cols) : (uint64_t)cols;
    if (dt == BAN__I8 && !raw)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: tensor '%s' is int8, which ban.h reads only as a Linear "
                         "weight in panels or a word embedding", m->file.path, stored->name);
    if (stack) dims[nd++] = (uint64_t)stack;
    if (w->panels) {
        const uint64_t p = ((uint64_t)rows + BAN__NR - 1) / BAN__NR;
        dims[nd++] = p, dims[nd++] = K, dims[nd++] = BAN__NR;
        w->stride = (size_t)(p * BAN__NR) * (size_t)K;
        m->config.panel_weights++;
        m->panel_padding += (size_t)w->stack * ((size_t)(p * BAN__NR) * (size_t)K - (size_t)rows * (size_t)cols);
    } else {
        dims[nd++] = (uint64_t)rows;
        if (cols) dims[nd++] = (uint64_t)cols;
        w->stride = (size_t)rows * (size_t)w->cols;
    }
    m->config.linear_weights += spec->linear;
    if ((rc = ban__claim(m, w->panels ? paneled : spec->name, nd, dims, spec, 0, &w->tensor))) return rc;
    if (raw) {
        w->dtype = dt, w->raw = w->tensor->data, w->tensor->in_place = 1;
        /* int8 sums of K products of u8 and s8 stay within int32 for K <= 65,792 */
        if (dt == BAN__I8 && K > 65792)
            return ban__fail(m->error, BAN_ERR_UNSUPPORTED, "%s: tensor '%s' is int8 with %llu columns; the int8 "
                             "kernels take at most 65,792", m->file.path, w->tensor->name, (unsigned long long)K);
        if (w->panels && (size_t)K * (size_t)ban__dtypes[dt].bytes > m->reduced_bytes)
            m->reduced_bytes = (size_t)K * (size_t)ban__dtypes[dt].bytes;
    }
    if (ban__dtypes[dt].scaled) { /* NAME_scales (stack, rows), f32 */
        uint64_t sd[2];
        int sn = 0;
        if (stack) sd[sn++] = (uint64_t)stack;
        sd[sn++] = (uint64_t)rows;
        if ((rc = ban__claim(m, scales, sn, sd, spec, 0, &w->scale_tensor))) return rc;
        if (w->scale_tensor->dtype != BAN__F32)
            return ban__fail(m->error, BAN_ERR_FORMAT, "%s: tensor '%s' is %s; scales are f32", m->file.path, scales,
                             ban__dtypes[w->scale_tensor->dtype].name);
        w->scale_tensor->is_scale = 1;
        m->panel_padding += (size_t)w->stack * (size_t)rows; /* scales are not parameters */
    }
    if (spec->bias) {
        uint64_t bd[2];
        int bn = 0;
        if (stack) bd[bn++] = (uint64_t)stack;
        bd[bn++] = (uint64_t)rows;
        if ((rc = ban__claim(m, spec->bias, bn, bd, spec, 1, &w->bias_tensor))) return rc;
    }
    return BAN_OK;
}

/* the counter's piecewise-linear functions, (F >= 8, S + 1): the file sets F and S */
static int ban__bind_counter(ban_model *m)
{
    ban__tensor *t = ban__find_tensor(&m->file, "counter.functions");
    if (!t) return ban__fail(m->error, BAN_ERR_FORMAT, "%s: tensor 'counter.functions' is missing", m->file.path);
    if (t->ndim != 2 || t->dims[0] < 8 || t->dims[0] > 64 || t->dims[1] < 2 || t->dims[1] > 4097)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: tensor 'counter.functions' must be (8..64, 2..4097)",
                         m->file.path);
    m->counter_segments = (int)t->dims[1] - 1;
    return ban__bind_weight(m, &m->w.counter, BAN__SPEC_COUNTER, 0, (int)t->dims[0], (int)t->dims[1]);
}

/* the image encoder's weights: the input's affine map, and each conv layer's (O, C, k, k) */
static int ban__bind_encoder(ban_model *m)
{
    const ban_config *c = &m->config;
    int ch = 3, conv = 0, rc;
    if ((rc = ban__bind_weight(m, &m->w.enc_affine, BAN__SPEC_AFFINE, 0, 2, 3))) return rc;
    /* a handle per layer, allocated (not in the model) so that a model without an encoder stays small */
    m->w.enc = (ban__weight *)BAN_MALLOC((size_t)c->encoder_layers * sizeof *m->w.enc);
    if (!m->w.enc) return ban__fail(m->error, BAN_ERR_NOMEM, "%s: out of memory", m->file.path);
    memset(m->w.enc, 0, (size_t)c->encoder_layers * sizeof *m->w.enc);
    for (int l = 0; l < c->encoder_layers; l++) {
        if (m->enc[l][0] != BAN__CONV) continue;
        const int k = m->enc[l][2], out = m->enc[l][1];
        char name[32], bias[32];
        const uint64_t dims[4] = {(uint64_t)out, (uint64_t)ch, (uint64_t)k, (uint64_t)k}, bd[1] = {(uint64_t)out};
        ban__weight *w = &m->w.enc[l];
        snprintf(name, sizeof name, "encoder.conv%d.weight", conv);
        snprintf(bias, sizeof bias, "encoder.conv%d.bias", conv++);
        w->rows = out, w->cols = ch * k * k, w->stack = 1, w->dtype = BAN__F32, w->stride = 0;
        if ((rc = ban__claim(m, name, 4, dims, BAN__SPEC_CONV, 0, &w->tensor)) ||
            (rc = ban__claim(m, bias, 1, bd, BAN__SPEC_CONV, 1, &w->bias_tensor)))
            return rc;
        ch = out;
    }
    return BAN_OK;
}

/* every tensor as floats: f32 in place, those read as stored left alone (f32 == NULL), the
   others widened once into memory the model owns (after every shape is known, so a
   malformed file is refused first) */
static int ban__widen(ban_model *m)
{
    size_t wide = 0, table_n = 0;
    for (size_t i = 0; i < m->file.n_tensors; i++) {
        const ban__tensor *t = &m->file.tensors[i];
        if (t->dtype == BAN__F32 || t->in_place) continue;
        if (!ban__dtypes[t->dtype].widen)
            return ban__fail(m->error, BAN_ERR_FORMAT, "%s: tensor '%s' is %s, which ban.h reads only as a Linear "
                             "weight in panels or a word embedding", m->file.path, t->name,
                             ban__dtypes[t->dtype].name);
        wide += (size_t)(t->nbytes / (uint64_t)ban__dtypes[t->dtype].bytes);
        if (t->dtype == BAN__F16) table_n += (size_t)(t->nbytes / 2);
    }
    float *table = NULL, *out = NULL;
    if (wide) {
        m->widened = out = (float *)BAN_MALLOC(ban__mul(wide, sizeof(float)) ? wide * sizeof(float) : (size_t)-1);
        if (!out) return ban__fail(m->error, BAN_ERR_NOMEM, "%s: out of memory widening to float32", m->file.path);
    }
    /* f16 through a table of all 65,536 values, built only when the file holds at least as many */
    if (table_n >= 65536) {
        table = (float *)BAN_MALLOC(65536 * sizeof(float));
        if (!table) return ban__fail(m->error, BAN_ERR_NOMEM, "%s: out of memory widening float16", m->file.path);
        for (uint32_t h = 0; h < 65536; h++) table[h] = ban__half((uint16_t)h);
    }
    for (size_t i = 0; i < m->file.n_tensors; i++) {
        ban__tensor *t = &m->file.tensors[i];
        const ban__dtype *d = &ban__dtypes[t->dtype];
        if (t->dtype == BAN__F32 || t->in_place) {
            t->f32 = t->dtype == BAN__F32 ? (const float *)(const void *)t->data : NULL;
            continue;
        }
        const size_t n = (size_t)(t->nbytes / (uint64_t)d->bytes);
        d->widen(t->data, n, out, t->dtype == BAN__F16 ? table : NULL);
        t->f32 = out;
        out += n;
    }
    BAN_FREE(table);
    return BAN_OK;
}

/* The row sums of every int8 weight in panels, which the VNNI kernel subtracts (times 128)
   from its sums of u8 activations by s8 weights. Computed at load from the weights themselves
   (a file cannot make them disagree); panels' padding rows included, harmlessly. */
static int ban__int8_sums(ban_model *m)
{
#define BAN__HANDLE(field, name, bias, stack, rows, cols, when, linear) &m->w.field,
    ban__weight *all[] = {BAN__WEIGHTS(BAN__HANDLE)};
#undef BAN__HANDLE
    const int n = (int)(sizeof all / sizeof all[0]);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        if (all[i]->raw && all[i]->dtype == BAN__I8 && all[i]->panels)
            total += (size_t)all[i]->stack * (all[i]->stride / ban__padded_k(BAN__I8, (size_t)all[i]->cols));
    if (!total) return BAN_OK;
    m->sums = (int32_t *)BAN_MALLOC(total * sizeof(int32_t));
    if (!m->sums) return ban__fail(m->error, BAN_ERR_NOMEM, "%s: out of memory", m->file.path);
    int32_t *sum = m->sums;
    for (int i = 0; i < n; i++) {
        ban__weight *w = all[i];
        if (!(w->raw && w->dtype == BAN__I8 && w->panels)) continue;
        const size_t K = ban__padded_k(BAN__I8, (size_t)w->cols), P = w->stride / K / BAN__NR;
        w->sums = sum;
        for (size_t p = 0; p < (size_t)w->stack * P; p++, sum += BAN__NR) {
            const int8_t *src = (const int8_t *)(const void *)w->raw + p * K * BAN__NR;
            int32_t lane[4 * BAN__NR] = {0}; /* byte b of every group of k: column b / 4 */
            for (size_t q = 0; q < K / 4; q++)
                for (int b = 0; b < 4 * BAN__NR; b++) lane[b] += src[q * 4 * BAN__NR + (size_t)b];
            for (int j = 0; j < BAN__NR; j++) sum[j] = lane[4 * j] + lane[4 * j + 1] + lane[4 * j + 2] + lane[4 * j + 3];
        }
    }
    return BAN_OK;
}

/* a handle's pointers, once its tensors are floats */
static void ban__resolve(ban__weight *w)
{
    if (w->tensor) w->data = w->tensor->f32;
    if (w->bias_tensor) w->bias = w->bias_tensor->f32;
    if (w->scale_tensor) w->scale = w->scale_tensor->f32;
}

static int ban__bind_weights(ban_model *m)
{
    const ban_config *c = &m->config;
    const ban__letters L = ban__letters_of(c);
    const int V = L.V, Vr = L.Vr, Ew = L.Ew, tables = L.tables, Ein = L.Ein, D = L.D, kD = L.kD, Dg = L.Dg;
    const int G = L.G, Dv = L.Dv, Eb = L.Eb, Dvis = L.Dvis, O = L.O, H = L.H, A = L.A, vqa = L.vqa, adapter = L.adapter;
    int rc = BAN_OK, row = 0;
    (void)V;
    /* each row of the table that this configuration holds, in the table's order */
#define BAN__BIND(field, name, bias, stack, rows, cols, when, linear) \
    if (!rc && (when) != 0) rc = ban__bind_weight(m, &m->w.field, &ban__weight_specs[row], stack, rows, cols); \
    row++;
    BAN__WEIGHTS(BAN__BIND)
#undef BAN__BIND
    if (rc) return rc;
    if (vqa && O && (rc = ban__bind_counter(m))) return rc;
    if (c->encoder_layers && (rc = ban__bind_encoder(m))) return rc;
    m->n_params -= m->panel_padding; /* parameters, not floats stored */
    for (size_t i = 0; i < m->file.n_tensors; i++)
        if (!m->file.tensors[i].bound)
            return ban__fail(m->error, BAN_ERR_FORMAT, "%s: tensor '%s' is not part of this configuration",
                             m->file.path, m->file.tensors[i].name);
    if ((rc = ban__widen(m))) return rc;
#define BAN__RESOLVE(field, name, bias, stack, rows, cols, when, linear) ban__resolve(&m->w.field);
    BAN__WEIGHTS(BAN__RESOLVE)
#undef BAN__RESOLVE
    ban__resolve(&m->w.counter);
    ban__resolve(&m->w.enc_affine);
    for (int l = 0; l < c->encoder_layers; l++) ban__resolve(&m->w.enc[l]);
    if ((rc = ban__int8_sums(m))) return rc;

    /* the counter reads |w| / sum |w| and its running sum */
    if (m->w.counter.data) {
        const size_t F = (size_t)m->w.counter.rows, W1 = (size_t)m->w.counter.cols;
        const float *cw = m->w.counter.data;
        m->counter_w = (float *)BAN_MALLOC(2 * F * W1 * sizeof(float));
        if (!m->counter_w) return ban__fail(m->error, BAN_ERR_NOMEM, "%s: out of memory", m->file.path);
        m->counter_csum = m->counter_w + F * W1;
        for (size_t f = 0; f < F; f++) {
            float sum = 0.0f, run = 0.0f, *w = m->counter_w + f * W1, *cs = m->counter_csum + f * W1;
            for (size_t j = 0; j < W1; j++) sum += fabsf(cw[f * W1 + j]);
            for (size_t j = 0; j < W1; j++) {
                w[j] = fabsf(cw[f * W1 + j]) / sum;
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
    uint64_t base = (uint64_t)(e->value - m->file.bytes);
    ban__cursor cur = {m->file.bytes, base, base + e->size};
    if (e->type != BAN__T_STRING_ARRAY)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' has type %u, expected a string array",
                         m->file.path, e->key, e->type);
    if (!ban__take(&cur, 8, &p))
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' is too short for a string array",
                         m->file.path, e->key);
    uint64_t n = ban__u64(p);
    if (n != count)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' holds %llu strings, the configuration needs "
                         "%llu", m->file.path, e->key, (unsigned long long)n, (unsigned long long)count);
    if (n > (e->size - 8) / 5) /* each string takes 5 bytes or more: believe no count its bytes cannot hold */
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' claims %llu strings in %llu bytes",
                         m->file.path, e->key, (unsigned long long)n, (unsigned long long)e->size);
    *out = (const char **)BAN_MALLOC((size_t)(count ? count : 1) * sizeof **out);
    if (lens) *lens = (uint32_t *)BAN_MALLOC((size_t)(count ? count : 1) * sizeof **lens);
    if (!*out || (lens && !*lens)) return ban__fail(m->error, BAN_ERR_NOMEM, "%s: out of memory", m->file.path);
    for (uint64_t i = 0; i < n; i++) {
        char what[96];
        int rc;
        snprintf(what, sizeof what, "'%s' string %llu", e->key, (unsigned long long)i);
        if ((rc = ban__string(&m->file, m->error, &cur, what, &(*out)[i], lens ? &(*lens)[i] : NULL))) return rc;
    }
    if (cur.pos != cur.end)
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: metadata '%s' has %llu stray bytes after its strings",
                         m->file.path, e->key, (unsigned long long)(cur.end - cur.pos));
    return BAN_OK;
}

static int ban__parse_strings(ban_model *m)
{
    ban_config *c = &m->config;
    const ban__meta *e;
    int rc;
    if ((e = ban__find_meta(&m->file, "tokenizer.words"))) {
        if ((rc = ban__string_array(m, e, (uint64_t)c->vocab_size, &m->words, &m->word_len))) return rc;
        size_t cap = 2;
        while (cap < 2 * (size_t)c->vocab_size) cap <<= 1;
        m->word_hash = (int32_t *)BAN_MALLOC(cap * sizeof *m->word_hash);
        if (!m->word_hash) return ban__fail(m->error, BAN_ERR_NOMEM, "%s: out of memory", m->file.path);
        memset(m->word_hash, 0xff, cap * sizeof *m->word_hash);
        m->hash_mask = cap - 1;
        for (int id = 0; id < c->vocab_size; id++) {
            size_t h = (size_t)ban__hash(m->words[id], m->word_len[id]) & m->hash_mask;
            while (m->word_hash[h] >= 0) {
                int other = m->word_hash[h];
                if (m->word_len[other] == m->word_len[id] && !memcmp(m->words[other], m->words[id], m->word_len[id]))
                    return ban__fail(m->error, BAN_ERR_FORMAT, "%s: tokenizer.words: '%.64s' is both word %d and %d",
                                     m->file.path, m->words[id], other, id);
                h = (h + 1) & m->hash_mask;
            }
            m->word_hash[h] = id;
            if ((int)m->word_len[id] > m->max_word_bytes) m->max_word_bytes = (int)m->word_len[id];
        }
        c->has_vocabulary = 1;
    }
    if ((e = ban__find_meta(&m->file, "answers.labels"))) {
        if (c->task != BAN_TASK_VQA)
            return ban__fail(m->error, BAN_ERR_FORMAT, "%s: a grounding model has no answers", m->file.path);
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
        rc = ban__fail(m->error, BAN_ERR_UNSUPPORTED, "%s: ban.h maps little-endian files and needs a "
                       "little-endian machine", m->file.path);
    else if (!(rc = ban__parse_file(&m->file, m->error)) && !(rc = ban__parse_config(m)) &&
             !(rc = ban__bind_weights(m)))
        rc = ban__parse_strings(m);
    return m->status = rc;
}

static ban_model *ban__new_model(const char *path)
{
    ban_model *m = (ban_model *)BAN_MALLOC(sizeof *m);
    if (!m) return NULL;
    memset(m, 0, sizeof *m);
    snprintf(m->file.path, sizeof m->file.path, "%s", path);
    return m;
}

BANDEF int ban_model_load_memory(const void *data, size_t size, ban_model **out)
{
    if (!out) return BAN_ERR_ARG;
    ban_model *m = *out = ban__new_model("<memory>");
    if (!m) return BAN_ERR_NOMEM;
    if (!data) return m->status = ban__fail(m->error, BAN_ERR_ARG, "<memory>: NULL buffer");
    if ((uint64_t)size > BAN_MAX_FILE_SIZE)
        return m->status = ban__fail(m->error, BAN_ERR_FORMAT, "<memory>: %zu bytes exceed BAN_MAX_FILE_SIZE", size);
    m->file.bytes = (const unsigned char *)data;
    m->file.size = size;
    return ban__load(m);
}

/* the file's bytes: mapped, or read into memory with BAN_NO_MMAP */
static int ban__open_file(ban_model *m, const char *path)
{
#ifndef BAN_NO_MMAP
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ban__fail(m->error, BAN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ban__fail(m->error, BAN_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > BAN_MAX_FILE_SIZE) {
        close(fd);
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: %lld bytes exceed BAN_MAX_FILE_SIZE", path,
                         (long long)st.st_size);
    }
    void *map = st.st_size ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (map == MAP_FAILED) return ban__fail(m->error, BAN_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    m->file.bytes = (const unsigned char *)map;
    m->file.size = (size_t)st.st_size;
    m->mapped = map != NULL;
#else
    FILE *fp = fopen(path, "rb");
    if (!fp) return ban__fail(m->error, BAN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    long n = (fseek(fp, 0, SEEK_END) == 0) ? ftell(fp) : -1;
    if (n < 0 || (uint64_t)n > BAN_MAX_FILE_SIZE || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        return ban__fail(m->error, BAN_ERR_FORMAT, "%s: unreadable size or %ld bytes out of range", path, n);
    }
    m->owned = (unsigned char *)BAN_MALLOC(n ? (size_t)n : 1);
    if (!m->owned) { fclose(fp); return ban__fail(m->error, BAN_ERR_NOMEM, "%s: out of memory", path); }
    size_t got = fread(m->owned, 1, (size_t)n, fp);
    fclose(fp);
    if (got != (size_t)n) return ban__fail(m->error, BAN_ERR_IO, "%s: short read", path);
    m->file.bytes = m->owned;
    m->file.size = (size_t)n;
#endif
    return BAN_OK;
}

BANDEF int ban_model_load(const char *path, ban_model **out)
{
    if (!out) return BAN_ERR_ARG;
    ban_model *m = *out = ban__new_model(path ? path : "(null)");
    if (!m) return BAN_ERR_NOMEM;
    if (!path) return m->status = ban__fail(m->error, BAN_ERR_ARG, "NULL path");
    int rc = ban__open_file(m, path);
    if (rc) return m->status = rc;
    static const unsigned char none[1] = {0};
    if (!m->file.bytes) m->file.bytes = none; /* an empty file: refused by the reader as truncated */
    return ban__load(m);
}

BANDEF void ban_model_free(ban_model *m)
{
    if (!m) return;
#ifndef BAN_NO_MMAP
    if (m->mapped) munmap((void *)(uintptr_t)m->file.bytes, m->file.size);
#endif
    BAN_FREE(m->owned);
    BAN_FREE(m->file.meta);
    BAN_FREE(m->file.tensors);
    BAN_FREE(m->widened);
    BAN_FREE(m->sums);
    BAN_FREE(m->w.enc);
    BAN_FREE(m->counter_w);
    BAN_FREE((void *)m->words);
    BAN_FREE(m->word_len);
    BAN_FREE(m->word_hash);
    BAN_FREE((void *)m->answers);
    BAN_FREE(m);
}

BANDEF const char *ban_model_error(const ban_model *m) { return m ? m->error : "no model (out of memory?)"; }
BANDEF const ban_config *ban_model_config(const ban_model *m) { return BAN__USABLE(m) ? &m->config : NULL; }
BANDEF size_t ban_model_parameter_count(const ban_model *m) { return BAN__USABLE(m) ? m->n_params : 0; }

BANDEF const char *ban_model_answer(const ban_model *m, int i)
{
    return (BAN__USABLE(m) && m->answers && i >= 0 && i < m->config.num_answers) ? m->answers[i] : NULL;
}

BANDEF const char *ban_model_word(const ban_model *m, int id)
{
    return (BAN__USABLE(m) && m->words && id >= 0 && id < m->config.vocab_size) ? m->words[id] : NULL;
}

BANDEF int ban_question_positions(const ban_model *m, int tokens_len)
{
    if (!BAN__USABLE(m)) return 0;
    const ban_config *c = &m->config;
    if (c->task == BAN_TASK_VQA && !c->question_masking) return c->question_length;
    return tokens_len;
}

BANDEF int ban_model_meta_count(const ban_model *m) { return BAN__USABLE(m) ? (int)m->file.n_meta : 0; }

BANDEF int ban_model_meta(const ban_model *m, int i, ban_meta_info *info)
{
    if (!BAN__USABLE(m) || !info || i < 0 || (size_t)i >= m->file.n_meta) return BAN_ERR_ARG;
    const ban__meta *e = &m->file.meta[i];
    info->key = e->key, info->type = (int)e->type, info->value = e->value, info->size = e->size;
    return BAN_OK;
}

BANDEF int ban_model_tensor_count(const ban_model *m) { return BAN__USABLE(m) ? (int)m->file.n_tensors : 0; }

BANDEF int ban_model_tensor(const ban_model *m, int i, ban_tensor_info *info)
{
    if (!BAN__USABLE(m) || !info || i < 0 || (size_t)i >= m->file.n_tensors) return BAN_ERR_ARG;
    const ban__tensor *t = &m->file.tensors[i];
    const size_t n = strlen(t->name);
    memset(info, 0, sizeof *info);
    info->name = t->name;
    info->dtype = ban__dtypes[t->dtype].name;
    info->layout = !t->spec || !t->spec->linear || t->is_bias || t->is_scale ? ""
                   : n > 7 && strcmp(t->name + n - 7, "_panels") == 0 ? "panels" : "rows";
    info->spec = t->spec;
    info->is_bias = t->is_bias, info->is_scale = t->is_scale;
    info->ndim = (int)t->ndim;
    for (uint32_t d = 0; d < t->ndim; d++) info->dims[d] = t->dims[d];
    info->offset = t->offset, info->bytes = t->nbytes;
    info->data = t->data;
    return BAN_OK;
}

BANDEF const ban_weight_spec *ban_weight_specs(int *count)
{
    if (count) *count = (int)(sizeof ban__weight_specs / sizeof ban__weight_specs[0]);
    return ban__weight_specs;
}

/* a tensor of the list ban_config_tensor walks: its name and dims */
static void ban__listed(ban_tensor_info *t, const ban_weight_spec *spec, const char *name, int role, int dtype, int nd,
                        const uint64_t *dims, int panels)
{
    memset(t, 0, sizeof *t);
    t->name = name, t->spec = spec, t->is_bias = role == 1, t->is_scale = role == 2, t->dtype = ban__dtypes[dtype].name;
    t->layout = spec->linear && !role ? (panels ? "panels" : "rows") : "";
    t->ndim = nd;
    for (int d = 0; d < nd; d++) t->dims[d] = dims[d];
}

BANDEF int ban_config_tensor(const ban_config *cfg, int panels, int index, ban_tensor_info *info)
{
    return ban_config_tensor_dtype(cfg, panels, "f32", index, info);
}

BANDEF int ban_config_tensor_dtype(const ban_config *cfg, int panels, const char *dtype, int index,
                                   ban_tensor_info *info)
{
    const int dt = ban__dtype_named(dtype);
    if (!cfg || !info || index < 0 || dt < 0 || (dt == BAN__I8 && !panels)) return BAN_ERR_ARG;
    const ban__letters L = ban__letters_of(cfg);
    const int V = L.V, Vr = L.Vr, Ew = L.Ew, tables = L.tables, Ein = L.Ein, D = L.D, kD = L.kD, Dg = L.Dg;
    const int G = L.G, Dv = L.Dv, Eb = L.Eb, Dvis = L.Dvis, O = L.O, H = L.H, A = L.A, vqa = L.vqa, adapter = L.adapter;
    const int other = dt == BAN__F16 ? BAN__F16 : BAN__F32; /* the dtype of what is not reduced */
    int row = 0, n = 0;
    (void)V;
    /* the rows of the table this configuration holds, each weight (then its scales, int8) then its
       bias, until the index-th; bf16 and int8 reduce the Linear weights and the word embeddings */
#define BAN__LIST(field, name, bias, stack, rows, cols, when, linear)                                             \
    if ((when) != 0) {                                                                                           \
        const ban_weight_spec *sp = &ban__weight_specs[row];                                                     \
        const int pn = linear && panels, rd = dt == BAN__F16 || (dt != BAN__F32 && (linear || ban__is_embedding(sp))); \
        const uint64_t K = pn && rd ? (uint64_t)ban__padded_k(dt, (size_t)(cols)) : (uint64_t)(cols);          \
        uint64_t d_[4] = {0, 0, 0, 0}, b_[2] = {0, 0};                                                           \
        int nd = 0, nb = 0;                                                                                      \
        if (stack) d_[nd++] = (uint64_t)(stack), b_[nb++] = (uint64_t)(stack);                                    \
        if (pn) d_[nd++] = ((uint64_t)(rows) + BAN__NR - 1) / BAN__NR, d_[nd++] = K, d_[nd++] = BAN__NR;            \
        else { d_[nd++] = (uint64_t)(rows); if (cols) d_[nd++] = (uint64_t)(cols); }                             \
        b_[nb++] = (uint64_t)(rows);                                                                             \
        if (n++ == index)                                                                                        \
            return ban__listed(info, sp, pn ? ban__panel_names[row] : name, 0, rd ? dt : other, nd, d_, pn), BAN_OK; \
        if (rd && ban__dtypes[dt].scaled && n++ == index)                                                        \
            return ban__listed(info, sp, ban__scale_names[row], 2, BAN__F32, nb, b_, 0), BAN_OK;                  \
        if (bias && n++ == index) return ban__listed(info, sp, bias, 1, other, nb, b_, 0), BAN_OK;               \
    }                                                                                                            \
    row++;
    BAN__WEIGHTS(BAN__LIST)
#undef BAN__LIST
    if (vqa && O && n++ == index) {
        const uint64_t d_[2] = {16, 17};
        return ban__listed(info, BAN__SPEC_COUNTER, BAN__SPEC_COUNTER->name, 0, other, 2, d_, 0), BAN_OK;
    }
    return BAN_ERR_ARG;
}

/* the g-th of a weight's stack */
static const float *ban__weight_at(const ban__weight *w, int g)
{
    BAN_ASSERT(w->data && g >= 0 && g < w->stack);
    return w->data + (size_t)g * w->stride;
}

/* row r of a weight in rows (a word embedding) as floats, whatever its dtype: bf16 widened,
   int8 times its row's scale */
static void ban__weight_row(const ban__weight *w, size_t r, float *dst)
{
    const size_t n = (size_t)w->cols;
    BAN_ASSERT(!w->panels && r < (size_t)w->rows * w->stack);
    if (!w->raw) memcpy(dst, w->data + r * n, n * sizeof(float));
    else if (w->dtype == BAN__BF16) ban__widen_bf16(w->raw + r * n * 2, n, dst, NULL);
    else
        for (size_t j = 0; j < n; j++) dst[j] = (float)(int8_t)w->raw[r * n + j] * w->scale[r];
}

/* ---- context --------------------------------------------------------------------
   A context: the buffers of one forward pass at its limits, allocated once, and the threads
   and kernels of its products. */

/* Its buffers: X(type, field, n1, n2, n3), n1 * n2 * n3 elements, in the letters of
   ban_ctx_create: Bm batch, Km boxes, Rm the rows an image has once packed (Km, or the padded
   count), Pm question positions, Em entities, Q the question rows an attention map has (Pm, or
   Em for grounding), and the model's letters (ban__letters); vis = kD + G Dg the visual
   projections' width (VQA), Dpack a packed row's width, enc 1 for an image encoder, Rq the most
   rows a product of a bf16 or int8 weight reads (0: the model has none). */
#define BAN__BUFFERS(X)                                                                                          \
    X(float, emb, Bm * Pm, Ein, 1)          /* word embeddings of every position */                              \
    X(float, gates_x, Bm * Pm, 3 * D, 1)    /* input halves of the GRU gates */                                  \
    X(float, gates_h, Bm, 3 * D, 1)         /* hidden halves, one step */                                        \
    X(float, hidden, Bm, D, 1)              /* the GRU state */                                                  \
    X(float, q, Bm * Pm, D, 1)              /* question channels: GRU states, then residual sums */              \
    X(float, q_ent, vqa ? 1 : Bm * Em, D, 1) /* grounding: the states at the entities */                         \
    X(float, q_att, Bm * Q, kD, 1)          /* the question's attention projection */                            \
    X(float, q_scaled, (G * Q + BAN__NR - 1) / BAN__NR * BAN__NR, kD, 1) /* scaled by h_mat, maybe in panels */  \
    X(float, vpack, Bm * Rm, Dpack, 1)      /* the real boxes, packed */                                         \
    X(float, box5, adapter ? Bm * Rm : 1, 5, 1) /* the GQA adapter's box values */                               \
    X(float, vadapt, adapter ? Bm * Rm : 1, Dvis, 1) /* the adapter's output */                                  \
    X(float, vproj, Bm * Rm, vis, 1)        /* the boxes' projections */                                         \
    X(float, att_tmp, Rm, G * Q, 1)         /* one example's attention logits, every glimpse */                  \
    X(float, att, Bm * G, Rm, vqa ? Pm : 1) /* attention logits, then probabilities, packed rows */              \
    X(float, box_score, Bm * G, Km, 1)      /* logits maxed over positions (the counter's) */                    \
    X(float, q_glimpse, vqa ? Bm * Pm : 1, Dg, 1) /* a glimpse's question projection */                          \
    X(float, chain, Pm, Dg, 1)              /* A^T V' of one example */                                          \
    X(float, att_t, Pm, Rm, 1)              /* one attention map transposed */                                   \
    X(float, joint, Bm, Dg, 1)              /* joint representations, then the classifier's input */             \
    X(float, proj, Bm, D > H ? D : H, 1)    /* a projection of them */                                           \
    X(float, count_feat, Bm, O + 1, 1)      /* count features */                                                 \
    X(float, counter_tmp, 5 * O * O + 7 * O + 1, 1, 1) /* the counter's scratch (ban__count) */                  \
    X(int32_t, tok, Bm, Pm, 1)              /* the tokens as run */                                              \
    X(int, n_tok, Bm, 1, 1)                 /* positions that count (classifier sum, attention) */               \
    X(int, n_box, Bm, 1, 1)                 /* each image's box count (its rows past it are padding) */          \
    X(int, n_rows, Bm, 1, 1)                /* its packed rows */                                                \
    X(int, row0, Bm, 1, 1)                  /* its first packed row */                                           \
    X(int, box_row, Bm, Km, 1)              /* the packed row of each box, or -1 when masked */                  \
    X(float, enc_a, enc ? Bm : 0, m->enc_act, 1) /* encoder activations, ping-pong, layout (C, N, H, W) */       \
    X(float, enc_b, enc ? Bm : 0, m->enc_act, 1)                                                                 \
    X(float, enc_col, enc ? Bm : 0, m->enc_col, 1) /* im2col of one conv layer over the batch */                 \
    X(float, enc_feat, enc ? Bm : 0, grid, Dv) /* the encoder's grid as box features */                          \
    X(float, enc_spat, enc ? Bm : 0, grid, 6) /* the cells' boxes */                                             \
    X(char, word, (size_t)m->max_word_bytes + 8, 1, 1) /* the tokenizer's word */                              \
    X(unsigned char, act_q, Rq, m->reduced_bytes, 1) /* one product's activations in bf16 or int8 */           \
    X(float, act_scale, Rq, 1, 1)           /* int8: their scale per row */

struct ban_ctx {
    const ban_model *model;
    ban_limits lim;
    int status;             /* not BAN_OK: creation failed; only error and free may be called */
    int max_pos;            /* Pm: question positions the buffers hold */
    int max_rows;           /* Rm: packed rows of an image they hold */
    unsigned char *block;   /* every buffer below lives in this one allocation */
#define BAN__BUFFER_FIELD(type, name, n1, n2, n3) type *name;
    BAN__BUFFERS(BAN__BUFFER_FIELD)
#undef BAN__BUFFER_FIELD
    const ban__kernel *kernel[BAN__N_DTYPES]; /* the product's kernel for weights of each dtype */
    size_t act_rows;        /* rows act_q holds */
    ban__pool *pool;        /* its threads besides the caller's; NULL: none */
    ban_product *log;       /* ban_ctx_record's: the products made, when not NULL */
    int log_max, *log_n;
    char error[BAN__ERR];
};

#define BAN__CTX_USABLE(c) ((c) && (c)->status == BAN_OK)

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

/* a context's limits: the caller's, zeros replaced by the defaults, checked */
static int ban__limits(ban_ctx *c, const ban_limits *limits)
{
    const ban_config *cf = &c->model->config;
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
        return ban__fail(c->error, BAN_ERR_ARG, "limits: %d boxes, but the image encoder makes %d", lim.max_boxes,
                         grid);
    return BAN_OK;
}

/* the buffers, in one allocation */
static int ban__allocate(ban_ctx *c)
{
    const ban_model *m = c->model;
    const ban_config *cf = &m->config;
    const ban__letters L = ban__letters_of(cf);
    const int vqa = L.vqa, enc = cf->encoder_layers != 0;
    const size_t Bm = (size_t)c->lim.max_batch, Km = (size_t)c->lim.max_boxes, Em = (size_t)c->lim.max_entities;
    size_t Pm = (size_t)c->lim.max_tokens;
    if (vqa && !cf->question_masking) Pm = (size_t)cf->question_length; /* questions run at exactly that length */
    c->max_pos = (int)Pm;
    const size_t D = (size_t)L.D, kD = (size_t)L.kD, Dg = (size_t)L.Dg, G = (size_t)L.G, Ein = (size_t)L.Ein;
    const size_t Dvis = (size_t)L.Dvis, O = (size_t)L.O, H = (size_t)L.H, Dv = (size_t)cf->feature_dim;
    const size_t vis = kD + (vqa ? G * Dg : 0), Q = vqa ? Pm : (Pm > Em ? Pm : Em);
    const int adapter = L.adapter;
    const size_t Rm = Km > (size_t)cf->pad_boxes ? Km : (size_t)cf->pad_boxes;
    const size_t Dpack = adapter ? Dv + (size_t)L.Eb : Dvis;
    c->max_rows = (int)Rm;
    const size_t grid = (size_t)cf->grid_height * (size_t)cf->grid_width;
    const size_t Rq = m->reduced_bytes ? Bm * (Rm > Q ? Rm : Q) : 0;
    c->act_rows = Rq;
    ban__plan p = {0, 0};
#define BAN__BUFFER_RESERVE(type, name, n1, n2, n3) \
    const size_t o_##name = ban__reserve(&p, sizeof(type), (size_t)(n1), (size_t)(n2), (size_t)(n3));
    BAN__BUFFERS(BAN__BUFFER_RESERVE)
#undef BAN__BUFFER_RESERVE
    if (p.overflow || p.size > ((size_t)1 << 40))
        return ban__fail(c->error, BAN_ERR_ARG, "limits (batch %d, boxes %d, tokens %d, entities %d) need more "
                         "memory than a context may take", c->lim.max_batch, c->lim.max_boxes, c->lim.max_tokens,
                         c->lim.max_entities);
    c->block = (unsigned char *)BAN_MALLOC(p.size + BAN__ALIGN);
    if (!c->block)
        return ban__fail(c->error, BAN_ERR_NOMEM, "out of memory: a context for these limits takes %zu MB",
                         p.size >> 20);
    unsigned char *base = c->block + ((BAN__ALIGN - (uintptr_t)c->block % BAN__ALIGN) % BAN__ALIGN);
#define BAN__BUFFER_POINT(type, name, n1, n2, n3) c->name = (type *)(void *)(base + o_##name);
    BAN__BUFFERS(BAN__BUFFER_POINT)
#undef BAN__BUFFER_POINT
    return BAN_OK;
}

static int ban__ctx_create(ban_ctx *c, const ban_model *m, const ban_limits *limits)
{
    int rc;
    if (!m) return ban__fail(c->error, BAN_ERR_ARG, "ban_ctx_create: NULL model");
    if (m->status != BAN_OK)
        return ban__fail(c->error, BAN_ERR_ARG, "ban_ctx_create: the model did not load (%.400s)", m->error);
    c->model = m;
    if ((rc = ban__limits(c, limits)) || (rc = ban__allocate(c))) return rc;
    for (int d = 0; d < BAN__N_DTYPES; d++) c->kernel[d] = ban__pick_kernel(d);
#if BAN__THREADS
    if (m->config.panel_weights && c->lim.threads > 1 && !(c->pool = ban__pool_new(c->lim.threads - 1)))
        return ban__fail(c->error, BAN_ERR_NOMEM, "out of memory for %d threads", c->lim.threads);
#endif
    return BAN_OK;
}

BANDEF int ban_ctx_create(const ban_model *m, const ban_limits *limits, ban_ctx **out)
{
    if (!out) return BAN_ERR_ARG;
    ban_ctx *c = *out = (ban_ctx *)BAN_MALLOC(sizeof *c);
    if (!c) return BAN_ERR_NOMEM;
    memset(c, 0, sizeof *c);
    return c->status = ban__ctx_create(c, m, limits);
}

BANDEF void ban_ctx_free(ban_ctx *c)
{
    if (!c) return;
    ban__pool_free(c->pool);
    BAN_FREE(c->block);
    BAN_FREE(c);
}

BANDEF const char *ban_ctx_error(const ban_ctx *c) { return c ? c->error : "no context (out of memory?)"; }
BANDEF const ban_limits *ban_ctx_limits(const ban_ctx *c) { return BAN__CTX_USABLE(c) ? &c->lim : NULL; }
BANDEF const char *ban_ctx_kernel(const ban_ctx *c)
{
    return BAN__CTX_USABLE(c) && c->kernel[BAN__F32] ? c->kernel[BAN__F32]->name : NULL;
}

BANDEF const char *ban_ctx_kernel_for(const ban_ctx *c, const char *dtype)
{
    const int d = ban__dtype_named(dtype);
    return BAN__CTX_USABLE(c) && d >= 0 && c->kernel[d] ? c->kernel[d]->name : NULL;
}

/* a NULL or failed context: refused by every call but error and free, its message (why its
   creation failed) kept */
#define BAN__REFUSE_CTX(c) \
    do { if (!BAN__CTX_USABLE(c)) return BAN_ERR_ARG; } while (0)

BANDEF int ban_ctx_record(ban_ctx *c, ban_product *log, int max, int *n)
{
    BAN__REFUSE_CTX(c);
    if (log && (max < 0 || !n)) return ban__fail(c->error, BAN_ERR_ARG, "ban_ctx_record: a log needs a count");
    c->log = log, c->log_max = max, c->log_n = n;
    if (n) *n = 0;
    return BAN_OK;
}

/* log one product when recording: consecutive products of one shape are one entry */
static void ban__record(ban_ctx *c, int m, int n, int k, int trans_x, int trans_w)
{
    if (!c->log) return;
    ban_product *last = *c->log_n > 0 && *c->log_n <= c->log_max ? &c->log[*c->log_n - 1] : NULL;
    if (last && last->m == m && last->n == n && last->k == k && last->trans_x == trans_x && last->trans_w == trans_w) {
        last->count++;
        return;
    }
    if (*c->log_n < c->log_max) {
        ban_product *p = &c->log[*c->log_n];
        p->m = m, p->n = n, p->k = k, p->trans_x = trans_x, p->trans_w = trans_w, p->count = 1;
    }
    (*c->log_n)++;
}

/* The product y = act(x W_g^T + b_g) for a weight in panels, as one ban__pgemm: W_g read as
   stored; x read as f32, or for a bf16 or int8 weight converted once into the context's act_q
   (K padded to the dtype's group) by the kernel's prepare. */
static ban__pgemm ban__weight_product(ban_ctx *c, ban__mat y, ban__mat x, const ban__weight *w, int g, int relu)
{
    const ban__kernel *kr = c->kernel[w->dtype];
    ban__pgemm pg = {y.rows, y.cols, x.cols, x.ld, y.ld, relu, kr, x.p, NULL, BAN__NR, (size_t)x.cols * BAN__NR,
                     w->bias + (size_t)g * w->rows, y.p, NULL, NULL, NULL};
    if (!w->raw) {
        pg.B = ban__weight_at(w, g);
        return pg;
    }
    const size_t K = ban__padded_k(w->dtype, (size_t)x.cols), eb = (size_t)ban__dtypes[w->dtype].bytes;
    BAN_ASSERT((size_t)x.rows <= c->act_rows && K * eb <= c->model->reduced_bytes && kr->prepare);
    kr->prepare(x.p, x.rows, x.cols, (size_t)x.ld, c->act_q, K, c->act_scale);
    pg.K = pg.ldx = (int)K, pg.x = c->act_q, pg.x_scale = c->act_scale;
    pg.B = w->raw + (size_t)g * w->stride * eb, pg.pstride = K * BAN__NR;
    if (w->scale) pg.w_scale = w->scale + (size_t)g * w->rows, pg.w_sum = w->sums + (size_t)g * (w->stride / K);
    return pg;
}

/* ---- layers ------------------------------------------------------------------------
   The paper's building blocks, one function each, in the order of the forward pass (the
   equations are those of Kim, Jun, Zhang 2018). Letters: B examples, P question positions,
   R the packed (real) rows of an image, D hidden, kD the attention's width, Dg a glimpse's
   width, G glimpses, O counter objects, H classifier hidden, A answers; X the box features,
   Y the question channels, sigma ReLU. */

/* whether the model's products run through ban.h's own kernels: any weight in panels says
   so, and then no CBLAS call is made in its forward pass at all (OpenBLAS's idle threads
   spin for a while after each call, and would take the cores from ban.h's own) */
static int ban__own_product(const ban_model *m) { return m->config.panel_weights > 0; }

/* Linear layer: y (M, N) = act(x (M, K) W_g^T + b_g), the first N = y.cols rows of the g-th
   weight of w; act is ReLU when relu. */
static void ban__linear(ban_ctx *c, ban__mat y, ban__mat x, const ban__weight *w, int g, int relu)
{
    BAN_ASSERT(x.cols == w->cols && x.rows == y.rows && y.cols <= w->rows && w->bias);
    ban__record(c, y.rows, y.cols, x.cols, 0, 1);
    if (w->panels) {
        const ban__pgemm pg = ban__weight_product(c, y, x, w, g, relu);
        ban__pgemm_run(c->pool, &pg);
        return;
    }
    const float *W = ban__weight_at(w, g), *b = w->bias + (size_t)g * w->rows;
    if (y.rows == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, y.cols, x.cols, 1.0f, W, x.cols, x.p, 1, 0.0f, y.p, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, y.rows, y.cols, x.cols, 1.0f, x.p, x.ld, W, x.cols,
                    0.0f, y.p, y.ld);
    for (int i = 0; i < y.rows; i++) {
        float *row = y.p + (size_t)i * y.ld;
        if (relu) ban__add_relu(row, b, y.cols);
        else ban__add(row, b, y.cols);
    }
}

/* Question encoder, Y: the word embeddings (one table, or two concatenated) and a GRU
   (PyTorch's gates r, z, n) over all P positions: c->q (B*P, D) = every hidden state */
static void ban__question_encoder(ban_ctx *c, int B, int P)
{
    const ban_model *m = c->model;
    const ban_config *cf = &m->config;
    const int Ew = cf->embedding_dim, Ein = Ew * cf->embedding_tables, D = cf->hidden_dim;
    for (int i = 0; i < B * P; i++) {
        const int32_t id = c->tok[i];
        ban__weight_row(&m->w.emb, (size_t)id, c->emb + (size_t)i * Ein);
        if (m->w.emb2.tensor) ban__weight_row(&m->w.emb2, (size_t)id, c->emb + (size_t)i * Ein + Ew);
    }
    /* input halves of the gates for every position at once: (B*P, 3D) */
    ban__linear(c, ban__mat_of(c->gates_x, B * P, 3 * D, 3 * D), ban__mat_of(c->emb, B * P, Ein, Ein), &m->w.gru_ih, 0,
                0);
    memset(c->hidden, 0, (size_t)B * D * sizeof(float));
    for (int t = 0; t < P; t++) {
        if (t == 0) /* h0 = 0: the hidden halves are the bias */
            for (int b = 0; b < B; b++)
                memcpy(c->gates_h + (size_t)b * 3 * D, m->w.gru_hh.bias, 3 * (size_t)D * sizeof(float));
        else
            ban__linear(c, ban__mat_of(c->gates_h, B, 3 * D, 3 * D), ban__mat_of(c->hidden, B, D, D), &m->w.gru_hh,
                        0, 0);
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

/* Image encoder (a model that reads pixels): pixels (N, H, W, 3) -> c->enc_feat (N, K, C)
   and c->enc_spat (N, K, 6), the model's convs (im2col, then one product per layer for the
   whole batch), ReLUs and max-pools, activations laid out (C, N, H, W); cell k = y * W + x
   of the final grid is box k, its spatial feature the cell's box. */
static void ban__image_encoder(ban_ctx *c, const unsigned char *pixels, int N)
{
    const ban_model *m = c->model;
    const ban_config *cf = &m->config;
    int C = 3, H = cf->image_height, W = cf->image_width;
    float *x = c->enc_a, *y = c->enc_b;
    const float *affine = m->w.enc_affine.data; /* pixel byte * scale[c] + shift[c] */
    for (int ch = 0; ch < 3; ch++) {
        const float scale = affine[ch], shift = affine[3 + ch];
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
            const ban__weight *w = &m->w.enc[l];
            ban__record(c, O, (int)plane, C * k * k, 0, 0);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, O, (int)plane, C * k * k, 1.0f, w->data,
                        C * k * k, col, (int)plane, 0.0f, y, (int)plane);
            for (int o = 0; o < O; o++)
                for (size_t i = 0; i < plane; i++) y[(size_t)o * plane + i] += w->bias[o];
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

/* OpenVQA's GQA adapter: each packed box row's feature x (Dv, in c->vpack) and its box
   values b (c->box5) become frcn_linear([x; bbox_linear(b)]) (rows, Dvis), no activation:
   what the visual projections read. The bbox embedding is written beside x in place. */
static const float *ban__box_adapter(ban_ctx *c, int rows)
{
    const ban_model *m = c->model;
    const int Dv = m->config.feature_dim, Eb = m->config.adapter_box_dim, Din = Dv + Eb, Dvis = m->w.adapter_vis.rows;
    if (Eb)
        ban__linear(c, ban__mat_of(c->vpack + Dv, rows, Eb, Din), ban__mat_of(c->box5, rows, 5, 5), &m->w.adapter_box,
                    0, 0);
    ban__linear(c, ban__mat_of(c->vadapt, rows, Dvis, Dvis), ban__mat_of(c->vpack, rows, Din, Din), &m->w.adapter_vis, 0,
                0);
    return c->vadapt;
}

/* Bilinear attention logits of one example, every glimpse at once (eq. 10:
   A_g = ((1 p_g^T) o sigma(X U)) sigma(Y V)^T): c->att_tmp (R, G*Q) = vatt (R, kD), the boxes'
   attention projection, times the question rows qatt (Q, kD) scaled by h_mat[g] (p_g); the
   bias h_bias[g] is added later. */
static void ban__attention_logits(ban_ctx *c, const float *vatt, int ldv, int R, const float *qatt, int Q)
{
    const ban_model *m = c->model;
    const int kD = m->config.attention_rank * m->config.hidden_dim, G = m->config.num_glimpses;
    const float *hmat = m->w.att_h.data;
    ban__record(c, R, G * Q, kD, 0, 1);
    if (!ban__own_product(m)) {
        for (int g = 0; g < G; g++)
            for (int l = 0; l < Q; l++) {
                const float *src = qatt + (size_t)l * kD, *h = hmat + (size_t)g * kD;
                float *dst = c->q_scaled + ((size_t)g * Q + l) * kD;
                for (int j = 0; j < kD; j++) dst[j] = src[j] * h[j];
            }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, G * Q, kD, 1.0f, vatt, ldv, c->q_scaled, kD, 0.0f,
                    c->att_tmp, G * Q);
        return;
    }
    /* the scaled question rows go straight into panels, the last one padded with zeros */
    const int rows = G * Q, padded = (rows + BAN__NR - 1) / BAN__NR * BAN__NR;
    for (int r = 0; r < padded; r++) {
        float *dst = c->q_scaled + (size_t)(r / BAN__NR) * kD * BAN__NR + r % BAN__NR;
        if (r >= rows) {
            for (int j = 0; j < kD; j++) dst[(size_t)j * BAN__NR] = 0.0f;
            continue;
        }
        const float *src = qatt + (size_t)(r % Q) * kD, *h = hmat + (size_t)(r / Q) * kD;
        for (int j = 0; j < kD; j++) dst[(size_t)j * BAN__NR] = src[j] * h[j];
    }
    const ban__pgemm g = {R, rows, kD, ldv, rows, 0, c->kernel[BAN__F32], vatt, c->q_scaled, BAN__NR,
                          (size_t)kD * BAN__NR, NULL, c->att_tmp, NULL, NULL, NULL};
    ban__pgemm_run(c->pool, &g);
}

/* Softmax over every (box, position) pair of one map (R, P), in place: positions l >= valid
   take no mass; top is the map's largest logit. Returns the map's entropy (nats). */
static float ban__softmax_pairs(float *map, int R, int P, int valid, float top)
{
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
    return entropy;
}

/* the image of example b */
static int ban__image_of(const ban_input *in, int b) { return in->image_index ? in->image_index[b] : b; }

/* Bilinear attention maps of example b (its logits in c->att_tmp): for each glimpse g, the
   logits plus h_bias[g] over the packed rows -> c->att (b, g) (R, P); the counter's box
   scores (the logits maxed over the positions that count; -inf on masked boxes); the softmax
   over all pairs; its entropy and, when asked, the map over the caller's K boxes (0 on
   masked ones, and on those past a padded count) into the output. */
static void ban__attention_maps(ban_ctx *c, const ban_input *in, ban_output *out, int b, int P)
{
    const ban_model *m = c->model;
    const int G = m->config.num_glimpses, K = in->boxes, Km = c->lim.max_boxes;
    const int i = ban__image_of(in, b), R = c->n_rows[i], valid = c->n_tok[b];
    const size_t plane = (size_t)c->max_rows * c->max_pos; /* one (b, g) map */
    for (int g = 0; g < G; g++) {
        float *map = c->att + (size_t)(b * G + g) * plane, *score = c->box_score + (size_t)(b * G + g) * Km;
        const float bias = m->w.att_hb.data[g];
        float top = -INFINITY;
        for (int r = 0; r < R; r++)
            for (int l = 0; l < P; l++) {
                const float v = map[(size_t)r * P + l] = c->att_tmp[(size_t)r * G * P + (size_t)g * P + l] + bias;
                if (l < valid && v > top) top = v;
            }
        for (int k = 0; k < K; k++) {
            const int r = c->box_row[(size_t)i * Km + k];
            float best = -INFINITY;
            for (int l = 0; r >= 0 && l < valid; l++)
                if (map[(size_t)r * P + l] > best) best = map[(size_t)r * P + l];
            score[k] = best;
        }
        const float entropy = ban__softmax_pairs(map, R, P, valid, top);
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

/* Joint representation of glimpse g (eq. 12-13), for every example:
   f'_d = sum_k sum_l A_kl sigma(X U'_g)_kd sigma(Y V'_g)_ld, computed as the matrix chain
   (A^T V'_g) (P, Dg) o Q'_g summed over the positions that count (never the (R, P, Dg)
   tensor), then f = P^T f', the sum pooling of windows of Dg / D channels (the glimpse's
   rank; 1 in the reference, so f = f') -> c->joint (B, D). vcols: the row stride of the
   boxes' projections, whose glimpse g columns start at kD + g Dg. */
static void ban__joint_representation(ban_ctx *c, const ban_input *in, int g, int B, int P, int vcols)
{
    const ban_model *m = c->model;
    const ban_config *cf = &m->config;
    const int D = cf->hidden_dim, kD = cf->attention_rank * D, G = cf->num_glimpses, Dg = m->w.glimpse_q.rows;
    const size_t plane = (size_t)c->max_rows * c->max_pos;
    /* Q'_g (B*P, Dg) = sigma(Y V'_g) */
    ban__linear(c, ban__mat_of(c->q_glimpse, B * P, Dg, Dg), ban__mat_of(c->q, B * P, D, D), &m->w.glimpse_q, g, 1);
    for (int b = 0; b < B; b++) {
        const int i = ban__image_of(in, b), R = c->n_rows[i], valid = c->n_tok[b];
        /* chain (P, Dg) = A^T (P, R) . V'_g (R, Dg) */
        const float *att = c->att + (size_t)(b * G + g) * plane;
        const float *vg = c->vproj + (size_t)c->row0[i] * vcols + kD + (size_t)g * Dg;
        ban__record(c, P, Dg, R, 1, 0);
        if (!ban__own_product(m)) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, P, Dg, R, 1.0f, att, P, vg, vcols, 0.0f, c->chain,
                        Dg);
        } else { /* V'_g in rows is V'_g^T in panels of stride 32 */
            for (int r = 0; r < R; r++)
                for (int l = 0; l < P; l++) c->att_t[(size_t)l * R + r] = att[(size_t)r * P + l];
            const ban__pgemm pg = {P, Dg, R, R, Dg, 0, c->kernel[BAN__F32], c->att_t, vg, (size_t)vcols, BAN__NR,
                                   NULL, c->chain, NULL, NULL, NULL};
            ban__pgemm_run(c->pool, &pg);
        }
        float *joint = c->joint + (size_t)b * Dg;
        const float *qg = c->q_glimpse + (size_t)b * P * Dg;
        for (int d = 0; d < Dg; d++) joint[d] = 0.0f;
        for (int l = 0; l < valid; l++)
            for (int d = 0; d < Dg; d++) joint[d] += c->chain[(size_t)l * Dg + d] * qg[(size_t)l * Dg + d];
    }
    const int rank = Dg / D;
    if (rank > 1) /* as PyTorch pools them: AvgPool1d(rank) * rank, in place (row b reads row b and beyond) */
        for (int b = 0; b < B; b++)
            for (int d = 0; d < D; d++) {
                const float *src = c->joint + (size_t)b * Dg + (size_t)d * rank;
                float s = 0.0f;
                for (int j = 0; j < rank; j++) s += src[j];
                c->joint[(size_t)b * D + d] = s / (float)rank * (float)rank;
            }
}

/* Residual learning of attention (eq. 14): Y_{i+1} = act(W_g x + b_g) 1^T + Y_i, a projection
   of x (B, cols) -- a glimpse's joint vector, or its count feature -- added to every question
   channel of c->q (B, P, D) */
static void ban__residual_update(ban_ctx *c, const ban__weight *w, int g, ban__mat x, int P, int relu)
{
    const int B = x.rows, D = c->model->config.hidden_dim;
    ban__linear(c, ban__mat_of(c->proj, B, D, D), x, w, g, relu);
    for (int b = 0; b < B; b++)
        for (int l = 0; l < P; l++)
            for (int d = 0; d < D; d++) c->q[((size_t)b * P + l) * D + d] += c->proj[(size_t)b * D + d];
}

/* PiecewiseLin f_i(x) of the counting module: the cumulative sum of |w| / sum |w| read at
   S x, linear in between */
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

/* Counting module (Zhang, Hare, Pruegel-Bennett, ICLR 2018): the count feature (O+1) of one
   example for one glimpse. score (K): the glimpse's attention logits maxed over positions
   (-inf on masked boxes); xyxy: box k's corners at xyxy + k*6, used for k < n_real; boxes
   beyond hold zeros, as padded rows do in the reference, and so do the virtual boxes when
   K < O. tmp: 5*O*O + 7*O floats. */
static void ban__count(const ban_model *m, const float *score, const float *xyxy, int K, int n_real, float *out,
                       float *tmp)
{
    const int O = m->config.counter_objects;
    float *a = tmp, *box = a + O, *row_sims = box + 4 * O;    /* O, 4*O, O */
    float *rel = tmp + 6 * O, *dist = rel + O * O, *score_m = dist + O * O, *dedup = score_m + O * O;
    float *sim = dedup + O * O, *dconf = sim + O * O;          /* O*O each, then O */
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

/* The count features of glimpse g, one per example, from its box scores and the image's
   boxes -> c->count_feat (B, O+1) */
static void ban__count_features(ban_ctx *c, const ban_input *in, int g, int B)
{
    const ban_model *m = c->model;
    const int O = m->config.counter_objects, G = m->config.num_glimpses, K = in->boxes, Km = c->lim.max_boxes;
    for (int b = 0; b < B; b++) {
        const int i = ban__image_of(in, b);
        ban__count(m, c->box_score + (size_t)(b * G + g) * Km, in->spatials + (size_t)i * K * 6, K, c->n_box[i],
                   c->count_feat + (size_t)b * (O + 1), c->counter_tmp);
    }
}

/* Classifier (a 2-layer MLP): logits (B, A) = W2 sigma(W1 s + b1) + b2, s the sum of the
   question channels that count */
static void ban__classifier(ban_ctx *c, int B, int P, float *logits)
{
    const ban_model *m = c->model;
    const int D = m->config.hidden_dim, H = m->config.classifier_hidden, A = m->config.num_answers;
    for (int b = 0; b < B; b++) {
        float *s = c->joint + (size_t)b * D;
        for (int d = 0; d < D; d++) s[d] = 0.0f;
        for (int l = 0; l < c->n_tok[b]; l++)
            for (int d = 0; d < D; d++) s[d] += c->q[((size_t)b * P + l) * D + d];
    }
    ban__linear(c, ban__mat_of(c->proj, B, H, H), ban__mat_of(c->joint, B, D, D), &m->w.cls1, 0, 1);
    ban__linear(c, ban__mat_of(logits, B, A, A), ban__mat_of(c->proj, B, H, H), &m->w.cls2, 0, 0);
}

/* Grounding (Flickr30k Entities): logits (B, G, K, E) are the bilinear attention logits
   between every box and the GRU state at every entity (one map for all entities of a
   sentence), with h_bias; padding is -99 as the reference masks it: masked boxes, slots past
   the entity count, or (the reference's rule) a slot other than the first that holds
   position 0 */
static void ban__grounding_logits(ban_ctx *c, const ban_input *in, ban_output *out, int b)
{
    const ban_model *m = c->model;
    const int G = m->config.num_glimpses, K = in->boxes, Km = c->lim.max_boxes, E = in->entities_len;
    const int i = ban__image_of(in, b);
    for (int g = 0; g < G; g++)
        for (int k = 0; k < K; k++) {
            const int r = c->box_row[(size_t)i * Km + k];
            float *dst = out->logits + (((size_t)b * G + g) * K + k) * E;
            for (int j = 0; j < E; j++) {
                int pad = r < 0 || (in->entity_counts ? j >= in->entity_counts[b]
                                                      : (j > 0 && in->entities[(size_t)b * E + j] == 0));
                dst[j] = pad ? BAN__MASKED_GROUNDING
                             : c->att_tmp[(size_t)r * G * E + (size_t)g * E + j] + m->w.att_hb.data[g];
            }
        }
}

/* ---- forward pass ------------------------------------------------------------------ */

static int ban__all_finite(const float *x, size_t n, size_t *bad)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return *bad = i, 0;
    return 1;
}

/* Validate the input, decide which boxes of each image are real and pack them (with the
   spatial features appended for op 's', or the adapter's box values beside them) when the
   caller's rows cannot be used as they are. A model with padded boxes (pad_boxes) takes the
   first pad_boxes real boxes of an image followed by zero rows up to that count, all of
   them rows of the attention, as OpenVQA's loader pads them (the caller's rows past the
   count report the attention of the zero rows in their place). Sets n_box, n_rows, row0,
   box_row per image; *vin: the rows to project (width Dvis, or the adapter's input). */
static int ban__prepare_boxes(ban_ctx *c, const ban_input *in, const float **vin)
{
    const ban_model *m = c->model;
    const ban_config *cf = &m->config;
    const int N = in->images ? in->images : in->batch, K = in->boxes, Dv = cf->feature_dim, fixed = cf->pad_boxes;
    const int adapter = cf->adapter_dim > 0, Dpack = adapter ? Dv + cf->adapter_box_dim : Dv + 6 * cf->spatial_concat;
    const int boxes5 = adapter && cf->adapter_box_dim > 0; /* the adapter embeds each box's 5 values */
    const int need_spatials = cf->spatial_concat || boxes5 || (cf->task == BAN_TASK_VQA && cf->counter_objects);
    const char *what = in->images ? "image" : "example";
    int pack = cf->spatial_concat || fixed || adapter, rows = 0;
    for (int b = 0; b < in->batch && in->image_index; b++)
        if (in->image_index[b] < 0 || in->image_index[b] >= N)
            return ban__fail(c->error, BAN_ERR_INPUT, "example %d: image index %d outside 0..%d", b,
                             in->image_index[b], N - 1);
    for (int b = 0; b < N; b++) {
        int n = in->box_counts ? in->box_counts[b] : K, real = 0;
        if (n < 0 || n > K)
            return ban__fail(c->error, BAN_ERR_INPUT, "%s %d: box count %d outside 0..%d", what, b, n, K);
        if (n < K) pack = 1;
        c->row0[b] = rows;
        for (int k = 0; k < K; k++) {
            int *slot = &c->box_row[(size_t)b * c->lim.max_boxes + k];
            *slot = -1;
            if (k >= n || (fixed && real == fixed)) continue; /* padding, or past the padded count */
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
        c->n_box[b] = n; /* the counter reads the corners of boxes below it */
        c->n_rows[b] = fixed ? fixed : real;
        rows += c->n_rows[b];
    }
    if (!pack) {
        *vin = in->features;
        return BAN_OK;
    }
    for (int b = 0; b < N; b++) {
        float *dst = c->vpack + (size_t)c->row0[b] * Dpack, *box = c->box5 + (size_t)c->row0[b] * 5;
        if (fixed) memset(dst, 0, (size_t)fixed * Dpack * sizeof(float)); /* the zero rows past the real ones */
        if (fixed && boxes5) memset(box, 0, (size_t)fixed * 5 * sizeof(float));
        for (int k = 0; k < K; k++) {
            int *slot = &c->box_row[(size_t)b * c->lim.max_boxes + k];
            const int r = *slot;
            /* padded boxes are rows of the attention too: the caller's rows past the count are
               the zero rows in their place (whatever they hold), up to the padded count */
            if (fixed) *slot = k < fixed ? k : -1;
            if (r < 0) continue;
            const float *sp = in->spatials ? in->spatials + ((size_t)b * K + k) * 6 : NULL;
            memcpy(dst + (size_t)r * Dpack, in->features + ((size_t)b * K + k) * Dv, (size_t)Dv * sizeof(float));
            if (cf->spatial_concat) memcpy(dst + (size_t)r * Dpack + Dv, sp, 6 * sizeof(float));
            if (boxes5) { /* OpenVQA's 5 box values: x1/w, y1/h, x2/w, y2/h, (x2-x1)(y2-y1)/(w h) */
                float *bx = box + (size_t)r * 5;
                bx[0] = sp[0], bx[1] = sp[1], bx[2] = sp[2], bx[3] = sp[3], bx[4] = sp[4] * sp[5];
            }
        }
    }
    *vin = c->vpack;
    return BAN_OK;
}

/* Tokens as the model runs them: (B, P) into c->tok (the first P of a longer question),
   real positions into c->n_tok. */
static int ban__prepare_tokens(ban_ctx *c, const ban_input *in, int P)
{
    const ban_config *cf = &c->model->config;
    const int B = in->batch, L = in->tokens_len, pad = cf->padding_id, ids = cf->num_ids;
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
            if (src[t] < 0 || src[t] >= ids)
                return ban__fail(c->error, BAN_ERR_INPUT, "example %d, token %d: id %d outside the vocabulary "
                                 "(0..%d, %d = padding)", b, t, src[t], ids - 1, pad);
        if (masked && n == 0) return ban__fail(c->error, BAN_ERR_INPUT, "example %d has no tokens", b);
        for (int t = 0; t < P; t++) c->tok[(size_t)b * P + t] = (t < L && t < n) ? src[t] : pad;
        c->n_tok[b] = masked ? n : P;
    }
    return BAN_OK;
}

/* VQA, the paper's model: Y from the question, the boxes' projections, G bilinear attention
   maps, then per glimpse the joint representation, its residual update of Y (and the count
   feature's), and the classifier over Y */
static int ban__forward_vqa(ban_ctx *c, const ban_input *in, ban_output *out, const float *vin)
{
    const ban_model *m = c->model;
    const ban_config *cf = &m->config;
    const int B = in->batch, D = cf->hidden_dim, kD = cf->attention_rank * D, Dg = m->w.glimpse_q.rows;
    const int P = ban_question_positions(m, in->tokens_len), O = cf->counter_objects;
    const int Gr = in->glimpses ? in->glimpses : cf->num_glimpses, cols = kD + Gr * Dg;
    const int N = in->images ? in->images : B;
    int rows = 0, rc;
    for (int i = 0; i < N; i++) rows += c->n_rows[i];
    if ((rc = ban__prepare_tokens(c, in, P))) return rc;

    ban__question_encoder(c, B, P);
    const int Dvis = m->w.visual.cols;
    if (cf->adapter_dim) vin = ban__box_adapter(c, rows);
    /* sigma(X U) for the attention (kD) and each glimpse run (Dg): one product, once per image */
    ban__linear(c, ban__mat_of(c->vproj, rows, cols, cols), ban__mat_in(vin, rows, Dvis, Dvis), &m->w.visual, 0, 1);
    /* sigma(Y V) for the attention, then every glimpse's map of every example */
    ban__linear(c, ban__mat_of(c->q_att, B * P, kD, kD), ban__mat_of(c->q, B * P, D, D), &m->w.att_q, 0, 1);
    for (int b = 0; b < B; b++) {
        const int i = ban__image_of(in, b);
        ban__attention_logits(c, c->vproj + (size_t)c->row0[i] * cols, cols, c->n_rows[i],
                              c->q_att + (size_t)b * P * kD, P);
        ban__attention_maps(c, in, out, b, P);
    }
    for (int g = 0; g < Gr; g++) {
        ban__joint_representation(c, in, g, B, P, cols);
        ban__residual_update(c, &m->w.glimpse_p, g, ban__mat_of(c->joint, B, D, D), P, 0);
        if (O) {
            ban__count_features(c, in, g, B);
            ban__residual_update(c, &m->w.glimpse_c, g, ban__mat_of(c->count_feat, B, O + 1, O + 1), P, 1);
        }
    }
    ban__classifier(c, B, P, out->logits);
    return BAN_OK;
}

/* Grounding: the GRU states at the entities against the boxes, one attention map per
   sentence; its logits are the output */
static int ban__forward_grounding(ban_ctx *c, const ban_input *in, ban_output *out, const float *vin)
{
    const ban_model *m = c->model;
    const ban_config *cf = &m->config;
    const int B = in->batch, D = cf->hidden_dim, kD = cf->attention_rank * D, E = in->entities_len;
    const int L = in->tokens_len, Dvin = cf->feature_dim + 6 * cf->spatial_concat;
    const int N = in->images ? in->images : B;
    int P = 1, rows = 0, rc;
    for (int i = 0; i < N; i++) rows += c->n_rows[i];
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
    ban__question_encoder(c, B, P);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < E; j++)
            memcpy(c->q_ent + ((size_t)b * E + j) * D, c->q + ((size_t)b * P + in->entities[(size_t)b * E + j]) * D,
                   (size_t)D * sizeof(float));
    ban__linear(c, ban__mat_of(c->vproj, rows, kD, kD), ban__mat_in(vin, rows, Dvin, Dvin), &m->w.visual, 0, 1);
    ban__linear(c, ban__mat_of(c->q_att, B * E, kD, kD), ban__mat_of(c->q_ent, B * E, D, D), &m->w.att_q, 0, 1);
    for (int b = 0; b < B; b++) {
        const int i = ban__image_of(in, b);
        ban__attention_logits(c, c->vproj + (size_t)c->row0[i] * kD, kD, c->n_rows[i], c->q_att + (size_t)b * E * kD,
                              E);
        ban__grounding_logits(c, in, out, b);
    }
    return BAN_OK;
}

/* the input's sizes and pointers against the context and the model */
static int ban__check_input(ban_ctx *c, const ban_input *in, const ban_output *out)
{
    const ban_config *cf = &c->model->config;
    const int vqa = cf->task == BAN_TASK_VQA;
    /* a model that pads questions to a fixed length reads the first question_length tokens of
       a longer one (the reference's tokenizer truncates so): any length up to BAN_MAX_TOKENS */
    const int fixed = vqa && !cf->question_masking, max_tokens = fixed ? BAN_MAX_TOKENS : c->lim.max_tokens;
    if (in->batch < 1 || in->batch > c->lim.max_batch)
        return ban__fail(c->error, BAN_ERR_ARG, "batch %d outside the context's 1..%d", in->batch, c->lim.max_batch);
    if (in->images < 0 || in->images > in->batch || (in->images && !in->image_index) ||
        (!in->images && in->image_index))
        return ban__fail(c->error, BAN_ERR_ARG, "images %d: 0, or 1..batch (%d) with an image index", in->images,
                         in->batch);
    if (in->boxes < 1 || in->boxes > c->lim.max_boxes)
        return ban__fail(c->error, BAN_ERR_ARG, "%d boxes outside the context's 1..%d", in->boxes, c->lim.max_boxes);
    if (in->tokens_len < 1)
        return ban__fail(c->error, BAN_ERR_ARG, "%d tokens: a question needs at least one", in->tokens_len);
    if (in->tokens_len > max_tokens)
        return ban__fail(c->error, BAN_ERR_ARG, "%d tokens outside the context's 1..%d", in->tokens_len, max_tokens);
    if (!in->features || !in->tokens)
        return ban__fail(c->error, BAN_ERR_ARG, "ban_forward: NULL features or tokens");
    if (!in->spatials && (cf->spatial_concat || cf->adapter_box_dim || (vqa && cf->counter_objects)))
        return ban__fail(c->error, BAN_ERR_ARG, "this model needs spatial features (%s)",
                         cf->spatial_concat ? "op 's'" : cf->adapter_box_dim ? "its box adapter" : "the counting module");
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
    return BAN_OK;
}

static int ban__forward_boxes(ban_ctx *c, const ban_input *in, ban_output *out)
{
    const float *vin = NULL;
    int rc;
    if ((rc = ban__check_input(c, in, out)) || (rc = ban__prepare_boxes(c, in, &vin))) return rc;
    return c->model->config.task == BAN_TASK_VQA ? ban__forward_vqa(c, in, out, vin)
                                                 : ban__forward_grounding(c, in, out, vin);
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
    ban__image_encoder(c, in->pixels, N);
    ban_input grid = *in;
    grid.pixels = NULL, grid.boxes = K, grid.features = c->enc_feat, grid.spatials = c->enc_spat;
    return ban__forward_boxes(c, &grid, out);
}

BANDEF int ban_encode(ban_ctx *c, const unsigned char *pixels, int n, float *features, float *spatials)
{
    BAN__REFUSE_CTX(c);
    const ban_config *cf = &c->model->config;
    const size_t K = (size_t)cf->grid_height * cf->grid_width;
    if (!cf->encoder_layers) return ban__fail(c->error, BAN_ERR_UNSUPPORTED, "this model has no image encoder");
    if (!pixels || !features || n < 1 || n > c->lim.max_batch)
        return ban__fail(c->error, BAN_ERR_ARG, "ban_encode: NULL pixels or features, or %d images outside 1..%d",
                         n, c->lim.max_batch);
    ban__image_encoder(c, pixels, n);
    memcpy(features, c->enc_feat, (size_t)n * K * cf->feature_dim * sizeof(float));
    if (spatials) memcpy(spatials, c->enc_spat, (size_t)n * K * 6 * sizeof(float));
    return BAN_OK;
}

BANDEF int ban_forward(ban_ctx *c, const ban_input *in, ban_output *out)
{
    BAN__REFUSE_CTX(c);
    if (!in || !out || !out->logits)
        return ban__fail(c->error, BAN_ERR_ARG, "ban_forward: NULL input, output or output logits");
    if (c->model->config.encoder_layers) return ban__forward_pixels(c, in, out);
    if (in->pixels) return ban__fail(c->error, BAN_ERR_ARG, "this model reads box features, not pixels");
    return ban__forward_boxes(c, in, out);
}

/* ---- tokenizer -------------------------------------------------------------------- */
/* The reference's Dictionary.tokenize: str.lower(); delete ',' and '?'; "'s" -> " 's";
   str.split(); unknown words -> unknown_id. OpenVQA's (tokenizer.rules openvqa): str.lower();
   delete . , ' ! ? " ( ) * # : ; and turn - and / into spaces; str.split(); unknown words ->
   UNK. Text is UTF-8; lower() and split() follow Python 3's Unicode tables (the generated
   tables at the end), final sigma included. */

static uint32_t ban__lower(uint32_t cp);
static int ban__case_ignorable(uint32_t cp);
static int ban__cased(uint32_t cp);

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
    ban_token_info *info;     /* or NULL */
    int max_ids, count, known;
    size_t len;
    int overflow, started;    /* the word outgrew every vocabulary word; it has begun */
    int start, end;           /* the bytes of the text it was read from */
    int pending_apostrophe, apostrophe_at;
} ban__tokenizer;

static void ban__word_end(ban__tokenizer *t)
{
    const ban_model *m = t->ctx->model;
    if (!t->started) return;
    int id = m->config.unknown_id, known = 0;
    if (!t->overflow) {
        size_t h = (size_t)ban__hash(t->ctx->word, t->len) & m->hash_mask;
        for (; m->word_hash[h] >= 0; h = (h + 1) & m->hash_mask) {
            int w = m->word_hash[h];
            if (m->word_len[w] == t->len && !memcmp(m->words[w], t->ctx->word, t->len)) { id = w, known = 1; break; }
        }
    }
    if (t->count < t->max_ids) {
        t->ids[t->count] = id;
        if (t->info) t->info[t->count].start = t->start, t->info[t->count].end = t->end, t->info[t->count].known = known;
    }
    t->count++;
    t->known += known;
    t->len = 0;
    t->overflow = t->started = 0;
}

/* a code point of the word, read from the text's bytes [start, end) */
static void ban__word_add(ban__tokenizer *t, uint32_t cp, int start, int end)
{
    unsigned char b[4];
    int n = cp < 0x80 ? (b[0] = (unsigned char)cp, 1)
          : cp < 0x800 ? (b[0] = (unsigned char)(0xc0 | cp >> 6), b[1] = (unsigned char)(0x80 | (cp & 0x3f)), 2)
          : cp < 0x10000 ? (b[0] = (unsigned char)(0xe0 | cp >> 12), b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f)),
                            b[2] = (unsigned char)(0x80 | (cp & 0x3f)), 3)
          : (b[0] = (unsigned char)(0xf0 | cp >> 18), b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f)),
             b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f)), b[3] = (unsigned char)(0x80 | (cp & 0x3f)), 4);
    if (!t->started) t->started = 1, t->start = start;
    t->end = end;
    /* a word longer than every vocabulary word can only be unknown */
    if (t->len + (size_t)n > (size_t)t->ctx->model->max_word_bytes) t->overflow = 1;
    else memcpy(t->ctx->word + t->len, b, (size_t)n), t->len += (size_t)n;
}

/* one lowered code point, read from bytes [start, end), after ',' and '?' are gone */
static void ban__token_char(ban__tokenizer *t, uint32_t cp, int start, int end)
{
    if (t->pending_apostrophe) {
        t->pending_apostrophe = 0;
        if (cp == 's') ban__word_end(t); /* "'s" -> " 's" */
        ban__word_add(t, '\'', t->apostrophe_at, t->apostrophe_at + 1);
    }
    if (ban__isspace(cp)) ban__word_end(t);
    else if (cp == '\'') t->pending_apostrophe = 1, t->apostrophe_at = start;
    else ban__word_add(t, cp, start, end);
}

static int ban__tokenize(ban_ctx *ctx, const char *text, int32_t *ids, ban_token_info *info, int max_ids,
                         int *n_tokens, int *n_known)
{
    if (n_tokens) *n_tokens = 0;
    BAN__REFUSE_CTX(ctx);
    if (!text || !n_tokens || max_ids < 0 || (max_ids > 0 && !ids))
        return ban__fail(ctx->error, BAN_ERR_ARG, "ban_tokenize: NULL text, ids or count");
    if (!ctx->model->config.has_vocabulary)
        return ban__fail(ctx->error, BAN_ERR_UNSUPPORTED, "%s: the model file carries no vocabulary (export it "
                         "with --dictionary)", ctx->model->file.path);
    const size_t size = strlen(text);
    if (size > (size_t)1 << 30)
        return ban__fail(ctx->error, BAN_ERR_INPUT, "a question of %zu bytes (at most 1 GB)", size);
    const int openvqa = ctx->model->config.tokenizer == BAN_TOKENIZER_OPENVQA;
    ban__tokenizer t;
    memset(&t, 0, sizeof t);
    t.ctx = ctx, t.ids = ids, t.info = info, t.max_ids = max_ids;
    const unsigned char *s = (const unsigned char *)text;
    size_t at = 0;
    int prev_cased = 0; /* the last code point that is not case-ignorable is cased */
    while (s[at]) {
        uint32_t cp, orig;
        const int from = (int)at, n = ban__utf8(s + at, &cp);
        if (!n) return ban__fail(ctx->error, BAN_ERR_INPUT, "byte %zu of the question is not valid UTF-8", at);
        at += (size_t)n;
        orig = cp;
        if (cp == 0x130) { /* the one code point whose lowercase is two: i + combining dot */
            ban__token_char(&t, 'i', from, (int)at);
            ban__token_char(&t, 0x307, from, (int)at);
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
                if (!ban__case_ignorable(nx)) { next_cased = ban__cased(nx); break; }
            }
            cp = prev_cased && !next_cased ? 0x3c2 : 0x3c3;
        } else {
            cp = ban__lower(cp);
        }
        if (!ban__case_ignorable(orig)) prev_cased = ban__cased(orig);
        if (openvqa) { /* re.sub(r"([.,'!?\"()*#:;])", '', q.lower()).replace('-', ' ').replace('/', ' ').split() */
            if (cp < 128 && strchr(".,'!?\"()*#:;", (int)cp)) continue;
            if (cp == '-' || cp == '/') cp = ' ';
        } else if (cp == ',' || cp == '?') {
            continue;
        }
        ban__token_char(&t, cp, from, (int)at);
    }
    if (t.pending_apostrophe) t.pending_apostrophe = 0, ban__word_add(&t, '\'', t.apostrophe_at, t.apostrophe_at + 1);
    ban__word_end(&t);
    *n_tokens = t.count;
    if (n_known) *n_known = t.known;
    return BAN_OK;
}

BANDEF int ban_tokenize(ban_ctx *ctx, const char *text, int32_t *ids, int max_ids, int *n_tokens)
{
    return ban__tokenize(ctx, text, ids, NULL, max_ids, n_tokens, NULL);
}

BANDEF int ban_tokenize_info(ban_ctx *ctx, const char *text, int32_t *ids, ban_token_info *info, int max_ids,
                             int *n_tokens)
{
    int known = 0, rc;
    BAN__REFUSE_CTX(ctx);
    if (max_ids > 0 && !info) return ban__fail(ctx->error, BAN_ERR_ARG, "ban_tokenize_info: NULL info");
    if ((rc = ban__tokenize(ctx, text, ids, info, max_ids, n_tokens, &known))) return rc;
    if (*n_tokens == 0) return ban__fail(ctx->error, BAN_ERR_INPUT, "the question is empty");
    if (known == 0)
        return ban__fail(ctx->error, BAN_ERR_INPUT, "no word of the question is in the model's vocabulary (%d "
                         "unknown)", *n_tokens);
    return BAN_OK;
}

/* ---- generated tables ------------------------------------------------------------
   Python 3's lowercase mapping and the case classes its final-sigma rule reads, as
   tools/gen_unicode_lower.py prints them (paste its output over these tables). */

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
static const int32_t ban__case_ignorable_ranges[][2] = {
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
static const int32_t ban__cased_ranges[][2] = {
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

static int ban__case_ignorable(uint32_t cp)
{
    return ban__in_ranges(ban__case_ignorable_ranges,
                          (int)(sizeof ban__case_ignorable_ranges / sizeof ban__case_ignorable_ranges[0]), cp);
}

static int ban__cased(uint32_t cp)
{
    return ban__in_ranges(ban__cased_ranges, (int)(sizeof ban__cased_ranges / sizeof ban__cased_ranges[0]), cp);
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
