/* autodiff.c - reverse mode at the tensor level.
 * Walks the ops from `loss` backwards and lists, for every operand that
 * needs a gradient, one contribution d(operand) += rule(d(out)). A forward
 * broadcast becomes a sum over the broadcast dims, checked against the
 * operand's shape; an operand used several times gets several
 * contributions, which the emitted code accumulates with +=.
 * Memory: the Grad list comes from the arena. */
#include "ninjac.h"

#include <stdlib.h>

/* The operands a gradient flows to: all, or the first (grad_first_only). */
static int differentiated_operands(const Op *op) { return op_info[op->kind].grad_first_only ? 1 : op->nin; }

static void mark_reaching(Model *m) {
    bool *from_param = arena_alloc(sizeof(bool) * (size_t)m->tensors.len);
    for (int i = 0; i < m->params.len; i++)
        from_param[((Tensor *)m->params.items[i])->id] = true;
    for (int i = 0; i < m->ops.len; i++) {
        Op *op = m->ops.items[i];
        for (int k = 0; k < op->nin; k++)
            from_param[op->out->id] |= from_param[op->in[k]->id];
        /* nothing flows back through a mask: what is computed from it
         * alone (mask * 2.0, mask.float()) has no gradient, as in PyTorch */
        if (op->out->dtype == DT_BOOL)
            from_param[op->out->id] = false;
    }
    m->loss->reaches_loss = true;
    for (int i = m->ops.len - 1; i >= 0; i--) {
        Op *op = m->ops.items[i];
        if (!op->out->reaches_loss)
            continue;
        for (int k = 0; k < differentiated_operands(op); k++)
            op->in[k]->reaches_loss = true;
    }
    for (int i = 0; i < m->tensors.len; i++) {
        Tensor *t = m->tensors.items[i];
        t->needs_grad = t->dtype == DT_FLOAT && t->reaches_loss && from_param[t->id];
    }
    for (int i = 0; i < m->params.len; i++) {
        Tensor *p = m->params.items[i];
        if (!p->reaches_loss)
            warning_at(p->stmt->name_loc, "param '%s' does not reach 'loss'; it gets no gradient",
                       p->name);
    }
}

/* The out dims an operand was broadcast over (PyTorch aligns shapes at the
 * right), and a check that summing them away gives the operand's shape. */
static uint32_t broadcast_axes(const Tensor *out, const Tensor *in, const Op *op) {
    uint32_t axes = 0;
    int offset = out->rank - in->rank;
    for (int d = 0; d < out->rank; d++) {
        int64_t size = d >= offset ? in->shape[d - offset] : 1;
        if (size != out->shape[d]) {
            if (size != 1) {
                error_at(op->loc, "internal: gradient of %s %s does not reduce from %s",
                         in->name, shape_str(in), shape_str(out));
                abort();
            }
            axes |= 1u << d;
        }
    }
    return axes;
}

/* The leading dims of a batched product's out that an operand was
 * broadcast over (missing, or 1 against more): its products sum there. */
static uint32_t bmm_broadcast_axes(const Tensor *out, const Tensor *in, const Op *op) {
    uint32_t axes = 0;
    int lead = out->rank - 2, offset = out->rank - in->rank;
    for (int d = 0; d < lead; d++) {
        int64_t size = d >= offset ? in->shape[d - offset] : 1;
        if (size == out->shape[d])
            continue;
        if (size != 1) {
            error_at(op->loc, "internal: gradient of %s %s does not reduce from %s", in->name, shape_str(in),
                     shape_str(out));
            abort();
        }
        axes |= 1u << d;
    }
    return axes;
}

static void check_same_shape(const Op *op, const Tensor *grad_of, int rank, const int64_t *shape) {
    bool same = rank == grad_of->rank;
    for (int d = 0; same && d < rank; d++)
        same = shape[d] == grad_of->shape[d];
    if (!same) {
        error_at(op->loc, "internal: gradient shape differs from the shape of %s %s", grad_of->name,
                 shape_str(grad_of));
        abort();
    }
}

/* Shape checks of the non-elementwise rules: the gradient each rule
 * produces, computed from the rule's own operands. */
static void check_rule(const Op *op, int k, const Tensor *target) {
    const Tensor *a = op->in[0], *b = op->in[1], *out = op->out;
    int64_t shape[MAX_RANK];
    switch (op->kind) {
    case OP_MATMUL:
        if (k == 0) {   /* dA = dout @ B^T: [.., M, N] @ [N, K] */
            for (int d = 0; d < out->rank - 1; d++)
                shape[d] = out->shape[d];
            shape[out->rank - 1] = b->shape[0];
            check_same_shape(op, target, out->rank, shape);
        } else {        /* dB = A^T @ dout: [K, M] @ [M, N] */
            shape[0] = a->shape[a->rank - 1];
            shape[1] = out->shape[out->rank - 1];
            check_same_shape(op, target, 2, shape);
        }
        break;
    case OP_BMM:        /* per product: dA = dout @ B^T [M, K], dB = A^T @ dout [K, N] */
        for (int d = 0; d < target->rank - 2; d++)
            shape[d] = target->shape[d];    /* the leading dims: bmm_broadcast_axes checks them */
        shape[target->rank - 2] = k == 0 ? out->shape[out->rank - 2] : a->shape[a->rank - 1];
        shape[target->rank - 1] = k == 0 ? b->shape[b->rank - 2] : out->shape[out->rank - 1];
        check_same_shape(op, target, target->rank, shape);
        break;
    case OP_TRANSPOSE:
        shape[0] = out->shape[1];
        shape[1] = out->shape[0];
        check_same_shape(op, target, 2, shape);
        break;
    case OP_VIEW:
        if (tensor_numel(out) != tensor_numel(target))
            check_same_shape(op, target, out->rank, out->shape);
        break;
    default:    /* reductions, softmax, indexing: the rule writes target's own index space */
        break;
    }
}

void derive_backward(Model *m, Backward *bw) {
    mark_reaching(m);
    for (int i = m->ops.len - 1; i >= 0; i--) {
        Op *op = m->ops.items[i];
        if (!op->out->needs_grad)
            continue;
        for (int k = 0; k < differentiated_operands(op); k++) {
            Tensor *target = op->in[k];
            if (!target->needs_grad)
                continue;
            Grad *g = arena_alloc(sizeof(Grad));
            g->op = op;
            g->operand = k;
            g->target = target;
            OpFamily family = op_info[op->kind].family;
            if (family == EW1 || family == EW2)
                g->reduce_axes = broadcast_axes(op->out, target, op);
            else
                check_rule(op, k, target);
            if (op->kind == OP_BMM)
                g->reduce_axes = bmm_broadcast_axes(op->out, target, op);
            vec_push(&bw->grads, g);
        }
    }
}
