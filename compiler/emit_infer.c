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

static bool is_statistic(const Op *op) { return op->batch_reduction && op->out->frozen; }

bool has_statistics(const Model *m) {
    for (int i = 0; i < m->ops.len; i++)
        if (is_statistic(m->ops.items[i]))
            return true;
    return false;
}

/* The name of the point infer_upto stops at for calibrating a statistic. */
static const char *stop_name(const char *id, const Op *op) { return arena_printf("%s_stop_%s", id, op->out->cname); }

/* infer_upto's stops, one before each statistic, named: its input is complete there. */
static void stop_enum(E *e, const char *id) {
    out(e, 0, "/* Where infer_upto stops: before a batch statistic, whose input is then complete. */\n");
    out(e, 0, "enum {\n    %s_stop_none = -1,   // runs every op\n", id);
    for (int i = 0; i < e->m->ops.len; i++) {
        const Op *op = e->m->ops.items[i];
        if (is_statistic(op))
            out(e, 1, "%s = %d,\n", stop_name(id, op), op->id);
    }
    out(e, 0, "};\n\n");
}

/* Inference; with batch statistics, as infer_upto, which calibration also
 * runs up to each statistic. */
void fn_infer(E *e, const char *id) {
    e->infer = true;
    bool stats = has_statistics(e->m);
    if (stats) {
        stop_enum(e, id);
        out(e, 0, "/* Inference on at most %d rows, batch statistics frozen in s. Stops before\n", e->chunk);
        out(e, 0, " * op `stop` (calibration needs the input of a statistic), or runs all. */\n");
        out(e, 0, "static void infer_upto(const %s_params *p, const %s_stats *s, const int32_t *const *inputs, int rows,\n"
                  "                       %s_infer_ws *w, int stop) {\n", id, id, id);
    } else {
        out(e, 0, "/* Inference on at most %d rows. */\n", e->chunk);
        out(e, 0, "void %s_infer(const %s_params *p, const %s_stats *s, const int32_t *const *inputs, int rows,\n"
                  "                %s_infer_ws *w) {\n", id, id, id, id);
    }
    FILE *saved = body_begin(e);
    e->last_stmt = NULL;
    for (int i = 0; i < e->m->ops.len; i++) {
        const Op *op = e->m->ops.items[i];
        if (is_statistic(op))
            out(e, 1, "if (stop == %s)\n        return;   // %s is calibrated from here\n", stop_name(id, op),
                op->out->name);
        if (!runs_in_inference(op) || e->plan->bias_add[op->id])
            continue;
        bool guarded = optional_input_guard(e, op);
        forward_op(e, op);
        if (guarded)
            out(e, 1, "}\n");
    }
    body_end(e, saved, (const char *const[]){"p", "s", "stop"}, stats ? 3 : 2, true);
    out(e, 0, "}\n\n");
    e->infer = false;
    if (!stats)
        return;
    out(e, 0, "void %s_infer(const %s_params *p, const %s_stats *s, const int32_t *const *inputs, int rows,\n"
              "                %s_infer_ws *w) {\n", id, id, id, id);
    out(e, 1, "infer_upto(p, s, inputs, rows, w, %s_stop_none);\n}\n\n", id);
}

static const char *flat_index(const Tensor *t, const char *const *idx) {
    const char *s = "0";
    for (int d = 0; d < t->rank; d++) {
        const char *outer = strpbrk(s, " +*") ? arena_printf("(%s)", s) : s;
        if (!strcmp(s, "0"))
            s = idx[d];
        else if (!strcmp(idx[d], "0"))
            s = arena_printf("%s * %lld", outer, (long long)t->shape[d]);
        else
            s = arena_printf("%s * %lld + %s", outer, (long long)t->shape[d], idx[d]);
    }
    return s;
}

/* The statistics of one tensor over the same dims (a BatchNorm's mean and
 * var) share one accumulate function, named after the tensor; one of
 * another tensor or other dims has its own. */
