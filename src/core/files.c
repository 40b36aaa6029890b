/* files.c — whole-file reads, atomic writes (temp file, fsync, rename), mkdir -p. */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <xxhash.h>

pl_status pl_read_file(const char *path, char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return pl_error(PL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    pl_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
        if (pl_buf_append(&b, chunk, n)) {
            fclose(fp);
            pl_buf_free(&b);
            return pl_error(PL_ERR_NOMEM, "%s: file too large to read into memory", path);
        }
    }
    int err = ferror(fp);
    fclose(fp);
    if (err) {
        pl_buf_free(&b);
        return pl_error(PL_ERR_IO, "%s: read error", path);
    }
    if (!b.data && pl_buf_reserve(&b, 0)) return PL_ERR_NOMEM;
    b.data[b.len] = 0;
    *data = b.data;
    *len = b.len;
    return PL_OK;
}

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

pl_status pl_afile_open(pl_afile *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->path = dupstr(path);
    size_t n = strlen(path) + 64;
    f->tmp = malloc(n);
    if (!f->path || !f->tmp) {
        free(f->path);
        free(f->tmp);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    snprintf(f->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    f->fp = fopen(f->tmp, "wb");
    if (!f->fp) {
        pl_status st = pl_error(PL_ERR_IO, "%s: cannot create: %s", f->tmp, strerror(errno));
        free(f->path);
        free(f->tmp);
        f->path = f->tmp = NULL;
        return st;
    }
    return PL_OK;
}

pl_status pl_afile_write(pl_afile *f, const void *p, size_t n) {
    if (f->failed) return PL_ERR_IO;
    if (n && fwrite(p, 1, n, f->fp) != n) {
        f->failed = 1;
        return pl_error(PL_ERR_IO, "%s: write failed: %s", f->path, strerror(errno));
    }
    return PL_OK;
}

pl_status pl_afile_printf(pl_afile *f, const char *fmt, ...) {
    if (f->failed) return PL_ERR_IO;
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(f->fp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        f->failed = 1;
        return pl_error(PL_ERR_IO, "%s: write failed: %s", f->path, strerror(errno));
    }
    return PL_OK;
}

void pl_afile_abort(pl_afile *f) {
    if (f->fp) fclose(f->fp);
    if (f->tmp) unlink(f->tmp);
    free(f->path);
    free(f->tmp);
    memset(f, 0, sizeof *f);
}

pl_status pl_afile_commit(pl_afile *f) {
    pl_status st = PL_OK;
    if (f->failed) st = pl_error(PL_ERR_IO, "%s: earlier write failed", f->path);
    if (!st && fflush(f->fp) != 0)
        st = pl_error(PL_ERR_IO, "%s: flush failed: %s", f->path, strerror(errno));
    if (!st && fsync(fileno(f->fp)) != 0)
        st = pl_error(PL_ERR_IO, "%s: fsync failed: %s", f->path, strerror(errno));
    if (fclose(f->fp) != 0 && !st)
        st = pl_error(PL_ERR_IO, "%s: close failed: %s", f->path, strerror(errno));
    f->fp = NULL;
    if (!st && rename(f->tmp, f->path) != 0)
        st = pl_error(PL_ERR_IO, "%s: rename failed: %s", f->path, strerror(errno));
    if (st) unlink(f->tmp);
    free(f->path);
    free(f->tmp);
    memset(f, 0, sizeof *f);
    return st;
}

pl_status pl_write_file_atomic(const char *path, const void *p, size_t n) {
    pl_afile f;
    pl_status st = pl_afile_open(&f, path);
    if (st) return st;
    st = pl_afile_write(&f, p, n);
    if (st) {
        pl_afile_abort(&f);
        return st;
    }
    return pl_afile_commit(&f);
}

pl_status pl_for_each_line(const char *data, size_t len, pl_line_fn fn, void *user) {
    size_t lineno = 0, pos = 0;
    pl_status st = PL_OK;
    while (pos < len && !st) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t e = nl ? (size_t)(nl - data) : len;
        lineno++;
        size_t n = e - pos;
        if (n && data[pos + n - 1] == '\r') n--;
        int blank = 1;
        for (size_t i = 0; i < n && blank; i++) blank = data[pos + i] == ' ' || data[pos + i] == '\t';
        if (!blank) st = fn(data + pos, n, lineno, user);
        pos = e + 1;
    }
    return st;
}

pl_status pl_mkdirs(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return pl_error(PL_ERR_INVALID, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return pl_error(PL_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return pl_error(PL_ERR_IO, "%s: not a directory", path);
    return PL_OK;
}

/* ---- hashing ---- */

uint64_t pl_hash64(const void *p, size_t n, uint64_t seed) {
    return (uint64_t)XXH3_64bits_withSeed(p, n, (XXH64_hash_t)seed);
}

pl_status pl_hash_file(const char *path, uint64_t *out) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return pl_error(PL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    XXH3_state_t *s = XXH3_createState();
    if (!s) {
        fclose(fp);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    XXH3_64bits_reset(s);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) XXH3_64bits_update(s, chunk, n);
    int err = ferror(fp);
    fclose(fp);
    *out = (uint64_t)XXH3_64bits_digest(s);
    XXH3_freeState(s);
    if (err) return pl_error(PL_ERR_IO, "%s: read error", path);
    return PL_OK;
}
