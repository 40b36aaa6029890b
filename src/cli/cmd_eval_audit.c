/* cmd_eval_audit.c — `phishlens eval audit`: the label-noise audit wired to
 * a model. k-fold out-of-fold fine-tuning + scoring, confident learning, and
 * the naive "> 91 % contradiction" rule on out-of-fold and on in-sample
 * (circular) probabilities; precision/recall against known flips
 * (docs/eval.md, "label-noise audit").
 */
#include "cli.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"

const char cmd_eval_audit_usage[] =
    "usage: phishlens eval audit -m MODEL --records R.jsonl -o OUTDIR [options]\n"
    "  -k K                 folds (5), stratified by label\n"
    "  --seed S             fold assignment and training seed (1234)\n"
    "  --threshold T        naive rule: p(other class) > T (0.91)\n"
    "  --no-circular        skip the model trained and scored on all records\n"
    "  --truth FILE         ids of known flipped labels (default: meta.label_flipped)\n"
    "  --inject-flips RATE  flip this share of labels first (meta.label_flipped),\n"
    "                       written to OUTDIR/records.jsonl\n"
    "  --flip-seed S        seed of the injection (1)\n"
    "  training: --objective label|head  --full  --lora-rank R (8)  --lora-alpha A (16)\n"
    "            --targets q,v|all  --lr LR (2e-4)  --epochs N (1)  --batch B (8)\n"
    "            --max-len N (512)  --weight-decay W  --threads N\n"
    "Writes OUTDIR/oof.jsonl, OUTDIR/audit.json and the fits' logs in OUTDIR/fits/.\n";

