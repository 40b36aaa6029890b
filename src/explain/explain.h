/* explain.h — SHAP attributions over token-id masks: features, hierarchies,
 * explainers (exact, permutation, KernelSHAP, Partition/Owen), global
 * aggregation and rendering (JSON, ANSI terminal, HTML).
 *
 * The explainers never see a model. They see an abstract batched value
 * function v(S) over feature masks (pl_value_fn). The model side (engine
 * work) turns each mask into a masked token-id sequence with
 * pl_explain_apply_mask() and scores it; the explainers only decide which
 * masks to ask for. Every explainer collects the masks of a round, drops
 * masks it has already evaluated (a hash set over the explainer's lifetime),
 * and calls the value function once per round, so the model side can batch
 * and reuse the KV cache of shared prefixes.
 *
 * Methods (see docs/explain.md for the estimators and references):
 *   exact        all 2^M coalitions; Shapley (1953); M <= 20.
 *   permutation  antithetic permutation sampling: each permutation is walked
 *                forward (features switched on in order) and backward
 *                (switched off in the same order), 2M+1 evaluations per
 *                permutation as in shap's PermutationExplainer.
 *   kernel       KernelSHAP (Lundberg & Lee 2017): Shapley-kernel weighted
 *                least squares with the efficiency constraint, paired
 *                (complement) sampling, full enumeration of the small and
 *                large subset sizes the budget affords, as shap's
 *                KernelExplainer with l1_reg=False.
 *   partition    recursive Owen values over a binary hierarchy, best-first by
 *                |delta f| x weight under a max_evals budget, as shap's
 *                PartitionExplainer with fixed_context=None.
 *
 * Efficiency: exact, permutation, partition and kernel return values whose
 * sum equals f(all present) - f(none present) up to rounding.
 */
#ifndef PL_EXPLAIN_H
#define PL_EXPLAIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* ---- the value function -------------------------------------------------- */

/* v(S) for a batch of coalitions.
 *   masks: [n_masks x n_features] bytes, row-major; 1 = feature present
 *          (kept as in the input), 0 = feature masked.
 *   out:   [n_masks] scores, written by the callee.
 * Contract: deterministic (the same mask gives the same score); called from
 * one thread at a time (the thread that runs the explainer), never
 * concurrently, so the callee may parallelise internally and keep state in
 * ctx. n_masks >= 1. Returning non-OK aborts the explainer with that status
 * (set pl_error). Non-finite scores abort with PL_ERR_NUMERIC. */
typedef pl_status (*pl_value_fn)(void *ctx, const uint8_t *masks, size_t n_masks,
                                 size_t n_features, double *out);

/* ---- token sequences and features ----------------------------------------- */

/* A byte span [start, end) into a text. */
typedef struct {
    size_t start, end;
} pl_span;

/* The explained part of a prompt: token ids with the byte span each token
 * covers in text (from the tokenizer's offsets; spans may be empty for
 * special tokens, must be non-decreasing and inside text). */
typedef struct {
    const char *text;
    size_t text_len;
    const int32_t *ids;    /* [n_tokens] */
    const pl_span *spans;  /* [n_tokens] */
    size_t n_tokens;
} pl_tokseq;

typedef enum {
    PL_FEAT_TOKEN = 0, /* one feature per token */
    PL_FEAT_WORD,      /* tokens grouped by whitespace-separated words (default) */
    PL_FEAT_SENTENCE,  /* tokens grouped by sentences (. ! ? or blank line ends one) */
    PL_FEAT_FIELD      /* one feature per field span (subject, from, body, each URL) */
} pl_feat_level;

/* A named field span of the text (e.g. "subject" [0,24)). Fields may nest (a
 * URL inside the body): a token belongs to the smallest field containing its
 * start byte. */
typedef struct {
    const char *name;
    pl_span span;
} pl_field;

/* Features: a partition of (some of) the tokens. Feature f owns tokens
 * tok[ptr[f] .. ptr[f+1]) (ascending). Tokens in no feature are never masked
 * (template tokens, tokens outside every field). text[f] is the feature's
 * text (its tokens' bytes joined, gaps between non-contiguous pieces as
 * " "), field[f] the index of its field (-1 none), sentence[f] and word[f]
 * the index of its sentence / word (for hierarchies). */
