/* interp.h — mechanistic interpretability toolkit, model-agnostic.
 *
 * Everything here works on plain float arrays with stated shapes, so the
 * model-side commands (`phishlens interp lens|probe|patch|dla|ablate|attn`)
 * only have to run the forward pass with hooks and hand the arrays over:
 *
 *   - activation cache: a chunked, zstd-compressed, checksummed file of hook
 *     activations with per-example metadata (docs/interp.md, "Activation
 *     cache format"); read back as an [n_examples x d] matrix per
 *     (hook, layer, position selector);
 *   - linear probes: L2 logistic regression (binary and softmax) fitted by
 *     L-BFGS in double, standardized features, stratified k-fold CV over a C
 *     grid, depth curves, source-transfer (Alain & Bengio 2016, "Understanding
 *     intermediate layers using linear classifier probes");
 *   - logit lens (nostalgebraist 2020) onto the classifier score, tuned lens
 *     (Belrose et al. 2023) as a closed-form ridge affine map to the final
 *     residual, direct logit attribution with a frozen final-norm scale
 *     (Elhage et al. 2021);
 *   - activation patching metric (Meng et al. 2022; Heimersheim & Nanda 2024,
 *     normalized logit-difference recovery), mean / resample ablation
 *     bookkeeping, direction removal, attention summaries;
 *   - heatmap-ready JSON grids {"rows":[...],"cols":[...],"values":[[...]]}
 *     and short text summaries.
 *
 * Hook names follow TransformerLens: a layer hook is "blocks.<L>.<hook>"
 * ("blocks.3.hook_resid_post", "blocks.3.attn.hook_z"); layer-less hooks are
 * "hook_embed" and "ln_final.hook_normalized". In this module a hook is named
 * by its short name (the part after "blocks.<L>.") plus a layer index, with
 * layer -1 for the layer-less hooks.
 *
 * The classifier score everywhere is the logit difference phishing -
 * legitimate at the answer position (ARCHITECTURE.md, "Classifier view").
 *
 * Not here: running the model (model/ owns the forward pass and hooks);
 * gradient-trained tuned-lens (the ridge fit is the documented substitute).
 */
#ifndef PL_INTERP_H
#define PL_INTERP_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "eval/eval.h"

typedef struct cJSON cJSON;

/* ======================================================================
 * Activation cache
 * ====================================================================== */

#define PL_ACT_MAX_SLOTS 4096   /* hook x layer pairs per file */
#define PL_ACT_MAX_NAME 255     /* bytes in a hook name, id or source */

/* One stored activation: hook short name ("hook_resid_post"), layer (-1 for
 * layer-less hooks) and width d (floats per position; hook_z stores
 * n_heads*d_head, hook_pattern stores n_heads*n_ctx is NOT supported: the
 * cache is for per-position vectors). */
typedef struct {
    char name[PL_ACT_MAX_NAME + 1];
    int32_t layer;
    uint32_t d;
} pl_act_slot;

/* Per-example metadata. Positions pos0 .. pos0+n_pos-1 (absolute token
 * positions, 0 <= pos0, pos0+n_pos <= n_tokens) are stored for every slot;
 * answer_pos is the absolute position of the classifier readout, -1 when
 * unknown. */
typedef struct {
    char id[PL_ACT_MAX_NAME + 1];
    char source[PL_ACT_MAX_NAME + 1];
    int32_t label;       /* 1 phishing, 0 legitimate, -1 unknown */
    int32_t n_tokens;
    int32_t answer_pos;
    int32_t pos0, n_pos;
} pl_act_meta;

typedef struct pl_actcache_writer pl_actcache_writer;
typedef struct pl_actcache pl_actcache;

/* Create a cache file for the given slots (copied). Output goes to a
 * temporary file and only appears at path on pl_actcache_writer_close
 * (atomic). zstd_level: 1..19 (0 = default 3). */
pl_status pl_actcache_create(const char *path, const pl_act_slot *slots, size_t n_slots, int zstd_level,
                             pl_actcache_writer **out);
/* Append one example: acts[s] points to [meta->n_pos x slots[s].d] floats
 * (row-major, position-major) for each slot s. Metadata is validated. */
