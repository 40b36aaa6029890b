/* cmd_logits.c — `phishlens logits`: run a model over token ids and write
 * the logits of every position (little-endian float32 [n_tokens × n_vocab])
 * or print the top-5 tokens per position.
 *
 * Also the model-loading helpers shared with `generate` (cli_model_*). */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

pl_status cli_parse_ids(const char *s, int32_t **ids, int *n) {
    *ids = NULL;
    *n = 0;
    size_t cap = 16, len = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v) return pl_error(PL_ERR_NOMEM, "out of memory");
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == ',') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > INT32_MAX) {
            free(v);
            return pl_error(PL_ERR_INVALID, "--ids: '%.20s' at offset %zu is not a token id", p, (size_t)(p - s));
        }
        if (len == cap) {
            int32_t *nv = realloc(v, 2 * cap * sizeof *v);
            if (!nv) {
                free(v);
                return pl_error(PL_ERR_NOMEM, "out of memory");
            }
            v = nv;
            cap *= 2;
        }
        v[len++] = (int32_t)x;
        p = end;
    }
    if (len == 0) {
        free(v);
        return pl_error(PL_ERR_INVALID, "--ids: no token ids given");
    }
    if (len > (1u << 24)) {
        free(v);
        return pl_error(PL_ERR_INVALID, "--ids: too many ids");
    }
    *ids = v;
    *n = (int)len;
    return PL_OK;
}

/* Shared model options: -m, --lora (repeatable), --exact-matmul, --exact-gelu,
 * --bf16. */
int cli_model_opt(cli_model_args *a, const char *cmd, int argc, char **argv, int *i) {
    const char *o = argv[*i];
    if (!strcmp(o, "-m") || !strcmp(o, "--model")) {
        if (*i + 1 >= argc) return cli_usage_error(cmd, "%s needs a value", o), -1;
        a->model = argv[++*i];
        return 1;
    }
    if (!strcmp(o, "--lora")) {
        if (*i + 1 >= argc) return cli_usage_error(cmd, "%s needs a value", o), -1;
        if (a->n_lora >= CLI_MAX_LORA) return cli_usage_error(cmd, "at most %d --lora", CLI_MAX_LORA), -1;
        a->lora[a->n_lora++] = argv[++*i];
        return 1;
    }
    if (!strcmp(o, "--exact-matmul")) {
        a->exact_matmul = 1;
        return 1;
    }
    if (!strcmp(o, "--exact-gelu")) {
        a->exact_gelu = 1;
        return 1;
    }
    if (!strcmp(o, "--bf16")) {
        a->bf16 = 1;
        return 1;
    }
    return 0;
}

pl_status cli_model_load(const cli_model_args *a, pl_model **out) {
    pl_model_opts o = pl_model_opts_default();
    if (a->exact_matmul) o.quant_act = 0;
    if (a->exact_gelu) o.gelu_fp16 = 0;
    if (a->bf16) o.bf16_tiles = 1;
    pl_status st = pl_model_load(a->model, &o, out);
    if (st) return st;
    for (int i = 0; i < a->n_lora; i++)
        if ((st = pl_model_add_lora_spec(*out, a->lora[i]))) {
            pl_model_free(*out);
            *out = NULL;
            return st;
        }
    return PL_OK;
}

static const char *usage_text =
    "usage: phishlens logits -m MODEL [--lora FILE[:SCALE]]... (--ids \"1 2 3\" | -p TEXT) [-o OUT.f32]\n"
    "                        [--exact-matmul] [--exact-gelu] [--bf16]\n"
    "  Runs the ids (or TEXT encoded by the model's tokenizer, BOS added) as one sequence. With -o, writes little-endian float32\n"
    "  [n_tokens x n_vocab] (row i = logits after token i); otherwise prints\n"
    "  the top-5 tokens of each position.\n"
    "  MODEL is a GGUF file or an HF directory (config.json + *.safetensors).\n"
    "  --exact-matmul  multiply quantized weights by f32 activations instead of\n"
    "                  llama.cpp's q8_0-quantized activations\n"
    "  --exact-gelu    exact GELU instead of ggml's fp16-rounded one (GGUF gemma2)\n"
    "  --bf16          quantized weights converted once to bf16 and multiplied on the\n"
    "                  CPU's AMX tiles (faster batched prefill; ignored without AMX)\n";

