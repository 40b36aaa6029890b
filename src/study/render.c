/* render.c — the study report: report.html + report.json through the report
 * module, from the diagnosis and the stage outputs.
 *
 * Sections (each only when its stage produced something; otherwise a "not
 * run" line says why): summary findings, generalization (matrix heatmap,
 * F1 bars with CIs per training), data (label balance, body length,
 * distinctive tokens, label-noise audit), explanations (global SHAP bars,
 * shortcut candidates, highlighted emails), interpretability, and the list
 * of tasks that did not run.
 */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "interp/interp.h"
#include "report/report.h"
#include "study/study_internal.h"

static cJSON *load(const char *path) {
    if (!path) return NULL;
    char *data = NULL;
    size_t len = 0;
    if (pl_read_file(path, &data, &len)) {
        pl_error_clear();
        return NULL;
    }
    cJSON *j = cJSON_ParseWithLength(data, len);
    free(data);
    return j;
}

static double jnum(const cJSON *o, const char *k) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : (double)NAN;
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Findings from the summary sentences, grouped by what they cite. */
static pl_status add_findings(pl_report *r, const cJSON *summary) {
    static const struct {
        const char *topic, *headline;
        pl_finding_level level;
    } groups[] = {{"shortcut", "Shortcuts: source artifacts the models rely on", PL_FINDING_PROBLEM},
                  {"gap", "Generalization across corpora", PL_FINDING_WARN},
                  {"ood", "Words behind out-of-domain errors", PL_FINDING_INFO},
                  {"interp", "Where the decision is made: probes, components, ablation", PL_FINDING_INFO},
                  {"data", "The data", PL_FINDING_INFO}};
    pl_status st = PL_OK;
    for (size_t g = 0; g < sizeof groups / sizeof *groups && !st; g++) {
        size_t n = 0;
        for (const cJSON *s = summary ? summary->child : NULL; s; s = s->next) n += !strcmp(jstr(s, "topic"), groups[g].topic);
        if (!n) continue;
        pl_report_sentence *v = calloc(n, sizeof *v);
        if (!v) return pl_error(PL_ERR_NOMEM, "out of memory");
        size_t k = 0;
        for (const cJSON *s = summary->child; s; s = s->next)
            if (!strcmp(jstr(s, "topic"), groups[g].topic))
                v[k++] = (pl_report_sentence){jstr(s, "text"), jstr(s, "evidence"), jstr(s, "cite")};
        char id[32];
        snprintf(id, sizeof id, "finding-%zu", g);
        st = pl_report_finding(r, id, groups[g].level, groups[g].headline, v, n);
        free(v);
    }
    return st;
}

static pl_status generalization(pl_report *r, const pl_diag_inputs *in) {
    pl_status st = pl_report_section(r, "sec-generalization", "Generalization");
    if (st) return st;
    if (!in->n_run_dirs) return pl_report_paragraph(r, "Not run: no eval task completed, so there is no generalization matrix.");
    pl_matrix mx;
    pl_boot_opts bo = pl_boot_defaults();
    bo.n_boot = in->cfg->n_boot;
    bo.seed = in->cfg->seed;
    st = pl_matrix_build(in->run_dirs, in->n_run_dirs, 0.5, &bo, &mx);
    if (st) return st;
    st = pl_report_matrix(r, "fig-matrix", "F1 by training (rows) and test corpus (columns)", &mx);
    /* F1 bars with CIs, one small chart per training */
    if (!st) st = pl_report_subsection(r, "sec-f1-bars", "F1 per test corpus with 95% bootstrap intervals");
    if (!st) st = pl_report_group_begin(r);
    double *v = malloc(mx.n_cols * sizeof *v), *lo = malloc(mx.n_cols * sizeof *lo), *hi = malloc(mx.n_cols * sizeof *hi);
    if (!st && (!v || !lo || !hi)) st = pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < mx.n_rows && !st; i++) {
        for (size_t k = 0; k < mx.n_cols; k++) {
            v[k] = mx.rows[i].cells[k].f1;
            lo[k] = mx.rows[i].cells[k].ci.lo;
            hi[k] = mx.rows[i].cells[k].ci.hi;
        }
        char title[300], id[32];
        snprintf(title, sizeof title, "%s / %s", mx.rows[i].model, mx.rows[i].train_set);
        snprintf(id, sizeof id, "fig-f1-%zu", i);
        pl_bars b = pl_bars_defaults();
        b.t.id = id;
        b.t.title = title;
        b.t.y_label = "F1";
        b.n_groups = mx.n_cols;
        b.n_series = 1;
        b.groups = (const char *const *)mx.cols;
        static const char *const series[] = {"F1"};
        b.series = series;
        b.values = v;
        b.lo = lo;
        b.hi = hi;
        b.ref = mx.rows[i].mean_in;
        st = pl_report_bars(r, &b);
    }
    if (!st) st = pl_report_group_end(r);
    free(v);
    free(lo);
    free(hi);
    pl_matrix_free(&mx);
    return st;
}

