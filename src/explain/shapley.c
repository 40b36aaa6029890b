/* shapley.c — exact Shapley values, antithetic permutation sampling and
 * KernelSHAP over a batched value function.
 *
 *   exact:       phi_i = sum_{S not containing i} |S|! (M-|S|-1)! / M! (v(S+i) - v(S))
 *                over all 2^M coalitions (Shapley 1953).
 *   permutation: for a permutation pi, the forward pass switches features on
 *                in pi's order and credits each with its marginal change; the
 *                backward pass switches them off in the same order (the
 *                antithetic reverse permutation). 2M+1 masks per permutation,
 *                phi = sum / (2 * npermutations) (shap PermutationExplainer).
 *   kernel:      KernelSHAP (Lundberg & Lee 2017): Shapley-kernel weighted
 *                least squares, with subset sizes enumerated in full while the
 *                budget affords it (smallest and largest sizes first, paired),
 *                the rest sampled with complements; the efficiency constraint
 *                is imposed by eliminating the last feature (as shap's
 *                KernelExplainer, l1_reg=False). Sampling uses phishlens' RNG,
 *                so the random part differs from shap's numpy draws.
 * Not done here: L1 feature selection (shap's num_features(10) default).
 */
#include "xinternal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- exact ----------------------------------------------------------------- */

pl_status pl_x_exact(pl_xoracle *o, const pl_xopts *opt, pl_xresult *res) {
    (void)opt;
    size_t M = o->M, N = (size_t)1 << M;
    uint8_t *mask = malloc(M);
    size_t *ids = malloc(N * sizeof *ids);
    double *v = malloc(N * sizeof *v);
    double *w = malloc(M * sizeof *w);
    pl_status st = PL_OK;
    if (!mask || !ids || !v || !w) {
        st = pl_error(PL_ERR_NOMEM, "explain: out of memory for 2^%zu coalitions", M);
        goto done;
    }
    for (size_t s = 0; s < N && !st; s++) {
        for (size_t i = 0; i < M; i++) mask[i] = (uint8_t)((s >> i) & 1);
        st = pl_xo_request(o, mask, &ids[s]);
    }
    if (!st) st = pl_xo_flush(o);
    if (st) goto done;
    for (size_t s = 0; s < N; s++) v[s] = pl_xo_value(o, ids[s]);
    /* w[k] = k! (M-k-1)! / M! = 1 / (M * C(M-1, k)) */
    for (size_t k = 0; k < M; k++) {
        double c = 1;
        for (size_t j = 1; j <= k; j++) c = c * (double)(M - j) / (double)j;
        w[k] = 1.0 / ((double)M * c);
    }
    double *phi = res->phi;
#pragma omp parallel for schedule(static)
    for (long li = 0; li < (long)M; li++) {
        size_t i = (size_t)li, bit = (size_t)1 << i;
        double acc = 0;
        for (size_t s = 0; s < N; s++) {
            if (s & bit) continue;
            acc += w[__builtin_popcountll((unsigned long long)s)] * (v[s | bit] - v[s]);
        }
        phi[i] = acc;
    }
    res->base_value = v[0];
    res->fx = v[N - 1];
    res->budget = N;
done:
    free(mask);
    free(ids);
    free(v);
    free(w);
    return st;
}

/* ---- permutation ---------------------------------------------------------------- */

/* In-order leaves of the tree with children swapped where sw[node - M] is set
 * (shap's partition_tree_shuffle). Iterative, explicit stack. */
static void tree_order(const pl_xtree *t, const uint8_t *sw, int32_t *order, int32_t *stack) {
    size_t M = t->n_leaves, n = 0, sp = 0;
    if (M == 1) {
        order[0] = 0;
        return;
    }
    stack[sp++] = (int32_t)(2 * M - 2);
    while (sp) {
        int32_t node = stack[--sp];
        if ((size_t)node < M) {
            order[n++] = node;
            continue;
        }
        size_t r = (size_t)node - M;
        int32_t first = sw[r] ? t->right[r] : t->left[r], second = sw[r] ? t->left[r] : t->right[r];
        stack[sp++] = second;
        stack[sp++] = first;
    }
}

