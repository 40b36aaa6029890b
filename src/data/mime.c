/* mime.c — raw RFC 822 / MIME messages to normalized records, through GMime 3.
 *
 * Follows RFC 5322 (message format), RFC 2045-2049 (MIME: multipart trees,
 * base64 and quoted-printable transfer encodings, charsets) and RFC 2047
 * (encoded words in headers), all as implemented by GMime in its loose
 * compliance modes. What this file adds on top:
 *   - body selection: text/plain and text/html leaves that are not attachments;
 *     in multipart/alternative the text/plain child is the body (the others
 *     only contribute links), else the last child;
 *   - charset -> UTF-8 through iconv; an unknown or malformed charset name
 *     falls back to UTF-8 when the bytes are valid UTF-8 and windows-1252
 *     otherwise, counted as PL_WARN_CHARSET_FALLBACK;
 *   - HTML -> text (html.c), hrefs collected, display/target mismatches flagged;
 *   - attachments listed in meta (name, type, decoded size), never inlined;
 *   - every output string is valid UTF-8 without NUL bytes (repairs counted),
 *     line ends normalized to LF, headers capped at PL_MAX_HEADER bytes.
 * It does not decode S/MIME or PGP payloads, TNEF (winmail.dat), or Outlook
 * .msg files (rejected as not RFC 822). */
#include "data.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <gmime/gmime.h>
#include <iconv.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const warn_names[PL_WARN_N] = {
    "charset_fallback", "utf8_repaired", "nul_removed", "html_converted",
    "parser_warning", "field_truncated", "urls_truncated", "empty",
};
const char *pl_warn_name(int w) { return w >= 0 && w < PL_WARN_N ? warn_names[w] : "?"; }

int pl_mime_shortcuts = 1;

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;
static void gmime_start(void) { g_mime_init(); }

/* ---- per-message state ---- */

#define MAX_MISMATCH_LISTED 20
#define MAX_ATTACH_LISTED 100
#define MAX_DEPTH 32

typedef struct {
    pl_record *r;
    pl_buf body;
    int flags[PL_WARN_N];  /* which warnings this record raised */
    cJSON *attachments;    /* array */
    cJSON *mismatches;     /* array of {text, href} */
    int64_t n_mismatch, n_attach;
    int has_html;
    cJSON *bad_charsets;   /* array of distinct unknown charset names */
    int64_t n_obfuscated;  /* distinct URLs that were recognized only de-fanged */
    int64_t n_tokenized;   /* distinct URLs rebuilt from tokenized text */
    unsigned defang_kinds; /* bit set of PL_DEFANG_* met in them */
    char charset[64];      /* declared charset of the main text part (meta.charset) */
    int charset_rank;      /* 0 none yet, 1 from a links-only part, 2 from a body part */
    pl_status st;
} msgctx;

/* Remember the declared charset of the first text part that gives the body
 * (else of the first text part at all): ASCII lower-cased, UTF-8 repaired,
 * clipped to 63 bytes at a character boundary. Parts without a charset
 * parameter leave it unset. */
