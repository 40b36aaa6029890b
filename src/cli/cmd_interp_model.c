/* cmd_interp_model.c — the `phishlens interp` subcommands that run the model
 * with hooks (docs/interp.md, "Model side"):
 *
 *   cache -m MODEL --input RECORDS --hooks ... -o CACHE   activations of a dataset
 *   lens   logit lens per layer (per class at the answer position, per
 *          position for one example); tuned lens from a cache (--cache)
 *   patch  activation patching of a clean/corrupted prompt pair
 *   dla    direct logit attribution per example and averaged
 *   attn   attention rows from the answer position (a layer, or the top DLA heads)
 *   ablate zero / mean / resample ablation of heads and MLPs, or removal of a
 *          direction, and the change in F1
 *
 * Prompts are built as the classifier sees them (prompt/prompt.h): prefix +
 * email + suffix, score = logit[phishing] - logit[legitimate] at the last
 * token.
 */
#include "cli.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "eval/eval.h"
#include "interp/interp.h"
#include "model/model.h"
#include "prompt/prompt.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    const char *cmd;
    cli_model_args ma;
    const char *input, *out, *hooks, *layers, *positions, *tuned, *pairs, *clean, *corrupt, *hook, *heads, *mlps,
        *mode, *dirfile, *cache;
    long limit, example, layer, top, pair, seed, max_email;
    int noising, json;
} mopts;

static int mparse(int argc, char **argv, const char *cmd, mopts *o) {
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->positions = "answer";
    o->mode = "zero";
    o->layer = -1;
    o->top = 5;
    o->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cli_model_opt(&o->ma, cmd, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        const char **sv = NULL;
        long *lv = NULL, lo = 0, hi = 1000000000L;
        if (!strcmp(a, "--input")) sv = &o->input;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) sv = &o->out;
        else if (!strcmp(a, "--hooks")) sv = &o->hooks;
        else if (!strcmp(a, "--layers")) sv = &o->layers;
        else if (!strcmp(a, "--positions")) sv = &o->positions;
        else if (!strcmp(a, "--tuned")) sv = &o->tuned;
        else if (!strcmp(a, "--pairs")) sv = &o->pairs;
        else if (!strcmp(a, "--clean")) sv = &o->clean;
        else if (!strcmp(a, "--corrupted")) sv = &o->corrupt;
        else if (!strcmp(a, "--hook")) sv = &o->hook;
        else if (!strcmp(a, "--heads")) sv = &o->heads;
        else if (!strcmp(a, "--mlps")) sv = &o->mlps;
        else if (!strcmp(a, "--mode")) sv = &o->mode;
        else if (!strcmp(a, "--remove-direction")) sv = &o->dirfile;
        else if (!strcmp(a, "--cache")) sv = &o->cache;
        else if (!strcmp(a, "--limit")) lv = &o->limit, lo = 1;
        else if (!strcmp(a, "--example")) lv = &o->example;
        else if (!strcmp(a, "--layer")) lv = &o->layer;
        else if (!strcmp(a, "--top")) lv = &o->top, lo = 1;
        else if (!strcmp(a, "--pair")) lv = &o->pair;
        else if (!strcmp(a, "--seed")) lv = &o->seed;
        else if (!strcmp(a, "--max-email-tokens")) lv = &o->max_email, lo = 1, hi = 100000;
        else if (!strcmp(a, "--noising")) {
            o->noising = 1;
            continue;
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
            continue;
        } else return cli_usage_error(cmd, "unknown option '%s'", a);
        if (sv) {
            if (!v) return cli_usage_error(cmd, "%s needs a value", a);
            *sv = v;
        } else if (!cli_parse_int(cmd, a, v, lo, hi, lv)) return EXIT_USAGE;
        i++;
    }
    if (!o->ma.model) return cli_usage_error(cmd, "-m MODEL is required");
    return -1;
}

/* ---- model, prompts, records ------------------------------------------------ */

typedef struct {
    pl_model *m;
    pl_tokenizer *tok;
    pl_prompt pr;
    int pr_ok;
    pl_records rs;
    int32_t **ids;
    int *n;
    size_t N;
    int max_n;
    pl_imodel *im;
} mctx;

static void ctx_free(mctx *c) {
    pl_imodel_free(c->im);
    for (size_t i = 0; i < c->N; i++) free(c->ids ? c->ids[i] : NULL);
    free(c->ids);
    free(c->n);
    pl_records_free(&c->rs);
    if (c->pr_ok) pl_prompt_free(&c->pr);
    if (c->tok) pl_tokenizer_free(c->tok);
    pl_model_free(c->m);
    memset(c, 0, sizeof *c);
}

static pl_status prompt_ids(mctx *c, const pl_record *r, int32_t **ids, int *n) {
    pl_tokens e = {0}, full = {0};
    pl_status st = pl_prompt_email_ids(&c->pr, c->tok, r, &e, NULL);
    if (st == PL_OK) st = pl_prompt_full(&c->pr, e.ids, e.n, &full);
    pl_tokens_free(&e);
    if (st != PL_OK) {
        pl_tokens_free(&full);
        return st;
    }
    *ids = full.ids;
    *n = (int)full.n;
    return PL_OK;
}

/* Load the model and (with input) the records and their prompts; extra
 * tokens of headroom for max_ctx (0 normally). */
