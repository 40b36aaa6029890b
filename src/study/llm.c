/* llm.c — zero-shot LLM stages of a study: scoring test emails with a base
 * model (eval) and the probe depth curve on its residual stream (interp).
 *
 * Classifier view (ARCHITECTURE.md): the prompt
 *     "Email subject: <subject>\n\n<body>\n\nQuestion: is this email phishing
 *      or legitimate?\nAnswer:"
 * ends at the answer position; score = logit(first token of " phishing") -
 * logit(first token of " legitimate") there, p = sigmoid(score). The email
 * part is cut to fit hyperparameters.max_tokens. No chat template is applied
 * (the same plain prompt for every family), which keeps zero-shot scores
 * comparable across architectures but is not what an instruct model saw in
 * training.
 *
 * Probe curve: for a seeded sample of test emails (interp.probe_examples),
 * blocks.L.hook_resid_post at the answer position for every layer L, then
 * interp's L2 logistic probe with stratified k-fold CV per layer
 * (pl_probe_cv). The probe layer is the first layer whose CV accuracy is
 * within 0.01 of the best layer's.
 *
 * SHAP (explain stage): features are the words of the email part (a token
 * whose text starts with whitespace starts a word); v(S) is the score of the
 * prompt with the tokens of absent words deleted (the mask never goes
 * through a string); template tokens are never masked.
 *
 * Not here: fine-tuning (train module), logit lens, patching, DLA and
 * ablation (they need more model plumbing than the residual capture).
 */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "interp/interp.h"
#include "model/model.h"
#include "study/study_internal.h"
#include "tokenizer/tokenizer.h"

static const char *const PROMPT_Q = "\n\nQuestion: is this email phishing or legitimate?\nAnswer:";

typedef struct {
    pl_model *m;
    pl_tokenizer *tok;
    pl_runner *r;
    int32_t id_pos, id_neg;
    int max_tokens;
    float *logits;          /* [n_vocab] */
    float *resid;           /* [n_layer x d] answer-position residuals (capture) */
    int capture;
} llm;

static void llm_close(llm *l) {
    pl_runner_free(l->r);
    pl_tokenizer_free(l->tok);
    pl_model_free(l->m);
    free(l->logits);
    free(l->resid);
    memset(l, 0, sizeof *l);
}

static pl_status first_id(const pl_tokenizer *t, const char *word, int32_t *id) {
    pl_tokens ids = {0};
    char buf[64];
    /* an SPM tokenizer that adds a space prefix gets the bare word */
    snprintf(buf, sizeof buf, "%s%s", pl_tokenizer_add_space_prefix(t) ? "" : " ", word);
    pl_status st = pl_tokenizer_encode(t, buf, strlen(buf), 0, &ids);
    if (!st && ids.n == 0) st = pl_error(PL_ERR_INVALID, "label word '%s' encodes to no token", word);
    if (!st) *id = ids.ids[0];
    pl_tokens_free(&ids);
    return st;
}

static pl_status llm_open(const pl_study_model *sm, int max_tokens, llm *l) {
    memset(l, 0, sizeof *l);
    pl_status st = pl_model_load(sm->path, NULL, &l->m);
    if (!st) st = pl_tokenizer_load(sm->path, &l->tok);
    if (!st) st = first_id(l->tok, "phishing", &l->id_pos);
    if (!st) st = first_id(l->tok, "legitimate", &l->id_neg);
    if (!st && l->id_pos == l->id_neg)
        st = pl_error(PL_ERR_UNSUPPORTED, "%s: ' phishing' and ' legitimate' start with the same token", sm->path);
    const pl_arch_desc *d = st ? NULL : pl_model_desc(l->m);
    if (d) {
        l->max_tokens = max_tokens < d->n_ctx_train || d->n_ctx_train <= 0 ? max_tokens : d->n_ctx_train;
        st = pl_runner_new(l->m, l->max_tokens, l->max_tokens, &l->r);
        l->logits = malloc((size_t)d->n_vocab * sizeof *l->logits);
        l->resid = calloc((size_t)d->n_layer * (size_t)d->n_embd, sizeof *l->resid);
        if (!st && (!l->logits || !l->resid)) st = pl_error(PL_ERR_NOMEM, "out of memory");
    }
    if (st) {
        st = pl_error_wrap(st, "model %s", sm->name);
        llm_close(l);
    }
    return st;
}

