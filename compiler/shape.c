/* shape.c - lowers the AST to tensor IR, inferring and checking every shape
 * with PyTorch's rules (broadcasting, keepdim, view with -1, matmul).
 * Each forward line becomes one or more ops; the last op's tensor takes the
 * line's name, the others are temporaries named after it (hprebn_t1).
 * Memory: all IR comes from the arena. */
#include "ninjac.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- symbols: a hash table from names to what they denote ---- */

typedef enum {
    SYM_DIM,
    SYM_TENSOR,
    SYM_SCALAR,
    SYM_HIDDEN,     /* a temporary's name */
    SYM_POISON,     /* its line had an error: uses fail quietly, not once more each */
} SymKind;

typedef struct {
    const char *name;
    SymKind kind;
    Dim *dim;
    Tensor *tensor;
    Scalar scalar;
    Loc loc;
} Sym;

typedef struct {
    Sym **slots;
    int cap, len;
} SymTable;

static unsigned hash_name(const char *s) {
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static Sym **sym_slot(SymTable *t, const char *name) {
    unsigned i = hash_name(name) & (unsigned)(t->cap - 1);
    while (t->slots[i] && strcmp(t->slots[i]->name, name) != 0)
        i = (i + 1) & (unsigned)(t->cap - 1);
    return &t->slots[i];
}

static Sym *sym_find(SymTable *t, const char *name) {
    return t->cap ? *sym_slot(t, name) : NULL;
}

static void sym_grow(SymTable *t) {
    SymTable bigger = {arena_alloc(sizeof(Sym *) * (size_t)(t->cap ? t->cap * 2 : 64)),
                       t->cap ? t->cap * 2 : 64, t->len};
    for (int i = 0; i < t->cap; i++)
        if (t->slots[i])
            *sym_slot(&bigger, t->slots[i]->name) = t->slots[i];
    *t = bigger;
}

static Sym *sym_add(SymTable *t, const char *name, SymKind kind, Loc loc) {
    if (2 * (t->len + 1) > t->cap)
        sym_grow(t);
    Sym *s = arena_alloc(sizeof(Sym));
    s->name = name;
    s->kind = kind;
    s->loc = loc;
    *sym_slot(t, name) = s;
    t->len++;
    return s;
}

/* ---- lowering context and values ---- */

typedef struct {
    Model *m;
    SymTable syms;
    const Stmt *stmt;       /* the line being lowered */
    Vec line_temps;         /* tensors the current line created */
} Ctx;

typedef enum {
    V_ERROR,    /* already reported */
    V_SCALAR,
    V_TENSOR,
    V_RANGE,    /* range(n) */
    V_MODULE,   /* torch, F */
    V_SHAPE,    /* x.shape */
    V_MAX,      /* x.max(...): needs .values */
    V_LIST,     /* [a, b] */
} ValKind;

typedef struct {
    ValKind kind;
    Scalar s;       /* V_SCALAR, V_RANGE (its length) */
    Tensor *t;      /* V_TENSOR, V_SHAPE, V_MAX */
    const char *module;
    Node *node;     /* V_LIST */
} Val;

static const Val ERR = {.kind = V_ERROR};

static Val scalar_val(Scalar s) { return (Val){.kind = V_SCALAR, .s = s}; }
static Val tensor_val(Tensor *t) { return (Val){.kind = V_TENSOR, .t = t}; }
static Scalar int_scalar(int64_t v) { return (Scalar){.value = (double)v, .is_int = true}; }

int64_t tensor_numel(const Tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= t->shape[i];
    return n;
}

const char *shape_str(const Tensor *t) {
    char buf[128] = "[";
    for (int i = 0; i < t->rank; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%lld", i ? ", " : "",
                 (long long)t->shape[i]);
    strcat(buf, "]");
    return arena_strdup(buf);
}

static uint32_t batch_axes(const Tensor *t) {
    uint32_t axes = 0;
    for (int i = 0; i < t->rank; i++)
        if (t->batch[i])
            axes |= 1u << i;
    return axes;
}

static bool has_batch(const Tensor *t) {
    for (int i = 0; i < t->rank; i++)
        if (t->batch[i])
            return true;
    return false;
}

static const char *describe(const Tensor *t) {
    return t->is_temp ? arena_printf("%s", shape_str(t))
                      : arena_printf("'%s' %s", t->name, shape_str(t));
}

/* ---- tensors and ops ---- */

static Tensor *new_tensor(Ctx *c, TensorKind kind, DType dtype, int rank, const int64_t *shape,
                          const bool *batch, Loc loc) {
    Tensor *t = arena_alloc(sizeof(Tensor));
    t->id = c->m->tensors.len;
    t->kind = kind;
    t->dtype = dtype;
    t->rank = rank;
    for (int i = 0; i < rank; i++) {
        t->shape[i] = shape[i];
        t->batch[i] = batch && batch[i];
    }
    t->stmt = c->stmt;
    t->loc = loc;
    t->is_temp = true;
    vec_push(&c->m->tensors, t);
    return t;
}

static Op *new_op(Ctx *c, OpKind kind, Tensor *out, Tensor *a, Tensor *b, Loc loc) {
    Op *op = arena_alloc(sizeof(Op));
    op->kind = kind;
    op->id = c->m->ops.len;
    op->out = out;
    op->in = arena_alloc(sizeof(Tensor *) * 2);
    op->in[0] = a;
    op->in[1] = b;
    op->nin = b ? 2 : a ? 1 : 0;
    op->loc = loc;
    op->stmt = c->stmt;
    out->def = op;
    vec_push(&c->m->ops, op);
    vec_push(&c->line_temps, out);
    return op;
}

static bool check_size(Tensor *t, Loc loc) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->shape[i] <= 0 || n > MAX_DIM_VALUE / t->shape[i]) {
            error_at(loc, "tensor of shape %s is too large (the limit is %lld elements)",
                     shape_str(t), (long long)MAX_DIM_VALUE);
            return false;
        }
        n *= t->shape[i];
    }
    return true;
}

static Val unary_op(Ctx *c, OpKind kind, Tensor *a, Scalar k, Loc loc) {
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, a->rank, a->shape, a->batch, loc);
    new_op(c, kind, out, a, NULL, loc)->c = k;
    return tensor_val(out);
}

/* Inference runs on any number of rows, so a dim that is the batch in one
 * operand cannot meet a dim of fixed size in the other. */
static Val batch_mismatch(const Tensor *fixed, int fixed_dim, const Tensor *rows, Loc loc) {
    error_at(loc, "%s cannot line up with the batch rows of %s: its dim %d has a fixed size, but inference "
             "runs on any number of rows", describe(fixed), describe(rows), fixed_dim);
    if (!fixed->is_temp)
        note_at(fixed->stmt ? fixed->stmt->name_loc : fixed->loc, "'%s' is defined here", fixed->name);
    return ERR;
}

static Val binary_op(Ctx *c, OpKind kind, Tensor *a, Tensor *b, Loc loc, Loc a_loc, Loc b_loc) {
    int rank = a->rank > b->rank ? a->rank : b->rank;
    int64_t shape[MAX_RANK];
    bool batch[MAX_RANK];
    for (int i = 0; i < rank; i++) {
        int ia = i - (rank - a->rank), ib = i - (rank - b->rank);
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            error_at(b_loc, "cannot broadcast %s with %s: dimension %d is %lld vs %lld",
                     shape_str(a), shape_str(b), i, (long long)da, (long long)db);
            if (!a->is_temp)
                note_at(a->stmt ? a->stmt->name_loc : a->loc, "'%s' is defined here", a->name);
            if (!b->is_temp)
                note_at(b->stmt ? b->stmt->name_loc : b->loc, "'%s' is defined here", b->name);
            return ERR;
        }
        shape[i] = da > db ? da : db;
        bool rows_a = ia >= 0 && a->batch[ia], rows_b = ib >= 0 && b->batch[ib];
        if (da == db && da != 1 && rows_a != rows_b)
            return rows_a ? batch_mismatch(b, ib, a, b_loc) : batch_mismatch(a, ia, b, a_loc);
        batch[i] = (rows_a && da == shape[i]) || (rows_b && db == shape[i]);
    }
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, rank, shape, batch, loc);
    if (!check_size(out, loc))
        return ERR;
    new_op(c, kind, out, a, b, loc);
    return tensor_val(out);
}

/* ---- scalars: folded at compile time, spelled in C when they depend on rows ---- */

static const char *rows_c(Scalar s) {
    if (s.rows_expr)
        return s.rows_expr;
    return s.is_int ? arena_printf("%lld", (long long)s.value) : arena_printf("%.17g", s.value);
}

