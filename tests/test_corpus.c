/* test_corpus.c — corpus tools: MinHash/LSH dedup, leakage, profile statistics
 * (log-odds, JSD, separability, dates), grouped stratified splits, the
 * confident-learning audit and the synthetic corpus generator.
 * Expected values come from closed forms worked by hand (in the comments) or
 * from the construction of the input, never from the code under test. */
#include "harness.h"

#include <cJSON.h>

#include "data/data.h"

/* ---- helpers ---- */

/* A pseudo-word "w<k>" text of n words drawn from a vocabulary of size V. */
static char *random_text(pl_rng *r, int n, int V) {
    pl_buf b = {0};
    for (int i = 0; i < n; i++) pl_buf_printf(&b, "%sw%d", i ? " " : "", (int)pl_rng_below(r, (uint64_t)V));
    return b.data;
}

/* Replace k words of a "w.. w.. .." text by fresh ones ("x<j>"). */
static char *perturb(pl_rng *r, const char *t, int k, int tag) {
    int n = 1;
    for (const char *p = t; *p; p++) n += *p == ' ';
    int *hit = calloc((size_t)n, sizeof *hit);
    for (int i = 0; i < k; i++) hit[pl_rng_below(r, (uint64_t)n)] = 1;
    pl_buf b = {0};
    const char *p = t;
    for (int i = 0; i < n; i++) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (i) pl_buf_append(&b, " ", 1);
        if (hit[i]) pl_buf_printf(&b, "x%d_%d", tag, i);
        else pl_buf_append(&b, p, len);
        p = e ? e + 1 : p + len;
    }
    pl_buf_append(&b, "", 1);
    free(hit);
    return b.data;
}

/* ---- MinHash ---- */

static void test_minhash_estimate(void) {
    /* Sets with |A| = |B| = 300 and |A ∩ B| = s: J = s / (600 - s). With
     * k = 256 permutations the estimator's sd is sqrt(J(1-J)/k) <= 0.031;
     * 4 sd = 0.125 bounds each estimate, and the mean error over the 9 cases
     * must be far smaller (0.04). */
    const int k = 256;
    const double tol_each = 0.125, tol_mean = 0.04;
    int shared[] = {0, 30, 100, 150, 200, 250, 280, 290, 300};
    double err_sum = 0;
    uint64_t *a = malloc(300 * sizeof *a), *b = malloc(300 * sizeof *b);
    uint64_t sa[256], sb[256];
    for (int c = 0; c < 9; c++) {
        int s = shared[c];
        for (int i = 0; i < 300; i++) {
            a[i] = pl_hash64(&i, sizeof i, 1000 + (uint64_t)c);
            int j = i < s ? i : i + 1000;
            b[i] = i < s ? a[i] : pl_hash64(&j, sizeof j, 1000 + (uint64_t)c);
        }
        /* pl_jaccard_sorted needs sorted sets */
        for (int i = 1; i < 300; i++)
            for (int j = i; j > 0 && a[j] < a[j - 1]; j--) { uint64_t t = a[j]; a[j] = a[j - 1]; a[j - 1] = t; }
        for (int i = 1; i < 300; i++)
            for (int j = i; j > 0 && b[j] < b[j - 1]; j--) { uint64_t t = b[j]; b[j] = b[j - 1]; b[j - 1] = t; }
        double want = (double)s / (600.0 - s);
        CHECK_NEAR(pl_jaccard_sorted(a, 300, b, 300), want, 1e-12);
        pl_minhash(a, 300, k, 7, sa);
        pl_minhash(b, 300, k, 7, sb);
        double est = pl_minhash_estimate(sa, sb, k);
        CHECK(fabs(est - want) <= tol_each, "MinHash estimate %.3f vs exact %.3f (shared %d)", est, want, s);
        err_sum += fabs(est - want);
    }
    CHECK(err_sum / 9 <= tol_mean, "mean |MinHash - Jaccard| = %.4f > %.3f", err_sum / 9, tol_mean);
    free(a);
    free(b);

    /* text shingles: "a b c d" with w = 2 has {ab, bc, cd}; "a b c e" has {ab, bc, ce}: J = 2/4 */
    uint64_t *x, *y;
    size_t nx, ny;
    CHECK_OK(pl_shingles("a b c d", 2, &x, &nx));
    CHECK_OK(pl_shingles("A,  b. c e", 2, &y, &ny));
    CHECK(nx == 3 && ny == 3, "shingle counts %zu %zu, want 3 3", nx, ny);
    CHECK_NEAR(pl_jaccard_sorted(x, nx, y, ny), 0.5, 1e-12);
    free(x);
    free(y);
    /* Unicode spaces separate words: "a<NBSP>b<EM SPACE>c" is "a b c" */
    CHECK_OK(pl_shingles("a\xc2\xa0" "b\xe2\x80\x83" "c d", 2, &x, &nx));
    CHECK_OK(pl_shingles("a b c d", 2, &y, &ny));
    CHECK(nx == 3 && ny == 3 && !memcmp(x, y, 3 * sizeof *x), "NBSP and EM SPACE separate words");
    free(x);
    free(y);
    CHECK(pl_text_words("caf\xc3\xa9 \xc2\xa0 na\xc3\xafve", NULL, NULL) == 2, "UTF-8 letters stay in words");
    CHECK_OK(pl_shingles("one two", 3, &x, &nx));
    CHECK(nx == 1, "a text shorter than the shingle gives one shingle, got %zu", nx);
    free(x);

    /* banding: P(collide at t) = 1 - (1 - t^r)^b must reach 0.99 */
    int bands, rows;
    pl_lsh_params(128, 0.8, &bands, &rows);
    double pc = 1 - pow(1 - pow(0.8, rows), bands);
    CHECK(bands * rows <= 128 && pc >= 0.99, "LSH params b=%d r=%d give P=%.4f at J=0.8", bands, rows, pc);
    pl_lsh_params(128, 0.5, &bands, &rows);
    pc = 1 - pow(1 - pow(0.5, rows), bands);
    CHECK(pc >= 0.99 && rows >= 2, "LSH params b=%d r=%d give P=%.4f at J=0.5", bands, rows, pc);
}

