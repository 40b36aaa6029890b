/* global.c — aggregating per-example attributions into global feature
 * statistics: mean |phi| per key (lowercased word type or token) in slices
 * (all, by class, by source, by correct vs wrong), comparison of two result
 * sets, and dataset-artifact candidates from source-distinctive tokens.
 *
 * Mean |phi| per occurrence is the usual global SHAP importance (Lundberg et
 * al. 2020, "From local explanations to global understanding"). Nothing here
 * is a significance test: counts travel with every mean so readers can judge.
 */
#include "xinternal.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key;
    size_t count, examples, last_example;
    double sum_abs, sum;
} kstat;

typedef struct {
    char *name;
    kstat *v;
    size_t n, cap;
    size_t *slot; /* entry + 1 */
    size_t cap_s;
} slice;

struct pl_xglobal {
    slice *s;
    size_t n, cap;
    size_t n_examples;
};

pl_status pl_xglobal_new(pl_xglobal **g) {
    *g = calloc(1, sizeof **g);
    return *g ? PL_OK : pl_error(PL_ERR_NOMEM, "explain: out of memory");
}

void pl_xglobal_free(pl_xglobal *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n; i++) {
        for (size_t j = 0; j < g->s[i].n; j++) free(g->s[i].v[j].key);
        free(g->s[i].v);
        free(g->s[i].slot);
        free(g->s[i].name);
    }
    free(g->s);
    free(g);
}

static slice *find_slice(const pl_xglobal *g, const char *name) {
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->s[i].name, name) == 0) return &g->s[i];
    return NULL;
}

static pl_status get_slice(pl_xglobal *g, const char *name, slice **out) {
    *out = NULL;
    slice *s = find_slice(g, name);
    if (s) {
        *out = s;
        return PL_OK;
    }
    if (g->n == g->cap) {
        size_t nc = g->cap ? 2 * g->cap : 8;
        slice *ns = realloc(g->s, nc * sizeof *ns);
        if (!ns) return pl_error(PL_ERR_NOMEM, "explain: out of memory");
        g->s = ns;
        g->cap = nc;
    }
    s = &g->s[g->n];
    memset(s, 0, sizeof *s);
    s->name = strdup(name);
    s->cap_s = 64;
    s->slot = calloc(s->cap_s, sizeof *s->slot);
    if (!s->name || !s->slot) {
        free(s->name);
        free(s->slot);
        return pl_error(PL_ERR_NOMEM, "explain: out of memory");
    }
    g->n++;
    *out = s;
    return PL_OK;
}

static size_t hstr(const char *k) { return (size_t)pl_hash64(k, strlen(k), 11); }

static kstat *slice_lookup(const slice *s, const char *key) {
    size_t h = hstr(key) & (s->cap_s - 1);
    while (s->slot[h]) {
        kstat *k = &s->v[s->slot[h] - 1];
        if (strcmp(k->key, key) == 0) return k;
        h = (h + 1) & (s->cap_s - 1);
    }
    return NULL;
}

static pl_status slice_get(slice *s, const char *key, kstat **out) {
    kstat *k = slice_lookup(s, key);
    if (k) {
        *out = k;
        return PL_OK;
    }
    if (2 * (s->n + 1) > s->cap_s) {
        size_t nc = 2 * s->cap_s;
        size_t *ns = calloc(nc, sizeof *ns);
        if (!ns) return pl_error(PL_ERR_NOMEM, "explain: out of memory");
        for (size_t e = 0; e < s->n; e++) {
            size_t h = hstr(s->v[e].key) & (nc - 1);
            while (ns[h]) h = (h + 1) & (nc - 1);
            ns[h] = e + 1;
        }
        free(s->slot);
        s->slot = ns;
        s->cap_s = nc;
    }
    if (s->n == s->cap) {
        size_t nc = s->cap ? 2 * s->cap : 64;
        kstat *nv = realloc(s->v, nc * sizeof *nv);
        if (!nv) return pl_error(PL_ERR_NOMEM, "explain: out of memory");
        s->v = nv;
        s->cap = nc;
    }
    kstat *e = &s->v[s->n];
    memset(e, 0, sizeof *e);
    e->key = strdup(key);
    if (!e->key) return pl_error(PL_ERR_NOMEM, "explain: out of memory");
    e->last_example = SIZE_MAX;
    size_t h = hstr(key) & (s->cap_s - 1);
    while (s->slot[h]) h = (h + 1) & (s->cap_s - 1);
    s->slot[h] = ++s->n;
    *out = e;
    return PL_OK;
}

