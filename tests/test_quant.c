/* test_quant.c - bf16 and int8 weights (docs/FORMAT.md, "Reduced weights"). TAP output.

   build/test_quant [FIXTURE_DIR]   (default: fixtures/ next to the binary)

   The kernels of each reduced dtype against a double-precision product of the same reduced
   operands, and against each other: the plain C kernel and the AVX-512 one give the same bits,
   for 1, 2 and 3 threads; the activations' conversions, C and AVX-512 alike, special values
   included; ban_reduce's rule; the golden fixtures exported in bf16 and int8 held to the bounds
   docs/FORMAT.md states; forward passes whose bits do not depend on the thread count or on
   BAN_SIMD, and which allocate nothing. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_alloc.h"
#define BAN_IMPLEMENTATION
#include "../ban.h"
#include "test_util.h"

static const int g_reduced[2] = {BAN__BF16, BAN__I8};

static unsigned g_seed = 12345;
static float frand(void)
{
    g_seed = g_seed * 1103515245u + 12345u;
    return (float)((g_seed >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

/* the value a reduced element stands for */
static double reduced_value(int d, const unsigned char *q, size_t i, float scale)
{
    if (d == BAN__I8) return (double)(int8_t)q[i] * scale;
    uint16_t h;
    memcpy(&h, q + 2 * i, 2);
    return ban__bf16_f32(h);
}

/* ---- the kernels ------------------------------------------------------------------------- */

/* y = act(x W^T + b) with W (N, K) in panels of dtype d as a file stores them, through every
   kernel of d this processor runs, with and without bias and ReLU, 1-3 threads, against
   the double-precision product of the reduced x and W; the panels' rows past N hold garbage
   (0xFF bytes: NaN in bf16) that must not reach y, and y's columns past N keep a sentinel */
