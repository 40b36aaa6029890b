/* export.c — adapters out of a trainer: llama.cpp's LoRA GGUF and PEFT's
 * adapter_model.safetensors + adapter_config.json.
 *
 * GGUF layout (llama.cpp convert_lora_to_gguf.py / llama-adapter.cpp):
 * general.architecture = the base's, general.type = "adapter",
 * adapter.type = "lora", adapter.lora.alpha (f32); tensors
 * "<base name>.lora_a" ne = [n_in, r] and ".lora_b" ne = [r, n_out], so the
 * row-major A [r, n_in] and B [n_out, r] are written as they are. llama.cpp
 * holds q/k rows permuted for adjacent-pair RoPE: B's q/k rows are permuted
 * when the base is an HF model (rotate-half rows), and the other way round
 * for PEFT when the base is a GGUF.
 *
 * safetensors (huggingface/safetensors "format"): u64 LE header length, a
 * JSON header {name: {dtype, shape, data_offsets}}, padded with spaces to a
 * multiple of 8, then the data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"
#include "tensor/tensor.h"
#include "train/train_impl.h"

/* B [n_out, r] as f32, q/k rows permuted between rotate-half (HF) and
 * adjacent-pair (GGUF) order within each head when to_gguf differs from the
 * model's layout. HF row j*half + i <-> GGUF row 2i + j. */
static float *b_rows(const pl_trainer *t, const pl_tr_tensor *B, int want_gguf) {
    int64_t n_out = B->rows, r = B->cols;
    float *out = malloc((size_t)(n_out * r) * sizeof *out);
    if (!out) return NULL;
    const pl_real *src = t->params + B->offset;
    int qk = B->target == 0 || B->target == 1;
    int hf_model = t->m->hf_layout;
    int permute = qk && (want_gguf ? hf_model : !hf_model);
    int hd = t->hd, half = hd / 2;
    for (int64_t o = 0; o < n_out; o++) {
        int64_t so = o;
        if (permute) {
            int64_t h = o / hd, e = o % hd;
            if (want_gguf) so = h * hd + (e % 2) * half + e / 2; /* GGUF row 2i+j <- HF row j*half+i */
            else so = h * hd + 2 * (e % half) + e / half;        /* HF row j*half+i <- GGUF row 2i+j */
        }
        for (int64_t k = 0; k < r; k++) out[o * r + k] = (float)src[so * r + k];
    }
    return out;
}

static float *to_f32(const pl_real *p, int64_t n) {
    float *out = malloc((size_t)(n ? n : 1) * sizeof *out);
    if (out)
        for (int64_t i = 0; i < n; i++) out[i] = (float)p[i];
    return out;
}

static const pl_mat *base_mat(const pl_trainer *t, int l, int k) {
    const pl_layer *ly = &t->m->layers[l];
    const pl_mat *mats[PL_TGT_COUNT] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo, &ly->w_gate, &ly->w_up, &ly->w_down};
    return mats[k];
}

pl_status pl_trainer_save_gguf(const pl_trainer *t, const char *path) {
    if (t->r == 0) return pl_error(PL_ERR_INVALID, "%s: no LoRA parameters to export", path);
    pl_gguf_writer *w = NULL;
    pl_status st = pl_gguf_writer_new(&w);
    if (st) return st;
    const char *arch = t->d.arch == PL_ARCH_GEMMA2 ? "gemma2" : "llama"; /* llama.cpp runs Mistral as llama */
    float **bufs = calloc((size_t)t->n_tensors + 1, sizeof *bufs);
    if (!bufs) st = pl_error(PL_ERR_NOMEM, "out of memory");
    if (!st) st = pl_gguf_writer_add_str(w, "general.architecture", arch);
    if (!st) st = pl_gguf_writer_add_str(w, "general.type", "adapter");
    if (!st) st = pl_gguf_writer_add_str(w, "general.name", "phishlens LoRA");
    if (!st) st = pl_gguf_writer_add_str(w, "adapter.type", "lora");
    if (!st) st = pl_gguf_writer_add_f32(w, "adapter.lora.alpha", (float)t->cfg.lora_alpha);
    for (int i = 0; i < t->n_tensors && !st; i++) {
        const pl_tr_tensor *e = &t->tensors[i];
        if (e->target < 0 || e->is_b) continue;
        const pl_tr_tensor *B = e + 1;
        const pl_mat *bm = base_mat(t, e->layer, e->target);
        char na[300], nb[300];
        snprintf(na, sizeof na, "%s.lora_a", bm->name);
        snprintf(nb, sizeof nb, "%s.lora_b", bm->name);
        bufs[i] = to_f32(t->params + e->offset, e->rows * e->cols);
        bufs[i + 1] = b_rows(t, B, 1);
        if (!bufs[i] || !bufs[i + 1]) {
            st = pl_error(PL_ERR_NOMEM, "out of memory");
            break;
        }
        int64_t nea[2] = {e->cols, e->rows}, neb[2] = {B->cols, B->rows};
        st = pl_gguf_writer_add_tensor(w, na, PL_DTYPE_F32, 2, nea, bufs[i], (size_t)(e->rows * e->cols) * 4);
        if (!st) st = pl_gguf_writer_add_tensor(w, nb, PL_DTYPE_F32, 2, neb, bufs[i + 1], (size_t)(B->rows * B->cols) * 4);
    }
    if (!st) st = pl_gguf_writer_write(w, path);
    pl_gguf_writer_free(w);
    for (int i = 0; bufs && i < t->n_tensors; i++) free(bufs[i]);
    free(bufs);
    return st;
}

