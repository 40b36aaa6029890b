/* bench/eval.c — emails per second of the scoring path (`phishlens eval`):
 * the classifier over records, batched over one shared prefix cache, with
 * an optional LoRA adapter. It also writes the exact token ids it scored
 * (prefix, each email, suffix), the label token ids and its scores as JSON,
 * so bench/eval_hf.py can run HF transformers + PEFT on the same inputs.
 *
 *   eval [MODEL [RECORDS.jsonl [ADAPTER [TOKENIZER [N [IDS_OUT.json]]]]]]
 *
 * Defaults: models/SmolLM2-135M-Instruct.Q4_1.gguf, 64 synthetic records,
 * no adapter, the model's tokenizer. Without the model it says so and exits
 * 0 (make models fetches it). bench/eval.sh runs the full comparison. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/eval.h"
#include "tensor/tensor.h"

static cJSON *ids_json(const int32_t *ids, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
    return a;
}

int main(int argc, char **argv) {
    const char *model = argc > 1 && argv[1][0] ? argv[1] : "models/SmolLM2-135M-Instruct.Q4_1.gguf";
    const char *recs = argc > 2 && argv[2][0] ? argv[2] : NULL;
    const char *adapter = argc > 3 && argv[3][0] ? argv[3] : NULL;
    const char *tokp = argc > 4 && argv[4][0] ? argv[4] : model;
    size_t n_max = argc > 5 ? (size_t)atol(argv[5]) : 64;
    const char *ids_out = argc > 6 ? argv[6] : NULL;
    if (access(model, R_OK) != 0) {
        printf("eval: %s not found (make models); skipped\n", model);
        return 0;
    }
    pl_records rs = {0};
    pl_status st = PL_OK;
    if (recs) st = pl_records_read_jsonl(recs, &rs);
    else {
        pl_synth_opts so;
        pl_synth_opts_default(&so);
        so.n = n_max < 12 ? 12 : n_max;
        so.n_pairs = 1;
        pl_records pairs = {0};
        cJSON *pj = NULL, *man = NULL;
        st = pl_synth_generate(&so, &rs, &pairs, &pj, &man);
        pl_records_free(&pairs);
        cJSON_Delete(pj);
        cJSON_Delete(man);
    }
    while (!st && rs.n > n_max) pl_record_free(&rs.v[--rs.n]);
    pl_model *m = NULL;
    pl_tokenizer *t = NULL;
    pl_prompt p;
    int have_p = 0;
    pl_classifier *c = NULL;
    /* PL_BF16=1: quantized weights as bf16 tiles (pl_model_opts.bf16_tiles);
     * PL_EXACT=1: the exact path (dequantized weights, f32 activations), the
     * reference the faster paths' scores are compared with */
    pl_model_opts mo = pl_model_opts_default();
    mo.bf16_tiles = getenv("PL_BF16") && atoi(getenv("PL_BF16")) == 1;
    if (getenv("PL_EXACT") && atoi(getenv("PL_EXACT")) == 1) mo.quant_act = 0;
    if (!st) st = pl_model_load(model, &mo, &m);
    if (!st && adapter) st = pl_model_add_lora_spec(m, adapter);
    if (!st) st = pl_tokenizer_load(tokp, &t);
    if (!st) {
        pl_prompt_spec spec = pl_prompt_spec_default();
        st = pl_prompt_init(&p, t, &spec);
        have_p = !st;
    }
    double t_init = pl_time_now();
    if (!st) st = pl_classifier_new(m, &p, 0, &c);
    t_init = pl_time_now() - t_init;
    pl_preds lab = {0}, unl = {0};
    pl_score_stats ss = {0};
    /* One warm-up email, then the timed run. */
    if (!st) {
        pl_records one = {.v = rs.v, .n = rs.n ? 1 : 0, .cap = 0};
        pl_preds w = {0};
        st = pl_score_records(c, t, &one, NULL, &w, NULL, NULL);
        pl_preds_free(&w);
    }
    if (!st) st = pl_score_records(c, t, &rs, NULL, &lab, &unl, &ss);
    if (st) {
        fprintf(stderr, "eval: %s\n", pl_errmsg());
        return 1;
    }
    printf("phishlens eval: %zu emails, %lld tokens (email+suffix; prefix %zu shared), threads %d, adapter %s\n",
           ss.n_records, (long long)ss.n_tokens, p.prefix.n, pl_num_threads(), adapter ? adapter : "none");
    printf("phishlens eval: prefix cache %.3f s; scoring %.3f s = %.2f emails/s (%.1f tokens/s); tile products off 64-byte lines: %zu\n", t_init, ss.seconds,
           (double)ss.n_records / ss.seconds, (double)ss.n_tokens / ss.seconds, pl_bf16_tiles_misaligned());
    if (ids_out) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToObject(j, "prefix", ids_json(p.prefix.ids, p.prefix.n));
        cJSON_AddItemToObject(j, "suffix", ids_json(p.suffix.ids, p.suffix.n));
        cJSON_AddNumberToObject(j, "label_pos", p.label_pos_id);
        cJSON_AddNumberToObject(j, "label_neg", p.label_neg_id);
        cJSON_AddNumberToObject(j, "seconds", ss.seconds);
        cJSON_AddNumberToObject(j, "emails_per_s", (double)ss.n_records / ss.seconds);
        cJSON *em = cJSON_AddArrayToObject(j, "emails"), *sc = cJSON_AddArrayToObject(j, "scores");
        size_t li = 0, ui = 0;
        for (size_t i = 0; i < rs.n; i++) {
            pl_tokens e = {0};
            pl_prompt_email_ids(&p, t, &rs.v[i], &e, NULL);
            cJSON_AddItemToArray(em, ids_json(e.ids, e.n));
            pl_tokens_free(&e);
            const pl_pred *pr = rs.v[i].label >= 0 ? &lab.v[li++] : &unl.v[ui++];
            cJSON_AddItemToArray(sc, cJSON_CreateNumber(pr->score));
        }
        st = pl_json_write_atomic(ids_out, j);
        cJSON_Delete(j);
        if (st) fprintf(stderr, "eval: %s\n", pl_errmsg());
    }
    pl_preds_free(&lab);
    pl_preds_free(&unl);
    pl_classifier_free(c);
    if (have_p) pl_prompt_free(&p);
    pl_tokenizer_free(t);
    pl_model_free(m);
    pl_records_free(&rs);
    return st ? 1 : 0;
}
