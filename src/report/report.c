/* report.c — the report builder: validates the caller's data and copies it
 * into the report's JSON tree (which is also report.json), the UTF-8
 * cleaner, and the atomic writer of report.html + report.json.
 *
 * Every add-function builds its item completely before attaching it, so a
 * failed call leaves the report unchanged.
 */
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NOMEM() pl_error(PL_ERR_NOMEM, "report: out of memory")

/* ---- UTF-8 cleaning -------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid
 * (overlong forms, surrogates and code points above U+10FFFF included);
 * *cp receives the code point. */
static int utf8_seq(const unsigned char *s, uint32_t *cp) {
    unsigned c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    int n;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) { n = 2; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return n;
}

char *pl_report_clean_utf8(const char *s) {
    if (!s) s = "";
    size_t len = strlen(s), cap;
    /* Worst case: every byte becomes U+FFFD (3 bytes). */
    if (!pl_mul_ok(len, 3, &cap) || !pl_add_ok(cap, 1, &cap)) return NULL;
    char *out = malloc(cap);
    if (!out) return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t j = 0;
    while (*p) {
        uint32_t cp;
        int n = utf8_seq(p, &cp);
        int bad = n == 0 || (cp < 0x20 && cp != '\t' && cp != '\n') || cp == 0xFFFE || cp == 0xFFFF;
        if (bad) {
            memcpy(out + j, "\xEF\xBF\xBD", 3);
            j += 3;
            p += n ? n : 1;
        } else {
            memcpy(out + j, p, (size_t)n);
            j += (size_t)n;
            p += n;
        }
    }
    out[j] = 0;
    return out;
}

size_t utf8_len(const char *s) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80) n++;
    return n;
}

/* ---- number formatting ------------------------------------------------------ */

char *pl_report_fmt(double v, int digits, char *buf, size_t n) {
    if (!n) return buf;
    if (!isfinite(v)) {
        snprintf(buf, n, "n/a");
        return buf;
    }
    if (digits < 0) digits = 0;
    if (digits > 12) digits = 12;
    snprintf(buf, n, "%.*f", digits, v);
    /* "-0.00" -> "0.00": a minus sign in front of nothing but zeros. */
    if (buf[0] == '-' && strspn(buf + 1, "0.") == strlen(buf + 1)) memmove(buf, buf + 1, strlen(buf));
    return buf;
}

char *pl_report_fmt_ci(double v, double lo, double hi, int digits, char *buf, size_t n) {
    char a[64], l[64], h[64];
    pl_report_fmt(v, digits, a, sizeof a);
    if (isfinite(lo) && isfinite(hi))
        snprintf(buf, n, "%s [%s, %s]", a, pl_report_fmt(lo, digits, l, sizeof l), pl_report_fmt(hi, digits, h, sizeof h));
    else
        snprintf(buf, n, "%s", a);
    return buf;
}

/* ---- JSON building with a sticky ok flag ------------------------------------ */

static cJSON *clean_string(const char *s) {
    char *c = pl_report_clean_utf8(s);
    if (!c) return NULL;
    cJSON *j = cJSON_CreateString(c);
    free(c);
    return j;
}

static void put(cJSON *o, const char *k, cJSON *v, int *ok) {
    if (!*ok) { cJSON_Delete(v); return; }
    if (!v) { *ok = 0; return; }
    cJSON_AddItemToObject(o, k, v);
}
static void put_str(cJSON *o, const char *k, const char *s, int *ok) {
    if (s && *ok) put(o, k, clean_string(s), ok);
}
static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }
static void put_num(cJSON *o, const char *k, double v, int *ok) {
    if (*ok) put(o, k, num_or_null(v), ok);
}
static void put_int(cJSON *o, const char *k, double v, int *ok) {
    if (*ok) put(o, k, cJSON_CreateNumber(v), ok);
}
static cJSON *num_array(const double *v, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *x = num_or_null(v[i]);
        if (!x) { cJSON_Delete(a); return NULL; }
        cJSON_AddItemToArray(a, x);
    }
    return a;
}
/* v may be NULL: the key is left out. */
static void put_nums(cJSON *o, const char *k, const double *v, size_t n, int *ok) {
    if (v && *ok) put(o, k, num_array(v, n), ok);
}
static void put_nums2(cJSON *o, const char *k, const double *v, size_t rows, size_t cols, int *ok) {
    if (!v || !*ok) return;
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < rows; i++) {
        cJSON *row = num_array(v + i * cols, cols);
        if (!row) { cJSON_Delete(a); a = NULL; break; }
        cJSON_AddItemToArray(a, row);
    }
    put(o, k, a, ok);
}
static cJSON *str_array(const char *const *s, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *x = clean_string(s[i] ? s[i] : "");
        if (!x) { cJSON_Delete(a); return NULL; }
        cJSON_AddItemToArray(a, x);
    }
    return a;
}
static void put_strs(cJSON *o, const char *k, const char *const *s, size_t n, int *ok) {
    if (s && *ok) put(o, k, str_array(s, n), ok);
}
/* Labels "0", "1", ... when the caller gives none. */
static void put_labels(cJSON *o, const char *k, const char *const *s, size_t n, int *ok) {
    if (s) { put_strs(o, k, s, n, ok); return; }
    if (!*ok) return;
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%zu", i);
        cJSON *x = cJSON_CreateString(buf);
        if (!x) { cJSON_Delete(a); a = NULL; break; }
        cJSON_AddItemToArray(a, x);
    }
    put(o, k, a, ok);
}