static pl_status data_section(pl_report *r, const pl_diag_inputs *in) {
    pl_status st = pl_report_section(r, "sec-data", "Data");
    if (st) return st;
    cJSON *prof = load(in->profile_json);
    if (!prof) return pl_report_paragraph(r, "Not run: the data profile task did not complete.");
    const cJSON *srcs = cJSON_GetObjectItemCaseSensitive(prof, "sources");
    size_t n = (size_t)cJSON_GetArraySize(srcs);
    const char **names = calloc(n ? n : 1, sizeof *names);
    double *bal = calloc(2 * (n ? n : 1), sizeof *bal), *q = calloc(5 * (n ? n : 1), sizeof *q);
    if (!names || !bal || !q) st = pl_error(PL_ERR_NOMEM, "out of memory");
    size_t i = 0;
    for (const cJSON *s = srcs ? srcs->child : NULL; s && !st; s = s->next, i++) {
        names[i] = jstr(s, "source");
        bal[2 * i] = jnum(s, "n_phish");
        bal[2 * i + 1] = jnum(s, "n_legit");
        const cJSON *qq = cJSON_GetObjectItemCaseSensitive(s, "body_bytes_p5_p25_p50_p75_p95");
        for (int k = 0; k < 5; k++) {
            const cJSON *e = cJSON_GetArrayItem(qq, k);
            q[5 * i + k] = cJSON_IsNumber(e) && e->valuedouble > 0 ? e->valuedouble : (double)NAN;
        }
    }
    if (!st) st = pl_report_group_begin(r);
    if (!st) {
        pl_stacked s = pl_stacked_defaults();
        s.t.id = "fig-balance";
        s.t.title = "Label balance per corpus (train + val)";
        s.n_groups = n;
        s.n_parts = 2;
        s.groups = names;
        static const char *const parts[] = {"phishing", "legitimate"};
        s.parts = parts;
        s.values = bal;
        s.normalize = 1;
        st = pl_report_stacked(r, &s);
    }
    if (!st) {
        pl_quantiles qq = pl_quantiles_defaults();
        qq.t.id = "fig-length";
        qq.t.title = "Body length (bytes): p5, p25, median, p75, p95";
        qq.n_groups = n;
        qq.groups = names;
        qq.q = q;
        qq.log_x = 1;
        st = pl_report_quantiles(r, &qq);
    }
    if (!st) st = pl_report_group_end(r);
    /* distinctive tokens: top 5 per corpus */
    if (!st) {
        const char *hdr[] = {"corpus", "token", "log-odds z", "count"};
        const char **cells = calloc(n * 5 * 4 + 1, sizeof *cells);
        char(*buf)[32] = calloc(n * 5 * 2 + 1, sizeof *buf);
        size_t rows = 0;
        if (!cells || !buf) st = pl_error(PL_ERR_NOMEM, "out of memory");
        i = 0;
        for (const cJSON *s = srcs ? srcs->child : NULL; s && !st; s = s->next, i++) {
            int k = 0;
            for (const cJSON *e = cJSON_GetObjectItemCaseSensitive(s, "distinctive")->child; e && k < 5; e = e->next, k++) {
                cells[rows * 4] = jstr(s, "source");
                cells[rows * 4 + 1] = jstr(e, "token");
                cells[rows * 4 + 2] = pl_report_fmt(jnum(e, "z"), 1, buf[rows * 2], 32);
                cells[rows * 4 + 3] = pl_report_fmt(jnum(e, "count"), 0, buf[rows * 2 + 1], 32);
                rows++;
            }
        }
        if (!st && rows)
            st = pl_report_table(r, "tab-distinctive", "Most source-distinctive tokens (Monroe et al. log-odds, z)", rows, 4, hdr,
                                 cells);
        free(cells);
        free(buf);
    }
    /* audit */
    cJSON *audit = load(in->audit_json);
    if (!st && audit) {
        const cJSON *per = cJSON_GetObjectItemCaseSensitive(audit, "per_source");
        size_t np = (size_t)cJSON_GetArraySize(per);
        const char **cells = calloc(3 * (np ? np : 1), sizeof *cells);
        char(*buf)[32] = calloc(2 * (np ? np : 1), sizeof *buf);
        if (!cells || !buf) st = pl_error(PL_ERR_NOMEM, "out of memory");
        size_t k = 0;
        for (const cJSON *s = per ? per->child : NULL; s && !st; s = s->next, k++) {
            cells[3 * k] = s->string;
            cells[3 * k + 1] = pl_report_fmt(jnum(s, "n"), 0, buf[2 * k], 32);
            cells[3 * k + 2] = pl_report_fmt(jnum(s, "flagged"), 0, buf[2 * k + 1], 32);
        }
        const char *hdr[] = {"corpus", "emails", "flagged as possibly mislabelled"};
        char cap[256];
        snprintf(cap, sizeof cap, "Label-noise audit (%s); estimated noise rate %.3f", jstr(audit, "method"),
                 jnum(audit, "noise_rate"));
        if (!st) st = pl_report_subsection(r, "sec-audit", "Label-noise audit");
        if (!st) st = pl_report_table(r, "tab-audit", cap, k, 3, hdr, cells);
        free(cells);
        free(buf);
    }
    cJSON_Delete(audit);
    free(names);
    free(bal);
    free(q);
    cJSON_Delete(prof);
    return st;
}

