/* packed.c — weights repacked once into a row-interleaved layout, and the
 * llama-path matmul over them (docs/kernels.md, "Packed weights").
 *
 * Layout (q4_0, q4_1, q8_0): rows in groups of PACK_ROWS = 4. Group g
 * holds, for each 32-block b in order, a "group block" of
 *   qs[4][q]    the 4 rows' quant bytes as stored in GGUF (q = 16 for q4_0 and
 *               q4_1, nibble layout kept; 32 for q8_0)
 *   d[4]        the 4 rows' f16 scales
 *   m[4]        (q4_1 only) the 4 rows' f16 mins
 * = 72 (q4_0), 80 (q4_1) or 136 (q8_0) bytes, four GGUF blocks' worth: the
 * packed matrix is a permutation of the GGUF bytes and has the same size. A
 * 64-byte load then gives 32 elements of 4 rows (q4: one row per 128-bit
 * lane) or of 2 rows (q8_0: one per 256-bit half), which is what the
 * AVX-512 kernels multiply against a broadcast activation block.
 *
 * pl_matmul_packed quantizes the activation rows like pl_matmul's llama
 * path, then runs the level's native kernel over (groups x tokens) tiles;
 * a level without one unpacks each group into GGUF rows and uses its dotq.
 * Threads split groups (static schedule); every output is one accumulator
 * of one kernel call, so Y depends neither on the thread count nor on the
 * batch size.
 */
#include "tensor/tensor_impl.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* bytes of the scale fields before qs in a GGUF block (d, or d and m) */
static int pack_geom(pl_dtype t, size_t *blk, size_t *head) {
    switch (t) {
    case PL_DTYPE_Q4_0: *blk = sizeof(blk_q4_0); *head = 2; return 1;
    case PL_DTYPE_Q4_1: *blk = sizeof(blk_q4_1); *head = 4; return 1;
    case PL_DTYPE_Q8_0: *blk = sizeof(blk_q8_0); *head = 2; return 1;
    default: return 0;
    }
}

int pl_pack_supported(pl_dtype t, int64_t n_out, int64_t n_in) {
    size_t blk, head;
    if (!pl_dtype_valid((int)t) || !pack_geom(t, &blk, &head)) return 0;
    return n_out > 0 && n_in > 0 && n_out % PACK_ROWS == 0 && n_in % QK32 == 0;
}

int pl_pack_native(pl_dtype t) {
    return pl_dtype_valid((int)t) && pl_kernels_active()->packed[t].kern != NULL;
}

/* group block offsets, q = quant bytes per block (16 or 32): qs of row r at
 * q*r, scale field f (0 = d, 1 = m) of row r at 4q + 8f + 2r */
static void pack_block(const uint8_t *src, size_t blk, size_t head, int r, uint8_t *gb) {
    const size_t q = blk - head;
    memcpy(gb + q * (size_t)r, src + head, q);
    for (size_t f = 0; f < head / 2; f++) memcpy(gb + 4 * q + 8 * f + 2 * (size_t)r, src + 2 * f, 2);
}

static void unpack_block(const uint8_t *gb, size_t blk, size_t head, int r, uint8_t *dst) {
    const size_t q = blk - head;
    memcpy(dst + head, gb + q * (size_t)r, q);
    for (size_t f = 0; f < head / 2; f++) memcpy(dst + 2 * f, gb + 4 * q + 8 * f + 2 * (size_t)r, 2);
}

pl_status pl_pack_weights(pl_dtype t, const void *W, int64_t n_out, int64_t n_in, void *P) {
    size_t blk, head;
    if (!pl_pack_supported(t, n_out, n_in) || !pack_geom(t, &blk, &head))
        return pl_error(PL_ERR_INVALID, "pack: no packed layout for %s [%lld x %lld]", pl_dtype_name(t),
                        (long long)n_out, (long long)n_in);
    if (!W || !P) return pl_error(PL_ERR_INVALID, "pack: NULL buffer");
    const int64_t nb = n_in / QK32;
    const size_t wrow = (size_t)nb * blk, gbb = PACK_ROWS * blk;
    const uint8_t *w = W;
    uint8_t *p = P;
    for (int64_t g = 0; g < n_out / PACK_ROWS; g++)
        for (int r = 0; r < PACK_ROWS; r++) {
            const uint8_t *row = w + (size_t)(PACK_ROWS * g + r) * wrow;
            uint8_t *gp = p + (size_t)g * PACK_ROWS * wrow;
            for (int64_t b = 0; b < nb; b++) pack_block(row + (size_t)b * blk, blk, head, r, gp + (size_t)b * gbb);
        }
    return PL_OK;
}

