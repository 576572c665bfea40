/* lower_nn.c - the functions the nn modules of the lectures and makemore.py
 * call that are not one op of a tensor: Python's math module on numbers
 * (NewGELU's math.sqrt(2.0 / math.pi)), torch.pow(x, c) as x ** c, and
 * F.layer_norm with its weight and bias. module_call and attribute in
 * lower.c come here first; F.gelu is a plain row of ops.def. torch.zeros_like
 * is an op without operands. Emission: emit_nn.c.
 * Memory: all IR comes from the arena. */
#include "lower.h"

#include <math.h>
#include <string.h>

/* ---- math: numbers folded at compile time, as Python computes them (double) ---- */

static const struct {
    const char *name;
    double value;
} math_constants[] = {
    {"pi", M_PI},
    {"e", M_E},
    {"tau", 2 * M_PI},
};

Val math_constant(Node *attr) {
    for (size_t i = 0; i < sizeof math_constants / sizeof *math_constants; i++)
        if (!strcmp(attr->name, math_constants[i].name))
            return scalar_val((Scalar){.value = math_constants[i].value});
    error_at(attr->loc, "unsupported constant math.%s (supported: math.pi, math.e, math.tau)", attr->name);
    return ERR;
}

/* One number argument, already a compile-time constant; a tensor is
 * refused with the torch function that takes it. */
static bool math_arg(Ctx *c, Node *n, const char *fn, double *out) {
    Val v = eval(c, n);
    if (v.kind == V_ERROR)
        return false;
    if (v.kind != V_SCALAR) {
        error_at(n->loc, "math.%s takes a number; for a tensor use torch.%s", fn, fn);
        return false;
    }
    if (v.s.rows_expr) {
        error_at(n->loc, "math.%s of a number that depends on the batch size is not supported", fn);
        return false;
    }
    *out = v.s.value;
    return true;
}

static Val math_call(Ctx *c, const char *fn, Node *call) {
    static const struct {
        const char *name;
        double (*f)(double);
    } unary[] = {
        {"sqrt", sqrt}, {"exp", exp}, {"log", log}, {"log2", log2}, {"log10", log10}, {"tanh", tanh},
        {"sin", sin},   {"cos", cos}, {"erf", erf}, {"fabs", fabs},
    };
    for (int i = 0; i < call->nargs; i++)
        if (call->args[i]->kind == N_KWARG) {
            error_at(call->args[i]->loc, "math.%s takes no keyword arguments", fn);
            return ERR;
        }
    double x, y, r;
    if (!strcmp(fn, "pow")) {
        if (call->nargs != 2) {
            error_at(call->loc, "math.pow takes two numbers, got %d argument%s", call->nargs,
                     call->nargs == 1 ? "" : "s");
            return ERR;
        }
        if (!math_arg(c, call->args[0], fn, &x) || !math_arg(c, call->args[1], fn, &y))
            return ERR;
        r = pow(x, y);
    } else {
        size_t k = 0, count = sizeof unary / sizeof *unary;
        while (k < count && strcmp(unary[k].name, fn))
            k++;
        if (k == count) {
            char *names = arena_strdup("math.pow");
            for (size_t i = 0; i < count; i++)
                names = arena_printf("%s, math.%s", names, unary[i].name);
            error_at(call->loc, "unsupported function math.%s (supported: %s)", fn, names);
            return ERR;
        }
        if (call->nargs != 1) {
            error_at(call->loc, "math.%s takes one number, got %d arguments", fn, call->nargs);   /* 0 or 2+ */
            return ERR;
        }
        if (!math_arg(c, call->args[0], fn, &x))
            return ERR;
        /* Python raises ValueError where C returns NaN or a pole */
        if ((x < 0 && !strcmp(fn, "sqrt")) || (x <= 0 && !strncmp(fn, "log", 3))) {
            error_at(call->loc, "math domain error: math.%s(%g)", fn, x);
            return ERR;
        }
        r = unary[k].f(x);
    }
    if (!isfinite(r)) {
        error_at(call->loc, "math.%s: the result is not a finite number", fn);
        return ERR;
    }
    return scalar_val((Scalar){.value = r});   /* a float, as Python's math returns */
}

/* ---- torch.pow(x, c): x ** c, with the exponents that have an op of their own ---- */

static Val torch_pow(Ctx *c, Node *call) {
    static const char *const params[] = {"input", "exponent", NULL};
    Node *arg[2];
    if (!bind_args(call, params, arg))
        return ERR;
    if (!arg[0] || !arg[1]) {
        error_at(call->loc, "torch.pow takes (input, exponent)");
        return ERR;
    }
    Tensor *t = expect_tensor(c, arg[0]);
    if (!t)
        return ERR;
    Val k = eval(c, arg[1]);
    if (k.kind == V_ERROR)
        return ERR;
    if (k.kind != V_SCALAR) {
        error_at(arg[1]->loc, "torch.pow takes a constant exponent (a tensor exponent is not supported)");
        return ERR;
    }
    if (k.s.rows_expr) {
        error_at(arg[1]->loc, "an exponent cannot depend on the batch size");
        return ERR;
    }
    OpKind kind;
    return unary_op(c, power_op(k.s.value, &kind) ? kind : OP_POW_C, t, k.s, call->loc);
}