static void test_reduced_products(void)
{
    static const int shapes[][3] = {{1, 1, 1},      {1, 33, 7},    {3, 70, 5},    {10, 32, 256}, {11, 64, 257},
                                    {37, 95, 300}, {129, 70, 513}, {1, 300, 40}, {260, 64, 129}, {2, 40, 2}};
    char tested[128] = "";
    for (int di = 0; di < 2; di++) {
        const int d = g_reduced[di];
        const size_t eb = (size_t)ban__dtypes[d].bytes, grp = (size_t)ban__dtypes[d].group;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], P = (N + 31) / 32;
            const size_t Kp = ban__padded_k(d, (size_t)K), ldx = (size_t)K + 3, ldy = (size_t)N + 5;
            float *x = malloc(sizeof(float) * M * ldx), *W = malloc(sizeof(float) * N * K), *b = malloc(sizeof(float) * N);
            float *ws = calloc((size_t)P * 32, sizeof(float)), *xs = malloc(sizeof(float) * M);
            float *y = malloc(sizeof(float) * M * ldy), *y1 = malloc(sizeof(float) * M * ldy);
            unsigned char *Wp = malloc((size_t)P * Kp * 32 * eb), *row = malloc((size_t)K * 2), *xq = malloc((size_t)M * Kp * eb);
            unsigned char *xr = malloc((size_t)M * K * 2);
            int32_t *sum = calloc((size_t)P * 32, sizeof(int32_t));
            double *ref = malloc(sizeof(double) * M * N), *mag = malloc(sizeof(double) * M * N);
            float *xrs = malloc(sizeof(float) * M);
            for (size_t i = 0; i < (size_t)M * ldx; i++) x[i] = frand() * (i % 7 == 3 ? 0.0f : 2.0f);
            for (int i = 0; i < N * K; i++) W[i] = frand() * 0.5f;
            for (int i = 0; i < N; i++) b[i] = frand();
            memset(Wp, 0xFF, (size_t)P * Kp * 32 * eb);
            for (int n = 0; n < N; n++) { /* W's rows reduced, then laid out as panels (docs/FORMAT.md) */
                REQUIRE(ban_reduce(ban__dtypes[d].name, W + (size_t)n * K, (size_t)K, row, &ws[n]) == BAN_OK, "reduce");
                for (size_t k = 0; k < Kp; k++) {
                    const size_t at = (size_t)(n / 32) * Kp * 32 + k / grp * 32 * grp + (size_t)(n % 32) * grp + k % grp;
                    if (k < (size_t)K) memcpy(Wp + at * eb, row + k * eb, eb);
                    else memset(Wp + at * eb, 0, eb); /* K's padding: zeros, as the format says */
                    if (d == BAN__I8 && k < (size_t)K) sum[n] += (int8_t)row[k];
                }
                for (int k = 0; k < K; k++) W[(size_t)n * K + k] = (float)reduced_value(d, row, (size_t)k, ws[n]);
            }
            for (int i = 0; i < M; i++) { /* the activations as the kernels see them */
                ban_reduce(ban__dtypes[d].name, x + (size_t)i * ldx, (size_t)K, xr + (size_t)i * K * eb, &xrs[i]);
                for (int n = 0; n < N; n++) {
                    double acc = 0.0, m = 0.0;
                    for (int k = 0; k < K; k++) {
                        const double p = reduced_value(d, xr + (size_t)i * K * eb, (size_t)k, xrs[i]) * W[(size_t)n * K + k];
                        acc += p, m += fabs(p);
                    }
                    ref[i * N + n] = acc, mag[i * N + n] = m;
                }
            }
            int first = 1;
            for (int ki = 0; ki < BAN__N_KERNELS; ki++) {
                const ban__kernel *kr = &ban__kernels[ki];
                if (kr->dtype != d || !kr->runs()) continue;
                if (s == 0) snprintf(tested + strlen(tested), sizeof tested - strlen(tested), " %s/%s", ban__dtypes[d].name, kr->name);
                for (int relu = 0; relu < 2; relu++)
                    for (int bias = 0; bias < 2; bias++)
                        for (int threads = 1; threads <= 3; threads++) {
                            ban__pool *pool = NULL;
#if BAN__THREADS
                            if (threads > 1) REQUIRE(pool = ban__pool_new(threads - 1), "no threads");
#endif
                            for (size_t i = 0; i < (size_t)M * ldy; i++) y[i] = 12345.0f;
                            memset(xq, 0xAB, (size_t)M * Kp * eb);
                            kr->prepare(x, M, K, ldx, xq, Kp, xs);
                            const ban__pgemm g = {M, N, (int)Kp, (int)Kp, (int)ldy, relu, kr, xq, Wp, 32, Kp * 32,
                                                  bias ? b : NULL, y, xs, d == BAN__I8 ? ws : NULL,
                                                  d == BAN__I8 ? sum : NULL};
                            ban__pgemm_run(pool, &g);
                            ban__pool_free(pool);
                            int bad = 0;
                            for (int i = 0; i < M && !bad; i++) {
                                for (int n = 0; n < N && !bad; n++) {
                                    double want = ref[i * N + n] + (bias ? b[n] : 0.0);
                                    if (relu && want < 0) want = 0.0;
                                    const double tol = (d == BAN__I8 ? 1e-6 : 4e-6) * (mag[i * N + n] + 1.0);
                                    if (!(fabs(y[i * ldy + n] - want) <= tol)) {
                                        CHECK(0, "%s %dx%dx%d, kernel %s, relu %d, bias %d, %d threads: y[%d][%d] = %.9g, "
                                              "want %.9g", ban__dtypes[d].name, M, N, K, kr->name, relu, bias, threads, i, n,
                                              y[i * ldy + n], want);
                                        bad = 1;
                                    }
                                }
                                for (size_t n = (size_t)N; n < ldy && !bad; n++)
                                    if (y[i * ldy + n] != 12345.0f) {
                                        CHECK(0, "%s %dx%dx%d, kernel %s: wrote y[%d][%zu], past N", ban__dtypes[d].name, M, N,
                                              K, kr->name, i, n);
                                        bad = 1;
                                    }
                            }
                            if (relu || !bias) continue; /* the bits compared: one setting, every kernel and thread count */
                            if (first) memcpy(y1, y, sizeof(float) * M * ldy), first = 0;
                            else CHECK(!memcmp(y, y1, sizeof(float) * M * ldy), "%s %dx%dx%d: kernel %s, %d threads: "
                                       "other bits", ban__dtypes[d].name, M, N, K, kr->name, threads);
                        }
            }
            free(x), free(W), free(b), free(ws), free(xs), free(y), free(y1), free(Wp), free(row), free(xq), free(xr);
            free(sum), free(ref), free(mag), free(xrs);
        }
    }
    printf("# kernels tested:%s\n", tested);
}