/* ---- reading back (used by the renderer) ------------------------------------ */

const char *jstr_of(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}
double jnum_of(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(x) ? x->valuedouble : MISSING;
}
int jint_of(const cJSON *o, const char *key, int dflt) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(x) ? x->valueint : cJSON_IsBool(x) ? cJSON_IsTrue(x) : dflt;
}
int jnums_of(const cJSON *o, const char *key, double **out, size_t *n) {
    *out = NULL;
    *n = 0;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(a)) return 0;
    size_t cnt = 0;
    const cJSON *x, *y;
    cJSON_ArrayForEach(x, a) {
        if (cJSON_IsArray(x)) { cJSON_ArrayForEach(y, x) cnt++; }
        else cnt++;
    }
    double *v = malloc((cnt ? cnt : 1) * sizeof *v);
    if (!v) return -1;
    size_t i = 0;
    cJSON_ArrayForEach(x, a) {
        if (cJSON_IsArray(x)) {
            cJSON_ArrayForEach(y, x) v[i++] = cJSON_IsNumber(y) ? y->valuedouble : MISSING;
        } else {
            v[i++] = cJSON_IsNumber(x) ? x->valuedouble : MISSING;
        }
    }
    *out = v;
    *n = cnt;
    return 0;
}
int jstrs_of(const cJSON *o, const char *key, const char ***out, size_t *n) {
    *out = NULL;
    *n = 0;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(a)) return 0;
    size_t cnt = (size_t)cJSON_GetArraySize(a), i = 0;
    const char **v = malloc((cnt ? cnt : 1) * sizeof *v);
    if (!v) return -1;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) v[i++] = cJSON_IsString(x) ? x->valuestring : "";
    *out = v;
    *n = cnt;
    return 0;
}

/* ---- the document ------------------------------------------------------------ */

pl_report *pl_report_new(const char *title) {
    pl_report *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    int ok = 1;
    r->root = cJSON_CreateObject();
    r->ids = cJSON_CreateObject();
    if (!r->root || !r->ids) ok = 0;
    put_str(r->root, "format", "phishlens-report", &ok);
    put_int(r->root, "version", 1, &ok);
    put_str(r->root, "title", title ? title : "phishlens report", &ok);
    put(r->root, "meta", ok ? cJSON_CreateArray() : NULL, &ok);
    if (ok) r->sections = cJSON_AddArrayToObject(r->root, "sections");
    if (!ok || !r->sections) {
        pl_report_free(r);
        return NULL;
    }
    return r;
}

void pl_report_free(pl_report *r) {
    if (!r) return;
    cJSON_Delete(r->root);
    cJSON_Delete(r->ids);
    free(r);
}

pl_status pl_report_meta(pl_report *r, const char *key, const char *value) {
    if (!r || !key) return pl_error(PL_ERR_INVALID, "report meta: key is NULL");
    cJSON *pair = cJSON_CreateArray();
    cJSON *k = clean_string(key), *v = clean_string(value ? value : "");
    if (!pair || !k || !v) {
        cJSON_Delete(pair), cJSON_Delete(k), cJSON_Delete(v);
        return NOMEM();
    }
    cJSON_AddItemToArray(pair, k);
    cJSON_AddItemToArray(pair, v);
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(r->root, "meta"), pair);
    return PL_OK;
}

static int id_valid(const char *id) {
    size_t n = strlen(id);
    if (n == 0 || n > 64) return 0;
    if (!((id[0] >= 'a' && id[0] <= 'z') || (id[0] >= 'A' && id[0] <= 'Z'))) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        int good = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!good) return 0;
    }
    return 1;
}

/* Check (or invent) an id; *out receives it (buf when invented). Does not
 * register it: claim_id does, once the item is attached. */
static pl_status pick_id(pl_report *r, const char *id, char *buf, size_t n, const char **out) {
    if (id) {
        if (!id_valid(id))
            return pl_error(PL_ERR_INVALID,
                            "report: id \"%.80s\" is not valid (letters, digits, '_' or '-', starting with a "
                            "letter, at most 64 characters)",
                            id);
        if (cJSON_GetObjectItemCaseSensitive(r->ids, id))
            return pl_error(PL_ERR_INVALID, "report: id \"%s\" is used twice", id);
        *out = id;
        return PL_OK;
    }
    unsigned k = r->next_auto;
    do {
        snprintf(buf, n, "fig-%u", ++k);
    } while (cJSON_GetObjectItemCaseSensitive(r->ids, buf));
    *out = buf;
    return PL_OK;
}

static pl_status claim_id(pl_report *r, const char *id) {
    cJSON *t = cJSON_CreateTrue();
    if (!t) return NOMEM();
    cJSON_AddItemToObject(r->ids, id, t);
    if (strncmp(id, "fig-", 4) == 0) {
        unsigned k = (unsigned)strtoul(id + 4, NULL, 10);
        if (k > r->next_auto) r->next_auto = k;
    }
    return PL_OK;
}

