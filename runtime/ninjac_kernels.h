/* ninjac_kernels.h - matrix products for the code ninjac generates in its
 * default mode, written once for any vector width.
 *
 *   nj_gemm(M, N, K, A, a_row, a_col, B, ldb, C, ldc, accumulate)
 *       C[M][N] (+)= A'[M][K] @ B[K][N],  A'(i, k) = A[i * a_row + k * a_col]
 *       A @ B: a_row = lda, a_col = 1;  A^T @ B (A stored [K][M]): a_row = 1, a_col = lda
 *   nj_gemm_bias(M, N, K, A, a_row, a_col, B, ldb, C, ldc, bias)
 *       C[M][N] = A'[M][K] @ B[K][N] + bias[N] (x @ W + b): the tile adds the
 *       bias in registers before its last store, which saves a pass over C
 *       and an array for the product; the same bits as the product
 *       followed by the add
 *   nj_transpose(R, C, src, dst)
 *       dst[C][R] = src[R][C]^T, so that A @ B^T = nj_gemm on B's transpose
 *   NJ_KERNEL_ISA
 *       the kernels this translation unit runs: "avx512", "avx2", "neon",
 *       "sse2", "generic", or "dispatch" (chosen at run time, see below)
 *
 * How nj_gemm works (the shape of a BLAS micro-kernel, in GCC's vector
 * extensions rather than intrinsics, so one source serves every ISA):
 *   - a tile of C of MR rows by NR = NV vectors of columns stays in
 *     registers while k runs; per k it loads NV vectors of B, broadcasts
 *     MR floats of A and does MR x NV fused multiply-adds;
 *   - the tile is as big as the registers allow: MR x NV accumulators +
 *     NV vectors of B + 1 broadcast <= the register count, and MR x NV >= 8
 *     FMAs in flight (latency x pipes). AVX-512 (32 zmm): 8 x 2 (8 x 32
 *     floats); AVX2 (16 ymm): 6 x 2 (6 x 16); NEON (32 q): 8 x 3 (8 x 12);
 *     SSE2 (16 xmm): 4 x 2 (4 x 8);
 *   - B is copied into panels [KC][NR] zero-padded past column N, so the
 *     tile reads whole vectors from L1 at every edge; only C's ragged
 *     right edge is stored lane by lane (a small product reads B's whole
 *     panels in place: see gemm_one);
 *   - big products are blocked: KC rows of B per panel (a panel stays in
 *     L1), NC columns of B packed at a time (a slab of 128 KB: B's rows are
 *     read in runs of NC floats, not NR, which matters when B's rows are
 *     far apart), and MC rows of A per block (the block stays in L2, read
 *     once per panel).
 *     On the stack: the slab, 128 KB per call of nj_gemm (GCC shares the
 *     slot between the calls inlined into one function).
 * Generated code calls nj_gemm with constant arguments, so each call
 * inlines into a kernel specialised to its shape.
 *
 * Which ISA: generated code is compiled with -march=native by default
 * (cmake/NinjacModel.cmake), and the widest vectors the compiler may use
 * pick the tile. Built for plain x86-64 (NINJAC_NATIVE off), nj_gemm
 * instead calls one of three copies compiled with target attributes
 * (AVX-512, AVX2 + FMA, SSE2), chosen once per program by
 * __builtin_cpu_supports. Define NJ_NO_DISPATCH to get the plain copy.
 *
 * Rounding: each C(i, j) starts from C (accumulating) or 0 and adds the
 * products over k in order, one fused multiply-add each (where the ISA has
 * FMA and the compiler contracts, as GCC does in its default gnu modes
 * and with -ffp-contract=fast). The blocking does not change that order,
 * so the result is the same for every tile shape and vector width that
 * uses FMA: bit-reproducible on a machine, and across x86 machines with
 * FMA. It differs from a BLAS in the last bits (the tests compare with
 * tolerances).
 *
 *   nj_tanhf(x)
 *       tanh in float, as a rational function the compiler vectorises with
 *       the loop around it (libm's tanhf is a call per element, or per
 *       vector through libmvec at 1.6 times the time). At most 6 ulp from
 *       the exact value over every float (5.3 with FMA): tests/runtime/
 *       test_kernels.c checks every 7th float of [-10, 10]. */