static Val fold(BinOp op, Scalar a, Scalar b, Loc loc) {
    Scalar r = {0};
    const char *fmt = NULL;
    switch (op) {
    case BIN_ADD: r.value = a.value + b.value; r.is_int = a.is_int && b.is_int; fmt = "(%s + %s)"; break;
    case BIN_SUB: r.value = a.value - b.value; r.is_int = a.is_int && b.is_int; fmt = "(%s - %s)"; break;
    case BIN_MUL: r.value = a.value * b.value; r.is_int = a.is_int && b.is_int; fmt = "(%s * %s)"; break;
    case BIN_DIV:
        if (b.value == 0) {
            error_at(loc, "division by zero");
            return ERR;
        }
        r.value = a.value / b.value;
        fmt = "((double)%s / %s)";
        break;
    case BIN_FLOORDIV:
        if (b.value == 0) {
            error_at(loc, "division by zero");
            return ERR;
        }
        r.value = floor(a.value / b.value);
        r.is_int = a.is_int && b.is_int;
        fmt = r.is_int ? "(%s / %s)" : "floor((double)%s / %s)";
        break;
    case BIN_POW:
        r.value = pow(a.value, b.value);
        r.is_int = a.is_int && b.is_int && b.value >= 0;
        fmt = "pow(%s, %s)";
        break;
    case BIN_MATMUL:    /* arith takes @ before it folds */
        break;
    }
    if (!isfinite(r.value) || (r.is_int && fabs(r.value) > 9e15)) {
        error_at(loc, "constant expression overflows");
        return ERR;
    }
    if (a.rows_expr || b.rows_expr)
        r.rows_expr = arena_printf(fmt, rows_c(a), rows_c(b));
    return scalar_val(r);
}

/* ---- names ---- */

static int edit_distance(const char *a, const char *b) {
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    int d[65][65];
    for (int i = 0; i <= la; i++)
        d[i][0] = i;
    for (int j = 0; j <= lb; j++)
        d[0][j] = j;
    for (int i = 1; i <= la; i++)
        for (int j = 1; j <= lb; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

/* The closest of the candidates, if close enough to be a typo; ties go to
 * the alphabetically first, so that the hint does not depend on hashing. */
typedef struct {
    const char *name, *best;
    int best_d;
} Suggestion;

static Suggestion suggestion_for(const char *name) {
    return (Suggestion){name, NULL, (int)strlen(name) / 3 + 1};
}

static void consider(Suggestion *s, const char *candidate) {
    if (abs((int)strlen(candidate) - (int)strlen(s->name)) > s->best_d)
        return;
    int d = edit_distance(s->name, candidate);
    if (d <= s->best_d && (!s->best || d < s->best_d || strcmp(candidate, s->best) < 0)) {
        s->best = candidate;
        s->best_d = d;
    }
}

static const char *suggest(Ctx *c, const char *name) {
    Suggestion s = suggestion_for(name);
    for (int i = 0; i < c->syms.cap; i++)
        if (c->syms.slots[i] && c->syms.slots[i]->kind != SYM_HIDDEN)
            consider(&s, c->syms.slots[i]->name);
    return s.best;
}

static const char *suggest_dim(const Model *m, const char *name) {
    Suggestion s = suggestion_for(name);
    for (int i = 0; i < m->dims.len; i++)
        consider(&s, ((Dim *)m->dims.items[i])->name);
    return s.best;
}

static Val lookup(Ctx *c, Node *n) {
    Sym *s = sym_find(&c->syms, n->name);
    if (s && s->kind == SYM_POISON)
        return ERR;
    if (s && s->kind != SYM_HIDDEN) {
        if (s->kind == SYM_TENSOR)
            return tensor_val(s->tensor);
        if (s->kind == SYM_SCALAR)
            return scalar_val(s->scalar);
        Scalar v = int_scalar(s->dim->value);
        if (c->m->batch_dim && strcmp(s->name, c->m->batch_dim) == 0) {
            v.is_batch = true;
            v.rows_expr = "rows";
        }
        return scalar_val(v);
    }
    if (!strcmp(n->name, "torch") || !strcmp(n->name, "F"))
        return (Val){.kind = V_MODULE, .module = n->name};
    const char *hint = diag_errors < 50 ? suggest(c, n->name) : NULL;
    if (hint)
        error_at(n->loc, "unknown name '%s'; did you mean '%s'?", n->name, hint);
    else
        error_at(n->loc, "unknown name '%s'", n->name);
    return ERR;
}

/* ---- call arguments ---- */

/* Binds a call's arguments to PyTorch's parameters, given in positional
 * order (NULL-terminated); each may also be passed by keyword, and
 * `keepdims` stands for `keepdim` as in PyTorch. bound[i] is the argument
 * for params[i], or NULL when absent. */
static bool bind_args(Node *call, const char *const *params, Node **bound) {
    int nparams = 0;
    while (params[nparams])
        bound[nparams++] = NULL;
    int npos = 0;
    bool seen_kw = false;
    for (int i = 0; i < call->nargs; i++) {
        Node *arg = call->args[i];
        if (arg->kind != N_KWARG) {
            if (seen_kw) {
                error_at(arg->loc, "positional argument after a keyword argument");
                return false;
            }
            if (npos == nparams) {
                error_at(arg->loc, "too many arguments (at most %d)", nparams);
                return false;
            }
            bound[npos++] = arg;
            continue;
        }
        seen_kw = true;
        const char *name = strcmp(arg->name, "keepdims") ? arg->name : "keepdim";
        int k = 0;
        while (k < nparams && strcmp(params[k], name))
            k++;
        if (k == nparams) {
            error_at(arg->loc, "unexpected keyword argument '%s'", arg->name);
            return false;
        }
        if (bound[k]) {
            error_at(arg->loc, k < npos ? "'%s' is given both by position and by keyword"
                                        : "keyword argument '%s' repeated", name);
            return false;
        }
        bound[k] = arg->lhs;
    }
    return true;
}

static Val eval(Ctx *c, Node *n);

static bool eval_int(Ctx *c, Node *n, int64_t *out, Scalar *full) {
    Val v = eval(c, n);
    if (v.kind == V_ERROR)
        return false;
    if (v.kind != V_SCALAR || !v.s.is_int) {
        error_at(n->loc, "expected an integer constant");
        return false;
    }
    if (fabs(v.s.value) > 9e15) {   /* beyond what a double holds exactly */
        error_at(n->loc, "integer constant %.3g is too large", v.s.value);
        return false;
    }
    *out = (int64_t)v.s.value;
    if (full)
        *full = v.s;
    return true;
}

static bool eval_bool(Ctx *c, Node *n, bool *out) {
    if (n->kind == N_NAME && (!strcmp(n->name, "True") || !strcmp(n->name, "False"))) {
        *out = n->name[0] == 'T';
        return true;
    }
    error_at(n->loc, "expected True or False");
    (void)c;
    return false;
}

static Tensor *expect_tensor(Ctx *c, Node *n) {
    Val v = eval(c, n);
    if (v.kind == V_ERROR)
        return NULL;
    if (v.kind != V_TENSOR) {
        error_at(n->loc, "expected a tensor here");
        return NULL;
    }
    if (v.t->dtype != DT_FLOAT) {
        error_at(n->loc, "'%s' is an integer input; it can only index a table", v.t->name);
        return NULL;
    }
    return v.t;
}

static int normalize_dim(Tensor *t, int64_t d, Loc loc) {
    if (d < -t->rank || d >= t->rank || (t->rank == 0)) {
        error_at(loc, "dimension %lld is out of range for %s of rank %d", (long long)d,
                 describe(t), t->rank);
        return -1;
    }
    return (int)(d < 0 ? d + t->rank : d);
}

/* The dims of a reduction: an int, a tuple of ints, or absent (all). */
static bool reduce_axes(Ctx *c, Tensor *t, Node *dim, uint32_t *axes) {
    *axes = 0;
    if (!dim) {
        *axes = (1u << t->rank) - 1;
        return true;
    }
    Node *one_dim[1] = {dim};
    Node **items = dim->kind == N_LIST ? dim->args : one_dim;
    int count = dim->kind == N_LIST ? dim->nargs : 1;
    for (int i = 0; i < count; i++) {
        int64_t d;
        if (!eval_int(c, items[i], &d, NULL))
            return false;
        int k = normalize_dim(t, d, items[i]->loc);
        if (k < 0)
            return false;
        *axes |= 1u << k;
    }
    return true;
}

static Val reduction(Ctx *c, OpKind kind, Tensor *t, Node *call, bool single_dim) {
    /* PyTorch's positional order: (dim, keepdim), var(dim, unbiased, keepdim). */
    static const char *const plain[] = {"dim", "keepdim", NULL};
    static const char *const var[] = {"dim", "unbiased", "keepdim", NULL};
    Node *arg[3];
    for (int i = 0; kind != OP_VAR && i < call->nargs; i++)
        if (call->args[i]->kind == N_KWARG && !strcmp(call->args[i]->name, "unbiased")) {
            error_at(call->args[i]->lhs->loc, "only var takes 'unbiased'");
            return ERR;
        }
    if (!bind_args(call, kind == OP_VAR ? var : plain, arg))
        return ERR;
    Node *dim = arg[0], *keep = kind == OP_VAR ? arg[2] : arg[1], *unb = kind == OP_VAR ? arg[1] : NULL;
    if (single_dim && (!dim || dim->kind == N_LIST)) {
        error_at(call->loc, "%s needs exactly one dim", op_info[kind].name);
        return ERR;
    }
    uint32_t axes;
    bool keepdim = false, unbiased = true;
    if (!reduce_axes(c, t, dim, &axes) || (keep && !eval_bool(c, keep, &keepdim)) ||
        (unb && !eval_bool(c, unb, &unbiased)))
        return ERR;
    int64_t shape[MAX_RANK];
    bool batch[MAX_RANK];
    int rank = 0;
    Scalar count = int_scalar(1);
    bool over_batch = false;
    for (int i = 0; i < t->rank; i++) {
        if (axes & (1u << i)) {
            count.value *= (double)t->shape[i];
            over_batch |= t->batch[i];
            if (keepdim) {
                shape[rank] = 1;
                batch[rank++] = false;
            }
        } else {
            shape[rank] = t->shape[i];
            batch[rank++] = t->batch[i];
        }
    }
    if (over_batch)
        count.rows_expr = arena_printf("((double)rows * %lld)", (long long)(count.value / (double)c->m->batch));
    if (kind == OP_VAR && unbiased && count.value < 2) {
        error_at(call->loc, "unbiased variance over %lld element needs at least 2", (long long)count.value);
        return ERR;
    }
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, rank, shape, batch, call->loc);
    Op *op = new_op(c, kind, out, t, NULL, call->loc);
    op->axes = axes;
    op->keepdim = keepdim;
    op->unbiased = unbiased;
    op->c = count;
    op->batch_reduction = over_batch;
    return kind == OP_MAX ? (Val){.kind = V_MAX, .t = out} : tensor_val(out);
}

static Val view(Ctx *c, Tensor *t, Node *call) {
    Node **items = call->args;
    int count = call->nargs;
    if (count == 1 && items[0]->kind == N_LIST) {
        Node *list = items[0];
        items = list->args;
        count = list->nargs;
    }
    if (count < 1 || count > MAX_RANK) {
        error_at(call->loc, "view takes 1 to %d sizes", MAX_RANK);
        return ERR;
    }
    int64_t shape[MAX_RANK], known = 1;
    bool batch[MAX_RANK];
    int infer = -1;
    for (int i = 0; i < count; i++) {
        Scalar s;
        if (!eval_int(c, items[i], &shape[i], &s))
            return ERR;
        batch[i] = s.is_batch;
        if (shape[i] == -1 && infer >= 0) {
            error_at(items[i]->loc, "only one view size may be -1");
            return ERR;
        } else if (shape[i] == -1) {
            infer = i;
        } else if (shape[i] <= 0) {
            error_at(items[i]->loc, "view size must be positive or -1, got %lld", (long long)shape[i]);
            return ERR;
        } else {
            known *= shape[i];
        }
    }
    int64_t numel = tensor_numel(t);
    if (infer >= 0) {
        if (numel % known) {
            char *sizes = arena_strdup("");
            for (int i = 0; i < count; i++)
                sizes = arena_printf("%s%s%lld", sizes, i ? ", " : "", (long long)shape[i]);
            error_at(call->loc, "cannot view %s (%lld elements) as [%s]: %lld is not a multiple of %lld",
                     describe(t), (long long)numel, sizes, (long long)numel, (long long)known);
            return ERR;
        }
        shape[infer] = numel / known;
        known = numel;
    }
    if (known != numel) {
        error_at(call->loc, "cannot view %s (%lld elements) as %lld elements", describe(t),
                 (long long)numel, (long long)known);
        return ERR;
    }
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, count, shape, batch, call->loc);
    new_op(c, OP_VIEW, out, t, NULL, call->loc);
    return tensor_val(out);
}

