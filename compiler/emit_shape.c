/* emit_shape.c - the code of the shape ops (lower_shape.c): a slice or a
 * select copies, in loops over its output, each element from where it sits
 * in the input; its backward adds each gradient element back there (the
 * rest of the input's gradient gets nothing: .scatters in ops.def). */
#include "emit.h"

/* The input index a SLICE reads for output index IDX. */
static void slice_index_of(const Op *op, const char **xi) {
    int k = 0;
    for (int d = 0; d < op->in[0]->rank; d++) {
        long long at = (long long)op->start[d], by = (long long)op->step[d];
        const char *i = by ? IDX[k++] : NULL;
        xi[d] = !by ? arena_printf("%lld", at)
              : by == 1 && at == 0 ? i
              : by == 1 ? arena_printf("%lld + %s", at, i)
              : at == 0 ? arena_printf("%lld * %s", by, i)
              : arena_printf("%lld + %lld * %s", at, by, i);
    }
}

void forward_slice(E *e, const Op *op) {
    const char *xi[MAX_RANK];
    slice_index_of(op, xi);
    out(e, loops(e, 1, op->out, 0), "%s = %s;\n", ref(e, op->out, IDX), ref(e, op->in[0], xi));
}

void backward_slice(E *e, const Grad *gr) {
    const char *xi[MAX_RANK];
    slice_index_of(gr->op, xi);
    out(e, loops(e, 1, gr->op->out, 0), "%s += %s;\n", gref(e, gr->op->in[0], xi), gref(e, gr->op->out, IDX));
}

/* y[..., c] = x[...] == c; an integer input has no gradient, so autodiff
 * never asks for a backward. */
void forward_one_hot(E *e, const Op *op) {
    const Tensor *x = op->in[0], *y = op->out;
    out(e, loops(e, 1, y, 0), "%s = %s == %s ? %s : %s;\n", ref(e, y, IDX), ref(e, x, IDX), IDX[x->rank],
        lit(e, 1), lit(e, 0));
}

void backward_one_hot(E *e, const Grad *gr) {
    (void)gr;
    out(e, 1, "#error \"internal: a gradient through F.one_hot\"\n");
}
