/* test_rng.c - Mt19937 against CPython and the C++ standard, TorchGen's
 * state, and the test tools' xoshiro256** against its published definition.
 * (TorchGen's draws against PyTorch itself: tests/oracle/test_torch_*.py.)
 * Memory: nothing is allocated. */
#define _POSIX_C_SOURCE 200809L

#include "check.h"
#include "ref_rng.h"
#include "rng.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Expected values were obtained from CPython 3.11.2 (/usr/bin/python3):
 *   import random; random.seed(42); print([random.getrandbits(32) for _ in range(5)])
 * and likewise for the other seeds and calls named beside each array. */
static void mt_matches_cpython_getrandbits(void) {
    static const uint32_t seed42[5] = {2746317213u, 478163327u, 107420369u, 3184935163u, 1181241943u};
    Mt19937 m;
    mt_seed_python(&m, 42);
    for (int i = 0; i < 5; i++) CHECK(mt_next32(&m) == seed42[i]);

    /* random.seed(0) and random.seed(2**32 - 1): the extremes of one key word. */
    static const uint32_t seed0[3] = {3626764237u, 1654615998u, 3255389356u};
    static const uint32_t seedmax[3] = {2728839433u, 2661025012u, 872737089u};
    mt_seed_python(&m, 0);
    for (int i = 0; i < 3; i++) CHECK(mt_next32(&m) == seed0[i]);
    mt_seed_python(&m, UINT32_MAX);
    for (int i = 0; i < 3; i++) CHECK(mt_next32(&m) == seedmax[i]);

    /* v = [getrandbits(32) for _ in range(2000)]; v[623], v[624], v[625], v[1999]:
     * across the second and later twists of the state. */
    mt_seed_python(&m, 42);
    uint32_t v[2000];
    for (int i = 0; i < 2000; i++) v[i] = mt_next32(&m);
    CHECK(v[623] == 2929454134u);
    CHECK(v[624] == 1071722055u);
    CHECK(v[625] == 2864457210u);
    CHECK(v[1999] == 1557724698u);

    /* seed 42: [getrandbits(k) for k in (1, 7, 31, 32)] */
    static const int ks[4] = {1, 7, 31, 32};
    static const uint64_t short_bits[4] = {1, 14, 53710184, 3184935163u};
    mt_seed_python(&m, 42);
    for (int i = 0; i < 4; i++) CHECK(mt_getrandbits(&m, ks[i]) == short_bits[i]);

    /* seed 42: getrandbits(33), getrandbits(64): words are filled low first. */
    mt_seed_python(&m, 42);
    CHECK(mt_getrandbits(&m, 33) == 2746317213ull);
    CHECK(mt_getrandbits(&m, 64) == 13679192365072849617ull);
}

static void mt_matches_cpython_randbelow_and_shuffle(void) {
    /* r = random.Random(42); [r._randbelow(n) for n in (10, 1000, 2**32, 2**32-1, 2**40, 1, 2)] */
    static const uint64_t n[7] = {10, 1000, 1ull << 32, (1ull << 32) - 1, 1ull << 40, 1, 2};
    static const uint64_t want[7] = {1, 25, 3184935163ull, 1051802512ull, 305901360862ull, 0, 0};
    Mt19937 m;
    mt_seed_python(&m, 42);
    for (int i = 0; i < 7; i++) CHECK(mt_randbelow(&m, n[i]) == want[i]);

    /* random.seed(42); l = list(range(10)); random.shuffle(l) */
    static const intptr_t shuffled10[10] = {7, 3, 2, 8, 5, 6, 9, 4, 0, 1};
    void *items[100];
    for (intptr_t i = 0; i < 10; i++) items[i] = (void *)i;
    mt_seed_python(&m, 42);
    mt_shuffle(&m, items, 10);
    for (int i = 0; i < 10; i++) CHECK((intptr_t)items[i] == shuffled10[i]);

    /* the same with range(100), first ten */
    static const intptr_t shuffled100[10] = {42, 41, 91, 9, 65, 50, 1, 70, 15, 78};
    for (intptr_t i = 0; i < 100; i++) items[i] = (void *)i;
    mt_seed_python(&m, 42);
    mt_shuffle(&m, items, 100);
    for (int i = 0; i < 10; i++) CHECK((intptr_t)items[i] == shuffled100[i]);

    /* Degenerate lengths draw nothing. */
    mt_seed_python(&m, 42);
    mt_shuffle(&m, items, 0);
    mt_shuffle(&m, items, 1);
    CHECK(mt_next32(&m) == 2746317213u);
}

/* torch's mt19937 is std::mt19937: the C++ standard requires the 10000th
 * output of a default-constructed one (seed 5489) to be 4123659995. */
static void torch_gen_is_std_mt19937(void) {
    TorchGen g;
    tg_seed(&g, 5489);
    uint32_t x = 0;
    for (int i = 0; i < 10000; i++) x = tg_random(&g);
    CHECK(x == 4123659995u);
    CHECK(g.draws == 10000);
    /* a 64-bit seed keeps its low 32 bits, as torch's init_with_uint32 does */
    tg_seed(&g, (1ull << 32) + 5489);
    for (int i = 0; i < 10000; i++) x = tg_random(&g);
    CHECK(x == 4123659995u);
}

