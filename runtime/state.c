/* state.c - see state.h. */
#include "state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "safetensors.h"

#define fail(err, errlen, path, ...) nj_fail((err), (errlen), (path), 0, __VA_ARGS__)

#define FORMAT_PARAMS "ninjac-params"
#define FORMAT_CHECKPOINT "ninjac-checkpoint"
#define FORMAT_VERSION "3" /* 2: batch_rng is torch's generator; 3: checkpoints name their vocabulary */
#define META_LOSS_WINDOW_SUM "loss_window_sum"
#define META_VOCAB "vocab"
#define META_OPTIM "optim"
#define EXP_AVG "adamw.exp_avg."       /* + a param's name: torch's state names */
#define EXP_AVG_SQ "adamw.exp_avg_sq."
/* A checkpoint's draw count: far beyond any run (2^62 draws at 10^10 a
 * second take 14 years), and far enough below INT64_MAX that counting on
 * cannot overflow. */
#define MAX_DRAWS ((uint64_t)1 << 62)

static void *zalloc(size_t n) {
    size_t size = (n + 63) / 64 * 64;
    void *p = aligned_alloc(64, size ? size : 64);
    if (p)
        memset(p, 0, size ? size : 64);
    return p;
}

int state_new(State *s, const NinjacModel *m) {
    memset(s, 0, sizeof *s);
    s->m = m;
    s->params = zalloc(m->params_bytes);
    s->acts = zalloc(m->acts_bytes);
    s->grads = zalloc(m->grads_bytes);
    s->stats = zalloc(m->stats_bytes);
    s->ws = zalloc(m->infer_bytes);
    s->exp_avg = zalloc(m->params_bytes);
    s->exp_avg_sq = zalloc(m->params_bytes);
    if (!s->params || !s->acts || !s->grads || !s->stats || !s->ws || !s->exp_avg || !s->exp_avg_sq) {
        state_free(s);
        return -1;
    }
    return 0;
}

void state_free(State *s) {
    free(s->params);
    free(s->acts);
    free(s->grads);
    free(s->stats);
    free(s->ws);
    free(s->exp_avg);
    free(s->exp_avg_sq);
    memset(s, 0, sizeof *s);
}

static float *at(void *base, size_t offset) { return (float *)((char *)base + offset); }

static int64_t numel(int rank, const int *shape) {
    int64_t n = 1;
    for (int d = 0; d < rank; d++)
        n *= shape[d];
    return n;
}

static bool model_names_generator(const NinjacModel *m) {
    for (int i = 0; i < m->nparams; i++)
        if (m->params[i].named_generator)
            return true;
    return false;
}

/* Each step is one PyTorch tensor-with-scalar op: the scalar is rounded to
 * float first, and so is every result. */
static void init_steps(const NjParam *p, float *x, int64_t count) {
    for (int k = 0; k < p->nsteps; k++) {
        float v = (float)p->steps[k].value;
        char op = p->steps[k].op;
        for (int64_t i = 0; i < count; i++)
            x[i] = nj_init_step(op, x[i], v);
    }
}

void init_params(const NinjacModel *m, void *params, uint64_t seed, TorchGen *batches) {
    TorchGen g;
    tg_seed(&g, seed);
    init_params_from(m, params, &g, batches);
}

void init_params_from(const NinjacModel *m, void *params, const TorchGen *start, TorchGen *batches) {
    TorchGen named = *start, fallback = *start;
    bool has_named = model_names_generator(m);
    if (has_named)
        tg_seed(&fallback, TORCH_DEFAULT_SEED);
    for (int i = 0; i < m->nparams; i++) {
        const NjParam *p = &m->params[i];
        float *x = at(params, p->t.offset);
        int64_t count = numel(p->t.rank, p->t.shape);
        TorchGen *g = p->named_generator ? &named : &fallback;
        if (p->dist == NJ_INIT_RANDN)
            tg_randn(g, x, count);
        else if (p->dist == NJ_INIT_UNIFORM)
            tg_rand(g, x, count);
        else
            for (int64_t k = 0; k < count; k++)
                x[k] = (float)p->value;
        init_steps(p, x, count);
    }
    if (batches)
        *batches = has_named ? named : fallback;
}

