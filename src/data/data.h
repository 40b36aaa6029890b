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

/* ======================================================================
 * Corpus tools: dedup, leakage, style profile, splits, label audit,
 * synthetic corpus (dedup.c, profile.c, split.c, audit.c, synth.c,
 * synth_templates.c; docs/corpus.md).
 * ====================================================================== */

/* ---- text primitives (dedup.c) ---- */

/* Word tokenizer shared by dedup, profile and synth: a word is a maximal run
 * of ASCII letters/digits or bytes >= 0x80 (UTF-8 letters), ASCII lower-cased,
 * cut at 63 bytes. fn is called once per word with a NUL-terminated copy. */
typedef void (*pl_word_fn)(const char *w, size_t len, void *user);
size_t pl_text_words(const char *s, pl_word_fn fn, void *user);

/* Hash of the normalized text: ASCII case folded, whitespace runs collapsed
 * to one space, trimmed. *empty is set when the normalized text is empty. */
uint64_t pl_text_hash_normalized(const char *s, int *empty);

/* The text dedup and leakage look at: the body, or the subject when the body
 * is blank. */
const char *pl_record_dedup_text(const pl_record *r);

/* Sorted, unique hashes of the w-word shingles of s (a text with fewer than
 * w words gives one shingle of all its words; no words gives none).
 * *out is malloc'd (NULL when *n == 0). */
pl_status pl_shingles(const char *s, int w, uint64_t **out, size_t *n);
/* |A ∩ B| / |A ∪ B| of two sorted unique sets (0 when both are empty). */
double pl_jaccard_sorted(const uint64_t *a, size_t na, const uint64_t *b, size_t nb);
/* MinHash signature: sig[i] = min over x in set of h_i(x), h_i(x) = (a_i x + b_i)
 * mod (2^61 - 1) with (a_i, b_i) drawn from seed. An empty set gives all-ones. */
void pl_minhash(const uint64_t *set, size_t n, int k, uint64_t seed, uint64_t *sig);
/* Fraction of equal signature entries: an unbiased estimate of Jaccard. */
double pl_minhash_estimate(const uint64_t *a, const uint64_t *b, int k);
/* LSH banding for a threshold: the largest rows r (fewest false candidates)
 * such that a pair at Jaccard = threshold collides with probability >= 0.99,
 * with bands b = k / r. */
void pl_lsh_params(int k, double threshold, int *bands, int *rows);

typedef struct {
    double threshold; /* near-duplicate Jaccard threshold on shingle sets (0.8) */
    int num_perm;     /* MinHash signature length (128) */
    int shingle;      /* words per shingle (3) */
    uint64_t seed;    /* MinHash hash family seed */
} pl_dedup_opts;
void pl_dedup_opts_default(pl_dedup_opts *o);

/* Clusters of exact and near duplicates among n texts. Exact: equal normalized
 * hash. Near: LSH candidate pairs verified with the true shingle Jaccard >=
 * threshold; clusters are connected components (union-find). Blank texts are
 * never duplicates. */
typedef struct {
    size_t n;
    size_t *cluster;       /* [n] smallest index in i's cluster (the one kept) */
    uint8_t *exact_dup;    /* [n] 1 when i exactly duplicates an earlier text */
    size_t n_clusters;     /* = records kept */
    size_t n_exact_dups;   /* records dropped as exact duplicates */
    size_t n_near_dups;    /* records dropped as near (not exact) duplicates */
    size_t n_candidates;   /* distinct LSH candidate pairs */
    size_t n_verified;     /* candidate pairs with Jaccard >= threshold */
} pl_dedup_result;
pl_status pl_dedup_texts(const char *const *texts, size_t n, const pl_dedup_opts *o, pl_dedup_result *res);
void pl_dedup_result_free(pl_dedup_result *res);

/* Train/test leakage: for each test text, an exact duplicate in train (by
 * normalized hash) or else the train text of highest verified Jaccard >=
 * threshold among LSH candidates. Clusters are transitive, as in dedup: a test
 * text with neither, whose near-duplicate cluster (over verified train x test
 * and test x test pairs) holds a train text, is leaked through a chain
 * (test ~ test ~ train). */
