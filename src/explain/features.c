/* features.c — grouping tokens into features, masking id sequences, and the
 * feature hierarchies (email structure, shap's text clustering, balanced).
 *
 * A token is placed by its anchor byte: the first non-space byte of its span,
 * else (whitespace or empty tokens) the next non-space byte after it, else
 * the last one before it. Words are maximal runs of non-space bytes;
 * sentences end after . ! ? followed by whitespace, or at a blank line; a
 * field boundary always starts a new word and sentence.
 *
 * shap's text clustering is reproduced from shap/maskers/_text.py
 * (partition_tree, merge_score, Text.clustering), including its quirk that
 * the "opener" penalty applies whenever the left group starts with "(".
 * Not done: Unicode-aware word characters (non-ASCII bytes count as letters
 * for the "##" rule, and only ASCII whitespace is stripped).
 */
#include "xinternal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1f);
}

void pl_features_free(pl_features *f) {
    if (!f) return;
    if (f->text)
        for (size_t i = 0; i < f->n_features; i++) free(f->text[i]);
    free(f->text);
    free(f->ptr);
    free(f->tok);
    free(f->span);
    free(f->field);
    free(f->sentence);
    free(f->word);
    memset(f, 0, sizeof *f);
}

static pl_status check_seq(const pl_tokseq *seq) {
    if (!seq || (seq->n_tokens && (!seq->ids || !seq->spans)) || (seq->text_len && !seq->text))
        return pl_error(PL_ERR_INVALID, "explain: token sequence without ids, spans or text");
    for (size_t i = 0; i < seq->n_tokens; i++) {
        pl_span s = seq->spans[i];
        if (s.start > s.end || s.end > seq->text_len)
            return pl_error(PL_ERR_INVALID, "explain: token %zu span [%zu,%zu) outside the text (%zu bytes)", i,
                            s.start, s.end, seq->text_len);
        if (i && s.start < seq->spans[i - 1].start)
            return pl_error(PL_ERR_INVALID, "explain: token %zu span starts at %zu before token %zu's (%zu)", i,
                            s.start, i - 1, seq->spans[i - 1].start);
    }
    return PL_OK;
}

/* Fill text, span from ptr/tok. */
static pl_status finish_features(const pl_tokseq *seq, pl_features *f) {
    size_t M = f->n_features;
    f->text = calloc(M ? M : 1, sizeof *f->text);
    f->span = calloc(M ? M : 1, sizeof *f->span);
    if (!f->text || !f->span) return pl_error(PL_ERR_NOMEM, "explain: out of memory for features");
    for (size_t k = 0; k < M; k++) {
        pl_buf b = {0};
        size_t prev_end = 0;
        f->span[k].start = SIZE_MAX;
        for (size_t j = f->ptr[k]; j < f->ptr[k + 1]; j++) {
            pl_span s = seq->spans[f->tok[j]];
            if (s.start < f->span[k].start) f->span[k].start = s.start;
            if (s.end > f->span[k].end) f->span[k].end = s.end;
            int gap = j > f->ptr[k] && s.start > prev_end && s.end > s.start && b.len &&
                      !is_space((unsigned char)b.data[b.len - 1]) && !is_space((unsigned char)seq->text[s.start]);
            if (gap && pl_buf_append(&b, " ", 1)) goto nomem;
            size_t from = j > f->ptr[k] && s.start < prev_end ? prev_end : s.start;
            if (s.end > from && pl_buf_append(&b, seq->text + from, s.end - from)) goto nomem;
            if (s.end > prev_end) prev_end = s.end;
        }
        if (f->span[k].start == SIZE_MAX) f->span[k].start = 0;
        /* the span shows the feature's text: trim surrounding whitespace */
        while (f->span[k].start < f->span[k].end && is_space((unsigned char)seq->text[f->span[k].start]))
            f->span[k].start++;
        while (f->span[k].end > f->span[k].start && is_space((unsigned char)seq->text[f->span[k].end - 1]))
            f->span[k].end--;
        /* trim surrounding whitespace */
        size_t a = 0, e = b.len;
        while (a < e && is_space((unsigned char)b.data[a])) a++;
        while (e > a && is_space((unsigned char)b.data[e - 1])) e--;
        char *s = malloc(e - a + 1);
        if (!s) {
            pl_buf_free(&b);
            return pl_error(PL_ERR_NOMEM, "explain: out of memory");
        }
        if (e > a) memcpy(s, b.data + a, e - a);
        s[e - a] = 0;
        f->text[k] = s;
        pl_buf_free(&b);
        continue;
    nomem:
        pl_buf_free(&b);
        return pl_error(PL_ERR_NOMEM, "explain: out of memory");
    }
    return PL_OK;
}

