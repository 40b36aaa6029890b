/* test_report.c — tests of the report module (report.html + report.json).
 *
 * References:
 *   - XML well-formedness by libxml2's parser (the whole page and each SVG
 *     on its own), with invalid UTF-8 and markup in every text field;
 *   - UTF-8 rules of RFC 3629 (overlong forms, surrogates, > U+10FFFF are
 *     invalid) for the cleaner;
 *   - chart geometry against the inputs: bar lengths proportional to the
 *     values on the axis the chart declares, axes that hold every value
 *     and zero, ColorBrewer end colors on the heatmap scale ends;
 *   - a headless Chromium render (PNG + DOM) of a sample report, skipped
 *     when chromium is absent unless CI=true.
 * The sample report is also written to /tmp/pl_report_sample/ for people
 * to look at.
 */
#include <cJSON.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "harness.h"
#include "report/report.h"

/* Coordinates are printed with two decimals: a length can be off by one
 * rounding step at each end. */
#define TOL_PX 0.011
#define MISSING ((double)NAN)

static char tmpdir[256];

/* ---- helpers ------------------------------------------------------------------ */

static char *render(const pl_report *r) {
    pl_buf b = {0};
    pl_status st = pl_report_render_html(r, &b);
    CHECK(st == PL_OK, "render: %s", pl_errmsg());
    if (st) {
        pl_buf_free(&b);
        return NULL;
    }
    return b.data;
}

static xmlDocPtr parse_xml(const char *s, size_t n, const char *what) {
    xmlDocPtr d = xmlReadMemory(s, (int)n, what, "UTF-8", XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!d) {
        const xmlError *e = xmlGetLastError();
        CHECK(0, "%s is not well-formed XML: line %d: %s", what, e ? e->line : 0, e && e->message ? e->message : "?");
    }
    return d;
}

/* Every <svg>...</svg> in html parsed on its own. Returns the count parsed. */
static int check_svgs(const char *html) {
    int n = 0;
    const char *p = html;
    while ((p = strstr(p, "<svg ")) != NULL) {
        const char *e = strstr(p, "</svg>");
        if (!e) {
            CHECK(0, "an <svg> is not closed");
            break;
        }
        e += 6;
        xmlDocPtr d = parse_xml(p, (size_t)(e - p), "svg fragment");
        if (d) {
            xmlNodePtr root = xmlDocGetRootElement(d);
            CHECK(root && !strcmp((const char *)root->name, "svg") && root->ns &&
                      !strcmp((const char *)root->ns->href, "http://www.w3.org/2000/svg"),
                  "svg fragment %d: root is not an svg element in the SVG namespace", n);
            xmlFreeDoc(d);
            n++;
        }
        p = e;
    }
    return n;
}

static xmlXPathObjectPtr xq(xmlDocPtr d, const char *expr) {
    xmlXPathContextPtr c = xmlXPathNewContext(d);
    xmlXPathObjectPtr o = c ? xmlXPathEvalExpression((const xmlChar *)expr, c) : NULL;
    xmlXPathFreeContext(c);
    return o;
}
static int xcount(xmlDocPtr d, const char *expr) {
    xmlXPathObjectPtr o = xq(d, expr);
    int n = o && o->nodesetval ? o->nodesetval->nodeNr : 0;
    xmlXPathFreeObject(o);
    return n;
}
static double attr_num(xmlNodePtr n, const char *name) {
    xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
    if (!v) return MISSING;
    char *end;
    double x = strtod((const char *)v, &end);
    if (end == (char *)v || *end) x = MISSING;
    xmlFree(v);
    return x;
}
/* The first node matching expr (NULL when none). The object stays alive
 * in *keep so the node can be used; free it after. */
static xmlNodePtr xfirst(xmlDocPtr d, const char *expr, xmlXPathObjectPtr *keep) {
    *keep = xq(d, expr);
    if (!*keep || !(*keep)->nodesetval || (*keep)->nodesetval->nodeNr == 0) return NULL;
    return (*keep)->nodesetval->nodeTab[0];
}

/* No geometry attribute anywhere holds "nan" or "inf". */
static void check_no_nan_attrs(xmlDocPtr d) {
    static const char *names[] = {"x", "y", "x1", "x2", "y1", "y2", "cx", "cy", "r", "width", "height", "d",
                                  "points", "transform", "viewBox", "fill", "stroke"};
    int bad = 0, seen = 0;
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        char expr[128];
        snprintf(expr, sizeof expr, "//@%s", names[k]);
        xmlXPathObjectPtr o = xq(d, expr);
        for (int i = 0; o && o->nodesetval && i < o->nodesetval->nodeNr; i++) {
            xmlChar *v = xmlNodeGetContent(o->nodesetval->nodeTab[i]);
            seen++;
            if (v && (xmlStrcasestr(v, (const xmlChar *)"nan") || xmlStrcasestr(v, (const xmlChar *)"inf"))) {
                if (bad++ < 3) printf("  attribute %s=\"%s\"\n", names[k], v);
            }
            xmlFree(v);
        }
        xmlXPathFreeObject(o);
    }
    CHECK(seen > 100 && bad == 0, "%d geometry attributes (of %d) hold nan/inf", bad, seen);
}

/* ---- the sample report --------------------------------------------------------- */

