/* stages.c — the model-side stages of a study: train, eval and explain for
 * the families this build can run (lexical-nb), the label-noise audit, and
 * the input hashing / size helpers of the runner.
 *
 * Explain: the value function of an email is the classifier score with the
 * masked words removed. For lexical-nb it is
 *   v(S) = prior + sum_{i in S} llr(word_i),
 * additive, so every Shapley estimator must return phi_i = llr(word_i); the
 * stage records the largest deviation ("additivity_error") as a check of the
 * explainer wiring. Examples are chosen seeded: out-of-domain errors first,
 * then a sample of all test emails.
 */
#include <cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval/eval.h"
#include "explain/explain.h"
#include "io/io.h"
#include "study/study_internal.h"

/* ---- words with spans ------------------------------------------------------ */

typedef struct {
    pl_study_words *w;
    const char *text;
    size_t cursor;
    int oom;
} words_ctx;

static int word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* Locate each word pl_text_words gives (lower-cased, maybe cut) in the text:
 * between two words there are only separator bytes, so the first
 * case-insensitive match from the cursor is the word. */
static void push_word(const char *w, size_t len, void *user) {
    words_ctx *c = user;
    if (c->oom) return;
    pl_study_words *ws = c->w;
    if (ws->n == ws->cap) {
        size_t cap = ws->cap ? 2 * ws->cap : 64;
        char **a = realloc(ws->w, cap * sizeof *a);
        if (a) ws->w = a;
        size_t *s = realloc(ws->start, cap * sizeof *s);
        if (s) ws->start = s;
        size_t *e = realloc(ws->end, cap * sizeof *e);
        if (e) ws->end = e;
        if (!a || !s || !e) {
            c->oom = 1;
            return;
        }
        ws->cap = cap;
    }
    size_t tl = strlen(c->text), pos = c->cursor;
    for (; pos + len <= tl; pos++) {
        size_t k = 0;
        while (k < len) {
            unsigned char a = (unsigned char)c->text[pos + k];
            if (a >= 'A' && a <= 'Z') a = (unsigned char)(a - 'A' + 'a');
            if (a != (unsigned char)w[k]) break;
            k++;
        }
        if (k == len) break;
    }
    if (pos + len > tl) pos = c->cursor; /* not found (cannot happen for words of this text) */
    size_t end = pos + len;
    while (end < tl && len >= 60 && word_byte((unsigned char)c->text[end])) end++; /* a cut word */
    char *copy = malloc(len + 1);
    if (!copy) {
        c->oom = 1;
        return;
    }
    memcpy(copy, w, len + 1);
    ws->w[ws->n] = copy;
    ws->start[ws->n] = pos;
    ws->end[ws->n] = end;
    ws->n++;
    c->cursor = end;
}

pl_status pl_study_words_of(const char *text, pl_study_words *out) {
    memset(out, 0, sizeof *out);
    words_ctx c = {out, text, 0, 0};
    pl_text_words(text, push_word, &c);
    if (c.oom) {
        pl_study_words_free(out);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    return PL_OK;
}

void pl_study_words_free(pl_study_words *w) {
    for (size_t i = 0; i < w->n; i++) free(w->w[i]);
    free(w->w);
    free(w->start);
    free(w->end);
    memset(w, 0, sizeof *w);
}

/* ---- input hashing and model size ------------------------------------------- */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

pl_status pl_study_hash_dir(const char *path, uint64_t *out) {
    DIR *d = opendir(path);
    if (!d) return pl_error(PL_ERR_IO, "%s: cannot open folder", path);
    char **names = NULL;
    size_t n = 0, cap = 0;
    pl_status st = PL_OK;
    for (struct dirent *e; (e = readdir(d)) != NULL && !st;) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **v = realloc(names, cap * sizeof *v);
            if (!v) {
                st = pl_error(PL_ERR_NOMEM, "out of memory");
                break;
            }
            names = v;
        }
        if (!(names[n] = pl_study_strdup(e->d_name))) st = pl_error(PL_ERR_NOMEM, "out of memory");
        else n++;
    }
    closedir(d);
    if (names) qsort(names, n, sizeof *names, cmp_str);
    uint64_t key = 0x646972u;
    for (size_t i = 0; i < n && !st; i++) {
        char *p = pl_study_path(path, names[i]);
        struct stat sb;
        if (!p) st = pl_error(PL_ERR_NOMEM, "out of memory");
        else if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) {
            uint64_t h;
            st = pl_hash_file(p, &h);
            key = pl_hash64(names[i], strlen(names[i]), key ^ h);
        }
        free(p);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    *out = key;
    return st;
}