/* Keep the answer-position row of every layer's resid_post. */
static void capture_hook(const pl_hook_info *info, float *data, void *user) {
    llm *l = user;
    const pl_arch_desc *d = pl_model_desc(l->m);
    if (info->layer < 0 || info->layer >= d->n_layer || info->shape[0] < 1) return;
    int64_t last = info->shape[0] - 1, w = info->shape[1];
    memcpy(l->resid + (size_t)info->layer * (size_t)d->n_embd, data + last * w, (size_t)d->n_embd * sizeof(float));
}

/* The prompt's three parts for one record: head ("Email subject: " with
 * BOS), the email (cut so the whole fits max_tokens) and the question. */
static pl_status prompt_parts(const llm *l, const pl_record *r, pl_tokens *head, pl_tokens *email, pl_tokens *tail) {
    pl_status st = pl_tokenizer_encode(l->tok, "Email subject: ", 15, PL_TOK_ADD_SPECIAL, head);
    /* ADD_SPECIAL may append an EOS for models that ask for it: drop it */
    if (!st && head->n && pl_tokenizer_eos(l->tok) >= 0 && head->ids[head->n - 1] == pl_tokenizer_eos(l->tok)) head->n--;
    char *text = NULL;
    if (!st) {
        size_t a = strlen(r->subject), b = strlen(r->body);
        text = malloc(a + b + 3);
        if (!text) st = pl_error(PL_ERR_NOMEM, "out of memory");
        else snprintf(text, a + b + 3, "%s\n\n%s", r->subject, r->body);
    }
    if (!st) st = pl_tokenizer_encode(l->tok, text, strlen(text), 0, email);
    if (!st) st = pl_tokenizer_encode(l->tok, PROMPT_Q, strlen(PROMPT_Q), 0, tail);
    free(text);
    size_t fixed = head->n + tail->n;
    if (!st && fixed + 1 > (size_t)l->max_tokens)
        st = pl_error(PL_ERR_INVALID, "hyperparameters.max_tokens %d is too small for the prompt (%zu tokens)", l->max_tokens,
                      fixed + 1);
    if (!st && email->n > (size_t)l->max_tokens - fixed) email->n = (size_t)l->max_tokens - fixed;
    return st;
}

/* The prompt's ids for one record, cut to max_tokens. */
static pl_status prompt_ids(const llm *l, const pl_record *r, pl_tokens *out) {
    pl_tokens head = {0}, email = {0}, tail = {0};
    pl_status st = prompt_parts(l, r, &head, &email, &tail);
    for (size_t i = 0; i < head.n && !st; i++) st = pl_tokens_push(out, head.ids[i]);
    for (size_t i = 0; i < email.n && !st; i++) st = pl_tokens_push(out, email.ids[i]);
    for (size_t i = 0; i < tail.n && !st; i++) st = pl_tokens_push(out, tail.ids[i]);
    pl_tokens_free(&head);
    pl_tokens_free(&email);
    pl_tokens_free(&tail);
    return st;
}

/* Score of an id sequence. */
static pl_status score_ids(llm *l, const int32_t *ids, size_t n, double *score) {
    pl_kv *kv = NULL;
    pl_status st = pl_kv_new(l->m, (int)n, NULL, &kv);
    if (!st) {
        pl_seq s = {kv, ids, (int)n};
        st = pl_forward(l->r, &s, 1, PL_LOGITS_LAST, l->logits);
    }
    if (!st) *score = (double)l->logits[l->id_pos] - (double)l->logits[l->id_neg];
    if (!st && !isfinite(*score)) st = pl_error(PL_ERR_NUMERIC, "non-finite classifier score");
    pl_kv_free(kv);
    return st;
}

static pl_status llm_score(llm *l, const pl_record *r, double *score) {
    pl_tokens ids = {0};
    pl_status st = prompt_ids(l, r, &ids);
    if (!st) st = score_ids(l, ids.ids, ids.n, score);
    if (st) st = pl_error_wrap(st, "email %s", r->id);
    pl_tokens_free(&ids);
    return st;
}

static double sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

