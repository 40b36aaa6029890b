/* gguf.c — GGUF reader: mmap, validate everything, then hand out views.
 *
 * Follows ggml's docs/gguf.md (v2/v3): header (magic "GGUF", u32 version,
 * u64 tensor count, u64 kv count), the kv pairs (u64-length string key, u32
 * value type, value; arrays are u32 element type + u64 count + elements and
 * may nest), the tensor infos (name, u32 n_dims, u64 ne[n_dims], u32 ggml
 * type, u64 offset), padding to general.alignment, then the data section.
 * Every read goes through a bounds-checked cursor, so a truncated or corrupted
 * file gives a PL_ERR_FORMAT message naming file, offset and field, never an
 * out-of-bounds read. All checks happen in pl_gguf_open; the accessors then
 * trust the validated bytes.
 *
 * Does not: read GGUF v1 or big-endian files, check that tensor data is
 * densely packed (only aligned, inside the file and non-overlapping), or
 * validate UTF-8 in strings (the tokenizer checks what it uses).
 */
#include "io.h"
#include "io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC 0x46554747u /* "GGUF" read as little-endian u32 */
#define GGUF_DEFAULT_ALIGNMENT 32
#define MAX_KEY_LEN 65535      /* the spec's limit for keys */
#define MAX_NAME_LEN 1024      /* ggml itself caps tensor names at 63 bytes */
#define MAX_NEST 16            /* nested array depth we accept */
#define MAX_ALIGNMENT (1u << 30)

/* ---- ggml type table --------------------------------------------------- */

/* Block sizes and bytes per block from ggml-common.h (QK_K = 256). */
static const pl_ggml_type_info ggml_types[PL_GGML_TYPE_COUNT] = {
    [PL_GGML_F32] = {"f32", 1, 4},          [PL_GGML_F16] = {"f16", 1, 2},
    [PL_GGML_Q4_0] = {"q4_0", 32, 18},      [PL_GGML_Q4_1] = {"q4_1", 32, 20},
    [PL_GGML_Q5_0] = {"q5_0", 32, 22},      [PL_GGML_Q5_1] = {"q5_1", 32, 24},
    [PL_GGML_Q8_0] = {"q8_0", 32, 34},      [PL_GGML_Q8_1] = {"q8_1", 32, 36},
    [PL_GGML_Q2_K] = {"q2_K", 256, 84},     [PL_GGML_Q3_K] = {"q3_K", 256, 110},
    [PL_GGML_Q4_K] = {"q4_K", 256, 144},    [PL_GGML_Q5_K] = {"q5_K", 256, 176},
    [PL_GGML_Q6_K] = {"q6_K", 256, 210},    [PL_GGML_Q8_K] = {"q8_K", 256, 292},
    [PL_GGML_IQ2_XXS] = {"iq2_xxs", 256, 66}, [PL_GGML_IQ2_XS] = {"iq2_xs", 256, 74},
    [PL_GGML_IQ3_XXS] = {"iq3_xxs", 256, 98}, [PL_GGML_IQ1_S] = {"iq1_s", 256, 50},
    [PL_GGML_IQ4_NL] = {"iq4_nl", 32, 18},  [PL_GGML_IQ3_S] = {"iq3_s", 256, 110},
    [PL_GGML_IQ2_S] = {"iq2_s", 256, 82},   [PL_GGML_IQ4_XS] = {"iq4_xs", 256, 136},
    [PL_GGML_I8] = {"i8", 1, 1},            [PL_GGML_I16] = {"i16", 1, 2},
    [PL_GGML_I32] = {"i32", 1, 4},          [PL_GGML_I64] = {"i64", 1, 8},
    [PL_GGML_F64] = {"f64", 1, 8},          [PL_GGML_IQ1_M] = {"iq1_m", 256, 56},
    [PL_GGML_BF16] = {"bf16", 1, 2},        [PL_GGML_TQ1_0] = {"tq1_0", 256, 54},
    [PL_GGML_TQ2_0] = {"tq2_0", 256, 66},   [PL_GGML_MXFP4] = {"mxfp4", 32, 17},
};

const pl_ggml_type_info *pl_ggml_type(uint32_t type) {
    if (type >= PL_GGML_TYPE_COUNT || !ggml_types[type].name) return NULL;
    return &ggml_types[type];
}

pl_status pl_ggml_nbytes(uint32_t type, int64_t n, size_t *out) {
    const pl_ggml_type_info *t = pl_ggml_type(type);
    if (!t) return pl_error(PL_ERR_FORMAT, "unknown ggml type id %u", type);
    if (n < 0 || n % t->blck)
        return pl_error(PL_ERR_FORMAT, "%lld elements of %s: not a multiple of the block size %lld",
                        (long long)n, t->name, (long long)t->blck);
    if (!pl_mul_ok((size_t)(n / t->blck), t->type_size, out))
        return pl_error(PL_ERR_FORMAT, "%lld elements of %s: byte size overflows", (long long)n, t->name);
    return PL_OK;
}

/* ---- value types ------------------------------------------------------- */

static const char *const type_names[PL_GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};

const char *pl_gguf_type_name(uint32_t type) {
    return type < PL_GGUF_TYPE_COUNT ? type_names[type] : "?";
}

/* Encoded size of a fixed-size scalar type; 0 for string/array/unknown. */
static size_t scalar_size(uint32_t type) {
    switch (type) {
    case PL_GGUF_U8: case PL_GGUF_I8: case PL_GGUF_BOOL: return 1;
    case PL_GGUF_U16: case PL_GGUF_I16: return 2;
    case PL_GGUF_U32: case PL_GGUF_I32: case PL_GGUF_F32: return 4;
    case PL_GGUF_U64: case PL_GGUF_I64: case PL_GGUF_F64: return 8;
    default: return 0;
    }
}

