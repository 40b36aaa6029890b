/* mm.c — the model's matmuls: y = x·Wᵀ through the tensor module, plus the
 * LoRA deltas attached to W (y += s · (x·Aᵀ)·Bᵀ, PEFT/llama.cpp semantics).
 *
 * Weights are used in their stored dtype, straight from the mapping. With
 * quant_act set (the default), quantized weights take tensor's llama.cpp
 * path (activations quantized to q8_0/q8_1/q8_K, integer block dots), which
 * is what reproduces llama.cpp's numbers; f32/f16/bf16 weights always take
 * the exact path (f16/bf16 activations would only add rounding).
 *
 * Packed weights: at load, the quantized layer matrices whose dtype has a
 * native packed kernel at the active SIMD level are repacked once into
 * tensor's packed layout (a permutation of the GGUF blocks, the same size)
 * and the mapped pages they came from are released (madvise), so the copy
 * replaces the mapping in memory. w->data stays valid (reading it faults the
 * pages back in): the exact path, the training engine and row lookups use
 * it. The llama path then runs pl_matmul_packed on the copy.
 */
#define _DEFAULT_SOURCE /* madvise */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "model/model_impl.h"
#include "tensor/tensor.h"

static pl_matmul_path path_for(const pl_model *m, int dtype) {
    if (!m->opts.quant_act) return PL_MATMUL_EXACT;
    if (dtype == PL_DTYPE_F32 || dtype == PL_DTYPE_F16 || dtype == PL_DTYPE_BF16) return PL_MATMUL_EXACT;
    return PL_MATMUL_LLAMA;
}

size_t pl_mm_scratch_bytes(int64_t T, int64_t n_in) {
    /* The most any dtype and path needs for this shape (n_out does not
     * change the scratch). */
    size_t mx = 0;
    for (int t = 0; t < PL_DTYPE_COUNT; t++) {
        if (!pl_mm_dtype_ok(t) || n_in % pl_dtype_block_size((pl_dtype)t)) continue;
        for (int p = 0; p < 2; p++) {
            size_t b = pl_matmul_scratch_bytes((pl_matmul_path)p, (pl_dtype)t, 1, n_in, T);
            if (b > mx) mx = b;
        }
        size_t b = pl_matmul_packed_scratch_bytes((pl_dtype)t, 4, n_in, T);
        if (b > mx) mx = b;
    }
    return mx + 64;
}

int pl_mm_dtype_ok(int dtype) {
    if (!pl_dtype_valid(dtype)) return 0;
    return dtype != PL_DTYPE_Q8_1 && dtype != PL_DTYPE_Q8_K;
}

const char *pl_mm_dtype_name(int dtype) {
    return pl_dtype_valid(dtype) ? pl_dtype_name((pl_dtype)dtype) : "unknown";
}

size_t pl_mm_row_bytes(int dtype, int64_t n) {
    size_t rb;
    if (!pl_dtype_valid(dtype) || pl_dtype_row_bytes((pl_dtype)dtype, n, &rb) != PL_OK) return 0;
    return rb;
}

/* accumulate (y += instead of y =) only on the bf16 tiles */
static pl_status mm_plain(const pl_model *m, const pl_mat *w, const float *x, const pl_bf16_rows *xa, int64_t T,
                          float *y, int accumulate, void *scratch, size_t scratch_bytes) {
    pl_matmul_path path = path_for(m, w->dtype);
#ifdef _OPENMP
    /* A small product is done faster by this thread alone than by waking a
     * team (and idle threads spinning on a loaded machine cost a lot). The
     * thread-count setting is per calling thread, and results do not depend
     * on it (tensor.h). */
    int saved = omp_get_max_threads();
    int small = (double)w->n_out * (double)w->n_in * (double)T < 65536.0 * 8;
    if (small && saved > 1) omp_set_num_threads(1);
#endif
    if (w->tiles && path == PL_MATMUL_LLAMA) {
        pl_status st = xa ? pl_matmul_bf16_tiles_rows(w->tiles, w->n_out, w->n_in, xa, y, accumulate)
                          : pl_matmul_bf16_tiles(w->tiles, w->n_out, w->n_in, 0, x, T, y, accumulate);
#ifdef _OPENMP
        if (small && saved > 1) omp_set_num_threads(saved);
#endif
        return st ? pl_error_wrap(st, "%s", w->name ? w->name : "matmul") : PL_OK;
    }
    const int packed = w->packed && path == PL_MATMUL_LLAMA;
    size_t need = packed ? pl_matmul_packed_scratch_bytes((pl_dtype)w->dtype, w->n_out, w->n_in, T)
                         : pl_matmul_scratch_bytes(path, (pl_dtype)w->dtype, w->n_out, w->n_in, T);
    /* The runner sized its scratch for the thread count at its creation;
     * with more threads now, let the tensor module allocate. */
    if (need > scratch_bytes) scratch = NULL;
    pl_status st = packed ? pl_matmul_packed((pl_dtype)w->dtype, w->packed, w->n_out, w->n_in, x, T, y, scratch,
                                             scratch_bytes)
                          : pl_matmul(path, (pl_dtype)w->dtype, w->data, w->n_out, w->n_in, x, T, y, scratch,
                                      scratch_bytes);
#ifdef _OPENMP
    if (small && saved > 1) omp_set_num_threads(saved);
#endif
    if (st) return pl_error_wrap(st, "%s", w->name ? w->name : "matmul");
    return PL_OK;
}

