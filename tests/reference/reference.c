/* reference.c - hand-written forward and backward passes of the notebook's
 * MLP (see reference.h). Every loop nest is one line of the notebook; sums
 * are sequential accumulations from zero in increasing index order, so the
 * float build is bit-for-bit reproducible by any code that follows the same
 * float expressions (and calls the same libm and BLAS routines). */
#include "reference.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(REF_DOUBLE) && REF_DOUBLE
#define GEMM cblas_dgemm
#define SQRT sqrt
#define TANH tanh
#define EXP exp
#define LOG log
#define POW pow
#define L(x) x              /* literal of type real */
#else
#define GEMM cblas_sgemm
#define SQRT sqrtf
#define TANH tanhf
#define EXP expf
#define LOG logf
#define POW powf
#define L(x) x##f
#endif

#define BN_EPS L(1e-5)

#if defined(REF_FDHOOK) && REF_FDHOOK
RefPerturb ref_perturb;
static void perturb(const char *name, real *x) {
    if (ref_perturb.name && strcmp(ref_perturb.name, name) == 0) {
        x[ref_perturb.index] += ref_perturb.delta;
    }
}
#define PERTURB(name, x) perturb(name, x)
#else
#define PERTURB(name, x) ((void)0)
#endif

/* ------------------------------------------------------------------------ */
/* small shared pieces */

/* out[j] = sum_i x[i][j], x [rows, cols]; sequential in i from 0. */
static void col_sums(const real *x, int rows, int cols, real *out) {
    for (int j = 0; j < cols; j++) { out[j] = L(0.0); }
    for (int i = 0; i < rows; i++) {
        const real *xi = x + (size_t)i * cols;
        for (int j = 0; j < cols; j++) { out[j] += xi[j]; }
    }
}

/* emb[i][k][e] = C[Xb[i][k]][e]   emb [rows, B, E] */
static void embed(const real *C, const int32_t *Xb, int rows, int B, int E, real *emb) {
    for (int i = 0; i < rows; i++) {
        for (int k = 0; k < B; k++) {
            const real *src = C + (size_t)Xb[(size_t)i * B + k] * E;
            real *dst = emb + ((size_t)i * B + k) * E;
            for (int e = 0; e < E; e++) { dst[e] = src[e]; }
        }
    }
}

/* out [rows, cols] = x [rows, inner] @ w [inner, cols], then out += b [cols] */
static void linear(const real *x, const real *w, const real *b, int rows, int inner,
                   int cols, real *out) {
    GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, cols, inner, L(1.0),
         x, inner, w, cols, L(0.0), out, cols);
    for (int i = 0; i < rows; i++) {
        real *oi = out + (size_t)i * cols;
        for (int j = 0; j < cols; j++) { oi[j] = oi[j] + b[j]; }
    }
}

/* index of the first maximum of x[0..cols) */
static int argmax(const real *x, int cols) {
    int best = 0;
    for (int j = 1; j < cols; j++) {
        if (x[j] > x[best]) { best = j; }
    }
    return best;
}

/* Backward of out = x @ w + b for the parameters and the input:
 * dx [rows, inner] = dout @ w^T; dw [inner, cols] = x^T @ dout; db = dout.sum(0) */
static void linear_backward(const real *x, const real *w, const real *dout, int rows,
                            int inner, int cols, real *dx, real *dw, real *db) {
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, rows, inner, cols, L(1.0),
         dout, cols, w, cols, L(0.0), dx, inner);
    GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, inner, cols, rows, L(1.0),
         x, inner, dout, cols, L(0.0), dw, cols);
    col_sums(dout, rows, cols, db);
}

/* dC[Xb[i][k]][e] += demb[i][k][e], dC zeroed first; loop order i, k, e */
static void embed_backward(const real *demb, const int32_t *Xb, int rows, int B, int V,
                           int E, real *dC) {
    memset(dC, 0, sizeof(real) * (size_t)V * E);
    for (int i = 0; i < rows; i++) {
        for (int k = 0; k < B; k++) {
            real *dst = dC + (size_t)Xb[(size_t)i * B + k] * E;
            const real *src = demb + ((size_t)i * B + k) * E;
            for (int e = 0; e < E; e++) { dst[e] += src[e]; }
        }
    }
}

/* ------------------------------------------------------------------------ */
/* exercise 1: forward */

