/* emit_ops.c - the code of each op: its forward (elementwise statements,
 * matmuls through the BLAS or ninjac's kernels, reductions, the special
 * ops) and each gradient contribution d(operand) += rule(d(out)). */
#include "emit.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- forward ---- */

/* out[IDX] = f(operands), inside loops over out's indices. */
void elementwise_stmt(E *e, int indent, const Op *op) {
    const char *idx_a[MAX_RANK], *idx_b[MAX_RANK];
    broadcast_index(op->out, op->in[0], IDX, idx_a);
    const char *b = NULL;
    if (op->nin == 2) {
        broadcast_index(op->out, op->in[1], IDX, idx_b);
        b = ref(e, op->in[1], idx_b);
    }
    const char *value = expand(e, op->kind, op_info[op->kind].forward, ref(e, op->in[0], idx_a), b, NULL, NULL,
                               scalar(e, op->c));
    if (is_local(e, op->out))
        out(e, indent, "%s %s = %s;\n", e->real, op->out->cname, value);
    else
        out(e, indent, "%s = %s;\n", ref(e, op->out, IDX), value);
}

static void forward_elementwise(E *e, const Op *op) { elementwise_stmt(e, loops(e, 1, op->out, 0), op); }

static void gemm(E *e, int indent, bool ta, bool tb, const char *M, const char *N, const char *K,
                 const char *A, const char *lda, const char *B, const char *ldb, bool accumulate,
                 const char *C, const char *ldc) {
    out(e, indent, "cblas_%cgemm(CblasRowMajor, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s);\n",
        e->opt->f64 ? 'd' : 's', ta ? "CblasTrans" : "CblasNoTrans", tb ? "CblasTrans" : "CblasNoTrans",
        M, N, K, lit(e, 1), A, lda, B, ldb, lit(e, accumulate ? 1 : 0), C, ldc);
}

static const char *ll(int64_t v) { return arena_printf("%lld", (long long)v); }

/* -O multiplies matrices with runtime/ninjac_kernels.h, whose kernels the
 * C compiler specialises to each call's constant shape. They are blocked
 * like a BLAS (panels of B, blocks over K and over rows of A) with the
 * tile chosen for the ISA they are compiled for. auto takes them at every
 * size; that is not yet the faster choice everywhere (bench/RESULTS.md,
 * 2026-12-07 22:36: on the AVX2 path OpenBLAS wins at 2 of the sweep's 12
 * sizes, batch 32 with H = 1024 or 4096, by up to 1.27x), and a rule
 * measured per ISA is issue 14's open part. f64 builds serve finite
 * differences: BLAS. */
static bool own_gemm(const E *e, int64_t M, int64_t N, int64_t K) {
    (void)M, (void)N, (void)K;
    return own_products(e->opt);
}

/* The three products of a matmul: forward (operand -1) and the gradient of
 * each operand, as the kernels see them: C[M][N] = A'[M][K] @ B[K][N]. */
bool own_matmul(const E *e, const Op *op, int operand) {
    const Tensor *a = op->in[0], *b = op->in[1];
    int64_t rows = tensor_numel(a) / b->shape[0], k = b->shape[0], n = b->shape[1];
    return operand < 0 ? own_gemm(e, rows, n, k) : operand == 0 ? own_gemm(e, rows, k, n) : own_gemm(e, k, n, rows);
}

/* nj_gemm(M, N, K, A, a_row, a_col, B, ldb, C, ldc, accumulate): C (+)= A' @ B */
void own(E *e, const char *M, const char *N, const char *K, const char *A, const char *a_row,
                const char *a_col, const char *B, const char *ldb, const char *C, const char *ldc, bool acc) {
    out(e, 1, "nj_gemm(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %d);\n", M, N, K, A, a_row, a_col, B, ldb, C, ldc,
        acc);
}

/* A matmul's product as the kernels see it: C[M][N] = A[M][K] @ B[K][N],
 * A's leading dims flattened into M. */
static void matmul_dims(E *e, const Op *op, const char **M, const char **N, const char **K) {
    const Tensor *a = op->in[0], *b = op->in[1];
    *M = numel_range(e, a, 0, a->rank - 1);
    *N = ll(b->shape[1]);
    *K = ll(b->shape[0]);
}

/* x @ W + b in one call, at the add (plan.c, biases_in_products): the
 * product goes into the add's output, the kernels adding b as they store it. */