int cmd_eval_audit(int argc, char **argv) {
    const char *cmd = "eval audit", *records = NULL, *out = NULL, *truth_path = NULL;
    pl_audit_model am;
    memset(&am, 0, sizeof am);
    am.tc = pl_tr_config_default();
    am.lo = pl_loop_opts_default();
    am.lo.opt.lr = 2e-4;
    am.max_len = 512;
    am.quiet = cli_quiet;
    pl_audit_opts ao = pl_audit_opts_default();
    double flip_rate = -1;
    uint64_t flip_seed = 1;
    int rank_given = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        double d;
#define NEED_INT(lo_, hi_) do { if (!cli_parse_int(cmd, o, v, lo_, hi_, &n)) return EXIT_USAGE; i++; } while (0)
#define NEED_DBL() do { if (!cli_parse_double(cmd, o, v, &d)) return EXIT_USAGE; i++; } while (0)
#define NEED_STR() do { if (!v) return cli_usage_error(cmd, "%s needs a value", o); i++; } while (0)
        if (!strcmp(o, "-m") || !strcmp(o, "--model")) { NEED_STR(); am.model = v; }
        else if (!strcmp(o, "--records")) { NEED_STR(); records = v; }
        else if (!strcmp(o, "-o") || !strcmp(o, "--output")) { NEED_STR(); out = v; }
        else if (!strcmp(o, "-k")) { NEED_INT(2, 1000); ao.k = (int)n; }
        else if (!strcmp(o, "--seed")) { NEED_INT(0, 1L << 62); ao.seed = (uint64_t)n; am.tc.seed = (uint64_t)n; }
        else if (!strcmp(o, "--threshold")) {
            NEED_DBL();
            if (!(d >= 0.5 && d < 1)) return cli_usage_error(cmd, "--threshold expects a number in [0.5, 1), got '%s'", v);
            ao.naive_threshold = d;
        } else if (!strcmp(o, "--no-circular")) ao.circular = 0;
        else if (!strcmp(o, "--truth")) { NEED_STR(); truth_path = v; }
        else if (!strcmp(o, "--inject-flips")) {
            NEED_DBL();
            if (!(d >= 0 && d <= 1)) return cli_usage_error(cmd, "--inject-flips expects a share in [0, 1], got '%s'", v);
            flip_rate = d;
        } else if (!strcmp(o, "--flip-seed")) { NEED_INT(0, 1L << 62); flip_seed = (uint64_t)n; }
        else if (!strcmp(o, "--objective")) {
            NEED_STR();
            if (!strcmp(v, "label")) am.tc.objective = PL_OBJ_LABEL;
            else if (!strcmp(v, "head")) am.tc.objective = PL_OBJ_HEAD;
            else return cli_usage_error(cmd, "--objective expects label or head, got '%s'", v);
        } else if (!strcmp(o, "--full")) am.tc.full = 1;
        else if (!strcmp(o, "--lora-rank")) { NEED_INT(0, 4096); am.tc.lora_rank = (int)n; rank_given = 1; }
        else if (!strcmp(o, "--lora-alpha")) { NEED_DBL(); am.tc.lora_alpha = d; }
        else if (!strcmp(o, "--targets")) {
            NEED_STR();
            if (pl_tr_parse_targets(v, &am.tc.targets) != PL_OK) return cli_usage_error(cmd, "%s", pl_errmsg());
        } else if (!strcmp(o, "--lr")) { NEED_DBL(); am.lo.opt.lr = d; }
        else if (!strcmp(o, "--weight-decay")) { NEED_DBL(); am.lo.opt.weight_decay = d; }
        else if (!strcmp(o, "--epochs")) { NEED_INT(1, 100000); am.lo.epochs = (int)n; }
        else if (!strcmp(o, "--batch")) { NEED_INT(1, 1 << 20); am.lo.batch = (int)n; }
        else if (!strcmp(o, "--max-len")) { NEED_INT(8, 1 << 20); am.max_len = (int)n; }
        else if (!strcmp(o, "--threads")) { NEED_INT(1, 1024); threads = (int)n; }
        else return cli_usage_error(cmd, "unknown option '%s'", o);
#undef NEED_INT
#undef NEED_DBL
#undef NEED_STR
    }
    if (!am.model || !records || !out) return cli_usage_error(cmd, "-m MODEL, --records FILE and -o OUTDIR are required");
    if (am.tc.full && !rank_given) am.tc.lora_rank = 0;
    if (am.tc.objective == PL_OBJ_LABEL && !am.tc.full && am.tc.lora_rank == 0)
        return cli_usage_error(cmd, "--lora-rank 0 with the label objective trains nothing; use --objective head or --full");
    if (threads > 0) pl_set_num_threads(threads);

    char fits[4096], path[4200];
    snprintf(fits, sizeof fits, "%s/fits", out);
    am.work_dir = fits;
    pl_records rs = {0};
    uint8_t *truth = NULL;
    int have_truth = 0;
    pl_audit_run_result res;
    memset(&res, 0, sizeof res);
    cJSON *j = NULL;
    pl_status st = pl_records_read_jsonl(records, &rs);
    if (!st && !rs.n) st = pl_error(PL_ERR_FORMAT, "%s: no records", records);
    if (!st) st = pl_mkdirs(fits);
    if (!st && flip_rate >= 0) {
        size_t nf = 0;
        st = pl_audit_inject_flips(&rs, flip_rate, flip_seed, &nf);
        snprintf(path, sizeof path, "%s/records.jsonl", out);
        if (!st) st = pl_records_write_jsonl(path, &rs);
        if (!st) fprintf(stderr, "eval audit: flipped %zu of %zu labels -> %s\n", nf, rs.n, path);
    }
    if (!st && !(truth = malloc(rs.n))) st = pl_error(PL_ERR_NOMEM, "out of memory");
    if (!st) st = pl_audit_truth(&rs, truth_path, truth, &have_truth);
    if (!st) st = pl_audit_run(&rs, &ao, pl_audit_model_fit, &am, have_truth ? truth : NULL, &res);
    if (!st) {
        snprintf(path, sizeof path, "%s/oof.jsonl", out);
        st = pl_audit_write_oof(path, &rs, &res);
    }
    if (!st && !(j = pl_audit_run_to_json(&rs, &res))) st = pl_error(PL_ERR_NOMEM, "out of memory");
    if (!st) {
        cJSON_AddStringToObject(j, "model", am.model);
        cJSON_AddStringToObject(j, "records", records);
        snprintf(path, sizeof path, "%s/audit.json", out);
        st = pl_json_write_atomic(path, j);
    }
    if (!st) {
        printf("records %zu, k %d, CL thresholds legit %.4f phishing %.4f, estimated noise rate %.4f\n", res.n, res.k,
               res.cl.thr[0], res.cl.thr[1], res.cl.noise_rate);
        size_t cnt[PL_AUDIT_N_RULES] = {res.cl.n_prune, res.cl.n_cj, res.cl.n_naive, res.n_naive_circ};
        if (res.have_truth) printf("known flips: %zu (%.2f %%)\n", res.n_true, 100.0 * (double)res.n_true / (double)res.n);
        for (int r = 0; r < PL_AUDIT_N_RULES; r++) {
            if (r == 3 && !res.flag_naive_circ) continue;
            printf("  %-15s flagged %5zu", pl_audit_rule_name(r), cnt[r]);
            if (res.have_truth) {
                /* precision is undefined when a rule flags nothing */
                if (isfinite(res.prf[r].precision)) printf("  precision %.3f", res.prf[r].precision);
                else printf("  precision n/a  ");
                printf("  recall %.3f", res.prf[r].recall);
            }
            printf("\n");
        }
        printf("-> %s/audit.json, %s/oof.jsonl\n", out, out);
    }
    cJSON_Delete(j);
    pl_audit_run_result_free(&res);
    free(truth);
    pl_records_free(&rs);
    return st ? cli_fail(st) : 0;
}
