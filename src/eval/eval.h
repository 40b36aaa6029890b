/* eval.h — evaluation of phishing classifiers from their predictions.
 *
 * Everything here works on predictions already computed by a scorer (one
 * line per email in predictions.jsonl, see docs/eval.md). It provides:
 *   - predictions.jsonl and run.json read/write (atomic writes);
 *   - metrics with phishing (label 1) as the positive class: accuracy,
 *     precision, recall, F1, macro-F1, MCC, ROC-AUC, PR-AUC (average
 *     precision), Brier score, ECE, confusion matrix — at a fixed threshold
 *     and at a threshold tuned for F1 on a validation set;
 *   - seeded percentile-bootstrap confidence intervals that do not depend on
 *     the thread count;
 *   - paired comparison of two models (exact McNemar, paired bootstrap of
 *     the F1 difference), per-slice metrics;
 *   - calibration: reliability-diagram bins and temperature scaling;
 *   - the generalization matrix (models x training sets x test sources).
 *
 * Conventions (the full definitions are in docs/eval.md):
 *   - threshold metrics predict phishing when p_phish >= threshold;
 *   - ranking metrics (ROC-AUC, PR-AUC) rank by `score` (the logit
 *     difference phishing - legitimate), which does not saturate like
 *     p_phish = sigmoid(score) does for |score| > ~37;
 *   - an undefined metric has value NAN and a reason in note[]; JSON output
 *     writes it as null. Where scikit-learn defines a value by convention
 *     (zero_division=0: precision with no positive predictions, MCC with a
 *     zero denominator, ...) that value is reported and note[] says why.
 *
 * Not here: running a model over emails (the scoring engine writes
 * predictions.jsonl and run.json through this API).
 */
#ifndef PL_EVAL_H
#define PL_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

typedef struct cJSON cJSON;

/* ---- predictions -------------------------------------------------------- */

/* One scored email. Optional slice fields are -1 when absent. */
typedef struct {
    char *id, *source;   /* malloc'd, never NULL once read */
    int label;           /* 1 phishing, 0 legitimate */
    double p_phish;      /* P(phishing) in [0, 1] */
    double score;        /* logit difference phishing - legitimate (finite) */
    int pred;            /* the scorer's own 0/1 decision */
    int has_url, html, link_mismatch; /* 0/1, or -1 = absent */
    int64_t length;      /* body length in characters, or -1 = absent */
    char *rationale;     /* chain-of-thought scoring: the generated rationale (malloc'd), else NULL */
} pl_pred;

typedef struct {
    pl_pred *v;
    size_t n, cap;
} pl_preds;

/* Append a copy of *p (strings are duplicated; rationale when not NULL). */
pl_status pl_preds_push(pl_preds *ps, const pl_pred *p);
void pl_preds_free(pl_preds *ps);

/* Parse one predictions line into *p (strings malloc'd; free with
 * pl_pred_free). Required: id, source, label (0/1) and at least one of
 * p_phish / score (the other is derived: p = sigmoid(score), score =
 * logit(p)). pred defaults to p_phish >= 0.5. Errors name path:line and the
 * field. */
pl_status pl_pred_from_json(const char *line, size_t len, const char *path, size_t lineno, pl_pred *p);
void pl_pred_free(pl_pred *p);
/* Serialize one prediction as a single JSON line (no newline) into b. */
pl_status pl_pred_to_json(const pl_pred *p, pl_buf *b);

/* Read a whole predictions.jsonl (appends to ps; blank lines skipped).
 * Duplicate ids within one source are an error. An empty file is an error. */
pl_status pl_preds_read_jsonl(const char *path, pl_preds *ps);
/* Write atomically (temp file + fsync + rename). */
pl_status pl_preds_write_jsonl(const char *path, const pl_preds *ps);

/* The run description run.json:
 *   {"model": str, "train_set": str, "train_sources": [str, ...],
 *    "adapter": str, ...any other fields, kept as they are}
 * train_sources lists the sources the model was trained on (what makes a
 * test source in-domain). When absent, train_set is split on '+' into
 * sources ("enron+nazario" -> enron, nazario; "none" or "" -> no sources,
 * i.e. zero-shot). */
