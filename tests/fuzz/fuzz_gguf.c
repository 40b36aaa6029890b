/* fuzz_gguf.c — libFuzzer target for the GGUF reader, model metadata and writer.
 *
 * Each input is opened as a GGUF from memory (libFuzzer's buffer is exactly
 * the input size, so ASan catches any overread). Accepted files are walked
 * through every accessor, described by pl_model_meta, and copied through the
 * writer; the copy must open again with the same keys and tensors, or the
 * target aborts (a reader/writer disagreement is a bug, not bad input).
 *
 *   make fuzz && build-fuzz/fuzz_gguf -max_total_time=600 CORPUS_DIR
 * Seeds: PL_GGUF_SEED_DIR=dir build/tests/test_io writes small GGUFs there.
 */
#include "io/io.h"

#include <stdlib.h>
#include <string.h>

static void walk_value(const pl_gguf_value *v, int depth) {
    if (v->type != PL_GGUF_ARRAY || depth > 3) return;
    uint64_t n = v->count < 64 ? v->count : 64;
    for (uint64_t i = 0; i < n; i++) {
        pl_gguf_value e;
        if (pl_gguf_arr_get(v, i, &e) != PL_OK) abort();
        walk_value(&e, depth + 1);
    }
    if (v->count && v->arr_type != PL_GGUF_STRING && v->arr_type != PL_GGUF_ARRAY && v->count < 4096) {
        float *f = malloc(v->count * sizeof *f);
        int64_t *l = malloc(v->count * sizeof *l);
        if (f && pl_gguf_arr_to_f32(v, f, v->count) != PL_OK) abort();
        if (l) (void)pl_gguf_arr_to_i64(v, l, v->count);
        free(f);
        free(l);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pl_gguf *g = NULL;
    if (pl_gguf_open_mem(data, size, "fuzz.gguf", &g) != PL_OK) return 0;
    pl_buf b = {0};
    for (int64_t k = 0; k < pl_gguf_n_kv(g); k++) {
        pl_gguf_value v;
        if (pl_gguf_kv(g, k, &v) != PL_OK) abort();
        if (!pl_gguf_has(g, pl_gguf_key(g, k))) abort();
        b.len = 0;
        pl_gguf_value_format(&v, &b, 16, 32);
        walk_value(&v, 0);
    }
    unsigned sum = 0;
    for (int64_t k = 0; k < pl_gguf_n_tensors(g); k++) {
        const pl_gguf_tensor *t = pl_gguf_tensor_at(g, k);
        sum += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->nbytes - 1];
        if (pl_gguf_find_tensor(g, t->name) != t) abort();
    }
    (void)sum;
    pl_model_meta m;
    if (pl_model_meta_from_gguf(g, &m) == PL_OK) {
        b.len = 0;
        pl_model_meta_format(&m, &b);
        b.len = 0;
        pl_model_meta_json(&m, &b);
    }
    /* copy through the writer and reopen */
    pl_gguf_writer *w;
    if (pl_gguf_writer_new(&w) == PL_OK) {
        int ok = 1;
        for (int64_t k = 0; ok && k < pl_gguf_n_kv(g); k++) {
            pl_gguf_value v;
            pl_gguf_kv(g, k, &v);
            if (pl_gguf_writer_add_value(w, pl_gguf_key(g, k), &v) != PL_OK) ok = 0;
        }
        for (int64_t k = 0; ok && k < pl_gguf_n_tensors(g); k++) {
            const pl_gguf_tensor *t = pl_gguf_tensor_at(g, k);
            if (pl_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->nbytes) != PL_OK) ok = 0;
        }
        /* the writer may refuse only what it documents: a general.alignment
         * that is a valid power of two but not stored as u32 */
        pl_buf out = {0};
        if (ok && pl_gguf_writer_to_buf(w, &out) == PL_OK) {
            pl_gguf *g2 = NULL;
            if (pl_gguf_open_mem(out.data, out.len, "copy.gguf", &g2) != PL_OK) abort();
            if (pl_gguf_n_kv(g2) != pl_gguf_n_kv(g) || pl_gguf_n_tensors(g2) != pl_gguf_n_tensors(g)) abort();
            for (int64_t k = 0; k < pl_gguf_n_tensors(g); k++) {
                const pl_gguf_tensor *a = pl_gguf_tensor_at(g, k), *c = pl_gguf_tensor_at(g2, k);
                if (strcmp(a->name, c->name) || a->nbytes != c->nbytes || memcmp(a->data, c->data, a->nbytes)) abort();
            }
            pl_gguf_close(g2);
        }
        pl_buf_free(&out);
        pl_gguf_writer_free(w);
    }
    pl_buf_free(&b);
    pl_gguf_close(g);
    return 0;
}
