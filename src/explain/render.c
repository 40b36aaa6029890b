/* render.c — one explained example as JSON, as ANSI-colored terminal text
 * and as an HTML fragment.
 *
 * Colors: red toward phishing (phi > 0), blue toward legitimate (phi < 0),
 * intensity |phi| / max |phi| over the example's features. Text between
 * tokens (and tokens in no feature) is printed plain. HTML text is escaped
 * (& < > " '); nothing from the email reaches the page unescaped.
 */
#include "xinternal.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static pl_status emit_json(cJSON *o, pl_buf *b) {
    if (!o) return pl_error(PL_ERR_NOMEM, "explain: out of memory building JSON");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return pl_error(PL_ERR_NOMEM, "explain: out of memory printing JSON");
    pl_status st = pl_buf_append(b, s, strlen(s));
    free(s);
    return st;
}

static const char *level_name(pl_feat_level l) {
    switch (l) {
    case PL_FEAT_TOKEN: return "token";
    case PL_FEAT_WORD: return "word";
    case PL_FEAT_SENTENCE: return "sentence";
    case PL_FEAT_FIELD: return "field";
    }
    return "unknown";
}

static pl_status check_ex(const pl_xexample *ex) {
    if (!ex || !ex->res || !ex->res->phi) return pl_error(PL_ERR_INVALID, "explain: example without a result");
    if (ex->feat && ex->feat->n_features != ex->res->n_features)
        return pl_error(PL_ERR_INVALID, "explain: result has %zu features, feature set %zu",
                        ex->res->n_features, ex->feat->n_features);
    if (ex->feat && ex->seq && ex->feat->n_tokens != ex->seq->n_tokens)
        return pl_error(PL_ERR_INVALID, "explain: features built for %zu tokens, sequence has %zu",
                        ex->feat->n_tokens, ex->seq->n_tokens);
    return PL_OK;
}

pl_status pl_xexample_to_json(const pl_xexample *ex, pl_buf *b) {
    pl_status st = check_ex(ex);
    if (st) return st;
    const pl_xresult *r = ex->res;
    cJSON *o = cJSON_CreateObject();
    if (!o) return pl_error(PL_ERR_NOMEM, "explain: out of memory");
    double sum = 0;
    for (size_t i = 0; i < r->n_features; i++) sum += r->phi[i];
    if (ex->id) cJSON_AddStringToObject(o, "id", ex->id);
    cJSON_AddStringToObject(o, "method", pl_xmethod_name(r->method));
    cJSON_AddNumberToObject(o, "budget", (double)r->budget);
    cJSON_AddNumberToObject(o, "evals", (double)r->evals);
    cJSON_AddNumberToObject(o, "requests", (double)r->requests);
    cJSON_AddNumberToObject(o, "calls", (double)r->calls);
    if (r->method == PL_XM_PERMUTATION) cJSON_AddNumberToObject(o, "permutations", (double)r->n_perms);
    cJSON_AddNumberToObject(o, "base_value", r->base_value);
    cJSON_AddNumberToObject(o, "fx", r->fx);
    cJSON_AddNumberToObject(o, "sum_phi", sum);
    cJSON_AddNumberToObject(o, "efficiency_error", sum - (r->fx - r->base_value));
    if (ex->mask) {
        cJSON *m = cJSON_AddObjectToObject(o, "masking");
        if (m) {
            cJSON_AddStringToObject(m, "policy", pl_mask_policy_name(ex->mask->policy));
            if (ex->mask->policy == PL_MASK_REPLACE || ex->mask->policy == PL_MASK_COLLAPSE)
                cJSON_AddNumberToObject(m, "mask_id", ex->mask->mask_id);
        }
    }
    if (ex->feat) cJSON_AddStringToObject(o, "level", level_name(ex->feat->level));
    cJSON *fa = cJSON_AddArrayToObject(o, "features");
    for (size_t i = 0; fa && i < r->n_features; i++) {
        cJSON *f = cJSON_CreateObject();
        if (!f) break;
        cJSON_AddNumberToObject(f, "index", (double)i);
        if (ex->feat) {
            const pl_features *F = ex->feat;
            cJSON_AddStringToObject(f, "text", F->text[i]);
            cJSON_AddNumberToObject(f, "start", (double)F->span[i].start);
            cJSON_AddNumberToObject(f, "end", (double)F->span[i].end);
            cJSON *t = cJSON_AddArrayToObject(f, "tokens");
            for (size_t j = F->ptr[i]; t && j < F->ptr[i + 1]; j++)
                cJSON_AddItemToArray(t, cJSON_CreateNumber((double)F->tok[j]));
        } else {
            char name[32];
            snprintf(name, sizeof name, "f%zu", i);
            cJSON_AddStringToObject(f, "text", name);
        }
        cJSON_AddNumberToObject(f, "phi", r->phi[i]);
        cJSON_AddItemToArray(fa, f);
    }
    return emit_json(o, b);
}