typedef struct {
    char *model, *train_set, *adapter; /* malloc'd, "" when absent */
    char **train_sources;
    size_t n_train_sources;
    cJSON *extra;                      /* the other fields (object, owned) */
} pl_run_info;

void pl_run_info_init(pl_run_info *r);
void pl_run_info_free(pl_run_info *r);
pl_status pl_run_info_read(const char *path, pl_run_info *r);
pl_status pl_run_info_write(const char *path, const pl_run_info *r);
/* 1 when source is one of r's training sources. */
int pl_run_info_trained_on(const pl_run_info *r, const char *source);

/* ---- metrics ------------------------------------------------------------ */

enum {
    PL_M_ACCURACY = 0,
    PL_M_PRECISION,
    PL_M_RECALL,
    PL_M_F1,
    PL_M_MACRO_F1,
    PL_M_MCC,
    PL_M_ROC_AUC,
    PL_M_PR_AUC,
    PL_M_BRIER,
    PL_M_ECE,
    PL_M_COUNT
};
/* "accuracy", "precision", ..., "roc_auc", "pr_auc", "brier", "ece". */
const char *pl_metric_name(int m);

#define PL_ECE_BINS 15

/* Confusion matrix with labels (0, 1): rows true class, columns predicted
 * class, as scikit-learn's confusion_matrix(labels=[0, 1]). */
typedef struct {
    int64_t tn, fp, fn, tp;
} pl_confusion;

typedef struct {
    double threshold;
    int64_t n, n_pos;
    pl_confusion cm;
    double v[PL_M_COUNT];          /* NAN when undefined */
    const char *note[PL_M_COUNT];  /* NULL, or why the value is null/conventional */
} pl_metrics;

/* Metrics of the predictions ps->v[idx[k]], k < n_idx (idx NULL = all of ps)
 * at `threshold`. n_idx == 0 is PL_ERR_INVALID. */
pl_status pl_eval_metrics(const pl_preds *ps, const size_t *idx, size_t n_idx, double threshold,
                          pl_metrics *out);

/* The same with integer weights w[k] for ps->v[idx[k]] (w NULL = all 1):
 * identical to evaluating a set where each email appears w[k] times. This
 * is what each bootstrap resample computes. The total weight must be > 0. */
pl_status pl_eval_metrics_weighted(const pl_preds *ps, const size_t *idx, size_t n_idx, const uint32_t *w,
                                   double threshold, pl_metrics *out);

/* Percentile bootstrap interval of each metric. */
typedef struct {
    double lo, hi;      /* NAN when fewer than 2 resamples had a defined value */
    int64_t n_defined;  /* resamples where the metric was defined */
} pl_ci;

typedef struct {
    int64_t n_boot;     /* resamples (default 1000) */
    double level;       /* 0.95 */
    uint64_t seed;
} pl_boot_opts;
pl_boot_opts pl_boot_defaults(void);

/* Bootstrap the metrics of the subset (as pl_eval_metrics) at `threshold`:
 * resample b draws n indices with replacement using the RNG stream
 * pl_rng_split(seed, b), so results depend only on (data, seed, n_boot),
 * never on the thread count. Interval: percentiles (1-level)/2 and
 * (1+level)/2 of the defined resample values, linear interpolation between
 * order statistics (numpy's default). */
pl_status pl_eval_bootstrap(const pl_preds *ps, const size_t *idx, size_t n_idx, double threshold,
                            const pl_boot_opts *o, pl_ci ci[PL_M_COUNT]);

/* The percentile of sorted values x[0..n-1] at q in [0,1], linear
 * interpolation (numpy.percentile default). n > 0. */
double pl_percentile_sorted(const double *x, size_t n, double q);

/* Threshold maximizing F1 on a validation set. Candidates are the distinct
 * p_phish values (predict phishing when p >= t); among candidates with the
 * same F1 (compared exactly on counts) the largest threshold wins. Needs
 * both classes in ps: otherwise PL_ERR_INVALID with the reason. */
