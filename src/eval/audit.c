/* audit.c — the label-noise audit wired to a learner: stratified k-fold
 * out-of-fold probabilities, confident learning (the data module's
 * pl_audit_confident), the naive "model contradicts the label with > T
 * confidence" rule on out-of-fold and on in-sample (circular)
 * probabilities, flip injection and precision/recall against known flips.
 *
 * The learner is a callback (pl_audit_fit_fn); pl_audit_model_fit is the
 * one that fine-tunes a model with the train module and scores with the
 * prompt module's classifier. docs/eval.md, section "label-noise audit".
 */
#include "eval.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "prompt/prompt.h"
#include "tokenizer/tokenizer.h"

/* ---- folds ----------------------------------------------------------------- */

pl_status pl_kfold_assign(const int *label, size_t n, int k, uint64_t seed, int *fold) {
    if (k < 2) return pl_error(PL_ERR_INVALID, "k-fold: k is %d, need at least 2", k);
    size_t cnt[2] = {0};
    for (size_t i = 0; i < n; i++) {
        if (label[i] != 0 && label[i] != 1)
            return pl_error(PL_ERR_INVALID, "k-fold: label of item %zu is %d, not 0/1", i, label[i]);
        cnt[label[i]]++;
    }
    for (int c = 0; c < 2; c++)
        if (cnt[c] < (size_t)k)
            return pl_error(PL_ERR_INVALID, "k-fold: %zu records of label %d, fewer than k = %d folds", cnt[c], c, k);
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx) return pl_error(PL_ERR_NOMEM, "out of memory");
    for (int c = 0; c < 2; c++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (label[i] == c) idx[m++] = i;
        pl_rng master, r;
        pl_rng_seed(&master, seed);
        r = pl_rng_split(&master, (uint64_t)c);
        pl_rng_shuffle(&r, idx, m, sizeof *idx);
        for (size_t j = 0; j < m; j++) fold[idx[j]] = (int)(j % (size_t)k);
    }
    free(idx);
    return PL_OK;
}

/* ---- flip injection and truth ------------------------------------------------ */

static pl_status meta_set_bool(pl_record *r, const char *key, int v) {
    if (!r->meta && !(r->meta = cJSON_CreateObject())) return pl_error(PL_ERR_NOMEM, "out of memory");
    cJSON_DeleteItemFromObjectCaseSensitive(r->meta, key);
    if (!cJSON_AddBoolToObject(r->meta, key, v)) return pl_error(PL_ERR_NOMEM, "out of memory");
    return PL_OK;
}

pl_status pl_audit_inject_flips(pl_records *rs, double rate, uint64_t seed, size_t *n_flipped) {
    if (!(rate >= 0.0 && rate <= 1.0)) return pl_error(PL_ERR_INVALID, "flip injection: rate %g is not in [0, 1]", rate);
    for (size_t i = 0; i < rs->n; i++)
        if (rs->v[i].label != 0 && rs->v[i].label != 1)
            return pl_error(PL_ERR_INVALID, "flip injection: record %zu (id '%s') has label %d, not 0/1", i + 1,
                            rs->v[i].id, rs->v[i].label);
    size_t m = (size_t)llround(rate * (double)rs->n);
    size_t *idx = malloc((rs->n ? rs->n : 1) * sizeof *idx);
    if (!idx) return pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < rs->n; i++) idx[i] = i;
    pl_rng r;
    pl_rng_seed(&r, seed);
    pl_rng_shuffle(&r, idx, rs->n, sizeof *idx);
    pl_status st = PL_OK;
    for (size_t i = 0; i < rs->n && !st; i++) st = meta_set_bool(&rs->v[i], "label_flipped", 0);
    for (size_t j = 0; j < m && !st; j++) {
        pl_record *rec = &rs->v[idx[j]];
        st = meta_set_bool(rec, "label_flipped", 1);
        cJSON_DeleteItemFromObjectCaseSensitive(rec->meta, "label_original");
        if (!st && !cJSON_AddNumberToObject(rec->meta, "label_original", rec->label))
            st = pl_error(PL_ERR_NOMEM, "out of memory");
        rec->label = 1 - rec->label;
    }
    free(idx);
    if (!st && n_flipped) *n_flipped = m;
    return st;
}