static void note_charset(msgctx *m, const char *cs, int links_only) {
    int rank = links_only ? 1 : 2;
    if (m->charset_rank >= rank) return;
    if (!links_only) m->charset_rank = 2; /* the main part decides, declared or not */
    if (!cs || !*cs) {
        if (!links_only) m->charset[0] = 0;
        return;
    }
    pl_buf b = {0};
    size_t bad = 0, nul = 0;
    if (pl_utf8_repair(cs, strlen(cs), &b, &bad, &nul) || pl_buf_append(&b, "", 1)) {
        pl_buf_free(&b);
        return;
    }
    size_t len = b.len - 1;
    if (len > sizeof m->charset - 1) {
        len = sizeof m->charset - 1;
        while (len && ((unsigned char)b.data[len] & 0xC0) == 0x80) len--;
    }
    for (size_t i = 0; i < len; i++) {
        char c = b.data[i];
        m->charset[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
    }
    m->charset[len] = 0;
    m->charset_rank = rank;
    pl_buf_free(&b);
}

/* Append a URL to r unless already present (linear: records hold few URLs).
 * *added (may be NULL) tells whether it was new. */
static pl_status add_url_ex(msgctx *m, const char *u, size_t n, int *added) {
    pl_record *r = m->r;
    if (added) *added = 0;
    if (n == 0) return PL_OK;
    if (r->n_urls >= PL_MAX_URLS) {
        m->flags[PL_WARN_URLS_TRUNCATED] = 1;
        return PL_OK;
    }
    for (size_t i = 0; i < r->n_urls; i++)
        if (strlen(r->urls[i]) == n && !memcmp(r->urls[i], u, n)) return PL_OK;
    if (added) *added = 1;
    pl_buf b = {0};
    size_t bad = 0, nul = 0;
    pl_status st = pl_utf8_repair(u, n, &b, &bad, &nul);
    if (!st) st = pl_buf_append(&b, "", 1);
    if (!st) st = pl_record_add_url(r, b.data);
    pl_buf_free(&b);
    return st;
}

static pl_status add_url(msgctx *m, const char *u, size_t n) { return add_url_ex(m, u, n, NULL); }

/* A URL from text, possibly de-fanged (kinds != 0): counted once per distinct URL. */
static pl_status url_cb(const char *u, size_t n, unsigned kinds, void *user) {
    msgctx *m = user;
    int added = 0;
    pl_status st = add_url_ex(m, u, n, kinds ? &added : NULL);
    if (!st && added) {
        m->n_obfuscated++;
        m->defang_kinds |= kinds;
    }
    return st;
}

/* A URL rebuilt from tokenized text ("http : / / www . x . com"). */
static pl_status tokenized_cb(const char *u, size_t n, void *user) {
    msgctx *m = user;
    int added = 0;
    pl_status st = add_url_ex(m, u, n, &added);
    if (!st && added) m->n_tokenized++;
    return st;
}

/* meta.obfuscated_urls and meta.obfuscation (kind names), when any;
 * meta.tokenized_urls when any. */
static void add_obfuscation_meta(msgctx *m, pl_record *r) {
    if (m->n_tokenized) {
        if (!r->meta) r->meta = cJSON_CreateObject();
        cJSON_AddNumberToObject(r->meta, "tokenized_urls", (double)m->n_tokenized);
    }
    if (!m->n_obfuscated) return;
    if (!r->meta) r->meta = cJSON_CreateObject();
    cJSON_AddNumberToObject(r->meta, "obfuscated_urls", (double)m->n_obfuscated);
    cJSON *k = cJSON_AddArrayToObject(r->meta, "obfuscation");
    for (int i = 0; i < PL_DEFANG_N; i++)
        if (m->defang_kinds & (1u << i)) cJSON_AddItemToArray(k, cJSON_CreateString(pl_defang_kind_name(i)));
}

/* Append text (valid UTF-8 expected but repaired if not) with CRLF / CR -> LF. */
static pl_status append_text(msgctx *m, pl_buf *out, const char *s, size_t n) {
    /* the common case: valid UTF-8 without CR is copied as is */
    if (!memchr(s, '\r', n) && pl_utf8_valid(s, n)) return pl_buf_append(out, s, n);
    pl_buf tmp = {0};
    size_t bad = 0, nul = 0;
    pl_status st = pl_utf8_repair(s, n, &tmp, &bad, &nul);
    if (bad) m->flags[PL_WARN_UTF8_REPAIRED] = 1;
    if (nul) m->flags[PL_WARN_NUL_REMOVED] = 1;
    if (!st) st = pl_buf_reserve(out, tmp.len + 1);
    if (!st) {
        char *o = out->data + out->len;
        for (size_t i = 0; i < tmp.len; i++) {
            char c = tmp.data[i];
            if (c == '\r') {
                *o++ = '\n';
                if (i + 1 < tmp.len && tmp.data[i + 1] == '\n') i++;
            } else {
                *o++ = c;
            }
        }
        out->len = (size_t)(o - out->data);
        out->data[out->len] = 0;
    }
    pl_buf_free(&tmp);
    return st;
}

/* Set a header field: repaired UTF-8, no NULs, whitespace runs of CR/LF/TAB
 * turned into spaces, trimmed, capped at PL_MAX_HEADER bytes. */
static pl_status set_header(msgctx *m, char **field, const char *s) {
    if (!s) return pl_record_set(field, "");
    size_t n = strlen(s);
    pl_buf b = {0};
    size_t bad = 0, nul = 0;
    pl_status st = pl_utf8_repair(s, n, &b, &bad, &nul);
    if (bad) m->flags[PL_WARN_UTF8_REPAIRED] = 1;
    if (nul) m->flags[PL_WARN_NUL_REMOVED] = 1;
    if (!st) st = pl_buf_append(&b, "", 1);
    if (st) {
        pl_buf_free(&b);
        return st;
    }
    char *d = b.data;
    for (char *p = d; *p; p++)
        if (*p == '\r' || *p == '\n' || *p == '\t') *p = ' ';
    char *a = d;
    while (*a == ' ') a++;
    size_t len = strlen(a);
    while (len && a[len - 1] == ' ') len--;
    if (len > PL_MAX_HEADER) {
        len = PL_MAX_HEADER;
        while (len && ((unsigned char)a[len] & 0xC0) == 0x80) len--; /* UTF-8 boundary */
        m->flags[PL_WARN_FIELD_TRUNCATED] = 1;
    }
    a[len] = 0;
    st = pl_record_set(field, a);
    pl_buf_free(&b);
    return st;
}

pl_status pl_record_set_header(char **field, const char *s, size_t n, int64_t *warn) {
    msgctx m;
    memset(&m, 0, sizeof m);
    pl_buf b = {0};
    pl_status st = pl_buf_append(&b, s, n);
    if (!st) st = pl_buf_append(&b, "", 1);
    /* NULs inside s would cut the C string: drop them first */
    if (!st) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (b.data[i]) b.data[k++] = b.data[i];
            else m.flags[PL_WARN_NUL_REMOVED] = 1;
        b.data[k] = 0;
        /* CSV corpora keep raw RFC 2047 encoded words ("=?UTF-8?B?...?="): decode them */
        char *dec = NULL;
        if (strstr(b.data, "=?")) {
            pthread_once(&gmime_once, gmime_start);
            dec = g_mime_utils_header_decode_text(NULL, b.data);
        }
        st = set_header(&m, field, dec ? dec : b.data);
        g_free(dec);
    }
    pl_buf_free(&b);
    if (warn && !st)
        for (int i = 0; i < PL_WARN_N; i++) warn[i] += m.flags[i];
    return st;
}

