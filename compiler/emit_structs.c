/* emit_structs.c - the model's structs (params, acts, grads, stats, the
 * inference workspace) and the NinjacModel descriptor the runtime reads:
 * tensors by offset, param inits, inputs, functions. */
#include "emit.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

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

const char *shape_comment(const Model *m, const Tensor *t) {
    char *s = arena_strdup("[");
    for (int d = 0; d < t->rank; d++)
        s = arena_printf("%s%s%s%lld", s, d ? ", " : "", t->batch[d] ? arena_printf("%s=", m->batch_dim) : "",
                         (long long)t->shape[d]);
    return arena_printf("%s]", s);
}

void decl_field(E *e, const char *type, const char *name, const Tensor *t, bool chunked, const char *why) {
    char *dims = arena_strdup("");
    for (int d = 0; d < t->rank; d++)
        dims = arena_printf("%s[%lld]", dims, chunked && t->batch[d] ? (long long)(e->chunk * rows_factor(e, t, d)) : (long long)t->shape[d]);
    out(e, 1, "%s %s%s;%*s// %s%s\n", type, name, dims, (int)(28 - strlen(name) - strlen(dims) > 0 ? 28 - strlen(name) - strlen(dims) : 1), "",
        shape_comment(e->m, t), why);
}

static const char *line_ref(const E *e, const Tensor *t) {
    return t->stmt ? arena_printf(" %s.ninja:%d", e->m->src->name, loc_line(t->stmt->loc)) : "";
}

bool runs_in_inference(const Op *op) { return !op->out->frozen; }

/* An op's output has an array of its own: not a view's (which reads the
 * viewed array), nor a product whose store adds a bias (whose values go
 * straight into the add's output: plan.c). */
static bool has_array(const E *e, const Op *op) { return !e->plan->valias[op->out->id] && !e->plan->bias_add[op->id]; }

void struct_params(E *e, const char *id) {
    out(e, 0, "typedef struct {\n");
    for (int i = 0; i < e->m->params.len; i++) {
        const Tensor *t = e->m->params.items[i];
        decl_field(e, e->real, t->cname, t, false, line_ref(e, t));
    }
    out(e, 0, "} %s_params;\n\n", id);
}

void struct_acts(E *e, const char *id) {
    out(e, 0, "typedef struct {   // the activations of a training batch that have arrays\n");
    for (int i = 0; i < e->m->ops.len; i++) {
        const Op *op = e->m->ops.items[i];
        if (has_array(e, op) && !e->plan->local[op->out->id])   /* a register of its loop in training */
            decl_field(e, e->real, op->out->cname, op->out, false, line_ref(e, op->out));
        decl_aux(e, op, false);
    }
    out(e, 0, "} %s_acts;\n\n", id);
}

void struct_grads(E *e, const char *id) {
    out(e, 0, "typedef struct {   // d<name>: the gradient of loss with respect to <name>\n");
    for (int i = 0; i < e->m->tensors.len; i++) {
        const Tensor *t = e->m->tensors.items[i];
        if ((t->needs_grad || t == e->m->loss) && !e->plan->dlocal[i] && !e->plan->galias[i])
            decl_field(e, e->real, arena_printf("d%s", t->cname), t, false, line_ref(e, t));
    }
    int64_t scratch = 0;   /* B^T of the largest A @ B^T the own kernels compute */
    for (int i = 0; i < e->bw->grads.len; i++) {
        const Grad *gr = e->bw->grads.items[i];
        if (gr->op->kind == OP_BATCHNORM)
            decl_batchnorm_sums(e, gr);
        if (gr->op->kind == OP_MATMUL && gr->operand == 0 && own_matmul(e, gr->op, 0) &&
            tensor_numel(gr->op->in[1]) > scratch)
            scratch = tensor_numel(gr->op->in[1]);
    }
    if (scratch)
        out(e, 1, "%s mm_scratch[%lld];%*s// B^T for the kernels' A @ B^T\n", e->real, (long long)scratch, 10, "");
    out(e, 0, "} %s_grads;\n\n", id);
}

