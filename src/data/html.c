/* html.c — HTML to visible text through gumbo (an HTML5 parser), keeping link
 * text and collecting hrefs, plus the link display/target mismatch test.
 * Most documents take a streaming path that applies gumbo's parsing rules
 * without building the tree and gives the same text and links (below).
 *
 * Text layout: runs of whitespace collapse to one space; block-level elements
 * (p, div, br, tr, li, h1-h6, table, blockquote, hr, ...) start a new line;
 * <script>, <style>, <head>, <template>, <noscript>, <iframe> contents are dropped;
 * <img alt> is not inlined. Not a renderer: CSS visibility (display:none,
 * tiny fonts — a phishing trick) is ignored on purpose and left to analysis. */
#include "data.h"

#include <ctype.h>
#include <gumbo.h>
#ifdef PL_HTML_FAST_TRACE
#include <stdio.h>
#endif
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

/* ---- The fast path: tokenizer + tree construction without a tree ----
 *
 * The walker above only sees, in document order, text, the start and end of
 * block elements, <td>/<th> ends, <a href> subtrees and skipped subtrees.
 * When every node is inserted at the current node (the top of the stack of
 * open elements) and never moved, the tree's pre/post order is the order of
 * pushes and pops, so the walker's output can be produced while parsing.
 * The code below follows gumbo 0.10.1's tokenizer and tree construction,
 * including where gumbo differs from today's WHATWG text: an end tag of a
 * formatting element that is not in the list of active formatting elements
 * is ignored; "any other end tag" compares tag enums, so all unknown tags
 * match each other; <noscript> in <body> is an ordinary element; the quirks
 * lists compare whole identifiers; text waits in a buffer until the next
 * flush (so text just before </form> lands after the form); with
 * max_errors = 0 a duplicate attribute without a value leaves its name in
 * front of the next name. The adoption agency's furthest-block case moves
 * nodes but leaves the walker's output as emitted (an <a> as the formatting
 * element gets its link cut where the furthest block starts); foster-
 * parented elements are fine while no text goes into them. It gives up
 * (returns 0, and gumbo does the document) wherever the output would need
 * nodes moved: foster-parented text or links, the adoption agency with an
 * <a> between the formatting element and the furthest block or under foster
 * parenting, </form> with the form not current; and for
 * what it does not implement: foreign content (svg, math), frameset,
 * template, caption/colgroup, isindex, ruby, <noscript> in head,
 * double-escaped script data, NUL bytes and invalid UTF-8, and the
 * <table>-closes-<p> case under a doctype whose quirks mode it does not
 * work out. */
#include "html_entities.h"

int pl_html_fast = 1;

#define PL_HTML_TAGS(X)                                                                                            \
    X(A, "a") X(ABBR, "abbr") X(ACRONYM, "acronym") X(ADDRESS, "address") X(ANNOTATION_XML, "annotation-xml")      \
    X(APPLET, "applet") X(AREA, "area") X(ARTICLE, "article") X(ASIDE, "aside") X(AUDIO, "audio") X(B, "b")         \
    X(BASE, "base") X(BASEFONT, "basefont") X(BDI, "bdi") X(BDO, "bdo") X(BGSOUND, "bgsound") X(BIG, "big")        \
    X(BLINK, "blink") X(BLOCKQUOTE, "blockquote") X(BODY, "body") X(BR, "br") X(BUTTON, "button")                  \
    X(CANVAS, "canvas") X(CAPTION, "caption") X(CENTER, "center") X(CITE, "cite") X(CODE, "code") X(COL, "col")    \
    X(COLGROUP, "colgroup") X(DATA, "data") X(DATALIST, "datalist") X(DD, "dd") X(DEL, "del") X(DESC, "desc")      \
    X(DETAILS, "details") X(DFN, "dfn") X(DIR, "dir") X(DIV, "div") X(DL, "dl") X(DT, "dt") X(EM, "em")            \
    X(EMBED, "embed") X(FIELDSET, "fieldset") X(FIGCAPTION, "figcaption") X(FIGURE, "figure") X(FONT, "font")      \
    X(FOOTER, "footer") X(FOREIGNOBJECT, "foreignobject") X(FORM, "form") X(FRAME, "frame")                        \
    X(FRAMESET, "frameset") X(H1, "h1") X(H2, "h2") X(H3, "h3") X(H4, "h4") X(H5, "h5") X(H6, "h6")               \
    X(HEAD, "head") X(HEADER, "header") X(HGROUP, "hgroup") X(HR, "hr") X(HTML, "html") X(I, "i")                  \
    X(IFRAME, "iframe") X(IMAGE, "image") X(IMG, "img") X(INPUT, "input") X(INS, "ins") X(ISINDEX, "isindex")      \
    X(KBD, "kbd") X(KEYGEN, "keygen") X(LABEL, "label") X(LEGEND, "legend") X(LI, "li") X(LINK, "link")            \
    X(LISTING, "listing") X(MAIN, "main") X(MALIGNMARK, "malignmark") X(MAP, "map") X(MARK, "mark")                \
    X(MARQUEE, "marquee") X(MATH, "math") X(MENU, "menu") X(MENUITEM, "menuitem") X(META, "meta")                  \
    X(METER, "meter") X(MGLYPH, "mglyph") X(MI, "mi") X(MN, "mn") X(MO, "mo") X(MS, "ms") X(MTEXT, "mtext")        \
    X(MULTICOL, "multicol") X(NAV, "nav") X(NEXTID, "nextid") X(NOBR, "nobr") X(NOEMBED, "noembed")                \
    X(NOFRAMES, "noframes") X(NOSCRIPT, "noscript") X(OBJECT, "object") X(OL, "ol") X(OPTGROUP, "optgroup")        \
    X(OPTION, "option") X(OUTPUT, "output") X(P, "p") X(PARAM, "param") X(PLAINTEXT, "plaintext") X(PRE, "pre")    \
    X(PROGRESS, "progress") X(Q, "q") X(RB, "rb") X(RP, "rp") X(RT, "rt") X(RTC, "rtc") X(RUBY, "ruby")            \
    X(S, "s") X(SAMP, "samp") X(SCRIPT, "script") X(SECTION, "section") X(SELECT, "select") X(SMALL, "small")      \
    X(SOURCE, "source") X(SPACER, "spacer") X(SPAN, "span") X(STRIKE, "strike") X(STRONG, "strong")                \
    X(STYLE, "style") X(SUB, "sub") X(SUMMARY, "summary") X(SUP, "sup") X(SVG, "svg") X(TABLE, "table")            \
    X(TBODY, "tbody") X(TD, "td") X(TEMPLATE, "template") X(TEXTAREA, "textarea") X(TFOOT, "tfoot") X(TH, "th")    \
    X(THEAD, "thead") X(TIME, "time") X(TITLE, "title") X(TR, "tr") X(TRACK, "track") X(TT, "tt") X(U, "u")        \
    X(UL, "ul") X(VAR, "var") X(VIDEO, "video") X(WBR, "wbr") X(XMP, "xmp")

enum {
#define PL_T_ENUM(e, s) T_##e,
    PL_HTML_TAGS(PL_T_ENUM)
#undef PL_T_ENUM
    T_UNKNOWN,
    T_N
};

static const char *const tag_names[] = {
#define PL_T_NAME(e, s) s,
    PL_HTML_TAGS(PL_T_NAME)
#undef PL_T_NAME
};

/* tag names hashed into a table built once (pthread_once) */
#define TAG_HASH_SIZE 512
static short tag_hash[TAG_HASH_SIZE]; /* tag + 1; 0 empty */
static pthread_once_t tag_hash_once = PTHREAD_ONCE_INIT;

static unsigned tag_hash_of(const char *s, size_t n) {
    unsigned h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void tag_hash_init(void) {
    for (int t = 0; t < T_UNKNOWN; t++) {
        unsigned h = tag_hash_of(tag_names[t], strlen(tag_names[t])) % TAG_HASH_SIZE;
        while (tag_hash[h]) h = (h + 1) % TAG_HASH_SIZE;
        tag_hash[h] = (short)(t + 1);
    }
}

static int tag_lookup(const char *s, size_t n) {
    char low[16];
    if (n == 0 || n > 14) return T_UNKNOWN;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) return T_UNKNOWN;
        low[i] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
    }
    pthread_once(&tag_hash_once, tag_hash_init);
    for (unsigned h = tag_hash_of(low, n) % TAG_HASH_SIZE; tag_hash[h]; h = (h + 1) % TAG_HASH_SIZE) {
        const char *name = tag_names[tag_hash[h] - 1];
        if (!strncmp(name, low, n) && !name[n]) return tag_hash[h] - 1;
    }
    return T_UNKNOWN;
}

/* tag classes */
enum {
    C_SPECIAL = 1,  /* gumbo's "special" category (HTML namespace) */
    C_BLOCK = 2,    /* the walker's block elements */
    C_SKIP = 4,     /* the walker drops the subtree */
    C_FMT = 8,      /* b big code em font i s small strike strong tt u (start tags) */
    C_IMPLIED = 16, /* generate_implied_end_tags */
    C_SCOPE = 32,   /* boundary of "in scope" */
    C_BAIL = 64,    /* start tag this code does not handle */
};

