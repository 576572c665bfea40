/* emit_nn.c - the code of F.layer_norm (lower_nn.c): one pass per row for
 * its mean and 1/sqrt(var + eps), kept for the backward pass, and the
 * closed-form backward instead of one through the mean and the var:
 *   xhat = (x - mean) * rstd,  y = xhat * w + b
 *   dw += sum over rows of dy * xhat,  db += sum over rows of dy
 *   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dxhat = dy * w */
#include "emit.h"

/* The shape of the per-row statistics: x without its last dim. */
Tensor layer_norm_rows(const Op *op) {
    Tensor rows = *op->in[0];
    rows.rank--;
    return rows;
}

/* mean or rstd of the row at the loop's index */
static const char *row_stat(E *e, const Op *op, const char *what) {
    return indexed(arena_printf("%s->%s", e->infer ? "w" : "a", aux_name(e, op->out, what)), op->in[0]->rank - 1,
                   IDX);
}

/* x's indices with the last one m */
static void at_m(const Tensor *x, const char **idx) {
    for (int d = 0; d < x->rank; d++)
        idx[d] = d == x->rank - 1 ? "m" : IDX[d];
}

void aux_layer_norm(E *e, const Op *op, bool chunked) {
    Tensor rows = layer_norm_rows(op);
    decl_field(e, e->real, aux_name(e, op->out, "mean"), &rows, chunked, " mean of each row, for layer_norm");
    decl_field(e, e->real, aux_name(e, op->out, "rstd"), &rows, chunked, " 1 / sqrt(var + eps) of each row");
}

void forward_layer_norm(E *e, const Op *op) {
    const Tensor *x = op->in[0], *y = op->out;
    int last = x->rank - 1;
    const char *xi[MAX_RANK], *n = dimsz(e, x, last);
    at_m(x, xi);
    const char *xm = ref(e, x, xi), *wm = ref(e, op->in[1], (const char *[]){"m"});
    const char *bm = ref(e, op->in[2], (const char *[]){"m"});
    int in = loops(e, 1, x, 1u << last);
    out(e, in, "{\n");
    out(e, in + 1, "%s mean = 0, var = 0;\n", e->real);
    out(e, in + 1, "for (int m = 0; m < %s; m++)\n", n);
    out(e, in + 2, "mean += %s;\n", xm);
    out(e, in + 1, "mean /= %s;\n", lit(e, (double)x->shape[last]));
    out(e, in + 1, "for (int m = 0; m < %s; m++)\n", n);
    out(e, in + 2, "var += (%s - mean) * (%s - mean);\n", xm, xm);
    out(e, in + 1, "var /= %s;   // biased, as layer_norm's\n", lit(e, (double)x->shape[last]));
    out(e, in + 1, "%s rstd = %s / %s(var + %s);\n", e->real, lit(e, 1), e->opt->f64 ? "sqrt" : "sqrtf",
        scalar(e, op->c));
    out(e, in + 1, "%s = mean;\n", row_stat(e, op, "mean"));
    out(e, in + 1, "%s = rstd;\n", row_stat(e, op, "rstd"));
    out(e, in + 1, "for (int m = 0; m < %s; m++)\n", n);
    out(e, in + 2, "%s = (%s - mean) * rstd * %s + %s;\n", ref(e, y, xi), xm, wm, bm);
    out(e, in, "}\n");
}

void backward_layer_norm(E *e, const Grad *gr) {
    const Op *op = gr->op;
    const Tensor *x = op->in[0], *y = op->out, *w = op->in[1];
    int last = x->rank - 1;
    const char *xi[MAX_RANK], *n = dimsz(e, x, last);
    at_m(x, xi);
    const char *xhat = arena_printf("(%s - %s) * %s", ref(e, x, xi), row_stat(e, op, "mean"),
                                    row_stat(e, op, "rstd"));
    const char *dy = gref(e, y, xi), *m[1] = {"m"};
    int in = loops(e, 1, x, 1u << last);
    if (gr->operand > 0) {   /* weight, bias: sums over the rows */
        out(e, in, "for (int m = 0; m < %s; m++)\n", n);
        out(e, in + 1, "%s += %s%s%s;\n", gref(e, gr->target, m), dy, gr->operand == 1 ? " * " : "",
            gr->operand == 1 ? xhat : "");
        return;
    }
    const char *dxhat = arena_printf("%s * %s", dy, ref(e, w, m));
    out(e, in, "{\n");
    out(e, in + 1, "%s sum = 0, dot = 0;   // of dxhat and of dxhat * xhat over the row\n", e->real);
    out(e, in + 1, "for (int m = 0; m < %s; m++) {\n", n);
    out(e, in + 2, "sum += %s;\n", dxhat);
    out(e, in + 2, "dot += %s * (%s);\n", dxhat, xhat);
    out(e, in + 1, "}\n");
    out(e, in + 1, "sum /= %s;\n", lit(e, (double)x->shape[last]));
    out(e, in + 1, "dot /= %s;\n", lit(e, (double)x->shape[last]));
    out(e, in + 1, "for (int m = 0; m < %s; m++)\n", n);
    out(e, in + 2, "%s += %s * (%s - sum - (%s) * dot);\n", gref(e, x, xi), row_stat(e, op, "rstd"), dxhat, xhat);
    out(e, in, "}\n");
}

