/* lower_mask.c - masks and constant tensors (issue 12, item 7), as
 * makemore.py's Transformer and BoW build their causal attention:
 *   bias = torch.tril(torch.ones(T, T)).view(1, 1, T, T)
 *   att = att.masked_fill(bias[:, :, :T, :T] == 0, float('-inf'))
 * A comparison gives a mask: a DT_BOOL tensor holding 0 and 1 of the real
 * type, through which no gradient flows (autodiff.c takes gradients of
 * float tensors only). masked_fill's gradient flows to x where the mask is
 * false. torch.ones, torch.zeros and torch.tril of them are computed in
 * the forward pass like any op (no operands, so no gradient): simple, and
 * their cost is a pass over a small array. Emission: emit_mask.c and the
 * op table's templates.
 * Memory: all IR comes from the arena. */
#include "lower.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool comparison(BinOp op) {
    return op == BIN_EQ || op == BIN_NE || op == BIN_LT || op == BIN_LE || op == BIN_GT || op == BIN_GE;
}

/* c < x is x > c: the op table has the tensor on the left */
static BinOp mirrored(BinOp op) {
    switch (op) {
    case BIN_LT: return BIN_GT;
    case BIN_LE: return BIN_GE;
    case BIN_GT: return BIN_LT;
    case BIN_GE: return BIN_LE;
    default: return op;
    }
}

static OpKind compare_op(BinOp op, unsigned operands) {
    for (int k = 0; k < OP_COUNT; k++)
        if (op_info[k].mask && op_info[k].binop == op && (op_info[k].operands & operands))
            return (OpKind)k;
    abort();   /* ops.def has a row for each comparison and form */
}

static Val as_mask(Val v) {
    if (v.kind == V_TENSOR)
        v.t->dtype = DT_BOOL;
    return v;
}

/* A tensor compared with a tensor or a number: a mask of their broadcast
 * shape. An integer input compares as its values (C converts them). */
Val compare(Ctx *c, BinOp op, Val a, Val b, Node *n) {
    Tensor *ta = a.kind == V_TENSOR ? a.t : NULL, *tb = b.kind == V_TENSOR ? b.t : NULL;
    if (ta && tb)
        return as_mask(binary_op(c, compare_op(op, OPND_TT), ta, tb, n->op_loc, n->lhs->loc, n->rhs->loc));
    Scalar k = ta ? b.s : a.s;
    if (k.rows_expr) {
        error_at(ta ? n->rhs->loc : n->lhs->loc, "a comparison with a number that depends on the batch size is "
                 "not supported");
        return ERR;
    }
    Val v = unary_op(c, compare_op(ta ? op : mirrored(op), OPND_TC), ta ? ta : tb, k, n->op_loc);
    return as_mask(v);
}

/* ---- float('-inf'): Python's float() of a number or of the strings it
 * takes for infinities and NaN ---- */

static bool special_float(const char *text, double *out) {
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    double sign = *p == '-' ? -1 : 1;
    if (*p == '-' || *p == '+')
        p++;
    const char *end = p + strlen(p);
    while (end > p && isspace((unsigned char)end[-1]))
        end--;
    size_t len = (size_t)(end - p);
    if ((len == 3 && !strncasecmp(p, "inf", 3)) || (len == 8 && !strncasecmp(p, "infinity", 8)))
        *out = sign * INFINITY;
    else if (len == 3 && !strncasecmp(p, "nan", 3))
        *out = NAN;
    else
        return false;
    return true;
}

Val float_call(Ctx *c, Node *call) {
    if (call->nargs != 1 || call->args[0]->kind == N_KWARG) {
        error_at(call->loc, "float() takes one number or string");
        return ERR;
    }
    Node *arg = call->args[0];
    if (arg->kind == N_STR) {
        double v;
        char *end;
        if (!special_float(arg->name, &v)) {
            v = strtod(arg->name, &end);
            /* Python takes decimal numbers only (strtod also hex and nan(...)) */
            if (!*arg->name || *end || strpbrk(arg->name, "xXnN(")) {
                error_at(arg->loc, "could not convert string to float: '%s'", arg->name);
                return ERR;
            }
        }
        return scalar_val((Scalar){.value = v});
    }
    Val v = eval(c, arg);
    if (v.kind == V_ERROR)
        return ERR;
    if (v.kind != V_SCALAR) {
        error_at(arg->loc, "float() takes a number here; for a tensor use .float()");
        return ERR;
    }
    v.s.is_int = false;
    v.s.is_batch = false;
    return v;
}

/* ---- x.masked_fill(mask, value) ---- */