#define SP C_SPECIAL
#define BL C_BLOCK
static const unsigned char tag_class[T_N] = {
    [T_ADDRESS] = SP | BL, [T_APPLET] = SP | C_SCOPE, [T_AREA] = SP, [T_ARTICLE] = SP | BL, [T_ASIDE] = SP,
    [T_BASE] = SP, [T_BASEFONT] = SP, [T_BGSOUND] = SP, [T_BLOCKQUOTE] = SP | BL, [T_BODY] = SP | BL,
    [T_BR] = SP | BL, [T_BUTTON] = SP, [T_CAPTION] = SP | C_SCOPE | C_BAIL, [T_CENTER] = SP | BL,
    [T_COL] = SP | C_BAIL, [T_COLGROUP] = SP | C_BAIL, [T_MENUITEM] = SP, [T_DD] = SP | BL | C_IMPLIED,
    [T_DETAILS] = SP, [T_DIR] = SP, [T_DIV] = SP | BL, [T_DL] = SP | BL, [T_DT] = SP | BL | C_IMPLIED,
    [T_EMBED] = SP, [T_FIELDSET] = SP, [T_FIGCAPTION] = SP, [T_FIGURE] = SP, [T_FOOTER] = SP | BL,
    [T_FORM] = SP | BL, [T_FRAME] = SP | C_BAIL, [T_FRAMESET] = SP | C_BAIL, [T_H1] = SP | BL, [T_H2] = SP | BL,
    [T_H3] = SP | BL, [T_H4] = SP | BL, [T_H5] = SP | BL, [T_H6] = SP | BL, [T_HEAD] = SP | C_SKIP,
    [T_HEADER] = SP | BL, [T_HGROUP] = SP, [T_HR] = SP | BL, [T_HTML] = SP | C_SCOPE, [T_IFRAME] = SP | C_SKIP,
    [T_IMG] = SP, [T_INPUT] = SP, [T_ISINDEX] = SP | C_BAIL, [T_LI] = SP | BL | C_IMPLIED, [T_LINK] = SP,
    [T_LISTING] = SP, [T_MARQUEE] = SP | C_SCOPE, [T_MENU] = SP, [T_META] = SP, [T_NAV] = SP,
    [T_NOEMBED] = SP | C_SKIP, [T_NOFRAMES] = SP | C_SKIP, [T_NOSCRIPT] = SP | C_SKIP,
    [T_OBJECT] = SP | C_SKIP | C_SCOPE, [T_OL] = SP | BL, [T_P] = SP | BL | C_IMPLIED, [T_PARAM] = SP,
    [T_PLAINTEXT] = SP, [T_PRE] = SP | BL, [T_SCRIPT] = SP | C_SKIP, [T_SECTION] = SP | BL,
    [T_SELECT] = SP, [T_STYLE] = SP | C_SKIP, [T_SUMMARY] = SP, [T_TABLE] = SP | BL | C_SCOPE,
    [T_TBODY] = SP, [T_TD] = SP | C_SCOPE, [T_TEMPLATE] = SP | C_SKIP | C_SCOPE | C_BAIL, [T_TEXTAREA] = SP,
    [T_TFOOT] = SP, [T_TH] = SP | C_SCOPE, [T_THEAD] = SP, [T_TITLE] = SP | BL, [T_TR] = SP | BL, [T_UL] = SP | BL,
    [T_WBR] = SP, [T_XMP] = SP,
    [T_B] = C_FMT, [T_BIG] = C_FMT, [T_CODE] = C_FMT, [T_EM] = C_FMT, [T_FONT] = C_FMT, [T_I] = C_FMT,
    [T_S] = C_FMT, [T_SMALL] = C_FMT, [T_STRIKE] = C_FMT, [T_STRONG] = C_FMT, [T_TT] = C_FMT, [T_U] = C_FMT,
    [T_OPTION] = C_IMPLIED, [T_OPTGROUP] = C_IMPLIED, [T_RB] = C_IMPLIED | C_BAIL,
    [T_RP] = C_IMPLIED | C_BAIL, [T_RT] = C_IMPLIED | C_BAIL, [T_RTC] = C_IMPLIED | C_BAIL, [T_RUBY] = C_BAIL,
    [T_SVG] = C_BAIL, [T_MATH] = C_BAIL, [T_MI] = C_BAIL, [T_MO] = C_BAIL, [T_MN] = C_BAIL, [T_MS] = C_BAIL,
    [T_MTEXT] = C_BAIL, [T_MGLYPH] = C_BAIL, [T_MALIGNMARK] = C_BAIL, [T_ANNOTATION_XML] = C_BAIL,
    [T_FOREIGNOBJECT] = C_BAIL, [T_DESC] = C_BAIL,
};
#undef SP
#undef BL
#define HAS(t, c) (tag_class[t] & (c))

enum { M_INITIAL, M_BEFORE_HTML, M_BEFORE_HEAD, M_IN_HEAD, M_AFTER_HEAD, M_IN_BODY, M_TEXT, M_IN_TABLE,
       M_IN_TABLE_BODY, M_IN_ROW, M_IN_CELL, M_AFTER_BODY, M_AFTER_AFTER_BODY, M_IN_SELECT, M_IN_SELECT_IN_TABLE };
enum { TS_DATA, TS_RCDATA, TS_RAWTEXT, TS_SCRIPT, TS_PLAINTEXT };
enum { K_START, K_END, K_CHARS, K_COMMENT, K_DOCTYPE, K_EOF };
enum { Q_QUIRKS, Q_NO, Q_UNKNOWN };

typedef struct {
    int tag, uid;                     /* uid: the open element it stands for */
    size_t attr_off, attr_len, n_attr; /* name\0value\0 pairs in fparse.ab */
} frec;                               /* an entry of the list of active formatting elements */

typedef struct {
    int tag, uid;
    int skip; /* 1: in a subtree the walker drops; 2: foster-parented (before the table) */
    size_t link_start;         /* text length after its start (and its break) */
    size_t pre_len, pre_links; /* text length and link count before its start */
    size_t href_off, href_len; /* href_len 0: no link */
} fopen_el;

typedef struct {
    int kind, tag;
    size_t attr_off, attr_len, n_attr; /* K_START of a, formatting elements, input */
    const char *s;                     /* K_CHARS */
    size_t n;
    int from_ref; /* K_CHARS produced by a character reference */
    int quirks;   /* K_DOCTYPE */
} ftok;

typedef struct {
    walker w;
    int bail /* the line that gave up */, mode, orig_mode, tstate, raw_tag, quirks, ignore_lf, head_seen, form_uid, next_uid;
    int foster;     /* in table "anything else", end tags: nothing may be inserted */
    int foster_ins; /* in table "anything else", start tags: insertions go before the table */
    char *pt; /* text gumbo still holds in its text buffer: it becomes a node */
    size_t ptn, ptcap; /* of the then current node at the next flush */
    fopen_el *stack;
    size_t ns, scap;
    frec *rec; /* the list of active formatting elements; tag -1 is a marker */
    size_t nrec, rcap;
    char *ab;
    size_t abn, abcap;
} fparse;

#define FP_MAX_DEPTH 256 /* the walker stops at depth 400 */

static void fp_nomem(fparse *f) {
    if (!f->w.st) f->w.st = pl_error(PL_ERR_NOMEM, "out of memory");
}

static int fp_grow(fparse *f, void **p, size_t *cap, size_t need, size_t elt) {
    if (need <= *cap) return 1;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, nc * elt);
    if (!q) {
        fp_nomem(f);
        return 0;
    }
    *p = q;
    *cap = nc;
    return 1;
}

/* gumbo's maybe_flush_text_node_buffer: pending text becomes a child of
 * the current node (dropped at document level) */
static void flush(fparse *f) {
    if (!f->ptn) return;
    int skip = f->ns ? f->stack[f->ns - 1].skip : 1;
    if (!skip) {
        emit_text(&f->w, f->pt, f->ptn);
    } else if (skip == 2) {
        /* before the table: whitespace there is absorbed by the table's
         * line break, anything else would have to move */
        for (size_t i = 0; i < f->ptn; i++)
            if (!(f->pt[i] == ' ' || f->pt[i] == '\t' || f->pt[i] == '\n' || f->pt[i] == '\r' || f->pt[i] == '\f')) {
                f->bail = __LINE__;
                break;
            }
    }
    f->ptn = 0;
}

static int tableish(int tag) {
    return tag == T_TABLE || tag == T_TBODY || tag == T_TFOOT || tag == T_THEAD || tag == T_TR;
}

static void ev_push(fparse *f, int tag, size_t href_off, size_t href_len) {
    flush(f); /* gumbo flushes before inserting an element */
    if (f->ns >= FP_MAX_DEPTH) {
        f->bail = __LINE__;
        return;
    }
    if (!fp_grow(f, (void **)&f->stack, &f->scap, f->ns + 1, sizeof *f->stack)) return;
    int parent = f->ns ? f->stack[f->ns - 1].skip : 0, skip = 0;
    if (parent == 1 || HAS(tag, C_SKIP)) skip = 1;
    else if (parent == 2 || (f->foster_ins && f->ns && tableish(f->stack[f->ns - 1].tag))) skip = 2;
    /* A foster-parented subtree sits before the table. Holding no text
     * (flush checks), its breaks merge with the table's; a link there would
     * be out of order. */
    if (skip == 2 && tag == T_A) {
        f->bail = __LINE__;
        return;
    }
    size_t pre_len = f->w.doc->text.len, pre_links = f->w.doc->n_links;
    if (!skip && HAS(tag, C_BLOCK)) emit_break(&f->w);
    fopen_el *e = &f->stack[f->ns++];
    e->pre_len = pre_len;
    e->pre_links = pre_links;
    e->tag = tag;
    e->uid = f->next_uid++;
    e->skip = skip;
    e->link_start = f->w.doc->text.len;
    e->href_off = href_off;
    e->href_len = tag == T_A ? href_len : 0;
}

/* the link of <a> e, whose text ends at text length end, as link number at */
static void add_link_at(fparse *f, const fopen_el *e, size_t end, size_t at) {
    pl_html_doc *d = f->w.doc;
    pl_html_link *v = realloc(d->links, (d->n_links + 1) * sizeof *v);
    if (!v) {
        fp_nomem(f);
        return;
    }
    d->links = v;
    size_t tl = end >= e->link_start ? end - e->link_start : 0;
    pl_html_link l;
    l.href = dup_trim(f->ab + e->href_off, e->href_len);
    l.text = dup_trim(d->text.data ? d->text.data + e->link_start : "", tl);
    if (!l.href || !l.text) {
        free(l.href);
        free(l.text);
        fp_nomem(f);
        return;
    }
    memmove(v + at + 1, v + at, (d->n_links - at) * sizeof *v);
    v[at] = l;
    d->n_links++;
}

static void add_link(fparse *f, const fopen_el *e) {
    add_link_at(f, e, f->w.doc->text.len, f->w.doc->n_links);
}

/* the current node leaves the stack (its end, for the walker) */
static void ev_end(fparse *f) {
    fopen_el *e = &f->stack[--f->ns];
    if (e->skip || f->w.st) return;
    if (e->href_len) add_link(f, e);
    if (HAS(e->tag, C_BLOCK)) emit_break(&f->w);
    else if (e->tag == T_TD || e->tag == T_TH) f->w.space_pending = 1;
}

static void ev_pop(fparse *f) {
    flush(f); /* and before popping */
    ev_end(f);
}

static void ins_text(fparse *f, const char *s, size_t n) {
    if (!n || !fp_grow(f, (void **)&f->pt, &f->ptcap, f->ptn + n, 1)) return;
    memcpy(f->pt + f->ptn, s, n);
    f->ptn += n;
}

static int cur_tag(const fparse *f) {
    return f->ns ? f->stack[f->ns - 1].tag : -1;
}

/* the value of attribute name in a name\0value\0 list, or NULL */
static const char *attr_get(const fparse *f, size_t off, size_t len, const char *name, size_t *vlen) {
    if (!len) return NULL;
    const char *p = f->ab + off, *end = p + len;
    while (p < end) {
        size_t nl = strlen(p);
        const char *v = p + nl + 1;
        size_t l = strlen(v);
        if (!strcmp(p, name)) {
            *vlen = l;
            return v;
        }
        p = v + l + 1;
    }
    return NULL;
}

/* insert an element for a start tag token (attributes when it has them) */
static void insert_tok(fparse *f, const ftok *t) {
    size_t hl = 0, ho = 0;
    if (t->tag == T_A && t->n_attr) {
        const char *h = attr_get(f, t->attr_off, t->attr_len, "href", &hl);
        if (h) ho = (size_t)(h - f->ab);
        else hl = 0;
    }
    ev_push(f, t->tag, ho, hl);
}

static void insert_tag(fparse *f, int tag) {
    ev_push(f, tag, 0, 0);
}

static int is_open_uid(const fparse *f, int uid) {
    for (size_t i = f->ns; i-- > 0;)
        if (f->stack[i].uid == uid) return 1;
    return 0;
}

static long stack_index_uid(const fparse *f, int uid) {
    for (size_t i = f->ns; i-- > 0;)
        if (f->stack[i].uid == uid) return (long)i;
    return -1;
}

/* has an element with one of tags[0..nt) in the scope whose boundary is
 * class C_SCOPE plus extra[] */