pl_status pl_features_build(const pl_tokseq *seq, const pl_field *fields, size_t n_fields, pl_feat_level level,
                            pl_features *out) {
    memset(out, 0, sizeof *out);
    pl_status st = check_seq(seq);
    if (st) return st;
    if ((unsigned)level > PL_FEAT_FIELD) return pl_error(PL_ERR_INVALID, "explain: bad feature level %d", level);
    if (level == PL_FEAT_FIELD && !n_fields)
        return pl_error(PL_ERR_INVALID, "explain: field-level features need field spans");
    for (size_t k = 0; k < n_fields; k++)
        if (fields[k].span.start > fields[k].span.end || fields[k].span.end > seq->text_len)
            return pl_error(PL_ERR_INVALID, "explain: field %zu (%s) span [%zu,%zu) outside the text (%zu bytes)", k,
                            fields[k].name ? fields[k].name : "?", fields[k].span.start, fields[k].span.end,
                            seq->text_len);
    size_t T = seq->n_tokens, L = seq->text_len;
    /* per-byte field (smallest containing span), word and sentence ids */
    int32_t *bfield = malloc((L + 1) * sizeof *bfield), *bword = malloc((L + 1) * sizeof *bword),
            *bsent = malloc((L + 1) * sizeof *bsent);
    int32_t *tf = malloc((T + 1) * sizeof *tf), *tw = malloc((T + 1) * sizeof *tw), *ts = malloc((T + 1) * sizeof *ts);
    if (!bfield || !bword || !bsent || !tf || !tw || !ts) {
        st = pl_error(PL_ERR_NOMEM, "explain: out of memory for features");
        goto done;
    }
    for (size_t i = 0; i <= L; i++) {
        int32_t best = -1;
        size_t bl = SIZE_MAX;
        for (size_t k = 0; k < n_fields; k++) {
            pl_span s = fields[k].span;
            if (i >= s.start && i < s.end && s.end - s.start < bl) {
                best = (int32_t)k;
                bl = s.end - s.start;
            }
        }
        bfield[i] = best;
    }
    {
        int32_t word = -1, sent = 0;
        int in_word = 0, pending_sent = 0, nl_run = 0;
        for (size_t i = 0; i < L; i++) {
            unsigned char c = (unsigned char)seq->text[i];
            int boundary = i > 0 && bfield[i] != bfield[i - 1];
            if (boundary) {
                in_word = 0;
                pending_sent = 1;
            }
            if (is_space(c)) {
                if (c == '\n' && ++nl_run >= 2) pending_sent = 1;
                in_word = 0;
            } else {
                nl_run = 0;
                if (!in_word) {
                    word++;
                    in_word = 1;
                    if (pending_sent) {
                        sent++;
                        pending_sent = 0;
                    }
                }
            }
            bword[i] = word < 0 ? 0 : word;
            bsent[i] = sent;
            if ((c == '.' || c == '!' || c == '?') && (i + 1 == L || is_space((unsigned char)seq->text[i + 1])))
                pending_sent = 1;
        }
        if (L) {
            bword[L] = bword[L - 1];
            bsent[L] = bsent[L - 1];
        } else {
            bword[0] = bsent[0] = 0;
        }
    }
    /* anchors */
    for (size_t t = 0; t < T; t++) {
        pl_span s = seq->spans[t];
        size_t a = SIZE_MAX;
        for (size_t i = s.start; i < s.end; i++)
            if (!is_space((unsigned char)seq->text[i])) {
                a = i;
                break;
            }
        if (a == SIZE_MAX) {
            for (size_t i = s.end; i < L; i++)
                if (!is_space((unsigned char)seq->text[i])) {
                    a = i;
                    break;
                }
        }
        if (a == SIZE_MAX) {
            for (size_t i = s.start; i-- > 0;)
                if (!is_space((unsigned char)seq->text[i])) {
                    a = i;
                    break;
                }
        }
        if (a == SIZE_MAX) a = s.start;
        /* a whitespace token must not jump into another field */
        if ((a < s.start || a >= s.end) && s.end > s.start && bfield[a] != bfield[s.start]) a = s.start;
        tf[t] = n_fields ? bfield[a] : -1;
        tw[t] = bword[a];
        ts[t] = bsent[a];
    }
    /* group */
    out->level = level;
    out->n_tokens = T;
    out->ptr = malloc((T + 2) * sizeof *out->ptr);
    out->tok = malloc((T + 1) * sizeof *out->tok);
    out->field = malloc((T + 1) * sizeof *out->field);
    out->sentence = malloc((T + 1) * sizeof *out->sentence);
    out->word = malloc((T + 1) * sizeof *out->word);
    int32_t *feat_of = malloc((T + 1) * sizeof *feat_of);
    size_t *cnt = calloc(T + 1, sizeof *cnt);
    if (!out->ptr || !out->tok || !out->field || !out->sentence || !out->word || !feat_of || !cnt) {
        free(feat_of);
        free(cnt);
        st = pl_error(PL_ERR_NOMEM, "explain: out of memory for features");
        goto done;
    }
    size_t M = 0;
    int32_t *field_feat = NULL;
    if (level == PL_FEAT_FIELD) {
        field_feat = malloc(n_fields * sizeof *field_feat);
        if (!field_feat) {
            free(feat_of);
            free(cnt);
            st = pl_error(PL_ERR_NOMEM, "explain: out of memory");
            goto done;
        }
        for (size_t k = 0; k < n_fields; k++) field_feat[k] = -1;
    }
    for (size_t t = 0; t < T; t++) {
        feat_of[t] = -1;
        if (n_fields && tf[t] < 0) continue;
        int32_t f;
        if (level == PL_FEAT_TOKEN) {
            f = (int32_t)M++;
        } else if (level == PL_FEAT_FIELD) {
            if (field_feat[tf[t]] < 0) field_feat[tf[t]] = (int32_t)M++;
            f = field_feat[tf[t]];
        } else {
            int same = M > 0 && out->field[M - 1] == tf[t] &&
                       (level == PL_FEAT_WORD ? out->word[M - 1] == tw[t] : out->sentence[M - 1] == ts[t]);
            f = same ? (int32_t)(M - 1) : (int32_t)M++;
        }
        if ((size_t)f == M - 1 && cnt[f] == 0) {
            out->field[f] = tf[t];
            out->word[f] = tw[t];
            out->sentence[f] = ts[t];
        }
        feat_of[t] = f;
        cnt[f]++;
    }
    free(field_feat);
    out->n_features = M;
    out->ptr[0] = 0;
    for (size_t k = 0; k < M; k++) out->ptr[k + 1] = out->ptr[k] + cnt[k];
    memset(cnt, 0, (T + 1) * sizeof *cnt);
    for (size_t t = 0; t < T; t++)
        if (feat_of[t] >= 0) out->tok[out->ptr[feat_of[t]] + cnt[feat_of[t]]++] = t;
    free(feat_of);
    free(cnt);
    if (level == PL_FEAT_FIELD)
        for (size_t k = 0; k < M; k++) out->word[k] = out->sentence[k] = -1;
    st = finish_features(seq, out);
done:
    free(bfield);
    free(bword);
    free(bsent);
    free(tf);
    free(tw);
    free(ts);
    if (st) pl_features_free(out);
    return st;
}

