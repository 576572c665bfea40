/* lower.c - lowers the AST to tensor IR, inferring and checking every shape
 * with PyTorch's rules (broadcasting, keepdim, view with -1, matmul).
 * Each forward line becomes one or more ops; the last op's tensor takes the
 * line's name, the others are temporaries named after it (hprebn_t1).
 * The op table (ops.def) says which spellings reach which op.
 * Memory: all IR comes from the arena. */
#include "lower.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    /* mask: Python's bool, which counts as an int */
    case BIN_EQ: r.value = a.value == b.value; fmt = "(%s == %s)"; break;
    case BIN_NE: r.value = a.value != b.value; fmt = "(%s != %s)"; break;
    case BIN_LT: r.value = a.value < b.value; fmt = "(%s < %s)"; break;
    case BIN_LE: r.value = a.value <= b.value; fmt = "(%s <= %s)"; break;
    case BIN_GT: r.value = a.value > b.value; fmt = "(%s > %s)"; break;
    case BIN_GE: r.value = a.value >= b.value; fmt = "(%s >= %s)"; break;
    }
    if (comparison(op))
        r.is_int = true;
    /* float('inf') may take part, as in Python; finite numbers may not overflow */
    bool finite = isfinite(a.value) && isfinite(b.value);
    if ((finite && !isfinite(r.value)) || (r.is_int && fabs(r.value) > 9e15)) {
        error_at(loc, "constant expression overflows");
        return ERR;
    }
    if (a.rows_expr || b.rows_expr)
        r.rows_expr = arena_printf(fmt, rows_c(a), rows_c(b));
    return scalar_val(r);
}


/* ---- call arguments ---- */

/* Binds a call's arguments to PyTorch's parameters, given in positional
 * order (NULL-terminated); each may also be passed by keyword, and
 * `keepdims` stands for `keepdim` as in PyTorch. bound[i] is the argument
 * for params[i], or NULL when absent. */
bool bind_args(Node *call, const char *const *params, Node **bound) {
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

bool eval_int(Ctx *c, Node *n, int64_t *out, Scalar *full) {
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

bool eval_bool(Ctx *c, Node *n, bool *out) {
    if (n->kind == N_NAME && (!strcmp(n->name, "True") || !strcmp(n->name, "False"))) {
        *out = n->name[0] == 'T';
        return true;
    }
    error_at(n->loc, "expected True or False");
    (void)c;
    return false;
}

/* A tensor of any dtype (masks and integer inputs too). */
Tensor *any_tensor(Ctx *c, Node *n) {
    Val v = eval(c, n);
    if (v.kind == V_ERROR)
        return NULL;
    if (v.kind != V_TENSOR) {
        error_at(n->loc, "expected a tensor here");
        return NULL;
    }
    return v.t;
}

Tensor *expect_tensor(Ctx *c, Node *n) {
    Tensor *t = any_tensor(c, n);
    if (!t)
        return NULL;
    if (t->dtype == DT_BOOL) {
        error_at(n->loc, "expected a float tensor here, not mask %s (a bool tensor); use .float() for its 0 and 1",
                 describe(t));
        return NULL;
    }
    if (t->dtype != DT_FLOAT) {
        error_at(n->loc, "'%s' is an integer input; it can only index a table", t->name);
        return NULL;
    }
    return t;
}

int normalize_dim(Tensor *t, int64_t d, Loc loc) {
    if (d < -t->rank || d >= t->rank || (t->rank == 0)) {
        error_at(loc, "dimension %lld is out of range for %s of rank %d", (long long)d,
                 describe(t), t->rank);
        return -1;
    }
    return (int)(d < 0 ? d + t->rank : d);
}

/* The dims of a reduction: an int, a tuple of ints, or absent (all). */
bool reduce_axes(Ctx *c, Tensor *t, Node *dim, uint32_t *axes) {
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

/* The number of elements a reduction over axes takes (rows_expr when the
 * batch dim is among them). */
static Scalar reduced_count(Ctx *c, const Tensor *t, uint32_t axes) {
    Scalar count = int_scalar(1);
    bool over_batch = false;
    for (int i = 0; i < t->rank; i++)
        if (axes & (1u << i)) {
            count.value *= (double)t->shape[i];
            over_batch |= t->batch[i];
        }
    if (over_batch) {
        long long per_row = (long long)(count.value / (double)c->m->batch);
        count.rows_expr = per_row == 1 ? "(double)rows" : arena_printf("((double)rows * %lld)", per_row);
    }
    return count;
}

/* A REDUCE op of t over axes (sum, mean, var, max). */
Op *reduce_op(Ctx *c, OpKind kind, Tensor *t, uint32_t axes, bool keepdim, Loc loc) {
    int64_t shape[MAX_RANK];
    bool batch[MAX_RANK];
    int rank = 0;
    for (int i = 0; i < t->rank; i++) {
        if (axes & (1u << i)) {
            if (keepdim) {
                shape[rank] = 1;
                batch[rank++] = false;
            }
        } else {
            shape[rank] = t->shape[i];
            batch[rank++] = t->batch[i];
        }
    }
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, rank, shape, batch, loc);
    Op *op = new_op(c, kind, out, t, NULL, loc);
    op->axes = axes;
    op->keepdim = keepdim;
    op->unbiased = true;
    op->c = reduced_count(c, t, axes);
    op->batch_reduction = op->c.rows_expr != NULL;
    return op;
}

static Val reduction(Ctx *c, OpKind kind, Tensor *t, Node *call, bool single_dim, const char *fn) {
    /* PyTorch's positional order: (dim, keepdim), var(dim, unbiased, keepdim);
     * var and std also take correction=0|1 (by keyword) for unbiased. */
    static const char *const plain[] = {"dim", "keepdim", NULL};
    static const char *const var[] = {"dim", "unbiased", "keepdim", "correction", NULL};
    Node *arg[4];
    for (int i = 0; kind != OP_VAR && i < call->nargs; i++)
        if (call->args[i]->kind == N_KWARG && !strcmp(call->args[i]->name, "unbiased")) {
            error_at(call->args[i]->lhs->loc, "only var takes 'unbiased'");
            return ERR;
        }
    if (!bind_args(call, kind == OP_VAR ? var : plain, arg))
        return ERR;
    Node *dim = arg[0], *keep = kind == OP_VAR ? arg[2] : arg[1], *unb = kind == OP_VAR ? arg[1] : NULL;
    Node *corr = kind == OP_VAR ? arg[3] : NULL;
    if (unb && corr) {
        error_at(corr->loc, "give either unbiased or correction, not both");
        return ERR;
    }
    if (single_dim && (!dim || dim->kind == N_LIST)) {
        error_at(call->loc, "%s needs exactly one dim", fn);
        return ERR;
    }
    uint32_t axes;
    bool keepdim = false, unbiased = true;
    if (!reduce_axes(c, t, dim, &axes) || (keep && !eval_bool(c, keep, &keepdim)) ||
        (unb && !eval_bool(c, unb, &unbiased)))
        return ERR;
    if (corr) {
        int64_t k;
        if (!eval_int(c, corr, &k, NULL))
            return ERR;
        if (k != 0 && k != 1) {
            error_at(corr->loc, "correction must be 0 or 1, got %lld", (long long)k);
            return ERR;
        }
        unbiased = k == 1;
    }
    if (kind == OP_VAR && unbiased && reduced_count(c, t, axes).value < 2) {
        error_at(call->loc, "unbiased variance over %lld element needs at least 2",
                 (long long)reduced_count(c, t, axes).value);
        return ERR;
    }
    Op *op = reduce_op(c, kind, t, axes, keepdim, call->loc);
    op->unbiased = unbiased;
    return kind == OP_MAX ? (Val){.kind = V_MAX, .t = op->out} : tensor_val(op->out);
}

/* x.max() and x.min() without a dim: the max over x viewed as one dim, a
 * number (a tensor, not (values, indices)). Its gradient goes to the first
 * maximum only (PyTorch's max() without a dim shares it evenly among ties;
 * max(dim) gives it to one, as here). */
static Tensor *full_max(Ctx *c, Tensor *t, Loc loc) {
    int64_t numel = 1;
    for (int i = 0; i < t->rank; i++)
        numel *= t->shape[i];
    bool batch = has_batch(t);
    Tensor *flat = t;
    if (t->rank != 1) {
        flat = new_tensor(c, T_ACT, DT_FLOAT, 1, &numel, &batch, loc);
        new_op(c, OP_VIEW, flat, t, NULL, loc);
    }
    return reduce_op(c, OP_MAX, flat, 1u, false, loc)->out;
}

/* x.min(dim, keepdim) and x.min(): -(-x).max(...), so the gradient goes to
 * the first minimum */
static Val min_call(Ctx *c, Tensor *t, Node *call) {
    if (t->dtype != DT_FLOAT) {
        error_at(call->loc, ".min() needs a float tensor, got %s", describe(t));
        return ERR;
    }
    Tensor *neg = unary_op(c, OP_NEG, t, int_scalar(0), call->loc).t;
    if (!call->nargs)
        return unary_op(c, OP_NEG, full_max(c, neg, call->loc), int_scalar(0), call->loc);
    Val v = reduction(c, OP_MAX, neg, call, true, "min");
    if (v.kind == V_MAX)
        v.t = unary_op(c, OP_NEG, v.t, int_scalar(0), call->loc).t;
    return v;
}

/* The leading dims of a batched product: a's and b's dims before their
 * last two, broadcast as PyTorch's matmul does (aligned right). The batch
 * dim may only meet its own kind or a dim of size 1. */
static bool batch_dims(Tensor *a, Tensor *b, Loc loc, int lead, int64_t *shape, bool *batch) {
    int la = a->rank - 2, lb = b->rank - 2;
    for (int i = 0; i < lead; i++) {
        int ia = i - (lead - la), ib = i - (lead - lb);
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            error_at(loc, "matmul batch dims do not broadcast: %s @ %s: dimension %d is %lld vs %lld", describe(a),
                     describe(b), i, (long long)da, (long long)db);
            return false;
        }
        bool rows_a = ia >= 0 && a->batch[ia], rows_b = ib >= 0 && b->batch[ib];
        if (da == db && da != 1 && rows_a != rows_b) {
            if (rows_a)
                batch_mismatch(b, ib, a, loc);
            else
                batch_mismatch(a, ia, b, loc);
            return false;
        }
        shape[i] = da > db ? da : db;
        batch[i] = (rows_a && da == shape[i]) || (rows_b && db == shape[i]);
    }
    return true;
}

/* a @ b (and torch.matmul) with PyTorch's rules for operands of 2 dims or
 * more: [..., M, K] @ [..., K, N] is [..., M, N]. A 2-D b (a weight) is
 * OP_MATMUL, one product over all of a's leading dims folded into rows; a
 * b of 3 or 4 dims is OP_BMM, one product per index of the broadcast
 * leading dims (attention's q @ k^T and att @ v). */
static Val matmul(Ctx *c, Tensor *a, Tensor *b, Loc loc);

/* t's elements as shape (the same count, in order) */
static Tensor *view_as(Ctx *c, Tensor *t, int rank, const int64_t *shape, const bool *batch, Loc loc) {
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, rank, shape, batch, loc);
    new_op(c, OP_VIEW, out, t, NULL, loc);
    return out;
}

