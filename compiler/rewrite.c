/* rewrite.c - the default mode's rewrite rules: chains of atomic ops that
 * one op computes better, found by structure (any names, the notebook's
 * variations) and replaced before the backward pass is derived.
 *
 * The cross-entropy chain of the backprop-ninja notebook (exercise 1):
 *
 *     logit_maxes = logits.max(1, keepdim=True).values     (optional)
 *     norm_logits = logits - logit_maxes
 *     counts = norm_logits.exp()
 *     counts_sum = counts.sum(1, keepdims=True)
 *     counts_sum_inv = counts_sum**-1                       (or 1.0/counts_sum)
 *     probs = counts * counts_sum_inv                       (or counts / counts_sum)
 *       ... or probs = F.softmax(logits, 1) for all of the above
 *     logprobs = probs.log()
 *     loss = -logprobs[range(n), Yb].mean()       (or lecture 1's -probs[range(n), Yb].log().mean())
 *
 * becomes loss = F.cross_entropy(logits, Yb), whose backward is exercise
 * 2's dlogits = (softmax(logits) - onehot(Yb)) / n.
 *
 * The BatchNorm statistics of the same notebook:
 *
 *     bnmeani = 1/n*hprebn.sum(0, keepdim=True)            -> hprebn.mean(0, keepdim=True)
 *     bndiff = hprebn - bnmeani
 *     bndiff2 = bndiff**2
 *     bnvar = 1/(n-1)*(bndiff2).sum(0, keepdim=True)       -> hprebn.var(0, keepdim=True)
 *
 * which is exercise 3's spec (mlp_bn_fused.ninja): the mean's and the
 * variance's backward each one pass over hprebn, and no bndiff2. Then the
 * normalisation itself:
 *
 *     bnvar_inv = (bnvar + 1e-5)**-0.5                     (or / torch.sqrt(bnvar + eps),
 *     bnraw = bndiff * bnvar_inv                            lecture 3's BatchNorm1d)
 *
 * becomes bnraw = batchnorm(hprebn, bnmeani, bnvar), whose backward is
 * exercise 3's closed form (dhprebn from dbnraw in two passes, nothing
 * through the mean and the var). A chain is rewritten
 * only when nothing outside it reads its intermediates: their values and
 * gradients then matter to nobody. -O0 keeps every line as written (the
 * notebook's manual backward, diffed against the reference). */
#include "lower.h"

#include <math.h>
#include <string.h>

typedef struct {
    const Model *m;
    int *readers;           /* per tensor id: how many op operands read it */
} Rw;

/* The op computing t, if it is `kind` and t is read exactly `uses` times. */
static Op *def_of(const Rw *rw, const Tensor *t, OpKind kind, int uses) {
    if (!t || t->kind != T_ACT || !t->def || t->def->kind != kind)
        return NULL;
    if (rw->readers[t->id] != uses || t == rw->m->logits || t == rw->m->loss)
        return NULL;
    return t->def;
}

static bool reduces_classes(const Op *op, const Tensor *logits) {
    return op->in[0] == logits && op->axes == 1u << 1 && op->keepdim;
}

/* probs from logits: softmax over dim 1, or exp(logits [- max]) / sum. */
static Tensor *softmax_source(const Rw *rw, const Tensor *probs, const Stmt **first) {
    Op *sm = def_of(rw, probs, OP_SOFTMAX, 1);
    if (sm && sm->in[0]->rank == 2 && sm->axes == 1u << 1) {
        *first = sm->stmt;
        return sm->in[0];
    }
    /* counts * counts_sum_inv, either order, or counts / counts_sum */
    Op *mul = def_of(rw, probs, OP_MUL, 1), *div = def_of(rw, probs, OP_DIV, 1);
    Tensor *counts = NULL, *sum = NULL;
    if (div) {
        counts = div->in[0];
        sum = div->in[1];
    } else if (mul) {
        for (int k = 0; k < 2 && !sum; k++) {
            Op *inv = def_of(rw, mul->in[k], OP_RECIP, 1);
            Op *rdiv = def_of(rw, mul->in[k], OP_RDIV_C, 1);
            if (rdiv && rdiv->c.value == 1)
                inv = rdiv;
            if (inv) {
                sum = inv->in[0];
                counts = mul->in[1 - k];
            }
        }
    }
    Op *exp = counts ? def_of(rw, counts, OP_EXP, 2) : NULL;
    Op *sum_op = sum ? def_of(rw, sum, OP_SUM, 1) : NULL;
    if (!exp || !sum_op || sum_op->in[0] != counts || counts->rank != 2)
        return NULL;
    Tensor *x = exp->in[0];
    *first = exp->stmt;
    Op *sub = def_of(rw, x, OP_SUB, 1);
    if (sub) {   /* logits - logit_maxes: the max changes no value and no gradient */
        Op *max = def_of(rw, sub->in[1], OP_MAX, 1);
        if (!max || !reduces_classes(max, sub->in[0]))
            return NULL;
        x = sub->in[0];
        *first = max->stmt;
    }
    if (!reduces_classes(sum_op, counts) || x->rank != 2 || x->dtype != DT_FLOAT)
        return NULL;
    return x;
}

