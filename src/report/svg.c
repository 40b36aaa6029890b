/* svg.c — the report's charts as inline SVG: heatmap (also attention maps),
 * grouped bars with error bars, line chart with bands, signed horizontal
 * bars, stacked bars and quantile ranges.
 *
 * Each chart reads its item from the report tree (see report.c), lays out
 * margins from estimated label widths (0.6 em per character), and writes a
 * <figure> holding one <svg>. Conventions:
 *   - missing values (NaN, null in JSON) are skipped in geometry and shown
 *     as "n/a" where a value would be printed; coordinates are always
 *     finite, with at most two decimals;
 *   - long labels are cut with an ellipsis and carry the full text in a
 *     <title> tooltip; every mark (bar, cell, point) has a <title> too;
 *   - marks carry data-v (their value) and axes data-lo/data-hi plus the
 *     pixel span (data-p0/data-p1) so geometry can be checked mechanically;
 *   - ids inside an SVG (gradients, clip paths) are "<item id>-<name>", so
 *     they are unique in the page.
 * Not here: interactivity (no script), automatic log scales.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FONT 11.0          /* label font size, px */
#define CHAR_W (0.6 * FONT) /* estimated advance per character */
#define GRID "#e6e9ed"
#define AXIS "#57606a"

#define NOMEM_OUT(o) ((o)->st = pl_error(PL_ERR_NOMEM, "report: out of memory"))

/* ---- small helpers ----------------------------------------------------------- */

static double clampd(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Estimated width of s in px at font size px, cut at maxc characters. */
static double text_w(const char *s, size_t maxc, double px) {
    size_t n = utf8_len(s ? s : "");
    if (n > maxc) n = maxc;
    return (double)n * 0.6 * px;
}
static double max_text_w(const char **s, size_t n, size_t maxc, double px) {
    double w = 0;
    for (size_t i = 0; i < n; i++) w = fmax(w, text_w(s[i], maxc, px));
    return w;
}

static void xy_attr(rout *o, const char *name, double v) {
    rout_printf(o, " %s=\"", name);
    rout_coord(o, v);
    rout_puts(o, "\"");
}

/* A number for a data- attribute: round-trips a double, "n/a" when missing. */
static void data_num(rout *o, const char *name, double v) {
    if (isfinite(v)) rout_printf(o, " %s=\"%.17g\"", name, v);
    else rout_printf(o, " %s=\"n/a\"", name);
}

/* <text> with escaping, truncation (+ tooltip) and optional rotation. */
static void label(rout *o, double x, double y, const char *anchor, double size, double rot, const char *s, size_t maxc,
                  const char *extra) {
    rout_puts(o, "<text");
    xy_attr(o, "x", x);
    xy_attr(o, "y", y);
    if (anchor && strcmp(anchor, "start")) rout_printf(o, " text-anchor=\"%s\"", anchor);
    rout_printf(o, " font-size=\"%g\"", size);
    if (rot != 0) {
        rout_printf(o, " transform=\"rotate(%g ", rot);
        rout_coord(o, x);
        rout_puts(o, " ");
        rout_coord(o, y);
        rout_puts(o, ")\"");
    }
    if (extra) rout_puts(o, extra);
    rout_puts(o, ">");
    if (rout_esc_trunc(o, s, maxc)) {
        rout_puts(o, "<title>");
        rout_esc(o, s);
        rout_puts(o, "</title>");
    }
    rout_puts(o, "</text>\n");
}

static void line(rout *o, double x1, double y1, double x2, double y2, const char *stroke, double w, const char *extra) {
    rout_puts(o, "<line");
    xy_attr(o, "x1", x1);
    xy_attr(o, "y1", y1);
    xy_attr(o, "x2", x2);
    xy_attr(o, "y2", y2);
    rout_printf(o, " stroke=\"%s\" stroke-width=\"%g\"", stroke, w);
    if (extra) rout_puts(o, extra);
    rout_puts(o, "/>\n");
}

static void svg_open(rout *o, const cJSON *it, double W, double H) {
    W = ceil(W);
    H = ceil(H);
    rout_puts(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\"");
    xy_attr(o, "width", W);
    xy_attr(o, "height", H);
    rout_puts(o, " viewBox=\"0 0 ");
    rout_coord(o, W);
    rout_puts(o, " ");
    rout_coord(o, H);
    rout_puts(o, "\" role=\"img\" aria-label=\"");
    const char *t = jstr_of(it, "title");
    rout_esc(o, t ? t : jstr_of(it, "type"));
    rout_puts(o, "\">\n");
}

/* Linear (or log10) map from data to pixels. */
typedef struct {
    double d0, d1, p0, p1;
    int log;
} lmap;
static double mapv(const lmap *m, double v) {
    double a = m->d0, b = m->d1;
    if (m->log) v = log10(v);
    if (b == a) return m->p0;
    return m->p0 + (v - a) * (m->p1 - m->p0) / (b - a);
}

/* The axis group's opening tag with its range and pixel span. */
static void axis_open(rout *o, const char *cls, double lo, double hi, double p0, double p1, int log) {
    rout_printf(o, "<g class=\"%s\"", cls);
    data_num(o, "data-lo", lo);
    data_num(o, "data-hi", hi);
    data_num(o, "data-p0", p0);
    data_num(o, "data-p1", p1);
    if (log) rout_puts(o, " data-log=\"1\"");
    rout_puts(o, ">\n");
}

/* Horizontal grid lines and tick labels of a value axis drawn vertically:
 * plot spans x0..x1, the map gives y. */
static void y_axis(rout *o, const axis *a, const lmap *m, double x0, double x1) {
    axis_open(o, "yaxis", a->lo, a->hi, m->p0, m->p1, 0);
    for (int i = 0; i < a->n; i++) {
        double v = a->lo + i * a->step, y = mapv(m, v);
        char buf[64];
        axis_label(a, v, buf, sizeof buf);
        line(o, x0, y, x1, y, fabs(v) < 1e-12 * a->step ? AXIS : GRID, 1, NULL);
        label(o, x0 - 5, y + 3.5, "end", 10, 0, buf, 16, NULL);
    }
    rout_puts(o, "</g>\n");
}

/* Vertical grid lines and tick labels of a value axis drawn horizontally:
 * plot spans y0 (top)..y1 (bottom), the map gives x. */
static void x_axis(rout *o, const axis *a, const lmap *m, double y0, double y1, const char *suffix) {
    axis_open(o, "xaxis", a->lo, a->hi, m->p0, m->p1, 0);
    for (int i = 0; i < a->n; i++) {
        double v = a->lo + i * a->step, x = mapv(m, v);
        char buf[64], lab[80];
        axis_label(a, v, buf, sizeof buf);
        snprintf(lab, sizeof lab, "%s%s", buf, suffix ? suffix : "");
        line(o, x, y0, x, y1, fabs(v) < 1e-12 * a->step ? AXIS : GRID, 1, NULL);
        label(o, x, y1 + 13, "middle", 10, 0, lab, 16, NULL);
    }
    rout_puts(o, "</g>\n");
}

static void axis_titles(rout *o, const cJSON *it, double x_mid, double x_y, double y_mid, double y_x) {
    const char *xl = jstr_of(it, "x_label"), *yl = jstr_of(it, "y_label");
    if (xl) label(o, x_mid, x_y, "middle", FONT, 0, xl, 80, " font-weight=\"bold\"");
    if (yl && y_x > 0) label(o, y_x, y_mid, "middle", FONT, -90, yl, 60, " font-weight=\"bold\"");
}

/* Legend of colored swatches, wrapping at max_w. Returns its height; draws
 * only when draw is set. */
static double legend(rout *o, int draw, double x0, double y0, double max_w, const char **names, size_t n, int lines_style,
                     const int *dashed) {
    double x = x0, y = y0, h = 16;
    for (size_t i = 0; i < n; i++) {
        double w = 18 + text_w(names[i], 32, FONT) + 14;
        if (x > x0 && x + w > x0 + max_w) {
            x = x0;
            y += 16;
            h += 16;
        }
        if (draw) {
            char hex[8];
            rgb_hex(color_cat(i), hex);
            if (lines_style)
                line(o, x, y + 6, x + 14, y + 6, hex, 2.5, dashed && dashed[i] ? " stroke-dasharray=\"4 3\"" : NULL);
            else
                rout_printf(o, "<rect x=\"%g\" y=\"%g\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", x, y, hex);
            label(o, x + 18, y + 10, "start", FONT, 0, names[i], 32, NULL);
        }
        x += w;
    }
    return n ? h + 6 : 0;
}

/* Decode helpers with out-of-memory reporting. */
static int get_nums(rout *o, const cJSON *it, const char *k, double **v, size_t *n) {
    if (jnums_of(it, k, v, n)) {
        NOMEM_OUT(o);
        return -1;
    }
    return 0;
}
static int get_strs(rout *o, const cJSON *it, const char *k, const char ***v, size_t *n) {
    if (jstrs_of(it, k, v, n)) {
        NOMEM_OUT(o);
        return -1;
    }
    return 0;
}
/* A 2-D string array flattened (pointers into the tree). */
static int get_strs2(rout *o, const cJSON *it, const char *k, const char ***v, size_t *n) {
    *v = NULL;
    *n = 0;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(it, k), *row, *x;
    if (!cJSON_IsArray(a)) return 0;
    size_t cnt = 0, i = 0;
    cJSON_ArrayForEach(row, a) cnt += (size_t)cJSON_GetArraySize(row);
    const char **s = malloc((cnt ? cnt : 1) * sizeof *s);
    if (!s) {
        NOMEM_OUT(o);
        return -1;
    }
    cJSON_ArrayForEach(row, a) cJSON_ArrayForEach(x, row) s[i++] = cJSON_IsString(x) ? x->valuestring : "";
    *v = s;
    *n = cnt;
    return 0;
}

static void fmt(double v, int digits, char *buf, size_t n) { pl_report_fmt(v, digits, buf, n); }

/* Tick labels that are tokens: a newline shows as U+21B5, a tab as U+21E5,
 * and a token of spaces only as U+2423, since SVG collapses whitespace.
 * Returns s itself or buf (n >= 16). */
static const char *show_ws(const char *s, char *buf, size_t n) {
    int special = 0, nonspace = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '\n' || *p == '\t' || *p == '\r') special = 1;
        else if (*p != ' ') nonspace = 1;
    }
    if (!special && nonspace) return s;
    if (!nonspace && !special) return "\xE2\x90\xA3";
    size_t j = 0;
    for (const char *p = s; *p; p++) {
        const char *rep = *p == '\n' ? "\xE2\x86\xB5" : *p == '\t' ? "\xE2\x87\xA5" : *p == '\r' ? "" : NULL;
        size_t len = rep ? strlen(rep) : 1;
        /* Stop before a code point that may not fit (4 bytes + NUL). */
        if (((unsigned char)*p & 0xC0) != 0x80 && j + 5 > n) break;
        if (rep) memcpy(buf + j, rep, len);
        else buf[j] = *p;
        j += len;
    }
    buf[j] = 0;
    return buf;
}