double pl_study_model_params(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) return 0;
    if (!S_ISDIR(sb.st_mode)) {
        pl_gguf *g = NULL;
        if (pl_gguf_open(path, &g)) {
            pl_error_clear();
            return 0;
        }
        double n = 0;
        for (int64_t i = 0; i < pl_gguf_n_tensors(g); i++) n += (double)pl_gguf_tensor_at(g, i)->n_elements;
        pl_gguf_close(g);
        return n;
    }
    /* HF folder: safetensors bytes / 2 (bf16/f16 checkpoints; an estimate) */
    DIR *d = opendir(path);
    if (!d) return 0;
    double bytes = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t l = strlen(e->d_name);
        if (l < 12 || strcmp(e->d_name + l - 12, ".safetensors")) continue;
        char *p = pl_study_path(path, e->d_name);
        if (p && stat(p, &sb) == 0) bytes += (double)sb.st_size;
        free(p);
    }
    closedir(d);
    return bytes / 2.0;
}

/* ---- audit ---------------------------------------------------------------------- */

static double sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

pl_status pl_study_audit(const pl_study_config *c, const pl_records *rs, const char *dir) {
    enum { FOLDS = 5 };
    size_t n = rs->n;
    int *label = malloc((n ? n : 1) * sizeof *label);
    double *p1 = malloc((n ? n : 1) * sizeof *p1);
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    const pl_record **tr = malloc((n ? n : 1) * sizeof *tr);
    pl_status st = label && p1 && order && tr ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && !st; i++) {
        order[i] = i;
        label[i] = rs->v[i].label;
    }
    if (!st) {
        pl_rng rng;
        pl_rng_seed(&rng, c->seed ^ 0xa0d17u);
        pl_rng_shuffle(&rng, order, n, sizeof *order);
    }
    for (int f = 0; f < FOLDS && !st; f++) {
        size_t nt = 0;
        for (size_t k = 0; k < n; k++)
            if ((int)(k % FOLDS) != f) tr[nt++] = &rs->v[order[k]];
        pl_nb m;
        st = pl_nb_train(tr, nt, c->hyper.nb_alpha, &m);
        for (size_t k = 0; k < n && !st; k++) {
            if ((int)(k % FOLDS) != f) continue;
            char *text = pl_nb_text(&rs->v[order[k]]);
            if (!text) {
                st = pl_error(PL_ERR_NOMEM, "out of memory");
                break;
            }
            p1[order[k]] = sigmoid(pl_nb_score(&m, text));
            free(text);
        }
        pl_nb_free(&m);
    }
    pl_audit_result ar;
    memset(&ar, 0, sizeof ar);
    if (!st) st = pl_audit_confident(label, p1, n, 0.9, &ar);
    cJSON *o = NULL;
    if (!st) {
        o = cJSON_CreateObject();
        cJSON *per = cJSON_CreateObject(), *fl = cJSON_CreateArray();
        if (!o || !per || !fl) {
            cJSON_Delete(per);
            cJSON_Delete(fl);
            st = pl_error(PL_ERR_NOMEM, "out of memory");
        } else {
            cJSON_AddStringToObject(o, "method", "confident learning (prune by noise rate) on 5-fold out-of-fold "
                                                 "lexical-nb probabilities");
            cJSON_AddNumberToObject(o, "n", (double)n);
            cJSON_AddNumberToObject(o, "noise_rate", ar.noise_rate);
            cJSON_AddNumberToObject(o, "n_flagged", (double)ar.n_prune);
            cJSON_AddNumberToObject(o, "n_flagged_naive", (double)ar.n_naive);
            cJSON_AddItemToObject(o, "per_source", per);
            cJSON_AddItemToObject(o, "flagged", fl);
            for (size_t i = 0; i < n; i++) {
                cJSON *s = cJSON_GetObjectItemCaseSensitive(per, rs->v[i].source);
                if (!s) {
                    s = cJSON_AddObjectToObject(per, rs->v[i].source);
                    if (s) cJSON_AddNumberToObject(s, "n", 0);
                    if (s) cJSON_AddNumberToObject(s, "flagged", 0);
                }
                if (!s) continue;
                cJSON *cn = cJSON_GetObjectItemCaseSensitive(s, "n");
                cJSON_SetNumberValue(cn, cn->valuedouble + 1);
                if (ar.flag_prune[i]) {
                    cJSON *cf = cJSON_GetObjectItemCaseSensitive(s, "flagged");
                    cJSON_SetNumberValue(cf, cf->valuedouble + 1);
                    if (cJSON_GetArraySize(fl) < 50) {
                        cJSON *e = cJSON_CreateObject();
                        if (e) {
                            cJSON_AddStringToObject(e, "id", rs->v[i].id);
                            cJSON_AddStringToObject(e, "source", rs->v[i].source);
                            cJSON_AddNumberToObject(e, "label", rs->v[i].label);
                            cJSON_AddNumberToObject(e, "p_phish_oof", p1[i]);
                            cJSON_AddItemToArray(fl, e);
                        }
                    }
                }
            }
        }
    }
    if (!st) {
        char *path = pl_study_path(dir, "audit.json");
        st = path ? pl_json_write_atomic(path, o) : pl_error(PL_ERR_NOMEM, "out of memory");
        free(path);
    }
    cJSON_Delete(o);
    pl_audit_result_free(&ar);
    free(label);
    free(p1);
    free(order);
    free(tr);
    return st;
}