void struct_stats(E *e, const char *id) {
    out(e, 0, "typedef struct {   // batch statistics, frozen for inference\n");
    int n = 0;
    for (int i = 0; i < e->m->tensors.len; i++) {
        const Tensor *t = e->m->tensors.items[i];
        if (t->frozen) {
            decl_field(e, e->real, t->cname, t, false, line_ref(e, t));
            n++;
        }
    }
    if (!n)
        out(e, 1, "char none;   // this model has no batch statistics\n");
    out(e, 0, "} %s_stats;\n\n", id);
}

void struct_infer_ws(E *e, const char *id) {
    out(e, 0, "typedef struct {   // inference activations for up to %d rows\n", e->chunk);
    for (int i = 0; i < e->m->ops.len; i++) {
        const Op *op = e->m->ops.items[i];
        if (runs_in_inference(op)) {
            if (has_array(e, op))
                decl_field(e, e->real, op->out->cname, op->out, true, line_ref(e, op->out));
            decl_aux(e, op, true);
        }
    }
    out(e, 0, "} %s_infer_ws;\n\n", id);
}

/* A computed integer tensor (torch.roll, x[...] = k) is a map over the
 * positions of a row (lower_int.c), named as the tensor. */
static void mapped_local(E *e, const Tensor *t) {
    int64_t n = tensor_numel(t) / t->shape[0];
    const char *src = t->stmt ? origin(e, t->stmt) : t->name;
    out(e, 1, "// %s %s (%s): position p of a row is %s's position %s[p], or the constant ~%s[p]\n",
        t->name, shape_str(t), src, t->iroot->name, t->cname, t->cname);
    char *items = arena_strdup("");
    for (int64_t p = 0; p < n; p++)
        items = arena_printf("%s%s%d", items, p ? ", " : "", t->imap[p]);
    out(e, 1, "static const int32_t %s[%lld] = {%s};\n", t->cname, (long long)n, items);
}

/* "[d1][d2]...": the dims of one row of t, for a pointer to its rows */
static const char *row_dims(const Tensor *t) {
    char *dims = arena_strdup("");
    for (int d = 1; d < t->rank; d++)
        dims = arena_printf("%s[%lld]", dims, (long long)t->shape[d]);
    return dims;
}

/* The inputs and their views (targets.view(-1)) that code reads: each
 * reads its input's array. Returns whether there was one. */
bool input_locals(E *e, const char *code) {
    bool any = false;
    for (int i = 0; i < e->m->tensors.len; i++) {
        const Tensor *t = e->m->tensors.items[i];
        if (t->kind != T_INPUT || !mentions(code, t->cname))
            continue;
        if (t->imap) {
            mapped_local(e, t);
            continue;
        }
        any = true;
        const char *dims = row_dims(t);
        if (t->rank == 1)
            out(e, 1, "const int32_t *%s = inputs[%d];\n", t->cname, t->input_index);
        else
            out(e, 1, "const int32_t (*%s)%s = (const int32_t (*)%s)inputs[%d];\n", t->cname, dims, dims, t->input_index);
    }
    return any;
}

/* The struct member holding t's elements: its own, or for a view that
 * reads another activation's array (plan.c, view_aliases), that one's. */
const char *stored_as(const E *e, const Tensor *t) {
    const Tensor *root = e->plan->valias[t->id];
    return root ? root->cname : t->cname;
}

/* The views that code reads: each a pointer, with the view's shape, into
 * the array of the activation it views (in acts, or in the workspace);
 * to const where the function's acts are. */
void view_locals(E *e, const char *code) {
    for (int i = 0; i < e->m->tensors.len; i++) {
        const Tensor *t = e->m->tensors.items[i];
        if (!e->plan->valias[t->id] || !mentions(code, t->cname))
            continue;
        const char *dims = row_dims(t);
        const char *elem = arena_printf("%s%s", e->const_acts ? "const " : "", e->real);
        const char *type = t->rank == 1 ? arena_printf("%s *", elem) : arena_printf("%s (*)%s", elem, dims);
        const char *decl = t->rank == 1 ? arena_printf("%s *%s", elem, t->cname)
                                        : arena_printf("%s (*%s)%s", elem, t->cname, dims);
        out(e, 1, "%s = (%s)%s->%s;   // %s's array, read as %s\n", decl, type, e->infer ? "w" : "a",
            stored_as(e, t), e->plan->valias[t->id]->name, shape_str(t));
    }
}