typedef struct {
    size_t n_test;
    long *exact;          /* [n_test] train index of an exact duplicate, or -1 */
    long *near;           /* [n_test] train index of the best near duplicate (only when no exact), or -1 */
    double *near_j;       /* [n_test] its Jaccard */
    long *chain;          /* [n_test] smallest train index in its cluster (only when neither above), or -1 */
    size_t n_exact, n_near, n_chain;
} pl_leakage_result;
pl_status pl_leakage_texts(const char *const *train, size_t n_train, const char *const *test, size_t n_test,
                           const pl_dedup_opts *o, pl_leakage_result *res);
void pl_leakage_result_free(pl_leakage_result *res);

/* ---- style profile (profile.c) ---- */

/* Parse a date in a common format (RFC 2822 "Tue, 14 Mar 2006 10:00:00 -0500",
 * "14 Mar 2006", ISO "2006-03-14[T..]", "19-11-2016 16:42", "11/19/2016",
 * "March 14, 2006"). Returns 1 and y/m/d on success, 0 otherwise. For a/b/yyyy
 * the order is month/day unless the first number is > 12. */
int pl_parse_date(const char *s, int *y, int *m, int *d);

/* Jensen-Shannon divergence (base 2, in [0, 1]) of two count vectors over the
 * same n-symbol vocabulary (each normalized to a distribution). */
double pl_jsd(const double *p, const double *q, size_t n);

/* Log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn
 * 2008, eq. 16-22): for counts y_i (group) and y_j (the rest) and prior alpha:
 *   delta_w = log((y_iw+a_w)/(n_i+a0-y_iw-a_w)) - log((y_jw+a_w)/(n_j+a0-y_jw-a_w))
 *   var_w   = 1/(y_iw+a_w) + 1/(y_jw+a_w),  z_w = delta_w / sqrt(var_w).
 * delta or z may be NULL. */
void pl_log_odds_dirichlet(const double *y_i, const double *y_j, const double *alpha, size_t n,
                           double *delta, double *z);

/* k-fold cross-validated accuracy of multinomial naive Bayes (Lidstone
 * smoothing, alpha 0.1 over the buckets seen in training; 2^hash_bits hashed unigram counts of subject + body) predicting
 * class[i] in [0, n_classes). Folds from a seeded shuffle. *majority is the
 * accuracy of always predicting the most frequent class; *balanced (may be
 * NULL) the mean per-class recall, whose chance level is 1 / n_classes. */
pl_status pl_separability(const char *const *texts, const int *cls, size_t n, int n_classes, int folds,
                          uint64_t seed, int hash_bits, double *acc, double *balanced, double *majority);

typedef struct {
    char *token;
    double z, delta;
    double count;         /* occurrences in this source */
} pl_token_score;

typedef struct {
    char *name;
    size_t n, n_phish, n_legit, n_unlabelled;
    double len_q[5];       /* body length in bytes: p5, p25, p50, p75, p95 */
    double words_mean;     /* words per email (subject + body) */
    double html_share;     /* share of HTML emails (meta has_html/html when present, else tag heuristic) */
    size_t n_html_meta;    /* records whose HTML flag came from meta */
    double url_share, urls_per_email, urls_per_1k_words;
    double has_from, has_to, has_date, has_subject; /* share non-empty */
    size_t n_dated;        /* dates parsed */
    char date_min[24], date_max[24]; /* YYYY-MM-DD, "" when none */
    char **charsets;       /* [n_charsets] from meta.charset, by count desc */
    size_t *charset_n, n_charsets;
    double ttr;            /* mean segmental type-token ratio (1000-word segments) */
    pl_token_score *top;   /* [n_top] most distinctive tokens vs the other sources */
    size_t n_top;
} pl_source_profile;

typedef struct {
    size_t n_sources;
    pl_source_profile *src;
    double *jsd;           /* [n_sources * n_sources] unigram JSD */
    double separability, separability_balanced, majority;
    int folds;
    size_t n_records, n_tokens, vocab;
} pl_profile;

