/* internal.h — pieces shared by the report module's files (not public).
 *
 * The report is stored as its JSON mirror (a cJSON tree): the builder
 * (report.c) validates and copies the caller's data into items, and the
 * HTML renderer (html.c, svg.c) reads the same items back. So report.json
 * holds exactly what report.html was drawn from.
 */
#ifndef PL_REPORT_INTERNAL_H
#define PL_REPORT_INTERNAL_H

#include <cJSON.h>
#include <math.h>
#include <stdarg.h>

#include "report.h"

/* NAN as a double (NAN itself is a float: -Wdouble-promotion). */
#define MISSING ((double)NAN)

struct pl_report {
    cJSON *root;        /* {"format", "version", "title", "meta", "sections"} */
    cJSON *sections;    /* array in root */
    cJSON *items;       /* items of the current section, NULL before the first */
    cJSON *group;       /* items of the open group, or NULL */
    cJSON *ids;         /* every id used so far (object used as a set) */
    unsigned next_auto; /* counter for automatic ids */
};

/* ---- output sink: a buffer plus a sticky status ------------------------ */
typedef struct {
    pl_buf *b;
    pl_status st;
} rout;

void rout_printf(rout *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rout_puts(rout *o, const char *s);
/* s HTML/XML-escaped (& < > " '), for element text and attribute values. */
void rout_esc(rout *o, const char *s);
/* At most max_chars code points of s, escaped, with "…" when cut; returns
 * 1 when s was cut (so the caller adds a tooltip with the full text). */
int rout_esc_trunc(rout *o, const char *s, size_t max_chars);
/* A coordinate: finite, two decimals at most, trailing zeros dropped. */
void rout_coord(rout *o, double v);

/* ---- text helpers -------------------------------------------------------- */

/* A malloc'd copy of s as valid UTF-8 (see report.h). NULL s gives "". */
char *pl_report_clean_utf8(const char *s);
/* Number of code points in valid UTF-8 s. */
size_t utf8_len(const char *s);

/* ---- reading items back --------------------------------------------------- */
const char *jstr_of(const cJSON *o, const char *key);   /* NULL when absent */
double jnum_of(const cJSON *o, const char *key);        /* NAN when absent/null */
int jint_of(const cJSON *o, const char *key, int dflt);
/* Values of a number array (null -> NAN) into a malloc'd array; *n = count.
 * A 2-D array (array of arrays) is flattened row-major. NULL for an absent
 * key gives NULL with *n = 0; returns -1 on allocation failure. */
int jnums_of(const cJSON *o, const char *key, double **out, size_t *n);
/* String array into a malloc'd array of pointers into the cJSON tree. */
int jstrs_of(const cJSON *o, const char *key, const char ***out, size_t *n);

/* ---- colors --------------------------------------------------------------- */
typedef struct {
    unsigned char r, g, b;
} rgb;
/* t in [0, 1] along the sequential (YlGnBu) or diverging (RdBu reversed:
 * 0 blue, 0.5 white, 1 red) scale. */
rgb color_seq(double t);
rgb color_div(double t);
/* Categorical palette (colorblind-safe), i-th color. */
rgb color_cat(size_t i);
/* "#rrggbb" into buf[8]. */
void rgb_hex(rgb c, char buf[8]);
/* 1 when dark text reads better than white on c. */
int rgb_light(rgb c);

/* ---- nice axes ------------------------------------------------------------ */
typedef struct {
    double lo, hi, step; /* the axis range, a multiple of step at both ends */
    int n;               /* number of ticks: lo, lo + step, ..., hi */
    int decimals;        /* decimals of the tick labels */
} axis;
/* A nice axis covering [lo, hi] (finite; widened when lo == hi) with about
 * `target` ticks. */
axis axis_nice(double lo, double hi, int target);
/* Format an axis tick label (SI suffix k/M for large values). */
void axis_label(const axis *a, double v, char *buf, size_t n);

/* ---- charts (svg.c); each writes one <figure> ----------------------------- */
void svg_heatmap(rout *o, const cJSON *it);
void svg_bars(rout *o, const cJSON *it);
void svg_lines(rout *o, const cJSON *it);
void svg_hbars(rout *o, const cJSON *it);
void svg_stacked(rout *o, const cJSON *it);
void svg_quantiles(rout *o, const cJSON *it);
void html_text_heat(rout *o, const cJSON *it);

/* The figure frame shared by all charts: <figure id> + title, and the
 * closing caption. */
void fig_open(rout *o, const cJSON *it, const char *cls);
void fig_close(rout *o, const cJSON *it);

#endif
