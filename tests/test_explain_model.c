/* test_explain_model.c — the model-backed value function on a real model
 * (../shared/models/stories260K.gguf): token <-> feature mapping, prefix
 * reuse against independent full-prompt scoring, deletion, efficiency of the
 * explainers end to end, budget presets and the explain CLI. */
#include "harness.h"

#include <sys/wait.h>
#include <unistd.h>

#include "explain/explain.h"

/* Prefix forks and batching change float summation order only. */
#define SCORE_TOL 1e-4
#define EFF_TOL 1e-5

static pl_model *M;
static pl_tokenizer *T;
static pl_prompt P;
static pl_classifier *C;
static char tmpdir[256];

static void make_record(pl_record *r, const char *id, const char *subject, const char *body, const char *url) {
    pl_record_init(r);
    pl_record_set(&r->id, id);
    pl_record_set(&r->subject, subject);
    pl_record_set(&r->from, "alerts@bank.example");
    pl_record_set(&r->body, body);
    if (url) pl_record_add_url(r, url);
}

/* Reference score of an email given as ids: prefix + email + suffix in one
 * fresh forward, no sharing. */
static double ref_score(const int32_t *email, size_t n, int prob) {
    pl_tokens full = {0};
    double s = NAN;
    if (pl_prompt_full(&P, email, n, &full) == PL_OK) pl_classifier_score_full(C, full.ids, full.n, &s);
    pl_tokens_free(&full);
    return prob ? pl_sigmoid(s) : s;
}

static void test_mapping(pl_xmodel *x, const pl_record *r) {
    pl_xemail *e = NULL;
    CHECK_OK(pl_xemail_new(x, r, NULL, &e));
    if (!e) return;
    const pl_tokseq *s = pl_xemail_tokseq(e);
    const pl_features *f = pl_xemail_features(e);
    /* the pieces tile the text in order: concatenating the token spans gives the text */
    pl_buf cat = {0};
    int tiled = 1;
    size_t pos = 0;
    for (size_t i = 0; i < s->n_tokens; i++) {
        if (s->spans[i].start != pos) tiled = 0;
        pl_buf_append(&cat, s->text + s->spans[i].start, s->spans[i].end - s->spans[i].start);
        pos = s->spans[i].end;
    }
    CHECK(tiled && pos == s->text_len, "token spans tile the text (end %zu of %zu)", pos, s->text_len);
    pl_buf want = {0};
    pl_prompt_email_text(r, &want);
    CHECK(!pl_xemail_truncated(e), "test email fits the prompt");
    CHECK(cat.len == want.len && memcmp(cat.data, want.data, want.len) == 0, "pieces round-trip the email text: '%.*s'",
          (int)cat.len, cat.data);
    /* each feature's text is the text of its tokens, and it is a word of the email */
    int ok = 1;
    for (size_t k = 0; k < f->n_features; k++) {
        size_t t0 = f->tok[f->ptr[k]], t1 = f->tok[f->ptr[k + 1] - 1];
        if (s->spans[t0].start > f->span[k].start + 1 || s->spans[t1].end != f->span[k].end) ok = 0;
        if (!strstr(want.data, f->text[k])) ok = 0;
    }
    CHECK(ok && f->n_features >= 8, "features map back to words (%zu features)", f->n_features);
    /* header labels are not features: "Subject:" is never masked */
    int label_free = 1;
    for (size_t k = 0; k < f->n_features; k++)
        if (!strcmp(f->text[k], "Subject:") || !strcmp(f->text[k], "From:")) label_free = 0;
    CHECK(label_free, "header labels stay outside the features");
    pl_buf_free(&cat);
    pl_buf_free(&want);
    pl_xemail_free(e);
}

/* Random masks through the value function (prefix chain + batching) against
 * scoring each masked prompt on its own. */
