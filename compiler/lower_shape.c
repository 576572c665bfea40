/* lower_shape.c - shape rules of the ops that move elements without
 * computing: view/reshape with the batch inferred (issue 12, items 2 and 8).
 *
 * The batch dim: a tensor's batch[d] says dim d grows with the number of
 * rows. It is m->batch long in training, `rows` in inference, or rows
 * times a constant after a view folds more dims into it
 * (logits.view(-1, V) of [n, t, V] is [n*t, V]: rows * t in inference;
 * emit_common.c's rows_factor). Memory: all IR comes from the arena. */
#include "lower.h"

#include <string.h>

/* A size spelled with the batch size times constants (n, x.shape[0], B*T
 * with B from x.shape): fold() spells it in C as a product with `rows` in
 * it once. A sum or a quotient of it is not rows times a constant, nor is
 * rows * rows. */
static bool rows_product(const Model *m, Scalar s) {
    if (s.is_batch)
        return true;
    if (!s.rows_expr || !s.is_int || (int64_t)s.value % m->batch)
        return false;
    const char *first = strstr(s.rows_expr, "rows");
    return first && !strstr(first + 4, "rows") && !strpbrk(s.rows_expr, "+-/");
}

/* The elements of one row (one index of the batch dim) of t, when t's only
 * batch dim is its first; -1 when it has none or it is elsewhere. */
static int64_t per_row(const Model *m, const Tensor *t) {
    for (int d = 1; d < t->rank; d++)
        if (t->batch[d])
            return -1;
    return t->rank && t->batch[0] ? tensor_numel(t) / m->batch : -1;
}

/* x.view(sizes) / x.reshape(sizes), sizes as varargs, a list or a tuple,
 * one of them may be -1. A batched x keeps its batch first: a size spelled
 * with the batch (n, x.shape[0], B*T) is the batch dim, and so is a
 * leading -1 that takes whole rows (emb.view(-1, 30) of [n, 3, 10]).
 * analysis.c refuses a view that loses the batch dim. An integer input is
 * viewed without an op or a copy: the new tensor reads the input's array. */
Val view(Ctx *c, Tensor *t, Node *call) {
    Node **items = call->args;
    int count = call->nargs;
    if (count == 1 && items[0]->kind == N_LIST) {
        Node *list = items[0];
        items = list->args;
        count = list->nargs;
    }
    if (count < 1 || count > MAX_RANK) {
        error_at(call->loc, "view takes 1 to %d sizes", MAX_RANK);
        return ERR;
    }
    int64_t shape[MAX_RANK], known = 1;
    bool batch[MAX_RANK], any_batch = false;
    int infer = -1;
    for (int i = 0; i < count; i++) {
        Scalar s;
        if (!eval_int(c, items[i], &shape[i], &s))
            return ERR;
        batch[i] = rows_product(c->m, s);
        any_batch |= batch[i];
        if (shape[i] == -1 && infer >= 0) {
            error_at(items[i]->loc, "only one view size may be -1");
            return ERR;
        } else if (shape[i] == -1) {
            infer = i;
        } else if (shape[i] <= 0) {
            error_at(items[i]->loc, "view size must be positive or -1, got %lld", (long long)shape[i]);
            return ERR;
        } else {
            known *= shape[i];
        }
    }
    int64_t numel = tensor_numel(t);
    if (infer >= 0) {
        if (numel % known) {
            char *sizes = arena_strdup("");
            for (int i = 0; i < count; i++)
                sizes = arena_printf("%s%s%lld", sizes, i ? ", " : "", (long long)shape[i]);
            error_at(call->loc, "cannot view %s (%lld elements) as [%s]: %lld is not a multiple of %lld",
                     describe(t), (long long)numel, sizes, (long long)numel, (long long)known);
            return ERR;
        }
        shape[infer] = numel / known;
        int64_t row = per_row(c->m, t);
        if (infer == 0 && !any_batch && row > 0) {
            /* the -1 takes the rows in: each row must fold into whole rows of the view */
            if (row % known) {
                error_at(items[0]->loc, "this -1 would split the rows of %s (%lld elements a row) into "
                         "pieces of %lld: the first dim of the view must hold whole rows, so that "
                         "inference can run on any number of rows",
                         describe(t), (long long)row, (long long)known);
                return ERR;
            }
            batch[0] = true;
        }
        known = numel;
    }
    if (known != numel) {
        error_at(call->loc, "cannot view %s (%lld elements) as %lld elements", describe(t),
                 (long long)numel, (long long)known);
        return ERR;
    }
    if (t->dtype == DT_INT) {
        if (!not_computed(t, "viewed", call->lhs->loc))
            return ERR;
        if (t->kind != T_INPUT) {
            error_at(call->loc, "internal: a view of a computed integer tensor");
            return ERR;
        }
        if (has_batch(t) && !batch[0]) {
            error_at(call->loc, "a view must keep the batch dim first, e.g. x.view(x.shape[0], -1) "
                     "or x.view(-1), so that inference can run on any number of rows");
            return ERR;
        }
        Tensor *out = new_tensor(c, T_INPUT, DT_INT, count, shape, batch, call->loc);
        out->input_index = t->input_index;
        out->bound = t->bound;
        out->name = t->name;   /* for diagnostics until its line names it: it holds t's values */
        vec_push(&c->line_temps, out);   /* named by its line, as an op's output is */
        return tensor_val(out);
    }
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, count, shape, batch, call->loc);
    new_op(c, OP_VIEW, out, t, NULL, call->loc);
    return tensor_val(out);
}

