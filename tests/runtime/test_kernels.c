/* test_kernels.c - nj_gemm and nj_transpose (runtime/ninjac_kernels.h)
 * against products computed in double, over shapes that hit every tile
 * size and every ragged edge: A @ B, A^T @ B and A @ B^T (by transpose),
 * overwriting and accumulating. Built several times by CMake, once per
 * copy of the kernels: with the machine's instruction set, for AVX2
 * without AVX-512, for plain x86-64 (run-time dispatch, and the SSE2
 * copy), and for aarch64 under qemu where a cross compiler is found. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "ninjac_kernels.h"

static const int sizes[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 27, 30, 31, 32, 33, 48, 63, 65, 200};
#define NSIZES ((int)(sizeof sizes / sizeof *sizes))

static uint64_t state = 88172645463325252ull;
static float draw(void) {   /* xorshift64: uniform in [-1, 1) */
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (float)((double)(state >> 11) / (double)(1ull << 53) * 2 - 1);
}

static void fill(float *x, int n) {
    for (int i = 0; i < n; i++)
        x[i] = draw();
}

/* |C - exact| within float rounding of K products and sums:
 * 2 K eps sum_k |a b|, plus the rounding of an accumulated old value. */
static int compare(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col, const float *B,
                   const float *C, const float *C0, int accumulate) {
    int bad = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double exact = accumulate ? C0[i * N + j] : 0, size = fabs(exact);
            for (int k = 0; k < K; k++) {
                double p = (double)A[i * a_row + k * a_col] * B[k * N + j];
                exact += p;
                size += fabs(p);
            }
            double tol = 2.0 * (K + 1) * 0x1p-24 * size + 1e-30;
            if (fabs(C[i * N + j] - exact) > tol) {
                if (!bad)
                    fprintf(stderr, "M=%d N=%d K=%d acc=%d: C[%d][%d] = %.9g, exact %.9g (tol %.3g)\n", M, N, K,
                            accumulate, i, j, C[i * N + j], exact, tol);
                bad++;
            }
        }
    return bad;
}

/* nj_gemm_bias must give the product followed by the add, bit for bit,
 * whatever C held before. Returns how many elements differ. */
static int bias_differs(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col, const float *B,
                        const float *bias) {
    size_t bytes = sizeof(float) * (size_t)(M * N);
    float *want = malloc(bytes), *got = malloc(bytes);
    CHECK(want && got);
    nj_gemm(M, N, K, A, a_row, a_col, B, N, want, N, 0);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++)
            want[i * N + j] = want[i * N + j] + bias[j];
    for (int i = 0; i < M * N; i++)
        got[i] = NAN;
    nj_gemm_bias(M, N, K, A, a_row, a_col, B, N, got, N, bias);
    int bad = 0;
    for (int i = 0; i < M * N; i++)
        bad += memcmp(&got[i], &want[i], sizeof(float)) != 0;
    if (bad)
        fprintf(stderr, "M=%d N=%d K=%d a_row=%td: %d elements of the product + bias differ\n", M, N, K, a_row, bad);
    free(want);
    free(got);
    return bad;
}