/* ---- F.layer_norm(input, normalized_shape, weight, bias, eps=1e-05) ---- */

static Val layer_norm(Ctx *c, Node *call) {
    static const char *const params[] = {"input", "normalized_shape", "weight", "bias", "eps", NULL};
    Node *arg[5];
    if (!bind_args(call, params, arg))
        return ERR;
    if (!arg[0] || !arg[1] || !arg[2] || !arg[3]) {
        error_at(call->loc, "F.layer_norm takes (input, normalized_shape, weight, bias[, eps]); "
                 "without weight and bias it is not supported");
        return ERR;
    }
    Tensor *x = expect_tensor(c, arg[0]);
    if (!x)
        return ERR;
    Node *shape = arg[1];
    if (shape->kind == N_LIST && shape->nargs != 1) {
        error_at(shape->loc, "F.layer_norm normalizes over the last dim only: normalized_shape must be (n,)");
        return ERR;
    }
    int64_t n;
    if (!eval_int(c, shape->kind == N_LIST ? shape->args[0] : shape, &n, NULL))
        return ERR;
    if (x->rank < 1 || n != x->shape[x->rank - 1]) {
        error_at(shape->loc, "normalized_shape (%lld,) does not match the last dim of %s", (long long)n,
                 describe(x));
        return ERR;
    }
    if (x->batch[x->rank - 1]) {
        error_at(arg[0]->loc, "F.layer_norm over the batch dim of %s is not supported (inference runs on any "
                 "number of rows)", describe(x));
        return ERR;
    }
    Tensor *wb[2];
    for (int k = 0; k < 2; k++) {
        if (!(wb[k] = expect_tensor(c, arg[2 + k])))
            return ERR;
        if (wb[k]->rank != 1 || wb[k]->shape[0] != n) {
            error_at(arg[2 + k]->loc, "F.layer_norm's %s must have shape [%lld] (normalized_shape), got %s",
                     k ? "bias" : "weight", (long long)n, describe(wb[k]));
            return ERR;
        }
    }
    Scalar eps = {.value = 1e-5};
    if (arg[4]) {
        Val v = eval(c, arg[4]);
        if (v.kind == V_ERROR)
            return ERR;
        if (v.kind != V_SCALAR || v.s.rows_expr || v.s.value < 0) {
            error_at(arg[4]->loc, "eps must be a constant number >= 0");
            return ERR;
        }
        eps = v.s;
    }
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, x->rank, x->shape, x->batch, call->loc);
    Op *op = new_op(c, OP_LAYER_NORM, out, x, wb[0], call->loc);
    op->in = arena_alloc(sizeof(Tensor *) * 3);
    op->in[0] = x;
    op->in[1] = wb[0];
    op->in[2] = wb[1];
    op->nin = 3;
    op->c = eps;
    return tensor_val(out);
}

/* ---- torch.zeros_like(x): x's shape, none of its values, no gradient ---- */

static Val zeros_like(Ctx *c, Node *call) {
    static const char *const params[] = {"input", NULL};
    Node *arg[1];
    if (!bind_args(call, params, arg))
        return ERR;
    if (!arg[0]) {
        error_at(call->loc, "torch.zeros_like takes a tensor");
        return ERR;
    }
    Tensor *x = expect_tensor(c, arg[0]);
    if (!x)
        return ERR;
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, x->rank, x->shape, x->batch, call->loc);
    new_op(c, OP_ZEROS_LIKE, out, NULL, NULL, call->loc);
    return tensor_val(out);
}

/* ---- torch.clamp(input, min, max) and x.clamp(min, max): constant bounds,
 * either optional; clamp_min then clamp_max (ops.def) ---- */

Val clamp(Ctx *c, Tensor *self, Node *call) {
    static const char *const fn_params[] = {"input", "min", "max", NULL};
    static const char *const method_params[] = {"min", "max", NULL};
    Node *arg[3];
    if (!bind_args(call, self ? method_params : fn_params, arg))
        return ERR;
    Node **bound = self ? arg : arg + 1;
    const char *name = self ? ".clamp()" : "torch.clamp";
    if (!self && !arg[0]) {
        error_at(call->loc, "torch.clamp takes (input, min, max)");
        return ERR;
    }
    if (!bound[0] && !bound[1]) {
        error_at(call->loc, "%s needs at least one of min and max", name);
        return ERR;
    }
    Tensor *t = self ? self : expect_tensor(c, arg[0]);
    if (!t)
        return ERR;
    if (t->dtype != DT_FLOAT) {
        error_at(self ? call->loc : arg[0]->loc, "%s needs a float tensor, got %s", name, describe(t));
        return ERR;
    }
    Val v = tensor_val(t);
    for (int k = 0; k < 2; k++) {
        if (!bound[k])
            continue;
        Val b = eval(c, bound[k]);
        if (b.kind == V_ERROR)
            return ERR;
        if (b.kind != V_SCALAR || b.s.rows_expr) {
            error_at(bound[k]->loc, "%s's %s must be a constant number (a tensor bound is not supported)", name,
                     k ? "max" : "min");
            return ERR;
        }
        v = unary_op(c, k ? OP_CLAMP_MAX : OP_CLAMP_MIN, v.t, b.s, call->loc);
    }
    return v;
}

