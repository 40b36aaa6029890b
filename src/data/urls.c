/* urls.c — text helpers for ingest: UTF-8 validation and repair, URL
 * extraction from plain text, and host / base-domain extraction used by the
 * link mismatch flag.
 *
 * UTF-8 validity follows RFC 3629 (no overlongs, no surrogates, <= U+10FFFF).
 * URL scanning is deliberately simple (no full RFC 3986 grammar): a URL starts
 * at "http://", "https://", "ftp://" or "www." and runs to whitespace, a quote
 * or an angle bracket; trailing punctuation is trimmed. pl_urls_scan_defanged
 * also undoes the common defangings (hxxp, [.], [:], "dot", zero-width
 * characters) and reports which. pl_urls_scan_tokenized rebuilds the
 * tokenized URLs of preprocessed corpora ("www . x . com", as in Enron-Spam
 * and Ling-Spam). */
#define _GNU_SOURCE /* memmem */
#include "data.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;   /* overlong */
        if (c == 0xED && s[1] >= 0xA0) return 0;  /* surrogate */
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0;   /* overlong */
        if (c == 0xF4 && s[1] >= 0x90) return 0;  /* > U+10FFFF */
        return 4;
    }
    return 0;
}

int pl_utf8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
#ifdef __SSE2__
        /* fast path: 16 ASCII non-NUL bytes at a time */
        while (i + 16 <= n) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
            if (_mm_movemask_epi8(_mm_or_si128(v, _mm_cmpeq_epi8(v, _mm_setzero_si128())))) break;
            i += 16;
        }
#endif
        /* fast path: 8 ASCII non-NUL bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if ((w & 0x8080808080808080ull) || ((w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull)) break;
            i += 8;
        }
        if (i >= n) break;
        if (p[i] == 0) return 0;
        size_t k = utf8_seq(p + i, n - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

pl_status pl_utf8_repair(const char *s, size_t n, pl_buf *out, size_t *n_repaired, size_t *n_nul) {
    if (pl_utf8_valid(s, n)) return pl_buf_append(out, s, n);
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0, bad = 0, nul = 0;
    pl_status st = pl_buf_reserve(out, n + n / 2 + 1);
    while (!st && i < n) {
        size_t k = p[i] ? utf8_seq(p + i, n - i) : 0;
        if (k) {
            i += k;
            run += k;
            continue;
        }
        if (run) st = pl_buf_append(out, s + i - run, run);
        run = 0;
        if (st) break;
        if (p[i] == 0) nul++;
        else {
            bad++;
            st = pl_buf_append(out, "\xEF\xBF\xBD", 3);
        }
        i++;
    }
    if (!st && run) st = pl_buf_append(out, s + i - run, run);
    if (n_repaired) *n_repaired += bad;
    if (n_nul) *n_nul += nul;
    return st;
}

/* ---- URL scanning ---- */

static int url_char(unsigned char c) {
    if (c <= 0x20 || c == 0x7F) return 0;
    return !strchr("<>\"'`{}|\\^", c);
}

static int starts_ci_n(const char *s, size_t n, const char *pfx, size_t k) {
    if (n < k) return 0;
    for (size_t i = 0; i < k; i++)
        if ((pfx[i] >= 'a' && pfx[i] <= 'z' ? (s[i] | 0x20) : s[i]) != pfx[i]) return 0;
    return 1;
}
#define starts_ci(s, n, lit) starts_ci_n(s, n, lit, sizeof lit - 1)

/* The URL starting at text[i] (n bytes in all), or 0 when none starts there:
 * a scheme or "www." prefix not glued to a preceding word, a host-like start,
 * then URL characters minus trailing punctuation. */
