/* html.c — renders a report as one self-contained HTML document: inline
 * CSS (light, print-friendly), a header with metadata, a table of contents,
 * sections with paragraphs, findings, tables, charts (svg.c), highlighted
 * email text and trusted fragments.
 *
 * The output is also well-formed XML (void elements self-closed, only
 * numeric character references), so it can be checked with an XML parser;
 * trusted fragments are the one part whose form is the producer's business.
 * No script, no external resource, no time stamp: the same report renders
 * to the same bytes.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- output sink -------------------------------------------------------------- */

void rout_puts(rout *o, const char *s) {
    if (o->st) return;
    o->st = pl_buf_append(o->b, s, strlen(s));
}

void rout_printf(rout *o, const char *fmt, ...) {
    if (o->st) return;
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        o->st = pl_error(PL_ERR_INTERNAL, "report: bad format");
        return;
    }
    if ((size_t)n < sizeof small) {
        o->st = pl_buf_append(o->b, small, (size_t)n);
        return;
    }
    if ((o->st = pl_buf_reserve(o->b, (size_t)n))) return;
    va_start(ap, fmt);
    vsnprintf(o->b->data + o->b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    o->b->len += (size_t)n;
}

/* Escape bytes [s, s+n). */
static void esc_n(rout *o, const char *s, size_t n) {
    size_t start = 0;
    for (size_t i = 0; i < n && !o->st; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        if (!rep) continue;
        if (i > start) o->st = pl_buf_append(o->b, s + start, i - start);
        rout_puts(o, rep);
        start = i + 1;
    }
    if (n > start && !o->st) o->st = pl_buf_append(o->b, s + start, n - start);
}

void rout_esc(rout *o, const char *s) { esc_n(o, s ? s : "", s ? strlen(s) : 0); }

int rout_esc_trunc(rout *o, const char *s, size_t max_chars) {
    if (!s) s = "";
    if (max_chars < 2) max_chars = 2;
    size_t cps = 0, i = 0;
    /* Byte offset after max_chars - 1 code points (room for the ellipsis). */
    size_t cut = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (cps == max_chars - 1) cut = i;
            cps++;
        }
    }
    if (cps <= max_chars) {
        esc_n(o, s, i);
        return 0;
    }
    esc_n(o, s, cut);
    rout_puts(o, "\xE2\x80\xA6");
    return 1;
}

void rout_coord(rout *o, double v) {
    if (!isfinite(v)) v = 0; /* never "nan" in an attribute; callers skip missing values */
    char buf[64];
    snprintf(buf, sizeof buf, "%.2f", v);
    /* Drop trailing zeros ("12.50" -> "12.5", "3.00" -> "3"). */
    char *dot = strchr(buf, '.');
    if (dot) {
        char *e = buf + strlen(buf) - 1;
        while (e > dot && *e == '0') *e-- = 0;
        if (e == dot) *e = 0;
    }
    if (strcmp(buf, "-0") == 0) strcpy(buf, "0");
    rout_puts(o, buf);
}

/* ---- colors ------------------------------------------------------------------- */

static const rgb SEQ[] = {{0xff, 0xff, 0xd9}, {0xed, 0xf8, 0xb1}, {0xc7, 0xe9, 0xb4}, {0x7f, 0xcd, 0xbb}, {0x41, 0xb6, 0xc4},
                          {0x1d, 0x91, 0xc0}, {0x22, 0x5e, 0xa8}, {0x25, 0x34, 0x94}, {0x08, 0x1d, 0x58}};
/* RdBu, from blue (legitimate, negative) through white to red (phishing). */
static const rgb DIV[] = {{0x05, 0x30, 0x61}, {0x21, 0x66, 0xac}, {0x43, 0x93, 0xc3}, {0x92, 0xc5, 0xde},
                          {0xd1, 0xe5, 0xf0}, {0xf7, 0xf7, 0xf7}, {0xfd, 0xdb, 0xc7}, {0xf4, 0xa5, 0x82},
                          {0xd6, 0x60, 0x4d}, {0xb2, 0x18, 0x2b}, {0x67, 0x00, 0x1f}};
/* Paul Tol's "bright" qualitative scheme (colorblind-safe). */
static const rgb CAT[] = {{0x44, 0x77, 0xaa}, {0xee, 0x66, 0x77}, {0x22, 0x88, 0x33}, {0xcc, 0xbb, 0x44},
                          {0x66, 0xcc, 0xee}, {0xaa, 0x33, 0x77}, {0xbb, 0xbb, 0xbb}};

