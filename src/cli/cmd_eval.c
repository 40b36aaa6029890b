/* cmd_eval.c — `phishlens eval <subcommand>`: metrics, paired comparison,
 * calibration and the generalization matrix, all computed from
 * predictions.jsonl files (docs/eval.md).
 *
 * Dispatch: when argv[1] names a subcommand it runs; an option first is the
 * subcommand-less form `phishlens eval -m MODEL --test FILE... -o OUTDIR`,
 * which scores a model over records (eval_score below, src/eval/score.c)
 * and writes predictions.jsonl, metrics.json and run.json.
 */
#include "cli.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

/* ---- options shared by the subcommands ---------------------------------- */

typedef struct {
    const char *cmd;        /* "eval metrics", ... for messages */
    const char *out;        /* -o */
    const char *val;        /* --val */
    int json;               /* --json: JSON on stdout */
    pl_eval_opts eo;
    const char *pos[256];   /* positional arguments */
    int n_pos;
} opts;

static int parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = s && *s != '-' ? strtoull(s, &end, 0) : 0;
    if (!s || *s == '-' || errno || end == s || *end) {
        cli_usage_error(cmd, "%s expects a non-negative integer, got '%s'", opt, s ? s : "(nothing)");
        return 0;
    }
    *out = v;
    return 1;
}

/* Returns -1 on success, else the exit code. */
static int parse_opts(int argc, char **argv, const char *cmd, int allow_val, opts *o) {
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->eo = pl_eval_defaults();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!next) return cli_usage_error(cmd, "%s needs a path", a);
            o->out = argv[++i];
        } else if (allow_val && !strcmp(a, "--val")) {
            if (!next) return cli_usage_error(cmd, "--val needs a predictions file");
            o->val = argv[++i];
        } else if (!strcmp(a, "--seed")) {
            if (!parse_u64(cmd, a, next, &o->eo.boot.seed)) return EXIT_USAGE;
            i++;
        } else if (!strcmp(a, "--bootstrap")) {
            long n;
            if (!cli_parse_int(cmd, a, next, 2, 1000000, &n)) return EXIT_USAGE;
            o->eo.boot.n_boot = n;
            i++;
        } else if (!strcmp(a, "--level")) {
            double l;
            if (!cli_parse_double(cmd, a, next, &l)) return EXIT_USAGE;
            if (!(l > 0 && l < 1)) return cli_usage_error(cmd, "--level expects a number in (0, 1), got '%s'", next);
            o->eo.boot.level = l;
            i++;
        } else if (!strcmp(a, "--threshold")) {
            double t;
            if (!cli_parse_double(cmd, a, next, &t)) return EXIT_USAGE;
            if (!(t >= 0 && t <= 1)) return cli_usage_error(cmd, "--threshold expects a number in [0, 1], got '%s'", next);
            o->eo.threshold = t;
            i++;
        } else if (!strcmp(a, "--no-slices")) o->eo.slices = 0;
        else if (!strcmp(a, "--no-slice-ci")) o->eo.slice_ci = 0;
        else if (a[0] == '-' && a[1]) return cli_usage_error(cmd, "unknown option '%s'", a);
        else {
            if (o->n_pos == (int)(sizeof o->pos / sizeof *o->pos)) return cli_usage_error(cmd, "too many arguments");
            o->pos[o->n_pos++] = a;
        }
    }
    return -1;
}

/* Write j to -o (atomically) and/or stdout. */
static int emit_json(const opts *o, const cJSON *j) {
    if (o->out) {
        pl_status st = pl_json_write_atomic(o->out, j);
        if (st) return cli_fail(st);
    }
    if (o->json) {
        char *s = cJSON_Print(j);
        if (!s) return cli_fail(pl_error(PL_ERR_NOMEM, "out of memory"));
        printf("%s\n", s);
        cJSON_free(s);
    }
    return EXIT_OK_;
}

/* ---- terminal summaries ------------------------------------------------- */

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : (double)NAN;
}

