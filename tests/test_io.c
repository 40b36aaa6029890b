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

/* With PL_GGUF_SEED_DIR set, the GGUFs built here are also saved as seeds
 * for the fuzzer (tests/fuzz/fuzz_gguf.c). */
static void save_seed(const char *what, unsigned n, const pl_buf *b) {
    const char *dir = getenv("PL_GGUF_SEED_DIR");
    if (!dir) return;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s-%u.gguf", dir, what, n);
    CHECK_OK(pl_write_file_atomic(path, b->data, b->len));
}

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
    save_seed("roundtrip", version, &mem);

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


/* ---- model metadata ------------------------------------------------------ */

/* A small llama-style GGUF whose metadata we choose; returns its bytes. */
static void build_model(pl_buf *out, const char *arch, int layers, int heads, int kv, int with_output,
                        void (*extra)(pl_gguf_writer *)) {
    pl_gguf_writer *w;
    pl_gguf_writer_new(&w);
    char k[128];
    pl_gguf_writer_add_str(w, "general.architecture", arch);
    pl_gguf_writer_add_str(w, "general.name", "synthetic Mistral-ish");
#define K(s) (snprintf(k, sizeof k, "%s.%s", arch, s), k)
    pl_gguf_writer_add_u32(w, K("block_count"), (uint32_t)layers);
    pl_gguf_writer_add_u32(w, K("embedding_length"), 32);
    pl_gguf_writer_add_u32(w, K("feed_forward_length"), 64);
    pl_gguf_writer_add_u32(w, K("attention.head_count"), (uint32_t)heads);
    pl_gguf_writer_add_u32(w, K("attention.head_count_kv"), (uint32_t)kv);
    pl_gguf_writer_add_u64(w, K("context_length"), 256);
    pl_gguf_writer_add_f32(w, K("attention.layer_norm_rms_epsilon"), 1e-6f);
#undef K
    const char *toks[3] = {"a", "b", "ab"}, *merges[1] = {"a b"};
    pl_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2");
    pl_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 3);
    pl_gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", merges, NULL, 1);
    pl_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 0);
    if (extra) extra(w);
    static float embd[32 * 3];
    const int64_t ne[2] = {32, 3};
    pl_gguf_writer_add_tensor(w, "token_embd.weight", PL_GGML_F32, 2, ne, embd, sizeof embd);
    if (with_output) pl_gguf_writer_add_tensor(w, "output.weight", PL_GGML_F32, 2, ne, embd, sizeof embd);
    out->len = 0;
    CHECK_OK(pl_gguf_writer_to_buf(w, out));
    pl_gguf_writer_free(w);
}

static pl_status meta_of(const pl_buf *b, pl_model_meta *m) {
    pl_gguf *g = NULL;
    pl_status st = pl_gguf_open_mem(b->data, b->len, "model.gguf", &g);
    if (!st) st = pl_model_meta_from_gguf(g, m);
    pl_gguf_close(g);
    return st;
}

static void ex_rope_linear(pl_gguf_writer *w) {
    pl_gguf_writer_add_f32(w, "llama.rope.freq_base", 1e6f);
    pl_gguf_writer_add_str(w, "llama.rope.scaling.type", "linear");
    pl_gguf_writer_add_f32(w, "llama.rope.scaling.factor", 4.0f);
    pl_gguf_writer_add_u32(w, "llama.rope.scaling.original_context_length", 64);
}
static void ex_rope_nofactor(pl_gguf_writer *w) { pl_gguf_writer_add_str(w, "llama.rope.scaling.type", "yarn"); }
static void ex_layers_str(pl_gguf_writer *w) { pl_gguf_writer_add_str(w, "llama.attention.key_length", "8"); }
static void ex_gemma(pl_gguf_writer *w) {
    pl_gguf_writer_add_u32(w, "gemma2.attention.sliding_window", 16);
    pl_gguf_writer_add_f32(w, "gemma2.attn_logit_softcapping", 50.0f);
    pl_gguf_writer_add_f32(w, "gemma2.final_logit_softcapping", 30.0f);
    pl_gguf_writer_add_u32(w, "gemma2.attention.key_length", 16);
}

