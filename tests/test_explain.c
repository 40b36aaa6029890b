/* test_explain.c — the explain module: Shapley closed forms, convergence of
 * the sampling explainers, efficiency, duplicate-mask skipping, agreement
 * with the shap library (tests/data/explain/shap_vectors.json, written by
 * tools/ref/shap_vectors.py), features, masking, hierarchies, rendering and
 * global aggregation.
 */
#include "harness.h"

#include <cJSON.h>

#include "explain/explain.h"

/* Tolerances. */
#define TOL_CLOSED 1e-10 /* closed forms on exact arithmetic-friendly games */
#define TOL_EFF 1e-5     /* efficiency: sum(phi) = f(x) - f(baseline) (task requirement) */
#define TOL_SHAP 1e-6    /* agreement with shap's values (task requirement) */

/* ---- test games ----------------------------------------------------------- */

enum { G_LINEAR, G_PAIRS, G_MLP, G_FAIL, G_NAN };

typedef struct {
    int kind;
    size_t M, H;
    double c, w[64];
    double pair[64][64]; /* G_PAIRS: v += sum_{i<j} pair[i][j] m_i m_j */
    double tri;          /* G_PAIRS: v += tri * m0 m1 m2 */
    /* G_MLP (identical to tools/ref/shap_vectors.py) */
    double W[16][64], b[16], a[16], u[64], p;
    int i0, i1;
    /* bookkeeping */
    size_t calls, rows, max_batch;
    uint64_t *seen;
    size_t n_seen, cap_seen;
} game;

static double game_value(const game *g, const uint8_t *m) {
    double s = g->c;
    switch (g->kind) {
    case G_LINEAR:
        for (size_t i = 0; i < g->M; i++) s += g->w[i] * m[i];
        break;
    case G_PAIRS:
        for (size_t i = 0; i < g->M; i++) {
            s += g->w[i] * m[i];
            for (size_t j = i + 1; j < g->M; j++) s += g->pair[i][j] * m[i] * m[j];
        }
        s += g->tri * m[0] * m[1] * m[2];
        break;
    default: /* MLP: same loop order as the Python reference */
        for (size_t k = 0; k < g->H; k++) {
            double h = g->b[k];
            for (size_t i = 0; i < g->M; i++) h += g->W[k][i] * (double)m[i];
            s += g->a[k] * tanh(h);
        }
        for (size_t i = 0; i < g->M; i++) s += g->u[i] * (double)m[i];
        s += g->p * (double)m[g->i0] * (double)m[g->i1];
    }
    return s;
}

static pl_status game_fn(void *ctx, const uint8_t *masks, size_t n, size_t M, double *out) {
    game *g = ctx;
    g->calls++;
    g->rows += n;
    if (n > g->max_batch) g->max_batch = n;
    if (g->kind == G_FAIL) return pl_error(PL_ERR_IO, "model died");
    for (size_t r = 0; r < n; r++) {
        const uint8_t *m = masks + r * M;
        out[r] = g->kind == G_NAN ? (double)NAN : game_value(g, m);
        if (M <= 64) {
            uint64_t k = 0;
            for (size_t i = 0; i < M; i++) k |= (uint64_t)(m[i] != 0) << i;
            if (g->n_seen == g->cap_seen) {
                g->cap_seen = g->cap_seen ? 2 * g->cap_seen : 1024;
                g->seen = realloc(g->seen, g->cap_seen * sizeof *g->seen);
            }
            g->seen[g->n_seen++] = k;
        }
    }
    return PL_OK;
}