static int in_scope_x(const fparse *f, const int *tags, int nt, int extra1, int extra2) {
    for (size_t i = f->ns; i-- > 0;) {
        int tg = f->stack[i].tag;
        for (int j = 0; j < nt; j++)
            if (tg == tags[j]) return 1;
        if (HAS(tg, C_SCOPE) || tg == extra1 || tg == extra2) return 0;
    }
    return 0;
}
static int in_scope(const fparse *f, int tag) {
    return in_scope_x(f, &tag, 1, -1, -1);
}
static int in_button_scope(const fparse *f, int tag) {
    return in_scope_x(f, &tag, 1, T_BUTTON, -1);
}
static int in_list_scope(const fparse *f, int tag) {
    return in_scope_x(f, &tag, 1, T_OL, T_UL);
}
static int in_table_scope(const fparse *f, int tag) {
    for (size_t i = f->ns; i-- > 0;) {
        int tg = f->stack[i].tag;
        if (tg == tag) return 1;
        if (tg == T_HTML || tg == T_TABLE || tg == T_TEMPLATE) return 0;
    }
    return 0;
}

static void gen_implied(fparse *f, int except) {
    while (f->ns && HAS(cur_tag(f), C_IMPLIED) && cur_tag(f) != except) ev_pop(f);
}

static void close_tags(fparse *f, int target) {
    gen_implied(f, target);
    while (f->ns && cur_tag(f) != target) ev_pop(f);
    if (f->ns) ev_pop(f);
}

static void close_p(fparse *f) {
    if (in_button_scope(f, T_P)) close_tags(f, T_P);
}

static void close_list_item(fparse *f, int is_li) {
    for (size_t i = f->ns; i-- > 0;) {
        int tg = f->stack[i].tag;
        if (is_li ? tg == T_LI : (tg == T_DD || tg == T_DT)) {
            close_tags(f, tg);
            return;
        }
        if (HAS(tg, C_SPECIAL) && tg != T_ADDRESS && tg != T_DIV && tg != T_P) return;
    }
}

static void afe_add_marker(fparse *f) {
    if (!fp_grow(f, (void **)&f->rec, &f->rcap, f->nrec + 1, sizeof *f->rec)) return;
    f->rec[f->nrec++].tag = -1;
}

static int attrs_equal(const fparse *f, const frec *a, const frec *b) {
    if (a->n_attr != b->n_attr) return 0;
    if (!a->attr_len) return 1;
    const char *p = f->ab + a->attr_off, *end = p + a->attr_len;
    while (p < end) {
        size_t nl = strlen(p);
        const char *v = p + nl + 1;
        size_t l = strlen(v), ol;
        const char *o = attr_get(f, b->attr_off, b->attr_len, p, &ol);
        if (!o || ol != l || memcmp(o, v, l)) return 0;
        p = v + l + 1;
    }
    return 1;
}

/* push the current node (just inserted for t) onto the list, with the
 * Noah's Ark clause */
static void afe_add(fparse *f, const ftok *t) {
    if (f->w.st || f->bail || !f->ns) return;
    frec r = {t->tag, f->stack[f->ns - 1].uid, t->attr_off, t->attr_len, t->n_attr};
    size_t count = 0, earliest = 0;
    for (size_t i = f->nrec; i-- > 0;) {
        if (f->rec[i].tag == -1) break;
        if (f->rec[i].tag == r.tag && attrs_equal(f, &f->rec[i], &r)) {
            count++;
            earliest = i;
        }
    }
    if (count >= 3) {
        memmove(f->rec + earliest, f->rec + earliest + 1, (f->nrec - earliest - 1) * sizeof *f->rec);
        f->nrec--;
    }
    if (!fp_grow(f, (void **)&f->rec, &f->rcap, f->nrec + 1, sizeof *f->rec)) return;
    f->rec[f->nrec++] = r;
}

static void afe_remove(fparse *f, size_t i) {
    memmove(f->rec + i, f->rec + i + 1, (f->nrec - i - 1) * sizeof *f->rec);
    f->nrec--;
}

static void afe_clear_to_marker(fparse *f) {
    while (f->nrec) {
        int m = f->rec[--f->nrec].tag == -1;
        if (m) break;
    }
}

static void reconstruct(fparse *f) {
    if (!f->nrec) return;
    size_t i = f->nrec - 1;
    if (f->rec[i].tag == -1 || is_open_uid(f, f->rec[i].uid)) return;
    for (;;) {
        if (i == 0) break;
        i--;
        if (f->rec[i].tag == -1 || is_open_uid(f, f->rec[i].uid)) {
            i++;
            break;
        }
    }
    if (f->ptn) {
        f->bail = __LINE__; /* gumbo would put the pending text into the clone */
        return;
    }
    for (; i < f->nrec && !f->bail && !f->w.st; i++) {
        frec *r = &f->rec[i];
        size_t hl = 0, ho = 0;
        if (r->tag == T_A) {
            const char *h = attr_get(f, r->attr_off, r->attr_len, "href", &hl);
            if (h) ho = (size_t)(h - f->ab);
            else hl = 0;
        }
        ev_push(f, r->tag, ho, hl);
        if (f->ns) r->uid = f->stack[f->ns - 1].uid;
    }
}

/* gumbo's adoption agency algorithm (its outer loop runs at most 8 times).
 * With a furthest block it moves nodes: the furthest block leaves the
 * formatting element for the common ancestor, the formatting elements in
 * between are cloned around it, and a clone of the formatting element takes
 * the furthest block's children. Text keeps its document order and only
 * inline elements change parents, so block and cell events stay as emitted;
 * what changes is the stack and the list, done here. An <a> as the
 * formatting element ends where the furthest block starts, so its link is
 * recorded then. With an <a> in between, under foster parenting, or with
 * more than three nodes in between, this gives up. */
static void adoption(fparse *f, int subject) {
    fopen_el *cur = &f->stack[f->ns - 1];
    if (cur->tag == subject) {
        int listed = 0;
        for (size_t i = 0; i < f->nrec; i++)
            if (f->rec[i].tag != -1 && f->rec[i].uid == cur->uid) listed = 1;
        if (!listed) {
            ev_pop(f);
            return;
        }
    }
    for (int pass = 0; pass < 8 && !f->bail && !f->w.st; pass++) {
        long fi = -1;
        for (size_t j = f->nrec; j-- > 0;) {
            if (f->rec[j].tag == -1) return;
            if (f->rec[j].tag == subject) {
                fi = (long)j;
                break;
            }
        }
        if (fi < 0) return;
        long si = stack_index_uid(f, f->rec[fi].uid);
        if (si < 0) {
            afe_remove(f, (size_t)fi);
            return;
        }
        if (!in_scope(f, subject)) return;
        size_t fb = (size_t)si;
        while (fb < f->ns && !HAS(f->stack[fb].tag, C_SPECIAL)) fb++;
        if (fb == f->ns) {
            while (f->ns > (size_t)si) ev_pop(f);
            afe_remove(f, (size_t)fi);
            return;
        }
        if (f->foster || fb - (size_t)si - 1 > 3 || f->ns >= FP_MAX_DEPTH) {
            f->bail = __LINE__;
            return;
        }
        for (size_t k = (size_t)si + 1; k < fb; k++)
            if (f->stack[k].tag == T_A) {
                f->bail = __LINE__;
                return;
            }
        size_t bookmark = (size_t)fi + 1;
        int first_clone = 1;
        for (size_t k = fb - 1; k > (size_t)si; k--) {
            long r = -1;
            for (size_t i = 0; i < f->nrec; i++)
                if (f->rec[i].tag != -1 && f->rec[i].uid == f->stack[k].uid) r = (long)i;
            if (r < 0) {
                /* not a formatting element: off the stack, stays in place */
                memmove(f->stack + k, f->stack + k + 1, (f->ns - k - 1) * sizeof *f->stack);
                f->ns--;
                fb--;
                continue;
            }
            int uid = f->next_uid++; /* the clone that wraps the furthest block */
            f->stack[k].uid = uid;
            f->rec[r].uid = uid;
            if (first_clone) {
                bookmark = (size_t)r + 1;
                first_clone = 0;
            }
        }
        /* the formatting element leaves list and stack; its clone goes into
         * the list at the bookmark and onto the stack above the furthest block.
         * An <a> there ends where the furthest block (now after it) starts:
         * its link holds the text up to there and comes before the links
         * recorded inside the furthest block; its clone takes the furthest
         * block's content and has the same href. */
        fopen_el old = f->stack[si];
        if (subject == T_A && !old.skip && old.href_len) {
            add_link_at(f, &old, f->stack[fb].pre_len, f->stack[fb].pre_links);
            if (f->w.st) return;
            /* the furthest block and what it holds start after that link */
            for (size_t k = fb; k < f->ns; k++) f->stack[k].pre_links++;
        }
        frec fe = f->rec[fi];
        if ((size_t)fi < bookmark) bookmark--;
        afe_remove(f, (size_t)fi);
        if (!fp_grow(f, (void **)&f->rec, &f->rcap, f->nrec + 1, sizeof *f->rec)) return;
        memmove(f->rec + bookmark + 1, f->rec + bookmark, (f->nrec - bookmark) * sizeof *f->rec);
        f->nrec++;
        fe.uid = f->next_uid++;
        f->rec[bookmark] = fe;
        memmove(f->stack + si, f->stack + si + 1, (f->ns - (size_t)si - 1) * sizeof *f->stack);
        f->ns--;
        fb--;
        if (!fp_grow(f, (void **)&f->stack, &f->scap, f->ns + 1, sizeof *f->stack)) return;
        memmove(f->stack + fb + 2, f->stack + fb + 1, (f->ns - fb - 1) * sizeof *f->stack);
        f->ns++;
        fopen_el *e = &f->stack[fb + 1];
        e->tag = subject;
        e->uid = fe.uid;
        e->skip = f->stack[fb].skip;
        e->link_start = f->stack[fb].link_start;
        e->pre_len = e->pre_links = 0; /* never a furthest block: not special */
        e->href_off = old.href_off;
        e->href_len = subject == T_A ? old.href_len : 0;
    }
}

static void reset_mode(fparse *f) {
    for (size_t i = f->ns; i-- > 0;) {
        int last = i == 0, tg = f->stack[i].tag;
        switch (tg) {
        case T_SELECT:
            f->mode = M_IN_SELECT;
            for (size_t k = i; k > 0 && !last; k--)
                if (f->stack[k].tag == T_TABLE) {
                    f->mode = M_IN_SELECT_IN_TABLE;
                    break;
                }
            return;
        case T_CAPTION: case T_COLGROUP: case T_TEMPLATE: case T_FRAMESET:
            f->bail = __LINE__;
            return;
        case T_TD: case T_TH:
            if (!last) {
                f->mode = M_IN_CELL;
                return;
            }
            break;
        case T_TR: f->mode = M_IN_ROW; return;
        case T_TBODY: case T_THEAD: case T_TFOOT: f->mode = M_IN_TABLE_BODY; return;
        case T_TABLE: f->mode = M_IN_TABLE; return;
        case T_HEAD:
            if (!last) {
                f->mode = M_IN_HEAD;
                return;
            }
            break;
        case T_BODY: f->mode = M_IN_BODY; return;
        case T_HTML: f->mode = f->head_seen ? M_AFTER_HEAD : M_BEFORE_HEAD; return;
        default: break;
        }
        if (last) {
            f->mode = M_IN_BODY;
            return;
        }
    }
}

