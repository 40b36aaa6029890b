/* test_audit.c — the label-noise audit wired to a learner (src/eval/audit.c):
 * stratified k-fold assignment, flip injection, ground truth, the
 * out-of-fold pipeline on a hand-built scorer (expected flags and
 * precision/recall worked by hand below), and the whole pipeline on the
 * synthetic corpus with 10 % injected flips and a deterministic stand-in
 * learner (multinomial naive Bayes over words), where confident learning
 * must beat chance by a clear margin.
 *
 * The fine-tuned-model version (pl_audit_model_fit on stories260K) is slow
 * in the double-precision trainer: it runs only with PL_AUDIT_MODEL=1 and
 * ../shared (plumbing checks); the measured run is in docs/eval.md.
 */
#include "harness.h"

#include <cJSON.h>
#include <stdint.h>
#include <unistd.h>

#include "eval/eval.h"

/* ---- k-fold ---------------------------------------------------------------- */

static void test_kfold(void) {
    enum { N = 103, K = 5 };
    int label[N], fold[N], fold2[N], fold3[N];
    for (int i = 0; i < N; i++) label[i] = (i % 3 == 0); /* 35 ones, 68 zeros */
    CHECK_OK(pl_kfold_assign(label, N, K, 42, fold));
    int cnt[2][K] = {{0}};
    int bad = 0;
    for (int i = 0; i < N; i++) {
        if (fold[i] < 0 || fold[i] >= K) bad++;
        else cnt[label[i]][fold[i]]++;
    }
    CHECK(bad == 0, "%d fold ids out of range", bad);
    /* 68 zeros over 5 folds: 14,14,14,13,13 ; 35 ones: 7 each */
    for (int c = 0; c < 2; c++) {
        int lo = 1 << 30, hi = 0, sum = 0;
        for (int f = 0; f < K; f++) {
            lo = cnt[c][f] < lo ? cnt[c][f] : lo;
            hi = cnt[c][f] > hi ? cnt[c][f] : hi;
            sum += cnt[c][f];
        }
        CHECK(hi - lo <= 1 && sum == (c ? 35 : 68), "label %d: fold sizes %d..%d, sum %d", c, lo, hi, sum);
    }
    CHECK_OK(pl_kfold_assign(label, N, K, 42, fold2));
    CHECK(memcmp(fold, fold2, sizeof fold) == 0, "same seed, same folds");
    CHECK_OK(pl_kfold_assign(label, N, K, 43, fold3));
    CHECK(memcmp(fold, fold3, sizeof fold) != 0, "another seed, other folds");
    CHECK(pl_kfold_assign(label, N, 1, 42, fold) == PL_ERR_INVALID, "k = 1 refused");
    CHECK(pl_kfold_assign(label, 6, 3, 42, fold) == PL_ERR_INVALID, "2 records of label 1 for 3 folds refused");
    label[7] = -1;
    CHECK(pl_kfold_assign(label, N, K, 42, fold) == PL_ERR_INVALID, "label -1 refused");
}

/* ---- records ------------------------------------------------------------- */

static void make_records(pl_records *rs, size_t n, uint64_t seed) {
    pl_synth_opts so;
    pl_synth_opts_default(&so);
    so.n = n;
    so.n_pairs = 0;
    so.seed = seed;
    pl_records pr = {0};
    cJSON *pairs = NULL, *man = NULL;
    CHECK_OK(pl_synth_generate(&so, rs, &pr, &pairs, &man));
    pl_records_free(&pr);
    cJSON_Delete(pairs);
    cJSON_Delete(man);
}