pl_status pl_x_permutation(pl_xoracle *o, const pl_xopts *opt, pl_xresult *res) {
    size_t M = o->M, per = 2 * M + 1;
    size_t budget = opt->max_evals;
    if (budget == 0) budget = per * 2 > 500 ? per * 2 : 500;
    size_t np = opt->perms ? opt->n_perms : budget / per;
    if (np == 0)
        return pl_error(PL_ERR_INVALID,
                        "explain: permutation budget %zu is below one permutation (2M+1 = %zu evaluations)", budget,
                        per);
    res->budget = opt->perms ? np * per : budget;
    res->n_perms = np;
    int32_t *order = malloc(np * M * sizeof *order);
    size_t *ids = malloc(np * per * sizeof *ids);
    uint8_t *mask = malloc(M), *sw = malloc(M), *seen = calloc(M, 1);
    int32_t *stack = malloc(2 * M * sizeof *stack);
    pl_status st = PL_OK;
    if (!order || !ids || !mask || !sw || !seen || !stack) {
        st = pl_error(PL_ERR_NOMEM, "explain: out of memory for %zu permutations", np);
        goto done;
    }
    pl_rng master;
    pl_rng_seed(&master, opt->seed);
    for (size_t p = 0; p < np; p++) {
        int32_t *ord = order + p * M;
        if (opt->perms) {
            memcpy(ord, opt->perms + p * M, M * sizeof *ord);
            memset(seen, 0, M);
            for (size_t i = 0; i < M; i++) {
                if (ord[i] < 0 || (size_t)ord[i] >= M || seen[ord[i]]) {
                    st = pl_error(PL_ERR_INVALID, "explain: perms[%zu] is not a permutation of 0..%zu (entry %zu)",
                                  p, M - 1, i);
                    goto done;
                }
                seen[ord[i]] = 1;
            }
            continue;
        }
        pl_rng r = pl_rng_split(&master, p);
        if (opt->tree) {
            for (size_t j = 0; j + 1 < M; j++) sw[j] = (uint8_t)(pl_rng_u64(&r) >> 63);
            tree_order(opt->tree, sw, ord, stack);
        } else {
            for (size_t i = 0; i < M; i++) ord[i] = (int32_t)i;
            pl_rng_shuffle(&r, ord, M, sizeof *ord);
        }
    }
    /* one round: every mask of every permutation, duplicates dropped by the oracle */
    for (size_t p = 0; p < np && !st; p++) {
        const int32_t *ord = order + p * M;
        size_t *id = ids + p * per;
        memset(mask, 0, M);
        st = pl_xo_request(o, mask, &id[0]);
        for (size_t i = 0; i < M && !st; i++) {
            mask[ord[i]] = 1;
            st = pl_xo_request(o, mask, &id[1 + i]);
        }
        for (size_t i = 0; i < M && !st; i++) {
            mask[ord[i]] = 0;
            st = pl_xo_request(o, mask, &id[1 + M + i]);
        }
    }
    if (!st) st = pl_xo_flush(o);
    if (st) goto done;
    double *phi = res->phi;
    for (size_t p = 0; p < np; p++) {
        const int32_t *ord = order + p * M;
        const size_t *id = ids + p * per;
        size_t i = 0;
        for (size_t k = 0; k < M; k++, i++) phi[ord[k]] += pl_xo_value(o, id[i + 1]) - pl_xo_value(o, id[i]);
        for (size_t k = 0; k < M; k++, i++) phi[ord[k]] += pl_xo_value(o, id[i]) - pl_xo_value(o, id[i + 1]);
    }
    for (size_t k = 0; k < M; k++) phi[k] /= (double)(2 * np);
    res->base_value = pl_xo_value(o, ids[0]);
    res->fx = pl_xo_value(o, ids[M]);
done:
    free(order);
    free(ids);
    free(mask);
    free(sw);
    free(seen);
    free(stack);
    return st;
}

