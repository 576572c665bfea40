/* cmp.c - ninjac_cmp: the notebook's cmp() table for two safetensors files.
 *
 *   ninjac_cmp A.safetensors B.safetensors [--prefix grad.] [--only name,name,...]
 *
 * One row per tensor present in both files (order of A), as the notebook's
 *   print(f'{s:15s} | exact: {str(ex):5s} | approximate: {str(app):5s} | maxdiff: {maxdiff}')
 * exact: every element bitwise equal; approximate: torch.allclose(a, b) with
 * its defaults (|a - b| <= 1e-8 + 1e-5 * |b|, b from the second file);
 * maxdiff: max |a - b|. For two F32 tensors the arithmetic is done in float,
 * as torch does; otherwise both sides are converted to double.
 * Exit status: 0 if every row is approximate, 1 if not (or a name given with
 * --only is missing from either file), 2 on bad arguments or unreadable files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

static const char *usage =
    "usage: ninjac_cmp A.safetensors B.safetensors [--prefix P] [--only NAME,NAME,...]\n"
    "Compares the tensors present in both files, in A's order, as the notebook's cmp():\n"
    "  NAME | exact: True/False | approximate: True/False | maxdiff: X\n"
    "  --prefix P   only tensors whose names start with P (e.g. grad.); rows show the rest\n"
    "  --only LIST  only these names (after the prefix); each must exist in both files\n"
    "Exit status: 0 all approximate, 1 some differ or --only names are missing, 2 errors.\n";

typedef struct {
    int exact, approx;
    double maxdiff;
} Result;

static double get(const StTensor *t, int64_t i) {
    switch (t->dtype) {
    case ST_F32: return ((const float *)t->data)[i];
    case ST_F64: return ((const double *)t->data)[i];
    case ST_I32: return ((const int32_t *)t->data)[i];
    case ST_I64: return (double)((const int64_t *)t->data)[i];
    case ST_U64: return (double)((const uint64_t *)t->data)[i];
    }
    return NAN;
}

static Result compare(const StTensor *a, const StTensor *b) {
    Result r = {1, 1, 0.0};
    const int64_t n = st_numel(a);
    if (a->dtype == ST_F32 && b->dtype == ST_F32) {
        const float *x = a->data, *y = b->data;
        float maxdiff = 0.0f;
        for (int64_t i = 0; i < n; i++) {
            if (memcmp(&x[i], &y[i], sizeof(float)) != 0) { r.exact = 0; }
            float diff = fabsf(x[i] - y[i]);
            // torch.isclose: equal (incl. infinities), or finite and within tolerance
            int close = x[i] == y[i] || (isfinite(diff) && diff <= 1e-8f + 1e-5f * fabsf(y[i]));
            if (!close) { r.approx = 0; }
            if (isnan(diff) || isnan(maxdiff)) { maxdiff = NAN; }
            else if (diff > maxdiff) { maxdiff = diff; }
        }
        r.maxdiff = maxdiff;
        return r;
    }
    const size_t sa = st_dtype_size(a->dtype), sb = st_dtype_size(b->dtype);
    const int same = a->dtype == b->dtype;
    double maxdiff = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double x = get(a, i), y = get(b, i);
        if (same ? memcmp((const char *)a->data + i * sa, (const char *)b->data + i * sb, sa) != 0
                 : memcmp(&x, &y, sizeof x) != 0) {
            r.exact = 0;
        }
        double diff = fabs(x - y);
        int close = x == y || (isfinite(diff) && diff <= 1e-8 + 1e-5 * fabs(y));
        if (!close) { r.approx = 0; }
        if (isnan(diff) || isnan(maxdiff)) { maxdiff = NAN; }
        else if (diff > maxdiff) { maxdiff = diff; }
    }
    r.maxdiff = maxdiff;
    return r;
}

static void shape_str(const StTensor *t, char *buf, size_t len) {
    size_t k = (size_t)snprintf(buf, len, "%s[", st_dtype_name(t->dtype));
    for (int r = 0; r < t->rank && k < len; r++) {
        k += (size_t)snprintf(buf + k, len - k, r ? ", %lld" : "%lld", (long long)t->shape[r]);
    }
    if (k < len) { snprintf(buf + k, len - k, "]"); }
}

/* --only list: comma-separated names, split in place */
static int split_list(char *s, char ***out) {
    int cnt = 1;
    for (char *c = s; *c; c++) { cnt += *c == ','; }
    char **v = malloc(sizeof(char *) * (size_t)cnt);
    if (!v) { return -1; }
    int k = 0;
    for (char *tok = s;; ) {
        char *comma = strchr(tok, ',');
        if (comma) { *comma = '\0'; }
        if (*tok) { v[k++] = tok; }
        if (!comma) { break; }
        tok = comma + 1;
    }
    *out = v;
    return k;
}