static void test_lsh_recall(void) {
    /* 300 random 120-word texts and, for 150 of them, a copy with 3 words
     * changed (each change touches <= 3 of 118 shingles, so J >= 109/127 =
     * 0.858). Threshold 0.75: every planted pair is above it, unrelated texts
     * over a 20k vocabulary share almost no shingles. The LSH banding gives
     * P(candidate) >= 0.99 at J = 0.75, so recall must be >= 0.95. */
    pl_rng r;
    pl_rng_seed(&r, 42);
    enum { NB = 300, NP = 150 };
    char *t[NB + NP];
    for (int i = 0; i < NB; i++) t[i] = random_text(&r, 120, 20000);
    for (int i = 0; i < NP; i++) t[NB + i] = perturb(&r, t[2 * i], 3, i);
    int above = 1;
    for (int i = 0; i < NP; i++) {
        uint64_t *a, *b;
        size_t na, nb;
        pl_shingles(t[2 * i], 3, &a, &na);
        pl_shingles(t[NB + i], 3, &b, &nb);
        above &= pl_jaccard_sorted(a, na, b, nb) >= 0.75;
        free(a);
        free(b);
    }
    CHECK(above, "construction: every planted pair has J >= 0.75");
    pl_dedup_opts o;
    pl_dedup_opts_default(&o);
    o.threshold = 0.75;
    pl_dedup_result dr;
    CHECK_OK(pl_dedup_texts((const char *const *)t, NB + NP, &o, &dr));
    int found = 0;
    for (int i = 0; i < NP; i++) found += dr.cluster[NB + i] == (size_t)(2 * i);
    CHECK((double)found / NP >= 0.95, "LSH recall %d/%d below 0.95", found, NP);
    CHECK(dr.n_near_dups == (size_t)found && dr.n_exact_dups == 0,
          "no other merges: near %zu (want %d), exact %zu", dr.n_near_dups, found, dr.n_exact_dups);
    pl_dedup_result_free(&dr);
    for (int i = 0; i < NB + NP; i++) free(t[i]);
}

static void test_dedup_counts(void) {
    pl_rng r;
    pl_rng_seed(&r, 3);
    char *base[5];
    for (int i = 0; i < 5; i++) base[i] = random_text(&r, 200, 5000);
    char *near1 = perturb(&r, base[1], 2, 1), *near2 = perturb(&r, base[2], 2, 2);
    /* exact duplicates differing in case and whitespace only */
    pl_buf ex = {0};
    pl_buf_printf(&ex, "  %s \n", base[0]);
    for (char *p = ex.data; *p; p++)
        if (*p == 'w') *p = 'W';
    for (char *p = ex.data; (p = strchr(p, ' ')) != NULL; p += 2) {
        if (p[1] == 0) break;
        *p = '\t';
    }
    const char *texts[] = {base[0], base[1], base[2], ex.data, near1, base[3], base[0], near2, "", "  \n", base[4]};
    /* expected: 3 and 6 duplicate 0 exactly; 4 near-duplicates 1, 7 near-duplicates 2;
     * the blank texts 8 and 9 are never duplicates. Kept: 0 1 2 5 8 9 10 = 7. */
    pl_dedup_opts o;
    pl_dedup_opts_default(&o);
    pl_dedup_result dr;
    CHECK_OK(pl_dedup_texts(texts, 11, &o, &dr));
    CHECK(dr.n_clusters == 7 && dr.n_exact_dups == 2 && dr.n_near_dups == 2,
          "dedup counts kept %zu exact %zu near %zu, want 7 2 2", dr.n_clusters, dr.n_exact_dups, dr.n_near_dups);
    size_t want[] = {0, 1, 2, 0, 1, 5, 0, 2, 8, 9, 10};
    int ok = 1;
    for (int i = 0; i < 11; i++) ok &= dr.cluster[i] == want[i];
    CHECK(ok, "cluster representatives");
    pl_dedup_result_free(&dr);
    int e1, e2;
    CHECK(pl_text_hash_normalized("Hello   World\n", &e1) == pl_text_hash_normalized("hello world", &e2) && !e1 && !e2,
          "normalized hash ignores case and whitespace runs");
    CHECK(pl_text_hash_normalized("hello world", NULL) != pl_text_hash_normalized("helloworld", NULL),
          "word boundaries matter");

    /* leakage: train {base0, base1, base2}; test {base0 re-cased (exact), near of
     * base2 (near), base3 (new), base4 (new), blank (never)} */
    const char *train[] = {base[0], base[1], base[2]};
    const char *test[] = {base[3], ex.data, near2, base[4], ""};
    pl_leakage_result lr;
    CHECK_OK(pl_leakage_texts(train, 3, test, 5, &o, &lr));
    CHECK(lr.n_exact == 1 && lr.n_near == 1, "leakage exact %zu near %zu, want 1 1", lr.n_exact, lr.n_near);
    CHECK(lr.exact[1] == 0 && lr.near[2] == 2 && lr.exact[0] < 0 && lr.near[0] < 0 && lr.near[3] < 0 && lr.exact[4] < 0,
          "leakage matches point at the right train records");
    CHECK(lr.near_j[2] > 0.9 && lr.near_j[2] < 1.0, "near J %.3f", lr.near_j[2]);
    pl_leakage_result_free(&lr);
    pl_buf_free(&ex);
    free(near1);
    free(near2);
    for (int i = 0; i < 5; i++) free(base[i]);
}

