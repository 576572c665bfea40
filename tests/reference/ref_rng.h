/* ref_rng.h - the test tools' own generator (xoshiro256**): random batches
 * and parameters for the reference, the cmp table and the finite-difference
 * checks. The trainer draws as PyTorch does instead (runtime/rng.h). */
#ifndef NINJAC_REF_RNG_H
#define NINJAC_REF_RNG_H

#include <stdint.h>

typedef struct { uint64_t s[4]; } Rng;
void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_next(Rng *r);
double rng_uniform(Rng *r);              /* [0, 1) */
uint64_t rng_below(Rng *r, uint64_t n);  /* unbiased in [0, n) */
double rng_normal(Rng *r);               /* standard normal */

#endif
