/* profile.c — style profiles of email sources, and how separable they are.
 *
 * Per source: size, label balance, body length quantiles, HTML share, URL
 * density, header presence, date range, charset mix, mean segmental
 * type-token ratio (1000-word segments, so sources of different sizes
 * compare), and the most distinctive words by the log-odds ratio with an
 * informative Dirichlet prior (Monroe, Colaresi & Quinn 2008, "Fightin'
 * Words", section 3.5; prior = corpus counts times prior_scale).
 * Across sources: Jensen-Shannon divergence (base 2) of unigram
 * distributions, and source separability: k-fold cross-validated accuracy of
 * multinomial naive Bayes on hashed unigram counts predicting the source,
 * against the majority baseline. A separability far above the baseline means
 * a detector can tell where an email came from by its style alone; when
 * sources also differ in label balance, that is a shortcut risk.
 * Not done: subword or character n-gram features, topic models.
 */
#include "data.h"

#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- dates ---- */

static int month_of(const char *w) {
    static const char *const m[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
    if (strlen(w) < 3) return 0;
    for (int i = 0; i < 12; i++)
        if (!strncasecmp(w, m[i], 3)) return i + 1;
    return 0;
}

static int fix_year(int y) {
    if (y < 100) return y >= 70 ? 1900 + y : 2000 + y;
    return y;
}

static int valid_ymd(int y, int m, int d) { return y >= 1970 && y <= 2100 && m >= 1 && m <= 12 && d >= 1 && d <= 31; }

int pl_parse_date(const char *s, int *y, int *m, int *d) {
    if (!s) return 0;
    while (*s == ' ' || *s == '\t') s++;
    /* skip a leading weekday ("Tue," / "Tuesday") */
    if (isalpha((unsigned char)*s)) {
        const char *p = s;
        while (isalpha((unsigned char)*p)) p++;
        if (!month_of(s) || *p == ',') {
            if (*p == ',' || *p == ' ') {
                s = p;
                while (*s == ',' || *s == ' ') s++;
            }
        }
    }
    int a, b, c, n = 0;
    char s1, s2;
    /* numeric forms */
    if (sscanf(s, "%d%c%d%c%d%n", &a, &s1, &b, &s2, &c, &n) == 5 && n > 0 && s1 == s2 && (s1 == '-' || s1 == '/' || s1 == '.')) {
        int yy, mm, dd;
        if (a >= 1000) yy = a, mm = b, dd = c;                       /* 2006-03-14 */
        else if (s1 == '/') {                                         /* 03/14/2006, 14/03/2006 */
            yy = fix_year(c);
            if (a > 12) dd = a, mm = b;
            else mm = a, dd = b;
        } else {                                                      /* 14-03-2006, 14.03.2006 */
            yy = fix_year(c);
            if (b > 12) mm = a, dd = b;
            else dd = a, mm = b;
        }
        if (valid_ymd(yy, mm, dd)) {
            *y = yy, *m = mm, *d = dd;
            return 1;
        }
        return 0;
    }
    /* word forms: "14 Mar 2006", "March 14, 2006", "Mar 14 2006" */
    char w1[32], w2[32], w3[32];
    if (sscanf(s, "%31[A-Za-z0-9] %31[A-Za-z0-9,] %31[0-9]", w1, w2, w3) == 3) {
        size_t l2 = strlen(w2);
        if (l2 && w2[l2 - 1] == ',') w2[l2 - 1] = 0;
        int mo;
        if (isdigit((unsigned char)w1[0]) && (mo = month_of(w2)) != 0) {
            int yy = fix_year(atoi(w3)), dd = atoi(w1);
            if (valid_ymd(yy, mo, dd)) return *y = yy, *m = mo, *d = dd, 1;
        } else if ((mo = month_of(w1)) != 0 && isdigit((unsigned char)w2[0])) {
            int yy = fix_year(atoi(w3)), dd = atoi(w2);
            if (valid_ymd(yy, mo, dd)) return *y = yy, *m = mo, *d = dd, 1;
        }
    }
    return 0;
}

/* ---- divergences and log-odds ---- */

double pl_jsd(const double *p, const double *q, size_t n) {
    double sp = 0, sq = 0;
    for (size_t i = 0; i < n; i++) sp += p[i], sq += q[i];
    if (sp <= 0 || sq <= 0) return 0.0;
    double js = 0;
    for (size_t i = 0; i < n; i++) {
        double a = p[i] / sp, b = q[i] / sq, mid = 0.5 * (a + b);
        if (a > 0) js += 0.5 * a * log2(a / mid);
        if (b > 0) js += 0.5 * b * log2(b / mid);
    }
    return js;
}

void pl_log_odds_dirichlet(const double *y_i, const double *y_j, const double *alpha, size_t n, double *delta,
                           double *z) {
    double ni = 0, nj = 0, a0 = 0;
    for (size_t w = 0; w < n; w++) ni += y_i[w], nj += y_j[w], a0 += alpha[w];
    for (size_t w = 0; w < n; w++) {
        double a = y_i[w] + alpha[w], b = y_j[w] + alpha[w];
        double d = log(a / (ni + a0 - a)) - log(b / (nj + a0 - b));
        if (delta) delta[w] = d;
        if (z) z[w] = d / sqrt(1.0 / a + 1.0 / b);
    }
}

/* ---- hashed-feature naive Bayes separability ---- */

#define NB_ALPHA 0.1 /* Lidstone pseudo-count per seen bucket */

typedef struct {
    uint32_t *v;
    size_t n, cap;
    int oom;
    uint32_t mask;
} u32vec;

static void push_bucket(const char *w, size_t len, void *user) {
    u32vec *a = user;
    if (a->oom) return;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 1024;
        uint32_t *v = realloc(a->v, cap * sizeof *v);
        if (!v) {
            a->oom = 1;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = (uint32_t)pl_hash64(w, len, 0xb0c) & a->mask;
}

pl_status pl_separability(const char *const *texts, const int *cls, size_t n, int n_classes, int folds,
                          uint64_t seed, int hash_bits, double *acc, double *balanced, double *majority) {
    *acc = *majority = 0;
    if (balanced) *balanced = 0;
    if (n_classes < 1 || folds < 2 || (size_t)folds > n || hash_bits < 4 || hash_bits > 24)
        return pl_error(PL_ERR_INVALID, "separability: need >= 1 class, 2 <= folds <= n (%zu), hash_bits in [4, 24]", n);
    size_t B = (size_t)1 << hash_bits, C = (size_t)n_classes;
    u32vec feats = {.mask = (uint32_t)(B - 1)};
    size_t *off = malloc((n + 1) * sizeof *off);
    size_t *perm = malloc(n * sizeof *perm);
    int *fold = malloc(n * sizeof *fold);
    double *tot = calloc(C * B, sizeof *tot), *cnt = malloc(C * B * sizeof *cnt), *ndoc = calloc(C, sizeof *ndoc);
    double *ntok = calloc(C, sizeof *ntok), *hit = calloc(C, sizeof *hit);
    int *pred = malloc(n * sizeof *pred);
    pl_status st = PL_OK;
    if (!off || !perm || !fold || !tot || !cnt || !ndoc || !ntok || !hit || !pred) {
        st = pl_error(PL_ERR_NOMEM, "out of memory for separability");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (cls[i] < 0 || cls[i] >= n_classes) {
            st = pl_error(PL_ERR_INVALID, "separability: class %d of item %zu out of range", cls[i], i);
            goto done;
        }
        off[i] = feats.n;
        pl_text_words(texts[i] ? texts[i] : "", push_bucket, &feats);
        if (feats.oom) {
            st = pl_error(PL_ERR_NOMEM, "out of memory for separability features");
            goto done;
        }
        ndoc[cls[i]]++;
    }
    off[n] = feats.n;
    double best = 0;
    for (size_t c = 0; c < C; c++) best = ndoc[c] > best ? ndoc[c] : best;
    *majority = best / (double)n;
    pl_rng r;
    pl_rng_seed(&r, seed ^ 0x5e9a7ab1ULL);
    for (size_t i = 0; i < n; i++) perm[i] = i;
    pl_rng_shuffle(&r, perm, n, sizeof *perm);
    for (size_t i = 0; i < n; i++) fold[perm[i]] = (int)(i % (size_t)folds);
    for (size_t i = 0; i < n; i++)
        for (size_t t = off[i]; t < off[i + 1]; t++) tot[(size_t)cls[i] * B + feats.v[t]] += 1;
    size_t correct = 0;
    for (int f = 0; f < folds; f++) {
        memcpy(cnt, tot, C * B * sizeof *cnt);
        double nd[64], *ndp = C <= 64 ? nd : NULL;
        double *ndyn = ndp ? NULL : calloc(C, sizeof *ndyn);
        if (!ndp && !ndyn) {
            st = pl_error(PL_ERR_NOMEM, "out of memory");
            goto done;
        }
        double *ndf = ndp ? ndp : ndyn;
        for (size_t c = 0; c < C; c++) ndf[c] = ndoc[c];
        for (size_t i = 0; i < n; i++) {
            if (fold[i] != f) continue;
            ndf[cls[i]]--;
            for (size_t t = off[i]; t < off[i + 1]; t++) cnt[(size_t)cls[i] * B + feats.v[t]] -= 1;
        }
        double ntrain = 0;
        for (size_t c = 0; c < C; c++) ntrain += ndf[c];
        /* log P(bucket | class) with Lidstone smoothing over the V buckets
         * seen in this training fold: (n_cb + a) / (n_c + a V). Smoothing over
         * all 2^bits buckets instead would swamp small classes with
         * pseudo-counts, and with unequal class sizes the largest class would
         * win every document. */
        double V = 0;
        for (size_t b = 0; b < B; b++) {
            int seen = 0;
            for (size_t c = 0; c < C && !seen; c++) seen = cnt[c * B + b] > 0;
            V += seen;
        }
        for (size_t c = 0; c < C; c++) {
            double s = 0;
            for (size_t b = 0; b < B; b++) s += cnt[c * B + b];
            ntok[c] = log(ndf[c] > 0 ? ndf[c] / ntrain : 1e-300);
            double lz = log(s + NB_ALPHA * V);
            for (size_t b = 0; b < B; b++) cnt[c * B + b] = log(cnt[c * B + b] + NB_ALPHA) - lz;
        }
#pragma omp parallel for schedule(dynamic, 64)
        for (size_t i = 0; i < n; i++) {
            if (fold[i] != f) continue;
            int arg = 0;
            double bestv = -INFINITY;
            for (size_t c = 0; c < C; c++) {
                double s = ntok[c];
                for (size_t t = off[i]; t < off[i + 1]; t++) s += cnt[c * B + feats.v[t]];
                if (s > bestv) bestv = s, arg = (int)c;
            }
            pred[i] = arg;
        }
        free(ndyn);
    }
    for (size_t i = 0; i < n; i++)
        if (pred[i] == cls[i]) correct++, hit[cls[i]]++;
    *acc = (double)correct / (double)n;
    if (balanced) {
        double sum = 0;
        size_t present = 0;
        for (size_t c = 0; c < C; c++)
            if (ndoc[c] > 0) sum += hit[c] / ndoc[c], present++;
        *balanced = present ? sum / (double)present : 0;
    }
done:
    free(feats.v);
    free(off);
    free(perm);
    free(fold);
    free(tot);
    free(cnt);
    free(ndoc);
    free(ntok);
    free(hit);
    free(pred);
    return st;
}

/* ---- vocabulary ---- */

typedef struct {
    uint64_t *hash;   /* [cap] 0 = empty slot (hashes are forced odd) */
    uint32_t *id;     /* [cap] */
    size_t cap, n;
    size_t *str_off;  /* [n] offsets into strs */
    pl_buf strs;
    int oom;
} vocab;

static int vocab_grow(vocab *v) {
    size_t cap = v->cap ? v->cap * 2 : 1 << 14;
    uint64_t *h = calloc(cap, sizeof *h);
    uint32_t *id = malloc(cap * sizeof *id);
    if (!h || !id) {
        free(h);
        free(id);
        return 0;
    }
    for (size_t i = 0; i < v->cap; i++) {
        if (!v->hash[i]) continue;
        size_t j = v->hash[i] & (cap - 1);
        while (h[j]) j = (j + 1) & (cap - 1);
        h[j] = v->hash[i];
        id[j] = v->id[i];
    }
    free(v->hash);
    free(v->id);
    v->hash = h;
    v->id = id;
    v->cap = cap;
    return 1;
}

/* Interns w; returns its id or -1 on out of memory. Equal hashes of
 * different words (64-bit) are treated as one word. */
static long vocab_intern(vocab *v, const char *w, size_t len) {
    if ((v->n + 1) * 2 > v->cap && !vocab_grow(v)) return -1;
    uint64_t h = pl_hash64(w, len, 0x70c) | 1;
    size_t j = h & (v->cap - 1);
    while (v->hash[j]) {
        if (v->hash[j] == h) return v->id[j];
        j = (j + 1) & (v->cap - 1);
    }
    if (v->n % 4096 == 0) {
        size_t *so = realloc(v->str_off, (v->n + 4096) * sizeof *so);
        if (!so) return -1;
        v->str_off = so;
    }
    v->str_off[v->n] = v->strs.len;
    if (pl_buf_append(&v->strs, w, len + 1)) return -1;
    v->hash[j] = h;
    v->id[j] = (uint32_t)v->n;
    return (long)v->n++;
}

static void vocab_free(vocab *v) {
    free(v->hash);
    free(v->id);
    free(v->str_off);
    pl_buf_free(&v->strs);
}

/* ---- per-source counting ---- */

typedef struct {
    vocab *voc;
    double *counts;       /* [cap] for the current source */
    size_t cap;
    uint32_t *seen_seg;   /* [cap] last segment a word was seen in */
    size_t seg_cap;
    uint32_t seg;         /* current segment id (global, never reused) */
    size_t seg_len, seg_types;
    double ttr_sum;
    size_t ttr_segs;
    int oom;
} counter;

static int ensure(double **a, size_t *cap, size_t need) {
    if (need <= *cap) return 1;
    size_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    double *v = realloc(*a, c * sizeof *v);
    if (!v) return 0;
    memset(v + *cap, 0, (c - *cap) * sizeof *v);
    *a = v;
    *cap = c;
    return 1;
}

static void count_word(const char *w, size_t len, void *user) {
    counter *c = user;
    if (c->oom) return;
    long id = vocab_intern(c->voc, w, len);
    if (id < 0 || !ensure(&c->counts, &c->cap, (size_t)id + 1)) {
        c->oom = 1;
        return;
    }
    if ((size_t)id >= c->seg_cap) {
        size_t nc = c->seg_cap ? c->seg_cap : 1024;
        while (nc <= (size_t)id) nc *= 2;
        uint32_t *s = realloc(c->seen_seg, nc * sizeof *s);
        if (!s) {
            c->oom = 1;
            return;
        }
        memset(s + c->seg_cap, 0, (nc - c->seg_cap) * sizeof *s);
        c->seen_seg = s;
        c->seg_cap = nc;
    }
    c->counts[id] += 1;
    if (c->seen_seg[id] != c->seg) {
        c->seen_seg[id] = c->seg;
        c->seg_types++;
    }
    if (++c->seg_len == 1000) {
        c->ttr_sum += (double)c->seg_types / 1000.0;
        c->ttr_segs++;
        c->seg++;
        c->seg_len = c->seg_types = 0;
    }
}

static int is_html_body(const char *b) {
    static const char *const tags[] = {"<html", "<body", "<br", "<p>", "<div", "<table", "</a>", "&nbsp;", "<font"};
    for (const char *p = b; *p; p++) {
        if (*p != '<' && *p != '&') continue;
        for (size_t i = 0; i < sizeof tags / sizeof *tags; i++)
            if (!strncasecmp(p, tags[i], strlen(tags[i]))) return 1;
    }
    return 0;
}

static size_t count_urls_in(const char *b) {
    size_t n = 0;
    for (const char *p = b; *p; p++) {
        if ((*p == 'h' || *p == 'H') && (!strncasecmp(p, "http://", 7) || !strncasecmp(p, "https://", 8))) n++;
        else if ((*p == 'w' || *p == 'W') && !strncasecmp(p, "www.", 4) && (p == b || !isalnum((unsigned char)p[-1])) &&
                 (p < b + 3 || strncasecmp(p - 3, "://", 3)))
            n++;
    }
    return n;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile(const double *sorted, size_t n, double q) {
    if (n == 0) return 0;
    double h = q * (double)(n - 1);
    size_t lo = (size_t)h;
    if (lo + 1 >= n) return sorted[n - 1];
    return sorted[lo] + (h - (double)lo) * (sorted[lo + 1] - sorted[lo]);
}

void pl_profile_opts_default(pl_profile_opts *o) {
    o->top_k = 10;
    o->folds = 5;
    o->seed = 1;
    o->hash_bits = 18;
    o->prior_scale = 1.0;
    o->min_count = 5;
}

static const char *src_name(const pl_record *r) { return r->source && r->source[0] ? r->source : "(none)"; }

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

typedef struct {
    size_t id;
    double z;
} id_z;

static int cmp_id_z(const void *a, const void *b) {
    const id_z *x = a, *y = b;
    if (x->z != y->z) return x->z < y->z ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

static int meta_flag(const cJSON *meta, int *val) {
    static const char *const keys[] = {"has_html", "html"};
    for (size_t i = 0; meta && i < 2; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(meta, keys[i]);
        if (cJSON_IsBool(x)) return *val = cJSON_IsTrue(x), 1;
        if (cJSON_IsNumber(x)) return *val = x->valuedouble != 0, 1;
    }
    return 0;
}

static pl_status joined_text(const pl_record *r, pl_buf *b) {
    b->len = 0;
    pl_status st = pl_buf_append(b, r->subject, strlen(r->subject));
    if (!st) st = pl_buf_append(b, "\n", 1);
    if (!st) st = pl_buf_append(b, r->body, strlen(r->body) + 1);
    return st;
}

pl_status pl_profile_compute(const pl_records *rs, const pl_profile_opts *o, pl_profile *p) {
    memset(p, 0, sizeof *p);
    if (rs->n == 0) return pl_error(PL_ERR_INVALID, "profile: no records");
    pl_status st = PL_OK;
    /* sources, sorted by name */
    const char **names = malloc(rs->n * sizeof *names);
    int *cls = malloc(rs->n * sizeof *cls);
    double **counts = NULL;
    vocab voc = {0};
    counter cnt = {0};
    pl_buf tb = {0};
    char **texts = NULL;
    double *lens = malloc(rs->n * sizeof *lens);
    if (!names || !cls || !lens) {
        st = pl_error(PL_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < rs->n; i++) names[i] = src_name(&rs->v[i]);
    qsort(names, rs->n, sizeof *names, cmp_str);
    size_t S = 0;
    for (size_t i = 0; i < rs->n; i++)
        if (i == 0 || strcmp(names[i], names[S - 1])) names[S++] = names[i];
    p->n_sources = S;
    p->n_records = rs->n;
    p->src = calloc(S, sizeof *p->src);
    counts = calloc(S, sizeof *counts);
    size_t *ccap = calloc(S, sizeof *ccap);
    if (!p->src || !counts || !ccap) {
        free(ccap);
        st = pl_error(PL_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < rs->n; i++) {
        const char **f = bsearch(&(const char *){src_name(&rs->v[i])}, names, S, sizeof *names, cmp_str);
        cls[i] = (int)(f - names);
    }
    cnt.voc = &voc;
    cnt.seg = 1;
    for (size_t s = 0; s < S && !st; s++) {
        pl_source_profile *sp = &p->src[s];
        sp->name = strdup(names[s]);
        if (!sp->name) {
            st = pl_error(PL_ERR_NOMEM, "out of memory");
            break;
        }
        cnt.counts = NULL;
        cnt.cap = 0;
        cnt.seg++;
        cnt.seg_len = cnt.seg_types = 0;
        cnt.ttr_sum = 0;
        cnt.ttr_segs = 0;
        size_t nl = 0, words = 0, urls = 0, with_url = 0, html = 0;
        int ymin = 99999999, ymax = 0;
        for (size_t i = 0; i < rs->n && !st; i++) {
            if ((size_t)cls[i] != s) continue;
            const pl_record *r = &rs->v[i];
            sp->n++;
            if (r->label == 1) sp->n_phish++;
            else if (r->label == 0) sp->n_legit++;
            else sp->n_unlabelled++;
            lens[nl++] = (double)strlen(r->body);
            int h;
            if (meta_flag(r->meta, &h)) sp->n_html_meta++;
            else h = is_html_body(r->body);
            html += (size_t)h;
            size_t u = r->n_urls ? r->n_urls : count_urls_in(r->body);
            urls += u;
            with_url += u > 0;
            sp->has_from += r->from[0] != 0;
            sp->has_to += r->to[0] != 0;
            sp->has_date += r->date[0] != 0;
            sp->has_subject += r->subject[0] != 0;
            int y, m, d;
            if (pl_parse_date(r->date, &y, &m, &d)) {
                sp->n_dated++;
                int v = y * 10000 + m * 100 + d;
                ymin = v < ymin ? v : ymin;
                ymax = v > ymax ? v : ymax;
            }
            const cJSON *cs = r->meta ? cJSON_GetObjectItemCaseSensitive(r->meta, "charset") : NULL;
            if (cJSON_IsString(cs) && cs->valuestring[0]) {
                size_t k = 0;
                while (k < sp->n_charsets && strcasecmp(sp->charsets[k], cs->valuestring)) k++;
                if (k == sp->n_charsets) {
                    char **nc = realloc(sp->charsets, (k + 1) * sizeof *nc);
                    size_t *nn = nc ? realloc(sp->charset_n, (k + 1) * sizeof *nn) : NULL;
                    if (nc) sp->charsets = nc;
                    if (nn) sp->charset_n = nn;
                    char *dup = nn ? strdup(cs->valuestring) : NULL;
                    if (!dup) {
                        st = pl_error(PL_ERR_NOMEM, "out of memory");
                        break;
                    }
                    for (char *q = dup; *q; q++) *q = (char)tolower((unsigned char)*q);
                    sp->charsets[k] = dup;
                    sp->charset_n[k] = 0;
                    sp->n_charsets++;
                }
                sp->charset_n[k]++;
            }
            st = joined_text(r, &tb);
            if (!st) words += pl_text_words(tb.data, count_word, &cnt);
            if (!st && cnt.oom) st = pl_error(PL_ERR_NOMEM, "out of memory counting words");
        }
        if (st) break;
        counts[s] = cnt.counts;
        ccap[s] = cnt.cap;
        cnt.counts = NULL;
        double n = (double)sp->n;
        qsort(lens, nl, sizeof *lens, cmp_double);
        static const double qs[5] = {0.05, 0.25, 0.5, 0.75, 0.95};
        for (int q = 0; q < 5; q++) sp->len_q[q] = quantile(lens, nl, qs[q]);
        sp->words_mean = (double)words / n;
        sp->html_share = (double)html / n;
        sp->url_share = (double)with_url / n;
        sp->urls_per_email = (double)urls / n;
        sp->urls_per_1k_words = words ? 1000.0 * (double)urls / (double)words : 0;
        sp->has_from /= n, sp->has_to /= n, sp->has_date /= n, sp->has_subject /= n;
        if (sp->n_dated) {
            snprintf(sp->date_min, sizeof sp->date_min, "%04d-%02d-%02d", ymin / 10000 % 10000, ymin / 100 % 100, ymin % 100);
            snprintf(sp->date_max, sizeof sp->date_max, "%04d-%02d-%02d", ymax / 10000 % 10000, ymax / 100 % 100, ymax % 100);
        }
        /* mean segmental TTR; a source under 1000 words gets its plain TTR */
        sp->ttr = cnt.ttr_segs ? cnt.ttr_sum / (double)cnt.ttr_segs
                               : (cnt.seg_len ? (double)cnt.seg_types / (double)cnt.seg_len : 0);
        p->n_tokens += words;
        /* charsets by count, descending (stable by name) */
        for (size_t a = 1; a < sp->n_charsets; a++)
            for (size_t b = a; b > 0 && (sp->charset_n[b] > sp->charset_n[b - 1] ||
                                         (sp->charset_n[b] == sp->charset_n[b - 1] &&
                                          strcmp(sp->charsets[b], sp->charsets[b - 1]) < 0));
                 b--) {
                size_t tn = sp->charset_n[b];
                sp->charset_n[b] = sp->charset_n[b - 1];
                sp->charset_n[b - 1] = tn;
                char *ts = sp->charsets[b];
                sp->charsets[b] = sp->charsets[b - 1];
                sp->charsets[b - 1] = ts;
            }
    }
    free(cnt.counts);
    if (st) {
        free(ccap);
        goto done;
    }
    /* pad all count vectors to the final vocabulary */
    size_t V = voc.n;
    p->vocab = V;
    for (size_t s = 0; s < S && !st; s++)
        if (!ensure(&counts[s], &ccap[s], V ? V : 1)) st = pl_error(PL_ERR_NOMEM, "out of memory");
    free(ccap);
    if (st) goto done;

    /* JSD between sources */
    p->jsd = calloc(S * S, sizeof *p->jsd);
    if (!p->jsd) {
        st = pl_error(PL_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t a = 0; a < S; a++)
        for (size_t b = a + 1; b < S; b++) p->jsd[a * S + b] = p->jsd[b * S + a] = pl_jsd(counts[a], counts[b], V);

    /* distinctive words: source vs the rest, prior = corpus counts */
    if (S >= 2 && o->top_k > 0) {
        double *tot = calloc(V, sizeof *tot), *rest = malloc(V * sizeof *rest), *alpha = malloc(V * sizeof *alpha);
        double *z = malloc(V * sizeof *z), *delta = malloc(V * sizeof *delta);
        id_z *cand = malloc(V * sizeof *cand);
        if (!tot || !rest || !alpha || !z || !delta || !cand) st = pl_error(PL_ERR_NOMEM, "out of memory");
        for (size_t s = 0; s < S && !st; s++)
            for (size_t w = 0; w < V; w++) tot[w] += counts[s][w];
        for (size_t w = 0; w < V && !st; w++) alpha[w] = o->prior_scale * tot[w];
        for (size_t s = 0; s < S && !st; s++) {
            for (size_t w = 0; w < V; w++) rest[w] = tot[w] - counts[s][w];
            pl_log_odds_dirichlet(counts[s], rest, alpha, V, delta, z);
            size_t m = 0;
            for (size_t w = 0; w < V; w++)
                if (counts[s][w] >= o->min_count) cand[m++] = (id_z){w, z[w]};
            qsort(cand, m, sizeof *cand, cmp_id_z);
            size_t k = m < (size_t)o->top_k ? m : (size_t)o->top_k;
            pl_source_profile *sp = &p->src[s];
            sp->top = calloc(k ? k : 1, sizeof *sp->top);
            if (!sp->top) {
                st = pl_error(PL_ERR_NOMEM, "out of memory");
                break;
            }
            for (size_t t = 0; t < k; t++) {
                size_t w = cand[t].id;
                sp->top[t].token = strdup(voc.strs.data + voc.str_off[w]);
                sp->top[t].z = z[w];
                sp->top[t].delta = delta[w];
                sp->top[t].count = counts[s][w];
                if (!sp->top[t].token) st = pl_error(PL_ERR_NOMEM, "out of memory");
                sp->n_top++;
            }
        }
        free(tot);
        free(rest);
        free(alpha);
        free(z);
        free(delta);
        free(cand);
        if (st) goto done;
    }

    /* separability */
    p->folds = o->folds;
    if (S >= 2 && rs->n >= (size_t)o->folds) {
        texts = calloc(rs->n, sizeof *texts);
        if (!texts) st = pl_error(PL_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < rs->n && !st; i++) {
            st = joined_text(&rs->v[i], &tb);
            if (!st && !(texts[i] = strdup(tb.data))) st = pl_error(PL_ERR_NOMEM, "out of memory");
        }
        if (!st)
            st = pl_separability((const char *const *)texts, cls, rs->n, (int)S, o->folds, o->seed, o->hash_bits,
                                 &p->separability, &p->separability_balanced, &p->majority);
    } else {
        p->separability = p->separability_balanced = p->majority = 1.0;
    }
done:
    if (texts)
        for (size_t i = 0; i < rs->n; i++) free(texts[i]);
    free(texts);
    if (counts)
        for (size_t s = 0; s < p->n_sources; s++) free(counts[s]);
    free(counts);
    free(names);
    free(cls);
    free(lens);
    free(cnt.seen_seg);
    pl_buf_free(&tb);
    vocab_free(&voc);
    if (st) pl_profile_free(p);
    return st;
}

void pl_profile_free(pl_profile *p) {
    for (size_t s = 0; p->src && s < p->n_sources; s++) {
        pl_source_profile *sp = &p->src[s];
        free(sp->name);
        for (size_t k = 0; k < sp->n_charsets; k++) free(sp->charsets[k]);
        free(sp->charsets);
        free(sp->charset_n);
        for (size_t t = 0; t < sp->n_top; t++) free(sp->top[t].token);
        free(sp->top);
    }
    free(p->src);
    free(p->jsd);
    memset(p, 0, sizeof *p);
}

static cJSON *num(double v) { return cJSON_CreateNumber(round(v * 1e6) / 1e6); }

pl_status pl_profile_to_json(const pl_profile *p, cJSON **out) {
    cJSON *o = cJSON_CreateObject(), *srcs = cJSON_CreateArray();
    int ok = o && srcs && cJSON_AddItemToObject(o, "sources", srcs);
    if (o && srcs && !ok) cJSON_Delete(srcs);
    for (size_t s = 0; ok && s < p->n_sources; s++) {
        const pl_source_profile *sp = &p->src[s];
        cJSON *x = cJSON_CreateObject();
        ok = x && cJSON_AddItemToArray(srcs, x);
        if (!ok) {
            cJSON_Delete(x);
            break;
        }
        double q[5];
        for (int i = 0; i < 5; i++) q[i] = sp->len_q[i];
        cJSON *cs = cJSON_CreateObject(), *top = cJSON_CreateArray();
        ok = cJSON_AddStringToObject(x, "source", sp->name) && cJSON_AddNumberToObject(x, "n", (double)sp->n) &&
             cJSON_AddNumberToObject(x, "n_phish", (double)sp->n_phish) &&
             cJSON_AddNumberToObject(x, "n_legit", (double)sp->n_legit) &&
             cJSON_AddNumberToObject(x, "n_unlabelled", (double)sp->n_unlabelled) &&
             cJSON_AddItemToObject(x, "body_bytes_p5_p25_p50_p75_p95", cJSON_CreateDoubleArray(q, 5)) &&
             cJSON_AddItemToObject(x, "words_mean", num(sp->words_mean)) &&
             cJSON_AddItemToObject(x, "html_share", num(sp->html_share)) &&
             cJSON_AddNumberToObject(x, "html_from_meta", (double)sp->n_html_meta) &&
             cJSON_AddItemToObject(x, "url_share", num(sp->url_share)) &&
             cJSON_AddItemToObject(x, "urls_per_email", num(sp->urls_per_email)) &&
             cJSON_AddItemToObject(x, "urls_per_1k_words", num(sp->urls_per_1k_words)) &&
             cJSON_AddItemToObject(x, "has_from", num(sp->has_from)) && cJSON_AddItemToObject(x, "has_to", num(sp->has_to)) &&
             cJSON_AddItemToObject(x, "has_date", num(sp->has_date)) &&
             cJSON_AddItemToObject(x, "has_subject", num(sp->has_subject)) &&
             cJSON_AddNumberToObject(x, "dates_parsed", (double)sp->n_dated) &&
             cJSON_AddStringToObject(x, "date_min", sp->date_min) && cJSON_AddStringToObject(x, "date_max", sp->date_max) &&
             cs && cJSON_AddItemToObject(x, "charsets", cs) && cJSON_AddItemToObject(x, "ttr", num(sp->ttr)) && top &&
             cJSON_AddItemToObject(x, "distinctive", top);
        for (size_t k = 0; ok && k < sp->n_charsets; k++) ok = cJSON_AddNumberToObject(cs, sp->charsets[k], (double)sp->charset_n[k]) != NULL;
        for (size_t t = 0; ok && t < sp->n_top; t++) {
            cJSON *e = cJSON_CreateObject();
            ok = e && cJSON_AddItemToArray(top, e) && cJSON_AddStringToObject(e, "token", sp->top[t].token) &&
                 cJSON_AddItemToObject(e, "z", num(sp->top[t].z)) && cJSON_AddItemToObject(e, "log_odds", num(sp->top[t].delta)) &&
                 cJSON_AddNumberToObject(e, "count", sp->top[t].count);
        }
    }
    cJSON *jsd = ok ? cJSON_AddArrayToObject(o, "jsd") : NULL;
    ok = ok && jsd;
    for (size_t a = 0; ok && a < p->n_sources; a++) {
        cJSON *row = cJSON_CreateArray();
        ok = row && cJSON_AddItemToArray(jsd, row);
        for (size_t b = 0; ok && b < p->n_sources; b++) ok = cJSON_AddItemToArray(row, num(p->jsd[a * p->n_sources + b]));
    }
    cJSON *sep = ok ? cJSON_AddObjectToObject(o, "source_separability") : NULL;
    ok = ok && sep && cJSON_AddStringToObject(sep, "classifier", "multinomial naive Bayes, hashed unigrams") &&
         cJSON_AddNumberToObject(sep, "folds", p->folds) && cJSON_AddItemToObject(sep, "accuracy", num(p->separability)) &&
         cJSON_AddItemToObject(sep, "balanced_accuracy", num(p->separability_balanced)) &&
         cJSON_AddItemToObject(sep, "chance_balanced", num(p->n_sources ? 1.0 / (double)p->n_sources : 0)) &&
         cJSON_AddItemToObject(sep, "majority_baseline", num(p->majority)) &&
         cJSON_AddNumberToObject(o, "records", (double)p->n_records) &&
         cJSON_AddNumberToObject(o, "tokens", (double)p->n_tokens) && cJSON_AddNumberToObject(o, "vocab", (double)p->vocab);
    if (!ok) {
        cJSON_Delete(o);
        return pl_error(PL_ERR_NOMEM, "out of memory building the profile JSON");
    }
    *out = o;
    return PL_OK;
}