pl_status pl_actcache_append(pl_actcache_writer *w, const pl_act_meta *meta, const float *const *acts);
/* Write the index and footer, fsync, rename into place; frees w. */
pl_status pl_actcache_writer_close(pl_actcache_writer *w);
/* Drop the file (no output at path); frees w. NULL is fine. */
void pl_actcache_writer_abort(pl_actcache_writer *w);

/* Open and validate header, footer and index (chunk checksums are verified
 * when a chunk is read). Errors name the file and byte offset. */
pl_status pl_actcache_open(const char *path, pl_actcache **out);
void pl_actcache_close(pl_actcache *c);
size_t pl_actcache_n_examples(const pl_actcache *c);
size_t pl_actcache_n_slots(const pl_actcache *c);
const pl_act_slot *pl_actcache_slot(const pl_actcache *c, size_t s);
/* Slot index of (name, layer), or -1. */
int pl_actcache_find_slot(const pl_actcache *c, const char *name, int layer);
/* Metadata of example i (validated at open; no decompression). */
const pl_act_meta *pl_actcache_meta(const pl_actcache *c, size_t i);

/* Read example i, slot s: *out is malloc'd [n_pos x d] floats (caller frees).
 * Verifies the chunk checksum and sizes. */
pl_status pl_actcache_read(pl_actcache *c, size_t i, size_t s, float **out);

/* Position selectors for matrix reads. */
typedef enum {
    PL_POS_ANSWER = 0, /* the example's answer_pos (error if -1 or not stored) */
    PL_POS_MEAN,       /* mean over all stored positions */
    PL_POS_INDEX       /* absolute position `index`; negative counts from the
                          end of the token sequence (-1 = n_tokens-1) */
} pl_pos_kind;
typedef struct {
    pl_pos_kind kind;
    int64_t index;
} pl_pos_sel;

/* Parse "answer" | "mean" | an integer ("-1", "12"). */
pl_status pl_pos_sel_parse(const char *s, pl_pos_sel *out);

/* [n x d] matrix (malloc'd, caller frees) for slot (name, layer) at the
 * selected position, one row per example in file order. */
pl_status pl_actcache_matrix(pl_actcache *c, const char *name, int layer, pl_pos_sel sel, float **out,
                             size_t *n, size_t *d);

/* "blocks.<layer>.<name>" (or name alone when layer < 0) into buf. */
void pl_hook_fullname(const char *name, int layer, char *buf, size_t cap);

/* ======================================================================
 * Linear probes
 * ====================================================================== */

/* L2-regularized logistic regression with scikit-learn's objective:
 *   min_{W,b}  0.5 * sum_k ||w_k||^2  +  C * sum_i loss_i
 * loss = binary log-loss (n_classes == 2, one weight vector) or softmax
 * cross-entropy (n_classes > 2, one vector per class); the intercepts are not
 * penalized. Fitted by L-BFGS in double, deterministic. With standardize=1 the
 * fit runs on z-scored features (population std; constant features get
 * scale 1) and the result is mapped back to the original feature space. */
typedef struct {
    double C;
    int standardize;
    int max_iter;      /* default 2000 */
    double gtol;       /* stop when max|grad| <= gtol * max(1, |f|); default 1e-10 */
} pl_logreg_opts;
pl_logreg_opts pl_logreg_defaults(void);

typedef struct {
    int n_classes;     /* 2: one row (class 1 vs 0); K>2: K rows */
    size_t d;
    double *w;         /* [n_rows x d] in ORIGINAL feature space */
    double *b;         /* [n_rows] */
    int n_iter;
    double objective;  /* final objective (in the fitted space) */
    int converged;
} pl_logreg;

/* X: [n x d] row-major floats; y: class ids in 0..n_classes-1. */
pl_status pl_logreg_fit(const float *X, size_t n, size_t d, const int *y, int n_classes, const pl_logreg_opts *o,
                        pl_logreg *out);
/* Class probabilities of one row x [d] into p [n_classes]. */
void pl_logreg_proba(const pl_logreg *m, const float *x, double *p);
void pl_logreg_free(pl_logreg *m);

