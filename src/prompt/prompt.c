/* prompt.c — the classifier prompt layout and the shared prefix's cache (the
 * batched scorer is classifier.c; see prompt.h for the layout and the score). */
#include "prompt/prompt.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_INSTRUCTION                                                                                    \
    "You are an email security filter. Read the email and answer with one word: phishing or legitimate."
#define DEFAULT_MAX_EMAIL 384

pl_prompt_spec pl_prompt_spec_default(void) {
    pl_prompt_spec s = {0};
    s.layout = PL_LAYOUT_AUTO;
    s.family = PL_CHAT_AUTO;
    s.max_email_tokens = DEFAULT_MAX_EMAIL;
    return s;
}

/* ---- building ---------------------------------------------------------- */

typedef struct {
    const pl_tokenizer *t;
    pl_tokens *out;
    pl_status st;
} part_builder;

static void put_text(part_builder *b, const char *s) {
    if (!b->st && s && *s) b->st = pl_tokenizer_encode(b->t, s, strlen(s), 0, b->out);
}

static void put_id(part_builder *b, int32_t id) {
    if (!b->st) b->st = pl_tokens_push(b->out, id);
}

static int32_t find_tok(const pl_tokenizer *t, const char *s) { return pl_tokenizer_find(t, s, strlen(s)); }

/* Does the vocab carry the control tokens of a chat family? */
static int has_chat(const pl_tokenizer *t, pl_chat_family f) {
    switch (f) {
    case PL_CHAT_LLAMA3: return find_tok(t, "<|start_header_id|>") >= 0 && find_tok(t, "<|eot_id|>") >= 0;
    case PL_CHAT_GEMMA: return find_tok(t, "<start_of_turn>") >= 0 && find_tok(t, "<end_of_turn>") >= 0;
    case PL_CHAT_MISTRAL: return find_tok(t, "[INST]") >= 0 && find_tok(t, "[/INST]") >= 0;
    default: return 0;
    }
}

/* The label word's ids as answered (*ids, the caller frees) and its first id. */
static pl_status label_id(const pl_tokenizer *t, const char *word, int chat, pl_tokens *ids_out, int32_t *id) {
    pl_tokens ids = {0};
    pl_buf text = {0};
    pl_status st = PL_OK;
    /* SPM vocabularies add the word-start marker themselves; byte-level BPE
     * needs the space written out in the plain layout ("Answer: phishing"). */
    if (!chat && !pl_tokenizer_add_space_prefix(t)) st = pl_buf_append(&text, " ", 1);
    if (!st) st = pl_buf_append(&text, word, strlen(word));
    if (!st) st = pl_tokenizer_encode(t, text.data, text.len, 0, &ids);
    if (!st && ids.n == 0) st = pl_error(PL_ERR_UNSUPPORTED, "prompt: label word '%s' encodes to no token", word);
    if (!st) *id = ids.ids[0];
    if (!st) *ids_out = ids;
    else pl_tokens_free(&ids);
    pl_buf_free(&text);
    return st;
}

