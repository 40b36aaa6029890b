/* loop.c — the training loop: data order, gradient accumulation, AdamW,
 * validation, early stopping, JSONL log, checkpoints and exact resume.
 *
 * Determinism: the order of epoch e is a permutation drawn from
 * pl_rng_split(seed, e), then bucketed by length inside windows of
 * 8 optimizer steps; dropout masks depend on (seed, step, position in the
 * step). Everything else a resumed run needs (parameters, AdamW moments,
 * step, epoch, cursor, early-stopping state, log length) is in the
 * checkpoint, so a run killed at any point and resumed from its last
 * checkpoint produces the same bits as an uninterrupted one (for the same
 * thread count).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train/train_impl.h"

pl_loop_opts pl_loop_opts_default(void) {
    pl_loop_opts o;
    memset(&o, 0, sizeof o);
    o.opt = pl_adamw_default();
    o.opt.total_steps = 0;
    o.opt.warmup = -1;
    o.warmup_ratio = 0.03;
    o.epochs = 1;
    o.batch = 8;
    o.accum = 1;
    return o;
}

/* ---- checkpoint ------------------------------------------------------------- */

#define CKPT_MAGIC "PLCKPT01"

typedef struct {
    uint64_t config_hash, n_params;
    int64_t step, epoch, cursor, adam_step, evals_since_best, log_len;
    double best_val;
} ckpt_header;

/* What must match between a checkpoint and the run resuming it: trainer
 * configuration, model shapes, parameter table, data size, loop options. */
static uint64_t config_hash(const pl_trainer *t, const pl_loop_opts *o, size_t n_train) {
    pl_buf b = {0};
    const pl_tr_config *c = &t->cfg;
    pl_buf_printf(&b, "obj %d r %d a %.17g p %.17g tg %u fv %d lt %d %d nc %d seed %llu|", (int)c->objective, c->lora_rank,
                  c->lora_alpha, c->lora_dropout, c->targets, c->label_full_vocab, (int)c->label_tokens[0],
                  (int)c->label_tokens[1], c->n_class, (unsigned long long)c->seed);
    const pl_arch_desc *d = &t->d;
    pl_buf_printf(&b, "arch %d V %d D %d L %d H %d %d hd %d F %d|", (int)d->arch, d->n_vocab, d->n_embd, d->n_layer,
                  d->n_head, d->n_head_kv, d->head_dim, d->n_ff);
    for (int i = 0; i < t->n_tensors; i++)
        pl_buf_printf(&b, "%s %lld %lld|", t->tensors[i].name, (long long)t->tensors[i].rows,
                      (long long)t->tensors[i].cols);
    pl_buf_printf(&b, "lr %.17g b %.17g %.17g e %.17g wd %.17g clip %.17g s %d w %lld T %lld|", o->opt.lr, o->opt.beta1,
                  o->opt.beta2, o->opt.eps, o->opt.weight_decay, o->opt.clip, (int)o->opt.sched,
                  (long long)o->opt.warmup, (long long)o->opt.total_steps);
    pl_buf_printf(&b, "prec %d|", (int)c->precision);
    pl_buf_printf(&b, "ep %d bs %d acc %d n %zu", o->epochs, o->batch, o->accum, n_train);
    uint64_t h = b.data ? pl_hash64(b.data, b.len, 17) : 0;
    pl_buf_free(&b);
    return h;
}

static pl_status ckpt_write(const char *path, const ckpt_header *h, const pl_real *params, const pl_adamw *o) {
    pl_afile f;
    pl_status st = pl_afile_open(&f, path);
    if (st) return st;
    size_t n = (size_t)h->n_params;
    st = pl_afile_write(&f, CKPT_MAGIC, 8);
    if (!st) st = pl_afile_write(&f, h, sizeof *h);
    if (!st) st = pl_afile_write(&f, params, n * sizeof *params);
    if (!st) st = pl_afile_write(&f, o->m, n * sizeof *o->m);
    if (!st) st = pl_afile_write(&f, o->v, n * sizeof *o->v);
    if (st) {
        pl_afile_abort(&f);
        return st;
    }
    return pl_afile_commit(&f);
}

