/* bench_step.c - times the training step (forward + backward + sgd) of
 * generated code. Each bench_step_<variant> executable links one generated
 * model with this file (see bench/CMakeLists.txt) and calls bench_step_main.
 *
 * The batch is fixed and random (uniform in each input's [0, bound)), the
 * parameters are the spec's initialisation drawn as the trainer's
 * `init --seed S` draws it, and they are restored before every repetition.
 * Not timed: batch sampling and the trainer's per-step finiteness check.
 *
 *   bench_step_X [--reps R] [--rep-ms MS] [--warm-ms MS] [--lr LR] [--seed S] [--threads T] [--nan-check]
 *
 * --threads T sets nj_gemm's thread count, as the trainer's --threads.
 *
 * --nan-check adds the trainer's per-step check of the loss and the
 * parameter gradients (step_looks_finite) to each step, to time its cost.
 */
#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "ninjac_model.h"
#include "ref_rng.h"
#include "state.h"
#include "state.h"

int bench_step_main(int argc, char **argv, const NinjacModel *m, const char *variant);

/* runtime/ninjac_kernels.h's thread count, and the most threads a product
 * ran on: defined (weak) by generated code that includes the header, so
 * absent (NULL) in -O0 models. */
extern int nj_threads __attribute__((weak)), nj_threads_ran __attribute__((weak));

typedef struct {
    const NinjacModel *m;
    void *params, *params0, *acts, *grads;
    const int32_t *inputs[8];
    double lr;
    bool nan_check;
    State state;            /* for step_looks_finite: m, acts and grads */
    int nonfinite;
} Ctx;

static void *zalloc(size_t n) {
    size_t size = (n + 63) / 64 * 64;
    void *p = aligned_alloc(64, size ? size : 64);
    if (p) { memset(p, 0, size ? size : 64); }
    return p;
}

static int64_t numel(int rank, const int *shape) {
    int64_t k = 1;
    for (int d = 0; d < rank; d++) { k *= shape[d]; }
    return k;
}

static void step(void *p) {
    Ctx *c = p;
    c->m->forward(c->params, c->inputs, c->acts);
    c->m->backward(c->params, c->inputs, c->acts, c->grads);
    if (c->nan_check)
        c->nonfinite += !step_looks_finite(&c->state);
    c->m->sgd(c->params, c->grads, c->lr);
}

static void reset(void *p) {
    Ctx *c = p;
    memcpy(c->params, c->params0, c->m->params_bytes);
}

static const NjParam *find_param(const NinjacModel *m, const char *name) {
    for (int i = 0; i < m->nparams; i++) {
        if (strcmp(m->params[i].t.name, name) == 0) { return &m->params[i]; }
    }
    return NULL;
}