static void forward_matmul_bias(E *e, const Op *op, const Op *add) {
    const Tensor *a = op->in[0], *w = op->in[1], *y = add->out, *b = add->in[add->in[0] == op->out];
    const char *M, *N, *K;
    matmul_dims(e, op, &M, &N, &K);
    out(e, 1, "// %s\n", op_summary(op));
    out(e, 1, "// one call: the kernels add %s as they store the product into %s (%s has no array)\n", b->name,
        y->name, op->out->name);
    out(e, 1, "nj_gemm_bias(%s, %s, %s, %s, %s, 1, %s, %s, %s, %s, %s);\n", M, N, K, ptr(e, a), K, ptr(e, w), N,
        ptr(e, y), N, ptr(e, b));
}

static void forward_matmul(E *e, const Op *op) {
    const Tensor *a = op->in[0], *b = op->in[1], *y = op->out;
    const char *M, *N, *K;
    matmul_dims(e, op, &M, &N, &K);
    if (own_matmul(e, op, -1))
        own(e, M, N, K, ptr(e, a), K, "1", ptr(e, b), N, ptr(e, y), N, false);
    else
        gemm(e, 1, false, false, M, N, K, ptr(e, a), K, ptr(e, b), N, false, ptr(e, y), N);
}

/* A batched product (OP_BMM) runs one gemm per index of out's leading
 * dims, in loops over them; each operand is read where its own leading
 * dims meet that index (at 0 along a dim it was broadcast over). The
 * slices are [M, K], [K, N] and [M, N], contiguous. */
static const char *slice_at(E *e, const Tensor *y, const Tensor *t, bool grad) {
    const char *idx[MAX_RANK];
    broadcast_index(y, t, IDX, idx);
    idx[t->rank - 2] = idx[t->rank - 1] = "0";
    return arena_printf("&%s", grad ? gref(e, t, idx) : ref(e, t, idx));
}

static uint32_t last_two(const Tensor *t) { return 3u << (t->rank - 2); }

static void forward_bmm(E *e, const Op *op) {
    const Tensor *a = op->in[0], *b = op->in[1], *y = op->out;
    const char *M = ll(a->shape[a->rank - 2]), *K = ll(a->shape[a->rank - 1]), *N = ll(b->shape[b->rank - 1]);
    out(e, 1, "// one [%s, %s] @ [%s, %s] product per index of the leading dims\n", M, K, K, N);
    gemm(e, loops(e, 1, y, last_two(y)), false, false, M, N, K, slice_at(e, y, a, false), K,
         slice_at(e, y, b, false), N, false, slice_at(e, y, y, false), N);
}

/* -O: a var over the same dims of the same tensor as an earlier mean (the
 * BatchNorm of exercise 4) takes that mean, which it would compute again
 * with the same sums in the same order. */
const Op *shared_mean(const E *e, const Op *var) {
    if (!e->plan->fused || var->kind != OP_VAR)
        return NULL;
    for (int i = 0; i < var->id; i++) {
        const Op *op = e->m->ops.items[i];
        if (op->kind == OP_MEAN && op->in[0] == var->in[0] && op->axes == var->axes && op->keepdim == var->keepdim)
            return op;
    }
    return NULL;
}

static const char *var_mean(E *e, const Op *var, const char *const *idx) {
    const Op *mean = shared_mean(e, var);
    return mean ? ref(e, mean->out, idx) : aux_ref(e, var->out, "mean", idx);
}

/* The sum of a sum, mean or var (its mean) accumulates in y, or in the
 * var's aux array: zeroed, summed in loops over x, divided for a mean. */
static const char *reduce_acc(E *e, const Op *op, const char *const *idx) {
    return op->kind == OP_VAR ? var_mean(e, op, idx) : ref(e, op->out, idx);
}

void reduce_init(E *e, const Op *op) {
    out(e, loops(e, 1, op->out, 0), "%s = 0;\n", reduce_acc(e, op, IDX));
}

void reduce_accumulate(E *e, int indent, const Op *op) {
    const char *yi[MAX_RANK];
    reduced_index(op, IDX, yi);
    out(e, indent, "%s += %s;\n", reduce_acc(e, op, yi), ref(e, op->in[0], IDX));
}

void reduce_finish(E *e, const Op *op) {
    if (op->kind != OP_SUM)
        out(e, loops(e, 1, op->out, 0), "%s /= %s;\n", reduce_acc(e, op, IDX), scalar(e, op->c));
}

