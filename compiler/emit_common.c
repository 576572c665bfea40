/* emit_common.c - the emitter's building blocks: C literals of the real
 * type, references to tensors and gradients (arrays, registers, aux
 * arrays), broadcast and reduced indices, loop nests, the op table's
 * templates expanded, and the spec line each block comes from. */
#include "emit.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void out(E *e, int indent, const char *fmt, ...) {
    for (int i = 0; i < indent; i++)
        fputs("    ", e->out);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(e->out, fmt, ap);
    va_end(ap);
}

/* A stream into memory (malloc'd text, freed by the caller). */
FILE *memory_stream(char **text, size_t *len) {
    FILE *s = open_memstream(text, len);
    if (!s) {
        fprintf(stderr, "ninjac: out of memory\n");
        exit(1);
    }
    return s;
}

/* ---- names and literals ---- */

/* The shortest decimal that reads back as the same value of the real type
 * (strtof and the C compiler round alike), so that 1e-5 stays 1e-5 rather
 * than 9.99999975e-06; the exponent without padding (1e-05 -> 1e-5). */
static char *shortest_decimal(double v, bool f64) {
    char *s = NULL;
    for (int digits = 1; digits <= (f64 ? 17 : 9); digits++) {
        s = arena_printf("%.*g", digits, v);
        if (f64 ? strtod(s, NULL) == v : strtof(s, NULL) == (float)v)
            break;
    }
    char *exp = strchr(s, 'e');
    if (exp) {
        const char *digits = exp + 1 + (exp[1] == '+' || exp[1] == '-');
        while (digits[0] == '0' && digits[1])
            digits++;
        *exp = 0;
        s = arena_printf("%se%s%s", s, exp[1] == '-' ? "-" : "", digits);
    }
    return s;
}

/* The generated file's where(c, x, y) (emit_c.c, where_helper). */
const char *where_fn(E *e) { return e->opt->f64 ? "nj_where" : "nj_wheref"; }

const char *lit(E *e, double v) {
    if (isinf(v))   /* float('-inf'): math.h's, of float type, exact in double too */
        return v < 0 ? "-INFINITY" : "INFINITY";
    if (isnan(v))
        return "NAN";
    if (!e->opt->f64) {
        char *s = isfinite(v) ? shortest_decimal((double)(float)v, false) : arena_printf("%.9g", (double)(float)v);
        return strpbrk(s, ".en") ? arena_printf("%sf", s) : arena_printf("%s.0f", s);
    }
    char *s = isfinite(v) ? shortest_decimal(v, true) : arena_printf("%.17g", v);
    return strpbrk(s, ".en") ? s : arena_printf("%s.0", s);
}

/* A scalar of the op: a literal, or its C spelling in terms of rows. */
const char *scalar(E *e, Scalar s) {
    if (e->infer && s.rows_expr)
        return arena_printf("(%s)%s", e->real, s.rows_expr);
    return lit(e, s.value);
}

/* A batch dim is `rows` long in inference, or rows times a constant after
 * a view that folds more dims into it (logits.view(-1, V) of [n, t, V]). */
int64_t rows_factor(const E *e, const Tensor *t, int d) { return t->shape[d] / e->m->batch; }

static const char *rows_times(int64_t k) { return k == 1 ? "rows" : arena_printf("rows * %lld", (long long)k); }

const char *dimsz(E *e, const Tensor *t, int d) {
    if (e->infer && t->batch[d])
        return rows_factor(e, t, d) == 1 ? "rows" : arena_printf("(%s)", rows_times(rows_factor(e, t, d)));
    return arena_printf("%lld", (long long)t->shape[d]);
}

/* Elements of dims [from, to) as a C expression. */
const char *numel_range(E *e, const Tensor *t, int from, int to) {
    int64_t fixed = 1;
    bool rows = false;
    for (int d = from; d < to; d++) {
        if (e->infer && t->batch[d]) {
            rows = true;
            fixed *= rows_factor(e, t, d);
        } else {
            fixed *= t->shape[d];
        }
    }
    if (!rows)
        return arena_printf("%lld", (long long)fixed);
    return rows_times(fixed);
}

/* An op's aux array is named after its output (loss_probs), made unique
 * against the tensors' C names (both are members of the same struct) and
 * free of what C reserves. */
bool tensor_named(const Model *m, const char *name) {
    for (int i = 0; i < m->tensors.len; i++)
        if (!strcmp(((Tensor *)m->tensors.items[i])->cname, name))
            return true;
    return c_name_reserved(m, name);
}