static size_t url_at(const char *text, size_t n, size_t i) {
    const char *t = text + i;
    size_t left = n - i, skip;
    if (starts_ci(t, left, "http://")) skip = 7;
    else if (starts_ci(t, left, "https://")) skip = 8;
    else if (starts_ci(t, left, "ftp://")) skip = 6;
    else if (starts_ci(t, left, "www.")) skip = 4;
    else return 0;
    /* must not be glued to a preceding word character ("xhttp://", "awww.") */
    if (i > 0 && (isalnum((unsigned char)text[i - 1]) || text[i - 1] == '.' || text[i - 1] == '/')) return 0;
    size_t e = i + skip;
    while (e < n && url_char((unsigned char)text[e])) e++;
    /* trim trailing punctuation; keep ')' or ']' only when balanced */
    while (e > i + skip) {
        char c = text[e - 1];
        if (strchr(".,;:!?*'", c)) {
            e--;
            continue;
        }
        if (c == ')' || c == ']') {
            char open = c == ')' ? '(' : '[';
            int bal = 0;
            for (size_t k = i; k < e; k++) bal += text[k] == open ? 1 : text[k] == c ? -1 : 0;
            if (bal < 0) {
                e--;
                continue;
            }
        }
        break;
    }
    /* require something host-like after the prefix: a letter/digit and, for www., a dot */
    size_t hlen = e - i - skip;
    int ok = hlen > 0 && isalnum((unsigned char)text[i + skip]);
    if (ok && skip == 4) ok = memchr(text + i + skip, '.', hlen) != NULL;
    return ok ? e : 0;
}

/* Next position >= from where a URL prefix may start. Prefixes are found
 * through rare anchors instead of testing every byte: "://" (then the scheme
 * before it) and "." (preceded by "www"). Returns n when there is none. */
static size_t next_candidate(const char *text, size_t n, size_t from, size_t *colon, size_t *dot) {
    /* *colon and *dot cache the next anchors found so far (positions of the
     * prefix start), or SIZE_MAX when they must be searched again */
    size_t cf = from;
    while (*colon == SIZE_MAX || *colon < from) {
        const char *p = cf < n ? memchr(text + cf, ':', n - cf) : NULL;
        if (!p) {
            *colon = n;
            break;
        }
        size_t c = (size_t)(p - text);
        cf = c + 1;
        if (n - c < 3 || text[c + 1] != '/' || text[c + 2] != '/') continue;
        size_t start = n;
        if (c >= 5 && starts_ci(text + c - 5, 8, "https://")) start = c - 5;
        else if (c >= 4 && starts_ci(text + c - 4, 7, "http://")) start = c - 4;
        else if (c >= 3 && starts_ci(text + c - 3, 6, "ftp://")) start = c - 3;
        if (start != n && start >= from) *colon = start;
    }
    size_t f = from;
    while (*dot == SIZE_MAX || *dot < from) {
        const char *p = f < n ? memchr(text + f, '.', n - f) : NULL;
        if (!p) {
            *dot = n;
            break;
        }
        size_t d = (size_t)(p - text);
        if (d >= 3 && d - 3 >= from && ((text[d - 1] | 0x20) == 'w') && ((text[d - 2] | 0x20) == 'w') &&
            ((text[d - 3] | 0x20) == 'w')) {
            *dot = d - 3;
            break;
        }
        f = d + 1;
    }
    return *colon < *dot ? *colon : *dot;
}

pl_status pl_urls_scan(const char *text, size_t n, pl_url_fn fn, void *user) {
    size_t i = 0, colon = SIZE_MAX, dot = SIZE_MAX;
    while (i < n) {
        size_t c = next_candidate(text, n, i, &colon, &dot);
        if (c >= n) break;
        size_t e = url_at(text, n, c);
        if (e) {
            pl_status st = fn(text + c, e - c, user);
            if (st) return st;
            i = e;
        } else {
            i = c + 1;
        }
    }
    return PL_OK;
}

