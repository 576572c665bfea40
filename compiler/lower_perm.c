/* lower_perm.c - the shape methods of issue 12 item 6: .permute(...),
 * .transpose(a, b), .unsqueeze(d), .squeeze(d), .contiguous(), .expand(...).
 *
 * unsqueeze and squeeze only add or drop a dim of size 1: the elements keep
 * their order, so their code is the view's (a copy forward, an add
 * backward). Every tensor ninjac makes is contiguous, so .contiguous() is a
 * copy too. permute and expand move elements: their code is emit_perm.c's. The batch dim must stay first (analysis.c says so for every
 * op), so a permute may only reorder the dims after it. */
#include "lower.h"

#include <string.h>

/* A dim argument as PyTorch takes it: -rank..rank-1 (-rank-1..rank for
 * unsqueeze, whose result has one more dim). */
static bool dim_arg(Ctx *c, Tensor *t, Node *n, int rank, int *out) {
    int64_t d;
    if (!eval_int(c, n, &d, NULL))
        return false;
    if (d < -rank || d >= rank) {
        error_at(n->loc, "dimension %lld is out of range for %s (expected %d to %d)", (long long)d,
                 describe(t), -rank, rank - 1);
        return false;
    }
    *out = (int)(d < 0 ? d + rank : d);
    return true;
}

/* An op whose code is the view's: the same elements in the same order. */
static Val as_view(Ctx *c, OpKind kind, Tensor *t, int rank, const int64_t *shape, const bool *batch, Loc loc) {
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, rank, shape, batch, loc);
    new_op(c, kind, out, t, NULL, loc);
    return tensor_val(out);
}

static Val unsqueeze(Ctx *c, Tensor *t, Node *call) {
    int d;
    if (call->nargs != 1 || call->args[0]->kind == N_KWARG) {
        error_at(call->loc, ".unsqueeze takes one dim");
        return ERR;
    }
    if (t->rank == MAX_RANK) {
        error_at(call->loc, ".unsqueeze of %s would have more than %d dims", describe(t), MAX_RANK);
        return ERR;
    }
    if (!dim_arg(c, t, call->args[0], t->rank + 1, &d))
        return ERR;
    int64_t shape[MAX_RANK];
    bool batch[MAX_RANK];
    for (int i = 0, j = 0; i <= t->rank; i++) {
        shape[i] = i == d ? 1 : t->shape[j];
        batch[i] = i == d ? false : t->batch[j];
        j += i != d;
    }
    return as_view(c, OP_UNSQUEEZE, t, t->rank + 1, shape, batch, call->loc);
}

/* squeeze(d) drops dim d if it is 1 and is the tensor itself otherwise;
 * squeeze() drops every dim of size 1. The batch dim is never dropped: it
 * is 1 only in a training batch of one row. */
static Val squeeze(Ctx *c, Tensor *t, Node *call) {
    uint32_t drop = 0;
    if (call->nargs > 1 || (call->nargs == 1 && call->args[0]->kind == N_KWARG)) {
        error_at(call->loc, ".squeeze takes at most one dim");
        return ERR;
    }
    if (call->nargs == 1) {
        int d;
        if (!dim_arg(c, t, call->args[0], t->rank, &d))
            return ERR;
        if (t->batch[d]) {
            error_at(call->args[0]->loc, "cannot squeeze the batch dim of %s", describe(t));
            return ERR;
        }
        if (t->shape[d] == 1)
            drop = 1u << d;
    } else {
        for (int d = 0; d < t->rank; d++)
            if (t->shape[d] == 1 && !t->batch[d])
                drop |= 1u << d;
    }
    if (!drop)
        return tensor_val(t);
    int64_t shape[MAX_RANK];
    bool batch[MAX_RANK];
    int rank = 0;
    for (int d = 0; d < t->rank; d++)
        if (!(drop & (1u << d))) {
            shape[rank] = t->shape[d];
            batch[rank++] = t->batch[d];
        }
    return as_view(c, OP_UNSQUEEZE, t, rank, shape, batch, call->loc);
}

static Val permuted(Ctx *c, Tensor *t, const int *perm, Loc loc) {
    int64_t shape[MAX_RANK];
    bool batch[MAX_RANK];
    for (int d = 0; d < t->rank; d++) {
        shape[d] = t->shape[perm[d]];
        batch[d] = t->batch[perm[d]];
    }
    if (has_batch(t) && !batch[0]) {
        error_at(loc, "this would move the batch dim of %s from the front; the batch dim must stay "
                 "the first dim (inference runs on any number of rows)", describe(t));
        return ERR;
    }
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, t->rank, shape, batch, loc);
    Op *op = new_op(c, OP_PERMUTE, out, t, NULL, loc);
    for (int d = 0; d < t->rank; d++)
        op->perm[d] = (int8_t)perm[d];
    return tensor_val(out);
}

