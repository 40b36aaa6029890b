/* cot.c — chain-of-thought scoring (eval.h, docs/eval.md "Chain-of-thought
 * scoring"): generate the rationale greedily, then read the two label
 * tokens at the label position that follows it.
 *
 * The answer a CoT fine-tuning teaches is "[lead rationale \n] label word"
 * (pl_prompt_answer_ids). At test time the rationale is unknown, so the
 * scorer writes it: from the answer position (the end of the prompt's
 * suffix) it appends the argmax token until a token whose text holds a line
 * break, EOS or a control token, or max_new tokens. A break the model wrote
 * is kept; otherwise the line-break ids are appended (EOS is never fed).
 * The logits after the break are the label position:
 *     score = logit[label_pos_id] - logit[label_neg_id]
 * the same scalar every other paradigm reports, so CoT rows sit in the same
 * matrices and metrics.
 *
 * Batching: emails are packed like pl_classifier_score (each sequence a fork
 * of the shared prefix cache); then every step feeds each live sequence its
 * next token(s) in one forward. A sequence leaves the batch when its label
 * position was read.
 *
 * Not here: sampling (greedy only), a linear-head view, SHAP or hooks over
 * the generated text (the score depends on generated tokens, so a masked
 * email would change the rationale itself).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"

#define COT_MAX_SEQS 32 /* live sequences per batch: bounds the logits buffer [seqs, n_vocab] */

enum { TOK_TEXT = 0, TOK_BREAK = 1, TOK_END = 2 };

struct pl_cot {
    pl_model *m;
    const pl_prompt *p;
    const pl_tokenizer *t;
    pl_runner *run;
    pl_kv *prefix;
    int max_new, max_batch, max_seqs, n_vocab;
    pl_tokens nl;        /* the line break as it follows a word */
    uint8_t *kind;       /* [n_vocab] TOK_TEXT / TOK_BREAK / TOK_END */
    float *logits;       /* [max_seqs, n_vocab] */
    int32_t *ids;        /* [max_batch] packed new tokens of one forward */
};

void pl_cot_free(pl_cot *c) {
    if (!c) return;
    pl_runner_free(c->run);
    pl_kv_free(c->prefix);
    pl_tokens_free(&c->nl);
    free(c->kind);
    free(c->logits);
    free(c->ids);
    free(c);
}

int pl_cot_max_new(const pl_cot *c) { return c->max_new; }
const pl_prompt *pl_cot_prompt(const pl_cot *c) { return c->p; }