/* var's sum for its mean (unless it shares a mean op's), max's argmax */
static void aux_reduce(E *e, const Op *op, bool chunked) {
    if (op->kind == OP_VAR && !shared_mean(e, op))
        decl_field(e, e->real, aux_name(e, op->out, "mean"), op->out, chunked, " mean, for var");
    else if (op->kind == OP_MAX)
        decl_field(e, "int", aux_name(e, op->out, "argmax"), op->out, chunked, " where the max is");
}

static void forward_reduce(E *e, const Op *op) {
    const Tensor *x = op->in[0], *y = op->out;
    const char *yi[MAX_RANK];
    reduced_index(op, IDX, yi);
    if (op->kind == OP_MAX) {
        int d = __builtin_ctz(op->axes);
        const char *first[MAX_RANK], *at_m[MAX_RANK];
        for (int k = 0; k < x->rank; k++) {
            first[k] = k == d ? "0" : IDX[k];
            at_m[k] = k == d ? "m" : IDX[k];
        }
        int in = loops(e, 1, x, op->axes);
        out(e, in, "{\n");
        out(e, in + 1, "%s best = %s;\n", e->real, ref(e, x, first));
        out(e, in + 1, "int argmax = 0;\n");
        out(e, in + 1, "for (int m = 1; m < %s; m++)\n", dimsz(e, x, d));
        out(e, in + 2, "if (%s > best) {   // strictly greater: the first maximum wins, as in PyTorch\n",
            ref(e, x, at_m));
        out(e, in + 3, "best = %s;\n", ref(e, x, at_m));
        out(e, in + 3, "argmax = m;\n");
        out(e, in + 2, "}\n");
        out(e, in + 1, "%s = best;\n", ref(e, y, yi));
        out(e, in + 1, "%s = argmax;\n", aux_ref(e, y, "argmax", yi));
        out(e, in, "}\n");
        return;
    }
    /* sum, then mean = sum / count, then var = sum (x - mean)^2 / (count - 1) */
    bool var = op->kind == OP_VAR;
    if (shared_mean(e, op)) {
        out(e, 1, "// the mean is %s's\n", shared_mean(e, op)->out->name);
    } else {
        reduce_init(e, op);
        reduce_accumulate(e, loops(e, 1, x, 0), op);
        reduce_finish(e, op);
    }
    if (!var)
        return;
    const char *xv = ref(e, x, IDX), *acc = reduce_acc(e, op, yi);
    out(e, loops(e, 1, y, 0), "%s = 0;\n", ref(e, y, IDX));
    out(e, loops(e, 1, x, 0), "%s += (%s - %s) * (%s - %s);\n", ref(e, y, yi), xv, acc, xv, acc);
    out(e, loops(e, 1, y, 0), "%s /= %s%s;\n", ref(e, y, IDX), scalar(e, op->c),
        op->unbiased ? arena_printf(" - %s", lit(e, 1)) : "");
}

/* out[idx..., tail...] = table[index[idx...]][tail...] */
static void embed_index(const Op *op, const char **table_idx, const char **index_idx) {
    const Tensor *index = op->in[1];
    for (int d = 0; d < index->rank; d++)
        index_idx[d] = IDX[d];
    for (int d = 1; d < op->in[0]->rank; d++)
        table_idx[d] = IDX[index->rank + d - 1];
}

static void forward_embed(E *e, const Op *op) {
    const Tensor *x = op->in[0];
    const Tensor *y = op->out;
    const char *ti[MAX_RANK], *ii[MAX_RANK];
    embed_index(op, ti, ii);
    ti[0] = ref(e, op->in[1], ii);
    out(e, loops(e, 1, y, 0), "%s = %s;\n", ref(e, y, IDX), ref(e, x, ti));
}

static void forward_pick(E *e, const Op *op) {
    const Tensor *x = op->in[0];
    const Tensor *y = op->out;
    const char *xi[2] = {"i", indexed(op->in[1]->cname, 1, IDX)};
    out(e, loops(e, 1, y, 0), "%s = %s;\n", ref(e, y, IDX), ref(e, x, xi));
}

static void forward_view(E *e, const Op *op) {
    const Tensor *x = op->in[0];
    const Tensor *y = op->out;
    if (e->plan->valias[y->id]) {   /* read through a pointer into x's array (view_locals) */
        out(e, 1, "// %s is %s's array, read as %s\n", y->name, e->plan->valias[y->id]->name, shape_str(y));
        return;
    }
    const char *count = numel_range(e, x, 0, x->rank);   /* a number, or rows * a number */
    out(e, 1, "memcpy(%s, %s, sizeof(%s) * %s);\n", ptr(e, y), ptr(e, x), e->real,
        strchr(count, ' ') ? arena_printf("(%s)", count) : count);
}

