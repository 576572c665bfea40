/* ref_rng.c - xoshiro256** (Blackman & Vigna) for the test tools.
 * Memory: nothing is allocated; the whole state is the struct. */
#include "ref_rng.h"

#include <math.h>


static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* splitmix64 outputs four distinct words for consecutive counters, so the
 * state is never all zero (the one state xoshiro cannot leave). */
void rng_seed(Rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_next(Rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* The top 53 bits are exactly representable in a double. */
double rng_uniform(Rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

/* Rejects the lowest 2^64 mod n draws so every residue is equally likely.
 * n == 0 returns 0 without drawing. */
uint64_t rng_below(Rng *r, uint64_t n) {
    if (n == 0) return 0;
    uint64_t threshold = (0 - n) % n; /* 2^64 mod n */
    for (;;) {
        uint64_t x = rng_next(r);
        if (x >= threshold) return x % n;
    }
}

/* Box-Muller keeps only the cosine branch, so that the whole state stays
 * in s[4]. u1 is in (0, 1] so log is finite. */
double rng_normal(Rng *r) {
    const double two_pi = 6.283185307179586476925286766559;
    double u1 = 1.0 - rng_uniform(r);
    double u2 = rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(two_pi * u2);
}
