/* rng.h - random numbers, drawn as the notebook's Python draws them.
 * Mt19937 reproduces CPython's random module (seed with an int, getrandbits,
 * randbelow, shuffle) so the data split equals the notebook's. TorchGen
 * reproduces torch.Generator, so init and minibatches equal the notebook's. */
#ifndef NINJAC_RNG_H
#define NINJAC_RNG_H

#include <stdbool.h>
#include <stdint.h>

typedef struct { uint32_t mt[624]; int index; } Mt19937;
void mt_seed_python(Mt19937 *m, uint32_t seed);   /* random.seed(seed) */
uint32_t mt_next32(Mt19937 *m);
uint64_t mt_getrandbits(Mt19937 *m, int k);       /* random.getrandbits(k), 0 <= k <= 64 */
uint64_t mt_randbelow(Mt19937 *m, uint64_t n);    /* random._randbelow(n) */
void mt_shuffle(Mt19937 *m, void **items, int64_t n); /* random.shuffle */

/* torch.Generator().manual_seed(seed) on the CPU, drawing bit-for-bit as
 * PyTorch 1.13's CPU kernels (torch.randn, torch.rand, torch.randint,
 * torch.multinomial) draw. The whole state is the struct. */
typedef struct {
    Mt19937 mt;
    uint64_t seed;
    int64_t draws;           /* 32-bit outputs taken since seeding */
    bool has_next_normal;    /* torch caches the second half of a Box-Muller pair */
    double next_normal;
} TorchGen;
void tg_seed(TorchGen *g, uint64_t seed);
uint32_t tg_random(TorchGen *g);
uint64_t tg_random64(TorchGen *g);                /* two draws, the first is the high word */
double tg_uniform53(TorchGen *g);                  /* torch.rand(dtype=float64): [0, 1) */
void tg_randn(TorchGen *g, float *x, int64_t n);   /* torch.randn(n, generator=g) */
void tg_rand(TorchGen *g, float *x, int64_t n);    /* torch.rand(n, generator=g) */
int64_t tg_randint(TorchGen *g, int64_t high);     /* torch.randint(0, high, ...), 0 < high < 2^32 */
int tg_multinomial1(TorchGen *g, const float *p, int n); /* torch.multinomial(p, 1): p[n] >= 0, not all 0 */
void tg_randperm(TorchGen *g, int64_t *r, int64_t n);     /* torch.randperm(n, generator=g), n < 2^32 */

#endif