static pl_status ckpt_read(const char *path, uint64_t want_hash, size_t n, ckpt_header *h, pl_real *params,
                           pl_adamw *o) {
    char *data;
    size_t len;
    pl_status st = pl_read_file(path, &data, &len);
    if (st) return st;
    size_t need = 8 + sizeof *h + 3 * n * sizeof(pl_real);
    if (len < 8 + sizeof *h || memcmp(data, CKPT_MAGIC, 8)) {
        free(data);
        return pl_error(PL_ERR_FORMAT, "%s: not a phishlens checkpoint (bad magic)", path);
    }
    memcpy(h, data + 8, sizeof *h);
    if (h->config_hash != want_hash || h->n_params != n) {
        free(data);
        return pl_error(PL_ERR_INVALID,
                        "%s: checkpoint of another configuration (base model, adapter shape, data or optimizer "
                        "options differ; %llu parameters there, %zu here)",
                        path, (unsigned long long)h->n_params, n);
    }
    if (len != need) {
        free(data);
        return pl_error(PL_ERR_FORMAT, "%s: %zu bytes, expected %zu (truncated?)", path, len, need);
    }
    const char *p = data + 8 + sizeof *h;
    memcpy(params, p, n * sizeof *params);
    memcpy(o->m, p + n * sizeof(pl_real), n * sizeof(pl_real));
    memcpy(o->v, p + 2 * n * sizeof(pl_real), n * sizeof(pl_real));
    o->step = h->adam_step;
    free(data);
    return PL_OK;
}

/* ---- data order ------------------------------------------------------------------ */

/* a step slot: an example's length, its place in the shuffled order, its index */
typedef struct {
    int len;
    size_t pos, idx;
} slot;

static int by_length(const void *a, const void *b) {
    const slot *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos; /* ties keep the shuffled order */
}

pl_status pl_train_epoch_order(const pl_tr_dataset *d, uint64_t seed, int64_t epoch, size_t per_step, size_t *order) {
    pl_rng master, r;
    pl_rng_seed(&master, seed ^ 0x5eedull);
    r = pl_rng_split(&master, (uint64_t)epoch);
    for (size_t i = 0; i < d->n; i++) order[i] = i;
    pl_rng_shuffle(&r, order, d->n, sizeof *order);
    /* bucket by length within windows of 8 steps: similar lengths share a
     * step. Equal lengths (common where emails are cut to max_len) keep
     * their shuffled order: ordered by index they would follow the input
     * file, and a file sorted by class would give one-class steps. */
    const size_t win = per_step * 8;
    slot *w = malloc((win ? win : 1) * sizeof *w);
    if (!w) return pl_error(PL_ERR_NOMEM, "training: out of memory (data order)");
    for (size_t s = 0; s < d->n; s += win) {
        const size_t m = d->n - s < win ? d->n - s : win;
        for (size_t k = 0; k < m; k++) w[k] = (slot){d->ex[order[s + k]].n_tokens, k, order[s + k]};
        qsort(w, m, sizeof *w, by_length);
        for (size_t k = 0; k < m; k++) order[s + k] = w[k].idx;
    }
    free(w);
    return PL_OK;
}

/* ---- validation ---------------------------------------------------------------------- */

static pl_status validate(pl_trainer *t, const pl_tr_dataset *val, double *loss, double *f1) {
    double total = 0.0;
    int64_t count = 0, tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < val->n; i++) {
        const pl_tr_example *ex = &val->ex[i];
        double l;
        int n;
        /* dropout off: evaluate at step UINT64_MAX with p forced to 0 via a copy of the config */
        double p = t->cfg.lora_dropout;
        t->cfg.lora_dropout = 0.0;
        pl_status st = pl_trainer_example(t, ex, i, 0.0, 0, &l, &n);
        t->cfg.lora_dropout = p;
        if (st) return st;
        total += l;
        count += n;
        if (t->cfg.objective != PL_OBJ_LM) {
            pl_real sc[2];
            if ((st = pl_trainer_scores(t, ex->tokens, ex->n_tokens, sc))) return st;
            int pred = sc[1] - sc[0] > 0;
            tp += pred && ex->label == 1;
            fp += pred && ex->label != 1;
            fn += !pred && ex->label == 1;
        }
    }
    *loss = count ? total / (double)count : (double)NAN;
    *f1 = t->cfg.objective == PL_OBJ_LM ? (double)NAN : (tp ? 2.0 * (double)tp / (double)(2 * tp + fp + fn) : 0.0);
    return PL_OK;
}

/* ---- the loop ------------------------------------------------------------------------------ */

static void json_num(FILE *f, const char *key, double v) {
    if (isfinite(v)) fprintf(f, ",\"%s\":%.9g", key, v);
    else fprintf(f, ",\"%s\":null", key);
}

