/* ref_mlp.c - command-line driver of the hand-written reference.
 *
 *   ref_mlp grads --params P.safetensors --inputs B.safetensors --out G.safetensors [--fused]
 *   ref_mlp train [--steps N] [--batch-seed S] [--init P.safetensors] [--data PATH]
 *                 [--hidden H] [--batch N] [--init-seed S] [--out P.safetensors]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data.h"
#include "ref_io.h"
#include "reference.h"
#include "ref_rng.h"
#include "safetensors.h"

#ifndef NINJAC_DEFAULT_DATA
#define NINJAC_DEFAULT_DATA "data/names.txt"
#endif

#define DATA_SEED 42          /* random.seed(42); random.shuffle(words) */
#define NOTEBOOK_BLOCK 3
#define NOTEBOOK_VOCAB 27
#define NOTEBOOK_EMBED 10

static const char *usage_main =
    "usage: ref_mlp COMMAND [options]\n"
    "Hand-written C reference of the backprop-ninja MLP.\n"
    "commands:\n"
    "  grads   gradients of one batch (exercise 1, or 2-4 fused with --fused)\n"
    "  train   exercise 4: train with the fused backward, calibrate, report losses\n"
    "'ref_mlp COMMAND --help' describes each.\n";

static const char *usage_grads =
    "usage: ref_mlp grads --params P.safetensors --inputs B.safetensors --out G.safetensors [--fused]\n"
    "  --params P   C, W1, b1, bngain, bnbias, W2, b2 (F32); sizes come from their shapes\n"
    "  --inputs B   Xb [n, block] and Yb [n] (I32 or I64)\n"
    "  --out G      written atomically: `loss` (F32, shape []), `grad.NAME` and `act.NAME`\n"
    "  --fused      exercise-4 forward and fused backward (ex2 + ex3): gradients of the\n"
    "               parameters and of logits, h, hpreact, hprebn, embcat, emb.\n"
    "               Without it: exercise-1 forward and all 26 atomic gradients.\n";

static const char *usage_train =
    "usage: ref_mlp train [options]\n"
    "Exercise 4: SGD (lr 0.1, 0.01 from step 100000) on random minibatches with the\n"
    "fused backward, then batch-norm calibration over the training set; prints the\n"
    "loss every 10000 steps and the final train/val loss.\n"
    "  --steps N        training steps (default 200000)\n"
    "  --batch-seed S   seed of the batch sampler (default 2147483647)\n"
    "  --init P         start from these parameters (default: seeded notebook init)\n"
    "  --init-seed S    seed of the notebook init (default 2147483647)\n"
    "  --hidden H       hidden units of the notebook init (default 200)\n"
    "  --batch N        rows per batch (default 32)\n"
    "  --data PATH      names file (default " NINJAC_DEFAULT_DATA ")\n"
    "  --out P          also write the trained parameters and bnmean/bnvar\n";