pl_status pl_cot_new(pl_model *m, const pl_prompt *p, const pl_tokenizer *t, int max_new, int max_batch_tokens,
                     pl_cot **out) {
    *out = NULL;
    const pl_arch_desc *d = pl_model_desc(m);
    if (max_new > 4096) return pl_error(PL_ERR_INVALID, "cot: at most 4096 generated tokens, asked for %d", max_new);
    pl_cot *c = calloc(1, sizeof *c);
    if (!c) return pl_error(PL_ERR_NOMEM, "out of memory");
    c->m = m;
    c->p = p;
    c->t = t;
    c->max_new = max_new > 0 ? max_new : PL_COT_MAX_NEW;
    c->n_vocab = d->n_vocab;
    pl_status st = pl_prompt_newline_ids(t, &c->nl);
    int email_cap = p->max_email_tokens + (int)p->suffix.n;
    int step = 1 + (int)c->nl.n; /* the most tokens one sequence feeds in a generation step */
    c->max_batch = max_batch_tokens > 0 ? max_batch_tokens : 2048;
    if (c->max_batch < email_cap) c->max_batch = email_cap;
    c->max_seqs = c->max_batch / (p->suffix.n > 0 ? (int)p->suffix.n : 1);
    if (c->max_seqs > c->max_batch / step) c->max_seqs = c->max_batch / step;
    if (c->max_seqs > COT_MAX_SEQS) c->max_seqs = COT_MAX_SEQS;
    if (c->max_seqs < 1) c->max_seqs = 1;
    int max_ctx = (int)p->prefix.n + email_cap + c->max_new + (int)c->nl.n;
    if (!st && (p->label_pos_id >= d->n_vocab || p->label_neg_id >= d->n_vocab))
        st = pl_error(PL_ERR_RANGE, "cot: label token ids %d/%d outside the model's vocabulary of %d", p->label_pos_id,
                      p->label_neg_id, d->n_vocab);
    if (!st && d->n_ctx_train > 0 && max_ctx > d->n_ctx_train)
        pl_log(PL_LOG_WARN, "cot: prompt + rationale of up to %d tokens exceeds the model's training context %d",
               max_ctx, d->n_ctx_train);
    /* what each token does to generation: text, a line break (the rationale ends), or an end */
    if (!st) {
        c->kind = calloc((size_t)c->n_vocab, 1);
        if (!c->kind) st = pl_error(PL_ERR_NOMEM, "out of memory");
    }
    int32_t eos = pl_tokenizer_eos(t), n_tok = pl_tokenizer_n_vocab(t);
    pl_buf piece = {0};
    for (int32_t id = 0; !st && id < c->n_vocab; id++) {
        if (id >= n_tok || id == eos || pl_tokenizer_token_type(t, id) == PL_TOKT_CONTROL) {
            c->kind[id] = TOK_END; /* ids past the tokenizer's vocabulary cannot be written either */
            continue;
        }
        piece.len = 0;
        st = pl_tokenizer_decode(t, &id, 1, PL_TOK_KEEP_PREFIX, &piece);
        if (!st && piece.len && memchr(piece.data, '\n', piece.len)) c->kind[id] = TOK_BREAK;
    }
    pl_buf_free(&piece);
    if (!st) st = pl_runner_new(m, c->max_batch > (int)p->prefix.n ? c->max_batch : (int)p->prefix.n, max_ctx, &c->run);
    if (!st) st = pl_prompt_prefix_cache(m, c->run, p, &c->prefix);
    if (!st) {
        c->logits = malloc((size_t)c->max_seqs * (size_t)c->n_vocab * sizeof(float));
        c->ids = malloc((size_t)c->max_batch * sizeof(int32_t));
        if (!c->logits || !c->ids) st = pl_error(PL_ERR_NOMEM, "cot: out of memory");
    }
    if (st) {
        pl_cot_free(c);
        return st;
    }
    *out = c;
    return PL_OK;
}

/* argmax of one logits row; ties go to the lowest id */
static int32_t argmax(const float *l, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[best]) best = i;
    return best;
}

/* One live sequence of a batch. */
typedef struct {
    size_t email;        /* index into the caller's arrays */
    pl_kv *kv;
    pl_tokens out;       /* ids fed after the suffix */
    int n_gen;           /* generated ids among them */
    int32_t pend[8];     /* ids to feed next (1 + nl.n at most) */
    int n_pend;
    int final;           /* 1: the next logits are the label position */
} live_seq;

/* The rationale text: the generated ids up to the break, decoded, cut at
 * the first line break, leading spaces dropped. */
static pl_status rationale_text(const pl_cot *c, const live_seq *q, char **out) {
    pl_buf b = {0};
    pl_status st = q->n_gen ? pl_tokenizer_decode(c->t, q->out.ids, (size_t)q->n_gen, 0, &b) : PL_OK;
    if (!st) st = pl_buf_append(&b, "", 1);
    if (st) {
        pl_buf_free(&b);
        return st;
    }
    char *nl = strchr(b.data, '\n');
    if (nl) *nl = 0;
    size_t lead = 0;
    while (b.data[lead] == ' ') lead++;
    memmove(b.data, b.data + lead, strlen(b.data + lead) + 1);
    *out = b.data;
    return PL_OK;
}

