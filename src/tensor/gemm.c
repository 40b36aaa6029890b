/* gemm.c — bf16 matrix products against weights of any dtype (tensor.h,
 * "bf16 matrix products").
 *
 * Activations are rounded to bf16 once per call; weights are dequantized a
 * chunk of 256 output columns at a time into f32, rounded to bf16 and
 * packed into the tile layout of gemm_impl.h, then multiplied with f32
 * accumulation. On a CPU with AMX (and the kernel's permission to use its
 * tile registers) the products run on the tiles, 32x32 blocks of the
 * result per call; elsewhere a portable loop computes the same sums in k
 * order. Every output element is one reduction computed by one thread in
 * a fixed order, so results depend neither on the thread count nor on how
 * many token rows share the call.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>

#include "tensor/gemm_impl.h"
#include "tensor/tensor.h"
#include "tensor/tensor_impl.h"

enum { NC = 256 }; /* output columns per dequantized chunk (a multiple of every block size) */

static int64_t up32(int64_t x) { return (x + 31) / 32 * 32; }

/* ---- detection ------------------------------------------------------------ */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_amx;

static void detect(void) {
    g_amx = 0;
#if defined(PL_HAVE_AMX_KERNEL)
    const char *e = getenv("PL_AMX");
    if (e && strcmp(e, "0") == 0) return;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    if (!(d & (1u << 22)) || !(d & (1u << 24))) return; /* AMX-BF16, AMX-TILE */
    if (!__get_cpuid_count(1, 0, &a, &b, &c, &d) || !(c & (1u << 27))) return; /* OSXSAVE */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17)) return; /* XTILECFG | XTILEDATA enabled by the OS */
    /* ARCH_REQ_XCOMP_PERM (0x1023) for XFEATURE_XTILEDATA (18) */
    if (syscall(SYS_arch_prctl, 0x1023, 18) != 0) return;
    g_amx = 1;
#endif
}

int pl_bf16_gemm_native(void) {
    pthread_once(&g_once, detect);
    return g_amx && pl_simd_active() == PL_SIMD_AVX512;
}

/* ---- conversions and packing ----------------------------------------------- */

static void to_bf16(uint16_t *dst, const float *src, int64_t n, int native) {
#if defined(PL_HAVE_AMX_KERNEL)
    if (native) {
        pl_amx_to_bf16(dst, src, n);
        return;
    }
#endif
    (void)native;
    for (int64_t i = 0; i < n; i++) dst[i] = pl_fp32_to_bf16(src[i]);
}

/* Ap[Mp x Kp] = bf16(X[M x K]), zero-padded */
static void pack_a(uint16_t *Ap, const float *X, int64_t M, int64_t K, int64_t Mp, int64_t Kp, int native,
                   int nthreads) {
#pragma omp parallel for schedule(static) num_threads(nthreads) if (M * K >= (1 << 15))
    for (int64_t m = 0; m < Mp; m++) {
        uint16_t *row = Ap + m * Kp;
        if (m < M) {
            to_bf16(row, X + m * K, K, native);
            memset(row + K, 0, (size_t)(Kp - K) * sizeof *row);
        } else {
            memset(row, 0, (size_t)Kp * sizeof *row);
        }
    }
}

/* Bp = the panels of B[k][n] = Wb[n*Kp + k] (forward: Wb holds weight rows,
 * padded to Np x Kp) */
static void pack_rows(uint16_t *Bp, const uint16_t *Wb, int64_t Kp, int64_t Np, int nthreads) {
    int64_t kt = Kp / PL_GEMM_KT, panels = Np / 16;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (Kp * Np >= (1 << 15))
    for (int64_t p = 0; p < panels; p++)
        for (int64_t t = 0; t < kt; t++) {
            uint32_t *T = (uint32_t *)(Bp + (p * kt + t) * PL_GEMM_TILE); /* [r][c] pairs */
            for (int c = 0; c < 16; c++) {
                const uint16_t *row = Wb + (p * 16 + c) * Kp + t * PL_GEMM_KT;
                for (int r = 0; r < 16; r++) {
                    uint32_t pair;
                    memcpy(&pair, row + 2 * r, sizeof pair);
                    T[r * 16 + c] = pair;
                }
            }
        }
}

/* Bp = the panels of B[k][n] = Wb[k*Np + n] (transposed: Wb holds column
 * spans of the weight rows, padded to Kp x Np) */
static void pack_cols(uint16_t *Bp, const uint16_t *Wb, int64_t Kp, int64_t Np, int nthreads) {
    int64_t kt = Kp / PL_GEMM_KT, panels = Np / 16;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (Kp * Np >= (1 << 15))
    for (int64_t p = 0; p < panels; p++)
        for (int64_t t = 0; t < kt; t++) {
            uint16_t *T = Bp + (p * kt + t) * PL_GEMM_TILE;
            for (int r = 0; r < 16; r++) {
                const uint16_t *k0 = Wb + (t * PL_GEMM_KT + 2 * r) * Np + p * 16, *k1 = k0 + Np;
                for (int c = 0; c < 16; c++) {
                    T[r * 32 + 2 * c] = k0[c];
                    T[r * 32 + 2 * c + 1] = k1[c];
                }
            }
        }
}

/* ---- the product of packed operands ------------------------------------------ */

/* the portable 32x32 block: the same sums, in k order, from 0 or from out */
static void block32_ref(const uint16_t *A, int64_t lda, const uint16_t *B0, const uint16_t *B1, int64_t kt,
                        float *out, int accumulate) {
    for (int i = 0; i < 32; i++)
        for (int n = 0; n < 32; n++) {
            const uint16_t *P = n < 16 ? B0 : B1;
            int c = n & 15;
            float s = accumulate ? out[i * 32 + n] : 0.0f;
            for (int64_t t = 0; t < kt; t++)
                for (int r = 0; r < 16; r++)
                    for (int j = 0; j < 2; j++)
                        s += pl_bf16_to_fp32(A[i * lda + t * PL_GEMM_KT + 2 * r + j]) *
                             pl_bf16_to_fp32(P[t * PL_GEMM_TILE + r * 32 + 2 * c + j]);
            out[i * 32 + n] = s;
        }
}

/* The gated unit's epilogue: column pair i of the product holds the gate
 * (columns 0-15) and the up projection (16-31) of features 16i .. 16i + 15.
 * With act, h (ldh apart, every padded row too) gets bf16(act(g) * u); else
 * G and U (n_ff apart) get g and u of the rows < M and features < n_ff. */