/* ---- heatmap ------------------------------------------------------------------ */

void svg_heatmap(rout *o, const cJSON *it) {
    const char **rl = NULL, **cl = NULL, **ct = NULL;
    double *v = NULL, *mark = NULL;
    size_t R = 0, C = 0, nv = 0, nct = 0, nm = 0;
    if (get_strs(o, it, "rows", &rl, &R) || get_strs(o, it, "cols", &cl, &C) || get_nums(o, it, "values", &v, &nv) ||
        get_strs2(o, it, "cell_text", &ct, &nct) || get_nums(o, it, "mark", &mark, &nm))
        goto out;
    if (nv != R * C || R == 0 || C == 0) goto out;
    if (nct != R * C) ct = (free(ct), NULL);
    if (nm != R * C) mark = (free(mark), NULL);
    const char *kind = jstr_of(it, "kind"), *scale = jstr_of(it, "scale");
    int attention = kind && !strcmp(kind, "attention");
    int diverging = scale && !strcmp(scale, "diverging");
    int sv = jint_of(it, "show_values", 1), digits = jint_of(it, "digits", 2);
    double vmin = jnum_of(it, "vmin"), vmax = jnum_of(it, "vmax");
    if (!isfinite(vmin)) vmin = 0;
    if (!(isfinite(vmax) && vmax > vmin)) vmax = vmin + 1;

    /* Cell size: room for the printed value (and CI line), else square cells. */
    double cw, ch;
    if (sv) {
        cw = ct ? 92 : 54;
        ch = ct ? 40 : 28;
        if (C * cw > 760) cw = fmax(760.0 / C, 40);
    } else {
        cw = clampd(fmin(760.0 / C, 560.0 / R), 4, 34);
        ch = cw;
    }
    size_t maxr = attention ? 16 : 36, maxc = attention ? 14 : 24;
    double rl_w = max_text_w(rl, R, maxr, FONT), cl_w = max_text_w(cl, C, maxc, FONT);
    int rot = cl_w > cw - 6;
    size_t kr = ch >= 12 ? 1 : (size_t)ceil(12.0 / ch);
    size_t kc = (rot ? cw >= 12 : cw >= cl_w + 6) ? 1 : (size_t)ceil((rot ? 12.0 : cl_w + 6) / cw);
    double ylab = jstr_of(it, "y_label") ? 20 : 0, xlab = jstr_of(it, "x_label") ? 20 : 0;
    double left = ylab + rl_w + 10, top = 8;
    double gw = C * cw, gh = R * ch;
    double cl_h = rot ? cl_w * 0.72 + 14 : 18;
    double leg_h = clampd(gh, 100, 240);
    double lx = left + gw + 22;
    double W = lx + 16 + 56;
    double body = fmax(gh, leg_h + 22);
    double H = top + body + cl_h + xlab + 6;
    const char *legend_t = jstr_of(it, "legend");
    if (legend_t) W = fmax(W, lx + text_w(legend_t, 20, FONT) + 8);

    fig_open(o, it, attention ? "heatmap attention" : "heatmap");
    svg_open(o, it, W, H);
    const char *id = jstr_of(it, "id");
    char hex[8];
    /* Color legend gradient (bottom = vmin, top = vmax). */
    rout_puts(o, "<defs><linearGradient id=\"");
    rout_esc(o, id);
    rout_puts(o, "-grad\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">");
    for (int k = 0; k <= 10; k++) {
        rgb_hex(diverging ? color_div(k / 10.0) : color_seq(k / 10.0), hex);
        rout_printf(o, "<stop offset=\"%.1f\" stop-color=\"%s\"/>", k / 10.0, hex);
    }
    rout_puts(o, "</linearGradient></defs>\n");

    rout_printf(o, "<g class=\"cells\"");
    data_num(o, "data-vmin", vmin);
    data_num(o, "data-vmax", vmax);
    rout_puts(o, ">\n");
    for (size_t i = 0; i < R; i++) {
        for (size_t j = 0; j < C; j++) {
            double x = left + j * cw, y = top + i * ch, val = v[i * C + j];
            int miss = !isfinite(val);
            rgb c = {0xee, 0xee, 0xee};
            if (!miss) {
                double t = (val - vmin) / (vmax - vmin);
                c = diverging ? color_div(t) : color_seq(t);
            }
            rgb_hex(c, hex);
            rout_puts(o, "<rect class=\"cell\"");
            xy_attr(o, "x", x);
            xy_attr(o, "y", y);
            xy_attr(o, "width", cw);
            xy_attr(o, "height", ch);
            rout_printf(o, " fill=\"%s\"", hex);
            if (!sv || cw < 8) rout_puts(o, " stroke=\"none\"");
            else rout_puts(o, " stroke=\"#ffffff\" stroke-width=\"1\"");
            data_num(o, "data-v", val);
            char num[64];
            fmt(val, digits, num, sizeof num);
            rout_puts(o, "><title>");
            rout_esc(o, rl[i]);
            rout_puts(o, " \xC2\xB7 ");
            rout_esc(o, cl[j]);
            rout_puts(o, ": ");
            rout_puts(o, num);
            if (ct && ct[i * C + j][0]) {
                rout_puts(o, " ");
                rout_esc(o, ct[i * C + j]);
            }
            rout_puts(o, "</title></rect>\n");
            if (sv) {
                const char *tc = miss ? " fill=\"#6e7781\"" : rgb_light(c) ? " fill=\"#111111\"" : " fill=\"#ffffff\"";
                double cy = y + ch / 2;
                if (ct && ct[i * C + j][0] && !miss) {
                    char extra[64];
                    snprintf(extra, sizeof extra, "%s font-weight=\"bold\"", tc);
                    label(o, x + cw / 2, cy - 3, "middle", 12, 0, num, 12, extra);
                    label(o, x + cw / 2, cy + 11, "middle", 9.5, 0, ct[i * C + j], 18, tc);
                } else {
                    label(o, x + cw / 2, cy + 4, "middle", 12, 0, num, 12, tc);
                }
            }
        }
    }
    rout_puts(o, "</g>\n");
    /* Marked (in-domain) cells: an outline drawn over the grid. */
    for (size_t k = 0; mark && k < R * C; k++) {
        if (mark[k] != 1) continue;
        size_t i = k / C, j = k % C;
        rout_puts(o, "<rect class=\"mark\"");
        xy_attr(o, "x", left + j * cw + 1.5);
        xy_attr(o, "y", top + i * ch + 1.5);
        xy_attr(o, "width", cw - 3);
        xy_attr(o, "height", ch - 3);
        rout_puts(o, " fill=\"none\" stroke=\"#111111\" stroke-width=\"2.5\"/>\n");
        /* A white inner line keeps the outline visible on dark cells. */
        rout_puts(o, "<rect class=\"mark-in\"");
        xy_attr(o, "x", left + j * cw + 3.5);
        xy_attr(o, "y", top + i * ch + 3.5);
        xy_attr(o, "width", cw - 7);
        xy_attr(o, "height", ch - 7);
        rout_puts(o, " fill=\"none\" stroke=\"#ffffff\" stroke-width=\"1.2\"/>\n");
    }
    /* Row labels (every kr-th when rows are thin). */
    char wsb[256];
    for (size_t i = 0; i < R; i += kr)
        label(o, left - 6, top + i * ch + ch / 2 + 4, "end", FONT, 0, show_ws(rl[i], wsb, sizeof wsb), maxr, NULL);
    for (size_t j = 0; j < C; j += kc) {
        double x = left + j * cw + cw / 2;
        const char *t = show_ws(cl[j], wsb, sizeof wsb);
        if (rot) label(o, x + 3, top + gh + 10, "end", FONT, -45, t, maxc, NULL);
        else label(o, x, top + gh + 14, "middle", FONT, 0, t, maxc, NULL);
    }
    axis_titles(o, it, left + gw / 2, top + gh + cl_h + 14, top + gh / 2, 12);
    /* The legend bar with ticks inside [vmin, vmax]. */
    double ly0 = top + 20, ly1 = ly0 + leg_h;
    if (legend_t) label(o, lx, top + 10, "start", FONT, 0, legend_t, 20, " font-weight=\"bold\"");
    rout_puts(o, "<rect");
    xy_attr(o, "x", lx);
    xy_attr(o, "y", ly0);
    rout_puts(o, " width=\"14\"");
    xy_attr(o, "height", leg_h);
    rout_puts(o, " fill=\"url(#");
    rout_esc(o, id);
    rout_puts(o, "-grad)\" stroke=\"#8c959f\" stroke-width=\"0.5\"/>\n");
    axis la = axis_nice(vmin, vmax, 5);
    lmap lm = {vmin, vmax, ly1, ly0, 0};
    axis_open(o, "legend", vmin, vmax, ly1, ly0, 0);
    for (int k = 0; k < la.n; k++) {
        double t = la.lo + k * la.step;
        if (t < vmin - 1e-9 * la.step || t > vmax + 1e-9 * la.step) continue;
        double y = mapv(&lm, t);
        char buf[64];
        axis_label(&la, t, buf, sizeof buf);
        line(o, lx + 14, y, lx + 18, y, AXIS, 1, NULL);
        label(o, lx + 21, y + 3.5, "start", 10, 0, buf, 12, NULL);
    }
    rout_puts(o, "</g>\n</svg>\n");
    fig_close(o, it);
out:
    free(rl), free(cl), free(ct), free(v), free(mark);
}

/* ---- grouped bars -------------------------------------------------------------- */

void svg_bars(rout *o, const cJSON *it) {
    const char **gl = NULL, **sl = NULL;
    double *v = NULL, *lo = NULL, *hi = NULL;
    size_t G = 0, S = 0, nv = 0, nl = 0, nh = 0;
    if (get_strs(o, it, "groups", &gl, &G) || get_strs(o, it, "series", &sl, &S) || get_nums(o, it, "values", &v, &nv) ||
        get_nums(o, it, "lo", &lo, &nl) || get_nums(o, it, "hi", &hi, &nh))
        goto out;
    if (!G || !S || nv != G * S) goto out;
    if (nl != nv) lo = (free(lo), NULL);
    if (nh != nv) hi = (free(hi), NULL);
    int digits = jint_of(it, "digits", 2);
    double ref = jnum_of(it, "ref");
    /* The value range always holds 0 (bars start there), every value and
     * every error-bar end. */
    double dlo = 0, dhi = 0;
    for (size_t k = 0; k < nv; k++) {
        double e[3] = {v[k], lo ? lo[k] : MISSING, hi ? hi[k] : MISSING};
        for (int q = 0; q < 3; q++)
            if (isfinite(e[q])) dlo = fmin(dlo, e[q]), dhi = fmax(dhi, e[q]);
    }
    if (isfinite(ref)) dlo = fmin(dlo, ref), dhi = fmax(dhi, ref);
    axis a = axis_nice(dlo, dhi, 6);

    double bw = clampd(560.0 / (double)(G * S), 8, 34), gap = fmax(14, bw * 0.8), gw = S * bw + gap;
    double pw = fmax(G * gw, 220);
    double gl_w = max_text_w(gl, G, 30, FONT);
    int rot = gl_w > gw - 4;
    double ylab = jstr_of(it, "y_label") ? 20 : 0, xlab = jstr_of(it, "x_label") ? 20 : 0;
    double tick_w = 0;
    for (int i = 0; i < a.n; i++) {
        char buf[64];
        axis_label(&a, a.lo + i * a.step, buf, sizeof buf);
        tick_w = fmax(tick_w, text_w(buf, 16, 10));
    }
    double left = ylab + tick_w + 12;
    double leg_h = S > 1 ? legend(o, 0, left, 6, pw, sl, S, 0, NULL) : 0;
    double top = 10 + leg_h, ph = 240;
    double bottom = rot ? fmin(gl_w, 200) * 0.72 + 16 : 20;
    double W = left + pw + 16, H = top + ph + bottom + xlab + 6;
    int labels = G * S <= 24 && bw >= 16;

    fig_open(o, it, "bars");
    svg_open(o, it, W, H);
    if (S > 1) legend(o, 1, left, 6, pw, sl, S, 0, NULL);
    lmap m = {a.lo, a.hi, top + ph, top, 0};
    y_axis(o, &a, &m, left, left + pw);
    double y0 = mapv(&m, 0);
    rout_puts(o, "<g class=\"plot\"");
    data_num(o, "data-y0", y0);
    rout_puts(o, ">\n");
    for (size_t g = 0; g < G; g++) {
        double gx = left + (pw - G * gw) / 2 + g * gw + gap / 2;
        for (size_t s = 0; s < S; s++) {
            size_t k = g * S + s;
            double x = gx + s * bw, val = v[k];
            char hex[8], num[64], l[64], h[64];
            rgb_hex(color_cat(s), hex);
            fmt(val, digits, num, sizeof num);
            if (!isfinite(val)) {
                label(o, x + bw / 2, y0 - 4, "middle", 9, 0, "n/a", 4, " fill=\"#6e7781\"");
                continue;
            }
            double yv = mapv(&m, val);
            rout_puts(o, "<rect class=\"bar\"");
            xy_attr(o, "x", x + 1);
            xy_attr(o, "y", fmin(yv, y0));
            xy_attr(o, "width", bw - 2);
            xy_attr(o, "height", fabs(yv - y0));
            rout_printf(o, " fill=\"%s\"", hex);
            data_num(o, "data-v", val);
            rout_puts(o, "><title>");
            rout_esc(o, gl[g]);
            if (S > 1) {
                rout_puts(o, " \xC2\xB7 ");
                rout_esc(o, sl[s]);
            }
            rout_printf(o, ": %s", num);
            int has_ci = lo && hi && isfinite(lo[k]) && isfinite(hi[k]);
            if (has_ci) rout_printf(o, " [%s, %s]", (fmt(lo[k], digits, l, sizeof l), l), (fmt(hi[k], digits, h, sizeof h), h));
            rout_puts(o, "</title></rect>\n");
            double end = yv;
            if (has_ci) {
                double ya = mapv(&m, lo[k]), yb = mapv(&m, hi[k]), cx = x + bw / 2, cap = fmax(3, bw * 0.22);
                rout_puts(o, "<g class=\"err\"");
                data_num(o, "data-lo", lo[k]);
                data_num(o, "data-hi", hi[k]);
                rout_puts(o, ">\n");
                line(o, cx, ya, cx, yb, "#24292f", 1.2, NULL);
                line(o, cx - cap, ya, cx + cap, ya, "#24292f", 1.2, NULL);
                line(o, cx - cap, yb, cx + cap, yb, "#24292f", 1.2, NULL);
                rout_puts(o, "</g>\n");
                end = val >= 0 ? fmin(ya, yb) : fmax(ya, yb);
            }
            if (labels) label(o, x + bw / 2, val >= 0 ? end - 4 : end + 11, "middle", 9.5, 0, num, 10, NULL);
        }
    }
    rout_puts(o, "</g>\n");
    if (isfinite(ref)) {
        double yr = mapv(&m, ref);
        line(o, left, yr, left + pw, yr, "#24292f", 1, " stroke-dasharray=\"5 4\" class=\"ref\"");
    }
    line(o, left, y0, left + pw, y0, AXIS, 1.2, NULL);
    for (size_t g = 0; g < G; g++) {
        double cx = left + (pw - G * gw) / 2 + g * gw + gw / 2;
        if (rot) label(o, cx + 3, top + ph + 12, "end", FONT, -45, gl[g], 30, NULL);
        else label(o, cx, top + ph + 15, "middle", FONT, 0, gl[g], 30, NULL);
    }
    axis_titles(o, it, left + pw / 2, top + ph + bottom + 14, top + ph / 2, 12);
    rout_puts(o, "</svg>\n");
    fig_close(o, it);
out:
    free(gl), free(sl), free(v), free(lo), free(hi);
}

/* ---- line chart ------------------------------------------------------------------ */

typedef struct {
    const char *name;
    double *x, *y, *lo, *hi;
    size_t n;
    int dashed;
} series;

void svg_lines(rout *o, const cJSON *it) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(it, "series"), *sj;
    size_t S = (size_t)cJSON_GetArraySize(arr), s = 0;
    series *se = calloc(S ? S : 1, sizeof *se);
    const char **names = calloc(S ? S : 1, sizeof *names);
    int *dashed = calloc(S ? S : 1, sizeof *dashed);
    if (!se || !names || !dashed) {
        NOMEM_OUT(o);
        goto out;
    }
    cJSON_ArrayForEach(sj, arr) {
        size_t nx, ny, nl, nh;
        se[s].name = names[s] = jstr_of(sj, "name") ? jstr_of(sj, "name") : "";
        se[s].dashed = dashed[s] = jint_of(sj, "dashed", 0);
        if (get_nums(o, sj, "x", &se[s].x, &nx) || get_nums(o, sj, "y", &se[s].y, &ny) ||
            get_nums(o, sj, "lo", &se[s].lo, &nl) || get_nums(o, sj, "hi", &se[s].hi, &nh))
            goto out;
        se[s].n = nx < ny ? nx : ny;
        if (nl != se[s].n) se[s].lo = (free(se[s].lo), NULL);
        if (nh != se[s].n) se[s].hi = (free(se[s].hi), NULL);
        s++;
    }
    /* Data ranges (points with finite x and y; band ends count for y). */
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (s = 0; s < S; s++)
        for (size_t i = 0; i < se[s].n; i++) {
            if (!isfinite(se[s].x[i])) continue;
            double e[3] = {se[s].y[i], se[s].lo ? se[s].lo[i] : MISSING, se[s].hi ? se[s].hi[i] : MISSING};
            int any = 0;
            for (int q = 0; q < 3; q++)
                if (isfinite(e[q])) ylo = fmin(ylo, e[q]), yhi = fmax(yhi, e[q]), any = 1;
            if (any) xlo = fmin(xlo, se[s].x[i]), xhi = fmax(xhi, se[s].x[i]);
        }
    double hline = jnum_of(it, "hline");
    if (isfinite(hline)) ylo = fmin(ylo, hline), yhi = fmax(yhi, hline);
    if (!(xlo <= xhi)) xlo = 0, xhi = 1;
    if (!(ylo <= yhi)) ylo = 0, yhi = 1;
    double fx0 = jnum_of(it, "x_min"), fx1 = jnum_of(it, "x_max"), fy0 = jnum_of(it, "y_min"), fy1 = jnum_of(it, "y_max");
    if (isfinite(fx0)) xlo = fx0;
    if (isfinite(fx1)) xhi = fx1;
    if (isfinite(fy0)) ylo = fy0;
    if (isfinite(fy1)) yhi = fy1;
    axis ax = axis_nice(xlo, xhi, 7), ay = axis_nice(ylo, yhi, 6);
    if (jint_of(it, "integer_x", 0) && ax.step < 1) {
        ax.lo = floor(xlo);
        ax.hi = fmax(ceil(xhi), ax.lo + 1);
        ax.step = ceil((ax.hi - ax.lo) / 10);
        ax.hi = ax.lo + ceil((ax.hi - ax.lo) / ax.step) * ax.step;
        ax.n = (int)lround((ax.hi - ax.lo) / ax.step) + 1;
        ax.decimals = 0;
    }
    /* Fixed ranges are exact (a reliability diagram is 0..1 on both axes). */
    if (isfinite(fx0) && isfinite(fx1)) ax.lo = fx0, ax.hi = fx1;
    if (isfinite(fy0) && isfinite(fy1)) ay.lo = fy0, ay.hi = fy1;

    double ylab = jstr_of(it, "y_label") ? 20 : 0, xlab = jstr_of(it, "x_label") ? 20 : 0;
    double tick_w = 0;
    for (int i = 0; i < ay.n; i++) {
        char buf[64];
        axis_label(&ay, ay.lo + i * ay.step, buf, sizeof buf);
        tick_w = fmax(tick_w, text_w(buf, 16, 10));
    }
    double left = ylab + tick_w + 12, pw = 540, ph = 280;
    int show_legend = S > 1 || (S == 1 && names[0][0]);
    double leg_h = show_legend ? legend(o, 0, left, 6, pw, names, S, 1, dashed) : 0;
    double top = 10 + leg_h;
    double W = left + pw + 20, H = top + ph + 22 + xlab + 6;
    const char *id = jstr_of(it, "id");

    fig_open(o, it, "lines");
    svg_open(o, it, W, H);
    rout_puts(o, "<defs><clipPath id=\"");
    rout_esc(o, id);
    rout_puts(o, "-clip\"><rect");
    xy_attr(o, "x", left - 4);
    xy_attr(o, "y", top - 4);
    xy_attr(o, "width", pw + 8);
    xy_attr(o, "height", ph + 8);
    rout_puts(o, "/></clipPath></defs>\n");
    if (show_legend) legend(o, 1, left, 6, pw, names, S, 1, dashed);
    lmap mx = {ax.lo, ax.hi, left, left + pw, 0}, my = {ay.lo, ay.hi, top + ph, top, 0};
    y_axis(o, &ay, &my, left, left + pw);
    x_axis(o, &ax, &mx, top, top + ph, NULL);
    rout_puts(o, "<rect");
    xy_attr(o, "x", left);
    xy_attr(o, "y", top);
    xy_attr(o, "width", pw);
    xy_attr(o, "height", ph);
    rout_puts(o, " fill=\"none\" stroke=\"#8c959f\" stroke-width=\"1\"/>\n");
    rout_puts(o, "<g clip-path=\"url(#");
    rout_esc(o, id);
    rout_puts(o, "-clip)\">\n");
    if (jint_of(it, "diagonal", 0)) {
        double a = fmax(ax.lo, ay.lo), b = fmin(ax.hi, ay.hi);
        if (a < b)
            line(o, mapv(&mx, a), mapv(&my, a), mapv(&mx, b), mapv(&my, b), "#8c959f", 1.2,
                 " stroke-dasharray=\"4 4\" class=\"diagonal\"");
    }
    if (isfinite(hline))
        line(o, left, mapv(&my, hline), left + pw, mapv(&my, hline), "#24292f", 1, " stroke-dasharray=\"2 3\" class=\"ref\"");
    for (s = 0; s < S; s++) {
        char hex[8];
        rgb_hex(color_cat(s), hex);
        /* Bands: one polygon per run of points with finite x, lo and hi. */
        if (se[s].lo && se[s].hi) {
            size_t i = 0;
            while (i < se[s].n) {
                size_t j = i;
                while (j < se[s].n && isfinite(se[s].x[j]) && isfinite(se[s].lo[j]) && isfinite(se[s].hi[j])) j++;
                if (j > i + 0) {
                    rout_printf(o, "<polygon class=\"band\" fill=\"%s\" fill-opacity=\"0.18\" stroke=\"none\" points=\"", hex);
                    for (size_t k = i; k < j; k++) {
                        rout_coord(o, mapv(&mx, se[s].x[k]));
                        rout_puts(o, ",");
                        rout_coord(o, mapv(&my, se[s].hi[k]));
                        rout_puts(o, " ");
                    }
                    for (size_t k = j; k-- > i;) {
                        rout_coord(o, mapv(&mx, se[s].x[k]));
                        rout_puts(o, ",");
                        rout_coord(o, mapv(&my, se[s].lo[k]));
                        rout_puts(o, k > i ? " " : "");
                    }
                    rout_puts(o, "\"/>\n");
                }
                i = j + 1;
            }
        }
        /* The line: a missing point starts a new subpath. */
        rout_printf(o, "<path class=\"line\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s d=\"", hex,
                    se[s].dashed ? " stroke-dasharray=\"6 4\"" : "");
        int pen = 0, any = 0;
        for (size_t i = 0; i < se[s].n; i++) {
            if (!isfinite(se[s].x[i]) || !isfinite(se[s].y[i])) {
                pen = 0;
                continue;
            }
            rout_puts(o, any ? (pen ? " L" : " M") : "M");
            rout_coord(o, mapv(&mx, se[s].x[i]));
            rout_puts(o, " ");
            rout_coord(o, mapv(&my, se[s].y[i]));
            pen = any = 1;
        }
        if (!any) rout_puts(o, "M0 0");
        rout_puts(o, "\"/>\n");
        /* Points: always when asked, and for isolated points that no segment shows. */
        int pts = jint_of(it, "points", 0);
        for (size_t i = 0; i < se[s].n; i++) {
            if (!isfinite(se[s].x[i]) || !isfinite(se[s].y[i])) continue;
            int isolated = (i == 0 || !isfinite(se[s].y[i - 1]) || !isfinite(se[s].x[i - 1])) &&
                           (i + 1 == se[s].n || !isfinite(se[s].y[i + 1]) || !isfinite(se[s].x[i + 1]));
            if (!pts && !isolated) continue;
            char a[64], b[64];
            rout_puts(o, "<circle class=\"pt\"");
            xy_attr(o, "cx", mapv(&mx, se[s].x[i]));
            xy_attr(o, "cy", mapv(&my, se[s].y[i]));
            rout_printf(o, " r=\"3\" fill=\"%s\" stroke=\"#ffffff\" stroke-width=\"1\"", hex);
            data_num(o, "data-v", se[s].y[i]);
            rout_puts(o, "><title>");
            rout_esc(o, se[s].name);
            rout_printf(o, " (%s, %s)</title></circle>\n", (fmt(se[s].x[i], 3, a, sizeof a), a), (fmt(se[s].y[i], 3, b, sizeof b), b));
        }
    }
    rout_puts(o, "</g>\n");
    axis_titles(o, it, left + pw / 2, top + ph + 36, top + ph / 2, 12);
    rout_puts(o, "</svg>\n");
    fig_close(o, it);
out:
    for (s = 0; se && s < S; s++) free(se[s].x), free(se[s].y), free(se[s].lo), free(se[s].hi);
    free(se), free(names), free(dashed);
}