int pl_url_host(const char *url, size_t n, char *out, size_t cap) {
    const char *p = url, *end = url + n;
    while (p < end && isspace((unsigned char)*p)) p++;
    /* skip scheme */
    const char *c = p;
    while (c < end && (isalnum((unsigned char)*c) || *c == '+' || *c == '-' || *c == '.')) c++;
    if (c + 2 < end && c[0] == ':' && c[1] == '/' && c[2] == '/') p = c + 3;
    else if (c < end && *c == ':' && c > p && starts_ci(p, (size_t)(end - p), "mailto:")) return 0;
    /* authority ends at / ? # or whitespace */
    const char *a = p;
    while (a < end && !strchr("/?#", *a) && !isspace((unsigned char)*a)) a++;
    /* drop userinfo */
    const char *at = NULL;
    for (const char *k = p; k < a; k++)
        if (*k == '@') at = k;
    if (at) p = at + 1;
    /* drop port */
    const char *h_end = a;
    for (const char *k = p; k < a; k++)
        if (*k == ':') { h_end = k; break; }
    size_t len = (size_t)(h_end - p);
    while (len && p[len - 1] == '.') len--;
    if (len == 0 || len + 1 > cap) return 0;
    int dot = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '.') dot = 1;
        else if (!(isalnum(ch) || ch == '-' || ch >= 0x80)) return 0;
        out[i] = (char)tolower(ch);
    }
    out[len] = 0;
    return dot;
}

const char *pl_host_base(const char *host) {
    size_t n = strlen(host);
    const char *dots[3] = {NULL, NULL, NULL}; /* last, second-last, third-last dot */
    int nd = 0;
    for (size_t i = n; i-- > 0;) {
        if (host[i] == '.') {
            if (nd < 3) dots[nd] = host + i;
            nd++;
            if (nd == 3) break;
        }
    }
    if (nd < 2) return host;
    /* second-level label: between dots[1] and dots[0] */
    size_t sl = (size_t)(dots[0] - dots[1] - 1);
    static const char *const sld[] = {"co", "com", "net", "org", "gov", "edu", "ac", "or", "ne", "go", "mil"};
    int public2 = 0;
    for (size_t i = 0; i < sizeof sld / sizeof *sld; i++)
        if (strlen(sld[i]) == sl && !memcmp(dots[1] + 1, sld[i], sl)) public2 = 1;
    /* only for two-letter country TLDs (co.uk, com.au), not example.com.net */
    if (public2 && strlen(dots[0] + 1) == 2) return nd >= 3 ? dots[2] + 1 : host;
    return dots[1] + 1;
}

/* ---- obfuscated (defanged) URLs ---- */

const char *pl_defang_kind_name(int k) {
    static const char *const names[PL_DEFANG_N] = {"hxxp", "bracket_colon", "bracket_dot", "dot_word", "zero_width"};
    return k >= 0 && k < PL_DEFANG_N ? names[k] : "?";
}

/* Length of a zero-width or invisible format character at s (U+200B..U+200D,
 * U+2060, U+FEFF, U+00AD soft hyphen), else 0. */
static size_t zero_width_at(const unsigned char *s, size_t n) {
    if (n >= 3 && s[0] == 0xE2 && s[1] == 0x80 && s[2] >= 0x8B && s[2] <= 0x8D) return 3;
    if (n >= 3 && s[0] == 0xE2 && s[1] == 0x81 && s[2] == 0xA0) return 3;
    if (n >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) return 3;
    if (n >= 2 && s[0] == 0xC2 && s[1] == 0xAD) return 2;
    return 0;
}

static int label_char(unsigned char c) { return isalnum(c) || c == '-' || c >= 0x80; }

/* A defanging at text[i]: its length and kind, and the replacement (rep,
 * rep_n bytes; rep_n 0 = the bytes are dropped). 0 when none starts here. */