typedef struct {
    pl_glu_act_fn act;
    uint16_t *h;
    int64_t ldh;
    float *G, *U;
    int64_t n_ff;
    pl_silu_glu32_fn silu32; /* the active kernels' fused SiLU epilogue (or NULL) */
    /* or (blk set) each block to blk (pl_matmul_bf16_tiles_rows_blocks;
     * n_ff: the product's columns) */
    pl_block_fn blk;
    void *ctx;
} glu_epi;

static void glu_block(const glu_epi *e, const float *out, int64_t m0, int64_t i, int64_t M, int native) {
    if (e->blk) {
        const int64_t n0 = 32 * i;
        e->blk(e->ctx, out, m0, n0, M - m0 < 32 ? M - m0 : 32, e->n_ff - n0 < 32 ? e->n_ff - n0 : 32);
        return;
    }
    const int64_t f0 = 16 * i;
#if defined(PL_HAVE_AMX_KERNEL)
    /* SiLU on the tiles' machine: straight from the block's rows */
    if (e->act == pl_f32_silu_mul && native && e->silu32) {
        e->silu32(out, e->h + m0 * e->ldh + f0, e->ldh);
        return;
    }
#endif
    if (e->act) {
        float g[32 * 16] __attribute__((aligned(64))), u[32 * 16] __attribute__((aligned(64)));
        for (int r = 0; r < 32; r++) {
            memcpy(g + r * 16, out + r * 32, 16 * sizeof *g);
            memcpy(u + r * 16, out + r * 32 + 16, 16 * sizeof *u);
        }
        e->act(g, u, 32 * 16);
#if defined(PL_HAVE_AMX_KERNEL)
        if (native) {
            pl_amx_to_bf16_16(e->h + m0 * e->ldh + f0, e->ldh, g, 16, 32);
            return;
        }
#endif
        for (int r = 0; r < 32; r++) to_bf16(e->h + (m0 + r) * e->ldh + f0, g + r * 16, 16, native);
        return;
    }
    const int64_t mr = M - m0 < 32 ? M - m0 : 32, nf = e->n_ff - f0 < 16 ? e->n_ff - f0 : 16;
    for (int64_t r = 0; r < mr && nf > 0; r++) {
        memcpy(e->G + (m0 + r) * e->n_ff + f0, out + r * 32, (size_t)nf * sizeof *out);
        memcpy(e->U + (m0 + r) * e->n_ff + f0, out + r * 32 + 16, (size_t)nf * sizeof *out);
    }
}

/* One product's blocks: work item w is one 32 x 32 block of C. */
typedef struct {
    const uint16_t *Ap, *Bp;
    int64_t Kp, kt, bkt, mb, nb, cp, ncc, M, N, ldc; /* bkt: B's tiles per panel (>= kt) */
    float *C;
    int accumulate, native, morder, stream;
    const glu_epi *epi;
    /* a second reduction on the tiles (AMX only): + U·D, U's rows ldu
     * apart, D's panels of kt2 tiles in B's column order */
    const uint16_t *Up, *Dp;
    int64_t ldu, kt2;
} gemm_job;

/* work item w -> column pair i, row strip j: the operand with fewer blocks
 * stays hot (with more row blocks than column pairs a thread walks the
 * columns of one row strip, its A in L1 and the B panels streamed, else
 * the rows of one column pair) */
static void block_of(const gemm_job *g, int64_t w, int64_t *i_out, int64_t *j_out) {
    const int64_t mb = g->mb, nb = g->nb, cp = g->cp;
    int64_t i = g->morder ? w % nb : w / mb, j = g->morder ? w / nb : w % mb;
    if (g->ncc > 1) { /* column chunk c = w / (cp mb): each strip walks the chunk's pairs */
        const int64_t c = w / (cp * mb), in = w % (cp * mb), cols = (c + 1) * cp < nb ? cp : nb - c * cp;
        j = in / cols;
        i = c * cp + in % cols;
    }
    *i_out = i;
    *j_out = j;
}

#if defined(PL_HAVE_AMX_KERNEL)
/* The gated unit with SiLU on the tiles, work items [w0, w1) in order on
 * this thread: each block's k loop also does the previous block's
 * epilogue (pl_amx_block32_silu), the last one's after the loop. The same
 * bits as gemm_block then glu_block per item. */
static void glu_silu_range(const gemm_job *g, int64_t w0, int64_t w1) {
    float buf[2][32 * 32] __attribute__((aligned(64)));
    const glu_epi *e = g->epi;
    const int64_t kt = g->kt, Kp = g->Kp;
    uint16_t *hp = NULL;
    int cur = 0;
    for (int64_t w = w0; w < w1; w++) {
        int64_t i, j;
        block_of(g, w, &i, &j);
        const uint16_t *B0 = g->Bp + (2 * i) * g->bkt * PL_GEMM_TILE;
        pl_amx_block32_silu(g->Ap + j * 32 * Kp, Kp, B0, B0 + g->bkt * PL_GEMM_TILE, kt, buf[cur], hp ? buf[1 - cur] : NULL,
                            hp, e->ldh, g->stream);
        hp = e->h + j * 32 * e->ldh + 16 * i;
        cur = 1 - cur;
    }
    if (hp) e->silu32(buf[1 - cur], hp, e->ldh);
}
#endif

#if defined(PL_HAVE_AMX_KERNEL)
/* one 32 x 32 block on the tiles: A·B, then + U·D where the job has it */
static void amx_block(const gemm_job *g, const uint16_t *A, const uint16_t *B0, const uint16_t *B1, int64_t i, int64_t j,
                      float *out, int64_t ldo, int accumulate) {
    if (g->Up) {
        const uint16_t *D0 = g->Dp + (2 * i) * g->kt2 * PL_GEMM_TILE;
        pl_amx_block32_seg2(A, g->Kp, B0, B1, g->kt, g->Up + j * 32 * g->ldu, g->ldu, D0, D0 + g->kt2 * PL_GEMM_TILE,
                            g->kt2, out, ldo, accumulate, g->stream);
    } else {
        pl_amx_block32(A, g->Kp, B0, B1, g->kt, out, ldo, accumulate, g->stream);
    }
}
#endif