/* The f32 one-row kernel (a GRU step, the classifier at batch 1) gives row 0 the bits the
   tiles give it in a product of more rows: for weights in panels and for V read in place
   (W^T in rows, panel stride 32, the last panel's loads stopping at N), with and without bias
   and ReLU, 1 and 2 threads */
static void test_one_row_kernel(void)
{
    static const int Ns[] = {1, 31, 32, 33, 128, 129, 300}, Ks[] = {1, 7, 256, 257, 600};
    int compared = 0;
    for (size_t ni = 0; ni < sizeof Ns / sizeof Ns[0]; ni++)
        for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++) {
            const int N = Ns[ni], K = Ks[ki], P = (N + 31) / 32;
            float *x = malloc(sizeof(float) * 2 * K), *Wp = calloc((size_t)P * K * 32, sizeof(float));
            float *V = malloc(sizeof(float) * K * N), *b = malloc(sizeof(float) * N);
            float *y2 = malloc(sizeof(float) * 2 * N), *y1 = malloc(sizeof(float) * N);
            for (int i = 0; i < 2 * K; i++) x[i] = frand();
            for (int n = 0; n < N; n++) {
                b[n] = frand();
                for (int k = 0; k < K; k++) {
                    const float w = frand();
                    Wp[((size_t)(n / 32) * K + k) * 32 + n % 32] = w, V[(size_t)k * N + n] = w;
                }
            }
            for (int ki2 = 0; ki2 < BAN__N_KERNELS; ki2++) {
                const ban__kernel *kr = &ban__kernels[ki2];
                if (kr->dtype != BAN__F32 || !kr->runs()) continue;
                for (int in_rows = 0; in_rows < 2; in_rows++)
                    for (int relu = 0; relu < 2; relu++)
                        for (int threads = 1; threads <= 2; threads++) {
                            ban__pool *pool = NULL;
#if BAN__THREADS
                            if (threads > 1) REQUIRE(pool = ban__pool_new(threads - 1), "no threads");
#endif
                            const void *B = in_rows ? (const void *)V : (const void *)Wp;
                            const size_t ldb = in_rows ? (size_t)N : 32, ps = in_rows ? 32 : (size_t)K * 32;
                            const float *bias = in_rows ? NULL : b;
                            const ban__pgemm two = {2, N, K, K, N, relu, kr, x, B, ldb, ps, bias, y2, NULL, NULL, NULL};
                            const ban__pgemm one = {1, N, K, K, N, relu, kr, x, B, ldb, ps, bias, y1, NULL, NULL, NULL};
                            ban__pgemm_run(pool, &two);
                            ban__pgemm_run(pool, &one);
                            ban__pool_free(pool);
                            CHECK(!memcmp(y1, y2, sizeof(float) * N), "kernel %s, 1 x %d x %d%s, relu %d, %d threads: "
                                  "one row gives other bits than in two", kr->name, N, K, in_rows ? " (W^T in rows)" : "",
                                  relu, threads);
                            compared++;
                        }
            }
            free(x), free(Wp), free(V), free(b), free(y2), free(y1);
        }
    printf("# %d one-row products compared\n", compared);
}

/* ---- the activations' conversions ---------------------------------------------------------- */

/* rows of every kind: random, with zeros, subnormals, rounding ties, NaN, infinity, huge and
   tiny values, lengths around the SIMD width; each prepare (C and AVX-512) must give the same
   bytes and scales, and the C ones must be ban_reduce's rule applied to each row */
