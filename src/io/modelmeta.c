/* modelmeta.c — pl_model_meta from GGUF metadata or an HF directory.
 *
 * GGUF keys are llama.cpp's (src/llama-arch.cpp LLM_KV_*: "<arch>.block_count",
 * "<arch>.attention.head_count_kv", "<arch>.rope.freq_base", ...); HF keys are
 * transformers' LlamaConfig / MistralConfig / Gemma2Config fields, with the
 * defaults those classes apply when a key is absent. The semantics that the
 * file does not state (rope pairing, gemma2's sliding-window parity and query
 * scale) follow llama.cpp for GGUF and transformers for HF; docs/models.md
 * lists them.
 *
 * Does not: read weights, check tensor shapes beyond the embedding, or guess
 * Mistral from a llama-arch GGUF beyond a name hint.
 */
#include "io.h"

#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *pl_arch_name(pl_arch a) {
    switch (a) {
    case PL_ARCH_LLAMA: return "llama";
    case PL_ARCH_MISTRAL: return "mistral";
    case PL_ARCH_GEMMA2: return "gemma2";
    default: return "unknown";
    }
}

const char *pl_rope_scaling_name(pl_rope_scaling s) {
    switch (s) {
    case PL_ROPE_SCALING_NONE: return "none";
    case PL_ROPE_SCALING_LINEAR: return "linear";
    case PL_ROPE_SCALING_LLAMA3: return "llama3";
    case PL_ROPE_SCALING_YARN: return "yarn";
    default: return "other";
    }
}

const char *pl_meta_tok_kind_name(pl_meta_tok_kind k) {
    switch (k) {
    case PL_META_TOK_SPM: return "spm";
    case PL_META_TOK_BPE: return "bpe";
    case PL_META_TOK_OTHER: return "other";
    default: return "none";
    }
}

static void meta_init(pl_model_meta *m, const char *source) {
    memset(m, 0, sizeof *m);
    snprintf(m->source, sizeof m->source, "%s", source);
    m->n_layers = m->d_model = m->n_heads = m->n_kv_heads = m->head_dim = m->head_dim_v = -1;
    m->d_ff = m->n_ctx = m->vocab_size = m->rope_dim = m->rope_orig_ctx = -1;
    m->n_tokens = 0;
    m->n_merges = -1;
    m->bos_id = m->eos_id = -1;
    m->rope_base = 10000.0;
}

static void add_dtype(pl_model_meta *m, const char *name, uint64_t bytes) {
    int i = 0;
    for (; i < m->n_dtypes; i++)
        if (!strcmp(m->dtypes[i].name, name)) break;
    if (i == m->n_dtypes) {
        if (m->n_dtypes == PL_META_MAX_DTYPES) i = PL_META_MAX_DTYPES - 1; /* lump the rest into the last */
        else snprintf(m->dtypes[m->n_dtypes++].name, sizeof m->dtypes[0].name, "%s", name);
    }
    m->dtypes[i].count++;
    m->dtypes[i].bytes += bytes;
}

static int contains_ci(const char *s, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++) {
        size_t j = 0;
        while (j < k && tolower((unsigned char)s[i + j]) == needle[j]) j++;
        if (j == k) return 1;
    }
    return 0;
}

/* Shared sanity checks on the shape (both sources). */
static pl_status check_shape(const pl_model_meta *m, const char *file) {
#define BAD(...) return pl_error(PL_ERR_FORMAT, __VA_ARGS__)
    const int64_t big = (int64_t)1 << 24; /* far above any real model dimension */
    if (m->n_layers <= 0 || m->n_layers > 4096) BAD("%s: layer count %lld out of range", file, (long long)m->n_layers);
    if (m->d_model <= 0 || m->d_model > big) BAD("%s: d_model %lld out of range", file, (long long)m->d_model);
    if (m->n_heads <= 0 || m->n_heads > 4096) BAD("%s: head count %lld out of range", file, (long long)m->n_heads);
    if (m->n_kv_heads <= 0 || m->n_kv_heads > m->n_heads || m->n_heads % m->n_kv_heads)
        BAD("%s: kv head count %lld must divide head count %lld", file, (long long)m->n_kv_heads,
            (long long)m->n_heads);
    if (m->head_dim <= 0 || m->head_dim > 65536 || m->head_dim_v <= 0 || m->head_dim_v > 65536)
        BAD("%s: head dim %lld out of range", file, (long long)m->head_dim);
    if (m->d_ff != -1 && (m->d_ff <= 0 || m->d_ff > big)) BAD("%s: ff dim %lld out of range", file, (long long)m->d_ff);
    if (m->rope_dim <= 0 || m->rope_dim > m->head_dim || m->rope_dim % 2)
        BAD("%s: rope dimension %lld must be even and at most head dim %lld", file, (long long)m->rope_dim,
            (long long)m->head_dim);
    if (!(m->rope_base > 0) || !isfinite(m->rope_base)) BAD("%s: rope base %g is not positive", file, m->rope_base);
    if (!(m->norm_eps > 0) || !isfinite(m->norm_eps)) BAD("%s: norm epsilon %g is not positive", file, m->norm_eps);
    if (m->attn_softcap < 0 || m->final_softcap < 0 || !isfinite(m->attn_softcap) || !isfinite(m->final_softcap))
        BAD("%s: soft-cap values must be finite and >= 0", file);
    if (m->sliding_window < 0) BAD("%s: sliding window %lld is negative", file, (long long)m->sliding_window);
    if (!(m->query_pre_attn_scalar > 0) || !isfinite(m->query_pre_attn_scalar))
        BAD("%s: query_pre_attn_scalar %g is not positive", file, m->query_pre_attn_scalar);
    return PL_OK;
#undef BAD
}