/* A made-up study with every element type; numbers are synthetic. */
static pl_report *build_sample(void) {
    pl_report *r = pl_report_new("phishlens sample report (synthetic numbers)");
    if (!r) return NULL;
    pl_status st = PL_OK;
#define A(x) do { if (!st) st = (x); } while (0)
    A(pl_report_meta(r, "study", "sample-grid (synthetic data for layout checks)"));
    A(pl_report_meta(r, "models", "smollm2-135m, llama-3.2-1b"));
    A(pl_report_meta(r, "test sources", "enron, nazario, spamassassin, synthetic"));
    A(pl_report_meta(r, "seed", "1234"));

    /* Summary with findings. */
    A(pl_report_section(r, "summary", "Summary"));
    A(pl_report_paragraph(r, "This sample shows every element of a phishlens report. All numbers are synthetic; "
                             "they exercise the layout, not a real study."));
    pl_report_sentence s1[] = {
        {"The narrow model trained on enron loses most of its F1 on nazario.", "F1 0.94 -> 0.58 (gap 0.36)", "#matrix"},
        {"Its errors on nazario are mostly missed phishing, not false alarms.", "recall 0.45, precision 0.91", "#f1"},
        {"SHAP puts most of the weight on sender-domain tokens.", "38% of total |attribution|", "#shap"},
    };
    A(pl_report_finding(r, "finding-gap", PL_FINDING_PROBLEM, "Narrow training does not transfer", s1, 3));
    pl_report_sentence s2[] = {
        {"The generalist mixture keeps its F1 within a few points across sources.", "F1 0.88-0.93 out of domain",
         "#matrix"},
        {"Calibration after temperature scaling is close to the diagonal.", "ECE 0.081 -> 0.024", "#calibration"},
    };
    A(pl_report_finding(r, "finding-mix", PL_FINDING_INFO, "The mixture generalizes", s2, 2));
    pl_report_sentence s3[] = {
        {"The probe reads the label at layer 9 already, before the logit lens does.", "probe acc 0.90 at L9",
         "runs/llama/probe.json"},
    };
    A(pl_report_finding(r, "finding-probe", PL_FINDING_WARN, "Linear readout precedes the output", s3, 1));

    /* Data profile: small multiples. */
    A(pl_report_section(r, "data", "Data profile"));
    A(pl_report_group_begin(r));
    static const char *srcs[] = {"enron", "nazario", "spamassassin", "synthetic"};
    static const char *lab[] = {"legitimate", "phishing"};
    double counts[] = {4800, 1200, 300, 2700, 2500, 1400, 1000, 1000};
    pl_stacked sb = pl_stacked_defaults();
    sb.t = (pl_chart_text){"balance", "Label balance per source", "Share of each label; counts in tooltips.",
                           "share of emails", NULL};
    sb.n_groups = 4, sb.n_parts = 2, sb.groups = srcs, sb.parts = lab, sb.values = counts, sb.normalize = 1;
    A(pl_report_stacked(r, &sb));
    double q[] = {180, 620, 1400, 3100, 9800, 90, 350, 900, 2600, 15000, 150, 500, 1200, 2900, 12000, 300, 600, 800, 1100, 1700};
    pl_quantiles qs = pl_quantiles_defaults();
    qs.t = (pl_chart_text){"lengths", "Body length (characters)", "Log scale.", "characters", NULL};
    qs.n_groups = 4, qs.groups = srcs, qs.q = q, qs.log_x = 1;
    A(pl_report_quantiles(r, &qs));
    A(pl_report_group_end(r));

    /* Generalization matrix. */
    A(pl_report_section(r, "generalization", "Generalization"));
    static const char *rows[] = {"smollm2 / zero-shot", "smollm2 / enron", "smollm2 / enron+nazario+spamassassin",
                                 "llama-1b / enron"};
    double f1[] = {0.61, 0.55, 0.58, 0.49, 0.94, 0.58, 0.71, 0.66, 0.93, 0.91, 0.92, 0.88, 0.96, 0.64, 0.77, MISSING};
    char ctb[16][32];
    const char *ct[16];
    unsigned char mk[16] = {0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0, 0, 0};
    for (int k = 0; k < 16; k++) {
        if (isfinite(f1[k])) snprintf(ctb[k], sizeof ctb[k], "[%.2f, %.2f]", f1[k] - 0.04, fmin(1, f1[k] + 0.03));
        else ctb[k][0] = 0;
        ct[k] = ctb[k];
    }
    pl_heatmap hm = pl_heatmap_defaults();
    hm.t = (pl_chart_text){"matrix", "Generalization matrix (F1)",
                           "Rows: model / training set; columns: test source. Outlined cells are in-domain; "
                           "the empty cell was not run.",
                           "test source", "model / training set"};
    hm.n_rows = 4, hm.n_cols = 4, hm.row_labels = rows, hm.col_labels = srcs, hm.values = f1, hm.cell_text = ct;
    hm.mark = mk, hm.vmin = 0, hm.vmax = 1, hm.legend = "F1";
    A(pl_report_heatmap(r, &hm));
    static const char *hdr[] = {"row", "mean F1 in-domain", "mean F1 out-of-domain", "gap"};
    static const char *cells[] = {"smollm2 / zero-shot", "n/a", "0.58", "n/a", "smollm2 / enron", "0.94", "0.65", "0.29",
                                  "smollm2 / enron+nazario+spamassassin", "0.92", "0.88", "0.04", "llama-1b / enron", "0.96",
                                  "0.71", "0.25"};
    A(pl_report_table(r, "gap", "Generalization gap per row.", 4, 4, hdr, cells));
    static const char *models[] = {"zero-shot", "narrow (enron)", "mixture"};
    double fv[] = {0.61, 0.94, 0.93, 0.55, 0.58, 0.91, 0.58, 0.71, 0.92, 0.49, 0.66, 0.88};
    double flo[12], fhi[12];
    for (int k = 0; k < 12; k++) flo[k] = fv[k] - 0.035 - 0.01 * (k % 3), fhi[k] = fmin(1, fv[k] + 0.03);
    pl_bars bb = pl_bars_defaults();
    bb.t = (pl_chart_text){"f1", "F1 by test source", "Error bars: 95% percentile bootstrap intervals (1000 resamples).",
                           "test source", "F1"};
    bb.n_groups = 4, bb.n_series = 3, bb.groups = srcs, bb.series = models, bb.values = fv, bb.lo = flo, bb.hi = fhi;
    A(pl_report_bars(r, &bb));

    /* Calibration. */
    A(pl_report_section(r, "calibration", "Calibration"));
    pl_rel_bin before[PL_ECE_BINS], after[PL_ECE_BINS];
    for (int b = 0; b < PL_ECE_BINS; b++) {
        double mid = (b + 0.5) / PL_ECE_BINS;
        before[b] = (pl_rel_bin){b / 15.0, (b + 1) / 15.0, b == 7 ? 0 : 40 + b, mid, fmin(1, fmax(0, mid + 0.18 * sin(mid * 6.283)))};
        after[b] = (pl_rel_bin){b / 15.0, (b + 1) / 15.0, 40 + b, mid, fmin(1, fmax(0, mid + 0.04 * sin(mid * 6.283)))};
        if (b == 7) before[b].mean_pred = before[b].observed = MISSING;
    }
    const pl_rel_bin *rb[] = {before, after};
    static const char *rn[] = {"before (T = 1)", "after (T = 1.84)"};
    pl_chart_text rt = {"reliability", "Reliability diagram, smollm2 / enron on nazario", NULL, NULL, NULL};
    A(pl_report_reliability(r, &rt, 2, rn, rb));

    /* SHAP. */
    A(pl_report_section(r, "shap", "SHAP attributions"));
    static const char *feat[] = {"sender domain \"paypa1.com\"", "\"verify your account\"", "\"click here\"", "URL count",
                                 "\"Dear customer\"", "\"meeting\"", "\"attached agenda\"", "\"thanks,\""};
    double fvv[] = {0.412, 0.305, 0.221, 0.118, 0.094, -0.135, -0.187, -0.246};
    pl_hbars hb = pl_hbars_defaults();
    hb.t = (pl_chart_text){"shap-global", "Top features (mean signed SHAP over 200 emails)",
                           "Positive values push toward phishing.", "mean SHAP value (logit difference)", NULL};
    hb.n = 8, hb.labels = feat, hb.values = fvv;
    A(pl_report_hbars(r, &hb));
    static const char *tok[] = {"Dear", " customer", ",", "\n\n", "We", " noticed", " unusual", " activity", " on",
                                " your", " account", ".", " Please", " verify", " your", " account", " at", " http://",
                                "paypa1", ".com", "/login", " within", " 24", " hours", ".", "\n\n", "Thanks", ",",
                                " the", " team"};
    double tv[30];
    for (int k = 0; k < 30; k++) tv[k] = 0.3 * sin(k * 1.7) * (k % 4 == 0 ? 1.8 : 0.6);
    tv[13] = 0.55, tv[18] = 0.7, tv[19] = 0.48, tv[26] = -0.4;
    pl_chart_text tt = {"shap-email", "Email 17 (nazario, phishing): token attributions",
                        "Red pushes toward phishing, blue toward legitimate; hover a token for its value.", NULL, NULL};
    A(pl_report_text_heat(r, &tt, 30, tok, tv, MISSING));
    pl_chart_text ft = {"shap-fragment", "Pre-rendered view from the explain module", NULL, NULL, NULL};
    A(pl_report_html(r, &ft, "<p><span style=\"background:#f4a582\">verify</span> your account</p>"));

    /* Interpretability. */
    A(pl_report_section(r, "interp", "Interpretability"));
    A(pl_report_subsection(r, "lens", "Logit lens and probes"));
    double L[13], ll[13], llo[13], lhi[13], pr[13];
    for (int k = 0; k <= 12; k++) {
        L[k] = k;
        ll[k] = 4.0 / (1 + exp(-(k - 8) * 0.9)) - 0.4;
        llo[k] = ll[k] - 0.3 - 0.03 * k;
        lhi[k] = ll[k] + 0.3 + 0.03 * k;
        pr[k] = 0.5 + 0.45 / (1 + exp(-(k - 5) * 1.1));
    }
    pl_series ls[] = {{"logit lens: phishing - legitimate", 13, L, ll, llo, lhi, 0}};
    pl_lines ln = pl_lines_defaults();
    ln.t = (pl_chart_text){"logit-lens", "Logit lens by layer", "Band: interquartile range over 200 emails.", "layer",
                           "logit difference"};
    ln.n_series = 1, ln.series = ls, ln.integer_x = 1, ln.hline = 0, ln.points = 1;
    A(pl_report_lines(r, &ln));
    double pr2[13];
    for (int k = 0; k <= 12; k++) pr2[k] = k == 4 ? MISSING : 0.5 + 0.3 / (1 + exp(-(k - 7) * 0.8));
    pl_series ps[] = {{"probe (in-domain)", 13, L, pr, NULL, NULL, 0}, {"probe (out-of-domain)", 13, L, pr2, NULL, NULL, 1}};
    pl_lines pn = pl_lines_defaults();
    pn.t = (pl_chart_text){"probes", "Linear probe accuracy by layer", "Dashed line: missing layer 4 was not run.",
                           "layer", "accuracy"};
    pn.n_series = 2, pn.series = ps, pn.integer_x = 1, pn.y_min = 0.4, pn.y_max = 1, pn.hline = 0.5;
    A(pl_report_lines(r, &pn));

    A(pl_report_subsection(r, "patching", "Activation patching"));
    static const char *pos[] = {"<s>", "Subject", ":", " Verify", " account", "\n", "Dear", " customer", " click",
                                " here", " now", "Answer", ":"};
    const char *layers[12];
    char lb[12][16];
    double pv[12 * 13];
    for (int l = 0; l < 12; l++) {
        snprintf(lb[l], sizeof lb[l], "L%d", l);
        layers[l] = lb[l];
        for (int p = 0; p < 13; p++) {
            double v = 0;
            if (p == 3 || p == 4) v = 0.9 * exp(-(l - 3) * (l - 3) / 8.0);
            if (p == 8) v = 0.6 * exp(-(l - 5) * (l - 5) / 6.0);
            if (p == 12) v = l / 11.0;
            if (p == 6) v = -0.25 * exp(-(l - 6) * (l - 6) / 4.0);
            pv[l * 13 + p] = v;
        }
    }
    pl_heatmap ph = pl_heatmap_defaults();
    ph.t = (pl_chart_text){"patch-resid", "Residual-stream patching (layer x position)",
                           "Fraction of the logit difference restored by patching clean into corrupted.", "position",
                           "layer"};
    ph.n_rows = 12, ph.n_cols = 13, ph.row_labels = layers, ph.col_labels = pos, ph.values = pv;
    ph.scale = PL_SCALE_DIVERGING, ph.show_values = 0, ph.legend = "restored";
    A(pl_report_heatmap(r, &ph));
    const char *hl[8];
    char hlb[8][16];
    double hv[12 * 8];
    for (int h = 0; h < 8; h++) snprintf(hlb[h], sizeof hlb[h], "H%d", h), hl[h] = hlb[h];
    for (int l = 0; l < 12; l++)
        for (int h = 0; h < 8; h++) hv[l * 8 + h] = 0.05 * sin(l * 3.1 + h * 1.3) + (l == 9 && h == 3 ? 0.6 : 0) - (l == 10 && h == 1 ? 0.35 : 0);
    pl_heatmap hh = pl_heatmap_defaults();
    hh.t = (pl_chart_text){"patch-heads", "Head attribution", NULL, "head", "layer"};
    hh.n_rows = 12, hh.n_cols = 8, hh.row_labels = layers, hh.col_labels = hl, hh.values = hv;
    hh.scale = PL_SCALE_DIVERGING, hh.show_values = 0, hh.legend = "DLA";
    A(pl_report_heatmap(r, &hh));

    A(pl_report_subsection(r, "dla", "Direct logit attribution"));
    static const char *comp[] = {"embed", "L0 attn", "L0 mlp", "L3 attn", "L3 mlp", "L6 attn", "L6 mlp", "L9 attn",
                                 "L9 mlp", "L11 attn", "L11 mlp"};
    double dv[] = {0.05, 0.12, -0.08, 0.35, 0.22, -0.18, 0.41, 1.25, 0.63, -0.42, 0.88};
    pl_bars db = pl_bars_defaults();
    db.t = (pl_chart_text){"dla-bars", "Direct logit attribution per component", "Negative: pushes toward legitimate.",
                           "component", "logit difference"};
    db.n_groups = 11, db.n_series = 1, db.groups = comp, db.values = dv, db.digits = 2;
    A(pl_report_bars(r, &db));

    A(pl_report_subsection(r, "attention", "Attention"));
    static const char *at[] = {"<s>", "Verify", " your", " account", " at", " paypa1", ".com", "Answer", ":"};
    double aw[81];
    for (int i = 0; i < 9; i++) {
        double z = 0;
        for (int j = 0; j <= i; j++) z += exp(-(double)(i - j) * 0.6 + (j == 5 ? 1.5 : 0) + (j == 0 ? 1.0 : 0));
        for (int j = 0; j < 9; j++)
            aw[i * 9 + j] = j <= i ? exp(-(double)(i - j) * 0.6 + (j == 5 ? 1.5 : 0) + (j == 0 ? 1.0 : 0)) / z : MISSING;
    }
    pl_chart_text att = {"attn-9-3", "Attention of head L9.H3", "Causal mask: the empty upper triangle.", NULL, NULL};
    A(pl_report_attention(r, &att, 9, 9, at, at, aw));
#undef A
    if (st) {
        CHECK(0, "building the sample report: %s", pl_errmsg());
        pl_report_free(r);
        return NULL;
    }
    return r;
}

