/* classifier.c — the batched scorer over one shared prefix cache (prompt.h).
 *
 * Emails are packed into batches of at most max_batch new tokens (email +
 * suffix), each email a fork of the prefix cache. With more than one
 * thread and more than one batch, batches run side by side in lanes: one
 * runner per thread, each forward on its thread alone (its products and
 * attention see that they run inside a parallel region and stay on the
 * calling thread). A lane needs no barrier with the others, where a forward
 * split over threads waits at every product and leaves a thread idle in
 * each serial step. A sequence's score does not depend on its batch or on
 * the thread count (the model's products and attention keep a row's bits
 * whatever its neighbours), so lanes change only the time; tests check the
 * scores bit for bit. Lanes are not used while the first runner carries
 * hooks other than the classifier's own (pl_classifier_runner lets callers
 * add them, and they would see only part of the batches). */
#include "prompt/prompt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LANES 64

typedef struct pl_classifier pl_classifier;

/* One thread's run state: the scoring lane (prompt.h), the hidden rows a
 * head reads and the batch's caches. */
typedef struct {
    pl_prompt_lane s;
    pl_classifier *c;
    float *hidden; /* [max_seqs, n_embd]: ln_final at each sequence's last token */
    pl_kv **kvs;   /* [max_seqs] */
} lane;

struct pl_classifier {
    pl_model *m;
    const pl_prompt *p;
    pl_kv *prefix;
    int max_batch, max_ctx, n_embd, max_seqs;
    float *head_w; /* [n_embd] or NULL */
    float head_b;
    lane *lanes;   /* [MAX_LANES]; lanes[0] is made with the classifier, the others on first use */
    int n_lanes;
};

static void grab_last(const pl_hook_info *info, float *data, void *user) {
    lane *ln = user;
    const pl_classifier *c = ln->c;
    if (info->seq >= c->max_seqs) return;
    int64_t n_tok = info->shape[0], d = info->shape[1];
    memcpy(ln->hidden + (size_t)info->seq * (size_t)c->n_embd, data + (size_t)(n_tok - 1) * (size_t)d,
           (size_t)d * sizeof(float));
}

static void lane_free(lane *ln) {
    pl_prompt_lane_free(&ln->s);
    free(ln->hidden);
    free(ln->kvs);
    memset(ln, 0, sizeof *ln);
}

/* lanes[i]'s runner and buffers (lane 0 also computes the prefix cache) */
static pl_status lane_init(pl_classifier *c, int i) {
    lane *ln = &c->lanes[i];
    const pl_prompt *p = c->p;
    ln->c = c;
    pl_status st = pl_prompt_lane_init(&ln->s, c->m, p, c->max_batch > (int)p->prefix.n ? c->max_batch : (int)p->prefix.n,
                                       c->max_ctx, c->max_seqs, i == 0 ? &c->prefix : NULL);
    if (!st && c->head_w) st = pl_runner_set_hook(ln->s.run, PL_HOOK_LN_FINAL, -1, grab_last, ln);
    if (!st) {
        ln->hidden = malloc((size_t)c->max_seqs * (size_t)c->n_embd * sizeof(float));
        ln->kvs = calloc((size_t)c->max_seqs, sizeof *ln->kvs);
        if (!ln->hidden || !ln->kvs) st = pl_error(PL_ERR_NOMEM, "classifier: out of memory");
    }
    if (st) lane_free(ln);
    return st;
}