/* safetensors file of (name, f32 data, shape) entries. */
typedef struct {
    char name[200];
    float *data;
    int64_t rows, cols;
    int one_d;              /* write shape [cols] (a norm weight) */
} st_entry;

static pl_status write_safetensors(const char *path, const st_entry *es, int n) {
    pl_buf h = {0};
    pl_status st = pl_buf_printf(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t off = 0;
    for (int i = 0; i < n && !st; i++) {
        size_t bytes = (size_t)(es[i].rows * es[i].cols) * 4;
        if (es[i].one_d)
            st = pl_buf_printf(&h, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld],\"data_offsets\":[%zu,%zu]}",
                               es[i].name, (long long)es[i].cols, off, off + bytes);
        else
            st = pl_buf_printf(&h, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%lld,%lld],\"data_offsets\":[%zu,%zu]}",
                               es[i].name, (long long)es[i].rows, (long long)es[i].cols, off, off + bytes);
        off += bytes;
    }
    if (!st) st = pl_buf_printf(&h, "}");
    while (!st && h.len % 8) st = pl_buf_append(&h, " ", 1);
    pl_afile f;
    if (!st) st = pl_afile_open(&f, path);
    if (st) {
        pl_buf_free(&h);
        return st;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
    st = pl_afile_write(&f, len8, 8);
    if (!st) st = pl_afile_write(&f, h.data, h.len);
    for (int i = 0; i < n && !st; i++) st = pl_afile_write(&f, es[i].data, (size_t)(es[i].rows * es[i].cols) * 4);
    pl_buf_free(&h);
    if (st) {
        pl_afile_abort(&f);
        return st;
    }
    return pl_afile_commit(&f);
}

