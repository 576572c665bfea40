/* ninjac_kernels.h - matrix products of small fixed shapes, for the code
 * ninjac generates in its default mode.
 *
 * A training step of the notebook's model multiplies matrices like
 * [32, 30] @ [30, 200]: too small for a BLAS to amortise its packing and
 * dispatch. Generated code calls these with constant arguments, so each
 * call inlines into a kernel specialised to its shape. With AVX-512 the
 * kernel keeps a tile of C in registers (up to 8 rows by 32 columns) and
 * streams rows of B through it, masking the ragged right edge; without
 * it, plain loops the compiler vectorises. There is no blocking over K, so
 * a BLAS is faster for big square products (A read once per band of
 * columns from beyond L2), which ninjac's --gemm=auto takes into account.
 *
 *   nj_gemm(M, N, K, A, a_row, a_col, B, ldb, C, ldc, accumulate)
 *       C[M][N] (+)= A'[M][K] @ B[K][N],  A'(i, k) = A[i * a_row + k * a_col]
 *       A @ B: a_row = lda, a_col = 1;  A^T @ B (A stored [K][M]): a_row = 1, a_col = lda
 *   nj_transpose(R, C, src, dst)
 *       dst[C][R] = src[R][C]^T, so that A @ B^T = nj_gemm on B's transpose
 *
 * The sums run over k in order, one product at a time, as a naive loop
 * would; with FMA they round once per product, so results differ from a
 * BLAS in the last bits (the tests compare with tolerances).
 *
 *   nj_tanhf(x)
 *       tanh in float, as a rational function the compiler vectorises with
 *       the loop around it (libm's tanhf is a call per element, or per
 *       vector through libmvec at 1.6 times the time). At most 6 ulp from
 *       the exact value over every float (5.3 with FMA): tests/runtime/
 *       test_kernels.c checks every 7th float of [-10, 10]. */
#ifndef NINJAC_KERNELS_H
#define NINJAC_KERNELS_H

#include <stddef.h>

#define NJ_INLINE static inline __attribute__((always_inline))

/* Floats of B that stay in the core's L2 cache while the rows of A stream
 * past them (Zen 4 has 1 MB; a quarter of it left for A and C). */
#define NJ_L2_FLOATS (192 * 1024)

#if defined(__AVX512F__)
#include <immintrin.h>

/* The mask of the first `left` of 16 lanes. */
NJ_INLINE __mmask16 nj_lanes(int left) { return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1); }

/* ROWS rows of C (ROWS a constant) by NV vectors of 16 columns starting at
 * column j0; the last vector is masked to the columns that exist. */
#define NJ_TILE(ROWS, NV)                                                                                    \
    NJ_INLINE void nj_tile_##ROWS##x##NV(int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col,     \
                                         const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, int j0,     \
                                         int accumulate) {                                                   \
        __mmask16 mask[NV];                                                                                  \
        for (int v = 0; v < NV; v++)                                                                         \
            mask[v] = nj_lanes(N - j0 - 16 * v);                                                             \
        __m512 acc[ROWS][NV];                                                                                \
        for (int r = 0; r < ROWS; r++)                                                                       \
            for (int v = 0; v < NV; v++)                                                                     \
                acc[r][v] = _mm512_setzero_ps();                                                             \
        for (int k = 0; k < K; k++) {                                                                        \
            __m512 b[NV];                                                                                    \
            for (int v = 0; v < NV; v++)                                                                     \
                b[v] = _mm512_maskz_loadu_ps(mask[v], B + k * ldb + j0 + 16 * v);                            \
            for (int r = 0; r < ROWS; r++) {                                                                 \
                __m512 a = _mm512_set1_ps(A[r * a_row + k * a_col]);                                         \
                for (int v = 0; v < NV; v++)                                                                 \
                    acc[r][v] = _mm512_fmadd_ps(a, b[v], acc[r][v]);                                         \
            }                                                                                                \
        }                                                                                                    \
        for (int r = 0; r < ROWS; r++)                                                                       \
            for (int v = 0; v < NV; v++) {                                                                   \
                float *c = C + r * ldc + j0 + 16 * v;                                                        \
                if (accumulate)                                                                              \
                    acc[r][v] = _mm512_add_ps(acc[r][v], _mm512_maskz_loadu_ps(mask[v], c));                 \
                _mm512_mask_storeu_ps(c, mask[v], acc[r][v]);                                                \
            }                                                                                                \
    }

NJ_TILE(8, 2)
NJ_TILE(4, 2)
NJ_TILE(2, 2)
NJ_TILE(1, 2)
NJ_TILE(8, 1)
NJ_TILE(4, 1)
NJ_TILE(2, 1)
NJ_TILE(1, 1)

/* ROWS rows of C, columns j0 .. N-1: 32 at a time, the last 16 or fewer by one vector. */
#define NJ_ROWS(ROWS)                                                                                        \
    NJ_INLINE void nj_rows_##ROWS(int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col,            \
                                  const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, int j0,            \
                                  int accumulate) {                                                          \
        for (; N - j0 > 16; j0 += 32)                                                                        \
            nj_tile_##ROWS##x2(N, K, A, a_row, a_col, B, ldb, C, ldc, j0, accumulate);                       \
        if (j0 < N)                                                                                          \
            nj_tile_##ROWS##x1(N, K, A, a_row, a_col, B, ldb, C, ldc, j0, accumulate);                       \
    }

NJ_ROWS(8)
NJ_ROWS(4)
NJ_ROWS(2)
NJ_ROWS(1)

