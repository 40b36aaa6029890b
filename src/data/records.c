/* records.c — the normalized email record: lifetime, copying, and JSONL
 * serialization (docs/records.md). Parsing is strict about types and names the
 * file and line of any problem; unknown top-level keys are kept under meta. */
#include "data.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

static char *dupn(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = 0;
    return d;
}

void pl_record_init(pl_record *r) {
    memset(r, 0, sizeof *r);
    r->label = -1;
    char **f[] = {&r->id, &r->source, &r->subject, &r->from, &r->to, &r->date, &r->body};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) *f[i] = dupn("", 0);
}

void pl_record_free(pl_record *r) {
    free(r->id);
    free(r->source);
    free(r->subject);
    free(r->from);
    free(r->to);
    free(r->date);
    free(r->body);
    for (size_t i = 0; i < r->n_urls; i++) free(r->urls[i]);
    free(r->urls);
    cJSON_Delete(r->meta);
    memset(r, 0, sizeof *r);
}

pl_status pl_record_set(char **field, const char *s) {
    char *d = dupn(s ? s : "", s ? strlen(s) : 0);
    if (!d) return pl_error(PL_ERR_NOMEM, "out of memory");
    free(*field);
    *field = d;
    return PL_OK;
}

pl_status pl_record_add_url(pl_record *r, const char *url) {
    char **v = realloc(r->urls, (r->n_urls + 1) * sizeof *v);
    if (!v) return pl_error(PL_ERR_NOMEM, "out of memory");
    r->urls = v;
    v[r->n_urls] = dupn(url, strlen(url));
    if (!v[r->n_urls]) return pl_error(PL_ERR_NOMEM, "out of memory");
    r->n_urls++;
    return PL_OK;
}

pl_status pl_record_copy(pl_record *dst, const pl_record *src) {
    pl_record_init(dst);
    dst->label = src->label;
    pl_status st = PL_OK;
    st = st ? st : pl_record_set(&dst->id, src->id);
    st = st ? st : pl_record_set(&dst->source, src->source);
    st = st ? st : pl_record_set(&dst->subject, src->subject);
    st = st ? st : pl_record_set(&dst->from, src->from);
    st = st ? st : pl_record_set(&dst->to, src->to);
    st = st ? st : pl_record_set(&dst->date, src->date);
    st = st ? st : pl_record_set(&dst->body, src->body);
    for (size_t i = 0; !st && i < src->n_urls; i++) st = pl_record_add_url(dst, src->urls[i]);
    if (!st && src->meta) {
        dst->meta = cJSON_Duplicate(src->meta, 1);
        if (!dst->meta) st = pl_error(PL_ERR_NOMEM, "out of memory");
    }
    if (st) pl_record_free(dst);
    return st;
}

pl_status pl_records_push(pl_records *rs, pl_record *r) {
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 64;
        pl_record *v = realloc(rs->v, cap * sizeof *v);
        if (!v) return pl_error(PL_ERR_NOMEM, "out of memory");
        rs->v = v;
        rs->cap = cap;
    }
    rs->v[rs->n++] = *r;
    memset(r, 0, sizeof *r);
    return PL_OK;
}

void pl_records_free(pl_records *rs) {
    for (size_t i = 0; i < rs->n; i++) pl_record_free(&rs->v[i]);
    free(rs->v);
    memset(rs, 0, sizeof *rs);
}

/* ---- JSON ---- */

pl_status pl_record_to_json(const pl_record *r, pl_buf *b) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return pl_error(PL_ERR_NOMEM, "out of memory");
    int ok = cJSON_AddStringToObject(o, "id", r->id) && cJSON_AddStringToObject(o, "source", r->source) &&
             cJSON_AddNumberToObject(o, "label", r->label) &&
             cJSON_AddStringToObject(o, "subject", r->subject) && cJSON_AddStringToObject(o, "from", r->from) &&
             cJSON_AddStringToObject(o, "to", r->to) && cJSON_AddStringToObject(o, "date", r->date) &&
             cJSON_AddStringToObject(o, "body", r->body);
    cJSON *urls = ok ? cJSON_AddArrayToObject(o, "urls") : NULL;
    ok = ok && urls;
    for (size_t i = 0; ok && i < r->n_urls; i++) {
        cJSON *s = cJSON_CreateString(r->urls[i]);
        ok = s && cJSON_AddItemToArray(urls, s);
    }
    if (ok) {
        cJSON *m = r->meta ? cJSON_Duplicate(r->meta, 1) : cJSON_CreateObject();
        ok = m && cJSON_AddItemToObject(o, "meta", m);
    }
    char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s) return pl_error(PL_ERR_NOMEM, "out of memory serializing record");
    pl_status st = pl_buf_append(b, s, strlen(s));
    cJSON_free(s);
    return st;
}