static int bad_usage(const char *usage, const char *fmt, const char *arg) {
    fprintf(stderr, "ref_mlp: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage);
    return 2;
}

static int is_help(const char *a) { return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0; }

/* ------------------------------------------------------------------------ */

static int cmd_grads(int argc, char **argv) {
    const char *params_path = NULL, *inputs_path = NULL, *out_path = NULL;
    int fused = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) { fputs(usage_grads, stdout); return 0; }
        if (strcmp(a, "--fused") == 0) { fused = 1; continue; }
        const char **dst = strcmp(a, "--params") == 0 ? &params_path
                         : strcmp(a, "--inputs") == 0 ? &inputs_path
                         : strcmp(a, "--out") == 0 ? &out_path : NULL;
        if (!dst) { return bad_usage(usage_grads, "grads: unknown argument '%s'", a); }
        if (i + 1 >= argc) { return bad_usage(usage_grads, "grads: %s needs a value", a); }
        *dst = argv[++i];
    }
    if (!params_path) { return bad_usage(usage_grads, "grads: %s is required", "--params"); }
    if (!inputs_path) { return bad_usage(usage_grads, "grads: %s is required", "--inputs"); }
    if (!out_path) { return bad_usage(usage_grads, "grads: %s is required", "--out"); }

    char err[1024];
    RefDims d = {0};
    RefParams p;
    RefParamShapes shapes;
    int32_t *Xb = NULL, *Yb = NULL;
    if (refio_load_params(params_path, &d, &p, &shapes, err, sizeof err) != 0) {
        fprintf(stderr, "ref_mlp: %s\n", err);
        return 1;
    }
    if (refio_load_batch(inputs_path, &d, &Xb, &Yb, err, sizeof err) != 0) {
        fprintf(stderr, "ref_mlp: %s\n", err);
        ref_params_free(&p);
        return 1;
    }
    RefActs a;
    RefGrads g;
    if (ref_acts_alloc(&d, &a) != 0 || ref_grads_alloc(&d, &g) != 0) {
        fprintf(stderr, "ref_mlp: out of memory\n");
        return 1;
    }
    if (fused) {
        ref_forward_fused(&d, &p, Xb, Yb, &a);
        ref_backward_fused(&d, &p, Xb, Yb, &a, &g);
    } else {
        ref_forward(&d, &p, Xb, Yb, &a);
        ref_backward(&d, &p, Xb, Yb, &a, &g);
    }

    RefView gv[REF_NGRADS], av[REF_NACTS];
    int ng = fused ? ref_fused_grad_views(&d, &g, gv) : ref_grad_views(&d, &g, gv);
    int na = ref_act_views(&d, &a, fused, av);
    /* parameter gradients keep the shapes their parameters had in the file */
    static const char *pnames[REF_NPARAMS] = {"C", "W1", "b1", "bngain", "bnbias", "W2", "b2"};
    for (int k = 0; k < ng; k++) {
        for (int q = 0; q < REF_NPARAMS; q++) {
            if (strcmp(gv[k].name, pnames[q]) == 0) {
                gv[k].rank = shapes.rank[q];
                memcpy(gv[k].shape, shapes.shape[q], sizeof gv[k].shape);
            }
        }
    }
    StWriter *w = st_writer_new();
    if (!w) { fprintf(stderr, "ref_mlp: out of memory\n"); return 1; }
    st_add_meta(w, "producer", "ninjac tests/reference ref_mlp");
    st_add_meta(w, "mode", fused ? "fused (exercises 2-4)" : "atomic (exercise 1)");
    float loss = a.loss;
    st_add(w, "loss", ST_F32, 0, NULL, &loss);
    refio_add_views(w, "grad.", gv, ng);
    refio_add_views(w, "act.", av, na);
    int rc = 0;
    if (st_write_atomic(w, out_path, err, sizeof err) != 0) {
        fprintf(stderr, "ref_mlp: %s\n", err);
        rc = 1;
    } else {
        printf("loss %.9g (%s, n=%d block=%d vocab=%d embed=%d hidden=%d), %d gradients -> %s\n",
               (double)loss, fused ? "fused" : "atomic", d.n, d.B, d.V, d.E, d.H, ng, out_path);
    }
    st_writer_free(w);
    ref_acts_free(&a);
    ref_grads_free(&g);
    ref_params_free(&p);
    free(Xb);
    free(Yb);
    return rc;
}

/* ------------------------------------------------------------------------ */