pl_status pl_features_from_map(const pl_tokseq *seq, const int32_t *tok_feature, size_t n_features,
                               pl_features *out) {
    memset(out, 0, sizeof *out);
    pl_status st = check_seq(seq);
    if (st) return st;
    size_t T = seq->n_tokens, M = n_features;
    out->n_features = M;
    out->n_tokens = T;
    out->level = PL_FEAT_TOKEN;
    out->ptr = calloc(M + 1, sizeof *out->ptr);
    out->tok = malloc((T + 1) * sizeof *out->tok);
    out->field = malloc((M + 1) * sizeof *out->field);
    out->sentence = malloc((M + 1) * sizeof *out->sentence);
    out->word = malloc((M + 1) * sizeof *out->word);
    size_t *cnt = calloc(M + 1, sizeof *cnt);
    if (!out->ptr || !out->tok || !out->field || !out->sentence || !out->word || !cnt) {
        free(cnt);
        pl_features_free(out);
        return pl_error(PL_ERR_NOMEM, "explain: out of memory for features");
    }
    for (size_t t = 0; t < T; t++) {
        int32_t f = tok_feature[t];
        if (f < -1 || (f >= 0 && (size_t)f >= M)) {
            free(cnt);
            pl_features_free(out);
            return pl_error(PL_ERR_RANGE, "explain: token %zu maps to feature %d, not in -1..%zu", t, f, M - 1);
        }
        if (f >= 0) cnt[f]++;
    }
    for (size_t k = 0; k < M; k++) {
        if (!cnt[k]) {
            free(cnt);
            pl_features_free(out);
            return pl_error(PL_ERR_INVALID, "explain: feature %zu has no tokens", k);
        }
        out->ptr[k + 1] = out->ptr[k] + cnt[k];
        out->field[k] = out->sentence[k] = out->word[k] = -1;
        cnt[k] = 0;
    }
    for (size_t t = 0; t < T; t++) {
        int32_t f = tok_feature[t];
        if (f >= 0) out->tok[out->ptr[f] + cnt[f]++] = t;
    }
    free(cnt);
    st = finish_features(seq, out);
    if (st) pl_features_free(out);
    return st;
}