static void check_reuse(pl_xmodel *x, const pl_record *r, const pl_record *base, const char *what, int prob,
                        double *maxdiff) {
    pl_xemail *e = NULL;
    CHECK_OK(pl_xemail_new(x, r, base, &e));
    if (!e) return;
    const pl_features *f = pl_xemail_features(e);
    size_t Mf = f->n_features, N = 24;
    uint8_t *masks = malloc(N * Mf);
    double *got = malloc(N * sizeof *got);
    pl_rng rng;
    pl_rng_seed(&rng, 7);
    for (size_t i = 0; i < N; i++)
        for (size_t k = 0; k < Mf; k++) masks[i * Mf + k] = i == 0 ? 1 : i == 1 ? 0 : pl_rng_below(&rng, 3) != 0;
    /* a few masks that differ only late in the email */
    for (size_t k = 0; k < Mf; k++) masks[2 * Mf + k] = k + 1 < Mf;
    CHECK_OK(pl_xemail_value(e, masks, N, Mf, got));
    double md = 0;
    int shorter = 1;
    for (size_t i = 0; i < N; i++) {
        pl_tokens ids = {0};
        CHECK_OK(pl_xemail_masked_ids(e, masks + i * Mf, &ids));
        double want = ref_score(ids.ids, ids.n, prob);
        double d = fabs(got[i] - want);
        if (!(d <= md)) md = d;
        if (x && pl_xmodel_get_opts(x)->policy == PL_MASK_DELETE && i == 1 && ids.n >= pl_xemail_tokseq(e)->n_tokens)
            shorter = 0;
        pl_tokens_free(&ids);
    }
    CHECK(md <= SCORE_TOL, "%s: prefix-reuse scores vs full prompts: max |diff| %.3g", what, md);
    if (pl_xmodel_get_opts(x)->policy == PL_MASK_DELETE) CHECK(shorter, "%s: deletion shortens the sequence", what);
    pl_xemail_stats st = pl_xemail_get_stats(e);
    CHECK(st.variants == N && (pl_xmodel_get_opts(x)->max_segments == 1 ? st.tokens_run <= st.tokens_full + pl_xemail_tokseq(e)->n_tokens
                                                                        : st.tokens_run < st.tokens_full), "%s: reuse saves tokens (%zu run vs %zu full)", what,
          st.tokens_run, st.tokens_full);
    printf("%s: prefix reuse max |diff| %.3g over %zu masks, tokens run %zu vs %zu without reuse\n", what, md, N,
           st.tokens_run, st.tokens_full);
    if (md > *maxdiff) *maxdiff = md;
    free(masks);
    free(got);
    pl_xemail_free(e);
}

/* A value function for r under options o (checked); 0 when it could not
 * be made (x freed). */
static int open_email(const pl_record *r, const pl_xmodel_opts *o, pl_xmodel **x, pl_xemail **e) {
    CHECK_OK(pl_xmodel_new(M, T, &P, o, x));
    if (*x) CHECK_OK(pl_xemail_new(*x, r, NULL, e));
    if (*e) return 1;
    pl_xmodel_free(*x);
    *x = NULL;
    return 0;
}

/* Variants that agree beyond their chain breakpoint share their common
 * prefix: the same bits as without sharing, fewer tokens run. The masks
 * mask the same early features and differ only in the last quarter. */
static void test_shared_prefixes(const pl_record *r) {
    pl_xemail_stats st[2];
    double *got[2] = {NULL, NULL};
    size_t N = 12, Mf = 0;
    for (int ns = 0; ns < 2; ns++) {
        pl_xmodel_opts o;
        pl_xmodel_opts_init(&o);
        o.no_shared = ns;
        pl_xmodel *x = NULL;
        pl_xemail *e = NULL;
        if (!open_email(r, &o, &x, &e)) return;
        Mf = pl_xemail_features(e)->n_features;
        uint8_t *masks = malloc(N * Mf);
        pl_rng rng;
        pl_rng_seed(&rng, 11);
        for (size_t i = 0; i < N; i++)
            for (size_t k = 0; k < Mf; k++)
                masks[i * Mf + k] = k < 2 ? 0 : k < Mf * 3 / 4 ? (k % 3 != 0) : pl_rng_below(&rng, 2) != 0;
        got[ns] = malloc(N * sizeof(double));
        CHECK_OK(pl_xemail_value(e, masks, N, Mf, got[ns]));
        st[ns] = pl_xemail_get_stats(e);
        free(masks);
        pl_xemail_free(e);
        pl_xmodel_free(x);
    }
    CHECK(got[0] && got[1] && !memcmp(got[0], got[1], N * sizeof(double)),
          "shared prefixes change the scores (they must be the same bits)");
    CHECK(st[0].shared_groups >= 1 && st[1].shared_groups == 0 && st[0].tokens_run < st[1].tokens_run,
          "shared prefixes: %zu groups, %zu tokens run vs %zu without", st[0].shared_groups, st[0].tokens_run,
          st[1].tokens_run);
    printf("shared prefixes: %zu group(s), %zu tokens run vs %zu without sharing (%zu masks, %zu features)\n",
           st[0].shared_groups, st[0].tokens_run, st[1].tokens_run, N, Mf);
    free(got[0]);
    free(got[1]);
}