pl_status pl_eval_tune_threshold(const pl_preds *ps, double *threshold, double *best_f1);

/* ---- paired comparison ------------------------------------------------- */

/* Exact two-sided McNemar test: b = pairs where only A is right, c = pairs
 * where only B is right; p = min(1, 2 * P[Binomial(b+c, 1/2) <= min(b,c)]),
 * and 1 when b + c == 0. */
double pl_mcnemar_exact_p(int64_t b, int64_t c);

typedef struct {
    int64_t n;
    int64_t both_right, only_a, only_b, both_wrong;
    double mcnemar_p;
    double f1_a, f1_b, delta_f1;   /* delta = F1(B) - F1(A) */
    pl_ci delta_ci;                /* paired bootstrap */
    double p_boot;                 /* 2 * min(P[delta* <= 0], P[delta* >= 0]), capped at 1 */
} pl_compare;

/* Compare two models' predictions on the same test set (matched by
 * (source, id); both sets must hold the same emails with the same labels,
 * else PL_ERR_FORMAT naming the first email that differs) at `threshold`. */
pl_status pl_eval_compare(const pl_preds *a, const pl_preds *b, double threshold, const pl_boot_opts *o,
                          pl_compare *out);

/* ---- calibration --------------------------------------------------------- */

typedef struct {
    double lo, hi;          /* bin edges [lo, hi) (the last bin includes 1) */
    int64_t count;
    double mean_pred;       /* NAN when count == 0 */
    double observed;        /* fraction of label 1; NAN when count == 0 */
} pl_rel_bin;

/* Reliability diagram with PL_ECE_BINS equal-width bins of p (probabilities
 * taken from p[], or when p == NULL from ps->v[].p_phish). bins has
 * PL_ECE_BINS entries. Returns the ECE = sum_b (count_b / n) |mean_b - obs_b|. */
pl_status pl_eval_reliability(const pl_preds *ps, const double *p, pl_rel_bin *bins, double *ece);

/* Temperature scaling: T minimizing the mean NLL of labels under
 * p = sigmoid(score / T) on ps (Newton's method on beta = 1/T, where the
 * NLL is convex, with backtracking). T is kept in [PL_TEMP_MIN, PL_TEMP_MAX];
 * *at_bound is set when it ends on a bound (e.g. separable data, or scores
 * that anti-correlate with labels). nll_before/after: mean NLL at T = 1 and
 * at the fitted T. */
#define PL_TEMP_MIN 0.01
#define PL_TEMP_MAX 100.0
pl_status pl_eval_fit_temperature(const pl_preds *ps, double *T, int *at_bound, double *nll_before,
                                  double *nll_after);
/* Mean NLL of ps under sigmoid(score / T), computed stably. */
double pl_eval_nll(const pl_preds *ps, double T);
/* A copy of ps with p_phish = sigmoid(score / T), score = score / T and pred
 * = p >= 0.5. */
pl_status pl_preds_apply_temperature(const pl_preds *ps, double T, pl_preds *out);

/* ---- slices ------------------------------------------------------------ */

/* Length buckets for the "length" slice (characters): */
#define PL_LEN_BUCKETS 4
const char *pl_length_bucket_name(int64_t length); /* "<500", "500-1999", "2000-9999", ">=10000" */

/* ---- reports (JSON) ---------------------------------------------------- */

typedef struct {
    double threshold;       /* default 0.5 */
    pl_boot_opts boot;
    int slices;             /* include per-slice metrics */
    int slice_ci;           /* bootstrap CIs for slices too */
} pl_eval_opts;
pl_eval_opts pl_eval_defaults(void);

/* {"n", "n_pos", "threshold", "metrics": {...}, "confusion": ..., "notes":
 *  {...}, "ci": {...}} for one metric set (+ CI when ci != NULL). */
cJSON *pl_metrics_to_json(const pl_metrics *m, const pl_ci *ci, const pl_boot_opts *bo);

/* The full metrics report of `test` (and `val` when not NULL: adds the
 * tuned threshold section and temperature calibration). *out is a new
 * cJSON object (free with cJSON_Delete). */