/* ---- masking --------------------------------------------------------------- */

const char *pl_mask_policy_name(pl_mask_policy p) {
    switch (p) {
    case PL_MASK_REPLACE: return "replace";
    case PL_MASK_COLLAPSE: return "collapse";
    case PL_MASK_DELETE: return "delete";
    case PL_MASK_BASELINE: return "baseline";
    }
    return "unknown";
}

pl_status pl_explain_apply_mask(const int32_t *ids, size_t n_tokens, const pl_features *feat, const uint8_t *mask,
                                const pl_mask_spec *spec, int32_t *out, size_t *n_out) {
    if (!feat || !spec || !mask || (!ids && n_tokens) || (!out && n_tokens) || !n_out)
        return pl_error(PL_ERR_INVALID, "explain: apply_mask needs ids, features, mask, spec and output");
    if (feat->n_tokens != n_tokens)
        return pl_error(PL_ERR_INVALID, "explain: features were built for %zu tokens, sequence has %zu",
                        feat->n_tokens, n_tokens);
    if (spec->policy == PL_MASK_BASELINE && !spec->baseline_ids)
        return pl_error(PL_ERR_INVALID, "explain: baseline masking without baseline ids");
    if ((unsigned)spec->policy > PL_MASK_BASELINE)
        return pl_error(PL_ERR_INVALID, "explain: bad mask policy %d", spec->policy);
    /* present[t]: start from all present, clear tokens of masked features */
    uint8_t *present = malloc(n_tokens ? n_tokens : 1);
    if (!present) return pl_error(PL_ERR_NOMEM, "explain: out of memory");
    memset(present, 1, n_tokens);
    for (size_t f = 0; f < feat->n_features; f++)
        if (!mask[f])
            for (size_t j = feat->ptr[f]; j < feat->ptr[f + 1]; j++) present[feat->tok[j]] = 0;
    size_t n = 0;
    for (size_t t = 0; t < n_tokens; t++) {
        if (present[t]) {
            out[n++] = ids[t];
            continue;
        }
        switch (spec->policy) {
        case PL_MASK_REPLACE: out[n++] = spec->mask_id; break;
        case PL_MASK_COLLAPSE:
            if (t == 0 || present[t - 1]) out[n++] = spec->mask_id;
            break;
        case PL_MASK_DELETE: break;
        case PL_MASK_BASELINE: out[n++] = spec->baseline_ids[t]; break;
        }
    }
    free(present);
    *n_out = n;
    return PL_OK;
}

/* ---- trees ------------------------------------------------------------------- */

void pl_xtree_free(pl_xtree *t) {
    if (!t) return;
    free(t->left);
    free(t->right);
    free(t->height);
    free(t->size);
    memset(t, 0, sizeof *t);
}