static void print_block(const char *title, const cJSON *b) {
    const cJSON *m = cJSON_GetObjectItem(b, "metrics"), *ci = cJSON_GetObjectItem(b, "ci"),
                *notes = cJSON_GetObjectItem(b, "notes"), *cm = cJSON_GetObjectItem(b, "confusion");
    printf("%s (p >= %.4g): n = %.0f, phishing = %.0f\n", title, num(b, "threshold"), num(b, "n"), num(b, "n_pos"));
    for (int k = 0; k < PL_M_COUNT; k++) {
        const char *name = pl_metric_name(k);
        double v = num(m, name);
        printf("  %-10s ", name);
        if (isnan(v)) printf("%8s", "null");
        else printf("%8.4f", v);
        const cJSON *c = ci ? cJSON_GetObjectItem(ci, name) : NULL;
        if (cJSON_IsArray(c))
            printf("  [%.4f, %.4f]", cJSON_GetArrayItem(c, 0)->valuedouble, cJSON_GetArrayItem(c, 1)->valuedouble);
        const cJSON *nt = notes ? cJSON_GetObjectItem(notes, name) : NULL;
        if (cJSON_IsString(nt)) printf("  (%s)", nt->valuestring);
        printf("\n");
    }
    printf("  confusion  tn %.0f  fp %.0f  fn %.0f  tp %.0f\n", num(cm, "tn"), num(cm, "fp"), num(cm, "fn"), num(cm, "tp"));
}

static void print_slices(const cJSON *r) {
    const cJSON *sl = cJSON_GetObjectItem(r, "slices"), *dim;
    if (!sl) return;
    printf("slices (F1 at the fixed threshold):\n");
    cJSON_ArrayForEach(dim, sl) {
        const cJSON *s;
        cJSON_ArrayForEach(s, dim) {
            const cJSON *m = cJSON_GetObjectItem(s, "metrics"), *ci = cJSON_GetObjectItem(s, "ci");
            const cJSON *c = ci ? cJSON_GetObjectItem(ci, "f1") : NULL;
            printf("  %-14s %-12s n %-7.0f F1 %.4f", dim->string, s->string, num(s, "n"), num(m, "f1"));
            if (cJSON_IsArray(c))
                printf("  [%.4f, %.4f]", cJSON_GetArrayItem(c, 0)->valuedouble, cJSON_GetArrayItem(c, 1)->valuedouble);
            printf("\n");
        }
    }
}

static void print_calibration(const cJSON *c) {
    if (!c) return;
    const cJSON *note = cJSON_GetObjectItem(c, "note");
    if (cJSON_IsString(note)) {
        printf("calibration: not fitted (%s)\n", note->valuestring);
        return;
    }
    const cJSON *b = cJSON_GetObjectItem(c, "before"), *a = cJSON_GetObjectItem(c, "after");
    printf("calibration: temperature T = %.6g%s (fitted on %.0f validation emails)\n", num(c, "temperature"),
           cJSON_IsTrue(cJSON_GetObjectItem(c, "at_bound")) ? " (at its bound)" : "", num(c, "val_n"));
    printf("  test NLL   %.4f -> %.4f\n", num(c, "test_nll_before"), num(c, "test_nll_after"));
    printf("  test Brier %.4f -> %.4f\n", num(cJSON_GetObjectItem(b, "metrics"), "brier"),
           num(cJSON_GetObjectItem(a, "metrics"), "brier"));
    printf("  test ECE   %.4f -> %.4f\n", num(cJSON_GetObjectItem(b, "metrics"), "ece"),
           num(cJSON_GetObjectItem(a, "metrics"), "ece"));
    const cJSON *rel = cJSON_GetObjectItem(cJSON_GetObjectItem(a, "reliability"), "bins"), *bin;
    printf("  reliability after scaling (bin: count, mean predicted, observed):\n");
    cJSON_ArrayForEach(bin, rel) {
        if (num(bin, "count") == 0) continue;
        printf("    [%.3f, %.3f)  %6.0f  %.4f  %.4f\n", num(bin, "lo"), num(bin, "hi"), num(bin, "count"),
               num(bin, "mean_pred"), num(bin, "observed"));
    }
}

/* ---- subcommands ------------------------------------------------------- */

static const char *const usage_metrics =
    "usage: phishlens eval metrics PRED.jsonl [--val VAL_PRED.jsonl] [--seed S] [--bootstrap N]\n"
    "                              [--level L] [--threshold T] [--no-slices] [--no-slice-ci]\n"
    "                              [--json] [-o metrics.json]\n"
    "Metrics (phishing = positive class) at the threshold (default 0.5) with percentile\n"
    "bootstrap CIs; with --val also at the F1-maximizing validation threshold and after\n"
    "temperature scaling fitted on the validation set; per-slice metrics by source, has_url,\n"
    "html, length bucket and link_mismatch. See docs/eval.md.\n";