/* ---- tests -------------------------------------------------------------------- */

static void test_utf8_and_fmt(void) {
    /* RFC 3629: C0 AF is an overlong '/', ED A0 80 a surrogate, F4 90 80 80 is
     * above U+10FFFF, FF never appears; 0x01 is a control; EF BF BE is U+FFFE. */
    struct {
        const char *in, *want;
    } cases[] = {
        {"plain", "plain"},
        {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x90\x9F", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x90\x9F"},
        {"a\xC0\xAF" "b", "a\xEF\xBF\xBD\xEF\xBF\xBD" "b"},
        {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"x\xF4\x90\x80\x80y", "x\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDy"},
        {"\xFF", "\xEF\xBF\xBD"},
        {"tab\tnl\nctl\x01", "tab\tnl\nctl\xEF\xBF\xBD"},
        {"\xEF\xBF\xBE", "\xEF\xBF\xBD"},
        {"cut\xE2\x82", "cut\xEF\xBF\xBD\xEF\xBF\xBD"},
    };
    /* The cleaner is internal; it is reached through the JSON mirror. */
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pl_report *r = pl_report_new(cases[i].in);
        cJSON *j = pl_report_to_json(r);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "title");
        CHECK(cJSON_IsString(t) && !strcmp(t->valuestring, cases[i].want), "utf8 case %zu: got \"%s\"", i,
              cJSON_IsString(t) ? t->valuestring : "(none)");
        cJSON_Delete(j);
        pl_report_free(r);
    }
    char b[64];
    CHECK(!strcmp(pl_report_fmt(MISSING, 2, b, sizeof b), "n/a"), "fmt NaN: %s", b);
    CHECK(!strcmp(pl_report_fmt(INFINITY, 2, b, sizeof b), "n/a"), "fmt Inf: %s", b);
    CHECK(!strcmp(pl_report_fmt(-0.001, 2, b, sizeof b), "0.00"), "fmt -0.001: %s", b);
    CHECK(!strcmp(pl_report_fmt(-0.0, 0, b, sizeof b), "0"), "fmt -0: %s", b);
    CHECK(!strcmp(pl_report_fmt(-0.126, 2, b, sizeof b), "-0.13"), "fmt -0.126: %s", b);
    CHECK(!strcmp(pl_report_fmt_ci(0.62, 0.55, 0.69, 2, b, sizeof b), "0.62 [0.55, 0.69]"), "fmt ci: %s", b);
    CHECK(!strcmp(pl_report_fmt_ci(0.62, MISSING, 0.69, 2, b, sizeof b), "0.62"), "fmt ci without lo: %s", b);
}