static rgb ramp(const rgb *stops, size_t n, double t) {
    if (!isfinite(t)) t = 0;
    if (t < 0) t = 0;
    if (t > 1) t = 1;
    double x = t * (double)(n - 1);
    size_t i = (size_t)x;
    if (i >= n - 1) return stops[n - 1];
    double f = x - (double)i;
    rgb a = stops[i], b = stops[i + 1], c;
    c.r = (unsigned char)lround(a.r + (b.r - a.r) * f);
    c.g = (unsigned char)lround(a.g + (b.g - a.g) * f);
    c.b = (unsigned char)lround(a.b + (b.b - a.b) * f);
    return c;
}
rgb color_seq(double t) { return ramp(SEQ, sizeof SEQ / sizeof *SEQ, t); }
rgb color_div(double t) { return ramp(DIV, sizeof DIV / sizeof *DIV, t); }
rgb color_cat(size_t i) { return CAT[i % (sizeof CAT / sizeof *CAT)]; }
void rgb_hex(rgb c, char buf[8]) { snprintf(buf, 8, "#%02x%02x%02x", c.r, c.g, c.b); }
int rgb_light(rgb c) {
    /* Relative luminance (sRGB approximated by gamma 2.2). */
    double l = 0.2126 * pow(c.r / 255.0, 2.2) + 0.7152 * pow(c.g / 255.0, 2.2) + 0.0722 * pow(c.b / 255.0, 2.2);
    return l > 0.22;
}

/* ---- axes ----------------------------------------------------------------------- */

axis axis_nice(double lo, double hi, int target) {
    axis a;
    if (!isfinite(lo) || !isfinite(hi)) lo = 0, hi = 1;
    if (lo > hi) { double t = lo; lo = hi; hi = t; }
    if (hi - lo < 1e-12 * fmax(1.0, fmax(fabs(lo), fabs(hi)))) {
        double w = lo == 0 ? 1 : fabs(lo) * 0.1;
        lo -= w;
        hi += w;
        if (lo < 0 && lo + w >= 0) lo = 0; /* keep a zero baseline */
    }
    if (target < 2) target = 2;
    double raw = (hi - lo) / (target - 1);
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag, nice;
    int quarter = 0;
    if (f <= 1) nice = 1;
    else if (f <= 2) nice = 2;
    else if (f <= 2.5) nice = 2.5, quarter = 1;
    else if (f <= 5) nice = 5;
    else nice = 10;
    a.step = nice * mag;
    a.lo = floor(lo / a.step + 1e-9) * a.step;
    a.hi = ceil(hi / a.step - 1e-9) * a.step;
    a.n = (int)lround((a.hi - a.lo) / a.step) + 1;
    int d = -(int)floor(log10(a.step) + 1e-9) + quarter;
    a.decimals = d < 0 ? 0 : d;
    return a;
}

void axis_label(const axis *a, double v, char *buf, size_t n) {
    double m = fmax(fabs(a->lo), fabs(a->hi)), div = 1;
    const char *suf = "";
    if (m >= 1e7) div = 1e6, suf = "M";
    else if (m >= 1e4) div = 1e3, suf = "k";
    int d = a->decimals;
    if (div > 1) {
        d = -(int)floor(log10(a->step / div) + 1e-9);
        if (d < 0) d = 0;
    }
    char num[64];
    pl_report_fmt(v / div, d, num, sizeof num);
    snprintf(buf, n, "%s%s", num, suf);
}

/* ---- CSS ------------------------------------------------------------------------- */