static void game_reset(game *g) {
    g->calls = g->rows = g->max_batch = g->n_seen = 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* number of masks the value function saw more than once */
static size_t game_dups(game *g) {
    qsort(g->seen, g->n_seen, sizeof *g->seen, cmp_u64);
    size_t d = 0;
    for (size_t i = 1; i < g->n_seen; i++) d += g->seen[i] == g->seen[i - 1];
    return d;
}

static void mlp_random(game *g, size_t M, size_t H, uint64_t seed) {
    memset(g, 0, sizeof *g);
    g->kind = G_MLP;
    g->M = M;
    g->H = H;
    pl_rng r;
    pl_rng_seed(&r, seed);
    for (size_t k = 0; k < H; k++) {
        for (size_t i = 0; i < M; i++) g->W[k][i] = (double)pl_rng_normal(&r);
        g->b[k] = 0.5 * (double)pl_rng_normal(&r);
        g->a[k] = (double)pl_rng_normal(&r);
    }
    for (size_t i = 0; i < M; i++) g->u[i] = 0.3 * (double)pl_rng_normal(&r);
    g->c = 0.25;
    g->p = 0.7;
    g->i0 = 1;
    g->i1 = (int)M - 2;
}

static double sum_phi(const pl_xresult *r) {
    double s = 0;
    for (size_t i = 0; i < r->n_features; i++) s += r->phi[i];
    return s;
}

static double eff_err(const pl_xresult *r) { return fabs(sum_phi(r) - (r->fx - r->base_value)); }

static double max_diff(const double *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

static double worst_eff[4]; /* per method, over every run in this program */

static pl_status run(game *g, pl_xmethod m, size_t budget, uint64_t seed, const pl_xtree *t, pl_xresult *r) {
    pl_xopts o;
    pl_xopts_init(&o, m);
    o.max_evals = budget;
    o.seed = seed;
    o.tree = t;
    game_reset(g);
    pl_status st = pl_explain_run(game_fn, g, g->M, &o, r);
    if (!st) worst_eff[m] = fmax(worst_eff[m], eff_err(r));
    return st;
}

/* ---- closed forms ------------------------------------------------------------ */

static void test_linear(void) {
    game g = {0};
    g.kind = G_LINEAR;
    g.M = 9;
    g.c = -0.5;
    for (size_t i = 0; i < g.M; i++) g.w[i] = (double)i - 3.25;
    pl_xtree t;
    CHECK_OK(pl_xtree_balanced(g.M, &t));
    for (int m = 0; m < 4; m++) {
        pl_xresult r;
        CHECK_OK(run(&g, (pl_xmethod)m, m == PL_XM_PARTITION ? 1000 : 0, 1, m == PL_XM_PARTITION ? &t : NULL, &r));
        /* linear game: phi_i = w_i for Shapley and Owen values, any order */
        CHECK(max_diff(r.phi, g.w, g.M) <= TOL_CLOSED, "%s on a linear game: max |phi - w| = %.3g",
              pl_xmethod_name((pl_xmethod)m), max_diff(r.phi, g.w, g.M));
        CHECK_NEAR(r.base_value, g.c, TOL_CLOSED);
        pl_xresult_free(&r);
    }
    free(g.seen);
    pl_xtree_free(&t);
}

static void test_pairs(void) {
    /* v = c + sum w_i m_i + sum_{i<j} c_ij m_i m_j + t m0 m1 m2:
     * phi_i = w_i + sum_j c_ij / 2 + t/3 [i < 3] */
    game g;
    memset(&g, 0, sizeof g);
    g.kind = G_PAIRS;
    g.M = 8;
    g.c = 1.0;
    pl_rng r;
    pl_rng_seed(&r, 3);
    double want[64] = {0};
    for (size_t i = 0; i < g.M; i++) g.w[i] = (double)pl_rng_normal(&r);
    for (size_t i = 0; i < g.M; i++)
        for (size_t j = i + 1; j < g.M; j++)
            g.pair[i][j] = (pl_rng_below(&r, 3) == 0) ? (double)pl_rng_normal(&r) : 0.0;
    g.tri = 1.5;
    for (size_t i = 0; i < g.M; i++) {
        want[i] = g.w[i] + (i < 3 ? g.tri / 3 : 0);
        for (size_t j = 0; j < g.M; j++) want[i] += (i < j ? g.pair[i][j] : g.pair[j][i]) / 2;
    }
    pl_xresult x;
    CHECK_OK(run(&g, PL_XM_EXACT, 0, 0, NULL, &x));
    CHECK(max_diff(x.phi, want, g.M) <= TOL_CLOSED, "exact on pairwise game: max err %.3g",
          max_diff(x.phi, want, g.M));
    CHECK(x.evals == 256 && x.requests == 256, "exact asks 2^M masks once: evals %zu requests %zu", x.evals,
          x.requests);
    /* a single product x_i x_j splits equally */
    game h;
    memset(&h, 0, sizeof h);
    h.kind = G_PAIRS;
    h.M = 5;
    h.pair[1][3] = 2.0;
    pl_xresult y;
    CHECK_OK(run(&h, PL_XM_EXACT, 0, 0, NULL, &y));
    CHECK(fabs(y.phi[1] - 1.0) < TOL_CLOSED && fabs(y.phi[3] - 1.0) < TOL_CLOSED && fabs(y.phi[0]) < TOL_CLOSED,
          "x1 x3 splits 1/1: %g %g %g", y.phi[1], y.phi[3], y.phi[0]);
    /* kernel with every coalition is exact Shapley (Lundberg & Lee, theorem 2) */
    pl_xresult k;
    CHECK_OK(run(&g, PL_XM_KERNEL, 1000, 0, NULL, &k));
    CHECK(max_diff(k.phi, want, g.M) <= 1e-9, "kernel, all coalitions, pairwise game: max err %.3g",
          max_diff(k.phi, want, g.M));
    CHECK(k.evals == 256, "kernel enumerates 2^M - 2 + 2 masks: %zu", k.evals);
    pl_xresult_free(&x);
    pl_xresult_free(&y);
    pl_xresult_free(&k);
    free(g.seen);
    free(h.seen);
}

/* exact against the permutation definition (all M! orders) on the MLP game */
static void test_exact_vs_definition(void) {
    game g;
    mlp_random(&g, 6, 5, 11);
    pl_xresult x;
    CHECK_OK(run(&g, PL_XM_EXACT, 0, 0, NULL, &x));
    double want[6] = {0};
    int perm[6] = {0, 1, 2, 3, 4, 5};
    size_t nperm = 0;
    uint8_t m[6];
    /* Heap's algorithm, iterative */
    int c[6] = {0};
    for (;;) {
        memset(m, 0, sizeof m);
        double prev = game_value(&g, m);
        for (int i = 0; i < 6; i++) {
            m[perm[i]] = 1;
            double v = game_value(&g, m);
            want[perm[i]] += v - prev;
            prev = v;
        }
        nperm++;
        int i = 0;
        while (i < 6 && c[i] >= i) c[i++] = 0;
        if (i == 6) break;
        int j = (i % 2) ? c[i] : 0, t = perm[j];
        perm[j] = perm[i];
        perm[i] = t;
        c[i]++;
    }
    for (int i = 0; i < 6; i++) want[i] /= (double)nperm;
    CHECK(nperm == 720, "720 permutations, got %zu", nperm);
    CHECK(max_diff(x.phi, want, 6) <= TOL_CLOSED, "exact = mean marginal over all 720 orders: max err %.3g",
          max_diff(x.phi, want, 6));
    /* the permutation explainer fed every order is exact too */
    int32_t *all = malloc(720 * 6 * sizeof *all);
    int p2[6] = {0, 1, 2, 3, 4, 5}, c2[6] = {0};
    size_t n = 0;
    for (;;) {
        for (int i = 0; i < 6; i++) all[n * 6 + (size_t)i] = p2[i];
        n++;
        int i = 0;
        while (i < 6 && c2[i] >= i) c2[i++] = 0;
        if (i == 6) break;
        int j = (i % 2) ? c2[i] : 0, t = p2[j];
        p2[j] = p2[i];
        p2[i] = t;
        c2[i]++;
    }
    pl_xopts o;
    pl_xopts_init(&o, PL_XM_PERMUTATION);
    o.perms = all;
    o.n_perms = n;
    pl_xresult pr;
    game_reset(&g);
    CHECK_OK(pl_explain_run(game_fn, &g, 6, &o, &pr));
    CHECK(max_diff(pr.phi, want, 6) <= TOL_CLOSED, "permutation over all orders = exact: max err %.3g",
          max_diff(pr.phi, want, 6));
    CHECK(pr.evals == 64, "720 permutations of 6 features touch each of the 64 masks once: %zu", pr.evals);
    CHECK(game_dups(&g) == 0, "no mask evaluated twice");
    pl_xresult_free(&pr);
    free(all);
    pl_xresult_free(&x);
    free(g.seen);
}

/* ---- convergence ------------------------------------------------------------- */

static void test_convergence(void) {
    game g;
    mlp_random(&g, 12, 8, 5);
    pl_xresult x;
    CHECK_OK(run(&g, PL_XM_EXACT, 0, 0, NULL, &x));
    double scale = 0;
    for (size_t i = 0; i < g.M; i++) scale = fmax(scale, fabs(x.phi[i]));
    size_t per = 2 * g.M + 1;
    double perr[4];
    size_t np[4] = {2, 8, 32, 128};
    for (int k = 0; k < 4; k++) {
        /* mean over 4 seeds of the max error */
        double e = 0;
        for (uint64_t s = 0; s < 4; s++) {
            pl_xresult r;
            CHECK_OK(run(&g, PL_XM_PERMUTATION, np[k] * per, 100 + s, NULL, &r));
            e += max_diff(r.phi, x.phi, g.M) / 4;
            CHECK(r.n_perms == np[k], "permutations used %zu, want %zu", r.n_perms, np[k]);
            CHECK(game_dups(&g) == 0, "permutation: a mask went to the value function twice");
            CHECK(r.evals <= np[k] * (2 * g.M - 1) + 2, "distinct masks %zu <= P(2M-1)+2", r.evals);
            CHECK(r.requests == np[k] * per, "requests %zu = P(2M+1)", r.requests);
            pl_xresult_free(&r);
        }
        perr[k] = e;
    }
    printf("  permutation max|err|/max|phi| (mean of 4 seeds) at 2,8,32,128 perms: %.3g %.3g %.3g %.3g\n",
           perr[0] / scale, perr[1] / scale, perr[2] / scale, perr[3] / scale);
    CHECK(perr[3] < perr[1] && perr[2] < perr[0], "permutation error shrinks with budget");
    /* bound: with 128 antithetic permutations the seeded error stays under 10% of max |phi| */
    CHECK(perr[3] <= 0.10 * scale, "permutation error %.3g > 10%% of max|phi| %.3g", perr[3], scale);

    double kerr[4];
    size_t ns[4] = {100, 400, 1600, 4094};
    for (int k = 0; k < 4; k++) {
        double e = 0;
        for (uint64_t s = 0; s < 4; s++) {
            pl_xresult r;
            CHECK_OK(run(&g, PL_XM_KERNEL, ns[k], 200 + s, NULL, &r));
            e += max_diff(r.phi, x.phi, g.M) / 4;
            CHECK(game_dups(&g) == 0, "kernel: a mask went to the value function twice");
            pl_xresult_free(&r);
        }
        kerr[k] = e;
    }
    printf("  kernel max|err|/max|phi| at nsamples 100,400,1600,4094: %.3g %.3g %.3g %.3g\n", kerr[0] / scale,
           kerr[1] / scale, kerr[2] / scale, kerr[3] / scale);
    CHECK(kerr[2] < kerr[0] && kerr[1] < kerr[0], "kernel error shrinks with budget");
    CHECK(kerr[2] <= 0.05 * scale, "kernel error at 1600 samples %.3g > 5%% of %.3g", kerr[2], scale);
    CHECK(kerr[3] <= 1e-9, "kernel with all 2^M - 2 coalitions is exact: %.3g", kerr[3]);

    /* partition with a full budget is the Owen value; for a balanced tree it
     * differs from Shapley, but with the default budget it must be efficient */
    pl_xtree t;
    CHECK_OK(pl_xtree_balanced(g.M, &t));
    pl_xresult pa, pb;
    CHECK_OK(run(&g, PL_XM_PARTITION, 100000, 0, &t, &pa));
    CHECK_OK(run(&g, PL_XM_PARTITION, 20, 0, &t, &pb));
    CHECK(pa.requests < 100000, "full expansion ends before the budget: %zu", pa.requests);
    CHECK(pb.requests <= 21, "budget 20 respected (shap may overshoot by one): %zu", pb.requests);
    pl_xresult_free(&pa);
    pl_xresult_free(&pb);
    /* tree-respecting permutations still converge to the Owen value? No: to
     * Shapley over tree-consistent orders; check efficiency only */
    pl_xresult pt;
    CHECK_OK(run(&g, PL_XM_PERMUTATION, 10 * per, 9, &t, &pt));
    CHECK(eff_err(&pt) <= TOL_EFF, "tree permutations efficient: %.3g", eff_err(&pt));
    pl_xresult_free(&pt);
    pl_xtree_free(&t);
    pl_xresult_free(&x);
    free(g.seen);
}

/* Owen value closed form: with the tree {{0,1},{2,3}} and v = m0 m2 (a
 * unanimity game across the two blocks), each block gets 1/2 and within the
 * block the carrier member gets it all: phi = (1/2, 0, 1/2, 0). With
 * v = m0 m1 m2 the block {0,1} has the pair, Owen gives {0,1}: 1/2 split
 * 1/4, 1/4; {2,3}: 1/2 to player 2. */
static void test_owen_closed_form(void) {
    double link[] = {0, 1, 0.5, 2, 2, 3, 0.5, 2, 4, 5, 1.0, 4};
    pl_xtree t;
    CHECK_OK(pl_xtree_from_linkage(link, 4, &t));
    game g;
    memset(&g, 0, sizeof g);
    g.kind = G_PAIRS;
    g.M = 4;
    g.tri = 1.0; /* m0 m1 m2 */
    pl_xresult r;
    CHECK_OK(run(&g, PL_XM_PARTITION, 1000, 0, &t, &r));
    double want[4] = {0.25, 0.25, 0.5, 0};
    CHECK(max_diff(r.phi, want, 4) <= TOL_CLOSED, "Owen m0 m1 m2 on {{0,1},{2,3}}: %g %g %g %g", r.phi[0], r.phi[1],
          r.phi[2], r.phi[3]);
    pl_xresult x;
    CHECK_OK(run(&g, PL_XM_EXACT, 0, 0, NULL, &x));
    double sh[4] = {1.0 / 3, 1.0 / 3, 1.0 / 3, 0};
    CHECK(max_diff(x.phi, sh, 4) <= TOL_CLOSED, "Shapley m0 m1 m2: thirds");
    pl_xresult_free(&r);
    pl_xresult_free(&x);
    g.tri = 0;
    g.pair[0][2] = 1.0;
    CHECK_OK(run(&g, PL_XM_PARTITION, 1000, 0, &t, &r));
    double w2[4] = {0.5, 0, 0.5, 0};
    CHECK(max_diff(r.phi, w2, 4) <= TOL_CLOSED, "Owen m0 m2: %g %g %g %g", r.phi[0], r.phi[1], r.phi[2], r.phi[3]);
    pl_xresult_free(&r);
    free(g.seen);
    pl_xtree_free(&t);
}

/* For a binary hierarchy, the Owen value is the mean marginal contribution
 * over the orders in which every subtree's leaves are contiguous (Owen
 * 1977): at each internal node either child may come first. Enumerate all
 * 2^(M-1) such orders of a balanced 8-leaf tree, feed them to the
 * permutation explainer, and compare with the partition explainer at a full
 * budget. Then tree-respecting sampled permutations converge to it. */
static void tree_orders_rec(const pl_xtree *t, int32_t node, unsigned sw, int32_t *out, size_t *n) {
    size_t M = t->n_leaves;
    if ((size_t)node < M) {
        out[(*n)++] = node;
        return;
    }
    size_t r = (size_t)node - M;
    int flip = (sw >> r) & 1;
    tree_orders_rec(t, flip ? t->right[r] : t->left[r], sw, out, n);
    tree_orders_rec(t, flip ? t->left[r] : t->right[r], sw, out, n);
}

static void test_owen_as_tree_orders(void) {
    game g;
    mlp_random(&g, 8, 6, 77);
    pl_xtree t;
    CHECK_OK(pl_xtree_balanced(8, &t));
    size_t norders = (size_t)1 << 7;
    int32_t *orders = malloc(norders * 8 * sizeof *orders);
    for (unsigned sw = 0; sw < norders; sw++) {
        size_t n = 0;
        tree_orders_rec(&t, 14, sw, orders + sw * 8, &n);
    }
    pl_xopts o;
    pl_xopts_init(&o, PL_XM_PERMUTATION);
    o.perms = orders;
    o.n_perms = norders;
    pl_xresult owen, part, samp;
    game_reset(&g);
    CHECK_OK(pl_explain_run(game_fn, &g, 8, &o, &owen));
    CHECK_OK(run(&g, PL_XM_PARTITION, 100000, 0, &t, &part));
    double d = max_diff(owen.phi, part.phi, 8);
    CHECK(d <= TOL_CLOSED, "partition (full budget) = mean over the 128 tree-consistent orders: max diff %.3g", d);
    CHECK_OK(run(&g, PL_XM_PERMUTATION, 400 * 17, 5, &t, &samp));
    double e = max_diff(samp.phi, part.phi, 8), sc = 0;
    for (int i = 0; i < 8; i++) sc = fmax(sc, fabs(part.phi[i]));
    printf("  tree-respecting permutations (400) vs Owen: max|err|/max|phi| %.3g\n", e / sc);
    CHECK(e <= 0.05 * sc, "tree permutations converge to the Owen value: %.3g", e);
    pl_xresult_free(&owen);
    pl_xresult_free(&part);
    pl_xresult_free(&samp);
    free(orders);
    pl_xtree_free(&t);
    free(g.seen);
}

/* ---- efficiency and batching --------------------------------------------------- */

static void test_efficiency_and_batching(void) {
    game g;
    mlp_random(&g, 14, 8, 21);
    pl_xtree t;
    CHECK_OK(pl_xtree_balanced(g.M, &t));
    size_t budgets[] = {10, 50, 300, 1000};
    for (size_t b = 0; b < 4; b++) {
        pl_xresult r;
        CHECK_OK(run(&g, PL_XM_PARTITION, budgets[b], 0, &t, &r));
        CHECK(eff_err(&r) <= TOL_EFF, "partition budget %zu efficiency %.3g", budgets[b], eff_err(&r));
        CHECK(game_dups(&g) == 0, "partition sent a mask twice");
        CHECK(g.rows == r.evals && g.calls == r.calls, "counters: rows %zu evals %zu calls %zu/%zu", g.rows, r.evals,
              g.calls, r.calls);
        double nsum = 0;
        for (size_t i = 0; i < 2 * g.M - 1; i++) nsum += r.node_values[i];
        CHECK(fabs(nsum - (r.fx - r.base_value)) <= TOL_EFF, "node credit telescopes: %.3g", nsum);
        pl_xresult_free(&r);
        CHECK_OK(run(&g, PL_XM_PERMUTATION, budgets[b] < 29 ? 29 : budgets[b], 3, NULL, &r));
        CHECK(eff_err(&r) <= TOL_EFF, "permutation efficiency %.3g", eff_err(&r));
        pl_xresult_free(&r);
        CHECK_OK(run(&g, PL_XM_KERNEL, budgets[b] * 4, 3, NULL, &r));
        CHECK(eff_err(&r) <= TOL_EFF, "kernel efficiency %.3g", eff_err(&r));
        pl_xresult_free(&r);
    }
    pl_xresult r;
    CHECK_OK(run(&g, PL_XM_EXACT, 0, 0, NULL, &r));
    CHECK(eff_err(&r) <= TOL_EFF, "exact efficiency %.3g", eff_err(&r));
    pl_xresult_free(&r);
    /* batch limit: the value function never gets more than batch_size masks */
    pl_xopts o;
    pl_xopts_init(&o, PL_XM_PERMUTATION);
    o.max_evals = 5 * 29;
    o.batch_size = 16;
    game_reset(&g);
    CHECK_OK(pl_explain_run(game_fn, &g, g.M, &o, &r));
    CHECK(g.max_batch <= 16 && g.calls == (r.evals + 15) / 16, "batches of <= 16: max %zu, calls %zu for %zu",
          g.max_batch, g.calls, r.evals);
    pl_xresult_free(&r);
    /* a partition round holds up to batch_size masks, and a bigger batch is
     * still efficient */
    pl_xopts_init(&o, PL_XM_PARTITION);
    o.tree = &t;
    o.max_evals = 200;
    o.batch_size = 64;
    game_reset(&g);
    CHECK_OK(pl_explain_run(game_fn, &g, g.M, &o, &r));
    CHECK(g.max_batch <= 64 && eff_err(&r) <= TOL_EFF, "partition batch 64: max batch %zu, eff %.3g", g.max_batch,
          eff_err(&r));
    pl_xresult_free(&r);
    pl_xtree_free(&t);
    free(g.seen);
}

/* results do not depend on the thread count (no split reductions) */
static void test_threads(void) {
    game g;
    mlp_random(&g, 13, 6, 8);
    pl_xresult r1, r2, e1, e2;
    int nt = pl_num_threads();
    pl_set_num_threads(1);
    CHECK_OK(run(&g, PL_XM_KERNEL, 900, 4, NULL, &r1));
    CHECK_OK(run(&g, PL_XM_EXACT, 0, 0, NULL, &e1));
    pl_set_num_threads(3);
    CHECK_OK(run(&g, PL_XM_KERNEL, 900, 4, NULL, &r2));
    CHECK_OK(run(&g, PL_XM_EXACT, 0, 0, NULL, &e2));
    pl_set_num_threads(nt);
    CHECK(memcmp(r1.phi, r2.phi, 13 * sizeof(double)) == 0, "kernel identical with 1 and 3 threads");
    CHECK(memcmp(e1.phi, e2.phi, 13 * sizeof(double)) == 0, "exact identical with 1 and 3 threads");
    pl_xresult_free(&r1);
    pl_xresult_free(&r2);
    pl_xresult_free(&e1);
    pl_xresult_free(&e2);
    free(g.seen);
}

/* email-sized games: hundreds of features, default budgets */
typedef struct {
    size_t M, calls, rows;
} biggame;

static pl_status big_fn(void *ctx, const uint8_t *masks, size_t n, size_t M, double *out) {
    biggame *g = ctx;
    g->calls++;
    g->rows += n;
    for (size_t r = 0; r < n; r++) {
        const uint8_t *m = masks + r * M;
        double s = 0, run = 0;
        for (size_t i = 0; i < M; i++) {
            double w = sin(0.37 * (double)i + 0.1);
            s += w * m[i];
            run = m[i] ? run + 1 : 0; /* rewards runs of present features */
            s += 0.01 * run * (i % 7 == 0);
        }
        out[r] = tanh(s / 10.0);
    }
    return PL_OK;
}

static void test_scale(void) {
    biggame g = {600, 0, 0};
    pl_xtree t;
    CHECK_OK(pl_xtree_balanced(g.M, &t));
    pl_xopts o;
    pl_xopts_init(&o, PL_XM_PARTITION);
    o.tree = &t;
    pl_xresult r;
    double t0 = pl_time_now();
    CHECK_OK(pl_explain_run(big_fn, &g, g.M, &o, &r));
    double t1 = pl_time_now();
    CHECK(eff_err(&r) <= TOL_EFF && r.requests <= 501 && r.budget == 500,
          "partition M=600 default budget: eff %.3g, %zu requests", eff_err(&r), r.requests);
    worst_eff[PL_XM_PARTITION] = fmax(worst_eff[PL_XM_PARTITION], eff_err(&r));
    pl_xresult_free(&r);
    pl_xopts_init(&o, PL_XM_PERMUTATION);
    CHECK_OK(pl_explain_run(big_fn, &g, g.M, &o, &r));
    double t2 = pl_time_now();
    CHECK(eff_err(&r) <= TOL_EFF && r.n_perms == 2, "permutation M=600 default: 2 permutations, eff %.3g", eff_err(&r));
    worst_eff[PL_XM_PERMUTATION] = fmax(worst_eff[PL_XM_PERMUTATION], eff_err(&r));
    pl_xresult_free(&r);
    g.M = 200;
    pl_xopts_init(&o, PL_XM_KERNEL);
    CHECK_OK(pl_explain_run(big_fn, &g, g.M, &o, &r));
    double t3 = pl_time_now();
    CHECK(eff_err(&r) <= TOL_EFF && r.budget == 2448, "kernel M=200 default nsamples %zu, eff %.3g", r.budget,
          eff_err(&r));
    worst_eff[PL_XM_KERNEL] = fmax(worst_eff[PL_XM_KERNEL], eff_err(&r));
    pl_xresult_free(&r);
    printf("  scale: partition M=600 %.3fs, permutation M=600 %.3fs, kernel M=200 %.3fs (value function included)\n",
           t1 - t0, t2 - t1, t3 - t2);
    pl_xtree_free(&t);
}

static void test_errors(void) {
    game g;
    mlp_random(&g, 6, 3, 1);
    pl_xresult r;
    pl_xopts o;
    pl_xopts_init(&o, PL_XM_EXACT);
    CHECK(pl_explain_run(game_fn, &g, 0, &o, &r) == PL_ERR_INVALID, "M = 0 rejected");
    CHECK(pl_explain_run(game_fn, &g, 21, &o, &r) == PL_ERR_INVALID && strstr(pl_errmsg(), "2^M"),
          "exact M = 21 rejected: %s", pl_errmsg());
    pl_xopts_init(&o, PL_XM_PARTITION);
    CHECK(pl_explain_run(game_fn, &g, 6, &o, &r) == PL_ERR_INVALID, "partition without a tree rejected");
    pl_xtree t;
    CHECK_OK(pl_xtree_balanced(5, &t));
    o.tree = &t;
    CHECK(pl_explain_run(game_fn, &g, 6, &o, &r) == PL_ERR_INVALID && strstr(pl_errmsg(), "5 leaves"),
          "tree/feature mismatch: %s", pl_errmsg());
    pl_xtree_free(&t);
    pl_xopts_init(&o, PL_XM_PERMUTATION);
    o.max_evals = 12;
    CHECK(pl_explain_run(game_fn, &g, 6, &o, &r) == PL_ERR_INVALID && strstr(pl_errmsg(), "2M+1"),
          "budget below one permutation: %s", pl_errmsg());
    int32_t bad[6] = {0, 1, 2, 2, 4, 5};
    o.perms = bad;
    o.n_perms = 1;
    CHECK(pl_explain_run(game_fn, &g, 6, &o, &r) == PL_ERR_INVALID && strstr(pl_errmsg(), "perms[0]"),
          "bad explicit permutation: %s", pl_errmsg());
    g.kind = G_FAIL;
    pl_xopts_init(&o, PL_XM_KERNEL);
    CHECK(pl_explain_run(game_fn, &g, 6, &o, &r) == PL_ERR_IO && strstr(pl_errmsg(), "model died"),
          "value-function error passes through: %s", pl_errmsg());
    CHECK(r.phi == NULL, "no partial result on error");
    g.kind = G_NAN;
    CHECK(pl_explain_run(game_fn, &g, 6, &o, &r) == PL_ERR_NUMERIC, "NaN score rejected");
    pl_xmethod m;
    CHECK(pl_xmethod_parse("kernel", &m) == PL_OK && m == PL_XM_KERNEL, "parse kernel");
    CHECK(pl_xmethod_parse("lime", &m) == PL_ERR_INVALID, "parse rejects lime");
    double badlink[] = {0, 0, 1, 2, 1, 2, 1, 3};
    CHECK(pl_xtree_from_linkage(badlink, 3, &t) == PL_ERR_FORMAT, "node with two parents rejected: %s", pl_errmsg());
    double badsize[] = {0, 1, 1, 3, 2, 3, 1, 3};
    CHECK(pl_xtree_from_linkage(badsize, 3, &t) == PL_ERR_FORMAT && strstr(pl_errmsg(), "size"),
          "wrong size rejected: %s", pl_errmsg());
    free(g.seen);
}

/* ---- shap reference vectors ------------------------------------------------------- */

static cJSON *load_vectors(void) {
    const char *paths[] = {"tests/data/explain/shap_vectors.json", "../tests/data/explain/shap_vectors.json"};
    for (size_t i = 0; i < 2; i++) {
        char *data;
        size_t len;
        if (pl_read_file(paths[i], &data, &len) == PL_OK) {
            cJSON *j = cJSON_Parse(data);
            free(data);
            return j;
        }
    }
    return NULL;
}

static size_t darr(const cJSON *a, double *out, size_t cap) {
    size_t n = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
        if (n < cap) out[n] = x->valuedouble;
        n++;
    }
    return n;
}

static void game_from_json(const cJSON *j, game *g) {
    memset(g, 0, sizeof *g);
    g->kind = G_MLP;
    g->M = (size_t)cJSON_GetObjectItem(j, "M")->valueint;
    g->H = (size_t)cJSON_GetObjectItem(j, "H")->valueint;
    const cJSON *W = cJSON_GetObjectItem(j, "W"), *row;
    size_t k = 0;
    cJSON_ArrayForEach(row, W) darr(row, g->W[k++], 64);
    darr(cJSON_GetObjectItem(j, "b"), g->b, 16);
    darr(cJSON_GetObjectItem(j, "a"), g->a, 16);
    darr(cJSON_GetObjectItem(j, "u"), g->u, 64);
    g->c = cJSON_GetObjectItem(j, "c")->valuedouble;
    g->p = cJSON_GetObjectItem(j, "p")->valuedouble;
    g->i0 = cJSON_GetObjectItem(j, "i0")->valueint;
    g->i1 = cJSON_GetObjectItem(j, "i1")->valueint;
}

static size_t linkage_from_json(const cJSON *a, double *rows, size_t cap_rows) {
    size_t n = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, a) {
        if (n < cap_rows) darr(row, rows + 4 * n, 4);
        n++;
    }
    return n;
}

