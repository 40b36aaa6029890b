/* lora.c — LoRA adapters applied at inference: y = W x + s · B (A x).
 *
 * Two formats:
 *   - llama.cpp GGUF adapters (general.type = adapter, adapter.type = lora,
 *     adapter.lora.alpha, "<tensor>.lora_a" ne = [n_in, r], "<tensor>.lora_b"
 *     ne = [r, n_out]); s = scale · alpha / r, or scale when alpha is 0
 *     (llama.cpp's rule).
 *   - PEFT directories (adapter_config.json + adapter_model.safetensors):
 *     "base_model.model.model.layers.L.self_attn.q_proj.lora_A.weight"
 *     [r, n_in] and "...lora_B.weight" [n_out, r]; s = scale · lora_alpha / r
 *     (lora_alpha / √r with use_rslora), as PEFT's LoraLayer computes it.
 * q/k rows of B follow the layout of the format (GGUF: adjacent pairs, HF:
 * rotate-half); they are reordered when the model's layout differs, so
 * either kind of adapter works on either kind of base model.
 *
 * A and B are small and are copied to f32; every pair is validated against
 * the model before any is attached, so a failed load changes nothing.
 * Not supported: DoRA, bias terms, adapters on embeddings (rejected).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/io.h"
#include "model/model_impl.h"
#include "tensor/tensor.h"

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

/* One validated pair waiting to be attached. */
typedef struct {
    pl_mat *w;
    int64_t r;
    int dt_a, dt_b;
    const void *a, *b;      /* A [r × n_in], B [n_out × r] in the file */
    int hf_rows;            /* 1: B's q/k rows are rotate-half (PEFT) */
} pending;

/* Rows [n × cols] to f32. */
static pl_status to_f32(int dtype, const void *src, int64_t rows, int64_t cols, float **out) {
    size_t rb = pl_mm_row_bytes(dtype, cols);
    if (!rb) return pl_error(PL_ERR_UNSUPPORTED, "adapter dtype %s", pl_mm_dtype_name(dtype));
    float *v = malloc((size_t)rows * (size_t)cols * sizeof *v);
    if (!v) return pl_error(PL_ERR_NOMEM, "out of memory");
    for (int64_t r = 0; r < rows; r++) {
        pl_status st = pl_dequantize_row((pl_dtype)dtype, (const uint8_t *)src + (size_t)r * rb,
                                         v + (size_t)r * (size_t)cols, cols);
        if (st) {
            free(v);
            return st;
        }
    }
    *out = v;
    return PL_OK;
}

/* Reorder the q/k rows of B [n_out × r] between layouts. Within each head
 * of hd rows, adjacent-pair row 2e+j is rotate-half row j·hd/2 + e
 * (convert_hf_to_gguf.py's permute). to_hf: adjacent -> rotate-half. */
static pl_status permute_rows(float *b, int n_heads, int hd, int64_t r, int to_hf) {
    int half = hd / 2;
    float *tmp = malloc((size_t)hd * (size_t)r * sizeof *tmp);
    if (!tmp) return pl_error(PL_ERR_NOMEM, "out of memory");
    for (int h = 0; h < n_heads; h++) {
        float *rows = b + (size_t)h * (size_t)hd * (size_t)r;
        memcpy(tmp, rows, (size_t)hd * (size_t)r * sizeof *tmp);
        for (int e = 0; e < half; e++)
            for (int j = 0; j < 2; j++) {
                size_t adj = (size_t)(2 * e + j), rh = (size_t)(j * half + e);
                size_t dst = to_hf ? rh : adj, src = to_hf ? adj : rh;
                memcpy(rows + dst * (size_t)r, tmp + src * (size_t)r, (size_t)r * sizeof *tmp);
            }
    }
    free(tmp);
    return PL_OK;
}