/* ---- transitive clusters: a chain A ~ B ~ C with A !~ C ---- */

/* Words w<from> .. w<from+99>: 100 distinct words, 98 word 3-shingles. */
static char *window_text(int from) {
    pl_buf b = {0};
    for (int i = 0; i < 100; i++) pl_buf_printf(&b, "%sw%d", i ? " " : "", from + i);
    return b.data;
}

static void test_transitive_chain(void) {
    /* A = w0..w99, B = w10..w109, C = w20..w119. Shingle sets of 98 each; A and B
     * share the shingles inside w10..w99 (88), so J(A,B) = J(B,C) = 88 / (196 - 88)
     * = 0.815 >= 0.8; A and C share 78, J(A,C) = 78 / 118 = 0.661 < 0.8. */
    char *A = window_text(0), *B = window_text(10), *C = window_text(20);
    uint64_t *sa, *sb, *sc;
    size_t na, nb, nc;
    CHECK_OK(pl_shingles(A, 3, &sa, &na));
    CHECK_OK(pl_shingles(B, 3, &sb, &nb));
    CHECK_OK(pl_shingles(C, 3, &sc, &nc));
    CHECK(fabs(pl_jaccard_sorted(sa, na, sb, nb) - 88.0 / 108.0) < 1e-12 &&
              fabs(pl_jaccard_sorted(sb, nb, sc, nc) - 88.0 / 108.0) < 1e-12 &&
              fabs(pl_jaccard_sorted(sa, na, sc, nc) - 78.0 / 118.0) < 1e-12,
          "chain Jaccards are the closed forms");
    free(sa);
    free(sb);
    free(sc);
    pl_rng r;
    pl_rng_seed(&r, 77);
    enum { NF = 40 };
    char *fill[NF];
    for (int i = 0; i < NF; i++) fill[i] = random_text(&r, 60, 5000);
    pl_dedup_opts o;
    pl_dedup_opts_default(&o);

    /* dedup: C comes first so that only the chain can join it to A */
    const char *t1[NF + 3];
    t1[0] = C;
    for (int i = 0; i < NF; i++) t1[1 + i] = fill[i];
    t1[NF + 1] = A;
    t1[NF + 2] = B;
    pl_dedup_result dr;
    CHECK_OK(pl_dedup_texts(t1, NF + 3, &o, &dr));
    CHECK(dr.cluster[NF + 1] == 0 && dr.cluster[NF + 2] == 0 && dr.n_near_dups == 2 && dr.n_clusters == NF + 1,
          "dedup: A, B, C one cluster (A in %zu, B in %zu; %zu clusters)", dr.cluster[NF + 1], dr.cluster[NF + 2],
          dr.n_clusters);
    pl_dedup_result_free(&dr);

    /* leakage: train {A}, test {C, B, filler}: B is a near duplicate of A, C only
     * reaches A through B */
    const char *train[] = {A, fill[0]};
    const char *test[] = {C, fill[1], B, fill[2]};
    pl_leakage_result lr;
    CHECK_OK(pl_leakage_texts(train, 2, test, 4, &o, &lr));
    CHECK(lr.near[2] == 0 && lr.near[0] < 0 && lr.exact[0] < 0 && lr.chain[0] == 0,
          "leakage: B near A, C chained to A (near %ld chain %ld)", lr.near[0], lr.chain[0]);
    CHECK(lr.n_exact == 0 && lr.n_near == 1 && lr.n_chain == 1 && lr.chain[1] < 0 && lr.chain[3] < 0,
          "leakage counts exact %zu near %zu chain %zu", lr.n_exact, lr.n_near, lr.n_chain);
    pl_leakage_result_free(&lr);
    /* without B in test, C is not leaked */
    const char *test2[] = {C, fill[1]};
    CHECK_OK(pl_leakage_texts(train, 2, test2, 2, &o, &lr));
    CHECK(lr.n_near == 0 && lr.n_chain == 0 && lr.chain[0] < 0, "leakage: C alone is not leaked");
    pl_leakage_result_free(&lr);

    /* split: the three always share one partition, whatever the seed */
    pl_records rs = {0};
    const char *bodies[NF + 3];
    for (int i = 0; i < NF + 3; i++) bodies[i] = t1[i];
    for (int i = 0; i < NF + 3; i++) {
        pl_record rec;
        pl_record_init(&rec);
        char id[32];
        snprintf(id, sizeof id, "r%d", i);
        pl_record_set(&rec.id, id);
        pl_record_set(&rec.source, "s");
        pl_record_set(&rec.body, bodies[i]);
        rec.label = i % 2;
        pl_records_push(&rs, &rec);
    }
    pl_split_opts so;
    pl_split_opts_default(&so);
    so.test_frac = 0.4;
    uint8_t part[NF + 3];
    size_t cl[NF + 3];
    int same = 1, seen_test = 0;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        so.seed = seed;
        CHECK_OK(pl_split_assign(&rs, &so, part, cl));
        same &= part[0] == part[NF + 1] && part[0] == part[NF + 2] && cl[NF + 1] == cl[0] && cl[NF + 2] == cl[0];
        seen_test |= part[0] == PL_PART_TEST;
    }
    CHECK(same && seen_test, "split: the chain never spans partitions (and lands in test for some seed)");
    pl_records_free(&rs);
    for (int i = 0; i < NF; i++) free(fill[i]);
    free(A);
    free(B);
    free(C);
}

