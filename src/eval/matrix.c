/* matrix.c — the generalization matrix: rows are (model, training set),
 * columns are test sources, each cell the F1 at a fixed threshold with its
 * percentile-bootstrap interval.
 *
 * A test source is in-domain for a row when it is one of the row's training
 * sources (run.json "train_sources"). Per row the gap is mean in-domain F1 -
 * mean out-of-domain F1 (unweighted means over the row's non-empty cells).
 * When every row holds out exactly one of the matrix's sources (and was
 * trained on at least one other), the runs are leave-one-source-out and a
 * LOSO summary is added: held-out F1 per row, and per model the means over
 * its rows.
 */
#include "eval.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NOMEM() pl_error(PL_ERR_NOMEM, "out of memory")

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void pl_matrix_free(pl_matrix *m) {
    for (size_t i = 0; i < m->n_cols; i++) free(m->cols[i]);
    free(m->cols);
    for (size_t r = 0; r < m->n_rows; r++) {
        pl_run_info_free(&m->rows[r].info);
        free(m->rows[r].cells);
    }
    free(m->rows);
    memset(m, 0, sizeof *m);
}

static int same_sources(const pl_run_info *a, const pl_run_info *b) {
    if (a->n_train_sources != b->n_train_sources) return 0;
    for (size_t i = 0; i < a->n_train_sources; i++)
        if (!pl_run_info_trained_on(b, a->train_sources[i])) return 0;
    return 1;
}

static int cmp_pred_key(const void *a, const void *b) {
    const pl_pred *x = *(const pl_pred *const *)a, *y = *(const pl_pred *const *)b;
    int c = strcmp(x->source, y->source);
    return c ? c : strcmp(x->id, y->id);
}