pl_status pl_eval_report(const pl_preds *test, const pl_preds *val, const pl_eval_opts *o, cJSON **out);
/* The comparison report. */
pl_status pl_eval_compare_report(const pl_preds *a, const pl_preds *b, const pl_eval_opts *o, cJSON **out);
/* The calibration report: T fitted on val, test metrics before/after,
 * reliability bins before/after. */
pl_status pl_eval_calibration_report(const pl_preds *test, const pl_preds *val, const pl_eval_opts *o,
                                     cJSON **out);

/* ---- generalization matrix ------------------------------------------- */

typedef struct {
    int64_t n, n_pos;
    double f1;          /* NAN when the cell is empty */
    pl_ci ci;
    int in_domain;
} pl_matrix_cell;

typedef struct {
    char *model, *train_set;
    pl_run_info info;          /* of the first run dir of the row */
    pl_matrix_cell *cells;     /* [n_cols] */
    double mean_in, mean_out, gap; /* NAN when a side has no cells */
    int loso_col;              /* column held out (LOSO), or -1 */
} pl_matrix_row;

typedef struct {
    char **cols;               /* test sources, sorted */
    size_t n_cols;
    pl_matrix_row *rows;
    size_t n_rows;
    int is_loso;               /* every row leaves exactly one column out */
    double threshold;
    pl_boot_opts boot;
} pl_matrix;

/* Build the matrix from run directories (each with predictions.jsonl and
 * run.json). Runs with the same (model, train_set) are merged into one row;
 * the same (source, id) twice in one row is an error. The bootstrap stream
 * of a cell is derived from (seed, model, train_set, source), so a cell's
 * interval does not depend on the other runs given. */
pl_status pl_matrix_build(const char *const *dirs, size_t n_dirs, double threshold, const pl_boot_opts *o,
                          pl_matrix *m);
void pl_matrix_free(pl_matrix *m);
cJSON *pl_matrix_to_json(const pl_matrix *m);
/* CSV: one line per (row, column) cell. */
pl_status pl_matrix_write_csv(const pl_matrix *m, const char *path);
/* Human table (F1 [lo, hi] per cell, gap per row) to fp. */
void pl_matrix_print(const pl_matrix *m, FILE *fp);

/* JSON helpers shared by the CLI: a number or null (non-finite). */
cJSON *pl_json_num_or_null(double v);
/* Write a cJSON value atomically, pretty-printed, with a final newline. */
pl_status pl_json_write_atomic(const char *path, const cJSON *j);


/* ==== scoring a model over records (score.c) ============================
 * Runs a pl_classifier over normalized records and turns the scores into
 * predictions (with the slice fields taken from each record). */
#include "data/data.h"
#include "prompt/prompt.h"

/* Slice fields of a prediction from its record: has_url = the record has
 * urls (or meta.has_url); html = meta.html / meta.has_html; length = body
 * length in characters (UTF-8 code points); link_mismatch = meta.link_mismatch
 * (a count or a bool; absent but html known means 0), else -1. */
void pl_pred_slices_from_record(const pl_record *r, pl_pred *p);
/* Append the prediction of record r scored `score` (logit difference):
 * id, source and label from r, p_phish = sigmoid(score), pred = p >= 0.5,
 * slice fields absent (-1). */
pl_status pl_preds_push_scored(pl_preds *ps, const pl_record *r, double score);

typedef struct {
    size_t n_records;      /* records scored */
    size_t n_unlabelled;   /* of which without a label (label -1) */
    size_t n_truncated;    /* emails cut to the prompt's max_email_tokens */
    int64_t n_tokens;      /* email + suffix tokens run through the model */
    double seconds;        /* wall time of tokenizing + scoring */
} pl_score_stats;

/* Score every record of rs with c (tokenized with t), in record order.
 * Labelled records (label 0/1) are appended to `labelled`, the others (if
 * `unlabelled` is not NULL) to `unlabelled` with label -1; p_phish =
 * sigmoid(score), pred = p_phish >= 0.5. A record with an empty id gets
 * "#<index>". progress_label (may be NULL: no bar) names the progress bar.
 * Errors name the record (source, id) that failed. */