/* ---- profile statistics ---- */

static void test_log_odds_jsd(void) {
    /* y_i = [3,1,0], y_j = [1,2,4], alpha = [1,1,1]: n_i = 4, n_j = 7, a0 = 3.
     * w0: a = 4, b = 2: delta = log(4/3) - log(2/8) = log(16/3); var = 1/4 + 1/2.
     * w1: a = 2, b = 3: delta = log(2/5) - log(3/7) = log(14/15); var = 1/2 + 1/3.
     * w2: a = 1, b = 5: delta = log(1/6) - log(5/5) = -log 6; var = 1 + 1/5. */
    double yi[3] = {3, 1, 0}, yj[3] = {1, 2, 4}, al[3] = {1, 1, 1}, d[3], z[3];
    pl_log_odds_dirichlet(yi, yj, al, 3, d, z);
    CHECK_NEAR(d[0], log(16.0 / 3.0), 1e-12);
    CHECK_NEAR(d[1], log(14.0 / 15.0), 1e-12);
    CHECK_NEAR(d[2], -log(6.0), 1e-12);
    CHECK_NEAR(z[0], log(16.0 / 3.0) / sqrt(0.75), 1e-12);
    CHECK_NEAR(z[1], log(14.0 / 15.0) / sqrt(1.0 / 2 + 1.0 / 3), 1e-12);
    CHECK_NEAR(z[2], -log(6.0) / sqrt(1.2), 1e-12);

    /* JSD in bits: disjoint = 1; equal = 0; (1,0) vs (1/2,1/2) with m = (3/4,1/4):
     * 1/2 [1 log2(4/3)] + 1/2 [1/2 log2(2/3) + 1/2 log2(2)]. */
    double p[2] = {1, 0}, q[2] = {0, 5}, u[2] = {2, 2};
    CHECK_NEAR(pl_jsd(p, q, 2), 1.0, 1e-12);
    CHECK_NEAR(pl_jsd(u, u, 2), 0.0, 1e-12);
    CHECK_NEAR(pl_jsd(p, u, 2), 0.5 * log2(4.0 / 3) + 0.25 * log2(2.0 / 3) + 0.25, 1e-12);
    CHECK_NEAR(pl_jsd(u, p, 2), pl_jsd(p, u, 2), 1e-15);

    int y, m, dd;
    struct {
        const char *s;
        int y, m, d;
    } dates[] = {{"Tue, 14 Mar 2006 10:00:00 -0500", 2006, 3, 14},
                 {"14 Mar 2006", 2006, 3, 14},
                 {"2016-11-19T10:00:00Z", 2016, 11, 19},
                 {"19-11-2016 16:42", 2016, 11, 19},
                 {"11/19/2016", 2016, 11, 19},
                 {"19/11/2016", 2016, 11, 19},
                 {"March 14, 2006", 2006, 3, 14},
                 {"Thu, 1 Aug 02 09:14:03", 2002, 8, 1}};
    for (size_t i = 0; i < sizeof dates / sizeof *dates; i++) {
        int ok = pl_parse_date(dates[i].s, &y, &m, &dd);
        CHECK(ok && y == dates[i].y && m == dates[i].m && dd == dates[i].d, "date '%s' -> %d %d-%d-%d", dates[i].s, ok, y,
              m, dd);
    }
    CHECK(!pl_parse_date("yesterday", &y, &m, &dd) && !pl_parse_date("", &y, &m, &dd) &&
              !pl_parse_date("2016-13-40", &y, &m, &dd),
          "garbage dates are not parsed");
}

static void test_separability(void) {
    /* Same distribution: 600 texts from one vocabulary, sources assigned at
     * random among 3 -> accuracy near chance (majority ~ 1/3). Tolerance: with
     * 600 test predictions, chance accuracy has sd ~ 0.02; 0.1 above the
     * majority is 5 sd. */
    pl_rng r;
    pl_rng_seed(&r, 9);
    enum { N = 600 };
    char *t[N];
    int cls[N];
    for (int i = 0; i < N; i++) {
        t[i] = random_text(&r, 40, 300);
        cls[i] = (int)pl_rng_below(&r, 3);
    }
    double acc, bal, maj;
    CHECK_OK(pl_separability((const char *const *)t, cls, N, 3, 5, 1, 16, &acc, &bal, &maj));
    CHECK(acc < maj + 0.1 && bal < 1.0 / 3 + 0.1, "same-distribution separability %.3f (balanced %.3f) vs majority %.3f",
          acc, bal, maj);
    for (int i = 0; i < N; i++) free(t[i]);

    /* different styles: the synthetic corpus sources are meant to differ */
    pl_synth_opts so;
    pl_synth_opts_default(&so);
    so.n = 600;
    so.n_pairs = 0;
    pl_records rs = {0}, pr = {0};
    cJSON *pairs, *man;
    CHECK_OK(pl_synth_generate(&so, &rs, &pr, &pairs, &man));
    pl_profile_opts po;
    pl_profile_opts_default(&po);
    pl_profile p;
    CHECK_OK(pl_profile_compute(&rs, &po, &p));
    CHECK(p.n_sources == 6 && p.separability > 0.9 && fabs(p.majority - 1.0 / 6) < 1e-9,
          "synthetic styles separability %.3f (majority %.3f, %zu sources)", p.separability, p.majority, p.n_sources);
    for (size_t s = 0; s < p.n_sources; s++) {
        CHECK(p.src[s].n == 100 && p.src[s].n_phish == 50 && p.src[s].has_subject == 1.0 && p.src[s].n_dated == 100,
              "profile of %s: n %zu phish %zu dated %zu", p.src[s].name, p.src[s].n, p.src[s].n_phish, p.src[s].n_dated);
        CHECK(p.src[s].n_top > 0 && p.src[s].n_charsets == 1 && p.src[s].n_html_meta == 100, "profile extras of %s",
              p.src[s].name);
    }
    /* imbalanced: one style (100) against the five others pooled (500) with
     * overlapping English vocabulary; the small class must still be found */
    {
        const char **tx = malloc(rs.n * sizeof *tx);
        int *cl2 = malloc(rs.n * sizeof *cl2);
        for (size_t i = 0; i < rs.n; i++) {
            tx[i] = rs.v[i].body;
            cl2[i] = strcmp(rs.v[i].source, "bank") == 0;
        }
        CHECK_OK(pl_separability(tx, cl2, rs.n, 2, 5, 3, 18, &acc, &bal, &maj));
        CHECK(bal > 0.9 && acc > maj + 0.1, "imbalanced separability %.3f balanced %.3f majority %.3f", acc, bal, maj);
        free(tx);
        free(cl2);
    }
    cJSON *j;
    CHECK_OK(pl_profile_to_json(&p, &j));
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "sources")) == 6, "profile JSON has 6 sources");
    cJSON_Delete(j);
    pl_profile_free(&p);
    pl_records_free(&rs);
    pl_records_free(&pr);
    cJSON_Delete(pairs);
    cJSON_Delete(man);
}

