/* config.c — the study config (JSON, docs/study.md): parsing and validation.
 *
 * Every error names the config file and the JSON path of the bad field
 * ("study.json: paradigms[1]: ..."). Unknown keys are errors too, so a typo
 * never silently falls back to a default. Relative paths are resolved
 * against the folder of the config file.
 */
#include "study/study.h"
#include "train/train.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *pl_study_family_name(pl_study_family f) {
    switch (f) {
    case PL_FAM_LLAMA: return "llama";
    case PL_FAM_MISTRAL: return "mistral";
    case PL_FAM_GEMMA2: return "gemma2";
    case PL_FAM_LEXICAL_NB: return "lexical-nb";
    }
    return "?";
}

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* Parse context: file name for messages. */
typedef struct {
    const char *file;
} pctx;

static pl_status bad(const pctx *p, const char *jpath, const char *fmt, const char *a) {
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a ? a : "");
    return pl_error(PL_ERR_INVALID, "%s: %s: %s", p->file, jpath, msg);
}

/* Reject keys not in `known` (NULL-terminated). */
static pl_status check_keys(const pctx *p, const cJSON *obj, const char *jpath, const char *const *known) {
    for (const cJSON *it = obj->child; it; it = it->next) {
        int ok = 0;
        for (size_t i = 0; known[i]; i++)
            if (it->string && !strcmp(it->string, known[i])) ok = 1;
        if (!ok) {
            char where[256];
            snprintf(where, sizeof where, "%s%s%s", jpath, *jpath ? "." : "", it->string ? it->string : "?");
            return bad(p, where, "unknown key (see docs/study.md for the fields)", NULL);
        }
    }
    return PL_OK;
}

static pl_status get_str(const pctx *p, const cJSON *obj, const char *key, const char *jpath, int required,
                         const char *def, char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char where[256];
    snprintf(where, sizeof where, "%s%s%s", jpath, *jpath ? "." : "", key);
    if (!v) {
        if (required) return bad(p, where, "required string is missing", NULL);
        *out = dupstr(def);
        return *out ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
    }
    if (!cJSON_IsString(v)) return bad(p, where, "must be a string", NULL);
    if (required && !v->valuestring[0]) return bad(p, where, "must not be empty", NULL);
    *out = dupstr(v->valuestring);
    return *out ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
}

static pl_status get_num(const pctx *p, const cJSON *obj, const char *key, const char *jpath, double lo,
                         double hi, int integer, double def, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char where[256];
    snprintf(where, sizeof where, "%s%s%s", jpath, *jpath ? "." : "", key);
    if (!v) {
        *out = def;
        return PL_OK;
    }
    if (!cJSON_IsNumber(v)) return bad(p, where, "must be a number", NULL);
    double x = v->valuedouble;
    char range[128];
    snprintf(range, sizeof range, "%s in [%g, %g], got %.17g", integer ? "an integer" : "a number", lo, hi, x);
    if (!isfinite(x) || x < lo || x > hi || (integer && x != floor(x))) return bad(p, where, "must be %s", range);
    *out = x;
    return PL_OK;
}

/* An optional object member (NULL when absent); error when not an object. */
static pl_status get_obj(const pctx *p, const cJSON *root, const char *key, const cJSON **out) {
    *out = cJSON_GetObjectItemCaseSensitive(root, key);
    if (*out && !cJSON_IsObject(*out)) return bad(p, key, "must be an object", NULL);
    return PL_OK;
}

static char *resolve(const char *base, const char *rel) {
    if (!rel[0] || rel[0] == '/' || !base[0]) return dupstr(rel);
    size_t n = strlen(base) + strlen(rel) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", base, rel);
    return s;
}

static int valid_name(const char *s) {
    if (!s[0] || strlen(s) > 64) return 0;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
              *c == '-' || *c == '.'))
            return 0;
    return s[0] != '.';
}

static long corpus_index(const pl_study_config *c, const char *name) {
    for (size_t i = 0; i < c->n_corpora; i++)
        if (!strcmp(c->corpora[i].name, name)) return (long)i;
    return -1;
}