pl_status pl_matrix_build(const char *const *dirs, size_t n_dirs, double threshold, const pl_boot_opts *o,
                          pl_matrix *m) {
    memset(m, 0, sizeof *m);
    m->threshold = threshold;
    m->boot = *o;
    if (!n_dirs) return pl_error(PL_ERR_INVALID, "no run directories given");
    pl_preds *rp = calloc(n_dirs, sizeof *rp);          /* predictions per row */
    const char **rdir = calloc(n_dirs, sizeof *rdir);   /* first dir of each row */
    m->rows = calloc(n_dirs, sizeof *m->rows);
    pl_status st = rp && rdir && m->rows ? PL_OK : NOMEM();
    for (size_t d = 0; d < n_dirs && !st; d++) {
        char *rj = join_path(dirs[d], "run.json"), *pj = join_path(dirs[d], "predictions.jsonl");
        pl_run_info info;
        pl_run_info_init(&info);
        if (!rj || !pj) st = NOMEM();
        if (!st) st = pl_run_info_read(rj, &info);
        size_t r = 0;
        while (!st && r < m->n_rows &&
               (strcmp(m->rows[r].info.model, info.model) || strcmp(m->rows[r].info.train_set, info.train_set)))
            r++;
        if (!st && r == m->n_rows) {
            m->rows[r].info = info;
            m->rows[r].model = info.model;
            m->rows[r].train_set = info.train_set;
            m->rows[r].loso_col = -1;
            rdir[r] = dirs[d];
            m->n_rows++;
            pl_run_info_init(&info);
        } else if (!st && !same_sources(&m->rows[r].info, &info)) {
            st = pl_error(PL_ERR_FORMAT, "%s: model \"%s\" train_set \"%s\" lists other training sources than in %s",
                          rj, info.model, info.train_set, rdir[r]);
        }
        if (!st) st = pl_preds_read_jsonl(pj, &rp[r]);
        pl_run_info_free(&info);
        free(rj);
        free(pj);
    }
    /* A row may merge several run dirs: no email twice within a row. */
    for (size_t r = 0; r < m->n_rows && !st; r++) {
        size_t n = rp[r].n;
        const pl_pred **v = malloc(n * sizeof *v);
        if (!v) st = NOMEM();
        for (size_t i = 0; i < n && !st; i++) v[i] = &rp[r].v[i];
        if (!st) qsort(v, n, sizeof *v, cmp_pred_key);
        for (size_t i = 1; i < n && !st; i++)
            if (!cmp_pred_key(&v[i - 1], &v[i]))
                st = pl_error(PL_ERR_FORMAT, "model \"%s\" train_set \"%s\": email \"%s\" of source \"%s\" is scored twice",
                              m->rows[r].model, m->rows[r].train_set, v[i]->id, v[i]->source);
        free(v);
    }
    /* Columns: the distinct test sources of all rows, sorted. */
    size_t total = 0;
    for (size_t r = 0; r < m->n_rows; r++) total += rp[r].n;
    if (!st && !(m->cols = malloc((total ? total : 1) * sizeof *m->cols))) st = NOMEM();
    if (!st) {
        const char **tmp = malloc((total ? total : 1) * sizeof *tmp);
        if (!tmp) st = NOMEM();
        size_t k = 0;
        for (size_t r = 0; r < m->n_rows && !st; r++)
            for (size_t i = 0; i < rp[r].n; i++) tmp[k++] = rp[r].v[i].source;
        if (!st) qsort(tmp, k, sizeof *tmp, cmp_str);
        for (size_t i = 0; i < k && !st; i++)
            if (i == 0 || strcmp(tmp[i - 1], tmp[i])) {
                if (!(m->cols[m->n_cols] = dupstr(tmp[i]))) st = NOMEM();
                else m->n_cols++;
            }
        free(tmp);
    }
    size_t *idx = st ? NULL : malloc((total ? total : 1) * sizeof *idx);
    if (!st && !idx) st = NOMEM();
    for (size_t r = 0; r < m->n_rows && !st; r++) {
        pl_matrix_row *row = &m->rows[r];
        if (!(row->cells = calloc(m->n_cols, sizeof *row->cells))) {
            st = NOMEM();
            break;
        }
        double sin = 0, sout = 0;
        int nin = 0, nout = 0, n_ood = 0, ood = -1, n_id = 0;
        for (size_t c = 0; c < m->n_cols && !st; c++) {
            pl_matrix_cell *cell = &row->cells[c];
            cell->in_domain = pl_run_info_trained_on(&row->info, m->cols[c]);
            cell->f1 = NAN;
            cell->ci.lo = cell->ci.hi = NAN;
            size_t k = 0;
            for (size_t i = 0; i < rp[r].n; i++)
                if (!strcmp(rp[r].v[i].source, m->cols[c])) idx[k++] = i;
            if (!k) continue;
            pl_metrics mt;
            pl_ci ci[PL_M_COUNT];
            pl_boot_opts bo = *o;
            /* The cell's stream depends only on (seed, model, train_set, source). */
            uint64_t h = pl_hash64(row->model, strlen(row->model) + 1, 0);
            h = pl_hash64(row->train_set, strlen(row->train_set) + 1, h);
            bo.seed = o->seed ^ pl_hash64(m->cols[c], strlen(m->cols[c]) + 1, h);
            st = pl_eval_metrics(&rp[r], idx, k, threshold, &mt);
            if (!st) st = pl_eval_bootstrap(&rp[r], idx, k, threshold, &bo, ci);
            if (st) break;
            cell->n = mt.n;
            cell->n_pos = mt.n_pos;
            cell->f1 = mt.v[PL_M_F1];
            cell->ci = ci[PL_M_F1];
            if (cell->in_domain) {
                sin += cell->f1;
                nin++;
                n_id++;
            } else {
                sout += cell->f1;
                nout++;
                n_ood++;
                ood = (int)c;
            }
        }
        row->mean_in = nin ? sin / nin : (double)NAN;
        row->mean_out = nout ? sout / nout : (double)NAN;
        row->gap = row->mean_in - row->mean_out;
        row->loso_col = n_ood == 1 && n_id >= 1 ? ood : -1;
    }
    free(idx);
    if (!st) {
        m->is_loso = m->n_rows > 0;
        for (size_t r = 0; r < m->n_rows; r++)
            if (m->rows[r].loso_col < 0) m->is_loso = 0;
    }
    for (size_t d = 0; d < n_dirs && rp; d++) pl_preds_free(&rp[d]);
    free(rp);
    free(rdir);
    if (st) pl_matrix_free(m);
    return st;
}

/* ---- outputs ------------------------------------------------------------ */

static cJSON *ci_json(const pl_ci *ci) {
    if (isnan(ci->lo)) return cJSON_CreateNull();
    double pair[2] = {ci->lo, ci->hi};
    return cJSON_CreateDoubleArray(pair, 2);
}

/* cJSON_CreateStringArray refuses a NULL array even for n = 0. */
static cJSON *str_array(char *const *v, size_t n) {
    return n ? cJSON_CreateStringArray((const char *const *)v, (int)n) : cJSON_CreateArray();
}

