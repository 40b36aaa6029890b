/* init.c — `model init`: a small random decoder model (Llama 3.1-style,
 * Mistral-style or Gemma 2) written as one self-contained GGUF file: the
 * llama.cpp metadata keys and tensor names that load.c reads, random weights
 * and the vocabulary of a given tokenizer as tokenizer.ggml.* keys.
 *
 * Init scheme (GPT-2 / Llama style), with one RNG stream per tensor
 * (pl_rng_split of the seed by tensor index, so files are byte-identical for
 * a seed): embeddings and linear weights N(0, 0.02²); attn_output and
 * ffn_down N(0, (0.02/sqrt(2·n_layer))²); every norm weight 1 — the GGUF
 * convention stores the multiplier itself (gemma2's "1 + w" is folded in by
 * llama.cpp's converter), so 1 is neutral for all three families. Norms and
 * rope_freqs are f32; matrices f32, f16 or bf16 (round to nearest even).
 *
 * Vocabulary: a GGUF source has its tokenizer.* keys copied verbatim. A
 * tokenizer.json must be byte-level BPE; it becomes tokenizer.ggml.model
 * "gpt2" with pre "llama-bpe" (a Split regex, the Llama 3 one) or "gpt-2"
 * (ByteLevel's own regex). llama.cpp's llama-bpe always has ignore_merges,
 * so the result is checked: the GGUF vocab is loaded back from memory and
 * must give the same ids as the source on fixed probe texts and on the text
 * of every normal token, else PL_ERR_UNSUPPORTED. SentencePiece-style
 * tokenizer.json files (merges by rank) have no exact GGUF form (llama.cpp
 * merges SPM by score) and are refused; pass their GGUF instead.
 */
#include "model/model_impl.h"
#include "tokenizer/tokenizer.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define INIT_STD 0.02

pl_model_init_opts pl_model_init_defaults(pl_arch arch) {
    pl_model_init_opts o;
    memset(&o, 0, sizeof o);
    o.arch = arch;
    o.n_layer = o.d_model = o.n_head = o.n_kv_head = o.head_dim = o.n_ff = o.n_ctx = -1;
    o.rope_base = -1;
    o.window = -1;
    o.attn_softcap = o.final_softcap = -1;
    o.tied = o.llama3_rope = -1;
    o.dtype = -1;
    o.seed = 0;
    return o;
}

#define SETD(f, v) do { if (o->f < 0) o->f = (v); } while (0)

