/* test_io.c — GGUF reader/writer, safetensors, HF config, model metadata.
 *
 * Expected values for the shared model files are the facts stated in
 * ../shared/models/README.md, ../shared/vectors/arch/README.md and
 * ../shared/vectors/tokenizer/README.md (cited at each table row), never
 * numbers read back from our own output. Hostile-input checks truncate and
 * corrupt real files in memory (exact-size copies, so ASan sees any overread)
 * and require PL_OK or a clean PL_ERR_FORMAT with a message, never a crash.
 */
#include "harness.h"
#include "io/io.h"

#include <unistd.h>

/* ---- a raw GGUF byte builder for hand-made (and broken) files ---------- */

typedef struct {
    pl_buf b;
} raw;

static void r_u32(raw *r, uint32_t v) { pl_buf_append(&r->b, &v, 4); }
static void r_u64(raw *r, uint64_t v) { pl_buf_append(&r->b, &v, 8); }
static void r_str(raw *r, const char *s) {
    r_u64(r, strlen(s));
    pl_buf_append(&r->b, s, strlen(s));
}
static void r_hdr(raw *r, uint32_t version, uint64_t nt, uint64_t nkv) {
    r_u32(r, 0x46554747u);
    r_u32(r, version);
    r_u64(r, nt);
    r_u64(r, nkv);
}
static void r_kv_u32(raw *r, const char *k, uint32_t v) {
    r_str(r, k);
    r_u32(r, PL_GGUF_U32);
    r_u32(r, v);
}
static void r_tinfo(raw *r, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off) {
    r_str(r, name);
    r_u32(r, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) r_u64(r, ne[d]);
    r_u32(r, type);
    r_u64(r, off);
}
static void r_pad(raw *r, size_t a) {
    while (r->b.len % a) pl_buf_append(&r->b, "", 1);
}
static void r_zeros(raw *r, size_t n) {
    for (size_t i = 0; i < n; i++) pl_buf_append(&r->b, "", 1);
}

/* Open r's bytes from an exact-size copy; returns status, closes on success. */
static pl_status open_raw(const raw *r, const char *name) {
    void *copy = malloc(r->b.len ? r->b.len : 1);
    if (r->b.len) memcpy(copy, r->b.data, r->b.len);
    pl_gguf *g = NULL;
    pl_status st = pl_gguf_open_mem(copy, r->b.len, name, &g);
    pl_gguf_close(g);
    free(copy);
    return st;
}

/* Expect a format error whose message contains want. */
#define CHECK_BAD(r, want) do { \
    pl_status st_ = open_raw(r, "bad.gguf"); \
    CHECK(st_ == PL_ERR_FORMAT && strstr(pl_errmsg(), want) && strstr(pl_errmsg(), "bad.gguf: offset "), \
          "want format error containing '%s', got %s: %s", want, pl_status_str(st_), pl_errmsg()); } while (0)

static void test_ggml_types(void) {
    /* Block sizes and block bytes from ggml-common.h's block structs. */
    const struct { uint32_t id; int64_t blck; size_t size; } want[] = {
        {PL_GGML_F32, 1, 4}, {PL_GGML_F16, 1, 2}, {PL_GGML_Q4_0, 32, 18}, {PL_GGML_Q4_1, 32, 20},
        {PL_GGML_Q5_0, 32, 22}, {PL_GGML_Q5_1, 32, 24}, {PL_GGML_Q8_0, 32, 34}, {PL_GGML_Q8_1, 32, 36},
        {PL_GGML_Q2_K, 256, 84}, {PL_GGML_Q3_K, 256, 110}, {PL_GGML_Q4_K, 256, 144}, {PL_GGML_Q5_K, 256, 176},
        {PL_GGML_Q6_K, 256, 210}, {PL_GGML_Q8_K, 256, 292}, {PL_GGML_BF16, 1, 2}, {PL_GGML_I8, 1, 1},
        {PL_GGML_I16, 1, 2}, {PL_GGML_I32, 1, 4}, {PL_GGML_I64, 1, 8}, {PL_GGML_F64, 1, 8},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const pl_ggml_type_info *t = pl_ggml_type(want[i].id);
        CHECK(t && t->blck == want[i].blck && t->type_size == want[i].size, "ggml type %u traits", want[i].id);
    }
    CHECK(!pl_ggml_type(4) && !pl_ggml_type(5) && !pl_ggml_type(31) && !pl_ggml_type(1000), "removed ids rejected");
    size_t nb = 0;
    CHECK(pl_ggml_nbytes(PL_GGML_Q4_0, 64, &nb) == PL_OK && nb == 36, "q4_0 64 elements = 36 bytes");
    CHECK(pl_ggml_nbytes(PL_GGML_Q4_0, 48, &nb) == PL_ERR_FORMAT, "q4_0 48 elements rejected");
    CHECK(pl_ggml_nbytes(PL_GGML_F64, INT64_MAX, &nb) == PL_ERR_FORMAT, "f64 size overflow rejected");
}

/* ---- writer round trip ------------------------------------------------- */

