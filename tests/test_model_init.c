/* test_model_init.c — `model init`: random GGUF models of each family.
 *
 * For llama / mistral / gemma2: the metadata read back (the fields `model
 * info` prints) equals the options; the model loads and a forward on a few
 * tokens gives finite logits with a spread in the range the init scheme
 * implies; weight statistics match the documented scheme (std 0.02, output
 * projections 0.02/sqrt(2L), norms exactly 1, llama3 rope factors 1 and 8 at
 * the ends); the same seed gives byte-identical files, another seed a
 * different one; the embedded vocabulary tokenizes exactly like its source
 * (a tokenizer trained here with pl_bpe_train, and the shared SPM GGUF) on a
 * few hundred strings with special tokens and non-ASCII text; bad options and
 * inputs give clear errors and leave no file behind.
 */
#include "harness.h"
#include "io/io.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

#include <unistd.h>

static char tmpdir[256];

static const char *const frags[] = {
    "Dear customer", "your account", " has been suspended", "Verify", " your password", " now!", "https://",
    "secure-login.example.com/verify?id=", "12345", " 3.14", "caf\xc3\xa9", " na\xc3\xafve", " \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
    " \xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", " \xf0\x9f\x98\x80", "I'm", " they'll", " DON'T", "\n\n", "  ", "\t",
    "<|bos|>", "<|eos|>", "<|pad|>", "<|unk|>", "meeting", " notes", " budget", " Friday", "!!!", ",", ".",
};
#define N_FRAGS (sizeof frags / sizeof *frags)

static pl_status train_tokenizer(const char *path) {
    enum { N = 300 };
    char *texts[N];
    size_t lens[N];
    pl_rng r;
    pl_rng_seed(&r, 7);
    for (int i = 0; i < N; i++) {
        pl_buf b = {0};
        int k = 4 + (int)pl_rng_below(&r, 10);
        for (int j = 0; j < k; j++) {
            const char *f = frags[pl_rng_below(&r, 21)]; /* no special-token texts in the training text */
            pl_buf_append(&b, f, strlen(f));
            pl_buf_append(&b, " ", 1);
        }
        texts[i] = b.data;
        lens[i] = b.len;
    }
    pl_bpe_train_opts o = {.vocab_size = 420, .min_frequency = 2, .show_progress = 0};
    char *json = NULL;
    size_t jl = 0;
    pl_status st = pl_bpe_train((const char *const *)texts, lens, N, &o, &json, &jl);
    if (!st) st = pl_write_file_atomic(path, json, jl);
    free(json);
    for (int i = 0; i < N; i++) free(texts[i]);
    return st;
}

/* Same ids from both tokenizers on n random strings (with and without special parsing). */
static void check_same_ids(const char *a_path, const char *b_path, int n, const char *what) {
    pl_tokenizer *a = NULL, *b = NULL;
    CHECK_OK(pl_tokenizer_load(a_path, &a));
    CHECK_OK(pl_tokenizer_load(b_path, &b));
    if (!a || !b) goto out;
    CHECK(pl_tokenizer_n_vocab(a) == pl_tokenizer_n_vocab(b), "%s: n_vocab %d vs %d", what, pl_tokenizer_n_vocab(a),
          pl_tokenizer_n_vocab(b));
    CHECK(pl_tokenizer_kind(a) == pl_tokenizer_kind(b) && pl_tokenizer_bos(a) == pl_tokenizer_bos(b) &&
              pl_tokenizer_eos(a) == pl_tokenizer_eos(b) && pl_tokenizer_add_bos(a) == pl_tokenizer_add_bos(b),
          "%s: kind/bos/eos/add_bos differ", what);
    pl_rng r;
    pl_rng_seed(&r, 99);
    int bad = 0, total_tok = 0;
    for (int i = 0; i < n; i++) {
        pl_buf s = {0};
        int k = 1 + (int)pl_rng_below(&r, 8);
        for (int j = 0; j < k; j++) {
            const char *f = frags[pl_rng_below(&r, N_FRAGS)];
            pl_buf_append(&s, f, strlen(f));
            if (pl_rng_below(&r, 3) == 0) pl_buf_append(&s, " ", 1);
        }
        for (unsigned fl = 0; fl < 4; fl++) {
            pl_tokens x = {0}, y = {0};
            pl_status s1 = pl_tokenizer_encode(a, s.data, s.len, fl, &x);
            pl_status s2 = pl_tokenizer_encode(b, s.data, s.len, fl, &y);
            if (s1 || s2 || x.n != y.n || (x.n && memcmp(x.ids, y.ids, x.n * sizeof *x.ids))) {
                if (bad++ < 3) printf("  %s: '%.*s' (flags %u): %zu vs %zu ids\n", what, (int)s.len, s.data, fl, x.n, y.n);
            }
            total_tok += (int)x.n;
            pl_tokens_free(&x);
            pl_tokens_free(&y);
        }
        pl_buf_free(&s);
    }
    CHECK(bad == 0, "%s: %d of %d encodings differ", what, bad, n * 4);
    CHECK(total_tok > n * 4, "%s: too few tokens (%d) to mean anything", what, total_tok);
out:
    pl_tokenizer_free(a);
    pl_tokenizer_free(b);
}

