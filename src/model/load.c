/* load.c — build a pl_model from a GGUF file (llama.cpp tensor names and
 * metadata keys) and attach LoRA adapters (llama.cpp adapter GGUF).
 *
 * The descriptor comes from the file's metadata; every tensor is checked
 * for presence, shape and a dtype the tensor module can multiply before it
 * is used. Matrices stay in the mapping; norm vectors and adapter matrices
 * (small) are copied to f32.
 *
 * Architectures: GGUF `llama` (Llama 2/3.x, Mistral — llama.cpp has no
 * sliding window for this arch) and `gemma2`. HF directories are loaded in
 * load_hf.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/io.h"
#include "model/model_impl.h"
#include "tensor/tensor.h"

pl_model_opts pl_model_opts_default(void) {
    pl_model_opts o = {1, -1, 1, 0};
    return o;
}

const pl_arch_desc *pl_model_desc(const pl_model *m) { return &m->d; }
const char *pl_model_path(const pl_model *m) { return m->path; }

static void gguf_close_cb(void *p) { pl_gguf_close(p); }

/* Keep a file open for the model's lifetime. */
pl_status pl_model_keep_file(pl_model *m, void *file, void (*close)(void *));
pl_status pl_model_keep_file(pl_model *m, void *file, void (*close)(void *)) {
    void **f = realloc(m->files, (size_t)(m->n_files + 1) * sizeof *f);
    if (!f) return pl_error(PL_ERR_NOMEM, "out of memory");
    m->files = f;
    void (**c)(void *) = realloc(m->file_close, (size_t)(m->n_files + 1) * sizeof *c);
    if (!c) return pl_error(PL_ERR_NOMEM, "out of memory");
    m->file_close = c;
    m->files[m->n_files] = file;
    m->file_close[m->n_files] = close;
    m->n_files++;
    return PL_OK;
}

void pl_model_free(pl_model *m) {
    if (!m) return;
    pl_mm_unpack_model(m);
    if (m->layers)
        for (int l = 0; l < m->d.n_layer; l++) {
            free(m->layers[l].attn_norm);
            free(m->layers[l].ffn_norm);
            free(m->layers[l].post_attn_norm);
            free(m->layers[l].post_ffn_norm);
        }
    free(m->layers);
    free(m->out_norm);
    free(m->rope_freqs);
    free(m->swa_layer);
    for (int i = 0; i < m->n_loras; i++) {
        free(m->loras[i]->fa);
        free(m->loras[i]->fb);
        pl_free_aligned(m->loras[i]->a.tiles);
        pl_free_aligned(m->loras[i]->b.tiles);
        free(m->loras[i]);
    }
    free(m->loras);
    for (int i = 0; i < m->n_names; i++) free(m->names[i]);
    free(m->names);
    for (int i = m->n_files - 1; i >= 0; i--) m->file_close[i](m->files[i]);
    free(m->files);
    free(m->file_close);
    free(m->path);
    free(m);
}

/* ---- GGUF helpers -------------------------------------------------------- */