/* A 1-D operand of @, as PyTorch's matmul takes it: x @ v is x @ v[:, None]
 * without its last dim, v @ W is v[None, :] @ W without its dim before the
 * last. Views and a matmul. */
static Val matmul_vector(Ctx *c, Tensor *a, Tensor *b, Loc loc) {
    static const bool no_batch[2] = {false, false};
    bool right = b->rank == 1;
    Tensor *v = right ? b : a;
    if (a->shape[a->rank - 1] != b->shape[right ? 0 : b->rank - 2]) {
        error_at(loc, "matmul inner dimensions differ: %s @ %s: %lld vs %lld", shape_str(a), shape_str(b),
                 (long long)a->shape[a->rank - 1], (long long)b->shape[right ? 0 : b->rank - 2]);
        return ERR;
    }
    if (v->dtype != DT_FLOAT || v->batch[0]) {
        error_at(loc, "%s @ %s: a 1-D operand of @ must be a float tensor without the batch dim", describe(a),
                 describe(b));
        return ERR;
    }
    int64_t vshape[2] = {right ? v->shape[0] : 1, right ? 1 : v->shape[0]};
    Tensor *v2 = view_as(c, v, 2, vshape, no_batch, loc);
    Val r = right ? matmul(c, a, v2, loc) : matmul(c, v2, b, loc);
    if (r.kind != V_TENSOR)
        return ERR;
    int64_t shape[MAX_RANK];
    bool batch[MAX_RANK];
    int rank = 0, drop = r.t->rank - (right ? 1 : 2);
    for (int i = 0; i < r.t->rank; i++)
        if (i != drop) {
            shape[rank] = r.t->shape[i];
            batch[rank++] = r.t->batch[i];
        }
    return tensor_val(view_as(c, r.t, rank, shape, batch, loc));
}

static Val matmul(Ctx *c, Tensor *a, Tensor *b, Loc loc) {
    if ((a->rank == 1) != (b->rank == 1))   /* x @ v, v @ W */
        return matmul_vector(c, a, b, loc);
    if (a->rank < 2 || b->rank < 2) {
        error_at(loc, "@ supports [.., M, K] @ [.., K, N] with 2 to %d dims each, and [.., M, K] @ [K] and "
                 "[K] @ [.., K, N], not %s @ %s", MAX_RANK,
                 shape_str(a), shape_str(b));
        return ERR;
    }
    if (a->shape[a->rank - 1] != b->shape[b->rank - 2]) {
        error_at(loc, "matmul inner dimensions differ: %s @ %s: %lld vs %lld", shape_str(a),
                 shape_str(b), (long long)a->shape[a->rank - 1], (long long)b->shape[b->rank - 2]);
        return ERR;
    }
    if (b->batch[b->rank - 2] || a->batch[a->rank - 1] || b->batch[b->rank - 1]) {
        error_at(loc, "%s @ %s: a matmul may not sum over, or make columns of, the batch dim "
                 "(inference runs on any number of rows)", describe(a), describe(b));
        return ERR;
    }
    int rank = a->rank > b->rank ? a->rank : b->rank, lead = rank - 2;
    int64_t shape[MAX_RANK];
    bool batch[MAX_RANK];
    if (!batch_dims(a, b, loc, lead, shape, batch))
        return ERR;
    shape[rank - 2] = a->shape[a->rank - 2];
    batch[rank - 2] = a->batch[a->rank - 2];
    shape[rank - 1] = b->shape[b->rank - 1];
    batch[rank - 1] = false;
    if (batch[rank - 2] && rank > 2) {
        error_at(loc, "%s @ %s would move the batch dim of %s from the front; the batch dim must stay the "
                 "first dim (inference runs on any number of rows)", describe(a), describe(b), describe(a));
        return ERR;
    }
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, rank, shape, batch, loc);
    if (!check_size(out, loc))
        return ERR;
    new_op(c, b->rank == 2 ? OP_MATMUL : OP_BMM, out, a, b, loc);
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
bool power_op(double exponent, OpKind *kind) {
    for (int k = 0; k < OP_COUNT; k++)
        if (op_info[k].power && strtod(op_info[k].power, NULL) == exponent) {
            *kind = (OpKind)k;
            return true;
        }
    return false;
}

