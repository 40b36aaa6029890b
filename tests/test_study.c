/* test_study.c — the study runner: config validation (errors name the JSON
 * path), the lexical baseline against closed forms, the task DAG and its
 * content-hash cache (resume, invalidation by a changed corpus, --force,
 * dry run), and an end-to-end reduced study on the synthetic corpus whose
 * diagnosis must name the planted shortcut; with ../shared, the LLM stages on
 * stories260K (llama) and a tiny random gemma2 (interp: lens, DLA sums
 * against eval's scores, ablation, attention, patching). PL_TEST_KEEP=1
 * keeps the temporary folder.
 */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/data.h"
#include "eval/eval.h"
#include "harness.h"
#include "model/model.h"
#include "study/study.h"
#include "study/study_internal.h"
#include "train/train.h"

static char tmp_root[512];

static void write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "w");
    if (!f) {
        printf("cannot write %s\n", path);
        exit(1);
    }
    fputs(s, f);
    fclose(f);
}

/* Parse a config from text; returns the status, message in pl_errmsg(). */
static pl_status parse(const char *json, pl_study_config *c) {
    return pl_study_config_parse(json, strlen(json), "dir/s.json", c);
}

#define BASE_CORPORA "\"corpora\": [{\"name\": \"a\", \"path\": \"a.jsonl\"}, {\"name\": \"b\", \"path\": \"/abs/b.jsonl\"}]"
#define BASE_MODELS "\"models\": [{\"name\": \"nb\", \"family\": \"lexical-nb\"}]"

static void expect_error(const char *json, pl_status want, const char *needle) {
    pl_study_config c;
    pl_status st = parse(json, &c);
    CHECK(st == want, "config %s: got %s (%s), want %s", json, pl_status_str(st), pl_errmsg(), pl_status_str(want));
    CHECK(strstr(pl_errmsg(), needle) != NULL, "message '%s' should name '%s'", pl_errmsg(), needle);
    CHECK(strstr(pl_errmsg(), "dir/s.json") != NULL, "message '%s' should name the file", pl_errmsg());
    if (!st) pl_study_config_free(&c);
}

static void test_config(void) {
    pl_study_config c;
    const char *ok = "{" BASE_CORPORA ", " BASE_MODELS
                     ", \"paradigms\": [\"zero-shot\", \"narrow:a\", \"generalist\", \"generalist:a+b\", "
                     "\"leave-one-source-out\", \"chain-of-thought\"], \"seed\": 7, "
                     "\"test\": {\"corpora\": [\"b\"], \"test_frac\": 0.3}}";
    CHECK_OK(parse(ok, &c));
    CHECK(c.n_corpora == 2 && c.n_models == 1 && c.n_paradigms == 6, "counts %zu %zu %zu", c.n_corpora, c.n_models,
          c.n_paradigms);
    CHECK(c.seed == 7, "seed %llu", (unsigned long long)c.seed);
    CHECK(c.n_corpora == 2 && !strcmp(c.corpora[0].path, "dir/a.jsonl"), "relative path resolved: %s", c.corpora[0].path);
    CHECK(c.n_corpora == 2 && !strcmp(c.corpora[1].path, "/abs/b.jsonl"), "absolute path kept: %s", c.corpora[1].path);
    CHECK(c.n_paradigms == 6 && c.paradigms[1].kind == PL_PARA_NARROW && c.paradigms[1].n_sources == 1, "narrow parsed");
    CHECK(c.n_paradigms == 6 && c.paradigms[2].n_sources == 2, "generalist = all corpora (%zu)", c.paradigms[2].n_sources);
    CHECK(c.n_paradigms == 6 && c.paradigms[4].kind == PL_PARA_LOSO, "loso parsed");
    CHECK(c.n_test == 1 && !strcmp(c.test[0], "b"), "test corpora");
    CHECK_NEAR(c.test_frac, 0.3, 0);
    CHECK_NEAR(c.val_frac, 0.1, 0); /* documented default */
    if (c.n_corpora) pl_study_config_free(&c);

    expect_error("{\"models\": []", PL_ERR_FORMAT, "offset");
    expect_error("[1]", PL_ERR_INVALID, "top level");
    expect_error("{" BASE_MODELS ", \"paradigms\": [\"generalist\"]}", PL_ERR_INVALID, "corpora");
    expect_error("{" BASE_CORPORA ", \"models\": [{\"name\": \"m\", \"family\": \"gpt\"}], \"paradigms\": [\"generalist\"]}",
                 PL_ERR_INVALID, "models[0].family");
    expect_error("{" BASE_CORPORA ", \"models\": [{\"name\": \"m\", \"family\": \"llama\"}], \"paradigms\": [\"generalist\"]}",
                 PL_ERR_INVALID, "models[0].path");
    expect_error("{" BASE_CORPORA ", \"models\": [{\"name\": \"m\", \"family\": \"llama\", \"path\": \"x\", \"dtype\": "
                 "\"q3\"}], \"paradigms\": [\"generalist\"]}",
                 PL_ERR_INVALID, "models[0].dtype");
    expect_error("{" BASE_CORPORA ", \"models\": [{\"name\": \"m\", \"family\": \"llama\", \"path\": \"x\", \"compute\": "
                 "\"fp8\"}], \"paradigms\": [\"generalist\"]}",
                 PL_ERR_INVALID, "models[0].compute");
    {
        pl_study_config cb;
        const char *js = "{" BASE_CORPORA ", \"models\": [{\"name\": \"m\", \"family\": \"llama\", \"path\": \"x\", "
                         "\"compute\": \"bf16\"}, {\"name\": \"n\", \"family\": \"llama\", \"path\": \"y\"}], "
                         "\"paradigms\": [\"generalist\"]}";
        memset(&cb, 0, sizeof cb);
        CHECK_OK(pl_study_config_parse(js, strlen(js), "inline.json", &cb));
        CHECK(cb.n_models == 2 && cb.models[0].bf16 == 1 && cb.models[1].bf16 == 0, "compute: bf16 / default not parsed");
        if (cb.n_models) pl_study_config_free(&cb);
    }
    expect_error("{" BASE_CORPORA ", " BASE_MODELS ", \"paradigms\": [\"generalist\", \"narrow:nope\"]}", PL_ERR_INVALID,
                 "paradigms[1]");
    expect_error("{" BASE_CORPORA ", " BASE_MODELS ", \"paradigms\": [\"narrow:a+b\"]}", PL_ERR_INVALID, "paradigms[0]");
    expect_error("{" BASE_CORPORA ", " BASE_MODELS ", \"paradigms\": [\"fancy\"]}", PL_ERR_INVALID, "paradigms[0]");
    expect_error("{" BASE_CORPORA ", " BASE_MODELS ", \"paradigms\": [\"generalist\"], \"hyperparameters\": {\"lrr\": 1}}",
                 PL_ERR_INVALID, "hyperparameters.lrr");
    expect_error("{" BASE_CORPORA ", " BASE_MODELS ", \"paradigms\": [\"generalist\"], \"test\": {\"test_frac\": 2}}",
                 PL_ERR_INVALID, "test.test_frac");
    expect_error("{" BASE_CORPORA ", " BASE_MODELS ", \"paradigms\": [\"generalist\"], \"test\": {\"corpora\": [\"z\"]}}",
                 PL_ERR_INVALID, "test.corpora[0]");
    expect_error("{" BASE_CORPORA ", " BASE_MODELS ", \"paradigms\": [\"generalist\"], \"explain\": {\"method\": \"lime\"}}",
                 PL_ERR_INVALID, "explain.method");
    expect_error("{\"corpora\": [{\"name\": \"a\", \"path\": \"x\"}, {\"name\": \"a\", \"path\": \"y\"}], " BASE_MODELS
                 ", \"paradigms\": [\"generalist\"]}",
                 PL_ERR_INVALID, "corpora[1].name");
    expect_error("{\"corpora\": [{\"name\": \"a/b\", \"path\": \"x\"}], " BASE_MODELS ", \"paradigms\": [\"generalist\"]}",
                 PL_ERR_INVALID, "corpora[0].name");
    expect_error("{\"corpora\": [{\"name\": \"a\", \"path\": \"x\"}], " BASE_MODELS ", \"paradigms\": [\"loso\"]}",
                 PL_ERR_INVALID, "paradigms[0]");
    expect_error("{" BASE_CORPORA ", " BASE_MODELS ", \"paradigms\": [\"generalist\"], \"seed\": -1}", PL_ERR_INVALID, "seed");
    expect_error("{" BASE_CORPORA ", " BASE_MODELS ", \"paradigms\": [\"generalist\"], \"bogus\": 1}", PL_ERR_INVALID, "bogus");
}

