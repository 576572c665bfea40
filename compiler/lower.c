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
    }
    if (!isfinite(r.value) || (r.is_int && fabs(r.value) > 9e15)) {
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

Tensor *expect_tensor(Ctx *c, Node *n) {
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

int normalize_dim(Tensor *t, int64_t d, Loc loc) {
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
        error_at(call->loc, "%s needs exactly one dim", op_info[kind].name);
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
bool power_op(double exponent, OpKind *kind) {
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
    if (index->ignore) {   /* fn: a cross_entropy target with ignore_index holds it */
        error_at(n->args[0]->loc, "'%s' holds ignore_index=%lld (a cross_entropy target), so it cannot index a table",
                 index->name, (long long)index->ignore);
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
        /* an ignored target is no index: the value would read outside a table */
        for (int i = 0; i < c->m->ops.len; i++) {
            Op *use = c->m->ops.items[i];
            if ((use->kind == OP_EMBED || use->kind == OP_PICK) && use->in[1] == tv.t) {
                error_at(arg[1]->loc, "'%s' also indexes a table, so it cannot hold ignore_index=%lld",
                         tv.t->name, (long long)ignore);
                note_at(use->loc, "it indexes here");
                return ERR;
            }
        }
        if (tv.t->ignore && tv.t->ignore != ignore) {
            error_at(arg[2]->loc, "'%s' is already the target of a cross_entropy with ignore_index=%lld",
                     tv.t->name, (long long)tv.t->ignore);
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
    if (ignore)     /* the input accepts it from now on (the runtime's input checks) */
        tv.t->ignore = ignore;
    op->c = int_scalar(logits->shape[0]);
    if (logits->batch[0])
        op->c.rows_expr = "rows";
    return tensor_val(out);
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

static Val cat(Ctx *c, Node *call) {
    static const char *const params[] = {"tensors", "dim", NULL};
    Node *arg[2];
    if (!bind_args(call, params, arg))
        return ERR;
    Node *list = arg[0], *dim = arg[1];
    if (!list) {
        error_at(call->loc, "torch.cat takes a list of tensors and a dim");
        return ERR;
    }
    Vec items = {0};
    if (!tensor_list(c, list, &items))
        return ERR;
    if (items.len < 1) {
        error_at(list->loc, "torch.cat of an empty list");
        return ERR;
    }
    int nparts = items.len;
    /* the op's operand array: two slots at least, as every op has */
    Tensor **parts = arena_alloc(sizeof(Tensor *) * (size_t)(nparts < 2 ? 2 : nparts));
    memcpy(parts, items.items, sizeof(Tensor *) * (size_t)nparts);
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
    for (int i = 0; i < nparts; i++) {
        Loc part_loc = list->kind == N_LIST ? list->args[i]->loc : list->loc;
        Loc first_loc = list->kind == N_LIST ? list->args[0]->loc : list->loc;
        bool same = parts[i]->rank == parts[0]->rank;
        for (int j = 0; same && j < parts[0]->rank; j++)
            same = j == k || parts[i]->shape[j] == parts[0]->shape[j];
        if (!same) {
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
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, parts[0]->rank, shape, parts[0]->batch, call->loc);
    if (!check_size(out, call->loc))
        return ERR;
    Op *op = new_op(c, OP_CAT, out, parts[0], NULL, call->loc);
    op->in = parts;
    op->nin = nparts;
    op->cat_dim = k;
    return tensor_val(out);
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
    if (!strcmp(module, "F") && !strcmp(fn, "linear"))   /* no op of its own: a transpose, matmul and add */
        return linear(c, call);
    Val v;
    if (nn_module_call(c, module, fn, call, &v))   /* lower_nn.c: math.*, torch.pow, F.layer_norm, ... */
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
    case REDUCE: {
        Val v = reduction(c, kind, t, call, kind == OP_MAX);
        if (v.kind == V_TENSOR && !strcmp(fn, "std"))   /* std: the square root of the var */
            return unary_op(c, OP_SQRT, v.t, int_scalar(0), call->loc);
        return v;
    }
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
    }
    return ERR;
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
        Sym *now = sym_find(&c.syms, s->name);   /* a temporary's hidden name counts as unbound */
        if ((!now || now->kind == SYM_HIDDEN) && !reserved(s->name)) {
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