static Val matmul(Ctx *c, Tensor *a, Tensor *b, Loc loc) {
    if (a->rank < 2 || a->rank > 3 || b->rank != 2) {
        error_at(loc, "@ supports [M, K] @ [K, N] and [B, M, K] @ [K, N], not %s @ %s",
                 shape_str(a), shape_str(b));
        return ERR;
    }
    if (a->shape[a->rank - 1] != b->shape[0]) {
        error_at(loc, "matmul inner dimensions differ: %s @ %s: %lld vs %lld", shape_str(a),
                 shape_str(b), (long long)a->shape[a->rank - 1], (long long)b->shape[0]);
        return ERR;
    }
    if (b->batch[0] || a->batch[a->rank - 1] || b->batch[1]) {
        error_at(loc, "%s @ %s: a matmul may not sum over, or make columns of, the batch dim "
                 "(inference runs on any number of rows)", describe(a), describe(b));
        return ERR;
    }
    int64_t shape[MAX_RANK];
    bool batch[MAX_RANK];
    for (int i = 0; i < a->rank - 1; i++) {
        shape[i] = a->shape[i];
        batch[i] = a->batch[i];
    }
    shape[a->rank - 1] = b->shape[1];
    batch[a->rank - 1] = false;
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, a->rank, shape, batch, loc);
    if (!check_size(out, loc))
        return ERR;
    new_op(c, OP_MATMUL, out, a, b, loc);
    return tensor_val(out);
}

/* The op Python's operator reaches with these operands (the op table). */
static bool operator_op(BinOp op, unsigned operands, OpKind *kind) {
    for (int k = 0; k < OP_COUNT; k++)
        if ((op_info[k].operands & operands) && op_info[k].binop == op) {
            *kind = (OpKind)k;
            return true;
        }
    return false;
}

/* x ** c for an exponent with an op of its own (x ** 2 is a square). */
static bool power_op(double exponent, OpKind *kind) {
    for (int k = 0; k < OP_COUNT; k++)
        if (op_info[k].power && strtod(op_info[k].power, NULL) == exponent) {
            *kind = (OpKind)k;
            return true;
        }
    return false;
}

static Val arith(Ctx *c, BinOp op, Val a, Val b, Node *n) {
    if (a.kind == V_ERROR || b.kind == V_ERROR)
        return ERR;
    Node *bad = a.kind != V_SCALAR && a.kind != V_TENSOR ? n->lhs
              : b.kind != V_SCALAR && b.kind != V_TENSOR ? n->rhs : NULL;
    if (bad) {
        Val which = bad == n->lhs ? a : b;
        error_at(bad->loc, which.kind == V_MAX ? "max(dim) returns (values, indices): use .values"
                                               : "expected a tensor or a number here");
        return ERR;
    }
    Tensor *ta = a.kind == V_TENSOR ? a.t : NULL, *tb = b.kind == V_TENSOR ? b.t : NULL;
    if ((ta && ta->dtype == DT_INT) || (tb && tb->dtype == DT_INT)) {
        Node *which = ta && ta->dtype == DT_INT ? n->lhs : n->rhs;
        error_at(which->loc, "integer input '%s' cannot take part in arithmetic; it can only index a table",
                 (ta && ta->dtype == DT_INT ? ta : tb)->name);
        return ERR;
    }
    if (op == BIN_MATMUL) {
        if (!ta || !tb) {
            error_at(n->op_loc, "@ needs two tensors");
            return ERR;
        }
        return matmul(c, ta, tb, n->op_loc);
    }
    if (!ta && !tb)
        return fold(op, a.s, b.s, n->op_loc);
    OpKind kind;
    if (ta && tb) {
        if (!operator_op(op, OPND_TT, &kind)) {
            error_at(n->op_loc, "%s between two tensors is not supported (supported: %s)", binop_text[op],
                     supported_operators(OPND_TT));
            return ERR;
        }
        return binary_op(c, kind, ta, tb, n->op_loc, n->lhs->loc, n->rhs->loc);
    }
    Tensor *t = ta ? ta : tb;
    Scalar k = ta ? b.s : a.s;
    if (op == BIN_DIV && ta && k.value == 0) {
        error_at(n->op_loc, "division by zero");
        return ERR;
    }
    if (op == BIN_POW && !ta) {
        error_at(n->op_loc, "a number raised to a tensor power is not supported");
        return ERR;
    }
    if (op == BIN_POW && k.rows_expr) {
        error_at(n->rhs->loc, "an exponent cannot depend on the batch size");
        return ERR;
    }
    if (op == BIN_POW && power_op(k.value, &kind))
        return unary_op(c, kind, t, k, n->op_loc);
    if (!operator_op(op, ta ? OPND_TC : OPND_CT, &kind)) {
        error_at(n->op_loc, "%s is not supported on tensors (supported: %s)", binop_text[op],
                 supported_operators(OPND_TT | OPND_TC | OPND_CT));
        return ERR;
    }
    return unary_op(c, kind, t, k, n->op_loc);
}