static void gemm_block(const gemm_job *g, int64_t w, float *out) {
    const int64_t kt = g->kt, Kp = g->Kp, ldc = g->ldc;
    int64_t i, j;
    block_of(g, w, &i, &j);
    const uint16_t *A = g->Ap + j * 32 * Kp;
    const uint16_t *B0 = g->Bp + (2 * i) * g->bkt * PL_GEMM_TILE, *B1 = B0 + g->bkt * PL_GEMM_TILE;
    const int64_t m0 = j * 32, n0 = i * 32;
    const int64_t mr = g->M - m0 < 32 ? g->M - m0 : 32, nr = g->N - n0 < 32 ? g->N - n0 : 32;
    float *C = g->C;
    const int accumulate = g->accumulate, native = g->native, stream = g->stream;
    (void)stream; /* the tiles' streaming hint: unused by the portable loop */
    if (g->epi) {
#if defined(PL_HAVE_AMX_KERNEL)
        if (native)
            pl_amx_block32(A, Kp, B0, B1, kt, out, 32, 0, stream);
        else
#endif
            block32_ref(A, Kp, B0, B1, kt, out, 0);
        glu_block(g->epi, out, m0, i, g->M, native);
        return;
    }
#if defined(PL_HAVE_AMX_KERNEL)
    if (native && mr == 32 && nr == 32) { /* a whole block: the tiles go to C directly */
        amx_block(g, A, B0, B1, i, j, C + m0 * ldc + n0, ldc, accumulate);
        return;
    }
#endif
    /* an edge block (or the portable loop) through out[32][32]; with
     * accumulate the sums start from C's values as on the tiles */
    if (accumulate) {
        memset(out, 0, 32 * 32 * sizeof *out);
        for (int64_t r = 0; r < mr; r++) memcpy(out + r * 32, C + (m0 + r) * ldc + n0, (size_t)nr * sizeof *out);
    }
#if defined(PL_HAVE_AMX_KERNEL)
    if (native)
        amx_block(g, A, B0, B1, i, j, out, 32, accumulate);
    else
#endif
        block32_ref(A, Kp, B0, B1, kt, out, accumulate);
    for (int64_t r = 0; r < mr; r++) memcpy(C + (m0 + r) * ldc + n0, out + r * 32, (size_t)nr * sizeof *out);
}

/* tile products whose operands, or output rows where whole 32 x 32 blocks
 * are stored straight to C, were off 64-byte lines */
static atomic_size_t g_misaligned;
size_t pl_bf16_tiles_misaligned(void) { return atomic_load_explicit(&g_misaligned, memory_order_relaxed); }

/* C[M x N] (+)= Ap . Bp (ldc apart), then + Up . Dp on the same tiles where
 * Up is set (AMX only; Up's rows ldu apart, ldu / 32 tiles of Dp a panel);
 * with epi, the gated unit's epilogue takes each block instead (C unused,
 * no accumulation). Small products, and
 * products asked for inside a parallel region (one thread's share of a
 * larger job, e.g. an attention head), run on the calling thread, which
 * keeps its tile configuration for the next one. */
static void gemm_packed_kb(const uint16_t *Ap, int64_t Mp, int64_t Kp, const uint16_t *Bp, int64_t Kb, int64_t Np,
                           float *C, int64_t ldc, int64_t M, int64_t N, int accumulate, int native, int nthreads,
                           const glu_epi *epi, const uint16_t *Up, int64_t ldu, const uint16_t *Dp) {
    if ((((uintptr_t)Ap | (uintptr_t)Bp | (uintptr_t)Up | (uintptr_t)Dp) & 63) ||
        (C && M >= 32 && N >= 32 && ((ldc % 16) || ((uintptr_t)C & 63))))
        atomic_fetch_add_explicit(&g_misaligned, 1, memory_order_relaxed);
    gemm_job g = {Ap, Bp, Kp, Kp / PL_GEMM_KT, Kb / PL_GEMM_KT, Mp / 32, Np / 32, 0, 0, M, N, ldc, C, accumulate,
                  native, 0, 0, epi, Up, Dp, ldu, ldu / PL_GEMM_KT};
    /* A weight larger than about half of L2 does not stay there while the
     * row strips stream past it: then the columns go in chunks of up to
     * 1 MiB of weight (a chunk stays in L2), and each row strip (in L1)
     * walks the chunk's column pairs */
    const size_t bbytes = (size_t)Np * (size_t)Kp * sizeof(uint16_t), lim = (size_t)1 << 20;
    g.cp = bbytes > lim ? (int64_t)(lim / ((size_t)Kp * sizeof(uint16_t) * 32)) : g.nb;
    if (g.cp < 1) g.cp = 1;
    g.ncc = (g.nb + g.cp - 1) / g.cp;
    g.morder = g.mb > g.nb;
    /* the operand walked past: B along a row strip (also within a column
     * chunk), A down a column pair */
    g.stream = g.morder || g.ncc > 1 ? PL_AMX_STREAM_B : PL_AMX_STREAM_A;
    const int64_t work = g.mb * g.nb;
    int par = nthreads > 1 && work > 1 && Mp * Np * Kp >= (1 << 18);
#ifdef _OPENMP
    if (par && omp_in_parallel()) par = 0;
#endif
    /* SiLU's epilogue overlapped with the next block's products */
    const int silu_pipe = native && g.epi && g.epi->act == pl_f32_silu_mul && g.epi->silu32;
    if (!par) {
        float out[32 * 32] __attribute__((aligned(64)));
#if defined(PL_HAVE_AMX_KERNEL)
        if (native) pl_amx_ensure();
        if (silu_pipe) {
            glu_silu_range(&g, 0, work);
            return;
        }
#endif
        for (int64_t w = 0; w < work; w++) gemm_block(&g, w, out);
        return;
    }
#pragma omp parallel num_threads(nthreads)
    {
        float out[32 * 32] __attribute__((aligned(64)));
#if defined(PL_HAVE_AMX_KERNEL)
        if (native) pl_amx_ensure();
        if (silu_pipe) { /* a contiguous range per thread (the blocks do not depend on who runs them) */
            const int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
            glu_silu_range(&g, work * id / nt, work * (id + 1) / nt);
        }
#endif
        if (!silu_pipe) {
#pragma omp for schedule(static)
            for (int64_t w = 0; w < work; w++) gemm_block(&g, w, out);
        }
    }
}

/* B's panels made for this reduction length (Kp), with or without epi */
static void gemm_packed_epi(const uint16_t *Ap, int64_t Mp, int64_t Kp, const uint16_t *Bp, int64_t Np, float *C,
                            int64_t ldc, int64_t M, int64_t N, int accumulate, int native, int nthreads,
                            const glu_epi *epi) {
    gemm_packed_kb(Ap, Mp, Kp, Bp, Kp, Np, C, ldc, M, N, accumulate, native, nthreads, epi, NULL, 0, NULL);
}

