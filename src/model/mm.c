/* mm.c — the model's matmuls: y = x·Wᵀ through the tensor module, plus the
 * LoRA deltas attached to W (y += s · (x·Aᵀ)·Bᵀ, PEFT/llama.cpp semantics).
 *
 * Weights are used in their stored dtype, straight from the mapping. With
 * quant_act set (the default), quantized weights take tensor's llama.cpp
 * path (activations quantized to q8_0/q8_1/q8_K, integer block dots), which
 * is what reproduces llama.cpp's numbers; f32/f16/bf16 weights always take
 * the exact path (f16/bf16 activations would only add rounding).
 */
#include <string.h>
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

static pl_status mm_plain(const pl_model *m, const pl_mat *w, const float *x, int64_t T, float *y, void *scratch,
                          size_t scratch_bytes) {
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
    size_t need = pl_matmul_scratch_bytes(path, (pl_dtype)w->dtype, w->n_out, w->n_in, T);
    /* The runner sized its scratch for the thread count at its creation;
     * with more threads now, let the tensor module allocate. */
    if (need > scratch_bytes) scratch = NULL;
    pl_status st = pl_matmul(path, (pl_dtype)w->dtype, w->data, w->n_out, w->n_in, x, T, y, scratch, scratch_bytes);
#ifdef _OPENMP
    if (small && saved > 1) omp_set_num_threads(saved);
#endif
    if (st) return pl_error_wrap(st, "%s", w->name ? w->name : "matmul");
    return PL_OK;
}

pl_status pl_mm(const pl_model *m, const pl_mat *w, const float *x, int64_t T, float *y, void *scratch,
                size_t scratch_bytes, float *lora_tmp) {
    pl_status st = mm_plain(m, w, x, T, y, scratch, scratch_bytes);
    if (st) return st;
    for (const pl_lora_pair *p = w->lora; p; p = p->next) {
        /* Adapters are small and held as f32 (converted at load):
         * u[T × r] = x · Aᵀ, then y += s · u · Bᵀ. */
        int64_t r = p->a.n_out, n_out = w->n_out;
        if ((st = mm_plain(m, &p->a, x, T, lora_tmp, scratch, scratch_bytes))) return st;
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

void pl_mat_row_f32(const pl_mat *w, int64_t row, float *out) {
    pl_status st = pl_dequantize_row((pl_dtype)w->dtype, (const uint8_t *)w->data + (size_t)row * w->row_bytes, out,
                                     w->n_in);
    (void)st;
}

uint16_t pl_model_f32_to_f16(float f) { return pl_fp32_to_fp16(f); }
float pl_model_f16_to_f32(uint16_t h) { return pl_fp16_to_fp32(h); }
