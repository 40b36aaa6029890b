/* load_hf.c — build a pl_model from an HF directory: config.json (through
 * io's pl_model_meta) and *.safetensors (mapped, used in place).
 *
 * Tensor names follow transformers (modeling_llama.py, modeling_mistral.py,
 * modeling_gemma2.py). Differences from a GGUF of the same model, all
 * handled here or by the descriptor:
 *   - q/k rows are in the rotate-half layout, so RoPE is NEOX (a GGUF llama
 *     has them permuted for adjacent-pair RoPE);
 *   - Gemma 2 RMSNorm weights are stored as w and used as 1 + w;
 *   - Gemma 2 has four norms per layer (input, post_attention,
 *     pre_feedforward, post_feedforward), llama/mistral two (input,
 *     post_attention = the pre-FFN norm);
 *   - llama3 RoPE scaling comes from rope_scaling, not a tensor;
 *   - Mistral's sliding_window applies on every layer when set.
 * Matrices get llama.cpp names (blk.L.attn_q.weight, ...) so GGUF LoRA
 * adapters can find them.
 *
 * Supported dtypes: F32, F16, BF16 (what HF checkpoints hold).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"
#include "model/model_impl.h"
#include "tensor/tensor.h"

pl_status pl_model_load_hf(pl_model *m, const char *dir);
pl_status pl_model_keep_file(pl_model *m, void *file, void (*close)(void *));
pl_status pl_model_desc_from_meta(const pl_model_meta *mm, const char *file, pl_arch_desc *d);
pl_status pl_model_swa_layers(pl_model *m, const pl_model_meta *mm);
pl_status pl_model_llama3_freqs(pl_model *m, const pl_model_meta *mm);

static void st_close_cb(void *p) { pl_st_close(p); }

/* Matrix [n_out, n_in] (safetensors shape order) named hf; gguf_name is
 * copied into the model's name pool. */
static pl_status bind(pl_model *m, const pl_safetensors *st, const char *hf, const char *gguf_name, int64_t n_in,
                      int64_t n_out, pl_mat *out) {
    const pl_st_tensor *t = pl_st_find(st, hf);
    if (!t) return pl_error(PL_ERR_NOT_FOUND, "%s: missing tensor %s", m->path, hf);
    if (t->n_dims != 2 || t->shape[0] != n_out || t->shape[1] != n_in)
        return pl_error(PL_ERR_FORMAT, "%s: tensor %s has shape [%lld, %lld] (%u dims), expected [%lld, %lld]", t->file,
                        hf, (long long)t->shape[0], (long long)(t->n_dims > 1 ? t->shape[1] : 0), t->n_dims,
                        (long long)n_out, (long long)n_in);
    if (t->ggml_type != PL_DTYPE_F32 && t->ggml_type != PL_DTYPE_F16 && t->ggml_type != PL_DTYPE_BF16)
        return pl_error(PL_ERR_UNSUPPORTED, "%s: tensor %s has dtype %s (supported: F32, F16, BF16)", t->file, hf,
                        t->dtype);
    size_t rb = pl_mm_row_bytes(t->ggml_type, n_in);
    if (rb == 0 || (uint64_t)rb * (uint64_t)n_out != t->nbytes)
        return pl_error(PL_ERR_FORMAT, "%s: tensor %s: size does not match its shape", t->file, hf);
    char *nm = strdup(gguf_name);
    if (!nm) return pl_error(PL_ERR_NOMEM, "out of memory");
    char **pool = realloc(m->names, (size_t)(m->n_names + 1) * sizeof *pool);
    if (!pool) {
        free(nm);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    m->names = pool;
    m->names[m->n_names++] = nm;
    *out = (pl_mat){t->data, t->ggml_type, n_in, n_out, rb, nm, NULL, NULL, NULL};
    return PL_OK;
}

static pl_status vec(pl_model *m, const pl_safetensors *st, const char *hf, int64_t n, float add, float **out) {
    const pl_st_tensor *t = pl_st_find(st, hf);
    if (!t) return pl_error(PL_ERR_NOT_FOUND, "%s: missing tensor %s", m->path, hf);
    if (t->n_elements != n || t->n_dims != 1)
        return pl_error(PL_ERR_FORMAT, "%s: tensor %s has %lld elements, expected %lld", t->file, hf,
                        (long long)t->n_elements, (long long)n);
    if (t->ggml_type != PL_DTYPE_F32 && t->ggml_type != PL_DTYPE_F16 && t->ggml_type != PL_DTYPE_BF16)
        return pl_error(PL_ERR_UNSUPPORTED, "%s: tensor %s has dtype %s", t->file, hf, t->dtype);
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) return pl_error(PL_ERR_NOMEM, "out of memory");
    pl_status s = pl_dequantize_row((pl_dtype)t->ggml_type, t->data, v, n);
    if (s) {
        free(v);
        return pl_error_wrap(s, "%s: tensor %s", t->file, hf);
    }
    for (int64_t i = 0; i < n; i++) v[i] += add;
    *out = v;
    return PL_OK;
}