void ref_forward(const RefDims *d, const RefParams *p, const int32_t *Xb,
                 const int32_t *Yb, RefActs *a) {
    const int n = d->n, B = d->B, V = d->V, E = d->E, H = d->H, BE = B * E;

    // emb = C[Xb]                                   [n, B, E]
    embed(p->C, Xb, n, B, E, a->emb);
    PERTURB("emb", a->emb);
    // embcat = emb.view(n, -1)                      [n, B*E] (same buffer)
    PERTURB("embcat", a->emb);
    // hprebn = embcat @ W1 + b1                     [n, H]
    linear(a->emb, p->W1, p->b1, n, BE, H, a->hprebn);
    PERTURB("hprebn", a->hprebn);
    // bnmeani = 1/n*hprebn.sum(0, keepdim=True)     [1, H]
    col_sums(a->hprebn, n, H, a->bnmeani);
    const real inv_n = (real)(1.0 / n);
    for (int j = 0; j < H; j++) { a->bnmeani[j] = inv_n * a->bnmeani[j]; }
    PERTURB("bnmeani", a->bnmeani);
    // bndiff = hprebn - bnmeani                     [n, H]
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < H; j++) {
            a->bndiff[i * H + j] = a->hprebn[i * H + j] - a->bnmeani[j];
        }
    }
    PERTURB("bndiff", a->bndiff);
    // bndiff2 = bndiff**2                           [n, H]
    for (int ij = 0; ij < n * H; ij++) { a->bndiff2[ij] = a->bndiff[ij] * a->bndiff[ij]; }
    PERTURB("bndiff2", a->bndiff2);
    // bnvar = 1/(n-1)*(bndiff2).sum(0, keepdim=True)  [1, H]  (Bessel)
    col_sums(a->bndiff2, n, H, a->bnvar);
    const real inv_nm1 = (real)(1.0 / (n - 1));
    for (int j = 0; j < H; j++) { a->bnvar[j] = inv_nm1 * a->bnvar[j]; }
    PERTURB("bnvar", a->bnvar);
    // bnvar_inv = (bnvar + 1e-5)**-0.5              [1, H]
    for (int j = 0; j < H; j++) {
        a->u[j] = a->bnvar[j] + BN_EPS;
        a->bnvar_inv[j] = L(1.0) / SQRT(a->u[j]);
    }
    PERTURB("bnvar_inv", a->bnvar_inv);
    // bnraw = bndiff * bnvar_inv                    [n, H]
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < H; j++) {
            a->bnraw[i * H + j] = a->bndiff[i * H + j] * a->bnvar_inv[j];
        }
    }
    PERTURB("bnraw", a->bnraw);
    // hpreact = bngain * bnraw + bnbias             [n, H]
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < H; j++) {
            real t2 = p->bngain[j] * a->bnraw[i * H + j];
            a->hpreact[i * H + j] = t2 + p->bnbias[j];
        }
    }
    PERTURB("hpreact", a->hpreact);
    // h = torch.tanh(hpreact)                       [n, H]
    for (int ij = 0; ij < n * H; ij++) { a->h[ij] = TANH(a->hpreact[ij]); }
    PERTURB("h", a->h);
    // logits = h @ W2 + b2                          [n, V]
    linear(a->h, p->W2, p->b2, n, H, V, a->logits);
    PERTURB("logits", a->logits);
    // logit_maxes = logits.max(1, keepdim=True).values   [n, 1]
    for (int i = 0; i < n; i++) {
        a->logit_maxes[i] = a->logits[i * V + argmax(a->logits + i * V, V)];
    }
    PERTURB("logit_maxes", a->logit_maxes);
    // norm_logits = logits - logit_maxes            [n, V]
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < V; j++) {
            a->norm_logits[i * V + j] = a->logits[i * V + j] - a->logit_maxes[i];
        }
    }
    PERTURB("norm_logits", a->norm_logits);
    // counts = norm_logits.exp()                    [n, V]
    for (int ij = 0; ij < n * V; ij++) { a->counts[ij] = EXP(a->norm_logits[ij]); }
    PERTURB("counts", a->counts);
    // counts_sum = counts.sum(1, keepdims=True)     [n, 1]
    for (int i = 0; i < n; i++) {
        real acc = L(0.0);
        for (int j = 0; j < V; j++) { acc += a->counts[i * V + j]; }
        a->counts_sum[i] = acc;
    }
    PERTURB("counts_sum", a->counts_sum);
    // counts_sum_inv = counts_sum**-1               [n, 1]
    for (int i = 0; i < n; i++) { a->counts_sum_inv[i] = L(1.0) / a->counts_sum[i]; }
    PERTURB("counts_sum_inv", a->counts_sum_inv);
    // probs = counts * counts_sum_inv               [n, V]
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < V; j++) {
            a->probs[i * V + j] = a->counts[i * V + j] * a->counts_sum_inv[i];
        }
    }
    PERTURB("probs", a->probs);
    // logprobs = probs.log()                        [n, V]
    for (int ij = 0; ij < n * V; ij++) { a->logprobs[ij] = LOG(a->probs[ij]); }
    PERTURB("logprobs", a->logprobs);
    // loss = -logprobs[range(n), Yb].mean()         []
    real acc = L(0.0);
    for (int i = 0; i < n; i++) { acc += a->logprobs[i * V + Yb[i]]; }
    real m = acc / (real)n;
    a->loss = -m;
}

/* ------------------------------------------------------------------------ */
/* exercise 1: manual backward, one gradient per line of the forward */

