/* test_tensor.c — dtypes, fp16/bf16, quantizers and the matmul kernels.
 *
 * References used: the GGUF/ggml block sizes (spec constants), IEEE 754
 * binary16/bfloat16 values worked out by hand, x86 F16C hardware conversion
 * (when the CPU has it), hand-built blocks with known values, analytic
 * quantization error bounds, the scalar kernels (for every SIMD level), and
 * llama-quantize's own q8_0/q4_0 output in ../shared (when present).
 */
#include "harness.h"
#include "io/io.h"
#include "tensor/tensor.h"

#include <float.h>
#include <stdint.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static pl_rng rng;

static float randn(void) { return pl_rng_normal(&rng); }

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static const pl_dtype ALL[] = {PL_DTYPE_F32,  PL_DTYPE_F16,  PL_DTYPE_BF16, PL_DTYPE_Q4_0, PL_DTYPE_Q4_1,
                               PL_DTYPE_Q5_0, PL_DTYPE_Q5_1, PL_DTYPE_Q8_0, PL_DTYPE_Q8_1, PL_DTYPE_Q2_K,
                               PL_DTYPE_Q3_K, PL_DTYPE_Q4_K, PL_DTYPE_Q5_K, PL_DTYPE_Q6_K, PL_DTYPE_Q8_K};
#define NALL (sizeof ALL / sizeof *ALL)

/* ---- dtype table: ggml type ids, block sizes and bytes (ggml-common.h) ---- */
static void test_table(void) {
    static const struct { pl_dtype t; int id; int64_t blck; size_t bytes; const char *name; } want[] = {
        {PL_DTYPE_F32, 0, 1, 4, "f32"},       {PL_DTYPE_F16, 1, 1, 2, "f16"},
        {PL_DTYPE_Q4_0, 2, 32, 18, "q4_0"},   {PL_DTYPE_Q4_1, 3, 32, 20, "q4_1"},
        {PL_DTYPE_Q5_0, 6, 32, 22, "q5_0"},   {PL_DTYPE_Q5_1, 7, 32, 24, "q5_1"},
        {PL_DTYPE_Q8_0, 8, 32, 34, "q8_0"},   {PL_DTYPE_Q8_1, 9, 32, 36, "q8_1"},
        {PL_DTYPE_Q2_K, 10, 256, 84, "q2_K"}, {PL_DTYPE_Q3_K, 11, 256, 110, "q3_K"},
        {PL_DTYPE_Q4_K, 12, 256, 144, "q4_K"}, {PL_DTYPE_Q5_K, 13, 256, 176, "q5_K"},
        {PL_DTYPE_Q6_K, 14, 256, 210, "q6_K"}, {PL_DTYPE_Q8_K, 15, 256, 292, "q8_K"},
        {PL_DTYPE_BF16, 30, 1, 2, "bf16"},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        CHECK((int)want[i].t == want[i].id, "%s id %d want %d", want[i].name, (int)want[i].t, want[i].id);
        CHECK(pl_dtype_block_size(want[i].t) == want[i].blck, "%s block size", want[i].name);
        CHECK(pl_dtype_block_bytes(want[i].t) == want[i].bytes, "%s block bytes %zu want %zu", want[i].name,
              pl_dtype_block_bytes(want[i].t), want[i].bytes);
        CHECK(strcmp(pl_dtype_name(want[i].t), want[i].name) == 0, "name %s", pl_dtype_name(want[i].t));
        pl_dtype p;
        CHECK(pl_dtype_from_name(want[i].name, &p) == PL_OK && p == want[i].t, "from_name %s", want[i].name);
    }
    CHECK(!pl_dtype_valid(4) && !pl_dtype_valid(5) && !pl_dtype_valid(16) && !pl_dtype_valid(-1) &&
              !pl_dtype_valid(31), "ids 4, 5, 16, -1, 31 are not dtypes");
    size_t b = 0;
    CHECK_OK(pl_dtype_row_bytes(PL_DTYPE_Q4_K, 4096, &b));
    CHECK(b == 16 * 144, "q4_K row bytes %zu", b);
    CHECK(pl_dtype_row_bytes(PL_DTYPE_Q4_0, 33, &b) == PL_ERR_INVALID, "q4_0 n=33 must fail");
    CHECK(pl_dtype_row_bytes(PL_DTYPE_F32, -1, &b) == PL_ERR_INVALID, "n=-1 must fail");
    /* 4 * (2^63 - 1) does not fit 64 bits */
    CHECK(pl_dtype_row_bytes(PL_DTYPE_F32, INT64_MAX, &b) == PL_ERR_INVALID, "f32 overflow must fail");
    CHECK(pl_dtype_row_bytes(PL_DTYPE_F32, INT64_MAX / 4, &b) == PL_OK && b == (size_t)(INT64_MAX / 4) * 4,
          "f32 near the limit");
    CHECK(pl_dtype_row_bytes((pl_dtype)5, 32, &b) == PL_ERR_INVALID, "id 5 must fail");
    CHECK(strstr(pl_errmsg(), "5") != NULL, "message names the id: %s", pl_errmsg());
}

