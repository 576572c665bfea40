/* rng.c - Mt19937 bit-for-bit compatible with CPython's random module, and
 * the trainer's xoshiro256** generator.
 *
 * Memory: nothing is allocated; each generator's whole state lives in its
 * struct, so a checkpoint can save and restore it by value. */
#include "rng.h"

#include <math.h>

/* ------------------------------------------------------------------ */
/* Mt19937 (Matsumoto & Nishimura), seeded the way CPython seeds it    */
/* ------------------------------------------------------------------ */

enum { MT_N = 624, MT_M = 397 };
#define MT_MATRIX_A 0x9908b0dfu
#define MT_UPPER_MASK 0x80000000u
#define MT_LOWER_MASK 0x7fffffffu

static void mt_init_genrand(Mt19937 *m, uint32_t s) {
    m->mt[0] = s;
    for (uint32_t i = 1; i < MT_N; i++)
        m->mt[i] = 1812433253u * (m->mt[i - 1] ^ (m->mt[i - 1] >> 30)) + i;
    m->index = MT_N;
}

static void mt_init_by_array(Mt19937 *m, const uint32_t *key, uint32_t key_len) {
    mt_init_genrand(m, 19650218u);
    uint32_t i = 1, j = 0;
    for (uint32_t k = MT_N > key_len ? MT_N : key_len; k; k--) {
        m->mt[i] = (m->mt[i] ^ ((m->mt[i - 1] ^ (m->mt[i - 1] >> 30)) * 1664525u)) + key[j] + j;
        i++;
        j++;
        if (i >= MT_N) {
            m->mt[0] = m->mt[MT_N - 1];
            i = 1;
        }
        if (j >= key_len) j = 0;
    }
    for (uint32_t k = MT_N - 1; k; k--) {
        m->mt[i] = (m->mt[i] ^ ((m->mt[i - 1] ^ (m->mt[i - 1] >> 30)) * 1566083941u)) - i;
        i++;
        if (i >= MT_N) {
            m->mt[0] = m->mt[MT_N - 1];
            i = 1;
        }
    }
    m->mt[0] = 0x80000000u; /* guarantees a non-zero state */
}

/* CPython's random.seed(n) for an int n feeds init_by_array the 32-bit
 * chunks of abs(n), least significant first ([0] for n == 0); any uint32_t
 * is a single chunk. */
void mt_seed_python(Mt19937 *m, uint32_t seed) {
    uint32_t key[1] = {seed};
    mt_init_by_array(m, key, 1);
}

static void mt_twist(Mt19937 *m) {
    for (int k = 0; k < MT_N; k++) {
        uint32_t y = (m->mt[k] & MT_UPPER_MASK) | (m->mt[(k + 1) % MT_N] & MT_LOWER_MASK);
        m->mt[k] = m->mt[(k + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1u) ? MT_MATRIX_A : 0u);
    }
    m->index = 0;
}

uint32_t mt_next32(Mt19937 *m) {
    if (m->index >= MT_N || m->index < 0) mt_twist(m);
    uint32_t y = m->mt[m->index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* random.getrandbits(k) for 0 <= k <= 64. CPython fills 32-bit words from
 * the least significant up and drops the surplus low bits of the last
 * (most significant) word's draw. */
uint64_t mt_getrandbits(Mt19937 *m, int k) {
    if (k <= 0) return 0;
    if (k <= 32) return mt_next32(m) >> (32 - k);
    uint64_t low = mt_next32(m);
    uint64_t high = mt_next32(m) >> (64 - (k > 64 ? 64 : k));
    return (high << 32) | low;
}

static int bit_length(uint64_t n) {
    int k = 0;
    while (n) {
        k++;
        n >>= 1;
    }
    return k;
}

/* random._randbelow(n): rejection sampling on bit_length(n) bits. CPython
 * leaves n == 0 undefined; here it returns 0 without drawing. */
uint64_t mt_randbelow(Mt19937 *m, uint64_t n) {
    if (n == 0) return 0;
    int k = bit_length(n);
    uint64_t r = mt_getrandbits(m, k);
    while (r >= n) r = mt_getrandbits(m, k);
    return r;
}

/* random.shuffle: Fisher-Yates from the back, as CPython writes it. */
void mt_shuffle(Mt19937 *m, void **items, int64_t n) {
    for (int64_t i = n - 1; i >= 1; i--) {
        int64_t j = (int64_t)mt_randbelow(m, (uint64_t)i + 1);
        void *tmp = items[i];
        items[i] = items[j];
        items[j] = tmp;
    }
}

/* ------------------------------------------------------------------ */
/* Rng: xoshiro256** (Blackman & Vigna), seeded through splitmix64      */
/* ------------------------------------------------------------------ */

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

/* Box-Muller keeps only the cosine branch: caching the sine would put state
 * outside s[4], which checkpoints save. u1 is in (0, 1] so log is finite. */
double rng_normal(Rng *r) {
    const double two_pi = 6.283185307179586476925286766559;
    double u1 = 1.0 - rng_uniform(r);
    double u2 = rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(two_pi * u2);
}