/* ---- basic indexing: x[:, i, a:b:c], x[..., 0], W[i] ---- */

/* An index part that is basic indexing (a slice, ..., an int), as opposed
 * to an integer tensor that gathers (embed, pick). Decided from the syntax
 * and the symbol table, before anything is evaluated. */
static bool basic_part(Ctx *c, Node *n) {
    if (n->kind == N_SLICE || n->kind == N_ELLIPSIS || n->kind == N_NUM)
        return true;
    if (n->kind == N_NEG)
        return basic_part(c, n->lhs);
    if (n->kind == N_NAME) {
        Sym *s = sym_find(&c->syms, n->name);
        return s && (s->kind == SYM_SCALAR || s->kind == SYM_DIM);
    }
    return n->kind == N_BINARY && basic_part(c, n->lhs) && basic_part(c, n->rhs);
}

bool basic_index(Ctx *c, Node *n) {
    for (int i = 0; i < n->nargs; i++)
        if (!basic_part(c, n->args[i]))
            return false;
    return n->nargs > 0;
}

/* A slice bound: absent (the default), or an int, negative from the end,
 * clamped to [0, size] as Python does. */
static bool bound(Ctx *c, Node *n, int64_t size, int64_t dflt, int64_t *out) {
    if (!n) {
        *out = dflt;
        return true;
    }
    if (!eval_int(c, n, out, NULL))
        return false;
    if (*out < 0)
        *out += size;
    *out = *out < 0 ? 0 : *out > size ? size : *out;
    return true;
}

/* x[parts]: each part takes one dim of x, `...` the dims no other part
 * takes, missing parts at the end are whole dims. An int selects (the dim
 * goes), a slice keeps every step-th index of [start, stop). The batch dim
 * can only be taken whole: inference runs on any number of rows. */