/* ---- charset conversion ---- */

static int is_utf8_name(const char *cs) {
    return !strcasecmp(cs, "utf-8") || !strcasecmp(cs, "utf8") || !strcasecmp(cs, "us-ascii") ||
           !strcasecmp(cs, "ascii");
}

/* iconv from cd into out; invalid input bytes become U+FFFD (counted). */
static pl_status iconv_all(iconv_t cd, const char *s, size_t n, pl_buf *out, size_t *bad) {
    char *in = (char *)(uintptr_t)s; /* iconv's prototype is not const-correct */
    size_t left = n;
    pl_status st = PL_OK;
    while (left && !st) {
        st = pl_buf_reserve(out, left * 4 + 16);
        if (st) break;
        char *o = out->data + out->len;
        size_t room = out->cap - out->len - 1, room0 = room;
        size_t rc = iconv(cd, &in, &left, &o, &room);
        out->len += room0 - room;
        if (rc == (size_t)-1) {
            if (errno == E2BIG) continue;
            /* EILSEQ or EINVAL (truncated sequence): replace one byte */
            st = pl_buf_append(out, "\xEF\xBF\xBD", 3);
            in++;
            left--;
            (*bad)++;
            iconv(cd, NULL, NULL, NULL, NULL);
        }
    }
    if (!st) {
        /* flush shift state (UTF-7, ISO-2022) */
        st = pl_buf_reserve(out, 16);
        if (!st) {
            char *o = out->data + out->len;
            size_t room = out->cap - out->len - 1, room0 = room;
            iconv(cd, NULL, NULL, &o, &room);
            out->len += room0 - room;
        }
    }
    return st;
}

/* iconv descriptors are reused: iconv_open looks the converter up and may
 * load (and iconv_close unload) its gconv module each time, which cost more
 * than converting a typical mail part. A small process-wide pool keeps idle
 * descriptors by charset name; a descriptor is reset before each use. The
 * pool lives until the process exits. */
#define ICONV_POOL 32
static struct {
    char name[48];
    iconv_t cd;
    int busy;
} iconv_pool[ICONV_POOL];
static pthread_mutex_t iconv_pool_lock = PTHREAD_MUTEX_INITIALIZER;

/* An idle descriptor from name to UTF-8, or a new one ((iconv_t)-1 on failure). */
static iconv_t iconv_get(const char *name) {
    if (strlen(name) < sizeof iconv_pool[0].name) {
        pthread_mutex_lock(&iconv_pool_lock);
        for (int i = 0; i < ICONV_POOL; i++)
            if (iconv_pool[i].name[0] && !iconv_pool[i].busy && !strcmp(iconv_pool[i].name, name)) {
                iconv_pool[i].busy = 1;
                iconv_t cd = iconv_pool[i].cd;
                pthread_mutex_unlock(&iconv_pool_lock);
                iconv(cd, NULL, NULL, NULL, NULL); /* initial shift state */
                return cd;
            }
        pthread_mutex_unlock(&iconv_pool_lock);
    }
    return iconv_open("UTF-8", name);
}

/* Give a descriptor back: kept in the pool (busy slot of it, or a free slot), else closed. */
static void iconv_put(const char *name, iconv_t cd) {
    int kept = 0;
    if (strlen(name) < sizeof iconv_pool[0].name) {
        pthread_mutex_lock(&iconv_pool_lock);
        for (int i = 0; i < ICONV_POOL && !kept; i++)
            if (iconv_pool[i].busy && iconv_pool[i].cd == cd) iconv_pool[i].busy = 0, kept = 1;
        for (int i = 0; i < ICONV_POOL && !kept; i++)
            if (!iconv_pool[i].name[0]) {
                snprintf(iconv_pool[i].name, sizeof iconv_pool[i].name, "%s", name);
                iconv_pool[i].cd = cd;
                kept = 1;
            }
        pthread_mutex_unlock(&iconv_pool_lock);
    }
    if (!kept) iconv_close(cd);
}