/* ---- signed horizontal bars --------------------------------------------------- */

void svg_hbars(rout *o, const cJSON *it) {
    const char **lab = NULL;
    double *v = NULL, *lo = NULL, *hi = NULL;
    size_t n = 0, nv = 0, nl = 0, nh = 0;
    if (get_strs(o, it, "labels", &lab, &n) || get_nums(o, it, "values", &v, &nv) || get_nums(o, it, "lo", &lo, &nl) ||
        get_nums(o, it, "hi", &hi, &nh))
        goto out;
    if (!n || nv != n) goto out;
    if (nl != n) lo = (free(lo), NULL);
    if (nh != n) hi = (free(hi), NULL);
    int digits = jint_of(it, "digits", 3);
    const char *pos = jstr_of(it, "pos_label"), *neg = jstr_of(it, "neg_label");
    double dlo = 0, dhi = 0;
    for (size_t k = 0; k < n; k++) {
        double e[3] = {v[k], lo ? lo[k] : MISSING, hi ? hi[k] : MISSING};
        for (int q = 0; q < 3; q++)
            if (isfinite(e[q])) dlo = fmin(dlo, e[q]), dhi = fmax(dhi, e[q]);
    }
    /* Room for the value printed beyond each bar end. */
    double span = dhi - dlo;
    if (dlo < 0) dlo -= 0.14 * span;
    if (dhi > 0) dhi += 0.14 * span;
    axis a = axis_nice(dlo, dhi, 6);
    double rowh = 22, ph = n * rowh, pw = 440;
    double lw = max_text_w(lab, n, 40, FONT);
    double left = lw + 14, top = 8;
    double xlab = jstr_of(it, "x_label") ? 20 : 0;
    double W = left + pw + 24, H = top + ph + 22 + 18 + xlab + 6;

    fig_open(o, it, "hbars");
    svg_open(o, it, W, H);
    lmap m = {a.lo, a.hi, left, left + pw, 0};
    x_axis(o, &a, &m, top, top + ph, NULL);
    double x0 = mapv(&m, 0);
    rout_puts(o, "<g class=\"plot\"");
    data_num(o, "data-x0", x0);
    rout_puts(o, ">\n");
    for (size_t k = 0; k < n; k++) {
        double y = top + k * rowh, cy = y + rowh / 2, val = v[k];
        char num[64], l[64], h[64];
        fmt(val, digits, num, sizeof num);
        label(o, left - 6, cy + 4, "end", FONT, 0, lab[k], 40, NULL);
        if (!isfinite(val)) {
            label(o, x0 + 4, cy + 4, "start", 10, 0, "n/a", 4, " fill=\"#6e7781\"");
            continue;
        }
        double xv = mapv(&m, val);
        char hex[8];
        rgb_hex(val >= 0 ? color_div(0.85) : color_div(0.15), hex);
        rout_puts(o, "<rect class=\"bar\"");
        xy_attr(o, "x", fmin(xv, x0));
        xy_attr(o, "y", y + 4);
        xy_attr(o, "width", fabs(xv - x0));
        xy_attr(o, "height", rowh - 8);
        rout_printf(o, " fill=\"%s\"", hex);
        data_num(o, "data-v", val);
        rout_puts(o, "><title>");
        rout_esc(o, lab[k]);
        rout_printf(o, ": %s%s", val > 0 ? "+" : "", num);
        int has_ci = lo && hi && isfinite(lo[k]) && isfinite(hi[k]);
        if (has_ci) rout_printf(o, " [%s, %s]", (fmt(lo[k], digits, l, sizeof l), l), (fmt(hi[k], digits, h, sizeof h), h));
        rout_puts(o, "</title></rect>\n");
        double end = xv;
        if (has_ci) {
            double xa = mapv(&m, lo[k]), xb = mapv(&m, hi[k]);
            line(o, xa, cy, xb, cy, "#24292f", 1.2, NULL);
            line(o, xa, cy - 4, xa, cy + 4, "#24292f", 1.2, NULL);
            line(o, xb, cy - 4, xb, cy + 4, "#24292f", 1.2, NULL);
            end = val >= 0 ? fmax(xa, xb) : fmin(xa, xb);
        }
        char vb[80];
        snprintf(vb, sizeof vb, "%s%s", val > 0 ? "+" : "", num);
        label(o, val >= 0 ? end + 4 : end - 4, cy + 4, val >= 0 ? "start" : "end", 10, 0, vb, 12, NULL);
    }
    rout_puts(o, "</g>\n");
    line(o, x0, top, x0, top + ph, AXIS, 1.2, NULL);
    /* Direction legend under the axis. */
    double ly = top + ph + 34;
    char buf[160];
    if (neg) {
        snprintf(buf, sizeof buf, "\xE2\x86\x90 %s", neg);
        label(o, x0 - 8, ly, "end", 10.5, 0, buf, 40, " fill=\"#2166ac\"");
    }
    if (pos) {
        snprintf(buf, sizeof buf, "%s \xE2\x86\x92", pos);
        label(o, x0 + 8, ly, "start", 10.5, 0, buf, 40, " fill=\"#b2182b\"");
    }
    axis_titles(o, it, left + pw / 2, ly + 18, 0, 0);
    rout_puts(o, "</svg>\n");
    fig_close(o, it);
out:
    free(lab), free(v), free(lo), free(hi);
}

