/* study_internal.h — the task DAG shared by runner.c, stages.c and
 * diagnose.c. Not a public header. */
#ifndef PL_STUDY_INTERNAL_H
#define PL_STUDY_INTERNAL_H

#include "explain/explain.h"
#include "study/study.h"

#define PL_STUDY_NAME_MAX 512
#define PL_STUDY_MAX_DEPS 256
#define PL_STUDY_MAX_OUT 4
/* Part of every cache key besides the version: bump it when a stage's
 * output format or algorithm changes, so old caches recompute. */
#define PL_STUDY_CACHE_REV "study-13"
/* distinctive tokens kept per source in the study's data profile */
#define PL_STUDY_PROFILE_TOP 50

enum {
    PL_TASK_PENDING = 0,
    PL_TASK_RAN,
    PL_TASK_CACHED,
    PL_TASK_UNAVAILABLE, /* the stage's code is not in this build, or does not apply */
    PL_TASK_BLOCKED,     /* a hard dependency did not complete */
    PL_TASK_FAILED,
    PL_TASK_WOULD_RUN    /* dry run */
};

/* One paradigm expanded for one model. */
typedef struct {
    size_t model, paradigm;
    char *name;          /* "narrow-bank", "loso-enron", "generalist" */
    char **sources;      /* training corpora */
    size_t n_sources;
    char *unavailable;   /* why its model side cannot run (owned; NULL = it can) */
} pl_study_training;

typedef struct {
    int stage;
    char name[PL_STUDY_NAME_MAX];
    char dir[PL_STUDY_NAME_MAX];   /* relative to the output folder */
    char input[PL_STUDY_NAME_MAX]; /* external input file or folder ("" = none) */
    char *config;                  /* canonical JSON of its config fragment */
    size_t deps[PL_STUDY_MAX_DEPS];
    size_t n_deps;
    size_t *many_deps, n_many;     /* diagnose/report: every task they read */
    long soft_from;                /* deps from this index on are optional (-1 none) */
    char outputs[PL_STUDY_MAX_OUT][64];
    size_t n_outputs;
    long training, corpus, test;   /* indices or -1 */
    const char *unavailable;       /* reason (static string) or NULL */
    int state;
    char *why;                     /* blocked / failed message */
} pl_study_task;

typedef struct {
    const pl_study_config *cfg;
    char *out;
    pl_study_training *trainings;
    size_t n_trainings;
    pl_study_task *tasks;
    size_t n_tasks;
    size_t *data_task;             /* [n_corpora] */
    size_t profile_task, diagnose_task, report_task;
} pl_study_plan;

pl_status pl_study_plan_build(const pl_study_config *c, const char *out, pl_study_plan *pl);
void pl_study_plan_free(pl_study_plan *pl);
pl_status pl_study_execute(pl_study_plan *pl, const pl_study_opts *o, pl_study_summary *sum);

/* helpers */
char *pl_study_strdup(const char *s);
char *pl_study_path(const char *a, const char *b);
int pl_study_file_exists(const char *path);
pl_status pl_study_hash_input(const char *path, uint64_t *out);
pl_status pl_study_hash_dir(const char *path, uint64_t *out);
/* Parameter count of a GGUF file or HF folder (0 when unknown). */
double pl_study_model_params(const char *path);
pl_status pl_study_read_parts(const pl_study_plan *pl, const char *corpus, const char *part, pl_records *rs);

/* stages (runner.c, stages.c) */
pl_status pl_study_stage_data(pl_study_plan *pl, pl_study_task *t, const char *dir);
pl_status pl_study_stage_profile(pl_study_plan *pl, pl_study_task *t, const char *dir);
pl_status pl_study_audit(const pl_study_config *c, const pl_records *rs, const char *dir);
pl_status pl_study_stage_train(pl_study_plan *pl, pl_study_task *t, const char *dir);
pl_status pl_study_stage_eval(pl_study_plan *pl, pl_study_task *t, const char *dir);
pl_status pl_study_stage_explain(pl_study_plan *pl, pl_study_task *t, const char *dir);
pl_status pl_study_llm_train(pl_study_plan *pl, pl_study_task *t, const char *dir);
/* 1 when the task's training is a chain-of-thought paradigm. */
int pl_study_is_cot(const pl_study_plan *pl, const pl_study_task *t);
/* Why SHAP and interp do not run for a chain-of-thought training. */
#define PL_STUDY_COT_NA "not applicable (the score depends on generated text)"
pl_status pl_study_llm_eval(pl_study_plan *pl, pl_study_task *t, const char *dir);
pl_status pl_study_llm_interp(pl_study_plan *pl, pl_study_task *t, const char *dir);
pl_status pl_study_stage_final(pl_study_plan *pl, pl_study_task *t, const char *dir);

/* One explained email: M features with keys (for global aggregation), the
 * explainer's result, the largest deviation from exact values (-1 when
 * there is no exact reference) and display pieces/values (cJSON arrays). */
typedef struct {
    size_t M;
    char **keys;
    pl_xresult res;
    double add_err;
    cJSON *pieces, *vals;
} pl_study_xone;
void pl_study_xone_free(pl_study_xone *o);
/* Run the study's explainer over a game of M features: `method` with
 * max_evals and seed; exact falls back to partition above 20 features;
 * partition uses a balanced binary tree. */
pl_status pl_study_explain_game(pl_value_fn fn, void *game, size_t M, pl_xmethod method, size_t max_evals,
                                uint64_t seed, pl_xresult *res);
typedef pl_status (*pl_study_xone_fn)(void *ctx, const pl_record *r, pl_xmethod method, size_t max_evals,
                                      uint64_t seed, pl_study_xone *out);
/* LLM explainer (llm.c): the classifier score with masked words deleted. */
typedef struct pl_study_llm_x pl_study_llm_x;
pl_status pl_study_llm_x_open(const pl_study_model *m, int max_tokens, const char *adapter, pl_study_llm_x **out);
void pl_study_llm_x_close(pl_study_llm_x *x);
pl_status pl_study_llm_explain_one(void *ctx, const pl_record *r, pl_xmethod method, size_t max_evals,
                                   uint64_t seed, pl_study_xone *out);

/* Words of a text with their byte spans (pl_text_words' words, located in
 * the text). */
typedef struct {
    char **w;
    size_t *start, *end;
    size_t n, cap;
} pl_study_words;
pl_status pl_study_words_of(const char *text, pl_study_words *out);
void pl_study_words_free(pl_study_words *w);

#endif