pl_status pl_model_init_resolve(pl_model_init_opts *o) {
#define BAD(...) return pl_error(PL_ERR_INVALID, "model init: " __VA_ARGS__)
    int head_dim_given = o->head_dim >= 0;
    switch (o->arch) {
    case PL_ARCH_LLAMA:
        SETD(n_layer, 4); SETD(d_model, 256); SETD(n_head, 8); SETD(n_kv_head, 2); SETD(n_ff, 768);
        SETD(n_ctx, 2048); SETD(rope_base, 500000.0); SETD(tied, 0); SETD(llama3_rope, 1);
        if (!o->name) o->name = "phishlens random Llama-3.1-style";
        break;
    case PL_ARCH_MISTRAL:
        SETD(n_layer, 4); SETD(d_model, 256); SETD(n_head, 8); SETD(n_kv_head, 2); SETD(n_ff, 768);
        SETD(n_ctx, 4096); SETD(rope_base, 1000000.0); SETD(tied, 0); SETD(llama3_rope, 0);
        if (!o->name) o->name = "phishlens random Mistral-style";
        break;
    case PL_ARCH_GEMMA2:
        SETD(n_layer, 4); SETD(d_model, 256); SETD(n_head, 4); SETD(n_kv_head, 2); SETD(head_dim, 64);
        SETD(n_ff, 1024); SETD(n_ctx, 8192); SETD(rope_base, 10000.0); SETD(window, 128);
        SETD(attn_softcap, 50.0); SETD(final_softcap, 30.0); SETD(tied, 1); SETD(llama3_rope, 0);
        if (!o->name) o->name = "phishlens random Gemma-2-style";
        break;
    default:
        BAD("unknown architecture (llama, mistral, gemma2)");
    }
    SETD(window, 0);
    SETD(attn_softcap, 0.0);
    SETD(final_softcap, 0.0);
    SETD(dtype, PL_GGML_F32);
    if (!o->tokenizer || !*o->tokenizer) BAD("--tokenizer is required");
    if (o->n_layer < 1 || o->n_layer > 4096) BAD("--layers %d out of range [1, 4096]", o->n_layer);
    if (o->d_model < 2 || o->d_model > 65536) BAD("--d-model %d out of range [2, 65536]", o->d_model);
    if (o->n_head < 1 || o->n_head > 4096) BAD("--heads %d out of range [1, 4096]", o->n_head);
    if (!head_dim_given && o->head_dim < 0) {
        if (o->d_model % o->n_head) BAD("--heads %d does not divide --d-model %d (give --head-dim to decouple them)",
                                        o->n_head, o->d_model);
        o->head_dim = o->d_model / o->n_head;
    }
    if (o->n_kv_head < 1 || o->n_kv_head > o->n_head) BAD("--kv-heads %d out of range [1, heads = %d]", o->n_kv_head, o->n_head);
    if (o->n_head % o->n_kv_head) BAD("--kv-heads %d does not divide --heads %d", o->n_kv_head, o->n_head);
    if (o->head_dim < 2 || o->head_dim > 4096 || o->head_dim % 2) BAD("--head-dim %d must be even and in [2, 4096]", o->head_dim);
    if ((int64_t)o->n_head * o->head_dim > (1 << 20)) BAD("--heads × --head-dim is too large");
    if (o->n_ff < 1 || o->n_ff > (1 << 20)) BAD("--ff %d out of range [1, 1048576]", o->n_ff);
    if (o->n_ctx < 1 || o->n_ctx > (1 << 24)) BAD("--ctx %d out of range [1, 16777216]", o->n_ctx);
    if (!(o->rope_base > 0) || !isfinite(o->rope_base)) BAD("--rope-base %g must be a positive number", o->rope_base);
    if (o->arch != PL_ARCH_GEMMA2) {
        if (o->window > 0)
            BAD("--window: a GGUF of arch llama has no sliding window (llama.cpp ignores it); only gemma2 takes one");
        if (o->attn_softcap != 0 || o->final_softcap != 0) BAD("--attn-softcap / --final-softcap apply to gemma2 only");
    } else if (o->window < 0 || o->window > (1 << 24)) {
        BAD("--window %d out of range", o->window);
    }
    if (!(o->attn_softcap >= 0) || !isfinite(o->attn_softcap)) BAD("--attn-softcap %g must be >= 0", o->attn_softcap);
    if (!(o->final_softcap >= 0) || !isfinite(o->final_softcap)) BAD("--final-softcap %g must be >= 0", o->final_softcap);
    if (o->tied != 0 && o->tied != 1) BAD("--tied must be 0 or 1");
    if (o->llama3_rope != 0 && o->llama3_rope != 1) BAD("llama3 rope must be 0 or 1");
    if (o->llama3_rope && o->arch != PL_ARCH_LLAMA) BAD("llama3 rope scaling applies to --arch llama only");
    if (o->dtype != PL_GGML_F32 && o->dtype != PL_GGML_F16 && o->dtype != PL_GGML_BF16)
        BAD("--dtype must be f32, f16 or bf16");
    return PL_OK;
#undef BAD
}

/* ---- vocabulary ---------------------------------------------------------- */

typedef struct {
    pl_tokenizer *tok;       /* the source, as loaded */
    pl_gguf *src_gguf;       /* GGUF source: keys copied from here */
    cJSON *json;             /* tokenizer.json source */
    const char *pre;         /* "llama-bpe" or "gpt-2" */
    const char *path;        /* tokenizer.json path (for messages) */
    char *json_path;
} vocab_src;

