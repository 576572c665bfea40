/* emit.h - shared by the files that write the generated C (emit_c.c and
 * the emit_*.c it calls): the emitter's state and its building blocks.
 * Private to them; the rest of the compiler sees emit_c (ninjac.h). */
#ifndef NINJAC_EMIT_H
#define NINJAC_EMIT_H

#include "ninjac.h"

typedef struct {
    FILE *out;
    const Model *m;
    const Backward *bw;
    const EmitOptions *opt;
    const Plan *plan;
    bool fused;             /* emitting a training function of -O: locals per the plan */
    bool backward;          /* emitting the backward: registers of the forward are recomputed */
    const char **dname;     /* per tensor id: the name of a gradient kept in a register */
    int given;              /* name_gradient_locals: the register names given so far */
    const char *real;       /* float or double */
    bool fast_math;         /* -O, float: nj_tanhf for tanh */
    bool infer;             /* batch dims run to `rows`; activations in w->, frozen in s-> */
    bool const_acts;        /* the function reads a-> (or w->) through a pointer to const */
    const Stmt *last_stmt;  /* to open a block per spec line */
    int chunk;              /* rows per inference chunk */
    bool *written;          /* backward, -O: d<tensor id> has had a contribution */
    const char *acc;        /* "+=", or "=" for the first contribution when it covers every element */
    FILE *body;             /* body_begin: the function body, in memory */
    char *body_text;
    size_t body_len;
} E;

static const char *const IDX[MAX_RANK] __attribute__((unused)) = {"i", "j", "k", "l"};