static Val transpose(Ctx *c, Tensor *t, Node *call) {
    int a, b;
    if (call->nargs != 2 || call->args[0]->kind == N_KWARG || call->args[1]->kind == N_KWARG) {
        error_at(call->loc, ".transpose takes two dims");
        return ERR;
    }
    if (!dim_arg(c, t, call->args[0], t->rank, &a) || !dim_arg(c, t, call->args[1], t->rank, &b))
        return ERR;
    int perm[MAX_RANK];
    for (int d = 0; d < t->rank; d++)
        perm[d] = d == a ? b : d == b ? a : d;
    return a == b ? tensor_val(t) : permuted(c, t, perm, call->loc);
}

static Val permute(Ctx *c, Tensor *t, Node *call) {
    Node **items = call->args;
    int count = call->nargs;
    if (count == 1 && items[0]->kind == N_LIST) {   /* permute((0, 2, 1)) */
        count = items[0]->nargs;
        items = items[0]->args;
    }
    if (count != t->rank) {
        error_at(call->loc, ".permute of %s needs %d dims, got %d", describe(t), t->rank, count);
        return ERR;
    }
    int perm[MAX_RANK];
    uint32_t seen = 0;
    for (int i = 0; i < count; i++) {
        if (items[i]->kind == N_KWARG) {
            error_at(items[i]->loc, ".permute takes its dims by position");
            return ERR;
        }
        if (!dim_arg(c, t, items[i], t->rank, &perm[i]))
            return ERR;
        if (seen & (1u << perm[i])) {
            error_at(items[i]->loc, "dim %d appears twice in .permute", perm[i]);
            return ERR;
        }
        seen |= 1u << perm[i];
    }
    return permuted(c, t, perm, call->loc);
}

/* expand(*sizes): -1 keeps a dim, a dim of size 1 is repeated, new dims
 * may come in front (aligned right, as broadcasting). */
static Val expand(Ctx *c, Tensor *t, Node *call) {
    Node **items = call->args;
    int count = call->nargs;
    if (count == 1 && items[0]->kind == N_LIST) {
        count = items[0]->nargs;
        items = items[0]->args;
    }
    if (count < t->rank || count > MAX_RANK) {
        error_at(call->loc, ".expand of %s takes %d to %d sizes, got %d", describe(t), t->rank, MAX_RANK, count);
        return ERR;
    }
    int64_t shape[MAX_RANK];
    bool batch[MAX_RANK];
    int lead = count - t->rank;
    for (int i = 0; i < count; i++) {
        Scalar s;
        if (items[i]->kind == N_KWARG) {
            error_at(items[i]->loc, ".expand takes its sizes by position");
            return ERR;
        }
        if (!eval_int(c, items[i], &shape[i], &s))
            return ERR;
        int k = i - lead;   /* t's dim, if any */
        if (shape[i] == -1 && k >= 0) {
            shape[i] = t->shape[k];
            batch[i] = t->batch[k];
            continue;
        }
        if (shape[i] <= 0) {
            error_at(items[i]->loc, "expand size must be positive%s, got %lld", k >= 0 ? " or -1" : "",
                     (long long)shape[i]);
            return ERR;
        }
        if (k >= 0 && t->shape[k] != 1 && t->shape[k] != shape[i]) {
            error_at(items[i]->loc, "cannot expand dim %d of %s from %lld to %lld: only a dim of size 1 "
                     "can be expanded", k, describe(t), (long long)t->shape[k], (long long)shape[i]);
            return ERR;
        }
        batch[i] = (k >= 0 && t->batch[k]) || s.is_batch;
    }
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, count, shape, batch, call->loc);
    if (!check_size(out, call->loc))
        return ERR;
    new_op(c, OP_EXPAND, out, t, NULL, call->loc);
    return tensor_val(out);
}

Val perm_method(Ctx *c, Tensor *t, OpKind kind, const char *fn, Node *call) {
    switch (kind) {
    case OP_PERMUTE: return strcmp(fn, "transpose") ? permute(c, t, call) : transpose(c, t, call);
    case OP_UNSQUEEZE: return strcmp(fn, "squeeze") ? unsqueeze(c, t, call) : squeeze(c, t, call);
    case OP_CONTIGUOUS:
        if (call->nargs) {
            error_at(call->loc, ".contiguous() takes no arguments");
            return ERR;
        }
        return as_view(c, OP_CONTIGUOUS, t, t->rank, t->shape, t->batch, call->loc);
    case OP_EXPAND: return expand(c, t, call);
    default:
        error_at(call->loc, "internal: .%s() is not a shape method", fn);
        return ERR;
    }
}