/* ---- train ------------------------------------------------------------------ */

pl_status pl_study_stage_train(pl_study_plan *pl, pl_study_task *t, const char *dir) {
    const pl_study_training *tr = &pl->trainings[t->training];
    const pl_study_config *c = pl->cfg;
    const pl_study_model *m = &c->models[tr->model];
    if (m->family != PL_FAM_LEXICAL_NB) return pl_error(PL_ERR_UNSUPPORTED, "%s: LLM training is not in this build", t->name);
    pl_records rs = {0};
    pl_status st = PL_OK;
    for (size_t k = 0; k < tr->n_sources && !st; k++) st = pl_study_read_parts(pl, tr->sources[k], "train", &rs);
    const pl_record **v = malloc((rs.n ? rs.n : 1) * sizeof *v);
    if (!st && !v) st = pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < rs.n && !st; i++) v[i] = &rs.v[i];
    pl_nb nb;
    memset(&nb, 0, sizeof nb);
    if (!st) st = pl_nb_train(v, rs.n, c->hyper.nb_alpha, &nb);
    if (st) st = pl_error_wrap(st, "%s", t->name);
    char *p = NULL;
    if (!st) {
        p = pl_study_path(dir, "model.nb");
        st = p ? pl_nb_save(&nb, p) : pl_error(PL_ERR_NOMEM, "out of memory");
        free(p);
    }
    if (!st) {
        cJSON *o = cJSON_CreateObject();
        if (o) {
            cJSON_AddStringToObject(o, "model", m->name);
            cJSON_AddStringToObject(o, "family", pl_study_family_name(m->family));
            cJSON_AddStringToObject(o, "training", tr->name);
            cJSON *a = cJSON_AddArrayToObject(o, "train_sources");
            for (size_t k = 0; a && k < tr->n_sources; k++) cJSON_AddItemToArray(a, cJSON_CreateString(tr->sources[k]));
            cJSON_AddNumberToObject(o, "n_train", (double)nb.n_train);
            cJSON_AddNumberToObject(o, "n_phish", (double)nb.n_pos);
            cJSON_AddNumberToObject(o, "vocab_buckets", (double)nb.vocab);
        }
        p = pl_study_path(dir, "train.json");
        st = o && p ? pl_json_write_atomic(p, o) : pl_error(PL_ERR_NOMEM, "out of memory");
        free(p);
        cJSON_Delete(o);
    }
    pl_nb_free(&nb);
    free(v);
    pl_records_free(&rs);
    return st;
}