static void gemm_packed(const uint16_t *Ap, int64_t Mp, int64_t Kp, const uint16_t *Bp, int64_t Np, float *C,
                        int64_t ldc, int64_t M, int64_t N, int accumulate, int native, int nthreads) {
    gemm_packed_epi(Ap, Mp, Kp, Bp, Np, C, ldc, M, N, accumulate, native, nthreads, NULL);
}

/* ---- weights of any dtype -------------------------------------------------------- */

typedef struct {
    pl_dtype t;
    const uint8_t *W;
    int packed;
    int64_t n_out, n_in;
    size_t row_bytes;
} weight;

/* dst[0..n) = W[row][i0 .. i0+n), i0 and n multiples of the block size */
static pl_status weight_span(const weight *w, int64_t row, int64_t i0, int64_t n, float *dst, uint8_t *tmp) {
    const uint8_t *src = w->W + (size_t)row * w->row_bytes;
    if (w->packed) {
        pl_status st = pl_unpack_row(w->t, w->W, w->n_out, w->n_in, row, tmp);
        if (st) return st;
        src = tmp;
    }
    int64_t bs = pl_dtype_block_size(w->t);
    return pl_dequantize_row(w->t, src + (size_t)(i0 / bs) * pl_dtype_block_bytes(w->t), dst, n);
}

static pl_status check(const weight *w, const float *X, int64_t n_tok, const float *Y) {
    if (!pl_dtype_valid(w->t) || pl_dtype_block_size(w->t) <= 0)
        return pl_error(PL_ERR_UNSUPPORTED, "bf16 matmul: unknown dtype %d", (int)w->t);
    if (w->n_out <= 0 || w->n_in <= 0 || n_tok < 0 || !w->W || (n_tok > 0 && (!X || !Y)))
        return pl_error(PL_ERR_INVALID, "bf16 matmul: bad shape %lld x %lld, %lld tokens", (long long)w->n_out,
                        (long long)w->n_in, (long long)n_tok);
    if (w->n_in % pl_dtype_block_size(w->t))
        return pl_error(PL_ERR_INVALID, "bf16 matmul: %lld inputs is not a multiple of %s's block of %lld",
                        (long long)w->n_in, pl_dtype_name(w->t), (long long)pl_dtype_block_size(w->t));
    if (w->packed && !pl_pack_supported(w->t, w->n_out, w->n_in))
        return pl_error(PL_ERR_INVALID, "bf16 matmul: %s %lld x %lld has no packed layout", pl_dtype_name(w->t),
                        (long long)w->n_out, (long long)w->n_in);
    return PL_OK;
}


static weight make_weight(pl_dtype t, const void *W, int packed, int64_t n_out, int64_t n_in) {
    weight w = {t, W, packed, n_out, n_in, 0};
    if (pl_dtype_valid(t) && pl_dtype_row_bytes(t, n_in, &w.row_bytes) != PL_OK) w.row_bytes = 0;
    return w;
}

/* Scratch for converting a weight chunk by chunk: the padded bf16 chunk
 * and, per thread, one dequantized span (f32) and one unpacked GGUF row. */
typedef struct {
    const weight *w;
    int transposed, native, nthreads;
    int64_t K, N, Kp, chunk;
    uint16_t *Wb;
    uint8_t *tmp;
    size_t per;
} converter;

static pl_status conv_init(converter *c, const weight *w, int transposed) {
    c->w = w;
    c->transposed = transposed;
    c->native = pl_bf16_gemm_native();
    c->nthreads = pl_num_threads();
    c->K = transposed ? w->n_out : w->n_in;
    c->N = transposed ? w->n_in : w->n_out;
    c->Kp = up32(c->K);
    c->chunk = c->N < NC ? c->N : NC;
    c->per = (size_t)(c->K > c->chunk ? c->K : c->chunk) * sizeof(float);
    size_t per_thread = c->per + (w->packed ? w->row_bytes : 0);
    c->Wb = malloc((size_t)(up32(c->chunk) * c->Kp) * sizeof *c->Wb);
    c->tmp = malloc(per_thread * (size_t)c->nthreads);
    if (!c->Wb || !c->tmp) {
        free(c->Wb);
        free(c->tmp);
        return pl_error(PL_ERR_NOMEM, "bf16 matmul: out of memory (%lld x %lld weight)", (long long)w->n_out,
                        (long long)w->n_in);
    }
    c->per = per_thread;
    return PL_OK;
}

static void conv_free(converter *c) {
    free(c->Wb);
    free(c->tmp);
}

/* The panels of output columns [c0, c0 + nc) into Bp (up32(nc) / 16 panels). */
static pl_status conv_chunk(converter *c, int64_t c0, int64_t nc, uint16_t *Bp) {
    const weight *w = c->w;
    const int64_t K = c->K, Kp = c->Kp, ncp = up32(nc);
    const size_t span = c->per - (w->packed ? w->row_bytes : 0);
    int fail = 0;
    memset(c->Wb, 0, (size_t)(ncp * Kp) * sizeof *c->Wb);
    if (!c->transposed) {
        /* rows c0.. of W: B[k][n] = W[c0+n][k]; Wb row n = that weight row */
#pragma omp parallel for schedule(static) num_threads(c->nthreads) if (nc * K >= (1 << 15))
        for (int64_t n = 0; n < nc; n++) {
            uint8_t *mine = c->tmp + c->per * (size_t)omp_get_thread_num();
            float *f = (float *)(void *)mine;
            if (weight_span(w, c0 + n, 0, K, f, mine + span))
                fail = 1;
            else
                to_bf16(c->Wb + n * Kp, f, K, c->native);
        }
        if (!fail) pack_rows(Bp, c->Wb, Kp, ncp, c->nthreads);
    } else {
        /* columns c0.. of every row: B[k][n] = W[k][c0+n]; Wb row k = that span */
#pragma omp parallel for schedule(static) num_threads(c->nthreads) if (nc * K >= (1 << 15))
        for (int64_t k = 0; k < K; k++) {
            uint8_t *mine = c->tmp + c->per * (size_t)omp_get_thread_num();
            float *f = (float *)(void *)mine;
            if (weight_span(w, k, c0, nc, f, mine + span))
                fail = 1;
            else
                to_bf16(c->Wb + k * ncp, f, nc, c->native);
        }
        if (!fail) pack_cols(Bp, c->Wb, Kp, ncp, c->nthreads);
    }
    if (fail)
        return pl_error(PL_ERR_INVALID, "bf16 matmul: cannot dequantize the %s %lld x %lld weight",
                        pl_dtype_name(w->t), (long long)w->n_out, (long long)w->n_in);
    return PL_OK;
}