/* ---- kernel --------------------------------------------------------------------- */

typedef struct {
    uint8_t *m;   /* [cap * M] */
    double *w;    /* [cap] kernel weights */
    size_t *id;   /* [cap] oracle entries */
    size_t n, cap, M;
} ksamples;

static pl_status ks_add(ksamples *k, const uint8_t *mask, double w) {
    if (k->n == k->cap) {
        size_t nc = k->cap ? 2 * k->cap : 256;
        uint8_t *nm = realloc(k->m, nc * k->M);
        if (nm) k->m = nm;
        double *nw = nm ? realloc(k->w, nc * sizeof *nw) : NULL;
        if (nw) k->w = nw;
        size_t *ni = nw ? realloc(k->id, nc * sizeof *ni) : NULL;
        if (ni) k->id = ni;
        if (!ni) return pl_error(PL_ERR_NOMEM, "explain: out of memory for kernel samples");
        k->cap = nc;
    }
    memcpy(k->m + k->n * k->M, mask, k->M);
    k->w[k->n] = w;
    k->n++;
    return PL_OK;
}

static double binom(size_t n, size_t k) {
    double c = 1;
    for (size_t j = 1; j <= k; j++) c = c * (double)(n - k + j) / (double)j;
    return c;
}

/* Solve A x = b (n x n, row-major, overwritten) by Gaussian elimination with
 * partial pivoting. Returns 0 when singular. */
static int solve_dense(double *A, double *b, size_t n) {
    double scale = 0;
    for (size_t i = 0; i < n * n; i++) scale = fmax(scale, fabs(A[i]));
    for (size_t c = 0; c < n; c++) {
        size_t p = c;
        for (size_t r = c + 1; r < n; r++)
            if (fabs(A[r * n + c]) > fabs(A[p * n + c])) p = r;
        if (!(fabs(A[p * n + c]) > 1e-13 * scale)) return 0;
        if (p != c) {
            for (size_t j = 0; j < n; j++) {
                double t = A[c * n + j];
                A[c * n + j] = A[p * n + j];
                A[p * n + j] = t;
            }
            double t = b[c];
            b[c] = b[p];
            b[p] = t;
        }
        for (size_t r = c + 1; r < n; r++) {
            double f = A[r * n + c] / A[c * n + c];
            if (f == 0) continue;
            for (size_t j = c; j < n; j++) A[r * n + j] -= f * A[c * n + j];
            b[r] -= f * b[c];
        }
    }
    for (size_t c = n; c-- > 0;) {
        double s = b[c];
        for (size_t j = c + 1; j < n; j++) s -= A[c * n + j] * b[j];
        b[c] = s / A[c * n + c];
    }
    return 1;
}

/* The hash set of sampled masks (index into ksamples), for merging repeats. */
typedef struct {
    size_t *slot;
    size_t cap;
} kset;

static size_t kset_find(const kset *s, const ksamples *k, const uint8_t *mask, int *found) {
    size_t h = (size_t)pl_hash64(mask, k->M, 7) & (s->cap - 1);
    while (s->slot[h]) {
        if (memcmp(k->m + (s->slot[h] - 1) * k->M, mask, k->M) == 0) {
            *found = 1;
            return h;
        }
        h = (h + 1) & (s->cap - 1);
    }
    *found = 0;
    return h;
}

