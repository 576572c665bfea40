/* ops.c - the op table (ops.def) as data, and what is derived from it:
 * the spellings of Python's operators, the C math functions, the
 * diagnostics' "supported:" lists, the table's self-check and its listing
 * (ninjac --list-ops, which README's op list must match: tests/ops).
 * Memory: derived strings come from the arena. */
#include "ninjac.h"

#include <ctype.h>
#include <string.h>

const char *const binop_text[] = {
#define X(id, text) [BIN_##id] = text,
    NJ_BINOPS(X)
#undef X
};

const MathInfo math_info[MATH_COUNT] = {
#define X(id, dbl, flt, own, simd) [MATH_##id] = {{dbl, flt}, own, simd},
    NJ_MATH(X)
#undef X
};

const OpInfo op_info[OP_COUNT] = {
#define OP(id, ...) [OP_##id] = {__VA_ARGS__},
#include "ops.def"
#undef OP
};

bool op_elementwise(OpKind kind) { return op_info[kind].family == EW1 || op_info[kind].family == EW2; }

/* The constant a mask op's summary shows, even 0 (x == 0, tril's diagonal 0):
 * ", -inf", or "" for the other ops. */
const char *mask_constant(const Op *op) {
    const OpInfo *info = &op_info[op->kind];
    if (!((info->mask && info->family == EW1) || info->mask_in || op->kind == OP_TRIL))
        return "";
    return arena_printf(", %s%g", op->kind == OP_TRIL ? "diagonal=" : "", op->c.value);
}

bool math_function_name(const char *name) {
    for (int f = 0; f < MATH_COUNT; f++)
        if (!strcmp(name, math_info[f].name[0]) || !strcmp(name, math_info[f].name[1]) ||
            (math_info[f].own && !strcmp(name, math_info[f].own)))
            return true;
    return false;
}

/* ---- spellings ---- */

/* A call's arguments as the list shows them: x alone for an elementwise
 * function (x, c for one with a constant: torch.pow), ... for the ops that
 * take more. */
static const char *call_args(OpKind kind) {
    return op_info[kind].family != EW1 ? "..." : op_info[kind].operands & OPND_TC ? "x, c" : "x";
}

static char *append(char *list, const char *sep, const char *item) {
    return *list ? arena_printf("%s%s%s", list, sep, item) : arena_strdup(item);
}

const char *op_spellings(OpKind kind) {
    const OpInfo *op = &op_info[kind];
    char *s = arena_strdup("");
    const char *op_text = binop_text[op->binop];
    if (op->operands & OPND_TT)
        s = append(s, " ", arena_printf("`x %s y`", op_text));
    if (op->operands & OPND_TC)
        s = append(s, " ", arena_printf("`x %s c`", op_text));
    if (op->operands & OPND_CT)
        s = append(s, " ", arena_printf("`c %s x`", op_text));
    if (op->power)
        s = append(s, " ", arena_printf("`x ** %s`", op->power));
    const char *args = call_args(kind);
    if (op->forms & PY_METHOD) {
        s = append(s, " ", arena_printf("`x.%s(%s)`", op->py, *args == 'x' ? "" : args));
        if (op->alias)
            s = append(s, " ", arena_printf("`x.%s(%s)`", op->alias, *args == 'x' ? "" : args));
    }
    if (op->forms & PY_TORCH)
        s = append(s, " ", arena_printf("`torch.%s(%s)`", op->py, args));
    if (op->forms & PY_F)
        s = append(s, " ", arena_printf("`F.%s(%s)`", op->py, args));
    if (op->syntax)
        s = append(s, " ", op->syntax);
    return s;
}

const char *supported_calls(unsigned forms) {
    char *s = arena_strdup("");
    static const struct { unsigned form; const char *module; } modules[] = {{PY_TORCH, "torch"}, {PY_F, "F"}};
    for (size_t m = 0; m < sizeof modules / sizeof *modules; m++)
        for (int k = 0; k < OP_COUNT; k++)
            if ((forms & modules[m].form) && (op_info[k].forms & modules[m].form))
                s = append(s, ", ", arena_printf("%s.%s", modules[m].module, op_info[k].py));
    return s;
}

const char *supported_methods(void) {
    char *s = arena_strdup("");
    for (int k = 0; k < OP_COUNT; k++)
        if (op_info[k].forms & PY_METHOD) {
            s = append(s, " ", op_info[k].py);
            if (op_info[k].alias)
                s = append(s, " ", op_info[k].alias);
        }
    return s;
}

const char *supported_operators(unsigned operands) {
    char *s = arena_strdup("");
    bool listed[sizeof binop_text / sizeof *binop_text] = {false};
    for (int k = 0; k < OP_COUNT; k++)
        if ((op_info[k].operands & operands) && !listed[op_info[k].binop]) {
            listed[op_info[k].binop] = true;
            s = append(s, " ", binop_text[op_info[k].binop]);
        }
    return s;
}

