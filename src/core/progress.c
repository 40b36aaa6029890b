/* progress.c — a TTY progress bar with rate and ETA, and small runtime helpers
 * (monotonic clock, thread count). Silent when stderr is not a terminal. */
#include "core.h"

#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static int quiet_flag;

void pl_progress_set_quiet(int quiet) { quiet_flag = quiet; }

double pl_time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_secs(char *out, size_t n, double s) {
    if (s < 0 || s > 1e7) {
        snprintf(out, n, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else snprintf(out, n, "%02ld:%02ld", t / 60, t % 60);
}

static void draw(pl_progress *p, int final) {
    double now = pl_time_now(), el = now - p->t0;
    double rate = el > 0 ? (double)p->done / el : 0;
    char eta[32], elapsed[32];
    fmt_secs(elapsed, sizeof elapsed, el);
    fmt_secs(eta, sizeof eta, rate > 0 && p->total > 0 ? (double)(p->total - p->done) / rate : -1);
    int width = 24, fill = p->total > 0 ? (int)((double)width * (double)p->done / (double)p->total) : 0;
    if (fill > width) fill = width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    if (p->total > 0)
        fprintf(stderr, "\r%-16s [%s] %lld/%lld %s  %.1f %s/s  %s ETA %s\033[K", p->label, bar,
                (long long)p->done, (long long)p->total, p->unit, rate, p->unit, elapsed, final ? "--:--" : eta);
    else
        fprintf(stderr, "\r%-16s %lld %s  %.1f %s/s  %s\033[K", p->label, (long long)p->done, p->unit, rate,
                p->unit, elapsed);
    if (final) fputc('\n', stderr);
    fflush(stderr);
    p->last_draw = now;
}

void pl_progress_begin(pl_progress *p, const char *label, int64_t total, const char *unit) {
    p->label = label;
    p->unit = unit ? unit : "it";
    p->total = total;
    p->done = 0;
    p->t0 = pl_time_now();
    p->last_draw = 0;
    p->active = !quiet_flag && isatty(STDERR_FILENO);
}

void pl_progress_update(pl_progress *p, int64_t done) {
    p->done = done;
    if (!p->active) return;
    if (pl_time_now() - p->last_draw < 0.1 && done != p->total) return;
    draw(p, 0);
}

void pl_progress_end(pl_progress *p) {
    if (p->active) draw(p, 1);
    p->active = 0;
}

int pl_num_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void pl_set_num_threads(int n) {
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads(n);
#else
    (void)n;
#endif
}
