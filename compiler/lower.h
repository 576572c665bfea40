/* lower.h - shared by the files that lower the AST to tensor IR (ir.c,
 * scope.c, init.c, lower.c, analysis.c): the symbol table, the lowering
 * context and the values expressions evaluate to. Private to those files;
 * the rest of the compiler sees build_model (ninjac.h). */
#ifndef NINJAC_LOWER_H
#define NINJAC_LOWER_H

#include "ninjac.h"

/* ---- symbols: a hash table from names to what they denote ---- */

typedef enum {
    SYM_DIM,
    SYM_TENSOR,
    SYM_SCALAR,
    SYM_HIDDEN,     /* a temporary's name */
    SYM_POISON,     /* its line had an error: uses fail quietly, not once more each */
    SYM_LIST,       /* a Python list of tensors: hiddens = [], hiddens.append(h) */
    SYM_RANGE,      /* pos = torch.arange(t).unsqueeze(0): indices that pick rows of a table */
} SymKind;

typedef struct {
    const char *name;
    SymKind kind;
    Dim *dim;
    Tensor *tensor;
    Scalar scalar;
    Vec *list;              /* SYM_LIST: Tensor*, shared as Python shares a list */
    int ones;               /* SYM_RANGE: dims of size 1 in front of it (.unsqueeze(0)) */
    const char *version;    /* SYM_TENSOR: the name its tensor takes when the name is bound again (x_l46) */
    Loc loc;
} Sym;

typedef struct {
    Sym **slots;
    int cap, len;
} SymTable;

/* ---- lowering context and values ---- */

typedef struct {
    Model *m;
    SymTable syms;
    const Stmt *stmt;       /* the line being lowered */
    Vec line_temps;         /* tensors the current line created */
    const char *trip;       /* inside for loops: "_i2" (nested: "_i2_k0"), for version names */
    bool too_big;           /* MAX_OPS passed: lowering stops */
    bool stacking;          /* cat_parts works for torch.stack: its diagnostics say so */
} Ctx;

typedef enum {
    V_ERROR,    /* already reported */
    V_SCALAR,
    V_TENSOR,
    V_RANGE,    /* range(n) */
    V_MODULE,   /* torch, F */
    V_SHAPE,    /* x.shape */
    V_MAX,      /* x.max(...): needs .values */
    V_LIST,     /* [a, b] as written: its nodes, evaluated by whoever takes it */
    V_TENSORS,  /* a Python list or tuple of tensors: a list built by [] and
                 * .append(), the parts of .split(); items holds Tensor* */
    V_NONE,     /* what .append() returns */
} ValKind;

typedef struct {
    ValKind kind;
    Scalar s;       /* V_SCALAR, V_RANGE (its length) */
    Tensor *t;      /* V_TENSOR, V_SHAPE, V_MAX */
    const char *module;
    Node *node;     /* V_LIST */
    Vec *items;     /* V_TENSORS: Tensor*, in order */
    int ones;       /* V_RANGE: dims of size 1 in front (torch.arange(t).unsqueeze(0) is [1, t]) */
} Val;

static const Val ERR = {.kind = V_ERROR};

static inline Val scalar_val(Scalar s) { return (Val){.kind = V_SCALAR, .s = s}; }
static inline Val tensor_val(Tensor *t) { return (Val){.kind = V_TENSOR, .t = t}; }
static inline Scalar int_scalar(int64_t v) { return (Scalar){.value = (double)v, .is_int = true}; }

/* ---- ir.c: tensors and ops, their constructors and size checks ---- */
uint32_t batch_axes(const Tensor *t);
const char *describe(const Tensor *t);
Tensor *new_tensor(Ctx *c, TensorKind kind, DType dtype, int rank, const int64_t *shape, const bool *batch, Loc loc);
Op *new_op(Ctx *c, OpKind kind, Tensor *out, Tensor *a, Tensor *b, Loc loc);
bool check_size(Tensor *t, Loc loc);
Val unary_op(Ctx *c, OpKind kind, Tensor *a, Scalar k, Loc loc);
Val batch_mismatch(const Tensor *fixed, int fixed_dim, const Tensor *rows, Loc loc);
Val binary_op(Ctx *c, OpKind kind, Tensor *a, Tensor *b, Loc loc, Loc a_loc, Loc b_loc);

/* ---- scope.c: the symbol table, suggestions for unknown names, declarations ---- */
Sym *sym_find(SymTable *t, const char *name);
Sym *sym_add(SymTable *t, const char *name, SymKind kind, Loc loc);
const char *suggest_dim(const Model *m, const char *name);
Val lookup(Ctx *c, Node *n);
bool reserved(const char *name);
bool declare(Ctx *c, const char *name, Loc loc);
void declare_dim(Ctx *c, const Stmt *s, Define *defs, int ndefs);
bool declared_shape(Ctx *c, const Stmt *s, int64_t *shape, bool *batch);
void declare_input(Ctx *c, const Stmt *s);

/* ---- init.c: a param's init as PyTorch evaluates it ---- */
void declare_param(Ctx *c, const Stmt *s, Vec *inits);

