/* llm.c — the LLM stages of a study on the classifier view of src/prompt:
 * scoring test emails (eval), SHAP over their words (explain) and LoRA
 * fine-tuning (train).
 *
 * Classifier view (src/prompt/prompt.h, ARCHITECTURE.md): one prompt layout
 * (the family's chat template when the vocabulary has one, else a plain
 * completion layout) ending at the answer position; score = logit(first
 * token of "phishing") - logit(first token of "legitimate"), p =
 * sigmoid(score) — the same scalar the train module optimizes. The email part
 * is cut to hyperparameters.max_tokens (and to what fits the model's training
 * context). A fine-tuned training attaches its LoRA adapter (adapter.gguf of
 * the train task) before scoring.
 *
 * SHAP: the features are the words of the email part (a token whose decoded
 * text starts with whitespace starts a word; words after the 400th stay
 * present); v(S) scores the email with the tokens of absent words deleted,
 * on ids (never through a string), batched through pl_classifier_score with
 * the shared prefix's KV cache.
 *
 * Chain-of-thought trainings (paradigm chain-of-thought): LoRA with the LM
 * objective on prompt + meta.rationale + line break + label word + EOS
 * (pl_prompt_answer_ids), and eval through the CoT scorer of src/eval
 * (pl_cot: greedy rationale, then the same two label tokens at the label
 * position); predictions keep the generated rationale.
 *
 * Not here: the interp stage (llm_interp.c).
 */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "interp/interp.h"
#include "model/model.h"
#include "prompt/prompt.h"
#include "train/train.h"
#include "study/study_internal.h"
#include "tokenizer/tokenizer.h"
#include "study/llm_internal.h"

typedef pl_study_llm llm;
#define llm_open pl_study_llm_open
#define llm_close pl_study_llm_close
#define llm_score_records pl_study_llm_score
#define adapter_of pl_study_llm_adapter

void pl_study_llm_close(llm *l) {
    pl_classifier_free(l->cls);
    if (l->have_pr) pl_prompt_free(&l->pr);
    pl_tokenizer_free(l->tok);
    pl_model_free(l->m);
    memset(l, 0, sizeof *l);
}

/* Load the model (+ adapter when not NULL), its tokenizer, the prompt and
 * the scorer. */
pl_status pl_study_llm_open(const pl_study_model *sm, int max_tokens, const char *adapter, llm *l) {
    return pl_study_llm_open_ex(sm, max_tokens, 0, adapter, l);
}

pl_status pl_study_llm_open_ex(const pl_study_model *sm, int max_tokens, int reserve, const char *adapter, llm *l) {
    memset(l, 0, sizeof *l);
    pl_model_opts mo = pl_model_opts_default();
    mo.bf16_tiles = sm->bf16;
    pl_status st = pl_model_load(sm->path, &mo, &l->m);
    if (!st && adapter) st = pl_model_add_lora(l->m, adapter, 1.0f);
    if (!st) st = pl_tokenizer_load(sm->path, &l->tok);
    pl_prompt_spec spec = pl_prompt_spec_default();
    spec.max_email_tokens = max_tokens;
    if (!st) st = pl_prompt_init(&l->pr, l->tok, &spec);
    if (!st) {
        l->have_pr = 1;
        const pl_arch_desc *d = pl_model_desc(l->m);
        long room = (long)d->n_ctx_train - (long)l->pr.prefix.n - (long)l->pr.suffix.n;
        /* the reserve comes out of the email part while 8 tokens of it stay;
         * a smaller context lets the answer run past the training context */
        if (reserve > 0 && d->n_ctx_train > 0 && room - reserve >= 8) room -= reserve;
        else if (reserve > 0 && d->n_ctx_train > 0)
            pl_log(PL_LOG_WARN, "model %s: the answer (%d tokens) runs past the training context of %d", sm->name,
                   reserve, d->n_ctx_train);
        if (d->n_ctx_train > 0 && room < l->pr.max_email_tokens) {
            if (room < 8) st = pl_error(PL_ERR_UNSUPPORTED, "the prompt template leaves %ld tokens of the model's context", room);
            else l->pr.max_email_tokens = (int)room;
        }
        l->n_layer = d->n_layer;
        l->n_embd = d->n_embd;
    }
    if (!st) st = pl_classifier_new(l->m, &l->pr, 0, &l->cls);
    if (st) {
        st = pl_error_wrap(st, "model %s", sm->name);
        llm_close(l);
    }
    return st;
}