static void test_shap_vectors(void) {
    cJSON *j = load_vectors();
    CHECK(j != NULL, "tests/data/explain/shap_vectors.json missing or malformed");
    if (!j) return;
    double worst_part = 0, worst_perm = 0, worst_kern = 0;
    const cJSON *c;
    int ncase = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "partition")) {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        game g;
        game_from_json(cJSON_GetObjectItem(c, "game"), &g);
        double rows[4 * 64];
        size_t nr = linkage_from_json(cJSON_GetObjectItem(c, "linkage"), rows, 64);
        CHECK(nr == g.M - 1, "%s: %zu linkage rows", name, nr);
        pl_xtree t;
        CHECK_OK(pl_xtree_from_linkage(rows, g.M, &t));
        pl_xopts o;
        pl_xopts_init(&o, PL_XM_PARTITION);
        o.tree = &t;
        o.max_evals = (size_t)cJSON_GetObjectItem(c, "max_evals")->valueint;
        o.batch_size = (size_t)cJSON_GetObjectItem(c, "batch_size")->valueint;
        pl_xresult r;
        CHECK_OK(pl_explain_run(game_fn, &g, g.M, &o, &r));
        double want[64], hv[128];
        darr(cJSON_GetObjectItem(c, "values"), want, 64);
        size_t nh = darr(cJSON_GetObjectItem(c, "hierarchical_values"), hv, 128);
        double d = max_diff(r.phi, want, g.M);
        worst_part = fmax(worst_part, d);
        CHECK(d <= TOL_SHAP, "%s: max |phi - shap| = %.3g", name, d);
        CHECK(nh == 2 * g.M - 1 && max_diff(r.node_values, hv, nh) <= TOL_SHAP,
              "%s: hierarchical values differ by %.3g", name, max_diff(r.node_values, hv, nh));
        CHECK_NEAR(r.base_value, cJSON_GetObjectItem(c, "base_value")->valuedouble, 1e-12);
        size_t rows_seen = (size_t)cJSON_GetObjectItem(c, "model_rows")->valueint;
        CHECK(r.requests == rows_seen, "%s: %zu masks requested, shap evaluated %zu", name, r.requests, rows_seen);
        CHECK(eff_err(&r) <= TOL_EFF, "%s: efficiency %.3g", name, eff_err(&r));
        worst_eff[PL_XM_PARTITION] = fmax(worst_eff[PL_XM_PARTITION], eff_err(&r));
        pl_xresult_free(&r);
        pl_xtree_free(&t);
        free(g.seen);
        ncase++;
    }
    CHECK(ncase >= 6, "partition cases: %d", ncase);
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "permutation")) {
        game g;
        game_from_json(cJSON_GetObjectItem(c, "game"), &g);
        const cJSON *perms = cJSON_GetObjectItem(c, "perms"), *p;
        size_t np = (size_t)cJSON_GetArraySize(perms), k = 0;
        int32_t *ord = malloc(np * g.M * sizeof *ord);
        cJSON_ArrayForEach(p, perms) {
            double tmp[64];
            darr(p, tmp, 64);
            for (size_t i = 0; i < g.M; i++) ord[k * g.M + i] = (int32_t)tmp[i];
            k++;
        }
        pl_xopts o;
        pl_xopts_init(&o, PL_XM_PERMUTATION);
        o.perms = ord;
        o.n_perms = np;
        pl_xresult r;
        CHECK_OK(pl_explain_run(game_fn, &g, g.M, &o, &r));
        double want[64];
        darr(cJSON_GetObjectItem(c, "values"), want, 64);
        double d = max_diff(r.phi, want, g.M);
        worst_perm = fmax(worst_perm, d);
        CHECK(d <= TOL_SHAP, "permutation with shap's %zu permutations: max diff %.3g", np, d);
        pl_xresult_free(&r);
        free(ord);
        free(g.seen);
    }
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "kernel")) {
        game g;
        game_from_json(cJSON_GetObjectItem(c, "game"), &g);
        pl_xresult r;
        CHECK_OK(run(&g, PL_XM_KERNEL, (size_t)cJSON_GetObjectItem(c, "nsamples")->valueint, 0, NULL, &r));
        double want[64];
        darr(cJSON_GetObjectItem(c, "values"), want, 64);
        double d = max_diff(r.phi, want, g.M);
        worst_kern = fmax(worst_kern, d);
        CHECK(d <= TOL_SHAP, "kernel (all coalitions) vs shap: max diff %.3g", d);
        pl_xresult_free(&r);
        free(g.seen);
    }
    /* text trees */
    int ntree = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "text_trees")) {
        const char *kind = cJSON_GetObjectItem(c, "kind")->valuestring;
        int masker = strcmp(kind, "masker") == 0;
        const cJSON *list = cJSON_GetObjectItem(c, masker ? "segments" : "tokens"), *x;
        size_t n = (size_t)cJSON_GetArraySize(list), i = 0;
        const char **toks = malloc(n * sizeof *toks);
        cJSON_ArrayForEach(x, list) toks[i++] = x->valuestring;
        const char *special[4];
        size_t ns = 0;
        if (!masker) cJSON_ArrayForEach(x, cJSON_GetObjectItem(c, "special")) special[ns++] = x->valuestring;
        char **prep = NULL;
        if (masker) CHECK_OK(pl_xtree_shap_prepare(toks, n, &prep));
        pl_xtree t;
        CHECK_OK(pl_xtree_shap_text(masker ? (const char *const *)prep : toks, n, special, ns, &t));
        double rows[4 * 64];
        size_t nr = linkage_from_json(cJSON_GetObjectItem(c, "linkage"), rows, 64);
        int same = nr == n - 1;
        for (size_t r = 0; same && r < nr; r++) {
            same = t.left[r] == (int32_t)rows[4 * r] && t.right[r] == (int32_t)rows[4 * r + 1] &&
                   t.size[r] == (int32_t)rows[4 * r + 3];
            if (masker) same = same && fabs(t.height[r] - rows[4 * r + 2]) <= 1e-12;
            if (!same)
                printf("  row %zu: got (%d,%d,%g,%d) want (%g,%g,%g,%g)\n", r, t.left[r], t.right[r], t.height[r],
                       t.size[r], rows[4 * r], rows[4 * r + 1], rows[4 * r + 2], rows[4 * r + 3]);
        }
        CHECK(same, "shap text tree %s #%d (%zu tokens) matches shap's linkage", kind, ntree, n);
        if (masker) {
            /* the same tree from token offsets through features */
            const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
            const cJSON *offs = cJSON_GetObjectItem(c, "offsets"), *o;
            size_t T = (size_t)cJSON_GetArraySize(offs), k = 0;
            pl_span *sp = malloc(T * sizeof *sp);
            int32_t *ids = calloc(T, sizeof *ids);
            cJSON_ArrayForEach(o, offs) {
                sp[k].start = (size_t)cJSON_GetArrayItem(o, 0)->valueint;
                sp[k].end = (size_t)cJSON_GetArrayItem(o, 1)->valueint;
                k++;
            }
            pl_tokseq q = {text, strlen(text), ids, sp, T};
            pl_features f;
            pl_xtree t2;
            CHECK_OK(pl_features_build(&q, NULL, 0, PL_FEAT_TOKEN, &f));
            CHECK_OK(pl_xtree_shap_features(&f, &q, &t2));
            int same2 = T == n && t2.n_leaves == n;
            for (size_t r = 0; same2 && r + 1 < n; r++)
                same2 = t2.left[r] == t.left[r] && t2.right[r] == t.right[r] && t2.height[r] == t.height[r];
            CHECK(same2, "shap text tree from token offsets (#%d) matches", ntree);
            pl_xtree_free(&t2);
            pl_features_free(&f);
            free(sp);
            free(ids);
        }
        if (prep) {
            for (size_t q = 0; q < n; q++) free(prep[q]);
            free(prep);
        }
        free(toks);
        pl_xtree_free(&t);
        ntree++;
    }
    CHECK(ntree >= 6, "text tree cases: %d", ntree);
    printf("  shap match: partition max|diff| %.3g, permutation %.3g, kernel %.3g\n", worst_part, worst_perm,
           worst_kern);
    cJSON_Delete(j);
}