/* Attach validated pairs with factor s (scale · alpha / r folded by the caller per pair). */
static pl_status attach(pl_model *m, pending *pp, int n, const float *s) {
    pl_lora_pair **all = realloc(m->loras, (size_t)(m->n_loras + n) * sizeof *all);
    if (!all) return pl_error(PL_ERR_NOMEM, "out of memory");
    m->loras = all;
    /* convert everything first, then link: nothing is attached on failure */
    pl_lora_pair **made = calloc((size_t)n, sizeof *made);
    if (!made) return pl_error(PL_ERR_NOMEM, "out of memory");
    pl_status st = PL_OK;
    for (int i = 0; i < n && !st; i++) {
        pending *p = &pp[i];
        pl_mat *w = p->w;
        pl_lora_pair *lp = calloc(1, sizeof *lp);
        if (!lp) {
            st = pl_error(PL_ERR_NOMEM, "out of memory");
            break;
        }
        made[i] = lp;
        if ((st = to_f32(p->dt_a, p->a, p->r, w->n_in, &lp->fa)) || (st = to_f32(p->dt_b, p->b, w->n_out, p->r, &lp->fb)))
            break;
        size_t nl = strlen(w->name);
        int is_q = nl >= 13 && !strcmp(w->name + nl - 13, "attn_q.weight");
        int is_k = nl >= 13 && !strcmp(w->name + nl - 13, "attn_k.weight");
        if ((is_q || is_k) && p->hf_rows != m->hf_layout &&
            (st = permute_rows(lp->fb, is_q ? m->d.n_head : m->d.n_head_kv, m->d.head_dim, p->r, m->hf_layout)))
            break;
        lp->a = (pl_mat){lp->fa, PL_DTYPE_F32, w->n_in, p->r, (size_t)w->n_in * sizeof(float), w->name, NULL, NULL, NULL};
        lp->b = (pl_mat){lp->fb, PL_DTYPE_F32, p->r, w->n_out, (size_t)p->r * sizeof(float), w->name, NULL, NULL, NULL};
        lp->s = s[i];
        /* on a matrix with bf16 tiles the deltas' products run on tiles of
         * their own, made once here */
        if (w->tiles) {
            lp->a.tiles = pl_alloc_aligned_raw(pl_bf16_tiles_bytes(p->r, w->n_in));
            lp->b.tiles = pl_alloc_aligned_raw(pl_bf16_tiles_bytes(w->n_out, p->r));
            if (!lp->a.tiles || !lp->b.tiles) {
                st = pl_error(PL_ERR_NOMEM, "out of memory (LoRA tiles of %s)", w->name);
                break;
            }
            if ((st = pl_bf16_tiles_pack(PL_DTYPE_F32, lp->fa, 0, p->r, w->n_in, 0, lp->a.tiles)) ||
                (st = pl_bf16_tiles_pack(PL_DTYPE_F32, lp->fb, 0, w->n_out, p->r, 0, lp->b.tiles)))
                break;
        }
    }
    if (st) {
        for (int i = 0; i < n; i++)
            if (made[i]) {
                free(made[i]->fa);
                free(made[i]->fb);
                pl_free_aligned(made[i]->a.tiles);
                pl_free_aligned(made[i]->b.tiles);
                free(made[i]);
            }
        free(made);
        return st;
    }
    for (int i = 0; i < n; i++) {
        pl_lora_pair *lp = made[i];
        lp->next = pp[i].w->lora;
        pp[i].w->lora = lp;
        m->loras[m->n_loras++] = lp;
        if (pp[i].r > m->max_lora_rank) m->max_lora_rank = (int)pp[i].r;
    }
    free(made);
    return PL_OK;
}

static pl_status shape_error(const char *path, const char *what, int64_t a0, int64_t a1, int64_t b0, int64_t b1,
                             const pl_model *m, const pl_mat *w) {
    return pl_error(PL_ERR_INVALID,
                    "%s: %s: lora_a [%lld, %lld] / lora_b [%lld, %lld] (ggml order) do not fit %s [%lld, %lld] of %s: "
                    "an adapter for a different base model?",
                    path, what, (long long)a0, (long long)a1, (long long)b0, (long long)b1, w->name,
                    (long long)w->n_in, (long long)w->n_out, m->path);
}

/* ---- llama.cpp GGUF adapters -------------------------------------------- */

static pl_status add_gguf(pl_model *m, const char *path, float scale) {
    pl_gguf *g = NULL;
    pl_status st = pl_gguf_open(path, &g);
    if (st) return st;
    pending *pp = NULL;
    float *sv = NULL;
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
    if (!isfinite(alpha)) {
        st = pl_error(PL_ERR_FORMAT, "%s: adapter.lora.alpha is not finite", path);
        goto done;
    }
    buf[0] = 0;
    if (pl_gguf_get_str_copy(g, "general.architecture", buf, sizeof buf) == PL_OK && buf[0]) {
        const char *want = m->d.arch == PL_ARCH_GEMMA2 ? "gemma2" : "llama"; /* Mistral GGUFs are arch llama */
        if (strcmp(buf, want)) {
            st = pl_error(PL_ERR_INVALID, "%s: adapter is for architecture '%s', the model is '%s'", path, buf,
                          pl_arch_name(m->d.arch));
            goto done;
        }
    }
    int64_t nt = pl_gguf_n_tensors(g);
    pp = calloc((size_t)nt + 1, sizeof *pp);
    sv = calloc((size_t)nt + 1, sizeof *sv);
    if (!pp || !sv) {
        st = pl_error(PL_ERR_NOMEM, "out of memory");
        goto done;
    }
    int n = 0;
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
            st = shape_error(path, base, a->ne[0], a->ne[1], b->ne[0], b->ne[1], m, w);
            goto done;
        }
        if (!pl_dtype_valid((int)a->type) || !pl_dtype_valid((int)b->type)) {
            st = pl_error(PL_ERR_UNSUPPORTED, "%s: %s: unsupported adapter dtype", path, base);
            goto done;
        }
        int64_t r = a->ne[1];
        pp[n] = (pending){w, r, (int)a->type, (int)b->type, a->data, b->data, 0};
        sv[n] = alpha != 0.0f ? scale * alpha / (float)r : scale;
        n++;
    }
    if (n == 0) {
        st = pl_error(PL_ERR_FORMAT, "%s: adapter has no lora_a/lora_b tensors", path);
        goto done;
    }
    if ((st = attach(m, pp, n, sv))) st = pl_error_wrap(st, "%s", path);
