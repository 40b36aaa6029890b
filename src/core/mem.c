/* mem.c — aligned allocation, bump arena, growable buffer. */
#include "core.h"

#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#define ALIGN 64

void pl_keep_freed_memory(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
}

void *pl_alloc_aligned_raw(size_t n) {
    size_t rounded;
    if (!pl_add_ok(n, ALIGN - 1, &rounded)) return NULL;
    rounded &= ~(size_t)(ALIGN - 1);
    if (rounded == 0) rounded = ALIGN;
    void *p = NULL;
    if (posix_memalign(&p, ALIGN, rounded) != 0) return NULL;
    return p;
}

void *pl_alloc_aligned(size_t n) {
    void *p = pl_alloc_aligned_raw(n);
    if (p) memset(p, 0, (n + ALIGN - 1) & ~(size_t)(ALIGN - 1));
    return p;
}

void pl_free_aligned(void *p) { free(p); }

pl_status pl_arena_init(pl_arena *a, size_t cap) {
    a->base = pl_alloc_aligned(cap);
    a->cap = a->base ? cap : 0;
    a->used = 0;
    if (!a->base) return pl_error(PL_ERR_NOMEM, "arena: cannot allocate %zu bytes", cap);
    return PL_OK;
}

void *pl_arena_alloc(pl_arena *a, size_t n) {
    size_t start = (a->used + ALIGN - 1) & ~(size_t)(ALIGN - 1), end;
    if (!pl_add_ok(start, n, &end) || end > a->cap) {
        pl_error(PL_ERR_NOMEM, "arena full: need %zu bytes, %zu of %zu used", n, a->used, a->cap);
        return NULL;
    }
    a->used = end;
    return a->base + start;
}

void pl_arena_reset(pl_arena *a) { a->used = 0; }

void pl_arena_free(pl_arena *a) {
    pl_free_aligned(a->base);
    a->base = NULL;
    a->cap = a->used = 0;
}

pl_status pl_buf_reserve(pl_buf *b, size_t extra) {
    size_t need;
    if (!pl_add_ok(b->len, extra, &need) || !pl_add_ok(need, 1, &need))
        return pl_error(PL_ERR_NOMEM, "buffer size overflow");
    if (need <= b->cap) return PL_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (!pl_mul_ok(cap, 2, &cap)) return pl_error(PL_ERR_NOMEM, "buffer size overflow");
    }
    char *p = realloc(b->data, cap);
    if (!p) return pl_error(PL_ERR_NOMEM, "buffer: cannot grow to %zu bytes", cap);
    b->data = p;
    b->cap = cap;
    return PL_OK;
}

pl_status pl_buf_append(pl_buf *b, const void *p, size_t n) {
    pl_status st = pl_buf_reserve(b, n);
    if (st) return st;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return PL_OK;
}

pl_status pl_buf_printf(pl_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return pl_error(PL_ERR_INVALID, "buffer: bad format");
    pl_status st = pl_buf_reserve(b, (size_t)n);
    if (st) return st;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return PL_OK;
}

void pl_buf_free(pl_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
