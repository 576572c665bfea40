/* plan.c - how the default mode (-O) lays out the training step.
 *
 * Ops that run over the same index space one after the other become one
 * loop nest (a group), so that a [32, 200] activation is read once per
 * step instead of once per op, and the temporaries a group makes and uses
 * itself live in registers (locals) instead of arrays. The same for the
 * backward pass, whose gradient contributions are grouped by the index
 * space their rule runs over. Fusing keeps every float operation and its
 * order per element, so a fused step computes the same bits as an
 * unfused one. -O0 plans nothing: every op is its own loop nest.
 * Memory: the plan comes from the arena. */
#include "ninjac.h"

#include <string.h>

bool same_space(const Tensor *a, const Tensor *b) {
    if (a->rank != b->rank)
        return false;
    for (int d = 0; d < a->rank; d++)
        if (a->shape[d] != b->shape[d] || a->batch[d] != b->batch[d])
            return false;
    return true;
}

static bool elementwise(OpKind kind) { return op_elementwise(kind); }

/* The forward tensors a gradient rule reads (the table's reads column;
 * besides integer inputs and the aux arrays ops keep beside their outputs,
 * which are always stored). */
static int rule_reads(const Grad *g, const Tensor **read) {
    const Op *op = g->op;
    unsigned reads = g->operand < 2 ? op_info[op->kind].reads[g->operand] : 0;
    int n = 0;
    if (reads & READ_A)
        read[n++] = op->in[0];
    if (reads & READ_B)
        read[n++] = op->in[1];
    if (reads & READ_Y)
        read[n++] = op->out;
    return n;
}

/* ---- forward ---- */

/* How many ops read each tensor (per tensor id). */
static int *count_readers(const Model *m) {
    int *readers = arena_alloc(sizeof(int) * (size_t)m->tensors.len);
    for (int i = 0; i < m->ops.len; i++) {
        const Op *op = m->ops.items[i];
        for (int k = 0; k < op->nin; k++)
            readers[op->in[k]->id]++;
    }
    return readers;
}

/* -O multiplies with ninjac's kernels (runtime/ninjac_kernels.h) unless
 * told to call the BLAS; f64 builds serve finite differences: BLAS. */
bool own_products(const EmitOptions *opt) { return opt->opt_level > 0 && !opt->f64 && opt->gemm != GEMM_BLAS; }

/* b as a bias of a product's value t: broadcast along every dim but the
 * last ([N] or [1, N] for t of [M, N]), a float of no batch rows. */
static bool is_bias(const Tensor *b, const Tensor *t) {
    if (b->dtype != DT_FLOAT || b->rank < 1 || b->rank > t->rank || has_batch(b) ||
        b->shape[b->rank - 1] != t->shape[t->rank - 1])
        return false;
    for (int d = 0; d < b->rank - 1; d++)
        if (b->shape[d] != 1)
            return false;
    return true;
}

/* `x @ W + b`: where the add is, the kernels compute the product and add
 * the bias as they store it (nj_gemm_bias) into the add's output, when the
 * product's value is a temporary read by that add alone. The product then
 * has no array and the add no loop of its own: at n = 1024, H = 4096 a
 * 16 MB array is neither written nor read once more. The same bits: the
 * store adds b to the finished sum, as the add did. At the add, not at
 * the product: a bias sliced from a stacked param (makemore's transformer)
 * is made between the two. */
static void biases_in_products(const Model *m, const EmitOptions *opt, Plan *plan) {
    if (!own_products(opt))
        return;
    const int *readers = count_readers(m);
    for (int i = 0; i < m->ops.len; i++) {
        const Op *add = m->ops.items[i];
        if (add->kind != OP_ADD || add->nin != 2 || add->out->frozen)
            continue;
        for (int side = 0; side < 2; side++) {
            const Tensor *t = add->in[side], *b = add->in[!side];
            const Op *mm = t->def;
            if (mm && mm->kind == OP_MATMUL && t->is_temp && t->dtype == DT_FLOAT && !t->frozen &&
                readers[t->id] == 1 && same_space(add->out, t) && is_bias(b, t)) {
                plan->bias_add[mm->id] = add;
                plan->product_of[add->id] = mm;
                break;
            }
        }
    }
}