/* ---- indexing ---- */

static Val embed(Ctx *c, Tensor *table, Tensor *index, Node *n) {
    if (index->dtype != DT_INT) {
        error_at(n->args[0]->loc, "cannot index %s with float tensor %s; indices must be an integer input",
                 describe(table), describe(index));
        return ERR;
    }
    if (table->rank < 1 || index->rank + table->rank - 1 > MAX_RANK) {
        error_at(n->loc, "indexing %s by %s gives more than %d dims", describe(table),
                 describe(index), MAX_RANK);
        return ERR;
    }
    if (index->bound > table->shape[0]) {
        error_at(n->args[0]->loc, "'%s' takes values in [0, %lld) but %s has only %lld rows",
                 index->name, (long long)index->bound, describe(table), (long long)table->shape[0]);
        return ERR;
    }
    int64_t shape[MAX_RANK];
    bool batch[MAX_RANK];
    int rank = 0;
    for (int i = 0; i < index->rank; i++, rank++) {
        shape[rank] = index->shape[i];
        batch[rank] = index->batch[i];
    }
    for (int i = 1; i < table->rank; i++, rank++) {
        shape[rank] = table->shape[i];
        batch[rank] = false;
    }
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, rank, shape, batch, n->loc);
    if (!check_size(out, n->loc))
        return ERR;
    new_op(c, OP_EMBED, out, table, index, n->loc);
    return tensor_val(out);
}

static Val pick(Ctx *c, Tensor *x, Val rows, Tensor *target, Node *n) {
    if (x->rank != 2 || x->dtype != DT_FLOAT) {
        error_at(n->lhs->loc, "x[range(n), targets] needs a 2-D float tensor, got %s", describe(x));
        return ERR;
    }
    if ((int64_t)rows.s.value != x->shape[0]) {
        error_at(n->args[0]->loc, "range(%lld) does not match the %lld rows of %s",
                 (long long)rows.s.value, (long long)x->shape[0], describe(x));
        return ERR;
    }
    if (target->dtype != DT_INT || target->rank != 1 || target->shape[0] != x->shape[0]) {
        error_at(n->args[1]->loc, "targets must be an integer input of shape [%lld], got %s",
                 (long long)x->shape[0], describe(target));
        return ERR;
    }
    if (!x->batch[0])
        return batch_mismatch(x, 0, target, n->lhs->loc);
    if (target->bound > x->shape[1]) {
        error_at(n->args[1]->loc, "'%s' takes values in [0, %lld) but %s has only %lld columns",
                 target->name, (long long)target->bound, describe(x), (long long)x->shape[1]);
        return ERR;
    }
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, 1, x->shape, x->batch, n->loc);
    new_op(c, OP_PICK, out, x, target, n->loc);
    return tensor_val(out);
}

static Val index_expr(Ctx *c, Node *n) {
    Val base = eval(c, n->lhs);
    if (base.kind == V_ERROR)
        return ERR;
    if (base.kind == V_SHAPE) {
        int64_t d;
        Scalar unused;
        if (n->nargs != 1 || !eval_int(c, n->args[0], &d, &unused))
            return ERR;
        int k = normalize_dim(base.t, d, n->args[0]->loc);
        if (k < 0)
            return ERR;
        Scalar s = int_scalar(base.t->shape[k]);
        if (base.t->batch[k]) {
            s.is_batch = true;
            s.rows_expr = "rows";
        }
        return scalar_val(s);
    }
    if (base.kind != V_TENSOR) {
        error_at(n->lhs->loc, "only tensors and .shape can be indexed");
        return ERR;
    }
    Val idx[2];
    if (n->nargs > 2) {
        error_at(n->loc, "unsupported indexing (supported: table[int_input], x[range(n), targets], x.shape[k])");
        return ERR;
    }
    for (int i = 0; i < n->nargs; i++)
        if ((idx[i] = eval(c, n->args[i])).kind == V_ERROR)
            return ERR;
    if (base.t->dtype != DT_FLOAT) {
        error_at(n->lhs->loc, "integer input '%s' cannot be indexed", base.t->name);
        return ERR;
    }
    if (n->nargs == 1 && idx[0].kind == V_TENSOR)
        return embed(c, base.t, idx[0].t, n);
    if (n->nargs == 2 && idx[0].kind == V_RANGE && idx[1].kind == V_TENSOR)
        return pick(c, base.t, idx[0], idx[1].t, n);
    error_at(n->loc, "unsupported indexing (supported: table[int_input], x[range(n), targets], x.shape[k])");
    return ERR;
}

/* ---- calls ---- */

/* The op Python reaches as x.name() (PY_METHOD), torch.name() or F.name()
 * (the op table). */
static bool op_by_name(const char *name, unsigned form, OpKind *kind) {
    for (int k = 0; k < OP_COUNT; k++) {
        const OpInfo *op = &op_info[k];
        if ((op->forms & form) &&
            (!strcmp(op->py, name) || (form == PY_METHOD && op->alias && !strcmp(op->alias, name)))) {
            *kind = (OpKind)k;
            return true;
        }
    }
    return false;
}

static Val softmax(Ctx *c, Tensor *x, Node *dim_node, Node *call) {
    int64_t d;
    if (!dim_node) {
        error_at(call->loc, "softmax needs a dim");
        return ERR;
    }
    if (!eval_int(c, dim_node, &d, NULL))
        return ERR;
    int k = normalize_dim(x, d, dim_node->loc);
    if (k < 0)
        return ERR;
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, x->rank, x->shape, x->batch, call->loc);
    new_op(c, OP_SOFTMAX, out, x, NULL, call->loc)->axes = 1u << k;
    return tensor_val(out);
}

static Val cross_entropy(Ctx *c, Node *call) {
    static const char *const params[] = {"input", "target", NULL};
    Node *arg[2];
    if (!bind_args(call, params, arg))
        return ERR;
    if (!arg[0] || !arg[1]) {
        error_at(call->loc, "F.cross_entropy takes (logits, targets)");
        return ERR;
    }
    Tensor *logits = expect_tensor(c, arg[0]);
    Val tv = eval(c, arg[1]);
    if (!logits || tv.kind == V_ERROR)
        return ERR;
    if (logits->rank != 2) {
        error_at(arg[0]->loc, "F.cross_entropy needs 2-D logits, got %s", describe(logits));
        return ERR;
    }
    if (tv.kind != V_TENSOR || tv.t->dtype != DT_INT || tv.t->rank != 1 ||
        tv.t->shape[0] != logits->shape[0]) {
        error_at(arg[1]->loc, "targets must be an integer input of shape [%lld]",
                 (long long)logits->shape[0]);
        return ERR;
    }
    if (tv.t->bound > logits->shape[1]) {
        error_at(arg[1]->loc, "'%s' takes values in [0, %lld) but the logits have %lld classes",
                 tv.t->name, (long long)tv.t->bound, (long long)logits->shape[1]);
        return ERR;
    }
    if (!logits->batch[0])
        return batch_mismatch(logits, 0, tv.t, arg[0]->loc);
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, 0, NULL, NULL, call->loc);
    Op *op = new_op(c, OP_CROSS_ENTROPY, out, logits, tv.t, call->loc);
    op->c = int_scalar(logits->shape[0]);
    if (logits->batch[0])
        op->c.rows_expr = "rows";
    return tensor_val(out);
}

