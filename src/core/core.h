/* core.h — the ground every phishlens module stands on.
 *
 * Status codes with a retrievable message (SQLite style: a function returns a
 * pl_status, pl_errmsg() says what failed and where), a logging callback,
 * aligned allocation and a bump arena, a seedable splittable RNG, hashing,
 * overflow-checked size arithmetic, atomic file writes and a TTY progress bar.
 *
 * The library never calls exit() and never prints except through the logging
 * callback (default: stderr for warnings and errors, silent for debug).
 */
#ifndef PL_CORE_H
#define PL_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PL_VERSION "0.1.0"

/* ---- status codes ------------------------------------------------------ */

typedef enum {
    PL_OK = 0,
    PL_ERR_IO,          /* open/read/write/mmap failed (errno in message) */
    PL_ERR_FORMAT,      /* malformed input file: names field and offset */
    PL_ERR_NOMEM,       /* allocation failed */
    PL_ERR_INVALID,     /* bad argument or option value */
    PL_ERR_UNSUPPORTED, /* valid input we do not handle (dtype, arch, ...) */
    PL_ERR_RANGE,       /* value out of range (token id, length, index) */
    PL_ERR_NOT_FOUND,   /* missing tensor, key, file, record */
    PL_ERR_NUMERIC,     /* NaN/Inf or divergence */
    PL_ERR_INTERRUPTED, /* stopped on request */
    PL_ERR_INTERNAL     /* invariant broken: a bug in phishlens */
} pl_status;

/* Short name of a status ("format error", ...). Never NULL. */
const char *pl_status_str(pl_status st);

/* Record an error for the calling thread and return st, so callers can write
 * `return pl_error(PL_ERR_FORMAT, "%s: offset %zu: bad magic", path, off);`.
 * The message replaces any previous one. */