pl_status pl_study_llm_eval(pl_study_plan *pl, pl_study_task *t, const char *dir) {
    const pl_study_config *c = pl->cfg;
    const pl_study_training *tr = &pl->trainings[t->training];
    const pl_study_model *sm = &c->models[tr->model];
    llm l;
    pl_status st = llm_open(sm, c->hyper.max_tokens, &l);
    if (st) return st;
    pl_records rs = {0};
    st = pl_study_read_parts(pl, c->corpora[t->test].name, "test", &rs);
    pl_preds ps = {0};
    for (size_t i = 0; i < rs.n && !st; i++) {
        double s = 0;
        st = llm_score(&l, &rs.v[i], &s);
        pl_pred p = {0};
        p.id = rs.v[i].id;
        p.source = rs.v[i].source;
        p.label = rs.v[i].label;
        p.score = s;
        p.p_phish = sigmoid(s);
        p.pred = p.p_phish >= 0.5;
        p.has_url = rs.v[i].n_urls > 0;
        p.html = p.link_mismatch = -1;
        p.length = (int64_t)strlen(rs.v[i].body);
        if (!st) st = pl_preds_push(&ps, &p);
    }
    char *path = NULL;
    if (!st) {
        path = pl_study_path(dir, "predictions.jsonl");
        st = path ? pl_preds_write_jsonl(path, &ps) : pl_error(PL_ERR_NOMEM, "out of memory");
        free(path);
    }
    if (!st) {
        pl_run_info ri;
        pl_run_info_init(&ri);
        ri.model = pl_study_strdup(sm->name);
        ri.train_set = pl_study_strdup(tr->name);
        ri.adapter = pl_study_strdup("");
        ri.extra = cJSON_CreateObject();
        if (!ri.model || !ri.train_set || !ri.adapter || !ri.extra) st = pl_error(PL_ERR_NOMEM, "out of memory");
        if (!st) {
            cJSON_AddStringToObject(ri.extra, "family", pl_study_family_name(sm->family));
            cJSON_AddStringToObject(ri.extra, "paradigm", c->paradigms[tr->paradigm].spec);
            cJSON_AddStringToObject(ri.extra, "test_corpus", c->corpora[t->test].name);
            cJSON_AddStringToObject(ri.extra, "prompt", "plain (docs/study.md)");
            path = pl_study_path(dir, "run.json");
            st = path ? pl_run_info_write(path, &ri) : pl_error(PL_ERR_NOMEM, "out of memory");
            free(path);
        }
        pl_run_info_free(&ri);
    }
    if (st) st = pl_error_wrap(st, "%s", t->name);
    pl_preds_free(&ps);
    pl_records_free(&rs);
    llm_close(&l);
    return st;
}