/* Area under the ROC curve of score vs binary label (ties count 1/2), NAN
 * when one class is absent. */
double pl_interp_auc(const double *score, const int *y, size_t n);

/* Stratified k-fold assignment: fold[i] in 0..k-1. Each class's indices are
 * shuffled with the seed and dealt round-robin, so fold sizes per class
 * differ by at most one. */
pl_status pl_stratified_folds(const int *y, size_t n, int n_classes, int k, uint64_t seed, int *fold);

typedef struct {
    int k;              /* folds, default 5 */
    uint64_t seed;      /* split seed, default 1 */
    const double *Cs;   /* C grid (NULL: default {0.01, 0.1, 1, 10}) */
    size_t n_C;
    int standardize;    /* default 1 */
    int max_iter;
    double gtol;
} pl_probe_opts;
pl_probe_opts pl_probe_defaults(void);

typedef struct {
    double C;            /* chosen C (best mean CV accuracy; ties -> smaller C) */
    double cv_accuracy;  /* pooled out-of-fold accuracy at the chosen C */
    double cv_auc;       /* binary: ROC-AUC of out-of-fold P(class 1);
                            K>2: macro one-vs-rest AUC */
    double *cv_acc_by_C; /* [n_C] */
    size_t n_C;
    pl_logreg model;     /* refit on all rows at the chosen C */
} pl_probe_result;

pl_status pl_probe_cv(const float *X, size_t n, size_t d, const int *y, int n_classes, const pl_probe_opts *o,
                      pl_probe_result *out);
void pl_probe_result_free(pl_probe_result *r);

/* Transfer: fit on rows with group[i] == train_group at C, evaluate on rows
 * with group[i] == test_group (binary y). */
typedef struct {
    size_t n_train, n_test;
    double accuracy, auc;
} pl_probe_transfer_result;
pl_status pl_probe_transfer(const float *X, size_t n, size_t d, const int *y, const int *group, int train_group,
                            int test_group, double C, int standardize, pl_probe_transfer_result *out);

/* Labels from cache metadata. target "label": the 0/1 label (examples with
 * label -1 are an error); target "source": class id = index of the source in
 * the sorted list of distinct sources (*names, *n_names malloc'd; free with
 * pl_interp_free_names). */
pl_status pl_actcache_labels(const pl_actcache *c, const char *target, int *y, int *n_classes, char ***names,
                             size_t *n_names);
void pl_interp_free_names(char **names, size_t n);

/* Depth curve: one probe per layer of `hook` at the position selector. */
typedef struct {
    size_t n_layers;
    int *layers;
    pl_probe_result *res;   /* [n_layers] */
    int n_classes;
    char **class_names;     /* [n_classes] or NULL */
} pl_probe_curve;
pl_status pl_probe_depth(pl_actcache *c, const char *hook, const int *layers, size_t n_layers, pl_pos_sel sel,
                         const char *target, const pl_probe_opts *o, pl_probe_curve *out);
void pl_probe_curve_free(pl_probe_curve *pc);
/* {"rows":["accuracy","auc","C"],"cols":["0","1",...],"values":[[...]],
 *  "target":..., "classes":[...], "bias":[...], "direction_norm":[...]}.
 * Directions themselves are written by pl_probe_directions_json. */
cJSON *pl_probe_curve_json(const pl_probe_curve *pc);
/* {"layers":[...], "classes":K, "bias":[[...]...], "direction":[[[...]]...]}:
 * per layer the refit probe's rows (1 for binary, K for softmax) of w and b
 * in the original activation space (score = w.x + b). */
cJSON *pl_probe_directions_json(const pl_probe_curve *pc);
/* Text lines "layer L: acc 0.912 auc 0.955 C 0.1" per layer, then the best
 * layer. Appended to b. */
pl_status pl_probe_curve_summary(const pl_probe_curve *pc, pl_buf *b);

/* ======================================================================
 * Logit lens, tuned lens, direct logit attribution
 * ====================================================================== */

