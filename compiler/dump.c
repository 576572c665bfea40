/* dump.c - the IR as text after any pass (--dump=parse,shape,grad), for
 * people and for golden tests. */
#include "ninjac.h"

static void dump_node(FILE *out, const Node *n) {
    switch (n->kind) {
    case N_NUM: fprintf(out, n->is_int ? "%.0f" : "%g", n->num); return;
    case N_NAME: fputs(n->name, out); return;
    case N_BINARY:
        fputc('(', out);
        dump_node(out, n->lhs);
        fprintf(out, " %s ", binop_text[n->op]);
        dump_node(out, n->rhs);
        fputc(')', out);
        return;
    case N_NEG: fputs("(-", out); dump_node(out, n->lhs); fputc(')', out); return;
    case N_ATTR: dump_node(out, n->lhs); fprintf(out, ".%s", n->name); return;
    case N_KWARG: fprintf(out, "%s=", n->name); dump_node(out, n->lhs); return;
    case N_ELLIPSIS: fputs("...", out); return;
    case N_STR: fprintf(out, "'%s'", n->name); return;
    case N_SLICE:
        for (int i = 0; i < 3; i++) {
            if (i && (i < 2 || n->args[2]))
                fputc(':', out);
            if (n->args[i])
                dump_node(out, n->args[i]);
        }
        return;
    case N_CALL:
    case N_INDEX:
    case N_LIST:
        if (n->kind != N_LIST)
            dump_node(out, n->lhs);
        fputc(n->kind == N_CALL ? '(' : '[', out);
        for (int i = 0; i < n->nargs; i++) {
            if (i)
                fputs(", ", out);
            dump_node(out, n->args[i]);
        }
        fputc(n->kind == N_CALL ? ')' : ']', out);
        return;
    }
}

void dump_ast(FILE *out, const Program *prog) {
    static const char *const kinds[] = {"dim", "input", "param", "assign", "unpack", "expr", "for", "index_assign", "error"};
    for (int i = 0; i < prog->stmts.len; i++) {
        const Stmt *s = prog->stmts.items[i];
        fprintf(out, "%d: %s %s", loc_line(s->loc), kinds[s->kind], s->name);
        if (s->ndims) {
            fputs(" [", out);
            for (int d = 0; d < s->ndims; d++) {
                if (d)
                    fputs(", ", out);
                dump_node(out, s->dims[d]);
            }
            fputc(']', out);
        }
        if (s->bound) {
            fputs(" < ", out);
            dump_node(out, s->bound);
        }
        if (s->value) {
            fputs(" = ", out);
            dump_node(out, s->value);
        }
        fputc('\n', out);
    }
}

static void dump_tensor(FILE *out, const Tensor *t) {
    fprintf(out, "%s %s", t->name, shape_str(t));
}

void dump_model(FILE *out, const Model *m) {
    for (int i = 0; i < m->dims.len; i++) {
        const Dim *d = m->dims.items[i];
        fprintf(out, "dim %s = %lld%s\n", d->name, (long long)d->value, d->overridden ? " (-D)" : "");
    }
    for (int i = 0; i < m->inputs.len; i++) {
        const Tensor *t = m->inputs.items[i];
        fprintf(out, "input ");
        dump_tensor(out, t);
        fprintf(out, " < %lld\n", (long long)t->bound);
    }
    for (int i = 0; i < m->params.len; i++) {
        const Tensor *t = m->params.items[i];
        const Init *in = &m->inits[i];
        fprintf(out, "param ");
        dump_tensor(out, t);
        if (in->dist == INIT_CONST)
            fprintf(out, " = %g", in->value);
        else
            fprintf(out, " = %s(%s)", in->dist == INIT_RANDN ? "randn" : "rand",
                    in->named_generator ? arena_printf("generator=%s", m->generator) : "");
        for (int k = 0; k < in->nsteps; k++)
            if (in->steps[k].reversed)
                fprintf(out, " then %g %s x", in->steps[k].value, binop_text[in->steps[k].op]);
            else
                fprintf(out, " then x %s %g", binop_text[in->steps[k].op], in->steps[k].value);
        fprintf(out, "\n");
    }
    for (int i = 0; i < m->ops.len; i++) {
        const Op *op = m->ops.items[i];
        fprintf(out, "%d: ", loc_line(op->stmt->loc));
        dump_tensor(out, op->out);
        fprintf(out, " = %s(", op_info[op->kind].name);
        for (int k = 0; k < op->nin; k++) {
            if (k)
                fputs(", ", out);
            dump_tensor(out, op->in[k]);
        }
        if (*mask_constant(op))
            fputs(mask_constant(op), out);
        else if (op_info[op->kind].family == EW1 && op->c.value)
            fprintf(out, ", %g", op->c.value);
        if (op_info[op->kind].family == REDUCE)
            fprintf(out, ", axes=0x%x%s", op->axes, op->keepdim ? ", keepdim" : "");
        fputc(')', out);
        if (op->out->frozen)
            fputs("  # batch statistic", out);
        if (op->rewrite_first)
            fprintf(out, "  # rewritten: %s from line %d", op_info[op->kind].name, loc_line(op->rewrite_first->loc));
        fputc('\n', out);
    }
}

