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
    pl_model_opts o = {1, -1};
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
        free(m->loras[i]);
    }
    free(m->loras);
    for (int i = m->n_files - 1; i >= 0; i--) m->file_close[i](m->files[i]);
    free(m->files);
    free(m->file_close);
    free(m->path);
    free(m);
}

/* ---- GGUF helpers -------------------------------------------------------- */

static pl_status get_u32_req(const pl_gguf *g, const char *arch, const char *suffix, int *out) {
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    uint32_t v = 0;
    pl_status st = pl_gguf_get_u32(g, key, &v);
    if (st == PL_ERR_NOT_FOUND) return pl_error(PL_ERR_FORMAT, "%s: missing metadata key %s", pl_gguf_name(g), key);
    if (st) return st;
    if (v == 0 || v > (1u << 30)) return pl_error(PL_ERR_FORMAT, "%s: %s = %u out of range", pl_gguf_name(g), key, v);
    *out = (int)v;
    return PL_OK;
}

static pl_status get_u32_opt(const pl_gguf *g, const char *arch, const char *suffix, int *out) {
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    uint32_t v = (uint32_t)*out;
    pl_status st = pl_gguf_get_u32(g, key, &v);
    if (st == PL_ERR_NOT_FOUND) return PL_OK;
    if (st) return st;
    if (v > (1u << 30)) return pl_error(PL_ERR_FORMAT, "%s: %s = %u out of range", pl_gguf_name(g), key, v);
    *out = (int)v;
    return PL_OK;
}

static pl_status get_f32_opt(const pl_gguf *g, const char *arch, const char *suffix, float *out) {
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    pl_status st = pl_gguf_get_f32(g, key, out);
    if (st == PL_ERR_NOT_FOUND) return PL_OK;
    if (st) return st;
    if (!isfinite(*out)) return pl_error(PL_ERR_FORMAT, "%s: %s is not finite", pl_gguf_name(g), key);
    return PL_OK;
}

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
    *out = (pl_mat){t->data, (int)t->type, n_in, n_out, rb, t->name, NULL};
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

/* ---- descriptor from GGUF metadata ---------------------------------------- */

