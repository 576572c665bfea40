/* emit_mask.c - the code of torch.ones, torch.zeros and torch.tril
 * (lower_mask.c); comparisons and masked_fill are templates of the op
 * table. tril copies the columns up to the diagonal and zeroes the rest,
 * two loops rather than a choice per element (no `c ? load : 0`: see
 * NJ_WHERE in emit_c.c). */
#include "emit.h"

/* torch.ones, torch.zeros: no operands, so no gradient reaches them */
void forward_full(E *e, const Op *op) {
    out(e, loops(e, 1, op->out, 0), "%s = %s;\n", ref(e, op->out, IDX), lit(e, op->c.value));
}

void backward_full(E *e, const Grad *gr) {
    (void)e, (void)gr;
}

/* Inside loops over every dim but the last: `diag` is the first column
 * above the diagonal of row IDX[rank - 2], clamped to [0, columns]. */
static int open_row(E *e, const Tensor *t, const Op *op) {
    int r = t->rank;
    int in = loops(e, 1, t, 1u << (r - 1));
    out(e, in, "{\n");
    out(e, in + 1, "int diag = %s + %lld;   // columns up to diagonal %lld are kept\n", IDX[r - 2],
        (long long)op->c.value + 1, (long long)op->c.value);
    out(e, in + 1, "if (diag < 0) diag = 0;\n");
    out(e, in + 1, "if (diag > %s) diag = %s;\n", dimsz(e, t, r - 1), dimsz(e, t, r - 1));
    return in + 1;
}

void forward_tril(E *e, const Op *op) {
    const Tensor *x = op->in[0], *y = op->out;
    const char *j = IDX[x->rank - 1];
    int in = open_row(e, x, op);
    out(e, in, "for (int %s = 0; %s < diag; %s++)\n", j, j, j);
    out(e, in + 1, "%s = %s;\n", ref(e, y, IDX), ref(e, x, IDX));
    out(e, in, "for (int %s = diag; %s < %s; %s++)\n", j, j, dimsz(e, x, x->rank - 1), j);
    out(e, in + 1, "%s = 0;\n", ref(e, y, IDX));
    out(e, in - 1, "}\n");
}

/* d(x) takes d(out) below the diagonal; nothing above (zeroed first: the op scatters) */
void backward_tril(E *e, const Grad *gr) {
    const Tensor *x = gr->op->in[0], *y = gr->op->out;
    const char *j = IDX[x->rank - 1];
    int in = open_row(e, x, gr->op);
    out(e, in, "for (int %s = 0; %s < diag; %s++)\n", j, j, j);
    out(e, in + 1, "%s %s %s;\n", gref(e, x, IDX), e->acc, gref(e, y, IDX));
    out(e, in - 1, "}\n");
}