/* ---- fp16 / bf16 against hand-worked IEEE values ---- */
static void test_half(void) {
    static const struct { uint32_t f; uint16_t h; } to16[] = {
        {0x3f800000, 0x3c00},             /* 1 */
        {0xc0000000, 0xc000},             /* -2 */
        {0x80000000, 0x8000},             /* -0 */
        {0x477fe000, 0x7bff},             /* 65504 = max */
        {0x477fefff, 0x7bff},             /* just below the midpoint 65520 */
        {0x477ff000, 0x7c00},             /* 65520: tie, 0x7bff is odd -> Inf */
        {0x7f800000, 0x7c00},             /* Inf */
        {0xff800000, 0xfc00},             /* -Inf */
        {0x7f7fffff, 0x7c00},             /* FLT_MAX overflows */
        {0x7fc00000, 0x7e00},             /* qNaN */
        {0xffc00000, 0xfe00},             /* -qNaN */
        {0x7f800001, 0x7e00},             /* sNaN -> quiet, payload bits below 13 dropped */
        {0x7fa02000, 0x7f01},             /* sNaN payload 0x202000 -> 0x101 | quiet bit */
        {0x3f801000, 0x3c00},             /* 1 + 2^-11: tie -> even (1) */
        {0x3f803000, 0x3c02},             /* 1 + 3*2^-11: tie -> even (1 + 2^-9) */
        {0x3f801001, 0x3c01},             /* just above the tie */
        {0x38800000, 0x0400},             /* 2^-14 min normal */
        {0x33800000, 0x0001},             /* 2^-24 min subnormal */
        {0x33000000, 0x0000},             /* 2^-25: tie -> 0 */
        {0x33000001, 0x0001},             /* above the tie */
        {0x33c00000, 0x0002},             /* 1.5 * 2^-24: tie -> 2 */
        {0x34200000, 0x0002},             /* 2.5 * 2^-24: tie -> 2 */
        {0x387fc000, 0x03ff},             /* 1023 * 2^-24 max subnormal */
        {0x387fe000, 0x0400},             /* 1023.5 * 2^-24: tie -> 1024 = min normal */
        {0x00000001, 0x0000},             /* f32 subnormal */
        {0x3eaaaaab, 0x3555},             /* 1/3 */
    };
    for (size_t i = 0; i < sizeof to16 / sizeof *to16; i++) {
        uint16_t h = pl_fp32_to_fp16(u2f(to16[i].f));
        CHECK(h == to16[i].h, "fp32_to_fp16(0x%08x) = 0x%04x, want 0x%04x", to16[i].f, h, to16[i].h);
    }
    static const struct { uint16_t h; uint32_t f; } from16[] = {
        {0x3c00, 0x3f800000}, {0x0001, 0x33800000}, {0x03ff, 0x387fc000}, {0x8001, 0xb3800000},
        {0x7bff, 0x477fe000}, {0xfc00, 0xff800000}, {0x7e00, 0x7fc00000}, {0x7c01, 0x7fc02000},
        {0x3555, 0x3eaaa000}, {0x8000, 0x80000000},
    };
    for (size_t i = 0; i < sizeof from16 / sizeof *from16; i++) {
        uint32_t f = f2u(pl_fp16_to_fp32(from16[i].h));
        CHECK(f == from16[i].f, "fp16_to_fp32(0x%04x) = 0x%08x, want 0x%08x", from16[i].h, f, from16[i].f);
    }
    /* every non-NaN half survives the round trip */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;
        if (pl_fp32_to_fp16(pl_fp16_to_fp32((uint16_t)h)) != h) bad++;
    }
    CHECK(bad == 0, "%d halves do not round-trip", bad);

    static const struct { uint32_t f; uint16_t b; } tob[] = {
        {0x3f800000, 0x3f80}, {0x3f808000, 0x3f80}, /* 1 + 2^-8: tie -> even */
        {0x3f818000, 0x3f82},                       /* 1 + 3*2^-8: tie -> even */
        {0x3f808001, 0x3f81}, {0x7f800000, 0x7f80}, {0xff800000, 0xff80},
        {0x7f7fffff, 0x7f80},                       /* FLT_MAX rounds to Inf */
        {0x7f800001, 0x7fc0},                       /* sNaN -> quiet */
        {0xffc00000, 0xffc0}, {0x7fff0000, 0x7fff}, /* NaN keeps its payload */
        {0x00000001, 0x0000}, {0x00008000, 0x0000}, /* subnormal tie -> even */
        {0x00018000, 0x0002}, {0x00010001, 0x0001}, {0x80000000, 0x8000},
    };
    for (size_t i = 0; i < sizeof tob / sizeof *tob; i++) {
        uint16_t b = pl_fp32_to_bf16(u2f(tob[i].f));
        CHECK(b == tob[i].b, "fp32_to_bf16(0x%08x) = 0x%04x, want 0x%04x", tob[i].f, b, tob[i].b);
    }
    CHECK(f2u(pl_bf16_to_fp32(0xc049)) == 0xc0490000, "bf16_to_fp32(0xc049)");
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) static uint16_t hw_f2h(float f) {
    return (uint16_t)_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT), 0);
}
__attribute__((target("f16c"))) static float hw_h2f(uint16_t h) {
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}
/* F16C hardware is an independent reference for every bit pattern class. */
static void test_half_hw(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("f16c")) { SKIP("no F16C: hardware fp16 comparison"); return; }
    int bad = 0;
    for (int i = 0; i < 400000; i++) {
        uint32_t u = (uint32_t)pl_rng_u64(&rng);
        if (i % 4 == 1) u = (u & 0x8fffffffu) | 0x30000000u; /* near the f16 range */
        if (i % 4 == 2) u = (u & 0x80ffffffu) | 0x47000000u;  /* near overflow */
        float f = u2f(u);
        uint16_t a = pl_fp32_to_fp16(f), b = hw_f2h(f);
        if (a != b && bad++ < 5) printf("  f16(0x%08x): 0x%04x, F16C 0x%04x\n", u, a, b);
    }
    CHECK(bad == 0, "%d f32->f16 conversions differ from F16C", bad);
    bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        uint32_t a = f2u(pl_fp16_to_fp32((uint16_t)h)), b = f2u(hw_h2f((uint16_t)h));
        if (a != b && bad++ < 5) printf("  f32(0x%04x): 0x%08x, F16C 0x%08x\n", h, a, b);
    }
    CHECK(bad == 0, "%d f16->f32 conversions differ from F16C", bad);
}
#endif