static long find_id(const pl_records *rs, const char *id) {
    for (size_t i = 0; i < rs->n; i++)
        if (!strcmp(rs->v[i].id, id)) return (long)i;
    return -1;
}

pl_status pl_audit_truth(const pl_records *rs, const char *truth_path, uint8_t *truth, int *have) {
    memset(truth, 0, rs->n ? rs->n : 1);
    *have = 0;
    if (truth_path) {
        char *data = NULL;
        size_t len = 0;
        pl_status st = pl_read_file(truth_path, &data, &len);
        if (st) return st;
        size_t lineno = 0;
        for (size_t pos = 0; pos < len && !st;) {
            size_t e = pos;
            while (e < len && data[e] != '\n') e++;
            lineno++;
            size_t a = pos, b = e;
            while (a < b && (data[a] == ' ' || data[a] == '\t' || data[a] == '\r')) a++;
            while (b > a && (data[b - 1] == ' ' || data[b - 1] == '\t' || data[b - 1] == '\r')) b--;
            pos = e + 1;
            if (a == b) continue;
            char *line = malloc(b - a + 1);
            if (!line) { st = pl_error(PL_ERR_NOMEM, "out of memory"); break; }
            memcpy(line, data + a, b - a);
            line[b - a] = 0;
            const char *id = line;
            cJSON *j = NULL;
            if (line[0] == '{') {
                j = cJSON_Parse(line);
                const cJSON *ji = j ? cJSON_GetObjectItemCaseSensitive(j, "id") : NULL;
                if (!cJSON_IsString(ji)) {
                    st = pl_error(PL_ERR_FORMAT, "%s:%zu: a JSON line needs a string field \"id\"", truth_path, lineno);
                    cJSON_Delete(j);
                    free(line);
                    break;
                }
                id = ji->valuestring;
            }
            long x = find_id(rs, id);
            if (x < 0) st = pl_error(PL_ERR_FORMAT, "%s:%zu: id '%s' names no record", truth_path, lineno, id);
            else truth[x] = 1;
            cJSON_Delete(j);
            free(line);
        }
        free(data);
        if (!st) *have = 1;
        return st;
    }
    size_t with = 0;
    for (size_t i = 0; i < rs->n; i++) {
        const cJSON *f = rs->v[i].meta ? cJSON_GetObjectItemCaseSensitive(rs->v[i].meta, "label_flipped") : NULL;
        if (f) with++;
    }
    if (!with) return PL_OK;
    for (size_t i = 0; i < rs->n; i++) {
        const cJSON *f = rs->v[i].meta ? cJSON_GetObjectItemCaseSensitive(rs->v[i].meta, "label_flipped") : NULL;
        if (!cJSON_IsBool(f))
            return pl_error(PL_ERR_FORMAT, "record %zu (id '%s'): meta.label_flipped is %s, but other records carry it",
                            i + 1, rs->v[i].id, f ? "not a boolean" : "missing");
        truth[i] = cJSON_IsTrue(f) ? 1 : 0;
    }
    *have = 1;
    return PL_OK;
}

/* ---- the run --------------------------------------------------------------- */

pl_audit_opts pl_audit_opts_default(void) {
    pl_audit_opts o = {5, 1234, 0.91, 1};
    return o;
}

const char *pl_audit_rule_name(int rule) {
    static const char *names[PL_AUDIT_N_RULES] = {"cl_prune", "cl_joint", "naive_oof", "naive_circular"};
    return rule >= 0 && rule < PL_AUDIT_N_RULES ? names[rule] : "?";
}

void pl_audit_run_result_free(pl_audit_run_result *res) {
    free(res->fold);
    free(res->p_oof);
    free(res->p_circ);
    free(res->flag_naive_circ);
    free(res->truth);
    pl_audit_result_free(&res->cl);
    memset(res, 0, sizeof *res);
}

