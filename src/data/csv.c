/* csv.c — an RFC 4180 CSV reader over a memory buffer.
 *
 * Follows RFC 4180 with the leniency real corpora need: records end at LF,
 * CRLF or a bare CR; quoted fields may contain any of those, and "" stands
 * for one quote; a UTF-8 byte order mark at the start is skipped; blank lines
 * between records are skipped (as Python's csv module does). Deviations are
 * reported, not fatal: a quote inside an unquoted field is kept literally and
 * text after a closing quote is appended (c->stray_quote), and a quote left
 * open at end of input ends the record there (c->unterminated). Comma only;
 * no other dialects. */
#include "data.h"

#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

void pl_csv_init(pl_csv *c, const char *data, size_t len) {
    memset(c, 0, sizeof *c);
    c->data = data;
    c->len = len;
    if (len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3)) c->pos = 3;
    c->line = c->cur_line = 1;
}

void pl_csv_free(pl_csv *c) {
    pl_buf_free(&c->store);
    free(c->off);
    free(c->flen);
    memset(c, 0, sizeof *c);
}

/* Number of LF bytes in s[0..n) (the line count inside quoted fields: every
 * byte of a corpus' text bodies goes through here, on the reading thread). */
static size_t count_lf(const char *s, size_t n) {
    size_t c = 0, i = 0;
#ifdef __SSE2__
    /* per 16 bytes: 1 where LF, summed by psadbw into two 64-bit lanes */
    const __m128i lf = _mm_set1_epi8('\n'), one = _mm_set1_epi8(1), zero = _mm_setzero_si128();
    __m128i acc = zero;
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        acc = _mm_add_epi64(acc, _mm_sad_epu8(_mm_and_si128(_mm_cmpeq_epi8(v, lf), one), zero));
    }
    uint64_t lanes[2];
    _mm_storeu_si128((__m128i *)(void *)lanes, acc);
    c = (size_t)(lanes[0] + lanes[1]);
#endif
    for (; i < n; i++) c += s[i] == '\n';
    return c;
}

static pl_status add_field(pl_csv *c, size_t start) {
    if (c->n_fields == c->cap_fields) {
        size_t cap = c->cap_fields ? c->cap_fields * 2 : 16;
        size_t *o = realloc(c->off, cap * sizeof *o);
        if (!o) return pl_error(PL_ERR_NOMEM, "out of memory");
        c->off = o;
        size_t *l = realloc(c->flen, cap * sizeof *l);
        if (!l) return pl_error(PL_ERR_NOMEM, "out of memory");
        c->flen = l;
        c->cap_fields = cap;
    }
    c->off[c->n_fields] = start;
    c->flen[c->n_fields] = c->store.len - start;
    c->n_fields++;
    return pl_buf_append(&c->store, "", 1); /* NUL-terminate for convenience */
}

int pl_csv_next(pl_csv *c) {
    const char *d = c->data;
    size_t n = c->len, p = c->pos;
    c->n_fields = 0;
    c->store.len = 0;
    c->unterminated = 0;
    c->stray_quote = 0;
    /* skip blank lines between records */
    while (p < n && (d[p] == '\n' || d[p] == '\r')) {
        if (d[p] == '\n') c->cur_line++;
        p++;
    }
    if (p >= n) {
        c->pos = p;
        return 0;
    }
    c->rec_offset = p;
    c->line = c->cur_line;
    for (;;) {
        size_t start = c->store.len;
        if (p < n && d[p] == '"') {
            /* quoted field */
            p++;
            for (;;) {
                const char *q = p < n ? memchr(d + p, '"', n - p) : NULL;
                size_t e = q ? (size_t)(q - d) : n;
                c->cur_line += count_lf(d + p, e - p);
                if (pl_buf_append(&c->store, d + p, e - p)) return -1;
                if (!q) {
                    p = n;
                    c->unterminated = 1;
                    break;
                }
                p = e + 1;
                if (p < n && d[p] == '"') { /* doubled quote */
                    if (pl_buf_append(&c->store, "\"", 1)) return -1;
                    p++;
                    continue;
                }
                break;
            }
            /* text between the closing quote and the next separator is kept */
            size_t e = p;
            while (e < n && d[e] != ',' && d[e] != '\n' && d[e] != '\r') e++;
            if (e > p) {
                c->stray_quote = 1;
                if (pl_buf_append(&c->store, d + p, e - p)) return -1;
            }
            p = e;
        } else {
            size_t e = p;
            while (e < n && d[e] != ',' && d[e] != '\n' && d[e] != '\r') {
                if (d[e] == '"') c->stray_quote = 1;
                e++;
            }
            if (pl_buf_append(&c->store, d + p, e - p)) return -1;
            p = e;
        }
        if (add_field(c, start)) return -1;
        if (p < n && d[p] == ',') {
            p++;
            continue;
        }
        /* end of record */
        if (p < n && d[p] == '\r') p++;
        if (p < n && d[p] == '\n') {
            p++;
            c->cur_line++;
        }
        break;
    }
    c->pos = p;
    return 1;
}