cJSON *pl_matrix_to_json(const pl_matrix *m) {
    cJSON *o = cJSON_CreateObject(), *b, *cols, *rows;
    int ok = o && cJSON_AddNumberToObject(o, "threshold", m->threshold) && (b = cJSON_AddObjectToObject(o, "bootstrap")) &&
             cJSON_AddStringToObject(b, "method", "percentile") &&
             cJSON_AddNumberToObject(b, "resamples", (double)m->boot.n_boot) &&
             cJSON_AddNumberToObject(b, "level", m->boot.level) && cJSON_AddNumberToObject(b, "seed", (double)m->boot.seed) &&
             (cols = str_array(m->cols, m->n_cols)) &&
             cJSON_AddItemToObject(o, "columns", cols) && (rows = cJSON_AddArrayToObject(o, "rows"));
    for (size_t r = 0; ok && r < m->n_rows; r++) {
        const pl_matrix_row *row = &m->rows[r];
        cJSON *jr = cJSON_CreateObject(), *cells, *ts;
        ok = jr && cJSON_AddItemToArray(rows, jr) && cJSON_AddStringToObject(jr, "model", row->model) &&
             cJSON_AddStringToObject(jr, "train_set", row->train_set) &&
             (ts = str_array(row->info.train_sources, row->info.n_train_sources)) &&
             cJSON_AddItemToObject(jr, "train_sources", ts) && (cells = cJSON_AddObjectToObject(jr, "cells"));
        for (size_t c = 0; ok && c < m->n_cols; c++) {
            const pl_matrix_cell *cell = &row->cells[c];
            if (!cell->n) {
                ok = cJSON_AddNullToObject(cells, m->cols[c]) != NULL;
                continue;
            }
            cJSON *jc = cJSON_AddObjectToObject(cells, m->cols[c]);
            ok = jc && cJSON_AddNumberToObject(jc, "n", (double)cell->n) &&
                 cJSON_AddNumberToObject(jc, "n_pos", (double)cell->n_pos) &&
                 cJSON_AddItemToObject(jc, "f1", pl_json_num_or_null(cell->f1)) &&
                 cJSON_AddItemToObject(jc, "ci", ci_json(&cell->ci)) && cJSON_AddBoolToObject(jc, "in_domain", cell->in_domain);
        }
        ok = ok && cJSON_AddItemToObject(jr, "mean_in_domain", pl_json_num_or_null(row->mean_in)) &&
             cJSON_AddItemToObject(jr, "mean_out_of_domain", pl_json_num_or_null(row->mean_out)) &&
             cJSON_AddItemToObject(jr, "gap", pl_json_num_or_null(row->gap));
    }
    if (ok && !m->is_loso) ok = cJSON_AddNullToObject(o, "loso") != NULL;
    else if (ok) {
        cJSON *lo = cJSON_AddObjectToObject(o, "loso"), *lr, *bm;
        ok = lo && (lr = cJSON_AddArrayToObject(lo, "rows")) && (bm = cJSON_AddArrayToObject(lo, "by_model"));
        for (size_t r = 0; ok && r < m->n_rows; r++) {
            const pl_matrix_row *row = &m->rows[r];
            const pl_matrix_cell *cell = &row->cells[row->loso_col];
            cJSON *j = cJSON_CreateObject();
            ok = j && cJSON_AddItemToArray(lr, j) && cJSON_AddStringToObject(j, "model", row->model) &&
                 cJSON_AddStringToObject(j, "train_set", row->train_set) &&
                 cJSON_AddStringToObject(j, "held_out", m->cols[row->loso_col]) &&
                 cJSON_AddItemToObject(j, "f1", pl_json_num_or_null(cell->f1)) && cJSON_AddItemToObject(j, "ci", ci_json(&cell->ci)) &&
                 cJSON_AddItemToObject(j, "mean_in_domain", pl_json_num_or_null(row->mean_in)) &&
                 cJSON_AddItemToObject(j, "gap", pl_json_num_or_null(row->gap));
        }
        /* Per model: means over its LOSO rows (models in first-seen order). */
        for (size_t r = 0; ok && r < m->n_rows; r++) {
            size_t q = 0;
            while (q < r && strcmp(m->rows[q].model, m->rows[r].model)) q++;
            if (q < r) continue;
            double sf = 0, si = 0, sg = 0;
            int n = 0;
            for (size_t k = r; k < m->n_rows; k++) {
                if (strcmp(m->rows[k].model, m->rows[r].model)) continue;
                sf += m->rows[k].cells[m->rows[k].loso_col].f1;
                si += m->rows[k].mean_in;
                sg += m->rows[k].gap;
                n++;
            }
            cJSON *j = cJSON_CreateObject();
            ok = j && cJSON_AddItemToArray(bm, j) && cJSON_AddStringToObject(j, "model", m->rows[r].model) &&
                 cJSON_AddNumberToObject(j, "folds", n) &&
                 cJSON_AddItemToObject(j, "mean_held_out_f1", pl_json_num_or_null(sf / n)) &&
                 cJSON_AddItemToObject(j, "mean_in_domain_f1", pl_json_num_or_null(si / n)) &&
                 cJSON_AddItemToObject(j, "mean_gap", pl_json_num_or_null(sg / n));
        }
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* One CSV field, quoted when it holds a comma, quote or line break. */
static pl_status csv_field(pl_buf *b, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) return pl_buf_append(b, s, strlen(s));
    pl_status st = pl_buf_append(b, "\"", 1);
    for (const char *p = s; *p && !st; p++) st = *p == '"' ? pl_buf_append(b, "\"\"", 2) : pl_buf_append(b, p, 1);
    return st ? st : pl_buf_append(b, "\"", 1);
}

static pl_status csv_num(pl_buf *b, double v) { return isfinite(v) ? pl_buf_printf(b, ",%.17g", v) : pl_buf_append(b, ",", 1); }

pl_status pl_matrix_write_csv(const pl_matrix *m, const char *path) {
    pl_buf b = {0};
    pl_status st = pl_buf_printf(&b, "model,train_set,test_source,in_domain,n,n_pos,f1,ci_lo,ci_hi\n");
    for (size_t r = 0; r < m->n_rows && !st; r++)
        for (size_t c = 0; c < m->n_cols && !st; c++) {
            const pl_matrix_cell *cell = &m->rows[r].cells[c];
            if (!cell->n) continue;
            st = csv_field(&b, m->rows[r].model);
            if (!st) st = pl_buf_append(&b, ",", 1);
            if (!st) st = csv_field(&b, m->rows[r].train_set);
            if (!st) st = pl_buf_append(&b, ",", 1);
            if (!st) st = csv_field(&b, m->cols[c]);
            if (!st) st = pl_buf_printf(&b, ",%d,%lld,%lld", cell->in_domain, (long long)cell->n, (long long)cell->n_pos);
            if (!st) st = csv_num(&b, cell->f1);
            if (!st) st = csv_num(&b, cell->ci.lo);
            if (!st) st = csv_num(&b, cell->ci.hi);
            if (!st) st = pl_buf_append(&b, "\n", 1);
        }
    if (!st) st = pl_write_file_atomic(path, b.data, b.len);
    pl_buf_free(&b);
    return st;
}

void pl_matrix_print(const pl_matrix *m, FILE *fp) {
    int w = 20;
    for (size_t r = 0; r < m->n_rows; r++) {
        int l = (int)(strlen(m->rows[r].model) + strlen(m->rows[r].train_set) + 3);
        if (l > w) w = l;
    }
    if (w > 48) w = 48;
    fprintf(fp, "F1 at p >= %g with %g%% bootstrap CI (%lld resamples); * = in-domain\n", m->threshold,
            m->boot.level * 100, (long long)m->boot.n_boot);
    fprintf(fp, "%-*s", w, "model / train_set");
    for (size_t c = 0; c < m->n_cols; c++) fprintf(fp, "  %-22.22s", m->cols[c]);
    fprintf(fp, "  %7s\n", "gap");
    for (size_t r = 0; r < m->n_rows; r++) {
        const pl_matrix_row *row = &m->rows[r];
        char name[256];
        snprintf(name, sizeof name, "%s / %s", row->model, row->train_set[0] ? row->train_set : "(none)");
        fprintf(fp, "%-*.*s", w, w, name);
        for (size_t c = 0; c < m->n_cols; c++) {
            const pl_matrix_cell *cell = &row->cells[c];
            char s[64];
            if (!cell->n) snprintf(s, sizeof s, "-");
            else if (isnan(cell->ci.lo)) snprintf(s, sizeof s, "%.3f%s", cell->f1, cell->in_domain ? "*" : "");
            else snprintf(s, sizeof s, "%.3f [%.3f,%.3f]%s", cell->f1, cell->ci.lo, cell->ci.hi, cell->in_domain ? "*" : "");
            fprintf(fp, "  %-22s", s);
        }
        if (isnan(row->gap)) fprintf(fp, "  %7s\n", "-");
        else fprintf(fp, "  %+7.3f\n", row->gap);
    }
    if (m->is_loso) {
        fprintf(fp, "\nleave-one-source-out:\n");
        for (size_t r = 0; r < m->n_rows; r++) {
            const pl_matrix_row *row = &m->rows[r];
            const pl_matrix_cell *cell = &row->cells[row->loso_col];
            fprintf(fp, "  %-24s held out %-16s F1 %.3f  in-domain %.3f  gap %+.3f\n", row->model, m->cols[row->loso_col],
                    cell->f1, row->mean_in, row->gap);
        }
    }
}