typedef struct {
    int top_k;             /* distinctive tokens per source (10) */
    int folds;             /* separability folds (5) */
    uint64_t seed;
    int hash_bits;         /* hashed features for separability (18) */
    double prior_scale;    /* alpha_w = prior_scale * corpus count of w (1.0) */
    int min_count;         /* distinctive tokens need this many occurrences in the source (5) */
} pl_profile_opts;
void pl_profile_opts_default(pl_profile_opts *o);
/* Profile records grouped by their source field ("" becomes "(none)"). */
pl_status pl_profile_compute(const pl_records *rs, const pl_profile_opts *o, pl_profile *p);
/* The profile as a cJSON object (caller deletes). */
pl_status pl_profile_to_json(const pl_profile *p, cJSON **out);
void pl_profile_free(pl_profile *p);

/* ---- splits (split.c) ---- */

enum { PL_PART_TRAIN = 0, PL_PART_VAL = 1, PL_PART_TEST = 2 };
typedef struct {
    double test_frac, val_frac; /* 0.2, 0.1 */
    uint64_t seed;
    pl_dedup_opts dedup;        /* near-duplicate clusters become split groups */
} pl_split_opts;
void pl_split_opts_default(pl_split_opts *o);
/* Assign every record to train/val/test: clusters of near duplicates (over
 * all records, across sources) move as one group; groups are stratified by
 * (source, label) of their first record and filled test first, then val, in a
 * seeded shuffled order. part[i] gets PL_PART_*, cluster[i] the cluster id
 * (may be NULL). Deterministic for a seed. */
pl_status pl_split_assign(const pl_records *rs, const pl_split_opts *o, uint8_t *part, size_t *cluster);
/* Indices (ascending) of the records of `source` in partition `part`, at most
 * cap of them (cap 0 = all), sampled per label in proportion (seeded). *idx
 * is malloc'd. */
pl_status pl_split_select(const pl_records *rs, const uint8_t *part_of, int part, const char *source, size_t cap,
                          uint64_t seed, size_t **idx, size_t *n);

/* ---- label-noise audit (audit.c) ---- */

/* Confident learning (Northcutt, Jiang & Chuang 2021) for two classes on
 * out-of-fold probabilities p1 = P(label 1): per-class thresholds t_j = mean
 * p_j over records labelled j; confident joint C[i][j] counts records
 * labelled i whose p_j >= t_j (argmax among qualifying classes);
 * prune-by-noise-rate flags, in each off-diagonal cell, the
 * round(C_cal[i][j]) records labelled i with the largest margin p_j - p_i
 * (C_cal = C rescaled so row i sums to the count of label i). The naive rule
 * flags p(other class) > naive_threshold. */
typedef struct {
    size_t n;
    double thr[2];
    size_t cj[2][2];
    double cj_cal[2][2];
    double noise_rate;    /* off-diagonal mass of C_cal / n */
    uint8_t *flag_prune;  /* [n] prune-by-noise-rate */
    uint8_t *flag_cj;     /* [n] off-diagonal of the confident joint */
    uint8_t *flag_naive;  /* [n] naive rule */
    size_t n_prune, n_cj, n_naive;
} pl_audit_result;
pl_status pl_audit_confident(const int *label, const double *p1, size_t n, double naive_threshold,
                             pl_audit_result *res);
void pl_audit_result_free(pl_audit_result *res);

/* ---- synthetic corpus (synth.c, synth_templates.c) ---- */

#define PL_SYNTH_MAX_STYLES 16
typedef struct {
    size_t n;               /* emails in the corpus (2400) */
    uint64_t seed;
    size_t n_pairs;         /* minimal pairs of each kind (cue, shortcut) (120) */
    double phish_rate;      /* share of phishing emails (0.5) */
    /* Planted shortcut: `text` shows up (footer line or subject prefix) with
     * probability rate in emails of label `label` and other_rate in the other
     * label, in the sources flagged in `in_style`; never elsewhere. */
    int shortcut;           /* 0 = none */
    char text[128];
    int where_subject;      /* 0 footer, 1 subject prefix */
    int label;
    double rate, other_rate;
    uint8_t in_style[PL_SYNTH_MAX_STYLES];
} pl_synth_opts;
void pl_synth_opts_default(pl_synth_opts *o);
/* Parse "none" or "text=...;where=footer|subject;sources=a,b|all;rate=R;
 * other=R0;label=L" (every key optional; unknown keys are errors). */