/* ---- GGUF -------------------------------------------------------------- */

/* Optional integer key "<arch>.<suffix>" into *v (unchanged when absent). */
static pl_status g_int(const pl_gguf *g, const char *arch, const char *suffix, int64_t *v) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t x;
    pl_status st = pl_gguf_get_i64(g, key, &x);
    if (st == PL_ERR_NOT_FOUND) return PL_OK;
    if (st) return st;
    if (x < 0) return pl_error(PL_ERR_FORMAT, "%s: key '%s': negative value %lld", pl_gguf_name(g), key, (long long)x);
    *v = x;
    return PL_OK;
}

static pl_status g_f64(const pl_gguf *g, const char *arch, const char *suffix, double *v, int *given) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    pl_status st = pl_gguf_get_f64(g, key, v);
    if (st == PL_ERR_NOT_FOUND) return PL_OK;
    if (!st && given) *given = 1;
    return st;
}

static pl_status require(const pl_gguf *g, const char *arch, const char *suffix, int64_t v) {
    if (v >= 0) return PL_OK;
    return pl_error(PL_ERR_FORMAT, "%s: required key '%s.%s' is missing", pl_gguf_name(g), arch, suffix);
}

pl_status pl_model_meta_from_gguf(const pl_gguf *g, pl_model_meta *m) {
    meta_init(m, "gguf");
    const char *file = pl_gguf_name(g);
    pl_status st = pl_gguf_get_str_copy(g, "general.architecture", m->arch_name, sizeof m->arch_name);
    if (st == PL_ERR_NOT_FOUND)
        return pl_error(PL_ERR_FORMAT, "%s: required key 'general.architecture' is missing", file);
    if (st) return st == PL_ERR_RANGE ? pl_error(PL_ERR_FORMAT, "%s", pl_errmsg()) : st;
    const char *arch = m->arch_name;
    if (!strcmp(arch, "llama")) m->arch = PL_ARCH_LLAMA;
    else if (!strcmp(arch, "mistral")) m->arch = PL_ARCH_MISTRAL;
    else if (!strcmp(arch, "gemma2")) m->arch = PL_ARCH_GEMMA2;

    const char *s;
    size_t len;
    if (pl_gguf_get_str(g, "general.name", &s, &len) == PL_OK) {
        snprintf(m->name, sizeof m->name, "%.*s", (int)(len < sizeof m->name ? len : sizeof m->name - 1), s);
        for (char *p = m->name; *p; p++)
            if ((unsigned char)*p < 0x20) *p = ' ';
        if (contains_ci(s, len, "mistral")) m->mistral_hint = 1;
    }
    if (pl_gguf_get_str(g, "general.basename", &s, &len) == PL_OK && contains_ci(s, len, "mistral"))
        m->mistral_hint = 1;
    if (m->arch != PL_ARCH_LLAMA) m->mistral_hint = 0;
    if (pl_gguf_get_str(g, "general.type", &s, &len) == PL_OK && len == 7 && !memcmp(s, "adapter", 7))
        m->is_adapter = 1;
    if (pl_gguf_get_str(g, "adapter.type", &s, &len) == PL_OK)
        snprintf(m->adapter_type, sizeof m->adapter_type, "%.*s", (int)(len < 15 ? len : 15), s);
    st = pl_gguf_get_f64(g, "adapter.lora.alpha", &m->lora_alpha);
    if (st && st != PL_ERR_NOT_FOUND) return st;
    m->vocab_only = pl_gguf_n_tensors(g) == 0;

    /* shape */
    if ((st = g_int(g, arch, "block_count", &m->n_layers)) || (st = g_int(g, arch, "embedding_length", &m->d_model)) ||
        (st = g_int(g, arch, "attention.head_count", &m->n_heads)) ||
        (st = g_int(g, arch, "attention.head_count_kv", &m->n_kv_heads)) ||
        (st = g_int(g, arch, "attention.key_length", &m->head_dim)) ||
        (st = g_int(g, arch, "attention.value_length", &m->head_dim_v)) ||
        (st = g_int(g, arch, "feed_forward_length", &m->d_ff)) || (st = g_int(g, arch, "context_length", &m->n_ctx)) ||
        (st = g_int(g, arch, "vocab_size", &m->vocab_size)) ||
        (st = g_int(g, arch, "rope.dimension_count", &m->rope_dim)) ||
        (st = g_int(g, arch, "attention.sliding_window", &m->sliding_window)) ||
        (st = g_int(g, arch, "rope.scaling.original_context_length", &m->rope_orig_ctx)))
        return st;
    m->norm_eps = m->arch == PL_ARCH_GEMMA2 ? 1e-6 : 1e-5;
    if ((st = g_f64(g, arch, "attention.layer_norm_rms_epsilon", &m->norm_eps, NULL)) ||
        (st = g_f64(g, arch, "rope.freq_base", &m->rope_base, &m->rope_base_given)) ||
        (st = g_f64(g, arch, "attn_logit_softcapping", &m->attn_softcap, NULL)) ||
        (st = g_f64(g, arch, "final_logit_softcapping", &m->final_softcap, NULL)))
        return st;
    /* rope scaling: "rope.scaling.type" (+ factor), or the older rope.scale_linear */
    char key[160];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    if (pl_gguf_get_str(g, key, &s, &len) == PL_OK) {
        if (len == 4 && !memcmp(s, "none", 4)) m->rope_scaling = PL_ROPE_SCALING_NONE;
        else if (len == 6 && !memcmp(s, "linear", 6)) m->rope_scaling = PL_ROPE_SCALING_LINEAR;
        else if (len == 4 && !memcmp(s, "yarn", 4)) m->rope_scaling = PL_ROPE_SCALING_YARN;
        else if (len == 6 && !memcmp(s, "llama3", 6)) m->rope_scaling = PL_ROPE_SCALING_LLAMA3;
        else m->rope_scaling = PL_ROPE_SCALING_OTHER;
    } else if (pl_gguf_has(g, key)) {
        return pl_error(PL_ERR_FORMAT, "%s: key '%s': expected a string", file, key);
    }
    if ((st = g_f64(g, arch, "rope.scaling.factor", &m->rope_factor, NULL))) return st;
    double lin = 0;
    if ((st = g_f64(g, arch, "rope.scale_linear", &lin, NULL))) return st;
    if (lin > 0 && m->rope_factor == 0) m->rope_factor = lin;
    if (lin > 0 && lin != 1.0 && m->rope_scaling == PL_ROPE_SCALING_NONE) m->rope_scaling = PL_ROPE_SCALING_LINEAR;
    if (m->rope_scaling == PL_ROPE_SCALING_NONE) m->rope_factor = 0;
    if (m->rope_scaling != PL_ROPE_SCALING_NONE && !(m->rope_factor > 0))
        return pl_error(PL_ERR_FORMAT, "%s: rope scaling '%s' without a positive factor", file,
                        pl_rope_scaling_name(m->rope_scaling));
    m->has_rope_freqs = pl_gguf_find_tensor(g, "rope_freqs.weight") != NULL;
    m->rope_neox = m->arch == PL_ARCH_GEMMA2;

    /* tokenizer */
    pl_gguf_value v;
    if (pl_gguf_get_str(g, "tokenizer.ggml.model", &s, &len) == PL_OK) {
        snprintf(m->tok_model, sizeof m->tok_model, "%.*s", (int)(len < 31 ? len : 31), s);
        m->tok_kind = !strcmp(m->tok_model, "llama") ? PL_META_TOK_SPM : !strcmp(m->tok_model, "gpt2") ? PL_META_TOK_BPE
                                                                                                : PL_META_TOK_OTHER;
    }
    if (pl_gguf_get_str(g, "tokenizer.ggml.pre", &s, &len) == PL_OK)
        snprintf(m->tok_pre, sizeof m->tok_pre, "%.*s", (int)(len < 31 ? len : 31), s);
    st = pl_gguf_get_arr(g, "tokenizer.ggml.tokens", &v);
    if (st == PL_OK) {
        if (v.arr_type != PL_GGUF_STRING)
            return pl_error(PL_ERR_FORMAT, "%s: key 'tokenizer.ggml.tokens': expected an array of strings", file);
        m->n_tokens = (int64_t)v.count;
    } else if (st != PL_ERR_NOT_FOUND) {
        return st;
    }
    st = pl_gguf_get_arr(g, "tokenizer.ggml.merges", &v);
    if (st == PL_OK) m->n_merges = (int64_t)v.count;
    else if (st != PL_ERR_NOT_FOUND) return st;
    uint32_t id;
    if ((st = pl_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &id)) == PL_OK) m->bos_id = id;
    else if (st != PL_ERR_NOT_FOUND) return st;
    if ((st = pl_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &id)) == PL_OK) m->eos_id = id;
    else if (st != PL_ERR_NOT_FOUND) return st;

    /* tensors */
    m->n_tensors = pl_gguf_n_tensors(g);
    for (int64_t k = 0; k < m->n_tensors; k++) {
        const pl_gguf_tensor *t = pl_gguf_tensor_at(g, k);
        m->tensor_bytes += t->nbytes;
        m->n_params += t->n_elements;
        add_dtype(m, pl_ggml_type(t->type)->name, t->nbytes);
    }
    const pl_gguf_tensor *embd = pl_gguf_find_tensor(g, "token_embd.weight");
    m->tied_output = embd && !pl_gguf_find_tensor(g, "output.weight");

    /* defaults and derived values */
    if (m->vocab_size < 0) m->vocab_size = m->n_tokens ? m->n_tokens : embd ? embd->ne[1] : -1;
    if (m->n_heads > 0 && m->n_kv_heads < 0) m->n_kv_heads = m->n_heads;
    if (m->head_dim < 0 && m->n_heads > 0 && m->d_model > 0) {
        if (m->d_model % m->n_heads)
            return pl_error(PL_ERR_FORMAT, "%s: embedding_length %lld is not a multiple of head_count %lld and no "
                            "key_length is given", file, (long long)m->d_model, (long long)m->n_heads);
        m->head_dim = m->d_model / m->n_heads;
    }
    if (m->head_dim_v < 0) m->head_dim_v = m->head_dim;
    if (m->rope_dim < 0) m->rope_dim = m->head_dim;
    if (m->sliding_window > 0) m->swa_every = m->arch == PL_ARCH_GEMMA2 ? 2 : 1;
    /* llama.cpp has no sliding window for arch llama; it is reported but marked */
    m->query_pre_attn_scalar = (double)m->head_dim;
    if (m->arch == PL_ARCH_GEMMA2 && m->n_layers == 46 && m->n_heads > 0)
        m->query_pre_attn_scalar = (double)m->d_model / (double)m->n_heads;

    /* a full model needs its shape; adapters and vocab-only files do not */
    if (m->is_adapter || m->vocab_only) {
        /* the shape is optional here, but what is stated must be whole and consistent */
        if (m->n_heads >= 0 || m->d_model >= 0 || m->n_layers >= 0) return check_shape(m, file);
        return PL_OK;
    }
    if ((st = require(g, arch, "block_count", m->n_layers)) || (st = require(g, arch, "embedding_length", m->d_model)) ||
        (st = require(g, arch, "attention.head_count", m->n_heads)))
        return st;
    if ((st = check_shape(m, file))) return st;
    if (embd && embd->ne[0] != m->d_model)
        return pl_error(PL_ERR_FORMAT, "%s: offset %llu: tensor 'token_embd.weight': ne[0] = %lld but "
                        "embedding_length is %lld", file, (unsigned long long)embd->info_offset,
                        (long long)embd->ne[0], (long long)m->d_model);
    return PL_OK;
}