/* A pair's s·u = s·x·Aᵀ on its own tiles (lora.c), rounded straight into
 * bf16 rows (*ub, in lora_tmp after u: [up32(T) x up32(r)], zero padding) */
static pl_status lora_u_rows(const pl_lora_pair *p, const pl_mat *w, const float *x, const pl_bf16_rows *xa,
                             int64_t T, float *lora_tmp, uint16_t **ub_out) {
    const int64_t r = p->a.n_out, rp = (r + 31) / 32 * 32;
    pl_status st = xa ? pl_matmul_bf16_tiles_rows(p->a.tiles, r, w->n_in, xa, lora_tmp, 0)
                      : pl_matmul_bf16_tiles(p->a.tiles, r, w->n_in, 0, x, T, lora_tmp, 0);
    uint16_t *ub = (uint16_t *)(void *)(lora_tmp + T * r);
    for (int64_t t = 0; !st && t < (T + 31) / 32 * 32; t++) {
        uint16_t *row = ub + t * rp;
        memset(row, 0, (size_t)rp * sizeof *row);
        if (t < T) pl_bf16_round_scaled(row, lora_tmp + t * r, r, p->s);
    }
    *ub_out = ub;
    return st;
}

/* The LoRA deltas of w: y += s · (x·Aᵀ)·Bᵀ for each adapter; tiled: w's
 * products run on bf16 tiles (its own or the gated unit's), the deltas too */
static pl_status mm_lora(const pl_model *m, const pl_mat *w, int tiled, const float *x, const pl_bf16_rows *xa,
                         int64_t T, float *y, void *scratch, size_t scratch_bytes, float *lora_tmp) {
    pl_status st = PL_OK;
    if (tiled) {
        /* with bf16 tiles the deltas run as bf16 products too: u = x·Aᵀ,
         * then y += (s·u)·Bᵀ (row by row independent of the batch, as the rest) */
        for (const pl_lora_pair *p = w->lora; p && !st; p = p->next) {
            const int64_t r = p->a.n_out;
            if (p->a.tiles && p->b.tiles) {
                uint16_t *ub;
                st = lora_u_rows(p, w, x, xa, T, lora_tmp, &ub);
                if (!st) st = pl_matmul_bf16_tiles_packed(p->b.tiles, w->n_out, r, 0, ub, T, y, 1);
                continue;
            }
            st = xa ? pl_matmul_bf16_rows(PL_DTYPE_F32, p->a.data, 0, r, w->n_in, xa, lora_tmp, 0)
                    : pl_matmul_bf16(PL_DTYPE_F32, p->a.data, 0, r, w->n_in, x, T, lora_tmp, 0);
            for (int64_t i = 0; !st && i < T * r; i++) lora_tmp[i] *= p->s;
            if (!st) st = pl_matmul_bf16(PL_DTYPE_F32, p->b.data, 0, w->n_out, r, lora_tmp, T, y, 1);
        }
        return st ? pl_error_wrap(st, "%s (LoRA)", w->name ? w->name : "matmul") : PL_OK;
    }
    for (const pl_lora_pair *p = w->lora; p; p = p->next) {
        /* Adapters are small and held as f32 (converted at load):
         * u[T × r] = x · Aᵀ, then y += s · u · Bᵀ. */
        int64_t r = p->a.n_out, n_out = w->n_out;
        if ((st = mm_plain(m, &p->a, x, NULL, T, lora_tmp, 0, scratch, scratch_bytes))) return st;
        const float *B = p->b.data; /* [n_out × r] */
        float s = p->s;
#pragma omp parallel for schedule(static) if (n_out * T * r >= 32768)
        for (int64_t o = 0; o < n_out; o++) {
            const float *br = B + o * r;
            for (int64_t t = 0; t < T; t++) {
                const float *u = lora_tmp + t * r;
                float acc = 0.0f;
                for (int64_t k = 0; k < r; k++) acc += br[k] * u[k];
                y[t * n_out + o] += s * acc;
            }
        }
    }
    return PL_OK;
}

