/* ab_gemm.c - two versions of nj_gemm (say, before and after a change to
 * runtime/ninjac_kernels.h) and cblas_sgemm in one program, called in turn
 * on the same data: the six products of the exercise-4 step (bench_sgemm's
 * order and arguments, without the transposes of B) or a square product.
 * Each call is timed by the thread's CPU time, so that time the scheduler
 * gives to other processes does not count, and each variant keeps its
 * minimum. On a shared machine this separates changes of 5% where
 * wall-clock figures from separate runs differ by 2x.
 *
 * Built by bench/ab_gemm.sh, which compiles this file three times: twice
 * with -DAB_VARIANT=ab_g0 / ab_g1 and the include path of each version of
 * the header (the function nj_gemm as that version has it), once as the
 * program. Single-threaded: set OPENBLAS_NUM_THREADS=1.
 *
 *   ab_gemm N H [SECONDS]   the six products, SECONDS of calls each (1)
 *   ab_gemm sq S [SECONDS]  C[S,S] = A[S,S] @ B[S,S] (3 s) */
#include <stddef.h>

typedef void ab_gemm_fn(int, int, int, const float *, ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t, float *,
                        ptrdiff_t, int);

#if defined(AB_VARIANT)
#include "ninjac_kernels.h"
ab_gemm_fn AB_VARIANT;
void AB_VARIANT(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col, const float *B, ptrdiff_t ldb,
                float *C, ptrdiff_t ldc, int accumulate) {
    nj_gemm(M, N, K, A, a_row, a_col, B, ldb, C, ldc, accumulate);
}
#else
#define _GNU_SOURCE
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

ab_gemm_fn ab_g0, ab_g1;

static void ab_sgemm(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col, const float *B,
                     ptrdiff_t ldb, float *C, ptrdiff_t ldc, int accumulate) {
    if (a_col == 1)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, A, (int)a_row, B, (int)ldb,
                    accumulate ? 1.0f : 0.0f, C, (int)ldc);
    else   /* A'(i, k) = A[k * a_col + i]: A^T */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, N, K, 1, A, (int)a_col, B, (int)ldb,
                    accumulate ? 1.0f : 0.0f, C, (int)ldc);
}

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *matrix(size_t count) {
    float *x = aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64);
    if (!x) {
        fprintf(stderr, "error: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < count; i++)
        x[i] = (float)(rand() % 2001 - 1000) / 1000.0f;
    return x;
}

/* The three variants in turn until `seconds` of CPU time are spent. */
static void compare(const char *name, double flops, double seconds, int M, int N, int K, const float *A,
                    ptrdiff_t a_row, ptrdiff_t a_col, const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc) {
    ab_gemm_fn *const fns[3] = {ab_g0, ab_g1, ab_sgemm};
    double best[3] = {1e30, 1e30, 1e30}, spent = 0;
    for (int r = 0; r < 100000 && spent < seconds; r++)
        for (int v = 0; v < 3; v++) {
            double t = cpu_now();
            fns[v](M, N, K, A, a_row, a_col, B, ldb, C, ldc, 0);
            t = cpu_now() - t;
            spent += t;
            if (t < best[v])
                best[v] = t;
        }
    printf("RESULT what=ab product=|%s| old_min_us=%.1f new_min_us=%.1f sgemm_min_us=%.1f new_over_old=%.3f "
           "sgemm_over_new=%.3f new_gflops=%.1f\n",
           name, best[0] * 1e6, best[1] * 1e6, best[2] * 1e6, best[1] / best[0], best[2] / best[1],
           flops / best[1] * 1e-9);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "sq") == 0) {
        int s = atoi(argv[2]);
        size_t S = (size_t)s;
        float *a = matrix(S * S), *b = matrix(S * S), *c = matrix(S * S);
        char name[32];
        snprintf(name, sizeof name, "square %d", s);
        compare(name, 2.0 * s * s * s, argc > 3 ? atof(argv[3]) : 3.0, s, s, s, a, s, 1, b, s, c, s);
        return 0;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: %s N H [SECONDS] | %s sq S [SECONDS]\n", argv[0], argv[0]);
        return 2;
    }
    int n = atoi(argv[1]), H = atoi(argv[2]), BE = 30, V = 27;
    double sec = argc > 3 ? atof(argv[3]) : 1.0;
    size_t N_ = (size_t)n, H_ = (size_t)H;
    float *embcat = matrix(N_ * BE), *W1 = matrix(BE * H_), *hprebn = matrix(N_ * H_), *h = matrix(N_ * H_);
    float *W2 = matrix(H_ * V), *logits = matrix(N_ * V), *dlogits = matrix(N_ * V), *dh = matrix(N_ * H_);
    float *dW2 = matrix(H_ * V), *dhprebn = matrix(N_ * H_), *dembcat = matrix(N_ * BE), *dW1 = matrix(BE * H_);
    float *W2t = matrix(H_ * V), *W1t = matrix(H_ * BE);   /* B^T as the kernels take it (values do not matter) */
    double f30 = 2.0 * n * H * BE, f27 = 2.0 * n * H * V;
    printf("# n=%d H=%d\n", n, H);
    compare("hprebn = embcat @ W1", f30, sec, n, H, BE, embcat, BE, 1, W1, H, hprebn, H);
    compare("logits = h @ W2", f27, sec, n, V, H, h, H, 1, W2, V, logits, V);
    compare("dh = dlogits @ W2^T", f27, sec, n, H, V, dlogits, V, 1, W2t, H, dh, H);
    compare("dW2 = h^T @ dlogits", f27, sec, H, V, n, h, 1, H, dlogits, V, dW2, V);
    compare("dembcat = dhprebn @ W1^T", f30, sec, n, BE, H, dhprebn, H, 1, W1t, BE, dembcat, BE);
    compare("dW1 = embcat^T @ dhprebn", f30, sec, BE, H, n, embcat, 1, BE, dhprebn, H, dW1, H);
    return 0;
}
#endif