static pl_status desc_from_gguf(const pl_gguf *g, pl_arch_desc *d, char *arch, size_t arch_cap) {
    const char *fn = pl_gguf_name(g);
    memset(d, 0, sizeof *d);
    char gtype[64] = "";
    if (pl_gguf_get_str_copy(g, "general.type", gtype, sizeof gtype) == PL_OK && strcmp(gtype, "adapter") == 0)
        return pl_error(PL_ERR_INVALID, "%s: this is an adapter (general.type = adapter), not a model; pass it with --lora",
                        fn);
    pl_status st = pl_gguf_get_str_copy(g, "general.architecture", arch, arch_cap);
    if (st == PL_ERR_NOT_FOUND) return pl_error(PL_ERR_FORMAT, "%s: missing general.architecture", fn);
    if (st) return st;
    if (!strcmp(arch, "llama")) {
        d->arch = PL_ARCH_LLAMA;
    } else if (!strcmp(arch, "gemma2")) {
        d->arch = PL_ARCH_GEMMA2;
    } else {
        return pl_error(PL_ERR_UNSUPPORTED, "%s: architecture '%s' is not supported (llama, gemma2)", fn, arch);
    }
    if ((st = get_u32_req(g, arch, "embedding_length", &d->n_embd)) ||
        (st = get_u32_req(g, arch, "block_count", &d->n_layer)) ||
        (st = get_u32_req(g, arch, "feed_forward_length", &d->n_ff)) ||
        (st = get_u32_req(g, arch, "attention.head_count", &d->n_head)))
        return st;
    d->n_head_kv = d->n_head;
    d->n_ctx_train = 2048;
    if ((st = get_u32_opt(g, arch, "attention.head_count_kv", &d->n_head_kv)) ||
        (st = get_u32_opt(g, arch, "context_length", &d->n_ctx_train)))
        return st;
    if (d->n_head_kv < 1 || d->n_head % d->n_head_kv)
        return pl_error(PL_ERR_FORMAT, "%s: head_count %d is not a multiple of head_count_kv %d", fn, d->n_head,
                        d->n_head_kv);
    d->head_dim = d->n_embd / d->n_head;
    if ((st = get_u32_opt(g, arch, "attention.key_length", &d->head_dim))) return st;
    int vlen = d->head_dim;
    if ((st = get_u32_opt(g, arch, "attention.value_length", &vlen))) return st;
    if (vlen != d->head_dim || d->head_dim < 2 || d->head_dim % 2)
        return pl_error(PL_ERR_UNSUPPORTED, "%s: key/value head sizes %d/%d not supported", fn, d->head_dim, vlen);
    d->n_rot = d->head_dim;
    if ((st = get_u32_opt(g, arch, "rope.dimension_count", &d->n_rot))) return st;
    if (d->n_rot < 2 || d->n_rot > d->head_dim || d->n_rot % 2)
        return pl_error(PL_ERR_FORMAT, "%s: rope.dimension_count %d invalid for head size %d", fn, d->n_rot,
                        d->head_dim);
    d->rope_base = 10000.0f;
    d->norm_eps = 1e-5f;
    if ((st = get_f32_opt(g, arch, "rope.freq_base", &d->rope_base)) ||
        (st = get_f32_opt(g, arch, "attention.layer_norm_rms_epsilon", &d->norm_eps)))
        return st;
    float scale = 1.0f;
    if ((st = get_f32_opt(g, arch, "rope.scaling.factor", &scale))) return st;
    char stype[32] = "";
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    if (pl_gguf_get_str_copy(g, key, stype, sizeof stype) == PL_OK && stype[0] && strcmp(stype, "none") &&
        !(strcmp(stype, "linear") == 0 && scale == 1.0f))
        return pl_error(PL_ERR_UNSUPPORTED, "%s: rope scaling '%s' is not supported", fn, stype);
    d->q_scale = 1.0f / sqrtf((float)d->head_dim);
    d->embd_scale = 1.0f;
    d->bos_id = d->eos_id = -1;
    uint32_t u;
    if (pl_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u) == PL_OK) d->bos_id = (int)u;
    if (pl_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u) == PL_OK) d->eos_id = (int)u;
    if (d->arch == PL_ARCH_LLAMA) {
        d->act = PL_ACT_SILU;
        d->rope = PL_ROPE_NORM;
    } else {
        d->act = PL_ACT_GELU_TANH;
        d->rope = PL_ROPE_NEOX;
        d->post_norms = 1;
        d->embd_scale = sqrtf((float)d->n_embd);
        /* llama.cpp: 1/sqrt(head_dim) for 2B/9B, 1/sqrt(n_embd/n_head) for 27B (46 layers). */
        if (d->n_layer == 46) d->q_scale = 1.0f / sqrtf((float)(d->n_embd / d->n_head));
        if ((st = get_f32_opt(g, arch, "attn_logit_softcapping", &d->attn_softcap)) ||
            (st = get_f32_opt(g, arch, "final_logit_softcapping", &d->final_softcap)) ||
            (st = get_u32_opt(g, arch, "attention.sliding_window", &d->swa_window)))
            return st;
        if (d->attn_softcap < 0 || d->final_softcap < 0)
            return pl_error(PL_ERR_FORMAT, "%s: negative soft-cap", fn);
    }
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
    char arch[64];
    pl_arch_desc *d = &m->d;
    if ((st = desc_from_gguf(g, d, arch, sizeof arch))) return st;
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
    }
    m->swa_layer = calloc((size_t)d->n_layer, 1);
    m->layers = calloc((size_t)d->n_layer, sizeof *m->layers);
    if (!m->swa_layer || !m->layers) return pl_error(PL_ERR_NOMEM, "out of memory");
    if (d->arch == PL_ARCH_GEMMA2)
        for (int l = 0; l < d->n_layer; l++) m->swa_layer[l] = (l % 2 == 0);
    d->swa_layer = m->swa_layer;

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
    *out = m;
    return PL_OK;
}

/* ---- LoRA adapters ------------------------------------------------------- */