bool index_parts(Ctx *c, Tensor *x, Node *n, int64_t *start, int64_t *step, int64_t *shape, bool *batch,
                 int *out_rank) {
    int ellipsis = -1, taken = 0;
    for (int i = 0; i < n->nargs; i++) {
        if (n->args[i]->kind != N_ELLIPSIS) {
            taken++;
        } else if (ellipsis >= 0) {
            error_at(n->args[i]->loc, "an index can have only one '...'");
            return false;
        } else {
            ellipsis = i;
        }
    }
    if (taken > x->rank) {
        error_at(n->loc, "too many indices for %s: %d for %d dims", describe(x), taken, x->rank);
        return false;
    }
    int d = 0, rank = 0;
    for (int i = 0; i <= n->nargs && d < x->rank; i++) {
        Node *part = i < n->nargs ? n->args[i] : NULL;
        int whole = !part ? x->rank - d : part->kind == N_ELLIPSIS ? x->rank - taken : 0;
        for (int k = 0; k < whole; k++, d++, rank++) {  /* `...` or the dims left over */
            start[d] = 0;
            step[d] = 1;
            shape[rank] = x->shape[d];
            batch[rank] = x->batch[d];
        }
        if (!part || part->kind == N_ELLIPSIS)
            continue;
        int64_t size = x->shape[d];
        if (part->kind == N_SLICE) {
            int64_t lo, hi, by = 1;
            if (part->args[2] && !eval_int(c, part->args[2], &by, NULL))
                return false;
            if (by <= 0) {
                error_at(part->args[2]->loc, "slice step must be positive, got %lld", (long long)by);
                return false;
            }
            if (!bound(c, part->args[0], size, 0, &lo) || !bound(c, part->args[1], size, size, &hi))
                return false;
            int64_t len = hi > lo ? (hi - lo + by - 1) / by : 0;
            if (len == 0) {
                error_at(part->loc, "this slice of dim %d of %s (size %lld) is empty", d, describe(x),
                         (long long)size);
                return false;
            }
            if (x->batch[d] && len != size) {
                error_at(part->loc, "the batch dim of %s can only be taken whole (inference runs on any "
                         "number of rows)", describe(x));
                return false;
            }
            start[d] = lo;
            step[d] = by;
            shape[rank] = len;
            batch[rank++] = x->batch[d];
        } else {
            int64_t at;
            if (!eval_int(c, part, &at, NULL))
                return false;
            if (at < -size || at >= size) {
                error_at(part->loc, "index %lld is out of range for dim %d of %s (size %lld)", (long long)at,
                         d, describe(x), (long long)size);
                return false;
            }
            if (x->batch[d]) {
                error_at(part->loc, "%s cannot be indexed along its batch dim (inference runs on any "
                         "number of rows)", describe(x));
                return false;
            }
            start[d] = at < 0 ? at + size : at;
            step[d] = 0;
        }
        d++;
    }
    *out_rank = rank;
    return true;
}

Val slice_index(Ctx *c, Tensor *x, Node *n) {
    int64_t start[MAX_RANK], step[MAX_RANK], shape[MAX_RANK];
    bool batch[MAX_RANK];
    int rank;
    if (!index_parts(c, x, n, start, step, shape, batch, &rank))
        return ERR;
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, rank, shape, batch, n->loc);
    Op *op = new_op(c, OP_SLICE, out, x, NULL, n->loc);
    memcpy(op->start, start, sizeof start);
    memcpy(op->step, step, sizeof step);
    return tensor_val(out);
}

/* torch.arange(t).unsqueeze(0): the same indices as [1, t] (makemore's
 * `pos`); only dims of size 1 in front, as indexing a table takes them. */
Val range_unsqueeze(Ctx *c, Val range, Node *call) {
    int64_t d;
    if (call->nargs != 1 || call->args[0]->kind == N_KWARG) {
        error_at(call->loc, ".unsqueeze takes one dim");
        return ERR;
    }
    if (!eval_int(c, call->args[0], &d, NULL))
        return ERR;
    if (d != 0 && d != -(range.ones + 2)) {
        error_at(call->args[0]->loc, "only .unsqueeze(0) of torch.arange(...) is supported (a dim of size 1 in "
                 "front), got %lld", (long long)d);
        return ERR;
    }
    if (range.ones + 1 >= MAX_RANK) {
        error_at(call->loc, "torch.arange(...) with more than %d dims", MAX_RANK - 1);
        return ERR;
    }
    range.ones++;
    return range;
}

/* table[torch.arange(t)]: the first t rows, a slice; table[pos] with pos
 * = torch.arange(t).unsqueeze(0) the same with a dim of size 1 in front
 * ([1, t, n_embd]: makemore's position embeddings), the view's code. */
