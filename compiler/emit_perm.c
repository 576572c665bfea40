/* emit_perm.c - the code of permute and expand (lower_perm.c): a loop over
 * the output reading the operand at the matching index; backward the same
 * loop adding d(out) into d(operand). */
#include "emit.h"

/* The operand's index of an output element: dim perm[d] of the operand
 * runs with dim d of the output. */
static void permuted_index(const Op *op, const char **in_idx) {
    for (int d = 0; d < op->out->rank; d++)
        in_idx[op->perm[d]] = IDX[d];
}

void forward_permute(E *e, const Op *op) {
    const char *xi[MAX_RANK];
    permuted_index(op, xi);
    out(e, loops(e, 1, op->out, 0), "%s = %s;\n", ref(e, op->out, IDX), ref(e, op->in[0], xi));
}

/* Each element of d(x) gets exactly one element of d(y). */
void backward_permute(E *e, const Grad *gr) {
    const char *xi[MAX_RANK];
    permuted_index(gr->op, xi);
    out(e, loops(e, 1, gr->op->out, 0), "%s %s %s;\n", gref(e, gr->target, xi), e->acc,
        gref(e, gr->op->out, IDX));
}

void forward_expand(E *e, const Op *op) {
    const char *xi[MAX_RANK];
    broadcast_index(op->out, op->in[0], IDX, xi);
    out(e, loops(e, 1, op->out, 0), "%s = %s;\n", ref(e, op->out, IDX), ref(e, op->in[0], xi));
}

/* A repeated element's gradient is the sum over its copies (the op table
 * marks expand as scattering: -O zeroes d(x) first). */
void backward_expand(E *e, const Grad *gr) {
    const char *xi[MAX_RANK];
    broadcast_index(gr->op->out, gr->target, IDX, xi);
    out(e, loops(e, 1, gr->op->out, 0), "%s += %s;\n", gref(e, gr->target, xi), gref(e, gr->op->out, IDX));
}