/* ---- HF directory ------------------------------------------------------ */

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}


static pl_status read_json(const char *path, cJSON **out) {
    char *text;
    size_t n;
    *out = NULL;
    pl_status st = pl_read_file(path, &text, &n);
    if (st) return st;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!j) {
        size_t off = end && end >= text ? (size_t)(end - text) : 0;
        free(text);
        return pl_error(PL_ERR_FORMAT, "%s: offset %zu: invalid JSON", path, off);
    }
    free(text);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return pl_error(PL_ERR_FORMAT, "%s: top level is not a JSON object", path);
    }
    *out = j;
    return PL_OK;
}

/* Integer field: absent or null leaves *v; anything but an integral number is an error. */
static pl_status j_int(const cJSON *o, const char *key, int64_t *v, const char *file) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!x || cJSON_IsNull(x)) return PL_OK;
    double d = x->valuedouble;
    if (!cJSON_IsNumber(x) || d != floor(d) || d < 0 || d > 9.0e15)
        return pl_error(PL_ERR_FORMAT, "%s: field '%s': expected a non-negative integer", file, key);
    *v = (int64_t)d;
    return PL_OK;
}

static pl_status j_num(const cJSON *o, const char *key, double *v, int *given, const char *file) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!x || cJSON_IsNull(x)) return PL_OK;
    if (!cJSON_IsNumber(x)) return pl_error(PL_ERR_FORMAT, "%s: field '%s': expected a number", file, key);
    *v = x->valuedouble;
    if (given) *given = 1;
    return PL_OK;
}