#if defined(NJ_KERNEL_BODY)
/* C is reached through a pointer to a matrix's first row, so GCC's object
 * size tracking (under -fsanitize=address, after constant propagation of
 * the rows) takes stores to later rows for overflows of the first one. The
 * indices are checked by the tests, also under AddressSanitizer. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif
/* ---------------------------------------------------------------------
 * The kernels, instantiated (this file includes itself) once per ISA with
 *   NJ_VW        floats per vector     NJ_MR, NJ_NV  the tile: rows, vectors
 *   NJ_KC, NJ_MC the blocking          NJ_FN(name)   the name of a function
 *   NJ_MASKED    512 or 256: the edges use AVX-512's or AVX2's masked moves
 *   NJ_HELPER    attributes of the inlined helpers
 *   NJ_ENTRY     attributes of the entry, nj_product (or of its per-ISA copy)
 * and #undef'd at the end. */
#define NJ_NR (NJ_VW * NJ_NV)
#define NJ_SLAB 32768   /* floats of packed B: 128 KB, KC x NC */
typedef float NJ_FN(vec) __attribute__((vector_size(NJ_VW * sizeof(float))));

/* A ragged edge (of C, or of B's last panel): the first n lanes of a
 * vector, the rest 0 (n may be <= 0 or >= VW). Lane by lane, the edges
 * cost more than the product itself at the step's N of 27 and 30: the
 * six products of the notebook's step took 22.7 us on AVX-512 and 40.5 on
 * AVX2, 19.6 and 36.6 with masked loads (and stores on AVX-512), an
 * Emerald Rapids core (bench/RESULTS.md, 2026-12-07 06:45). AVX2's masked
 * store was slower than the lane loop there, and is microcoded on AMD. */
NJ_HELPER void NJ_FN(load_part)(NJ_FN(vec) *v, const float *c, int n) {
    if (n >= NJ_VW) {
        memcpy(v, c, sizeof *v);
    } else if (n <= 0) {
        *v = (NJ_FN(vec)){0};
    } else {
#if NJ_MASKED == 512
        *v = (NJ_FN(vec))_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), c);
#elif NJ_MASKED == 256
        __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        *v = (NJ_FN(vec))_mm256_maskload_ps(c, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane));
#else
        NJ_FN(vec) t = {0};
        for (int l = 0; l < n; l++)
            t[l] = c[l];
        *v = t;
#endif
    }
}
/* The partial store is a loop over the vector's lanes, not up to n: gcc 12
 * -O3 turned `for (l = 0; l < n; l++)` into a memcpy of n floats and, inlined
 * into a product whose rows are a runtime multiple of the batch (lecture 5's
 * x @ W1 over [rows * 4, 48], mm_transformer's infer_upto), warned of reads
 * past a tile's acc (-Warray-bounds, -Wstringop-overread: -Werror fails the
 * build) on paths that never run (n < VW there). */
NJ_HELPER void NJ_FN(store_part)(float *c, const NJ_FN(vec) *v, int n) {
    if (n >= NJ_VW) {
        memcpy(c, v, sizeof *v);
    } else if (n > 0) {
#if NJ_MASKED == 512
        _mm512_mask_storeu_ps(c, (__mmask16)((1u << n) - 1), (__m512)*v);
#else
        for (int l = 0; l < NJ_VW; l++)
            if (l < n)
                c[l] = (*v)[l];
#endif
    }
}

/* B[0..kc)[0..nc) as panels slab[nc / NR][kc][NR] (kc x nc <= SLAB), zeros
 * in the columns past nc. Row by row, so that B is read in runs of nc.
 * With n_next > 0 it also prefetches the next slab's part of each row
 * (the n_next columns after nc): see nj_gemm. */
NJ_HELPER void NJ_FN(pack)(int kc, int nc, const float *B, ptrdiff_t ldb, float *slab, int n_next) {
    for (int k = 0; k < kc; k++) {
        const float *b = B + k * ldb;
        for (int l = 0; l < n_next; l += 64 / (int)sizeof(float))   /* a cache line at a time */
            __builtin_prefetch(b + nc + l);
        for (int j = 0; j < nc; j += NJ_NR) {
            float *p = slab + (ptrdiff_t)(j / NJ_NR) * kc * NJ_NR + k * NJ_NR;
            if (nc - j >= NJ_NR) {
                memcpy(p, b + j, NJ_NR * sizeof(float));   /* a fixed size: vector moves */
            } else {
                for (int v = 0; v < NJ_NV; v++) {
                    NJ_FN(vec) part;
                    NJ_FN(load_part)(&part, b + j + v * NJ_VW, nc - j - v * NJ_VW);
                    memcpy(p + v * NJ_VW, &part, sizeof part);
                }
            }
        }
    }
}