static void forward_transpose(E *e, const Op *op) {
    const Tensor *x = op->in[0];
    const Tensor *y = op->out;
    const char *xi[2] = {"j", "i"};
    out(e, loops(e, 1, y, 0), "%s = %s;\n", ref(e, y, IDX), ref(e, x, xi));
}

static void forward_softmax(E *e, const Op *op) {
    const Tensor *x = op->in[0];
    const Tensor *y = op->out;
    int d = __builtin_ctz(op->axes);
    const char *at[MAX_RANK], *first[MAX_RANK];
    for (int k = 0; k < x->rank; k++) {
        at[k] = k == d ? "m" : IDX[k];
        first[k] = k == d ? "0" : IDX[k];
    }
    const char *xm = ref(e, x, at), *ym = ref(e, y, at), *n = dimsz(e, x, d);
    int in = loops(e, 1, x, op->axes);
    out(e, in, "{\n");
    out(e, in + 1, "%s mx = %s, sum = 0;\n", e->real, ref(e, x, first));
    out(e, in + 1, "for (int m = 1; m < %s; m++)\n", n);
    out(e, in + 2, "mx = %s > mx ? %s : mx;\n", xm, xm);
    out(e, in + 1, "for (int m = 0; m < %s; m++)\n", n);
    out(e, in + 2, "%s = %s;\n", ym, expand(e, op->kind, "exp($a - $b)", xm, "mx", 0, 0, 0));
    out(e, in + 1, "for (int m = 0; m < %s; m++)\n", n);
    out(e, in + 2, "sum += %s;\n", ym);
    out(e, in + 1, "for (int m = 0; m < %s; m++)\n", n);
    out(e, in + 2, "%s /= sum;\n", ym);
    out(e, in, "}\n");
}

/* What cross_entropy's mean divides by: the rows, or with ignore_index the
 * rows whose target is kept, counted by the forward pass (0 kept rows give
 * a NaN loss, as in PyTorch). */
static const char *ce_count(E *e, const Op *op) {
    return op->ignore ? aux_ref(e, op->out, "kept", IDX) : scalar(e, op->c);
}

static void aux_cross_entropy(E *e, const Op *op, bool chunked) {
    decl_field(e, e->real, aux_name(e, op->out, "probs"), op->in[0], chunked, " softmax of the logits, for the backward pass");
    if (op->ignore)
        decl_field(e, e->real, aux_name(e, op->out, "kept"), op->out, chunked, " rows whose target is not ignored");
}

static void forward_cross_entropy(E *e, const Op *op) {
    const Tensor *x = op->in[0];
    const Tensor *y = op->out;
    const Tensor *t = op->in[1];
    const char *lij = ref(e, x, IDX), *pij = probs_ref(e, op, IDX);
    const char *liy = ref(e, x, (const char *[]){"i", indexed(t->cname, 1, IDX)});
    out(e, 1, "%s = 0;\n", ref(e, y, IDX));
    if (op->ignore)
        out(e, 1, "%s = 0;\n", aux_ref(e, op->out, "kept", IDX));
    out(e, 1, "for (int i = 0; i < %s; i++) {\n", dimsz(e, x, 0));
    out(e, 2, "%s mx = %s, sum = 0;\n", e->real, ref(e, x, (const char *[]){"i", "0"}));
    out(e, 2, "for (int j = 1; j < %lld; j++)\n", (long long)x->shape[1]);
    out(e, 3, "mx = %s > mx ? %s : mx;\n", lij, lij);
    out(e, 2, "for (int j = 0; j < %lld; j++)   // apart from the sum, so that it vectorises\n",
        (long long)x->shape[1]);
    out(e, 3, "%s = %s;\n", pij, expand(e, op->kind, "exp($a - $b)", lij, "mx", 0, 0, 0));
    out(e, 2, "for (int j = 0; j < %lld; j++)\n", (long long)x->shape[1]);
    out(e, 3, "sum += %s;\n", pij);
    out(e, 2, "for (int j = 0; j < %lld; j++)\n", (long long)x->shape[1]);
    out(e, 3, "%s /= sum;\n", pij);
    if (op->ignore)     /* probs stay defined for every row; the loss skips these */
        out(e, 2, "if (%s == %lld)\n            continue;\n", indexed(t->cname, 1, IDX), (long long)op->ignore);
    out(e, 2, "%s += %s;\n", ref(e, y, IDX), expand(e, op->kind, "log($a) + $b - $c", "sum", "mx", 0, 0, liy));
    if (op->ignore)
        out(e, 2, "%s += 1;\n", aux_ref(e, op->out, "kept", IDX));
    out(e, 1, "}\n");
    out(e, 1, "%s /= %s;\n", ref(e, y, IDX), ce_count(e, op));
}