static Val cat(Ctx *c, Node *call) {
    static const char *const params[] = {"tensors", "dim", NULL};
    Node *arg[2];
    if (!bind_args(call, params, arg))
        return ERR;
    Node *list = arg[0], *dim = arg[1];
    if (!list || list->kind != N_LIST || list->nargs < 1) {
        error_at(call->loc, "torch.cat takes a list of tensors and a dim");
        return ERR;
    }
    /* the op's operand array: two slots at least, as every op has */
    Tensor **parts = arena_alloc(sizeof(Tensor *) * (size_t)(list->nargs < 2 ? 2 : list->nargs));
    for (int i = 0; i < list->nargs; i++)
        if (!(parts[i] = expect_tensor(c, list->args[i])))
            return ERR;
    int64_t d = 0;
    if (dim && !eval_int(c, dim, &d, NULL))
        return ERR;
    int k = normalize_dim(parts[0], d, dim ? dim->loc : call->loc);
    if (k < 0)
        return ERR;
    if (parts[0]->batch[k]) {
        error_at(dim ? dim->loc : call->loc,
                 "torch.cat along the batch dim is not supported (inference runs on any number of rows)");
        return ERR;
    }
    int64_t shape[MAX_RANK];
    memcpy(shape, parts[0]->shape, sizeof shape);
    shape[k] = 0;
    for (int i = 0; i < list->nargs; i++) {
        bool same = parts[i]->rank == parts[0]->rank;
        for (int j = 0; same && j < parts[0]->rank; j++)
            same = j == k || parts[i]->shape[j] == parts[0]->shape[j];
        if (!same) {
            error_at(list->args[i]->loc, "torch.cat: %s does not match %s outside dim %d",
                     describe(parts[i]), describe(parts[0]), k);
            return ERR;
        }
        for (int j = 0; j < parts[0]->rank; j++)
            if (j != k && parts[i]->batch[j] != parts[0]->batch[j])
                return parts[0]->batch[j] ? batch_mismatch(parts[i], j, parts[0], list->args[i]->loc)
                                          : batch_mismatch(parts[0], j, parts[i], list->args[0]->loc);
        shape[k] += parts[i]->shape[k];
    }
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, parts[0]->rank, shape, parts[0]->batch, call->loc);
    if (!check_size(out, call->loc))
        return ERR;
    Op *op = new_op(c, OP_CAT, out, parts[0], NULL, call->loc);
    op->in = parts;
    op->nin = list->nargs;
    op->cat_dim = k;
    return tensor_val(out);
}

static Val module_call(Ctx *c, const char *module, const char *fn, Node *call) {
    OpKind kind;
    if (!op_by_name(fn, !strcmp(module, "F") ? PY_F : PY_TORCH, &kind)) {
        error_at(call->loc, "unsupported function %s.%s (supported: %s)", module, fn,
                 supported_calls(PY_TORCH | PY_F));
        return ERR;
    }
    if (op_info[kind].family == EW1) {
        if (call->nargs != 1) {
            error_at(call->loc, "%s.%s takes one argument, got %d", module, fn, call->nargs);
            return ERR;
        }
        Tensor *t = expect_tensor(c, call->args[0]);
        return t ? unary_op(c, kind, t, int_scalar(0), call->loc) : ERR;
    }
    switch (kind) {
    case OP_SOFTMAX: {
        static const char *const params[] = {"input", "dim", NULL};
        Node *arg[2];
        if (!bind_args(call, params, arg))
            return ERR;
        if (!arg[0]) {
            error_at(call->loc, "%s.softmax takes (input, dim)", module);
            return ERR;
        }
        Tensor *t = expect_tensor(c, arg[0]);
        return t ? softmax(c, t, arg[1], call) : ERR;
    }
    case OP_CROSS_ENTROPY: return cross_entropy(c, call);
    case OP_CAT: return cat(c, call);
    default:
        error_at(call->loc, "internal: no lowering for %s.%s", module, fn);
        return ERR;
    }
}

static Val method_call(Ctx *c, Tensor *t, const char *fn, Node *call) {
    OpKind kind;
    if (t->dtype != DT_FLOAT) {
        error_at(call->loc, "integer input '%s' has no methods; it can only index a table", t->name);
        return ERR;
    }
    if (!op_by_name(fn, PY_METHOD, &kind)) {
        error_at(call->loc, "unsupported method .%s() (supported: %s)", fn, supported_methods());
        return ERR;
    }
    switch (op_info[kind].family) {
    case EW1:
        if (call->nargs) {
            error_at(call->loc, ".%s() takes no arguments", fn);
            return ERR;
        }
        return unary_op(c, kind, t, int_scalar(0), call->loc);
    case REDUCE: return reduction(c, kind, t, call, kind == OP_MAX);
    default: break;
    }
    switch (kind) {
    case OP_VIEW: return view(c, t, call);
    case OP_SOFTMAX: {
        static const char *const params[] = {"dim", NULL};
        Node *dim;
        if (!bind_args(call, params, &dim))
            return ERR;
        return softmax(c, t, dim, call);
    }
    default:
        error_at(call->loc, "internal: no lowering for .%s()", fn);
        return ERR;
    }
}

static Val call_expr(Ctx *c, Node *n) {
    Node *callee = n->lhs;
    if (callee->kind == N_NAME && !strcmp(callee->name, "range")) {
        int64_t len;
        Scalar s;
        if (n->nargs != 1 || !eval_int(c, n->args[0], &len, &s))
            return n->nargs == 1 ? ERR : (error_at(n->loc, "range takes one argument"), ERR);
        return (Val){.kind = V_RANGE, .s = s};
    }
    if (callee->kind != N_ATTR) {
        error_at(n->loc, "only methods, torch.* and F.* functions and range() can be called");
        return ERR;
    }
    Val obj = eval(c, callee->lhs);
    if (obj.kind == V_ERROR)
        return ERR;
    if (obj.kind == V_MODULE)
        return module_call(c, obj.module, callee->name, n);
    if (obj.kind == V_TENSOR)
        return method_call(c, obj.t, callee->name, n);
    if (obj.kind == V_MAX)
        error_at(callee->loc, "max(dim) returns (values, indices): use .values");
    else
        error_at(callee->loc, "'.%s' cannot be called on this", callee->name);
    return ERR;
}

static Val attribute(Ctx *c, Node *n) {
    Val obj = eval(c, n->lhs);
    if (obj.kind == V_ERROR)
        return ERR;
    if (obj.kind == V_MAX && !strcmp(n->name, "values"))
        return tensor_val(obj.t);
    if (obj.kind == V_TENSOR && !strcmp(n->name, "shape"))
        return (Val){.kind = V_SHAPE, .t = obj.t};
    if (obj.kind == V_TENSOR && !strcmp(n->name, "T")) {
        if (obj.t->rank != 2 || obj.t->dtype != DT_FLOAT) {
            error_at(n->loc, ".T needs a 2-D float tensor, got %s", describe(obj.t));
            return ERR;
        }
        int64_t shape[2] = {obj.t->shape[1], obj.t->shape[0]};
        bool batch[2] = {obj.t->batch[1], obj.t->batch[0]};
        Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, 2, shape, batch, n->loc);
        new_op(c, OP_TRANSPOSE, out, obj.t, NULL, n->loc);
        return tensor_val(out);
    }
    error_at(n->loc, obj.kind == V_MAX ? "max(dim) returns (values, indices): use .values"
                                       : "unsupported attribute '.%s' (supported: .T, .shape, .values)",
             n->name);
    return ERR;
}

static Val eval(Ctx *c, Node *n) {
    switch (n->kind) {
    case N_NUM: return scalar_val((Scalar){.value = n->num, .is_int = n->is_int});
    case N_NAME: return lookup(c, n);
    case N_BINARY: {
        Val a = eval(c, n->lhs);
        Val b = eval(c, n->rhs);
        return arith(c, n->op, a, b, n);
    }
    case N_NEG: {
        Val a = eval(c, n->lhs);
        if (a.kind == V_SCALAR) {
            a.s.value = -a.s.value;
            a.s.is_batch = false;
            if (a.s.rows_expr)
                a.s.rows_expr = arena_printf("(-%s)", a.s.rows_expr);
            return a;
        }
        if (a.kind == V_TENSOR && a.t->dtype == DT_FLOAT)
            return unary_op(c, OP_NEG, a.t, int_scalar(0), n->loc);
        if (a.kind != V_ERROR)
            error_at(n->loc, "unary - needs a number or a float tensor");
        return ERR;
    }
    case N_ATTR: return attribute(c, n);
    case N_CALL: return call_expr(c, n);
    case N_INDEX: return index_expr(c, n);
    case N_LIST: return (Val){.kind = V_LIST, .node = n};
    case N_KWARG: error_at(n->loc, "keyword argument outside a call"); return ERR;
    }
    return ERR;
}

