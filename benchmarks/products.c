/* products.c - ban.h's own matrix product against the machine's sgemm, on the shapes of
   the paper's VQA model, weights in panels against the same weights in rows.

       build/bench_products [--threads T] [--runs N]

   For each shape: the median time of ban.h's product (the kernel this processor runs,
   T threads of a context's pool) and of cblas_sgemm (OpenBLAS with T threads) on the same
   operands, timed in separate blocks (OpenBLAS's idle threads spin after a call), and the
   largest difference between the two results. The shapes: the visual projection of every
   box (100 boxes a question, batch 1 and 32), the GRU's hidden gates at batch 1 (one row),
   and the classifier's last layer at batch 1. */
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
        {"classifier output, batch 1", 1, 3129, 2560},
    };
    openblas_set_num_threads(T);
    ban__pool *pool = NULL;
#if BAN__THREADS
    if (T > 1) pool = ban__pool_new(T - 1);
#endif
    const ban__kernel *kernel = ban__pick_kernel(BAN__F32);
    printf("ban.h's kernel: %s, %d threads; OpenBLAS sgemm, %d threads; median of %d runs (%d of one row)\n\n",
           kernel->name, T, T, runs, 10 * runs);
    printf("| product | M x N x K | ban.h ms | ban.h GFLOP/s | sgemm ms | sgemm GFLOP/s | ratio | max diff |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    unsigned seed = 1;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int M = shapes[s].M, N = shapes[s].N, K = shapes[s].K, P = (N + 31) / 32;
        float *x = malloc(sizeof(float) * M * K), *W = malloc(sizeof(float) * N * K);
        float *Wp = calloc((size_t)P * K * 32, sizeof(float));
        float *y1 = malloc(sizeof(float) * M * N), *y2 = malloc(sizeof(float) * M * N);
        double *t1 = malloc(sizeof(double) * runs * 10), *t2 = malloc(sizeof(double) * runs * 10);
        if (!x || !W || !Wp || !y1 || !y2 || !t1 || !t2) return fprintf(stderr, "out of memory\n"), 1;
        for (size_t i = 0; i < (size_t)M * K; i++) x[i] = (float)((seed = seed * 1103515245u + 12345u) >> 9) / 8388608.0f - 1.0f;
        for (size_t i = 0; i < (size_t)N * K; i++) W[i] = (float)((seed = seed * 1103515245u + 12345u) >> 9) / 8388608.0f - 1.0f;
        for (int n = 0; n < N; n++)
            for (int k = 0; k < K; k++) Wp[((size_t)(n / 32) * K + k) * 32 + n % 32] = W[(size_t)n * K + k];
        const ban__pgemm g = {M, N, K, K, N, 0, kernel, x, Wp, 32, (size_t)K * 32, NULL, y1};
        const int n_runs = M == 1 ? 10 * runs : runs; /* the short ones vary more */
        for (int r = -2; r < n_runs; r++) {
            const double t = now_ms();
            ban__pgemm_run(pool, &g);
            if (r >= 0) t1[r] = now_ms() - t;
        }
        for (int r = -2; r < n_runs; r++) {
            const double t = now_ms();
            if (M == 1) cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, 1.0f, W, K, x, 1, 0.0f, y2, 1);
            else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, K, W, K, 0.0f, y2, N);
            if (r >= 0) t2[r] = now_ms() - t;
        }
        double diff = 0.0;
        for (size_t i = 0; i < (size_t)M * N; i++) diff = fabs(y1[i] - y2[i]) > diff ? fabs(y1[i] - y2[i]) : diff;
        const double m1 = median(t1, n_runs), m2 = median(t2, n_runs), flop = 2.0 * M * N * K;
        printf("| %s | %d x %d x %d | %.2f | %.1f | %.2f | %.1f | %.2fx | %.1e |\n", shapes[s].what, M, N, K, m1,
               flop / m1 / 1e6, m2, flop / m2 / 1e6, m2 / m1, diff);
        fflush(stdout);
        free(x), free(W), free(Wp), free(y1), free(y2), free(t1), free(t2);
    }
    ban__pool_free(pool);
    return 0;
}