static int has_bytelevel(const cJSON *pre) {
    if (!pre) return 0;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(pre, "type");
    if (cJSON_IsString(t) && !strcmp(t->valuestring, "ByteLevel")) return 1;
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
    const cJSON *e;
    cJSON_ArrayForEach(e, seq) if (has_bytelevel(e)) return 1;
    return 0;
}

static pl_status read_tokenizer_json(const char *path, pl_model_meta *m) {
    cJSON *j;
    pl_status st = read_json(path, &j);
    if (st) return st;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(model) || !cJSON_IsString(type)) {
        cJSON_Delete(j);
        return pl_error(PL_ERR_FORMAT, "%s: field 'model.type' missing", path);
    }
    snprintf(m->tok_model, sizeof m->tok_model, "%s", type->valuestring);
    const cJSON *bf = cJSON_GetObjectItemCaseSensitive(model, "byte_fallback");
    if (!strcmp(type->valuestring, "BPE"))
        m->tok_kind = cJSON_IsTrue(bf) ? PL_META_TOK_SPM
                      : has_bytelevel(cJSON_GetObjectItemCaseSensitive(j, "pre_tokenizer")) ? PL_META_TOK_BPE
                                                                                             : PL_META_TOK_OTHER;
    else
        m->tok_kind = PL_META_TOK_OTHER;
    /* vocabulary size = highest id + 1 over model.vocab and added_tokens */
    int64_t max_id = -1;
    const cJSON *e;
    if (cJSON_IsArray(vocab)) /* Unigram: a list of [piece, score], ids are positions */
        max_id = (int64_t)cJSON_GetArraySize(vocab) - 1;
    else
        cJSON_ArrayForEach(e, vocab) if (cJSON_IsNumber(e) && e->valuedouble > (double)max_id) max_id =
            (int64_t)e->valuedouble;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(j, "added_tokens")) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        if (cJSON_IsNumber(id) && id->valuedouble > (double)max_id) max_id = (int64_t)id->valuedouble;
    }
    if (max_id > ((int64_t)1 << 31)) {
        cJSON_Delete(j);
        return pl_error(PL_ERR_FORMAT, "%s: token id %lld out of range", path, (long long)max_id);
    }
    m->n_tokens = max_id + 1;
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (cJSON_IsArray(merges)) m->n_merges = cJSON_GetArraySize(merges);
    cJSON_Delete(j);
    return PL_OK;
}