/* ---- declarations ---- */

static bool reserved(const char *name) {
    return !strcmp(name, "torch") || !strcmp(name, "F") || !strcmp(name, "range");
}

static bool declare(Ctx *c, const char *name, Loc loc) {
    if (c_keyword(name)) {
        error_at(loc, "'%s' is a keyword of C, which ninjac writes: choose another name", name);
        return false;
    }
    if (c->stmt->kind == S_INPUT && generated_local(name)) {
        error_at(loc, "an input cannot be called '%s': the generated C uses that name itself", name);
        return false;
    }
    Sym *old = sym_find(&c->syms, name);
    if (old && old->kind == SYM_HIDDEN) {
        error_at(loc, "'%s' is a name ninjac gave a temporary of an earlier line; choose another", name);
        return false;
    }
    if (old) {
        error_at(loc, "'%s' is already defined", name);
        note_at(old->loc, "'%s' was defined here", name);
        return false;
    }
    if (reserved(name)) {
        error_at(loc, "'%s' is a reserved name", name);
        return false;
    }
    return true;
}

static void declare_dim(Ctx *c, const Stmt *s, Define *defs, int ndefs) {
    int64_t v;
    if (!declare(c, s->name, s->name_loc) || !eval_int(c, s->value, &v, NULL))
        return;
    Dim *d = arena_alloc(sizeof(Dim));
    d->name = s->name;
    d->loc = s->name_loc;
    for (int i = 0; i < ndefs; i++)
        if (!strcmp(defs[i].name, s->name)) {
            v = defs[i].value;
            d->overridden = true;
            defs[i].loc.end = 1;   /* used */
        }
    if (v <= 0 || v >= MAX_DIM_VALUE) {
        error_at(d->overridden ? s->name_loc : s->value->loc, "dim '%s' must be a positive integer below 2^31, got %lld%s",
                 s->name, (long long)v, d->overridden ? " (from -D)" : "");
        return;
    }
    d->value = v;
    vec_push(&c->m->dims, d);
    sym_add(&c->syms, s->name, SYM_DIM, s->name_loc)->dim = d;
}

static bool declared_shape(Ctx *c, const Stmt *s, int64_t *shape, bool *batch) {
    if (s->ndims > MAX_RANK) {
        error_at(s->dims[MAX_RANK]->loc, "at most %d dims are supported", MAX_RANK);
        return false;
    }
    for (int i = 0; i < s->ndims; i++) {
        Scalar v;
        if (!eval_int(c, s->dims[i], &shape[i], &v))
            return false;
        if (shape[i] <= 0) {
            error_at(s->dims[i]->loc, "dims must be positive, got %lld", (long long)shape[i]);
            return false;
        }
        batch[i] = v.is_batch;
    }
    return true;
}

static void declare_input(Ctx *c, const Stmt *s) {
    int64_t shape[MAX_RANK], bound;
    bool batch[MAX_RANK] = {0};
    if (!declare(c, s->name, s->name_loc))
        return;
    if (strcmp(s->type_name, "int") != 0) {
        error_at(s->type_loc, "inputs are integer tensors: write int[...], not %s[...]", s->type_name);
        return;
    }
    Node *first = s->dims[0];
    Sym *first_sym = first->kind == N_NAME ? sym_find(&c->syms, first->name) : NULL;
    if (first_sym && first_sym->kind == SYM_POISON)
        return;
    if (!c->m->batch_dim) {
        if (first->kind != N_NAME || !sym_find(&c->syms, first->name) ||
            sym_find(&c->syms, first->name)->kind != SYM_DIM) {
            error_at(first->loc, "the first dim of an input must be a dim name: the batch size");
            return;
        }
        c->m->batch_dim = first->name;
        c->m->batch = sym_find(&c->syms, first->name)->dim->value;
    } else if (first->kind != N_NAME || strcmp(first->name, c->m->batch_dim) != 0) {
        error_at(first->loc, "the first dim of every input must be the batch dim '%s'", c->m->batch_dim);
        return;
    }
    if (!declared_shape(c, s, shape, batch) || !eval_int(c, s->bound, &bound, NULL))
        return;
    if (bound <= 0 || bound >= MAX_DIM_VALUE) {
        error_at(s->bound->loc, "the bound of '%s' must be a positive integer below 2^31", s->name);
        return;
    }
    Tensor *t = new_tensor(c, T_INPUT, DT_INT, s->ndims, shape, batch, s->name_loc);
    if (!check_size(t, loc_join(s->dims[0]->loc, s->dims[s->ndims - 1]->loc)))
        return;
    t->name = s->name;
    t->is_temp = false;
    t->bound = bound;
    t->input_index = c->m->inputs.len;
    if (t->input_index >= 31) {
        error_at(s->name_loc, "at most 31 inputs are supported");
        return;
    }
    vec_push(&c->m->inputs, t);
    sym_add(&c->syms, s->name, SYM_TENSOR, s->name_loc)->tensor = t;
}

/* randn(), rand(), and the same with generator=NAME; one NAME per spec. */
static bool init_draw(Ctx *c, Node *n, Init *out) {
    const char *f = n->lhs->name;
    InitDist dist = !strcmp(f, "randn") ? INIT_RANDN : INIT_UNIFORM;
    *out = (Init){dist, false, 0, 0, {{0}}};
    if (n->nargs == 0)
        return true;
    Node *a = n->args[0];
    if (n->nargs > 1 || a->kind != N_KWARG || strcmp(a->name, "generator") || a->lhs->kind != N_NAME) {
        error_at(a->loc, "%s() in an init takes only generator=NAME", f);
        return false;
    }
    Model *m = c->m;
    if (m->generator && strcmp(m->generator, a->lhs->name)) {
        error_at(a->lhs->loc, "a spec draws from one generator, and it is '%s'", m->generator);
        return false;
    }
    m->generator = a->lhs->name;
    out->named_generator = true;
    return true;
}

/* One tensor op with a number or a constant tensor's value, applied to the
 * draw in float; the value must be a float too. */
static bool init_step(Init *in, BinOp op, bool reversed, double value, Loc op_loc) {
    if (!(fabs(value) <= FLT_MAX)) {
        error_at(op_loc, "the constant %g is beyond float's range", value);
        return false;
    }
    if (op == BIN_DIV && !reversed && (float)value == 0) {
        error_at(op_loc, "division by zero (the constant rounds to 0 in float)");
        return false;
    }
    if (in->nsteps == MAX_INIT_STEPS) {
        error_at(op_loc, "an init applies at most %d operations to its draw", MAX_INIT_STEPS);
        return false;
    }
    in->steps[in->nsteps++] = (InitStep){op, reversed, value};
    return true;
}

/* Numbers fold in double, as Python folds them; a constant tensor (zeros(),
 * ones() and what follows) in float, as PyTorch computes it. */
static bool init_fold(InitDist dist, BinOp op, double x, double y, Loc op_loc, Init *out) {
    bool in_float = dist == INIT_CONST;
    if (in_float) {
        x = (float)x;
        y = (float)y;
    }
    switch (op) {
    case BIN_ADD: x += y; break;
    case BIN_SUB: x -= y; break;
    case BIN_MUL: x *= y; break;
    case BIN_DIV: x /= y; break;
    case BIN_POW: x = pow(x, y); break;
    default:
        error_at(op_loc, "an init must be affine in a single random draw");
        return false;
    }
    if (in_float)
        x = (float)x;
    if (!isfinite(x)) {
        error_at(op_loc, "this constant overflows%s", in_float ? " float" : "");
        return false;
    }
    *out = (Init){dist, false, x, 0, {{0}}};
    return true;
}

/* An init is one random draw followed by tensor ops with constants (or a
 * constant): what PyTorch computes for the same line, op by op. */
