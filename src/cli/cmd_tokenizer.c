/* cmd_tokenizer.c — `phishlens tokenizer train`: learn a byte-level BPE from
 * text files or records.jsonl and write an HF-compatible tokenizer.json
 * (atomically). Files ending in .jsonl contribute the "body" of each record
 * (or "text" when there is no body); any other file is one text. */
#include "cli.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char **v;
    size_t *len;
    size_t n, cap;
} textlist;

static pl_status add_text(textlist *l, char *s, size_t n) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 256;
        char **v = realloc(l->v, nc * sizeof *v);
        if (v) l->v = v;
        size_t *ln = v ? realloc(l->len, nc * sizeof *ln) : NULL;
        if (ln) l->len = ln;
        if (!v || !ln) return pl_error(PL_ERR_NOMEM, "out of memory");
        l->cap = nc;
    }
    l->v[l->n] = s;
    l->len[l->n++] = n;
    return PL_OK;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static pl_status read_input(const char *path, textlist *l) {
    char *data;
    size_t len;
    pl_status st = pl_read_file(path, &data, &len);
    if (st) return st;
    if (!ends_with(path, ".jsonl")) return add_text(l, data, len);
    size_t line = 0;
    for (char *p = data; p < data + len && !st;) {
        char *nl = memchr(p, '\n', (size_t)(data + len - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(data + len - p);
        line++;
        size_t m = n;
        while (m && (p[m - 1] == '\r' || p[m - 1] == ' ')) m--;
        if (m) {
            cJSON *j = cJSON_ParseWithLength(p, m);
            const cJSON *b = j ? cJSON_GetObjectItemCaseSensitive(j, "body") : NULL;
            if (!cJSON_IsString(b)) b = j ? cJSON_GetObjectItemCaseSensitive(j, "text") : NULL;
            if (!cJSON_IsString(b)) {
                st = pl_error(PL_ERR_FORMAT, "%s: line %zu: expected a JSON object with a string \"body\" or \"text\"", path, line);
            } else {
                char *s = strdup(b->valuestring);
                if (!s) st = pl_error(PL_ERR_NOMEM, "out of memory");
                else if ((st = add_text(l, s, strlen(s)))) free(s);
            }
            cJSON_Delete(j);
        }
        p += n + 1;
    }
    free(data);
    return st;
}

static int train(int argc, char **argv) {
    long vocab = 0, minf = 2;
    const char *out = NULL;
    textlist tl = {0};
    const char **inputs = calloc((size_t)argc, sizeof *inputs);
    size_t ninputs = 0;
    if (!inputs) return cli_fail(pl_error(PL_ERR_NOMEM, "out of memory"));
    int rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--vocab-size") && i + 1 < argc) {
            if (!cli_parse_int("tokenizer train", a, argv[++i], 260, 1 << 24, &vocab)) rc = EXIT_USAGE;
        } else if (!strcmp(a, "--min-frequency") && i + 1 < argc) {
            if (!cli_parse_int("tokenizer train", a, argv[++i], 1, 1L << 30, &minf)) rc = EXIT_USAGE;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(a, "--input") || !strcmp(a, "-i")) {
            while (i + 1 < argc && argv[i + 1][0] != '-') inputs[ninputs++] = argv[++i];
        } else {
            rc = cli_usage_error("tokenizer train", "unknown or incomplete option '%s'", a);
        }
    }
    if (!rc && (!vocab || !out || !ninputs))
        rc = cli_usage_error("tokenizer train", "needs --vocab-size N, --input FILE... and -o tokenizer.json");
    pl_status st = PL_OK;
    for (size_t i = 0; !rc && i < ninputs && !st; i++) st = read_input(inputs[i], &tl);
    char *json = NULL;
    size_t jl = 0;
    if (!rc && !st) {
        pl_bpe_train_opts o = {(int32_t)vocab, (int32_t)minf, !cli_quiet};
        st = pl_bpe_train((const char *const *)tl.v, tl.len, tl.n, &o, &json, &jl);
    }
    if (!rc && !st) st = pl_write_file_atomic(out, json, jl);
    if (!rc && !st) {
        /* the special tokens' roles, HF style, in tokenizer_config.json beside it: BOS added, EOS known */
        static const char cfg[] = "{\n  \"bos_token\": \"<|bos|>\",\n  \"eos_token\": \"<|eos|>\",\n"
                                  "  \"pad_token\": \"<|pad|>\",\n  \"unk_token\": \"<|unk|>\",\n"
                                  "  \"add_bos_token\": true,\n  \"add_eos_token\": false\n}\n";
        char cpath[4096];
        const char *slash = strrchr(out, '/');
        if (slash) snprintf(cpath, sizeof cpath, "%.*s/tokenizer_config.json", (int)(slash - out), out);
        else snprintf(cpath, sizeof cpath, "tokenizer_config.json");
        st = pl_write_file_atomic(cpath, cfg, sizeof cfg - 1);
    }
    if (!rc && st) rc = cli_fail(st);
    if (!rc && !cli_quiet) {
        /* report what was learned by loading it back */
        pl_tokenizer *t;
        if (pl_tokenizer_load(out, &t) == PL_OK) {
            fprintf(stderr, "phishlens tokenizer train: %d tokens written to %s\n", pl_tokenizer_n_vocab(t), out);
            pl_tokenizer_free(t);
        }
    }
    free(json);
    for (size_t i = 0; i < tl.n; i++) free(tl.v[i]);
    free(tl.v);
    free(tl.len);
    free(inputs);
    return rc;
}

int cmd_tokenizer(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "train")) return train(argc - 1, argv + 1);
    fprintf(stderr, "usage: phishlens tokenizer train --vocab-size N --input FILE... -o tokenizer.json [--min-frequency K]\n");
    return EXIT_USAGE;
}
