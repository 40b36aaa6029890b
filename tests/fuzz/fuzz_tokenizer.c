/* fuzz_tokenizer.c — libFuzzer target for the tokenizer (`make fuzz`).
 *
 * Each input is used twice: as a tokenizer.json (loading must fail cleanly
 * or succeed, never crash), and as text for a byte-level BPE trained once at
 * start-up, where decode(encode(x)) must give x back exactly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

static pl_tokenizer *tok;

static void init(void) {
    static const char corpus[] = "Dear customer, your account was suspended. Verify at http://x.example/login now! "
                                 "Hello team, the report is attached. caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac";
    const char *texts[] = {corpus};
    size_t lens[] = {sizeof corpus - 1};
    pl_bpe_train_opts o = {300, 1, 0};
    char *json;
    size_t jl;
    if (pl_bpe_train(texts, lens, 1, &o, &json, &jl) || pl_tokenizer_load_hf_mem(json, jl, NULL, 0, "fuzz", &tok))
        abort();
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!tok) init();
    pl_tokenizer *t = NULL;
    if (pl_tokenizer_load_hf_mem((const char *)data, size, NULL, 0, "input", &t) == PL_OK) {
        pl_tokens ids = {0};
        pl_tokenizer_encode(t, (const char *)data, size, PL_TOK_ADD_SPECIAL | PL_TOK_PARSE_SPECIAL, &ids);
        pl_tokens_free(&ids);
        pl_tokenizer_free(t);
    }
    pl_tokens ids = {0};
    pl_buf back = {0};
    if (pl_tokenizer_encode(tok, (const char *)data, size, 0, &ids) ||
        pl_tokenizer_decode(tok, ids.ids, ids.n, 0, &back))
        abort();
    if (back.len != size || (size && memcmp(back.data, data, size))) abort();
    pl_tokens_free(&ids);
    pl_buf_free(&back);
    return 0;
}
