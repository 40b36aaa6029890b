/* preds.c — predictions.jsonl and run.json: parse, validate, write atomically.
 *
 * predictions.jsonl holds one JSON object per scored email (docs/eval.md):
 *   {"id","source","label","p_phish","score","pred"[,"has_url","html",
 *    "length","link_mismatch","rationale"]}
 * Every field is validated before use; errors name file, line and field.
 */
#include "eval.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void pl_pred_free(pl_pred *p) {
    free(p->id);
    free(p->source);
    free(p->rationale);
    p->id = p->source = p->rationale = NULL;
}

pl_status pl_preds_push(pl_preds *ps, const pl_pred *p) {
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 64, bytes;
        if (!pl_mul_ok(cap, sizeof *ps->v, &bytes)) return pl_error(PL_ERR_NOMEM, "too many predictions");
        pl_pred *v = realloc(ps->v, bytes);
        if (!v) return pl_error(PL_ERR_NOMEM, "out of memory");
        ps->v = v;
        ps->cap = cap;
    }
    pl_pred q = *p;
    q.id = dupstr(p->id ? p->id : "");
    q.source = dupstr(p->source ? p->source : "");
    q.rationale = p->rationale ? dupstr(p->rationale) : NULL;
    if (!q.id || !q.source || (p->rationale && !q.rationale)) {
        pl_pred_free(&q);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    ps->v[ps->n++] = q;
    return PL_OK;
}

void pl_preds_free(pl_preds *ps) {
    for (size_t i = 0; i < ps->n; i++) pl_pred_free(&ps->v[i]);
    free(ps->v);
    ps->v = NULL;
    ps->n = ps->cap = 0;
}

/* ---- one line ---------------------------------------------------------- */

static pl_status get_bool(cJSON *o, const char *key, int *out, const char *path, size_t lineno) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = -1;
    if (!v || cJSON_IsNull(v)) return PL_OK;
    if (cJSON_IsBool(v)) *out = cJSON_IsTrue(v) ? 1 : 0;
    else if (cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1)) *out = (int)v->valuedouble;
    else return pl_error(PL_ERR_FORMAT, "%s:%zu: field \"%s\" must be true/false (or 0/1)", path, lineno, key);
    return PL_OK;
}