/* How the final residual becomes the classifier score:
 *   n = h / sqrt(mean(h^2) + eps) * (norm_w + norm_offset)  (RMSNorm)
 *   score = cap(u_pos . n) - cap(u_neg . n) + bias
 * with cap(z) = softcap * tanh(z / softcap) when softcap > 0 (gemma2 final
 * logit soft-capping), identity otherwise. u_neg == NULL means u_pos is a
 * linear head vector: score = cap(u_pos . n) + bias. norm_w == NULL means no
 * norm weight (all ones). norm_offset is 0 for weights stored as applied
 * (llama, mistral, gemma GGUF which stores 1+w) and 1 for HF gemma
 * checkpoints that apply (1 + w). */
typedef struct {
    size_t d;
    const float *norm_w;
    float norm_offset;
    float eps;
    const float *u_pos, *u_neg;
    float bias;
    float softcap;
} pl_readout;

/* Score of one residual vector h [d]. */
double pl_lens_score(const pl_readout *r, const float *h);
/* Scores of the rows of X [n x d] into out [n]. */
void pl_lens_scores(const pl_readout *r, const float *X, size_t n, double *out);
/* Per-class mean (and std) of scores: mean[c], sd[c], count[c] for c < n_classes. */
void pl_lens_class_means(const double *scores, const int *y, size_t n, int n_classes, double *mean, double *sd,
                         size_t *count);

/* Logit lens over a cache: for each layer, the readout applied to hook rows
 * at the selector (optionally through a tuned-lens translator per layer),
 * averaged per class (label 0/1). Result: rows "phishing", "legitimate",
 * "auc", cols = layers. */
typedef struct pl_tuned_lens pl_tuned_lens;
pl_status pl_lens_depth(pl_actcache *c, const char *hook, const int *layers, size_t n_layers, pl_pos_sel sel,
                        const pl_readout *r, const pl_tuned_lens *tl, cJSON **out);

/* Tuned lens, ridge version: per layer an affine map h -> A h + b fitted in
 * closed form to the final residual f:
 *   min_{A,b} sum_i ||A h_i + b - f_i||^2 + lambda * ||A - I||_F^2
 * (shrinks toward the identity, i.e. toward the plain logit lens; b
 * unpenalized). Solved by Cholesky in double. */
pl_status pl_tuned_fit_layer(const float *H, const float *F, size_t n, size_t d, double lambda, float *A, float *b);
/* y = A h + b (A [d x d] row-major). */
void pl_tuned_apply(const float *A, const float *b, size_t d, const float *h, float *y);

struct pl_tuned_lens {
    size_t d, n_layers;
    int *layers;        /* [n_layers] */
    float *A, *b;       /* [n_layers x d x d], [n_layers x d] */
    double lambda;
};
/* Fit a translator for each layer of `hook` to the final residual (slot
 * final_hook/final_layer, e.g. "hook_resid_post" at the last layer) at the
 * selector, on the examples of the cache. */
pl_status pl_tuned_lens_fit(pl_actcache *c, const char *hook, const int *layers, size_t n_layers,
                            const char *final_hook, int final_layer, pl_pos_sel sel, double lambda,
                            pl_tuned_lens *out);
/* Translator of layer L (NULL when absent). */
pl_status pl_tuned_lens_layer(const pl_tuned_lens *tl, int layer, const float **A, const float **b);
void pl_tuned_lens_free(pl_tuned_lens *tl);
/* Binary file: "PLTLENS1", u64 d, u64 n_layers, f64 lambda, i32 layers[],
 * f32 A, f32 b, u64 XXH3 of everything before. Atomic write. */
pl_status pl_tuned_lens_save(const char *path, const pl_tuned_lens *tl);
pl_status pl_tuned_lens_load(const char *path, pl_tuned_lens *out);

/* Direct logit attribution. The final residual is r = sum_j comp[j]
 * (embedding, each head's output, each MLP output, ...). With the RMSNorm
 * scale s = 1/sqrt(mean(r^2)+eps) frozen from the full r, each component's
 * contribution is  s * ((norm_w + offset) .* comp_j) . (u_pos - u_neg)
 * (or . u_pos for a head vector). The contributions sum to the pre-softcap
 * score minus bias. r_full is the residual used for the scale (NULL: the sum
 * of the components). contrib [n_comp]; *scale receives s (may be NULL). */