size_t pl_mm_lora_tmp_bytes(int64_t T, int max_rank) {
    const size_t r = max_rank > 0 ? (size_t)max_rank : 1, Tp = ((size_t)T + 31) / 32 * 32, rp = (r + 31) / 32 * 32;
    return (size_t)T * r * sizeof(float) + Tp * rp * sizeof(uint16_t);
}

/* One adapter on a matrix on tiles, x already in bf16 rows: u first, then
 * the frozen product and the delta in one pass over y (the bits of the
 * product then the delta added) */
static int lora_fused(const pl_model *m, const pl_mat *w, const pl_bf16_rows *xa) {
    const pl_lora_pair *p = w->lora;
    return xa && p && !p->next && p->a.tiles && p->b.tiles && w->tiles && path_for(m, w->dtype) == PL_MATMUL_LLAMA &&
           pl_bf16_gemm_native();
}

static pl_status mm_fused(const pl_mat *w, const pl_bf16_rows *xa, int64_t T, float *y, int accumulate,
                          float *lora_tmp) {
    const pl_lora_pair *p = w->lora;
    uint16_t *ub;
    pl_status st = lora_u_rows(p, w, NULL, xa, T, lora_tmp, &ub);
    if (!st)
        st = pl_matmul_bf16_tiles_rows_delta(w->tiles, w->n_out, w->n_in, xa, p->b.tiles, p->a.n_out, ub, y,
                                             accumulate);
    return st ? pl_error_wrap(st, "%s (with its LoRA)", w->name ? w->name : "matmul") : PL_OK;
}

pl_status pl_mm(const pl_model *m, const pl_mat *w, const float *x, const pl_bf16_rows *xa, int64_t T, float *y,
                void *scratch, size_t scratch_bytes, float *lora_tmp) {
    if (lora_fused(m, w, xa)) return mm_fused(w, xa, T, y, 0, lora_tmp);
    pl_status st = mm_plain(m, w, x, xa, T, y, 0, scratch, scratch_bytes);
    return st ? st : mm_lora(m, w, w->tiles && path_for(m, w->dtype) == PL_MATMUL_LLAMA, x, xa, T, y, scratch,
                             scratch_bytes, lora_tmp);
}

pl_status pl_mm_acc(const pl_model *m, const pl_mat *w, const float *x, const pl_bf16_rows *xa, int64_t T, float *y,
                    void *scratch, size_t scratch_bytes, float *lora_tmp) {
    if (!w->tiles || path_for(m, w->dtype) != PL_MATMUL_LLAMA)
        return pl_error(PL_ERR_INVALID, "%s: accumulating product without bf16 tiles", w->name ? w->name : "matmul");
    if (lora_fused(m, w, xa)) return mm_fused(w, xa, T, y, 1, lora_tmp);
    pl_status st = mm_plain(m, w, x, xa, T, y, 1, scratch, scratch_bytes);
    return st ? st : mm_lora(m, w, 1, x, xa, T, y, scratch, scratch_bytes, lora_tmp);
}

pl_status pl_mm_glu(const pl_model *m, const pl_layer *L, const pl_bf16_rows *xa, pl_glu_act_fn act,
                    pl_bf16_rows *h, float *g, float *u, void *scratch, size_t scratch_bytes, float *lora_tmp,
                    int *fused) {
    const int64_t T = xa->n_tok, F = L->w_gate.n_out, D = L->w_gate.n_in;
    *fused = act && !L->w_gate.lora && !L->w_up.lora;
    pl_status st = pl_matmul_bf16_glu(L->gu_tiles, F, D, xa, *fused ? act : NULL, h, g, u);
    if (st) return pl_error_wrap(st, "%s", L->w_gate.name ? L->w_gate.name : "gate/up");
    if (*fused) return PL_OK;
    st = mm_lora(m, &L->w_gate, 1, NULL, xa, T, g, scratch, scratch_bytes, lora_tmp);
    return st ? st : mm_lora(m, &L->w_up, 1, NULL, xa, T, u, scratch, scratch_bytes, lora_tmp);
}

