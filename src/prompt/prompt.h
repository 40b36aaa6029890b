/* prompt.h — the classifier view of a causal LM: one prompt layout and one
 * scalar score shared by training, evaluation, SHAP and interpretability.
 *
 * A prompt is a concatenation of token ids:
 *
 *     prefix            email                     suffix          | answer
 *     [BOS] instruction  "Subject: ..\n\n<body>"   "\n\nAnswer:"   | label token
 *
 * The prefix and suffix are the same for every email, so the prefix's KV cache
 * is computed once and shared, and the email part is a separate token span
 * that SHAP masks over ids (never through strings). The model is read at the
 * answer position (the last suffix token):
 *
 *     score = logit[label_pos] - logit[label_neg]     (label-token view)
 *     score = w . ln_final(h_last) + b                (linear head view)
 *     p_phish = sigmoid(score)
 *
 * For chat models (vocab with Llama 3.1 / Gemma / Mistral control tokens) the
 * instruction and email sit in the user turn and the answer position is the
 * start of the assistant turn; otherwise a plain completion layout is used.
 * Label words are "phishing" / "legitimate"; their first tokens must differ.
 *
 * Deliberately not here: training objectives (train/), metrics (eval/).
 */
#ifndef PL_PROMPT_H
#define PL_PROMPT_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "data/data.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

typedef enum {
    PL_LAYOUT_AUTO = 0,  /* chat when the vocab has a chat family's control tokens, else plain */
    PL_LAYOUT_PLAIN,     /* completion-style: instruction, email, "Answer:" */
    PL_LAYOUT_CHAT       /* the family's one-turn chat template */
} pl_prompt_layout;

typedef struct {
    pl_prompt_layout layout;
    pl_chat_family family;     /* for CHAT (AUTO: detect from the vocab) */
    const char *instruction;   /* NULL: the default instruction */
    const char *label_pos;     /* NULL: "phishing" */
    const char *label_neg;     /* NULL: "legitimate" */
    int max_email_tokens;      /* email part truncated to this many ids (0: 384) */
} pl_prompt_spec;

/* Defaults: AUTO layout, default instruction and labels, 384 email tokens. */
pl_prompt_spec pl_prompt_spec_default(void);

typedef struct {
    pl_tokens prefix;          /* ids before the email (shared by all emails) */
    pl_tokens suffix;          /* ids after the email, ending at the answer position */
    int32_t label_pos_id;      /* first token of the phishing label word */
    int32_t label_neg_id;      /* first token of the legitimate label word */
    pl_tokens label_words[2];  /* the label words as answered: [0] legitimate, [1] phishing (first ids above) */
    int max_email_tokens;
    int chat;                  /* 1 when a chat template was used */
    pl_chat_family family;
} pl_prompt;

/* Build the shared parts for a tokenizer. Errors: PL_ERR_UNSUPPORTED when the
 * two label words start with the same token. */
pl_status pl_prompt_init(pl_prompt *p, const pl_tokenizer *t, const pl_prompt_spec *spec);
void pl_prompt_free(pl_prompt *p);

/* The email text as the model sees it: "Subject: S\nFrom: F\n\nBODY" (empty
 * header lines omitted). Appended to out. */
pl_status pl_prompt_email_text(const pl_record *r, pl_buf *out);

/* Tokenize a record's email part (appended to out), truncated to
 * p->max_email_tokens; *truncated (may be NULL) is set to 1 when cut. */
pl_status pl_prompt_email_ids(const pl_prompt *p, const pl_tokenizer *t, const pl_record *r, pl_tokens *out,
                              int *truncated);

/* The full prompt prefix + email + suffix (appended to out). */
pl_status pl_prompt_full(const pl_prompt *p, const int32_t *email, size_t n_email, pl_tokens *out);

/* The answer that follows the answer position, as causal-LM fine-tuning
 * teaches it and a chain-of-thought scorer reads it:
 *
 *     [lead rationale "\n"] label word
 *
 * lead is " " in the plain layout of a vocabulary that adds no space prefix
 * (the text after "Answer:"), else nothing; newlines inside the rationale
 * become spaces, so the first newline closes it. The label word's ids are
 * label_words[label], whose first token is label_neg_id / label_pos_id: the
 * label position after a rationale is read through the same two tokens as
 * everywhere else. rationale NULL or "": the label word alone. label 0 or 1.
 * Appended to out (no EOS). */
pl_status pl_prompt_answer_ids(const pl_prompt *p, const pl_tokenizer *t, const char *rationale, int label,
                               pl_tokens *out);
/* The ids of a rationale's closing line break ("\n"), as the tokenizer writes
 * it on its own (appended to out). */
pl_status pl_prompt_newline_ids(const pl_tokenizer *t, pl_tokens *out);

/* ---- scoring ------------------------------------------------------------ */

/* The KV cache of the template prefix, run once through run (the start of
 * every scorer: classifier, chain-of-thought, SHAP value function). */
pl_status pl_prompt_prefix_cache(pl_model *m, pl_runner *run, const pl_prompt *p, pl_kv **out);

/* One thread's scoring state (the classifier's and explain's lanes): a
 * runner for max_tokens new tokens and max_ctx positions that computes only
 * the two label logits, their buffer [max_seqs, 2], the packed ids
 * [max_tokens] and a batch's sequences [max_seqs]. With prefix not NULL the
 * template prefix is run on it and its cache stored there. */
typedef struct {
    pl_runner *run;
    float *logits;
    int32_t *ids;
    pl_seq *seqs;
} pl_prompt_lane;
pl_status pl_prompt_lane_init(pl_prompt_lane *ln, pl_model *m, const pl_prompt *p, int max_tokens, int max_ctx,
                              int max_seqs, pl_kv **prefix);
void pl_prompt_lane_free(pl_prompt_lane *ln);

/* A scorer: model + prompt + run state + the prefix's KV cache (computed at
 * creation). One thread at a time. The model must outlive it. */
typedef struct pl_classifier pl_classifier;

/* max_batch_tokens bounds the new tokens of one forward (0: 2048). */
pl_status pl_classifier_new(pl_model *m, const pl_prompt *p, int max_batch_tokens, pl_classifier **out);
void pl_classifier_free(pl_classifier *c);

/* Use a linear head on ln_final(h_last) instead of the label-token logits.
 * w has n_embd entries (copied). w == NULL returns to the label-token view. */
pl_status pl_classifier_set_head(pl_classifier *c, const float *w, float b);

/* Scores of n emails given as token-id spans (email part only). Emails are
 * packed into batches, each a fork of the shared prefix cache. */
pl_status pl_classifier_score(pl_classifier *c, const int32_t *const *emails, const size_t *lens, size_t n,
                              double *scores);

/* Score one whole prompt given as ids (no prefix sharing): the reference
 * path the batched scorer is tested against. */
pl_status pl_classifier_score_full(pl_classifier *c, const int32_t *ids, size_t n, double *score);

/* The runner (to register hooks for interpretability) and the prompt. */
pl_runner *pl_classifier_runner(pl_classifier *c);
const pl_prompt *pl_classifier_prompt(const pl_classifier *c);
const pl_model *pl_classifier_model(const pl_classifier *c);

static inline double pl_sigmoid(double x) {
    return x >= 0 ? 1.0 / (1.0 + __builtin_exp(-x)) : __builtin_exp(x) / (1.0 + __builtin_exp(x));
}

#endif
