/* runner.c — the study runner: the task DAG, the content-hash cache and the
 * stage implementations that call into the library modules.
 *
 * Tasks (one per row):
 *   data/<corpus>                  filter, cap and split one corpus (data/)
 *   data/profile                   style profile + label-noise audit of all corpora
 *   train/<model>/<training>       lexical-nb: fit; LLMs: LoRA fine-tuning (label tokens; chain-of-
 *                                  thought: LM on rationale + label word)
 *   eval/<model>/<training>/<test> predictions.jsonl + run.json on one test corpus
 *   explain/<model>/<training>     SHAP on chosen test emails, global features,
 *                                  cross-reference with distinctive tokens
 *   interp/<model>/<training>      LLMs: probe, lens, DLA, ablation, attention, patching
 *   diagnose                       diagnosis.json
 *   report                         report.html + report.json
 * A "training" is one paradigm expanded: leave-one-source-out gives one
 * training per held-out corpus.
 *
 * The cache key of a task (docs/study.md) = XXH3-64 of the version, the
 * task name, its config fragment, its external inputs' content and its
 * upstream tasks' outputs' content. It is written to
 * <out>/.cache/<task>.json after the outputs (atomic writes), so an
 * interrupted run resumes and an unchanged task is never recomputed.
 *
 * Not here: the diagnosis and report content (diagnose.c, render.c).
 */
#include "study/study.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval/eval.h"
#include "explain/explain.h"
#include "study/study_internal.h"

static const char *const stage_names[PL_STAGE_COUNT] = {"data",    "train",    "eval",  "explain",
                                                        "interp",  "diagnose", "report"};

const char *pl_study_stage_name(int stage) {
    return stage >= 0 && stage < PL_STAGE_COUNT ? stage_names[stage] : "?";
}

int pl_study_stage_parse(const char *s) {
    for (int i = 0; i < PL_STAGE_COUNT; i++)
        if (!strcmp(s, stage_names[i])) return i;
    return -1;
}

void pl_study_opts_default(pl_study_opts *o) {
    memset(o, 0, sizeof *o);
    o->force_stage = -1;
}

/* ---- small helpers -------------------------------------------------------- */

char *pl_study_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

char *pl_study_path(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

int pl_study_file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Write a subset of records as JSONL, atomically. */
static pl_status write_subset(const char *path, const pl_records *rs, const size_t *idx, size_t n) {
    pl_afile f;
    pl_status st = pl_afile_open(&f, path);
    if (st) return st;
    pl_buf b = {0};
    for (size_t k = 0; k < n && !st; k++) {
        b.len = 0;
        st = pl_record_to_json(&rs->v[idx ? idx[k] : k], &b);
        if (!st) st = pl_buf_append(&b, "\n", 1);
        if (!st) st = pl_afile_write(&f, b.data, b.len);
    }
    pl_buf_free(&b);
    if (st) {
        pl_afile_abort(&f);
        return st;
    }
    return pl_afile_commit(&f);
}

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- the plan ------------------------------------------------------------- */

static const char *training_name(const pl_study_paradigm *p, const char *held_out, char *buf, size_t n) {
    switch (p->kind) {
    case PL_PARA_ZERO_SHOT: snprintf(buf, n, "zero-shot"); break;
    case PL_PARA_NARROW: snprintf(buf, n, "narrow-%s", p->sources[0]); break;
    case PL_PARA_LOSO: snprintf(buf, n, "loso-%s", held_out); break;
    case PL_PARA_GENERALIST:
    case PL_PARA_COT: {
        size_t len = (size_t)snprintf(buf, n, "%s", p->kind == PL_PARA_COT ? "cot" : "generalist");
        const char *spec_arg = strchr(p->spec, ':');
        if (spec_arg && strcmp(spec_arg + 1, "all") && len < n) snprintf(buf + len, n - len, "-%s", spec_arg + 1);
        break;
    }
    }
    return buf;
}

static pl_status add_training(pl_study_plan *pl, size_t model, size_t para, const char *name, char **sources,
                              size_t n_sources) {
    pl_study_training *v = realloc(pl->trainings, (pl->n_trainings + 1) * sizeof *v);
    if (!v) return pl_error(PL_ERR_NOMEM, "out of memory");
    pl->trainings = v;
    pl_study_training *t = &v[pl->n_trainings++];
    memset(t, 0, sizeof *t);
    t->model = model;
    t->paradigm = para;
    t->name = pl_study_strdup(name);
    t->sources = sources;
    t->n_sources = n_sources;
    return t->name ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
}

static pl_status expand_trainings(const pl_study_config *c, pl_study_plan *pl) {
    char name[512];
    for (size_t m = 0; m < c->n_models; m++) {
        for (size_t p = 0; p < c->n_paradigms; p++) {
            const pl_study_paradigm *pd = &c->paradigms[p];
            if (pd->kind != PL_PARA_LOSO) {
                char **src = pd->n_sources ? calloc(pd->n_sources, sizeof *src) : NULL;
                if (pd->n_sources && !src) return pl_error(PL_ERR_NOMEM, "out of memory");
                for (size_t k = 0; k < pd->n_sources; k++)
                    if (!(src[k] = pl_study_strdup(pd->sources[k]))) return pl_error(PL_ERR_NOMEM, "out of memory");
                pl_status st = add_training(pl, m, p, training_name(pd, NULL, name, sizeof name), src, pd->n_sources);
                if (st) return st;
                continue;
            }
            for (size_t h = 0; h < c->n_corpora; h++) {
                char **src = calloc(c->n_corpora, sizeof *src);
                if (!src) return pl_error(PL_ERR_NOMEM, "out of memory");
                size_t ns = 0;
                for (size_t k = 0; k < c->n_corpora; k++)
                    if (k != h && !(src[ns++] = pl_study_strdup(c->corpora[k].name)))
                        return pl_error(PL_ERR_NOMEM, "out of memory");
                pl_status st =
                    add_training(pl, m, p, training_name(pd, c->corpora[h].name, name, sizeof name), src, ns);
                if (st) return st;
            }
        }
    }
    return PL_OK;
}

static pl_study_task *new_task(pl_study_plan *pl, int stage, const char *name) {
    pl_study_task *v = realloc(pl->tasks, (pl->n_tasks + 1) * sizeof *v);
    if (!v) return NULL;
    pl->tasks = v;
    pl_study_task *t = &v[pl->n_tasks++];
    memset(t, 0, sizeof *t);
    t->stage = stage;
    t->training = t->corpus = t->test = -1;
    t->soft_from = -1;
    snprintf(t->name, sizeof t->name, "%s", name);
    return t;
}

static pl_status task_dep(pl_study_task *t, size_t dep) {
    if (t->n_deps >= PL_STUDY_MAX_DEPS) return pl_error(PL_ERR_RANGE, "study: task %s has too many inputs", t->name);
    t->deps[t->n_deps++] = dep;
    return PL_OK;
}

static pl_status task_out(pl_study_task *t, const char *file) {
    if (t->n_outputs >= PL_STUDY_MAX_OUT) return pl_error(PL_ERR_INTERNAL, "study: too many outputs");
    snprintf(t->outputs[t->n_outputs++], sizeof t->outputs[0], "%s", file);
    return PL_OK;
}

static long find_corpus(const pl_study_config *c, const char *name) {
    for (size_t i = 0; i < c->n_corpora; i++)
        if (!strcmp(c->corpora[i].name, name)) return (long)i;
    return -1;
}

static int is_llm(pl_study_family f) { return f != PL_FAM_LEXICAL_NB; }

/* The JSON config fragment of a task, printed canonically. */
static pl_status task_config(pl_study_task *t, cJSON *frag) {
    if (!frag) return pl_error(PL_ERR_NOMEM, "out of memory");
    char *s = cJSON_PrintUnformatted(frag);
    cJSON_Delete(frag);
    if (!s) return pl_error(PL_ERR_NOMEM, "out of memory");
    t->config = pl_study_strdup(s);
    cJSON_free(s);
    return t->config ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
}

static cJSON *model_json(const pl_study_model *m) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddStringToObject(o, "family", pl_study_family_name(m->family));
    cJSON_AddStringToObject(o, "dtype", m->dtype);
    if (m->bf16) cJSON_AddStringToObject(o, "compute", "bf16");
    return o;
}