/* ---- the reader object ------------------------------------------------- */

typedef struct {
    char *key;
    uint64_t key_off;  /* file offset of the key (for messages) */
    pl_gguf_value v;
    uint64_t *index;   /* owned offset index of a variable-size array, or NULL */
} kv_entry;

struct pl_gguf {
    char *name;
    const uint8_t *base;
    size_t size;
    int mapped;
    uint32_t version;
    uint64_t alignment, data_offset;
    int64_t n_kv, n_tensors;
    kv_entry *kvs;
    pl_gguf_tensor *tensors;
    char **tensor_names;        /* owned copies, tensors[i].name points here */
    int64_t *kv_hash, *t_hash;  /* open addressing: slot = index + 1, 0 = empty */
    size_t kv_hash_cap, t_hash_cap;
};

/* ---- bounds-checked cursor --------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t n, pos;
    const char *name;
} cursor;

static pl_status truncated(const cursor *c, size_t need, const char *what) {
    return pl_error(PL_ERR_FORMAT, "%s: offset %zu: %s: truncated (needs %zu bytes, %zu left in file)", c->name,
                    c->pos, what, need, c->n - c->pos);
}

static pl_status need(const cursor *c, size_t k, const char *what) {
    return (c->n - c->pos < k) ? truncated(c, k, what) : PL_OK;
}

static uint16_t ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t ld64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static pl_status rd_u32(cursor *c, uint32_t *v, const char *what) {
    pl_status st = need(c, 4, what);
    if (st) return st;
    *v = ld32(c->p + c->pos);
    c->pos += 4;
    return PL_OK;
}

static pl_status rd_u64(cursor *c, uint64_t *v, const char *what) {
    pl_status st = need(c, 8, what);
    if (st) return st;
    *v = ld64(c->p + c->pos);
    c->pos += 8;
    return PL_OK;
}

/* A GGUF string: u64 length then bytes. */
static pl_status rd_str(cursor *c, const char **s, uint64_t *len, const char *what) {
    size_t at = c->pos;
    pl_status st = rd_u64(c, len, what);
    if (st) return st;
    if (*len > c->n - c->pos) {
        c->pos = at;
        return pl_error(PL_ERR_FORMAT, "%s: offset %zu: %s: string length %llu exceeds the %zu bytes left in file",
                        c->name, at, what, (unsigned long long)*len, c->n - c->pos - 8);
    }
    *s = (const char *)(c->p + c->pos);
    c->pos += (size_t)*len;
    return PL_OK;
}

/* Decode a fixed-size scalar at p into v (type already set). */
static void decode_scalar(pl_gguf_value *v, const uint8_t *p) {
    int64_t s = 0;
    uint64_t u = 0;
    int is_signed = 0;
    v->is_int = 1;
    switch (v->type) {
    case PL_GGUF_U8: u = p[0]; break;
    case PL_GGUF_BOOL: u = p[0]; v->is_int = 0; break;
    case PL_GGUF_I8: s = (int8_t)p[0]; is_signed = 1; break;
    case PL_GGUF_U16: u = ld16(p); break;
    case PL_GGUF_I16: s = (int16_t)ld16(p); is_signed = 1; break;
    case PL_GGUF_U32: u = ld32(p); break;
    case PL_GGUF_I32: s = (int32_t)ld32(p); is_signed = 1; break;
    case PL_GGUF_U64: u = ld64(p); break;
    case PL_GGUF_I64: s = (int64_t)ld64(p); is_signed = 1; break;
    case PL_GGUF_F32: {
        float f;
        memcpy(&f, p, 4);
        v->f = (double)f;
        v->is_int = 0;
        return;
    }
    case PL_GGUF_F64: memcpy(&v->f, p, 8); v->is_int = 0; return;
    default: v->is_int = 0; return;
    }
    if (is_signed) {
        v->i = s;
        v->u = s >= 0 ? (uint64_t)s : 0;
        v->f = (double)s;
    } else {
        v->u = u;
        v->i = u <= (uint64_t)INT64_MAX ? (int64_t)u : 0;
        v->f = (double)u;
    }
}

/* Parse (and validate) one value of `type` at the cursor into *v. depth
 * counts array nesting; want_index asks for an offset index when the value
 * is an array of strings or arrays (top-level values only). */
