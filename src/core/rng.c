/* rng.c — xoshiro256** (Blackman & Vigna 2018) seeded by splitmix64.
 * Streams are split by hashing (parent state, stream id) through splitmix64,
 * so derived streams do not depend on how many numbers the parent drew. */
#include "core.h"

#include <math.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void pl_rng_seed(pl_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

pl_rng pl_rng_split(const pl_rng *r, uint64_t stream) {
    uint64_t x = r->s[0] ^ (r->s[1] * 0x9e3779b97f4a7c15ULL) ^ (r->s[2] << 7) ^ (r->s[3] >> 3);
    x ^= splitmix64(&stream);
    pl_rng out;
    pl_rng_seed(&out, x);
    return out;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t pl_rng_u64(pl_rng *r) {
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

uint64_t pl_rng_below(pl_rng *r, uint64_t n) {
    /* Lemire's nearly-divisionless unbiased bounded integer. */
    __uint128_t m = (__uint128_t)pl_rng_u64(r) * n;
    uint64_t lo = (uint64_t)m;
    if (lo < n) {
        uint64_t t = -n % n;
        while (lo < t) {
            m = (__uint128_t)pl_rng_u64(r) * n;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double pl_rng_uniform(pl_rng *r) { return (double)(pl_rng_u64(r) >> 11) * 0x1.0p-53; }

float pl_rng_normal(pl_rng *r) {
    double u1 = pl_rng_uniform(r), u2 = pl_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void pl_rng_shuffle(pl_rng *r, void *base, size_t n, size_t elem_size) {
    unsigned char tmp[256], *b = base;
    if (elem_size > sizeof tmp || n < 2) return;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)pl_rng_below(r, i + 1);
        if (j == i) continue;
        memcpy(tmp, b + i * elem_size, elem_size);
        memcpy(b + i * elem_size, b + j * elem_size, elem_size);
        memcpy(b + j * elem_size, tmp, elem_size);
    }
}
