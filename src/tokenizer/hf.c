/* hf.c — load a Hugging Face tokenizer.json (+ tokenizer_config.json).
 *
 * Understood pipelines (what the target families and `phishlens tokenizer
 * train` write):
 *   - model.type "BPE" with vocab {text: id} and merges ("a b" strings or
 *     [a, b] pairs; rank = position), byte_fallback, fuse_unk, ignore_merges,
 *     unk_token;
 *   - byte-level: a pre_tokenizer that is (or contains, in a Sequence) a
 *     ByteLevel; its steps, in order, become the list of pre-tokenizer
 *     regexes: Split (an Isolated Regex), Digits (\p{N} one by one with
 *     individual_digits, else \p{N}+ runs: SmolLM / SmolLM2), ByteLevel
 *     with use_regex (GPT-2's regex; use_regex defaults to true);
 *   - SentencePiece-style: normalizer Replace(" " -> "▁") with an optional
 *     Prepend("▁") (every fragment), or a Metaspace pre-tokenizer without
 *     splitting (prepend_scheme always / first / never);
 *   - added_tokens: special -> CONTROL (UNKNOWN for the unk token), otherwise
 *     USER_DEFINED; "<0xNN>" pieces of SPM vocabs are BYTE;
 *   - BOS/EOS insertion from post_processor TemplateProcessing ("single"),
 *     overridden by tokenizer_config.json add_bos_token / add_eos_token.
 * Anything else (WordPiece, Unigram, other normalizers) is rejected with
 * PL_ERR_UNSUPPORTED naming the field, rather than silently tokenized wrong. */
#include "tokenizer/tok_internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static int is_type(const cJSON *o, const char *ty) {
    const cJSON *t = get(o, "type");
    return cJSON_IsString(t) && strcmp(t->valuestring, ty) == 0;
}
static const char *str_of(const cJSON *o) { return cJSON_IsString(o) ? o->valuestring : NULL; }

/* A token named in tokenizer_config.json: "text" or {"content": "text"}. */
static const char *config_token(const cJSON *cfg, const char *key) {
    const cJSON *v = get(cfg, key);
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsObject(v)) return str_of(get(v, "content"));
    return NULL;
}

/* Find the ByteLevel / Split / Digits / Metaspace parts of a pre_tokenizer;
 * the splitting steps are kept in order. */
#define MAX_STEPS 8
typedef struct {
    const cJSON *bytelevel, *metaspace;
    const cJSON *step[MAX_STEPS];   /* Split, Digits and ByteLevel, in order */
    int n_step, too_many, n_split, n_digits;
    int other;
    const char *other_type;
} pre_parts;

static void add_step(pre_parts *pp, const cJSON *p) {
    if (pp->n_step == MAX_STEPS) pp->too_many = 1;
    else pp->step[pp->n_step++] = p;
}

static void scan_pre(const cJSON *p, pre_parts *pp) {
    if (!p || cJSON_IsNull(p)) return;
    if (is_type(p, "Sequence")) {
        const cJSON *arr = get(p, "pretokenizers"), *e;
        cJSON_ArrayForEach(e, arr) scan_pre(e, pp);
    } else if (is_type(p, "ByteLevel")) {
        pp->bytelevel = p;
        add_step(pp, p);
    } else if (is_type(p, "Split")) {
        pp->n_split++;
        add_step(pp, p);
    } else if (is_type(p, "Digits")) {
        pp->n_digits++;
        add_step(pp, p);
    } else if (is_type(p, "Metaspace")) {
        pp->metaspace = p;
    } else {
        pp->other = 1;
        pp->other_type = str_of(get(p, "type"));
    }
}