typedef struct {
    size_t n_features, n_tokens;
    size_t *ptr;      /* [n_features + 1] */
    size_t *tok;      /* [ptr[n_features]] token indices */
    char **text;      /* [n_features] malloc'd UTF-8 */
    pl_span *span;    /* [n_features] byte span from first to last token */
    int32_t *field;   /* [n_features] */
    int32_t *sentence;
    int32_t *word;
    pl_feat_level level;
} pl_features;

/* Group the tokens of seq into features at the given level. fields may be
 * NULL (then PL_FEAT_FIELD is invalid and every token is in field -1). With
 * fields given, tokens outside every field are left out of all features.
 * Errors: PL_ERR_INVALID for spans out of order or outside the text. */
pl_status pl_features_build(const pl_tokseq *seq, const pl_field *fields, size_t n_fields,
                            pl_feat_level level, pl_features *out);
/* Features from an explicit token -> feature map (-1 = not a feature);
 * feature ids must be 0..n_features-1, each used. text may be NULL. */
pl_status pl_features_from_map(const pl_tokseq *seq, const int32_t *tok_feature, size_t n_features,
                               pl_features *out);
void pl_features_free(pl_features *f);

/* ---- masking (for the model side) ----------------------------------------- */

typedef enum {
    PL_MASK_REPLACE = 0, /* each masked token becomes mask_id */
    PL_MASK_COLLAPSE,    /* each run of consecutive masked tokens becomes one mask_id */
    PL_MASK_DELETE,      /* masked tokens are removed (the sequence shortens) */
    PL_MASK_BASELINE     /* masked token i becomes baseline_ids[i] (same length) */
} pl_mask_policy;

typedef struct {
    pl_mask_policy policy;
    int32_t mask_id;              /* REPLACE / COLLAPSE */
    const int32_t *baseline_ids;  /* BASELINE: [n_tokens] */
} pl_mask_spec;

const char *pl_mask_policy_name(pl_mask_policy p);

/* The masked id sequence for one feature mask (1 = present). out must hold
 * n_tokens ids; *n_out gets the length written (shorter for DELETE and
 * COLLAPSE). Tokens in no feature are always kept. */
pl_status pl_explain_apply_mask(const int32_t *ids, size_t n_tokens, const pl_features *feat,
                                const uint8_t *mask, const pl_mask_spec *spec, int32_t *out,
                                size_t *n_out);

/* ---- hierarchies ------------------------------------------------------------ */

/* A binary hierarchy over M leaves in the scipy/shap linkage layout: leaves
 * are nodes 0..M-1, internal node M+i has children left[i], right[i], height
 * height[i] (> 0; shap's PartitionExplainer stops at negative heights) and
 * size[i] leaves. The root is node 2M-2 (the last row). M = 1 has no rows.
 * A negative height marks a group the partition explainer never splits (it
 * takes the group's credit as a whole and lowers it by leaf counts), as in
 * shap. */
typedef struct {
    size_t n_leaves;
    int32_t *left, *right; /* [M-1] */
    double *height;        /* [M-1] */
    int32_t *size;         /* [M-1] */
} pl_xtree;

/* From a linkage matrix [M-1 x 4] (left, right, height, size as doubles);
 * validated (each node used once, children before parents, sizes add up). */
pl_status pl_xtree_from_linkage(const double *rows, size_t n_leaves, pl_xtree *t);
/* Balanced tree over leaves in order: the left half gets ceil(k/2) leaves. */
pl_status pl_xtree_balanced(size_t n_leaves, pl_xtree *t);
/* The email structure: fields -> sentences -> words -> tokens (as far as the
 * features' level allows), an n-ary tree binarized deterministically: each
 * n-ary node with k children is split recursively into the two runs of
 * children whose leaf counts are closest to half (on ties the left part gets
 * the larger share).
 * Heights are size / M, as in shap's text clustering. */
pl_status pl_xtree_email(const pl_features *feat, pl_xtree *t);
/* shap's Text-masker clustering (shap/maskers/_text.py partition_tree):
 * greedy merging of adjacent groups by heuristic score (sub-word
 * continuations "##x" +20, apostrophe endings +15, control tokens "[X]"
 * -1000, unbalanced brackets -100, openers -2, connectors and/or/but -2,
 * commas -10/-1, sentence ends -20/-1, size penalty -(|a|+|b|)), first
 * maximum wins. tokens are the already prepared strings; special tokens are
 * merged last. Heights are size / max size (Text.clustering). */