static pl_status explain_section(pl_report *r, const pl_diag_inputs *in, const cJSON *diag) {
    pl_status st = pl_report_section(r, "sec-explain", "Explanations (SHAP)");
    if (st) return st;
    if (!in->n_explain) return pl_report_paragraph(r, "Not run: no explain task completed.");
    /* shortcut candidates over all runs */
    const cJSON *sc = diag ? cJSON_GetObjectItemCaseSensitive(diag, "shortcut_candidates") : NULL;
    size_t nsc = (size_t)cJSON_GetArraySize(sc);
    if (nsc) {
        const char **cells = calloc(nsc * 5, sizeof *cells);
        char(*buf)[48] = calloc(nsc * 3, sizeof *buf);
        if (!cells || !buf) st = pl_error(PL_ERR_NOMEM, "out of memory");
        size_t k = 0;
        for (const cJSON *e = sc->child; e && !st; e = e->next, k++) {
            cells[5 * k] = jstr(e, "key");
            cells[5 * k + 1] = jstr(e, "source");
            cells[5 * k + 2] = pl_report_fmt(jnum(e, "z"), 1, buf[3 * k], 48);
            cells[5 * k + 3] = pl_report_fmt(jnum(e, "best_rank"), 0, buf[3 * k + 1], 48);
            snprintf(buf[3 * k + 2], 48, "%d", cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(e, "runs")));
            cells[5 * k + 4] = buf[3 * k + 2];
        }
        const char *hdr[] = {"word", "distinctive of", "log-odds z", "best SHAP rank", "runs"};
        if (!st)
            st = pl_report_table(r, "tab-shortcuts",
                                 "Shortcut candidates: source-distinctive words among the top SHAP features", k, 5, hdr, cells);
        free(cells);
        free(buf);
    } else {
        st = pl_report_paragraph(r, "No source-distinctive word ranks among the top SHAP features of any run.");
    }
    for (size_t e = 0; e < in->n_explain && !st; e++) {
        cJSON *x = load(in->explain_json[e]);
        if (!x) continue;
        char id[48], title[300];
        snprintf(id, sizeof id, "sec-explain-%zu", e);
        snprintf(title, sizeof title, "%s / %s", jstr(x, "model"), jstr(x, "training"));
        st = pl_report_subsection(r, id, title);
        char para[512];
        snprintf(para, sizeof para,
                 "%.0f test emails explained with %s SHAP over words (%.0f of them out-of-domain errors); "
                 "largest efficiency error %.2g, largest deviation from the exact per-word values %.2g.",
                 jnum(x, "n_explained"), jstr(x, "method"), jnum(x, "n_ood_errors_explained"), jnum(x, "max_efficiency_error"),
                 jnum(x, "additivity_error"));
        if (!st) st = pl_report_paragraph(r, para);
        if (!st) st = pl_report_group_begin(r);
        static const char *const which[2] = {"global", "ood_errors"};
        for (int w = 0; w < 2 && !st; w++) {
            const cJSON *all = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(x, which[w]), "slices"), "all");
            size_t n = (size_t)cJSON_GetArraySize(all);
            if (!n) continue;
            const char **labels = calloc(n, sizeof *labels);
            double *v = calloc(n, sizeof *v);
            if (!labels || !v) st = pl_error(PL_ERR_NOMEM, "out of memory");
            size_t k = 0;
            for (const cJSON *s = all->child; s && !st; s = s->next, k++) {
                labels[k] = jstr(s, "key");
                v[k] = jnum(s, "mean_phi");
            }
            char hid[48];
            snprintf(hid, sizeof hid, "fig-shap-%zu-%d", e, w);
            pl_hbars h = pl_hbars_defaults();
            h.t.id = hid;
            h.t.title = w == 0 ? "Top words by mean |SHAP| (bar: mean signed SHAP)" : "In out-of-domain errors";
            h.n = k;
            h.labels = labels;
            h.values = v;
            h.pos_label = "phishing";
            h.neg_label = "legitimate";
            if (!st) st = pl_report_hbars(r, &h);
            free(labels);
            free(v);
        }
        if (!st) st = pl_report_group_end(r);
        /* highlighted emails: up to two */
        const cJSON *exs = cJSON_GetObjectItemCaseSensitive(x, "examples");
        int shown = 0;
        for (const cJSON *ex = exs ? exs->child : NULL; ex && !st && shown < 2; ex = ex->next, shown++) {
            const cJSON *pieces = cJSON_GetObjectItemCaseSensitive(ex, "pieces"), *phi = cJSON_GetObjectItemCaseSensitive(ex, "phi");
            size_t n = (size_t)cJSON_GetArraySize(pieces);
            if (!n || (size_t)cJSON_GetArraySize(phi) != n) continue;
            const char **tok = calloc(n, sizeof *tok);
            double *v = calloc(n, sizeof *v);
            if (!tok || !v) st = pl_error(PL_ERR_NOMEM, "out of memory");
            size_t k = 0;
            for (const cJSON *p = pieces->child, *q = phi->child; p && q && !st; p = p->next, q = q->next, k++) {
                tok[k] = p->valuestring;
                v[k] = q->valuedouble;
            }
            char tid[48], tt[400];
            snprintf(tid, sizeof tid, "fig-text-%zu-%d", e, shown);
            const cJSON *ood = cJSON_GetObjectItemCaseSensitive(ex, "ood_error");
            snprintf(tt, sizeof tt, "Email %s (%s, label %s, predicted %s%s): score %.2f", jstr(ex, "id"), jstr(ex, "source"),
                     jnum(ex, "label") == 1 ? "phishing" : "legitimate", jnum(ex, "pred") == 1 ? "phishing" : "legitimate",
                     cJSON_IsTrue(ood) ? ", out-of-domain error" : "", jnum(ex, "fx"));
            pl_chart_text t = {tid, tt, "Red words push toward phishing, blue toward legitimate.", NULL, NULL};
            if (!st) st = pl_report_text_heat(r, &t, k, tok, v, NAN);
            free(tok);
            free(v);
        }
        cJSON_Delete(x);
    }
    return st;
}