int init_generator(const NinjacModel *m, uint64_t seed, TorchGen *batches) {
    void *scratch = malloc(m->params_bytes);
    if (!scratch) {
        fprintf(stderr, "error: out of memory\n");
        return -1;
    }
    init_params(m, scratch, seed, batches);
    free(scratch);
    return 0;
}

static void add_tensor(StWriter *w, const char *name, const NjTensor *t, const void *base) {
    int64_t shape[NJ_MAX_RANK];
    for (int d = 0; d < t->rank; d++)
        shape[d] = t->shape[d];
    st_add(w, name, ST_F32, t->rank, shape, at((void *)base, t->offset));
}

/* A checkpoint's minibatch generator, whole, so that loading it costs the
 * same at any step: "seed S draws N index I mt W0 ... W623" with the words
 * as 8 hex digits. Nothing after the init reads torch's cached normal, so
 * it is not kept. */
enum { RNG_TEXT_MAX = 96 + 624 * 9 };

/* An AdamW checkpoint's hyperparameters, one metadata key each: hex
 * floats, lr_decay_step a decimal integer. */
static const char *const ADAMW_META[7] = {"adamw.lr", "adamw.lr_decay_to", "adamw.lr_decay_step",
                                          "adamw.weight_decay", "adamw.beta1", "adamw.beta2", "adamw.eps"};

static void format_rng(const TorchGen *g, char *out) {
    int len = snprintf(out, RNG_TEXT_MAX, "seed %" PRIu64 " draws %" PRId64 " index %d mt", g->seed, g->draws,
                       g->mt.index);
    for (int k = 0; k < 624; k++)
        len += snprintf(out + len, (size_t)(RNG_TEXT_MAX - len), " %08" PRIx32, g->mt.mt[k]);
}

/* "KEY <decimal>" at *p, the number at most max; advances *p. */
static bool parse_field(const char **p, const char *key, uint64_t max, uint64_t *out) {
    size_t n = strlen(key);
    if (strncmp(*p, key, n) || (*p)[n] < '0' || (*p)[n] > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(*p + n, &end, 10);
    if (errno || v > max)
        return false;
    *out = v;
    *p = end;
    return true;
}

static bool parse_rng(const char *text, TorchGen *g) {
    uint64_t seed, draws, index;
    const char *p = text;
    if (!p || !parse_field(&p, "seed ", UINT64_MAX, &seed) || !parse_field(&p, " draws ", MAX_DRAWS, &draws) ||
        !parse_field(&p, " index ", 624, &index) || strncmp(p, " mt", 3))
        return false;
    tg_seed(g, seed);
    g->draws = (int64_t)draws;
    g->mt.index = (int)index;
    uint32_t any = 0;
    p += 3;
    for (int k = 0; k < 624; k++, p += 9) {
        if (p[0] != ' ')
            return false;
        uint32_t word = 0;
        for (int d = 1; d <= 8; d++) {
            int c = p[d], v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (v < 0)
                return false;
            word = word << 4 | (uint32_t)v;
        }
        g->mt.mt[k] = word;
        /* Of word 0 the recurrence reads only the top bit: the state is
         * those 19937 bits, and if all are zero it only ever outputs 0. */
        any |= k ? word : word & 0x80000000u;
    }
    return *p == 0 && any;
}

int state_save(const State *s, const char *path, bool checkpoint, char *err, size_t errlen) {
    const NinjacModel *m = s->m;
    StWriter *w = st_writer_new();
    char step[32], window_sum[64];
    if (!w)
        return fail(err, errlen, path, "out of memory");
    st_add_meta(w, "format", checkpoint ? FORMAT_CHECKPOINT : FORMAT_PARAMS);
    st_add_meta(w, "version", FORMAT_VERSION);
    st_add_meta(w, "model", m->name);
    st_add_meta(w, "dims", m->dims);
    for (int i = 0; i < m->nparams; i++)
        add_tensor(w, m->params[i].t.name, &m->params[i].t, s->params);
    if (checkpoint) {
        snprintf(step, sizeof step, "%" PRId64, s->step);
        st_add_meta(w, "step", step);
        char rng[RNG_TEXT_MAX];
        format_rng(&s->batch_rng, rng);
        st_add_meta(w, "batch_rng", rng);
        /* %a: a hex float, which strtod reads back to the same double. */
        snprintf(window_sum, sizeof window_sum, "%a", s->loss_window_sum);
        st_add_meta(w, META_LOSS_WINDOW_SUM, window_sum);
        st_add_meta(w, "calibrated", s->calibrated ? "1" : "0");
        st_add_meta(w, META_OPTIM, s->optim == OPTIM_ADAMW ? "adamw" : "sgd");
    }
    char hyper[7][64];
    if (checkpoint && s->optim == OPTIM_ADAMW) {
        const AdamWHyper *h = &s->adamw;
        double values[7] = {h->lr, h->lr_decay_to, 0, h->weight_decay, h->beta1, h->beta2, h->eps};
        for (int k = 0; k < 7; k++)
            snprintf(hyper[k], sizeof hyper[k], "%a", values[k]);   /* read back to the same double */
        snprintf(hyper[2], sizeof hyper[2], "%" PRId64, h->lr_decay_step);
        for (int k = 0; k < 7; k++)
            st_add_meta(w, ADAMW_META[k], hyper[k]);
    }
    if (s->vocab[0])
        st_add_meta(w, META_VOCAB, s->vocab);
    if (checkpoint) {
        for (int i = 0; s->calibrated && i < m->nstats; i++) {
            char name[300];   /* st_add copies it; a spec's names have at most 256 characters */
            snprintf(name, sizeof name, "stat.%s", m->stats[i].name);
            add_tensor(w, name, &m->stats[i], s->stats);
        }
    }
    for (int i = 0; checkpoint && s->optim == OPTIM_ADAMW && i < m->nparams; i++) {
        char name[300];   /* st_add copies it */
        snprintf(name, sizeof name, EXP_AVG "%s", m->params[i].t.name);
        add_tensor(w, name, &m->params[i].t, s->exp_avg);
        snprintf(name, sizeof name, EXP_AVG_SQ "%s", m->params[i].t.name);
        add_tensor(w, name, &m->params[i].t, s->exp_avg_sq);
    }
    int rc = st_write_atomic(w, path, err, errlen);
    st_writer_free(w);
    return rc;
}


static const char *shape_text(char *buf, size_t len, int rank, const int64_t *shape64, const int *shape32) {
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < rank && used < len; d++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", d ? ", " : "",
                                 shape64 ? (long long)shape64[d] : (long long)shape32[d]);
    if (used < len)
        snprintf(buf + used, len - used, "]");
    return buf;
}