/* Rows of C in blocks of 8 (then 4, 2, 1), each over a block of columns
 * whose rows of B fit in L2: all of B for the products of a training step,
 * so that A and C stream once in order; for a big B, bands of 32 or more
 * columns, so that B is read once and A once per band. */
NJ_INLINE void nj_gemm(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col, const float *B,
                       ptrdiff_t ldb, float *C, ptrdiff_t ldc, int accumulate) {
    int band = N;
    if ((ptrdiff_t)K * N > NJ_L2_FLOATS) {
        band = NJ_L2_FLOATS / (K > 0 ? K : 1) / 32 * 32;
        band = band < 32 ? 32 : band;
    }
    for (int c0 = 0; c0 < N; c0 += band) {
        int end = N - c0 < band ? N : c0 + band;
        int i = 0;
        for (; i + 8 <= M; i += 8)
            nj_rows_8(end, K, A + i * a_row, a_row, a_col, B, ldb, C + i * ldc, ldc, c0, accumulate);
        if (M - i >= 4) {
            nj_rows_4(end, K, A + i * a_row, a_row, a_col, B, ldb, C + i * ldc, ldc, c0, accumulate);
            i += 4;
        }
        if (M - i >= 2) {
            nj_rows_2(end, K, A + i * a_row, a_row, a_col, B, ldb, C + i * ldc, ldc, c0, accumulate);
            i += 2;
        }
        if (M - i >= 1)
            nj_rows_1(end, K, A + i * a_row, a_row, a_col, B, ldb, C + i * ldc, ldc, c0, accumulate);
    }
}

#else /* no AVX-512: loops in the order that lets a compiler vectorise over j */

NJ_INLINE void nj_gemm(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col, const float *B,
                       ptrdiff_t ldb, float *C, ptrdiff_t ldc, int accumulate) {
    for (int i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (!accumulate)
            for (int j = 0; j < N; j++)
                c[j] = 0;
        for (int k = 0; k < K; k++) {
            float a = A[i * a_row + k * a_col];
            const float *b = B + k * ldb;
            for (int j = 0; j < N; j++)
                c[j] += a * b[j];
        }
    }
}

#endif

/* tanh(x) = x P(x^2) / Q(x^2) on [-9, 9], a fit of ours (relative error
 * 2.2e-8 in exact arithmetic; float rounding makes it 6 ulp at most);
 * beyond 9 it is +-1 (the exact value rounds there from 9.01 on). The
 * comparisons let a NaN through as a NaN. */
NJ_INLINE float nj_tanhf(float x) {
    float c = x > 9.0f ? 9.0f : x < -9.0f ? -9.0f : x;
    float t = c * c;
    float p = (((1.334944776942848e-08f * t + 2.0605066310963593e-05f) * t + 0.003495336975902319f) * t +
               0.13380815088748932f) * t + 1.0f;
    float q = (((7.774347636768653e-07f * t + 0.00032852275762706995f) * t + 0.02587602660059929f) * t +
               0.4671413004398346f) * t + 1.0f;
    float y = c * p / q;
    return x > 9.0f ? 1.0f : x < -9.0f ? -1.0f : y;
}

#if defined(__AVX512F__)
/* The 16 x 16 block r[0..15] (one row a register) transposed in place:
 * pairs of rows interleaved, then pairs of pairs, then 128-bit lanes
 * gathered across the four groups of four rows. */
NJ_INLINE void nj_transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int k = 0; k < 16; k += 2) {
        t[k] = _mm512_unpacklo_ps(r[k], r[k + 1]);       /* per lane: a0 b0 a1 b1 */
        t[k + 1] = _mm512_unpackhi_ps(r[k], r[k + 1]);   /*           a2 b2 a3 b3 */
    }
    for (int g = 0; g < 16; g += 4)                      /* u[g + c]: column c of rows g..g+3, per lane */
        for (int h = 0; h < 2; h++) {
            __m512d lo = _mm512_castps_pd(t[g + h]), hi = _mm512_castps_pd(t[g + 2 + h]);
            u[g + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(lo, hi));
            u[g + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(lo, hi));
        }
    for (int c = 0; c < 4; c++) {                        /* lane L of u[4 g + c] is column 4 L + c */
        __m512 a = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), b = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
        __m512 d = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD), e = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
        r[c] = _mm512_shuffle_f32x4(a, b, 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(a, b, 0xDD);
        r[4 + c] = _mm512_shuffle_f32x4(d, e, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(d, e, 0xDD);
    }
}

/* In 16 x 16 blocks through registers; masks cut the ragged edges. */
NJ_INLINE void nj_transpose(int R, int C, const float *src, float *dst) {
    for (int i0 = 0; i0 < R; i0 += 16)
        for (int j0 = 0; j0 < C; j0 += 16) {
            __mmask16 cols = nj_lanes(C - j0), rows = nj_lanes(R - i0);
            __m512 r[16];
            for (int k = 0; k < 16; k++)
                r[k] = k < R - i0 ? _mm512_maskz_loadu_ps(cols, src + (ptrdiff_t)(i0 + k) * C + j0) : _mm512_setzero_ps();
            nj_transpose16(r);
            for (int k = 0; k < 16 && k < C - j0; k++)
                _mm512_mask_storeu_ps(dst + (ptrdiff_t)(j0 + k) * R + i0, rows, r[k]);
        }
}
#else
NJ_INLINE void nj_transpose(int R, int C, const float *src, float *dst) {
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            dst[j * R + i] = src[i * C + j];
}
#endif

#endif