static size_t defang_at(const char *text, size_t n, size_t i, int *kind, const char **rep, size_t *rep_n) {
    const unsigned char *t = (const unsigned char *)text + i;
    size_t left = n - i;
    size_t z = zero_width_at(t, left);
    if (z) {
        *kind = PL_DEFANG_ZERO_WIDTH;
        *rep = "";
        *rep_n = 0;
        return z;
    }
    switch (t[0]) {
    case 'h':
    case 'H':
        /* hxxp / hxxps (any case), not glued to a preceding word */
        if (left >= 4 && (t[1] | 0x20) == 'x' && (t[2] | 0x20) == 'x' && (t[3] | 0x20) == 'p' &&
            (i == 0 || !isalnum((unsigned char)text[i - 1]))) {
            size_t k = 4;
            if (k < left && (t[k] | 0x20) == 's') k++;
            /* must be followed by a (possibly defanged) "://" */
            if (starts_ci((const char *)t + k, left - k, "://") || starts_ci((const char *)t + k, left - k, "[:]//") ||
                starts_ci((const char *)t + k, left - k, "[://]")) {
                *kind = PL_DEFANG_HXXP;
                *rep = k == 5 ? "https" : "http";
                *rep_n = k;
                return k;
            }
        }
        return 0;
    case '[':
    case '(':
    case '{': {
        char close = t[0] == '[' ? ']' : t[0] == '(' ? ')' : '}';
        if (left >= 3 && t[1] == '.' && t[2] == close) {
            *kind = PL_DEFANG_BRACKET_DOT;
            *rep = ".";
            *rep_n = 1;
            return 3;
        }
        if (left >= 5 && starts_ci((const char *)t + 1, left - 1, "dot") && t[4] == close) {
            *kind = PL_DEFANG_BRACKET_DOT;
            *rep = ".";
            *rep_n = 1;
            return 5;
        }
        if (t[0] == '[' && left >= 3 && t[1] == ':' && t[2] == ']') {
            *kind = PL_DEFANG_BRACKET_COLON;
            *rep = ":";
            *rep_n = 1;
            return 3;
        }
        if (t[0] == '[' && left >= 5 && !memcmp(t + 1, "://]", 4)) {
            *kind = PL_DEFANG_BRACKET_COLON;
            *rep = "://";
            *rep_n = 3;
            return 5;
        }
        return 0;
    }
    case ' ':
        /* "label dot label": a spelled-out dot between host-like labels */
        if (left >= 6 && i > 0 && starts_ci((const char *)t + 1, left - 1, "dot ") && isalnum(t[5]) &&
            isalnum((unsigned char)text[i - 1])) {
            *kind = PL_DEFANG_DOT_WORD;
            *rep = ".";
            *rep_n = 1;
            return 5;
        }
        return 0;
    default:
        return 0;
    }
}

/* Is there a defanging starting at or near i? Candidates are confirmed with
 * defang_at, so the answer is exact. */
static int defang_near(const char *text, size_t n, size_t i) {
    int kind;
    const char *rep;
    size_t rep_n;
    if (defang_at(text, n, i, &kind, &rep, &rep_n)) return 1;
    return i > 0 && defang_at(text, n, i - 1, &kind, &rep, &rep_n); /* "xxp" seen, the "h" before it */
}

/* Does text hold any defanging? Most texts hold none, so this runs over every
 * byte of every text: with SSE2, 16 positions at a time are screened for
 * "xxp", "[." "[:" "[d" (and ( {), " dot " (any case) and non-ASCII bytes
 * (zero-width characters), and only those positions are checked exactly. */
