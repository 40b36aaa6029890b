/* cache.c — the activation cache file: hook activations per example,
 * zstd-compressed per example chunk, checksummed, random access by example.
 *
 * Layout (all integers little-endian; docs/interp.md has the full table):
 *   header  "PLACTC01" u32 version u32 n_slots
 *           n_slots x { u16 name_len, name, i32 layer, u32 d }
 *           u64 XXH3(header bytes before it)
 *   chunk i "PLCK" u32 meta_len u32 comp_len u32 raw_len
 *           meta { u16 id_len, id, u16 src_len, source, i32 label,
 *                  i32 n_tokens, i32 answer_pos, i32 pos0, i32 n_pos }
 *           u64 XXH3(chunk header + meta)
 *           zstd frame (comp_len bytes) of raw_len bytes: for each slot, the
 *           [n_pos x d] f32 block
 *           u64 XXH3(zstd frame)
 *   index   n_examples x u64 chunk offset
 *   footer  "PLACTIDX" u64 n_examples u64 index_offset u64 XXH3(index)
 *           u64 XXH3(the 32 footer bytes before it)
 *
 * Writes go through pl_afile (temp file + fsync + rename). Open validates the
 * header, footer, index and every chunk's metadata; a chunk's payload checksum
 * and decompressed size are checked when it is read. Every error names the
 * file and the byte offset.
 *
 * Not here: attention patterns (n_ctx-wide per position) and memory-mapping.
 */
#include "interp.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define MAGIC_HDR "PLACTC01"
#define MAGIC_CHUNK "PLCK"
#define MAGIC_FOOT "PLACTIDX"
#define CACHE_VERSION 1u
#define FOOTER_SIZE 40u
#define CHUNK_HDR 16u
#define MAX_RAW ((uint64_t)1 << 31)   /* one example's activations: < 2 GiB */

static int host_is_le(void) {
    const uint16_t x = 1;
    uint8_t c;
    memcpy(&c, &x, 1);
    return c == 1;
}

/* ---- little-endian encode/decode ---------------------------------------- */

static pl_status put(pl_buf *b, const void *p, size_t n) { return pl_buf_append(b, p, n); }
static pl_status put_u16(pl_buf *b, uint16_t v) {
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    return put(b, x, 2);
}
static pl_status put_u32(pl_buf *b, uint32_t v) {
    uint8_t x[4];
    for (int i = 0; i < 4; i++) x[i] = (uint8_t)(v >> (8 * i));
    return put(b, x, 4);
}
static pl_status put_u64(pl_buf *b, uint64_t v) {
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
    return put(b, x, 8);
}
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* ---- writer ---------------------------------------------------------------- */

struct pl_actcache_writer {
    pl_afile f;
    char *path;
    pl_act_slot *slots;
    size_t n_slots;
    uint64_t sum_d;      /* floats per position over all slots */
    uint64_t off;        /* bytes written so far */
    uint64_t *index;
    size_t n, cap;
    int level;
    pl_buf scratch;
    void *zbuf;
    size_t zcap;
};

static pl_status wwrite(pl_actcache_writer *w, const void *p, size_t n) {
    pl_status st = pl_afile_write(&w->f, p, n);
    if (st == PL_OK) w->off += n;
    return st;
}