pl_status pl_model_meta_from_hf(const char *dir, pl_model_meta *m) {
    meta_init(m, "hf");
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!file_exists(path))
        return pl_error(PL_ERR_NOT_FOUND, "%s: not a Hugging Face model directory (no config.json)", dir);
    cJSON *c;
    pl_status st = read_json(path, &c);
    if (st) return st;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(c, "model_type");
    if (!cJSON_IsString(mt)) {
        cJSON_Delete(c);
        return pl_error(PL_ERR_FORMAT, "%s: field 'model_type' missing or not a string", path);
    }
    snprintf(m->arch_name, sizeof m->arch_name, "%s", mt->valuestring);
    if (!strcmp(mt->valuestring, "llama")) m->arch = PL_ARCH_LLAMA;
    else if (!strcmp(mt->valuestring, "mistral")) m->arch = PL_ARCH_MISTRAL;
    else if (!strcmp(mt->valuestring, "gemma2")) m->arch = PL_ARCH_GEMMA2;
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(c, "_name_or_path");
    if (cJSON_IsString(nm)) snprintf(m->name, sizeof m->name, "%s", nm->valuestring);
    int gemma = m->arch == PL_ARCH_GEMMA2;

    /* transformers' config defaults for the keys a config.json may omit */
    m->norm_eps = 1e-6;
    m->tied_output = gemma;
    if (gemma) {
        m->head_dim = 256;
        m->query_pre_attn_scalar = 256;
        m->attn_softcap = 50.0;
        m->final_softcap = 30.0;
        m->sliding_window = 4096;
    } else if (m->arch == PL_ARCH_MISTRAL) {
        m->sliding_window = 4096;
    }
    double qpas = m->query_pre_attn_scalar;
    int64_t sw = m->sliding_window;
    if ((st = j_int(c, "num_hidden_layers", &m->n_layers, path)) || (st = j_int(c, "hidden_size", &m->d_model, path)) ||
        (st = j_int(c, "num_attention_heads", &m->n_heads, path)) ||
        (st = j_int(c, "num_key_value_heads", &m->n_kv_heads, path)) || (st = j_int(c, "head_dim", &m->head_dim, path)) ||
        (st = j_int(c, "intermediate_size", &m->d_ff, path)) ||
        (st = j_int(c, "max_position_embeddings", &m->n_ctx, path)) ||
        (st = j_int(c, "vocab_size", &m->vocab_size, path)) || (st = j_int(c, "bos_token_id", &m->bos_id, path)) ||
        (st = j_num(c, "rope_theta", &m->rope_base, &m->rope_base_given, path)) ||
        (st = j_num(c, "rms_norm_eps", &m->norm_eps, NULL, path)) ||
        (st = j_num(c, "attn_logit_softcapping", &m->attn_softcap, NULL, path)) ||
        (st = j_num(c, "final_logit_softcapping", &m->final_softcap, NULL, path)) ||
        (st = j_num(c, "query_pre_attn_scalar", &qpas, NULL, path))) {
        cJSON_Delete(c);
        return st;
    }
    /* explicit nulls switch features off */
    const cJSON *x;
    if ((x = cJSON_GetObjectItemCaseSensitive(c, "sliding_window"))) {
        if (cJSON_IsNull(x)) sw = 0;
        else if ((st = j_int(c, "sliding_window", &sw, path))) {
            cJSON_Delete(c);
            return st;
        }
    }
    if ((x = cJSON_GetObjectItemCaseSensitive(c, "attn_logit_softcapping")) && cJSON_IsNull(x)) m->attn_softcap = 0;
    if ((x = cJSON_GetObjectItemCaseSensitive(c, "final_logit_softcapping")) && cJSON_IsNull(x)) m->final_softcap = 0;
    /* eos may be a list (Llama 3.1 instruct): take the first */
    x = cJSON_GetObjectItemCaseSensitive(c, "eos_token_id");
    if (cJSON_IsArray(x)) x = cJSON_GetArrayItem(x, 0);
    if (cJSON_IsNumber(x) && x->valuedouble >= 0) m->eos_id = (int64_t)x->valuedouble;
    x = cJSON_GetObjectItemCaseSensitive(c, "tie_word_embeddings");
    if (cJSON_IsBool(x)) m->tied_output = cJSON_IsTrue(x);
    m->sliding_window = sw;
    if (m->sliding_window > 0) m->swa_every = gemma ? 2 : 1;

    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(c, "rope_scaling");
    /* transformers >= 5 writes "rope_parameters" ({"rope_type", "rope_theta",
     * "factor", ...}) instead of rope_theta + rope_scaling; per-attention-type
     * configs nest one such object per layer type (the first one is read). */
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(c, "rope_parameters");
    if (cJSON_IsObject(rp) && !cJSON_GetObjectItemCaseSensitive(rp, "rope_type") &&
        !cJSON_GetObjectItemCaseSensitive(rp, "rope_theta") && cJSON_IsObject(rp->child))
        rp = rp->child;
    if (cJSON_IsObject(rp)) {
        if (!m->rope_base_given && (st = j_num(rp, "rope_theta", &m->rope_base, &m->rope_base_given, path))) {
            cJSON_Delete(c);
            return st;
        }
        if (!rs || cJSON_IsNull(rs)) rs = rp;
    } else if (rp && !cJSON_IsNull(rp)) {
        cJSON_Delete(c);
        return pl_error(PL_ERR_FORMAT, "%s: field 'rope_parameters': expected an object or null", path);
    }
    if (cJSON_IsObject(rs)) {
        const cJSON *rt = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
        if (!cJSON_IsString(rt)) rt = cJSON_GetObjectItemCaseSensitive(rs, "type");
        const char *t = cJSON_IsString(rt) ? rt->valuestring : "";
        m->rope_scaling = !strcmp(t, "llama3")   ? PL_ROPE_SCALING_LLAMA3
                          : !strcmp(t, "linear") ? PL_ROPE_SCALING_LINEAR
                          : !strcmp(t, "yarn")   ? PL_ROPE_SCALING_YARN
                          : !strcmp(t, "default") ? PL_ROPE_SCALING_NONE
                                                 : PL_ROPE_SCALING_OTHER;
        if ((st = j_num(rs, "factor", &m->rope_factor, NULL, path)) ||
            (st = j_num(rs, "low_freq_factor", &m->rope_low_freq_factor, NULL, path)) ||
            (st = j_num(rs, "high_freq_factor", &m->rope_high_freq_factor, NULL, path)) ||
            (st = j_int(rs, "original_max_position_embeddings", &m->rope_orig_ctx, path))) {
            cJSON_Delete(c);
            return st;
        }
        if (m->rope_scaling != PL_ROPE_SCALING_NONE && !(m->rope_factor > 0)) {
            st = pl_error(PL_ERR_FORMAT, "%s: rope_scaling '%.32s' without a positive factor", path, t);
            cJSON_Delete(c);
            return st;
        }
        if (m->rope_scaling == PL_ROPE_SCALING_LLAMA3 &&
            (!(m->rope_low_freq_factor > 0) || !(m->rope_high_freq_factor > m->rope_low_freq_factor) ||
             m->rope_orig_ctx <= 0)) {
            cJSON_Delete(c);
            return pl_error(PL_ERR_FORMAT, "%s: llama3 rope_scaling needs low_freq_factor > 0, high_freq_factor > "
                            "low_freq_factor and original_max_position_embeddings", path);
        }
    } else if (rs && !cJSON_IsNull(rs)) {
        cJSON_Delete(c);
        return pl_error(PL_ERR_FORMAT, "%s: field 'rope_scaling': expected an object or null", path);
    }
    cJSON_Delete(c);

    if (m->n_layers < 0 || m->d_model < 0 || m->n_heads < 0)
        return pl_error(PL_ERR_FORMAT, "%s: needs num_hidden_layers, hidden_size and num_attention_heads", path);
    if (m->n_kv_heads < 0) m->n_kv_heads = m->n_heads;
    if (m->head_dim < 0) {
        if (m->n_heads == 0 || m->d_model % m->n_heads)
            return pl_error(PL_ERR_FORMAT, "%s: hidden_size %lld is not a multiple of num_attention_heads %lld", path,
                            (long long)m->d_model, (long long)m->n_heads);
        m->head_dim = m->d_model / m->n_heads;
    }
    m->head_dim_v = m->head_dim;
    m->rope_dim = m->head_dim;
    m->rope_neox = 1; /* HF checkpoints rotate halves (rotate_half) */
    m->query_pre_attn_scalar = gemma ? qpas : (double)m->head_dim;
    if ((st = check_shape(m, path))) return st;

    /* tokenizer.json (optional) */
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (file_exists(path) && (st = read_tokenizer_json(path, m))) return st;

    /* weights (optional): the safetensors files */
    pl_safetensors *sf = NULL;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int have = file_exists(path);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    have |= file_exists(path);
    if (have) {
        if ((st = pl_st_open(dir, &sf))) return st;
        m->n_tensors = pl_st_n_tensors(sf);
        for (int64_t k = 0; k < m->n_tensors; k++) {
            const pl_st_tensor *t = pl_st_tensor_at(sf, k);
            m->tensor_bytes += t->nbytes;
            m->n_params += t->n_elements;
            add_dtype(m, t->dtype, t->nbytes);
        }
        const pl_st_tensor *e = pl_st_find(sf, "model.embed_tokens.weight");
        if (e && (e->n_dims != 2 || e->shape[1] != m->d_model)) {
            st = pl_error(PL_ERR_FORMAT, "%s: tensor 'model.embed_tokens.weight' has %lld columns, hidden_size is %lld",
                          e->file, (long long)(e->n_dims == 2 ? e->shape[1] : -1), (long long)m->d_model);
            pl_st_close(sf);
            return st;
        }
        if (pl_st_find(sf, "lm_head.weight")) m->tied_output = 0;
        pl_st_close(sf);
    }
    m->vocab_only = m->n_tensors == 0;
    if (m->vocab_size < 0) m->vocab_size = m->n_tokens ? m->n_tokens : -1;
    return PL_OK;
}