/* A float tensor of the file that must match t exactly in dtype and shape. */
static int take_tensor(const StFile *f, const char *path, const char *name, const NjTensor *t, void *base,
                       char *err, size_t errlen) {
    const StTensor *x = st_find(f, name);
    if (!x)
        return fail(err, errlen, path, "has no tensor '%s'", name);
    bool same = x->rank == t->rank;
    for (int d = 0; same && d < t->rank; d++)
        same = x->shape[d] == t->shape[d];
    if (x->dtype != ST_F32)
        return fail(err, errlen, path, "tensor '%s' is %s; expected F32", name, st_dtype_name(x->dtype));
    if (!same) {
        char want[96], got[96];
        return fail(err, errlen, path, "tensor '%s' has shape %s, but the spec says %s", name,
                    shape_text(got, sizeof got, x->rank, x->shape, NULL),
                    shape_text(want, sizeof want, t->rank, NULL, t->shape));
    }
    memcpy(at(base, t->offset), x->data, x->nbytes);
    return 0;
}

static int check_identity(const NinjacModel *m, const StFile *f, const char *path, bool *is_checkpoint,
                          char *err, size_t errlen) {
    const char *format = st_meta(f, "format");
    const char *model = st_meta(f, "model");
    const char *dims = st_meta(f, "dims");
    *is_checkpoint = format && !strcmp(format, FORMAT_CHECKPOINT);
    if (format && strcmp(format, FORMAT_CHECKPOINT) && strcmp(format, FORMAT_PARAMS))
        return fail(err, errlen, path, "is a '%s' file, not ninjac params or a checkpoint", format);
    const char *version = st_meta(f, "version");
    if (format && (!version || strcmp(version, FORMAT_VERSION)))
        return fail(err, errlen, path, "has format version %s; this trainer reads version %s",
                    version ? version : "(none)", FORMAT_VERSION);
    if (model && strcmp(model, m->name))
        return fail(err, errlen, path, "was written for model '%s', not '%s' (hint: use that model's trainer)",
                    model, m->name);
    if (dims && strcmp(dims, m->dims))
        return fail(err, errlen, path, "was written with dims '%s'; this trainer was compiled with '%s' "
                    "(hint: rebuild with the same -D)", dims, m->dims);
    return 0;
}