/* Scores of records (email ids through the prompt, batched). */
pl_status pl_study_llm_score(llm *l, const pl_record *const *recs, size_t n, double *scores) {
    pl_tokens *em = calloc(n ? n : 1, sizeof *em);
    const int32_t **ids = calloc(n ? n : 1, sizeof *ids);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    pl_status st = em && ids && lens ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && !st; i++) {
        st = pl_prompt_email_ids(&l->pr, l->tok, recs[i], &em[i], NULL);
        if (st) st = pl_error_wrap(st, "email %s", recs[i]->id);
        ids[i] = em[i].ids;
        lens[i] = em[i].n;
    }
    if (!st && n) st = pl_classifier_score(l->cls, ids, lens, n, scores);
    for (size_t i = 0; em && i < n; i++) pl_tokens_free(&em[i]);
    free(em);
    free(ids);
    free(lens);
    return st;
}

/* The train task's adapter for a fine-tuned training, or NULL (zero-shot). */
const char *pl_study_llm_adapter(const pl_study_plan *pl, const pl_study_task *t, char *buf, size_t n) {
    for (size_t k = 0; k < t->n_deps; k++) {
        const pl_study_task *d = &pl->tasks[t->deps[k]];
        if (d->stage != PL_STAGE_TRAIN) continue;
        snprintf(buf, n, "%s/%s/adapter.gguf", pl->out, d->dir);
        return buf;
    }
    return NULL;
}


int pl_study_is_cot(const pl_study_plan *pl, const pl_study_task *t) {
    return t->training >= 0 && pl->cfg->paradigms[pl->trainings[t->training].paradigm].kind == PL_PARA_COT;
}

/* Context a chain-of-thought answer takes after the prompt: the generated
 * rationale, its line break, the label word and EOS. */
#define COT_RESERVE (PL_COT_MAX_NEW + 16)

/* Chain-of-thought scores of records (eval.h, pl_cot) with their generated
 * rationales (rat[n], malloc'd strings). */
static pl_status llm_score_cot(llm *l, const pl_record *const *recs, size_t n, double *scores, char **rat) {
    pl_cot *cot = NULL;
    pl_status st = pl_cot_new(l->m, &l->pr, l->tok, PL_COT_MAX_NEW, 0, &cot);
    pl_tokens *em = calloc(n ? n : 1, sizeof *em);
    const int32_t **ids = calloc(n ? n : 1, sizeof *ids);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    if (!st && (!em || !ids || !lens)) st = pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && !st; i++) {
        st = pl_prompt_email_ids(&l->pr, l->tok, recs[i], &em[i], NULL);
        if (st) st = pl_error_wrap(st, "email %s", recs[i]->id);
        ids[i] = em[i].ids;
        lens[i] = em[i].n;
    }
    pl_progress bar;
    int show = !st && n > 0;
    if (show) pl_progress_begin(&bar, "cot eval", (int64_t)n, "emails");
    /* chunks of 32 emails so the bar moves: each chunk is one generation batch */
    for (size_t i = 0; i < n && !st; i += 32) {
        size_t m = n - i < 32 ? n - i : 32;
        st = pl_cot_score(cot, ids + i, lens + i, m, scores + i, NULL, rat + i);
        if (show) pl_progress_update(&bar, (int64_t)(i + m));
    }
    if (show) pl_progress_end(&bar);
    for (size_t i = 0; em && i < n; i++) pl_tokens_free(&em[i]);
    free(em);
    free(ids);
    free(lens);
    pl_cot_free(cot);
    return st;
}