pl_status pl_prompt_init(pl_prompt *p, const pl_tokenizer *t, const pl_prompt_spec *spec) {
    memset(p, 0, sizeof *p);
    pl_prompt_spec s = spec ? *spec : pl_prompt_spec_default();
    const char *instr = s.instruction ? s.instruction : DEFAULT_INSTRUCTION;
    const char *lpos = s.label_pos ? s.label_pos : "phishing";
    const char *lneg = s.label_neg ? s.label_neg : "legitimate";
    p->max_email_tokens = s.max_email_tokens > 0 ? s.max_email_tokens : DEFAULT_MAX_EMAIL;

    pl_chat_family fam = s.family == PL_CHAT_AUTO ? pl_chat_detect(t) : s.family;
    int chat = s.layout == PL_LAYOUT_CHAT || (s.layout == PL_LAYOUT_AUTO && has_chat(t, fam));
    if (chat && !has_chat(t, fam))
        return pl_error(PL_ERR_UNSUPPORTED, "prompt: chat layout '%s' asked for, but the vocabulary lacks its control tokens",
                        pl_chat_family_name(fam));
    p->chat = chat;
    p->family = chat ? fam : PL_CHAT_AUTO;

    pl_buf head = {0};
    pl_status st = pl_buf_printf(&head, "%s\n\nEmail:\n", instr);
    part_builder pre = {t, &p->prefix, st}, suf = {t, &p->suffix, PL_OK};
    int32_t bos = pl_tokenizer_bos(t);
    if (bos >= 0 && pl_tokenizer_add_bos(t)) put_id(&pre, bos);
    if (!chat) {
        put_text(&pre, head.data);
        put_text(&suf, "\n\nAnswer:");
    } else if (fam == PL_CHAT_LLAMA3) {
        int32_t sh = find_tok(t, "<|start_header_id|>"), eh = find_tok(t, "<|end_header_id|>");
        int32_t eot = find_tok(t, "<|eot_id|>");
        put_id(&pre, sh);
        put_text(&pre, "user");
        put_id(&pre, eh);
        pl_buf h2 = {0};
        if (!pre.st) pre.st = pl_buf_printf(&h2, "\n\n%s", head.data);
        put_text(&pre, h2.data);
        pl_buf_free(&h2);
        put_id(&suf, eot);
        put_id(&suf, sh);
        put_text(&suf, "assistant");
        put_id(&suf, eh);
        put_text(&suf, "\n\n");
    } else if (fam == PL_CHAT_GEMMA) {
        int32_t sot = find_tok(t, "<start_of_turn>"), eot = find_tok(t, "<end_of_turn>");
        put_id(&pre, sot);
        pl_buf h2 = {0};
        if (!pre.st) pre.st = pl_buf_printf(&h2, "user\n%s", head.data);
        put_text(&pre, h2.data);
        pl_buf_free(&h2);
        put_id(&suf, eot);
        put_text(&suf, "\n");
        put_id(&suf, sot);
        put_text(&suf, "model\n");
    } else { /* Mistral */
        put_id(&pre, find_tok(t, "[INST]"));
        put_text(&pre, head.data);
        put_id(&suf, find_tok(t, "[/INST]"));
    }
    pl_buf_free(&head);
    st = pre.st ? pre.st : suf.st;
    if (!st && p->suffix.n == 0) st = pl_error(PL_ERR_INTERNAL, "prompt: empty suffix");
    if (!st) st = label_id(t, lpos, chat, &p->label_words[1], &p->label_pos_id);
    if (!st) st = label_id(t, lneg, chat, &p->label_words[0], &p->label_neg_id);
    if (!st && p->label_pos_id == p->label_neg_id)
        st = pl_error(PL_ERR_UNSUPPORTED, "prompt: label words '%s' and '%s' start with the same token %d", lpos, lneg,
                      p->label_pos_id);
    if (st) pl_prompt_free(p);
    return st;
}

void pl_prompt_free(pl_prompt *p) {
    pl_tokens_free(&p->prefix);
    pl_tokens_free(&p->suffix);
    pl_tokens_free(&p->label_words[0]);
    pl_tokens_free(&p->label_words[1]);
}

pl_status pl_prompt_answer_ids(const pl_prompt *p, const pl_tokenizer *t, const char *rationale, int label,
                               pl_tokens *out) {
    if (label != 0 && label != 1) return pl_error(PL_ERR_INVALID, "prompt: answer label %d is not 0 or 1", label);
    pl_status st = PL_OK;
    if (rationale && *rationale) {
        pl_buf text = {0};
        if (!p->chat && !pl_tokenizer_add_space_prefix(t)) st = pl_buf_append(&text, " ", 1);
        size_t at = text.len;
        if (!st) st = pl_buf_append(&text, rationale, strlen(rationale));
        for (size_t i = at; !st && i < text.len; i++)
            if (text.data[i] == '\n' || text.data[i] == '\r') text.data[i] = ' ';
        if (!st) st = pl_buf_append(&text, "\n", 1);
        if (!st) st = pl_tokenizer_encode(t, text.data, text.len, 0, out);
        pl_buf_free(&text);
    }
    const pl_tokens *w = &p->label_words[label];
    for (size_t i = 0; !st && i < w->n; i++) st = pl_tokens_push(out, w->ids[i]);
    return st;
}

pl_status pl_prompt_newline_ids(const pl_tokenizer *t, pl_tokens *out) {
    /* the break as it follows a word: ids("a\n") minus ids("a") (a vocabulary
     * with a space prefix would write "\n" alone as space + break) */
    pl_tokens a = {0}, an = {0};
    pl_status st = pl_tokenizer_encode(t, "a", 1, 0, &a);
    if (!st) st = pl_tokenizer_encode(t, "a\n", 2, 0, &an);
    size_t from = an.n > a.n ? a.n : an.n;
    for (size_t i = 0; !st && i < a.n && from == a.n; i++)
        if (an.ids[i] != a.ids[i]) from = an.n;
    if (!st && from >= an.n) { /* merged across the word: the break on its own */
        an.n = 0;
        from = 0;
        st = pl_tokenizer_encode(t, "\n", 1, 0, &an);
    }
    if (!st && from >= an.n) st = pl_error(PL_ERR_UNSUPPORTED, "prompt: the tokenizer encodes a line break to no token");
    for (size_t i = from; !st && i < an.n; i++) st = pl_tokens_push(out, an.ids[i]);
    pl_tokens_free(&a);
    pl_tokens_free(&an);
    return st;
}

