/* cmd_explain.c — `phishlens explain`: SHAP attributions of a classifier's
 * score for emails (model-backed value function, explain/model_value.c), and
 * `phishlens explain global`: aggregation of saved results by class, source
 * and correctness, comparison of two result sets and dataset-artifact
 * candidates from a corpus profile. See docs/explain.md. */
#include "cli.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/data.h"
#include "explain/explain.h"
#include "model/model.h"
#include "prompt/prompt.h"
#include "tokenizer/tokenizer.h"

static const char *usage_text =
    "usage: phishlens explain -m MODEL [--lora FILE[:SCALE]]... [-t TOKENIZER] --input FILE.jsonl [--ids ID,...]\n"
    "                         [--limit N] [--method partition|permutation|kernel|exact]\n"
    "                         [--features word|token|sentence|field]\n"
    "                         [--tree email|shap] [--mask-policy mask|collapse|delete|baseline] [--mask-id N]\n"
    "                         [--baseline-id ID] [--prob] [--max-evals N] [--batch N] [--seed S]\n"
    "                         [--max-email-tokens N] [--segments K] [--kv-pool-mb N] -o OUT.json\n"
    "                         [--view ansi|html|none] [--bf16]\n"
    "       phishlens explain global RESULT.json... [--by class|source|correct] [--compare OTHER.json...]\n"
    "                         [--profile PROFILE.json] [--top K] [--min-count N] -o GLOBAL.json\n"
    "  Attributions of the classifier score (logit(phishing) - logit(legitimate) at the answer\n"
    "  position; --prob: its sigmoid) to the email's words (tokens, sentences, fields), masked over\n"
    "  token ids. Budgets: partition --max-evals 500 by default; permutation max(500, 2(2M+1));\n"
    "  kernel 2M+2048; exact at most 16 features. --view html writes OUT.html next to OUT.json.\n"
    "  -t: tokenizer.json / HF directory when the model file's own vocabulary is not usable.\n"
    "  --bf16: quantized weights as bf16 tiles on the CPU's AMX units (faster; see `logits`).\n"
    "  --kv-pool-mb: key/value caches of earlier masks kept per email to fork later ones from\n"
    "  (default 512; more memory, fewer tokens to run; the values do not change).\n"
    "  global: per-word mean |phi| over all examples and per slice; --compare ranks the words whose\n"
    "  weight differs most between the two result sets; --profile takes `data profile --json` output\n"
    "  and lists source-distinctive tokens that rank high as artifact candidates.\n";

static int parse_level(const char *s, pl_feat_level *l) {
    if (!strcmp(s, "word")) *l = PL_FEAT_WORD;
    else if (!strcmp(s, "token")) *l = PL_FEAT_TOKEN;
    else if (!strcmp(s, "sentence")) *l = PL_FEAT_SENTENCE;
    else if (!strcmp(s, "field")) *l = PL_FEAT_FIELD;
    else return 0;
    return 1;
}

static const char *level_name(pl_feat_level l) {
    switch (l) {
    case PL_FEAT_TOKEN: return "token";
    case PL_FEAT_SENTENCE: return "sentence";
    case PL_FEAT_FIELD: return "field";
    default: return "word";
    }
}

static int parse_policy(const char *s, pl_mask_policy *p) {
    if (!strcmp(s, "mask") || !strcmp(s, "replace")) *p = PL_MASK_REPLACE;
    else if (!strcmp(s, "collapse")) *p = PL_MASK_COLLAPSE;
    else if (!strcmp(s, "delete")) *p = PL_MASK_DELETE;
    else if (!strcmp(s, "baseline")) *p = PL_MASK_BASELINE;
    else return 0;
    return 1;
}

/* Is id in the comma-separated list? */
static int id_listed(const char *list, const char *id) {
    size_t n = strlen(id);
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, id, n)) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

static pl_status json_str(pl_buf *b, const char *s) {
    cJSON *j = cJSON_CreateString(s ? s : "");
    if (!j) return pl_error(PL_ERR_NOMEM, "out of memory");
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!t) return pl_error(PL_ERR_NOMEM, "out of memory");
    pl_status st = pl_buf_append(b, t, strlen(t));
    free(t);
    return st;
}