/* Probe depth curves: CV accuracy per layer, one line per (model, training). */
static pl_status probe_curves(pl_report *r, const pl_diag_inputs *in) {
    size_t n = in->n_interp;
    pl_series *sv = calloc(n ? n : 1, sizeof *sv);
    cJSON **js = calloc(n ? n : 1, sizeof *js);
    double **xs = calloc(n ? n : 1, sizeof *xs), **ys = calloc(n ? n : 1, sizeof *ys);
    char(*names)[300] = calloc(n ? n : 1, sizeof *names);
    pl_status st = sv && js && xs && ys && names ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
    size_t k = 0;
    double base = NAN;
    for (size_t i = 0; i < n && !st; i++) {
        cJSON *j = load(in->interp_json[i]);
        if (!j) continue;
        js[k] = j;
        const cJSON *L = cJSON_GetObjectItemCaseSensitive(j, "layers"), *A = cJSON_GetObjectItemCaseSensitive(j, "cv_accuracy");
        size_t m = (size_t)cJSON_GetArraySize(L);
        if ((size_t)cJSON_GetArraySize(A) != m || !m) continue;
        xs[k] = calloc(m, sizeof **xs);
        ys[k] = calloc(m, sizeof **ys);
        if (!xs[k] || !ys[k]) {
            st = pl_error(PL_ERR_NOMEM, "out of memory");
            break;
        }
        size_t q = 0;
        for (const cJSON *a = L->child, *b = A->child; a && b; a = a->next, b = b->next, q++) {
            xs[k][q] = a->valuedouble;
            ys[k][q] = cJSON_IsNumber(b) ? b->valuedouble : (double)NAN;
        }
        snprintf(names[k], sizeof names[k], "%s / %s", jstr(j, "model"), jstr(j, "training"));
        sv[k] = (pl_series){names[k], m, xs[k], ys[k], NULL, NULL, 0};
        if (!isfinite(base)) base = jnum(j, "majority_baseline");
        k++;
    }
    if (!st && k) {
        pl_lines l = pl_lines_defaults();
        l.t.id = "fig-probe";
        l.t.title = "Linear probe on blocks.L.hook_resid_post at the answer position";
        l.t.caption = "Cross-validated accuracy of an L2 logistic probe for the label, per layer; dashed: majority class.";
        l.t.x_label = "layer";
        l.t.y_label = "CV accuracy";
        l.n_series = k;
        l.series = sv;
        l.hline = base;
        l.integer_x = 1;
        l.points = 1;
        st = pl_report_lines(r, &l);
    }
    for (size_t i = 0; i < n; i++) {
        if (js) cJSON_Delete(js[i]);
        if (xs) free(xs[i]);
        if (ys) free(ys[i]);
    }
    free(sv);
    free(js);
    free(xs);
    free(ys);
    free(names);
    return st;
}

/* Numbers of a JSON array into a new double array (NaN for null); *n gets
 * its length. NULL when empty or out of memory. */
static double *jnums(const cJSON *a, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(a);
    if (!*n) return NULL;
    double *v = malloc(*n * sizeof *v);
    size_t i = 0;
    for (const cJSON *e = a->child; v && e; e = e->next, i++) v[i] = cJSON_IsNumber(e) ? e->valuedouble : (double)NAN;
    return v;
}

/* A grid JSON ({"rows","cols","values"}) as a heatmap. */
static pl_status grid_heatmap(pl_report *r, const cJSON *gj, const char *id, const char *title, const char *caption,
                              const char *x_label, int show_values) {
    pl_grid g;
    pl_status st = pl_grid_from_json(gj, title, &g);
    if (st) return st;
    pl_heatmap h = pl_heatmap_defaults();
    h.t.id = id;
    h.t.title = title;
    h.t.caption = caption;
    h.t.x_label = x_label;
    h.t.y_label = "layer";
    h.n_rows = g.n_rows;
    h.n_cols = g.n_cols;
    h.row_labels = (const char *const *)g.rows;
    h.col_labels = (const char *const *)g.cols;
    h.values = g.values;
    h.scale = PL_SCALE_DIVERGING;
    h.center = 0;
    h.show_values = show_values;
    h.legend = "recovery";
    st = pl_report_heatmap(r, &h);
    pl_grid_free(&g);
    return st;
}

/* Logit lens curves, DLA bars, the ablation table, attention maps and the
 * patching heatmaps of one interp.json. k numbers the run (for ids). */