/* A mask in arithmetic: PyTorch promotes it to float (0 and 1) beside a
 * float tensor or a float number in + - * /; anything else (two masks, an
 * int, @, **) would give PyTorch an integer or bool tensor, or an error. */
static bool bool_arith(BinOp op, Val a, Val b, Node *n) {
    bool ma = a.kind == V_TENSOR && a.t->dtype == DT_BOOL, mb = b.kind == V_TENSOR && b.t->dtype == DT_BOOL;
    if (!ma && !mb)
        return true;
    Val other = ma ? b : a;
    bool promotes = op == BIN_ADD || op == BIN_SUB || op == BIN_MUL || op == BIN_DIV;
    if (promotes && ((other.kind == V_TENSOR && other.t->dtype == DT_FLOAT) ||
                     (other.kind == V_SCALAR && !other.s.is_int)))
        return true;
    Node *mask = ma ? n->lhs : n->rhs;
    error_at(mask->loc, "mask %s (a bool tensor) takes part only in + - * / with a float tensor or a float "
             "number; use .float() for its 0 and 1", describe(ma ? a.t : b.t));
    return false;
}

static Val arith(Ctx *c, BinOp op, Val a, Val b, Node *n) {
    if (a.kind == V_ERROR || b.kind == V_ERROR)
        return ERR;
    Node *bad = a.kind != V_SCALAR && a.kind != V_TENSOR ? n->lhs
              : b.kind != V_SCALAR && b.kind != V_TENSOR ? n->rhs : NULL;
    if (bad) {
        Val which = bad == n->lhs ? a : b;
        error_at(bad->loc, which.kind == V_MAX     ? "max(dim) returns (values, indices): use .values"
                           : which.kind == V_RANGE ? "a range (torch.arange, range) only indexes: table[pos], "
                                                     "x[range(n), targets]; it takes no arithmetic"
                                                   : "expected a tensor or a number here");
        return ERR;
    }
    Tensor *ta = a.kind == V_TENSOR ? a.t : NULL, *tb = b.kind == V_TENSOR ? b.t : NULL;
    if ((ta || tb) && comparison(op))   /* integer inputs too: X == 0 */
        return compare(c, op, a, b, n);
    if ((ta && ta->dtype == DT_INT) || (tb && tb->dtype == DT_INT)) {
        Node *which = ta && ta->dtype == DT_INT ? n->lhs : n->rhs;
        error_at(which->loc, "integer input '%s' cannot take part in arithmetic; it can only index a table "
                 "or be compared", (ta && ta->dtype == DT_INT ? ta : tb)->name);
        return ERR;
    }
    if (!bool_arith(op, a, b, n))
        return ERR;
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

/* x.shape[k], x.size(k): an int; the batch dim's is the training batch size,
 * flagged so that a view taking it infers the rows at inference. */
static Scalar shape_scalar(const Tensor *t, int k) {
    Scalar s = int_scalar(t->shape[k]);
    if (t->batch[k]) {
        s.is_batch = true;
        s.rows_expr = "rows";
    }
    return s;
}

/* The declared input an integer tensor reads: itself, or the input a view
 * of it (targets.view(-1)) reads. What the input holds (ignore_index) is
 * the declared one's, whichever view said so. */
static Tensor *declared_input(Ctx *c, Tensor *t) { return c->m->inputs.items[t->input_index]; }

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
    const Tensor *declared = declared_input(c, index);
    if (declared->ignore) {   /* fn: a cross_entropy target with ignore_index holds it */
        error_at(n->args[0]->loc, "'%s' holds ignore_index=%lld (a cross_entropy target), so it cannot index a table",
                 index->name, (long long)declared->ignore);
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
    if (!not_computed(target, "the targets of x[range(n), targets]", n->args[1]->loc))
        return ERR;
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
        return k < 0 ? ERR : scalar_val(shape_scalar(base.t, k));
    }
    if (base.kind != V_TENSOR) {
        error_at(n->lhs->loc, "only tensors and .shape can be indexed");
        return ERR;
    }
    if (base.t->dtype != DT_INT && basic_index(c, n))
        return mask_result(base.t, slice_index(c, base.t, n));   /* a mask's slice is a mask */
    Val idx[2];
    if (n->nargs > 2) {
        error_at(n->loc, "unsupported indexing (supported: table[int_input], x[range(n), targets], x[:, i, a:b:c], x[..., k], x.shape[k])");
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
    if (n->nargs == 1 && idx[0].kind == V_RANGE)   /* shape: table[torch.arange(t)] is table[:t] */
        return range_rows(c, base.t, idx[0], n);
    if (n->nargs == 2 && idx[0].kind == V_RANGE && !idx[0].ones && idx[1].kind == V_TENSOR)
        return pick(c, base.t, idx[0], idx[1].t, n);
    error_at(n->loc, "unsupported indexing (supported: table[int_input], x[range(n), targets], x[:, i, a:b:c], x[..., k], x.shape[k])");
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
    static const char *const params[] = {"input", "target", "ignore_index", NULL};
    Node *arg[3];
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
    if (!not_computed(tv.t, "the targets of F.cross_entropy", arg[1]->loc))
        return ERR;
    /* ignore_index: rows with that target count for nothing, and the mean
     * is over the others (PyTorch's default -100 is never a valid value
     * here: without ignore_index every target must lie in [0, bound)). */
    int64_t ignore = 0;
    if (arg[2]) {
        if (!eval_int(c, arg[2], &ignore, NULL))
            return ERR;
        if (ignore >= 0 || ignore < INT32_MIN) {
            error_at(arg[2]->loc, "ignore_index must be a negative int32 (targets in [0, %lld) are classes), got %lld",
                     (long long)tv.t->bound, (long long)ignore);
            return ERR;
        }
        if (tv.t->kind != T_INPUT) {
            error_at(arg[1]->loc, "targets with ignore_index must be an integer input");
            return ERR;
        }
        /* an ignored target is no index: the value would read outside a table
         * (the input itself, or a view of it: the same values) */
        for (int i = 0; i < c->m->ops.len; i++) {
            Op *use = c->m->ops.items[i];
            if ((use->kind == OP_EMBED || use->kind == OP_PICK) && use->in[1]->kind == T_INPUT &&
                use->in[1]->input_index == tv.t->input_index) {   /* the input, or a view of it */
                error_at(arg[1]->loc, "'%s' also indexes a table, so it cannot hold ignore_index=%lld",
                         tv.t->name, (long long)ignore);
                note_at(use->loc, "it indexes here");
                return ERR;
            }
        }
        if (declared_input(c, tv.t)->ignore && declared_input(c, tv.t)->ignore != ignore) {
            error_at(arg[2]->loc, "'%s' is already the target of a cross_entropy with ignore_index=%lld",
                     tv.t->name, (long long)declared_input(c, tv.t)->ignore);
            return ERR;
        }
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
    op->ignore = ignore;
    if (ignore)     /* the input accepts it from now on (the runtime's input checks), also through a view */
        tv.t->ignore = declared_input(c, tv.t)->ignore = ignore;
    op->c = int_scalar(logits->shape[0]);
    if (logits->batch[0])   /* rows * t after logits.view(-1, V) of [n, t, V] */
        op->c.rows_expr = logits->shape[0] == c->m->batch
                              ? "rows" : arena_printf("((double)rows * %lld)", (long long)(logits->shape[0] / c->m->batch));
    return tensor_val(out);
}

/* F.nll_loss(logp, Y): -logp[range(n), Y].mean(), PyTorch's default
 * reduction, no op of its own (pick, mean, neg). */
static Val nll_loss(Ctx *c, Node *call) {
    static const char *const params[] = {"input", "target", NULL};
    Node *arg[2];
    if (!bind_args(call, params, arg))
        return ERR;
    if (!arg[0] || !arg[1]) {
        error_at(call->loc, "F.nll_loss takes (input, target)");
        return ERR;
    }
    Tensor *logp = expect_tensor(c, arg[0]);
    Val tv = eval(c, arg[1]);
    if (!logp || tv.kind == V_ERROR)
        return ERR;
    if (logp->rank != 2 || logp->dtype != DT_FLOAT) {
        error_at(arg[0]->loc, "F.nll_loss needs 2-D float log-probabilities, got %s", describe(logp));
        return ERR;
    }
    if (tv.kind != V_TENSOR || tv.t->dtype != DT_INT || tv.t->rank != 1 || tv.t->shape[0] != logp->shape[0]) {
        error_at(arg[1]->loc, "targets must be an integer input of shape [%lld]", (long long)logp->shape[0]);
        return ERR;
    }
    if (!not_computed(tv.t, "the targets of F.nll_loss", arg[1]->loc))
        return ERR;
    if (tv.t->bound > logp->shape[1]) {
        error_at(arg[1]->loc, "'%s' takes values in [0, %lld) but the input has %lld classes", tv.t->name,
                 (long long)tv.t->bound, (long long)logp->shape[1]);
        return ERR;
    }
    if (!logp->batch[0])
        return batch_mismatch(logp, 0, tv.t, arg[0]->loc);
    Tensor *picked = new_tensor(c, T_ACT, DT_FLOAT, 1, logp->shape, logp->batch, call->loc);
    new_op(c, OP_PICK, picked, logp, tv.t, call->loc);
    Tensor *mean = reduce_op(c, OP_MEAN, picked, 1u, false, call->loc)->out;
    return unary_op(c, OP_NEG, mean, int_scalar(0), call->loc);
}

bool tensor_list(Ctx *c, Node *n, Vec *out) {
    if (n->kind == N_LIST) {
        for (int i = 0; i < n->nargs; i++) {
            Tensor *t = expect_tensor(c, n->args[i]);
            if (!t)
                return false;
            vec_push(out, t);
        }
        return true;
    }
    Val v = eval(c, n);
    if (v.kind == V_ERROR)
        return false;
    if (v.kind != V_TENSORS) {
        error_at(n->loc, "expected a list of tensors here");
        return false;
    }
    for (int i = 0; i < v.items->len; i++) {
        Tensor *t = v.items->items[i];
        if (t->dtype != DT_FLOAT) {
            error_at(n->loc, "'%s' is an integer tensor; a list of float tensors is expected", t->name);
            return false;
        }
        vec_push(out, t);
    }
    return true;
}

/* torch.cat of parts along dim k (normalized): every part's shape the
 * first's outside dim k. list: the list as written (its items' places). */
Val cat_parts(Ctx *c, Tensor **parts, int nparts, int k, Node *list, Loc dim_loc, Loc loc) {
    if (parts[0]->batch[k]) {
        error_at(dim_loc, "torch.%s along the batch dim is not supported (inference runs on any number of rows)",
                 c->stacking ? "stack" : "cat");
        return ERR;
    }
    int64_t shape[MAX_RANK];
    memcpy(shape, parts[0]->shape, sizeof shape);
    shape[k] = 0;
    for (int i = 0; i < nparts; i++) {
        Loc part_loc = list->kind == N_LIST ? list->args[i]->loc : list->loc;
        Loc first_loc = list->kind == N_LIST ? list->args[0]->loc : list->loc;
        bool same = parts[i]->rank == parts[0]->rank;
        for (int j = 0; same && j < parts[0]->rank; j++)
            same = j == k || parts[i]->shape[j] == parts[0]->shape[j];
        if (!same) {
            if (c->stacking)   /* the parts are the unsqueezed items: name the items' shapes */
                error_at(part_loc, "torch.stack: item %d is %s but item 0 is %s; stack needs equal shapes",
                         i, describe(parts[i]->def->in[0]), describe(parts[0]->def->in[0]));
            else
                error_at(part_loc, "torch.cat: %s does not match %s outside dim %d",
                         describe(parts[i]), describe(parts[0]), k);
            return ERR;
        }
        for (int j = 0; j < parts[0]->rank; j++)
            if (j != k && parts[i]->batch[j] != parts[0]->batch[j])
                return parts[0]->batch[j] ? batch_mismatch(parts[i], j, parts[0], part_loc)
                                          : batch_mismatch(parts[0], j, parts[i], first_loc);
        shape[k] += parts[i]->shape[k];
    }
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, parts[0]->rank, shape, parts[0]->batch, loc);
    if (!check_size(out, loc))
        return ERR;
    Op *op = new_op(c, OP_CAT, out, parts[0], NULL, loc);
    op->in = parts;
    op->nin = nparts;
    op->cat_dim = k;
    return tensor_val(out);
}

/* The list argument of torch.cat and torch.stack, as an operand array:
 * two slots at least, as every op has. */
static Tensor **list_parts(Ctx *c, const char *fn, Node *list, Loc call_loc, int *nparts) {
    if (!list) {
        error_at(call_loc, "torch.%s takes a list of tensors and a dim", fn);
        return NULL;
    }
    Vec items = {0};
    if (!tensor_list(c, list, &items))
        return NULL;
    if (items.len < 1) {
        error_at(list->loc, "torch.%s of an empty list", fn);
        return NULL;
    }
    *nparts = items.len;
    Tensor **parts = arena_alloc(sizeof(Tensor *) * (size_t)(items.len < 2 ? 2 : items.len));
    memcpy(parts, items.items, sizeof(Tensor *) * (size_t)items.len);
    return parts;
}

/* torch.cat's and torch.stack's arguments: the list's parts and the dim
 * (0 by default) with where it was written. */
static Tensor **list_and_dim(Ctx *c, const char *fn, Node *call, Node **list, int *nparts, int64_t *d, Loc *dim_loc) {
    static const char *const params[] = {"tensors", "dim", NULL};
    Node *arg[2];
    if (!bind_args(call, params, arg))
        return NULL;
    Tensor **parts = list_parts(c, fn, arg[0], call->loc, nparts);
    *d = 0;
    if (!parts || (arg[1] && !eval_int(c, arg[1], d, NULL)))
        return NULL;
    *list = arg[0];
    *dim_loc = arg[1] ? arg[1]->loc : call->loc;
    return parts;
}

static Val cat(Ctx *c, Node *call) {
    Node *list;
    int nparts;
    int64_t d;
    Loc dim_loc;
    Tensor **parts = list_and_dim(c, "cat", call, &list, &nparts, &d, &dim_loc);
    if (!parts)
        return ERR;
    int k = normalize_dim(parts[0], d, dim_loc);
    return k < 0 ? ERR : cat_parts(c, parts, nparts, k, list, dim_loc, call->loc);
}

/* torch.stack(items, dim) is torch.cat of the items each unsqueezed at dim
 * (PyTorch defines it so): no op of its own. The cat's backward splits the
 * gradient back into the items' (views of) slices. dim ranges over the
 * result's dims, -(rank+1)..rank. */
static Val stack(Ctx *c, Node *call) {
    Node *list;
    int nparts;
    int64_t d;
    Loc dim_loc;
    Tensor **parts = list_and_dim(c, "stack", call, &list, &nparts, &d, &dim_loc);
    if (!parts)
        return ERR;
    int rank = parts[0]->rank + 1;
    if (rank > MAX_RANK) {
        error_at(call->loc, "torch.stack of %s would have more than %d dims", describe(parts[0]), MAX_RANK);
        return ERR;
    }
    if (d < -rank || d >= rank) {
        error_at(dim_loc, "dimension %lld is out of range for torch.stack of %s (expected %d to %d)",
                 (long long)d, describe(parts[0]), -rank, rank - 1);
        return ERR;
    }
    int k = (int)(d < 0 ? d + rank : d);
    if (k == 0 && has_batch(parts[0])) {   /* the new dim would come before the rows */
        error_at(dim_loc, "torch.stack along dim 0 of %s would move its batch dim from first "
                 "(inference runs on any number of rows); stack along dim 1 or later", describe(parts[0]));
        return ERR;
    }
    for (int i = 0; i < nparts; i++) {
        Tensor *t = parts[i];
        int64_t shape[MAX_RANK];
        bool batch[MAX_RANK];
        for (int o = 0, j = 0; o < rank; o++) {
            shape[o] = o == k ? 1 : t->shape[j];
            batch[o] = o == k ? false : t->batch[j];
            j += o != k;
        }
        Tensor *u = new_tensor(c, T_ACT, DT_FLOAT, rank, shape, batch, call->loc);
        new_op(c, OP_UNSQUEEZE, u, t, NULL, call->loc);
        parts[i] = u;
    }
    c->stacking = true;
    Val v = cat_parts(c, parts, nparts, k, list, dim_loc, call->loc);
    c->stacking = false;
    return v;
}

/* F.linear(x, w, b) = x @ w.T + b, w as nn.Linear keeps it: [out, in]. */
static Val linear(Ctx *c, Node *call) {
    static const char *const params[] = {"input", "weight", "bias", NULL};
    Node *arg[3];
    if (!bind_args(call, params, arg))
        return ERR;
    if (!arg[0] || !arg[1]) {
        error_at(call->loc, "F.linear takes (input, weight, bias=None)");
        return ERR;
    }
    Tensor *x = expect_tensor(c, arg[0]), *w = x ? expect_tensor(c, arg[1]) : NULL;
    if (!w)
        return ERR;
    if (w->rank != 2) {
        error_at(arg[1]->loc, "F.linear needs a 2-D weight [out_features, in_features], got %s", describe(w));
        return ERR;
    }
    if (x->rank >= 1 && x->shape[x->rank - 1] != w->shape[1]) {
        error_at(call->loc, "F.linear: %s has %lld features but weight %s takes %lld (it is [out_features, in_features])",
                 describe(x), (long long)x->shape[x->rank - 1], describe(w), (long long)w->shape[1]);
        return ERR;
    }
    int64_t shape[2] = {w->shape[1], w->shape[0]};
    bool batch[2] = {w->batch[1], w->batch[0]};
    Tensor *wt = new_tensor(c, T_ACT, DT_FLOAT, 2, shape, batch, arg[1]->loc);
    new_op(c, OP_TRANSPOSE, wt, w, NULL, arg[1]->loc);
    Val y = matmul(c, x, wt, call->loc);
    if (y.kind == V_ERROR || !arg[2])
        return y;
    Tensor *b = expect_tensor(c, arg[2]);
    return b ? binary_op(c, OP_ADD, y.t, b, call->loc, call->loc, arg[2]->loc) : ERR;
}

static Val module_call(Ctx *c, const char *module, const char *fn, Node *call) {
    OpKind kind;
    if (!strcmp(module, "torch") && !strcmp(fn, "arange"))   /* shape: no op, a range */
        return arange(c, call);
    if (!strcmp(module, "F") && !strcmp(fn, "linear"))   /* no op of its own: a transpose, matmul and add */
        return linear(c, call);
    if (!strcmp(module, "torch") && !strcmp(fn, "stack"))   /* no op of its own: unsqueezes and a cat */
        return stack(c, call);
    if (!strcmp(module, "F") && !strcmp(fn, "nll_loss"))   /* no op of its own: pick, mean, neg */
        return nll_loss(c, call);
    if (!strcmp(module, "torch") && !strcmp(fn, "roll"))    /* lower_int.c: a map, no op */
        return roll(c, call);
    if (!strcmp(module, "torch") && !strcmp(fn, "split")) {   /* shape: no op of its own, slices */
        static const char *const params[] = {"tensor", "split_size_or_sections", "dim", NULL};
        Node *arg[3];
        if (!bind_args(call, params, arg))
            return ERR;
        Tensor *t = arg[0] ? expect_tensor(c, arg[0]) : NULL;
        if (!arg[0])
            error_at(call->loc, "torch.split takes (tensor, split_size_or_sections, dim=0)");
        return t ? split(c, t, arg[1], arg[2], call->loc) : ERR;
    }
    Val v;
    if (nn_module_call(c, module, fn, call, &v))   /* lower_nn.c: math.*, torch.pow, F.layer_norm, ... */
        return v;
    if (mask_module_call(c, module, fn, call, &v))   /* lower_mask.c: torch.ones, torch.zeros, torch.tril */
        return v;
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
    case OP_ONE_HOT: return one_hot(c, call);
    case OP_MATMUL: {    /* torch.matmul(a, b): a @ b */
        static const char *const params[] = {"input", "other", NULL};
        Node *arg[2];
        if (!bind_args(call, params, arg))
            return ERR;
        if (!arg[0] || !arg[1]) {
            error_at(call->loc, "torch.matmul takes (input, other)");
            return ERR;
        }
        Tensor *a = expect_tensor(c, arg[0]), *b = a ? expect_tensor(c, arg[1]) : NULL;
        return b ? matmul(c, a, b, call->loc) : ERR;
    }
    default:
        error_at(call->loc, "internal: no lowering for %s.%s", module, fn);
        return ERR;
    }
}

