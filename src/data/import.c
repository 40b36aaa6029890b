/* import.c — the ingest driver: format detection, column and label mapping,
 * directory walks, skip accounting and atomic JSONL output.
 *
 * Every input item (CSV row, mbox message, file, JSONL line) is counted as
 * read and ends either as a record (kept) or as a skip with a reason; with
 * opts->strict a skip is an error naming the file and line or offset.
 * Record ids are "<source>:<file>:<row|index|line>" for multi-record files and
 * "<source>:<relative path>" for single-message files, so re-importing the
 * same inputs gives the same ids. Formats and meta keys: docs/records.md. */
#define _GNU_SOURCE /* sync_file_range (Linux) */
#include "data.h"

#include <cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

static const char *const skip_names[PL_SKIP_N] = {
    "not_rfc822", "mime_error", "bad_label", "no_label", "csv_field_count",
    "csv_unterminated_quote", "json_error", "empty_file", "io_error",
};
const char *pl_skip_name(int reason) { return reason >= 0 && reason < PL_SKIP_N ? skip_names[reason] : "?"; }

static const char *const fmt_names[] = {"auto", "csv", "mbox", "mboxrd", "eml", "dir", "jsonl"};
int pl_ingest_format_parse(const char *s) {
    for (int i = 0; i < (int)(sizeof fmt_names / sizeof *fmt_names); i++)
        if (!strcasecmp(s, fmt_names[i])) return i;
    if (!strcasecmp(s, "mboxo")) return PL_FMT_MBOX;
    if (!strcasecmp(s, "maildir")) return PL_FMT_DIR;
    return -1;
}
const char *pl_ingest_format_name(pl_ingest_format f) {
    return (unsigned)f < sizeof fmt_names / sizeof *fmt_names ? fmt_names[f] : "?";
}

void pl_ingest_opts_init(pl_ingest_opts *o) {
    memset(o, 0, sizeof *o);
    o->source = "corpus";
    o->fixed_label = -2;
}

/* ---- JSONL output ---- */

typedef struct {
    pl_afile f;
    pl_buf b;
    size_t unsynced;        /* bytes written since the last writeback() */
} jsonl_sink;

/* Start the disk writes of what the sink holds so far, without waiting, once
 * a few MiB have piled up: the fsync of pl_afile_commit at the end then finds
 * most pages written instead of waiting for all of them (tens of ms per
 * corpus, during which nothing else runs). A hint only: errors surface at
 * commit. Linux only; elsewhere commit does it all. */
static void writeback(jsonl_sink *s) {
    if (s->unsynced < ((size_t)2 << 20)) return;
    s->unsynced = 0;
#ifdef __linux__
    if (s->f.fp && !s->f.failed && fflush(s->f.fp) == 0)
        (void)sync_file_range(fileno(s->f.fp), 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
}

/* JSON string as cJSON prints it: ", \\, \b \f \n \r \t escaped, other bytes
 * below 0x20 as \u00xx, everything else verbatim (the strings are UTF-8). */
static pl_status json_str(pl_buf *b, const char *s) {
    size_t n = strlen(s);
    pl_status st = pl_buf_reserve(b, n * 6 + 3);
    if (st) return st;
    char *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        /* copy the run of bytes that need no escape in one go */
        size_t k = i;
#ifdef __SSE2__
        /* 16 bytes at a time while none is a control byte, quote or backslash */
        while (k + 16 <= n) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + k));
            __m128i ctl = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1F)), _mm_set1_epi8(0x1F));
            __m128i sp = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
            unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(ctl, sp));
            if (m) {
                k += (size_t)__builtin_ctz(m);
                break;
            }
            k += 16;
        }
#endif
        /* 8 bytes at a time while none is a control byte, quote or backslash */
        while (k + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + k, 8);
            uint64_t ctl = (w - 0x2020202020202020ull) & ~w & 0x8080808080808080ull; /* some byte < 0x20 */
            uint64_t q = w ^ 0x2222222222222222ull, bs = w ^ 0x5C5C5C5C5C5C5C5Cull;
            q = (q - 0x0101010101010101ull) & ~q & 0x8080808080808080ull;
            bs = (bs - 0x0101010101010101ull) & ~bs & 0x8080808080808080ull;
            if (ctl | q | bs) break;
            k += 8;
        }
        while (k < n && (unsigned char)s[k] >= 0x20 && s[k] != '"' && s[k] != '\\') k++;
        if (k > i) {
            memcpy(o, s + i, k - i);
            o += k - i;
            i = k;
            if (i == n) break;
        }
        unsigned char c = (unsigned char)s[i];
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default: {
            static const char hex[] = "0123456789abcdef";
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    return PL_OK;
}

/* *field = "<src>:<mid>" or "<src>:<mid>:<num>" (num >= 0), the record id. */
static pl_status set_id(char **field, const char *src, const char *mid, long long num) {
    char dg[24], *e = dg + sizeof dg, *p = e;
    if (num >= 0) {
        unsigned long long u = (unsigned long long)num;
        do *--p = (char)('0' + u % 10);
        while (u /= 10);
        *--p = ':';
    }
    size_t a = strlen(src), m = strlen(mid), k = (size_t)(e - p);
    char *d = malloc(a + 1 + m + k + 1);
    if (!d) return pl_error(PL_ERR_NOMEM, "out of memory");
    memcpy(d, src, a);
    d[a] = ':';
    memcpy(d + a + 1, mid, m);
    memcpy(d + a + 1 + m, p, k);
    d[a + 1 + m + k] = 0;
    free(*field);
    *field = d;
    return PL_OK;
}

/* Can meta_json print this item (and what it holds) as cJSON would? Numbers
 * must be integers below 1e15 in magnitude (cJSON's "%1.15g" prints those as
 * plain digits; meta holds counts, sizes, offsets and line numbers). */
static int meta_plain(const cJSON *it, int depth) {
    switch (it->type & 0xFF) {
    case cJSON_False:
    case cJSON_True:
    case cJSON_NULL:
    case cJSON_String: return 1;
    case cJSON_Number: {
        double d = it->valuedouble;
        return d > -1e15 && d < 1e15 && d == (double)(long long)d && !(d == 0 && signbit(d));
    }
    case cJSON_Array:
    case cJSON_Object:
        if (depth >= 64) return 0;
        for (const cJSON *c = it->child; c; c = c->next)
            if (!meta_plain(c, depth + 1)) return 0;
        return 1;
    default: return 0;
    }
}

static pl_status json_int(pl_buf *b, long long v) {
    char tmp[24], *e = tmp + sizeof tmp, *p = e;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0) *--p = '-';
    return pl_buf_append(b, p, (size_t)(e - p));
}

/* An item that meta_plain accepted, byte for byte as cJSON_PrintUnformatted
 * prints it (strings escaped as json_str does, a NULL string as ""), without
 * cJSON's per-number sprintf + sscanf round trip. */