/* ---- stacked bars ----------------------------------------------------------------- */

void svg_stacked(rout *o, const cJSON *it) {
    const char **gl = NULL, **pl = NULL;
    double *v = NULL;
    size_t G = 0, P = 0, nv = 0;
    if (get_strs(o, it, "groups", &gl, &G) || get_strs(o, it, "parts", &pl, &P) || get_nums(o, it, "values", &v, &nv))
        goto out;
    if (!G || !P || nv != G * P) goto out;
    int norm = jint_of(it, "normalize", 0);
    double maxt = 0;
    for (size_t g = 0; g < G; g++) {
        double t = 0;
        for (size_t p = 0; p < P; p++)
            if (isfinite(v[g * P + p])) t += v[g * P + p];
        maxt = fmax(maxt, t);
    }
    axis a = norm ? axis_nice(0, 100, 6) : axis_nice(0, maxt > 0 ? maxt : 1, 6);
    /* Profile charts are narrow so that two fit side by side in a group. */
    double rowh = 26, ph = G * rowh, pw = 340;
    double lw = max_text_w(gl, G, 30, FONT), left = lw + 14;
    double leg_h = legend(o, 0, left, 6, pw, pl, P, 0, NULL);
    double top = 10 + leg_h, xlab = jstr_of(it, "x_label") ? 20 : 0;
    double W = left + pw + 48, H = top + ph + 22 + xlab + 6;

    fig_open(o, it, "stacked");
    svg_open(o, it, W, H);
    legend(o, 1, left, 6, pw, pl, P, 0, NULL);
    lmap m = {a.lo, a.hi, left, left + pw, 0};
    x_axis(o, &a, &m, top, top + ph, norm ? "%" : NULL);
    rout_puts(o, "<g class=\"plot\">\n");
    for (size_t g = 0; g < G; g++) {
        double y = top + g * rowh, t = 0;
        for (size_t p = 0; p < P; p++)
            if (isfinite(v[g * P + p])) t += v[g * P + p];
        label(o, left - 6, y + rowh / 2 + 4, "end", FONT, 0, gl[g], 30, NULL);
        double acc = 0;
        for (size_t p = 0; p < P && t > 0; p++) {
            double val = v[g * P + p];
            if (!isfinite(val) || val <= 0) continue;
            double share = 100.0 * val / t;
            double a0 = norm ? 100.0 * acc / t : acc, a1 = norm ? 100.0 * (acc + val) / t : acc + val;
            double x0 = mapv(&m, a0), x1 = mapv(&m, a1);
            acc += val;
            char hex[8], cnt[64], sh[64];
            rgb c = color_cat(p);
            rgb_hex(c, hex);
            fmt(val, val == floor(val) ? 0 : 2, cnt, sizeof cnt);
            fmt(share, 1, sh, sizeof sh);
            rout_puts(o, "<rect class=\"seg\"");
            xy_attr(o, "x", x0);
            xy_attr(o, "y", y + 4);
            xy_attr(o, "width", x1 - x0);
            xy_attr(o, "height", rowh - 8);
            rout_printf(o, " fill=\"%s\" stroke=\"#ffffff\" stroke-width=\"0.5\"", hex);
            data_num(o, "data-v", val);
            rout_puts(o, "><title>");
            rout_esc(o, gl[g]);
            rout_puts(o, " \xC2\xB7 ");
            rout_esc(o, pl[p]);
            rout_printf(o, ": %s (%s%%)</title></rect>\n", cnt, sh);
            char txt[80];
            snprintf(txt, sizeof txt, "%s%s", norm ? sh : cnt, norm ? "%" : "");
            if (x1 - x0 >= text_w(txt, 12, 10) + 6)
                label(o, (x0 + x1) / 2, y + rowh / 2 + 3.5, "middle", 10, 0, txt, 12,
                      rgb_light(c) ? " fill=\"#111111\"" : " fill=\"#ffffff\"");
        }
        if (!norm || t <= 0) {
            char tot[64];
            if (t > 0) fmt(t, t == floor(t) ? 0 : 2, tot, sizeof tot);
            else snprintf(tot, sizeof tot, "n/a");
            label(o, mapv(&m, norm ? 0 : t) + 4, y + rowh / 2 + 4, "start", 10, 0, tot, 14, " fill=\"#57606a\"");
        }
    }
    rout_puts(o, "</g>\n");
    axis_titles(o, it, left + pw / 2, top + ph + 36, 0, 0);
    rout_puts(o, "</svg>\n");
    fig_close(o, it);
out:
    free(gl), free(pl), free(v);
}