static pl_status ctx_open(const mopts *o, mctx *c, const char *input) {
    memset(c, 0, sizeof *c);
    pl_status st = cli_model_load(&o->ma, &c->m);
    if (st == PL_OK) st = pl_tokenizer_load(o->ma.model, &c->tok);
    pl_prompt_spec spec = pl_prompt_spec_default();
    if (o->max_email) spec.max_email_tokens = (int)o->max_email;
    if (st == PL_OK && (st = pl_prompt_init(&c->pr, c->tok, &spec)) == PL_OK) c->pr_ok = 1;
    if (st == PL_OK && input) st = pl_records_read_jsonl(input, &c->rs);
    if (st == PL_OK && input && c->rs.n == 0) st = pl_error(PL_ERR_FORMAT, "%s: no records", input);
    size_t N = c->rs.n;
    if (o->limit > 0 && (size_t)o->limit < N) N = (size_t)o->limit;
    if (st == PL_OK && N) {
        c->ids = calloc(N, sizeof *c->ids);
        c->n = calloc(N, sizeof *c->n);
        if (!c->ids || !c->n) st = pl_error(PL_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < N && st == PL_OK; i++) {
        st = prompt_ids(c, &c->rs.v[i], &c->ids[i], &c->n[i]);
        c->N = i + 1;
        if (st == PL_OK && c->n[i] > c->max_n) c->max_n = c->n[i];
    }
    int max_ctx = c->max_n > 0 ? c->max_n : 512;
    if (st == PL_OK) st = pl_imodel_new(c->m, c->pr.label_pos_id, c->pr.label_neg_id, max_ctx, 0, &c->im);
    if (st != PL_OK) ctx_free(c);
    return st;
}

/* "resid_pre", "hook_resid_pre", "attn_out", "z", "attn.hook_z", "blocks.3.hook_x" -> point */
static int parse_hook(const char *s, pl_hook_point *p) {
    char buf[160];
    int layer;
    const char *cands[] = {"blocks.0.%s", "blocks.0.hook_%s", "blocks.0.attn.hook_%s", "blocks.0.mlp.hook_%s", "%s",
                           "hook_%s"};
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
        snprintf(buf, sizeof buf, cands[i], s);
        if (pl_hook_parse(buf, p, &layer) == PL_OK) return 1;
    }
    return 0;
}

/* the cache's short name of a point: the part after "blocks.<L>." */
static void short_name(pl_hook_point p, char *buf, size_t cap) {
    char full[160];
    pl_hook_name(p, 0, full, sizeof full);
    const char *s = full;
    if (!strncmp(full, "blocks.0.", 9)) s = full + 9;
    snprintf(buf, cap, "%s", s);
}

static int parse_layer_list(const mopts *o, const char *s, int n_layer, int **out, size_t *n) {
    int *v = malloc((size_t)(n_layer > 0 ? n_layer : 1) * 64 * sizeof *v);
    size_t m = 0;
    if (!v) return 0;
    if (!s || !strcmp(s, "all")) {
        for (int l = 0; l < n_layer; l++) v[m++] = l;
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
                if (end == q || b < a) goto bad;
            }
            for (long L = a; L <= b; L++) {
                if (L >= n_layer) {
                    free(v);
                    cli_usage_error(o->cmd, "layer %ld out of range (the model has %d)", L, n_layer);
                    return 0;
                }
                if (m < (size_t)n_layer * 64) v[m++] = (int)L;
            }
            if (*end == ',') end++;
            else if (*end) goto bad;
            p = end;
        }
    }
    *out = v;
    *n = m;
    return 1;
bad:
    free(v);
    cli_usage_error(o->cmd, "--layers expects 'all', 'A-B' or 'A,B,C', got '%s'", s);
    return 0;
}

static int emit(const mopts *o, cJSON *j) {
    pl_status st = PL_OK;
    if (o->out) st = pl_interp_write_json(o->out, j);
    else if (o->json) {
        char *s = cJSON_Print(j);
        if (s) printf("%s\n", s);
        cJSON_free(s);
    }
    cJSON_Delete(j);
    return st == PL_OK ? 0 : cli_fail(st);
}

static FILE *txt(const mopts *o) { return o->json && !o->out ? stderr : stdout; }

/* ---- cache ------------------------------------------------------------------ */

int cli_interp_cache_build(int argc, char **argv) {
    mopts o;
    int rc = mparse(argc, argv, "interp cache", &o);
    if (rc >= 0) return rc;
    if (!o.input || !o.out) return cli_usage_error(o.cmd, "--input RECORDS and -o CACHE are required");
    int all = !strcmp(o.positions, "all");
    if (!all && strcmp(o.positions, "answer")) return cli_usage_error(o.cmd, "--positions answer|all");
    mctx c;
    pl_status st = ctx_open(&o, &c, o.input);
    if (st != PL_OK) return cli_fail(st);
    const pl_arch_desc *d = pl_model_desc(c.m);
    int *layers = NULL;
    size_t nl = 0;
    if (!parse_layer_list(&o, o.layers, d->n_layer, &layers, &nl)) {
        ctx_free(&c);
        return EXIT_USAGE;
    }
    /* slots: each hook x layer (layer-less hooks once) */
    pl_act_slot *slots = calloc(64 * (nl + 1), sizeof *slots);
    pl_hook_point *pts = calloc(64 * (nl + 1), sizeof *pts);
    size_t ns = 0;
    char hooks[1024];
    snprintf(hooks, sizeof hooks, "%s", o.hooks ? o.hooks : "resid_post");
    for (char *save = NULL, *t = strtok_r(hooks, ",", &save); t && rc < 0; t = strtok_r(NULL, ",", &save)) {
        pl_hook_point p;
        if (!parse_hook(t, &p) || p == PL_HOOK_PATTERN) {
            rc = cli_usage_error(o.cmd, "unknown or unsupported hook '%s' (per-position hooks: resid_pre, attn_out, "
                                        "mlp_out, resid_mid, resid_post, z, q, k, v, mlp.hook_post, embed, ln_final)", t);
            break;
        }
        int global = p == PL_HOOK_EMBED || p == PL_HOOK_LN_FINAL;
        for (size_t k = 0; k < (global ? 1 : nl) && ns < 64 * (nl + 1); k++) {
            short_name(p, slots[ns].name, sizeof slots[ns].name);
            slots[ns].layer = global ? -1 : layers[k];
            slots[ns].d = (uint32_t)pl_imodel_width(c.im, p);
            pts[ns++] = p;
        }
    }
    free(layers);
    if (rc >= 0) {
        free(slots), free(pts);
        ctx_free(&c);
        return rc;
    }
    pl_actcache_writer *w = NULL;
    float **bufs = calloc(ns, sizeof *bufs);
    const float **rows = calloc(ns, sizeof *rows);
    pl_edit *ed = calloc(ns, sizeof *ed);
    st = (bufs && rows && ed) ? pl_actcache_create(o.out, slots, ns, 0, &w) : pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t s = 0; s < ns && st == PL_OK; s++)
        if (!(bufs[s] = malloc((size_t)c.max_n * slots[s].d * sizeof(float)))) st = pl_error(PL_ERR_NOMEM, "out of memory");
    pl_progress pg;
    pl_progress_begin(&pg, "interp cache", (int64_t)c.N, "examples");
    for (size_t i = 0; i < c.N && st == PL_OK; i++) {
        for (size_t s = 0; s < ns; s++)
            ed[s] = (pl_edit){PL_EDIT_RECORD, pts[s], slots[s].layer, -1, -1, bufs[s], NULL, 0, NULL, -1};
        st = pl_imodel_run(c.im, c.ids[i], c.n[i], ed, ns, NULL, NULL);
        if (st != PL_OK) break;
        pl_act_meta m;
        memset(&m, 0, sizeof m);
        snprintf(m.id, sizeof m.id, "%s", c.rs.v[i].id);
        snprintf(m.source, sizeof m.source, "%s", c.rs.v[i].source);
        m.label = c.rs.v[i].label;
        m.n_tokens = c.n[i];
        m.answer_pos = c.n[i] - 1;
        m.pos0 = all ? 0 : c.n[i] - 1;
        m.n_pos = all ? c.n[i] : 1;
        for (size_t s = 0; s < ns; s++) rows[s] = bufs[s] + (size_t)m.pos0 * slots[s].d;
        st = pl_actcache_append(w, &m, rows);
        pl_progress_update(&pg, (int64_t)i + 1);
    }
    pl_progress_end(&pg);
    if (st == PL_OK) st = pl_actcache_writer_close(w);
    else pl_actcache_writer_abort(w);
    if (st == PL_OK && !cli_quiet)
        printf("cached %zu examples x %zu hook slots (%s positions) -> %s\n", c.N, ns, o.positions, o.out);
    for (size_t s = 0; s < ns && bufs; s++) free(bufs[s]);
    free(bufs), free(rows), free(ed), free(slots), free(pts);
    ctx_free(&c);
    return st == PL_OK ? 0 : cli_fail(st);
}