pl_status pl_study_llm_eval(pl_study_plan *pl, pl_study_task *t, const char *dir) {
    const pl_study_config *c = pl->cfg;
    const pl_study_training *tr = &pl->trainings[t->training];
    const pl_study_model *sm = &c->models[tr->model];
    int cot = pl_study_is_cot(pl, t);
    char abuf[PL_STUDY_NAME_MAX * 2];
    llm l;
    pl_status st = pl_study_llm_open_ex(sm, c->hyper.max_tokens, cot ? COT_RESERVE : 0, adapter_of(pl, t, abuf, sizeof abuf), &l);
    if (st) return st;
    pl_records rs = {0};
    st = pl_study_read_parts(pl, c->corpora[t->test].name, "test", &rs);
    pl_preds ps = {0};
    const pl_record **recs = malloc((rs.n ? rs.n : 1) * sizeof *recs);
    double *sc = malloc((rs.n ? rs.n : 1) * sizeof *sc);
    char **rat = cot ? calloc(rs.n ? rs.n : 1, sizeof *rat) : NULL;
    if (!st && (!recs || !sc || (cot && !rat))) st = pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < rs.n && !st; i++) recs[i] = &rs.v[i];
    if (!st) st = cot ? llm_score_cot(&l, recs, rs.n, sc, rat) : llm_score_records(&l, recs, rs.n, sc);
    for (size_t i = 0; i < rs.n && !st; i++) {
        pl_pred p = {0};
        p.rationale = rat ? rat[i] : NULL;
        p.id = rs.v[i].id;
        p.source = rs.v[i].source;
        p.label = rs.v[i].label;
        p.score = sc[i];
        p.p_phish = pl_sigmoid(sc[i]);
        p.pred = p.p_phish >= 0.5;
        p.has_url = rs.v[i].n_urls > 0;
        p.html = p.link_mismatch = -1;
        p.length = (int64_t)strlen(rs.v[i].body);
        if (!isfinite(p.score)) st = pl_error(PL_ERR_NUMERIC, "non-finite score for email %s", rs.v[i].id);
        if (!st) st = pl_preds_push(&ps, &p);
    }
    free(recs);
    free(sc);
    for (size_t i = 0; rat && i < rs.n; i++) free(rat[i]);
    free(rat);
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
        ri.train_sources = calloc(tr->n_sources ? tr->n_sources : 1, sizeof *ri.train_sources);
        if (!ri.model || !ri.train_set || !ri.adapter || !ri.extra || !ri.train_sources)
            st = pl_error(PL_ERR_NOMEM, "out of memory");
        for (size_t k = 0; k < tr->n_sources && !st; k++) {
            if (!(ri.train_sources[k] = pl_study_strdup(tr->sources[k]))) st = pl_error(PL_ERR_NOMEM, "out of memory");
            else ri.n_train_sources = k + 1;
        }
        if (!st) {
            cJSON_AddStringToObject(ri.extra, "family", pl_study_family_name(sm->family));
            cJSON_AddStringToObject(ri.extra, "paradigm", c->paradigms[tr->paradigm].spec);
            cJSON_AddStringToObject(ri.extra, "test_corpus", c->corpora[t->test].name);
            cJSON_AddStringToObject(ri.extra, "prompt", l.pr.chat ? "chat" : "plain");
            cJSON_AddStringToObject(ri.extra, "scoring", cot ? "chain-of-thought" : "label tokens");
            if (cot) cJSON_AddNumberToObject(ri.extra, "cot_max_new", PL_COT_MAX_NEW);
            if (adapter_of(pl, t, abuf, sizeof abuf)) {
                free(ri.adapter);
                ri.adapter = pl_study_strdup(abuf);
            }
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

/* ---- SHAP over the LLM (explain stage) ------------------------------------------ */

#define LLM_X_MAX_WORDS 400 /* words beyond this stay present */

struct pl_study_llm_x {
    llm l;
};

pl_status pl_study_llm_x_open(const pl_study_model *m, int max_tokens, const char *adapter, pl_study_llm_x **out) {
    pl_study_llm_x *x = calloc(1, sizeof *x);
    if (!x) return pl_error(PL_ERR_NOMEM, "out of memory");
    pl_status st = llm_open(m, max_tokens, adapter, &x->l);
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

/* v(S): the score of the email with the tokens of absent words deleted
 * (tokens beyond the last word feature stay); one batched scorer call per
 * round of masks. */
typedef struct {
    llm *l;
    const pl_tokens *email;
    const int32_t *fmap; /* [email->n] word of each token, or -1 */
} llm_game;

static pl_status llm_value(void *ctx, const uint8_t *masks, size_t n_masks, size_t n_features, double *out) {
    llm_game *g = ctx;
    size_t ne = g->email->n;
    int32_t *buf = malloc((n_masks * ne > 0 ? n_masks * ne : 1) * sizeof *buf);
    const int32_t **ids = malloc(n_masks * sizeof *ids);
    size_t *lens = malloc(n_masks * sizeof *lens);
    pl_status st = buf && ids && lens ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n_masks && !st; i++) {
        const uint8_t *mk = masks + i * n_features;
        int32_t *dst = buf + i * ne;
        size_t n = 0;
        for (size_t k = 0; k < ne; k++)
            if (g->fmap[k] < 0 || mk[g->fmap[k]]) dst[n++] = g->email->ids[k];
        ids[i] = dst;
        lens[i] = n;
    }
    if (!st) st = pl_classifier_score(g->l->cls, ids, lens, n_masks, out);
    free(buf);
    free(ids);
    free(lens);
    return st;
}

pl_status pl_study_llm_explain_one(void *ctx, const pl_record *r, pl_xmethod method, size_t max_evals, uint64_t seed,
                                   pl_study_xone *o) {
    pl_study_llm_x *x = ctx;
    llm *l = &x->l;
    pl_tokens email = {0};
    pl_buf piece = {0};
    int32_t *fmap = NULL;
    size_t *first = NULL; /* first token of each word, [M + 1] */
    pl_status st = pl_prompt_email_ids(&l->pr, l->tok, r, &email, NULL);
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
    if (!st && M > 0) {
        first[M] = email.n;
        for (size_t k = 0; k < email.n; k++)
            if (fmap[k] < 0 && k < first[M]) first[M] = k;
        llm_game g = {l, &email, fmap};
        st = pl_study_explain_game(llm_value, &g, M, method, max_evals, seed, &o->res);
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
    pl_buf_free(&piece);
    free(fmap);
    free(first);
    pl_tokens_free(&email);
    return st;
}

/* ---- LoRA fine-tuning (train stage) --------------------------------------------- */

/* Examples: prefix + email + suffix ids per record, label objective. */
typedef struct {
    pl_tokens *ids;
    pl_tr_dataset d;
} llm_dataset;

static void llm_dataset_free(llm_dataset *ds) {
    for (size_t i = 0; ds->ids && i < ds->d.n; i++) pl_tokens_free(&ds->ids[i]);
    free(ds->ids);
    free(ds->d.ex);
    memset(ds, 0, sizeof *ds);
}

/* cot = 0: the label objective's examples (prompt ending at the answer
 * position). cot = 1: the LM objective's: prompt + "rationale \n label
 * word" + EOS (pl_prompt_answer_ids), scored from the answer position on. */
static pl_status llm_dataset_make(const llm *l, const pl_records *rs, int cot, llm_dataset *ds) {
    memset(ds, 0, sizeof *ds);
    ds->ids = calloc(rs->n ? rs->n : 1, sizeof *ds->ids);
    ds->d.ex = calloc(rs->n ? rs->n : 1, sizeof *ds->d.ex);
    pl_status st = ds->ids && ds->d.ex ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
    int32_t eos = pl_tokenizer_eos(l->tok);
    for (size_t i = 0; i < rs->n && !st; i++) {
        const pl_record *r = &rs->v[i];
        pl_tokens email = {0};
        st = pl_prompt_email_ids(&l->pr, l->tok, r, &email, NULL);
        if (!st) st = pl_prompt_full(&l->pr, email.ids, email.n, &ds->ids[i]);
        pl_tokens_free(&email);
        size_t plen = ds->ids[i].n;
        if (!st && cot) {
            const cJSON *ra = r->meta ? cJSON_GetObjectItemCaseSensitive(r->meta, "rationale") : NULL;
            if (!cJSON_IsString(ra) || !ra->valuestring[0])
                st = pl_error(PL_ERR_INVALID, "record %s (source %s) has no meta.rationale for chain-of-thought training",
                              r->id, r->source);
            if (!st) st = pl_prompt_answer_ids(&l->pr, l->tok, ra->valuestring, r->label, &ds->ids[i]);
            if (!st && eos >= 0) st = pl_tokens_push(&ds->ids[i], eos);
        }
        if (st) break;
        ds->d.ex[i].tokens = ds->ids[i].ids;
        ds->d.ex[i].n_tokens = (int)ds->ids[i].n;
        ds->d.ex[i].label = r->label;
        ds->d.ex[i].loss_start = cot ? (int)plen - 1 : 0;
        ds->d.n = i + 1;
    }
    if (st) ds->d.n = rs->n; /* free every tokens buffer that may hold ids */
    if (st) llm_dataset_free(ds);
    return st;
}

pl_status pl_study_llm_train(pl_study_plan *pl, pl_study_task *t, const char *dir) {
    const pl_study_config *c = pl->cfg;
    const pl_study_training *tr = &pl->trainings[t->training];
    const pl_study_model *sm = &c->models[tr->model];
    if (c->hyper.lora_rank < 1)
        return pl_error(PL_ERR_INVALID, "%s: hyperparameters.lora_rank must be at least 1 for LoRA fine-tuning", t->name);
    int cot = pl_study_is_cot(pl, t);
    llm l;
    pl_status st = pl_study_llm_open_ex(sm, c->hyper.max_tokens, cot ? COT_RESERVE : 0, NULL, &l);
    if (st) return st;
    pl_records trs = {0}, vrs = {0};
    for (size_t k = 0; k < tr->n_sources && !st; k++) {
        st = pl_study_read_parts(pl, tr->sources[k], "train", &trs);
        if (!st) st = pl_study_read_parts(pl, tr->sources[k], "val", &vrs);
    }
    llm_dataset dtr, dva;
    memset(&dtr, 0, sizeof dtr);
    memset(&dva, 0, sizeof dva);
    if (!st) st = llm_dataset_make(&l, &trs, cot, &dtr);
    if (!st) st = llm_dataset_make(&l, &vrs, cot, &dva);
    pl_tr_config tc = pl_tr_config_default();
    tc.objective = cot ? PL_OBJ_LM : PL_OBJ_LABEL;
    if (sm->bf16) tc.precision = PL_PREC_BF16;
    tc.lora_rank = c->hyper.lora_rank;
    tc.lora_alpha = c->hyper.lora_alpha;
    tc.targets = c->hyper.targets;
    tc.label_tokens[0] = l.pr.label_neg_id;
    tc.label_tokens[1] = l.pr.label_pos_id;
    tc.seed = c->seed;
    pl_loop_opts lo = pl_loop_opts_default();
    lo.opt.lr = c->hyper.lr;
    lo.epochs = c->hyper.epochs;
    lo.batch = c->hyper.batch;
    if (c->hyper.min_steps > 0 && dtr.d.n > 0) {
        /* small training sets: raise the epochs until the run has min_steps optimizer steps */
        long per_epoch = ((long)dtr.d.n + lo.batch - 1) / lo.batch;
        long need = (c->hyper.min_steps + per_epoch - 1) / per_epoch;
        if (need > lo.epochs) lo.epochs = (int)need;
    }
    lo.run_dir = dir;
    lo.base_model = sm->path;
    lo.quiet = 1;
    pl_trainer *trn = NULL;
    pl_loop_result res;
    memset(&res, 0, sizeof res);
    if (!st) st = pl_trainer_new(l.m, &tc, &trn);
    if (!st) st = pl_train_loop(trn, &dtr.d, dva.d.n ? &dva.d : NULL, &lo, &res);
    if (!st) {
        cJSON *o = cJSON_CreateObject();
        if (o) {
            cJSON_AddStringToObject(o, "model", sm->name);
            cJSON_AddStringToObject(o, "family", pl_study_family_name(sm->family));
            cJSON_AddStringToObject(o, "training", tr->name);
            cJSON *a = cJSON_AddArrayToObject(o, "train_sources");
            for (size_t k = 0; a && k < tr->n_sources; k++) cJSON_AddItemToArray(a, cJSON_CreateString(tr->sources[k]));
            cJSON_AddStringToObject(o, "objective", cot ? "LM on rationale + label word, LoRA" : "label tokens, LoRA");
            cJSON_AddNumberToObject(o, "n_train", (double)dtr.d.n);
            cJSON_AddNumberToObject(o, "n_val", (double)dva.d.n);
            cJSON_AddNumberToObject(o, "epochs", lo.epochs);
            cJSON_AddNumberToObject(o, "steps", (double)res.steps);
            cJSON_AddItemToObject(o, "last_loss", pl_json_num_or_null(res.last_loss));
            cJSON_AddItemToObject(o, "val_loss", pl_json_num_or_null(res.val_loss));
            cJSON_AddItemToObject(o, "val_f1", pl_json_num_or_null(res.val_f1));
        }
        char *p = pl_study_path(dir, "train.json");
        st = o && p ? pl_json_write_atomic(p, o) : pl_error(PL_ERR_NOMEM, "out of memory");
        free(p);
        cJSON_Delete(o);
    }
    if (st) st = pl_error_wrap(st, "%s", t->name);
    pl_trainer_free(trn);
    llm_dataset_free(&dtr);
    llm_dataset_free(&dva);
    pl_records_free(&trs);
    pl_records_free(&vrs);
    llm_close(&l);
    return st;
}