done:
    free(pp);
    free(sv);
    pl_gguf_close(g);
    return st;
}

/* ---- PEFT directories ------------------------------------------------------ */

static const struct {
    const char *hf, *gguf;
} peft_map[] = {{"self_attn.q_proj", "attn_q"},   {"self_attn.k_proj", "attn_k"}, {"self_attn.v_proj", "attn_v"},
                {"self_attn.o_proj", "attn_output"}, {"mlp.gate_proj", "ffn_gate"}, {"mlp.up_proj", "ffn_up"},
                {"mlp.down_proj", "ffn_down"}};

/* "base_model.model.model.layers.L.<module>.lora_A.weight" -> "blk.L.<gguf>.weight". */
static int peft_target(const char *name, char *out, size_t cap, int *is_a) {
    const char *pre = "base_model.model.";
    if (strncmp(name, pre, strlen(pre))) return 0;
    name += strlen(pre);
    size_t n = strlen(name);
    const char *sa = ".lora_A.weight", *sb = ".lora_B.weight";
    size_t ls = strlen(sa);
    if (n <= ls) return 0;
    if (!strcmp(name + n - ls, sa)) *is_a = 1;
    else if (!strcmp(name + n - ls, sb)) *is_a = 0;
    else return 0;
    char mod[200];
    if (n - ls >= sizeof mod) return 0;
    memcpy(mod, name, n - ls);
    mod[n - ls] = 0;
    if (!strcmp(mod, "lm_head")) {
        snprintf(out, cap, "output.weight");
        return 1;
    }
    int layer, used = 0;
    if (sscanf(mod, "model.layers.%d.%n", &layer, &used) != 1 || used == 0 || layer < 0) return 0;
    for (size_t i = 0; i < sizeof peft_map / sizeof *peft_map; i++)
        if (!strcmp(mod + used, peft_map[i].hf)) {
            snprintf(out, cap, "blk.%d.%s.weight", layer, peft_map[i].gguf);
            return 1;
        }
    return 0;
}