pl_status pl_classifier_new(pl_model *m, const pl_prompt *p, int max_batch_tokens, pl_classifier **out) {
    *out = NULL;
    const pl_arch_desc *d = pl_model_desc(m);
    pl_classifier *c = calloc(1, sizeof *c);
    if (!c) return pl_error(PL_ERR_NOMEM, "out of memory");
    c->m = m;
    c->p = p;
    c->n_embd = d->n_embd;
    int email_cap = p->max_email_tokens + (int)p->suffix.n;
    c->max_batch = max_batch_tokens > 0 ? max_batch_tokens : 2048;
    if (c->max_batch < email_cap) c->max_batch = email_cap;
    c->max_ctx = (int)p->prefix.n + email_cap;
    /* Every sequence carries at least the suffix, so at most max_batch /
     * suffix sequences share a forward: that bounds the logits buffer
     * ([max_seqs, 2]) and the hidden rows. */
    c->max_seqs = c->max_batch / (int)(p->suffix.n > 0 ? p->suffix.n : 1);
    if (c->max_seqs < 1) c->max_seqs = 1;
    pl_status st = PL_OK;
    if (p->label_pos_id >= d->n_vocab || p->label_neg_id >= d->n_vocab)
        st = pl_error(PL_ERR_RANGE, "classifier: label token ids %d/%d outside the model's vocabulary of %d "
                      "(a tokenizer that does not belong to the model?)", p->label_pos_id, p->label_neg_id, d->n_vocab);
    if (!st && d->n_ctx_train > 0 && c->max_ctx > d->n_ctx_train)
        pl_log(PL_LOG_WARN, "classifier: prompt of up to %d tokens exceeds the model's training context %d",
               c->max_ctx, d->n_ctx_train);
    if (!st) {
        c->lanes = calloc(MAX_LANES, sizeof *c->lanes);
        if (!c->lanes) st = pl_error(PL_ERR_NOMEM, "classifier: out of memory");
    }
    if (!st) st = lane_init(c, 0);
    if (!st) c->n_lanes = 1;
    if (st) {
        pl_classifier_free(c);
        return st;
    }
    *out = c;
    return PL_OK;
}

void pl_classifier_free(pl_classifier *c) {
    if (!c) return;
    for (int i = 0; c->lanes && i < c->n_lanes; i++) lane_free(&c->lanes[i]);
    free(c->lanes);
    pl_kv_free(c->prefix);
    free(c->head_w);
    free(c);
}

pl_status pl_classifier_set_head(pl_classifier *c, const float *w, float b) {
    free(c->head_w);
    c->head_w = NULL;
    pl_status st = PL_OK;
    if (w) {
        c->head_w = malloc((size_t)c->n_embd * sizeof(float));
        if (!c->head_w) return pl_error(PL_ERR_NOMEM, "out of memory");
        memcpy(c->head_w, w, (size_t)c->n_embd * sizeof(float));
        c->head_b = b;
    }
    for (int i = 0; !st && i < c->n_lanes; i++)
        st = pl_runner_set_hook(c->lanes[i].s.run, PL_HOOK_LN_FINAL, -1, w ? grab_last : NULL, w ? &c->lanes[i] : NULL);
    return st;
}

static double score_of(const pl_classifier *c, const lane *ln, int i) {
    if (c->head_w) {
        const float *h = ln->hidden + (size_t)i * (size_t)c->n_embd;
        double s = c->head_b;
        for (int k = 0; k < c->n_embd; k++) s += (double)c->head_w[k] * (double)h[k];
        return s;
    }
    const float *l = ln->s.logits + (size_t)i * 2; /* the label logits (pl_runner_set_logit_ids) */
    return (double)l[0] - (double)l[1];
}

/* Emails [first, first + count) as one forward on ln: forks of the prefix,
 * scores into scores[first ...], the forks freed again. */
static pl_status run_batch(pl_classifier *c, lane *ln, const int32_t *const *emails, const size_t *lens, size_t first,
                           int count, double *scores) {
    const pl_prompt *p = c->p;
    const size_t ns = p->suffix.n;
    pl_status st = PL_OK;
    int nseq = 0, used = 0;
    for (; !st && nseq < count; nseq++) {
        const size_t e = first + (size_t)nseq;
        const int need = (int)(lens[e] + ns);
        st = pl_kv_new(c->m, need, c->prefix, &ln->kvs[nseq]);
        if (st) break;
        int32_t *dst = ln->s.ids + used;
        if (lens[e]) memcpy(dst, emails[e], lens[e] * sizeof(int32_t));
        memcpy(dst + lens[e], p->suffix.ids, ns * sizeof(int32_t));
        ln->s.seqs[nseq] = (pl_seq){ln->kvs[nseq], dst, need};
        used += need;
    }
    if (!st) st = pl_forward(ln->s.run, ln->s.seqs, nseq, PL_LOGITS_LAST, ln->s.logits);
    for (int k = 0; !st && k < nseq; k++) {
        scores[first + (size_t)k] = score_of(c, ln, k);
        if (!isfinite(scores[first + (size_t)k]))
            st = pl_error(PL_ERR_NUMERIC, "classifier: non-finite score for email %zu", first + (size_t)k);
    }
    for (int k = 0; k < nseq; k++) {
        pl_kv_free(ln->kvs[k]);
        ln->kvs[k] = NULL;
    }
    return st;
}