static void test_inject_and_truth(void) {
    pl_records rs = {0};
    make_records(&rs, 200, 11);
    int *orig = malloc(rs.n * sizeof *orig);
    for (size_t i = 0; i < rs.n; i++) orig[i] = rs.v[i].label;
    size_t nf = 0;
    CHECK_OK(pl_audit_inject_flips(&rs, 0.1, 5, &nf));
    size_t changed = 0, meta_true = 0, meta_ok = 0;
    for (size_t i = 0; i < rs.n; i++) {
        int ch = rs.v[i].label != orig[i];
        changed += ch;
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(rs.v[i].meta, "label_flipped");
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(rs.v[i].meta, "label_original");
        meta_true += cJSON_IsTrue(f);
        if (cJSON_IsBool(f) && cJSON_IsTrue(f) == ch && (!ch || (cJSON_IsNumber(o) && o->valueint == orig[i]))) meta_ok++;
    }
    CHECK(nf == 20 && changed == 20 && meta_true == 20, "flips: reported %zu, labels changed %zu, meta true %zu (want 20)",
          nf, changed, meta_true);
    CHECK(meta_ok == rs.n, "meta.label_flipped/label_original consistent on %zu of %zu", meta_ok, rs.n);

    uint8_t *t1 = malloc(rs.n), *t2 = malloc(rs.n);
    int have = 0;
    CHECK_OK(pl_audit_truth(&rs, NULL, t1, &have));
    size_t agree = 0;
    for (size_t i = 0; i < rs.n; i++) agree += t1[i] == (rs.v[i].label != orig[i]);
    CHECK(have == 1 && agree == rs.n, "truth from meta: have %d, agrees on %zu of %zu", have, agree, rs.n);

    /* the same truth from a file: plain ids and JSONL lines, blank lines */
    char path[] = "/tmp/pl_audit_truthXXXXXX";
    int fd = mkstemp(path);
    FILE *fp = fdopen(fd, "w");
    int k = 0;
    for (size_t i = 0; i < rs.n; i++)
        if (t1[i]) {
            if (k++ % 2) fprintf(fp, "%s\n\n", rs.v[i].id);
            else fprintf(fp, "{\"id\": \"%s\"}\n", rs.v[i].id);
        }
    fclose(fp);
    CHECK_OK(pl_audit_truth(&rs, path, t2, &have));
    CHECK(have == 1 && memcmp(t1, t2, rs.n) == 0, "truth from a file equals truth from meta");
    fp = fopen(path, "a");
    fprintf(fp, "no-such-id\n");
    fclose(fp);
    CHECK(pl_audit_truth(&rs, path, t2, &have) == PL_ERR_FORMAT && strstr(pl_errmsg(), "no-such-id"),
          "unknown id refused: %s", pl_errmsg());
    unlink(path);

    /* a record without the flag while others have it */
    cJSON_DeleteItemFromObjectCaseSensitive(rs.v[3].meta, "label_flipped");
    CHECK(pl_audit_truth(&rs, NULL, t2, &have) == PL_ERR_FORMAT && strstr(pl_errmsg(), rs.v[3].id),
          "missing meta.label_flipped named: %s", pl_errmsg());
    CHECK(pl_audit_inject_flips(&rs, 1.5, 1, NULL) == PL_ERR_INVALID, "rate 1.5 refused");
    free(t1);
    free(t2);
    free(orig);
    pl_records_free(&rs);
}

/* ---- hand-built pipeline ------------------------------------------------ */

/* Ten records. The OOF table p_oof below plays a model that did not see the
 * record; the all-records fit "memorizes" its training labels (p = 0.99 for
 * label 1, 0.01 for label 0), as a large fine-tuned model does in-sample. */
typedef struct {
    const double *p_oof;
    int calls, calls_all, bad_split;
    int seen[10];
} table_learner;

static pl_status table_fit(void *user, const pl_records *rs, const size_t *train, size_t n_train, const size_t *test,
                           size_t n_test, int tag, double *p_out) {
    table_learner *L = user;
    L->calls++;
    if (tag < 0) {
        L->calls_all++;
        if (n_train != rs->n || n_test != rs->n) L->bad_split++;
        for (size_t j = 0; j < n_test; j++) p_out[j] = rs->v[test[j]].label ? 0.99 : 0.01;
        return PL_OK;
    }
    uint8_t in_train[10] = {0};
    for (size_t j = 0; j < n_train; j++) in_train[train[j]] = 1;
    if (n_train + n_test != rs->n) L->bad_split++;
    for (size_t j = 0; j < n_test; j++) {
        if (in_train[test[j]]) L->bad_split++;
        L->seen[test[j]]++;
        p_out[j] = L->p_oof[test[j]];
    }
    return PL_OK;
}