static cJSON *sources_json(char *const *s, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(s[i]));
    return a;
}

/* Chain-of-thought fine-tuning needs a rationale (meta.rationale, a
 * non-empty string) on every labelled record it trains on. Count, per
 * training corpus, the labelled records of its source that lack one; when
 * any do, tr->unavailable names those corpora. A corpus file that cannot be
 * read is left to the data stage, which reports it. */
static pl_status cot_rationale_check(const pl_study_config *c, pl_study_training *tr) {
    pl_buf why = {0};
    pl_status st = PL_OK;
    for (size_t k = 0; k < tr->n_sources && !st; k++) {
        long ci = find_corpus(c, tr->sources[k]);
        if (ci < 0) continue;
        const pl_study_corpus *co = &c->corpora[ci];
        pl_records rs = {0};
        if (pl_records_read_jsonl(co->path, &rs)) {
            pl_error_clear();
            pl_records_free(&rs);
            continue;
        }
        size_t n_lab = 0, n_with = 0;
        for (size_t i = 0; i < rs.n; i++) {
            const pl_record *r = &rs.v[i];
            if ((r->label != 0 && r->label != 1) || (co->source[0] && strcmp(r->source, co->source))) continue;
            n_lab++;
            const cJSON *ra = r->meta ? cJSON_GetObjectItemCaseSensitive(r->meta, "rationale") : NULL;
            n_with += cJSON_IsString(ra) && ra->valuestring[0];
        }
        pl_records_free(&rs);
        if (n_with == n_lab) continue;
        st = pl_buf_printf(&why, "%s%s (%zu of %zu labelled records have one)", why.len ? "; " : "", co->name, n_with,
                           n_lab);
    }
    if (!st && why.len) {
        pl_buf msg = {0};
        st = pl_buf_printf(&msg, "chain-of-thought needs a rationale (meta.rationale) on every training record; "
                                 "corpora without them: %s", why.data);
        if (!st) tr->unavailable = msg.data;
        else pl_buf_free(&msg);
    }
    pl_buf_free(&why);
    return st;
}