static pl_status parse_value(cursor *c, uint32_t type, int depth, pl_gguf_value *v, uint64_t **index,
                             const char *key) {
    size_t at = c->pos;
    memset(v, 0, sizeof *v);
    if (type >= PL_GGUF_TYPE_COUNT)
        return pl_error(PL_ERR_FORMAT, "%s: offset %zu: key '%s': unknown value type %u", c->name, at, key, type);
    v->type = (pl_gguf_type)type;
    size_t ss = scalar_size(type);
    if (ss) {
        pl_status st = need(c, ss, key);
        if (st) return st;
        if (type == PL_GGUF_BOOL && c->p[c->pos] > 1)
            return pl_error(PL_ERR_FORMAT, "%s: offset %zu: key '%s': bool value %u is not 0 or 1", c->name, at,
                            key, c->p[c->pos]);
        decode_scalar(v, c->p + c->pos);
        c->pos += ss;
        return PL_OK;
    }
    if (type == PL_GGUF_STRING) return rd_str(c, &v->str, &v->len, key);

    /* array */
    if (depth >= MAX_NEST)
        return pl_error(PL_ERR_FORMAT, "%s: offset %zu: key '%s': arrays nested deeper than %d", c->name, at, key,
                        MAX_NEST);
    uint32_t et;
    uint64_t count;
    pl_status st = rd_u32(c, &et, key);
    if (!st) st = rd_u64(c, &count, key);
    if (st) return st;
    if (et >= PL_GGUF_TYPE_COUNT)
        return pl_error(PL_ERR_FORMAT, "%s: offset %zu: key '%s': unknown array element type %u", c->name, at, key,
                        et);
    v->arr_type = (pl_gguf_type)et;
    v->count = count;
    v->raw = c->p + c->pos;
    size_t left = c->n - c->pos;
    size_t es = scalar_size(et);
    /* Every element takes at least this many bytes: reject absurd counts
     * before looping or allocating. */
    size_t min_elem = es ? es : (et == PL_GGUF_STRING ? 8 : 12);
    if (count > left / min_elem)
        return pl_error(PL_ERR_FORMAT,
                        "%s: offset %zu: key '%s': array of %llu %s elements cannot fit in the %zu bytes left in file",
                        c->name, at, key, (unsigned long long)count, pl_gguf_type_name(et), left);
    if (es) {
        size_t bytes = (size_t)count * es;
        if (et == PL_GGUF_BOOL)
            for (size_t k = 0; k < bytes; k++)
                if (c->p[c->pos + k] > 1)
                    return pl_error(PL_ERR_FORMAT, "%s: offset %zu: key '%s': bool element %zu is %u, not 0 or 1",
                                    c->name, c->pos + k, key, k, c->p[c->pos + k]);
        c->pos += bytes;
        v->raw_len = bytes;
        return PL_OK;
    }
    uint64_t *idx = NULL;
    if (index && count) {
        idx = malloc((size_t)count * sizeof *idx);
        if (!idx) return pl_error(PL_ERR_NOMEM, "%s: key '%s': out of memory for %llu array offsets", c->name, key,
                                  (unsigned long long)count);
    }
    size_t start = c->pos;
    for (uint64_t k = 0; k < count; k++) {
        if (idx) idx[k] = c->pos - start;
        if (et == PL_GGUF_STRING) {
            const char *s;
            uint64_t len;
            st = rd_str(c, &s, &len, key);
        } else {
            /* an element of an array of arrays is itself "u32 type, u64 count, data" */
            pl_gguf_value sub;
            st = parse_value(c, PL_GGUF_ARRAY, depth + 1, &sub, NULL, key);
        }
        if (st) {
            free(idx);
            return st;
        }
    }
    v->raw_len = c->pos - start;
    v->index = idx;
    if (index) *index = idx;
    return PL_OK;
}

/* ---- array element access (on validated bytes) ------------------------- */

/* Decode the element that starts at p (inside arr's raw bytes) into out. */
static void element_at(const pl_gguf_value *arr, const uint8_t *p, pl_gguf_value *out) {
    memset(out, 0, sizeof *out);
    out->type = arr->arr_type;
    if (scalar_size(arr->arr_type)) {
        decode_scalar(out, p);
    } else if (arr->arr_type == PL_GGUF_STRING) {
        out->len = ld64(p);
        out->str = (const char *)(p + 8);
    } else {
        out->arr_type = (pl_gguf_type)ld32(p);
        out->count = ld64(p + 4);
        out->raw = p + 12;
        /* the length of the nested raw bytes is found by walking it */
        const uint8_t *q = out->raw;
        size_t es = scalar_size(out->arr_type);
        if (es) {
            q += out->count * es;
        } else {
            pl_gguf_value tmp;
            for (uint64_t k = 0; k < out->count; k++) {
                element_at(out, q, &tmp);
                q = out->arr_type == PL_GGUF_STRING ? (const uint8_t *)tmp.str + tmp.len : tmp.raw + tmp.raw_len;
            }
        }
        out->raw_len = (uint64_t)(q - out->raw);
    }
}

pl_status pl_gguf_arr_get(const pl_gguf_value *arr, uint64_t i, pl_gguf_value *out) {
    if (arr->type != PL_GGUF_ARRAY) return pl_error(PL_ERR_INVALID, "pl_gguf_arr_get: value is not an array");
    if (i >= arr->count)
        return pl_error(PL_ERR_RANGE, "array index %llu out of range (count %llu)", (unsigned long long)i,
                        (unsigned long long)arr->count);
    size_t es = scalar_size(arr->arr_type);
    const uint8_t *p;
    if (es) {
        p = arr->raw + i * es;
    } else if (arr->index) {
        p = arr->raw + arr->index[i];
    } else {
        /* nested array without an index: walk */
        p = arr->raw;
        pl_gguf_value tmp;
        for (uint64_t k = 0; k < i; k++) {
            element_at(arr, p, &tmp);
            p = arr->arr_type == PL_GGUF_STRING ? (const uint8_t *)tmp.str + tmp.len : tmp.raw + tmp.raw_len;
        }
    }
    element_at(arr, p, out);
    return PL_OK;
}

pl_status pl_gguf_arr_str(const pl_gguf_value *arr, uint64_t i, const char **s, size_t *len) {
    if (arr->type != PL_GGUF_ARRAY || arr->arr_type != PL_GGUF_STRING)
        return pl_error(PL_ERR_FORMAT, "array of %s, not of strings",
                        arr->type == PL_GGUF_ARRAY ? pl_gguf_type_name(arr->arr_type) : pl_gguf_type_name(arr->type));
    pl_gguf_value e;
    pl_status st = pl_gguf_arr_get(arr, i, &e);
    if (st) return st;
    *s = e.str;
    *len = (size_t)e.len;
    return PL_OK;
}

static int numeric_type(uint32_t t) { return scalar_size(t) != 0; }