static const char CSS[] =
    ":root{--fg:#1f2328;--muted:#57606a;--line:#d0d7de;--bg:#ffffff;--soft:#f6f8fa}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 \"DejaVu Sans\",\"Helvetica Neue\",Arial,"
    "sans-serif}\n"
    ".page{max-width:1120px;margin:0 auto;padding:24px 32px 48px}\n"
    "header.top{border-bottom:2px solid var(--fg);margin-bottom:16px;padding-bottom:8px}\n"
    "h1{font-size:26px;margin:0 0 8px}\n"
    "h2{font-size:20px;margin:32px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}\n"
    "h3{font-size:16px;margin:22px 0 6px}\n"
    "dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0;font-size:13px}\n"
    "dl.meta dt{color:var(--muted)}dl.meta dd{margin:0;overflow-wrap:anywhere}\n"
    "nav.toc{background:var(--soft);border:1px solid var(--line);border-radius:6px;padding:8px 16px;font-size:14px}\n"
    "nav.toc ol{margin:4px 0;padding-left:22px;columns:2}\n"
    "a{color:#0550ae}\n"
    "p{margin:8px 0;max-width:80ch}\n"
    ".fig{margin:14px 0;padding:10px 12px;border:1px solid var(--line);border-radius:6px;background:#fff;"
    "break-inside:avoid;overflow-x:auto}\n"
    ".ftitle{font-weight:bold;font-size:14px;margin-bottom:4px}\n"
    "figure{margin:0}\n"
    "figcaption{font-size:13px;color:var(--muted);margin-top:4px;max-width:90ch}\n"
    "svg.chart{display:block;max-width:100%;height:auto}\n"
    "svg.chart text{font-family:\"DejaVu Sans\",Arial,sans-serif}\n"
    ".group{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}\n"
    ".group .fig{margin:0;flex:0 1 auto}\n"
    "table.tbl{border-collapse:collapse;margin:12px 0;font-size:13px}\n"
    "table.tbl caption{caption-side:bottom;text-align:left;color:var(--muted);padding-top:4px}\n"
    "table.tbl th,table.tbl td{border:1px solid var(--line);padding:4px 8px;vertical-align:top}\n"
    "table.tbl th{background:var(--soft);text-align:left}\n"
    "table.tbl td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n"
    "table.tbl tbody tr:nth-child(even){background:#fbfcfd}\n"
    ".finding{margin:14px 0;padding:8px 14px;border-left:5px solid #0969da;background:#f3f8ff;border-radius:4px;"
    "break-inside:avoid}\n"
    ".finding.warn{border-color:#bf8700;background:#fff8e5}\n"
    ".finding.problem{border-color:#cf222e;background:#fff1f0}\n"
    ".finding .fh{font-weight:bold;margin-bottom:2px}\n"
    ".finding .badge{display:inline-block;font-size:11px;text-transform:uppercase;letter-spacing:.04em;"
    "padding:0 6px;margin-right:6px;border-radius:3px;background:#0969da;color:#fff}\n"
    ".finding.warn .badge{background:#9a6700}.finding.problem .badge{background:#cf222e}\n"
    ".finding ol{margin:4px 0;padding-left:22px}\n"
    ".finding .ev{font-variant-numeric:tabular-nums;background:rgba(0,0,0,.06);padding:0 4px;border-radius:3px;"
    "white-space:nowrap}\n"
    ".finding .cite{font-size:12px;color:var(--muted);font-style:normal}\n"
    ".tokens{font:13px/1.9 \"DejaVu Sans Mono\",monospace;white-space:pre-wrap;overflow-wrap:anywhere;"
    "border:1px solid var(--line);border-radius:4px;padding:8px;max-height:none}\n"
    ".tokens span{border-radius:2px}\n"
    ".tokens span.d{color:#fff}\n"
    ".frag{overflow-wrap:anywhere}\n"
    "footer{margin-top:40px;border-top:1px solid var(--line);padding-top:8px;font-size:12px;color:var(--muted)}\n"
    "@media print{body{font-size:11pt}.page{max-width:none;padding:0}nav.toc{display:none}"
    ".fig,.finding,table.tbl{break-inside:avoid}h2,h3{break-after:avoid}a{color:inherit}"
    "*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}\n"
    "@page{margin:14mm}\n";

/* ---- figures --------------------------------------------------------------------- */

void fig_open(rout *o, const cJSON *it, const char *cls) {
    rout_puts(o, "<figure class=\"fig ");
    rout_puts(o, cls);
    rout_puts(o, "\" id=\"");
    rout_esc(o, jstr_of(it, "id"));
    rout_puts(o, "\">\n");
    const char *t = jstr_of(it, "title");
    if (t) {
        rout_puts(o, "<div class=\"ftitle\">");
        rout_esc(o, t);
        rout_puts(o, "</div>\n");
    }
}

void fig_close(rout *o, const cJSON *it) {
    const char *c = jstr_of(it, "caption");
    if (c) {
        rout_puts(o, "<figcaption>");
        rout_esc(o, c);
        rout_puts(o, "</figcaption>\n");
    }
    rout_puts(o, "</figure>\n");
}