static void test_meta_synthetic(void) {
    pl_buf b = {0};
    pl_model_meta m;
    /* every value checked below is an input chosen in build_model / ex_* */
    build_model(&b, "llama", 2, 4, 2, 0, ex_rope_linear);
    save_seed("model-llama", 0, &b);
    CHECK_OK(meta_of(&b, &m));
    CHECK(m.arch == PL_ARCH_LLAMA && m.mistral_hint == 1 && m.n_layers == 2 && m.d_model == 32 && m.n_heads == 4 &&
          m.n_kv_heads == 2 && m.head_dim == 8 && m.head_dim_v == 8 && m.d_ff == 64 && m.n_ctx == 256,
          "llama shape");
    CHECK(m.rope_base == 1e6 && m.rope_base_given && m.rope_scaling == PL_ROPE_SCALING_LINEAR && m.rope_factor == 4 &&
          m.rope_orig_ctx == 64 && m.rope_dim == 8 && !m.rope_neox && !m.has_rope_freqs, "llama rope");
    CHECK(m.norm_eps == (double)1e-6f && m.tied_output == 1 && m.vocab_size == 3 && m.tok_kind == PL_META_TOK_BPE &&
          m.n_tokens == 3 && m.n_merges == 1 && m.bos_id == 0 && m.eos_id == -1, "llama tokenizer/output");
    CHECK(m.n_tensors == 1 && m.n_params == 96 && m.tensor_bytes == 384 && m.n_dtypes == 1 &&
          !strcmp(m.dtypes[0].name, "f32"), "tensor stats");
    CHECK(m.query_pre_attn_scalar == 8 && m.sliding_window == 0 && m.attn_softcap == 0, "llama attention");
    pl_buf txt = {0};
    CHECK_OK(pl_model_meta_format(&m, &txt));
    CHECK(txt.data && strstr(txt.data, "scaling linear factor 4 original ctx 64") &&
          strstr(txt.data, "general.name mentions Mistral"), "summary: %s", txt.data ? txt.data : "");
    txt.len = 0;
    CHECK_OK(pl_model_meta_json(&m, &txt));
    CHECK(txt.data && strstr(txt.data, "\"n_kv_heads\":\t2") && strstr(txt.data, "\"rope_scaling\":\t\"linear\""),
          "json: %.300s", txt.data ? txt.data : "");
    pl_buf_free(&txt);

    build_model(&b, "gemma2", 46, 4, 2, 0, ex_gemma);
    save_seed("model-gemma2", 0, &b);
    CHECK_OK(meta_of(&b, &m));
    /* llama.cpp scales q by 1/sqrt(n_embd/n_head) for 46-layer gemma2 (27B), else 1/sqrt(head_dim) */
    CHECK(m.arch == PL_ARCH_GEMMA2 && m.query_pre_attn_scalar == 8 && m.head_dim == 16 && m.sliding_window == 16 &&
          m.swa_every == 2 && m.attn_softcap == 50 && m.final_softcap == 30 && m.rope_neox && !m.mistral_hint,
          "gemma2 46 layers");
    build_model(&b, "gemma2", 26, 4, 2, 0, ex_gemma);
    CHECK(meta_of(&b, &m) == PL_OK && m.query_pre_attn_scalar == 16, "gemma2 26 layers: q scale head_dim");

    /* refusals name the key and file */
    build_model(&b, "llama", 2, 3, 2, 1, NULL);
    CHECK(meta_of(&b, &m) == PL_ERR_FORMAT && strstr(pl_errmsg(), "model.gguf"), "3 heads, 2 kv heads: %s",
          pl_errmsg());
    build_model(&b, "llama", 2, 4, 2, 1, ex_layers_str);
    CHECK(meta_of(&b, &m) == PL_ERR_FORMAT && strstr(pl_errmsg(), "llama.attention.key_length"), "string key: %s",
          pl_errmsg());
    build_model(&b, "llama", 2, 4, 2, 1, ex_rope_nofactor);
    CHECK(meta_of(&b, &m) == PL_ERR_FORMAT && strstr(pl_errmsg(), "without a positive factor"), "yarn: %s",
          pl_errmsg());
    build_model(&b, "llama", 0, 4, 2, 1, NULL);
    CHECK(meta_of(&b, &m) == PL_ERR_FORMAT && strstr(pl_errmsg(), "layer count 0"), "0 layers: %s", pl_errmsg());
    build_model(&b, "llama", 2, 8, 2, 1, NULL); /* d_model 32 / 8 heads = head_dim 4, fine; embedding 32 wide */
    CHECK(meta_of(&b, &m) == PL_OK && m.head_dim == 4 && m.tied_output == 0, "untied: %s", pl_errmsg());
    {
        pl_gguf_writer *w;
        pl_gguf_writer_new(&w);
        pl_gguf_writer_add_str(w, "general.architecture", "llama");
        pl_gguf_writer_add_u32(w, "llama.block_count", 2);
        static float x[16];
        const int64_t ne[1] = {16};
        pl_gguf_writer_add_tensor(w, "x", PL_GGML_F32, 1, ne, x, sizeof x);
        b.len = 0;
        pl_gguf_writer_to_buf(w, &b);
        pl_gguf_writer_free(w);
        CHECK(meta_of(&b, &m) == PL_ERR_FORMAT && strstr(pl_errmsg(), "required key 'llama.embedding_length'"),
              "missing key: %s", pl_errmsg());
    }
    /* found by fuzz_gguf: an adapter stating 4 heads and 0 kv heads crashed the summary (division by zero) */
    {
        pl_gguf_writer *w;
        pl_gguf_writer_new(&w);
        pl_gguf_writer_add_str(w, "general.architecture", "llama");
        pl_gguf_writer_add_str(w, "general.type", "adapter");
        pl_gguf_writer_add_u32(w, "llama.attention.head_count", 4);
        pl_gguf_writer_add_u32(w, "llama.attention.head_count_kv", 0);
        b.len = 0;
        pl_gguf_writer_to_buf(w, &b);
        pl_gguf_writer_free(w);
        CHECK(meta_of(&b, &m) == PL_ERR_FORMAT && strstr(pl_errmsg(), "layer count"), "partial adapter shape: %s",
              pl_errmsg());
        m.n_heads = 4;
        m.n_kv_heads = 0;
        pl_buf t = {0};
        CHECK_OK(pl_model_meta_format(&m, &t));
        pl_buf_free(&t);
    }
    pl_buf_free(&b);
}