static pl_status meta_json(pl_buf *b, const cJSON *it) {
    switch (it->type & 0xFF) {
    case cJSON_False: return pl_buf_append(b, "false", 5);
    case cJSON_True: return pl_buf_append(b, "true", 4);
    case cJSON_NULL: return pl_buf_append(b, "null", 4);
    case cJSON_String: return json_str(b, it->valuestring ? it->valuestring : "");
    case cJSON_Number: return json_int(b, (long long)it->valuedouble);
    default: break;
    }
    int obj = (it->type & 0xFF) == cJSON_Object;
    pl_status st = pl_buf_append(b, obj ? "{" : "[", 1);
    for (const cJSON *c = it->child; c && !st; c = c->next) {
        if (c != it->child) st = pl_buf_append(b, ",", 1);
        if (!st && obj) st = json_str(b, c->string ? c->string : "");
        if (!st && obj) st = pl_buf_append(b, ":", 1);
        if (!st) st = meta_json(b, c);
    }
    if (!st) st = pl_buf_append(b, obj ? "}" : "]", 1);
    return st;
}

/* One record as a JSON line, byte for byte what pl_record_to_json prints
 * (test_ingest checks this on every real corpus) but without building a cJSON
 * tree for the large string fields; meta still goes through cJSON. */
static pl_status record_line(const pl_record *r, pl_buf *b) {
    static const char *const keys[] = {"{\"id\":", ",\"source\":", ",\"subject\":", ",\"from\":", ",\"to\":",
                                       ",\"date\":", ",\"body\":"};
    const char *vals[] = {r->id, r->source, r->subject, r->from, r->to, r->date, r->body};
    pl_status st = PL_OK;
    for (int i = 0; i < 7 && !st; i++) {
        st = pl_buf_append(b, keys[i], strlen(keys[i]));
        if (!st) st = json_str(b, vals[i]);
        if (!st && i == 1) st = pl_buf_append(b, ",\"label\":", 9);
        if (!st && i == 1) st = json_int(b, r->label);
    }
    if (!st) st = pl_buf_append(b, ",\"urls\":[", 9);
    for (size_t i = 0; i < r->n_urls && !st; i++) {
        if (i) st = pl_buf_append(b, ",", 1);
        if (!st) st = json_str(b, r->urls[i]);
    }
    if (!st) st = pl_buf_append(b, "],\"meta\":", 9);
    if (!st) {
        if (!r->meta) st = pl_buf_append(b, "{}", 2);
        else if (meta_plain(r->meta, 0)) st = meta_json(b, r->meta);
        else {
            char *m = cJSON_PrintUnformatted(r->meta);
            if (!m) return pl_error(PL_ERR_NOMEM, "out of memory serializing meta");
            st = pl_buf_append(b, m, strlen(m));
            cJSON_free(m);
        }
    }
    if (!st) st = pl_buf_append(b, "}\n", 2);
    return st;
}

static pl_status write_rec(pl_record *r, void *user);

/* A whole file into a NUL-terminated buffer, as pl_read_file (same errors),
 * but sized from fstat and read straight into place: no stdio buffer, no
 * bounce copy, no regrowth. Most inputs are small mail files read by the
 * workers, where those costs were a sizeable part of the read. */