/* ---- lens ------------------------------------------------------------------- */

static int lens_from_cache(const mopts *o) {
    pl_model *m = NULL;
    pl_tokenizer *tok = NULL;
    pl_prompt pr;
    int pr_ok = 0;
    pl_actcache *c = NULL;
    pl_tuned_lens tl;
    int tl_ok = 0;
    pl_imodel *im = NULL;
    cJSON *j = NULL;
    int *layers = NULL;
    size_t nl = 0;
    pl_status st = cli_model_load(&o->ma, &m);
    if (st == PL_OK) st = pl_tokenizer_load(o->ma.model, &tok);
    pl_prompt_spec spec = pl_prompt_spec_default();
    if (st == PL_OK && (st = pl_prompt_init(&pr, tok, &spec)) == PL_OK) pr_ok = 1;
    if (st == PL_OK) st = pl_imodel_new(m, pr.label_pos_id, pr.label_neg_id, 1, 1, &im);
    if (st == PL_OK) st = pl_actcache_open(o->cache, &c);
    if (st == PL_OK && o->tuned && (st = pl_tuned_lens_load(o->tuned, &tl)) == PL_OK) tl_ok = 1;
    const char *hook = o->hook ? o->hook : "hook_resid_post";
    int rc = -1;
    if (st == PL_OK) {
        layers = malloc((pl_actcache_n_slots(c) + 1) * sizeof *layers);
        for (size_t s = 0; layers && s < pl_actcache_n_slots(c); s++)
            if (pl_actcache_slot(c, s)->layer >= 0 && !strcmp(pl_actcache_slot(c, s)->name, hook))
                layers[nl++] = pl_actcache_slot(c, s)->layer;
        if (!nl) rc = cli_usage_error(o->cmd, "%s has no layers of hook '%s' (--hook)", o->cache, hook);
    }
    pl_pos_sel sel = {PL_POS_ANSWER, 0};
    if (st == PL_OK && rc < 0) st = pl_lens_depth(c, hook, layers, nl, sel, pl_imodel_readout(im), tl_ok ? &tl : NULL, &j);
    free(layers);
    if (tl_ok) pl_tuned_lens_free(&tl);
    pl_actcache_close(c);
    pl_imodel_free(im);
    if (pr_ok) pl_prompt_free(&pr);
    if (tok) pl_tokenizer_free(tok);
    pl_model_free(m);
    if (rc >= 0) return rc;
    if (st != PL_OK) return cli_fail(st);
    cJSON_AddStringToObject(j, "hook", hook);
    cJSON_AddStringToObject(j, "lens", o->tuned ? "tuned" : "logit");
    return emit(o, j);
}