/* ---- lexical-nb against the closed form ------------------------------------ */

static void test_nb(void) {
    /* docs: phishing "a b", legitimate "a c"; alpha 1, V = 3 (the three words
     * land in distinct buckets, checked below):
     *   theta_1 = (2/5, 2/5, 1/5), theta_0 = (2/5, 1/5, 2/5) for (a, b, c), prior 0,
     * so score("b") = log 2, score("a") = 0, score("c") = -log 2, unseen words 0. */
    CHECK(pl_nb_bucket("a", 1) != pl_nb_bucket("b", 1) && pl_nb_bucket("a", 1) != pl_nb_bucket("c", 1) &&
              pl_nb_bucket("b", 1) != pl_nb_bucket("c", 1),
          "test words must not collide");
    pl_record r[2];
    pl_record_init(&r[0]);
    pl_record_init(&r[1]);
    pl_record_set(&r[0].body, "a b");
    r[0].label = 1;
    pl_record_set(&r[1].body, "A c");
    r[1].label = 0;
    const pl_record *v[2] = {&r[0], &r[1]};
    pl_nb m;
    CHECK_OK(pl_nb_train(v, 2, 1.0, &m));
    CHECK(m.vocab == 3, "vocab %zu", m.vocab);
    const double tol = 1e-6; /* llr is stored as float */
    CHECK_NEAR(pl_nb_score(&m, "b"), log(2.0), tol);
    CHECK_NEAR(pl_nb_score(&m, "a"), 0.0, tol);
    CHECK_NEAR(pl_nb_score(&m, "C"), -log(2.0), tol);
    CHECK_NEAR(pl_nb_score(&m, "zzz"), 0.0, tol);
    CHECK_NEAR(pl_nb_score(&m, "b b c"), log(2.0), tol);
    char path[600];
    snprintf(path, sizeof path, "%s/m.nb", tmp_root);
    CHECK_OK(pl_nb_save(&m, path));
    pl_nb m2;
    CHECK_OK(pl_nb_load(path, &m2));
    CHECK_NEAR(pl_nb_score(&m2, "b"), log(2.0), tol);
    CHECK_NEAR(m2.prior, 0.0, 0);
    pl_nb_free(&m2);
    write_text(path, "PLNB1\n1 0 2 1 3\n5 nope\n");
    pl_status st = pl_nb_load(path, &m2);
    CHECK(st == PL_ERR_FORMAT && strstr(pl_errmsg(), "line 3"), "bad model line: %s", pl_errmsg());
    /* one class only */
    const pl_record *one[1] = {&r[0]};
    pl_nb m3;
    CHECK(pl_nb_train(one, 1, 1.0, &m3) == PL_ERR_INVALID, "training needs both labels");
    pl_nb_free(&m);
    pl_record_free(&r[0]);
    pl_record_free(&r[1]);

    /* word spans */
    pl_study_words ws;
    const char *text = "Hello, WORLD!\n\xc3\x9c" "ber x2";
    CHECK_OK(pl_study_words_of(text, &ws));
    CHECK(ws.n == 4, "words %zu", ws.n);
    if (ws.n == 4) {
        CHECK(!strcmp(ws.w[1], "world") && ws.start[1] == 7 && ws.end[1] == 12, "span of WORLD: %zu %zu", ws.start[1], ws.end[1]);
        CHECK(ws.start[2] == 14 && ws.end[2] == 19, "span of the UTF-8 word: %zu %zu", ws.start[2], ws.end[2]);
    }
    pl_study_words_free(&ws);
}

/* ---- corpora for the runner tests -------------------------------------------- */

/* Synthetic corpus, one file per style, into dir. */
static void make_corpus_at(const char *dir, size_t n, uint64_t seed, int hint_in_subject) {
    pl_synth_opts o;
    pl_synth_opts_default(&o);
    o.where_subject = hint_in_subject;
    o.n = n;
    o.seed = seed;
    o.n_pairs = 4;
    pl_records rs = {0}, pairs = {0};
    cJSON *pj = NULL, *man = NULL;
    pl_status st = pl_synth_generate(&o, &rs, &pairs, &pj, &man);
    CHECK_OK(st);
    pl_mkdirs(dir);
    for (int s = 0; s < pl_synth_n_styles() && !st; s++) {
        pl_records part = {0};
        for (size_t i = 0; i < rs.n; i++)
            if (!strcmp(rs.v[i].source, pl_synth_style_name(s))) {
                pl_record cp;
                pl_record_copy(&cp, &rs.v[i]);
                pl_records_push(&part, &cp);
            }
        char path[700];
        snprintf(path, sizeof path, "%s/%s.jsonl", dir, pl_synth_style_name(s));
        CHECK_OK(pl_records_write_jsonl(path, &part));
        pl_records_free(&part);
    }
    pl_records_free(&rs);
    pl_records_free(&pairs);
    cJSON_Delete(pj);
    cJSON_Delete(man);
}