static void test_roundtrip(uint32_t version) {
    pl_gguf_writer *w;
    CHECK_OK(pl_gguf_writer_new(&w));
    CHECK_OK(pl_gguf_writer_set_version(w, version));
    CHECK_OK(pl_gguf_writer_add_u8(w, "t.u8", 250));
    CHECK_OK(pl_gguf_writer_add_i8(w, "t.i8", -120));
    CHECK_OK(pl_gguf_writer_add_u16(w, "t.u16", 65000));
    CHECK_OK(pl_gguf_writer_add_i16(w, "t.i16", -32000));
    CHECK_OK(pl_gguf_writer_add_u32(w, "t.u32", 4000000000u));
    CHECK_OK(pl_gguf_writer_add_i32(w, "t.i32", -2000000000));
    CHECK_OK(pl_gguf_writer_add_f32(w, "t.f32", 0.1f));
    CHECK_OK(pl_gguf_writer_add_bool(w, "t.bool", 1));
    CHECK_OK(pl_gguf_writer_add_str(w, "t.str", "h\xc3\xa9llo \"w\""));
    CHECK_OK(pl_gguf_writer_add_strn(w, "t.strnul", "a\0b", 3));
    CHECK_OK(pl_gguf_writer_add_u64(w, "t.u64", UINT64_MAX));
    CHECK_OK(pl_gguf_writer_add_i64(w, "t.i64", INT64_MIN));
    CHECK_OK(pl_gguf_writer_add_f64(w, "t.f64", 1e300));
    CHECK_OK(pl_gguf_writer_add_u32(w, "general.alignment", 64));
    const float fa[3] = {1.5f, -2.0f, 3.25f};
    const int32_t ia[4] = {-1, 0, 1, INT32_MAX};
    const uint8_t ba[3] = {1, 0, 1};
    const uint64_t ua[2] = {UINT64_MAX, 7};
    const char *sa[3] = {"", "two", "thr\xe2\x80\x8d"};
    CHECK_OK(pl_gguf_writer_add_arr(w, "a.f32", PL_GGUF_F32, fa, 3));
    CHECK_OK(pl_gguf_writer_add_arr(w, "a.i32", PL_GGUF_I32, ia, 4));
    CHECK_OK(pl_gguf_writer_add_arr(w, "a.bool", PL_GGUF_BOOL, ba, 3));
    CHECK_OK(pl_gguf_writer_add_arr(w, "a.u64", PL_GGUF_U64, ua, 2));
    CHECK_OK(pl_gguf_writer_add_arr(w, "a.empty", PL_GGUF_I8, NULL, 0));
    CHECK_OK(pl_gguf_writer_add_arr_str(w, "a.str", sa, NULL, 3));
    /* nested: [[1.5,-2,3.25], ["", "two", ...], [[-1,0,1,max]]] */
    pl_buf in[3] = {{0}}, inner2[1] = {{0}}, nest = {0};
    CHECK_OK(pl_gguf_enc_arr(&in[0], PL_GGUF_F32, fa, 3));
    CHECK_OK(pl_gguf_enc_arr_str(&in[1], sa, NULL, 3));
    CHECK_OK(pl_gguf_enc_arr(&inner2[0], PL_GGUF_I32, ia, 4));
    CHECK_OK(pl_gguf_enc_arr_nested(&in[2], inner2, 1));
    CHECK_OK(pl_gguf_enc_arr_nested(&nest, in, 3));
    CHECK_OK(pl_gguf_writer_add_enc_arr(w, "a.nested", &nest));
    for (int i = 0; i < 3; i++) pl_buf_free(&in[i]);
    pl_buf_free(&inner2[0]);
    pl_buf_free(&nest);
    /* writer refuses what the reader would reject */
    CHECK(pl_gguf_writer_add_u8(w, "t.u8", 1) == PL_ERR_INVALID, "duplicate key refused");
    CHECK(pl_gguf_writer_add_u64(w, "general.alignment", 64) == PL_ERR_INVALID, "alignment must be u32");

    /* tensors of several types */
    float t_f32[6] = {1, 2, 3, 4, 5, 6};
    uint16_t t_f16[64];
    uint8_t t_q8[2 * 34], t_q4k[144];
    int32_t t_i32[3] = {7, 8, 9};
    for (int i = 0; i < 64; i++) t_f16[i] = (uint16_t)(0x3c00 + i);
    for (size_t i = 0; i < sizeof t_q8; i++) t_q8[i] = (uint8_t)(i * 7);
    for (size_t i = 0; i < sizeof t_q4k; i++) t_q4k[i] = (uint8_t)(i * 13);
    const int64_t ne_f32[2] = {3, 2}, ne_f16[3] = {16, 2, 2}, ne_q8[2] = {32, 2}, ne_q4k[1] = {256},
                  ne_i32[1] = {3};
    CHECK_OK(pl_gguf_writer_add_tensor(w, "w.f32", PL_GGML_F32, 2, ne_f32, t_f32, sizeof t_f32));
    CHECK_OK(pl_gguf_writer_add_tensor(w, "w.f16", PL_GGML_F16, 3, ne_f16, t_f16, sizeof t_f16));
    CHECK_OK(pl_gguf_writer_add_tensor(w, "w.q8_0", PL_GGML_Q8_0, 2, ne_q8, t_q8, sizeof t_q8));
    CHECK_OK(pl_gguf_writer_add_tensor(w, "w.q4_K", PL_GGML_Q4_K, 1, ne_q4k, t_q4k, sizeof t_q4k));
    CHECK_OK(pl_gguf_writer_add_tensor(w, "w.bf16", PL_GGML_BF16, 1, ne_i32, t_f16, 6));
    CHECK_OK(pl_gguf_writer_add_tensor(w, "w.i32", PL_GGML_I32, 1, ne_i32, t_i32, sizeof t_i32));
    CHECK(pl_gguf_writer_add_tensor(w, "w.bad", PL_GGML_Q8_0, 1, ne_f32, t_q8, 34) == PL_ERR_INVALID,
          "q8_0 with ne[0]=3 refused");
    CHECK(pl_gguf_writer_add_tensor(w, "w.f32", PL_GGML_F32, 1, ne_i32, t_f32, 12) == PL_ERR_INVALID,
          "duplicate tensor refused");

    char path[256];
    snprintf(path, sizeof path, "/tmp/pl_test_io_%ld_v%u.gguf", (long)getpid(), version);
    CHECK_OK(pl_gguf_writer_write(w, path));
    pl_buf mem = {0};
    CHECK_OK(pl_gguf_writer_to_buf(w, &mem));
    pl_gguf_writer_free(w);

    pl_gguf *g = NULL;
    CHECK_OK(pl_gguf_open(path, &g));
    if (!g) return;
    CHECK(pl_gguf_version(g) == version, "version %u", pl_gguf_version(g));
    CHECK(pl_gguf_alignment(g) == 64, "alignment %llu", (unsigned long long)pl_gguf_alignment(g));
    CHECK(pl_gguf_file_size(g) == mem.len && memcmp(pl_gguf_bytes(g), mem.data, mem.len) == 0,
          "file and buffer output identical");
    CHECK(pl_gguf_n_kv(g) == 21, "n_kv %lld", (long long)pl_gguf_n_kv(g));
    CHECK(strcmp(pl_gguf_key(g, 0), "t.u8") == 0 && pl_gguf_key(g, 21) == NULL, "key order");
    pl_gguf_value v;
    uint32_t u32 = 0;
    int32_t i32 = 0;
    int64_t i64 = 0;
    uint64_t u64 = 0;
    float f32 = 0;
    double f64 = 0;
    int b = 0;
    CHECK(pl_gguf_find(g, "t.u8", &v) == PL_OK && v.type == PL_GGUF_U8 && v.u == 250, "u8");
    CHECK(pl_gguf_find(g, "t.i8", &v) == PL_OK && v.type == PL_GGUF_I8 && v.i == -120, "i8");
    CHECK(pl_gguf_find(g, "t.u16", &v) == PL_OK && v.type == PL_GGUF_U16 && v.u == 65000, "u16");
    CHECK(pl_gguf_find(g, "t.i16", &v) == PL_OK && v.type == PL_GGUF_I16 && v.i == -32000, "i16");
    CHECK(pl_gguf_get_u32(g, "t.u32", &u32) == PL_OK && u32 == 4000000000u, "u32");
    CHECK(pl_gguf_get_i32(g, "t.i32", &i32) == PL_OK && i32 == -2000000000, "i32");
    CHECK(pl_gguf_get_f32(g, "t.f32", &f32) == PL_OK && f32 == 0.1f, "f32");
    CHECK(pl_gguf_get_bool(g, "t.bool", &b) == PL_OK && b == 1, "bool");
    CHECK(pl_gguf_get_u64(g, "t.u64", &u64) == PL_OK && u64 == UINT64_MAX, "u64");
    CHECK(pl_gguf_get_i64(g, "t.i64", &i64) == PL_OK && i64 == INT64_MIN, "i64");
    CHECK(pl_gguf_get_f64(g, "t.f64", &f64) == PL_OK && f64 == 1e300, "f64");
    const char *s;
    size_t len;
    CHECK(pl_gguf_get_str(g, "t.str", &s, &len) == PL_OK && len == 10 && memcmp(s, "h\xc3\xa9llo \"w\"", 10) == 0,
          "string");
    char buf[8];
    CHECK(pl_gguf_get_str_copy(g, "t.str", buf, sizeof buf) == PL_ERR_RANGE, "str_copy too small");
    CHECK(pl_gguf_get_str_copy(g, "t.strnul", buf, sizeof buf) == PL_ERR_FORMAT, "str_copy with NUL");
    /* typed getter conversions and refusals */
    CHECK(pl_gguf_get_i64(g, "t.u16", &i64) == PL_OK && i64 == 65000, "u16 read as i64");
    CHECK(pl_gguf_get_f64(g, "t.i16", &f64) == PL_OK && f64 == -32000.0, "i16 read as f64");
    CHECK(pl_gguf_get_u32(g, "t.i8", &u32) == PL_ERR_FORMAT, "negative refused as u32");
    CHECK(pl_gguf_get_i32(g, "t.u32", &i32) == PL_ERR_FORMAT, "4e9 refused as i32");
    CHECK(pl_gguf_get_u32(g, "t.u64", &u32) == PL_ERR_FORMAT, "u64 max refused as u32");
    CHECK(pl_gguf_get_i64(g, "t.u64", &i64) == PL_ERR_FORMAT, "u64 max refused as i64");
    CHECK(pl_gguf_get_u32(g, "t.str", &u32) == PL_ERR_FORMAT && strstr(pl_errmsg(), "t.str"), "string refused as u32");
    CHECK(pl_gguf_get_u32(g, "t.f32", &u32) == PL_ERR_FORMAT, "float refused as u32");
    CHECK(pl_gguf_get_bool(g, "t.u8", &b) == PL_ERR_FORMAT, "250 refused as bool");
    u32 = 17;
    CHECK(pl_gguf_get_u32(g, "no.such.key", &u32) == PL_ERR_NOT_FOUND && u32 == 17, "missing key keeps default");
    CHECK(pl_gguf_get_str(g, "t.u8", &s, &len) == PL_ERR_FORMAT, "u8 refused as string");

    /* arrays */
    float fo[3];
    int32_t io[4];
    int64_t lo[2];
    CHECK(pl_gguf_get_arr(g, "a.f32", &v) == PL_OK && v.arr_type == PL_GGUF_F32 && v.count == 3 &&
          pl_gguf_arr_to_f32(&v, fo, 3) == PL_OK && memcmp(fo, fa, sizeof fa) == 0, "f32 array");
    CHECK(pl_gguf_arr_to_f32(&v, fo, 2) == PL_ERR_RANGE, "wrong count refused");
    CHECK(pl_gguf_arr_to_i32(&v, io, 3) == PL_ERR_FORMAT, "float array refused as int");
    CHECK(pl_gguf_get_arr(g, "a.i32", &v) == PL_OK && pl_gguf_arr_to_i32(&v, io, 4) == PL_OK &&
          memcmp(io, ia, sizeof ia) == 0, "i32 array");
    pl_gguf_value e;
    CHECK(pl_gguf_get_arr(g, "a.bool", &v) == PL_OK && pl_gguf_arr_get(&v, 1, &e) == PL_OK &&
          e.type == PL_GGUF_BOOL && e.u == 0 && pl_gguf_arr_get(&v, 2, &e) == PL_OK && e.u == 1, "bool array");
    CHECK(pl_gguf_arr_get(&v, 3, &e) == PL_ERR_RANGE, "index out of range");
    CHECK(pl_gguf_get_arr(g, "a.u64", &v) == PL_OK && pl_gguf_arr_to_i64(&v, lo, 2) == PL_ERR_FORMAT,
          "u64 max refused as i64 element");
    CHECK(pl_gguf_get_arr(g, "a.empty", &v) == PL_OK && v.count == 0 && v.arr_type == PL_GGUF_I8, "empty array");
    CHECK(pl_gguf_get_arr(g, "a.str", &v) == PL_OK && v.count == 3 && pl_gguf_arr_str(&v, 2, &s, &len) == PL_OK &&
          len == 6 && memcmp(s, "thr\xe2\x80\x8d", 6) == 0 && pl_gguf_arr_str(&v, 0, &s, &len) == PL_OK && len == 0,
          "string array");
    CHECK(pl_gguf_get_arr(g, "t.u8", &v) == PL_ERR_FORMAT, "scalar refused as array");
    /* nested */
    CHECK(pl_gguf_get_arr(g, "a.nested", &v) == PL_OK && v.arr_type == PL_GGUF_ARRAY && v.count == 3, "nested");
    CHECK(pl_gguf_arr_get(&v, 0, &e) == PL_OK && e.type == PL_GGUF_ARRAY && e.arr_type == PL_GGUF_F32 &&
          e.count == 3 && pl_gguf_arr_to_f32(&e, fo, 3) == PL_OK && memcmp(fo, fa, sizeof fa) == 0, "nested[0]");
    CHECK(pl_gguf_arr_get(&v, 1, &e) == PL_OK && e.arr_type == PL_GGUF_STRING && e.count == 3 &&
          pl_gguf_arr_str(&e, 1, &s, &len) == PL_OK && len == 3 && !memcmp(s, "two", 3), "nested[1]");
    pl_gguf_value e2;
    CHECK(pl_gguf_arr_get(&v, 2, &e) == PL_OK && e.arr_type == PL_GGUF_ARRAY && e.count == 1 &&
          pl_gguf_arr_get(&e, 0, &e2) == PL_OK && e2.arr_type == PL_GGUF_I32 && e2.count == 4 &&
          pl_gguf_arr_to_i32(&e2, io, 4) == PL_OK && memcmp(io, ia, sizeof ia) == 0, "nested[2][0]");
    pl_buf txt = {0};
    CHECK(pl_gguf_value_format(&v, &txt, 10, 10) == PL_OK &&
          strcmp(txt.data, "[[1.5, -2, 3.25], [\"\", \"two\", \"thr\xe2\x80\x8d\"], [[-1, 0, 1, 2147483647]]]") == 0,
          "format nested: %s", txt.data);
    pl_buf_free(&txt);

    /* copying a nested value into a new writer reproduces it byte for byte */
    pl_gguf_writer *w2;
    CHECK_OK(pl_gguf_writer_new(&w2));
    for (int64_t k = 0; k < pl_gguf_n_kv(g); k++) {
        pl_gguf_value kv;
        CHECK_OK(pl_gguf_kv(g, k, &kv));
        CHECK_OK(pl_gguf_writer_add_value(w2, pl_gguf_key(g, k), &kv));
    }
    pl_buf mem2 = {0};
    CHECK_OK(pl_gguf_writer_to_buf(w2, &mem2));
    pl_gguf_writer_free(w2);
    pl_gguf *g2 = NULL;
    CHECK_OK(pl_gguf_open_mem(mem2.data, mem2.len, "copy", &g2));
    if (g2) {
        CHECK(pl_gguf_n_kv(g2) == pl_gguf_n_kv(g) && pl_gguf_n_tensors(g2) == 0, "copied kvs");
        pl_buf t1 = {0}, t2 = {0};
        for (int64_t k = 0; k < pl_gguf_n_kv(g); k++) {
            pl_gguf_value a1, a2;
            pl_gguf_kv(g, k, &a1);
            pl_gguf_kv(g2, k, &a2);
            pl_buf_printf(&t1, "%s=", pl_gguf_key(g, k));
            pl_buf_printf(&t2, "%s=", pl_gguf_key(g2, k));
            pl_gguf_value_format(&a1, &t1, 100, 100);
            pl_gguf_value_format(&a2, &t2, 100, 100);
        }
        CHECK(t1.len == t2.len && memcmp(t1.data, t2.data, t1.len) == 0, "copied values format identically");
        pl_buf_free(&t1);
        pl_buf_free(&t2);
        pl_gguf_close(g2);
    }
    pl_buf_free(&mem2);

    /* tensors */
    CHECK(pl_gguf_n_tensors(g) == 6, "n_tensors %lld", (long long)pl_gguf_n_tensors(g));
    const pl_gguf_tensor *t = pl_gguf_find_tensor(g, "w.f32");
    CHECK(t && t->type == PL_GGML_F32 && t->n_dims == 2 && t->ne[0] == 3 && t->ne[1] == 2 && t->ne[2] == 1 &&
          t->nbytes == 24 && t->n_elements == 6 && memcmp(t->data, t_f32, 24) == 0, "f32 tensor");
    t = pl_gguf_find_tensor(g, "w.f16");
    CHECK(t && t->type == PL_GGML_F16 && t->n_dims == 3 && t->ne[2] == 2 && t->nbytes == 128 &&
          memcmp(t->data, t_f16, 128) == 0 && ((uintptr_t)((const uint8_t *)t->data - pl_gguf_bytes(g)) % 64) == 0,
          "f16 tensor (64-aligned)");
    t = pl_gguf_find_tensor(g, "w.q8_0");
    CHECK(t && t->type == PL_GGML_Q8_0 && t->nbytes == 68 && memcmp(t->data, t_q8, 68) == 0, "q8_0 tensor");
    t = pl_gguf_find_tensor(g, "w.q4_K");
    CHECK(t && t->type == PL_GGML_Q4_K && t->nbytes == 144 && memcmp(t->data, t_q4k, 144) == 0, "q4_K tensor");
    t = pl_gguf_find_tensor(g, "w.bf16");
    CHECK(t && t->type == PL_GGML_BF16 && t->nbytes == 6 && memcmp(t->data, t_f16, 6) == 0, "bf16 tensor");
    t = pl_gguf_find_tensor(g, "w.i32");
    CHECK(t && t->type == PL_GGML_I32 && memcmp(t->data, t_i32, 12) == 0, "i32 tensor");
    CHECK(pl_gguf_find_tensor(g, "w.nope") == NULL, "absent tensor");
    CHECK(strcmp(pl_gguf_tensor_at(g, 0)->name, "w.f32") == 0 && pl_gguf_tensor_at(g, 6) == NULL, "tensor order");
    pl_gguf_close(g);
    pl_buf_free(&mem);
    unlink(path);
    CHECK(access(path, F_OK) != 0, "no temp file left");
}