static bool same_rows(const Op *a, const Op *b) { return a->in[0] == b->in[0] && a->axes == b->axes; }

static const char *accumulate_name(const E *e, const Op *op) {
    for (int i = 0; i < e->m->ops.len; i++) {
        const Op *other = e->m->ops.items[i];
        if (is_statistic(other) && other->in[0] == op->in[0] && !same_rows(other, op))
            return arena_printf("accumulate_%s", op->out->cname);
    }
    return arena_printf("accumulate_%s", op->in[0]->cname);
}

/* Accumulates one chunk of a statistic's input in double: pass 0 sums x,
 * pass 1 (var) sums (x - mean)^2. Once per input and dims. */
static void fn_accumulate(E *e, const char *id, const Op *op) {
    for (int i = 0; e->m->ops.items[i] != op; i++) {
        const Op *before = e->m->ops.items[i];
        if (is_statistic(before) && same_rows(before, op))
            return;
    }
    const Tensor *x = op->in[0], *y = op->out;
    const char *yi[MAX_RANK];
    reduced_index(op, IDX, yi);
    const char *k = flat_index(y, yi);
    out(e, 0, "static void %s(const %s_infer_ws *w, int rows, double *acc, const double *mean, int pass) {\n",
        accumulate_name(e, op), id);
    FILE *saved = body_begin(e);
    int in = loops(e, 1, x, 0);
    out(e, in, "acc[%s] += pass == 0 ? %s : (%s - mean[%s]) * (%s - mean[%s]);\n", k, ref(e, x, IDX),
        ref(e, x, IDX), k, ref(e, x, IDX), k);
    e->const_acts = true;
    body_end(e, saved, NULL, 0, false);
    e->const_acts = false;
    out(e, 0, "}\n\n");
}

/* What every statistic's calibration does, once per model instead of once
 * per statistic: stream the rows through infer_upto in chunks, accumulate
 * in double, divide. */
static void fn_calibrate_statistic(E *e, const char *id) {
    out(e, 0, "/* One batch statistic over `rows` rows (e.g. the whole training set): chunks\n"
              " * through infer_upto up to `stop`, summed in double by `accumulate` (a var's\n"
              " * second pass sums the squared deviations from the first pass's sum / count),\n"
              " * the sum / divisor stored in `stat`. Returns -1 if out of memory. */\n");
    out(e, 0, "static int %s_calibrate_statistic(const %s_params *p, const int32_t *const *inputs, int64_t rows,\n"
              "    const %s_stats *s, %s_infer_ws *w, int stop,\n"
              "    void (*accumulate)(const %s_infer_ws *, int, double *, const double *, int), int64_t size,\n"
              "    int passes, double count, double divisor, %s *stat) {\n", id, id, id, id, id, e->real);
    out(e, 1, "double *acc = calloc(size, sizeof(double)), *mean = calloc(size, sizeof(double));\n");
    out(e, 1, "if (!acc || !mean) {\n        free(acc);\n        free(mean);\n        return -1;\n    }\n");
    out(e, 1, "for (int pass = 0; pass < passes; pass++) {\n");
    out(e, 2, "for (int64_t r0 = 0; r0 < rows; r0 += %d) {\n", e->chunk);
    out(e, 3, "int n = rows - r0 < %d ? (int)(rows - r0) : %d;\n", e->chunk, e->chunk);
    out(e, 3, "const int32_t *chunk[%d];\n", e->m->inputs.len);
    for (int k = 0; k < e->m->inputs.len; k++) {
        const Tensor *t = e->m->inputs.items[k];
        out(e, 3, "chunk[%d] = inputs[%d] ? inputs[%d] + r0 * %lld : NULL;\n", k, k, k,
            (long long)(tensor_numel(t) / t->shape[0]));
    }
    out(e, 3, "infer_upto(p, s, chunk, n, w, stop);\n");
    out(e, 3, "accumulate(w, n, acc, mean, pass);\n");
    out(e, 2, "}\n");
    out(e, 2, "for (int64_t k = 0; pass + 1 < passes && k < size; k++) {   // the mean, for the next pass\n");
    out(e, 3, "mean[k] = acc[k] / count;\n");
    out(e, 3, "acc[k] = 0;\n");
    out(e, 2, "}\n");
    out(e, 1, "}\n");
    out(e, 1, "for (int64_t k = 0; k < size; k++)\n");
    out(e, 2, "stat[k] = (%s)(acc[k] / divisor);\n", e->real);
    out(e, 1, "free(acc);\n    free(mean);\n    return 0;\n}\n\n");
}