pl_status pl_model_meta_load(const char *path, pl_model_meta *m) {
    struct stat sb;
    if (stat(path, &sb) != 0) return pl_error(PL_ERR_IO, "%s: no such file or directory", path);
    if (S_ISDIR(sb.st_mode)) return pl_model_meta_from_hf(path, m);
    pl_gguf *g;
    pl_status st = pl_gguf_open(path, &g);
    if (st) return st;
    st = pl_model_meta_from_gguf(g, m);
    pl_gguf_close(g);
    return st;
}

/* ---- output ------------------------------------------------------------ */

static void fmt_int(pl_buf *b, const char *label, int64_t v) {
    if (v < 0) pl_buf_printf(b, "%-15s (not stated)\n", label);
    else pl_buf_printf(b, "%-15s %lld\n", label, (long long)v);
}

pl_status pl_model_meta_format(const pl_model_meta *m, pl_buf *b) {
    size_t start = b->len;
    pl_buf_printf(b, "%-15s %s", "architecture", m->arch_name);
    if (m->arch != PL_ARCH_UNKNOWN && strcmp(m->arch_name, pl_arch_name(m->arch)))
        pl_buf_printf(b, " (%s family)", pl_arch_name(m->arch));
    if (m->arch == PL_ARCH_UNKNOWN) pl_buf_printf(b, " (not a supported family)");
    if (m->mistral_hint) pl_buf_printf(b, " (general.name mentions Mistral)");
    pl_buf_printf(b, "\n");
    if (m->name[0]) pl_buf_printf(b, "%-15s %s\n", "name", m->name);
    if (m->is_adapter)
        pl_buf_printf(b, "%-15s %s adapter, alpha %g\n", "type", m->adapter_type[0] ? m->adapter_type : "?",
                      m->lora_alpha);
    if (m->vocab_only)
        pl_buf_printf(b, "%-15s %s\n", "type",
                      m->source[0] == 'h' ? "configuration only (no safetensors weights found)"
                                          : "vocabulary only (no tensors)");
    fmt_int(b, "layers", m->n_layers);
    fmt_int(b, "d_model", m->d_model);
    if (m->n_heads > 0 && m->n_kv_heads > 0)
        pl_buf_printf(b, "%-15s %lld (kv heads %lld, %lld queries per kv head)\n", "heads", (long long)m->n_heads,
                      (long long)m->n_kv_heads, (long long)(m->n_heads / m->n_kv_heads));
    else if (m->n_heads > 0)
        pl_buf_printf(b, "%-15s %lld (kv heads %lld)\n", "heads", (long long)m->n_heads, (long long)m->n_kv_heads);
    else
        fmt_int(b, "heads", -1);
    if (m->head_dim > 0 && m->head_dim_v != m->head_dim)
        pl_buf_printf(b, "%-15s %lld (v %lld)\n", "head dim", (long long)m->head_dim, (long long)m->head_dim_v);
    else
        fmt_int(b, "head dim", m->head_dim);
    fmt_int(b, "ff dim", m->d_ff);
    fmt_int(b, "context length", m->n_ctx);
    if (m->n_heads > 0) {
        pl_buf_printf(b, "%-15s base %.10g%s, dim %lld, %s", "rope", m->rope_base, m->rope_base_given ? "" : " (default)",
                      (long long)m->rope_dim, m->rope_neox ? "rotate halves" : "adjacent pairs");
        if (m->rope_scaling != PL_ROPE_SCALING_NONE) {
            pl_buf_printf(b, ", scaling %s factor %g", pl_rope_scaling_name(m->rope_scaling), m->rope_factor);
            if (m->rope_scaling == PL_ROPE_SCALING_LLAMA3)
                pl_buf_printf(b, " low %g high %g", m->rope_low_freq_factor, m->rope_high_freq_factor);
            if (m->rope_orig_ctx > 0) pl_buf_printf(b, " original ctx %lld", (long long)m->rope_orig_ctx);
        } else {
            pl_buf_printf(b, ", scaling none");
        }
        if (m->has_rope_freqs) pl_buf_printf(b, ", per-frequency factors in rope_freqs.weight (llama3-style)");
        pl_buf_printf(b, "\n");
        if (m->sliding_window > 0)
            pl_buf_printf(b, "%-15s %lld (%s)%s\n", "sliding window", (long long)m->sliding_window,
                          m->swa_every == 2 ? "even layers" : "all layers",
                          (m->source[0] == 'g' && m->arch == PL_ARCH_LLAMA) ? " [llama.cpp ignores it for arch llama]"
                                                                             : "");
        else
            pl_buf_printf(b, "%-15s none\n", "sliding window");
        pl_buf_printf(b, "%-15s attention ", "soft-caps");
        if (m->attn_softcap > 0) pl_buf_printf(b, "%g", m->attn_softcap);
        else pl_buf_printf(b, "none");
        if (m->final_softcap > 0) pl_buf_printf(b, ", final %g\n", m->final_softcap);
        else pl_buf_printf(b, ", final none\n");
        pl_buf_printf(b, "%-15s %g\n", "norm eps", m->norm_eps);
        pl_buf_printf(b, "%-15s q scaled by 1/sqrt(%g)\n", "query scale", m->query_pre_attn_scalar);
        if (!m->vocab_only) pl_buf_printf(b, "%-15s %s\n", "output", m->tied_output ? "tied to the embedding" : "separate");
    }
    fmt_int(b, "vocab size", m->vocab_size);
    pl_buf_printf(b, "%-15s %s", "tokenizer", pl_meta_tok_kind_name(m->tok_kind));
    if (m->tok_model[0]) pl_buf_printf(b, " (%s%s%s)", m->tok_model, m->tok_pre[0] ? ", pre " : "", m->tok_pre);
    if (m->tok_kind != PL_META_TOK_NONE) {
        pl_buf_printf(b, ", %lld tokens", (long long)m->n_tokens);
        if (m->n_merges >= 0) pl_buf_printf(b, ", %lld merges", (long long)m->n_merges);
        if (m->bos_id >= 0) pl_buf_printf(b, ", bos %lld", (long long)m->bos_id);
        if (m->eos_id >= 0) pl_buf_printf(b, ", eos %lld", (long long)m->eos_id);
    }
    pl_buf_printf(b, "\n");
    pl_buf_printf(b, "%-15s %lld, %llu bytes, %lld parameters\n", "tensors", (long long)m->n_tensors,
                  (unsigned long long)m->tensor_bytes, (long long)m->n_params);
    for (int i = 0; i < m->n_dtypes; i++)
        pl_buf_printf(b, "  %-13s %lld tensors, %llu bytes\n", m->dtypes[i].name, (long long)m->dtypes[i].count,
                      (unsigned long long)m->dtypes[i].bytes);
    if (!b->data || b->len == start) return pl_error(PL_ERR_NOMEM, "out of memory");
    return PL_OK;
}