/* Turn the byte-level steps into pre-tokenizer regexes. */
static pl_status add_steps(pl_tokenizer *t, const char *name, const pre_parts *pp) {
    pl_status st;
    for (int i = 0; i < pp->n_step; i++) {
        const cJSON *p = pp->step[i];
        if (is_type(p, "Split")) {
            const char *re = str_of(get(get(p, "pattern"), "Regex"));
            const char *lit = str_of(get(get(p, "pattern"), "String"));
            const char *beh = str_of(get(p, "behavior"));
            if (!re || lit || (beh && strcmp(beh, "Isolated") != 0) || cJSON_IsTrue(get(p, "invert")))
                return pl_error(PL_ERR_UNSUPPORTED, "%s: field pre_tokenizer.Split: only an Isolated, non-inverted Regex is supported", name);
            if ((st = tok_add_regex(t, re, strlen(re)))) return st;
        } else if (is_type(p, "Digits")) {
            const char *re = cJSON_IsTrue(get(p, "individual_digits")) ? tok_regex_digit : tok_regex_digits;
            if ((st = tok_add_regex(t, re, strlen(re)))) return st;
        } else { /* ByteLevel */
            if (cJSON_IsTrue(get(p, "add_prefix_space")))
                return pl_error(PL_ERR_UNSUPPORTED, "%s: field pre_tokenizer.ByteLevel.add_prefix_space: true is not supported", name);
            if (!cJSON_IsFalse(get(p, "use_regex")) && (st = tok_add_regex(t, tok_regex_gpt2, strlen(tok_regex_gpt2))))
                return st;
        }
    }
    return PL_OK;
}

/* Normalizer: only Replace(" " -> "▁"), Prepend("▁") and Sequences of them. */
static pl_status scan_norm(const char *name, const cJSON *n, int *replace, int *prepend) {
    if (!n || cJSON_IsNull(n)) return PL_OK;
    if (is_type(n, "Sequence")) {
        const cJSON *e;
        cJSON_ArrayForEach(e, get(n, "normalizers")) {
            pl_status st = scan_norm(name, e, replace, prepend);
            if (st) return st;
        }
        return PL_OK;
    }
    if (is_type(n, "Replace")) {
        const char *pat = str_of(get(get(n, "pattern"), "String")), *content = str_of(get(n, "content"));
        if (pat && content && !strcmp(pat, " ") && !strcmp(content, "\xe2\x96\x81")) {
            *replace = 1;
            return PL_OK;
        }
    } else if (is_type(n, "Prepend")) {
        const char *pre = str_of(get(n, "prepend"));
        if (pre && !strcmp(pre, "\xe2\x96\x81")) {
            *prepend = 1;
            return PL_OK;
        }
    }
    const char *ty = str_of(get(n, "type"));
    return pl_error(PL_ERR_UNSUPPORTED, "%s: field normalizer: type '%s' is not supported", name, ty ? ty : "?");
}

/* The special token that TemplateProcessing puts first/last in "single". */
static void scan_post(const cJSON *p, const char **first, const char **last) {
    if (!p || cJSON_IsNull(p)) return;
    if (is_type(p, "Sequence")) {
        const cJSON *e;
        cJSON_ArrayForEach(e, get(p, "processors")) scan_post(e, first, last);
        return;
    }
    if (!is_type(p, "TemplateProcessing")) return;
    const cJSON *single = get(p, "single");
    int n = cJSON_GetArraySize(single);
    if (n <= 0) return;
    const cJSON *a = cJSON_GetArrayItem(single, 0), *z = cJSON_GetArrayItem(single, n - 1);
    const cJSON *sa = get(a, "SpecialToken"), *sz = get(z, "SpecialToken");
    if (sa) *first = str_of(get(sa, "id"));
    if (sz && n > 1) *last = str_of(get(sz, "id"));
}

static int32_t id_of(const pl_tokenizer *t, const char *s) {
    return s ? pl_tokenizer_find(t, s, strlen(s)) : -1;
}

