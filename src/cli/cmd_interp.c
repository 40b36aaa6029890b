/* cmd_interp.c — `phishlens interp <subcommand>`: interpretability analyses
 * that run on an activation cache alone (docs/interp.md):
 *
 *   cache FILE          what a cache holds (examples, hooks, sources, labels)
 *   probe               linear-probe depth curve (label or source identity)
 *   transfer            probe trained on one source, tested on another
 *   tuned-fit           fit a ridge tuned lens to the final residual
 *
 * and, running the model with hooks (cmd_interp_model.c):
 *
 *   cache -m MODEL      build a cache from a dataset
 *   lens, patch, dla, attn, ablate
 */
#include "cli.h"

#include <cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "interp/interp.h"

typedef struct {
    const char *cmd, *cache, *hook, *layers, *pos, *target, *out, *dirs, *final_hook, *train, *test, *Cs;
    long k, layer, final_layer;
    uint64_t seed;
    double C, lambda;
    int raw, json;
} opts;

static int need(const char *cmd, const char *opt, const char *v) {
    if (v) return 1;
    cli_usage_error(cmd, "%s needs a value", opt);
    return 0;
}

/* Returns -1 on success, else an exit code. */
static int parse(int argc, char **argv, const char *cmd, opts *o) {
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->pos = "answer";
    o->target = "label";
    o->k = 5;
    o->seed = 1;
    o->C = 1.0;
    o->lambda = 1.0;
    o->layer = o->final_layer = -2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **sv = NULL;
        if (!strcmp(a, "--cache")) sv = &o->cache;
        else if (!strcmp(a, "--hook")) sv = &o->hook;
        else if (!strcmp(a, "--layers")) sv = &o->layers;
        else if (!strcmp(a, "--pos")) sv = &o->pos;
        else if (!strcmp(a, "--target")) sv = &o->target;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) sv = &o->out;
        else if (!strcmp(a, "--directions")) sv = &o->dirs;
        else if (!strcmp(a, "--final-hook")) sv = &o->final_hook;
        else if (!strcmp(a, "--train")) sv = &o->train;
        else if (!strcmp(a, "--test")) sv = &o->test;
        else if (!strcmp(a, "--C")) sv = &o->Cs;
        if (sv) {
            if (!need(cmd, a, v)) return EXIT_USAGE;
            *sv = v;
            i++;
        } else if (!strcmp(a, "--k")) {
            if (!cli_parse_int(cmd, a, v, 2, 100, &o->k)) return EXIT_USAGE;
            i++;
        } else if (!strcmp(a, "--layer")) {
            if (!cli_parse_int(cmd, a, v, -1, 1000000, &o->layer)) return EXIT_USAGE;
            i++;
        } else if (!strcmp(a, "--final-layer")) {
            if (!cli_parse_int(cmd, a, v, -1, 1000000, &o->final_layer)) return EXIT_USAGE;
            i++;
        } else if (!strcmp(a, "--seed")) {
            long s;
            if (!cli_parse_int(cmd, a, v, 0, 2147483647L, &s)) return EXIT_USAGE;
            o->seed = (uint64_t)s;
            i++;
        } else if (!strcmp(a, "--lambda")) {
            if (!cli_parse_double(cmd, a, v, &o->lambda)) return EXIT_USAGE;
            if (!(o->lambda >= 0)) return cli_usage_error(cmd, "--lambda must be >= 0");
            i++;
        } else if (!strcmp(a, "--raw")) o->raw = 1;
        else if (!strcmp(a, "--json")) o->json = 1;
        else if (a[0] == '-') return cli_usage_error(cmd, "unknown option '%s'", a);
        else if (!o->cache) o->cache = a;
        else return cli_usage_error(cmd, "unexpected argument '%s'", a);
    }
    if (!o->cache) return cli_usage_error(cmd, "no cache file (--cache FILE)");
    return -1;
}

