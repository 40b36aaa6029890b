/* baseline.c — the lexical baseline "lexical-nb": multinomial naive Bayes
 * over hashed words (McCallum & Nigam 1998, the multinomial event model).
 *
 *   score(x) = log(pi_1 / pi_0) + sum_w n_w(x) (log theta_1w - log theta_0w)
 *   theta_cw = (n_cw + alpha) / (n_c + alpha V)
 *
 * Words are pl_text_words() of subject + "\n" + body, hashed into
 * 2^PL_NB_BITS buckets; V is the number of buckets seen in training and a
 * word of an unseen bucket contributes 0 (it carries no evidence). The score
 * is additive over word occurrences, so its Shapley values over word
 * features are exactly the per-occurrence log-likelihood ratios — the study
 * uses that as a built-in check of the explain stage.
 *
 * Not here: anything an LLM does. This is a transparent reference point,
 * reported under its own family name, never as an LLM result.
 */
#include "study/study.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NB_SIZE ((size_t)1 << PL_NB_BITS)
#define NB_MAGIC "PLNB1\n"

uint32_t pl_nb_bucket(const char *w, size_t len) {
    return (uint32_t)(pl_hash64(w, len, 0x6e62u) & (NB_SIZE - 1));
}

char *pl_nb_text(const pl_record *r) {
    size_t a = strlen(r->subject), b = strlen(r->body);
    char *s = malloc(a + b + 2);
    if (!s) return NULL;
    memcpy(s, r->subject, a);
    s[a] = '\n';
    memcpy(s + a + 1, r->body, b + 1);
    return s;
}

typedef struct {
    double *counts; /* [NB_SIZE] */
} count_ctx;

static void count_word(const char *w, size_t len, void *user) {
    count_ctx *c = user;
    c->counts[pl_nb_bucket(w, len)] += 1.0;
}

pl_status pl_nb_train(const pl_record *const *recs, size_t n, double alpha, pl_nb *m) {
    memset(m, 0, sizeof *m);
    double *cnt[2] = {calloc(NB_SIZE, sizeof(double)), calloc(NB_SIZE, sizeof(double))};
    m->llr = calloc(NB_SIZE, sizeof *m->llr);
    if (!cnt[0] || !cnt[1] || !m->llr) {
        free(cnt[0]);
        free(cnt[1]);
        free(m->llr);
        m->llr = NULL;
        return pl_error(PL_ERR_NOMEM, "lexical-nb: out of memory");
    }
    size_t n_cls[2] = {0, 0};
    for (size_t i = 0; i < n; i++) {
        int y = recs[i]->label;
        if (y != 0 && y != 1) continue;
        char *t = pl_nb_text(recs[i]);
        if (!t) {
            free(cnt[0]);
            free(cnt[1]);
            pl_nb_free(m);
            return pl_error(PL_ERR_NOMEM, "lexical-nb: out of memory");
        }
        count_ctx c = {cnt[y]};
        pl_text_words(t, count_word, &c);
        free(t);
        n_cls[y]++;
    }
    if (!n_cls[0] || !n_cls[1]) {
        free(cnt[0]);
        free(cnt[1]);
        pl_nb_free(m);
        return pl_error(PL_ERR_INVALID, "lexical-nb: training needs both labels (got %zu legitimate, %zu phishing)",
                        n_cls[0], n_cls[1]);
    }
    double tot[2] = {0, 0};
    size_t vocab = 0;
    for (size_t h = 0; h < NB_SIZE; h++) {
        tot[0] += cnt[0][h];
        tot[1] += cnt[1][h];
        if (cnt[0][h] + cnt[1][h] > 0) vocab++;
    }
    double den0 = tot[0] + alpha * (double)vocab, den1 = tot[1] + alpha * (double)vocab;
    for (size_t h = 0; h < NB_SIZE; h++) {
        if (cnt[0][h] + cnt[1][h] <= 0) continue;
        m->llr[h] = (float)(log((cnt[1][h] + alpha) / den1) - log((cnt[0][h] + alpha) / den0));
    }
    m->alpha = alpha;
    m->prior = log((double)n_cls[1] / (double)n_cls[0]);
    m->n_train = n_cls[0] + n_cls[1];
    m->n_pos = n_cls[1];
    m->vocab = vocab;
    free(cnt[0]);
    free(cnt[1]);
    return PL_OK;
}

void pl_nb_free(pl_nb *m) {
    if (!m) return;
    free(m->llr);
    memset(m, 0, sizeof *m);
}

typedef struct {
    const pl_nb *m;
    double s;
} score_ctx;

static void score_word(const char *w, size_t len, void *user) {
    score_ctx *c = user;
    c->s += (double)c->m->llr[pl_nb_bucket(w, len)];
}

double pl_nb_score(const pl_nb *m, const char *text) {
    score_ctx c = {m, m->prior};
    pl_text_words(text, score_word, &c);
    return c.s;
}

/* File: magic line, a header line "alpha prior n_train n_pos vocab", then
 * the non-zero buckets as "bucket llr" lines (%.9g: float round trip). */
pl_status pl_nb_save(const pl_nb *m, const char *path) {
    pl_afile f;
    pl_status st = pl_afile_open(&f, path);
    if (st) return st;
    st = pl_afile_printf(&f, "%s%.17g %.17g %zu %zu %zu\n", NB_MAGIC, m->alpha, m->prior, m->n_train, m->n_pos,
                         m->vocab);
    for (size_t h = 0; h < NB_SIZE && !st; h++)
        if (m->llr[h] != 0.0f) st = pl_afile_printf(&f, "%zu %.9g\n", h, (double)m->llr[h]);
    if (st) {
        pl_afile_abort(&f);
        return st;
    }
    return pl_afile_commit(&f);
}

pl_status pl_nb_load(const char *path, pl_nb *m) {
    memset(m, 0, sizeof *m);
    char *data = NULL;
    size_t len = 0;
    pl_status st = pl_read_file(path, &data, &len);
    if (st) return st;
    if (len < strlen(NB_MAGIC) || memcmp(data, NB_MAGIC, strlen(NB_MAGIC))) {
        free(data);
        return pl_error(PL_ERR_FORMAT, "%s: offset 0: not a lexical-nb model (bad magic)", path);
    }
    m->llr = calloc(NB_SIZE, sizeof *m->llr);
    if (!m->llr) {
        free(data);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    char *p = data + strlen(NB_MAGIC), *end;
    size_t line = 2;
    m->alpha = strtod(p, &end);
    if (end == p) goto bad;
    p = end;
    m->prior = strtod(p, &end);
    if (end == p) goto bad;
    p = end;
    unsigned long long v[3];
    for (int k = 0; k < 3; k++) {
        v[k] = strtoull(p, &end, 10);
        if (end == p) goto bad;
        p = end;
    }
    m->n_train = (size_t)v[0];
    m->n_pos = (size_t)v[1];
    m->vocab = (size_t)v[2];
    while (*p) {
        while (*p == '\n') {
            p++;
            line++;
        }
        if (!*p) break;
        unsigned long long h = strtoull(p, &end, 10);
        if (end == p || h >= NB_SIZE) goto bad;
        p = end;
        double x = strtod(p, &end);
        if (end == p || !isfinite(x)) goto bad;
        p = end;
        m->llr[h] = (float)x;
        if (*p && *p != '\n') goto bad;
    }
    free(data);
    return PL_OK;
bad:
    free(data);
    pl_nb_free(m);
    return pl_error(PL_ERR_FORMAT, "%s: line %zu: malformed lexical-nb model line", path, line);
}