pl_status pl_xtree_shap_text(const char *const *tokens, size_t n, const char *const *special,
                             size_t n_special, pl_xtree *t);
/* Text.clustering's preparation of token segments (each token's text up to
 * the next token's start): a segment becomes "##" + strip(segment) when the
 * previous segment does not end in a non-word character, it starts with an
 * ASCII letter and the previous prepared token is not empty; otherwise
 * strip(segment). Non-ASCII bytes count as word characters. Returns malloc'd
 * strings in *out (free each and the array). */
pl_status pl_xtree_shap_prepare(const char *const *segments, size_t n, char ***out);
/* shap's text clustering over features in text order: segment i is the
 * text from feature i's start to feature i+1's start (shap's token
 * segments), then pl_xtree_shap_prepare and pl_xtree_shap_text with no
 * special tokens. PL_ERR_INVALID when feature spans are out of text order. */
pl_status pl_xtree_shap_features(const pl_features *feat, const pl_tokseq *seq, pl_xtree *t);
void pl_xtree_free(pl_xtree *t);

/* ---- explainers --------------------------------------------------------------- */

typedef enum {
    PL_XM_EXACT = 0,
    PL_XM_PERMUTATION,
    PL_XM_KERNEL,
    PL_XM_PARTITION
} pl_xmethod;

const char *pl_xmethod_name(pl_xmethod m);
/* Parse "exact" | "permutation" | "kernel" | "partition". */
pl_status pl_xmethod_parse(const char *s, pl_xmethod *m);

typedef struct {
    pl_xmethod method;
    /* Budget in value-function evaluations (masks requested, duplicates
     * included, as shap counts them); 0 = the method's default:
     *   permutation: max(500, 2 (2M+1)), npermutations = max_evals / (2M+1)
     *   kernel:      nsamples = 2M + 2048 (capped at 2^M - 2)
     *   partition:   500 (2 for the endpoints + 498 for the recursion)
     *   exact:       ignored (2^M). */
    size_t max_evals;
    uint64_t seed;            /* permutation and kernel sampling */
    size_t batch_size;        /* partition: masks per round (0 = 10, shap's default);
                                 other methods: max masks per value-function call
                                 (0 = 4096) */
    const pl_xtree *tree;     /* partition: required; permutation: optional,
                                 then permutations respect the tree (random
                                 child swaps, as shap's partition_tree_shuffle) */
    const int32_t *perms;     /* permutation: optional explicit orders
                                 [n_perms x M] (replaces the sampling) */
    size_t n_perms;
} pl_xopts;

/* Defaults: method partition, max_evals 0 (auto), seed 0, batch 0. */
void pl_xopts_init(pl_xopts *o, pl_xmethod m);

typedef struct {
    size_t n_features;
    double *phi;              /* [M] attributions */
    double base_value;        /* f(no feature present) */
    double fx;                /* f(all present) */
    pl_xmethod method;
    size_t budget;            /* the max_evals in force (after defaults) */
    size_t requests;          /* masks asked for, duplicates included */
    size_t evals;             /* distinct masks sent to the value function */
    size_t calls;             /* value-function calls */
    size_t n_perms;           /* permutation: permutations used */
    double *node_values;      /* partition: [2M-1] shap's hierarchical values
                                 (credit left on each node before lowering);
                                 NULL for other methods */
} pl_xresult;

/* Run one explainer for a game over M features. On error *res is left
 * empty (nothing to free). */
pl_status pl_explain_run(pl_value_fn fn, void *ctx, size_t n_features, const pl_xopts *opt,
                         pl_xresult *res);
void pl_xresult_free(pl_xresult *r);

/* ---- output ---------------------------------------------------------------------- */

/* Everything the renderers need about one explained example. feat may be
 * NULL (then features are named "f<i>" and have no spans). id, label_name
 * may be NULL. */
typedef struct {
    const char *id;
    const pl_xresult *res;
    const pl_features *feat;
    const pl_tokseq *seq;     /* for text and spans; may be NULL */
    const pl_mask_spec *mask; /* recorded in JSON; may be NULL */
} pl_xexample;

/* One JSON object (no trailing newline) appended to b:
 * {"id","method","budget","evals","requests","calls","base_value","fx",
 *  "sum_phi","efficiency_error","masking":{"policy","mask_id"},"level",
 *  "features":[{"index","text","start","end","tokens":[...],"phi"}]} */