pl_status pl_study_plan_build(const pl_study_config *c, const char *out, pl_study_plan *pl) {
    memset(pl, 0, sizeof *pl);
    pl->cfg = c;
    pl->out = pl_study_strdup(out);
    if (!pl->out) return pl_error(PL_ERR_NOMEM, "out of memory");
    pl_status st = expand_trainings(c, pl);
    if (st) return st;
    char name[PL_STUDY_NAME_MAX];

    /* data/<corpus> */
    pl->data_task = calloc(c->n_corpora, sizeof *pl->data_task);
    if (!pl->data_task) return pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < c->n_corpora; i++) {
        snprintf(name, sizeof name, "data/%s", c->corpora[i].name);
        pl_study_task *t = new_task(pl, PL_STAGE_DATA, name);
        if (!t) return pl_error(PL_ERR_NOMEM, "out of memory");
        pl->data_task[i] = pl->n_tasks - 1;
        t->corpus = (long)i;
        snprintf(t->dir, sizeof t->dir, "data/%s", c->corpora[i].name);
        snprintf(t->input, sizeof t->input, "%s", c->corpora[i].path);
        cJSON *f = cJSON_CreateObject();
        if (f) {
            cJSON_AddStringToObject(f, "source", c->corpora[i].source);
            cJSON_AddNumberToObject(f, "max", (double)c->corpora[i].max);
            cJSON_AddNumberToObject(f, "seed", (double)c->seed);
            cJSON_AddNumberToObject(f, "test_frac", c->test_frac);
            cJSON_AddNumberToObject(f, "val_frac", c->val_frac);
            cJSON_AddNumberToObject(f, "max_test", (double)c->max_test);
        }
        if ((st = task_config(t, f)) || (st = task_out(t, "train.jsonl")) || (st = task_out(t, "val.jsonl")) ||
            (st = task_out(t, "test.jsonl")))
            return st;
    }
    /* data/profile */
    {
        pl_study_task *t = new_task(pl, PL_STAGE_DATA, "data/profile");
        if (!t) return pl_error(PL_ERR_NOMEM, "out of memory");
        pl->profile_task = pl->n_tasks - 1;
        snprintf(t->dir, sizeof t->dir, "data/_profile");
        for (size_t i = 0; i < c->n_corpora && !st; i++) st = task_dep(t, pl->data_task[i]);
        cJSON *f = cJSON_CreateObject();
        if (f) cJSON_AddNumberToObject(f, "seed", (double)c->seed);
        if (f) cJSON_AddNumberToObject(f, "nb_alpha", c->hyper.nb_alpha);
        if (f) cJSON_AddNumberToObject(f, "distinctive_top", PL_STUDY_PROFILE_TOP);
        if (st || (st = task_config(t, f)) || (st = task_out(t, "profile.json")) || (st = task_out(t, "audit.json")))
            return st;
    }
    /* per training: train, eval per test corpus, explain, interp */
    for (size_t r = 0; r < pl->n_trainings; r++) {
        pl_study_training *tr = &pl->trainings[r];
        const pl_study_model *m = &c->models[tr->model];
        const pl_study_paradigm *pd = &c->paradigms[tr->paradigm];
        const char *na = NULL; /* why the model side cannot run */
        int cot = pd->kind == PL_PARA_COT;
        if (cot && !is_llm(m->family))
            na = "chain-of-thought does not apply to lexical-nb (it generates no text)";
        else if (cot) {
            if ((st = cot_rationale_check(c, tr))) return st;
            na = tr->unavailable;
        } else if (pd->kind == PL_PARA_ZERO_SHOT && !is_llm(m->family))
            na = "zero-shot does not apply to lexical-nb (it has no pre-trained knowledge to use untrained)";

        long train_idx = -1;
        if (pd->kind != PL_PARA_ZERO_SHOT) {
            snprintf(name, sizeof name, "train/%s/%s", m->name, tr->name);
            pl_study_task *t = new_task(pl, PL_STAGE_TRAIN, name);
            if (!t) return pl_error(PL_ERR_NOMEM, "out of memory");
            train_idx = (long)pl->n_tasks - 1;
            t->training = (long)r;
            snprintf(t->dir, sizeof t->dir, "runs/%s/%s/train", m->name, tr->name);
            t->unavailable = na;
            if (is_llm(m->family)) snprintf(t->input, sizeof t->input, "%s", m->path);
            for (size_t k = 0; k < tr->n_sources && !st; k++) st = task_dep(t, pl->data_task[find_corpus(c, tr->sources[k])]);
            cJSON *f = cJSON_CreateObject();
            if (f) {
                cJSON_AddItemToObject(f, "model", model_json(m));
                cJSON_AddItemToObject(f, "train_sources", sources_json(tr->sources, tr->n_sources));
                cJSON_AddStringToObject(f, "paradigm", pd->spec);
                cJSON *h = cJSON_AddObjectToObject(f, "hyper");
                if (h && is_llm(m->family)) {
                    cJSON_AddNumberToObject(h, "lr", c->hyper.lr);
                    cJSON_AddNumberToObject(h, "epochs", c->hyper.epochs);
                    cJSON_AddNumberToObject(h, "lora_rank", c->hyper.lora_rank);
                    cJSON_AddNumberToObject(h, "lora_alpha", c->hyper.lora_alpha);
                    cJSON_AddNumberToObject(h, "targets", c->hyper.targets);
                    if (c->hyper.min_steps) cJSON_AddNumberToObject(h, "min_steps", c->hyper.min_steps);
                    cJSON_AddNumberToObject(h, "batch", c->hyper.batch);
                    cJSON_AddNumberToObject(h, "max_tokens", c->hyper.max_tokens);
                    cJSON_AddNumberToObject(h, "seed", (double)c->seed);
                    if (cot) cJSON_AddStringToObject(h, "objective", "lm: rationale + label word");
                } else if (h) {
                    cJSON_AddNumberToObject(h, "nb_alpha", c->hyper.nb_alpha);
                }
            }
            if (st || (st = task_config(t, f)) ||
                (st = task_out(t, is_llm(m->family) ? "adapter.gguf" : "model.nb")) || (st = task_out(t, "train.json")))
                return st;
        }
        /* eval per test corpus */
        const char *na_eval = na; /* LLM zero-shot scoring runs (llm.c) */
        size_t first_eval = pl->n_tasks;
        for (size_t k = 0; k < c->n_test; k++) {
            snprintf(name, sizeof name, "eval/%s/%s/%s", m->name, tr->name, c->test[k]);
            pl_study_task *t = new_task(pl, PL_STAGE_EVAL, name);
            if (!t) return pl_error(PL_ERR_NOMEM, "out of memory");
            t->training = (long)r;
            t->test = find_corpus(c, c->test[k]);
            t->unavailable = na_eval;
            if (is_llm(m->family)) snprintf(t->input, sizeof t->input, "%s", m->path);
            snprintf(t->dir, sizeof t->dir, "runs/%s/%s/eval/%s", m->name, tr->name, c->test[k]);
            if (train_idx >= 0) st = task_dep(t, (size_t)train_idx);
            if (!st) st = task_dep(t, pl->data_task[t->test]);
            cJSON *f = cJSON_CreateObject();
            if (f) cJSON_AddItemToObject(f, "model", model_json(m));
            if (f) cJSON_AddStringToObject(f, "training", tr->name);
            if (f) cJSON_AddItemToObject(f, "train_sources", sources_json(tr->sources, tr->n_sources));
            if (f && cot) cJSON_AddStringToObject(f, "scoring", "chain-of-thought");
            if (f && cot) cJSON_AddNumberToObject(f, "cot_max_new", PL_COT_MAX_NEW);
            if (st || (st = task_config(t, f)) || (st = task_out(t, "predictions.jsonl")) || (st = task_out(t, "run.json")))
                return st;
        }
        size_t n_eval = pl->n_tasks - first_eval;
        /* explain */
        {
            snprintf(name, sizeof name, "explain/%s/%s", m->name, tr->name);
            pl_study_task *t = new_task(pl, PL_STAGE_EXPLAIN, name);
            if (!t) return pl_error(PL_ERR_NOMEM, "out of memory");
            t->training = (long)r;
            t->unavailable = na;
            snprintf(t->dir, sizeof t->dir, "runs/%s/%s/explain", m->name, tr->name);
            if (train_idx >= 0) st = task_dep(t, (size_t)train_idx);
            for (size_t k = 0; k < n_eval && !st; k++) st = task_dep(t, first_eval + k);
            if (!st) st = task_dep(t, pl->profile_task);
            t->soft_from = t->n_deps - 1; /* the profile is optional */
            if (is_llm(m->family)) snprintf(t->input, sizeof t->input, "%s", m->path);
            cJSON *f = cJSON_CreateObject();
            if (f) {
                cJSON_AddItemToObject(f, "model", model_json(m));
                cJSON_AddNumberToObject(f, "max_tokens", c->hyper.max_tokens);
                cJSON_AddStringToObject(f, "method", c->explain_method);
                cJSON_AddNumberToObject(f, "examples", (double)c->explain_examples);
                cJSON_AddNumberToObject(f, "max_evals", (double)c->explain_max_evals);
                cJSON_AddNumberToObject(f, "top_k", (double)c->explain_top_k);
                cJSON_AddNumberToObject(f, "seed", (double)c->seed);
            }
            if (st || (st = task_config(t, f)) || (st = task_out(t, "explain.json"))) return st;
            if (c->explain_examples == 0) t->unavailable = "explain.examples is 0 in the config";
            if (cot && !na && is_llm(m->family)) t->unavailable = PL_STUDY_COT_NA;
        }
        /* interp */
        {
            snprintf(name, sizeof name, "interp/%s/%s", m->name, tr->name);
            pl_study_task *t = new_task(pl, PL_STAGE_INTERP, name);
            if (!t) return pl_error(PL_ERR_NOMEM, "out of memory");
            t->training = (long)r;
            t->unavailable = !is_llm(m->family) ? "not applicable to lexical-nb (no layers, heads or residual stream)"
                             : na ? na
                             : cot ? PL_STUDY_COT_NA
                             : c->interp_probe_examples == 0 ? "interp.probe_examples is 0 in the config"
                                                             : NULL;
            snprintf(t->dir, sizeof t->dir, "runs/%s/%s/interp", m->name, tr->name);
            if (is_llm(m->family)) snprintf(t->input, sizeof t->input, "%s", m->path);
            if (train_idx >= 0) st = task_dep(t, (size_t)train_idx);
            for (size_t k = 0; k < c->n_test && !st; k++) st = task_dep(t, pl->data_task[find_corpus(c, c->test[k])]);
            cJSON *f = cJSON_CreateObject();
            if (f) cJSON_AddNumberToObject(f, "probe_examples", (double)c->interp_probe_examples);
            if (f) cJSON_AddNumberToObject(f, "patch_pairs", (double)c->interp_patch_pairs);
            if (f) cJSON_AddNumberToObject(f, "seed", (double)c->seed);
            if (f) cJSON_AddStringToObject(f, "shortcut_hint", c->shortcut_hint ? c->shortcut_hint : "");
            if (f) cJSON_AddItemToObject(f, "model", model_json(m));
            if (f) cJSON_AddNumberToObject(f, "max_tokens", (double)c->hyper.max_tokens);
            if (st || (st = task_config(t, f)) || (st = task_out(t, "interp.json"))) return st;
        }
    }
    /* diagnose and report: soft dependencies on everything they read */
    for (int stage = PL_STAGE_DIAGNOSE; stage <= PL_STAGE_REPORT; stage++) {
        pl_study_task *t = new_task(pl, stage, stage == PL_STAGE_DIAGNOSE ? "diagnose" : "report");
        if (!t) return pl_error(PL_ERR_NOMEM, "out of memory");
        snprintf(t->dir, sizeof t->dir, "%s", stage == PL_STAGE_DIAGNOSE ? "diagnose" : ".");
        size_t self = pl->n_tasks - 1;
        t->soft_from = 0;
        t->many_deps = calloc(self, sizeof *t->many_deps);
        if (!t->many_deps) return pl_error(PL_ERR_NOMEM, "out of memory");
        for (size_t k = 0; k < self; k++) {
            int s = pl->tasks[k].stage;
            if (s == PL_STAGE_EVAL || s == PL_STAGE_EXPLAIN || s == PL_STAGE_INTERP || s == PL_STAGE_DIAGNOSE ||
                k == pl->profile_task)
                t->many_deps[t->n_many++] = k;
        }
        cJSON *f = cJSON_CreateObject();
        if (f) cJSON_AddNumberToObject(f, "bootstrap", (double)c->n_boot);
        if (f) cJSON_AddNumberToObject(f, "seed", (double)c->seed);
        if (f) cJSON_AddStringToObject(f, "name", c->name);
        if (f) cJSON_AddStringToObject(f, "shortcut_hint", c->shortcut_hint);
        if ((st = task_config(t, f))) return st;
        if (stage == PL_STAGE_DIAGNOSE) {
            pl->diagnose_task = self;
            st = task_out(t, "diagnosis.json");
        } else {
            pl->report_task = self;
            if (!(st = task_out(t, "report.html"))) st = task_out(t, "report.json");
        }
        if (st) return st;
    }
    return PL_OK;
}