pl_status pl_dla(const pl_readout *r, const float *comps, size_t n_comp, const float *r_full, double *contrib,
                 double *scale);

/* {"rows":[labels...],"cols":["contribution"],"values":[[c0],[c1],...],
 *  "sum":..., "scale":..., "bias":...}: heatmap-ready DLA of one example
 * (labels [n_comp], e.g. "embed", "L0H3", "L0.mlp"). */
cJSON *pl_dla_json(const char *const *labels, const double *contrib, size_t n_comp, double scale, double bias);

/* Per-head residual contributions from hook_z at one position:
 *   out[h] = W_O[:, h*dh:(h+1)*dh] @ z[h]          ([n_heads x d_model])
 * W_O is o_proj.weight, [d_model x n_heads*d_head] row-major. With post_w
 * non-NULL (gemma2's post-attention RMSNorm) each head's output is multiplied
 * by (post_w + post_offset) and by the norm scale frozen from the sum over
 * heads, so the heads still sum to hook_attn_out. */
pl_status pl_dla_head_outputs(const float *z, const float *W_O, size_t n_heads, size_t d_head, size_t d_model,
                              const float *post_w, float post_offset, float post_eps, float *out);

/* ======================================================================
 * Patching, ablation, directions, attention
 * ====================================================================== */

/* Heatmap-ready grid: values [n_rows x n_cols] (NAN -> JSON null). */
typedef struct {
    size_t n_rows, n_cols;
    char **rows, **cols;
    double *values;
    char *title;     /* may be NULL */
} pl_grid;

pl_status pl_grid_init(pl_grid *g, size_t n_rows, size_t n_cols, const char *title);
/* Labels (copied). */
pl_status pl_grid_set_row(pl_grid *g, size_t i, const char *label);
pl_status pl_grid_set_col(pl_grid *g, size_t j, const char *label);
/* Rows "L0".."L{n-1}" etc.: label = prefix + index. */
pl_status pl_grid_label_rows(pl_grid *g, const char *prefix);
pl_status pl_grid_label_cols(pl_grid *g, const char *prefix);
#define PL_GRID(g, i, j) ((g)->values[(size_t)(i) * (g)->n_cols + (size_t)(j)])
void pl_grid_free(pl_grid *g);
/* {"title":..., "rows":[...], "cols":[...], "values":[[...], ...]} */
cJSON *pl_grid_json(const pl_grid *g);
/* Parse the same shape back (for tools and tests). Errors name `what`. */
pl_status pl_grid_from_json(const cJSON *j, const char *what, pl_grid *g);
/* Atomically write any cJSON value (pretty-printed) to path. */
pl_status pl_interp_write_json(const char *path, const cJSON *j);
/* Short text summary: shape, min/max with their cells, the k cells of
 * largest |value|. Appended to b. */
pl_status pl_grid_summary(const pl_grid *g, size_t k, pl_buf *b);

/* Normalized logit-difference recovery (patched - corrupted) / (clean -
 * corrupted). When |clean - corrupted| <= PL_PATCH_MIN_GAP the metric is
 * undefined: returns NAN. */
#define PL_PATCH_MIN_GAP 1e-6
double pl_patch_recovery(double clean, double corrupted, double patched);
/* Fill a grid of recoveries from a grid of patched scores (same shape). */
pl_status pl_patch_grid(double clean, double corrupted, const double *patched, size_t n_rows, size_t n_cols,
                        pl_grid *g, const char *title);

/* Mean activation over a dataset: mean[d] = mean_i X[i] (double accumulation). */
void pl_ablate_mean(const float *X, size_t n, size_t d, float *mean);

/* Resample ablation donors: idx[i] != i uniformly at random (seeded). mode
 * PL_RESAMPLE_ANY: any other example; PL_RESAMPLE_SAME_LABEL / _OTHER_LABEL:
 * restrict to examples whose label equals / differs from y[i] (y required;
 * an example with no eligible donor is an error). */
typedef enum { PL_RESAMPLE_ANY = 0, PL_RESAMPLE_SAME_LABEL, PL_RESAMPLE_OTHER_LABEL } pl_resample_mode;
pl_status pl_ablate_resample_idx(size_t n, const int *y, pl_resample_mode mode, uint64_t seed, size_t *idx);

