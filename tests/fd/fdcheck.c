/* fdcheck.c - finite-difference check of the gradients of any model that
 * ninjac compiled with --dtype f64 -O0, driven by its NinjacModel descriptor
 * alone (see fdcheck.h for how a checker is put together). A model compiled
 * with the default -O keeps only its param gradients; for it only those are
 * checked (the default mode's backward is emitted differently: first
 * contributions assign instead of accumulating).
 *
 * For one random point (params drawn from each param's own init plus a
 * small perturbation, a random valid batch) it runs forward and backward,
 * then compares the backward's gradients with central differences of the
 * loss for
 *   - every element of every param (a random sample of --max elements of
 *     bigger ones), perturbing the param itself, and
 *   - elements of every named activation (the acts table), perturbing the
 *     element through NINJAC_FD_HOOK right after the forward computes it,
 *     so that the loss changes only through the ops downstream; the
 *     gradient compared is the -O0 gradient of the same name.
 * A tensor without a gradient (it does not reach the loss) must have a
 * numerical gradient of zero, unless no param reaches it (a constant: see
 * param_free_acts). An element that is not finite (-inf where
 * masked_fill put it) is not checked: no step moves it.
 *
 * The difference quotient. Each estimate is the 5-point central stencil
 *   D(h) = (-L(x+2h) + 8 L(x+h) - 8 L(x-h) + L(x-2h)) / 12h,
 * whose truncation error is h^4 f^(5)(x) / 30. The step is adaptive: it
 * starts at h0 = 1e-2 * max(|x|, 1) (rounded down to a power of two, so
 * that x +- h is exact in most cases), and D(h0), D(h0/2), D(h0/4), ... are
 * computed (2 new loss evaluations each: the outer points of one level are
 * the inner points of the previous) until two consecutive estimates agree
 * within tol/4 relative (with the floor below); the result is their
 * Richardson extrapolation D(h/2) + (D(h/2) - D(h)) / 15, which cancels the
 * h^4 term. Why not a fixed tiny step such as 1e-6 * max(1, |x|) with the
 * 2-point stencil: its rounding error, ~1e-15 |L| / h ~ 1e-9, is ten times
 * the whole tolerance at the floor. A large first step keeps the rounding
 * noise at ~1e-15 |L| / h0 <= 1e-13 |L|; halving it only where the loss curves
 * on a smaller scale (the log of a probability of 0.005, the -0.5 power of
 * a small variance) keeps the truncation error small there too. Measured:
 * nearly every element settles at the first pair (6 loss evaluations), and
 * the worst relative error over all fd tests is ~2e-8 (specs/mlp_bn.ninja,
 * elements at the floor); with h0 = 1e-3 it was ~8e-8.
 *
 * Kinks. relu at 0 and an argmax that changes make the loss only piecewise
 * smooth. A stencil straddling a kink gives estimates that change with h,
 * so the halving simply continues until the stencil no longer straddles it
 * (up to 15 halvings: only a kink within ~h0/2^14 of the point defeats it,
 * e.g. a max whose two largest entries differ by 1e-6). An element for which
 * no two consecutive levels agree is reported as unresolved (not compared);
 * more than 1% unresolved in a tensor fails. What this cannot
 * see is a kink exactly at x, i.e. a tie present by construction (relu of a
 * tensor that is exactly 0, the max of identical values): there the
 * one-sided slopes differ and the symmetric stencil returns their mean
 * consistently at every h, while the backward (like PyTorch's) picks one
 * side. Specs under test must not build such ties; random points have them
 * with probability zero.
 *
 * The criterion: |a - n| / max(|a|, |n|, floor) < tol (1e-6), with
 * floor = 1e-5 * max(1, |L|). Why a floor: gradients that are zero in exact
 * arithmetic (the bias before a BatchNorm, the logit maxes of a softmax,
 * probabilities off the targets, anything upstream of a max's losers) come
 * out of the backward as rounding noise (~1e-18) and out of the differences
 * as the rounding noise of the loss (~1e-15 |L| / h); comparing noise with
 * noise needs an absolute scale. Why 1e-5 |L|: the differences' noise is
 * then ~1e-3 of the floor at h0 and stays below 0.1 tol at the floor for a
 * few halvings; every gradient above the floor (in the notebook's models
 * most are 1e-4 to 1e-1) is held to the full relative tolerance. The noise
 * scales with |L| (a loss of 100 has 100 times the rounding error), and so
 * does the floor. Measured on specs/mlp_bn.ninja: floor 1e-5 -> worst 2e-8;
 * floor 1e-6 -> worst 2e-7; with tol 1e-8, elements at the floor stop
 * resolving (noise). */