/* A checkpoint saves the generator by value (runtime/state.c writes the
 * struct's words): a copy must continue the stream, whatever the draws
 * before were used for. */
static void torch_gen_state_is_the_struct(void) {
    TorchGen a, b;
    float x[40];
    tg_seed(&a, 2147483647);
    tg_randn(&a, x, 27);
    tg_rand(&a, x, 5);
    for (int i = 0; i < 1000; i++) (void)tg_randint(&a, 182625);
    memcpy(&b, &a, sizeof a);
    int same = 1;
    for (int i = 0; i < 2000; i++) same &= tg_randint(&a, 182625) == tg_randint(&b, 182625);
    CHECK(same);
    CHECK(a.draws == 27 + 16 + 5 + 3000);
}

/* Expected words come from a Python transcription of splitmix64 and
 * xoshiro256** as published by Blackman and Vigna; splitmix64(0)'s first
 * output 0xe220a8397b1dcdaf is the commonly quoted one. */
static void xoshiro_matches_reference(void) {
    Rng r;
    rng_seed(&r, 0);
    CHECK(r.s[0] == 0xe220a8397b1dcdafull);
    CHECK(r.s[3] == 0xf88bb8a8724c81ecull);
    static const uint64_t seed0[4] = {0x99ec5f36cb75f2b4ull, 0xbf6e1f784956452aull, 0x1a5f849d4933e6e0ull,
                                      0x6aa594f1262d2d2cull};
    for (int i = 0; i < 4; i++) CHECK(rng_next(&r) == seed0[i]);

    rng_seed(&r, 42);
    static const uint64_t seed42[4] = {0x15780b2e0c2ec716ull, 0x6104d9866d113a7eull, 0xae17533239e499a1ull,
                                       0xecb8ad4703b360a1ull};
    for (int i = 0; i < 4; i++) CHECK(rng_next(&r) == seed42[i]);

    /* rng_uniform is (next >> 11) * 2^-53: */
    rng_seed(&r, 42);
    CHECK(rng_uniform(&r) == 0.08386297105988216);
    CHECK(rng_uniform(&r) == 0.3789802506626686);
}

/* A checkpoint saves Rng by value; restoring it must replay the stream. */
static void rng_state_is_the_struct(void) {
    Rng a, saved;
    rng_seed(&a, 7);
    for (int i = 0; i < 10; i++) (void)rng_normal(&a);
    memcpy(&saved, &a, sizeof a);
    double first[8], again[8];
    for (int i = 0; i < 8; i++) first[i] = rng_normal(&a);
    memcpy(&a, &saved, sizeof a);
    for (int i = 0; i < 8; i++) again[i] = rng_normal(&a);
    CHECK(memcmp(first, again, sizeof first) == 0);
}

static void rng_distributions_are_sane(void) {
    enum { N = 200000 };
    Rng r;
    rng_seed(&r, 1234);

    double sum = 0, sumsq = 0;
    int in_range = 1;
    for (int i = 0; i < N; i++) {
        double u = rng_uniform(&r);
        in_range &= u >= 0.0 && u < 1.0;
        sum += u;
    }
    CHECK(in_range);
    CHECK(fabs(sum / N - 0.5) < 0.005);

    sum = 0;
    int finite = 1;
    for (int i = 0; i < N; i++) {
        double z = rng_normal(&r);
        finite &= isfinite(z);
        sum += z;
        sumsq += z * z;
    }
    double mean = sum / N, var = sumsq / N - mean * mean;
    CHECK(finite);
    CHECK(fabs(mean) < 0.01);
    CHECK(fabs(var - 1.0) < 0.02);

    /* rng_below(3): each residue within 1% of N/3 (sigma is about 0.2%). */
    int64_t counts[3] = {0, 0, 0};
    for (int i = 0; i < N; i++) counts[rng_below(&r, 3)]++;
    for (int i = 0; i < 3; i++) CHECK(fabs((double)counts[i] / N - 1.0 / 3) < 0.01);

    /* Edge sizes: n = 1 always 0, n just above 2^63 (half the draws are
     * rejected) stays in range, n = 0 is defined as 0. */
    int ok_one = 1, ok_big = 1;
    uint64_t big = (1ull << 63) + 1;
    for (int i = 0; i < 1000; i++) {
        ok_one &= rng_below(&r, 1) == 0;
        ok_big &= rng_below(&r, big) < big;
    }
    CHECK(ok_one);
    CHECK(ok_big);
    CHECK(rng_below(&r, 0) == 0);
}

int main(int argc, char **argv) {
    static const TestCase cases[] = {
        {"mt_getrandbits", mt_matches_cpython_getrandbits},
        {"mt_randbelow_shuffle", mt_matches_cpython_randbelow_and_shuffle},
        {"torch_std_mt19937", torch_gen_is_std_mt19937},
        {"torch_state", torch_gen_state_is_the_struct},
        {"xoshiro_reference", xoshiro_matches_reference},
        {"rng_state", rng_state_is_the_struct},
        {"rng_distributions", rng_distributions_are_sane},
    };
    return run_named_case(cases, sizeof cases / sizeof cases[0], argc, argv);
}