pl_status pl_synth_parse_shortcut(const char *spec, pl_synth_opts *o);
int pl_synth_n_styles(void);
const char *pl_synth_style_name(int i);
int pl_synth_style_index(const char *name); /* -1 when unknown */
/* Generate the corpus into out, the minimal-pair twins into pair_recs, and
 * pairs (a cJSON array of {"a","b","differs","a_span","b_span"}) and the
 * ground-truth manifest (cJSON object); caller frees. Deterministic for a seed. */
pl_status pl_synth_generate(const pl_synth_opts *o, pl_records *out, pl_records *pair_recs, cJSON **pairs,
                            cJSON **manifest);

/* ==== end of corpus tools ==== */

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

/* Kinds of URL obfuscation ("defanging") that pl_urls_scan_defanged undoes. */
enum {
    PL_DEFANG_HXXP,          /* hxxp:// hxxps:// (any case) -> http(s):// */
    PL_DEFANG_BRACKET_COLON, /* http[:]// http[://] -> http:// */
    PL_DEFANG_BRACKET_DOT,   /* [.] (.) {.} [dot] (dot) {dot} -> . */
    PL_DEFANG_DOT_WORD,      /* "paypal dot com" -> paypal.com (inside a URL with a prefix) */
    PL_DEFANG_ZERO_WIDTH,    /* U+200B-U+200D, U+2060, U+FEFF, U+00AD dropped */
    PL_DEFANG_N
};
const char *pl_defang_kind_name(int kind);
/* Like pl_urls_scan, on the text with the defangings above undone. fn gets
 * the de-fanged URL (not a pointer into text) and the bit set (1 << kind) of
 * the defangings inside it, 0 for an ordinary URL. Besides the prefixed URLs
 * it finds bare domains written with a bracketed dot ("evil[.]example/x").
 * The spelled-out " dot " only counts inside URLs with a scheme or www.
 * prefix ("www dot x dot com"). Text without any defanging gives exactly the
 * URLs of pl_urls_scan, with kinds 0. */
typedef pl_status (*pl_url2_fn)(const char *url, size_t len, unsigned kinds, void *user);
pl_status pl_urls_scan_defanged(const char *text, size_t n, pl_url2_fn fn, void *user);
/* URLs written as a token stream by preprocessed corpora (Enron-Spam,
 * Ling-Spam: "http : / / www . x . com / a . html"), rebuilt
 * ("http://www.x.com/a.html"; "www . x . com" -> "www.x.com"): fn gets the
 * rebuilt URL (not a pointer into text), in order. Rules in urls.c. */
pl_status pl_urls_scan_tokenized(const char *text, size_t n, pl_url_fn fn, void *user);

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
/* Most documents are turned into text by a streaming tokenizer and tree
 * builder that follows gumbo's rules without building the tree; those where
 * the text would need nodes moved (foster-parented text, some misnested <a>),
 * foreign content, frameset, template, NUL bytes or invalid UTF-8 go through
 * gumbo. The result is the same either way. 0 turns the fast path off
 * (tests compare the two). */
extern int pl_html_fast;
/* The fast path alone: 1 with doc filled, 0 when the document needs gumbo
 * (doc left empty), or an error status through *st (out of memory). */
int pl_html_fast_text(const char *html, size_t n, pl_html_doc *doc, pl_status *st);
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
/* Testing aid: 0 turns off pl_mime_parse's shortcuts (inert trace header
 * fields not handed to GMime, iconv skipped for ASCII text in latin-1-like
 * charsets), which must not change any record; tests and fuzz_mime parse
 * with both settings and compare. Default 1. Set it only while no import runs. */
extern int pl_mime_shortcuts;
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