static int close_table(fparse *f) {
    if (!in_table_scope(f, T_TABLE)) return 0;
    while (f->ns && cur_tag(f) != T_TABLE) ev_pop(f);
    if (f->ns) ev_pop(f);
    reset_mode(f);
    return 1;
}

static void generic_text(fparse *f, const ftok *t, int ts) {
    insert_tok(f, t);
    f->tstate = ts;
    f->raw_tag = t->tag;
    f->orig_mode = f->mode;
    f->mode = M_TEXT;
}

static int is_html_ws(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static size_t ws_prefix(const ftok *t) {
    size_t i = 0;
    while (i < t->n && is_html_ws((unsigned char)t->s[i])) i++;
    return i;
}

/* Split the leading whitespace off a character token: it is returned as a
 * token of its own, t keeps the rest (possibly empty). */
static ftok split_ws(ftok *t) {
    ftok w = *t;
    w.n = ws_prefix(t);
    t->s += w.n;
    t->n -= w.n;
    return w;
}

/* what "in head" and "after head" do first: leading whitespace of a
 * character token is inserted (the rest, if any, goes on), comments and
 * doctypes are dropped; 1 when the token is used up */
static int head_lead(fparse *f, ftok *t) {
    if (t->kind == K_CHARS) {
        const ftok w = split_ws(t);
        ins_text(f, w.s, w.n);
        return !t->n;
    }
    return t->kind == K_COMMENT || t->kind == K_DOCTYPE;
}

/* in head rules; returns 1 to reprocess */
static int in_head(fparse *f, ftok *t) {
    if (head_lead(f, t)) return 0;
    if (t->kind == K_START) {
        switch (t->tag) {
        case T_HTML: return 0;
        case T_BASE: case T_BASEFONT: case T_BGSOUND: case T_MENUITEM: case T_LINK: case T_META:
            insert_tok(f, t);
            if (f->ns) ev_pop(f);
            return 0;
        case T_TITLE: generic_text(f, t, TS_RCDATA); return 0;
        case T_NOFRAMES: case T_STYLE: generic_text(f, t, TS_RAWTEXT); return 0;
        case T_SCRIPT: generic_text(f, t, TS_SCRIPT); return 0;
        case T_NOSCRIPT: case T_TEMPLATE: f->bail = __LINE__; return 0;
        case T_HEAD: return 0;
        default: break;
        }
    } else if (t->kind == K_END) {
        if (t->tag == T_HEAD) {
            ev_pop(f);
            f->mode = M_AFTER_HEAD;
            return 0;
        }
        if (t->tag == T_TEMPLATE) {
            f->bail = __LINE__;
            return 0;
        }
        if (t->tag != T_BODY && t->tag != T_HTML && t->tag != T_BR) return 0;
    }
    ev_pop(f); /* the head */
    f->mode = M_AFTER_HEAD;
    return 1;
}

static int in_body(fparse *f, ftok *t);

static int in_body_start(fparse *f, ftok *t) {
    int tg = t->tag;
    if (HAS(tg, C_BAIL)) {
        f->bail = __LINE__;
        return 0;
    }
    if (HAS(tg, C_FMT)) {
        reconstruct(f);
        insert_tok(f, t);
        afe_add(f, t);
        return 0;
    }
    switch (tg) {
    case T_HTML: case T_BODY: return 0;
    case T_BASE: case T_BASEFONT: case T_BGSOUND: case T_MENUITEM: case T_LINK: case T_META: case T_NOFRAMES:
    case T_SCRIPT: case T_STYLE: case T_TITLE:
        return in_head(f, t);
    case T_ADDRESS: case T_ARTICLE: case T_ASIDE: case T_BLOCKQUOTE: case T_CENTER: case T_DETAILS: case T_DIR:
    case T_DIV: case T_DL: case T_FIELDSET: case T_FIGCAPTION: case T_FIGURE: case T_FOOTER: case T_HEADER:
    case T_HGROUP: case T_MENU: case T_MAIN: case T_NAV: case T_OL: case T_P: case T_SECTION: case T_SUMMARY:
    case T_UL:
        close_p(f);
        insert_tok(f, t);
        return 0;
    case T_H1: case T_H2: case T_H3: case T_H4: case T_H5: case T_H6: {
        close_p(f);
        int c = cur_tag(f);
        if (c == T_H1 || c == T_H2 || c == T_H3 || c == T_H4 || c == T_H5 || c == T_H6) ev_pop(f);
        insert_tok(f, t);
        return 0;
    }
    case T_PRE: case T_LISTING:
        close_p(f);
        insert_tok(f, t);
        f->ignore_lf = 1;
        return 0;
    case T_FORM:
        if (f->form_uid >= 0) return 0;
        close_p(f);
        insert_tok(f, t);
        if (f->ns) f->form_uid = f->stack[f->ns - 1].uid;
        return 0;
    case T_LI: case T_DD: case T_DT:
        close_list_item(f, tg == T_LI);
        close_p(f);
        insert_tok(f, t);
        return 0;
    case T_PLAINTEXT:
        close_p(f);
        insert_tok(f, t);
        f->tstate = TS_PLAINTEXT;
        return 0;
    case T_BUTTON:
        if (in_scope(f, T_BUTTON)) {
            close_tags(f, T_BUTTON);
            return 1;
        }
        reconstruct(f);
        insert_tok(f, t);
        return 0;
    case T_A:
        for (size_t j = f->nrec; j-- > 0;) {
            if (f->rec[j].tag == -1) break;
            if (f->rec[j].tag == T_A) {
                adoption(f, T_A);
                if (f->bail) return 0;
                for (size_t k = f->nrec; k-- > 0;) {
                    if (f->rec[k].tag == -1) break;
                    if (f->rec[k].tag == T_A) {
                        f->bail = __LINE__; /* removed from the middle of the stack */
                        return 0;
                    }
                }
                break;
            }
        }
        reconstruct(f);
        insert_tok(f, t);
        afe_add(f, t);
        return 0;
    case T_NOBR:
        reconstruct(f);
        if (in_scope(f, T_NOBR)) {
            f->bail = __LINE__;
            return 0;
        }
        insert_tok(f, t);
        afe_add(f, t);
        return 0;
    case T_APPLET: case T_MARQUEE: case T_OBJECT:
        reconstruct(f);
        insert_tok(f, t);
        afe_add_marker(f);
        return 0;
    case T_TABLE:
        if (f->quirks != Q_QUIRKS) {
            if (f->quirks == Q_UNKNOWN && in_button_scope(f, T_P)) {
                f->bail = __LINE__;
                return 0;
            }
            close_p(f);
        }
        insert_tok(f, t);
        f->mode = M_IN_TABLE;
        return 0;
    case T_AREA: case T_BR: case T_EMBED: case T_IMG: case T_IMAGE: case T_KEYGEN: case T_WBR: case T_INPUT:
        reconstruct(f);
        insert_tag(f, tg == T_IMAGE ? T_IMG : tg);
        if (f->ns) ev_pop(f);
        return 0;
    case T_PARAM: case T_SOURCE: case T_TRACK:
        insert_tok(f, t);
        if (f->ns) ev_pop(f);
        return 0;
    case T_HR:
        close_p(f);
        insert_tok(f, t);
        if (f->ns) ev_pop(f);
        return 0;
    case T_TEXTAREA:
        generic_text(f, t, TS_RCDATA);
        f->ignore_lf = 1;
        return 0;
    case T_XMP:
        close_p(f);
        reconstruct(f);
        generic_text(f, t, TS_RAWTEXT);
        return 0;
    case T_IFRAME: case T_NOEMBED:
        generic_text(f, t, TS_RAWTEXT);
        return 0;
    case T_SELECT:
        reconstruct(f);
        insert_tok(f, t);
        f->mode = (f->mode == M_IN_TABLE || f->mode == M_IN_TABLE_BODY || f->mode == M_IN_ROW || f->mode == M_IN_CELL)
                      ? M_IN_SELECT_IN_TABLE
                      : M_IN_SELECT;
        return 0;
    case T_OPTION: case T_OPTGROUP:
        if (cur_tag(f) == T_OPTION) ev_pop(f);
        reconstruct(f);
        insert_tok(f, t);
        return 0;
    case T_CAPTION: case T_COL: case T_COLGROUP: case T_FRAME: case T_HEAD: case T_TBODY: case T_TD:
    case T_TFOOT: case T_TH: case T_THEAD: case T_TR:
        return 0;
    default:
        reconstruct(f);
        insert_tok(f, t);
        return 0;
    }
}

static int in_body_end(fparse *f, ftok *t) {
    int tg = t->tag;
    switch (tg) {
    case T_BODY: case T_HTML:
        if (!in_scope(f, T_BODY)) return 0;
        f->mode = M_AFTER_BODY;
        return tg == T_HTML;
    case T_ADDRESS: case T_ARTICLE: case T_ASIDE: case T_BLOCKQUOTE: case T_BUTTON: case T_CENTER: case T_DETAILS:
    case T_DIR: case T_DIV: case T_DL: case T_FIELDSET: case T_FIGCAPTION: case T_FIGURE: case T_FOOTER:
    case T_HEADER: case T_HGROUP: case T_LISTING: case T_MAIN: case T_MENU: case T_NAV: case T_OL: case T_PRE:
    case T_SECTION: case T_SUMMARY: case T_UL:
        if (in_scope(f, tg)) close_tags(f, tg);
        return 0;
    case T_FORM: {
        int uid = f->form_uid;
        f->form_uid = -1;
        if (uid < 0) return 0;
        /* has_node_in_scope */
        int found = 0;
        for (size_t i = f->ns; i-- > 0;) {
            if (f->stack[i].uid == uid) {
                found = 1;
                break;
            }
            if (HAS(f->stack[i].tag, C_SCOPE)) break;
        }
        if (!found) return 0;
        gen_implied(f, -1);
        /* gumbo takes the form off the stack without flushing its text
         * buffer: text still pending there lands after the form */
        if (f->ns && f->stack[f->ns - 1].uid == uid) ev_end(f);
        else f->bail = __LINE__; /* removed from the middle of the stack */
        return 0;
    }
    case T_P:
        if (!in_button_scope(f, T_P)) {
            insert_tag(f, T_P);
            return 1;
        }
        close_tags(f, T_P);
        return 0;
    case T_LI:
        if (in_list_scope(f, T_LI)) close_tags(f, T_LI);
        return 0;
    case T_DD: case T_DT:
        if (in_scope(f, tg)) close_tags(f, tg);
        return 0;
    case T_H1: case T_H2: case T_H3: case T_H4: case T_H5: case T_H6: {
        static const int hs[6] = {T_H1, T_H2, T_H3, T_H4, T_H5, T_H6};
        if (!in_scope_x(f, hs, 6, -1, -1)) return 0;
        gen_implied(f, -1);
        while (f->ns) {
            int c = cur_tag(f);
            ev_pop(f);
            if (c == T_H1 || c == T_H2 || c == T_H3 || c == T_H4 || c == T_H5 || c == T_H6) break;
        }
        return 0;
    }
    case T_A: case T_B: case T_BIG: case T_CODE: case T_EM: case T_FONT: case T_I: case T_NOBR: case T_S:
    case T_SMALL: case T_STRIKE: case T_STRONG: case T_TT: case T_U:
        adoption(f, tg);
        return 0;
    case T_APPLET: case T_MARQUEE: case T_OBJECT:
        if (!in_table_scope(f, tg)) return 0;
        close_tags(f, tg);
        afe_clear_to_marker(f);
        return 0;
    case T_BR:
        reconstruct(f);
        insert_tag(f, T_BR);
        if (f->ns) ev_pop(f);
        return 0;
    case T_TEMPLATE:
        f->bail = __LINE__;
        return 0;
    default:
        for (size_t i = f->ns; i-- > 0;) {
            int c = f->stack[i].tag;
            if (c == tg) {
                gen_implied(f, tg);
                while (f->ns > i) ev_pop(f);
                return 0;
            }
            if (HAS(c, C_SPECIAL)) return 0;
        }
        return 0;
    }
}

static int in_body(fparse *f, ftok *t) {
    switch (t->kind) {
    case K_CHARS:
        reconstruct(f);
        ins_text(f, t->s, t->n);
        return 0;
    case K_START: return in_body_start(f, t);
    case K_END: return in_body_end(f, t);
    default: return 0; /* comment, doctype, EOF */
    }
}

static void clear_to(fparse *f, int a, int b, int c) {
    while (f->ns && cur_tag(f) != T_HTML && cur_tag(f) != T_TEMPLATE && cur_tag(f) != a && cur_tag(f) != b &&
           cur_tag(f) != c)
        ev_pop(f);
}

static int in_table(fparse *f, ftok *t) {
    if (t->kind == K_CHARS) {
        if (ws_prefix(t) != t->n) {
            f->bail = __LINE__; /* foster parenting */
            return 0;
        }
        ins_text(f, t->s, t->n);
        return 0;
    }
    if (t->kind == K_COMMENT || t->kind == K_DOCTYPE || t->kind == K_EOF) return 0;
    int tg = t->tag;
    if (t->kind == K_START) {
        switch (tg) {
        case T_CAPTION: case T_COLGROUP: case T_COL: case T_TEMPLATE: f->bail = __LINE__; return 0;
        case T_TBODY: case T_TFOOT: case T_THEAD:
            clear_to(f, T_TABLE, -1, -1);
            f->mode = M_IN_TABLE_BODY;
            insert_tok(f, t);
            return 0;
        case T_TD: case T_TH: case T_TR:
            clear_to(f, T_TABLE, -1, -1);
            f->mode = M_IN_TABLE_BODY;
            insert_tag(f, T_TBODY);
            return 1;
        case T_TABLE: return close_table(f);
        case T_STYLE: case T_SCRIPT: return in_head(f, t);
        case T_INPUT: {
            size_t vl;
            const char *v = attr_get(f, t->attr_off, t->attr_len, "type", &vl);
            if (v && vl == 6 && !strncasecmp(v, "hidden", 6)) {
                insert_tok(f, t);
                if (f->ns) ev_pop(f);
                return 0;
            }
            break;
        }
        case T_FORM:
            if (f->form_uid >= 0) return 0;
            insert_tok(f, t);
            if (f->ns) {
                f->form_uid = f->stack[f->ns - 1].uid;
                ev_pop(f);
            }
            return 0;
        default: break;
        }
    } else {
        switch (tg) {
        case T_TABLE: close_table(f); return 0;
        case T_BODY: case T_CAPTION: case T_COL: case T_COLGROUP: case T_HTML: case T_TBODY: case T_TD:
        case T_TFOOT: case T_TH: case T_THEAD: case T_TR:
            return 0;
        case T_TEMPLATE: f->bail = __LINE__; return 0;
        default: break;
        }
    }
    /* anything else: in body with foster parenting. End tags insert nothing
     * except </p> without a p in scope, </br> and the adoption agency with a
     * furthest block (those give up). Start tags put their elements before
     * the table (skip 2 on the stack), which is fine while no text goes in. */
    if (t->kind == K_END && tg != T_BR && !(tg == T_P && !in_button_scope(f, T_P))) {
        f->foster = 1;
        int r = in_body_end(f, t);
        f->foster = 0;
        return r;
    }
    if (t->kind == K_START) {
        f->foster_ins = 1;
        int r = in_body_start(f, t);
        f->foster_ins = 0;
        return r;
    }
    f->bail = __LINE__;
    return 0;
}

static int in_table_body(fparse *f, ftok *t) {
    int tg = t->tag;
    if (t->kind == K_START) {
        if (tg == T_TR) {
            clear_to(f, T_TBODY, T_TFOOT, T_THEAD);
            insert_tok(f, t);
            f->mode = M_IN_ROW;
            return 0;
        }
        if (tg == T_TD || tg == T_TH) {
            clear_to(f, T_TBODY, T_TFOOT, T_THEAD);
            insert_tag(f, T_TR);
            f->mode = M_IN_ROW;
            return 1;
        }
        if (tg == T_CAPTION || tg == T_COL || tg == T_COLGROUP || tg == T_TBODY || tg == T_TFOOT || tg == T_THEAD)
            goto close_section;
    } else if (t->kind == K_END) {
        if (tg == T_TBODY || tg == T_TFOOT || tg == T_THEAD) {
            if (!in_table_scope(f, tg)) return 0;
            clear_to(f, T_TBODY, T_TFOOT, T_THEAD);
            if (f->ns) ev_pop(f);
            f->mode = M_IN_TABLE;
            return 0;
        }
        if (tg == T_TABLE) goto close_section;
        if (tg == T_BODY || tg == T_CAPTION || tg == T_COL || tg == T_TR || tg == T_COLGROUP || tg == T_HTML ||
            tg == T_TD || tg == T_TH)
            return 0;
    }
    return in_table(f, t);
close_section:
    if (!(in_table_scope(f, T_TBODY) || in_table_scope(f, T_THEAD) || in_table_scope(f, T_TFOOT))) return 0;
    clear_to(f, T_TBODY, T_TFOOT, T_THEAD);
    if (f->ns) ev_pop(f);
    f->mode = M_IN_TABLE;
    return 1;
}

static int in_row(fparse *f, ftok *t) {
    int tg = t->tag;
    if (t->kind == K_START) {
        if (tg == T_TD || tg == T_TH) {
            clear_to(f, T_TR, -1, -1);
            insert_tok(f, t);
            f->mode = M_IN_CELL;
            afe_add_marker(f);
            return 0;
        }
        if (tg == T_CAPTION || tg == T_COL || tg == T_COLGROUP || tg == T_TBODY || tg == T_TFOOT || tg == T_THEAD ||
            tg == T_TR)
            goto close_row;
    } else if (t->kind == K_END) {
        if (tg == T_TR) {
            if (!in_table_scope(f, T_TR)) return 0;
            clear_to(f, T_TR, -1, -1);
            if (f->ns) ev_pop(f);
            f->mode = M_IN_TABLE_BODY;
            return 0;
        }
        if (tg == T_TABLE) goto close_row;
        if (tg == T_TBODY || tg == T_TFOOT || tg == T_THEAD) {
            if (!in_table_scope(f, tg)) return 0;
            goto close_row;
        }
        if (tg == T_BODY || tg == T_CAPTION || tg == T_COL || tg == T_COLGROUP || tg == T_HTML || tg == T_TD ||
            tg == T_TH)
            return 0;
    }
    return in_table(f, t);
close_row:
    if (!in_table_scope(f, T_TR)) return 0;
    clear_to(f, T_TR, -1, -1);
    if (f->ns) ev_pop(f);
    f->mode = M_IN_TABLE_BODY;
    return 1;
}

static void close_cell(fparse *f, int cell) {
    gen_implied(f, -1);
    while (f->ns) {
        int c = cur_tag(f);
        ev_pop(f);
        if (c == cell) break;
    }
    afe_clear_to_marker(f);
    f->mode = M_IN_ROW;
}

static int in_cell(fparse *f, ftok *t) {
    int tg = t->tag;
    if (t->kind == K_END && (tg == T_TD || tg == T_TH)) {
        if (in_table_scope(f, tg)) close_cell(f, tg);
        return 0;
    }
    if (t->kind == K_START && (tg == T_CAPTION || tg == T_COL || tg == T_COLGROUP || tg == T_TBODY || tg == T_TD ||
                               tg == T_TFOOT || tg == T_TH || tg == T_THEAD || tg == T_TR)) {
        if (!in_table_scope(f, T_TH) && !in_table_scope(f, T_TD)) return 0;
        close_cell(f, in_table_scope(f, T_TD) ? T_TD : T_TH);
        return 1;
    }
    if (t->kind == K_END) {
        if (tg == T_BODY || tg == T_CAPTION || tg == T_COL || tg == T_COLGROUP || tg == T_HTML) return 0;
        if (tg == T_TABLE || tg == T_TBODY || tg == T_TFOOT || tg == T_THEAD || tg == T_TR) {
            if (!in_table_scope(f, tg)) return 0;
            close_cell(f, in_table_scope(f, T_TD) ? T_TD : T_TH);
            return 1;
        }
    }
    return in_body(f, t);
}

/* select scope: the select, with only option and optgroup above it */
static int select_in_scope(const fparse *f) {
    for (size_t i = f->ns; i-- > 0;) {
        int tg = f->stack[i].tag;
        if (tg == T_SELECT) return 1;
        if (tg != T_OPTION && tg != T_OPTGROUP) return 0;
    }
    return 0;
}

static void close_select(fparse *f) {
    while (f->ns) {
        int c = cur_tag(f);
        ev_pop(f);
        if (c == T_SELECT) break;
    }
    reset_mode(f);
}

static int in_select(fparse *f, ftok *t) {
    int tg = t->tag;
    switch (t->kind) {
    case K_CHARS:
        ins_text(f, t->s, t->n);
        return 0;
    case K_COMMENT: case K_DOCTYPE: case K_EOF:
        return 0;
    case K_START:
        switch (tg) {
        case T_OPTION:
            if (cur_tag(f) == T_OPTION) ev_pop(f);
            insert_tok(f, t);
            return 0;
        case T_OPTGROUP:
            if (cur_tag(f) == T_OPTION) ev_pop(f);
            if (cur_tag(f) == T_OPTGROUP) ev_pop(f);
            insert_tok(f, t);
            return 0;
        case T_SELECT:
            if (select_in_scope(f)) close_select(f);
            return 0;
        case T_INPUT: case T_KEYGEN: case T_TEXTAREA:
            if (!select_in_scope(f)) return 0;
            close_select(f);
            return 1;
        case T_SCRIPT:
            return in_head(f, t);
        case T_TEMPLATE:
            f->bail = __LINE__;
            return 0;
        default:
            return 0; /* html, and everything else: ignored */
        }
    case K_END:
        switch (tg) {
        case T_OPTGROUP:
            if (cur_tag(f) == T_OPTION && f->ns >= 2 && f->stack[f->ns - 2].tag == T_OPTGROUP) ev_pop(f);
            if (cur_tag(f) == T_OPTGROUP) ev_pop(f);
            return 0;
        case T_OPTION:
            if (cur_tag(f) == T_OPTION) ev_pop(f);
            return 0;
        case T_SELECT:
            if (select_in_scope(f)) close_select(f);
            return 0;
        case T_TEMPLATE:
            f->bail = __LINE__;
            return 0;
        default:
            return 0;
        }
    }
    return 0;
}

static int in_select_in_table(fparse *f, ftok *t) {
    int tg = t->tag;
    int table_tag = tg == T_CAPTION || tg == T_TABLE || tg == T_TBODY || tg == T_TFOOT || tg == T_THEAD || tg == T_TR ||
                    tg == T_TD || tg == T_TH;
    if (t->kind == K_START && table_tag) {
        close_select(f);
        return 1;
    }
    if (t->kind == K_END && table_tag) {
        if (!in_table_scope(f, tg)) return 0;
        close_select(f);
        return 1;
    }
    return in_select(f, t);
}

/* one tree construction step; 1: reprocess the token */
static int tree_step(fparse *f, ftok *t) {
    switch (f->mode) {
    case M_INITIAL:
        if (t->kind == K_CHARS) {
            split_ws(t);
            if (!t->n) return 0;
        } else if (t->kind == K_COMMENT) {
            return 0;
        } else if (t->kind == K_DOCTYPE) {
            f->quirks = t->quirks;
            f->mode = M_BEFORE_HTML;
            return 0;
        }
        f->quirks = Q_QUIRKS;
        f->mode = M_BEFORE_HTML;
        return 1;
    case M_BEFORE_HTML:
        if (t->kind == K_CHARS) {
            split_ws(t);
            if (!t->n) return 0;
        } else if (t->kind == K_COMMENT || t->kind == K_DOCTYPE) {
            return 0;
        } else if (t->kind == K_START && t->tag == T_HTML) {
            insert_tag(f, T_HTML);
            f->mode = M_BEFORE_HEAD;
            return 0;
        } else if (t->kind == K_END && t->tag != T_HEAD && t->tag != T_BODY && t->tag != T_HTML && t->tag != T_BR) {
            return 0;
        }
        insert_tag(f, T_HTML);
        f->mode = M_BEFORE_HEAD;
        return 1;
    case M_BEFORE_HEAD:
        if (t->kind == K_CHARS) {
            split_ws(t);
            if (!t->n) return 0;
        } else if (t->kind == K_COMMENT || t->kind == K_DOCTYPE) {
            return 0;
        } else if (t->kind == K_START && t->tag == T_HTML) {
            return 0;
        } else if (t->kind == K_START && t->tag == T_HEAD) {
            insert_tag(f, T_HEAD);
            f->head_seen = 1;
            f->mode = M_IN_HEAD;
            return 0;
        } else if (t->kind == K_END && t->tag != T_HEAD && t->tag != T_BODY && t->tag != T_HTML && t->tag != T_BR) {
            return 0;
        }
        insert_tag(f, T_HEAD);
        f->head_seen = 1;
        f->mode = M_IN_HEAD;
        return 1;
    case M_IN_HEAD:
        return in_head(f, t);
    case M_AFTER_HEAD:
        if (head_lead(f, t)) return 0;
        if (t->kind == K_START) {
            switch (t->tag) {
            case T_HTML: return 0;
            case T_BODY:
                insert_tag(f, T_BODY);
                f->mode = M_IN_BODY;
                return 0;
            case T_FRAMESET: case T_TEMPLATE: f->bail = __LINE__; return 0;
            case T_BASE: case T_BASEFONT: case T_BGSOUND: case T_LINK: case T_META: case T_NOFRAMES:
            case T_SCRIPT: case T_STYLE: case T_TITLE: {
                /* back into the head for this one element */
                size_t at = f->ns;
                insert_tag(f, T_HEAD);
                if (f->bail || f->w.st) return 0;
                in_head(f, t);
                if (f->bail || f->w.st) return 0;
                if (at >= f->ns || f->stack[at].tag != T_HEAD) {
                    f->bail = __LINE__;
                    return 0;
                }
                memmove(f->stack + at, f->stack + at + 1, (f->ns - at - 1) * sizeof *f->stack);
                f->ns--;
                return 0;
            }
            case T_HEAD: return 0;
            default: break;
            }
        } else if (t->kind == K_END) {
            if (t->tag == T_TEMPLATE) {
                f->bail = __LINE__;
                return 0;
            }
            if (t->tag != T_BODY && t->tag != T_HTML && t->tag != T_BR) return 0;
        }
        insert_tag(f, T_BODY);
        f->mode = M_IN_BODY;
        return 1;
    case M_IN_BODY:
        return in_body(f, t);
    case M_TEXT:
        if (t->kind == K_CHARS) {
            ins_text(f, t->s, t->n);
            return 0;
        }
        if (f->ns) ev_pop(f);
        f->mode = f->orig_mode;
        return t->kind == K_EOF;
    case M_IN_TABLE:
        return in_table(f, t);
    case M_IN_TABLE_BODY:
        return in_table_body(f, t);
    case M_IN_ROW:
        return in_row(f, t);
    case M_IN_CELL:
        return in_cell(f, t);
    case M_AFTER_BODY:
        if (t->kind == K_CHARS) {
            ftok w = split_ws(t);
            if (w.n) in_body(f, &w);
            if (!t->n) return 0;
        } else if (t->kind == K_START && t->tag == T_HTML) {
            return 0;
        } else if (t->kind == K_COMMENT || t->kind == K_DOCTYPE || t->kind == K_EOF) {
            return 0;
        } else if (t->kind == K_END && t->tag == T_HTML) {
            f->mode = M_AFTER_AFTER_BODY;
            return 0;
        }
        f->mode = M_IN_BODY;
        return 1;
    case M_IN_SELECT:
        return in_select(f, t);
    case M_IN_SELECT_IN_TABLE:
        return in_select_in_table(f, t);
    case M_AFTER_AFTER_BODY:
        if (t->kind == K_CHARS) {
            ftok w = split_ws(t);
            if (w.n) in_body(f, &w);
            if (!t->n) return 0;
        } else if (t->kind == K_COMMENT || t->kind == K_DOCTYPE || t->kind == K_EOF ||
                   (t->kind == K_START && t->tag == T_HTML)) {
            return 0;
        }
        f->mode = M_IN_BODY;
        return 1;
    }
    return 0;
}

static void tree(fparse *f, ftok *t) {
    /* comment nodes flush the text buffer; so does the end of table text */
    if (t->kind == K_COMMENT ||
        (t->kind != K_CHARS && (f->mode == M_IN_TABLE || f->mode == M_IN_TABLE_BODY || f->mode == M_IN_ROW)))
        flush(f);
    if (f->ignore_lf) {
        f->ignore_lf = 0;
        if (t->kind == K_CHARS) {
            if (t->from_ref) {
                if (t->s[0] == '\n') t->s++, t->n--;
            } else if (t->s[0] == '\r') {
                size_t k = t->n > 1 && t->s[1] == '\n' ? 2 : 1;
                t->s += k;
                t->n -= k;
            } else if (t->s[0] == '\n') {
                t->s++;
                t->n--;
            }
            if (!t->n) return;
        }
    }
    while (!f->bail && !f->w.st && tree_step(f, t))
        ;
}

/* ---- tokenizer ---- */

static int is_alpha_c(unsigned char c) {
    return (unsigned char)((c | 32) - 'a') < 26;
}
static int is_alnum_c(unsigned char c) {
    return is_alpha_c(c) || (unsigned char)(c - '0') < 10;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* numeric references 0x80-0x9F as windows-1252 (0 where unchanged) */
static const uint16_t c1_map[32] = {0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017D, 0,
                                    0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

static const char *entity_find(const char *name, size_t len) {
    size_t lo = 0, hi = sizeof pl_html_entities / sizeof *pl_html_entities;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *e = pl_html_entities[mid].name;
        int c = strncmp(e, name, len);
        if (!c) c = e[len] ? 1 : 0;
        if (!c) return pl_html_entities[mid].utf8;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* A character reference at s[i] == '&' (gumbo's consume_char_ref): the
 * number of bytes it takes, its UTF-8 in out (at most 8 bytes), or 0 when
 * the '&' is literal. */
static size_t char_ref(fparse *f, const char *s, size_t n, size_t i, int in_attr, int allowed, char *out, size_t *ol) {
    size_t j = i + 1;
    if (j >= n) return 0;
    unsigned char c = (unsigned char)s[j];
    if (c == allowed || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == ' ' || c == '<' || c == '&') return 0;
    if (c == '#') {
        j++;
        int hex = 0;
        if (j < n && (s[j] == 'x' || s[j] == 'X')) {
            hex = 1;
            j++;
        }
        size_t d0 = j;
        int64_t cp = 0;
        for (; j < n; j++) {
            unsigned char d = (unsigned char)s[j];
            int v;
            if (d >= '0' && d <= '9') v = d - '0';
            else if (hex && (d | 32) >= 'a' && (d | 32) <= 'f') v = (d | 32) - 'a' + 10;
            else break;
            cp = cp * (hex ? 16 : 10) + v;
            if (cp > 0x7FFFFFF) {
                f->bail = __LINE__; /* gumbo's int would overflow */
                return 0;
            }
        }
        if (j == d0) return 0;
        if (j < n && s[j] == ';') j++;
        if (cp == 0) cp = 0xFFFD;
        else if (cp >= 0x80 && cp <= 0x9F && c1_map[cp - 0x80]) cp = c1_map[cp - 0x80];
        else if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = 0xFFFD;
        *ol = put_utf8(out, (uint32_t)cp);
        return j - i;
    }
    size_t k = j;
    while (k < n && is_alnum_c((unsigned char)s[k])) k++;
    if (k == j) return 0;
    if (k < n && s[k] == ';' && k - j <= 32) {
        char nm[40];
        memcpy(nm, s + j, k - j);
        nm[k - j] = ';';
        const char *u = entity_find(nm, k - j + 1);
        if (u) {
            *ol = strlen(u);
            memcpy(out, u, *ol);
            return k + 1 - i;
        }
    }
    /* the longest name without ';' (legacy references are at most 6 long) */
    for (size_t len = k - j < 6 ? k - j : 6; len >= 2; len--) {
        const char *u = entity_find(s + j, len);
        if (!u) continue;
        if (in_attr && j + len < n && (s[j + len] == '=' || is_alnum_c((unsigned char)s[j + len]))) return 0;
        *ol = strlen(u);
        memcpy(out, u, *ol);
        return j + len - i;
    }
    return 0;
}

static int tag_ws(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

static int ab_put(fparse *f, const char *s, size_t n) {
    if (!fp_grow(f, (void **)&f->ab, &f->abcap, f->abn + n, 1)) return 0;
    memcpy(f->ab + f->abn, s, n);
    f->abn += n;
    return 1;
}

/* attribute value bytes as gumbo stores them: CR LF and lone CR become LF */
static int ab_put_value(fparse *f, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r') {
            if (!ab_put(f, "\n", 1)) return 0;
            if (i + 1 < n && s[i + 1] == '\n') i++;
        } else {
            size_t j = i;
            while (j < n && s[j] != '\r') j++;
            if (!ab_put(f, s + i, j - i)) return 0;
            i = j - 1;
        }
    }
    return 1;
}

/* After a tag name: attributes up to and including '>'. keep: store the
 * attributes (names lower-cased, values decoded; first of a name wins) in
 * f->ab for t. Returns the position after '>', or SIZE_MAX when the input
 * ends inside the tag (gumbo drops the tag) or on giving up. */
static size_t tag_rest(fparse *f, const char *s, size_t n, size_t p, int keep, ftok *t) {
    enum { BEFORE_NAME, NAME, AFTER_NAME, BEFORE_VALUE, VALUE_DQ, VALUE_SQ, VALUE_UQ, AFTER_QUOTED, SELF_CLOSING };
    int st = BEFORE_NAME;
    size_t name_start = 0, base = f->abn;
    int drop = 0; /* duplicate attribute: value ignored */
    char nm[128];
    size_t nml = 0;
    t->attr_off = base;
    t->n_attr = 0;
    while (p < n) {
        unsigned char c = (unsigned char)s[p];
        switch (st) {
        case BEFORE_NAME:
        case AFTER_NAME:
            if (tag_ws(c)) {
                p++;
                continue;
            }
            if (c == '/') {
                st = SELF_CLOSING;
                p++;
                continue;
            }
            if (c == '>') goto done;
            if (st == AFTER_NAME && c == '=') {
                st = BEFORE_VALUE;
                p++;
                continue;
            }
            st = NAME;
            name_start = p;
            p++;
            continue;
        case NAME:
            while (!(tag_ws(c) || c == '/' || c == '=' || c == '>')) {
                if (++p == n) return SIZE_MAX;
                c = (unsigned char)s[p];
            }
            {
                /* finish the name */
                drop = 0;
                if (keep) {
                    /* gumbo (max_errors 0) leaves a duplicate's name in its
                     * buffer, so the next name without a value in between
                     * starts with it: nm holds that prefix */
                    size_t nl = p - name_start;
                    if (nml + nl >= sizeof nm) {
                        f->bail = __LINE__; /* very long attribute name on a kept tag */
                        return SIZE_MAX;
                    }
                    for (size_t i = 0; i < nl; i++) {
                        unsigned char d = (unsigned char)s[name_start + i];
                        nm[nml + i] = (char)(d >= 'A' && d <= 'Z' ? d + 32 : d);
                    }
                    nml += nl;
                    nm[nml] = 0;
                    size_t vl;
                    if (attr_get(f, base, f->abn - base, nm, &vl)) {
                        drop = 1;
                    } else {
                        if (!ab_put(f, nm, nml + 1) || !ab_put(f, "", 1)) return SIZE_MAX;
                        t->n_attr++;
                        nml = 0;
                    }
                }
                if (c == '=') {
                    st = BEFORE_VALUE;
                    p++;
                } else if (c == '/') {
                    st = SELF_CLOSING;
                    p++;
                } else if (c == '>') {
                    goto done;
                } else {
                    st = AFTER_NAME;
                    p++;
                }
                continue;
            }
        case BEFORE_VALUE:
            if (tag_ws(c)) {
                p++;
                continue;
            }
            if (c == '>') goto done;
            if (keep && !drop) f->abn--; /* reopen the empty value */
            nml = 0;                     /* the value resets gumbo's buffer */
            if (c == '"') {
                st = VALUE_DQ;
                p++;
            } else if (c == '\'') {
                st = VALUE_SQ;
                p++;
            } else {
                st = VALUE_UQ; /* this byte is the value's first */
            }
            continue;
        case VALUE_DQ:
        case VALUE_SQ:
        case VALUE_UQ: {
            int q = st == VALUE_DQ ? '"' : st == VALUE_SQ ? '\'' : '>';
            size_t e = p;
            if (st == VALUE_UQ) {
                while (e < n && !tag_ws((unsigned char)s[e]) && s[e] != '>' && s[e] != '&') e++;
            } else if (!keep) {
                /* character references cannot end a quoted value early */
                const char *qe = memchr(s + p, q, n - p);
                e = qe ? (size_t)(qe - s) : n;
            } else {
                while (e < n && s[e] != q && s[e] != '&') e++;
            }
            if (keep && !drop && !ab_put_value(f, s + p, e - p)) return SIZE_MAX;
            if (e >= n) return SIZE_MAX;
            if (s[e] == '&') {
                char out[8];
                size_t ol = 0, r = char_ref(f, s, n, e, 1, q, out, &ol);
                if (f->bail) return SIZE_MAX;
                if (r) {
                    if (keep && !drop && !ab_put(f, out, ol)) return SIZE_MAX;
                    p = e + r;
                } else {
                    if (keep && !drop && !ab_put(f, "&", 1)) return SIZE_MAX;
                    p = e + 1;
                }
                continue;
            }
            /* end of the value */
            if (keep && !drop && !ab_put(f, "", 1)) return SIZE_MAX;
            if (st == VALUE_UQ) {
                st = BEFORE_NAME;
                if (s[e] == '>') {
                    p = e;
                    goto done;
                }
                p = e + 1;
            } else {
                st = AFTER_QUOTED;
                p = e + 1;
            }
            continue;
        }
        case AFTER_QUOTED:
            if (tag_ws(c)) {
                st = BEFORE_NAME;
                p++;
            } else if (c == '/') {
                st = SELF_CLOSING;
                p++;
            } else if (c == '>') {
                goto done;
            } else {
                st = BEFORE_NAME;
            }
            continue;
        case SELF_CLOSING:
            if (c == '>') goto done;
            st = BEFORE_NAME;
            continue;
        }
    }
    return SIZE_MAX; /* end of input inside the tag */
done:
    t->attr_len = f->abn - base;
    return p + 1;
}

/* The comment starting at s[p] == '<' "<!--": the position after it. */
static size_t comment_end(const char *s, size_t n, size_t p) {
    size_t i = p + 4;
    if (i < n && s[i] == '>') return i + 1;
    if (i + 1 < n && s[i] == '-' && s[i + 1] == '>') return i + 2;
    for (; i + 2 < n; i++) {
        if (s[i] != '-' || s[i + 1] != '-') continue;
        /* comment end state: more dashes stay in it */
        size_t k = i + 2;
        while (k < n && s[k] == '-') k++;
        if (k < n && s[k] == '>') return k + 1;
        if (k + 1 < n && s[k] == '!' && s[k + 1] == '>') return k + 2;
        i = k - 1;
    }
    return n;
}

static int ci_eq(const char *s, size_t n, const char *lit) {
    return strlen(lit) == n && !strncasecmp(s, lit, n);
}

/* a quoted doctype identifier at s[*i]: its span, *i after the quote */
static int doctype_id(const char *s, size_t e, size_t *i, size_t *b, size_t *len) {
    if (*i >= e || (s[*i] != '"' && s[*i] != '\'')) return 0;
    const char *q = memchr(s + *i + 1, s[*i], e - *i - 1);
    if (!q) return 0;
    *b = *i + 1;
    *len = (size_t)(q - s) - *b;
    *i = (size_t)(q - s) + 1;
    return 1;
}

/* "<!DOCTYPE" at p: whether gumbo's document is in quirks mode (the
 * <table> rule depends on it); *end after the token. Doctypes whose public
 * identifier could equal an entry of gumbo's lists (those entries all end in
 * "//", bar "HTML" and "-/W3C/DTD HTML 4.0 Transitional/EN"), and forms
 * this reader does not take apart, are Q_UNKNOWN. */
static int doctype(const char *s, size_t n, size_t p, size_t *end) {
    const char *gt = memchr(s + p, '>', n - p);
    if (!gt) {
        *end = n;
        return Q_UNKNOWN; /* end of input in a doctype */
    }
    *end = (size_t)(gt - s) + 1;
    size_t i = p + 9, e = (size_t)(gt - s);
    while (i < e && tag_ws((unsigned char)s[i])) i++;
    if (i == e) return Q_UNKNOWN; /* no name */
    size_t n0 = i;
    while (i < e && !tag_ws((unsigned char)s[i])) i++;
    if (!ci_eq(s + n0, i - n0, "html")) return Q_QUIRKS;
    while (i < e && tag_ws((unsigned char)s[i])) i++;
    if (i == e) return Q_NO;
    size_t pb = 0, pl = 0, sb = 0, sl = 0;
    int has_pub = 0, has_sys = 0;
    if (e - i >= 6 && !strncasecmp(s + i, "PUBLIC", 6)) {
        i += 6;
        if (i >= e || !tag_ws((unsigned char)s[i])) return Q_UNKNOWN;
        while (i < e && tag_ws((unsigned char)s[i])) i++;
        if (!doctype_id(s, e, &i, &pb, &pl)) return Q_UNKNOWN;
        has_pub = 1;
        if (i < e) {
            if (!tag_ws((unsigned char)s[i])) return Q_UNKNOWN;
            while (i < e && tag_ws((unsigned char)s[i])) i++;
            if (i < e) {
                if (!doctype_id(s, e, &i, &sb, &sl)) return Q_UNKNOWN;
                has_sys = 1;
            }
        }
    } else if (e - i >= 6 && !strncasecmp(s + i, "SYSTEM", 6)) {
        i += 6;
        if (i >= e || !tag_ws((unsigned char)s[i])) return Q_UNKNOWN;
        while (i < e && tag_ws((unsigned char)s[i])) i++;
        if (!doctype_id(s, e, &i, &sb, &sl)) return Q_UNKNOWN;
        has_sys = 1;
    } else {
        return Q_UNKNOWN;
    }
    while (i < e && tag_ws((unsigned char)s[i])) i++;
    if (i != e) return Q_UNKNOWN;
    if (has_pub && ((pl >= 2 && s[pb + pl - 1] == '/' && s[pb + pl - 2] == '/') || ci_eq(s + pb, pl, "html") ||
                    ci_eq(s + pb, pl, "-/W3C/DTD HTML 4.0 Transitional/EN")))
        return Q_UNKNOWN;
    static const char ibm[] = "http://www.ibm.com/data/dtd/v11/ibmxhtml1-transitional.dtd";
    if (has_sys && sl == sizeof ibm - 1 && !memcmp(s + sb, ibm, sl)) return Q_QUIRKS;
    return Q_NO; /* no-quirks or limited-quirks: <table> closes a <p> either way */
}

/* which tags keep their attributes: a (href), formatting elements and nobr
 * (Noah's Ark compares attributes), input (type=hidden in tables) */
static int keeps_attrs(int tag) {
    return tag == T_A || HAS(tag, C_FMT) || tag == T_NOBR || tag == T_INPUT;
}

static void chars(fparse *f, const char *s, size_t n, int from_ref) {
    if (!n) return;
    ftok t = {.kind = K_CHARS, .s = s, .n = n, .from_ref = from_ref};
    tree(f, &t);
}

/* a tag at s[p] == '<' whose name starts at p + 1 (start) or p + 2 (end) */
static size_t tag(fparse *f, const char *s, size_t n, size_t p, int is_end) {
    size_t q = p + (is_end ? 2 : 1), e = q;
    while (e < n && !tag_ws((unsigned char)s[e]) && s[e] != '/' && s[e] != '>') e++;
    if (e >= n) return n;
    ftok t = {.kind = is_end ? K_END : K_START, .tag = tag_lookup(s + q, e - q)};
    size_t ab0 = f->abn;
    size_t r = tag_rest(f, s, n, e, !is_end && keeps_attrs(t.tag), &t);
    if (r == SIZE_MAX) {
        f->abn = ab0;
        return n; /* dropped */
    }
    tree(f, &t);
    return r;
}

/* An appropriate end tag for the raw text element at s[p] == '<'? */
static int raw_end(const fparse *f, const char *s, size_t n, size_t p) {
    if (p + 2 >= n || s[p + 1] != '/') return 0;
    size_t i = p + 2;
    while (i < n && is_alpha_c((unsigned char)s[i])) i++;
    if (i >= n || i == p + 2) return 0;
    if (!(tag_ws((unsigned char)s[i]) || s[i] == '/' || s[i] == '>')) return 0;
    return tag_lookup(s + p + 2, i - p - 2) == f->raw_tag;
}

/* "<script" or "</script" followed by whitespace, '/' or '>' at s[p] == '<' */
static int script_tag_at(const char *s, size_t n, size_t p, int end) {
    size_t i = p + 1 + (size_t)end;
    if (end && (i > n || s[p + 1] != '/')) return 0;
    if (i + 6 >= n || strncasecmp(s + i, "script", 6)) return 0;
    unsigned char c = (unsigned char)s[i + 6];
    return tag_ws(c) || c == '/' || c == '>';
}

/* Script data from p: the position of its end tag's '<' (or n). Follows
 * the escaped states ("<!--" ... "-->"); gives up on the double-escaped
 * state ("<!--<script>"), where "</script>" does not end the element. */
static size_t script_end(fparse *f, const char *s, size_t n, size_t p) {
    int escaped = 0, dashes = 0;
    for (size_t i = p; i < n; i++) {
        char c = s[i];
        if (c == '<') {
            dashes = 0;
            if (script_tag_at(s, n, i, 1)) return i;
            if (!escaped) {
                if (i + 3 < n && s[i + 1] == '!' && s[i + 2] == '-' && s[i + 3] == '-') {
                    escaped = 1;
                    dashes = 2;
                    i += 3;
                }
            } else if (script_tag_at(s, n, i, 0)) {
                f->bail = __LINE__;
                return n;
            }
        } else if (!escaped) {
            continue;
        } else if (c == '-') {
            dashes++;
        } else {
            if (c == '>' && dashes >= 2) escaped = 0;
            dashes = 0;
        }
    }
    return n;
}

static const unsigned char *lt_amp(const unsigned char *p, const unsigned char *e) {
#ifdef __SSE2__
    const __m128i lt = _mm_set1_epi8('<'), amp = _mm_set1_epi8('&');
    for (; e - p >= 16; p += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        int m = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, lt), _mm_cmpeq_epi8(v, amp)));
        if (m) return p + __builtin_ctz((unsigned)m);
    }
#endif
    while (p < e && *p != '<' && *p != '&') p++;
    return p;
}

static void tokenize(fparse *f, const char *s, size_t n) {
    size_t p = 0;
    while (p < n && !f->bail && !f->w.st) {
        if (f->tstate == TS_PLAINTEXT) {
            chars(f, s + p, n - p, 0);
            p = n;
            break;
        }
        if (f->tstate == TS_SCRIPT || f->tstate == TS_RAWTEXT) {
            size_t q = f->tstate == TS_SCRIPT ? script_end(f, s, n, p) : p;
            if (f->bail) return;
            while (f->tstate == TS_RAWTEXT) {
                const char *lt = memchr(s + q, '<', n - q);
                if (!lt) {
                    q = n;
                    break;
                }
                q = (size_t)(lt - s);
                if (raw_end(f, s, n, q)) break;
                q++;
            }
            chars(f, s + p, q - p, 0);
            if (q >= n) {
                p = n;
                break;
            }
            f->tstate = TS_DATA;
            p = tag(f, s, n, q, 1);
            continue;
        }
        const unsigned char *u = (const unsigned char *)s;
        size_t q = (size_t)(lt_amp(u + p, u + n) - u);
        chars(f, s + p, q - p, 0);
        if (q >= n || f->bail || f->w.st) {
            p = n;
            break;
        }
        if (s[q] == '&') {
            char out[8];
            size_t ol = 0, r = char_ref(f, s, n, q, 0, ' ', out, &ol);
            if (f->bail) return;
            if (r) {
                chars(f, out, ol, 1);
                p = q + r;
            } else {
                chars(f, "&", 1, 0);
                p = q + 1;
            }
            continue;
        }
        if (f->tstate == TS_RCDATA) {
            if (raw_end(f, s, n, q)) {
                f->tstate = TS_DATA;
                p = tag(f, s, n, q, 1);
            } else {
                chars(f, "<", 1, 0);
                p = q + 1;
            }
            continue;
        }
        /* data state '<' */
        if (q + 1 >= n) {
            chars(f, "<", 1, 0);
            p = n;
            break;
        }
        unsigned char c = u[q + 1];
        if (c == '!') {
            ftok t = {.kind = K_COMMENT};
            if (q + 3 < n && s[q + 2] == '-' && s[q + 3] == '-') {
                p = comment_end(s, n, q);
            } else if (q + 9 <= n && !strncasecmp(s + q + 2, "DOCTYPE", 7)) {
                t.kind = K_DOCTYPE;
                t.quirks = doctype(s, n, q, &p);
            } else {
                /* bogus comment; "<![CDATA[" too, as the current node is
                 * never foreign here */
                const char *gt = memchr(s + q + 2, '>', n - q - 2);
                p = gt ? (size_t)(gt - s) + 1 : n;
            }
            tree(f, &t);
        } else if (c == '/') {
            if (q + 2 >= n) {
                chars(f, "</", 2, 0);
                p = n;
            } else if (s[q + 2] == '>') {
                p = q + 3;
            } else if (is_alpha_c((unsigned char)s[q + 2])) {
                p = tag(f, s, n, q, 1);
            } else {
                const char *gt = memchr(s + q + 2, '>', n - q - 2);
                p = gt ? (size_t)(gt - s) + 1 : n;
                ftok t = {.kind = K_COMMENT};
                tree(f, &t);
            }
        } else if (c == '?') {
            const char *gt = memchr(s + q + 1, '>', n - q - 1);
            p = gt ? (size_t)(gt - s) + 1 : n;
            ftok t = {.kind = K_COMMENT};
            tree(f, &t);
        } else if (is_alpha_c(c)) {
            p = tag(f, s, n, q, 0);
        } else {
            chars(f, "<", 1, 0);
            p = q + 1;
        }
    }
    if (f->bail || f->w.st) return;
    ftok t = {.kind = K_EOF};
    tree(f, &t);
    flush(f);
    while (f->ns && !f->w.st) ev_pop(f);
}

/* gumbo's input stream turns control characters other than tab, LF, FF and
 * CR (C0, DEL, C1) and noncharacters into U+FFFD in every tokenizer state.
 * Returns 0 for input this code leaves to gumbo (NUL, which each state
 * treats its own way; invalid UTF-8), 1 for clean input, 2 when out (if
 * not NULL) must first get those replacements. */
static int clean_input(const unsigned char *s, size_t n, pl_buf *out) {
    static const unsigned char bad[128] = {
        2, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        [127] = 1,
    };
    size_t i = 0, done = 0;
    int replaced = 0;
    while (i < n) {
#ifdef __SSE2__
        /* 16 bytes of printable ASCII, tab, LF, FF or CR at a time (bytes
         * >= 0x80 compare below 0x20 as signed and take the slow way) */
        const __m128i sp = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7F), tab = _mm_set1_epi8('\t'),
                      lf = _mm_set1_epi8('\n'), ff = _mm_set1_epi8('\f'), cr = _mm_set1_epi8('\r');
        while (n - i >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            __m128i ok = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, tab), _mm_cmpeq_epi8(v, lf)),
                                      _mm_or_si128(_mm_cmpeq_epi8(v, ff), _mm_cmpeq_epi8(v, cr)));
            __m128i no = _mm_or_si128(_mm_andnot_si128(ok, _mm_cmplt_epi8(v, sp)), _mm_cmpeq_epi8(v, del));
            if (_mm_movemask_epi8(no)) break;
            i += 16;
        }
        if (i >= n) break;
