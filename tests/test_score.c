/* test_score.c — scoring a model over records (src/eval/score.c) and the
 * `phishlens eval -m MODEL ...` command, on stories260K and synthetic
 * records. Batched prefix-shared scores are checked against the classifier's
 * whole-prompt path, the written files are read back with eval's readers,
 * and the command is run end to end, including its bad-input exits. */
#include "harness.h"

#include <cJSON.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eval/eval.h"

#define SCORE_TOL 1e-4
#define MAX_EMAIL 40

static char tmpdir[256];
static const char *model_path, *lora_path;

/* Synthetic records plus three hand-made ones: unlabelled, with URLs and
 * HTML meta, with a non-ASCII body. */
static void make_records(pl_records *rs) {
    pl_synth_opts so;
    pl_synth_opts_default(&so);
    so.n = 18;
    so.n_pairs = 1;
    so.seed = 7;
    pl_records pairs = {0};
    cJSON *pj = NULL, *man = NULL;
    CHECK_OK(pl_synth_generate(&so, rs, &pairs, &pj, &man));
    pl_records_free(&pairs);
    cJSON_Delete(pj);
    cJSON_Delete(man);

    pl_record r;
    pl_record_init(&r);
    pl_record_set(&r.id, "u1");
    pl_record_set(&r.source, "hand");
    r.label = -1;
    pl_record_set(&r.subject, "hello");
    pl_record_set(&r.body, "Once upon a time there was a cat.");
    pl_records_push(rs, &r);

    pl_record_init(&r);
    pl_record_set(&r.id, "h1");
    pl_record_set(&r.source, "hand");
    r.label = 1;
    pl_record_set(&r.subject, "Verify your account");
    pl_record_set(&r.body, "Click <a href=\"http://203.0.113.9/x\">bank.example</a> now");
    pl_record_add_url(&r, "http://203.0.113.9/x");
    r.meta = cJSON_Parse("{\"html\": true, \"link_mismatch\": 2}");
    pl_records_push(rs, &r);

    pl_record_init(&r);
    pl_record_set(&r.id, "h2");
    pl_record_set(&r.source, "hand");
    r.label = 0;
    pl_record_set(&r.body, "h\xc3\xa9llo \xe2\x82\xac");  /* 7 characters, 10 bytes */
    r.meta = cJSON_Parse("{\"has_html\": false}");
    pl_records_push(rs, &r);
}

static void test_slices(void) {
    pl_record r;
    pl_record_init(&r);
    pl_pred p;
    memset(&p, 0, sizeof p);
    pl_record_set(&r.body, "abc");
    pl_pred_slices_from_record(&r, &p);
    CHECK(p.has_url == 0 && p.html == -1 && p.link_mismatch == -1 && p.length == 3,
          "plain record: has_url %d html %d link_mismatch %d length %lld", p.has_url, p.html, p.link_mismatch,
          (long long)p.length);
    r.meta = cJSON_Parse("{\"html\": true}");
    pl_record_add_url(&r, "http://a.example/");
    pl_pred_slices_from_record(&r, &p);
    CHECK(p.has_url == 1 && p.html == 1 && p.link_mismatch == 0, "html record without link_mismatch means 0");
    cJSON_Delete(r.meta);
    r.meta = cJSON_Parse("{\"has_html\": false, \"link_mismatch\": 3}");
    pl_pred_slices_from_record(&r, &p);
    CHECK(p.html == 0 && p.link_mismatch == 1, "has_html false, link_mismatch count 3 -> html %d lm %d", p.html,
          p.link_mismatch);
    pl_record_free(&r);
}