/* ---- text elements ---------------------------------------------------------------- */

static void render_paragraph(rout *o, const cJSON *it) {
    rout_puts(o, "<p>");
    rout_esc(o, jstr_of(it, "text"));
    rout_puts(o, "</p>\n");
}

static void render_finding(rout *o, const cJSON *it) {
    const char *level = jstr_of(it, "level");
    const char *badge = level && !strcmp(level, "problem") ? "problem" : level && !strcmp(level, "warn") ? "warning" : "finding";
    rout_puts(o, "<aside class=\"finding ");
    rout_esc(o, level);
    rout_puts(o, "\" id=\"");
    rout_esc(o, jstr_of(it, "id"));
    rout_printf(o, "\">\n<div class=\"fh\"><span class=\"badge\">%s</span>", badge);
    rout_esc(o, jstr_of(it, "headline"));
    rout_puts(o, "</div>\n<ol>\n");
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(it, "sentences")) {
        const char *cite = jstr_of(s, "cite");
        rout_puts(o, "<li>");
        rout_esc(o, jstr_of(s, "text"));
        rout_puts(o, " <span class=\"ev\">");
        rout_esc(o, jstr_of(s, "evidence"));
        rout_puts(o, "</span> ");
        if (cite && cite[0] == '#') {
            rout_puts(o, "<a class=\"cite\" href=\"");
            rout_esc(o, cite);
            rout_puts(o, "\">[");
            rout_esc(o, cite + 1);
            rout_puts(o, "]</a>");
        } else {
            rout_puts(o, "<cite class=\"cite\">[");
            rout_esc(o, cite);
            rout_puts(o, "]</cite>");
        }
        rout_puts(o, "</li>\n");
    }
    rout_puts(o, "</ol>\n</aside>\n");
}

/* A cell that reads as a number ("0.62", "-3", "0.62 [0.5, 0.7]", "12%",
 * "n/a") is right-aligned. */
static int looks_numeric(const char *s) {
    if (!s || !*s) return 0;
    if (!strcmp(s, "n/a")) return 1;
    const char *p = s;
    if (*p == '-' || *p == '+') p++;
    if (!(*p >= '0' && *p <= '9') && !(*p == '.' && p[1] >= '0' && p[1] <= '9')) return 0;
    while ((*p >= '0' && *p <= '9') || *p == '.' || *p == ',' || *p == 'e' || *p == 'E') p++;
    return *p == 0 || *p == '%' || *p == ' ';
}

static void render_table(rout *o, const cJSON *it) {
    rout_puts(o, "<table class=\"tbl\" id=\"");
    rout_esc(o, jstr_of(it, "id"));
    rout_puts(o, "\">\n");
    const char *cap = jstr_of(it, "caption");
    if (cap) {
        rout_puts(o, "<caption>");
        rout_esc(o, cap);
        rout_puts(o, "</caption>\n");
    }
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(it, "header"), *x, *row;
    if (cJSON_IsArray(h)) {
        rout_puts(o, "<thead><tr>");
        cJSON_ArrayForEach(x, h) {
            rout_puts(o, "<th>");
            rout_esc(o, x->valuestring);
            rout_puts(o, "</th>");
        }
        rout_puts(o, "</tr></thead>\n");
    }
    rout_puts(o, "<tbody>\n");
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(it, "rows")) {
        rout_puts(o, "<tr>");
        cJSON_ArrayForEach(x, row) {
            rout_puts(o, looks_numeric(x->valuestring) ? "<td class=\"num\">" : "<td>");
            rout_esc(o, x->valuestring);
            rout_puts(o, "</td>");
        }
        rout_puts(o, "</tr>\n");
    }
    rout_puts(o, "</tbody>\n</table>\n");
}

static void render_fragment(rout *o, const cJSON *it) {
    fig_open(o, it, "frag");
    rout_puts(o, "<div class=\"frag\">");
    rout_puts(o, jstr_of(it, "html")); /* trusted: verbatim */
    rout_puts(o, "</div>\n");
    fig_close(o, it);
}

