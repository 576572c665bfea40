/* rng.c - Mt19937 bit-for-bit compatible with CPython's random module, and
 * TorchGen, a torch.Generator that draws bit-for-bit as PyTorch 1.13's CPU
 * kernels draw.
 *
 * Memory: nothing is allocated; each generator's whole state lives in its
 * struct, so a checkpoint can save and restore it by value. */
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
/* TorchGen: torch.Generator().manual_seed(seed) on the CPU             */
/* ------------------------------------------------------------------ */

/* torch's mt19937 is the standard one, seeded by init_genrand with the
 * seed's low 32 bits. */
void tg_seed(TorchGen *g, uint64_t seed) {
    mt_init_genrand(&g->mt, (uint32_t)seed);
    g->seed = seed;
    g->draws = 0;
    g->has_next_normal = false;
    g->next_normal = 0;
}

uint32_t tg_random(TorchGen *g) {
    g->draws++;
    return mt_next32(&g->mt);
}

/* CPUGeneratorImpl::random64: the first draw is the high word. */
uint64_t tg_random64(TorchGen *g) {
    uint64_t hi = tg_random(g);
    return hi << 32 | tg_random(g);
}

/* uniform_real_distribution: the low 24 (float) or 53 (double) bits of a
 * draw, scaled to [0, 1). Both products are exact. */
static float tg_uniform24(TorchGen *g) { return (float)(tg_random(g) & 0xffffffu) * 0x1.0p-24f; }
double tg_uniform53(TorchGen *g) { return (double)(tg_random64(g) & ((1ull << 53) - 1)) * 0x1.0p-53; }

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* torch.randn of 16 or more floats runs normal_fill_16_AVX2 where torch
 * runs its AVX2 kernels (see uses_avx2_kernels below): Box-Muller
 * with Cephes-style single-precision log and sincos polynomials (Pommier's
 * avx_mathfun), which torch's compiler contracted into the fused
 * multiply-adds written out below. This file is built with
 * -ffp-contract=off so that no other product is fused. The argument of
 * cephes_logf is 1 - u, in [2^-24, 1]: no zero, subnormal or negative. */
static float cephes_logf(float x) {
    uint32_t bits = float_bits(x);
    float e = (float)((int32_t)(bits >> 23) - 0x7f) + 1.0f;
    x = bits_float((bits & ~0x7f800000u) | float_bits(0.5f)); /* mantissa in [0.5, 1) */
    bool below_sqrt_half = x < 0.707106781186547524f;
    float tmp = below_sqrt_half ? x : 0.0f;
    x = x - 1.0f;
    e = e - (below_sqrt_half ? 1.0f : 0.0f);
    x = x + tmp;
    float z = x * x;
    static const float p[9] = {7.0376836292e-2f,  -1.1514610310e-1f, 1.1676998740e-1f,
                               -1.2420140846e-1f, 1.4249322787e-1f,  -1.6668057665e-1f,
                               2.0000714765e-1f,  -2.4999993993e-1f, 3.3333331174e-1f};
    float y = p[0];
    for (int k = 1; k < 9; k++)
        y = fmaf(y, x, p[k]);
    y = y * x;
    y = fmaf(y, z, e * -2.12194440e-4f);
    y = fmaf(z, -0.5f, y);
    x = x + y;
    return fmaf(e, 0.693359375f, x);
}

static void cephes_sincosf(float x, float *sin_out, float *cos_out) {
    uint32_t sign_sin = float_bits(x) & 0x80000000u;
    x = fabsf(x);
    int32_t octant = ((int32_t)(x * 1.27323954473516f) + 1) & ~1; /* 4/pi */
    float y = (float)octant;
    uint32_t swap_sin = ((uint32_t)octant & 4u) << 29;
    bool sine_poly_is_sin = (octant & 2) == 0;
    x = fmaf(y, -0.78515625f, x); /* x - y * pi/4 in three parts */
    x = fmaf(y, -2.4187564849853515625e-4f, x);
    x = fmaf(y, -3.77489497744594108e-8f, x);
    uint32_t sign_cos = (~(uint32_t)(octant - 2) & 4u) << 29;
    sign_sin ^= swap_sin;
    float z = x * x;
    float c = fmaf(fmaf(2.443315711809948e-5f, z, -1.388731625493765e-3f), z, 4.166664568298827e-2f);
    c = c * z;
    c = fmaf(c, z, -(z * 0.5f)) + 1.0f;
    float s = fmaf(fmaf(-1.9515295891e-4f, z, 8.3321608736e-3f), z, -1.6666654611e-1f);
    s = s * z;
    s = fmaf(s, x, x);
    *sin_out = bits_float(float_bits(sine_poly_is_sin ? s : c) ^ sign_sin);
    *cos_out = bits_float(float_bits(sine_poly_is_sin ? c : s) ^ sign_cos);
}