/* Library path: pl_score_records vs pl_classifier_score_full per prompt. */
static void test_library(pl_records *rs, double **lib_scores) {
    pl_model *m = NULL;
    pl_tokenizer *t = NULL;
    CHECK_OK(pl_model_load(model_path, NULL, &m));
    CHECK_OK(pl_tokenizer_load(model_path, &t));
    if (!m || !t) goto out_mt;
    pl_prompt_spec spec = pl_prompt_spec_default();
    spec.max_email_tokens = MAX_EMAIL;
    pl_prompt p;
    CHECK_OK(pl_prompt_init(&p, t, &spec));
    pl_classifier *c = NULL;
    CHECK_OK(pl_classifier_new(m, &p, 128, &c)); /* small batches: several forwards */
    if (!c) goto out_p;
    pl_preds lab = {0}, unl = {0};
    pl_score_stats st;
    CHECK_OK(pl_score_records(c, t, rs, NULL, &lab, &unl, &st));
    CHECK(st.n_records == rs->n && st.n_unlabelled == 1 && lab.n == rs->n - 1 && unl.n == 1,
          "counts: %zu records, %zu unlabelled, %zu labelled preds", st.n_records, st.n_unlabelled, lab.n);
    CHECK(st.n_truncated > 0 && st.n_truncated < rs->n, "some (not all) emails truncated: %zu", st.n_truncated);
    *lib_scores = calloc(rs->n, sizeof(double));
    double maxd = 0;
    size_t li = 0, ok_fields = 0;
    for (size_t i = 0; i < rs->n && li <= lab.n; i++) {
        const pl_record *r = &rs->v[i];
        const pl_pred *pr = r->label < 0 ? &unl.v[0] : &lab.v[li++];
        pl_tokens em = {0}, full = {0};
        CHECK_OK(pl_prompt_email_ids(&p, t, r, &em, NULL));
        CHECK_OK(pl_prompt_full(&p, em.ids, em.n, &full));
        double want = NAN;
        CHECK_OK(pl_classifier_score_full(c, full.ids, full.n, &want));
        double d = fabs(pr->score - want);
        if (!(d <= maxd)) maxd = d;
        (*lib_scores)[i] = pr->score;
        ok_fields += !strcmp(pr->id, r->id) && !strcmp(pr->source, r->source) && pr->label == r->label &&
                     fabs(pr->p_phish - pl_sigmoid(pr->score)) < 1e-15 && pr->pred == (pr->p_phish >= 0.5);
        pl_tokens_free(&em);
        pl_tokens_free(&full);
    }
    CHECK(maxd <= SCORE_TOL, "batched scores vs whole-prompt scores: max |diff| %.3g", maxd);
    CHECK(ok_fields == rs->n, "id/source/label/p_phish/pred of %zu of %zu predictions right", ok_fields, rs->n);
    printf("  %zu records: batched vs whole-prompt max |score diff| %.3g\n", rs->n, maxd);
    int distinct = 0;
    for (size_t i = 1; i < lab.n; i++) distinct += fabs(lab.v[i].score - lab.v[0].score) > 1e-6;
    CHECK(distinct > 0, "scores differ between emails");

    /* The hand-made records' slices. */
    const pl_pred *h1 = &lab.v[lab.n - 2], *h2 = &lab.v[lab.n - 1];
    CHECK(!strcmp(h1->id, "h1") && h1->has_url == 1 && h1->html == 1 && h1->link_mismatch == 1,
          "h1 slices: has_url %d html %d link_mismatch %d", h1->has_url, h1->html, h1->link_mismatch);
    CHECK(!strcmp(h2->id, "h2") && h2->has_url == 0 && h2->html == 0 && h2->length == 7,
          "h2 slices: has_url %d html %d length %lld", h2->has_url, h2->html, (long long)h2->length);

    /* Round trip through eval's reader. */
    char path[512];
    snprintf(path, sizeof path, "%s/lib_preds.jsonl", tmpdir);
    CHECK_OK(pl_preds_write_jsonl(path, &lab));
    pl_preds back = {0};
    CHECK_OK(pl_preds_read_jsonl(path, &back));
    size_t same = 0;
    for (size_t i = 0; i < back.n && i < lab.n; i++)
        same += back.v[i].score == lab.v[i].score && back.v[i].p_phish == lab.v[i].p_phish &&
                back.v[i].label == lab.v[i].label && back.v[i].has_url == lab.v[i].has_url &&
                back.v[i].html == lab.v[i].html && back.v[i].length == lab.v[i].length &&
                back.v[i].link_mismatch == lab.v[i].link_mismatch && !strcmp(back.v[i].id, lab.v[i].id);
    CHECK(back.n == lab.n && same == lab.n, "predictions read back: %zu of %zu identical", same, lab.n);
    pl_preds_free(&back);
    pl_buf b = {0};
    CHECK_OK(pl_pred_unlabelled_to_json(&unl.v[0], &b));
    cJSON *j = cJSON_ParseWithLength(b.data, b.len);
    CHECK(j && cJSON_IsNull(cJSON_GetObjectItem(j, "label")) &&
              cJSON_GetObjectItem(j, "score")->valuedouble == unl.v[0].score,
          "unlabelled line: %.*s", (int)b.len, b.data);
    cJSON_Delete(j);
    pl_buf_free(&b);
    pl_preds_free(&lab);
    pl_preds_free(&unl);
    pl_classifier_free(c);
out_p:
    pl_prompt_free(&p);
out_mt:
    pl_tokenizer_free(t);
    pl_model_free(m);
}