/* A reduction that can ride along in the loop over its input: a plain sum
 * (mean divides after the loop). var needs the mean first; max keeps an
 * argmax. */
static bool fusable_reduction(const Op *op) { return op->kind == OP_SUM || op->kind == OP_MEAN; }

/* BatchNorm's y = (x - mean) * inv is elementwise once inv is made per
 * column before the loop: it opens a group that the ops after it join
 * (`hpreact = bngain * bnraw + bnbias`, the tanh), so y is read from
 * registers there, not from memory once more. */
static bool made_at_index(OpKind kind) { return elementwise(kind) || kind == OP_BATCHNORM; }

static bool joins_forward(const Plan *plan, const Group *g, const Op *op) {
    if (elementwise(op->kind)) {
        if (!same_space(op->out, g->space))
            return false;
    } else if (!fusable_reduction(op) || !same_space(op->in[0], g->space)) {
        return false;
    }
    /* Values made in the group are read at the loop's own index; a
     * reduction's result is complete only after the loop. */
    for (int k = 0; k < op->nin; k++) {
        const Op *def = op->in[k]->def;
        if (def && plan->op_group[def->id] == g && !made_at_index(def->kind))
            return false;
    }
    return true;
}

static void group_forward(const Model *m, Plan *plan) {
    Group *open = NULL;
    for (int i = 0; i < m->ops.len; i++) {
        Op *op = m->ops.items[i];
        bool own_code = plan->product_of[op->id];   /* the product's */
        if (!open || !open->space || own_code || !joins_forward(plan, open, op)) {
            open = arena_alloc(sizeof(Group));
            open->first = i;
            /* NULL: an op with code of its own, which nothing joins */
            open->space = own_code                 ? NULL
                          : made_at_index(op->kind) ? op->out
                          : fusable_reduction(op)   ? op->in[0]
                                                    : NULL;
            vec_push(&plan->fwd, open);
        }
        open->count++;
        plan->op_group[op->id] = open;
    }
}

/* BatchNorm's y = (x - mean) * inv, which its backward reads twice, is
 * recomputed there from x, mean and inv (arrays that stay anyway) instead
 * of stored: the same expression, so the same bits, and at n = 1024,
 * H = 4096 a 16 MB array neither written nor fetched by the forward.
 * The backward's loops read x where they read y, so they move no more. */
static bool recomputable(const Plan *plan, const Op *op) {
    return op->kind == OP_BATCHNORM && op->in[0]->def && !plan->local[op->in[0]->id] &&
           op->in[0]->dtype == DT_FLOAT && !op->out->frozen;
}

/* A value made by an elementwise op and read only inside its group, by no
 * gradient rule, needs no array: a temporary, or a name of the spec that
 * nothing reads back (the notebook's hpreact: the tanh's backward reads
 * h). A name then has no act.<name> in `grads` either, as a rewritten
 * line's names; -O0 keeps them all, and so do f64 builds, whose finite
 * differences nudge every name. The loss and the logits are the runtime's. */
static void forward_locals(const Model *m, const Backward *bw, const EmitOptions *opt, Plan *plan) {
    bool *read_elsewhere = arena_alloc(sizeof(bool) * (size_t)m->tensors.len);
    bool *read_by_rule = arena_alloc(sizeof(bool) * (size_t)m->tensors.len);
    const int *readers = count_readers(m);
    for (int i = 0; i < bw->grads.len; i++) {
        const Tensor *by_rule[3];
        int n = rule_reads(bw->grads.items[i], by_rule);
        for (int k = 0; k < n; k++)
            read_by_rule[by_rule[k]->id] = true;
    }
    for (int i = 0; i < m->ops.len; i++) {
        const Op *op = m->ops.items[i];
        for (int k = 0; k < op->nin; k++) {
            const Tensor *in = op->in[k];
            if (in->def && (plan->op_group[in->def->id] != plan->op_group[op->id] ||
                            !plan->op_group[op->id]->space))
                read_elsewhere[in->id] = true;
        }
    }
    for (int i = 0; i < m->ops.len; i++) {
        const Op *op = m->ops.items[i];
        const Tensor *t = op->out;
        bool droppable = t->is_temp || (!opt->f64 && readers[t->id] && !t->frozen && t != m->logits);
        plan->local[t->id] = droppable && elementwise(op->kind) && !read_elsewhere[t->id] &&
                             !read_by_rule[t->id] && t != m->loss &&
                             !plan->product_of[op->id];   /* the product stores it */
        plan->recomputed[t->id] = droppable && recomputable(plan, op) && !read_elsewhere[t->id] &&
                                  readers[t->id] && read_by_rule[t->id] && !opt->f64;
        plan->local[t->id] |= plan->recomputed[t->id];
    }
}

