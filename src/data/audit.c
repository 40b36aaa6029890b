/* audit.c — label-noise audit from out-of-fold predictions.
 *
 * Confident learning (Northcutt, Jiang & Chuang, JAIR 2021), two classes:
 *   t_j      = mean over records labelled j of p_j            (per-class threshold)
 *   C[i][j]  = #{x labelled i : j = argmax over {k : p_k(x) >= t_k} of p_k(x)}
 *   C_cal    = C with row i rescaled to sum to n_i (the count of label i)
 *   prune by noise rate: for i != j, flag the round(C_cal[i][j]) records
 *   labelled i with the largest margin p_j - p_i.
 * Also reported: the off-diagonal of C itself ("confident joint" method) and
 * the naive rule p(other class) > threshold, which is circular when the
 * probabilities come from a model trained on the same labels; here they are
 * out-of-fold, so the rule is at least not fitting its own labels.
 */
#include "data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t i;
    double margin;
} cand;

static int cmp_cand(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->margin != y->margin) return x->margin < y->margin ? 1 : -1;
    return (x->i > y->i) - (x->i < y->i);
}

pl_status pl_audit_confident(const int *label, const double *p1, size_t n, double naive_threshold,
                             pl_audit_result *res) {
    memset(res, 0, sizeof *res);
    size_t cnt[2] = {0};
    double sum[2] = {0};
    for (size_t x = 0; x < n; x++) {
        if (label[x] != 0 && label[x] != 1) return pl_error(PL_ERR_INVALID, "audit: label of item %zu is not 0/1", x);
        if (!(p1[x] >= 0.0 && p1[x] <= 1.0))
            return pl_error(PL_ERR_INVALID, "audit: probability of item %zu is %g, not in [0, 1]", x, p1[x]);
        double pj = label[x] ? p1[x] : 1.0 - p1[x];
        cnt[label[x]]++;
        sum[label[x]] += pj;
    }
    if (!cnt[0] || !cnt[1]) return pl_error(PL_ERR_INVALID, "audit: need records of both labels (have %zu legit, %zu phishing)", cnt[0], cnt[1]);
    res->n = n;
    res->thr[0] = sum[0] / (double)cnt[0];
    res->thr[1] = sum[1] / (double)cnt[1];
    res->flag_prune = calloc(n ? n : 1, 1);
    res->flag_cj = calloc(n ? n : 1, 1);
    res->flag_naive = calloc(n ? n : 1, 1);
    cand *c = malloc((n ? n : 1) * sizeof *c);
    if (!res->flag_prune || !res->flag_cj || !res->flag_naive || !c) {
        free(c);
        pl_audit_result_free(res);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    for (size_t x = 0; x < n; x++) {
        double p[2] = {1.0 - p1[x], p1[x]};
        int i = label[x], j = -1;
        for (int k = 0; k < 2; k++)
            if (p[k] >= res->thr[k] && (j < 0 || p[k] > p[j])) j = k;
        if (j >= 0) {
            res->cj[i][j]++;
            if (j != i) res->flag_cj[x] = 1, res->n_cj++;
        }
        if (p[1 - i] > naive_threshold) res->flag_naive[x] = 1, res->n_naive++;
    }
    double off = 0;
    for (int i = 0; i < 2; i++) {
        double row = (double)(res->cj[i][0] + res->cj[i][1]);
        for (int j = 0; j < 2; j++) res->cj_cal[i][j] = row > 0 ? (double)res->cj[i][j] / row * (double)cnt[i] : 0;
        off += res->cj_cal[i][1 - i];
    }
    res->noise_rate = off / (double)n;
    for (int i = 0; i < 2; i++) {
        int j = 1 - i;
        size_t m = 0;
        for (size_t x = 0; x < n; x++)
            if (label[x] == i) {
                double pj = j ? p1[x] : 1.0 - p1[x];
                c[m++] = (cand){x, pj - (1.0 - pj)};
            }
        qsort(c, m, sizeof *c, cmp_cand);
        size_t k = (size_t)llround(res->cj_cal[i][j]);
        for (size_t t = 0; t < k && t < m; t++) res->flag_prune[c[t].i] = 1, res->n_prune++;
    }
    free(c);
    return PL_OK;
}

void pl_audit_result_free(pl_audit_result *res) {
    free(res->flag_prune);
    free(res->flag_cj);
    free(res->flag_naive);
    memset(res, 0, sizeof *res);
}
