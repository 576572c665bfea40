/* ref_fdcheck.c - finite-difference check of the reference's own backward.
 *
 * Built with reference.c compiled a second time with -DREF_DOUBLE=1
 * -DREF_FDHOOK=1, so that `real` is double and ref_forward can perturb any
 * intermediate tensor. For random small models it compares
 *   - every element of all 26 exercise-1 gradients (the 7 parameters by
 *     perturbing them, the 19 intermediates through the forward's hook) and
 *   - the 7 parameter gradients of the fused backward (exercises 2-4)
 * against the 5-point central difference
 *   (-L(x+2h) + 8 L(x+h) - 8 L(x-h) + L(x-2h)) / 12h,   h = 1e-3 * max(|x|, 0.1),
 * whose truncation error is O((h/|x|)^4) relative and whose rounding error
 * is ~1e-15 * |L| / h <~ 1e-11. The check is relative error
 * |a - b| / max(|a|, |b|, 1e-4) < 1e-6; the floor keeps gradients that are
 * zero in exact arithmetic (db1, dlogit_maxes, dprobs off the targets) from
 * comparing rounding noise with rounding noise. Measured worst: ~3e-8. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"
#include "ref_rng.h"

#if !(defined(REF_DOUBLE) && REF_DOUBLE && defined(REF_FDHOOK) && REF_FDHOOK)
#error "ref_fdcheck needs reference.c built with -DREF_DOUBLE=1 -DREF_FDHOOK=1"
#endif

#define FD_H 1e-3
#define FD_HMIN 1e-1
#define FD_FLOOR 1e-4
#ifndef FD_TOL
#define FD_TOL 1e-6
#endif

typedef struct {
    RefDims d;
    RefParams p;
    int32_t *Xb, *Yb;
    RefActs a;
    int fused;   /* which forward defines the loss */
} Problem;

static double loss_of(Problem *pr) {
    if (pr->fused) { ref_forward_fused(&pr->d, &pr->p, pr->Xb, pr->Yb, &pr->a); }
    else { ref_forward(&pr->d, &pr->p, pr->Xb, pr->Yb, &pr->a); }
    return pr->a.loss;
}

/* dL/dx[k] by the 5-point stencil with step h = FD_H * max(|x0|, FD_HMIN),
 * x0 the unperturbed value: relative steps keep the stencil accurate where
 * the loss curves on the scale of x itself (log of a small probability, the
 * square root of a small variance). param is the parameter tensor, or NULL
 * for the intermediate tensor `name`, which the forward's hook perturbs. */
static double numeric(Problem *pr, real *param, int64_t k, real x0, const char *name) {
    static const double w[4] = {-1.0, 8.0, -8.0, 1.0}, s[4] = {2.0, 1.0, -1.0, -2.0};
    const double h = FD_H * fmax(fabs((double)x0), FD_HMIN);
    double acc = 0.0;
    for (int t = 0; t < 4; t++) {
        const real delta = (real)(s[t] * h);
        if (param) {
            param[k] = x0 + delta;
            acc += w[t] * loss_of(pr);
            param[k] = x0;
        } else {
            ref_perturb.name = name;
            ref_perturb.index = k;
            ref_perturb.delta = delta;
            acc += w[t] * loss_of(pr);
            ref_perturb.name = NULL;
        }
    }
    return acc / (12.0 * h);
}

/* Checks every element of the gradient gv. x0 holds the unperturbed values
 * of the tensor (param itself, or a copy of the activation). */
static double check_view(Problem *pr, const RefView *gv, real *param, const real *x0, int *bad) {
    double worst = 0.0;
    int64_t cnt = ref_view_numel(gv);
    for (int64_t k = 0; k < cnt; k++) {
        double num = numeric(pr, param, k, x0[k], gv->name);
        double ana = gv->data[k];
        double scale = fmax(fmax(fabs(num), fabs(ana)), FD_FLOOR);
        double rel = fabs(num - ana) / scale;
        if (!(rel <= worst)) { worst = rel; }   /* NaN sticks */
        if (!(rel < FD_TOL) && (*bad)++ < 10) {
            printf("  MISMATCH %s[%lld]: analytic %.12g numeric %.12g (rel %.3g)\n", gv->name,
                   (long long)k, ana, num, rel);
        }
    }
    return worst;
}

static void randn_fill(Rng *r, real *x, int64_t cnt, double scale, double shift) {
    for (int64_t i = 0; i < cnt; i++) { x[i] = (real)(shift + scale * rng_normal(r)); }
}

static int distinct_rows(const int32_t *X, int n, int B) {
    int count = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) {
            seen = memcmp(X + (size_t)i * B, X + (size_t)j * B, sizeof(int32_t) * (size_t)B) == 0;
        }
        count += !seen;
    }
    return count;
}