static pl_status check_probs(const pl_records *rs, const size_t *idx, size_t n, const double *p, int tag) {
    for (size_t j = 0; j < n; j++)
        if (!(p[j] >= 0.0 && p[j] <= 1.0))
            return pl_error(PL_ERR_NUMERIC, "audit: the %s model gave record '%s' P(phishing) = %g, not in [0, 1]",
                            tag < 0 ? "all-records" : "fold", rs->v[idx[j]].id, p[j]);
    return PL_OK;
}

static pl_audit_prf prf_of(const uint8_t *flag, const uint8_t *truth, size_t n, size_t n_true) {
    pl_audit_prf r = {0, 0, NAN, NAN};
    for (size_t i = 0; i < n; i++) {
        if (!flag[i]) continue;
        r.flagged++;
        if (truth[i]) r.true_pos++;
    }
    if (r.flagged) r.precision = (double)r.true_pos / (double)r.flagged;
    if (n_true) r.recall = (double)r.true_pos / (double)n_true;
    return r;
}

pl_status pl_audit_run(const pl_records *rs, const pl_audit_opts *o, pl_audit_fit_fn fit, void *user,
                       const uint8_t *truth, pl_audit_run_result *res) {
    memset(res, 0, sizeof *res);
    size_t n = rs->n;
    if (!n) return pl_error(PL_ERR_INVALID, "audit: no records");
    if (!(o->naive_threshold >= 0.5 && o->naive_threshold < 1.0))
        return pl_error(PL_ERR_INVALID, "audit: naive threshold %g is not in [0.5, 1)", o->naive_threshold);
    int *label = malloc(n * sizeof *label);
    size_t *tr = malloc(n * sizeof *tr), *te = malloc(n * sizeof *te);
    double *pbuf = malloc(n * sizeof *pbuf);
    res->n = n;
    res->k = o->k;
    res->naive_threshold = o->naive_threshold;
    res->fold = malloc(n * sizeof *res->fold);
    res->p_oof = malloc(n * sizeof *res->p_oof);
    pl_status st = PL_OK;
    if (!label || !tr || !te || !pbuf || !res->fold || !res->p_oof) st = pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && !st; i++) {
        label[i] = rs->v[i].label;
        if (label[i] != 0 && label[i] != 1)
            st = pl_error(PL_ERR_INVALID, "audit: record %zu (id '%s') has label %d; the audit needs 0/1 labels", i + 1,
                          rs->v[i].id, label[i]);
    }
    if (!st) st = pl_kfold_assign(label, n, o->k, o->seed, res->fold);
    for (int f = 0; f < o->k && !st; f++) {
        size_t ntr = 0, nte = 0;
        for (size_t i = 0; i < n; i++) {
            if (res->fold[i] == f) te[nte++] = i;
            else tr[ntr++] = i;
        }
        st = fit(user, rs, tr, ntr, te, nte, f, pbuf);
        if (!st) st = check_probs(rs, te, nte, pbuf, f);
        for (size_t j = 0; j < nte && !st; j++) res->p_oof[te[j]] = pbuf[j];
    }
    if (!st) st = pl_audit_confident(label, res->p_oof, n, o->naive_threshold, &res->cl);
    if (!st && o->circular) {
        res->p_circ = malloc(n * sizeof *res->p_circ);
        res->flag_naive_circ = calloc(n, 1);
        if (!res->p_circ || !res->flag_naive_circ) st = pl_error(PL_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) tr[i] = i;
        if (!st) st = fit(user, rs, tr, n, tr, n, -1, res->p_circ);
        if (!st) st = check_probs(rs, tr, n, res->p_circ, -1);
        for (size_t i = 0; i < n && !st; i++) {
            double other = label[i] ? 1.0 - res->p_circ[i] : res->p_circ[i];
            if (other > o->naive_threshold) res->flag_naive_circ[i] = 1, res->n_naive_circ++;
        }
    }
    if (!st && truth) {
        res->truth = malloc(n);
        if (!res->truth) st = pl_error(PL_ERR_NOMEM, "out of memory");
        else {
            memcpy(res->truth, truth, n);
            res->have_truth = 1;
            for (size_t i = 0; i < n; i++) res->n_true += truth[i] ? 1 : 0;
            res->prf[0] = prf_of(res->cl.flag_prune, truth, n, res->n_true);
            res->prf[1] = prf_of(res->cl.flag_cj, truth, n, res->n_true);
            res->prf[2] = prf_of(res->cl.flag_naive, truth, n, res->n_true);
            if (res->flag_naive_circ) res->prf[3] = prf_of(res->flag_naive_circ, truth, n, res->n_true);
        }
    }
    free(label);
    free(tr);
    free(te);
    free(pbuf);
    if (st) pl_audit_run_result_free(res);
    return st;
}