static int cmd_explain_global(int argc, char **argv);

static pl_status write_html(const char *json_path, const pl_buf *body) {
    pl_buf path = {0}, page = {0};
    size_t n = strlen(json_path);
    const char *dot = strrchr(json_path, '.');
    const char *slash = strrchr(json_path, '/');
    if (dot && (!slash || dot > slash)) n = (size_t)(dot - json_path);
    pl_status st = pl_buf_printf(&path, "%.*s.html", (int)n, json_path);
    if (!st) st = pl_buf_printf(&page, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>phishlens explain</title>"
                                       "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
                                       ".pl-explain{font-family:monospace;line-height:1.7;border:1px solid #ccc;padding:1em}"
                                       "</style></head><body>\n");
    if (!st) st = pl_buf_append(&page, body->data ? body->data : "", body->len);
    if (!st) st = pl_buf_printf(&page, "</body></html>\n");
    if (!st) st = pl_write_file_atomic(path.data, page.data, page.len);
    pl_buf_free(&path);
    pl_buf_free(&page);
    return st;
}

int cmd_explain(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "global")) return cmd_explain_global(argc - 1, argv + 1);
    cli_model_args ma = {0};
    const char *input = NULL, *ids = NULL, *out = NULL, *tok_path = NULL, *view = "none", *tree_s = "email", *baseline_id = NULL;
    long limit = 0, max_evals = 0, batch = 0, seed = 0, max_email = 0, segments = 0, mask_id = -1, pool_mb = 0;
    pl_xmethod method = PL_XM_PARTITION;
    pl_xmodel_opts xo;
    pl_xmodel_opts_init(&xo);
    for (int i = 1; i < argc; i++) {
        int r = cli_model_opt(&ma, "explain", argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        const char *o = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            printf("%s", usage_text);
            return 0;
        } else if (!strcmp(o, "--prob")) {
            xo.prob = 1;
        } else if (!has) {
            return cli_usage_error("explain", "unknown or incomplete option '%s'", o);
        } else if (!strcmp(o, "-t") || !strcmp(o, "--tokenizer")) {
            tok_path = argv[++i];
        } else if (!strcmp(o, "--input")) {
            input = argv[++i];
        } else if (!strcmp(o, "--ids")) {
            ids = argv[++i];
        } else if (!strcmp(o, "-o")) {
            out = argv[++i];
        } else if (!strcmp(o, "--view")) {
            view = argv[++i];
            if (strcmp(view, "ansi") && strcmp(view, "html") && strcmp(view, "none"))
                return cli_usage_error("explain", "--view must be ansi, html or none (got '%s')", view);
        } else if (!strcmp(o, "--tree")) {
            tree_s = argv[++i];
            if (strcmp(tree_s, "email") && strcmp(tree_s, "shap"))
                return cli_usage_error("explain", "--tree must be email or shap (got '%s')", tree_s);
        } else if (!strcmp(o, "--method")) {
            if (pl_xmethod_parse(argv[++i], &method))
                return cli_usage_error("explain", "--method must be partition, permutation, kernel or exact (got '%s')", argv[i]);
        } else if (!strcmp(o, "--features")) {
            if (!parse_level(argv[++i], &xo.level))
                return cli_usage_error("explain", "--features must be word, token, sentence or field (got '%s')", argv[i]);
        } else if (!strcmp(o, "--mask-policy")) {
            if (!parse_policy(argv[++i], &xo.policy))
                return cli_usage_error("explain", "--mask-policy must be mask, collapse, delete or baseline (got '%s')", argv[i]);
        } else if (!strcmp(o, "--baseline-id")) {
            baseline_id = argv[++i];
        } else if (!strcmp(o, "--limit")) {
            if (!cli_parse_int("explain", o, argv[++i], 1, 100000000, &limit)) return EXIT_USAGE;
        } else if (!strcmp(o, "--max-evals")) {
            if (!cli_parse_int("explain", o, argv[++i], 2, 100000000, &max_evals)) return EXIT_USAGE;
        } else if (!strcmp(o, "--batch")) {
            if (!cli_parse_int("explain", o, argv[++i], 1, 1000000, &batch)) return EXIT_USAGE;
        } else if (!strcmp(o, "--seed")) {
            if (!cli_parse_int("explain", o, argv[++i], 0, 0x7fffffffL, &seed)) return EXIT_USAGE;
        } else if (!strcmp(o, "--mask-id")) {
            if (!cli_parse_int("explain", o, argv[++i], 0, 0x7fffffffL, &mask_id)) return EXIT_USAGE;
        } else if (!strcmp(o, "--max-email-tokens")) {
            if (!cli_parse_int("explain", o, argv[++i], 1, 1000000, &max_email)) return EXIT_USAGE;
        } else if (!strcmp(o, "--segments")) {
            if (!cli_parse_int("explain", o, argv[++i], 1, 14, &segments)) return EXIT_USAGE;
        } else if (!strcmp(o, "--kv-pool-mb")) {
            if (!cli_parse_int("explain", o, argv[++i], 1, 1 << 20, &pool_mb)) return EXIT_USAGE;
        } else {
            return cli_usage_error("explain", "unknown option '%s'", o);
        }
    }
    if (!ma.model) return cli_usage_error("explain", "-m MODEL is required");
    if (!input) return cli_usage_error("explain", "--input FILE.jsonl is required");
    if (!out) return cli_usage_error("explain", "-o OUT.json is required");
    if (xo.policy == PL_MASK_BASELINE && !baseline_id)
        return cli_usage_error("explain", "--mask-policy baseline needs --baseline-id ID (a record of the input)");
    xo.mask_id = (int32_t)mask_id;
    xo.max_segments = (int)segments;
    xo.pool_kib = (int)(pool_mb * 1024 > 0x7fffffffL ? 0x7fffffffL : pool_mb * 1024);

    pl_records rs = {0};
    pl_model *m = NULL;
    pl_tokenizer *tok = NULL;
    pl_prompt prompt;
    int prompt_ok = 0;
    pl_xmodel *xm = NULL;
    pl_buf json = {0}, html = {0}, ansi = {0};
    const pl_record *base = NULL;
    size_t done = 0;
    pl_status st = pl_records_read_jsonl(input, &rs);
    if (!st && baseline_id) {
        for (size_t i = 0; i < rs.n && !base; i++)
            if (!strcmp(rs.v[i].id, baseline_id)) base = &rs.v[i];
        if (!base) st = pl_error(PL_ERR_NOT_FOUND, "%s: no record with id '%s' (--baseline-id)", input, baseline_id);
    }
    if (!st) st = cli_model_load(&ma, &m);
    if (!st) st = cli_tok_open(tok_path ? tok_path : ma.model, &tok);
    if (!st) {
        pl_prompt_spec spec = pl_prompt_spec_default();
        if (max_email > 0) spec.max_email_tokens = (int)max_email;
        st = pl_prompt_init(&prompt, tok, &spec);
        prompt_ok = !st;
    }
    if (!st) st = pl_xmodel_new(m, tok, &prompt, &xo, &xm);
    if (!st) {
        st = pl_buf_printf(&json, "{\"model\":");
        if (!st) st = json_str(&json, ma.model);
        if (!st) st = pl_buf_printf(&json, ",\"lora\":[");
        for (int k = 0; !st && k < ma.n_lora; k++) {
            if (k) st = pl_buf_append(&json, ",", 1);
            if (!st) st = json_str(&json, ma.lora[k]);
        }
        if (!st) st = pl_buf_printf(&json, "],\"input\":");
        if (!st) st = json_str(&json, input);
        if (!st)
            st = pl_buf_printf(&json,
                               ",\"method\":\"%s\",\"features\":\"%s\",\"tree\":\"%s\",\"mask_policy\":\"%s\","
                               "\"mask_id\":%d,\"score\":\"%s\",\"max_evals\":%ld,\"examples\":[",
                               pl_xmethod_name(method), level_name(xo.level), tree_s,
                               pl_mask_policy_name(xo.policy), (int)pl_xmodel_mask_id(xm),
                               xo.prob ? "p_phish" : "logit_diff", max_evals);
    }
    for (size_t i = 0; !st && i < rs.n; i++) {
        const pl_record *r = &rs.v[i];
        if (ids && !id_listed(ids, r->id)) continue;
        if (limit && done >= (size_t)limit) break;
        double t0 = pl_time_now();
        pl_xemail *e = NULL;
        pl_xtree tree = {0};
        pl_xresult res = {0};
        size_t budget = 0;
        st = pl_xemail_new(xm, r, base, &e);
        if (st) {
            st = pl_error_wrap(st, "%s: record '%s'", input, r->id);
            break;
        }
        const pl_features *f = pl_xemail_features(e);
        st = pl_xmodel_budget(method, f->n_features, (size_t)max_evals, &budget);
        if (st) st = pl_error_wrap(st, "record '%s' (%zu %s features)", r->id, f->n_features, level_name(xo.level));
        pl_xopts xopt;
        pl_xopts_init(&xopt, method);
        xopt.max_evals = (size_t)max_evals;
        xopt.seed = (uint64_t)seed;
        xopt.batch_size = (size_t)batch;
        if (!st && method == PL_XM_PARTITION) {
            if (!strcmp(tree_s, "shap")) st = pl_xtree_shap_features(f, pl_xemail_tokseq(e), &tree);
            else st = pl_xtree_email(f, &tree);
            xopt.tree = &tree;
        }
        if (!st) st = pl_explain_run(pl_xemail_value, e, f->n_features, &xopt, &res);
        double secs = pl_time_now() - t0;
        pl_xexample ex = {r->id, &res, f, pl_xemail_tokseq(e), pl_xemail_mask_spec(e)};
        if (!st) {
            double thr = xo.prob ? 0.5 : 0.0;
            int pred = res.fx > thr;
            pl_xemail_stats xs = pl_xemail_get_stats(e);
            st = pl_buf_printf(&json, "%s{\"label\":%d,\"source\":", done ? "," : "", r->label);
            if (!st) st = json_str(&json, r->source);
            if (!st)
                st = pl_buf_printf(&json, ",\"pred\":%d,\"correct\":%d,\"truncated\":%d,\"n_tokens\":%zu,\"seconds\":%.4f,"
                                          "\"tokens_run\":%zu,\"tokens_without_reuse\":%zu,\"explanation\":",
                                   pred, r->label < 0 ? -1 : pred == r->label, pl_xemail_truncated(e),
                                   pl_xemail_tokseq(e)->n_tokens, secs, xs.tokens_run, xs.tokens_full);
            if (!st) st = pl_xexample_to_json(&ex, &json);
            if (!st) st = pl_buf_append(&json, "}", 1);
            if (!st && !strcmp(view, "ansi")) {
                ansi.len = 0;
                st = pl_buf_printf(&ansi, "== %s  label %d  score %+.4f  base %+.4f  (%zu features, %zu evals, %.2fs)\n", r->id,
                                   r->label, res.fx, res.base_value, f->n_features, res.evals, secs);
                if (!st) st = pl_xexample_render_ansi(&ex, isatty(1), &ansi);
                if (!st) printf("%.*s\n\n", (int)ansi.len, ansi.data);
            }
            if (!st && !strcmp(view, "html")) {
                st = pl_buf_printf(&html, "<h3>%s — label %d, score %+.4f (base %+.4f)</h3>\n", "", r->label, res.fx,
                                   res.base_value);
                if (!st) st = pl_xexample_render_html(&ex, &html);
            }
            if (!st && !cli_quiet)
                fprintf(stderr, "explain: %s: %zu features, %zu evals, f(x) %+.4f, base %+.4f, %.2fs\n", r->id,
                        f->n_features, res.evals, res.fx, res.base_value, secs);
            done++;
        }
        pl_xresult_free(&res);
        pl_xtree_free(&tree);
        pl_xemail_free(e);
    }
    if (!st && done == 0) st = pl_error(PL_ERR_NOT_FOUND, "%s: no record selected (--ids/--limit)", input);
    if (!st) st = pl_buf_printf(&json, "]}\n");
    if (!st) st = pl_write_file_atomic(out, json.data, json.len);
    if (!st && !strcmp(view, "html")) st = write_html(out, &html);
    pl_buf_free(&json);
    pl_buf_free(&html);
    pl_buf_free(&ansi);
    pl_xmodel_free(xm);
    if (prompt_ok) pl_prompt_free(&prompt);
    cli_tok_free(tok);
    pl_model_free(m);
    pl_records_free(&rs);
    return st ? cli_fail(st) : 0;
}