static int eval_metrics(int argc, char **argv) {
    opts o;
    int rc = parse_opts(argc, argv, "eval metrics", 1, &o);
    if (rc >= 0) return rc;
    if (o.n_pos != 1) return cli_usage_error("eval metrics", "expects one predictions file\n%s", usage_metrics);
    pl_preds test = {0}, val = {0};
    pl_status st = pl_preds_read_jsonl(o.pos[0], &test);
    if (!st && o.val) st = pl_preds_read_jsonl(o.val, &val);
    cJSON *r = NULL;
    if (!st) st = pl_eval_report(&test, o.val ? &val : NULL, &o.eo, &r);
    pl_preds_free(&test);
    pl_preds_free(&val);
    if (st) return cli_fail(st);
    rc = emit_json(&o, r);
    if (rc == EXIT_OK_ && !o.json && !cli_quiet) {
        printf("%s\n", o.pos[0]);
        print_block("fixed threshold", cJSON_GetObjectItem(r, "fixed_threshold"));
        const cJSON *t = cJSON_GetObjectItem(r, "tuned_threshold");
        if (t && cJSON_IsString(cJSON_GetObjectItem(t, "note")))
            printf("tuned threshold: none (%s)\n", cJSON_GetObjectItem(t, "note")->valuestring);
        else if (t) {
            printf("threshold tuned on %s: F1 %.4f there\n", o.val, num(t, "val_f1"));
            print_block("tuned threshold", t);
        }
        print_calibration(cJSON_GetObjectItem(r, "calibration"));
        print_slices(r);
        printf("bootstrap: %lld resamples, %g%% percentile intervals, seed %llu\n", (long long)o.eo.boot.n_boot,
               o.eo.boot.level * 100, (unsigned long long)o.eo.boot.seed);
    }
    cJSON_Delete(r);
    return rc;
}

static const char *const usage_compare =
    "usage: phishlens eval compare A.jsonl B.jsonl [--seed S] [--bootstrap N] [--level L]\n"
    "                              [--threshold T] [--json] [-o compare.json]\n"
    "Paired comparison of two models on the same emails (matched by source and id): exact\n"
    "McNemar test on the discordant pairs and a paired bootstrap CI of F1(B) - F1(A).\n";

static int eval_compare(int argc, char **argv) {
    opts o;
    int rc = parse_opts(argc, argv, "eval compare", 0, &o);
    if (rc >= 0) return rc;
    if (o.n_pos != 2) return cli_usage_error("eval compare", "expects two predictions files\n%s", usage_compare);
    pl_preds a = {0}, b = {0};
    pl_status st = pl_preds_read_jsonl(o.pos[0], &a);
    if (!st) st = pl_preds_read_jsonl(o.pos[1], &b);
    cJSON *r = NULL;
    if (!st) {
        st = pl_eval_compare_report(&a, &b, &o.eo, &r);
        if (st) pl_error_wrap(st, "comparing %s with %s", o.pos[0], o.pos[1]);
    }
    pl_preds_free(&a);
    pl_preds_free(&b);
    if (st) return cli_fail(st);
    rc = emit_json(&o, r);
    if (rc == EXIT_OK_ && !o.json && !cli_quiet) {
        const cJSON *ct = cJSON_GetObjectItem(r, "contingency"), *ci = cJSON_GetObjectItem(r, "delta_f1_ci");
        printf("A = %s\nB = %s\n%.0f emails, threshold %g\n", o.pos[0], o.pos[1], num(r, "n"), num(r, "threshold"));
        printf("  both right %.0f, only A right %.0f, only B right %.0f, both wrong %.0f\n", num(ct, "both_right"),
               num(ct, "only_a_right"), num(ct, "only_b_right"), num(ct, "both_wrong"));
        printf("  McNemar exact p = %.4g\n", num(r, "mcnemar_exact_p"));
        printf("  F1 A %.4f, F1 B %.4f, delta (B - A) %+.4f", num(r, "f1_a"), num(r, "f1_b"), num(r, "delta_f1"));
        if (cJSON_IsArray(ci))
            printf("  %g%% CI [%+.4f, %+.4f]", o.eo.boot.level * 100, cJSON_GetArrayItem(ci, 0)->valuedouble,
                   cJSON_GetArrayItem(ci, 1)->valuedouble);
        if (num(r, "p_bootstrap") == 0) printf("  (bootstrap p < 1/%lld)\n", (long long)o.eo.boot.n_boot);
        else printf("  (bootstrap p %.4g)\n", num(r, "p_bootstrap"));
    }
    cJSON_Delete(r);
    return rc;
}

static const char *const usage_calibrate =
    "usage: phishlens eval calibrate --val VAL_PRED.jsonl PRED.jsonl [--seed S] [--bootstrap N]\n"
    "                                [--threshold T] [--json] [-o calibration.json]\n"
    "Temperature scaling: T minimizing the validation NLL of sigmoid(score / T); reports T,\n"
    "test metrics before and after, and reliability-diagram bins (15 equal-width bins).\n";