static void products(void) {
    int cases = 0, biased = 0;
    for (int mi = 0; mi < NSIZES; mi++)
        for (int ni = 0; ni < NSIZES; ni++)
            for (int ki = 0; ki < NSIZES; ki += 3) {
                int M = sizes[mi], N = sizes[ni], K = sizes[ki];
                float *A = malloc(sizeof(float) * (size_t)(M * K)), *At = malloc(sizeof(float) * (size_t)(M * K));
                float *B = malloc(sizeof(float) * (size_t)(K * N)), *Bt = malloc(sizeof(float) * (size_t)(K * N));
                float *B2 = malloc(sizeof(float) * (size_t)(K * N));
                float *C = malloc(sizeof(float) * (size_t)(M * N)), *C0 = malloc(sizeof(float) * (size_t)(M * N));
                float *bias = malloc(sizeof(float) * (size_t)N);
                fill(A, M * K);
                fill(B, K * N);
                fill(C0, M * N);
                fill(bias, N);
                nj_transpose(M, K, A, At);   /* At[K][M] */
                nj_transpose(K, N, B, Bt);   /* Bt[N][K], as a spec's W of x @ W.T */
                nj_transpose(N, K, Bt, B2);  /* back: must be B exactly */
                CHECK(!memcmp(B, B2, sizeof(float) * (size_t)(K * N)));
                for (int acc = 0; acc < 2; acc++) {
                    memcpy(C, C0, sizeof(float) * (size_t)(M * N));
                    nj_gemm(M, N, K, A, K, 1, B, N, C, N, acc);          /* A @ B */
                    CHECK(compare(M, N, K, A, K, 1, B, C, C0, acc) == 0);
                    memcpy(C, C0, sizeof(float) * (size_t)(M * N));
                    nj_gemm(M, N, K, At, 1, M, B, N, C, N, acc);         /* (At)^T @ B */
                    CHECK(compare(M, N, K, A, K, 1, B, C, C0, acc) == 0);
                    memcpy(C, C0, sizeof(float) * (size_t)(M * N));
                    nj_gemm(M, N, K, A, K, 1, B2, N, C, N, acc);         /* A @ (Bt)^T */
                    CHECK(compare(M, N, K, A, K, 1, B, C, C0, acc) == 0);
                    cases += 3;
                }
                CHECK(bias_differs(M, N, K, A, K, 1, B, bias) == 0);
                CHECK(bias_differs(M, N, K, At, 1, M, B, bias) == 0);
                biased += 2;
                free(bias);
                free(A);
                free(At);
                free(B);
                free(Bt);
                free(B2);
                free(C);
                free(C0);
            }
    printf("%d products and %d with a bias, %s kernels (compiled as %s)\n", cases, biased, nj_gemm_isa(),
           NJ_KERNEL_ISA);
}

/* Products bigger than one block: K beyond KC (256 at most) and M beyond
 * MC (256 at most), with ragged last blocks; every element must come out
 * right, accumulated over the blocks of K. {7, 3000, 27} and {33, 2500,
 * 30} are the step's short K across many slabs of B with a ragged last
 * one; {5, 40, 700} and {2, 1500, 520} have a few rows, K beyond KC and a
 * short last block of K (188 or 8 rows with KC = 256, 60 or 8 with
 * KC = 128), where the packing of a slab prefetches the next one. */
static void bands(void) {
    static const int shapes[][3] = {{9, 1000, 250}, {17, 777, 300}, {3, 2049, 97}, {301, 45, 600}, {520, 19, 129},
                                    {7, 3000, 27},  {33, 2500, 30}, {5, 40, 700}, {2, 1500, 520}};
    for (int s = 0; s < (int)(sizeof shapes / sizeof *shapes); s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = malloc(sizeof(float) * (size_t)(M * K)), *At = malloc(sizeof(float) * (size_t)(M * K));
        float *B = malloc(sizeof(float) * (size_t)(K * N));
        float *C = malloc(sizeof(float) * (size_t)(M * N)), *C0 = malloc(sizeof(float) * (size_t)(M * N));
        float *bias = malloc(sizeof(float) * (size_t)N);
        fill(A, M * K);
        fill(B, K * N);
        fill(C0, M * N);
        fill(bias, N);
        nj_transpose(M, K, A, At);
        CHECK(bias_differs(M, N, K, A, K, 1, B, bias) == 0);   /* the bias after the last block of K only */
        CHECK(bias_differs(M, N, K, At, 1, M, B, bias) == 0);
        free(bias);
        for (int acc = 0; acc < 2; acc++) {
            memcpy(C, C0, sizeof(float) * (size_t)(M * N));
            nj_gemm(M, N, K, A, K, 1, B, N, C, N, acc);
            CHECK(compare(M, N, K, A, K, 1, B, C, C0, acc) == 0);
            memcpy(C, C0, sizeof(float) * (size_t)(M * N));
            nj_gemm(M, N, K, At, 1, M, B, N, C, N, acc);
            CHECK(compare(M, N, K, A, K, 1, B, C, C0, acc) == 0);
        }
        free(A);
        free(At);
        free(B);
        free(C);
        free(C0);
    }
}

