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
                  {"interp", "Where the decision becomes decodable", PL_FINDING_INFO},
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
        if (!st && any)
            st = pl_report_paragraph(r, "Not run: logit lens, activation patching, direct logit attribution, ablation "
                                        "and attention maps (this build captures the residual stream for probes only).");
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