void pl_study_plan_free(pl_study_plan *pl) {
    for (size_t i = 0; i < pl->n_tasks; i++) {
        free(pl->tasks[i].config);
        free(pl->tasks[i].many_deps);
        free(pl->tasks[i].why);
    }
    free(pl->tasks);
    for (size_t i = 0; i < pl->n_trainings; i++) {
        free(pl->trainings[i].name);
        free(pl->trainings[i].unavailable);
        for (size_t k = 0; k < pl->trainings[i].n_sources; k++) free(pl->trainings[i].sources[k]);
        free(pl->trainings[i].sources);
    }
    free(pl->trainings);
    free(pl->data_task);
    free(pl->out);
    memset(pl, 0, sizeof *pl);
}

/* Dependencies of a task as one list (deps[] then many_deps[]). */
static size_t n_all_deps(const pl_study_task *t) { return t->n_deps + t->n_many; }
static size_t dep_at(const pl_study_task *t, size_t k) { return k < t->n_deps ? t->deps[k] : t->many_deps[k - t->n_deps]; }
static int dep_soft(const pl_study_task *t, size_t k) { return t->soft_from >= 0 && k >= (size_t)t->soft_from; }

/* ---- cache keys ---------------------------------------------------------------- */

static void key_add(uint64_t *key, const void *p, size_t n) {
    uint64_t h = pl_hash64(p, n, *key);
    *key = pl_hash64(&h, sizeof h, 0x5157u);
}

