/* explain.c — the explainer entry point and the mask oracle.
 *
 * pl_explain_run validates options, sets up the oracle (a hash set of
 * evaluated masks plus the queue of the current round) and dispatches to
 * the method. The oracle guarantees that the value function never sees the
 * same mask twice for one explanation, and that it is called with batches of
 * up to max_batch masks from the calling thread only.
 */
#include "xinternal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- oracle ---------------------------------------------------------------- */

static void pack(const uint8_t *mask, size_t M, size_t W, uint64_t *key) {
    memset(key, 0, W * sizeof *key);
    for (size_t i = 0; i < M; i++)
        if (mask[i]) key[i >> 6] |= 1ull << (i & 63);
}

static void unpack(const uint64_t *key, size_t M, uint8_t *mask) {
    for (size_t i = 0; i < M; i++) mask[i] = (uint8_t)((key[i >> 6] >> (i & 63)) & 1);
}

pl_status pl_xo_init(pl_xoracle *o, pl_value_fn fn, void *ctx, size_t M, size_t max_batch) {
    memset(o, 0, sizeof *o);
    o->fn = fn;
    o->ctx = ctx;
    o->M = M;
    o->W = (M + 63) / 64;
    if (o->W == 0) o->W = 1;
    o->max_batch = max_batch ? max_batch : 4096;
    size_t bsz;
    if (!pl_mul_ok(o->max_batch, M ? M : 1, &bsz)) return pl_error(PL_ERR_INVALID, "explain: batch size too large");
    o->batch = malloc(bsz);
    o->out = malloc(o->max_batch * sizeof *o->out);
    o->cap_e = 64;
    o->keys = malloc(o->cap_e * o->W * sizeof *o->keys);
    o->vals = malloc(o->cap_e * sizeof *o->vals);
    o->cap_s = 256;
    o->slots = calloc(o->cap_s, sizeof *o->slots);
    if (!o->batch || !o->out || !o->keys || !o->vals || !o->slots) {
        pl_xo_free(o);
        return pl_error(PL_ERR_NOMEM, "explain: out of memory for the mask cache");
    }
    return PL_OK;
}

void pl_xo_free(pl_xoracle *o) {
    free(o->batch);
    free(o->out);
    free(o->keys);
    free(o->vals);
    free(o->slots);
    memset(o, 0, sizeof *o);
}

static size_t hash_key(const uint64_t *key, size_t W) {
    return (size_t)pl_hash64(key, W * sizeof *key, 0x5eedULL);
}

static pl_status grow_slots(pl_xoracle *o) {
    size_t ncap = o->cap_s * 2;
    size_t *ns = calloc(ncap, sizeof *ns);
    if (!ns) return pl_error(PL_ERR_NOMEM, "explain: out of memory for the mask cache");
    for (size_t e = 0; e < o->n_e; e++) {
        size_t h = hash_key(o->keys + e * o->W, o->W) & (ncap - 1);
        while (ns[h]) h = (h + 1) & (ncap - 1);
        ns[h] = e + 1;
    }
    free(o->slots);
    o->slots = ns;
    o->cap_s = ncap;
    return PL_OK;
}

pl_status pl_xo_request(pl_xoracle *o, const uint8_t *mask, size_t *id) {
    uint64_t kbuf[8];
    uint64_t *key = o->W <= 8 ? kbuf : malloc(o->W * sizeof *key);
    if (!key) return pl_error(PL_ERR_NOMEM, "explain: out of memory");
    pack(mask, o->M, o->W, key);
    o->requests++;
    size_t h = hash_key(key, o->W) & (o->cap_s - 1);
    while (o->slots[h]) {
        size_t e = o->slots[h] - 1;
        if (memcmp(o->keys + e * o->W, key, o->W * sizeof *key) == 0) {
            *id = e;
            if (key != kbuf) free(key);
            return PL_OK;
        }
        h = (h + 1) & (o->cap_s - 1);
    }
    if (o->n_e == o->cap_e) {
        size_t nc = o->cap_e * 2;
        uint64_t *nk = realloc(o->keys, nc * o->W * sizeof *nk);
        if (nk) o->keys = nk;
        double *nv = nk ? realloc(o->vals, nc * sizeof *nv) : NULL;
        if (nv) o->vals = nv;
        if (!nk || !nv) {
            if (key != kbuf) free(key);
            return pl_error(PL_ERR_NOMEM, "explain: out of memory for the mask cache");
        }
        o->cap_e = nc;
    }
    size_t e = o->n_e++;
    memcpy(o->keys + e * o->W, key, o->W * sizeof *key);
    o->vals[e] = NAN;
    o->slots[h] = e + 1;
    if (key != kbuf) free(key);
    *id = e;
    if (2 * o->n_e > o->cap_s) return grow_slots(o);
    return PL_OK;
}

