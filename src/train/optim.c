/* optim.c — AdamW (torch.optim.AdamW semantics), learning-rate schedules
 * (HF transformers get_cosine/linear_schedule_with_warmup), gradient
 * clipping by global norm (torch.nn.utils.clip_grad_norm_).
 *
 * Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (2019);
 * Kingma & Ba, "Adam" (2015). eps is added to the bias-corrected sqrt(v),
 * as PyTorch does.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/train.h"

pl_adamw_config pl_adamw_default(void) {
    pl_adamw_config c;
    memset(&c, 0, sizeof c);
    c.lr = 2e-4;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = 1e-8;
    c.weight_decay = 0.0;
    c.clip = 1.0;
    c.sched = PL_SCHED_COSINE;
    c.warmup = 0;
    c.total_steps = 1;
    return c;
}

pl_status pl_adamw_init(pl_adamw *o, const pl_adamw_config *c, size_t n) {
    memset(o, 0, sizeof *o);
    if (!(c->lr >= 0) || !(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1) || !(c->eps > 0) ||
        !(c->weight_decay >= 0) || !(c->clip >= 0) || c->warmup < 0)
        return pl_error(PL_ERR_INVALID, "adamw: invalid hyper-parameters (lr %g, betas %g %g, eps %g, wd %g, clip %g)",
                        c->lr, c->beta1, c->beta2, c->eps, c->weight_decay, c->clip);
    o->c = *c;
    o->n = n;
    o->m = calloc(n ? n : 1, sizeof *o->m);
    o->v = calloc(n ? n : 1, sizeof *o->v);
    if (!o->m || !o->v) {
        pl_adamw_free(o);
        return pl_error(PL_ERR_NOMEM, "adamw: cannot allocate state for %zu parameters", n);
    }
    return PL_OK;
}

void pl_adamw_free(pl_adamw *o) {
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

/* lr at 0-based step s: lr * factor(s) */
double pl_adamw_lr(const pl_adamw_config *c, int64_t s) {
    if (c->sched == PL_SCHED_CONSTANT && c->warmup == 0) return c->lr;
    if (s < c->warmup) return c->lr * (double)s / (double)(c->warmup > 0 ? c->warmup : 1);
    if (c->sched == PL_SCHED_CONSTANT) return c->lr;
    int64_t span = c->total_steps - c->warmup;
    if (span < 1) span = 1;
    double progress = (double)(s - c->warmup) / (double)span;
    if (c->sched == PL_SCHED_COSINE) {
        /* HF: max(0, 0.5 * (1 + cos(pi * num_cycles(0.5) * 2 * progress))) */
        double f = 0.5 * (1.0 + cos(3.14159265358979323846 * progress));
        return c->lr * (f > 0 ? f : 0);
    }
    double f = 1.0 - progress; /* linear: max(0, (total - s) / (total - warmup)) */
    return c->lr * (f > 0 ? f : 0);
}

pl_status pl_adamw_step(pl_adamw *o, pl_real *params, pl_real *grads, double *gnorm) {
    const pl_adamw_config *c = &o->c;
    /* total_norm = torch.linalg.vector_norm(stack of per-tensor norms) — one sum in a fixed order */
    double ss = 0.0;
    for (size_t i = 0; i < o->n; i++) ss += grads[i] * grads[i];
    double norm = sqrt(ss);
    if (gnorm) *gnorm = norm;
    if (!isfinite(norm)) return pl_error(PL_ERR_NUMERIC, "adamw: non-finite gradient norm at step %lld", (long long)o->step);
    if (c->clip > 0) {
        /* clip_coef = max_norm / (total_norm + 1e-6), applied when < 1 */
        double coef = c->clip / (norm + 1e-6);
        if (coef < 1.0)
            for (size_t i = 0; i < o->n; i++) grads[i] *= coef;
    }
    double lr = pl_adamw_lr(c, o->step);
    o->step++;
    double bc1 = 1.0 - pow(c->beta1, (double)o->step), bc2 = 1.0 - pow(c->beta2, (double)o->step);
    double step_size = lr / bc1, bc2_sqrt = sqrt(bc2);
    for (size_t i = 0; i < o->n; i++) {
        double g = grads[i];
        params[i] *= 1.0 - lr * c->weight_decay;
        o->m[i] = c->beta1 * o->m[i] + (1.0 - c->beta1) * g;
        o->v[i] = c->beta2 * o->v[i] + (1.0 - c->beta2) * g * g;
        /* torch: denom = (sqrt(v) / sqrt(bc2)) + eps ; p -= (lr / bc1) * m / denom */
        double denom = sqrt(o->v[i]) / bc2_sqrt + c->eps;
        params[i] -= step_size * o->m[i] / denom;
    }
    return PL_OK;
}