static int may_be_defanged(const char *text, size_t n) {
    const unsigned char *t = (const unsigned char *)text;
    size_t i = 0;
#ifdef __SSE2__
    const __m128i lc = _mm_set1_epi8(0x20);
    const __m128i cx = _mm_set1_epi8('x'), cp = _mm_set1_epi8('p'), cd = _mm_set1_epi8('d'), co = _mm_set1_epi8('o'),
                  ct = _mm_set1_epi8('t'), sp = _mm_set1_epi8(' '), ob = _mm_set1_epi8('['), op = _mm_set1_epi8('('),
                  oc = _mm_set1_epi8('{'), dt = _mm_set1_epi8('.'), cl = _mm_set1_epi8(':');
    for (; i + 20 <= n; i += 16) {
        __m128i l0 = _mm_loadu_si128((const __m128i *)(t + i)), l1 = _mm_loadu_si128((const __m128i *)(t + i + 1)),
                l2 = _mm_loadu_si128((const __m128i *)(t + i + 2)), l3 = _mm_loadu_si128((const __m128i *)(t + i + 3)),
                l4 = _mm_loadu_si128((const __m128i *)(t + i + 4));
        __m128i f0 = _mm_or_si128(l0, lc), f1 = _mm_or_si128(l1, lc), f2 = _mm_or_si128(l2, lc),
                f3 = _mm_or_si128(l3, lc);
        __m128i x = _mm_and_si128(_mm_and_si128(_mm_cmpeq_epi8(f0, cx), _mm_cmpeq_epi8(f1, cx)), _mm_cmpeq_epi8(f2, cp));
        __m128i dot = _mm_and_si128(
            _mm_and_si128(_mm_cmpeq_epi8(l0, sp), _mm_cmpeq_epi8(f1, cd)),
            _mm_and_si128(_mm_and_si128(_mm_cmpeq_epi8(f2, co), _mm_cmpeq_epi8(f3, ct)), _mm_cmpeq_epi8(l4, sp)));
        __m128i open = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(l0, ob), _mm_cmpeq_epi8(l0, op)), _mm_cmpeq_epi8(l0, oc));
        __m128i next = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(l1, dt), _mm_cmpeq_epi8(l1, cl)), _mm_cmpeq_epi8(f1, cd));
        __m128i any = _mm_or_si128(_mm_or_si128(x, dot), _mm_and_si128(open, next));
        unsigned m = (unsigned)_mm_movemask_epi8(any) | (unsigned)_mm_movemask_epi8(l0); /* high bit: non-ASCII */
        while (m) {
            unsigned b = (unsigned)__builtin_ctz(m);
            m &= m - 1;
            if (defang_near(text, n, i + b)) return 1;
        }
    }
#endif
    for (; i < n; i++) {
        unsigned char c = t[i];
        if ((c == 'x' || c == 'X' || c == '[' || c == '(' || c == '{' || c == ' ' || c >= 0x80) && defang_near(text, n, i))
            return 1;
    }
    return 0;
}

typedef struct {
    const uint8_t *kinds; /* per byte of the de-fanged copy: 1 << kind of the defanging that produced it */
    pl_url2_fn fn;
    void *user;
    size_t last_end;      /* end of the last URL reported from the main scan */
    const char *base;
} defang_ctx;

/* Kinds inside [a, e). A zero-width character just before the first byte
 * is outside the URL and does not count. */
static unsigned span_kinds(const uint8_t *k, size_t a, size_t e) {
    unsigned m = a < e ? k[a] & ~(1u << PL_DEFANG_ZERO_WIDTH) : 0;
    for (size_t i = a + 1; i < e; i++) m |= k[i];
    return m;
}

static pl_status defang_main_cb(const char *u, size_t n, void *user) {
    defang_ctx *c = user;
    size_t a = (size_t)(u - c->base);
    c->last_end = a + n;
    return c->fn(u, n, span_kinds(c->kinds, a, a + n), c->user);
}