/* Charsets (as g_mime_charset_iconv_name spells them) whose bytes 0x00-0x7F
 * are ASCII: for pure-ASCII text their conversion to UTF-8 is the identity. */
static int ascii_superset(const char *name) {
    if (!strncasecmp(name, "iso-8859-", 9)) {
        const char *d = name + 9;
        if (!isdigit((unsigned char)d[0])) return 0;
        return !d[1] || (isdigit((unsigned char)d[1]) && !d[2]);
    }
    const char *d = !strncasecmp(name, "cp125", 5) ? name + 5 : !strncasecmp(name, "windows-125", 11) ? name + 11 : NULL;
    if (d) return isdigit((unsigned char)d[0]) && !d[1];
    return !strcasecmp(name, "koi8-r") || !strcasecmp(name, "koi8-u");
}

static int all_ascii(const char *s, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ull) return 0;
    }
    for (; i < n; i++)
        if ((unsigned char)s[i] & 0x80) return 0;
    return 1;
}

/* Bytes in a declared charset (may be NULL) -> UTF-8 appended to out. */
static pl_status to_utf8(msgctx *m, const char *cs, const char *s, size_t n, pl_buf *out) {
    if (!cs || !*cs || is_utf8_name(cs)) {
        if (pl_utf8_valid(s, n)) return pl_buf_append(out, s, n);
        cs = "windows-1252"; /* undeclared 8-bit text: the usual culprit */
    }
    const char *name = g_mime_charset_iconv_name(cs);
    iconv_t cd = (iconv_t)-1;
    if (name) cd = iconv_get(name);
    if (cd == (iconv_t)-1) {
        /* unknown or malformed charset name: best effort */
        m->flags[PL_WARN_CHARSET_FALLBACK] = 1;
        if (m->bad_charsets && cJSON_GetArraySize(m->bad_charsets) < 8) {
            char clip[64];
            snprintf(clip, sizeof clip, "%s", cs);
            pl_buf ok = {0};
            size_t bad = 0, nul = 0;
            if (!pl_utf8_repair(clip, strlen(clip), &ok, &bad, &nul) && !pl_buf_append(&ok, "", 1)) {
                int seen = 0;
                cJSON *it;
                cJSON_ArrayForEach(it, m->bad_charsets) seen |= !strcmp(it->valuestring, ok.data);
                if (!seen) cJSON_AddItemToArray(m->bad_charsets, cJSON_CreateString(ok.data));
            }
            pl_buf_free(&ok);
        }
        if (pl_utf8_valid(s, n)) return pl_buf_append(out, s, n);
        name = "WINDOWS-1252";
        cd = iconv_get(name);
        if (cd == (iconv_t)-1) return pl_error(PL_ERR_INTERNAL, "iconv lacks windows-1252");
    } else if (pl_mime_shortcuts && ascii_superset(name) && all_ascii(s, n)) {
        /* ASCII text labelled latin-1, windows-125x, ...: iconv would copy it */
        iconv_put(name, cd);
        return pl_buf_append(out, s, n);
    }
    size_t bad = 0;
    pl_status st = iconv_all(cd, s, n, out, &bad);
    iconv_put(name, cd);
    if (bad) m->flags[PL_WARN_UTF8_REPAIRED] = 1;
    return st;
}

/* ---- MIME tree walk ---- */

/* Decoded (transfer-encoding removed) content of a leaf part. */
static GByteArray *part_bytes(GMimePart *part, GMimeStream **keep) {
    *keep = NULL;
    GMimeDataWrapper *w = g_mime_part_get_content(part);
    if (!w) return NULL;
    GMimeStream *out = g_mime_stream_mem_new();
    if (g_mime_data_wrapper_write_to_stream(w, out) < 0) {
        g_object_unref(out);
        return NULL;
    }
    *keep = out;
    return g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out));
}

static void add_attachment(msgctx *m, GMimePart *part, GMimeContentType *ct) {
    m->n_attach++;
    if (!m->attachments || cJSON_GetArraySize(m->attachments) >= MAX_ATTACH_LISTED) return;
    GMimeStream *keep;
    GByteArray *arr = part_bytes(part, &keep);
    const char *fn = g_mime_part_get_filename(part);
    char *type = g_mime_content_type_get_mime_type(ct);
    cJSON *a = cJSON_CreateObject();
    pl_buf name = {0};
    if (fn) {
        size_t bad = 0, nul = 0;
        if (pl_utf8_repair(fn, strlen(fn), &name, &bad, &nul) == PL_OK) pl_buf_append(&name, "", 1);
    }
    cJSON_AddStringToObject(a, "name", name.data ? name.data : "");
    cJSON_AddStringToObject(a, "type", type ? type : "application/octet-stream");
    cJSON_AddNumberToObject(a, "size", arr ? (double)arr->len : 0.0);
    cJSON_AddItemToArray(m->attachments, a);
    pl_buf_free(&name);
    g_free(type);
    if (keep) g_object_unref(keep);
}

