/* report.h — the phishlens study report: one self-contained report.html
 * (inline CSS + inline SVG charts, no script, no network, print-friendly)
 * and the same content as report.json.
 *
 * A report is built in order: a title, optional header metadata, then
 * sections (h2) and subsections (h3) holding paragraphs, findings, tables,
 * charts, highlighted email text and trusted HTML fragments. Everything is
 * copied in; the caller's arrays can be freed right after each call.
 *
 * Contract shared by every call:
 *   - text is UTF-8; invalid sequences, C0 control characters other than
 *     tab/newline and U+FFFE/U+FFFF are replaced by U+FFFD when copied in,
 *     and all text is HTML-escaped on output (a title "<script>" shows as
 *     that text). Only pl_report_html() inserts markup verbatim;
 *   - numbers may be NAN (missing): they print as "n/a", are left out of
 *     chart geometry (never "nan" in an SVG attribute) and are null in JSON;
 *     ±Inf is treated as missing as well;
 *   - ids ([A-Za-z0-9_-], starting with a letter, at most 64 chars) must be
 *     unique in the report; they become HTML ids and JSON "id" fields. Pass
 *     NULL to get an automatic id ("fig-3");
 *   - output is deterministic: the same calls give byte-identical files (no
 *     time stamps, no addresses, fixed number formats);
 *   - a call that fails (bad argument, out of memory) returns a status with
 *     pl_errmsg() saying which argument, and leaves the report as it was.
 *
 * Colors: diverging scales run blue (negative, toward legitimate) - white -
 * red (positive, toward phishing), the SHAP convention; sequential scales run
 * light yellow -> dark blue (ColorBrewer YlGnBu).
 *
 * Not here: computing anything. Metrics, SHAP values and interpretability
 * results come from eval/, explain/ and interp/; the study runner and the
 * diagnosis decide what goes into the report.
 */
#ifndef PL_REPORT_H
#define PL_REPORT_H

#include <stddef.h>

#include "core/core.h"
#include "eval/eval.h"

typedef struct cJSON cJSON;
typedef struct pl_report pl_report;

/* ---- the document ---------------------------------------------------- */

/* A new empty report with this title (NULL = "phishlens report"). Returns
 * NULL when out of memory. */
pl_report *pl_report_new(const char *title);
void pl_report_free(pl_report *r);

/* A key/value line in the header block (study name, models, seed, date...).
 * Kept in call order. */
pl_status pl_report_meta(pl_report *r, const char *key, const char *value);

/* Start a section (h2, listed in the table of contents) or a subsection
 * (h3, inside the current section; an error before any section). Later
 * elements go into it. */
pl_status pl_report_section(pl_report *r, const char *id, const char *title);
pl_status pl_report_subsection(pl_report *r, const char *id, const char *title);

/* A paragraph of plain text (escaped; blank lines do not split it). */
pl_status pl_report_paragraph(pl_report *r, const char *text);

/* ---- findings: every sentence carries its number and its source ------ */

typedef struct {
    const char *text;     /* the claim, one sentence */
    const char *evidence; /* the number(s) it rests on: "F1 0.62 [0.55, 0.69], n = 412" */
    const char *cite;     /* where they come from: "#section-id" (a link, which must
                             exist when the report is written) or an artifact path
                             ("runs/enron/metrics.json") */
} pl_report_sentence;

typedef enum { PL_FINDING_INFO = 0, PL_FINDING_WARN, PL_FINDING_PROBLEM } pl_finding_level;

/* A finding box: a headline and n >= 1 sentences. Every sentence must have
 * non-empty text, evidence and cite (PL_ERR_INVALID naming the sentence
 * otherwise): a claim without its number does not go in the report. */
pl_status pl_report_finding(pl_report *r, const char *id, pl_finding_level level, const char *headline,
                            const pl_report_sentence *s, size_t n);

/* ---- tables ------------------------------------------------------------ */

/* A table of text cells: header[n_cols] (may be NULL), cells[n_rows*n_cols]
 * row-major (NULL cells print empty). Cells that look like numbers are
 * right-aligned. */