static void vocab_free(vocab_src *v) {
    pl_tokenizer_free(v->tok);
    pl_gguf_close(v->src_gguf);
    cJSON_Delete(v->json);
    free(v->json_path);
    memset(v, 0, sizeof *v);
}

static int is_gguf_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char m[4] = {0};
    size_t n = fread(m, 1, 4, f);
    fclose(f);
    return n == 4 && !memcmp(m, "GGUF", 4);
}

/* Find the Split regex / ByteLevel in a pre_tokenizer (Sequence allowed). */
static void scan_pre(const cJSON *p, int *split, int *bytelevel) {
    if (!cJSON_IsObject(p)) return;
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(p, "type");
    const char *t = cJSON_IsString(ty) ? ty->valuestring : "";
    if (!strcmp(t, "Sequence")) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(p, "pretokenizers")) scan_pre(e, split, bytelevel);
    } else if (!strcmp(t, "Split")) {
        *split = 1;
    } else if (!strcmp(t, "ByteLevel")) {
        *bytelevel = 1;
    }
}

static pl_status vocab_open(const char *path, vocab_src *v) {
    memset(v, 0, sizeof *v);
    pl_status st;
    if (is_gguf_file(path)) {
        if ((st = pl_gguf_open(path, &v->src_gguf))) return st;
        if ((st = pl_tokenizer_from_gguf(v->src_gguf, &v->tok))) return st;
        return PL_OK;
    }
    if ((st = pl_tokenizer_load(path, &v->tok))) return st;
    if (pl_tokenizer_kind(v->tok) != PL_TOK_BYTE_BPE)
        return pl_error(PL_ERR_UNSUPPORTED, "%s: a SentencePiece-style tokenizer.json has no exact GGUF form "
                        "(llama.cpp merges SPM vocabularies by score, not by merge rank); pass a .gguf vocabulary", path);
    struct stat sb;
    size_t n = strlen(path) + 32;
    v->json_path = malloc(n);
    if (!v->json_path) return pl_error(PL_ERR_NOMEM, "out of memory");
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(v->json_path, n, "%s/tokenizer.json", path);
    else snprintf(v->json_path, n, "%s", path);
    v->path = v->json_path;
    char *text;
    size_t len;
    if ((st = pl_read_file(v->json_path, &text, &len))) return st;
    v->json = cJSON_ParseWithLength(text, len);
    free(text);
    if (!v->json) return pl_error(PL_ERR_FORMAT, "%s: not valid JSON", v->json_path);
    int split = 0, bl = 0;
    scan_pre(cJSON_GetObjectItemCaseSensitive(v->json, "pre_tokenizer"), &split, &bl);
    v->pre = split ? "llama-bpe" : "gpt-2";
    return PL_OK;
}

static pl_status add_id(pl_gguf_writer *w, const char *key, int32_t id) {
    /* "none" as UINT32_MAX (the gpt2 loader would otherwise default to 11) */
    return pl_gguf_writer_add_u32(w, key, id >= 0 ? (uint32_t)id : UINT32_MAX);
}