static bool is_param(const NinjacModel *m, const char *name) {
    for (int i = 0; i < m->nparams; i++)
        if (!strcmp(m->params[i].t.name, name))
            return true;
    return false;
}

/* name is "stat.<a batch statistic of the spec>". */
static bool is_stat(const NinjacModel *m, const char *name) {
    if (strncmp(name, "stat.", 5) != 0)
        return false;
    for (int i = 0; i < m->nstats; i++)
        if (!strcmp(m->stats[i].name, name + 5))
            return true;
    return false;
}

/* name is "adamw.exp_avg.<param>" or "adamw.exp_avg_sq.<param>". */
static bool is_moment(const NinjacModel *m, const char *name) {
    return (!strncmp(name, EXP_AVG, strlen(EXP_AVG)) && is_param(m, name + strlen(EXP_AVG))) ||
           (!strncmp(name, EXP_AVG_SQ, strlen(EXP_AVG_SQ)) && is_param(m, name + strlen(EXP_AVG_SQ)));
}

/* Every tensor of the file must have been taken: a param, a stat.<name>
 * of a calibrated checkpoint, or a moment of an AdamW one. Names the first
 * one that was not, saying whether it is a statistic out of place or
 * unknown to the spec. */
static int check_no_other_tensors(const NinjacModel *m, const StFile *f, const char *path, bool calibrated,
                                  bool adamw, char *err, size_t errlen) {
    for (int i = 0; i < f->count; i++) {
        const char *name = f->tensors[i].name;
        if (is_param(m, name) || (calibrated && is_stat(m, name)) || (adamw && is_moment(m, name)))
            continue;
        if (is_moment(m, name))
            return fail(err, errlen, path, "has AdamW moments ('%s') but is not a checkpoint of an AdamW run", name);
        if (is_stat(m, name))
            return fail(err, errlen, path, "has batch statistics ('%s') but is not a checkpoint marked calibrated",
                        name);
        return fail(err, errlen, path, "has a tensor '%s' that the spec does not declare", name);
    }
    return 0;
}

/* A checkpoint's step: the whole string, a decimal integer >= 0 (sscanf
 * would take "12abc" and "-5"). */
static bool parse_step(const char *v, int64_t *step) {
    if (!v || *v < '0' || *v > '9')
        return false;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    *step = x;
    return !*end && !errno;
}

/* The loss window sum of a checkpoint: the whole value must parse to a
 * finite number. */
static int take_window_sum(const StFile *f, const char *path, double *sum, char *err, size_t errlen) {
    const char *v = st_meta(f, META_LOSS_WINDOW_SUM);
    char *end = NULL;
    *sum = v ? strtod(v, &end) : 0;
    if (!v || !*v || *end || !isfinite(*sum))
        return fail(err, errlen, path, "has a missing or malformed %s '%s' (expected a finite C hex float such "
                    "as 0x1.8p+3)", META_LOSS_WINDOW_SUM, v ? v : "");
    return 0;
}

/* A vocabulary as the data loader builds it: '.', then distinct printable
 * ASCII characters in increasing order. Required in a checkpoint. */
static int take_vocab(const StFile *f, const char *path, bool required, char *vocab, char *err, size_t errlen) {
    const char *v = st_meta(f, META_VOCAB);
    size_t n = v ? strlen(v) : 0;
    bool ok = v && n >= 2 && n <= 256 && v[0] == '.';
    for (size_t i = 1; ok && i < n; i++)
        ok = v[i] >= 0x20 && v[i] < 0x7f && v[i] != '.' && (i == 1 || v[i] > v[i - 1]);
    if (!v && !required)
        return 0;
    if (!ok)
        return fail(err, errlen, path, "has a missing or malformed %s '%s' (expected '.' and then the data's "
                    "characters in increasing order)", META_VOCAB, v ? v : "");
    memcpy(vocab, v, n + 1);
    return 0;
}