/* ---- hand-made broken files: each check names its field ---------------- */

static void test_bad_files(void) {
    raw r = {{0}};
    const uint64_t ne64[1] = {64}, ne3[1] = {3}, ne0[1] = {0};

    /* the well-formed base case first, so the breakages below are meaningful */
    r_hdr(&r, 3, 1, 1);
    r_kv_u32(&r, "k", 1);
    r_tinfo(&r, "t", 1, ne64, PL_GGML_F32, 0);
    r_pad(&r, 32);
    r_zeros(&r, 256);
    CHECK(open_raw(&r, "good.gguf") == PL_OK, "base case opens: %s", pl_errmsg());
    pl_buf_free(&r.b);

    CHECK(open_raw(&r, "empty.gguf") == PL_ERR_FORMAT, "empty buffer");
    r_u32(&r, 0x46554746u);
    r_u32(&r, 3);
    CHECK_BAD(&r, "bad magic");
    pl_buf_free(&r.b);
    r_hdr(&r, 1, 0, 0);
    CHECK_BAD(&r, "version 1");
    pl_buf_free(&r.b);
    r_hdr(&r, 0x03000000u, 0, 0);
    CHECK_BAD(&r, "big-endian");
    pl_buf_free(&r.b);
    r_hdr(&r, 7, 0, 0);
    CHECK_BAD(&r, "unsupported GGUF version 7");
    pl_buf_free(&r.b);
    r_hdr(&r, 3, 0, 1ull << 60);
    CHECK_BAD(&r, "cannot fit");
    pl_buf_free(&r.b);
    r_hdr(&r, 3, UINT64_MAX, 0);
    CHECK_BAD(&r, "cannot fit");
    pl_buf_free(&r.b);

    r_hdr(&r, 3, 0, 1); /* key string length beyond the file */
    r_u64(&r, 1ull << 40);
    r_zeros(&r, 16);
    CHECK_BAD(&r, "string length");
    pl_buf_free(&r.b);
    r_hdr(&r, 3, 0, 2);
    r_kv_u32(&r, "dup", 1);
    r_kv_u32(&r, "dup", 2);
    CHECK_BAD(&r, "duplicate key 'dup'");
    pl_buf_free(&r.b);
    r_hdr(&r, 3, 0, 1);
    r_str(&r, "k");
    r_u32(&r, 13);
    r_u32(&r, 0);
    CHECK_BAD(&r, "unknown value type 13");
    pl_buf_free(&r.b);
    r_hdr(&r, 3, 0, 1);
    r_str(&r, "k");
    r_u32(&r, PL_GGUF_BOOL);
    pl_buf_append(&r.b, "\x02", 1);
    r_zeros(&r, 12);
    CHECK_BAD(&r, "bool value 2");
    pl_buf_free(&r.b);
    r_hdr(&r, 3, 0, 1); /* array whose count cannot fit */
    r_str(&r, "arr");
    r_u32(&r, PL_GGUF_ARRAY);
    r_u32(&r, PL_GGUF_U32);
    r_u64(&r, 1ull << 62);
    r_zeros(&r, 16);
    CHECK_BAD(&r, "cannot fit");
    pl_buf_free(&r.b);
    r_hdr(&r, 3, 0, 1); /* nesting deeper than the limit */
    r_str(&r, "deep");
    r_u32(&r, PL_GGUF_ARRAY);
    for (int d = 0; d < 40; d++) {
        r_u32(&r, PL_GGUF_ARRAY);
        r_u64(&r, 1);
    }
    r_zeros(&r, 64);
    CHECK_BAD(&r, "nested deeper");
    pl_buf_free(&r.b);
    r_hdr(&r, 3, 0, 1);
    r_kv_u32(&r, "general.alignment", 48);
    CHECK_BAD(&r, "general.alignment must be a power of two");
    pl_buf_free(&r.b);
    r_hdr(&r, 3, 0, 1);
    r_kv_u32(&r, "general.alignment", 0);
    CHECK_BAD(&r, "general.alignment");
    pl_buf_free(&r.b);
    r_hdr(&r, 3, 0, 1);
    r_str(&r, "general.alignment");
    r_u32(&r, PL_GGUF_STRING);
    r_str(&r, "32");
    r_zeros(&r, 8);
    CHECK_BAD(&r, "general.alignment");
    pl_buf_free(&r.b);

    /* tensor infos */
    r_hdr(&r, 3, 1, 0);
    r_tinfo(&r, "blk.0.attn_q.weight", 1, ne64, 4, 0);
    r_pad(&r, 32);
    r_zeros(&r, 256);
    CHECK_BAD(&r, "tensor 'blk.0.attn_q.weight': unknown ggml type id 4");
    pl_buf_free(&r.b);
    r_hdr(&r, 3, 1, 0);
    r_tinfo(&r, "t", 1, ne3, PL_GGML_Q8_0, 0);
    r_pad(&r, 32);
    r_zeros(&r, 256);
    CHECK_BAD(&r, "not a multiple of the q8_0 block size 32");
    pl_buf_free(&r.b);
    r_hdr(&r, 3, 1, 0);
    r_tinfo(&r, "t", 1, ne0, PL_GGML_F32, 0);
    r_pad(&r, 32);
    r_zeros(&r, 256);
    CHECK_BAD(&r, "ne[0] = 0 is not positive");
    pl_buf_free(&r.b);
    {
        const uint64_t neg[2] = {4, (uint64_t)-5};
        r_hdr(&r, 3, 1, 0);
        r_tinfo(&r, "t", 2, neg, PL_GGML_F32, 0);
        r_pad(&r, 32);
        r_zeros(&r, 256);
        CHECK_BAD(&r, "ne[1] = -5 is not positive");
        pl_buf_free(&r.b);
        const uint64_t big[4] = {1ull << 20, 1ull << 20, 1ull << 20, 1ull << 20};
        r_hdr(&r, 3, 1, 0);
        r_tinfo(&r, "t", 4, big, PL_GGML_F32, 0);
        r_pad(&r, 32);
        r_zeros(&r, 256);
        CHECK_BAD(&r, "element count overflows");
        pl_buf_free(&r.b);
        const uint64_t big2[2] = {1ull << 31, 1ull << 31};
        r_hdr(&r, 3, 1, 0);
        r_tinfo(&r, "t", 2, big2, PL_GGML_F64, 0);
        r_pad(&r, 32);
        r_zeros(&r, 256);
        CHECK_BAD(&r, "byte size overflows");
        pl_buf_free(&r.b);
    }
    r_hdr(&r, 3, 1, 0);
    r_tinfo(&r, "t", 5, (const uint64_t[5]){1, 1, 1, 1, 1}, PL_GGML_F32, 0);
    r_pad(&r, 32);
    r_zeros(&r, 256);
    CHECK_BAD(&r, "n_dims 5");
    pl_buf_free(&r.b);
    r_hdr(&r, 3, 2, 0);
    r_tinfo(&r, "same", 1, ne64, PL_GGML_F32, 0);
    r_tinfo(&r, "same", 1, ne64, PL_GGML_F32, 256);
    r_pad(&r, 32);
    r_zeros(&r, 512);
    CHECK_BAD(&r, "duplicate tensor name 'same'");
    pl_buf_free(&r.b);
    r_hdr(&r, 3, 1, 0);
    r_tinfo(&r, "t", 1, ne64, PL_GGML_F32, 16);
    r_pad(&r, 32);
    r_zeros(&r, 512);
    CHECK_BAD(&r, "not a multiple of the alignment 32");
    pl_buf_free(&r.b);
    r_hdr(&r, 3, 1, 0);
    r_tinfo(&r, "blk.0.attn_q.weight", 1, ne64, PL_GGML_F32, 0);
    r_pad(&r, 32);
    r_zeros(&r, 255);
    CHECK_BAD(&r, "tensor 'blk.0.attn_q.weight': data range");
    CHECK(strstr(pl_errmsg(), "exceeds file size"), "message: %s", pl_errmsg());
    pl_buf_free(&r.b);
    r_hdr(&r, 3, 1, 0);
    r_tinfo(&r, "t", 1, ne64, PL_GGML_F32, UINT64_MAX - 31);
    r_pad(&r, 32);
    r_zeros(&r, 256);
    CHECK_BAD(&r, "exceeds file size");
    pl_buf_free(&r.b);
    r_hdr(&r, 3, 2, 0);
    r_tinfo(&r, "a", 1, ne64, PL_GGML_F32, 0);
    r_tinfo(&r, "b", 1, ne64, PL_GGML_F32, 224);
    r_pad(&r, 32);
    r_zeros(&r, 512);
    CHECK_BAD(&r, "data overlaps tensor");
    pl_buf_free(&r.b);
    r_hdr(&r, 3, 1, 0); /* tensor infos end exactly at EOF: data section past the end */
    r_tinfo(&r, "t", 1, ne64, PL_GGML_F32, 0);
    r_zeros(&r, 1);
    CHECK_BAD(&r, "past the end of the file");
    pl_buf_free(&r.b);
    r_hdr(&r, 3, 1, 0);
    r_str(&r, "");
    r_zeros(&r, 40);
    CHECK_BAD(&r, "empty name");
    pl_buf_free(&r.b);

    /* a v2 file with a vocabulary-only layout (no tensors, no padding) */
    r_hdr(&r, 2, 0, 1);
    r_kv_u32(&r, "general.alignment", 64);
    CHECK(open_raw(&r, "v2.gguf") == PL_OK, "v2 without tensors: %s", pl_errmsg());
    pl_buf_free(&r.b);
}

