/* ingest.c — benchmark: import every corpus in ../shared/data with
 * phishlens (the same work as `phishlens data import`), then run the Python
 * baseline bench/ingest_py.py (csv + email + html.parser + json) on the same
 * inputs, and print MB/s, records/s and the speed ratio.
 *
 * usage: build/bench/ingest [SHARED_DIR] [--no-python]   (run from the repo root) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "data/data.h"

typedef struct {
    const char *rel, *source;
    int fixed_label;
} input;

static const input inputs[] = {
    {"nazario_curated_csv/Nazario.csv", "nazario", -2},
    {"lingspam_csv/lingspam_bare.csv", "lingspam", -2},
    {"enron_spam_csv/enron1.csv", "enron", -2},
    {"enron_spam_csv/enron2.csv", "enron", -2},
    {"enron_spam_csv/enron3.csv", "enron", -2},
    {"enron_spam_csv/enron4.csv", "enron", -2},
    {"enron_spam_csv/enron5.csv", "enron", -2},
    {"enron_spam_csv/enron6.csv", "enron", -2},
    {"nazario_mbox/phishing0.mbox", "nazario_mbox", 1},
    {"spamassassin_raw", "spamassassin", -2},
    {"mime_fixtures/spamscope_mail_parser", "spamscope", -2},
    {"mime_fixtures/zbateson_mail_mime_parser", "zbateson", -2},
};

/* The 1-minute load average (the machine is shared: a measurement means
 * little without it), or -1 where /proc/loadavg is missing. */
static double load1(void) {
    FILE *fp = fopen("/proc/loadavg", "r");
    double l = -1;
    if (fp) {
        if (fscanf(fp, "%lf", &l) != 1) l = -1;
        fclose(fp);
    }
    return l;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec * 1e-6;
}

int main(int argc, char **argv) {
    const char *shared = "../shared";
    int python = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-python")) python = 0;
        else shared = argv[i];
    }
    char out[64];
    snprintf(out, sizeof out, "/tmp/pl_bench_ingest_%d.jsonl", (int)getpid());
    int64_t recs = 0, bytes = 0;
    double best = 1e30, best_cpu = 1e30;
    double load_pl = load1();
    /* best of 3: the first run also warms the page cache for both sides */
    for (int rep = 0; rep < 3; rep++) {
        pl_ingest_stats total;
        memset(&total, 0, sizeof total);
        double t0 = pl_time_now(), c0 = cpu_seconds();
        for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
            char p[1024], o1[96];
            snprintf(p, sizeof p, "%s/data/%s", shared, inputs[i].rel);
            snprintf(o1, sizeof o1, "%s.%zu", out, i);
            pl_ingest_opts o;
            pl_ingest_opts_init(&o);
            o.source = inputs[i].source;
            o.fixed_label = inputs[i].fixed_label;
            const char *one[] = {p};
            pl_status st = pl_ingest_to_jsonl(one, 1, &o, o1, NULL, &total);
            if (st) {
                fprintf(stderr, "ingest bench: %s\n", pl_errmsg());
                return 1;
            }
            unlink(o1);
        }
        double dt = pl_time_now() - t0, dc = cpu_seconds() - c0;
        if (dt < best) best = dt;
        if (dc < best_cpu) best_cpu = dc;
        recs = total.kept;
        bytes = total.bytes;
    }
    printf("phishlens ingest: %lld records, %.1f MB in %.3f s wall (%.3f s CPU, %d threads): %.1f MB/s, %.0f records/s "
           "(best of 3; load %.2f -> %.2f)\n",
           (long long)recs, (double)bytes / 1e6, best, best_cpu, pl_num_threads(), (double)bytes / 1e6 / best,
           (double)recs / best, load_pl, load1());
    double load_py = load1();
    if (!python) return 0;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "python3 bench/ingest_py.py '%s' %s.py", shared, out);
    FILE *fp = popen(cmd, "r");
    if (!fp) {
        fprintf(stderr, "ingest bench: cannot run python3\n");
        return 1;
    }
    char line[512];
    long long pn = 0, pb = 0;
    double ps = 0, pc = 0;
    int got = 0;
    while (fgets(line, sizeof line, fp))
        if (sscanf(line, "py_ingest records=%lld bytes=%lld seconds=%lf cpu=%lf", &pn, &pb, &ps, &pc) == 4) got = 1;
    int rc = pclose(fp);
    snprintf(cmd, sizeof cmd, "%s.py", out);
    unlink(cmd);
    if (!got || rc != 0 || ps <= 0) {
        fprintf(stderr, "ingest bench: python baseline failed (rc %d)\n", rc);
        return 1;
    }
    printf("python ingest:    %lld records, %.1f MB in %.3f s wall (%.3f s CPU, 1 thread): %.1f MB/s, %.0f records/s "
           "(csv + email + html.parser; load %.2f -> %.2f)\n",
           pn, (double)pb / 1e6, ps, pc, (double)pb / 1e6 / ps, (double)pn / ps, load_py, load1());
    printf("speedup (MB/s ratio): %.1fx wall, %.1fx CPU time (goal >= 20x)\n", ((double)bytes / best) / ((double)pb / ps),
           ((double)bytes / best_cpu) / ((double)pb / pc));
    return 0;
}