pl_status pl_urls_scan_defanged(const char *text, size_t n, pl_url2_fn fn, void *user) {
    if (!may_be_defanged(text, n)) {
        /* the common case: nothing to undo */
        size_t i = 0, colon = SIZE_MAX, dot = SIZE_MAX;
        while (i < n) {
            size_t c = next_candidate(text, n, i, &colon, &dot);
            if (c >= n) break;
            size_t e = url_at(text, n, c);
            if (e) {
                pl_status st = fn(text + c, e - c, 0, user);
                if (st) return st;
                i = e;
            } else {
                i = c + 1;
            }
        }
        return PL_OK;
    }
    /* the de-fanged copy, with the kinds of the defangings behind each byte
     * (a dropped zero-width character marks the byte after it) */
    char *d = malloc(n + 1);
    uint8_t *k = malloc(n + 1);
    if (!d || !k) {
        free(d);
        free(k);
        return pl_error(PL_ERR_NOMEM, "out of memory scanning URLs");
    }
    size_t m = 0;
    uint8_t pending = 0;
    for (size_t i = 0; i < n;) {
        int kind;
        const char *rep;
        size_t rep_n;
        size_t len = defang_at(text, n, i, &kind, &rep, &rep_n);
        if (!len) {
            d[m] = text[i];
            k[m++] = pending;
            pending = 0;
            i++;
            continue;
        }
        if (!rep_n) pending |= (uint8_t)(1u << kind);
        for (size_t j = 0; j < rep_n; j++) {
            d[m] = rep[j];
            k[m++] = (uint8_t)(pending | (1u << kind));
            pending = 0;
        }
        i += len;
    }
    d[m] = 0;
    defang_ctx c = {k, fn, user, 0, d};
    pl_status st = PL_OK;
    /* 1. URLs with a scheme or www. prefix in the copy */
    size_t i = 0, colon = SIZE_MAX, dot = SIZE_MAX;
    size_t *ends = NULL, n_ends = 0, cap_ends = 0; /* [start, end) of the URLs found, for step 2 */
    while (i < m && !st) {
        size_t s0 = next_candidate(d, m, i, &colon, &dot);
        if (s0 >= m) break;
        size_t e = url_at(d, m, s0);
        if (e) {
            if (n_ends + 2 > cap_ends) {
                cap_ends = cap_ends ? 2 * cap_ends : 16;
                size_t *ne = realloc(ends, cap_ends * sizeof *ne);
                if (!ne) {
                    st = pl_error(PL_ERR_NOMEM, "out of memory scanning URLs");
                    break;
                }
                ends = ne;
            }
            ends[n_ends++] = s0;
            ends[n_ends++] = e;
            st = defang_main_cb(d + s0, e - s0, &c);
            i = e;
        } else {
            i = s0 + 1;
        }
    }
    /* 2. bare domains around a bracketed dot ("evil[.]example/login"), outside
     * the URLs of step 1: host labels and dots, a last label of 2-24 letters,
     * then an optional path */
    size_t u = 0;
    for (size_t p = 0; p < m && !st; p++) {
        if (d[p] != '.' || !(k[p] & (1u << PL_DEFANG_BRACKET_DOT))) continue;
        while (u < n_ends && ends[u + 1] <= p) u += 2;
        if (u < n_ends && ends[u] <= p) continue; /* inside a step-1 URL */
        size_t a = p;
        while (a > 0 && (label_char((unsigned char)d[a - 1]) || d[a - 1] == '.')) a--;
        while (a < p && !isalnum((unsigned char)d[a])) a++;
        size_t e = p + 1;
        while (e < m && (label_char((unsigned char)d[e]) || d[e] == '.')) e++;
        while (e > p + 1 && (d[e - 1] == '.' || d[e - 1] == '-')) e--;
        if (a == p || e == p + 1) continue;
        /* the last label: letters only, 2-24 of them */
        size_t ld = e;
        while (ld > p + 1 && d[ld - 1] != '.') ld--;
        size_t tl = e - ld;
        int letters = tl >= 2 && tl <= 24;
        for (size_t q = ld; letters && q < e; q++) letters = isalpha((unsigned char)d[q]) != 0;
        if (!letters) continue;
        if (a > 0 && (d[a - 1] == '@' || d[a - 1] == '/')) continue; /* an e-mail address or a path */
        /* an optional path, as for ordinary URLs */
        if (e < m && d[e] == '/') {
            size_t q = e;
            while (q < m && url_char((unsigned char)d[q])) q++;
            while (q > e + 1 && strchr(".,;:!?*')]", d[q - 1])) q--;
            e = q;
        }
        st = fn(d + a, e - a, span_kinds(k, a, e) | (1u << PL_DEFANG_BRACKET_DOT), user);
        p = e;
    }
    free(ends);
    free(d);
    free(k);
    return st;
}

/* ---- tokenized URLs ("http : / / www . x . com / a . html") ---- */

