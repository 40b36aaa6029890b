/* study.h — the study runner: a declarative grid of models x training
 * paradigms x test corpora, run stage by stage (data -> train -> eval ->
 * explain -> interp -> diagnose -> report) as a DAG of tasks with a
 * content-hash cache, then an automated diagnosis and the HTML report.
 *
 * The config is JSON (docs/study.md). Validation errors name the JSON path
 * of the bad field ("study.json: models[1].family: ...").
 *
 * Cache: every task has a key = XXH3-64 over the phishlens version, the
 * task's stage and name, its part of the config (canonical JSON), the
 * content of its external input files and the content of its upstream
 * tasks' output files. The key is stored in <task dir>/task.json after the
 * task's outputs were written (atomically), so an interrupted study resumes
 * where it stopped, and a changed input reruns exactly the tasks whose
 * inputs' content changed.
 *
 * Tasks that do not apply (zero-shot or interp for lexical-nb, SHAP and
 * interp for a chain-of-thought training, whose score depends on generated
 * text) or cannot run (a chain-of-thought training on corpora without
 * meta.rationale) are reported as unavailable with the reason; their outputs
 * are never faked, and the diagnosis says "not run" for the parts that need
 * them.
 *
 * Model families: "llama", "mistral", "gemma2" (decoder LLMs, GGUF or HF
 * checkpoints) and "lexical-nb", a multinomial naive Bayes over words — a
 * transparent lexical baseline that runs every model-side stage that has a
 * meaning for it (train, eval, explain), so a study can be carried end to
 * end on a machine without an LLM.
 */
#ifndef PL_STUDY_H
#define PL_STUDY_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "data/data.h"

typedef struct cJSON cJSON;

/* ---- config ------------------------------------------------------------ */

typedef struct {
    char *name;      /* the source name its records get (unique) */
    char *path;      /* records.jsonl (resolved against the config's folder) */
    char *source;    /* only records whose source is this ("" = all) */
    size_t max;      /* at most this many records, seeded sample (0 = all) */
} pl_study_corpus;

typedef enum {
    PL_FAM_LLAMA = 0,
    PL_FAM_MISTRAL,
    PL_FAM_GEMMA2,
    PL_FAM_LEXICAL_NB
} pl_study_family;
const char *pl_study_family_name(pl_study_family f);

typedef struct {
    char *name;
    char *path;      /* GGUF file or HF directory ("" for lexical-nb) */
    pl_study_family family;
    char *dtype;     /* "f32", "bf16", "q8_0", ... ("" = as stored) */
    int bf16;        /* "compute": "bf16": train with --precision bf16 and load with bf16 tiles (AMX) */
} pl_study_model;

typedef enum {
    PL_PARA_ZERO_SHOT = 0,  /* "zero-shot": no training */
    PL_PARA_NARROW,         /* "narrow:<corpus>" */
    PL_PARA_GENERALIST,     /* "generalist" (all corpora) or "generalist:<a>+<b>..." */
    PL_PARA_LOSO,           /* "leave-one-source-out": one training per held-out corpus */
    PL_PARA_COT             /* "chain-of-thought[:<mixture>]" */
} pl_para_kind;

typedef struct {
    pl_para_kind kind;
    char *spec;              /* as written */
    char **sources;          /* training corpora (narrow, generalist, cot) */
    size_t n_sources;
} pl_study_paradigm;

typedef struct {
    double lr;
    int epochs, lora_rank, batch, max_tokens;
    int min_steps;           /* LLM trainings run at least this many optimizer steps (epochs raised); 0 = off */
    double lora_alpha;
    double nb_alpha;         /* lexical-nb Lidstone smoothing */
    unsigned targets;        /* LoRA targets, bit k = pl_tr_target k (default q, v) */
    char *targets_spec;      /* as written ("q,v", "all", ...) */
} pl_study_hyper;

typedef struct {
    char *path;                /* the config file */
    char *base_dir;            /* its folder: relative paths start here */
    char *name;
    uint64_t seed;
    pl_study_corpus *corpora;
    size_t n_corpora;
    pl_study_model *models;
    size_t n_models;
    pl_study_paradigm *paradigms;
    size_t n_paradigms;
    pl_study_hyper hyper;
    char **test;               /* test corpora names (all corpora when absent) */
    size_t n_test;
    double test_frac, val_frac;
    size_t max_test;           /* test emails per corpus (0 = all) */
    int64_t n_boot;            /* bootstrap resamples for CIs */
    char *explain_method;      /* exact | permutation | kernel | partition */
    size_t explain_examples, explain_max_evals, explain_top_k;
    size_t interp_probe_examples, interp_patch_pairs;
    double flops_per_second;   /* dry-run calibration constant */
    char *shortcut_hint;       /* optional: a known planted shortcut text, checked by the diagnosis */
} pl_study_config;