pl_status pl_pred_from_json(const char *line, size_t len, const char *path, size_t lineno, pl_pred *p) {
    memset(p, 0, sizeof *p);
    const char *endp = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(line, len, &endp, 0);
    if (!o || !cJSON_IsObject(o)) {
        size_t col = endp && endp >= line ? (size_t)(endp - line) + 1 : 1;
        cJSON_Delete(o);
        return pl_error(PL_ERR_FORMAT, "%s:%zu: column %zu: not a JSON object", path, lineno, col);
    }
    pl_status st = PL_OK;
    const char *skeys[2] = {"id", "source"};
    char **sdst[2] = {&p->id, &p->source};
    for (int k = 0; k < 2 && !st; k++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(o, skeys[k]);
        if (!v) st = pl_error(PL_ERR_FORMAT, "%s:%zu: missing field \"%s\"", path, lineno, skeys[k]);
        else if (!cJSON_IsString(v))
            st = pl_error(PL_ERR_FORMAT, "%s:%zu: field \"%s\" must be a string", path, lineno, skeys[k]);
        else if (!(*sdst[k] = dupstr(v->valuestring))) st = pl_error(PL_ERR_NOMEM, "out of memory");
    }
    cJSON *lab = st ? NULL : cJSON_GetObjectItemCaseSensitive(o, "label");
    if (!st) {
        if (!lab) st = pl_error(PL_ERR_FORMAT, "%s:%zu: missing field \"label\"", path, lineno);
        else if (!cJSON_IsNumber(lab) || (lab->valuedouble != 0 && lab->valuedouble != 1))
            st = pl_error(PL_ERR_FORMAT, "%s:%zu: field \"label\" must be 0 or 1 (unlabelled emails cannot be evaluated)",
                          path, lineno);
        else p->label = (int)lab->valuedouble;
    }
    cJSON *pp = st ? NULL : cJSON_GetObjectItemCaseSensitive(o, "p_phish");
    cJSON *sc = st ? NULL : cJSON_GetObjectItemCaseSensitive(o, "score");
    if (!st && pp && !cJSON_IsNull(pp)) {
        if (!cJSON_IsNumber(pp) || !(pp->valuedouble >= 0 && pp->valuedouble <= 1))
            st = pl_error(PL_ERR_FORMAT, "%s:%zu: field \"p_phish\" must be a number in [0, 1]", path, lineno);
    } else pp = NULL;
    if (!st && sc && !cJSON_IsNull(sc)) {
        /* cJSON parses overflowing literals to +-inf; reject anything non-finite. */
        if (!cJSON_IsNumber(sc) || !isfinite(sc->valuedouble))
            st = pl_error(PL_ERR_FORMAT, "%s:%zu: field \"score\" must be a finite number", path, lineno);
    } else sc = NULL;
    if (!st && !pp && !sc)
        st = pl_error(PL_ERR_FORMAT, "%s:%zu: needs \"p_phish\" or \"score\"", path, lineno);
    if (!st) {
        if (pp) p->p_phish = pp->valuedouble;
        if (sc) p->score = sc->valuedouble;
        if (!pp) p->p_phish = 1.0 / (1.0 + exp(-p->score));
        if (!sc) {
            /* logit(p), clamped so that p = 0 or 1 stays finite and keeps its order. */
            double q = p->p_phish;
            p->score = q <= 0 ? -1e300 : q >= 1 ? 1e300 : log(q) - log1p(-q);
        }
    }
    cJSON *pr = st ? NULL : cJSON_GetObjectItemCaseSensitive(o, "pred");
    if (!st) {
        if (!pr || cJSON_IsNull(pr)) p->pred = p->p_phish >= 0.5;
        else if (cJSON_IsBool(pr)) p->pred = cJSON_IsTrue(pr);
        else if (cJSON_IsNumber(pr) && (pr->valuedouble == 0 || pr->valuedouble == 1)) p->pred = (int)pr->valuedouble;
        else st = pl_error(PL_ERR_FORMAT, "%s:%zu: field \"pred\" must be 0 or 1", path, lineno);
    }
    if (!st) st = get_bool(o, "has_url", &p->has_url, path, lineno);
    if (!st) st = get_bool(o, "html", &p->html, path, lineno);
    if (!st) st = get_bool(o, "link_mismatch", &p->link_mismatch, path, lineno);
    p->length = -1;
    cJSON *ra = st ? NULL : cJSON_GetObjectItemCaseSensitive(o, "rationale");
    if (!st && ra && !cJSON_IsNull(ra)) {
        if (!cJSON_IsString(ra)) st = pl_error(PL_ERR_FORMAT, "%s:%zu: field \"rationale\" must be a string", path, lineno);
        else if (!(p->rationale = dupstr(ra->valuestring))) st = pl_error(PL_ERR_NOMEM, "out of memory");
    }
    cJSON *ln = st ? NULL : cJSON_GetObjectItemCaseSensitive(o, "length");
    if (!st && ln && !cJSON_IsNull(ln)) {
        double d = cJSON_IsNumber(ln) ? ln->valuedouble : -1;
        if (!(d >= 0 && d <= 9e15) || d != floor(d))
            st = pl_error(PL_ERR_FORMAT, "%s:%zu: field \"length\" must be a non-negative integer", path, lineno);
        else p->length = (int64_t)d;
    }
    cJSON_Delete(o);
    if (st) pl_pred_free(p);
    return st;
}

/* The shortest of %.15g/%.16g/%.17g that reads back as exactly v (cJSON's
 * own printer accepts a relative error of DBL_EPSILON, which would not
 * round-trip probabilities exactly). */
static void fmt_exact(char *buf, size_t n, double v) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static int add_exact(cJSON *o, const char *key, double v) {
    char buf[40];
    fmt_exact(buf, sizeof buf, v);
    return cJSON_AddRawToObject(o, key, buf) != NULL;
}

pl_status pl_pred_to_json(const pl_pred *p, pl_buf *b) {
    if (!(p->p_phish >= 0 && p->p_phish <= 1) || !isfinite(p->score) || (p->label != 0 && p->label != 1))
        return pl_error(PL_ERR_INVALID, "prediction \"%s\": label %d, p_phish %g, score %g is not writable", p->id ? p->id : "",
                        p->label, p->p_phish, p->score);
    cJSON *o = cJSON_CreateObject();
    if (!o) return pl_error(PL_ERR_NOMEM, "out of memory");
    int ok = cJSON_AddStringToObject(o, "id", p->id ? p->id : "") &&
             cJSON_AddStringToObject(o, "source", p->source ? p->source : "") &&
             cJSON_AddNumberToObject(o, "label", p->label) && add_exact(o, "p_phish", p->p_phish) &&
             add_exact(o, "score", p->score) && cJSON_AddNumberToObject(o, "pred", p->pred);
    if (ok && p->has_url >= 0) ok = cJSON_AddBoolToObject(o, "has_url", p->has_url) != NULL;
    if (ok && p->html >= 0) ok = cJSON_AddBoolToObject(o, "html", p->html) != NULL;
    if (ok && p->length >= 0) ok = cJSON_AddNumberToObject(o, "length", (double)p->length) != NULL;
    if (ok && p->link_mismatch >= 0) ok = cJSON_AddBoolToObject(o, "link_mismatch", p->link_mismatch) != NULL;
    if (ok && p->rationale) ok = cJSON_AddStringToObject(o, "rationale", p->rationale) != NULL;
    char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s) return pl_error(PL_ERR_NOMEM, "out of memory");
    pl_status st = pl_buf_append(b, s, strlen(s));
    cJSON_free(s);
    return st;
}