/* C[ROWS][nc] = (load_c ? C : 0) + A'[ROWS][kc] @ panel[kc][NR] (+ bias[nc]
 * when bias is not NULL: the last block of K), nc <= NR; the panel's rows
 * lie ldp floats apart (NR when packed). */
#define NJ_TILE(NAME, ROWS)                                                                                  \
    NJ_HELPER void NJ_FN(NAME)(int kc, const float *A, ptrdiff_t a_row, ptrdiff_t a_col, const float *panel, \
                               ptrdiff_t ldp, float *C, ptrdiff_t ldc, int nc, int load_c,                   \
                               const float *bias) {                                                          \
        NJ_FN(vec) acc[ROWS][NJ_NV];                                                                         \
        for (int r = 0; r < ROWS; r++)                                                                       \
            for (int v = 0; v < NJ_NV; v++) {                                                                \
                acc[r][v] = (NJ_FN(vec)){0};                                                                 \
                if (load_c)                                                                                  \
                    NJ_FN(load_part)(&acc[r][v], C + r * ldc + v * NJ_VW, nc - v * NJ_VW);                     \
            }                                                                                                \
        for (int k = 0; k < kc; k++) {                                                                       \
            NJ_FN(vec) b[NJ_NV];                                                                             \
            for (int v = 0; v < NJ_NV; v++)                                                                  \
                memcpy(&b[v], panel + k * ldp + v * NJ_VW, sizeof b[v]);                                     \
            for (int r = 0; r < ROWS; r++) {                                                                 \
                float x = A[r * a_row + k * a_col];                                                          \
                NJ_FN(vec) a = NJ_SPLAT(x);                                                                  \
                for (int v = 0; v < NJ_NV; v++)                                                              \
                    acc[r][v] += a * b[v];                                                                   \
            }                                                                                                \
        }                                                                                                    \
        if (bias)                                                                                            \
            for (int v = 0; v < NJ_NV; v++) {                                                                \
                NJ_FN(vec) b;                                                                                \
                NJ_FN(load_part)(&b, bias + v * NJ_VW, nc - v * NJ_VW);                                      \
                for (int r = 0; r < ROWS; r++)                                                               \
                    acc[r][v] += b;                                                                          \
            }                                                                                                \
        for (int r = 0; r < ROWS; r++)                                                                       \
            for (int v = 0; v < NJ_NV; v++)                                                                  \
                NJ_FN(store_part)(C + r * ldc + v * NJ_VW, &acc[r][v], nc - v * NJ_VW);                        \
    }
NJ_TILE(tile_mr, NJ_MR)
NJ_TILE(tile_4, 4)
NJ_TILE(tile_2, 2)
NJ_TILE(tile_1, 1)
#undef NJ_TILE

/* The tiles of rows [i0, i_end) of C against one panel of B: MR rows at a
 * time, the rest by 4, 2, 1. (A rest of 2 after tiles of 6 done as 4 + 4
 * measured 5-10% slower for M = 32 on AVX2, on a Zen 5.) */
NJ_HELPER void NJ_FN(column)(int i0, int i_end, int kc, const float *A, ptrdiff_t a_row, ptrdiff_t a_col,
                             const float *panel, ptrdiff_t ldp, float *C, ptrdiff_t ldc, int nc, int load_c,
                             const float *bias) {
    int i = i0;
    for (; i + NJ_MR <= i_end; i += NJ_MR)
        NJ_FN(tile_mr)(kc, A + (i - i0) * a_row, a_row, a_col, panel, ldp, C + i * ldc, ldc, nc, load_c, bias);
    if (NJ_MR > 4 && i_end - i >= 4) {
        NJ_FN(tile_4)(kc, A + (i - i0) * a_row, a_row, a_col, panel, ldp, C + i * ldc, ldc, nc, load_c, bias);
        i += 4;
    }
    if (i_end - i >= 2) {
        NJ_FN(tile_2)(kc, A + (i - i0) * a_row, a_row, a_col, panel, ldp, C + i * ldc, ldc, nc, load_c, bias);
        i += 2;
    }
    if (i_end - i >= 1)
        NJ_FN(tile_1)(kc, A + (i - i0) * a_row, a_row, a_col, panel, ldp, C + i * ldc, ldc, nc, load_c, bias);
}