static void shape_str(const int64_t *ne, int n, char *buf, size_t cap) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (int i = 0; i < n && o < cap; i++) o += (size_t)snprintf(buf + o, cap - o, i ? ", %lld" : "%lld", (long long)ne[i]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

/* A matrix tensor with ne = [n_in, n_out] in a dtype we can multiply. */
static pl_status bind_mat(const pl_gguf *g, const char *name, int64_t n_in, int64_t n_out, pl_mat *out) {
    const pl_gguf_tensor *t = pl_gguf_find_tensor(g, name);
    if (!t) return pl_error(PL_ERR_NOT_FOUND, "%s: missing tensor %s", pl_gguf_name(g), name);
    int64_t want[2] = {n_in, n_out};
    if (t->n_dims > 2 || t->ne[0] != n_in || t->ne[1] != n_out || t->ne[2] != 1 || t->ne[3] != 1) {
        char got[96], exp[64];
        shape_str(t->ne, (int)t->n_dims, got, sizeof got);
        shape_str(want, 2, exp, sizeof exp);
        return pl_error(PL_ERR_FORMAT, "%s: tensor %s has shape %s, expected %s", pl_gguf_name(g), name, got, exp);
    }
    if (!pl_mm_dtype_ok((int)t->type))
        return pl_error(PL_ERR_UNSUPPORTED, "%s: tensor %s has dtype %s, which phishlens cannot multiply",
                        pl_gguf_name(g), name, pl_ggml_type((uint32_t)t->type) ? pl_ggml_type(t->type)->name : "?");
    size_t rb = pl_mm_row_bytes((int)t->type, n_in);
    if (rb == 0 || (uint64_t)rb * (uint64_t)n_out != t->nbytes)
        return pl_error(PL_ERR_FORMAT, "%s: tensor %s: %llu bytes do not match its shape and dtype", pl_gguf_name(g),
                        name, (unsigned long long)t->nbytes);
    *out = (pl_mat){t->data, (int)t->type, n_in, n_out, rb, t->name, NULL, NULL, NULL};
    return PL_OK;
}

/* A vector tensor of n elements, copied to f32 (plus `add`). */
static pl_status load_vec(const pl_gguf *g, const char *name, int64_t n, float add, float **out) {
    const pl_gguf_tensor *t = pl_gguf_find_tensor(g, name);
    if (!t) return pl_error(PL_ERR_NOT_FOUND, "%s: missing tensor %s", pl_gguf_name(g), name);
    if (t->n_elements != n || t->ne[0] != n)
        return pl_error(PL_ERR_FORMAT, "%s: tensor %s has %lld elements, expected %lld", pl_gguf_name(g), name,
                        (long long)t->n_elements, (long long)n);
    if (!pl_dtype_valid((int)t->type))
        return pl_error(PL_ERR_UNSUPPORTED, "%s: tensor %s: unsupported dtype", pl_gguf_name(g), name);
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) return pl_error(PL_ERR_NOMEM, "out of memory");
    pl_status st = pl_dequantize_row((pl_dtype)t->type, t->data, v, n);
    if (st) {
        free(v);
        return pl_error_wrap(st, "%s: tensor %s", pl_gguf_name(g), name);
    }
    for (int64_t i = 0; i < n; i++) v[i] += add;
    *out = v;
    return PL_OK;
}

/* ---- descriptor from io's model metadata --------------------------------- */

/* Fill the descriptor from pl_model_meta (GGUF keys or config.json). The
 * RoPE layout and the llama3 frequency factors are set by the callers,
 * which know the weight layout. */
pl_status pl_model_desc_from_meta(const pl_model_meta *mm, const char *file, pl_arch_desc *d);
pl_status pl_model_desc_from_meta(const pl_model_meta *mm, const char *file, pl_arch_desc *d) {
    memset(d, 0, sizeof *d);
    if (mm->is_adapter)
        return pl_error(PL_ERR_INVALID, "%s: this is an adapter (general.type = adapter), not a model; pass it with --lora",
                        file);
    if (mm->arch != PL_ARCH_LLAMA && mm->arch != PL_ARCH_MISTRAL && mm->arch != PL_ARCH_GEMMA2)
        return pl_error(PL_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported (llama, mistral, gemma2)", file,
                        mm->arch_name);
    if (mm->vocab_only) return pl_error(PL_ERR_FORMAT, "%s: the file has no weights (vocabulary only)", file);
    d->arch = mm->arch;
#define INTF(dst, src, what) do { \
        if ((src) < 1 || (src) > (1 << 30)) \
            return pl_error(PL_ERR_FORMAT, "%s: %s = %lld is missing or out of range", file, what, (long long)(src)); \
        dst = (int)(src); } while (0)
    INTF(d->n_embd, mm->d_model, "embedding size");
    INTF(d->n_layer, mm->n_layers, "layer count");
    INTF(d->n_head, mm->n_heads, "head count");
    INTF(d->n_head_kv, mm->n_kv_heads, "kv head count");
    INTF(d->head_dim, mm->head_dim, "head size");
    INTF(d->n_ff, mm->d_ff, "feed-forward size");
    INTF(d->n_rot, mm->rope_dim, "rope dimension count");
