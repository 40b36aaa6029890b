/* cmd_data_corpus.c — `phishlens data dedup|leakage|profile|split|audit|synth`:
 * the corpus-hygiene tools (docs/corpus.md). Thin wrappers over src/data. */
#include "cli.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"

/* ---- shared helpers ---- */

static int is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

/* "--opt value": returns the value or NULL after a usage error. */
static const char *optval(const char *cmd, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        cli_usage_error(cmd, "%s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

static int parse_threshold(const char *cmd, const char *s, double *out) {
    if (!cli_parse_double(cmd, "--threshold", s, out)) return 0;
    if (!(*out > 0 && *out <= 1)) {
        cli_usage_error(cmd, "--threshold must be in (0, 1], got %s", s);
        return 0;
    }
    return 1;
}

static int parse_frac(const char *cmd, const char *opt, const char *s, double *out) {
    if (!cli_parse_double(cmd, opt, s, out)) return 0;
    if (!(*out >= 0 && *out < 1)) {
        cli_usage_error(cmd, "%s must be in [0, 1), got %s", opt, s);
        return 0;
    }
    return 1;
}

static int parse_seed(const char *cmd, const char *s, uint64_t *out) {
    long v;
    if (!cli_parse_int(cmd, "--seed", s, 0, 2147483647L, &v)) return 0;
    *out = (uint64_t)v;
    return 1;
}

/* Print (or write atomically to path) a cJSON tree; deletes it. */
static int emit_json(cJSON *o, const char *path) {
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    if (!s) return cli_fail(pl_error(PL_ERR_NOMEM, "out of memory"));
    pl_status st = PL_OK;
    if (path) {
        size_t n = strlen(s);
        s[n] = '\n';
        st = pl_write_file_atomic(path, s, n + 1);
        s[n] = 0;
    } else {
        printf("%s\n", s);
    }
    cJSON_free(s);
    return st ? cli_fail(st) : 0;
}

/* First ~70 characters of a text on one line. */
static void snippet(const char *t, char *out, size_t n) {
    size_t k = 0;
    int sp = 0;
    for (const char *p = t; *p && k + 4 < n; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            sp = k > 0;
            continue;
        }
        if (sp) out[k++] = ' ', sp = 0;
        out[k++] = (char)c;
        if (k >= 70 && (c & 0xC0) != 0x80 && ((unsigned char)p[1] & 0xC0) != 0x80) {
            memcpy(out + k, "...", 3);
            k += 3;
            break;
        }
    }
    out[k] = 0;
}

static pl_status read_all(char **files, int nfiles, pl_records *rs) {
    for (int f = 0; f < nfiles; f++) {
        size_t before = rs->n;
        pl_status st = pl_records_read_jsonl(files[f], rs);
        if (st) return st;
        /* records without a source take the file's name (without .jsonl) */
        const char *base = strrchr(files[f], '/');
        base = base ? base + 1 : files[f];
        char stem[256];
        snprintf(stem, sizeof stem, "%s", base);
        char *dot = strstr(stem, ".jsonl");
        if (dot) *dot = 0;
        for (size_t i = before; i < rs->n; i++)
            if (!rs->v[i].source[0] && (st = pl_record_set(&rs->v[i].source, stem)) != PL_OK) return st;
    }
    return PL_OK;
}

/* ---- dedup ---- */

static const char dedup_usage[] =
    "usage: phishlens data dedup IN.jsonl -o OUT.jsonl [--threshold J] [--dropped D.jsonl] [--json]\n"
    "  Drops exact duplicates (normalized body) and near duplicates (MinHash/LSH over\n"
    "  word 3-shingles, verified Jaccard >= J, default 0.8); keeps the first record of\n"
    "  each cluster, in input order. --dropped lists each dropped record as\n"
    "  {\"id\",\"kept\",\"kind\"} (kind exact or near; kept = the id it was folded into).\n";

int cmd_data_dedup(int argc, char **argv) {
    const char *cmd = "data dedup", *in = NULL, *out = NULL, *dropped = NULL;
    int json = 0;
    pl_dedup_opts o;
    pl_dedup_opts_default(&o);
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (is_help(argv[i])) return printf("%s", dedup_usage), 0;
        else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--out")) {
            if (!(out = optval(cmd, argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(argv[i], "--threshold")) {
            if (!(v = optval(cmd, argc, argv, &i)) || !parse_threshold(cmd, v, &o.threshold)) return EXIT_USAGE;
        } else if (!strcmp(argv[i], "--dropped")) {
            if (!(dropped = optval(cmd, argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(argv[i], "--json")) json = 1;
        else if (argv[i][0] == '-') return cli_usage_error(cmd, "unknown option '%s'", argv[i]);
        else if (!in) in = argv[i];
        else return cli_usage_error(cmd, "one input file only (got '%s' and '%s')", in, argv[i]);
    }
    if (!in || !out) return cli_usage_error(cmd, "needs IN.jsonl and -o OUT.jsonl");
    pl_records rs = {0}, kept = {0};
    double t0 = pl_time_now();
    pl_status st = pl_records_read_jsonl(in, &rs);
    const char **texts = st ? NULL : malloc((rs.n ? rs.n : 1) * sizeof *texts);
    if (!st && !texts) st = pl_error(PL_ERR_NOMEM, "out of memory");
    pl_dedup_result dr = {0};
    if (!st) {
        for (size_t i = 0; i < rs.n; i++) texts[i] = pl_record_dedup_text(&rs.v[i]);
        st = pl_dedup_texts(texts, rs.n, &o, &dr);
    }
    size_t multi = 0;
    if (!st && dropped) {
        /* before the kept records move out: ids are still in rs */
        pl_afile f;
        st = pl_afile_open(&f, dropped);
        for (size_t i = 0; !st && i < rs.n; i++) {
            if (dr.cluster[i] == i) continue;
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "id", rs.v[i].id);
            cJSON_AddStringToObject(e, "kept", rs.v[dr.cluster[i]].id);
            cJSON_AddStringToObject(e, "kind", dr.exact_dup[i] ? "exact" : "near");
            char *line = cJSON_PrintUnformatted(e);
            cJSON_Delete(e);
            if (!line) st = pl_error(PL_ERR_NOMEM, "out of memory");
            else {
                st = pl_afile_printf(&f, "%s\n", line);
                cJSON_free(line);
            }
        }
        if (st) pl_afile_abort(&f);
        else st = pl_afile_commit(&f);
    }
    if (!st) {
        /* kept records move (not copy) into `kept`, in input order */
        size_t *csize = calloc(rs.n ? rs.n : 1, sizeof *csize);
        if (!csize) st = pl_error(PL_ERR_NOMEM, "out of memory");
        for (size_t i = 0; !st && i < rs.n; i++) csize[dr.cluster[i]]++;
        for (size_t i = 0; !st && i < rs.n; i++) {
            multi += csize[i] > 1;
            if (dr.cluster[i] == i) st = pl_records_push(&kept, &rs.v[i]);
        }
        free(csize);
    }
    if (!st) st = pl_records_write_jsonl(out, &kept);
    free(texts);
    int rc = 0;
    if (st) rc = cli_fail(st);
    else if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "input", in);
        cJSON_AddStringToObject(j, "output", out);
        cJSON_AddNumberToObject(j, "threshold", o.threshold);
        cJSON_AddNumberToObject(j, "records", (double)rs.n);
        cJSON_AddNumberToObject(j, "kept", (double)dr.n_clusters);
        cJSON_AddNumberToObject(j, "exact_duplicates", (double)dr.n_exact_dups);
        cJSON_AddNumberToObject(j, "near_duplicates", (double)dr.n_near_dups);
        cJSON_AddNumberToObject(j, "clusters_with_duplicates", (double)multi);
        cJSON_AddNumberToObject(j, "lsh_candidate_pairs", (double)dr.n_candidates);
        cJSON_AddNumberToObject(j, "verified_pairs", (double)dr.n_verified);
        cJSON_AddNumberToObject(j, "seconds", pl_time_now() - t0);
        rc = emit_json(j, NULL);
    } else {
        printf("%zu records: kept %zu, dropped %zu exact and %zu near duplicates (J >= %.2f) in %zu clusters\n"
               "LSH candidate pairs %zu, verified %zu; %.2f s; wrote %s\n",
               rs.n, dr.n_clusters, dr.n_exact_dups, dr.n_near_dups, o.threshold, multi, dr.n_candidates,
               dr.n_verified, pl_time_now() - t0, out);
    }
    pl_dedup_result_free(&dr);
    /* moved-out records are zeroed, so freeing both lists is safe */
    pl_records_free(&rs);
    pl_records_free(&kept);
    return rc;
}

/* ---- leakage ---- */

static const char leakage_usage[] =
    "usage: phishlens data leakage --train A.jsonl --test B.jsonl [--threshold J] [--examples N] [--json]\n"
    "  How many test records have an exact (normalized body) or near (Jaccard >= J,\n"
    "  default 0.8) duplicate in train, with examples.\n";

int cmd_data_leakage(int argc, char **argv) {
    const char *cmd = "data leakage", *trp = NULL, *tep = NULL;
    int json = 0;
    long nex = 5;
    pl_dedup_opts o;
    pl_dedup_opts_default(&o);
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (is_help(argv[i])) return printf("%s", leakage_usage), 0;
        else if (!strcmp(argv[i], "--train")) {
            if (!(trp = optval(cmd, argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(argv[i], "--test")) {
            if (!(tep = optval(cmd, argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(argv[i], "--threshold")) {
            if (!(v = optval(cmd, argc, argv, &i)) || !parse_threshold(cmd, v, &o.threshold)) return EXIT_USAGE;
        } else if (!strcmp(argv[i], "--examples")) {
            if (!(v = optval(cmd, argc, argv, &i)) || !cli_parse_int(cmd, "--examples", v, 0, 100000, &nex)) return EXIT_USAGE;
        } else if (!strcmp(argv[i], "--json")) json = 1;
        else return cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
    }
    if (!trp || !tep) return cli_usage_error(cmd, "needs --train and --test");
    pl_records tr = {0}, te = {0};
    pl_status st = pl_records_read_jsonl(trp, &tr);
    if (!st) st = pl_records_read_jsonl(tep, &te);
    const char **a = NULL, **b = NULL;
    pl_leakage_result lr = {0};
    if (!st) {
        a = malloc((tr.n ? tr.n : 1) * sizeof *a);
        b = malloc((te.n ? te.n : 1) * sizeof *b);
        if (!a || !b) st = pl_error(PL_ERR_NOMEM, "out of memory");
    }
    if (!st) {
        for (size_t i = 0; i < tr.n; i++) a[i] = pl_record_dedup_text(&tr.v[i]);
        for (size_t i = 0; i < te.n; i++) b[i] = pl_record_dedup_text(&te.v[i]);
        st = pl_leakage_texts(a, tr.n, b, te.n, &o, &lr);
    }
    int rc = 0;
    if (st) rc = cli_fail(st);
    else {
        cJSON *j = cJSON_CreateObject(), *ex = cJSON_CreateArray();
        cJSON_AddStringToObject(j, "train", trp);
        cJSON_AddStringToObject(j, "test", tep);
        cJSON_AddNumberToObject(j, "threshold", o.threshold);
        cJSON_AddNumberToObject(j, "n_train", (double)tr.n);
        cJSON_AddNumberToObject(j, "n_test", (double)te.n);
        cJSON_AddNumberToObject(j, "test_with_exact_duplicate", (double)lr.n_exact);
        cJSON_AddNumberToObject(j, "test_with_near_duplicate_only", (double)lr.n_near);
        cJSON_AddNumberToObject(j, "test_in_cluster_with_train_only", (double)lr.n_chain);
        size_t leaked = lr.n_exact + lr.n_near + lr.n_chain;
        cJSON_AddNumberToObject(j, "leaked_fraction", te.n ? (double)leaked / (double)te.n : 0.0);
        cJSON_AddItemToObject(j, "examples", ex);
        long shown = 0;
        if (!json)
            printf("test %zu, train %zu: %zu test records have an exact duplicate in train, %zu more a near duplicate "
                   "(J >= %.2f), %zu more are in a near-duplicate cluster with train (chain): %.1f%% leaked\n",
                   te.n, tr.n, lr.n_exact, lr.n_near, o.threshold, lr.n_chain,
                   te.n ? 100.0 * (double)leaked / (double)te.n : 0.0);
        for (size_t t = 0; t < te.n && shown < nex; t++) {
            long m = lr.exact[t] >= 0 ? lr.exact[t] : lr.near[t] >= 0 ? lr.near[t] : lr.chain[t];
            if (m < 0) continue;
            char sn[96];
            snippet(b[t], sn, sizeof sn);
            double jj = lr.exact[t] >= 0 ? 1.0 : lr.near[t] >= 0 ? lr.near_j[t] : 0.0;
            const char *kind = lr.exact[t] >= 0 ? "exact" : lr.near[t] >= 0 ? "near" : "chain";
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "test_id", te.v[t].id);
            cJSON_AddStringToObject(e, "train_id", tr.v[m].id);
            cJSON_AddStringToObject(e, "kind", kind);
            if (lr.exact[t] >= 0 || lr.near[t] >= 0) cJSON_AddNumberToObject(e, "jaccard", jj);
            else cJSON_AddNullToObject(e, "jaccard"); /* chain: joined through other records */
            cJSON_AddStringToObject(e, "snippet", sn);
            cJSON_AddItemToArray(ex, e);
            if (!json && lr.chain[t] >= 0)
                printf("  %-5s J=  -   test %s ~ ... ~ train %s  \"%s\"\n", kind, te.v[t].id, tr.v[m].id, sn);
            else if (!json)
                printf("  %-5s J=%.2f  test %s ~ train %s  \"%s\"\n", kind, jj, te.v[t].id, tr.v[m].id, sn);
            shown++;
        }
        if (json) rc = emit_json(j, NULL);
        else cJSON_Delete(j);
    }
    free(a);
    free(b);
    pl_leakage_result_free(&lr);
    pl_records_free(&tr);
    pl_records_free(&te);
    return rc;
}

/* ---- profile ---- */

static const char profile_usage[] =
    "usage: phishlens data profile FILE.jsonl... [--json] [-o OUT.json] [--top K] [--folds K] [--seed S]\n"
    "  Style profile per source (records grouped by their source field): size, labels,\n"
    "  length quantiles, HTML share, URL density, headers, dates, charsets, type-token\n"
    "  ratio, distinctive words (log-odds, informative Dirichlet prior); across sources:\n"
    "  Jensen-Shannon divergence and source separability (k-fold naive Bayes).\n";

static void print_profile(const pl_profile *p) {
    printf("%-14s %6s %6s %6s %6s %6s %5s %6s %6s %5s %5s %5s %5s %5s %-23s\n", "source", "n", "phish", "legit",
           "len50", "len95", "html", "url/em", "url/1k", "from", "to", "date", "subj", "ttr", "dates");
    for (size_t s = 0; s < p->n_sources; s++) {
        const pl_source_profile *x = &p->src[s];
        char dates[64];
        snprintf(dates, sizeof dates, "%s..%s", x->date_min[0] ? x->date_min : "-", x->date_max[0] ? x->date_max : "-");
        printf("%-14.14s %6zu %6zu %6zu %6.0f %6.0f %5.2f %6.2f %6.2f %5.2f %5.2f %5.2f %5.2f %5.3f %-23s\n", x->name,
               x->n, x->n_phish, x->n_legit, x->len_q[2], x->len_q[4], x->html_share, x->urls_per_email,
               x->urls_per_1k_words, x->has_from, x->has_to, x->has_date, x->has_subject, x->ttr, dates);
    }
    for (size_t s = 0; s < p->n_sources; s++) {
        const pl_source_profile *x = &p->src[s];
        if (x->n_charsets) {
            printf("charsets %-14s", x->name);
            for (size_t k = 0; k < x->n_charsets && k < 6; k++) printf(" %s:%zu", x->charsets[k], x->charset_n[k]);
            printf("\n");
        }
    }
    for (size_t s = 0; s < p->n_sources; s++) {
        const pl_source_profile *x = &p->src[s];
        if (!x->n_top) continue;
        printf("distinctive %-12s", x->name);
        for (size_t t = 0; t < x->n_top; t++) printf(" %s(%.1f)", x->top[t].token, x->top[t].z);
        printf("\n");
    }
    if (p->n_sources > 1) {
        printf("JSD (bits)     ");
        for (size_t b = 0; b < p->n_sources; b++) printf(" %10.10s", p->src[b].name);
        printf("\n");
        for (size_t a = 0; a < p->n_sources; a++) {
            printf("%-15.15s", p->src[a].name);
            for (size_t b = 0; b < p->n_sources; b++) printf(" %10.4f", p->jsd[a * p->n_sources + b]);
            printf("\n");
        }
        double chance = 1.0 / (double)p->n_sources;
        printf("source separability (%d-fold naive Bayes): accuracy %.4f vs majority baseline %.4f; balanced accuracy "
               "%.4f vs chance %.4f%s\n",
               p->folds, p->separability, p->majority, p->separability_balanced, chance,
               p->separability_balanced - chance > 0.5 * (1 - chance) ? "  -> sources are easy to tell apart: shortcut risk"
                                                                       : "");
    }
    printf("%zu records, %zu words, vocabulary %zu\n", p->n_records, p->n_tokens, p->vocab);
}

int cmd_data_profile(int argc, char **argv) {
    const char *cmd = "data profile", *out = NULL;
    int json = 0;
    pl_profile_opts o;
    pl_profile_opts_default(&o);
    char **files = malloc((size_t)argc * sizeof *files);
    int nf = 0;
    if (!files) return cli_fail(pl_error(PL_ERR_NOMEM, "out of memory"));
    for (int i = 1; i < argc; i++) {
        const char *v;
        long k;
        int bad = 0;
        if (is_help(argv[i])) {
            free(files);
            return printf("%s", profile_usage), 0;
        } else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "-o")) bad = !(out = optval(cmd, argc, argv, &i));
        else if (!strcmp(argv[i], "--top")) {
            bad = !(v = optval(cmd, argc, argv, &i)) || !cli_parse_int(cmd, "--top", v, 0, 1000, &k);
            if (!bad) o.top_k = (int)k;
        } else if (!strcmp(argv[i], "--folds")) {
            bad = !(v = optval(cmd, argc, argv, &i)) || !cli_parse_int(cmd, "--folds", v, 2, 100, &k);
            if (!bad) o.folds = (int)k;
        } else if (!strcmp(argv[i], "--seed")) bad = !(v = optval(cmd, argc, argv, &i)) || !parse_seed(cmd, v, &o.seed);
        else if (argv[i][0] == '-') bad = (cli_usage_error(cmd, "unknown option '%s'", argv[i]), 1);
        else files[nf++] = argv[i];
        if (bad) {
            free(files);
            return EXIT_USAGE;
        }
    }
    if (!nf) {
        free(files);
        return cli_usage_error(cmd, "needs at least one FILE.jsonl");
    }
    pl_records rs = {0};
    pl_profile p = {0};
    double t0 = pl_time_now();
    pl_status st = read_all(files, nf, &rs);
    free(files);
    if (!st) st = pl_profile_compute(&rs, &o, &p);
    double secs = pl_time_now() - t0;
    int rc = 0;
    if (st) rc = cli_fail(st);
    else {
        cJSON *j = NULL;
        if (json || out) {
            st = pl_profile_to_json(&p, &j);
            if (!st) cJSON_AddNumberToObject(j, "seconds", secs);
        }
        if (st) rc = cli_fail(st);
        else if (json && !out) rc = emit_json(j, NULL);
        else {
            print_profile(&p);
            printf("profiled in %.2f s\n", secs);
            if (out) rc = emit_json(j, out);
        }
    }
    pl_profile_free(&p);
    pl_records_free(&rs);
    return rc;
}

/* ---- split ---- */

static const char split_usage[] =
    "usage: phishlens data split IN.jsonl... --out DIR [--seed S] [--test-frac F] [--val-frac F]\n"
    "                            [--threshold J] [--mix src=N,...|src=W,... [--mix-total N]] [--loso]\n"
    "  Train/val/test per source, stratified by label, grouped by near-duplicate\n"
    "  cluster (no cluster spans two partitions), deterministic for a seed. Writes\n"
    "  DIR/<source>/{train,val,test}.jsonl (narrow), DIR/generalist/ (the mixture:\n"
    "  --mix caps each listed source's train records, 0 = all, or with weights like\n"
    "  a=0.7,b=0.3 takes those shares of --mix-total N records (default: the largest\n"
    "  total the sources can fill); without --mix every source, uncapped),\n"
    "  DIR/loso-<source>/ with --loso (train on the other sources,\n"
    "  test on this source's test split), DIR/assignment.jsonl and DIR/manifest.json.\n";

typedef struct {
    char *name;
    size_t cap;
    double w;
} mix_item;

static void safe_name(const char *s, char *out, size_t n) {
    size_t k = 0;
    for (; *s && k + 1 < n; s++) {
        char c = *s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
        out[k] = ok && !(k == 0 && c == '.') ? c : '_';
        k++;
    }
    out[k] = 0;
    if (!k) snprintf(out, n, "_");
}

/* Write the records at idx to DIR/sub/name.jsonl. */
static pl_status write_subset(const char *dir, const char *sub, const char *name, const pl_records *rs,
                              const size_t *idx, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    pl_status st = pl_mkdirs(path);
    if (st) return st;
    snprintf(path, sizeof path, "%s/%s/%s.jsonl", dir, sub, name);
    pl_records view = {0};
    view.v = malloc((n ? n : 1) * sizeof *view.v);
    if (!view.v) return pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) view.v[i] = rs->v[idx[i]]; /* shallow: not freed through view */
    view.n = n;
    st = pl_records_write_jsonl(path, &view);
    free(view.v);
    return st;
}

static const char *part_name[3] = {"train", "val", "test"};

/* Append idx[0..n) to a growable list. */
static int append_idx(size_t **v, size_t *n, const size_t *idx, size_t m) {
    size_t *nv = realloc(*v, (*n + m + 1) * sizeof *nv);
    if (!nv) return 0;
    memcpy(nv + *n, idx, m * sizeof *idx);
    *v = nv;
    *n += m;
    return 1;
}

static int cmp_sz(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* One composed set: train/val/test index lists written to DIR/sub, and a
 * manifest entry with per-source counts. */
static pl_status write_composition(const char *dir, const char *sub, const char *kind, const pl_records *rs,
                                   size_t *lists[3], size_t lens[3], cJSON *comps) {
    cJSON *c = cJSON_CreateObject();
    if (!c || !cJSON_AddItemToArray(comps, c)) {
        cJSON_Delete(c);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    cJSON_AddStringToObject(c, "name", sub);
    cJSON_AddStringToObject(c, "kind", kind);
    for (int p = 0; p < 3; p++) {
        qsort(lists[p], lens[p], sizeof *lists[p], cmp_sz);
        pl_status st = write_subset(dir, sub, part_name[p], rs, lists[p], lens[p]);
        if (st) return st;
        cJSON *e = cJSON_AddObjectToObject(c, part_name[p]);
        char rel[1024];
        snprintf(rel, sizeof rel, "%s/%s.jsonl", sub, part_name[p]);
        cJSON_AddStringToObject(e, "file", rel);
        cJSON_AddNumberToObject(e, "n", (double)lens[p]);
        size_t lab[2] = {0};
        cJSON *per = cJSON_AddObjectToObject(e, "by_source");
        for (size_t i = 0; i < lens[p]; i++) {
            const pl_record *r = &rs->v[lists[p][i]];
            if (r->label == 0 || r->label == 1) lab[r->label]++;
            cJSON *x = cJSON_GetObjectItemCaseSensitive(per, r->source);
            if (!x) x = cJSON_AddNumberToObject(per, r->source, 0);
            if (x) cJSON_SetNumberValue(x, x->valuedouble + 1);
        }
        cJSON_AddNumberToObject(e, "n_phish", (double)lab[1]);
        cJSON_AddNumberToObject(e, "n_legit", (double)lab[0]);
    }
    return PL_OK;
}

int cmd_data_split(int argc, char **argv) {
    const char *cmd = "data split", *dir = NULL, *mix = NULL;
    int loso = 0;
    size_t mix_total = 0;
    pl_split_opts o;
    pl_split_opts_default(&o);
    char **files = malloc((size_t)argc * sizeof *files);
    int nf = 0;
    if (!files) return cli_fail(pl_error(PL_ERR_NOMEM, "out of memory"));
    for (int i = 1; i < argc; i++) {
        const char *v;
        int bad = 0;
        if (is_help(argv[i])) {
            free(files);
            return printf("%s", split_usage), 0;
        } else if (!strcmp(argv[i], "--out") || !strcmp(argv[i], "-o")) bad = !(dir = optval(cmd, argc, argv, &i));
        else if (!strcmp(argv[i], "--seed")) bad = !(v = optval(cmd, argc, argv, &i)) || !parse_seed(cmd, v, &o.seed);
        else if (!strcmp(argv[i], "--test-frac"))
            bad = !(v = optval(cmd, argc, argv, &i)) || !parse_frac(cmd, "--test-frac", v, &o.test_frac);
        else if (!strcmp(argv[i], "--val-frac"))
            bad = !(v = optval(cmd, argc, argv, &i)) || !parse_frac(cmd, "--val-frac", v, &o.val_frac);
        else if (!strcmp(argv[i], "--threshold"))
            bad = !(v = optval(cmd, argc, argv, &i)) || !parse_threshold(cmd, v, &o.dedup.threshold);
        else if (!strcmp(argv[i], "--mix")) bad = !(mix = optval(cmd, argc, argv, &i));
        else if (!strcmp(argv[i], "--mix-total")) {
            long t;
            bad = !(v = optval(cmd, argc, argv, &i)) || !cli_parse_int(cmd, "--mix-total", v, 1, 1000000000L, &t);
            if (!bad) mix_total = (size_t)t;
        }
        else if (!strcmp(argv[i], "--loso")) loso = 1;
        else if (argv[i][0] == '-') bad = (cli_usage_error(cmd, "unknown option '%s'", argv[i]), 1);
        else files[nf++] = argv[i];
        if (bad) {
            free(files);
            return EXIT_USAGE;
        }
    }
    if (!nf || !dir) {
        free(files);
        return cli_usage_error(cmd, "needs IN.jsonl... and --out DIR");
    }
    if (o.test_frac + o.val_frac >= 1) {
        free(files);
        return cli_usage_error(cmd, "--test-frac + --val-frac must be below 1");
    }
    /* --mix src=N,... */
    mix_item items[64];
    int nmix = 0, weights = 0, caps = 0;
    if (mix) {
        char *m = strdup(mix), *save = NULL;
        int bad = !m;
        for (char *kv = m ? strtok_r(m, ",", &save) : NULL; kv && !bad; kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            long cap = 0;
            double w = 0;
            if (nmix == 64) bad = (cli_usage_error(cmd, "--mix: at most 64 sources"), 1);
            else if (!eq || eq == kv) bad = (cli_usage_error(cmd, "--mix expects src=N,src=N (got '%s')", kv), 1);
            else if (*eq = 0, strchr(eq + 1, '.')) {
                /* a weight: the source's share of the mixture */
                if (!cli_parse_double(cmd, "--mix", eq + 1, &w)) bad = 1;
                else if (!(w > 0 && w <= 1)) bad = (cli_usage_error(cmd, "--mix: weight of %s must be in (0, 1]", kv), 1);
                weights = 1;
            } else if (!cli_parse_int(cmd, "--mix", eq + 1, 0, 1000000000L, &cap)) bad = 1;
            else caps = 1;
            if (!bad) {
                items[nmix].name = strdup(kv);
                items[nmix].w = w;
                items[nmix++].cap = (size_t)cap;
            }
        }
        free(m);
        if (!bad && weights && caps)
            bad = (cli_usage_error(cmd, "--mix: give either caps (src=N) or weights (src=0.5), not both"), 1);
        if (!bad && !weights && mix_total)
            bad = (cli_usage_error(cmd, "--mix-total needs weights in --mix (src=0.5,...)"), 1);
        if (bad) {
            for (int k = 0; k < nmix; k++) free(items[k].name);
            free(files);
            return EXIT_USAGE;
        }
    }
    pl_records rs = {0};
    uint8_t *part = NULL;
    size_t *cluster = NULL;
    double t0 = pl_time_now();
    pl_status st = read_all(files, nf, &rs);
    if (!st) {
        part = malloc(rs.n ? rs.n : 1);
        cluster = malloc((rs.n ? rs.n : 1) * sizeof *cluster);
        if (!part || !cluster) st = pl_error(PL_ERR_NOMEM, "out of memory");
    }
    if (!st) st = pl_split_assign(&rs, &o, part, cluster);
    /* source names, sorted unique */
    char **srcs = NULL;
    size_t ns = 0;
    if (!st) {
        srcs = malloc((rs.n ? rs.n : 1) * sizeof *srcs);
        if (!srcs) st = pl_error(PL_ERR_NOMEM, "out of memory");
        for (size_t i = 0; !st && i < rs.n; i++) {
            size_t k = 0;
            while (k < ns && strcmp(srcs[k], rs.v[i].source)) k++;
            if (k == ns) srcs[ns++] = rs.v[i].source;
        }
        for (size_t a = 1; a < ns; a++)
            for (size_t b = a; b > 0 && strcmp(srcs[b], srcs[b - 1]) < 0; b--) {
                char *t = srcs[b];
                srcs[b] = srcs[b - 1];
                srcs[b - 1] = t;
            }
        for (int k = 0; !st && k < nmix; k++) {
            size_t j = 0;
            while (j < ns && strcmp(srcs[j], items[k].name)) j++;
            if (j == ns) st = pl_error(PL_ERR_INVALID, "--mix: no source named '%s' in the input", items[k].name);
        }
    }
    /* weights -> caps: shares w_s / sum(w) of a total that is --mix-total or
     * the largest every listed source can fill */
    if (!st && weights) {
        double wsum = 0, best = -1;
        for (int k = 0; k < nmix; k++) wsum += items[k].w;
        for (int k = 0; !st && k < nmix; k++) {
            size_t *idx = NULL, avail = 0;
            st = pl_split_select(&rs, part, PL_PART_TRAIN, items[k].name, 0, o.seed, &idx, &avail);
            free(idx);
            double t = (double)avail * wsum / items[k].w;
            if (best < 0 || t < best) best = t;
        }
        double total = mix_total ? (double)mix_total : best;
        for (int k = 0; !st && k < nmix; k++) {
            items[k].cap = (size_t)llround(total * items[k].w / wsum);
            if (items[k].cap == 0) items[k].cap = 1;
        }
        if (!st && mix_total && (double)mix_total > best + 0.5)
            pl_log(PL_LOG_WARN, "--mix-total %zu exceeds what the sources can fill in proportion (%.0f); some get fewer",
                   mix_total, best);
    }
    if (!st) st = pl_mkdirs(dir);
    cJSON *man = cJSON_CreateObject(), *comps = cJSON_CreateArray();
    if (!st && (!man || !comps)) st = pl_error(PL_ERR_NOMEM, "out of memory");
    /* narrow: one directory per source */
    size_t *gen[3] = {0}, gen_n[3] = {0};
    size_t *per_idx[3] = {0}, per_n[3] = {0};
    for (size_t s = 0; !st && s < ns; s++) {
        char sub[300];
        safe_name(srcs[s], sub, sizeof sub);
        int mi = -1;
        for (int k = 0; k < nmix; k++)
            if (!strcmp(items[k].name, srcs[s])) mi = k;
        for (int p = 0; p < 3 && !st; p++) {
            free(per_idx[p]);
            per_idx[p] = NULL;
            st = pl_split_select(&rs, part, p, srcs[s], 0, o.seed, &per_idx[p], &per_n[p]);
        }
        if (!st) st = write_composition(dir, sub, "narrow", &rs, per_idx, per_n, comps);
        /* generalist: capped train, full val/test of the mixture's sources */
        if (!st && (!nmix || mi >= 0)) {
            for (int p = 0; p < 3 && !st; p++) {
                size_t *idx = NULL, n = 0;
                st = pl_split_select(&rs, part, p, srcs[s], p == PL_PART_TRAIN && mi >= 0 ? items[mi].cap : 0, o.seed,
                                     &idx, &n);
                if (!st && !append_idx(&gen[p], &gen_n[p], idx, n)) st = pl_error(PL_ERR_NOMEM, "out of memory");
                free(idx);
            }
        }
    }
    if (!st) st = write_composition(dir, "generalist", "generalist", &rs, gen, gen_n, comps);
    /* leave one source out */
    for (size_t h = 0; loso && !st && h < ns; h++) {
        size_t *l[3] = {0}, ln[3] = {0};
        for (size_t s = 0; !st && s < ns; s++)
            for (int p = 0; p < 3 && !st; p++) {
                if ((s == h) != (p == PL_PART_TEST)) continue;
                size_t *idx = NULL, n = 0;
                st = pl_split_select(&rs, part, p, srcs[s], 0, o.seed, &idx, &n);
                if (!st && !append_idx(&l[p], &ln[p], idx, n)) st = pl_error(PL_ERR_NOMEM, "out of memory");
                free(idx);
            }
        char sub[320], nm[300];
        safe_name(srcs[h], nm, sizeof nm);
        snprintf(sub, sizeof sub, "loso-%s", nm);
        if (!st) st = write_composition(dir, sub, "leave-one-source-out", &rs, l, ln, comps);
        for (int p = 0; p < 3; p++) free(l[p]);
    }
    /* assignment.jsonl: what went where, record by record */
    if (!st) {
        char path[4096];
        snprintf(path, sizeof path, "%s/assignment.jsonl", dir);
        pl_afile f;
        st = pl_afile_open(&f, path);
        for (size_t i = 0; !st && i < rs.n; i++) {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddStringToObject(a, "id", rs.v[i].id);
            cJSON_AddStringToObject(a, "source", rs.v[i].source);
            cJSON_AddNumberToObject(a, "label", rs.v[i].label);
            cJSON_AddStringToObject(a, "split", part_name[part[i]]);
            cJSON_AddNumberToObject(a, "cluster", (double)cluster[i]);
            char *s = cJSON_PrintUnformatted(a);
            cJSON_Delete(a);
            if (!s) st = pl_error(PL_ERR_NOMEM, "out of memory");
            else {
                st = pl_afile_printf(&f, "%s\n", s);
                cJSON_free(s);
            }
        }
        if (st) pl_afile_abort(&f);
        else st = pl_afile_commit(&f);
    }
    int rc = 0;
    if (st) {
        rc = cli_fail(st);
        cJSON_Delete(man);
        cJSON_Delete(comps);
    } else {
        size_t multi = 0, dups = 0;
        size_t *cs = calloc(rs.n ? rs.n : 1, sizeof *cs);
        for (size_t i = 0; cs && i < rs.n; i++) cs[cluster[i]]++;
        for (size_t i = 0; cs && i < rs.n; i++) multi += cs[i] > 1, dups += cs[i] > 1 ? cs[i] - 1 : 0;
        free(cs);
        cJSON_AddStringToObject(man, "tool", "phishlens data split");
        cJSON_AddNumberToObject(man, "seed", (double)o.seed);
        cJSON_AddNumberToObject(man, "test_frac", o.test_frac);
        cJSON_AddNumberToObject(man, "val_frac", o.val_frac);
        cJSON_AddNumberToObject(man, "near_duplicate_threshold", o.dedup.threshold);
        cJSON *inputs = cJSON_AddArrayToObject(man, "inputs");
        for (int f = 0; f < nf; f++) cJSON_AddItemToArray(inputs, cJSON_CreateString(files[f]));
        cJSON_AddNumberToObject(man, "records", (double)rs.n);
        cJSON_AddNumberToObject(man, "clusters_with_duplicates", (double)multi);
        cJSON_AddNumberToObject(man, "records_in_those_clusters_beyond_first", (double)dups);
        if (nmix) {
            cJSON *mj = cJSON_AddObjectToObject(man, "mix_caps");
            for (int k = 0; k < nmix; k++) cJSON_AddNumberToObject(mj, items[k].name, (double)items[k].cap);
            if (weights) {
                cJSON *wj = cJSON_AddObjectToObject(man, "mix_weights");
                for (int k = 0; k < nmix; k++) cJSON_AddNumberToObject(wj, items[k].name, items[k].w);
            }
        }
        cJSON_AddStringToObject(man, "assignment", "assignment.jsonl");
        cJSON_AddItemToObject(man, "compositions", comps);
        char path[4096];
        snprintf(path, sizeof path, "%s/manifest.json", dir);
        int ncomp = cJSON_GetArraySize(comps);
        rc = emit_json(man, path); /* frees man and comps */
        if (!rc && !cli_quiet) {
            size_t cnt[3] = {0};
            for (size_t i = 0; i < rs.n; i++) cnt[part[i]]++;
            printf("%zu records from %zu sources: train %zu, val %zu, test %zu; %zu near-duplicate clusters kept "
                   "whole; %d compositions; %.2f s; wrote %s/manifest.json\n",
                   rs.n, ns, cnt[0], cnt[1], cnt[2], multi, ncomp, pl_time_now() - t0, dir);
        }
    }
    for (int p = 0; p < 3; p++) free(gen[p]), free(per_idx[p]);
    for (int k = 0; k < nmix; k++) free(items[k].name);
    free(srcs);
    free(part);
    free(cluster);
    free(files);
    pl_records_free(&rs);
    return rc;
}

/* ---- audit ---- */

static const char audit_usage[] =
    "usage: phishlens data audit --records R.jsonl --pred OOF.jsonl [--threshold T] [-o OUT.json]\n"
    "  Label-noise audit from out-of-fold predictions (lines {\"id\",\"p_phish\"}):\n"
    "  confident learning (per-class thresholds, confident joint, prune by noise\n"
    "  rate) and, for comparison, the naive rule p(other class) > T (default 0.91).\n";

typedef struct {
    const char *id;
    double p;
    size_t line;
} pred;

static int cmp_pred(const void *a, const void *b) { return strcmp(((const pred *)a)->id, ((const pred *)b)->id); }

static pl_status read_preds(const char *path, pred **out, size_t *n_out, char **data_out, cJSON ***keep, size_t *nkeep) {
    char *data;
    size_t len;
    pl_status st = pl_read_file(path, &data, &len);
    if (st) return st;
    pred *v = NULL;
    size_t n = 0, cap = 0, lineno = 0;
    cJSON **objs = NULL;
    for (size_t pos = 0; pos < len && !st;) {
        size_t e = pos;
        while (e < len && data[e] != '\n') e++;
        lineno++;
        size_t l = e - pos;
        int blank = 1;
        for (size_t i = 0; i < l && blank; i++) blank = data[pos + i] == ' ' || data[pos + i] == '\t' || data[pos + i] == '\r';
        if (!blank) {
            cJSON *o = cJSON_ParseWithLength(data + pos, l);
            cJSON *id = o ? cJSON_GetObjectItemCaseSensitive(o, "id") : NULL;
            cJSON *p = o ? cJSON_GetObjectItemCaseSensitive(o, "p_phish") : NULL;
            if (!o || !cJSON_IsObject(o)) st = pl_error(PL_ERR_FORMAT, "%s:%zu: not a JSON object", path, lineno);
            else if (!cJSON_IsString(id)) st = pl_error(PL_ERR_FORMAT, "%s:%zu: field \"id\" must be a string", path, lineno);
            else if (!cJSON_IsNumber(p) || !(p->valuedouble >= 0 && p->valuedouble <= 1))
                st = pl_error(PL_ERR_FORMAT, "%s:%zu: field \"p_phish\" must be a number in [0, 1]", path, lineno);
            if (!st && n == cap) {
                cap = cap ? cap * 2 : 256;
                pred *nv = realloc(v, cap * sizeof *nv);
                cJSON **no = realloc(objs, cap * sizeof *no);
                if (nv) v = nv;
                if (no) objs = no;
                if (!nv || !no) st = pl_error(PL_ERR_NOMEM, "out of memory");
            }
            if (!st) {
                objs[n] = o;
                v[n++] = (pred){id->valuestring, p->valuedouble, lineno};
            } else {
                cJSON_Delete(o);
            }
        }
        pos = e + 1;
    }
    *out = v;
    *n_out = n;
    *data_out = data;
    *keep = objs;
    *nkeep = n;
    if (!st) {
        qsort(v, n, sizeof *v, cmp_pred);
        for (size_t i = 1; i < n && !st; i++)
            if (!strcmp(v[i].id, v[i - 1].id))
                st = pl_error(PL_ERR_FORMAT, "%s:%zu: id \"%s\" already given on line %zu", path,
                              v[i].line > v[i - 1].line ? v[i].line : v[i - 1].line, v[i].id,
                              v[i].line < v[i - 1].line ? v[i].line : v[i - 1].line);
    }
    return st;
}

int cmd_data_audit(int argc, char **argv) {
    const char *cmd = "data audit", *rp = NULL, *pp = NULL, *out = NULL;
    double thr = 0.91;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (is_help(argv[i])) return printf("%s", audit_usage), 0;
        else if (!strcmp(argv[i], "--records")) {
            if (!(rp = optval(cmd, argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(argv[i], "--pred")) {
            if (!(pp = optval(cmd, argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(argv[i], "-o")) {
            if (!(out = optval(cmd, argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(argv[i], "--threshold")) {
            if (!(v = optval(cmd, argc, argv, &i)) || !cli_parse_double(cmd, "--threshold", v, &thr)) return EXIT_USAGE;
            if (!(thr >= 0.5 && thr < 1)) return cli_usage_error(cmd, "--threshold must be in [0.5, 1), got %s", v);
        } else return cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
    }
    if (!rp || !pp) return cli_usage_error(cmd, "needs --records and --pred");
    pl_records rs = {0};
    pred *pv = NULL;
    size_t np = 0, nkeep = 0;
    char *pdata = NULL;
    cJSON **keep = NULL;
    int *lab = NULL;
    double *p1 = NULL;
    size_t *ri = NULL, n = 0, missing = 0, unlabelled = 0;
    pl_audit_result ar = {0};
    pl_status st = pl_records_read_jsonl(rp, &rs);
    if (!st) st = read_preds(pp, &pv, &np, &pdata, &keep, &nkeep);
    if (!st) {
        lab = malloc((rs.n ? rs.n : 1) * sizeof *lab);
        p1 = malloc((rs.n ? rs.n : 1) * sizeof *p1);
        ri = malloc((rs.n ? rs.n : 1) * sizeof *ri);
        if (!lab || !p1 || !ri) st = pl_error(PL_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; !st && i < rs.n; i++) {
        if (rs.v[i].label != 0 && rs.v[i].label != 1) {
            unlabelled++;
            continue;
        }
        pred key = {rs.v[i].id, 0, 0};
        pred *f = bsearch(&key, pv, np, sizeof *pv, cmp_pred);
        if (!f) {
            missing++;
            continue;
        }
        lab[n] = rs.v[i].label;
        p1[n] = f->p;
        ri[n++] = i;
    }
    if (!st) st = pl_audit_confident(lab, p1, n, thr, &ar);
    int rc = 0;
    if (st) rc = cli_fail(st);
    else {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "records", rp);
        cJSON_AddStringToObject(j, "predictions", pp);
        cJSON_AddNumberToObject(j, "n_audited", (double)n);
        cJSON_AddNumberToObject(j, "n_unlabelled_skipped", (double)unlabelled);
        cJSON_AddNumberToObject(j, "n_without_prediction", (double)missing);
        cJSON_AddNumberToObject(j, "n_predictions_unmatched", (double)(np - n));
        cJSON *cl = cJSON_AddObjectToObject(j, "confident_learning");
        double thr_v[2] = {ar.thr[0], ar.thr[1]};
        cJSON_AddItemToObject(cl, "thresholds_legit_phish", cJSON_CreateDoubleArray(thr_v, 2));
        cJSON *cjm = cJSON_AddArrayToObject(cl, "confident_joint");
        cJSON *cal = cJSON_AddArrayToObject(cl, "confident_joint_calibrated");
        for (int i = 0; i < 2; i++) {
            double a[2] = {(double)ar.cj[i][0], (double)ar.cj[i][1]}, b[2] = {ar.cj_cal[i][0], ar.cj_cal[i][1]};
            cJSON_AddItemToArray(cjm, cJSON_CreateDoubleArray(a, 2));
            cJSON_AddItemToArray(cal, cJSON_CreateDoubleArray(b, 2));
        }
        cJSON_AddNumberToObject(cl, "estimated_noise_rate", ar.noise_rate);
        cJSON_AddNumberToObject(cl, "n_flagged_prune_by_noise_rate", (double)ar.n_prune);
        cJSON_AddNumberToObject(cl, "n_flagged_confident_joint", (double)ar.n_cj);
        cJSON *nv = cJSON_AddObjectToObject(j, "naive_rule");
        cJSON_AddNumberToObject(nv, "threshold", thr);
        cJSON_AddNumberToObject(nv, "n_flagged", (double)ar.n_naive);
        size_t both = 0;
        for (size_t x = 0; x < n; x++) both += ar.flag_prune[x] && ar.flag_naive[x];
        cJSON_AddNumberToObject(j, "n_flagged_by_both", (double)both);
        cJSON *fl = cJSON_AddArrayToObject(j, "flagged");
        for (size_t x = 0; x < n; x++) {
            if (!ar.flag_prune[x] && !ar.flag_cj[x] && !ar.flag_naive[x]) continue;
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "id", rs.v[ri[x]].id);
            cJSON_AddStringToObject(e, "source", rs.v[ri[x]].source);
            cJSON_AddNumberToObject(e, "label", lab[x]);
            cJSON_AddNumberToObject(e, "p_phish", p1[x]);
            cJSON_AddBoolToObject(e, "prune_by_noise_rate", ar.flag_prune[x]);
            cJSON_AddBoolToObject(e, "confident_joint", ar.flag_cj[x]);
            cJSON_AddBoolToObject(e, "naive_rule", ar.flag_naive[x]);
            cJSON_AddItemToArray(fl, e);
        }
        if (!cli_quiet && out)
            printf("%zu audited: confident learning flags %zu (estimated noise %.1f%%), confident joint %zu, "
                   "naive p>%.2f rule %zu, both %zu; wrote %s\n",
                   n, ar.n_prune, 100 * ar.noise_rate, ar.n_cj, thr, ar.n_naive, both, out);
        rc = emit_json(j, out);
    }
    pl_audit_result_free(&ar);
    for (size_t k = 0; k < nkeep; k++) cJSON_Delete(keep[k]);
    free(keep);
    free(pdata);
    free(pv);
    free(lab);
    free(p1);
    free(ri);
    pl_records_free(&rs);
    return rc;
}

/* ---- synth ---- */

static const char synth_usage[] =
    "usage: phishlens data synth --out DIR [--seed S] [--n N] [--pairs N] [--phish-rate R]\n"
    "                            [--shortcut none|SPEC]\n"
    "  Synthetic phishing/legitimate corpus in six styles (one source each), with a\n"
    "  planted shortcut and minimal pairs. SPEC: text=...;where=footer|subject;\n"
    "  sources=bank,parcel|all;rate=0.8;other=0.05;label=1 (defaults shown; text\n"
    "  defaults to a mail-scanner footer). Writes DIR/records.jsonl, DIR/<style>.jsonl,\n"
    "  DIR/minimal_pairs.jsonl (pair members, held out), DIR/pairs.jsonl, DIR/manifest.json.\n";

int cmd_data_synth(int argc, char **argv) {
    const char *cmd = "data synth", *dir = NULL;
    pl_synth_opts o;
    pl_synth_opts_default(&o);
    for (int i = 1; i < argc; i++) {
        const char *v;
        long k;
        if (is_help(argv[i])) return printf("%s", synth_usage), 0;
        else if (!strcmp(argv[i], "--out") || !strcmp(argv[i], "-o")) {
            if (!(dir = optval(cmd, argc, argv, &i))) return EXIT_USAGE;
        } else if (!strcmp(argv[i], "--seed")) {
            if (!(v = optval(cmd, argc, argv, &i)) || !parse_seed(cmd, v, &o.seed)) return EXIT_USAGE;
        } else if (!strcmp(argv[i], "--n")) {
            if (!(v = optval(cmd, argc, argv, &i)) || !cli_parse_int(cmd, "--n", v, 12, 10000000L, &k)) return EXIT_USAGE;
            o.n = (size_t)k;
        } else if (!strcmp(argv[i], "--pairs")) {
            if (!(v = optval(cmd, argc, argv, &i)) || !cli_parse_int(cmd, "--pairs", v, 0, 1000000L, &k)) return EXIT_USAGE;
            o.n_pairs = (size_t)k;
        } else if (!strcmp(argv[i], "--phish-rate")) {
            if (!(v = optval(cmd, argc, argv, &i)) || !cli_parse_double(cmd, "--phish-rate", v, &o.phish_rate))
                return EXIT_USAGE;
            if (!(o.phish_rate >= 0 && o.phish_rate <= 1)) return cli_usage_error(cmd, "--phish-rate must be in [0, 1]");
        } else if (!strcmp(argv[i], "--shortcut")) {
            if (!(v = optval(cmd, argc, argv, &i))) return EXIT_USAGE;
            pl_status st = pl_synth_parse_shortcut(v, &o);
            if (st) return cli_usage_error(cmd, "%s", pl_errmsg());
        } else return cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
    }
    if (!dir) return cli_usage_error(cmd, "needs --out DIR");
    double t0 = pl_time_now();
    pl_records rs = {0}, pr = {0};
    cJSON *pairs = NULL, *man = NULL;
    pl_status st = pl_synth_generate(&o, &rs, &pr, &pairs, &man);
    double tgen = pl_time_now() - t0;
    char path[4096];
    if (!st) st = pl_mkdirs(dir);
    if (!st) {
        snprintf(path, sizeof path, "%s/records.jsonl", dir);
        st = pl_records_write_jsonl(path, &rs);
    }
    for (int s = 0; !st && s < pl_synth_n_styles(); s++) {
        size_t *idx = malloc((rs.n ? rs.n : 1) * sizeof *idx), m = 0;
        if (!idx) {
            st = pl_error(PL_ERR_NOMEM, "out of memory");
            break;
        }
        for (size_t i = 0; i < rs.n; i++)
            if (!strcmp(rs.v[i].source, pl_synth_style_name(s))) idx[m++] = i;
        pl_records view = {0};
        view.v = malloc((m ? m : 1) * sizeof *view.v);
        if (!view.v) st = pl_error(PL_ERR_NOMEM, "out of memory");
        for (size_t i = 0; !st && i < m; i++) view.v[i] = rs.v[idx[i]];
        view.n = m;
        snprintf(path, sizeof path, "%s/%s.jsonl", dir, pl_synth_style_name(s));
        if (!st) st = pl_records_write_jsonl(path, &view);
        free(view.v);
        free(idx);
    }
    if (!st) {
        snprintf(path, sizeof path, "%s/minimal_pairs.jsonl", dir);
        st = pl_records_write_jsonl(path, &pr);
    }
    if (!st) {
        pl_buf b = {0};
        cJSON *e;
        cJSON_ArrayForEach(e, pairs) {
            char *s = cJSON_PrintUnformatted(e);
            if (!s || pl_buf_printf(&b, "%s\n", s)) st = pl_error(PL_ERR_NOMEM, "out of memory");
            cJSON_free(s);
            if (st) break;
        }
        snprintf(path, sizeof path, "%s/pairs.jsonl", dir);
        if (!st) st = pl_write_file_atomic(path, b.data ? b.data : "", b.len);
        pl_buf_free(&b);
    }
    int rc = 0;
    if (st) {
        rc = cli_fail(st);
        cJSON_Delete(man);
    } else {
        cJSON_AddNumberToObject(man, "generation_seconds", tgen);
        cJSON *files = cJSON_AddObjectToObject(man, "files");
        cJSON_AddStringToObject(files, "records", "records.jsonl");
        cJSON_AddStringToObject(files, "per_source", "<style>.jsonl");
        cJSON_AddStringToObject(files, "pair_records", "minimal_pairs.jsonl");
        cJSON_AddStringToObject(files, "pairs", "pairs.jsonl");
        snprintf(path, sizeof path, "%s/manifest.json", dir);
        rc = emit_json(man, path);
        if (!rc && !cli_quiet)
            printf("synth: %zu emails in %d styles, %d minimal pairs (%zu pair records), seed %llu, shortcut %s; "
                   "generated in %.3f s, written in %.3f s to %s\n",
                   rs.n, pl_synth_n_styles(), cJSON_GetArraySize(pairs), pr.n, (unsigned long long)o.seed,
                   o.shortcut ? o.text : "none", tgen, pl_time_now() - t0 - tgen, dir);
    }
    cJSON_Delete(pairs);
    pl_records_free(&rs);
    pl_records_free(&pr);
    return rc;
}
