/* names.c - the C name of every tensor.
 *
 * A spec's names become C identifiers: members of the generated structs
 * (p->W1, a->h, g->dh) and local variables (inputs, registers). C keywords
 * are refused where a name is declared (scope.c); every other name that C
 * would trip over (a macro of an included header, an identifier the
 * generated code uses itself, a name whose gradient d<name> is one of
 * those) gets a C name of its own, computed once here and used everywhere
 * in the generated code. The runtime's tables keep the spec's name. */
#include "ninjac.h"

#include <stdlib.h>
#include <string.h>

static bool in_list(const char *name, const char *const *list) {
    for (int i = 0; list[i]; i++)
        if (!strcmp(list[i], name))
            return true;
    return false;
}

/* Keywords of C89 to C23 and GNU C without a leading underscore, and C11's
 * underscore keywords: no C name can be spelled like them. */
bool c_keyword(const char *name) {
    static const char *const words[] = {
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
        "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return",
        "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void",
        "volatile", "while", "_Bool", "_Complex", "_Imaginary", "bool", "true", "false",
        "_Alignas", "_Alignof", "_Atomic", "_Generic", "_Noreturn", "_Static_assert", "_Thread_local",
        "_BitInt", "_Decimal32", "_Decimal64", "_Decimal128", "alignas", "alignof", "constexpr", "nullptr",
        "static_assert", "thread_local", "typeof", "typeof_unqual", "asm", NULL};
    return in_list(name, words);
}

/* The generated functions' own parameters and locals, and the functions
 * they call (the op table's math functions among them): an input (a local
 * of those functions) cannot take them. */
bool generated_local(const char *name) {
    static const char *const words[] = {
        "i", "j", "k", "l", "m", "p", "a", "g", "s", "w", "rows", "stop", "inputs", "mx", "sum", "best",
        "argmax", "dot", "memcpy", "memset", "calloc", "free", "cblas_sgemm", "cblas_dgemm", "nj_gemm",
        "nj_transpose", NULL};
    return in_list(name, words) || math_function_name(name);
}

/* Macros of the headers (tools/c_reserved_names.sh), sorted for bsearch. */
static const char *const header_macros[] = {
#include "c_reserved.inc"
};

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool header_macro(const char *name) {
    return bsearch(&name, header_macros, sizeof header_macros / sizeof *header_macros, sizeof *header_macros,
                   compare_names) != NULL;
}

/* Identifiers the generated code uses besides a spec's names: its locals,
 * the functions and types it calls or declares, the tables of its
 * descriptor. A local of that name would hide them. */
static bool generated_identifier(const char *name) {
    static const char *const words[] = {
        "n", "r0", "acc", "mean", "pass", "chunk", "which", "lr", "in", "int32_t", "int64_t", "size_t",
        "params", "inputs_table", "acts", "grads", "stats", "infer_upto", "forward_any",
        "backward_any", "sgd_any", "infer_any", "calibrate_any", "mm_scratch", NULL};
    return generated_local(name) || in_list(name, words);
}

/* Prefixes of the implementation (a leading underscore: __asm__, _Pragma),
 * of ninjac's runtime and kernels, of the BLAS, and of the model's own
 * types and functions (mlp_bn_params). */
static bool reserved_prefix(const char *name, const char *model_id) {
    static const char *const prefixes[] = {"_", "nj_", "NJ_", "Nj", "ninjac", "NINJAC", "cblas_", "Cblas",
                                           "openblas", "OPENBLAS", "accumulate_", NULL};
    for (int i = 0; prefixes[i]; i++)
        if (!strncmp(name, prefixes[i], strlen(prefixes[i])))
            return true;
    size_t n = strlen(model_id);
    return !strncmp(name, model_id, n) && name[n] == '_';
}

/* A name the generated C cannot use as it is: appending underscores frees
 * it unless it starts with a reserved prefix. */
static bool reserved_word(const char *name) {
    return c_keyword(name) || header_macro(name) || generated_identifier(name);
}

/* The model's C identifier, as CMake's MAKE_C_IDENTIFIER spells it. */
const char *c_identifier(const char *name) {
    char *id = arena_strdup(name);
    for (char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            *p = '_';
    return *id >= '0' && *id <= '9' ? arena_printf("_%s", id) : id;
}

static bool name_in_use(const Model *m, const char *name, int upto) {
    for (int i = 0; i < m->tensors.len; i++) {
        const Tensor *t = m->tensors.items[i];
        if (!strcmp(t->name, name) || (i < upto && !strcmp(t->cname, name)))
            return true;
    }
    return false;
}

bool c_name_reserved(const Model *m, const char *name) {
    return reserved_word(name) || reserved_prefix(name, c_identifier(m->src->name));
}

/* Every tensor's C name: its own name when C can take both it and its
 * gradient d<name>. Otherwise a `u` goes before a name with a reserved
 * prefix and underscores after it until it is free and unique. */
void name_tensors(Model *m) {
    const char *id = c_identifier(m->src->name);
    for (int i = 0; i < m->tensors.len; i++) {
        Tensor *t = m->tensors.items[i];
        const char *name = t->name;
        bool renamed = false;
        for (;;) {
            const char *grad = arena_printf("d%s", name);
            if (reserved_prefix(name, id) || reserved_prefix(grad, id))
                name = arena_printf("u%s", name);
            else if (reserved_word(name) || reserved_word(grad) || (renamed && name_in_use(m, name, i)))
                name = arena_printf("%s_", name);
            else
                break;
            renamed = true;
        }
        t->cname = name;
    }
}

/* `name` made free for C: a `u` before a reserved prefix, underscores after
 * it while it is a reserved word or taken (by the caller's rule). */
const char *free_c_name(const Model *m, const char *name, bool (*taken)(const void *ctx, const char *name),
                        const void *ctx) {
    const char *id = c_identifier(m->src->name);
    for (;;) {
        if (reserved_prefix(name, id))
            name = arena_printf("u%s", name);
        else if (reserved_word(name) || taken(ctx, name))
            name = arena_printf("%s_", name);
        else
            return name;
    }
}