void ref_backward(const RefDims *d, const RefParams *p, const int32_t *Xb,
                  const int32_t *Yb, const RefActs *a, RefGrads *g) {
    const int n = d->n, B = d->B, V = d->V, E = d->E, H = d->H, BE = B * E;

    // dlogprobs: loss = -mean of the picked entries     [n, V]
    const real dm = L(-1.0);
    memset(g->logprobs, 0, sizeof(real) * (size_t)n * V);
    for (int i = 0; i < n; i++) { g->logprobs[i * V + Yb[i]] += dm / (real)n; }
    // dprobs = dlogprobs / probs   (d log x = 1/x)      [n, V]
    for (int ij = 0; ij < n * V; ij++) { g->probs[ij] = g->logprobs[ij] / a->probs[ij]; }
    // dcounts_sum_inv = (dprobs * counts).sum(1)        [n, 1]
    for (int i = 0; i < n; i++) {
        real acc = L(0.0);
        for (int j = 0; j < V; j++) { acc += g->probs[i * V + j] * a->counts[i * V + j]; }
        g->counts_sum_inv[i] = acc;
    }
    // dcounts = dprobs * counts_sum_inv  (first branch) [n, V]
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < V; j++) {
            g->counts[i * V + j] = g->probs[i * V + j] * a->counts_sum_inv[i];
        }
    }
    // dcounts_sum = dcounts_sum_inv * -counts_sum**-2   [n, 1]
    for (int i = 0; i < n; i++) {
        g->counts_sum[i] = g->counts_sum_inv[i] *
                           (L(-1.0) / (a->counts_sum[i] * a->counts_sum[i]));
    }
    // dcounts += dcounts_sum broadcast along rows (second branch)
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < V; j++) { g->counts[i * V + j] += g->counts_sum[i]; }
    }
    // dnorm_logits = dcounts * counts   (d exp x = exp x)   [n, V]
    for (int ij = 0; ij < n * V; ij++) { g->norm_logits[ij] = g->counts[ij] * a->counts[ij]; }
    // dlogits = dnorm_logits (first branch); dlogit_maxes = -dnorm_logits.sum(1)
    for (int ij = 0; ij < n * V; ij++) { g->logits[ij] = g->norm_logits[ij]; }
    for (int i = 0; i < n; i++) {
        real acc = L(0.0);
        for (int j = 0; j < V; j++) { acc -= g->norm_logits[i * V + j]; }
        g->logit_maxes[i] = acc;
    }
    // dlogits += one_hot(argmax) * dlogit_maxes  (second branch, through max)
    for (int i = 0; i < n; i++) {
        g->logits[i * V + argmax(a->logits + i * V, V)] += g->logit_maxes[i];
    }
    // logits = h @ W2 + b2: dh = dlogits @ W2^T, dW2 = h^T @ dlogits, db2 = dlogits.sum(0)
    linear_backward(a->h, p->W2, g->logits, n, H, V, g->h, g->W2, g->b2);
    // dhpreact = dh * (1 - h**2)   (d tanh)            [n, H]
    for (int ij = 0; ij < n * H; ij++) {
        g->hpreact[ij] = g->h[ij] * (L(1.0) - a->h[ij] * a->h[ij]);
    }
    // hpreact = bngain * bnraw + bnbias
    // dbnbias = dhpreact.sum(0)  [1, H]
    col_sums(g->hpreact, n, H, g->bnbias);
    // dbngain = (dhpreact * bnraw).sum(0)  [1, H]
    for (int j = 0; j < H; j++) { g->bngain[j] = L(0.0); }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < H; j++) { g->bngain[j] += g->hpreact[i * H + j] * a->bnraw[i * H + j]; }
    }
    // dbnraw = dhpreact * bngain  [n, H]
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < H; j++) { g->bnraw[i * H + j] = g->hpreact[i * H + j] * p->bngain[j]; }
    }
    // bnraw = bndiff * bnvar_inv
    // dbndiff = dbnraw * bnvar_inv (first branch)  [n, H]
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < H; j++) { g->bndiff[i * H + j] = g->bnraw[i * H + j] * a->bnvar_inv[j]; }
    }
    // dbnvar_inv = (dbnraw * bndiff).sum(0)  [1, H]
    for (int j = 0; j < H; j++) { g->bnvar_inv[j] = L(0.0); }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < H; j++) { g->bnvar_inv[j] += g->bnraw[i * H + j] * a->bndiff[i * H + j]; }
    }
    // bnvar_inv = (bnvar + 1e-5)**-0.5: dbnvar = dbnvar_inv * -0.5*(bnvar + 1e-5)**-1.5
    for (int j = 0; j < H; j++) {
        g->bnvar[j] = g->bnvar_inv[j] * (L(-0.5) * POW(a->u[j], L(-1.5)));
    }
    // bnvar = 1/(n-1) * bndiff2.sum(0): dbndiff2 = 1/(n-1) * dbnvar broadcast  [n, H]
    const real inv_nm1 = (real)(1.0 / (n - 1));
    for (int j = 0; j < H; j++) {
        real ds = g->bnvar[j] * inv_nm1;
        for (int i = 0; i < n; i++) { g->bndiff2[i * H + j] = ds; }
    }
    // bndiff2 = bndiff**2: dbndiff += dbndiff2 * 2*bndiff (second branch)
    for (int ij = 0; ij < n * H; ij++) {
        g->bndiff[ij] += g->bndiff2[ij] * (L(2.0) * a->bndiff[ij]);
    }
    // bndiff = hprebn - bnmeani: dhprebn = dbndiff; dbnmeani = -dbndiff.sum(0)
    for (int ij = 0; ij < n * H; ij++) { g->hprebn[ij] = g->bndiff[ij]; }
    for (int j = 0; j < H; j++) { g->bnmeani[j] = L(0.0); }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < H; j++) { g->bnmeani[j] -= g->bndiff[i * H + j]; }
    }
    // bnmeani = 1/n * hprebn.sum(0): dhprebn += 1/n * dbnmeani broadcast
    const real inv_n = (real)(1.0 / n);
    for (int j = 0; j < H; j++) {
        real ds2 = g->bnmeani[j] * inv_n;
        for (int i = 0; i < n; i++) { g->hprebn[i * H + j] += ds2; }
    }
    // hprebn = embcat @ W1 + b1: dembcat, dW1, db1  (demb = dembcat.view(n, B, E))
    linear_backward(a->emb, p->W1, g->hprebn, n, BE, H, g->emb, g->W1, g->b1);
    // emb = C[Xb]: dC[Xb[i][k]] += demb[i][k]
    embed_backward(g->emb, Xb, n, B, V, E, g->C);
}