static pl_status build(const char *name, const cJSON *root, const cJSON *cfg, pl_tokenizer **out) {
    *out = NULL;
    const cJSON *model = get(root, "model");
    if (!cJSON_IsObject(model)) return pl_error(PL_ERR_FORMAT, "%s: field model: missing or not an object", name);
    const char *mtype = str_of(get(model, "type"));
    if (!mtype && get(model, "merges")) mtype = "BPE"; /* old files omit it */
    if (!mtype || strcmp(mtype, "BPE") != 0)
        return pl_error(PL_ERR_UNSUPPORTED, "%s: field model.type: '%s' is not supported (only BPE)", name,
                        mtype ? mtype : "(missing)");
    const cJSON *vocab = get(model, "vocab"), *merges = get(model, "merges"), *added = get(root, "added_tokens");
    if (!cJSON_IsObject(vocab)) return pl_error(PL_ERR_FORMAT, "%s: field model.vocab: missing or not an object", name);
    if (!cJSON_IsArray(merges)) return pl_error(PL_ERR_FORMAT, "%s: field model.merges: missing or not an array", name);
    if (added && !cJSON_IsArray(added) && !cJSON_IsNull(added))
        return pl_error(PL_ERR_FORMAT, "%s: field added_tokens: not an array", name);
    const char *csp = str_of(get(model, "continuing_subword_prefix")), *ews = str_of(get(model, "end_of_word_suffix"));
    if ((csp && *csp) || (ews && *ews))
        return pl_error(PL_ERR_UNSUPPORTED, "%s: field model.continuing_subword_prefix/end_of_word_suffix: not supported",
                        name);

    /* vocabulary size = largest id + 1 */
    double maxid = -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > 2e9 || e->valuedouble != (double)(int64_t)e->valuedouble)
            return pl_error(PL_ERR_FORMAT, "%s: field model.vocab[\"%.40s\"]: id is not a non-negative integer", name,
                            e->string ? e->string : "?");
        if (e->valuedouble > maxid) maxid = e->valuedouble;
    }
    size_t ai = 0;
    cJSON_ArrayForEach(e, added) {
        const cJSON *id = get(e, "id");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > 2e9 || !cJSON_IsString(get(e, "content")))
            return pl_error(PL_ERR_FORMAT, "%s: field added_tokens[%zu]: needs an integer id and a string content", name, ai);
        if (id->valuedouble > maxid) maxid = id->valuedouble;
        ai++;
    }
    pre_parts pp = {0};
    scan_pre(get(root, "pre_tokenizer"), &pp);
    if (pp.other)
        return pl_error(PL_ERR_UNSUPPORTED, "%s: field pre_tokenizer: type '%s' is not supported", name,
                        pp.other_type ? pp.other_type : "?");
    if ((pp.n_split || pp.n_digits) && !pp.bytelevel)
        return pl_error(PL_ERR_UNSUPPORTED, "%s: field pre_tokenizer: %s without ByteLevel is not supported", name,
                        pp.n_split ? "Split" : "Digits");
    if (pp.too_many)
        return pl_error(PL_ERR_UNSUPPORTED, "%s: field pre_tokenizer: more than %d steps", name, MAX_STEPS);
    int replace = 0, prepend = 0;
    pl_status st = scan_norm(name, get(root, "normalizer"), &replace, &prepend);
    if (st) return st;

    pl_tokenizer *t;
    if ((st = tok_new(name, (int32_t)maxid + 1, 0, &t))) return st;
    t->kind = pp.bytelevel ? PL_TOK_BYTE_BPE : PL_TOK_SPM;
    t->merge_by_score = 0;
    t->byte_fallback = cJSON_IsTrue(get(model, "byte_fallback"));
    t->fuse_unk = cJSON_IsTrue(get(model, "fuse_unk"));
    t->ignore_merges = cJSON_IsTrue(get(model, "ignore_merges"));
    if (t->kind == PL_TOK_SPM) {
        if (pp.metaspace) {
            const cJSON *split = get(pp.metaspace, "split");
            if (cJSON_IsTrue(split)) {
                pl_tokenizer_free(t);
                return pl_error(PL_ERR_UNSUPPORTED, "%s: field pre_tokenizer: Metaspace with split=true is not supported", name);
            }
            const char *scheme = str_of(get(pp.metaspace, "prepend_scheme"));
            const cJSON *aps = get(pp.metaspace, "add_prefix_space");
            if (scheme) t->prefix_mode = !strcmp(scheme, "always") ? TOK_PREFIX_EVERY
                                       : !strcmp(scheme, "first") ? TOK_PREFIX_FIRST : TOK_PREFIX_NONE;
            else t->prefix_mode = cJSON_IsFalse(aps) ? TOK_PREFIX_NONE : TOK_PREFIX_EVERY;
        } else {
            if (!replace) {
                pl_tokenizer_free(t);
                return pl_error(PL_ERR_UNSUPPORTED,
                                "%s: field normalizer/pre_tokenizer: neither byte-level nor SentencePiece-style (no "
                                "ByteLevel, Metaspace or Replace(' ', '\xe2\x96\x81'))", name);
            }
            t->prefix_mode = prepend ? TOK_PREFIX_EVERY : TOK_PREFIX_NONE;
        }
    }

    /* texts */
    cJSON_ArrayForEach(e, vocab) {
        if ((st = tok_set_text(t, (int32_t)e->valuedouble, e->string, strlen(e->string)))) goto fail;
    }
    cJSON_ArrayForEach(e, added) {
        int32_t id = (int32_t)get(e, "id")->valuedouble;
        const char *c = get(e, "content")->valuestring;
        if ((st = tok_set_text(t, id, c, strlen(c)))) goto fail;
        t->type[id] = cJSON_IsTrue(get(e, "special")) ? PL_TOKT_CONTROL : PL_TOKT_USER_DEFINED;
    }
    if ((st = tok_finish(t))) goto fail;
    const char *unk = str_of(get(model, "unk_token"));
    t->unk_emit = id_of(t, unk); /* HF's BPE writes model.unk_token only, else drops the piece */
    if (cfg && config_token(cfg, "unk_token") && !unk) unk = config_token(cfg, "unk_token");
    t->unk = id_of(t, unk);
    if (t->unk >= 0 && t->type[t->unk] != PL_TOKT_UNKNOWN) {
        t->type[t->unk] = PL_TOKT_UNKNOWN;
        if ((st = tok_specials(t))) goto fail;
    }

    /* merges */
    int nm = cJSON_GetArraySize(merges);
    if ((st = tok_merges_reserve(t, (size_t)nm))) goto fail;
    int rank = 0;
    cJSON_ArrayForEach(e, merges) {
        const char *a = NULL, *b = NULL;
        size_t la = 0, lb = 0;
        if (cJSON_IsString(e)) {
            const char *sp = strchr(e->valuestring, ' ');
            if (sp && sp != e->valuestring) {
                a = e->valuestring;
                la = (size_t)(sp - a);
                b = sp + 1;
                lb = strlen(b);
            }
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2) {
            a = str_of(cJSON_GetArrayItem(e, 0));
            b = str_of(cJSON_GetArrayItem(e, 1));
            la = a ? strlen(a) : 0;
            lb = b ? strlen(b) : 0;
        }
        if (!a || !b || !lb) {
            st = pl_error(PL_ERR_FORMAT, "%s: field model.merges[%d]: expected \"left right\" or [left, right]", name, rank);
            goto fail;
        }
        int32_t l = pl_tokenizer_find(t, a, la), r = pl_tokenizer_find(t, b, lb);
        if (l < 0 || r < 0) {
            st = pl_error(PL_ERR_FORMAT, "%s: field model.merges[%d]: '%.*s' is not in the vocabulary", name, rank,
                          (int)(l < 0 ? la : lb), l < 0 ? a : b);
            goto fail;
        }
        int addedm;
        if ((st = tok_add_merge(t, l, r, rank, &addedm))) goto fail;
        rank++;
    }

    if (t->kind == PL_TOK_BYTE_BPE && (st = add_steps(t, name, &pp))) goto fail;

    /* BOS / EOS */
    const char *first = NULL, *last = NULL;
    scan_post(get(root, "post_processor"), &first, &last);
    t->bos = id_of(t, first);
    t->add_bos = t->bos >= 0;
    t->eos = id_of(t, last);
    t->add_eos = t->eos >= 0;
    if (cfg) {
        int32_t b = id_of(t, config_token(cfg, "bos_token")), z = id_of(t, config_token(cfg, "eos_token"));
        int32_t p = id_of(t, config_token(cfg, "pad_token"));
        if (b >= 0) t->bos = b;
        if (z >= 0) t->eos = z;
        if (p >= 0) t->pad = p;
        const cJSON *ab = get(cfg, "add_bos_token"), *ae = get(cfg, "add_eos_token");
        if (cJSON_IsBool(ab)) t->add_bos = cJSON_IsTrue(ab) && t->bos >= 0;
        if (cJSON_IsBool(ae)) t->add_eos = cJSON_IsTrue(ae) && t->eos >= 0;
    }
    *out = t;
    return PL_OK;