static pl_status interp_run(pl_report *r, const cJSON *j, size_t k) {
    char sid[48], id[64], title[400], cap[600];
    snprintf(sid, sizeof sid, "sec-interp-%zu", k);
    snprintf(title, sizeof title, "%s / %s", jstr(j, "model"), jstr(j, "training"));
    pl_status st = pl_report_subsection(r, sid, title);
    /* logit lens: mean score per class on resid_post (and resid_mid, dashed) by layer */
    const cJSON *lens = cJSON_GetObjectItemCaseSensitive(j, "lens");
    if (!st && lens) {
        size_t nr = 0, na = 0, nb = 0;
        double *mp = jnums(cJSON_GetObjectItemCaseSensitive(lens, "mean_phishing"), &na);
        double *ml = jnums(cJSON_GetObjectItemCaseSensitive(lens, "mean_legitimate"), &nb);
        nr = (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(lens, "rows"));
        size_t L = nr / 3;
        double *buf = calloc(6 * (L ? L : 1), sizeof *buf);
        if (!buf) st = pl_error(PL_ERR_NOMEM, "out of memory");
        if (!st && mp && ml && na == nr && nb == nr && L > 0) {
            double *x = buf, *pp = buf + L, *pl = buf + 2 * L, *mpp = buf + 3 * L, *mpl = buf + 4 * L;
            for (size_t l = 0; l < L; l++) {
                x[l] = (double)l;
                pp[l] = mp[3 * l + 2], pl[l] = ml[3 * l + 2];
                mpp[l] = mp[3 * l + 1], mpl[l] = ml[3 * l + 1];
            }
            pl_series sv[4] = {{"phishing, resid_post", L, x, pp, NULL, NULL, 0},
                               {"legitimate, resid_post", L, x, pl, NULL, NULL, 0},
                               {"phishing, resid_mid", L, x, mpp, NULL, NULL, 1},
                               {"legitimate, resid_mid", L, x, mpl, NULL, NULL, 1}};
            pl_lines ln = pl_lines_defaults();
            snprintf(id, sizeof id, "fig-lens-%zu", k);
            snprintf(cap, sizeof cap,
                     "Logit lens: the classifier score (logit phishing - logit legitimate through the final norm) of each "
                     "layer's residual at the answer position, mean per class over %d emails. Lens layer %d (AUC %.3f; "
                     "the classes %s separated at AUC >= %.2f).",
                     (int)jnum(j, "n"), (int)jnum(lens, "lens_layer"), jnum(lens, "lens_layer_auc"),
                     cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(lens, "separates")) ? "are" : "are not",
                     jnum(lens, "separation_auc_threshold"));
            ln.t.id = id;
            ln.t.title = "Logit lens by layer";
            ln.t.caption = cap;
            ln.t.x_label = "layer";
            ln.t.y_label = "lens score";
            ln.n_series = 4;
            ln.series = sv;
            ln.integer_x = 1;
            ln.points = 1;
            st = pl_report_lines(r, &ln);
        }
        free(mp), free(ml), free(buf);
    }
    /* DLA: the components with the largest class difference */
    const cJSON *dla = cJSON_GetObjectItemCaseSensitive(j, "dla");
    if (!st && dla) {
        const cJSON *lists[2] = {cJSON_GetObjectItemCaseSensitive(dla, "top_heads"), cJSON_GetObjectItemCaseSensitive(dla, "top_mlps")};
        const char *labels[24];
        double vals[24];
        size_t m = 0;
        for (int q = 0; q < 2; q++) {
            int c = 0;
            for (const cJSON *e = lists[q] ? lists[q]->child : NULL; e && c < (q ? 4 : 10) && m < 24; e = e->next, c++) {
                labels[m] = jstr(e, "component");
                vals[m++] = jnum(e, "difference");
            }
        }
        /* by |difference| */
        for (size_t a = 1; a < m; a++)
            for (size_t b = a; b > 0 && fabs(vals[b]) > fabs(vals[b - 1]); b--) {
                double tv = vals[b];
                vals[b] = vals[b - 1], vals[b - 1] = tv;
                const char *tl = labels[b];
                labels[b] = labels[b - 1], labels[b - 1] = tl;
            }
        if (m) {
            pl_hbars hb = pl_hbars_defaults();
            snprintf(id, sizeof id, "fig-dla-%zu", k);
            snprintf(cap, sizeof cap,
                     "Direct logit attribution at the answer position (final-norm scale frozen per email): mean "
                     "contribution to the score over %d phishing minus %d legitimate emails, for the heads and MLPs "
                     "with the largest difference. Largest |sum of contributions - readout| over the emails: %.2g.",
                     (int)jnum(dla, "n_phishing"), (int)jnum(dla, "n_legitimate"),
                     jnum(cJSON_GetObjectItemCaseSensitive(dla, "sum_check"), "max_abs_error_vs_readout"));
            hb.t.id = id;
            hb.t.title = "Direct logit attribution: class difference per component";
            hb.t.caption = cap;
            hb.n = m;
            hb.labels = labels;
            hb.values = vals;
            hb.pos_label = "more toward phishing on phishing emails";
            hb.neg_label = "more toward legitimate";
            hb.digits = 3;
            st = pl_report_hbars(r, &hb);
        }
    }
    /* ablation: top sets against random controls */
    const cJSON *abl = cJSON_GetObjectItemCaseSensitive(j, "ablation");
    if (!st && abl) {
        const char *cells[2 * (1 + 8) * 5];
        char nb[2 * 9][3][32], names[2 * 9][256];
        size_t rows = 0;
        static const char *kinds[2] = {"heads", "mlps"};
        for (int q = 0; q < 2; q++) {
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(abl, kinds[q]);
            if (!a) continue;
            const cJSON *ctl = cJSON_GetObjectItemCaseSensitive(a, "controls");
            const cJSON *sets[9];
            size_t ns = 0;
            sets[ns++] = cJSON_GetObjectItemCaseSensitive(a, "top");
            for (const cJSON *c = ctl ? ctl->child : NULL; c && ns < 9; c = c->next) sets[ns++] = c;
            for (size_t i = 0; i < ns; i++, rows++) {
                const cJSON *eff = cJSON_GetObjectItemCaseSensitive(sets[i], "effect");
                names[rows][0] = 0;
                const cJSON *cn = cJSON_GetObjectItemCaseSensitive(sets[i], "components");
                for (const cJSON *e = cn ? cn->child : NULL; e; e = e->next) {
                    size_t l = strlen(names[rows]);
                    snprintf(names[rows] + l, sizeof names[rows] - l, "%s%s", l ? " " : "", cJSON_IsString(e) ? e->valuestring : "?");
                }
                cells[rows * 5] = i == 0 ? (q ? "top MLPs" : "top heads") : (q ? "random MLPs" : "random heads");
                cells[rows * 5 + 1] = names[rows];
                cells[rows * 5 + 2] = pl_report_fmt(jnum(eff, "delta_f1"), 3, nb[rows][0], 32);
                cells[rows * 5 + 3] = pl_report_fmt(jnum(eff, "delta_separation"), 3, nb[rows][1], 32);
                cells[rows * 5 + 4] = i == 0 ? (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "confirmed")) ? "confirmed" : "not confirmed") : "";
            }
        }
        snprintf(cap, sizeof cap,
                 "Mean ablation at the answer position on %d test emails%s (F1 before %.3f): change in F1 and in the "
                 "class separation (mean score of phishing minus legitimate emails). Rule: %s (margin %.2f).",
                 (int)jnum(abl, "n"), cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(abl, "same_sample")) ? " (the analysis sample itself)" : " disjoint from the analysis sample",
                 jnum(abl, "f1_before"), jstr(abl, "rule"), jnum(abl, "margin"));
        const char *hdr[] = {"ablated", "components", "F1 change", "separation change", "verdict"};
        snprintf(id, sizeof id, "tab-ablation-%zu", k);
        if (rows) st = pl_report_table(r, id, cap, rows, 5, hdr, cells);
    }
    /* attention of the top heads from the answer position */
    const cJSON *att = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "attention"), "examples");
    if (!st && att && att->child) st = pl_report_group_begin(r);
    size_t ex = 0;
    for (const cJSON *e = att ? att->child : NULL; e && !st; e = e->next, ex++) {
        const cJSON *tk = cJSON_GetObjectItemCaseSensitive(e, "tokens"), *hs = cJSON_GetObjectItemCaseSensitive(e, "heads");
        size_t nk = (size_t)cJSON_GetArraySize(tk), nh = (size_t)cJSON_GetArraySize(hs);
        if (!nk || !nh) continue;
        /* keys shown: each head's 6 largest weights and the last 4 positions */
        unsigned char *keep = calloc(nk, 1);
        double *w = calloc(nh * nk, sizeof *w);
        if (!keep || !w) {
            free(keep), free(w);
            st = pl_error(PL_ERR_NOMEM, "out of memory");
            break;
        }
        size_t hi = 0;
        const char *hl[16];
        for (const cJSON *h = hs->child; h && hi < nh && hi < 16; h = h->next, hi++) {
            hl[hi] = jstr(h, "head");
            size_t q = 0;
            const cJSON *wj = cJSON_GetObjectItemCaseSensitive(h, "weights");
            for (const cJSON *v = wj ? wj->child : NULL; v && q < nk; v = v->next, q++)
                w[hi * nk + q] = cJSON_IsNumber(v) ? v->valuedouble : (double)NAN;
            for (int t = 0; t < 6; t++) {
                size_t best = nk;
                for (size_t p = 0; p < nk; p++)
                    if (!keep[p] && isfinite(w[hi * nk + p]) && (best == nk || w[hi * nk + p] > w[hi * nk + best])) best = p;
                if (best < nk) keep[best] = 1;
            }
        }
        nh = hi;
        for (size_t p = nk > 4 ? nk - 4 : 0; p < nk; p++) keep[p] = 1;
        size_t nc = 0;
        for (size_t p = 0; p < nk; p++) nc += keep[p];
        double *vv = calloc(nh * nc, sizeof *vv);
        char(*kl)[80] = calloc(nc, sizeof *kl);
        const char **klp = calloc(nc, sizeof *klp);
        if (!vv || !kl || !klp) st = pl_error(PL_ERR_NOMEM, "out of memory");
        size_t c = 0, p = 0;
        for (const cJSON *t = tk->child; t && !st; t = t->next, p++) {
            if (!keep[p]) continue;
            snprintf(kl[c], sizeof kl[c], "%zu:%s", p, cJSON_IsString(t) ? t->valuestring : "");
            klp[c] = kl[c];
            for (size_t h = 0; h < nh; h++) vv[h * nc + c] = w[h * nk + p];
            c++;
        }
        if (!st) {
            pl_chart_text ct = {0};
            snprintf(id, sizeof id, "fig-attn-%zu-%zu", k, ex);
            snprintf(title, sizeof title, "Attention from the answer position, %s email %s",
                     jnum(e, "label") == 1 ? "phishing" : "legitimate", jstr(e, "id"));
            snprintf(cap, sizeof cap,
                     "Weights of the heads with the largest DLA class difference over the key tokens (each head's six "
                     "largest and the last four positions; position:token). Score %.3f.",
                     jnum(e, "score"));
            ct.id = id;
            ct.title = title;
            ct.caption = cap;
            ct.y_label = "head";
            st = pl_report_attention(r, &ct, nh, nc, hl, klp, vv);
        }
        free(keep), free(w), free(vv), free(kl), free(klp);
    }
    if (!st && att && att->child) st = pl_report_group_end(r);
    /* patching */
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(j, "patching");
    if (!st && pt) {
        if (strcmp(jstr(pt, "status"), "ran")) {
            snprintf(cap, sizeof cap, "Activation patching not run: %s.", jstr(pt, "reason"));
            st = pl_report_paragraph(r, cap);
        } else {
            const cJSON *sg = cJSON_GetObjectItemCaseSensitive(pt, "segments");
            if (sg) {
                snprintf(id, sizeof id, "fig-patch-seg-%zu", k);
                snprintf(cap, sizeof cap,
                         "Denoising activation patching of resid_pre: the corrupted run has the planted text's tokens "
                         "replaced by filler; writing in the clean residual at one (layer, position) recovers this share "
                         "of the score difference. Per pair the largest recovery in each segment, mean over %d pairs "
                         "(of %d; pairs whose score gap is under %.2f are left out).",
                         (int)jnum(pt, "n_averaged"), (int)jnum(pt, "n_pairs"), jnum(pt, "min_pair_gap"));
                st = grid_heatmap(r, sg, id, "Activation patching by segment", cap, "segment", 1);
            } else {
                snprintf(cap, sizeof cap,
                         "Activation patching ran on %d pairs, but no pair's score gap between the clean and the corrupted "
                         "email reaches %.2f, so no recovery is averaged.",
                         (int)jnum(pt, "n_pairs"), jnum(pt, "min_pair_gap"));
                st = pl_report_paragraph(r, cap);
            }
            const cJSON *exg = cJSON_GetObjectItemCaseSensitive(pt, "example");
            if (!st && exg) {
                snprintf(id, sizeof id, "fig-patch-ex-%zu", k);
                snprintf(cap, sizeof cap,
                         "Recovery per layer and position (position:token) around the planted text and at the last "
                         "prompt positions, for email %s (the pair with the largest score gap).",
                         jstr(pt, "example_id"));
                st = grid_heatmap(r, exg, id, "Activation patching of one pair", cap, "position:token", 0);
            }
        }
    }
    return st;
}