/* ------------------------------------------------------------------------ */
/* exercise 2: cross entropy backward in one step */

void ref_ce_backward(const RefDims *d, const real *logits, const int32_t *Yb,
                     real *dlogits) {
    const int n = d->n, V = d->V;
    // dlogits = F.softmax(logits, 1); dlogits[range(n), Yb] -= 1; dlogits /= n
    for (int i = 0; i < n; i++) {
        const real *li = logits + (size_t)i * V;
        real *di = dlogits + (size_t)i * V;
        real mx = li[argmax(li, V)];
        real sum = L(0.0);
        for (int j = 0; j < V; j++) {
            di[j] = EXP(li[j] - mx);
            sum += di[j];
        }
        for (int j = 0; j < V; j++) { di[j] = di[j] / sum; }
        di[Yb[i]] -= L(1.0);
        for (int j = 0; j < V; j++) { di[j] = di[j] / (real)n; }
    }
}

/* ------------------------------------------------------------------------ */
/* exercise 3: batch norm backward in one step */

void ref_bn_backward(const RefDims *d, const real *bngain, const real *bnvar_inv,
                     const real *bnraw, const real *dhpreact, real *dhprebn,
                     real *dbngain, real *dbnbias) {
    const int n = d->n, H = d->H;
    // dhprebn = bngain*bnvar_inv/n * (n*dhpreact - dhpreact.sum(0)
    //                                 - n/(n-1)*bnraw*(dhpreact*bnraw).sum(0))
    real *sum_d = malloc(sizeof(real) * (size_t)H);   /* dhpreact.sum(0) */
    real *sum_dr = malloc(sizeof(real) * (size_t)H);  /* (dhpreact*bnraw).sum(0) */
    if (!sum_d || !sum_dr) { abort(); }
    col_sums(dhpreact, n, H, sum_d);
    for (int j = 0; j < H; j++) { sum_dr[j] = L(0.0); }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < H; j++) { sum_dr[j] += dhpreact[i * H + j] * bnraw[i * H + j]; }
    }
    const real rn = (real)n;
    const real bessel = (real)((double)n / (n - 1));
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < H; j++) {
            real scale = bngain[j] * bnvar_inv[j] / rn;
            real inner = rn * dhpreact[i * H + j] - sum_d[j] - bessel * bnraw[i * H + j] * sum_dr[j];
            dhprebn[i * H + j] = scale * inner;
        }
    }
    // the same sums are the gradients of the affine part of the layer
    if (dbnbias) { memcpy(dbnbias, sum_d, sizeof(real) * (size_t)H); }
    if (dbngain) { memcpy(dbngain, sum_dr, sizeof(real) * (size_t)H); }
    free(sum_d);
    free(sum_dr);
}

/* ------------------------------------------------------------------------ */
/* exercise 4: compact forward, fused backward, training step */

/* loss_i = logsumexp(logits[i]) - logits[i][y], computed stably */
static real cross_entropy_row(const real *li, int V, int y) {
    real mx = li[argmax(li, V)];
    real sum = L(0.0);
    for (int j = 0; j < V; j++) { sum += EXP(li[j] - mx); }
    return (mx + LOG(sum)) - li[y];
}