pl_status pl_report_section(pl_report *r, const char *id, const char *title) {
    if (!r) return pl_error(PL_ERR_INVALID, "report: NULL report");
    if (r->group) return pl_error(PL_ERR_INVALID, "report: section \"%s\" started inside an open group", id ? id : "");
    char buf[32];
    const char *sid;
    pl_status st = pick_id(r, id, buf, sizeof buf, &sid);
    if (st) return st;
    int ok = 1;
    cJSON *s = cJSON_CreateObject();
    if (!s) return NOMEM();
    put_str(s, "id", sid, &ok);
    put_str(s, "title", title ? title : sid, &ok);
    cJSON *items = ok ? cJSON_AddArrayToObject(s, "items") : NULL;
    if (!ok || !items) {
        cJSON_Delete(s);
        return NOMEM();
    }
    if ((st = claim_id(r, sid))) {
        cJSON_Delete(s);
        return st;
    }
    cJSON_AddItemToArray(r->sections, s);
    r->items = items;
    return PL_OK;
}

/* Attach a finished item to the open group or the current section. */
static pl_status attach(pl_report *r, cJSON *it, const char *id) {
    pl_status st = id ? claim_id(r, id) : PL_OK;
    if (st) {
        cJSON_Delete(it);
        return st;
    }
    cJSON_AddItemToArray(r->group ? r->group : r->items, it);
    return PL_OK;
}

/* Start an item of type `type` with an id (checked or invented). */
static pl_status new_item(pl_report *r, const char *type, const char *id, char *buf, size_t n, cJSON **it,
                          const char **idp) {
    *it = NULL;
    if (!r) return pl_error(PL_ERR_INVALID, "report: NULL report");
    if (!r->items) return pl_error(PL_ERR_INVALID, "report: %s added before any section (call pl_report_section first)", type);
    const char *use = NULL;
    if (idp) {
        pl_status st = pick_id(r, id, buf, n, &use);
        if (st) return st;
        *idp = use;
    }
    int ok = 1;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NOMEM();
    put_str(o, "type", type, &ok);
    if (use) put_str(o, "id", use, &ok);
    if (!ok) {
        cJSON_Delete(o);
        return NOMEM();
    }
    *it = o;
    return PL_OK;
}

static pl_status finish(pl_report *r, cJSON *it, const char *id, int ok) {
    if (!ok) {
        cJSON_Delete(it);
        return NOMEM();
    }
    return attach(r, it, id);
}

pl_status pl_report_subsection(pl_report *r, const char *id, const char *title) {
    if (r && r->group) return pl_error(PL_ERR_INVALID, "report: subsection inside an open group");
    char buf[32];
    const char *sid;
    cJSON *it;
    pl_status st = new_item(r, "subsection", id, buf, sizeof buf, &it, &sid);
    if (st) return st;
    int ok = 1;
    put_str(it, "title", title ? title : sid, &ok);
    return finish(r, it, sid, ok);
}

pl_status pl_report_paragraph(pl_report *r, const char *text) {
    cJSON *it;
    pl_status st = new_item(r, "paragraph", NULL, NULL, 0, &it, NULL);
    if (st) return st;
    int ok = 1;
    put_str(it, "text", text ? text : "", &ok);
    return finish(r, it, NULL, ok);
}

static int has_digit(const char *s) {
    for (; *s; s++)
        if (*s >= '0' && *s <= '9') return 1;
    return 0;
}

pl_status pl_report_finding(pl_report *r, const char *id, pl_finding_level level, const char *headline,
                            const pl_report_sentence *s, size_t n) {
    if (n == 0 || !s) return pl_error(PL_ERR_INVALID, "report finding \"%s\": no sentences", headline ? headline : "");
    for (size_t i = 0; i < n; i++) {
        const char *what = !s[i].text || !*s[i].text ? "text" : !s[i].evidence || !*s[i].evidence ? "evidence"
                         : !s[i].cite || !*s[i].cite ? "cite" : NULL;
        if (what)
            return pl_error(PL_ERR_INVALID, "report finding \"%s\": sentence %zu has no %s", headline ? headline : "",
                            i + 1, what);
        if (!has_digit(s[i].evidence))
            return pl_error(PL_ERR_INVALID, "report finding \"%s\": sentence %zu: evidence \"%.80s\" has no number",
                            headline ? headline : "", i + 1, s[i].evidence);
        if (s[i].cite[0] == '#' && !id_valid(s[i].cite + 1))
            return pl_error(PL_ERR_INVALID, "report finding \"%s\": sentence %zu: cite \"%.80s\" is not a valid #id",
                            headline ? headline : "", i + 1, s[i].cite);
    }
    if (level < PL_FINDING_INFO || level > PL_FINDING_PROBLEM)
        return pl_error(PL_ERR_INVALID, "report finding: bad level %d", (int)level);
    char buf[32];
    const char *fid;
    cJSON *it;
    pl_status st = new_item(r, "finding", id, buf, sizeof buf, &it, &fid);
    if (st) return st;
    static const char *levels[] = {"info", "warn", "problem"};
    int ok = 1;
    put_str(it, "level", levels[level], &ok);
    put_str(it, "headline", headline ? headline : "", &ok);
    cJSON *arr = ok ? cJSON_CreateArray() : NULL;
    for (size_t i = 0; arr && ok && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o) { ok = 0; break; }
        cJSON_AddItemToArray(arr, o);
        put_str(o, "text", s[i].text, &ok);
        put_str(o, "evidence", s[i].evidence, &ok);
        put_str(o, "cite", s[i].cite, &ok);
    }
    put(it, "sentences", arr, &ok);
    return finish(r, it, fid, ok);
}

