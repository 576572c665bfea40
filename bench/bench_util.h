/* bench_util.h - timing helpers shared by the bench programs (header only).
 *
 * The method, the same for every program (and for bench/torch_step.py):
 *   1. warm-up: run the step until at least warm_ms have passed (and at least
 *      3 times); this also estimates the time of one step;
 *   2. K = the number of steps that takes about rep_ms (at least 1);
 *   3. R repetitions of K steps, each timed as a whole with CLOCK_MONOTONIC;
 *      reset() runs (untimed) before each repetition so that all of them do
 *      the same arithmetic on the same values;
 *   4. report the median over the repetitions of (repetition time / K),
 *      plus the fastest and slowest repetition.
 * Results are printed as one line "RESULT key=value ..." that bench/run.sh
 * parses. */
#ifndef NINJAC_BENCH_UTIL_H
#define NINJAC_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double bench_now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts v). */
static inline double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct {
    double warm_ms;  /* warm-up duration */
    double rep_ms;   /* target duration of one repetition */
    int reps;        /* R */
} BenchCfg;

typedef struct {
    int64_t k;                      /* steps per repetition */
    int reps;
    double med_us, min_us, max_us;  /* per step */
} BenchStats;

#define BENCH_MAX_REPS 101

/* Times step(ctx) as described at the top of this file. reset may be NULL. */
static inline BenchStats bench_run(const BenchCfg *cfg, void (*step)(void *), void (*reset)(void *),
                                   void *ctx) {
    BenchStats st = {0};
    if (reset) { reset(ctx); }
    int64_t warm_steps = 0;
    double t0 = bench_now_s(), t = t0;
    while (warm_steps < 3 || (t - t0) * 1e3 < cfg->warm_ms) {
        step(ctx);
        warm_steps++;
        t = bench_now_s();
    }
    double est = (t - t0) / (double)warm_steps;
    int64_t k = (int64_t)(cfg->rep_ms * 1e-3 / est + 0.5);
    st.k = k < 1 ? 1 : k;
    st.reps = cfg->reps < 1 ? 1 : cfg->reps > BENCH_MAX_REPS ? BENCH_MAX_REPS : cfg->reps;
    double per[BENCH_MAX_REPS];
    for (int r = 0; r < st.reps; r++) {
        if (reset) { reset(ctx); }
        double a = bench_now_s();
        for (int64_t i = 0; i < st.k; i++) { step(ctx); }
        per[r] = (bench_now_s() - a) * 1e6 / (double)st.k;
    }
    st.min_us = st.max_us = per[0];
    for (int r = 1; r < st.reps; r++) {
        if (per[r] < st.min_us) { st.min_us = per[r]; }
        if (per[r] > st.max_us) { st.max_us = per[r]; }
    }
    st.med_us = bench_median(per, st.reps);
    return st;
}

static inline void bench_print_stats(const BenchStats *st) {
    printf(" reps=%d k=%lld us_med=%.3f us_min=%.3f us_max=%.3f steps_per_s=%.1f", st->reps,
           (long long)st->k, st->med_us, st->min_us, st->max_us, 1e6 / st->med_us);
}

/* Matmul FLOPs of one training step of the exercise-4 MLP (see bench/README.md):
 * forward   2*n*BE*H (embcat @ W1) + 2*n*H*V (h @ W2);
 * backward  the same twice: dh and dW2 from dlogits, dembcat and dW1 from dhprebn
 *           (dembcat is needed: it carries the gradient on to C).
 * total 6*n*H*(BE+V); with BE = 30, V = 27: 342*n*H. */
static inline double bench_step_flops(double n, double be, double h, double v) {
    return 6.0 * n * h * (be + v);
}

/* Parses "--name value" options into doubles: returns 0, or -1 after a message. */
static inline int bench_opt(int argc, char **argv, const char *name, double *out) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            char *end;
            if (i + 1 >= argc) { fprintf(stderr, "error: %s needs a value\n", name); return -1; }
            *out = strtod(argv[i + 1], &end);
            if (*end || end == argv[i + 1]) {
                fprintf(stderr, "error: bad value '%s' for %s\n", argv[i + 1], name);
                return -1;
            }
        }
    }
    return 0;
}

/* Every argument must be a known "--name value" pair. */
static inline int bench_check_args(int argc, char **argv, int first, const char *const *known) {
    for (int i = first; i < argc; i += 2) {
        int ok = 0;
        for (const char *const *k = known; *k; k++) { ok |= strcmp(argv[i], *k) == 0; }
        if (!ok || i + 1 >= argc) {
            fprintf(stderr, "error: unknown or incomplete argument '%s'\n", argv[i]);
            return -1;
        }
    }
    return 0;
}

#endif