static bool eval_init(Ctx *c, Node *n, Init *out) {
    Init a, b;
    switch (n->kind) {
    case N_CALL:
        if (n->lhs->kind == N_NAME) {
            const char *f = n->lhs->name;
            if (!strcmp(f, "randn") || !strcmp(f, "rand"))
                return init_draw(c, n, out);
            if (!strcmp(f, "zeros") || !strcmp(f, "ones")) {
                if (n->nargs) {
                    error_at(n->args[0]->loc, "%s() in an init takes no arguments", f);
                    return false;
                }
                *out = (Init){INIT_CONST, false, !strcmp(f, "ones"), 0, {{0}}};
                return true;
            }
        }
        error_at(n->loc, "an init uses randn(), rand(), zeros(), ones() and constants");
        return false;
    case N_NEG:
        if (!eval_init(c, n->lhs, out))
            return false;
        if (out->dist == INIT_CONST || out->dist == INIT_NUMBER) {
            out->value = -out->value;
            return true;
        }
        return init_step(out, BIN_MUL, false, -1, n->loc);
    case N_BINARY: {
        if (!eval_init(c, n->lhs, &a) || !eval_init(c, n->rhs, &b))
            return false;
        bool a_draw = a.dist == INIT_RANDN || a.dist == INIT_UNIFORM;
        bool b_draw = b.dist == INIT_RANDN || b.dist == INIT_UNIFORM;
        if (a_draw && b_draw) {
            bool sum = n->op == BIN_ADD || n->op == BIN_SUB;
            error_at(n->op_loc, sum ? "an init may use only one random draw"
                                    : "an init must be affine in a single random draw");
            return false;
        }
        if (n->op == BIN_POW && a_draw) {
            error_at(n->op_loc, "a random draw cannot be raised to a power in an init");
            return false;
        }
        if (n->op == BIN_DIV && !b_draw && b.value == 0) {
            error_at(n->op_loc, "division by zero");
            return false;
        }
        if (!a_draw && !b_draw) /* a tensor's ops are float ops */
            return init_fold(a.dist == INIT_CONST || b.dist == INIT_CONST ? INIT_CONST : INIT_NUMBER, n->op,
                             a.value, b.value, n->op_loc, out);
        bool affine = n->op == BIN_ADD || n->op == BIN_SUB || n->op == BIN_MUL;
        if (!b_draw && (affine || n->op == BIN_DIV)) { /* draw op constant */
            *out = a;
            return init_step(out, n->op, false, b.value, n->op_loc);
        }
        if (affine) { /* constant op draw: + and * commute exactly, - is reversed */
            *out = b;
            return init_step(out, n->op, n->op == BIN_SUB, a.value, n->op_loc);
        }
        error_at(n->op_loc, "an init must be affine in a single random draw");
        return false;
    }
    default: {
        Val v = eval(c, n);
        if (v.kind == V_ERROR)
            return false;
        if (v.kind != V_SCALAR) {
            error_at(n->loc, "an init uses randn(), rand(), zeros(), ones() and constants");
            return false;
        }
        *out = (Init){INIT_NUMBER, false, v.s.value, 0, {{0}}};
        return true;
    }
    }
}

static void declare_param(Ctx *c, const Stmt *s, Vec *inits) {
    int64_t shape[MAX_RANK];
    bool batch[MAX_RANK];
    Init *init = arena_alloc(sizeof(Init));
    if (!declare(c, s->name, s->name_loc) || !declared_shape(c, s, shape, batch) ||
        !eval_init(c, s->value, init))
        return;
    if (init->dist == INIT_NUMBER) { /* a number fills the param: rounded to float once */
        if (!(fabs(init->value) <= FLT_MAX)) {
            error_at(s->value->loc, "the constant %g is beyond float's range", init->value);
            return;
        }
        init->dist = INIT_CONST;
        init->value = (float)init->value;
    }
    Tensor *t = new_tensor(c, T_PARAM, DT_FLOAT, s->ndims, shape, NULL, s->name_loc);
    if (!check_size(t, loc_join(s->dims[0]->loc, s->dims[s->ndims - 1]->loc)))
        return;
    t->name = s->name;
    t->is_temp = false;
    t->param_index = c->m->params.len;
    vec_push(&c->m->params, t);
    vec_push(inits, init);
    sym_add(&c->syms, s->name, SYM_TENSOR, s->name_loc)->tensor = t;
}

/* ---- forward lines ---- */

static const char *fresh_name(Ctx *c, const char *base, int *k) {
    for (;;) {
        const char *name = arena_printf("%s_t%d", base, ++*k);
        if (!sym_find(&c->syms, name))
            return name;
    }
}

static void assign(Ctx *c, const Stmt *s) {
    c->line_temps.len = 0;
    if (!declare(c, s->name, s->name_loc))
        return;
    Val v = eval(c, s->value);
    if (v.kind == V_ERROR)
        return;
    if (v.kind == V_SCALAR) {
        sym_add(&c->syms, s->name, SYM_SCALAR, s->name_loc)->scalar = v.s;
        return;
    }
    if (v.kind != V_TENSOR) {
        error_at(s->value->loc, v.kind == V_MAX ? "max(dim) returns (values, indices): use .values"
                                                : "a forward line must compute a tensor");
        return;
    }
    Tensor *t = v.t;
    if (t->kind != T_ACT || t->stmt != s) {   /* an alias: give it a tensor of its own */
        if (t->dtype != DT_FLOAT) {
            error_at(s->value->loc, "integer inputs cannot be renamed");
            return;
        }
        Tensor *copy = new_tensor(c, T_ACT, DT_FLOAT, t->rank, t->shape, t->batch, s->value->loc);
        new_op(c, OP_VIEW, copy, t, NULL, s->value->loc);
        t = copy;
    }
    int k = 0;
    for (int i = 0; i < c->line_temps.len; i++) {
        Tensor *tmp = c->line_temps.items[i];
        if (tmp != t && tmp->is_temp) {
            tmp->name = fresh_name(c, s->name, &k);
            sym_add(&c->syms, tmp->name, SYM_HIDDEN, s->name_loc)->tensor = tmp;
        }
    }
    t->name = s->name;
    t->is_temp = false;
    sym_add(&c->syms, s->name, SYM_TENSOR, s->name_loc)->tensor = t;
}

/* ---- after lowering: dependencies and batch statistics ---- */

static bool batch_dim_not_first(const Tensor *t) { return has_batch(t) && !t->batch[0]; }

/* The op that moves the batch dim, not every op after it. */
static bool moves_batch_dim(const Op *op) {
    if (!batch_dim_not_first(op->out))
        return false;
    for (int k = 0; k < op->nin; k++)
        if (batch_dim_not_first(op->in[k]))
            return false;
    return true;
}

/* ---- ops that mix the rows of a batch ----
 * Inference runs on chunks of up to 1024 rows, and calibration computes
 * each batch statistic over the whole training set. So a statistic must
 * mean the same whatever the number of rows it sees: a mean or a var, or a
 * sum over the batch scaled by 1/n or 1/(n-1) written with the batch dim
 * (calibration divides by the rows it summed). Anything else that mixes
 * rows would be computed per chunk at inference: silently wrong, so refused. */

static bool is_close(double a, double b) { return fabs(a - b) <= 1e-12 * fabs(b); }

/* x.sum(0) * c or x.sum(0) / c normalises the sum when c is 1/n, 1/(n-1) (or
 * n, n-1 for a division); `written` says c was spelled with the batch dim. */
static bool normalises(const Op *op, int64_t batch, bool *written) {
    double n = (double)batch;
    bool scale = (op->kind == OP_MUL_C && (is_close(op->c.value, 1 / n) || (n > 1 && is_close(op->c.value, 1 / (n - 1))))) ||
                 (op->kind == OP_DIV_C && (is_close(op->c.value, n) || is_close(op->c.value, n - 1)));
    *written = op->c.rows_expr != NULL;
    return scale;
}

static bool op_reads(const Op *op, const Tensor *t) {
    for (int k = 0; k < op->nin; k++)
        if (op->in[k] == t)
            return true;
    return false;
}

/* Every reader of a frozen sum over the batch that feeds rows must scale
 * it by 1/n or 1/(n-1), written with the batch dim. */
static void check_batch_sum(const Model *m, const Op *sum) {
    for (int i = 0; i < m->ops.len; i++) {
        const Op *op = m->ops.items[i];
        if (!op_reads(op, sum->out))
            continue;
        if (!op->out->frozen && !has_batch(op->out))
            continue;   /* the loss's side of the statistic, not a statistic */
        bool written = false;
        if (op->nin == 1 && normalises(op, m->batch, &written) && written)
            continue;
        if (op->nin == 1 && normalises(op, m->batch, &written))
            error_at(op->loc, "a batch statistic scaled by the number %g: write it with the batch dim '%s' "
                     "(e.g. 1/%s), so that calibration over the training set divides by the rows it sums "
                     "(and -D %s=... keeps it a mean)", op->c.value, m->batch_dim, m->batch_dim, m->batch_dim);
        else {
            error_at(op->loc, "a sum over the batch dim used as a batch statistic must be scaled by 1/%s "
                     "or 1/(%s-1) (or use .mean() or .var()): inference computes it over the whole "
                     "training set", m->batch_dim, m->batch_dim);
            note_at(sum->loc, "the sum over the batch dim is here");
        }
        return;
    }
}