static pl_status tree_alloc(pl_xtree *t, size_t M) {
    memset(t, 0, sizeof *t);
    if (M == 0) return pl_error(PL_ERR_INVALID, "explain: a hierarchy needs at least one leaf");
    if (M > (size_t)INT32_MAX / 2) return pl_error(PL_ERR_RANGE, "explain: %zu leaves is too many", M);
    size_t R = M - 1 ? M - 1 : 1;
    t->n_leaves = M;
    t->left = malloc(R * sizeof *t->left);
    t->right = malloc(R * sizeof *t->right);
    t->height = malloc(R * sizeof *t->height);
    t->size = malloc(R * sizeof *t->size);
    if (!t->left || !t->right || !t->height || !t->size) {
        pl_xtree_free(t);
        return pl_error(PL_ERR_NOMEM, "explain: out of memory for a hierarchy");
    }
    return PL_OK;
}

static pl_status tree_validate(const pl_xtree *t) {
    size_t M = t->n_leaves, nn = 2 * M - 1;
    uint8_t *used = calloc(nn, 1);
    if (!used) return pl_error(PL_ERR_NOMEM, "explain: out of memory");
    pl_status st = PL_OK;
    for (size_t r = 0; r + 1 < M && !st; r++) {
        int32_t c[2] = {t->left[r], t->right[r]};
        int32_t sz = 0;
        for (int k = 0; k < 2; k++) {
            if (c[k] < 0 || (size_t)c[k] >= M + r) {
                st = pl_error(PL_ERR_FORMAT, "explain: hierarchy row %zu: child %d is not an earlier node", r, c[k]);
                break;
            }
            if (used[c[k]]++) {
                st = pl_error(PL_ERR_FORMAT, "explain: hierarchy row %zu: node %d has two parents", r, c[k]);
                break;
            }
            sz += (size_t)c[k] < M ? 1 : t->size[c[k] - (int32_t)M];
        }
        if (!st && sz != t->size[r])
            st = pl_error(PL_ERR_FORMAT, "explain: hierarchy row %zu: size %d, children hold %d leaves", r,
                          t->size[r], sz);
        if (!st && !isfinite(t->height[r]))
            st = pl_error(PL_ERR_FORMAT, "explain: hierarchy row %zu: height is not finite", r);
    }
    free(used);
    return st;
}

pl_status pl_xtree_from_linkage(const double *rows, size_t M, pl_xtree *t) {
    pl_status st = tree_alloc(t, M);
    if (st) return st;
    for (size_t r = 0; r + 1 < M; r++) {
        const double *x = rows + 4 * r;
        for (int k = 0; k < 4; k++)
            if (!isfinite(x[k]) || ((k != 2) && (x[k] != floor(x[k]) || x[k] < 0 || x[k] > 2.0 * (double)M))) {
                pl_xtree_free(t);
                return pl_error(PL_ERR_FORMAT, "explain: linkage row %zu column %d: bad value %g", r, k, x[k]);
            }
        t->left[r] = (int32_t)x[0];
        t->right[r] = (int32_t)x[1];
        t->height[r] = x[2];
        t->size[r] = (int32_t)x[3];
    }
    st = tree_validate(t);
    if (st) pl_xtree_free(t);
    return st;
}

/* Builder: rows appended in creation order (children before parents). */
typedef struct {
    pl_xtree *t;
    size_t nrows;
} tbuild;

static int32_t node_size(const tbuild *b, int32_t n) {
    return (size_t)n < b->t->n_leaves ? 1 : b->t->size[(size_t)n - b->t->n_leaves];
}

static int32_t tb_merge(tbuild *b, int32_t l, int32_t r) {
    size_t row = b->nrows++;
    b->t->left[row] = l;
    b->t->right[row] = r;
    b->t->size[row] = node_size(b, l) + node_size(b, r);
    b->t->height[row] = 0;
    return (int32_t)(b->t->n_leaves + row);
}

/* Binarize a run of sibling nodes: split where leaf counts are closest to
 * half; on ties the left part gets the larger share. */