/* Every interp.json with a lens or DLA section. */
static pl_status interp_details(pl_report *r, const pl_diag_inputs *in) {
    pl_status st = PL_OK;
    for (size_t i = 0; i < in->n_interp && !st; i++) {
        cJSON *j = load(in->interp_json[i]);
        if (!j) continue;
        if (cJSON_GetObjectItemCaseSensitive(j, "dla") || cJSON_GetObjectItemCaseSensitive(j, "lens")) st = interp_run(r, j, i);
        cJSON_Delete(j);
    }
    return st;
}

pl_status pl_study_report(const pl_diag_inputs *in, const cJSON *diag, const char *dir) {
    const pl_study_config *c = in->cfg;
    char title[256];
    snprintf(title, sizeof title, "phishlens study: %s", c->name);
    pl_report *r = pl_report_new(title);
    if (!r) return pl_error(PL_ERR_NOMEM, "out of memory");
    pl_status st = pl_report_meta(r, "phishlens", PL_VERSION);
    char buf[64];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)c->seed);
    if (!st) st = pl_report_meta(r, "config", c->path);
    if (!st) st = pl_report_meta(r, "seed", buf);
    for (size_t m = 0; m < c->n_models && !st; m++) {
        char v[600];
        snprintf(v, sizeof v, "%s (%s%s%s)", c->models[m].name, pl_study_family_name(c->models[m].family),
                 c->models[m].path[0] ? ", " : "", c->models[m].path);
        st = pl_report_meta(r, "model", v);
    }
    if (!st) st = pl_report_section(r, "sec-summary", "Summary");
    const cJSON *summary = diag ? cJSON_GetObjectItemCaseSensitive(diag, "summary") : NULL;
    if (!st && !diag) st = pl_report_paragraph(r, "Not run: the diagnosis did not complete.");
    /* the findings cite sections that must exist: add them only when written below */
    if (!st) st = add_findings(r, summary);
    if (!st) st = generalization(r, in);
    if (!st) st = data_section(r, in);
    if (!st) st = explain_section(r, in, diag);
    if (!st) st = pl_report_section(r, "sec-interp", "Interpretability");
    if (!st) {
        int any = 0;
        for (size_t k = 0; k < in->n_interp; k++) any |= in->interp_json[k] != NULL;
        if (!any)
            st = pl_report_paragraph(r, "Not run: probes, logit lens, activation patching, direct logit attribution, "
                                        "ablation and attention maps need the interp stage, which produced no results "
                                        "in this run (see the list of tasks that did not run).");
        else
            st = probe_curves(r, in);
        if (!st && any) st = interp_details(r, in);
    }
    if (!st) {
        const cJSON *xa = diag ? cJSON_GetObjectItemCaseSensitive(diag, "cross_architecture") : NULL;
        st = pl_report_section(r, "sec-arch", "Cross-architecture comparison");
        if (!st && xa && !strcmp(jstr(xa, "status"), "not run")) {
            char p[400];
            snprintf(p, sizeof p, "Not run: %s.", jstr(xa, "reason"));
            st = pl_report_paragraph(r, p);
        } else if (!st && xa) {
            const cJSON *rows = cJSON_GetObjectItemCaseSensitive(xa, "by_training");
            size_t n = (size_t)cJSON_GetArraySize(rows);
            const char **cells = calloc(6 * (n ? n : 1), sizeof *cells);
            char(*b)[32] = calloc(3 * (n ? n : 1), sizeof *b);
            if (!cells || !b) st = pl_error(PL_ERR_NOMEM, "out of memory");
            size_t k = 0;
            for (const cJSON *e = rows ? rows->child : NULL; e && !st; e = e->next, k++) {
                cells[6 * k] = jstr(e, "training");
                cells[6 * k + 1] = jstr(e, "model");
                cells[6 * k + 2] = jstr(e, "family");
                cells[6 * k + 3] = pl_report_fmt(jnum(e, "mean_in"), 3, b[3 * k], 32);
                cells[6 * k + 4] = pl_report_fmt(jnum(e, "mean_out"), 3, b[3 * k + 1], 32);
                cells[6 * k + 5] = pl_report_fmt(jnum(e, "gap"), 3, b[3 * k + 2], 32);
            }
            const char *hdr[] = {"training", "model", "family", "mean F1 in domain", "mean F1 out of domain",
                                 "F1 gap (in - out)"};
            if (!st) st = pl_report_table(r, "tab-arch", "Generalization by architecture", k, 6, hdr, cells);
            free(cells);
            free(b);
        }
    }
    if (!st) st = pl_report_section(r, "sec-not-run", "Stages not run");
    if (!st) {
        if (!in->n_not_run) st = pl_report_paragraph(r, "Every task of the study ran.");
        else {
            /* one row per reason: how many tasks, and the first few */
            size_t n = in->n_not_run;
            const char **cells = calloc(3 * n, sizeof *cells);
            char **own = calloc(2 * n, sizeof *own);
            size_t rows = 0;
            if (!cells || !own) st = pl_error(PL_ERR_NOMEM, "out of memory");
            for (size_t k = 0; k < n && !st; k++) {
                const char *why = strstr(in->not_run[k], " — ");
                why = why ? why + strlen(" — ") : in->not_run[k];
                int seen = 0;
                for (size_t j = 0; j < k && !seen; j++) {
                    const char *w2 = strstr(in->not_run[j], " — ");
                    seen = !strcmp(w2 ? w2 + strlen(" — ") : in->not_run[j], why);
                }
                if (seen) continue;
                pl_buf names = {0};
                size_t count = 0;
                for (size_t j = k; j < n && !st; j++) {
                    const char *w2 = strstr(in->not_run[j], " — ");
                    if (strcmp(w2 ? w2 + strlen(" — ") : in->not_run[j], why)) continue;
                    if (count < 4) {
                        const char *colon = strstr(in->not_run[j], ": not run");
                        size_t l = colon ? (size_t)(colon - in->not_run[j]) : strlen(in->not_run[j]);
                        st = pl_buf_printf(&names, "%s%.*s", count ? ", " : "", (int)l, in->not_run[j]);
                    }
                    count++;
                }
                if (!st && count > 4) st = pl_buf_printf(&names, " and %zu more", count - 4);
                char cnt[32];
                snprintf(cnt, sizeof cnt, "%zu", count);
                own[2 * rows] = pl_study_strdup(cnt);
                own[2 * rows + 1] = names.data ? names.data : pl_study_strdup("");
                cells[3 * rows] = why;
                cells[3 * rows + 1] = own[2 * rows];
                cells[3 * rows + 2] = own[2 * rows + 1];
                rows++;
            }
            const char *hdr[] = {"reason", "tasks", "which"};
            if (!st) st = pl_report_table(r, "tab-not-run", "Tasks that did not run, by reason", rows, 3, hdr, cells);
            for (size_t k = 0; own && k < 2 * rows; k++) free(own[k]);
            free(own);
            free(cells);
        }
    }
    if (!st) st = pl_report_write(r, dir);
    pl_report_free(r);
    return st;
}