/* ---- backward ---- */

/* The index space a contribution's loop runs over, or NULL if its rule
 * has code of its own (matmul, scatter, softmax's row sums, ...). */
static const Tensor *grad_space(const Grad *g) {
    const Op *op = g->op;
    if (elementwise(op->kind))
        return op->out;
    switch (op->kind) {
    case OP_SUM:
    case OP_MEAN:
    case OP_VAR:
    case OP_MAX:
    case OP_CROSS_ENTROPY:
    case OP_BATCHNORM:
        return op->in[0];
    default:
        return NULL;
    }
}

/* d(out) as the rule reads it: at the loop's index (elementwise rules),
 * or broadcast (reductions and cross_entropy read one d(out) for many
 * elements, so it must be complete before their loop starts). */
static bool reads_dout_broadcast(const Grad *g) { return !elementwise(g->op->kind); }

/* BatchNorm's closed-form backward needs two column sums of d(y) over the
 * rows (of d(y) and of d(y) * y) before its loop can start. They ride
 * along at the end of the loop that finished d(y), when that loop runs
 * over y's indices, instead of reading d(y) and y once more; its own loop
 * then opens a group that later rules join (the bias's sum before it).
 * At n = 1024, H = 4096 that is three passes over 16 MB arrays less. */
static bool needs_column_sums(const Grad *g) { return g->op->kind == OP_BATCHNORM; }

static void group_backward(const Model *m, const Backward *bw, Plan *plan) {
    bool *written = arena_alloc(sizeof(bool) * (size_t)m->tensors.len);   /* in the open group */
    Group *open = NULL;
    for (int i = 0; i < bw->grads.len; i++) {
        Grad *g = bw->grads.items[i];
        const Tensor *space = grad_space(g);
        bool joins = open && open->space && space && same_space(space, open->space) &&
                     !(reads_dout_broadcast(g) && written[g->op->out->id]) && !needs_column_sums(g);
        bool sums_ride = needs_column_sums(g) && open && open->space && !open->bn_sums &&
                         same_space(g->op->out, open->space);
        if (sums_ride)
            open->bn_sums = g;
        if (!joins) {
            if (open)
                for (int k = open->first; k < open->first + open->count; k++)
                    written[((Grad *)bw->grads.items[k])->target->id] = false;
            open = arena_alloc(sizeof(Group));
            open->first = i;
            open->space = space;
            open->bn_sums_before = sums_ride;
            vec_push(&plan->bwd, open);
        }
        open->count++;
        plan->grad_group[i] = open;
        written[g->target->id] = true;
    }
}

/* Rules that write every element of the operand's gradient exactly once;
 * the others scatter (indexing, max) or sum over a broadcast. */
bool grad_covers_target(const Grad *g) { return !op_info[g->op->kind].scatters && g->reduce_axes == 0; }

/* A gradient needs no array when every contribution to it and every read
 * of it happen in one group at the loop's own index, the first assigns,
 * and nobody outside asks for it (params' gradients are the step's
 * result). */