/* ---- splits ---- */

static void test_split(void) {
    pl_synth_opts so;
    pl_synth_opts_default(&so);
    so.n = 1200;
    so.n_pairs = 0;
    pl_records rs = {0}, pr = {0};
    cJSON *pairs, *man;
    CHECK_OK(pl_synth_generate(&so, &rs, &pr, &pairs, &man));
    cJSON_Delete(pairs);
    cJSON_Delete(man);
    /* plant 60 duplicate families: copies of record i (exact) and of record
     * i with one sentence dropped is not guaranteed near; use exact copies and
     * re-cased copies, 2 per family, with the same source and label. */
    size_t n0 = rs.n;
    for (size_t f = 0; f < 60; f++) {
        for (int c = 0; c < 2; c++) {
            pl_record cp;
            pl_record_copy(&cp, &rs.v[f * 7]);
            char id[64];
            snprintf(id, sizeof id, "dup-%zu-%d", f, c);
            pl_record_set(&cp.id, id);
            if (c) for (char *p = cp.body; *p; p++) if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 32);
            pl_records_push(&rs, &cp);
        }
    }
    pl_split_opts o;
    pl_split_opts_default(&o);
    o.seed = 5;
    uint8_t *part = malloc(rs.n), *part2 = malloc(rs.n), *part3 = malloc(rs.n);
    size_t *cl = malloc(rs.n * sizeof *cl);
    CHECK_OK(pl_split_assign(&rs, &o, part, cl));
    CHECK_OK(pl_split_assign(&rs, &o, part2, NULL));
    CHECK(memcmp(part, part2, rs.n) == 0, "same seed, same split");
    o.seed = 6;
    CHECK_OK(pl_split_assign(&rs, &o, part3, NULL));
    CHECK(memcmp(part, part3, rs.n) != 0, "another seed, another split");
    /* planted families stay together */
    int together = 1;
    for (size_t f = 0; f < 60; f++)
        together &= part[n0 + 2 * f] == part[f * 7] && part[n0 + 2 * f + 1] == part[f * 7];
    CHECK(together, "duplicate families never span partitions");
    /* no cluster spans partitions */
    int span = 0;
    for (size_t i = 0; i < rs.n; i++) span += part[i] != part[cl[i]];
    CHECK(span == 0, "%d records in another partition than their cluster", span);
    /* stratification: per (source, label) the test share is within 0.03 of 0.2
     * and val within 0.03 of 0.1 (strata of ~100-110 records; groups of <= 3
     * records can overshoot a target by at most 2 records = 0.02). */
    for (int s = 0; s < pl_synth_n_styles(); s++)
        for (int L = 0; L < 2; L++) {
            size_t tot = 0, te = 0, va = 0;
            for (size_t i = 0; i < rs.n; i++)
                if (!strcmp(rs.v[i].source, pl_synth_style_name(s)) && rs.v[i].label == L) {
                    tot++;
                    te += part[i] == PL_PART_TEST;
                    va += part[i] == PL_PART_VAL;
                }
            CHECK(tot > 0 && fabs((double)te / tot - 0.2) <= 0.03 && fabs((double)va / tot - 0.1) <= 0.03,
                  "stratum %s/%d: test %zu val %zu of %zu", pl_synth_style_name(s), L, te, va, tot);
        }
    /* capped selection keeps the label balance */
    size_t *idx, n;
    CHECK_OK(pl_split_select(&rs, part, PL_PART_TRAIN, "bank", 50, 1, &idx, &n));
    size_t ph = 0;
    int okp = 1;
    for (size_t i = 0; i < n; i++) {
        ph += rs.v[idx[i]].label == 1;
        okp &= part[idx[i]] == PL_PART_TRAIN && !strcmp(rs.v[idx[i]].source, "bank") && (i == 0 || idx[i] > idx[i - 1]);
    }
    CHECK(n == 50 && okp && ph >= 24 && ph <= 26, "capped selection: n %zu phish %zu", n, ph);
    free(idx);
    CHECK_OK(pl_split_select(&rs, part, PL_PART_TEST, NULL, 0, 1, &idx, &n));
    size_t te = 0;
    for (size_t i = 0; i < rs.n; i++) te += part[i] == PL_PART_TEST;
    CHECK(n == te, "uncapped selection returns all %zu test records (got %zu)", te, n);
    free(idx);
    o.test_frac = 0.7;
    o.val_frac = 0.3;
    CHECK(pl_split_assign(&rs, &o, part, NULL) == PL_ERR_INVALID, "fractions summing to 1 rejected");
    free(part);
    free(part2);
    free(part3);
    free(cl);
    pl_records_free(&rs);
    pl_records_free(&pr);
}

