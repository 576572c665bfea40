/* reference.h - hand-written C reference of the MLP in Karpathy's
 * "makemore part 4: becoming a backprop ninja" notebook.
 *
 * Written independently of ninjac's generator: the point is to have a second,
 * human-written implementation to compare generated code against. Plain
 * loops, one loop nest per line of the notebook, shapes in comments.
 *
 * Dimensions: n = batch rows, B = block size (context, 3), V = vocab (27),
 * E = embedding (10), H = hidden units. All float tensors are row-major.
 *
 * The scalar type is `real`: float by default. Compiling with -DREF_DOUBLE=1
 * makes it double (used by the finite-difference test); the float build
 * follows the float expressions of the spec exactly so that generated code can
 * match it bit for bit. Compile the float build with -ffp-contract=off (the
 * CMakeLists does), otherwise a compiler may fuse a*b+c into an FMA.
 *
 * Memory: the *_alloc functions return zeroed buffers owned by the struct;
 * release them with the matching *_free. */
#ifndef NINJAC_REFERENCE_H
#define NINJAC_REFERENCE_H

#include <stddef.h>
#include <stdint.h>

#if defined(REF_DOUBLE) && REF_DOUBLE
typedef double real;
#else
typedef float real;
#endif

typedef struct {
    int n;   /* batch rows */
    int B;   /* block size: characters of context per row */
    int V;   /* vocabulary size */
    int E;   /* embedding size */
    int H;   /* hidden units */
} RefDims;

typedef struct {
    real *C;       /* [V, E] */
    real *W1;      /* [B*E, H] */
    real *b1;      /* [H] */
    real *bngain;  /* [1, H] */
    real *bnbias;  /* [1, H] */
    real *W2;      /* [H, V] */
    real *b2;      /* [V] */
} RefParams;

/* Forward values of exercise 1. The exercise-4 forward fills the subset it
 * needs (emb, hprebn, bnmeani (the notebook's bnmean), bnvar, u, bnvar_inv,
 * bnraw, hpreact, h, logits, loss); the fused backward reads only those. */
typedef struct {
    real *emb;            /* [n, B, E]; embcat is the same buffer viewed [n, B*E] */
    real *hprebn;         /* [n, H] */
    real *bnmeani;        /* [1, H] */
    real *bndiff;         /* [n, H] */
    real *bndiff2;        /* [n, H] */
    real *bnvar;          /* [1, H] */
    real *u;              /* [1, H]  bnvar + 1e-5 */
    real *bnvar_inv;      /* [1, H] */
    real *bnraw;          /* [n, H] */
    real *hpreact;        /* [n, H] */
    real *h;              /* [n, H] */
    real *logits;         /* [n, V] */
    real *logit_maxes;    /* [n, 1] */
    real *norm_logits;    /* [n, V] */
    real *counts;         /* [n, V] */
    real *counts_sum;     /* [n, 1] */
    real *counts_sum_inv; /* [n, 1] */
    real *probs;          /* [n, V] */
    real *logprobs;       /* [n, V] */
    real loss;
} RefActs;

/* Gradients of the loss; the names are the notebook's (dC is "C", ...).
 * Parameters first. The fused backward fills the parameters plus logits, h,
 * hpreact, hprebn, embcat (== emb). */
typedef struct {
    real *C, *W1, *b1, *bngain, *bnbias, *W2, *b2;      /* shapes as RefParams */
    real *logprobs, *probs, *counts_sum_inv, *counts_sum, *counts, *norm_logits,
         *logit_maxes, *logits, *h, *hpreact, *bnraw, *bnvar_inv, *bnvar,
         *bndiff2, *bndiff, *bnmeani, *hprebn;           /* shapes as RefActs */
    real *emb;    /* [n, B, E]; dembcat is the same buffer viewed [n, B*E] */
} RefGrads;

/* A named tensor for iterating over the structs above (file I/O, tests). */
#define REF_MAX_RANK 3
typedef struct {
    const char *name;
    real *data;
    int rank;
    int64_t shape[REF_MAX_RANK];
} RefView;

#define REF_NPARAMS 7
#define REF_NGRADS 26   /* the notebook's exercise-1 gradients */
#define REF_NFUSED 13   /* 7 params + logits h hpreact hprebn embcat emb */
#define REF_NACTS 19    /* emb embcat hprebn ... logprobs (u is not the notebook's) */

