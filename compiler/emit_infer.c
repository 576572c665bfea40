/* emit_infer.c - inference on any number of rows in chunks with batch
 * statistics frozen, their calibration over the training set, and the
 * check of input values. */
#include "emit.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

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

void fn_infer(E *e, const char *id) {
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

void fn_calibrate(E *e, const char *id) {
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

void fn_check_inputs(E *e, const char *id) {
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