/* ---- hand-built blocks with known values ---- */
static void test_known_blocks(void) {
    float y[256];
    /* q4_0: d = 0.5 (0x3800); qs[j] = j | (15-j) << 4 -> x[j] = (j-8)/2, x[j+16] = (7-j)/2 */
    uint8_t b40[18] = {0x00, 0x38};
    for (int j = 0; j < 16; j++) b40[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    CHECK_OK(pl_dequantize_row(PL_DTYPE_Q4_0, b40, y, 32));
    int bad = 0;
    for (int j = 0; j < 16; j++) bad += y[j] != (j - 8) * 0.5f || y[j + 16] != (7 - j) * 0.5f;
    CHECK(bad == 0, "q4_0 known block: %d wrong", bad);
    /* q5_0: d = 1, low nibble j, qh bit set for odd j -> x[j] = j + 16*(j odd) - 16 */
    uint8_t b50[22] = {0x00, 0x3c};
    uint32_t qh = 0;
    for (int j = 0; j < 32; j++) if (j & 1) qh |= 1u << j;
    memcpy(b50 + 2, &qh, 4);
    for (int j = 0; j < 16; j++) b50[6 + j] = (uint8_t)(j | (j << 4));
    CHECK_OK(pl_dequantize_row(PL_DTYPE_Q5_0, b50, y, 32));
    bad = 0;
    for (int j = 0; j < 32; j++) bad += y[j] != (float)((j & 15) + 16 * (j & 1) - 16);
    CHECK(bad == 0, "q5_0 known block: %d wrong", bad);
    /* q4_1: d = 2, m = -1 -> x = 2q - 1 */
    uint8_t b41[20] = {0x00, 0x40, 0x00, 0xbc};
    for (int j = 0; j < 16; j++) b41[4 + j] = (uint8_t)(j | (j << 4));
    CHECK_OK(pl_dequantize_row(PL_DTYPE_Q4_1, b41, y, 32));
    bad = 0;
    for (int j = 0; j < 32; j++) bad += y[j] != 2.0f * (float)(j & 15) - 1.0f;
    CHECK(bad == 0, "q4_1 known block: %d wrong", bad);
    /* q8_0: d = 0.25, q = j - 16 */
    uint8_t b80[34] = {0x00, 0x34};
    for (int j = 0; j < 32; j++) b80[2 + j] = (uint8_t)(int8_t)(j - 16);
    CHECK_OK(pl_dequantize_row(PL_DTYPE_Q8_0, b80, y, 32));
    bad = 0;
    for (int j = 0; j < 32; j++) bad += y[j] != (j - 16) * 0.25f;
    CHECK(bad == 0, "q8_0 known block: %d wrong", bad);
    /* q4_K: d = 1, dmin = 1; scales: sc_j = j+1, m_j = j (6-bit packing,
     * ggml get_scale_min_k4); all quants 3 -> x = (j+1)*3 - j in group j */
    uint8_t b4k[144] = {0x00, 0x3c, 0x00, 0x3c};
    uint8_t *s = b4k + 4;
    for (int j = 0; j < 4; j++) { s[j] = (uint8_t)(j + 1); s[j + 4] = (uint8_t)j; }
    for (int j = 4; j < 8; j++) s[j + 4] = (uint8_t)(((j + 1) & 0xF) | ((j & 0xF) << 4)); /* all < 16 */
    memset(b4k + 16, 0x33, 128);
    CHECK_OK(pl_dequantize_row(PL_DTYPE_Q4_K, b4k, y, 256));
    bad = 0;
    for (int k = 0; k < 256; k++) bad += y[k] != (float)((k / 32 + 1) * 3 - k / 32);
    CHECK(bad == 0, "q4_K known block: %d wrong", bad);
    /* q6_K: d = 1, scales = 1..16; all 6-bit quants 33 (ql nibble 1, qh 2 bits = 2) -> x = sc * 1 */
    uint8_t b6k[210];
    memset(b6k, 0x11, 128);           /* ql */
    memset(b6k + 128, 0xaa, 64);      /* qh: 2 in every 2-bit field */
    for (int j = 0; j < 16; j++) b6k[192 + j] = (uint8_t)(j + 1);
    b6k[208] = 0x00; b6k[209] = 0x3c;
    CHECK_OK(pl_dequantize_row(PL_DTYPE_Q6_K, b6k, y, 256));
    bad = 0;
    for (int k = 0; k < 256; k++) bad += y[k] != (float)(k / 16 + 1);
    CHECK(bad == 0, "q6_K known block: %d wrong", bad);
    /* exactly representable input: q4_0 of (k-8)/4 reproduces it */
    float x[32];
    uint8_t q[18];
    for (int j = 0; j < 32; j++) x[j] = (float)((j % 16) - 8) * 0.25f;
    CHECK_OK(pl_quantize_row(PL_DTYPE_Q4_0, x, q, 32));
    CHECK_OK(pl_dequantize_row(PL_DTYPE_Q4_0, q, y, 32));
    CHECK_FLOATS("q4_0 exact grid", y, x, 32, 0.0);
}

/* ---- quantize -> dequantize error bounds ---- */
static double fp16_rel(void) { return ldexp(1.0, -11); } /* f16 scale rounding, relative */

static void test_roundtrip(void) {
    enum { N = 4096 };
    static float x[N], y[N];
    static uint8_t q[N * 4];
    for (int i = 0; i < N; i++) x[i] = randn() * (i % 512 < 256 ? 1.0f : 0.01f);
    x[7] = 0; x[100] = -3.5f;
    for (size_t di = 0; di < NALL; di++) {
        pl_dtype t = ALL[di];
        CHECK_OK(pl_quantize_row(t, x, q, N));
        CHECK_OK(pl_dequantize_row(t, q, y, N));
        const int64_t bs = pl_dtype_block_size(t) == 1 ? 32 : pl_dtype_block_size(t);
        int bad = 0;
        double sse = 0, ssx = 0;
        for (int64_t b0 = 0; b0 < N; b0 += bs) {
            double amax = 0, mn = DBL_MAX, mx = -DBL_MAX;
            for (int64_t i = b0; i < b0 + bs; i++) {
                const double xi = (double)x[i];
                amax = fmax(amax, fabs(xi));
                mn = fmin(mn, xi);
                mx = fmax(mx, xi);
            }
            double bound = -1; /* per element, analytic */
            const double r = mx - mn, h = fp16_rel();
            switch (t) {
            case PL_DTYPE_F32: bound = 0; break;
            case PL_DTYPE_F16: bound = amax * h + 1e-7; break;             /* half ulp 2^-11 rel (normal) */
            case PL_DTYPE_BF16: bound = amax * ldexp(1.0, -8); break;      /* half ulp 2^-8 rel */
            case PL_DTYPE_Q8_0: case PL_DTYPE_Q8_1: bound = 0.5 * amax / 127 * (1 + 1e-6) + amax * h; break;
            case PL_DTYPE_Q8_K: bound = 0.5 * amax / 127 * (1 + 1e-6); break; /* f32 scale */
            case PL_DTYPE_Q4_0: bound = amax / 8 * (1 + 1e-6) + amax * h; break;   /* -max clamps to 7d */
            case PL_DTYPE_Q5_0: bound = amax / 16 * (1 + 1e-6) + amax * h; break;  /* -max clamps to 15d */
            case PL_DTYPE_Q4_1: bound = 0.5 * r / 15 * (1 + 1e-6) + (r + fabs(mn)) * h * 1.01; break;
            case PL_DTYPE_Q5_1: bound = 0.5 * r / 31 * (1 + 1e-6) + (r + fabs(mn)) * h * 1.01; break;
            default: break; /* K-quants: RMS bound below */
            }
            for (int64_t i = b0; i < b0 + bs; i++) {
                const double e = fabs((double)x[i] - (double)y[i]);
                sse += e * e;
                ssx += (double)x[i] * (double)x[i];
                if (bound >= 0 && !(e <= bound)) {
                    if (bad++ < 3) printf("  %s [%lld]: x %.9g y %.9g err %.3g > %.3g\n", pl_dtype_name(t),
                                          (long long)i, (double)x[i], (double)y[i], e, bound);
                }
            }
        }
        CHECK(bad == 0, "%s: %d elements beyond the analytic error bound", pl_dtype_name(t), bad);
        /* K-quants: relative RMS error at most 1.5x that of a uniform b-bit
         * quantizer spanning +-3 sigma (6 sigma / (2^b - 1) / sqrt(12)). */
        double bits = 0;
        switch (t) {
        case PL_DTYPE_Q2_K: bits = 2; break;
        case PL_DTYPE_Q3_K: bits = 3; break;
        case PL_DTYPE_Q4_K: bits = 4; break;
        case PL_DTYPE_Q5_K: bits = 5; break;
        case PL_DTYPE_Q6_K: bits = 6; break;
        default: break;
        }
        if (bits > 0) {
            const double rel = sqrt(sse / ssx), lim = 1.5 * 6.0 / (pow(2, bits) - 1) / sqrt(12.0);
            CHECK(rel <= lim, "%s: relative RMS error %.4f > %.4f", pl_dtype_name(t), rel, lim);
        }
    }
    /* an all-zero row quantizes to zeros */
    static float z[512];
    for (size_t di = 0; di < NALL; di++) {
        CHECK_OK(pl_quantize_row(ALL[di], z, q, 512));
        CHECK_OK(pl_dequantize_row(ALL[di], q, y, 512));
        int nz = 0;
        for (int i = 0; i < 512; i++) nz += y[i] != 0;
        CHECK(nz == 0, "%s: zero row gives %d non-zeros", pl_dtype_name(ALL[di]), nz);
    }
}

/* ---- kernels: every dtype x every SIMD level vs the scalar reference ---- */

/* Tolerance for one dot of length n against the scalar reference, in units
 * of S = sum |w_i x_i|: a SIMD sum splits n terms into <= 16 lanes summed
 * sequentially then a tree, so |err| <= (n/8 + 8) * eps * S (a worst-case
 * bound, with per-block scale products adding a few eps per term). */
static double dot_tol(int64_t n, double S) { return ((double)n / 8 + 8) * (double)FLT_EPSILON * S + 1e-30; }

/* When set, quantized weights are random bytes (every quant and sub-block
 * scale value, extremes included) with sane f16/f32 block scales. */
static int g_random_bytes;
static int g_big;

/* offsets of the f16 scale fields of a block, -1 terminated */
static const int *scale_fields(pl_dtype t) {
    static const int d0[] = {0, -1}, d01[] = {0, 2, -1}, q2k[] = {80, 82, -1}, q3k[] = {108, -1}, q6k[] = {208, -1};
    switch (t) {
    case PL_DTYPE_Q4_1: case PL_DTYPE_Q5_1: case PL_DTYPE_Q8_1: case PL_DTYPE_Q4_K: case PL_DTYPE_Q5_K: return d01;
    case PL_DTYPE_Q2_K: return q2k;
    case PL_DTYPE_Q3_K: return q3k;
    case PL_DTYPE_Q6_K: return q6k;
    default: return d0;
    }
}

static void make_weights(pl_dtype t, int64_t n_out, int64_t n_in, uint8_t *W, float *Wf) {
    size_t rb;
    pl_dtype_row_bytes(t, n_in, &rb);
    float *row = malloc((size_t)n_in * sizeof *row);
    const size_t bb = pl_dtype_block_bytes(t);
    for (int64_t o = 0; o < n_out; o++) {
        uint8_t *wr = W + (size_t)o * rb;
        if (g_random_bytes) {
            for (size_t i = 0; i < rb; i++) wr[i] = (uint8_t)pl_rng_u64(&rng);
            for (size_t b0 = 0; b0 < rb; b0 += bb) {
                if (t == PL_DTYPE_Q8_K) {
                    const float d = 0.01f * (1.0f + (float)pl_rng_uniform(&rng));
                    memcpy(wr + b0, &d, 4);
                    continue;
                }
                for (const int *f = scale_fields(t); *f >= 0; f++) {
                    const uint16_t h = pl_fp32_to_fp16(0.02f * randn());
                    memcpy(wr + b0 + *f, &h, 2);
                }
            }
        } else {
            for (int64_t i = 0; i < n_in; i++) row[i] = randn() * 0.5f + (o % 3 == 0 ? 0.2f : 0.0f);
            pl_quantize_row(t, row, wr, n_in);
        }
        pl_dequantize_row(t, wr, Wf + o * n_in, n_in);
    }
    free(row);
}

static void test_kernels_dtype(pl_dtype t, pl_simd top) {
    /* g_big: rows longer than the kernels' cache slices (512) */
    const int64_t n_in = g_big ? (pl_dtype_block_size(t) == 256 ? 1280 : pl_dtype_block_size(t) == 32 ? 1056 : 1001)
                               : (pl_dtype_block_size(t) == 256 ? 512 : pl_dtype_block_size(t) == 32 ? 288 : 301);
    const int64_t n_out = 37, toks[] = {1, 3, 17};
    size_t rb;
    pl_dtype_row_bytes(t, n_in, &rb);
    uint8_t *W = malloc(rb * (size_t)n_out);
    float *Wf = malloc(sizeof(float) * (size_t)(n_out * n_in));
    float *X = malloc(sizeof(float) * (size_t)(17 * n_in));
    float *Yref = malloc(sizeof(float) * (size_t)(17 * n_out)), *Y = malloc(sizeof(float) * (size_t)(17 * n_out));
    float *Yl = malloc(sizeof(float) * (size_t)(17 * n_out)), *Ylref = malloc(sizeof(float) * (size_t)(17 * n_out));
    float *Xd = malloc(sizeof(float) * (size_t)n_in);
    double *S = malloc(sizeof(double) * (size_t)(17 * n_out)), *Sl = malloc(sizeof(double) * (size_t)(17 * n_out));
    make_weights(t, n_out, n_in, W, Wf);
    for (int64_t i = 0; i < 17 * n_in; i++) X[i] = randn();
    pl_dtype act;
    const int has_llama = pl_llama_act_dtype(t, &act) == PL_OK;
    size_t arb = 0;
    uint8_t *xq = NULL;
    if (has_llama) {
        pl_dtype_row_bytes(act, n_in, &arb);
        xq = malloc(arb);
    }
    for (size_t ti = 0; ti < 3; ti++) {
        const int64_t nt = toks[ti];
        /* the exact path's definition, in double, on the dequantized weights;
         * the llama path's definition: dot(dequant(w), dequant(quantize_act(x))) */
        CHECK_OK(pl_simd_set(PL_SIMD_SCALAR));
        int bad = 0, badl = 0;
        for (int64_t tk = 0; tk < nt; tk++) {
            if (has_llama) {
                pl_quantize_row(act, X + tk * n_in, xq, n_in);
                pl_dequantize_row(act, xq, Xd, n_in);
            }
            for (int64_t o = 0; o < n_out; o++) {
                double s = 0, a = 0, sl = 0, al = 0;
                for (int64_t i = 0; i < n_in; i++) {
                    s += (double)Wf[o * n_in + i] * (double)X[tk * n_in + i];
                    a += fabs((double)Wf[o * n_in + i] * (double)X[tk * n_in + i]);
                    if (has_llama) {
                        sl += (double)Wf[o * n_in + i] * (double)Xd[i];
                        al += fabs((double)Wf[o * n_in + i] * (double)Xd[i]);
                    }
                }
                Yref[tk * n_out + o] = (float)s;
                S[tk * n_out + o] = a;
                Ylref[tk * n_out + o] = (float)sl;
                Sl[tk * n_out + o] = al;
            }
        }
        for (int lvl = PL_SIMD_SCALAR; lvl <= (int)top; lvl++) {
            CHECK_OK(pl_simd_set((pl_simd)lvl));
            CHECK_OK(pl_matmul(PL_MATMUL_EXACT, t, W, n_out, n_in, X, nt, Y, NULL, 0));
            for (int64_t i = 0; i < nt * n_out; i++) {
                const double tol = dot_tol(n_in, S[i]);
                if (!(fabs((double)Y[i] - (double)Yref[i]) <= tol) && bad++ < 3)
                    printf("  exact %s %s ntok %lld [%lld]: got %.9g want %.9g tol %.3g\n", pl_dtype_name(t),
                           pl_simd_name((pl_simd)lvl), (long long)nt, (long long)i, (double)Y[i], (double)Yref[i], tol);
            }
            if (!has_llama) continue;
            CHECK_OK(pl_matmul(PL_MATMUL_LLAMA, t, W, n_out, n_in, X, nt, Yl, NULL, 0));
            for (int64_t i = 0; i < nt * n_out; i++) {
                /* q4_1/q5_1 use s = f16(d * sum q): |m| * |s| * 2^-11 per block, bounded by 2^-11 * S */
                double tol = dot_tol(n_in, Sl[i]);
                if (act == PL_DTYPE_Q8_1) tol += fp16_rel() * Sl[i];
                if (!(fabs((double)Yl[i] - (double)Ylref[i]) <= tol) && badl++ < 3)
                    printf("  llama %s %s ntok %lld [%lld]: got %.9g want %.9g tol %.3g\n", pl_dtype_name(t),
                           pl_simd_name((pl_simd)lvl), (long long)nt, (long long)i, (double)Yl[i], (double)Ylref[i], tol);
            }
        }
        /* AVX2's K-quant dots sum integers per super-block and then evaluate
         * the scalar reference's float expression: the same bits. (AVX-512's
         * tiled K kernel accumulates lane-wise in f32: tolerance above.) */
        if (has_llama && act == PL_DTYPE_Q8_K) {
            CHECK_OK(pl_simd_set(PL_SIMD_SCALAR));
            CHECK_OK(pl_matmul(PL_MATMUL_LLAMA, t, W, n_out, n_in, X, nt, Y, NULL, 0));
            for (int lvl = PL_SIMD_AVX2; lvl <= (int)top && lvl <= PL_SIMD_AVX2; lvl++) {
                CHECK_OK(pl_simd_set((pl_simd)lvl));
                CHECK_OK(pl_matmul(PL_MATMUL_LLAMA, t, W, n_out, n_in, X, nt, Yl, NULL, 0));
                CHECK(memcmp(Y, Yl, sizeof(float) * (size_t)(nt * n_out)) == 0, "%s llama path at %s is not bit-identical to scalar",
                      pl_dtype_name(t), pl_simd_name((pl_simd)lvl));
            }
        }
        CHECK(bad == 0, "exact path %s ntok %lld: %d outputs off", pl_dtype_name(t), (long long)nt, bad);
        CHECK(badl == 0, "llama path %s ntok %lld: %d outputs off", pl_dtype_name(t), (long long)nt, badl);
    }
    /* every level's dequantizer gives identical bits */
    float *d0 = malloc(sizeof(float) * (size_t)n_in), *d1 = malloc(sizeof(float) * (size_t)n_in);
    CHECK_OK(pl_simd_set(PL_SIMD_SCALAR));
    pl_dequantize_row(t, W + rb * 5, d0, n_in);
    for (int lvl = PL_SIMD_SCALAR + 1; lvl <= (int)top; lvl++) {
        CHECK_OK(pl_simd_set((pl_simd)lvl));
        pl_dequantize_row(t, W + rb * 5, d1, n_in);
        CHECK(memcmp(d0, d1, sizeof(float) * (size_t)n_in) == 0, "%s dequant at %s differs from scalar",
              pl_dtype_name(t), pl_simd_name((pl_simd)lvl));
    }
    /* results do not depend on the thread count (same level, bitwise); the
     * shape is large enough for pl_matmul to go parallel */
    CHECK_OK(pl_simd_set(top));
    const int nth = pl_num_threads();
    for (int path = 0; path <= (has_llama ? 1 : 0); path++) {
        pl_set_num_threads(1);
        CHECK_OK(pl_matmul((pl_matmul_path)path, t, W, n_out, n_in, X, 17, Y, NULL, 0));
        pl_set_num_threads(3);
        CHECK_OK(pl_matmul((pl_matmul_path)path, t, W, n_out, n_in, X, 17, Yl, NULL, 0));
        CHECK(memcmp(Y, Yl, sizeof(float) * (size_t)(17 * n_out)) == 0, "%s path %d: 1 vs 3 threads differ",
              pl_dtype_name(t), path);
    }
    pl_set_num_threads(nth);
    /* ... nor on the batch size: token rows 0..2 of a 17-token call equal a 3-token call */
    for (int path = 0; path <= (has_llama ? 1 : 0); path++) {
        CHECK_OK(pl_matmul((pl_matmul_path)path, t, W, n_out, n_in, X, 17, Y, NULL, 0));
        CHECK_OK(pl_matmul((pl_matmul_path)path, t, W, n_out, n_in, X, 3, Yl, NULL, 0));
        CHECK(memcmp(Y, Yl, sizeof(float) * (size_t)(3 * n_out)) == 0, "%s path %d: 17 vs 3 tokens differ",
              pl_dtype_name(t), path);
        CHECK_OK(pl_matmul((pl_matmul_path)path, t, W, n_out, n_in, X + 2 * n_in, 1, Yl, NULL, 0));
        CHECK(memcmp(Y + 2 * n_out, Yl, sizeof(float) * (size_t)n_out) == 0, "%s path %d: 17 vs 1 token differ",
              pl_dtype_name(t), path);
    }
    /* pl_vec_dot agrees with one matmul output bit for bit */
    float v;
    CHECK_OK(pl_matmul(PL_MATMUL_EXACT, t, W, n_out, n_in, X, 1, Y, NULL, 0));
    CHECK_OK(pl_vec_dot(t, W + rb * 4, X, n_in, &v));
    CHECK(f2u(v) == f2u(Y[4]), "%s vec_dot %.9g vs matmul %.9g", pl_dtype_name(t), (double)v, (double)Y[4]);
    if (has_llama) {
        CHECK_OK(pl_matmul(PL_MATMUL_LLAMA, t, W, n_out, n_in, X, 1, Y, NULL, 0));
        pl_quantize_row(act, X, xq, n_in);
        CHECK_OK(pl_vec_dot_llama(t, W + rb * 4, xq, n_in, &v));
        CHECK(f2u(v) == f2u(Y[4]), "%s vec_dot_llama %.9g vs matmul %.9g", pl_dtype_name(t), (double)v,
              (double)Y[4]);
    }
    free(d0); free(d1); free(W); free(Wf); free(X); free(Yref); free(Y); free(Yl); free(Ylref); free(Xd);
    free(S); free(Sl); free(xq);
}

/* Activation quantizers (vectorized per level) give the reference bytes:
 * random rows, exact .5 ties (block amax 127 -> d = 1), zero blocks, and
 * for f16/bf16 the special values. */
static void test_act_quant(pl_simd top) {
    enum { N = 1024 };
    static float x[N];
    static uint8_t q0[N * 4], q1[N * 4];
    for (int i = 0; i < N; i++) x[i] = randn() * (i < 512 ? 1.0f : 1e-3f);
    for (int i = 0; i < 32; i++) x[i] = (float)(i - 16) + 0.5f; /* ties, amax 15.5 */
    x[32] = 127.0f;                                            /* block 1: d = 1, ties */
    for (int i = 33; i < 64; i++) x[i] = (float)((i % 7) - 3) + 0.5f;
    for (int i = 64; i < 96; i++) x[i] = 0.0f;                 /* zero block */
    for (int i = 256; i < 512; i++) x[i] = (float)((i % 11) - 5) * 0.5f; /* q8_K ties */
    x[300] = -127.0f;
    const uint32_t specials[] = {0x7fc00000, 0xff800000, 0x7f800000, 0x00000001, 0x807fffff, 0x3f808000,
                                 0x3f818000, 0x477ff000, 0x33000000, 0x387fe000, 0x7f800001};
    float xs[N];
    memcpy(xs, x, sizeof xs);
    for (size_t i = 0; i < sizeof specials / sizeof *specials; i++) xs[600 + i] = u2f(specials[i]);
    const pl_dtype acts[] = {PL_DTYPE_Q8_0, PL_DTYPE_Q8_1, PL_DTYPE_Q8_K, PL_DTYPE_F16, PL_DTYPE_BF16};
    for (size_t a = 0; a < sizeof acts / sizeof *acts; a++) {
        const pl_dtype t = acts[a];
        const float *src = pl_dtype_block_size(t) == 1 ? xs : x;
        size_t rb;
        pl_dtype_row_bytes(t, N, &rb);
        CHECK_OK(pl_simd_set(PL_SIMD_SCALAR));
        CHECK_OK(pl_quantize_row(t, src, q0, N));
        for (int lvl = PL_SIMD_SCALAR + 1; lvl <= (int)top; lvl++) {
            CHECK_OK(pl_simd_set((pl_simd)lvl));
            CHECK_OK(pl_quantize_row(t, src, q1, N));
            size_t k = 0;
            while (k < rb && q0[k] == q1[k]) k++;
            CHECK(k == rb, "%s quantize at %s differs from scalar at byte %zu (0x%02x vs 0x%02x)", pl_dtype_name(t),
                  pl_simd_name((pl_simd)lvl), k, k < rb ? q1[k] : 0, k < rb ? q0[k] : 0);
        }
    }
    /* roundf semantics on the tie block: (i - 16) + 0.5 with d = 15.5/127 is
     * not a tie, but block 1 (d = 1) is: q = round-away(k + 0.5) */
    CHECK_OK(pl_simd_set(top));
    uint8_t b[34 * 2];
    CHECK_OK(pl_quantize_row(PL_DTYPE_Q8_0, x, b, 64));
    const int8_t *qb = (const int8_t *)(b + 34 + 2);
    int bad = 0;
    for (int i = 33; i < 64; i++) {
        const float v = (float)((i % 7) - 3) + 0.5f;
        bad += qb[i - 32] != (int8_t)(v > 0 ? v + 0.5f : v - 0.5f);
    }
    CHECK(bad == 0 && qb[0] == 127, "q8_0 ties round away from zero (%d wrong)", bad);
}

static void test_kernels(void) {
    pl_simd top = pl_simd_detected();
    /* one thread except where the thread count is the point: parallel
     * regions are slow on an oversubscribed machine */
    const int nth = pl_num_threads();
    pl_set_num_threads(1);
    printf("SIMD levels tested: scalar..%s\n", pl_simd_name(top));
    test_act_quant(top);
    for (size_t di = 0; di < NALL; di++) test_kernels_dtype(ALL[di], top);
    g_random_bytes = 1; /* the same with adversarial block contents */
    for (size_t di = 0; di < NALL; di++)
        if (pl_dtype_block_size(ALL[di]) > 1) test_kernels_dtype(ALL[di], top);
    g_random_bytes = 0;
    g_big = 1; /* and with long rows */
    for (size_t di = 0; di < NALL; di++) test_kernels_dtype(ALL[di], top);
    g_big = 0;
    /* errors */
    static float X[512], Y[64];
    static uint8_t W[292 * 2];
    CHECK(pl_matmul(PL_MATMUL_LLAMA, PL_DTYPE_Q8_K, W, 1, 256, X, 1, Y, NULL, 0) == PL_ERR_UNSUPPORTED,
          "llama path on q8_K weights must be unsupported");
    CHECK(pl_matmul(PL_MATMUL_EXACT, PL_DTYPE_Q4_0, W, 1, 48, X, 1, Y, NULL, 0) == PL_ERR_INVALID,
          "n_in 48 for q4_0 must fail");
    uint8_t *scr = pl_alloc_aligned(64);
    CHECK(pl_matmul(PL_MATMUL_EXACT, PL_DTYPE_Q8_K, W, 1, 256, X, 1, Y, scr, 64) == PL_ERR_INVALID,
          "small scratch must fail");
    pl_free_aligned(scr);
    Y[0] = Y[1] = 1.0f;
    CHECK_OK(pl_matmul(PL_MATMUL_LLAMA, PL_DTYPE_Q4_K, W, 1, 0, X, 2, Y, NULL, 0));
    CHECK(Y[0] == 0.0f && Y[1] == 0.0f, "n_in = 0 gives zeros");
    size_t need = pl_matmul_scratch_bytes(PL_MATMUL_LLAMA, PL_DTYPE_Q8_0, 8, 256, 4);
    CHECK(need >= 4 * 8 * 34, "llama scratch %zu covers the q8_0 activations", need);
    CHECK_OK(pl_simd_set(PL_SIMD_SCALAR));
    pl_simd s;
    CHECK(pl_simd_from_name("bogus", &s) == PL_ERR_INVALID, "bogus SIMD name");
    pl_set_num_threads(nth);
}


/* Attention's f32 kernels at every level: dots against a double reference
 * (dot_tol) and with bits independent of the row count; wsum bit-identical
 * to the scalar loop; exp within 2 ulp of expf, -inf -> 0, NaN kept, the
 * double sum of what was stored. */
static int ulp_dist(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    if (ia < 0) ia = INT32_MIN - ia;
    if (ib < 0) ib = INT32_MIN - ib;
    int64_t d = (int64_t)ia - (int64_t)ib;
    return (int)(d < 0 ? -d : d);
}

static void test_f32_kernels(void) {
    const pl_simd top = pl_simd_detected();
    enum { R = 37, LD = 131 };
    static float m[R * LD], x[LD], y[R], y1[R], w[R], yw0[LD], yw[LD], e0[700], e[700];
    for (int i = 0; i < R * LD; i++) m[i] = randn();
    for (int i = 0; i < LD; i++) x[i] = randn();
    for (int j = 0; j < R; j++) w[j] = j % 5 == 2 ? 0.0f : (float)pl_rng_uniform(&rng);
    const int ns[] = {1, 15, 16, 17, 64, 100, 131};
    for (int lvl = PL_SIMD_SCALAR; lvl <= (int)top; lvl++) {
        CHECK_OK(pl_simd_set((pl_simd)lvl));
        for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
            const int n = ns[k];
            pl_f32_dots(x, m, LD, R, n, y);
            int bad = 0;
            for (int j = 0; j < R; j++) {
                double s = 0, a = 0;
                for (int i = 0; i < n; i++) {
                    s += (double)x[i] * (double)m[j * LD + i];
                    a += fabs((double)x[i] * (double)m[j * LD + i]);
                }
                bad += !(fabs((double)y[j] - s) <= dot_tol(n, a));
                pl_f32_dots(x, m + j * LD, LD, 1, n, y1 + j); /* one row alone: same bits */
            }
            CHECK(bad == 0, "f32_dots %s n %d: %d rows off", pl_simd_name((pl_simd)lvl), n, bad);
            CHECK(memcmp(y, y1, sizeof(float) * R) == 0, "f32_dots %s n %d: bits depend on the row count",
                  pl_simd_name((pl_simd)lvl), n);
            for (int i = 0; i < n; i++) yw0[i] = yw[i] = 0.25f * (float)i;
            for (int j = 0; j < R; j++)
                if (w[j] != 0.0f)
                    for (int i = 0; i < n; i++) yw0[i] += w[j] * m[j * LD + i];
            pl_f32_wsum(w, m, LD, R, n, yw);
            CHECK(memcmp(yw, yw0, sizeof(float) * (size_t)n) == 0, "f32_wsum %s n %d: not the scalar bits",
                  pl_simd_name((pl_simd)lvl), n);
        }
        /* exp: scores in [-110, 5] (underflow to subnormal and 0 included), -inf, NaN */
        const int N = 700;
        for (int i = 0; i < N; i++) e0[i] = e[i] = -110.0f + 115.0f * (float)i / (float)N;
        e[3] = e0[3] = -INFINITY;
        e[N - 2] = e0[N - 2] = NAN;
        const double sum = pl_f32_exp_sum(e, N - 3, 1.5f); /* odd length: tails */
        double want = 0;
        int worst = 0;
        for (int i = 0; i < N - 3; i++) {
            const float r = e0[i] == -INFINITY ? 0.0f : expf(e0[i] - 1.5f);
            if (isnan(r)) {
                CHECK(isnan(e[i]), "exp %s: NaN lost at %d", pl_simd_name((pl_simd)lvl), i);
                continue;
            }
            const int u = ulp_dist(e[i], r);
            if (u > worst) worst = u;
            want += (double)e[i];
        }
        CHECK(worst <= 2, "exp %s: %d ulp from expf", pl_simd_name((pl_simd)lvl), worst);
        CHECK(e[3] == 0.0f, "exp(-inf) = 0");
        CHECK(isnan(sum) || fabs(sum - want) <= 1e-12 * fabs(want), "exp_sum %s", pl_simd_name((pl_simd)lvl));
        double s2 = pl_f32_exp_sum(e0, 600, 0.0f); /* no NaN: a finite sum equal to the stored values' */
        double w2 = 0;
        for (int i = 0; i < 600; i++) w2 += (double)e0[i];
        CHECK(fabs(s2 - w2) <= 1e-12 * w2 && s2 > 0, "exp_sum %s: %g vs %g", pl_simd_name((pl_simd)lvl), s2, w2);
        /* silu(g) * u over g in [-100, 40] against expf's formula; one element
         * alone gives the same bits as inside the array */
        {
            enum { NS = 301 };
            float g[NS], g0[NS], uu[NS];
            for (int i = 0; i < NS; i++) {
                g0[i] = g[i] = -100.0f + 140.0f * (float)i / (float)NS;
                uu[i] = 0.5f + (float)(i % 7) * 0.25f;
            }
            pl_f32_silu_mul(g, uu, NS);
            int ws = 0, alone = 1;
            for (int i = 0; i < NS; i++) {
                const float r = g0[i] / (1.0f + expf(-g0[i])) * uu[i];
                const int d = ulp_dist(g[i], r);
                if (d > ws) ws = d;
                float one = g0[i];
                pl_f32_silu_mul(&one, &uu[i], 1);
                alone &= memcmp(&one, &g[i], sizeof one) == 0;
            }
            CHECK(ws <= 4, "silu_mul %s: %d ulp from the expf formula", pl_simd_name((pl_simd)lvl), ws);
            CHECK(alone, "silu_mul %s: an element's bits depend on its position", pl_simd_name((pl_simd)lvl));
        }
        /* attention scores and scaling: the definition's bits at every level */
        {
            const int cases[][3] = {{1, 0, 0}, {17, 0, 16}, {40, 5, 20}, {300, 0, 299}, {300, 250, 299}, {33, 40, 50}};
            for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
                const int n = cases[ci][0], lo = cases[ci][1], hi = cases[ci][2];
                float *v = malloc(sizeof(float) * (size_t)n), *v0 = malloc(sizeof(float) * (size_t)n);
                for (int i = 0; i < n; i++) v0[i] = v[i] = (float)cos(0.91 * i) * 7.0f;
                const float mx = pl_f32_scores(v, n, lo, hi, 0.125f);
                float smax = -INFINITY;
                int same = 1;
                for (int i = 0; i < n; i++) {
                    const float se = i >= lo && i <= hi ? v0[i] * 0.125f : -INFINITY;
                    if (se > smax) smax = se;
                    same &= memcmp(&se, &v[i], sizeof se) == 0;
                }
                CHECK(same && memcmp(&mx, &smax, sizeof mx) == 0, "scores %s n=%d [%d, %d]: max %g vs %g",
                      pl_simd_name((pl_simd)lvl), n, lo, hi, (double)mx, (double)smax);
                for (int i = 0; i < n; i++) v[i] = v0[i];
                float *addend = malloc(sizeof(float) * (size_t)n);
                for (int i = 0; i < n; i++) addend[i] = (float)sin(1.3 * i);
                pl_f32_add(v, addend, n);
                same = 1;
                for (int i = 0; i < n; i++) {
                    const float se = v0[i] + addend[i];
                    same &= memcmp(&se, &v[i], sizeof se) == 0;
                }
                CHECK(same, "add %s n=%d", pl_simd_name((pl_simd)lvl), n);
                free(addend);
                for (int i = 0; i < n; i++) v[i] = v0[i];
                pl_f32_scale(v, n, 0.3f);
                same = 1;
                for (int i = 0; i < n; i++) {
                    const float se = v0[i] * 0.3f;
                    same &= memcmp(&se, &v[i], sizeof se) == 0;
                }
                CHECK(same, "scale %s n=%d", pl_simd_name((pl_simd)lvl), n);
                free(v);
                free(v0);
            }
        }
        /* RoPE, both styles: the definition's bits (each product rounded
         * to float, then the difference / sum) at every level, with and
         * without a tail, rotating part of the head or all of it */
        {
            const int rots[][2] = {{64, 64}, {64, 32}, {16, 16}, {128, 128}, {40, 40}, {18, 18}, {2, 2}};
            for (size_t ri = 0; ri < sizeof rots / sizeof *rots; ri++)
                for (int neox = 0; neox < 2; neox++) {
                    const int hd = rots[ri][0], nr = rots[ri][1];
                    float hx[128], x0[128], cs[128];
                    for (int i = 0; i < hd; i++) hx[i] = x0[i] = (float)sin(0.37 * i + nr) * 3.0f;
                    for (int i = 0; i < nr / 2; i++) {
                        cs[2 * i] = (float)cos(0.11 * i + 0.5);
                        cs[2 * i + 1] = (float)sin(0.11 * i + 0.5);
                    }
                    pl_f32_rope(hx, cs, nr, neox);
                    int same = 1;
                    for (int i = 0; i < nr / 2; i++) {
                        const int a = neox ? i : 2 * i, b = neox ? i + nr / 2 : 2 * i + 1;
                        volatile float p0 = x0[a] * cs[2 * i], p1 = x0[b] * cs[2 * i + 1];
                        volatile float p2 = x0[a] * cs[2 * i + 1], p3 = x0[b] * cs[2 * i];
                        const float ra = p0 - p1, rb = p2 + p3;
                        same &= memcmp(&ra, &hx[a], sizeof ra) == 0 && memcmp(&rb, &hx[b], sizeof rb) == 0;
                    }
                    for (int i = nr; i < hd; i++) same &= memcmp(&hx[i], &x0[i], sizeof hx[i]) == 0;
                    CHECK(same, "rope %s %s n_rot %d of %d", pl_simd_name((pl_simd)lvl), neox ? "neox" : "pairs", nr, hd);
                }
        }
        /* RMSNorm against the definition computed in long double (the float
         * squares summed exactly enough, then the float mean and scale):
         * lengths with and without a tail, in place and not, and a row whose
         * squares span a huge range (the sum order may then move the mean by
         * one float ulp, which moves each output by at most a few ulp) */
        {
            const int lens[] = {1, 15, 16, 33, 576, 2304};
            for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
                const int n = lens[li];
                float *rx = malloc(sizeof(float) * (size_t)n), *rw = malloc(sizeof(float) * (size_t)n);
                float *o = malloc(sizeof(float) * (size_t)n), *xi = malloc(sizeof(float) * (size_t)n);
                for (int wide = 0; wide < 2; wide++) {
                    long double ss = 0;
                    for (int i = 0; i < n; i++) {
                        rx[i] = (float)sin(0.37 * i + 0.1) * (wide && i % 5 == 0 ? 3e4f : 1.0f) *
                               (wide && i % 7 == 0 ? 1e-4f : 1.0f);
                        rw[i] = 0.5f + (float)(i % 9) * 0.125f;
                        xi[i] = rx[i];
                        ss += (long double)(rx[i] * rx[i]);
                    }
                    const float scale = 1.0f / sqrtf((float)((double)ss / (double)n) + 1e-5f);
                    pl_f32_rmsnorm(o, rx, rw, n, 1e-5f);
                    pl_f32_rmsnorm(xi, xi, rw, n, 1e-5f);
                    int rworst = 0;
                    for (int i = 0; i < n; i++) {
                        const int d = ulp_dist(o[i], (rx[i] * scale) * rw[i]);
                        if (d > rworst) rworst = d;
                    }
                    CHECK(rworst <= (wide ? 3 : 0), "rmsnorm %s n=%d%s: %d ulp from the definition",
                          pl_simd_name((pl_simd)lvl), n, wide ? " (wide range)" : "", rworst);
                    CHECK(memcmp(o, xi, sizeof(float) * (size_t)n) == 0, "rmsnorm %s n=%d: in place differs",
                          pl_simd_name((pl_simd)lvl), n);
                }
                free(rx);
                free(rw);
                free(o);
                free(xi);
            }
        }
    }
    CHECK_OK(pl_simd_set(top));
}