/* -logprobs[range(n), Yb].mean() at `neg`: its logits, or NULL. */
static bool cross_entropy_chain(const Rw *rw, Op *neg, Tensor **logits, Tensor **targets, const Stmt **first) {
    Op *mean = def_of(rw, neg->in[0], OP_MEAN, 1);
    if (!mean || mean->out->rank != 0)
        return false;
    /* the log of the picked probabilities, or the picked log-probabilities */
    Op *pick = def_of(rw, mean->in[0], OP_PICK, 1), *log = NULL;
    Tensor *probs = NULL;
    if (pick && (log = def_of(rw, pick->in[0], OP_LOG, 1)))
        probs = log->in[0];
    else if ((log = def_of(rw, mean->in[0], OP_LOG, 1)) && (pick = def_of(rw, log->in[0], OP_PICK, 1)))
        probs = pick->in[0];
    if (!probs)
        return false;
    *logits = softmax_source(rw, probs, first);
    *targets = pick->in[1];
    return *logits && (*logits)->shape[0] == probs->shape[0] && (*logits)->shape[1] == probs->shape[1];
}

/* Marks every op between the chain's end and its logits as gone: walks the
 * operands back from `op` until it reaches `stop`. */
static void mark_chain(Op *op, const Tensor *stop, bool *gone) {
    for (int k = 0; k < op->nin; k++) {
        Tensor *t = op->in[k];
        if (t == stop || t->kind != T_ACT || gone[t->id])
            continue;
        gone[t->id] = true;
        mark_chain(t->def, stop, gone);
    }
}

/* Readers among the ops that stay (a rewritten chain's ops read on until
 * drop_tensors takes them out). */
static void count_readers(Rw *rw, const bool *gone) {
    memset(rw->readers, 0, sizeof(int) * (size_t)rw->m->tensors.len);
    for (int i = 0; i < rw->m->ops.len; i++) {
        const Op *op = rw->m->ops.items[i];
        if (gone[op->out->id])
            continue;
        for (int k = 0; k < op->nin; k++)
            rw->readers[op->in[k]->id]++;
    }
}

static bool is_close(double a, double b) { return fabs(a - b) <= 1e-12 * fabs(b); }

/* `scale` multiplies by 1/count or divides by count. Over the batch, count
 * must be written with the batch dim (1/n, not 1/32): a mean divides by
 * the rows it has, at inference too. */
static bool scales_by(const Op *scale, const Op *sum, double count) {
    if (count <= 0 || (sum->batch_reduction && !scale->c.rows_expr))
        return false;
    return (scale->kind == OP_MUL_C && is_close(scale->c.value, 1 / count)) ||
           (scale->kind == OP_DIV_C && is_close(scale->c.value, count));
}

static void become_reduction(Op *op, OpKind kind, const Op *sum, Tensor *x) {
    op->kind = kind;
    op->in[0] = x;
    op->axes = sum->axes;
    op->keepdim = sum->keepdim;
    op->c = sum->c;
    op->batch_reduction = sum->batch_reduction;
}

/* x.sum(A, keepdim) / N, N the number of elements summed: x.mean(A, keepdim). */
static bool mean_rule(const Rw *rw, Op *op, bool *gone) {
    Op *sum = def_of(rw, op->in[0], OP_SUM, 1);
    if (!sum || !scales_by(op, sum, sum->c.value))
        return false;
    gone[sum->out->id] = true;
    become_reduction(op, OP_MEAN, sum, sum->in[0]);
    op->rewrite_first = sum->stmt;
    op->rewrite_rule = "a mean";
    return true;
}

/* ((x - x.mean(A, keepdim))**2).sum(A, keepdim) / (N-1) or / N:
 * x.var(A, keepdim, unbiased). The difference stays if others read it. */
static bool var_rule(const Rw *rw, Op *op, bool *gone) {
    Op *sum = def_of(rw, op->in[0], OP_SUM, 1);
    Op *sq = sum ? def_of(rw, sum->in[0], OP_SQUARE, 1) : NULL;
    Tensor *diff = sq ? sq->in[0] : NULL;
    Op *sub = diff && diff->kind == T_ACT && diff->def->kind == OP_SUB ? diff->def : NULL;
    Op *mean = sub && sub->in[1]->kind == T_ACT ? sub->in[1]->def : NULL;
    if (!mean || mean->kind != OP_MEAN || mean->in[0] != sub->in[0] || mean->axes != sum->axes ||
        !mean->keepdim || sub->in[0]->rank != diff->rank)
        return false;
    bool unbiased = scales_by(op, sum, sum->c.value - 1);
    if (!unbiased && !scales_by(op, sum, sum->c.value))
        return false;
    gone[sum->out->id] = gone[sq->out->id] = true;
    if (rw->readers[diff->id] == 1 && diff != rw->m->logits && diff != rw->m->loss)
        gone[diff->id] = true;
    become_reduction(op, OP_VAR, sum, sub->in[0]);
    op->unbiased = unbiased;
    op->rewrite_first = sq->stmt;
    op->rewrite_rule = unbiased ? "an unbiased variance" : "a variance";
    return true;
}