static int eval_calibrate(int argc, char **argv) {
    opts o;
    int rc = parse_opts(argc, argv, "eval calibrate", 1, &o);
    if (rc >= 0) return rc;
    if (o.n_pos != 1 || !o.val)
        return cli_usage_error("eval calibrate", "expects --val VAL.jsonl and one predictions file\n%s", usage_calibrate);
    pl_preds test = {0}, val = {0};
    pl_status st = pl_preds_read_jsonl(o.pos[0], &test);
    if (!st) st = pl_preds_read_jsonl(o.val, &val);
    cJSON *r = NULL;
    if (!st) st = pl_eval_calibration_report(&test, &val, &o.eo, &r);
    pl_preds_free(&test);
    pl_preds_free(&val);
    if (st) return cli_fail(st);
    rc = emit_json(&o, r);
    if (rc == EXIT_OK_ && !o.json && !cli_quiet) print_calibration(r);
    cJSON_Delete(r);
    return rc;
}

static const char *const usage_matrix =
    "usage: phishlens eval matrix RUNDIR... [-o OUTDIR] [--json] [--seed S] [--bootstrap N]\n"
    "                             [--level L] [--threshold T]\n"
    "Generalization matrix: each RUNDIR holds predictions.jsonl and run.json; rows are\n"
    "(model, train_set), columns test sources, cells F1 with bootstrap CI; in-domain vs\n"
    "out-of-domain gap per row and a leave-one-source-out summary when the runs are LOSO.\n"
    "-o writes OUTDIR/matrix.csv and OUTDIR/matrix.json.\n";

static int eval_matrix(int argc, char **argv) {
    opts o;
    int rc = parse_opts(argc, argv, "eval matrix", 0, &o);
    if (rc >= 0) return rc;
    if (o.n_pos < 1) return cli_usage_error("eval matrix", "expects at least one run directory\n%s", usage_matrix);
    pl_matrix m;
    pl_status st = pl_matrix_build(o.pos, (size_t)o.n_pos, o.eo.threshold, &o.eo.boot, &m);
    if (st) return cli_fail(st);
    cJSON *j = pl_matrix_to_json(&m);
    if (!j) st = pl_error(PL_ERR_NOMEM, "out of memory");
    if (!st && o.out) {
        size_t n = strlen(o.out) + 16;
        char *pc = malloc(n), *pj = malloc(n);
        if (!pc || !pj) st = pl_error(PL_ERR_NOMEM, "out of memory");
        if (!st) st = pl_mkdirs(o.out);
        if (!st) {
            snprintf(pc, n, "%s/matrix.csv", o.out);
            snprintf(pj, n, "%s/matrix.json", o.out);
            st = pl_matrix_write_csv(&m, pc);
        }
        if (!st) st = pl_json_write_atomic(pj, j);
        free(pc);
        free(pj);
    }
    if (!st && o.json) {
        char *s = cJSON_Print(j);
        if (s) printf("%s\n", s);
        else st = pl_error(PL_ERR_NOMEM, "out of memory");
        cJSON_free(s);
    } else if (!st && !cli_quiet) pl_matrix_print(&m, stdout);
    cJSON_Delete(j);
    pl_matrix_free(&m);
    return st ? cli_fail(st) : EXIT_OK_;
}

/* ---- scoring a model (the subcommand-less form) ------------------------ */

static const char *const usage_score =
    "usage: phishlens eval -m MODEL [--lora FILE[:SCALE]]... [--run RUNDIR] [--tokenizer T]\n"
    "                      --test FILE.jsonl... -o OUTDIR [--val FILE.jsonl]\n"
    "                      [--batch-tokens N] [--max-email-tokens N] [--threads N] [--seed S]\n"
    "                      [--bootstrap N] [--exact-matmul] [--bf16] [--cot [--cot-max-new N]]\n"
    "Scores every record (normalized records JSONL) with the classifier view of MODEL\n"
    "(prompt, label tokens phishing/legitimate; src/prompt/prompt.h), batched over one\n"
    "shared instruction-prefix cache, and writes OUTDIR/predictions.jsonl (labelled\n"
    "records), OUTDIR/unlabelled.jsonl (records without a label, if any),\n"
    "OUTDIR/metrics.json (as `eval metrics`; with --val also the threshold tuned on the\n"
    "validation records, whose predictions go to OUTDIR/val_predictions.jsonl) and\n"
    "OUTDIR/run.json.\n"
    "  --run RUNDIR   a training run: adds the adapter RUNDIR/adapter.gguf, and takes\n"
    "                 train_set / train_sources from RUNDIR/config.json when present\n"
    "  --tokenizer T  tokenizer file or directory (default: the model's own)\n"
    "  --batch-tokens N      new tokens per forward (default 2048)\n"
    "  --max-email-tokens N  email part truncated to N tokens (default 384)\n"
    "  --threads N    OpenMP threads (default: OMP_NUM_THREADS or all cores)\n"
    "  --seed S       bootstrap seed (default 0); --bootstrap N resamples (default 1000)\n"
    "  --bf16         quantized weights as bf16 tiles on the CPU's AMX units (faster; see `logits`)\n"
    "  --cot          chain-of-thought scoring (a run trained on rationales): generate\n"
    "                 the rationale greedily up to its line break, then read the label\n"
    "                 tokens after it; predictions carry \"rationale\" (docs/eval.md)\n"
    "  --cot-max-new N  at most N generated rationale tokens (default 64)\n"
    "Without --lora/--run the base model is evaluated zero-shot.\n";