static int ispunct_ascii(unsigned char c) {
    return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) || (c >= 0x7b && c <= 0x7e);
}

/* lowercase (ASCII), trim whitespace, then trim ASCII punctuation unless that
 * leaves nothing */
static char *norm_key(const char *k) {
    size_t a = 0, e = strlen(k);
    while (a < e && (unsigned char)k[a] <= ' ') a++;
    while (e > a && (unsigned char)k[e - 1] <= ' ') e--;
    size_t pa = a, pe = e;
    while (pa < pe && (unsigned char)k[pa] < 0x80 && ispunct_ascii((unsigned char)k[pa])) pa++;
    while (pe > pa && (unsigned char)k[pe - 1] < 0x80 && ispunct_ascii((unsigned char)k[pe - 1])) pe--;
    if (pe > pa) {
        a = pa;
        e = pe;
    }
    char *s = malloc(e - a + 1);
    if (!s) return NULL;
    for (size_t i = a; i < e; i++) {
        char c = k[i];
        s[i - a] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    s[e - a] = 0;
    return s;
}

static pl_status add_to(pl_xglobal *g, const char *sname, const char *key, double phi) {
    slice *s = NULL;
    kstat *k = NULL;
    pl_status st = get_slice(g, sname, &s);
    if (!st) st = slice_get(s, key, &k);
    if (st) return st;
    k->count++;
    k->sum_abs += fabs(phi);
    k->sum += phi;
    if (k->last_example != g->n_examples) {
        k->examples++;
        k->last_example = g->n_examples;
    }
    return PL_OK;
}

pl_status pl_xglobal_add(pl_xglobal *g, const char *const *keys, const double *phi, size_t n, int label,
                         const char *source, int correct) {
    if (!g || (n && (!keys || !phi))) return pl_error(PL_ERR_INVALID, "explain: global add needs keys and phi");
    char names[4][300];
    size_t nn = 0;
    snprintf(names[nn++], sizeof names[0], "all");
    if (label == 0 || label == 1) snprintf(names[nn++], sizeof names[0], "label=%d", label);
    if (source && *source) snprintf(names[nn++], sizeof names[0], "source=%.280s", source);
    if (correct == 0 || correct == 1) snprintf(names[nn++], sizeof names[0], "correct=%d", correct);
    for (size_t i = 0; i < n; i++) {
        if (!keys[i]) return pl_error(PL_ERR_INVALID, "explain: global add: key %zu is NULL", i);
        if (!isfinite(phi[i])) return pl_error(PL_ERR_NUMERIC, "explain: global add: phi[%zu] = %g", i, phi[i]);
        char *k = norm_key(keys[i]);
        if (!k) return pl_error(PL_ERR_NOMEM, "explain: out of memory");
        pl_status st = PL_OK;
        for (size_t s = 0; s < nn && !st; s++) st = add_to(g, names[s], k, phi[i]);
        free(k);
        if (st) return st;
    }
    g->n_examples++;
    return PL_OK;
}

static void slice_name(pl_xslice_kind kind, const char *value, char *buf, size_t n) {
    switch (kind) {
    case PL_XSLICE_ALL: snprintf(buf, n, "all"); break;
    case PL_XSLICE_LABEL: snprintf(buf, n, "label=%s", value ? value : ""); break;
    case PL_XSLICE_SOURCE: snprintf(buf, n, "source=%.280s", value ? value : ""); break;
    case PL_XSLICE_CORRECT: snprintf(buf, n, "correct=%s", value ? value : ""); break;
    }
}

static pl_xstat to_stat(const kstat *k) {
    pl_xstat r = {k->key, k->count, k->examples, k->count ? k->sum_abs / (double)k->count : 0,
                  k->count ? k->sum / (double)k->count : 0};
    return r;
}

static int cmp_stat(const void *a, const void *b) {
    const pl_xstat *x = a, *y = b;
    if (x->mean_abs != y->mean_abs) return x->mean_abs > y->mean_abs ? -1 : 1;
    return strcmp(x->key, y->key);
}

static pl_status slice_sorted(const slice *s, size_t min_count, pl_xstat **rows, size_t *n_rows) {
    *rows = NULL;
    *n_rows = 0;
    if (!s) return PL_OK;
    pl_xstat *v = malloc((s->n ? s->n : 1) * sizeof *v);
    if (!v) return pl_error(PL_ERR_NOMEM, "explain: out of memory");
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].count >= min_count) v[n++] = to_stat(&s->v[i]);
    qsort(v, n, sizeof *v, cmp_stat);
    *rows = v;
    *n_rows = n;
    return PL_OK;
}