/* ---- whole files ------------------------------------------------------- */

static int cmp_pred_key(const void *a, const void *b) {
    const pl_pred *x = *(const pl_pred *const *)a, *y = *(const pl_pred *const *)b;
    int c = strcmp(x->source, y->source);
    return c ? c : strcmp(x->id, y->id);
}

/* Duplicate (source, id) pairs in ps[from..] are an error naming the pair. */
static pl_status check_unique(const pl_preds *ps, size_t from, const char *path) {
    size_t n = ps->n - from;
    if (n < 2) return PL_OK;
    const pl_pred **v = malloc(n * sizeof *v);
    if (!v) return pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) v[i] = &ps->v[from + i];
    qsort(v, n, sizeof *v, cmp_pred_key);
    pl_status st = PL_OK;
    for (size_t i = 1; i < n && !st; i++)
        if (!cmp_pred_key(&v[i - 1], &v[i]))
            st = pl_error(PL_ERR_FORMAT, "%s: id \"%s\" appears twice in source \"%s\"", path, v[i]->id, v[i]->source);
    free(v);
    return st;
}

typedef struct {
    const char *path;
    pl_preds *ps;
} preds_ctx;

static pl_status pred_line(const char *line, size_t len, size_t lineno, void *user) {
    preds_ctx *c = user;
    pl_pred p;
    pl_status st = pl_pred_from_json(line, len, c->path, lineno, &p);
    if (!st) {
        st = pl_preds_push(c->ps, &p);
        pl_pred_free(&p);
    }
    return st;
}

pl_status pl_preds_read_jsonl(const char *path, pl_preds *ps) {
    char *data;
    size_t len;
    pl_status st = pl_read_file(path, &data, &len);
    if (st) return st;
    size_t from = ps->n;
    preds_ctx c = {path, ps};
    st = pl_for_each_line(data, len, pred_line, &c);
    free(data);
    if (!st && ps->n == from) st = pl_error(PL_ERR_FORMAT, "%s: no predictions in file", path);
    if (!st) st = check_unique(ps, from, path);
    return st;
}

pl_status pl_preds_write_jsonl(const char *path, const pl_preds *ps) {
    pl_afile f;
    pl_status st = pl_afile_open(&f, path);
    if (st) return st;
    pl_buf b = {0};
    for (size_t i = 0; i < ps->n && !st; i++) {
        b.len = 0;
        st = pl_pred_to_json(&ps->v[i], &b);
        if (!st) st = pl_buf_append(&b, "\n", 1);
        if (!st) st = pl_afile_write(&f, b.data, b.len);
    }
    pl_buf_free(&b);
    if (st) {
        pl_afile_abort(&f);
        return st;
    }
    return pl_afile_commit(&f);
}

/* ---- run.json ------------------------------------------------------------ */

void pl_run_info_init(pl_run_info *r) { memset(r, 0, sizeof *r); }

void pl_run_info_free(pl_run_info *r) {
    free(r->model);
    free(r->train_set);
    free(r->adapter);
    for (size_t i = 0; i < r->n_train_sources; i++) free(r->train_sources[i]);
    free(r->train_sources);
    cJSON_Delete(r->extra);
    pl_run_info_init(r);
}

static pl_status add_source(pl_run_info *r, const char *s, size_t n) {
    char **v = realloc(r->train_sources, (r->n_train_sources + 1) * sizeof *v);
    if (!v) return pl_error(PL_ERR_NOMEM, "out of memory");
    r->train_sources = v;
    char *d = malloc(n + 1);
    if (!d) return pl_error(PL_ERR_NOMEM, "out of memory");
    memcpy(d, s, n);
    d[n] = 0;
    v[r->n_train_sources++] = d;
    return PL_OK;
}

