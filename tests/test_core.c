/* test_core.c — status/errmsg, arena, buffers, RNG, hashing, atomic files. */
#include "harness.h"

#include <unistd.h>

static void test_errors(void) {
    pl_status st = pl_error(PL_ERR_FORMAT, "%s: offset %d: bad magic", "x.gguf", 4);
    CHECK(st == PL_ERR_FORMAT, "pl_error returns its status");
    CHECK(strcmp(pl_errmsg(), "x.gguf: offset 4: bad magic") == 0, "message '%s'", pl_errmsg());
    pl_error_wrap(PL_ERR_FORMAT, "loading model");
    CHECK(strcmp(pl_errmsg(), "loading model: x.gguf: offset 4: bad magic") == 0, "wrapped '%s'", pl_errmsg());
    CHECK(strcmp(pl_status_str(PL_ERR_NOMEM), "out of memory") == 0, "status string");
}

static void test_arena(void) {
    pl_arena a;
    CHECK_OK(pl_arena_init(&a, 1000));
    void *p = pl_arena_alloc(&a, 10), *q = pl_arena_alloc(&a, 10);
    CHECK(p && q && ((uintptr_t)p % 64) == 0 && ((uintptr_t)q % 64) == 0, "arena alignment");
    CHECK((char *)q - (char *)p == 64, "arena packs to 64 bytes");
    CHECK(pl_arena_alloc(&a, 2000) == NULL, "arena refuses overflow");
    CHECK(pl_arena_alloc(&a, SIZE_MAX) == NULL, "arena refuses SIZE_MAX");
    pl_arena_free(&a);
    size_t out;
    CHECK(!pl_mul_ok(SIZE_MAX / 2 + 1, 2, &out), "mul overflow detected");
    CHECK(pl_mul_ok(1000, 1000, &out) && out == 1000000, "mul ok");
}

static void test_buf(void) {
    pl_buf b = {0};
    pl_status st = PL_OK;
    for (int i = 0; i < 1000 && !st; i++) st = pl_buf_printf(&b, "%d,", i);
    CHECK_OK(st);
    CHECK(b.len == 3890, "buffer length %zu", b.len);
    CHECK(strncmp(b.data, "0,1,2,", 6) == 0 && b.data[b.len] == 0, "buffer content");
    pl_buf_free(&b);
}

static void test_rng(void) {
    pl_rng a, b;
    pl_rng_seed(&a, 42);
    pl_rng_seed(&b, 42);
    int same = 1;
    for (int i = 0; i < 100; i++) same &= pl_rng_u64(&a) == pl_rng_u64(&b);
    CHECK(same, "same seed gives the same stream");
    /* xoshiro256** reference: state {1,2,3,4} gives 11520, 0, 1509978240, 1215971899390074240. */
    pl_rng r = {{1, 2, 3, 4}};
    uint64_t want[4] = {11520ULL, 0ULL, 1509978240ULL, 1215971899390074240ULL};
    for (int i = 0; i < 4; i++) {
        uint64_t g = pl_rng_u64(&r);
        CHECK(g == want[i], "xoshiro256** output %d: %llu want %llu", i, (unsigned long long)g,
              (unsigned long long)want[i]);
    }
    pl_rng_seed(&a, 7);
    pl_rng s1 = pl_rng_split(&a, 1), s1b = pl_rng_split(&a, 1), s2 = pl_rng_split(&a, 2);
    uint64_t x1 = pl_rng_u64(&s1);
    CHECK(x1 == pl_rng_u64(&s1b), "split is deterministic");
    CHECK(x1 != pl_rng_u64(&s2), "different streams differ");
    /* Uniformity of pl_rng_below: chi-square over 10 bins, 100k draws. */
    int bins[10] = {0};
    for (int i = 0; i < 100000; i++) bins[pl_rng_below(&a, 10)]++;
    double chi = 0;
    for (int i = 0; i < 10; i++) chi += (bins[i] - 10000.0) * (bins[i] - 10000.0) / 10000.0;
    CHECK(chi < 30.0, "pl_rng_below chi2 %.2f (9 dof, p<1e-3 cut 27.9)", chi);
    double m = 0, v = 0;
    for (int i = 0; i < 100000; i++) {
        double z = pl_rng_normal(&a);
        m += z;
        v += z * z;
    }
    m /= 1e5;
    v = v / 1e5 - m * m;
    CHECK(fabs(m) < 0.02 && fabs(v - 1) < 0.03, "normal mean %.4f var %.4f", m, v);
    int perm[50], seen[50] = {0};
    for (int i = 0; i < 50; i++) perm[i] = i;
    pl_rng_shuffle(&a, perm, 50, sizeof(int));
    int okp = 1, moved = 0;
    for (int i = 0; i < 50; i++) { okp &= !seen[perm[i]]; seen[perm[i]] = 1; moved += perm[i] != i; }
    CHECK(okp && moved > 10, "shuffle is a permutation that moves elements (%d moved)", moved);
}