/* out[] receives the views in the notebook's order; returns how many. */
int ref_param_views(const RefDims *d, const RefParams *p, RefView out[REF_NPARAMS]);
int ref_grad_views(const RefDims *d, const RefGrads *g, RefView out[REF_NGRADS]);
int ref_fused_grad_views(const RefDims *d, const RefGrads *g, RefView out[REF_NFUSED]);
/* fused = 1: the exercise-4 forward's tensors (bnmeani named bnmean). */
int ref_act_views(const RefDims *d, const RefActs *a, int fused, RefView out[REF_NACTS]);
int64_t ref_view_numel(const RefView *v);

int ref_params_alloc(const RefDims *d, RefParams *p);   /* 0 or -1 (out of memory) */
void ref_params_free(RefParams *p);
int ref_acts_alloc(const RefDims *d, RefActs *a);
void ref_acts_free(RefActs *a);
int ref_grads_alloc(const RefDims *d, RefGrads *g);
void ref_grads_free(RefGrads *g);

/* Exercise 1: the forward pass broken into atomic steps. Xb [n, B], Yb [n];
 * every value must lie in [0, V) (callers check). Sets a->loss. */
void ref_forward(const RefDims *d, const RefParams *p, const int32_t *Xb,
                 const int32_t *Yb, RefActs *a);

/* Exercise 1: the manual backward through every atomic step, filling all 26
 * gradients of g (overwritten, no accumulation across calls). */
void ref_backward(const RefDims *d, const RefParams *p, const int32_t *Xb,
                  const int32_t *Yb, const RefActs *a, RefGrads *g);

/* Exercise 2: dlogits [n, V] of F.cross_entropy(logits, Yb), in one step. */
void ref_ce_backward(const RefDims *d, const real *logits, const int32_t *Yb,
                     real *dlogits);

/* Exercise 3: dhprebn [n, H] of the batch norm layer in one step, from
 * dhpreact [n, H] and the forward's bngain [1, H], bnvar_inv [1, H],
 * bnraw [n, H]. Also writes dbngain, dbnbias [1, H] if they are not NULL. */
void ref_bn_backward(const RefDims *d, const real *bngain, const real *bnvar_inv,
                     const real *bnraw, const real *dhpreact, real *dhprebn,
                     real *dbngain, real *dbnbias);

/* Exercise 4: the notebook's compact forward (mean, unbiased var, bnvar_inv,
 * bnraw, hpreact, tanh, logits, cross entropy). Fills the RefActs subset
 * listed above and sets a->loss. */
void ref_forward_fused(const RefDims *d, const RefParams *p, const int32_t *Xb,
                       const int32_t *Yb, RefActs *a);

/* Exercise 4: backward with ex2 + ex3 and the plain parts. Needs a->emb, h,
 * bnraw, bnvar_inv, logits from either forward. Fills g's parameters and
 * logits, h, hpreact, hprebn, emb. */
void ref_backward_fused(const RefDims *d, const RefParams *p, const int32_t *Xb,
                        const int32_t *Yb, const RefActs *a, RefGrads *g);

/* One training step of exercise 4: forward, fused backward, p -= lr * grad.
 * Returns the batch loss (before the update). */
real ref_train_step(const RefDims *d, RefParams *p, const int32_t *Xb,
                    const int32_t *Yb, RefActs *a, RefGrads *g, real lr);

/* Inference with frozen batch-norm statistics over `rows` rows (any count;
 * Xb [rows, B], Yb [rows]). bnmean, bnvar [1, H]: the calibrated statistics.
 * d->n is ignored; works in chunks with its own scratch. Returns the mean
 * cross-entropy (accumulated in double), or -1 if memory runs out. */
double ref_eval_loss(const RefDims *d, const RefParams *p, const real *bnmean,
                     const real *bnvar, const int32_t *Xb, const int32_t *Yb,
                     int64_t rows);

/* Batch-norm calibration over `rows` rows (e.g. the whole training set):
 * mean and unbiased variance of hprebn, accumulated in double, chunked as
 * ref_eval_loss. Writes bnmean, bnvar [1, H]. Returns -1 if rows < 2 or
 * memory runs out, else 0. */
int ref_calibrate(const RefDims *d, const RefParams *p, const int32_t *Xb,
                  int64_t rows, real *bnmean, real *bnvar);

#if defined(REF_FDHOOK) && REF_FDHOOK
/* Test hook (finite differences of intermediate tensors): when name is not
 * NULL, ref_forward adds delta to element index of the activation of that
 * name right after computing it, so that everything downstream sees it. */
typedef struct { const char *name; int64_t index; real delta; } RefPerturb;
extern RefPerturb ref_perturb;
#endif

#endif