/* The key of task t; every hard dependency must be done. */
static pl_status task_key(const pl_study_plan *pl, const pl_study_task *t, uint64_t *out) {
    uint64_t key = 0x706c7374u;
    key_add(&key, PL_VERSION, strlen(PL_VERSION));
    key_add(&key, PL_STUDY_CACHE_REV, strlen(PL_STUDY_CACHE_REV));
    key_add(&key, t->name, strlen(t->name));
    key_add(&key, t->config, strlen(t->config));
    if (t->input[0]) {
        uint64_t h;
        pl_status st = pl_study_hash_input(t->input, &h);
        if (st) return pl_error_wrap(st, "%s: input", t->name);
        key_add(&key, &h, sizeof h);
    }
    for (size_t k = 0; k < n_all_deps(t); k++) {
        const pl_study_task *d = &pl->tasks[dep_at(t, k)];
        key_add(&key, d->name, strlen(d->name));
        if (d->state != PL_TASK_RAN && d->state != PL_TASK_CACHED) {
            key_add(&key, "absent", 6);
            continue;
        }
        for (size_t o = 0; o < d->n_outputs; o++) {
            char rel[PL_STUDY_NAME_MAX * 2];
            snprintf(rel, sizeof rel, "%s/%s/%s", pl->out, d->dir, d->outputs[o]);
            uint64_t h;
            pl_status st = pl_hash_file(rel, &h);
            if (st) return pl_error_wrap(st, "%s: output of %s", t->name, d->name);
            key_add(&key, &h, sizeof h);
        }
    }
    *out = key;
    return PL_OK;
}

/* Content hash of an external input: a file, or every regular file of a
 * directory (an HF checkpoint) by sorted name. */
pl_status pl_study_hash_input(const char *path, uint64_t *out) {
    struct stat sb;
    if (stat(path, &sb) != 0) return pl_error(PL_ERR_IO, "%s: cannot stat (does it exist?)", path);
    if (!S_ISDIR(sb.st_mode)) return pl_hash_file(path, out);
    return pl_study_hash_dir(path, out);
}

static void state_path(const pl_study_plan *pl, const pl_study_task *t, char *buf, size_t n) {
    char flat[PL_STUDY_NAME_MAX];
    snprintf(flat, sizeof flat, "%s", t->name);
    for (char *c = flat; *c; c++)
        if (*c == '/') *c = '~';
    snprintf(buf, n, "%s/.cache/%s.json", pl->out, flat);
}

/* 1 when the stored state has this key and every output exists. */
static int cached(const pl_study_plan *pl, const pl_study_task *t, uint64_t key) {
    char path[PL_STUDY_NAME_MAX * 2];
    state_path(pl, t, path, sizeof path);
    char *data = NULL;
    size_t len = 0;
    if (pl_read_file(path, &data, &len)) {
        pl_error_clear();
        return 0;
    }
    cJSON *j = cJSON_ParseWithLength(data, len);
    free(data);
    const cJSON *k = j ? cJSON_GetObjectItemCaseSensitive(j, "key") : NULL;
    char want[32];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)key);
    int ok = cJSON_IsString(k) && !strcmp(k->valuestring, want);
    cJSON_Delete(j);
    for (size_t o = 0; ok && o < t->n_outputs; o++) {
        char out[PL_STUDY_NAME_MAX * 2];
        snprintf(out, sizeof out, "%s/%s/%s", pl->out, t->dir, t->outputs[o]);
        ok = pl_study_file_exists(out);
    }
    return ok;
}

