/* xinternal.h — shared internals of the explain module (not public).
 *
 * The oracle sits between an explainer and the user's pl_value_fn: it
 * remembers every mask already evaluated (a hash set keyed by the packed
 * bits of the mask), queues new masks of the current round, and evaluates
 * the queue with as few value-function calls as the batch limit allows.
 */
#ifndef PL_EXPLAIN_INTERNAL_H
#define PL_EXPLAIN_INTERNAL_H

#include "explain.h"

typedef struct {
    pl_value_fn fn;
    void *ctx;
    size_t M, W;           /* features; 64-bit words per packed key */
    /* entries in insertion order */
    uint64_t *keys;        /* [cap_e * W] */
    double *vals;          /* [cap_e] */
    size_t n_e, cap_e;
    /* open-addressing index: slot -> entry + 1 (0 = empty) */
    size_t *slots;
    size_t cap_s;
    /* the current round: entries not yet evaluated are n_done .. n_e-1 */
    size_t n_done;
    size_t max_batch;
    uint8_t *batch;        /* [max_batch * M] */
    double *out;           /* [max_batch] */
    size_t requests, evals, calls;
} pl_xoracle;

pl_status pl_xo_init(pl_xoracle *o, pl_value_fn fn, void *ctx, size_t M, size_t max_batch);
void pl_xo_free(pl_xoracle *o);
/* Ask for v(mask); *id is the entry whose value is valid after pl_xo_flush. */
pl_status pl_xo_request(pl_xoracle *o, const uint8_t *mask, size_t *id);
/* Evaluate every pending entry (batched calls). */
pl_status pl_xo_flush(pl_xoracle *o);
static inline double pl_xo_value(const pl_xoracle *o, size_t id) { return o->vals[id]; }

/* Method implementations (shapley.c, partition.c). res->phi is allocated by
 * the caller with M zeros; they fill phi, base_value, fx and method fields. */
pl_status pl_x_exact(pl_xoracle *o, const pl_xopts *opt, pl_xresult *res);
pl_status pl_x_permutation(pl_xoracle *o, const pl_xopts *opt, pl_xresult *res);
pl_status pl_x_kernel(pl_xoracle *o, const pl_xopts *opt, pl_xresult *res);
pl_status pl_x_partition(pl_xoracle *o, const pl_xopts *opt, pl_xresult *res);

/* Leaves under each node of a tree: node n's leaves are
 * leaves[off[n] .. off[n+1]) (nodes 0..2M-2). Caller frees both. */
pl_status pl_xtree_leaf_sets(const pl_xtree *t, size_t **off, int32_t **leaves);

#endif