pl_status pl_xo_flush(pl_xoracle *o) {
    while (o->n_done < o->n_e) {
        size_t n = o->n_e - o->n_done;
        if (n > o->max_batch) n = o->max_batch;
        for (size_t j = 0; j < n; j++) unpack(o->keys + (o->n_done + j) * o->W, o->M, o->batch + j * o->M);
        pl_status st = o->fn(o->ctx, o->batch, n, o->M, o->out);
        o->calls++;
        if (st != PL_OK) return pl_error_wrap(st, "explain: value function");
        for (size_t j = 0; j < n; j++) {
            if (!isfinite(o->out[j]))
                return pl_error(PL_ERR_NUMERIC, "explain: value function returned %g for mask %zu of a batch of %zu",
                                o->out[j], j, n);
            o->vals[o->n_done + j] = o->out[j];
        }
        o->n_done += n;
        o->evals += n;
    }
    return PL_OK;
}

/* ---- entry point ------------------------------------------------------------- */

static const char *method_names[] = {"exact", "permutation", "kernel", "partition"};

const char *pl_xmethod_name(pl_xmethod m) {
    return (unsigned)m < 4 ? method_names[m] : "unknown";
}

pl_status pl_xmethod_parse(const char *s, pl_xmethod *m) {
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, method_names[i]) == 0) {
            *m = (pl_xmethod)i;
            return PL_OK;
        }
    return pl_error(PL_ERR_INVALID, "explain: unknown method '%s' (exact|permutation|kernel|partition)",
                    s ? s : "(null)");
}

void pl_xopts_init(pl_xopts *o, pl_xmethod m) {
    memset(o, 0, sizeof *o);
    o->method = m;
}

void pl_xresult_free(pl_xresult *r) {
    if (!r) return;
    free(r->phi);
    free(r->node_values);
    memset(r, 0, sizeof *r);
}

pl_status pl_explain_run(pl_value_fn fn, void *ctx, size_t M, const pl_xopts *opt, pl_xresult *res) {
    memset(res, 0, sizeof *res);
    if (!fn || !opt) return pl_error(PL_ERR_INVALID, "explain: no value function or options");
    if (M == 0) return pl_error(PL_ERR_INVALID, "explain: no features to explain");
    if ((unsigned)opt->method > PL_XM_PARTITION) return pl_error(PL_ERR_INVALID, "explain: bad method %d", opt->method);
    if (opt->method == PL_XM_EXACT && M > 20)
        return pl_error(PL_ERR_INVALID, "explain: exact needs 2^M evaluations; M = %zu > 20", M);
    if (opt->method == PL_XM_PARTITION) {
        if (!opt->tree) return pl_error(PL_ERR_INVALID, "explain: partition needs a hierarchy (opts.tree)");
    }
    if (opt->tree && opt->tree->n_leaves != M)
        return pl_error(PL_ERR_INVALID, "explain: hierarchy has %zu leaves, game has %zu features",
                        opt->tree->n_leaves, M);
    pl_xoracle o;
    size_t mb = opt->method == PL_XM_PARTITION ? 0 : opt->batch_size;
    pl_status st = pl_xo_init(&o, fn, ctx, M, mb);
    if (st) return st;
    res->n_features = M;
    res->method = opt->method;
    res->phi = calloc(M, sizeof *res->phi);
    if (!res->phi) {
        pl_xo_free(&o);
        return pl_error(PL_ERR_NOMEM, "explain: out of memory");
    }
    switch (opt->method) {
    case PL_XM_EXACT: st = pl_x_exact(&o, opt, res); break;
    case PL_XM_PERMUTATION: st = pl_x_permutation(&o, opt, res); break;
    case PL_XM_KERNEL: st = pl_x_kernel(&o, opt, res); break;
    case PL_XM_PARTITION: st = pl_x_partition(&o, opt, res); break;
    }
    res->requests = o.requests;
    res->evals = o.evals;
    res->calls = o.calls;
    pl_xo_free(&o);
    if (st) pl_xresult_free(res);
    return st;
}