#include "fdcheck.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ref_rng.h"

#ifndef H0
#define H0 1e-2
#endif
#define MAX_LEVELS 16       /* h0 down to h0 / 2^15 */
#define FLOOR_REL 1e-5
#define UNRESOLVED_FRACTION 0.01

typedef struct {
    int64_t max_elems;      /* check at most this many elements per tensor */
    double tol, floor_rel, perturb;
    uint64_t seed;
    int verbose;
    const char *only;       /* check just this tensor */
} Options;

/* ---- the hook: one nudge at a time, and a record of the calls ---- */

static struct {
    int k;                  /* acts index to nudge, or -1 */
    long long elem;
    double delta;
    int recording;          /* record the calls of the first forward */
    int *calls;             /* per acts index: how many times called */
    const double **where;
    long long *count;
    int last_k, out_of_order;
} hook = {.k = -1};

void fdcheck_hook(int k, double *data, long long count) {
    if (hook.recording) {
        if (k <= hook.last_k)
            hook.out_of_order = 1;
        hook.last_k = k;
        if (k >= 0 && k < hook.recording) {
            hook.calls[k]++;
            hook.where[k] = data;
            hook.count[k] = count;
        }
    }
    if (k == hook.k && hook.elem < count)
        data[hook.elem] += hook.delta;
}

/* ---- the model at one point ---- */

typedef struct {
    const NinjacModel *m;
    double *params, *acts, *grads, *acts0;
    int32_t **inputs;
    double loss0, floor;
    long long evals;
} Point;

static int64_t numel_of(int rank, const int *shape) {
    int64_t n = 1;
    for (int d = 0; d < rank; d++)
        n *= shape[d];
    return n;
}

static double *at(double *base, size_t offset) { return (double *)((char *)base + offset); }

static double loss_of(Point *p) {
    p->m->forward(p->params, (const int32_t *const *)p->inputs, p->acts);
    p->evals++;
    return *at(p->acts, p->m->loss_offset);
}

/* What is perturbed: element elem of a param (values in place), or of
 * activation k through the hook. */
typedef struct {
    double *param;          /* the param's data, or NULL for an activation */
    int act;
    int64_t elem;
    double x0;
} Target;

static double loss_with(Point *p, const Target *t, double delta) {
    double L;
    if (t->param) {
        t->param[t->elem] = t->x0 + delta;
        L = loss_of(p);
        t->param[t->elem] = t->x0;
    } else {
        hook.k = t->act;
        hook.elem = t->elem;
        hook.delta = delta;
        L = loss_of(p);
        hook.k = -1;
    }
    return L;
}

/* dL/dx by the adaptive 5-point stencil (see the top). Returns false if no
 * two consecutive levels agreed; *est is then the last estimate. */
static bool numeric(Point *p, const Target *t, double tol, double *est, double *step) {
    double h = exp2(floor(log2(H0 * fmax(fabs(t->x0), 1.0))));
    double fp_outer = loss_with(p, t, 2 * h), fm_outer = loss_with(p, t, -2 * h);
    double prev = NAN;
    for (int level = 0; level < MAX_LEVELS; level++, h /= 2) {
        double fp = loss_with(p, t, h), fm = loss_with(p, t, -h);
        double d = (-fp_outer + 8 * fp - 8 * fm + fm_outer) / (12 * h);
        *est = d;
        *step = h;
        if (level > 0 && isfinite(d) && fabs(d - prev) <= 0.25 * tol * fmax(fabs(d), p->floor)) {
            *est = d + (d - prev) / 15;   /* Richardson: cancels the h^4 term */
            return true;
        }
        prev = d;
        fp_outer = fp;
        fm_outer = fm;
    }
    return false;
}

/* ---- one tensor ---- */

typedef struct {
    int64_t checked, unresolved, bad;
    double max_rel, max_grad;
} Result;

