/* gguf_write.c — GGUF writer: metadata of every type (nested arrays too) and
 * tensors, laid out as ggml's docs/gguf.md describes, written atomically.
 *
 * Metadata values are kept already encoded (type + payload) in one buffer;
 * tensors keep a borrowed data pointer until the write. The output is
 * checked by construction: every key and array is validated when added, and
 * tests read each written file back through the validating reader.
 *
 * Does not: stream tensors from a callback, or rewrite a file in place.
 */
#include "io.h"
#include "io_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key;
    uint32_t type;
    size_t off, len; /* payload in w->vals */
} w_kv;

typedef struct {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[4];
    const void *data;
    size_t nbytes;
} w_tensor;

struct pl_gguf_writer {
    uint32_t version;
    w_kv *kvs;
    size_t n_kv, cap_kv;
    w_tensor *ts;
    size_t n_t, cap_t;
    pl_buf vals;
};

pl_status pl_gguf_writer_new(pl_gguf_writer **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return pl_error(PL_ERR_NOMEM, "out of memory");
    (*out)->version = 3;
    return PL_OK;
}

void pl_gguf_writer_free(pl_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) free(w->kvs[i].key);
    for (size_t i = 0; i < w->n_t; i++) free(w->ts[i].name);
    free(w->kvs);
    free(w->ts);
    pl_buf_free(&w->vals);
    free(w);
}

pl_status pl_gguf_writer_set_version(pl_gguf_writer *w, uint32_t version) {
    if (version != 2 && version != 3) return pl_error(PL_ERR_INVALID, "GGUF writer: version %u (want 2 or 3)", version);
    w->version = version;
    return PL_OK;
}

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Append a key whose encoded payload (len bytes at p) has already been checked. */
static pl_status add_kv(pl_gguf_writer *w, const char *key, uint32_t type, const void *p, size_t len) {
    if (!key || !*key) return pl_error(PL_ERR_INVALID, "GGUF writer: empty key");
    if (strlen(key) > 65535) return pl_error(PL_ERR_INVALID, "GGUF writer: key longer than 65535 bytes");
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kvs[i].key, key)) return pl_error(PL_ERR_INVALID, "GGUF writer: duplicate key '%s'", key);
    if (!strcmp(key, "general.alignment")) {
        uint32_t a = 0;
        if (type == PL_GGUF_U32) memcpy(&a, p, 4);
        if (type != PL_GGUF_U32 || a == 0 || (a & (a - 1)) || a > (1u << 30))
            return pl_error(PL_ERR_INVALID, "GGUF writer: general.alignment must be a u32 power of two <= 2^30");
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
        w_kv *k = realloc(w->kvs, cap * sizeof *k);
        if (!k) return pl_error(PL_ERR_NOMEM, "out of memory");
        w->kvs = k;
        w->cap_kv = cap;
    }
    w_kv *e = &w->kvs[w->n_kv];
    e->key = dupstr(key);
    if (!e->key) return pl_error(PL_ERR_NOMEM, "out of memory");
    e->type = type;
    e->off = w->vals.len;
    e->len = len;
    if (pl_buf_append(&w->vals, p, len)) {
        free(e->key);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    w->n_kv++;
    return PL_OK;
}

#define SCALAR_ADDER(fn, ctype, gtype) \
    pl_status fn(pl_gguf_writer *w, const char *key, ctype v) { return add_kv(w, key, gtype, &v, sizeof v); }
SCALAR_ADDER(pl_gguf_writer_add_u8, uint8_t, PL_GGUF_U8)
SCALAR_ADDER(pl_gguf_writer_add_i8, int8_t, PL_GGUF_I8)
SCALAR_ADDER(pl_gguf_writer_add_u16, uint16_t, PL_GGUF_U16)
SCALAR_ADDER(pl_gguf_writer_add_i16, int16_t, PL_GGUF_I16)
SCALAR_ADDER(pl_gguf_writer_add_u32, uint32_t, PL_GGUF_U32)
SCALAR_ADDER(pl_gguf_writer_add_i32, int32_t, PL_GGUF_I32)
SCALAR_ADDER(pl_gguf_writer_add_u64, uint64_t, PL_GGUF_U64)
SCALAR_ADDER(pl_gguf_writer_add_i64, int64_t, PL_GGUF_I64)
SCALAR_ADDER(pl_gguf_writer_add_f32, float, PL_GGUF_F32)
SCALAR_ADDER(pl_gguf_writer_add_f64, double, PL_GGUF_F64)

