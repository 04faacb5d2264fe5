/* products.c - ban.h's own matrix product against the machine's sgemm, on the shapes of
   the paper's VQA model: fp32 weights in panels against the same weights in rows (OpenBLAS),
   and the same products with the weights in bf16 and int8.

       build/bench_products [--threads T] [--runs N]

   For each shape: the median time of ban.h's product with f32, bf16 and int8 weights (the
   kernel this processor runs for each, T threads of a context's pool; bf16 and int8 include
   rounding or quantizing the activations, once per product, as a forward pass does) and of
   OpenBLAS (T threads: cblas_sgemm, cblas_sgemv for one row) on the same operands, in rounds
   of one block each (a block: one call, or 200 of a product of one row after 20 untimed: the
   first tens of calls after an idle pause run up to 3x slower, the cores coming back up to
   speed, and a forward pass runs its one-row products amid work; blocks, not single calls
   interleaved, as OpenBLAS's idle threads spin after a call: its block is followed by 0.2 s
   of nothing, for them to go to sleep), medians over the rounds;
   and the largest difference of each result from OpenBLAS's relative to the largest |y|. The shapes: the visual projection
   of every box (100 boxes a question, batch 1 and 32), the GRU's hidden gates at batch 1 and
   32, and the classifier's last layer at batch 1. */
#define _POSIX_C_SOURCE 200809L
#define BAN_IMPLEMENTATION
#include "../ban.h"
#include <time.h>

void openblas_set_num_threads(int);

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static double median(double *x, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && x[j] < x[j - 1]; j--) {
            const double t = x[j];
            x[j] = x[j - 1], x[j - 1] = t;
        }
    return x[n / 2];
}

/* W (N, K) in panels of dtype d as a .ban file stores them (docs/FORMAT.md), with its int8
   scales and the row sums ban.h computes at load */
typedef struct {
    void *panels;
    float *scale;
    int32_t *sum;
    size_t K; /* padded to the dtype's group */
} weight;

static weight panels_of(const float *W, int N, int K, int d)
{
    const int P = (N + 31) / 32;
    const size_t Kp = ban__padded_k(d, (size_t)K), g = (size_t)ban__dtypes[d].group, eb = (size_t)ban__dtypes[d].bytes;
    weight w = {calloc((size_t)P * Kp * 32, eb), calloc((size_t)P * 32, sizeof(float)),
                calloc((size_t)P * 32, sizeof(int32_t)), Kp};
    unsigned char *row = malloc((size_t)K * 4);
    for (int n = 0; n < N; n++) {
        float s = 1.0f;
        if (d != BAN__F32) ban_reduce(ban__dtypes[d].name, W + (size_t)n * K, (size_t)K, row, &s);
        else memcpy(row, W + (size_t)n * K, (size_t)K * 4);
        w.scale[n] = s;
        for (int k = 0; k < K; k++) {
            const size_t at = (size_t)(n / 32) * Kp * 32 + (size_t)k / g * 32 * g + (size_t)(n % 32) * g + (size_t)k % g;
            memcpy((unsigned char *)w.panels + at * eb, row + (size_t)k * eb, eb);
            if (d == BAN__I8) w.sum[n] += (int8_t)row[k];
        }
    }
    free(row);
    return w;
}

int main(int argc, char **argv)
{
    int T = 2, runs = 9;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) T = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
    }
    if (T < 1 || T > 64 || runs < 1 || runs > 1000) return fprintf(stderr, "usage: %s [--threads T] [--runs N]\n", argv[0]), 2;
    static const struct { const char *what; int M, N, K; } shapes[] = {
        {"visual projections, batch 1", 100, 14080, 2048},
        {"visual projections, batch 32", 3200, 14080, 2048},
        {"GRU hidden gates, batch 1", 1, 3840, 1280},
        {"GRU hidden gates, batch 32", 32, 3840, 1280},
        {"classifier output, batch 1", 1, 3129, 2560},
    };
    static const int dtypes[3] = {BAN__F32, BAN__BF16, BAN__I8};
    openblas_set_num_threads(T);
    ban__pool *pool = NULL;
#if BAN__THREADS
    if (T > 1) pool = ban__pool_new(T - 1);
