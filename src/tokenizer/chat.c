/* chat.c — one-turn chat/instruct prompts built from token ids.
 *
 * The prompt is assembled as a list of parts: special tokens taken from the
 * vocab by id, and text. Consecutive text parts are joined and encoded as one
 * fragment with parse_special off, starting right after a special token —
 * which is exactly how llama.cpp tokenizes the rendered template string with
 * parse_special on (each text fragment after a special token gets the SPM
 * space prefix), except that nothing in the user's text can turn into a
 * control token. The layouts are the families' published chat templates. */
#include "tokenizer/tok_internal.h"

#include <string.h>

typedef struct {
    const pl_tokenizer *t;
    pl_tokens *out;
    pl_buf text;
    pl_status st;
} builder;

static void flush(builder *b) {
    if (b->st || b->text.len == 0) return;
    b->st = pl_tokenizer_encode(b->t, b->text.data, b->text.len, 0, b->out);
    b->text.len = 0;
}

static void put_text(builder *b, const char *s) {
    if (!b->st && s && *s) b->st = pl_buf_append(&b->text, s, strlen(s));
}

static void put_id(builder *b, int32_t id) {
    flush(b);
    if (!b->st) b->st = pl_tokens_push(b->out, id);
}

/* A control token by its text; PL_ERR_UNSUPPORTED when the vocab lacks it. */
static int32_t need(builder *b, const char *text) {
    int32_t id = pl_tokenizer_find(b->t, text, strlen(text));
    if (id < 0 && !b->st)
        b->st = pl_error(PL_ERR_UNSUPPORTED, "%s: chat template needs token '%s', which the vocabulary lacks", b->t->name, text);
    return id;
}

pl_chat_family pl_chat_detect(const pl_tokenizer *t) {
    if (pl_tokenizer_find(t, "<|start_header_id|>", 19) >= 0) return PL_CHAT_LLAMA3;
    if (pl_tokenizer_find(t, "<start_of_turn>", 15) >= 0) return PL_CHAT_GEMMA;
    return PL_CHAT_MISTRAL;
}

const char *pl_chat_family_name(pl_chat_family f) {
    switch (f) {
    case PL_CHAT_LLAMA3: return "llama3";
    case PL_CHAT_MISTRAL: return "mistral";
    case PL_CHAT_GEMMA: return "gemma";
    default: return "auto";
    }
}

pl_status pl_chat_build(const pl_tokenizer *t, pl_chat_family family, const char *system, const char *user,
                        const char *assistant_prefix, pl_tokens *out) {
    if (!user) return pl_error(PL_ERR_INVALID, "chat: user text is NULL");
    if (family == PL_CHAT_AUTO) family = pl_chat_detect(t);
    builder b = {t, out, {0}, PL_OK};
    int has_system = system && *system;
    if (t->bos >= 0) put_id(&b, t->bos);
    switch (family) {
    case PL_CHAT_LLAMA3: {
        int32_t sh = need(&b, "<|start_header_id|>"), eh = need(&b, "<|end_header_id|>"), eot = need(&b, "<|eot_id|>");
        if (b.st) break;
        if (has_system) {
            put_id(&b, sh);
            put_text(&b, "system");
            put_id(&b, eh);
            put_text(&b, "\n\n");
            put_text(&b, system);
            put_id(&b, eot);
        }
        put_id(&b, sh);
        put_text(&b, "user");
        put_id(&b, eh);
        put_text(&b, "\n\n");
        put_text(&b, user);
        put_id(&b, eot);
        put_id(&b, sh);
        put_text(&b, "assistant");
        put_id(&b, eh);
        put_text(&b, "\n\n");
        put_text(&b, assistant_prefix);
        break;
    }
    case PL_CHAT_MISTRAL: {
        /* [INST] / [/INST] are control tokens in v3 vocabs, plain text in v1 */
        int32_t inst = pl_tokenizer_find(t, "[INST]", 6), einst = pl_tokenizer_find(t, "[/INST]", 7);
        int ctl = inst >= 0 && einst >= 0 && t->type[inst] == PL_TOKT_CONTROL && t->type[einst] == PL_TOKT_CONTROL;
        if (ctl) put_id(&b, inst);
        else put_text(&b, "[INST]");
        put_text(&b, " ");
        if (has_system) {
            put_text(&b, system);
            put_text(&b, "\n\n");
        }
        put_text(&b, user);
        put_text(&b, " ");
        if (ctl) put_id(&b, einst);
        else put_text(&b, "[/INST]");
        put_text(&b, assistant_prefix);
        break;
    }
    case PL_CHAT_GEMMA: {
        int32_t so = need(&b, "<start_of_turn>"), eo = need(&b, "<end_of_turn>");
        if (b.st) break;
        put_id(&b, so);
        put_text(&b, "user\n");
        if (has_system) { /* Gemma has no system role: it goes before the user text */
            put_text(&b, system);
            put_text(&b, "\n\n");
        }
        put_text(&b, user);
        put_id(&b, eo);
        put_text(&b, "\n");
        put_id(&b, so);
        put_text(&b, "model\n");
        put_text(&b, assistant_prefix);
        break;
    }
    default:
        b.st = pl_error(PL_ERR_INVALID, "chat: unknown template family %d", (int)family);
    }
    flush(&b);
    pl_buf_free(&b.text);
    return b.st;
}