static pl_status save_state(const pl_study_plan *pl, const pl_study_task *t, uint64_t key, double secs) {
    char path[PL_STUDY_NAME_MAX * 2], dir[PL_STUDY_NAME_MAX * 2];
    snprintf(dir, sizeof dir, "%s/.cache", pl->out);
    pl_status st = pl_mkdirs(dir);
    if (st) return st;
    state_path(pl, t, path, sizeof path);
    cJSON *j = cJSON_CreateObject();
    char k[32];
    snprintf(k, sizeof k, "%016llx", (unsigned long long)key);
    if (!j || !cJSON_AddStringToObject(j, "key", k) || !cJSON_AddStringToObject(j, "task", t->name) ||
        !cJSON_AddStringToObject(j, "version", PL_VERSION) || !cJSON_AddNumberToObject(j, "seconds", secs)) {
        cJSON_Delete(j);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    st = pl_json_write_atomic(path, j);
    cJSON_Delete(j);
    return st;
}

/* ---- cost estimate ------------------------------------------------------------ */

/* Records (lines) and bytes of a corpus file, counted once per process. */
typedef struct {
    char path[1024];
    double records, bytes;
} corpus_stat;

static corpus_stat g_cstat[64];
static int g_n_cstat;

static corpus_stat file_stat(const char *path) {
    for (int i = 0; i < g_n_cstat; i++)
        if (!strcmp(g_cstat[i].path, path)) return g_cstat[i];
    corpus_stat cs;
    memset(&cs, 0, sizeof cs);
    snprintf(cs.path, sizeof cs.path, "%s", path);
    FILE *f = fopen(path, "rb");
    if (f) {
        char buf[1 << 16];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
            cs.bytes += (double)n;
            for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + n - p))) != NULL; p++) cs.records += 1;
        }
        fclose(f);
    }
    if (g_n_cstat < (int)(sizeof g_cstat / sizeof *g_cstat)) g_cstat[g_n_cstat++] = cs;
    return cs;
}

/* Records of corpus k the study keeps (its `max` cap applied). */
static double corpus_records(const pl_study_config *c, size_t k) {
    corpus_stat cs = file_stat(c->corpora[k].path);
    double n = cs.records;
    if (c->corpora[k].max > 0 && n > (double)c->corpora[k].max) n = (double)c->corpora[k].max;
    return n;
}

/* Tokens one email of corpus k takes in a prompt: bytes / 4 per record, cut
 * at max_tokens (LLMs), plus ~64 tokens of instruction template. */
static double email_tokens(const pl_study_config *c, size_t k, int llm) {
    corpus_stat cs = file_stat(c->corpora[k].path);
    double t = cs.records > 0 ? cs.bytes / cs.records / 4.0 : 0.0;
    if (llm && t > (double)c->hyper.max_tokens) t = (double)c->hyper.max_tokens;
    return llm ? t + 64.0 : t;
}

static void task_cost(const pl_study_plan *pl, const pl_study_task *t, double *flops) {
    const pl_study_config *c = pl->cfg;
    *flops = 0;
    double params = 0;
    int llm = 0, cot_task = 0;
    if (t->training >= 0) {
        cot_task = c->paradigms[pl->trainings[t->training].paradigm].kind == PL_PARA_COT;
        const pl_study_model *m = &c->models[pl->trainings[t->training].model];
        llm = is_llm(m->family);
        params = llm ? pl_study_model_params(m->path) : 1.0; /* NB: ~1 op per token */
    }
    const double split_train = 1.0 - c->test_frac - c->val_frac;
    switch (t->stage) {
    case PL_STAGE_DATA: *flops = 0; break;
    case PL_STAGE_TRAIN: {
        double tok = 0, ex = 0;
        const pl_study_training *tr = &pl->trainings[t->training];
        for (size_t k = 0; k < tr->n_sources; k++) {
            size_t ci = find_corpus(c, tr->sources[k]);
            double n = corpus_records(c, ci) * split_train;
            ex += n;
            tok += n * (email_tokens(c, ci, llm) + (cot_task ? 32.0 : 0.0)); /* CoT: ~32 answer tokens */
        }
        double epochs = c->hyper.epochs;
        if (llm && c->hyper.min_steps > 0 && ex > 0) {
            double per_epoch = ceil(ex / c->hyper.batch);
            double need = ceil(c->hyper.min_steps / per_epoch);
            if (need > epochs) epochs = need;
        }
        *flops = 6.0 * params * tok * epochs; /* forward + backward ~ 6 N per token */
        break;
    }
    case PL_STAGE_EVAL: {
        double n = corpus_records(c, t->test) * c->test_frac;
        if (c->max_test > 0 && n > (double)c->max_test) n = (double)c->max_test;
        /* CoT: up to PL_COT_MAX_NEW generated tokens per email, one forward each */
        *flops = 2.0 * params * n * (email_tokens(c, t->test, llm) + (cot_task ? PL_COT_MAX_NEW : 0));
        break;
    }
    case PL_STAGE_EXPLAIN: {
        double per_email = 0, n = 0;
        for (size_t k = 0; k < c->n_test; k++) {
            per_email += email_tokens(c, find_corpus(c, c->test[k]), llm);
            n += 1;
        }
        per_email = n > 0 ? per_email / n : 0;
        size_t evals = c->explain_max_evals ? c->explain_max_evals : 500;
        *flops = 2.0 * params * per_email * (double)evals * (double)c->explain_examples;
        break;
    }
    case PL_STAGE_INTERP:
        /* analysis 1 + ablation 9 forwards per email; patching ~32 prompt forwards per pair (docs/study.md) */
        *flops = 2.0 * params * 256.0 * (double)(10 * c->interp_probe_examples + 32 * c->interp_patch_pairs);
        break;
    default: *flops = 0;
    }
}

/* ---- running ------------------------------------------------------------------ */

static pl_status run_task(pl_study_plan *pl, pl_study_task *t) {
    char dir[PL_STUDY_NAME_MAX * 2];
    snprintf(dir, sizeof dir, "%s/%s", pl->out, t->dir);
    pl_status st = pl_mkdirs(dir);
    if (st) return st;
    switch (t->stage) {
    case PL_STAGE_DATA:
        return t->corpus >= 0 ? pl_study_stage_data(pl, t, dir) : pl_study_stage_profile(pl, t, dir);
    case PL_STAGE_TRAIN:
        return pl->cfg->models[pl->trainings[t->training].model].family == PL_FAM_LEXICAL_NB
                   ? pl_study_stage_train(pl, t, dir)
                   : pl_study_llm_train(pl, t, dir);
    case PL_STAGE_EVAL:
        return pl->cfg->models[pl->trainings[t->training].model].family == PL_FAM_LEXICAL_NB
                   ? pl_study_stage_eval(pl, t, dir)
                   : pl_study_llm_eval(pl, t, dir);
    case PL_STAGE_INTERP: return pl_study_llm_interp(pl, t, dir);
    case PL_STAGE_EXPLAIN: return pl_study_stage_explain(pl, t, dir);
    case PL_STAGE_DIAGNOSE:
    case PL_STAGE_REPORT: return pl_study_stage_final(pl, t, dir);
    default: return pl_error(PL_ERR_UNSUPPORTED, "%s: no implementation in this build", t->name);
    }
}

