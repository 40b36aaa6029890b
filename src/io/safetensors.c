/* safetensors.c — read-only, mmap'd safetensors files and sharded indexes.
 *
 * Format (huggingface/safetensors, docs/format): u64 little-endian header
 * length N, N bytes of UTF-8 JSON, then the byte buffer. Each JSON entry is
 * {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} with offsets
 * relative to the buffer; "__metadata__" maps strings to strings. Sharded
 * checkpoints add "model.safetensors.index.json" with a "weight_map" from
 * tensor name to shard file name.
 *
 * Everything is validated at open (see io.h). Tensor data is not guaranteed
 * to be aligned beyond what the writer chose: consumers read it with memcpy
 * or check the pointer.
 *
 * Does not: write safetensors (the train module's PEFT export owns that), or
 * accept shard paths outside the index's directory.
 */
#include "io.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_HEADER (100u << 20) /* the format's own limit on the JSON header */
#define MAX_FILES 4096

typedef struct {
    char *path;
    const uint8_t *base;
    size_t size;
    int mapped;
} st_file;

struct pl_safetensors {
    st_file *files;
    int n_files;
    pl_st_tensor *ts;
    char **names;
    int64_t n, cap;
    int64_t *hash;
    size_t hash_cap;
    cJSON *meta; /* __metadata__ of the first file, or NULL */
};

size_t pl_st_dtype_size(const char *d) {
    static const struct { const char *name; size_t size; } t[] = {
        {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2},
        {"F16", 2}, {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4}, {"F64", 8}, {"I64", 8}, {"U64", 8},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(t[i].name, d)) return t[i].size;
    return 0;
}

static int ggml_of(const char *d) {
    if (!strcmp(d, "F32")) return PL_GGML_F32;
    if (!strcmp(d, "F16")) return PL_GGML_F16;
    if (!strcmp(d, "BF16")) return PL_GGML_BF16;
    if (!strcmp(d, "F64")) return PL_GGML_F64;
    if (!strcmp(d, "I8")) return PL_GGML_I8;
    if (!strcmp(d, "I16")) return PL_GGML_I16;
    if (!strcmp(d, "I32")) return PL_GGML_I32;
    if (!strcmp(d, "I64")) return PL_GGML_I64;
    return -1;
}