static void table_tensor(E *e, const Tensor *t, const char *type, const char *field) {
    char *dims = arena_strdup("");
    unsigned batch_dims = 0;
    for (int d = 0; d < t->rank; d++) {
        dims = arena_printf("%s%s%lld", dims, d ? ", " : "", (long long)t->shape[d]);
        batch_dims |= t->batch[d] ? 1u << d : 0;
    }
    out(e, 1, "{%s, %d, {%s}, offsetof(%s, %s), %s, %#x}", c_string(t->name), t->rank, dims, type, field,
        c_string(t->stmt ? origin(e, t->stmt) : ""), batch_dims);
}

static const char *init_text(const Model *m, const Stmt *s) {
    return arena_strndup(m->src->text + s->value->loc.begin, (size_t)(s->value->loc.end - s->value->loc.begin));
}

void descriptor(E *e, const char *id) {
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
        out(e, 1, "{%s, %d, {%s}, %lld, %lld},\n", c_string(t->name), t->rank, dims, (long long)t->bound,
            (long long)t->ignore);
    }
    int nacts = 0, ngrads = 0, nstats = 0;
    out(e, 0, "};\n\nstatic const NjTensor acts[] = {\n");
    for (int i = 0; i < m->ops.len; i++) {
        const Tensor *t = ((Op *)m->ops.items[i])->out;
        if (!t->is_temp && !e->plan->local[t->id]) {
            table_tensor(e, t, arena_printf("%s_acts", id), stored_as(e, t));
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
    out(e, 0, "    {NULL, 0, {0}, 0, NULL, 0}   // keeps the array non-empty\n};\n\n");
    int ninfer = 0;
    out(e, 0, "static const NjTensor infer_acts[] = {\n");
    for (int i = 0; i < m->ops.len; i++) {
        const Op *op = m->ops.items[i];
        if (runs_in_inference(op) && !e->plan->bias_add[op->id]) {
            table_tensor(e, op->out, arena_printf("%s_infer_ws", id), stored_as(e, op->out));
            out(e, 0, ",\n");
            ninfer++;
        }
    }
    out(e, 0, "};\n\n");
    out(e, 0, "static void forward_any(const void *p, const int32_t *const *in, void *a) { %s_forward(p, in, a); }\n", id);
    out(e, 0, "static void backward_any(const void *p, const int32_t *const *in, const void *a, void *g) {\n"
              "    %s_backward(p, in, a, g);\n}\n", id);
    out(e, 0, "static void sgd_any(void *p, const void *g, double lr) { %s_sgd(p, g, lr); }\n", id);
    out(e, 0, "static void infer_any(const void *p, const void *s, const int32_t *const *in, int rows, void *w) {\n"
              "    %s_infer(p, s, in, rows, w);\n}\n", id);
    if (has_statistics(m))
        out(e, 0, "static int calibrate_any(const void *p, const int32_t *const *in, int64_t rows, void *s, void *w) {\n"
                  "    return %s_calibrate(p, in, rows, s, w);\n}\n", id);
    out(e, 0, "\n");
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
        out(e, 1, ".infer_logits_offset = offsetof(%s_infer_ws, %s), .logits_positions = %lld, .logits_cols = %lld,\n",
            id, m->logits->cname, m->logits->rank == 3 ? (long long)m->logits->shape[1] : 1LL,
            (long long)m->logits->shape[m->logits->rank - 1]);
    else
        out(e, 1, ".infer_logits_offset = -1, .logits_positions = 0, .logits_cols = 0,\n");
    out(e, 1, ".ninfer_acts = %d, .infer_acts = infer_acts,\n", ninfer);
    out(e, 1, ".infer = infer_any, .calibrate = %s,\n", has_statistics(m) ? "calibrate_any" : "NULL");
    out(e, 1, ".check_inputs = %s_check_inputs,\n};\n", id);
}