static void forward_cat(E *e, const Op *op) {
    const Tensor *y = op->out;
    const char *off = "0";
    for (int p = 0; p < op->nin; p++) {
        const Tensor *part = op->in[p];
        const char *yi[MAX_RANK];
        for (int d = 0; d < y->rank; d++)
            yi[d] = d == op->cat_dim ? arena_printf("%s + %s", off, IDX[d]) : IDX[d];
        out(e, loops(e, 1, part, 0), "%s = %s;\n", ref(e, y, yi), ref(e, part, IDX));
        off = arena_printf("%lld", (long long)(atoll(off) + part->shape[op->cat_dim]));
    }
}


/* ---- backward ---- */

/* d(target)[idx] (op)= value; a gradient kept in a register is declared
 * by its first contribution, which assigns. */
void contribute(E *e, int indent, const Tensor *target, const char *const *idx, const char *value) {
    if (is_dlocal(e, target) && e->acc[0] == '=')
        out(e, indent, "%s %s = %s;\n", e->real, gref(e, target, idx), value);
    else
        out(e, indent, "%s %s %s;\n", gref(e, target, idx), e->acc, value);
}

static void broadcast_note(E *e, int indent, const Grad *gr) {
    if (!gr->reduce_axes)
        return;
    char dims[64] = "";
    for (int d = 0; d < gr->op->out->rank; d++)
        if (gr->reduce_axes & (1u << d))
            snprintf(dims + strlen(dims), sizeof dims - strlen(dims), "%s%d", *dims ? ", " : "", d);
    out(e, indent, "// %s %s was broadcast over dim %s: its gradient sums over it\n", gr->target->name,
        shape_str(gr->target), dims);
}

/* Inside loops over the op's out indices. */
void elementwise_grad_stmt(E *e, int indent, const Grad *gr) {
    const Op *op = gr->op;
    const char *idx_a[MAX_RANK], *idx_b[MAX_RANK], *idx_t[MAX_RANK];
    broadcast_index(op->out, op->in[0], IDX, idx_a);
    const char *b = NULL;
    if (op->nin == 2) {
        broadcast_index(op->out, op->in[1], IDX, idx_b);
        b = ref(e, op->in[1], idx_b);
    }
    broadcast_index(op->out, gr->target, IDX, idx_t);
    contribute(e, indent, gr->target, idx_t,
               expand(e, op->kind, op_info[op->kind].grad[gr->operand], ref(e, op->in[0], idx_a), b,
                      ref(e, op->out, IDX), gref(e, op->out, IDX), scalar(e, op->c)));
}

/* A gradient that is d(out)'s array needs no code (plan.c, gradient_aliases);
 * one written over a dead array in place has (gradients_in_place). */
bool gradient_is_alias(E *e, const Grad *gr) {
    const Tensor *t = gr->target, *array = e->plan->galias[t->id];
    if (!array)
        return false;
    if (e->plan->gin_place[t->id]) {
        out(e, 1, "// d%s is written in place over d%s's array, which holds nothing read after this loop\n", t->name,
            array->name);
        return false;
    }
    out(e, 1, "// d%s is d%s's array%s\n", t->name, gr->op->out->name,
        gr->op->kind == OP_VIEW ? arena_printf(", read as %s", shape_str(gr->target)) : "");
    return true;
}

static void backward_elementwise(E *e, const Grad *gr) {
    if (gradient_is_alias(e, gr))
        return;
    broadcast_note(e, 1, gr);
    elementwise_grad_stmt(e, loops(e, 1, gr->op->out, 0), gr);
}

/* Inside loops over x's indices. */
void reduce_grad_stmt(E *e, int indent, const Grad *gr) {
    const Op *op = gr->op;
    const Tensor *x = op->in[0], *y = op->out;
    const char *yi[MAX_RANK];
    reduced_index(op, IDX, yi);
    const char *gy = gref(e, y, yi);
    if (op->kind == OP_MAX) {
        out(e, indent, "if (%s == %s)   // only the first maximum gets the gradient\n",
            IDX[__builtin_ctz(op->axes)], aux_ref(e, y, "argmax", yi));
        out(e, indent + 1, "%s += %s;\n", gref(e, x, IDX), gy);
        return;
    }
    const char *rule = op->kind == OP_SUM ? "$g"
                     : op->kind == OP_MEAN ? "$g / $c"
                     : op->unbiased ? "$g * (#2 * ($a - $b) / ($c - #1))" : "$g * (#2 * ($a - $b) / $c)";
    contribute(e, indent, x, IDX,
               expand(e, op->kind, rule, ref(e, x, IDX), op->kind == OP_VAR ? var_mean(e, op, yi) : NULL, NULL, gy,
                      scalar(e, op->c)));
}