/* Release the pages of [p, p + n) of a read-only file mapping, the first
 * partial page included, the last partial one not (the next slice reads
 * it). Nothing is lost: the mapping is never written, and a released page
 * is read back from the file if touched again. */
static void release_pages(const void *p, size_t n) {
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0) return;
    uintptr_t a = (uintptr_t)p & ~((uintptr_t)ps - 1);
    uintptr_t e = ((uintptr_t)p + n) & ~((uintptr_t)ps - 1);
    if (e > a) (void)madvise((void *)a, e - a, MADV_DONTNEED);
}

static pl_status pack_mat(pl_mat *w) {
    if (w->packed || !pl_pack_supported((pl_dtype)w->dtype, w->n_out, w->n_in) || !pl_pack_native((pl_dtype)w->dtype))
        return PL_OK;
    size_t bytes = w->row_bytes * (size_t)w->n_out;
    void *p = pl_alloc_aligned(bytes);
    if (!p) return pl_error(PL_ERR_NOMEM, "%s: cannot allocate %zu bytes for packed weights", w->name, bytes);
    /* in slices of about 1 MiB, releasing the mapped pages behind each, so
     * the peak memory is the packed copy plus one slice */
    const int64_t rows = (int64_t)((((size_t)1 << 20) / w->row_bytes + 3) & ~(size_t)3);
    const uint8_t *src = w->data;
    size_t released = 0;
    for (int64_t r0 = 0; r0 < w->n_out; r0 += rows) {
        const int64_t nr = w->n_out - r0 < rows ? w->n_out - r0 : rows;
        const size_t off = (size_t)r0 * w->row_bytes, len = (size_t)nr * w->row_bytes;
        pl_status st = pl_pack_weights((pl_dtype)w->dtype, src + off, nr, w->n_in, (uint8_t *)p + off);
        if (st) {
            pl_free_aligned(p);
            return pl_error_wrap(st, "%s", w->name ? w->name : "pack");
        }
        release_pages(src + released, off + len - released);
        released = off + len;
    }
    w->packed = p;
    return PL_OK;
}

/* bf16 tiles of a quantized matrix, the mapped pages released behind it */
/* whether a matrix is made into bf16 tiles (quantized weights, not yet) */
static int wants_tiles(const pl_mat *w) {
    return !w->tiles && w->dtype != PL_DTYPE_F32 && w->dtype != PL_DTYPE_F16 && w->dtype != PL_DTYPE_BF16;
}

static pl_status tile_mat(pl_mat *w) {
    if (!wants_tiles(w)) return PL_OK;
    size_t bytes = pl_bf16_tiles_bytes(w->n_out, w->n_in);
    uint16_t *p = bytes ? pl_alloc_aligned(bytes) : NULL;
    if (!p) return pl_error(PL_ERR_NOMEM, "%s: cannot allocate %zu bytes for bf16 tiles", w->name, bytes);
    pl_status st = pl_bf16_tiles_pack((pl_dtype)w->dtype, w->data, 0, w->n_out, w->n_in, 0, p);
    if (st) {
        pl_free_aligned(p);
        return pl_error_wrap(st, "%s", w->name ? w->name : "tiles");
    }
    release_pages(w->data, w->row_bytes * (size_t)w->n_out);
    w->tiles = p;
    return PL_OK;
}

/* q, k and v's tiles packed one after another in one buffer (L->qkv_tiles)
 * where their rows are whole 32-column panels; nothing when they are not */