pl_status pl_actcache_create(const char *path, const pl_act_slot *slots, size_t n_slots, int zstd_level,
                             pl_actcache_writer **out) {
    *out = NULL;
    if (!host_is_le()) return pl_error(PL_ERR_UNSUPPORTED, "%s: activation caches need a little-endian host", path);
    if (n_slots == 0 || n_slots > PL_ACT_MAX_SLOTS)
        return pl_error(PL_ERR_INVALID, "%s: number of slots %zu not in 1..%d", path, n_slots, PL_ACT_MAX_SLOTS);
    if (zstd_level < 0 || zstd_level > 19) return pl_error(PL_ERR_INVALID, "%s: zstd level %d not in 0..19", path, zstd_level);
    uint64_t sum_d = 0;
    for (size_t s = 0; s < n_slots; s++) {
        size_t ln = strnlen(slots[s].name, PL_ACT_MAX_NAME + 1);
        if (ln == 0 || ln > PL_ACT_MAX_NAME)
            return pl_error(PL_ERR_INVALID, "%s: slot %zu: hook name empty or longer than %d bytes", path, s, PL_ACT_MAX_NAME);
        if (slots[s].d == 0 || slots[s].d > (1u << 24))
            return pl_error(PL_ERR_INVALID, "%s: slot %zu (%s): width %u not in 1..2^24", path, s, slots[s].name, slots[s].d);
        if (slots[s].layer < -1) return pl_error(PL_ERR_INVALID, "%s: slot %zu: layer %d < -1", path, s, (int)slots[s].layer);
        for (size_t t = 0; t < s; t++)
            if (slots[t].layer == slots[s].layer && strcmp(slots[t].name, slots[s].name) == 0)
                return pl_error(PL_ERR_INVALID, "%s: slot %zu duplicates slot %zu (%s, layer %d)", path, s, t,
                                slots[s].name, (int)slots[s].layer);
        sum_d += slots[s].d;
    }
    pl_actcache_writer *w = calloc(1, sizeof *w);
    if (!w) return pl_error(PL_ERR_NOMEM, "%s: out of memory", path);
    w->path = strdup(path);
    w->slots = malloc(n_slots * sizeof *w->slots);
    if (!w->path || !w->slots) {
        free(w->path), free(w->slots), free(w);
        return pl_error(PL_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(w->slots, slots, n_slots * sizeof *slots);
    w->n_slots = n_slots;
    w->sum_d = sum_d;
    w->level = zstd_level ? zstd_level : 3;
    pl_status st = pl_afile_open(&w->f, path);
    if (st != PL_OK) {
        free(w->path), free(w->slots), free(w);
        return st;
    }
    pl_buf h = {0};
    st = put(&h, MAGIC_HDR, 8);
    if (st == PL_OK) st = put_u32(&h, CACHE_VERSION);
    if (st == PL_OK) st = put_u32(&h, (uint32_t)n_slots);
    for (size_t s = 0; s < n_slots && st == PL_OK; s++) {
        size_t ln = strlen(slots[s].name);
        st = put_u16(&h, (uint16_t)ln);
        if (st == PL_OK) st = put(&h, slots[s].name, ln);
        if (st == PL_OK) st = put_u32(&h, (uint32_t)slots[s].layer);
        if (st == PL_OK) st = put_u32(&h, slots[s].d);
    }
    if (st == PL_OK) st = put_u64(&h, pl_hash64(h.data, h.len, 0));
    if (st == PL_OK) st = wwrite(w, h.data, h.len);
    pl_buf_free(&h);
    if (st != PL_OK) {
        pl_actcache_writer_abort(w);
        return st;
    }
    *out = w;
    return PL_OK;
}

static pl_status check_meta(const char *path, uint64_t off, const pl_act_meta *m) {
    if (strnlen(m->id, PL_ACT_MAX_NAME + 1) > PL_ACT_MAX_NAME || strnlen(m->source, PL_ACT_MAX_NAME + 1) > PL_ACT_MAX_NAME)
        return pl_error(PL_ERR_FORMAT, "%s: offset %llu: id or source longer than %d bytes", path,
                        (unsigned long long)off, PL_ACT_MAX_NAME);
    if (m->label < -1) return pl_error(PL_ERR_FORMAT, "%s: offset %llu: label %d < -1", path, (unsigned long long)off, (int)m->label);
    if (m->n_tokens < 1 || m->n_pos < 1 || m->pos0 < 0 || (int64_t)m->pos0 + m->n_pos > m->n_tokens)
        return pl_error(PL_ERR_FORMAT,
                        "%s: offset %llu: example '%s': positions %d+%d do not fit in n_tokens %d", path,
                        (unsigned long long)off, m->id, (int)m->pos0, (int)m->n_pos, (int)m->n_tokens);
    if (m->answer_pos < -1 || m->answer_pos >= m->n_tokens)
        return pl_error(PL_ERR_FORMAT, "%s: offset %llu: example '%s': answer_pos %d outside -1..%d", path,
                        (unsigned long long)off, m->id, (int)m->answer_pos, (int)m->n_tokens - 1);
    return PL_OK;
}

pl_status pl_actcache_append(pl_actcache_writer *w, const pl_act_meta *m, const float *const *acts) {
    pl_status st = check_meta(w->path, w->off, m);
    if (st != PL_OK) return pl_error_wrap(PL_ERR_INVALID, "append");
    uint64_t raw = (uint64_t)m->n_pos * w->sum_d * sizeof(float); /* < 2^69 would wrap: bound first */
    if ((uint64_t)m->n_pos > MAX_RAW / sizeof(float) / w->sum_d || raw >= MAX_RAW)
        return pl_error(PL_ERR_RANGE, "%s: example '%s': %llu bytes of activations exceed the 2 GiB chunk limit",
                        w->path, m->id, (unsigned long long)raw);
    for (size_t s = 0; s < w->n_slots; s++) {
        if (!acts[s]) return pl_error(PL_ERR_INVALID, "%s: example '%s': no activations for slot %zu", w->path, m->id, s);
        size_t cnt = (size_t)m->n_pos * w->slots[s].d;
        for (size_t k = 0; k < cnt; k++)
            if (!isfinite(acts[s][k]))
                return pl_error(PL_ERR_NUMERIC, "%s: example '%s': slot %s layer %d: non-finite value at %zu", w->path,
                                m->id, w->slots[s].name, (int)w->slots[s].layer, k);
    }
    /* Raw payload: the slots' blocks one after another. */
    pl_buf *sb = &w->scratch;
    sb->len = 0;
    if ((st = pl_buf_reserve(sb, (size_t)raw)) != PL_OK) return st;
    for (size_t s = 0; s < w->n_slots; s++) put(sb, acts[s], (size_t)m->n_pos * w->slots[s].d * sizeof(float));
    size_t bound = ZSTD_compressBound((size_t)raw);
    if (bound > w->zcap) {
        void *nz = realloc(w->zbuf, bound);
        if (!nz) return pl_error(PL_ERR_NOMEM, "%s: out of memory", w->path);
        w->zbuf = nz;
        w->zcap = bound;
    }
    size_t zn = ZSTD_compress(w->zbuf, w->zcap, sb->data, (size_t)raw, w->level);
    if (ZSTD_isError(zn)) return pl_error(PL_ERR_INTERNAL, "%s: zstd: %s", w->path, ZSTD_getErrorName(zn));
    if (zn >= MAX_RAW) return pl_error(PL_ERR_RANGE, "%s: compressed chunk too large", w->path);
    /* Chunk header + meta. */
    pl_buf h = {0};
    size_t li = strlen(m->id), ls = strlen(m->source);
    uint32_t meta_len = (uint32_t)(2 + li + 2 + ls + 5 * 4);
    st = put(&h, MAGIC_CHUNK, 4);
    if (st == PL_OK) st = put_u32(&h, meta_len);
    if (st == PL_OK) st = put_u32(&h, (uint32_t)zn);
    if (st == PL_OK) st = put_u32(&h, (uint32_t)raw);
    if (st == PL_OK) st = put_u16(&h, (uint16_t)li);
    if (st == PL_OK) st = put(&h, m->id, li);
    if (st == PL_OK) st = put_u16(&h, (uint16_t)ls);
    if (st == PL_OK) st = put(&h, m->source, ls);
    int32_t f5[5] = {m->label, m->n_tokens, m->answer_pos, m->pos0, m->n_pos};
    for (int k = 0; k < 5 && st == PL_OK; k++) st = put_u32(&h, (uint32_t)f5[k]);
    if (st == PL_OK) st = put_u64(&h, pl_hash64(h.data, h.len, 0));
    if (st == PL_OK && w->n == w->cap) {
        size_t nc = w->cap ? 2 * w->cap : 64;
        uint64_t *ni = realloc(w->index, nc * sizeof *ni);
        if (!ni) st = pl_error(PL_ERR_NOMEM, "%s: out of memory", w->path);
        else w->index = ni, w->cap = nc;
    }
    uint64_t at = w->off;
    if (st == PL_OK) st = wwrite(w, h.data, h.len);
    if (st == PL_OK) st = wwrite(w, w->zbuf, zn);
    if (st == PL_OK) {
        h.len = 0;
        st = put_u64(&h, pl_hash64(w->zbuf, zn, 0));
        if (st == PL_OK) st = wwrite(w, h.data, 8);
    }
    pl_buf_free(&h);
    if (st == PL_OK) w->index[w->n++] = at;
    return st;
}

static void writer_free(pl_actcache_writer *w) {
    free(w->path);
    free(w->slots);
    free(w->index);
    free(w->zbuf);
    pl_buf_free(&w->scratch);
    free(w);
}

pl_status pl_actcache_writer_close(pl_actcache_writer *w) {
    pl_buf b = {0};
    pl_status st = PL_OK;
    for (size_t i = 0; i < w->n && st == PL_OK; i++) st = put_u64(&b, w->index[i]);
    uint64_t index_off = w->off;
    uint64_t ih = pl_hash64(b.data ? b.data : "", b.len, 0);
    if (st == PL_OK) st = wwrite(w, b.data ? b.data : "", b.len);
    b.len = 0;
    if (st == PL_OK) st = put(&b, MAGIC_FOOT, 8);
    if (st == PL_OK) st = put_u64(&b, w->n);
    if (st == PL_OK) st = put_u64(&b, index_off);
    if (st == PL_OK) st = put_u64(&b, ih);
    if (st == PL_OK) st = put_u64(&b, pl_hash64(b.data, 32, 0));
    if (st == PL_OK) st = wwrite(w, b.data, b.len);
    pl_buf_free(&b);
    if (st == PL_OK) st = pl_afile_commit(&w->f);
    else pl_afile_abort(&w->f);
    writer_free(w);
    return st;
}

void pl_actcache_writer_abort(pl_actcache_writer *w) {
    if (!w) return;
    pl_afile_abort(&w->f);
    writer_free(w);
}

/* ---- reader ------------------------------------------------------------- */

struct pl_actcache {
    char *path;
    int fd;
    uint64_t size;
    pl_act_slot *slots;
    size_t n_slots;
    uint64_t *slot_off;  /* float offset of each slot within one position-major block */
    uint64_t sum_d;
    size_t n;
    pl_act_meta *meta;
    uint64_t *chunk_off;  /* offset of each chunk */
    uint32_t *comp_len, *raw_len, *meta_len;
    /* one decompressed chunk kept for repeated slot reads */
    size_t cached;        /* example index + 1, 0 = none */
    float *raw;
    size_t raw_cap;
    void *zbuf;
    size_t zcap;
};

static pl_status rd(const pl_actcache *c, uint64_t off, void *p, size_t n, const char *what) {
    if (off > c->size || n > c->size - off)
        return pl_error(PL_ERR_FORMAT, "%s: offset %llu: truncated: %s needs %zu bytes, file has %llu", c->path,
                        (unsigned long long)off, what, n, (unsigned long long)c->size);
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(c->fd, (char *)p + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return pl_error(PL_ERR_IO, "%s: offset %llu: read failed: %s", c->path, (unsigned long long)(off + got),
                            r < 0 ? strerror(errno) : "unexpected end of file");
        got += (size_t)r;
    }
    return PL_OK;
}

void pl_actcache_close(pl_actcache *c) {
    if (!c) return;
    if (c->fd >= 0) close(c->fd);
    free(c->path);
    free(c->slots);
    free(c->slot_off);
    free(c->meta);
    free(c->chunk_off);
    free(c->comp_len);
    free(c->raw_len);
    free(c->meta_len);
    free(c->raw);
    free(c->zbuf);
    free(c);
}

static pl_status read_header(pl_actcache *c, uint64_t *end) {
    uint8_t fix[16];
    pl_status st = rd(c, 0, fix, 16, "header");
    if (st != PL_OK) return st;
    if (memcmp(fix, MAGIC_HDR, 8) != 0) return pl_error(PL_ERR_FORMAT, "%s: offset 0: not an activation cache (bad magic)", c->path);
    uint32_t ver = get_u32(fix + 8);
    if (ver != CACHE_VERSION) return pl_error(PL_ERR_UNSUPPORTED, "%s: offset 8: cache version %u (want %u)", c->path, ver, CACHE_VERSION);
    uint32_t ns = get_u32(fix + 12);
    if (ns == 0 || ns > PL_ACT_MAX_SLOTS) return pl_error(PL_ERR_FORMAT, "%s: offset 12: n_slots %u not in 1..%d", c->path, ns, PL_ACT_MAX_SLOTS);
    c->slots = calloc(ns, sizeof *c->slots);
    c->slot_off = calloc(ns, sizeof *c->slot_off);
    if (!c->slots || !c->slot_off) return pl_error(PL_ERR_NOMEM, "%s: out of memory", c->path);
    c->n_slots = ns;
    /* Hash the header incrementally by re-reading it whole once its length is known. */
    uint64_t off = 16;
    for (uint32_t s = 0; s < ns; s++) {
        uint8_t b2[2];
        if ((st = rd(c, off, b2, 2, "slot name length")) != PL_OK) return st;
        uint16_t ln = get_u16(b2);
        if (ln == 0 || ln > PL_ACT_MAX_NAME)
            return pl_error(PL_ERR_FORMAT, "%s: offset %llu: slot %u: name length %u not in 1..%d", c->path,
                            (unsigned long long)off, s, ln, PL_ACT_MAX_NAME);
        if ((st = rd(c, off + 2, c->slots[s].name, ln, "slot name")) != PL_OK) return st;
        c->slots[s].name[ln] = 0;
        uint8_t b8[8];
        if ((st = rd(c, off + 2 + ln, b8, 8, "slot layer and width")) != PL_OK) return st;
        c->slots[s].layer = (int32_t)get_u32(b8);
        c->slots[s].d = get_u32(b8 + 4);
        if (c->slots[s].layer < -1 || c->slots[s].d == 0 || c->slots[s].d > (1u << 24))
            return pl_error(PL_ERR_FORMAT, "%s: offset %llu: slot %u: layer %d / width %u out of range", c->path,
                            (unsigned long long)(off + 2 + ln), s, (int)c->slots[s].layer, c->slots[s].d);
        c->slot_off[s] = c->sum_d;
        c->sum_d += c->slots[s].d;
        off += 2 + (uint64_t)ln + 8;
    }
    uint8_t *h = malloc((size_t)off + 8);
    if (!h) return pl_error(PL_ERR_NOMEM, "%s: out of memory", c->path);
    st = rd(c, 0, h, (size_t)off + 8, "header checksum");
    if (st == PL_OK && pl_hash64(h, (size_t)off, 0) != get_u64(h + off))
        st = pl_error(PL_ERR_FORMAT, "%s: offset %llu: header checksum mismatch (corrupt header)", c->path,
                      (unsigned long long)off);
    free(h);
    *end = off + 8;
    return st;
}

static pl_status read_chunk_meta(pl_actcache *c, size_t i, uint64_t off, uint64_t *next) {
    uint8_t hdr[CHUNK_HDR];
    pl_status st = rd(c, off, hdr, CHUNK_HDR, "chunk header");
    if (st != PL_OK) return st;
    if (memcmp(hdr, MAGIC_CHUNK, 4) != 0)
        return pl_error(PL_ERR_FORMAT, "%s: offset %llu: example %zu: bad chunk magic", c->path, (unsigned long long)off, i);
    uint32_t ml = get_u32(hdr + 4), cl = get_u32(hdr + 8), rl = get_u32(hdr + 12);
    if (ml < 24 || ml > 2 * PL_ACT_MAX_NAME + 24)
        return pl_error(PL_ERR_FORMAT, "%s: offset %llu: example %zu: metadata length %u out of range", c->path,
                        (unsigned long long)(off + 4), i, ml);
    uint8_t mb[CHUNK_HDR + 2 * PL_ACT_MAX_NAME + 24 + 8];
    if ((st = rd(c, off, mb, CHUNK_HDR + ml + 8, "chunk metadata")) != PL_OK) return st;
    if (pl_hash64(mb, CHUNK_HDR + ml, 0) != get_u64(mb + CHUNK_HDR + ml))
        return pl_error(PL_ERR_FORMAT, "%s: offset %llu: example %zu: metadata checksum mismatch", c->path,
                        (unsigned long long)off, i);
    const uint8_t *p = mb + CHUNK_HDR;
    pl_act_meta *m = &c->meta[i];
    uint16_t li = get_u16(p);
    if ((size_t)li + 24 > ml)
        return pl_error(PL_ERR_FORMAT, "%s: offset %llu: example %zu: id length %u overruns metadata", c->path,
                        (unsigned long long)(off + CHUNK_HDR), i, li);
    memcpy(m->id, p + 2, li);
    m->id[li] = 0;
    uint16_t ls = get_u16(p + 2 + li);
    if ((size_t)li + ls + 24 != ml)
        return pl_error(PL_ERR_FORMAT, "%s: offset %llu: example %zu: source length %u disagrees with metadata length",
                        c->path, (unsigned long long)(off + CHUNK_HDR + 2 + li), i, ls);
    memcpy(m->source, p + 4 + li, ls);
    m->source[ls] = 0;
    const uint8_t *q = p + 4 + li + ls;
    m->label = (int32_t)get_u32(q);
    m->n_tokens = (int32_t)get_u32(q + 4);
    m->answer_pos = (int32_t)get_u32(q + 8);
    m->pos0 = (int32_t)get_u32(q + 12);
    m->n_pos = (int32_t)get_u32(q + 16);
    if ((st = check_meta(c->path, off + CHUNK_HDR, m)) != PL_OK) return st;
    /* n_pos < 2^31 and sum_d < 2^36: bound the product before forming it */
    if ((uint64_t)m->n_pos > MAX_RAW / sizeof(float) / c->sum_d)
        return pl_error(PL_ERR_FORMAT, "%s: offset %llu: example %zu: %d positions x %llu floats exceed the chunk limit",
                        c->path, (unsigned long long)(off + CHUNK_HDR), i, (int)m->n_pos, (unsigned long long)c->sum_d);
    uint64_t want_raw = (uint64_t)m->n_pos * c->sum_d * sizeof(float);
    if (rl != want_raw)
        return pl_error(PL_ERR_FORMAT, "%s: offset %llu: example %zu: raw size %u, want %llu (n_pos x widths)", c->path,
                        (unsigned long long)(off + 12), i, rl, (unsigned long long)want_raw);
    c->meta_len[i] = ml;
    c->comp_len[i] = cl;
    c->raw_len[i] = rl;
    *next = off + CHUNK_HDR + ml + 8 + (uint64_t)cl + 8;
    return PL_OK;
}

pl_status pl_actcache_open(const char *path, pl_actcache **out) {
    *out = NULL;
    if (!host_is_le()) return pl_error(PL_ERR_UNSUPPORTED, "%s: activation caches need a little-endian host", path);
    pl_actcache *c = calloc(1, sizeof *c);
    if (!c) return pl_error(PL_ERR_NOMEM, "%s: out of memory", path);
    c->fd = -1;
    c->path = strdup(path);
    if (!c->path) {
        free(c);
        return pl_error(PL_ERR_NOMEM, "%s: out of memory", path);
    }
    pl_status st = PL_OK;
    c->fd = open(path, O_RDONLY);
    struct stat sb;
    if (c->fd < 0 || fstat(c->fd, &sb) != 0) {
        st = pl_error(PL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    c->size = (uint64_t)sb.st_size;
    uint64_t hdr_end = 0;
    if ((st = read_header(c, &hdr_end)) != PL_OK) goto fail;
    if (c->size < hdr_end + FOOTER_SIZE) {
        st = pl_error(PL_ERR_FORMAT, "%s: offset %llu: truncated: no room for the %u-byte footer", path,
                      (unsigned long long)c->size, FOOTER_SIZE);
        goto fail;
    }
    uint64_t foff = c->size - FOOTER_SIZE;
    uint8_t f[FOOTER_SIZE];
    if ((st = rd(c, foff, f, FOOTER_SIZE, "footer")) != PL_OK) goto fail;
    if (memcmp(f, MAGIC_FOOT, 8) != 0 || pl_hash64(f, 32, 0) != get_u64(f + 32)) {
        st = pl_error(PL_ERR_FORMAT, "%s: offset %llu: bad footer (truncated or corrupt file)", path, (unsigned long long)foff);
        goto fail;
    }
    uint64_t n = get_u64(f + 8), ioff = get_u64(f + 16), ih = get_u64(f + 24);
    if (ioff < hdr_end || ioff > foff || n > (foff - ioff) / 8 || ioff + 8 * n != foff) {
        st = pl_error(PL_ERR_FORMAT, "%s: offset %llu: footer: index offset %llu / %llu examples do not fit the file",
                      path, (unsigned long long)(foff + 8), (unsigned long long)ioff, (unsigned long long)n);
        goto fail;
    }
    c->n = (size_t)n;
    size_t nn = c->n ? c->n : 1;
    c->meta = calloc(nn, sizeof *c->meta);
    c->chunk_off = calloc(nn, sizeof *c->chunk_off);
    c->comp_len = calloc(nn, sizeof *c->comp_len);
    c->raw_len = calloc(nn, sizeof *c->raw_len);
    c->meta_len = calloc(nn, sizeof *c->meta_len);
    uint8_t *idx = malloc(8 * nn);
    if (!c->meta || !c->chunk_off || !c->comp_len || !c->raw_len || !c->meta_len || !idx) {
        free(idx);
        st = pl_error(PL_ERR_NOMEM, "%s: out of memory (%zu examples)", path, c->n);
        goto fail;
    }
    st = rd(c, ioff, idx, 8 * c->n, "index");
    if (st == PL_OK && pl_hash64(idx, 8 * c->n, 0) != ih)
        st = pl_error(PL_ERR_FORMAT, "%s: offset %llu: index checksum mismatch", path, (unsigned long long)ioff);
    /* Chunks must tile the space between the header and the index exactly. */
    uint64_t expect = hdr_end;
    for (size_t i = 0; i < c->n && st == PL_OK; i++) {
        c->chunk_off[i] = get_u64(idx + 8 * i);
        if (c->chunk_off[i] != expect) {
            st = pl_error(PL_ERR_FORMAT, "%s: offset %llu: index entry %zu points at %llu, want %llu", path,
                          (unsigned long long)(ioff + 8 * i), i, (unsigned long long)c->chunk_off[i],
                          (unsigned long long)expect);
            break;
        }
        st = read_chunk_meta(c, i, expect, &expect);
        if (st == PL_OK && expect > ioff)
            st = pl_error(PL_ERR_FORMAT, "%s: offset %llu: example %zu: chunk runs past the index", path,
                          (unsigned long long)c->chunk_off[i], i);
    }
    if (st == PL_OK && expect != ioff)
        st = pl_error(PL_ERR_FORMAT, "%s: offset %llu: %llu stray bytes before the index", path,
                      (unsigned long long)expect, (unsigned long long)(ioff - expect));
    free(idx);
    if (st != PL_OK) goto fail;
    *out = c;
    return PL_OK;
fail:
    pl_actcache_close(c);
    return st;
}

size_t pl_actcache_n_examples(const pl_actcache *c) { return c->n; }
size_t pl_actcache_n_slots(const pl_actcache *c) { return c->n_slots; }
const pl_act_slot *pl_actcache_slot(const pl_actcache *c, size_t s) { return s < c->n_slots ? &c->slots[s] : NULL; }
const pl_act_meta *pl_actcache_meta(const pl_actcache *c, size_t i) { return i < c->n ? &c->meta[i] : NULL; }

int pl_actcache_find_slot(const pl_actcache *c, const char *name, int layer) {
    for (size_t s = 0; s < c->n_slots; s++)
        if (c->slots[s].layer == layer && strcmp(c->slots[s].name, name) == 0) return (int)s;
    return -1;
}

/* Decompress example i into c->raw (kept until another example is loaded). */
static pl_status load_chunk(pl_actcache *c, size_t i) {
    if (c->cached == i + 1) return PL_OK;
    c->cached = 0;
    uint32_t cl = c->comp_len[i], rl = c->raw_len[i];
    uint64_t poff = c->chunk_off[i] + CHUNK_HDR + c->meta_len[i] + 8;
    if ((size_t)cl + 8 > c->zcap) {
        void *nz = realloc(c->zbuf, (size_t)cl + 8);
        if (!nz) return pl_error(PL_ERR_NOMEM, "%s: out of memory", c->path);
        c->zbuf = nz;
        c->zcap = (size_t)cl + 8;
    }
    if (rl > c->raw_cap) {
        void *nr = realloc(c->raw, rl);
        if (!nr) return pl_error(PL_ERR_NOMEM, "%s: out of memory", c->path);
        c->raw = nr;
        c->raw_cap = rl;
    }
    pl_status st = rd(c, poff, c->zbuf, (size_t)cl + 8, "activation payload");
    if (st != PL_OK) return st;
    uint8_t *z = c->zbuf;
    if (pl_hash64(z, cl, 0) != get_u64(z + cl))
        return pl_error(PL_ERR_FORMAT, "%s: offset %llu: example %zu ('%s'): payload checksum mismatch", c->path,
                        (unsigned long long)poff, i, c->meta[i].id);
    size_t r = ZSTD_decompress(c->raw, rl, z, cl);
    if (ZSTD_isError(r) || r != rl)
        return pl_error(PL_ERR_FORMAT, "%s: offset %llu: example %zu: zstd payload decodes to %s (want %u bytes)",
                        c->path, (unsigned long long)poff, i, ZSTD_isError(r) ? ZSTD_getErrorName(r) : "a different size", rl);
    c->cached = i + 1;
    return PL_OK;
}

pl_status pl_actcache_read(pl_actcache *c, size_t i, size_t s, float **out) {
    *out = NULL;
    if (i >= c->n || s >= c->n_slots)
        return pl_error(PL_ERR_RANGE, "%s: example %zu / slot %zu out of range (%zu examples, %zu slots)", c->path, i,
                        s, c->n, c->n_slots);
    pl_status st = load_chunk(c, i);
    if (st != PL_OK) return st;
    size_t cnt = (size_t)c->meta[i].n_pos * c->slots[s].d;
    float *o = malloc(cnt * sizeof *o);
    if (!o) return pl_error(PL_ERR_NOMEM, "%s: out of memory", c->path);
    memcpy(o, c->raw + (size_t)c->meta[i].n_pos * c->slot_off[s], cnt * sizeof *o);
    *out = o;
    return PL_OK;
}

pl_status pl_pos_sel_parse(const char *s, pl_pos_sel *out) {
    if (!s || !*s) return pl_error(PL_ERR_INVALID, "position selector: empty (want answer, mean or an integer)");
    if (strcmp(s, "answer") == 0) {
        *out = (pl_pos_sel){PL_POS_ANSWER, 0};
        return PL_OK;
    }
    if (strcmp(s, "mean") == 0) {
        *out = (pl_pos_sel){PL_POS_MEAN, 0};
        return PL_OK;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < -(1LL << 31) || v > (1LL << 31))
        return pl_error(PL_ERR_INVALID, "position selector '%s': want answer, mean or an integer", s);
    *out = (pl_pos_sel){PL_POS_INDEX, v};
    return PL_OK;
}

pl_status pl_actcache_matrix(pl_actcache *c, const char *name, int layer, pl_pos_sel sel, float **out, size_t *n,
                             size_t *d) {
    *out = NULL;
    int s = pl_actcache_find_slot(c, name, layer);
    if (s < 0) return pl_error(PL_ERR_NOT_FOUND, "%s: no hook %s at layer %d in this cache", c->path, name, layer);
    size_t dd = c->slots[s].d, total;
    if (!pl_mul_ok(c->n ? c->n : 1, dd * sizeof(float), &total)) return pl_error(PL_ERR_RANGE, "%s: matrix too large", c->path);
    float *M = malloc(total);
    if (!M) return pl_error(PL_ERR_NOMEM, "%s: out of memory for a %zu x %zu matrix", c->path, c->n, dd);
    for (size_t i = 0; i < c->n; i++) {
        const pl_act_meta *m = &c->meta[i];
        int64_t p = -1;
        if (sel.kind == PL_POS_ANSWER) {
            p = m->answer_pos;
            if (p < 0) {
                free(M);
                return pl_error(PL_ERR_INVALID, "%s: example %zu ('%s') has no answer position", c->path, i, m->id);
            }
        } else if (sel.kind == PL_POS_INDEX) {
            p = sel.index < 0 ? m->n_tokens + sel.index : sel.index;
        }
        if (sel.kind != PL_POS_MEAN && (p < m->pos0 || p >= (int64_t)m->pos0 + m->n_pos)) {
            free(M);
            return pl_error(PL_ERR_RANGE, "%s: example %zu ('%s'): position %lld not stored (positions %d..%d)", c->path,
                            i, m->id, (long long)p, (int)m->pos0, (int)(m->pos0 + m->n_pos - 1));
        }
        pl_status st = load_chunk(c, i);
        if (st != PL_OK) {
            free(M);
            return st;
        }
        const float *blk = c->raw + (size_t)m->n_pos * c->slot_off[s];
        float *row = M + i * dd;
        if (sel.kind == PL_POS_MEAN) {
            for (size_t k = 0; k < dd; k++) {
                double acc = 0;
                for (int32_t q = 0; q < m->n_pos; q++) acc += (double)blk[(size_t)q * dd + k];
                row[k] = (float)(acc / m->n_pos);
            }
        } else {
            memcpy(row, blk + (size_t)(p - m->pos0) * dd, dd * sizeof(float));
        }
    }
    *out = M;
    *n = c->n;
    *d = dd;
    return PL_OK;
}

void pl_hook_fullname(const char *name, int layer, char *buf, size_t cap) {
    if (layer < 0) snprintf(buf, cap, "%s", name);
    else snprintf(buf, cap, "blocks.%d.%s", layer, name);
}