/* With nj_threads > 1 a big product is cut into bands (of C's columns,
 * or of its rows when C is taller than wide): every thread count must give
 * the one-thread result bit for bit, accumulating or not. The shapes are
 * cut (nj_bands says so where OpenMP is compiled in), with ragged last
 * bands and few units to share: 3 column panels of AVX-512 for 7 threads. */
static void threads(void) {
    static const int shapes[][3] = {{64, 1000, 40}, {1000, 20, 120}, {30, 4096, 32}, {257, 300, 300}, {40, 90, 700}};
    for (int s = 0; s < (int)(sizeof shapes / sizeof *shapes); s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        size_t c_bytes = sizeof(float) * (size_t)(M * N);
        float *A = malloc(sizeof(float) * (size_t)(M * K)), *B = malloc(sizeof(float) * (size_t)(K * N));
        float *C = malloc(c_bytes), *C1 = malloc(c_bytes), *C0 = malloc(c_bytes);
        fill(A, M * K);
        fill(B, K * N);
        fill(C0, M * N);
        for (int acc = 0; acc < 2; acc++) {
            nj_threads = 1;
            memcpy(C1, C0, c_bytes);
            nj_gemm(M, N, K, A, K, 1, B, N, C1, N, acc);
            CHECK(compare(M, N, K, A, K, 1, B, C1, C0, acc) == 0);
            for (int t = 2; t <= 7; t++) {
                nj_threads = t;
#if defined(_OPENMP)
                CHECK(nj_bands((double)M * N * K, 1000) >= 2);
#endif
                memcpy(C, C0, c_bytes);
                nj_gemm(M, N, K, A, K, 1, B, N, C, N, acc);
                if (memcmp(C, C1, c_bytes))
                    fprintf(stderr, "M=%d N=%d K=%d acc=%d: %d threads differ from one\n", M, N, K, acc, t);
                CHECK(!memcmp(C, C1, c_bytes));
                CHECK(bias_differs(M, N, K, A, K, 1, B, C0) == 0);   /* each band adds its own columns' bias */
            }
        }
        nj_threads = 1;
        free(A);
        free(B);
        free(C);
        free(C1);
        free(C0);
    }
#if defined(_OPENMP)
    printf("bands on up to 7 threads: the one-thread result\n");
#else
    printf("no OpenMP: nj_gemm runs one thread whatever nj_threads says\n");
#endif
}

/* The tile's masked edge must not write past the last column of C: a
 * guard after each row of a wider buffer stays untouched. */
static void edges(void) {
    for (int N = 1; N <= 70; N++) {
        int M = 11, K = 5, ldc = N + 3;
        float A[11 * 5], B[5 * 70], C[11 * 73];
        fill(A, M * K);
        fill(B, K * N);
        for (int i = 0; i < M * ldc; i++)
            C[i] = 1234.5f;
        nj_gemm(M, N, K, A, K, 1, B, N, C, ldc, 0);
        for (int i = 0; i < M; i++)
            for (int j = N; j < ldc; j++)
                CHECK(C[i * ldc + j] == 1234.5f);
    }
}

/* n floats that end where a page nobody may touch begins: a load or a
 * store past the end (a mask one lane too wide) is a segfault. */
static float *flush_with_guard(int n) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE), bytes = (size_t)n * sizeof(float);
    size_t span = (bytes + page - 1) / page * page;
    char *base = mmap(NULL, span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(base != MAP_FAILED);
    CHECK(mprotect(base + span, page, PROT_NONE) == 0);
    return (float *)(base + span - bytes);
}

