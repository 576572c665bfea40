/* ref_mkbatch.c - random parameters and batches for the tests.
 *
 *   ref_mkbatch [--params P.safetensors] [--inputs B.safetensors] [--seed S]
 *               [--n 32] [--block 3] [--vocab 27] [--embed 10] [--hidden 64] [--itype i64|i32]
 *
 * Parameters use the notebook's initialisation (ref_io.h); Xb and Yb are
 * uniform over the vocabulary. Both are drawn from Rng seeded with S (the
 * batch from S + 1), so equal seeds give equal files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref_io.h"
#include "reference.h"
#include "ref_rng.h"
#include "safetensors.h"

static const char *usage =
    "usage: ref_mkbatch [--params P.safetensors] [--inputs B.safetensors] [--seed S]\n"
    "                   [--n 32] [--block 3] [--vocab 27] [--embed 10] [--hidden 64]\n"
    "                   [--itype i64|i32]\n"
    "Writes notebook-initialised parameters and/or a uniformly random batch.\n";

int main(int argc, char **argv) {
    const char *params_path = NULL, *inputs_path = NULL;
    uint64_t seed = 1;
    int64_t n = 32, block = 3, vocab = 27, embed = 10, hidden = 64;
    StDtype itype = ST_I64;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { fputs(usage, stdout); return 0; }
        if (i + 1 >= argc) {
            fprintf(stderr, "ref_mkbatch: unknown argument or missing value: '%s'\n%s", a, usage);
            return 2;
        }
        const char *v = argv[++i];
        int ok = 1;
        if (strcmp(a, "--params") == 0) { params_path = v; }
        else if (strcmp(a, "--inputs") == 0) { inputs_path = v; }
        else if (strcmp(a, "--seed") == 0) { ok = refio_parse_u64(v, &seed) == 0; }
        else if (strcmp(a, "--n") == 0) { ok = refio_parse_i64(v, 2, 1 << 24, &n) == 0; }
        else if (strcmp(a, "--block") == 0) { ok = refio_parse_i64(v, 1, 64, &block) == 0; }
        else if (strcmp(a, "--vocab") == 0) { ok = refio_parse_i64(v, 1, 1 << 16, &vocab) == 0; }
        else if (strcmp(a, "--embed") == 0) { ok = refio_parse_i64(v, 1, 4096, &embed) == 0; }
        else if (strcmp(a, "--hidden") == 0) { ok = refio_parse_i64(v, 1, 1 << 16, &hidden) == 0; }
        else if (strcmp(a, "--itype") == 0) {
            if (strcmp(v, "i64") == 0) { itype = ST_I64; }
            else if (strcmp(v, "i32") == 0) { itype = ST_I32; }
            else { ok = 0; }
        } else {
            fprintf(stderr, "ref_mkbatch: unknown argument '%s'\n%s", a, usage);
            return 2;
        }
        if (!ok) { fprintf(stderr, "ref_mkbatch: bad value '%s' for %s\n", v, a); return 2; }
    }
    if (!params_path && !inputs_path) {
        fprintf(stderr, "ref_mkbatch: nothing to do: give --params and/or --inputs\n%s", usage);
        return 2;
    }
    RefDims d = {(int)n, (int)block, (int)vocab, (int)embed, (int)hidden};
    char err[1024];
    int rc = 0;
    if (params_path) {
        RefParams p;
        if (ref_params_alloc(&d, &p) != 0) { fprintf(stderr, "ref_mkbatch: out of memory\n"); return 1; }
        refio_init_params(&d, &p, seed);
        RefView pv[REF_NPARAMS];
        int np = ref_param_views(&d, &p, pv);
        StWriter *w = st_writer_new();
        refio_add_views(w, "", pv, np);
        if (st_write_atomic(w, params_path, err, sizeof err) != 0) {
            fprintf(stderr, "ref_mkbatch: %s\n", err);
            rc = 1;
        }
        st_writer_free(w);
        ref_params_free(&p);
    }
    if (inputs_path && rc == 0) {
        Rng rng;
        rng_seed(&rng, seed + 1);
        int64_t *x = malloc(sizeof(int64_t) * (size_t)(n * block));
        int64_t *y = malloc(sizeof(int64_t) * (size_t)n);
        int32_t *x32 = malloc(sizeof(int32_t) * (size_t)(n * block));
        int32_t *y32 = malloc(sizeof(int32_t) * (size_t)n);
        if (!x || !y || !x32 || !y32) { fprintf(stderr, "ref_mkbatch: out of memory\n"); return 1; }
        for (int64_t i = 0; i < n * block; i++) { x32[i] = (int32_t)(x[i] = (int64_t)rng_below(&rng, (uint64_t)vocab)); }
        for (int64_t i = 0; i < n; i++) { y32[i] = (int32_t)(y[i] = (int64_t)rng_below(&rng, (uint64_t)vocab)); }
        int64_t xs[2] = {n, block}, ys[1] = {n};
        StWriter *w = st_writer_new();
        st_add(w, "Xb", itype, 2, xs, itype == ST_I64 ? (void *)x : (void *)x32);
        st_add(w, "Yb", itype, 1, ys, itype == ST_I64 ? (void *)y : (void *)y32);
        if (st_write_atomic(w, inputs_path, err, sizeof err) != 0) {
            fprintf(stderr, "ref_mkbatch: %s\n", err);
            rc = 1;
        }
        st_writer_free(w);
        free(x); free(y); free(x32); free(y32);
    }
    return rc;
}