static void note_links(msgctx *m, const pl_html_doc *doc) {
    for (size_t i = 0; i < doc->n_links && !m->st; i++) {
        const char *h = doc->links[i].href;
        if (!strncasecmp(h, "http://", 7) || !strncasecmp(h, "https://", 8) || !strncasecmp(h, "ftp://", 6) ||
            !strncasecmp(h, "www.", 4))
            m->st = add_url(m, h, strlen(h));
        if (pl_html_link_mismatch(doc->links[i].text, h)) {
            m->n_mismatch++;
            if (m->mismatches && cJSON_GetArraySize(m->mismatches) < MAX_MISMATCH_LISTED) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "text", doc->links[i].text);
                cJSON_AddStringToObject(o, "href", h);
                cJSON_AddItemToArray(m->mismatches, o);
            }
        }
    }
}

/* Text of an HTML document (UTF-8) into the body (unless links_only). */
static void take_html(msgctx *m, const char *html, size_t n, int links_only) {
    pl_html_doc doc;
    m->has_html = 1;
    m->st = pl_html_to_text(html, n, &doc);
    if (m->st) return;
    note_links(m, &doc);
    if (!m->st) m->st = pl_urls_scan_defanged(doc.text.data, doc.text.len, url_cb, m);
    if (!m->st && !links_only && doc.text.len) {
        if (m->body.len) m->st = pl_buf_append(&m->body, "\n\n", 2);
        if (!m->st) m->st = append_text(m, &m->body, doc.text.data, doc.text.len);
        m->flags[PL_WARN_HTML_CONVERTED] = 1;
    }
    pl_html_doc_free(&doc);
}

static void take_plain(msgctx *m, const char *s, size_t n, int links_only) {
    m->st = pl_urls_scan_defanged(s, n, url_cb, m);
    if (!m->st) m->st = pl_urls_scan_tokenized(s, n, tokenized_cb, m);
    if (m->st || links_only || !n) return;
    if (m->body.len) m->st = pl_buf_append(&m->body, "\n\n", 2);
    if (!m->st) m->st = append_text(m, &m->body, s, n);
}

static int is_attachment(GMimeObject *obj, GMimeContentType *ct) {
    GMimeContentDisposition *disp = g_mime_object_get_content_disposition(obj);
    if (disp && g_mime_content_disposition_is_attachment(disp)) return 1;
    if (!g_mime_content_type_is_type(ct, "text", "*")) return 1;
    /* a text part with a file name that is not plain or html: a text attachment */
    if (!g_mime_content_type_is_type(ct, "text", "plain") && !g_mime_content_type_is_type(ct, "text", "html") &&
        g_mime_part_get_filename(GMIME_PART(obj)))
        return 1;
    return 0;
}

static void walk(msgctx *m, GMimeObject *obj, int links_only, int depth) {
    if (m->st || !obj) return;
    if (depth > MAX_DEPTH) {
        m->flags[PL_WARN_PARSER] = 1;
        return;
    }
    if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *sub = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (sub) walk(m, g_mime_message_get_mime_part(sub), links_only, depth + 1);
        return;
    }
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int cnt = g_mime_multipart_get_count(mp);
        GMimeContentType *ct = g_mime_object_get_content_type(obj);
        int chosen = -1;
        if (ct && g_mime_content_type_is_type(ct, "multipart", "alternative") && cnt > 0) {
            for (int i = 0; i < cnt && chosen < 0; i++) {
                GMimeObject *c = g_mime_multipart_get_part(mp, i);
                GMimeContentType *cct = g_mime_object_get_content_type(c);
                if (GMIME_IS_PART(c) && cct && g_mime_content_type_is_type(cct, "text", "plain") &&
                    !is_attachment(c, cct))
                    chosen = i;
            }
            if (chosen < 0) chosen = cnt - 1;
        }
        for (int i = 0; i < cnt && !m->st; i++)
            walk(m, g_mime_multipart_get_part(mp, i), links_only || (chosen >= 0 && i != chosen), depth + 1);
        return;
    }
    if (!GMIME_IS_PART(obj)) return;
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    if (!ct) return;
    if (is_attachment(obj, ct)) {
        if (!links_only) add_attachment(m, GMIME_PART(obj), ct);
        return;
    }
    GMimeStream *keep;
    GByteArray *arr = part_bytes(GMIME_PART(obj), &keep);
    if (!arr) return;
    pl_buf u = {0};
    const char *cs = g_mime_content_type_get_parameter(ct, "charset");
    note_charset(m, cs, links_only);
    m->st = to_utf8(m, cs, (const char *)arr->data, arr->len, &u);
    g_object_unref(keep);
    if (!m->st) {
        if (g_mime_content_type_is_type(ct, "text", "html")) take_html(m, u.data ? u.data : "", u.len, links_only);
        else take_plain(m, u.data ? u.data : "", u.len, links_only);
    }
    pl_buf_free(&u);
}