#endif
    printf("ban.h's kernels: f32 %s, bf16 %s, int8 %s; %d threads; OpenBLAS %d threads; medians of %d rounds (a "
           "block of 200 calls a round for one row, after 20 untimed)\n\n", ban__pick_kernel(BAN__F32)->name,
           ban__pick_kernel(BAN__BF16)->name, ban__pick_kernel(BAN__I8)->name, T, T, runs);
    printf("| product | M x N x K | OpenBLAS ms | f32 ms | bf16 ms | int8 ms | f32 vs OpenBLAS | bf16 vs f32 | "
           "int8 vs f32 | GFLOP/s f32 / bf16 / int8 | error bf16 / int8 |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    unsigned seed = 1;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int M = shapes[s].M, N = shapes[s].N, K = shapes[s].K, calls = M == 1 ? 200 : 1, warm = M == 1 ? 20 : 0;
        float *x = malloc(sizeof(float) * M * K), *W = malloc(sizeof(float) * N * K), *ref = malloc(sizeof(float) * M * N);
        float *y[3], *xs = malloc(sizeof(float) * M);
        unsigned char *xq = malloc((size_t)M * (K + 4) * 2);
        double *t = malloc(sizeof(double) * 4 * runs), ms[4], err[4] = {0};
        for (int di = 0; di < 3; di++) y[di] = malloc(sizeof(float) * M * N);
        if (!x || !W || !ref || !y[0] || !y[1] || !y[2] || !xs || !xq || !t) return fprintf(stderr, "out of memory\n"), 1;
        for (size_t i = 0; i < (size_t)M * K; i++) x[i] = (float)((seed = seed * 1103515245u + 12345u) >> 9) / 8388608.0f - 1.0f;
        for (size_t i = 0; i < (size_t)N * K; i++) W[i] = (float)((seed = seed * 1103515245u + 12345u) >> 9) / 8388608.0f - 1.0f;
        weight w[3];
        ban__pgemm g[3];
        for (int di = 0; di < 3; di++) {
            const int d = dtypes[di];
            w[di] = panels_of(W, N, K, d);
            const ban__pgemm f = {M, N, K, K, N, 0, ban__pick_kernel(d), x, w[di].panels, 32, w[di].K * 32, NULL, y[di],
                                  NULL, NULL, NULL};
            g[di] = f;
            if (d != BAN__F32) g[di].K = g[di].ldx = (int)w[di].K, g[di].x = xq, g[di].x_scale = xs;
            if (d == BAN__I8) g[di].w_scale = w[di].scale, g[di].w_sum = w[di].sum;
        }
        /* rounds of one block each: OpenBLAS, then ban.h in f32, bf16, int8 (calls a block, for
           the short products); medians over the rounds, after two rounds of warming up. After
           OpenBLAS's block, 0.2 s for its threads to stop spinning (they would take the cores
           from ban.h's block) */
        const struct timespec idle = {0, 200000000};
        for (int r = -2; r < runs; r++)
            for (int v = 0; v < 4; v++) {
                double t0 = now_ms();
                for (int c = -warm; c < calls; c++) {
                    if (c == 0) t0 = now_ms();
                    if (v == 0 && M == 1) cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, 1.0f, W, K, x, 1, 0.0f, ref, 1);
                    else if (v == 0) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, K, W, K, 0.0f, ref, N);
                    else {
                        const ban__kernel *kr = g[v - 1].kernel;
                        if (kr->prepare) kr->prepare(x, M, K, (size_t)K, xq, w[v - 1].K, xs);
                        ban__pgemm_run(pool, &g[v - 1]);
                    }
                }
                if (r >= 0) t[v * runs + r] = (now_ms() - t0) / calls;
                if (v == 0) nanosleep(&idle, NULL);
            }
        for (int v = 0; v < 4; v++) ms[v] = median(t + v * runs, runs);
        double top = 0.0;
        for (size_t i = 0; i < (size_t)M * N; i++) top = fabs(ref[i]) > top ? fabs(ref[i]) : top;
        for (int di = 0; di < 3; di++) {
            for (size_t i = 0; i < (size_t)M * N; i++)
                err[1 + di] = fabs(y[di][i] - ref[i]) > err[1 + di] ? fabs(y[di][i] - ref[i]) : err[1 + di];
            free(w[di].panels), free(w[di].scale), free(w[di].sum), free(y[di]);
        }
        const double gf = 2.0 * M * N * K / 1e6;
        printf("| %s | %d x %d x %d | %.3f | %.3f | %.3f | %.3f | %.2fx | %.2fx | %.2fx | %.0f / %.0f / %.0f | %.1e / %.1e |\n",
               shapes[s].what, M, N, K, ms[0], ms[1], ms[2], ms[3], ms[0] / ms[1], ms[1] / ms[2], ms[1] / ms[3],
               gf / ms[1], gf / ms[2], gf / ms[3], err[2] / top, err[3] / top);
        fflush(stdout);
        free(x), free(W), free(ref), free(xs), free(xq), free(t);
    }
    ban__pool_free(pool);
    return 0;
}