pl_status pl_gguf_writer_add_bool(pl_gguf_writer *w, const char *key, int v) {
    uint8_t b = v ? 1 : 0;
    return add_kv(w, key, PL_GGUF_BOOL, &b, 1);
}

static pl_status enc_str(pl_buf *b, const char *s, size_t len) {
    uint64_t n = len;
    pl_status st = pl_buf_append(b, &n, 8);
    if (!st) st = pl_buf_append(b, s, len);
    return st;
}

pl_status pl_gguf_writer_add_strn(pl_gguf_writer *w, const char *key, const char *s, size_t len) {
    pl_buf b = {0};
    pl_status st = enc_str(&b, s, len);
    if (!st) st = add_kv(w, key, PL_GGUF_STRING, b.data, b.len);
    pl_buf_free(&b);
    return st;
}

pl_status pl_gguf_writer_add_str(pl_gguf_writer *w, const char *key, const char *s) {
    return pl_gguf_writer_add_strn(w, key, s, strlen(s));
}

static size_t elem_size(pl_gguf_type t) {
    switch (t) {
    case PL_GGUF_U8: case PL_GGUF_I8: case PL_GGUF_BOOL: return 1;
    case PL_GGUF_U16: case PL_GGUF_I16: return 2;
    case PL_GGUF_U32: case PL_GGUF_I32: case PL_GGUF_F32: return 4;
    case PL_GGUF_U64: case PL_GGUF_I64: case PL_GGUF_F64: return 8;
    default: return 0;
    }
}

pl_status pl_gguf_enc_arr(pl_buf *out, pl_gguf_type elem, const void *data, size_t n) {
    size_t es = elem_size(elem), bytes;
    if (!es) return pl_error(PL_ERR_INVALID, "pl_gguf_enc_arr: element type %s is not fixed-size",
                             pl_gguf_type_name(elem));
    if (!pl_mul_ok(es, n, &bytes)) return pl_error(PL_ERR_INVALID, "pl_gguf_enc_arr: size overflows");
    if (elem == PL_GGUF_BOOL)
        for (size_t i = 0; i < n; i++)
            if (((const uint8_t *)data)[i] > 1)
                return pl_error(PL_ERR_INVALID, "pl_gguf_enc_arr: bool element %zu is not 0 or 1", i);
    uint32_t t = elem;
    uint64_t cnt = n;
    pl_status st = pl_buf_append(out, &t, 4);
    if (!st) st = pl_buf_append(out, &cnt, 8);
    if (!st && bytes) st = pl_buf_append(out, data, bytes);
    return st;
}

pl_status pl_gguf_enc_arr_str(pl_buf *out, const char *const *strs, const size_t *lens, size_t n) {
    uint32_t t = PL_GGUF_STRING;
    uint64_t cnt = n;
    pl_status st = pl_buf_append(out, &t, 4);
    if (!st) st = pl_buf_append(out, &cnt, 8);
    for (size_t i = 0; !st && i < n; i++) st = enc_str(out, strs[i], lens ? lens[i] : strlen(strs[i]));
    return st;
}

pl_status pl_gguf_enc_arr_nested(pl_buf *out, const pl_buf *inner, size_t n) {
    uint32_t t = PL_GGUF_ARRAY;
    uint64_t cnt = n;
    pl_status st = pl_buf_append(out, &t, 4);
    if (!st) st = pl_buf_append(out, &cnt, 8);
    for (size_t i = 0; !st && i < n; i++) st = pl_buf_append(out, inner[i].data, inner[i].len);
    return st;
}

pl_status pl_gguf_writer_add_enc_arr(pl_gguf_writer *w, const char *key, const pl_buf *enc) {
    size_t used = 0;
    pl_status st = pl_gguf__check_value((const uint8_t *)enc->data, enc->len, PL_GGUF_ARRAY, key, &used);
    if (st) return pl_error_wrap(PL_ERR_INVALID, "GGUF writer: key '%s': bad encoded array: ", key);
    if (used != enc->len)
        return pl_error(PL_ERR_INVALID, "GGUF writer: key '%s': %zu trailing bytes after the encoded array", key,
                        enc->len - used);
    return add_kv(w, key, PL_GGUF_ARRAY, enc->data, enc->len);
}