pl_status pl_report_table(pl_report *r, const char *id, const char *caption, size_t n_rows, size_t n_cols,
                          const char *const *header, const char *const *cells) {
    size_t total = 0;
    if (n_cols == 0 || (!cells && n_rows) || !pl_mul_ok(n_rows, n_cols, &total))
        return pl_error(PL_ERR_INVALID, "report table \"%s\": bad shape %zu x %zu", id ? id : "", n_rows, n_cols);
    char buf[32];
    const char *tid;
    cJSON *it;
    pl_status st = new_item(r, "table", id, buf, sizeof buf, &it, &tid);
    if (st) return st;
    int ok = 1;
    put_str(it, "caption", caption, &ok);
    put_strs(it, "header", header, n_cols, &ok);
    cJSON *rows = ok ? cJSON_CreateArray() : NULL;
    for (size_t i = 0; rows && ok && i < n_rows; i++) {
        cJSON *row = str_array(cells + i * n_cols, n_cols);
        if (!row) { ok = 0; break; }
        cJSON_AddItemToArray(rows, row);
    }
    put(it, "rows", rows, &ok);
    return finish(r, it, tid, ok);
}

/* ---- charts ------------------------------------------------------------------ */

static void put_text(cJSON *it, const pl_chart_text *t, int *ok) {
    if (!t) return;
    put_str(it, "title", t->title, ok);
    put_str(it, "caption", t->caption, ok);
    put_str(it, "x_label", t->x_label, ok);
    put_str(it, "y_label", t->y_label, ok);
}

static pl_status chart_item(pl_report *r, const char *type, const pl_chart_text *t, char *buf, size_t n, cJSON **it,
                            const char **id) {
    return new_item(r, type, t ? t->id : NULL, buf, n, it, id);
}

/* Shape checks: a chart with nothing to draw is a caller bug worth a message. */
static pl_status need(int cond, const char *chart, const pl_chart_text *t, const char *what) {
    if (cond) return PL_OK;
    return pl_error(PL_ERR_INVALID, "report %s \"%s\": %s", chart, t && t->id ? t->id : (t && t->title ? t->title : ""),
                    what);
}

pl_heatmap pl_heatmap_defaults(void) {
    pl_heatmap h;
    memset(&h, 0, sizeof h);
    h.scale = PL_SCALE_SEQUENTIAL;
    h.vmin = h.vmax = MISSING;
    h.center = 0;
    h.show_values = 1;
    h.digits = 2;
    return h;
}

static void finite_range(const double *v, size_t n, double *lo, double *hi) {
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t i = 0; v && i < n; i++)
        if (isfinite(v[i])) {
            if (v[i] < *lo) *lo = v[i];
            if (v[i] > *hi) *hi = v[i];
        }
}

static pl_status add_heatmap(pl_report *r, const pl_heatmap *h, const char *kind) {
    size_t total = 0;
    pl_status st;
    if ((st = need(h && h->n_rows && h->n_cols && h->values && pl_mul_ok(h->n_rows, h->n_cols, &total), "heatmap",
                   h ? &h->t : NULL, "needs n_rows, n_cols > 0 and values")))
        return st;
    if ((st = need(h->scale == PL_SCALE_SEQUENTIAL || h->scale == PL_SCALE_DIVERGING, "heatmap", &h->t, "bad scale")))
        return st;
    char buf[32];
    const char *id;
    cJSON *it;
    if ((st = chart_item(r, "heatmap", &h->t, buf, sizeof buf, &it, &id))) return st;
    /* Resolve the color range now so report.json says what the legend shows. */
    double lo, hi;
    finite_range(h->values, total, &lo, &hi);
    if (!(lo <= hi)) lo = hi = 0; /* every cell missing */
    double vmin = isfinite(h->vmin) ? h->vmin : lo, vmax = isfinite(h->vmax) ? h->vmax : hi;
    double center = isfinite(h->center) ? h->center : 0;
    if (h->scale == PL_SCALE_DIVERGING) {
        double m = fmax(fabs(vmax - center), fabs(center - vmin));
        if (!(m > 0)) m = 1;
        vmin = center - m;
        vmax = center + m;
    } else if (!(vmax > vmin)) {
        vmax = vmin + 1;
    }
    int ok = 1;
    put_str(it, "kind", kind, &ok);
    put_text(it, &h->t, &ok);
    put_labels(it, "rows", h->row_labels, h->n_rows, &ok);
    put_labels(it, "cols", h->col_labels, h->n_cols, &ok);
    put_nums2(it, "values", h->values, h->n_rows, h->n_cols, &ok);
    if (h->cell_text && ok) {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; a && i < h->n_rows; i++) {
            cJSON *row = str_array(h->cell_text + i * h->n_cols, h->n_cols);
            if (!row) { cJSON_Delete(a); a = NULL; break; }
            cJSON_AddItemToArray(a, row);
        }
        put(it, "cell_text", a, &ok);
    }
    if (h->mark && ok) {
        double *m = malloc(total * sizeof *m);
        if (!m) ok = 0;
        for (size_t i = 0; m && i < total; i++) m[i] = h->mark[i] ? 1 : 0;
        put_nums2(it, "mark", m, h->n_rows, h->n_cols, &ok);
        free(m);
    }
    put_str(it, "scale", h->scale == PL_SCALE_DIVERGING ? "diverging" : "sequential", &ok);
    put_num(it, "vmin", vmin, &ok);
    put_num(it, "vmax", vmax, &ok);
    put_num(it, "center", center, &ok);
    put_int(it, "show_values", h->show_values ? 1 : 0, &ok);
    put_int(it, "digits", h->digits < 0 ? 0 : h->digits > 6 ? 6 : h->digits, &ok);
    put_str(it, "legend", h->legend, &ok);
    return finish(r, it, id, ok);
}