/* Hostile text everywhere: nothing becomes markup, the page stays XML. */
static void test_escaping(void) {
    const char *evil = "<script>alert(\"x\")</script> & 'q' \xC0\xAF \x01 </svg><!--";
    pl_report *r = pl_report_new(evil);
    CHECK_OK(pl_report_meta(r, evil, evil));
    CHECK_OK(pl_report_section(r, "s1", evil));
    CHECK_OK(pl_report_paragraph(r, evil));
    pl_report_sentence s = {evil, "F1 0.5 <b>", "../x\"y.json"};
    CHECK_OK(pl_report_finding(r, NULL, PL_FINDING_WARN, evil, &s, 1));
    const char *cells[] = {evil, "1.5"};
    const char *hdr[] = {evil, evil};
    CHECK_OK(pl_report_table(r, NULL, evil, 1, 2, hdr, cells));
    const char *labs[] = {evil, "ok"};
    double v[] = {0.5, MISSING, -1, 2};
    const char *ct[] = {evil, evil, "", NULL};
    pl_heatmap h = pl_heatmap_defaults();
    h.t = (pl_chart_text){NULL, evil, evil, evil, evil};
    h.n_rows = 2, h.n_cols = 2, h.row_labels = labs, h.col_labels = labs, h.values = v, h.cell_text = ct, h.legend = evil;
    CHECK_OK(pl_report_heatmap(r, &h));
    pl_bars b = pl_bars_defaults();
    b.t = (pl_chart_text){NULL, evil, evil, evil, evil};
    b.n_groups = 2, b.n_series = 2, b.groups = labs, b.series = labs, b.values = v;
    CHECK_OK(pl_report_bars(r, &b));
    pl_hbars hb = pl_hbars_defaults();
    hb.t = b.t;
    hb.n = 2, hb.labels = labs, hb.values = v, hb.pos_label = evil, hb.neg_label = evil;
    CHECK_OK(pl_report_hbars(r, &hb));
    double xs[] = {0, 1}, ys[] = {1, MISSING};
    pl_series se = {evil, 2, xs, ys, NULL, NULL, 0};
    pl_lines l = pl_lines_defaults();
    l.t = b.t;
    l.n_series = 1, l.series = &se;
    CHECK_OK(pl_report_lines(r, &l));
    double cnt[] = {1, 2, 3, 4};
    pl_stacked st = pl_stacked_defaults();
    st.t = b.t;
    st.n_groups = 2, st.n_parts = 2, st.groups = labs, st.parts = labs, st.values = cnt;
    CHECK_OK(pl_report_stacked(r, &st));
    double q[] = {1, 2, 3, 4, 5, MISSING, 2, 3, MISSING, 9};
    pl_quantiles qq = pl_quantiles_defaults();
    qq.t = b.t;
    qq.n_groups = 2, qq.groups = labs, qq.q = q;
    CHECK_OK(pl_report_quantiles(r, &qq));
    CHECK_OK(pl_report_text_heat(r, &b.t, 2, labs, v, MISSING));
    CHECK_OK(pl_report_attention(r, &b.t, 2, 2, labs, labs, v));

    char *html = render(r);
    if (html) {
        /* The only <script> text must be escaped; no raw one, no raw comment. */
        CHECK(strstr(html, "<script") == NULL, "a raw <script> reached the page");
        CHECK(strstr(html, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;") != NULL,
              "the escaped title is not in the page");
        CHECK(strstr(html, "<!--") == NULL, "a raw comment opener reached the page");
        CHECK(strstr(html, "\xEF\xBF\xBD") != NULL, "invalid UTF-8 was not replaced by U+FFFD");
        xmlDocPtr d = parse_xml(html, strlen(html), "hostile report");
        if (d) {
            CHECK(xcount(d, "//*[local-name()='script']") == 0, "a script element exists");
            check_no_nan_attrs(d);
            /* The NaN cell: data-v n/a and its printed value "n/a". */
            CHECK(xcount(d, "//*[@class='cell'][@data-v='n/a']") == 2, "missing heatmap/attention cells not marked n/a");
            xmlFreeDoc(d);
        }
        int n = check_svgs(html);
        CHECK(n == 8, "svg count %d, want 8 (7 charts + the text legend)", n);
        free(html);
    }
    pl_report_free(r);
}

/* Contract errors leave the report as it was. */
static void test_errors(void) {
    pl_report *r = pl_report_new("errors");
    CHECK(pl_report_paragraph(r, "x") == PL_ERR_INVALID, "paragraph before a section accepted");
    CHECK_OK(pl_report_section(r, "s", "S"));
    CHECK(pl_report_section(r, "s", "again") == PL_ERR_INVALID, "duplicate id accepted");
    CHECK(pl_report_section(r, "1bad", "x") == PL_ERR_INVALID, "id starting with a digit accepted");
    CHECK(pl_report_section(r, "a b", "x") == PL_ERR_INVALID, "id with a space accepted");
    cJSON *before = pl_report_to_json(r);
    pl_report_sentence noev = {"claim", "", "#s"};
    CHECK(pl_report_finding(r, NULL, PL_FINDING_INFO, "h", &noev, 1) == PL_ERR_INVALID, "sentence without evidence accepted");
    CHECK(strstr(pl_errmsg(), "sentence 1 has no evidence") != NULL, "message: %s", pl_errmsg());
    pl_report_sentence nonum = {"claim", "large", "#s"};
    CHECK(pl_report_finding(r, NULL, PL_FINDING_INFO, "h", &nonum, 1) == PL_ERR_INVALID, "evidence without a number accepted");
    pl_report_sentence nocite = {"claim", "0.5", NULL};
    CHECK(pl_report_finding(r, NULL, PL_FINDING_INFO, "h", &nocite, 1) == PL_ERR_INVALID, "sentence without cite accepted");
    double v[] = {1};
    pl_heatmap h = pl_heatmap_defaults();
    h.t.id = "s"; /* taken */
    h.n_rows = h.n_cols = 1, h.values = v;
    CHECK(pl_report_heatmap(r, &h) == PL_ERR_INVALID, "chart with a taken id accepted");
    double neg[] = {1, -2};
    pl_stacked sb = pl_stacked_defaults();
    sb.n_groups = 1, sb.n_parts = 2, sb.values = neg;
    CHECK(pl_report_stacked(r, &sb) == PL_ERR_INVALID, "negative stacked count accepted");
    double q[] = {5, 4, 3, 2, 1};
    pl_quantiles qq = pl_quantiles_defaults();
    qq.n_groups = 1, qq.q = q;
    CHECK(pl_report_quantiles(r, &qq) == PL_ERR_INVALID, "decreasing quantiles accepted");
    cJSON *after = pl_report_to_json(r);
    CHECK(cJSON_Compare(before, after, 1), "failed calls changed the report");
    cJSON_Delete(before);
    cJSON_Delete(after);
    /* A cite to an id that does not exist fails at render time. */
    pl_report_sentence dang = {"claim", "0.5", "#nowhere"};
    CHECK_OK(pl_report_finding(r, NULL, PL_FINDING_INFO, "h", &dang, 1));
    pl_buf b = {0};
    CHECK(pl_report_render_html(r, &b) == PL_ERR_INVALID && strstr(pl_errmsg(), "#nowhere"), "dangling cite rendered: %s",
          pl_errmsg());
    CHECK(b.len == 0, "failed render left %zu bytes", b.len);
    pl_buf_free(&b);
    /* An open group blocks rendering. */
    pl_report *g = pl_report_new("g");
    CHECK_OK(pl_report_section(g, "s", "S"));
    CHECK_OK(pl_report_group_begin(g));
    CHECK(pl_report_group_begin(g) == PL_ERR_INVALID, "nested group accepted");
    CHECK(pl_report_render_html(g, &b) == PL_ERR_INVALID, "render with an open group");
    CHECK_OK(pl_report_group_end(g));
    CHECK_OK(pl_report_render_html(g, &b));
    pl_buf_free(&b);
    pl_report_free(g);
    pl_report_free(r);
}

/* Bars: heights proportional to |value| on the declared axis, baseline at
 * 0, axis covering every value, every error-bar end and zero. */
static void test_bar_geometry(void) {
    pl_report *r = pl_report_new("geometry");
    CHECK_OK(pl_report_section(r, "s", "S"));
    const double v[] = {0.35, -1.2, 2.7, MISSING, 0.05, -0.4};
    const double lo[] = {0.2, -1.5, 2.2, MISSING, -0.1, -0.6}, hi[] = {0.5, -0.9, 3.4, MISSING, 0.2, -0.2};
    pl_bars b = pl_bars_defaults();
    b.t.id = "b";
    b.n_groups = 3, b.n_series = 2, b.values = v, b.lo = lo, b.hi = hi;
    CHECK_OK(pl_report_bars(r, &b));
    const double hv[] = {0.41, -0.25, 0.02, -0.9};
    pl_hbars hb = pl_hbars_defaults();
    hb.t.id = "hb";
    hb.n = 4, hb.values = hv;
    CHECK_OK(pl_report_hbars(r, &hb));
    const double pos[] = {3, 7, 12};
    pl_bars pb = pl_bars_defaults();
    pb.t.id = "pb";
    pb.n_groups = 3, pb.n_series = 1, pb.values = pos;
    CHECK_OK(pl_report_bars(r, &pb));
    char *html = render(r);
    xmlDocPtr d = html ? parse_xml(html, strlen(html), "geometry report") : NULL;
    if (d) {
        const char *figs[] = {"b", "pb"};
        const double *vals[] = {v, pos};
        size_t nvals[] = {6, 3};
        for (int f = 0; f < 2; f++) {
            char expr[160];
            xmlXPathObjectPtr ka, kb;
            snprintf(expr, sizeof expr, "//*[@id='%s']//*[@class='yaxis']", figs[f]);
            xmlNodePtr ax = xfirst(d, expr, &ka);
            CHECK(ax != NULL, "%s: no y axis", figs[f]);
            if (ax) {
                double alo = attr_num(ax, "data-lo"), ahi = attr_num(ax, "data-hi");
                double p0 = attr_num(ax, "data-p0"), p1 = attr_num(ax, "data-p1");
                double px = (p0 - p1) / (ahi - alo); /* pixels per unit (y grows down) */
                double y0 = p0 - (0 - alo) * px;
                CHECK(alo <= 0 && ahi >= 0, "%s: axis [%g, %g] misses 0", figs[f], alo, ahi);
                for (size_t k = 0; k < nvals[f]; k++) {
                    if (!isfinite(vals[f][k])) continue;
                    CHECK(alo <= vals[f][k] && vals[f][k] <= ahi, "%s: value %g outside axis [%g, %g]", figs[f],
                          vals[f][k], alo, ahi);
                    if (f == 0) CHECK(alo <= lo[k] && hi[k] <= ahi, "%s: interval of bar %zu outside axis", figs[f], k);
                }
                snprintf(expr, sizeof expr, "//*[@id='%s']//*[@class='bar']", figs[f]);
                kb = xq(d, expr);
                int nb = kb && kb->nodesetval ? kb->nodesetval->nodeNr : 0;
                int want = 0;
                for (size_t k = 0; k < nvals[f]; k++) want += isfinite(vals[f][k]);
                CHECK(nb == want, "%s: %d bars, want %d", figs[f], nb, want);
                /* Bars appear in input order, skipping missing values. */
                size_t k = 0;
                for (int i = 0; i < nb; i++) {
                    while (!isfinite(vals[f][k])) k++;
                    xmlNodePtr n = kb->nodesetval->nodeTab[i];
                    double y = attr_num(n, "y"), hgt = attr_num(n, "height"), val = vals[f][k];
                    CHECK_NEAR(hgt, fabs(val) * px, TOL_PX);
                    CHECK_NEAR(val >= 0 ? y + hgt : y, y0, TOL_PX);
                    k++;
                }
                xmlXPathFreeObject(kb);
            }
            xmlXPathFreeObject(ka);
        }
        /* hbars: widths proportional on the x axis, sign decides the side and color. */
        xmlXPathObjectPtr ka, kb;
        xmlNodePtr ax = xfirst(d, "//*[@id='hb']//*[@class='xaxis']", &ka);
        CHECK(ax != NULL, "hbars: no x axis");
        if (ax) {
            double alo = attr_num(ax, "data-lo"), ahi = attr_num(ax, "data-hi");
            double p0 = attr_num(ax, "data-p0"), p1 = attr_num(ax, "data-p1"), px = (p1 - p0) / (ahi - alo);
            double x0 = p0 + (0 - alo) * px;
            CHECK(alo <= -0.9 && ahi >= 0.41, "hbars axis [%g, %g] misses a value", alo, ahi);
            kb = xq(d, "//*[@id='hb']//*[@class='bar']");
            int nb = kb && kb->nodesetval ? kb->nodesetval->nodeNr : 0;
            CHECK(nb == 4, "hbars: %d bars", nb);
            for (int i = 0; i < nb && i < 4; i++) {
                xmlNodePtr n = kb->nodesetval->nodeTab[i];
                double x = attr_num(n, "x"), w = attr_num(n, "width");
                CHECK_NEAR(w, fabs(hv[i]) * px, TOL_PX);
                CHECK_NEAR(hv[i] >= 0 ? x : x + w, x0, TOL_PX);
                xmlChar *fill = xmlGetProp(n, (const xmlChar *)"fill");
                /* RdBu: positive (phishing) bars red-ish, negative blue-ish. */
                unsigned rr = 0, gg = 0, bbb = 0;
                if (fill) sscanf((const char *)fill, "#%2x%2x%2x", &rr, &gg, &bbb);
                CHECK(hv[i] >= 0 ? rr > bbb : bbb > rr, "hbar %d value %g has fill %s", i, hv[i], fill ? (char *)fill : "?");
                xmlFree(fill);
            }
            xmlXPathFreeObject(kb);
        }
        xmlXPathFreeObject(ka);
        xmlFreeDoc(d);
    }
    free(html);
    pl_report_free(r);
}

/* Heatmap colors at the scale ends, line points on their axis, matrix and
 * reliability adapters. */
static void test_heatmap_lines_adapters(void) {
    pl_report *r = pl_report_new("charts");
    CHECK_OK(pl_report_section(r, "s", "S"));
    double v[] = {0, 0.5, 1, MISSING, 0.25, 0.75};
    pl_heatmap h = pl_heatmap_defaults();
    h.t.id = "seq";
    const char *longrow[] = {"a training set name that is far too long to fit beside the grid", "short"};
    h.n_rows = 2, h.n_cols = 3, h.values = v, h.vmin = 0, h.vmax = 1, h.row_labels = longrow;
    CHECK_OK(pl_report_heatmap(r, &h));
    double dv[] = {-2, 0, 1};
    pl_heatmap hd = pl_heatmap_defaults();
    hd.t.id = "div";
    hd.n_rows = 1, hd.n_cols = 3, hd.values = dv, hd.scale = PL_SCALE_DIVERGING;
    CHECK_OK(pl_report_heatmap(r, &hd));
    double x[] = {0, 1, 2, 3, 4}, y[] = {-3, 0.5, MISSING, 7, 2};
    pl_series se = {"s", 5, x, y, NULL, NULL, 0};
    pl_lines l = pl_lines_defaults();
    l.t.id = "ln";
    l.n_series = 1, l.series = &se, l.points = 1;
    CHECK_OK(pl_report_lines(r, &l));

    /* A 2 x 3 generalization matrix built by hand. */
    char *cols[] = {"enron", "nazario", "synthetic"};
    pl_matrix_cell c0[3] = {{100, 40, 0.9, {0.85, 0.95, 1000}, 1}, {80, 30, 0.6, {0.5, 0.7, 1000}, 0}, {0, 0, MISSING, {MISSING, MISSING, 0}, 0}};
    pl_matrix_cell c1[3] = {{100, 40, 0.8, {0.7, 0.9, 1000}, 1}, {80, 30, 0.85, {0.8, 0.9, 1000}, 1}, {50, 25, 0.7, {0.6, 0.8, 1000}, 0}};
    pl_matrix_row rows[2];
    memset(rows, 0, sizeof rows);
    rows[0].model = "m", rows[0].train_set = "enron", rows[0].cells = c0, rows[0].mean_in = 0.9, rows[0].mean_out = 0.6;
    rows[0].gap = 0.3, rows[0].loso_col = -1;
    rows[1].model = "m", rows[1].train_set = "enron+nazario", rows[1].cells = c1, rows[1].mean_in = 0.825;
    rows[1].mean_out = 0.7, rows[1].gap = 0.125, rows[1].loso_col = 2;
    pl_matrix m;
    memset(&m, 0, sizeof m);
    m.cols = cols, m.n_cols = 3, m.rows = rows, m.n_rows = 2;
    CHECK_OK(pl_report_matrix(r, "mx", NULL, &m));
    CHECK(pl_report_matrix(r, "mx2", NULL, &m) == PL_OK, "second matrix with another id");
    CHECK(pl_report_matrix(r, "mx", NULL, &m) == PL_ERR_INVALID, "matrix id reused");

    pl_rel_bin bins[PL_ECE_BINS];
    int nonempty = 0;
    for (int b = 0; b < PL_ECE_BINS; b++) {
        int empty = b % 4 == 1;
        bins[b] = (pl_rel_bin){b / 15.0, (b + 1) / 15.0, empty ? 0 : 10, empty ? MISSING : (b + 0.5) / 15, empty ? MISSING : 0.5};
        nonempty += !empty;
    }
    const pl_rel_bin *bp[] = {bins};
    pl_chart_text rt = {"rel", NULL, NULL, NULL, NULL};
    CHECK_OK(pl_report_reliability(r, &rt, 1, NULL, bp));

    char *html = render(r);
    xmlDocPtr d = html ? parse_xml(html, strlen(html), "charts report") : NULL;
    if (d) {
        /* ColorBrewer YlGnBu ends (#ffffd9, #081d58), RdBu middle #f7f7f7. */
        CHECK(xcount(d, "//*[@id='seq']//*[@class='cell'][@data-v='0'][@fill='#ffffd9']") == 1, "vmin cell color");
        CHECK(xcount(d, "//*[@id='seq']//*[@class='cell'][@data-v='1'][@fill='#081d58']") == 1, "vmax cell color");
        CHECK(xcount(d, "//*[@id='seq']//*[@class='cell']") == 6, "seq cell count");
        /* A long label is cut with an ellipsis and keeps its full text as a tooltip. */
        CHECK(xcount(d, "//*[@id='seq']//*[local-name()='text'][starts-with(., 'a training set name')]"
                        "[contains(., '\xE2\x80\xA6')]/*[local-name()='title']"
                        "[.='a training set name that is far too long to fit beside the grid']") == 1,
              "truncated label without its tooltip");
        CHECK(xcount(d, "//*[@id='seq']//*[local-name()='text'][.='short']") == 1, "short label changed");
        CHECK(xcount(d, "//*[@id='div']//*[@class='cell'][@data-v='0'][@fill='#f7f7f7']") == 1, "diverging center color");
        /* Diverging range symmetric about 0: -2 is the full blue end #053061. */
        CHECK(xcount(d, "//*[@id='div']//*[@class='cell'][@data-v='-2'][@fill='#053061']") == 1, "diverging end color");
        xmlXPathObjectPtr k;
        xmlNodePtr cg = xfirst(d, "//*[@id='div']//*[@class='cells']", &k);
        CHECK(cg && attr_num(cg, "data-vmin") == -2 && attr_num(cg, "data-vmax") == 2, "diverging range not [-2, 2]");
        xmlXPathFreeObject(k);
        /* Line points on their axis; the axis holds every y. */
        xmlNodePtr ax = xfirst(d, "//*[@id='ln']//*[@class='yaxis']", &k);
        if (ax) {
            double lo = attr_num(ax, "data-lo"), hi = attr_num(ax, "data-hi"), p0 = attr_num(ax, "data-p0"),
                   p1 = attr_num(ax, "data-p1");
            CHECK(lo <= -3 && hi >= 7, "line axis [%g, %g] misses a value", lo, hi);
            xmlXPathObjectPtr pk = xq(d, "//*[@id='ln']//*[@class='pt']");
            int np = pk && pk->nodesetval ? pk->nodesetval->nodeNr : 0;
            CHECK(np == 4, "%d points, want 4 (one missing)", np);
            for (int i = 0; i < np; i++) {
                xmlNodePtr n = pk->nodesetval->nodeTab[i];
                double val = attr_num(n, "data-v"), cy = attr_num(n, "cy");
                CHECK_NEAR(cy, p0 + (val - lo) * (p1 - p0) / (hi - lo), TOL_PX);
            }
            xmlXPathFreeObject(pk);
            /* The missing point splits the path into two subpaths. */
            xmlNodePtr path = NULL;
            xmlXPathObjectPtr qk;
            path = xfirst(d, "//*[@id='ln']//*[@class='line']", &qk);
            xmlChar *dd = path ? xmlGetProp(path, (const xmlChar *)"d") : NULL;
            int moves = 0;
            for (const xmlChar *p = dd; p && *p; p++) moves += *p == 'M';
            CHECK(moves == 2, "line path has %d subpaths, want 2: %s", moves, dd ? (char *)dd : "");
            xmlFree(dd);
            xmlXPathFreeObject(qk);
        } else {
            CHECK(0, "line chart has no y axis");
        }
        xmlXPathFreeObject(k);
        CHECK(xcount(d, "//*[@id='mx']//*[@class='cell']") == 6, "matrix cells");
        CHECK(xcount(d, "//*[@id='mx']//*[@class='mark']") == 3, "matrix in-domain marks");
        CHECK(xcount(d, "//*[@id='mx']//*[@class='cell'][@data-v='n/a']") == 1, "matrix empty cell");
        CHECK(xcount(d, "//*[@id='mx-gap']//td[.='0.125']") == 1, "gap table value");
        CHECK(xcount(d, "//*[@id='mx-gap']//td[.='synthetic']") == 1, "held-out column in gap table");
        CHECK(xcount(d, "//*[@id='rel']//*[@class='pt']") == nonempty, "reliability: %d points, want %d",
              xcount(d, "//*[@id='rel']//*[@class='pt']"), nonempty);
        CHECK(xcount(d, "//*[@id='rel']//*[@class='diagonal']") == 1, "reliability diagonal");
        check_no_nan_attrs(d);
        xmlFreeDoc(d);
    }
    free(html);
    pl_report_free(r);
}

/* Sample report: well-formed, deterministic, JSON mirror, atomic write. */
static void test_sample(void) {
    pl_report *a = build_sample(), *b = build_sample();
    if (!a || !b) {
        pl_report_free(a), pl_report_free(b);
        return;
    }
    char *ha = render(a), *hb = render(b);
    CHECK(ha && hb && !strcmp(ha, hb), "two builds of the same report differ");
    if (ha) {
        xmlDocPtr d = parse_xml(ha, strlen(ha), "sample report");
        if (d) {
            static const char *ids[] = {"summary", "data", "generalization", "calibration", "shap", "interp", "matrix",
                                        "f1", "reliability", "shap-global", "shap-email", "patch-resid", "attn-9-3",
                                        "finding-gap", "dla-bars", "lens"};
            for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
                char expr[96];
                snprintf(expr, sizeof expr, "//*[@id='%s']", ids[i]);
                CHECK(xcount(d, expr) == 1, "id %s appears %d times", ids[i], xcount(d, expr));
            }
            CHECK(xcount(d, "//*[@id='finding-gap']//li") == 3, "finding sentences");
            CHECK(xcount(d, "//*[@id='finding-gap']//a[@href='#matrix']") == 1, "finding links to #matrix");
            CHECK(xcount(d, "//*[@id='finding-probe']//cite[.='[runs/llama/probe.json]']") == 1, "path cite");
            CHECK(xcount(d, "//*[@id='shap-email']//*[@class='tokens']/span") == 30, "text heat tokens");
            check_no_nan_attrs(d);
            xmlFreeDoc(d);
        }
        int nsvg = check_svgs(ha);
        CHECK(nsvg == 13, "sample svg count %d, want 13 (12 charts + the text legend)", nsvg);
    }
    /* Written files equal the rendering; a second write is byte-identical. */
    char d1[300], d2[300], p[400];
    snprintf(d1, sizeof d1, "%s/w1", tmpdir);
    snprintf(d2, sizeof d2, "%s/w2", tmpdir);
    CHECK_OK(pl_report_write(a, d1));
    CHECK_OK(pl_report_write(b, d2));
    char *f1 = NULL, *f2 = NULL, *j1 = NULL, *j2 = NULL;
    size_t n1 = 0, n2 = 0, m1 = 0, m2 = 0;
    snprintf(p, sizeof p, "%s/report.html", d1);
    pl_read_file(p, &f1, &n1);
    snprintf(p, sizeof p, "%s/report.html", d2);
    pl_read_file(p, &f2, &n2);
    snprintf(p, sizeof p, "%s/report.json", d1);
    pl_read_file(p, &j1, &m1);
    snprintf(p, sizeof p, "%s/report.json", d2);
    pl_read_file(p, &j2, &m2);
    CHECK(f1 && ha && n1 == strlen(ha) && !memcmp(f1, ha, n1), "report.html differs from the rendering");
    CHECK(f1 && f2 && n1 == n2 && !memcmp(f1, f2, n1), "report.html not byte-identical across runs");
    CHECK(j1 && j2 && m1 == m2 && !memcmp(j1, j2, m1), "report.json not byte-identical across runs");
    cJSON *j = j1 ? cJSON_Parse(j1) : NULL;
    CHECK(j != NULL, "report.json does not parse");
    if (j) {
        CHECK(!strcmp(cJSON_GetObjectItem(j, "format")->valuestring, "phishlens-report"), "json format");
        const cJSON *secs = cJSON_GetObjectItem(j, "sections");
        CHECK(cJSON_GetArraySize(secs) == 6, "json sections %d", cJSON_GetArraySize(secs));
        /* The matrix heatmap: the missing cell is null, values as given. */
        const cJSON *gen = cJSON_GetArrayItem(secs, 2), *items = cJSON_GetObjectItem(gen, "items");
        const cJSON *hm = cJSON_GetArrayItem(items, 0);
        CHECK(!strcmp(cJSON_GetObjectItem(hm, "type")->valuestring, "heatmap"), "json heatmap type");
        const cJSON *vals = cJSON_GetObjectItem(hm, "values");
        CHECK(cJSON_IsNull(cJSON_GetArrayItem(cJSON_GetArrayItem(vals, 3), 3)), "NaN cell not null in json");
        CHECK(cJSON_GetArrayItem(cJSON_GetArrayItem(vals, 1), 0)->valuedouble == 0.94, "json cell value");
        cJSON_Delete(j);
    }
    free(f1), free(f2), free(j1), free(j2);
    /* No temporary files left behind. */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp >/dev/null", d1);
    CHECK(system(cmd) != 0, "temporary files left in %s", d1);
    /* Writing under a regular file fails and creates nothing. */
    snprintf(p, sizeof p, "%s/plainfile", tmpdir);
    pl_write_file_atomic(p, "x", 1);
    snprintf(d1, sizeof d1, "%s/plainfile/sub", tmpdir);
    CHECK(pl_report_write(a, d1) != PL_OK, "write under a regular file succeeded");

    /* The sample for people to look at. */
    CHECK_OK(pl_report_write(a, "/tmp/pl_report_sample"));
    free(ha), free(hb);
    pl_report_free(a);
    pl_report_free(b);
}

