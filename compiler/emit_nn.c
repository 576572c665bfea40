/* emit_nn.c - the code of F.layer_norm (lower_nn.c): one pass per row for
 * its mean and 1/sqrt(var + eps), kept for the backward pass, and the
 * closed-form backward instead of one through the mean and the var:
 *   xhat = (x - mean) * rstd,  y = xhat * w + b
 *   dw += sum over rows of dy * xhat,  db += sum over rows of dy
 *   dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dxhat = dy * w */
#include "emit.h"

#include <string.h>

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

/* In parts, so that -O can fuse the loop with the elementwise ops after
 * it (plan.c): inv per column, then y at each element. */
void forward_batchnorm_prologue(E *e, const Op *op) {
    const Tensor *x = op->in[0], *var = op->in[2];
    const char *col[2] = {"0", "j"};
    out(e, 1, "for (int j = 0; j < %s; j++)\n", dimsz(e, x, 1));
    out(e, 2, "%s = %s / %s(%s + %s);\n", aux_ref(e, op->out, "inv", col), lit(e, 1), e->opt->f64 ? "sqrt" : "sqrtf",
        ref(e, var, col), scalar(e, op->c));
}

/* y at idx; the backward recomputes a y the plan keeps in a register
 * with the same expression, so the same bits (plan.c, recomputable). */
const char *batchnorm_value(E *e, const Op *op, const char *const *idx) {
    const Tensor *x = op->in[0], *mean = op->in[1], *y = op->out;
    const char *col[2] = {"0", idx[1]};
    return arena_printf("(%s - %s) * %s", ref(e, x, idx), ref(e, mean, col), aux_ref(e, y, "inv", col));
}

void forward_batchnorm_stmt(E *e, int indent, const Op *op) {
    const Tensor *y = op->out;
    if (is_local(e, y))
        out(e, indent, "%s %s = %s;\n", e->real, y->cname, batchnorm_value(e, op, IDX));
    else
        out(e, indent, "%s = %s;\n", ref(e, y, IDX), batchnorm_value(e, op, IDX));
}

void forward_batchnorm(E *e, const Op *op) {
    forward_batchnorm_prologue(e, op);
    forward_batchnorm_stmt(e, loops(e, 1, op->in[0], 0), op);
}

/* The backward in parts, so that -O can fuse them (plan.c): two column
 * sums of dy over the rows (of dy and of dy * y; in the loop that finished
 * dy when there is one over y's indices), their scaling, and dx at each
 * element. The sums add the rows in order, row by row: walking down a
 * column instead reads one float per cache line of a row H floats long (at
 * n = 1024, H = 1024 that made the step 10 times slower). They live in the
 * grads struct (d<y>_sum, d<y>_dot), beside the gradients, not on the
 * stack: H has no bound. */

static bool grads_field_taken(const void *m, const char *name) {
    return (name[0] == 'd' && tensor_named(m, name + 1)) || !strcmp(name, "mm_scratch") || c_name_reserved(m, name);
}

static const char *sums_name(E *e, const Grad *gr, const char *what) {
    return free_c_name(e->m, arena_printf("d%s_%s", gr->op->out->cname, what), grads_field_taken, e->m);
}

static const char *column_sum(E *e, const Grad *gr, const char *what, const char *j) {
    return arena_printf("g->%s[0][%s]", sums_name(e, gr, what), j);
}

void decl_batchnorm_sums(E *e, const Grad *gr) {
    decl_field(e, e->real, sums_name(e, gr, "sum"), gr->op->in[1], false, " of dy over the rows, for batchnorm");
    decl_field(e, e->real, sums_name(e, gr, "dot"), gr->op->in[1], false, " of dy * y over the rows, for batchnorm");
}

void batchnorm_sums_init(E *e, const Grad *gr) {
    for (int k = 0; k < 2; k++)
        out(e, 1, "memset(&%s, 0, sizeof(%s) * %s);\n", column_sum(e, gr, k ? "dot" : "sum", "0"), e->real,
            dimsz(e, gr->op->out, 1));
}

void batchnorm_sums_stmt(E *e, int indent, const Grad *gr) {
    const Tensor *y = gr->op->out;
    out(e, indent, "%s += %s;\n", column_sum(e, gr, "sum", "j"), gref(e, y, IDX));
    out(e, indent, "%s += %s * %s;\n", column_sum(e, gr, "dot", "j"), gref(e, y, IDX), ref(e, y, IDX));
}

/* Before dx's loop: the sums (unless they rode in an earlier loop), scaled. */
void batchnorm_grad_prologue(E *e, const Grad *gr, bool sums_made) {
    const Op *op = gr->op;
    double rows = (double)op->out->shape[0];
    if (!sums_made) {
        batchnorm_sums_init(e, gr);
        out(e, 1, "for (int i = 0; i < %s; i++)\n", dimsz(e, op->out, 0));
        out(e, 2, "for (int j = 0; j < %s; j++) {\n", dimsz(e, op->out, 1));
        batchnorm_sums_stmt(e, 3, gr);
        out(e, 2, "}\n");
    }
    out(e, 1, "for (int j = 0; j < %s; j++) {\n", dimsz(e, op->out, 1));
    out(e, 2, "%s /= %s;\n", column_sum(e, gr, "sum", "j"), lit(e, rows));
    out(e, 2, "%s /= %s;%s\n", column_sum(e, gr, "dot", "j"), lit(e, op->unbiased ? rows - 1 : rows),
        op->unbiased ? "   // Bessel's correction" : "");
    out(e, 1, "}\n");
}

void batchnorm_grad_stmt(E *e, int indent, const Grad *gr) {
    const Tensor *x = gr->op->in[0], *y = gr->op->out;
    const char *col[2] = {"0", "j"};
    contribute(e, indent, x, IDX,
               arena_printf("%s * (%s - %s - %s * %s)", aux_ref(e, y, "inv", col), gref(e, y, IDX),
                            column_sum(e, gr, "sum", "j"), ref(e, y, IDX), column_sum(e, gr, "dot", "j")));
}

void backward_batchnorm(E *e, const Grad *gr) {
    batchnorm_grad_prologue(e, gr, false);
    batchnorm_grad_stmt(e, loops(e, 1, gr->op->in[0], 0), gr);
}

/* torch.zeros_like: an op without operands, so no gradient reaches here */
void forward_zeros(E *e, const Op *op) {
    out(e, loops(e, 1, op->out, 0), "%s = 0;\n", ref(e, op->out, IDX));
}

void backward_zeros(E *e, const Grad *gr) {
    (void)e, (void)gr;
}