pl_status pl_report_heatmap(pl_report *r, const pl_heatmap *h) { return add_heatmap(r, h, "heatmap"); }

pl_status pl_report_attention(pl_report *r, const pl_chart_text *t, size_t n_q, size_t n_k,
                              const char *const *q_tokens, const char *const *k_tokens, const double *weights) {
    pl_heatmap h = pl_heatmap_defaults();
    if (t) h.t = *t;
    if (!h.t.x_label) h.t.x_label = "key token";
    if (!h.t.y_label) h.t.y_label = "query token";
    h.n_rows = n_q;
    h.n_cols = n_k;
    h.row_labels = q_tokens;
    h.col_labels = k_tokens;
    h.values = weights;
    h.vmin = 0;
    h.show_values = 0;
    h.legend = "weight";
    return add_heatmap(r, &h, "attention");
}

pl_bars pl_bars_defaults(void) {
    pl_bars b;
    memset(&b, 0, sizeof b);
    b.ref = MISSING;
    b.digits = 2;
    return b;
}

pl_status pl_report_bars(pl_report *r, const pl_bars *b) {
    size_t total = 0;
    pl_status st;
    if ((st = need(b && b->n_groups && b->n_series && b->values && pl_mul_ok(b->n_groups, b->n_series, &total), "bars",
                   b ? &b->t : NULL, "needs n_groups, n_series > 0 and values")))
        return st;
    char buf[32];
    const char *id;
    cJSON *it;
    if ((st = chart_item(r, "bars", &b->t, buf, sizeof buf, &it, &id))) return st;
    int ok = 1;
    put_text(it, &b->t, &ok);
    put_labels(it, "groups", b->groups, b->n_groups, &ok);
    if (b->series) put_strs(it, "series", b->series, b->n_series, &ok);
    else put_labels(it, "series", NULL, b->n_series, &ok);
    put_nums2(it, "values", b->values, b->n_groups, b->n_series, &ok);
    put_nums2(it, "lo", b->lo, b->n_groups, b->n_series, &ok);
    put_nums2(it, "hi", b->hi, b->n_groups, b->n_series, &ok);
    if (isfinite(b->ref)) put_num(it, "ref", b->ref, &ok);
    put_int(it, "digits", b->digits < 0 ? 0 : b->digits > 6 ? 6 : b->digits, &ok);
    return finish(r, it, id, ok);
}

pl_lines pl_lines_defaults(void) {
    pl_lines l;
    memset(&l, 0, sizeof l);
    l.x_min = l.x_max = l.y_min = l.y_max = l.hline = MISSING;
    return l;
}

pl_status pl_report_lines(pl_report *r, const pl_lines *l) {
    pl_status st;
    if ((st = need(l && l->n_series && l->series, "lines", l ? &l->t : NULL, "needs at least one series"))) return st;
    for (size_t s = 0; s < l->n_series; s++)
        if ((st = need(l->series[s].n == 0 || (l->series[s].x && l->series[s].y), "lines", &l->t,
                       "a series with points needs x and y")))
            return st;
    char buf[32];
    const char *id;
    cJSON *it;
    if ((st = chart_item(r, "lines", &l->t, buf, sizeof buf, &it, &id))) return st;
    int ok = 1;
    put_text(it, &l->t, &ok);
    cJSON *arr = ok ? cJSON_CreateArray() : NULL;
    for (size_t s = 0; arr && ok && s < l->n_series; s++) {
        const pl_series *se = &l->series[s];
        cJSON *o = cJSON_CreateObject();
        if (!o) { ok = 0; break; }
        cJSON_AddItemToArray(arr, o);
        char nm[32];
        snprintf(nm, sizeof nm, "series %zu", s + 1);
        put_str(o, "name", se->name ? se->name : nm, &ok);
        put_nums(o, "x", se->x, se->n, &ok);
        put_nums(o, "y", se->y, se->n, &ok);
        put_nums(o, "lo", se->lo, se->n, &ok);
        put_nums(o, "hi", se->hi, se->n, &ok);
        if (se->dashed) put_int(o, "dashed", 1, &ok);
    }
    put(it, "series", arr, &ok);
    put_num(it, "x_min", l->x_min, &ok);
    put_num(it, "x_max", l->x_max, &ok);
    put_num(it, "y_min", l->y_min, &ok);
    put_num(it, "y_max", l->y_max, &ok);
    put_int(it, "diagonal", l->diagonal ? 1 : 0, &ok);
    if (isfinite(l->hline)) put_num(it, "hline", l->hline, &ok);
    put_int(it, "integer_x", l->integer_x ? 1 : 0, &ok);
    put_int(it, "points", l->points ? 1 : 0, &ok);
    return finish(r, it, id, ok);
}

