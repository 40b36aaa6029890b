/* data.h — email corpora: normalized records, readers, MIME, dedup, profiles,
 * splits, label audit and the synthetic corpus generator.
 *
 * The normalized record (one JSON object per line, see docs/records.md):
 *   {"id","source","label","subject","from","to","date","body","urls":[...],"meta":{...}}
 * label: 1 = phishing/malicious/unwanted, 0 = legitimate, -1 = unlabelled.
 */
#ifndef PL_DATA_H
#define PL_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

typedef struct cJSON cJSON;

/* One normalized email. All strings are malloc'd UTF-8, never NULL after
 * pl_record_init (empty string when absent). meta is a cJSON object owned by
 * the record (may be NULL = no extra metadata). */
typedef struct {
    char *id, *source;
    int label;              /* 1 phishing/unwanted, 0 legitimate, -1 unknown */
    char *subject, *from, *to, *date, *body;
    char **urls;            /* [n_urls] */
    size_t n_urls;
    cJSON *meta;
} pl_record;

void pl_record_init(pl_record *r);
void pl_record_free(pl_record *r);
/* Deep copy. */
pl_status pl_record_copy(pl_record *dst, const pl_record *src);
/* Set a string field (copies s; NULL becomes ""). */
pl_status pl_record_set(char **field, const char *s);
pl_status pl_record_add_url(pl_record *r, const char *url);

/* A growable list of records. */
typedef struct {
    pl_record *v;
    size_t n, cap;
} pl_records;
pl_status pl_records_push(pl_records *rs, pl_record *r); /* takes ownership of *r's contents */
void pl_records_free(pl_records *rs);

/* JSONL: serialize one record as a single line (no trailing newline) into b. */
pl_status pl_record_to_json(const pl_record *r, pl_buf *b);
/* Parse one JSON line. Errors name path and line number (for messages). */
pl_status pl_record_from_json(const char *line, size_t len, const char *path, size_t lineno, pl_record *r);
/* Read a whole records.jsonl file (appends to rs). */
pl_status pl_records_read_jsonl(const char *path, pl_records *rs);
/* Write records atomically. */
pl_status pl_records_write_jsonl(const char *path, const pl_records *rs);

/* ======================================================================
 * Ingest: readers for email corpora (csv.c, mbox.c, mime.c, html.c,
 * urls.c, import.c). Formats, ids and meta keys: docs/records.md.
 * ====================================================================== */

/* ---- text helpers (urls.c) ---- */

/* Append s[0..n) to out as valid UTF-8: each invalid byte becomes U+FFFD,
 * NUL bytes are dropped. *n_repaired / *n_nul (may be NULL) are incremented
 * by the number of replaced bytes and dropped NULs. */
pl_status pl_utf8_repair(const char *s, size_t n, pl_buf *out, size_t *n_repaired, size_t *n_nul);
/* 1 when s[0..n) is valid UTF-8 without NUL bytes. */
int pl_utf8_valid(const char *s, size_t n);

/* URLs found in plain text (http://, https://, ftp://, www.): calls fn for
 * each, in order, with a pointer into text and its length. Trailing
 * punctuation and unbalanced closing brackets are not part of a URL. */
typedef pl_status (*pl_url_fn)(const char *url, size_t len, void *user);
pl_status pl_urls_scan(const char *text, size_t n, pl_url_fn fn, void *user);

/* Host of a URL or bare domain ("HTTP://User@WWW.Ex.com:80/x" -> "www.ex.com"),
 * lower-cased into out (size cap). Returns 0 when there is no plausible host. */
int pl_url_host(const char *url, size_t n, char *out, size_t cap);
/* Registrable-domain approximation: the last two labels, or three when the
 * second-level label is a common public suffix part (co.uk, com.au, ...). */
const char *pl_host_base(const char *host);

/* ---- HTML (html.c) ---- */

typedef struct {
    char *href, *text;     /* malloc'd UTF-8 */
} pl_html_link;
typedef struct {
    pl_buf text;           /* visible text, block elements on their own lines */
    pl_html_link *links;   /* <a href> in document order */
    size_t n_links;
} pl_html_doc;
/* HTML (UTF-8) -> visible text plus links, through gumbo. Script, style and
 * head contents are dropped; <br>, <p>, <div>, <tr>, <li>... break lines. */