/* ---- the table's self-check ---- */

static int operands_of(OpKind kind) {
    return op_info[kind].family == EW2 || op_info[kind].operands & OPND_TT ? 2 : 1;
}

/* What a template reads, and which math functions it calls (an identifier
 * followed by '('). */
static unsigned template_reads(const char *t) {
    return (strstr(t, "$a") ? READ_A : 0) | (strstr(t, "$b") ? READ_B : 0) | (strstr(t, "$y") ? READ_Y : 0);
}

static bool template_calls(const char *t, unsigned *math, const char **unknown) {
    *math = 0;
    for (const char *p = t; *p;) {
        if (!isalpha((unsigned char)*p) || (p > t && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))) {
            p++;
            continue;
        }
        const char *end = p;
        while (isalnum((unsigned char)*end) || *end == '_')
            end++;
        if (*end == '(' && !(end - p == 5 && !strncmp(p, "where", 5))) {
            int f = 0;
            while (f < MATH_COUNT && !(strlen(math_info[f].name[0]) == (size_t)(end - p) &&
                                       !strncmp(p, math_info[f].name[0], (size_t)(end - p))))
                f++;
            if (f == MATH_COUNT) {
                *unknown = arena_strndup(p, (size_t)(end - p));
                return false;
            }
            *math |= 1u << f;
        }
        p = end;
    }
    return true;
}

static int check_row(OpKind k) {
    const OpInfo *op = &op_info[k];
    int errors = 0;
#define CHECK(cond, ...) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "ninjac: op table: %s: ", op->name); \
            fprintf(stderr, __VA_ARGS__); \
            fputc('\n', stderr); \
            errors++; \
        } \
    } while (0)
    bool ew = op_elementwise(k);
    CHECK(op->name && *op_spellings(k), "has no name or no spelling");
    CHECK(!op->forms || op->py, "a method or function form needs its Python name");
    CHECK(ew == (op->forward != NULL), "templates are for elementwise ops, and those need them");
    CHECK(ew || (!op->mask && !op->mask_in), "masks are elementwise");
    CHECK((op->family == SPECIAL) == emits_special(k), "a SPECIAL op, and only one, has its forward and backward "
                                                      "(and its aux arrays' declarations if the row names any) "
                                                      "in emit_ops.c's special_code");
    if (!ew)
        return errors;
    unsigned used = 0, calls;
    const char *unknown = NULL;
    CHECK(template_calls(op->forward, &calls, &unknown), "calls %s, which is not in NJ_MATH", unknown);
    used |= calls;
    for (int i = 0; i < 2; i++) {
        bool needed = i < operands_of(k) && !op->mask && !(op->mask_in & (1u << i));
        CHECK(needed == (op->grad[i] != NULL), "needs exactly one gradient template per operand");
        if (!op->grad[i])
            continue;
        CHECK(template_calls(op->grad[i], &calls, &unknown), "calls %s, which is not in NJ_MATH", unknown);
        used |= calls;
        CHECK(template_reads(op->grad[i]) == op->reads[i], "reads[%d] does not say what its gradient reads", i);
    }
    CHECK(used == op->math, "its math column does not list exactly the functions its templates call");
#undef CHECK
    return errors;
}

int check_op_table(void) {
    int errors = 0;
    for (int k = 0; k < OP_COUNT; k++)
        errors += check_row(k);
    return errors;
}

/* ---- the listing ---- */

static const char *family_text(OpFamily f) {
    static const char *const text[] = {[EW1] = "elementwise", [EW2] = "elementwise, broadcast",
                                       [REDUCE] = "reduction", [SPECIAL] = "own code"};
    return text[f];
}

static const char *math_text(unsigned math) {
    char *s = arena_strdup("");
    for (int f = 0; f < MATH_COUNT; f++)
        if (math & (1u << f))
            s = append(s, " ", math_info[f].name[0]);
    return s;
}

static const char *reads_text(OpKind k) {
    static const char *const operand[] = {"a", "b"};
    char *s = arena_strdup("");
    for (int i = 0; i < operands_of(k); i++) {
        unsigned r = op_info[k].reads[i];
        if (!r)
            continue;
        const char *what = arena_printf("%s%s%s", r & READ_A ? "a" : "", r & READ_B ? "b" : "", r & READ_Y ? "y" : "");
        s = append(s, ", ", arena_printf("d%s: %s", operand[i], what));
    }
    return s;
}

void list_ops(FILE *out) {
    fprintf(out, "| op | family | Python | C math | gradient reads | keeps |\n");
    fprintf(out, "|---|---|---|---|---|---|\n");
    for (int k = 0; k < OP_COUNT; k++)
        fprintf(out, "| %s | %s | %s | %s | %s | %s |\n", op_info[k].name, family_text(op_info[k].family),
                op_spellings(k), math_text(op_info[k].math), reads_text(k), op_info[k].aux ? op_info[k].aux : "");
}