/* token -> feature map (-1 none); NULL when there are no features */
static int32_t *token_features(const pl_xexample *ex) {
    size_t T = ex->seq->n_tokens;
    int32_t *m = malloc((T ? T : 1) * sizeof *m);
    if (!m) return NULL;
    for (size_t t = 0; t < T; t++) m[t] = -1;
    for (size_t f = 0; f < ex->feat->n_features; f++)
        for (size_t j = ex->feat->ptr[f]; j < ex->feat->ptr[f + 1]; j++) m[ex->feat->tok[j]] = (int32_t)f;
    return m;
}

static double max_abs(const pl_xresult *r) {
    double m = 0;
    for (size_t i = 0; i < r->n_features; i++) m = fmax(m, fabs(r->phi[i]));
    return m;
}

/* A run of text: the caller's coloring applies to [a, e). */
typedef pl_status (*run_fn)(void *u, const char *s, size_t n, int32_t feat);

static pl_status walk(const pl_xexample *ex, const int32_t *tf, run_fn fn, void *u) {
    const pl_tokseq *q = ex->seq;
    size_t pos = 0;
    pl_status st = PL_OK;
    for (size_t t = 0; t < q->n_tokens && !st; t++) {
        pl_span s = q->spans[t];
        if (s.end <= pos) continue;
        size_t a = s.start > pos ? s.start : pos;
        /* a token's leading whitespace is printed plain */
        while (a < s.end && (q->text[a] == ' ' || q->text[a] == '\t' || q->text[a] == '\n' || q->text[a] == '\r'))
            a++;
        if (a == s.end) continue;
        if (a > pos) st = fn(u, q->text + pos, a - pos, -1);
        if (!st) st = fn(u, q->text + a, s.end - a, tf[t]);
        pos = s.end;
    }
    if (!st && pos < q->text_len) st = fn(u, q->text + pos, q->text_len - pos, -1);
    return st;
}

typedef struct {
    pl_buf *b;
    const double *phi;
    double mx;
    int color;
    int32_t last_feat; /* plain mode: feature whose marker is pending */
} rctx;

static void rgb(double phi, double mx, int *R, int *G, int *B) {
    double a = mx > 0 ? fabs(phi) / mx : 0;
    int lo = (int)lround(255 - 200 * a);
    if (phi > 0) {
        *R = 255;
        *G = *B = lo;
    } else {
        *B = 255;
        *R = *G = lo;
    }
}

static pl_status plain_marker(rctx *c) {
    if (c->last_feat < 0) return PL_OK;
    double a = c->mx > 0 ? fabs(c->phi[c->last_feat]) / c->mx : 0;
    pl_status st = a >= 0.05 ? pl_buf_printf(c->b, "[%+.3g]", c->phi[c->last_feat]) : PL_OK;
    c->last_feat = -1;
    return st;
}

static pl_status ansi_run(void *u, const char *s, size_t n, int32_t f) {
    rctx *c = u;
    pl_status st = PL_OK;
    if (!c->color) {
        if (f != c->last_feat && (st = plain_marker(c))) return st;
        st = pl_buf_append(c->b, s, n);
        if (f >= 0) c->last_feat = f;
        return st;
    }
    double a = f >= 0 && c->mx > 0 ? fabs(c->phi[f]) / c->mx : 0;
    if (f < 0 || a < 0.05) return pl_buf_append(c->b, s, n);
    int R, G, B;
    rgb(c->phi[f], c->mx, &R, &G, &B);
    /* reopen the color after each newline so backgrounds do not bleed */
    size_t i = 0;
    while (i < n && !st) {
        size_t j = i;
        while (j < n && s[j] != '\n') j++;
        if (j > i) {
            st = pl_buf_printf(c->b, "\x1b[48;2;%d;%d;%dm\x1b[30m", R, G, B);
            if (!st) st = pl_buf_append(c->b, s + i, j - i);
            if (!st) st = pl_buf_append(c->b, "\x1b[0m", 4);
        }
        if (!st && j < n) st = pl_buf_append(c->b, "\n", 1);
        i = j + 1;
    }
    return st;
}