/* "0-11", "0,3,5" or "all" (every layer >= 0 stored for hook). */
static int parse_layers(const opts *o, const pl_actcache *c, int **out, size_t *n) {
    size_t cap = 64, m = 0;
    int *v = malloc(cap * sizeof *v);
    if (!v) return 0;
    const char *s = o->layers ? o->layers : "all";
    if (!strcmp(s, "all")) {
        for (size_t i = 0; i < pl_actcache_n_slots(c); i++) {
            const pl_act_slot *sl = pl_actcache_slot(c, i);
            if (sl->layer >= 0 && !strcmp(sl->name, o->hook)) {
                if (m == cap) v = realloc(v, (cap *= 2) * sizeof *v);
                v[m++] = sl->layer;
            }
        }
    } else {
        const char *p = s;
        while (*p) {
            char *end;
            errno = 0;
            long a = strtol(p, &end, 10), b = a;
            if (end == p || errno || a < 0) goto bad;
            if (*end == '-') {
                const char *q = end + 1;
                b = strtol(q, &end, 10);
                if (end == q || errno || b < a || b - a > 100000) goto bad;
            }
            for (long L = a; L <= b; L++) {
                if (m == cap) v = realloc(v, (cap *= 2) * sizeof *v);
                v[m++] = (int)L;
            }
            if (*end == ',') end++;
            else if (*end) goto bad;
            p = end;
        }
    }
    if (m == 0) {
        free(v);
        cli_usage_error(o->cmd, "no layers of hook '%s' selected (--layers %s)", o->hook, s);
        return 0;
    }
    *out = v;
    *n = m;
    return 1;
bad:
    free(v);
    cli_usage_error(o->cmd, "--layers expects 'all', 'A-B' or 'A,B,C', got '%s'", s);
    return 0;
}

static int write_or_print(const opts *o, cJSON *j, const char *path) {
    pl_status st = PL_OK;
    if (path) st = pl_interp_write_json(path, j);
    else if (o->json) {
        char *s = cJSON_Print(j);
        if (s) printf("%s\n", s);
        cJSON_free(s);
    }
    return st == PL_OK ? 0 : cli_fail(st);
}

static int sub_cache(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) return cli_interp_cache_build(argc, argv);
    opts o;
    int rc = parse(argc, argv, "interp cache", &o);
    if (rc >= 0) return rc;
    pl_actcache *c;
    pl_status st = pl_actcache_open(o.cache, &c);
    if (st != PL_OK) return cli_fail(st);
    size_t n = pl_actcache_n_examples(c), lab[3] = {0};
    int64_t tok = 0;
    for (size_t i = 0; i < n; i++) {
        const pl_act_meta *m = pl_actcache_meta(c, i);
        lab[m->label < 0 ? 2 : m->label]++;
        tok += m->n_tokens;
    }
    printf("%s: %zu examples (%zu phishing, %zu legitimate, %zu unlabeled), mean %.1f tokens\n", o.cache, n, lab[1],
           lab[0], lab[2], n ? (double)tok / (double)n : 0.0);
    int *y = malloc((n ? n : 1) * sizeof *y), nc = 0;
    char **names = NULL;
    size_t nn = 0;
    if (y && pl_actcache_labels(c, "source", y, &nc, &names, &nn) == PL_OK) {
        printf("sources:");
        for (size_t s = 0; s < nn; s++) {
            size_t cnt = 0;
            for (size_t i = 0; i < n; i++) cnt += y[i] == (int)s;
            printf(" %s (%zu)", names[s], cnt);
        }
        printf("\n");
        pl_interp_free_names(names, nn);
    } else if (n) {
        printf("sources: %s only\n", pl_actcache_meta(c, 0)->source);
    }
    free(y);
    printf("hooks (%zu):\n", pl_actcache_n_slots(c));
    for (size_t s = 0; s < pl_actcache_n_slots(c); s++) {
        const pl_act_slot *sl = pl_actcache_slot(c, s);
        char full[320];
        pl_hook_fullname(sl->name, sl->layer, full, sizeof full);
        printf("  %-40s d=%u\n", full, sl->d);
    }
    pl_actcache_close(c);
    return 0;
}

static int parse_Cs(const opts *o, double *Cs, size_t *n) {
    *n = 0;
    if (!o->Cs) return 1;
    const char *p = o->Cs;
    while (*p && *n < 32) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !(v > 0)) {
            cli_usage_error(o->cmd, "--C expects positive numbers separated by commas, got '%s'", o->Cs);
            return 0;
        }
        Cs[(*n)++] = v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') {
            cli_usage_error(o->cmd, "--C expects positive numbers separated by commas, got '%s'", o->Cs);
            return 0;
        }
    }
    return 1;
}

