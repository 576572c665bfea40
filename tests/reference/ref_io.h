/* ref_io.h - safetensors glue for the reference tools: loading parameters and
 * batches (with shape and range checks), notebook-style initialisation, and
 * small argument-parsing helpers. Float build only. */
#ifndef NINJAC_REF_IO_H
#define NINJAC_REF_IO_H

#include "reference.h"

#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"

/* The shapes the parameters had in their file (b1 may be [H] or [1, H], ...),
 * so that their gradients can be written back with the same shapes. */
typedef struct {
    int rank[REF_NPARAMS];
    int64_t shape[REF_NPARAMS][REF_MAX_RANK];
} RefParamShapes;

/* Reads C, W1, b1, bngain, bnbias, W2, b2 (F32) from path; sets d->B, V, E, H
 * from their shapes (d->n untouched) and allocates p. Returns -1 with
 * "PATH: message" in err on any problem. shapes may be NULL. */
int refio_load_params(const char *path, RefDims *d, RefParams *p, RefParamShapes *shapes,
                      char *err, size_t errlen);

/* Reads Xb [n, B] and Yb [n] (I32 or I64) from path, checks B against d->B
 * and every value against [0, d->V); sets d->n; returns malloc'd int32
 * copies. Returns -1 with "PATH: message" in err on any problem. */
int refio_load_batch(const char *path, RefDims *d, int32_t **Xb, int32_t **Yb,
                     char *err, size_t errlen);

/* The notebook's initialisation, as PyTorch draws it: C randn; W1 randn *
 * (5/3) / (B*E)**0.5; b1, W2, b2 randn * 0.1 from torch.Generator seeded
 * with seed; then from torch's default generator (seeded as state.h says)
 * bngain randn * 0.1 + 1.0 and bnbias randn * 0.1. */
void refio_init_params(const RefDims *d, RefParams *p, uint64_t seed);

/* Adds F32 views to a writer under prefix (e.g. "grad."). The writer copies
 * the names but only references the data until st_write_atomic. */
void refio_add_views(StWriter *w, const char *prefix, const RefView *v, int count);

/* Strict integer parsing: the whole string, within [lo, hi]. 0 or -1. */
int refio_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
int refio_parse_u64(const char *s, uint64_t *out);

#endif
