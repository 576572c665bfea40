/* state.h - a model's buffers, their initialisation, and their files.
 * Memory: state_new allocates every buffer a command needs; state_free
 * releases them. Files are safetensors, written atomically. */
#ifndef NINJAC_STATE_H
#define NINJAC_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ninjac_model.h"
#include "rng.h"

typedef struct {
    const NinjacModel *m;
    void *params, *acts, *grads, *stats, *ws;
    bool calibrated;        /* stats hold batch statistics */
    /* training progress, saved in checkpoints */
    int64_t step;
    Rng batch_rng;
    /* The loss summed over the steps of the loss log's current window
     * (steps step - step % window .. step - 1), saved exactly so that a
     * resumed run logs the uninterrupted run's window means. */
    double loss_window_sum;
    bool loss_window_sum_known; /* false for checkpoints that predate it */
} State;

int state_new(State *s, const NinjacModel *m);
void state_free(State *s);

/* params <- scale * draw + shift, as each param's init says. */
void state_init_params(State *s, uint64_t seed);

/* Files. Errors go to err ("PATH: message") and return -1; a failed save
 * leaves any previous file at path untouched. */
int state_save(const State *s, const char *path, bool checkpoint, char *err, size_t errlen);
/* Loads params (a params file or a checkpoint); a checkpoint also gives
 * step, RNG state, the loss window sum and, when present, the batch
 * statistics. Every tensor of the file must be one of those. */
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

#endif