pl_status pl_trainer_save_peft(const pl_trainer *t, const char *dir, const char *base_model) {
    pl_status st = pl_mkdirs(dir);
    if (st) return st;
    st_entry *es = calloc((size_t)t->n_tensors + 1, sizeof *es);
    if (!es) return pl_error(PL_ERR_NOMEM, "out of memory");
    int n = 0;
    for (int i = 0; i < t->n_tensors && !st; i++) {
        const pl_tr_tensor *e = &t->tensors[i];
        if (e->target == -2) continue; /* base weights: pl_trainer_save_full */
        st_entry *s = &es[n++];
        s->rows = e->rows;
        s->cols = e->cols;
        if (e->target < 0) {
            snprintf(s->name, sizeof s->name, "base_model.model.score.weight");
            s->data = to_f32(t->params + e->offset, e->rows * e->cols);
        } else {
            snprintf(s->name, sizeof s->name, "base_model.model.%s.weight", e->name);
            s->data = e->is_b ? b_rows(t, e, 0) : to_f32(t->params + e->offset, e->rows * e->cols);
        }
        if (!s->data) st = pl_error(PL_ERR_NOMEM, "out of memory");
    }
    char path[4096];
    if (!st) {
        snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
        st = write_safetensors(path, es, n);
    }
    for (int i = 0; i < n; i++) free(es[i].data);
    free(es);
    if (st) return st;
    pl_buf j = {0};
    st = pl_buf_printf(&j, "{\n  \"peft_type\": \"LORA\",\n  \"task_type\": \"%s\",\n  \"base_model_name_or_path\": \"",
                       t->cfg.objective == PL_OBJ_HEAD ? "SEQ_CLS" : "CAUSAL_LM");
    for (const char *c = base_model ? base_model : ""; !st && *c; c++) {
        if (*c == '"' || *c == '\\') st = pl_buf_printf(&j, "\\%c", *c);
        else if ((unsigned char)*c < 0x20) st = pl_buf_printf(&j, "\\u%04x", (unsigned)(unsigned char)*c);
        else st = pl_buf_append(&j, c, 1);
    }
    if (!st)
        st = pl_buf_printf(&j, "\",\n  \"r\": %d,\n  \"lora_alpha\": %.17g,\n  \"lora_dropout\": %.17g,\n"
                               "  \"bias\": \"none\",\n  \"fan_in_fan_out\": false,\n  \"inference_mode\": true,\n"
                               "  \"target_modules\": [",
                           t->r, t->cfg.lora_alpha, t->cfg.lora_dropout);
    int first = 1;
    for (int k = 0; k < PL_TGT_COUNT && !st; k++) {
        if (!(t->cfg.targets & (1u << k)) || t->r == 0) continue;
        const char *hf = strchr(pl_tr_target_hf(k), '.') + 1;
        st = pl_buf_printf(&j, "%s\"%s\"", first ? "" : ", ", hf);
        first = 0;
    }
    if (!st) st = pl_buf_printf(&j, "],\n  \"modules_to_save\": %s\n}\n",
                                t->cfg.objective == PL_OBJ_HEAD ? "[\"score\"]" : "null");
    if (!st) {
        snprintf(path, sizeof path, "%s/adapter_config.json", dir);
        st = pl_write_file_atomic(path, j.data, j.len);
    }
    pl_buf_free(&j);
    return st;
}

pl_status pl_trainer_save_full(const pl_trainer *t, const char *path) {
    if (!t->cfg.full) return pl_error(PL_ERR_INVALID, "%s: the trainer does not train the base weights", path);
    st_entry *es = calloc((size_t)t->n_tensors + 1, sizeof *es);
    if (!es) return pl_error(PL_ERR_NOMEM, "out of memory");
    int n = 0, gemma = t->d.arch == PL_ARCH_GEMMA2;
    pl_status st = PL_OK;
    for (int i = 0; i < t->n_tensors && !st; i++) {
        const pl_tr_tensor *e = &t->tensors[i];
        if (e->target != -2) continue;
        st_entry *s = &es[n++];
        snprintf(s->name, sizeof s->name, "%s", e->name);
        s->rows = e->rows;
        s->cols = e->cols;
        s->one_d = e->rows == 1 && strstr(e->name, "norm") != NULL;
        s->data = to_f32(t->params + e->offset, e->rows * e->cols);
        if (!s->data) {
            st = pl_error(PL_ERR_NOMEM, "out of memory");
            break;
        }
        /* a GGUF base holds q/k rows in adjacent-pair order: HF row j*half+i <- GGUF row 2i+j */
        if (!t->m->hf_layout && e->layer >= 0 && (strstr(e->name, "q_proj") || strstr(e->name, "k_proj"))) {
            int hd = t->hd, half = hd / 2;
            float *tmp = malloc((size_t)(e->rows * e->cols) * sizeof *tmp);
            if (!tmp) {
                st = pl_error(PL_ERR_NOMEM, "out of memory");
                break;
            }
            memcpy(tmp, s->data, (size_t)(e->rows * e->cols) * sizeof *tmp);
            for (int64_t o = 0; o < e->rows; o++) {
                int64_t h = o / hd, q = o % hd, src = h * hd + 2 * (q % half) + q / half;
                memcpy(s->data + o * e->cols, tmp + src * e->cols, (size_t)e->cols * sizeof *tmp);
            }
            free(tmp);
        }
        /* norms are held as used; Gemma stores w for 1 + w */
        if (gemma && e->rows == 1 && strstr(e->name, "norm"))
            for (int64_t k = 0; k < e->cols; k++) s->data[k] -= 1.0f;
    }
    if (!st) st = write_safetensors(path, es, n);
    for (int i = 0; i < n; i++) free(es[i].data);
    free(es);
    return st;
}

