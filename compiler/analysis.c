/* analysis.c - what lowering leaves to a look at the whole model: which
 * inputs each tensor depends on, which tensors are batch statistics (frozen
 * for inference) and whether they can be calibrated, and the temporaries
 * nothing reads. */
#include "lower.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

void mark_dependencies(Model *m) {
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
void drop_ops_since(Model *m, int ops, int tensors) {
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
void drop_dead_temps(Model *m) {
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
    drop_tensors(m, dead);
}

void drop_tensors(Model *m, const bool *dead) {
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