#undef INTF
    d->n_ctx_train = mm->n_ctx > 0 && mm->n_ctx < (1 << 30) ? (int)mm->n_ctx : 2048;
    if (d->n_head % d->n_head_kv)
        return pl_error(PL_ERR_FORMAT, "%s: head count %d is not a multiple of kv head count %d", file, d->n_head,
                        d->n_head_kv);
    if (mm->head_dim_v != mm->head_dim || d->head_dim % 2)
        return pl_error(PL_ERR_UNSUPPORTED, "%s: key/value head sizes %lld/%lld are not supported", file,
                        (long long)mm->head_dim, (long long)mm->head_dim_v);
    if (d->n_rot > d->head_dim || d->n_rot % 2)
        return pl_error(PL_ERR_FORMAT, "%s: rope dimension %d invalid for head size %d", file, d->n_rot, d->head_dim);
    d->rope_base = mm->rope_base > 0 ? (float)mm->rope_base : 10000.0f;
    d->norm_eps = (float)mm->norm_eps;
    if (!(d->norm_eps > 0) || !isfinite(d->norm_eps)) return pl_error(PL_ERR_FORMAT, "%s: bad norm epsilon", file);
    if (mm->rope_scaling == PL_ROPE_SCALING_LINEAR && mm->rope_factor != 1.0)
        return pl_error(PL_ERR_UNSUPPORTED, "%s: linear rope scaling (factor %g) is not supported", file, mm->rope_factor);
    if (mm->rope_scaling == PL_ROPE_SCALING_YARN || mm->rope_scaling == PL_ROPE_SCALING_OTHER)
        return pl_error(PL_ERR_UNSUPPORTED, "%s: rope scaling '%s' is not supported", file,
                        pl_rope_scaling_name(mm->rope_scaling));
    d->q_scale = 1.0f / sqrtf((float)mm->query_pre_attn_scalar);
    d->embd_scale = 1.0f;
    d->bos_id = mm->bos_id >= 0 && mm->bos_id < (1 << 30) ? (int)mm->bos_id : -1;
    d->eos_id = mm->eos_id >= 0 && mm->eos_id < (1 << 30) ? (int)mm->eos_id : -1;
    d->tied_output = mm->tied_output;
    d->rope = mm->rope_neox ? PL_ROPE_NEOX : PL_ROPE_NORM;
    if (mm->sliding_window > 0) {
        if (mm->sliding_window > (1 << 30)) return pl_error(PL_ERR_FORMAT, "%s: sliding window out of range", file);
        d->swa_window = (int)mm->sliding_window;
    }
    if (mm->arch == PL_ARCH_GEMMA2) {
        d->act = PL_ACT_GELU_TANH;
        d->post_norms = 1;
        d->embd_scale = sqrtf((float)d->n_embd);
        d->attn_softcap = (float)mm->attn_softcap;
        d->final_softcap = (float)mm->final_softcap;
        if (d->attn_softcap < 0 || d->final_softcap < 0) return pl_error(PL_ERR_FORMAT, "%s: negative soft-cap", file);
    } else {
        d->act = PL_ACT_SILU;
    }
    return PL_OK;
}

/* llama3 RoPE scaling (HF modeling_rope_utils._compute_llama3_parameters):
 * for inverse frequency f_i = base^(-2i/n_rot), wavelength w = 2π/f_i:
 * w < orig/high: unchanged; w > orig/low: f/factor; between: a smooth
 * blend (1-s)·f/factor + s·f with s = (orig/w - low)/(high - low).
 * Stored as divisors f_i / f'_i, the form GGUF's rope_freqs.weight holds. */