/* GGUF name of trained full tensor i, or "" when it has none. */
static void full_gguf_name(const pl_trainer *t, int i, char *name, size_t cap) {
    static const char *NORMS[4] = {"attn_norm", "ffn_norm", "post_attention_norm", "post_ffw_norm"};
    name[0] = 0;
    int L = t->d.n_layer;
    for (int l = 0; l < L; l++) {
        for (int k = 0; k < PL_TGT_COUNT; k++)
            if (t->full_w[l][k] == i) snprintf(name, cap, "%s", base_mat(t, l, k)->name);
        for (int k = 0; k < 4; k++)
            if (t->full_norm[l][k] == i) snprintf(name, cap, "blk.%d.%s.weight", l, NORMS[k]);
    }
    if (t->full_norm[L][0] == i) snprintf(name, cap, "output_norm.weight");
    if (t->full_embd == i) snprintf(name, cap, "%s", t->m->tok_embd.name);
    else if (t->full_out == i) snprintf(name, cap, "%s", t->m->output.name);
}

pl_status pl_trainer_save_full_gguf(const pl_trainer *t, const char *base_gguf, const char *path) {
    if (!t->cfg.full) return pl_error(PL_ERR_INVALID, "%s: the trainer does not train the base weights", path);
    if (t->m->hf_layout) return pl_error(PL_ERR_UNSUPPORTED, "%s: the base model is not a GGUF file", path);
    pl_gguf *g = NULL;
    pl_status st = pl_gguf_open(base_gguf, &g);
    if (st) return st;
    pl_gguf_writer *w = NULL;
    int64_t nt = pl_gguf_n_tensors(g);
    float **bufs = calloc((size_t)nt + 1, sizeof *bufs);
    st = bufs ? pl_gguf_writer_new(&w) : pl_error(PL_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < pl_gguf_n_kv(g) && !st; i++) {
        const char *key = pl_gguf_key(g, i);
        pl_gguf_value v;
        if (!strcmp(key, "general.alignment")) continue; /* the writer's own layout */
        st = pl_gguf_kv(g, i, &v);
        if (!st) st = pl_gguf_writer_add_value(w, key, &v);
    }
    int n_found = 0, n_full = 0;
    for (int i = 0; i < t->n_tensors; i++) n_full += t->tensors[i].target == -2;
    for (int64_t i = 0; i < nt && !st; i++) {
        const pl_gguf_tensor *bt = pl_gguf_tensor_at(g, i);
        int hit = -1;
        char name[300];
        for (int k = 0; k < t->n_tensors && hit < 0; k++) {
            if (t->tensors[k].target != -2) continue;
            full_gguf_name(t, k, name, sizeof name);
            if (!strcmp(name, bt->name)) hit = k;
        }
        if (hit < 0) {
            /* not trained (rope_freqs, ...): copied as stored */
            st = pl_gguf_writer_add_tensor(w, bt->name, bt->type, bt->n_dims, bt->ne, bt->data, (size_t)bt->nbytes);
            continue;
        }
        const pl_tr_tensor *e = &t->tensors[hit];
        if (e->rows * e->cols != bt->n_elements) {
            st = pl_error(PL_ERR_FORMAT, "%s: tensor '%s' has %lld elements, the trainer holds %lld", base_gguf, bt->name,
                          (long long)bt->n_elements, (long long)(e->rows * e->cols));
            break;
        }
        bufs[i] = to_f32(t->params + e->offset, e->rows * e->cols);
        if (!bufs[i]) {
            st = pl_error(PL_ERR_NOMEM, "out of memory");
            break;
        }
        int64_t ne[2] = {e->cols, e->rows};
        st = pl_gguf_writer_add_tensor(w, bt->name, PL_DTYPE_F32, e->rows == 1 ? 1 : 2, ne, bufs[i],
                                       (size_t)(e->rows * e->cols) * 4);
        n_found++;
    }
    if (!st && n_found != n_full)
        st = pl_error(PL_ERR_FORMAT, "%s: %d of the %d trained tensors have no tensor of that name", base_gguf,
                      n_full - n_found, n_full);
    if (!st) st = pl_gguf_writer_write(w, path);
    pl_gguf_writer_free(w);
    for (int64_t i = 0; bufs && i < nt; i++) free(bufs[i]);
    free(bufs);
    pl_gguf_close(g);
    return st;
}
