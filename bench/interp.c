/* interp.c — benchmark: a full denoising resid_pre patching sweep (every
 * layer x every position) on a token pair, with the classifier's label
 * tokens. Writes the pair, the label ids, the clean/corrupted scores, the
 * patched scores [n_layer x n] and the time as JSON, for bench/interp.sh to
 * compare with TransformerLens (bench/interp_tlens.py).
 *
 *   interp MODEL N DIFFPOS OUT.json [exact]
 *
 * The pair: N token ids drawn with a fixed LCG from [100, min(vocab, 20000));
 * the corrupted prompt differs at position DIFFPOS. "exact" multiplies
 * dequantized f32 weights (quant_act = 0), the arithmetic TransformerLens
 * does on the same dequantized weights. Without arguments it prints how to
 * run it and exits 0 (bench/run.sh runs every bench program). */
#include <cJSON.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp/interp.h"
#include "model/model.h"
#include "prompt/prompt.h"
#include "tokenizer/tokenizer.h"

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec * 1e-6;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        printf("interp: skipped (run bench/interp.sh: needs MODEL N DIFFPOS OUT.json [exact])\n");
        return 0;
    }
    int n = atoi(argv[2]), k = atoi(argv[3]), exact = argc > 5 && !strcmp(argv[5], "exact");
    if (n < 2 || k < 0 || k >= n) {
        fprintf(stderr, "interp: bad N / DIFFPOS\n");
        return 2;
    }
    pl_model_opts mo = pl_model_opts_default();
    if (exact) mo.quant_act = 0;
    pl_model *m;
    pl_tokenizer *tok;
    pl_prompt pr;
    pl_prompt_spec spec = pl_prompt_spec_default();
    if (pl_model_load(argv[1], &mo, &m)) {
        fprintf(stderr, "interp: %s\n", pl_errmsg());
        return 1;
    }
    /* the classifier's label tokens when the tokenizer loads; else the
     * clean prompt's top token vs the token the corruption raises most */
    int have_prompt = pl_tokenizer_load(argv[1], &tok) == PL_OK;
    if (have_prompt && pl_prompt_init(&pr, tok, &spec) != PL_OK) {
        pl_tokenizer_free(tok);
        have_prompt = 0;
    }
    if (!have_prompt) fprintf(stderr, "interp: no prompt labels (%s); using the pair's top tokens\n", pl_errmsg());
    const pl_arch_desc *d = pl_model_desc(m);
    int32_t *clean = malloc((size_t)n * sizeof *clean), *corr = malloc((size_t)n * sizeof *corr);
    uint32_t s = 12345;
    int hi = d->n_vocab < 20000 ? d->n_vocab : 20000;
    for (int i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        clean[i] = (int32_t)(100 + (s >> 8) % (uint32_t)(hi - 100));
    }
    memcpy(corr, clean, (size_t)n * sizeof *corr);
    corr[k] = 100 + (clean[k] - 100 + 7919) % (hi - 100);
    int32_t pos_id = 0, neg_id = 1;
    if (have_prompt) pos_id = pr.label_pos_id, neg_id = pr.label_neg_id;
    else {
        pl_imodel *tmp;
        size_t V = (size_t)d->n_vocab;
        float *a = malloc(V * sizeof(float)), *b = malloc(V * sizeof(float));
        if (pl_imodel_new(m, 0, 1, n, 0, &tmp) || pl_imodel_run(tmp, clean, n, NULL, 0, NULL, a) ||
            pl_imodel_run(tmp, corr, n, NULL, 0, NULL, b)) {
            fprintf(stderr, "interp: %s\n", pl_errmsg());
            return 1;
        }
        size_t ia = 0, ib = 0;
        for (size_t v = 1; v < V; v++) {
            if (a[v] > a[ia]) ia = v;
            if (b[v] - a[v] > b[ib] - a[ib]) ib = v;
        }
        if (ib == ia) ib = (ia + 1) % V;
        pos_id = (int32_t)ia, neg_id = (int32_t)ib;
        free(a), free(b);
        pl_imodel_free(tmp);
    }
    pl_imodel *im;
    if (pl_imodel_new(m, pos_id, neg_id, n, 0, &im)) {
        fprintf(stderr, "interp: %s\n", pl_errmsg());
        return 1;
    }
    pl_patch_result res;
    double t0 = pl_time_now(), c0 = cpu_seconds();
    if (pl_imodel_patch(im, clean, n, corr, n, PL_HOOK_RESID_PRE, 0, &res)) {
        fprintf(stderr, "interp: %s\n", pl_errmsg());
        return 1;
    }
    double t = pl_time_now() - t0, ct = cpu_seconds() - c0;
    int L = d->n_layer;
    printf("phishlens: resid_pre sweep %d layers x %d positions (difference at %d), %d threads%s: %.2f s wall, %.2f s CPU\n",
           L, n, k, pl_num_threads(), exact ? ", exact f32 matmul" : "", t, ct);
    cJSON *j = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(j, "clean"), *b = cJSON_AddArrayToObject(j, "corrupted");
    for (int i = 0; i < n; i++) {
        cJSON_AddItemToArray(a, cJSON_CreateNumber(clean[i]));
        cJSON_AddItemToArray(b, cJSON_CreateNumber(corr[i]));
    }
    cJSON_AddNumberToObject(j, "pos_id", pos_id);
    cJSON_AddNumberToObject(j, "neg_id", neg_id);
    cJSON_AddNumberToObject(j, "clean_score", res.clean);
    cJSON_AddNumberToObject(j, "corrupted_score", res.corrupted);
    cJSON_AddNumberToObject(j, "seconds", t);
    cJSON_AddNumberToObject(j, "cpu_seconds", ct);
    cJSON_AddNumberToObject(j, "threads", pl_num_threads());
    cJSON *ps = cJSON_AddArrayToObject(j, "patched");
    for (int l = 0; l < L; l++) {
        cJSON *row = cJSON_CreateArray();
        for (int p = 0; p < n; p++) cJSON_AddItemToArray(row, cJSON_CreateNumber(res.scores[(size_t)l * (size_t)n + (size_t)p]));
        cJSON_AddItemToArray(ps, row);
    }
    pl_status st = pl_interp_write_json(argv[4], j);
    cJSON_Delete(j);
    pl_patch_result_free(&res);
    pl_imodel_free(im);
    if (have_prompt) {
        pl_prompt_free(&pr);
        pl_tokenizer_free(tok);
    }
    pl_model_free(m);
    free(clean), free(corr);
    return st == PL_OK ? 0 : 1;
}
