/* bench_sgemm.c - OpenBLAS figures the step timings are compared with.
 * Always single-threaded (openblas_set_num_threads(1)), like the trainer.
 *
 *   bench_sgemm info                      the OpenBLAS in use: core, config, threads, library
 *   bench_sgemm bound [--n N] [--hidden H] [--reps R] [--rep-ms MS] [--warm-ms MS]
 *       the lower bound of a training step: only the six cblas_sgemm calls
 *       of one exercise-4 step, with the reference's arguments (beta 0):
 *         forward   hprebn = embcat[n,30] @ W1[30,H];  logits = h[n,H] @ W2[H,27]
 *         backward  dh = dlogits @ W2^T;  dW2 = h^T @ dlogits;
 *                   dembcat = dhprebn @ W1^T;  dW1 = embcat^T @ dhprebn
 *   bench_sgemm kernels [--n N] [--hidden H] [...]
 *       the same six products through runtime/ninjac_kernels.h, as the
 *       default mode's generated code computes them (A @ B^T by a transpose
 *       of B, then nj_gemm)
 *   bench_sgemm products [same options as bound]
 *       each of the six products alone, the kernels' time and sgemm's
 *       (minimum and median per call) and their ratio; --only W (0..5, in
 *       bound's order) measures that product alone
 *   bench_sgemm peak [--size S] [--reps R]
 *       C[S,S] = A[S,S] @ B[S,S]: sgemm's large-matrix rate in GFLOP/s
 *   bench_sgemm ownpeak [--size S] [--reps R]
 *       the same product by nj_gemm (runtime shapes, as bench_sgemm kernels)
 *   bench_sgemm isa
 *       the kernels nj_gemm runs in this program (avx512, avx2, neon, sse2)
 */
#define _GNU_SOURCE
#include <cblas.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "ninjac_kernels.h"
#include "ref_rng.h"

static float *randmat(Rng *r, size_t count) {
    float *x = aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64);
    if (!x) {
        fprintf(stderr, "error: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < count; i++) { x[i] = (float)(2.0 * rng_uniform(r) - 1.0); }
    return x;
}

typedef struct {
    int n, be, h, v;
    float *embcat, *W1, *hprebn, *h_, *W2, *logits, *dlogits, *dh, *dW2, *dhprebn, *dembcat, *dW1;
} Bound;

static void bound_step(void *p) {
    Bound *b = p;
    const int n = b->n, BE = b->be, H = b->h, V = b->v;
    /* forward */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, H, BE, 1.0f, b->embcat, BE, b->W1, H,
                0.0f, b->hprebn, H);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, V, H, 1.0f, b->h_, H, b->W2, V, 0.0f,
                b->logits, V);
    /* backward: layer 2 */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, H, V, 1.0f, b->dlogits, V, b->W2, V,
                0.0f, b->dh, H);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, V, n, 1.0f, b->h_, H, b->dlogits, V,
                0.0f, b->dW2, V);
    /* backward: layer 1 */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, BE, H, 1.0f, b->dhprebn, H, b->W1, H,
                0.0f, b->dembcat, BE);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, BE, H, n, 1.0f, b->embcat, BE, b->dhprebn,
                H, 0.0f, b->dW1, H);
}

/* The same products with ninjac's kernels; scratch holds B^T. */
static float *kernel_scratch;

static void kernels_step(void *p) {
    Bound *b = p;
    const int n = b->n, BE = b->be, H = b->h, V = b->v;
    nj_gemm(n, H, BE, b->embcat, BE, 1, b->W1, H, b->hprebn, H, 0);
    nj_gemm(n, V, H, b->h_, H, 1, b->W2, V, b->logits, V, 0);
    nj_transpose(H, V, b->W2, kernel_scratch);
    nj_gemm(n, H, V, b->dlogits, V, 1, kernel_scratch, H, b->dh, H, 0);
    nj_gemm(H, V, n, b->h_, 1, H, b->dlogits, V, b->dW2, V, 0);
    nj_transpose(BE, H, b->W1, kernel_scratch);
    nj_gemm(n, BE, H, b->dhprebn, H, 1, kernel_scratch, BE, b->dembcat, BE, 0);
    nj_gemm(BE, H, n, b->embcat, 1, BE, b->dhprebn, H, b->dW1, H, 0);
}

/* One product of the step at a time, ninjac's kernels against sgemm:
 * which of the six costs what (bench_sgemm products). */
typedef struct {
    Bound *b;
    int which;   /* 0..5 in bound_step's order */
    bool own;
} Product;