pl_status pl_html_to_text(const char *html, size_t n, pl_html_doc *doc);
void pl_html_doc_free(pl_html_doc *doc);
/* 1 when the link's visible text names a domain (or URL) whose base domain
 * differs from the href's: the classic phishing display/target mismatch. */
int pl_html_link_mismatch(const char *text, const char *href);
/* Heuristic: does this text body look like an HTML document? */
int pl_looks_like_html(const char *s, size_t n);

/* ---- CSV (csv.c): RFC 4180 reader over a memory buffer ---- */

/* Quoted fields may hold newlines (LF, CRLF, bare CR) and doubled quotes;
 * records end at LF, CRLF or a bare CR outside quotes; a UTF-8 BOM at the
 * start is skipped. Fields point into an internal buffer valid until the next
 * call. */
typedef struct {
    const char *data;
    size_t len, pos;
    size_t line;           /* 1-based line of the current record's start */
    size_t cur_line;       /* line counter at pos */
    size_t rec_offset;     /* byte offset of the current record's start */
    pl_buf store;          /* unescaped field bytes */
    size_t *off, *flen;    /* [n_fields] offsets into store.data */
    size_t n_fields, cap_fields;
    int unterminated;      /* the last record ended inside an open quote */
    int stray_quote;       /* a quote appeared inside an unquoted field */
} pl_csv;
void pl_csv_init(pl_csv *c, const char *data, size_t len);
/* Next record: 1 = got one, 0 = end of input, <0 = error (pl_errmsg). */
int pl_csv_next(pl_csv *c);
static inline const char *pl_csv_field(const pl_csv *c, size_t i) { return c->store.data + c->off[i]; }
void pl_csv_free(pl_csv *c);

/* ---- mbox (mbox.c) ---- */

/* Splits an mbox buffer into messages. A separator is a line starting with
 * "From " at the start of the buffer or after an empty line. */
typedef struct {
    const char *data;
    size_t len, pos;
    int rd;                /* 1: mboxrd (^>+From  loses one '>'), 0: mboxo (^>From ) */
    pl_buf msg;            /* the current message, unescaped, envelope line removed */
    size_t msg_offset;     /* byte offset of its "From " line */
    size_t msg_line;       /* 1-based line of its "From " line */
    size_t line;
} pl_mbox;
void pl_mbox_init(pl_mbox *m, const char *data, size_t len, int rd);
/* 1 = message in m->msg, 0 = end. */
int pl_mbox_next(pl_mbox *m);
void pl_mbox_free(pl_mbox *m);
/* 1 when the buffer starts like an mbox ("From " envelope line). */
int pl_is_mbox(const char *data, size_t len);

/* ---- MIME (mime.c, GMime 3) ---- */

/* Counters of recoverable problems met while normalizing, summed over records. */
enum {
    PL_WARN_CHARSET_FALLBACK = 0, /* unknown/malformed charset: decoded best effort */
    PL_WARN_UTF8_REPAIRED,        /* records with invalid UTF-8 replaced by U+FFFD */
    PL_WARN_NUL_REMOVED,          /* records with NUL bytes dropped */
    PL_WARN_HTML_CONVERTED,       /* records whose body came from HTML */
    PL_WARN_PARSER,               /* records with GMime parser warnings */
    PL_WARN_FIELD_TRUNCATED,      /* records with a header cut to PL_MAX_HEADER */
    PL_WARN_URLS_TRUNCATED,       /* records with more than PL_MAX_URLS urls */
    PL_WARN_EMPTY,                /* records with neither subject nor body (kept) */
    PL_WARN_N
};
const char *pl_warn_name(int w);
#define PL_MAX_HEADER 16384
#define PL_MAX_URLS 1000

/* Raw RFC 822 message -> record fields (subject, from, to, date, body, urls,
 * meta: content_type, attachments, link_mismatch, html...). id/source/label
 * are left to the caller. warn[] counters are incremented (may be NULL).
 * Returns PL_ERR_FORMAT when the bytes are not an RFC 822 message (message
 * says why, e.g. "Outlook .msg (OLE) binary"). */
pl_status pl_mime_parse(const char *raw, size_t n, pl_record *r, int64_t *warn);
/* 1 when the buffer plausibly starts with an RFC 822 header block. */
int pl_looks_like_rfc822(const char *data, size_t len, const char **why);