static const char *state_name(int s) {
    switch (s) {
    case PL_TASK_RAN: return "ran";
    case PL_TASK_CACHED: return "cached";
    case PL_TASK_UNAVAILABLE: return "unavailable";
    case PL_TASK_FAILED: return "FAILED";
    case PL_TASK_BLOCKED: return "blocked";
    case PL_TASK_WOULD_RUN: return "would run";
    default: return "pending";
    }
}

pl_status pl_study_execute(pl_study_plan *pl, const pl_study_opts *o, pl_study_summary *sum) {
    memset(sum, 0, sizeof *sum);
    sum->n_tasks = pl->n_tasks;
    double t_start = pl_time_now();
    pl_status first = PL_OK;
    char first_msg[1024] = "";
    if (!o->dry_run) {
        pl_status st = pl_mkdirs(pl->out);
        if (st) return st;
    }
    size_t done_tasks = 0;
    for (int stage = 0; stage < PL_STAGE_COUNT; stage++) {
        size_t n_stage = 0;
        for (size_t i = 0; i < pl->n_tasks; i++) n_stage += pl->tasks[i].stage == stage;
        pl_progress prog;
        if (o->progress && !o->dry_run) pl_progress_begin(&prog, pl_study_stage_name(stage), (int64_t)n_stage, "tasks");
        size_t k_stage = 0;
        for (size_t i = 0; i < pl->n_tasks; i++) {
            pl_study_task *t = &pl->tasks[i];
            if (t->stage != stage) continue;
            k_stage++;
            done_tasks++;
            double t0 = pl_time_now();
            /* hard dependencies */
            int would = 0;
            const char *blocked_by = NULL;
            for (size_t k = 0; k < n_all_deps(t); k++) {
                const pl_study_task *d = &pl->tasks[dep_at(t, k)];
                if (d->state == PL_TASK_WOULD_RUN) would = 1;
                else if (d->state != PL_TASK_RAN && d->state != PL_TASK_CACHED && !dep_soft(t, k) && !blocked_by)
                    blocked_by = d->name;
            }
            if (t->unavailable) {
                t->state = PL_TASK_UNAVAILABLE;
            } else if (blocked_by) {
                t->state = PL_TASK_BLOCKED;
                size_t n = strlen(blocked_by) + 64;
                t->why = malloc(n);
                if (t->why) snprintf(t->why, n, "needs %s, which did not complete", blocked_by);
            } else if (o->dry_run && would) {
                t->state = PL_TASK_WOULD_RUN;
            } else {
                uint64_t key = 0;
                pl_status st = task_key(pl, t, &key);
                int force = o->force_stage >= 0 && stage >= o->force_stage;
                if (!st && !force && cached(pl, t, key)) {
                    t->state = PL_TASK_CACHED;
                } else if (!st && o->dry_run) {
                    t->state = PL_TASK_WOULD_RUN;
                } else {
                    if (!st) st = run_task(pl, t);
                    if (!st) st = save_state(pl, t, key, pl_time_now() - t0);
                    if (st) {
                        t->state = PL_TASK_FAILED;
                        t->why = pl_study_strdup(pl_errmsg());
                        if (!first) {
                            first = st;
                            snprintf(first_msg, sizeof first_msg, "%s", pl_errmsg());
                        }
                    } else {
                        t->state = PL_TASK_RAN;
                    }
                }
            }
            double secs = pl_time_now() - t0, flops = 0;
            if (t->state == PL_TASK_WOULD_RUN) {
                task_cost(pl, t, &flops);
                sum->est_flops += flops;
            }
            switch (t->state) {
            case PL_TASK_RAN: sum->n_ran++; break;
            case PL_TASK_CACHED: sum->n_cached++; break;
            case PL_TASK_UNAVAILABLE:
            case PL_TASK_BLOCKED: sum->n_unavailable++; break;
            case PL_TASK_FAILED: sum->n_failed++; break;
            default: break;
            }
            if (o->log) {
                if (o->dry_run)
                    fprintf(o->log, "  %-9s %-44s %-11s", pl_study_stage_name(stage), t->name, state_name(t->state));
                else
                    fprintf(o->log, "[%zu/%zu] %-44s %-11s", done_tasks, pl->n_tasks, t->name, state_name(t->state));
                if (t->state == PL_TASK_RAN) fprintf(o->log, " %.2fs", secs);
                if (t->state == PL_TASK_WOULD_RUN)
                    fprintf(o->log, " ~%.3g FLOP, ~%.3g s", flops, flops / pl->cfg->flops_per_second);
                if (t->state == PL_TASK_UNAVAILABLE) fprintf(o->log, " (%s)", t->unavailable);
                if ((t->state == PL_TASK_BLOCKED || t->state == PL_TASK_FAILED) && t->why) fprintf(o->log, " (%s)", t->why);
                fputc('\n', o->log);
                fflush(o->log);
            }
            if (o->progress && !o->dry_run) pl_progress_update(&prog, (int64_t)k_stage);
        }
        if (o->progress && !o->dry_run) pl_progress_end(&prog);
    }
    sum->est_seconds = sum->est_flops / pl->cfg->flops_per_second;
    sum->seconds = pl_time_now() - t_start;
    if (first) return pl_error(first, "%s", first_msg);
    return PL_OK;
}