pl_status pl_error(pl_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix the current message with more context ("loading X: <old message>"). */
pl_status pl_error_wrap(pl_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The calling thread's last error message ("" when none). Valid until the
 * next pl_error call on this thread. */
const char *pl_errmsg(void);
void pl_error_clear(void);

/* ---- logging ----------------------------------------------------------- */

typedef enum { PL_LOG_DEBUG = 0, PL_LOG_INFO, PL_LOG_WARN, PL_LOG_ERROR } pl_log_level;
typedef void (*pl_log_fn)(pl_log_level level, const char *msg, void *user);

/* Install a logging callback (NULL restores the default: stderr, level >= min). */
void pl_log_set_callback(pl_log_fn fn, void *user);
void pl_log_set_level(pl_log_level min_level);
void pl_log(pl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- checked arithmetic ------------------------------------------------ */

/* *out = a*b (or a+b); returns 0 on overflow, leaving *out unspecified. */
static inline int pl_mul_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline int pl_add_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* ---- memory ------------------------------------------------------------ */

/* 64-byte aligned, zeroed allocation; n may be 0. Free with pl_free_aligned. */
void *pl_alloc_aligned(size_t n);
/* The same, not zeroed (for buffers written before they are read). */
void *pl_alloc_aligned_raw(size_t n);
void pl_free_aligned(void *p);
/* Keep freed memory for reuse (glibc: blocks below 256 MiB from the heap,
 * no trimming below 512 MiB free): the runners and the trainer allocate
 * scratch and caches of a few MB per call, which glibc would otherwise
 * serve from fresh mmap'd (zeroed, faulted-in) pages each time. A
 * process-wide setting, made by pl_runner_new and pl_trainer_new; the
 * peak RSS is unchanged. */
void pl_keep_freed_memory(void);

/* Bump arena: one big aligned block handed out in 64-byte-aligned pieces.
 * pl_arena_alloc returns NULL (and sets PL_ERR_NOMEM) when full. */
typedef struct {
    uint8_t *base;
    size_t cap, used;
} pl_arena;
pl_status pl_arena_init(pl_arena *a, size_t cap);
void *pl_arena_alloc(pl_arena *a, size_t n);
void pl_arena_reset(pl_arena *a);
void pl_arena_free(pl_arena *a);

/* Growable byte buffer (for building strings and files). */
typedef struct {
    char *data;
    size_t len, cap;
} pl_buf;
pl_status pl_buf_reserve(pl_buf *b, size_t extra);
pl_status pl_buf_append(pl_buf *b, const void *p, size_t n);
pl_status pl_buf_printf(pl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pl_buf_free(pl_buf *b);

/* ---- RNG --------------------------------------------------------------- */

/* xoshiro256** seeded through splitmix64. Splitting derives an independent
 * stream from (parent state, stream id) without advancing the parent, so
 * work item i can get pl_rng_split(&master, i) regardless of thread count. */
typedef struct {
    uint64_t s[4];
} pl_rng;
void pl_rng_seed(pl_rng *r, uint64_t seed);
pl_rng pl_rng_split(const pl_rng *r, uint64_t stream);
uint64_t pl_rng_u64(pl_rng *r);
uint64_t pl_rng_below(pl_rng *r, uint64_t n);   /* uniform in [0, n), n > 0 */
double pl_rng_uniform(pl_rng *r);               /* [0, 1) with 53 bits */
float pl_rng_normal(pl_rng *r);                 /* N(0,1), Box-Muller */
/* Fisher-Yates; elem_size must be <= 256 bytes (shuffle pointers or indices). */
void pl_rng_shuffle(pl_rng *r, void *base, size_t n, size_t elem_size);

/* ---- hashing ----------------------------------------------------------- */

uint64_t pl_hash64(const void *p, size_t n, uint64_t seed); /* XXH3-64 */
/* Hash of a whole file's contents; returns PL_ERR_IO on failure. */
pl_status pl_hash_file(const char *path, uint64_t *out);

/* ---- files ------------------------------------------------------------- */

/* Read a whole file into a NUL-terminated malloc'd buffer. */
pl_status pl_read_file(const char *path, char **data, size_t *len);

/* Atomic write: output goes to "<path>.tmp.<pid>"; commit fsyncs and renames
 * it over path; abort (or a failed commit) removes it. No partial output is
 * ever visible at path. */
typedef struct {
    FILE *fp;
    char *path, *tmp;
    int failed;
} pl_afile;
pl_status pl_afile_open(pl_afile *f, const char *path);
pl_status pl_afile_write(pl_afile *f, const void *p, size_t n);
pl_status pl_afile_printf(pl_afile *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
pl_status pl_afile_commit(pl_afile *f);
void pl_afile_abort(pl_afile *f);
/* Convenience: write a buffer atomically. */
pl_status pl_write_file_atomic(const char *path, const void *p, size_t n);

/* Call fn for each non-blank line of data[0..len): the line's bytes without
 * its '\n' (and without a trailing '\r'), with its 1-based line number.
 * Lines holding only spaces and tabs are skipped. Stops at the first status
 * fn returns other than PL_OK and returns it. (The JSONL readers use it.) */
typedef pl_status (*pl_line_fn)(const char *line, size_t len, size_t lineno, void *user);
pl_status pl_for_each_line(const char *data, size_t len, pl_line_fn fn, void *user);

/* mkdir -p. */
pl_status pl_mkdirs(const char *path);

/* ---- progress ---------------------------------------------------------- */

/* A progress bar on stderr with rate and ETA. Silent when stderr is not a
 * terminal, or when pl_progress_set_quiet(1) was called. */
typedef struct {
    const char *label;
    const char *unit;
    int64_t total, done;
    double t0, last_draw;
    int active;
} pl_progress;
void pl_progress_set_quiet(int quiet);
void pl_progress_begin(pl_progress *p, const char *label, int64_t total, const char *unit);
void pl_progress_update(pl_progress *p, int64_t done);
void pl_progress_end(pl_progress *p);

/* Monotonic wall clock in seconds. */
double pl_time_now(void);

/* Number of threads OpenMP will use (1 without OpenMP). */
int pl_num_threads(void);
void pl_set_num_threads(int n);

#endif