static void test_table_pipeline(void) {
    pl_records rs = {0};
    static const int lab[10] = {1, 1, 1, 1, 1, 0, 0, 0, 0, 0};
    static const double p_oof[10] = {0.95, 0.9, 0.97, 0.2, 0.05, 0.1, 0.02, 0.5, 0.96, 0.93};
    uint8_t truth[10] = {0};
    truth[4] = truth[8] = 1; /* records 4 and 8 carry flipped labels */
    for (int i = 0; i < 10; i++) {
        pl_record r;
        pl_record_init(&r);
        char id[16];
        snprintf(id, sizeof id, "r%d", i);
        pl_record_set(&r.id, id);
        pl_record_set(&r.source, "t");
        r.label = lab[i];
        pl_records_push(&rs, &r);
    }
    table_learner L = {p_oof, 0, 0, 0, {0}};
    pl_audit_opts o = pl_audit_opts_default();
    o.k = 2;
    pl_audit_run_result res;
    CHECK_OK(pl_audit_run(&rs, &o, table_fit, &L, truth, &res));
    int once = 1;
    for (int i = 0; i < 10; i++) once &= L.seen[i] == 1;
    CHECK(L.calls == 3 && L.calls_all == 1 && L.bad_split == 0 && once,
          "fits: %d calls (%d on all), %d bad splits, each record held out once: %d", L.calls, L.calls_all, L.bad_split, once);
    int same = 1;
    for (int i = 0; i < 10; i++) same &= res.p_oof[i] == p_oof[i];
    CHECK(same, "out-of-fold probabilities land on their records");
    /* naive on OOF (T = 0.91): label 1 with p1 < 0.09 -> r4 (0.05); label 0
     * with p1 > 0.91 -> r8 (0.96), r9 (0.93). 3 flagged, 2 true: precision
     * 2/3, recall 2/2. Circular: the memorizing fit never contradicts its
     * labels: 0 flagged, precision undefined, recall 0. */
    CHECK(res.cl.n_naive == 3 && res.cl.flag_naive[4] && res.cl.flag_naive[8] && res.cl.flag_naive[9],
          "naive OOF flags %zu", res.cl.n_naive);
    CHECK_NEAR(res.prf[2].precision, 2.0 / 3.0, 1e-12);
    CHECK_NEAR(res.prf[2].recall, 1.0, 1e-12);
    CHECK(res.n_naive_circ == 0 && isnan(res.prf[3].precision) && res.prf[3].recall == 0.0,
          "naive circular: %zu flagged, precision %g, recall %g", res.n_naive_circ, res.prf[3].precision,
          res.prf[3].recall);
    /* confident learning, thresholds t1 = mean p1 over label 1 =
     * (0.95+0.9+0.97+0.2+0.05)/5 = 0.614, t0 = mean p0 over label 0 =
     * (0.9+0.98+0.5+0.04+0.07)/5 = 0.498. Off-diagonal of the joint:
     * label 1 with p0 >= 0.498 and p0 > p1 (or p1 < t1): r3 (p0 0.8), r4 (0.95);
     * label 0 with p1 >= 0.614 beating p0: r8, r9. r7: p0 0.5 >= t0 and p1
     * 0.5 < t1 -> stays. C = [[3, 2], [2, 3]] -> prune 2 per off-diagonal
     * cell, the largest margins: r4, r3 and r8, r9. */
    CHECK_NEAR(res.cl.thr[1], 0.614, 1e-12);
    CHECK_NEAR(res.cl.thr[0], 0.498, 1e-12);
    CHECK(res.cl.n_prune == 4 && res.cl.flag_prune[3] && res.cl.flag_prune[4] && res.cl.flag_prune[8] &&
              res.cl.flag_prune[9],
          "CL prune flags %zu", res.cl.n_prune);
    CHECK_NEAR(res.prf[0].precision, 0.5, 1e-12);
    CHECK_NEAR(res.prf[0].recall, 1.0, 1e-12);
    cJSON *j = pl_audit_run_to_json(&rs, &res);
    const cJSON *t = cJSON_GetObjectItem(j, "truth");
    const cJSON *nc = cJSON_GetObjectItem(cJSON_GetObjectItem(t, "naive_circular"), "precision");
    const cJSON *fl = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "flagged"), "naive_oof");
    CHECK(cJSON_IsNull(nc) && cJSON_GetArraySize(fl) == 3 &&
              !strcmp(cJSON_GetArrayItem(fl, 0)->valuestring, "r4"),
          "audit.json: undefined precision is null, naive_oof lists r4 first");
    cJSON_Delete(j);
    char path[] = "/tmp/pl_audit_oofXXXXXX";
    close(mkstemp(path));
    CHECK_OK(pl_audit_write_oof(path, &rs, &res));
    pl_preds ps = {0};
    CHECK_OK(pl_preds_read_jsonl(path, &ps)); /* eval's own reader takes it back */
    CHECK(ps.n == 10 && fabs(ps.v[8].p_phish - 0.96) < 1e-12, "oof.jsonl read back: %zu lines", ps.n);
    pl_preds_free(&ps);
    unlink(path);
    pl_audit_run_result_free(&res);

    /* a learner that returns an impossible probability */
    static const double bad[10] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 1.5, 0.5, 0.5};
    table_learner B = {bad, 0, 0, 0, {0}};
    CHECK(pl_audit_run(&rs, &o, table_fit, &B, NULL, &res) == PL_ERR_NUMERIC && strstr(pl_errmsg(), "r7"),
          "p = 1.5 refused naming r7: %s", pl_errmsg());
    rs.v[2].label = -1;
    CHECK(pl_audit_run(&rs, &o, table_fit, &L, NULL, &res) == PL_ERR_INVALID && strstr(pl_errmsg(), "r2"),
          "label -1 refused naming r2: %s", pl_errmsg());
    pl_records_free(&rs);
}