static const char *shape_text(int rank, const int *shape) {
    static char buf[8][64];
    static int next;
    char *s = buf[next++ % 8];
    strcpy(s, "[");
    for (int d = 0; d < rank; d++)
        snprintf(s + strlen(s), 64 - strlen(s), "%s%d", d ? ", " : "", shape[d]);
    strcat(s, "]");
    return s;
}

static const char *index_text(int rank, const int *shape, int64_t flat) {
    static char buf[4][64];
    static int next;
    char *s = buf[next++ % 4];
    int idx[NJ_MAX_RANK];
    for (int d = rank - 1; d >= 0; d--) {
        idx[d] = (int)(flat % shape[d]);
        flat /= shape[d];
    }
    strcpy(s, "[");
    for (int d = 0; d < rank; d++)
        snprintf(s + strlen(s), 64 - strlen(s), "%s%d", d ? ", " : "", idx[d]);
    strcat(s, "]");
    return s;
}

/* The elements to check: all, or max distinct ones at random. */
static int64_t choose(Rng *r, int64_t n, int64_t max, int64_t **out) {
    int64_t *all = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!all) {
        fprintf(stderr, "fdcheck: out of memory\n");
        exit(2);
    }
    for (int64_t i = 0; i < n; i++)
        all[i] = i;
    if (n <= max) {
        *out = all;
        return n;
    }
    for (int64_t i = 0; i < max; i++) {   /* a partial Fisher-Yates shuffle */
        int64_t j = i + (int64_t)rng_below(r, (uint64_t)(n - i));
        int64_t tmp = all[i];
        all[i] = all[j];
        all[j] = tmp;
    }
    *out = all;
    return max;
}

static const NjTensor *find_grad(const NinjacModel *m, const char *name) {
    char dname[300];
    snprintf(dname, sizeof dname, "d%s", name);
    for (int i = 0; i < m->ngrads; i++)
        if (!strcmp(m->grads[i].name, name))
            return &m->grads[i];
    for (int i = 0; i < m->ngrads; i++)   /* as ninjac_model.h documents the names */
        if (!strcmp(m->grads[i].name, dname))
            return &m->grads[i];
    return NULL;
}

static Result check_tensor(Point *p, Rng *r, const Options *o, const NjTensor *t, double *param_data,
                           int act_index) {
    Result res = {0};
    int64_t n = numel_of(t->rank, t->shape);
    const NjTensor *g = find_grad(p->m, t->name);
    if (g && numel_of(g->rank, g->shape) != n) {
        printf("  %s: its gradient has shape %s, the tensor %s\n", t->name, shape_text(g->rank, g->shape),
               shape_text(t->rank, t->shape));
        res.bad = 1;
        return res;
    }
    const double *grad = g ? at(p->grads, g->offset) : NULL;
    const double *x0 = param_data ? param_data : at(p->acts0, t->offset);
    for (int64_t i = 0; grad && i < n; i++)
        res.max_grad = fmax(res.max_grad, fabs(grad[i]));
    int64_t *elems;
    int64_t count = choose(r, n, o->max_elems, &elems);
    int shown = 0;
    for (int64_t s = 0; s < count; s++) {
        Target tg = {.param = param_data, .act = act_index, .elem = elems[s], .x0 = x0[elems[s]]};
        /* -inf (masked_fill before a softmax) cannot be nudged: x + h is x */
        if (!isfinite(tg.x0))
            continue;
        double num, h;
        bool ok = numeric(p, &tg, o->tol, &num, &h);
        double ana = grad ? grad[tg.elem] : 0.0;
        res.checked++;
        if (!ok) {
            res.unresolved++;
            if (o->verbose)
                printf("    unresolved %s%s: x %.6g, last estimate %.12g at h %.3g, analytic %.12g\n",
                       t->name, index_text(t->rank, t->shape, tg.elem), tg.x0, num, h, ana);
            continue;
        }
        double rel = fabs(ana - num) / fmax(fmax(fabs(ana), fabs(num)), p->floor);
        if (!(rel <= res.max_rel))
            res.max_rel = rel;   /* NaN sticks */
        if (!(rel < o->tol)) {
            res.bad++;
            if (shown++ < 5 || o->verbose)
                printf("    MISMATCH %s%s: analytic %.12g numeric %.12g (rel %.3g, x %.6g, h %.3g)%s\n", t->name,
                       index_text(t->rank, t->shape, tg.elem), ana, num, rel, tg.x0, h,
                       g ? "" : " [no gradient in the grads table]");
        }
    }
    free(elems);
    if (res.unresolved > (int64_t)(UNRESOLVED_FRACTION * (double)res.checked)) {
        printf("    %s: %lld of %lld elements unresolved (the loss is not smooth there?)\n", t->name,
               (long long)res.unresolved, (long long)res.checked);
        res.bad++;
    }
    return res;
}