int bench_step_main(int argc, char **argv, const NinjacModel *m, const char *variant) {
    static const char *const known[] = {"--reps",    "--rep-ms", "--warm-ms", "--lr",
                                        "--seed",    "--threads", "--nan-check", NULL};
    bool nan_check = false;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--nan-check")) {   /* a flag: take it out before the valued options */
            nan_check = true;
            memmove(argv + i, argv + i + 1, sizeof(char *) * (size_t)(argc - i));
            argc--;
            break;
        }
    double reps = 15, rep_ms = 100, warm_ms = 300, lr = 0.1, seed = 1, threads = 1;
    if (bench_check_args(argc, argv, 1, known) || bench_opt(argc, argv, "--reps", &reps) ||
        bench_opt(argc, argv, "--rep-ms", &rep_ms) || bench_opt(argc, argv, "--warm-ms", &warm_ms) ||
        bench_opt(argc, argv, "--lr", &lr) || bench_opt(argc, argv, "--seed", &seed) ||
        bench_opt(argc, argv, "--threads", &threads) || threads < 1) {
        fprintf(stderr, "usage: %s [--reps R] [--rep-ms MS] [--warm-ms MS] [--lr LR] [--seed S] [--threads T] "
                        "[--nan-check]\n", argv[0]);
        return 2;
    }
    if (threads > 1 && !&nj_threads) {
        fprintf(stderr, "error: %s: --threads: this model does not use ninjac's kernels (-O0)\n", m->name);
        return 2;
    }
    if (&nj_threads)
        nj_threads = (int)threads;
    if (m->elem_size != (int)sizeof(float) || m->ninputs > 8) {
        fprintf(stderr, "error: %s: only float models with at most 8 inputs\n", m->name);
        return 2;
    }
    /* Single-threaded, as the trainer runs by default: a step's matmuls are small. */
    openblas_set_num_threads(1);

    Ctx c = {.m = m, .lr = lr, .nan_check = nan_check};
    c.params = zalloc(m->params_bytes);
    c.params0 = zalloc(m->params_bytes);
    c.acts = zalloc(m->acts_bytes);
    c.grads = zalloc(m->grads_bytes);
    if (!c.params || !c.params0 || !c.acts || !c.grads) {
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }
    /* The parameters as `init --seed S` makes them. */
    init_params(m, c.params0, (uint64_t)seed, NULL);
    /* One fixed batch from its own stream (bench_ref draws the same one). */
    Rng brng;
    rng_seed(&brng, (uint64_t)seed + 1000);
    for (int k = 0; k < m->ninputs; k++) {
        const NjInput *in = &m->inputs[k];
        int64_t cnt = numel(in->rank, in->shape);
        int32_t *v = malloc(sizeof(int32_t) * (size_t)(cnt ? cnt : 1));
        if (!v) { fprintf(stderr, "error: out of memory\n"); return 1; }
        for (int64_t i = 0; i < cnt; i++) { v[i] = (int32_t)rng_below(&brng, (uint64_t)in->bound); }
        c.inputs[k] = v;
    }

    /* The loss of the first forward pass: the same batch and parameters give
     * the same loss in bench_ref (up to rounding), a check that both time the
     * same computation. */
    reset(&c);
    m->forward(c.params, c.inputs, c.acts);
    float loss0 = *(const float *)((const char *)c.acts + m->loss_offset);
    if (!isfinite(loss0)) {
        fprintf(stderr, "error: %s: first loss is not finite\n", m->name);
        return 1;
    }

    c.state = (State){.m = m, .acts = c.acts, .grads = c.grads};
    BenchCfg cfg = {.warm_ms = warm_ms, .rep_ms = rep_ms, .reps = (int)reps};
    BenchStats st = bench_run(&cfg, step, reset, &c);
    if (c.nonfinite) {
        fprintf(stderr, "error: %s: %d steps with a non-finite loss or gradient\n", m->name, c.nonfinite);
        return 1;
    }

    const NjParam *w1 = find_param(m, "W1"), *w2 = find_param(m, "W2");
    double flops = 0;
    int hidden = 0;
    if (w1 && w2 && w1->t.rank == 2 && w2->t.rank == 2) {
        hidden = w1->t.shape[1];
        flops = bench_step_flops(m->batch, w1->t.shape[0], hidden, w2->t.shape[1]);
    }
    printf("RESULT what=generated variant=%s model=%s opt=-O%d nan_check=%d n=%d H=%d threads=%d "
           "nj_threads=%d nj_threads_ran=%d corename=%s loss0=%.6f flops=%.0f gflops=%.3f",
           variant, m->name, m->opt_level, nan_check, m->batch, hidden, openblas_get_num_threads(),
           &nj_threads ? nj_threads : 1, &nj_threads_ran ? nj_threads_ran : 1, openblas_get_corename(), loss0,
           flops, flops / (st.med_us * 1e3));
    bench_print_stats(&st);
    printf("\n");

    for (int k = 0; k < m->ninputs; k++) { free((void *)c.inputs[k]); }
    free(c.params);
    free(c.params0);
    free(c.acts);
    free(c.grads);
    return 0;
}