static pl_status read_whole(const char *path, char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return pl_error(PL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    size_t cap = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0 ? (size_t)sb.st_size : 65536;
    char *b = malloc(cap + 1);
    size_t n = 0;
    pl_status st = b ? PL_OK : pl_error(PL_ERR_NOMEM, "%s: file too large to read into memory", path);
    while (!st) {
        if (n == cap) { /* the file grew, or its size was unknown */
            char *nb = cap < SIZE_MAX / 2 - 1 ? realloc(b, cap * 2 + 1) : NULL;
            if (!nb) {
                st = pl_error(PL_ERR_NOMEM, "%s: file too large to read into memory", path);
                break;
            }
            b = nb;
            cap *= 2;
        }
        ssize_t k = read(fd, b + n, cap - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) st = pl_error(PL_ERR_IO, "%s: read error", path);
        else if (k == 0) break;
        else n += (size_t)k;
    }
    close(fd);
    if (st) {
        free(b);
        return st;
    }
    b[n] = 0;
    *data = b;
    *len = n;
    return PL_OK;
}

/* ---- context ---- */

/* A message waiting to be parsed: messages are converted in parallel
 * batches and emitted in input order, so output does not depend on the
 * thread count. Batches are pipelined: worker threads convert batch k while
 * the calling thread reads and queues batch k+1, then writes batch k. */
typedef struct {
    char *raw;              /* message bytes (owned); NULL: read path in the worker */
    size_t n;
    char *path;             /* file to read, or NULL */
    char *file, *label_path, *id_tail, *where;
    cJSON *pos;             /* position meta keys */
    /* result */
    enum { JOB_RECORD, JOB_SKIP, JOB_ERROR } kind;
    int reason, empty, label;
    char detail[256];
    pl_status err;
    pl_record rec;
    pl_buf json;            /* the serialized line when writing JSONL */
    int64_t warn[PL_WARN_N], bytes;
    /* CSV rows: a copy of the row's fields */
    int is_row, unterminated;
    pl_buf fields;
    size_t *off, *flen, nf;
    int64_t row;
    size_t line, rec_offset;
    const char *row_file;   /* the CSV's path (alive while its rows are queued); file and where are made from it on demand */
} msgjob;

enum { COL_TEXT, COL_SUBJECT, COL_FROM, COL_TO, COL_DATE, COL_LABEL, COL_N };

/* Column mapping of the CSV being imported. */
typedef struct {
    int col[COL_N];
    size_t nh;
    char **hdr;
    const char *bn;
} csvmap;

#define JOB_BATCH 256

#define MAX_WORKERS 64

/* A batch being converted by worker threads. */
typedef struct {
    msgjob *q;
    long n;
    atomic_long next;       /* next job to take */
    const pl_ingest_opts *o;
    const csvmap *csv;
    int to_json;
    pthread_t th[MAX_WORKERS];
    int nth;                /* threads started (0: converted already, or none in flight) */
    int busy;               /* a batch is in flight */
} batch;

typedef struct {
    const pl_ingest_opts *o;
    pl_record_sink sink;
    void *user;
    pl_ingest_stats *s;
    jsonl_sink *js;         /* non-NULL: records go straight to this JSONL file */
    msgjob *q;
    size_t nq;
    const csvmap *csv;      /* set while a CSV is imported */
    batch *fly;             /* the batch in flight (allocated on first use) */
} ictx;

/* Count a skip; under strict it is an error naming where. */
static pl_status skip(ictx *c, int reason, const char *file, const char *where, const char *detail) {
    c->s->skipped++;
    c->s->skip[reason]++;
    if (c->o->strict)
        return pl_error(PL_ERR_FORMAT, "%s: %s: %s%s%s", file, where, pl_skip_name(reason), detail ? ": " : "",
                        detail ? detail : "");
    return PL_OK;
}

static pl_status emit(ictx *c, pl_record *r) {
    c->s->kept++;
    if (r->label == 1) c->s->label_pos++;
    else if (r->label == 0) c->s->label_neg++;
    else c->s->label_unk++;
    return c->sink(r, c->user);
}

static void add_warn(ictx *c, const int64_t *w) {
    for (int i = 0; i < PL_WARN_N; i++) c->s->warn[i] += w[i] > 0;
}

static const char *base_name(const char *p) {
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') n--;
    const char *b = p + n;
    while (b > p && b[-1] != '/') b--;
    return b;
}

/* ---- labels ---- */

/* Label from a column value: --positive VALUE, else the usual names.
 * Returns 1, 0, -1 (explicitly unlabelled) or -2 (unknown value). */
static int label_value(const char *v, size_t n, const char *positive) {
    while (n && isspace((unsigned char)*v)) v++, n--;
    while (n && isspace((unsigned char)v[n - 1])) n--;
    if (positive) return strlen(positive) == n && !strncasecmp(v, positive, n) ? 1 : 0;
    static const char *const pos[] = {"1", "1.0", "spam", "phish", "phishing", "phishing email", "malicious",
                                      "fraud", "true", "yes"};
    static const char *const neg[] = {"0", "0.0", "ham", "legit", "legitimate", "safe", "safe email", "benign",
                                      "false", "no"};
    for (size_t i = 0; i < sizeof pos / sizeof *pos; i++)
        if (strlen(pos[i]) == n && !strncasecmp(v, pos[i], n)) return 1;
    for (size_t i = 0; i < sizeof neg / sizeof *neg; i++)
        if (strlen(neg[i]) == n && !strncasecmp(v, neg[i], n)) return 0;
    if (n == 2 && !memcmp(v, "-1", 2)) return -1;
    return -2;
}

/* Does a path component name a label key? The component is split into
 * alphanumeric tokens with trailing digits removed ("easy_ham_2" -> easy, ham;
 * "phishing0.mbox" -> phishing, mbox); a token equal to the key matches. */
static int component_has(const char *comp, size_t n, const char *key) {
    size_t kl = strlen(key);
    size_t i = 0;
    while (i < n) {
        while (i < n && !isalnum((unsigned char)comp[i])) i++;
        size_t j = i;
        while (j < n && isalnum((unsigned char)comp[j])) j++;
        size_t e = j;
        while (e > i && isdigit((unsigned char)comp[e - 1])) e--;
        if (e - i == kl && !strncasecmp(comp + i, key, kl)) return 1;
        i = j;
    }
    return 0;
}

/* Label from a path (components, deepest match wins) through a map
 * "key=1,key=0,...". Returns 1/0/-1, or -2 when nothing matched. */
static int label_from_path(const char *path, const char *map) {
    const char *dflt = "spam=1,phish=1,phishing=1,ham=0,legit=0,legitimate=0";
    if (!map) map = dflt;
    int best = -2;
    const char *p = path;
    while (*p) {
        while (*p == '/') p++;
        const char *e = p;
        while (*e && *e != '/') e++;
        if (e > p) {
            /* walk the map */
            const char *m = map;
            while (*m) {
                const char *ke = strchr(m, '=');
                if (!ke) break;
                const char *ve = ke + 1;
                while (*ve && *ve != ',') ve++;
                char key[64];
                size_t kl = (size_t)(ke - m);
                if (kl && kl < sizeof key) {
                    memcpy(key, m, kl);
                    key[kl] = 0;
                    if (component_has(p, (size_t)(e - p), key)) best = atoi(ke + 1);
                }
                m = *ve ? ve + 1 : ve;
            }
        }
        p = e;
    }
    return best;
}

/* Validate a --label-map string: "name=0|1|-1" pairs separated by commas. */
static pl_status check_label_map(const char *map) {
    const char *m = map;
    while (*m) {
        const char *ke = strchr(m, '=');
        const char *ce = strchr(m, ',');
        if (!ke || (ce && ce < ke) || ke == m)
            return pl_error(PL_ERR_INVALID, "--label-map: expected name=label pairs, got '%s'", map);
        const char *v = ke + 1;
        size_t vl = ce ? (size_t)(ce - v) : strlen(v);
        if (!((vl == 1 && (*v == '0' || *v == '1')) || (vl == 2 && !strncmp(v, "-1", 2))))
            return pl_error(PL_ERR_INVALID, "--label-map: label for '%.*s' must be 0, 1 or -1", (int)(ke - m), m);
        m = ce ? ce + 1 : v + vl;
    }
    return PL_OK;
}

/* ---- messages (mbox, eml, directory files) ---- */

static void job_free(msgjob *j) {
    free(j->raw);
    free(j->path);
    free(j->file);
    free(j->label_path);
    free(j->id_tail);
    free(j->where);
    cJSON_Delete(j->pos);
    pl_record_free(&j->rec);
    pl_buf_free(&j->json);
    pl_buf_free(&j->fields);
    free(j->off);
    free(j->flen);
    memset(j, 0, sizeof *j);
}

static int job_skip(msgjob *j, int reason, const char *detail) {
    j->kind = JOB_SKIP;
    j->reason = reason;
    snprintf(j->detail, sizeof j->detail, "%s", detail ? detail : "");
    return 0;
}

/* Worker side: one raw message into a record (or a skip). Touches only *j.
 * Returns 1 for a record (the result is in j->kind either way). */
static int convert_message(const pl_ingest_opts *o, msgjob *j, int to_json) {
    pl_record_init(&j->rec);
    int label = o->fixed_label;
    if (label == -2) {
        label = label_from_path(j->label_path, o->label_map);
        if (label == -2) {
            if (o->label_map) return job_skip(j, PL_SKIP_NO_LABEL, "no --label-map key in the path");
            label = -1;
        }
    }
    if (j->path) {
        if (read_whole(j->path, &j->raw, &j->n) != PL_OK) return job_skip(j, PL_SKIP_IO, pl_errmsg());
        j->bytes = (int64_t)j->n;
    }
    if (j->n == 0) return job_skip(j, PL_SKIP_EMPTY_FILE, "zero bytes");
    const char *why = NULL;
    if (!pl_looks_like_rfc822(j->raw, j->n, &why)) return job_skip(j, PL_SKIP_NOT_RFC822, why);
    pl_record *r = &j->rec;
    pl_status st = pl_mime_parse(j->raw, j->n, r, j->warn);
    if (st == PL_ERR_FORMAT) return job_skip(j, PL_SKIP_MIME_ERROR, pl_errmsg());
    r->label = j->label = label;
    if (!st) st = set_id(&r->id, o->source, j->id_tail, -1);
    if (!st) st = pl_record_set(&r->source, o->source);
    if (!st) {
        if (!r->meta) r->meta = cJSON_CreateObject();
        cJSON *child = j->pos ? j->pos->child : NULL;
        while (child) {
            cJSON *next = child->next;
            cJSON_AddItemToObject(r->meta, child->string, cJSON_DetachItemViaPointer(j->pos, child));
            child = next;
        }
        j->empty = !r->subject[0] && !r->body[0];
    }
    if (!st && to_json) {
        st = record_line(r, &j->json);
        pl_record_free(r);
    }
    if (st) {
        j->kind = JOB_ERROR;
        j->err = st;
        snprintf(j->detail, sizeof j->detail, "%s", pl_errmsg());
        return 0;
    }
    j->kind = JOB_RECORD;
    return 1;
}

#define ROWF(j, i) ((j)->fields.data + (j)->off[i])

/* Worker side: one CSV row into a record (or a skip). Touches only *j. */
static int convert_row(const pl_ingest_opts *o, const csvmap *cm, msgjob *j, int to_json) {
    pl_record_init(&j->rec);
    if (j->unterminated) return job_skip(j, PL_SKIP_CSV_QUOTE, "quoted field not closed before end of file");
    if (j->nf != cm->nh) {
        char d[96];
        snprintf(d, sizeof d, "%zu fields, header has %zu", j->nf, cm->nh);
        return job_skip(j, PL_SKIP_CSV_FIELDS, d);
    }
    const int *col = cm->col;
    int label = o->fixed_label;
    if (label == -2 && col[COL_LABEL] >= 0) {
        size_t li = (size_t)col[COL_LABEL];
        if (j->flen[li] == 0) return job_skip(j, PL_SKIP_NO_LABEL, "empty label");
        label = label_value(ROWF(j, li), j->flen[li], o->positive);
        if (label == -2) {
            char d[160];
            snprintf(d, sizeof d, "label value '%.40s' is not 0/1/spam/ham/phishing/safe (use --positive)", ROWF(j, li));
            return job_skip(j, PL_SKIP_BAD_LABEL, d);
        }
    }
    if (label == -2) label = -1;
    pl_record *r = &j->rec;
    r->label = j->label = label;
    size_t ti = (size_t)col[COL_TEXT];
    pl_status st = pl_record_set_text(r, ROWF(j, ti), j->flen[ti], j->warn);
    char **fields[COL_N] = {NULL, &r->subject, &r->from, &r->to, &r->date, NULL};
    for (int f = COL_SUBJECT; !st && f <= COL_DATE; f++)
        if (col[f] >= 0) st = pl_record_set_header(fields[f], ROWF(j, (size_t)col[f]), j->flen[col[f]], j->warn);
    if (!st) st = set_id(&r->id, o->source, cm->bn, (long long)j->row);
    if (!st) st = pl_record_set(&r->source, o->source);
    if (!st) {
        cJSON *meta = cJSON_CreateObject();
        cJSON_AddStringToObject(meta, "file", cm->bn);
        cJSON_AddNumberToObject(meta, "row", (double)j->row);
        cJSON_AddNumberToObject(meta, "line", (double)j->line);
        /* unmapped columns, repaired, under meta.columns */
        cJSON *cols = NULL;
        for (size_t i = 0; !st && i < cm->nh; i++) {
            int mapped = 0;
            for (int f = 0; f < COL_N; f++) mapped |= col[f] == (int)i;
            if (mapped) continue;
            char *tmp = NULL;
            st = pl_record_set_header(&tmp, ROWF(j, i), j->flen[i], NULL);
            if (!st) {
                if (!cols) cols = cJSON_AddObjectToObject(meta, "columns");
                cJSON_AddStringToObject(cols, cm->hdr[i], tmp);
            }
            free(tmp);
        }
        if (r->meta) { /* html / link_mismatch from pl_record_set_text */
            cJSON *child = r->meta->child;
            while (child) {
                cJSON *next = child->next;
                cJSON_AddItemToObject(meta, child->string, cJSON_DetachItemViaPointer(r->meta, child));
                child = next;
            }
            cJSON_Delete(r->meta);
        }
        r->meta = meta;
        j->empty = !r->subject[0] && !r->body[0];
    }
    if (!st && to_json) {
        st = record_line(r, &j->json);
        pl_record_free(r);
    }
    if (st) {
        j->kind = JOB_ERROR;
        j->err = st;
        snprintf(j->detail, sizeof j->detail, "%s", pl_errmsg());
        return 0;
    }
    j->kind = JOB_RECORD;
    return 1;
}

static void convert_job(batch *b, msgjob *j) {
    (void)(j->is_row ? convert_row(b->o, b->csv, j, b->to_json) : convert_message(b->o, j, b->to_json));
}

static void *batch_worker(void *arg) {
    batch *b = arg;
    for (;;) {
        long i = atomic_fetch_add(&b->next, 1);
        if (i >= b->n) break;
        convert_job(b, &b->q[i]);
    }
    return NULL;
}

/* Emit the converted jobs of q in order (only while st is OK), free them all. */
static pl_status emit_jobs(ictx *c, msgjob *q, long n, pl_status st) {
    for (long i = 0; i < n; i++) {
        msgjob *j = &q[i];
        if (!st) {
            c->s->read++;
            c->s->bytes += j->bytes;
            const char *file = j->file, *where = j->where;
            char rw[96];
            if (j->is_row && j->kind != JOB_RECORD) {
                snprintf(rw, sizeof rw, "line %zu (row %lld, offset %zu)", j->line, (long long)j->row, j->rec_offset);
                file = j->row_file;
                where = rw;
            }
            if (j->kind == JOB_SKIP) st = skip(c, j->reason, file, where, j->detail);
            else if (j->kind == JOB_ERROR) st = pl_error(j->err, "%s: %s: %s", file, where, j->detail);
            else {
                add_warn(c, j->warn);
                if (j->empty) c->s->warn[PL_WARN_EMPTY]++;
                if (c->js) {
                    c->s->kept++;
                    if (j->label == 1) c->s->label_pos++;
                    else if (j->label == 0) c->s->label_neg++;
                    else c->s->label_unk++;
                    st = pl_afile_write(&c->js->f, j->json.data, j->json.len);
                    c->js->unsynced += j->json.len;
                } else {
                    st = emit(c, &j->rec);
                    memset(&j->rec, 0, sizeof j->rec); /* the sink owns it now */
                }
            }
        }
        job_free(j);
    }
    return st;
}

/* Wait for the batch in flight, emit it (while st is OK) and free it. */
static pl_status drain(ictx *c, pl_status st) {
    batch *b = c->fly;
    if (!b || !b->busy) return st;
    /* convert what the workers have not taken yet instead of waiting idle
     * (not with a single worker: one thread was asked for) */
    if (b->nth > 1) batch_worker(b);
    for (int t = 0; t < b->nth; t++) pthread_join(b->th[t], NULL);
    st = emit_jobs(c, b->q, b->n, st);
    if (c->js && !st) writeback(c->js);
    free(b->q);
    b->q = NULL;
    b->busy = 0;
    return st;
}

/* Start converting the queued jobs on worker threads (the caller goes on
 * reading). They are converted here when no thread can be started, or when
 * the caller would only wait (last batch of an input, and one thread or one
 * job): a thread start costs more than a small message. */
static pl_status launch(ictx *c, int last) {
    if (!c->nq) return PL_OK;
    if (!c->fly && !(c->fly = calloc(1, sizeof *c->fly))) return pl_error(PL_ERR_NOMEM, "out of memory");
    batch *b = c->fly;
    b->q = c->q;
    b->n = (long)c->nq;
    c->q = NULL;
    c->nq = 0;
    atomic_store(&b->next, 0);
    b->o = c->o;
    b->csv = c->csv;
    b->to_json = c->js != NULL;
    b->busy = 1;
    int want = pl_num_threads();
    if (want > MAX_WORKERS) want = MAX_WORKERS;
    if (want > b->n) want = (int)b->n;
    b->nth = 0;
    if (last && want <= 1) want = 0;
    while (b->nth < want && pthread_create(&b->th[b->nth], NULL, batch_worker, b) == 0) b->nth++;
    if (b->nth == 0) batch_worker(b); /* no threads: convert here */
    return PL_OK;
}

/* A full queue: emit the batch in flight, then send this one off. */
static pl_status flush_jobs(ictx *c) {
    pl_status st = drain(c, PL_OK);
    if (!st) st = launch(c, 0);
    return st;
}

/* Convert and emit everything queued or in flight. */
static pl_status sync_jobs(ictx *c) {
    pl_status st = drain(c, PL_OK);
    if (!st) st = launch(c, 1);
    return drain(c, st);
}

/* End of an input: emit what is queued (or drop it after an error). */
static pl_status finish(ictx *c, pl_status st) {
    if (!st) st = sync_jobs(c);
    st = drain(c, st); /* after an error: wait for the workers, free their jobs */
    for (size_t i = 0; i < c->nq; i++) job_free(&c->q[i]);
    c->nq = 0;
    free(c->q);
    c->q = NULL;
    free(c->fly);
    c->fly = NULL;
    return st;
}

/* Queue one message (raw bytes copied, or a file to read in the worker). */
static pl_status queue_message(ictx *c, const char *raw, size_t n, const char *path, const char *file,
                               const char *label_path, const char *id_tail, const char *where, cJSON *pos) {
    if (!c->q) {
        c->q = calloc(JOB_BATCH, sizeof *c->q);
        if (!c->q) {
            cJSON_Delete(pos);
            return pl_error(PL_ERR_NOMEM, "out of memory");
        }
    }
    msgjob *j = &c->q[c->nq];
    memset(j, 0, sizeof *j);
    j->pos = pos;
    j->file = strdup(file);
    j->label_path = strdup(label_path);
    j->id_tail = strdup(id_tail);
    j->where = strdup(where);
    int ok = j->file && j->label_path && j->id_tail && j->where;
    if (ok && path) ok = (j->path = strdup(path)) != NULL;
    if (ok && !path) {
        ok = (j->raw = malloc(n + 1)) != NULL;
        if (ok) {
            memcpy(j->raw, raw, n);
            j->raw[n] = 0;
            j->n = n;
        }
    }
    c->nq++;
    if (!ok) return pl_error(PL_ERR_NOMEM, "out of memory");
    return c->nq == JOB_BATCH ? flush_jobs(c) : PL_OK;
}

static pl_status import_mbox(ictx *c, const char *path, const char *data, size_t len, int rd) {
    pl_mbox m;
    pl_mbox_init(&m, data, len, rd);
    const char *bn = base_name(path);
    pl_status st = PL_OK;
    int64_t idx = 0;
    int k;
    while (!st && (k = pl_mbox_next(&m)) == 1) {
        idx++;
        char tail[1024], where[96];
        snprintf(tail, sizeof tail, "%s:%lld", bn, (long long)idx);
        snprintf(where, sizeof where, "message %lld at line %zu (offset %zu)", (long long)idx, m.msg_line,
                 m.msg_offset);
        cJSON *pos = cJSON_CreateObject();
        cJSON_AddStringToObject(pos, "file", bn);
        cJSON_AddNumberToObject(pos, "index", (double)idx);
        cJSON_AddNumberToObject(pos, "offset", (double)m.msg_offset);
        st = queue_message(c, m.msg.data, m.msg.len, NULL, path, path, tail, where, pos);
    }
    if (!st && k < 0) st = pl_error(PL_ERR_NOMEM, "out of memory splitting %s", path);
    pl_mbox_free(&m);
    return st;
}

/* Queue one CSV row (its fields copied). */
static pl_status queue_row(ictx *c, const pl_csv *cv, const char *path, int64_t row) {
    if (!c->q) {
        c->q = calloc(JOB_BATCH, sizeof *c->q);
        if (!c->q) return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    msgjob *j = &c->q[c->nq++];
    memset(j, 0, sizeof *j);
    j->is_row = 1;
    j->row = row;
    j->line = cv->line;
    j->unterminated = cv->unterminated;
    j->nf = cv->n_fields;
    j->rec_offset = cv->rec_offset;
    j->row_file = path;
    j->off = malloc((cv->n_fields + 1) * sizeof *j->off);
    j->flen = malloc((cv->n_fields + 1) * sizeof *j->flen);
    if (!j->off || !j->flen || pl_buf_append(&j->fields, cv->store.data, cv->store.len))
        return pl_error(PL_ERR_NOMEM, "out of memory");
    memcpy(j->off, cv->off, cv->n_fields * sizeof *j->off);
    memcpy(j->flen, cv->flen, cv->n_fields * sizeof *j->flen);
    return c->nq == JOB_BATCH ? flush_jobs(c) : PL_OK;
}

/* ---- CSV ---- */

static int find_col(const pl_csv *c, const char *const *names) {
    for (const char *const *nm = names; *nm; nm++)
        for (size_t i = 0; i < c->n_fields; i++) {
            const char *f = pl_csv_field(c, i);
            size_t n = c->flen[i];
            while (n && isspace((unsigned char)*f)) f++, n--;
            while (n && isspace((unsigned char)f[n - 1])) n--;
            if (strlen(*nm) == n && !strncasecmp(f, *nm, n)) return (int)i;
        }
    return -1;
}

static pl_status import_csv(ictx *c, const char *path, const char *data, size_t len) {
    const pl_ingest_opts *o = c->o;
    pl_csv cv;
    pl_csv_init(&cv, data, len);
    int k = pl_csv_next(&cv);
    if (k <= 0) {
        pl_csv_free(&cv);
        return k < 0 ? pl_error_wrap(PL_ERR_NOMEM, "%s", path) : pl_error(PL_ERR_FORMAT, "%s: empty CSV (no header)", path);
    }
    /* header-driven mapping; presets cover the corpora in docs/records.md */
    static const char *const text_names[] = {"body", "text_combined", "email text", "text", "message", "content",
                                             "email", NULL};
    static const char *const subj_names[] = {"subject", NULL};
    static const char *const from_names[] = {"sender", "from", NULL};
    static const char *const to_names[] = {"receiver", "to", "recipient", NULL};
    static const char *const date_names[] = {"date", NULL};
    static const char *const label_names[] = {"label", "email type", "is_phishing", "class", "category", NULL};
    int col[COL_N];
    const char *one[2] = {NULL, NULL};
    if (o->text_col) {
        one[0] = o->text_col;
        col[COL_TEXT] = find_col(&cv, one);
    } else {
        col[COL_TEXT] = find_col(&cv, text_names);
    }
    col[COL_SUBJECT] = find_col(&cv, subj_names);
    col[COL_FROM] = find_col(&cv, from_names);
    col[COL_TO] = find_col(&cv, to_names);
    col[COL_DATE] = find_col(&cv, date_names);
    if (o->label_col) {
        one[0] = o->label_col;
        col[COL_LABEL] = find_col(&cv, one);
    } else {
        col[COL_LABEL] = find_col(&cv, label_names);
    }
    size_t nh = cv.n_fields;
    pl_status st = PL_OK;
    if (col[COL_TEXT] < 0 || (o->label_col && col[COL_LABEL] < 0)) {
        pl_buf hb = {0};
        for (size_t i = 0; i < nh; i++) pl_buf_printf(&hb, "%s'%s'", i ? ", " : "", pl_csv_field(&cv, i));
        st = pl_error(PL_ERR_FORMAT, "%s: line 1: no %s column '%s' in the header (columns: %s)%s", path,
                      col[COL_TEXT] < 0 ? "text" : "label",
                      col[COL_TEXT] < 0 ? (o->text_col ? o->text_col : "body|text_combined|Email Text|text")
                                        : o->label_col,
                      hb.data ? hb.data : "", col[COL_TEXT] < 0 && !o->text_col ? "; use --text-col" : "");
        pl_buf_free(&hb);
        pl_csv_free(&cv);
        return st;
    }
    /* header names (copied: the field store is reused per row) */
    char **hdr = calloc(nh, sizeof *hdr);
    if (!hdr) st = pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < nh; i++) {
        hdr[i] = strdup(pl_csv_field(&cv, i));
        if (!hdr[i]) st = pl_error(PL_ERR_NOMEM, "out of memory");
    }
    const char *bn = base_name(path);
    int64_t row = 0;
    csvmap cm;
    memcpy(cm.col, col, sizeof cm.col);
    cm.nh = nh;
    cm.hdr = hdr;
    cm.bn = bn;
    c->csv = &cm;
    while (!st && (k = pl_csv_next(&cv)) == 1) st = queue_row(c, &cv, path, ++row);
    /* rows still queued or in flight are converted while cm is alive */
    if (!st) st = sync_jobs(c);
    else st = drain(c, st);
    if (!st && k < 0) st = pl_error_wrap(PL_ERR_NOMEM, "%s", path);
    c->csv = NULL;
    for (size_t i = 0; hdr && i < nh; i++) free(hdr[i]);
    free(hdr);
    pl_csv_free(&cv);
    return st;
}

/* ---- JSONL ---- */

static pl_status import_jsonl(ictx *c, const char *path, const char *data, size_t len) {
    const pl_ingest_opts *o = c->o;
    const char *bn = base_name(path);
    size_t pos = 0, lineno = 0;
    pl_status st = PL_OK;
    if (len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3)) pos = 3;
    pl_buf id = {0};
    while (!st && pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t e = nl ? (size_t)(nl - data) : len;
        size_t ls = pos, n = e - pos;
        pos = e + 1;
        lineno++;
        while (n && isspace((unsigned char)data[ls + n - 1])) n--;
        while (n && isspace((unsigned char)data[ls])) ls++, n--;
        if (!n) continue;
        c->s->read++;
        char where[64];
        snprintf(where, sizeof where, "line %zu", lineno);
        cJSON *obj = cJSON_ParseWithLength(data + ls, n);
        if (!obj || !cJSON_IsObject(obj)) {
            cJSON_Delete(obj);
            st = skip(c, PL_SKIP_JSON_ERROR, path, where, "not a JSON object");
            continue;
        }
        const char *tkey = o->text_col ? o->text_col : cJSON_GetObjectItem(obj, "body") ? "body" : "text";
        cJSON *t = cJSON_GetObjectItem(obj, tkey);
        if (t && !cJSON_IsString(t) && !cJSON_IsNull(t)) {
            cJSON_Delete(obj);
            char d[96];
            snprintf(d, sizeof d, "field \"%.40s\" is not a string", tkey);
            st = skip(c, PL_SKIP_JSON_ERROR, path, where, d);
            continue;
        }
        int label = o->fixed_label;
        if (label == -2) {
            cJSON *l = cJSON_GetObjectItem(obj, o->label_col ? o->label_col : "label");
            if (!l || cJSON_IsNull(l)) label = -1;
            else if (cJSON_IsBool(l)) label = cJSON_IsTrue(l);
            else if (cJSON_IsNumber(l) && !o->positive)
                label = l->valuedouble == 1 ? 1 : l->valuedouble == 0 ? 0 : l->valuedouble == -1 ? -1 : -2;
            else if (cJSON_IsString(l)) label = label_value(l->valuestring, strlen(l->valuestring), o->positive);
            else if (cJSON_IsNumber(l)) {
                char num[32];
                snprintf(num, sizeof num, "%g", l->valuedouble);
                label = label_value(num, strlen(num), o->positive);
            } else label = -2;
            if (label == -2) {
                cJSON_Delete(obj);
                st = skip(c, PL_SKIP_BAD_LABEL, path, where, "label value not 0/1/-1/spam/ham/phishing/safe");
                continue;
            }
        }
        pl_record r;
        pl_record_init(&r);
        r.label = label;
        int64_t w[PL_WARN_N] = {0};
        const char *body = t && cJSON_IsString(t) ? t->valuestring : "";
        st = pl_record_set_text(&r, body, strlen(body), w);
        static const char *const keys[] = {"subject", "from", "to", "date"};
        char **fields[] = {&r.subject, &r.from, &r.to, &r.date};
        for (int f = 0; !st && f < 4; f++) {
            cJSON *v = cJSON_GetObjectItem(obj, keys[f]);
            if (v && cJSON_IsString(v)) st = pl_record_set_header(fields[f], v->valuestring, strlen(v->valuestring), w);
        }
        cJSON *urls = cJSON_GetObjectItem(obj, "urls");
        cJSON *u;
        if (!st && cJSON_IsArray(urls)) cJSON_ArrayForEach(u, urls) {
                if (st || !cJSON_IsString(u)) continue;
                int dup = 0;
                for (size_t i = 0; i < r.n_urls && !dup; i++) dup = !strcmp(r.urls[i], u->valuestring);
                if (!dup && r.n_urls < PL_MAX_URLS) st = pl_record_add_url(&r, u->valuestring);
            }
        cJSON *idv = cJSON_GetObjectItem(obj, "id");
        id.len = 0;
        if (!st) {
            if (idv && cJSON_IsString(idv) && idv->valuestring[0]) st = pl_buf_printf(&id, "%s", idv->valuestring);
            else st = pl_buf_printf(&id, "%s:%s:%zu", o->source, bn, lineno);
        }
        if (!st) st = pl_record_set(&r.id, id.data);
        if (!st) st = pl_record_set(&r.source, o->source);
        if (!st) {
            cJSON *meta = cJSON_GetObjectItem(obj, "meta");
            cJSON *nm = cJSON_IsObject(meta) ? cJSON_DetachItemViaPointer(obj, meta) : cJSON_CreateObject();
            if (!cJSON_GetObjectItem(nm, "file")) cJSON_AddStringToObject(nm, "file", bn);
            if (!cJSON_GetObjectItem(nm, "line")) cJSON_AddNumberToObject(nm, "line", (double)lineno);
            if (r.meta) {
                cJSON *child = r.meta->child;
                while (child) {
                    cJSON *next = child->next;
                    cJSON *it = cJSON_DetachItemViaPointer(r.meta, child);
                    if (cJSON_GetObjectItem(nm, it->string)) cJSON_Delete(it);
                    else cJSON_AddItemToObject(nm, it->string, it);
                    child = next;
                }
                cJSON_Delete(r.meta);
            }
            r.meta = nm;
        }
        cJSON_Delete(obj);
        if (st) {
            pl_record_free(&r);
            break;
        }
        add_warn(c, w);
        if (!r.subject[0] && !r.body[0]) c->s->warn[PL_WARN_EMPTY]++;
        st = emit(c, &r);
    }
    pl_buf_free(&id);
    return st;
}