static int run_cli(const char *args) {
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s/phishlens --quiet eval %s >%s/cli.log 2>&1", build, args, tmpdir);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + (WIFSIGNALED(rc) ? WTERMSIG(rc) : 0);
}

static int exists(const char *dir, const char *name) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat sb;
    return stat(p, &sb) == 0;
}

static void test_cli(const pl_records *rs, const double *lib_scores) {
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    char bin[512], recs[512], bad[512], out[512], args[3000], runs[512];
    snprintf(bin, sizeof bin, "%s/phishlens", build);
    if (access(bin, X_OK) != 0) {
        SKIP("%s not built", bin);
        return;
    }
    snprintf(recs, sizeof recs, "%s/recs.jsonl", tmpdir);
    CHECK_OK(pl_records_write_jsonl(recs, rs));
    snprintf(out, sizeof out, "%s/out", tmpdir);
    snprintf(args, sizeof args, "-m %s --test %s -o %s --max-email-tokens %d --batch-tokens 128 --bootstrap 50 --threads 2",
             model_path, recs, out, MAX_EMAIL);
    int rc = run_cli(args);
    CHECK(rc == 0, "eval -m exits 0 (got %d)", rc);
    char path[600];
    snprintf(path, sizeof path, "%s/predictions.jsonl", out);
    pl_preds ps = {0};
    CHECK_OK(pl_preds_read_jsonl(path, &ps));
    CHECK(ps.n == rs->n - 1, "CLI predictions: %zu (want %zu labelled)", ps.n, rs->n - 1);
    double maxd = 0;
    for (size_t i = 0, k = 0; i < rs->n && k < ps.n; i++) {
        if (rs->v[i].label < 0) continue;
        double d = fabs(ps.v[k++].score - lib_scores[i]);
        if (!(d <= maxd)) maxd = d;
    }
    CHECK(maxd <= SCORE_TOL, "CLI scores vs library scores: max |diff| %.3g", maxd);
    CHECK(exists(out, "unlabelled.jsonl"), "unlabelled.jsonl written");

    /* metrics.json: same as eval's report on the predictions read back. */
    snprintf(path, sizeof path, "%s/metrics.json", out);
    char *txt = NULL;
    size_t len = 0;
    CHECK_OK(pl_read_file(path, &txt, &len));
    cJSON *mj = txt ? cJSON_Parse(txt) : NULL;
    const cJSON *fx = cJSON_GetObjectItem(mj, "fixed_threshold");
    pl_metrics want;
    CHECK_OK(pl_eval_metrics(&ps, NULL, ps.n, 0.5, &want));
    CHECK(fx && cJSON_GetObjectItem(fx, "n")->valuedouble == (double)ps.n &&
              fabs(cJSON_GetObjectItem(cJSON_GetObjectItem(fx, "metrics"), "roc_auc")->valuedouble - want.v[PL_M_ROC_AUC]) < 1e-12 &&
              cJSON_GetObjectItem(fx, "ci") != NULL,
          "metrics.json fixed_threshold matches pl_eval_metrics on the predictions");
    CHECK(cJSON_GetObjectItem(mj, "n_unlabelled_excluded") &&
              cJSON_GetObjectItem(mj, "n_unlabelled_excluded")->valuedouble == 1,
          "metrics.json counts the unlabelled record");
    cJSON_Delete(mj);
    free(txt);
    pl_preds_free(&ps);

    snprintf(path, sizeof path, "%s/run.json", out);
    pl_run_info ri;
    pl_run_info_init(&ri);
    CHECK_OK(pl_run_info_read(path, &ri));
    CHECK(!strcmp(ri.model, model_path) && !strcmp(ri.train_set, "none") && ri.n_train_sources == 0 && !ri.adapter[0],
          "zero-shot run.json: model %s train_set %s adapter '%s'", ri.model, ri.train_set, ri.adapter);
    pl_run_info_free(&ri);

    /* With --val: tuned threshold + val predictions. */
    snprintf(out, sizeof out, "%s/outv", tmpdir);
    snprintf(args, sizeof args, "-m %s --test %s --val %s -o %s --max-email-tokens %d --bootstrap 20", model_path, recs,
             recs, out, MAX_EMAIL);
    rc = run_cli(args);
    CHECK(rc == 0 && exists(out, "val_predictions.jsonl") && exists(out, "metrics.json"), "--val run (rc %d)", rc);

    /* An adapter through --run RUNDIR (config.json gives the training sources). */
    snprintf(runs, sizeof runs, "%s/run1", tmpdir);
    mkdir(runs, 0755);
    char ad[600], cfg[600];
    snprintf(ad, sizeof ad, "%s/adapter.gguf", runs);
    snprintf(cfg, sizeof cfg, "%s/config.json", runs);
    char *lb = NULL;
    size_t ll = 0;
    CHECK_OK(pl_read_file(lora_path, &lb, &ll));
    if (lb) CHECK_OK(pl_write_file_atomic(ad, lb, ll));
    free(lb);
    const char *cj = "{\"train_set\": \"bank+parcel\", \"train_sources\": [\"bank\", \"parcel\"]}\n";
    CHECK_OK(pl_write_file_atomic(cfg, cj, strlen(cj)));
    snprintf(out, sizeof out, "%s/outr", tmpdir);
    snprintf(args, sizeof args, "-m %s --run %s --test %s -o %s --max-email-tokens %d --bootstrap 20", model_path, runs,
             recs, out, MAX_EMAIL);
    rc = run_cli(args);
    CHECK(rc == 0, "--run exits 0 (got %d)", rc);
    snprintf(path, sizeof path, "%s/run.json", out);
    pl_run_info_init(&ri);
    CHECK_OK(pl_run_info_read(path, &ri));
    CHECK(!strcmp(ri.train_set, "bank+parcel") && ri.n_train_sources == 2 && pl_run_info_trained_on(&ri, "parcel") &&
              strstr(ri.adapter, "adapter.gguf"),
          "--run run.json: train_set %s, %zu sources, adapter %s", ri.train_set, ri.n_train_sources, ri.adapter);
    pl_run_info_free(&ri);
    snprintf(path, sizeof path, "%s/predictions.jsonl", out);
    pl_preds pa = {0};
    CHECK_OK(pl_preds_read_jsonl(path, &pa));
    double dmax = 0;
    for (size_t i = 0, k = 0; i < rs->n && k < pa.n; i++) {
        if (rs->v[i].label < 0) continue;
        double d = fabs(pa.v[k++].score - lib_scores[i]);
        if (d > dmax) dmax = d;
    }
    CHECK(dmax > 1e-3, "the adapter changes the scores (max change %.3g)", dmax);
    pl_preds_free(&pa);

    /* Bad input: exit codes, and no output left behind. */
    snprintf(out, sizeof out, "%s/bad", tmpdir);
    snprintf(args, sizeof args, "-m %s --test %s/missing.jsonl -o %s", model_path, tmpdir, out);
    rc = run_cli(args);
    CHECK(rc == 4 && !exists(out, "predictions.jsonl"), "missing test file: exit %d (want 4 = I/O)", rc);
    snprintf(bad, sizeof bad, "%s/bad.jsonl", tmpdir);
    const char *badtxt = "{\"id\": \"a\", \"source\": \"s\", \"label\": 1, \"body\": \"x\"}\n{\"id\": 5\n";
    CHECK_OK(pl_write_file_atomic(bad, badtxt, strlen(badtxt)));
    snprintf(args, sizeof args, "-m %s --test %s -o %s", model_path, bad, out);
    rc = run_cli(args);
    CHECK(rc == 3 && !exists(out, "predictions.jsonl"), "malformed records file: exit %d (want 3)", rc);
    const char *shared = pl_test_shared();
    snprintf(args, sizeof args, "-m %s --tokenizer %s/vectors/tokenizer/ggml-vocab-llama3.1-bpe.gguf --test %s -o %s",
             model_path, shared, recs, out);
    rc = run_cli(args);
    CHECK(rc != 0 && rc < 128 && !exists(out, "predictions.jsonl"), "tokenizer of another model: exit %d", rc);
    snprintf(args, sizeof args, "-m %s --run %s/nothing-here --test %s -o %s", model_path, tmpdir, recs, out);
    rc = run_cli(args);
    CHECK(rc != 0 && rc < 128 && !exists(out, "predictions.jsonl"), "--run without an adapter: exit %d", rc);
    snprintf(args, sizeof args, "--test %s -o %s", recs, out);
    rc = run_cli(args);
    CHECK(rc == 2, "missing -m: exit %d (want 2 = usage)", rc);
    snprintf(args, sizeof args, "-m %s/missing.gguf --test %s -o %s", tmpdir, recs, out);
    rc = run_cli(args);
    CHECK(rc != 0 && rc < 128 && !exists(out, "predictions.jsonl"), "missing model: exit %d", rc);
    /* Only unlabelled records: nothing to evaluate. */
    pl_records one = {0};
    pl_record r;
    pl_record_init(&r);
    pl_record_set(&r.id, "x");
    pl_record_set(&r.body, "hi");
    r.label = -1;
    pl_records_push(&one, &r);
    snprintf(bad, sizeof bad, "%s/unl.jsonl", tmpdir);
    CHECK_OK(pl_records_write_jsonl(bad, &one));
    pl_records_free(&one);
    snprintf(args, sizeof args, "-m %s --test %s -o %s --max-email-tokens %d", model_path, bad, out, MAX_EMAIL);
    rc = run_cli(args);
    CHECK(rc != 0 && rc < 128 && !exists(out, "metrics.json"), "only unlabelled records: exit %d", rc);
}

int main(void) {
    T_BEGIN();
    test_slices();
    const char *shared = pl_test_shared();
    if (shared) {
        static char mp[512], lp[512];
        snprintf(mp, sizeof mp, "%s/models/stories260K.gguf", shared);
        snprintf(lp, sizeof lp, "%s/models/stories260K-lora-r4-random.gguf", shared);
        model_path = mp;
        lora_path = lp;
        snprintf(tmpdir, sizeof tmpdir, "/tmp/pl_test_score.XXXXXX");
        if (!mkdtemp(tmpdir)) {
            CHECK(0, "mkdtemp failed");
            return T_END();
        }
        pl_records rs = {0};
        make_records(&rs);
        double *lib = NULL;
        test_library(&rs, &lib);
        if (lib) test_cli(&rs, lib);
        free(lib);
        pl_records_free(&rs);
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) printf("note: could not remove %s\n", tmpdir);
    }
    return T_END();
}