/* Caches kept across calls (the pool): masks over several calls give the
 * same bits as without any reuse, with fewer tokens run; a pool of about
 * 150 positions (a few caches, trimmed after every call) too. */
static void test_pool(const pl_record *r) {
    const size_t N = 18, per = 3;
    double *got[3] = {NULL, NULL, NULL};
    pl_xemail_stats st[3];
    size_t Mf = 0;
    for (int c = 0; c < 3; c++) { /* 0: pool, 1: a 150-position pool, 2: no reuse across or within calls */
        pl_xmodel_opts o;
        pl_xmodel_opts_init(&o);
        o.no_shared = c == 2;
        o.pool_kib = c == 1 ? (int)((pl_kv_position_bytes(M) * 150 + 1023) / 1024) : 0; /* ~150 positions */
        pl_xmodel *x = NULL;
        pl_xemail *e = NULL;
        if (!open_email(r, &o, &x, &e)) return;
        Mf = pl_xemail_features(e)->n_features;
        uint8_t *masks = malloc(N * Mf);
        pl_rng rng;
        pl_rng_seed(&rng, 5);
        /* masks like a partition explainer's: a shared early part, then a
         * few switches late in the email */
        for (size_t i = 0; i < N; i++)
            for (size_t k = 0; k < Mf; k++)
                masks[i * Mf + k] = k < Mf / 3 ? (k % 4 != 1) : k < Mf * 2 / 3 ? (i % 2 == 0) : pl_rng_below(&rng, 2) != 0;
        got[c] = malloc(N * sizeof(double));
        for (size_t i = 0; i < N; i += per) CHECK_OK(pl_xemail_value(e, masks + i * Mf, per, Mf, got[c] + i));
        st[c] = pl_xemail_get_stats(e);
        free(masks);
        pl_xemail_free(e);
        pl_xmodel_free(x);
    }
    CHECK(got[0] && got[2] && !memcmp(got[0], got[2], N * sizeof(double)), "kept caches change the scores");
    CHECK(got[1] && got[2] && !memcmp(got[1], got[2], N * sizeof(double)), "a small pool changes the scores");
    CHECK(st[0].tokens_run < st[2].tokens_run && st[0].tokens_run <= st[1].tokens_run,
          "pool: %zu tokens run (small pool %zu) vs %zu without reuse", st[0].tokens_run, st[1].tokens_run,
          st[2].tokens_run);
    printf("kept caches across %zu calls: %zu tokens run (150-position pool %zu) vs %zu without reuse (%zu features)\n",
           N / per, st[0].tokens_run, st[1].tokens_run, st[2].tokens_run, Mf);
    for (int c = 0; c < 3; c++) free(got[c]);
}

/* Lanes (a call's batches side by side, one runner per thread) give one
 * thread's bits: small batches (one email per forward), shared prefixes and
 * kept caches across two calls, 1 and 3 threads. */