/* A small legend bar for signed values: blue (-vmax) .. white .. red (+vmax). */
static void signed_legend(rout *o, const char *id, double vmax, const char *neg, const char *pos) {
    char a[64], b[64], hex[8];
    pl_report_fmt(-vmax, 3, a, sizeof a);
    pl_report_fmt(vmax, 3, b, sizeof b);
    rout_puts(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"460\" height=\"34\" "
                 "viewBox=\"0 0 460 34\" role=\"img\" aria-label=\"color legend\">\n<defs><linearGradient id=\"");
    rout_esc(o, id);
    rout_puts(o, "-lg\" x1=\"0\" y1=\"0\" x2=\"1\" y2=\"0\">");
    for (int k = 0; k <= 10; k++) {
        rgb_hex(color_div(k / 10.0), hex);
        rout_printf(o, "<stop offset=\"%.1f\" stop-color=\"%s\"/>", k / 10.0, hex);
    }
    rout_puts(o, "</linearGradient></defs>\n<rect x=\"130\" y=\"2\" width=\"200\" height=\"12\" fill=\"url(#");
    rout_esc(o, id);
    rout_puts(o, "-lg)\" stroke=\"#8c959f\" stroke-width=\"0.5\"/>\n");
    rout_printf(o, "<text x=\"124\" y=\"12\" text-anchor=\"end\" font-size=\"11\">%s ", a);
    rout_esc(o, neg);
    rout_printf(o, "</text>\n<text x=\"336\" y=\"12\" font-size=\"11\">%s ", b);
    rout_esc(o, pos);
    rout_puts(o, "</text>\n<text x=\"230\" y=\"28\" text-anchor=\"middle\" font-size=\"10\">0</text>\n</svg>\n");
}

void html_text_heat(rout *o, const cJSON *it) {
    const char **tok = NULL;
    double *v = NULL;
    size_t nt = 0, nv = 0;
    if (jstrs_of(it, "tokens", &tok, &nt) || jnums_of(it, "values", &v, &nv)) {
        o->st = pl_error(PL_ERR_NOMEM, "report: out of memory");
        goto out;
    }
    double vmax = jnum_of(it, "vmax");
    if (!(vmax > 0)) vmax = 1;
    fig_open(o, it, "textheat");
    signed_legend(o, jstr_of(it, "id"), vmax, "legitimate", "phishing");
    rout_puts(o, "<div class=\"tokens\">");
    for (size_t i = 0; i < nt && i < nv; i++) {
        char hex[8], num[64];
        double t = isfinite(v[i]) ? 0.5 + 0.5 * v[i] / vmax : 0.5;
        rgb c = color_div(t);
        rgb_hex(c, hex);
        pl_report_fmt(v[i], 4, num, sizeof num);
        rout_printf(o, "<span%s style=\"background:%s\" title=\"%s%s\">", rgb_light(c) ? "" : " class=\"d\"", hex,
                    isfinite(v[i]) && v[i] > 0 ? "+" : "", num);
        rout_esc(o, tok[i]);
        rout_puts(o, "</span>");
    }
    rout_puts(o, "</div>\n");
    fig_close(o, it);
out:
    free(tok);
    free(v);
}

/* ---- items ------------------------------------------------------------------------ */

static void render_item(rout *o, const cJSON *it);

static void render_items(rout *o, const cJSON *items) {
    const cJSON *it;
    cJSON_ArrayForEach(it, items) render_item(o, it);
}

static void render_item(rout *o, const cJSON *it) {
    const char *type = jstr_of(it, "type");
    if (!type) return;
    if (!strcmp(type, "paragraph")) render_paragraph(o, it);
    else if (!strcmp(type, "subsection")) {
        rout_puts(o, "<h3 id=\"");
        rout_esc(o, jstr_of(it, "id"));
        rout_puts(o, "\">");
        rout_esc(o, jstr_of(it, "title"));
        rout_puts(o, "</h3>\n");
    } else if (!strcmp(type, "finding")) render_finding(o, it);
    else if (!strcmp(type, "table")) render_table(o, it);
    else if (!strcmp(type, "heatmap")) svg_heatmap(o, it);
    else if (!strcmp(type, "bars")) svg_bars(o, it);
    else if (!strcmp(type, "lines")) svg_lines(o, it);
    else if (!strcmp(type, "hbars")) svg_hbars(o, it);
    else if (!strcmp(type, "stacked")) svg_stacked(o, it);
    else if (!strcmp(type, "quantiles")) svg_quantiles(o, it);
    else if (!strcmp(type, "text_heat")) html_text_heat(o, it);
    else if (!strcmp(type, "html")) render_fragment(o, it);
    else if (!strcmp(type, "group")) {
        rout_puts(o, "<div class=\"group\">\n");
        render_items(o, cJSON_GetObjectItemCaseSensitive(it, "items"));
        rout_puts(o, "</div>\n");
    }
}