int cli_interp_lens(int argc, char **argv) {
    mopts o;
    int rc = mparse(argc, argv, "interp lens", &o);
    if (rc >= 0) return rc;
    if (o.cache) return lens_from_cache(&o);
    if (!o.input) return cli_usage_error(o.cmd, "--input RECORDS (or --cache CACHE) is required");
    mctx c;
    pl_status st = ctx_open(&o, &c, o.input);
    if (st != PL_OK) return cli_fail(st);
    if (o.example < 0 || (size_t)o.example >= c.N) {
        ctx_free(&c);
        return cli_usage_error(o.cmd, "--example %ld out of range (%zu examples)", o.example, c.N);
    }
    int L = pl_model_desc(c.m)->n_layer, R = 3 * L;
    double *sc = calloc((size_t)R * c.N, sizeof *sc), *real = calloc(c.N, sizeof *real);
    int *y = calloc(c.N, sizeof *y);
    pl_grid ex = {0}, agg = {0};
    st = (sc && real && y) ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
    pl_progress pg;
    pl_progress_begin(&pg, "interp lens", (int64_t)c.N, "examples");
    for (size_t i = 0; i < c.N && st == PL_OK; i++) {
        pl_grid g;
        st = pl_imodel_lens(c.im, c.ids[i], c.n[i], &g, &real[i]);
        if (st != PL_OK) break;
        for (int r = 0; r < R; r++) sc[(size_t)r * c.N + i] = PL_GRID(&g, r, c.n[i] - 1);
        y[i] = c.rs.v[i].label;
        if (i == (size_t)o.example) ex = g;
        else pl_grid_free(&g);
        pl_progress_update(&pg, (int64_t)i + 1);
    }
    pl_progress_end(&pg);
    static const char *cols[] = {"phishing", "legitimate", "auc"};
    if (st == PL_OK) st = pl_grid_init(&agg, (size_t)R, 3, "logit lens at the answer position: mean score by class");
    for (int r = 0; r < R && st == PL_OK; r++) {
        double mean[2], sd[2];
        size_t cnt[2];
        int yy[1];
        (void)yy;
        pl_lens_class_means(sc + (size_t)r * c.N, y, c.N, 2, mean, sd, cnt);
        PL_GRID(&agg, r, 0) = cnt[1] ? mean[1] : (double)NAN;
        PL_GRID(&agg, r, 1) = cnt[0] ? mean[0] : (double)NAN;
        PL_GRID(&agg, r, 2) = pl_interp_auc(sc + (size_t)r * c.N, y, c.N);
        st = pl_grid_set_row(&agg, (size_t)r, ex.rows[r]);
    }
    for (int k = 0; k < 3 && st == PL_OK; k++) st = pl_grid_set_col(&agg, (size_t)k, cols[k]);
    /* example columns: position:token */
    for (int p = 0; p < c.n[o.example] && st == PL_OK; p++) {
        pl_buf b = {0};
        pl_buf_printf(&b, "%d:", p);
        cli_tok_piece(c.tok, &c.ids[o.example][p], 1, &b);
        st = pl_grid_set_col(&ex, (size_t)p, b.data ? b.data : "");
        pl_buf_free(&b);
    }
    if (st == PL_OK && !cli_quiet) {
        FILE *f = txt(&o);
        fprintf(f, "logit lens over %zu examples (answer position); mean score phishing / legitimate, AUC:\n", c.N);
        for (int r = 0; r < R; r++)
            fprintf(f, "  %-16s %9.4f %9.4f  auc %.3f\n", agg.rows[r], PL_GRID(&agg, r, 0), PL_GRID(&agg, r, 1),
                    PL_GRID(&agg, r, 2));
        fprintf(f, "last layer equals the model's score on example %ld: %.6f vs %.6f\n", o.example,
                PL_GRID(&ex, R - 1, c.n[o.example] - 1), real[o.example]);
    }
    if (st == PL_OK) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToObject(j, "by_class", pl_grid_json(&agg));
        cJSON *e = pl_grid_json(&ex);
        cJSON_AddStringToObject(e, "id", c.rs.v[o.example].id);
        cJSON_AddNumberToObject(e, "score", real[o.example]);
        cJSON_AddItemToObject(j, "example", e);
        cJSON_AddNumberToObject(j, "n_examples", (double)c.N);
        rc = emit(&o, j);
    } else rc = cli_fail(st);
    pl_grid_free(&ex), pl_grid_free(&agg);
    free(sc), free(real), free(y);
    ctx_free(&c);
    return rc;
}

/* ---- patch ------------------------------------------------------------------ */

static int find_record(const pl_records *rs, const char *id) {
    for (size_t i = 0; i < rs->n; i++)
        if (!strcmp(rs->v[i].id, id)) return (int)i;
    return -1;
}