void dump_backward(FILE *out, const Model *m, const Backward *bw) {
    (void)m;
    for (int i = 0; i < bw->grads.len; i++) {
        const Grad *g = bw->grads.items[i];
        fprintf(out, "%d: d%s %s += %s'(d%s %s)", loc_line(g->op->stmt->loc), g->target->name,
                shape_str(g->target), op_info[g->op->kind].name, g->op->out->name, shape_str(g->op->out));
        if (g->reduce_axes)
            fprintf(out, " summed over axes 0x%x", g->reduce_axes);
        fputc('\n', out);
    }
}

/* The groups of -O: which ops (or gradient contributions) share one loop
 * nest, and which temporaries live in registers. */
void dump_plan(FILE *out, const Model *m, const Backward *bw, const Plan *plan) {
    if (!plan->fused) {
        fputs("no plan: -O0 emits every op on its own\n", out);
        return;
    }
    for (int pass = 0; pass < 2; pass++) {
        const Vec *groups = pass == 0 ? &plan->fwd : &plan->bwd;
        fputs(pass == 0 ? "forward\n" : "backward\n", out);
        for (int i = 0; i < groups->len; i++) {
            const Group *g = groups->items[i];
            if (g->space)
                fprintf(out, "  loop over %s:", shape_str(g->space));
            else
                fputs("  own code:", out);
            for (int k = g->first; k < g->first + g->count; k++) {
                const Tensor *t = pass == 0 ? ((Op *)m->ops.items[k])->out : ((Grad *)bw->grads.items[k])->target;
                bool reg = pass == 0 ? plan->local[t->id] : plan->dlocal[t->id];
                const Tensor *alias = pass == 0 ? plan->valias[t->id] : plan->galias[t->id];
                fprintf(out, " %s%s%s%s", pass ? "d" : "", t->name, reg ? " (register)" : "",
                        pass == 0 && plan->recomputed[t->id] ? " (recomputed by the backward)" : "");
                if (alias)
                    fprintf(out, " (%s%s's array%s)", pass ? "d" : "", alias->name,
                            pass && plan->gin_place[t->id] ? ", in place" : "");
                if (pass == 0 && plan->bias_add[k])
                    fprintf(out, " (no array: computed by %s's add)", plan->bias_add[k]->out->name);
                if (pass == 0 && plan->product_of[k]) {
                    const Op *add = m->ops.items[k];
                    const Tensor *bias = add->in[add->in[0] == plan->product_of[k]->out];
                    fprintf(out, " (%s + %s, as the kernels store the product)", plan->product_of[k]->out->name,
                            bias->name);
                }
            }
            if (pass == 1 && g->bn_sums)
                fprintf(out, " + column sums of d%s", g->bn_sums->op->out->name);
            fputc('\n', out);
        }
    }
}