static void test_prepare_parity(void)
{
    static const int lengths[] = {1, 2, 3, 15, 16, 17, 31, 33, 40, 2048, 2049};
    const size_t maxk = 2049 + 4;
    float *x = malloc(sizeof(float) * maxk);
    unsigned char *out[2], *want = malloc(maxk * 2);
    float scale[2];
    out[0] = malloc(maxk * 2), out[1] = malloc(maxk * 2);
    int compared = 0;
    for (int di = 0; di < 2; di++) {
        const int d = g_reduced[di];
        const size_t eb = (size_t)ban__dtypes[d].bytes;
        for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++)
            for (int kind = 0; kind < 8; kind++) {
                const int K = lengths[li];
                const size_t Kp = ban__padded_k(d, (size_t)K);
                for (int k = 0; k < K; k++) {
                    float v = frand() * 3.0f;
                    uint32_t bits;
                    switch (kind) {
                    case 1: v = k % 3 ? 0.0f : v; break;                      /* mostly zeros */
                    case 2: bits = 0x00000100u * (uint32_t)(k + 1); memcpy(&v, &bits, 4); break; /* subnormal */
                    case 3: v = (float)(k % 200) - 99.5f; break;              /* ties of int8 rounding (scale 1) */
                    case 4: bits = 0x3F808000u + (uint32_t)k * 0x10000u; memcpy(&v, &bits, 4); break; /* bf16 ties */
                    case 5: if (k == K / 2) v = NAN; break;
                    case 6: if (k == K - 1) v = -INFINITY; else if (k == 0) v = 3.0e38f; break;
                    case 7: v *= 1e-37f; break;                               /* below 2^-120 */
                    default: break;
                    }
                    x[k] = v;
                }
                if (kind == 3) x[0] = 127.0f; /* max |x| = 127: x * 127 / 127 = x, halfway between integers */
                float rs;
                REQUIRE(ban_reduce(ban__dtypes[d].name, x, (size_t)K, want, &rs) == BAN_OK, "reduce");
                int n = 0;
                for (int ki = 0; ki < BAN__N_KERNELS; ki++) {
                    const ban__kernel *kr = &ban__kernels[ki];
                    if (kr->dtype != d || !kr->runs()) continue;
                    memset(out[n], 0x5A, maxk * 2);
                    scale[n] = -1.0f;
                    kr->prepare(x, 1, K, (size_t)K, out[n], Kp, &scale[n]);
                    if (n == 0) { /* the first listed (AVX-512 where it runs) against ban_reduce, the others against it */
                        int same = 1;
                        for (int k = 0; k < K && same; k++)
                            same = d == BAN__I8 ? out[n][k] == (unsigned char)((int8_t)want[k] + 128)
                                                : !memcmp(out[n] + 2 * k, want + 2 * k, 2);
                        for (size_t k = (size_t)K; k < Kp && same; k++)
                            same = d == BAN__I8 ? out[n][k] == 128 : out[n][2 * k] == 0 && out[n][2 * k + 1] == 0;
                        CHECK(same, "%s, %d values of kind %d: kernel %s's activations are not ban_reduce's (and K's "
                              "padding zeros)", ban__dtypes[d].name, K, kind, kr->name);
                        if (d == BAN__I8)
                            CHECK(!memcmp(&scale[n], &rs, 4), "%s, %d of kind %d: scale %g, ban_reduce's %g", kr->name, K,
                                  kind, scale[n], rs);
                    } else {
                        CHECK(!memcmp(out[0], out[n], Kp * eb) && (d != BAN__I8 || !memcmp(&scale[0], &scale[n], 4)),
                              "%s, %d values of kind %d: kernels %s and another convert differently", ban__dtypes[d].name,
                              K, kind, kr->name);
                        compared++;
                    }
                    n++;
                }
            }
    }
#if BAN__X86
    if (ban__runs_avx512_bf16() && ban__runs_avx512_vnni()) CHECK(compared > 0, "no AVX-512 conversion compared");
#endif
    printf("# %d conversions compared between kernels\n", compared);
    free(x), free(want), free(out[0]), free(out[1]);
}

/* ban_reduce: int8 within half a step of x, max |x| at +-127, the special rows; bf16 the
   nearest value (ties to even), subnormals to zero; other dtypes refused */
