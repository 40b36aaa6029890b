/* fuzz_csv.c — libFuzzer target for the CSV reader and the CSV import path
 * (header mapping, labels, text normalization, JSON serialization).
 * Build: make fuzz; run: build-fuzz/fuzz_csv -max_total_time=180 CORPUS_DIR */
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
    pl_record_free(r);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *d = (const char *)data;
    /* the raw reader: invariants on every record */
    pl_csv c;
    pl_csv_init(&c, d, size);
    int k;
    while ((k = pl_csv_next(&c)) == 1) {
        for (size_t i = 0; i < c.n_fields; i++)
            if (c.off[i] + c.flen[i] >= c.store.len || pl_csv_field(&c, i)[c.flen[i]] != 0) abort();
        if (c.rec_offset >= size) abort();
    }
    if (k < 0 || c.pos != size) abort();
    pl_csv_free(&c);
    /* the import path, lenient and strict */
    pl_ingest_opts o;
    pl_ingest_opts_init(&o);
    o.source = "fuzz";
    o.format = PL_FMT_CSV;
    pl_buf b = {0};
    for (int strict = 0; strict <= 1; strict++) {
        o.strict = strict;
        pl_ingest_stats s;
        memset(&s, 0, sizeof s);
        pl_status st = pl_ingest_buffer("fuzz.csv", d, size, &o, sink, &b, &s);
        if (!st && s.read != s.kept + s.skipped) abort(); /* never a silent drop */
    }
    pl_buf_free(&b);
    return 0;
}