int cli_interp_patch(int argc, char **argv) {
    mopts o;
    int rc = mparse(argc, argv, "interp patch", &o);
    if (rc >= 0) return rc;
    if (!o.input) return cli_usage_error(o.cmd, "--input RECORDS is required (minimal_pairs.jsonl or any records)");
    if (!o.pairs && !(o.clean && o.corrupt))
        return cli_usage_error(o.cmd, "give --pairs pairs.jsonl [--pair N] or --clean ID --corrupted ID");
    pl_hook_point pt = PL_HOOK_RESID_PRE;
    if (o.hook && !parse_hook(o.hook, &pt)) return cli_usage_error(o.cmd, "unknown hook '%s'", o.hook);
    mctx c;
    o.limit = 0;
    /* records only: prompts are built for the two members */
    pl_status st = ctx_open(&o, &c, NULL);
    if (st == PL_OK) st = pl_records_read_jsonl(o.input, &c.rs);
    char cid[256] = "", rid[256] = "";
    if (st == PL_OK && o.pairs) {
        char *data = NULL;
        size_t len = 0;
        st = pl_read_file(o.pairs, &data, &len);
        long line = 0;
        for (char *p = data, *nl; st == PL_OK && p && *p; p = nl ? nl + 1 : NULL) {
            nl = strchr(p, '\n');
            if (nl) *nl = 0;
            if (!*p) continue;
            if (line++ != o.pair) continue;
            cJSON *j = cJSON_Parse(p);
            const cJSON *a = j ? cJSON_GetObjectItem(j, "a") : NULL, *b = j ? cJSON_GetObjectItem(j, "b") : NULL;
            if (!cJSON_IsString(a) || !cJSON_IsString(b))
                st = pl_error(PL_ERR_FORMAT, "%s:%ld: expected an object with string fields \"a\" and \"b\"", o.pairs,
                              line);
            else {
                /* b carries the feature (the phishing cue or the planted artifact): clean = b */
                snprintf(cid, sizeof cid, "%s", b->valuestring);
                snprintf(rid, sizeof rid, "%s", a->valuestring);
            }
            cJSON_Delete(j);
            break;
        }
        free(data);
        if (st == PL_OK && !cid[0]) st = pl_error(PL_ERR_RANGE, "%s: no pair %ld", o.pairs, o.pair);
    } else if (st == PL_OK) {
        snprintf(cid, sizeof cid, "%s", o.clean);
        snprintf(rid, sizeof rid, "%s", o.corrupt);
    }
    int ic = -1, ir = -1;
    if (st == PL_OK && (ic = find_record(&c.rs, cid)) < 0) st = pl_error(PL_ERR_NOT_FOUND, "%s: no record with id '%s'", o.input, cid);
    if (st == PL_OK && (ir = find_record(&c.rs, rid)) < 0) st = pl_error(PL_ERR_NOT_FOUND, "%s: no record with id '%s'", o.input, rid);
    int32_t *a = NULL, *b = NULL;
    int na = 0, nb = 0;
    if (st == PL_OK) st = prompt_ids(&c, &c.rs.v[ic], &a, &na);
    if (st == PL_OK) st = prompt_ids(&c, &c.rs.v[ir], &b, &nb);
    pl_imodel *im = NULL;
    if (st == PL_OK) st = pl_imodel_new(c.m, c.pr.label_pos_id, c.pr.label_neg_id, na > nb ? na : nb, 0, &im);
    pl_patch_result pr = {0};
    if (st == PL_OK) st = pl_imodel_patch(im, a, na, b, nb, pt, o.noising, &pr);
    if (st == PL_OK && pt != PL_HOOK_Z) {
        const int32_t *run = o.noising ? a : b;
        for (int p = 0; p < pr.n_run && st == PL_OK; p++) {
            pl_buf t = {0};
            pl_buf_printf(&t, "%d:", p);
            cli_tok_piece(c.tok, &run[p], 1, &t);
            st = pl_grid_set_col(&pr.recovery, (size_t)p, t.data ? t.data : "");
            pl_buf_free(&t);
        }
    }
    if (st == PL_OK) {
        if (fabs(pr.clean - pr.corrupted) <= PL_PATCH_MIN_GAP)
            fprintf(stderr, "phishlens: warning: clean and corrupted scores are equal (%g): recovery is undefined\n",
                    pr.clean);
        if (!cli_quiet) {
            pl_buf s = {0};
            pl_grid_summary(&pr.recovery, 8, &s);
            fprintf(txt(&o), "clean %s (%d tokens) score %.4f, corrupted %s (%d tokens) score %.4f\n%s", cid, na,
                    pr.clean, rid, nb, pr.corrupted, s.data ? s.data : "");
            pl_buf_free(&s);
        }
        cJSON *j = pl_grid_json(&pr.recovery);
        cJSON_AddStringToObject(j, "clean_id", cid);
        cJSON_AddStringToObject(j, "corrupted_id", rid);
        cJSON_AddNumberToObject(j, "clean_score", pr.clean);
        cJSON_AddNumberToObject(j, "corrupted_score", pr.corrupted);
        cJSON_AddStringToObject(j, "direction", o.noising ? "noising" : "denoising");
        cJSON *ps = cJSON_AddArrayToObject(j, "patched_scores");
        for (size_t r = 0; r < pr.recovery.n_rows; r++) {
            cJSON *row = cJSON_CreateArray();
            for (size_t k = 0; k < pr.recovery.n_cols; k++) {
                double v = pr.scores[r * pr.recovery.n_cols + k];
                cJSON_AddItemToArray(row, isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
            }
            cJSON_AddItemToArray(ps, row);
        }
        rc = emit(&o, j);
    } else rc = cli_fail(st);
    pl_patch_result_free(&pr);
    pl_imodel_free(im);
    free(a), free(b);
    ctx_free(&c);
    return rc;
}

/* ---- dla -------------------------------------------------------------------- */

int cli_interp_dla(int argc, char **argv) {
    mopts o;
    int rc = mparse(argc, argv, "interp dla", &o);
    if (rc >= 0) return rc;
    if (!o.input) return cli_usage_error(o.cmd, "--input RECORDS is required");
    mctx c;
    pl_status st = ctx_open(&o, &c, o.input);
    if (st != PL_OK) return cli_fail(st);
    pl_imodel_dla *dl = calloc(c.N, sizeof *dl);
    st = dl ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
    double worst = 0;
    pl_progress pg;
    pl_progress_begin(&pg, "interp dla", (int64_t)c.N, "examples");
    for (size_t i = 0; i < c.N && st == PL_OK; i++) {
        st = pl_imodel_dla_run(c.im, c.ids[i], c.n[i], &dl[i]);
        if (st == PL_OK && fabs(dl[i].sum - dl[i].score) > worst && pl_model_desc(c.m)->final_softcap <= 0)
            worst = fabs(dl[i].sum - dl[i].score);
        pl_progress_update(&pg, (int64_t)i + 1);
    }
    pl_progress_end(&pg);
    if (st == PL_OK) {
        size_t K = dl[0].n_comp, L = dl[0].n_layer, H = dl[0].n_head;
        pl_grid g, hg;
        st = pl_grid_init(&g, K, c.N + 1, "direct logit attribution (final-norm scale frozen)");
        for (size_t k = 0; k < K && st == PL_OK; k++) {
            double s = 0;
            for (size_t i = 0; i < c.N; i++) s += (PL_GRID(&g, k, i + 1) = dl[i].contrib[k]);
            PL_GRID(&g, k, 0) = s / (double)c.N;
            st = pl_grid_set_row(&g, k, dl[0].labels[k]);
        }
        if (st == PL_OK) st = pl_grid_set_col(&g, 0, "mean");
        for (size_t i = 0; i < c.N && st == PL_OK; i++) st = pl_grid_set_col(&g, i + 1, c.rs.v[i].id);
        if (st == PL_OK) st = pl_grid_init(&hg, L, H, "mean head DLA");
        if (st == PL_OK) {
            for (size_t q = 0; q < L * H; q++) {
                double s = 0;
                for (size_t i = 0; i < c.N; i++) s += dl[i].head_grid[q];
                hg.values[q] = s / (double)c.N;
            }
            pl_grid_label_rows(&hg, "L");
            pl_grid_label_cols(&hg, "H");
            pl_head_score top[64];
            size_t nt = 0;
            size_t k = (size_t)o.top < 64 ? (size_t)o.top : 64;
            st = pl_top_heads(hg.values, L, H, k, 1, top, &nt);
            if (st == PL_OK && !cli_quiet) {
                FILE *f = txt(&o);
                fprintf(f, "DLA over %zu examples; components sum to the score within %.2g (max over examples)\n", c.N,
                        worst);
                fprintf(f, "mean: embed %.4f", PL_GRID(&g, 0, 0));
                fprintf(f, ", rest %.2g\ntop heads by |mean contribution|:\n", PL_GRID(&g, K - 1, 0));
                for (size_t t = 0; t < nt; t++) fprintf(f, "  L%dH%d %+.4f\n", top[t].layer, top[t].head, top[t].score);
                for (size_t l = 0; l < L; l++) fprintf(f, "  L%zu.mlp %+.4f\n", l, PL_GRID(&g, 1 + l * (H + 1) + H, 0));
            }
            if (st == PL_OK) {
                cJSON *j = pl_grid_json(&g);
                cJSON_AddItemToObject(j, "heads", pl_grid_json(&hg));
                cJSON_AddItemToObject(j, "top_heads", pl_top_heads_json(top, nt));
                cJSON *sc = cJSON_AddArrayToObject(j, "scores"), *sm = cJSON_AddArrayToObject(j, "sums");
                for (size_t i = 0; i < c.N; i++) {
                    cJSON_AddItemToArray(sc, cJSON_CreateNumber(dl[i].score));
                    cJSON_AddItemToArray(sm, cJSON_CreateNumber(dl[i].sum));
                }
                rc = emit(&o, j);
            }
            pl_grid_free(&hg);
        }
        pl_grid_free(&g);
    }
    for (size_t i = 0; dl && i < c.N; i++) pl_imodel_dla_free(&dl[i]);
    free(dl);
    ctx_free(&c);
    if (st != PL_OK) return cli_fail(st);
    return rc < 0 ? 0 : rc;
}

/* ---- attn ------------------------------------------------------------------- */

int cli_interp_attn(int argc, char **argv) {
    mopts o;
    int rc = mparse(argc, argv, "interp attn", &o);
    if (rc >= 0) return rc;
    if (!o.input) return cli_usage_error(o.cmd, "--input RECORDS is required");
    mctx c;
    o.limit = o.example + 1;
    pl_status st = ctx_open(&o, &c, o.input);
    if (st != PL_OK) return cli_fail(st);
    if (o.example < 0 || (size_t)o.example >= c.N) {
        ctx_free(&c);
        return cli_usage_error(o.cmd, "--example %ld out of range", o.example);
    }
    const pl_arch_desc *d = pl_model_desc(c.m);
    const int32_t *ids = c.ids[o.example];
    int n = c.n[o.example];
    pl_head_score top[256];
    size_t nt = 0;
    if (o.layer >= 0) {
        if (o.layer >= d->n_layer) {
            ctx_free(&c);
            return cli_usage_error(o.cmd, "--layer %ld out of range (%d layers)", o.layer, d->n_layer);
        }
        for (int h = 0; h < d->n_head && h < 256; h++) top[nt++] = (pl_head_score){(int)o.layer, h, NAN};
    } else {
        pl_imodel_dla dl;
        st = pl_imodel_dla_run(c.im, ids, n, &dl);
        size_t k = (size_t)o.top < 256 ? (size_t)o.top : 256;
        if (st == PL_OK) st = pl_top_heads(dl.head_grid, dl.n_layer, dl.n_head, k, 1, top, &nt);
        if (st == PL_OK) pl_imodel_dla_free(&dl);
    }
    pl_grid g = {0};
    if (st == PL_OK) st = pl_grid_init(&g, nt, (size_t)n, "attention from the answer position");
    float *pat = NULL;
    int cur = -1;
    for (size_t t = 0; t < nt && st == PL_OK; t++) {
        if (top[t].layer != cur) {
            free(pat);
            pat = NULL;
            st = pl_imodel_pattern(c.im, ids, n, top[t].layer, &pat);
            cur = top[t].layer;
            if (st != PL_OK) break;
        }
        const float *row = pat + ((size_t)top[t].head * (size_t)n + (size_t)(n - 1)) * (size_t)n;
        for (int k = 0; k < n; k++) PL_GRID(&g, t, k) = row[k];
        char lab[64];
        snprintf(lab, sizeof lab, "L%dH%d", top[t].layer, top[t].head);
        st = pl_grid_set_row(&g, t, lab);
        if (st == PL_OK && !cli_quiet) {
            size_t pos[5], nk;
            float w[5];
            pl_attn_top_keys(row, (size_t)n, 5, pos, w, &nk);
            FILE *f = txt(&o);
            fprintf(f, "%s:", lab);
            for (size_t q = 0; q < nk; q++) {
                pl_buf b = {0};
                cli_tok_piece(c.tok, &ids[pos[q]], 1, &b);
                fprintf(f, "  %zu'%s' %.3f", pos[q], b.data ? b.data : "", (double)w[q]);
                pl_buf_free(&b);
            }
            fprintf(f, "\n");
        }
    }
    free(pat);
    for (int p = 0; p < n && st == PL_OK; p++) {
        pl_buf b = {0};
        pl_buf_printf(&b, "%d:", p);
        cli_tok_piece(c.tok, &ids[p], 1, &b);
        st = pl_grid_set_col(&g, (size_t)p, b.data ? b.data : "");
        pl_buf_free(&b);
    }
    if (st == PL_OK) {
        cJSON *j = pl_grid_json(&g);
        cJSON_AddStringToObject(j, "id", c.rs.v[o.example].id);
        rc = emit(&o, j);
    } else rc = cli_fail(st);
    pl_grid_free(&g);
    ctx_free(&c);
    return rc;
}

/* ---- ablate ----------------------------------------------------------------- */

typedef struct {
    int layer, head; /* head -1: the MLP */
} comp_t;

static int parse_comps(const mopts *o, const pl_arch_desc *d, comp_t *v, size_t cap, size_t *n) {
    *n = 0;
    char buf[4096];
    for (int pass = 0; pass < 2; pass++) {
        const char *s = pass ? o->mlps : o->heads;
        if (!s) continue;
        if (!strcmp(s, "all")) {
            for (int l = 0; l < d->n_layer; l++)
                for (int h = 0; h < (pass ? 1 : d->n_head) && *n < cap; h++) v[(*n)++] = (comp_t){l, pass ? -1 : h};
            continue;
        }
        snprintf(buf, sizeof buf, "%s", s);
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int l, h = -1, used = 0;
            int ok = pass ? sscanf(t, "%d%n", &l, &used) == 1 : sscanf(t, "%d.%d%n", &l, &h, &used) == 2;
            if (!ok || t[used] || l < 0 || l >= d->n_layer || (!pass && (h < 0 || h >= d->n_head))) {
                cli_usage_error(o->cmd, pass ? "--mlps expects layers 'L,L,...' or 'all', got '%s'"
                                             : "--heads expects 'L.H,L.H,...' or 'all', got '%s'", t);
                return 0;
            }
            if (*n < cap) v[(*n)++] = (comp_t){l, pass ? -1 : h};
        }
    }
    return 1;
}