static void test_reduce_rule(void)
{
    float x[64], s;
    int8_t q[64];
    uint16_t h[64];
    for (int i = 0; i < 64; i++) x[i] = frand() * 5.0f;
    x[17] = -7.5f;
    REQUIRE(ban_reduce("int8", x, 64, q, &s) == BAN_OK, "int8");
    CHECK(s == 7.5f / 127.0f && q[17] == -127, "scale %g, q %d", s, q[17]);
    int far = 0;
    for (int i = 0; i < 64; i++) far += fabsf((float)q[i] * s - x[i]) > s * 0.5f * 1.0001f;
    CHECK(far == 0, "%d values further than half a step", far);
    const float zeros[3] = {0.0f, -0.0f, 0.0f}, tiny[2] = {1e-37f, -5e-38f}, bad[2] = {1.0f, NAN};
    CHECK(ban_reduce("int8", zeros, 3, q, &s) == BAN_OK && s == 0.0f && !q[0] && !q[1] && !q[2], "zeros");
    CHECK(ban_reduce("int8", tiny, 2, q, &s) == BAN_OK && s == 0.0f && !q[0] && !q[1], "below 2^-120: zeros");
    CHECK(ban_reduce("int8", bad, 2, q, &s) == BAN_OK && isnan(s) && !q[0] && !q[1], "a NaN: scale NaN, zeros");
    const float b[6] = {1.0f, 1.00390625f, 1.01171875f, -3.0e-39f, INFINITY, 3.4028235e38f};
    REQUIRE(ban_reduce("bf16", b, 6, h, NULL) == BAN_OK, "bf16");
    CHECK(h[0] == 0x3F80 && h[1] == 0x3F80 && h[2] == 0x3F82, "ties to even: %04x %04x %04x", h[0], h[1], h[2]);
    CHECK(h[3] == 0x8000 && h[4] == 0x7F80 && h[5] == 0x7F80, "subnormal, infinity, overflow: %04x %04x %04x", h[3],
          h[4], h[5]);
    for (int i = 0; i < 64; i++) { /* the nearest of the two neighbours */
        REQUIRE(ban_reduce("bf16", &x[i], 1, &h[i], NULL) == BAN_OK, "bf16");
        if ((h[i] & 0x7FFF) == 0) continue;
        const float lo = ban__bf16_f32((uint16_t)(h[i] & 0xFFFF)), other = ban__bf16_f32((uint16_t)(h[i] + 1));
        const float below = ban__bf16_f32((uint16_t)(h[i] - 1));
        CHECK(fabsf(lo - x[i]) <= fabsf(other - x[i]) && fabsf(lo - x[i]) <= fabsf(below - x[i]), "%g -> %g", x[i], lo);
    }
    CHECK(ban_reduce("f32", x, 4, q, &s) == BAN_ERR_ARG && ban_reduce("int8", NULL, 4, q, &s) == BAN_ERR_ARG &&
          ban_reduce("int8", x, 4, q, NULL) == BAN_ERR_ARG, "bad arguments");
}

/* ---- models ------------------------------------------------------------------------------- */

/* The golden fixtures exported in bf16 and int8 against the reference's outputs: the largest
   logit error relative to each example's spread of logits (max - min), and the answers. The
   bounds are docs/FORMAT.md's: bf16 3%, int8 8% of the spread; every golden VQA answer as
   the reference's; at least 95% of the grounding's top boxes (int8), all of them (bf16). */