/* Effect of an ablation on classification: metrics of `before` and `after`
 * (same ids in the same order) at threshold via pl_eval_metrics. */
typedef struct {
    pl_metrics before, after;
    double delta_f1, delta_accuracy;
    double mean_delta_score;  /* mean(after.score - before.score) */
    size_t n_flipped;         /* predictions that changed at threshold */
} pl_ablate_effect;
pl_status pl_ablate_effect_of(const pl_preds *before, const pl_preds *after, double threshold,
                              pl_ablate_effect *out);
cJSON *pl_ablate_effect_json(const pl_ablate_effect *e);

/* x <- x - (x.u) u for a unit vector u (not re-normalized; double dot). */
void pl_dir_remove(float *x, const float *u, size_t d);
/* Orthonormalize the k rows of U [k x d] in place by modified Gram-Schmidt
 * (twice, for stability); rows whose remaining norm is <= tol times their
 * original norm are dependent: they are zeroed and skipped. *rank gets the
 * number kept. */
pl_status pl_dir_orthonormalize(float *U, size_t k, size_t d, double tol, size_t *rank);
/* Remove the span of the k rows of U (any vectors) from each row of X [n x d]. */
pl_status pl_dir_remove_span(float *X, size_t n, const float *U, size_t k, size_t d);

/* Top heads: the k entries of score [n_layers x n_heads] with the largest
 * value (by_abs: largest |value|), ties by (layer, head); NaN entries are
 * skipped. out must hold min(k, n_layers*n_heads) entries. */
typedef struct {
    int layer, head;
    double score;
} pl_head_score;
pl_status pl_top_heads(const double *score, size_t n_layers, size_t n_heads, size_t k, int by_abs,
                       pl_head_score *out, size_t *n_out);
cJSON *pl_top_heads_json(const pl_head_score *h, size_t n);

/* Attention rows from the answer position: pattern is one example's
 * hook_pattern [n_heads x n_q x n_k] (rows sum to 1 over keys); the grid gets
 * rows "H0".. and cols = tokens (NULL: "0".."n_k-1") with
 * pattern[h][q][k] for q = query. */
pl_status pl_attn_rows(const float *pattern, size_t n_heads, size_t n_q, size_t n_k, size_t query,
                       const char *const *tokens, pl_grid *g);
/* For one head's attention row a [n_k]: the top k key positions (by weight,
 * ties by position) into pos[] / w[]; *n_out = min(k, n_k). */
void pl_attn_top_keys(const float *a, size_t n_k, size_t k, size_t *pos, float *w, size_t *n_out);

/* ======================================================================
 * Model side (model_run.c, model_patch.c): running a pl_model with hooks
 * for the analyses above. Everything works on whole prompts given as token
 * ids (prefix + email + suffix, prompt/prompt.h); the classifier score is
 * logit[pos_id] - logit[neg_id] at the last position.
 * ====================================================================== */

#include "model/model.h"

typedef struct pl_imodel pl_imodel;

/* A model with a runner for prompts of up to max_ctx tokens (batches of up
 * to max_batch tokens; 0: 4096) and the label-token readout. The model must
 * outlive it. One thread at a time. */
pl_status pl_imodel_new(const pl_model *m, int32_t pos_id, int32_t neg_id, int max_ctx, int max_batch,
                        pl_imodel **out);
void pl_imodel_free(pl_imodel *im);
/* The label-token readout (final norm, u_pos, u_neg as f32 owned by im,
 * softcap of the model). */
const pl_readout *pl_imodel_readout(const pl_imodel *im);
const pl_model *pl_imodel_model(const pl_imodel *im);

/* Floats per position of a hook point (d, n_head*head_dim, n_ff, ...);
 * 0 for hook_pattern (not per position). */
size_t pl_imodel_width(const pl_imodel *im, pl_hook_point p);