static pl_status load_nb(const pl_study_plan *pl, const pl_study_task *t, pl_nb *nb) {
    /* the train task is the first dependency */
    const pl_study_task *tt = &pl->tasks[t->deps[0]];
    char path[PL_STUDY_NAME_MAX * 2];
    snprintf(path, sizeof path, "%s/%s/model.nb", pl->out, tt->dir);
    return pl_nb_load(path, nb);
}

/* ---- eval ------------------------------------------------------------------- */

pl_status pl_study_stage_eval(pl_study_plan *pl, pl_study_task *t, const char *dir) {
    const pl_study_training *tr = &pl->trainings[t->training];
    const pl_study_config *c = pl->cfg;
    const pl_study_model *m = &c->models[tr->model];
    if (m->family != PL_FAM_LEXICAL_NB) return pl_error(PL_ERR_UNSUPPORTED, "%s: LLM scoring is not in this build", t->name);
    pl_nb nb;
    pl_status st = load_nb(pl, t, &nb);
    if (st) return st;
    pl_records rs = {0};
    st = pl_study_read_parts(pl, c->corpora[t->test].name, "test", &rs);
    pl_preds ps = {0};
    for (size_t i = 0; i < rs.n && !st; i++) {
        const pl_record *r = &rs.v[i];
        char *text = pl_nb_text(r);
        if (!text) {
            st = pl_error(PL_ERR_NOMEM, "out of memory");
            break;
        }
        double s = pl_nb_score(&nb, text);
        free(text);
        if (!isfinite(s)) {
            st = pl_error(PL_ERR_NUMERIC, "%s: non-finite score for email %s", t->name, r->id);
            break;
        }
        pl_pred p = {0};
        p.id = r->id;
        p.source = r->source;
        p.label = r->label;
        p.score = s;
        p.p_phish = sigmoid(s);
        p.pred = p.p_phish >= 0.5;
        p.has_url = r->n_urls > 0;
        p.html = -1;
        p.link_mismatch = -1;
        p.length = (int64_t)strlen(r->body);
        st = pl_preds_push(&ps, &p);
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
        ri.model = pl_study_strdup(m->name);
        ri.train_set = pl_study_strdup(tr->name);
        ri.adapter = pl_study_strdup("");
        ri.train_sources = calloc(tr->n_sources ? tr->n_sources : 1, sizeof *ri.train_sources);
        ri.extra = cJSON_CreateObject();
        if (!ri.model || !ri.train_set || !ri.adapter || !ri.train_sources || !ri.extra) st = pl_error(PL_ERR_NOMEM, "out of memory");
        for (size_t k = 0; k < tr->n_sources && !st; k++) {
            if (!(ri.train_sources[k] = pl_study_strdup(tr->sources[k]))) st = pl_error(PL_ERR_NOMEM, "out of memory");
            else ri.n_train_sources = k + 1;
        }
        if (!st) {
            cJSON_AddStringToObject(ri.extra, "family", pl_study_family_name(m->family));
            cJSON_AddStringToObject(ri.extra, "paradigm", c->paradigms[tr->paradigm].spec);
            cJSON_AddStringToObject(ri.extra, "test_corpus", c->corpora[t->test].name);
            path = pl_study_path(dir, "run.json");
            st = path ? pl_run_info_write(path, &ri) : pl_error(PL_ERR_NOMEM, "out of memory");
            free(path);
        }
        pl_run_info_free(&ri);
    }
    pl_preds_free(&ps);
    pl_records_free(&rs);
    pl_nb_free(&nb);
    return st;
}

/* ---- explain ------------------------------------------------------------------ */

typedef struct {
    const double *llr;
    double prior;
} nb_game;

