/* lower_int.c - computed integer tensors (issue 12 item 5): torch.roll of an
 * integer tensor and index assignment of a constant into one, as
 * makemore.py's MLP builds the context of each position:
 *
 *     idx = torch.roll(idx, 1, 1)
 *     idx[:, 0] = vocab_size   # special <BLANK> token
 *
 * Both move or overwrite positions of a row the same way in every row (the
 * batch dim is taken whole), so the result is a compile-time map over the
 * positions of a row: position p holds the input's value at position
 * imap[p] of the same row, or the constant ~imap[p] (imap[p] < 0). Such a
 * tensor has no array and no op: it is a T_INPUT like a view of an input,
 * and a table indexed by it reads through the map (emit_common.c's ref).
 * Its value range is known: [0, bound) with bound = max(old bound, k + 1)
 * after an assignment of k, which keeps the embedding's bound check.
 * torch.roll of a float tensor is here too: a cat of two slices. */
#include "lower.h"

#include <string.h>

/* Elements of one row (everything but the batch dim, which is dim 0). */
static int64_t row_len(const Tensor *t) { return tensor_numel(t) / t->shape[0]; }

/* The map of t: its own, or the identity for an input or its view. */
static int32_t *map_copy(const Tensor *t) {
    int64_t n = row_len(t);
    int32_t *map = arena_alloc(sizeof(int32_t) * (size_t)n);
    for (int64_t p = 0; p < n; p++)
        map[p] = t->imap ? t->imap[p] : (int32_t)p;
    return map;
}

/* A new version of src with the same shape and values read through map. */
static Tensor *mapped(Ctx *c, Tensor *src, int32_t *map, Loc loc) {
    Tensor *out = new_tensor(c, T_INPUT, DT_INT, src->rank, src->shape, src->batch, loc);
    out->input_index = src->input_index;
    out->bound = src->bound;
    out->ignore = src->ignore;
    out->name = src->name;   /* for diagnostics until its line names it */
    out->imap = map;
    out->iroot = src->iroot ? src->iroot : src;
    vec_push(&c->line_temps, out);
    return out;
}

/* The integer tensors roll and index assignment take: an input's rows
 * (batch dim first, more dims after it: the batch dim itself is never
 * moved), no ignore_index value (it is no index). */
static bool row_tensor(const Tensor *t, const char *what, Loc loc) {
    if (t->rank < 2 || !t->batch[0] || row_len(t) > INT32_MAX) {
        error_at(loc, "%s needs an integer tensor [batch, ...] with dims after the batch dim, got %s",
                 what, describe(t));
        return false;
    }
    if (t->ignore) {
        error_at(loc, "'%s' holds ignore_index=%lld (a cross_entropy target), so it cannot be %s",
                 t->name, (long long)t->ignore, strcmp(what, "torch.roll") ? "assigned into" : "rolled");
        return false;
    }
    return true;
}

/* Position p of a row as indices of dims 1.., and back. */
static void unflatten(const Tensor *t, int64_t p, int64_t *idx) {
    for (int d = t->rank - 1; d >= 1; d--) {
        idx[d] = p % t->shape[d];
        p /= t->shape[d];
    }
}

static int64_t flatten(const Tensor *t, const int64_t *idx) {
    int64_t p = 0;
    for (int d = 1; d < t->rank; d++)
        p = p * t->shape[d] + idx[d];
    return p;
}

/* x[..., a:b, ...] along dim d: a SLICE op. */
static Tensor *slice_dim(Ctx *c, Tensor *x, int d, int64_t a, int64_t b, Loc loc) {
    int64_t shape[MAX_RANK];
    memcpy(shape, x->shape, sizeof shape);
    shape[d] = b - a;
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, x->rank, shape, x->batch, loc);
    Op *op = new_op(c, OP_SLICE, out, x, NULL, loc);
    for (int k = 0; k < x->rank; k++) {
        op->start[k] = k == d ? a : 0;
        op->step[k] = 1;
    }
    return out;
}

/* A float tensor rolled by s in [0, n) along dim d is the cat of its last s
 * and its first n - s positions there: no op of its own, so its backward is
 * the cat's split and the slices' scatter (a roll back). */
static Val float_roll(Ctx *c, Tensor *x, int d, int64_t s, Node *list, Loc loc) {
    int64_t n = x->shape[d];
    if (s == 0) {   /* the elements as they are, in a tensor of its own */
        Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, x->rank, x->shape, x->batch, loc);
        new_op(c, OP_VIEW, out, x, NULL, loc);
        return tensor_val(out);
    }
    Tensor **parts = arena_alloc(sizeof(Tensor *) * 2);
    parts[0] = slice_dim(c, x, d, n - s, n, loc);
    parts[1] = slice_dim(c, x, d, 0, n - s, loc);
    return cat_parts(c, parts, 2, d, list, loc, loc);
}

/* torch.roll(x, shifts, dims) with one int shift along one dim (not the
 * batch dim): out[..., j, ...] = x[..., (j - shift) mod n, ...]. An
 * integer tensor's is a map, a float tensor's a cat of two slices. */