/* A statistic's call of the helper: a mean divides by its count, a var by
 * its count (less one, unbiased) after a pass for its mean, a sum by 1. */
static void calibrate_call(E *e, const char *id, const Op *op) {
    const Tensor *y = op->out;
    const char *count = op->kind == OP_SUM ? "1" : scalar(e, op->c);
    const char *divisor = op->kind == OP_VAR && op->unbiased ? arena_printf("%s - 1", count) : count;
    open_stmt(e, op->stmt, "");
    out(e, 1, "// %s over all rows\n", op_summary(op));
    out(e, 1, "if (%s_calibrate_statistic(p, inputs, rows, s, w, %s, %s, %lld, %d, %s, %s, %s))\n", id,
        stop_name(id, op), accumulate_name(e, op), (long long)tensor_numel(y), op->kind == OP_VAR ? 2 : 1, count,
        divisor, ptr(e, y));
    out(e, 2, "return -1;\n");
}

/* None without statistics: the descriptor's calibrate is NULL. */
void fn_calibrate(E *e, const char *id) {
    if (!has_statistics(e->m))
        return;
    e->infer = true;
    for (int i = 0; i < e->m->ops.len; i++) {
        const Op *op = e->m->ops.items[i];
        if (is_statistic(op))
            fn_accumulate(e, id, op);
    }
    fn_calibrate_statistic(e, id);
    out(e, 0, "/* Computes every batch statistic over `rows` rows (e.g. the whole training\n"
              " * set) in dependency order, streaming chunks through w. Returns -1 if out\n"
              " * of memory. */\n");
    out(e, 0, "int %s_calibrate(const %s_params *p, const int32_t *const *inputs, int64_t rows, %s_stats *s,\n"
              "                 %s_infer_ws *w) {\n", id, id, id, id);
    FILE *saved = body_begin(e);
    e->last_stmt = NULL;
    for (int i = 0; i < e->m->ops.len; i++) {
        const Op *op = e->m->ops.items[i];
        if (!op->out->frozen)
            continue;
        if (is_statistic(op))
            calibrate_call(e, id, op);
        else
            forward_op(e, op);
    }
    out(e, 1, "return 0;\n");
    body_end(e, saved, (const char *const[]){"p", "inputs", "s", "w", "rows"}, 5, false);
    out(e, 0, "}\n\n");
    e->infer = false;
}

void fn_check_inputs(E *e, const char *id) {
    out(e, 0, "/* Index of the first value outside its input's range (*which: the input), or -1. */\n");
    out(e, 0, "int64_t %s_check_inputs(const int32_t *const *inputs, int64_t rows, int *which) {\n", id);
    for (int k = 0; k < e->m->inputs.len; k++) {
        const Tensor *t = e->m->inputs.items[k];
        out(e, 1, "for (int64_t i = 0; inputs[%d] && i < rows * %lld; i++)\n", k,
            (long long)(tensor_numel(t) / t->shape[0]));
        out(e, 2, "if ((inputs[%d][i] < 0 || inputs[%d][i] >= %lld)%s) {\n", k, k, (long long)t->bound,
            t->ignore ? arena_printf(" && inputs[%d][i] != %lld", k, (long long)t->ignore) : "");
        out(e, 3, "*which = %d;\n            return i;\n        }\n", k);
    }
    out(e, 1, "return -1;\n}\n\n");
}