static int cmd_train(int argc, char **argv) {
    int64_t steps = 200000, hidden = 200, batch = 32;
    uint64_t batch_seed = 2147483647u, init_seed = 2147483647u;
    const char *init_path = NULL, *data_path = NINJAC_DEFAULT_DATA, *out_path = NULL;
    int hidden_given = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) { fputs(usage_train, stdout); return 0; }
        static const char *known[] = {"--steps", "--hidden", "--batch", "--batch-seed",
                                      "--init-seed", "--init", "--data", "--out"};
        int is_known = 0;
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
            if (strcmp(a, known[k]) == 0) { is_known = 1; }
        }
        if (!is_known) { return bad_usage(usage_train, "train: unknown argument '%s'", a); }
        if (i + 1 >= argc) { return bad_usage(usage_train, "train: %s needs a value", a); }
        const char *v = argv[i + 1];
        int ok = 1;
        if (strcmp(a, "--steps") == 0) { ok = refio_parse_i64(v, 0, INT64_MAX / 2, &steps) == 0; }
        else if (strcmp(a, "--hidden") == 0) { ok = refio_parse_i64(v, 1, 100000, &hidden) == 0; hidden_given = 1; }
        else if (strcmp(a, "--batch") == 0) { ok = refio_parse_i64(v, 2, 1000000, &batch) == 0; }
        else if (strcmp(a, "--batch-seed") == 0) { ok = refio_parse_u64(v, &batch_seed) == 0; }
        else if (strcmp(a, "--init-seed") == 0) { ok = refio_parse_u64(v, &init_seed) == 0; }
        else if (strcmp(a, "--init") == 0) { init_path = v; }
        else if (strcmp(a, "--data") == 0) { data_path = v; }
        else { out_path = v; }   /* --out */
        if (!ok) {
            fprintf(stderr, "ref_mlp: train: bad value '%s' for %s\n%s", v, a, usage_train);
            return 2;
        }
        i++;
    }

    char err[1024];
    RefDims d = {0};
    RefParams p;
    if (init_path) {
        if (refio_load_params(init_path, &d, &p, NULL, err, sizeof err) != 0) {
            fprintf(stderr, "ref_mlp: %s\n", err);
            return 1;
        }
        if (hidden_given && hidden != d.H) {
            fprintf(stderr, "ref_mlp: %s: has %d hidden units but --hidden %lld was given\n",
                    init_path, d.H, (long long)hidden);
            ref_params_free(&p);
            return 1;
        }
    } else {
        d.B = NOTEBOOK_BLOCK;
        d.V = NOTEBOOK_VOCAB;
        d.E = NOTEBOOK_EMBED;
        d.H = (int)hidden;
        if (ref_params_alloc(&d, &p) != 0) { fprintf(stderr, "ref_mlp: out of memory\n"); return 1; }
        refio_init_params(&d, &p, init_seed);
    }
    d.n = (int)batch;

    Dataset ds;
    if (data_load(data_path, d.B, d.V, DATA_SEED, &ds, err, sizeof err) != 0) {
        fprintf(stderr, "ref_mlp: %s\n", err);
        ref_params_free(&p);
        return 1;
    }
    if (ds.train.rows < 2 || ds.val.rows < 1) {
        fprintf(stderr, "ref_mlp: %s: too few words for a train/val split\n", data_path);
        data_free(&ds);
        ref_params_free(&p);
        return 1;
    }
    printf("ref_mlp train: %lld steps, batch %d, block %d, vocab %d, embed %d, hidden %d, "
           "%lld train / %lld val rows\n", (long long)steps, d.n, d.B, d.V, d.E, d.H,
           (long long)ds.train.rows, (long long)ds.val.rows);

    RefActs a;
    RefGrads g;
    int32_t *Xb = malloc(sizeof(int32_t) * (size_t)d.n * d.B);
    int32_t *Yb = malloc(sizeof(int32_t) * (size_t)d.n);
    if (ref_acts_alloc(&d, &a) != 0 || ref_grads_alloc(&d, &g) != 0 || !Xb || !Yb) {
        fprintf(stderr, "ref_mlp: out of memory\n");
        return 1;
    }
    Rng rng;
    rng_seed(&rng, batch_seed);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int64_t step = 0; step < steps; step++) {
        // ix = torch.randint(0, Xtr.shape[0], (batch_size,)); Xb, Yb = Xtr[ix], Ytr[ix]
        for (int i = 0; i < d.n; i++) {
            int64_t r = (int64_t)rng_below(&rng, (uint64_t)ds.train.rows);
            memcpy(Xb + (size_t)i * d.B, ds.train.X + r * d.B, sizeof(int32_t) * (size_t)d.B);
            Yb[i] = ds.train.Y[r];
        }
        float lr = step < 100000 ? 0.1f : 0.01f;
        float loss = ref_train_step(&d, &p, Xb, Yb, &a, &g, lr);
        if (step % 10000 == 0) {
            printf("%7lld/%7lld: %.4f\n", (long long)step, (long long)steps, (double)loss);
            fflush(stdout);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);

    // calibrate the batch norm at the end of training, then evaluate with frozen stats
    real *bnmean = malloc(sizeof(real) * (size_t)d.H), *bnvar = malloc(sizeof(real) * (size_t)d.H);
    int rc = 0;
    if (!bnmean || !bnvar || ref_calibrate(&d, &p, ds.train.X, ds.train.rows, bnmean, bnvar) != 0) {
        fprintf(stderr, "ref_mlp: calibration failed (out of memory)\n");
        rc = 1;
        goto done;
    }
    double train_loss = ref_eval_loss(&d, &p, bnmean, bnvar, ds.train.X, ds.train.Y, ds.train.rows);
    double val_loss = ref_eval_loss(&d, &p, bnmean, bnvar, ds.val.X, ds.val.Y, ds.val.rows);
    if (train_loss < 0 || val_loss < 0) {
        fprintf(stderr, "ref_mlp: evaluation failed (out of memory)\n");
        rc = 1;
        goto done;
    }
    printf("train %.6f\nval %.6f\n", train_loss, val_loss);
    printf("(%lld steps in %.1f s)\n", (long long)steps, secs);
    if (out_path) {
        RefView pv[REF_NPARAMS];
        int np = ref_param_views(&d, &p, pv);
        int64_t sh[2] = {1, d.H};
        StWriter *w = st_writer_new();
        if (!w) { fprintf(stderr, "ref_mlp: out of memory\n"); rc = 1; goto done; }
        refio_add_views(w, "", pv, np);
        st_add(w, "bnmean", ST_F32, 2, sh, bnmean);
        st_add(w, "bnvar", ST_F32, 2, sh, bnvar);
        st_add_meta(w, "producer", "ninjac tests/reference ref_mlp train");
        if (st_write_atomic(w, out_path, err, sizeof err) != 0) {
            fprintf(stderr, "ref_mlp: %s\n", err);
            rc = 1;
        }
        st_writer_free(w);
    }
done:
    free(bnmean);
    free(bnvar);
    free(Xb);
    free(Yb);
    ref_acts_free(&a);
    ref_grads_free(&g);
    ref_params_free(&p);
    data_free(&ds);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) { fputs(usage_main, stderr); return 2; }
    if (is_help(argv[1])) { fputs(usage_main, stdout); return 0; }
    if (strcmp(argv[1], "grads") == 0) { return cmd_grads(argc - 2, argv + 2); }
    if (strcmp(argv[1], "train") == 0) { return cmd_train(argc - 2, argv + 2); }
    fprintf(stderr, "ref_mlp: unknown command '%s'\n%s", argv[1], usage_main);
    return 2;
}