static void check_rows_mixing(Model *m) {
    bool *rows_dep = arena_alloc(sizeof(bool) * (size_t)m->tensors.len);   /* computed with the batch size */
    for (int i = 0; i < m->ops.len; i++) {
        Op *op = m->ops.items[i];
        bool dep = op_info[op->kind].family == EW1 && op->c.rows_expr;
        for (int k = 0; k < op->nin; k++)
            dep |= rows_dep[op->in[k]->id] && !op->in[k]->frozen;
        rows_dep[op->out->id] = dep && !op->out->frozen;
        if (op->kind == OP_SOFTMAX && (op->axes & batch_axes(op->in[0])))
            error_at(op->loc, "a softmax over the batch dim mixes rows, which inference cannot do: it runs "
                     "on chunks of rows, and only sums, means and vars over the batch are calibrated");
        else if (op->batch_reduction && op->out->frozen && rows_dep[op->in[0]->id])
            error_at(op->loc, "this batch statistic reads values computed with the batch size %s, which "
                     "inference would take as the rows of a chunk: scale the statistic instead, e.g. "
                     "1/%s*x.sum(0)", m->batch_dim, m->batch_dim);
        else if (op->batch_reduction && op->out->frozen && op->kind == OP_SUM)
            check_batch_sum(m, op);
    }
}

static void mark_dependencies(Model *m) {
    bool *stat_dep = arena_alloc(sizeof(bool) * (size_t)m->tensors.len);
    for (int i = 0; i < m->ops.len; i++) {
        Op *op = m->ops.items[i];
        uint32_t deps = 0;
        bool dep = op->batch_reduction;
        for (int k = 0; k < op->nin; k++) {
            Tensor *in = op->in[k];
            deps |= in->kind == T_INPUT ? 1u << in->input_index : in->input_deps;
            dep |= stat_dep[in->id];
        }
        op->out->input_deps = deps;
        stat_dep[op->out->id] = dep;
    }
    /* A batch statistic: no batch dim, computed from a reduction over the
     * batch, and broadcast back onto rows (directly or through others). */
    for (int i = m->ops.len - 1; i >= 0; i--) {
        Op *op = m->ops.items[i];
        bool feeds_rows = has_batch(op->out) || op->out->frozen;
        for (int k = 0; k < op->nin; k++) {
            Tensor *in = op->in[k];
            if (feeds_rows && in->kind == T_ACT && stat_dep[in->id] && !has_batch(in))
                in->frozen = true;
        }
    }
    for (int i = 0; i < m->ops.len; i++) {
        Op *op = m->ops.items[i];
        if (op->kind == OP_VIEW && has_batch(op->in[0]) && !op->out->batch[0])
            error_at(op->loc, "a view must keep the batch dim first, e.g. x.view(x.shape[0], -1) "
                     "or x.view(%s, -1), so that inference can run on any number of rows", m->batch_dim);
        else if (moves_batch_dim(op))
            error_at(op->loc, "the batch dim must stay the first dim (inference runs on any number of rows)");
        if (op->batch_reduction && op->out->frozen && op->kind == OP_MAX)
            error_at(op->loc, "a max over the batch dim cannot be calibrated for inference "
                     "(batch statistics may be sums, means or variances)");
        if (op->batch_reduction && op->out->frozen && op->in[0]->frozen)
            error_at(op->loc, "internal: nested batch statistic");
    }
    check_rows_mixing(m);
}

/* Forgets the ops from index `ops` on and the tensors they made (from
 * index `tensors` on; a declared input or param made after them stays). */
static void drop_ops_since(Model *m, int ops, int tensors) {
    m->ops.len = ops;
    int kept = tensors;
    for (int i = tensors; i < m->tensors.len; i++) {
        Tensor *t = m->tensors.items[i];
        if (t->kind != T_ACT) {
            t->id = kept;
            m->tensors.items[kept++] = t;
        }
    }
    m->tensors.len = kept;
}

/* Temporaries nothing reads (made on the way to a number inside a tensor
 * line, y = x * x.tanh().shape[1]) compute nothing: drop them and their
 * ops. Named tensors stay, read or not: they are the user's. */
static void drop_dead_temps(Model *m) {
    bool *read = arena_alloc(sizeof(bool) * (size_t)m->tensors.len);
    bool *dead = arena_alloc(sizeof(bool) * (size_t)m->tensors.len);
    for (int i = m->ops.len - 1; i >= 0; i--) {
        Op *op = m->ops.items[i];
        if (op->out->is_temp && !read[op->out->id]) {
            dead[op->out->id] = true;
            continue;
        }
        for (int k = 0; k < op->nin; k++)
            read[op->in[k]->id] = true;
    }
    int ops = 0, tensors = 0;
    for (int i = 0; i < m->ops.len; i++) {
        Op *op = m->ops.items[i];
        if (!dead[op->out->id]) {
            op->id = ops;
            m->ops.items[ops++] = op;
        }
    }
    for (int i = 0; i < m->tensors.len; i++) {
        Tensor *t = m->tensors.items[i];
        if (!dead[i]) {
            t->id = tensors;
            m->tensors.items[tensors++] = t;
        }
    }
    m->ops.len = ops;
    m->tensors.len = tensors;
}

void build_model(Program *prog, Model *m, Define *defs, int ndefs) {
    Ctx c = {.m = m};
    Vec inits = {0};
    m->src = prog->src;
    for (int i = 0; i < prog->stmts.len; i++) {
        const Stmt *s = prog->stmts.items[i];
        int ops = m->ops.len, tensors = m->tensors.len;
        c.stmt = s;
        switch (s->kind) {
        case S_DIM: declare_dim(&c, s, defs, ndefs); break;
        case S_INPUT: declare_input(&c, s); break;
        case S_PARAM: declare_param(&c, s, &inits); break;
        case S_ASSIGN: assign(&c, s); break;
        }
        /* Ops made on the way to a number (p.log().shape[0], a shape in a
         * declaration) compute nothing anyone reads: drop them. */
        Sym *bound = sym_find(&c.syms, s->name);
        if (!bound || bound->kind != SYM_TENSOR || s->kind != S_ASSIGN)
            drop_ops_since(m, ops, tensors);
        /* A line binds its name unless it failed, and it failed only after
         * an error (its own or one it depends on). */
        if (m->ops.len > MAX_OPS) {
            error_at(s->loc, "the model has more than %d operations", MAX_OPS);
            break;
        }
        if (!sym_find(&c.syms, s->name) && !reserved(s->name)) {
            if (!diag_errors)
                error_at(s->loc, "internal: this line failed without a diagnostic");
            sym_add(&c.syms, s->name, SYM_POISON, s->name_loc);
        }
    }
    m->inits = arena_alloc(sizeof(Init) * (size_t)(inits.len + 1));
    for (int i = 0; i < inits.len; i++)
        m->inits[i] = *(Init *)inits.items[i];
    for (int i = 0; i < ndefs; i++)
        if (!defs[i].loc.end) {
            const char *hint = suggest_dim(m, defs[i].name);
            error_plain("-D %s=%lld: the spec has no dim named '%s'%s%s%s", defs[i].name,
                        (long long)defs[i].value, defs[i].name, hint ? "; did you mean '" : "",
                        hint ? hint : "", hint ? "'?" : "");
        }
    if (diag_errors)
        return;
    if (!m->inputs.len)
        error_plain("the spec declares no input: declare the batch, e.g. 'input Xb: int[n, 3] < 27'");
    Sym *loss = sym_find(&c.syms, "loss");
    if (loss && loss->kind == SYM_SCALAR) {
        error_at(loss->loc, "'loss' must be a scalar tensor, but it is a number");
        return;
    }
    if (!loss || loss->kind != SYM_TENSOR) {
        error_plain("no 'loss': a forward line must assign the scalar to differentiate to 'loss'");
        return;
    }
    m->loss = loss->tensor;
    if (m->loss->rank != 0) {
        error_at(m->loss->stmt->name_loc, "'loss' must be a scalar, but it has shape %s",
                 shape_str(m->loss));
        return;
    }
    if (m->loss->kind != T_ACT) {
        error_at(m->loss->stmt->name_loc, "'loss' must be computed by forward lines");
        return;
    }
    Sym *logits = sym_find(&c.syms, "logits");
    if (logits && logits->kind == SYM_TENSOR && logits->tensor->rank == 2 &&
        logits->tensor->batch[0] && logits->tensor->kind == T_ACT)
        m->logits = logits->tensor;
    drop_dead_temps(m);
    mark_dependencies(m);
    name_tensors(m);
}
