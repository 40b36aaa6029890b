/* calib.c — temperature scaling of a binary classifier's logit.
 *
 * Guo et al., "On Calibration of Modern Neural Networks" (ICML 2017): one
 * scalar T, p = sigmoid(score / T), fitted by minimizing the validation
 * negative log-likelihood. With beta = 1/T the NLL
 *     L(beta) = mean_i softplus(beta s_i) - y_i beta s_i
 * is convex (logistic regression on one feature without intercept), so
 * Newton's method on beta with Armijo backtracking, projected onto
 * [1/PL_TEMP_MAX, 1/PL_TEMP_MIN], finds the minimum:
 *     L'(beta)  = mean (sigmoid(beta s) - y) s
 *     L''(beta) = mean sigmoid(beta s)(1 - sigmoid(beta s)) s^2
 * Does not fit a bias (that would be Platt scaling) and never changes the
 * ranking of the scores.
 */
#include "eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* log(1 + e^x) without overflow. */
static double softplus(double x) { return (x > 0 ? x : 0) + log1p(exp(-fabs(x))); }
static double sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

static double nll_beta(const pl_preds *ps, double beta) {
    double s = 0;
    for (size_t i = 0; i < ps->n; i++) {
        double z = beta * ps->v[i].score;
        s += softplus(z) - (ps->v[i].label == 1 ? z : 0);
    }
    return s / (double)ps->n;
}

double pl_eval_nll(const pl_preds *ps, double T) { return ps->n ? nll_beta(ps, 1.0 / T) : (double)NAN; }

/* Scores derived from p = 0 or 1 (no score field) are +-1e300 placeholders. */
#define MAX_ABS_SCORE 1e100

pl_status pl_eval_fit_temperature(const pl_preds *ps, double *T, int *at_bound, double *nll_before,
                                  double *nll_after) {
    if (!ps->n) return pl_error(PL_ERR_INVALID, "temperature scaling: empty validation set");
    for (size_t i = 0; i < ps->n; i++)
        if (!(fabs(ps->v[i].score) <= MAX_ABS_SCORE))
            return pl_error(PL_ERR_INVALID,
                            "temperature scaling: email \"%s\" has p_phish %g and no finite \"score\" (logit)",
                            ps->v[i].id, ps->v[i].p_phish);
    const double bmin = 1.0 / PL_TEMP_MAX, bmax = 1.0 / PL_TEMP_MIN;
    double beta = 1.0, L = nll_beta(ps, beta);
    int bound = 0;
    for (int it = 0; it < 200; it++) {
        double g = 0, h = 0;
        for (size_t i = 0; i < ps->n; i++) {
            double s = ps->v[i].score, q = sigmoid(beta * s);
            g += (q - (ps->v[i].label == 1)) * s;
            h += q * (1 - q) * s * s;
        }
        g /= (double)ps->n;
        h /= (double)ps->n;
        if (g == 0) break;
        /* Newton step; when the curvature vanishes (all scores 0, or every
         * sigmoid saturated) fall back to a bounded gradient step. */
        double step = h > 0 ? -g / h : (g > 0 ? -beta : beta);
        double nb = beta + step;
        if (nb < bmin) nb = bmin;
        if (nb > bmax) nb = bmax;
        if (nb == beta) {
            bound = beta == bmin || beta == bmax;
            break;
        }
        /* Armijo backtracking on the projected step. Close to the minimum the
         * NLL changes by less than its rounding error, so function values
         * cannot confirm a decrease: there (|step| < 1e-6 beta) the Newton
         * step, which converges quadratically, is taken as it is. */
        double d = nb - beta, Ln = nll_beta(ps, nb);
        int k = 0;
        while (fabs(d) >= 1e-6 * beta && Ln > L + 1e-4 * g * d && k++ < 60) {
            d *= 0.5;
            nb = beta + d;
            Ln = nll_beta(ps, nb);
        }
        if (k > 60) break; /* no decrease possible at double precision */
        int small = fabs(nb - beta) <= 1e-15 * fabs(beta);
        beta = nb;
        L = Ln;
        bound = beta == bmin || beta == bmax;
        if (small) break;
    }
    if (!isfinite(L)) return pl_error(PL_ERR_NUMERIC, "temperature scaling: NLL is not finite");
    *T = 1.0 / beta;
    if (at_bound) *at_bound = bound;
    if (nll_before) *nll_before = nll_beta(ps, 1.0);
    if (nll_after) *nll_after = L;
    return PL_OK;
}

pl_status pl_preds_apply_temperature(const pl_preds *ps, double T, pl_preds *out) {
    memset(out, 0, sizeof *out);
    if (!(T > 0) || !isfinite(T)) return pl_error(PL_ERR_INVALID, "temperature must be positive, got %g", T);
    for (size_t i = 0; i < ps->n; i++) {
        pl_pred q = ps->v[i];
        q.score = q.score / T;
        q.p_phish = sigmoid(q.score);
        q.pred = q.p_phish >= 0.5;
        pl_status st = pl_preds_push(out, &q);
        if (st) {
            pl_preds_free(out);
            return st;
        }
    }
    return PL_OK;
}