pl_status pl_score_records(pl_classifier *c, const pl_tokenizer *t, const pl_records *rs,
                           const char *progress_label, pl_preds *labelled, pl_preds *unlabelled,
                           pl_score_stats *stats);

/* ---- chain-of-thought scoring (cot.c) ----
 * A model fine-tuned on answers "[rationale \n] label word" (pl_prompt_answer_ids)
 * is scored in two steps: the rationale is generated greedily from the
 * answer position (at most max_new tokens; it ends at the first token whose
 * text holds a line break, or at EOS / a control token, or at the budget —
 * then the line break ids of pl_prompt_newline_ids are appended, EOS is not),
 * and the label position after the line break is read like every other
 * paradigm: score = logit(label_pos_id) - logit(label_neg_id), p_phish =
 * sigmoid(score). Sequences are generated side by side in batches forked
 * from the shared prefix's KV cache. Greedy ties go to the lowest id. */
#define PL_COT_MAX_NEW 64
typedef struct pl_cot pl_cot;
/* max_new <= 0: PL_COT_MAX_NEW; max_batch_tokens bounds the new tokens of
 * one forward (0: 2048). m, p and t must outlive the scorer. */
pl_status pl_cot_new(pl_model *m, const pl_prompt *p, const pl_tokenizer *t, int max_new, int max_batch_tokens,
                     pl_cot **out);
void pl_cot_free(pl_cot *c);
int pl_cot_max_new(const pl_cot *c);
const pl_prompt *pl_cot_prompt(const pl_cot *c);
/* Score n emails (email-part ids, as pl_classifier_score takes them).
 * scores[n]; gen (may be NULL) gets, per email, every id fed after the
 * suffix up to the label position (the generated ids, then the appended
 * line break when the model did not write one; pl_tokens to free);
 * rationale (may be NULL) gets the generated text up to its line break,
 * leading spaces trimmed (malloc'd strings to free). */
pl_status pl_cot_score(pl_cot *c, const int32_t *const *emails, const size_t *lens, size_t n, double *scores,
                       pl_tokens *gen, char **rationale);
/* pl_score_records with a chain-of-thought scorer: predictions carry the
 * generated rationale; stats.n_tokens counts generated ids too. */
pl_status pl_cot_score_records(pl_cot *c, const pl_tokenizer *t, const pl_records *rs, const char *progress_label,
                               pl_preds *labelled, pl_preds *unlabelled, pl_score_stats *stats);

/* An unlabelled prediction as one JSON line (label null) into b. */
pl_status pl_pred_unlabelled_to_json(const pl_pred *p, pl_buf *b);

/* ==== end of scoring ==== */
/* ==== label-noise audit wired to models (audit.c; docs/eval.md,
 * "label-noise audit") ==== */

/* Records, the data module's confident-learning audit, the trainer. */
#include "data/data.h"
#include "train/train.h"

/* Stratified k-fold assignment: per label (0/1), the record indices are
 * shuffled with pl_rng seeded by (seed, label) and dealt to folds round
 * robin, so fold sizes per label differ by at most one. fold[i] in [0, k).
 * Errors: PL_ERR_INVALID when k < 2, a label is not 0/1, or a label has
 * fewer than k records (a fold would lack it). */
pl_status pl_kfold_assign(const int *label, size_t n, int k, uint64_t seed, int *fold);

/* Flip injection for testing the audit: flips round(rate * n) labels of
 * records chosen uniformly without replacement (seeded); sets on EVERY
 * record meta.label_flipped (true/false), and on flipped ones
 * meta.label_original. All labels must be 0/1. *n_flipped may be NULL. */
pl_status pl_audit_inject_flips(pl_records *rs, double rate, uint64_t seed, size_t *n_flipped);

/* Ground truth of flips: truth[i] = 1 when record i is known flipped.
 * From a file (truth_path != NULL): one id per line, or JSONL lines with
 * "id" (blank lines skipped; an id that names no record is an error with
 * the line). Otherwise from meta.label_flipped, which must then be a
 * boolean on every record (*have = 0 when no record carries it; a record
 * without it while others have it is an error naming the record). */