void ref_forward_fused(const RefDims *d, const RefParams *p, const int32_t *Xb,
                       const int32_t *Yb, RefActs *a) {
    const int n = d->n, B = d->B, V = d->V, E = d->E, H = d->H, BE = B * E;
    // emb = C[Xb]; embcat = emb.view(n, -1)          [n, B*E]
    embed(p->C, Xb, n, B, E, a->emb);
    // hprebn = embcat @ W1 + b1                      [n, H]
    linear(a->emb, p->W1, p->b1, n, BE, H, a->hprebn);
    // bnmean = hprebn.mean(0, keepdim=True)          [1, H]
    col_sums(a->hprebn, n, H, a->bnmeani);
    for (int j = 0; j < H; j++) { a->bnmeani[j] = a->bnmeani[j] / (real)n; }
    // bnvar = hprebn.var(0, keepdim=True, unbiased=True)   [1, H]
    for (int j = 0; j < H; j++) { a->bnvar[j] = L(0.0); }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < H; j++) {
            real dev = a->hprebn[i * H + j] - a->bnmeani[j];
            a->bnvar[j] += dev * dev;
        }
    }
    for (int j = 0; j < H; j++) { a->bnvar[j] = a->bnvar[j] / (real)(n - 1); }
    // bnvar_inv = (bnvar + 1e-5)**-0.5               [1, H]
    for (int j = 0; j < H; j++) {
        a->u[j] = a->bnvar[j] + BN_EPS;
        a->bnvar_inv[j] = L(1.0) / SQRT(a->u[j]);
    }
    // bnraw = (hprebn - bnmean) * bnvar_inv; hpreact = bngain * bnraw + bnbias; h = tanh
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < H; j++) {
            real raw = (a->hprebn[i * H + j] - a->bnmeani[j]) * a->bnvar_inv[j];
            a->bnraw[i * H + j] = raw;
            a->hpreact[i * H + j] = p->bngain[j] * raw + p->bnbias[j];
            a->h[i * H + j] = TANH(a->hpreact[i * H + j]);
        }
    }
    // logits = h @ W2 + b2                           [n, V]
    linear(a->h, p->W2, p->b2, n, H, V, a->logits);
    // loss = F.cross_entropy(logits, Yb)
    real acc = L(0.0);
    for (int i = 0; i < n; i++) { acc += cross_entropy_row(a->logits + i * V, V, Yb[i]); }
    a->loss = acc / (real)n;
}

void ref_backward_fused(const RefDims *d, const RefParams *p, const int32_t *Xb,
                        const int32_t *Yb, const RefActs *a, RefGrads *g) {
    const int n = d->n, B = d->B, V = d->V, E = d->E, H = d->H, BE = B * E;
    // dlogits: exercise 2
    ref_ce_backward(d, a->logits, Yb, g->logits);
    // dh = dlogits @ W2.T; dW2 = h.T @ dlogits; db2 = dlogits.sum(0)
    linear_backward(a->h, p->W2, g->logits, n, H, V, g->h, g->W2, g->b2);
    // dhpreact = (1.0 - h**2) * dh
    for (int ij = 0; ij < n * H; ij++) {
        g->hpreact[ij] = (L(1.0) - a->h[ij] * a->h[ij]) * g->h[ij];
    }
    // dbngain, dbnbias, dhprebn: exercise 3
    ref_bn_backward(d, p->bngain, a->bnvar_inv, a->bnraw, g->hpreact, g->hprebn,
                    g->bngain, g->bnbias);
    // dembcat = dhprebn @ W1.T; dW1 = embcat.T @ dhprebn; db1 = dhprebn.sum(0)
    linear_backward(a->emb, p->W1, g->hprebn, n, BE, H, g->emb, g->W1, g->b1);
    // dC[Xb[k, j]] += demb[k, j]
    embed_backward(g->emb, Xb, n, B, V, E, g->C);
}

real ref_train_step(const RefDims *d, RefParams *p, const int32_t *Xb,
                    const int32_t *Yb, RefActs *a, RefGrads *g, real lr) {
    ref_forward_fused(d, p, Xb, Yb, a);
    ref_backward_fused(d, p, Xb, Yb, a, g);
    // for p, grad in zip(parameters, grads): p.data += -lr * grad
    RefView pv[REF_NPARAMS], gv[REF_NFUSED];
    int np = ref_param_views(d, p, pv);
    ref_fused_grad_views(d, g, gv);   /* parameters first, same order */
    const real neg_lr = -lr;
    for (int t = 0; t < np; t++) {
        int64_t cnt = ref_view_numel(&pv[t]);
        for (int64_t k = 0; k < cnt; k++) { pv[t].data[k] += neg_lr * gv[t].data[k]; }
    }
    return a->loss;
}

/* ------------------------------------------------------------------------ */
/* inference with frozen statistics */

#define EVAL_CHUNK 4096