static pl_status get_str(cJSON *o, const char *key, char **field, const char *path, size_t lineno) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return PL_OK;
    if (!cJSON_IsString(v))
        return pl_error(PL_ERR_FORMAT, "%s:%zu: field \"%s\" must be a string", path, lineno, key);
    return pl_record_set(field, v->valuestring);
}

pl_status pl_record_from_json(const char *line, size_t len, const char *path, size_t lineno, pl_record *r) {
    pl_record_init(r);
    const char *endp = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(line, len, &endp, 0);
    if (!o || !cJSON_IsObject(o)) {
        size_t col = endp && endp >= line ? (size_t)(endp - line) + 1 : 1;
        cJSON_Delete(o);
        pl_record_free(r);
        return pl_error(PL_ERR_FORMAT, "%s:%zu: column %zu: not a JSON object", path, lineno, col);
    }
    pl_status st = PL_OK;
    st = st ? st : get_str(o, "id", &r->id, path, lineno);
    st = st ? st : get_str(o, "source", &r->source, path, lineno);
    st = st ? st : get_str(o, "subject", &r->subject, path, lineno);
    st = st ? st : get_str(o, "from", &r->from, path, lineno);
    st = st ? st : get_str(o, "to", &r->to, path, lineno);
    st = st ? st : get_str(o, "date", &r->date, path, lineno);
    st = st ? st : get_str(o, "body", &r->body, path, lineno);
    if (!st) {
        /* "text" is accepted as a synonym for body (common in JSONL corpora). */
        cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "text");
        if (t && !cJSON_GetObjectItemCaseSensitive(o, "body")) st = get_str(o, "text", &r->body, path, lineno);
    }
    cJSON *lab = cJSON_GetObjectItemCaseSensitive(o, "label");
    if (!st && lab && !cJSON_IsNull(lab)) {
        if (!cJSON_IsNumber(lab) || (lab->valuedouble != 0 && lab->valuedouble != 1 && lab->valuedouble != -1))
            st = pl_error(PL_ERR_FORMAT, "%s:%zu: field \"label\" must be 0, 1 or -1", path, lineno);
        else
            r->label = (int)lab->valuedouble;
    }
    cJSON *urls = cJSON_GetObjectItemCaseSensitive(o, "urls");
    if (!st && urls && !cJSON_IsNull(urls)) {
        if (!cJSON_IsArray(urls)) st = pl_error(PL_ERR_FORMAT, "%s:%zu: field \"urls\" must be an array", path, lineno);
        cJSON *u;
        cJSON_ArrayForEach(u, urls) {
            if (st) break;
            if (!cJSON_IsString(u))
                st = pl_error(PL_ERR_FORMAT, "%s:%zu: \"urls\" holds a non-string", path, lineno);
            else
                st = pl_record_add_url(r, u->valuestring);
        }
    }
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(o, "meta");
    if (!st && meta && !cJSON_IsNull(meta)) {
        if (!cJSON_IsObject(meta)) st = pl_error(PL_ERR_FORMAT, "%s:%zu: field \"meta\" must be an object", path, lineno);
        else {
            r->meta = cJSON_DetachItemViaPointer(o, meta);
        }
    }
    cJSON_Delete(o);
    if (st) pl_record_free(r);
    return st;
}

typedef struct {
    const char *path;
    pl_records *rs;
} jsonl_ctx;

static pl_status record_line(const char *line, size_t len, size_t lineno, void *user) {
    jsonl_ctx *c = user;
    pl_record r;
    pl_status st = pl_record_from_json(line, len, c->path, lineno, &r);
    if (!st) {
        st = pl_records_push(c->rs, &r);
        if (st) pl_record_free(&r);
    }
    return st;
}

pl_status pl_records_read_jsonl(const char *path, pl_records *rs) {
    char *data;
    size_t len;
    pl_status st = pl_read_file(path, &data, &len);
    if (st) return st;
    jsonl_ctx c = {path, rs};
    st = pl_for_each_line(data, len, record_line, &c);
    free(data);
    return st;
}

pl_status pl_records_write_jsonl(const char *path, const pl_records *rs) {
    pl_afile f;
    pl_status st = pl_afile_open(&f, path);
    if (st) return st;
    pl_buf b = {0};
    for (size_t i = 0; i < rs->n && !st; i++) {
        b.len = 0;
        st = pl_record_to_json(&rs->v[i], &b);
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