static bool aux_taken(const void *m, const char *name) { return tensor_named(m, name); }

const char *aux_name(const E *e, const Tensor *t, const char *what) {
    return free_c_name(e->m, arena_printf("%s_%s", t->cname, what), aux_taken, e->m);
}

static const char *base(E *e, const Tensor *t) {
    if (e->plan->valias[t->id])
        return t->cname;   /* a local pointer into the viewed array (view_locals) */
    switch (t->kind) {
    case T_PARAM: return arena_printf("p->%s", t->cname);
    case T_INPUT: return t->cname;
    case T_ACT: break;
    }
    if (!e->infer)
        return arena_printf("a->%s", t->cname);
    return arena_printf("%s->%s", t->frozen ? "s" : "w", t->cname);
}

const char *indexed(const char *b, int rank, const char *const *idx) {
    char *s = arena_strdup(b);
    for (int d = 0; d < rank; d++)
        s = arena_printf("%s[%s]", s, idx[d]);
    return s;
}

/* An op's auxiliary array (a var's mean, a max's argmax, softmax
 * probabilities) lives beside its output: in acts, or in the workspace. */
const char *aux_ref(E *e, const Tensor *t, const char *what, const char *const *idx) {
    return indexed(arena_printf("%s->%s", e->infer ? "w" : "a", aux_name(e, t, what)), t->rank, idx);
}

/* cross_entropy keeps the softmax of its logits, named after its output. */
const char *probs_ref(E *e, const Op *op, const char *const *idx) {
    return indexed(arena_printf("%s->%s", e->infer ? "w" : "a", aux_name(e, op->out, "probs")), op->in[0]->rank, idx);
}

bool is_local(const E *e, const Tensor *t) { return e->fused && e->plan->local[t->id]; }
bool is_dlocal(const E *e, const Tensor *t) { return e->fused && e->plan->dlocal[t->id]; }

/* An element of a computed integer tensor (lower_int.c): its row of the
 * input through the map, `map[p] >= 0 ? x[i][map[p]] : ~map[p]`. */
static const char *mapped_ref(const Tensor *t, const char *const *idx) {
    const char *p = idx[1];
    for (int d = 2; d < t->rank; d++)
        p = arena_printf("%s * %lld + %s", p, (long long)t->shape[d], idx[d]);
    if (t->rank > 2)
        p = arena_printf("(%s)", p);
    const char *m = arena_printf("%s[%s]", t->cname, p);
    const char *row = t->rank == 2 ? arena_printf("%s[%s]", t->iroot->cname, idx[0])
                                   : arena_printf("((const int32_t *)%s[%s])", t->iroot->cname, idx[0]);
    return arena_printf("(%s >= 0 ? %s[%s] : ~%s)", m, row, m, m);
}

const char *ref(E *e, const Tensor *t, const char *const *idx) {
    if (t->imap)
        return mapped_ref(t, idx);
    if (is_local(e, t) && e->backward && e->plan->recomputed[t->id])
        return arena_printf("(%s)", batchnorm_value(e, t->def, idx));
    return is_local(e, t) ? t->cname : indexed(base(e, t), t->rank, idx);
}

static const char *ptr_of(const char *b, int rank) {
    char *s = arena_printf("&%s", b);
    for (int d = 0; d < rank; d++)
        s = arena_printf("%s[0]", s);
    return s;
}

/* A gradient that is a view's d(out) array, read with its own shape. */
static const char *aliased_gradient(const E *e, const Tensor *t, const char *const *idx) {
    const Tensor *a = e->plan->galias[t->id];
    if (same_space(a, t))
        return indexed(arena_printf("g->d%s", a->cname), t->rank, idx);
    const char *storage = ptr_of(arena_printf("g->d%s", a->cname), a->rank);
    if (t->rank == 0)
        return arena_printf("(*%s)", storage);
    char *dims = arena_strdup("");
    for (int d = 1; d < t->rank; d++)
        dims = arena_printf("%s[%lld]", dims, (long long)t->shape[d]);
    return indexed(arena_printf("((%s (*)%s)%s)", e->real, dims, storage), t->rank, idx);
}

const char *gref(E *e, const Tensor *t, const char *const *idx) {
    if (e->plan->galias[t->id])
        return aliased_gradient(e, t, idx);
    return is_dlocal(e, t) ? e->dname[t->id] : indexed(arena_printf("g->d%s", t->cname), t->rank, idx);
}