pl_status pl_report_table(pl_report *r, const char *id, const char *caption, size_t n_rows, size_t n_cols,
                          const char *const *header, const char *const *cells);

/* Format v with `digits` decimals into buf ("n/a" for NaN/Inf, never "-0").
 * Returns buf. A helper for table cells. */
char *pl_report_fmt(double v, int digits, char *buf, size_t n);
/* "0.62 [0.55, 0.69]" (the interval part left out when lo or hi is NaN). */
char *pl_report_fmt_ci(double v, double lo, double hi, int digits, char *buf, size_t n);

/* ---- charts ------------------------------------------------------------ */

/* Fields common to every chart. title is drawn above the plot; caption is
 * a sentence under it; x_label / y_label are axis titles. All optional. */
typedef struct {
    const char *id, *title, *caption, *x_label, *y_label;
} pl_chart_text;

typedef enum { PL_SCALE_SEQUENTIAL = 0, PL_SCALE_DIVERGING } pl_color_scale;

/* Heatmap of values[n_rows*n_cols] (row-major; NaN = empty cell, drawn
 * hatched grey with "n/a"). Used for the generalization matrix, activation
 * patching (layer x position, tick labels may be tokens) and head maps.
 *   cell_text: optional second line per cell (a CI "[0.55, 0.69]"), or NULL;
 *   mark: optional per-cell flag drawn as a bold outline (in-domain cells);
 *   vmin/vmax: color range, NaN = from the data; a diverging scale is made
 *     symmetric around `center`;
 *   show_values: print the value in each cell (off for big maps);
 *   digits: decimals of values and legend ticks;
 *   legend: title of the color legend ("F1"). */
typedef struct {
    pl_chart_text t;
    size_t n_rows, n_cols;
    const char *const *row_labels, *const *col_labels; /* may be NULL: 0..n-1 */
    const double *values;
    const char *const *cell_text;
    const unsigned char *mark;
    pl_color_scale scale;
    double vmin, vmax, center;
    int show_values, digits;
    const char *legend;
} pl_heatmap;
/* Defaults: sequential, vmin = vmax = NaN, center 0, show_values 1, digits 2. */
pl_heatmap pl_heatmap_defaults(void);
pl_status pl_report_heatmap(pl_report *r, const pl_heatmap *h);

/* Attention weights of one head: weights[n_q*n_k] in [0,1] with token
 * labels for queries (rows) and keys (columns); NaN = masked (drawn empty). */
pl_status pl_report_attention(pl_report *r, const pl_chart_text *t, size_t n_q, size_t n_k,
                              const char *const *q_tokens, const char *const *k_tokens, const double *weights);

/* Grouped vertical bars: values[n_groups*n_series] group-major (value of
 * series s in group g at [g*n_series + s]); lo/hi optional error-bar ends
 * (same shape, NULL = none; NaN = none for that bar). Values may be
 * negative; the y axis always includes 0. ref is a dashed horizontal
 * reference line (NaN = none). */
typedef struct {
    pl_chart_text t;
    size_t n_groups, n_series;
    const char *const *groups, *const *series;
    const double *values, *lo, *hi;
    double ref;
    int digits;
} pl_bars;
pl_bars pl_bars_defaults(void);
pl_status pl_report_bars(pl_report *r, const pl_bars *b);

/* Line chart. Each series has n points (x[i], y[i]); NaN y breaks the line.
 * lo/hi (optional) draw a shaded band. */
typedef struct {
    const char *name;
    size_t n;
    const double *x, *y, *lo, *hi;
    int dashed;
} pl_series;
typedef struct {
    pl_chart_text t;
    size_t n_series;
    const pl_series *series;
    double x_min, x_max, y_min, y_max; /* NaN = from the data */
    int diagonal;                      /* draw y = x (reliability diagrams) */
    double hline;                      /* dashed reference y (NaN = none) */
    int integer_x;                     /* ticks on integers (layers) */
    int points;                        /* mark each point with a dot */
} pl_lines;
pl_lines pl_lines_defaults(void);
pl_status pl_report_lines(pl_report *r, const pl_lines *l);