/* The ragged edges' masked loads and stores (of B's last panel, of C when
 * accumulating, of a bias) stay inside the arrays: A, B, C and the bias
 * each end at a guard page, for every N up to 70 (every edge of every tile
 * width) and K on both sides of the blocking. */
static void guard_pages(void) {
    int checked = 0;
    for (int N = 1; N <= 70; N++)
        for (int ki = 0; ki < 3; ki++) {
            int M = 11, K = (int[]){5, 130, 300}[ki];
            float *A = flush_with_guard(M * K), *B = flush_with_guard(K * N), *C = flush_with_guard(M * N);
            float *C0 = malloc(sizeof(float) * (size_t)(M * N)), *bias = flush_with_guard(N);
            CHECK(C0 != NULL);
            fill(A, M * K);
            fill(B, K * N);
            fill(bias, N);
            for (int accumulate = 0; accumulate < 2; accumulate++) {
                fill(C0, M * N);
                memcpy(C, C0, sizeof(float) * (size_t)(M * N));
                nj_gemm(M, N, K, A, K, 1, B, N, C, N, accumulate);
                CHECK(compare(M, N, K, A, K, 1, B, C, C0, accumulate) == 0);
                checked++;
            }
            CHECK(bias_differs(M, N, K, A, K, 1, B, bias) == 0);
            free(C0);   /* the mappings stay: a few MB in all */
        }
    printf("%d products with A, B and C flush against guard pages\n", checked);
}

/* Every shape up to 40 x 40: dst is exactly src^T, and nothing past the
 * end of dst is written. */
static void transposes(void) {
    float src[40 * 40], dst[40 * 40 + 16];
    for (int R = 1; R <= 40; R++)
        for (int C = 1; C <= 40; C++) {
            fill(src, R * C);
            for (int i = 0; i < 40 * 40 + 16; i++)
                dst[i] = 1234.5f;
            nj_transpose(R, C, src, dst);
            int bad = 0;
            for (int i = 0; i < R; i++)
                for (int j = 0; j < C; j++)
                    bad += dst[j * R + i] != src[i * C + j];
            for (int i = R * C; i < 40 * 40 + 16; i++)
                bad += dst[i] != 1234.5f;
            if (bad)
                fprintf(stderr, "transpose %d x %d: %d wrong elements\n", R, C, bad);
            CHECK(bad == 0);
        }
}

/* nj_tanhf within 6 ulp of tanh computed in double, on every 7th float
 * of [0, 10] (and its negative), and the special values. */
static void tanh_accuracy(void) {
    double worst = 0;
    float worst_x = 0;
    for (uint32_t bits = 0; bits < 0x41200000u; bits += 7) {
        float x;
        memcpy(&x, &bits, sizeof x);
        for (int sign = 0; sign < 2; sign++, x = -x) {
            double exact = tanh((double)x);
            float e = (float)exact;
            double ulp = e == 0 ? 0x1p-149 : fabs((double)nextafterf(e, 2 * e) - e);
            double err = fabs((double)nj_tanhf(x) - exact) / ulp;
            if (err > worst) {
                worst = err;
                worst_x = x;
            }
        }
    }
    printf("nj_tanhf: at most %.2f ulp (at %.9g)\n", worst, worst_x);
    CHECK(worst <= 6.0);
    CHECK(isnan(nj_tanhf(NAN)));
    CHECK(nj_tanhf(INFINITY) == 1.0f && nj_tanhf(-INFINITY) == -1.0f && nj_tanhf(1e30f) == 1.0f);
    CHECK(nj_tanhf(0.0f) == 0.0f && signbit(nj_tanhf(-0.0f)));
    CHECK(nj_tanhf(1e-30f) == 1e-30f);
}

int main(int argc, char **argv) {
    static const TestCase cases[] = {{"products", products}, {"edges", edges}, {"guard_pages", guard_pages}, {"bands", bands}, {"transposes", transposes},
                                     {"threads", threads}, {"tanh_accuracy", tanh_accuracy}};
    return run_named_case(cases, sizeof cases / sizeof *cases, argc, argv);
}