/* ---- headless Chromium ----------------------------------------------------------- */

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static int paeth(int a, int b, int c) {
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Decode an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes) and
 * count pixels differing from the top-left one and distinct colors (up to
 * 64). Returns 0 on success. */
static int png_stats(const unsigned char *f, size_t n, uint32_t *w, uint32_t *h, double *frac_diff, int *ncolors) {
    if (n < 33 || memcmp(f, "\x89PNG\r\n\x1a\n", 8)) return -1;
    size_t off = 8, idat_len = 0;
    unsigned char *idat = NULL;
    int bpp = 0;
    while (off + 12 <= n) {
        uint32_t len = be32(f + off);
        const unsigned char *type = f + off + 4, *data = f + off + 8;
        if (off + 12 + (size_t)len > n) break;
        if (!memcmp(type, "IHDR", 4)) {
            *w = be32(data), *h = be32(data + 4);
            if (data[8] != 8 || (data[9] != 2 && data[9] != 6) || data[12] != 0) return -2;
            bpp = data[9] == 2 ? 3 : 4;
        } else if (!memcmp(type, "IDAT", 4)) {
            unsigned char *t = realloc(idat, idat_len + len);
            if (!t) return free(idat), -3;
            idat = t;
            memcpy(idat + idat_len, data, len);
            idat_len += len;
        }
        off += 12 + (size_t)len;
    }
    if (!bpp || !idat) return free(idat), -4;
    size_t stride = (size_t)*w * bpp, raw_len = (stride + 1) * *h;
    unsigned char *raw = malloc(raw_len);
    uLongf got = raw_len;
    if (!raw || uncompress(raw, &got, idat, idat_len) != Z_OK || got != raw_len) return free(raw), free(idat), -5;
    free(idat);
    for (uint32_t y = 0; y < *h; y++) {
        unsigned char *row = raw + y * (stride + 1), *cur = row + 1, *prev = y ? raw + (y - 1) * (stride + 1) + 1 : NULL;
        for (size_t i = 0; i < stride; i++) {
            int a = i >= (size_t)bpp ? cur[i - bpp] : 0, b = prev ? prev[i] : 0, c = prev && i >= (size_t)bpp ? prev[i - bpp] : 0;
            switch (row[0]) {
            case 0: break;
            case 1: cur[i] = (unsigned char)(cur[i] + a); break;
            case 2: cur[i] = (unsigned char)(cur[i] + b); break;
            case 3: cur[i] = (unsigned char)(cur[i] + (a + b) / 2); break;
            case 4: cur[i] = (unsigned char)(cur[i] + paeth(a, b, c)); break;
            default: free(raw); return -6;
            }
        }
    }
    uint32_t colors[64];
    int nc = 0;
    size_t diff = 0;
    const unsigned char *p0 = raw + 1;
    for (uint32_t y = 0; y < *h; y++) {
        const unsigned char *cur = raw + y * (stride + 1) + 1;
        for (uint32_t x = 0; x < *w; x++) {
            const unsigned char *px = cur + (size_t)x * bpp;
            if (memcmp(px, p0, 3)) diff++;
            uint32_t c = (uint32_t)px[0] << 16 | (uint32_t)px[1] << 8 | px[2];
            int seen = 0;
            for (int k = 0; k < nc && !seen; k++) seen = colors[k] == c;
            if (!seen && nc < 64) colors[nc++] = c;
        }
    }
    free(raw);
    *frac_diff = (double)diff / ((double)*w * *h);
    *ncolors = nc;
    return 0;
}