/* For each block of KC rows of B (k0) and of NC columns (j0): pack the
 * slab; then for each block of MC rows of A (i0) and each panel of the
 * slab (j), the tiles down the block's rows. A is read in place: packing
 * it (rows, or MR-float micro-panels for A^T) measured no faster on a
 * Zen 5, and 1.2x slower for A^T @ B with N = 27 (bench/RESULTS.md,
 * 2026-12-06 04:30). NC is fixed by KC, not by the actual kc: for a short
 * K (27, 30, 32 in the step's products) the slab is then small (16 KB for
 * kc = 32) and stays in L1 between its packing and its few tiles; 128 KB /
 * kc columns instead made dW1 = embcat^T[30, 32] @ dhprebn[32, 4096] 1.3x
 * slower on AVX-512. */
NJ_HELPER void NJ_FN(gemm_one)(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col,
                               const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, int accumulate,
                               const float *bias) {
    float slab[NJ_SLAB] __attribute__((aligned(64)));
    /* A small product reads B's whole panels where B lies and packs only
     * the ragged last one: B (at most 8192 floats, 32 KB) is in L1 after
     * its first use, and with M <= 64 a panel serves at most 11 tiles, too
     * few to pay for its copy. The notebook's step took 4% less time on
     * AVX2 (its three products with N = 200 7% less), 0-5% less on
     * AVX-512. With M = 200 (dW2 = h^T @ dlogits) or B of 30 x 1024 it
     * measured 1-3% slower, and up to 1.5 times slower with B of 30 x 4096
     * (rows 16 KB apart): bench/RESULTS.md, 2026-12-07 19:28. */
    int in_place = K <= NJ_KC && M <= 64 && (ptrdiff_t)K * N <= 8192;
    int k0 = 0;
    do {   /* at least once: K = 0 still sets C (to 0 or to itself) */
        int kc = K - k0 < NJ_KC ? K - k0 : NJ_KC;
        int load_c = accumulate || k0 > 0;
        const float *bias_k = k0 + kc == K ? bias : NULL;   /* added once, after the last k */
        int nc_max = NJ_SLAB / NJ_KC / NJ_NR * NJ_NR;
        const float *Ak = A + k0 * a_col;
        for (int j0 = 0; j0 < N; j0 += nc_max) {
            int j_end = N - j0 < nc_max ? N : j0 + nc_max;
            /* When A is one block (M <= MC), a slab is used briefly and B
             * streams from memory in runs of only nc_max floats (512 B
             * for kc = 256), too short for the hardware prefetchers:
             * without the prefetch below, dW1 = embcat^T[30, 1024] @
             * dhprebn[1024, 4096] takes 1.2-1.3x the time on AVX2, 1.03-
             * 1.16x on AVX-512. So the pack asks for the next slab
             * while the tiles use this one; the L2 then holds two slabs
             * and the block of A: 256 KB + at most 192 KB, within a Zen 3's
             * 512 KB. With more rows the slab would wait through several
             * blocks of A and be evicted by them; with a short kc (K < KC,
             * a B of a few rows, in cache already: n = 32) the prefetches
             * cost 3-8% and bring nothing. */
            int n_next = M <= NJ_MC && kc == NJ_KC ? (N - j_end < nc_max ? N - j_end : nc_max) : 0;
            int j_packed = in_place ? j0 + (j_end - j0) / NJ_NR * NJ_NR : j0;   /* the panels before it: B's own */
            if (j_packed < j_end)
                NJ_FN(pack)(kc, j_end - j_packed, B + k0 * ldb + j_packed, ldb, slab, n_next);
            for (int i0 = 0; i0 < M; i0 += NJ_MC) {
                int i_end = M - i0 < NJ_MC ? M : i0 + NJ_MC;
                for (int j = j0; j < j_end; j += NJ_NR) {
                    const float *panel = j < j_packed ? B + k0 * ldb + j
                                                      : slab + (ptrdiff_t)((j - j_packed) / NJ_NR) * kc * NJ_NR;
                    ptrdiff_t ldp = j < j_packed ? ldb : NJ_NR;
                    int nc = j_end - j < NJ_NR ? j_end - j : NJ_NR;
                    NJ_FN(column)(i0, i_end, kc, Ak + i0 * a_row, a_row, a_col, panel, ldp, C + j, ldc, nc, load_c,
                                  bias_k ? bias_k + j : NULL);
                }
            }
        }
        k0 += NJ_KC;
    } while (k0 < K);
}