#endif
        unsigned char c = s[i];
        size_t len = 1;
        int repl = 0;
        if (c < 0x80) {
            if (bad[c] == 2) return 0;
            repl = bad[c];
        } else {
            uint32_t cp;
            if (c >= 0xC2 && c <= 0xDF) {
                len = 2;
                cp = c & 0x1F;
            } else if (c >= 0xE0 && c <= 0xEF) {
                len = 3;
                cp = c & 0x0F;
            } else if (c >= 0xF0 && c <= 0xF4) {
                len = 4;
                cp = c & 0x07;
            } else {
                return 0;
            }
            if (i + len > n) return 0;
            for (size_t k = 1; k < len; k++) {
                unsigned char d = s[i + k];
                if ((d & 0xC0) != 0x80) return 0;
                cp = (cp << 6) | (d & 0x3F);
            }
            if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
            if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
            repl = cp <= 0x9F || (cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE;
        }
        if (repl) {
            if (!out) return 0;
            if (pl_buf_append(out, (const char *)s + done, i - done) || pl_buf_append(out, "\xEF\xBF\xBD", 3))
                return 0;
            done = i + len;
            replaced = 1;
        }
        i += len;
    }
    if (!replaced) return 1;
    if (pl_buf_append(out, (const char *)s + done, n - done)) return 0;
    return 2;
}