Val roll(Ctx *c, Node *call) {
    static const char *const params[] = {"input", "shifts", "dims", NULL};
    Node *arg[3];
    if (!bind_args(call, params, arg))
        return ERR;
    if (!arg[0] || !arg[1] || !arg[2]) {
        error_at(call->loc, "torch.roll takes (input, shifts, dims), one int shift along one dim");
        return ERR;
    }
    Tensor *x = any_tensor(c, arg[0]);
    int64_t shift, dim;
    if (!x || !eval_int(c, arg[1], &shift, NULL) || !eval_int(c, arg[2], &dim, NULL))
        return ERR;
    int d = normalize_dim(x, dim, arg[2]->loc);
    if (d < 0)
        return ERR;
    if (x->batch[d]) {
        error_at(arg[2]->loc, "torch.roll along the batch dim of %s would mix rows (inference runs on any "
                 "number of rows)", describe(x));
        return ERR;
    }
    int64_t n = x->shape[d], s = ((shift % n) + n) % n;
    if (x->dtype == DT_FLOAT)
        return float_roll(c, x, d, s, arg[0], call->loc);
    if (!row_tensor(x, "torch.roll", arg[0]->loc))
        return ERR;
    int32_t *map = arena_alloc(sizeof(int32_t) * (size_t)row_len(x));
    const int32_t *from = map_copy(x);
    int64_t idx[MAX_RANK] = {0};
    for (int64_t p = 0; p < row_len(x); p++) {
        unflatten(x, p, idx);
        idx[d] = (idx[d] - s + n) % n;
        map[p] = from[flatten(x, idx)];
    }
    return tensor_val(mapped(c, x, map, call->loc));
}

/* Another name that sees x's storage, which PyTorch's assignment would
 * change too: a view of the same input (a computed tensor is fresh storage
 * made on its line, which no other name can see: integer tensors cannot be
 * renamed). NULL if none. */
static const char *int_alias(Ctx *c, const Tensor *x, const char *self) {
    if (x->imap)
        return NULL;
    for (int i = 0; i < c->syms.cap; i++) {
        const Sym *s = c->syms.slots[i];
        if (s && s->kind == SYM_TENSOR && strcmp(s->name, self) && s->tensor->dtype == DT_INT &&
            !s->tensor->imap && s->tensor->input_index == x->input_index)
            return s->name;
    }
    return NULL;
}

/* x[parts] = k for an integer tensor x and a constant k >= 0: a new version
 * of x (lower.c binds it to x's name) whose positions in the indexed region
 * hold k. */
Val index_assign(Ctx *c, Node *target, Node *value) {
    Tensor *x = any_tensor(c, target->lhs);
    if (!x)
        return ERR;
    if (x->dtype != DT_INT) {
        error_at(target->loc, "index assignment into float tensor %s is not supported (only into an integer "
                 "tensor: makemore's idx[:, 0] = k)", describe(x));
        return ERR;
    }
    if (!row_tensor(x, "index assignment", target->lhs->loc))
        return ERR;
    int64_t k;
    if (!eval_int(c, value, &k, NULL))
        return ERR;
    if (k < 0 || k >= INT32_MAX) {
        error_at(value->loc, "the value assigned into integer tensor '%s' must be an int in [0, %d), got %lld",
                 x->name, INT32_MAX, (long long)k);
        return ERR;
    }
    const char *alias = int_alias(c, x, target->lhs->name);
    if (alias) {
        error_at(target->loc, "'%s' shares its storage with '%s': PyTorch's assignment would change both",
                 target->lhs->name, alias);
        return ERR;
    }
    int64_t start[MAX_RANK], step[MAX_RANK], shape[MAX_RANK];
    bool batch[MAX_RANK];
    int rank;
    if (!index_parts(c, x, target, start, step, shape, batch, &rank))
        return ERR;
    int64_t len[MAX_RANK];   /* per dim of x: how many indices the region takes */
    for (int d = 0, r = 0; d < x->rank; d++)
        len[d] = step[d] ? shape[r++] : 1;
    int32_t *map = map_copy(x);
    int64_t idx[MAX_RANK] = {0};
    for (int64_t p = 0; p < row_len(x); p++) {
        unflatten(x, p, idx);
        bool inside = true;
        for (int d = 1; d < x->rank && inside; d++) {
            int64_t off = idx[d] - start[d];
            inside = step[d] ? off >= 0 && off % step[d] == 0 && off / step[d] < len[d] : off == 0;
        }
        if (inside)
            map[p] = ~(int32_t)k;
    }
    Tensor *out = mapped(c, x, map, target->loc);
    if (k + 1 > out->bound)
        out->bound = k + 1;
    return tensor_val(out);
}

/* Only a table lookup reads through the map; the other users of integer
 * tensors (targets, one_hot, views) read an input's array. */
bool not_computed(const Tensor *t, const char *use, Loc loc) {
    if (!t->imap)
        return true;
    error_at(loc, "'%s' is computed (torch.roll, x[...] = k): it can only index a table, not be %s",
             t->name, use);
    return false;
}