/* An AdamW checkpoint's hyperparameters (see ADAMW_META), each the whole
 * string, checked as the command line checks them. */
static int take_adamw(const StFile *f, const char *path, AdamWHyper *h, char *err, size_t errlen) {
    double *values[7] = {&h->lr, &h->lr_decay_to, NULL, &h->weight_decay, &h->beta1, &h->beta2, &h->eps};
    for (int k = 0; k < 7; k++) {
        const char *v = st_meta(f, ADAMW_META[k]);
        char *end = NULL;
        bool ok = v && *v;
        if (ok && values[k]) {
            *values[k] = strtod(v, &end);
            ok = !*end && isfinite(*values[k]);
        } else if (ok) {
            ok = parse_step(v, &h->lr_decay_step);
        }
        if (!ok)
            return fail(err, errlen, path, "is an AdamW checkpoint with a missing or malformed %s '%s' (expected "
                        "a finite C hex float such as 0x1.8p-3%s)", ADAMW_META[k], v ? v : "",
                        values[k] ? "" : ", or for this key a decimal integer");
    }
    const char *why = adamw_invalid(h);
    if (why)
        return fail(err, errlen, path, "holds AdamW hyperparameters that the trainer refuses: %s", why);
    return 0;
}

/* Describes t's first non-finite value as "NAME[flat index] = VALUE";
 * false if every value is finite. */
static bool nonfinite_value(const NjTensor *t, const void *base, char *what, size_t len) {
    const float *x = at((void *)base, t->offset);
    for (int64_t k = 0, n = numel(t->rank, t->shape); k < n; k++)
        if (!isfinite(x[k])) {
            snprintf(what, len, "%s[%" PRId64 "] = %g", t->name, k, (double)x[k]);
            return true;
        }
    return false;
}