pl_hbars pl_hbars_defaults(void) {
    pl_hbars h;
    memset(&h, 0, sizeof h);
    h.pos_label = "phishing";
    h.neg_label = "legitimate";
    h.digits = 3;
    return h;
}

pl_status pl_report_hbars(pl_report *r, const pl_hbars *h) {
    pl_status st;
    if ((st = need(h && h->n && h->values, "hbars", h ? &h->t : NULL, "needs n > 0 and values"))) return st;
    char buf[32];
    const char *id;
    cJSON *it;
    if ((st = chart_item(r, "hbars", &h->t, buf, sizeof buf, &it, &id))) return st;
    int ok = 1;
    put_text(it, &h->t, &ok);
    put_labels(it, "labels", h->labels, h->n, &ok);
    put_nums(it, "values", h->values, h->n, &ok);
    put_nums(it, "lo", h->lo, h->n, &ok);
    put_nums(it, "hi", h->hi, h->n, &ok);
    put_str(it, "pos_label", h->pos_label, &ok);
    put_str(it, "neg_label", h->neg_label, &ok);
    put_int(it, "digits", h->digits < 0 ? 0 : h->digits > 6 ? 6 : h->digits, &ok);
    return finish(r, it, id, ok);
}

pl_stacked pl_stacked_defaults(void) {
    pl_stacked s;
    memset(&s, 0, sizeof s);
    return s;
}

pl_status pl_report_stacked(pl_report *r, const pl_stacked *s) {
    size_t total = 0;
    pl_status st;
    if ((st = need(s && s->n_groups && s->n_parts && s->values && pl_mul_ok(s->n_groups, s->n_parts, &total),
                   "stacked", s ? &s->t : NULL, "needs n_groups, n_parts > 0 and values")))
        return st;
    for (size_t i = 0; i < total; i++)
        if ((st = need(!isfinite(s->values[i]) || s->values[i] >= 0, "stacked", &s->t, "values must be >= 0")))
            return st;
    char buf[32];
    const char *id;
    cJSON *it;
    if ((st = chart_item(r, "stacked", &s->t, buf, sizeof buf, &it, &id))) return st;
    int ok = 1;
    put_text(it, &s->t, &ok);
    put_labels(it, "groups", s->groups, s->n_groups, &ok);
    put_labels(it, "parts", s->parts, s->n_parts, &ok);
    put_nums2(it, "values", s->values, s->n_groups, s->n_parts, &ok);
    put_int(it, "normalize", s->normalize ? 1 : 0, &ok);
    return finish(r, it, id, ok);
}

pl_quantiles pl_quantiles_defaults(void) {
    pl_quantiles q;
    memset(&q, 0, sizeof q);
    return q;
}

pl_status pl_report_quantiles(pl_report *r, const pl_quantiles *q) {
    size_t total = 0;
    pl_status st;
    if ((st = need(q && q->n_groups && q->q && pl_mul_ok(q->n_groups, 5, &total), "quantiles", q ? &q->t : NULL,
                   "needs n_groups > 0 and q")))
        return st;
    for (size_t g = 0; g < q->n_groups; g++) {
        const double *v = q->q + g * 5;
        for (int k = 0; k < 5; k++) {
            if (!isfinite(v[k])) continue;
            if ((st = need(!q->log_x || v[k] > 0, "quantiles", &q->t, "a log axis needs positive values"))) return st;
            for (int j = k + 1; j < 5; j++)
                if (isfinite(v[j]) && (st = need(v[j] >= v[k], "quantiles", &q->t, "quantiles must be non-decreasing")))
                    return st;
        }
    }
    char buf[32];
    const char *id;
    cJSON *it;
    if ((st = chart_item(r, "quantiles", &q->t, buf, sizeof buf, &it, &id))) return st;
    int ok = 1;
    put_text(it, &q->t, &ok);
    put_labels(it, "groups", q->groups, q->n_groups, &ok);
    put_nums2(it, "q", q->q, q->n_groups, 5, &ok);
    put_int(it, "log_x", q->log_x ? 1 : 0, &ok);
    return finish(r, it, id, ok);
}