pl_status pl_model_llama3_freqs(pl_model *m, const pl_model_meta *mm);
pl_status pl_model_llama3_freqs(pl_model *m, const pl_model_meta *mm) {
    int half = m->d.n_rot / 2;
    double factor = mm->rope_factor, lo = mm->rope_low_freq_factor, hi = mm->rope_high_freq_factor;
    double orig = (double)mm->rope_orig_ctx;
    if (!(factor > 0) || !(lo > 0) || !(hi > lo) || !(orig > 0))
        return pl_error(PL_ERR_FORMAT, "%s: llama3 rope scaling needs factor, low/high frequency factors and the "
                        "original context", m->path);
    m->rope_freqs = malloc((size_t)half * sizeof(float));
    if (!m->rope_freqs) return pl_error(PL_ERR_NOMEM, "out of memory");
    const double pi = 3.14159265358979323846;
    for (int i = 0; i < half; i++) {
        double f = pow((double)m->d.rope_base, -2.0 * i / m->d.n_rot);
        double wl = 2 * pi / f, div;
        if (wl < orig / hi) div = 1.0;
        else if (wl > orig / lo) div = factor;
        else {
            double sm = (orig / wl - lo) / (hi - lo);
            div = 1.0 / ((1 - sm) / factor + sm);
        }
        m->rope_freqs[i] = (float)div;
    }
    m->d.rope_freqs = m->rope_freqs;
    return PL_OK;
}

/* Which layers use the sliding window (swa_every: 2 = even layers, 1 = all). */
pl_status pl_model_swa_layers(pl_model *m, const pl_model_meta *mm);
pl_status pl_model_swa_layers(pl_model *m, const pl_model_meta *mm) {
    m->swa_layer = calloc((size_t)m->d.n_layer, 1);
    if (!m->swa_layer) return pl_error(PL_ERR_NOMEM, "out of memory");
    if (m->d.swa_window > 0)
        for (int l = 0; l < m->d.n_layer; l++)
            m->swa_layer[l] = mm->swa_every == 1 || (mm->swa_every == 2 && l % 2 == 0);
    m->d.swa_layer = m->swa_layer;
    return PL_OK;
}

