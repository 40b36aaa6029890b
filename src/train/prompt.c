/* prompt.c — the classifier prompt: instruction + email as one chat turn,
 * the assistant turn opened, the label token next.
 *
 * The email's token span is found without knowing the template: build the
 * prompt with the email and with an empty email; the email's tokens are
 * what lies between their longest common prefix and longest common suffix.
 * (Tokens at the seam can merge across the boundary, e.g. "\n\n" + "Hi";
 * the span then includes the merged token, which is the honest choice for
 * masking.)
 */
#include <stdlib.h>
#include <string.h>

#include "train/train.h"

static const char *DEFAULT_INSTRUCTION =
    "Classify the following email as phishing or legitimate. Answer with one word.\n\n";

pl_classifier_prompt pl_classifier_prompt_default(pl_chat_family family) {
    pl_classifier_prompt p;
    memset(&p, 0, sizeof p);
    p.family = family;
    p.system = NULL;
    p.instruction = DEFAULT_INSTRUCTION;
    int mistral = family == PL_CHAT_MISTRAL;
    p.label_words[0] = mistral ? " legitimate" : "legitimate";
    p.label_words[1] = mistral ? " phishing" : "phishing";
    p.answer_prefix = "";
    return p;
}

void pl_prompt_ids_free(pl_prompt_ids *p) {
    pl_tokens_free(&p->ids);
    memset(p, 0, sizeof *p);
}

static pl_status build_user(const pl_tokenizer *t, const pl_classifier_prompt *p, const char *email, size_t len,
                            const char *answer, pl_tokens *out) {
    pl_buf user = {0};
    pl_status st = pl_buf_printf(&user, "%s", p->instruction ? p->instruction : "");
    if (!st && len) st = pl_buf_append(&user, email, len);
    if (!st) st = pl_buf_append(&user, "", 1); /* NUL */
    if (!st) {
        pl_chat_family fam = p->family == PL_CHAT_AUTO ? pl_chat_detect(t) : p->family;
        st = pl_chat_build(t, fam, p->system && *p->system ? p->system : NULL, (const char *)user.data, answer, out);
    }
    pl_buf_free(&user);
    return st;
}

pl_status pl_classifier_build(const pl_tokenizer *t, const pl_classifier_prompt *p, const char *email, size_t len,
                              int max_tokens, pl_prompt_ids *out) {
    memset(out, 0, sizeof *out);
    if (memchr(email, 0, len)) len = strlen(email); /* the chat builder takes C strings */
    pl_tokens full = {0}, empty = {0};
    pl_status st = build_user(t, p, email, len, p->answer_prefix, &full);
    if (!st) st = build_user(t, p, "", 0, p->answer_prefix, &empty);
    if (st) {
        pl_tokens_free(&full);
        pl_tokens_free(&empty);
        return st;
    }
    size_t pre = 0, suf = 0;
    while (pre < full.n && pre < empty.n && full.ids[pre] == empty.ids[pre]) pre++;
    while (suf < full.n - pre && suf < empty.n - pre && full.ids[full.n - 1 - suf] == empty.ids[empty.n - 1 - suf])
        suf++;
    size_t eb = pre, ee = full.n - suf;
    if (max_tokens > 0 && full.n > (size_t)max_tokens) {
        size_t over = full.n - (size_t)max_tokens;
        if (over > ee - eb) {
            size_t fixed = full.n - (ee - eb);
            pl_tokens_free(&full);
            pl_tokens_free(&empty);
            return pl_error(PL_ERR_RANGE, "prompt: %zu tokens without the email exceed the limit %d", fixed, max_tokens);
        }
        /* drop the email's last `over` tokens */
        memmove(full.ids + ee - over, full.ids + ee, (full.n - ee) * sizeof *full.ids);
        full.n -= over;
        ee -= over;
        out->truncated = over;
    }
    pl_tokens_free(&empty);
    out->ids = full;
    out->email_begin = eb;
    out->email_end = ee;
    return PL_OK;
}

pl_status pl_classifier_label_tokens(const pl_tokenizer *t, const pl_classifier_prompt *p, int32_t ids[2]) {
    const char *probe = "Hello.";
    pl_tokens base = {0};
    pl_status st = build_user(t, p, probe, strlen(probe), p->answer_prefix, &base);
    for (int c = 0; c < 2 && !st; c++) {
        pl_buf ans = {0};
        pl_tokens with = {0};
        st = pl_buf_printf(&ans, "%s%s", p->answer_prefix ? p->answer_prefix : "", p->label_words[c]);
        if (!st) st = build_user(t, p, probe, strlen(probe), (const char *)ans.data, &with);
        if (!st) {
            size_t k = 0;
            while (k < base.n && k < with.n && base.ids[k] == with.ids[k]) k++;
            if (k >= with.n)
                st = pl_error(PL_ERR_INVALID, "prompt: label word '%s' adds no token", p->label_words[c]);
            else if (k < base.n)
                st = pl_error(PL_ERR_INVALID, "prompt: label word '%s' merges with the end of the prompt (token %zu)",
                              p->label_words[c], k);
            else ids[c] = with.ids[k];
        }
        pl_tokens_free(&with);
        pl_buf_free(&ans);
    }
    pl_tokens_free(&base);
    if (!st && ids[0] == ids[1])
        st = pl_error(PL_ERR_INVALID, "prompt: label words '%s' and '%s' start with the same token %d",
                      p->label_words[0], p->label_words[1], (int)ids[0]);
    return st;
}