/* ---- outputs --------------------------------------------------------------- */

static const uint8_t *rule_flags(const pl_audit_run_result *res, int rule) {
    switch (rule) {
    case 0: return res->cl.flag_prune;
    case 1: return res->cl.flag_cj;
    case 2: return res->cl.flag_naive;
    default: return res->flag_naive_circ;
    }
}

cJSON *pl_audit_run_to_json(const pl_records *rs, const pl_audit_run_result *res) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddNumberToObject(j, "n", (double)res->n);
    cJSON_AddNumberToObject(j, "k", res->k);
    cJSON_AddNumberToObject(j, "naive_threshold", res->naive_threshold);
    cJSON *thr = cJSON_AddObjectToObject(j, "thresholds");
    cJSON_AddNumberToObject(thr, "legitimate", res->cl.thr[0]);
    cJSON_AddNumberToObject(thr, "phishing", res->cl.thr[1]);
    cJSON *cj = cJSON_AddArrayToObject(j, "confident_joint");
    cJSON *cc = cJSON_AddArrayToObject(j, "confident_joint_calibrated");
    for (int i = 0; i < 2; i++) {
        cJSON *row = cJSON_CreateArray(), *rowc = cJSON_CreateArray();
        for (int k = 0; k < 2; k++) {
            cJSON_AddItemToArray(row, cJSON_CreateNumber((double)res->cl.cj[i][k]));
            cJSON_AddItemToArray(rowc, cJSON_CreateNumber(res->cl.cj_cal[i][k]));
        }
        cJSON_AddItemToArray(cj, row);
        cJSON_AddItemToArray(cc, rowc);
    }
    cJSON_AddNumberToObject(j, "noise_rate", res->cl.noise_rate);
    cJSON *counts = cJSON_AddObjectToObject(j, "counts");
    size_t cnt[PL_AUDIT_N_RULES] = {res->cl.n_prune, res->cl.n_cj, res->cl.n_naive, res->n_naive_circ};
    for (int r = 0; r < PL_AUDIT_N_RULES; r++) {
        if (r == 3 && !res->flag_naive_circ) cJSON_AddNullToObject(counts, pl_audit_rule_name(r));
        else cJSON_AddNumberToObject(counts, pl_audit_rule_name(r), (double)cnt[r]);
    }
    if (res->have_truth) {
        cJSON *t = cJSON_AddObjectToObject(j, "truth");
        cJSON_AddNumberToObject(t, "n_flipped", (double)res->n_true);
        cJSON_AddNumberToObject(t, "flip_rate", (double)res->n_true / (double)res->n);
        for (int r = 0; r < PL_AUDIT_N_RULES; r++) {
            if (r == 3 && !res->flag_naive_circ) continue;
            cJSON *x = cJSON_AddObjectToObject(t, pl_audit_rule_name(r));
            cJSON_AddNumberToObject(x, "flagged", (double)res->prf[r].flagged);
            cJSON_AddNumberToObject(x, "true_positives", (double)res->prf[r].true_pos);
            cJSON_AddItemToObject(x, "precision", pl_json_num_or_null(res->prf[r].precision));
            cJSON_AddItemToObject(x, "recall", pl_json_num_or_null(res->prf[r].recall));
        }
    }
    cJSON *fl = cJSON_AddObjectToObject(j, "flagged");
    for (int r = 0; r < PL_AUDIT_N_RULES; r++) {
        const uint8_t *f = rule_flags(res, r);
        if (!f) continue;
        cJSON *a = cJSON_AddArrayToObject(fl, pl_audit_rule_name(r));
        for (size_t i = 0; i < res->n; i++)
            if (f[i]) cJSON_AddItemToArray(a, cJSON_CreateString(rs->v[i].id));
    }
    return j;
}