static int32_t tb_binarize(tbuild *b, const int32_t *kids, size_t k) {
    if (k == 1) return kids[0];
    long total = 0;
    for (size_t i = 0; i < k; i++) total += node_size(b, kids[i]);
    size_t best = 1;
    long acc = 0, bestd = -1;
    for (size_t s = 1; s < k; s++) {
        acc += node_size(b, kids[s - 1]);
        long d = labs(2 * acc - total);
        if (bestd < 0 || d <= bestd) {
            bestd = d;
            best = s;
        }
    }
    int32_t l = tb_binarize(b, kids, best), r = tb_binarize(b, kids + best, k - best);
    return tb_merge(b, l, r);
}

static void finish_heights(pl_xtree *t) {
    double mx = 0;
    for (size_t r = 0; r + 1 < t->n_leaves; r++)
        if (t->size[r] > mx) mx = t->size[r];
    for (size_t r = 0; r + 1 < t->n_leaves; r++) t->height[r] = t->size[r] / mx;
}

pl_status pl_xtree_balanced(size_t M, pl_xtree *t) {
    pl_status st = tree_alloc(t, M);
    if (st) return st;
    int32_t *kids = malloc(M * sizeof *kids);
    if (!kids) {
        pl_xtree_free(t);
        return pl_error(PL_ERR_NOMEM, "explain: out of memory");
    }
    for (size_t i = 0; i < M; i++) kids[i] = (int32_t)i;
    tbuild b = {t, 0};
    tb_binarize(&b, kids, M);
    free(kids);
    finish_heights(t);
    return PL_OK;
}

/* Group features idx[0..n) by key level lv (0 field, 1 sentence, 2 word,
 * 3 the feature itself), in order of first appearance; returns the subtree. */
static int32_t email_rec(tbuild *b, const pl_features *f, int32_t *idx, size_t n, int lv, int32_t *scratch) {
    if (n == 1) return idx[0];
    if (lv > 3) return tb_binarize(b, idx, n);
    const int32_t *key = lv == 0 ? f->field : lv == 1 ? f->sentence : lv == 2 ? f->word : NULL;
    /* stable partition into groups by key (first appearance order) */
    int32_t *groups = malloc(n * sizeof *groups);
    int32_t *order = malloc(n * sizeof *order);
    size_t *gstart = malloc((n + 1) * sizeof *gstart);
    if (!groups || !order || !gstart) {
        free(groups);
        free(order);
        free(gstart);
        return -1;
    }
    size_t ng = 0, w = 0;
    uint8_t *done = calloc(n, 1);
    if (!done) {
        free(groups);
        free(order);
        free(gstart);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (done[i]) continue;
        gstart[ng++] = w;
        int32_t kv = key ? key[idx[i]] : idx[i];
        for (size_t j = i; j < n; j++)
            if (!done[j] && (key ? key[idx[j]] : idx[j]) == kv) {
                order[w++] = idx[j];
                done[j] = 1;
            }
    }
    gstart[ng] = w;
    free(done);
    int32_t res;
    if (ng == 1) {
        res = email_rec(b, f, order, n, lv + 1, scratch);
    } else {
        res = 0;
        for (size_t g = 0; g < ng && res >= 0; g++) {
            int32_t sub = email_rec(b, f, order + gstart[g], gstart[g + 1] - gstart[g], lv + 1, scratch);
            if (sub < 0) res = -1;
            groups[g] = sub;
        }
        if (res >= 0) res = tb_binarize(b, groups, ng);
    }
    free(groups);
    free(order);
    free(gstart);
    return res;
}

pl_status pl_xtree_email(const pl_features *f, pl_xtree *t) {
    if (!f || !f->n_features) return pl_error(PL_ERR_INVALID, "explain: no features for a hierarchy");
    size_t M = f->n_features;
    pl_status st = tree_alloc(t, M);
    if (st) return st;
    int32_t *idx = malloc(M * sizeof *idx);
    if (!idx) {
        pl_xtree_free(t);
        return pl_error(PL_ERR_NOMEM, "explain: out of memory");
    }
    for (size_t i = 0; i < M; i++) idx[i] = (int32_t)i;
    tbuild b = {t, 0};
    int32_t root = email_rec(&b, f, idx, M, 0, NULL);
    free(idx);
    if (root < 0) {
        pl_xtree_free(t);
        return pl_error(PL_ERR_NOMEM, "explain: out of memory building the email hierarchy");
    }
    if (M > 1 && (b.nrows != M - 1 || (size_t)root != 2 * M - 2)) {
        pl_xtree_free(t);
        return pl_error(PL_ERR_INTERNAL, "explain: email hierarchy has %zu rows for %zu leaves", b.nrows, M);
    }
    finish_heights(t);
    return PL_OK;
}