pl_status pl_xexample_to_json(const pl_xexample *ex, pl_buf *b);
/* The text with each feature colored: red toward phishing (phi > 0), blue
 * toward legitimate, intensity by |phi| / max |phi| (24-bit ANSI background;
 * color = 0 gives plain text with [+0.12] markers instead). */
pl_status pl_xexample_render_ansi(const pl_xexample *ex, int color, pl_buf *b);
/* An HTML fragment: <div class="pl-explain"> with one <span> per feature
 * (inline background color, title = phi), text HTML-escaped, newlines <br>. */
pl_status pl_xexample_render_html(const pl_xexample *ex, pl_buf *b);

/* ---- global analysis ----------------------------------------------------------------- */

/* Aggregates per-feature |phi| over many examples, keyed by the lowercased
 * feature text (word type) or any key the caller gives, in slices: all, by
 * class (label 0/1), by source, by correct vs wrong prediction. */
typedef struct pl_xglobal pl_xglobal;

pl_status pl_xglobal_new(pl_xglobal **g);
void pl_xglobal_free(pl_xglobal *g);
/* Add one example: keys[i] (e.g. a pl_features text[i]; not NULL) and phi[i]
 * for i < n; label 0/1 (-1 unknown), source (may be NULL), correct 0/1 (-1
 * unknown). Keys are lowercased ASCII-wise and trimmed of surrounding
 * whitespace and punctuation. */
pl_status pl_xglobal_add(pl_xglobal *g, const char *const *keys, const double *phi, size_t n,
                         int label, const char *source, int correct);

/* One aggregated row. */
typedef struct {
    const char *key;
    size_t count;       /* occurrences (features) */
    size_t examples;    /* examples it occurs in */
    double mean_abs;    /* mean |phi| per occurrence */
    double mean;        /* mean signed phi */
} pl_xstat;

typedef enum { PL_XSLICE_ALL = 0, PL_XSLICE_LABEL, PL_XSLICE_SOURCE, PL_XSLICE_CORRECT } pl_xslice_kind;

/* The top rows of a slice by mean |phi| (ties by key), only keys with
 * count >= min_count. For LABEL / CORRECT, value is "0"/"1"; for SOURCE the
 * source name; ignored for ALL. *rows is malloc'd (free it; keys point into
 * g). */
pl_status pl_xglobal_top(const pl_xglobal *g, pl_xslice_kind kind, const char *value,
                         size_t min_count, size_t k, pl_xstat **rows, size_t *n_rows);
/* Stats of one key in a slice (count 0 when absent). */
pl_xstat pl_xglobal_get(const pl_xglobal *g, pl_xslice_kind kind, const char *value, const char *key);

/* Comparison of two result sets (two models / training sets): keys with
 * count >= min_count in at least one, sorted by |diff| descending where
 * diff = mean_abs(a) - mean_abs(b) (absent = 0). */
typedef struct {
    const char *key;
    size_t count_a, count_b;
    double mean_abs_a, mean_abs_b, diff;
} pl_xdiff;
pl_status pl_xglobal_compare(const pl_xglobal *a, const pl_xglobal *b, size_t min_count, size_t k,
                             pl_xdiff **rows, size_t *n_rows);

/* Dataset artifacts: source-distinctive tokens (from a corpus-identity
 * analysis: token, the source it marks, log-odds z). A key whose token has
 * |z| >= z_min and which ranks within the top_rank keys by mean |phi| (count
 * >= min_count) becomes a heuristic candidate. */
typedef struct {
    const char *token, *source;
    double z;
} pl_xartifact_in;
typedef struct {
    const char *key, *source;
    double z, mean_abs, mean;
    size_t count, rank;          /* rank by mean |phi| in the ALL slice (1 = top) */
    double mean_abs_in_source;   /* mean |phi| within examples of that source */
} pl_xcandidate;
pl_status pl_xglobal_artifacts(const pl_xglobal *g, const pl_xartifact_in *in, size_t n_in,
                               double z_min, size_t top_rank, size_t min_count,
                               pl_xcandidate **out, size_t *n_out);

/* JSON summary of a global set: {"examples","slices":{"all":[...],
 * "label=0":[...],...}} with the top k rows of each slice. */