static char *dupn(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* ---- name table -------------------------------------------------------- */

static int64_t find_idx(const pl_safetensors *st, const char *name) {
    if (!st->hash) return -1;
    size_t h = (size_t)pl_hash64(name, strlen(name), 0) & (st->hash_cap - 1);
    for (;;) {
        int64_t s = st->hash[h];
        if (!s) return -1;
        if (!strcmp(st->names[s - 1], name)) return s - 1;
        h = (h + 1) & (st->hash_cap - 1);
    }
}

static pl_status rehash(pl_safetensors *st, size_t cap) {
    int64_t *h = calloc(cap, sizeof *h);
    if (!h) return pl_error(PL_ERR_NOMEM, "out of memory");
    free(st->hash);
    st->hash = h;
    st->hash_cap = cap;
    for (int64_t i = 0; i < st->n; i++) {
        size_t k = (size_t)pl_hash64(st->names[i], strlen(st->names[i]), 0) & (cap - 1);
        while (h[k]) k = (k + 1) & (cap - 1);
        h[k] = i + 1;
    }
    return PL_OK;
}

static pl_status push_tensor(pl_safetensors *st, const pl_st_tensor *t, const char *name) {
    if (st->n == st->cap) {
        int64_t cap = st->cap ? 2 * st->cap : 64;
        pl_st_tensor *ts = realloc(st->ts, (size_t)cap * sizeof *ts);
        if (!ts) return pl_error(PL_ERR_NOMEM, "out of memory");
        st->ts = ts;
        char **nm = realloc(st->names, (size_t)cap * sizeof *nm);
        if (!nm) return pl_error(PL_ERR_NOMEM, "out of memory");
        st->names = nm;
        st->cap = cap;
    }
    st->names[st->n] = dupn(name, strlen(name));
    if (!st->names[st->n]) return pl_error(PL_ERR_NOMEM, "out of memory");
    st->ts[st->n] = *t;
    st->n++;
    if ((size_t)st->n * 2 > st->hash_cap) return rehash(st, st->hash_cap ? st->hash_cap * 4 : 256);
    size_t k = (size_t)pl_hash64(name, strlen(name), 0) & (st->hash_cap - 1);
    while (st->hash[k]) k = (k + 1) & (st->hash_cap - 1);
    st->hash[k] = st->n;
    return PL_OK;
}

/* ---- one file ---------------------------------------------------------- */

/* A JSON number that is an exact non-negative integer below 2^53. */
static int json_uint(const cJSON *x, uint64_t *v) {
    if (!cJSON_IsNumber(x)) return 0;
    double d = x->valuedouble;
    if (!(d >= 0) || d != floor(d) || d >= 9007199254740992.0) return 0;
    *v = (uint64_t)d;
    return 1;
}

typedef struct {
    uint64_t begin, end;
    int64_t idx;
} range;

static int cmp_range(const void *a, const void *b) {
    const range *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

static pl_status parse_file(pl_safetensors *st, int fi) {
    st_file *f = &st->files[fi];
    const char *name = f->path;
    if (f->size < 8) return pl_error(PL_ERR_FORMAT, "%s: offset 0: file of %zu bytes has no header length", name, f->size);
    uint64_t hlen;
    memcpy(&hlen, f->base, 8);
    if (hlen > f->size - 8 || hlen > MAX_HEADER)
        return pl_error(PL_ERR_FORMAT, "%s: offset 0: header length %llu exceeds the file (%zu bytes) or 100 MiB",
                        name, (unsigned long long)hlen, f->size);
    if (hlen < 2) return pl_error(PL_ERR_FORMAT, "%s: offset 8: header of %llu bytes is not a JSON object", name,
                                  (unsigned long long)hlen);
    const char *hdr = (const char *)f->base + 8;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    if (!j) {
        size_t off = end && end >= hdr ? (size_t)(end - hdr) : 0;
        return pl_error(PL_ERR_FORMAT, "%s: offset %zu: header is not valid JSON", name, 8 + off);
    }
    pl_status status = PL_OK;
    range *rg = NULL;
    if (!cJSON_IsObject(j)) {
        status = pl_error(PL_ERR_FORMAT, "%s: offset 8: header is not a JSON object", name);
        goto done;
    }
    /* anything after the object must be padding (spaces) */
    for (const char *p = end; p && p < hdr + hlen; p++)
        if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r' && *p != 0) {
            status = pl_error(PL_ERR_FORMAT, "%s: offset %zu: bytes after the header JSON", name,
                              (size_t)(8 + (p - hdr)));
            goto done;
        }
    size_t data_off = 8 + (size_t)hlen, data_size = f->size - data_off;
    int n_entries = cJSON_GetArraySize(j);
    rg = malloc((size_t)(n_entries ? n_entries : 1) * sizeof *rg);
    if (!rg) {
        status = pl_error(PL_ERR_NOMEM, "out of memory");
        goto done;
    }
    int nr = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, j) {
        const char *tn = e->string ? e->string : "";
        if (!strcmp(tn, "__metadata__")) {
            const cJSON *kv;
            if (!cJSON_IsObject(e)) {
                status = pl_error(PL_ERR_FORMAT, "%s: header: '__metadata__' is not an object", name);
                goto done;
            }
            cJSON_ArrayForEach(kv, e) if (!cJSON_IsString(kv)) {
                status = pl_error(PL_ERR_FORMAT, "%s: header: __metadata__ '%s' is not a string", name,
                                  kv->string ? kv->string : "");
                goto done;
            }
            if (fi == 0 && !st->meta) st->meta = cJSON_Duplicate(e, 1);
            continue;
        }
        if (!*tn) {
            status = pl_error(PL_ERR_FORMAT, "%s: header: empty tensor name", name);
            goto done;
        }
        if (find_idx(st, tn) >= 0) {
            status = pl_error(PL_ERR_FORMAT, "%s: header: duplicate tensor name '%s'", name, tn);
            goto done;
        }
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
        const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        pl_st_tensor t;
        memset(&t, 0, sizeof t);
        if (!cJSON_IsObject(e) || !cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of)) {
            status = pl_error(PL_ERR_FORMAT, "%s: header: tensor '%s': needs dtype, shape and data_offsets", name, tn);
            goto done;
        }
        size_t es = pl_st_dtype_size(dt->valuestring);
        if (!es || strlen(dt->valuestring) >= sizeof t.dtype) {
            status = pl_error(PL_ERR_FORMAT, "%s: header: tensor '%s': unknown dtype '%.16s'", name, tn,
                              dt->valuestring);
            goto done;
        }
        snprintf(t.dtype, sizeof t.dtype, "%s", dt->valuestring);
        int nd = cJSON_GetArraySize(sh);
        if (nd > 8) {
            status = pl_error(PL_ERR_FORMAT, "%s: header: tensor '%s': %d dims (at most 8)", name, tn, nd);
            goto done;
        }
        t.n_dims = (uint32_t)nd;
        uint64_t nel = 1;
        int d = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, sh) {
            uint64_t v;
            if (!json_uint(x, &v) || (v && nel > (uint64_t)INT64_MAX / v)) {
                status = pl_error(PL_ERR_FORMAT, "%s: header: tensor '%s': shape[%d] is not a valid size", name, tn, d);
                goto done;
            }
            t.shape[d++] = (int64_t)v;
            nel *= v;
        }
        uint64_t b, en, nb;
        if (cJSON_GetArraySize(of) != 2 || !json_uint(cJSON_GetArrayItem(of, 0), &b) ||
            !json_uint(cJSON_GetArrayItem(of, 1), &en) || en < b) {
            status = pl_error(PL_ERR_FORMAT, "%s: header: tensor '%s': data_offsets must be [begin, end] with "
                              "begin <= end", name, tn);
            goto done;
        }
        if (__builtin_mul_overflow(nel, (uint64_t)es, &nb) || nb != en - b) {
            status = pl_error(PL_ERR_FORMAT, "%s: header: tensor '%s': data_offsets span %llu bytes, shape and dtype "
                              "need %llu", name, tn, (unsigned long long)(en - b), (unsigned long long)nel * es);
            goto done;
        }
        if (en > data_size) {
            status = pl_error(PL_ERR_FORMAT, "%s: offset %llu: tensor '%s': data range exceeds file size %zu", name,
                              (unsigned long long)(data_off + b), tn, f->size);
            goto done;
        }
        t.n_elements = (int64_t)nel;
        t.nbytes = nb;
        t.data = f->base + data_off + b;
        t.ggml_type = ggml_of(t.dtype);
        t.file = f->path;
        rg[nr].begin = b;
        rg[nr].end = en;
        rg[nr].idx = st->n;
        nr++;
        if ((status = push_tensor(st, &t, tn))) goto done;
    }
    /* no overlaps (zero-size tensors may share an offset) */
    qsort(rg, (size_t)nr, sizeof *rg, cmp_range);
    for (int i = 1; i < nr; i++)
        if (rg[i].begin < rg[i - 1].end) {
            status = pl_error(PL_ERR_FORMAT, "%s: offset %llu: tensor '%s': data overlaps tensor '%s'", name,
                              (unsigned long long)(data_off + rg[i].begin), st->names[rg[i].idx],
                              st->names[rg[i - 1].idx]);
            goto done;
        }