/* ---- explain global -------------------------------------------------------------- */

/* Add every example of one result file to g. */
static pl_status load_results(const char *path, pl_xglobal *g, size_t *n_examples) {
    char *data = NULL;
    size_t len = 0;
    pl_status st = pl_read_file(path, &data, &len);
    if (st) return st;
    cJSON *root = cJSON_ParseWithLength(data, len);
    free(data);
    if (!root) return pl_error(PL_ERR_FORMAT, "%s: not valid JSON", path);
    cJSON *ex = cJSON_GetObjectItemCaseSensitive(root, "examples");
    if (!cJSON_IsArray(ex)) st = pl_error(PL_ERR_FORMAT, "%s: field 'examples' missing or not an array", path);
    const cJSON *score = cJSON_GetObjectItemCaseSensitive(root, "score");
    double thr = cJSON_IsString(score) && !strcmp(score->valuestring, "p_phish") ? 0.5 : 0.0;
    size_t idx = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, ex) {
        if (st) break;
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(e, "explanation");
        const cJSON *feats = cJSON_GetObjectItemCaseSensitive(x, "features");
        const cJSON *fx = cJSON_GetObjectItemCaseSensitive(x, "fx");
        if (!cJSON_IsArray(feats) || !cJSON_IsNumber(fx)) {
            st = pl_error(PL_ERR_FORMAT, "%s: examples[%zu].explanation: 'features' or 'fx' missing", path, idx);
            break;
        }
        int label = -1;
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(e, "label");
        if (cJSON_IsNumber(l)) label = l->valueint;
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(e, "source");
        int pred = fx->valuedouble > thr;
        int correct = label < 0 ? -1 : pred == label;
        size_t n = (size_t)cJSON_GetArraySize(feats);
        const char **keys = calloc(n ? n : 1, sizeof *keys);
        double *phi = calloc(n ? n : 1, sizeof *phi);
        if (!keys || !phi) st = pl_error(PL_ERR_NOMEM, "out of memory");
        size_t k = 0;
        const cJSON *f;
        cJSON_ArrayForEach(f, feats) {
            if (st) break;
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(f, "text"), *p = cJSON_GetObjectItemCaseSensitive(f, "phi");
            if (!cJSON_IsString(t) || !cJSON_IsNumber(p)) {
                st = pl_error(PL_ERR_FORMAT, "%s: examples[%zu].explanation.features[%zu]: 'text' or 'phi' missing", path,
                              idx, k);
                break;
            }
            keys[k] = t->valuestring;
            phi[k] = p->valuedouble;
            k++;
        }
        if (!st)
            st = pl_xglobal_add(g, keys, phi, k, label, cJSON_IsString(src) && *src->valuestring ? src->valuestring : NULL,
                                correct);
        free(keys);
        free(phi);
        idx++;
    }
    cJSON_Delete(root);
    if (!st) *n_examples += idx;
    return st;
}