Val range_rows(Ctx *c, Tensor *x, Val range, Node *n) {
    if (range.ones) {
        range.ones--;
        Val rows = range_rows(c, x, range, n);
        if (rows.kind == V_ERROR)
            return ERR;
        Tensor *t = rows.t;
        if (t->rank == MAX_RANK) {
            error_at(n->loc, "indexing %s by torch.arange(...) of %d dims gives more than %d dims", describe(x),
                     range.ones + 2, MAX_RANK);
            return ERR;
        }
        int64_t shape[MAX_RANK] = {1};
        bool batch[MAX_RANK] = {false};
        memcpy(shape + 1, t->shape, sizeof(int64_t) * (size_t)t->rank);
        memcpy(batch + 1, t->batch, sizeof(bool) * (size_t)t->rank);
        Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, t->rank + 1, shape, batch, n->loc);
        new_op(c, OP_UNSQUEEZE, out, t, NULL, n->loc);
        return tensor_val(out);
    }
    int64_t len = (int64_t)range.s.value;
    if (x->rank < 1 || len < 1 || len > x->shape[0] || range.s.rows_expr) {
        error_at(n->args[0]->loc, "torch.arange(%lld) does not index the rows of %s", (long long)len, describe(x));
        return ERR;
    }
    if (x->batch[0] && len != x->shape[0]) {
        error_at(n->args[0]->loc, "the batch dim of %s can only be taken whole", describe(x));
        return ERR;
    }
    int64_t shape[MAX_RANK];
    memcpy(shape, x->shape, sizeof shape);
    shape[0] = len;
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, x->rank, shape, x->batch, n->loc);
    Op *op = new_op(c, OP_SLICE, out, x, NULL, n->loc);
    for (int d = 0; d < x->rank; d++)
        op->step[d] = 1;
    return tensor_val(out);
}

/* torch.arange(n), torch.arange(0, n), dtype=torch.long: the indices
 * 0..n-1 as a range, which picks rows (x[torch.arange(n), Y], as range(n))
 * or takes the first n rows of a table (wpe[torch.arange(t)]). */
Val arange(Ctx *c, Node *call) {
    static const char *const params[] = {"start", "end", "step", "dtype", "device", NULL};
    Node *arg[5];
    if (!bind_args(call, params, arg))
        return ERR;
    if (!arg[0]) {
        error_at(call->loc, "torch.arange needs an end");
        return ERR;
    }
    int64_t start = 0, step = 1, end;
    Scalar s;
    Node *end_node = arg[1] ? arg[1] : arg[0];
    if ((arg[1] && !eval_int(c, arg[0], &start, NULL)) || !eval_int(c, end_node, &end, &s) ||
        (arg[2] && !eval_int(c, arg[2], &step, NULL)))
        return ERR;
    if (start != 0 || step != 1) {
        error_at(call->loc, "only torch.arange(n) and torch.arange(0, n) are supported");
        return ERR;
    }
    if (end < 1) {
        error_at(end_node->loc, "torch.arange(%lld) is empty", (long long)end);
        return ERR;
    }
    Node *dt = arg[3];
    if (dt && !(dt->kind == N_ATTR && dt->lhs->kind == N_NAME && !strcmp(dt->lhs->name, "torch") &&
                (!strcmp(dt->name, "long") || !strcmp(dt->name, "int64")))) {
        error_at(dt->loc, "torch.arange takes dtype=torch.long only");
        return ERR;
    }
    return (Val){.kind = V_RANGE, .s = s};
}

/* F.one_hot(x, num_classes=k) of an integer input: float [x's dims, k]
 * (PyTorch gives int64; the lectures follow it with .float()). k must
 * cover the input's values. No gradient: x is an integer input. */
Val one_hot(Ctx *c, Node *call) {
    static const char *const params[] = {"input", "num_classes", NULL};
    Node *arg[2];
    if (!bind_args(call, params, arg))
        return ERR;
    if (!arg[0] || !arg[1]) {
        error_at(call->loc, "F.one_hot takes (input, num_classes)");
        return ERR;
    }
    Val x = eval(c, arg[0]);
    int64_t k;
    if (x.kind == V_ERROR || !eval_int(c, arg[1], &k, NULL))
        return ERR;
    if (x.kind != V_TENSOR || x.t->dtype != DT_INT || x.t->kind != T_INPUT) {
        error_at(arg[0]->loc, "F.one_hot needs an integer input");
        return ERR;
    }
    if (!not_computed(x.t, "the input of F.one_hot", arg[0]->loc))
        return ERR;
    if (x.t->rank + 1 > MAX_RANK) {
        error_at(call->loc, "F.one_hot of %s gives more than %d dims", describe(x.t), MAX_RANK);
        return ERR;
    }
    if (x.t->bound > k) {
        error_at(arg[1]->loc, "'%s' takes values in [0, %lld) but num_classes is %lld", x.t->name,
                 (long long)x.t->bound, (long long)k);
        return ERR;
    }
    int64_t shape[MAX_RANK];
    bool batch[MAX_RANK];
    for (int d = 0; d < x.t->rank; d++) {
        shape[d] = x.t->shape[d];
        batch[d] = x.t->batch[d];
    }
    shape[x.t->rank] = k;
    batch[x.t->rank] = false;
    Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, x.t->rank + 1, shape, batch, call->loc);
    if (!check_size(out, call->loc))
        return ERR;
    new_op(c, OP_ONE_HOT, out, x.t, NULL, call->loc);
    return tensor_val(out);
}