static void backward_locals(const Model *m, const Backward *bw, Plan *plan) {
    const Group **home = arena_alloc(sizeof(Group *) * (size_t)m->tensors.len);
    bool *ok = arena_alloc(sizeof(bool) * (size_t)m->tensors.len);
    bool *seen = arena_alloc(sizeof(bool) * (size_t)m->tensors.len);
    for (int i = 0; i < m->tensors.len; i++) {
        const Tensor *t = m->tensors.items[i];
        ok[i] = t->kind == T_ACT && t->needs_grad && t != m->loss;
    }
    for (int i = 0; i < bw->grads.len; i++) {
        const Grad *g = bw->grads.items[i];
        const Group *grp = plan->grad_group[i];
        const Tensor *t = g->target, *y = g->op->out;
        int id = t->id;
        if (!seen[id] && !grad_covers_target(g))
            ok[id] = false;
        if (seen[id] && home[id] != grp)
            ok[id] = false;
        if (!grp->space || !same_space(t, grp->space))
            ok[id] = false;
        seen[id] = true;
        home[id] = grp;
        /* the read of d(out) by this rule */
        if (!home[y->id] || home[y->id] != grp || reads_dout_broadcast(g) || !grp->space)
            ok[y->id] = false;
    }
    for (int i = 0; i < m->tensors.len; i++)
        plan->dlocal[i] = ok[i] && seen[i];
}

/* d(target) is d(out) element for element: a view, or an elementwise op
 * whose rule for this operand is d(out) itself (either side of `+`, the
 * left of `-`) and which broadcasts neither way. */
static bool passes_gradient_through(const Grad *g) {
    const Op *op = g->op;
    if (op->kind == OP_VIEW)
        return true;
    const char *rule = g->operand < 2 ? op_info[op->kind].grad[g->operand] : NULL;
    if (!rule || strcmp(rule, "$g") || g->reduce_axes || g->target->rank != op->out->rank)
        return false;
    for (int d = 0; d < op->out->rank; d++)
        if (g->target->shape[d] != op->out->shape[d])
            return false;
    return true;
}

/* The tensor whose gradient array holds t's gradient: its own, or another's. */
const Tensor *gradient_array(const Plan *plan, const Tensor *t) {
    return plan->galias[t->id] ? plan->galias[t->id] : t;
}

/* How many gradient rules contribute to each tensor's gradient (per id). */
static int *count_contributions(const Model *m, const Backward *bw) {
    int *contributions = arena_alloc(sizeof(int) * (size_t)m->tensors.len);
    for (int i = 0; i < bw->grads.len; i++)
        contributions[((const Grad *)bw->grads.items[i])->target->id]++;
    return contributions;
}

/* An operand whose only gradient contribution passes d(out) through (an
 * activation: params' gradients are the step's result) takes d(out)'s
 * array as its own, read with its own shape, instead of a copy of it:
 * `hprebn = embcat @ W1 + b1` at n = 1024, H = 4096 copied 16 MB a step. */
static void gradient_aliases(const Model *m, const Backward *bw, Plan *plan) {
    const int *contributions = count_contributions(m, bw);
    for (int i = 0; i < bw->grads.len; i++) {
        const Grad *g = bw->grads.items[i];
        const Tensor *t = g->target, *y = g->op->out;
        if (passes_gradient_through(g) && t->kind == T_ACT && contributions[t->id] == 1 && !plan->dlocal[t->id]) {
            /* d(out) in a register would be stored into d(target)'s array
             * as it is: store it in its own array, which d(target) takes */
            plan->dlocal[y->id] = false;
            plan->galias[t->id] = gradient_array(plan, y);
        }
    }
}

/* Whether rule g, of group grp, reads d(out) at the loop's own index (the
 * rules that read it broadcast need all of it). */
static bool reads_dout_at_index(const Grad *g, const Group *grp) {
    return grp->space && (elementwise(g->op->kind) || g->op->kind == OP_BATCHNORM);
}

/* Whether the gradient array s is dead once rule r has read it: every rule
 * that reads a gradient stored in s comes at or before r, and those of r's
 * group read it at the loop's own index, in statements before r's. */
static bool dead_after(const Backward *bw, const Plan *plan, const Tensor *s, int r) {
    for (int k = 0; k < bw->grads.len; k++) {
        const Grad *g = bw->grads.items[k];
        if (gradient_array(plan, g->op->out) != s)
            continue;
        if (k > r || (plan->grad_group[k] == plan->grad_group[r] && !reads_dout_at_index(g, plan->grad_group[k])))
            return false;
    }
    return true;
}

/* A gradient that one rule writes at the loop's own index overwrites, in
 * place, a gradient array that its loop has just read at that index and
 * nobody reads after it: the store hits a line already in cache instead of
 * fetching a line of a fresh array first, and the array goes. BatchNorm's
 * backward at n = 1024, H = 4096: dbnraw is written over dh and dhprebn
 * over dbnraw, two 16 MB arrays neither fetched nor kept. */