pl_status pl_x_kernel(pl_xoracle *o, const pl_xopts *opt, pl_xresult *res) {
    size_t M = o->M;
    pl_status st = PL_OK;
    uint8_t *mask = calloc(M, 1);
    size_t *comb = malloc((M + 1) * sizeof *comb);
    int32_t *perm = malloc(M * sizeof *perm);
    double *wv = malloc((M + 1) * sizeof *wv), *rw = malloc((M + 1) * sizeof *rw);
    ksamples K = {.M = M};
    kset set = {0};
    double *A = NULL, *b = NULL;
    if (!mask || !comb || !perm || !wv || !rw) {
        st = pl_error(PL_ERR_NOMEM, "explain: out of memory");
        goto done;
    }
    /* endpoints */
    size_t id0, id1;
    st = pl_xo_request(o, mask, &id0);
    memset(mask, 1, M);
    if (!st) st = pl_xo_request(o, mask, &id1);
    if (!st) st = pl_xo_flush(o);
    if (st) goto done;
    double f0 = pl_xo_value(o, id0), fx = pl_xo_value(o, id1);
    res->base_value = f0;
    res->fx = fx;
    size_t nsamples = opt->max_evals ? opt->max_evals : 2 * M + 2048;
    if (M <= 30) {
        size_t maxs = ((size_t)1 << M) - 2;
        if (nsamples > maxs) nsamples = maxs;
    }
    res->budget = nsamples;
    if (M == 1) {
        res->phi[0] = fx - f0;
        goto done;
    }
    size_t nsizes = M / 2, npaired = (M - 1) / 2; /* ceil((M-1)/2), floor((M-1)/2) */
    double wsum = 0;
    for (size_t k = 1; k <= nsizes; k++) {
        wv[k - 1] = (double)(M - 1) / (double)(k * (M - k));
        if (k <= npaired) wv[k - 1] *= 2;
        wsum += wv[k - 1];
    }
    for (size_t k = 0; k < nsizes; k++) {
        wv[k] /= wsum;
        rw[k] = wv[k];
    }
    /* full enumeration of the sizes the budget affords */
    size_t nfull = 0;
    double left = (double)nsamples;
    for (size_t k = 1; k <= nsizes; k++) {
        double nsub = binom(M, k);
        if (k <= npaired) nsub *= 2;
        if (!(left * rw[k - 1] / nsub >= 1.0 - 1e-8)) break;
        nfull++;
        left -= nsub;
        if (rw[k - 1] < 1.0) {
            double d = 1 - rw[k - 1];
            for (size_t j = 0; j < nsizes; j++) rw[j] /= d;
        }
        double w = wv[k - 1] / binom(M, k);
        if (k <= npaired) w /= 2;
        for (size_t j = 0; j < k; j++) comb[j] = j;
        for (;;) {
            memset(mask, 0, M);
            for (size_t j = 0; j < k; j++) mask[comb[j]] = 1;
            if ((st = ks_add(&K, mask, w))) goto done;
            if (k <= npaired) {
                for (size_t j = 0; j < M; j++) mask[j] ^= 1;
                if ((st = ks_add(&K, mask, w))) goto done;
            }
            /* next combination in lexicographic order */
            size_t j = k;
            while (j > 0 && comb[j - 1] == M - k + j - 1) j--;
            if (j == 0) break;
            comb[j - 1]++;
            for (size_t q = j; q < k; q++) comb[q] = comb[q - 1] + 1;
        }
    }
    size_t nfixed = K.n;
    if (nfull != nsizes && nsamples > nfixed) {
        size_t samples_left = nsamples - nfixed;
        /* categorical over the remaining sizes; paired sizes draw two masks */
        double rs = 0;
        for (size_t k = nfull; k < nsizes; k++) {
            rw[k] = wv[k] / (k < npaired ? 2.0 : 1.0);
            rs += rw[k];
        }
        set.cap = 64;
        while (set.cap < 4 * (nsamples + 1)) set.cap *= 2;
        set.slot = calloc(set.cap, sizeof *set.slot);
        if (!set.slot) {
            st = pl_error(PL_ERR_NOMEM, "explain: out of memory");
            goto done;
        }
        pl_rng r;
        pl_rng_seed(&r, opt->seed ^ 0x6b65726e656cULL);
        size_t draws = 4 * samples_left;
        for (size_t d = 0; d < draws && samples_left > 0; d++) {
            double u = pl_rng_uniform(&r) * rs, c = 0;
            size_t ks = nsizes - 1;
            for (size_t k = nfull; k < nsizes; k++) {
                c += rw[k];
                if (u < c) {
                    ks = k;
                    break;
                }
            }
            size_t size = ks + 1;
            for (size_t i = 0; i < M; i++) perm[i] = (int32_t)i;
            for (size_t i = 0; i < size; i++) { /* partial Fisher-Yates */
                size_t j = i + (size_t)pl_rng_below(&r, M - i);
                int32_t t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
            }
            memset(mask, 0, M);
            for (size_t i = 0; i < size; i++) mask[perm[i]] = 1;
            int found;
            size_t h = kset_find(&set, &K, mask, &found);
            size_t at = found ? set.slot[h] - 1 : K.n;
            if (found) {
                K.w[at] += 1.0;
            } else {
                if ((st = ks_add(&K, mask, 1.0))) goto done;
                set.slot[h] = at + 1;
                samples_left--;
            }
            if (samples_left > 0 && size <= npaired) {
                if (found) {
                    K.w[at + 1] += 1.0;
                } else {
                    for (size_t j = 0; j < M; j++) mask[j] ^= 1;
                    if ((st = ks_add(&K, mask, 1.0))) goto done;
                    samples_left--;
                }
            }
        }
        double wl = 0, ws = 0;
        for (size_t k = nfull; k < nsizes; k++) wl += wv[k];
        for (size_t s = nfixed; s < K.n; s++) ws += K.w[s];
        for (size_t s = nfixed; s < K.n; s++) K.w[s] *= wl / ws;
    }
    /* evaluate every sample in one round */
    for (size_t s = 0; s < K.n && !st; s++) {
        size_t id;
        st = pl_xo_request(o, K.m + s * M, &id);
        K.id[s] = id;
    }
    if (!st) st = pl_xo_flush(o);
    if (st) goto done;
    /* efficiency-constrained WLS: with d = fx - f0 and x_s = m_s[:M-1] - m_s[M-1],
     * y_s = v(s) - f0 - m_s[M-1] d; solve (X^T W X) w = X^T W y; phi_last = d - sum w */
    size_t n = M - 1;
    double d = fx - f0;
    A = calloc(n * n, sizeof *A);
    b = calloc(n, sizeof *b);
    if (!A || !b) {
        st = pl_error(PL_ERR_NOMEM, "explain: out of memory for the %zu x %zu normal matrix", n, n);
        goto done;
    }
    const ksamples *KK = &K;
#pragma omp parallel for schedule(static)
    for (long la = 0; la < (long)n; la++) {
        size_t a = (size_t)la;
        for (size_t c = 0; c <= a; c++) {
            double acc = 0;
            for (size_t s = 0; s < KK->n; s++) {
                const uint8_t *m = KK->m + s * M;
                int xa = (int)m[a] - (int)m[M - 1], xc = (int)m[c] - (int)m[M - 1];
                if (xa && xc) acc += KK->w[s] * (double)(xa * xc);
            }
            A[a * n + c] = acc;
        }
        double acc = 0;
        for (size_t s = 0; s < KK->n; s++) {
            const uint8_t *m = KK->m + s * M;
            int xa = (int)m[a] - (int)m[M - 1];
            if (!xa) continue;
            double y = pl_xo_value(o, KK->id[s]) - f0 - (double)m[M - 1] * d;
            acc += KK->w[s] * (double)xa * y;
        }
        b[a] = acc;
    }
    for (size_t a = 0; a < n; a++)
        for (size_t c = a + 1; c < n; c++) A[a * n + c] = A[c * n + a];
    if (!solve_dense(A, b, n)) {
        st = pl_error(PL_ERR_NUMERIC,
                      "explain: kernel regression is singular with %zu samples for %zu features; raise max_evals",
                      K.n, M);
        goto done;
    }
    double sw = 0;
    for (size_t a = 0; a < n; a++) {
        res->phi[a] = b[a];
        sw += b[a];
    }
    res->phi[M - 1] = d - sw;
done:
    free(mask);
    free(comb);
    free(perm);
    free(wv);
    free(rw);
    free(K.m);
    free(K.w);
    free(K.id);
    free(set.slot);
    free(A);
    free(b);
    return st;
}
