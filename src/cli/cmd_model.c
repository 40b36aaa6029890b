/* cmd_model.c — `phishlens model info FILE.gguf|HF_DIR [--json]`: what a
 * model file says about its architecture, tokenizer and tensors (the fields
 * of pl_model_meta, documented in docs/models.md). Reads metadata only; the
 * weights are mapped, never loaded.
 * `phishlens model init --arch A --tokenizer T [...] -o M.gguf`: a small
 * random model with T's vocabulary embedded (src/model/init.c; docs/models.md
 * section "model init"). */
#include "cli.h"
#include "io/io.h"
#include "model/model.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include <string.h>
#include <sys/stat.h>

static const char *usage_text =
    "usage: phishlens model info FILE.gguf|HF_DIR [--json]\n"
    "       phishlens model init --arch llama|mistral|gemma2 --tokenizer T -o M.gguf [...]\n"
    "         (a random model; phishlens model init --help)\n"
    "\n"
    "Print a model's architecture (layers, d_model, heads, kv heads, head dim,\n"
    "ff dim), context length, RoPE base and scaling, sliding window, soft-caps,\n"
    "vocabulary and tokenizer kind, and tensor count and bytes per dtype.\n"
    "FILE.gguf is read as GGUF (v2/v3); a directory as a Hugging Face model\n"
    "(config.json, tokenizer.json, *.safetensors).\n"
    "  --json   print one JSON object instead of the summary\n";

static int model_info(int argc, char **argv) {
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("%s", usage_text);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) return cli_usage_error("model", "unknown option '%s'", argv[i]);
        else if (path) return cli_usage_error("model", "one model path expected, got '%s' and '%s'", path, argv[i]);
        else path = argv[i];
    }
    if (!path) return cli_usage_error("model", "missing FILE.gguf or HF_DIR");

    pl_model_meta m;
    pl_buf out = {0};
    pl_status st;
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        st = pl_model_meta_from_hf(path, &m);
        if (!st && !json) st = pl_buf_printf(&out, "%-15s %s (Hugging Face directory)\n", "file", path);
    } else {
        pl_gguf *g = NULL;
        st = pl_gguf_open(path, &g);
        if (!st) st = pl_model_meta_from_gguf(g, &m);
        if (!st && !json)
            st = pl_buf_printf(&out, "%-15s %s (GGUF v%u, %llu bytes, %lld keys, alignment %llu)\n", "file", path,
                               pl_gguf_version(g), (unsigned long long)pl_gguf_file_size(g),
                               (long long)pl_gguf_n_kv(g), (unsigned long long)pl_gguf_alignment(g));
        pl_gguf_close(g);
    }
    if (!st) st = json ? pl_model_meta_json(&m, &out) : pl_model_meta_format(&m, &out);
    if (st) {
        pl_buf_free(&out);
        return cli_fail(st);
    }
    fwrite(out.data, 1, out.len, stdout);
    if (json) fputc('\n', stdout);
    pl_buf_free(&out);
    return fflush(stdout) == 0 ? 0 : cli_fail(pl_error(PL_ERR_IO, "writing to stdout failed"));
}

static const char *init_usage =
    "usage: phishlens model init --arch llama|mistral|gemma2 --tokenizer T -o M.gguf\n"
    "         [--layers N] [--d-model D] [--heads H] [--kv-heads K] [--head-dim HD] [--ff F]\n"
    "         [--ctx C] [--rope-base B] [--llama3-rope 0|1] [--window W] [--attn-softcap A]\n"
    "         [--final-softcap S] [--tied 0|1] [--dtype f32|f16|bf16] [--seed S]\n"
    "\n"
    "Write a small random model as one GGUF with the vocabulary of T (a byte-level\n"
    "BPE tokenizer.json or directory, or a .gguf holding a vocabulary) embedded.\n"
    "Weights: N(0, 0.02^2), attn_output/ffn_down 0.02/sqrt(2*layers), norms 1.\n"
    "Family defaults (see docs/models.md, \"model init\"):\n"
    "  llama    4 layers, d 256, 8 heads / 2 kv, ff 768, ctx 2048, rope 500000,\n"
    "           Llama 3.1 rope_freqs (--llama3-rope 1), untied\n"
    "  mistral  GGUF arch llama named \"...Mistral...\": 4 layers, d 256, 8/2 heads, ff 768,\n"
    "           ctx 4096, rope 1e6, untied, no sliding window (GGUF llama has none)\n"
    "  gemma2   4 layers, d 256, 4 heads / 2 kv, head dim 64, ff 1024, ctx 8192, window 128\n"
    "           on even layers, soft-caps 50 / 30, tied\n"
    "The same seed gives a byte-identical file. The output is written atomically.\n";