#define SCORE_MAX_FILES 64

typedef struct {
    cli_model_args ma;
    const char *run, *tok, *out, *val;
    const char *test[SCORE_MAX_FILES];
    int n_test;
    long batch_tokens, max_email, threads;
    int cot;               /* --cot: chain-of-thought scoring */
    long cot_max_new;
    pl_eval_opts eo;
} score_opts;

static int score_parse(int argc, char **argv, score_opts *o) {
    const char *cmd = "eval";
    memset(o, 0, sizeof *o);
    o->eo = pl_eval_defaults();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cli_model_opt(&o->ma, cmd, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        if (!strcmp(a, "--run") || !strcmp(a, "--tokenizer") || !strcmp(a, "-o") || !strcmp(a, "--output") ||
            !strcmp(a, "--val")) {
            if (!next) return cli_usage_error(cmd, "%s needs a path", a);
            const char **dst = !strcmp(a, "--run") ? &o->run : !strcmp(a, "--tokenizer") ? &o->tok
                               : !strcmp(a, "--val") ? &o->val : &o->out;
            *dst = argv[++i];
        } else if (!strcmp(a, "--test")) {
            if (!next || next[0] == '-') return cli_usage_error(cmd, "--test needs at least one records file");
            while (i + 1 < argc && argv[i + 1][0] != '-') {
                if (o->n_test == SCORE_MAX_FILES) return cli_usage_error(cmd, "at most %d --test files", SCORE_MAX_FILES);
                o->test[o->n_test++] = argv[++i];
            }
        } else if (!strcmp(a, "--cot")) {
            o->cot = 1;
        } else if (!strcmp(a, "--cot-max-new")) {
            if (!cli_parse_int(cmd, a, next, 1, 4096, &o->cot_max_new)) return EXIT_USAGE;
            i++;
        } else if (!strcmp(a, "--batch-tokens")) {
            if (!cli_parse_int(cmd, a, next, 16, 1 << 20, &o->batch_tokens)) return EXIT_USAGE;
            i++;
        } else if (!strcmp(a, "--max-email-tokens")) {
            if (!cli_parse_int(cmd, a, next, 1, 1 << 20, &o->max_email)) return EXIT_USAGE;
            i++;
        } else if (!strcmp(a, "--threads")) {
            if (!cli_parse_int(cmd, a, next, 1, 1024, &o->threads)) return EXIT_USAGE;
            i++;
        } else if (!strcmp(a, "--seed")) {
            if (!parse_u64(cmd, a, next, &o->eo.boot.seed)) return EXIT_USAGE;
            i++;
        } else if (!strcmp(a, "--bootstrap")) {
            long n;
            if (!cli_parse_int(cmd, a, next, 2, 1000000, &n)) return EXIT_USAGE;
            o->eo.boot.n_boot = n;
            i++;
        } else return cli_usage_error(cmd, "unknown option '%s'\n%s", a, usage_score);
    }
    if (!o->ma.model) return cli_usage_error(cmd, "-m MODEL is required\n%s", usage_score);
    if (!o->n_test) return cli_usage_error(cmd, "--test FILE.jsonl is required\n%s", usage_score);
    if (!o->out) return cli_usage_error(cmd, "-o OUTDIR is required\n%s", usage_score);
    if (o->cot_max_new && !o->cot) return cli_usage_error(cmd, "--cot-max-new needs --cot");
    return -1;
}

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int file_exists(const char *p) {
    FILE *f = fopen(p, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* Training-run description: RUNDIR/config.json (optional) gives train_set
 * and train_sources; the adapter is RUNDIR/adapter.gguf. */
static pl_status read_run_dir(const char *dir, char **adapter, cJSON **train_set, cJSON **train_sources) {
    *adapter = path_join(dir, "adapter.gguf");
    if (!*adapter) return pl_error(PL_ERR_NOMEM, "out of memory");
    char *cfg = path_join(dir, "config.json");
    if (!cfg) return pl_error(PL_ERR_NOMEM, "out of memory");
    pl_status st = PL_OK;
    if (file_exists(cfg)) {
        char *txt = NULL;
        size_t len = 0;
        st = pl_read_file(cfg, &txt, &len);
        cJSON *j = st ? NULL : cJSON_ParseWithLength(txt, len);
        if (!st && !cJSON_IsObject(j)) st = pl_error(PL_ERR_FORMAT, "%s: not a JSON object", cfg);
        const cJSON *ts = j ? cJSON_GetObjectItemCaseSensitive(j, "train_set") : NULL;
        const cJSON *tsrc = j ? cJSON_GetObjectItemCaseSensitive(j, "train_sources") : NULL;
        const cJSON *obj = j ? cJSON_GetObjectItemCaseSensitive(j, "objective") : NULL;
        if (!st && ts && !cJSON_IsString(ts)) st = pl_error(PL_ERR_FORMAT, "%s: field \"train_set\" must be a string", cfg);
        if (!st && tsrc && !cJSON_IsArray(tsrc))
            st = pl_error(PL_ERR_FORMAT, "%s: field \"train_sources\" must be an array of strings", cfg);
        if (!st && cJSON_IsString(obj) && !strcmp(obj->valuestring, "head"))
            st = pl_error(PL_ERR_UNSUPPORTED, "%s: runs trained with a linear head cannot be evaluated yet "
                          "(only LoRA runs scored through the label tokens)", cfg);
        if (!st && ts) *train_set = cJSON_Duplicate(ts, 1);
        if (!st && tsrc) *train_sources = cJSON_Duplicate(tsrc, 1);
        cJSON_Delete(j);
        free(txt);
    }
    if (!st && !file_exists(*adapter))
        st = pl_error(PL_ERR_NOT_FOUND, "--run %s: no adapter file %s", dir, *adapter);
    free(cfg);
    return st;
}

static pl_status read_records(const char *const *files, int n, pl_records *rs) {
    for (int i = 0; i < n; i++) {
        pl_status st = pl_records_read_jsonl(files[i], rs);
        if (st) return st;
    }
    return PL_OK;
}

static pl_status write_unlabelled(const char *path, const pl_preds *ps) {
    pl_afile f;
    pl_status st = pl_afile_open(&f, path);
    if (st) return st;
    pl_buf b = {0};
    for (size_t i = 0; !st && i < ps->n; i++) {
        b.len = 0;
        st = pl_pred_unlabelled_to_json(&ps->v[i], &b);
        if (!st) st = pl_afile_write(&f, b.data, b.len);
        if (!st) st = pl_afile_write(&f, "\n", 1);
    }
    pl_buf_free(&b);
    if (st) {
        pl_afile_abort(&f);
        return st;
    }
    return pl_afile_commit(&f);
}

static int eval_score(int argc, char **argv) {
    score_opts o;
    int rc = score_parse(argc, argv, &o);
    if (rc >= 0) return rc;
    if (o.threads > 0) pl_set_num_threads((int)o.threads);

    pl_status st = PL_OK;
    char *run_adapter = NULL;
    cJSON *train_set = NULL, *train_sources = NULL;
    if (o.run) {
        st = read_run_dir(o.run, &run_adapter, &train_set, &train_sources);
        if (!st && o.ma.n_lora >= CLI_MAX_LORA) st = pl_error(PL_ERR_INVALID, "too many adapters");
        if (!st) o.ma.lora[o.ma.n_lora++] = run_adapter;
    }
    /* Read the inputs first: a bad file fails before the model loads. */
    pl_records test = {0}, val = {0};
    if (!st) st = read_records(o.test, o.n_test, &test);
    if (!st && o.val) st = read_records(&o.val, 1, &val);
    if (!st && test.n == 0) st = pl_error(PL_ERR_INVALID, "the --test files hold no records");

    pl_model *m = NULL;
    pl_tokenizer *t = NULL;
    pl_prompt prompt;
    int prompt_ok = 0;
    pl_classifier *c = NULL;
    pl_cot *cot = NULL;
    if (!st) st = cli_model_load(&o.ma, &m);
    if (!st) {
        const char *tp = o.tok ? o.tok : o.ma.model;
        st = pl_tokenizer_load(tp, &t);
        if (st) pl_error_wrap(st, "loading the tokenizer from %s", tp);
    }
    if (!st && pl_tokenizer_n_vocab(t) > pl_model_desc(m)->n_vocab)
        st = pl_error(PL_ERR_INVALID, "tokenizer/model mismatch: the tokenizer (%s) has %d tokens, the model %s only %d",
                      o.tok ? o.tok : o.ma.model, (int)pl_tokenizer_n_vocab(t), o.ma.model, pl_model_desc(m)->n_vocab);
    if (!st) {
        pl_prompt_spec spec = pl_prompt_spec_default();
        if (o.max_email) spec.max_email_tokens = (int)o.max_email;
        st = pl_prompt_init(&prompt, t, &spec);
        prompt_ok = !st;
    }
    if (!st && !o.cot) st = pl_classifier_new(m, &prompt, (int)o.batch_tokens, &c);
    if (!st && o.cot) st = pl_cot_new(m, &prompt, t, (int)o.cot_max_new, (int)o.batch_tokens, &cot);

    pl_preds tp = {0}, tu = {0}, vp = {0};
    pl_score_stats ts = {0}, vs = {0};
    const char *lt = cli_quiet ? NULL : "scoring test", *lv = cli_quiet ? NULL : "scoring val";
    if (!st) st = cot ? pl_cot_score_records(cot, t, &test, lt, &tp, &tu, &ts) : pl_score_records(c, t, &test, lt, &tp, &tu, &ts);
    if (!st && o.val)
        st = cot ? pl_cot_score_records(cot, t, &val, lv, &vp, NULL, &vs) : pl_score_records(c, t, &val, lv, &vp, NULL, &vs);

    /* Outputs: every file atomic; run.json last. */
    cJSON *report = NULL;
    char *p_pred = path_join(o.out, "predictions.jsonl"), *p_unl = path_join(o.out, "unlabelled.jsonl"),
         *p_val = path_join(o.out, "val_predictions.jsonl"), *p_met = path_join(o.out, "metrics.json"),
         *p_run = path_join(o.out, "run.json");
    if (!st && (!p_pred || !p_unl || !p_val || !p_met || !p_run)) st = pl_error(PL_ERR_NOMEM, "out of memory");
    if (!st && tp.n == 0) st = pl_error(PL_ERR_INVALID, "no test record has a label (0/1): nothing to evaluate");
    if (!st) st = pl_eval_report(&tp, o.val && vp.n ? &vp : NULL, &o.eo, &report);
    if (!st) st = pl_mkdirs(o.out);
    if (!st) st = pl_preds_write_jsonl(p_pred, &tp);
    if (!st && tu.n) st = write_unlabelled(p_unl, &tu);
    if (!st && vp.n) st = pl_preds_write_jsonl(p_val, &vp);
    if (!st) {
        cJSON_AddNumberToObject(report, "n_unlabelled_excluded", (double)ts.n_unlabelled);
        st = pl_json_write_atomic(p_met, report);
    }
    if (!st) {
        cJSON *r = cJSON_CreateObject();
        pl_buf ad = {0};
        for (int i = 0; i < o.ma.n_lora; i++) pl_buf_printf(&ad, "%s%s", i ? "," : "", o.ma.lora[i]);
        int ok = r && cJSON_AddStringToObject(r, "model", o.ma.model) &&
                 cJSON_AddStringToObject(r, "adapter", ad.data ? ad.data : "");
        if (ok && train_set) cJSON_AddItemToObject(r, "train_set", train_set), train_set = NULL;
        else if (ok) ok = cJSON_AddStringToObject(r, "train_set", o.run ? o.run : "none") != NULL;
        if (ok && train_sources) cJSON_AddItemToObject(r, "train_sources", train_sources), train_sources = NULL;
        else if (ok) ok = cJSON_AddArrayToObject(r, "train_sources") != NULL;
        if (ok) {
            cJSON *tf = cJSON_AddArrayToObject(r, "test_files");
            for (int i = 0; tf && i < o.n_test; i++) cJSON_AddItemToArray(tf, cJSON_CreateString(o.test[i]));
            if (o.run) cJSON_AddStringToObject(r, "run_dir", o.run);
            if (o.val) cJSON_AddStringToObject(r, "val_file", o.val);
            cJSON_AddStringToObject(r, "tokenizer", o.tok ? o.tok : o.ma.model);
            cJSON_AddStringToObject(r, "layout", prompt.chat ? "chat" : "plain");
            cJSON_AddStringToObject(r, "scoring", o.cot ? "chain-of-thought" : "label tokens");
            if (o.cot) cJSON_AddNumberToObject(r, "cot_max_new", pl_cot_max_new(cot));
            cJSON_AddNumberToObject(r, "max_email_tokens", prompt.max_email_tokens);
            cJSON_AddNumberToObject(r, "n_records", (double)ts.n_records);
            cJSON_AddNumberToObject(r, "n_unlabelled", (double)ts.n_unlabelled);
            cJSON_AddNumberToObject(r, "n_truncated", (double)ts.n_truncated);
            cJSON_AddNumberToObject(r, "tokens", (double)ts.n_tokens);
            cJSON_AddNumberToObject(r, "seconds", ts.seconds);
            cJSON_AddNumberToObject(r, "threads", pl_num_threads());
            cJSON_AddNumberToObject(r, "seed", (double)o.eo.boot.seed);
        }
        st = ok ? pl_json_write_atomic(p_run, r) : pl_error(PL_ERR_NOMEM, "out of memory");
        pl_buf_free(&ad);
        cJSON_Delete(r);
    }
    if (!st && !cli_quiet) {
        double eps = ts.seconds > 0 ? (double)ts.n_records / ts.seconds : 0;
        printf("scored %zu emails (%lld tokens) in %.3f s: %.2f emails/s, %.1f tokens/s\n", ts.n_records,
               (long long)ts.n_tokens, ts.seconds, eps, ts.seconds > 0 ? (double)ts.n_tokens / ts.seconds : 0);
        if (ts.n_truncated) printf("  %zu emails truncated to %d tokens\n", ts.n_truncated, prompt.max_email_tokens);
        if (ts.n_unlabelled)
            printf("  %zu records without a label: scored (unlabelled.jsonl) but excluded from the metrics\n",
                   ts.n_unlabelled);
        print_block("fixed threshold", cJSON_GetObjectItem(report, "fixed_threshold"));
        const cJSON *tt = cJSON_GetObjectItem(report, "tuned_threshold");
        if (tt && cJSON_IsString(cJSON_GetObjectItem(tt, "note")))
            printf("tuned threshold: none (%s)\n", cJSON_GetObjectItem(tt, "note")->valuestring);
        else if (tt) print_block("threshold tuned on --val", tt);
        printf("wrote %s, %s, %s\n", p_pred, p_met, p_run);
    }
    cJSON_Delete(report);
    cJSON_Delete(train_set);
    cJSON_Delete(train_sources);
    free(p_pred), free(p_unl), free(p_val), free(p_met), free(p_run);
    pl_preds_free(&tp), pl_preds_free(&tu), pl_preds_free(&vp);
    pl_classifier_free(c);
    pl_cot_free(cot);
    if (prompt_ok) pl_prompt_free(&prompt);
    pl_tokenizer_free(t);
    pl_model_free(m);
    pl_records_free(&test), pl_records_free(&val);
    free(run_adapter);
    return st ? cli_fail(st) : EXIT_OK_;
}

/* ---- dispatch ------------------------------------------------------------ */

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
    const char *usage;
} subcommand;

static const subcommand subs[] = {
    {"metrics", eval_metrics, "metrics with bootstrap CIs, tuned threshold, slices", usage_metrics},
    {"compare", eval_compare, "paired comparison of two models (McNemar, paired bootstrap)", usage_compare},
    {"calibrate", eval_calibrate, "temperature scaling and reliability diagram", usage_calibrate},
    {"matrix", eval_matrix, "generalization matrix over run directories", usage_matrix},
    {"audit", cmd_eval_audit, "label-noise audit: k-fold fine-tuning, confident learning vs the naive rule", cmd_eval_audit_usage},
    {NULL, NULL, NULL, NULL}};

static void usage(FILE *fp) {
    fprintf(fp, "usage: phishlens eval <subcommand> [options]\n"
                "       phishlens eval -m MODEL --test FILE.jsonl... -o OUTDIR [...]  (score a model; eval -m --help)\n\n"
                "subcommands:\n");
    for (const subcommand *s = subs; s->name; s++) fprintf(fp, "  %-10s %s\n", s->name, s->summary);
    fprintf(fp, "\n`phishlens eval <subcommand> --help` for its options; formats in docs/eval.md.\n");
}

int cmd_eval(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    for (const subcommand *s = subs; s->name; s++) {
        if (strcmp(s->name, argv[1])) continue;
        for (int i = 2; i < argc; i++)
            if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                printf("%s", s->usage);
                return EXIT_OK_;
            }
        return s->fn(argc - 1, argv + 1);
    }
    if (argv[1][0] == '-') {
        for (int i = 1; i < argc; i++)
            if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                printf("%s", usage_score);
                return EXIT_OK_;
            }
        return eval_score(argc, argv);
    }
    fprintf(stderr, "phishlens eval: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