static void test_golden_bounds(void)
{
    static const float bound[2] = {0.03f, 0.08f};
    npy_array v = load("g2_v.npy"), bx = load("g2_b.npy"), q = load("g2_q.npy"), gold = load("g2_logits.npy");
    int32_t *tok = ints(&q);
    const int B = (int)v.shape[0], K = (int)v.shape[1], L = (int)q.shape[1];
    for (int di = 0; di < 2; di++) {
        char name[32];
        snprintf(name, sizeof name, "g2_%s.ban", ban__dtypes[g_reduced[di]].name);
        ban_model *m = open_model(name);
        const int A = ban_model_config(m)->num_answers;
        ban_limits lim = {B, K, L, 0, 0};
        ban_ctx *c;
        REQUIRE(ban_ctx_create(m, &lim, &c) == BAN_OK, "%s", ban_ctx_error(c));
        float *logits = malloc(sizeof(float) * B * A);
        ban_input in;
        memset(&in, 0, sizeof in);
        in.batch = B, in.boxes = K, in.features = v.data, in.spatials = bx.data, in.tokens_len = L, in.tokens = tok;
        ban_output out = {logits, NULL, NULL};
        REQUIRE(ban_forward(c, &in, &out) == BAN_OK, "%s", ban_ctx_error(c));
        float worst = 0.0f;
        for (int b = 0; b < B; b++) {
            const float *g = (const float *)gold.data + (size_t)b * A;
            float lo = g[0], hi = g[0], err = 0.0f;
            for (int a = 0; a < A; a++) {
                lo = g[a] < lo ? g[a] : lo, hi = g[a] > hi ? g[a] : hi;
                err = fabsf(logits[b * A + a] - g[a]) > err ? fabsf(logits[b * A + a] - g[a]) : err;
            }
            worst = err / (hi - lo) > worst ? err / (hi - lo) : worst;
            CHECK(ban_argmax(logits + b * A, A) == ban_argmax(g, A), "%s: example %d answers otherwise", name, b);
        }
        printf("# %s: largest logit error %.4f of the spread (bound %.2f)\n", name, worst, bound[di]);
        CHECK(worst <= bound[di], "%s: logit error %.4f of the spread, above %.2f", name, worst, bound[di]);
        free(logits);
        ban_ctx_free(c);
        ban_model_free(m);
    }
    free(tok);
    npy_free(&v), npy_free(&bx), npy_free(&q), npy_free(&gold);

    npy_array fv = load("flickr_v.npy"), fb = load("flickr_b.npy"), fq = load("flickr_q.npy"), fe = load("flickr_e.npy");
    npy_array fg = load("flickr_att_logits.npy");
    int32_t *ftok = ints(&fq), *fent = ints(&fe);
    const int FB = (int)fv.shape[0], FK = (int)fv.shape[1], FL = (int)fq.shape[1], FE = (int)fe.shape[1];
    for (int di = 0; di < 2; di++) {
        char name[32];
        snprintf(name, sizeof name, "flickr_%s.ban", ban__dtypes[g_reduced[di]].name);
        ban_model *m = open_model(name);
        const int G = ban_model_config(m)->num_glimpses;
        ban_limits lim = {FB, FK, FL, FE, 0};
        ban_ctx *c;
        REQUIRE(ban_ctx_create(m, &lim, &c) == BAN_OK, "%s", ban_ctx_error(c));
        float *l = malloc(sizeof(float) * FB * G * FK * FE);
        ban_input in;
        memset(&in, 0, sizeof in);
        in.batch = FB, in.boxes = FK, in.features = fv.data, in.spatials = fb.data, in.tokens_len = FL, in.tokens = ftok;
        in.entities_len = FE, in.entities = fent;
        ban_output out = {l, NULL, NULL};
        REQUIRE(ban_forward(c, &in, &out) == BAN_OK, "%s", ban_ctx_error(c));
        float worst = 0.0f;
        int same = 0, maps = 0;
        for (int bg = 0; bg < FB * G; bg++)
            for (int j = 0; j < FE; j++) { /* a map over the boxes of one entity; -99 is padding */
                const float *g = (const float *)fg.data;
                float lo = INFINITY, hi = -INFINITY, err = 0.0f;
                int top = -1, ours = -1;
                for (int k = 0; k < FK; k++) {
                    const size_t at = ((size_t)bg * FK + k) * FE + j;
                    if (g[at] <= -99.0f) continue;
                    lo = g[at] < lo ? g[at] : lo, hi = g[at] > hi ? g[at] : hi;
                    err = fabsf(l[at] - g[at]) > err ? fabsf(l[at] - g[at]) : err;
                    if (top < 0 || g[at] > g[((size_t)bg * FK + top) * FE + j]) top = k;
                    if (ours < 0 || l[at] > l[((size_t)bg * FK + ours) * FE + j]) ours = k;
                }
                if (top < 0 || hi <= lo) continue;
                maps++, same += top == ours;
                worst = err / (hi - lo) > worst ? err / (hi - lo) : worst;
            }
        printf("# %s: largest logit error %.4f of the spread (bound %.2f), top box as the reference's in %d of %d\n",
               name, worst, bound[di], same, maps);
        CHECK(worst <= bound[di], "%s: logit error %.4f of the spread, above %.2f", name, worst, bound[di]);
        CHECK(maps > 0 && (g_reduced[di] == BAN__I8 ? same >= 0.95 * maps : same == maps), "%s: top box in %d of %d",
              name, same, maps);
        free(l);
        ban_ctx_free(c);
        ban_model_free(m);
    }
    free(ftok), free(fent);
    npy_free(&fv), npy_free(&fb), npy_free(&fq), npy_free(&fe), npy_free(&fg);
}