pl_status pl_model_meta_json(const pl_model_meta *m, pl_buf *out) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return pl_error(PL_ERR_NOMEM, "out of memory");
#define NUM(k, v) cJSON_AddNumberToObject(j, k, (double)(v))
#define STR(k, v) cJSON_AddStringToObject(j, k, v)
#define BOOL(k, v) cJSON_AddBoolToObject(j, k, (v) ? 1 : 0)
    STR("source", m->source);
    STR("architecture", m->arch_name);
    STR("family", pl_arch_name(m->arch));
    BOOL("mistral_hint", m->mistral_hint);
    STR("name", m->name);
    BOOL("adapter", m->is_adapter);
    if (m->is_adapter) {
        STR("adapter_type", m->adapter_type);
        NUM("lora_alpha", m->lora_alpha);
    }
    BOOL("vocab_only", m->vocab_only);
    NUM("n_layers", m->n_layers);
    NUM("d_model", m->d_model);
    NUM("n_heads", m->n_heads);
    NUM("n_kv_heads", m->n_kv_heads);
    NUM("head_dim", m->head_dim);
    NUM("head_dim_v", m->head_dim_v);
    NUM("d_ff", m->d_ff);
    NUM("n_ctx", m->n_ctx);
    NUM("vocab_size", m->vocab_size);
    NUM("norm_eps", m->norm_eps);
    NUM("query_pre_attn_scalar", m->query_pre_attn_scalar);
    NUM("sliding_window", m->sliding_window);
    NUM("swa_every", m->swa_every);
    NUM("attn_softcap", m->attn_softcap);
    NUM("final_softcap", m->final_softcap);
    NUM("rope_dim", m->rope_dim);
    NUM("rope_base", m->rope_base);
    BOOL("rope_base_given", m->rope_base_given);
    BOOL("rope_neox", m->rope_neox);
    STR("rope_scaling", pl_rope_scaling_name(m->rope_scaling));
    NUM("rope_factor", m->rope_factor);
    NUM("rope_low_freq_factor", m->rope_low_freq_factor);
    NUM("rope_high_freq_factor", m->rope_high_freq_factor);
    NUM("rope_orig_ctx", m->rope_orig_ctx);
    BOOL("has_rope_freqs", m->has_rope_freqs);
    BOOL("tied_output", m->tied_output);
    STR("tokenizer", pl_meta_tok_kind_name(m->tok_kind));
    STR("tokenizer_model", m->tok_model);
    STR("tokenizer_pre", m->tok_pre);
    NUM("n_tokens", m->n_tokens);
    NUM("n_merges", m->n_merges);
    NUM("bos_id", m->bos_id);
    NUM("eos_id", m->eos_id);
    NUM("n_tensors", m->n_tensors);
    NUM("tensor_bytes", m->tensor_bytes);
    NUM("n_params", m->n_params);
    cJSON *dt = cJSON_AddObjectToObject(j, "dtypes");
    for (int i = 0; dt && i < m->n_dtypes; i++) {
        cJSON *d = cJSON_AddObjectToObject(dt, m->dtypes[i].name);
        if (d) {
            cJSON_AddNumberToObject(d, "tensors", (double)m->dtypes[i].count);
            cJSON_AddNumberToObject(d, "bytes", (double)m->dtypes[i].bytes);
        }
    }
#undef NUM
#undef STR
#undef BOOL
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    if (!s) return pl_error(PL_ERR_NOMEM, "out of memory");
    pl_status st = pl_buf_append(out, s, strlen(s));
    free(s);
    return st;
}