/* ---- the shared model files, against their READMEs ---------------------- */

typedef struct {
    const char *rel;
    int64_t size;          /* bytes, from the README's table */
    const char *arch;
    int64_t n_tensors;     /* -1: not stated */
    int64_t n_layers, d_model, n_heads, n_kv_heads, d_ff;  /* -1: not stated */
    int64_t n_vocab;
    const char *tok_model;
} gguf_fact;

/* Number of weights of each kind per layer in llama-family GGUFs: attn_norm,
 * q, k, v, output, ffn_norm, gate, up, down = 9; gemma2 adds the post-attention
 * and post-ffw norms = 11 (vectors/arch/README.md lists both post norms). */
static const gguf_fact facts[] = {
    /* models/README.md: stories260K.gguf, 1,185,376 bytes, F32, arch llama, SPM vocab of 512; dim 64,
     * hidden 172, 5 layers, 8 heads, 4 kv heads; output.weight written. 5*9 + embd + out_norm + output. */
    {"models/stories260K.gguf", 1185376, "llama", 5 * 9 + 3, 5, 64, 8, 4, 172, 512, "llama"},
    /* models/README.md: 26 layers, n_embd 64, 4 heads / 2 kv heads, ff 128, tok512; tied output. */
    {"models/fixtures/tiny-gemma2-random.gguf", 4020672, "gemma2", 26 * 11 + 2, 26, 64, 4, 2, 128, 512, "llama"},
    /* models/README.md: Llama-3.1-style, rope_freqs.weight, 4 layers, GQA 4:2, tok512. */
    {"models/fixtures/tiny-llama31-random.gguf", 966464, "llama", 4 * 9 + 4, 4, 64, 4, 2, -1, 512, "llama"},
    /* models/README.md: Mistral-style, GQA 8:2, untied output, 4 layers, tok512. */
    {"models/fixtures/tiny-mistral-random.gguf", 933600, "llama", 4 * 9 + 3, 4, -1, 8, 2, -1, 512, "llama"},
    {"models/fixtures/tiny-mistral-random-q8_0.gguf", 259904, "llama", 4 * 9 + 3, 4, -1, 8, 2, -1, 512, "llama"},
    {"models/fixtures/tiny-mistral-random-q4_0.gguf", 161600, "llama", 4 * 9 + 3, 4, -1, 8, 2, -1, 512, "llama"},
    /* vectors/tokenizer/README.md: vocab-only GGUFs (no tensors). Gemma 256000 pieces; Llama 3.1: 128000
     * ranks + 256 specials, model gpt2; Mistral v1 32000, v3 32768; llama-spm 32000. */
    {"vectors/tokenizer/ggml-vocab-gemma2-spm.gguf", 6029024, "gemma2", 0, -1, -1, -1, -1, -1, 256000, "llama"},
    {"vectors/tokenizer/ggml-vocab-llama-spm.gguf", 723869, "llama", 0, -1, -1, -1, -1, -1, 32000, "llama"},
    {"vectors/tokenizer/ggml-vocab-llama3.1-bpe.gguf", 7818208, "llama", 0, -1, -1, -1, -1, -1, 128256, "gpt2"},
    {"vectors/tokenizer/ggml-vocab-mistral-v1-spm.gguf", 717664, "llama", 0, -1, -1, -1, -1, -1, 32000, "llama"},
    {"vectors/tokenizer/ggml-vocab-mistral-v3-spm.gguf", 739904, "llama", 0, -1, -1, -1, -1, -1, 32768, "llama"},
};