static void product_step(void *p) {
    const Product *q = p;
    Bound *b = q->b;
    const int n = b->n, BE = b->be, H = b->h, V = b->v;
    const CBLAS_TRANSPOSE N_ = CblasNoTrans, T_ = CblasTrans;
    switch (q->which) {
    case 0:
        if (q->own) nj_gemm(n, H, BE, b->embcat, BE, 1, b->W1, H, b->hprebn, H, 0);
        else cblas_sgemm(CblasRowMajor, N_, N_, n, H, BE, 1, b->embcat, BE, b->W1, H, 0, b->hprebn, H);
        break;
    case 1:
        if (q->own) nj_gemm(n, V, H, b->h_, H, 1, b->W2, V, b->logits, V, 0);
        else cblas_sgemm(CblasRowMajor, N_, N_, n, V, H, 1, b->h_, H, b->W2, V, 0, b->logits, V);
        break;
    case 2:
        if (q->own) {
            nj_transpose(H, V, b->W2, kernel_scratch);
            nj_gemm(n, H, V, b->dlogits, V, 1, kernel_scratch, H, b->dh, H, 0);
        } else {
            cblas_sgemm(CblasRowMajor, N_, T_, n, H, V, 1, b->dlogits, V, b->W2, V, 0, b->dh, H);
        }
        break;
    case 3:
        if (q->own) nj_gemm(H, V, n, b->h_, 1, H, b->dlogits, V, b->dW2, V, 0);
        else cblas_sgemm(CblasRowMajor, T_, N_, H, V, n, 1, b->h_, H, b->dlogits, V, 0, b->dW2, V);
        break;
    case 4:
        if (q->own) {
            nj_transpose(BE, H, b->W1, kernel_scratch);
            nj_gemm(n, BE, H, b->dhprebn, H, 1, kernel_scratch, BE, b->dembcat, BE, 0);
        } else {
            cblas_sgemm(CblasRowMajor, N_, T_, n, BE, H, 1, b->dhprebn, H, b->W1, H, 0, b->dembcat, BE);
        }
        break;
    default:
        if (q->own) nj_gemm(BE, H, n, b->embcat, 1, BE, b->dhprebn, H, b->dW1, H, 0);
        else cblas_sgemm(CblasRowMajor, T_, N_, BE, H, n, 1, b->embcat, BE, b->dhprebn, H, 0, b->dW1, H);
        break;
    }
}

typedef struct {
    int s;
    float *a, *b, *c;
} Peak;

static void own_peak_step(void *p) {
    Peak *k = p;
    nj_gemm(k->s, k->s, k->s, k->a, k->s, 1, k->b, k->s, k->c, k->s, 0);
}

static void peak_step(void *p) {
    Peak *k = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k->s, k->s, k->s, 1.0f, k->a, k->s, k->b,
                k->s, 0.0f, k->c, k->s);
}