pl_status pl_study_explain_game(pl_value_fn fn, void *game, size_t M, pl_xmethod method, size_t max_evals,
                                uint64_t seed, pl_xresult *res) {
    pl_xopts xo;
    pl_xopts_init(&xo, method);
    xo.max_evals = max_evals;
    xo.seed = seed;
    if (method == PL_XM_EXACT && M > 20) xo.method = PL_XM_PARTITION;
    pl_xtree tree;
    memset(&tree, 0, sizeof tree);
    pl_status st = PL_OK;
    if (xo.method == PL_XM_PARTITION) {
        st = pl_xtree_balanced(M, &tree);
        xo.tree = &tree;
    }
    if (!st) st = pl_explain_run(fn, game, M, &xo, res);
    pl_xtree_free(&tree);
    return st;
}

static pl_status nb_value(void *ctx, const uint8_t *masks, size_t n_masks, size_t n_features, double *out) {
    const nb_game *g = ctx;
    for (size_t i = 0; i < n_masks; i++) {
        double s = g->prior;
        for (size_t f = 0; f < n_features; f++)
            if (masks[i * n_features + f]) s += g->llr[f];
        out[i] = s;
    }
    return PL_OK;
}

#define EXPLAIN_MAX_WORDS 400 /* words beyond this stay present (never masked) */
#define EXPLAIN_SHOW 6        /* highlighted emails kept for the report */

void pl_study_xone_free(pl_study_xone *o) {
    for (size_t k = 0; o->keys && k < o->M; k++) free(o->keys[k]);
    free(o->keys);
    pl_xresult_free(&o->res);
    cJSON_Delete(o->pieces);
    cJSON_Delete(o->vals);
    memset(o, 0, sizeof *o);
}

/* lexical-nb: features are the words of subject + body (the first
 * EXPLAIN_MAX_WORDS; later words stay present), the game is additive. */
static pl_status nb_explain_one(void *ctx, const pl_record *r, pl_xmethod method, size_t max_evals, uint64_t seed,
                                pl_study_xone *o) {
    const pl_nb *nb = ctx;
    char *text = pl_nb_text(r);
    if (!text) return pl_error(PL_ERR_NOMEM, "out of memory");
    pl_study_words ws;
    pl_status st = pl_study_words_of(text, &ws);
    if (st) {
        free(text);
        return st;
    }
    size_t M = ws.n < EXPLAIN_MAX_WORDS ? ws.n : EXPLAIN_MAX_WORDS;
    double *llr = malloc((M ? M : 1) * sizeof *llr);
    double rest = nb->prior;
    if (!llr) st = pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < ws.n && !st; k++) {
        double v = (double)nb->llr[pl_nb_bucket(ws.w[k], strlen(ws.w[k]))];
        if (k < M) llr[k] = v;
        else rest += v;
    }
    if (!st && M > 0) {
        nb_game game = {llr, rest};
        st = pl_study_explain_game(nb_value, &game, M, method, max_evals, seed, &o->res);
    }
    if (!st && M > 0) {
        o->M = M;
        o->add_err = 0;
        for (size_t k = 0; k < M; k++) {
            double d = fabs(o->res.phi[k] - llr[k]);
            if (d > o->add_err) o->add_err = d;
        }
        o->keys = calloc(M, sizeof *o->keys);
        o->pieces = cJSON_CreateArray();
        o->vals = cJSON_CreateArray();
        if (!o->keys || !o->pieces || !o->vals) st = pl_error(PL_ERR_NOMEM, "out of memory");
        for (size_t k = 0; k < M && !st; k++) {
            o->keys[k] = ws.w[k];
            ws.w[k] = NULL;
        }
        /* the text cut into pieces: each word, with the gap before it as a 0-valued piece */
        size_t prev = 0;
        for (size_t k = 0; k < M && !st; k++) {
            if (ws.start[k] > prev) {
                char *gap = strndup(text + prev, ws.start[k] - prev);
                cJSON_AddItemToArray(o->pieces, cJSON_CreateString(gap ? gap : ""));
                cJSON_AddItemToArray(o->vals, cJSON_CreateNumber(0));
                free(gap);
            }
            char *wd = strndup(text + ws.start[k], ws.end[k] - ws.start[k]);
            cJSON_AddItemToArray(o->pieces, cJSON_CreateString(wd ? wd : ""));
            cJSON_AddItemToArray(o->vals, cJSON_CreateNumber(o->res.phi[k]));
            free(wd);
            prev = ws.end[k];
        }
        if (!st && prev < strlen(text)) {
            cJSON_AddItemToArray(o->pieces, cJSON_CreateString(text + prev));
            cJSON_AddItemToArray(o->vals, cJSON_CreateNumber(0));
        }
    }
    free(llr);
    for (size_t k = 0; k < ws.n; k++) free(ws.w[k]);
    ws.n = 0;
    pl_study_words_free(&ws);
    free(text);
    if (st) pl_study_xone_free(o);
    return st;
}