static int sub_probe(int argc, char **argv) {
    opts o;
    int rc = parse(argc, argv, "interp probe", &o);
    if (rc >= 0) return rc;
    if (!o.hook) o.hook = "hook_resid_post";
    pl_pos_sel sel;
    pl_status st = pl_pos_sel_parse(o.pos, &sel);
    if (st != PL_OK) return cli_usage_error(o.cmd, "%s", pl_errmsg());
    double Cs[32];
    size_t nC;
    if (!parse_Cs(&o, Cs, &nC)) return EXIT_USAGE;
    pl_actcache *c;
    if ((st = pl_actcache_open(o.cache, &c)) != PL_OK) return cli_fail(st);
    int *layers;
    size_t nl;
    if (!parse_layers(&o, c, &layers, &nl)) {
        pl_actcache_close(c);
        return EXIT_USAGE;
    }
    pl_probe_opts po = pl_probe_defaults();
    po.k = (int)o.k;
    po.seed = o.seed;
    po.standardize = !o.raw;
    if (nC) po.Cs = Cs, po.n_C = nC;
    pl_probe_curve pc;
    st = pl_probe_depth(c, o.hook, layers, nl, sel, o.target, &po, &pc);
    free(layers);
    pl_actcache_close(c);
    if (st != PL_OK) return cli_fail(st);
    pl_buf b = {0};
    if (!cli_quiet && pl_probe_curve_summary(&pc, &b) == PL_OK && b.data) fputs(b.data, o.json && !o.out ? stderr : stdout);
    pl_buf_free(&b);
    cJSON *j = pl_probe_curve_json(&pc);
    cJSON_AddStringToObject(j, "title", strcmp(o.target, "source") ? "probe: label by layer" : "probe: source identity by layer");
    cJSON_AddStringToObject(j, "hook", o.hook);
    cJSON_AddStringToObject(j, "position", o.pos);
    rc = write_or_print(&o, j, o.out);
    cJSON_Delete(j);
    if (rc == 0 && o.dirs) {
        j = pl_probe_directions_json(&pc);
        rc = write_or_print(&o, j, o.dirs);
        cJSON_Delete(j);
    }
    pl_probe_curve_free(&pc);
    return rc;
}

static int sub_transfer(int argc, char **argv) {
    opts o;
    int rc = parse(argc, argv, "interp transfer", &o);
    if (rc >= 0) return rc;
    if (!o.hook) o.hook = "hook_resid_post";
    if (o.layer < -1) return cli_usage_error(o.cmd, "--layer L is required");
    if (!o.train || !o.test) return cli_usage_error(o.cmd, "--train SOURCE and --test SOURCE are required");
    if (o.Cs) {
        double Cs[32];
        size_t nC;
        if (!parse_Cs(&o, Cs, &nC)) return EXIT_USAGE;
        if (nC != 1) return cli_usage_error(o.cmd, "--C takes one value here");
        o.C = Cs[0];
    }
    pl_pos_sel sel;
    pl_status st = pl_pos_sel_parse(o.pos, &sel);
    if (st != PL_OK) return cli_usage_error(o.cmd, "%s", pl_errmsg());
    pl_actcache *c;
    if ((st = pl_actcache_open(o.cache, &c)) != PL_OK) return cli_fail(st);
    size_t n = pl_actcache_n_examples(c), d;
    int *y = malloc((n ? n : 1) * sizeof *y), *g = malloc((n ? n : 1) * sizeof *g), nc;
    float *X = NULL;
    pl_probe_transfer_result tr;
    st = (y && g) ? pl_actcache_labels(c, "label", y, &nc, NULL, NULL) : pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && st == PL_OK; i++) {
        const char *s = pl_actcache_meta(c, i)->source;
        g[i] = !strcmp(s, o.train) ? 0 : !strcmp(s, o.test) ? 1 : -1;
    }
    if (st == PL_OK) st = pl_actcache_matrix(c, o.hook, (int)o.layer, sel, &X, &n, &d);
    if (st == PL_OK) st = pl_probe_transfer(X, n, d, y, g, 0, 1, o.C, !o.raw, &tr);
    free(X), free(y), free(g);
    pl_actcache_close(c);
    if (st != PL_OK) return cli_fail(st);
    if (!cli_quiet)
        fprintf(o.json && !o.out ? stderr : stdout, "probe %s -> %s at %s layer %ld: acc %.3f auc %.3f (%zu train, %zu test)\n",
                o.train, o.test, o.hook, o.layer, tr.accuracy, tr.auc, tr.n_train, tr.n_test);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "train", o.train);
    cJSON_AddStringToObject(j, "test", o.test);
    cJSON_AddStringToObject(j, "hook", o.hook);
    cJSON_AddNumberToObject(j, "layer", (double)o.layer);
    cJSON_AddNumberToObject(j, "C", o.C);
    cJSON_AddNumberToObject(j, "n_train", (double)tr.n_train);
    cJSON_AddNumberToObject(j, "n_test", (double)tr.n_test);
    cJSON_AddNumberToObject(j, "accuracy", tr.accuracy);
    if (tr.auc == tr.auc) cJSON_AddNumberToObject(j, "auc", tr.auc);
    else cJSON_AddNullToObject(j, "auc");
    rc = write_or_print(&o, j, o.out);
    cJSON_Delete(j);
    return rc;
}

