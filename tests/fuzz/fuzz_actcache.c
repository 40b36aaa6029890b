/* fuzz_actcache.c — libFuzzer target for the activation-cache reader.
 *
 * The cache is checksummed, so random bytes would almost never get past the
 * checksums. Each input is first "repaired": the header, chunk metadata,
 * payload, index and footer checksums are recomputed where the (fuzzed)
 * structure says they are (layout: docs/interp.md). The reader's structural
 * validation behind the checksums is what gets fuzzed. Accepted files are
 * read completely: every slot of every example, and a matrix per slot for
 * each position selector. Any crash, overread or leak is a bug.
 *
 *   make fuzz && build-fuzz/fuzz_actcache -max_total_time=600 CORPUS_DIR
 * Seeds: any cache written by the tests or `phishlens interp` tools.
 */
#include "interp/interp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void repair(uint8_t *b, size_t len) {
    if (len < 16 + 40) return;
    size_t off = 16;
    uint32_t ns = rd32(b + 12);
    for (uint32_t s = 0; s < ns && s < 4096 && off + 2 <= len; s++) off += 2 + (size_t)(b[off] | b[off + 1] << 8) + 8;
    if (off + 8 <= len) wr64(b + off, pl_hash64(b, off, 0));
    size_t foff = len - 40;
    uint64_t n = rd64(b + foff + 8), ioff = rd64(b + foff + 16);
    for (uint64_t i = 0; i < n && ioff <= foff && i < (foff - ioff) / 8; i++) {
        uint64_t c = rd64(b + ioff + 8 * i);
        if (c > len || len - c < 16) continue;
        uint64_t ml = rd32(b + c + 4), cl = rd32(b + c + 8);
        if (16 + ml + 8 <= len - c) wr64(b + c + 16 + ml, pl_hash64(b + c, 16 + ml, 0));
        uint64_t po = c + 16 + ml + 8;
        if (po <= len && cl + 8 <= len - po) wr64(b + po + cl, pl_hash64(b + po, cl, 0));
    }
    if (ioff <= foff && n <= (foff - ioff) / 8) wr64(b + foff + 24, pl_hash64(b + ioff, 8 * n, 0));
    wr64(b + foff + 32, pl_hash64(b + foff, 32, 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/fuzz_actcache.%d.plc", (int)getpid());
    uint8_t *b = malloc(size ? size : 1);
    if (!b) return 0;
    memcpy(b, data, size);
    repair(b, size);
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(b);
        return 0;
    }
    fwrite(b, 1, size, f);
    fclose(f);
    free(b);
    pl_actcache *c;
    if (pl_actcache_open(path, &c) != PL_OK) return 0;
    for (size_t i = 0; i < pl_actcache_n_examples(c) && i < 64; i++)
        for (size_t s = 0; s < pl_actcache_n_slots(c); s++) {
            float *x = NULL;
            if (pl_actcache_read(c, i, s, &x) == PL_OK) free(x);
        }
    const pl_pos_sel sels[4] = {{PL_POS_ANSWER, 0}, {PL_POS_MEAN, 0}, {PL_POS_INDEX, -1}, {PL_POS_INDEX, 2}};
    for (size_t s = 0; s < pl_actcache_n_slots(c) && s < 8; s++)
        for (int k = 0; k < 4; k++) {
            const pl_act_slot *sl = pl_actcache_slot(c, s);
            float *M = NULL;
            size_t n, d;
            if (pl_actcache_matrix(c, sl->name, sl->layer, sels[k], &M, &n, &d) == PL_OK) free(M);
        }
    pl_actcache_close(c);
    return 0;
}