/* Horizontal signed bars sorted as given (top to bottom): SHAP global
 * features. Positive bars are red (toward `pos_label`, e.g. "phishing"),
 * negative blue (toward `neg_label`). lo/hi optional. */
typedef struct {
    pl_chart_text t;
    size_t n;
    const char *const *labels;
    const double *values, *lo, *hi;
    const char *pos_label, *neg_label;
    int digits;
} pl_hbars;
pl_hbars pl_hbars_defaults(void);
pl_status pl_report_hbars(pl_report *r, const pl_hbars *h);

/* Stacked horizontal bars (data profile: label balance per source):
 * parts[n_groups*n_parts] non-negative counts. normalize = 1 draws shares
 * (each bar 100%) and prints counts in the tooltips. */
typedef struct {
    pl_chart_text t;
    size_t n_groups, n_parts;
    const char *const *groups, *const *parts;
    const double *values;
    int normalize;
} pl_stacked;
pl_stacked pl_stacked_defaults(void);
pl_status pl_report_stacked(pl_report *r, const pl_stacked *s);

/* Quantile ranges per group (data profile: body length by source): q[g*5 +
 * 0..4] = (p5, p25, median, p75, p95), drawn as whisker, box and median
 * tick on a linear or log10 axis (log needs positive values). */
typedef struct {
    pl_chart_text t;
    size_t n_groups;
    const char *const *groups;
    const double *q;
    int log_x;
} pl_quantiles;
pl_quantiles pl_quantiles_defaults(void);
pl_status pl_report_quantiles(pl_report *r, const pl_quantiles *q);

/* ---- email text views --------------------------------------------------- */

/* Tokens (or words) with a background by signed value: red toward
 * phishing (> 0), blue toward legitimate (< 0), white at 0, full color at
 * |v| >= vmax (NaN = max |v|). Text is escaped and whitespace kept; each
 * token's value is in its tooltip. */
pl_status pl_report_text_heat(pl_report *r, const pl_chart_text *t, size_t n, const char *const *tokens,
                              const double *values, double vmax);

/* A pre-built HTML fragment from a trusted producer (the explain module's
 * email view), inserted verbatim inside a figure. The caller vouches for
 * it: it must not come from email content without escaping. */
pl_status pl_report_html(pl_report *r, const pl_chart_text *t, const char *trusted_html);

/* ---- layout ------------------------------------------------------------ */

/* Small multiples: charts added between begin and end sit side by side
 * (wrapping) instead of one per row. Groups do not nest. */
pl_status pl_report_group_begin(pl_report *r);
pl_status pl_report_group_end(pl_report *r);

/* ---- from eval/ structures ----------------------------------------- */

/* The generalization matrix as a heatmap: rows "model / train_set", columns
 * test sources, F1 per cell with its CI as second line, in-domain cells
 * outlined; then a table of mean in-domain, mean out-of-domain and gap per
 * row. */
pl_status pl_report_matrix(pl_report *r, const char *id, const char *title, const pl_matrix *m);

/* A reliability diagram (observed phishing rate vs mean predicted
 * probability per bin, with the diagonal) from PL_ECE_BINS bins; several
 * curves (before/after calibration) may be given with their names. */
pl_status pl_report_reliability(pl_report *r, const pl_chart_text *t, size_t n_curves,
                                const char *const *names, const pl_rel_bin *const *bins);

/* ---- output -------------------------------------------------------------- */

/* The report as HTML into b (appended). Fails (PL_ERR_INVALID) when a
 * finding cites "#id" that is not in the report, or a group is open. */
pl_status pl_report_render_html(const pl_report *r, pl_buf *b);
/* The JSON mirror: {"format": "phishlens-report", "version": 1, "title",
 * "meta": [[k, v]...], "sections": [{"id", "title", "items": [...]}]}
 * where each item has "type" and its data (see docs/report.md). New cJSON
 * object; free with cJSON_Delete. NULL when out of memory. */
cJSON *pl_report_to_json(const pl_report *r);
/* Write <dir>/report.html and <dir>/report.json atomically (dir is
 * created). Either file is complete or absent. */
pl_status pl_report_write(const pl_report *r, const char *dir);

#endif