static pl_status add_peft(pl_model *m, const char *dir, float scale) {
    char path[4096];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    char *json = NULL;
    size_t jlen;
    pl_status st = pl_read_file(path, &json, &jlen);
    if (st) return pl_error_wrap(st, "PEFT adapter");
    cJSON *c = cJSON_ParseWithLength(json, jlen);
    free(json);
    if (!c) return pl_error(PL_ERR_FORMAT, "%s: not valid JSON", path);
    const cJSON *r_j = cJSON_GetObjectItemCaseSensitive(c, "r");
    const cJSON *a_j = cJSON_GetObjectItemCaseSensitive(c, "lora_alpha");
    const cJSON *rs_j = cJSON_GetObjectItemCaseSensitive(c, "use_rslora");
    const cJSON *pt_j = cJSON_GetObjectItemCaseSensitive(c, "peft_type");
    const cJSON *dora = cJSON_GetObjectItemCaseSensitive(c, "use_dora");
    if (cJSON_IsString(pt_j) && strcmp(pt_j->valuestring, "LORA")) {
        st = pl_error(PL_ERR_UNSUPPORTED, "%s: peft_type '%s' (only LORA)", path, pt_j->valuestring);
    } else if (cJSON_IsTrue(dora)) {
        st = pl_error(PL_ERR_UNSUPPORTED, "%s: DoRA adapters are not supported", path);
    } else if (!cJSON_IsNumber(r_j) || r_j->valuedouble < 1 || r_j->valuedouble > 65536 ||
               !cJSON_IsNumber(a_j) || !isfinite(a_j->valuedouble)) {
        st = pl_error(PL_ERR_FORMAT, "%s: needs numeric 'r' (1..65536) and 'lora_alpha'", path);
    }
    double rank = cJSON_IsNumber(r_j) ? r_j->valuedouble : 1, alpha = cJSON_IsNumber(a_j) ? a_j->valuedouble : 0;
    int rslora = cJSON_IsTrue(rs_j);
    /* rank_pattern / alpha_pattern would give per-module values */
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(c, "rank_pattern"), *ap = cJSON_GetObjectItemCaseSensitive(c, "alpha_pattern");
    if (!st && ((cJSON_IsObject(rp) && rp->child) || (cJSON_IsObject(ap) && ap->child)))
        st = pl_error(PL_ERR_UNSUPPORTED, "%s: rank_pattern/alpha_pattern are not supported", path);
    cJSON_Delete(c);
    if (st) return st;
    float s = scale * (float)(rslora ? alpha / sqrt(rank) : alpha / rank);

    pl_safetensors *sf = NULL;
    if ((st = pl_st_open(dir, &sf))) return st;
    int64_t nt = pl_st_n_tensors(sf);
    pending *pp = calloc((size_t)nt + 1, sizeof *pp);
    float *sv = calloc((size_t)nt + 1, sizeof *sv);
    int n = 0;
    if (!pp || !sv) {
        st = pl_error(PL_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < nt; i++) {
        const pl_st_tensor *a = pl_st_tensor_at(sf, i);
        char target[96];
        int is_a = 0;
        if (!peft_target(a->name, target, sizeof target, &is_a)) {
            st = pl_error(PL_ERR_UNSUPPORTED, "%s: tensor %s is not a LoRA A/B matrix of a supported module", a->file,
                          a->name);
            goto done;
        }
        if (!is_a) continue;
        char bname[512];
        size_t len = strlen(a->name);
        snprintf(bname, sizeof bname, "%.*sB.weight", (int)(len - strlen("A.weight")), a->name);
        const pl_st_tensor *b = pl_st_find(sf, bname);
        if (!b) {
            st = pl_error(PL_ERR_FORMAT, "%s: %s has no matching %s", a->file, a->name, bname);
            goto done;
        }
        pl_mat *w = find_mat(m, target);
        if (!w) {
            st = pl_error(PL_ERR_NOT_FOUND, "%s: adapted module %s is not a matrix of model %s", a->file, a->name,
                          m->path);
            goto done;
        }
        /* safetensors shapes: A [r, n_in], B [n_out, r] */
        if (a->n_dims != 2 || b->n_dims != 2 || a->shape[1] != w->n_in || b->shape[0] != w->n_out ||
            a->shape[0] != b->shape[1] || a->shape[0] != (int64_t)rank) {
            st = shape_error(a->file, a->name, a->n_dims == 2 ? a->shape[1] : -1, a->shape[0],
                             b->n_dims == 2 ? b->shape[1] : -1, b->shape[0], m, w);
            goto done;
        }
        if (a->ggml_type != PL_DTYPE_F32 && a->ggml_type != PL_DTYPE_F16 && a->ggml_type != PL_DTYPE_BF16) {
            st = pl_error(PL_ERR_UNSUPPORTED, "%s: %s has dtype %s", a->file, a->name, a->dtype);
            goto done;
        }
        if (b->ggml_type != PL_DTYPE_F32 && b->ggml_type != PL_DTYPE_F16 && b->ggml_type != PL_DTYPE_BF16) {
            st = pl_error(PL_ERR_UNSUPPORTED, "%s: %s has dtype %s", b->file, b->name, b->dtype);
            goto done;
        }
        pp[n] = (pending){w, a->shape[0], a->ggml_type, b->ggml_type, a->data, b->data, 1};
        sv[n] = s;
        n++;
    }
    if (n == 0) {
        st = pl_error(PL_ERR_FORMAT, "%s: adapter has no lora_A/lora_B tensors", dir);
        goto done;
    }
    if ((st = attach(m, pp, n, sv))) st = pl_error_wrap(st, "%s", dir);
done:
    free(pp);
    free(sv);
    pl_st_close(sf);
    return st;
}

pl_status pl_model_add_lora(pl_model *m, const char *path, float scale) {
    if (!isfinite(scale)) return pl_error(PL_ERR_INVALID, "%s: LoRA scale is not finite", path);
    struct stat sb;
    if (stat(path, &sb) != 0) return pl_error(PL_ERR_IO, "%s: no such file or directory", path);
    if (S_ISDIR(sb.st_mode)) return add_peft(m, path, scale);
    return add_gguf(m, path, scale);
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
