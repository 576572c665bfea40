/* emit_step.c - the training step: the forward and backward functions
 * (op by op at -O0, fused groups with register locals at -O; see plan.c)
 * and SGD. */
#include "emit.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

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
    for (int k = 0; k < g->count; k++) {
        const Op *op = group_op(e, g, k);
        if (op_info[op->kind].family == REDUCE)
            reduce_init(e, op);
        else if (op->kind == OP_BATCHNORM) {   /* the group's first op (plan.c) */
            rewrite_note(e, op);
            forward_batchnorm_prologue(e, op);
        }
    }
    int in = open_block(e, 1, g->space);
    const Stmt *last = NULL;
    for (int k = 0; k < g->count; k++) {
        const Op *op = group_op(e, g, k);
        body_line(e, in, op->stmt, &last);
        if (op_info[op->kind].family == REDUCE)
            reduce_accumulate(e, in, op);
        else if (op->kind == OP_BATCHNORM)
            forward_batchnorm_stmt(e, in, op);
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
    const Grad *lastgr = g->bn_sums ? g->bn_sums : group_grad(e, g, g->count - 1);
    group_header(e, group_grad(e, g, 0)->op->stmt, lastgr->op->stmt, g->space, "backprop through ");
    const Grad *bn = group_grad(e, g, 0)->op->kind == OP_BATCHNORM ? group_grad(e, g, 0) : NULL;
    if (bn)
        grad_note(e, bn);
    const char **acc = arena_alloc(sizeof(char *) * (size_t)g->count);
    bool *alias = arena_alloc(sizeof(bool) * (size_t)g->count);
    int computed = 0;
    for (int k = 0; k < g->count; k++) {
        alias[k] = gradient_is_alias(e, group_grad(e, g, k));
        acc[k] = alias[k] ? NULL : group_acc(e, group_grad(e, g, k));
        computed += !alias[k];
    }
    if (!computed && !g->bn_sums)
        return;
    if (g->bn_sums)
        batchnorm_sums_init(e, g->bn_sums);
    if (bn)
        batchnorm_grad_prologue(e, bn, g->bn_sums_before);
    int in = open_block(e, 1, g->space);
    const Stmt *last = NULL;
    for (int k = 0; k < g->count; k++) {
        const Grad *gr = group_grad(e, g, k);
        if (alias[k])
            continue;
        body_line(e, in, gr->op->stmt, &last);
        e->acc = acc[k];
        if (gr->op->kind == OP_CROSS_ENTROPY)
            cross_entropy_grad_stmt(e, in, gr);
        else if (gr->op->kind == OP_BATCHNORM)
            batchnorm_grad_stmt(e, in, gr);
        else if (op_info[gr->op->kind].family == REDUCE)
            reduce_grad_stmt(e, in, gr);
        else
            elementwise_grad_stmt(e, in, gr);
    }
    if (g->bn_sums) {
        body_line(e, in, g->bn_sums->op->stmt, &last);
        batchnorm_sums_stmt(e, in, g->bn_sums);
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

void name_gradient_locals(E *e) {
    e->dname = arena_alloc(sizeof(char *) * (size_t)e->m->tensors.len);
    for (int i = 0; i < e->m->tensors.len; i++) {
        const Tensor *t = e->m->tensors.items[i];
        if (!e->plan->dlocal[i])
            continue;
        e->given = i;
        e->dname[i] = free_c_name(e->m, arena_printf("d%s", t->cname), dname_taken, e);
    }
}

void fn_forward(E *e, const char *id) {
    if (e->opt->f64)
        out(e, 0, "#ifndef NINJAC_FD_HOOK\n#define NINJAC_FD_HOOK(index, data, count) ((void)0)\n#endif\n\n");
    out(e, 0, "void %s_forward(const %s_params *restrict p, const int32_t *const *inputs, %s_acts *restrict a) {\n",
        id, id, id);
    FILE *saved = body_begin(e);
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
    body_end(e, saved, NULL, 0, true);
    out(e, 0, "}\n\n");
}

void fn_backward(E *e, const char *id) {
    out(e, 0, "void %s_backward(const %s_params *restrict p, const int32_t *const *inputs, const %s_acts *restrict a,\n"
              "    %s_grads *restrict g) {\n", id, id, id, id);
    FILE *saved = body_begin(e);
    if (e->opt->opt_level == 0)
        out(e, 1, "memset(g, 0, sizeof *g);\n");
    out(e, 1, "g->dloss = %s;\n", lit(e, 1));
    e->written = arena_alloc(sizeof(bool) * (size_t)e->m->tensors.len);
    e->last_stmt = NULL;
    e->fused = e->plan->fused;
    e->backward = true;
    for (int i = 0; i < e->bw->grads.len;) {
        const Group *g = e->plan->fused ? e->plan->grad_group[i] : NULL;
        int count = g ? g->count : 1;
        if (count > 1 || (g && (g->bn_sums || g->bn_sums_before)))
            backward_group(e, g);
        else
            backward_grad(e, e->bw->grads.items[i]);
        i += count;
    }
    e->fused = false;
    e->backward = false;
    e->const_acts = true;
    body_end(e, saved, (const char *const[]){"p", "a"}, 2, true);
    e->const_acts = false;
    out(e, 0, "}\n\n");
}

void fn_sgd(E *e, const char *id) {
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
