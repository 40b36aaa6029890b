/* score.c — run a classifier over normalized records and turn its scores
 * into predictions (docs/eval.md, "Scoring a model").
 *
 * Records are tokenized once (email part only), then handed to
 * pl_classifier_score in chunks of a few batches each: the classifier packs
 * each chunk into batches forked from its shared prefix cache. Chunks exist
 * only so the progress bar moves; they are large enough that the last,
 * partly filled batch of a chunk costs little.
 */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"

static int meta_flag(const cJSON *meta, const char *key) {
    const cJSON *v = meta ? cJSON_GetObjectItemCaseSensitive(meta, key) : NULL;
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v) ? 1 : 0;
    if (cJSON_IsNumber(v)) return v->valuedouble > 0 ? 1 : 0;
    return -1;
}

static int64_t utf8_chars(const char *s) {
    int64_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80) n++;
    return n;
}

void pl_pred_slices_from_record(const pl_record *r, pl_pred *p) {
    const cJSON *meta = r->meta;
    p->has_url = r->n_urls > 0 ? 1 : meta_flag(meta, "has_url");
    if (p->has_url < 0) p->has_url = 0; /* the urls list is always there */
    p->html = meta_flag(meta, "html");
    if (p->html < 0) p->html = meta_flag(meta, "has_html");
    p->link_mismatch = meta_flag(meta, "link_mismatch");
    /* The importer writes link_mismatch only when it is > 0; a record whose
     * HTML status is known went through it, so absence means 0 there. */
    if (p->link_mismatch < 0 && p->html >= 0) p->link_mismatch = 0;
    p->length = utf8_chars(r->body ? r->body : "");
}

pl_status pl_preds_push_scored(pl_preds *ps, const pl_record *r, double score) {
    pl_pred p;
    memset(&p, 0, sizeof p);
    p.id = r->id;
    p.source = r->source;
    p.label = r->label;
    p.score = score;
    p.p_phish = pl_sigmoid(score);
    p.pred = p.p_phish >= 0.5;
    p.has_url = p.html = p.link_mismatch = -1;
    p.length = -1;
    return pl_preds_push(ps, &p);
}

pl_status pl_pred_unlabelled_to_json(const pl_pred *p, pl_buf *b) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return pl_error(PL_ERR_NOMEM, "out of memory");
    int ok = cJSON_AddStringToObject(o, "id", p->id ? p->id : "") && cJSON_AddStringToObject(o, "source", p->source ? p->source : "") &&
             cJSON_AddNullToObject(o, "label") && cJSON_AddNumberToObject(o, "p_phish", p->p_phish) &&
             cJSON_AddNumberToObject(o, "score", p->score) && cJSON_AddNumberToObject(o, "pred", p->pred);
    if (ok && p->has_url >= 0) ok = cJSON_AddBoolToObject(o, "has_url", p->has_url) != NULL;
    if (ok && p->html >= 0) ok = cJSON_AddBoolToObject(o, "html", p->html) != NULL;
    if (ok && p->length >= 0) ok = cJSON_AddNumberToObject(o, "length", (double)p->length) != NULL;
    if (ok && p->link_mismatch >= 0) ok = cJSON_AddBoolToObject(o, "link_mismatch", p->link_mismatch) != NULL;
    if (ok && p->rationale) ok = cJSON_AddStringToObject(o, "rationale", p->rationale) != NULL;
    char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s) return pl_error(PL_ERR_NOMEM, "out of memory");
    pl_status st = pl_buf_append(b, s, strlen(s));
    cJSON_free(s);
    return st;
}

/* The scorer behind pl_score_records / pl_cot_score_records: exactly one
 * of cls / cot. */