/* Parse and validate. Errors (PL_ERR_FORMAT / PL_ERR_INVALID) name the file
 * and the JSON path: "s.json: paradigms[2]: narrow:foo names no corpus". */
pl_status pl_study_config_parse(const char *json, size_t len, const char *path, pl_study_config *c);
pl_status pl_study_config_load(const char *path, pl_study_config *c);
void pl_study_config_free(pl_study_config *c);

/* ---- lexical baseline (baseline.c) -------------------------------------- */

/* Multinomial naive Bayes over hashed words of subject + body:
 *   score(x) = log(pi_1 / pi_0) + sum_w n_w(x) (log theta_1w - log theta_0w),
 *   theta_cw = (n_cw + alpha) / (n_c + alpha V),
 * V = buckets seen in training; words in unseen buckets contribute 0. The
 * score is a log-odds (nats), p = sigmoid(score). */
#define PL_NB_BITS 18
typedef struct {
    double alpha, prior;       /* prior = log(pi_1 / pi_0) */
    float *llr;                /* [2^PL_NB_BITS] per-bucket log-likelihood ratio (0 = unseen) */
    size_t n_train, n_pos, vocab;
} pl_nb;
pl_status pl_nb_train(const pl_record *const *recs, size_t n, double alpha, pl_nb *m);
void pl_nb_free(pl_nb *m);
/* The bucket of a word (as pl_text_words gives it). */
uint32_t pl_nb_bucket(const char *w, size_t len);
/* The text the model reads: subject + "\n" + body (malloc'd). */
char *pl_nb_text(const pl_record *r);
double pl_nb_score(const pl_nb *m, const char *text);
pl_status pl_nb_save(const pl_nb *m, const char *path);
pl_status pl_nb_load(const char *path, pl_nb *m);

/* ---- the runner ---------------------------------------------------------- */

enum {
    PL_STAGE_DATA = 0,
    PL_STAGE_TRAIN,
    PL_STAGE_EVAL,
    PL_STAGE_EXPLAIN,
    PL_STAGE_INTERP,
    PL_STAGE_DIAGNOSE,
    PL_STAGE_REPORT,
    PL_STAGE_COUNT
};
const char *pl_study_stage_name(int stage);
/* -1 when unknown. */
int pl_study_stage_parse(const char *s);

typedef struct {
    int dry_run;            /* plan and estimate only */
    int force_stage;        /* rerun this stage and every later one (-1 = none) */
    int progress;           /* pl_progress bars on stderr */
    FILE *log;              /* one line per task (NULL = silent) */
} pl_study_opts;
void pl_study_opts_default(pl_study_opts *o);

typedef struct {
    size_t n_tasks, n_ran, n_cached, n_unavailable, n_failed;
    double est_flops, est_seconds;   /* of the tasks that would run */
    double seconds;
} pl_study_summary;

/* Run (or plan) the study into out_dir. Returns the first task failure
 * (the other tasks that do not depend on it still run). */
pl_status pl_study_run(const pl_study_config *c, const char *out_dir, const pl_study_opts *o,
                       pl_study_summary *sum);

/* ---- diagnosis and report (diagnose.c) ------------------------------------ */

/* Inputs of the diagnosis, as paths of stage outputs (NULL = not run). */
typedef struct {
    const pl_study_config *cfg;
    const char *const *run_dirs;     /* eval run directories (predictions.jsonl + run.json) */
    size_t n_run_dirs;
    const char *profile_json;        /* data profile */
    const char *audit_json;          /* label-noise audit */
    const char *const *explain_json; /* [n_explain] one per (model, training) */
    size_t n_explain;
    const char *const *interp_json;  /* [n_interp] */
    size_t n_interp;
    const char *const *not_run;      /* lines "stage X for Y: reason" */
    size_t n_not_run;
} pl_diag_inputs;

/* diagnosis.json: gaps, OOD error features x distinctive tokens, probes,
 * heads, audit, cross-architecture comparison, summary sentences with
 * evidence. *out is a new cJSON object. */
pl_status pl_study_diagnose(const pl_diag_inputs *in, cJSON **out);
/* report.html + report.json into dir from the diagnosis and the same inputs. */
pl_status pl_study_report(const pl_diag_inputs *in, const cJSON *diagnosis, const char *dir);

#endif