static int sub_tuned_fit(int argc, char **argv) {
    opts o;
    int rc = parse(argc, argv, "interp tuned-fit", &o);
    if (rc >= 0) return rc;
    if (!o.hook) o.hook = "hook_resid_post";
    if (!o.final_hook) o.final_hook = o.hook;
    if (o.final_layer < -1) return cli_usage_error(o.cmd, "--final-layer L is required");
    if (!o.out) return cli_usage_error(o.cmd, "-o LENS is required");
    pl_pos_sel sel;
    pl_status st = pl_pos_sel_parse(o.pos, &sel);
    if (st != PL_OK) return cli_usage_error(o.cmd, "%s", pl_errmsg());
    pl_actcache *c;
    if ((st = pl_actcache_open(o.cache, &c)) != PL_OK) return cli_fail(st);
    int *layers;
    size_t nl;
    if (!parse_layers(&o, c, &layers, &nl)) {
        pl_actcache_close(c);
        return EXIT_USAGE;
    }
    pl_tuned_lens tl;
    st = pl_tuned_lens_fit(c, o.hook, layers, nl, o.final_hook, (int)o.final_layer, sel, o.lambda, &tl);
    free(layers);
    pl_actcache_close(c);
    if (st == PL_OK) {
        st = pl_tuned_lens_save(o.out, &tl);
        if (st == PL_OK && !cli_quiet)
            printf("tuned lens: %zu layers, width %zu, lambda %g -> %s\n", tl.n_layers, tl.d, tl.lambda, o.out);
        pl_tuned_lens_free(&tl);
    }
    return st == PL_OK ? 0 : cli_fail(st);
}

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *usage;
} subs[] = {
    {"cache", sub_cache,
     "interp cache FILE  |  interp cache -m MODEL [--lora A] --input RECORDS.jsonl [--hooks resid_pre,attn_out,...]\n"
     "             [--layers all|A-B|A,B] [--positions answer|all] [--limit N] -o CACHE"},
    {"lens", cli_interp_lens,
     "interp lens -m MODEL --input RECORDS.jsonl [--limit N] [--example I] [-o lens.json] [--json]\n"
     "            | -m MODEL --cache CACHE [--hook hook_resid_post] [--tuned LENS]"},
    {"patch", cli_interp_patch,
     "interp patch -m MODEL --input RECORDS.jsonl (--pairs pairs.jsonl [--pair N] | --clean ID --corrupted ID)\n"
     "             [--hook resid_pre|attn_out|mlp_out|resid_mid|resid_post|z] [--noising] [-o grid.json]"},
    {"dla", cli_interp_dla, "interp dla -m MODEL --input RECORDS.jsonl [--limit N] [--top K] [-o dla.json]"},
    {"attn", cli_interp_attn,
     "interp attn -m MODEL --input RECORDS.jsonl [--example I] (--layer L | --top K) [-o attn.json]"},
    {"ablate", cli_interp_ablate,
     "interp ablate -m MODEL --input RECORDS.jsonl [--heads L.H,...|all] [--mlps L,...|all]\n"
     "              [--mode zero|mean|resample] [--positions answer|all] [--seed S]\n"
     "              [--remove-direction dirs.json --layer L] [--limit N] [-o effect.json]"},
    {"probe", sub_probe,
     "interp probe --cache FILE [--hook hook_resid_post] [--layers all|A-B|A,B] [--pos answer|mean|N]\n"
     "             [--target label|source] [--k 5] [--seed 1] [--C 0.01,0.1,1,10] [--raw]\n"
     "             [-o curve.json] [--directions dirs.json] [--json]"},
    {"transfer", sub_transfer,
     "interp transfer --cache FILE --layer L --train SOURCE --test SOURCE [--hook H] [--pos P] [--C 1] [--raw]\n"
     "                [-o out.json] [--json]"},
    {"tuned-fit", sub_tuned_fit,
     "interp tuned-fit --cache FILE --final-layer L -o LENS [--hook H] [--final-hook H] [--layers ...]\n"
     "                 [--pos P] [--lambda 1]"},
};

int cmd_interp(int argc, char **argv) {
    if (argc >= 2)
        for (size_t i = 0; i < sizeof subs / sizeof *subs; i++)
            if (!strcmp(argv[1], subs[i].name)) return subs[i].fn(argc - 1, argv + 1);
    FILE *f = argc >= 2 ? stderr : stdout;
    if (argc >= 2) fprintf(stderr, "phishlens interp: unknown subcommand '%s'\n", argv[1]);
    fprintf(f, "usage:\n");
    for (size_t i = 0; i < sizeof subs / sizeof *subs; i++) fprintf(f, "  phishlens %s\n", subs[i].usage);
    return argc >= 2 ? EXIT_USAGE : 0;
}