static void test_chromium(void) {
    const char *ci = getenv("CI");
    int under_ci = ci && !strcmp(ci, "true");
    if (system("command -v chromium >/dev/null 2>&1") != 0) {
        if (under_ci) CHECK(0, "chromium is not installed (scripts/deps.sh installs it) and CI=true");
        else SKIP("chromium not installed: the render check is skipped (scripts/deps.sh installs it)");
        return;
    }
    pl_report *r = build_sample();
    if (!r) return;
    char dir[300], cmd[2048], png[400], dom[400], log[400];
    snprintf(dir, sizeof dir, "%s/chromium", tmpdir);
    CHECK_OK(pl_report_write(r, dir));
    pl_report_free(r);
    snprintf(png, sizeof png, "%s/shot.png", dir);
    snprintf(dom, sizeof dom, "%s/dom.html", dir);
    snprintf(log, sizeof log, "%s/chromium.log", dir);
    const char *flags = "--headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --disable-extensions "
                        "--disable-dev-shm-usage --mute-audio";
    snprintf(cmd, sizeof cmd,
             "timeout 120 chromium %s --user-data-dir=%s/profile --screenshot=%s --window-size=1200,3000 "
             "file://%s/report.html >%s 2>&1",
             flags, dir, png, dir, log);
    int rc = system(cmd);
    CHECK(rc == 0, "chromium --screenshot exited %d (log: %s)", WIFEXITED(rc) ? WEXITSTATUS(rc) : rc, log);
    char *data = NULL;
    size_t n = 0;
    if (pl_read_file(png, &data, &n) == PL_OK) {
        uint32_t w = 0, h = 0;
        double frac = 0;
        int nc = 0, e = png_stats((unsigned char *)data, n, &w, &h, &frac, &nc);
        CHECK(e == 0, "screenshot %s does not decode (%d)", png, e);
        CHECK(n > 50000, "screenshot is only %zu bytes", n);
        CHECK(w == 1200 && h == 3000, "screenshot is %ux%u", w, h);
        /* A blank or failed page is one color; a report has text and charts. */
        CHECK(frac > 0.05 && nc >= 32, "screenshot looks empty: %.3f of pixels differ, %d colors", frac, nc);
        printf("chromium screenshot: %zu bytes, %ux%u, %.1f%% non-background pixels, >=%d colors\n", n, w, h, 100 * frac, nc);
        free(data);
    } else {
        CHECK(0, "no screenshot at %s", png);
    }
    snprintf(cmd, sizeof cmd,
             "timeout 120 chromium %s --user-data-dir=%s/profile --dump-dom file://%s/report.html >%s 2>>%s", flags, dir,
             dir, dom, log);
    rc = system(cmd);
    CHECK(rc == 0, "chromium --dump-dom exited %d", WIFEXITED(rc) ? WEXITSTATUS(rc) : rc);
    if (pl_read_file(dom, &data, &n) == PL_OK) {
        static const char *ids[] = {"summary", "data", "generalization", "calibration", "shap", "interp", "matrix",
                                    "attn-9-3"};
        for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
            char want[64];
            snprintf(want, sizeof want, "id=\"%s\"", ids[i]);
            CHECK(strstr(data, want) != NULL, "dumped DOM lacks %s", want);
        }
        CHECK(strstr(data, "<svg") != NULL, "dumped DOM has no svg");
        free(data);
    } else {
        CHECK(0, "no DOM dump at %s", dom);
    }
}

int main(void) {
    T_BEGIN();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pl_test_report_%ld", (long)getpid());
    pl_mkdirs(tmpdir);
    xmlInitParser();
    test_utf8_and_fmt();
    test_escaping();
    test_errors();
    test_bar_geometry();
    test_heatmap_lines_adapters();
    test_sample();
    test_chromium();
    xmlCleanupParser();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("could not remove %s\n", tmpdir);
    printf("sample report: /tmp/pl_report_sample/report.html\n");
    return T_END();
}