/* Preprocessed corpora (Enron-Spam, Ling-Spam) split text into tokens at
 * punctuation and join them with single spaces, so a URL reads
 * "http : / / www . x . com / a . html". The rebuild reads that token
 * stream: a scheme and " : / / " or a word-initial "www", host labels
 * joined by " . " (a dot after a top-level-looking label only continues
 * the host when more URL follows the next label: "ac . uk / x" but not
 * "x . com . the"), an optional " : port", then path tokens: "/" (also
 * trailing), or "~ _ - ? = & % + # :" followed by a word, and "." only
 * before a known file extension ("a . html", not "a . the"). */

static int tok_word_char(unsigned char c) { return isalnum(c) || c == '-' || c == '_'; }

/* Length of the word token at t (alnum, '-', '_', starting with alnum), 0
 * when none. */
static size_t tok_word(const char *t, size_t left) {
    if (!left || !isalnum((unsigned char)t[0])) return 0;
    size_t k = 0;
    while (k < left && tok_word_char((unsigned char)t[k])) k++;
    return k;
}

/* " X" at t with X the single punctuation byte p followed by a space or
 * the end: 1 when so. */
static int tok_punct(const char *t, size_t left, char p) {
    return left >= 2 && t[0] == ' ' && t[1] == p && (left == 2 || t[2] == ' ' || t[2] == '\n');
}

static int tld_like(const char *s, size_t n) {
    static const char *const tlds[] = {"com", "net", "org", "edu", "gov", "mil", "int", "info", "biz"};
    if (n == 2) return isalpha((unsigned char)s[0]) && isalpha((unsigned char)s[1]);
    for (size_t i = 0; i < sizeof tlds / sizeof *tlds; i++)
        if (strlen(tlds[i]) == n && starts_ci_n(s, n, tlds[i], n)) return 1;
    return 0;
}

static int file_ext(const char *s, size_t n) {
    static const char *const ext[] = {"html", "htm", "shtml", "php", "php3", "asp", "aspx", "cgi", "pl",  "jsp",
                                      "txt",  "pdf", "gif",   "jpg", "jpeg", "png", "zip",  "exe", "doc", "ps",
                                      "gz",   "tar", "tex",   "xml", "rtf",  "ppt", "xls",  "mpg", "mp3", "wav"};
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (strlen(ext[i]) == n && starts_ci_n(s, n, ext[i], n)) return 1;
    return 0;
}

/* The tokenized URL starting at text[i] rebuilt into out; returns the end
 * of its tokens in text, 0 when none starts at i. */
