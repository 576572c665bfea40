/* optim.h - the optimizers' updates beyond the generated SGD step.
 * Memory: nothing is allocated here; the moments live in the State. */
#ifndef NINJAC_OPTIM_H
#define NINJAC_OPTIM_H

#include <stdint.h>

#include "ninjac_model.h"

typedef enum { OPTIM_SGD, OPTIM_ADAMW } OptimKind;

/* torch.optim.AdamW's hyperparameters and the trainer's learning rate
 * schedule (lr until lr_decay_step, then lr_decay_to), which an AdamW
 * checkpoint carries so that --resume continues the same run. */
typedef struct {
    double lr, lr_decay_to;
    int64_t lr_decay_step;
    double weight_decay, beta1, beta2, eps;
} AdamWHyper;

/* makemore.py's: torch.optim.AdamW(lr=5e-4, weight_decay=0.01, betas=(0.9, 0.99), eps=1e-8). */
#define ADAMW_DEFAULT_LR 5e-4
#define ADAMW_DEFAULT_WEIGHT_DECAY 0.01
#define ADAMW_DEFAULT_BETA1 0.9
#define ADAMW_DEFAULT_BETA2 0.99
#define ADAMW_DEFAULT_EPS 1e-8

/* NULL if h is usable, else what is wrong with it ("--betas: ..."), in
 * the command line's terms: torch's own limits (lr, weight decay, eps >= 0,
 * 0 <= beta < 1), every value finite, lr a finite float, and eps a
 * positive float (a zero eps divides 0 by 0 for a param whose gradient
 * has always been 0). */
const char *adamw_invalid(const AdamWHyper *h);

/* One AdamW step over every param of m, as torch 1.13's single-tensor
 * AdamW computes it in float32 (see optim.c). exp_avg and exp_avg_sq have
 * the params' layout (same offsets); step is the number of updates after
 * this one (1 for the first). */
void adamw_step(const NinjacModel *m, void *params, const void *grads, void *exp_avg, void *exp_avg_sq,
                const AdamWHyper *h, double lr, int64_t step);

#endif
