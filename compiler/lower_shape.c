/* lower_shape.c - shape rules of the ops that move elements without
 * computing: view/reshape with the batch inferred (issue 12, items 2 and 8).
 *
 * The batch dim: a tensor's batch[d] says dim d grows with the number of
 * rows. It is m->batch long in training, `rows` in inference, or rows
 * times a constant after a view folds more dims into it
 * (logits.view(-1, V) of [n, t, V] is [n*t, V]: rows * t in inference;
 * emit_common.c's rows_factor). Memory: all IR comes from the arena. */
#include "lower.h"

#include <string.h>

/* A size spelled with the batch size times constants (n, x.shape[0], B*T
 * with B from x.shape): fold() spells it in C as a product with `rows` in
 * it once. A sum or a quotient of it is not rows times a constant, nor is
 * rows * rows. */
static bool rows_product(const Model *m, Scalar s) {
    if (s.is_batch)
        return true;
    if (!s.rows_expr || !s.is_int || (int64_t)s.value % m->batch)
        return false;
    const char *first = strstr(s.rows_expr, "rows");
    return first && !strstr(first + 4, "rows") && !strpbrk(s.rows_expr, "+-/");
}

/* The elements of one row (one index of the batch dim) of t, when t's only
 * batch dim is its first; -1 when it has none or it is elsewhere. */
static int64_t per_row(const Model *m, const Tensor *t) {
    for (int d = 1; d < t->rank; d++)
        if (t->batch[d])
            return -1;
    return t->rank && t->batch[0] ? tensor_numel(t) / m->batch : -1;
}

/* x.view(sizes) / x.reshape(sizes), sizes as varargs, a list or a tuple,
 * one of them may be -1. A batched x keeps its batch first: a size spelled
 * with the batch (n, x.shape[0], B*T) is the batch dim, and so is a
 * leading -1 that takes whole rows (emb.view(-1, 30) of [n, 3, 10]).
 * analysis.c refuses a view that loses the batch dim. An integer input is
 * viewed without an op or a copy: the new tensor reads the input's array. */
Val view(Ctx *c, Tensor *t, Node *call) {
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
    bool batch[MAX_RANK], any_batch = false;
    int infer = -1;
    for (int i = 0; i < count; i++) {
        Scalar s;
        if (!eval_int(c, items[i], &shape[i], &s))
            return ERR;
        batch[i] = rows_product(c->m, s);
        any_batch |= batch[i];
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
        int64_t row = per_row(c->m, t);
        if (infer == 0 && !any_batch && row > 0) {
            /* the -1 takes the rows in: each row must fold into whole rows of the view */
            if (row % known) {
                error_at(items[0]->loc, "this -1 would split the rows of %s (%lld elements a row) into "
                         "pieces of %lld: the first dim of the view must hold whole rows, so that "
                         "inference can run on any number of rows",
                         describe(t), (long long)row, (long long)known);
                return ERR;
            }
            batch[0] = true;
        }
        known = numel;
    }
    if (known != numel) {
        error_at(call->loc, "cannot view %s (%lld elements) as %lld elements", describe(t),
                 (long long)numel, (long long)known);
        return ERR;
    }
    if (t->dtype == DT_INT) {
        if (t->kind != T_INPUT) {
            error_at(call->loc, "internal: a view of a computed integer tensor");
            return ERR;
        }
        if (has_batch(t) && !batch[0]) {
            error_at(call->loc, "a view must keep the batch dim first, e.g. x.view(x.shape[0], -1) "
                     "or x.view(-1), so that inference can run on any number of rows");
            return ERR;
        }
        Tensor *out = new_tensor(c, T_INPUT, DT_INT, count, shape, batch, call->loc);
        out->input_index = t->input_index;
        out->bound = t->bound;
        vec_push(&c->line_temps, out);   /* named by its line, as an op's output is */
        return tensor_val(out);
    }
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, count, shape, batch, call->loc);
    new_op(c, OP_VIEW, out, t, NULL, call->loc);
    return tensor_val(out);
}