/* transposed: Y[n_tok x n_in] (+)= A . W; else Y[n_tok x n_out] (+)= A . W^T,
 * A the packed bf16 rows (Mp x Kp) */
static pl_status matmul_packed_a(const weight *w, const uint16_t *Ap, int64_t n_tok, float *Y, int accumulate,
                                 int transposed) {
    converter c;
    pl_status st = conv_init(&c, w, transposed);
    if (st) return st;
    const int64_t Mp = up32(n_tok);
    uint16_t *Bp = aligned_alloc(64, (size_t)(up32(c.chunk) * c.Kp) * sizeof *Bp);
    if (!Bp) {
        st = pl_error(PL_ERR_NOMEM, "bf16 matmul: out of memory (%lld x %lld weight)", (long long)w->n_out,
                      (long long)w->n_in);
    } else {
        for (int64_t c0 = 0; c0 < c.N && !st; c0 += c.chunk) {
            const int64_t nc = c.N - c0 < c.chunk ? c.N - c0 : c.chunk;
            if (!(st = conv_chunk(&c, c0, nc, Bp)))
                gemm_packed(Ap, Mp, c.Kp, Bp, up32(nc), Y + c0, c.N, n_tok, nc, accumulate, c.native, c.nthreads);
        }
    }
    free(Bp);
    conv_free(&c);
    return st;
}

/* transposed: Y[n_tok x n_in] (+)= X[n_tok x n_out] . W; else Y[n_tok x n_out] (+)= X . W^T */
static pl_status matmul(const weight *w, const float *X, int64_t n_tok, float *Y, int accumulate, int transposed) {
    pl_status st = check(w, X, n_tok, Y);
    if (st || n_tok == 0) return st;
    const int64_t K = transposed ? w->n_out : w->n_in, Mp = up32(n_tok), Kp = up32(K);
    uint16_t *Ap = aligned_alloc(64, (size_t)(Mp * Kp) * sizeof *Ap);
    if (!Ap)
        return pl_error(PL_ERR_NOMEM, "bf16 matmul: out of memory (%lld tokens x %lld)", (long long)n_tok,
                        (long long)K);
    pack_a(Ap, X, n_tok, K, Mp, Kp, pl_bf16_gemm_native(), pl_num_threads());
    st = matmul_packed_a(w, Ap, n_tok, Y, accumulate, transposed);
    free(Ap);
    return st;
}

/* ---- activations rounded once ---------------------------------------------------- */

/* a sized and shaped for n_tok x n_in (its buffer grows as needed) */
static pl_status rows_reserve(pl_bf16_rows *a, int64_t n_tok, int64_t n_in) {
    if (!a || n_tok < 0 || n_in <= 0)
        return pl_error(PL_ERR_INVALID, "bf16 rows: bad shape %lld x %lld", (long long)n_tok, (long long)n_in);
    const size_t need = (size_t)(up32(n_tok) * up32(n_in)) * sizeof(uint16_t);
    if (need > a->cap) {
        uint16_t *p = aligned_alloc(64, need);
        if (!p)
            return pl_error(PL_ERR_NOMEM, "bf16 rows: out of memory (%lld tokens x %lld)", (long long)n_tok,
                            (long long)n_in);
        free(a->data);
        a->data = p;
        a->cap = need;
    }
    a->n_tok = n_tok;
    a->n_in = n_in;
    return PL_OK;
}

pl_status pl_bf16_rows_set(pl_bf16_rows *a, const float *X, int64_t n_tok, int64_t n_in) {
    if (n_tok > 0 && !X) return pl_error(PL_ERR_INVALID, "bf16 rows: no input for %lld rows", (long long)n_tok);
    pl_status st = rows_reserve(a, n_tok, n_in);
    if (!st && n_tok > 0)
        pack_a(a->data, X, n_tok, n_in, up32(n_tok), up32(n_in), pl_bf16_gemm_native(), pl_num_threads());
    return st;
}

pl_status pl_bf16_rows_alloc(pl_bf16_rows *a, int64_t n_tok, int64_t n_in) {
    pl_status st = rows_reserve(a, n_tok, n_in);
    if (st || n_tok == 0) return st;
    const int64_t Mp = up32(n_tok), Kp = up32(n_in);
    for (int64_t m = 0; Kp > n_in && m < n_tok; m++) memset(a->data + m * Kp + n_in, 0, (size_t)(Kp - n_in) * 2);
    memset(a->data + n_tok * Kp, 0, (size_t)((Mp - n_tok) * Kp) * 2);
    return PL_OK;
}

void pl_bf16_round(uint16_t *dst, const float *src, int64_t n) { to_bf16(dst, src, n, pl_bf16_gemm_native()); }

void pl_bf16_round_rows(uint16_t *dst, int64_t ldd, const float *src, int64_t lds, int64_t rows, int64_t n) {
    const int native = pl_bf16_gemm_native();
    for (int64_t r = 0; r < rows; r++) to_bf16(dst + r * ldd, src + r * lds, n, native);
}

void pl_bf16_round_scaled(uint16_t *dst, const float *src, int64_t n, float s) {
#if defined(PL_HAVE_AMX_KERNEL)
    if (pl_bf16_gemm_native()) {
        pl_amx_to_bf16_scaled(dst, src, n, s);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) {
        const float v = src[i] * s;
        dst[i] = pl_fp32_to_bf16(v);
    }
}

void pl_bf16_softmax(float *x, int64_t n, float scale, uint16_t *dst) {
    const pl_kernels *k = pl_kernels_active();
    if (n <= 0) return;
    if (k->softmax_bf16 && pl_bf16_gemm_native()) {
        k->softmax_bf16(x, n, scale, dst);
        return;
    }
    const float mx = pl_f32_scores(x, n, 0, n - 1, scale);
    pl_bf16_round_scaled(dst, x, n, (float)(1.0 / pl_f32_exp_sum(x, n, mx)));
}

