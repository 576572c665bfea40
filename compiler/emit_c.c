/* emit_c.c - writes NAME.h and NAME.c: structs with fixed-size arrays,
 * the training forward, the backward pass (each block commented with the
 * spec line it differentiates), SGD, the inference forward with batch
 * statistics frozen, their calibration, and the NinjacModel table.
 * Memory: strings come from the arena; the output is built in memory and
 * renamed into place only when both files are complete. */
#include "ninjac.h"
#include "files.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    FILE *out;
    const Model *m;
    const Backward *bw;
    const EmitOptions *opt;
    const Plan *plan;
    bool fused;             /* emitting a training function of -O: locals per the plan */
    const char **dname;     /* per tensor id: the name of a gradient kept in a register */
    int given;              /* name_gradient_locals: the register names given so far */
    const char *real;       /* float or double */
    bool fast_math;         /* -O, float: nj_tanhf for tanh */
    bool infer;             /* batch dims run to `rows`; activations in w->, frozen in s-> */
    const Stmt *last_stmt;  /* to open a block per spec line */
    int chunk;              /* rows per inference chunk */
    bool *written;          /* backward, -O: d<tensor id> has had a contribution */
    const char *acc;        /* "+=", or "=" for the first contribution when it covers every element */
} E;

static const char *const IDX[MAX_RANK] = {"i", "j", "k", "l"};