int main(int argc, char **argv) {
    const char *paths[2] = {NULL, NULL}, *prefix = "";
    char *only_arg = NULL;
    int npaths = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { fputs(usage, stdout); return 0; }
        if (strcmp(a, "--prefix") == 0 || strcmp(a, "--only") == 0) {
            if (i + 1 >= argc) { fprintf(stderr, "ninjac_cmp: %s needs a value\n%s", a, usage); return 2; }
            if (a[2] == 'p') { prefix = argv[++i]; } else { only_arg = argv[++i]; }
            continue;
        }
        if (strncmp(a, "--", 2) == 0 || npaths == 2) {
            fprintf(stderr, "ninjac_cmp: unexpected argument '%s'\n%s", a, usage);
            return 2;
        }
        paths[npaths++] = a;
    }
    if (npaths != 2) { fprintf(stderr, "ninjac_cmp: two files are needed\n%s", usage); return 2; }

    char **only = NULL;
    int nonly = 0;
    if (only_arg) {
        nonly = split_list(only_arg, &only);
        if (nonly < 0) { fprintf(stderr, "ninjac_cmp: out of memory\n"); return 2; }
        if (nonly == 0) { fprintf(stderr, "ninjac_cmp: --only needs at least one name\n"); return 2; }
    }

    StFile f[2];
    char err[1024];
    for (int k = 0; k < 2; k++) {
        if (st_read(paths[k], &f[k], err, sizeof err) != 0) {
            fprintf(stderr, "ninjac_cmp: %s\n", err);
            if (k) { st_free(&f[0]); }
            free(only);
            return 2;
        }
    }

    const size_t plen = strlen(prefix);
    int rows = 0, nexact = 0, napprox = 0, status = 0;
    /* Rows in --only's order when given (the notebook's table order), else in A's. */
    const int nrows = only ? nonly : f[0].count;
    for (int t = 0; t < nrows; t++) {
        const StTensor *a = &f[0].tensors[t];
        if (only) {
            char full[512];
            snprintf(full, sizeof full, "%s%s", prefix, only[t]);
            if (!(a = st_find(&f[0], full))) { continue; }
        }
        if (strncmp(a->name, prefix, plen) != 0) { continue; }
        const char *shortname = a->name + plen;
        const StTensor *b = st_find(&f[1], a->name);
        if (!b) { continue; }
        rows++;
        int same_shape = a->rank == b->rank;
        for (int r = 0; same_shape && r < a->rank; r++) { same_shape = a->shape[r] == b->shape[r]; }
        if (!same_shape) {
            char sa[128], sb[128];
            shape_str(a, sa, sizeof sa);
            shape_str(b, sb, sizeof sb);
            printf("%-15s | error: shape %s vs %s\n", shortname, sa, sb);
            status = 1;
            continue;
        }
        Result r = compare(a, b);
        printf("%-15s | exact: %-5s | approximate: %-5s | maxdiff: %g\n", shortname,
               r.exact ? "True" : "False", r.approx ? "True" : "False", r.maxdiff);
        nexact += r.exact;
        napprox += r.approx;
        if (!r.approx) { status = 1; }
    }
    for (int k = 0; k < nonly; k++) {
        char full[512];
        snprintf(full, sizeof full, "%s%s", prefix, only[k]);
        for (int q = 0; q < 2; q++) {
            if (!st_find(&f[q], full)) {
                fprintf(stderr, "ninjac_cmp: %s: no tensor '%s'\n", paths[q], full);
                status = 1;
            }
        }
    }
    printf("%d tensors compared, %d exact, %d approximate\n", rows, nexact, napprox);
    if (rows == 0) {
        fprintf(stderr, "ninjac_cmp: warning: no tensor%s%s%s is in both files\n",
                plen ? " named " : "", prefix, plen ? "*" : "");
    }
    st_free(&f[0]);
    st_free(&f[1]);
    free(only);
    return status;
}