void pl_bf16_rope_round_rows(const float *src, int64_t lds, int64_t rows, int64_t n, int64_t rot, const float *cs,
                             int64_t ldcs, uint16_t *const *dst) {
    const pl_kernels *k = pl_kernels_active();
    if (k->rope_round && pl_bf16_gemm_native()) {
        k->rope_round(src, lds, rows, n, rot, cs, ldcs, dst);
        return;
    }
    const int native = pl_bf16_gemm_native();
    float row[32];
    for (int64_t r = 0; r < rows; r++) {
        memcpy(row, src + r * lds, (size_t)n * sizeof *row);
        if (rot > 0) pl_f32_rope(row, cs + r * ldcs, rot, 0);
        to_bf16(dst[r], row, n, native);
    }
}

pl_status pl_bf16_rows_rmsnorm(pl_bf16_rows *a, const float *X, const float *w, int64_t n_tok, int64_t n_in,
                               float eps) {
    if (n_tok > 0 && !X) return pl_error(PL_ERR_INVALID, "bf16 rows: no input for %lld rows", (long long)n_tok);
    pl_status st = rows_reserve(a, n_tok, n_in);
    if (st || n_tok == 0) return st;
    if (!w) return pl_error(PL_ERR_INVALID, "bf16 rows: no norm weight");
    const int64_t Mp = up32(n_tok), Kp = up32(n_in);
    const int native = pl_bf16_gemm_native();
    int fail = 0;
#pragma omp parallel num_threads(pl_num_threads()) if (n_tok * n_in >= (1 << 15))
    {
        float *tmp = aligned_alloc(64, (size_t)Kp * sizeof *tmp); /* one normed row, in L1 */
        if (!tmp) fail = 1;
#pragma omp for schedule(static)
        for (int64_t m = 0; m < Mp; m++) {
            uint16_t *row = a->data + m * Kp;
            if (m < n_tok && tmp) {
                pl_f32_rmsnorm(tmp, X + m * n_in, w, n_in, eps);
                to_bf16(row, tmp, n_in, native);
                memset(row + n_in, 0, (size_t)(Kp - n_in) * sizeof *row);
            } else {
                memset(row, 0, (size_t)Kp * sizeof *row);
            }
        }
        free(tmp);
    }
    return fail ? pl_error(PL_ERR_NOMEM, "bf16 rows: out of memory") : PL_OK;
}