/* With nj_threads > 1 (and OpenMP), a product big enough to pay for a
 * fork and join is cut into bands of whole panels of C's columns, or of
 * whole tiles of its rows when C is taller than wide, one band a thread.
 * Each C(i, j) is then computed by the same code in the same order as on
 * one thread: the result does not depend on the thread count. */
NJ_ENTRY void NJ_FN(product)(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col, const float *B,
                             ptrdiff_t ldb, float *C, ptrdiff_t ldc, int accumulate, const float *bias) {
#if defined(_OPENMP)
    int panels = (N + NJ_NR - 1) / NJ_NR, tiles = (M + NJ_MR - 1) / NJ_MR, by_columns = panels >= tiles;
    int unit = by_columns ? NJ_NR : NJ_MR, extent = by_columns ? N : M, units = by_columns ? panels : tiles;
    int bands = nj_bands((double)M * N * K, units);
    if (bands > 1) {
#pragma omp parallel for num_threads(bands) schedule(static, 1)
        for (int t = 0; t < bands; t++) {
            if (t == 0 && omp_get_num_threads() > nj_threads_ran)   /* band 0 is the calling thread's */
                nj_threads_ran = omp_get_num_threads();
            int lo = units * t / bands * unit, hi = units * (t + 1) / bands * unit;
            hi = hi < extent ? hi : extent;
            if (by_columns)
                NJ_FN(gemm_one)(M, hi - lo, K, A, a_row, a_col, B + lo, ldb, C + lo, ldc, accumulate,
                                bias ? bias + lo : NULL);
            else
                NJ_FN(gemm_one)(hi - lo, N, K, A + lo * a_row, a_row, a_col, B, ldb, C + lo * ldc, ldc, accumulate,
                                bias);
        }
        return;
    }
#endif
    NJ_FN(gemm_one)(M, N, K, A, a_row, a_col, B, ldb, C, ldc, accumulate, bias);
}
#undef NJ_SLAB
#undef NJ_NR
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#elif !defined(NINJAC_KERNELS_H)
#define NINJAC_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>   /* the masked loads and stores of the edges */
#endif
#if defined(_OPENMP)
#include <omp.h>
#endif

#define NJ_INLINE static inline __attribute__((always_inline))

/* Threads for the big products (the trainer's --threads; 1 by default, and
 * always 1 in code compiled without OpenMP), and the most threads a product
 * has run on so far (what the trainer reports). Weak: one variable each for
 * the program, however many translation units include this header. */
__attribute__((weak)) int nj_threads = 1;
__attribute__((weak)) int nj_threads_ran = 1;

/* How many bands to cut a product of `work` = M N K multiply-adds into,
 * with `units` whole tiles along the cut: at most nj_threads, and at least
 * NJ_BAND_WORK multiply-adds a band, about 20 us of one core's time at 100
 * GFLOP/s, so that waking a thread (a few us) stays small beside it. */
#define NJ_BAND_WORK (1 << 20)
NJ_INLINE int nj_bands(double work, int units) {
    int bands = nj_threads;
    if (bands > units)
        bands = units;
    while (bands > 1 && work / bands < NJ_BAND_WORK)
        bands--;
    return bands;
}

/* A vector of NJ_VW copies of x, written out: `(vec){0} + x` would cost a
 * scalar add per broadcast. */
#define NJ_SPLAT4(x) {x, x, x, x}
#define NJ_SPLAT8(x) {x, x, x, x, x, x, x, x}
#define NJ_SPLAT16(x) {x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}

/* The tile and blocking for each ISA (see the top of the file). KC keeps a
 * panel at 16 KB (half of a 32 KB L1), MC a block of A at 128-256 KB. */
