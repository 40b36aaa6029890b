/* harness.h — the phishlens test harness: checks that fail loudly.
 *
 * A test program calls T_BEGIN(), runs checks, and returns T_END(). Every
 * failing check prints "FAIL file:line: what (got, want, tol)" and is counted;
 * T_END prints "#counts P F S" (read by scripts/run_tests.sh) and returns
 * non-zero when anything failed. Skips print "SKIP reason".
 *
 * Shared data: pl_test_shared() returns the path of ../shared (or $PL_SHARED)
 * when present. When absent it returns NULL; under CI=true that is a failure.
 */
#ifndef PL_TEST_HARNESS_H
#define PL_TEST_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"

static int t_pass, t_fail, t_skip;
static int t_fail_prints;

#define T_BEGIN() do { t_pass = t_fail = t_skip = 0; } while (0)
#define T_END() (printf("#counts %d %d %d\n", t_pass, t_fail, t_skip), t_fail ? 1 : 0)

static inline void t_report(int ok, const char *file, int line, const char *msg) {
    if (ok) { t_pass++; return; }
    t_fail++;
    if (t_fail_prints++ < 200) printf("FAIL %s:%d: %s\n", file, line, msg);
}

/* CHECK(cond, fmt, ...) — the message is printed only on failure. */
#define CHECK(cond, ...) do { \
    char t_msg_[512]; int t_ok_ = !!(cond); \
    if (!t_ok_) snprintf(t_msg_, sizeof t_msg_, __VA_ARGS__); else t_msg_[0] = 0; \
    t_report(t_ok_, __FILE__, __LINE__, t_msg_); } while (0)

/* CHECK_OK(status_expr) — expects PL_OK and prints pl_errmsg() otherwise. */
#define CHECK_OK(expr) do { pl_status t_st_ = (expr); \
    CHECK(t_st_ == PL_OK, "%s -> %s: %s", #expr, pl_status_str(t_st_), pl_errmsg()); } while (0)

/* CHECK_NEAR(got, want, tol) — |got - want| <= tol (NaN fails). */
#define CHECK_NEAR(got, want, tol) do { double t_g_ = (double)(got), t_w_ = (double)(want); \
    CHECK(fabs(t_g_ - t_w_) <= (double)(tol), "%s = %.9g, want %.9g (tol %.3g)", #got, t_g_, t_w_, (double)(tol)); } while (0)

#define SKIP(...) do { t_skip++; printf("SKIP "); printf(__VA_ARGS__); printf("\n"); } while (0)

/* Compare float arrays; prints the first few mismatches; one check. Returns max |diff|. */
static inline double t_check_floats(const char *what, const float *got, const float *want, size_t n,
                                    double tol, const char *file, int line) {
    double maxd = 0; size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= tol)) {
            if (bad < 5) printf("  %s[%zu]: got %.9g want %.9g (tol %.3g)\n", what, i, (double)got[i], (double)want[i], tol);
            bad++;
            if (isnan(d)) d = INFINITY;
        }
        if (d > maxd) maxd = d;
    }
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %zu of %zu values off, max |diff| %.3g > tol %.3g", what, bad, n, maxd, tol);
    t_report(bad == 0, file, line, msg);
    return maxd;
}
#define CHECK_FLOATS(what, got, want, n, tol) t_check_floats(what, got, want, n, tol, __FILE__, __LINE__)

/* Path of the shared data directory or NULL (after printing why). Sets
 * *must_fail when CI=true, in which case the caller's absence is a failure
 * (this function already counts it). */
static inline const char *pl_test_shared(void) {
    static char buf[4096];
    const char *env = getenv("PL_SHARED");
    const char *cands[] = {env, "../shared", "../../shared"};
    struct stat sb;
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
        if (!cands[i]) continue;
        snprintf(buf, sizeof buf, "%s/design", cands[i]);
        if (stat(buf, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            snprintf(buf, sizeof buf, "%s", cands[i]);
            return buf;
        }
    }
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0) {
        t_report(0, __FILE__, __LINE__, "../shared is absent under CI=true");
    } else {
        SKIP("../shared not found (set PL_SHARED); tests that read it are skipped");
    }
    return NULL;
}

/* Build "<shared>/<rel>" into buf. */
static inline const char *t_path(char *buf, size_t n, const char *shared, const char *rel) {
    snprintf(buf, n, "%s/%s", shared, rel);
    return buf;
}

#endif