/* unit direction for layer from a probe-directions JSON ({"layers":[..],
 * "direction":[[[...]]]}) or a plain array of numbers */
static pl_status load_direction(const char *path, int layer, size_t d, float *u) {
    char *data = NULL;
    size_t len = 0;
    pl_status st = pl_read_file(path, &data, &len);
    if (st != PL_OK) return st;
    cJSON *j = cJSON_ParseWithLength(data, len);
    free(data);
    if (!j) return pl_error(PL_ERR_FORMAT, "%s: not JSON", path);
    const cJSON *v = NULL;
    if (cJSON_IsArray(j)) v = j;
    else {
        const cJSON *ls = cJSON_GetObjectItem(j, "layers"), *dir = cJSON_GetObjectItem(j, "direction");
        for (int i = 0; i < cJSON_GetArraySize(ls); i++)
            if (cJSON_GetArrayItem(ls, i)->valueint == layer) v = cJSON_GetArrayItem(cJSON_GetArrayItem(dir, i), 0);
        if (!v) {
            cJSON_Delete(j);
            return pl_error(PL_ERR_NOT_FOUND, "%s: no direction for layer %d (field \"layers\")", path, layer);
        }
    }
    if ((size_t)cJSON_GetArraySize(v) != d) {
        int got = cJSON_GetArraySize(v);
        cJSON_Delete(j);
        return pl_error(PL_ERR_INVALID, "%s: direction of %d numbers, the model's width is %zu", path, got, d);
    }
    double nn = 0;
    for (size_t k = 0; k < d; k++) {
        const cJSON *x = cJSON_GetArrayItem(v, (int)k);
        if (!cJSON_IsNumber(x)) {
            cJSON_Delete(j);
            return pl_error(PL_ERR_FORMAT, "%s: direction entry %zu is not a number", path, k);
        }
        u[k] = (float)x->valuedouble;
        nn += x->valuedouble * x->valuedouble;
    }
    cJSON_Delete(j);
    if (!(nn > 0)) return pl_error(PL_ERR_INVALID, "%s: zero direction", path);
    for (size_t k = 0; k < d; k++) u[k] = (float)((double)u[k] / sqrt(nn));
    return PL_OK;
}

