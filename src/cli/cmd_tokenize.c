/* cmd_tokenize.c — `phishlens tokenize`: text on stdin -> token ids on stdout.
 *
 * Other tools drive this command, so its output is exact and minimal:
 *   default   stdin is one text; one line of space-separated ids
 *   --jsonl   every stdin line is {"text": "..."}; every output line is a
 *             JSON array of ids
 *   --decode  the reverse: stdin holds ids (whitespace separated); stdout gets
 *             the text, byte for byte
 * Output is buffered and written only when every input was processed, so a
 * bad line leaves nothing half-written. */
#include "cli.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *usage_text =
    "usage: phishlens tokenize -t TOKENIZER [--add-special] [--parse-special] [--jsonl]\n"
    "       phishlens tokenize -t TOKENIZER --decode [--render-special]\n"
    "  -t TOKENIZER      tokenizer.json, a directory holding one, or a .gguf\n"
    "  --add-special     add BOS/EOS as the model does\n"
    "  --parse-special   recognize control tokens (<s>, <|eot_id|>, ...) written in the text\n"
    "  --jsonl           stdin lines are {\"text\": ...}; stdout lines are JSON arrays of ids\n"
    "  --decode          stdin holds ids; print their text\n"
    "  --render-special  with --decode: write control tokens as their text\n";

static pl_status read_stdin(char **data, size_t *len) {
    pl_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
        pl_status st = pl_buf_append(&b, chunk, n);
        if (st) { pl_buf_free(&b); return st; }
    }
    if (ferror(stdin)) { pl_buf_free(&b); return pl_error(PL_ERR_IO, "stdin: read failed"); }
    if (!b.data && pl_buf_reserve(&b, 1) == PL_OK) b.data[0] = 0;
    if (!b.data) return pl_error(PL_ERR_NOMEM, "out of memory");
    *data = b.data;
    *len = b.len;
    return PL_OK;
}

static pl_status put_ids(pl_buf *o, const pl_tokens *t, int json) {
    pl_status st = PL_OK;
    if (json) st = pl_buf_append(o, "[", 1);
    for (size_t i = 0; i < t->n && !st; i++)
        st = pl_buf_printf(o, json ? (i ? ",%d" : "%d") : (i ? " %d" : "%d"), t->ids[i]);
    if (!st && json) st = pl_buf_append(o, "]", 1);
    if (!st) st = pl_buf_append(o, "\n", 1);
    return st;
}

int cmd_tokenize(int argc, char **argv) {
    const char *path = NULL;
    unsigned flags = 0, dflags = 0;
    int jsonl = 0, decode = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-t") || !strcmp(a, "--tokenizer")) && i + 1 < argc) path = argv[++i];
        else if (!strcmp(a, "--add-special")) flags |= PL_TOK_ADD_SPECIAL;
        else if (!strcmp(a, "--parse-special")) flags |= PL_TOK_PARSE_SPECIAL;
        else if (!strcmp(a, "--jsonl")) jsonl = 1;
        else if (!strcmp(a, "--decode")) decode = 1;
        else if (!strcmp(a, "--render-special")) dflags |= PL_TOK_RENDER_SPECIAL;
        else return cli_usage_error("tokenize", "unknown or incomplete option '%s'", a);
    }
    if (!path) {
        fputs(usage_text, stderr);
        return cli_usage_error("tokenize", "-t TOKENIZER is required");
    }
    if (decode && jsonl) return cli_usage_error("tokenize", "--decode and --jsonl cannot be combined");

    pl_tokenizer *tok;
    pl_status st = pl_tokenizer_load(path, &tok);
    if (st) return cli_fail(st);
    char *in = NULL;
    size_t inlen = 0;
    if ((st = read_stdin(&in, &inlen))) {
        pl_tokenizer_free(tok);
        return cli_fail(st);
    }
    pl_buf o = {0};
    pl_tokens ids = {0};
    if (decode) {
        char *p = in, *end;
        size_t k = 0;
        for (;;) {
            while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' || *p == ',') p++;
            if (!*p) break;
            errno = 0;
            long v = strtol(p, &end, 10);
            if (end == p || errno || v < INT32_MIN || v > INT32_MAX) {
                st = pl_error(PL_ERR_INVALID, "stdin: id %zu: '%.20s' is not an integer", k, p);
                break;
            }
            if ((st = pl_tokens_push(&ids, (int32_t)v))) break;
            p = end;
            k++;
        }
        if (!st) st = pl_tokenizer_decode(tok, ids.ids, ids.n, dflags, &o);
    } else if (!jsonl) {
        st = pl_tokenizer_encode(tok, in, inlen, flags, &ids);
        if (!st) st = put_ids(&o, &ids, 0);
    } else {
        size_t line = 0;
        for (char *p = in; p < in + inlen && !st;) {
            char *nl = memchr(p, '\n', (size_t)(in + inlen - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(in + inlen - p);
            line++;
            size_t m = n;
            while (m && (p[m - 1] == '\r' || p[m - 1] == ' ')) m--;
            if (m) {
                cJSON *j = cJSON_ParseWithLength(p, m);
                const cJSON *tx = j ? cJSON_GetObjectItemCaseSensitive(j, "text") : NULL;
                if (!cJSON_IsString(tx)) {
                    st = pl_error(PL_ERR_FORMAT, "stdin: line %zu: expected a JSON object with a string field \"text\"", line);
                } else {
                    ids.n = 0;
                    st = pl_tokenizer_encode(tok, tx->valuestring, strlen(tx->valuestring), flags, &ids);
                    if (!st) st = put_ids(&o, &ids, 1);
                }
                cJSON_Delete(j);
            }
            p += n + 1;
        }
    }
    int rc = 0;
    if (st) {
        rc = cli_fail(st);
    } else if (o.len && fwrite(o.data, 1, o.len, stdout) != o.len) {
        rc = cli_fail(pl_error(PL_ERR_IO, "stdout: write failed"));
    }
    pl_buf_free(&o);
    pl_tokens_free(&ids);
    free(in);
    pl_tokenizer_free(tok);
    return rc;
}