pl_status pl_model_load_hf(pl_model *m, const char *dir) {
    pl_model_meta mm;
    pl_status s = pl_model_meta_from_hf(dir, &mm);
    if (s) return s;
    pl_arch_desc *d = &m->d;
    if ((s = pl_model_desc_from_meta(&mm, dir, d)) || (s = pl_model_swa_layers(m, &mm))) return s;
    d->rope = PL_ROPE_NEOX; /* rotate_half on the stored rows */
    m->hf_layout = 1;
    if (mm.rope_scaling == PL_ROPE_SCALING_LLAMA3 && (s = pl_model_llama3_freqs(m, &mm))) return s;
    pl_safetensors *st = NULL;
    if ((s = pl_st_open(dir, &st))) return s;
    if ((s = pl_model_keep_file(m, st, st_close_cb))) {
        pl_st_close(st);
        return s;
    }
    const int64_t D = d->n_embd, qd = (int64_t)d->n_head * d->head_dim, kvd = (int64_t)d->n_head_kv * d->head_dim;
    const int64_t F = d->n_ff;
    const pl_st_tensor *te = pl_st_find(st, "model.embed_tokens.weight");
    if (!te) return pl_error(PL_ERR_NOT_FOUND, "%s: missing tensor model.embed_tokens.weight", dir);
    if (te->n_dims != 2 || te->shape[0] < 1 || te->shape[0] > (1 << 24))
        return pl_error(PL_ERR_FORMAT, "%s: model.embed_tokens.weight has a bad shape", te->file);
    d->n_vocab = (int)te->shape[0];
    if ((s = bind(m, st, "model.embed_tokens.weight", "token_embd.weight", D, d->n_vocab, &m->tok_embd))) return s;
    if (!d->tied_output && pl_st_find(st, "lm_head.weight")) {
        if ((s = bind(m, st, "lm_head.weight", "output.weight", D, d->n_vocab, &m->output))) return s;
    } else {
        d->tied_output = 1;
        m->output = m->tok_embd;
    }
    int gemma = d->arch == PL_ARCH_GEMMA2;
    float add = gemma ? 1.0f : 0.0f; /* Gemma RMSNorm: x̂ · (1 + w) */
    if ((s = vec(m, st, "model.norm.weight", D, add, &m->out_norm))) return s;
    m->layers = calloc((size_t)d->n_layer, sizeof *m->layers);
    if (!m->layers) return pl_error(PL_ERR_NOMEM, "out of memory");
    for (int l = 0; l < d->n_layer; l++) {
        pl_layer *L = &m->layers[l];
        char h[128], g[64];
#define HF(x) (snprintf(h, sizeof h, "model.layers.%d.%s.weight", l, x), h)
#define GG(x) (snprintf(g, sizeof g, "blk.%d.%s.weight", l, x), g)
        if ((s = vec(m, st, HF("input_layernorm"), D, add, &L->attn_norm)) ||
            (s = bind(m, st, HF("self_attn.q_proj"), GG("attn_q"), D, qd, &L->wq)) ||
            (s = bind(m, st, HF("self_attn.k_proj"), GG("attn_k"), D, kvd, &L->wk)) ||
            (s = bind(m, st, HF("self_attn.v_proj"), GG("attn_v"), D, kvd, &L->wv)) ||
            (s = bind(m, st, HF("self_attn.o_proj"), GG("attn_output"), qd, D, &L->wo)) ||
            (s = bind(m, st, HF("mlp.gate_proj"), GG("ffn_gate"), D, F, &L->w_gate)) ||
            (s = bind(m, st, HF("mlp.up_proj"), GG("ffn_up"), D, F, &L->w_up)) ||
            (s = bind(m, st, HF("mlp.down_proj"), GG("ffn_down"), F, D, &L->w_down)))
            return s;
        if (gemma) {
            if ((s = vec(m, st, HF("post_attention_layernorm"), D, add, &L->post_attn_norm)) ||
                (s = vec(m, st, HF("pre_feedforward_layernorm"), D, add, &L->ffn_norm)) ||
                (s = vec(m, st, HF("post_feedforward_layernorm"), D, add, &L->post_ffn_norm)))
                return s;
        } else if ((s = vec(m, st, HF("post_attention_layernorm"), D, add, &L->ffn_norm))) {
            return s;
        }
#undef HF
#undef GG
    }
    return PL_OK;
}