static pl_status score_records(pl_classifier *cls, pl_cot *cot, const pl_prompt *p, const pl_tokenizer *t,
                               const pl_records *rs, const char *progress_label, pl_preds *labelled,
                               pl_preds *unlabelled, pl_score_stats *stats) {
    size_t n = rs->n;
    pl_score_stats s = {0};
    double t0 = pl_time_now();
    pl_tokens *em = calloc(n ? n : 1, sizeof *em);
    const int32_t **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    double *scores = calloc(n ? n : 1, sizeof *scores);
    char **rat = cot ? calloc(n ? n : 1, sizeof *rat) : NULL;
    pl_tokens *gen = cot ? calloc(n ? n : 1, sizeof *gen) : NULL;
    pl_status st = em && ptrs && lens && scores && (!cot || (rat && gen)) ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < n; i++) {
        int trunc = 0;
        st = pl_prompt_email_ids(p, t, &rs->v[i], &em[i], &trunc);
        if (st) {
            pl_error_wrap(st, "tokenizing record %zu (source \"%s\", id \"%s\")", i, rs->v[i].source, rs->v[i].id);
            break;
        }
        s.n_truncated += (size_t)trunc;
        ptrs[i] = em[i].ids;
        lens[i] = em[i].n;
        s.n_tokens += (int64_t)(em[i].n + p->suffix.n);
    }

    /* Score in chunks of about four batches per thread (pl_classifier_new's
     * default batch is 2048 tokens; a smaller one only makes chunks finer;
     * with several threads the classifier runs a chunk's batches side by
     * side). */
    pl_progress bar;
    int began = !st && progress_label;
    if (began) pl_progress_begin(&bar, progress_label, (int64_t)n, "emails");
    const size_t chunk_tokens = 4 * 2048 * (size_t)(pl_num_threads() > 1 ? pl_num_threads() : 1);
    size_t i = 0;
    while (!st && i < n) {
        size_t j = i, tok = 0;
        while (j < n && (j == i || tok < chunk_tokens)) tok += lens[j++] + p->suffix.n;
        if (cot) st = pl_cot_score(cot, ptrs + i, lens + i, j - i, scores + i, gen + i, rat + i);
        else st = pl_classifier_score(cls, ptrs + i, lens + i, j - i, scores + i);
        if (st) {
            pl_error_wrap(st, "scoring records %zu..%zu (first: source \"%s\", id \"%s\")", i, j - 1, rs->v[i].source,
                          rs->v[i].id);
            break;
        }
        for (size_t k = i; cot && k < j; k++) s.n_tokens += (int64_t)gen[k].n;
        i = j;
        if (began) pl_progress_update(&bar, (int64_t)i);
    }
    if (began) pl_progress_end(&bar);

    for (size_t k = 0; !st && k < n; k++) {
        const pl_record *r = &rs->v[k];
        char idbuf[32];
        pl_pred pr;
        memset(&pr, 0, sizeof pr);
        if (r->id && r->id[0]) pr.id = r->id;
        else {
            snprintf(idbuf, sizeof idbuf, "#%zu", k);
            pr.id = idbuf;
        }
        pr.source = r->source;
        pr.score = scores[k];
        pr.p_phish = pl_sigmoid(scores[k]);
        pr.pred = pr.p_phish >= 0.5;
        pr.rationale = rat ? rat[k] : NULL;
        pl_pred_slices_from_record(r, &pr);
        if (r->label == 0 || r->label == 1) {
            pr.label = r->label;
            st = pl_preds_push(labelled, &pr);
        } else {
            pr.label = -1;
            s.n_unlabelled++;
            if (unlabelled) st = pl_preds_push(unlabelled, &pr);
        }
    }
    s.n_records = n;
    s.seconds = pl_time_now() - t0;
    if (stats) *stats = s;
    for (size_t k = 0; em && k < n; k++) pl_tokens_free(&em[k]);
    for (size_t k = 0; gen && k < n; k++) pl_tokens_free(&gen[k]);
    for (size_t k = 0; rat && k < n; k++) free(rat[k]);
    free(em);
    free(ptrs);
    free(lens);
    free(scores);
    free(rat);
    free(gen);
    return st;
}

pl_status pl_score_records(pl_classifier *c, const pl_tokenizer *t, const pl_records *rs,
                           const char *progress_label, pl_preds *labelled, pl_preds *unlabelled,
                           pl_score_stats *stats) {
    return score_records(c, NULL, pl_classifier_prompt(c), t, rs, progress_label, labelled, unlabelled, stats);
}

pl_status pl_cot_score_records(pl_cot *c, const pl_tokenizer *t, const pl_records *rs, const char *progress_label,
                               pl_preds *labelled, pl_preds *unlabelled, pl_score_stats *stats) {
    return score_records(NULL, c, pl_cot_prompt(c), t, rs, progress_label, labelled, unlabelled, stats);
}