/* ---- setup ---- */

static void usage(FILE *f, const char *argv0) {
    fprintf(f,
            "usage: %s [--seed S] [--max N] [--tol T] [--floor F] [--perturb P] [--only NAME] [-v]\n"
            "Finite-difference check of every gradient of the model (f64, -O0):\n"
            "  --seed S     random point (params, batch, sampled elements); default 1\n"
            "  --max N      elements checked per tensor at most (random sample); default 300\n"
            "  --tol T      relative tolerance; default 1e-6\n"
            "  --floor F    the floor of the relative error, times max(1, |loss|); default %g\n"
            "  --perturb P  stddev of the noise added to each initialized param; default 0.1\n"
            "  --only NAME  check just this param or activation\n"
            "  -v           print every mismatch and unresolved element\n",
            argv0, FLOOR_REL);
}

static bool parse_args(int argc, char **argv, Options *o) {
    *o = (Options){.max_elems = 300, .tol = 1e-6, .floor_rel = FLOOR_REL, .perturb = 0.1, .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char *end = NULL;
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout, argv[0]);
            exit(0);
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            o->verbose = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "fdcheck: %s needs a value\n", a);
            return false;
        }
        i++;
        if (!strcmp(a, "--seed"))
            o->seed = strtoull(v, &end, 10);
        else if (!strcmp(a, "--max"))
            o->max_elems = strtoll(v, &end, 10);
        else if (!strcmp(a, "--tol"))
            o->tol = strtod(v, &end);
        else if (!strcmp(a, "--floor"))
            o->floor_rel = strtod(v, &end);
        else if (!strcmp(a, "--perturb"))
            o->perturb = strtod(v, &end);
        else if (!strcmp(a, "--only")) {
            o->only = v;
            end = (char *)v + strlen(v);
        } else {
            fprintf(stderr, "fdcheck: unknown option %s\n", a);
            return false;
        }
        if (!end || *end || end == v || o->max_elems < 1 || !(o->tol > 0) || !(o->floor_rel > 0)) {
            fprintf(stderr, "fdcheck: bad value for %s: '%s'\n", a, v);
            return false;
        }
    }
    return true;
}

static void *zalloc(size_t bytes) {
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "fdcheck: out of memory\n");
        exit(2);
    }
    return p;
}

/* The activations no param reaches: those whose every element stays the
 * same when every param moves (by its own Rng, so that the elements
 * checked stay those of the seed). A constant such as makemore's BoW
 * weights (torch.zeros((B, T, T)) masked and softmaxed) has no gradient,
 * in PyTorch either, yet the loss depends on it: its numerical gradient is
 * not 0, and it is not checked. A mask that a small move leaves as it was
 * counts too; it has no gradient either. So does an activation computed
 * from the inputs alone (lecture 1's xenc = F.one_hot(xs).float()). */
static bool *param_free_acts(const Point *p, uint64_t seed) {
    const NinjacModel *m = p->m;
    double *params = zalloc(m->params_bytes), *acts = zalloc(m->acts_bytes);
    memcpy(params, p->params, m->params_bytes);
    Rng r;
    rng_seed(&r, seed ^ 0x9e3779b97f4a7c15ULL);
    for (int i = 0; i < m->nparams; i++) {
        double *x = at(params, m->params[i].t.offset);
        for (int64_t e = 0; e < numel_of(m->params[i].t.rank, m->params[i].t.shape); e++)
            x[e] += 1e-3 * (1 + fabs(x[e])) * rng_normal(&r);
    }
    m->forward(params, (const int32_t *const *)p->inputs, acts);
    bool *same = zalloc(sizeof(bool) * (size_t)(m->nacts + 1));
    for (int k = 0; k < m->nacts; k++) {
        const NjTensor *t = &m->acts[k];
        same[k] = !memcmp(at(acts, t->offset), at(p->acts0, t->offset),
                          sizeof(double) * (size_t)numel_of(t->rank, t->shape));
    }
    free(params);
    free(acts);
    return same;
}

