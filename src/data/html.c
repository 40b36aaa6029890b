/* html.c — HTML to visible text through gumbo (an HTML5 parser), keeping link
 * text and collecting hrefs, plus the link display/target mismatch test.
 *
 * Text layout: runs of whitespace collapse to one space; block-level elements
 * (p, div, br, tr, li, h1-h6, table, blockquote, hr, ...) start a new line;
 * <script>, <style>, <head>, <template>, <noscript>, <iframe> contents are dropped;
 * <img alt> is not inlined. Not a renderer: CSS visibility (display:none,
 * tiny fonts — a phishing trick) is ignored on purpose and left to analysis. */
#include "data.h"

#include <ctype.h>
#include <gumbo.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    pl_html_doc *doc;
    int space_pending;  /* a collapsed whitespace run awaits the next word */
    int line_start;     /* output is at the start of a line */
    pl_status st;
} walker;

static void emit_break(walker *w) {
    if (w->st) return;
    if (!w->line_start && w->doc->text.len) w->st = pl_buf_append(&w->doc->text, "\n", 1);
    w->line_start = 1;
    w->space_pending = 0;
}

/* ASCII whitespace as the text layout sees it (gumbo text holds no NUL). */
static const unsigned char ws_byte[256] = {[' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, ['\f'] = 1, ['\v'] = 1};

static void emit_text(walker *w, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n && !w->st;) {
        unsigned char c = u[i];
        /* ASCII whitespace and U+00A0 (C2 A0) collapse to one space */
        if (ws_byte[c]) {
            w->space_pending = 1;
            i++;
            continue;
        }
        if (c == 0xC2 && i + 1 < n && u[i + 1] == 0xA0) {
            w->space_pending = 1;
            i += 2;
            continue;
        }
        size_t j = i + 1;
        while (j < n && !ws_byte[u[j]] && !(u[j] == 0xC2 && j + 1 < n && u[j + 1] == 0xA0)) j++;
        pl_buf *t = &w->doc->text;
        int sp = w->space_pending && !w->line_start;
        w->st = pl_buf_reserve(t, j - i + 1);
        if (w->st) return;
        if (sp) t->data[t->len++] = ' ';
        memcpy(t->data + t->len, s + i, j - i);
        t->len += j - i;
        w->space_pending = 0;
        w->line_start = 0;
        i = j;
    }
}

static int is_block(GumboTag t) {
    switch (t) {
    case GUMBO_TAG_P: case GUMBO_TAG_DIV: case GUMBO_TAG_BR: case GUMBO_TAG_TR: case GUMBO_TAG_LI:
    case GUMBO_TAG_H1: case GUMBO_TAG_H2: case GUMBO_TAG_H3: case GUMBO_TAG_H4: case GUMBO_TAG_H5:
    case GUMBO_TAG_H6: case GUMBO_TAG_TABLE: case GUMBO_TAG_BLOCKQUOTE: case GUMBO_TAG_HR:
    case GUMBO_TAG_UL: case GUMBO_TAG_OL: case GUMBO_TAG_PRE: case GUMBO_TAG_FORM: case GUMBO_TAG_CENTER:
    case GUMBO_TAG_ADDRESS: case GUMBO_TAG_DL: case GUMBO_TAG_DT: case GUMBO_TAG_DD: case GUMBO_TAG_BODY:
    case GUMBO_TAG_SECTION: case GUMBO_TAG_ARTICLE: case GUMBO_TAG_HEADER: case GUMBO_TAG_FOOTER:
    case GUMBO_TAG_TITLE:
        return 1;
    default:
        return 0;
    }
}

static char *dup_trim(const char *s, size_t n) {
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static void walk(walker *w, GumboNode *node, int depth) {
    if (w->st) return;
    if (node->type == GUMBO_NODE_TEXT || node->type == GUMBO_NODE_CDATA || node->type == GUMBO_NODE_WHITESPACE) {
        emit_text(w, node->v.text.text, strlen(node->v.text.text));
        return;
    }
    if (node->type != GUMBO_NODE_ELEMENT && node->type != GUMBO_NODE_TEMPLATE && node->type != GUMBO_NODE_DOCUMENT)
        return;
    if (depth > 400) return; /* gumbo bounds nesting itself; keep our recursion bounded too */
    GumboVector *kids;
    GumboTag tag = GUMBO_TAG_UNKNOWN;
    if (node->type == GUMBO_NODE_DOCUMENT) kids = &node->v.document.children;
    else {
        tag = node->v.element.tag;
        if (tag == GUMBO_TAG_SCRIPT || tag == GUMBO_TAG_STYLE || tag == GUMBO_TAG_TEMPLATE ||
            tag == GUMBO_TAG_NOSCRIPT || tag == GUMBO_TAG_HEAD || tag == GUMBO_TAG_OBJECT ||
            tag == GUMBO_TAG_IFRAME || tag == GUMBO_TAG_NOEMBED || tag == GUMBO_TAG_NOFRAMES)
            return;
        kids = &node->v.element.children;
    }
    int block = tag != GUMBO_TAG_UNKNOWN && is_block(tag);
    if (block) emit_break(w);
    size_t link_start = w->doc->text.len;
    for (unsigned i = 0; i < kids->length && !w->st; i++) walk(w, kids->data[i], depth + 1);
    if (tag == GUMBO_TAG_A && !w->st) {
        GumboAttribute *href = gumbo_get_attribute(&node->v.element.attributes, "href");
        if (href && href->value[0]) {
            pl_html_doc *d = w->doc;
            pl_html_link *v = realloc(d->links, (d->n_links + 1) * sizeof *v);
            if (!v) {
                w->st = pl_error(PL_ERR_NOMEM, "out of memory");
                return;
            }
            d->links = v;
            size_t tl = d->text.len >= link_start ? d->text.len - link_start : 0;
            v[d->n_links].href = dup_trim(href->value, strlen(href->value));
            v[d->n_links].text = dup_trim(d->text.data ? d->text.data + link_start : "", tl);
            if (!v[d->n_links].href || !v[d->n_links].text) {
                free(v[d->n_links].href);
                free(v[d->n_links].text);
                w->st = pl_error(PL_ERR_NOMEM, "out of memory");
                return;
            }
            d->n_links++;
        }
    }
    if (block || tag == GUMBO_TAG_TD || tag == GUMBO_TAG_TH) {
        if (tag == GUMBO_TAG_TD || tag == GUMBO_TAG_TH) w->space_pending = 1;
        else emit_break(w);
    }
}

/* Gumbo allocates many small blocks and frees them one by one; a bump
 * arena for one parse, released at once, is much cheaper. Gumbo grows
 * vectors and buffers by allocate-copy-free, so the arena holds at most about
 * twice the live size. Allocation failure aborts inside gumbo like malloc
 * failure would (gumbo does not check). */
typedef struct chunk {
    struct chunk *next;
    size_t cap, used;
    max_align_t data[];
} chunk;

typedef struct {
    chunk *head;
} arena;

static void *arena_alloc(void *user, size_t size) {
    arena *a = user;
    size = (size + 15) & ~(size_t)15;
    chunk *c = a->head;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > 65536 ? size : 65536;
        chunk *nc = malloc(sizeof *nc + cap);
        if (!nc) return NULL;
        nc->cap = cap;
        nc->used = 0;
        nc->next = a->head;
        a->head = nc;
        c = nc;
    }
    void *p = (char *)c->data + c->used;
    c->used += size;
    return p;
}

static void arena_dealloc(void *user, void *ptr) {
    (void)user;
    (void)ptr;
}

static void arena_release(arena *a) {
    while (a->head) {
        chunk *n = a->head->next;
        free(a->head);
        a->head = n;
    }
}

pl_status pl_html_to_text(const char *html, size_t n, pl_html_doc *doc) {
    memset(doc, 0, sizeof *doc);
    arena a = {NULL};
    GumboOptions opt = kGumboDefaultOptions;
    opt.max_errors = 0; /* we do not read gumbo's error list; do not build it */
    opt.allocator = arena_alloc;
    opt.deallocator = arena_dealloc;
    opt.userdata = &a;
    GumboOutput *out = gumbo_parse_with_options(&opt, html, n);
    if (!out) {
        arena_release(&a);
        return pl_error(PL_ERR_NOMEM, "out of memory parsing HTML");
    }
    walker w = {doc, 0, 1, PL_OK};
    walk(&w, out->document, 0);
    arena_release(&a); /* the whole tree at once: no gumbo_destroy_output */
    if (!w.st) w.st = pl_buf_append(&doc->text, "", 0);
    if (!w.st && !doc->text.data) w.st = pl_buf_reserve(&doc->text, 1);
    if (!w.st) {
        /* trim a trailing newline and terminate */
        while (doc->text.len && (doc->text.data[doc->text.len - 1] == '\n' || doc->text.data[doc->text.len - 1] == ' '))
            doc->text.len--;
        doc->text.data[doc->text.len] = 0;
    }
    if (w.st) pl_html_doc_free(doc);
    return w.st;
}

void pl_html_doc_free(pl_html_doc *doc) {
    pl_buf_free(&doc->text);
    for (size_t i = 0; i < doc->n_links; i++) {
        free(doc->links[i].href);
        free(doc->links[i].text);
    }
    free(doc->links);
    memset(doc, 0, sizeof *doc);
}

/* The visible text names a domain when it is one token that looks like a URL
 * or a dotted host name ending in a letter TLD ("www.paypal.com",
 * "https://paypal.com/login", "PayPal.com"). */
static int text_domain(const char *text, char *out, size_t cap) {
    const char *s = text;
    while (*s && isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) n--;
    if (!n) return 0;
    for (size_t i = 0; i < n; i++)
        if (isspace((unsigned char)s[i])) return 0;
    if (!pl_url_host(s, n, out, cap)) return 0;
    /* TLD must be letters, at least two of them */
    const char *tld = strrchr(out, '.');
    if (!tld || strlen(tld + 1) < 2) return 0;
    for (const char *k = tld + 1; *k; k++)
        if (!isalpha((unsigned char)*k)) return 0;
    return 1;
}

int pl_html_link_mismatch(const char *text, const char *href) {
    char th[256], hh[256];
    if (!text_domain(text, th, sizeof th)) return 0;
    const char *h = href;
    while (*h && isspace((unsigned char)*h)) h++;
    /* only web links have a comparable target host */
    if (!(!strncasecmp(h, "http://", 7) || !strncasecmp(h, "https://", 8))) return 0;
    if (!pl_url_host(h, strlen(h), hh, sizeof hh)) return 0;
    return strcmp(pl_host_base(th), pl_host_base(hh)) != 0;
}

int pl_looks_like_html(const char *s, size_t n) {
    static const char *const tags[] = {"<html", "<body", "<div", "<p>", "<br", "<table", "<a href", "<font",
                                       "<!doctype html", "<span", "<td"};
    size_t lim = n < 65536 ? n : 65536;
    int hits = 0;
    for (size_t i = 0; i < lim; i++) {
        const char *lt = memchr(s + i, '<', lim - i);
        if (!lt) break;
        i = (size_t)(lt - s);
        for (size_t t = 0; t < sizeof tags / sizeof *tags; t++) {
            size_t k = strlen(tags[t]);
            if (i + k <= n && strncasecmp(s + i, tags[t], k) == 0) {
                if (t < 2 || t == 8) return 1; /* <html>, <body>, doctype: decisive */
                if (++hits >= 3) return 1;
            }
        }
    }
    return 0;
}