/* ---- format detection ---- */

static int has_ext(const char *path, const char *ext) {
    size_t n = strlen(path), k = strlen(ext);
    return n > k && path[n - k - 1] == '.' && !strcasecmp(path + n - k, ext);
}

static pl_ingest_format sniff(const char *path, const char *data, size_t len) {
    if (has_ext(path, "csv")) return PL_FMT_CSV;
    if (has_ext(path, "jsonl") || has_ext(path, "ndjson")) return PL_FMT_JSONL;
    if (has_ext(path, "mbox") || has_ext(path, "mbx")) return PL_FMT_MBOX;
    if (has_ext(path, "eml")) return PL_FMT_EML;
    if (pl_is_mbox(data, len)) return PL_FMT_MBOX;
    size_t i = len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3) ? 3 : 0;
    while (i < len && isspace((unsigned char)data[i])) i++;
    if (i < len && data[i] == '{') return PL_FMT_JSONL;
    if (pl_looks_like_rfc822(data, len, NULL)) return PL_FMT_EML;
    const char *nl = memchr(data, '\n', len);
    if (memchr(data, ',', nl ? (size_t)(nl - data) : len)) return PL_FMT_CSV;
    return PL_FMT_AUTO;
}

/* ---- directories ---- */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Files in a mail directory that are corpus furniture, not messages. */
static int ignored_file(const char *name) {
    static const char *const exts[] = {"csv", "md", "json", "jsonl", "tsv", "py", "sh", "gz", "zip", "tar", "bz2",
                                       "xz", "zst", "pdf"};
    for (size_t i = 0; i < sizeof exts / sizeof *exts; i++)
        if (has_ext(name, exts[i])) return 1;
    return !strncasecmp(name, "readme", 6) || !strncasecmp(name, "license", 7) || !strcmp(name, "cmds");
}