/* "a+b+c" -> the corpus list; every name must be a corpus. */
static pl_status parse_mixture(const pctx *p, const pl_study_config *c, const char *mix, const char *jpath,
                               pl_study_paradigm *pd) {
    char *copy = dupstr(mix);
    if (!copy) return pl_error(PL_ERR_NOMEM, "out of memory");
    pl_status st = PL_OK;
    for (char *save = NULL, *tok = strtok_r(copy, "+", &save); tok && !st; tok = strtok_r(NULL, "+", &save)) {
        if (corpus_index(c, tok) < 0) {
            st = bad(p, jpath, "'%s' names no corpus in \"corpora\"", tok);
            break;
        }
        for (size_t k = 0; k < pd->n_sources; k++)
            if (!strcmp(pd->sources[k], tok)) st = bad(p, jpath, "corpus '%s' is listed twice", tok);
        if (st) break;
        char **v = realloc(pd->sources, (pd->n_sources + 1) * sizeof *v);
        if (!v || !(v[pd->n_sources] = dupstr(tok))) {
            if (v) pd->sources = v;
            st = pl_error(PL_ERR_NOMEM, "out of memory");
            break;
        }
        pd->sources = v;
        pd->n_sources++;
    }
    free(copy);
    if (!st && pd->n_sources == 0) st = bad(p, jpath, "the mixture '%s' is empty", mix);
    return st;
}

/* All corpora as the mixture. */
static pl_status all_sources(const pl_study_config *c, pl_study_paradigm *pd) {
    pd->sources = calloc(c->n_corpora, sizeof *pd->sources);
    if (!pd->sources) return pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < c->n_corpora; i++) {
        if (!(pd->sources[i] = dupstr(c->corpora[i].name))) return pl_error(PL_ERR_NOMEM, "out of memory");
        pd->n_sources++;
    }
    return PL_OK;
}

static pl_status parse_paradigm(const pctx *p, const pl_study_config *c, const char *s, const char *jpath,
                                pl_study_paradigm *pd) {
    if (!(pd->spec = dupstr(s))) return pl_error(PL_ERR_NOMEM, "out of memory");
    const char *colon = strchr(s, ':');
    size_t klen = colon ? (size_t)(colon - s) : strlen(s);
    const char *arg = colon ? colon + 1 : NULL;
#define IS(k) (klen == strlen(k) && !strncmp(s, k, klen))
    if (IS("zero-shot")) {
        pd->kind = PL_PARA_ZERO_SHOT;
        if (arg) return bad(p, jpath, "zero-shot takes no argument, got '%s'", s);
        return PL_OK;
    }
    if (IS("narrow")) {
        pd->kind = PL_PARA_NARROW;
        if (!arg || !arg[0] || strchr(arg, '+'))
            return bad(p, jpath, "narrow needs exactly one corpus: narrow:<corpus>, got '%s'", s);
        return parse_mixture(p, c, arg, jpath, pd);
    }
    if (IS("generalist")) {
        pd->kind = PL_PARA_GENERALIST;
        if (!arg || !strcmp(arg, "all")) return all_sources(c, pd);
        return parse_mixture(p, c, arg, jpath, pd);
    }
    if (IS("leave-one-source-out") || IS("loso")) {
        pd->kind = PL_PARA_LOSO;
        if (arg) return bad(p, jpath, "leave-one-source-out takes no argument, got '%s'", s);
        if (c->n_corpora < 2) return bad(p, jpath, "leave-one-source-out needs at least two corpora", NULL);
        return PL_OK;
    }
    if (IS("chain-of-thought") || IS("cot")) {
        pd->kind = PL_PARA_COT;
        if (!arg || !strcmp(arg, "all")) return all_sources(c, pd);
        return parse_mixture(p, c, arg, jpath, pd);
    }
#undef IS
    return bad(p, jpath,
               "unknown paradigm '%s' (zero-shot, narrow:<corpus>, generalist[:<a>+<b>], "
               "leave-one-source-out, chain-of-thought[:<mixture>])",
               s);
}