/* ---- shap's text clustering ---------------------------------------------------- */

static int str_in(const char *s, const char *const *set, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, set[i]) == 0) return 1;
    return 0;
}

static int is_end(const char *s) { return !strcmp(s, ".") || !strcmp(s, "?") || !strcmp(s, "!"); }

static int is_ctrl(const char *s) {
    size_t n = strlen(s);
    return n >= 1 && s[0] == '[' && s[n - 1] == ']';
}

/* merge_score(group [a,b), group [b,c)) */
static double merge_score(const char *const *tok, const uint8_t *bal, size_t a, size_t b, size_t c,
                          const char *const *special, size_t n_special) {
    static const char *const connectors[] = {"but", "and", "or"};
    static const char *const ts[] = {"t", "s"};
    double score = 0;
    size_t l1 = b - a, l2 = c - b;
    const char *g1first = tok[a], *g1last = tok[b - 1], *g2first = tok[b], *g2last = tok[c - 1];
    if (n_special && str_in(g1last, special, n_special) && str_in(g2first, special, n_special)) score = -HUGE_VAL;
    if (strncmp(g2first, "##", 2) == 0) score += 20;
    if (!strcmp(g2first, "'") && (l2 == 1 || (l2 == 2 && str_in(tok[b + 1], ts, 2)))) score += 15;
    if (!strcmp(g1last, "'") && str_in(g2first, ts, 2)) score += 15;
    int start_ctrl = is_ctrl(g1first), end_ctrl = is_ctrl(g2last);
    if ((start_ctrl && !end_ctrl) || (end_ctrl && !start_ctrl)) score -= 1000;
    if (!strcmp(g2first, "(") && !bal[b]) score -= 100;
    if (!strcmp(g1last, ")") && !bal[b - 1]) score -= 100;
    /* shap compares a Token object with the closers dict, which never matches:
     * the penalty applies whenever the left group opens with "(" */
    if (!strcmp(g1first, "(")) score -= 2;
    if (str_in(g1last, connectors, 3) || str_in(g2first, connectors, 3)) score -= 2;
    if (!strcmp(g1last, ",")) score -= 10;
    if (!strcmp(g2first, ",")) score -= l2 > 1 ? 10 : 1;
    if (is_end(g1last)) score -= 20;
    if (is_end(g2first)) score -= l2 > 1 ? 20 : 1;
    score -= (double)(l1 + l2);
    return score;
}

pl_status pl_xtree_shap_text(const char *const *tokens, size_t M, const char *const *special, size_t n_special,
                             pl_xtree *t) {
    pl_status st = tree_alloc(t, M);
    if (st) return st;
    for (size_t i = 0; i < M; i++)
        if (!tokens[i]) {
            pl_xtree_free(t);
            return pl_error(PL_ERR_INVALID, "explain: token %zu is NULL", i);
        }
    /* groups are contiguous runs: start[g], with index[g] the node id */
    size_t *start = malloc((M + 1) * sizeof *start);
    int32_t *index = malloc(M * sizeof *index);
    uint8_t *bal = malloc(M);
    if (!start || !index || !bal) {
        free(start);
        free(index);
        free(bal);
        pl_xtree_free(t);
        return pl_error(PL_ERR_NOMEM, "explain: out of memory");
    }
    for (size_t i = 0; i < M; i++) {
        start[i] = i;
        index[i] = (int32_t)i;
        bal[i] = !(strcmp(tokens[i], "(") == 0 || strcmp(tokens[i], ")") == 0);
    }
    start[M] = M;
    size_t ng = M;
    for (size_t step = 0; step + 1 < M; step++) {
        size_t best = 0;
        double bs = 0;
        for (size_t g = 0; g + 1 < ng; g++) {
            double s = merge_score(tokens, bal, start[g], start[g + 1], start[g + 2], special, n_special);
            if (g == 0 || s > bs) {
                bs = s;
                best = g;
            }
        }
        size_t a = start[best], c = start[best + 2];
        int32_t l = index[best], r = index[best + 1];
        t->left[step] = l;
        t->right[step] = r;
        t->height[step] = 0;
        t->size[step] = (int32_t)(c - a);
        if (!strcmp(tokens[a], "(") && !strcmp(tokens[c - 1], ")")) bal[a] = bal[c - 1] = 1;
        index[best] = (int32_t)(M + step);
        for (size_t g = best + 1; g + 1 < ng; g++) {
            start[g] = start[g + 1];
            index[g] = index[g + 1];
        }
        ng--;
        start[ng] = M;
    }
    free(start);
    free(index);
    free(bal);
    finish_heights(t);
    return PL_OK;
}