/* The tokenizer.* keys into w. */
static pl_status vocab_write(const vocab_src *v, pl_gguf_writer *w) {
    pl_status st = PL_OK;
    if (v->src_gguf) {
        int64_t n = pl_gguf_n_kv(v->src_gguf);
        for (int64_t i = 0; i < n && !st; i++) {
            const char *k = pl_gguf_key(v->src_gguf, i);
            if (strncmp(k, "tokenizer.", 10)) continue;
            pl_gguf_value val;
            if (!(st = pl_gguf_kv(v->src_gguf, i, &val))) st = pl_gguf_writer_add_value(w, k, &val);
        }
        return st;
    }
    const pl_tokenizer *t = v->tok;
    int32_t nv = pl_tokenizer_n_vocab(t);
    const char **strs = malloc((size_t)nv * sizeof *strs);
    size_t *lens = malloc((size_t)nv * sizeof *lens);
    int32_t *types = malloc((size_t)nv * sizeof *types);
    const char **ms = NULL;
    size_t *mlens = NULL;
    pl_buf mb = {0};
    if (!strs || !lens || !types) { st = pl_error(PL_ERR_NOMEM, "out of memory"); goto out; }
    for (int32_t i = 0; i < nv; i++) {
        strs[i] = pl_tokenizer_token_text(t, i, &lens[i]);
        int ty = (int)pl_tokenizer_token_type(t, i);
        types[i] = ty < PL_TOKT_NORMAL || ty > PL_TOKT_BYTE ? PL_TOKT_NORMAL : ty;
    }
    /* merges as "left right" strings, in rank order */
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(v->json, "model");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    int nm = cJSON_GetArraySize(merges);
    ms = malloc(((size_t)nm + 1) * sizeof *ms);
    mlens = malloc(((size_t)nm + 1) * sizeof *mlens);
    size_t *moff = malloc(((size_t)nm + 1) * sizeof *moff);
    if (!ms || !mlens || !moff) { free(moff); st = pl_error(PL_ERR_NOMEM, "out of memory"); goto out; }
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, merges) {
        size_t start = mb.len;
        if (cJSON_IsString(e)) {
            st = pl_buf_append(&mb, e->valuestring, strlen(e->valuestring));
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(cJSON_GetArrayItem(e, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(e, 1))) {
            st = pl_buf_printf(&mb, "%s %s", cJSON_GetArrayItem(e, 0)->valuestring, cJSON_GetArrayItem(e, 1)->valuestring);
        } else {
            st = pl_error(PL_ERR_FORMAT, "%s: field model.merges[%d]: expected \"left right\" or [left, right]", v->path, k);
        }
        if (st) break;
        moff[k] = start;
        mlens[k] = mb.len - start;
        k++;
    }
    if (!st)
        for (int i = 0; i < k; i++) ms[i] = mb.data + moff[i];
    free(moff);
    if (st) goto out;
    if ((st = pl_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2")) ||
        (st = pl_gguf_writer_add_str(w, "tokenizer.ggml.pre", v->pre)) ||
        (st = pl_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", strs, lens, (size_t)nv)) ||
        (st = pl_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", PL_GGUF_I32, types, (size_t)nv)) ||
        (st = pl_gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", ms, mlens, (size_t)k)) ||
        (st = add_id(w, "tokenizer.ggml.bos_token_id", pl_tokenizer_bos(t))) ||
        (st = add_id(w, "tokenizer.ggml.eos_token_id", pl_tokenizer_eos(t))) ||
        (st = add_id(w, "tokenizer.ggml.unknown_token_id", pl_tokenizer_unk(t))) ||
        (st = add_id(w, "tokenizer.ggml.padding_token_id", pl_tokenizer_pad(t))) ||
        (st = pl_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", pl_tokenizer_add_bos(t))) ||
        (st = pl_gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", pl_tokenizer_add_eos(t))))
        goto out;
out:
    free(strs);
    free(lens);
    free(types);
    free(ms);
    free(mlens);
    pl_buf_free(&mb);
    return st;
}

static const char *const probe_texts[] = {
    "Hello world", "hello  world\n\nagain", " leading space", "trailing space ", "\ttab\tand\r\nCRLF",
    "I'm sure you'll see it's DON'T WON'T they've we'd", "12345 3.14159 1,000,000 0x1F",
    "Your account has been suspended! Verify now: https://secure-login.example.com/verify?id=42&t=a%20b",
    "Dear customer,\n\nPlease confirm your password within 24 hours.\n-- \nSupport Team",
    "caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9 \xc3\x9c" "ber Stra\xc3\x9f" "e",
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88 \xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82",
    "emoji \xf0\x9f\x98\x80\xf0\x9f\x94\x92 end", "   ", "\n", "a", "!!!???...", "$$$ 100% FREE!!!",
    "<|bos|>special<|eos|> <|pad|><|unk|>", "<s>[INST] hi [/INST]</s>", "<bos><start_of_turn>user\n",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
};

static pl_status enc_same(const pl_tokenizer *a, const pl_tokenizer *b, const char *s, size_t n, unsigned flags,
                          const char *where, const char *src) {
    pl_tokens x = {0}, y = {0};
    pl_status st = pl_tokenizer_encode(a, s, n, flags, &x);
    if (!st) st = pl_tokenizer_encode(b, s, n, flags, &y);
    if (!st && (x.n != y.n || (x.n && memcmp(x.ids, y.ids, x.n * sizeof *x.ids))))
        st = pl_error(PL_ERR_UNSUPPORTED, "%s: the vocabulary cannot be stored exactly in GGUF: %s \"%.*s\" gives %zu "
                      "tokens from the source and %zu from the GGUF form", src, where, (int)(n > 40 ? 40 : n), s, x.n, y.n);
    pl_tokens_free(&x);
    pl_tokens_free(&y);
    return st;
}

/* Load the written vocabulary back and compare it with the source. */
static pl_status vocab_check(const vocab_src *v, const char *src) {
    pl_gguf_writer *w = NULL;
    pl_buf b = {0};
    pl_gguf *g = NULL;
    pl_tokenizer *t = NULL;
    pl_status st = pl_gguf_writer_new(&w);
    if (!st) st = pl_gguf_writer_add_str(w, "general.architecture", "llama");
    if (!st) st = vocab_write(v, w);
    if (!st) st = pl_gguf_writer_to_buf(w, &b);
    if (!st) st = pl_gguf_open_mem(b.data, b.len, src, &g);
    if (!st) st = pl_tokenizer_from_gguf(g, &t);
    const pl_tokenizer *s = v->tok;
    if (!st && (pl_tokenizer_n_vocab(t) != pl_tokenizer_n_vocab(s) || pl_tokenizer_bos(t) != pl_tokenizer_bos(s) ||
                pl_tokenizer_eos(t) != pl_tokenizer_eos(s) || pl_tokenizer_unk(t) != pl_tokenizer_unk(s) ||
                pl_tokenizer_pad(t) != pl_tokenizer_pad(s) || pl_tokenizer_add_bos(t) != pl_tokenizer_add_bos(s) ||
                pl_tokenizer_add_eos(t) != pl_tokenizer_add_eos(s) || pl_tokenizer_kind(t) != pl_tokenizer_kind(s)))
        st = pl_error(PL_ERR_UNSUPPORTED, "%s: the GGUF form of the vocabulary differs from the source in size, kind, "
                      "special ids or add_bos/add_eos", src);
    for (size_t i = 0; !st && i < sizeof probe_texts / sizeof *probe_texts; i++)
        for (unsigned f = 0; !st && f < 4; f++)
            st = enc_same(s, t, probe_texts[i], strlen(probe_texts[i]), f, "probe text", src);
    /* every normal token's own text (where ignore_merges could matter) */
    pl_buf dec = {0};
    for (int32_t i = 0; !st && i < pl_tokenizer_n_vocab(s); i++) {
        if (pl_tokenizer_token_type(s, i) != PL_TOKT_NORMAL) continue;
        dec.len = 0;
        if ((st = pl_tokenizer_decode(s, &i, 1, 0, &dec))) break;
        st = enc_same(s, t, dec.data ? dec.data : "", dec.len, 0, "the text of a token", src);
    }
    pl_buf_free(&dec);
    pl_tokenizer_free(t);
    pl_gguf_close(g);
    pl_buf_free(&b);
    pl_gguf_writer_free(w);
    return st;
}

/* ---- weights ------------------------------------------------------------- */

typedef struct {
    void **bufs;
    size_t n, cap;
} buf_list;

static pl_status keep(buf_list *l, void *p) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        void **nb = realloc(l->bufs, nc * sizeof *nb);
        if (!nb) return pl_error(PL_ERR_NOMEM, "out of memory");
        l->bufs = nb;
        l->cap = nc;
    }
    l->bufs[l->n++] = p;
    return PL_OK;
}

static uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7FFFu + ((u >> 16) & 1u); /* round to nearest even; values here are finite */
    return (uint16_t)(u >> 16);
}

/* Add a tensor [ne0 (inner) × ne1]; std > 0: N(0, std²) from stream idx,
 * std == 0: all `fill`; vals != NULL: those values (f32 only). */
static pl_status add_t(pl_gguf_writer *w, buf_list *keep_l, const pl_rng *master, uint64_t idx, const char *name,
                       int dtype, int64_t ne0, int64_t ne1, double std, float fill, const float *vals) {
    int64_t n = ne0 * ne1;
    size_t esz = dtype == PL_GGML_F32 ? 4 : 2;
    void *data = malloc((size_t)n * esz);
    if (!data) return pl_error(PL_ERR_NOMEM, "model init: out of memory for tensor %s", name);
    pl_status st = keep(keep_l, data);
    if (st) { free(data); return st; }
    pl_rng r = pl_rng_split(master, idx);
    for (int64_t i = 0; i < n; i++) {
        float x = vals ? vals[i] : std > 0 ? (float)(std * (double)pl_rng_normal(&r)) : fill;
        if (dtype == PL_GGML_F32) ((float *)data)[i] = x;
        else if (dtype == PL_GGML_F16) ((uint16_t *)data)[i] = pl_model_f32_to_f16(x);
        else ((uint16_t *)data)[i] = f32_to_bf16(x);
    }
    int64_t ne[2] = {ne0, ne1};
    return pl_gguf_writer_add_tensor(w, name, (uint32_t)dtype, ne1 > 1 ? 2 : 1, ne, data, (size_t)n * esz);
}

/* Llama 3.1 rope scaling as per-frequency divisors (factor 8, low 1, high 4,
 * original context 8192), the values GGUF's rope_freqs.weight holds. */
static void llama3_freqs(float *out, int n_rot, double base) {
    const double factor = 8, lo = 1, hi = 4, orig = 8192, pi = 3.14159265358979323846;
    for (int i = 0; i < n_rot / 2; i++) {
        double f = pow(base, -2.0 * i / n_rot), wl = 2 * pi / f, div;
        if (wl < orig / hi) div = 1.0;
        else if (wl > orig / lo) div = factor;
        else {
            double s = (orig / wl - lo) / (hi - lo);
            div = 1.0 / ((1 - s) / factor + s);
        }
        out[i] = (float)div;
    }
}

static pl_status build(pl_model_init_opts o, pl_buf *out) {
    pl_status st = pl_model_init_resolve(&o);
    if (st) return st;
    vocab_src v;
    if ((st = vocab_open(o.tokenizer, &v))) {
        vocab_free(&v);
        return st;
    }
    const int64_t nv = pl_tokenizer_n_vocab(v.tok), D = o.d_model, hd = o.head_dim;
    const int64_t qd = (int64_t)o.n_head * hd, kvd = (int64_t)o.n_kv_head * hd, F = o.n_ff, L = o.n_layer;
    size_t esz = o.dtype == PL_GGML_F32 ? 4 : 2;
    double bytes = (double)esz * ((double)nv * D * (o.tied ? 1 : 2) + (double)L * (2.0 * D * qd + 2.0 * D * kvd + 3.0 * D * F));
    if (nv > (1 << 24)) {
        vocab_free(&v);
        return pl_error(PL_ERR_INVALID, "model init: vocabulary of %lld tokens is above the loader's limit of 2^24",
                        (long long)nv);
    }
    if (bytes > 16.0 * 1024 * 1024 * 1024) {
        vocab_free(&v);
        return pl_error(PL_ERR_INVALID, "model init: the weights would take %.1f GiB (vocabulary %lld × d_model %lld "
                        "in %s...); the limit for a random init is 16 GiB", bytes / (1024.0 * 1024 * 1024),
                        (long long)nv, (long long)D, pl_ggml_type((uint32_t)o.dtype)->name);
    }
    if ((st = vocab_check(&v, o.tokenizer))) {
        vocab_free(&v);
        return st;
    }

    pl_gguf_writer *w = NULL;
    buf_list kl = {0};
    const char *arch = o.arch == PL_ARCH_GEMMA2 ? "gemma2" : "llama";
    char key[128];
#define K(s) (snprintf(key, sizeof key, "%s.%s", arch, s), key)
    uint32_t ftype = o.dtype == PL_GGML_F32 ? 0 : o.dtype == PL_GGML_F16 ? 1 : 32; /* llama_ftype ALL_F32 / MOSTLY_F16 / MOSTLY_BF16 */
    if ((st = pl_gguf_writer_new(&w))) goto out;
    if ((st = pl_gguf_writer_add_str(w, "general.architecture", arch)) ||
        (st = pl_gguf_writer_add_str(w, "general.name", o.name)) ||
        (st = pl_gguf_writer_add_u32(w, "general.file_type", ftype)) ||
        (st = pl_gguf_writer_add_u32(w, K("context_length"), (uint32_t)o.n_ctx)) ||
        (st = pl_gguf_writer_add_u32(w, K("embedding_length"), (uint32_t)D)) ||
        (st = pl_gguf_writer_add_u32(w, K("block_count"), (uint32_t)L)) ||
        (st = pl_gguf_writer_add_u32(w, K("feed_forward_length"), (uint32_t)F)) ||
        (st = pl_gguf_writer_add_u32(w, K("attention.head_count"), (uint32_t)o.n_head)) ||
        (st = pl_gguf_writer_add_u32(w, K("attention.head_count_kv"), (uint32_t)o.n_kv_head)) ||
        (st = pl_gguf_writer_add_u32(w, K("attention.key_length"), (uint32_t)hd)) ||
        (st = pl_gguf_writer_add_u32(w, K("attention.value_length"), (uint32_t)hd)) ||
        (st = pl_gguf_writer_add_u32(w, K("rope.dimension_count"), (uint32_t)hd)) ||
        (st = pl_gguf_writer_add_f32(w, K("rope.freq_base"), (float)o.rope_base)) ||
        (st = pl_gguf_writer_add_f32(w, K("attention.layer_norm_rms_epsilon"), o.arch == PL_ARCH_GEMMA2 ? 1e-6f : 1e-5f)) ||
        (st = pl_gguf_writer_add_u32(w, K("vocab_size"), (uint32_t)nv)))
        goto out;
    if (o.arch == PL_ARCH_GEMMA2) {
        if ((o.window > 0 && (st = pl_gguf_writer_add_u32(w, K("attention.sliding_window"), (uint32_t)o.window))) ||
            (st = pl_gguf_writer_add_f32(w, K("attn_logit_softcapping"), (float)o.attn_softcap)) ||
            (st = pl_gguf_writer_add_f32(w, K("final_logit_softcapping"), (float)o.final_softcap)))
            goto out;
    }
    if ((st = pl_gguf_writer_add_u64(w, "phishlens.init.seed", o.seed)) ||
        (st = pl_gguf_writer_add_str(w, "phishlens.init.scheme",
                                     "normal std 0.02; attn_output and ffn_down 0.02/sqrt(2*n_layer); norms 1")))
        goto out;
    if ((st = vocab_write(&v, w))) goto out;
#undef K

    pl_rng master;
    pl_rng_seed(&master, o.seed);
    uint64_t idx = 0;
    const double so = INIT_STD / sqrt(2.0 * (double)L);
    if ((st = add_t(w, &kl, &master, idx++, "token_embd.weight", o.dtype, D, nv, INIT_STD, 0, NULL))) goto out;
    if (o.llama3_rope) {
        float *fr = malloc((size_t)(hd / 2) * sizeof *fr);
        if (!fr || (st = keep(&kl, fr))) {
            free(fr);
            if (!st) st = pl_error(PL_ERR_NOMEM, "out of memory");
            goto out;
        }
        llama3_freqs(fr, (int)hd, o.rope_base);
        if ((st = add_t(w, &kl, &master, idx++, "rope_freqs.weight", PL_GGML_F32, hd / 2, 1, 0, 0, fr))) goto out;
    }
    for (int64_t l = 0; l < L; l++) {
        char nm[96];
#define N(s) (snprintf(nm, sizeof nm, "blk.%lld.%s.weight", (long long)l, s), nm)
        if ((st = add_t(w, &kl, &master, idx++, N("attn_norm"), PL_GGML_F32, D, 1, 0, 1.0f, NULL)) ||
            (st = add_t(w, &kl, &master, idx++, N("attn_q"), o.dtype, D, qd, INIT_STD, 0, NULL)) ||
            (st = add_t(w, &kl, &master, idx++, N("attn_k"), o.dtype, D, kvd, INIT_STD, 0, NULL)) ||
            (st = add_t(w, &kl, &master, idx++, N("attn_v"), o.dtype, D, kvd, INIT_STD, 0, NULL)) ||
            (st = add_t(w, &kl, &master, idx++, N("attn_output"), o.dtype, qd, D, so, 0, NULL)))
            goto out;
        if (o.arch == PL_ARCH_GEMMA2 &&
            (st = add_t(w, &kl, &master, idx++, N("post_attention_norm"), PL_GGML_F32, D, 1, 0, 1.0f, NULL)))
            goto out;
        if ((st = add_t(w, &kl, &master, idx++, N("ffn_norm"), PL_GGML_F32, D, 1, 0, 1.0f, NULL)) ||
            (st = add_t(w, &kl, &master, idx++, N("ffn_gate"), o.dtype, D, F, INIT_STD, 0, NULL)) ||
            (st = add_t(w, &kl, &master, idx++, N("ffn_up"), o.dtype, D, F, INIT_STD, 0, NULL)) ||
            (st = add_t(w, &kl, &master, idx++, N("ffn_down"), o.dtype, F, D, so, 0, NULL)))
            goto out;
        if (o.arch == PL_ARCH_GEMMA2 &&
            (st = add_t(w, &kl, &master, idx++, N("post_ffw_norm"), PL_GGML_F32, D, 1, 0, 1.0f, NULL)))
            goto out;
#undef N
    }
    if ((st = add_t(w, &kl, &master, idx++, "output_norm.weight", PL_GGML_F32, D, 1, 0, 1.0f, NULL))) goto out;
    if (!o.tied && (st = add_t(w, &kl, &master, idx++, "output.weight", o.dtype, D, nv, INIT_STD, 0, NULL))) goto out;
    st = pl_gguf_writer_to_buf(w, out);
out:
    for (size_t i = 0; i < kl.n; i++) free(kl.bufs[i]);
    free(kl.bufs);
    pl_gguf_writer_free(w);
    vocab_free(&v);
    return st;
}

pl_status pl_model_init_to_buf(const pl_model_init_opts *o, pl_buf *out) {
    size_t len0 = out->len;
    pl_status st = build(*o, out);
    if (st) out->len = len0;
    return st;
}

pl_status pl_model_init_write(const pl_model_init_opts *o, const char *path) {
    pl_buf b = {0};
    pl_status st = pl_model_init_to_buf(o, &b);
    if (!st) st = pl_write_file_atomic(path, b.data, b.len);
    pl_buf_free(&b);
    return st;
}