pl_status pl_audit_write_oof(const char *path, const pl_records *rs, const pl_audit_run_result *res) {
    pl_buf b = {0};
    pl_status st = PL_OK;
    for (size_t i = 0; i < res->n && !st; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o) { st = pl_error(PL_ERR_NOMEM, "out of memory"); break; }
        cJSON_AddStringToObject(o, "id", rs->v[i].id);
        cJSON_AddStringToObject(o, "source", rs->v[i].source);
        cJSON_AddNumberToObject(o, "label", rs->v[i].label);
        cJSON_AddNumberToObject(o, "fold", res->fold[i]);
        cJSON_AddNumberToObject(o, "p_phish", res->p_oof[i]);
        if (res->p_circ) cJSON_AddNumberToObject(o, "p_circular", res->p_circ[i]);
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!s) { st = pl_error(PL_ERR_NOMEM, "out of memory"); break; }
        st = pl_buf_printf(&b, "%s\n", s);
        free(s);
    }
    if (!st) st = pl_write_file_atomic(path, b.data, b.len);
    pl_buf_free(&b);
    return st;
}

/* ---- the model learner ------------------------------------------------------- */

pl_status pl_audit_model_fit(void *user, const pl_records *rs, const size_t *train, size_t n_train,
                             const size_t *test, size_t n_test, int tag, double *p_out) {
    const pl_audit_model *am = user;
    pl_model *m = NULL, *ms = NULL;
    pl_tokenizer *tok = NULL;
    pl_trainer *t = NULL;
    pl_classifier *cl = NULL;
    pl_prompt pr;
    memset(&pr, 0, sizeof pr);
    pl_prompt_spec spec = pl_prompt_spec_default();
    pl_tokens *ids = calloc(n_train ? n_train : 1, sizeof *ids);
    pl_tokens *em = calloc(n_test ? n_test : 1, sizeof *em);
    pl_tr_example *ex = calloc(n_train ? n_train : 1, sizeof *ex);
    const int32_t **ep = calloc(n_test ? n_test : 1, sizeof *ep);
    size_t *el = calloc(n_test ? n_test : 1, sizeof *el);
    double *sc = calloc(n_test ? n_test : 1, sizeof *sc);
    float *w = NULL;
    char dir[4096], path[4200];
    if (tag < 0) snprintf(dir, sizeof dir, "%s/all", am->work_dir);
    else snprintf(dir, sizeof dir, "%s/fold-%d", am->work_dir, tag);
    pl_status st = PL_OK;
    if (!ids || !em || !ex || !ep || !el || !sc) st = pl_error(PL_ERR_NOMEM, "out of memory");
    if (!st) st = pl_model_load(am->model, NULL, &m);
    if (!st) st = pl_tokenizer_load(am->model, &tok);
    if (!st) st = pl_prompt_init(&pr, tok, &spec);
    if (!st) {
        long room = (long)am->max_len - (long)pr.prefix.n - (long)pr.suffix.n;
        if (room < 1)
            st = pl_error(PL_ERR_RANGE, "audit: --max-len %d leaves no room for the email (the prompt alone has %zu tokens)",
                          am->max_len, pr.prefix.n + pr.suffix.n);
        else pr.max_email_tokens = (int)room;
    }
    pl_tr_config tc = am->tc;
    tc.label_tokens[0] = pr.label_neg_id;
    tc.label_tokens[1] = pr.label_pos_id;
    if (!st && tc.objective == PL_OBJ_LM)
        st = pl_error(PL_ERR_UNSUPPORTED, "audit: the lm objective gives no classifier score; use label or head");
    for (size_t j = 0; j < n_train && !st; j++) {
        const pl_record *r = &rs->v[train[j]];
        pl_tokens e = {0};
        st = pl_prompt_email_ids(&pr, tok, r, &e, NULL);
        if (!st) st = pl_prompt_full(&pr, e.ids, e.n, &ids[j]);
        pl_tokens_free(&e);
        ex[j].tokens = ids[j].ids;
        ex[j].n_tokens = (int)ids[j].n;
        ex[j].label = r->label;
    }
    for (size_t j = 0; j < n_test && !st; j++) {
        st = pl_prompt_email_ids(&pr, tok, &rs->v[test[j]], &em[j], NULL);
        ep[j] = em[j].ids;
        el[j] = em[j].n;
    }
    if (!st) st = pl_mkdirs(dir);
    if (!st) st = pl_trainer_new(m, &tc, &t);
    pl_loop_opts lo = am->lo;
    lo.run_dir = dir;
    lo.base_model = am->model;
    lo.quiet = am->quiet;
    lo.resume = 0;
    pl_tr_dataset ds = {ex, n_train};
    pl_loop_result lr;
    if (!st) st = pl_train_loop(t, &ds, NULL, &lo, &lr);
    if (!st && !am->quiet)
        fprintf(stderr, "audit: %s: %lld steps on %zu records, last loss %.4f\n", tag < 0 ? "all" : dir + strlen(am->work_dir) + 1,
                (long long)lr.steps, n_train, lr.last_loss);
    if (!st && tc.full) {
        /* full fine-tuning: the trainer's own forward over the whole prompt */
        for (size_t j = 0; j < n_test && !st; j++) {
            pl_tokens full = {0};
            pl_real s2[2];
            st = pl_prompt_full(&pr, em[j].ids, em[j].n, &full);
            if (!st) st = pl_trainer_scores(t, full.ids, (int)full.n, s2);
            if (!st) sc[j] = (double)(s2[1] - s2[0]);
            pl_tokens_free(&full);
        }
    } else if (!st) {
        /* a fresh copy of the base with this fit's adapter, scored by the classifier */
        st = pl_model_load(am->model, NULL, &ms);
        if (!st && tc.lora_rank > 0) {
            snprintf(path, sizeof path, "%s/adapter.gguf", dir);
            st = pl_model_add_lora(ms, path, 1.0f);
        }
        if (!st) st = pl_classifier_new(ms, &pr, 0, &cl);
        if (!st && tc.objective == PL_OBJ_HEAD) {
            int nt = 0;
            const pl_tr_tensor *tt = pl_trainer_tensors(t, &nt);
            const pl_tr_tensor *head = NULL;
            for (int q = 0; q < nt; q++)
                if (tt[q].target == -1) head = &tt[q];
            size_t np = 0;
            const pl_real *par = pl_trainer_params(t, &np);
            if (!head || head->rows != 2) st = pl_error(PL_ERR_INVALID, "audit: the trainer has no two-class head");
            else if (!(w = malloc((size_t)head->cols * sizeof *w))) st = pl_error(PL_ERR_NOMEM, "out of memory");
            for (int64_t c = 0; !st && c < head->cols; c++)
                w[c] = (float)(par[head->offset + (size_t)head->cols + (size_t)c] - par[head->offset + (size_t)c]);
            if (!st) st = pl_classifier_set_head(cl, w, 0.0f);
        }
        if (!st) st = pl_classifier_score(cl, ep, el, n_test, sc);
    }
    for (size_t j = 0; j < n_test && !st; j++) {
        if (!isfinite(sc[j]))
            st = pl_error(PL_ERR_NUMERIC, "audit: non-finite score for record '%s'", rs->v[test[j]].id);
        else p_out[j] = pl_sigmoid(sc[j]);
    }
    free(w);
    pl_classifier_free(cl);
    pl_trainer_free(t);
    for (size_t j = 0; ids && j < n_train; j++) pl_tokens_free(&ids[j]);
    for (size_t j = 0; em && j < n_test; j++) pl_tokens_free(&em[j]);
    free(ids);
    free(em);
    free(ex);
    free(ep);
    free(el);
    free(sc);
    pl_prompt_free(&pr);
    pl_tokenizer_free(tok);
    pl_model_free(ms);
    pl_model_free(m);
    return st;
}