/* Every named activation must be announced exactly once, in table order,
 * at its own place in acts and with its own element count. */
static int check_hook_calls(const NinjacModel *m, const double *acts) {
    int bad = 0;
    if (hook.out_of_order) {
        printf("  the forward called NINJAC_FD_HOOK out of acts-table order\n");
        bad++;
    }
    for (int k = 0; k < m->nacts; k++) {
        const NjTensor *t = &m->acts[k];
        const double *want = (const double *)((const char *)acts + t->offset);
        if (hook.calls[k] != 1 || hook.where[k] != want || hook.count[k] != numel_of(t->rank, t->shape)) {
            printf("  NINJAC_FD_HOOK for acts[%d] '%s': called %d times, at offset %lld (table: %zu), "
                   "%lld elements (table: %lld)\n",
                   k, t->name, hook.calls[k],
                   hook.where[k] ? (long long)((const char *)hook.where[k] - (const char *)acts) : -1LL,
                   t->offset, hook.count[k], (long long)numel_of(t->rank, t->shape));
            bad++;
        }
    }
    return bad;
}

int fdcheck_main(int argc, char **argv, const NinjacModel *m) {
    Options o;
    if (!parse_args(argc, argv, &o)) {
        usage(stderr, argv[0]);
        return 2;
    }
    if (m->elem_size != (int)sizeof(double)) {
        fprintf(stderr, "fdcheck: %s was compiled with elem_size %d; fdcheck needs --dtype f64\n", m->name,
                m->elem_size);
        return 2;
    }
    clock_t start = clock();
    Rng r;
    rng_seed(&r, o.seed);
    Point p = {.m = m};
    p.params = zalloc(m->params_bytes);
    p.acts = zalloc(m->acts_bytes);
    p.acts0 = zalloc(m->acts_bytes);
    p.grads = zalloc(m->grads_bytes);
    p.inputs = zalloc(sizeof(int32_t *) * (size_t)(m->ninputs ? m->ninputs : 1));

    /* params: the spec's own init, plus noise so that zeros() and ones()
     * do not leave symmetric (and thus degenerate) gradients */
    for (int i = 0; i < m->nparams; i++) {
        const NjParam *q = &m->params[i];
        double *x = at(p.params, q->t.offset);
        for (int64_t e = 0; e < numel_of(q->t.rank, q->t.shape); e++) {
            double v = q->dist == NJ_INIT_RANDN ? rng_normal(&r) : q->dist == NJ_INIT_UNIFORM ? rng_uniform(&r) : q->value;
            for (int k = 0; k < q->nsteps; k++) {
                double c = q->steps[k].value;
                switch (q->steps[k].op) {
                case '*': v *= c; break;
                case '/': v /= c; break;
                case '+': v += c; break;
                case '-': v -= c; break;
                default: v = c - v; break;
                }
            }
            x[e] = v + o.perturb * rng_normal(&r);
        }
    }
    /* a batch of valid inputs */
    for (int i = 0; i < m->ninputs; i++) {
        const NjInput *in = &m->inputs[i];
        int64_t n = numel_of(in->rank, in->shape);
        p.inputs[i] = zalloc(sizeof(int32_t) * (size_t)n);
        for (int64_t e = 0; e < n; e++)   /* an ignore_index target in a quarter of the rows, the first kept */
            p.inputs[i][e] = in->ignore && e && rng_below(&r, 4) == 0 ? in->ignore
                                                                      : (int32_t)rng_below(&r, (uint64_t)in->bound);
    }
    int which = -1;
    if (m->check_inputs((const int32_t *const *)p.inputs, m->batch, &which) != -1) {
        printf("FAIL: check_inputs refuses a valid batch (input %d)\n", which);
        return 1;
    }

    /* the point itself, recording the hook's calls */
    hook.recording = m->nacts;
    hook.last_k = -1;
    hook.calls = zalloc(sizeof(int) * (size_t)(m->nacts + 1));
    hook.where = zalloc(sizeof(double *) * (size_t)(m->nacts + 1));
    hook.count = zalloc(sizeof(long long) * (size_t)(m->nacts + 1));
    p.loss0 = loss_of(&p);
    hook.recording = 0;
    int bad = check_hook_calls(m, p.acts);
    memcpy(p.acts0, p.acts, m->acts_bytes);
    m->backward(p.params, (const int32_t *const *)p.inputs, p.acts, p.grads);
    p.floor = o.floor_rel * fmax(1.0, fabs(p.loss0));
    bool *param_free = param_free_acts(&p, o.seed);

    printf("fdcheck %s (%s) %s, -O%d, seed %llu: loss %.10g, floor %.3g, tol %.3g\n", m->name, m->spec_file,
           m->dims, m->opt_level, (unsigned long long)o.seed, p.loss0, p.floor, o.tol);
    if (m->opt_level != 0)
        printf("  (compiled without -O0: only the param gradients are kept, so only they are checked)\n");
    if (!isfinite(p.loss0)) {
        printf("FAIL: the loss is not finite at the random point\n");
        return 1;
    }
    printf("  %-18s %-5s %-16s %8s %6s %11s %12s\n", "tensor", "kind", "shape", "checked", "unres", "max|grad|",
           "max rel err");
    int64_t total = 0, unresolved = 0;
    double worst = 0;
    int ntensors = 0;
    for (int pass = 0; pass < 2; pass++) {
        int count = pass == 0 ? m->nparams : m->nacts;
        for (int i = 0; i < count; i++) {
            const NjTensor *t = pass == 0 ? &m->params[i].t : &m->acts[i];
            if ((o.only && strcmp(o.only, t->name) != 0) || (pass == 1 && m->opt_level != 0))
                continue;
            if (pass == 1 && param_free[i] && !find_grad(m, t->name)) {
                printf("  %-18s %-5s %-16s %8s   (no param moves it: not checked)\n", t->name, "act",
                       shape_text(t->rank, t->shape), "-");
                continue;
            }
            Result res = check_tensor(&p, &r, &o, t, pass == 0 ? at(p.params, t->offset) : NULL, pass == 0 ? -1 : i);
            printf("  %-18s %-5s %-16s %8lld %6lld %11.3g %12.3g%s%s\n", t->name, pass == 0 ? "param" : "act",
                   shape_text(t->rank, t->shape), (long long)res.checked, (long long)res.unresolved, res.max_grad,
                   res.max_rel, find_grad(m, t->name) ? "" : "  (no gradient: must be 0)", res.bad ? "  FAIL" : "");
            bad += res.bad > 0;
            total += res.checked;
            unresolved += res.unresolved;
            if (!(res.max_rel <= worst))
                worst = res.max_rel;
            ntensors++;
        }
    }
    /* the grads table may not name anything else */
    for (int i = 0; i < m->ngrads; i++) {
        bool known = false;
        for (int k = 0; k < m->nparams && !known; k++)
            known = find_grad(m, m->params[k].t.name) == &m->grads[i];
        for (int k = 0; k < m->nacts && !known; k++)
            known = find_grad(m, m->acts[k].name) == &m->grads[i];
        if (!known) {
            printf("  grads[%d] '%s' names no param or activation\n", i, m->grads[i].name);
            bad++;
        }
    }
    if (o.only && !ntensors) {
        printf("FAIL: no tensor named %s\n", o.only);
        return 1;
    }
    printf("%s: %d tensors, %lld elements (%lld unresolved), max rel err %.3g, %lld forward passes, %.1f s\n",
           bad ? "FAIL" : "OK", ntensors, (long long)total, (long long)unresolved, worst, p.evals,
           (double)(clock() - start) / CLOCKS_PER_SEC);
    for (int i = 0; i < m->ninputs; i++)
        free(p.inputs[i]);
    free(p.inputs);
    free(p.params);
    free(p.acts);
    free(p.acts0);
    free(p.grads);
    free(hook.calls);
    free(hook.where);
    free(hook.count);
    free(param_free);
    return bad ? 1 : 0;
}