pl_status pl_audit_truth(const pl_records *rs, const char *truth_path, uint8_t *truth, int *have);

/* The learner behind the audit: fit on the records train[0..n_train) with
 * their (possibly noisy) labels, then write P(phishing) for the records
 * test[0..n_test) into p_out. tag is the fold index, or -1 for the model
 * fitted on every record (the circular variant). */
typedef pl_status (*pl_audit_fit_fn)(void *user, const pl_records *rs, const size_t *train, size_t n_train,
                                     const size_t *test, size_t n_test, int tag, double *p_out);

typedef struct {
    int k;                  /* folds (5) */
    uint64_t seed;          /* fold assignment (1234) */
    double naive_threshold; /* naive rule: p(other class) > T (0.91) */
    int circular;           /* also fit on all records and score them (1) */
} pl_audit_opts;
pl_audit_opts pl_audit_opts_default(void);

/* Precision / recall of one rule against the truth (NAN when undefined:
 * nothing flagged / nothing flipped). */
typedef struct {
    size_t flagged, true_pos;
    double precision, recall;
} pl_audit_prf;

typedef struct {
    size_t n;
    int k;
    int *fold;              /* [n] */
    double *p_oof;          /* [n] out-of-fold P(phishing) */
    double *p_circ;         /* [n] in-sample P(phishing), NULL when not run */
    pl_audit_result cl;     /* confident learning + the naive rule on p_oof */
    uint8_t *flag_naive_circ; /* [n] naive rule on p_circ (NULL when not run) */
    size_t n_naive_circ;
    int have_truth;
    uint8_t *truth;         /* [n] (NULL without truth) */
    size_t n_true;
    /* rules: 0 CL prune-by-noise-rate, 1 CL confident-joint off-diagonal,
     * 2 naive on OOF, 3 naive circular */
    pl_audit_prf prf[4];
    double naive_threshold;
} pl_audit_run_result;
#define PL_AUDIT_N_RULES 4
const char *pl_audit_rule_name(int rule); /* "cl_prune", "cl_joint", "naive_oof", "naive_circular" */

/* Run the audit: folds, one fit per fold scoring its held-out records,
 * the confident-learning audit on the out-of-fold probabilities, the naive
 * rule on them and (opts->circular) on in-sample probabilities of a model
 * fitted on everything. truth may be NULL. Probabilities outside [0, 1]
 * from fit are PL_ERR_NUMERIC naming the record. */
pl_status pl_audit_run(const pl_records *rs, const pl_audit_opts *o, pl_audit_fit_fn fit, void *user,
                       const uint8_t *truth, pl_audit_run_result *res);
void pl_audit_run_result_free(pl_audit_run_result *res);
/* audit.json: counts, thresholds, joints, noise estimate, the flags of every
 * rule (ids), and precision/recall when truth is known. */
cJSON *pl_audit_run_to_json(const pl_records *rs, const pl_audit_run_result *res);
/* oof.jsonl: {"id","source","label","fold","p_phish"[,"p_circular"]} per record (atomic). */
pl_status pl_audit_write_oof(const char *path, const pl_records *rs, const pl_audit_run_result *res);

/* The model learner: LoRA / head / full fine-tuning with the train module,
 * scoring with pl_classifier (the prompt view; the fold's adapter
 * attached, the head as w = W[1] - W[0]); full fine-tuning scores with the
 * trainer's own forward (pl_trainer_scores). Each fit trains in
 * work_dir/fold-K (or work_dir/all) and keeps its train_log.jsonl. */
typedef struct {
    const char *model;      /* base model path (GGUF or HF dir; its tokenizer) */
    const char *work_dir;
    int max_len;            /* prompt tokens (email cut to fit) */
    pl_tr_config tc;        /* label tokens are filled in from the prompt */
    pl_loop_opts lo;        /* run_dir and base_model are set per fit */
    int quiet;
} pl_audit_model;
pl_status pl_audit_model_fit(void *user, const pl_records *rs, const size_t *train, size_t n_train,
                             const size_t *test, size_t n_test, int tag, double *p_out);

#endif