static void out(E *e, int indent, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void out(E *e, int indent, const char *fmt, ...) {
    for (int i = 0; i < indent; i++)
        fputs("    ", e->out);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(e->out, fmt, ap);
    va_end(ap);
}

/* ---- names and literals ---- */

static const char *lit(E *e, double v) {
    if (!e->opt->f64) {
        char *s = arena_printf("%.9g", (double)(float)v);
        return strpbrk(s, ".en") ? arena_printf("%sf", s) : arena_printf("%s.0f", s);
    }
    char *s = arena_printf("%.17g", v);
    return strpbrk(s, ".en") ? s : arena_printf("%s.0", s);
}

/* A scalar of the op: a literal, or its C spelling in terms of rows. */
static const char *scalar(E *e, Scalar s) {
    if (e->infer && s.rows_expr)
        return arena_printf("(%s)(%s)", e->real, s.rows_expr);
    return lit(e, s.value);
}

static const char *dimsz(E *e, const Tensor *t, int d) {
    return e->infer && t->batch[d] ? "rows" : arena_printf("%lld", (long long)t->shape[d]);
}

/* Elements of dims [from, to) as a C expression. */
static const char *numel_range(E *e, const Tensor *t, int from, int to) {
    int64_t fixed = 1;
    bool rows = false;
    for (int d = from; d < to; d++) {
        if (e->infer && t->batch[d])
            rows = true;
        else
            fixed *= t->shape[d];
    }
    if (!rows)
        return arena_printf("%lld", (long long)fixed);
    return fixed == 1 ? "rows" : arena_printf("rows * %lld", (long long)fixed);
}

/* An op's aux array is named after its output (loss_probs), made unique
 * against the tensors' C names (both are members of the same struct) and
 * free of what C reserves. */
static bool tensor_named(const Model *m, const char *name) {
    for (int i = 0; i < m->tensors.len; i++)
        if (!strcmp(((Tensor *)m->tensors.items[i])->cname, name))
            return true;
    return c_name_reserved(m, name);
}

static bool aux_taken(const void *m, const char *name) { return tensor_named(m, name); }

static const char *aux_name(const E *e, const Tensor *t, const char *what) {
    return free_c_name(e->m, arena_printf("%s_%s", t->cname, what), aux_taken, e->m);
}

static const char *base(E *e, const Tensor *t) {
    switch (t->kind) {
    case T_PARAM: return arena_printf("p->%s", t->cname);
    case T_INPUT: return t->cname;
    case T_ACT: break;
    }
    if (!e->infer)
        return arena_printf("a->%s", t->cname);
    return arena_printf("%s->%s", t->frozen ? "s" : "w", t->cname);
}

static const char *indexed(const char *b, int rank, const char *const *idx) {
    char *s = arena_strdup(b);
    for (int d = 0; d < rank; d++)
        s = arena_printf("%s[%s]", s, idx[d]);
    return s;
}

/* An op's auxiliary array (a var's mean, a max's argmax, softmax
 * probabilities) lives beside its output: in acts, or in the workspace. */
static const char *aux_ref(E *e, const Tensor *t, const char *what, const char *const *idx) {
    return indexed(arena_printf("%s->%s", e->infer ? "w" : "a", aux_name(e, t, what)), t->rank, idx);
}

/* cross_entropy keeps the softmax of its logits, named after its output. */
static const char *probs_ref(E *e, const Op *op, const char *const *idx) {
    return indexed(arena_printf("%s->%s", e->infer ? "w" : "a", aux_name(e, op->out, "probs")), op->in[0]->rank, idx);
}

static bool is_local(const E *e, const Tensor *t) { return e->fused && e->plan->local[t->id]; }
static bool is_dlocal(const E *e, const Tensor *t) { return e->fused && e->plan->dlocal[t->id]; }

static const char *ref(E *e, const Tensor *t, const char *const *idx) {
    return is_local(e, t) ? t->cname : indexed(base(e, t), t->rank, idx);
}

static const char *gref(E *e, const Tensor *t, const char *const *idx) {
    return is_dlocal(e, t) ? e->dname[t->id] : indexed(arena_printf("g->d%s", t->cname), t->rank, idx);
}

static const char *ptr_of(const char *b, int rank) {
    char *s = arena_printf("&%s", b);
    for (int d = 0; d < rank; d++)
        s = arena_printf("%s[0]", s);
    return s;
}

static const char *ptr(E *e, const Tensor *t) { return ptr_of(base(e, t), t->rank); }
static const char *gptr(E *e, const Tensor *t) {
    (void)e;
    return ptr_of(arena_printf("g->d%s", t->cname), t->rank);
}

/* The index of an operand broadcast against an out index (aligned right).
 * A dim of size 1 that meets the batch dim is broadcast even when the
 * training batch is 1 too: inference runs on any number of rows. */
static void broadcast_index(const Tensor *out, const Tensor *in, const char *const *out_idx,
                            const char **in_idx) {
    int offset = out->rank - in->rank;
    for (int d = 0; d < in->rank; d++) {
        bool spread = out->shape[d + offset] != 1 || (out->batch[d + offset] && !in->batch[d]);
        in_idx[d] = in->shape[d] == 1 && spread ? "0" : out_idx[d + offset];
    }
}

/* The out index of a reduction, from the index of its input. */
static void reduced_index(const Op *op, const char *const *in_idx, const char **out_idx) {
    int r = 0;
    for (int d = 0; d < op->in[0]->rank; d++) {
        if (!(op->axes & (1u << d)))
            out_idx[r++] = in_idx[d];
        else if (op->keepdim)
            out_idx[r++] = "0";
    }
}

/* ---- loops ---- */

/* Opens one for-loop per dim of t (skipping `skip`, a bit mask); returns the indent inside. */
static int loops(E *e, int indent, const Tensor *t, uint32_t skip) {
    for (int d = 0; d < t->rank; d++) {
        if (skip & (1u << d))
            continue;
        out(e, indent++, "for (int %s = 0; %s < %s; %s++)\n", IDX[d], IDX[d], dimsz(e, t, d), IDX[d]);
    }
    return indent;
}

/* ---- elementwise templates ---- */

/* A math function of the op's table row, as the real type and the mode call it. */
static const char *math_call(const E *e, OpKind kind, const char *name, size_t len) {
    for (int f = 0; f < MATH_COUNT; f++) {
        const MathInfo *fn = &math_info[f];
        if ((op_info[kind].math & (1u << f)) && strlen(fn->name[0]) == len && !strncmp(name, fn->name[0], len))
            return e->opt->f64 ? fn->name[0] : e->fast_math && fn->own ? fn->own : fn->name[1];
    }
    fprintf(stderr, "ninjac: internal: a template of %s calls %.*s, which its math column lacks\n",
            op_info[kind].name, (int)len, name);
    abort();
}

/* A template of the op table (ops.def) with its operands, literals of the
 * real type, and its op's math functions in the real type; -O's float code
 * takes a function's own version where it has one (nj_tanhf: vectorisable,
 * 6 ulp at most). A call of anything else is a bug of the table. */
static const char *expand(E *e, OpKind kind, const char *tmpl, const char *a, const char *b, const char *y,
                          const char *g, const char *c) {
    char *text;
    size_t len;
    FILE *s = open_memstream(&text, &len);
    if (!s) {
        fprintf(stderr, "ninjac: out of memory\n");
        exit(1);
    }
    for (const char *p = tmpl; *p;) {
        if (*p == '$') {
            const char *v = p[1] == 'a' ? a : p[1] == 'b' ? b : p[1] == 'y' ? y : p[1] == 'g' ? g : c;
            fputs(v, s);
            p += 2;
        } else if (*p == '#') {
            char *end;
            double v = strtod(p + 1, &end);
            fputs(lit(e, v), s);
            p = end;
        } else if (isalpha((unsigned char)*p)) {
            const char *end = p;
            while (isalnum((unsigned char)*end) || *end == '_')
                end++;
            fputs(math_call(e, kind, p, (size_t)(end - p)), s);
            p = end;
        } else {
            fputc(*p++, s);
        }
    }
    fclose(s);
    char *result = arena_strndup(text, len);
    free(text);
    return result;
}

/* ---- provenance ---- */

static const char *spec_code(const Stmt *s) {
    const char *line = line_text(loc_line(s->loc));
    const char *hash = strchr(line, '#');
    size_t len = hash ? (size_t)(hash - line) : strlen(line);
    while (len && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\\'))
        len--;
    while (len && (*line == ' ' || *line == '\t')) {
        line++;
        len--;
    }
    return arena_strndup(line, len);
}

static const char *origin(const E *e, const Stmt *s) {
    return arena_printf("%s.ninja:%d: %s", e->m->src->name, loc_line(s->loc), spec_code(s));
}

static void open_stmt(E *e, const Stmt *s, const char *prefix) {
    if (s == e->last_stmt)
        return;
    e->last_stmt = s;
    out(e, 1, "\n");
    out(e, 1, "// %s%s\n", prefix, origin(e, s));
}

static const char *op_summary(const Op *op) {
    char *ins = arena_strdup("");
    for (int k = 0; k < op->nin; k++) {
        const Tensor *t = op->in[k];
        ins = arena_printf("%s%s%s %s", ins, k ? ", " : "", t->name, shape_str(t));
    }
    return arena_printf("%s %s = %s(%s)", op->out->name, shape_str(op->out), op_info[op->kind].name, ins);
}

/* ---- forward ---- */

/* out[IDX] = f(operands), inside loops over out's indices. */
static void elementwise_stmt(E *e, int indent, const Op *op) {
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
 * size; that is not yet the faster choice everywhere (bench/RESULTS.md: on
 * the AVX2 path OpenBLAS wins at 6 of the sweep's 12 sizes, by up to 1.4x),
 * and a rule measured per ISA is issue 14's open part. f64 builds serve
 * finite differences: BLAS. */
static bool own_gemm(const E *e, int64_t M, int64_t N, int64_t K) {
    (void)M, (void)N, (void)K;
    return !e->opt->f64 && e->plan->fused && e->opt->gemm != GEMM_BLAS;
}

/* The three products of a matmul: forward (operand -1) and the gradient of
 * each operand, as the kernels see them: C[M][N] = A'[M][K] @ B[K][N]. */
static bool own_matmul(const E *e, const Op *op, int operand) {
    const Tensor *a = op->in[0], *b = op->in[1];
    int64_t rows = tensor_numel(a) / b->shape[0], k = b->shape[0], n = b->shape[1];
    return operand < 0 ? own_gemm(e, rows, n, k) : operand == 0 ? own_gemm(e, rows, k, n) : own_gemm(e, k, n, rows);
}

/* nj_gemm(M, N, K, A, a_row, a_col, B, ldb, C, ldc, accumulate): C (+)= A' @ B */
static void own(E *e, const char *M, const char *N, const char *K, const char *A, const char *a_row,
                const char *a_col, const char *B, const char *ldb, const char *C, const char *ldc, bool acc) {
    out(e, 1, "nj_gemm(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %d);\n", M, N, K, A, a_row, a_col, B, ldb, C, ldc,
        acc);
}

static void forward_matmul(E *e, const Op *op) {
    const Tensor *a = op->in[0], *b = op->in[1], *y = op->out;
    const char *M = numel_range(e, a, 0, a->rank - 1), *N = ll(b->shape[1]), *K = ll(b->shape[0]);
    if (own_matmul(e, op, -1))
        own(e, M, N, K, ptr(e, a), K, "1", ptr(e, b), N, ptr(e, y), N, false);
    else
        gemm(e, 1, false, false, M, N, K, ptr(e, a), K, ptr(e, b), N, false, ptr(e, y), N);
}

/* -O: a var over the same dims of the same tensor as an earlier mean (the
 * BatchNorm of exercise 4) takes that mean, which it would compute again
 * with the same sums in the same order. */
static const Op *shared_mean(const E *e, const Op *var) {
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

static void reduce_init(E *e, const Op *op) {
    out(e, loops(e, 1, op->out, 0), "%s = 0;\n", reduce_acc(e, op, IDX));
}

static void reduce_accumulate(E *e, int indent, const Op *op) {
    const char *yi[MAX_RANK];
    reduced_index(op, IDX, yi);
    out(e, indent, "%s += %s;\n", reduce_acc(e, op, yi), ref(e, op->in[0], IDX));
}

static void reduce_finish(E *e, const Op *op) {
    if (op->kind != OP_SUM)
        out(e, loops(e, 1, op->out, 0), "%s /= %s;\n", reduce_acc(e, op, IDX), scalar(e, op->c));
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

static void forward_special(E *e, const Op *op) {
    const Tensor *x = op->in[0], *y = op->out;
    switch (op->kind) {
    case OP_MATMUL: forward_matmul(e, op); return;
    case OP_EMBED: {
        const char *ti[MAX_RANK], *ii[MAX_RANK];
        embed_index(op, ti, ii);
        ti[0] = ref(e, op->in[1], ii);
        out(e, loops(e, 1, y, 0), "%s = %s;\n", ref(e, y, IDX), ref(e, x, ti));
        return;
    }
    case OP_PICK: {
        const char *xi[2] = {"i", indexed(op->in[1]->cname, 1, IDX)};
        out(e, loops(e, 1, y, 0), "%s = %s;\n", ref(e, y, IDX), ref(e, x, xi));
        return;
    }
    case OP_VIEW:
        out(e, 1, "memcpy(%s, %s, sizeof(%s) * (%s));\n", ptr(e, y), ptr(e, x), e->real, numel_range(e, x, 0, x->rank));
        return;
    case OP_TRANSPOSE: {
        const char *xi[2] = {"j", "i"};
        out(e, loops(e, 1, y, 0), "%s = %s;\n", ref(e, y, IDX), ref(e, x, xi));
        return;
    }
    case OP_SOFTMAX: {
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
        return;
    }
    case OP_CROSS_ENTROPY: {
        const Tensor *t = op->in[1];
        const char *lij = ref(e, x, IDX), *pij = probs_ref(e, op, IDX);
        const char *liy = ref(e, x, (const char *[]){"i", indexed(t->cname, 1, IDX)});
        out(e, 1, "%s = 0;\n", ref(e, y, IDX));
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
        out(e, 2, "%s += %s;\n", ref(e, y, IDX), expand(e, op->kind, "log($a) + $b - $c", "sum", "mx", 0, 0, liy));
        out(e, 1, "}\n");
        out(e, 1, "%s /= %s;\n", ref(e, y, IDX), scalar(e, op->c));
        return;
    }
    case OP_CAT: {
        const char *off = "0";
        for (int p = 0; p < op->nin; p++) {
            const Tensor *part = op->in[p];
            const char *yi[MAX_RANK];
            for (int d = 0; d < y->rank; d++)
                yi[d] = d == op->cat_dim ? arena_printf("%s + %s", off, IDX[d]) : IDX[d];
            out(e, loops(e, 1, part, 0), "%s = %s;\n", ref(e, y, yi), ref(e, part, IDX));
            off = arena_printf("%lld", (long long)(atoll(off) + part->shape[op->cat_dim]));
        }
        return;
    }
    default:
        return;
    }
}

static void forward_op(E *e, const Op *op) {
    open_stmt(e, op->stmt, "");
    out(e, 1, "// %s\n", op_summary(op));
    switch (op_info[op->kind].family) {
    case EW1:
    case EW2: forward_elementwise(e, op); break;
    case REDUCE: forward_reduce(e, op); break;
    case SPECIAL: forward_special(e, op); break;
    }
}

/* ---- backward ---- */

/* d(target)[idx] (op)= value; a gradient kept in a register is declared
 * by its first contribution, which assigns. */
static void contribute(E *e, int indent, const Tensor *target, const char *const *idx, const char *value) {
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
static void elementwise_grad_stmt(E *e, int indent, const Grad *gr) {
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

static void backward_elementwise(E *e, const Grad *gr) {
    broadcast_note(e, 1, gr);
    elementwise_grad_stmt(e, loops(e, 1, gr->op->out, 0), gr);
}

/* Inside loops over x's indices. */
static void reduce_grad_stmt(E *e, int indent, const Grad *gr) {
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
static void cross_entropy_grad_stmt(E *e, int indent, const Grad *gr) {
    const Op *op = gr->op;
    const Tensor *x = op->in[0], *t = op->in[1];
    contribute(e, indent, x, IDX,
               arena_printf("%s * ((%s - (%s == j)) / %s)", gref(e, op->out, IDX), probs_ref(e, op, IDX),
                            indexed(t->cname, 1, IDX), scalar(e, op->c)));
}

static void backward_special(E *e, const Grad *gr) {
    const Op *op = gr->op;
    const Tensor *x = op->in[0], *y = op->out;
    switch (op->kind) {
    case OP_MATMUL: {
        const Tensor *a = op->in[0], *b = op->in[1];
        const char *M = numel_range(e, a, 0, a->rank - 1), *N = ll(b->shape[1]), *K = ll(b->shape[0]);
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
        return;
    }
    case OP_EMBED: {
        const char *ti[MAX_RANK], *ii[MAX_RANK];
        embed_index(op, ti, ii);
        ti[0] = ref(e, op->in[1], ii);
        out(e, loops(e, 1, y, 0), "%s += %s;\n", gref(e, x, ti), gref(e, y, IDX));
        return;
    }
    case OP_PICK: {
        const char *xi[2] = {"i", indexed(op->in[1]->cname, 1, IDX)};
        out(e, loops(e, 1, y, 0), "%s += %s;\n", gref(e, x, xi), gref(e, y, IDX));
        return;
    }
    case OP_VIEW:
        out(e, 1, "for (int i = 0; i < %s; i++)\n", numel_range(e, x, 0, x->rank));
        out(e, 2, "(%s)[i] %s (%s)[i];\n", gptr(e, x), e->acc, gptr(e, y));
        return;
    case OP_TRANSPOSE: {
        const char *xi[2] = {"j", "i"};
        out(e, loops(e, 1, y, 0), "%s %s %s;\n", gref(e, x, xi), e->acc, gref(e, y, IDX));
        return;
    }
    case OP_SOFTMAX: {
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
        return;
    }
    case OP_CROSS_ENTROPY:
        out(e, 1, "// d%s = (softmax(%s) - onehot(%s)) / %s\n", x->name, x->name, op->in[1]->name,
            scalar(e, op->c));
        cross_entropy_grad_stmt(e, loops(e, 1, x, 0), gr);
        return;
    case OP_CAT: {
        int64_t off = 0;
        for (int p = 0; p < gr->operand; p++)
            off += op->in[p]->shape[op->cat_dim];
        const char *yi[MAX_RANK];
        for (int d = 0; d < y->rank; d++)
            yi[d] = d == op->cat_dim ? arena_printf("%lld + %s", (long long)off, IDX[d]) : IDX[d];
        out(e, loops(e, 1, gr->target, 0), "%s %s %s;\n", gref(e, gr->target, IDX), e->acc, gref(e, y, yi));
        return;
    }
    default:
        return;
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

static void backward_grad(E *e, const Grad *gr) {
    open_stmt(e, gr->op->stmt, "backprop through ");
    out(e, 1, "// d%s from %s\n", gr->target->name, op_summary(gr->op));
    open_gradient(e, gr);
    switch (op_info[gr->op->kind].family) {
    case EW1:
    case EW2: backward_elementwise(e, gr); break;
    case REDUCE: backward_reduce(e, gr); break;
    case SPECIAL: backward_special(e, gr); break;
    }
}

/* ---- declarations ---- */

/* The runtime's code for an init step (runtime/ninjac_model.h: part of the
 * generated table's format, so it stays a character). */
static char init_step_code(const InitStep *step) { return step->reversed ? 'r' : binop_text[step->op][0]; }

static const char *c_string(const char *s) {
    char *r = arena_strdup("\"");
    for (; *s; s++)
        r = *s == '"' || *s == '\\' ? arena_printf("%s\\%c", r, *s) : arena_printf("%s%c", r, *s);
    return arena_printf("%s\"", r);
}

static const char *shape_comment(const Model *m, const Tensor *t) {
    char *s = arena_strdup("[");
    for (int d = 0; d < t->rank; d++)
        s = arena_printf("%s%s%s%lld", s, d ? ", " : "", t->batch[d] ? arena_printf("%s=", m->batch_dim) : "",
                         (long long)t->shape[d]);
    return arena_printf("%s]", s);
}

static void decl(E *e, const char *type, const char *name, const Tensor *t, bool chunked, const char *why) {
    char *dims = arena_strdup("");
    for (int d = 0; d < t->rank; d++)
        dims = arena_printf("%s[%lld]", dims, chunked && t->batch[d] ? (long long)e->chunk : (long long)t->shape[d]);
    out(e, 1, "%s %s%s;%*s// %s%s\n", type, name, dims, (int)(28 - strlen(name) - strlen(dims) > 0 ? 28 - strlen(name) - strlen(dims) : 1), "",
        shape_comment(e->m, t), why);
}

static const char *line_ref(const E *e, const Tensor *t) {
    return t->stmt ? arena_printf(" %s.ninja:%d", e->m->src->name, loc_line(t->stmt->loc)) : "";
}

/* The op's auxiliary arrays, declared beside its output. */
static void decl_aux(E *e, const Op *op, bool chunked) {
    if (op->kind == OP_VAR && !shared_mean(e, op))
        decl(e, e->real, aux_name(e, op->out, "mean"), op->out, chunked, " mean, for var");
    else if (op->kind == OP_MAX)
        decl(e, "int", aux_name(e, op->out, "argmax"), op->out, chunked, " where the max is");
    else if (op->kind == OP_CROSS_ENTROPY)
        decl(e, e->real, aux_name(e, op->out, "probs"), op->in[0], chunked, " softmax of the logits, for the backward pass");
}

static bool runs_in_inference(const Op *op) { return !op->out->frozen; }

static void struct_params(E *e, const char *id) {
    out(e, 0, "typedef struct {\n");
    for (int i = 0; i < e->m->params.len; i++) {
        const Tensor *t = e->m->params.items[i];
        decl(e, e->real, t->cname, t, false, line_ref(e, t));
    }
    out(e, 0, "} %s_params;\n\n", id);
}

static void struct_acts(E *e, const char *id) {
    out(e, 0, "typedef struct {   // every activation of a training batch\n");
    for (int i = 0; i < e->m->ops.len; i++) {
        const Op *op = e->m->ops.items[i];
        decl(e, e->real, op->out->cname, op->out, false, line_ref(e, op->out));
        decl_aux(e, op, false);
    }
    out(e, 0, "} %s_acts;\n\n", id);
}

static void struct_grads(E *e, const char *id) {
    out(e, 0, "typedef struct {   // d<name>: the gradient of loss with respect to <name>\n");
    for (int i = 0; i < e->m->tensors.len; i++) {
        const Tensor *t = e->m->tensors.items[i];
        if ((t->needs_grad || t == e->m->loss) && !e->plan->dlocal[i])
            decl(e, e->real, arena_printf("d%s", t->cname), t, false, line_ref(e, t));
    }
    int64_t scratch = 0;   /* B^T of the largest A @ B^T the own kernels compute */
    for (int i = 0; i < e->bw->grads.len; i++) {
        const Grad *gr = e->bw->grads.items[i];
        if (gr->op->kind == OP_MATMUL && gr->operand == 0 && own_matmul(e, gr->op, 0) &&
            tensor_numel(gr->op->in[1]) > scratch)
            scratch = tensor_numel(gr->op->in[1]);
    }
    if (scratch)
        out(e, 1, "%s mm_scratch[%lld];%*s// B^T for the kernels' A @ B^T\n", e->real, (long long)scratch, 10, "");
    out(e, 0, "} %s_grads;\n\n", id);
}

static void struct_stats(E *e, const char *id) {
    out(e, 0, "typedef struct {   // batch statistics, frozen for inference\n");
    int n = 0;
    for (int i = 0; i < e->m->tensors.len; i++) {
        const Tensor *t = e->m->tensors.items[i];
        if (t->frozen) {
            decl(e, e->real, t->cname, t, false, line_ref(e, t));
            n++;
        }
    }
    if (!n)
        out(e, 1, "char none;   // this model has no batch statistics\n");
    out(e, 0, "} %s_stats;\n\n", id);
}

static void struct_infer_ws(E *e, const char *id) {
    out(e, 0, "typedef struct {   // inference activations for up to %d rows\n", e->chunk);
    for (int i = 0; i < e->m->ops.len; i++) {
        const Op *op = e->m->ops.items[i];
        if (runs_in_inference(op)) {
            decl(e, e->real, op->out->cname, op->out, true, line_ref(e, op->out));
            decl_aux(e, op, true);
        }
    }
    out(e, 0, "} %s_infer_ws;\n\n", id);
}

static void input_locals(E *e) {
    for (int i = 0; i < e->m->inputs.len; i++) {
        const Tensor *t = e->m->inputs.items[i];
        char *dims = arena_strdup("");
        for (int d = 1; d < t->rank; d++)
            dims = arena_printf("%s[%lld]", dims, (long long)t->shape[d]);
        if (t->rank == 1)
            out(e, 1, "const int32_t *%s = inputs[%d];\n", t->cname, i);
        else
            out(e, 1, "const int32_t (*%s)%s = (const int32_t (*)%s)inputs[%d];\n", t->cname, dims, dims, i);
        out(e, 1, "(void)%s;\n", t->cname);
    }
}

/* ---- functions ---- */

/* f64 builds serve finite differences: a hook after each named tensor lets
 * a checker nudge one element (index k of the acts table) mid-forward. */
static void fd_hook(E *e, const Tensor *t, int *named) {
    if (t->is_temp)
        return;
    if (e->opt->f64)
        out(e, 1, "NINJAC_FD_HOOK(%d, %s, %lld);\n", (*named), ptr(e, t), (long long)tensor_numel(t));
    (*named)++;
}

/* ---- fused groups (-O; see plan.c) ---- */

/* Loops over t's indices around a block; returns the indent inside it. */
static int open_block(E *e, int indent, const Tensor *t) {
    if (!t->rank) {
        out(e, indent, "{\n");
        return indent + 1;
    }
    for (int d = 0; d < t->rank; d++)
        out(e, indent + d, "for (int %s = 0; %s < %s; %s++)%s\n", IDX[d], IDX[d], dimsz(e, t, d), IDX[d],
            d == t->rank - 1 ? " {" : "");
    return indent + t->rank;
}

static void close_block(E *e, int inner) { out(e, inner - 1, "}\n"); }

static void group_header(E *e, const Stmt *first, const Stmt *last, const Tensor *space, const char *prefix) {
    int a = loc_line(first->loc), b = loc_line(last->loc);
    if (a > b) {   /* a backward group runs from its last line to its first */
        int t = a;
        a = b;
        b = t;
    }
    e->last_stmt = last;
    out(e, 1, "\n");
    out(e, 1, "// %s%s.ninja:%d%s%s, in one pass over %s:\n", prefix, e->m->src->name, a, a == b ? "" : "-",
        a == b ? "" : arena_printf("%d", b), shape_comment(e->m, space));
}

/* Inside a group's loop body, each spec line's statements open with it. */
static void body_line(E *e, int indent, const Stmt *s, const Stmt **last) {
    if (s == *last)
        return;
    *last = s;
    out(e, indent, "// :%d %s\n", loc_line(s->loc), spec_code(s));
}

static const Op *group_op(const E *e, const Group *g, int k) { return e->m->ops.items[g->first + k]; }
static const Grad *group_grad(const E *e, const Group *g, int k) { return e->bw->grads.items[g->first + k]; }

static void forward_group(E *e, const Group *g) {
    group_header(e, group_op(e, g, 0)->stmt, group_op(e, g, g->count - 1)->stmt, g->space, "");
    for (int k = 0; k < g->count; k++)
        if (op_info[group_op(e, g, k)->kind].family == REDUCE)
            reduce_init(e, group_op(e, g, k));
    int in = open_block(e, 1, g->space);
    const Stmt *last = NULL;
    for (int k = 0; k < g->count; k++) {
        const Op *op = group_op(e, g, k);
        body_line(e, in, op->stmt, &last);
        if (op_info[op->kind].family == REDUCE)
            reduce_accumulate(e, in, op);
        else
            elementwise_stmt(e, in, op);
    }
    close_block(e, in);
    for (int k = 0; k < g->count; k++)
        if (op_info[group_op(e, g, k)->kind].family == REDUCE)
            reduce_finish(e, group_op(e, g, k));
}

/* A gradient's first contribution in the group: "=", or a memset before
 * the loop when it does not write every element (see open_gradient). */
static const char *group_acc(E *e, const Grad *gr) {
    e->acc = "+=";
    if (!e->written[gr->target->id]) {
        e->written[gr->target->id] = true;
        if (grad_covers_target(gr))
            return "=";
        out(e, 1, "memset(%s, 0, sizeof(%s) * %lld);\n", gptr(e, gr->target), e->real,
            (long long)tensor_numel(gr->target));
    }
    return "+=";
}

static void backward_group(E *e, const Group *g) {
    group_header(e, group_grad(e, g, 0)->op->stmt, group_grad(e, g, g->count - 1)->op->stmt, g->space,
                 "backprop through ");
    const char **acc = arena_alloc(sizeof(char *) * (size_t)g->count);
    for (int k = 0; k < g->count; k++)
        acc[k] = group_acc(e, group_grad(e, g, k));
    int in = open_block(e, 1, g->space);
    const Stmt *last = NULL;
    for (int k = 0; k < g->count; k++) {
        const Grad *gr = group_grad(e, g, k);
        body_line(e, in, gr->op->stmt, &last);
        e->acc = acc[k];
        if (gr->op->kind == OP_CROSS_ENTROPY)
            cross_entropy_grad_stmt(e, in, gr);
        else if (op_info[gr->op->kind].family == REDUCE)
            reduce_grad_stmt(e, in, gr);
        else
            elementwise_grad_stmt(e, in, gr);
    }
    close_block(e, in);
}

/* Names of the gradients kept in registers: d<name>, unless that is taken
 * (a C keyword, a name of the spec, the function's own names, another
 * register's name). */
static bool name_taken(const E *e, const char *name, int given) {
    static const char *const words[] = {
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
        "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short",
        "signed", "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile",
        "while", "p", "a", "g", "s", "w", "i", "j", "k", "l", "m", "inputs", "rows", NULL};
    for (int i = 0; words[i]; i++)
        if (!strcmp(words[i], name))
            return true;
    for (int i = 0; i < given; i++)   /* the register names given out so far */
        if (e->dname[i] && !strcmp(e->dname[i], name))
            return true;
    return tensor_named(e->m, name);
}

static bool dname_taken(const void *e, const char *name) {
    return name_taken(e, name, ((const E *)e)->given);
}

static void name_gradient_locals(E *e) {
    e->dname = arena_alloc(sizeof(char *) * (size_t)e->m->tensors.len);
    for (int i = 0; i < e->m->tensors.len; i++) {
        const Tensor *t = e->m->tensors.items[i];
        if (!e->plan->dlocal[i])
            continue;
        e->given = i;
        e->dname[i] = free_c_name(e->m, arena_printf("d%s", t->cname), dname_taken, e);
    }
}

static void fn_forward(E *e, const char *id) {
    if (e->opt->f64)
        out(e, 0, "#ifndef NINJAC_FD_HOOK\n#define NINJAC_FD_HOOK(index, data, count) ((void)0)\n#endif\n\n");
    out(e, 0, "void %s_forward(const %s_params *restrict p, const int32_t *const *inputs, %s_acts *restrict a) {\n",
        id, id, id);
    input_locals(e);
    e->last_stmt = NULL;
    e->fused = e->plan->fused;
    int named = 0;
    for (int i = 0; i < e->m->ops.len;) {
        const Group *g = e->plan->fused ? e->plan->op_group[i] : NULL;
        int count = g ? g->count : 1;
        if (count > 1)
            forward_group(e, g);
        else
            forward_op(e, e->m->ops.items[i]);
        /* f64: a checker may nudge each named tensor. After a fused group the
         * nudge no longer reaches the group's later ops, so finite
         * differences of intermediates are taken at -O0 (tests/fd); -O
         * checks the params' gradients only. */
        for (int k = 0; k < count; k++)
            fd_hook(e, ((Op *)e->m->ops.items[i + k])->out, &named);
        i += count;
    }
    e->fused = false;
    out(e, 0, "}\n\n");
}

static void fn_backward(E *e, const char *id) {
    out(e, 0, "void %s_backward(const %s_params *restrict p, const int32_t *const *inputs, const %s_acts *restrict a,\n"
              "    %s_grads *restrict g) {\n", id, id, id, id);
    out(e, 1, "(void)p;\n    (void)a;\n");
    input_locals(e);
    if (e->opt->opt_level == 0)
        out(e, 1, "memset(g, 0, sizeof *g);\n");
    out(e, 1, "g->dloss = %s;\n", lit(e, 1));
    e->written = arena_alloc(sizeof(bool) * (size_t)e->m->tensors.len);
    e->last_stmt = NULL;
    e->fused = e->plan->fused;
    for (int i = 0; i < e->bw->grads.len;) {
        const Group *g = e->plan->fused ? e->plan->grad_group[i] : NULL;
        int count = g ? g->count : 1;
        if (count > 1)
            backward_group(e, g);
        else
            backward_grad(e, e->bw->grads.items[i]);
        i += count;
    }
    e->fused = false;
    out(e, 0, "}\n\n");
}

static void fn_sgd(E *e, const char *id) {
    out(e, 0, "void %s_sgd(%s_params *p, const %s_grads *g, double lr) {\n", id, id, id);
    for (int i = 0; i < e->m->params.len; i++) {
        const Tensor *t = e->m->params.items[i];
        if (!t->needs_grad)
            continue;
        out(e, 1, "for (int i = 0; i < %lld; i++)\n", (long long)tensor_numel(t));
        out(e, 2, "(%s)[i] += (%s)-lr * (%s)[i];\n", ptr(e, t), e->real, gptr(e, t));
    }
    out(e, 0, "}\n\n");
}

static bool optional_input_guard(E *e, const Op *op) {
    char *cond = NULL;
    for (int k = 1; k < e->m->inputs.len; k++)
        if (op->out->input_deps & (1u << k)) {
            const Tensor *t = e->m->inputs.items[k];
            cond = cond ? arena_printf("%s && %s", cond, t->cname) : arena_strdup(t->cname);
        }
    if (cond)
        out(e, 1, "if (%s) {   // needs %s\n", cond, cond);
    return cond != NULL;
}

static void fn_infer(E *e, const char *id) {
    e->infer = true;
    out(e, 0, "/* Inference on rows <= %d rows, batch statistics frozen in s. Stops before\n", e->chunk);
    out(e, 0, " * op `stop` (calibration needs the input of a statistic), or runs all for -1. */\n");
    out(e, 0, "static void infer_upto(const %s_params *p, const %s_stats *s, const int32_t *const *inputs, int rows,\n"
              "                       %s_infer_ws *w, int stop) {\n", id, id, id);
    out(e, 1, "(void)p;\n    (void)s;\n    (void)stop;\n");
    input_locals(e);
    e->last_stmt = NULL;
    for (int i = 0; i < e->m->ops.len; i++) {
        const Op *op = e->m->ops.items[i];
        if (op->batch_reduction && op->out->frozen)
            out(e, 1, "if (stop == %d)\n        return;   // %s is calibrated from here\n", op->id, op->out->name);
        if (!runs_in_inference(op))
            continue;
        bool guarded = optional_input_guard(e, op);
        forward_op(e, op);
        if (guarded)
            out(e, 1, "}\n");
    }
    out(e, 0, "}\n\n");
    out(e, 0, "void %s_infer(const %s_params *p, const %s_stats *s, const int32_t *const *inputs, int rows,\n"
              "                %s_infer_ws *w) {\n", id, id, id, id);
    out(e, 1, "infer_upto(p, s, inputs, rows, w, -1);\n}\n\n");
    e->infer = false;
}

static const char *flat_index(const Tensor *t, const char *const *idx) {
    char *s = arena_strdup("0");
    for (int d = 0; d < t->rank; d++)
        s = d == 0 ? arena_strdup(idx[0]) : arena_printf("(%s) * %lld + %s", s, (long long)t->shape[d], idx[d]);
    return s;
}

/* Accumulates one chunk of a statistic's input in double: pass 0 sums x,
 * pass 1 (var) sums (x - mean)^2. */
static void fn_accumulate(E *e, const char *id, const Op *op) {
    const Tensor *x = op->in[0], *y = op->out;
    const char *yi[MAX_RANK];
    reduced_index(op, IDX, yi);
    const char *k = flat_index(y, yi);
    out(e, 0, "static void accumulate_%s(const %s_infer_ws *w, int rows, double *acc, const double *mean, int pass) {\n",
        y->cname, id);
    out(e, 1, "(void)mean;\n");
    int in = loops(e, 1, x, 0);
    out(e, in, "acc[%s] += pass == 0 ? %s : (%s - mean[%s]) * (%s - mean[%s]);\n", k, ref(e, x, IDX),
        ref(e, x, IDX), k, ref(e, x, IDX), k);
    out(e, 0, "}\n\n");
}

static void fn_calibrate(E *e, const char *id) {
    e->infer = true;
    for (int i = 0; i < e->m->ops.len; i++) {
        const Op *op = e->m->ops.items[i];
        if (op->batch_reduction && op->out->frozen)
            fn_accumulate(e, id, op);
    }
    out(e, 0, "/* Computes every batch statistic over `rows` rows (e.g. the whole training\n"
              " * set) in dependency order, streaming chunks through w. Returns -1 if out\n"
              " * of memory. */\n");
    out(e, 0, "int %s_calibrate(const %s_params *p, const int32_t *const *inputs, int64_t rows, %s_stats *s,\n"
              "                 %s_infer_ws *w) {\n", id, id, id, id);
    out(e, 1, "(void)p;\n    (void)inputs;\n    (void)s;\n    (void)w;\n    (void)rows;\n");
    e->last_stmt = NULL;
    for (int i = 0; i < e->m->ops.len; i++) {
        const Op *op = e->m->ops.items[i];
        if (!op->out->frozen)
            continue;
        if (!op->batch_reduction) {
            forward_op(e, op);
            continue;
        }
        const Tensor *y = op->out;
        int64_t n = tensor_numel(y);
        open_stmt(e, op->stmt, "");
        out(e, 1, "// %s over all rows\n", op_summary(op));
        out(e, 1, "{\n");
        out(e, 2, "double *acc = calloc(%lld, sizeof(double)), *mean = calloc(%lld, sizeof(double));\n",
            (long long)n, (long long)n);
        out(e, 2, "if (!acc || !mean) {\n            free(acc);\n            free(mean);\n            return -1;\n        }\n");
        out(e, 2, "for (int pass = 0; pass < %d; pass++) {\n", op->kind == OP_VAR ? 2 : 1);
        out(e, 3, "for (int64_t r0 = 0; r0 < rows; r0 += %d) {\n", e->chunk);
        out(e, 4, "int n = rows - r0 < %d ? (int)(rows - r0) : %d;\n", e->chunk, e->chunk);
        out(e, 4, "const int32_t *chunk[%d];\n", e->m->inputs.len);
        for (int k = 0; k < e->m->inputs.len; k++) {
            const Tensor *t = e->m->inputs.items[k];
            out(e, 4, "chunk[%d] = inputs[%d] ? inputs[%d] + r0 * %lld : NULL;\n", k, k, k,
                (long long)(tensor_numel(t) / t->shape[0]));
        }
        out(e, 4, "infer_upto(p, s, chunk, n, w, %d);\n", op->id);
        out(e, 4, "accumulate_%s(w, n, acc, mean, pass);\n", y->cname);
        out(e, 3, "}\n");
        if (op->kind == OP_VAR) {
            out(e, 3, "for (int k = 0; k < %lld; k++) {\n", (long long)n);
            out(e, 4, "if (pass == 0)\n                    mean[k] = acc[k] / %s;\n", scalar(e, op->c));
            out(e, 4, "else\n                    (%s)[k] = (%s)(acc[k] / (%s%s));\n", ptr(e, y), e->real,
                scalar(e, op->c), op->unbiased ? " - 1" : "");
            out(e, 4, "acc[k] = 0;\n");
            out(e, 3, "}\n");
        }
        out(e, 2, "}\n");
        if (op->kind != OP_VAR)
            out(e, 2, "for (int k = 0; k < %lld; k++)\n            (%s)[k] = (%s)(acc[k]%s);\n", (long long)n,
                ptr(e, y), e->real, op->kind == OP_MEAN ? arena_printf(" / %s", scalar(e, op->c)) : "");
        out(e, 2, "free(acc);\n        free(mean);\n");
        out(e, 1, "}\n");
    }
    out(e, 1, "return 0;\n}\n\n");
    e->infer = false;
}

static void fn_check_inputs(E *e, const char *id) {
    out(e, 0, "/* Index of the first value outside its input's range (*which: the input), or -1. */\n");
    out(e, 0, "int64_t %s_check_inputs(const int32_t *const *inputs, int64_t rows, int *which) {\n", id);
    for (int k = 0; k < e->m->inputs.len; k++) {
        const Tensor *t = e->m->inputs.items[k];
        out(e, 1, "for (int64_t i = 0; inputs[%d] && i < rows * %lld; i++)\n", k,
            (long long)(tensor_numel(t) / t->shape[0]));
        out(e, 2, "if (inputs[%d][i] < 0 || inputs[%d][i] >= %lld) {\n", k, k, (long long)t->bound);
        out(e, 3, "*which = %d;\n            return i;\n        }\n", k);
    }
    out(e, 1, "(void)inputs;\n    (void)rows;\n    (void)which;\n    return -1;\n}\n\n");
}

static void table_tensor(E *e, const Tensor *t, const char *type, const char *field) {
    char *dims = arena_strdup("");
    for (int d = 0; d < t->rank; d++)
        dims = arena_printf("%s%s%lld", dims, d ? ", " : "", (long long)t->shape[d]);
    out(e, 1, "{%s, %d, {%s}, offsetof(%s, %s), %s}", c_string(t->name), t->rank, dims, type, field,
        c_string(t->stmt ? origin(e, t->stmt) : ""));
}

static const char *init_text(const Model *m, const Stmt *s) {
    return arena_strndup(m->src->text + s->value->loc.begin, (size_t)(s->value->loc.end - s->value->loc.begin));
}

static void descriptor(E *e, const char *id) {
    const Model *m = e->m;
    static const char *const dists[] = {"NJ_INIT_CONST", "NJ_INIT_RANDN", "NJ_INIT_UNIFORM"};
    int most_steps = 0;
    for (int i = 0; i < m->params.len; i++)
        most_steps = m->inits[i].nsteps > most_steps ? m->inits[i].nsteps : most_steps;
    out(e, 0, "_Static_assert(NJ_MAX_INIT_STEPS >= %d, \"an init below has %d steps\");\n", most_steps, most_steps);
    out(e, 0, "static const NjParam params[] = {\n");
    for (int i = 0; i < m->params.len; i++) {
        const Tensor *t = m->params.items[i];
        const Init *in = &m->inits[i];
        out(e, 0, "    {");
        table_tensor(e, t, arena_printf("%s_params", id), t->cname);
        char *steps = arena_strdup("");
        for (int k = 0; k < in->nsteps; k++)
            steps = arena_printf("%s%s{'%c', %.17g}", steps, k ? ", " : "", init_step_code(&in->steps[k]),
                                 in->steps[k].value);
        out(e, 0, ", %s, %d, %.17g, %d, {%s}, %s},\n", dists[in->dist], in->named_generator, in->value,
            in->nsteps, in->nsteps ? steps : "{0, 0}", c_string(init_text(m, t->stmt)));
    }
    out(e, 0, "};\n\nstatic const NjInput inputs_table[] = {\n");
    for (int i = 0; i < m->inputs.len; i++) {
        const Tensor *t = m->inputs.items[i];
        char *dims = arena_strdup("");
        for (int d = 0; d < t->rank; d++)
            dims = arena_printf("%s%s%lld", dims, d ? ", " : "", (long long)t->shape[d]);
        out(e, 1, "{%s, %d, {%s}, %lld},\n", c_string(t->name), t->rank, dims, (long long)t->bound);
    }
    int nacts = 0, ngrads = 0, nstats = 0;
    out(e, 0, "};\n\nstatic const NjTensor acts[] = {\n");
    for (int i = 0; i < m->ops.len; i++) {
        const Tensor *t = ((Op *)m->ops.items[i])->out;
        if (!t->is_temp) {
            table_tensor(e, t, arena_printf("%s_acts", id), t->cname);
            out(e, 0, ",\n");
            nacts++;
        }
    }
    out(e, 0, "};\n\nstatic const NjTensor grads[] = {\n");
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < m->tensors.len; i++) {
            const Tensor *t = m->tensors.items[i];
            bool kept = pass == 0 ? t->kind == T_PARAM && t->needs_grad
                                  : t->kind == T_ACT && t->needs_grad && !t->is_temp && e->opt->opt_level == 0;
            if (kept) {
                table_tensor(e, t, arena_printf("%s_grads", id), arena_printf("d%s", t->cname));
                out(e, 0, ",\n");
                ngrads++;
            }
        }
    out(e, 0, "};\n\nstatic const NjTensor stats[] = {\n");
    for (int i = 0; i < m->tensors.len; i++) {
        const Tensor *t = m->tensors.items[i];
        if (t->frozen) {
            table_tensor(e, t, arena_printf("%s_stats", id), t->cname);
            out(e, 0, ",\n");
            nstats++;
        }
    }
    out(e, 0, "    {NULL, 0, {0}, 0, NULL}   // keeps the array non-empty\n};\n\n");
    out(e, 0, "static void forward_any(const void *p, const int32_t *const *in, void *a) { %s_forward(p, in, a); }\n", id);
    out(e, 0, "static void backward_any(const void *p, const int32_t *const *in, const void *a, void *g) {\n"
              "    %s_backward(p, in, a, g);\n}\n", id);
    out(e, 0, "static void sgd_any(void *p, const void *g, double lr) { %s_sgd(p, g, lr); }\n", id);
    out(e, 0, "static void infer_any(const void *p, const void *s, const int32_t *const *in, int rows, void *w) {\n"
              "    %s_infer(p, s, in, rows, w);\n}\n", id);
    out(e, 0, "static int calibrate_any(const void *p, const int32_t *const *in, int64_t rows, void *s, void *w) {\n"
              "    return %s_calibrate(p, in, rows, s, w);\n}\n\n", id);
    char *dims = arena_strdup("");
    for (int i = 0; i < m->dims.len; i++) {
        const Dim *d = m->dims.items[i];
        dims = arena_printf("%s%s%s=%lld", dims, i ? " " : "", d->name, (long long)d->value);
    }
    bool logits = m->logits && !m->logits->frozen;
    out(e, 0, "const NinjacModel %s_model = {\n", id);
    out(e, 1, ".name = %s,\n    .spec_file = %s,\n    .dims = %s,\n", c_string(m->src->name),
        c_string(m->src->path), c_string(dims));
    out(e, 1, ".opt_level = %d,\n    .elem_size = sizeof(%s),\n    .batch = %lld,\n", e->opt->opt_level, e->real,
        (long long)m->batch);
    out(e, 1, ".nparams = %d, .params = params,\n    .ninputs = %d, .inputs = inputs_table,\n", m->params.len,
        m->inputs.len);
    out(e, 1, ".nacts = %d, .acts = acts,\n    .ngrads = %d, .grads = grads,\n", nacts, ngrads);
    out(e, 1, ".params_bytes = sizeof(%s_params), .acts_bytes = sizeof(%s_acts), .grads_bytes = sizeof(%s_grads),\n",
        id, id, id);
    out(e, 1, ".loss_offset = offsetof(%s_acts, %s),\n", id, m->loss->cname);
    out(e, 1, ".forward = forward_any, .backward = backward_any, .sgd = sgd_any,\n");
    out(e, 1, ".nstats = %d, .stats = stats, .stats_bytes = sizeof(%s_stats),\n", nstats, id);
    out(e, 1, ".infer_chunk = %d, .infer_bytes = sizeof(%s_infer_ws),\n", e->chunk, id);
    out(e, 1, ".infer_loss_offset = offsetof(%s_infer_ws, %s),\n", id, m->loss->cname);
    if (logits)
        out(e, 1, ".infer_logits_offset = offsetof(%s_infer_ws, %s), .logits_cols = %lld,\n", id,
            m->logits->cname, (long long)m->logits->shape[1]);
    else
        out(e, 1, ".infer_logits_offset = -1, .logits_cols = 0,\n");
    out(e, 1, ".infer = infer_any, .calibrate = calibrate_any,\n");
    out(e, 1, ".check_inputs = %s_check_inputs,\n};\n", id);
}

/* ---- files ---- */

/* Rows per inference chunk: a power of two keeping the workspace near 8 MB. */
static int choose_chunk(const E *e) {
    int64_t row_bytes = 0;
    for (int i = 0; i < e->m->tensors.len; i++) {
        const Tensor *t = e->m->tensors.items[i];
        if (t->kind == T_ACT && t->rank && t->batch[0])
            row_bytes += 2 * (tensor_numel(t) / t->shape[0]) * (e->opt->f64 ? 8 : 4);
    }
    int chunk = 1024;
    while (chunk > 1 && row_bytes * chunk > (8 << 20))
        chunk /= 2;
    return chunk;
}

static void header_comment(E *e, const char *file) {
    const Model *m = e->m;
    out(e, 0, "/* %s - generated by ninjac from %s; do not edit.\n", file, m->src->path);
    out(e, 0, " * Mode: -O%d, %s. Dims:", e->opt->opt_level, e->real);
    for (int i = 0; i < m->dims.len; i++) {
        const Dim *d = m->dims.items[i];
        out(e, 0, " %s=%lld%s", d->name, (long long)d->value, d->overridden ? " (-D)" : "");
    }
    out(e, 0, "\n * The batch dim is %s (%lld rows in training, any number in inference). */\n", m->batch_dim,
        (long long)m->batch);
}

static void emit_header(E *e, const char *id) {
    header_comment(e, arena_printf("%s.h", e->m->src->name));
    out(e, 0, "#ifndef NINJAC_GENERATED_%s_H\n#define NINJAC_GENERATED_%s_H\n\n", id, id);
    out(e, 0, "#include <stdint.h>\n\n#include \"ninjac_model.h\"\n\n");
    struct_params(e, id);
    struct_acts(e, id);
    struct_grads(e, id);
    struct_stats(e, id);
    struct_infer_ws(e, id);
    out(e, 0, "void %s_forward(const %s_params *p, const int32_t *const *inputs, %s_acts *a);\n", id, id, id);
    out(e, 0, "void %s_backward(const %s_params *p, const int32_t *const *inputs, const %s_acts *a, %s_grads *g);\n",
        id, id, id, id);
    out(e, 0, "void %s_sgd(%s_params *p, const %s_grads *g, double lr);\n", id, id, id);
    out(e, 0, "void %s_infer(const %s_params *p, const %s_stats *s, const int32_t *const *inputs, int rows,\n"
              "                %s_infer_ws *w);\n", id, id, id, id);
    out(e, 0, "int %s_calibrate(const %s_params *p, const int32_t *const *inputs, int64_t rows, %s_stats *s,\n"
              "                 %s_infer_ws *w);\n", id, id, id, id);
    out(e, 0, "int64_t %s_check_inputs(const int32_t *const *inputs, int64_t rows, int *which);\n\n", id);
    out(e, 0, "extern const NinjacModel %s_model;\n\n#endif\n", id);
}

/* -O: declaring the vector versions of the math functions (glibc's libmvec,
 * accurate to 4 ulp) lets the compiler vectorise the elementwise loops.
 * -O0 keeps the scalar calls, whose results the hand-written reference
 * reproduces bit for bit. */
static void vector_math(E *e) {
    out(e, 0, "#if defined(__GNUC__) && defined(__x86_64__) && !defined(NINJAC_SCALAR_MATH)\n");
    for (int f = 0; f < MATH_COUNT; f++) {
        const MathInfo *fn = &math_info[f];
        if (fn->simd_arity)
            out(e, 0, "__attribute__((simd(\"notinbranch\"))) %s %s(%s%s%s);\n", e->real, fn->name[!e->opt->f64],
                e->real, fn->simd_arity == 2 ? ", " : "", fn->simd_arity == 2 ? e->real : "");
    }
    out(e, 0, "#endif\n\n");
}

/* The op calls a math function of runtime/ninjac_kernels.h's own. */
static bool uses_own_math(OpKind kind) {
    for (int f = 0; f < MATH_COUNT; f++)
        if ((op_info[kind].math & (1u << f)) && math_info[f].own)
            return true;
    return false;
}

static void emit_source(E *e, const char *id) {
    header_comment(e, arena_printf("%s.c", e->m->src->name));
    out(e, 0, "#include \"%s.h\"\n\n#include <cblas.h>\n#include <math.h>\n#include <stddef.h>\n"
              "#include <stdlib.h>\n#include <string.h>\n\n", e->m->src->name);
    bool kernels = false;
    for (int i = 0; i < e->m->ops.len; i++) {
        const Op *op = e->m->ops.items[i];
        kernels |= (op->kind == OP_MATMUL && (own_matmul(e, op, -1) || own_matmul(e, op, 0) || own_matmul(e, op, 1))) ||
                   (e->fast_math && uses_own_math(op->kind));
    }
    if (kernels)
        out(e, 0, "#include \"ninjac_kernels.h\"\n\n");
    if (e->opt->opt_level > 0)
        vector_math(e);
    fn_forward(e, id);
    fn_backward(e, id);
    fn_sgd(e, id);
    fn_infer(e, id);
    fn_calibrate(e, id);
    fn_check_inputs(e, id);
    descriptor(e, id);
}

void emit_c_text(const Model *m, const Backward *bw, const Plan *plan, const EmitOptions *opt, char *text[2],
                 size_t len[2]) {
    E e = {.m = m, .bw = bw, .plan = plan, .opt = opt, .real = opt->f64 ? "double" : "float",
           .fast_math = plan->fused && !opt->f64};
    name_gradient_locals(&e);
    e.chunk = choose_chunk(&e);
    const char *id = c_identifier(m->src->name);
    for (int f = 0; f < 2; f++) {
        e.out = open_memstream(&text[f], &len[f]);
        if (!e.out) {
            fprintf(stderr, "ninjac: out of memory\n");
            exit(1);
        }
        if (f == 0)
            emit_header(&e, id);
        else
            emit_source(&e, id);
        fclose(e.out);
    }
}

int emit_c(const Model *m, const Backward *bw, const Plan *plan, const EmitOptions *opt) {
    char *text[2];
    size_t len[2];
    emit_c_text(m, bw, plan, opt, text, len);
    const char *paths[2] = {arena_printf("%s/%s.h", opt->outdir, m->src->name),
                            arena_printf("%s/%s.c", opt->outdir, m->src->name)};
    /* Both temporaries are written and synced before either is renamed:
     * a failure (a full disk, a file size limit) leaves both old files. */
    OutFile f[2];
    char err[2 * FILES_PATH_MAX];
    int rc = 0, opened = 0;
    for (int k = 0; k < 2 && rc == 0; k++) {
        rc = out_open(&f[k], paths[k], err, sizeof err);
        opened += rc == 0;
        if (rc == 0 && len[k])
            (void)fwrite(text[k], 1, len[k], f[k].fp);   /* out_sync sees any error */
        if (rc == 0)
            rc = out_sync(&f[k], err, sizeof err);
    }
    for (int k = 0; k < 2 && rc == 0; k++)
        rc = out_commit(&f[k], err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "ninjac: cannot write %s\n", err);
        for (int k = 0; k < opened; k++)
            out_abort(&f[k]);
    }
    for (int k = 0; k < 2; k++)
        free(text[k]);
    return rc;
}