/* model info on every shared GGUF, against the READMEs */
typedef struct {
    const char *rel;
    const char *arch;
    int64_t layers, d_model, heads, kv, head_dim, ff, ctx, vocab; /* -1: not stated */
    double rope_base;        /* 0: not stated */
    int tied;                /* -1: not stated */
    pl_meta_tok_kind tok;
    int64_t n_tensors;
    int64_t n_params;        /* closed form from the README's hyperparameters; -1 when not fully stated */
} meta_fact;

static void test_meta_shared(const char *shared) {
    /* stories260K (models/README.md): dim 64, hidden 172, 5 layers, 8 heads, 4 kv, head_dim 8, vocab 512,
     * ctx 128 written by the converter, no rope base (10000 used), output.weight present.
     * params = V*d + d + V*d + L*(d*d + 2*d*(kv*hd) + d*d + 3*d*ff + 2*d) */
    const int64_t st_params = 512 * 64 * 2 + 64 + 5 * (64 * 64 * 2 + 2 * 64 * 32 + 3 * 64 * 172 + 2 * 64);
    /* tiny-gemma2 (models/README.md, vectors/arch/README.md): 26 layers, n_embd 64, 4/2 heads, head_dim 16,
     * ff 128, tok512, tied, post-attention and post-ffw norms: 4 norms per layer */
    const int64_t g2_params = 512 * 64 + 64 + 26 * (64 * 64 * 2 + 2 * 64 * 32 + 3 * 64 * 128 + 4 * 64);
    const meta_fact facts_m[] = {
        {"models/stories260K.gguf", "llama", 5, 64, 8, 4, 8, 172, 128, 512, 10000, 0, PL_META_TOK_SPM, 48, st_params},
        {"models/fixtures/tiny-gemma2-random.gguf", "gemma2", 26, 64, 4, 2, 16, 128, -1, 512, 0, 1, PL_META_TOK_SPM, 288,
         g2_params},
        {"models/fixtures/tiny-llama31-random.gguf", "llama", 4, -1, 4, 2, -1, -1, -1, 512, 500000, -1, PL_META_TOK_SPM,
         40, -1},
        {"models/fixtures/tiny-mistral-random.gguf", "llama", 4, -1, 8, 2, -1, -1, -1, 512, 1e6, 0, PL_META_TOK_SPM, 39, -1},
        {"models/fixtures/tiny-mistral-random-q8_0.gguf", "llama", 4, -1, 8, 2, -1, -1, -1, 512, 1e6, 0, PL_META_TOK_SPM,
         39, -1},
        {"models/fixtures/tiny-mistral-random-q4_0.gguf", "llama", 4, -1, 8, 2, -1, -1, -1, 512, 1e6, 0, PL_META_TOK_SPM,
         39, -1},
        /* vectors/tokenizer/README.md */
        {"vectors/tokenizer/ggml-vocab-gemma2-spm.gguf", "gemma2", -1, -1, -1, -1, -1, -1, -1, 256000, 0, -1,
         PL_META_TOK_SPM, 0, 0},
        {"vectors/tokenizer/ggml-vocab-llama-spm.gguf", "llama", -1, -1, -1, -1, -1, -1, -1, 32000, 0, -1, PL_META_TOK_SPM,
         0, 0},
        {"vectors/tokenizer/ggml-vocab-llama3.1-bpe.gguf", "llama", -1, -1, -1, -1, -1, -1, -1, 128256, 0, -1,
         PL_META_TOK_BPE, 0, 0},
        {"vectors/tokenizer/ggml-vocab-mistral-v1-spm.gguf", "llama", -1, -1, -1, -1, -1, -1, -1, 32000, 0, -1,
         PL_META_TOK_SPM, 0, 0},
        {"vectors/tokenizer/ggml-vocab-mistral-v3-spm.gguf", "llama", -1, -1, -1, -1, -1, -1, -1, 32768, 0, -1,
         PL_META_TOK_SPM, 0, 0},
    };
    char path[1024];
    for (size_t i = 0; i < sizeof facts_m / sizeof *facts_m; i++) {
        const meta_fact *f = &facts_m[i];
        pl_model_meta m;
        pl_status st = pl_model_meta_load(t_path(path, sizeof path, shared, f->rel), &m);
        CHECK(st == PL_OK, "%s: %s", f->rel, pl_errmsg());
        if (st) continue;
#define EQ(field, want) CHECK((want) < 0 || m.field == (want), "%s: " #field " = %lld, want %lld", f->rel, \
                              (long long)m.field, (long long)(want))
        CHECK(!strcmp(m.arch_name, f->arch), "%s: arch %s", f->rel, m.arch_name);
        EQ(n_layers, f->layers);
        EQ(d_model, f->d_model);
        EQ(n_heads, f->heads);
        EQ(n_kv_heads, f->kv);
        EQ(head_dim, f->head_dim);
        EQ(d_ff, f->ff);
        EQ(n_ctx, f->ctx);
        EQ(vocab_size, f->vocab);
        EQ(n_tokens, f->vocab);
        EQ(n_tensors, f->n_tensors);
        EQ(n_params, f->n_params);
        EQ(tied_output, f->tied);
#undef EQ
        CHECK(f->rope_base == 0 || m.rope_base == f->rope_base, "%s: rope base %g", f->rel, m.rope_base);
        CHECK(m.tok_kind == f->tok, "%s: tokenizer %s", f->rel, pl_meta_tok_kind_name(m.tok_kind));
        CHECK(m.vocab_only == (f->n_tensors == 0), "%s: vocab_only", f->rel);
        uint64_t sum = 0;
        for (int k = 0; k < m.n_dtypes; k++) sum += m.dtypes[k].bytes;
        CHECK(sum == m.tensor_bytes, "%s: per-dtype bytes add up", f->rel);
    }
    pl_model_meta m;
    /* models/README.md: stories260K: no rope base key, so 10000 is used */
    if (pl_model_meta_load(t_path(path, sizeof path, shared, "models/stories260K.gguf"), &m) == PL_OK)
        CHECK(!m.rope_base_given && m.norm_eps == (double)1e-5f && m.bos_id == 1 && m.eos_id == 2 &&
              m.n_dtypes == 1 && m.tensor_bytes == (uint64_t)st_params * 4, "stories details");
    /* vectors/arch/README.md: gemma2 sliding window on even layers, softcaps 4 and 6, NEOX rope,
     * q x 1/sqrt(head_dim) */
    if (pl_model_meta_load(t_path(path, sizeof path, shared, "models/fixtures/tiny-gemma2-random.gguf"), &m) == PL_OK)
        CHECK(m.sliding_window == 4 && m.swa_every == 2 && m.attn_softcap == 4 && m.final_softcap == 6 &&
              m.rope_neox && m.query_pre_attn_scalar == 16, "gemma2 details");
    /* models/README.md: llama31 rope_freqs.weight; vectors/arch: adjacent-pair rope for llama */
    if (pl_model_meta_load(t_path(path, sizeof path, shared, "models/fixtures/tiny-llama31-random.gguf"), &m) == PL_OK)
        CHECK(m.has_rope_freqs && !m.rope_neox, "llama31 details");
    /* models/README.md: q4_0: Q4_0 2-D weights, output Q8_0, norms F32 (4 layers x 2 + output_norm) */
    if (pl_model_meta_load(t_path(path, sizeof path, shared, "models/fixtures/tiny-mistral-random-q4_0.gguf"), &m) ==
        PL_OK) {
        int64_t q4 = 0, q8 = 0, f32 = 0;
        for (int k = 0; k < m.n_dtypes; k++) {
            if (!strcmp(m.dtypes[k].name, "q4_0")) q4 = m.dtypes[k].count;
            if (!strcmp(m.dtypes[k].name, "q8_0")) q8 = m.dtypes[k].count;
            if (!strcmp(m.dtypes[k].name, "f32")) f32 = m.dtypes[k].count;
        }
        CHECK(m.n_dtypes == 3 && q8 == 1 && f32 == 4 * 2 + 1 && q4 == 39 - 10, "q4_0 dtypes %lld/%lld/%lld",
              (long long)q4, (long long)q8, (long long)f32);
    }
    /* models/README.md: LoRA r4 alpha 8, F32, 70 tensors */
    if (pl_model_meta_load(t_path(path, sizeof path, shared, "models/stories260K-lora-r4-random.gguf"), &m) == PL_OK)
        CHECK(m.is_adapter && m.lora_alpha == 8 && !strcmp(m.adapter_type, "lora") && m.n_tensors == 70, "lora meta");
    else
        CHECK(0, "lora meta: %s", pl_errmsg());
}