static pl_status load_gguf(pl_model *m, const char *path) {
    pl_gguf *g = NULL;
    pl_status st = pl_gguf_open(path, &g);
    if (st) return st;
    if ((st = pl_model_keep_file(m, g, gguf_close_cb))) {
        pl_gguf_close(g);
        return st;
    }
    pl_arch_desc *d = &m->d;
    pl_model_meta mm;
    if ((st = pl_model_meta_from_gguf(g, &mm)) || (st = pl_model_desc_from_meta(&mm, path, d))) return st;
    if ((st = pl_model_swa_layers(m, &mm))) return st;
    const int64_t D = d->n_embd, qd = (int64_t)d->n_head * d->head_dim, kvd = (int64_t)d->n_head_kv * d->head_dim;
    const int64_t F = d->n_ff;

    /* vocabulary size from the embedding matrix */
    const pl_gguf_tensor *te = pl_gguf_find_tensor(g, "token_embd.weight");
    if (!te) return pl_error(PL_ERR_NOT_FOUND, "%s: missing tensor token_embd.weight", path);
    if (te->n_dims != 2 || te->ne[1] < 1 || te->ne[1] > (1 << 24))
        return pl_error(PL_ERR_FORMAT, "%s: token_embd.weight has a bad shape", path);
    d->n_vocab = (int)te->ne[1];
    if ((st = bind_mat(g, "token_embd.weight", D, d->n_vocab, &m->tok_embd))) return st;
    if (pl_gguf_find_tensor(g, "output.weight")) {
        if ((st = bind_mat(g, "output.weight", D, d->n_vocab, &m->output))) return st;
    } else {
        d->tied_output = 1;
        m->output = m->tok_embd;
    }
    if ((st = load_vec(g, "output_norm.weight", D, 0.0f, &m->out_norm))) return st;

    /* llama3 rope scaling: per-pair frequency factors */
    if (pl_gguf_find_tensor(g, "rope_freqs.weight")) {
        if ((st = load_vec(g, "rope_freqs.weight", d->n_rot / 2, 0.0f, &m->rope_freqs))) return st;
        for (int i = 0; i < d->n_rot / 2; i++)
            if (!(m->rope_freqs[i] > 0.0f) || !isfinite(m->rope_freqs[i]))
                return pl_error(PL_ERR_FORMAT, "%s: rope_freqs.weight[%d] = %g is not a positive number", path, i,
                                (double)m->rope_freqs[i]);
        d->rope_freqs = m->rope_freqs;
    } else if (mm.rope_scaling == PL_ROPE_SCALING_LLAMA3) {
        if ((st = pl_model_llama3_freqs(m, &mm))) return st;
    }
    m->layers = calloc((size_t)d->n_layer, sizeof *m->layers);
    if (!m->layers) return pl_error(PL_ERR_NOMEM, "out of memory");

    for (int l = 0; l < d->n_layer; l++) {
        pl_layer *L = &m->layers[l];
        char nm[96];
#define NAME(s) (snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, s), nm)
        if ((st = load_vec(g, NAME("attn_norm"), D, 0.0f, &L->attn_norm)) ||
            (st = load_vec(g, NAME("ffn_norm"), D, 0.0f, &L->ffn_norm)) ||
            (st = bind_mat(g, NAME("attn_q"), D, qd, &L->wq)) || (st = bind_mat(g, NAME("attn_k"), D, kvd, &L->wk)) ||
            (st = bind_mat(g, NAME("attn_v"), D, kvd, &L->wv)) ||
            (st = bind_mat(g, NAME("attn_output"), qd, D, &L->wo)) ||
            (st = bind_mat(g, NAME("ffn_gate"), D, F, &L->w_gate)) ||
            (st = bind_mat(g, NAME("ffn_up"), D, F, &L->w_up)) || (st = bind_mat(g, NAME("ffn_down"), F, D, &L->w_down)))
            return st;
        if (d->post_norms &&
            ((st = load_vec(g, NAME("post_attention_norm"), D, 0.0f, &L->post_attn_norm)) ||
             (st = load_vec(g, NAME("post_ffw_norm"), D, 0.0f, &L->post_ffn_norm))))
            return st;
#undef NAME
    }
    return PL_OK;
}

pl_status pl_model_load_hf(pl_model *m, const char *dir);

static void finish_desc(pl_model *m) {
    pl_arch_desc *d = &m->d;
    int64_t w = d->n_embd;
    if ((int64_t)d->n_head * d->head_dim > w) w = (int64_t)d->n_head * d->head_dim;
    if (d->n_ff > w) w = d->n_ff;
    m->max_n_in = w;
    if (m->opts.gelu_fp16 >= 0) d->gelu_fp16 = m->opts.gelu_fp16;
}

pl_status pl_model_load(const char *path, const pl_model_opts *opts, pl_model **out) {
    *out = NULL;
    if (!path) return pl_error(PL_ERR_INVALID, "model: no path");
    pl_model *m = calloc(1, sizeof *m);
    if (!m) return pl_error(PL_ERR_NOMEM, "out of memory");
    m->opts = opts ? *opts : pl_model_opts_default();
    m->path = strdup(path);
    if (!m->path) {
        free(m);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    struct stat sb;
    pl_status st;
    if (stat(path, &sb) != 0) {
        st = pl_error(PL_ERR_IO, "%s: no such file or directory", path);
    } else if (S_ISDIR(sb.st_mode)) {
        st = pl_model_load_hf(m, path);
    } else {
        st = load_gguf(m, path);
        /* llama.cpp's CPU GELU goes through an fp16 table. */
        if (!st) m->d.gelu_fp16 = 1;
    }
    if (st) {
        pl_model_free(m);
        return st;
    }
    finish_desc(m);
    if ((st = pl_mm_pack_model(m))) {
        pl_model_free(m);
        return st;
    }
    *out = m;
    return PL_OK;
}