static void make_corpus(const char *dir, size_t n, uint64_t seed) { make_corpus_at(dir, n, seed, 0); }

static long task_index(const pl_study_plan *pl, const char *name) {
    for (size_t i = 0; i < pl->n_tasks; i++)
        if (!strcmp(pl->tasks[i].name, name)) return (long)i;
    return -1;
}

static int state_of(const pl_study_plan *pl, const char *name) {
    long i = task_index(pl, name);
    return i < 0 ? -1 : pl->tasks[i].state;
}

/* Run the study once; the plan is returned for inspection (free it). */
static pl_status run_once(const char *cfg_path, const char *out, int force, int dry, pl_study_plan *pl, pl_study_config *c,
                          pl_study_summary *s) {
    pl_status st = pl_study_config_load(cfg_path, c);
    if (st) return st;
    st = pl_study_plan_build(c, out, pl);
    pl_study_opts o;
    pl_study_opts_default(&o);
    o.force_stage = force;
    o.dry_run = dry;
    if (!st) st = pl_study_execute(pl, &o, s);
    return st;
}

static void test_cache(void) {
    char dir[600], cfg[700], out[700];
    snprintf(dir, sizeof dir, "%s/cache", tmp_root);
    make_corpus(dir, 360, 5);
    snprintf(cfg, sizeof cfg, "%s/study.json", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    write_text(cfg, "{\"name\": \"cache\", \"seed\": 3,"
                    " \"corpora\": [{\"name\": \"bank\", \"path\": \"bank.jsonl\"},"
                    "               {\"name\": \"parcel\", \"path\": \"parcel.jsonl\"},"
                    "               {\"name\": \"personal\", \"path\": \"personal.jsonl\"}],"
                    " \"models\": [{\"name\": \"nb\", \"family\": \"lexical-nb\"}],"
                    " \"paradigms\": [\"narrow:bank\", \"generalist:parcel+personal\", \"chain-of-thought\"],"
                    " \"test\": {\"bootstrap\": 50}, \"explain\": {\"examples\": 4, \"method\": \"permutation\"}}");
    pl_study_plan pl;
    pl_study_config c;
    pl_study_summary s;
    /* 1: everything runs (what is available) */
    CHECK_OK(run_once(cfg, out, -1, 0, &pl, &c, &s));
    CHECK(s.n_ran > 0 && s.n_cached == 0 && s.n_failed == 0, "first run: ran %zu cached %zu failed %zu", s.n_ran, s.n_cached,
          s.n_failed);
    CHECK(state_of(&pl, "eval/nb/narrow-bank/parcel") == PL_TASK_RAN, "eval ran");
    CHECK(state_of(&pl, "eval/nb/cot/bank") == PL_TASK_UNAVAILABLE, "chain-of-thought does not apply to lexical-nb");
    CHECK(state_of(&pl, "report") == PL_TASK_RAN, "report ran");
    size_t first_ran = s.n_ran;
    pl_study_plan_free(&pl);
    pl_study_config_free(&c);

    /* 2: nothing changed: everything cached */
    CHECK_OK(run_once(cfg, out, -1, 0, &pl, &c, &s));
    CHECK(s.n_ran == 0 && s.n_cached == first_ran, "second run: ran %zu cached %zu (want 0, %zu)", s.n_ran, s.n_cached, first_ran);
    pl_study_plan_free(&pl);
    pl_study_config_free(&c);

    /* 3: change one corpus file (personal): only what depends on it reruns */
    char path[800];
    snprintf(path, sizeof path, "%s/personal.jsonl", dir);
    pl_records rs = {0};
    CHECK_OK(pl_records_read_jsonl(path, &rs));
    if (rs.n > 10) {
        pl_record_set(&rs.v[3].body, "A changed email body for the cache test.");
        rs.n--; /* and one record fewer */
        CHECK_OK(pl_records_write_jsonl(path, &rs));
        rs.n++;
    }
    pl_records_free(&rs);
    /* the dry run says so before anything runs */
    CHECK_OK(run_once(cfg, out, -1, 1, &pl, &c, &s));
    CHECK(state_of(&pl, "data/personal") == PL_TASK_WOULD_RUN, "dry run: data/personal would run");
    CHECK(state_of(&pl, "data/bank") == PL_TASK_CACHED, "dry run: data/bank cached");
    CHECK(state_of(&pl, "eval/nb/narrow-bank/bank") == PL_TASK_CACHED, "dry run: eval narrow-bank on bank cached");
    pl_study_plan_free(&pl);
    pl_study_config_free(&c);
    CHECK_OK(run_once(cfg, out, -1, 0, &pl, &c, &s));
    static const char *const rerun[] = {"data/personal", "data/profile", "train/nb/generalist-parcel+personal",
                                        "eval/nb/generalist-parcel+personal/bank", "eval/nb/narrow-bank/personal",
                                        "explain/nb/narrow-bank", "diagnose", "report"};
    static const char *const kept[] = {"data/bank", "data/parcel", "train/nb/narrow-bank", "eval/nb/narrow-bank/bank",
                                       "eval/nb/narrow-bank/parcel"};
    for (size_t i = 0; i < sizeof rerun / sizeof *rerun; i++)
        CHECK(state_of(&pl, rerun[i]) == PL_TASK_RAN, "after the change %s should rerun (state %d)", rerun[i],
              state_of(&pl, rerun[i]));
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++)
        CHECK(state_of(&pl, kept[i]) == PL_TASK_CACHED, "after the change %s should stay cached (state %d)", kept[i],
              state_of(&pl, kept[i]));
    pl_study_plan_free(&pl);
    pl_study_config_free(&c);

    /* 4: resume: a task whose state was never committed (killed before the
     * end) reruns; its outputs come out the same, so nothing after it does */
    snprintf(path, sizeof path, "%s/.cache/train~nb~narrow-bank.json", out);
    CHECK(unlink(path) == 0, "remove %.200s", path);
    CHECK_OK(run_once(cfg, out, -1, 0, &pl, &c, &s));
    CHECK(state_of(&pl, "train/nb/narrow-bank") == PL_TASK_RAN, "interrupted task reruns");
    CHECK(state_of(&pl, "eval/nb/narrow-bank/bank") == PL_TASK_CACHED, "same output: downstream stays cached");
    CHECK(s.n_ran == 1, "only the interrupted task ran (%zu)", s.n_ran);
    pl_study_plan_free(&pl);
    pl_study_config_free(&c);
    /* a missing output also reruns its task */
    snprintf(path, sizeof path, "%s/runs/nb/narrow-bank/eval/parcel/predictions.jsonl", out);
    CHECK(unlink(path) == 0, "remove %.200s", path);
    CHECK_OK(run_once(cfg, out, -1, 0, &pl, &c, &s));
    CHECK(state_of(&pl, "eval/nb/narrow-bank/parcel") == PL_TASK_RAN, "missing output reruns its task");
    CHECK(pl_study_file_exists(path), "output restored");
    pl_study_plan_free(&pl);
    pl_study_config_free(&c);

    /* 5: --force eval reruns eval and every later stage, not data/train */
    CHECK_OK(run_once(cfg, out, PL_STAGE_EVAL, 0, &pl, &c, &s));
    CHECK(state_of(&pl, "eval/nb/narrow-bank/bank") == PL_TASK_RAN, "forced eval reruns");
    CHECK(state_of(&pl, "report") == PL_TASK_RAN, "forced: report reruns");
    CHECK(state_of(&pl, "train/nb/narrow-bank") == PL_TASK_CACHED, "forced eval: train stays cached");
    pl_study_plan_free(&pl);
    pl_study_config_free(&c);

    /* 6: a missing corpus file fails its task with a message naming it; the
     * tasks that do not depend on it still run */
    snprintf(path, sizeof path, "%s/parcel.jsonl", dir);
    CHECK(unlink(path) == 0, "remove %.200s", path);
    pl_status st = run_once(cfg, out, -1, 0, &pl, &c, &s);
    CHECK(st != PL_OK && strstr(pl_errmsg(), "parcel.jsonl"), "missing corpus: %s", pl_errmsg());
    CHECK(state_of(&pl, "data/parcel") == PL_TASK_FAILED, "data/parcel failed");
    CHECK(state_of(&pl, "eval/nb/narrow-bank/parcel") == PL_TASK_BLOCKED, "its dependents are blocked");
    CHECK(state_of(&pl, "eval/nb/narrow-bank/bank") == PL_TASK_CACHED, "independent tasks still go on");
    pl_study_plan_free(&pl);
    pl_study_config_free(&c);
}

