/* cmd_generate.c — `phishlens generate`: continue a prompt, greedily (T = 0)
 * or by sampling from softmax(logits / T) with a seeded RNG. Prefill in one
 * batch, then one token per step on the KV cache; stops at EOS or after N
 * tokens. With -p TEXT the prompt is encoded by the model's own tokenizer
 * and the text is printed as it is generated; with --ids the ids are
 * printed. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

static const char *usage_text =
    "usage: phishlens generate -m MODEL [--lora FILE[:SCALE]]... (-p TEXT | --ids \"1 2 3\") [-n N]\n"
    "                          [--temp T] [--seed S] [--print-ids] [--exact-matmul] [--exact-gelu]\n"
    "  Greedy at T = 0 (the default); stops at EOS, N tokens (default 32) or the\n"
    "  context length. -p encodes TEXT with the model's tokenizer (BOS added) and\n"
    "  prints the prompt and its continuation; --ids prints the generated ids.\n";

/* Index of a sample from softmax(x / temp), or the argmax when temp == 0. */
static int32_t pick(const float *x, int n, double temp, pl_rng *rng) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    if (temp <= 0) return best;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp(((double)x[i] - (double)x[best]) / temp);
    double u = pl_rng_uniform(rng) * sum, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += exp(((double)x[i] - (double)x[best]) / temp);
        if (u < acc) return i;
    }
    return best;
}

int cmd_generate(int argc, char **argv) {
    cli_model_args ma = {0};
    const char *ids_s = NULL, *prompt = NULL;
    int print_ids = 0;
    long n_gen = 32, seed = 1;
    double temp = 0;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_opt(&ma, "generate", argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        if (!strcmp(argv[i], "--ids") && i + 1 < argc) {
            ids_s = argv[++i];
        } else if (!strcmp(argv[i], "-p") && i + 1 < argc) {
            prompt = argv[++i];
        } else if (!strcmp(argv[i], "--print-ids")) {
            print_ids = 1;
        } else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
            if (!cli_parse_int("generate", "-n", argv[++i], 0, 1 << 20, &n_gen)) return EXIT_USAGE;
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            if (!cli_parse_int("generate", "--seed", argv[++i], 0, 0x7fffffffL, &seed)) return EXIT_USAGE;
        } else if (!strcmp(argv[i], "--temp") && i + 1 < argc) {
            if (!cli_parse_double("generate", "--temp", argv[++i], &temp)) return EXIT_USAGE;
            if (!(temp >= 0) || !isfinite(temp)) return cli_usage_error("generate", "--temp must be >= 0");
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("%s", usage_text);
            return 0;
        } else {
            return cli_usage_error("generate", "unknown or incomplete option '%s'", argv[i]);
        }
    }
    if (!ma.model) return cli_usage_error("generate", "-m MODEL is required");
    if (!ids_s == !prompt) return cli_usage_error("generate", "give either -p TEXT or --ids");
    int32_t *ids = NULL, *gen = NULL;
    int n = 0;
    pl_status st = PL_OK;
    if (ids_s && (st = cli_parse_ids(ids_s, &ids, &n))) return cli_usage_error("generate", "%s", pl_errmsg());
    pl_model *m = NULL;
    pl_runner *r = NULL;
    pl_kv *kv = NULL;
    float *logits = NULL;
    struct pl_tokenizer *tok = NULL;
    pl_buf text = {0};
    size_t shown = 0;
    int rc = 0;
    if (prompt && ((st = cli_tok_open(ma.model, &tok)) || (st = cli_tok_encode(tok, prompt, &ids, &n)))) goto fail;
    if ((st = cli_model_load(&ma, &m))) goto fail;
    const pl_arch_desc *d = pl_model_desc(m);
    int ctx = d->n_ctx_train;
    if (n > ctx) {
        st = pl_error(PL_ERR_RANGE, "the prompt has %d tokens, more than the model's context length %d", n, ctx);
        goto fail;
    }
    if (n + n_gen > ctx) n_gen = ctx - n; /* stop at the context length */
    if (!(logits = malloc((size_t)d->n_vocab * sizeof(float))) || !(gen = malloc((size_t)(n_gen + 1) * sizeof *gen))) {
        st = pl_error(PL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((st = pl_runner_new(m, n, ctx, &r)) || (st = pl_kv_new(m, ctx, NULL, &kv))) goto fail;
    pl_rng rng;
    pl_rng_seed(&rng, (uint64_t)seed);
    pl_seq s = {kv, ids, n};
    if ((st = pl_forward(r, &s, 1, PL_LOGITS_LAST, logits))) goto fail;
    if (tok) {
        printf("%s", prompt);
        fflush(stdout);
    }
    int n_out = 0;
    for (long k = 0; k < n_gen; k++) {
        int32_t next = pick(logits, d->n_vocab, temp, &rng);
        gen[n_out++] = next;
        if (tok) {
            /* decode everything generated so far and print what is new */
            text.len = 0;
            if (next != d->eos_id && (st = cli_tok_piece(tok, gen, n_out, &text))) goto fail;
            if (text.len > shown) fwrite(text.data + shown, 1, text.len - shown, stdout);
            if (text.len > shown) shown = text.len;
        } else {
            printf(k ? " %d" : "%d", (int)next);
        }
        fflush(stdout);
        if (next == d->eos_id || k + 1 == n_gen) break;
        pl_seq s1 = {kv, &next, 1};
        if ((st = pl_forward(r, &s1, 1, PL_LOGITS_LAST, logits))) goto fail;
    }
    printf("\n");
    if (tok && print_ids) {
        for (int k = 0; k < n_out; k++) printf(k ? " %d" : "%d", (int)gen[k]);
        printf("\n");
    }
    goto done;
fail:
    rc = cli_fail(st);
done:
    free(logits);
    free(ids);
    free(gen);
    pl_buf_free(&text);
    cli_tok_free(tok);
    pl_kv_free(kv);
    pl_runner_free(r);
    pl_model_free(m);
    return rc;
}
