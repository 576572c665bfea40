/* bench_ref.c - times ref_train_step, the exercise-4 training step of the
 * hand-written reference (tests/reference: forward, fused backward, SGD),
 * the same way bench_step times generated code: same parameters (the
 * notebook's init with the same generator and seed), same fixed batch,
 * parameters restored before every repetition.
 *
 *   bench_ref [--n N] [--hidden H] [--reps R] [--rep-ms MS] [--warm-ms MS] [--lr LR] [--seed S]
 */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "ref_io.h"
#include "reference.h"
#include "ref_rng.h"

typedef struct {
    RefDims d;
    RefParams p;
    RefActs a;
    RefGrads g;
    RefView pv[REF_NPARAMS];
    real *saved[REF_NPARAMS];
    int np;
    int32_t *Xb, *Yb;
    real lr;
} Ctx;

static void step(void *p) {
    Ctx *c = p;
    ref_train_step(&c->d, &c->p, c->Xb, c->Yb, &c->a, &c->g, c->lr);
}

static void reset(void *p) {
    Ctx *c = p;
    for (int t = 0; t < c->np; t++) {
        memcpy(c->pv[t].data, c->saved[t], sizeof(real) * (size_t)ref_view_numel(&c->pv[t]));
    }
}

int main(int argc, char **argv) {
    static const char *const known[] = {"--n", "--hidden", "--reps", "--rep-ms", "--warm-ms",
                                        "--lr", "--seed", NULL};
    double n = 32, hidden = 200, reps = 15, rep_ms = 100, warm_ms = 300, lr = 0.1, seed = 1;
    if (bench_check_args(argc, argv, 1, known) || bench_opt(argc, argv, "--n", &n) ||
        bench_opt(argc, argv, "--hidden", &hidden) || bench_opt(argc, argv, "--reps", &reps) ||
        bench_opt(argc, argv, "--rep-ms", &rep_ms) || bench_opt(argc, argv, "--warm-ms", &warm_ms) ||
        bench_opt(argc, argv, "--lr", &lr) || bench_opt(argc, argv, "--seed", &seed) || n < 2 ||
        hidden < 1) {
        fprintf(stderr, "usage: %s [--n N>=2] [--hidden H] [--reps R] [--rep-ms MS] [--warm-ms MS] "
                        "[--lr LR] [--seed S]\n", argv[0]);
        return 2;
    }
    openblas_set_num_threads(1);

    Ctx c = {.d = {.n = (int)n, .B = 3, .V = 27, .E = 10, .H = (int)hidden}, .lr = (real)lr};
    if (ref_params_alloc(&c.d, &c.p) || ref_acts_alloc(&c.d, &c.a) || ref_grads_alloc(&c.d, &c.g)) {
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }
    /* The notebook's init, in the spec's order from the same generator as
     * bench_step: the same parameters as the generated code gets. */
    refio_init_params(&c.d, &c.p, (uint64_t)seed);
    c.np = ref_param_views(&c.d, &c.p, c.pv);
    for (int t = 0; t < c.np; t++) {
        size_t bytes = sizeof(real) * (size_t)ref_view_numel(&c.pv[t]);
        c.saved[t] = malloc(bytes);
        if (!c.saved[t]) { fprintf(stderr, "error: out of memory\n"); return 1; }
        memcpy(c.saved[t], c.pv[t].data, bytes);
    }
    /* The batch bench_step draws: Xb [n, B] then Yb [n], uniform in [0, V). */
    Rng brng;
    rng_seed(&brng, (uint64_t)seed + 1000);
    c.Xb = malloc(sizeof(int32_t) * (size_t)c.d.n * (size_t)c.d.B);
    c.Yb = malloc(sizeof(int32_t) * (size_t)c.d.n);
    if (!c.Xb || !c.Yb) { fprintf(stderr, "error: out of memory\n"); return 1; }
    for (int i = 0; i < c.d.n * c.d.B; i++) { c.Xb[i] = (int32_t)rng_below(&brng, (uint64_t)c.d.V); }
    for (int i = 0; i < c.d.n; i++) { c.Yb[i] = (int32_t)rng_below(&brng, (uint64_t)c.d.V); }

    ref_forward_fused(&c.d, &c.p, c.Xb, c.Yb, &c.a);
    float loss0 = c.a.loss;

    BenchCfg cfg = {.warm_ms = warm_ms, .rep_ms = rep_ms, .reps = (int)reps};
    BenchStats st = bench_run(&cfg, step, reset, &c);
    double flops = bench_step_flops(c.d.n, c.d.B * c.d.E, c.d.H, c.d.V);
    printf("RESULT what=reference n=%d H=%d threads=%d loss0=%.6f flops=%.0f gflops=%.3f", c.d.n,
           c.d.H, openblas_get_num_threads(), loss0, flops, flops / (st.med_us * 1e3));
    bench_print_stats(&st);
    printf("\n");

    for (int t = 0; t < c.np; t++) { free(c.saved[t]); }
    free(c.Xb);
    free(c.Yb);
    ref_params_free(&c.p);
    ref_acts_free(&c.a);
    ref_grads_free(&c.g);
    return 0;
}