/* ---- batchnorm (rewrite.c's, exercise 3): y = (x - mean) * inv with
 * inv = 1/sqrt(var + eps), mean and var x's statistics over the rows
 * (operands 1 and 2; frozen in inference). Its backward is the closed form
 * of the notebook's exercise 3, the gradient through the mean and the var
 * included:
 *   dx = inv * (dy - sum(dy)/n - y * sum(dy * y)/(n - 1))   (n for a biased var) */

void aux_batchnorm(E *e, const Op *op, bool chunked) {
    decl_field(e, e->real, aux_name(e, op->out, "inv"), op->in[2], chunked, " 1 / sqrt(var + eps), for batchnorm");
}

void forward_batchnorm(E *e, const Op *op) {
    const Tensor *x = op->in[0], *mean = op->in[1], *var = op->in[2], *y = op->out;
    const char *col[2] = {"0", "j"}, *inv = aux_ref(e, y, "inv", col);
    out(e, 1, "for (int j = 0; j < %s; j++)\n", dimsz(e, x, 1));
    out(e, 2, "%s = %s / %s(%s + %s);\n", inv, lit(e, 1), e->opt->f64 ? "sqrt" : "sqrtf", ref(e, var, col),
        scalar(e, op->c));
    int in = loops(e, 1, x, 0);
    out(e, in, "%s = (%s - %s) * %s;\n", ref(e, y, IDX), ref(e, x, IDX), ref(e, mean, col), inv);
}

/* Row by row, the columns' sums in arrays: walking down a column instead
 * reads one float per cache line of a row H floats long (at n = 1024,
 * H = 1024 that made the step 10 times slower). The sums still add the
 * rows in order: the same numbers as a column at a time. Columns go in
 * blocks of BN_COLS, so the arrays stay small on the stack. */
#define BN_COLS 1024

void backward_batchnorm(E *e, const Grad *gr) {
    const Op *op = gr->op;
    const Tensor *x = op->in[0], *y = op->out;
    const char *col[2] = {"0", "j"}, *n = dimsz(e, x, 0);
    double rows = (double)x->shape[0];
    bool blocked = x->shape[1] > BN_COLS;
    const char *width = blocked ? arena_printf("%d", BN_COLS) : dimsz(e, x, 1), *k = blocked ? "j - j0" : "j";
    const char *js = arena_printf("for (int j = %s; j < %s; j++)", blocked ? "j0" : "0",
                                  blocked ? "j1" : dimsz(e, x, 1));
    if (blocked) {
        out(e, 1, "for (int j0 = 0; j0 < %s; j0 += %d) {   // columns in blocks of %d\n", dimsz(e, x, 1), BN_COLS,
            BN_COLS);
        out(e, 2, "int j1 = j0 + %d < %s ? j0 + %d : %s;\n", BN_COLS, dimsz(e, x, 1), BN_COLS, dimsz(e, x, 1));
    } else {
        out(e, 1, "{\n");
    }
    int in = 2;
    out(e, in, "%s sum[%s] = {0}, dot[%s] = {0};   // of dy and of dy * y over the rows\n", e->real, width, width);
    out(e, in, "for (int i = 0; i < %s; i++)\n", n);
    out(e, in + 1, "%s {\n", js);
    out(e, in + 2, "sum[%s] += %s;\n", k, gref(e, y, IDX));
    out(e, in + 2, "dot[%s] += %s * %s;\n", k, gref(e, y, IDX), ref(e, y, IDX));
    out(e, in + 1, "}\n");
    out(e, in, "%s {\n", js);
    out(e, in + 1, "sum[%s] /= %s;\n", k, lit(e, rows));
    out(e, in + 1, "dot[%s] /= %s;%s\n", k, lit(e, op->unbiased ? rows - 1 : rows),
        op->unbiased ? "   // Bessel's correction" : "");
    out(e, in, "}\n");
    out(e, in, "for (int i = 0; i < %s; i++)\n", n);
    out(e, in + 1, "%s\n", js);
    out(e, in + 2, "%s %s %s * (%s - sum[%s] - %s * dot[%s]);\n", gref(e, x, IDX), e->acc,
        aux_ref(e, y, "inv", col), gref(e, y, IDX), k, ref(e, y, IDX), k);
    out(e, 1, "}\n");
}

/* torch.zeros_like: an op without operands, so no gradient reaches here */
void forward_zeros(E *e, const Op *op) {
    out(e, loops(e, 1, op->out, 0), "%s = 0;\n", ref(e, op->out, IDX));
}

void backward_zeros(E *e, const Grad *gr) {
    (void)e, (void)gr;
}