pl_status pl_study_llm_interp(pl_study_plan *pl, pl_study_task *t, const char *dir) {
    const pl_study_config *c = pl->cfg;
    const pl_study_training *tr = &pl->trainings[t->training];
    const pl_study_model *sm = &c->models[tr->model];
    pl_records rs = {0};
    pl_status st = PL_OK;
    for (size_t k = 0; k < c->n_test && !st; k++) st = pl_study_read_parts(pl, c->test[k], "test", &rs);
    size_t n = rs.n < c->interp_probe_examples ? rs.n : c->interp_probe_examples;
    size_t *order = malloc((rs.n ? rs.n : 1) * sizeof *order);
    if (!st && !order) st = pl_error(PL_ERR_NOMEM, "out of memory");
    if (!st) {
        for (size_t i = 0; i < rs.n; i++) order[i] = i;
        pl_rng rng;
        pl_rng_seed(&rng, c->seed ^ 0x1e7e5u);
        pl_rng_shuffle(&rng, order, rs.n, sizeof *order);
    }
    llm l;
    memset(&l, 0, sizeof l);
    if (!st) st = llm_open(sm, c->hyper.max_tokens, &l);
    const pl_arch_desc *d = st ? NULL : pl_model_desc(l.m);
    size_t L = d ? (size_t)d->n_layer : 0, D = d ? (size_t)d->n_embd : 0;
    float *X = NULL; /* [L][n][D] */
    int *y = malloc((n ? n : 1) * sizeof *y);
    if (!st) {
        X = malloc((L * n * D > 0 ? L * n * D : 1) * sizeof *X);
        if (!X || !y) st = pl_error(PL_ERR_NOMEM, "out of memory");
    }
    if (!st) st = pl_runner_set_hook(l.r, PL_HOOK_RESID_POST, -1, capture_hook, &l);
    size_t n_pos = 0;
    for (size_t k = 0; k < n && !st; k++) {
        const pl_record *r = &rs.v[order[k]];
        double s;
        st = llm_score(&l, r, &s);
        for (size_t layer = 0; layer < L && !st; layer++)
            memcpy(X + (layer * n + k) * D, l.resid + layer * D, D * sizeof *X);
        y[k] = r->label;
        n_pos += r->label == 1;
    }
    if (!st && (n_pos < 5 || n - n_pos < 5))
        st = pl_error(PL_ERR_INVALID, "probe needs at least 5 emails of each label among %zu sampled", n);
    cJSON *out = NULL, *acc = NULL, *auc = NULL, *layers = NULL;
    if (!st) {
        out = cJSON_CreateObject();
        layers = cJSON_AddArrayToObject(out, "layers");
        acc = cJSON_AddArrayToObject(out, "cv_accuracy");
        auc = cJSON_AddArrayToObject(out, "cv_auc");
        if (!out || !layers || !acc || !auc) st = pl_error(PL_ERR_NOMEM, "out of memory");
    }
    double best = -1;
    double *accs = calloc(L ? L : 1, sizeof *accs);
    if (!st && !accs) st = pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t layer = 0; layer < L && !st; layer++) {
        pl_probe_opts po = pl_probe_defaults();
        po.seed = c->seed;
        pl_probe_result pr;
        st = pl_probe_cv(X + layer * n * D, n, D, y, 2, &po, &pr);
        if (st) break;
        accs[layer] = pr.cv_accuracy;
        if (pr.cv_accuracy > best) best = pr.cv_accuracy;
        cJSON_AddItemToArray(layers, cJSON_CreateNumber((double)layer));
        cJSON_AddItemToArray(acc, pl_json_num_or_null(pr.cv_accuracy));
        cJSON_AddItemToArray(auc, pl_json_num_or_null(pr.cv_auc));
        pl_probe_result_free(&pr);
    }
    if (!st) {
        long probe_layer = -1;
        for (size_t layer = 0; layer < L && probe_layer < 0; layer++)
            if (accs[layer] >= best - 0.01) probe_layer = (long)layer;
        cJSON_AddStringToObject(out, "hook", "hook_resid_post");
        cJSON_AddStringToObject(out, "position", "answer");
        cJSON_AddNumberToObject(out, "n", (double)n);
        cJSON_AddNumberToObject(out, "n_phish", (double)n_pos);
        cJSON_AddNumberToObject(out, "majority_baseline", (double)(n_pos > n - n_pos ? n_pos : n - n_pos) / (double)n);
        cJSON_AddNumberToObject(out, "probe_layer", (double)probe_layer);
        cJSON_AddNumberToObject(out, "best_cv_accuracy", best);
        cJSON_AddStringToObject(out, "model", sm->name);
        cJSON_AddStringToObject(out, "training", tr->name);
        cJSON_AddStringToObject(out, "family", pl_study_family_name(sm->family));
        char *path = pl_study_path(dir, "interp.json");
        st = path ? pl_json_write_atomic(path, out) : pl_error(PL_ERR_NOMEM, "out of memory");
        free(path);
    }
    if (st) st = pl_error_wrap(st, "%s", t->name);
    cJSON_Delete(out);
    free(accs);
    free(X);
    free(y);
    free(order);
    if (l.m) llm_close(&l);
    pl_records_free(&rs);
    return st;
}

/* ---- SHAP over the LLM (explain stage) ------------------------------------------ */

#define LLM_X_MAX_WORDS 400 /* words beyond this stay present */

struct pl_study_llm_x {
    llm l;
};

pl_status pl_study_llm_x_open(const pl_study_model *m, int max_tokens, pl_study_llm_x **out) {
    pl_study_llm_x *x = calloc(1, sizeof *x);
    if (!x) return pl_error(PL_ERR_NOMEM, "out of memory");
    pl_status st = llm_open(m, max_tokens, &x->l);
    if (st) {
        free(x);
        return st;
    }
    *out = x;
    return PL_OK;
}

void pl_study_llm_x_close(pl_study_llm_x *x) {
    if (!x) return;
    llm_close(&x->l);
    free(x);
}

/* v(S): the score of the prompt with the email tokens of absent words
 * deleted (tokens outside every word, and the prompt template, stay). */
typedef struct {
    llm *l;
    const pl_tokens *head, *email, *tail;
    const int32_t *fmap; /* [email->n] word of each token, or -1 */
    pl_tokens buf;
} llm_game;

static pl_status llm_value(void *ctx, const uint8_t *masks, size_t n_masks, size_t n_features, double *out) {
    llm_game *g = ctx;
    pl_status st = PL_OK;
    for (size_t i = 0; i < n_masks && !st; i++) {
        const uint8_t *mk = masks + i * n_features;
        g->buf.n = 0;
        for (size_t k = 0; k < g->head->n && !st; k++) st = pl_tokens_push(&g->buf, g->head->ids[k]);
        for (size_t k = 0; k < g->email->n && !st; k++)
            if (g->fmap[k] < 0 || mk[g->fmap[k]]) st = pl_tokens_push(&g->buf, g->email->ids[k]);
        for (size_t k = 0; k < g->tail->n && !st; k++) st = pl_tokens_push(&g->buf, g->tail->ids[k]);
        if (!st) st = score_ids(g->l, g->buf.ids, g->buf.n, &out[i]);
    }
    return st;
}