/* A mean or var of x over dim 0 of a 2-D x, kept as [1, h]. */
static bool column_statistic(const Op *op, const Tensor *x) {
    return op && op->in[0] == x && x->rank == 2 && op->axes == 1u << 0 && op->keepdim;
}

static const Stmt *earlier(const Stmt *a, const Stmt *b) { return loc_line(a->loc) <= loc_line(b->loc) ? a : b; }

/* The op scaling by 1/sqrt(var + eps): (var + eps)**-0.5 as a factor,
 * torch.sqrt(var + eps) as a divisor. */
static Op *scale_of(const Rw *rw, const Tensor *t, OpKind root) {
    Op *r = def_of(rw, t, root, 1);
    return r ? def_of(rw, r->in[0], OP_ADD_C, 1) : NULL;
}

/* (x - mean) * (var + eps)**-0.5 (either order) or (x - mean) /
 * torch.sqrt(var + eps), with mean and var x's own statistics over the
 * rows and nothing else reading them, the difference or the scale:
 * batchnorm(x, mean, var), exercise 3's closed-form backward. The
 * statistics stay (inference freezes them). */
static bool batchnorm_rule(const Rw *rw, Op *op, bool *gone) {
    for (int side = 0; side < (op->kind == OP_MUL ? 2 : 1); side++) {
        Op *sub = def_of(rw, op->in[side], OP_SUB, 1);
        Op *add = scale_of(rw, op->in[1 - side], op->kind == OP_MUL ? OP_RSQRT : OP_SQRT);
        if (!sub || !add)
            continue;
        Tensor *x = sub->in[0];
        Op *mean = def_of(rw, sub->in[1], OP_MEAN, 1), *var = def_of(rw, add->in[0], OP_VAR, 1);
        if (!column_statistic(mean, x) || !column_statistic(var, x) || sub->out->rank != 2)
            continue;
        gone[sub->out->id] = gone[add->out->id] = gone[op->in[1 - side]->id] = true;
        Tensor **in = arena_alloc(3 * sizeof(Tensor *));
        in[0] = x, in[1] = mean->out, in[2] = var->out;
        op->kind = OP_BATCHNORM;
        op->in = in;
        op->nin = 3;
        op->c = add->c;
        op->unbiased = var->unbiased;
        op->rewrite_first = earlier(sub->stmt, add->stmt);
        op->rewrite_rule = "BatchNorm (exercise 3: dhprebn in closed form)";
        return true;
    }
    return false;
}

int rewrite_model(Model *m) {
    Rw rw = {.m = m, .readers = arena_alloc(sizeof(int) * (size_t)m->tensors.len)};
    bool *gone = arena_alloc(sizeof(bool) * (size_t)m->tensors.len);
    int rewritten = 0;
    count_readers(&rw, gone);
    for (int i = 0; i < m->ops.len; i++) {
        Op *op = m->ops.items[i];
        Tensor *logits, *targets;
        const Stmt *first;
        if ((op->kind == OP_MUL_C || op->kind == OP_DIV_C) && (var_rule(&rw, op, gone) || mean_rule(&rw, op, gone))) {
            rewritten++;
            count_readers(&rw, gone);   /* the operands moved */
            continue;
        }
        if ((op->kind == OP_MUL || op->kind == OP_DIV) && batchnorm_rule(&rw, op, gone)) {
            rewritten++;
            count_readers(&rw, gone);
            continue;
        }
        if (op->kind != OP_NEG || !cross_entropy_chain(&rw, op, &logits, &targets, &first))
            continue;
        mark_chain(op, logits, gone);
        /* the chain's last op becomes the cross-entropy; its output keeps
         * its name, line and everything that reads it */
        op->kind = OP_CROSS_ENTROPY;
        op->in[0] = logits;
        op->in[1] = targets;
        op->nin = 2;
        op->c = int_scalar(logits->shape[0]);
        if (logits->batch[0])
            op->c.rows_expr = "rows";
        op->rewrite_first = first;
        op->rewrite_rule = "F.cross_entropy (exercise 2: dlogits = (softmax - onehot)/n)";
        rewritten++;
    }
    if (rewritten)
        drop_tensors(m, gone);
    return rewritten;
}