/* GMime formats each mailbox through internet_address_mailbox_get_idn_addr,
 * which runs the domain through libidn2 on every call (3 % of a SpamAssassin
 * import). For an all-ASCII address the result is the address as written:
 * GMime keeps the domain when idn2's ASCII form equals it ignoring case, or
 * when idn2 fails, and an ASCII domain gives nothing else. So the public
 * idn_addr field is filled in for those, and the conversion is skipped.
 * Non-ASCII addresses still go through idn2. */
static void preset_idn(InternetAddressList *l, int depth) {
    int n = l ? internet_address_list_length(l) : 0;
    for (int i = 0; i < n; i++) {
        InternetAddress *ia = internet_address_list_get_address(l, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
            InternetAddressMailbox *mb = INTERNET_ADDRESS_MAILBOX(ia);
            if (mb->idn_addr || !mb->addr) continue;
            int ascii = 1;
            for (const unsigned char *p = (const unsigned char *)mb->addr; *p && ascii; p++) ascii = *p < 0x80;
            if (ascii) mb->idn_addr = g_strdup(mb->addr);
        } else if (INTERNET_ADDRESS_IS_GROUP(ia) && depth < 8) {
            preset_idn(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), depth + 1);
        }
    }
}

static void parser_warning(gint64 offset, GMimeParserWarning code, const gchar *item, gpointer user) {
    (void)offset;
    (void)item;
    msgctx *m = user;
    /* duplicated headers and raw 8-bit headers are everyday mail, not damage */
    if (code == GMIME_WARN_DUPLICATED_HEADER || code == GMIME_WARN_UNENCODED_8BIT_HEADER) return;
    m->flags[PL_WARN_PARSER] = 1;
}

/* Top-level header fields that nothing here reads and that GMime only stores:
 * trace and vendor fields (Received, X-*, List-*, ...). None is a field GMime
 * interprets (From, To, Cc, Bcc, Sender, Reply-To, Subject, Date, Message-Id,
 * MIME-Version, Content-*) or checks for repeats (RFC 5322 single fields). */
static int inert_field(const char *name, size_t n) {
    static const char *const names[] = {"received", "return-path", "delivered-to", "precedence", "errors-to",
                                        "status", "mailing-list", "importance"};
    if ((n > 2 && !strncasecmp(name, "x-", 2)) || (n > 5 && !strncasecmp(name, "list-", 5))) return 1;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strlen(names[i]) == n && !strncasecmp(name, names[i], n)) return 1;
    return 0;
}

/* The message without its inert top-level header fields, into out (returns 1),
 * or 0 to parse the message as it is. GMime builds an object per header field,
 * and, with a warning callback set, unfolds and RFC 2047-decodes every value
 * to validate it; trace fields are most of a delivered message's header.
 * Only a header block that is plainly well formed is touched: every line up
 * to the blank line is "name:" (printable ASCII name, no space before the
 * colon) or a continuation starting with a space or tab. A field is dropped
 * only when it holds no "=?" (its decoding could raise a parser warning) and
 * no NUL, and at least one field stays, so GMime parses the same header block
 * minus fields that raise nothing and feed nothing. */
static int strip_inert(const char *s, size_t n, pl_buf *out) {
    size_t pos = 0, kept = 0, dropped = 0;
    size_t spans[2 * 64], ns = 0; /* kept field ranges, merged when adjacent */
    for (;;) {
        if (pos >= n) return 0; /* no blank line: leave it to GMime */
        if (s[pos] == '\n' || (s[pos] == '\r' && pos + 1 < n && s[pos + 1] == '\n')) break;
        size_t k = pos;
        while (k < n && (unsigned char)s[k] > 32 && (unsigned char)s[k] < 127 && s[k] != ':') k++;
        if (k == pos || k >= n || s[k] != ':') return 0;
        const char *nl = memchr(s + k, '\n', n - k);
        if (!nl) return 0;
        size_t fe = (size_t)(nl - s) + 1;
        while (fe < n && (s[fe] == ' ' || s[fe] == '\t')) {
            nl = memchr(s + fe, '\n', n - fe);
            if (!nl) return 0;
            fe = (size_t)(nl - s) + 1;
        }
        int drop = inert_field(s + pos, k - pos) && !memchr(s + pos, 0, fe - pos);
        for (const char *q = s + k; drop && (q = memchr(q, '=', (size_t)(s + fe - q))) != NULL; q++)
            drop = !(q + 1 < s + fe && q[1] == '?');
        if (drop) dropped++;
        else {
            kept++;
            if (ns && spans[ns - 1] == pos) spans[ns - 1] = fe; /* extends the previous kept range */
            else if (ns < sizeof spans / sizeof *spans) {
                spans[ns++] = pos;
                spans[ns++] = fe;
            } else return 0; /* too fragmented to bother */
        }
        pos = fe;
    }
    if (!dropped || !kept) return 0;
    if (pl_buf_reserve(out, n)) return 0;
    for (size_t i = 0; i < ns; i += 2) pl_buf_append(out, s + spans[i], spans[i + 1] - spans[i]);
    pl_buf_append(out, s + pos, n - pos); /* the blank line and the body */
    return 1;
}