void out(E *e, int indent, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
FILE *memory_stream(char **text, size_t *len);
FILE *body_begin(E *e);
void body_end(E *e, FILE *saved, const char *const *params, int nparams, bool with_inputs);
bool mentions(const char *code, const char *name);

/* ---- emit_common.c: names, literals, references, loops, templates, provenance ---- */
const char *lit(E *e, double v);
const char *where_fn(E *e);
const char *scalar(E *e, Scalar s);
int64_t rows_factor(const E *e, const Tensor *t, int d);
const char *dimsz(E *e, const Tensor *t, int d);
const char *numel_range(E *e, const Tensor *t, int from, int to);
bool tensor_named(const Model *m, const char *name);
const char *aux_name(const E *e, const Tensor *t, const char *what);
const char *indexed(const char *b, int rank, const char *const *idx);
const char *aux_ref(E *e, const Tensor *t, const char *what, const char *const *idx);
const char *probs_ref(E *e, const Op *op, const char *const *idx);
bool is_local(const E *e, const Tensor *t);
bool is_dlocal(const E *e, const Tensor *t);
const char *ref(E *e, const Tensor *t, const char *const *idx);
const char *gref(E *e, const Tensor *t, const char *const *idx);
const char *ptr(E *e, const Tensor *t);
const char *gptr(E *e, const Tensor *t);
void broadcast_index(const Tensor *out, const Tensor *in, const char *const *out_idx, const char **in_idx);
void reduced_index(const Op *op, const char *const *in_idx, const char **out_idx);
int loops(E *e, int indent, const Tensor *t, uint32_t skip);
const char *expand(E *e, OpKind kind, const char *tmpl, const char *a, const char *b, const char *y, const char *g, const char *c);
const char *spec_code(const Stmt *s);
const char *origin(const E *e, const Stmt *s);
void open_stmt(E *e, const Stmt *s, const char *prefix);
const char *op_summary(const Op *op);

/* ---- emit_ops.c: each op's forward and each gradient contribution ---- */
void elementwise_stmt(E *e, int indent, const Op *op);
bool own_matmul(const E *e, const Op *op, int operand);
void own(E *e, const char *M, const char *N, const char *K, const char *A, const char *a_row, const char *a_col, const char *B, const char *ldb, const char *C, const char *ldc, bool acc);
const Op *shared_mean(const E *e, const Op *var);
void reduce_init(E *e, const Op *op);
void reduce_accumulate(E *e, int indent, const Op *op);
void reduce_finish(E *e, const Op *op);
void forward_op(E *e, const Op *op);
void decl_aux(E *e, const Op *op, bool chunked);
void contribute(E *e, int indent, const Tensor *target, const char *const *idx, const char *value);
void elementwise_grad_stmt(E *e, int indent, const Grad *gr);
bool gradient_is_alias(E *e, const Grad *gr);
void reduce_grad_stmt(E *e, int indent, const Grad *gr);
void cross_entropy_grad_stmt(E *e, int indent, const Grad *gr);
void backward_grad(E *e, const Grad *gr);
void rewrite_note(E *e, const Op *op);
void grad_note(E *e, const Grad *gr);

/* ---- shape: emit_shape.c, slices and selects ---- */
void forward_slice(E *e, const Op *op);
void backward_slice(E *e, const Grad *gr);
void forward_one_hot(E *e, const Op *op);
void backward_one_hot(E *e, const Grad *gr);

/* ---- shape (perm): emit_perm.c, permute and expand ---- */
void forward_permute(E *e, const Op *op);
void backward_permute(E *e, const Grad *gr);
void forward_expand(E *e, const Op *op);
void backward_expand(E *e, const Grad *gr);
/* ---- fn: emit_nn.c: F.layer_norm, torch.zeros_like ---- */
Tensor layer_norm_rows(const Op *op);   /* the shape of its per-row mean and rstd */
void aux_layer_norm(E *e, const Op *op, bool chunked);
void forward_layer_norm(E *e, const Op *op);
void backward_layer_norm(E *e, const Grad *gr);
void aux_batchnorm(E *e, const Op *op, bool chunked);
void forward_batchnorm(E *e, const Op *op);   /* rewrite.c's, exercise 3 */
void backward_batchnorm(E *e, const Grad *gr);
void forward_batchnorm_prologue(E *e, const Op *op);
void forward_batchnorm_stmt(E *e, int indent, const Op *op);
const char *batchnorm_value(E *e, const Op *op, const char *const *idx);
void decl_batchnorm_sums(E *e, const Grad *gr);
void batchnorm_sums_init(E *e, const Grad *gr);
void batchnorm_sums_stmt(E *e, int indent, const Grad *gr);
void batchnorm_grad_prologue(E *e, const Grad *gr, bool sums_made);
void batchnorm_grad_stmt(E *e, int indent, const Grad *gr);
void forward_zeros(E *e, const Op *op);     /* torch.zeros_like */
/* mask: emit_mask.c */
void forward_full(E *e, const Op *op);      /* torch.ones, torch.zeros */
void backward_full(E *e, const Grad *gr);
void forward_tril(E *e, const Op *op);
void backward_tril(E *e, const Grad *gr);
void backward_zeros(E *e, const Grad *gr);

/* ---- emit_structs.c: the model's structs and its NinjacModel descriptor ---- */
const char *shape_comment(const Model *m, const Tensor *t);
void decl_field(E *e, const char *type, const char *name, const Tensor *t, bool chunked, const char *why);
bool runs_in_inference(const Op *op);
void struct_params(E *e, const char *id);
void struct_acts(E *e, const char *id);
void struct_grads(E *e, const char *id);
void struct_stats(E *e, const char *id);
void struct_infer_ws(E *e, const char *id);
bool input_locals(E *e, const char *code);
void view_locals(E *e, const char *code);
const char *stored_as(const E *e, const Tensor *t);
void descriptor(E *e, const char *id);

/* ---- emit_step.c: the training step: forward, backward, SGD ---- */
void name_gradient_locals(E *e);
void fn_forward(E *e, const char *id);
void fn_backward(E *e, const char *id);
void fn_sgd(E *e, const char *id);

/* ---- emit_infer.c: inference, calibration, input checks ---- */
void fn_infer(E *e, const char *id);
bool has_statistics(const Model *m);
void fn_calibrate(E *e, const char *id);
void fn_check_inputs(E *e, const char *id);

#endif