pl_status pl_xglobal_to_json(const pl_xglobal *g, size_t min_count, size_t k, pl_buf *b);
/* JSON for a comparison and for artifact candidates. */
pl_status pl_xdiff_to_json(const pl_xdiff *rows, size_t n, pl_buf *b);
pl_status pl_xcandidates_to_json(const pl_xcandidate *c, size_t n, pl_buf *b);


/* ==== model value function (model_value.c) ====================================
 * The explainers' value function for one email scored by a causal LM in the
 * classifier view (prompt/prompt.h): features over the email's token ids
 * (token texts and byte offsets from the decoded token pieces; fields are the
 * subject, from and body values and each URL in the body), masked over ids
 * (never through strings), score = logit(phishing) - logit(legitimate) at the
 * answer position (or its sigmoid). All masks of one call run in one batched
 * forward; each variant reuses the KV cache of the email's unmasked prefix up
 * to a breakpoint at or before its first masked token (see docs/explain.md). */
#include "prompt/prompt.h"

#define PL_XMODEL_EXACT_MAX 16

typedef struct {
    pl_feat_level level;     /* PL_FEAT_WORD */
    pl_mask_policy policy;   /* PL_MASK_REPLACE */
    int32_t mask_id;         /* -1: the vocab's unk, else pad, else eos */
    int use_fields;          /* 1: features only inside the subject/from/body values */
    int prob;                /* 1: score = sigmoid(logit difference) */
    int max_batch_tokens;    /* new tokens per forward (0: 2048) */
    int max_segments;        /* caches the unmasked email is run into, a chain ending at
                                breakpoints (0: 1, at most 13); the same bits for any */
    int no_shared;           /* 1: variants of a call do not share their common prefixes, and
                                no caches are kept across calls */
    int pool_kib;            /* caches of earlier calls kept per email as fork sources,
                                in KiB (0: 512 MiB) */
} pl_xmodel_opts;
void pl_xmodel_opts_init(pl_xmodel_opts *o);

/* Per model: a runner and the template prefix's KV cache. m, t and p must
 * outlive it. One thread at a time. */
typedef struct pl_xmodel pl_xmodel;
pl_status pl_xmodel_new(pl_model *m, const pl_tokenizer *t, const pl_prompt *p, const pl_xmodel_opts *o,
                        pl_xmodel **out);
void pl_xmodel_free(pl_xmodel *x);
int32_t pl_xmodel_mask_id(const pl_xmodel *x);
const pl_xmodel_opts *pl_xmodel_get_opts(const pl_xmodel *x);

/* Per email: ids, token spans, features, mask spec, prefix chain. baseline
 * is required for PL_MASK_BASELINE (its ids, padded with the mask id / pad
 * to the email's length; extra ids dropped), ignored otherwise. */
typedef struct pl_xemail pl_xemail;
pl_status pl_xemail_new(pl_xmodel *x, const pl_record *r, const pl_record *baseline, pl_xemail **out);
void pl_xemail_free(pl_xemail *e);
/* The pl_value_fn; ctx is the pl_xemail. */
pl_status pl_xemail_value(void *ctx, const uint8_t *masks, size_t n_masks, size_t n_features, double *out);
const pl_features *pl_xemail_features(const pl_xemail *e);
const pl_tokseq *pl_xemail_tokseq(const pl_xemail *e);
const pl_mask_spec *pl_xemail_mask_spec(const pl_xemail *e);
int pl_xemail_truncated(const pl_xemail *e);
/* The masked email ids of one mask (appended to out). */
pl_status pl_xemail_masked_ids(const pl_xemail *e, const uint8_t *mask, pl_tokens *out);

typedef struct {
    size_t calls, variants, forwards;
    size_t tokens_run;   /* tokens run (prefix chain and shared prefixes included) */
    size_t shared_groups; /* groups of variants that shared a common prefix */
    size_t tokens_full;  /* tokens a run of each variant from the template prefix would take */
} pl_xemail_stats;
pl_xemail_stats pl_xemail_get_stats(const pl_xemail *e);

/* The evaluation budget in force for a method on M features with a user
 * max_evals (0 = auto): partition 500; permutation max(500, 2(2M+1)) and at
 * least 2M+1; kernel 2M+2048 capped at 2^M; exact 2^M, refused (PL_ERR_RANGE
 * with a message) above PL_XMODEL_EXACT_MAX features. */
pl_status pl_xmodel_budget(pl_xmethod m, size_t n_features, size_t max_evals, size_t *budget);
/* ==== end model value function ==== */

#endif