pl_status pl_gguf_writer_add_arr(pl_gguf_writer *w, const char *key, pl_gguf_type elem, const void *data, size_t n) {
    pl_buf b = {0};
    pl_status st = pl_gguf_enc_arr(&b, elem, data, n);
    if (!st) st = add_kv(w, key, PL_GGUF_ARRAY, b.data, b.len);
    pl_buf_free(&b);
    return st;
}

pl_status pl_gguf_writer_add_arr_str(pl_gguf_writer *w, const char *key, const char *const *strs,
                                     const size_t *lens, size_t n) {
    pl_buf b = {0};
    pl_status st = pl_gguf_enc_arr_str(&b, strs, lens, n);
    if (!st) st = add_kv(w, key, PL_GGUF_ARRAY, b.data, b.len);
    pl_buf_free(&b);
    return st;
}

pl_status pl_gguf_writer_add_value(pl_gguf_writer *w, const char *key, const pl_gguf_value *v) {
    switch (v->type) {
    case PL_GGUF_U8: return pl_gguf_writer_add_u8(w, key, (uint8_t)v->u);
    case PL_GGUF_I8: return pl_gguf_writer_add_i8(w, key, (int8_t)v->i);
    case PL_GGUF_U16: return pl_gguf_writer_add_u16(w, key, (uint16_t)v->u);
    case PL_GGUF_I16: return pl_gguf_writer_add_i16(w, key, (int16_t)v->i);
    case PL_GGUF_U32: return pl_gguf_writer_add_u32(w, key, (uint32_t)v->u);
    case PL_GGUF_I32: return pl_gguf_writer_add_i32(w, key, (int32_t)v->i);
    case PL_GGUF_U64: return pl_gguf_writer_add_u64(w, key, v->u);
    case PL_GGUF_I64: return pl_gguf_writer_add_i64(w, key, v->i);
    case PL_GGUF_F32: return pl_gguf_writer_add_f32(w, key, (float)v->f);
    case PL_GGUF_F64: return pl_gguf_writer_add_f64(w, key, v->f);
    case PL_GGUF_BOOL: return pl_gguf_writer_add_bool(w, key, v->u != 0);
    case PL_GGUF_STRING: return pl_gguf_writer_add_strn(w, key, v->str, (size_t)v->len);
    case PL_GGUF_ARRAY: {
        pl_buf b = {0};
        uint32_t t = v->arr_type;
        uint64_t cnt = v->count;
        pl_status st = pl_buf_append(&b, &t, 4);
        if (!st) st = pl_buf_append(&b, &cnt, 8);
        if (!st && v->raw_len) st = pl_buf_append(&b, v->raw, (size_t)v->raw_len);
        if (!st) st = pl_gguf_writer_add_enc_arr(w, key, &b);
        pl_buf_free(&b);
        return st;
    }
    default: return pl_error(PL_ERR_INVALID, "GGUF writer: key '%s': unknown value type %u", key, (unsigned)v->type);
    }
}

pl_status pl_gguf_writer_add_tensor(pl_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                    const int64_t *ne, const void *data, size_t nbytes) {
    if (!name || !*name || strlen(name) > 1024)
        return pl_error(PL_ERR_INVALID, "GGUF writer: tensor name empty or longer than 1024 bytes");
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->ts[i].name, name))
            return pl_error(PL_ERR_INVALID, "GGUF writer: duplicate tensor name '%s'", name);
    if (n_dims < 1 || n_dims > 4)
        return pl_error(PL_ERR_INVALID, "GGUF writer: tensor '%s': n_dims %u (want 1..4)", name, n_dims);
    const pl_ggml_type_info *ti = pl_ggml_type(type);
    if (!ti) return pl_error(PL_ERR_INVALID, "GGUF writer: tensor '%s': unknown ggml type %u", name, type);
    int64_t nel = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] <= 0 || __builtin_mul_overflow(nel, ne[d], &nel))
            return pl_error(PL_ERR_INVALID, "GGUF writer: tensor '%s': bad ne[%u] = %lld", name, d, (long long)ne[d]);
    }
    if (ne[0] % ti->blck)
        return pl_error(PL_ERR_INVALID, "GGUF writer: tensor '%s': ne[0] = %lld not a multiple of %lld (%s)", name,
                        (long long)ne[0], (long long)ti->blck, ti->name);
    size_t want;
    if (pl_ggml_nbytes(type, nel, &want) || want != nbytes)
        return pl_error(PL_ERR_INVALID, "GGUF writer: tensor '%s': %zu data bytes given, its shape needs %zu", name,
                        nbytes, want);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 16;
        w_tensor *t = realloc(w->ts, cap * sizeof *t);
        if (!t) return pl_error(PL_ERR_NOMEM, "out of memory");
        w->ts = t;
        w->cap_t = cap;
    }
    w_tensor *t = &w->ts[w->n_t];
    memset(t, 0, sizeof *t);
    t->name = dupstr(name);
    if (!t->name) return pl_error(PL_ERR_NOMEM, "out of memory");
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < 4; d++) t->ne[d] = (uint32_t)d < n_dims ? ne[d] : 1;
    t->data = data;
    t->nbytes = nbytes;
    w->n_t++;
    return PL_OK;
}