/* Edits applied during a forward, at (point, layer):
 *   RECORD  copy the activation of every position into dst [n_tok x width];
 *           for hook_pattern dst is [n_head x n_tok x n_tok];
 *   SET     overwrite: position pos (or every position with pos = -1) gets
 *           the row src (pos >= 0) or src + p*src_stride (pos = -1;
 *           src_stride 0 = the same row everywhere); src NULL = zeros. With
 *           head >= 0 (hook_q/k/v/z) only that head's slice is written;
 *   PROJECT remove the unit direction dir [width] at pos (or every
 *           position): x <- x - (x.dir) dir.
 * seq selects the batch sequence in batched runs (-1: all). */
typedef enum { PL_EDIT_RECORD = 0, PL_EDIT_SET, PL_EDIT_PROJECT } pl_edit_kind;
typedef struct {
    pl_edit_kind kind;
    pl_hook_point point;
    int layer;
    int pos;
    int head;
    float *dst;
    const float *src;
    size_t src_stride;
    const float *dir;
    int seq;
} pl_edit;

/* One forward of a whole prompt with edits. score (may be NULL) gets the
 * classifier score; logits_last (may be NULL) the last row [n_vocab]. */
pl_status pl_imodel_run(pl_imodel *im, const int32_t *ids, int n, const pl_edit *edits, size_t n_edits,
                        double *score, float *logits_last);

/* Logit lens of one prompt: rows "L<l>.resid_pre", "L<l>.resid_mid",
 * "L<l>.resid_post" for every layer, cols = positions; value = readout
 * score of that residual (pl_lens_score). *real gets the model's score. */
pl_status pl_imodel_lens(pl_imodel *im, const int32_t *ids, int n, pl_grid *g, double *real);

/* DLA of one prompt at the last position: components "embed", "L<l>H<h>"
 * for every head, "L<l>.mlp" for every layer, and "rest" (final residual
 * minus the sum of the others: zero up to rounding for f32 weights, the
 * quantized-activation error otherwise). contributions with the final-norm
 * scale frozen (pl_dla); they sum to the pre-softcap score. */
typedef struct {
    size_t n_comp;
    char **labels;
    double *contrib;
    double scale, sum, score;   /* score: the model's real score */
    double *head_grid;          /* [n_layer x n_head] head contributions */
    size_t n_layer, n_head;
} pl_imodel_dla;
pl_status pl_imodel_dla_run(pl_imodel *im, const int32_t *ids, int n, pl_imodel_dla *out);
void pl_imodel_dla_free(pl_imodel_dla *d);

/* Attention pattern of one layer for one prompt: [n_head x n x n] malloc'd. */
pl_status pl_imodel_pattern(pl_imodel *im, const int32_t *ids, int n, int layer, float **out);

/* Activation patching between a clean and a corrupted prompt. Denoising
 * runs the corrupted prompt and writes in clean activations; noising runs
 * the clean prompt and writes in corrupted ones. Position alignment: the
 * common token prefix maps to itself, the common token suffix is aligned
 * from the end; between them positions map one to one when the two prompts
 * have the same length and have no counterpart otherwise (NaN cells).
 * Per-position points (resid_pre, attn_out, mlp_out, resid_mid,
 * resid_post): grid rows = layers, cols = positions of the run prompt.
 * hook_z: rows = layers, cols = heads, the head patched at every aligned
 * position. Values: normalized recovery (pl_patch_recovery); scores: the
 * raw patched scores. */
typedef struct {
    double clean, corrupted;
    pl_grid recovery;
    double *scores;       /* same shape */
    int n_run;            /* tokens of the run prompt */
} pl_patch_result;
pl_status pl_imodel_patch(pl_imodel *im, const int32_t *clean, int n_clean, const int32_t *corrupt, int n_corrupt,
                          pl_hook_point point, int noising, pl_patch_result *out);
void pl_patch_result_free(pl_patch_result *r);
/* Per-position sweeps skip a (layer, position) whose patched-in value is
 * bitwise the run's own (the result is then exactly the unpatched score)
 * unless this is switched off (default on). */
void pl_imodel_set_skip_identical(pl_imodel *im, int on);
/* The alignment used above: map[p] for each position p of `run` (length
 * n_run) into `src`, or -1. */
void pl_patch_align(const int32_t *run, int n_run, const int32_t *src, int n_src, int *map);

#endif