/* Source-distinctive tokens from `data profile --json` output. */
static pl_status load_profile(const char *path, cJSON **root_out, pl_xartifact_in **in, size_t *n_in) {
    char *data = NULL;
    size_t len = 0;
    *in = NULL;
    *n_in = 0;
    pl_status st = pl_read_file(path, &data, &len);
    if (st) return st;
    cJSON *root = cJSON_ParseWithLength(data, len);
    free(data);
    if (!root) return pl_error(PL_ERR_FORMAT, "%s: not valid JSON", path);
    cJSON *srcs = cJSON_GetObjectItemCaseSensitive(root, "sources");
    if (!srcs) {
        cJSON *c;
        cJSON_ArrayForEach(c, root) if (cJSON_IsObject(c) && cJSON_GetObjectItemCaseSensitive(c, "sources")) srcs =
            cJSON_GetObjectItemCaseSensitive(c, "sources");
    }
    if (!cJSON_IsArray(srcs)) {
        cJSON_Delete(root);
        return pl_error(PL_ERR_FORMAT, "%s: field 'sources' missing (expected `phishlens data profile --json` output)", path);
    }
    size_t cap = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, srcs) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(s, "distinctive");
        cap += cJSON_IsArray(d) ? (size_t)cJSON_GetArraySize(d) : 0;
    }
    *in = calloc(cap ? cap : 1, sizeof **in);
    if (!*in) {
        cJSON_Delete(root);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    cJSON_ArrayForEach(s, srcs) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(s, "source");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(s, "distinctive"), *t;
        if (!cJSON_IsString(name) || !cJSON_IsArray(d)) continue;
        cJSON_ArrayForEach(t, d) {
            const cJSON *tok = cJSON_GetObjectItemCaseSensitive(t, "token"), *z = cJSON_GetObjectItemCaseSensitive(t, "z");
            if (cJSON_IsString(tok) && cJSON_IsNumber(z))
                (*in)[(*n_in)++] = (pl_xartifact_in){tok->valuestring, name->valuestring, z->valuedouble};
        }
    }
    *root_out = root;
    return PL_OK;
}

