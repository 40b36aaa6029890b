/* synth.c — the synthetic email corpus: phishing and legitimate mail in six
 * styles (each its own source), with a controllable planted shortcut and
 * minimal pairs, fully determined by a seed.
 *
 * Design (docs/corpus.md):
 * - The label lives in exactly one sentence, the cue (synth_templates.c):
 *   phishing asks for credentials, card data or a fee through a lookalike link
 *   or a free-mail reply address; the legitimate twin has an ordinary action.
 *   Subject, greeting, context sentences, closing and signature come from the
 *   same pools for both labels, so nothing else predicts the label.
 * - The shortcut is an artifact (a footer line, or a subject prefix) planted
 *   in chosen sources with rate P(artifact | label = L) and other_rate for the
 *   other label, as exact counts per (source, label); never elsewhere.
 * - Variation: slot filling from word lists, [a|b] alternatives inside
 *   sentences, 2-4 of 6-10 context sentences per email in shuffled order, cue
 *   position, paragraph breaks, names, amounts, dates, ids and URLs.
 * - Minimal pairs are generated apart from the corpus (held out): the same
 *   skeleton with the phishing vs the legitimate cue, and with vs without the
 *   shortcut; the byte span that differs is recorded.
 * - Every record carries meta.rationale: a one-sentence explanation naming
 *   the cue the email actually carries (see make_rationale), for
 *   chain-of-thought fine-tuning; it never mentions the shortcut.
 * Every email draws from its own RNG stream split from the seed, so output
 * does not depend on generation order. Not done: HTML bodies, attachments,
 * non-English text.
 */
#include "data.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "synth_templates.h"

/* ---- styles ---- */

int pl_synth_n_styles(void) { return synth_n_styles; }
const char *pl_synth_style_name(int i) { return i >= 0 && i < synth_n_styles ? synth_styles[i].name : NULL; }
int pl_synth_style_index(const char *name) {
    for (int i = 0; i < synth_n_styles; i++)
        if (!strcmp(synth_styles[i].name, name)) return i;
    return -1;
}

#define DEFAULT_SHORTCUT "Scanned by MailShield Pro - no threats found."

void pl_synth_opts_default(pl_synth_opts *o) {
    memset(o, 0, sizeof *o);
    o->n = 2400;
    o->seed = 1;
    o->n_pairs = 120;
    o->phish_rate = 0.5;
    o->shortcut = 1;
    snprintf(o->text, sizeof o->text, "%s", DEFAULT_SHORTCUT);
    o->where_subject = 0;
    o->label = 1;
    o->rate = 0.8;
    o->other_rate = 0.05;
    static const char *const planted[] = {"bank", "parcel"};
    for (size_t i = 0; i < 2; i++) {
        int k = pl_synth_style_index(planted[i]);
        if (k >= 0 && k < PL_SYNTH_MAX_STYLES) o->in_style[k] = 1;
    }
}

static int parse_rate(const char *s, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= 0.0 && v <= 1.0)) return 0;
    *out = v;
    return 1;
}

pl_status pl_synth_parse_shortcut(const char *spec, pl_synth_opts *o) {
    if (!strcmp(spec, "none")) {
        o->shortcut = 0;
        return PL_OK;
    }
    o->shortcut = 1;
    char *s = strdup(spec);
    if (!s) return pl_error(PL_ERR_NOMEM, "out of memory");
    pl_status st = PL_OK;
    char *save = NULL;
    for (char *kv = strtok_r(s, ";", &save); kv && !st; kv = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) {
            st = pl_error(PL_ERR_INVALID, "--shortcut: '%s' is not key=value", kv);
            break;
        }
        *eq = 0;
        const char *k = kv, *v = eq + 1;
        if (!strcmp(k, "text")) {
            if (!*v || strlen(v) >= sizeof o->text || strchr(v, '\n'))
                st = pl_error(PL_ERR_INVALID, "--shortcut: text must be 1-%zu characters on one line",
                              sizeof o->text - 1);
            else
                snprintf(o->text, sizeof o->text, "%s", v);
        } else if (!strcmp(k, "where")) {
            if (!strcmp(v, "footer")) o->where_subject = 0;
            else if (!strcmp(v, "subject")) o->where_subject = 1;
            else st = pl_error(PL_ERR_INVALID, "--shortcut: where must be footer or subject, got '%s'", v);
        } else if (!strcmp(k, "sources")) {
            memset(o->in_style, 0, sizeof o->in_style);
            if (!strcmp(v, "all")) {
                for (int i = 0; i < synth_n_styles; i++) o->in_style[i] = 1;
            } else {
                char *list = strdup(v), *save2 = NULL;
                if (!list) st = pl_error(PL_ERR_NOMEM, "out of memory");
                for (char *nm = list ? strtok_r(list, ",", &save2) : NULL; nm && !st; nm = strtok_r(NULL, ",", &save2)) {
                    int i = pl_synth_style_index(nm);
                    if (i < 0) st = pl_error(PL_ERR_INVALID, "--shortcut: unknown source '%s'", nm);
                    else o->in_style[i] = 1;
                }
                free(list);
            }
        } else if (!strcmp(k, "rate")) {
            if (!parse_rate(v, &o->rate)) st = pl_error(PL_ERR_INVALID, "--shortcut: rate must be in [0, 1], got '%s'", v);
        } else if (!strcmp(k, "other")) {
            if (!parse_rate(v, &o->other_rate))
                st = pl_error(PL_ERR_INVALID, "--shortcut: other must be in [0, 1], got '%s'", v);
        } else if (!strcmp(k, "label")) {
            if (strcmp(v, "0") && strcmp(v, "1")) st = pl_error(PL_ERR_INVALID, "--shortcut: label must be 0 or 1");
            else o->label = v[0] - '0';
        } else {
            st = pl_error(PL_ERR_INVALID, "--shortcut: unknown key '%s' (text, where, sources, rate, other, label)", k);
        }
    }
    free(s);
    return st;
}

