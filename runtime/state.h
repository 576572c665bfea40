/* state.h - a model's buffers, their initialisation, and their files.
 * Memory: state_new allocates every buffer a command needs; state_free
 * releases them. Files are safetensors, written atomically. */
#ifndef NINJAC_STATE_H
#define NINJAC_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ninjac_model.h"
#include "optim.h"
#include "rng.h"

typedef struct {
    const NinjacModel *m;
    void *params, *acts, *grads, *stats, *ws;
    bool calibrated;        /* stats hold batch statistics */
    /* training progress, saved in checkpoints */
    int64_t step;
    TorchGen batch_rng;     /* minibatch indices: torch.randint */
    /* The loss summed over the steps of the loss log's current window
     * (steps step - step % window .. step - 1), saved exactly so that a
     * resumed run logs the uninterrupted run's window means. */
    double loss_window_sum;
    /* The vocabulary the params were trained on, index order ('.' first),
     * "" when unknown (params straight from init). Checkpoints carry it, so
     * that data with other characters in the same number is refused. */
    char vocab[257];
    /* The optimizer of the run. An SGD checkpoint holds no state of it
     * (nor did checkpoints before AdamW: no "optim" means SGD); an AdamW
     * one holds the hyperparameters and both moments. Its step count is
     * step: every step of a run is an update of the same optimizer. */
    OptimKind optim;
    AdamWHyper adamw;
    void *exp_avg, *exp_avg_sq;   /* AdamW's moments, laid out as params */
} State;

int state_new(State *s, const NinjacModel *m);
void state_free(State *s);

/* params <- each param's init, computed as PyTorch computes the same line:
 * randn(generator=g) draws from torch.Generator().manual_seed(seed), and a
 * draw without a generator from torch's default generator. PyTorch seeds
 * that one at random when it starts (so the notebook's own bngain and
 * bnbias differ from run to run); here it starts from TORCH_DEFAULT_SEED,
 * the seed of a new torch.Generator(). A spec that names no generator
 * draws everything from the default one, seeded with seed.
 * *batches (if not NULL) gets g after the init, where the notebook's
 * minibatches continue (the default generator if the spec names none). */
#define TORCH_DEFAULT_SEED 67280421310721ull
void init_params(const NinjacModel *m, void *params, uint64_t seed, TorchGen *batches);
/* The same, drawing from *start as it stands (a generator that has drawn
 * before, as makemore.py's default one after its data split); *after is
 * the generator as the init leaves it (it may be start). */
void init_params_from(const NinjacModel *m, void *params, const TorchGen *start, TorchGen *after);
/* *batches as init_params(m, params, seed, batches) leaves it, without params. */
int init_generator(const NinjacModel *m, uint64_t seed, TorchGen *batches);

/* Files. Errors go to err ("PATH: message") and return -1; a failed save
 * leaves any previous file at path untouched. */
int state_save(const State *s, const char *path, bool checkpoint, char *err, size_t errlen);
/* Loads params (a params file or a checkpoint); a checkpoint also gives
 * step, RNG state, the loss window sum, the vocabulary, the optimizer
 * (with AdamW's state) and, when present, the batch statistics. Every tensor of the file must be one of those, and
 * every value finite. */
int state_load(State *s, const char *path, bool *is_checkpoint, char *err, size_t errlen);

/* A batch of inputs read from a safetensors file (I32 or I64), checked
 * against the spec's shapes and ranges; the file holds nothing else.
 * inputs[k] are malloc'd. */
int load_inputs(const NinjacModel *m, const char *path, int32_t **inputs, char *err, size_t errlen);

/* The cheap test run every step: the loss and every parameter gradient are
 * finite (NaN and inf in activations propagate into them). */
bool step_looks_finite(const State *s);

/* The first non-finite value among activations then gradients: its name
 * and spec line, or NULL when all are finite. */
const NjTensor *first_nonfinite(const State *s, bool *in_grads);
/* The first param with a non-finite value, or NULL: finite gradients can
 * still overflow in the SGD update (lr times a large gradient). */
const NjTensor *first_nonfinite_param(const State *s);
/* The first batch statistic with a non-finite value, or NULL: finite but
 * huge params can overflow in calibration. */
const NjTensor *first_nonfinite_stat(const State *s);
/* The first activation of the last `infer` call (on `rows` rows) with a
 * non-finite value, or NULL. */
const NjTensor *first_nonfinite_infer_act(const State *s, int rows);

#endif