/* trim trailing newlines and spaces and terminate the text */
static void finish_text(pl_html_doc *doc, pl_status *st) {
    if (!*st) *st = pl_buf_append(&doc->text, "", 0);
    if (!*st && !doc->text.data) *st = pl_buf_reserve(&doc->text, 1);
    if (!*st) {
        while (doc->text.len && (doc->text.data[doc->text.len - 1] == '\n' || doc->text.data[doc->text.len - 1] == ' '))
            doc->text.len--;
        doc->text.data[doc->text.len] = 0;
    }
}

int pl_html_fast_text(const char *html, size_t n, pl_html_doc *doc, pl_status *st) {
    memset(doc, 0, sizeof *doc);
    *st = PL_OK;
    pl_buf clean = {0};
    int ci = clean_input((const unsigned char *)html, n, &clean);
    if (!ci) {
#ifdef PL_HTML_FAST_TRACE
        fprintf(stderr, "html fast path: gumbo for the input bytes\n");
#endif
        pl_buf_free(&clean);
        return 0;
    }
    if (ci == 2) {
        html = clean.data;
        n = clean.len;
    }
    fparse f;
    memset(&f, 0, sizeof f);
    f.w.doc = doc;
    f.w.line_start = 1;
    f.form_uid = -1;
    f.quirks = Q_UNKNOWN;
    tokenize(&f, html, n);
    free(f.stack);
    free(f.rec);
    free(f.ab);
    free(f.pt);
    pl_buf_free(&clean);
    pl_status s = f.w.st;
    if (!s && f.bail) {
#ifdef PL_HTML_FAST_TRACE
        fprintf(stderr, "html fast path: gumbo from html.c:%d\n", f.bail);
#endif
        pl_html_doc_free(doc);
        return 0;
    }
    finish_text(doc, &s);
    if (s) {
        pl_html_doc_free(doc);
        *st = s;
        return 0;
    }
    return 1;
}

pl_status pl_html_to_text(const char *html, size_t n, pl_html_doc *doc) {
    if (pl_html_fast) {
        pl_status st;
        if (pl_html_fast_text(html, n, doc, &st)) return PL_OK;
        if (st) return st;
    }
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
    finish_text(doc, &w.st);
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