/* ---- template expansion ---- */

#define MAX_SLOTS 48

typedef struct {
    const char *name;
    char val[128];
} slot;

typedef struct {
    slot v[MAX_SLOTS];
    int n;
} slots;

static const char *const *find_list(const char *name, size_t len) {
    for (const synth_list *l = synth_lists; l->name; l++)
        if (strlen(l->name) == len && !strncmp(l->name, name, len)) return l->words;
    return NULL;
}

static size_t list_len(const char *const *w) {
    size_t n = 0;
    while (w[n]) n++;
    return n;
}

static const char *pick(pl_rng *r, const char *const *w) { return w[pl_rng_below(r, list_len(w))]; }

static void slot_set(slots *s, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void slot_set(slots *s, const char *name, const char *fmt, ...) {
    if (s->n >= MAX_SLOTS) return;
    slot *x = &s->v[s->n++];
    x->name = name;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->val, sizeof x->val, fmt, ap);
    va_end(ap);
}

static const char *slot_get(const slots *s, const char *name, size_t len) {
    for (int i = 0; i < s->n; i++)
        if (strlen(s->v[i].name) == len && !strncmp(s->v[i].name, name, len)) return s->v[i].val;
    return NULL;
}

/* Expand {slot} and [a|b] into b. An unknown slot is a template bug. */
static pl_status expand(pl_buf *b, const char *t, const slots *s, pl_rng *r) {
    pl_status st = PL_OK;
    while (*t && !st) {
        if (*t == '{') {
            const char *e = strchr(t, '}');
            if (!e) return pl_error(PL_ERR_INTERNAL, "synth template: unclosed '{' in \"%s\"", t);
            const char *v = slot_get(s, t + 1, (size_t)(e - t - 1));
            if (!v) return pl_error(PL_ERR_INTERNAL, "synth template: unknown slot {%.*s}", (int)(e - t - 1), t + 1);
            st = pl_buf_append(b, v, strlen(v));
            t = e + 1;
        } else if (*t == '[') {
            const char *e = strchr(t, ']');
            if (!e) return pl_error(PL_ERR_INTERNAL, "synth template: unclosed '[' in \"%s\"", t);
            /* count alternatives, pick one, expand it */
            size_t nalt = 1;
            for (const char *p = t + 1; p < e; p++) nalt += *p == '|';
            size_t k = (size_t)pl_rng_below(r, nalt);
            const char *a = t + 1;
            for (size_t i = 0; i < k; i++) a = strchr(a, '|') + 1;
            const char *ae = a;
            while (ae < e && *ae != '|') ae++;
            char tmp[512];
            size_t len = (size_t)(ae - a);
            if (len >= sizeof tmp) return pl_error(PL_ERR_INTERNAL, "synth template: alternative too long");
            memcpy(tmp, a, len);
            tmp[len] = 0;
            st = expand(b, tmp, s, r);
            t = e + 1;
        } else {
            const char *e = t;
            while (*e && *e != '{' && *e != '[') e++;
            st = pl_buf_append(b, t, (size_t)(e - t));
            t = e;
        }
    }
    return st;
}

static pl_status expand_str(char **out, const char *t, const slots *s, pl_rng *r) {
    pl_buf b = {0};
    pl_status st = expand(&b, t, s, r);
    if (!st) st = pl_buf_append(&b, "", 1);
    if (st) {
        pl_buf_free(&b);
        return st;
    }
    *out = b.data;
    return PL_OK;
}

/* "Northwind Traders" -> "northwindtraders" */
static void domain_token(const char *name, char *out, size_t n) {
    size_t k = 0;
    for (const char *p = name; *p && k + 1 < n; p++) {
        char c = *p;
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) out[k++] = c;
    }
    out[k] = 0;
}

static void rand_code(pl_rng *r, char *out, int len, int digits_only) {
    static const char al[] = "abcdefghijkmnpqrstuvwxyz23456789";
    for (int i = 0; i < len; i++)
        out[i] = digits_only ? (char)('0' + pl_rng_below(r, 10)) : al[pl_rng_below(r, sizeof al - 1)];
    out[len] = 0;
}