/* ---- end to end ------------------------------------------------------------- */

static void test_end_to_end(void) {
    char dir[600], cfg[700], out[700];
    snprintf(dir, sizeof dir, "%s/e2e", tmp_root);
    double t0 = pl_time_now();
    make_corpus(dir, 1200, 1);
    snprintf(cfg, sizeof cfg, "%s/study.json", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    write_text(cfg, "{\"name\": \"e2e\", \"seed\": 1,"
                    " \"corpora\": [{\"name\": \"corporate\", \"path\": \"corporate.jsonl\"},"
                    "  {\"name\": \"bank\", \"path\": \"bank.jsonl\"}, {\"name\": \"parcel\", \"path\": \"parcel.jsonl\"},"
                    "  {\"name\": \"newsletter\", \"path\": \"newsletter.jsonl\"},"
                    "  {\"name\": \"personal\", \"path\": \"personal.jsonl\"},"
                    "  {\"name\": \"advancefee\", \"path\": \"advancefee.jsonl\"}],"
                    " \"models\": [{\"name\": \"nb\", \"family\": \"lexical-nb\"}],"
                    " \"paradigms\": [\"narrow:bank\", \"narrow:parcel\", \"generalist\", \"leave-one-source-out\"],"
                    " \"test\": {\"bootstrap\": 200, \"test_frac\": 0.25},"
                    " \"explain\": {\"examples\": 30, \"method\": \"permutation\", \"top_k\": 30},"
                    " \"shortcut_hint\": \"Scanned by MailShield Pro - no threats found.\"}");
    pl_study_config c;
    CHECK_OK(pl_study_config_load(cfg, &c));
    pl_study_opts o;
    pl_study_opts_default(&o);
    pl_study_summary s;
    CHECK_OK(pl_study_run(&c, out, &o, &s));
    CHECK(s.n_failed == 0, "failed tasks: %zu", s.n_failed);
    char path[800];
    snprintf(path, sizeof path, "%s/report.html", out);
    char *html = NULL;
    size_t len = 0;
    CHECK_OK(pl_read_file(path, &html, &len));
    if (html) {
        CHECK(strstr(html, "mailshield") != NULL, "report.html names the planted shortcut word");
        CHECK(strstr(html, "Not run") != NULL, "report.html says what did not run");
        CHECK(strstr(html, "<svg") != NULL, "report.html has charts");
    }
    free(html);
    snprintf(path, sizeof path, "%s/diagnose/diagnosis.json", out);
    char *dj = NULL;
    CHECK_OK(pl_read_file(path, &dj, &len));
    cJSON *d = dj ? cJSON_Parse(dj) : NULL;
    free(dj);
    const cJSON *hint = cJSON_GetObjectItemCaseSensitive(d, "shortcut_hint");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(hint, "found")), "diagnosis recovers the planted shortcut");
    /* narrow models generalize worse than the generalist: in-domain > out-of-domain F1 */
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(d, "runs");
    int seen = 0;
    for (const cJSON *r = runs ? runs->child : NULL; r; r = r->next) {
        const cJSON *tr = cJSON_GetObjectItemCaseSensitive(r, "training");
        if (!cJSON_IsString(tr) || strcmp(tr->valuestring, "narrow-bank")) continue;
        const cJSON *gap = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "gap"), "gap");
        CHECK(cJSON_IsNumber(gap) && gap->valuedouble > 0.02, "narrow-bank has a positive generalization gap");
        /* the planted footer's words in this run's own SHAP ranking, checked against its explain.json */
        const cJSON *hr = cJSON_GetObjectItemCaseSensitive(r, "shortcut_hint_rank");
        const cJSON *rk = cJSON_GetObjectItemCaseSensitive(hr, "rank");
        const cJSON *wd = cJSON_GetObjectItemCaseSensitive(hr, "word");
        CHECK(cJSON_IsNumber(rk) && rk->valueint >= 1 && cJSON_IsString(wd), "narrow-bank: a hint word is ranked");
        if (cJSON_IsNumber(rk) && cJSON_IsString(wd)) {
            char xp[1024];
            snprintf(xp, sizeof xp, "%s/runs/nb/narrow-bank/explain/explain.json", out);
            char *xs = NULL;
            size_t xl = 0;
            CHECK_OK(pl_read_file(xp, &xs, &xl));
            cJSON *xx = xs ? cJSON_Parse(xs) : NULL;
            free(xs);
            const cJSON *all = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(xx, "global"), "slices"), "all");
            const cJSON *at = cJSON_GetArrayItem(all, rk->valueint - 1);
            const cJSON *key = cJSON_GetObjectItemCaseSensitive(at, "key");
            CHECK(cJSON_IsString(key) && !strcmp(key->valuestring, wd->valuestring), "rank %d is '%s' in explain.json",
                  rk->valueint, wd->valuestring);
            /* and no word of the footer ranks higher */
            static const char *const footer[] = {"scanned", "by", "mailshield", "pro", "no", "threats", "found"};
            for (int k = 0; k < rk->valueint - 1; k++) {
                const cJSON *kk = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(all, k), "key");
                for (size_t f = 0; f < sizeof footer / sizeof *footer; f++)
                    CHECK(!cJSON_IsString(kk) || strcmp(kk->valuestring, footer[f]), "footer word '%s' above rank %d",
                          footer[f], rk->valueint);
            }
            cJSON_Delete(xx);
        }
        seen = 1;
    }
    CHECK(seen, "diagnosis has the narrow-bank run");
    /* the summary: every sentence has evidence with a digit */
    const cJSON *sum = cJSON_GetObjectItemCaseSensitive(d, "summary");
    CHECK(cJSON_GetArraySize(sum) > 3, "summary sentences: %d", cJSON_GetArraySize(sum));
    for (const cJSON *e = sum ? sum->child : NULL; e; e = e->next) {
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(e, "evidence");
        CHECK(cJSON_IsString(ev) && strpbrk(ev->valuestring, "0123456789"), "evidence with a number");
    }
    cJSON_Delete(d);
    /* the additive baseline: SHAP equals the per-word log-likelihood ratios */
    snprintf(path, sizeof path, "%s/runs/nb/narrow-bank/explain/explain.json", out);
    char *xj = NULL;
    CHECK_OK(pl_read_file(path, &xj, &len));
    cJSON *x = xj ? cJSON_Parse(xj) : NULL;
    free(xj);
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(x, "additivity_error");
    CHECK(cJSON_IsNumber(add) && add->valuedouble < 1e-9, "permutation SHAP of an additive game is exact (%g)",
          cJSON_IsNumber(add) ? add->valuedouble : -1.0);
    cJSON_Delete(x);
    pl_study_config_free(&c);
    printf("end-to-end reduced study: %.1f s\n", pl_time_now() - t0);
}