static Val method_call(Ctx *c, Tensor *t, const char *fn, Node *call) {
    OpKind kind;
    Val v;
    if (t->dtype == DT_FLOAT && !strcmp(fn, "float") && !call->nargs)   /* shape: already float */
        return tensor_val(t);
    if (mask_method(c, t, fn, call, &v))   /* lower_mask.c: x.tril(), a mask's .float() */
        return v;
    if (t->dtype != DT_FLOAT && t->dtype != DT_BOOL &&
        !((!strcmp(fn, "view") || !strcmp(fn, "reshape")) && t->kind == T_INPUT)) {
        error_at(call->loc, "integer input '%s' has no method .%s() (only .view() and .reshape()); it can index a table",
                 t->name, fn);
        return ERR;
    }
    if (!strcmp(fn, "split")) {   /* shape: no op of its own, slices */
        static const char *const params[] = {"split_size", "dim", NULL};
        Node *arg[2];
        return bind_args(call, params, arg) ? split(c, t, arg[0], arg[1], call->loc) : ERR;
    }
    if (!strcmp(fn, "clamp"))   /* lower_nn.c: clamp_min and clamp_max */
        return clamp(c, t, call);
    if (!strcmp(fn, "min"))   /* -(-x).max(...) */
        return min_call(c, t, call);
    if (!strcmp(fn, "logsumexp"))   /* lower_nn.c: max, exp, sum, log */
        return logsumexp(c, t, call);
    if (!strcmp(fn, "log_softmax"))
        return log_softmax(c, t, call);
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
    case REDUCE: {
        if (kind == OP_MAX && !call->nargs)   /* x.max(): a number */
            return t->dtype == DT_FLOAT ? tensor_val(full_max(c, t, call->loc))
                                        : (error_at(call->loc, ".max() needs a float tensor, got %s", describe(t)), ERR);
        Val v = reduction(c, kind, t, call, kind == OP_MAX, fn);
        if (v.kind == V_TENSOR && !strcmp(fn, "std"))   /* std: the square root of the var */
            return unary_op(c, OP_SQRT, v.t, int_scalar(0), call->loc);
        return v;
    }
    default: break;
    }
    switch (kind) {
    case OP_PERMUTE:
    case OP_UNSQUEEZE:
    case OP_CONTIGUOUS:
    case OP_EXPAND: return mask_result(t, perm_method(c, t, kind, fn, call));
    case OP_VIEW: return mask_result(t, view(c, t, call));
    case OP_MASKED_FILL: return masked_fill(c, t, call);
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

/* x.size() is x.shape; x.size(d) is x.shape[d]. */
static Val size_call(Ctx *c, Tensor *t, Node *call) {
    static const char *const params[] = {"dim", NULL};
    Node *dim;
    if (!bind_args(call, params, &dim))
        return ERR;
    if (!dim)
        return (Val){.kind = V_SHAPE, .t = t};
    int64_t d;
    if (!eval_int(c, dim, &d, NULL))
        return ERR;
    int k = normalize_dim(t, d, dim->loc);
    return k < 0 ? ERR : scalar_val(shape_scalar(t, k));
}

/* list.append(t): the list is shared (Python's), so every name for it sees t. */
static Val append_call(Ctx *c, Val list, Node *call) {
    if (list.kind != V_TENSORS) {
        error_at(call->lhs->loc, ".append() needs a list (made by [] before the loop)");
        return ERR;
    }
    if (call->nargs != 1 || call->args[0]->kind == N_KWARG) {
        error_at(call->loc, ".append() takes one tensor");
        return ERR;
    }
    Tensor *t = expect_tensor(c, call->args[0]);
    if (!t)
        return ERR;
    vec_push(list.items, t);
    return (Val){.kind = V_NONE};
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
    if (callee->kind == N_NAME && !strcmp(callee->name, "float"))   /* mask: float('-inf') */
        return float_call(c, n);
    if (callee->kind != N_ATTR) {
        error_at(n->loc, "only methods, torch.* and F.* functions, range() and float() can be called");
        return ERR;
    }
    Val obj = eval(c, callee->lhs);
    if (obj.kind == V_ERROR)
        return ERR;
    /* front: Python's own methods: x.size(), list.append(t) */
    if (obj.kind == V_TENSOR && !strcmp(callee->name, "size"))
        return size_call(c, obj.t, n);
    if (!strcmp(callee->name, "append"))
        return append_call(c, obj, n);
    if (obj.kind == V_RANGE && !strcmp(callee->name, "unsqueeze"))
        return range_unsqueeze(c, obj, n);
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
    if (obj.kind == V_MODULE && !strcmp(obj.module, "math"))
        return math_constant(n);    /* lower_nn.c */
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

Val eval(Ctx *c, Node *n) {
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
    case N_SLICE:
    case N_ELLIPSIS: error_at(n->loc, "a slice or '...' is only allowed inside []"); return ERR;
    case N_STR:   /* f('text') parses for any f */
        error_at(n->loc, "a string is outside the spec language (but as float('-inf'), float('inf'), float('nan'))");
        return ERR;
    }
    return ERR;
}


/* ---- forward lines ----
 * A name may be bound again (x = x @ W1, x += y, hprev = ht, a loop's
 * body): Python rebinds it, and here every binding is a version of its own
 * (SSA) with its own gradient. The current version has the plain name; when
 * the name is bound again, the old version takes the name of its line,
 * x_l46 (and its loop trip, x_l46_i2), which diagnostics and the generated
 * C then use. A param or input keeps its name: the new version is x_l46. */

static const char *fresh_name(Ctx *c, const char *base, int *k) {
    for (;;) {
        const char *name = arena_printf("%s_t%d", base, ++*k);
        if (!sym_find(&c->syms, name))
            return name;
    }
}

/* The name of a version: the name, its line and its loop trip, made unique. */
static const char *version_name(Ctx *c, const char *name) {
    const char *base = arena_printf("%s_l%d%s", name, loc_line(c->stmt->loc), c->trip ? c->trip : "");
    const char *v = base;
    for (int k = 2; sym_find(&c->syms, v); k++)
        v = arena_printf("%s_%d", base, k);
    return v;
}

static bool declared_tensor(Ctx *c, const char *name) {
    for (int i = 0; i < c->m->params.len; i++)
        if (!strcmp(((Tensor *)c->m->params.items[i])->name, name))
            return true;
    for (int i = 0; i < c->m->inputs.len; i++)
        if (!strcmp(((Tensor *)c->m->inputs.items[i])->name, name))
            return true;
    return false;
}

/* A forward line may bind any name but a keyword, a reserved one or a
 * temporary's; binding one again is Python's rebinding. */
static bool may_bind(Ctx *c, const char *name, Loc loc) {
    Sym *old = sym_find(&c->syms, name);
    if (old && old->kind != SYM_HIDDEN)
        return true;
    return declare(c, name, loc);
}

/* The temporaries of this line get names after `base` (h_t1), hidden. */
static void name_temps(Ctx *c, const char *base, const Tensor *keep) {
    int k = 0;
    for (int i = 0; i < c->line_temps.len; i++) {
        Tensor *tmp = c->line_temps.items[i];
        Sym *named = tmp->name ? sym_find(&c->syms, tmp->name) : NULL;
        /* named already: by an earlier binding of this line (a, b = ...);
         * an integer view carries its input's name, which is not its own */
        if (tmp != keep && tmp->is_temp && !(named && named->tensor == tmp)) {
            tmp->name = fresh_name(c, base, &k);
            sym_add(&c->syms, tmp->name, SYM_HIDDEN, c->stmt->name_loc)->tensor = tmp;
        }
    }
}

static bool made_here(Ctx *c, const Tensor *t) {
    for (int i = 0; i < c->line_temps.len; i++)
        if (c->line_temps.items[i] == t)
            return true;
    return false;
}

/* Binds a name to a value; false (reported) when it cannot. */
static bool bind(Ctx *c, const char *name, Loc name_loc, Val v, Node *value) {
    if (v.kind == V_SCALAR) {
        sym_add(&c->syms, name, SYM_SCALAR, name_loc)->scalar = v.s;
        return true;
    }
    if (v.kind == V_LIST) {   /* a literal list: a new Python list */
        Vec *items = arena_alloc(sizeof(Vec));
        if (!tensor_list(c, v.node, items))
            return false;
        v = (Val){.kind = V_TENSORS, .items = items};
    }
    if (v.kind == V_TENSORS) {
        sym_add(&c->syms, name, SYM_LIST, name_loc)->list = v.items;
        return true;
    }
    if (v.kind == V_RANGE) {   /* pos = torch.arange(0, t).unsqueeze(0): indices, not a tensor of its own */
        Sym *sym = sym_add(&c->syms, name, SYM_RANGE, name_loc);
        sym->scalar = v.s;
        sym->ones = v.ones;
        return true;
    }
    if (v.kind != V_TENSOR) {
        error_at(value->loc, v.kind == V_MAX    ? "max(dim) returns (values, indices): use .values"
                             : v.kind == V_NONE ? "this returns None, not a value"
                                                : "a forward line must compute a tensor");
        return false;
    }
    Tensor *t = v.t;
    /* an alias: give it a tensor of its own (an integer input's view made
     * on this line is its own: it reads the input's array) */
    if (!made_here(c, t) || t->kind == T_PARAM) {
        if (t->dtype == DT_INT) {
            error_at(value->loc, "integer inputs cannot be renamed");
            return false;
        }
        Tensor *copy = new_tensor(c, T_ACT, t->dtype, t->rank, t->shape, t->batch, value->loc);
        new_op(c, OP_VIEW, copy, t, NULL, value->loc);
        t = copy;
    }
    name_temps(c, name, t);
    Sym *old = sym_find(&c->syms, name);
    if (old && old->kind == SYM_TENSOR && !strcmp(old->tensor->name, name) && old->tensor->kind == T_ACT) {
        old->tensor->name = old->version;   /* the old version steps aside */
        sym_add(&c->syms, old->version, SYM_HIDDEN, old->loc)->tensor = old->tensor;
    }
    const char *version = version_name(c, name);
    t->name = declared_tensor(c, name) ? version : name;
    t->is_temp = false;
    if (t->name == version)
        sym_add(&c->syms, version, SYM_HIDDEN, name_loc)->tensor = t;
    Sym *sym = sym_add(&c->syms, name, SYM_TENSOR, name_loc);
    sym->tensor = t;
    sym->version = version;
    return true;
}

/* The tensor whose storage t uses: under PyTorch a view and a plain
 * `y = x` share it (ninjac copies; the difference shows only in place). */
static const Tensor *storage_of(const Tensor *t) {
    while (t->def && t->def->kind == OP_VIEW)
        t = t->def->in[0];
    return t;
}

/* A param, or a name or list other than `self`, that sees t's storage:
 * PyTorch's in-place update of t would change it too. NULL if none. */
static const char *shares_storage(Ctx *c, const Sym *self, const Tensor *t) {
    const Tensor *root = storage_of(t);
    if (root->kind == T_PARAM)
        return root->name;
    for (int i = 0; i < c->syms.cap; i++) {
        const Sym *s = c->syms.slots[i];
        if (!s || s == self)
            continue;
        if (s->kind == SYM_TENSOR && storage_of(s->tensor) == root)
            return s->name;
        for (int k = 0; s->kind == SYM_LIST && k < s->list->len; k++)
            if (storage_of(s->list->items[k]) == root)
                return s->name;
    }
    return NULL;
}

static bool assign(Ctx *c, const Stmt *s) {
    if (!may_bind(c, s->name, s->name_loc))
        return false;
    Sym *old = sym_find(&c->syms, s->name);
    Tensor *before = old && old->kind == SYM_TENSOR ? old->tensor : NULL;
    if (s->augmented && before && before->kind != T_ACT) {
        /* PyTorch refuses an in-place update of a leaf that requires grad */
        error_at(s->value->op_loc, "'%s %s= ...' updates %s '%s' in place, which PyTorch refuses; write %s = %s %s ...",
                 s->name, binop_text[s->value->op], before->kind == T_PARAM ? "param" : "input", s->name,
                 s->name, s->name, binop_text[s->value->op]);
        return false;
    }
    const char *other = s->augmented && before ? shares_storage(c, old, before) : NULL;
    if (other) {
        /* ninjac's `y = x` and views are copies; PyTorch's share x, and x op= y
         * would change the other name too: refused rather than computed otherwise */
        error_at(s->value->op_loc, "'%s %s= ...' updates '%s' in place, and under PyTorch '%s' shares its storage "
                 "and would change with it; write %s = %s %s ...", s->name, binop_text[s->value->op], s->name,
                 other, s->name, s->name, binop_text[s->value->op]);
        return false;
    }
    Val v = eval(c, s->value);
    if (v.kind == V_ERROR)
        return false;
    if (s->augmented && before && v.kind == V_TENSOR &&
        (v.t->rank != before->rank || memcmp(v.t->shape, before->shape, sizeof(int64_t) * (size_t)before->rank))) {
        /* in place, x keeps its shape: PyTorch cannot broadcast x itself */
        char *shape = arena_strdup(shape_str(v.t));
        error_at(s->value->op_loc, "'%s %s= ...' gives shape %s, but an in-place update keeps %s",
                 s->name, binop_text[s->value->op], shape, describe(before));
        return false;
    }
    return bind(c, s->name, s->name_loc, v, s->value);
}

/* a, b, c = value: x.shape or x.size() (ints), or a list or tuple of tensors. */
static bool unpack(Ctx *c, const Stmt *s) {
    for (int i = 0; i < s->ntargets; i++)
        if (!may_bind(c, s->targets[i]->name, s->targets[i]->loc))
            return false;
    Val v = eval(c, s->value);
    if (v.kind == V_ERROR)
        return false;
    Vec items = {0};
    if (v.kind == V_LIST && !tensor_list(c, v.node, &items))
        return false;
    int count = v.kind == V_SHAPE ? v.t->rank : v.kind == V_TENSORS ? v.items->len : v.kind == V_LIST ? items.len : -1;
    if (count < 0) {
        error_at(s->value->loc, "only x.shape, x.size() and lists of tensors can be unpacked");
        return false;
    }
    if (count != s->ntargets) {
        error_at(s->value->loc, "cannot unpack %d value%s into %d names", count, count == 1 ? "" : "s",
                 s->ntargets);
        return false;
    }
    for (int i = 0; i < count; i++) {
        Node *target = s->targets[i];
        Val item = v.kind == V_SHAPE     ? scalar_val(shape_scalar(v.t, i))
                   : v.kind == V_TENSORS ? tensor_val(v.items->items[i])
                                         : tensor_val(items.items[i]);
        if (!bind(c, target->name, target->loc, item, s->value))
            return false;
    }
    return true;
}

/* A line that is a call for its effect: list.append(t). */
static bool expr_stmt(Ctx *c, const Stmt *s) {
    Val v = eval(c, s->value);
    if (v.kind == V_ERROR)
        return false;
    if (v.kind != V_NONE) {
        error_at(s->value->loc, "this line computes a value nobody reads; assign it to a name");
        return false;
    }
    Node *obj = s->value->kind == N_CALL && s->value->lhs->kind == N_ATTR ? s->value->lhs->lhs : NULL;
    name_temps(c, obj && obj->kind == N_NAME ? obj->name : "expr", NULL);
    return true;
}


static bool index_assign_stmt(Ctx *c, const Stmt *s) {
    Node *target = s->targets[0];
    if (target->lhs->kind != N_NAME) {
        error_at(target->lhs->loc, "x[...] = value assigns into a name");
        return false;
    }
    if (!may_bind(c, target->lhs->name, target->lhs->loc))
        return false;
    Val v = index_assign(c, target, s->value);
    return v.kind != V_ERROR && bind(c, target->lhs->name, target->lhs->loc, v, s->value);
}

/* The names a line with a syntax error would have bound, read from its
 * text (`a, b = ...`, `param W: ...`): they are poisoned, so that their
 * uses do not report them unknown. */
static void poison_broken_line(Ctx *c, const Stmt *s) {
    const char *p = c->m->src->text + s->loc.begin, *end = c->m->src->text + s->loc.end;
    Vec names = {0};
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *name = p;
        while (p < end && (*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                           (names.len + (p > name) && *p >= '0' && *p <= '9')))
            p++;
        if (p == name)
            return;
        vec_push(&names, arena_strndup(name, (size_t)(p - name)));
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        bool declaration = names.len == 1 && (!strcmp(names.items[0], "dim") || !strcmp(names.items[0], "input") ||
                                              !strcmp(names.items[0], "param"));
        if (declaration) {
            names.len = 0;
            const char *q = p;
            while (q < end && (*q == '_' || (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
                               (q > p && *q >= '0' && *q <= '9')))
                q++;
            if (q > p && !sym_find(&c->syms, arena_strndup(p, (size_t)(q - p))))
                sym_add(&c->syms, arena_strndup(p, (size_t)(q - p)), SYM_POISON, s->loc);
            return;
        }
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == '=' && (p + 1 == end || p[1] != '='))
            break;
        return;
    }
    for (int i = 0; i < names.len; i++) {
        Sym *old = sym_find(&c->syms, names.items[i]);
        if (!old || old->kind != SYM_HIDDEN)
            sym_add(&c->syms, names.items[i], SYM_POISON, s->loc);
    }
}