/* x[0..15] holds uniforms; pairs (j, j + 8) become two normals. */
static void normal_fill_16_avx2(float *x) {
    const float two_pi = (float)6.283185307179586476925286766559;
    for (int j = 0; j < 8; j++) {
        float radius = sqrtf(-2.0f * cephes_logf(1.0f - x[j]));
        float s, c;
        cephes_sincosf(two_pi * x[j + 8], &s, &c);
        x[j] = radius * c;
        x[j + 8] = radius * s;
    }
}

/* The same in torch's scalar kernel (its default CPU capability, used
 * without AVX2 and on ARM): libm's logf, cosf and sinf, the angle computed
 * in double (`2.0f * c10::pi<double> * u2`) and rounded to float. */
static void normal_fill_16_scalar(float *x) {
    for (int j = 0; j < 8; j++) {
        float radius = sqrtf(-2.0f * logf(1.0f - x[j]));
        float theta = (float)(2.0 * 3.14159265358979323846 * (double)x[j + 8]);
        x[j] = radius * cosf(theta);
        x[j + 8] = radius * sinf(theta);
    }
}

/* Whether torch runs its AVX2 kernels here: on an x86-64 CPU with AVX2 and
 * FMA, unless ATEN_CPU_CAPABILITY=default asks it not to (torch reads the
 * variable once, at startup; so does this). */
static bool uses_avx2_kernels(void) {
    static int avx2 = -1;
    if (avx2 < 0) {
        const char *cap = getenv("ATEN_CPU_CAPABILITY");
        avx2 = 0;
#if defined(__x86_64__) && defined(__GNUC__)
        __builtin_cpu_init();
        avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !(cap && !strcmp(cap, "default"));
#else
        (void)cap;
#endif
    }
    return avx2;
}

static void normal_fill_16(float *x) {
    if (uses_avx2_kernels())
        normal_fill_16_avx2(x);
    else
        normal_fill_16_scalar(x);
}

/* at::normal_distribution<double>: Box-Muller in double whose sine half is
 * kept for the next call, as torch keeps it in the generator. */
static double tg_normal64(TorchGen *g) {
    if (g->has_next_normal) {
        g->has_next_normal = false;
        return g->next_normal;
    }
    double u1 = tg_uniform53(g), u2 = tg_uniform53(g);
    double radius = sqrt(-2.0 * log(1.0 - u2));
    double theta = 2.0 * 3.14159265358979323846 * u1;
    g->next_normal = radius * sin(theta);
    g->has_next_normal = true;
    return radius * cos(theta);
}

/* torch.randn(n, generator=g) for a contiguous float tensor: all n uniforms
 * first, transformed 16 at a time; when 16 does not divide n the last 16
 * are drawn again and transformed over the tail. Fewer than 16 go one by
 * one through the double distribution. */
void tg_randn(TorchGen *g, float *x, int64_t n) {
    if (n < 16) {
        for (int64_t i = 0; i < n; i++)
            x[i] = (float)tg_normal64(g);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        x[i] = tg_uniform24(g);
    for (int64_t i = 0; i + 16 <= n; i += 16)
        normal_fill_16(x + i);
    if (n % 16) {
        float *tail = x + n - 16;
        for (int i = 0; i < 16; i++)
            tail[i] = tg_uniform24(g);
        normal_fill_16(tail);
    }
}

/* torch.rand(n, generator=g) */
void tg_rand(TorchGen *g, float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        x[i] = tg_uniform24(g);
}

/* torch.randint(0, high, ...): one 32-bit draw modulo high (torch's own
 * small bias included) for high < 2^32. */
int64_t tg_randint(TorchGen *g, int64_t high) { return (int64_t)(tg_random(g) % (uint64_t)high); }

/* torch.multinomial(p, 1, generator=g) for one row of n probabilities:
 * torch draws q ~ Exp(1) for every entry (-log(1 - u) in double, rounded
 * to float) and takes the first argmax of p / q, which picks j with
 * probability p[j] / sum(p). */
int tg_multinomial1(TorchGen *g, const float *p, int n) {
    int best = 0;
    float best_ratio = 0;
    for (int j = 0; j < n; j++) {
        float q = (float)-log(1.0 - tg_uniform53(g));
        float ratio = p[j] / q;
        if (j == 0 || ratio > best_ratio) {
            best = j;
            best_ratio = ratio;
        }
    }
    return best;
}

/* randperm_cpu: the identity, then Fisher-Yates from the front, each swap
 * partner i + random() % (n - i) from one 32-bit draw. */
void tg_randperm(TorchGen *g, int64_t *r, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        r[i] = i;
    for (int64_t i = 0; i + 1 < n; i++) {
        int64_t z = (int64_t)(tg_random(g) % (uint64_t)(n - i));
        int64_t t = r[i];
        r[i] = r[i + z];
        r[i + z] = t;
    }
}