static void gradients_in_place(const Model *m, const Backward *bw, Plan *plan) {
    const int *contributions = count_contributions(m, bw);
    for (int r = 0; r < bw->grads.len; r++) {
        const Grad *g = bw->grads.items[r];
        const Group *grp = plan->grad_group[r];
        const Tensor *x = g->target;
        if (x->kind != T_ACT || contributions[x->id] != 1 || !grad_covers_target(g) || plan->dlocal[x->id] ||
            plan->galias[x->id] || !reads_dout_at_index(g, grp) || !same_space(x, grp->space))
            continue;
        for (int k = r; k >= grp->first; k--) {   /* the d(out) r reads first: its line is the latest in cache */
            const Tensor *y = ((const Grad *)bw->grads.items[k])->op->out, *s = gradient_array(plan, y);
            if (plan->dlocal[y->id] || s == m->loss || s->kind != T_ACT || tensor_numel(s) != tensor_numel(x) ||
                !same_space(y, grp->space) || !dead_after(bw, plan, s, r))
                continue;
            for (int i = 0; i < m->tensors.len; i++)   /* the views of d(x) go with it */
                if (plan->galias[i] == x)
                    plan->galias[i] = s;
            plan->galias[x->id] = s;
            plan->gin_place[x->id] = true;
            break;
        }
    }
}

/* A view of an activation (a view, unsqueeze, contiguous or a rename like
 * `hprev = ht`) reads that activation's array with its own shape instead of
 * copying it: every tensor is written once, by its op, so the two stay
 * equal. Not where a struct field must exist for the runtime (the loss, the
 * logits), nor for batch statistics (frozen: calibration writes them). */
static void view_aliases(const Model *m, Plan *plan) {
    for (int i = 0; i < m->ops.len; i++) {
        const Op *op = m->ops.items[i];
        const Tensor *x = op->in[0], *y = op->out;
        if (!(op->kind == OP_VIEW || op->kind == OP_UNSQUEEZE || op->kind == OP_CONTIGUOUS))
            continue;
        if (x->kind != T_ACT || y->kind != T_ACT || x->dtype == DT_INT || x->dtype != y->dtype || y->rank == 0 ||
            x->frozen || y->frozen || y == m->loss || y == m->logits || plan->local[x->id] || plan->local[y->id] ||
            has_batch(x) != has_batch(y))   /* inference sizes both by its rows, or neither */
            continue;
        plan->valias[y->id] = plan->valias[x->id] ? plan->valias[x->id] : x;
    }
}

void plan_step(const Model *m, const Backward *bw, const EmitOptions *opt, Plan *plan) {
    memset(plan, 0, sizeof *plan);
    plan->op_group = arena_alloc(sizeof(Group *) * (size_t)(m->ops.len + 1));
    plan->grad_group = arena_alloc(sizeof(Group *) * (size_t)(bw->grads.len + 1));
    plan->local = arena_alloc(sizeof(bool) * (size_t)m->tensors.len);
    plan->recomputed = arena_alloc(sizeof(bool) * (size_t)m->tensors.len);
    plan->dlocal = arena_alloc(sizeof(bool) * (size_t)m->tensors.len);
    plan->galias = arena_alloc(sizeof(Tensor *) * (size_t)m->tensors.len);
    plan->valias = arena_alloc(sizeof(Tensor *) * (size_t)m->tensors.len);
    plan->gin_place = arena_alloc(sizeof(bool) * (size_t)m->tensors.len);
    plan->bias_add = arena_alloc(sizeof(Op *) * (size_t)(m->ops.len + 1));
    plan->product_of = arena_alloc(sizeof(Op *) * (size_t)(m->ops.len + 1));
    if (opt->opt_level == 0)
        return;
    plan->fused = true;
    biases_in_products(m, opt, plan);
    group_forward(m, plan);
    forward_locals(m, bw, opt, plan);
    group_backward(m, bw, plan);
    backward_locals(m, bw, plan);
    gradient_aliases(m, bw, plan);
    gradients_in_place(m, bw, plan);
    view_aliases(m, plan);
}
