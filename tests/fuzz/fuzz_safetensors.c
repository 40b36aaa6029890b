/* fuzz_safetensors.c — libFuzzer target for the safetensors reader.
 *
 * Each input is opened as one safetensors file from memory; accepted files
 * are walked (every tensor found by name, its first and last byte read,
 * sizes consistent with dtype and shape), else the target aborts.
 *
 *   make fuzz && build-fuzz/fuzz_safetensors -max_total_time=60 CORPUS_DIR
 */
#include "io/io.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pl_safetensors *st = NULL;
    if (pl_st_open_mem(data, size, "fuzz.safetensors", &st) != PL_OK) return 0;
    unsigned sum = 0;
    for (int64_t i = 0; i < pl_st_n_tensors(st); i++) {
        const pl_st_tensor *t = pl_st_tensor_at(st, i);
        if (pl_st_find(st, t->name) != t) abort();
        if ((uint64_t)t->n_elements * pl_st_dtype_size(t->dtype) != t->nbytes) abort();
        if (t->nbytes) sum += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->nbytes - 1];
    }
    (void)sum;
    (void)pl_st_metadata(st, "format");
    pl_st_close(st);
    return 0;
}
