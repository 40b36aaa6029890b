/* access.c — read-only access to a few weights for interpretability:
 * the final norm weight, rows of the unembedding, the o_proj matrix as f32
 * (adapters included) and the gemma2 post-attention norm. Additive; the
 * forward pass does not use these. */
#include <stdlib.h>
#include <string.h>

#include "model/model_impl.h"

const float *pl_model_final_norm(const pl_model *m) { return m->out_norm; }

const float *pl_model_post_attn_norm(const pl_model *m, int layer) {
    if (layer < 0 || layer >= m->d.n_layer || !m->d.post_norms) return NULL;
    return m->layers[layer].post_attn_norm;
}

pl_status pl_model_unembed_row(const pl_model *m, int32_t tok, float *out) {
    if (tok < 0 || tok >= m->d.n_vocab)
        return pl_error(PL_ERR_RANGE, "unembedding: token %d out of range [0, %d)", (int)tok, m->d.n_vocab);
    pl_mat_row_f32(&m->output, tok, out);
    return PL_OK;
}

pl_status pl_model_o_proj_f32(const pl_model *m, int layer, float *out) {
    if (layer < 0 || layer >= m->d.n_layer)
        return pl_error(PL_ERR_RANGE, "o_proj: layer %d out of range [0, %d)", layer, m->d.n_layer);
    const pl_mat *w = &m->layers[layer].wo;
    int64_t n_in = w->n_in;
    for (int64_t r = 0; r < w->n_out; r++) pl_mat_row_f32(w, r, out + r * n_in);
    for (const pl_lora_pair *p = w->lora; p; p = p->next) {
        int64_t rank = p->a.n_out;
        for (int64_t r = 0; r < w->n_out; r++) {
            float *row = out + r * n_in;
            for (int64_t k = 0; k < rank; k++) {
                float c = p->s * p->fb[r * rank + k];
                const float *a = p->fa + k * n_in;
                for (int64_t j = 0; j < n_in; j++) row[j] += c * a[j];
            }
        }
    }
    return PL_OK;
}