/* ---- features, masking, trees ------------------------------------------------------- */

/* "Subject: Verify now\nClick http://x.co/a today. Thanks!" tokenized by hand */
static const char *EMAIL = "Verify now\nClick http://x.co/a today. Thanks!";
static const pl_span ESPANS[] = {{0, 6},   {6, 10},  {10, 11}, {11, 16}, {16, 21}, {21, 24},
                                 {24, 28}, {28, 30}, {30, 36}, {36, 37}, {37, 44}, {44, 45}};
static const int32_t EIDS[] = {100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111};

static void email_seq(pl_tokseq *q) {
    q->text = EMAIL;
    q->text_len = strlen(EMAIL);
    q->ids = EIDS;
    q->spans = ESPANS;
    q->n_tokens = 12;
}

static void test_features(void) {
    pl_tokseq q;
    email_seq(&q);
    pl_features f;
    CHECK_OK(pl_features_build(&q, NULL, 0, PL_FEAT_WORD, &f));
    /* words: Verify | now(+\n) | Click | http://x.co/a | today. | Thanks! */
    const char *want[] = {"Verify", "now", "Click", "http://x.co/a", "today.", "Thanks!"};
    CHECK(f.n_features == 6, "6 words, got %zu", f.n_features);
    for (size_t i = 0; i < f.n_features && i < 6; i++)
        CHECK(strcmp(f.text[i], want[i]) == 0, "word %zu = '%s', want '%s'", i, f.text[i], want[i]);
    CHECK(f.ptr[f.n_features] == 12, "every token in a word: %zu", f.ptr[f.n_features]);
    pl_features_free(&f);
    CHECK_OK(pl_features_build(&q, NULL, 0, PL_FEAT_SENTENCE, &f));
    CHECK(f.n_features == 2, "2 sentences ('. ' ends one), got %zu", f.n_features);
    if (f.n_features == 2)
        CHECK(strcmp(f.text[1], "Thanks!") == 0, "second sentence '%s'", f.text[1]);
    pl_features_free(&f);
    CHECK_OK(pl_features_build(&q, NULL, 0, PL_FEAT_TOKEN, &f));
    CHECK(f.n_features == 12, "token features %zu", f.n_features);
    pl_features_free(&f);
    /* fields: subject [0,10), body [11,45), url [17,30) inside the body */
    pl_field fl[] = {{"subject", {0, 10}}, {"body", {11, 45}}, {"url", {17, 30}}};
    CHECK_OK(pl_features_build(&q, fl, 3, PL_FEAT_FIELD, &f));
    CHECK(f.n_features == 3, "3 field features, got %zu", f.n_features);
    if (f.n_features == 3) {
        CHECK(strcmp(f.text[0], "Verify now") == 0, "subject text '%s'", f.text[0]);
        CHECK(strcmp(f.text[2], "http://x.co/a") == 0, "url text '%s'", f.text[2]);
        CHECK(f.field[1] == 1 && f.ptr[2] - f.ptr[1] == 5, "body keeps Click, today, ., Thanks, ! (%zu tokens)",
              f.ptr[2] - f.ptr[1]);
        CHECK(strcmp(f.text[1], "Click today. Thanks!") == 0, "body text without the url: '%s'", f.text[1]);
    }
    /* masking */
    uint8_t mask[3] = {1, 0, 1};
    int32_t out[12];
    size_t n;
    pl_mask_spec ms = {PL_MASK_REPLACE, 7, NULL};
    CHECK_OK(pl_explain_apply_mask(EIDS, 12, &f, mask, &ms, out, &n));
    int32_t w1[] = {100, 101, 102, 7, 104, 105, 106, 107, 7, 7, 7, 7};
    CHECK(n == 12 && memcmp(out, w1, sizeof w1) == 0, "replace: body tokens become 7 (n=%zu)", n);
    ms.policy = PL_MASK_COLLAPSE;
    CHECK_OK(pl_explain_apply_mask(EIDS, 12, &f, mask, &ms, out, &n));
    int32_t w2[] = {100, 101, 102, 7, 104, 105, 106, 107, 7};
    CHECK(n == 9 && memcmp(out, w2, sizeof w2) == 0, "collapse: runs become one 7 (n=%zu)", n);
    ms.policy = PL_MASK_DELETE;
    CHECK_OK(pl_explain_apply_mask(EIDS, 12, &f, mask, &ms, out, &n));
    int32_t w3[] = {100, 101, 102, 104, 105, 106, 107};
    CHECK(n == 7 && memcmp(out, w3, sizeof w3) == 0, "delete shortens (n=%zu)", n);
    int32_t base[12];
    for (int i = 0; i < 12; i++) base[i] = -i;
    ms.policy = PL_MASK_BASELINE;
    ms.baseline_ids = base;
    CHECK_OK(pl_explain_apply_mask(EIDS, 12, &f, mask, &ms, out, &n));
    CHECK(n == 12 && out[3] == -3 && out[11] == -11 && out[4] == 104, "baseline takes baseline ids");
    ms.baseline_ids = NULL;
    CHECK(pl_explain_apply_mask(EIDS, 12, &f, mask, &ms, out, &n) == PL_ERR_INVALID, "baseline without ids");
    pl_features_free(&f);
    /* words with fields, and the email tree */
    CHECK_OK(pl_features_build(&q, fl, 3, PL_FEAT_WORD, &f));
    CHECK(f.n_features == 6, "words with fields: %zu", f.n_features);
    pl_xtree t;
    CHECK_OK(pl_xtree_email(&f, &t));
    /* subject's words {0,1} must form a node, the url {3} alone, body words {2,4,5} a node */
    size_t M = f.n_features;
    int found_subject = 0, found_body = 0;
    for (size_t r = 0; r + 1 < M; r++) {
        if ((t.left[r] == 0 && t.right[r] == 1)) found_subject = 1;
        if (t.size[r] == 3) found_body = 1;
    }
    CHECK(found_subject && found_body, "email tree groups subject words and body words");
    CHECK(t.size[M - 2] == (int32_t)M && fabs(t.height[M - 2] - 1.0) < 1e-15, "root covers all, height 1");
    pl_xtree_free(&t);
    pl_features_free(&f);
    /* bad input */
    pl_span bad[] = {{0, 6}, {3, 100}};
    pl_tokseq qb = {EMAIL, strlen(EMAIL), EIDS, bad, 2};
    CHECK(pl_features_build(&qb, NULL, 0, PL_FEAT_WORD, &f) == PL_ERR_INVALID && strstr(pl_errmsg(), "token 1"),
          "span outside text: %s", pl_errmsg());
    CHECK(pl_features_build(&q, NULL, 0, PL_FEAT_FIELD, &f) == PL_ERR_INVALID, "field level without fields");
    int32_t map[12] = {0, 0, -1, 1, 1, 1, 1, 1, 2, 2, 2, 5};
    CHECK(pl_features_from_map(&q, map, 3, &f) == PL_ERR_RANGE, "map to feature 5 of 3 rejected");
    map[11] = 2;
    CHECK_OK(pl_features_from_map(&q, map, 3, &f));
    CHECK(f.n_features == 3 && strcmp(f.text[1], "Click http://x.co/a") == 0, "map feature text '%s'",
          f.n_features == 3 ? f.text[1] : "");
    pl_features_free(&f);
}