/* Python: re.match(r"^.*\W$", s) — '.' does not cross a newline, '$' also
 * matches before one final newline. */
static int space_end(const char *s) {
    size_t n = strlen(s);
    for (int alt = 0; alt < 2; alt++) {
        size_t e = alt == 0 ? n : (n >= 1 && s[n - 1] == '\n' ? n - 1 : 0);
        if (e == 0) continue;
        unsigned char c = (unsigned char)s[e - 1];
        int word = c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (word) continue;
        if (memchr(s, '\n', e - 1) == NULL) return 1;
    }
    return 0;
}

pl_status pl_xtree_shap_prepare(const char *const *seg, size_t n, char ***out) {
    char **v = calloc(n ? n : 1, sizeof *v);
    if (!v) return pl_error(PL_ERR_NOMEM, "explain: out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *s = seg[i] ? seg[i] : "";
        size_t a = 0, e = strlen(s);
        while (a < e && is_space((unsigned char)s[a])) a++;
        while (e > a && is_space((unsigned char)s[e - 1])) e--;
        int cont = i > 0 && !space_end(seg[i - 1] ? seg[i - 1] : "") &&
                   ((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')) && v[i - 1][0] != 0;
        v[i] = malloc(e - a + 3);
        if (!v[i]) {
            for (size_t j = 0; j < i; j++) free(v[j]);
            free(v);
            return pl_error(PL_ERR_NOMEM, "explain: out of memory");
        }
        size_t p = 0;
        if (cont) {
            v[i][p++] = '#';
            v[i][p++] = '#';
        }
        memcpy(v[i] + p, s + a, e - a);
        v[i][p + e - a] = 0;
    }
    *out = v;
    return PL_OK;
}

pl_status pl_xtree_shap_features(const pl_features *f, const pl_tokseq *seq, pl_xtree *t) {
    if (!f || !seq || !f->n_features) return pl_error(PL_ERR_INVALID, "explain: no features for a hierarchy");
    size_t M = f->n_features;
    for (size_t i = 0; i < M; i++) {
        if (f->span[i].end > seq->text_len)
            return pl_error(PL_ERR_INVALID, "explain: feature %zu span ends at %zu past the text (%zu bytes)", i,
                            f->span[i].end, seq->text_len);
        if (i && f->span[i].start < f->span[i - 1].end)
            return pl_error(PL_ERR_INVALID, "explain: feature %zu starts at %zu inside feature %zu (ends %zu); "
                            "shap's text clustering needs features in text order", i, f->span[i].start, i - 1,
                            f->span[i - 1].end);
    }
    char **seg = calloc(M, sizeof *seg), **prep = NULL;
    pl_status st = seg ? PL_OK : pl_error(PL_ERR_NOMEM, "explain: out of memory");
    for (size_t i = 0; i < M && !st; i++) {
        size_t a = f->span[i].start, e = f->span[i].end;
        if (i + 1 < M && f->span[i + 1].start > e) e = f->span[i + 1].start;
        seg[i] = malloc(e - a + 1);
        if (!seg[i]) {
            st = pl_error(PL_ERR_NOMEM, "explain: out of memory");
            break;
        }
        memcpy(seg[i], seq->text + a, e - a);
        seg[i][e - a] = 0;
    }
    if (!st) st = pl_xtree_shap_prepare((const char *const *)seg, M, &prep);
    if (!st) st = pl_xtree_shap_text((const char *const *)prep, M, NULL, 0, t);
    for (size_t i = 0; seg && i < M; i++) {
        free(seg[i]);
        if (prep) free(prep[i]);
    }
    free(seg);
    free(prep);
    return st;
}