static pl_mat *find_mat(pl_model *m, const char *name) {
    if (!strcmp(name, "output.weight") && !m->d.tied_output) return &m->output;
    for (int l = 0; l < m->d.n_layer; l++) {
        pl_layer *L = &m->layers[l];
        pl_mat *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof mats / sizeof *mats; i++)
            if (mats[i]->name && !strcmp(mats[i]->name, name)) return mats[i];
    }
    return NULL;
}

/* Copy a 2-D adapter tensor [ne1 × ne0] to f32. */
static pl_status adapter_f32(const pl_gguf *g, const pl_gguf_tensor *t, float **out) {
    if (!pl_dtype_valid((int)t->type))
        return pl_error(PL_ERR_UNSUPPORTED, "%s: tensor %s: unsupported dtype", pl_gguf_name(g), t->name);
    size_t n = (size_t)t->ne[0] * (size_t)t->ne[1];
    float *v = malloc(n * sizeof *v);
    if (!v) return pl_error(PL_ERR_NOMEM, "out of memory");
    size_t rb = pl_mm_row_bytes((int)t->type, t->ne[0]);
    for (int64_t r = 0; r < t->ne[1]; r++) {
        pl_status st = pl_dequantize_row((pl_dtype)t->type, (const uint8_t *)t->data + (size_t)r * rb,
                                         v + (size_t)r * (size_t)t->ne[0], t->ne[0]);
        if (st) {
            free(v);
            return pl_error_wrap(st, "%s: tensor %s", pl_gguf_name(g), t->name);
        }
    }
    *out = v;
    return PL_OK;
}