/* The sizes of x.split(arg, dim): chunks of arg along dim (the last one
 * smaller when arg does not divide it), or a list of sizes adding up to
 * the dim. Returns how many, 0 when reported. */
static int split_sizes(Ctx *c, Tensor *x, int d, Node *arg, int64_t *sizes, int max) {
    int64_t size = x->shape[d];
    if (arg->kind != N_LIST) {
        int64_t k;
        if (!eval_int(c, arg, &k, NULL))
            return 0;
        if (k <= 0) {
            error_at(arg->loc, "split size must be positive, got %lld", (long long)k);
            return 0;
        }
        int n = 0;
        for (int64_t at = 0; at < size; at += k) {
            if (n == max) {
                error_at(arg->loc, "splitting dim %d of %s into chunks of %lld gives more than %d parts", d,
                         describe(x), (long long)k, max);
                return 0;
            }
            sizes[n++] = size - at < k ? size - at : k;
        }
        return n;
    }
    if (arg->nargs > max) {
        error_at(arg->loc, "at most %d split sizes, got %d", max, arg->nargs);
        return 0;
    }
    int64_t total = 0;
    for (int i = 0; i < arg->nargs; i++) {
        if (!eval_int(c, arg->args[i], &sizes[i], NULL))
            return 0;
        if (sizes[i] <= 0) {
            error_at(arg->args[i]->loc, "split size must be positive, got %lld", (long long)sizes[i]);
            return 0;
        }
        total += sizes[i];
    }
    if (total != size) {
        error_at(arg->loc, "split sizes add up to %lld, but dim %d of %s is %lld", (long long)total, d,
                 describe(x), (long long)size);
        return 0;
    }
    return arg->nargs;
}

/* x.split(k, dim) and torch.split(x, k, dim) (makemore's
 * `q, k, v = c_attn(x).split(n_embd, dim=2)`): a tuple of slices along dim,
 * each an op of its own, for `a, b, c = ...` to unpack. The batch dim is
 * only taken whole. */
#define MAX_SPLIT 64
Val split(Ctx *c, Tensor *x, Node *arg, Node *dim, Loc loc) {
    int64_t d = 0;
    if (!arg) {
        error_at(loc, "split needs a split size or a list of sizes");
        return ERR;
    }
    if (dim && !eval_int(c, dim, &d, NULL))
        return ERR;
    int k = normalize_dim(x, d, dim ? dim->loc : loc);
    if (k < 0)
        return ERR;
    if (x->batch[k]) {
        error_at(dim ? dim->loc : loc, "%s cannot be split along its batch dim (inference runs on any number of rows)",
                 describe(x));
        return ERR;
    }
    int64_t sizes[MAX_SPLIT];
    int n = split_sizes(c, x, k, arg, sizes, MAX_SPLIT);
    if (!n)
        return ERR;
    Vec *items = arena_alloc(sizeof(Vec));
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        int64_t shape[MAX_RANK];
        memcpy(shape, x->shape, sizeof shape);
        shape[k] = sizes[i];
        Tensor *out = new_tensor(c, T_ACT, DT_FLOAT, x->rank, shape, x->batch, loc);
        Op *op = new_op(c, OP_SLICE, out, x, NULL, loc);
        for (int d2 = 0; d2 < x->rank; d2++)
            op->step[d2] = 1;
        op->start[k] = at;
        at += sizes[i];
        vec_push(items, out);
    }
    return (Val){.kind = V_TENSORS, .items = items};
}