#if defined(__AVX512F__)
#define NJ_KERNEL_ISA "avx512"
#define NJ_NATIVE_TILE 16, 8, 2, 128, 256
#define NJ_MASKED 512
#elif defined(__AVX2__) && defined(__FMA__)
#define NJ_KERNEL_ISA "avx2"
#define NJ_NATIVE_TILE 8, 6, 2, 256, 192
#define NJ_MASKED 256
#elif defined(__aarch64__) && defined(__ARM_NEON)
#define NJ_KERNEL_ISA "neon"
#define NJ_NATIVE_TILE 4, 8, 3, 256, 128
#define NJ_MASKED 0
#elif defined(__x86_64__) && defined(__GNUC__) && !defined(NJ_NO_DISPATCH) && !defined(__clang__)
#define NJ_KERNEL_ISA "dispatch"
#elif defined(__SSE2__)
#define NJ_KERNEL_ISA "sse2"
#define NJ_NATIVE_TILE 4, 4, 2, 256, 128
#define NJ_MASKED 0
#else
#define NJ_KERNEL_ISA "generic"
#define NJ_NATIVE_TILE 4, 4, 2, 256, 128
#define NJ_MASKED 0
#endif

/* NJ_TILE_ARG(i, tile): the i-th of (VW, MR, NV, KC, MC). */
#define NJ_ARG0(a, b, c, d, e) a
#define NJ_ARG1(a, b, c, d, e) b
#define NJ_ARG2(a, b, c, d, e) c
#define NJ_ARG3(a, b, c, d, e) d
#define NJ_ARG4(a, b, c, d, e) e
#define NJ_TILE_ARG(i, ...) NJ_ARG##i(__VA_ARGS__)
#define NJ_CAT_(a, b) a##b
#define NJ_CAT(a, b) NJ_CAT_(a, b)

#if defined(NJ_NATIVE_TILE)
/* One copy, inlined into every call, for the ISA the compiler targets. */
#define NJ_VW NJ_TILE_ARG(0, NJ_NATIVE_TILE)
#define NJ_MR NJ_TILE_ARG(1, NJ_NATIVE_TILE)
#define NJ_NV NJ_TILE_ARG(2, NJ_NATIVE_TILE)
#define NJ_KC NJ_TILE_ARG(3, NJ_NATIVE_TILE)
#define NJ_MC NJ_TILE_ARG(4, NJ_NATIVE_TILE)
#define NJ_SPLAT(x) NJ_CAT(NJ_SPLAT, NJ_VW)(x)
#define NJ_FN(name) nj_##name
#define NJ_HELPER NJ_INLINE
#define NJ_ENTRY NJ_INLINE
#define NJ_KERNEL_BODY
#include "ninjac_kernels.h"
#undef NJ_KERNEL_BODY
#undef NJ_VW
#undef NJ_MR
#undef NJ_NV
#undef NJ_KC
#undef NJ_MC
#undef NJ_SPLAT
#undef NJ_FN
#undef NJ_HELPER
#undef NJ_ENTRY

/* The ISA nj_gemm runs in this program. */
static inline const char *nj_gemm_isa(void) { return NJ_KERNEL_ISA; }

NJ_INLINE void nj_gemm(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col, const float *B,
                       ptrdiff_t ldb, float *C, ptrdiff_t ldc, int accumulate) {
    nj_product(M, N, K, A, a_row, a_col, B, ldb, C, ldc, accumulate, NULL);
}

NJ_INLINE void nj_gemm_bias(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col, const float *B,
                            ptrdiff_t ldb, float *C, ptrdiff_t ldc, const float *bias) {
    nj_product(M, N, K, A, a_row, a_col, B, ldb, C, ldc, 0, bias);
}

#else
/* x86-64 built without -march: three copies with target attributes, one
 * chosen at the first call by what the CPU supports. Not inlined (the
 * shapes are no longer constants), but each runs its ISA's tile. */
