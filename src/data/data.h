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

#endif