pl_status pl_gguf_arr_to_f32(const pl_gguf_value *arr, float *dst, size_t n) {
    if (arr->type != PL_GGUF_ARRAY || !numeric_type(arr->arr_type))
        return pl_error(PL_ERR_FORMAT, "expected a numeric array, found %s",
                        arr->type == PL_GGUF_ARRAY ? pl_gguf_type_name(arr->arr_type) : pl_gguf_type_name(arr->type));
    if (n != arr->count)
        return pl_error(PL_ERR_RANGE, "array has %llu elements, caller expects %zu", (unsigned long long)arr->count, n);
    size_t es = scalar_size(arr->arr_type);
    pl_gguf_value e = {0};
    e.type = arr->arr_type;
    for (size_t k = 0; k < n; k++) {
        decode_scalar(&e, arr->raw + k * es);
        dst[k] = (float)e.f;
    }
    return PL_OK;
}

static pl_status arr_to_int(const pl_gguf_value *arr, void *dst, size_t n, int bits) {
    if (arr->type != PL_GGUF_ARRAY || !numeric_type(arr->arr_type) || arr->arr_type == PL_GGUF_F32 ||
        arr->arr_type == PL_GGUF_F64)
        return pl_error(PL_ERR_FORMAT, "expected an integer array, found %s",
                        arr->type == PL_GGUF_ARRAY ? pl_gguf_type_name(arr->arr_type) : pl_gguf_type_name(arr->type));
    if (n != arr->count)
        return pl_error(PL_ERR_RANGE, "array has %llu elements, caller expects %zu", (unsigned long long)arr->count, n);
    size_t es = scalar_size(arr->arr_type);
    pl_gguf_value e = {0};
    e.type = arr->arr_type;
    int is_unsigned = arr->arr_type == PL_GGUF_U8 || arr->arr_type == PL_GGUF_U16 || arr->arr_type == PL_GGUF_U32 ||
                      arr->arr_type == PL_GGUF_U64 || arr->arr_type == PL_GGUF_BOOL;
    for (size_t k = 0; k < n; k++) {
        decode_scalar(&e, arr->raw + k * es);
        if (is_unsigned && e.u > (uint64_t)INT64_MAX)
            return pl_error(PL_ERR_FORMAT, "array element %zu = %llu does not fit in int64", k,
                            (unsigned long long)e.u);
        int64_t x = is_unsigned ? (int64_t)e.u : e.i;
        if (bits == 32) {
            if (x < INT32_MIN || x > INT32_MAX)
                return pl_error(PL_ERR_FORMAT, "array element %zu = %lld does not fit in int32", k, (long long)x);
            ((int32_t *)dst)[k] = (int32_t)x;
        } else {
            ((int64_t *)dst)[k] = x;
        }
    }
    return PL_OK;
}

pl_status pl_gguf_arr_to_i32(const pl_gguf_value *arr, int32_t *dst, size_t n) { return arr_to_int(arr, dst, n, 32); }
pl_status pl_gguf_arr_to_i64(const pl_gguf_value *arr, int64_t *dst, size_t n) { return arr_to_int(arr, dst, n, 64); }

/* ---- name hash tables -------------------------------------------------- */

static size_t hash_cap_for(int64_t n) {
    size_t cap = 16;
    while (cap < (size_t)n * 2) cap <<= 1;
    return cap;
}

/* Find name among names[] through table; returns the index or -1. */
static int64_t hash_find(const int64_t *table, size_t cap, const char *name, size_t len,
                         const char *(*name_of)(const pl_gguf *, int64_t), const pl_gguf *g) {
    if (!table) return -1;
    size_t h = (size_t)pl_hash64(name, len, 0) & (cap - 1);
    for (;;) {
        int64_t slot = table[h];
        if (!slot) return -1;
        const char *s = name_of(g, slot - 1);
        if (strlen(s) == len && memcmp(s, name, len) == 0) return slot - 1;
        h = (h + 1) & (cap - 1);
    }
}

static void hash_insert(int64_t *table, size_t cap, const char *name, size_t len, int64_t idx) {
    size_t h = (size_t)pl_hash64(name, len, 0) & (cap - 1);
    while (table[h]) h = (h + 1) & (cap - 1);
    table[h] = idx + 1;
}

static const char *kv_name(const pl_gguf *g, int64_t i) { return g->kvs[i].key; }
static const char *t_name(const pl_gguf *g, int64_t i) { return g->tensors[i].name; }

/* ---- open -------------------------------------------------------------- */

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

