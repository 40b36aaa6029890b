/* fuzz_mime.c — libFuzzer target for the MIME path: RFC 822 parsing through
 * GMime, charset conversion, HTML to text, URL extraction, mbox splitting.
 * Build: make fuzz; run: build-fuzz/fuzz_mime -max_total_time=180 CORPUS_DIR */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* One thread: the batch code is the same, and thread start-up per input
 * would dominate the run time. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    pl_set_num_threads(1);
    return 0;
}

static pl_status sink(pl_record *r, void *user) {
    pl_buf *b = user;
    b->len = 0;
    pl_status st = pl_record_to_json(r, b);
    /* every string in a record is valid UTF-8 without NULs */
    if (!pl_utf8_valid(r->subject, strlen(r->subject)) || !pl_utf8_valid(r->body, strlen(r->body)) ||
        !pl_utf8_valid(r->from, strlen(r->from)))
        abort();
    for (size_t i = 0; i < r->n_urls; i++)
        if (!pl_utf8_valid(r->urls[i], strlen(r->urls[i]))) abort();
    pl_record_free(r);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *d = (const char *)data;
    pl_ingest_opts o;
    pl_ingest_opts_init(&o);
    o.source = "fuzz";
    pl_buf b = {0};
    pl_ingest_stats s;
    /* one message, then the same bytes as an mboxrd */
    o.format = PL_FMT_EML;
    memset(&s, 0, sizeof s);
    if (!pl_ingest_buffer("fuzz.eml", d, size, &o, sink, &b, &s) && s.read != s.kept + s.skipped) abort();
    o.format = PL_FMT_MBOXRD;
    memset(&s, 0, sizeof s);
    if (!pl_ingest_buffer("fuzz.mbox", d, size, &o, sink, &b, &s) && s.read != s.kept + s.skipped) abort();
    /* the parse shortcuts (inert header fields not given to GMime, iconv
     * skipped for ASCII) must give the very record the full path gives */
    pl_record r1, r2;
    int64_t w1[PL_WARN_N] = {0}, w2[PL_WARN_N] = {0};
    pl_record_init(&r1);
    pl_record_init(&r2);
    pl_status s1 = pl_mime_parse(d, size, &r1, w1);
    pl_mime_shortcuts = 0;
    pl_status s2 = pl_mime_parse(d, size, &r2, w2);
    pl_mime_shortcuts = 1;
    if (s1 != s2) abort();
    if (s1 == PL_OK) {
        pl_buf j1 = {0}, j2 = {0};
        if (pl_record_to_json(&r1, &j1) || pl_record_to_json(&r2, &j2)) abort();
        if (j1.len != j2.len || memcmp(j1.data, j2.data, j1.len) || memcmp(w1, w2, sizeof w1)) abort();
        pl_buf_free(&j1);
        pl_buf_free(&j2);
    }
    pl_record_free(&r1);
    pl_record_free(&r2);
    /* the bytes as HTML */
    pl_html_doc doc;
    if (pl_html_to_text(d, size, &doc) == PL_OK) {
        for (size_t i = 0; i < doc.n_links; i++) (void)pl_html_link_mismatch(doc.links[i].text, doc.links[i].href);
        pl_html_doc_free(&doc);
    }
    pl_buf_free(&b);
    return 0;
}