void pl_study_config_free(pl_study_config *c) {
    if (!c) return;
    free(c->path);
    free(c->base_dir);
    free(c->name);
    for (size_t i = 0; i < c->n_corpora; i++) {
        free(c->corpora[i].name);
        free(c->corpora[i].path);
        free(c->corpora[i].source);
    }
    free(c->corpora);
    for (size_t i = 0; i < c->n_models; i++) {
        free(c->models[i].name);
        free(c->models[i].path);
        free(c->models[i].dtype);
    }
    free(c->models);
    for (size_t i = 0; i < c->n_paradigms; i++) {
        free(c->paradigms[i].spec);
        for (size_t k = 0; k < c->paradigms[i].n_sources; k++) free(c->paradigms[i].sources[k]);
        free(c->paradigms[i].sources);
    }
    free(c->paradigms);
    for (size_t i = 0; i < c->n_test; i++) free(c->test[i]);
    free(c->test);
    free(c->explain_method);
    free(c->shortcut_hint);
    free(c->hyper.targets_spec);
    memset(c, 0, sizeof *c);
}

static pl_status parse_root(const pctx *p, const cJSON *root, pl_study_config *c) {
    static const char *const top[] = {"name",   "seed",    "corpora", "models",   "paradigms",     "hyperparameters",
                                      "test",   "explain", "interp",  "cost",     "shortcut_hint", "description",
                                      NULL};
    pl_status st = check_keys(p, root, "", top);
    if (st) return st;
    if ((st = get_str(p, root, "name", "", 0, "study", &c->name))) return st;
    if ((st = get_str(p, root, "shortcut_hint", "", 0, "", &c->shortcut_hint))) return st;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "description");
    if (d && !cJSON_IsString(d)) return bad(p, "description", "must be a string", NULL);
    double x;
    if ((st = get_num(p, root, "seed", "", 0, 9007199254740992.0, 1, 1, &x))) return st;
    c->seed = (uint64_t)x;

    /* corpora */
    const cJSON *cs = cJSON_GetObjectItemCaseSensitive(root, "corpora");
    if (!cs) return bad(p, "corpora", "required array is missing", NULL);
    if (!cJSON_IsArray(cs) || cJSON_GetArraySize(cs) == 0) return bad(p, "corpora", "must be a non-empty array", NULL);
    size_t nc = (size_t)cJSON_GetArraySize(cs);
    if (!(c->corpora = calloc(nc, sizeof *c->corpora))) return pl_error(PL_ERR_NOMEM, "out of memory");
    size_t i = 0;
    for (const cJSON *e = cs->child; e; e = e->next, i++) {
        char jp[64];
        snprintf(jp, sizeof jp, "corpora[%zu]", i);
        if (!cJSON_IsObject(e)) return bad(p, jp, "must be an object {\"name\", \"path\", ...}", NULL);
        static const char *const keys[] = {"name", "path", "source", "max", NULL};
        if ((st = check_keys(p, e, jp, keys))) return st;
        pl_study_corpus *k = &c->corpora[i];
        c->n_corpora = i + 1;
        char *rel = NULL;
        if ((st = get_str(p, e, "name", jp, 1, "", &k->name))) return st;
        if ((st = get_str(p, e, "path", jp, 1, "", &rel))) return st;
        k->path = resolve(c->base_dir, rel);
        free(rel);
        if (!k->path) return pl_error(PL_ERR_NOMEM, "out of memory");
        if ((st = get_str(p, e, "source", jp, 0, "", &k->source))) return st;
        if ((st = get_num(p, e, "max", jp, 0, 1e12, 1, 0, &x))) return st;
        k->max = (size_t)x;
        char jn[80];
        snprintf(jn, sizeof jn, "%s.name", jp);
        if (!valid_name(k->name)) return bad(p, jn, "'%s' must be 1-64 characters of [A-Za-z0-9_.-]", k->name);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(c->corpora[j].name, k->name)) return bad(p, jn, "duplicate corpus name '%s'", k->name);
    }

    /* models */
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(root, "models");
    if (!ms) return bad(p, "models", "required array is missing", NULL);
    if (!cJSON_IsArray(ms) || cJSON_GetArraySize(ms) == 0) return bad(p, "models", "must be a non-empty array", NULL);
    if (!(c->models = calloc((size_t)cJSON_GetArraySize(ms), sizeof *c->models)))
        return pl_error(PL_ERR_NOMEM, "out of memory");
    i = 0;
    for (const cJSON *e = ms->child; e; e = e->next, i++) {
        char jp[64];
        snprintf(jp, sizeof jp, "models[%zu]", i);
        if (!cJSON_IsObject(e)) return bad(p, jp, "must be an object {\"name\", \"family\", \"path\", ...}", NULL);
        static const char *const keys[] = {"name", "path", "family", "dtype", "compute", NULL};
        if ((st = check_keys(p, e, jp, keys))) return st;
        pl_study_model *m = &c->models[i];
        c->n_models = i + 1;
        char *fam = NULL, *rel = NULL;
        if ((st = get_str(p, e, "name", jp, 1, "", &m->name))) return st;
        if ((st = get_str(p, e, "family", jp, 1, "", &fam))) return st;
        char jf[80];
        snprintf(jf, sizeof jf, "%s.family", jp);
        if (!strcmp(fam, "llama")) m->family = PL_FAM_LLAMA;
        else if (!strcmp(fam, "mistral")) m->family = PL_FAM_MISTRAL;
        else if (!strcmp(fam, "gemma2")) m->family = PL_FAM_GEMMA2;
        else if (!strcmp(fam, "lexical-nb")) m->family = PL_FAM_LEXICAL_NB;
        else {
            st = bad(p, jf, "unknown family '%s' (llama, mistral, gemma2, lexical-nb)", fam);
            free(fam);
            return st;
        }
        free(fam);
        if ((st = get_str(p, e, "path", jp, m->family != PL_FAM_LEXICAL_NB, "", &rel))) return st;
        m->path = resolve(c->base_dir, rel);
        free(rel);
        if (!m->path) return pl_error(PL_ERR_NOMEM, "out of memory");
        if ((st = get_str(p, e, "dtype", jp, 0, "", &m->dtype))) return st;
        static const char *const dtypes[] = {"", "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0",
                                             "q5_1", "q4_K", "q5_K", "q6_K", NULL};
        int okd = 0;
        for (size_t k = 0; dtypes[k]; k++)
            if (!strcmp(m->dtype, dtypes[k])) okd = 1;
        char jd[80];
        snprintf(jd, sizeof jd, "%s.dtype", jp);
        if (!okd) return bad(p, jd, "unknown dtype '%s' (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_K, q5_K, q6_K)", m->dtype);
        char *comp = NULL;
        if ((st = get_str(p, e, "compute", jp, 0, "default", &comp))) return st;
        m->bf16 = !strcmp(comp, "bf16");
        int okc = m->bf16 || !strcmp(comp, "default");
        free(comp);
        snprintf(jd, sizeof jd, "%s.compute", jp);
        if (!okc) return bad(p, jd, "unknown compute mode (default, bf16)", NULL);
        char jn[80];
        snprintf(jn, sizeof jn, "%s.name", jp);
        if (!valid_name(m->name)) return bad(p, jn, "'%s' must be 1-64 characters of [A-Za-z0-9_.-]", m->name);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(c->models[j].name, m->name)) return bad(p, jn, "duplicate model name '%s'", m->name);
    }

    /* paradigms */
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(root, "paradigms");
    if (!ps) return bad(p, "paradigms", "required array is missing", NULL);
    if (!cJSON_IsArray(ps) || cJSON_GetArraySize(ps) == 0)
        return bad(p, "paradigms", "must be a non-empty array of strings", NULL);
    if (!(c->paradigms = calloc((size_t)cJSON_GetArraySize(ps), sizeof *c->paradigms)))
        return pl_error(PL_ERR_NOMEM, "out of memory");
    i = 0;
    for (const cJSON *e = ps->child; e; e = e->next, i++) {
        char jp[64];
        snprintf(jp, sizeof jp, "paradigms[%zu]", i);
        if (!cJSON_IsString(e)) return bad(p, jp, "must be a string such as \"narrow:<corpus>\"", NULL);
        c->n_paradigms = i + 1;
        if ((st = parse_paradigm(p, c, e->valuestring, jp, &c->paradigms[i]))) return st;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(c->paradigms[j].spec, e->valuestring)) return bad(p, jp, "duplicate paradigm '%s'", e->valuestring);
    }

    /* hyperparameters */
    const cJSON *h;
    if ((st = get_obj(p, root, "hyperparameters", &h))) return st;
    static const cJSON empty_obj = {0};
    if (!h) h = &empty_obj;
    static const char *const hkeys[] = {"lr",         "epochs",   "lora_rank", "lora_alpha", "batch",
                                        "max_tokens", "nb_alpha", "targets",   "min_steps", NULL};
    if (h != &empty_obj && (st = check_keys(p, h, "hyperparameters", hkeys))) return st;
    if ((st = get_num(p, h, "lr", "hyperparameters", 1e-9, 1.0, 0, 2e-4, &c->hyper.lr))) return st;
    if ((st = get_num(p, h, "epochs", "hyperparameters", 1, 1000, 1, 1, &x))) return st;
    c->hyper.epochs = (int)x;
    if ((st = get_num(p, h, "lora_rank", "hyperparameters", 0, 4096, 1, 8, &x))) return st;
    c->hyper.lora_rank = (int)x;
    if ((st = get_num(p, h, "lora_alpha", "hyperparameters", 0, 1e6, 0, 16, &c->hyper.lora_alpha))) return st;
    if ((st = get_num(p, h, "batch", "hyperparameters", 1, 65536, 1, 8, &x))) return st;
    c->hyper.batch = (int)x;
    if ((st = get_num(p, h, "max_tokens", "hyperparameters", 8, 1 << 20, 1, 512, &x))) return st;
    c->hyper.max_tokens = (int)x;
    if ((st = get_num(p, h, "nb_alpha", "hyperparameters", 1e-6, 100, 0, 1.0, &c->hyper.nb_alpha))) return st;
    if ((st = get_num(p, h, "min_steps", "hyperparameters", 0, 1e7, 1, 0, &x))) return st;
    c->hyper.min_steps = (int)x;
    if ((st = get_str(p, h, "targets", "hyperparameters", 0, "q,v", &c->hyper.targets_spec))) return st;
    if (pl_tr_parse_targets(c->hyper.targets_spec, &c->hyper.targets) != PL_OK)
        return bad(p, "hyperparameters.targets", "%s", pl_errmsg());

    /* test */
    const cJSON *t;
    if ((st = get_obj(p, root, "test", &t))) return st;
    if (!t) t = &empty_obj;
    static const char *const tkeys[] = {"corpora", "test_frac", "val_frac", "max_per_corpus", "bootstrap", NULL};
    if (t != &empty_obj && (st = check_keys(p, t, "test", tkeys))) return st;
    if ((st = get_num(p, t, "test_frac", "test", 0.01, 0.9, 0, 0.2, &c->test_frac))) return st;
    if ((st = get_num(p, t, "val_frac", "test", 0.0, 0.5, 0, 0.1, &c->val_frac))) return st;
    if (c->test_frac + c->val_frac >= 0.95) return bad(p, "test.val_frac", "test_frac + val_frac must be below 0.95", NULL);
    if ((st = get_num(p, t, "max_per_corpus", "test", 0, 1e12, 1, 0, &x))) return st;
    c->max_test = (size_t)x;
    if ((st = get_num(p, t, "bootstrap", "test", 0, 1e6, 1, 1000, &x))) return st;
    c->n_boot = (int64_t)x;
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(t, "corpora");
    if (tc) {
        if (!cJSON_IsArray(tc) || cJSON_GetArraySize(tc) == 0)
            return bad(p, "test.corpora", "must be a non-empty array of corpus names", NULL);
        if (!(c->test = calloc((size_t)cJSON_GetArraySize(tc), sizeof *c->test)))
            return pl_error(PL_ERR_NOMEM, "out of memory");
        i = 0;
        for (const cJSON *e = tc->child; e; e = e->next, i++) {
            char jp[64];
            snprintf(jp, sizeof jp, "test.corpora[%zu]", i);
            if (!cJSON_IsString(e)) return bad(p, jp, "must be a string", NULL);
            if (corpus_index(c, e->valuestring) < 0) return bad(p, jp, "'%s' names no corpus in \"corpora\"", e->valuestring);
            for (size_t j = 0; j < c->n_test; j++)
                if (!strcmp(c->test[j], e->valuestring)) return bad(p, jp, "'%s' is listed twice", e->valuestring);
            if (!(c->test[i] = dupstr(e->valuestring))) return pl_error(PL_ERR_NOMEM, "out of memory");
            c->n_test = i + 1;
        }
    } else {
        if (!(c->test = calloc(c->n_corpora, sizeof *c->test))) return pl_error(PL_ERR_NOMEM, "out of memory");
        for (i = 0; i < c->n_corpora; i++) {
            if (!(c->test[i] = dupstr(c->corpora[i].name))) return pl_error(PL_ERR_NOMEM, "out of memory");
            c->n_test = i + 1;
        }
    }

    /* explain */
    const cJSON *ex;
    if ((st = get_obj(p, root, "explain", &ex))) return st;
    if (!ex) ex = &empty_obj;
    static const char *const ekeys[] = {"method", "examples", "max_evals", "top_k", NULL};
    if (ex != &empty_obj && (st = check_keys(p, ex, "explain", ekeys))) return st;
    if ((st = get_str(p, ex, "method", "explain", 0, "partition", &c->explain_method))) return st;
    if (strcmp(c->explain_method, "exact") && strcmp(c->explain_method, "permutation") &&
        strcmp(c->explain_method, "kernel") && strcmp(c->explain_method, "partition"))
        return bad(p, "explain.method", "unknown method '%s' (exact, permutation, kernel, partition)", c->explain_method);
    if ((st = get_num(p, ex, "examples", "explain", 0, 1e6, 1, 40, &x))) return st;
    c->explain_examples = (size_t)x;
    if ((st = get_num(p, ex, "max_evals", "explain", 0, 1e7, 1, 500, &x))) return st;
    c->explain_max_evals = (size_t)x;
    if ((st = get_num(p, ex, "top_k", "explain", 1, 1000, 1, 15, &x))) return st;
    c->explain_top_k = (size_t)x;

    /* interp */
    const cJSON *in;
    if ((st = get_obj(p, root, "interp", &in))) return st;
    if (!in) in = &empty_obj;
    static const char *const ikeys[] = {"probe_examples", "patch_pairs", NULL};
    if (in != &empty_obj && (st = check_keys(p, in, "interp", ikeys))) return st;
    if ((st = get_num(p, in, "probe_examples", "interp", 0, 1e7, 1, 200, &x))) return st;
    c->interp_probe_examples = (size_t)x;
    if ((st = get_num(p, in, "patch_pairs", "interp", 0, 1e6, 1, 20, &x))) return st;
    c->interp_patch_pairs = (size_t)x;

    /* cost */
    const cJSON *co;
    if ((st = get_obj(p, root, "cost", &co))) return st;
    if (!co) co = &empty_obj;
    static const char *const ckeys[] = {"flops_per_second", NULL};
    if (co != &empty_obj && (st = check_keys(p, co, "cost", ckeys))) return st;
    if ((st = get_num(p, co, "flops_per_second", "cost", 1e3, 1e18, 0, 2e10, &c->flops_per_second))) return st;
    return PL_OK;
}