static void test_email_tree_shape(void) {
    /* balanced binarization: 5 siblings of one leaf each -> left takes 3 (closest to half, earlier) */
    pl_xtree t;
    CHECK_OK(pl_xtree_balanced(5, &t));
    CHECK(t.size[3] == 5 && (t.left[3] >= 5 && t.size[t.left[3] - 5] == 3), "balanced(5) splits 3 + 2");
    pl_xtree_free(&t);
    CHECK_OK(pl_xtree_balanced(1, &t));
    CHECK(t.n_leaves == 1, "one leaf");
    /* partition on a single feature: phi = f(x) - f(0) */
    game g;
    mlp_random(&g, 1, 1, 2);
    g.i0 = g.i1 = 0;
    pl_xresult r;
    CHECK_OK(run(&g, PL_XM_PARTITION, 0, 0, &t, &r));
    CHECK(fabs(r.phi[0] - (r.fx - r.base_value)) < 1e-15, "M = 1 partition");
    pl_xresult_free(&r);
    CHECK_OK(run(&g, PL_XM_KERNEL, 0, 0, NULL, &r));
    CHECK(fabs(r.phi[0] - (r.fx - r.base_value)) < 1e-15, "M = 1 kernel");
    pl_xresult_free(&r);
    pl_xtree_free(&t);
    free(g.seen);
}