done:
    free(rg);
    cJSON_Delete(j);
    return status;
}

/* ---- opening ----------------------------------------------------------- */

static pl_status map_file(const char *path, st_file *f) {
    memset(f, 0, sizeof *f);
    f->path = dupn(path, strlen(path));
    if (!f->path) return pl_error(PL_ERR_NOMEM, "out of memory");
    int fd = open(path, O_RDONLY);
    if (fd < 0) return pl_error(PL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return pl_error(PL_ERR_IO, "%s: not a regular file", path);
    }
    f->size = (size_t)sb.st_size;
    if (f->size == 0) {
        close(fd);
        static const uint8_t empty[1] = {0};
        f->base = empty;
        return PL_OK;
    }
    void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (p == MAP_FAILED) return pl_error(PL_ERR_IO, "%s: mmap failed: %s", path, strerror(err));
    f->base = p;
    f->mapped = 1;
    return PL_OK;
}

void pl_st_close(pl_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n_files; i++) {
        if (st->files[i].mapped) munmap((void *)(uintptr_t)st->files[i].base, st->files[i].size);
        free(st->files[i].path);
    }
    for (int64_t i = 0; i < st->n; i++) free(st->names[i]);
    free(st->files);
    free(st->ts);
    free(st->names);
    free(st->hash);
    cJSON_Delete(st->meta);
    free(st);
}

/* Names point into names[], which may move while tensors are added. */
static void fix_names(pl_safetensors *st) {
    for (int64_t i = 0; i < st->n; i++) st->ts[i].name = st->names[i];
}

