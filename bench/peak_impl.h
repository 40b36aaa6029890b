/* peak_impl.h — compute-peak probes shared by bench/peak.c and bench/matmul.c.
 *
 * Each probe runs a loop of independent accumulator chains (12 of them: FMA
 * latency 4 x 2 ports needs >= 8, and 16 spill under gcc 12) on every
 * OpenMP thread and reports the summed rate:
 *   fp32  vfmadd231ps zmm: 16 lanes x 2 flops
 *   bf16  vdpbf16ps  zmm: 32 products x 2 flops
 *   int8  vpdpbusd   zmm: 64 products x 2 ops
 * The functions carry target attributes, so this file builds without the
 * AVX-512 flags; callers check the CPU first (pl_simd_detected()).
 */
#ifndef PL_BENCH_PEAK_IMPL_H
#define PL_BENCH_PEAK_IMPL_H

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <time.h>

#include "core/core.h"

#define PEAK_ACC 12

static volatile float peak_sink_f;
static volatile int peak_sink_i;

__attribute__((target("avx512f"))) static double peak_fp32_iters(int64_t iters) {
    __m512 a[PEAK_ACC];
    const __m512 x = _mm512_set1_ps(peak_sink_f + 1.0f), y = _mm512_set1_ps(0.999999f);
    for (int i = 0; i < PEAK_ACC; i++) a[i] = _mm512_set1_ps((float)i);
    for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < PEAK_ACC; i++) a[i] = _mm512_fmadd_ps(a[i], y, x);
    }
    __m512 s = a[0];
    for (int i = 1; i < PEAK_ACC; i++) s = _mm512_add_ps(s, a[i]);
    peak_sink_f = _mm512_reduce_add_ps(s);
    return (double)iters * PEAK_ACC * 32;
}

__attribute__((target("avx512f,avx512bf16"))) static double peak_bf16_iters(int64_t iters) {
    __m512 a[PEAK_ACC];
    const __m512bh x = (__m512bh)_mm512_set1_epi16((short)(0x3f80 + (int)peak_sink_f));
    const __m512bh y = (__m512bh)_mm512_set1_epi16(0x3f00);
    for (int i = 0; i < PEAK_ACC; i++) a[i] = _mm512_set1_ps((float)i);
    for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < PEAK_ACC; i++) a[i] = _mm512_dpbf16_ps(a[i], x, y);
    }
    __m512 s = a[0];
    for (int i = 1; i < PEAK_ACC; i++) s = _mm512_add_ps(s, a[i]);
    peak_sink_f = _mm512_reduce_add_ps(s);
    return (double)iters * PEAK_ACC * 64;
}

__attribute__((target("avx512f,avx512vnni"))) static double peak_int8_iters(int64_t iters) {
    __m512i a[PEAK_ACC];
    const __m512i x = _mm512_set1_epi8((char)(1 + peak_sink_i)), y = _mm512_set1_epi8(3);
    for (int i = 0; i < PEAK_ACC; i++) a[i] = _mm512_set1_epi32(i);
    for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < PEAK_ACC; i++) a[i] = _mm512_dpbusd_epi32(a[i], x, y);
    }
    __m512i s = a[0];
    for (int i = 1; i < PEAK_ACC; i++) s = _mm512_add_epi32(s, a[i]);
    peak_sink_i = _mm512_reduce_add_epi32(s);
    return (double)iters * PEAK_ACC * 128;
}

/* Seconds on the clock benches use: wall time, or with one thread the
 * process CPU time, which does not count time spent descheduled (this
 * machine is shared). */
static inline double bench_clock(int nthreads) {
    if (nthreads == 1) {
        struct timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    }
    return pl_time_now();
}

/* kind: 0 fp32, 1 bf16, 2 int8. Returns G(FL)OP/s summed over nthreads. */
static double peak_measure(int kind, int nthreads, double seconds) {
    const int64_t iters = 1 << 20;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double total = 0;
        const double t0 = bench_clock(nthreads);
        double t1 = t0;
        int64_t rounds = 0;
        while (t1 - t0 < seconds / 3) {
            #pragma omp parallel num_threads(nthreads) reduction(+ : total)
            {
                total += kind == 0 ? peak_fp32_iters(iters) : kind == 1 ? peak_bf16_iters(iters) : peak_int8_iters(iters);
            }
            rounds++;
            t1 = bench_clock(nthreads);
        }
        const double rate = total / (t1 - t0) / 1e9;
        if (rate > best) best = rate;
    }
    return best;
}

#endif