/* the g2 logits of a reduced model through a context of `threads` threads, the kernels
   BAN_SIMD allows (NULL: any), batch 1 or the whole fixture */
static void g2_logits(const char *file, int threads, const char *simd, int batch1, float *logits, char *kernel)
{
    npy_array v = load("g2_v.npy"), bx = load("g2_b.npy"), q = load("g2_q.npy");
    int32_t *tok = ints(&q);
    const int B = (int)v.shape[0], K = (int)v.shape[1], L = (int)q.shape[1];
    ban_model *m = open_model(file);
    const int A = ban_model_config(m)->num_answers;
    if (simd) setenv("BAN_SIMD", simd, 1);
    else unsetenv("BAN_SIMD");
    ban_limits lim = {B, K, L, 0, threads};
    ban_ctx *c;
    if (ban_ctx_create(m, &lim, &c) != BAN_OK) printf("Bail out! %s\n", ban_ctx_error(c)), exit(1);
    unsetenv("BAN_SIMD");
    const char *dt = strstr(file, "int8") ? "int8" : "bf16";
    snprintf(kernel, 32, "%s", ban_ctx_kernel_for(c, dt));
    for (int b0 = 0; b0 < B; b0 += batch1 ? 1 : B) {
        ban_input in;
        memset(&in, 0, sizeof in);
        in.batch = batch1 ? 1 : B, in.boxes = K, in.tokens_len = L;
        in.features = (const float *)v.data + (size_t)b0 * K * v.shape[2];
        in.spatials = (const float *)bx.data + (size_t)b0 * K * 6, in.tokens = tok + (size_t)b0 * L;
        ban_output out = {logits + (size_t)b0 * A, NULL, NULL};
        if (ban_forward(c, &in, &out) != BAN_OK) printf("Bail out! %s\n", ban_ctx_error(c)), exit(1);
    }
    ban_ctx_free(c);
    ban_model_free(m);
    free(tok);
    npy_free(&v), npy_free(&bx), npy_free(&q);
}

/* the same bits whatever the thread count and the kernel (plain C under BAN_SIMD=none), at
   batch 1 (one-row products) and 6; the forward pass allocates nothing */
static void test_same_bits(void)
{
    static const char *const files[2] = {"g2_bf16.ban", "g2_int8.ban"};
    for (int fi = 0; fi < 2; fi++)
        for (int batch1 = 0; batch1 < 2; batch1++) {
            float first[6 * 64], other[6 * 64];
            char k0[32], k[32];
            g2_logits(files[fi], 1, NULL, batch1, first, k0);
            for (int t = 2; t <= 3; t++) {
                g2_logits(files[fi], t, NULL, batch1, other, k);
                CHECK(!memcmp(first, other, sizeof(float) * 6 * 30), "%s, batch %s: %d threads change bits", files[fi],
                      batch1 ? "1" : "6", t);
            }
            g2_logits(files[fi], 2, "none", batch1, other, k);
            CHECK(!strcmp(k, "c"), "BAN_SIMD=none runs kernel %s", k);
            CHECK(!memcmp(first, other, sizeof(float) * 6 * 30), "%s, batch %s: kernel %s and %s give other bits",
                  files[fi], batch1 ? "1" : "6", k0, k);
            if (!batch1) printf("# %s: kernel %s, the same bits as kernel c, 1-3 threads\n", files[fi], k0);
        }
    /* no allocation in a forward pass of a reduced model */
    npy_array v = load("g2_v.npy"), bx = load("g2_b.npy"), q = load("g2_q.npy");
    int32_t *tok = ints(&q);
    for (int fi = 0; fi < 2; fi++) {
        ban_model *m = open_model(files[fi]);
        ban_limits lim = {6, 24, 14, 0, 0};
        ban_ctx *c;
        REQUIRE(ban_ctx_create(m, &lim, &c) == BAN_OK, "%s", ban_ctx_error(c));
        float logits[6 * 64];
        ban_input in;
        memset(&in, 0, sizeof in);
        in.batch = 6, in.boxes = 24, in.features = v.data, in.spatials = bx.data, in.tokens_len = 14, in.tokens = tok;
        ban_output out = {logits, NULL, NULL};
        const long before = g_allocs;
        for (int i = 0; i < 3; i++) REQUIRE(ban_forward(c, &in, &out) == BAN_OK, "%s", ban_ctx_error(c));
        CHECK(g_allocs == before, "%s: the forward pass allocated %ld times", files[fi], g_allocs - before);
        ban_ctx_free(c);
        ban_model_free(m);
    }
    free(tok);
    npy_free(&v), npy_free(&bx), npy_free(&q);
}