static pl_status new_st(pl_safetensors **out, int n_files) {
    *out = calloc(1, sizeof **out);
    if (!*out) return pl_error(PL_ERR_NOMEM, "out of memory");
    (*out)->files = calloc((size_t)n_files, sizeof *(*out)->files);
    if (!(*out)->files) {
        free(*out);
        *out = NULL;
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    return PL_OK;
}

pl_status pl_st_open_mem(const void *data, size_t size, const char *name, pl_safetensors **out) {
    pl_safetensors *st;
    pl_status s = new_st(&st, 1);
    if (s) return s;
    st->n_files = 1;
    st->files[0].path = dupn(name ? name : "<memory>", strlen(name ? name : "<memory>"));
    static const uint8_t empty[1] = {0};
    st->files[0].base = size ? data : empty;
    st->files[0].size = size;
    s = st->files[0].path ? parse_file(st, 0) : pl_error(PL_ERR_NOMEM, "out of memory");
    if (s) {
        pl_st_close(st);
        *out = NULL;
        return s;
    }
    fix_names(st);
    *out = st;
    return PL_OK;
}

static pl_status open_single(const char *path, pl_safetensors **out) {
    pl_safetensors *st;
    pl_status s = new_st(&st, 1);
    if (s) return s;
    st->n_files = 1;
    s = map_file(path, &st->files[0]);
    if (!s) s = parse_file(st, 0);
    if (s) {
        pl_st_close(st);
        return s;
    }
    fix_names(st);
    *out = st;
    return PL_OK;
}

static pl_status open_index(const char *path, pl_safetensors **out) {
    char *text;
    size_t n;
    pl_status s = pl_read_file(path, &text, &n);
    if (s) return s;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!j) {
        size_t off = end && end >= text ? (size_t)(end - text) : 0;
        free(text);
        return pl_error(PL_ERR_FORMAT, "%s: offset %zu: invalid JSON", path, off);
    }
    free(text);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(j, "weight_map");
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(j);
        return pl_error(PL_ERR_FORMAT, "%s: field 'weight_map' missing or not an object", path);
    }
    /* the distinct shard names, in first-use order */
    const char *shards[MAX_FILES];
    int ns = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, wm) {
        if (!cJSON_IsString(e) || !*e->valuestring || strchr(e->valuestring, '/') || !strcmp(e->valuestring, "..")) {
            pl_status bad = pl_error(PL_ERR_FORMAT, "%s: weight_map['%s']: shard must be a file name in the same "
                                     "directory", path, e->string ? e->string : "");
            cJSON_Delete(j);
            return bad;
        }
        int k = 0;
        while (k < ns && strcmp(shards[k], e->valuestring)) k++;
        if (k == ns) {
            if (ns == MAX_FILES) {
                cJSON_Delete(j);
                return pl_error(PL_ERR_FORMAT, "%s: more than %d shards", path, MAX_FILES);
            }
            shards[ns++] = e->valuestring;
        }
    }
    pl_safetensors *st;
    s = new_st(&st, ns ? ns : 1);
    if (s) {
        cJSON_Delete(j);
        return s;
    }
    size_t dl = strlen(path);
    while (dl && path[dl - 1] != '/') dl--;
    for (int k = 0; k < ns && !s; k++) {
        char p[4096];
        snprintf(p, sizeof p, "%.*s%s", (int)dl, path, shards[k]);
        st->n_files++;
        s = map_file(p, &st->files[k]);
        if (!s) s = parse_file(st, k);
    }
    if (!s) {
        fix_names(st);
        cJSON_ArrayForEach(e, wm) {
            int64_t i = find_idx(st, e->string);
            const char *want = e->valuestring;
            size_t wl = strlen(want);
            const char *have = i >= 0 ? st->ts[i].file : "";
            size_t hl = strlen(have);
            if (i < 0 || hl < wl || strcmp(have + hl - wl, want) || (hl > wl && have[hl - wl - 1] != '/')) {
                s = pl_error(PL_ERR_FORMAT, "%s: weight_map['%s'] names shard %s, which does not hold it", path,
                             e->string, want);
                break;
            }
        }
    }
    cJSON_Delete(j);
    if (s) {
        pl_st_close(st);
        return s;
    }
    *out = st;
    return PL_OK;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

pl_status pl_st_open(const char *path, pl_safetensors **out) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return pl_error(PL_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        static const char *cands[] = {"model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors"};
        char p[4096];
        for (size_t i = 0; i < 3; i++) {
            snprintf(p, sizeof p, "%s/%s", path, cands[i]);
            if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) return pl_st_open(p, out);
        }
        return pl_error(PL_ERR_NOT_FOUND, "%s: no model.safetensors, model.safetensors.index.json or "
                        "adapter_model.safetensors", path);
    }
    return ends_with(path, ".json") ? open_index(path, out) : open_single(path, out);
}

int64_t pl_st_n_tensors(const pl_safetensors *st) { return st->n; }
int pl_st_n_files(const pl_safetensors *st) { return st->n_files; }

const pl_st_tensor *pl_st_tensor_at(const pl_safetensors *st, int64_t i) {
    return i >= 0 && i < st->n ? &st->ts[i] : NULL;
}

const pl_st_tensor *pl_st_find(const pl_safetensors *st, const char *name) {
    int64_t i = find_idx(st, name);
    return i < 0 ? NULL : &st->ts[i];
}

const char *pl_st_metadata(const pl_safetensors *st, const char *key) {
    const cJSON *x = st->meta ? cJSON_GetObjectItemCaseSensitive(st->meta, key) : NULL;
    return cJSON_IsString(x) ? x->valuestring : NULL;
}
