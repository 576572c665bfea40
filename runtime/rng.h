/* rng.h - random numbers.
 * Mt19937 reproduces CPython's random module (seed with an int, getrandbits,
 * randbelow, shuffle) so the data split equals the notebook's. Rng is the
 * trainer's own generator (xoshiro256**): batches, init and sampling. */
#ifndef NINJAC_RNG_H
#define NINJAC_RNG_H

#include <stdint.h>

typedef struct { uint32_t mt[624]; int index; } Mt19937;
void mt_seed_python(Mt19937 *m, uint32_t seed);   /* random.seed(seed) */
uint32_t mt_next32(Mt19937 *m);
uint64_t mt_getrandbits(Mt19937 *m, int k);       /* random.getrandbits(k), 0 <= k <= 64 */
uint64_t mt_randbelow(Mt19937 *m, uint64_t n);    /* random._randbelow(n) */
void mt_shuffle(Mt19937 *m, void **items, int64_t n); /* random.shuffle */

typedef struct { uint64_t s[4]; } Rng;
void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_next(Rng *r);
double rng_uniform(Rng *r);              /* [0, 1) */
uint64_t rng_below(Rng *r, uint64_t n);  /* unbiased in [0, n) */
double rng_normal(Rng *r);               /* standard normal */

#endif