pl_status pl_xglobal_top(const pl_xglobal *g, pl_xslice_kind kind, const char *value, size_t min_count, size_t k,
                         pl_xstat **rows, size_t *n_rows) {
    char name[320];
    slice_name(kind, value, name, sizeof name);
    pl_status st = slice_sorted(find_slice(g, name), min_count, rows, n_rows);
    if (!st && k && *n_rows > k) *n_rows = k;
    return st;
}

pl_xstat pl_xglobal_get(const pl_xglobal *g, pl_xslice_kind kind, const char *value, const char *key) {
    char name[320];
    slice_name(kind, value, name, sizeof name);
    pl_xstat none = {key, 0, 0, 0, 0};
    const slice *s = find_slice(g, name);
    if (!s) return none;
    char *k = norm_key(key);
    const kstat *e = k ? slice_lookup(s, k) : NULL;
    free(k);
    return e ? to_stat(e) : none;
}

static int cmp_diff(const void *a, const void *b) {
    const pl_xdiff *x = a, *y = b;
    double dx = fabs(x->diff), dy = fabs(y->diff);
    if (dx != dy) return dx > dy ? -1 : 1;
    return strcmp(x->key, y->key);
}

pl_status pl_xglobal_compare(const pl_xglobal *a, const pl_xglobal *b, size_t min_count, size_t k, pl_xdiff **rows,
                             size_t *n_rows) {
    *rows = NULL;
    *n_rows = 0;
    const slice *sa = find_slice(a, "all"), *sb = find_slice(b, "all");
    size_t na = sa ? sa->n : 0, nb = sb ? sb->n : 0;
    pl_xdiff *v = malloc((na + nb + 1) * sizeof *v);
    if (!v) return pl_error(PL_ERR_NOMEM, "explain: out of memory");
    size_t n = 0;
    for (size_t i = 0; i < na; i++) {
        const kstat *x = &sa->v[i], *y = sb ? slice_lookup(sb, x->key) : NULL;
        size_t cb = y ? y->count : 0;
        if (x->count < min_count && cb < min_count) continue;
        double ma = x->sum_abs / (double)x->count, mb = y ? y->sum_abs / (double)y->count : 0;
        v[n++] = (pl_xdiff){x->key, x->count, cb, ma, mb, ma - mb};
    }
    for (size_t i = 0; i < nb; i++) {
        const kstat *y = &sb->v[i];
        if ((sa && slice_lookup(sa, y->key)) || y->count < min_count) continue;
        double mb = y->sum_abs / (double)y->count;
        v[n++] = (pl_xdiff){y->key, 0, y->count, 0, mb, -mb};
    }
    qsort(v, n, sizeof *v, cmp_diff);
    if (k && n > k) n = k;
    *rows = v;
    *n_rows = n;
    return PL_OK;
}

static int cmp_cand(const void *a, const void *b) {
    const pl_xcandidate *x = a, *y = b;
    if (x->rank != y->rank) return x->rank < y->rank ? -1 : 1;
    return strcmp(x->source ? x->source : "", y->source ? y->source : "");
}

pl_status pl_xglobal_artifacts(const pl_xglobal *g, const pl_xartifact_in *in, size_t n_in, double z_min,
                               size_t top_rank, size_t min_count, pl_xcandidate **out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    pl_xstat *rows;
    size_t nr;
    pl_status st = slice_sorted(find_slice(g, "all"), min_count, &rows, &nr);
    if (st) return st;
    pl_xcandidate *c = malloc((n_in ? n_in : 1) * sizeof *c);
    if (!c) {
        free(rows);
        return pl_error(PL_ERR_NOMEM, "explain: out of memory");
    }
    size_t n = 0;
    for (size_t i = 0; i < n_in; i++) {
        if (!in[i].token || !(fabs(in[i].z) >= z_min)) continue;
        char *k = norm_key(in[i].token);
        if (!k) {
            free(rows);
            free(c);
            return pl_error(PL_ERR_NOMEM, "explain: out of memory");
        }
        size_t rank = 0;
        for (size_t r = 0; r < nr && r < top_rank; r++)
            if (strcmp(rows[r].key, k) == 0) {
                rank = r + 1;
                break;
            }
        free(k);
        if (!rank) continue;
        const pl_xstat *s = &rows[rank - 1];
        pl_xstat src = pl_xglobal_get(g, PL_XSLICE_SOURCE, in[i].source, s->key);
        c[n++] = (pl_xcandidate){s->key, in[i].source, in[i].z, s->mean_abs, s->mean, s->count, rank, src.mean_abs};
    }
    free(rows);
    qsort(c, n, sizeof *c, cmp_cand);
    *out = c;
    *n_out = n;
    return PL_OK;
}