static pl_status qkv_tiles(pl_layer *L) {
    pl_mat *ws[3] = {&L->wq, &L->wk, &L->wv};
    size_t bytes[3], total = 0;
    for (int i = 0; i < 3; i++) {
        const pl_mat *w = ws[i];
        if (!wants_tiles(w) || w->n_in != L->wq.n_in || w->n_out % 32) return PL_OK;
        total += bytes[i] = pl_bf16_tiles_bytes(w->n_out, w->n_in);
    }
    uint16_t *p = pl_alloc_aligned(total);
    if (!p) return pl_error(PL_ERR_NOMEM, "%s: cannot allocate %zu bytes for bf16 tiles", L->wq.name, total);
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        pl_mat *w = ws[i];
        pl_status st = pl_bf16_tiles_pack((pl_dtype)w->dtype, w->data, 0, w->n_out, w->n_in, 0, p + off / 2);
        if (st) {
            for (int j = 0; j < i; j++) ws[j]->tiles = NULL;
            pl_free_aligned(p);
            return pl_error_wrap(st, "%s", w->name ? w->name : "tiles");
        }
        release_pages(w->data, w->row_bytes * (size_t)w->n_out);
        w->tiles = p + off / 2;
        off += bytes[i];
    }
    L->qkv_tiles = p;
    return PL_OK;
}

/* gate and up as one (pl_bf16_glu_tiles_pack), their own tiles freed */
static pl_status glu_tiles(pl_layer *L) {
    if (!L->w_gate.tiles || !L->w_up.tiles || L->w_gate.n_out != L->w_up.n_out || L->w_gate.n_in != L->w_up.n_in)
        return PL_OK;
    size_t bytes = pl_bf16_glu_tiles_bytes(L->w_gate.n_out, L->w_gate.n_in);
    uint16_t *p = pl_alloc_aligned(bytes);
    if (!p) return pl_error(PL_ERR_NOMEM, "%s: cannot allocate %zu bytes for bf16 tiles", L->w_gate.name, bytes);
    pl_status st = pl_bf16_glu_tiles_pack(L->w_gate.tiles, L->w_up.tiles, L->w_gate.n_out, L->w_gate.n_in, p);
    if (st) {
        pl_free_aligned(p);
        return pl_error_wrap(st, "%s", L->w_gate.name ? L->w_gate.name : "gate/up");
    }
    pl_free_aligned(L->w_gate.tiles);
    pl_free_aligned(L->w_up.tiles);
    L->w_gate.tiles = L->w_up.tiles = NULL;
    L->gu_tiles = p;
    return PL_OK;
}

pl_status pl_mm_pack_model(pl_model *m) {
    if (!m->opts.quant_act || !m->layers) return PL_OK;
    const int tiles = m->opts.bf16_tiles && pl_bf16_gemm_native();
    if (!tiles && !m->opts.pack_weights) return PL_OK;
    for (int l = 0; l < m->d.n_layer; l++) {
        pl_layer *L = &m->layers[l];
        pl_status sq = tiles ? qkv_tiles(L) : PL_OK;
        if (sq) return sq;
        pl_mat *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) {
            pl_status st = tiles ? tile_mat(ws[i]) : pack_mat(ws[i]);
            if (st) return st;
        }
        pl_status st = tiles ? glu_tiles(L) : PL_OK;
        if (st) return st;
    }
    /* the unembedding too; with tied embeddings the embedding lookup keeps
     * reading rows of tok_embd from the mapping */
    return tiles ? tile_mat(&m->output) : pack_mat(&m->output);
}

void pl_mm_unpack_model(pl_model *m) {
    pl_free_aligned(m->output.packed);
    pl_free_aligned(m->output.tiles);
    m->output.packed = NULL;
    m->output.tiles = NULL;
    if (!m->layers) return;
    for (int l = 0; l < m->d.n_layer; l++) {
        pl_layer *L = &m->layers[l];
        pl_mat *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) {
            pl_free_aligned(ws[i]->packed);
            if (!L->qkv_tiles || i >= 3) pl_free_aligned(ws[i]->tiles); /* q, k, v's are in qkv_tiles */
            ws[i]->packed = NULL;
            ws[i]->tiles = NULL;
        }
        pl_free_aligned(L->qkv_tiles);
        L->qkv_tiles = NULL;
        pl_free_aligned(L->gu_tiles);
        L->gu_tiles = NULL;
    }
}

void pl_mat_row_f32(const pl_mat *w, int64_t row, float *out) {
    pl_status st = pl_dequantize_row((pl_dtype)w->dtype, (const uint8_t *)w->data + (size_t)row * w->row_bytes, out,
                                     w->n_in);
    (void)st;
}

uint16_t pl_model_f32_to_f16(float f) { return pl_fp32_to_fp16(f); }
float pl_model_f16_to_f32(uint16_t h) { return pl_fp16_to_fp32(h); }