const char *ptr(E *e, const Tensor *t) { return ptr_of(base(e, t), t->rank); }
const char *gptr(E *e, const Tensor *t) {
    const Tensor *a = gradient_array(e->plan, t);
    return ptr_of(arena_printf("g->d%s", a->cname), a->rank);
}

/* The index of an operand broadcast against an out index (aligned right).
 * A dim of size 1 that meets the batch dim is broadcast even when the
 * training batch is 1 too: inference runs on any number of rows. */
void broadcast_index(const Tensor *out, const Tensor *in, const char *const *out_idx,
                            const char **in_idx) {
    int offset = out->rank - in->rank;
    for (int d = 0; d < in->rank; d++) {
        bool spread = out->shape[d + offset] != 1 || (out->batch[d + offset] && !in->batch[d]);
        in_idx[d] = in->shape[d] == 1 && spread ? "0" : out_idx[d + offset];
    }
}

/* The out index of a reduction, from the index of its input. */
void reduced_index(const Op *op, const char *const *in_idx, const char **out_idx) {
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
int loops(E *e, int indent, const Tensor *t, uint32_t skip) {
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
 * 6 ulp at most); where(c, x, y) is the generated file's nj_where(f). A call
 * of anything else is a bug of the table. */
const char *expand(E *e, OpKind kind, const char *tmpl, const char *a, const char *b, const char *y,
                          const char *g, const char *c) {
    char *text;
    size_t len;
    FILE *s = memory_stream(&text, &len);
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
            if (end - p == 5 && !strncmp(p, "where", 5))
                fputs(where_fn(e), s);
            else
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

const char *spec_code(const Stmt *s) {
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

const char *origin(const E *e, const Stmt *s) {
    return arena_printf("%s.ninja:%d: %s", e->m->src->name, loc_line(s->loc), spec_code(s));
}

void open_stmt(E *e, const Stmt *s, const char *prefix) {
    if (s == e->last_stmt)
        return;
    e->last_stmt = s;
    out(e, 1, "\n");
    out(e, 1, "// %s%s\n", prefix, origin(e, s));
}

const char *op_summary(const Op *op) {
    char *ins = arena_strdup("");
    for (int k = 0; k < op->nin; k++) {
        const Tensor *t = op->in[k];
        ins = arena_printf("%s%s%s %s", ins, k ? ", " : "", t->name, shape_str(t));
    }
    return arena_printf("%s %s = %s(%s%s)", op->out->name, shape_str(op->out), op_info[op->kind].name, ins,
                        mask_constant(op));
}

/* ---- function bodies ---- */

/* A body is written to memory first, so that the input locals it reads
 * are declared and no others, and exactly the parameters it does not use
 * (a model without batch statistics never reads s) get a `(void)name;`:
 * the code compiles without warnings and says nothing it need not. */
FILE *body_begin(E *e) {
    FILE *saved = e->out;
    e->body = memory_stream(&e->body_text, &e->body_len);
    e->out = e->body;
    return saved;
}

/* The text without its comments, where a name may appear without a use. */
static char *code_of(const char *text) {
    char *code = arena_strdup(text);
    for (char *p = code; *p; p++)
        if (p[0] == '/' && p[1] == '/')
            while (*p && *p != '\n')
                *p++ = ' ';
    return code;
}

bool mentions(const char *code, const char *name) {
    size_t n = strlen(name);
    for (const char *p = strstr(code, name); p; p = strstr(p + 1, name)) {
        bool start = p == code || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
        bool end = !(isalnum((unsigned char)p[n]) || p[n] == '_');
        if (start && end)
            return true;
    }
    return false;
}

/* with_inputs: the body reads `inputs` through input locals (input_locals). */
void body_end(E *e, FILE *saved, const char *const *params, int nparams, bool with_inputs) {
    fclose(e->body);
    e->out = saved;
    const char *code = code_of(e->body_text);
    bool reads_inputs = with_inputs && input_locals(e, code);
    view_locals(e, code);
    for (int i = 0; i < nparams; i++)
        if (!mentions(code, params[i]))
            out(e, 1, "(void)%s;\n", params[i]);
    if (with_inputs && !reads_inputs)
        out(e, 1, "(void)inputs;\n");
    fputs(e->body_text, e->out);
    free(e->body_text);
    e->body = NULL;
}