/* ---- lower.c: expressions and forward lines to ops ---- */
bool eval_int(Ctx *c, Node *n, int64_t *out, Scalar *full);
bool reduce_axes(Ctx *c, Tensor *t, Node *dim, uint32_t *axes);   /* dim: an int, a list, or NULL (all) */
Op *reduce_op(Ctx *c, OpKind kind, Tensor *t, uint32_t axes, bool keepdim, Loc loc);
Val eval(Ctx *c, Node *n);
/* A list of tensors as torch.cat and torch.stack take it: a literal [a, b]
 * or (a, b), or a value that is V_TENSORS. Float tensors only. */
bool tensor_list(Ctx *c, Node *n, Vec *out);
/* An index assignment `x[...] = value` (item 5 of issue 12): lowers it and
 * returns x's new version, which the caller binds to x's name. */
Val index_assign(Ctx *c, Node *target, Node *value);
/* torch.cat of parts along dim k, each part's shape the first's outside dim
 * k; list is where the parts were written (an N_LIST: each item's place) */
Val cat_parts(Ctx *c, Tensor **parts, int nparts, int k, Node *list, Loc dim_loc, Loc loc);

/* ---- shape: lower_shape.c, views, slices, transposes, stacking, indexing ---- */
Val view(Ctx *c, Tensor *t, Node *call);
/* x[...] is basic indexing (ints, slices, ...): decided before evaluating */
bool basic_index(Ctx *c, Node *n);
Val slice_index(Ctx *c, Tensor *x, Node *n);
/* x[n]'s parts, per dim of x: read at start[d] + step[d] * k (step 0: the
 * dim is selected); the result's shape and batch flags, rank out_rank.
 * Reports and returns false on a bad part. */
bool index_parts(Ctx *c, Tensor *x, Node *n, int64_t *start, int64_t *step, int64_t *shape, bool *batch,
                 int *out_rank);
Val range_rows(Ctx *c, Tensor *x, Val range, Node *n);
Val range_unsqueeze(Ctx *c, Val range, Node *call);
Val arange(Ctx *c, Node *call);
Val split(Ctx *c, Tensor *x, Node *arg, Node *dim, Loc loc);   /* x.split(k, dim): a tuple of slices */
Val one_hot(Ctx *c, Node *call);
bool bind_args(Node *call, const char *const *params, Node **bound);   /* lower.c */

/* ---- shape (perm): lower_perm.c, .permute .transpose .unsqueeze .squeeze .contiguous .expand ---- */
Val perm_method(Ctx *c, Tensor *t, OpKind kind, const char *fn, Node *call);
/* ---- fn: more of lower.c's helpers that lower_nn.c shares ---- */
bool eval_bool(Ctx *c, Node *n, bool *out);
Tensor *expect_tensor(Ctx *c, Node *n);
Tensor *any_tensor(Ctx *c, Node *n);   /* of any dtype: masks and integer inputs too */
int normalize_dim(Tensor *t, int64_t d, Loc loc);
bool power_op(double exponent, OpKind *kind);

/* ---- fn (items 4-5): lower_nn.c: math.*, torch.pow, F.layer_norm, torch.zeros_like ---- */
/* Lowers module.fn(...) when it is one of lower_nn.c's (sets *v, true);
 * false leaves the call to module_call. */
bool nn_module_call(Ctx *c, const char *module, const char *fn, Node *call, Val *v);
Val clamp(Ctx *c, Tensor *self, Node *call);
Val log_softmax(Ctx *c, Tensor *self, Node *call);   /* x.log_softmax(dim) (self) or F.log_softmax(x, dim) */
Val logsumexp(Ctx *c, Tensor *self, Node *call);     /* x.logsumexp(dim, keepdim) or torch.logsumexp(x, ...) */   /* x.clamp(min, max) (self) or torch.clamp(x, ...) (NULL) */
Val math_constant(Node *attr);   /* math.pi, math.e, ... */

/* ---- rnn (issue 12 item 5): lower_int.c, computed integer tensors ---- */
Val roll(Ctx *c, Node *call);   /* torch.roll of an integer tensor */
/* t is no computed integer tensor, or reports that it cannot be `use`d */
bool not_computed(const Tensor *t, const char *use, Loc loc);
/* ---- mask (issue 12 item 7): lower_mask.c, comparisons, masked_fill, float('-inf'),
 * torch.ones, torch.zeros, torch.tril ---- */
bool comparison(BinOp op);
Val compare(Ctx *c, BinOp op, Val a, Val b, Node *n);   /* a or b a tensor */
Val float_call(Ctx *c, Node *call);
Val masked_fill(Ctx *c, Tensor *x, Node *call);
bool mask_module_call(Ctx *c, const char *module, const char *fn, Node *call, Val *v);
bool keeps_mask(const char *fn);   /* a reshape: x.view() of a mask is a mask */
bool mask_method(Ctx *c, Tensor *t, const char *fn, Node *call, Val *v);
Val mask_result(Tensor *receiver, Val v);   /* a mask's reshape is a mask */

/* ---- analysis.c: after lowering: dependencies, batch statistics, dead temporaries ---- */
void mark_dependencies(Model *m);
void drop_ops_since(Model *m, int ops, int tensors);
void drop_dead_temps(Model *m);
/* Removes the tensors marked dead (by id) and the ops computing them; renumbers the rest. */
void drop_tensors(Model *m, const bool *dead);

#endif