double ref_eval_loss(const RefDims *d, const RefParams *p, const real *bnmean,
                     const real *bnvar, const int32_t *Xb, const int32_t *Yb,
                     int64_t rows) {
    const int B = d->B, V = d->V, E = d->E, H = d->H, BE = B * E;
    real *emb = malloc(sizeof(real) * (size_t)EVAL_CHUNK * BE);
    real *hid = malloc(sizeof(real) * (size_t)EVAL_CHUNK * H);
    real *logits = malloc(sizeof(real) * (size_t)EVAL_CHUNK * V);
    real *inv = malloc(sizeof(real) * (size_t)H);
    double total = 0.0;
    if (!emb || !hid || !logits || !inv) { total = -1.0; goto done; }
    // (bnvar + 1e-5)**-0.5 with the calibrated bnvar
    for (int j = 0; j < H; j++) { inv[j] = L(1.0) / SQRT(bnvar[j] + BN_EPS); }
    for (int64_t r0 = 0; r0 < rows; r0 += EVAL_CHUNK) {
        int m = (int)(rows - r0 < EVAL_CHUNK ? rows - r0 : EVAL_CHUNK);
        embed(p->C, Xb + r0 * B, m, B, E, emb);
        linear(emb, p->W1, p->b1, m, BE, H, hid);
        // hpreact = bngain * (hpreact - bnmean) * (bnvar + 1e-5)**-0.5 + bnbias; h = tanh
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < H; j++) {
                real x = p->bngain[j] * (hid[i * H + j] - bnmean[j]) * inv[j] + p->bnbias[j];
                hid[i * H + j] = TANH(x);
            }
        }
        linear(hid, p->W2, p->b2, m, H, V, logits);
        for (int i = 0; i < m; i++) {
            total += (double)cross_entropy_row(logits + (size_t)i * V, V, Yb[r0 + i]);
        }
    }
    total /= (double)rows;
done:
    free(emb);
    free(hid);
    free(logits);
    free(inv);
    return total;
}

int ref_calibrate(const RefDims *d, const RefParams *p, const int32_t *Xb,
                  int64_t rows, real *bnmean, real *bnvar) {
    const int B = d->B, E = d->E, H = d->H, BE = B * E;
    if (rows < 2) { return -1; }
    real *emb = malloc(sizeof(real) * (size_t)EVAL_CHUNK * BE);
    real *hid = malloc(sizeof(real) * (size_t)EVAL_CHUNK * H);
    double *mean = calloc((size_t)H, sizeof(double));
    double *ss = calloc((size_t)H, sizeof(double));
    int rc = -1;
    if (!emb || !hid || !mean || !ss) { goto done; }
    // two passes over hprebn = embcat @ W1 + b1: the mean, then the squared deviations
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t r0 = 0; r0 < rows; r0 += EVAL_CHUNK) {
            int m = (int)(rows - r0 < EVAL_CHUNK ? rows - r0 : EVAL_CHUNK);
            embed(p->C, Xb + r0 * B, m, B, E, emb);
            linear(emb, p->W1, p->b1, m, BE, H, hid);
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < H; j++) {
                    double x = (double)hid[i * H + j];
                    if (pass == 0) { mean[j] += x; }
                    else { ss[j] += (x - mean[j]) * (x - mean[j]); }
                }
            }
        }
        if (pass == 0) {
            for (int j = 0; j < H; j++) { mean[j] /= (double)rows; }
        }
    }
    // bnmean = hpreact.mean(0); bnvar = hpreact.var(0, unbiased=True)
    for (int j = 0; j < H; j++) {
        bnmean[j] = (real)mean[j];
        bnvar[j] = (real)(ss[j] / (double)(rows - 1));
    }
    rc = 0;
done:
    free(emb);
    free(hid);
    free(mean);
    free(ss);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* named views and allocation */

static RefView view(const char *name, real *data, int rank, int64_t s0, int64_t s1,
                    int64_t s2) {
    RefView v = {name, data, rank, {s0, s1, s2}};
    return v;
}

int64_t ref_view_numel(const RefView *v) {
    int64_t k = 1;
    for (int r = 0; r < v->rank; r++) { k *= v->shape[r]; }
    return k;
}

int ref_param_views(const RefDims *d, const RefParams *p, RefView out[REF_NPARAMS]) {
    int k = 0;
    out[k++] = view("C", p->C, 2, d->V, d->E, 0);
    out[k++] = view("W1", p->W1, 2, (int64_t)d->B * d->E, d->H, 0);
    out[k++] = view("b1", p->b1, 1, d->H, 0, 0);
    out[k++] = view("bngain", p->bngain, 2, 1, d->H, 0);
    out[k++] = view("bnbias", p->bnbias, 2, 1, d->H, 0);
    out[k++] = view("W2", p->W2, 2, d->H, d->V, 0);
    out[k++] = view("b2", p->b2, 1, d->V, 0, 0);
    return k;
}