pl_status pl_study_run(const pl_study_config *c, const char *out_dir, const pl_study_opts *o, pl_study_summary *sum) {
    pl_study_plan pl;
    pl_status st = pl_study_plan_build(c, out_dir, &pl);
    if (!st) st = pl_study_execute(&pl, o, sum);
    pl_study_plan_free(&pl);
    return st;
}

/* ---- helpers used by the stages ----------------------------------------------- */

pl_status pl_study_read_parts(const pl_study_plan *pl, const char *corpus, const char *part, pl_records *rs) {
    long ci = find_corpus(pl->cfg, corpus);
    if (ci < 0) return pl_error(PL_ERR_NOT_FOUND, "study: no corpus '%s'", corpus);
    char path[PL_STUDY_NAME_MAX * 2];
    snprintf(path, sizeof path, "%s/%s/%s.jsonl", pl->out, pl->tasks[pl->data_task[ci]].dir, part);
    return pl_records_read_jsonl(path, rs);
}

/* data/<corpus>: read, keep labelled records of the chosen source, rename the
 * source to the corpus name, cap, split (near-duplicate groups stay
 * together), cap the test part. */
pl_status pl_study_stage_data(pl_study_plan *pl, pl_study_task *t, const char *dir) {
    const pl_study_config *c = pl->cfg;
    const pl_study_corpus *k = &c->corpora[t->corpus];
    pl_records all = {0}, rs = {0};
    pl_status st = pl_records_read_jsonl(k->path, &all);
    for (size_t i = 0; i < all.n && !st; i++) {
        pl_record *r = &all.v[i];
        if (r->label != 0 && r->label != 1) continue;
        if (k->source[0] && strcmp(r->source, k->source)) continue;
        st = pl_record_set(&r->source, k->name);
        if (!st) st = pl_records_push(&rs, r);
        if (!st) pl_record_init(r);
    }
    pl_records_free(&all);
    if (!st && rs.n == 0)
        st = pl_error(PL_ERR_INVALID, "%s: corpus '%s' has no labelled records%s%s", k->path, k->name,
                      k->source[0] ? " of source " : "", k->source);
    /* cap: a seeded sample, in file order */
    if (!st && k->max && rs.n > k->max) {
        size_t *idx = malloc(rs.n * sizeof *idx);
        if (!idx) st = pl_error(PL_ERR_NOMEM, "out of memory");
        else {
            for (size_t i = 0; i < rs.n; i++) idx[i] = i;
            pl_rng rng;
            pl_rng_seed(&rng, c->seed ^ pl_hash64(k->name, strlen(k->name), 1));
            pl_rng_shuffle(&rng, idx, rs.n, sizeof *idx);
            qsort(idx, k->max, sizeof *idx, cmp_size);
            pl_records kept = {0};
            for (size_t i = 0; i < k->max && !st; i++) {
                st = pl_records_push(&kept, &rs.v[idx[i]]);
                if (!st) pl_record_init(&rs.v[idx[i]]);
            }
            pl_records_free(&rs);
            rs = kept;
            free(idx);
        }
    }
    uint8_t *part = NULL;
    size_t *sel[3] = {NULL, NULL, NULL}, nsel[3] = {0, 0, 0};
    if (!st) {
        part = malloc(rs.n);
        if (!part) st = pl_error(PL_ERR_NOMEM, "out of memory");
    }
    if (!st) {
        pl_split_opts so;
        pl_split_opts_default(&so);
        so.seed = c->seed;
        so.test_frac = c->test_frac;
        so.val_frac = c->val_frac;
        st = pl_split_assign(&rs, &so, part, NULL);
    }
    static const char *const names[3] = {"train.jsonl", "val.jsonl", "test.jsonl"};
    for (int p = 0; p < 3 && !st; p++)
        st = pl_split_select(&rs, part, p, k->name, p == PL_PART_TEST ? c->max_test : 0, c->seed, &sel[p], &nsel[p]);
    for (int p = 0; p < 3 && !st; p++) {
        char *path = pl_study_path(dir, names[p]);
        st = path ? write_subset(path, &rs, sel[p], nsel[p]) : pl_error(PL_ERR_NOMEM, "out of memory");
        free(path);
    }
    if (!st && nsel[PL_PART_TEST] == 0)
        st = pl_error(PL_ERR_INVALID, "%s: corpus '%s' has too few records for a test split", k->path, k->name);
    for (int p = 0; p < 3; p++) free(sel[p]);
    free(part);
    pl_records_free(&rs);
    return st;
}

/* data/profile: style profile over train+val of all corpora, and the
 * label-noise audit with out-of-fold lexical-nb probabilities (5 folds). */
pl_status pl_study_stage_profile(pl_study_plan *pl, pl_study_task *t, const char *dir) {
    (void)t;
    const pl_study_config *c = pl->cfg;
    pl_records rs = {0};
    pl_status st = PL_OK;
    for (size_t i = 0; i < c->n_corpora && !st; i++) {
        st = pl_study_read_parts(pl, c->corpora[i].name, "train", &rs);
        if (!st) st = pl_study_read_parts(pl, c->corpora[i].name, "val", &rs);
    }
    pl_profile prof;
    memset(&prof, 0, sizeof prof);
    cJSON *pj = NULL;
    if (!st) {
        pl_profile_opts po;
        pl_profile_opts_default(&po);
        po.seed = c->seed;
        po.top_k = PL_STUDY_PROFILE_TOP; /* deep enough that shared artifacts show up */
        st = pl_profile_compute(&rs, &po, &prof);
        if (!st) st = pl_profile_to_json(&prof, &pj);
        pl_profile_free(&prof);
    }
    if (!st) {
        char *path = pl_study_path(dir, "profile.json");
        st = path ? pl_json_write_atomic(path, pj) : pl_error(PL_ERR_NOMEM, "out of memory");
        free(path);
    }
    cJSON_Delete(pj);
    if (!st) st = pl_study_audit(c, &rs, dir);
    pl_records_free(&rs);
    return st;
}