static void check_u32_key(const pl_gguf *g, const char *arch, const char *suffix, int64_t want, const char *file) {
    if (want < 0) return;
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    uint32_t v = 0;
    pl_status st = pl_gguf_get_u32(g, key, &v);
    CHECK(st == PL_OK && v == want, "%s: %s = %u (%s), want %lld", file, key, v, pl_status_str(st), (long long)want);
}

static void test_shared_ggufs(const char *shared) {
    char path[1024];
    for (size_t i = 0; i < sizeof facts / sizeof *facts; i++) {
        const gguf_fact *f = &facts[i];
        t_path(path, sizeof path, shared, f->rel);
        pl_gguf *g = NULL;
        pl_status st = pl_gguf_open(path, &g);
        CHECK(st == PL_OK, "%s: %s", f->rel, pl_errmsg());
        if (!g) continue;
        CHECK(pl_gguf_file_size(g) == (uint64_t)f->size, "%s: size %llu, README says %lld", f->rel,
              (unsigned long long)pl_gguf_file_size(g), (long long)f->size);
        char arch[64] = "";
        CHECK(pl_gguf_get_str_copy(g, "general.architecture", arch, sizeof arch) == PL_OK && !strcmp(arch, f->arch),
              "%s: arch '%s', want %s", f->rel, arch, f->arch);
        if (f->n_tensors >= 0)
            CHECK(pl_gguf_n_tensors(g) == f->n_tensors, "%s: %lld tensors, want %lld", f->rel,
                  (long long)pl_gguf_n_tensors(g), (long long)f->n_tensors);
        check_u32_key(g, arch, "block_count", f->n_layers, f->rel);
        check_u32_key(g, arch, "embedding_length", f->d_model, f->rel);
        check_u32_key(g, arch, "attention.head_count", f->n_heads, f->rel);
        check_u32_key(g, arch, "attention.head_count_kv", f->n_kv_heads, f->rel);
        check_u32_key(g, arch, "feed_forward_length", f->d_ff, f->rel);
        pl_gguf_value tok;
        CHECK(pl_gguf_get_arr(g, "tokenizer.ggml.tokens", &tok) == PL_OK && tok.arr_type == PL_GGUF_STRING &&
              tok.count == (uint64_t)f->n_vocab, "%s: %llu tokens, want %lld", f->rel,
              (unsigned long long)tok.count, (long long)f->n_vocab);
        char model[32] = "";
        CHECK(pl_gguf_get_str_copy(g, "tokenizer.ggml.model", model, sizeof model) == PL_OK &&
              !strcmp(model, f->tok_model), "%s: tokenizer model '%s'", f->rel, model);
        /* every tensor: data inside the file, size consistent with its type */
        for (int64_t k = 0; k < pl_gguf_n_tensors(g); k++) {
            const pl_gguf_tensor *t = pl_gguf_tensor_at(g, k);
            size_t nb = 0;
            CHECK(pl_ggml_nbytes(t->type, t->n_elements, &nb) == PL_OK && nb == t->nbytes &&
                  (const uint8_t *)t->data + t->nbytes <= pl_gguf_bytes(g) + pl_gguf_file_size(g) &&
                  pl_gguf_find_tensor(g, t->name) == t, "%s: tensor %s", f->rel, t->name);
        }
        pl_gguf_close(g);
    }

    /* specific facts */
    pl_gguf *g = NULL;
    pl_gguf_value v;
    const char *s;
    size_t len;
    uint32_t u = 0;
    float fl = 0;
    int b = -1;
    /* models/README.md: stories260K: context_length 128, no rope base key, rms eps 1e-5, bos 1, eos 2,
     * unk 0, no add_space_prefix key; output.weight is a copy of the embedding. */
    if (pl_gguf_open(t_path(path, sizeof path, shared, "models/stories260K.gguf"), &g) == PL_OK) {
        CHECK(pl_gguf_get_u32(g, "llama.context_length", &u) == PL_OK && u == 128, "stories ctx");
        CHECK(!pl_gguf_has(g, "llama.rope.freq_base"), "stories has no rope base");
        CHECK(pl_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &fl) == PL_OK && fl == 1e-5f, "eps");
        CHECK(pl_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u) == PL_OK && u == 1, "bos");
        CHECK(pl_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u) == PL_OK && u == 2, "eos");
        CHECK(pl_gguf_get_u32(g, "tokenizer.ggml.unknown_token_id", &u) == PL_OK && u == 0, "unk");
        CHECK(!pl_gguf_has(g, "tokenizer.ggml.add_space_prefix"), "no add_space_prefix");
        const pl_gguf_tensor *e = pl_gguf_find_tensor(g, "token_embd.weight"),
                             *o = pl_gguf_find_tensor(g, "output.weight");
        CHECK(e && o && e->type == PL_GGML_F32 && e->ne[0] == 64 && e->ne[1] == 512 && o->nbytes == e->nbytes &&
              memcmp(e->data, o->data, e->nbytes) == 0, "output.weight is a copy of the embedding");
        /* llama2.c's tokenizer: piece 1 is "<s>", and tokens index in O(1) */
        pl_gguf_value tok;
        CHECK(pl_gguf_get_arr(g, "tokenizer.ggml.tokens", &tok) == PL_OK &&
              pl_gguf_arr_str(&tok, 1, &s, &len) == PL_OK && len == 3 && !memcmp(s, "<s>", 3), "token 1 is <s>");
        pl_gguf_close(g);
    }
    /* models/README.md: LoRA rank 4, alpha 8, on q/k/v/o and gate/up/down of 5 layers, F32 */
    if (pl_gguf_open(t_path(path, sizeof path, shared, "models/stories260K-lora-r4-random.gguf"), &g) == PL_OK) {
        CHECK(pl_gguf_n_tensors(g) == 5 * 7 * 2, "lora tensors %lld", (long long)pl_gguf_n_tensors(g));
        CHECK(pl_gguf_get_f32(g, "adapter.lora.alpha", &fl) == PL_OK && fl == 8.0f, "lora alpha");
        CHECK(pl_gguf_get_str(g, "adapter.type", &s, &len) == PL_OK && len == 4 && !memcmp(s, "lora", 4), "lora");
        const pl_gguf_tensor *a = pl_gguf_find_tensor(g, "blk.4.ffn_down.weight.lora_a"),
                             *bb = pl_gguf_find_tensor(g, "blk.4.ffn_down.weight.lora_b");
        CHECK(a && bb && a->type == PL_GGML_F32 && a->ne[0] == 172 && a->ne[1] == 4 && bb->ne[0] == 4 &&
              bb->ne[1] == 64, "lora ffn_down shapes (rank 4, n_ff 172, dim 64)");
        pl_gguf_close(g);
    }
    /* models/README.md + vectors/arch/README.md: gemma2 head_dim 16, sliding_window 4, softcaps 4 and 6,
     * tied output */
    if (pl_gguf_open(t_path(path, sizeof path, shared, "models/fixtures/tiny-gemma2-random.gguf"), &g) == PL_OK) {
        CHECK(pl_gguf_get_u32(g, "gemma2.attention.key_length", &u) == PL_OK && u == 16, "gemma2 head_dim");
        CHECK(pl_gguf_get_u32(g, "gemma2.attention.sliding_window", &u) == PL_OK && u == 4, "gemma2 swa");
        CHECK(pl_gguf_get_f32(g, "gemma2.attn_logit_softcapping", &fl) == PL_OK && fl == 4.0f, "attn softcap");
        CHECK(pl_gguf_get_f32(g, "gemma2.final_logit_softcapping", &fl) == PL_OK && fl == 6.0f, "final softcap");
        CHECK(pl_gguf_find_tensor(g, "output.weight") == NULL, "gemma2 output tied");
        pl_gguf_close(g);
    }
    /* models/README.md: llama31 rope base 500000 and rope_freqs.weight */
    if (pl_gguf_open(t_path(path, sizeof path, shared, "models/fixtures/tiny-llama31-random.gguf"), &g) == PL_OK) {
        CHECK(pl_gguf_get_f32(g, "llama.rope.freq_base", &fl) == PL_OK && fl == 500000.0f, "llama31 rope base");
        CHECK(pl_gguf_find_tensor(g, "rope_freqs.weight") != NULL, "rope_freqs.weight present");
        pl_gguf_close(g);
    }
    /* models/README.md: q4_0 fixture: 2-D weights Q4_0 but output.weight Q8_0, norms F32; q8_0: all 2-D Q8_0 */
    const char *qf[2] = {"models/fixtures/tiny-mistral-random-q4_0.gguf", "models/fixtures/tiny-mistral-random-q8_0.gguf"};
    for (int q = 0; q < 2; q++) {
        if (pl_gguf_open(t_path(path, sizeof path, shared, qf[q]), &g) != PL_OK) continue;
        int bad = 0;
        for (int64_t k = 0; k < pl_gguf_n_tensors(g); k++) {
            const pl_gguf_tensor *t = pl_gguf_tensor_at(g, k);
            uint32_t want = t->n_dims == 1 ? PL_GGML_F32
                            : (q == 0 && strcmp(t->name, "output.weight")) ? PL_GGML_Q4_0 : PL_GGML_Q8_0;
            if (t->type != want) bad++;
        }
        CHECK(bad == 0, "%s: %d tensors of an unexpected type", qf[q], bad);
        CHECK(pl_gguf_get_f32(g, "llama.rope.freq_base", &fl) == PL_OK && fl == 1e6f, "mistral rope base 1e6");
        pl_gguf_close(g);
    }
    /* vectors/tokenizer/README.md: gemma2 add_space_prefix=false, bos 2, eos 1, unk 3, pad 0;
     * llama3.1: 280147 merges, pre llama-bpe, bos 128000, eos 128001 */
    if (pl_gguf_open(t_path(path, sizeof path, shared, "vectors/tokenizer/ggml-vocab-gemma2-spm.gguf"), &g) == PL_OK) {
        CHECK(pl_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b) == PL_OK && b == 0, "gemma no space prefix");
        CHECK(pl_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u) == PL_OK && u == 2, "gemma bos");
        CHECK(pl_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u) == PL_OK && u == 1, "gemma eos");
        CHECK(pl_gguf_get_u32(g, "tokenizer.ggml.unknown_token_id", &u) == PL_OK && u == 3, "gemma unk");
        CHECK(pl_gguf_get_u32(g, "tokenizer.ggml.padding_token_id", &u) == PL_OK && u == 0, "gemma pad");
        /* tokenizer_config: <start_of_turn> = 106, <end_of_turn> = 107 */
        CHECK(pl_gguf_get_arr(g, "tokenizer.ggml.tokens", &v) == PL_OK && pl_gguf_arr_str(&v, 106, &s, &len) == PL_OK &&
              len == 15 && !memcmp(s, "<start_of_turn>", 15) && pl_gguf_arr_str(&v, 107, &s, &len) == PL_OK &&
              len == 13 && !memcmp(s, "<end_of_turn>", 13), "gemma turn tokens");
        pl_gguf_close(g);
    }
    if (pl_gguf_open(t_path(path, sizeof path, shared, "vectors/tokenizer/ggml-vocab-llama3.1-bpe.gguf"), &g) == PL_OK) {
        CHECK(pl_gguf_get_arr(g, "tokenizer.ggml.merges", &v) == PL_OK && v.count == 280147, "llama3 merges");
        CHECK(pl_gguf_get_str(g, "tokenizer.ggml.pre", &s, &len) == PL_OK && len == 9 && !memcmp(s, "llama-bpe", 9),
              "llama3 pre");
        CHECK(pl_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u) == PL_OK && u == 128000, "llama3 bos");
        CHECK(pl_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u) == PL_OK && u == 128001, "llama3 eos");
        CHECK(pl_gguf_get_arr(g, "tokenizer.ggml.tokens", &v) == PL_OK &&
              pl_gguf_arr_str(&v, 128009, &s, &len) == PL_OK && len == 10 && !memcmp(s, "<|eot_id|>", 10),
              "llama3 token 128009 is <|eot_id|>");
        pl_gguf_close(g);
    }
}

