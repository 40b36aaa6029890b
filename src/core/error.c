/* error.c — per-thread error message and the logging callback. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

#define ERRMSG_CAP 1024
static _Thread_local char errmsg[ERRMSG_CAP];

const char *pl_status_str(pl_status st) {
    switch (st) {
    case PL_OK: return "ok";
    case PL_ERR_IO: return "I/O error";
    case PL_ERR_FORMAT: return "format error";
    case PL_ERR_NOMEM: return "out of memory";
    case PL_ERR_INVALID: return "invalid argument";
    case PL_ERR_UNSUPPORTED: return "unsupported";
    case PL_ERR_RANGE: return "out of range";
    case PL_ERR_NOT_FOUND: return "not found";
    case PL_ERR_NUMERIC: return "numeric error";
    case PL_ERR_INTERRUPTED: return "interrupted";
    case PL_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

pl_status pl_error(pl_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, sizeof errmsg, fmt, ap);
    va_end(ap);
    return st;
}

pl_status pl_error_wrap(pl_status st, const char *fmt, ...) {
    char old[ERRMSG_CAP];
    memcpy(old, errmsg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(errmsg, sizeof errmsg, fmt, ap);
    va_end(ap);
    /* Append ": <old message>", cut to fit (by hand: snprintf with %s of a
     * buffer as large as the destination trips -Wformat-truncation). */
    if (n >= 0 && old[0]) {
        size_t at = (size_t)n < sizeof errmsg ? (size_t)n : sizeof errmsg - 1;
        const char *sep = ": ";
        for (size_t i = 0; sep[i] && at + 1 < sizeof errmsg; i++) errmsg[at++] = sep[i];
        for (size_t i = 0; old[i] && at + 1 < sizeof errmsg; i++) errmsg[at++] = old[i];
        errmsg[at] = 0;
    }
    return st;
}

const char *pl_errmsg(void) { return errmsg; }
void pl_error_clear(void) { errmsg[0] = 0; }

/* ---- logging ---- */

static pl_log_fn log_fn;
static void *log_user;
static pl_log_level log_min = PL_LOG_WARN;

void pl_log_set_callback(pl_log_fn fn, void *user) {
    log_fn = fn;
    log_user = user;
}

void pl_log_set_level(pl_log_level min_level) { log_min = min_level; }

void pl_log(pl_log_level level, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (log_fn) {
        log_fn(level, msg, log_user);
        return;
    }
    if (level < log_min) return;
    static const char *names[] = {"debug", "info", "warning", "error"};
    fprintf(stderr, "phishlens: %s: %s\n", names[level], msg);
}