/* Packed weights: the layout is a permutation of the GGUF rows (unpack
 * gives them back byte for byte), and pl_matmul_packed computes the llama
 * path's definition at every level (native kernel or unpack + dotq), with
 * bits independent of the thread count and the batch size. */
static void test_packed_dtype(pl_dtype t, pl_simd top, int64_t n_in) {
    const int64_t n_out = 40;
    size_t rb, arb;
    pl_dtype act;
    pl_llama_act_dtype(t, &act);
    pl_dtype_row_bytes(t, n_in, &rb);
    pl_dtype_row_bytes(act, n_in, &arb);
    uint8_t *W = malloc(rb * (size_t)n_out), *P = malloc(rb * (size_t)n_out), *row = malloc(rb), *xq = malloc(arb);
    float *Wf = malloc(sizeof(float) * (size_t)(n_out * n_in)), *X = malloc(sizeof(float) * (size_t)(17 * n_in));
    float *Xd = malloc(sizeof(float) * (size_t)n_in), *Yref = malloc(sizeof(float) * 17 * (size_t)n_out);
    float *Y = malloc(sizeof(float) * 17 * (size_t)n_out), *Y2 = malloc(sizeof(float) * 17 * (size_t)n_out);
    double *S = malloc(sizeof(double) * 17 * (size_t)n_out);
    make_weights(t, n_out, n_in, W, Wf);
    for (int64_t i = 0; i < 17 * n_in; i++) X[i] = randn();
    CHECK(pl_pack_supported(t, n_out, n_in), "%s packable", pl_dtype_name(t));
    CHECK_OK(pl_pack_weights(t, W, n_out, n_in, P));
    CHECK(memcmp(W, P, rb * (size_t)n_out) != 0, "%s packed layout differs from GGUF", pl_dtype_name(t));
    int same = 1;
    for (int64_t o = 0; o < n_out; o++) {
        CHECK_OK(pl_unpack_row(t, P, n_out, n_in, o, row));
        same &= memcmp(row, W + (size_t)o * rb, rb) == 0;
    }
    CHECK(same, "%s unpack(pack(W)) == W", pl_dtype_name(t));
    CHECK_OK(pl_simd_set(PL_SIMD_SCALAR));
    for (int64_t tk = 0; tk < 17; tk++) {
        pl_quantize_row(act, X + tk * n_in, xq, n_in);
        pl_dequantize_row(act, xq, Xd, n_in);
        for (int64_t o = 0; o < n_out; o++) {
            double sl = 0, al = 0;
            for (int64_t i = 0; i < n_in; i++) {
                sl += (double)Wf[o * n_in + i] * (double)Xd[i];
                al += fabs((double)Wf[o * n_in + i] * (double)Xd[i]);
            }
            Yref[tk * n_out + o] = (float)sl;
            S[tk * n_out + o] = al;
        }
    }
    for (int lvl = PL_SIMD_SCALAR; lvl <= (int)top; lvl++) {
        CHECK_OK(pl_simd_set((pl_simd)lvl));
        const int64_t toks[] = {1, 3, 17};
        for (int ti = 0; ti < 3; ti++) {
            const int64_t nt = toks[ti];
            CHECK_OK(pl_matmul_packed(t, P, n_out, n_in, X, nt, Y, NULL, 0));
            int bad = 0;
            for (int64_t i = 0; i < nt * n_out; i++) {
                double tol = dot_tol(n_in, S[i]);
                if (act == PL_DTYPE_Q8_1) tol += fp16_rel() * S[i];
                if (!(fabs((double)Y[i] - (double)Yref[i]) <= tol) && bad++ < 3)
                    printf("  packed %s %s ntok %lld [%lld]: got %.9g want %.9g tol %.3g\n", pl_dtype_name(t),
                           pl_simd_name((pl_simd)lvl), (long long)nt, (long long)i, (double)Y[i], (double)Yref[i], tol);
            }
            CHECK(bad == 0, "packed %s at %s, %lld tokens: %d outputs off", pl_dtype_name(t), pl_simd_name((pl_simd)lvl),
                  (long long)nt, bad);
        }
        /* bits: 17 tokens vs 3 vs 1; 1 vs 3 threads */
        CHECK_OK(pl_matmul_packed(t, P, n_out, n_in, X, 17, Y, NULL, 0));
        CHECK_OK(pl_matmul_packed(t, P, n_out, n_in, X, 3, Y2, NULL, 0));
        CHECK(memcmp(Y, Y2, sizeof(float) * 3 * (size_t)n_out) == 0, "packed %s %s: 17 vs 3 tokens differ",
              pl_dtype_name(t), pl_simd_name((pl_simd)lvl));
        CHECK_OK(pl_matmul_packed(t, P, n_out, n_in, X + 5 * n_in, 1, Y2, NULL, 0));
        CHECK(memcmp(Y + 5 * n_out, Y2, sizeof(float) * (size_t)n_out) == 0, "packed %s %s: 17 vs 1 token differ",
              pl_dtype_name(t), pl_simd_name((pl_simd)lvl));
        const int nth = pl_num_threads();
        pl_set_num_threads(3);
        CHECK_OK(pl_matmul_packed(t, P, n_out, n_in, X, 17, Y2, NULL, 0));
        pl_set_num_threads(nth);
        CHECK(memcmp(Y, Y2, sizeof(float) * 17 * (size_t)n_out) == 0, "packed %s %s: 1 vs 3 threads differ",
              pl_dtype_name(t), pl_simd_name((pl_simd)lvl));
        /* with caller scratch of exactly the advertised size */
        size_t need = pl_matmul_packed_scratch_bytes(t, n_out, n_in, 17);
        void *scr = pl_alloc_aligned(need);
        CHECK_OK(pl_matmul_packed(t, P, n_out, n_in, X, 17, Y2, scr, need));
        CHECK(memcmp(Y, Y2, sizeof(float) * 17 * (size_t)n_out) == 0, "packed %s: caller scratch", pl_dtype_name(t));
        CHECK(pl_matmul_packed(t, P, n_out, n_in, X, 17, Y2, scr, need - 1) == PL_ERR_INVALID, "short scratch fails");
        pl_free_aligned(scr);
    }
    free(W); free(P); free(row); free(xq); free(Wf); free(X); free(Xd); free(Yref); free(Y); free(Y2); free(S);
}