/* ---- hostile input: truncations and byte flips of real files ----------- */

static int hostile_one(const uint8_t *data, size_t n, const char *name, int *rejected) {
    uint8_t *copy = malloc(n ? n : 1);
    if (n) memcpy(copy, data, n);
    pl_gguf *g = NULL;
    pl_error_clear();
    pl_status st = pl_gguf_open_mem(copy, n, name, &g);
    int ok = 1;
    if (st == PL_OK) {
        /* exercise every accessor on what was accepted */
        pl_buf b = {0};
        for (int64_t k = 0; k < pl_gguf_n_kv(g); k++) {
            pl_gguf_value v;
            if (pl_gguf_kv(g, k, &v)) ok = 0;
            b.len = 0;
            pl_gguf_value_format(&v, &b, 64, 64);
            if (v.type == PL_GGUF_ARRAY && v.count) {
                pl_gguf_value e;
                if (pl_gguf_arr_get(&v, v.count - 1, &e)) ok = 0;
            }
        }
        pl_buf_free(&b);
        volatile uint8_t sink = 0;
        for (int64_t k = 0; k < pl_gguf_n_tensors(g); k++) {
            const pl_gguf_tensor *t = pl_gguf_tensor_at(g, k);
            sink ^= ((const uint8_t *)t->data)[0] ^ ((const uint8_t *)t->data)[t->nbytes - 1];
            if (pl_gguf_find_tensor(g, t->name) != t) ok = 0;
        }
        (void)sink;
        pl_gguf_close(g);
    } else {
        (*rejected)++;
        if (st != PL_ERR_FORMAT || !strstr(pl_errmsg(), name)) ok = 0;
    }
    free(copy);
    return ok;
}