static size_t tokenized_at(const char *text, size_t n, size_t i, pl_buf *out, pl_status *st) {
    const char *t = text + i;
    size_t left = n - i, p;
    if (i > 0 && !strchr(" \n\t(<\"'", text[i - 1])) return 0;
    out->len = 0;
    int www = 0;
    if (starts_ci(t, left, "http : / / ")) p = 11, *st = pl_buf_append(out, "http://", 7);
    else if (starts_ci(t, left, "https : / / ")) p = 12, *st = pl_buf_append(out, "https://", 8);
    else if (starts_ci(t, left, "ftp : / / ")) p = 10, *st = pl_buf_append(out, "ftp://", 6);
    else if (starts_ci(t, left, "www . ")) p = 0, www = 1;
    else return 0;
    if (*st) return 0;
    /* host: label ( " . " label )* */
    size_t labels = 0, e = i + p;
    for (;;) {
        size_t w = tok_word(text + e, n - e);
        if (!w || text[e] == '-' || text[e] == '_') break;
        if (labels && (*st = pl_buf_append(out, ".", 1))) return 0;
        if ((*st = pl_buf_append(out, text + e, w))) return 0;
        labels++;
        size_t after = e + w;
        if (!tok_punct(text + after, n - after, '.') || after + 3 >= n) {
            e = after;
            break;
        }
        size_t nx = after + 3, w2 = tok_word(text + nx, n - nx);
        if (!w2) {
            e = after;
            break;
        }
        /* after a top-level-looking label, the next label must be followed by
         * more URL (" . " or " / ") to belong to the host */
        if (labels >= 2 && tld_like(text + e, w)) {
            size_t a2 = nx + w2;
            if (!tok_punct(text + a2, n - a2, '.') && !tok_punct(text + a2, n - a2, '/')) {
                e = after;
                break;
            }
        }
        e = nx;
    }
    if (labels < (www ? 3u : 2u)) return 0;
    /* port */
    if (tok_punct(text + e, n - e, ':') && e + 3 < n && isdigit((unsigned char)text[e + 3])) {
        size_t w = tok_word(text + e + 3, n - e - 3), k = 0;
        while (k < w && isdigit((unsigned char)text[e + 3 + k])) k++;
        if (k == w) {
            if ((*st = pl_buf_append(out, ":", 1)) || (*st = pl_buf_append(out, text + e + 3, w))) return 0;
            e += 3 + w;
        }
    }
    /* path: only after a "/" */
    if (!tok_punct(text + e, n - e, '/')) return e;
    for (;;) {
        if (e + 2 > n || text[e] != ' ') break;
        const char c = text[e + 1];
        if (!c || !strchr("/~_-?=&%+#:.", c) || !tok_punct(text + e, n - e, c)) break;
        /* the word after " c ", on the same line */
        const size_t nx = e + 3;
        const size_t w = nx <= n && text[e + 2] == ' ' ? tok_word(text + nx, n - nx) : 0;
        if (c == '/' && !w) { /* a slash before punctuation ("/ ~ x") or at the end */
            if ((*st = pl_buf_append(out, "/", 1))) return 0;
            e += 2;
            continue;
        }
        if (!w || (c == '.' && !file_ext(text + nx, w))) break;
        if ((*st = pl_buf_append(out, &c, 1)) || (*st = pl_buf_append(out, text + nx, w))) return 0;
        e = nx + w;
    }
    return e;
}

/* Next start >= from of a possible tokenized URL: a scheme before " : / / "
 * or "www . " (lower case, as the corpora write it); n when none. The
 * anchors found so far are cached in *colon and *www (SIZE_MAX: search). */
static size_t next_tokenized(const char *text, size_t n, size_t from, size_t *colon, size_t *www) {
    size_t cf = from;
    while (*colon == SIZE_MAX || *colon < from) {
        const char *q = cf < n ? memmem(text + cf, n - cf, " : / / ", 7) : NULL;
        if (!q) {
            *colon = n;
            break;
        }
        size_t c = (size_t)(q - text), start = n;
        cf = c + 1;
        if (c >= 5 && starts_ci(text + c - 5, 5, "https")) start = c - 5;
        else if (c >= 4 && starts_ci(text + c - 4, 4, "http")) start = c - 4;
        else if (c >= 3 && starts_ci(text + c - 3, 3, "ftp")) start = c - 3;
        if (start != n && start >= from) *colon = start;
    }
    if (*www == SIZE_MAX || *www < from) {
        const char *q = from < n ? memmem(text + from, n - from, "www . ", 6) : NULL;
        *www = q ? (size_t)(q - text) : n;
    }
    return *colon < *www ? *colon : *www;
}

pl_status pl_urls_scan_tokenized(const char *text, size_t n, pl_url_fn fn, void *user) {
    size_t colon = SIZE_MAX, www = SIZE_MAX;
    if (next_tokenized(text, n, 0, &colon, &www) >= n) return PL_OK; /* the common case */
    pl_buf b = {0};
    pl_status st = PL_OK;
    for (size_t i = 0; i < n && !st;) {
        size_t at = next_tokenized(text, n, i, &colon, &www);
        if (at >= n) break;
        size_t e = tokenized_at(text, n, at, &b, &st);
        if (!st && e) {
            st = fn(b.data, b.len, user);
            i = e;
        } else {
            i = at + 1;
        }
    }
    pl_buf_free(&b);
    return st;
}