/* ---- quantile ranges ------------------------------------------------------------- */

static void si_label(double v, char *buf, size_t n) {
    double a = fabs(v);
    if (a >= 1e6) snprintf(buf, n, "%gM", v / 1e6);
    else if (a >= 1e3) snprintf(buf, n, "%gk", v / 1e3);
    else snprintf(buf, n, "%g", v);
}

void svg_quantiles(rout *o, const cJSON *it) {
    const char **gl = NULL;
    double *q = NULL;
    size_t G = 0, nq = 0;
    if (get_strs(o, it, "groups", &gl, &G) || get_nums(o, it, "q", &q, &nq)) goto out;
    if (!G || nq != G * 5) goto out;
    int logx = jint_of(it, "log_x", 0);
    double dlo = INFINITY, dhi = -INFINITY;
    for (size_t k = 0; k < nq; k++)
        if (isfinite(q[k]) && (!logx || q[k] > 0)) dlo = fmin(dlo, q[k]), dhi = fmax(dhi, q[k]);
    if (!(dlo <= dhi)) dlo = logx ? 1 : 0, dhi = logx ? 10 : 1;
    /* Profile charts are narrow so that two fit side by side in a group. */
    double rowh = 26, ph = G * rowh, pw = 340;
    double lw = max_text_w(gl, G, 30, FONT), left = lw + 14, top = 10;
    double xlab = jstr_of(it, "x_label") ? 20 : 0;
    double W = left + pw + 24, H = top + ph + 22 + 16 + xlab + 6;
    lmap m;
    axis a;

    fig_open(o, it, "quantiles");
    svg_open(o, it, W, H);
    if (logx) {
        /* Decades (plus 2x and 5x when the range is short). */
        int k0 = (int)floor(log10(dlo)), k1 = (int)ceil(log10(dhi));
        if (k1 == k0) k1++;
        m = (lmap){k0, k1, left, left + pw, 1};
        axis_open(o, "xaxis", pow(10, k0), pow(10, k1), left, left + pw, 1);
        for (int k = k0; k <= k1; k++) {
            static const double mult[] = {1, 2, 5};
            for (int j = 0; j < 3; j++) {
                if (j && (k1 - k0 > 2 || k == k1)) break;
                double t = mult[j] * pow(10, k), x = mapv(&m, t);
                char buf[32];
                si_label(t, buf, sizeof buf);
                line(o, x, top, x, top + ph, GRID, 1, NULL);
                label(o, x, top + ph + 13, "middle", 10, 0, buf, 10, NULL);
            }
        }
        rout_puts(o, "</g>\n");
    } else {
        a = axis_nice(fmin(0, dlo), dhi, 6);
        m = (lmap){a.lo, a.hi, left, left + pw, 0};
        x_axis(o, &a, &m, top, top + ph, NULL);
    }
    rout_puts(o, "<g class=\"plot\">\n");
    for (size_t g = 0; g < G; g++) {
        const double *v = q + g * 5;
        double y = top + g * rowh, cy = y + rowh / 2;
        label(o, left - 6, cy + 4, "end", FONT, 0, gl[g], 30, NULL);
        int ok[5];
        for (int k = 0; k < 5; k++) ok[k] = isfinite(v[k]) && (!logx || v[k] > 0);
        char t[5][32];
        for (int k = 0; k < 5; k++) fmt(v[k], v[k] == floor(v[k]) ? 0 : 2, t[k], sizeof t[k]);
        rout_puts(o, "<g class=\"q\"><title>");
        rout_esc(o, gl[g]);
        rout_printf(o, ": p5 %s, p25 %s, median %s, p75 %s, p95 %s</title>\n", t[0], t[1], t[2], t[3], t[4]);
        if (ok[0] && ok[4]) {
            double a0 = mapv(&m, v[0]), a4 = mapv(&m, v[4]);
            line(o, a0, cy, a4, cy, "#57606a", 1.2, NULL);
            line(o, a0, cy - 5, a0, cy + 5, "#57606a", 1.2, NULL);
            line(o, a4, cy - 5, a4, cy + 5, "#57606a", 1.2, NULL);
        }
        if (ok[1] && ok[3]) {
            double a1 = mapv(&m, v[1]), a3 = mapv(&m, v[3]);
            rout_puts(o, "<rect class=\"box\"");
            xy_attr(o, "x", a1);
            xy_attr(o, "y", y + 6);
            xy_attr(o, "width", a3 - a1);
            xy_attr(o, "height", rowh - 12);
            rout_puts(o, " fill=\"#92c5de\" stroke=\"#2166ac\" stroke-width=\"1\"/>\n");
        }
        if (ok[2]) {
            double a2 = mapv(&m, v[2]);
            line(o, a2, y + 4, a2, y + rowh - 4, "#053061", 2.5, " class=\"median\"");
        } else {
            label(o, left + 4, cy + 4, "start", 10, 0, "n/a", 4, " fill=\"#6e7781\"");
        }
        rout_puts(o, "</g>\n");
    }
    rout_puts(o, "</g>\n");
    label(o, left, top + ph + 32, "start", 10, 0, "whiskers p5\xE2\x80\x93p95, box p25\xE2\x80\x93p75, bar median", 80,
          " fill=\"#57606a\"");
    axis_titles(o, it, left + pw / 2, top + ph + 50, 0, 0);
    rout_puts(o, "</svg>\n");
    fig_close(o, it);
out:
    free(gl), free(q);
}