/* ---- logsumexp and log_softmax: no op of their own; the stable form
 * m + log(sum(exp(x - m))) with m the max over the dim (kept). The gradient
 * that reaches m cancels (-1 + the softmax's sum, so rounding error only),
 * which PyTorch's closed form leaves out: the others are PyTorch's. A row
 * all -inf gives NaN (PyTorch's logsumexp gives -inf). ---- */

/* (input, dim, keepdim) of torch.*, or (dim, keepdim) of the method: x and
 * its one dim; keepdim only where keep is not NULL */
static Tensor *lse_args(Ctx *c, Tensor *self, Node *call, const char *fn, bool *keep, int *k) {
    static const char *const fn_params[] = {"input", "dim", "keepdim", NULL};
    static const char *const method_params[] = {"dim", "keepdim", NULL};
    Node *arg[3];
    if (!bind_args(call, self ? method_params : fn_params, arg))
        return NULL;
    Node **rest = self ? arg : arg + 1;
    if ((!self && !arg[0]) || !rest[0]) {
        error_at(call->loc, "%s takes (input, dim%s)", fn, keep ? ", keepdim=False" : "");
        return NULL;
    }
    if (rest[1] && !keep) {
        error_at(rest[1]->loc, "%s takes no keepdim", fn);
        return NULL;
    }
    Tensor *t = self ? self : expect_tensor(c, arg[0]);
    if (!t)
        return NULL;
    if (t->dtype != DT_FLOAT) {
        error_at(self ? call->loc : arg[0]->loc, "%s needs a float tensor, got %s", fn, describe(t));
        return NULL;
    }
    if (rest[0]->kind == N_LIST) {
        error_at(rest[0]->loc, "%s over more than one dim is not supported", fn);
        return NULL;
    }
    uint32_t axes;
    if (!reduce_axes(c, t, rest[0], &axes) || (rest[1] && !eval_bool(c, rest[1], keep)))
        return NULL;
    *k = __builtin_ctz(axes);
    if (t->batch[*k]) {
        error_at(rest[0]->loc, "%s over the batch dim of %s is not supported (inference runs on any number of rows)",
                 fn, describe(t));
        return NULL;
    }
    return t;
}

static Tensor *lse(Ctx *c, Tensor *x, int k, bool keepdim, Loc loc) {
    Tensor *m = reduce_op(c, OP_MAX, x, 1u << k, true, loc)->out;
    Val d = binary_op(c, OP_SUB, x, m, loc, loc, loc);
    if (d.kind != V_TENSOR)
        return NULL;
    Tensor *s = reduce_op(c, OP_SUM, unary_op(c, OP_EXP, d.t, int_scalar(0), loc).t, 1u << k, keepdim, loc)->out;
    Tensor *l = unary_op(c, OP_LOG, s, int_scalar(0), loc).t;
    if (!keepdim)
        m = reduce_op(c, OP_MAX, x, 1u << k, false, loc)->out;
    Val v = binary_op(c, OP_ADD, m, l, loc, loc, loc);
    return v.kind == V_TENSOR ? v.t : NULL;
}

Val logsumexp(Ctx *c, Tensor *self, Node *call) {
    bool keepdim = false;
    int k;
    Tensor *x = lse_args(c, self, call, self ? ".logsumexp()" : "torch.logsumexp", &keepdim, &k);
    Tensor *y = x ? lse(c, x, k, keepdim, call->loc) : NULL;
    return y ? tensor_val(y) : ERR;
}

Val log_softmax(Ctx *c, Tensor *self, Node *call) {
    int k;
    Tensor *x = lse_args(c, self, call, self ? ".log_softmax()" : "F.log_softmax", NULL, &k);
    Tensor *l = x ? lse(c, x, k, true, call->loc) : NULL;
    return l ? binary_op(c, OP_SUB, x, l, call->loc, call->loc, call->loc) : ERR;
}

bool nn_module_call(Ctx *c, const char *module, const char *fn, Node *call, Val *v) {
    if (!strcmp(module, "math"))
        *v = math_call(c, fn, call);
    else if (!strcmp(module, "torch") && !strcmp(fn, "pow"))
        *v = torch_pow(c, call);
    else if (!strcmp(module, "torch") && !strcmp(fn, "clamp"))
        *v = clamp(c, NULL, call);
    else if (!strcmp(module, "torch") && !strcmp(fn, "logsumexp"))
        *v = logsumexp(c, NULL, call);
    else if ((!strcmp(module, "F") || !strcmp(module, "torch")) && !strcmp(fn, "log_softmax"))
        *v = log_softmax(c, NULL, call);
    else if (!strcmp(module, "torch") && !strcmp(fn, "zeros_like"))
        *v = zeros_like(c, call);
    else if (!strcmp(module, "F") && !strcmp(fn, "layer_norm"))
        *v = layer_norm(c, call);
    else
        return false;
    return true;
}