static void test_lanes(const pl_record *r) {
    const size_t N = 24;
    double *got[2] = {NULL, NULL};
    pl_xemail_stats st[2];
    for (int c = 0; c < 2; c++) {
        pl_set_num_threads(c ? 3 : 1);
        pl_xmodel_opts o;
        pl_xmodel_opts_init(&o);
        o.max_batch_tokens = 1; /* the minimum: one email per forward */
        pl_xmodel *x = NULL;
        pl_xemail *e = NULL;
        if (!open_email(r, &o, &x, &e)) break;
        const size_t Mf = pl_xemail_features(e)->n_features;
        uint8_t *masks = malloc(N * Mf);
        pl_rng rng;
        pl_rng_seed(&rng, 3);
        for (size_t i = 0; i < N; i++)
            for (size_t k = 0; k < Mf; k++)
                masks[i * Mf + k] = k < 2 ? 0 : k < Mf / 2 ? (k % 3 != 0) : pl_rng_below(&rng, 2) != 0;
        got[c] = malloc(N * sizeof(double));
        CHECK_OK(pl_xemail_value(e, masks, N / 2, Mf, got[c]));
        CHECK_OK(pl_xemail_value(e, masks + N / 2 * Mf, N / 2, Mf, got[c] + N / 2));
        st[c] = pl_xemail_get_stats(e);
        free(masks);
        pl_xemail_free(e);
        pl_xmodel_free(x);
    }
    pl_set_num_threads(1);
    CHECK(got[0] && got[1] && !memcmp(got[0], got[1], N * sizeof(double)), "3 lanes change the scores");
    CHECK(got[1] && st[0].tokens_run == st[1].tokens_run && st[0].shared_groups == st[1].shared_groups &&
              st[1].forwards > 2,
          "lanes: %zu/%zu tokens run, %zu/%zu groups, %zu forwards", st[0].tokens_run, st[1].tokens_run,
          st[0].shared_groups, st[1].shared_groups, st[1].forwards);
    free(got[0]);
    free(got[1]);
}