/* ---- the interp stage's output on an LLM ------------------------------------ */

static cJSON *read_json_file(const char *path) {
    char *txt = NULL;
    size_t len = 0;
    CHECK_OK(pl_read_file(path, &txt, &len));
    cJSON *j = txt ? cJSON_Parse(txt) : NULL;
    free(txt);
    CHECK(j != NULL, "%s parses", path);
    return j;
}

static const cJSON *jget(const cJSON *o, const char *k) { return o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL; }

/* every entry of an array is a finite number (n_min entries at least) */
static int all_finite(const cJSON *a, int n_min) {
    int n = 0;
    for (const cJSON *e = a ? a->child : NULL; e; e = e->next, n++)
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble)) return 0;
    return n >= n_min;
}

/* interp.json of one run: lens, DLA (with the sum identity against the eval
 * stage's own scores), ablation, attention and patching sections. n_layer,
 * n_head: the model's. preds: the eval predictions of the same run on the
 * test corpora (the reference scores). */
static void check_interp_json(const char *path, int n_layer, int n_head, const pl_preds *preds, int softcap) {
    cJSON *j = read_json_file(path);
    /* logit lens: resid_pre/mid/post per layer, finite class means, AUC in [0, 1] */
    const cJSON *lens = jget(j, "lens");
    CHECK(cJSON_GetArraySize(jget(lens, "rows")) == 3 * n_layer, "lens rows: %d", cJSON_GetArraySize(jget(lens, "rows")));
    CHECK(all_finite(jget(lens, "mean_phishing"), 3 * n_layer) && all_finite(jget(lens, "mean_legitimate"), 3 * n_layer),
          "lens class means finite");
    for (const cJSON *a = jget(lens, "auc") ? jget(lens, "auc")->child : NULL; a; a = a->next)
        CHECK(cJSON_IsNumber(a) && a->valuedouble >= 0 && a->valuedouble <= 1, "lens AUC in [0, 1]");
    CHECK(cJSON_IsNumber(jget(lens, "lens_layer")) && jget(lens, "lens_layer")->valuedouble >= 0, "lens layer");
    /* DLA: embed + every head + every MLP + rest */
    const cJSON *dla = jget(j, "dla");
    int n_comp = 1 + n_layer * n_head + n_layer + 1;
    CHECK(cJSON_GetArraySize(jget(dla, "components")) == n_comp, "DLA components: %d", cJSON_GetArraySize(jget(dla, "components")));
    const cJSON *mp = jget(dla, "mean_phishing"), *ml = jget(dla, "mean_legitimate");
    CHECK(all_finite(mp, n_comp) && all_finite(ml, n_comp) && all_finite(jget(dla, "difference"), n_comp), "DLA means finite");
    /* f32 weights: embed + heads + MLPs rebuild the final residual, so "rest" is rounding only */
    const cJSON *rp = cJSON_GetArrayItem(mp, n_comp - 1), *rl = cJSON_GetArrayItem(ml, n_comp - 1);
    CHECK(rp && rl && fabs(rp->valuedouble) < 1e-4 && fabs(rl->valuedouble) < 1e-4, "DLA rest %g %g",
          rp ? rp->valuedouble : -1.0, rl ? rl->valuedouble : -1.0);
    CHECK(cJSON_GetArraySize(jget(dla, "top_heads")) > 0 && cJSON_GetArraySize(jget(dla, "top_mlps")) > 0, "DLA top lists");
    /* the sum identity: each email's contributions add up to the score eval
     * computed for it (without hooks), and the per-class means of the
     * components add up to the per-class mean score */
    const cJSON *sc = jget(dla, "sum_check");
    const cJSON *ids = jget(sc, "ids"), *sums = jget(sc, "dla_sum");
    int n = cJSON_GetArraySize(ids), matched = 0;
    double tot[2] = {0, 0};
    int cnt[2] = {0, 0};
    CHECK(n > 0 && cJSON_GetArraySize(sums) == n, "sum check entries: %d", n);
    const cJSON *er = jget(sc, "max_abs_error_vs_readout");
    CHECK(cJSON_IsNumber(er) && er->valuedouble < 1e-4, "DLA sum vs the linear readout: %g", cJSON_IsNumber(er) ? er->valuedouble : -1.0);
    if (softcap) {
        /* the score is not linear in the residual: no per-email comparison */
        CHECK(cJSON_IsNull(jget(sc, "max_abs_error_vs_score")), "softcap: no comparison with the score");
        n = 0;
        matched = 0;
    }
    for (int i = 0; i < n; i++) {
        const char *id = cJSON_GetArrayItem(ids, i)->valuestring;
        double v = cJSON_GetArrayItem(sums, i)->valuedouble;
        for (size_t q = 0; q < preds->n; q++)
            if (!strcmp(preds->v[q].id, id)) {
                CHECK(fabs(v - preds->v[q].score) < 1e-4 * (1 + fabs(preds->v[q].score)), "DLA sum %.6f vs eval score %.6f (%s)", v,
                      preds->v[q].score, id);
                tot[preds->v[q].label == 1] += preds->v[q].score;
                cnt[preds->v[q].label == 1]++;
                matched++;
                break;
            }
    }
    CHECK(matched == n, "every DLA email has an eval score: %d of %d", matched, n);
    double smp = 0, sml = 0;
    for (const cJSON *a = mp ? mp->child : NULL, *b = ml ? ml->child : NULL; a && b; a = a->next, b = b->next)
        smp += a->valuedouble, sml += b->valuedouble;
    if (!softcap) {
        CHECK(cnt[1] > 0 && fabs(smp - tot[1] / cnt[1]) < 1e-4, "sum of mean phishing contributions %.6f vs mean score %.6f",
              smp, cnt[1] ? tot[1] / cnt[1] : 0.0);
        CHECK(cnt[0] > 0 && fabs(sml - tot[0] / cnt[0]) < 1e-4, "sum of mean legitimate contributions %.6f vs mean score %.6f",
              sml, cnt[0] ? tot[0] / cnt[0] : 0.0);
    }
    /* ablation: top sets and seeded controls with finite effects */
    const cJSON *ab = jget(j, "ablation");
    CHECK(cJSON_IsNumber(jget(ab, "n")) && jget(ab, "n")->valuedouble >= 10, "ablation n");
    static const char *kinds[2] = {"heads", "mlps"};
    for (int q = 0; q < 2; q++) {
        const cJSON *a = jget(ab, kinds[q]);
        CHECK(cJSON_IsBool(jget(a, "confirmed")), "ablation %s: confirmed is a boolean", kinds[q]);
        CHECK(cJSON_IsNumber(jget(a, "delta_f1")) && isfinite(jget(a, "delta_f1")->valuedouble), "ablation %s dF1", kinds[q]);
        CHECK(cJSON_GetArraySize(jget(a, "controls")) == 3, "ablation %s controls", kinds[q]);
        const cJSON *top = jget(jget(a, "top"), "components");
        CHECK(cJSON_GetArraySize(top) >= 1, "ablation %s top set", kinds[q]);
        const cJSON *ctl = cJSON_GetArrayItem(jget(a, "controls"), 0);
        CHECK(cJSON_GetArraySize(jget(ctl, "components")) == cJSON_GetArraySize(top), "control as large as the top set");
        for (const cJSON *c = jget(ctl, "components") ? jget(ctl, "components")->child : NULL; c; c = c->next)
            for (const cJSON *t = top ? top->child : NULL; t; t = t->next)
                CHECK(strcmp(c->valuestring, t->valuestring), "control %s is not a top component", c->valuestring);
    }
    /* attention: softmax rows over the keys sum to 1, one weight per token */
    const cJSON *ex = jget(jget(j, "attention"), "examples");
    CHECK(cJSON_GetArraySize(ex) == 2, "attention examples: %d", cJSON_GetArraySize(ex));
    for (const cJSON *e = ex ? ex->child : NULL; e; e = e->next) {
        int nt = cJSON_GetArraySize(jget(e, "tokens"));
        CHECK(nt > 0 && cJSON_GetArraySize(jget(e, "heads")) > 0, "attention example shape");
        for (const cJSON *h = jget(e, "heads") ? jget(e, "heads")->child : NULL; h; h = h->next) {
            const cJSON *w = jget(h, "weights");
            double sum = 0;
            CHECK(cJSON_GetArraySize(w) == nt && all_finite(w, nt), "attention weights per token");
            for (const cJSON *v = w ? w->child : NULL; v; v = v->next) {
                CHECK(v->valuedouble >= 0 && v->valuedouble <= 1, "attention weight in [0, 1]");
                sum += v->valuedouble;
            }
            CHECK(fabs(sum - 1) < 1e-4, "attention row sums to %.6f", sum);
        }
    }
    /* patching: pairs built from the planted subject, grid layers x positions */
    const cJSON *pt = jget(j, "patching");
    CHECK(cJSON_IsString(jget(pt, "status")) && !strcmp(jget(pt, "status")->valuestring, "ran"), "patching ran");
    CHECK(cJSON_IsNumber(jget(pt, "n_pairs")) && jget(pt, "n_pairs")->valuedouble >= 1, "patching pairs");
    const cJSON *pr = cJSON_GetArrayItem(jget(pt, "pairs"), 0);
    CHECK(pr && isfinite(jget(pr, "clean")->valuedouble) && isfinite(jget(pr, "corrupted")->valuedouble) &&
              jget(pr, "hint_end")->valuedouble > jget(pr, "hint_start")->valuedouble,
          "patching pair fields");
    CHECK(cJSON_GetArraySize(jget(jget(pt, "example"), "rows")) == n_layer, "patching example grid rows");
    cJSON_Delete(j);
}