static void backward_reduce(E *e, const Grad *gr) { reduce_grad_stmt(e, loops(e, 1, gr->op->in[0], 0), gr); }

/* Inside loops over the logits' indices. */
void cross_entropy_grad_stmt(E *e, int indent, const Grad *gr) {
    const Op *op = gr->op;
    const Tensor *x = op->in[0], *t = op->in[1];
    const char *target = indexed(t->cname, 1, IDX);
    /* The one-hot and the ignored rows by where(): a bool converted to a
     * float, or c ? 0 : x, kept the loop scalar on AVX2 and SSE2 (GCC does
     * not if-convert them there: 0.9 us of the notebook's 36 us step). */
    const char *rule = arena_printf("%s * ((%s - %s(%s == j, %s, %s)) / %s)", gref(e, op->out, IDX),
                                    probs_ref(e, op, IDX), where_fn(e), target, lit(e, 1), lit(e, 0), ce_count(e, op));
    if (op->ignore)
        rule = arena_printf("%s(%s == %lld, %s, %s)", where_fn(e), target, (long long)op->ignore, lit(e, 0), rule);
    contribute(e, indent, x, IDX, rule);
}

static void backward_matmul(E *e, const Grad *gr) {
    const Op *op = gr->op;
    const Tensor *y = op->out;
    const Tensor *a = op->in[0], *b = op->in[1];
    const char *M, *N, *K;
    matmul_dims(e, op, &M, &N, &K);
    bool acc = e->acc[0] == '+';
    if (gr->operand == 0) {
        out(e, 1, "// d%s %s d%s @ %s^T\n", a->name, e->acc, y->name, b->name);
        if (own_matmul(e, op, 0)) {   /* the kernels take B^T as rows: transpose B first */
            out(e, 1, "nj_transpose(%s, %s, %s, g->mm_scratch);\n", K, N, ptr(e, b));
            own(e, M, K, N, gptr(e, y), N, "1", "g->mm_scratch", K, gptr(e, a), K, acc);
        } else {
            gemm(e, 1, false, true, M, K, N, gptr(e, y), N, ptr(e, b), N, acc, gptr(e, a), K);
        }
    } else {
        out(e, 1, "// d%s %s %s^T @ d%s\n", b->name, e->acc, a->name, y->name);
        if (own_matmul(e, op, 1))
            own(e, K, N, M, ptr(e, a), "1", K, gptr(e, y), N, gptr(e, b), N, acc);
        else
            gemm(e, 1, true, false, K, N, M, ptr(e, a), K, gptr(e, y), N, acc, gptr(e, b), N);
    }
}

/* Per product, as backward_matmul; an operand broadcast over a leading
 * dim sums its products' gradients there (reduce_axes: the gradient is
 * zeroed first and every product adds). */
static void backward_bmm(E *e, const Grad *gr) {
    const Op *op = gr->op;
    const Tensor *a = op->in[0], *b = op->in[1], *y = op->out;
    const char *M = ll(a->shape[a->rank - 2]), *K = ll(a->shape[a->rank - 1]), *N = ll(b->shape[b->rank - 1]);
    bool acc = e->acc[0] == '+';
    const char *sum = gr->reduce_axes ? ", summed over the leading dims it was broadcast over" : "";
    if (gr->operand == 0) {
        out(e, 1, "// d%s %s d%s @ %s^T per product%s\n", a->name, e->acc, y->name, b->name, sum);
        gemm(e, loops(e, 1, y, last_two(y)), false, true, M, K, N, slice_at(e, y, y, true), N,
             slice_at(e, y, b, false), N, acc, slice_at(e, y, a, true), K);
    } else {
        out(e, 1, "// d%s %s %s^T @ d%s per product%s\n", b->name, e->acc, a->name, y->name, sum);
        gemm(e, loops(e, 1, y, last_two(y)), true, false, K, N, M, slice_at(e, y, a, false), K,
             slice_at(e, y, y, true), N, acc, slice_at(e, y, b, true), N);
    }
}