static pl_status walk_dir(ictx *c, const char *root, const char *rel, int depth) {
    if (depth > 32) return pl_error(PL_ERR_FORMAT, "%s/%s: directories nested deeper than 32", root, rel);
    pl_buf dpath = {0};
    pl_status st = pl_buf_printf(&dpath, "%s%s%s", root, rel[0] ? "/" : "", rel);
    if (st) return st;
    DIR *d = opendir(dpath.data);
    if (!d) {
        st = pl_error(PL_ERR_IO, "%s: cannot open directory", dpath.data);
        pl_buf_free(&dpath);
        return st;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while (!st && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue; /* hidden files, ".", ".." */
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            char **nv = realloc(names, cap * sizeof *nv);
            if (!nv) {
                st = pl_error(PL_ERR_NOMEM, "out of memory");
                break;
            }
            names = nv;
        }
        names[n] = strdup(de->d_name);
        if (!names[n]) st = pl_error(PL_ERR_NOMEM, "out of memory");
        else n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    /* maildir: tmp/ holds deliveries in progress; skip it when cur/ or new/ exist */
    int maildir = 0;
    for (size_t i = 0; i < n; i++) maildir |= !strcmp(names[i], "cur") || !strcmp(names[i], "new");
    pl_buf rp = {0}, full = {0}, lp = {0};
    for (size_t i = 0; i < n && !st; i++) {
        rp.len = full.len = lp.len = 0;
        st = pl_buf_printf(&rp, "%s%s%s", rel, rel[0] ? "/" : "", names[i]);
        if (!st) st = pl_buf_printf(&full, "%s/%s", dpath.data, names[i]);
        if (st) break;
        struct stat sb;
        if (stat(full.data, &sb) != 0) {
            c->s->read++;
            st = skip(c, PL_SKIP_IO, full.data, "stat", "cannot stat");
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            if (maildir && !strcmp(names[i], "tmp")) continue;
            st = walk_dir(c, root, rp.data, depth + 1);
            continue;
        }
        if (!S_ISREG(sb.st_mode)) continue;
        if (ignored_file(names[i])) {
            c->s->ignored_files++;
            continue;
        }
        /* labels look at the root's own name too ("spamassassin_raw/spam" as root) */
        st = pl_buf_printf(&lp, "%s/%s", base_name(root), rp.data);
        cJSON *pos = cJSON_CreateObject();
        cJSON_AddStringToObject(pos, "file", rp.data);
        /* the file is read by the worker that parses it */
        if (!st) st = queue_message(c, NULL, 0, full.data, full.data, lp.data, rp.data, "offset 0", pos);
        else cJSON_Delete(pos);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    pl_buf_free(&rp);
    pl_buf_free(&full);
    pl_buf_free(&lp);
    pl_buf_free(&dpath);
    return st;
}

pl_status pl_ingest_path(const char *path, const pl_ingest_opts *o, pl_record_sink sink, void *user,
                         pl_ingest_stats *stats) {
    if (!o->source || !o->source[0]) return pl_error(PL_ERR_INVALID, "a source name is required");
    if (o->label_map) {
        pl_status st = check_label_map(o->label_map);
        if (st) return st;
    }
    if (o->fixed_label < -2 || o->fixed_label > 1) return pl_error(PL_ERR_INVALID, "fixed label must be 0, 1 or -1");
    ictx c = {o, sink, user, stats, sink == write_rec ? user : NULL, NULL, 0, NULL, NULL};
    struct stat sb;
    if (stat(path, &sb) != 0) return pl_error(PL_ERR_IO, "%s: no such file or directory", path);
    if (S_ISDIR(sb.st_mode)) {
        if (o->format != PL_FMT_AUTO && o->format != PL_FMT_DIR && o->format != PL_FMT_EML)
            return pl_error(PL_ERR_INVALID, "%s: is a directory, but --format %s was given", path,
                            pl_ingest_format_name(o->format));
        /* strip trailing slashes so base_name(root) is the directory's name */
        char *root = strdup(path);
        if (!root) return pl_error(PL_ERR_NOMEM, "out of memory");
        size_t n = strlen(root);
        while (n > 1 && root[n - 1] == '/') root[--n] = 0;
        pl_status st = walk_dir(&c, root, "", 0);
        free(root);
        return finish(&c, st);
    }
    char *data;
    size_t len;
    pl_status st = read_whole(path, &data, &len);
    if (st) return st;
    st = pl_ingest_buffer(path, data, len, o, sink, user, stats);
    free(data);
    return st;
}

pl_status pl_ingest_buffer(const char *path, const char *data, size_t len, const pl_ingest_opts *o,
                           pl_record_sink sink, void *user, pl_ingest_stats *stats) {
    if (!o->source || !o->source[0]) return pl_error(PL_ERR_INVALID, "a source name is required");
    if (o->label_map) {
        pl_status st = check_label_map(o->label_map);
        if (st) return st;
    }
    ictx c = {o, sink, user, stats, sink == write_rec ? user : NULL, NULL, 0, NULL, NULL};
    pl_status st = PL_OK;
    stats->bytes += (int64_t)len;
    pl_ingest_format f = o->format;
    if (f == PL_FMT_AUTO) f = sniff(path, data, len);
    switch (f) {
    case PL_FMT_CSV: st = import_csv(&c, path, data, len); break;
    case PL_FMT_JSONL: st = import_jsonl(&c, path, data, len); break;
    case PL_FMT_MBOX: st = import_mbox(&c, path, data, len, 0); break;
    case PL_FMT_MBOXRD: st = import_mbox(&c, path, data, len, 1); break;
    case PL_FMT_EML:
    case PL_FMT_DIR: {
        cJSON *pos = cJSON_CreateObject();
        cJSON_AddStringToObject(pos, "file", base_name(path));
        char lp[4096];
        /* the parent directory's name may carry the label (spam/x.eml) */
        const char *bn = base_name(path);
        const char *pe = bn > path ? bn - 1 : path;
        while (pe > path && pe[-1] == '/') pe--;
        const char *pb = pe;
        while (pb > path && pb[-1] != '/') pb--;
        snprintf(lp, sizeof lp, "%.*s/%s", (int)(pe - pb), pb, bn);
        st = queue_message(&c, data, len, NULL, path, lp, bn, "offset 0", pos);
        break;
    }
    default:
        st = pl_error(PL_ERR_FORMAT, "%s: cannot tell the format (not CSV, mbox, RFC 822 or JSONL); use --format",
                      path);
    }
    return finish(&c, st);
}

static pl_status write_rec(pl_record *r, void *user) {
    jsonl_sink *s = user;
    s->b.len = 0;
    pl_status st = record_line(r, &s->b);
    if (!st) st = pl_afile_write(&s->f, s->b.data, s->b.len);
    pl_record_free(r);
    return st;
}

pl_status pl_ingest_to_jsonl(const char *const *paths, size_t n_paths, const pl_ingest_opts *o,
                             const char *out_path, pl_ingest_stats *per_input, pl_ingest_stats *stats) {
    jsonl_sink s;
    memset(&s, 0, sizeof s);
    pl_status st = pl_afile_open(&s.f, out_path);
    if (st) return st;
    for (size_t i = 0; i < n_paths && !st; i++) {
        pl_ingest_stats one;
        memset(&one, 0, sizeof one);
        st = pl_ingest_path(paths[i], o, write_rec, &s, &one);
        if (per_input) per_input[i] = one;
        stats->read += one.read;
        stats->kept += one.kept;
        stats->skipped += one.skipped;
        for (int k = 0; k < PL_SKIP_N; k++) stats->skip[k] += one.skip[k];
        for (int k = 0; k < PL_WARN_N; k++) stats->warn[k] += one.warn[k];
        stats->ignored_files += one.ignored_files;
        stats->bytes += one.bytes;
        stats->label_pos += one.label_pos;
        stats->label_neg += one.label_neg;
        stats->label_unk += one.label_unk;
    }
    pl_buf_free(&s.b);
    if (st) {
        pl_afile_abort(&s.f);
        return st;
    }
    return pl_afile_commit(&s.f);
}

pl_status pl_ingest_stats_format(const pl_ingest_stats *s, pl_buf *b) {
    pl_status st = pl_buf_printf(b, "read %lld, kept %lld (label 1: %lld, 0: %lld, unlabelled: %lld), skipped %lld",
                                 (long long)s->read, (long long)s->kept, (long long)s->label_pos,
                                 (long long)s->label_neg, (long long)s->label_unk, (long long)s->skipped);
    int first = 1;
    for (int i = 0; !st && i < PL_SKIP_N; i++) {
        if (!s->skip[i]) continue;
        st = pl_buf_printf(b, "%s%s %lld", first ? " (" : ", ", pl_skip_name(i), (long long)s->skip[i]);
        first = 0;
    }
    if (!st && !first) st = pl_buf_printf(b, ")");
    if (!st && s->ignored_files) st = pl_buf_printf(b, "; non-mail files ignored %lld", (long long)s->ignored_files);
    first = 1;
    for (int i = 0; !st && i < PL_WARN_N; i++) {
        if (!s->warn[i]) continue;
        st = pl_buf_printf(b, "%s%s %lld", first ? "\nrecords with warnings: " : ", ", pl_warn_name(i),
                           (long long)s->warn[i]);
        first = 0;
    }
    return st;
}