/* ---- safetensors ------------------------------------------------------- */

/* A safetensors file from a header string and a data buffer. */
static void st_build(pl_buf *out, const char *header, const void *data, size_t n) {
    out->len = 0;
    uint64_t h = strlen(header);
    pl_buf_append(out, &h, 8);
    pl_buf_append(out, header, h);
    if (n) pl_buf_append(out, data, n);
}

static pl_status st_mem(const pl_buf *b, pl_safetensors **out) {
    return pl_st_open_mem(b->data, b->len, "x.safetensors", out);
}

static void test_safetensors(void) {
    float f[6] = {1, 2, 3, 4, 5, 6};
    uint8_t data[64];
    memcpy(data, f, 24);
    for (int i = 24; i < 64; i++) data[i] = (uint8_t)i;
    pl_buf b = {0};
    st_build(&b,
             "{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
             "\"h\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]},"
             "\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[32,48]},"
             "\"flag\":{\"dtype\":\"BOOL\",\"shape\":[],\"data_offsets\":[48,49]},"
             "\"empty\":{\"dtype\":\"F16\",\"shape\":[0,5],\"data_offsets\":[49,49]}}   ",
             data, 64);
    pl_safetensors *st = NULL;
    CHECK_OK(st_mem(&b, &st));
    if (st) {
        CHECK(pl_st_n_tensors(st) == 5 && pl_st_n_files(st) == 1, "5 tensors");
        const pl_st_tensor *t = pl_st_find(st, "w");
        CHECK(t && t->n_dims == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->nbytes == 24 &&
              t->ggml_type == PL_GGML_F32 && !memcmp(t->data, f, 24), "F32 tensor");
        t = pl_st_find(st, "h");
        CHECK(t && t->ggml_type == PL_GGML_BF16 && t->nbytes == 8 && t->data == (const void *)(b.data + b.len - 40),
              "BF16 tensor");
        t = pl_st_find(st, "ids");
        CHECK(t && t->ggml_type == PL_GGML_I64 && t->n_elements == 2, "I64 tensor");
        t = pl_st_find(st, "flag");
        CHECK(t && t->n_dims == 0 && t->n_elements == 1 && t->ggml_type == -1, "BOOL scalar");
        t = pl_st_find(st, "empty");
        CHECK(t && t->n_elements == 0 && t->nbytes == 0, "zero-size tensor");
        CHECK(pl_st_metadata(st, "format") && !strcmp(pl_st_metadata(st, "format"), "pt"), "metadata");
        CHECK(!pl_st_find(st, "nope") && !pl_st_metadata(st, "nope"), "absent");
        pl_st_close(st);
    }
    /* broken headers */
    const struct { const char *hdr; const char *want; } bad[] = {
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", "need 24"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[0,64]},\"v\":{\"dtype\":\"F32\",\"shape\":[1],"
         "\"data_offsets\":[60,64]}}", "overlaps"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[32],\"data_offsets\":[0,128]}}", "exceeds file size"},
        {"{\"w\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,2]}}", "unknown dtype"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", "shape[0]"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", "shape[1]"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", "begin <= end"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", "needs dtype, shape and data_offsets"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"w\":{\"dtype\":\"F32\",\"shape\":[1],"
         "\"data_offsets\":[4,8]}}", "duplicate tensor name 'w'"},
        {"{\"w\":", "not valid JSON"},
        {"[1,2]", "not a JSON object"},
        {"{} x", "bytes after the header"},
        {"{\"__metadata__\":{\"a\":1}}", "not a string"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        st_build(&b, bad[i].hdr, data, 64);
        pl_status s = st_mem(&b, &st);
        CHECK(s == PL_ERR_FORMAT && strstr(pl_errmsg(), bad[i].want) && strstr(pl_errmsg(), "x.safetensors"),
              "bad header %zu: want '%s', got %s: %s", i, bad[i].want, pl_status_str(s), pl_errmsg());
        if (!s) pl_st_close(st);
    }
    /* header length beyond the file */
    b.len = 0;
    uint64_t huge = 1ull << 40;
    pl_buf_append(&b, &huge, 8);
    pl_buf_append(&b, "{}", 2);
    CHECK(st_mem(&b, &st) == PL_ERR_FORMAT && strstr(pl_errmsg(), "header length"), "huge header length");
    CHECK(pl_st_open_mem("abc", 3, "short", &st) == PL_ERR_FORMAT, "3-byte file");

    /* hostile: every truncation and 300 seeded corruptions of a valid file */
    st_build(&b, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                 "\"b\":{\"dtype\":\"I32\",\"shape\":[10],\"data_offsets\":[24,64]}}", data, 64);
    int rejected = 0, unclean = 0, total = 0;
    for (size_t cut = 0; cut < b.len; cut++, total++) {
        uint8_t *c = malloc(cut ? cut : 1);
        if (cut) memcpy(c, b.data, cut);
        pl_status s = pl_st_open_mem(c, cut, "cut.safetensors", &st);
        if (s == PL_OK) pl_st_close(st);
        else if (s == PL_ERR_FORMAT) rejected++;
        else unclean++;
        free(c);
    }
    pl_rng rng;
    pl_rng_seed(&rng, 77);
    for (int v = 0; v < 300; v++, total++) {
        uint8_t *c = malloc(b.len);
        memcpy(c, b.data, b.len);
        int k = 1 + (int)pl_rng_below(&rng, 4);
        for (int j = 0; j < k; j++) c[pl_rng_below(&rng, b.len)] = (uint8_t)pl_rng_u64(&rng);
        pl_status s = pl_st_open_mem(c, b.len, "flip.safetensors", &st);
        if (s == PL_OK) {
            volatile uint8_t sink = 0; /* touch the last byte of every accepted tensor */
            for (int64_t i = 0; i < pl_st_n_tensors(st); i++) {
                const pl_st_tensor *t = pl_st_tensor_at(st, i);
                if (t->nbytes) sink ^= ((const uint8_t *)t->data)[t->nbytes - 1];
            }
            (void)sink;
            pl_st_close(st);
        } else if (s == PL_ERR_FORMAT) rejected++;
        else unclean++;
        free(c);
    }
    CHECK(unclean == 0, "safetensors hostile: %d unclean results", unclean);
    printf("hostile safetensors: %d variants (%d rejected)\n", total, rejected);
    pl_buf_free(&b);
}

