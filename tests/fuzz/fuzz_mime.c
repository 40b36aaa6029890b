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
    /* the bytes as HTML */
    pl_html_doc doc;
    if (pl_html_to_text(d, size, &doc) == PL_OK) {
        for (size_t i = 0; i < doc.n_links; i++) (void)pl_html_link_mismatch(doc.links[i].text, doc.links[i].href);
        pl_html_doc_free(&doc);
    }
    pl_buf_free(&b);
    return 0;
}