int cli_interp_ablate(int argc, char **argv) {
    mopts o;
    int rc = mparse(argc, argv, "interp ablate", &o);
    if (rc >= 0) return rc;
    if (!o.input) return cli_usage_error(o.cmd, "--input RECORDS is required");
    int mode = !strcmp(o.mode, "zero") ? 0 : !strcmp(o.mode, "mean") ? 1 : !strcmp(o.mode, "resample") ? 2 : -1;
    if (mode < 0) return cli_usage_error(o.cmd, "--mode zero|mean|resample");
    int all = !strcmp(o.positions, "all");
    if (!all && strcmp(o.positions, "answer")) return cli_usage_error(o.cmd, "--positions answer|all");
    if (mode == 2 && all) return cli_usage_error(o.cmd, "resample ablation works at the answer position only");
    if (!o.heads && !o.mlps && !o.dirfile) return cli_usage_error(o.cmd, "nothing to ablate (--heads, --mlps or --remove-direction)");
    if (o.dirfile && o.layer < 0) return cli_usage_error(o.cmd, "--remove-direction needs --layer L");
    mctx c;
    pl_status st = ctx_open(&o, &c, o.input);
    if (st != PL_OK) return cli_fail(st);
    const pl_arch_desc *d = pl_model_desc(c.m);
    for (size_t i = 0; i < c.N && st == PL_OK; i++)
        if (c.rs.v[i].label != 0 && c.rs.v[i].label != 1)
            st = pl_error(PL_ERR_INVALID, "%s: record '%s' has no 0/1 label", o.input, c.rs.v[i].id);
    size_t cap = (size_t)d->n_layer * (size_t)(d->n_head + 1), nc = 0;
    comp_t *cs = calloc(cap, sizeof *cs);
    if (st != PL_OK || !cs || !parse_comps(&o, d, cs, cap, &nc)) {
        free(cs);
        ctx_free(&c);
        return st != PL_OK ? cli_fail(st) : EXIT_USAGE;
    }
    if (o.dirfile && o.layer >= d->n_layer) {
        free(cs);
        ctx_free(&c);
        return cli_usage_error(o.cmd, "--layer %ld out of range", o.layer);
    }
    size_t D = (size_t)d->n_embd, HD = (size_t)d->n_head * (size_t)d->head_dim, L = (size_t)d->n_layer;
    /* per-layer recorded activations at the answer position (or mean over positions) for mean/resample */
    float *zr = NULL, *mr = NULL, *zmean = NULL, *mmean = NULL, *u = NULL, *zall = NULL, *mall = NULL;
    size_t *donor = NULL;
    pl_preds before = {0}, after = {0};
    pl_edit *ed = calloc(nc + 2 * L + 1, sizeof *ed);
    if (!ed) st = pl_error(PL_ERR_NOMEM, "out of memory");
    if (st == PL_OK && o.dirfile) {
        u = malloc(D * sizeof *u);
        st = u ? load_direction(o.dirfile, (int)o.layer, D, u) : pl_error(PL_ERR_NOMEM, "out of memory");
    }
    if (st == PL_OK && mode) {
        zmean = calloc(L * HD, sizeof *zmean);
        mmean = calloc(L * D, sizeof *mmean);
        zall = calloc(L * HD * c.N, sizeof *zall);
        mall = calloc(L * D * c.N, sizeof *mall);
        zr = malloc(L * (size_t)c.max_n * HD * sizeof *zr);
        mr = malloc(L * (size_t)c.max_n * D * sizeof *mr);
        if (!zmean || !mmean || !zall || !mall || !zr || !mr) st = pl_error(PL_ERR_NOMEM, "out of memory");
    }
    /* pass 1: clean scores (and activations for mean/resample) */
    double cnt = 0;
    for (size_t i = 0; i < c.N && st == PL_OK; i++) {
        size_t ne = 0;
        if (mode)
            for (size_t l = 0; l < L; l++) {
                ed[ne++] = (pl_edit){PL_EDIT_RECORD, PL_HOOK_Z, (int)l, -1, -1, zr + l * (size_t)c.max_n * HD, NULL, 0, NULL, -1};
                ed[ne++] = (pl_edit){PL_EDIT_RECORD, PL_HOOK_MLP_OUT, (int)l, -1, -1, mr + l * (size_t)c.max_n * D, NULL, 0, NULL, -1};
            }
        double s;
        st = pl_imodel_run(c.im, c.ids[i], c.n[i], ed, ne, &s, NULL);
        if (st == PL_OK) st = pl_preds_push_scored(&before, &c.rs.v[i], s);
        if (st != PL_OK || !mode) continue;
        int p0 = all ? 0 : c.n[i] - 1, p1 = c.n[i];
        for (size_t l = 0; l < L; l++) {
            for (int p = p0; p < p1; p++) {
                for (size_t k = 0; k < HD; k++) zmean[l * HD + k] += zr[(l * (size_t)c.max_n + (size_t)p) * HD + k];
                for (size_t k = 0; k < D; k++) mmean[l * D + k] += mr[(l * (size_t)c.max_n + (size_t)p) * D + k];
            }
            memcpy(zall + (l * c.N + i) * HD, zr + (l * (size_t)c.max_n + (size_t)(c.n[i] - 1)) * HD, HD * sizeof(float));
            memcpy(mall + (l * c.N + i) * D, mr + (l * (size_t)c.max_n + (size_t)(c.n[i] - 1)) * D, D * sizeof(float));
        }
        cnt += p1 - p0;
    }
    if (st == PL_OK && mode == 1) {
        for (size_t k = 0; k < L * HD; k++) zmean[k] = (float)((double)zmean[k] / cnt);
        for (size_t k = 0; k < L * D; k++) mmean[k] = (float)((double)mmean[k] / cnt);
    }
    if (st == PL_OK && mode == 2) {
        donor = malloc(c.N * sizeof *donor);
        st = donor ? pl_ablate_resample_idx(c.N, NULL, PL_RESAMPLE_ANY, (uint64_t)o.seed, donor)
                   : pl_error(PL_ERR_NOMEM, "out of memory");
    }
    /* pass 2: ablated */
    for (size_t i = 0; i < c.N && st == PL_OK; i++) {
        size_t ne = 0;
        int pos = all ? -1 : c.n[i] - 1;
        for (size_t k = 0; k < nc; k++) {
            size_t l = (size_t)cs[k].layer;
            const float *src = NULL;
            if (mode == 1) src = cs[k].head >= 0 ? zmean + l * HD : mmean + l * D;
            if (mode == 2) src = cs[k].head >= 0 ? zall + (l * c.N + donor[i]) * HD : mall + (l * c.N + donor[i]) * D;
            ed[ne++] = (pl_edit){PL_EDIT_SET, cs[k].head >= 0 ? PL_HOOK_Z : PL_HOOK_MLP_OUT, cs[k].layer, pos,
                                 cs[k].head, NULL, src, 0, NULL, -1};
        }
        if (u) ed[ne++] = (pl_edit){PL_EDIT_PROJECT, o.hook ? PL_HOOK_RESID_POST : PL_HOOK_RESID_POST, (int)o.layer, pos, -1,
                                    NULL, NULL, 0, u, -1};
        double s;
        st = pl_imodel_run(c.im, c.ids[i], c.n[i], ed, ne, &s, NULL);
        if (st == PL_OK) st = pl_preds_push_scored(&after, &c.rs.v[i], s);
    }
    pl_ablate_effect eff;
    if (st == PL_OK) st = pl_ablate_effect_of(&before, &after, 0.5, &eff);
    if (st == PL_OK) {
        if (!cli_quiet)
            fprintf(txt(&o), "%s ablation of %zu components%s (%s positions) on %zu examples: F1 %.4f -> %.4f (%+.4f), "
                             "accuracy %.4f -> %.4f, mean score change %+.4f, %zu predictions flipped\n",
                    o.mode, nc, u ? " + direction removal" : "", o.positions, c.N, eff.before.v[PL_M_F1],
                    eff.after.v[PL_M_F1], eff.delta_f1, eff.before.v[PL_M_ACCURACY], eff.after.v[PL_M_ACCURACY],
                    eff.mean_delta_score, eff.n_flipped);
        cJSON *j = pl_ablate_effect_json(&eff);
        cJSON_AddStringToObject(j, "mode", o.mode);
        cJSON_AddStringToObject(j, "positions", o.positions);
        cJSON *cj = cJSON_AddArrayToObject(j, "components");
        for (size_t k = 0; k < nc; k++) {
            char lab[64];
            if (cs[k].head >= 0) snprintf(lab, sizeof lab, "L%dH%d", cs[k].layer, cs[k].head);
            else snprintf(lab, sizeof lab, "L%d.mlp", cs[k].layer);
            cJSON_AddItemToArray(cj, cJSON_CreateString(lab));
        }
        if (u) {
            cJSON_AddStringToObject(j, "removed_direction", o.dirfile);
            cJSON_AddNumberToObject(j, "direction_layer", (double)o.layer);
        }
        rc = emit(&o, j);
    } else rc = cli_fail(st);
    pl_preds_free(&before), pl_preds_free(&after);
    free(zr), free(mr), free(zmean), free(mmean), free(zall), free(mall), free(u), free(donor), free(ed), free(cs);
    ctx_free(&c);
    return rc;
}