int state_load(State *s, const char *path, bool *is_checkpoint, char *err, size_t errlen) {
    const NinjacModel *m = s->m;
    StFile f;
    if (st_read(path, &f, err, errlen) != 0)
        return -1;
    int rc = check_identity(m, &f, path, is_checkpoint, err, errlen);
    /* Load into a scratch copy so that a failure leaves the state as it was. */
    void *params = zalloc(m->params_bytes), *stats = zalloc(m->stats_bytes);
    void *exp_avg = zalloc(m->params_bytes), *exp_avg_sq = zalloc(m->params_bytes);
    OptimKind optim = OPTIM_SGD;
    AdamWHyper adamw = {0};
    if (rc == 0 && (!params || !stats || !exp_avg || !exp_avg_sq))
        rc = fail(err, errlen, path, "out of memory");
    for (int i = 0; rc == 0 && i < m->nparams; i++)
        rc = take_tensor(&f, path, m->params[i].t.name, &m->params[i].t, params, err, errlen);
    bool calibrated = false;
    int64_t step = 0;
    double window_sum = 0;
    TorchGen rng;
    char vocab[sizeof s->vocab] = "", bad[400];
    if (rc == 0)
        rc = take_vocab(&f, path, *is_checkpoint, vocab, err, errlen);
    if (rc == 0 && *is_checkpoint) {
        const char *st = st_meta(&f, "step"), *r = st_meta(&f, "batch_rng"), *cal = st_meta(&f, "calibrated");
        if (!parse_step(st, &step) || !parse_rng(r, &rng))
            rc = fail(err, errlen, path, "is a checkpoint without a valid step and batch_rng");
        if (rc == 0)
            rc = take_window_sum(&f, path, &window_sum, err, errlen);
        calibrated = cal && !strcmp(cal, "1");
        const char *o = st_meta(&f, META_OPTIM);
        if (rc == 0 && o && strcmp(o, "sgd") && strcmp(o, "adamw"))
            rc = fail(err, errlen, path, "has %s '%s'; this trainer knows sgd and adamw", META_OPTIM, o);
        optim = o && !strcmp(o, "adamw") ? OPTIM_ADAMW : OPTIM_SGD;
        if (rc == 0 && optim == OPTIM_ADAMW)
            rc = take_adamw(&f, path, &adamw, err, errlen);
        for (int i = 0; rc == 0 && optim == OPTIM_ADAMW && i < m->nparams; i++) {
            char name[300];
            snprintf(name, sizeof name, EXP_AVG "%s", m->params[i].t.name);
            rc = take_tensor(&f, path, name, &m->params[i].t, exp_avg, err, errlen);
            snprintf(name, sizeof name, EXP_AVG_SQ "%s", m->params[i].t.name);
            if (rc == 0)
                rc = take_tensor(&f, path, name, &m->params[i].t, exp_avg_sq, err, errlen);
        }
        for (int i = 0; rc == 0 && calibrated && i < m->nstats; i++) {
            char name[300];
            snprintf(name, sizeof name, "stat.%s", m->stats[i].name);
            rc = take_tensor(&f, path, name, &m->stats[i], stats, err, errlen);
        }
    }
    if (rc == 0)
        rc = check_no_other_tensors(m, &f, path, calibrated, optim == OPTIM_ADAMW, err, errlen);
    /* Nothing computes anything useful from a non-finite param or
     * statistic: a file holding one is refused wherever it is loaded. */
    bool nonfinite = false;
    for (int i = 0; rc == 0 && !nonfinite && i < m->nparams; i++)
        nonfinite = nonfinite_value(&m->params[i].t, params, bad, sizeof bad);
    for (int i = 0; rc == 0 && !nonfinite && calibrated && i < m->nstats; i++)
        nonfinite = nonfinite_value(&m->stats[i], stats, bad, sizeof bad);
    /* The moments too: exp_avg_sq is a sum of squares, never negative
     * (sqrt of a negative one would be NaN at the next step). */
    for (int i = 0; rc == 0 && !nonfinite && optim == OPTIM_ADAMW && i < m->nparams; i++) {
        const NjTensor *t = &m->params[i].t;
        nonfinite = nonfinite_value(t, exp_avg, bad, sizeof bad) || nonfinite_value(t, exp_avg_sq, bad, sizeof bad);
        if (nonfinite)
            snprintf(bad + strlen(bad), sizeof bad - strlen(bad), " (of AdamW's moments)");
        const float *v = at(exp_avg_sq, t->offset);
        for (int64_t k = 0, n = numel(t->rank, t->shape); rc == 0 && !nonfinite && k < n; k++)
            if (v[k] < 0)
                rc = fail(err, errlen, path, "holds a negative AdamW second moment: " EXP_AVG_SQ "%s[%" PRId64
                          "] = %g", t->name, k, (double)v[k]);
    }
    if (nonfinite)
        rc = fail(err, errlen, path, "holds a non-finite value: %s", bad);
    if (rc == 0) {
        memcpy(s->vocab, vocab, sizeof vocab);
        memcpy(s->params, params, m->params_bytes);
        if (calibrated)
            memcpy(s->stats, stats, m->stats_bytes);
        s->calibrated = calibrated;
        if (*is_checkpoint) {
            s->step = step;
            s->batch_rng = rng;
            s->loss_window_sum = window_sum;
        }
        /* A params file or an SGD checkpoint leaves zero moments: what a
         * new AdamW run starts from. */
        s->optim = optim;
        s->adamw = adamw;
        memcpy(s->exp_avg, exp_avg, m->params_bytes);
        memcpy(s->exp_avg_sq, exp_avg_sq, m->params_bytes);
    }
    free(params);
    free(stats);
    free(exp_avg);
    free(exp_avg_sq);
    st_free(&f);
    return rc;
}