static void backward_embed(E *e, const Grad *gr) {
    const Op *op = gr->op;
    const Tensor *x = op->in[0];
    const Tensor *y = op->out;
    const char *ti[MAX_RANK], *ii[MAX_RANK];
    embed_index(op, ti, ii);
    ti[0] = ref(e, op->in[1], ii);
    out(e, loops(e, 1, y, 0), "%s += %s;\n", gref(e, x, ti), gref(e, y, IDX));
}

static void backward_pick(E *e, const Grad *gr) {
    const Op *op = gr->op;
    const Tensor *x = op->in[0];
    const Tensor *y = op->out;
    const char *xi[2] = {"i", indexed(op->in[1]->cname, 1, IDX)};
    out(e, loops(e, 1, y, 0), "%s += %s;\n", gref(e, x, xi), gref(e, y, IDX));
}

static void backward_view(E *e, const Grad *gr) {
    const Op *op = gr->op;
    const Tensor *x = op->in[0];
    const Tensor *y = op->out;
    if (gradient_is_alias(e, gr))
        return;
    out(e, 1, "for (int i = 0; i < %s; i++)\n", numel_range(e, x, 0, x->rank));
    out(e, 2, "(%s)[i] %s (%s)[i];\n", gptr(e, x), e->acc, gptr(e, y));
}

static void backward_transpose(E *e, const Grad *gr) {
    const Op *op = gr->op;
    const Tensor *x = op->in[0];
    const Tensor *y = op->out;
    const char *xi[2] = {"j", "i"};
    out(e, loops(e, 1, y, 0), "%s %s %s;\n", gref(e, x, xi), e->acc, gref(e, y, IDX));
}

static void backward_softmax(E *e, const Grad *gr) {
    const Op *op = gr->op;
    const Tensor *x = op->in[0];
    const Tensor *y = op->out;
    int d = __builtin_ctz(op->axes);
    const char *at[MAX_RANK];
    for (int k = 0; k < x->rank; k++)
        at[k] = k == d ? "m" : IDX[k];
    const char *n = dimsz(e, x, d);
    int in = loops(e, 1, x, op->axes);
    out(e, in, "{   // dx = y * (dy - sum(dy * y))\n");
    out(e, in + 1, "%s dot = 0;\n", e->real);
    out(e, in + 1, "for (int m = 0; m < %s; m++)\n", n);
    out(e, in + 2, "dot += %s * %s;\n", gref(e, y, at), ref(e, y, at));
    out(e, in + 1, "for (int m = 0; m < %s; m++)\n", n);
    out(e, in + 2, "%s %s %s * (%s - dot);\n", gref(e, x, at), e->acc, ref(e, y, at), gref(e, y, at));
    out(e, in, "}\n");
}

static void backward_cross_entropy(E *e, const Grad *gr) {
    const Op *op = gr->op;
    const Tensor *x = op->in[0];
    out(e, 1, "// d%s = (softmax(%s) - onehot(%s)) / %s%s\n", x->name, x->name, op->in[1]->name,
        ce_count(e, op), op->ignore ? ", 0 in ignored rows" : "");
    cross_entropy_grad_stmt(e, loops(e, 1, x, 0), gr);
}

static void backward_cat(E *e, const Grad *gr) {
    const Op *op = gr->op;
    const Tensor *y = op->out;
    int64_t off = 0;
    for (int p = 0; p < gr->operand; p++)
        off += op->in[p]->shape[op->cat_dim];
    const char *yi[MAX_RANK];
    for (int d = 0; d < y->rank; d++)
        yi[d] = d == op->cat_dim ? arena_printf("%lld + %s", (long long)off, IDX[d]) : IDX[d];
    out(e, loops(e, 1, gr->target, 0), "%s %s %s;\n", gref(e, gr->target, IDX), e->acc, gref(e, y, yi));
}

/* The ops with code of their own (family SPECIAL in ops.def): their named
 * forward, backward and, if the row names aux arrays, the function that
 * declares them. A new special op adds its entry here (check_op_table
 * refuses a SPECIAL row without one). */