static int cmp_by_offset(const void *a, const void *b) {
    const pl_gguf_tensor *x = *(pl_gguf_tensor *const *)a, *y = *(pl_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static pl_status parse(pl_gguf *g) {
    cursor c = {g->base, g->size, 0, g->name};
    uint32_t magic;
    pl_status st = rd_u32(&c, &magic, "magic");
    if (st) return st;
    if (magic != GGUF_MAGIC)
        return pl_error(PL_ERR_FORMAT, "%s: offset 0: bad magic %02x %02x %02x %02x (not a GGUF file)", g->name,
                        g->base[0], g->base[1], g->base[2], g->base[3]);
    st = rd_u32(&c, &g->version, "version");
    if (st) return st;
    if (g->version == 1)
        return pl_error(PL_ERR_FORMAT, "%s: offset 4: GGUF version 1 is obsolete and not supported", g->name);
    if (g->version != 2 && g->version != 3) {
        if ((g->version & 0xffff) == 0 && (g->version >> 24) <= 3 && (g->version >> 24) >= 1)
            return pl_error(PL_ERR_FORMAT, "%s: offset 4: big-endian GGUF is not supported", g->name);
        return pl_error(PL_ERR_FORMAT, "%s: offset 4: unsupported GGUF version %u (want 2 or 3)", g->name,
                        g->version);
    }
    uint64_t n_tensors, n_kv;
    st = rd_u64(&c, &n_tensors, "tensor count");
    if (!st) st = rd_u64(&c, &n_kv, "kv count");
    if (st) return st;
    /* A kv takes at least 13 bytes (u64 key length, 1 key byte, u32 type,
     * 1 value byte), a tensor info at least 33: counts beyond what the file
     * can hold are rejected before anything is allocated. */
    size_t left = g->size - c.pos;
    if (n_kv > left / 13 || n_tensors > left / 33 || n_kv * 13 + n_tensors * 33 > left)
        return pl_error(PL_ERR_FORMAT,
                        "%s: offset 8: tensor count %llu and kv count %llu cannot fit in a file of %zu bytes", g->name,
                        (unsigned long long)n_tensors, (unsigned long long)n_kv, g->size);
    g->n_kv = (int64_t)n_kv;
    g->n_tensors = (int64_t)n_tensors;
    g->kvs = calloc(n_kv ? n_kv : 1, sizeof *g->kvs);
    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
    g->tensor_names = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensor_names);
    g->kv_hash_cap = hash_cap_for(g->n_kv);
    g->t_hash_cap = hash_cap_for(g->n_tensors);
    g->kv_hash = calloc(g->kv_hash_cap, sizeof *g->kv_hash);
    g->t_hash = calloc(g->t_hash_cap, sizeof *g->t_hash);
    if (!g->kvs || !g->tensors || !g->tensor_names || !g->kv_hash || !g->t_hash)
        return pl_error(PL_ERR_NOMEM, "%s: out of memory for %llu kvs and %llu tensors", g->name,
                        (unsigned long long)n_kv, (unsigned long long)n_tensors);

    /* key/value pairs */
    for (int64_t k = 0; k < g->n_kv; k++) {
        kv_entry *e = &g->kvs[k];
        size_t at = c.pos;
        const char *key;
        uint64_t klen;
        char what[64];
        snprintf(what, sizeof what, "key %lld", (long long)k);
        st = rd_str(&c, &key, &klen, what);
        if (st) return st;
        if (klen == 0 || klen > MAX_KEY_LEN || memchr(key, 0, (size_t)klen))
            return pl_error(PL_ERR_FORMAT, "%s: offset %zu: key %lld: %s", g->name, at, (long long)k,
                            klen == 0 ? "empty key" : klen > MAX_KEY_LEN ? "key longer than 65535 bytes"
                                                                         : "key contains a NUL byte");
        e->key = dup_n(key, (size_t)klen);
        if (!e->key) return pl_error(PL_ERR_NOMEM, "%s: out of memory", g->name);
        e->key_off = at;
        if (hash_find(g->kv_hash, g->kv_hash_cap, e->key, (size_t)klen, kv_name, g) >= 0)
            return pl_error(PL_ERR_FORMAT, "%s: offset %zu: duplicate key '%s'", g->name, at, e->key);
        uint32_t type;
        st = rd_u32(&c, &type, e->key);
        if (st) return st;
        st = parse_value(&c, type, 0, &e->v, &e->index, e->key);
        if (st) return st;
        hash_insert(g->kv_hash, g->kv_hash_cap, e->key, (size_t)klen, k);
    }

    /* general.alignment */
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t ai = hash_find(g->kv_hash, g->kv_hash_cap, "general.alignment", 17, kv_name, g);
    if (ai >= 0) {
        const pl_gguf_value *v = &g->kvs[ai].v;
        if (!v->is_int || v->i <= 0 || v->u > MAX_ALIGNMENT || (v->u & (v->u - 1)))
            return pl_error(PL_ERR_FORMAT,
                            "%s: offset %llu: general.alignment must be a power of two integer in [1, 2^30]", g->name,
                            (unsigned long long)g->kvs[ai].key_off);
        g->alignment = v->u;
    }

    /* tensor infos */
    for (int64_t k = 0; k < g->n_tensors; k++) {
        pl_gguf_tensor *t = &g->tensors[k];
        size_t at = c.pos;
        const char *name;
        uint64_t nlen;
        char what[300];
        snprintf(what, sizeof what, "tensor info %lld", (long long)k);
        st = rd_str(&c, &name, &nlen, what);
        if (st) return st;
        if (nlen == 0 || nlen > MAX_NAME_LEN || memchr(name, 0, (size_t)nlen))
            return pl_error(PL_ERR_FORMAT, "%s: offset %zu: tensor info %lld: %s", g->name, at, (long long)k,
                            nlen == 0 ? "empty name" : nlen > MAX_NAME_LEN ? "name longer than 1024 bytes"
                                                                          : "name contains a NUL byte");
        g->tensor_names[k] = dup_n(name, (size_t)nlen);
        if (!g->tensor_names[k]) return pl_error(PL_ERR_NOMEM, "%s: out of memory", g->name);
        t->name = g->tensor_names[k];
        t->info_offset = at;
        if (hash_find(g->t_hash, g->t_hash_cap, t->name, (size_t)nlen, t_name, g) >= 0)
            return pl_error(PL_ERR_FORMAT, "%s: offset %zu: duplicate tensor name '%s'", g->name, at, t->name);
        snprintf(what, sizeof what, "tensor '%s'", t->name);
        st = rd_u32(&c, &t->n_dims, what);
        if (st) return st;
        if (t->n_dims < 1 || t->n_dims > 4)
            return pl_error(PL_ERR_FORMAT, "%s: offset %zu: tensor '%s': n_dims %u (want 1..4)", g->name, c.pos - 4,
                            t->name, t->n_dims);
        int64_t nel = 1;
        for (int d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t ne;
            st = rd_u64(&c, &ne, what);
            if (st) return st;
            if (ne == 0 || ne > (uint64_t)INT64_MAX)
                return pl_error(PL_ERR_FORMAT, "%s: offset %zu: tensor '%s': ne[%u] = %lld is not positive", g->name,
                                c.pos - 8, t->name, d, (long long)ne);
            t->ne[d] = (int64_t)ne;
            if (__builtin_mul_overflow(nel, t->ne[d], &nel))
                return pl_error(PL_ERR_FORMAT, "%s: offset %zu: tensor '%s': element count overflows", g->name,
                                c.pos - 8, t->name);
        }
        t->n_elements = nel;
        st = rd_u32(&c, &t->type, what);
        if (st) return st;
        const pl_ggml_type_info *ti = pl_ggml_type(t->type);
        if (!ti)
            return pl_error(PL_ERR_FORMAT, "%s: offset %zu: tensor '%s': unknown ggml type id %u", g->name,
                            c.pos - 4, t->name, t->type);
        if (t->ne[0] % ti->blck)
            return pl_error(PL_ERR_FORMAT, "%s: offset %zu: tensor '%s': ne[0] = %lld is not a multiple of the %s "
                            "block size %lld", g->name, at, t->name, (long long)t->ne[0], ti->name,
                            (long long)ti->blck);
        size_t nb;
        if (!pl_mul_ok((size_t)(nel / ti->blck), ti->type_size, &nb))
            return pl_error(PL_ERR_FORMAT, "%s: offset %zu: tensor '%s': byte size overflows", g->name, at, t->name);
        t->nbytes = nb;
        st = rd_u64(&c, &t->offset, what);
        if (st) return st;
        if (t->offset % g->alignment)
            return pl_error(PL_ERR_FORMAT, "%s: offset %zu: tensor '%s': data offset %llu is not a multiple of the "
                            "alignment %llu", g->name, c.pos - 8, t->name, (unsigned long long)t->offset,
                            (unsigned long long)g->alignment);
        hash_insert(g->t_hash, g->t_hash_cap, t->name, (size_t)nlen, k);
    }

    /* data section: starts at the next multiple of the alignment */
    size_t end_info = c.pos;
    size_t pad = (size_t)((g->alignment - end_info % g->alignment) % g->alignment);
    g->data_offset = end_info + pad;
    if (g->n_tensors == 0) return PL_OK; /* vocab-only files may end without padding */
    if (g->data_offset > g->size)
        return pl_error(PL_ERR_FORMAT, "%s: offset %zu: data section would start at %llu, past the end of the file "
                        "(%zu bytes)", g->name, end_info, (unsigned long long)g->data_offset, g->size);
    size_t data_size = g->size - (size_t)g->data_offset;
    for (int64_t k = 0; k < g->n_tensors; k++) {
        pl_gguf_tensor *t = &g->tensors[k];
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return pl_error(PL_ERR_FORMAT, "%s: offset %llu: tensor '%s': data range [%llu, %llu) exceeds file size "
                            "%zu", g->name, (unsigned long long)t->info_offset, t->name,
                            (unsigned long long)(g->data_offset + t->offset),
                            (unsigned long long)(g->data_offset + t->offset) + (unsigned long long)t->nbytes,
                            g->size);
        t->data = g->base + g->data_offset + t->offset;
    }
    /* no two tensors may share bytes */
    pl_gguf_tensor **order = malloc((size_t)g->n_tensors * sizeof *order);
    if (!order) return pl_error(PL_ERR_NOMEM, "%s: out of memory", g->name);
    for (int64_t k = 0; k < g->n_tensors; k++) order[k] = &g->tensors[k];
    qsort(order, (size_t)g->n_tensors, sizeof *order, cmp_by_offset);
    for (int64_t k = 1; k < g->n_tensors; k++) {
        const pl_gguf_tensor *a = order[k - 1], *b = order[k];
        if (a->offset + a->nbytes > b->offset) {
            st = pl_error(PL_ERR_FORMAT, "%s: offset %llu: tensor '%s': data overlaps tensor '%s'", g->name,
                          (unsigned long long)b->info_offset, b->name, a->name);
            free(order);
            return st;
        }
    }
    free(order);
    return PL_OK;
}

static pl_status open_common(pl_gguf *g, pl_gguf **out) {
    pl_status st = parse(g);
    if (st) {
        pl_gguf_close(g);
        return st;
    }
    *out = g;
    return PL_OK;
}

pl_status pl_gguf_open_mem(const void *data, size_t size, const char *name, pl_gguf **out) {
    *out = NULL;
    pl_gguf *g = calloc(1, sizeof *g);
    if (!g) return pl_error(PL_ERR_NOMEM, "out of memory");
    g->name = dup_n(name ? name : "<memory>", strlen(name ? name : "<memory>"));
    if (!g->name) {
        free(g);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    static const uint8_t empty[1] = {0};
    g->base = size ? data : empty;
    g->size = size;
    return open_common(g, out);
}

pl_status pl_gguf_open(const char *path, pl_gguf **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return pl_error(PL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        pl_status st = pl_error(PL_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return st;
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return pl_error(PL_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size == 0) {
        close(fd);
        return pl_error(PL_ERR_FORMAT, "%s: offset 0: empty file (not a GGUF file)", path);
    }
    void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (p == MAP_FAILED) return pl_error(PL_ERR_IO, "%s: mmap failed: %s", path, strerror(err));
    pl_gguf *g = calloc(1, sizeof *g);
    if (g) g->name = dup_n(path, strlen(path));
    if (!g || !g->name) {
        munmap(p, (size_t)sb.st_size);
        free(g);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    g->base = p;
    g->size = (size_t)sb.st_size;
    g->mapped = 1;
    return open_common(g, out);
}

void pl_gguf_close(pl_gguf *g) {
    if (!g) return;
    if (g->kvs)
        for (int64_t k = 0; k < g->n_kv; k++) {
            free(g->kvs[k].key);
            free(g->kvs[k].index);
        }
    if (g->tensor_names)
        for (int64_t k = 0; k < g->n_tensors; k++) free(g->tensor_names[k]);
    free(g->kvs);
    free(g->tensors);
    free(g->tensor_names);
    free(g->kv_hash);
    free(g->t_hash);
    if (g->mapped) munmap((void *)(uintptr_t)g->base, g->size);
    free(g->name);
    free(g);
}

/* ---- accessors --------------------------------------------------------- */

const char *pl_gguf_name(const pl_gguf *g) { return g->name; }
uint32_t pl_gguf_version(const pl_gguf *g) { return g->version; }
uint64_t pl_gguf_alignment(const pl_gguf *g) { return g->alignment; }
uint64_t pl_gguf_data_offset(const pl_gguf *g) { return g->data_offset; }
uint64_t pl_gguf_file_size(const pl_gguf *g) { return g->size; }
const uint8_t *pl_gguf_bytes(const pl_gguf *g) { return g->base; }
int64_t pl_gguf_n_kv(const pl_gguf *g) { return g->n_kv; }
int64_t pl_gguf_n_tensors(const pl_gguf *g) { return g->n_tensors; }

const char *pl_gguf_key(const pl_gguf *g, int64_t i) {
    return (i >= 0 && i < g->n_kv) ? g->kvs[i].key : NULL;
}

pl_status pl_gguf_kv(const pl_gguf *g, int64_t i, pl_gguf_value *out) {
    if (i < 0 || i >= g->n_kv)
        return pl_error(PL_ERR_RANGE, "%s: kv index %lld out of range (%lld kvs)", g->name, (long long)i,
                        (long long)g->n_kv);
    *out = g->kvs[i].v;
    return PL_OK;
}

pl_status pl_gguf_find(const pl_gguf *g, const char *key, pl_gguf_value *out) {
    int64_t i = hash_find(g->kv_hash, g->kv_hash_cap, key, strlen(key), kv_name, g);
    if (i < 0) return pl_error(PL_ERR_NOT_FOUND, "%s: key '%s' not found", g->name, key);
    *out = g->kvs[i].v;
    return PL_OK;
}

int pl_gguf_has(const pl_gguf *g, const char *key) {
    return hash_find(g->kv_hash, g->kv_hash_cap, key, strlen(key), kv_name, g) >= 0;
}

const pl_gguf_tensor *pl_gguf_tensor_at(const pl_gguf *g, int64_t i) {
    return (i >= 0 && i < g->n_tensors) ? &g->tensors[i] : NULL;
}

const pl_gguf_tensor *pl_gguf_find_tensor(const pl_gguf *g, const char *name) {
    int64_t i = hash_find(g->t_hash, g->t_hash_cap, name, strlen(name), t_name, g);
    return i < 0 ? NULL : &g->tensors[i];
}

/* ---- typed getters ----------------------------------------------------- */

static uint64_t key_offset(const pl_gguf *g, const char *key) {
    int64_t i = hash_find(g->kv_hash, g->kv_hash_cap, key, strlen(key), kv_name, g);
    return i < 0 ? 0 : g->kvs[i].key_off;
}

static pl_status wrong_type(const pl_gguf *g, const char *key, const pl_gguf_value *v, const char *want) {
    return pl_error(PL_ERR_FORMAT, "%s: offset %llu: key '%s': expected %s, found %s", g->name,
                    (unsigned long long)key_offset(g, key), key, want, pl_gguf_type_name(v->type));
}

/* An integer value (any integer type or bool) as a signed 128-bit-safe pair. */
static pl_status get_int(const pl_gguf *g, const char *key, pl_gguf_value *v, const char *want) {
    pl_status st = pl_gguf_find(g, key, v);
    if (st) return st;
    if (!v->is_int && v->type != PL_GGUF_BOOL) return wrong_type(g, key, v, want);
    return PL_OK;
}

static int is_neg(const pl_gguf_value *v) {
    return (v->type == PL_GGUF_I8 || v->type == PL_GGUF_I16 || v->type == PL_GGUF_I32 || v->type == PL_GGUF_I64) &&
           v->i < 0;
}

static pl_status out_of_range(const pl_gguf *g, const char *key, const pl_gguf_value *v, const char *want) {
    unsigned long long off = (unsigned long long)key_offset(g, key);
    if (is_neg(v))
        return pl_error(PL_ERR_FORMAT, "%s: offset %llu: key '%s': value %lld does not fit in %s", g->name, off, key,
                        (long long)v->i, want);
    return pl_error(PL_ERR_FORMAT, "%s: offset %llu: key '%s': value %llu does not fit in %s", g->name, off, key,
                    (unsigned long long)v->u, want);
}

pl_status pl_gguf_get_u64(const pl_gguf *g, const char *key, uint64_t *out) {
    pl_gguf_value v;
    pl_status st = get_int(g, key, &v, "an unsigned integer");
    if (st) return st;
    if (is_neg(&v)) return out_of_range(g, key, &v, "u64");
    *out = v.u;
    return PL_OK;
}

pl_status pl_gguf_get_u32(const pl_gguf *g, const char *key, uint32_t *out) {
    pl_gguf_value v;
    pl_status st = get_int(g, key, &v, "an unsigned integer");
    if (st) return st;
    if (is_neg(&v) || v.u > UINT32_MAX) return out_of_range(g, key, &v, "u32");
    *out = (uint32_t)v.u;
    return PL_OK;
}

pl_status pl_gguf_get_i64(const pl_gguf *g, const char *key, int64_t *out) {
    pl_gguf_value v;
    pl_status st = get_int(g, key, &v, "an integer");
    if (st) return st;
    if (!is_neg(&v) && v.u > (uint64_t)INT64_MAX) return out_of_range(g, key, &v, "i64");
    *out = is_neg(&v) ? v.i : (int64_t)v.u;
    return PL_OK;
}

pl_status pl_gguf_get_i32(const pl_gguf *g, const char *key, int32_t *out) {
    int64_t x;
    pl_gguf_value v;
    pl_status st = get_int(g, key, &v, "an integer");
    if (st) return st;
    if (!is_neg(&v) && v.u > (uint64_t)INT32_MAX) return out_of_range(g, key, &v, "i32");
    x = is_neg(&v) ? v.i : (int64_t)v.u;
    if (x < INT32_MIN) return out_of_range(g, key, &v, "i32");
    *out = (int32_t)x;
    return PL_OK;
}

pl_status pl_gguf_get_f64(const pl_gguf *g, const char *key, double *out) {
    pl_gguf_value v;
    pl_status st = pl_gguf_find(g, key, &v);
    if (st) return st;
    if (!v.is_int && v.type != PL_GGUF_F32 && v.type != PL_GGUF_F64) return wrong_type(g, key, &v, "a number");
    *out = v.f;
    return PL_OK;
}

pl_status pl_gguf_get_f32(const pl_gguf *g, const char *key, float *out) {
    double d = 0;
    pl_status st = pl_gguf_get_f64(g, key, &d);
    if (st) return st;
    *out = (float)d;
    return PL_OK;
}

pl_status pl_gguf_get_bool(const pl_gguf *g, const char *key, int *out) {
    pl_gguf_value v;
    pl_status st = pl_gguf_find(g, key, &v);
    if (st) return st;
    if (v.type != PL_GGUF_BOOL && !v.is_int) return wrong_type(g, key, &v, "a bool");
    if (is_neg(&v) || v.u > 1) return out_of_range(g, key, &v, "bool");
    *out = (int)v.u;
    return PL_OK;
}

pl_status pl_gguf_get_str(const pl_gguf *g, const char *key, const char **s, size_t *len) {
    pl_gguf_value v;
    pl_status st = pl_gguf_find(g, key, &v);
    if (st) return st;
    if (v.type != PL_GGUF_STRING) return wrong_type(g, key, &v, "a string");
    *s = v.str;
    *len = (size_t)v.len;
    return PL_OK;
}

pl_status pl_gguf_get_str_copy(const pl_gguf *g, const char *key, char *buf, size_t cap) {
    const char *s = NULL;
    size_t len = 0;
    pl_status st = pl_gguf_get_str(g, key, &s, &len);
    if (st) return st;
    if (memchr(s, 0, len)) return pl_error(PL_ERR_FORMAT, "%s: key '%s': string contains a NUL byte", g->name, key);
    if (len >= cap)
        return pl_error(PL_ERR_RANGE, "%s: key '%s': string of %zu bytes is longer than %zu", g->name, key, len,
                        cap ? cap - 1 : 0);
    memcpy(buf, s, len);
    buf[len] = 0;
    return PL_OK;
}

pl_status pl_gguf_get_arr(const pl_gguf *g, const char *key, pl_gguf_value *out) {
    pl_gguf_value v;
    pl_status st = pl_gguf_find(g, key, &v);
    if (st) return st;
    if (v.type != PL_GGUF_ARRAY) return wrong_type(g, key, &v, "an array");
    *out = v;
    return PL_OK;
}

/* ---- formatting -------------------------------------------------------- */

static pl_status fmt_str(pl_buf *out, const char *s, size_t len, size_t max_str) {
    pl_status st = pl_buf_append(out, "\"", 1);
    size_t n = len < max_str ? len : max_str;
    for (size_t k = 0; !st && k < n; k++) {
        unsigned char ch = (unsigned char)s[k];
        if (ch == '"' || ch == '\\') st = pl_buf_printf(out, "\\%c", ch);
        else if (ch == '\n') st = pl_buf_append(out, "\\n", 2);
        else if (ch < 0x20 || ch == 0x7f) st = pl_buf_printf(out, "\\x%02x", ch);
        else st = pl_buf_append(out, &s[k], 1);
    }
    if (!st) st = pl_buf_append(out, "\"", 1);
    if (!st && n < len) st = pl_buf_printf(out, "...(%zu bytes)", len);
    return st;
}

pl_status pl_gguf_value_format(const pl_gguf_value *v, pl_buf *out, size_t max_elems, size_t max_str) {
    switch (v->type) {
    case PL_GGUF_BOOL: return pl_buf_printf(out, "%s", v->u ? "true" : "false");
    case PL_GGUF_F32: return pl_buf_printf(out, "%.9g", v->f);
    case PL_GGUF_F64: return pl_buf_printf(out, "%.17g", v->f);
    case PL_GGUF_STRING: return fmt_str(out, v->str, (size_t)v->len, max_str);
    case PL_GGUF_ARRAY: {
        if (v->count > max_elems)
            return pl_buf_printf(out, "[%s x %llu]", pl_gguf_type_name(v->arr_type), (unsigned long long)v->count);
        pl_status st = pl_buf_append(out, "[", 1);
        for (uint64_t k = 0; !st && k < v->count; k++) {
            pl_gguf_value e;
            st = pl_gguf_arr_get(v, k, &e);
            if (!st && k) st = pl_buf_append(out, ", ", 2);
            if (!st) st = pl_gguf_value_format(&e, out, max_elems, max_str);
        }
        if (!st) st = pl_buf_append(out, "]", 1);
        return st;
    }
    default:
        if (is_neg(v)) return pl_buf_printf(out, "%lld", (long long)v->i);
        return pl_buf_printf(out, "%llu", (unsigned long long)v->u);
    }
}

/* ---- internal: validate an encoded value (used by the writer) ---------- */

pl_status pl_gguf__check_value(const uint8_t *p, size_t n, uint32_t type, const char *key, size_t *used) {
    cursor c = {p, n, 0, "<gguf writer>"};
    pl_gguf_value v;
    pl_status st = parse_value(&c, type, 0, &v, NULL, key);
    if (!st) *used = c.pos;
    return st;
}