/* ---- zero-shot LLM stages on a real tiny model (../shared) ------------------ */

static void test_llm(void) {
    const char *shared = pl_test_shared();
    if (!shared) {
        SKIP("zero-shot LLM study: ../shared not found");
        return;
    }
    char model[6200], dir[600], cfg[700], out[700];
    char cwd[2048] = "";
    if (shared[0] != '/' && !getcwd(cwd, sizeof cwd)) cwd[0] = 0;
    /* absolute: the config's relative paths start at its own folder */
    snprintf(model, sizeof model, "%s%s%s/models/stories260K.gguf", cwd, cwd[0] ? "/" : "", shared);
    snprintf(dir, sizeof dir, "%s/llm", tmp_root);
    make_corpus_at(dir, 240, 2, 1); /* the planted text in the subject: within max_tokens */
    snprintf(cfg, sizeof cfg, "%s/study.json", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    char json[8000];
    snprintf(json, sizeof json,
             "{\"name\": \"llm\", \"seed\": 2,"
             " \"corpora\": [{\"name\": \"bank\", \"path\": \"bank.jsonl\"},"
             "               {\"name\": \"personal\", \"path\": \"personal.jsonl\"}],"
             " \"models\": [{\"name\": \"stories\", \"family\": \"llama\", \"path\": \"%s\"},"
             "              {\"name\": \"nb\", \"family\": \"lexical-nb\"}],"
             " \"paradigms\": [\"zero-shot\", \"narrow:bank\"],"
             " \"hyperparameters\": {\"max_tokens\": 64, \"epochs\": 1, \"batch\": 8, \"lr\": 1e-3},"
             " \"test\": {\"test_frac\": 0.3, \"bootstrap\": 50}, \"interp\": {\"probe_examples\": 24, \"patch_pairs\": 2},"
             " \"explain\": {\"examples\": 2, \"method\": \"partition\", \"max_evals\": 60},"
             " \"shortcut_hint\": \"Scanned by MailShield Pro - no threats found.\"}",
             model);
    write_text(cfg, json);
    int prev_threads = pl_num_threads();
    pl_set_num_threads(1); /* a 260K-parameter model: threads only add wake-up latency */
    pl_study_plan pl;
    pl_study_config c;
    pl_study_summary s;
    CHECK_OK(run_once(cfg, out, -1, 0, &pl, &c, &s));
    CHECK(state_of(&pl, "eval/stories/zero-shot/bank") == PL_TASK_RAN, "zero-shot LLM eval ran");
    CHECK(state_of(&pl, "interp/stories/zero-shot") == PL_TASK_RAN, "zero-shot LLM probe curve ran");
    CHECK(state_of(&pl, "train/stories/narrow-bank") == PL_TASK_RAN, "LLM LoRA fine-tuning ran");
    CHECK(state_of(&pl, "eval/stories/narrow-bank/personal") == PL_TASK_RAN, "the fine-tuned LLM was evaluated");
    CHECK(state_of(&pl, "explain/stories/zero-shot") == PL_TASK_RAN, "LLM SHAP ran");
    CHECK(state_of(&pl, "train/nb/zero-shot") == -1 && state_of(&pl, "eval/nb/zero-shot/bank") == PL_TASK_UNAVAILABLE,
          "zero-shot does not apply to lexical-nb");
    pl_study_plan_free(&pl);
    pl_study_config_free(&c);
    /* the adapter exists, and the fine-tuned run knows its training source */
    char path[800];
    snprintf(path, sizeof path, "%s/runs/stories/narrow-bank/train/adapter.gguf", out);
    CHECK(pl_study_file_exists(path), "adapter written");
    snprintf(path, sizeof path, "%s/runs/stories/narrow-bank/eval/bank/run.json", out);
    pl_run_info ri;
    pl_run_info_init(&ri);
    CHECK_OK(pl_run_info_read(path, &ri));
    CHECK(pl_run_info_trained_on(&ri, "bank") && !pl_run_info_trained_on(&ri, "personal"), "run.json train_sources");
    CHECK(strstr(ri.adapter, "adapter.gguf") != NULL, "run.json names the adapter: %s", ri.adapter);
    pl_run_info_free(&ri);
    /* predictions: one per test email, finite scores, p = sigmoid(score) */
    snprintf(path, sizeof path, "%s/runs/stories/zero-shot/eval/bank/predictions.jsonl", out);
    pl_preds ps = {0};
    CHECK_OK(pl_preds_read_jsonl(path, &ps));
    CHECK(ps.n > 0, "predictions: %zu", ps.n);
    for (size_t i = 0; i < ps.n; i++)
        CHECK(isfinite(ps.v[i].score) && fabs(ps.v[i].p_phish - 1.0 / (1.0 + exp(-ps.v[i].score))) < 1e-12,
              "prediction %zu", i);
    uint64_t h1 = 0, h2 = 0;
    CHECK_OK(pl_hash_file(path, &h1));
    pl_preds_free(&ps);
    /* deterministic: a forced rerun writes the same bytes */
    CHECK_OK(run_once(cfg, out, PL_STAGE_EVAL, 0, &pl, &c, &s));
    CHECK_OK(pl_hash_file(path, &h2));
    CHECK(h1 == h2, "zero-shot scores are deterministic");
    pl_study_plan_free(&pl);
    pl_study_config_free(&c);
    /* the probe curve: one point per layer (stories260K has 5), accuracies in [0, 1] */
    snprintf(path, sizeof path, "%s/runs/stories/zero-shot/interp/interp.json", out);
    char *txt = NULL;
    size_t len = 0;
    CHECK_OK(pl_read_file(path, &txt, &len));
    cJSON *j = txt ? cJSON_Parse(txt) : NULL;
    free(txt);
    const cJSON *acc = cJSON_GetObjectItemCaseSensitive(j, "cv_accuracy");
    CHECK(cJSON_GetArraySize(acc) == 5, "probe curve points: %d", cJSON_GetArraySize(acc));
    for (const cJSON *a = acc ? acc->child : NULL; a; a = a->next)
        CHECK(cJSON_IsNumber(a) && a->valuedouble >= 0 && a->valuedouble <= 1, "probe accuracy in [0, 1]");
    cJSON_Delete(j);
    /* SHAP over the LLM: efficiency holds (sum of phi = f(all) - f(none)) */
    snprintf(path, sizeof path, "%s/runs/stories/zero-shot/explain/explain.json", out);
    CHECK_OK(pl_read_file(path, &txt, &len));
    j = txt ? cJSON_Parse(txt) : NULL;
    free(txt);
    const cJSON *ne = cJSON_GetObjectItemCaseSensitive(j, "n_explained");
    const cJSON *eff = cJSON_GetObjectItemCaseSensitive(j, "max_efficiency_error");
    CHECK(cJSON_IsNumber(ne) && ne->valuedouble == 2, "LLM emails explained");
    CHECK(cJSON_IsNumber(eff) && eff->valuedouble < 1e-9, "LLM SHAP efficiency error %g",
          cJSON_IsNumber(eff) ? eff->valuedouble : -1.0);
    cJSON_Delete(j);
    /* lens, DLA, ablation, attention and patching of both LLM runs; the DLA
     * sums are checked against eval's scores of the same emails */
    static const char *trs[2] = {"zero-shot", "narrow-bank"};
    for (int q = 0; q < 2; q++) {
        pl_preds ev = {0};
        for (int k = 0; k < 2; k++) {
            snprintf(path, sizeof path, "%s/runs/stories/%s/eval/%s/predictions.jsonl", out, trs[q], k ? "personal" : "bank");
            CHECK_OK(pl_preds_read_jsonl(path, &ev));
        }
        snprintf(path, sizeof path, "%s/runs/stories/%s/interp/interp.json", out, trs[q]);
        check_interp_json(path, 5, 8, &ev, 0);
        pl_preds_free(&ev);
    }
    /* the diagnosis names the components of the LLM rows, with the ablation check */
    snprintf(path, sizeof path, "%s/diagnose/diagnosis.json", out);
    j = read_json_file(path);
    int llm_rows = 0;
    for (const cJSON *r = jget(j, "runs") ? jget(j, "runs")->child : NULL; r; r = r->next) {
        const cJSON *m = jget(r, "model"), *cp = jget(r, "components");
        if (!cJSON_IsString(m) || strcmp(m->valuestring, "stories")) continue;
        llm_rows++;
        CHECK(cJSON_IsString(jget(cp, "status")) && !strcmp(jget(cp, "status")->valuestring, "ran"), "components ran");
        CHECK(cJSON_GetArraySize(jget(cp, "top_heads")) > 0 && cJSON_GetArraySize(jget(cp, "top_mlps")) > 0, "top components");
        const cJSON *ah = jget(jget(cp, "ablation"), "heads");
        CHECK(cJSON_IsBool(jget(ah, "confirmed")) && cJSON_IsNumber(jget(ah, "delta_f1")) &&
                  cJSON_IsNumber(jget(ah, "control_min_delta_f1")) && cJSON_IsNumber(jget(jget(cp, "ablation"), "n")),
              "components: ablation dF1, control, confirmed and n");
        CHECK(cJSON_IsBool(jget(cp, "confirmed")), "components: confirmed");
    }
    CHECK(llm_rows == 2, "diagnosis LLM rows: %d", llm_rows);
    int comp_sentences = 0;
    for (const cJSON *e = jget(j, "summary") ? jget(j, "summary")->child : NULL; e; e = e->next)
        comp_sentences += strstr(jget(e, "text")->valuestring, "direct logit attribution") != NULL &&
                          strpbrk(jget(e, "evidence")->valuestring, "0123456789") != NULL;
    CHECK(comp_sentences >= 4, "summary sentences on the components: %d", comp_sentences);
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/report.html", out);
    CHECK_OK(pl_read_file(path, &txt, &len));
    CHECK(txt && strstr(txt, "fig-probe"), "report has the probe curve");
    CHECK(txt && strstr(txt, "fig-lens-") && strstr(txt, "fig-dla-") && strstr(txt, "fig-attn-") &&
              strstr(txt, "fig-patch-ex-") && strstr(txt, "tab-ablation-"),
          "report has the lens curves, DLA bars, attention maps, patching heatmap and ablation table");
    free(txt);
    pl_set_num_threads(prev_threads);
}


/* ---- the interp stage on gemma2 (post-attention norm, final softcap) -------- */

static void test_gemma2_interp(void) {
    const char *shared = pl_test_shared();
    if (!shared) {
        SKIP("gemma2 interp study: ../shared not found");
        return;
    }
    char tok[2200], model[700], dir[600], cfg[700], out[700], path[800];
    snprintf(tok, sizeof tok, "%s/models/stories260K.gguf", shared);
    snprintf(dir, sizeof dir, "%s/g2", tmp_root);
    make_corpus_at(dir, 240, 3, 1);
    /* a tiny random gemma2 in f32 (so the DLA "rest" is rounding only) */
    snprintf(model, sizeof model, "%s/g2.gguf", dir);
    pl_model_init_opts mo = pl_model_init_defaults(PL_ARCH_GEMMA2);
    mo.tokenizer = tok;
    mo.n_layer = 2;
    mo.d_model = 32;
    mo.n_head = 4;
    mo.n_kv_head = 2;
    mo.head_dim = 8;
    mo.n_ff = 64;
    mo.n_ctx = 512;
    mo.window = 16; /* the sliding window of even layers is shorter than the prompts */
    mo.dtype = PL_GGML_F32;
    mo.seed = 9;
    CHECK_OK(pl_model_init_write(&mo, model));
    snprintf(cfg, sizeof cfg, "%s/study.json", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    char json[4000];
    snprintf(json, sizeof json,
             "{\"name\": \"g2\", \"seed\": 4,"
             " \"corpora\": [{\"name\": \"bank\", \"path\": \"bank.jsonl\"},"
             "               {\"name\": \"personal\", \"path\": \"personal.jsonl\"}],"
             " \"models\": [{\"name\": \"g2\", \"family\": \"gemma2\", \"path\": \"%s\"}],"
             " \"paradigms\": [\"zero-shot\"], \"hyperparameters\": {\"max_tokens\": 64},"
             " \"test\": {\"test_frac\": 0.3, \"bootstrap\": 20}, \"interp\": {\"probe_examples\": 24, \"patch_pairs\": 1},"
             " \"explain\": {\"examples\": 0}, \"shortcut_hint\": \"Scanned by MailShield Pro - no threats found.\"}",
             model);
    write_text(cfg, json);
    int prev_threads = pl_num_threads();
    pl_set_num_threads(1);
    pl_study_plan pl;
    pl_study_config c;
    pl_study_summary s;
    CHECK_OK(run_once(cfg, out, -1, 0, &pl, &c, &s));
    CHECK(state_of(&pl, "interp/g2/zero-shot") == PL_TASK_RAN, "gemma2 interp ran");
    pl_study_plan_free(&pl);
    pl_study_config_free(&c);
    snprintf(path, sizeof path, "%s/runs/g2/zero-shot/interp/interp.json", out);
    check_interp_json(path, 2, 4, NULL, 1);
    snprintf(path, sizeof path, "%s/diagnose/diagnosis.json", out);
    cJSON *j = read_json_file(path);
    const cJSON *r0 = cJSON_GetArrayItem(jget(j, "runs"), 0);
    CHECK(cJSON_IsString(jget(jget(r0, "components"), "status")) &&
              !strcmp(jget(jget(r0, "components"), "status")->valuestring, "ran"),
          "gemma2 components ran");
    cJSON_Delete(j);
    pl_set_num_threads(prev_threads);
}

/* The study configs shipped in studies/ parse and hold what the README says. */
static void test_shipped_configs(void) {
    static const char *const files[] = {"studies/demo.json", "studies/real.json", "studies/real-small.json",
                                        "studies/real-medium.json"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        pl_study_config c;
        memset(&c, 0, sizeof c);
        pl_status st = pl_study_config_load(files[i], &c);
        CHECK(st == PL_OK, "%s: %s", files[i], st ? pl_errmsg() : "");
        if (st) continue;
        CHECK(c.n_models > 0 && c.n_corpora > 0 && c.n_paradigms > 0, "%s: models, corpora and paradigms", files[i]);
        if (i == 0) {
            /* the demo: three LLM families beside the baseline, and the planted shortcut named */
            int fam[8] = {0};
            for (size_t m = 0; m < c.n_models; m++) fam[c.models[m].family & 7] = 1;
            CHECK(fam[PL_FAM_LLAMA] && fam[PL_FAM_MISTRAL] && fam[PL_FAM_GEMMA2] && fam[PL_FAM_LEXICAL_NB],
                  "studies/demo.json has llama, mistral, gemma2 and lexical-nb models");
            CHECK(c.shortcut_hint && strstr(c.shortcut_hint, "MailShield") != NULL, "studies/demo.json names the shortcut");
            CHECK(c.hyper.targets == (1u << PL_TGT_COUNT) - 1 && c.hyper.min_steps == 150,
                  "studies/demo.json: targets all (%#x), min_steps 150 (%d)", c.hyper.targets, c.hyper.min_steps);
        }
        pl_study_config_free(&c);
    }
}

int main(void) {
    T_BEGIN();
    test_shipped_configs();
    pl_progress_set_quiet(1);
    pl_log_set_level(PL_LOG_ERROR);
    snprintf(tmp_root, sizeof tmp_root, "/tmp/pl_test_study_%d", (int)getpid());
    pl_mkdirs(tmp_root);
    test_config();
    test_nb();
    test_cache();
    test_end_to_end();
    test_llm();
    test_gemma2_interp();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_root);
    if (!t_fail && !getenv("PL_TEST_KEEP") && system(cmd) != 0) printf("could not remove %s\n", tmp_root);
    return T_END();
}