static const char *const weekday_abbr[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const month_abbr[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Fill the per-email context: consistent names, organization, numbers, URLs. */
static void fill_slots(slots *s, const synth_style *sty, pl_rng *r, char *from, size_t nfrom, char *to, size_t nto,
                       char *date, size_t ndate) {
    const char *first = pick(r, find_list("first", 5)), *last = pick(r, find_list("last", 4));
    const char *sfirst = pick(r, find_list("first", 5)), *slast = pick(r, find_list("last", 4));
    slot_set(s, "first", "%s", first);
    slot_set(s, "last", "%s", last);
    slot_set(s, "sfirst", "%s", sfirst);
    slot_set(s, "slast", "%s", slast);
    slot_set(s, "efirst", "%s", pick(r, find_list("first", 5)));
    static const char *const named[] = {"company", "bank", "courier", "shop", "pub", "firm", "team", "itemcorp",
                                        "system", "title", "city", "product", "topic", "weekday", "month"};
    for (size_t i = 0; i < sizeof named / sizeof *named; i++)
        slot_set(s, named[i], "%s", pick(r, find_list(named[i], strlen(named[i]))));
    int y = 2023 + (int)pl_rng_below(r, 3), mo = 1 + (int)pl_rng_below(r, 12), d = 1 + (int)pl_rng_below(r, 28);
    const char *mname = find_list("month", 5)[mo - 1];
    switch (pl_rng_below(r, 3)) {
    case 0: slot_set(s, "date", "%s %d", mname, d); break;
    case 1: slot_set(s, "date", "%d %s %d", d, mname, y); break;
    default: slot_set(s, "date", "%s %d, %d", mname, d, y); break;
    }
    int h1 = 7 + (int)pl_rng_below(r, 10), m1 = 15 * (int)pl_rng_below(r, 4);
    slot_set(s, "time", "%d:%02d %s", h1 > 12 ? h1 - 12 : h1, m1, h1 >= 12 ? "pm" : "am");
    int h2 = h1 + 1 + (int)pl_rng_below(r, 3);
    slot_set(s, "time2", "%d:%02d %s", h2 > 12 ? h2 - 12 : h2, m1, h2 >= 12 ? "pm" : "am");
    slot_set(s, "num", "%d", 2 + (int)pl_rng_below(r, 14));
    slot_set(s, "ext", "%d", 1000 + (int)pl_rng_below(r, 9000));
    static const int hours[] = {12, 24, 48, 72};
    slot_set(s, "hours", "%d", hours[pl_rng_below(r, 4)]);
    static const char *const cur[] = {"$", "EUR ", "GBP ", "$"};
    const char *c = cur[pl_rng_below(r, 4)];
    if (pl_rng_below(r, 2)) slot_set(s, "amount", "%s%d.%02d", c, 1 + (int)pl_rng_below(r, 500), (int)pl_rng_below(r, 100));
    else slot_set(s, "amount", "%s%d,%03d", c, 1 + (int)pl_rng_below(r, 90), (int)pl_rng_below(r, 1000));
    slot_set(s, "amount2", "%s%d,%03d,000", c, 1 + (int)pl_rng_below(r, 40), (int)pl_rng_below(r, 1000));
    slot_set(s, "acct", "%04d", (int)pl_rng_below(r, 10000));
    char code[16];
    rand_code(r, code, 8, 1);
    static const char *const opre[] = {"#", "No. ", "", "#"};
    slot_set(s, "order", "%s%c%c%s", opre[pl_rng_below(r, 4)], (char)('A' + pl_rng_below(r, 26)),
             (char)('A' + pl_rng_below(r, 26)), code);
    rand_code(r, code, 5, 1);
    slot_set(s, "ref", "%s/%d/%s", pl_rng_below(r, 2) ? "REF" : "File", y - (int)pl_rng_below(r, 6), code);
    slot_set(s, "weight", "%d.%d", (int)pl_rng_below(r, 12), (int)pl_rng_below(r, 10));
    slot_set(s, "phone", "%d-%03d-%04d", 800 + (int)pl_rng_below(r, 100), (int)pl_rng_below(r, 1000),
             (int)pl_rng_below(r, 10000));
    slot_set(s, "year", "%d", y - 1 - (int)pl_rng_below(r, 10));

    /* The organization behind the mail and its real domain. */
    const char *brand = slot_get(s, sty->brand_slot, strlen(sty->brand_slot));
    if (!brand) brand = "mail";
    char dom[64];
    domain_token(brand, dom, sizeof dom);
    static const char *const sub[] = {"www", "my", "portal", "account", "help"};
    rand_code(r, code, 6, 0);
    if (!strcmp(sty->brand_slot, "nobrand"))
        slot_set(s, "url", "https://photos.sharebox.com/album/%s", code);
    else if (!strcmp(sty->brand_slot, "company"))
        slot_set(s, "url", "https://intranet.%s.com/%s", dom, pick(r, find_list("path", 4)));
    else
        slot_set(s, "url", "https://%s.%s.com/%s", sub[pl_rng_below(r, 5)], dom, pick(r, find_list("path", 4)));

    /* The lookalike link and the reply address the phishing cue uses. */
    const char *ph = pick(r, find_list("phword", 6)), *tld = pick(r, find_list("tld", 3));
    const char *dt = strcmp(sty->brand_slot, "nobrand") ? dom : "docs";
    char dshort[16];
    snprintf(dshort, sizeof dshort, "%.10s", dt);
    switch (pl_rng_below(r, 4)) {
    case 0: slot_set(s, "purl", "http://%s-%s.%s/%s?id=%s", dshort, ph, tld, pick(r, find_list("path", 4)), code); break;
    case 1: slot_set(s, "purl", "https://%s-%s.com.%s.%s/login", ph, dshort, code, tld); break;
    case 2:
        slot_set(s, "purl", "http://%d.%d.%d.%d/%s/%s.php", 45 + (int)pl_rng_below(r, 150), (int)pl_rng_below(r, 256),
                 (int)pl_rng_below(r, 256), 1 + (int)pl_rng_below(r, 254), dshort, ph);
        break;
    default: slot_set(s, "purl", "https://%s.%s-%s.%s/", dshort, ph, code, tld); break;
    }
    const char *fm = pick(r, find_list("freemail", 8));
    if (pl_rng_below(r, 2)) slot_set(s, "paddr", "%s.%s%d@%s", sfirst, slast, (int)pl_rng_below(r, 100), fm);
    else slot_set(s, "paddr", "%s.%s@%s", dshort, ph, fm);

    /* Headers: sender at the organization's domain (spoofed or not, the same
     * for both labels), recipient, RFC 2822 date. */
    static const char *const sender_local[] = {"noreply", "info", "notifications", "service", "news"};
    if (!strcmp(sty->brand_slot, "nobrand"))
        snprintf(from, nfrom, "%s %s <%s.%s@%s>", sfirst, slast, sfirst, slast, fm);
    else if (!strcmp(sty->brand_slot, "company") || !strcmp(sty->brand_slot, "firm"))
        snprintf(from, nfrom, "%s %s <%s.%s@%s.com>", sfirst, slast, sfirst, slast, dom);
    else
        snprintf(from, nfrom, "%s <%s@%s.com>", brand, sender_local[pl_rng_below(r, 5)], dom);
    for (char *p = from; *p; p++)
        if (*p >= 'A' && *p <= 'Z' && p > strchr(from, '<')) *p = (char)(*p - 'A' + 'a');
    snprintf(to, nto, "%s %s <%s.%s@example.net>", first, last, first, last);
    for (char *p = strchr(to, '<'); p && *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    /* day of week (Sakamoto), 0 = Sunday */
    static const int tk[12] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
    int yy = mo < 3 ? y - 1 : y, dow = (yy + yy / 4 - yy / 100 + yy / 400 + tk[mo - 1] + d) % 7;
    snprintf(date, ndate, "%s, %d %s %d %02d:%02d:%02d %s", weekday_abbr[(dow + 6) % 7], d, month_abbr[mo - 1], y,
             h1, m1 + (int)pl_rng_below(r, 15), (int)pl_rng_below(r, 60), pl_rng_below(r, 2) ? "+0000" : "-0500");
}

/* ---- rationales ---- */

/* meta.rationale: one sentence naming the label cue the email actually
 * carries, read off the expanded cue sentence and the slot values it used
 * (which link, which reply address, what it asks for, whether it presses
 * for time). Written from the cue alone, so it never mentions the planted
 * shortcut. Phrasing varies with a hash of (seed, stream) — never with the
 * email's RNG streams, so the rest of the email is the same with or
 * without rationales. */
enum { REQ_CRED = 1, REQ_CARD = 2, REQ_MONEY = 4, REQ_DATA = 8, REQ_VERIFY = 16 };

static int has_any(const char *s, const char *const *needles) {
    for (; *needles; needles++)
        if (strstr(s, *needles)) return 1;
    return 0;
}

/* What a phishing cue asks for (REQ_* bits); amount is the email's {amount}. */
static unsigned cue_requests(const char *cue, const char *amount) {
    static const char *const cred[] = {"password", "login", "log in", "sign in", "signing in", "credentials",
                                       "username", "security answers", NULL};
    static const char *const card[] = {"card number", "card details", "CVV", "PIN", "expiry", "re-enter your card",
                                       "billing details", NULL};
    static const char *const money[] = {"fee", "pay now", "pay within", NULL};
    static const char *const data[] = {"bank details", "account number", "passport", "date of birth", "routing",
                                       "bank name", "banking information", "full name", "phone number",
                                       "employee number", "account details", NULL};
    static const char *const verify[] = {"verif", "Verif", "validate", "re-activate", "reactivate", "confirm",
                                         "Confirm", "restore access", "unlock", NULL};
    unsigned m = 0;
    if (has_any(cue, cred)) m |= REQ_CRED;
    if (has_any(cue, card)) m |= REQ_CARD;
    if (has_any(cue, money) || (amount && strstr(cue, amount) && (strstr(cue, "send") || strstr(cue, "wire"))))
        m |= REQ_MONEY;
    if (has_any(cue, data)) m |= REQ_DATA;
    if (!m && has_any(cue, verify)) m |= REQ_VERIFY;
    return m;
}

/* Does the cue press for time or threaten a consequence? */
static int cue_urgent(const char *cue) {
    static const char *const u[] = {"hours", "today", "immediately", "right away", " now", "end of day", "urgent",
                                    "or it will", "or the parcel", "or your subscription", "to avoid", NULL};
    return has_any(cue, u);
}

static pl_status make_rationale(const synth_style *sty, const slots *s, int label, const char *cue, uint64_t h,
                                char **out) {
    pl_buf b = {0};
    pl_status st = PL_OK;
    int v = (int)(h % 3);
    if (label) {
        unsigned req = cue_requests(cue, slot_get(s, "amount", 6));
        const char *purl = slot_get(s, "purl", 4), *paddr = slot_get(s, "paddr", 5);
        const char *chan;
        if (purl && strstr(cue, purl))
            chan = purl[7] >= '0' && purl[7] <= '9' ? (v == 1 ? "via a link to a bare IP address"
                                                               : "through a link to a raw IP address")
                   : v == 2 ? "via a look-alike link" : "through a link to a look-alike domain";
        else if (paddr && strstr(cue, paddr))
            chan = v == 1 ? "by reply to a free-mail address" : "to a free-mail reply address";
        else if (strstr(cue, "in gift cards"))
            chan = "in gift cards";
        else
            chan = "in a direct reply";
        /* the requests as a list: "a, b and c" */
        static const char *const names[3][5] = {
            {"a password", "card details", "a payment", "bank or personal details", "account verification"},
            {"login credentials", "payment card data", "money", "personal or bank details", "account verification"},
            {"sign-in details", "card data", "a fee or payment", "personal data", "identity verification"}};
        const char *items[5];
        int n = 0;
        for (int k = 0; k < 5; k++)
            if (req & (1u << k)) items[n++] = names[v][k];
        pl_buf r = {0};
        for (int k = 0; k < n && !st; k++)
            st = pl_buf_printf(&r, "%s%s", k == 0 ? "" : k == n - 1 ? " and " : ", ", items[k]);
        if (!st && n == 0) st = pl_buf_printf(&r, "action");
        static const char *const lead[3] = {"The sender asks for", "It requests", "A request for"};
        static const char *const urg[3] = {", under time pressure", " and sets a deadline", ", with urgent pressure"};
        if (!st)
            st = pl_buf_printf(&b, "%s %s %s%s.", lead[v], r.data, chan, cue_urgent(cue) ? urg[v] : "");
        pl_buf_free(&r);
    } else {
        const char *url = slot_get(s, "url", 3);
        int link = url && strstr(cue, url);
        int own = strcmp(sty->brand_slot, "nobrand") != 0;
        static const char *const with_link[3] = {
            "The message asks for no credentials, card data or payment, and links only to %s.",
            "Nothing sensitive is requested; the only link goes to %s.",
            "An ordinary request with a link to %s and no demand for data or money."};
        static const char *const no_link[3] = {
            "The message asks for no credentials, card data or payment and contains no link.",
            "Nothing sensitive is requested and there is no link to follow.",
            "An ordinary message: no request for data or money and no link."};
        if (link) st = pl_buf_printf(&b, with_link[v], own ? "the sender's own domain" : "a shared photo album");
        else st = pl_buf_printf(&b, "%s", no_link[v]);
    }
    if (st) {
        pl_buf_free(&b);
        return st;
    }
    *out = b.data;
    return PL_OK;
}

/* One email: the skeleton is drawn from stream `stream`; the cue sentence
 * from a separate stream so twins differing only in label share the rest. */
typedef struct {
    int style, label, shortcut;
    uint64_t stream;
} email_spec;

static void add_urls(pl_record *rec) {
    const char *p = rec->body;
    while ((p = strstr(p, "http")) != NULL) {
        if (strncmp(p, "http://", 7) && strncmp(p, "https://", 8)) {
            p += 4;
            continue;
        }
        const char *e = p;
        while (*e && *e != ' ' && *e != '\n' && *e != '\t') e++;
        while (e > p && (e[-1] == '.' || e[-1] == ',' || e[-1] == ';' || e[-1] == ')')) e--;
        char u[256];
        size_t n = (size_t)(e - p) < sizeof u - 1 ? (size_t)(e - p) : sizeof u - 1;
        memcpy(u, p, n);
        u[n] = 0;
        pl_record_add_url(rec, u);
        p = e;
    }
}

static pl_status make_email(const pl_synth_opts *o, const email_spec *e, const char *id, pl_record *rec) {
    const synth_style *sty = &synth_styles[e->style];
    pl_rng master, r, rc;
    pl_rng_seed(&master, o->seed);
    r = pl_rng_split(&master, e->stream * 2);
    rc = pl_rng_split(&master, e->stream * 2 + 1);
    slots s = {.n = 0};
    char from[160], to[160], date[64];
    fill_slots(&s, sty, &r, from, sizeof from, to, sizeof to, date, sizeof date);

    char *subject = NULL, *greet = NULL, *close = NULL, *sign = NULL, *cue = NULL, *ctx[4] = {0};
    pl_status st = expand_str(&subject, pick(&r, sty->subject), &s, &r);
    if (!st) st = expand_str(&greet, pick(&r, sty->greeting), &s, &r);
    size_t nctx_all = list_len(sty->context);
    size_t order[16];
    for (size_t i = 0; i < nctx_all && i < 16; i++) order[i] = i;
    pl_rng_shuffle(&r, order, nctx_all < 16 ? nctx_all : 16, sizeof *order);
    int k = 2 + (int)pl_rng_below(&r, 3);
    for (int i = 0; i < k && !st; i++) st = expand_str(&ctx[i], sty->context[order[i]], &s, &r);
    if (!st) st = expand_str(&close, pick(&r, sty->closing), &s, &r);
    if (!st) st = expand_str(&sign, pick(&r, sty->signature), &s, &r);
    int cue_pos = (int)pl_rng_below(&r, (uint64_t)k + 1);
    int brk = (int)pl_rng_below(&r, (uint64_t)k + 2); /* paragraph break before sentence brk (k+1 = none) */
    /* the cue: its own stream, phishing or legitimate list by label */
    if (!st) st = expand_str(&cue, pick(&rc, e->label ? sty->cue_phish : sty->cue_legit), &s, &rc);
    char *rationale = NULL;
    uint64_t rh = pl_hash64(&e->stream, sizeof e->stream, o->seed ^ 0x7261746cULL);
    if (!st) st = make_rationale(sty, &s, e->label, cue, rh, &rationale);

    pl_buf b = {0};
    if (!st) st = pl_buf_printf(&b, "%s\n\n", greet);
    for (int i = 0, j = 0; i <= k && !st; i++) {
        const char *sent = i == cue_pos ? cue : ctx[j++];
        if (i > 0) st = pl_buf_append(&b, i == brk ? "\n\n" : " ", i == brk ? 2 : 1);
        if (!st) st = pl_buf_append(&b, sent, strlen(sent));
    }
    if (!st) st = pl_buf_printf(&b, "\n\n%s\n%s", close, sign);
    if (!st && e->shortcut && !o->where_subject) st = pl_buf_printf(&b, "\n\n%s", o->text);
    if (!st) st = pl_buf_append(&b, "", 1);

    pl_record_init(rec);
    if (!st) {
        rec->label = e->label;
        st = pl_record_set(&rec->id, id);
        if (!st) st = pl_record_set(&rec->source, sty->name);
        if (!st) st = pl_record_set(&rec->from, from);
        if (!st) st = pl_record_set(&rec->to, to);
        if (!st) st = pl_record_set(&rec->date, date);
        if (!st && e->shortcut && o->where_subject) {
            pl_buf sb = {0};
            st = pl_buf_printf(&sb, "%s %s", o->text, subject);
            if (!st) st = pl_record_set(&rec->subject, sb.data);
            pl_buf_free(&sb);
        } else if (!st) {
            st = pl_record_set(&rec->subject, subject);
        }
        if (!st) {
            free(rec->body);
            rec->body = b.data;
            b.data = NULL;
            add_urls(rec);
            rec->meta = cJSON_CreateObject();
            if (!rec->meta || !cJSON_AddStringToObject(rec->meta, "synth_style", sty->name) ||
                !cJSON_AddStringToObject(rec->meta, "synth_cue", cue) ||
                !cJSON_AddStringToObject(rec->meta, "rationale", rationale) ||
                !cJSON_AddBoolToObject(rec->meta, "synth_shortcut", e->shortcut) ||
                !cJSON_AddBoolToObject(rec->meta, "has_html", 0) || !cJSON_AddStringToObject(rec->meta, "charset", "utf-8"))
                st = pl_error(PL_ERR_NOMEM, "out of memory");
        }
    }
    pl_buf_free(&b);
    free(subject);
    free(greet);
    free(close);
    free(sign);
    free(cue);
    free(rationale);
    for (int i = 0; i < 4; i++) free(ctx[i]);
    if (st) pl_record_free(rec);
    return st;
}

/* Common prefix / suffix of a and b: the differing spans [s, ea) and [s, eb). */
static void diff_span(const char *a, const char *b, size_t *s, size_t *ea, size_t *eb) {
    size_t la = strlen(a), lb = strlen(b), p = 0;
    while (p < la && p < lb && a[p] == b[p]) p++;
    size_t q = 0;
    while (q < la - p && q < lb - p && a[la - 1 - q] == b[lb - 1 - q]) q++;
    *s = p;
    *ea = la - q;
    *eb = lb - q;
}

static cJSON *span_json(size_t s, size_t e) {
    double v[2] = {(double)s, (double)e};
    return cJSON_CreateDoubleArray(v, 2);
}

static int wordish(char ch) {
    unsigned char c = (unsigned char)ch;
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

/* Words (pl_text_words) wholly or partly in t[0, end). */
static size_t words_before(const char *t, size_t end) {
    char *cp = malloc(end + 1);
    if (!cp) return 0;
    memcpy(cp, t, end);
    cp[end] = 0;
    size_t n = pl_text_words(cp, NULL, NULL);
    free(cp);
    return n;
}

static pl_status add_pair(cJSON *pairs, const pl_record *a, const pl_record *b, const char *differs) {
    int subj = strcmp(a->subject, b->subject) != 0;
    const char *fa = subj ? a->subject : a->body, *fb = subj ? b->subject : b->body;
    size_t s, ea, eb;
    diff_span(fa, fb, &s, &ea, &eb);
    /* word-index spans [first differing word, end) in each text */
    size_t w0 = words_before(fa, s), wa = words_before(fa, ea), wb = words_before(fb, eb);
    /* a word cut by the start of the span belongs to the span */
    if (s > 0 && w0 > 0 && wordish(fa[s - 1]) && (wordish(fa[s]) || wordish(fb[s]))) w0--;
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(pairs, o)) {
        cJSON_Delete(o);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    int ok = cJSON_AddStringToObject(o, "a", a->id) && cJSON_AddStringToObject(o, "b", b->id) &&
             cJSON_AddStringToObject(o, "differs", differs) && cJSON_AddStringToObject(o, "source", a->source) &&
             cJSON_AddNumberToObject(o, "a_label", a->label) && cJSON_AddNumberToObject(o, "b_label", b->label) &&
             cJSON_AddStringToObject(o, "field", subj ? "subject" : "body") &&
             cJSON_AddItemToObject(o, "a_span", span_json(s, ea)) && cJSON_AddItemToObject(o, "b_span", span_json(s, eb)) &&
             cJSON_AddItemToObject(o, "a_words", span_json(w0, wa)) && cJSON_AddItemToObject(o, "b_words", span_json(w0, wb));
    return ok ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
}

/* Exactly round(frac * n) of the n flags set, at seeded random positions. */
static void choose_exact(pl_rng *r, uint8_t *flag, size_t n, double frac) {
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx) return;
    for (size_t i = 0; i < n; i++) idx[i] = i, flag[i] = 0;
    pl_rng_shuffle(r, idx, n, sizeof *idx);
    size_t m = (size_t)(frac * (double)n + 0.5);
    for (size_t i = 0; i < m && i < n; i++) flag[idx[i]] = 1;
    free(idx);
}

pl_status pl_synth_generate(const pl_synth_opts *o, pl_records *out, pl_records *pair_recs, cJSON **pairs_out,
                            cJSON **manifest_out) {
    *pairs_out = *manifest_out = NULL;
    if (o->n < (size_t)synth_n_styles * 2)
        return pl_error(PL_ERR_INVALID, "synth: n must be at least %d (two emails per style)", synth_n_styles * 2);
    if (o->n > 10000000) return pl_error(PL_ERR_INVALID, "synth: n must be at most 10,000,000");
    if (!(o->phish_rate >= 0 && o->phish_rate <= 1)) return pl_error(PL_ERR_INVALID, "synth: phish_rate not in [0, 1]");
    pl_rng master;
    pl_rng_seed(&master, o->seed);
    int S = synth_n_styles;
    size_t per[PL_SYNTH_MAX_STYLES] = {0}, nphish[PL_SYNTH_MAX_STYLES] = {0};
    size_t sc_count[PL_SYNTH_MAX_STYLES][2] = {{0}};
    for (int s = 0; s < S; s++) per[s] = o->n / (size_t)S + ((size_t)s < o->n % (size_t)S);
    cJSON *pairs = cJSON_CreateArray(), *man = cJSON_CreateObject();
    pl_status st = pairs && man ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
    size_t first_new = out->n;
    for (int s = 0; s < S && !st; s++) {
        /* labels and shortcut flags as exact counts per (source, label) */
        pl_rng rs = pl_rng_split(&master, 0x5000 + (uint64_t)s);
        uint8_t *lab = malloc(per[s]), *sc = calloc(per[s], 1);
        size_t *idx = malloc(per[s] * sizeof *idx);
        uint8_t *tmp = malloc(per[s]);
        if (!lab || !sc || !idx || !tmp) st = pl_error(PL_ERR_NOMEM, "out of memory");
        if (!st) {
            choose_exact(&rs, lab, per[s], o->phish_rate);
            for (int L = 0; L < 2; L++) {
                if (!o->shortcut || !o->in_style[s]) break;
                size_t m = 0;
                for (size_t i = 0; i < per[s]; i++)
                    if (lab[i] == L) idx[m++] = i;
                choose_exact(&rs, tmp, m, L == o->label ? o->rate : o->other_rate);
                for (size_t i = 0; i < m; i++) sc[idx[i]] = tmp[i];
            }
        }
        for (size_t i = 0; i < per[s] && !st; i++) {
            email_spec e = {s, lab[i], sc[i], ((uint64_t)s << 32) | i};
            char id[64];
            snprintf(id, sizeof id, "synth-%s-%05zu", synth_styles[s].name, i);
            pl_record rec;
            st = make_email(o, &e, id, &rec);
            if (!st) st = pl_records_push(out, &rec);
            if (!st) {
                nphish[s] += lab[i];
                sc_count[s][lab[i]] += sc[i];
            }
        }
        free(lab);
        free(sc);
        free(idx);
        free(tmp);
    }
    /* interleave sources (seeded) so the file is not sorted by style */
    if (!st) {
        pl_rng rsh = pl_rng_split(&master, 0x7777);
        pl_rng_shuffle(&rsh, out->v + first_new, out->n - first_new, sizeof *out->v);
    }

    /* minimal pairs, held out of the corpus */
    size_t n_cue_pairs = 0, n_sc_pairs = 0;
    int planted[PL_SYNTH_MAX_STYLES], n_planted = 0;
    for (int s = 0; s < S; s++)
        if (o->shortcut && o->in_style[s]) planted[n_planted++] = s;
    for (size_t p = 0; p < o->n_pairs && !st; p++) {
        int s = (int)(p % (size_t)S);
        email_spec e0 = {s, 0, 0, (1ULL << 40) | p}, e1 = e0;
        e1.label = 1;
        char ida[64], idb[64];
        snprintf(ida, sizeof ida, "pair-cue-%05zu-legit", p);
        snprintf(idb, sizeof idb, "pair-cue-%05zu-phish", p);
        pl_record a, b;
        st = make_email(o, &e0, ida, &a);
        if (!st && (st = make_email(o, &e1, idb, &b)) != PL_OK) pl_record_free(&a);
        if (!st) st = add_pair(pairs, &a, &b, "cue");
        if (!st) st = pl_records_push(pair_recs, &a);
        if (!st) st = pl_records_push(pair_recs, &b);
        if (!st) n_cue_pairs++;
        if (st || !n_planted) continue;
        s = planted[p % (size_t)n_planted];
        email_spec f0 = {s, o->label, 0, (2ULL << 40) | p}, f1 = f0;
        f1.shortcut = 1;
        snprintf(ida, sizeof ida, "pair-sc-%05zu-without", p);
        snprintf(idb, sizeof idb, "pair-sc-%05zu-with", p);
        st = make_email(o, &f0, ida, &a);
        if (!st && (st = make_email(o, &f1, idb, &b)) != PL_OK) pl_record_free(&a);
        if (!st) st = add_pair(pairs, &a, &b, "shortcut");
        if (!st) st = pl_records_push(pair_recs, &a);
        if (!st) st = pl_records_push(pair_recs, &b);
        if (!st) n_sc_pairs++;
    }

    /* ground-truth manifest */
    if (!st) {
        int ok = cJSON_AddStringToObject(man, "generator", "phishlens data synth") &&
                 cJSON_AddStringToObject(man, "version", PL_VERSION) && cJSON_AddNumberToObject(man, "seed", (double)o->seed) &&
                 cJSON_AddNumberToObject(man, "n", (double)o->n) &&
                 cJSON_AddNumberToObject(man, "phish_rate", o->phish_rate) &&
                 cJSON_AddStringToObject(man, "label_cue",
                                         "one cue sentence per email: phishing = credential/card/fee request via a "
                                         "lookalike link or free-mail reply address; legitimate = ordinary action "
                                         "with the organization's real link or none (meta.synth_cue holds it)");
        cJSON *styles = ok ? cJSON_AddArrayToObject(man, "styles") : NULL;
        ok = ok && styles;
        for (int s = 0; s < S && ok; s++) {
            cJSON *x = cJSON_CreateObject();
            ok = x && cJSON_AddItemToArray(styles, x) && cJSON_AddStringToObject(x, "name", synth_styles[s].name) &&
                 cJSON_AddStringToObject(x, "description", synth_styles[s].description) &&
                 cJSON_AddNumberToObject(x, "n", (double)per[s]) &&
                 cJSON_AddNumberToObject(x, "n_phish", (double)nphish[s]) &&
                 cJSON_AddNumberToObject(x, "n_legit", (double)(per[s] - nphish[s])) &&
                 cJSON_AddBoolToObject(x, "shortcut_planted", o->shortcut && o->in_style[s]) &&
                 cJSON_AddNumberToObject(x, "n_shortcut_phish", (double)sc_count[s][1]) &&
                 cJSON_AddNumberToObject(x, "n_shortcut_legit", (double)sc_count[s][0]);
        }
        cJSON *sc = ok ? cJSON_AddObjectToObject(man, "shortcut") : NULL;
        ok = ok && sc && cJSON_AddBoolToObject(sc, "enabled", o->shortcut);
        if (ok && o->shortcut) {
            cJSON *srcs = cJSON_AddArrayToObject(sc, "sources");
            ok = srcs && cJSON_AddStringToObject(sc, "text", o->text) &&
                 cJSON_AddStringToObject(sc, "where", o->where_subject ? "subject" : "footer") &&
                 cJSON_AddNumberToObject(sc, "label", o->label) &&
                 cJSON_AddNumberToObject(sc, "rate_given_label", o->rate) &&
                 cJSON_AddNumberToObject(sc, "rate_given_other_label", o->other_rate);
            for (int i = 0; ok && i < n_planted; i++)
                ok = cJSON_AddItemToArray(srcs, cJSON_CreateString(synth_styles[planted[i]].name));
        }
        cJSON *pj = ok ? cJSON_AddObjectToObject(man, "pairs") : NULL;
        ok = ok && pj && cJSON_AddNumberToObject(pj, "cue", (double)n_cue_pairs) &&
             cJSON_AddNumberToObject(pj, "shortcut", (double)n_sc_pairs);
        if (!ok) st = pl_error(PL_ERR_NOMEM, "out of memory building the manifest");
    }
    if (st) {
        cJSON_Delete(pairs);
        cJSON_Delete(man);
        return st;
    }
    *pairs_out = pairs;
    *manifest_out = man;
    return PL_OK;
}