int pl_looks_like_rfc822(const char *d, size_t n, const char **why) {
    static const char ole[8] = {(char)0xD0, (char)0xCF, 0x11, (char)0xE0, (char)0xA1, (char)0xB1, 0x1A, (char)0xE1};
    if (n >= 8 && !memcmp(d, ole, 8)) {
        if (why) *why = "Outlook .msg (OLE compound file) binary, not RFC 822";
        return 0;
    }
    size_t i = 0;
    if (n >= 3 && !memcmp(d, "\xEF\xBB\xBF", 3)) i = 3;
    /* an mbox envelope line is allowed before the headers */
    if (n - i >= 5 && !memcmp(d + i, "From ", 5)) {
        const char *nl = memchr(d + i, '\n', n - i);
        if (!nl) {
            if (why) *why = "only an mbox envelope line";
            return 0;
        }
        i = (size_t)(nl - d) + 1;
    }
    /* the first line must be a header field: printable ASCII name, then ':' */
    size_t k = i;
    while (k < n && (unsigned char)d[k] > 32 && (unsigned char)d[k] < 127 && d[k] != ':') k++;
    if (k == i || k >= n || d[k] != ':') {
        if (why) *why = "does not start with a header field (not RFC 822)";
        return 0;
    }
    return 1;
}

