/* llm_internal.h — the loaded LLM (model, tokenizer, prompt, scorer) shared
 * by llm.c (eval, explain, train) and llm_interp.c (the interp stage). Not a
 * public header. */
#ifndef PL_STUDY_LLM_INTERNAL_H
#define PL_STUDY_LLM_INTERNAL_H

#include "model/model.h"
#include "prompt/prompt.h"
#include "study/study_internal.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    pl_model *m;
    pl_tokenizer *tok;
    pl_prompt pr;
    int have_pr;
    pl_classifier *cls;
    int n_layer, n_embd;
} pl_study_llm;

/* Load the model (+ the LoRA adapter when not NULL), its tokenizer, the
 * prompt (email part cut to max_tokens and to the training context) and the
 * scorer. Errors name the model. */
pl_status pl_study_llm_open(const pl_study_model *sm, int max_tokens, const char *adapter, pl_study_llm *l);
/* The same, keeping `reserve` tokens of the model's training context free
 * after the prompt (chain-of-thought: the rationale and the label word). */
pl_status pl_study_llm_open_ex(const pl_study_model *sm, int max_tokens, int reserve, const char *adapter,
                               pl_study_llm *l);
void pl_study_llm_close(pl_study_llm *l);
/* Scores of records (email ids through the prompt, batched). */
pl_status pl_study_llm_score(pl_study_llm *l, const pl_record *const *recs, size_t n, double *scores);
/* The train task's adapter path (into buf) for a fine-tuned training, or
 * NULL (zero-shot). */
const char *pl_study_llm_adapter(const pl_study_plan *pl, const pl_study_task *t, char *buf, size_t n);

#endif