pl_status pl_report_text_heat(pl_report *r, const pl_chart_text *t, size_t n, const char *const *tokens,
                              const double *values, double vmax) {
    pl_status st;
    if ((st = need(n == 0 || (tokens && values), "text_heat", t, "needs tokens and values"))) return st;
    char buf[32];
    const char *id;
    cJSON *it;
    if ((st = chart_item(r, "text_heat", t, buf, sizeof buf, &it, &id))) return st;
    double lo, hi;
    finite_range(values, n, &lo, &hi);
    double m = isfinite(vmax) && vmax > 0 ? vmax : fmax(fabs(lo), fabs(hi));
    if (!(isfinite(m) && m > 0)) m = 1;
    int ok = 1;
    put_text(it, t, &ok);
    put_strs(it, "tokens", tokens, n, &ok);
    if (n == 0) put(it, "tokens", ok ? cJSON_CreateArray() : NULL, &ok);
    put_nums(it, "values", values, n, &ok);
    if (n == 0) put(it, "values", ok ? cJSON_CreateArray() : NULL, &ok);
    put_num(it, "vmax", m, &ok);
    return finish(r, it, id, ok);
}

pl_status pl_report_html(pl_report *r, const pl_chart_text *t, const char *trusted_html) {
    pl_status st;
    if ((st = need(trusted_html != NULL, "html", t, "fragment is NULL"))) return st;
    char buf[32];
    const char *id;
    cJSON *it;
    if ((st = chart_item(r, "html", t, buf, sizeof buf, &it, &id))) return st;
    int ok = 1;
    put_text(it, t, &ok);
    put_str(it, "html", trusted_html, &ok);
    return finish(r, it, id, ok);
}

pl_status pl_report_group_begin(pl_report *r) {
    if (r && r->group) return pl_error(PL_ERR_INVALID, "report: groups do not nest");
    cJSON *it;
    pl_status st = new_item(r, "group", NULL, NULL, 0, &it, NULL);
    if (st) return st;
    cJSON *items = cJSON_AddArrayToObject(it, "items");
    if (!items) {
        cJSON_Delete(it);
        return NOMEM();
    }
    cJSON_AddItemToArray(r->items, it);
    r->group = items;
    return PL_OK;
}

pl_status pl_report_group_end(pl_report *r) {
    if (!r || !r->group) return pl_error(PL_ERR_INVALID, "report: group_end without group_begin");
    r->group = NULL;
    return PL_OK;
}

/* ---- from eval/ ------------------------------------------------------------- */

pl_status pl_report_matrix(pl_report *r, const char *id, const char *title, const pl_matrix *m) {
    if (!m || !m->n_rows || !m->n_cols) return pl_error(PL_ERR_INVALID, "report matrix: empty matrix");
    if (!id) return pl_error(PL_ERR_INVALID, "report matrix: an id is needed (the gap table uses <id>-gap)");
    size_t R = m->n_rows, C = m->n_cols, total = R * C;
    double *v = malloc(total * sizeof *v);
    char **labels = calloc(R, sizeof *labels), **cells = calloc(total, sizeof *cells);
    unsigned char *mark = malloc(total);
    const char **tab = calloc(R * 5, sizeof *tab);
    char (*num)[64] = calloc(R * 4, sizeof *num);
    pl_status st = PL_OK;
    if (!v || !labels || !cells || !mark || !tab || !num) { st = NOMEM(); goto out; }
    for (size_t i = 0; i < R && !st; i++) {
        const pl_matrix_row *row = &m->rows[i];
        size_t ln = strlen(row->model ? row->model : "") + strlen(row->train_set ? row->train_set : "") + 4;
        if (!(labels[i] = malloc(ln))) { st = NOMEM(); break; }
        snprintf(labels[i], ln, "%s / %s", row->model ? row->model : "", row->train_set ? row->train_set : "");
        for (size_t j = 0; j < C; j++) {
            const pl_matrix_cell *c = &row->cells[j];
            v[i * C + j] = c->n > 0 ? c->f1 : MISSING;
            mark[i * C + j] = (unsigned char)(c->in_domain != 0);
            char lo[32], hi[32], b[96];
            if (c->n > 0 && isfinite(c->ci.lo))
                snprintf(b, sizeof b, "[%s, %s]", pl_report_fmt(c->ci.lo, 2, lo, sizeof lo),
                         pl_report_fmt(c->ci.hi, 2, hi, sizeof hi));
            else if (c->n > 0)
                snprintf(b, sizeof b, "n=%lld", (long long)c->n);
            else
                b[0] = 0;
            if (!(cells[i * C + j] = strdup(b))) { st = NOMEM(); break; }
        }
        tab[i * 5 + 0] = labels[i];
        tab[i * 5 + 1] = pl_report_fmt(row->mean_in, 3, num[i * 4 + 0], 64);
        tab[i * 5 + 2] = pl_report_fmt(row->mean_out, 3, num[i * 4 + 1], 64);
        tab[i * 5 + 3] = pl_report_fmt(row->gap, 3, num[i * 4 + 2], 64);
        if (row->loso_col >= 0 && (size_t)row->loso_col < C) tab[i * 5 + 4] = m->cols[row->loso_col];
        else tab[i * 5 + 4] = "";
    }
    if (!st) {
        char gid[80];
        snprintf(gid, sizeof gid, "%s-gap", id);
        /* The table id is checked first so that a clash leaves nothing added. */
        char b2[32];
        const char *tmp;
        if ((st = pick_id(r, gid, b2, sizeof b2, &tmp))) goto out;
        pl_heatmap h = pl_heatmap_defaults();
        h.t.id = id;
        h.t.title = title ? title : "Generalization matrix (F1)";
        h.t.caption = "F1 of each model / training set (rows) on each test source (columns) with its bootstrap "
                      "interval; outlined cells are in-domain (the test source was in the training set).";
        h.t.x_label = "test source";
        h.t.y_label = "model / training set";
        h.n_rows = R;
        h.n_cols = C;
        h.row_labels = (const char *const *)labels;
        h.col_labels = (const char *const *)m->cols;
        h.values = v;
        h.cell_text = (const char *const *)cells;
        h.mark = mark;
        h.vmin = 0;
        h.vmax = 1;
        h.legend = "F1";
        if ((st = pl_report_heatmap(r, &h))) goto out;
        static const char *hdr[] = {"model / training set", "mean F1 in-domain", "mean F1 out-of-domain", "gap (in - out)",
                                    "held-out source"};
        st = pl_report_table(r, gid, "Generalization gap per row (mean over cells; n/a when a side has no cells).", R,
                             5, hdr, tab);
    }
out:
    for (size_t i = 0; labels && i < R; i++) free(labels[i]);
    for (size_t i = 0; cells && i < total; i++) free(cells[i]);
    free(v), free(labels), free(cells), free(mark), free(tab), free(num);
    return st;
}