static double tensor_std(const pl_gguf *g, const char *name, double *mean_out) {
    const pl_gguf_tensor *t = pl_gguf_find_tensor(g, name);
    if (!t || t->type != PL_GGML_F32) return -1;
    const float *x = t->data;
    double s = 0, ss = 0;
    for (int64_t i = 0; i < t->n_elements; i++) {
        s += (double)x[i];
        ss += (double)x[i] * (double)x[i];
    }
    double m = s / (double)t->n_elements;
    if (mean_out) *mean_out = m;
    return sqrt(ss / (double)t->n_elements - m * m);
}

static int all_equal(const pl_gguf *g, const char *name, float v) {
    const pl_gguf_tensor *t = pl_gguf_find_tensor(g, name);
    if (!t || t->type != PL_GGML_F32) return 0;
    for (int64_t i = 0; i < t->n_elements; i++)
        if (((const float *)t->data)[i] != v) return 0;
    return 1;
}

static void test_arch(pl_arch arch, int dtype, const char *tok_path) {
    const char *an = pl_arch_name(arch);
    pl_model_init_opts o = pl_model_init_defaults(arch);
    o.tokenizer = tok_path;
    o.n_layer = 3;
    o.d_model = 64;
    o.n_head = 4;
    o.n_kv_head = 2;
    o.n_ff = 96;
    o.n_ctx = 512;
    o.dtype = dtype;
    o.seed = 1234;
    if (arch == PL_ARCH_GEMMA2) {
        o.head_dim = 32;
        o.window = 4;
        o.attn_softcap = 20;
        o.final_softcap = 15;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/%s.gguf", tmpdir, an);
    CHECK_OK(pl_model_init_write(&o, path));

    /* metadata, as `model info` reads it */
    pl_gguf *g = NULL;
    pl_model_meta m;
    CHECK_OK(pl_gguf_open(path, &g));
    if (!g) return;
    CHECK_OK(pl_model_meta_from_gguf(g, &m));
    pl_tokenizer *tok = NULL;
    CHECK_OK(pl_tokenizer_load(tok_path, &tok));
    int nv = tok ? pl_tokenizer_n_vocab(tok) : -1;
    pl_tokenizer_free(tok);
    CHECK(m.arch == (arch == PL_ARCH_MISTRAL ? PL_ARCH_LLAMA : arch), "%s: arch %s", an, m.arch_name);
    CHECK(m.mistral_hint == (arch == PL_ARCH_MISTRAL), "%s: mistral hint %d", an, m.mistral_hint);
    CHECK(m.n_layers == 3 && m.d_model == 64 && m.n_heads == 4 && m.n_kv_heads == 2 && m.d_ff == 96 && m.n_ctx == 512,
          "%s: shape %lld/%lld/%lld/%lld/%lld/%lld", an, (long long)m.n_layers, (long long)m.d_model,
          (long long)m.n_heads, (long long)m.n_kv_heads, (long long)m.d_ff, (long long)m.n_ctx);
    CHECK(m.head_dim == (arch == PL_ARCH_GEMMA2 ? 32 : 16), "%s: head_dim %lld", an, (long long)m.head_dim);
    double base = arch == PL_ARCH_LLAMA ? 500000 : arch == PL_ARCH_MISTRAL ? 1e6 : 10000;
    CHECK(m.rope_base == base, "%s: rope base %g, want %g", an, m.rope_base, base);
    CHECK(m.has_rope_freqs == (arch == PL_ARCH_LLAMA), "%s: rope_freqs %d", an, m.has_rope_freqs);
    CHECK(m.sliding_window == (arch == PL_ARCH_GEMMA2 ? 4 : 0), "%s: window %lld", an, (long long)m.sliding_window);
    CHECK(m.attn_softcap == (arch == PL_ARCH_GEMMA2 ? 20 : 0) && m.final_softcap == (arch == PL_ARCH_GEMMA2 ? 15 : 0),
          "%s: softcaps %g %g", an, m.attn_softcap, m.final_softcap);
    CHECK(m.tied_output == (arch == PL_ARCH_GEMMA2), "%s: tied %d", an, m.tied_output);
    CHECK(m.vocab_size == nv && m.n_tokens == nv, "%s: vocab %lld tokens %lld, want %d", an, (long long)m.vocab_size,
          (long long)m.n_tokens, nv);
    CHECK(m.tok_kind == PL_META_TOK_BPE && !strcmp(m.tok_pre, "llama-bpe"), "%s: tokenizer %s/%s", an, m.tok_model,
          m.tok_pre);
    const char *want_dt = pl_ggml_type((uint32_t)dtype)->name;
    int found = 0;
    for (int i = 0; i < m.n_dtypes; i++) found |= !strcmp(m.dtypes[i].name, want_dt);
    CHECK(found, "%s: no %s tensors", an, want_dt);
    pl_buf info = {0};
    CHECK_OK(pl_model_meta_format(&m, &info));
    pl_buf_free(&info);

    /* init scheme (f32 files: read the values) */
    if (dtype == PL_GGML_F32) {
        double mean;
        double se = tensor_std(g, "token_embd.weight", &mean);
        CHECK(fabs(se - 0.02) < 0.02 * 0.05 && fabs(mean) < 0.002, "%s: token_embd std %g mean %g", an, se, mean);
        double so = tensor_std(g, "blk.1.attn_output.weight", NULL), want = 0.02 / sqrt(6.0);
        CHECK(fabs(so - want) < want * 0.08, "%s: attn_output std %g, want %g", an, so, want);
        so = tensor_std(g, "blk.2.ffn_down.weight", NULL);
        CHECK(fabs(so - want) < want * 0.08, "%s: ffn_down std %g, want %g", an, so, want);
        double sq = tensor_std(g, "blk.0.attn_q.weight", NULL);
        CHECK(fabs(sq - 0.02) < 0.02 * 0.08, "%s: attn_q std %g", an, sq);
    }
    CHECK(all_equal(g, "blk.0.attn_norm.weight", 1.0f) && all_equal(g, "output_norm.weight", 1.0f),
          "%s: norms are not all 1", an);
    if (arch == PL_ARCH_GEMMA2)
        CHECK(all_equal(g, "blk.2.post_attention_norm.weight", 1.0f) && all_equal(g, "blk.2.post_ffw_norm.weight", 1.0f),
              "gemma2: post norms are not all 1");
    if (arch == PL_ARCH_LLAMA) {
        const pl_gguf_tensor *rf = pl_gguf_find_tensor(g, "rope_freqs.weight");
        CHECK(rf && rf->n_elements == 8, "llama: rope_freqs shape");
        /* i = 0: wavelength 2π < 8192/4 -> 1; i = 7: 500000^(7/8) ≈ 9.6e4, wavelength > 8192 -> factor 8 */
        if (rf) CHECK(((const float *)rf->data)[0] == 1.0f && ((const float *)rf->data)[7] == 8.0f,
                      "llama: rope_freqs ends %g %g", (double)((const float *)rf->data)[0],
                      (double)((const float *)rf->data)[7]);
    }
    pl_gguf_close(g);

    /* load and run */
    pl_model *mod = NULL;
    CHECK_OK(pl_model_load(path, NULL, &mod));
    if (!mod) return;
    const pl_arch_desc *d = pl_model_desc(mod);
    CHECK(d->n_vocab == nv && d->n_layer == 3 && d->post_norms == (arch == PL_ARCH_GEMMA2) &&
              d->act == (arch == PL_ARCH_GEMMA2 ? PL_ACT_GELU_TANH : PL_ACT_SILU),
          "%s: descriptor", an);
    if (arch == PL_ARCH_GEMMA2)
        CHECK(d->swa_window == 4 && d->swa_layer[0] && !d->swa_layer[1] && d->swa_layer[2] &&
                  fabsf(d->embd_scale - 8.0f) < 1e-6f,
              "gemma2: window/embedding scale");
    enum { T = 6 };
    int32_t ids[T] = {0, 5, 17, 300, 42, 99};
    float *logits = malloc((size_t)T * (size_t)nv * sizeof *logits);
    pl_runner *r = NULL;
    pl_kv *kv = NULL;
    CHECK_OK(pl_runner_new(mod, T, 64, &r));
    CHECK_OK(pl_kv_new(mod, 64, NULL, &kv));
    if (r && kv && logits) {
        pl_seq s = {kv, ids, T};
        CHECK_OK(pl_forward(r, &s, 1, PL_LOGITS_ALL, logits));
        int finite = 1;
        double minsd = 1e9, maxsd = 0, maxabs = 0;
        for (int t = 0; t < T; t++) {
            double sum = 0, ss = 0;
            for (int v = 0; v < nv; v++) {
                float x = logits[(size_t)t * nv + v];
                finite &= isfinite(x);
                sum += (double)x;
                ss += (double)x * (double)x;
                if (fabs((double)x) > maxabs) maxabs = fabs((double)x);
            }
            double mu = sum / nv, sd = sqrt(ss / nv - mu * mu);
            if (sd < minsd) minsd = sd;
            if (sd > maxsd) maxsd = sd;
        }
        CHECK(finite, "%s: non-finite logits", an);
        /* final hidden state has RMS 1 after the norm; each logit is a dot with
         * a N(0, 0.02²) row of length 64: std ≈ 0.02·sqrt(64) = 0.16 */
        CHECK(minsd > 0.08 && maxsd < 0.32, "%s: logit std per position in [%g, %g], want ≈ 0.16", an, minsd, maxsd);
        if (arch == PL_ARCH_GEMMA2) CHECK(maxabs < 15.0, "gemma2: |logit| %g above the final soft-cap", maxabs);
    }
    pl_kv_free(kv);
    pl_runner_free(r);
    free(logits);
    pl_model_free(mod);

    check_same_ids(tok_path, path, 100, an);
}

static void test_determinism(const char *tok_path) {
    pl_model_init_opts o = pl_model_init_defaults(PL_ARCH_GEMMA2);
    o.tokenizer = tok_path;
    o.n_layer = 2;
    o.d_model = 32;
    o.n_head = 2;
    o.n_kv_head = 1;
    o.head_dim = 16;
    o.n_ff = 64;
    o.seed = 5;
    o.dtype = PL_GGML_F16;
    pl_buf a = {0}, b = {0}, c = {0};
    CHECK_OK(pl_model_init_to_buf(&o, &a));
    CHECK_OK(pl_model_init_to_buf(&o, &b));
    o.seed = 6;
    CHECK_OK(pl_model_init_to_buf(&o, &c));
    CHECK(a.len > 0 && a.len == b.len && !memcmp(a.data, b.data, a.len), "same seed: files differ");
    CHECK(a.len == c.len && memcmp(a.data, c.data, a.len) != 0, "another seed: same file");
    /* the file written equals the buffer */
    char path[512];
    snprintf(path, sizeof path, "%s/det.gguf", tmpdir);
    o.seed = 5;
    CHECK_OK(pl_model_init_write(&o, path));
    char *f = NULL;
    size_t fl = 0;
    CHECK_OK(pl_read_file(path, &f, &fl));
    CHECK(f && fl == a.len && !memcmp(f, a.data, fl), "written file differs from the buffer");
    free(f);
    unlink(path);
    pl_buf_free(&a);
    pl_buf_free(&b);
    pl_buf_free(&c);
}

static void expect_err(pl_model_init_opts o, pl_status want, const char *needle, const char *what) {
    char path[512];
    snprintf(path, sizeof path, "%s/bad.gguf", tmpdir);
    pl_status st = pl_model_init_write(&o, path);
    CHECK(st == want, "%s: got %s (%s), want %s", what, pl_status_str(st), pl_errmsg(), pl_status_str(want));
    CHECK(!needle || strstr(pl_errmsg(), needle), "%s: message '%s' lacks '%s'", what, pl_errmsg(), needle);
    CHECK(access(path, F_OK) != 0, "%s: a file was left behind", what);
}

static void test_errors(const char *tok_path) {
    pl_model_init_opts o = pl_model_init_defaults(PL_ARCH_LLAMA);
    o.tokenizer = tok_path;
    pl_model_init_opts x = o;
    x.n_head = 5; /* kv heads stay 2: the d_model message must come first */
    expect_err(x, PL_ERR_INVALID, "does not divide --d-model", "heads vs d_model");
    x = o;
    x.n_kv_head = 3;
    expect_err(x, PL_ERR_INVALID, "does not divide --heads", "kv heads vs heads");
    x = o;
    x.arch = PL_ARCH_UNKNOWN;
    expect_err(x, PL_ERR_INVALID, "unknown architecture", "arch");
    x = o;
    x.window = 64;
    expect_err(x, PL_ERR_INVALID, "--window", "window on llama");
    x = pl_model_init_defaults(PL_ARCH_MISTRAL);
    x.tokenizer = tok_path;
    x.final_softcap = 30;
    expect_err(x, PL_ERR_INVALID, "gemma2 only", "softcap on mistral");
    x = o;
    x.dtype = PL_GGML_Q8_0;
    expect_err(x, PL_ERR_INVALID, "--dtype", "dtype");
    x = o;
    x.head_dim = 7;
    expect_err(x, PL_ERR_INVALID, "--head-dim", "odd head dim");
    x = o;
    x.tokenizer = NULL;
    expect_err(x, PL_ERR_INVALID, "--tokenizer", "no tokenizer");
    x = o;
    x.d_model = 65536;
    x.n_head = 64;
    x.n_ff = 1 << 20;
    expect_err(x, PL_ERR_INVALID, "GiB", "too big");
    char p[512];
    snprintf(p, sizeof p, "%s/missing.json", tmpdir);
    x = o;
    x.tokenizer = p;
    expect_err(x, PL_ERR_IO, "missing.json", "missing tokenizer");
    /* a SentencePiece-style tokenizer.json */
    snprintf(p, sizeof p, "%s/spm.json", tmpdir);
    const char *spm = "{\"model\":{\"type\":\"BPE\",\"byte_fallback\":true,\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":2,"
                      "\"\xe2\x96\x81\":3,\"a\":4,\"\xe2\x96\x81" "a\":5},\"merges\":[\"\xe2\x96\x81 a\"]},"
                      "\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\xe2\x96\x81\",\"prepend_scheme\":\"always\"}}";
    CHECK_OK(pl_write_file_atomic(p, spm, strlen(spm)));
    x = o;
    x.tokenizer = p;
    expect_err(x, PL_ERR_UNSUPPORTED, "SentencePiece", "SPM tokenizer.json");
    unlink(p);
}

int main(void) {
    T_BEGIN();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pl_test_init_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        CHECK(0, "mkdtemp failed");
        return T_END();
    }
    char tok[512];
    snprintf(tok, sizeof tok, "%s/tokenizer.json", tmpdir);
    CHECK_OK(train_tokenizer(tok));

    test_arch(PL_ARCH_LLAMA, PL_GGML_F32, tok);
    test_arch(PL_ARCH_MISTRAL, PL_GGML_F16, tok);
    test_arch(PL_ARCH_GEMMA2, PL_GGML_BF16, tok);
    test_arch(PL_ARCH_GEMMA2, PL_GGML_F32, tok);
    test_determinism(tok);
    test_errors(tok);

    /* an SPM vocabulary from a GGUF (the shared stories260K model) */
    const char *sh = pl_test_shared();
    if (sh) {
        char src[4200], out[512];
        snprintf(src, sizeof src, "%s/models/stories260K.gguf", sh);
        snprintf(out, sizeof out, "%s/spm.gguf", tmpdir);
        pl_model_init_opts o = pl_model_init_defaults(PL_ARCH_MISTRAL);
        o.tokenizer = src;
        o.n_layer = 2;
        o.d_model = 32;
        o.n_head = 4;
        o.n_kv_head = 2;
        o.n_ff = 64;
        CHECK_OK(pl_model_init_write(&o, out));
        check_same_ids(src, out, 300, "stories260K SPM vocab");
        unlink(out);
    } else {
        SKIP("../shared absent: SPM vocabulary from GGUF not tested");
    }

    char p[600];
    const char *names[] = {"tokenizer.json", "llama.gguf", "mistral.gguf", "gemma2.gguf"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(p, sizeof p, "%s/%s", tmpdir, names[i]);
        unlink(p);
    }
    rmdir(tmpdir);
    return T_END();
}