pl_status pl_model_add_lora(pl_model *m, const char *path, float scale) {
    pl_gguf *g = NULL;
    pl_status st = pl_gguf_open(path, &g);
    if (st) return st;
    char buf[64] = "";
    if (pl_gguf_get_str_copy(g, "general.type", buf, sizeof buf) != PL_OK || strcmp(buf, "adapter")) {
        st = pl_error(PL_ERR_FORMAT, "%s: not an adapter (general.type is '%s', want 'adapter')", path, buf);
        goto done;
    }
    buf[0] = 0;
    if (pl_gguf_get_str_copy(g, "adapter.type", buf, sizeof buf) != PL_OK || strcmp(buf, "lora")) {
        st = pl_error(PL_ERR_UNSUPPORTED, "%s: adapter.type is '%s', only 'lora' is supported", path, buf);
        goto done;
    }
    float alpha = 0.0f;
    if ((st = pl_gguf_get_f32(g, "adapter.lora.alpha", &alpha)) && st != PL_ERR_NOT_FOUND) goto done;
    st = PL_OK;
    static const char *const arch_names[] = {"llama", "mistral", "gemma2"};
    buf[0] = 0;
    if (pl_gguf_get_str_copy(g, "general.architecture", buf, sizeof buf) == PL_OK && buf[0]) {
        const char *want = arch_names[m->d.arch];
        int ok = !strcmp(buf, want) || (m->d.arch == PL_ARCH_MISTRAL && !strcmp(buf, "llama"));
        if (!ok) {
            st = pl_error(PL_ERR_INVALID, "%s: adapter is for architecture '%s', the model is '%s'", path, buf, want);
            goto done;
        }
    }
    /* Validate every pair first, then attach: nothing changes on error. */
    int64_t nt = pl_gguf_n_tensors(g), npairs = 0;
    for (int64_t i = 0; i < nt; i++) {
        const pl_gguf_tensor *a = pl_gguf_tensor_at(g, i);
        size_t len = strlen(a->name);
        if (len > 7 && !strcmp(a->name + len - 7, ".lora_b")) continue;
        if (len <= 7 || strcmp(a->name + len - 7, ".lora_a")) {
            st = pl_error(PL_ERR_FORMAT, "%s: tensor %s is neither .lora_a nor .lora_b", path, a->name);
            goto done;
        }
        char base[256], bname[264];
        if (len - 7 >= sizeof base) {
            st = pl_error(PL_ERR_FORMAT, "%s: tensor name too long", path);
            goto done;
        }
        memcpy(base, a->name, len - 7);
        base[len - 7] = 0;
        snprintf(bname, sizeof bname, "%s.lora_b", base);
        const pl_gguf_tensor *b = pl_gguf_find_tensor(g, bname);
        if (!b) {
            st = pl_error(PL_ERR_FORMAT, "%s: %s has no matching %s", path, a->name, bname);
            goto done;
        }
        pl_mat *w = find_mat(m, base);
        if (!w) {
            st = pl_error(PL_ERR_NOT_FOUND, "%s: adapted tensor %s is not a matrix of model %s", path, base, m->path);
            goto done;
        }
        if (a->n_dims != 2 || b->n_dims != 2 || a->ne[0] != w->n_in || b->ne[1] != w->n_out || a->ne[1] != b->ne[0] ||
            a->ne[1] < 1 || a->ne[1] > 65536) {
            char sa[64], sb[64];
            shape_str(a->ne, 2, sa, sizeof sa);
            shape_str(b->ne, 2, sb, sizeof sb);
            st = pl_error(PL_ERR_INVALID,
                          "%s: %s %s / lora_b %s do not fit %s [%lld, %lld] of %s: an adapter for a different base model?",
                          path, a->name, sa, sb, base, (long long)w->n_in, (long long)w->n_out, m->path);
            goto done;
        }
        npairs++;
    }
    if (npairs == 0) {
        st = pl_error(PL_ERR_FORMAT, "%s: adapter has no lora_a/lora_b tensors", path);
        goto done;
    }
    pl_lora_pair **all = realloc(m->loras, (size_t)(m->n_loras + npairs) * sizeof *all);
    if (!all) {
        st = pl_error(PL_ERR_NOMEM, "out of memory");
        goto done;
    }
    m->loras = all;
    for (int64_t i = 0; i < nt; i++) {
        const pl_gguf_tensor *a = pl_gguf_tensor_at(g, i);
        size_t len = strlen(a->name);
        if (strcmp(a->name + len - 7, ".lora_a")) continue;
        char base[256], bname[264];
        memcpy(base, a->name, len - 7);
        base[len - 7] = 0;
        snprintf(bname, sizeof bname, "%s.lora_b", base);
        const pl_gguf_tensor *b = pl_gguf_find_tensor(g, bname);
        pl_mat *w = find_mat(m, base);
        pl_lora_pair *p = calloc(1, sizeof *p);
        float *fa = NULL, *fb = NULL;
        if (!p || (st = adapter_f32(g, a, &fa)) || (st = adapter_f32(g, b, &fb))) {
            free(p);
            free(fa);
            free(fb);
            if (!st) st = pl_error(PL_ERR_NOMEM, "out of memory");
            goto done; /* pairs attached so far stay valid and owned by m */
        }
        int64_t r = a->ne[1];
        p->a = (pl_mat){fa, PL_DTYPE_F32, w->n_in, r, (size_t)w->n_in * sizeof(float), w->name, NULL};
        p->b = (pl_mat){fb, PL_DTYPE_F32, r, w->n_out, (size_t)r * sizeof(float), w->name, NULL};
        /* llama.cpp: scale · alpha / rank, or scale alone when alpha is 0 */
        p->fa = fa;
        p->fb = fb;
        p->s = alpha != 0.0f ? scale * alpha / (float)r : scale;
        p->next = w->lora;
        w->lora = p;
        m->loras[m->n_loras++] = p;
        if (r > m->max_lora_rank) m->max_lora_rank = (int)r;
    }
done:
    pl_gguf_close(g);
    return st;
}

pl_status pl_model_add_lora_spec(pl_model *m, const char *spec) {
    char path[4096];
    float scale = 1.0f;
    size_t n = strlen(spec);
    if (n == 0 || n >= sizeof path) return pl_error(PL_ERR_INVALID, "--lora: bad value '%s'", spec);
    memcpy(path, spec, n + 1);
    char *colon = strrchr(path, ':');
    if (colon) {
        char *end;
        double v = strtod(colon + 1, &end);
        if (colon[1] && !*end) {
            if (!isfinite(v)) return pl_error(PL_ERR_INVALID, "--lora: scale '%s' is not a number", colon + 1);
            scale = (float)v;
            *colon = 0;
        }
    }
    return pl_model_add_lora(m, path, scale);
}
