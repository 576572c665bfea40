/* ref_io.c - see ref_io.h */
#include "ref_io.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "state.h"

_Static_assert(sizeof(real) == 4, "the reference tools read and write F32");

static int fail(char *err, size_t errlen, const char *path, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s: %s", path, msg);
    return -1;
}

static void shape_str(const StTensor *t, char *buf, size_t len) {
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int r = 0; r < t->rank && k < len; r++) {
        k += (size_t)snprintf(buf + k, len - k, r ? ", %lld" : "%lld", (long long)t->shape[r]);
    }
    if (k < len) { snprintf(buf + k, len - k, "]"); }
}

/* Finds the F32 tensor `name`, or writes why not into err and returns NULL. */
static const StTensor *find_f32(const StFile *f, const char *path, const char *name,
                                char *err, size_t errlen) {
    const StTensor *t = st_find(f, name);
    if (!t) { fail(err, errlen, path, "no tensor '%s'", name); return NULL; }
    if (t->dtype != ST_F32) {
        fail(err, errlen, path, "tensor '%s' is %s, expected F32", name, st_dtype_name(t->dtype));
        return NULL;
    }
    if (t->rank > REF_MAX_RANK) {
        fail(err, errlen, path, "tensor '%s' has rank %d", name, t->rank);
        return NULL;
    }
    return t;
}

/* True if t's shape is exactly want[0..rank) */
static int shape_is(const StTensor *t, int rank, const int64_t *want) {
    if (t->rank != rank) { return 0; }
    for (int r = 0; r < rank; r++) {
        if (t->shape[r] != want[r]) { return 0; }
    }
    return 1;
}

int refio_load_params(const char *path, RefDims *d, RefParams *p, RefParamShapes *shapes,
                      char *err, size_t errlen) {
    static const char *names[REF_NPARAMS] = {"C", "W1", "b1", "bngain", "bnbias", "W2", "b2"};
    StFile f;
    char sh[128];
    if (st_read(path, &f, err, errlen) != 0) { return -1; }
    const StTensor *t[REF_NPARAMS];
    for (int k = 0; k < REF_NPARAMS; k++) {
        t[k] = find_f32(&f, path, names[k], err, errlen);
        if (!t[k]) { st_free(&f); return -1; }
    }
    int rc = -1;
    /* C [V, E] and W2 [H, V] fix V, E, H; W1 [B*E, H] fixes B. */
    if (t[0]->rank != 2 || t[0]->shape[0] < 1 || t[0]->shape[1] < 1) {
        shape_str(t[0], sh, sizeof sh);
        fail(err, errlen, path, "C has shape %s, expected [vocab, embedding]", sh);
        goto done;
    }
    if (t[5]->rank != 2 || t[5]->shape[0] < 1) {
        shape_str(t[5], sh, sizeof sh);
        fail(err, errlen, path, "W2 has shape %s, expected [hidden, vocab]", sh);
        goto done;
    }
    const int64_t V = t[0]->shape[0], E = t[0]->shape[1], H = t[5]->shape[0];
    if (V > 1000000 || E > 1000000 || H > 1000000) {
        fail(err, errlen, path, "implausibly large dimensions");
        goto done;
    }
    if (t[1]->rank != 2 || t[1]->shape[1] != H || t[1]->shape[0] < E || t[1]->shape[0] % E != 0) {
        shape_str(t[1], sh, sizeof sh);
        fail(err, errlen, path, "W1 has shape %s, expected [block*%lld, %lld]", sh,
             (long long)E, (long long)H);
        goto done;
    }
    const int64_t B = t[1]->shape[0] / E;
    {
        const int64_t sV[1] = {V}, s1V[2] = {1, V}, sH[1] = {H}, s1H[2] = {1, H}, sHV[2] = {H, V};
        struct { int k; const int64_t *a; int ra; const int64_t *b; int rb; const char *want; } chk[] = {
            {2, sH, 1, s1H, 2, "[hidden] or [1, hidden]"},
            {3, s1H, 2, sH, 1, "[1, hidden] or [hidden]"},
            {4, s1H, 2, sH, 1, "[1, hidden] or [hidden]"},
            {5, sHV, 2, sHV, 2, "[hidden, vocab]"},
            {6, sV, 1, s1V, 2, "[vocab] or [1, vocab]"},
        };
        for (size_t c = 0; c < sizeof chk / sizeof chk[0]; c++) {
            const StTensor *x = t[chk[c].k];
            if (!shape_is(x, chk[c].ra, chk[c].a) && !shape_is(x, chk[c].rb, chk[c].b)) {
                shape_str(x, sh, sizeof sh);
                fail(err, errlen, path, "%s has shape %s, expected %s (vocab %lld, hidden %lld)",
                     names[chk[c].k], sh, chk[c].want, (long long)V, (long long)H);
                goto done;
            }
        }
    }
    d->B = (int)B;
    d->V = (int)V;
    d->E = (int)E;
    d->H = (int)H;
    if (ref_params_alloc(d, p) != 0) { fail(err, errlen, path, "out of memory"); goto done; }
    real *dst[REF_NPARAMS] = {p->C, p->W1, p->b1, p->bngain, p->bnbias, p->W2, p->b2};
    for (int k = 0; k < REF_NPARAMS; k++) {
        memcpy(dst[k], t[k]->data, t[k]->nbytes);
        for (int64_t i = 0; i < st_numel(t[k]); i++) {
            if (!isfinite(dst[k][i])) {
                fail(err, errlen, path, "%s[%lld] is not finite", names[k], (long long)i);
                ref_params_free(p);
                goto done;
            }
        }
        if (shapes) {
            shapes->rank[k] = t[k]->rank;
            for (int r = 0; r < t[k]->rank; r++) { shapes->shape[k][r] = t[k]->shape[r]; }
        }
    }
    rc = 0;
done:
    st_free(&f);
    return rc;
}