/* Fill body/urls/meta of r from plain text (CSV, JSONL corpora): repairs
 * UTF-8, converts HTML-looking text, extracts URLs. */
pl_status pl_record_set_text(pl_record *r, const char *text, size_t n, int64_t *warn);
/* Set a header-like field from s[0..n): RFC 2047 encoded words decoded,
 * UTF-8 repaired, NULs dropped, CR/LF/TAB
 * as spaces, trimmed, capped at PL_MAX_HEADER. warn[] as above. */
pl_status pl_record_set_header(char **field, const char *s, size_t n, int64_t *warn);

/* ---- import driver (import.c) ---- */

typedef enum {
    PL_FMT_AUTO = 0, PL_FMT_CSV, PL_FMT_MBOX, PL_FMT_MBOXRD, PL_FMT_EML, PL_FMT_DIR, PL_FMT_JSONL
} pl_ingest_format;
/* "auto", "csv", "mbox", "mboxrd", "eml", "dir", "jsonl" -> format; -1 if unknown. */
int pl_ingest_format_parse(const char *s);
const char *pl_ingest_format_name(pl_ingest_format f);

/* Why an input item was not turned into a record. */
enum {
    PL_SKIP_NOT_RFC822 = 0,  /* file is not an email (binary, .msg, no headers) */
    PL_SKIP_MIME_ERROR,      /* GMime could not build a message */
    PL_SKIP_BAD_LABEL,       /* label value not in the mapping */
    PL_SKIP_NO_LABEL,        /* label required (column or map) but missing */
    PL_SKIP_CSV_FIELDS,      /* CSV row with fewer fields than the header */
    PL_SKIP_CSV_QUOTE,       /* CSV row ended inside an open quote (end of file) */
    PL_SKIP_JSON_ERROR,      /* JSONL line that is not a usable object */
    PL_SKIP_EMPTY_FILE,      /* zero-byte file or message */
    PL_SKIP_IO,              /* unreadable file inside a directory */
    PL_SKIP_N
};
const char *pl_skip_name(int reason);

typedef struct {
    const char *source;       /* record source and id prefix (required) */
    pl_ingest_format format;  /* PL_FMT_AUTO: sniffed per input */
    const char *text_col;     /* CSV/JSONL body column override */
    const char *label_col;    /* CSV/JSONL label column override */
    const char *positive;     /* label value meaning 1 (others 0) */
    const char *label_map;    /* directory-name map "spam=1,ham=0" */
    int fixed_label;          /* -2: none, else 0/1/-1 for every record */
    int strict;               /* skips become errors */
} pl_ingest_opts;
void pl_ingest_opts_init(pl_ingest_opts *o);

typedef struct {
    int64_t read, kept, skipped;
    int64_t skip[PL_SKIP_N];
    int64_t warn[PL_WARN_N];
    int64_t ignored_files;    /* non-mail files met in a directory walk */
    int64_t bytes;            /* input bytes read */
    int64_t label_pos, label_neg, label_unk;
} pl_ingest_stats;

/* Receives each record; takes ownership of its contents (free it). */
typedef pl_status (*pl_record_sink)(pl_record *r, void *user);

/* Import one input (file or directory). Records go to sink in a stable order
 * (rows in file order, directory entries sorted by name). stats accumulates. */
pl_status pl_ingest_path(const char *path, const pl_ingest_opts *o, pl_record_sink sink, void *user,
                         pl_ingest_stats *stats);
/* The same for a file already in memory (path names it for ids, labels and
 * messages; never opened). A directory format is treated as one message. */
pl_status pl_ingest_buffer(const char *path, const char *data, size_t len, const pl_ingest_opts *o,
                           pl_record_sink sink, void *user, pl_ingest_stats *stats);
/* Import inputs into a JSONL file, written atomically (nothing at out_path on
 * error). per_input (may be NULL) gets [n_paths] separate stats; stats gets
 * the sum (added to what it holds). */
pl_status pl_ingest_to_jsonl(const char *const *paths, size_t n_paths, const pl_ingest_opts *o,
                             const char *out_path, pl_ingest_stats *per_input, pl_ingest_stats *stats);
/* Human summary ("read N, kept N, skipped N (reason N, ...)") into b. */
pl_status pl_ingest_stats_format(const pl_ingest_stats *s, pl_buf *b);

/* ===================== end of ingest section ===================== */

#endif