pl_status pl_unpack_row(pl_dtype t, const void *P, int64_t n_out, int64_t n_in, int64_t row, void *dst) {
    size_t blk, head;
    if (!pl_pack_supported(t, n_out, n_in) || !pack_geom(t, &blk, &head))
        return pl_error(PL_ERR_INVALID, "unpack: no packed layout for %s [%lld x %lld]", pl_dtype_name(t),
                        (long long)n_out, (long long)n_in);
    if (row < 0 || row >= n_out) return pl_error(PL_ERR_RANGE, "unpack: row %lld of %lld", (long long)row, (long long)n_out);
    const int64_t nb = n_in / QK32;
    const size_t wrow = (size_t)nb * blk, gbb = PACK_ROWS * blk;
    const uint8_t *gp = (const uint8_t *)P + (size_t)(row / PACK_ROWS) * PACK_ROWS * wrow;
    for (int64_t b = 0; b < nb; b++)
        unpack_block(gp + (size_t)b * gbb, blk, head, (int)(row % PACK_ROWS), (uint8_t *)dst + (size_t)b * blk);
    return PL_OK;
}

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Scratch: [n_tok prepped (or plain quantized) activation rows]
 *          [per thread: one quantized row + 4 unpacked weight rows] */
typedef struct {
    size_t act_row, xrow, act_total, per_thread, total;
} pplan;

static int packed_plan(const pl_kernels *k, pl_dtype t, int64_t n_in, int64_t n_tok, int nthreads, pplan *p) {
    pl_dtype act;
    size_t wrow, a;
    memset(p, 0, sizeof *p);
    if (pl_llama_act_dtype(t, &act) != PL_OK || pl_dtype_row_bytes(act, n_in, &p->act_row) != PL_OK ||
        pl_dtype_row_bytes(t, n_in, &wrow) != PL_OK)
        return 0;
    const pl_packed_kernels *pk = &k->packed[t];
    p->xrow = pk->kern && pk->xprep ? pk->xprep_bytes(n_in) : p->act_row;
    if (!pl_mul_ok(p->xrow, (size_t)n_tok, &p->act_total)) return 0;
    p->act_total = round64(p->act_total);
    if (!pl_mul_ok(wrow, PACK_ROWS, &a)) return 0;
    if (!pl_add_ok(round64(p->act_row), round64(a), &p->per_thread)) return 0;
    if (!pl_mul_ok(p->per_thread, (size_t)nthreads, &a)) return 0;
    return pl_add_ok(p->act_total, a, &p->total);
}

size_t pl_matmul_packed_scratch_bytes(pl_dtype t, int64_t n_out, int64_t n_in, int64_t n_tok) {
    pplan p;
    if (!pl_pack_supported(t, n_out, n_in) || n_tok < 0) return 0;
    if (!packed_plan(pl_kernels_active(), t, n_in, n_tok, pl_num_threads(), &p)) return 0;
    return p.total;
}

/* groups per thread work unit: 4 (16 rows), 16 for wide matrices */
static int64_t group_tile(int64_t n_groups) { return n_groups >= 256 ? 16 : 4; }

