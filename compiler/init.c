/* init.c - a param's init as PyTorch evaluates it: one draw (or a
 * constant) followed by float ops with constants, one tensor op at a time;
 * runtime/state.c replays the steps.
 * Memory: inits come from the arena. */
#include "lower.h"
#include "ninjac_model.h"   /* nj_init_step: the runtime's semantics of a step */

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
 * ones() and what follows) in float, as PyTorch computes it and as the
 * runtime replays a param's steps (nj_init_step). */
static bool init_fold(InitDist dist, BinOp op, double x, double y, Loc op_loc, Init *out) {
    bool in_float = dist == INIT_CONST;
    switch (op) {
    case BIN_ADD:
    case BIN_SUB:
    case BIN_MUL:
    case BIN_DIV:
        x = in_float ? nj_init_step(binop_text[op][0], (float)x, (float)y)
          : op == BIN_ADD ? x + y : op == BIN_SUB ? x - y : op == BIN_MUL ? x * y : x / y;
        break;
    case BIN_POW: x = in_float ? (float)pow((float)x, (float)y) : pow(x, y); break;
    default:
        error_at(op_loc, "an init must be affine in a single random draw");
        return false;
    }
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

void declare_param(Ctx *c, const Stmt *s, Vec *inits) {
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