typedef struct {
    pl_classifier *c;
    const int32_t *const *emails;
    const size_t *lens, *first;
    double *scores;
} batch_job;

static pl_status batch_in_lane(void *ctx, int lane_id, size_t b) {
    const batch_job *j = ctx;
    return run_batch(j->c, &j->c->lanes[lane_id], j->emails, j->lens, j->first[b], (int)(j->first[b + 1] - j->first[b]),
                     j->scores);
}

/* The lanes for n_batch batches: as many as pl_lanes_available allows
 * (a lane: a runner and a batch's caches), none while foreign hooks are
 * set. */
static int lanes_wanted(const pl_classifier *c, size_t n_batch) {
    if (pl_runner_hook_count(c->lanes[0].s.run) != (c->head_w ? 1 : 0)) return 1;
    return pl_lanes_available(n_batch, MAX_LANES,
                              pl_runner_bytes(c->lanes[0].s.run) + pl_kv_position_bytes(c->m) * (size_t)c->max_batch);
}

pl_status pl_classifier_score(pl_classifier *c, const int32_t *const *emails, const size_t *lens, size_t n,
                              double *scores) {
    const pl_prompt *p = c->p;
    const size_t ns = p->suffix.n;
    for (size_t i = 0; i < n; i++)
        if (lens[i] > (size_t)p->max_email_tokens)
            return pl_error(PL_ERR_RANGE, "classifier: email %zu has %zu tokens, more than the prompt's %d", i, lens[i],
                            p->max_email_tokens);
    if (n == 0) return PL_OK;
    int *need = malloc(n * sizeof *need);
    size_t *first = malloc((n + 1) * sizeof *first);
    if (!need || !first) {
        free(need);
        free(first);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) need[i] = (int)(lens[i] + ns);
    /* batches evened out for the lanes that run them */
    int n_lanes = lanes_wanted(c, n);
    const size_t n_batch = pl_batch_plan(need, n, c->max_batch, c->max_seqs, &n_lanes, first);
    free(need);
    pl_status st = PL_OK;
    while (!st && c->n_lanes < n_lanes)
        if (!(st = lane_init(c, c->n_lanes))) c->n_lanes++; /* a lane that failed is not counted */
    batch_job job = {c, emails, lens, first, scores};
    if (!st) st = pl_lanes_run(n_lanes, n_batch, batch_in_lane, &job);
    free(first);
    return st;
}

pl_status pl_classifier_score_full(pl_classifier *c, const int32_t *ids, size_t n, double *score) {
    if (n == 0 || n > (size_t)c->max_ctx || n > (size_t)c->max_batch + c->p->prefix.n)
        return pl_error(PL_ERR_RANGE, "classifier: prompt of %zu tokens outside [1, %d]", n, c->max_ctx);
    lane *ln = &c->lanes[0];
    pl_kv *kv = NULL;
    pl_status st = pl_kv_new(c->m, (int)n, NULL, &kv);
    /* Run in chunks that fit the runner. */
    size_t done = 0;
    while (!st && done < n) {
        size_t chunk = n - done;
        if (chunk > (size_t)c->max_batch) chunk = (size_t)c->max_batch;
        pl_seq s = {kv, ids + done, (int)chunk};
        st = pl_forward(ln->s.run, &s, 1, done + chunk == n ? PL_LOGITS_LAST : PL_LOGITS_NONE, ln->s.logits);
        done += chunk;
    }
    if (!st) *score = score_of(c, ln, 0);
    pl_kv_free(kv);
    return st;
}

pl_runner *pl_classifier_runner(pl_classifier *c) { return c->lanes[0].s.run; }
const pl_prompt *pl_classifier_prompt(const pl_classifier *c) { return c->p; }
const pl_model *pl_classifier_model(const pl_classifier *c) { return c->m; }