#include <stdlib.h>
#define NJ_KERNEL_BODY
#define NJ_FN(name) nj_##name##_avx512
#define NJ_MASKED 512
#define NJ_VW 16
#define NJ_MR 8
#define NJ_NV 2
#define NJ_KC 128
#define NJ_MC 256
#define NJ_SPLAT(x) NJ_SPLAT16(x)
#define NJ_HELPER static inline __attribute__((always_inline, target("avx512f,fma")))
#define NJ_ENTRY static __attribute__((noinline, target("avx512f,fma")))
#include "ninjac_kernels.h"
#undef NJ_FN
#undef NJ_MASKED
#undef NJ_VW
#undef NJ_MR
#undef NJ_KC
#undef NJ_MC
#undef NJ_SPLAT
#undef NJ_HELPER
#undef NJ_ENTRY
#define NJ_FN(name) nj_##name##_avx2
#define NJ_MASKED 256
#define NJ_VW 8
#define NJ_MR 6
#define NJ_KC 256
#define NJ_MC 192
#define NJ_SPLAT(x) NJ_SPLAT8(x)
#define NJ_HELPER static inline __attribute__((always_inline, target("avx2,fma")))
#define NJ_ENTRY static __attribute__((noinline, target("avx2,fma")))
#include "ninjac_kernels.h"
#undef NJ_FN
#undef NJ_MASKED
#undef NJ_VW
#undef NJ_MR
#undef NJ_MC
#undef NJ_SPLAT
#undef NJ_HELPER
#undef NJ_ENTRY
#define NJ_FN(name) nj_##name##_sse2
#define NJ_MASKED 0
#define NJ_VW 4
#define NJ_MR 4
#define NJ_MC 128
#define NJ_SPLAT(x) NJ_SPLAT4(x)
#define NJ_HELPER NJ_INLINE
#define NJ_ENTRY static __attribute__((noinline))
#include "ninjac_kernels.h"
#undef NJ_KERNEL_BODY
#undef NJ_MASKED
#undef NJ_FN
#undef NJ_VW
#undef NJ_MR
#undef NJ_NV
#undef NJ_KC
#undef NJ_MC
#undef NJ_SPLAT
#undef NJ_HELPER
#undef NJ_ENTRY

typedef void nj_gemm_fn(int, int, int, const float *, ptrdiff_t, ptrdiff_t, const float *, ptrdiff_t, float *,
                        ptrdiff_t, int, const float *);

/* The widest copy this CPU runs; NJ_FORCE_ISA=avx2 or sse2 in the
 * environment picks a narrower one (for benchmarks). */
static nj_gemm_fn *nj_choose_gemm(const char **isa) {
    const char *force = getenv("NJ_FORCE_ISA");
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma") && !force) {
        *isa = "avx512";
        return nj_product_avx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !(force && !strcmp(force, "sse2"))) {
        *isa = "avx2";
        return nj_product_avx2;
    }
    *isa = "sse2";
    return nj_product_sse2;
}

/* The ISA nj_gemm runs in this program (chosen once). */
static inline const char *nj_gemm_isa(void) {
    static const char *isa;
    static nj_gemm_fn *fn;
    if (!fn)
        fn = nj_choose_gemm(&isa);
    return isa;
}

/* The copy for this CPU, chosen at the first call (per translation unit;
 * every thread stores the same value). */
NJ_INLINE nj_gemm_fn *nj_product(void) {
    static nj_gemm_fn *fn;
    if (!fn) {
        const char *isa;
        fn = nj_choose_gemm(&isa);
    }
    return fn;
}

NJ_INLINE void nj_gemm(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col, const float *B,
                       ptrdiff_t ldb, float *C, ptrdiff_t ldc, int accumulate) {
    nj_product()(M, N, K, A, a_row, a_col, B, ldb, C, ldc, accumulate, NULL);
}

NJ_INLINE void nj_gemm_bias(int M, int N, int K, const float *A, ptrdiff_t a_row, ptrdiff_t a_col, const float *B,
                            ptrdiff_t ldb, float *C, ptrdiff_t ldc, const float *bias) {
    nj_product()(M, N, K, A, a_row, a_col, B, ldb, C, ldc, 0, bias);
}
#endif

/* tanh(x) = x P(x^2) / Q(x^2) on [-9, 9], a fit of ours (relative error
 * 2.2e-8 in exact arithmetic; float rounding makes it 6 ulp at most);
 * beyond 9 it is +-1 (the exact value rounds there from 9.01 on), and a
 * NaN goes through as a NaN. The test |x| > 9 and the choices it makes are
 * integer operations on the bits: written with float comparisons, GCC
 * could not turn them into vector selects without AVX-512's masks (a
 * comparison may trap under -ftrapping-math, the default), and every loop
 * with a tanh ran one element at a time on AVX2, SSE2 and NEON (13.5 of
 * the notebook's 51 us step on AVX2). Same results as those comparisons,
 * bit for bit, for every float. */