static void test_hash_and_files(void) {
    /* XXH3-64 of the empty input with seed 0 is 0x2D06800538D394C2 (xxHash spec). */
    CHECK(pl_hash64("", 0, 0) == 0x2D06800538D394C2ULL, "xxh3 empty %llx", (unsigned long long)pl_hash64("", 0, 0));
    char dir[] = "/tmp/pl_test_core_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256], sub[256];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    CHECK_OK(pl_write_file_atomic(path, "hello", 5));
    char *data; size_t len;
    CHECK_OK(pl_read_file(path, &data, &len));
    CHECK(len == 5 && memcmp(data, "hello", 5) == 0, "read back");
    free(data);
    uint64_t h;
    CHECK_OK(pl_hash_file(path, &h));
    CHECK(h == pl_hash64("hello", 5, 0), "file hash equals buffer hash");
    /* An aborted write leaves the old content and no temporary. */
    pl_afile f;
    CHECK_OK(pl_afile_open(&f, path));
    CHECK_OK(pl_afile_write(&f, "partial", 7));
    pl_afile_abort(&f);
    CHECK_OK(pl_read_file(path, &data, &len));
    CHECK(len == 5 && memcmp(data, "hello", 5) == 0, "abort keeps the old file");
    free(data);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(access(tmp, F_OK) != 0, "abort removes the temporary");
    CHECK(pl_read_file("/nonexistent/x", &data, &len) == PL_ERR_IO, "missing file is an I/O error");
    CHECK(strstr(pl_errmsg(), "/nonexistent/x") != NULL, "error names the file: %s", pl_errmsg());
    snprintf(sub, sizeof sub, "%s/a/b/c", dir);
    CHECK_OK(pl_mkdirs(sub));
    CHECK(pl_afile_open(&f, "/nonexistent/dir/file") == PL_ERR_IO, "open in missing dir fails");
    unlink(path);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

typedef struct {
    size_t n, linenos[8], lens[8];
    char first[16];
} lines_seen;

static pl_status see_line(const char *line, size_t len, size_t lineno, void *user) {
    lines_seen *ls = user;
    if (ls->n == 0) snprintf(ls->first, sizeof ls->first, "%.*s", (int)len, line);
    if (ls->n < 8) {
        ls->linenos[ls->n] = lineno;
        ls->lens[ls->n] = len;
    }
    ls->n++;
    return len == 4 && !memcmp(line, "stop", 4) ? pl_error(PL_ERR_FORMAT, "line %zu", lineno) : PL_OK;
}

static void test_lines(void) {
    /* "ab\r\n", blank, spaces-only, "c", "d" without a final newline */
    const char *text = "ab\r\n\n  \t\nc\nd";
    lines_seen ls = {0};
    CHECK_OK(pl_for_each_line(text, strlen(text), see_line, &ls));
    CHECK(ls.n == 3 && !strcmp(ls.first, "ab") && ls.lens[0] == 2, "CR dropped, blank lines skipped (%zu lines)", ls.n);
    CHECK(ls.linenos[0] == 1 && ls.linenos[1] == 4 && ls.linenos[2] == 5, "line numbers count blank lines");
    const char *stop = "x\nstop\ny\n";
    memset(&ls, 0, sizeof ls);
    CHECK(pl_for_each_line(stop, strlen(stop), see_line, &ls) == PL_ERR_FORMAT && ls.n == 2,
          "stops at the first error");
    memset(&ls, 0, sizeof ls);
    CHECK_OK(pl_for_each_line("", 0, see_line, &ls));
    CHECK(ls.n == 0, "empty input has no lines");
}

int main(void) {
    T_BEGIN();
    test_errors();
    test_arena();
    test_buf();
    test_rng();
    test_hash_and_files();
    test_lines();
    return T_END();
}