/* ---- stand-in learner: multinomial naive Bayes on hashed words ------------- */

#define NB_BUCKETS 4096
typedef struct {
    double cnt[2][NB_BUCKETS], tot[2];
    int cur;
} nb_state;

static uint64_t word_hash(const char *w, size_t len) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)w[i]) * 1099511628211ull;
    return h;
}
static void nb_count(const char *w, size_t len, void *user) {
    nb_state *s = user;
    s->cnt[s->cur][word_hash(w, len) % NB_BUCKETS] += 1;
    s->tot[s->cur] += 1;
}
typedef struct {
    const nb_state *s;
    double lo;
} nb_score;
static void nb_add(const char *w, size_t len, void *user) {
    nb_score *q = user;
    size_t b = word_hash(w, len) % NB_BUCKETS;
    q->lo += log((q->s->cnt[1][b] + 1) / (q->s->tot[1] + NB_BUCKETS)) -
             log((q->s->cnt[0][b] + 1) / (q->s->tot[0] + NB_BUCKETS));
}

static pl_status nb_fit(void *user, const pl_records *rs, const size_t *train, size_t n_train, const size_t *test,
                        size_t n_test, int tag, double *p_out) {
    (void)user;
    (void)tag;
    nb_state *s = calloc(1, sizeof *s);
    if (!s) return pl_error(PL_ERR_NOMEM, "out of memory");
    double prior[2] = {1, 1};
    for (size_t j = 0; j < n_train; j++) {
        s->cur = rs->v[train[j]].label;
        prior[s->cur] += 1;
        pl_text_words(rs->v[train[j]].body, nb_count, s);
    }
    for (size_t j = 0; j < n_test; j++) {
        nb_score q = {s, log(prior[1] / prior[0])};
        pl_text_words(rs->v[test[j]].body, nb_add, &q);
        p_out[j] = q.lo >= 0 ? 1.0 / (1.0 + exp(-q.lo)) : exp(q.lo) / (1.0 + exp(q.lo));
    }
    free(s);
    return PL_OK;
}