static void test_packed(void) {
    pl_simd top = pl_simd_detected();
    const pl_dtype ts[] = {PL_DTYPE_Q4_0, PL_DTYPE_Q4_1, PL_DTYPE_Q8_0};
    for (int rnd = 0; rnd <= 1; rnd++) {
        g_random_bytes = rnd;
        for (int i = 0; i < 3; i++) {
            test_packed_dtype(ts[i], top, 288);
            test_packed_dtype(ts[i], top, 1536);
        }
    }
    g_random_bytes = 0;
    CHECK(pl_pack_native(PL_DTYPE_Q4_1) == (pl_simd_active() == PL_SIMD_AVX512), "q4_1 native packed kernel only at avx512");
    static uint8_t W[20 * 8], P[20 * 8];
    static float X[64], Y[8];
    CHECK(!pl_pack_supported(PL_DTYPE_Q4_K, 4, 256), "q4_K has no packed layout");
    CHECK(!pl_pack_supported(PL_DTYPE_Q4_1, 6, 32), "n_out 6 is not a multiple of 4");
    CHECK(pl_pack_weights(PL_DTYPE_Q4_1, W, 6, 32, P) == PL_ERR_INVALID, "pack of 6 rows fails");
    CHECK(pl_matmul_packed(PL_DTYPE_Q4_1, P, 4, 48, X, 1, Y, NULL, 0) == PL_ERR_INVALID, "n_in 48 fails");
    CHECK(pl_unpack_row(PL_DTYPE_Q4_1, P, 4, 32, 4, W) == PL_ERR_RANGE, "unpack row out of range");
    CHECK_OK(pl_simd_set(top));
}