void pl_bf16_rows_free(pl_bf16_rows *a) {
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

static pl_status rows_check(const pl_bf16_rows *a, int64_t n_in, const float *Y, const char *what) {
    if (!a || (a->n_tok > 0 && (!a->data || !Y)) || a->n_in != n_in)
        return pl_error(PL_ERR_INVALID, "%s: rows of %lld inputs for a weight of %lld", what,
                        a ? (long long)a->n_in : -1LL, (long long)n_in);
    return PL_OK;
}

pl_status pl_matmul_bf16_rows(pl_dtype t, const void *W, int packed, int64_t n_out, int64_t n_in,
                              const pl_bf16_rows *a, float *Y, int accumulate) {
    weight w = make_weight(t, W, packed, n_out, n_in);
    pl_status st = check(&w, NULL, 0, NULL);
    if (!st) st = rows_check(a, n_in, Y, "bf16 matmul");
    if (st || a->n_tok == 0) return st;
    return matmul_packed_a(&w, a->data, a->n_tok, Y, accumulate, 0);
}

/* ---- weights converted once -------------------------------------------------------- */

size_t pl_bf16_tiles_bytes(int64_t n_out, int64_t n_in) {
    if (n_out <= 0 || n_in <= 0) return 0;
    return (size_t)up32(n_out) * (size_t)up32(n_in) * sizeof(uint16_t);
}

pl_status pl_bf16_tiles_pack(pl_dtype t, const void *W, int packed, int64_t n_out, int64_t n_in, int transposed,
                             uint16_t *tiles) {
    weight w = make_weight(t, W, packed, n_out, n_in);
    pl_status st = check(&w, NULL, 0, NULL);
    if (st) return st;
    if (!tiles) return pl_error(PL_ERR_INVALID, "bf16 tiles: no destination");
    converter c;
    if ((st = conv_init(&c, &w, transposed))) return st;
    const int64_t kt = c.Kp / PL_GEMM_KT;
    for (int64_t c0 = 0; c0 < c.N && !st; c0 += c.chunk) /* chunks are multiples of 32 columns */
        st = conv_chunk(&c, c0, c.N - c0 < c.chunk ? c.N - c0 : c.chunk, tiles + (c0 / 16) * kt * PL_GEMM_TILE);
    conv_free(&c);
    return st;
}

/* row i of a row-pointer set rounded to bf16 (f32 rows) or copied (bf16) */
static void rowptr_bf16(uint16_t *dst, const void *const *rows, int bf16, int64_t i, int64_t n, int native) {
    if (bf16) memcpy(dst, rows[i], (size_t)n * sizeof *dst);
    else to_bf16(dst, rows[i], n, native);
}

/* pl_bf16_tiles_pack_rowptr on f32 rows, or (bf16) on rows of bf16 */
static pl_status pack_rowptr(const void *const *rows, int bf16, int64_t n_out, int64_t n_in, int transposed,
                             uint16_t *tiles, uint16_t *scratch) {
    if (!rows || !tiles || !scratch || n_out <= 0 || n_in <= 0)
        return pl_error(PL_ERR_INVALID, "bf16 tiles: bad shape %lld x %lld", (long long)n_out, (long long)n_in);
    const int native = pl_bf16_gemm_native();
    const int64_t K = transposed ? n_out : n_in, N = transposed ? n_in : n_out;
    const int64_t Kp = up32(K), Np = up32(N), kt = Kp / PL_GEMM_KT;
    uint16_t *b0 = scratch, *b1 = scratch + up32(n_in);
#if defined(PL_HAVE_AMX_KERNEL)
    if (native && !transposed) { /* a panel of 16 rows at a time */
        for (int64_t p = 0; p < Np / 16; p++) {
            const void *pr[16];
            for (int c = 0; c < 16; c++) pr[c] = 16 * p + c < n_out ? rows[16 * p + c] : NULL;
            if (bf16) pl_amx_pack_panel16_bf16((const uint16_t *const *)pr, n_in, kt, tiles + p * kt * PL_GEMM_TILE);
            else pl_amx_pack_panel16((const float *const *)pr, n_in, kt, tiles + p * kt * PL_GEMM_TILE);
        }
        return PL_OK;
    }
    if (native) { /* a pair of reduction rows at a time */
        for (int64_t k = 0; k < Kp; k += 2) {
            const void *r0 = k < n_out ? rows[k] : NULL, *r1 = k + 1 < n_out ? rows[k + 1] : NULL;
            uint16_t *dst = tiles + (k / PL_GEMM_KT) * PL_GEMM_TILE + ((k % PL_GEMM_KT) / 2) * 32;
            if (bf16) pl_amx_pack_pair_bf16(r0, r1, n_in, Np / 16, kt, dst);
            else pl_amx_pack_pair(r0, r1, n_in, Np / 16, kt, dst);
        }
        return PL_OK;
    }
#endif
    if (!transposed) {
        /* weight row n is output column n: tile (n / 16, t), row r, column
         * n % 16 holds the pair (32t + 2r, 32t + 2r + 1) of that row */
        for (int64_t n = 0; n < Np; n++) {
            if (n < n_out) {
                rowptr_bf16(b0, rows, bf16, n, n_in, native);
                memset(b0 + n_in, 0, (size_t)(Kp - n_in) * sizeof *b0);
            } else {
                memset(b0, 0, (size_t)Kp * sizeof *b0);
            }
            uint32_t *T = (uint32_t *)(void *)(tiles + (n / 16) * kt * PL_GEMM_TILE) + n % 16;
            for (int64_t t = 0; t < kt; t++, T += PL_GEMM_TILE / 2)
                for (int r = 0; r < 16; r++) {
                    uint32_t pair;
                    memcpy(&pair, b0 + t * PL_GEMM_KT + 2 * r, sizeof pair);
                    T[r * 16] = pair;
                }
        }
    } else {
        /* weight rows k, k + 1 are reduction indices: tile (p, k / 32), row
         * (k % 32) / 2 interleaves their columns 16p .. 16p + 15 */
        for (int64_t k = 0; k < Kp; k += 2) {
            for (int j = 0; j < 2; j++) {
                uint16_t *b = j ? b1 : b0;
                if (k + j < n_out) {
                    rowptr_bf16(b, rows, bf16, k + j, n_in, native);
                    memset(b + n_in, 0, (size_t)(Np - n_in) * sizeof *b);
                } else {
                    memset(b, 0, (size_t)Np * sizeof *b);
                }
            }
            const int64_t t = k / PL_GEMM_KT, r = (k % PL_GEMM_KT) / 2;
            for (int64_t p = 0; p < Np / 16; p++) {
                uint16_t *T = tiles + (p * kt + t) * PL_GEMM_TILE + r * 32;
                for (int c = 0; c < 16; c++) {
                    T[2 * c] = b0[16 * p + c];
                    T[2 * c + 1] = b1[16 * p + c];
                }
            }
        }
    }
    return PL_OK;
}

pl_status pl_bf16_tiles_pack_rowptr(const float *const *rows, int64_t n_out, int64_t n_in, int transposed,
                                    uint16_t *tiles, uint16_t *scratch) {
    return pack_rowptr((const void *const *)rows, 0, n_out, n_in, transposed, tiles, scratch);
}

pl_status pl_bf16_tiles_pack_rowptr_bf16(const uint16_t *const *rows, int64_t n_out, int64_t n_in, int transposed,
                                         uint16_t *tiles, uint16_t *scratch) {
    return pack_rowptr((const void *const *)rows, 1, n_out, n_in, transposed, tiles, scratch);
}

pl_status pl_matmul_bf16_tiles(const uint16_t *tiles, int64_t n_out, int64_t n_in, int transposed, const float *X,
                               int64_t n_tok, float *Y, int accumulate) {
    if (!tiles || n_out <= 0 || n_in <= 0 || n_tok < 0 || (n_tok > 0 && (!X || !Y)))
        return pl_error(PL_ERR_INVALID, "bf16 tiles matmul: bad shape %lld x %lld, %lld tokens", (long long)n_out,
                        (long long)n_in, (long long)n_tok);
    if (n_tok == 0) return PL_OK;
    const int64_t K = transposed ? n_out : n_in, Mp = up32(n_tok), Kp = up32(K);
    uint16_t *Ap = aligned_alloc(64, (size_t)(Mp * Kp) * sizeof *Ap);
    if (!Ap)
        return pl_error(PL_ERR_NOMEM, "bf16 tiles matmul: out of memory (%lld tokens x %lld)", (long long)n_tok,
                        (long long)K);
    pack_a(Ap, X, n_tok, K, Mp, Kp, pl_bf16_gemm_native(), pl_num_threads());
    pl_status st = pl_matmul_bf16_tiles_packed(tiles, n_out, n_in, transposed, Ap, n_tok, Y, accumulate);
    free(Ap);
    return st;
}

/* The three forms below: Y (rows ldy apart) (+)= A · tiles over the first
 * k_use of the K reduction indices the tiles were made for */
static pl_status tiles_product(const uint16_t *tiles, int64_t n_out, int64_t n_in, int transposed, int64_t k_use,
                               const uint16_t *A, int64_t n_tok, float *Y, int64_t ldy, int accumulate) {
    const int64_t K = transposed ? n_out : n_in, N = transposed ? n_in : n_out;
    if (!tiles || n_out <= 0 || n_in <= 0 || n_tok < 0 || k_use <= 0 || k_use > K || ldy < N ||
        (n_tok > 0 && (!A || !Y)))
        return pl_error(PL_ERR_INVALID,
                        "bf16 tiles matmul: bad shape %lld x %lld (%lld of the reduction), %lld tokens, rows %lld apart",
                        (long long)n_out, (long long)n_in, (long long)k_use, (long long)n_tok, (long long)ldy);
    if (n_tok == 0) return PL_OK;
    gemm_packed_kb(A, up32(n_tok), up32(k_use), tiles, up32(K), up32(N), Y, ldy, n_tok, N, accumulate,
                   pl_bf16_gemm_native(), pl_num_threads(), NULL, NULL, 0, NULL);
    return PL_OK;
}

pl_status pl_matmul_bf16_tiles_rows_delta(const uint16_t *tiles, int64_t n_out, int64_t n_in, const pl_bf16_rows *a,
                                          const uint16_t *d_tiles, int64_t r, const uint16_t *U, float *Y,
                                          int accumulate) {
    pl_status st = rows_check(a, n_in, Y, "bf16 tiles matmul");
    if (st) return st;
    if (!d_tiles || !U || r <= 0)
        return pl_error(PL_ERR_INVALID, "bf16 tiles matmul: bad low-rank delta (rank %lld)", (long long)r);
    if (a->n_tok == 0) return PL_OK;
    if (!pl_bf16_gemm_native()) { /* the two products apart: the same bits */
        st = pl_matmul_bf16_tiles_packed(tiles, n_out, n_in, 0, a->data, a->n_tok, Y, accumulate);
        return st ? st : pl_matmul_bf16_tiles_packed(d_tiles, n_out, r, 0, U, a->n_tok, Y, 1);
    }
    gemm_packed_kb(a->data, up32(a->n_tok), up32(n_in), tiles, up32(n_in), up32(n_out), Y, n_out, a->n_tok, n_out,
                   accumulate, 1, pl_num_threads(), NULL, U, up32(r), d_tiles);
    return PL_OK;
}

pl_status pl_matmul_bf16_tiles_packed(const uint16_t *tiles, int64_t n_out, int64_t n_in, int transposed,
                                      const uint16_t *A, int64_t n_tok, float *Y, int accumulate) {
    const int64_t K = transposed ? n_out : n_in, N = transposed ? n_in : n_out;
    return tiles_product(tiles, n_out, n_in, transposed, K, A, n_tok, Y, N, accumulate);
}

pl_status pl_matmul_bf16_tiles_packed_ld(const uint16_t *tiles, int64_t n_out, int64_t n_in, int transposed,
                                         const uint16_t *A, int64_t n_tok, float *Y, int64_t ldy, int accumulate) {
    return tiles_product(tiles, n_out, n_in, transposed, transposed ? n_out : n_in, A, n_tok, Y, ldy, accumulate);
}

pl_status pl_matmul_bf16_tiles_packed_part(const uint16_t *tiles, int64_t n_out, int64_t n_in, int transposed,
                                           int64_t k_use, const uint16_t *A, int64_t n_tok, float *Y, int accumulate) {
    return tiles_product(tiles, n_out, n_in, transposed, k_use, A, n_tok, Y, transposed ? n_in : n_out, accumulate);
}

pl_status pl_matmul_bf16_tiles_rows(const uint16_t *tiles, int64_t n_out, int64_t n_in, const pl_bf16_rows *a,
                                    float *Y, int accumulate) {
    pl_status st = rows_check(a, n_in, Y, "bf16 tiles matmul");
    return st ? st : pl_matmul_bf16_tiles_packed(tiles, n_out, n_in, 0, a->data, a->n_tok, Y, accumulate);
}

pl_status pl_matmul_bf16(pl_dtype t, const void *W, int packed, int64_t n_out, int64_t n_in, const float *X,
                         int64_t n_tok, float *Y, int accumulate) {
    weight w = make_weight(t, W, packed, n_out, n_in);
    return matmul(&w, X, n_tok, Y, accumulate, 0);
}

pl_status pl_matmul_bf16_t(pl_dtype t, const void *W, int packed, int64_t n_out, int64_t n_in, const float *X,
                           int64_t n_tok, float *Y, int accumulate) {
    weight w = make_weight(t, W, packed, n_out, n_in);
    return matmul(&w, X, n_tok, Y, accumulate, 1);
}

/* ---- the gated unit ---------------------------------------------------------------- */

size_t pl_bf16_glu_tiles_bytes(int64_t n_ff, int64_t n_in) { return 2 * pl_bf16_tiles_bytes(n_ff, n_in); }

pl_status pl_bf16_glu_tiles_pack(const uint16_t *gate, const uint16_t *up, int64_t n_ff, int64_t n_in,
                                 uint16_t *out) {
    if (!gate || !up || !out || n_ff <= 0 || n_in <= 0)
        return pl_error(PL_ERR_INVALID, "bf16 gated tiles: bad shape %lld x %lld", (long long)n_ff, (long long)n_in);
    /* panel p of each (16 features, all of the reduction) side by side */
    const size_t panel = (size_t)(up32(n_in) / PL_GEMM_KT) * PL_GEMM_TILE;
    for (int64_t p = 0; p < up32(n_ff) / 16; p++) {
        memcpy(out + (2 * p) * panel, gate + p * panel, panel * sizeof *out);
        memcpy(out + (2 * p + 1) * panel, up + p * panel, panel * sizeof *out);
    }
    return PL_OK;
}

pl_status pl_matmul_bf16_tiles_rows_blocks(const uint16_t *tiles, int64_t n_out, int64_t n_in, const pl_bf16_rows *a,
                                           pl_block_fn fn, void *ctx) {
    if (!tiles || n_out <= 0 || n_in <= 0 || !a || a->n_in != n_in || (a->n_tok > 0 && !a->data) || !fn)
        return pl_error(PL_ERR_INVALID, "bf16 tiles matmul: bad arguments (%lld x %lld, rows of %lld inputs)",
                        (long long)n_out, (long long)n_in, a ? (long long)a->n_in : -1LL);
    const int64_t T = a->n_tok;
    if (T == 0) return PL_OK;
    glu_epi e = {NULL, NULL, 0, NULL, NULL, n_out, NULL, fn, ctx};
    gemm_packed_epi(a->data, up32(T), up32(n_in), tiles, up32(n_out), NULL, 0, T, n_out, 0, pl_bf16_gemm_native(),
                    pl_num_threads(), &e);
    return PL_OK;
}

pl_status pl_matmul_bf16_glu(const uint16_t *gu, int64_t n_ff, int64_t n_in, const pl_bf16_rows *a,
                             pl_glu_act_fn act, pl_bf16_rows *h, float *G, float *U) {
    if (!gu || n_ff <= 0 || n_in <= 0 || !a || a->n_in != n_in || (a->n_tok > 0 && !a->data) || (act && !h) ||
        (!act && (!G || !U)))
        return pl_error(PL_ERR_INVALID, "bf16 gated product: bad arguments (%lld x %lld, rows of %lld inputs)",
                        (long long)n_ff, (long long)n_in, a ? (long long)a->n_in : -1LL);
    const int64_t T = a->n_tok, Mp = up32(T), Fp = up32(n_ff);
    glu_epi e = {act, NULL, Fp, G, U, n_ff, pl_kernels_active()->silu_glu32, NULL, NULL};
    if (act) {
        pl_status st = rows_reserve(h, T, n_ff);
        if (st) return st;
        e.h = h->data;
    }
    if (T == 0) return PL_OK;
    gemm_packed_epi(a->data, Mp, up32(n_in), gu, 2 * Fp, NULL, 0, T, 2 * Fp, 0, pl_bf16_gemm_native(),
                    pl_num_threads(), &e);
    return PL_OK;
}