pl_status pl_xexample_render_ansi(const pl_xexample *ex, int color, pl_buf *b) {
    pl_status st = check_ex(ex);
    if (st) return st;
    const pl_xresult *r = ex->res;
    double sum = 0;
    for (size_t i = 0; i < r->n_features; i++) sum += r->phi[i];
    st = pl_buf_printf(b, "%s%s%s method=%s base=%.4g f(x)=%.4g sum(phi)=%.4g evals=%zu\n", ex->id ? "[" : "",
                       ex->id ? ex->id : "", ex->id ? "]" : "", pl_xmethod_name(r->method), r->base_value, r->fx,
                       sum, r->evals);
    if (st) return st;
    rctx c = {b, r->phi, max_abs(r), color, -1};
    if (!ex->seq || !ex->feat) {
        for (size_t i = 0; i < r->n_features && !st; i++) {
            const char *name = ex->feat ? ex->feat->text[i] : NULL;
            if (name) st = pl_buf_printf(b, "  %-30.30s %+.6g\n", name, r->phi[i]);
            else st = pl_buf_printf(b, "  f%-29zu %+.6g\n", i, r->phi[i]);
        }
        return st;
    }
    int32_t *tf = token_features(ex);
    if (!tf) return pl_error(PL_ERR_NOMEM, "explain: out of memory");
    st = walk(ex, tf, ansi_run, &c);
    if (!st && !color) st = plain_marker(&c);
    free(tf);
    if (!st) st = pl_buf_append(b, "\n", 1);
    if (!st && color)
        st = pl_buf_printf(b, "\x1b[48;2;255;55;55m\x1b[30m toward phishing \x1b[0m "
                              "\x1b[48;2;55;55;255m\x1b[30m toward legitimate \x1b[0m max |phi| %.4g\n",
                           c.mx);
    return st;
}

static pl_status html_escape(pl_buf *b, const char *s, size_t n) {
    pl_status st = PL_OK;
    for (size_t i = 0; i < n && !st; i++) {
        switch (s[i]) {
        case '&': st = pl_buf_append(b, "&amp;", 5); break;
        case '<': st = pl_buf_append(b, "&lt;", 4); break;
        case '>': st = pl_buf_append(b, "&gt;", 4); break;
        case '"': st = pl_buf_append(b, "&quot;", 6); break;
        case '\'': st = pl_buf_append(b, "&#39;", 5); break;
        case '\n': st = pl_buf_append(b, "<br>\n", 5); break;
        default: st = pl_buf_append(b, s + i, 1);
        }
    }
    return st;
}

static pl_status html_run(void *u, const char *s, size_t n, int32_t f) {
    rctx *c = u;
    if (f < 0) return html_escape(c->b, s, n);
    double a = c->mx > 0 ? fabs(c->phi[f]) / c->mx : 0;
    int R = c->phi[f] > 0 ? 230 : 30, B = c->phi[f] > 0 ? 30 : 230;
    pl_status st = pl_buf_printf(c->b,
                                 "<span class=\"pl-f\" data-f=\"%d\" style=\"background-color:rgba(%d,30,%d,%.3f)\" "
                                 "title=\"%+.6g\">",
                                 f, R, B, 0.85 * a, c->phi[f]);
    if (!st) st = html_escape(c->b, s, n);
    if (!st) st = pl_buf_append(c->b, "</span>", 7);
    return st;
}

pl_status pl_xexample_render_html(const pl_xexample *ex, pl_buf *b) {
    pl_status st = check_ex(ex);
    if (st) return st;
    const pl_xresult *r = ex->res;
    rctx c = {b, r->phi, max_abs(r), 1, -1};
    st = pl_buf_printf(b, "<div class=\"pl-explain\" data-method=\"%s\" data-base=\"%.6g\" data-fx=\"%.6g\">\n",
                       pl_xmethod_name(r->method), r->base_value, r->fx);
    if (st) return st;
    if (!ex->seq || !ex->feat) {
        for (size_t i = 0; i < r->n_features && !st; i++) {
            char name[32];
            snprintf(name, sizeof name, "f%zu", i);
            const char *t = ex->feat ? ex->feat->text[i] : name;
            st = html_run(&c, t, strlen(t), (int32_t)i);
            if (!st) st = pl_buf_append(b, " ", 1);
        }
    } else {
        int32_t *tf = token_features(ex);
        if (!tf) return pl_error(PL_ERR_NOMEM, "explain: out of memory");
        st = walk(ex, tf, html_run, &c);
        free(tf);
    }
    if (!st) st = pl_buf_append(b, "\n</div>\n", 8);
    return st;
}