pl_status pl_train_loop(pl_trainer *t, const pl_tr_dataset *train, const pl_tr_dataset *val, const pl_loop_opts *oin,
                        pl_loop_result *res) {
    pl_loop_opts o = *oin;
    memset(res, 0, sizeof *res);
    res->val_loss = res->val_f1 = NAN;
    res->resumed_from = -1;
    const pl_tr_config *c = &t->cfg;
    if (!train || train->n == 0) return pl_error(PL_ERR_INVALID, "train: the training set is empty");
    if (o.batch < 1 || o.accum < 1 || o.epochs < 1)
        return pl_error(PL_ERR_INVALID, "train: batch %d, accum %d, epochs %d must be >= 1", o.batch, o.accum, o.epochs);
    if (c->objective != PL_OBJ_LM) {
        size_t pos = 0;
        for (size_t i = 0; i < train->n; i++) pos += train->ex[i].label == 1;
        if (pos == 0 || pos == train->n)
            return pl_error(PL_ERR_INVALID, "train: the training set has a single class (%zu of %zu examples phishing)",
                            pos, train->n);
    }
    size_t per_step = (size_t)o.batch * (size_t)o.accum;
    int64_t steps_per_epoch = (int64_t)((train->n + per_step - 1) / per_step);
    int64_t total = steps_per_epoch * o.epochs;
    if (o.opt.total_steps <= 0) o.opt.total_steps = total;
    if (o.opt.warmup < 0) o.opt.warmup = (int64_t)ceil(o.warmup_ratio * (double)o.opt.total_steps);
    size_t np;
    pl_real *params = pl_trainer_params(t, &np), *grads = pl_trainer_grads(t);
    pl_adamw opt;
    pl_status st = pl_adamw_init(&opt, &o.opt, np);
    if (st) return st;
    size_t *order = malloc(train->n * sizeof *order);
    const pl_tr_example **step_ex = malloc(per_step * sizeof *step_ex);
    double *step_loss = malloc(per_step * sizeof *step_loss);
    char path[4096], logpath[4096], ckpath[4096];
    FILE *log = NULL;
    if (!order || !step_ex || !step_loss) {
        free(order);
        free(step_ex);
        free(step_loss);
        pl_adamw_free(&opt);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    snprintf(path, sizeof path, "%s/checkpoints", o.run_dir);
    snprintf(logpath, sizeof logpath, "%s/train_log.jsonl", o.run_dir);
    snprintf(ckpath, sizeof ckpath, "%s/checkpoints/last.ckpt", o.run_dir);
    if ((st = pl_mkdirs(path))) goto done;

    uint64_t hash = config_hash(t, &o, train->n);
    ckpt_header h = {hash, np, 0, 0, 0, 0, 0, 0, INFINITY};
    if (o.resume) {
        if ((st = ckpt_read(ckpath, hash, np, &h, params, &opt))) goto done;
        res->resumed_from = (int)h.step;
        /* the log continues from where the checkpoint was taken */
        if (truncate(logpath, (off_t)h.log_len) != 0) {
            st = pl_error(PL_ERR_IO, "%s: cannot truncate to %lld bytes on resume", logpath, (long long)h.log_len);
            goto done;
        }
    }
    log = fopen(logpath, o.resume ? "a" : "w");
    if (!log) {
        st = pl_error(PL_ERR_IO, "%s: cannot open for writing", logpath);
        goto done;
    }
    pl_progress prog;
    int64_t total_tokens = 0;
    for (size_t i = 0; i < train->n; i++) total_tokens += train->ex[i].n_tokens;
    total_tokens *= o.epochs;
    pl_progress_set_quiet(o.quiet);
    pl_progress_begin(&prog, "train", total_tokens, "tok");
    int64_t tokens_done = 0;
    /* tokens already done before the resume point, for the progress bar */
    for (int64_t e = 0; e < h.epoch; e++) tokens_done += total_tokens / o.epochs;
    if ((st = pl_train_epoch_order(train, c->seed, h.epoch, per_step, order))) goto done;
    for (int64_t i = 0; i < h.cursor && (size_t)i < train->n; i++) tokens_done += train->ex[order[i]].n_tokens;
    double t0 = pl_time_now();
    int stop = 0;
    while (!stop && h.epoch < o.epochs) {
        if ((size_t)h.cursor >= train->n) {
            h.epoch++;
            h.cursor = 0;
            if (h.epoch >= o.epochs) break;
            if ((st = pl_train_epoch_order(train, c->seed, h.epoch, per_step, order))) goto done;
        }
        size_t b0 = (size_t)h.cursor, b1 = b0 + per_step < train->n ? b0 + per_step : train->n;
        /* the step's normalizer: examples, or scored tokens for LM */
        double denom = 0;
        int64_t step_tokens = 0;
        for (size_t i = b0; i < b1; i++) {
            const pl_tr_example *ex = &train->ex[order[i]];
            int ls = ex->loss_start < 0 ? 0 : ex->loss_start;
            denom += c->objective == PL_OBJ_LM ? (double)(ex->n_tokens - 1 - ls > 0 ? ex->n_tokens - 1 - ls : 0) : 1.0;
            step_tokens += ex->n_tokens;
        }
        if (denom <= 0) denom = 1;
        pl_trainer_zero_grad(t);
        pl_trainer_set_step(t, (uint64_t)h.step);
        /* the step's examples (side by side in lanes with several threads) */
        for (size_t i = b0; i < b1; i++) step_ex[i - b0] = &train->ex[order[i]];
        size_t bad = b1 - b0;
        st = pl_trainer_examples(t, step_ex, b1 - b0, 1.0 / denom, 1, step_loss, NULL, &bad);
        for (size_t i = 0; !st && i < b1 - b0 && bad == b1 - b0; i++)
            if (!isfinite(step_loss[i])) bad = i;
        if (st == PL_ERR_NUMERIC || (!st && bad < b1 - b0)) {
            st = pl_error(PL_ERR_NUMERIC,
                          "train: non-finite loss at step %lld (epoch %lld, example %zu); stopped, the last good "
                          "checkpoint is %s",
                          (long long)h.step, (long long)h.epoch, order[b0 + bad], ckpath);
            goto done;
        }
        if (st) goto done;
        double loss_sum = 0;
        for (size_t i = 0; i < b1 - b0; i++) loss_sum += step_loss[i];
        double gnorm, lr = pl_adamw_lr(&o.opt, opt.step);
        st = pl_adamw_step(&opt, params, grads, &gnorm);
        if (st == PL_ERR_NUMERIC) {
            st = pl_error(PL_ERR_NUMERIC, "train: non-finite gradient at step %lld; stopped, the last good checkpoint is %s",
                          (long long)h.step, ckpath);
            goto done;
        }
        if (st) goto done;
        h.step++;
        h.cursor = (int64_t)b1;
        h.adam_step = opt.step;
        tokens_done += step_tokens;
        res->last_loss = loss_sum / denom;
        double el = pl_time_now() - t0;
        fprintf(log, "{\"step\":%lld,\"epoch\":%lld", (long long)h.step, (long long)h.epoch);
        json_num(log, "loss", res->last_loss);
        json_num(log, "lr", lr);
        json_num(log, "grad_norm", gnorm);
        fprintf(log, ",\"tokens\":%lld", (long long)step_tokens);
        int end_of_epoch = (size_t)h.cursor >= train->n;
        int do_eval = val && val->n && (o.eval_every > 0 ? h.step % o.eval_every == 0 : end_of_epoch);
        if (do_eval) {
            double vl, vf;
            if ((st = validate(t, val, &vl, &vf))) goto done;
            res->val_loss = vl;
            res->val_f1 = vf;
            json_num(log, "val_loss", vl);
            json_num(log, "val_f1", vf);
            if (vl < h.best_val) {
                h.best_val = vl;
                h.evals_since_best = 0;
            } else if (o.patience > 0 && ++h.evals_since_best >= o.patience) {
                res->early_stopped = 1;
                stop = 1;
                fprintf(log, ",\"early_stop\":true");
            }
        }
        fprintf(log, ",\"elapsed_s\":%.3f}\n", el);
        fflush(log);
        pl_progress_update(&prog, tokens_done);
        int last = stop || (h.epoch == o.epochs - 1 && end_of_epoch);
        if (o.ckpt_every > 0 && (h.step % o.ckpt_every == 0 || last)) {
            h.log_len = (int64_t)ftell(log);
            if ((st = ckpt_write(ckpath, &h, params, &opt))) goto done;
        }
        if (o.stop_at_step > 0 && h.step >= o.stop_at_step) {
            res->steps = h.step;
            goto done; /* as if killed: no final outputs */
        }
    }
    pl_progress_end(&prog);
    res->steps = h.step;
    h.log_len = (int64_t)ftell(log);
    if ((st = ckpt_write(ckpath, &h, params, &opt))) goto done;
    if (t->r > 0) {
        snprintf(path, sizeof path, "%s/adapter.gguf", o.run_dir);
        if ((st = pl_trainer_save_gguf(t, path))) goto done;
    }
    if (t->cfg.full) {
        snprintf(path, sizeof path, "%s/model.safetensors", o.run_dir);
        if ((st = pl_trainer_save_full(t, path))) goto done;
        if (!t->m->hf_layout && o.base_model) {
            snprintf(path, sizeof path, "%s/model.gguf", o.run_dir);
            if ((st = pl_trainer_save_full_gguf(t, o.base_model, path))) goto done;
        }
    }
    if (t->r > 0 || t->head_idx >= 0) {
        snprintf(path, sizeof path, "%s/peft", o.run_dir);
        st = pl_trainer_save_peft(t, path, o.base_model);
    }
done:
    if (log) fclose(log);
    free(order);
    free(step_ex);
    free(step_loss);
    pl_adamw_free(&opt);
    return st;
}
