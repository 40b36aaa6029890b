/* cmd_data_import.c — `phishlens data import INPUT... --source NAME -o out.jsonl`:
 * read corpora (CSV, mbox, .eml, mail directories, JSONL) into normalized
 * records (docs/records.md) and print what was read, kept and skipped. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "data/data.h"

static const char *usage_text =
    "usage: phishlens data import INPUT... --source NAME -o OUT.jsonl [options]\n"
    "\n"
    "INPUT is a CSV file, an mbox, an .eml/RFC 822 file, a directory of raw\n"
    "messages (SpamAssassin layout, maildir cur/ new/), or a JSONL file.\n"
    "\n"
    "options:\n"
    "  --source NAME       source name, stored in each record and used in ids (required)\n"
    "  -o, --output FILE   records JSONL, written atomically (required)\n"
    "  --format F          auto (default), csv, mbox (mboxo), mboxrd, eml, dir, jsonl\n"
    "  --text-col NAME     CSV/JSONL column holding the body\n"
    "  --label-col NAME    CSV/JSONL column holding the label\n"
    "  --positive VALUE    label value that means 1 (every other value is 0)\n"
    "  --label-map MAP     directory-name labels, e.g. spam=1,ham=0\n"
    "                      (default: spam/phish/phishing=1, ham/legit/legitimate=0)\n"
    "  --label L           the same label (1, 0 or -1) for every record\n"
    "  --strict            a skipped item is an error (names file and line/offset)\n"
    "  -h, --help          this text\n";

static int need_arg(int i, int argc, const char *opt) {
    if (i + 1 >= argc) {
        cli_usage_error("data import", "%s needs a value", opt);
        return 0;
    }
    return 1;
}

int cmd_data_import(int argc, char **argv) {
    pl_ingest_opts o;
    pl_ingest_opts_init(&o);
    o.source = NULL;
    const char *out = NULL;
    const char **inputs = calloc((size_t)argc, sizeof *inputs);
    size_t n_in = 0;
    if (!inputs) return cli_fail(pl_error(PL_ERR_NOMEM, "out of memory"));
    int rc = -1;
    for (int i = 1; i < argc && rc < 0; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            rc = 0;
        } else if (!strcmp(a, "--source")) {
            if (!need_arg(i, argc, a)) rc = EXIT_USAGE;
            else o.source = argv[++i];
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!need_arg(i, argc, a)) rc = EXIT_USAGE;
            else out = argv[++i];
        } else if (!strcmp(a, "--format")) {
            if (!need_arg(i, argc, a)) rc = EXIT_USAGE;
            else {
                int f = pl_ingest_format_parse(argv[++i]);
                if (f < 0)
                    rc = cli_usage_error("data import", "--format: unknown format '%s' (auto, csv, mbox, mboxrd, eml, dir, jsonl)",
                                         argv[i]);
                else o.format = (pl_ingest_format)f;
            }
        } else if (!strcmp(a, "--text-col")) {
            if (!need_arg(i, argc, a)) rc = EXIT_USAGE;
            else o.text_col = argv[++i];
        } else if (!strcmp(a, "--label-col")) {
            if (!need_arg(i, argc, a)) rc = EXIT_USAGE;
            else o.label_col = argv[++i];
        } else if (!strcmp(a, "--positive")) {
            if (!need_arg(i, argc, a)) rc = EXIT_USAGE;
            else o.positive = argv[++i];
        } else if (!strcmp(a, "--label-map")) {
            if (!need_arg(i, argc, a)) rc = EXIT_USAGE;
            else o.label_map = argv[++i];
        } else if (!strcmp(a, "--label")) {
            long v;
            if (!need_arg(i, argc, a) || !cli_parse_int("data import", "--label", argv[++i], -1, 1, &v)) rc = EXIT_USAGE;
            else o.fixed_label = (int)v;
        } else if (!strcmp(a, "--strict")) {
            o.strict = 1;
        } else if (a[0] == '-' && a[1]) {
            rc = cli_usage_error("data import", "unknown option '%s'", a);
        } else {
            inputs[n_in++] = a;
        }
    }
    if (rc < 0) {
        if (!n_in) rc = cli_usage_error("data import", "no INPUT given");
        else if (!o.source) rc = cli_usage_error("data import", "--source NAME is required");
        else if (!out) rc = cli_usage_error("data import", "-o OUT.jsonl is required");
    }
    if (rc >= 0) {
        free(inputs);
        return rc;
    }
    pl_ingest_stats *per = calloc(n_in, sizeof *per);
    pl_ingest_stats total;
    memset(&total, 0, sizeof total);
    double t0 = pl_time_now();
    pl_status st = per ? pl_ingest_to_jsonl(inputs, n_in, &o, out, per, &total) : pl_error(PL_ERR_NOMEM, "out of memory");
    double dt = pl_time_now() - t0;
    if (st) {
        free(per);
        free(inputs);
        return cli_fail(st);
    }
    pl_buf b = {0};
    for (size_t i = 0; i < n_in; i++) {
        b.len = 0;
        pl_ingest_stats_format(&per[i], &b);
        if (!cli_quiet) printf("%s: %s\n", inputs[i], b.data ? b.data : "");
    }
    b.len = 0;
    pl_ingest_stats_format(&total, &b);
    if (!cli_quiet && n_in > 1) printf("total: %s\n", b.data ? b.data : "");
    if (!cli_quiet)
        printf("wrote %s (%lld records, %.1f MB read in %.2f s)\n", out, (long long)total.kept,
               (double)total.bytes / 1e6, dt);
    pl_buf_free(&b);
    free(per);
    free(inputs);
    return 0;
}
