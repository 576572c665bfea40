/* ir.c - the tensor IR's constructors: tensors, ops (with the shape
 * rules of elementwise ops: same shape, broadcast), their sizes and how
 * diagnostics describe them.
 * Memory: all IR comes from the arena. */
#include "lower.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

uint32_t batch_axes(const Tensor *t) {
    uint32_t axes = 0;
    for (int i = 0; i < t->rank; i++)
        if (t->batch[i])
            axes |= 1u << i;
    return axes;
}

bool has_batch(const Tensor *t) {
    for (int i = 0; i < t->rank; i++)
        if (t->batch[i])
            return true;
    return false;
}

const char *describe(const Tensor *t) {
    return t->is_temp ? arena_printf("%s", shape_str(t))
                      : arena_printf("'%s' %s", t->name, shape_str(t));
}

/* ---- tensors and ops ---- */

Tensor *new_tensor(Ctx *c, TensorKind kind, DType dtype, int rank, const int64_t *shape,
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

Op *new_op(Ctx *c, OpKind kind, Tensor *out, Tensor *a, Tensor *b, Loc loc) {
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

bool check_size(Tensor *t, Loc loc) {
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

Val unary_op(Ctx *c, OpKind kind, Tensor *a, Scalar k, Loc loc) {
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, a->rank, a->shape, a->batch, loc);
    new_op(c, kind, out, a, NULL, loc)->c = k;
    return tensor_val(out);
}

/* Inference runs on any number of rows, so a dim that is the batch in one
 * operand cannot meet a dim of fixed size in the other. */
Val batch_mismatch(const Tensor *fixed, int fixed_dim, const Tensor *rows, Loc loc) {
    error_at(loc, "%s cannot line up with the batch rows of %s: its dim %d has a fixed size, but inference "
             "runs on any number of rows", describe(fixed), describe(rows), fixed_dim);
    if (!fixed->is_temp)
        note_at(fixed->stmt ? fixed->stmt->name_loc : fixed->loc, "'%s' is defined here", fixed->name);
    return ERR;
}

Val binary_op(Ctx *c, OpKind kind, Tensor *a, Tensor *b, Loc loc, Loc a_loc, Loc b_loc) {
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