int load_inputs(const NinjacModel *m, const char *path, int32_t **inputs, char *err, size_t errlen) {
    StFile f;
    if (st_read(path, &f, err, errlen) != 0)
        return -1;
    int rc = 0;
    for (int k = 0; k < m->ninputs; k++)
        inputs[k] = NULL;
    for (int k = 0; rc == 0 && k < m->ninputs; k++) {
        const NjInput *in = &m->inputs[k];
        const StTensor *x = st_find(&f, in->name);
        if (!x) {
            rc = fail(err, errlen, path, "has no input '%s'", in->name);
            break;
        }
        bool same = x->rank == in->rank;
        for (int d = 0; same && d < in->rank; d++)
            same = x->shape[d] == in->shape[d];
        if (!same) {
            char want[96], got[96];
            rc = fail(err, errlen, path, "input '%s' has shape %s, but the spec says %s", in->name,
                      shape_text(got, sizeof got, x->rank, x->shape, NULL),
                      shape_text(want, sizeof want, in->rank, NULL, in->shape));
            break;
        }
        if (x->dtype != ST_I32 && x->dtype != ST_I64) {
            rc = fail(err, errlen, path, "input '%s' is %s; expected I32 or I64", in->name, st_dtype_name(x->dtype));
            break;
        }
        int64_t n = st_numel(x);
        inputs[k] = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
        if (!inputs[k]) {
            rc = fail(err, errlen, path, "out of memory");
            break;
        }
        for (int64_t i = 0; i < n; i++) {
            int64_t v = x->dtype == ST_I32 ? ((const int32_t *)x->data)[i] : ((const int64_t *)x->data)[i];
            if ((v < 0 || v >= in->bound) && (!in->ignore || v != in->ignore)) {
                rc = fail(err, errlen, path, "input '%s': element %" PRId64 " is %" PRId64 ", outside [0, %d)",
                          in->name, i, v, (int)in->bound);
                break;
            }
            inputs[k][i] = (int32_t)v;
        }
    }
    /* Every input was found and names are unique, so a larger count means
     * a tensor the spec does not take: a batch meant for another spec. */
    for (int i = 0; rc == 0 && f.count > m->ninputs && i < f.count; i++) {
        bool known = false;
        for (int k = 0; k < m->ninputs; k++)
            known |= !strcmp(f.tensors[i].name, m->inputs[k].name);
        if (!known)
            rc = fail(err, errlen, path, "has a tensor '%s' that is not an input of the spec", f.tensors[i].name);
    }
    if (rc != 0)
        for (int k = 0; k < m->ninputs; k++) {
            free(inputs[k]);
            inputs[k] = NULL;
        }
    st_free(&f);
    return rc;
}

static bool all_finite(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return false;
    return true;
}

/* Non-finite floats are those whose exponent bits are all ones; testing
 * the bits vectorises, unlike a float sum or isfinite. */
static bool floats_finite(const float *x, int64_t n) {
    uint32_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], sizeof bits);
        bad |= (bits & 0x7f800000u) == 0x7f800000u;
    }
    return !bad;
}

bool step_looks_finite(const State *s) {
    const NinjacModel *m = s->m;
    if (!isfinite(*at(s->acts, m->loss_offset)))
        return false;
    for (int i = 0; i < m->nparams && i < m->ngrads; i++)
        if (!floats_finite(at(s->grads, m->grads[i].offset), numel(m->grads[i].rank, m->grads[i].shape)))
            return false;
    return true;
}

const NjTensor *first_nonfinite_param(const State *s) {
    const NinjacModel *m = s->m;
    for (int i = 0; i < m->nparams; i++)
        if (!all_finite(at(s->params, m->params[i].t.offset), numel(m->params[i].t.rank, m->params[i].t.shape)))
            return &m->params[i].t;
    return NULL;
}

const NjTensor *first_nonfinite_stat(const State *s) {
    const NinjacModel *m = s->m;
    for (int i = 0; i < m->nstats; i++)
        if (!all_finite(at(s->stats, m->stats[i].offset), numel(m->stats[i].rank, m->stats[i].shape)))
            return &m->stats[i];
    return NULL;
}

const NjTensor *first_nonfinite_infer_act(const State *s, int rows) {
    const NinjacModel *m = s->m;
    for (int i = 0; i < m->ninfer_acts; i++) {
        const NjTensor *t = &m->infer_acts[i];
        int64_t n = 1;
        for (int d = 0; d < t->rank; d++)
            n *= t->batch_dims >> d & 1 ? rows : t->shape[d];
        if (!all_finite(at(s->ws, t->offset), n))
            return t;
    }
    return NULL;
}

const NjTensor *first_nonfinite(const State *s, bool *in_grads) {
    const NinjacModel *m = s->m;
    for (int i = 0; i < m->nacts; i++)
        if (!all_finite(at(s->acts, m->acts[i].offset), numel(m->acts[i].rank, m->acts[i].shape))) {
            *in_grads = false;
            return &m->acts[i];
        }
    for (int i = 0; i < m->ngrads; i++)
        if (!all_finite(at(s->grads, m->grads[i].offset), numel(m->grads[i].rank, m->grads[i].shape))) {
            *in_grads = true;
            return &m->grads[i];
        }
    return NULL;
}