static size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

static uint32_t writer_alignment(const pl_gguf_writer *w) {
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kvs[i].key, "general.alignment")) {
            uint32_t a;
            memcpy(&a, w->vals.data + w->kvs[i].off, 4);
            return a;
        }
    return 32;
}

/* Where the bytes go: a memory buffer or an atomic file. */
typedef struct {
    pl_buf *buf;
    pl_afile *file;
    size_t len;
} sink;

static pl_status put(sink *k, const void *p, size_t n) {
    pl_status st = k->buf ? pl_buf_append(k->buf, p, n) : pl_afile_write(k->file, p, n);
    k->len += n;
    return st;
}

static pl_status put_str(sink *k, const char *s) {
    uint64_t n = strlen(s);
    pl_status st = put(k, &n, 8);
    return st ? st : put(k, s, (size_t)n);
}

static pl_status put_pad(sink *k, size_t align) {
    static const uint8_t zeros[64] = {0};
    size_t pad = align_up(k->len, align) - k->len;
    pl_status st = PL_OK;
    while (!st && pad) {
        size_t c = pad < sizeof zeros ? pad : sizeof zeros;
        st = put(k, zeros, c);
        pad -= c;
    }
    return st;
}

static pl_status emit(const pl_gguf_writer *w, sink *k) {
    uint32_t magic = 0x46554747u, version = w->version, align = writer_alignment(w);
    uint64_t nt = w->n_t, nkv = w->n_kv;
    pl_status st = put(k, &magic, 4);
    if (!st) st = put(k, &version, 4);
    if (!st) st = put(k, &nt, 8);
    if (!st) st = put(k, &nkv, 8);
    for (size_t i = 0; !st && i < w->n_kv; i++) {
        const w_kv *e = &w->kvs[i];
        st = put_str(k, e->key);
        if (!st) st = put(k, &e->type, 4);
        if (!st) st = put(k, w->vals.data + e->off, e->len);
    }
    uint64_t off = 0;
    for (size_t i = 0; !st && i < w->n_t; i++) {
        const w_tensor *t = &w->ts[i];
        st = put_str(k, t->name);
        if (!st) st = put(k, &t->n_dims, 4);
        for (uint32_t d = 0; !st && d < t->n_dims; d++) {
            uint64_t ne = (uint64_t)t->ne[d];
            st = put(k, &ne, 8);
        }
        if (!st) st = put(k, &t->type, 4);
        if (!st) st = put(k, &off, 8);
        off = align_up(off + t->nbytes, align);
    }
    /* data section: starts aligned (the file offset and the data-relative
     * offsets then agree on alignment), each tensor padded after */
    if (!st && w->n_t) st = put_pad(k, align);
    for (size_t i = 0; !st && i < w->n_t; i++) {
        st = put(k, w->ts[i].data, w->ts[i].nbytes);
        if (!st) st = put_pad(k, align);
    }
    return st;
}

pl_status pl_gguf_writer_to_buf(const pl_gguf_writer *w, pl_buf *out) {
    sink k = {out, NULL, 0};
    if (emit(w, &k)) return pl_error(PL_ERR_NOMEM, "GGUF writer: out of memory building the file");
    return PL_OK;
}

pl_status pl_gguf_writer_write(const pl_gguf_writer *w, const char *path) {
    pl_afile f;
    pl_status st = pl_afile_open(&f, path);
    if (st) return st;
    sink k = {NULL, &f, 0};
    st = emit(w, &k);
    if (st) {
        pl_afile_abort(&f);
        return st;
    }
    return pl_afile_commit(&f);
}