int ref_grad_views(const RefDims *d, const RefGrads *g, RefView out[REF_NGRADS]) {
    const int64_t n = d->n, B = d->B, V = d->V, E = d->E, H = d->H;
    int k = 0;   /* the order of the notebook's cmp() calls */
    out[k++] = view("logprobs", g->logprobs, 2, n, V, 0);
    out[k++] = view("probs", g->probs, 2, n, V, 0);
    out[k++] = view("counts_sum_inv", g->counts_sum_inv, 2, n, 1, 0);
    out[k++] = view("counts_sum", g->counts_sum, 2, n, 1, 0);
    out[k++] = view("counts", g->counts, 2, n, V, 0);
    out[k++] = view("norm_logits", g->norm_logits, 2, n, V, 0);
    out[k++] = view("logit_maxes", g->logit_maxes, 2, n, 1, 0);
    out[k++] = view("logits", g->logits, 2, n, V, 0);
    out[k++] = view("h", g->h, 2, n, H, 0);
    out[k++] = view("W2", g->W2, 2, H, V, 0);
    out[k++] = view("b2", g->b2, 1, V, 0, 0);
    out[k++] = view("hpreact", g->hpreact, 2, n, H, 0);
    out[k++] = view("bngain", g->bngain, 2, 1, H, 0);
    out[k++] = view("bnbias", g->bnbias, 2, 1, H, 0);
    out[k++] = view("bnraw", g->bnraw, 2, n, H, 0);
    out[k++] = view("bnvar_inv", g->bnvar_inv, 2, 1, H, 0);
    out[k++] = view("bnvar", g->bnvar, 2, 1, H, 0);
    out[k++] = view("bndiff2", g->bndiff2, 2, n, H, 0);
    out[k++] = view("bndiff", g->bndiff, 2, n, H, 0);
    out[k++] = view("bnmeani", g->bnmeani, 2, 1, H, 0);
    out[k++] = view("hprebn", g->hprebn, 2, n, H, 0);
    out[k++] = view("embcat", g->emb, 2, n, B * E, 0);
    out[k++] = view("W1", g->W1, 2, B * E, H, 0);
    out[k++] = view("b1", g->b1, 1, H, 0, 0);
    out[k++] = view("emb", g->emb, 3, n, B, E);
    out[k++] = view("C", g->C, 2, V, E, 0);
    return k;
}

int ref_fused_grad_views(const RefDims *d, const RefGrads *g, RefView out[REF_NFUSED]) {
    const int64_t n = d->n, B = d->B, V = d->V, E = d->E, H = d->H;
    RefParams gp = {g->C, g->W1, g->b1, g->bngain, g->bnbias, g->W2, g->b2};
    int k = ref_param_views(d, &gp, out);
    out[k++] = view("logits", g->logits, 2, n, V, 0);
    out[k++] = view("h", g->h, 2, n, H, 0);
    out[k++] = view("hpreact", g->hpreact, 2, n, H, 0);
    out[k++] = view("hprebn", g->hprebn, 2, n, H, 0);
    out[k++] = view("embcat", g->emb, 2, n, B * E, 0);
    out[k++] = view("emb", g->emb, 3, n, B, E);
    return k;
}

int ref_act_views(const RefDims *d, const RefActs *a, int fused, RefView out[REF_NACTS]) {
    const int64_t n = d->n, B = d->B, V = d->V, E = d->E, H = d->H;
    int k = 0;
    out[k++] = view("emb", a->emb, 3, n, B, E);
    out[k++] = view("embcat", a->emb, 2, n, B * E, 0);
    out[k++] = view("hprebn", a->hprebn, 2, n, H, 0);
    if (fused) {
        out[k++] = view("bnmean", a->bnmeani, 2, 1, H, 0);
        out[k++] = view("bnvar", a->bnvar, 2, 1, H, 0);
        out[k++] = view("bnvar_inv", a->bnvar_inv, 2, 1, H, 0);
        out[k++] = view("bnraw", a->bnraw, 2, n, H, 0);
        out[k++] = view("hpreact", a->hpreact, 2, n, H, 0);
        out[k++] = view("h", a->h, 2, n, H, 0);
        out[k++] = view("logits", a->logits, 2, n, V, 0);
        return k;
    }
    out[k++] = view("bnmeani", a->bnmeani, 2, 1, H, 0);
    out[k++] = view("bndiff", a->bndiff, 2, n, H, 0);
    out[k++] = view("bndiff2", a->bndiff2, 2, n, H, 0);
    out[k++] = view("bnvar", a->bnvar, 2, 1, H, 0);
    out[k++] = view("bnvar_inv", a->bnvar_inv, 2, 1, H, 0);
    out[k++] = view("bnraw", a->bnraw, 2, n, H, 0);
    out[k++] = view("hpreact", a->hpreact, 2, n, H, 0);
    out[k++] = view("h", a->h, 2, n, H, 0);
    out[k++] = view("logits", a->logits, 2, n, V, 0);
    out[k++] = view("logit_maxes", a->logit_maxes, 2, n, 1, 0);
    out[k++] = view("norm_logits", a->norm_logits, 2, n, V, 0);
    out[k++] = view("counts", a->counts, 2, n, V, 0);
    out[k++] = view("counts_sum", a->counts_sum, 2, n, 1, 0);
    out[k++] = view("counts_sum_inv", a->counts_sum_inv, 2, n, 1, 0);
    out[k++] = view("probs", a->probs, 2, n, V, 0);
    out[k++] = view("logprobs", a->logprobs, 2, n, V, 0);
    return k;
}