pl_status pl_report_reliability(pl_report *r, const pl_chart_text *t, size_t n_curves, const char *const *names,
                                const pl_rel_bin *const *bins) {
    if (!n_curves || !bins) return pl_error(PL_ERR_INVALID, "report reliability: no curves");
    pl_series *se = calloc(n_curves, sizeof *se);
    double *xy = calloc(n_curves * 2 * PL_ECE_BINS, sizeof *xy);
    pl_status st = PL_OK;
    if (!se || !xy) { st = NOMEM(); goto out; }
    for (size_t c = 0; c < n_curves; c++) {
        double *x = xy + c * 2 * PL_ECE_BINS, *y = x + PL_ECE_BINS;
        size_t k = 0;
        /* Empty bins have no point; the curve joins the bins that have data. */
        for (int b = 0; b < PL_ECE_BINS; b++)
            if (bins[c][b].count > 0 && isfinite(bins[c][b].mean_pred) && isfinite(bins[c][b].observed)) {
                x[k] = bins[c][b].mean_pred;
                y[k] = bins[c][b].observed;
                k++;
            }
        se[c].name = names ? names[c] : NULL;
        se[c].n = k;
        se[c].x = x;
        se[c].y = y;
    }
    pl_lines l = pl_lines_defaults();
    if (t) l.t = *t;
    if (!l.t.title) l.t.title = "Reliability diagram";
    if (!l.t.x_label) l.t.x_label = "mean predicted P(phishing)";
    if (!l.t.y_label) l.t.y_label = "observed phishing rate";
    l.n_series = n_curves;
    l.series = se;
    l.x_min = l.y_min = 0;
    l.x_max = l.y_max = 1;
    l.diagonal = 1;
    l.points = 1;
    st = pl_report_lines(r, &l);
out:
    free(se);
    free(xy);
    return st;
}

/* ---- output ------------------------------------------------------------------ */

cJSON *pl_report_to_json(const pl_report *r) { return r ? cJSON_Duplicate(r->root, 1) : NULL; }

pl_status pl_report_write(const pl_report *r, const char *dir) {
    if (!r || !dir) return pl_error(PL_ERR_INVALID, "report write: NULL argument");
    pl_buf html = {0};
    pl_status st = pl_report_render_html(r, &html);
    if (st) {
        pl_buf_free(&html);
        return st;
    }
    char *json = cJSON_Print(r->root);
    if (!json) {
        pl_buf_free(&html);
        return NOMEM();
    }
    size_t dl = strlen(dir) + 16;
    char *ph = malloc(dl), *pj = malloc(dl);
    if (!ph || !pj) { st = NOMEM(); goto out; }
    snprintf(ph, dl, "%s/report.html", dir);
    snprintf(pj, dl, "%s/report.json", dir);
    if ((st = pl_mkdirs(dir))) goto out;
    pl_afile f;
    if ((st = pl_afile_open(&f, pj))) goto out;
    if ((st = pl_afile_write(&f, json, strlen(json))) || (st = pl_afile_write(&f, "\n", 1))) {
        pl_afile_abort(&f);
        goto out;
    }
    if ((st = pl_afile_commit(&f))) goto out;
    if ((st = pl_write_file_atomic(ph, html.data, html.len))) goto out;
out:
    if (st) pl_error_wrap(st, "writing report to %s", dir);
    free(ph), free(pj);
    cJSON_free(json);
    pl_buf_free(&html);
    return st;
}
