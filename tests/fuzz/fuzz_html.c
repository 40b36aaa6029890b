/* fuzz_html.c — libFuzzer target: the streaming HTML-to-text fast path
 * against gumbo. Whenever the fast path takes a document, its text and
 * links must be byte-identical to what the gumbo walk gives; any
 * difference aborts. Build: make fuzz; run:
 *   build-fuzz/fuzz_html -dict=tests/fuzz/html.dict -max_total_time=300 CORPUS_DIR */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const pl_html_doc *a, const pl_html_doc *b) {
    if (a->text.len != b->text.len || memcmp(a->text.data, b->text.data, a->text.len)) return 0;
    if (a->n_links != b->n_links) return 0;
    for (size_t i = 0; i < a->n_links; i++)
        if (strcmp(a->links[i].href, b->links[i].href) || strcmp(a->links[i].text, b->links[i].text)) return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *d = (const char *)data;
    pl_html_doc ref, got;
    pl_html_fast = 0;
    pl_status st = pl_html_to_text(d, size, &ref);
    pl_html_fast = 1;
    if (st) return 0; /* out of memory */
    pl_status fst;
    if (pl_html_fast_text(d, size, &got, &fst)) {
        if (!same(&ref, &got)) {
            fprintf(stderr, "fast path: [%s] (%zu links)\ngumbo:     [%s] (%zu links)\n", got.text.data, got.n_links,
                    ref.text.data, ref.n_links);
            abort();
        }
        pl_html_doc_free(&got);
    } else if (fst) {
        abort(); /* the fast path fails only for lack of memory */
    }
    pl_html_doc_free(&ref);
    return 0;
}