/* random token sequences: every level gives a consistent partition of the
 * tokens, the email tree is a valid linkage, masking keeps unfeatured tokens */
static void test_features_random(void) {
    pl_rng r;
    pl_rng_seed(&r, 99);
    const char alphabet[] = "ab .!?\n,(x)'";
    int ok = 1;
    for (int it = 0; it < 200 && ok; it++) {
        size_t L = 1 + (size_t)pl_rng_below(&r, 80);
        char text[96];
        for (size_t i = 0; i < L; i++) text[i] = alphabet[pl_rng_below(&r, sizeof alphabet - 1)];
        text[L] = 0;
        pl_span sp[96];
        int32_t ids[96];
        size_t T = 0, pos = 0;
        while (pos < L) {
            size_t len = (size_t)pl_rng_below(&r, 4); /* empty tokens allowed */
            if (pos + len > L) len = L - pos;
            sp[T].start = pos;
            sp[T].end = pos + len;
            ids[T] = (int32_t)T;
            T++;
            pos += len ? len : (pl_rng_below(&r, 2) ? 1 : 0);
        }
        pl_tokseq q = {text, L, ids, sp, T};
        size_t mid = L / 2;
        pl_field fl[2] = {{"subject", {0, mid}}, {"body", {mid, L}}};
        for (int lv = 0; lv < 4 && ok; lv++) {
            pl_features f;
            pl_status st = pl_features_build(&q, fl, 2, (pl_feat_level)lv, &f);
            if (st) {
                printf("  iteration %d level %d: %s\n", it, lv, pl_errmsg());
                ok = 0;
                break;
            }
            uint8_t seen[96] = {0};
            for (size_t k = 0; k < f.n_features && ok; k++) {
                ok = f.ptr[k] < f.ptr[k + 1] && f.text[k] != NULL;
                for (size_t j = f.ptr[k]; j < f.ptr[k + 1] && ok; j++) ok = f.tok[j] < T && !seen[f.tok[j]]++;
            }
            if (!ok) printf("  iteration %d level %d: features do not partition the tokens\n", it, lv);
            if (f.n_features > 0) {
                pl_xtree t, t2;
                if (pl_xtree_email(&f, &t)) {
                    printf("  iteration %d level %d: email tree: %s\n", it, lv, pl_errmsg());
                    ok = 0;
                    pl_features_free(&f);
                    break;
                }
                double rows[4 * 96];
                for (size_t k = 0; k + 1 < f.n_features; k++) {
                    rows[4 * k] = t.left[k];
                    rows[4 * k + 1] = t.right[k];
                    rows[4 * k + 2] = t.height[k];
                    rows[4 * k + 3] = t.size[k];
                }
                st = pl_xtree_from_linkage(rows, f.n_features, &t2);
                if (st) {
                    printf("  iteration %d level %d: email tree invalid: %s\n", it, lv, pl_errmsg());
                    ok = 0;
                }
                else pl_xtree_free(&t2);
                pl_xtree_free(&t);
                uint8_t mask[96];
                for (size_t k = 0; k < f.n_features; k++) mask[k] = (uint8_t)pl_rng_below(&r, 2);
                int32_t out[96];
                size_t n;
                pl_mask_spec ms = {PL_MASK_DELETE, 0, NULL};
                if (pl_explain_apply_mask(ids, T, &f, mask, &ms, out, &n)) n = SIZE_MAX;
                size_t keep = T;
                for (size_t k = 0; k < f.n_features; k++)
                    if (!mask[k]) keep -= f.ptr[k + 1] - f.ptr[k];
                if (n != keep) {
                    printf("  iteration %d level %d: delete keeps %zu of %zu, want %zu\n", it, lv, n, T, keep);
                    ok = 0;
                }
            }
            pl_features_free(&f);
        }
    }
    CHECK(ok, "200 random token sequences x 4 levels: consistent features, valid email trees, masking");
}