pl_status pl_study_llm_explain_one(void *ctx, const pl_record *r, pl_xmethod method, size_t max_evals, uint64_t seed,
                                   pl_study_xone *o) {
    pl_study_llm_x *x = ctx;
    llm *l = &x->l;
    pl_tokens head = {0}, email = {0}, tail = {0};
    pl_buf piece = {0};
    int32_t *fmap = NULL;
    size_t *first = NULL; /* first token of each word, [M + 1] */
    pl_status st = prompt_parts(l, r, &head, &email, &tail);
    if (!st) {
        fmap = malloc((email.n ? email.n : 1) * sizeof *fmap);
        first = malloc((email.n + 1) * sizeof *first);
        if (!fmap || !first) st = pl_error(PL_ERR_NOMEM, "out of memory");
    }
    /* words: a token whose text starts with whitespace starts a new word */
    size_t M = 0;
    for (size_t k = 0; k < email.n && !st; k++) {
        piece.len = 0;
        st = pl_tokenizer_decode(l->tok, &email.ids[k], 1, PL_TOK_KEEP_PREFIX, &piece);
        int starts = k == 0 || (piece.len > 0 && (piece.data[0] == ' ' || piece.data[0] == '\n' || piece.data[0] == '\t'));
        if (starts) {
            if (M < LLM_X_MAX_WORDS) first[M] = k;
            M++;
        }
        fmap[k] = M - 1 < LLM_X_MAX_WORDS ? (int32_t)(M - 1) : -1;
    }
    if (M > LLM_X_MAX_WORDS) M = LLM_X_MAX_WORDS;
    pl_xtree tree;
    memset(&tree, 0, sizeof tree);
    if (!st && M > 0) {
        first[M] = email.n;
        for (size_t k = 0; k < email.n; k++)
            if (fmap[k] < 0 && k < first[M]) first[M] = k;
        llm_game g = {l, &head, &email, &tail, fmap, {0}};
        pl_xopts xo;
        pl_xopts_init(&xo, method);
        xo.max_evals = max_evals;
        xo.seed = seed;
        if (method == PL_XM_EXACT && M > 20) xo.method = PL_XM_PARTITION;
        if (xo.method == PL_XM_PARTITION) {
            st = pl_xtree_balanced(M, &tree);
            xo.tree = &tree;
        }
        if (!st) st = pl_explain_run(llm_value, &g, M, &xo, &o->res);
        pl_tokens_free(&g.buf);
    }
    if (!st && M > 0) {
        o->M = M;
        o->add_err = -1; /* no exact reference for an LLM */
        o->keys = calloc(M, sizeof *o->keys);
        o->pieces = cJSON_CreateArray();
        o->vals = cJSON_CreateArray();
        if (!o->keys || !o->pieces || !o->vals) st = pl_error(PL_ERR_NOMEM, "out of memory");
        for (size_t w = 0; w < M && !st; w++) {
            size_t end = w + 1 < M ? first[w + 1] : first[M];
            piece.len = 0;
            st = pl_tokenizer_decode(l->tok, &email.ids[first[w]], end - first[w], PL_TOK_KEEP_PREFIX, &piece);
            if (!st) st = pl_buf_append(&piece, "", 1);
            /* a word of only whitespace (line breaks) gets a visible key */
            int blank = 1;
            for (size_t q = 0; !st && piece.data[q]; q++) blank &= piece.data[q] == ' ' || piece.data[q] == '\n' || piece.data[q] == '\t' || piece.data[q] == '\r';
            const char *key = blank ? "\xe2\x8f\x8e" : piece.data; /* U+23CE return symbol */
            if (!st && !(o->keys[w] = pl_study_strdup(key))) st = pl_error(PL_ERR_NOMEM, "out of memory");
            if (!st) {
                cJSON_AddItemToArray(o->pieces, cJSON_CreateString(piece.data));
                cJSON_AddItemToArray(o->vals, cJSON_CreateNumber(o->res.phi[w]));
            }
        }
    }
    if (st) {
        st = pl_error_wrap(st, "explaining email %s", r->id);
        pl_study_xone_free(o);
    }
    pl_xtree_free(&tree);
    pl_buf_free(&piece);
    free(fmap);
    free(first);
    pl_tokens_free(&head);
    pl_tokens_free(&email);
    pl_tokens_free(&tail);
    return st;
}