pl_status pl_mime_parse(const char *raw, size_t n, pl_record *r, int64_t *warn) {
    const char *why = NULL;
    if (!pl_looks_like_rfc822(raw, n, &why)) return pl_error(PL_ERR_FORMAT, "%s", why);
    if (n > G_MAXUINT) return pl_error(PL_ERR_FORMAT, "message of %zu bytes is larger than 4 GiB", n);
    pthread_once(&gmime_once, gmime_start);
    /* GMime wants the envelope line gone when parsing a single message */
    size_t off = 0;
    if (n >= 3 && !memcmp(raw, "\xEF\xBB\xBF", 3)) off = 3;
    if (n - off >= 5 && !memcmp(raw + off, "From ", 5)) {
        const char *nl = memchr(raw + off, '\n', n - off);
        off = nl ? (size_t)(nl - raw) + 1 : n;
    }
    msgctx m;
    memset(&m, 0, sizeof m);
    m.r = r;
    m.attachments = cJSON_CreateArray();
    m.mismatches = cJSON_CreateArray();
    m.bad_charsets = cJSON_CreateArray();

    /* The stream reads the bytes in place (g_mime_stream_mem_new_with_buffer
     * would copy the whole message first): a GByteArray borrows raw (or the
     * copy without inert header fields), the stream does not own it, and the
     * array shell is released below without freeing the bytes, after
     * everything that reads them (the message's content substreams share the
     * buffer) is gone. Nothing writes to the stream. */
    pl_buf lean = {0};
    const char *src = raw + off;
    size_t sn = n - off;
    if (pl_mime_shortcuts && strip_inert(src, sn, &lean)) {
        src = lean.data;
        sn = lean.len;
    }
    GByteArray *borrowed = g_byte_array_new_take((guint8 *)(uintptr_t)src, sn);
    GMimeStream *stream = g_mime_stream_mem_new_with_byte_array(borrowed);
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream), FALSE);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    GMimeParserOptions *opts = g_mime_parser_options_new();
    static const char *fallback[] = {"UTF-8", "windows-1252", NULL};
    g_mime_parser_options_set_fallback_charsets(opts, fallback);
    g_mime_parser_options_set_rfc2047_compliance_mode(opts, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_address_compliance_mode(opts, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_parameter_compliance_mode(opts, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_allow_addresses_without_domain(opts, TRUE);
    g_mime_parser_options_set_warning_callback(opts, parser_warning, &m);
    GMimeMessage *msg = g_mime_parser_construct_message(parser, opts);
    pl_status st = PL_OK;
    if (!msg) {
        st = pl_error(PL_ERR_FORMAT, "GMime could not parse the message");
        goto done;
    }
    GMimeObject *mo = GMIME_OBJECT(msg);
    st = set_header(&m, &r->subject, g_mime_message_get_subject(msg));
    if (!st) {
        InternetAddressList *l = g_mime_message_get_from(msg);
        preset_idn(l, 0);
        char *s = l ? internet_address_list_to_string(l, NULL, FALSE) : NULL;
        st = set_header(&m, &r->from, s);
        g_free(s);
    }
    if (!st) {
        InternetAddressList *l = g_mime_message_get_to(msg);
        preset_idn(l, 0);
        char *s = l ? internet_address_list_to_string(l, NULL, FALSE) : NULL;
        st = set_header(&m, &r->to, s);
        g_free(s);
    }
    if (!st) st = set_header(&m, &r->date, g_mime_object_get_header(mo, "Date"));
    if (!st) {
        walk(&m, g_mime_message_get_mime_part(msg), 0, 0);
        st = m.st;
    }
    if (!st) st = pl_buf_append(&m.body, "", 1);
    if (!st) st = pl_record_set(&r->body, m.body.data);
    if (!st) {
        if (!r->meta) r->meta = cJSON_CreateObject();
        GMimeObject *top = g_mime_message_get_mime_part(msg);
        GMimeContentType *ct = top ? g_mime_object_get_content_type(top) : NULL;
        char *type = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
        pl_buf tb = {0};
        if (type) {
            size_t bad = 0, nul = 0;
            if (pl_utf8_repair(type, strlen(type), &tb, &bad, &nul) == PL_OK) pl_buf_append(&tb, "", 1);
        }
        cJSON_AddStringToObject(r->meta, "content_type", tb.data ? tb.data : "text/plain");
        pl_buf_free(&tb);
        g_free(type);
        cJSON_AddBoolToObject(r->meta, "html", m.has_html);
        if (m.charset[0]) cJSON_AddStringToObject(r->meta, "charset", m.charset);
        if (m.n_attach) {
            cJSON_AddNumberToObject(r->meta, "n_attachments", (double)m.n_attach);
            cJSON_AddItemToObject(r->meta, "attachments", m.attachments);
            m.attachments = NULL;
        }
        if (m.n_mismatch) {
            cJSON_AddNumberToObject(r->meta, "link_mismatch", (double)m.n_mismatch);
            cJSON_AddItemToObject(r->meta, "mismatched_links", m.mismatches);
            m.mismatches = NULL;
        }
        add_obfuscation_meta(&m, r);
        if (cJSON_GetArraySize(m.bad_charsets)) {
            cJSON_AddItemToObject(r->meta, "bad_charsets", m.bad_charsets);
            m.bad_charsets = NULL;
        }
        cJSON *w = NULL;
        for (int i = 0; i < PL_WARN_N; i++) {
            if (!m.flags[i] || i == PL_WARN_HTML_CONVERTED) continue;
            if (!w) w = cJSON_AddArrayToObject(r->meta, "warnings");
            cJSON_AddItemToArray(w, cJSON_CreateString(warn_names[i]));
        }
    }
    g_object_unref(msg);
done:
    g_object_unref(parser);
    g_mime_parser_options_free(opts);
    g_object_unref(stream);
    g_byte_array_free(borrowed, FALSE); /* the shell only: the bytes are raw's or lean's */
    pl_buf_free(&lean);
    if (warn && !st)
        for (int i = 0; i < PL_WARN_N; i++) warn[i] += m.flags[i];
    pl_buf_free(&m.body);
    cJSON_Delete(m.attachments);
    cJSON_Delete(m.mismatches);
    cJSON_Delete(m.bad_charsets);
    return st;
}

/* ---- plain text corpora (CSV, JSONL) ---- */

pl_status pl_record_set_text(pl_record *r, const char *text, size_t n, int64_t *warn) {
    msgctx m;
    memset(&m, 0, sizeof m);
    m.r = r;
    if (pl_looks_like_html(text, n)) {
        take_html(&m, text, n, 0);
        if (!m.st && m.n_mismatch) {
            if (!r->meta) r->meta = cJSON_CreateObject();
            cJSON_AddNumberToObject(r->meta, "link_mismatch", (double)m.n_mismatch);
        }
    } else {
        take_plain(&m, text, n, 0);
    }
    pl_status st = m.st;
    if (!st) st = pl_buf_append(&m.body, "", 0); /* allocates and terminates even when empty */
    if (!st) { /* hand the buffer over instead of copying it */
        free(r->body);
        r->body = m.body.data;
        m.body.data = NULL;
    }
    if (!st && m.has_html) {
        if (!r->meta) r->meta = cJSON_CreateObject();
        cJSON_AddBoolToObject(r->meta, "html", 1);
    }
    if (!st) add_obfuscation_meta(&m, r);
    if (warn && !st)
        for (int i = 0; i < PL_WARN_N; i++) warn[i] += m.flags[i];
    pl_buf_free(&m.body);
    return st;
}