/* ---- audit ---- */

static void test_audit(void) {
    /* hand case: labels 0 0 0 1 1 1, p1 = .1 .2 .9 .8 .7 .3.
     * t0 = mean(.9 .8 .1) = 0.6, t1 = mean(.8 .7 .3) = 0.6.
     * C = [[2, 1], [1, 2]] (item 2 is confidently 1, item 5 confidently 0);
     * rows already sum to 3, so C_cal = C; prune flags items 2 and 5;
     * noise rate 2/6. Naive rule at 0.85: p(other) = p1 for label 0 -> item 2
     * (0.9); 1 - p1 for label 1 -> none. */
    int lab[6] = {0, 0, 0, 1, 1, 1};
    double p1[6] = {0.1, 0.2, 0.9, 0.8, 0.7, 0.3};
    pl_audit_result ar;
    CHECK_OK(pl_audit_confident(lab, p1, 6, 0.85, &ar));
    CHECK_NEAR(ar.thr[0], 0.6, 1e-12);
    CHECK_NEAR(ar.thr[1], 0.6, 1e-12);
    CHECK(ar.cj[0][0] == 2 && ar.cj[0][1] == 1 && ar.cj[1][0] == 1 && ar.cj[1][1] == 2, "confident joint");
    CHECK(ar.n_prune == 2 && ar.flag_prune[2] && ar.flag_prune[5], "prune flags items 2 and 5");
    CHECK(ar.n_naive == 1 && ar.flag_naive[2], "naive flags item 2 only");
    CHECK_NEAR(ar.noise_rate, 2.0 / 6.0, 1e-12);
    pl_audit_result_free(&ar);

    /* constructed flips: 2000 items, true labels alternate; 10% of labels are
     * flipped; out-of-fold p(true class) ~ U(0.75, 1) for 90% of items and
     * U(0.35, 0.65) (hard) for 10%. Confident learning should find the flips
     * with precision and recall >= 0.85; the naive 0.91 rule only catches
     * flips with p(true) > 0.91 (about 9/25 of them, minus hard ones). */
    enum { N = 2000 };
    int *noisy = malloc(N * sizeof *noisy), *flip = malloc(N * sizeof *flip);
    double *p = malloc(N * sizeof *p);
    pl_rng r;
    pl_rng_seed(&r, 77);
    size_t nflip = 0;
    for (int i = 0; i < N; i++) {
        int truth = i % 2;
        flip[i] = pl_rng_uniform(&r) < 0.1;
        nflip += (size_t)flip[i];
        noisy[i] = flip[i] ? 1 - truth : truth;
        double pt = pl_rng_uniform(&r) < 0.1 ? 0.35 + 0.3 * pl_rng_uniform(&r) : 0.75 + 0.25 * pl_rng_uniform(&r);
        p[i] = truth ? pt : 1 - pt;
    }
    CHECK_OK(pl_audit_confident(noisy, p, N, 0.91, &ar));
    size_t tp = 0, tpn = 0, naive_want = 0;
    for (int i = 0; i < N; i++) {
        tp += (size_t)(ar.flag_prune[i] && flip[i]);
        tpn += (size_t)(ar.flag_naive[i] && flip[i]);
        naive_want += (noisy[i] ? 1 - p[i] : p[i]) > 0.91;
    }
    double prec = ar.n_prune ? (double)tp / ar.n_prune : 0, rec = (double)tp / nflip;
    printf("audit constructed case: %zu flips; confident learning flags %zu (precision %.3f recall %.3f), naive "
           "rule flags %zu (recall %.3f), estimated noise %.3f\n",
           nflip, ar.n_prune, prec, rec, ar.n_naive, (double)tpn / nflip, ar.noise_rate);
    CHECK(prec >= 0.85 && rec >= 0.85, "confident learning precision %.3f recall %.3f", prec, rec);
    CHECK(ar.n_naive == naive_want, "naive rule flags %zu, want %zu", ar.n_naive, naive_want);
    CHECK(fabs(ar.noise_rate - (double)nflip / N) < 0.03, "estimated noise %.3f vs true %.3f", ar.noise_rate,
          (double)nflip / N);
    pl_audit_result_free(&ar);
    int bad[2] = {0, 2};
    double pb[2] = {0.5, 0.5};
    CHECK(pl_audit_confident(bad, pb, 2, 0.91, &ar) == PL_ERR_INVALID, "label 2 rejected");
    int one[2] = {1, 1};
    CHECK(pl_audit_confident(one, pb, 2, 0.91, &ar) == PL_ERR_INVALID, "a single class rejected");
    free(noisy);
    free(flip);
    free(p);
}

/* ---- synthetic corpus ---- */