Val masked_fill(Ctx *c, Tensor *x, Node *call) {
    static const char *const params[] = {"mask", "value", NULL};
    Node *arg[2];
    if (!bind_args(call, params, arg))
        return ERR;
    if (!arg[0] || !arg[1]) {
        error_at(call->loc, "masked_fill takes (mask, value)");
        return ERR;
    }
    Val mask = eval(c, arg[0]), value = eval(c, arg[1]);
    if (mask.kind == V_ERROR || value.kind == V_ERROR)
        return ERR;
    if (mask.kind != V_TENSOR || mask.t->dtype != DT_BOOL) {
        error_at(arg[0]->loc, "masked_fill takes a bool mask, such as x == 0; this is %s",
                 mask.kind != V_TENSOR ? "not a tensor" : mask.t->dtype == DT_INT ? "an integer input"
                                                                                     : "a float tensor");
        return ERR;
    }
    if (value.kind != V_SCALAR) {
        error_at(arg[1]->loc, "masked_fill's value must be a number (float('-inf') for instance)");
        return ERR;
    }
    if (value.s.rows_expr) {
        error_at(arg[1]->loc, "masked_fill's value cannot depend on the batch size");
        return ERR;
    }
    Val v = binary_op(c, OP_MASKED_FILL, x, mask.t, call->loc, call->lhs->loc, arg[0]->loc);
    if (v.kind == V_TENSOR)
        v.t->def->c = value.s;
    return v;
}

/* ---- torch.where(condition, x, y): masked_fills, no op of its own ----
 * x where the mask is true, y elsewhere, at the broadcast shape of the
 * three: x.masked_fill(~mask, 0) + y.masked_fill(mask, 0) (exact: the one
 * that is not filled plus 0), or one masked_fill where x or y is a number.
 * x's gradient flows where the mask is true, y's elsewhere. */

static Tensor *fill(Ctx *c, Tensor *x, Tensor *mask, Scalar value, Loc loc) {
    Val v = binary_op(c, OP_MASKED_FILL, x, mask, loc, loc, loc);
    if (v.kind != V_TENSOR)
        return NULL;
    v.t->def->c = value;
    return v.t;
}

static Val where_call(Ctx *c, Node *call) {
    static const char *const params[] = {"condition", "input", "other", NULL};
    Node *arg[3];
    if (!bind_args(call, params, arg))
        return ERR;
    if (!arg[0] || !arg[1] || !arg[2]) {
        error_at(call->loc, "torch.where takes (condition, input, other)");
        return ERR;
    }
    Val cond = eval(c, arg[0]), v[2] = {eval(c, arg[1]), eval(c, arg[2])};
    if (cond.kind == V_ERROR || v[0].kind == V_ERROR || v[1].kind == V_ERROR)
        return ERR;
    if (cond.kind != V_TENSOR || cond.t->dtype != DT_BOOL) {
        error_at(arg[0]->loc, "torch.where takes a bool mask, such as x > 0; this is %s",
                 cond.kind != V_TENSOR ? "not a tensor" : cond.t->dtype == DT_INT ? "an integer input"
                                                                                   : "a float tensor");
        return ERR;
    }
    for (int k = 0; k < 2; k++) {
        bool number = v[k].kind == V_SCALAR && !v[k].s.rows_expr;
        if (!number && (v[k].kind != V_TENSOR || v[k].t->dtype != DT_FLOAT)) {
            error_at(arg[1 + k]->loc, "torch.where's %s must be a float tensor or a constant number%s",
                     k ? "other" : "input",
                     v[k].kind == V_TENSOR && v[k].t->dtype == DT_BOOL ? " (a mask: say .float())" : "");
            return ERR;
        }
    }
    if (v[0].kind == V_SCALAR && v[1].kind == V_SCALAR) {
        error_at(call->loc, "torch.where of two numbers is not supported: one of input and other must be a tensor");
        return ERR;
    }
    Tensor *mask = cond.t, *r;
    if (v[0].kind == V_SCALAR)
        return (r = fill(c, v[1].t, mask, v[0].s, call->loc)) ? tensor_val(r) : ERR;
    Tensor *not_mask = as_mask(unary_op(c, OP_EQ_C, mask, int_scalar(0), call->loc)).t;
    if (v[1].kind == V_SCALAR)
        return (r = fill(c, v[0].t, not_mask, v[1].s, call->loc)) ? tensor_val(r) : ERR;
    Tensor *a = fill(c, v[0].t, not_mask, int_scalar(0), call->loc);
    Tensor *b = a ? fill(c, v[1].t, mask, int_scalar(0), call->loc) : NULL;
    return b ? binary_op(c, OP_ADD, a, b, call->loc, arg[1]->loc, arg[2]->loc) : ERR;
}

/* ---- torch.ones(sizes...), torch.zeros(sizes...) ---- */

/* The sizes as ints, or one tuple or list of them; the batch dim's size
 * (B from B, T, C = x.size()) makes that dim the batch. */