static void print_rows(const pl_xglobal *g, pl_xslice_kind kind, const char *value, const char *title, size_t min_count,
                       size_t k) {
    pl_xstat *rows = NULL;
    size_t n = 0;
    if (pl_xglobal_top(g, kind, value, min_count, k, &rows, &n)) return;
    printf("%s\n", title);
    for (size_t i = 0; i < n; i++)
        printf("  %2zu  %-24s mean|phi| %.4f  mean %+.4f  n=%zu\n", i + 1, rows[i].key, rows[i].mean_abs, rows[i].mean,
               rows[i].count);
    free(rows);
}

static int cmd_explain_global(int argc, char **argv) {
    const char *files[256], *cmp[256];
    size_t nf = 0, nc = 0;
    const char *out = NULL, *by = NULL, *profile = NULL;
    long top = 20, min_count = 2;
    int in_compare = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            printf("%s", usage_text);
            return 0;
        } else if (o[0] == '-' && o[1] && !has) {
            return cli_usage_error("explain global", "unknown or incomplete option '%s'", o);
        } else if (!strcmp(o, "-o")) {
            out = argv[++i];
            in_compare = 0;
        } else if (!strcmp(o, "--by")) {
            by = argv[++i];
            if (strcmp(by, "class") && strcmp(by, "source") && strcmp(by, "correct"))
                return cli_usage_error("explain global", "--by must be class, source or correct (got '%s')", by);
            in_compare = 0;
        } else if (!strcmp(o, "--compare")) {
            if (nc >= 256) return cli_usage_error("explain global", "too many files");
            cmp[nc++] = argv[++i];
            in_compare = 1;
        } else if (!strcmp(o, "--profile")) {
            profile = argv[++i];
            in_compare = 0;
        } else if (!strcmp(o, "--top")) {
            if (!cli_parse_int("explain global", o, argv[++i], 1, 100000, &top)) return EXIT_USAGE;
        } else if (!strcmp(o, "--min-count")) {
            if (!cli_parse_int("explain global", o, argv[++i], 1, 100000, &min_count)) return EXIT_USAGE;
        } else if (o[0] == '-') {
            return cli_usage_error("explain global", "unknown option '%s'", o);
        } else {
            if ((in_compare ? nc : nf) >= 256) return cli_usage_error("explain global", "too many files");
            if (in_compare) cmp[nc++] = o;
            else files[nf++] = o;
        }
    }
    if (!nf) return cli_usage_error("explain global", "give at least one RESULT.json");
    if (!out) return cli_usage_error("explain global", "-o GLOBAL.json is required");
    pl_xglobal *g = NULL, *g2 = NULL;
    size_t n_ex = 0, n_ex2 = 0;
    pl_buf b = {0};
    cJSON *proot = NULL;
    pl_xartifact_in *arts = NULL;
    size_t n_arts = 0;
    pl_status st = pl_xglobal_new(&g);
    for (size_t i = 0; !st && i < nf; i++) st = load_results(files[i], g, &n_ex);
    if (!st && nc) st = pl_xglobal_new(&g2);
    for (size_t i = 0; !st && i < nc; i++) st = load_results(cmp[i], g2, &n_ex2);
    if (!st) st = pl_buf_printf(&b, "{\"examples\":%zu,\"global\":", n_ex);
    if (!st) st = pl_xglobal_to_json(g, (size_t)min_count, (size_t)top, &b);
    if (!st && g2) {
        pl_xdiff *rows = NULL;
        size_t n = 0;
        st = pl_xglobal_compare(g, g2, (size_t)min_count, (size_t)top, &rows, &n);
        if (!st) st = pl_buf_printf(&b, ",\"compare_examples\":%zu,\"compare\":", n_ex2);
        if (!st) st = pl_xdiff_to_json(rows, n, &b);
        if (!st) {
            printf("largest differences in mean |phi| (these results - compared):\n");
            for (size_t i = 0; i < n && i < 10; i++)
                printf("  %-24s %.4f vs %.4f  (diff %+.4f)\n", rows[i].key, rows[i].mean_abs_a, rows[i].mean_abs_b,
                       rows[i].diff);
        }
        free(rows);
    }
    if (!st && profile) {
        st = load_profile(profile, &proot, &arts, &n_arts);
        pl_xcandidate *c = NULL;
        size_t n = 0;
        if (!st) st = pl_xglobal_artifacts(g, arts, n_arts, 3.0, (size_t)top, (size_t)min_count, &c, &n);
        if (!st) st = pl_buf_printf(&b, ",\"artifact_candidates\":");
        if (!st) st = pl_xcandidates_to_json(c, n, &b);
        if (!st) {
            printf("artifact candidates (source-distinctive tokens in the top %ld):\n", top);
            for (size_t i = 0; i < n; i++)
                printf("  %-20s source %-12s z %.1f  rank %zu  mean|phi| %.4f\n", c[i].key, c[i].source, c[i].z, c[i].rank,
                       c[i].mean_abs);
            if (!n) printf("  (none)\n");
        }
        free(c);
    }
    if (!st) st = pl_buf_printf(&b, "}\n");
    if (!st) st = pl_write_file_atomic(out, b.data, b.len);
    if (!st) {
        print_rows(g, PL_XSLICE_ALL, NULL, "top features (all examples):", (size_t)min_count, 10);
        if (by && !strcmp(by, "class")) {
            print_rows(g, PL_XSLICE_LABEL, "1", "label=1 (phishing):", (size_t)min_count, 10);
            print_rows(g, PL_XSLICE_LABEL, "0", "label=0 (legitimate):", (size_t)min_count, 10);
        } else if (by && !strcmp(by, "correct")) {
            print_rows(g, PL_XSLICE_CORRECT, "1", "correct predictions:", (size_t)min_count, 10);
            print_rows(g, PL_XSLICE_CORRECT, "0", "wrong predictions:", (size_t)min_count, 10);
        } else if (by && !strcmp(by, "source")) {
            /* the sources named in the profile, else those in the JSON slices */
            const char *seen[64];
            size_t ns = 0;
            for (size_t i = 0; i < n_arts && ns < 64; i++) {
                int dup = 0;
                for (size_t k = 0; k < ns; k++) dup |= !strcmp(seen[k], arts[i].source);
                if (!dup) seen[ns++] = arts[i].source;
            }
            if (!ns) {
                cJSON *j = cJSON_Parse(b.data);
                const cJSON *sl = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "global"), "slices"), *c;
                cJSON_ArrayForEach(c, sl) if (!strncmp(c->string, "source=", 7)) {
                    char title[300];
                    snprintf(title, sizeof title, "%s:", c->string);
                    print_rows(g, PL_XSLICE_SOURCE, c->string + 7, title, (size_t)min_count, 10);
                }
                cJSON_Delete(j);
            }
            for (size_t k = 0; k < ns; k++) {
                char title[300];
                snprintf(title, sizeof title, "source=%s:", seen[k]);
                print_rows(g, PL_XSLICE_SOURCE, seen[k], title, (size_t)min_count, 10);
            }
        }
    }
    free(arts);
    cJSON_Delete(proot);
    pl_buf_free(&b);
    pl_xglobal_free(g);
    pl_xglobal_free(g2);
    return st ? cli_fail(st) : 0;
}