static void test_reuse(const pl_record *r, const pl_record *base) {
    double md = 0;
    struct {
        const char *name;
        pl_mask_policy pol;
        pl_feat_level lev;
        int segs, prob, batch;
    } cases[] = {
        {"replace/word", PL_MASK_REPLACE, PL_FEAT_WORD, 0, 0, 0},
        {"replace/token/1 segment", PL_MASK_REPLACE, PL_FEAT_TOKEN, 1, 0, 0},
        {"delete/word/12 segments", PL_MASK_DELETE, PL_FEAT_WORD, 12, 0, 0},
        {"baseline/word", PL_MASK_BASELINE, PL_FEAT_WORD, 0, 0, 0},
        {"collapse/sentence/prob", PL_MASK_COLLAPSE, PL_FEAT_SENTENCE, 0, 1, 0},
        {"replace/word/small batches", PL_MASK_REPLACE, PL_FEAT_WORD, 4, 0, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        pl_xmodel_opts o;
        pl_xmodel_opts_init(&o);
        o.policy = cases[c].pol;
        o.level = cases[c].lev;
        o.max_segments = cases[c].segs;
        o.prob = cases[c].prob;
        o.max_batch_tokens = cases[c].batch; /* 1 -> the minimum: one email per forward */
        pl_xmodel *x = NULL;
        CHECK_OK(pl_xmodel_new(M, T, &P, &o, &x));
        if (x) check_reuse(x, r, base, cases[c].name, cases[c].prob, &md);
        pl_xmodel_free(x);
    }
    printf("prefix reuse: max |f_reuse - f_full| = %.3g over all policies\n", md);
}

static void test_efficiency(const pl_record *r) {
    struct {
        pl_xmethod m;
        pl_feat_level lev;
        size_t evals;
    } cases[] = {
        {PL_XM_EXACT, PL_FEAT_FIELD, 0},
        {PL_XM_EXACT, PL_FEAT_SENTENCE, 0},
        {PL_XM_PERMUTATION, PL_FEAT_WORD, 70},
        {PL_XM_PARTITION, PL_FEAT_WORD, 100},
        {PL_XM_PARTITION, PL_FEAT_TOKEN, 80},
        {PL_XM_KERNEL, PL_FEAT_WORD, 100},
    };
    pl_xmodel_opts o;
    pl_xmodel_opts_init(&o);
    pl_xmodel *x = NULL;
    CHECK_OK(pl_xmodel_new(M, T, &P, &o, &x));
    for (size_t c = 0; x && c < sizeof cases / sizeof *cases; c++) {
        pl_xmodel_free(x);
        x = NULL;
        o.level = cases[c].lev;
        CHECK_OK(pl_xmodel_new(M, T, &P, &o, &x));
        if (!x) break;
        pl_xemail *e = NULL;
        CHECK_OK(pl_xemail_new(x, r, NULL, &e));
        if (!e) continue;
        const pl_features *f = pl_xemail_features(e);
        pl_xtree tree = {0};
        pl_xopts xo;
        pl_xopts_init(&xo, cases[c].m);
        xo.max_evals = cases[c].evals;
        xo.seed = 3;
        if (cases[c].m == PL_XM_PARTITION) {
            CHECK_OK(pl_xtree_email(f, &tree));
            xo.tree = &tree;
        }
        pl_xresult res = {0};
        CHECK_OK(pl_explain_run(pl_xemail_value, e, f->n_features, &xo, &res));
        if (res.phi) {
            double sum = 0;
            for (size_t k = 0; k < res.n_features; k++) sum += res.phi[k];
            double err = fabs(sum - (res.fx - res.base_value));
            CHECK(err <= EFF_TOL, "%s/%zu features: efficiency error %.3g", pl_xmethod_name(cases[c].m), f->n_features,
                  err);
            /* the endpoints are the scores of the real prompts */
            pl_tokens all = {0}, none = {0};
            uint8_t *m1 = malloc(f->n_features), *m0 = calloc(f->n_features, 1);
            memset(m1, 1, f->n_features);
            pl_xemail_masked_ids(e, m1, &all);
            pl_xemail_masked_ids(e, m0, &none);
            CHECK_NEAR(res.fx, ref_score(all.ids, all.n, 0), SCORE_TOL);
            CHECK_NEAR(res.base_value, ref_score(none.ids, none.n, 0), SCORE_TOL);
            printf("%-12s %-8s M=%-3zu evals=%-5zu f(x)=%+.5f f(base)=%+.5f sum(phi)=%+.5f efficiency error %.2g\n",
                   pl_xmethod_name(cases[c].m), cases[c].lev == PL_FEAT_FIELD ? "field" : cases[c].lev == PL_FEAT_SENTENCE ? "sentence" : cases[c].lev == PL_FEAT_TOKEN ? "token" : "word",
                   f->n_features, res.evals, res.fx, res.base_value, sum, err);
            free(m1);
            free(m0);
            pl_tokens_free(&all);
            pl_tokens_free(&none);
        }
        pl_xresult_free(&res);
        pl_xtree_free(&tree);
        pl_xemail_free(e);
    }
    pl_xmodel_free(x);
}

static void test_budget(void) {
    size_t b = 0;
    CHECK(pl_xmodel_budget(PL_XM_EXACT, 17, 0, &b) == PL_ERR_RANGE && strstr(pl_errmsg(), "at most 16"),
          "exact refused above 16 features: %s", pl_errmsg());
    CHECK_OK(pl_xmodel_budget(PL_XM_EXACT, 16, 0, &b));
    CHECK(b == 65536, "exact budget %zu", b);
    CHECK_OK(pl_xmodel_budget(PL_XM_PARTITION, 400, 0, &b));
    CHECK(b == 500, "partition default %zu", b);
    CHECK_OK(pl_xmodel_budget(PL_XM_PERMUTATION, 400, 0, &b));
    CHECK(b == 2 * 801, "permutation auto %zu", b);
    CHECK_OK(pl_xmodel_budget(PL_XM_PERMUTATION, 10, 0, &b));
    CHECK(b == 500, "permutation auto small %zu", b);
    CHECK(pl_xmodel_budget(PL_XM_PERMUTATION, 400, 100, &b) == PL_ERR_RANGE, "permutation below 2M+1 refused");
    CHECK_OK(pl_xmodel_budget(PL_XM_KERNEL, 5, 0, &b));
    CHECK(b == 32, "kernel capped at 2^M: %zu", b);
    CHECK_OK(pl_xmodel_budget(PL_XM_KERNEL, 400, 0, &b));
    CHECK(b == 2848, "kernel auto %zu", b);
}

static int run_cli(const char *args) {
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    char cmd[5000];
    snprintf(cmd, sizeof cmd, "%s/phishlens --quiet %s >%s/cli.log 2>&1", build, args, tmpdir);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_cli(const char *model) {
    if (strlen(model) > 1000) return;
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    char bin[300], args[10000], in[300], out[300], gl[300];
    snprintf(bin, sizeof bin, "%s/phishlens", build);
    if (access(bin, X_OK) != 0) {
        SKIP("%s not built: CLI checks skipped", bin);
        return;
    }
    snprintf(in, sizeof in, "%s/in.jsonl", tmpdir);
    snprintf(out, sizeof out, "%s/x.json", tmpdir);
    snprintf(gl, sizeof gl, "%s/g.json", tmpdir);
    FILE *fp = fopen(in, "w");
    if (!fp) return;
    fprintf(fp, "{\"id\":\"a\",\"source\":\"s1\",\"label\":1,\"subject\":\"Verify your account\",\"body\":\"Your account "
                "is locked. Click the link now.\"}\n");
    fprintf(fp, "{\"id\":\"b\",\"source\":\"s2\",\"label\":0,\"subject\":\"Lunch\",\"body\":\"See you at noon. Bring the "
                "notes.\"}\n");
    fclose(fp);
    snprintf(args, sizeof args, "explain -m %s --input %s --method partition --features word --max-evals 60 -o %s --view none",
             model, in, out);
    CHECK(run_cli(args) == 0, "explain partition CLI");
    char *data = NULL;
    size_t len = 0;
    CHECK_OK(pl_read_file(out, &data, &len));
    CHECK(data && strstr(data, "\"examples\"") && strstr(data, "\"efficiency_error\"") && strstr(data, "\"id\":\"b\""),
          "explain JSON has both examples");
    free(data);
    snprintf(args, sizeof args, "explain -m %s --input %s --ids b --method exact --features sentence --mask-policy delete -o %s --view ansi",
             model, in, out);
    CHECK(run_cli(args) == 0, "explain exact CLI");
    snprintf(args, sizeof args, "explain -m %s --input %s --method exact --features token -o %s", model, in, out);
    CHECK(run_cli(args) == 3, "exact over too many features refused (exit 3)");
    snprintf(args, sizeof args, "explain -m %s --input %s --method bogus -o %s", model, in, out);
    CHECK(run_cli(args) == 2, "bad method is a usage error");
    snprintf(args, sizeof args, "explain global %s -o %s --by class", out, gl);
    CHECK(run_cli(args) == 0, "explain global CLI");
    data = NULL;
    CHECK_OK(pl_read_file(gl, &data, &len));
    CHECK(data && strstr(data, "\"slices\""), "global JSON");
    free(data);
    snprintf(args, sizeof args, "explain global %s/missing.json -o %s", tmpdir, gl);
    CHECK(run_cli(args) != 0, "missing result file fails");
}

int main(void) {
    T_BEGIN();
    /* The model is tiny: more threads only add synchronisation on a shared
     * machine. The CLI runs below inherit this through the environment. */
    pl_set_num_threads(1);
    setenv("OMP_NUM_THREADS", "1", 1);
    test_budget();
    const char *shared = pl_test_shared();
    if (!shared) {
        SKIP("../shared absent: model checks skipped");
        return T_END();
    }
    char path[8192];
    snprintf(path, sizeof path, "%s/models/stories260K.gguf", shared);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pl_xmodel_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    CHECK_OK(pl_model_load(path, NULL, &M));
    CHECK_OK(pl_tokenizer_load(path, &T));
    pl_prompt_spec spec = pl_prompt_spec_default();
    spec.max_email_tokens = 120;
    if (M && T) CHECK_OK(pl_prompt_init(&P, T, &spec));
    if (M && T) CHECK_OK(pl_classifier_new(M, &P, 0, &C));
    if (C) {
        pl_record r, base;
        make_record(&r, "e1", "Verify your account",
                    "Dear user, your account was locked. Click http://x.example/login now! Thanks, the team.",
                    "http://x.example/login");
        make_record(&base, "b1", "Lunch", "Hi Tom, lunch at noon? See you.", NULL);
        pl_xmodel_opts o;
        pl_xmodel_opts_init(&o);
        pl_xmodel *x = NULL;
        CHECK_OK(pl_xmodel_new(M, T, &P, &o, &x));
        if (x) test_mapping(x, &r);
        pl_xmodel_free(x);
        test_reuse(&r, &base);
        test_lanes(&r);
        test_shared_prefixes(&r);
        test_pool(&r);
        test_efficiency(&r);
        pl_record_free(&r);
        pl_record_free(&base);
        test_cli(path);
    }
    pl_classifier_free(C);
    pl_prompt_free(&P);
    pl_tokenizer_free(T);
    pl_model_free(M);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmpdir);
    return T_END();
}