static int parse_int_opt(const char *opt, const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 1L << 30)
        return cli_usage_error("model", "%s: '%s' is not a non-negative integer", opt, s);
    *out = (int)v;
    return 0;
}

static int parse_double_opt(const char *opt, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0)
        return cli_usage_error("model", "%s: '%s' is not a non-negative number", opt, s);
    *out = v;
    return 0;
}

static int model_init(int argc, char **argv) {
    const char *arch = NULL, *out = NULL;
    pl_model_init_opts o = pl_model_init_defaults(PL_ARCH_UNKNOWN);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("%s", init_usage);
            return 0;
        }
        if (a[0] != '-') return cli_usage_error("model", "init: unexpected argument '%s'", a);
        if (i + 1 >= argc) return cli_usage_error("model", "init: %s needs a value", a);
        const char *v = argv[++i];
        int rc = 0;
        if (!strcmp(a, "--arch")) arch = v;
        else if (!strcmp(a, "--tokenizer")) o.tokenizer = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = v;
        else if (!strcmp(a, "--layers")) rc = parse_int_opt(a, v, &o.n_layer);
        else if (!strcmp(a, "--d-model")) rc = parse_int_opt(a, v, &o.d_model);
        else if (!strcmp(a, "--heads")) rc = parse_int_opt(a, v, &o.n_head);
        else if (!strcmp(a, "--kv-heads")) rc = parse_int_opt(a, v, &o.n_kv_head);
        else if (!strcmp(a, "--head-dim")) rc = parse_int_opt(a, v, &o.head_dim);
        else if (!strcmp(a, "--ff")) rc = parse_int_opt(a, v, &o.n_ff);
        else if (!strcmp(a, "--ctx")) rc = parse_int_opt(a, v, &o.n_ctx);
        else if (!strcmp(a, "--window")) rc = parse_int_opt(a, v, &o.window);
        else if (!strcmp(a, "--tied")) rc = parse_int_opt(a, v, &o.tied);
        else if (!strcmp(a, "--llama3-rope")) rc = parse_int_opt(a, v, &o.llama3_rope);
        else if (!strcmp(a, "--rope-base")) rc = parse_double_opt(a, v, &o.rope_base);
        else if (!strcmp(a, "--attn-softcap")) rc = parse_double_opt(a, v, &o.attn_softcap);
        else if (!strcmp(a, "--final-softcap")) rc = parse_double_opt(a, v, &o.final_softcap);
        else if (!strcmp(a, "--dtype")) {
            if (!strcmp(v, "f32")) o.dtype = PL_GGML_F32;
            else if (!strcmp(v, "f16")) o.dtype = PL_GGML_F16;
            else if (!strcmp(v, "bf16")) o.dtype = PL_GGML_BF16;
            else return cli_usage_error("model", "init: --dtype '%s': expected f32, f16 or bf16", v);
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-')
                return cli_usage_error("model", "init: --seed '%s' is not a non-negative integer", v);
            o.seed = (uint64_t)s;
        } else return cli_usage_error("model", "init: unknown option '%s'", a);
        if (rc) return rc;
    }
    if (!arch) return cli_usage_error("model", "init: --arch is required (llama, mistral, gemma2)");
    if (!strcmp(arch, "llama")) o.arch = PL_ARCH_LLAMA;
    else if (!strcmp(arch, "mistral")) o.arch = PL_ARCH_MISTRAL;
    else if (!strcmp(arch, "gemma2")) o.arch = PL_ARCH_GEMMA2;
    else return cli_usage_error("model", "init: unknown --arch '%s' (llama, mistral, gemma2)", arch);
    if (!o.tokenizer) return cli_usage_error("model", "init: --tokenizer is required");
    if (!out) return cli_usage_error("model", "init: -o M.gguf is required");
    pl_status st = pl_model_init_resolve(&o);
    if (st == PL_ERR_INVALID) return cli_usage_error("model", "%s", pl_errmsg());
    if (!st) st = pl_model_init_write(&o, out);
    if (st) return cli_fail(st);
    fprintf(stderr, "phishlens model init: wrote %s (%s, %d layers, d_model %d, %d/%d heads, head dim %d, ff %d, seed %llu)\n",
            out, arch, o.n_layer, o.d_model, o.n_head, o.n_kv_head, o.head_dim, o.n_ff, (unsigned long long)o.seed);
    return 0;
}

int cmd_model(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(argc < 2 ? stderr : stdout, "%s", usage_text);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    if (!strcmp(argv[1], "info")) return model_info(argc - 1, argv + 1);
    if (!strcmp(argv[1], "init")) return model_init(argc - 1, argv + 1);
    fprintf(stderr, "phishlens model: unknown subcommand '%s'\n%s", argv[1], usage_text);
    return EXIT_USAGE;
}
