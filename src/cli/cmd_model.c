/* cmd_model.c — `phishlens model info FILE.gguf|HF_DIR [--json]`: what a
 * model file says about its architecture, tokenizer and tensors (the fields
 * of pl_model_meta, documented in docs/models.md). Reads metadata only; the
 * weights are mapped, never loaded. */
#include "cli.h"
#include "io/io.h"

#include <string.h>
#include <sys/stat.h>

static const char *usage_text =
    "usage: phishlens model info FILE.gguf|HF_DIR [--json]\n"
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

int cmd_model(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(argc < 2 ? stderr : stdout, "%s", usage_text);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    if (!strcmp(argv[1], "info")) return model_info(argc - 1, argv + 1);
    fprintf(stderr, "phishlens model: unknown subcommand '%s'\n%s", argv[1], usage_text);
    return EXIT_USAGE;
}