static int run(RefDims d, uint64_t seed) {
    Problem pr = {.d = d};
    Rng r;
    rng_seed(&r, seed);
    if (ref_params_alloc(&d, &pr.p) != 0 || ref_acts_alloc(&d, &pr.a) != 0) { abort(); }
    const int64_t BE = (int64_t)d.B * d.E;
    /* the notebook's init, with a larger W2/b2 so that no gradient is tiny */
    randn_fill(&r, pr.p.C, (int64_t)d.V * d.E, 1.0, 0.0);
    randn_fill(&r, pr.p.W1, BE * d.H, (5.0 / 3.0) / sqrt((double)BE), 0.0);
    randn_fill(&r, pr.p.b1, d.H, 0.1, 0.0);
    randn_fill(&r, pr.p.bngain, d.H, 0.1, 1.0);
    randn_fill(&r, pr.p.bnbias, d.H, 0.1, 0.0);
    randn_fill(&r, pr.p.W2, (int64_t)d.H * d.V, 0.5, 0.0);
    randn_fill(&r, pr.p.b2, d.V, 0.5, 0.0);
    pr.Xb = malloc(sizeof(int32_t) * (size_t)d.n * d.B);
    pr.Yb = malloc(sizeof(int32_t) * (size_t)d.n);
    /* At least 3 distinct rows: with only two distinct values per column,
     * batch norm maps them to a fixed pattern whatever their values, the
     * gradients upstream are ~0 and all that is left to compare is noise. */
    do {
        for (int64_t i = 0; i < (int64_t)d.n * d.B; i++) { pr.Xb[i] = (int32_t)rng_below(&r, d.V); }
    } while (distinct_rows(pr.Xb, d.n, d.B) < 3);
    for (int i = 0; i < d.n; i++) { pr.Yb[i] = (int32_t)rng_below(&r, d.V); }

    printf("n=%d block=%d vocab=%d embed=%d hidden=%d seed=%llu\n", d.n, d.B, d.V, d.E, d.H,
           (unsigned long long)seed);
    int bad = 0;
    RefGrads g;
    if (ref_grads_alloc(&d, &g) != 0) { abort(); }
    RefView pv[REF_NPARAMS], gv[REF_NGRADS];
    ref_param_views(&d, &pr.p, pv);

    /* exercise 1: the atomic backward, all 26 gradients */
    pr.fused = 0;
    ref_forward(&d, &pr.p, pr.Xb, pr.Yb, &pr.a);
    ref_backward(&d, &pr.p, pr.Xb, pr.Yb, &pr.a, &g);
    int ng = ref_grad_views(&d, &g, gv);
    RefView av[REF_NACTS];
    int na = ref_act_views(&d, &pr.a, 0, av);
    for (int k = 0; k < ng; k++) {
        real *param = NULL;
        const real *x0 = NULL;
        for (int q = 0; q < REF_NPARAMS; q++) {
            if (strcmp(pv[q].name, gv[k].name) == 0) { param = pv[q].data; x0 = param; }
        }
        real *snapshot = NULL;
        for (int q = 0; !param && q < na; q++) {
            if (strcmp(av[q].name, gv[k].name) == 0) {
                /* the unperturbed activation, before the checks overwrite it */
                size_t bytes = sizeof(real) * (size_t)ref_view_numel(&av[q]);
                ref_forward(&d, &pr.p, pr.Xb, pr.Yb, &pr.a);
                snapshot = malloc(bytes);
                memcpy(snapshot, av[q].data, bytes);
                x0 = snapshot;
            }
        }
        if (!x0) { printf("  no activation named %s\n", gv[k].name); bad++; continue; }
        double worst = check_view(&pr, &gv[k], param, x0, &bad);
        free(snapshot);
        printf("  ex1   %-15s max rel err %.3g\n", gv[k].name, worst);
    }

    /* exercises 2-4: the fused backward against the compact forward */
    pr.fused = 1;
    ref_forward_fused(&d, &pr.p, pr.Xb, pr.Yb, &pr.a);
    ref_backward_fused(&d, &pr.p, pr.Xb, pr.Yb, &pr.a, &g);
    RefView fv[REF_NFUSED];
    ref_fused_grad_views(&d, &g, fv);
    for (int q = 0; q < REF_NPARAMS; q++) {
        double worst = check_view(&pr, &fv[q], pv[q].data, pv[q].data, &bad);
        printf("  fused %-15s max rel err %.3g\n", fv[q].name, worst);
    }

    ref_grads_free(&g);
    ref_acts_free(&pr.a);
    ref_params_free(&pr.p);
    free(pr.Xb);
    free(pr.Yb);
    return bad;
}

int main(void) {
    static const RefDims cases[] = {
        /* n, block, vocab, embed, hidden */
        {7, 3, 27, 10, 5},
        {7, 3, 6, 4, 5},      /* small vocab: repeated indices in dC */
        {3, 1, 5, 3, 3},      /* tiny (n = 2 is degenerate: bnraw = +-1/sqrt(2) always) */
        {13, 2, 9, 2, 11},
    };
    int bad = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        bad += run(cases[c], 1000 + c);
    }
    if (bad) {
        printf("FAIL: %d gradient elements disagree with finite differences\n", bad);
        return 1;
    }
    printf("OK: every gradient matches finite differences (rel err < %g)\n", FD_TOL);
    return 0;
}
