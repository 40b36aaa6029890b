/* cmd_study.c — `phishlens study run STUDY.json -o DIR [--dry-run] [--force STAGE]`
 * and `phishlens study check STUDY.json` (validate the config only).
 * See docs/study.md.
 */
#include "cli.h"

#include <string.h>

#include "study/study.h"

static int usage(void) {
    fprintf(stderr,
            "usage: phishlens study run STUDY.json -o DIR [--dry-run] [--force STAGE]\n"
            "       phishlens study check STUDY.json\n"
            "  Runs the study grid stage by stage (data, train, eval, explain, interp, diagnose,\n"
            "  report) with a content-hash cache in DIR; writes DIR/report.html and DIR/report.json.\n"
            "  --dry-run      print the plan with cached / to-run tasks and a cost estimate\n"
            "  --force STAGE  rerun STAGE and every later stage even when cached\n");
    return EXIT_USAGE;
}

int cmd_study(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) return usage();
    const char *sub = argv[1];
    if (strcmp(sub, "run") && strcmp(sub, "check")) return cli_usage_error("study", "unknown subcommand '%s' (run, check)", sub);
    const char *cfg_path = NULL, *out = NULL;
    pl_study_opts o;
    pl_study_opts_default(&o);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-o") || !strcmp(a, "--out")) {
            if (i + 1 >= argc) return cli_usage_error("study", "%s needs a folder", a);
            out = argv[++i];
        } else if (!strcmp(a, "--dry-run")) {
            o.dry_run = 1;
        } else if (!strcmp(a, "--force")) {
            if (i + 1 >= argc) return cli_usage_error("study", "--force needs a stage");
            o.force_stage = pl_study_stage_parse(argv[++i]);
            if (o.force_stage < 0)
                return cli_usage_error("study", "--force: unknown stage '%s' (data, train, eval, explain, interp, diagnose, report)",
                                       argv[i]);
        } else if (a[0] == '-') {
            return cli_usage_error("study", "unknown option '%s'", a);
        } else if (!cfg_path) {
            cfg_path = a;
        } else {
            return cli_usage_error("study", "unexpected argument '%s'", a);
        }
    }
    if (!cfg_path) return cli_usage_error("study", "missing STUDY.json");
    pl_study_config c;
    pl_status st = pl_study_config_load(cfg_path, &c);
    if (st) return cli_fail(st);
    if (!strcmp(sub, "check")) {
        printf("%s: valid: %zu corpora, %zu models, %zu paradigms, %zu test corpora\n", cfg_path, c.n_corpora, c.n_models,
               c.n_paradigms, c.n_test);
        pl_study_config_free(&c);
        return 0;
    }
    if (!out) {
        pl_study_config_free(&c);
        return cli_usage_error("study", "missing -o DIR");
    }
    o.progress = !cli_quiet;
    o.log = stdout;
    pl_study_summary s;
    if (o.dry_run) printf("plan for %s -> %s (no task runs):\n", cfg_path, out);
    st = pl_study_run(&c, out, &o, &s);
    if (o.dry_run)
        printf("dry run: %zu tasks, %zu cached, %zu unavailable, %zu to run; estimate %.3g FLOP, ~%.1f s at %.3g FLOP/s "
               "(cost.flops_per_second)\n",
               s.n_tasks, s.n_cached, s.n_unavailable, s.n_tasks - s.n_cached - s.n_unavailable - s.n_failed, s.est_flops,
               s.est_seconds, c.flops_per_second);
    else
        printf("study %s: %zu tasks: %zu ran, %zu cached, %zu not run (unavailable in this build or not applicable), "
               "%zu failed; %.1f s\n",
               c.name, s.n_tasks, s.n_ran, s.n_cached, s.n_unavailable, s.n_failed, s.seconds);
    if (!st && !o.dry_run) printf("report: %s/report.html\n", out);
    pl_study_config_free(&c);
    return st ? cli_fail(st) : 0;
}