static void lower_stmt(Ctx *c, const Stmt *s, Define *defs, int ndefs, Vec *inits);

/* for name in range(...) or a list of tensors: unrolled, the body lowered
 * once a trip with name bound to that trip's int (or tensor). */
static void lower_for(Ctx *c, const Stmt *s, Define *defs, int ndefs, Vec *inits) {
    if (!may_bind(c, s->name, s->name_loc))
        return;
    int64_t r[3] = {0, 0, 1}, trips;
    Vec *list = NULL;
    Node *it = s->value;
    if (it->kind == N_CALL && it->lhs->kind == N_NAME && !strcmp(it->lhs->name, "range")) {
        if (it->nargs < 1 || it->nargs > 3) {
            error_at(it->loc, "range takes one to three ints");
            return;
        }
        for (int i = 0; i < it->nargs; i++) {
            Val v = it->args[i]->kind == N_KWARG ? ERR : eval(c, it->args[i]);
            if (it->args[i]->kind == N_KWARG || (v.kind != V_ERROR && (v.kind != V_SCALAR || !v.s.is_int || v.s.rows_expr))) {
                error_at(it->args[i]->loc, "a for loop runs over range() of compile-time ints (not the batch size), "
                         "which ninjac unrolls; this is not one");
                return;
            }
            if (v.kind == V_ERROR)
                return;
            r[it->nargs == 1 ? 1 : i] = (int64_t)v.s.value;
        }
        if (r[2] == 0) {
            error_at(it->args[2]->loc, "range() step must not be zero");
            return;
        }
        trips = r[2] > 0 ? (r[1] - r[0] + r[2] - 1) / r[2] : (r[0] - r[1] - r[2] - 1) / -r[2];
        if (trips < 0)
            trips = 0;
    } else {
        Val v = eval(c, it);
        if (v.kind == V_ERROR)
            return;
        if (v.kind != V_TENSORS) {
            error_at(it->loc, "a for loop runs over range() of compile-time ints or a list of tensors");
            return;
        }
        list = v.items;
        trips = list->len;
    }
    const char *outer = c->trip;
    for (int64_t k = 0; k < trips && !c->too_big; k++) {
        c->stmt = s;
        c->trip = arena_printf("%s_%s%lld", outer ? outer : "", s->name, (long long)k);
        Val v = list ? tensor_val(list->items[k]) : scalar_val(int_scalar(r[0] + k * r[2]));
        if (list) {   /* the loop variable names the list's tensor itself */
            Sym *sym = sym_add(&c->syms, s->name, SYM_TENSOR, s->name_loc);
            sym->tensor = v.t;
            sym->version = version_name(c, s->name);
        } else {
            sym_add(&c->syms, s->name, SYM_SCALAR, s->name_loc)->scalar = v.s;
        }
        int errors = diag_errors;
        for (int i = 0; i < s->nbody && !c->too_big; i++)
            lower_stmt(c, s->body[i], defs, ndefs, inits);
        /* One mistake, one error: the next trips would repeat this one's
         * diagnostics; the lines that failed have poisoned their names. */
        if (diag_errors > errors)
            break;
    }
    c->trip = outer;
}