static int usage(const char *prog) {
    fprintf(stderr, "usage: %s info\n       %s bound [--n N] [--hidden H] [--reps R] [--rep-ms MS] "
                    "[--warm-ms MS]\n       %s kernels|products [same options as bound] [--only W]\n       %s peak|ownpeak [--size S] [--reps R]\n       %s isa\n",
            prog, prog, prog, prog, prog);
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 2) { return usage(argv[0]); }
    openblas_set_num_threads(1);
    Rng rng;
    rng_seed(&rng, 7);

    if (strcmp(argv[1], "info") == 0) {
        if (argc != 2) { return usage(argv[0]); }
        Dl_info info = {0};
        const char *lib = dladdr((void *)cblas_sgemm, &info) && info.dli_fname ? info.dli_fname : "?";
        const char *coretype = getenv("OPENBLAS_CORETYPE");
        /* values with spaces are quoted with |...| (one field per key for run.sh) */
        printf("RESULT what=openblas corename=%s threads=%d procs=%d env_coretype=%s config=|%s| library=|%s|\n",
               openblas_get_corename(), openblas_get_num_threads(), openblas_get_num_procs(),
               coretype ? coretype : "(unset)", openblas_get_config(), lib);
        return 0;
    }

    if (strcmp(argv[1], "bound") == 0 || strcmp(argv[1], "kernels") == 0 || strcmp(argv[1], "products") == 0) {
        bool own = strcmp(argv[1], "kernels") == 0;
        static const char *const known[] = {"--n", "--hidden", "--reps", "--rep-ms", "--warm-ms", "--only", NULL};
        double n = 32, hidden = 200, reps = 15, rep_ms = 100, warm_ms = 300, only = -1;
        if (bench_check_args(argc, argv, 2, known) || bench_opt(argc, argv, "--n", &n) ||
            bench_opt(argc, argv, "--hidden", &hidden) || bench_opt(argc, argv, "--reps", &reps) ||
            bench_opt(argc, argv, "--rep-ms", &rep_ms) || bench_opt(argc, argv, "--warm-ms", &warm_ms) ||
            bench_opt(argc, argv, "--only", &only) || n < 1 || hidden < 1 || only > 5) {
            return usage(argv[0]);
        }
        Bound b = {.n = (int)n, .be = 30, .h = (int)hidden, .v = 27};
        size_t N = (size_t)b.n, BE = (size_t)b.be, H = (size_t)b.h, V = (size_t)b.v;
        b.embcat = randmat(&rng, N * BE);
        b.W1 = randmat(&rng, BE * H);
        b.hprebn = randmat(&rng, N * H);
        b.h_ = randmat(&rng, N * H);
        b.W2 = randmat(&rng, H * V);
        b.logits = randmat(&rng, N * V);
        b.dlogits = randmat(&rng, N * V);
        b.dh = randmat(&rng, N * H);
        b.dW2 = randmat(&rng, H * V);
        b.dhprebn = randmat(&rng, N * H);
        b.dembcat = randmat(&rng, N * BE);
        b.dW1 = randmat(&rng, BE * H);
        kernel_scratch = randmat(&rng, H * (V > BE ? V : BE));
        BenchCfg cfg = {.warm_ms = warm_ms, .rep_ms = rep_ms, .reps = (int)reps};
        if (strcmp(argv[1], "products") == 0) {
            static const char *const names[6] = {"hprebn = embcat @ W1", "logits = h @ W2", "dh = dlogits @ W2^T",
                                                 "dW2 = h^T @ dlogits", "dembcat = dhprebn @ W1^T",
                                                 "dW1 = embcat^T @ dhprebn"};
            for (int w = 0; w < 6; w++) {   /* own and sgemm alternate, so that both see the same load */
                if (only >= 0 && w != (int)only)
                    continue;
                Product po = {&b, w, true}, pb = {&b, w, false};
                BenchStats so = bench_run(&cfg, product_step, NULL, &po);
                BenchStats sb = bench_run(&cfg, product_step, NULL, &pb);
                printf("RESULT what=product n=%d H=%d isa=%s product=|%s| own_min_us=%.3f blas_min_us=%.3f "
                       "own_med_us=%.3f blas_med_us=%.3f blas_over_own=%.2f\n", b.n, b.h, nj_gemm_isa(), names[w],
                       so.min_us, sb.min_us, so.med_us, sb.med_us, sb.min_us / so.min_us);
            }
            return 0;
        }
        BenchStats st = bench_run(&cfg, own ? kernels_step : bound_step, NULL, &b);
        double flops = bench_step_flops(b.n, b.be, b.h, b.v);
        printf("RESULT what=%s n=%d H=%d threads=%d corename=%s flops=%.0f gflops=%.3f", own ? "kernels" : "bound",
               b.n, b.h, openblas_get_num_threads(), openblas_get_corename(), flops, flops / (st.med_us * 1e3));
        bench_print_stats(&st);
        printf("\n");
        float *all[] = {b.embcat, b.W1, b.hprebn, b.h_, b.W2, b.logits, b.dlogits, b.dh, b.dW2,
                        b.dhprebn, b.dembcat, b.dW1};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) { free(all[i]); }
        free(kernel_scratch);
        return 0;
    }

    if (strcmp(argv[1], "isa") == 0) {
        printf("RESULT what=isa isa=%s compiled=%s\n", nj_gemm_isa(), NJ_KERNEL_ISA);
        return 0;
    }

    if (strcmp(argv[1], "peak") == 0 || strcmp(argv[1], "ownpeak") == 0) {
        static const char *const known[] = {"--size", "--reps", NULL};
        double size = 2048, reps = 7;
        bool own = strcmp(argv[1], "ownpeak") == 0;
        if (bench_check_args(argc, argv, 2, known) || bench_opt(argc, argv, "--size", &size) ||
            bench_opt(argc, argv, "--reps", &reps) || size < 1) {
            return usage(argv[0]);
        }
        Peak k = {.s = (int)size};
        size_t S = (size_t)k.s;
        k.a = randmat(&rng, S * S);
        k.b = randmat(&rng, S * S);
        k.c = randmat(&rng, S * S);
        /* warm-up: 3 calls; then reps of one call each */
        BenchCfg cfg = {.warm_ms = 0, .rep_ms = 0, .reps = (int)reps};
        BenchStats st = bench_run(&cfg, own ? own_peak_step : peak_step, NULL, &k);
        double flops = 2.0 * (double)S * (double)S * (double)S;
        printf("RESULT what=%s size=%d threads=%d corename=%s flops=%.0f gflops=%.3f "
               "gflops_best=%.3f", own ? "ownpeak" : "peak", k.s, openblas_get_num_threads(),
               own ? nj_gemm_isa() : openblas_get_corename(), flops,
               flops / (st.med_us * 1e3), flops / (st.min_us * 1e3));
        bench_print_stats(&st);
        printf("\n");
        free(k.a);
        free(k.b);
        free(k.c);
        return 0;
    }
    return usage(argv[0]);
}