pl_status pl_matmul_packed(pl_dtype t, const void *P, int64_t n_out, int64_t n_in, const float *X, int64_t n_tok,
                           float *Y, void *scratch, size_t scratch_bytes) {
    if (!pl_pack_supported(t, n_out, n_in))
        return pl_error(PL_ERR_INVALID, "matmul packed: no packed layout for %s [%lld x %lld]", pl_dtype_name(t),
                        (long long)n_out, (long long)n_in);
    if (n_tok < 0) return pl_error(PL_ERR_INVALID, "matmul packed: negative token count");
    if (n_tok == 0) return PL_OK;
    if (!P || !X || !Y) return pl_error(PL_ERR_INVALID, "matmul packed: NULL buffer");
    size_t ysz;
    if (!pl_mul_ok((size_t)n_out, (size_t)n_tok, &ysz) || ysz > PTRDIFF_MAX / sizeof(float))
        return pl_error(PL_ERR_INVALID, "matmul packed: output %lld x %lld overflows", (long long)n_tok,
                        (long long)n_out);
    const int nthreads = pl_num_threads();
    const pl_kernels *k = pl_kernels_active();
    pplan pl;
    if (!packed_plan(k, t, n_in, n_tok, nthreads, &pl))
        return pl_error(PL_ERR_INVALID, "matmul packed: %s [%lld x %lld] by %lld tokens: scratch size overflows",
                        pl_dtype_name(t), (long long)n_out, (long long)n_in, (long long)n_tok);
    void *own = NULL;
    if (!scratch) {
        own = scratch = pl_alloc_aligned(pl.total);
        if (!own) return pl_error(PL_ERR_NOMEM, "matmul packed: cannot allocate %zu bytes of scratch", pl.total);
    } else if (scratch_bytes < pl.total || ((uintptr_t)scratch & 63)) {
        return pl_error(PL_ERR_INVALID, "matmul packed: scratch of %zu bytes (need %zu, 64-byte aligned)",
                        scratch_bytes, pl.total);
    }
    pl_dtype act;
    pl_llama_act_dtype(t, &act);
    size_t blk, head, wrow;
    pack_geom(t, &blk, &head);
    pl_dtype_row_bytes(t, n_in, &wrow);
    const size_t gstride = PACK_ROWS * wrow, xrow = pl.xrow, act_row = pl.act_row;
    const int64_t ngroups = n_out / PACK_ROWS, gt = group_tile(ngroups), nb = n_in / QK32;
    const pl_packed_kernels *pk = &k->packed[t];
    const pl_quant_fn quant = k->quant_act[act];
    const pl_dotq_fn dot = k->dotq[t];
    const uint8_t *pb = P;
    uint8_t *xp = scratch;
    const int parallel = nthreads > 1 && (double)n_out * (double)n_in * (double)n_tok >= 65536.0;
    #pragma omp parallel num_threads(nthreads) if (parallel)
    {
#ifdef _OPENMP
        const int tid = omp_get_thread_num();
#else
        const int tid = 0;
#endif
        uint8_t *qtmp = (uint8_t *)scratch + pl.act_total + (size_t)tid * pl.per_thread;
        uint8_t *rows = qtmp + round64(act_row);
        #pragma omp for schedule(static)
        for (int64_t tk = 0; tk < n_tok; tk++) {
            if (pk->kern && pk->xprep) {
                quant(X + tk * n_in, qtmp, n_in);
                pk->xprep(qtmp, xp + (size_t)tk * xrow, n_in);
            } else {
                quant(X + tk * n_in, xp + (size_t)tk * xrow, n_in);
            }
        }
        #pragma omp for schedule(static)
        for (int64_t g0 = 0; g0 < ngroups; g0 += gt) {
            const int64_t g1 = g0 + gt < ngroups ? g0 + gt : ngroups;
            if (pk->kern) {
                /* the group tile stays in L1 while the tokens stream past */
                for (int64_t t0 = 0; t0 < n_tok; t0 += pk->max_nt) {
                    const int nt = (int)(n_tok - t0 < pk->max_nt ? n_tok - t0 : pk->max_nt);
                    for (int64_t g = g0; g < g1; g += pk->max_ng) {
                        const int ng = (int)(g1 - g < pk->max_ng ? g1 - g : pk->max_ng);
                        pk->kern(pb + (size_t)g * gstride, gstride, ng, xp + (size_t)t0 * xrow, xrow, nt, n_in,
                                 Y + t0 * n_out + PACK_ROWS * g, n_out);
                    }
                }
                continue;
            }
            for (int64_t g = g0; g < g1; g++) {
                const uint8_t *gp = pb + (size_t)g * gstride;
                for (int r = 0; r < PACK_ROWS; r++)
                    for (int64_t b = 0; b < nb; b++)
                        unpack_block(gp + (size_t)b * PACK_ROWS * blk, blk, head, r, rows + (size_t)r * wrow + (size_t)b * blk);
                for (int64_t tk = 0; tk < n_tok; tk++)
                    for (int r = 0; r < PACK_ROWS; r++)
                        Y[tk * n_out + PACK_ROWS * g + r] = dot(rows + (size_t)r * wrow, xp + (size_t)tk * xrow, n_in);
            }
        }
    }
    pl_free_aligned(own);
    return PL_OK;
}