pl_status pl_run_info_read(const char *path, pl_run_info *r) {
    pl_run_info_init(r);
    char *data;
    size_t len;
    pl_status st = pl_read_file(path, &data, &len);
    if (st) return st;
    const char *endp = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(data, len, &endp, 0);
    if (!o || !cJSON_IsObject(o)) {
        size_t off = endp && endp >= data ? (size_t)(endp - data) : 0;
        cJSON_Delete(o);
        free(data);
        return pl_error(PL_ERR_FORMAT, "%s: offset %zu: not a JSON object", path, off);
    }
    free(data);
    const char *keys[3] = {"model", "train_set", "adapter"};
    char **dst[3] = {&r->model, &r->train_set, &r->adapter};
    for (int k = 0; k < 3 && !st; k++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(o, keys[k]);
        if (v && !cJSON_IsNull(v) && !cJSON_IsString(v))
            st = pl_error(PL_ERR_FORMAT, "%s: field \"%s\" must be a string", path, keys[k]);
        else if (!(*dst[k] = dupstr(v && cJSON_IsString(v) ? v->valuestring : "")))
            st = pl_error(PL_ERR_NOMEM, "out of memory");
    }
    if (!st && !r->model[0]) st = pl_error(PL_ERR_FORMAT, "%s: missing field \"model\"", path);
    cJSON *ts = st ? NULL : cJSON_GetObjectItemCaseSensitive(o, "train_sources");
    if (!st && ts && !cJSON_IsNull(ts)) {
        if (!cJSON_IsArray(ts)) st = pl_error(PL_ERR_FORMAT, "%s: field \"train_sources\" must be an array", path);
        cJSON *it;
        cJSON_ArrayForEach(it, ts) {
            if (st) break;
            if (!cJSON_IsString(it))
                st = pl_error(PL_ERR_FORMAT, "%s: \"train_sources\" holds a non-string", path);
            else st = add_source(r, it->valuestring, strlen(it->valuestring));
        }
    } else if (!st && strcmp(r->train_set, "none") != 0) {
        /* "a+b+c" -> a, b, c; empty pieces are skipped. */
        const char *s = r->train_set;
        while (*s && !st) {
            const char *e = strchr(s, '+');
            size_t n = e ? (size_t)(e - s) : strlen(s);
            if (n) st = add_source(r, s, n);
            s += n + (e ? 1 : 0);
        }
    }
    if (!st) {
        for (int k = 0; k < 3; k++) cJSON_DeleteItemFromObjectCaseSensitive(o, keys[k]);
        cJSON_DeleteItemFromObjectCaseSensitive(o, "train_sources");
        r->extra = o;
        o = NULL;
    }
    cJSON_Delete(o);
    if (st) pl_run_info_free(r);
    return st;
}

pl_status pl_run_info_write(const char *path, const pl_run_info *r) {
    cJSON *o = r->extra ? cJSON_Duplicate(r->extra, 1) : cJSON_CreateObject();
    if (!o) return pl_error(PL_ERR_NOMEM, "out of memory");
    const char *keys[3] = {"model", "train_set", "adapter"};
    const char *vals[3] = {r->model, r->train_set, r->adapter};
    int ok = 1;
    for (int k = 0; k < 3 && ok; k++) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, keys[k]);
        ok = cJSON_AddStringToObject(o, keys[k], vals[k] ? vals[k] : "") != NULL;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(o, "train_sources");
    cJSON *arr = ok ? cJSON_AddArrayToObject(o, "train_sources") : NULL;
    ok = arr != NULL;
    for (size_t i = 0; i < r->n_train_sources && ok; i++) {
        cJSON *s = cJSON_CreateString(r->train_sources[i]);
        ok = s && cJSON_AddItemToArray(arr, s);
    }
    pl_status st = ok ? pl_json_write_atomic(path, o) : pl_error(PL_ERR_NOMEM, "out of memory");
    cJSON_Delete(o);
    return st;
}

int pl_run_info_trained_on(const pl_run_info *r, const char *source) {
    for (size_t i = 0; i < r->n_train_sources; i++)
        if (!strcmp(r->train_sources[i], source)) return 1;
    return 0;
}

/* ---- JSON helpers ------------------------------------------------------ */

cJSON *pl_json_num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

pl_status pl_json_write_atomic(const char *path, const cJSON *j) {
    char *s = cJSON_Print(j);
    if (!s) return pl_error(PL_ERR_NOMEM, "out of memory");
    pl_afile f;
    pl_status st = pl_afile_open(&f, path);
    if (!st) st = pl_afile_write(&f, s, strlen(s));
    if (!st) st = pl_afile_write(&f, "\n", 1);
    cJSON_free(s);
    if (st) {
        if (f.fp) pl_afile_abort(&f);
        return st;
    }
    return pl_afile_commit(&f);
}
