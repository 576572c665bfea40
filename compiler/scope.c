/* scope.c - names while lowering: the symbol table, suggestions for
 * unknown names (did you mean), and the declarations of dims, inputs and
 * the names they bind.
 * Memory: symbols come from the arena. */
#include "lower.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static unsigned hash_name(const char *s) {
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static Sym **sym_slot(SymTable *t, const char *name) {
    unsigned i = hash_name(name) & (unsigned)(t->cap - 1);
    while (t->slots[i] && strcmp(t->slots[i]->name, name) != 0)
        i = (i + 1) & (unsigned)(t->cap - 1);
    return &t->slots[i];
}

Sym *sym_find(SymTable *t, const char *name) {
    return t->cap ? *sym_slot(t, name) : NULL;
}

static void sym_grow(SymTable *t) {
    SymTable bigger = {arena_alloc(sizeof(Sym *) * (size_t)(t->cap ? t->cap * 2 : 64)),
                       t->cap ? t->cap * 2 : 64, t->len};
    for (int i = 0; i < t->cap; i++)
        if (t->slots[i])
            *sym_slot(&bigger, t->slots[i]->name) = t->slots[i];
    *t = bigger;
}

Sym *sym_add(SymTable *t, const char *name, SymKind kind, Loc loc) {
    if (2 * (t->len + 1) > t->cap)
        sym_grow(t);
    Sym *s = arena_alloc(sizeof(Sym));
    s->name = name;
    s->kind = kind;
    s->loc = loc;
    Sym **slot = sym_slot(t, name);
    if (!*slot)   /* else a forward line rebinds the name: the new symbol replaces the old */
        t->len++;
    *slot = s;
    return s;
}


/* ---- names ---- */