pl_status pl_cot_score(pl_cot *c, const int32_t *const *emails, const size_t *lens, size_t n, double *scores,
                       pl_tokens *gen, char **rationale) {
    const pl_prompt *p = c->p;
    size_t ns = p->suffix.n;
    if ((size_t)c->nl.n + 1 > sizeof ((live_seq *)0)->pend / sizeof(int32_t))
        return pl_error(PL_ERR_UNSUPPORTED, "cot: a line break of %zu tokens", c->nl.n);
    live_seq *q = calloc((size_t)c->max_seqs, sizeof *q);
    pl_seq *seqs = calloc((size_t)c->max_seqs, sizeof *seqs);
    int *map = calloc((size_t)c->max_seqs, sizeof *map);
    pl_status st = q && seqs && map ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; gen && i < n; i++) memset(&gen[i], 0, sizeof gen[i]);
    for (size_t i = 0; rationale && i < n; i++) rationale[i] = NULL;
    size_t i = 0;
    while (!st && i < n) {
        /* pack emails (email + suffix) into the first forward of a batch */
        int nq = 0, used = 0;
        while (i < n && nq < c->max_seqs) {
            if (lens[i] > (size_t)p->max_email_tokens) {
                st = pl_error(PL_ERR_RANGE, "cot: email %zu has %zu tokens, more than the prompt's %d", i, lens[i],
                              p->max_email_tokens);
                break;
            }
            int need = (int)(lens[i] + ns);
            if (nq > 0 && used + need > c->max_batch) break;
            live_seq *s = &q[nq];
            memset(s, 0, sizeof *s);
            s->email = i;
            st = pl_kv_new(c->m, need + c->max_new + (int)c->nl.n, c->prefix, &s->kv);
            if (st) break;
            int32_t *dst = c->ids + used;
            if (lens[i]) memcpy(dst, emails[i], lens[i] * sizeof(int32_t));
            memcpy(dst + lens[i], p->suffix.ids, ns * sizeof(int32_t));
            seqs[nq] = (pl_seq){s->kv, dst, need};
            map[nq] = nq;
            used += need;
            nq++;
            i++;
        }
        int n_live = nq;
        while (!st && n_live > 0) {
            st = pl_forward(c->run, seqs, n_live, PL_LOGITS_LAST, c->logits);
            int next = 0;
            used = 0;
            for (int a = 0; !st && a < n_live; a++) {
                live_seq *s = &q[map[a]];
                const float *row = c->logits + (size_t)a * (size_t)c->n_vocab;
                if (s->final) { /* the label position */
                    double sc = (double)row[p->label_pos_id] - (double)row[p->label_neg_id];
                    if (!isfinite(sc)) st = pl_error(PL_ERR_NUMERIC, "cot: non-finite score for email %zu", s->email);
                    scores[s->email] = sc;
                    if (!st && rationale) st = rationale_text(c, s, &rationale[s->email]);
                    if (!st && gen) {
                        gen[s->email] = s->out;
                        memset(&s->out, 0, sizeof s->out);
                    }
                    continue; /* leaves the batch */
                }
                int32_t g = argmax(row, c->n_vocab);
                s->n_pend = 0;
                if (c->kind[g] != TOK_END) {
                    s->pend[s->n_pend++] = g;
                    s->n_gen++;
                }
                if (c->kind[g] == TOK_BREAK) {
                    s->final = 1;
                } else if (c->kind[g] == TOK_END || s->n_gen >= c->max_new) {
                    for (size_t k = 0; k < c->nl.n; k++) s->pend[s->n_pend++] = c->nl.ids[k];
                    s->final = 1;
                }
                for (int k = 0; !st && k < s->n_pend; k++) st = pl_tokens_push(&s->out, s->pend[k]);
                /* still live: feed its pending ids next step */
                memcpy(c->ids + used, s->pend, (size_t)s->n_pend * sizeof(int32_t));
                seqs[next] = (pl_seq){s->kv, c->ids + used, s->n_pend};
                map[next] = map[a];
                used += s->n_pend;
                next++;
            }
            n_live = next;
        }
        for (int k = 0; k < nq; k++) {
            pl_kv_free(q[k].kv);
            pl_tokens_free(&q[k].out);
            q[k].kv = NULL;
        }
    }
    if (st) {
        for (size_t k = 0; gen && k < n; k++) pl_tokens_free(&gen[k]);
        for (size_t k = 0; rationale && k < n; k++) {
            free(rationale[k]);
            rationale[k] = NULL;
        }
    }
    free(q);
    free(seqs);
    free(map);
    return st;
}