static real *zeros(size_t count, int *fail) {
    real *x = calloc(count ? count : 1, sizeof(real));
    if (!x) { *fail = 1; }
    return x;
}

int ref_params_alloc(const RefDims *d, RefParams *p) {
    const size_t B = d->B, V = d->V, E = d->E, H = d->H;
    int fail = 0;
    p->C = zeros(V * E, &fail);
    p->W1 = zeros(B * E * H, &fail);
    p->b1 = zeros(H, &fail);
    p->bngain = zeros(H, &fail);
    p->bnbias = zeros(H, &fail);
    p->W2 = zeros(H * V, &fail);
    p->b2 = zeros(V, &fail);
    if (fail) { ref_params_free(p); return -1; }
    return 0;
}

void ref_params_free(RefParams *p) {
    free(p->C); free(p->W1); free(p->b1); free(p->bngain); free(p->bnbias);
    free(p->W2); free(p->b2);
    memset(p, 0, sizeof *p);
}

int ref_acts_alloc(const RefDims *d, RefActs *a) {
    const size_t n = d->n, B = d->B, V = d->V, E = d->E, H = d->H;
    int fail = 0;
    memset(a, 0, sizeof *a);
    a->emb = zeros(n * B * E, &fail);
    a->hprebn = zeros(n * H, &fail);
    a->bnmeani = zeros(H, &fail);
    a->bndiff = zeros(n * H, &fail);
    a->bndiff2 = zeros(n * H, &fail);
    a->bnvar = zeros(H, &fail);
    a->u = zeros(H, &fail);
    a->bnvar_inv = zeros(H, &fail);
    a->bnraw = zeros(n * H, &fail);
    a->hpreact = zeros(n * H, &fail);
    a->h = zeros(n * H, &fail);
    a->logits = zeros(n * V, &fail);
    a->logit_maxes = zeros(n, &fail);
    a->norm_logits = zeros(n * V, &fail);
    a->counts = zeros(n * V, &fail);
    a->counts_sum = zeros(n, &fail);
    a->counts_sum_inv = zeros(n, &fail);
    a->probs = zeros(n * V, &fail);
    a->logprobs = zeros(n * V, &fail);
    if (fail) { ref_acts_free(a); return -1; }
    return 0;
}

void ref_acts_free(RefActs *a) {
    free(a->emb); free(a->hprebn); free(a->bnmeani); free(a->bndiff); free(a->bndiff2);
    free(a->bnvar); free(a->u); free(a->bnvar_inv); free(a->bnraw); free(a->hpreact);
    free(a->h); free(a->logits); free(a->logit_maxes); free(a->norm_logits);
    free(a->counts); free(a->counts_sum); free(a->counts_sum_inv); free(a->probs);
    free(a->logprobs);
    memset(a, 0, sizeof *a);
}

int ref_grads_alloc(const RefDims *d, RefGrads *g) {
    const size_t n = d->n, B = d->B, V = d->V, E = d->E, H = d->H;
    int fail = 0;
    memset(g, 0, sizeof *g);
    g->C = zeros(V * E, &fail);
    g->W1 = zeros(B * E * H, &fail);
    g->b1 = zeros(H, &fail);
    g->bngain = zeros(H, &fail);
    g->bnbias = zeros(H, &fail);
    g->W2 = zeros(H * V, &fail);
    g->b2 = zeros(V, &fail);
    g->logprobs = zeros(n * V, &fail);
    g->probs = zeros(n * V, &fail);
    g->counts_sum_inv = zeros(n, &fail);
    g->counts_sum = zeros(n, &fail);
    g->counts = zeros(n * V, &fail);
    g->norm_logits = zeros(n * V, &fail);
    g->logit_maxes = zeros(n, &fail);
    g->logits = zeros(n * V, &fail);
    g->h = zeros(n * H, &fail);
    g->hpreact = zeros(n * H, &fail);
    g->bnraw = zeros(n * H, &fail);
    g->bnvar_inv = zeros(H, &fail);
    g->bnvar = zeros(H, &fail);
    g->bndiff2 = zeros(n * H, &fail);
    g->bndiff = zeros(n * H, &fail);
    g->bnmeani = zeros(H, &fail);
    g->hprebn = zeros(n * H, &fail);
    g->emb = zeros(n * B * E, &fail);
    if (fail) { ref_grads_free(g); return -1; }
    return 0;
}

void ref_grads_free(RefGrads *g) {
    free(g->C); free(g->W1); free(g->b1); free(g->bngain); free(g->bnbias);
    free(g->W2); free(g->b2); free(g->logprobs); free(g->probs);
    free(g->counts_sum_inv); free(g->counts_sum); free(g->counts);
    free(g->norm_logits); free(g->logit_maxes); free(g->logits); free(g->h);
    free(g->hpreact); free(g->bnraw); free(g->bnvar_inv); free(g->bnvar);
    free(g->bndiff2); free(g->bndiff); free(g->bnmeani); free(g->hprebn); free(g->emb);
    memset(g, 0, sizeof *g);
}