static int edit_distance(const char *a, const char *b) {
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    int d[65][65];
    for (int i = 0; i <= la; i++)
        d[i][0] = i;
    for (int j = 0; j <= lb; j++)
        d[0][j] = j;
    for (int i = 1; i <= la; i++)
        for (int j = 1; j <= lb; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

/* The closest of the candidates, if close enough to be a typo: at most one
 * edit in every three letters, and one for names of up to five (two edits
 * in four letters suggested 'att' for 'math'). Ties go to the
 * alphabetically first, so that the hint does not depend on hashing. */
typedef struct {
    const char *name, *best;
    int best_d;
} Suggestion;

static Suggestion suggestion_for(const char *name) {
    int len = (int)strlen(name);
    return (Suggestion){name, NULL, len < 6 ? 1 : len / 3};
}

static void consider(Suggestion *s, const char *candidate) {
    if (abs((int)strlen(candidate) - (int)strlen(s->name)) > s->best_d)
        return;
    int d = edit_distance(s->name, candidate);
    if (d <= s->best_d && (!s->best || d < s->best_d || strcmp(candidate, s->best) < 0)) {
        s->best = candidate;
        s->best_d = d;
    }
}

static const char *suggest(Ctx *c, const char *name) {
    Suggestion s = suggestion_for(name);
    for (int i = 0; i < c->syms.cap; i++)
        if (c->syms.slots[i] && c->syms.slots[i]->kind != SYM_HIDDEN)
            consider(&s, c->syms.slots[i]->name);
    return s.best;
}

const char *suggest_dim(const Model *m, const char *name) {
    Suggestion s = suggestion_for(name);
    for (int i = 0; i < m->dims.len; i++)
        consider(&s, ((Dim *)m->dims.items[i])->name);
    return s.best;
}

Val lookup(Ctx *c, Node *n) {
    Sym *s = sym_find(&c->syms, n->name);
    if (s && s->kind == SYM_POISON)
        return ERR;
    if (s && s->kind != SYM_HIDDEN) {
        if (s->kind == SYM_TENSOR)
            return tensor_val(s->tensor);
        if (s->kind == SYM_SCALAR)
            return scalar_val(s->scalar);
        if (s->kind == SYM_LIST)
            return (Val){.kind = V_TENSORS, .items = s->list};
        if (s->kind == SYM_RANGE)
            return (Val){.kind = V_RANGE, .s = s->scalar, .ones = s->ones};
        Scalar v = int_scalar(s->dim->value);
        if (c->m->batch_dim && strcmp(s->name, c->m->batch_dim) == 0) {
            v.is_batch = true;
            v.rows_expr = "rows";
        }
        return scalar_val(v);
    }
    if (!strcmp(n->name, "torch") || !strcmp(n->name, "F") || !strcmp(n->name, "math"))
        return (Val){.kind = V_MODULE, .module = n->name};
    const char *hint = diag_errors < 50 ? suggest(c, n->name) : NULL;
    if (hint)
        error_at(n->loc, "unknown name '%s'; did you mean '%s'?", n->name, hint);
    else
        error_at(n->loc, "unknown name '%s'", n->name);
    return ERR;
}


/* ---- declarations ---- */

bool reserved(const char *name) {
    return !strcmp(name, "torch") || !strcmp(name, "F") || !strcmp(name, "math") || !strcmp(name, "range");
}

bool declare(Ctx *c, const char *name, Loc loc) {
    if (c_keyword(name)) {
        error_at(loc, "'%s' is a keyword of C, which ninjac writes: choose another name", name);
        return false;
    }
    if (c->stmt->kind == S_INPUT && generated_local(name)) {
        error_at(loc, "an input cannot be called '%s': the generated C uses that name itself", name);
        return false;
    }
    Sym *old = sym_find(&c->syms, name);
    if (old && old->kind == SYM_HIDDEN) {
        error_at(loc, "'%s' is a name ninjac gave a temporary of an earlier line; choose another", name);
        return false;
    }
    if (old) {
        error_at(loc, "'%s' is already defined", name);
        note_at(old->loc, "'%s' was defined here", name);
        return false;
    }
    if (reserved(name)) {
        error_at(loc, "'%s' is a reserved name", name);
        return false;
    }
    return true;
}

void declare_dim(Ctx *c, const Stmt *s, Define *defs, int ndefs) {
    int64_t v;
    if (!declare(c, s->name, s->name_loc) || !eval_int(c, s->value, &v, NULL))
        return;
    Dim *d = arena_alloc(sizeof(Dim));
    d->name = s->name;
    d->loc = s->name_loc;
    for (int i = 0; i < ndefs; i++)
        if (!strcmp(defs[i].name, s->name)) {
            v = defs[i].value;
            d->overridden = true;
            defs[i].loc.end = 1;   /* used */
        }
    if (v <= 0 || v >= MAX_DIM_VALUE) {
        error_at(d->overridden ? s->name_loc : s->value->loc, "dim '%s' must be a positive integer below 2^31, got %lld%s",
                 s->name, (long long)v, d->overridden ? " (from -D)" : "");
        return;
    }
    d->value = v;
    vec_push(&c->m->dims, d);
    sym_add(&c->syms, s->name, SYM_DIM, s->name_loc)->dim = d;
}

bool declared_shape(Ctx *c, const Stmt *s, int64_t *shape, bool *batch) {
    if (s->ndims > MAX_RANK) {
        error_at(s->dims[MAX_RANK]->loc, "at most %d dims are supported", MAX_RANK);
        return false;
    }
    for (int i = 0; i < s->ndims; i++) {
        Scalar v;
        if (!eval_int(c, s->dims[i], &shape[i], &v))
            return false;
        if (shape[i] <= 0) {
            error_at(s->dims[i]->loc, "dims must be positive, got %lld", (long long)shape[i]);
            return false;
        }
        batch[i] = v.is_batch;
    }
    return true;
}

void declare_input(Ctx *c, const Stmt *s) {
    int64_t shape[MAX_RANK], bound;
    bool batch[MAX_RANK] = {0};
    if (!declare(c, s->name, s->name_loc))
        return;
    if (strcmp(s->type_name, "int") != 0) {
        error_at(s->type_loc, "inputs are integer tensors: write int[...], not %s[...]", s->type_name);
        return;
    }
    Node *first = s->dims[0];
    Sym *first_sym = first->kind == N_NAME ? sym_find(&c->syms, first->name) : NULL;
    if (first_sym && first_sym->kind == SYM_POISON)
        return;
    if (!c->m->batch_dim) {
        if (first->kind != N_NAME || !sym_find(&c->syms, first->name) ||
            sym_find(&c->syms, first->name)->kind != SYM_DIM) {
            error_at(first->loc, "the first dim of an input must be a dim name: the batch size");
            return;
        }
        c->m->batch_dim = first->name;
        c->m->batch = sym_find(&c->syms, first->name)->dim->value;
    } else if (first->kind != N_NAME || strcmp(first->name, c->m->batch_dim) != 0) {
        error_at(first->loc, "the first dim of every input must be the batch dim '%s'", c->m->batch_dim);
        return;
    }
    if (!declared_shape(c, s, shape, batch) || !eval_int(c, s->bound, &bound, NULL))
        return;
    if (bound <= 0 || bound >= MAX_DIM_VALUE) {
        error_at(s->bound->loc, "the bound of '%s' must be a positive integer below 2^31", s->name);
        return;
    }
    Tensor *t = new_tensor(c, T_INPUT, DT_INT, s->ndims, shape, batch, s->name_loc);
    if (!check_size(t, loc_join(s->dims[0]->loc, s->dims[s->ndims - 1]->loc)))
        return;
    t->name = s->name;
    t->is_temp = false;
    t->bound = bound;
    t->input_index = c->m->inputs.len;
    if (t->input_index >= 31) {
        error_at(s->name_loc, "at most 31 inputs are supported");
        return;
    }
    vec_push(&c->m->inputs, t);
    sym_add(&c->syms, s->name, SYM_TENSOR, s->name_loc)->tensor = t;
}