/* ---- rendering ------------------------------------------------------------------------- */

static void test_render(void) {
    const char *text = "Click <here> & win";
    pl_span sp[] = {{0, 5}, {5, 12}, {12, 14}, {14, 18}};
    int32_t ids[] = {1, 2, 3, 4};
    pl_tokseq q = {text, strlen(text), ids, sp, 4};
    pl_features f;
    CHECK_OK(pl_features_build(&q, NULL, 0, PL_FEAT_WORD, &f));
    CHECK(f.n_features == 4, "4 words: %zu", f.n_features);
    double phi[4] = {0.5, -0.25, 0.0, 1.0};
    pl_xresult r = {0};
    r.n_features = 4;
    r.phi = phi;
    r.base_value = -1;
    r.fx = 0.25;
    r.method = PL_XM_PARTITION;
    r.budget = 500;
    r.evals = 42;
    pl_mask_spec ms = {PL_MASK_REPLACE, 9, NULL};
    pl_xexample ex = {"msg-1", &r, &f, &q, &ms};
    pl_buf b = {0};
    CHECK_OK(pl_xexample_to_json(&ex, &b));
    cJSON *j = cJSON_Parse(b.data);
    CHECK(j != NULL, "JSON parses: %s", b.data);
    if (j) {
        CHECK(strcmp(cJSON_GetObjectItem(j, "method")->valuestring, "partition") == 0, "method");
        CHECK(cJSON_GetObjectItem(j, "evals")->valueint == 42, "evals");
        CHECK(fabs(cJSON_GetObjectItem(j, "efficiency_error")->valuedouble) < 1e-12, "efficiency 0 here");
        const cJSON *fa = cJSON_GetObjectItem(j, "features");
        CHECK(cJSON_GetArraySize(fa) == 4, "4 features");
        const cJSON *f1 = cJSON_GetArrayItem(fa, 1);
        CHECK(strcmp(cJSON_GetObjectItem(f1, "text")->valuestring, "<here>") == 0, "feature text raw in JSON");
        CHECK(cJSON_GetObjectItem(f1, "start")->valueint == 6 && cJSON_GetObjectItem(f1, "end")->valueint == 12,
              "feature span [6,12) without the leading space");
        CHECK(strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "masking"), "policy")->valuestring, "replace") == 0,
              "masking recorded");
        cJSON_Delete(j);
    }
    b.len = 0;
    CHECK_OK(pl_xexample_render_html(&ex, &b));
    CHECK(strstr(b.data, "&lt;here&gt;") && !strstr(b.data, "<here>") && strstr(b.data, "&amp;"),
          "HTML escapes: %s", b.data);
    CHECK(strstr(b.data, "rgba(230,30,30,0.850)") != NULL, "strongest positive is full red: %s", b.data);
    CHECK(strstr(b.data, "rgba(30,30,230,0.212)") != NULL, "negative is blue at 0.25/1: %s", b.data);
    b.len = 0;
    CHECK_OK(pl_xexample_render_ansi(&ex, 1, &b));
    CHECK(strstr(b.data, "\x1b[48;2;255;55;55m\x1b[30mwin") != NULL, "ANSI: 'win' full red");
    CHECK(strstr(b.data, "\x1b[48;2;205;205;255m") != NULL, "ANSI: '<here>' light blue");
    b.len = 0;
    CHECK_OK(pl_xexample_render_ansi(&ex, 0, &b));
    CHECK(strstr(b.data, "Click[+0.5] <here>[-0.25] & win[+1]") != NULL, "plain markers: %s", b.data);
    pl_buf_free(&b);
    pl_features_free(&f);
}