/* what a reduced model says about itself: the tensors' dtypes, int8 scales, bytes as stored,
   the same parameter count as the f32 model; the kernels per dtype */
static void test_model_info(void)
{
    ban_model *f32 = open_model("g2.ban"), *m = open_model("g2_int8.ban");
    CHECK(ban_model_parameter_count(m) == ban_model_parameter_count(f32), "int8 counts %zu parameters, f32 %zu",
          ban_model_parameter_count(m), ban_model_parameter_count(f32));
    int int8 = 0, scales = 0, f32s = 0;
    for (int i = 0; i < ban_model_tensor_count(m); i++) {
        ban_tensor_info t;
        REQUIRE(ban_model_tensor(m, i, &t) == BAN_OK, "tensor %d", i);
        const size_t n = strlen(t.name);
        if (!strcmp(t.dtype, "int8")) {
            int8++;
            CHECK(!strcmp(t.layout, strstr(t.name, "_panels") ? "panels" : ""), "%s: layout '%s'", t.name, t.layout);
        } else {
            CHECK(!strcmp(t.dtype, "f32"), "%s: dtype %s", t.name, t.dtype);
            f32s++;
        }
        if (t.is_scale) {
            scales++;
            CHECK(n > 7 && !strcmp(t.name + n - 7, "_scales") && !strcmp(t.dtype, "f32") && !*t.layout && t.spec,
                  "%s: a scale tensor", t.name);
        }
        CHECK(t.data != NULL, "%s: no data", t.name);
    }
    CHECK(int8 >= 9 && scales == int8 && f32s > scales, "%d int8 tensors, %d scales", int8, scales);
    ban_limits lim = {1, 8, 14, 0, 1};
    ban_ctx *c;
    REQUIRE(ban_ctx_create(m, &lim, &c) == BAN_OK, "%s", ban_ctx_error(c));
    const char *k8 = ban_ctx_kernel_for(c, "int8"), *kb = ban_ctx_kernel_for(c, "bf16");
    CHECK(k8 && kb && ban_ctx_kernel_for(c, "f16") == NULL && ban_ctx_kernel_for(c, "x") == NULL &&
          !strcmp(ban_ctx_kernel_for(c, "f32"), ban_ctx_kernel(c)), "kernels %s %s", k8 ? k8 : "-", kb ? kb : "-");
    printf("# kernels: f32 %s, bf16 %s, int8 %s\n", ban_ctx_kernel(c) ? ban_ctx_kernel(c) : "-", kb ? kb : "-", k8 ? k8 : "-");
    ban_ctx_free(c);
    CHECK(ban_ctx_kernel_for(NULL, "int8") == NULL, "a NULL context has no kernel");
    ban_model_free(m);
    ban_model_free(f32);
}

int main(int argc, char **argv)
{
    test_fixture_dir(argc, argv);
    static const test_case tests[] = {
        {"bf16 and int8 products: every kernel, against double precision, the same bits", test_reduced_products},
        {"the f32 one-row kernel: the bits the tiles give the same row", test_one_row_kernel},
        {"activations rounded and quantized alike by every kernel, as ban_reduce", test_prepare_parity},
        {"ban_reduce: int8 steps, bf16 rounding, special values", test_reduce_rule},
        {"golden fixtures in bf16 and int8 within the documented bounds", test_golden_bounds},
        {"bf16 and int8 forward passes: the same bits for 1-3 threads and BAN_SIMD=none; no allocation", test_same_bits},
        {"a reduced model's tensors, parameters and kernels", test_model_info},
    };
    return run_tests(tests, (int)(sizeof tests / sizeof tests[0]));
}