static void lower_stmt(Ctx *c, const Stmt *s, Define *defs, int ndefs, Vec *inits) {
    Model *m = c->m;
    int ops = m->ops.len, tensors = m->tensors.len, errors = diag_errors;
    c->stmt = s;
    c->line_temps.len = 0;
    bool ok = true, declaration = s->kind == S_DIM || s->kind == S_INPUT || s->kind == S_PARAM;
    if (declaration && c->trip) {
        error_at(s->loc, "declarations go before the forward lines, outside loops");
        return;
    }
    switch (s->kind) {
    case S_DIM: declare_dim(c, s, defs, ndefs); break;
    case S_INPUT: declare_input(c, s); break;
    case S_PARAM: declare_param(c, s, inits); break;
    case S_ASSIGN: ok = assign(c, s); break;
    case S_UNPACK: ok = unpack(c, s); break;
    case S_EXPR: ok = expr_stmt(c, s); break;
    case S_INDEX_ASSIGN: ok = index_assign_stmt(c, s); break;
    case S_FOR: lower_for(c, s, defs, ndefs, inits); return;
    case S_ERROR: poison_broken_line(c, s); return;
    }
    /* Ops made on the way to a number (p.log().shape[0], a shape in a
     * declaration) or by a failed line compute nothing anyone reads. */
    bool made_tensor = false;
    for (int i = tensors; i < m->tensors.len; i++)
        made_tensor |= !((Tensor *)m->tensors.items[i])->is_temp || s->kind == S_EXPR;
    if (declaration || !ok || !made_tensor)
        drop_ops_since(m, ops, tensors);
    if (m->ops.len > MAX_OPS) {
        error_at(s->loc, "the model has more than %d operations", MAX_OPS);
        c->too_big = true;
        return;
    }
    /* A failed line binds its names as failed: their uses say nothing more.
     * It failed only after an error (its own or one it depends on). */
    if (!declaration && ok)
        return;
    if (declaration) {
        Sym *now = sym_find(&c->syms, s->name);   /* a temporary's hidden name counts as unbound */
        if ((now && now->kind != SYM_HIDDEN) || reserved(s->name))
            return;
    }
    if (diag_errors == errors && !diag_errors)
        error_at(s->loc, "internal: this line failed without a diagnostic");
    if (s->kind == S_UNPACK)
        for (int i = 0; i < s->ntargets; i++)
            sym_add(&c->syms, s->targets[i]->name, SYM_POISON, s->targets[i]->loc);
    else if (s->kind == S_INDEX_ASSIGN && s->targets[0]->lhs->kind == N_NAME)
        sym_add(&c->syms, s->targets[0]->lhs->name, SYM_POISON, s->targets[0]->lhs->loc);
    else if (*s->name && !reserved(s->name))
        sym_add(&c->syms, s->name, SYM_POISON, s->name_loc);
}

void build_model(Program *prog, Model *m, Define *defs, int ndefs) {
    Ctx c = {.m = m};
    Vec inits = {0};
    m->src = prog->src;
    for (int i = 0; i < prog->stmts.len && !c.too_big; i++)
        lower_stmt(&c, prog->stmts.items[i], defs, ndefs, &inits);
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
    /* what the trainer samples from: [n, vocab], or [b, t, vocab] in
     * makemore.py's layout (generate() reads position k of each row) */
    if (logits && logits->kind == SYM_TENSOR && (logits->tensor->rank == 2 || logits->tensor->rank == 3) &&
        logits->tensor->batch[0] && logits->tensor->kind == T_ACT)
        m->logits = logits->tensor;
    drop_dead_temps(m);
    mark_dependencies(m);
    name_tensors(m);
}