pl_status pl_study_stage_explain(pl_study_plan *pl, pl_study_task *t, const char *dir) {
    const pl_study_training *tr = &pl->trainings[t->training];
    const pl_study_config *c = pl->cfg;
    pl_nb nb;
    memset(&nb, 0, sizeof nb);
    pl_status st = c->models[tr->model].family == PL_FAM_LEXICAL_NB ? load_nb(pl, t, &nb) : PL_OK;
    if (st) return st;
    /* the test emails and their predictions */
    pl_records rs = {0};
    pl_preds ps = {0};
    for (size_t k = 0; k < t->n_deps && !st; k++) {
        const pl_study_task *d = &pl->tasks[t->deps[k]];
        if (d->stage != PL_STAGE_EVAL || (d->state != PL_TASK_RAN && d->state != PL_TASK_CACHED)) continue;
        size_t before = rs.n;
        st = pl_study_read_parts(pl, c->corpora[d->test].name, "test", &rs);
        char path[PL_STUDY_NAME_MAX * 2];
        snprintf(path, sizeof path, "%s/%s/predictions.jsonl", pl->out, d->dir);
        if (!st) st = pl_preds_read_jsonl(path, &ps);
        if (!st && ps.n != rs.n)
            st = pl_error(PL_ERR_FORMAT, "%s: %zu predictions for %zu test emails", path, ps.n - before, rs.n - before);
    }
    size_t n = rs.n;
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    uint8_t *ood_err = calloc(n ? n : 1, 1);
    if (!st && (!order || !ood_err)) st = pl_error(PL_ERR_NOMEM, "out of memory");
    size_t n_sel = 0;
    if (!st) {
        /* seeded order: out-of-domain errors first, then everything else */
        for (size_t i = 0; i < n; i++) order[i] = i;
        pl_rng rng;
        pl_rng_seed(&rng, c->seed ^ pl_hash64(t->name, strlen(t->name), 3));
        pl_rng_shuffle(&rng, order, n, sizeof *order);
        size_t w = 0;
        for (size_t i = 0; i < n; i++) {
            int in = 0;
            for (size_t k = 0; k < tr->n_sources; k++) in |= !strcmp(rs.v[i].source, tr->sources[k]);
            ood_err[i] = !in && ps.v[i].pred != ps.v[i].label;
        }
        size_t n_err = 0, max_err = (c->explain_examples + 1) / 2;
        size_t *tmp = malloc((n ? n : 1) * sizeof *tmp);
        uint8_t *taken = calloc(n ? n : 1, 1);
        if (!tmp || !taken) st = pl_error(PL_ERR_NOMEM, "out of memory");
        else {
            for (size_t i = 0; i < n && n_err < max_err; i++)
                if (ood_err[order[i]]) {
                    tmp[w++] = order[i];
                    taken[order[i]] = 1;
                    n_err++;
                }
            for (size_t i = 0; i < n; i++)
                if (!taken[order[i]]) tmp[w++] = order[i];
            memcpy(order, tmp, w * sizeof *tmp);
            n_sel = w < c->explain_examples ? w : c->explain_examples;
        }
        free(tmp);
        free(taken);
    }
    /* artifact tokens from the profile (optional dependency) */
    cJSON *prof = NULL;
    {
        char path[PL_STUDY_NAME_MAX * 2];
        snprintf(path, sizeof path, "%s/%s/profile.json", pl->out, pl->tasks[pl->profile_task].dir);
        char *data = NULL;
        size_t len = 0;
        if (!st && pl->tasks[pl->profile_task].state != PL_TASK_FAILED && !pl_read_file(path, &data, &len))
            prof = cJSON_ParseWithLength(data, len);
        pl_error_clear();
        free(data);
    }
    pl_xglobal *g_all = NULL, *g_ood = NULL;
    if (!st) st = pl_xglobal_new(&g_all);
    if (!st) st = pl_xglobal_new(&g_ood);
    cJSON *out = cJSON_CreateObject(), *exs = cJSON_CreateArray();
    if (!st && (!out || !exs)) st = pl_error(PL_ERR_NOMEM, "out of memory");
    if (!st) {
        cJSON_AddItemToObject(out, "examples", exs);
        cJSON_AddStringToObject(out, "method", c->explain_method);
        cJSON_AddStringToObject(out, "model", c->models[tr->model].name);
        cJSON_AddStringToObject(out, "family", pl_study_family_name(c->models[tr->model].family));
        cJSON_AddStringToObject(out, "training", tr->name);
    } else {
        cJSON_Delete(exs);
    }
    double max_eff = 0, max_add = -1; /* -1: no exact reference */
    size_t n_explained = 0, n_ood_err = 0;
    pl_xmethod method = PL_XM_PARTITION;
    if (!st) st = pl_xmethod_parse(c->explain_method, &method);
    /* the model's per-email explainer */
    pl_study_xone_fn one = NULL;
    void *one_ctx = NULL;
    pl_study_llm_x *lx = NULL;
    if (c->models[tr->model].family == PL_FAM_LEXICAL_NB) {
        one = nb_explain_one;
        one_ctx = &nb;
    } else if (!st) {
        char abuf[PL_STUDY_NAME_MAX * 2] = "";
        for (size_t k = 0; k < t->n_deps && !abuf[0]; k++)
            if (pl->tasks[t->deps[k]].stage == PL_STAGE_TRAIN)
                snprintf(abuf, sizeof abuf, "%s/%s/adapter.gguf", pl->out, pl->tasks[t->deps[k]].dir);
        st = pl_study_llm_x_open(&c->models[tr->model], c->hyper.max_tokens, abuf[0] ? abuf : NULL, &lx);
        one = pl_study_llm_explain_one;
        one_ctx = lx;
    }
    pl_progress prog;
    int show = c->models[tr->model].family != PL_FAM_LEXICAL_NB && !st;
    if (show) pl_progress_begin(&prog, "explain", (int64_t)n_sel, "emails");
    for (size_t s = 0; s < n_sel && !st; s++) {
        size_t i = order[s];
        const pl_record *r = &rs.v[i];
        pl_study_xone ox;
        memset(&ox, 0, sizeof ox);
        st = one(one_ctx, r, method, c->explain_max_evals, c->seed + s, &ox);
        if (show) pl_progress_update(&prog, (int64_t)s + 1);
        if (!st && ox.M > 0) {
            double sum = 0;
            for (size_t k = 0; k < ox.M; k++) sum += ox.res.phi[k];
            double eff = fabs(sum - (ox.res.fx - ox.res.base_value));
            if (eff > max_eff) max_eff = eff;
            if (ox.add_err > max_add) max_add = ox.add_err;
            const char *const *keys = (const char *const *)ox.keys;
            st = pl_xglobal_add(g_all, keys, ox.res.phi, ox.M, r->label, r->source, ps.v[i].pred == r->label);
            if (!st && ood_err[i]) {
                st = pl_xglobal_add(g_ood, keys, ox.res.phi, ox.M, r->label, r->source, 0);
                n_ood_err++;
            }
            n_explained++;
            if (!st && (size_t)cJSON_GetArraySize(exs) < EXPLAIN_SHOW) {
                cJSON *e = cJSON_CreateObject();
                if (!e) {
                    st = pl_error(PL_ERR_NOMEM, "out of memory");
                } else {
                    cJSON_AddStringToObject(e, "id", r->id);
                    cJSON_AddStringToObject(e, "source", r->source);
                    cJSON_AddNumberToObject(e, "label", r->label);
                    cJSON_AddNumberToObject(e, "pred", ps.v[i].pred);
                    cJSON_AddBoolToObject(e, "ood_error", ood_err[i]);
                    cJSON_AddNumberToObject(e, "fx", ox.res.fx);
                    cJSON_AddNumberToObject(e, "base_value", ox.res.base_value);
                    cJSON_AddItemToObject(e, "pieces", ox.pieces);
                    cJSON_AddItemToObject(e, "phi", ox.vals);
                    ox.pieces = ox.vals = NULL;
                    cJSON_AddItemToArray(exs, e);
                }
            }
        }
        pl_study_xone_free(&ox);
    }
    if (show) pl_progress_end(&prog);
    pl_study_llm_x_close(lx);
    if (max_add < 0) max_add = NAN;
    /* global tables and artifact candidates */
    pl_xartifact_in *art = NULL;
    size_t n_art = 0;
    const cJSON *srcs = prof ? cJSON_GetObjectItemCaseSensitive(prof, "sources") : NULL;
    for (const cJSON *sp = srcs ? srcs->child : NULL; sp && !st; sp = sp->next) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(sp, "source");
        const cJSON *top = cJSON_GetObjectItemCaseSensitive(sp, "distinctive");
        for (const cJSON *e = top ? top->child : NULL; e; e = e->next) {
            const cJSON *tk = cJSON_GetObjectItemCaseSensitive(e, "token"), *z = cJSON_GetObjectItemCaseSensitive(e, "z");
            if (!cJSON_IsString(tk) || !cJSON_IsNumber(z) || !cJSON_IsString(nm)) continue;
            pl_xartifact_in *v = realloc(art, (n_art + 1) * sizeof *v);
            if (!v) {
                st = pl_error(PL_ERR_NOMEM, "out of memory");
                break;
            }
            art = v;
            art[n_art].token = tk->valuestring;
            art[n_art].source = nm->valuestring;
            art[n_art].z = z->valuedouble;
            n_art++;
        }
    }
    pl_buf b = {0};
    const size_t min_count = 2;
    struct {
        const char *key;
        pl_xglobal *g;
    } globals[2] = {{"global", g_all}, {"ood_errors", g_ood}};
    for (int gi = 0; gi < 2 && !st; gi++) {
        b.len = 0;
        st = pl_xglobal_to_json(globals[gi].g, min_count, c->explain_top_k, &b);
        cJSON *j = !st ? cJSON_ParseWithLength(b.data, b.len) : NULL;
        if (!st && !j) st = pl_error(PL_ERR_INTERNAL, "explain: global JSON did not parse");
        if (!st) cJSON_AddItemToObject(out, globals[gi].key, j);
        if (!st && prof) {
            pl_xcandidate *cand = NULL;
            size_t n_cand = 0;
            st = pl_xglobal_artifacts(globals[gi].g, art, n_art, 3.0, c->explain_top_k, min_count, &cand, &n_cand);
            b.len = 0;
            if (!st) st = pl_xcandidates_to_json(cand, n_cand, &b);
            cJSON *cj = !st ? cJSON_ParseWithLength(b.data, b.len) : NULL;
            if (!st && !cj) st = pl_error(PL_ERR_INTERNAL, "explain: candidates JSON did not parse");
            char key[64];
            snprintf(key, sizeof key, "candidates_%s", globals[gi].key);
            if (!st) cJSON_AddItemToObject(out, key, cj);
            free(cand);
        }
    }
    pl_buf_free(&b);
    free(art);
    if (!st) {
        cJSON_AddBoolToObject(out, "profile_available", prof != NULL);
        cJSON_AddNumberToObject(out, "n_explained", (double)n_explained);
        cJSON_AddNumberToObject(out, "n_ood_errors_explained", (double)n_ood_err);
        cJSON_AddNumberToObject(out, "max_efficiency_error", max_eff);
        cJSON_AddItemToObject(out, "additivity_error", pl_json_num_or_null(max_add));
        char *path = pl_study_path(dir, "explain.json");
        st = path ? pl_json_write_atomic(path, out) : pl_error(PL_ERR_NOMEM, "out of memory");
        free(path);
    }
    cJSON_Delete(out);
    cJSON_Delete(prof);
    pl_xglobal_free(g_all);
    pl_xglobal_free(g_ood);
    free(order);
    free(ood_err);
    pl_preds_free(&ps);
    pl_records_free(&rs);
    pl_nb_free(&nb);
    return st;
}