static void top5(const float *x, int n, int *idx) {
    for (int k = 0; k < 5; k++) idx[k] = -1;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 5; k++) {
            if (idx[k] < 0 || x[i] > x[idx[k]]) {
                for (int j = 4; j > k; j--) idx[j] = idx[j - 1];
                idx[k] = i;
                break;
            }
        }
    }
}

int cmd_logits(int argc, char **argv) {
    cli_model_args ma = {0};
    const char *ids_s = NULL, *out_path = NULL, *prompt = NULL;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_opt(&ma, "logits", argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        if (!strcmp(argv[i], "--ids") && i + 1 < argc) {
            ids_s = argv[++i];
        } else if (!strcmp(argv[i], "-p") && i + 1 < argc) {
            prompt = argv[++i];
        } else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
            out_path = argv[++i];
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("%s", usage_text);
            return 0;
        } else {
            return cli_usage_error("logits", "unknown or incomplete option '%s'", argv[i]);
        }
    }
    if (!ma.model) return cli_usage_error("logits", "-m MODEL is required");
    if (!ids_s == !prompt) return cli_usage_error("logits", "give either --ids or -p TEXT");
    int32_t *ids = NULL;
    int n = 0;
    pl_status st = PL_OK;
    if (ids_s && (st = cli_parse_ids(ids_s, &ids, &n))) return cli_usage_error("logits", "%s", pl_errmsg());
    if (prompt) {
        struct pl_tokenizer *tok = NULL;
        if (!(st = cli_tok_open(ma.model, &tok))) st = cli_tok_encode(tok, prompt, &ids, &n);
        cli_tok_free(tok);
        if (st) return cli_fail(st);
    }
    pl_model *m = NULL;
    pl_runner *r = NULL;
    pl_kv *kv = NULL;
    float *logits = NULL;
    int rc = 0;
    if ((st = cli_model_load(&ma, &m))) goto fail;
    const pl_arch_desc *d = pl_model_desc(m);
    if (n > d->n_ctx_train) {
        st = pl_error(PL_ERR_RANGE, "%d tokens exceed the model's context length %d", n, d->n_ctx_train);
        goto fail;
    }
    size_t nl;
    if (!pl_mul_ok((size_t)n, (size_t)d->n_vocab, &nl) || !pl_mul_ok(nl, sizeof(float), &nl) ||
        !(logits = malloc(nl))) {
        st = pl_error(PL_ERR_NOMEM, "cannot allocate logits for %d tokens", n);
        goto fail;
    }
    if ((st = pl_runner_new(m, n, n, &r)) || (st = pl_kv_new(m, n, NULL, &kv))) goto fail;
    pl_seq s = {kv, ids, n};
    if ((st = pl_forward(r, &s, 1, PL_LOGITS_ALL, logits))) goto fail;
    if (out_path) {
        /* float32 little-endian: the host order on every platform we build for */
        if ((st = pl_write_file_atomic(out_path, logits, nl))) goto fail;
        if (!cli_quiet) fprintf(stderr, "wrote %s: %d x %d float32\n", out_path, n, d->n_vocab);
    } else {
        for (int t = 0; t < n; t++) {
            int idx[5];
            top5(logits + (size_t)t * (size_t)d->n_vocab, d->n_vocab, idx);
            printf("%4d  id %-7d ->", t, (int)ids[t]);
            for (int k = 0; k < 5 && idx[k] >= 0; k++)
                printf("  %d (%.4f)", idx[k], (double)logits[(size_t)t * (size_t)d->n_vocab + (size_t)idx[k]]);
            printf("\n");
        }
    }
    goto done;
fail:
    rc = cli_fail(st);
done:
    free(logits);
    free(ids);
    pl_kv_free(kv);
    pl_runner_free(r);
    pl_model_free(m);
    return rc;
}