/* ---- global ------------------------------------------------------------------------------- */

static void test_global(void) {
    pl_xglobal *a, *b;
    CHECK_OK(pl_xglobal_new(&a));
    CHECK_OK(pl_xglobal_new(&b));
    const char *k1[] = {"Verify", "account", "now!", "Enron"};
    double p1[] = {0.8, 0.2, 0.4, -0.1};
    const char *k2[] = {"verify", "meeting", "ENRON,"};
    double p2[] = {0.4, -0.65, -0.5};
    CHECK_OK(pl_xglobal_add(a, k1, p1, 4, 1, "phish2020", 1));
    CHECK_OK(pl_xglobal_add(a, k2, p2, 3, 0, "enron", 0));
    pl_xstat s = pl_xglobal_get(a, PL_XSLICE_ALL, NULL, "VERIFY");
    CHECK(s.count == 2 && s.examples == 2 && fabs(s.mean_abs - 0.6) < 1e-15 && fabs(s.mean - 0.6) < 1e-15,
          "verify: count %zu mean|phi| %g", s.count, s.mean_abs);
    s = pl_xglobal_get(a, PL_XSLICE_ALL, NULL, "enron");
    CHECK(s.count == 2 && fabs(s.mean_abs - 0.3) < 1e-15 && fabs(s.mean + 0.3) < 1e-15,
          "punctuation and case folded: enron count %zu mean %g", s.count, s.mean);
    s = pl_xglobal_get(a, PL_XSLICE_LABEL, "0", "verify");
    CHECK(s.count == 1 && fabs(s.mean_abs - 0.4) < 1e-15, "label=0 slice");
    s = pl_xglobal_get(a, PL_XSLICE_CORRECT, "1", "now");
    CHECK(s.count == 1 && fabs(s.mean_abs - 0.4) < 1e-15, "correct=1 slice, 'now!' -> 'now'");
    pl_xstat *rows;
    size_t nr;
    CHECK_OK(pl_xglobal_top(a, PL_XSLICE_ALL, NULL, 1, 3, &rows, &nr));
    CHECK(nr == 3 && !strcmp(rows[0].key, "meeting") && !strcmp(rows[1].key, "verify") &&
              !strcmp(rows[2].key, "now"),
          "top 3 by mean |phi|: %s %s %s", nr > 0 ? rows[0].key : "", nr > 1 ? rows[1].key : "",
          nr > 2 ? rows[2].key : "");
    free(rows);
    /* compare */
    const char *k3[] = {"verify", "account"};
    double p3[] = {0.1, 0.9};
    CHECK_OK(pl_xglobal_add(b, k3, p3, 2, 1, "phish2020", 1));
    pl_xdiff *d;
    size_t nd;
    CHECK_OK(pl_xglobal_compare(a, b, 1, 0, &d, &nd));
    /* account: a 0.2 vs b 0.9 (-0.7); meeting 0.65 vs absent; verify 0.6 vs 0.1 (0.5) */
    CHECK(nd == 5 && !strcmp(d[0].key, "account") && fabs(d[0].diff + 0.7) < 1e-12 && d[0].count_b == 1,
          "largest difference: account -0.7 (%s %g)", nd ? d[0].key : "", nd ? d[0].diff : 0);
    CHECK(nd > 1 && !strcmp(d[1].key, "meeting") && d[1].count_b == 0, "meeting only in a");
    pl_buf bj = {0};
    CHECK_OK(pl_xdiff_to_json(d, nd, &bj));
    CHECK(strstr(bj.data, "\"count_b\":0") != NULL, "diff JSON has counts");
    free(d);
    /* artifacts: enron marks the enron source (z 5), verify marks phish (z 1: below threshold) */
    pl_xartifact_in in[] = {{"Enron", "enron", 5.0}, {"verify", "phish2020", 1.0}, {"zzz", "enron", 9.0}};
    pl_xcandidate *cand;
    size_t nc;
    CHECK_OK(pl_xglobal_artifacts(a, in, 3, 3.0, 10, 1, &cand, &nc));
    CHECK(nc == 1 && !strcmp(cand[0].key, "enron") && cand[0].rank == 4 &&
              fabs(cand[0].mean_abs_in_source - 0.5) < 1e-12,
          "one candidate: enron rank 4 (got %zu, rank %zu)", nc, nc ? cand[0].rank : 0);
    bj.len = 0;
    CHECK_OK(pl_xcandidates_to_json(cand, nc, &bj));
    CHECK(strstr(bj.data, "heuristic candidate") && strstr(bj.data, "source_log_odds_z"), "candidate JSON: %s",
          bj.data);
    free(cand);
    bj.len = 0;
    CHECK_OK(pl_xglobal_to_json(a, 1, 5, &bj));
    cJSON *j = cJSON_Parse(bj.data);
    CHECK(j && cJSON_GetObjectItem(j, "examples")->valueint == 2 &&
              cJSON_GetObjectItem(cJSON_GetObjectItem(j, "slices"), "source=enron"),
          "global JSON: %s", bj.data);
    cJSON_Delete(j);
    pl_buf_free(&bj);
    double nanphi[] = {NAN};
    CHECK(pl_xglobal_add(a, k1, nanphi, 1, 1, NULL, 1) == PL_ERR_NUMERIC, "NaN phi rejected");
    pl_xglobal_free(a);
    pl_xglobal_free(b);
}

int main(void) {
    T_BEGIN();
    test_linear();
    test_pairs();
    test_exact_vs_definition();
    test_owen_closed_form();
    test_owen_as_tree_orders();
    test_convergence();
    test_efficiency_and_batching();
    test_threads();
    test_scale();
    test_errors();
    test_shap_vectors();
    test_features();
    test_email_tree_shape();
    test_features_random();
    test_render();
    test_global();
    printf("  worst efficiency error: exact %.3g, permutation %.3g, kernel %.3g, partition %.3g\n", worst_eff[0],
           worst_eff[1], worst_eff[2], worst_eff[3]);
    return T_END();
}
