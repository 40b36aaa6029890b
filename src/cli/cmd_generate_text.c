/* cmd_generate_text.c — the tokenizer side of `phishlens generate` and
 * `phishlens logits` (text <-> ids), kept apart from the model side so the
 * two public headers never meet in one translation unit. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

pl_status cli_tok_open(const char *model_path, struct pl_tokenizer **out) {
    return pl_tokenizer_load(model_path, out);
}

void cli_tok_free(struct pl_tokenizer *t) { pl_tokenizer_free(t); }

pl_status cli_tok_encode(const struct pl_tokenizer *t, const char *text, int32_t **ids, int *n) {
    pl_tokens toks = {0};
    pl_status st = pl_tokenizer_encode(t, text, strlen(text), PL_TOK_ADD_SPECIAL, &toks);
    if (st) {
        pl_tokens_free(&toks);
        return st;
    }
    if (toks.n == 0 || toks.n > (1u << 24)) {
        pl_tokens_free(&toks);
        return pl_error(PL_ERR_INVALID, "the prompt encodes to %zu tokens", (size_t)toks.n);
    }
    *ids = malloc((size_t)toks.n * sizeof **ids);
    if (!*ids) {
        pl_tokens_free(&toks);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    memcpy(*ids, toks.ids, (size_t)toks.n * sizeof **ids);
    *n = (int)toks.n;
    pl_tokens_free(&toks);
    return PL_OK;
}

pl_status cli_tok_piece(const struct pl_tokenizer *t, const int32_t *ids, int n, pl_buf *out) {
    return pl_tokenizer_decode(t, ids, (size_t)n, PL_TOK_KEEP_PREFIX, out);
}