pl_status pl_study_config_parse(const char *json, size_t len, const char *path, pl_study_config *c) {
    memset(c, 0, sizeof *c);
    pctx p = {path ? path : "(config)"};
    c->path = dupstr(p.file);
    const char *slash = path ? strrchr(path, '/') : NULL;
    if (!c->path) return pl_error(PL_ERR_NOMEM, "out of memory");
    if (slash) {
        size_t n = (size_t)(slash - path);
        c->base_dir = malloc(n + 1);
        if (c->base_dir) {
            memcpy(c->base_dir, path, n);
            c->base_dir[n] = 0;
        }
    } else {
        c->base_dir = dupstr("");
    }
    if (!c->base_dir) {
        pl_study_config_free(c);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t off = end ? (size_t)(end - json) : 0;
        pl_study_config_free(c);
        return pl_error(PL_ERR_FORMAT, "%s: offset %zu: not valid JSON", p.file, off);
    }
    pl_status st = cJSON_IsObject(root) ? parse_root(&p, root, c)
                                        : pl_error(PL_ERR_INVALID, "%s: the top level must be a JSON object", p.file);
    cJSON_Delete(root);
    if (st) pl_study_config_free(c);
    return st;
}

pl_status pl_study_config_load(const char *path, pl_study_config *c) {
    char *data = NULL;
    size_t len = 0;
    pl_status st = pl_read_file(path, &data, &len);
    if (st) return st;
    st = pl_study_config_parse(data, len, path, c);
    free(data);
    return st;
}
