/* optim.c - AdamW as torch 1.13 computes it on the CPU, float for float.
 *
 * torch/optim/adamw.py (_single_tensor_adamw, the default: foreach is
 * False unless asked for) does, per param, with Python floats (doubles)
 * for the scalars and float32 tensors:
 *
 *     step_t += 1                      # a float32 tensor
 *     param.mul_(1 - lr * weight_decay)
 *     exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
 *     exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
 *     step = step_t.item()
 *     step_size = lr / (1 - beta1 ** step)
 *     denom = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2 ** step)).add_(eps)
 *     param.addcdiv_(exp_avg, denom, value=-step_size)
 *
 * Each scalar is rounded to float where it meets a tensor. The CPU kernels
 * fuse two of these: add_ with alpha is fmadd(grad, alpha, self), and
 * addcmul_ is self + value * t1 * t2 computed as fma(value * t1, t2, self);
 * addcdiv_ is self + (value * t1) / t2, with no fused step. That is the
 * order below, with fmaf where torch fuses and nothing else fused (this
 * file is compiled with -ffp-contract=off). Those are torch's AVX2 and
 * AVX-512 kernels, the ones it runs on any x86-64 of the last decade; its
 * kernels for older CPUs (or ATEN_CPU_CAPABILITY=default) fuse nothing,
 * so there the two differ in the last bit of some elements. Checked element for element
 * against torch.optim.AdamW while writing it; tests/oracle/test_adamw_run.py
 * compares whole runs. */
#include "optim.h"

#include <float.h>
#include <math.h>
#include <stddef.h>

/* torch counts steps in a float32 tensor, which stops at 2^24: from there
 * on step_t += 1 rounds back to 2^24, and the bias corrections with it. */
static double torch_step(int64_t step) {
    const int64_t stuck = (int64_t)1 << 24;
    return (double)(step < stuck ? step : stuck);
}

static int64_t numel(const NjTensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->rank; d++)
        n *= t->shape[d];
    return n;
}

void adamw_step(const NinjacModel *m, void *params, const void *grads, void *exp_avg, void *exp_avg_sq,
                const AdamWHyper *h, double lr, int64_t step) {
    double t = torch_step(step);
    const float decay = (float)(1 - lr * h->weight_decay);
    const float b1 = (float)h->beta1, one_minus_b1 = (float)(1 - h->beta1);
    const float b2 = (float)h->beta2, one_minus_b2 = (float)(1 - h->beta2);
    const float neg_step_size = (float)-(lr / (1 - pow(h->beta1, t)));
    const float bc2_sqrt = (float)sqrt(1 - pow(h->beta2, t));
    const float eps = (float)h->eps;
    for (int i = 0; i < m->nparams; i++) {
        size_t off = m->params[i].t.offset;
        float *p = (float *)((char *)params + off);
        float *ma = (float *)((char *)exp_avg + off);
        float *va = (float *)((char *)exp_avg_sq + off);
        const float *g = (const float *)((const char *)grads + m->grads[i].offset);
        for (int64_t k = 0, n = numel(&m->params[i].t); k < n; k++) {
            float pk = p[k] * decay;
            float mk = fmaf(g[k], one_minus_b1, ma[k] * b1);
            float vk = fmaf(one_minus_b2 * g[k], g[k], va[k] * b2);
            float denom = sqrtf(vk) / bc2_sqrt + eps;
            p[k] = pk + (neg_step_size * mk) / denom;
            ma[k] = mk;
            va[k] = vk;
        }
    }
}

const char *adamw_invalid(const AdamWHyper *h) {
    if (!(h->lr >= 0 && h->lr <= FLT_MAX) || !(h->lr_decay_to >= 0 && h->lr_decay_to <= FLT_MAX))
        return "--lr and --lr-decay-to must be non-negative finite floats";
    if (h->lr_decay_step < 0)
        return "--lr-decay-step must not be negative";
    if (!(h->weight_decay >= 0 && h->weight_decay <= FLT_MAX))
        return "--weight-decay must be a non-negative finite float";
    if (!(h->beta1 >= 0 && h->beta1 < 1) || !(h->beta2 >= 0 && h->beta2 < 1))
        return "--betas must be two numbers in [0, 1), such as 0.9,0.99";
    if (!(h->eps <= FLT_MAX && (float)h->eps > 0))
        return "--eps must be a positive finite float (from 1.4e-45 to 3.4e38): "
               "0 would divide 0 by 0 for a param whose gradient is 0";
    return NULL;
}