/* Copies an I32/I64 tensor to int32, checking every value against [0, bound). */
static int32_t *load_indices(const StTensor *t, const char *path, int64_t bound,
                             char *err, size_t errlen) {
    int64_t cnt = st_numel(t);
    int32_t *out = malloc(sizeof(int32_t) * (size_t)(cnt ? cnt : 1));
    if (!out) { fail(err, errlen, path, "out of memory"); return NULL; }
    for (int64_t i = 0; i < cnt; i++) {
        int64_t v = t->dtype == ST_I32 ? ((const int32_t *)t->data)[i]
                                       : ((const int64_t *)t->data)[i];
        if (v < 0 || v >= bound) {
            fail(err, errlen, path, "%s: element %lld is %lld, outside [0, %lld)", t->name,
                 (long long)i, (long long)v, (long long)bound);
            free(out);
            return NULL;
        }
        out[i] = (int32_t)v;
    }
    return out;
}

int refio_load_batch(const char *path, RefDims *d, int32_t **Xb, int32_t **Yb,
                     char *err, size_t errlen) {
    StFile f;
    char sh[128];
    *Xb = *Yb = NULL;
    if (st_read(path, &f, err, errlen) != 0) { return -1; }
    int rc = -1;
    const StTensor *x = st_find(&f, "Xb"), *y = st_find(&f, "Yb");
    if (!x || !y) { fail(err, errlen, path, "no tensor '%s'", x ? "Yb" : "Xb"); goto done; }
    for (int k = 0; k < 2; k++) {
        const StTensor *t = k ? y : x;
        if (t->dtype != ST_I32 && t->dtype != ST_I64) {
            fail(err, errlen, path, "tensor '%s' is %s, expected I32 or I64", t->name,
                 st_dtype_name(t->dtype));
            goto done;
        }
    }
    if (x->rank != 2 || x->shape[1] != d->B) {
        shape_str(x, sh, sizeof sh);
        fail(err, errlen, path, "Xb has shape %s, expected [n, %d] (block size from W1)", sh, d->B);
        goto done;
    }
    const int64_t n = x->shape[0];
    if (y->rank != 1 || y->shape[0] != n) {
        shape_str(y, sh, sizeof sh);
        fail(err, errlen, path, "Yb has shape %s, expected [%lld] (rows of Xb)", sh, (long long)n);
        goto done;
    }
    if (n < 2 || n > 100000000) {
        fail(err, errlen, path, "batch has %lld rows; batch norm needs at least 2", (long long)n);
        goto done;
    }
    *Xb = load_indices(x, path, d->V, err, errlen);
    if (!*Xb) { goto done; }
    *Yb = load_indices(y, path, d->V, err, errlen);
    if (!*Yb) { free(*Xb); *Xb = NULL; goto done; }
    d->n = (int)n;
    rc = 0;
done:
    st_free(&f);
    return rc;
}

/* torch.randn(count, generator=g) * mul + add, each op rounded to float as
 * a float tensor's ops are; mul, add as the notebook writes them. */
static void randn_line(TorchGen *g, real *out, size_t count, double mul, double add) {
    float *x = malloc(sizeof(float) * count);
    if (!x) { fprintf(stderr, "error: out of memory\n"); exit(1); }
    tg_randn(g, x, (int64_t)count);
    for (size_t i = 0; i < count; i++) {
        float v = x[i];
        if (mul != 1) { v = v * (float)mul; }
        if (add != 0) { v = v + (float)add; }
        out[i] = (real)v;
    }
    free(x);
}

void refio_init_params(const RefDims *d, RefParams *p, uint64_t seed) {
    TorchGen g, global;
    tg_seed(&g, seed);
    tg_seed(&global, TORCH_DEFAULT_SEED);
    const size_t B = d->B, V = d->V, E = d->E, H = d->H;
    randn_line(&g, p->C, V * E, 1, 0);
    /* * (5/3) / (fan_in ** 0.5): tanh's gain over sqrt(fan_in), two float ops */
    float *w1 = malloc(sizeof(float) * B * E * H);
    if (!w1) { fprintf(stderr, "error: out of memory\n"); exit(1); }
    tg_randn(&g, w1, (int64_t)(B * E * H));
    for (size_t i = 0; i < B * E * H; i++) { p->W1[i] = (real)(w1[i] * (float)(5.0 / 3.0) / (float)sqrt((double)(B * E))); }
    free(w1);
    randn_line(&g, p->b1, H, 0.1, 0);
    randn_line(&g, p->W2, H * V, 0.1, 0);
    randn_line(&g, p->b2, V, 0.1, 0);
    randn_line(&global, p->bngain, H, 0.1, 1.0);
    randn_line(&global, p->bnbias, H, 0.1, 0);
}

void refio_add_views(StWriter *w, const char *prefix, const RefView *v, int count) {
    char name[256];
    for (int k = 0; k < count; k++) {
        snprintf(name, sizeof name, "%s%s", prefix, v[k].name);
        st_add(w, name, ST_F32, v[k].rank, v[k].shape, v[k].data);
    }
}

int refio_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    if (!s || !*s) { return -1; }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) { return -1; }
    *out = v;
    return 0;
}

int refio_parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s || *s == '-' || *s == '+') { return -1; }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) { return -1; }
    *out = v;
    return 0;
}