/* ---- llama-quantize output: our reference quantizers give the same bytes ---- */
static void check_gguf_pair(const char *shared, const char *qname) {
    char p32[4096], pq[4096];
    t_path(p32, sizeof p32, shared, "models/fixtures/tiny-mistral-random.gguf");
    t_path(pq, sizeof pq, shared, qname);
    pl_gguf *g32 = NULL, *gq = NULL;
    CHECK_OK(pl_gguf_open(p32, &g32));
    CHECK_OK(pl_gguf_open(pq, &gq));
    if (!g32 || !gq) { pl_gguf_close(g32); pl_gguf_close(gq); return; }
    int compared = 0;
    for (int64_t i = 0; i < pl_gguf_n_tensors(gq); i++) {
        const pl_gguf_tensor *tq = pl_gguf_tensor_at(gq, i);
        if (tq->type == PL_DTYPE_F32 || tq->type == PL_DTYPE_F16) continue;
        const pl_gguf_tensor *tf = pl_gguf_find_tensor(g32, tq->name);
        CHECK(tf != NULL, "%s: tensor %s missing in the f32 file", qname, tq->name);
        if (!tf) continue;
        CHECK(tf->type == PL_DTYPE_F32 && tf->n_elements == tq->n_elements, "%s: %s shape/type", qname, tq->name);
        if (tf->type != PL_DTYPE_F32 || tf->n_elements != tq->n_elements) continue;
        const pl_dtype t = (pl_dtype)tq->type;
        size_t rb;
        CHECK_OK(pl_dtype_row_bytes(t, tq->ne[0], &rb));
        const int64_t rows = tq->n_elements / tq->ne[0];
        uint8_t *buf = malloc(rb);
        int64_t bad_rows = 0;
        for (int64_t r = 0; r < rows; r++) {
            pl_quantize_row(t, (const float *)tf->data + r * tq->ne[0], buf, tq->ne[0]);
            if (memcmp(buf, (const uint8_t *)tq->data + (size_t)r * rb, rb) != 0) {
                if (bad_rows++ == 0) {
                    const uint8_t *want = (const uint8_t *)tq->data + (size_t)r * rb;
                    size_t k = 0;
                    while (buf[k] == want[k]) k++;
                    printf("  %s %s (%s) row %lld: first differing byte %zu: 0x%02x, want 0x%02x\n", qname,
                           tq->name, pl_dtype_name(t), (long long)r, k, buf[k], want[k]);
                }
            }
        }
        free(buf);
        CHECK(bad_rows == 0, "%s: %s (%s): %lld of %lld rows differ from llama-quantize", qname, tq->name,
              pl_dtype_name(t), (long long)bad_rows, (long long)rows);
        compared++;
    }
    printf("%s: %d quantized tensors compared byte for byte\n", qname, compared);
    CHECK(compared > 0, "%s: no quantized tensors found", qname);
    pl_gguf_close(g32);
    pl_gguf_close(gq);
}

static void test_gguf_reference(void) {
    const char *shared = pl_test_shared();
    if (!shared) return;
    check_gguf_pair(shared, "models/fixtures/tiny-mistral-random-q8_0.gguf");
    check_gguf_pair(shared, "models/fixtures/tiny-mistral-random-q4_0.gguf");
}

int main(void) {
    T_BEGIN();
    pl_rng_seed(&rng, 20260428);
    test_table();
    test_half();
#if defined(__x86_64__)
    test_half_hw();
#endif
    test_known_blocks();
    test_roundtrip();
    test_kernels();
    test_packed();
    test_f32_kernels();
    test_gguf_reference();
    return T_END();
}