static const struct {
    void (*forward)(E *e, const Op *op);
    void (*backward)(E *e, const Grad *gr);
    void (*aux)(E *e, const Op *op, bool chunked);
} special_code[OP_COUNT] = {
    [OP_MATMUL] = {forward_matmul, backward_matmul},
    [OP_BMM] = {forward_bmm, backward_bmm},
    [OP_EMBED] = {forward_embed, backward_embed},
    [OP_PICK] = {forward_pick, backward_pick},
    [OP_VIEW] = {forward_view, backward_view},
    [OP_TRANSPOSE] = {forward_transpose, backward_transpose},
    [OP_SOFTMAX] = {forward_softmax, backward_softmax},
    [OP_CROSS_ENTROPY] = {forward_cross_entropy, backward_cross_entropy, aux_cross_entropy},
    [OP_CAT] = {forward_cat, backward_cat},
    [OP_SLICE] = {forward_slice, backward_slice},
    [OP_ONE_HOT] = {forward_one_hot, backward_one_hot},
    /* shape (perm): unsqueeze, squeeze and contiguous keep the elements in order */
    [OP_PERMUTE] = {forward_permute, backward_permute},
    [OP_UNSQUEEZE] = {forward_view, backward_view},
    [OP_CONTIGUOUS] = {forward_view, backward_view},
    [OP_EXPAND] = {forward_expand, backward_expand},
    [OP_LAYER_NORM] = {forward_layer_norm, backward_layer_norm, aux_layer_norm},   /* emit_nn.c */
    [OP_ZEROS_LIKE] = {forward_zeros, backward_zeros},
    [OP_ONES] = {forward_full, backward_full},   /* emit_mask.c */
    [OP_ZEROS] = {forward_full, backward_full},
    [OP_TRIL] = {forward_tril, backward_tril},
    [OP_BATCHNORM] = {forward_batchnorm, backward_batchnorm, aux_batchnorm},   /* emit_nn.c */
};

bool emits_special(OpKind kind) {
    return special_code[kind].forward && special_code[kind].backward && !special_code[kind].aux == !op_info[kind].aux;
}

/* The op's aux arrays (its row's .aux), declared beside its output. */
void decl_aux(E *e, const Op *op, bool chunked) {
    if (op_info[op->kind].family == REDUCE)
        aux_reduce(e, op, chunked);
    else if (op_info[op->kind].family == SPECIAL && special_code[op->kind].aux)
        special_code[op->kind].aux(e, op, chunked);
}

/* A rewritten op says which lines it stands for. */
void rewrite_note(E *e, const Op *op) {
    if (!op->rewrite_first)
        return;
    int a = loc_line(op->rewrite_first->loc), b = loc_line(op->stmt->loc);
    out(e, 1, "// rewritten: %s.ninja:%d%s as %s\n", e->m->src->name, a, a == b ? "" : arena_printf("-%d", b),
        op->rewrite_rule);
}

void forward_op(E *e, const Op *op) {
    if (e->plan->bias_add[op->id])   /* computed by the add of its bias */
        return;
    open_stmt(e, op->stmt, "");
    rewrite_note(e, op);
    out(e, 1, "// %s\n", op_summary(op));
    if (e->plan->product_of[op->id]) {
        forward_matmul_bias(e, e->plan->product_of[op->id], op);
        return;
    }
    switch (op_info[op->kind].family) {
    case EW1:
    case EW2: forward_elementwise(e, op); break;
    case REDUCE: forward_reduce(e, op); break;
    case SPECIAL: special_code[op->kind].forward(e, op); break;
    }
}

/* -O0 zeroes all gradients and accumulates every contribution with +=, as
 * one writes it by hand. -O skips the zeroing: a gradient's first
 * contribution assigns, or zeroes just that gradient when it cannot. */
static void open_gradient(E *e, const Grad *gr) {
    e->acc = "+=";
    if (e->opt->opt_level == 0 || e->written[gr->target->id])
        return;
    e->written[gr->target->id] = true;
    if (grad_covers_target(gr))
        e->acc = "=";
    else
        out(e, 1, "memset(%s, 0, sizeof(%s) * %lld);\n", gptr(e, gr->target), e->real,
            (long long)tensor_numel(gr->target));
}

/* What a contribution computes from: the rewrite, if any, and the op. */
void grad_note(E *e, const Grad *gr) {
    rewrite_note(e, gr->op);
    out(e, 1, "// d%s from %s\n", gr->target->name, op_summary(gr->op));
}

void backward_grad(E *e, const Grad *gr) {
    open_stmt(e, gr->op->stmt, "backprop through ");
    grad_note(e, gr);
    open_gradient(e, gr);
    switch (op_info[gr->op->kind].family) {
    case EW1:
    case EW2: backward_elementwise(e, gr); break;
    case REDUCE: backward_reduce(e, gr); break;
    case SPECIAL: special_code[gr->op->kind].backward(e, gr); break;
    }
}