/* ---- JSON ------------------------------------------------------------------------ */

static pl_status emit(cJSON *o, pl_buf *b) {
    if (!o) return pl_error(PL_ERR_NOMEM, "explain: out of memory building JSON");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return pl_error(PL_ERR_NOMEM, "explain: out of memory printing JSON");
    pl_status st = pl_buf_append(b, s, strlen(s));
    free(s);
    return st;
}

static cJSON *stat_json(const pl_xstat *r) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "key", r->key);
    cJSON_AddNumberToObject(o, "count", (double)r->count);
    cJSON_AddNumberToObject(o, "examples", (double)r->examples);
    cJSON_AddNumberToObject(o, "mean_abs_phi", r->mean_abs);
    cJSON_AddNumberToObject(o, "mean_phi", r->mean);
    return o;
}

pl_status pl_xglobal_to_json(const pl_xglobal *g, size_t min_count, size_t k, pl_buf *b) {
    cJSON *o = cJSON_CreateObject(), *sl = cJSON_CreateObject();
    if (!o || !sl) {
        cJSON_Delete(o);
        cJSON_Delete(sl);
        return pl_error(PL_ERR_NOMEM, "explain: out of memory");
    }
    cJSON_AddNumberToObject(o, "examples", (double)g->n_examples);
    cJSON_AddNumberToObject(o, "min_count", (double)min_count);
    cJSON_AddItemToObject(o, "slices", sl);
    for (size_t i = 0; i < g->n; i++) {
        pl_xstat *rows;
        size_t nr;
        pl_status st = slice_sorted(&g->s[i], min_count, &rows, &nr);
        if (st) {
            cJSON_Delete(o);
            return st;
        }
        if (k && nr > k) nr = k;
        cJSON *arr = cJSON_CreateArray();
        for (size_t r = 0; arr && r < nr; r++) cJSON_AddItemToArray(arr, stat_json(&rows[r]));
        free(rows);
        cJSON_AddItemToObject(sl, g->s[i].name, arr);
    }
    return emit(o, b);
}

pl_status pl_xdiff_to_json(const pl_xdiff *rows, size_t n, pl_buf *b) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddStringToObject(o, "key", rows[i].key);
        cJSON_AddNumberToObject(o, "count_a", (double)rows[i].count_a);
        cJSON_AddNumberToObject(o, "count_b", (double)rows[i].count_b);
        cJSON_AddNumberToObject(o, "mean_abs_phi_a", rows[i].mean_abs_a);
        cJSON_AddNumberToObject(o, "mean_abs_phi_b", rows[i].mean_abs_b);
        cJSON_AddNumberToObject(o, "diff", rows[i].diff);
        cJSON_AddItemToArray(a, o);
    }
    return emit(a, b);
}

pl_status pl_xcandidates_to_json(const pl_xcandidate *c, size_t n, pl_buf *b) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddStringToObject(o, "key", c[i].key);
        cJSON_AddStringToObject(o, "source", c[i].source ? c[i].source : "");
        cJSON_AddStringToObject(o, "proposal", "heuristic candidate");
        cJSON *ev = cJSON_AddObjectToObject(o, "evidence");
        if (ev) {
            cJSON_AddNumberToObject(ev, "source_log_odds_z", c[i].z);
            cJSON_AddNumberToObject(ev, "rank_by_mean_abs_phi", (double)c[i].rank);
            cJSON_AddNumberToObject(ev, "mean_abs_phi", c[i].mean_abs);
            cJSON_AddNumberToObject(ev, "mean_phi", c[i].mean);
            cJSON_AddNumberToObject(ev, "count", (double)c[i].count);
            cJSON_AddNumberToObject(ev, "mean_abs_phi_in_source", c[i].mean_abs_in_source);
        }
        cJSON_AddItemToArray(a, o);
    }
    return emit(a, b);
}