static void hostile_file(const char *shared, const char *rel) {
    char path[1024];
    char *data = NULL;
    size_t n = 0;
    if (pl_read_file(t_path(path, sizeof path, shared, rel), &data, &n) != PL_OK) {
        CHECK(0, "cannot read %s: %s", rel, pl_errmsg());
        return;
    }
    pl_gguf *g = NULL;
    CHECK_OK(pl_gguf_open_mem(data, n, rel, &g));
    if (!g) {
        free(data);
        return;
    }
    /* section boundaries: header 24 bytes, kvs, tensor infos, data */
    size_t kv_end = 24, info_end = (size_t)pl_gguf_data_offset(g);
    if (pl_gguf_n_tensors(g)) {
        info_end = (size_t)pl_gguf_tensor_at(g, 0)->info_offset;
        kv_end = info_end;
        for (int64_t k = 0; k < pl_gguf_n_tensors(g); k++) {
            size_t o = (size_t)pl_gguf_tensor_at(g, k)->info_offset;
            if (o < kv_end) kv_end = o;
        }
        info_end = (size_t)pl_gguf_data_offset(g);
    } else {
        kv_end = info_end = n;
    }
    pl_gguf_close(g);

    /* truncation points: every offset in the header, then 80 spread over
     * the kvs, 80 over the tensor infos, 40 over the data (a vocab-only
     * file gets all 200 in its kvs) */
    size_t cuts[512];
    int nc = 0;
    int n_tensors = info_end < n;
    for (size_t o = 0; o < 40 && o < n; o++) cuts[nc++] = o;
    for (int k = 0; k < (n_tensors ? 80 : 200); k++) cuts[nc++] = 24 + (kv_end - 24) * (size_t)k / (n_tensors ? 80 : 200);
    if (n_tensors) {
        for (int k = 0; k < 80; k++) cuts[nc++] = kv_end + (info_end - kv_end) * (size_t)k / 80;
        for (int k = 0; k < 40; k++) cuts[nc++] = info_end + (n - info_end) * (size_t)k / 40;
    }
    cuts[nc++] = n - 1;
    /* distinct offsets */
    int distinct = 0, rej_trunc = 0, bad = 0;
    for (int i = 0; i < nc; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++) seen |= cuts[j] == cuts[i];
        if (seen) continue;
        distinct++;
        if (!hostile_one((const uint8_t *)data, cuts[i], rel, &rej_trunc)) bad++;
    }
    CHECK(distinct >= 200, "%s: only %d distinct truncation offsets", rel, distinct);

    /* seeded random corruption: 1..8 byte changes, mostly in the header,
     * kv and tensor-info sections (the data section does not parse) */
    pl_rng rng;
    pl_rng_seed(&rng, 0x5eed0000u + (uint64_t)n);
    uint8_t *mut = malloc(n);
    int rej_flip = 0, n_flip = 300;
    size_t meta_end = info_end < n ? info_end : n;
    for (int v = 0; v < n_flip; v++) {
        memcpy(mut, data, n);
        int k = 1 + (int)pl_rng_below(&rng, 8);
        for (int j = 0; j < k; j++) {
            size_t pos = pl_rng_below(&rng, 10) < 9 ? pl_rng_below(&rng, meta_end) : pl_rng_below(&rng, n);
            switch (pl_rng_below(&rng, 4)) {
            case 0: mut[pos] ^= (uint8_t)(1u << pl_rng_below(&rng, 8)); break;       /* bit flip */
            case 1: mut[pos] = (uint8_t)pl_rng_u64(&rng); break;                    /* random byte */
            case 2: mut[pos] = 0xff; break;                                         /* saturate */
            default: mut[pos] = (uint8_t)(mut[pos] + 1); break;                     /* off by one */
            }
        }
        if (!hostile_one(mut, n, rel, &rej_flip)) bad++;
    }
    free(mut);
    CHECK(bad == 0, "%s: %d variants gave an unclean result", rel, bad);
    printf("hostile %s: %d truncations (%d rejected), %d corruptions (%d rejected)\n", rel, distinct, rej_trunc,
           n_flip, rej_flip);
    free(data);
}

static void test_hostile(const char *shared) {
    hostile_file(shared, "models/stories260K.gguf");
    hostile_file(shared, "models/fixtures/tiny-mistral-random-q4_0.gguf");
    hostile_file(shared, "vectors/tokenizer/ggml-vocab-llama-spm.gguf");
}

int main(void) {
    T_BEGIN();
    test_ggml_types();
    test_roundtrip(3);
    test_roundtrip(2);
    test_bad_files();
    const char *shared = pl_test_shared();
    if (shared) {
        test_shared_ggufs(shared);
        test_hostile(shared);
    }
    return T_END();
}