fail:
    pl_tokenizer_free(t);
    return st;
}

pl_status pl_tokenizer_load_hf_mem(const char *json, size_t len, const char *config, size_t config_len,
                                   const char *name, pl_tokenizer **out) {
    *out = NULL;
    if (!name) name = "<tokenizer.json>";
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) {
        const char *ep = cJSON_GetErrorPtr();
        size_t off = ep && ep >= json && ep <= json + len ? (size_t)(ep - json) : 0;
        return pl_error(PL_ERR_FORMAT, "%s: offset %zu: not valid JSON", name, off);
    }
    cJSON *cfg = NULL;
    if (config) {
        cfg = cJSON_ParseWithLength(config, config_len);
        if (!cfg) {
            cJSON_Delete(root);
            return pl_error(PL_ERR_FORMAT, "%s: tokenizer_config.json is not valid JSON", name);
        }
    }
    pl_status st = build(name, root, cfg, out);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    return st;
}

pl_status pl_tokenizer_load_hf(const char *path, pl_tokenizer **out) {
    *out = NULL;
    struct stat sb;
    char file[4096], cfgpath[4096];
    if (stat(path, &sb) != 0) return pl_error(PL_ERR_IO, "%s: no such file or directory", path);
    if (S_ISDIR(sb.st_mode)) {
        snprintf(file, sizeof file, "%s/tokenizer.json", path);
        snprintf(cfgpath, sizeof cfgpath, "%s/tokenizer_config.json", path);
        if (stat(file, &sb) != 0) return pl_error(PL_ERR_NOT_FOUND, "%s: directory has no tokenizer.json", path);
    } else {
        snprintf(file, sizeof file, "%s", path);
        const char *slash = strrchr(path, '/');
        if (slash) snprintf(cfgpath, sizeof cfgpath, "%.*s/tokenizer_config.json", (int)(slash - path), path);
        else snprintf(cfgpath, sizeof cfgpath, "tokenizer_config.json");
    }
    char *json = NULL, *cfg = NULL;
    size_t len = 0, clen = 0;
    pl_status st = pl_read_file(file, &json, &len);
    if (st) return st;
    if (stat(cfgpath, &sb) == 0 && S_ISREG(sb.st_mode)) {
        if ((st = pl_read_file(cfgpath, &cfg, &clen))) {
            free(json);
            return st;
        }
    }
    st = pl_tokenizer_load_hf_mem(json, len, cfg, clen, file, out);
    free(json);
    free(cfg);
    return st;
}