/* Every "#id" cite must name an element of the report. */
static pl_status check_cites(const pl_report *r, const cJSON *items) {
    const cJSON *it, *s;
    cJSON_ArrayForEach(it, items) {
        const char *type = jstr_of(it, "type");
        if (type && !strcmp(type, "group")) {
            pl_status st = check_cites(r, cJSON_GetObjectItemCaseSensitive(it, "items"));
            if (st) return st;
        }
        if (!type || strcmp(type, "finding")) continue;
        cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(it, "sentences")) {
            const char *c = jstr_of(s, "cite");
            if (c && c[0] == '#' && !cJSON_GetObjectItemCaseSensitive(r->ids, c + 1))
                return pl_error(PL_ERR_INVALID, "report finding \"%s\": cites %s, which is not in the report",
                                jstr_of(it, "id"), c);
        }
    }
    return PL_OK;
}

pl_status pl_report_render_html(const pl_report *r, pl_buf *b) {
    if (!r || !b) return pl_error(PL_ERR_INVALID, "report render: NULL argument");
    if (r->group) return pl_error(PL_ERR_INVALID, "report render: a group is still open (call pl_report_group_end)");
    const cJSON *sec;
    cJSON_ArrayForEach(sec, r->sections) {
        pl_status st = check_cites(r, cJSON_GetObjectItemCaseSensitive(sec, "items"));
        if (st) return st;
    }
    size_t len0 = b->len;
    rout o = {b, PL_OK};
    const char *title = jstr_of(r->root, "title");
    rout_puts(&o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n"
                  "<meta name=\"generator\" content=\"phishlens " PL_VERSION "\"/>\n<title>");
    rout_esc(&o, title);
    rout_puts(&o, "</title>\n<style>\n");
    rout_puts(&o, CSS);
    rout_puts(&o, "</style>\n</head>\n<body>\n<div class=\"page\">\n<header class=\"top\">\n<h1>");
    rout_esc(&o, title);
    rout_puts(&o, "</h1>\n");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(r->root, "meta"), *kv;
    if (cJSON_GetArraySize(meta) > 0) {
        rout_puts(&o, "<dl class=\"meta\">\n");
        cJSON_ArrayForEach(kv, meta) {
            rout_puts(&o, "<dt>");
            rout_esc(&o, cJSON_GetArrayItem(kv, 0)->valuestring);
            rout_puts(&o, "</dt><dd>");
            rout_esc(&o, cJSON_GetArrayItem(kv, 1)->valuestring);
            rout_puts(&o, "</dd>\n");
        }
        rout_puts(&o, "</dl>\n");
    }
    rout_puts(&o, "</header>\n");
    if (cJSON_GetArraySize(r->sections) > 0) {
        rout_puts(&o, "<nav class=\"toc\"><strong>Contents</strong>\n<ol>\n");
        cJSON_ArrayForEach(sec, r->sections) {
            rout_puts(&o, "<li><a href=\"#");
            rout_esc(&o, jstr_of(sec, "id"));
            rout_puts(&o, "\">");
            rout_esc(&o, jstr_of(sec, "title"));
            rout_puts(&o, "</a></li>\n");
        }
        rout_puts(&o, "</ol>\n</nav>\n");
    }
    rout_puts(&o, "<main>\n");
    cJSON_ArrayForEach(sec, r->sections) {
        rout_puts(&o, "<section id=\"");
        rout_esc(&o, jstr_of(sec, "id"));
        rout_puts(&o, "\">\n<h2>");
        rout_esc(&o, jstr_of(sec, "title"));
        rout_puts(&o, "</h2>\n");
        render_items(&o, cJSON_GetObjectItemCaseSensitive(sec, "items"));
        rout_puts(&o, "</section>\n");
    }
    rout_puts(&o, "</main>\n<footer>Generated by phishlens " PL_VERSION
                  ". This page is self-contained: no scripts, no external resources; report.json beside it "
                  "holds the same data.</footer>\n</div>\n</body>\n</html>\n");
    if (o.st) {
        b->len = len0;
        if (b->data) b->data[len0] = 0;
    }
    return o.st;
}