/* An HF directory in /tmp: config.json, two shards + index, optional tokenizer.json link. */
static void write_text(const char *dir, const char *name, const char *text) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    CHECK_OK(pl_write_file_atomic(p, text, strlen(text)));
}

static void rm_dir(const char *dir) {
    const char *names[] = {"config.json", "tokenizer.json", "model.safetensors.index.json",
                           "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    char p[1024];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

static void test_hf(const char *shared) {
    char dir[256];
    snprintf(dir, sizeof dir, "/tmp/pl_test_io_hf_%ld", (long)getpid());
    CHECK_OK(pl_mkdirs(dir));
    /* Llama 3.1-style config (the values of meta-llama/Llama-3.1-8B's rope_scaling, a tiny shape) */
    write_text(dir, "config.json",
               "{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
               "\"num_key_value_heads\":2,\"intermediate_size\":128,\"max_position_embeddings\":131072,"
               "\"rope_theta\":500000.0,\"rms_norm_eps\":1e-05,\"vocab_size\":8,\"tie_word_embeddings\":false,"
               "\"bos_token_id\":128000,\"eos_token_id\":[128001,128008,128009],"
               "\"rope_scaling\":{\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
               "\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"}}");
    /* shards: embed [8, 64] BF16 in shard 1; lm_head [8, 64] F32 + norm [64] F32 in shard 2 */
    static uint8_t buf[8 * 64 * 4 + 64 * 4];
    pl_buf b = {0};
    char p[1024];
    st_build(&b, "{\"model.embed_tokens.weight\":{\"dtype\":\"BF16\",\"shape\":[8,64],\"data_offsets\":[0,1024]}}",
             buf, 1024);
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", dir);
    CHECK_OK(pl_write_file_atomic(p, b.data, b.len));
    st_build(&b, "{\"lm_head.weight\":{\"dtype\":\"F32\",\"shape\":[8,64],\"data_offsets\":[0,2048]},"
                 "\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[64],\"data_offsets\":[2048,2304]}}",
             buf, 2304);
    snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", dir);
    CHECK_OK(pl_write_file_atomic(p, b.data, b.len));
    pl_buf_free(&b);
    write_text(dir, "model.safetensors.index.json",
               "{\"metadata\":{\"total_size\":3328},\"weight_map\":{"
               "\"model.embed_tokens.weight\":\"model-00001-of-00002.safetensors\","
               "\"lm_head.weight\":\"model-00002-of-00002.safetensors\","
               "\"model.norm.weight\":\"model-00002-of-00002.safetensors\"}}");
    pl_safetensors *st = NULL;
    CHECK_OK(pl_st_open(dir, &st));
    if (st) {
        CHECK(pl_st_n_files(st) == 2 && pl_st_n_tensors(st) == 3 && pl_st_find(st, "model.norm.weight") &&
              pl_st_find(st, "model.norm.weight")->nbytes == 256, "sharded: 3 tensors in 2 files");
        pl_st_close(st);
    }
    pl_model_meta m;
    CHECK_OK(pl_model_meta_from_hf(dir, &m));
    CHECK(m.arch == PL_ARCH_LLAMA && m.n_layers == 2 && m.d_model == 64 && m.n_heads == 4 && m.n_kv_heads == 2 &&
          m.head_dim == 16 && m.d_ff == 128 && m.n_ctx == 131072 && m.vocab_size == 8, "hf shape");
    CHECK(m.rope_scaling == PL_ROPE_SCALING_LLAMA3 && m.rope_factor == 8 && m.rope_low_freq_factor == 1 &&
          m.rope_high_freq_factor == 4 && m.rope_orig_ctx == 8192 && m.rope_base == 500000 && m.rope_neox,
          "hf llama3 rope");
    CHECK(m.tied_output == 0 && m.bos_id == 128000 && m.eos_id == 128001 && m.norm_eps == 1e-5, "hf ids/eps");
    CHECK(m.n_tensors == 3 && m.tensor_bytes == 3328 && m.n_params == 8 * 64 * 2 + 64 && m.n_dtypes == 2,
          "hf tensor stats");
    CHECK(m.tok_kind == PL_META_TOK_NONE, "no tokenizer.json yet");

    /* a shard that lacks what the index says it holds */
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\":{\"model.norm.weight\":\"model-00001-of-00002.safetensors\"}}");
    CHECK(pl_st_open(dir, &st) == PL_ERR_FORMAT && strstr(pl_errmsg(), "does not hold it"), "index mismatch: %s",
          pl_errmsg());
    write_text(dir, "model.safetensors.index.json", "{\"weight_map\":{\"x\":\"../etc/passwd\"}}");
    CHECK(pl_st_open(dir, &st) == PL_ERR_FORMAT && strstr(pl_errmsg(), "same directory"), "index path escape");
    write_text(dir, "model.safetensors.index.json", "{\"weight_map\":{\"x\":\"missing.safetensors\"}}");
    CHECK(pl_st_open(dir, &st) == PL_ERR_IO, "missing shard is an I/O error");

    /* gemma2 config with explicit values, and transformers' defaults when keys are absent */
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    unlink(p);
    write_text(dir, "config.json",
               "{\"model_type\":\"gemma2\",\"hidden_size\":64,\"num_hidden_layers\":26,\"num_attention_heads\":4,"
               "\"num_key_value_heads\":2,\"head_dim\":16,\"intermediate_size\":128,\"query_pre_attn_scalar\":16,"
               "\"sliding_window\":4,\"attn_logit_softcapping\":4.0,\"final_logit_softcapping\":null}");
    CHECK_OK(pl_model_meta_from_hf(dir, &m));
    CHECK(m.arch == PL_ARCH_GEMMA2 && m.head_dim == 16 && m.query_pre_attn_scalar == 16 && m.sliding_window == 4 &&
          m.swa_every == 2 && m.attn_softcap == 4 && m.final_softcap == 0 && m.tied_output == 1 &&
          m.norm_eps == 1e-6 && m.vocab_only, "hf gemma2");
    write_text(dir, "config.json",
               "{\"model_type\":\"mistral\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":8,"
               "\"num_key_value_heads\":2,\"sliding_window\":null,\"rope_theta\":1000000.0}");
    CHECK(pl_model_meta_from_hf(dir, &m) == PL_OK && m.arch == PL_ARCH_MISTRAL && m.sliding_window == 0 &&
          m.head_dim == 8 && m.rope_base == 1e6, "hf mistral: %s", pl_errmsg());
    /* transformers >= 5 layout: rope_parameters instead of rope_theta + rope_scaling
     * (same Llama 3.1 values as above) */
    write_text(dir, "config.json",
               "{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
               "\"rope_parameters\":{\"rope_type\":\"llama3\",\"rope_theta\":500000.0,\"factor\":8.0,"
               "\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192}}");
    CHECK(pl_model_meta_from_hf(dir, &m) == PL_OK && m.rope_scaling == PL_ROPE_SCALING_LLAMA3 && m.rope_factor == 8 &&
          m.rope_orig_ctx == 8192 && m.rope_base == 500000, "hf rope_parameters (llama3): %s", pl_errmsg());
    write_text(dir, "config.json",
               "{\"model_type\":\"mistral\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":8,"
               "\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":1000000.0}}");
    CHECK(pl_model_meta_from_hf(dir, &m) == PL_OK && m.rope_scaling == PL_ROPE_SCALING_NONE && m.rope_base == 1e6,
          "hf rope_parameters (default): %s", pl_errmsg());
    write_text(dir, "config.json",
               "{\"model_type\":\"gemma2\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
               "\"rope_parameters\":{\"full_attention\":{\"rope_type\":\"default\",\"rope_theta\":20000.0}}}");
    CHECK(pl_model_meta_from_hf(dir, &m) == PL_OK && m.rope_base == 20000, "hf rope_parameters (nested): %s",
          pl_errmsg());
    write_text(dir, "config.json", "{\"model_type\":\"llama\",\"hidden_size\":64,\"rope_parameters\":3}");
    CHECK(pl_model_meta_from_hf(dir, &m) == PL_ERR_FORMAT && strstr(pl_errmsg(), "rope_parameters"),
          "bad rope_parameters: %s", pl_errmsg());
    /* refusals */
    write_text(dir, "config.json", "{\"model_type\":\"llama\",\"hidden_size\":\"64\"}");
    CHECK(pl_model_meta_from_hf(dir, &m) == PL_ERR_FORMAT && strstr(pl_errmsg(), "hidden_size"), "string field");
    write_text(dir, "config.json", "{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":2,"
                                   "\"num_attention_heads\":4,\"rope_scaling\":{\"rope_type\":\"llama3\","
                                   "\"factor\":8.0}}");
    CHECK(pl_model_meta_from_hf(dir, &m) == PL_ERR_FORMAT && strstr(pl_errmsg(), "low_freq_factor"),
          "incomplete llama3 scaling: %s", pl_errmsg());
    write_text(dir, "config.json", "{\"model_type\": ");
    CHECK(pl_model_meta_from_hf(dir, &m) == PL_ERR_FORMAT && strstr(pl_errmsg(), "config.json: offset"),
          "truncated config: %s", pl_errmsg());

    /* tokenizer.json of each family (vectors/tokenizer/README.md: Llama 3.1 has 128000 ranks + 256 specials
     * and 280147 merges; the HF files for mistral have 32000 and gemma2 256000 pieces) */
    if (shared) {
        write_text(dir, "config.json", "{\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":2,"
                                       "\"num_attention_heads\":4}");
        const struct { const char *rel; pl_meta_tok_kind kind; int64_t n, merges; } toks[] = {
            {"vectors/tokenizers/llama3.1/tokenizer.json", PL_META_TOK_BPE, 128256, 280147},
            {"vectors/tokenizers/mistral/tokenizer.json", PL_META_TOK_SPM, 32000, -1},
            {"vectors/tokenizers/gemma2/tokenizer.json", PL_META_TOK_SPM, 256000, -1},
        };
        for (size_t i = 0; i < sizeof toks / sizeof *toks; i++) {
            char src[1024], cwd[2048], abs[4096];
            snprintf(p, sizeof p, "%s/tokenizer.json", dir);
            unlink(p);
            t_path(src, sizeof src, shared, toks[i].rel);
            if (src[0] == '/') snprintf(abs, sizeof abs, "%s", src);
            else snprintf(abs, sizeof abs, "%s/%s", getcwd(cwd, sizeof cwd) ? cwd : ".", src);
            CHECK(symlink(abs, p) == 0, "symlink to %.400s", abs);
            pl_status s = pl_model_meta_from_hf(dir, &m);
            CHECK(s == PL_OK && m.tok_kind == toks[i].kind && m.n_tokens == toks[i].n &&
                  (toks[i].merges < 0 || m.n_merges == toks[i].merges) && m.vocab_size == toks[i].n,
                  "%s: %s kind %s, %lld tokens, %lld merges", toks[i].rel, pl_errmsg(), pl_meta_tok_kind_name(m.tok_kind),
                  (long long)m.n_tokens, (long long)m.n_merges);
        }
    }
    rm_dir(dir);
}

int main(void) {
    T_BEGIN();
    test_ggml_types();
    test_roundtrip(3);
    test_roundtrip(2);
    test_bad_files();
    test_meta_synthetic();
    test_safetensors();
    const char *shared = pl_test_shared();
    test_hf(shared);
    if (shared) {
        test_shared_ggufs(shared);
        test_meta_shared(shared);
        test_hostile(shared);
    }
    return T_END();
}