NJ_INLINE uint32_t nj_float_bits(float f) {
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

NJ_INLINE float nj_bits_float(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

NJ_INLINE float nj_tanhf(float x) {
    uint32_t bits = nj_float_bits(x), magnitude = bits & 0x7fffffffu, sign = bits & 0x80000000u;
    /* all ones when 9 < |x| <= inf (0x41100000 is 9.0f, 0x7f800000 inf) */
    uint32_t saturated = -(uint32_t)((magnitude > 0x41100000u) & (magnitude <= 0x7f800000u));
    float c = nj_bits_float((bits & ~saturated) | ((0x41100000u | sign) & saturated));   /* x clamped to +-9 */
    float t = c * c;
    float p = (((1.334944776942848e-08f * t + 2.0605066310963593e-05f) * t + 0.003495336975902319f) * t +
               0.13380815088748932f) * t + 1.0f;
    float q = (((7.774347636768653e-07f * t + 0.00032852275762706995f) * t + 0.02587602660059929f) * t +
               0.4671413004398346f) * t + 1.0f;
    float y = c * p / q;
    return nj_bits_float((nj_float_bits(y) & ~saturated) | ((0x3f800000u | sign) & saturated));   /* or +-1 */
}

/* nj_transpose: 4 x 4 blocks through vector registers (any ISA with
 * 128-bit vectors: two rounds of interleaving), the ragged edges one float
 * at a time. Rows of src are taken 16 at a time, so that each row of dst
 * is written a whole cache line at a time: dst's rows lie R floats apart,
 * and when R is a multiple of 1024 they all fall in the same cache set;
 * writing them a few floats at a time across all of them (27 rows for a
 * [1024][27] src) evicted each line before it was full, which made the
 * transpose 70 times slower than for R = 200. */
typedef float nj_v4 __attribute__((vector_size(16)));

NJ_INLINE void nj_transpose_4x4(int R, int C, const float *src, float *dst, int i, int j) {
    nj_v4 r0, r1, r2, r3;
    memcpy(&r0, src + (ptrdiff_t)i * C + j, 16);
    memcpy(&r1, src + (ptrdiff_t)(i + 1) * C + j, 16);
    memcpy(&r2, src + (ptrdiff_t)(i + 2) * C + j, 16);
    memcpy(&r3, src + (ptrdiff_t)(i + 3) * C + j, 16);
    nj_v4 t0 = __builtin_shufflevector(r0, r1, 0, 4, 1, 5);   /* a0 b0 a1 b1 */
    nj_v4 t1 = __builtin_shufflevector(r0, r1, 2, 6, 3, 7);   /* a2 b2 a3 b3 */
    nj_v4 t2 = __builtin_shufflevector(r2, r3, 0, 4, 1, 5);   /* c0 d0 c1 d1 */
    nj_v4 t3 = __builtin_shufflevector(r2, r3, 2, 6, 3, 7);   /* c2 d2 c3 d3 */
    nj_v4 o0 = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);   /* a0 b0 c0 d0 */
    nj_v4 o1 = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
    nj_v4 o2 = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
    nj_v4 o3 = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
    memcpy(dst + (ptrdiff_t)j * R + i, &o0, 16);
    memcpy(dst + (ptrdiff_t)(j + 1) * R + i, &o1, 16);
    memcpy(dst + (ptrdiff_t)(j + 2) * R + i, &o2, 16);
    memcpy(dst + (ptrdiff_t)(j + 3) * R + i, &o3, 16);
}

NJ_INLINE void nj_transpose(int R, int C, const float *src, float *dst) {
    int R4 = R / 4 * 4, C4 = C / 4 * 4;   /* bounds the compiler can fold for constant R and C */
    for (int i0 = 0; i0 < R4; i0 += 16) {
        int i1 = R4 - i0 < 16 ? R4 : i0 + 16;
        for (int j = 0; j < C4; j += 4)
            for (int i = i0; i < i1; i += 4)
                nj_transpose_4x4(R, C, src, dst, i, j);
        for (int j = C4; j < C; j++)   /* the last C % 4 columns */
            for (int i = i0; i < i1; i++)
                dst[(ptrdiff_t)j * R + i] = src[(ptrdiff_t)i * C + j];
    }
    for (int i = R4; i < R; i++)   /* the last R % 4 rows */
        for (int j = 0; j < C; j++)
            dst[(ptrdiff_t)j * R + i] = src[(ptrdiff_t)i * C + j];
}

#endif