static void test_synthetic_noise(void) {
    pl_records rs = {0};
    make_records(&rs, 600, 21);
    size_t nf = 0;
    CHECK_OK(pl_audit_inject_flips(&rs, 0.10, 77, &nf));
    uint8_t *truth = malloc(rs.n);
    int have = 0;
    CHECK_OK(pl_audit_truth(&rs, NULL, truth, &have));
    pl_audit_opts o = pl_audit_opts_default();
    o.k = 5;
    pl_audit_run_result res;
    CHECK_OK(pl_audit_run(&rs, &o, nb_fit, NULL, truth, &res));
    printf("  synthetic 600, %zu flipped (10 %%), naive Bayes stand-in, k = 5:\n", nf);
    for (int r = 0; r < PL_AUDIT_N_RULES; r++)
        printf("    %-15s flagged %4zu  precision %.3f  recall %.3f\n", pl_audit_rule_name(r), res.prf[r].flagged,
               res.prf[r].precision, res.prf[r].recall);
    /* chance precision is the flip rate, 0.10; confident learning must find
     * flips at well over three times that and recover most of them */
    CHECK(nf == 60 && res.have_truth && res.n_true == 60, "60 known flips");
    CHECK(res.prf[0].precision > 0.4, "CL precision %.3f, not clearly above the 0.10 flip rate", res.prf[0].precision);
    CHECK(res.prf[0].recall > 0.5, "CL recall %.3f", res.prf[0].recall);
    pl_audit_run_result_free(&res);
    free(truth);
    pl_records_free(&rs);
}

/* ---- the fine-tuned model (opt-in: slow) ------------------------------------ */

static void test_model_plumbing(void) {
    const char *sh = pl_test_shared();
    const char *on = getenv("PL_AUDIT_MODEL");
    if (!on || strcmp(on, "1") || !sh) {
        SKIP("fine-tuned model audit (set PL_AUDIT_MODEL=1, needs ../shared)");
        return;
    }
    pl_records rs = {0};
    make_records(&rs, 12, 5);
    for (size_t i = 0; i < rs.n; i++) { /* the cue sentence alone keeps prompts short */
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(rs.v[i].meta, "synth_cue");
        if (cJSON_IsString(c)) pl_record_set(&rs.v[i].body, c->valuestring);
        pl_record_set(&rs.v[i].subject, "");
        pl_record_set(&rs.v[i].from, "");
    }
    char model[8192], dir[] = "/tmp/pl_audit_fitsXXXXXX";
    if (snprintf(model, sizeof model, "%s/models/stories260K.gguf", sh) >= (int)sizeof model) {
        SKIP("shared path too long");
        pl_records_free(&rs);
        return;
    }
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    pl_audit_model am;
    memset(&am, 0, sizeof am);
    am.model = model;
    am.work_dir = dir;
    am.max_len = 128;
    am.tc = pl_tr_config_default();
    am.tc.lora_rank = 2;
    am.lo = pl_loop_opts_default();
    am.lo.opt.lr = 5e-3;
    am.lo.batch = 4;
    am.quiet = 1;
    pl_audit_opts o = pl_audit_opts_default();
    o.k = 2;
    pl_audit_run_result res;
    CHECK_OK(pl_audit_run(&rs, &o, pl_audit_model_fit, &am, NULL, &res));
    int ok = res.p_oof && res.p_circ;
    for (size_t i = 0; ok && i < rs.n; i++) ok = res.p_oof[i] >= 0 && res.p_oof[i] <= 1 && res.p_circ[i] >= 0;
    CHECK(ok, "model audit: probabilities for every record");
    char p[256];
    snprintf(p, sizeof p, "%s/fold-1/adapter.gguf", dir);
    CHECK(access(p, R_OK) == 0, "fold adapter written: %s", p);
    pl_audit_run_result_free(&res);
    pl_records_free(&rs);
}

int main(void) {
    T_BEGIN();
    test_kfold();
    test_inject_and_truth();
    test_table_pipeline();
    test_synthetic_noise();
    test_model_plumbing();
    return T_END();
}