pl_status pl_prompt_email_text(const pl_record *r, pl_buf *out) {
    pl_status st = PL_OK;
    if (r->subject && *r->subject) st = pl_buf_printf(out, "Subject: %s\n", r->subject);
    if (!st && r->from && *r->from) st = pl_buf_printf(out, "From: %s\n", r->from);
    if (!st && out->len > 0) st = pl_buf_append(out, "\n", 1);
    if (!st && r->body) st = pl_buf_append(out, r->body, strlen(r->body));
    if (!st && !out->data) st = pl_buf_reserve(out, 0);
    return st;
}

pl_status pl_prompt_email_ids(const pl_prompt *p, const pl_tokenizer *t, const pl_record *r, pl_tokens *out,
                              int *truncated) {
    pl_buf text = {0};
    pl_tokens ids = {0};
    pl_status st = pl_prompt_email_text(r, &text);
    /* Encode at most a generous byte budget: the ids are cut afterwards. */
    size_t n = text.len, cap = (size_t)p->max_email_tokens * 16;
    if (n > cap) n = cap;
    if (!st) st = pl_tokenizer_encode(t, text.data, n, 0, &ids);
    size_t keep = ids.n < (size_t)p->max_email_tokens ? ids.n : (size_t)p->max_email_tokens;
    if (truncated) *truncated = ids.n > keep || n < text.len;
    for (size_t i = 0; !st && i < keep; i++) st = pl_tokens_push(out, ids.ids[i]);
    pl_tokens_free(&ids);
    pl_buf_free(&text);
    return st;
}

pl_status pl_prompt_full(const pl_prompt *p, const int32_t *email, size_t n_email, pl_tokens *out) {
    pl_status st = PL_OK;
    for (size_t i = 0; !st && i < p->prefix.n; i++) st = pl_tokens_push(out, p->prefix.ids[i]);
    for (size_t i = 0; !st && i < n_email; i++) st = pl_tokens_push(out, email[i]);
    for (size_t i = 0; !st && i < p->suffix.n; i++) st = pl_tokens_push(out, p->suffix.ids[i]);
    return st;
}

/* ---- the prefix cache (the classifier: classifier.c) ------------------------ */

pl_status pl_prompt_prefix_cache(pl_model *m, pl_runner *run, const pl_prompt *p, pl_kv **out) {
    *out = NULL;
    pl_kv *kv = NULL;
    pl_status st = pl_kv_new(m, (int)p->prefix.n, NULL, &kv);
    if (!st && p->prefix.n > 0) {
        pl_seq s = {kv, p->prefix.ids, (int)p->prefix.n};
        st = pl_forward(run, &s, 1, PL_LOGITS_NONE, NULL);
    }
    if (st) {
        pl_kv_free(kv);
        return st;
    }
    *out = kv;
    return PL_OK;
}

pl_status pl_prompt_lane_init(pl_prompt_lane *ln, pl_model *m, const pl_prompt *p, int max_tokens, int max_ctx,
                              int max_seqs, pl_kv **prefix) {
    memset(ln, 0, sizeof *ln);
    pl_status st = pl_runner_new(m, max_tokens, max_ctx, &ln->run);
    if (!st && prefix) st = pl_prompt_prefix_cache(m, ln->run, p, prefix);
    /* only the two label logits of each sequence's last token are read */
    if (!st) st = pl_runner_set_logit_ids(ln->run, (const int32_t[]){p->label_pos_id, p->label_neg_id}, 2);
    if (!st) {
        ln->logits = malloc((size_t)max_seqs * 2 * sizeof(float));
        ln->ids = malloc((size_t)max_tokens * sizeof(int32_t));
        ln->seqs = calloc((size_t)max_seqs, sizeof *ln->seqs);
        if (!ln->logits || !ln->ids || !ln->seqs) st = pl_error(PL_ERR_NOMEM, "scoring lane: out of memory");
    }
    if (st) pl_prompt_lane_free(ln);
    return st;
}

void pl_prompt_lane_free(pl_prompt_lane *ln) {
    pl_runner_free(ln->run);
    free(ln->logits);
    free(ln->ids);
    free(ln->seqs);
    memset(ln, 0, sizeof *ln);
}