static int sizes(Ctx *c, Node *call, int64_t *shape, bool *batch) {
    Node **items = call->args;
    int count = call->nargs;
    if (count == 1 && items[0]->kind == N_LIST) {
        items = items[0]->args;
        count = call->args[0]->nargs;
    }
    if (count < 1 || count > MAX_RANK) {
        error_at(call->loc, "give 1 to %d sizes", MAX_RANK);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        Scalar s;
        if (items[i]->kind == N_KWARG) {
            error_at(items[i]->loc, "unexpected keyword argument '%s' (only sizes are taken)", items[i]->name);
            return -1;
        }
        if (!eval_int(c, items[i], &shape[i], &s))
            return -1;
        if (s.rows_expr && !s.is_batch) {
            error_at(items[i]->loc, "a size computed from the batch size is not supported (the batch dim itself is)");
            return -1;
        }
        if (shape[i] < 1) {
            error_at(items[i]->loc, "size %lld: a size must be positive", (long long)shape[i]);
            return -1;
        }
        batch[i] = s.is_batch;
    }
    return count;
}

static Val constant(Ctx *c, OpKind kind, Node *call) {
    int64_t shape[MAX_RANK];
    bool batch[MAX_RANK];
    int rank = sizes(c, call, shape, batch);
    if (rank < 0)
        return ERR;
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, rank, shape, batch, call->loc);
    if (!check_size(out, call->loc))
        return ERR;
    new_op(c, kind, out, NULL, NULL, call->loc)->c = (Scalar){.value = kind == OP_ONES};
    return tensor_val(out);
}

/* ---- torch.tril(x, diagonal=0), x.tril(diagonal=0): x where column <=
 * row + diagonal over the last two dims, 0 above ---- */

static Val tril(Ctx *c, Tensor *self, Node *call) {
    static const char *const fn_params[] = {"input", "diagonal", NULL}, *const method_params[] = {"diagonal", NULL};
    Node *arg[2] = {NULL, NULL};
    if (!bind_args(call, self ? method_params : fn_params, self ? arg + 1 : arg))
        return ERR;
    if (!self && !arg[0]) {
        error_at(call->loc, "torch.tril takes (input, diagonal=0)");
        return ERR;
    }
    Tensor *x = self ? self : expect_tensor(c, arg[0]);
    if (!x)
        return ERR;
    int64_t k = 0;
    if (arg[1] && !eval_int(c, arg[1], &k, NULL))
        return ERR;
    if (x->rank < 2) {
        error_at(call->loc, "tril needs a tensor of 2 dims at least, got %s", describe(x));
        return ERR;
    }
    if (x->batch[x->rank - 1] || x->batch[x->rank - 2]) {
        error_at(call->loc, "tril over the batch dim of %s is not supported (inference runs on any number of rows)",
                 describe(x));
        return ERR;
    }
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, x->rank, x->shape, x->batch, call->loc);
    new_op(c, OP_TRIL, out, x, NULL, call->loc)->c = int_scalar(k);
    return tensor_val(out);
}

bool mask_module_call(Ctx *c, const char *module, const char *fn, Node *call, Val *v) {
    if (strcmp(module, "torch"))
        return false;
    if (!strcmp(fn, "ones") || !strcmp(fn, "zeros"))
        *v = constant(c, fn[0] == 'o' ? OP_ONES : OP_ZEROS, call);
    else if (!strcmp(fn, "tril"))
        *v = tril(c, NULL, call);
    else if (!strcmp(fn, "where"))
        *v = where_call(c, call);
    else
        return false;
    return true;
}

/* ---- methods of masks ---- */

/* The methods a mask takes: its reshapes keep it a mask (method_call in
 * lower.c lowers them); .float() makes it a float tensor of 0 and 1 (a
 * copy, through which nothing flows back). */
bool keeps_mask(const char *fn) {
    for (int k = 0; k < OP_COUNT; k++) {
        bool reshape = k == OP_VIEW || k == OP_PERMUTE || k == OP_UNSQUEEZE || k == OP_CONTIGUOUS || k == OP_EXPAND;
        if (reshape && (!strcmp(op_info[k].py, fn) || (op_info[k].alias && !strcmp(op_info[k].alias, fn))))
            return true;
    }
    return false;
}

/* x.tril(), and the methods of a mask but its reshapes: true when it
 * lowered (or refused) the call into *v. */
bool mask_method(Ctx *c, Tensor *t, const char *fn, Node *call, Val *v) {
    if (!strcmp(fn, "tril") && t->dtype == DT_FLOAT) {
        *v = tril(c, t, call);
        return true;
    }
    if (t->dtype != DT_BOOL || keeps_mask(fn))
        return false;
    if (!strcmp(fn, "float") && !call->nargs) {
        Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, t->rank, t->shape, t->batch, call->loc);
        new_op(c, OP_VIEW, out, t, NULL, call->loc);
        *v = tensor_val(out);
        return true;
    }
    error_at(call->loc, "mask %s (a bool tensor) takes .view() .reshape() .unsqueeze() .squeeze() .permute() "
             ".transpose() .contiguous() .expand() .float(), not .%s()", describe(t), fn);
    *v = ERR;
    return true;
}

Val mask_result(Tensor *t, Val v) { return t->dtype == DT_BOOL ? as_mask(v) : v; }