static int count_in(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

static void test_synth(void) {
    pl_synth_opts o;
    pl_synth_opts_default(&o);
    CHECK(pl_synth_n_styles() >= 5, "at least 5 styles, have %d", pl_synth_n_styles());
    pl_records a = {0}, b = {0}, pa = {0}, pb = {0};
    cJSON *pairs_a, *man_a, *pairs_b, *man_b;
    double t0 = pl_time_now();
    CHECK_OK(pl_synth_generate(&o, &a, &pa, &pairs_a, &man_a));
    double dt = pl_time_now() - t0;
    printf("synth: %zu emails + %zu pair records in %.3f s\n", a.n, pa.n, dt);
    CHECK_OK(pl_synth_generate(&o, &b, &pb, &pairs_b, &man_b));
    int same = a.n == b.n && pa.n == pb.n;
    for (size_t i = 0; same && i < a.n; i++) same = !strcmp(a.v[i].body, b.v[i].body) && !strcmp(a.v[i].id, b.v[i].id);
    for (size_t i = 0; same && i < pa.n; i++) same = !strcmp(pa.v[i].body, pb.v[i].body);
    CHECK(same, "same seed, same corpus");
    pl_records c = {0}, pc = {0};
    cJSON *pairs_c, *man_c;
    o.seed = 2;
    CHECK_OK(pl_synth_generate(&o, &c, &pc, &pairs_c, &man_c));
    size_t differ = 0;
    for (size_t i = 0; i < a.n && i < c.n; i++) differ += strcmp(a.v[i].body, c.v[i].body) != 0;
    CHECK(c.n == a.n && differ > a.n * 9 / 10, "another seed changes the corpus (%zu of %zu differ)", differ, a.n);
    o.seed = 1;

    /* styles, labels, shortcut rates (default: footer, bank+parcel, 0.8 | phish, 0.05 | legit) */
    size_t n_style[PL_SYNTH_MAX_STYLES][2] = {{0}}, sc[PL_SYNTH_MAX_STYLES][2] = {{0}};
    int meta_agrees = 1, cue_clean = 1, known = 1;
    for (size_t i = 0; i < a.n; i++) {
        int s = pl_synth_style_index(a.v[i].source), L = a.v[i].label;
        if (s < 0 || (L != 0 && L != 1)) {
            known = 0;
            continue;
        }
        n_style[s][L]++;
        int has = count_in(a.v[i].body, o.text);
        sc[s][L] += (size_t)has;
        cJSON *m = cJSON_GetObjectItem(a.v[i].meta, "synth_shortcut");
        meta_agrees &= cJSON_IsTrue(m) == has;
        cJSON *cue = cJSON_GetObjectItem(a.v[i].meta, "synth_cue");
        cue_clean &= cJSON_IsString(cue) && strstr(a.v[i].body, cue->valuestring) && !strstr(cue->valuestring, o.text);
    }
    CHECK(known, "every record has a known style and a 0/1 label");
    CHECK(meta_agrees, "meta.synth_shortcut matches the text");
    CHECK(cue_clean, "every cue sentence is in its body and never contains the shortcut");
    const double tol = 0.02; /* exact counts: rounding only */
    for (int s = 0; s < pl_synth_n_styles(); s++) {
        CHECK(n_style[s][0] > 100 && n_style[s][1] > 100, "style %d has both labels (%zu, %zu)", s, n_style[s][0],
              n_style[s][1]);
        double r1 = (double)sc[s][1] / n_style[s][1], r0 = (double)sc[s][0] / n_style[s][0];
        double w1 = o.in_style[s] ? o.rate : 0, w0 = o.in_style[s] ? o.other_rate : 0;
        CHECK(fabs(r1 - w1) <= tol && fabs(r0 - w0) <= tol, "style %s shortcut rates %.3f/%.3f want %.3f/%.3f",
              pl_synth_style_name(s), r1, r0, w1, w0);
    }
    /* few duplicate bodies (exact, normalized) */
    const char **texts = malloc(a.n * sizeof *texts);
    for (size_t i = 0; i < a.n; i++) texts[i] = a.v[i].body;
    pl_dedup_opts dopt;
    pl_dedup_opts_default(&dopt);
    pl_dedup_result dr;
    CHECK_OK(pl_dedup_texts(texts, a.n, &dopt, &dr));
    printf("synth duplicates: %zu exact, %zu near (J >= 0.8) of %zu\n", dr.n_exact_dups, dr.n_near_dups, a.n);
    CHECK(dr.n_exact_dups <= a.n / 100 && dr.n_near_dups <= a.n / 50, "duplicates exact %zu near %zu", dr.n_exact_dups,
          dr.n_near_dups);
    pl_dedup_result_free(&dr);
    free(texts);

    /* minimal pairs differ exactly in the declared element */
    int n_cue = 0, n_sc = 0, ok_cue = 1, ok_sc = 1, ok_span = 1;
    cJSON *e;
    cJSON_ArrayForEach(e, pairs_a) {
        const char *ia = cJSON_GetObjectItem(e, "a")->valuestring, *ib = cJSON_GetObjectItem(e, "b")->valuestring;
        const char *what = cJSON_GetObjectItem(e, "differs")->valuestring;
        const pl_record *ra = NULL, *rb = NULL;
        for (size_t i = 0; i < pa.n; i++) {
            if (!strcmp(pa.v[i].id, ia)) ra = &pa.v[i];
            if (!strcmp(pa.v[i].id, ib)) rb = &pa.v[i];
        }
        if (!ra || !rb) {
            CHECK(0, "pair %s/%s members exist", ia, ib);
            continue;
        }
        cJSON *sa = cJSON_GetObjectItem(e, "a_span"), *sb = cJSON_GetObjectItem(e, "b_span");
        size_t s0 = (size_t)cJSON_GetArrayItem(sa, 0)->valuedouble, ea = (size_t)cJSON_GetArrayItem(sa, 1)->valuedouble;
        size_t eb = (size_t)cJSON_GetArrayItem(sb, 1)->valuedouble;
        size_t la = strlen(ra->body), lb = strlen(rb->body);
        /* word spans: the words outside them are the same in both texts */
        {
            cJSON *wa = cJSON_GetObjectItem(e, "a_words"), *wb = cJSON_GetObjectItem(e, "b_words");
            size_t a0 = (size_t)cJSON_GetArrayItem(wa, 0)->valuedouble, a1 = (size_t)cJSON_GetArrayItem(wa, 1)->valuedouble;
            size_t b0 = (size_t)cJSON_GetArrayItem(wb, 0)->valuedouble, b1 = (size_t)cJSON_GetArrayItem(wb, 1)->valuedouble;
            size_t na = pl_text_words(ra->body, NULL, NULL), nb = pl_text_words(rb->body, NULL, NULL);
            ok_span &= a0 == b0 && a0 <= a1 && b0 <= b1 && a1 <= na && b1 <= nb && na - a1 == nb - b1;
            if (!strcmp(what, "shortcut")) /* the artifact's words, appended at the end */
                ok_span &= a1 == na && b1 - b0 == pl_text_words(o.text, NULL, NULL) && a0 == a1;
        }
        ok_span &= s0 <= ea && ea <= la && eb <= lb && la - ea == lb - eb && !strncmp(ra->body, rb->body, s0) &&
                   !strcmp(ra->body + ea, rb->body + eb);
        if (!strcmp(what, "cue")) {
            n_cue++;
            /* remove each cue sentence: the rest must be identical */
            const char *ca = cJSON_GetObjectItem(ra->meta, "synth_cue")->valuestring;
            const char *cb = cJSON_GetObjectItem(rb->meta, "synth_cue")->valuestring;
            const char *pa_ = strstr(ra->body, ca), *pb_ = strstr(rb->body, cb);
            ok_cue &= pa_ && pb_ && (pa_ - ra->body) == (pb_ - rb->body) && !strcmp(pa_ + strlen(ca), pb_ + strlen(cb)) &&
                      ra->label == 0 && rb->label == 1 && strcmp(ca, cb) && !strcmp(ra->subject, rb->subject);
        } else if (!strcmp(what, "shortcut")) {
            n_sc++;
            pl_buf want = {0};
            pl_buf_printf(&want, "%s\n\n%s", ra->body, o.text);
            ok_sc &= !strcmp(want.data, rb->body) && ra->label == rb->label && !strcmp(ra->subject, rb->subject);
            ok_sc &= ea == s0 && eb - s0 == strlen(o.text) + 2;
            pl_buf_free(&want);
        }
    }
    CHECK(n_cue == (int)o.n_pairs && n_sc == (int)o.n_pairs, "pairs: %d cue, %d shortcut (want %zu each)", n_cue, n_sc,
          o.n_pairs);
    CHECK(ok_cue, "cue pairs differ only in the cue sentence, labels 0/1");
    CHECK(ok_sc, "shortcut pairs differ only in the footer line");
    CHECK(ok_span, "declared spans are the exact difference");

    /* a custom spec: subject prefix in all sources, rate 0.6 for legit */
    pl_synth_opts q;
    pl_synth_opts_default(&q);
    q.n = 1200;
    q.n_pairs = 6;
    CHECK_OK(pl_synth_parse_shortcut("text=[EXT];where=subject;sources=all;rate=0.6;other=0;label=0", &q));
    pl_records d = {0}, pd = {0};
    cJSON *pairs_d, *man_d;
    CHECK_OK(pl_synth_generate(&q, &d, &pd, &pairs_d, &man_d));
    size_t n0 = 0, h0 = 0, h1 = 0, in_body = 0;
    for (size_t i = 0; i < d.n; i++) {
        int has = !strncmp(d.v[i].subject, "[EXT] ", 6);
        in_body += strstr(d.v[i].body, "[EXT]") != NULL;
        if (d.v[i].label == 0) n0++, h0 += (size_t)has;
        else h1 += (size_t)has;
    }
    CHECK(fabs((double)h0 / n0 - 0.6) <= tol && h1 == 0 && in_body == 0, "subject shortcut: %zu/%zu legit, %zu phish",
          h0, n0, h1);
    cJSON *scj = cJSON_GetObjectItem(man_d, "shortcut");
    CHECK(scj && !strcmp(cJSON_GetObjectItem(scj, "where")->valuestring, "subject") &&
              cJSON_GetArraySize(cJSON_GetObjectItem(scj, "sources")) == pl_synth_n_styles(),
          "manifest records the shortcut spec");
    CHECK(pl_synth_parse_shortcut("rate=2", &q) == PL_ERR_INVALID, "rate 2 rejected");
    CHECK(pl_synth_parse_shortcut("sources=nosuch", &q) == PL_ERR_INVALID, "unknown source rejected");
    CHECK(pl_synth_parse_shortcut("colour=red", &q) == PL_ERR_INVALID, "unknown key rejected");
    CHECK_OK(pl_synth_parse_shortcut("none", &q));
    CHECK(q.shortcut == 0, "none disables the shortcut");

    pl_records *all[] = {&a, &b, &c, &d, &pa, &pb, &pc, &pd};
    for (size_t i = 0; i < 8; i++) pl_records_free(all[i]);
    cJSON *js[] = {pairs_a, man_a, pairs_b, man_b, pairs_c, man_c, pairs_d, man_d};
    for (size_t i = 0; i < 8; i++) cJSON_Delete(js[i]);
}

int main(void) {
    T_BEGIN();
    pl_set_num_threads(2);
    test_minhash_estimate();
    test_lsh_recall();
    test_dedup_counts();
    test_transitive_chain();
    test_log_odds_jsd();
    test_separability();
    test_split();
    test_audit();
    test_synth();
    return T_END();
}
