/* test_prompt.c — the classifier prompt and the batched scorer with a shared
 * prefix cache, checked against a plain forward over the whole prompt. */
#include "harness.h"

#include "prompt/prompt.h"

/* Batching and prefix forks change float summation order only. */
#define SCORE_TOL 1e-4

typedef struct {
    float *last;
    int d;
} grab;

static void grab_hook(const pl_hook_info *info, float *data, void *user) {
    grab *g = user;
    memcpy(g->last, data + (size_t)(info->shape[0] - 1) * (size_t)info->shape[1], (size_t)g->d * sizeof(float));
}

/* Reference: one fresh cache, the whole prompt in one forward, last logits. */
static double ref_score(pl_model *m, const pl_prompt *p, const pl_tokens *full, float *hidden_out) {
    const pl_arch_desc *d = pl_model_desc(m);
    pl_runner *r;
    pl_kv *kv;
    float *logits = malloc((size_t)d->n_vocab * sizeof(float));
    double s = NAN;
    grab g = {hidden_out, d->n_embd};
    if (pl_runner_new(m, (int)full->n, (int)full->n, &r) == PL_OK) {
        if (hidden_out) pl_runner_set_hook(r, PL_HOOK_LN_FINAL, -1, grab_hook, &g);
        if (pl_kv_new(m, (int)full->n, NULL, &kv) == PL_OK) {
            pl_seq sq = {kv, full->ids, (int)full->n};
            if (pl_forward(r, &sq, 1, PL_LOGITS_LAST, logits) == PL_OK)
                s = (double)logits[p->label_pos_id] - (double)logits[p->label_neg_id];
            pl_kv_free(kv);
        }
        pl_runner_free(r);
    }
    free(logits);
    return s;
}

static void make_record(pl_record *r, const char *subject, const char *body) {
    pl_record_init(r);
    pl_record_set(&r->subject, subject);
    pl_record_set(&r->from, "alerts@bank.example");
    pl_record_set(&r->body, body);
}

static void test_model_file(const char *shared, const char *rel) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", shared, rel);
    pl_model *m = NULL;
    pl_tokenizer *t = NULL;
    CHECK_OK(pl_model_load(path, NULL, &m));
    CHECK_OK(pl_tokenizer_load(path, &t));
    if (!m || !t) {
        pl_model_free(m);
        pl_tokenizer_free(t);
        return;
    }
    pl_prompt_spec spec = pl_prompt_spec_default();
    spec.max_email_tokens = 100;
    pl_prompt p;
    CHECK_OK(pl_prompt_init(&p, t, &spec));
    CHECK(p.prefix.n > 3 && p.suffix.n >= 1, "%s: prefix %zu suffix %zu ids", rel, p.prefix.n, p.suffix.n);
    CHECK(p.prefix.ids[0] == pl_tokenizer_bos(t), "%s: prompt starts with BOS", rel);
    CHECK(p.label_pos_id != p.label_neg_id, "%s: label ids differ", rel);

    const char *bodies[5] = {"Your account was locked. Verify now at http://x.example/login",
                             "Hi Tom, lunch tomorrow at noon?",
                             "Once upon a time there was a little girl named Lily. She liked to play outside in the sun "
                             "with her friends and her dog every single day of the summer. Once upon a time there was a little girl "
                             "named Lily. She liked to play outside in the sun with her friends and her dog every day.",
                             "", "Invoice attached."};
    pl_tokens em[5] = {{0}};
    const int32_t *ptrs[5];
    size_t lens[5];
    int trunc[5];
    for (int i = 0; i < 5; i++) {
        pl_record r;
        make_record(&r, i == 3 ? "" : "Notice", bodies[i]);
        CHECK_OK(pl_prompt_email_ids(&p, t, &r, &em[i], &trunc[i]));
        ptrs[i] = em[i].ids;
        lens[i] = em[i].n;
        pl_record_free(&r);
    }
    CHECK(trunc[2] == 1 && lens[2] == 100, "%s: long email truncated to 100 (got %zu, flag %d)", rel, lens[2], trunc[2]);
    CHECK(trunc[1] == 0, "%s: short email not truncated", rel);

    /* Batched (small batches force several forwards and packing). */
    pl_classifier *c = NULL;
    CHECK_OK(pl_classifier_new(m, &p, 160, &c));
    if (c) {
        double got[5], want[5];
        CHECK_OK(pl_classifier_score(c, ptrs, lens, 5, got));
        double maxd = 0;
        for (int i = 0; i < 5; i++) {
            pl_tokens full = {0};
            pl_prompt_full(&p, em[i].ids, em[i].n, &full);
            want[i] = ref_score(m, &p, &full, NULL);
            double sf;
            CHECK_OK(pl_classifier_score_full(c, full.ids, full.n, &sf));
            CHECK_NEAR(sf, want[i], SCORE_TOL);
            if (fabs(got[i] - want[i]) > maxd) maxd = fabs(got[i] - want[i]);
            pl_tokens_free(&full);
        }
        CHECK(maxd <= SCORE_TOL, "%s: batched prefix-shared scores vs whole-prompt forward: max diff %.3g", rel, maxd);
        printf("  %s: batched vs reference max |score diff| %.3g (scores %.3f %.3f %.3f)\n", rel, maxd, want[0],
               want[1], want[2]);
        int distinct = fabs(want[0] - want[1]) > 1e-6;
        CHECK(distinct, "%s: different emails give different scores", rel);

        /* Linear head on ln_final(h_last). */
        int d = pl_model_desc(m)->n_embd;
        float *w = calloc((size_t)d, sizeof(float)), *h = calloc((size_t)d, sizeof(float));
        for (int k = 0; k < d; k++) w[k] = (float)((k % 7) - 3) / 10.0f;
        CHECK_OK(pl_classifier_set_head(c, w, 0.25f));
        double hs[5];
        CHECK_OK(pl_classifier_score(c, ptrs, lens, 5, hs));
        pl_tokens full = {0};
        pl_prompt_full(&p, em[0].ids, em[0].n, &full);
        ref_score(m, &p, &full, h);
        double hw = 0.25;
        for (int k = 0; k < d; k++) hw += (double)w[k] * (double)h[k];
        CHECK_NEAR(hs[0], hw, SCORE_TOL);
        pl_tokens_free(&full);
        free(w);
        free(h);
        CHECK_OK(pl_classifier_set_head(c, NULL, 0));
        double again[5];
        CHECK_OK(pl_classifier_score(c, ptrs, lens, 5, again));
        CHECK_NEAR(again[0], got[0], 1e-12);

        /* Many empty emails: batches fill up by sequence count, not tokens. */
        {
            enum { NE = 150 };
            const int32_t *eptr[NE];
            size_t elen[NE];
            double es[NE], ref;
            for (int i = 0; i < NE; i++) {
                eptr[i] = em[0].ids;
                elen[i] = 0;
            }
            CHECK_OK(pl_classifier_score(c, eptr, elen, NE, es));
            pl_tokens e0 = {0};
            pl_prompt_full(&p, NULL, 0, &e0);
            CHECK_OK(pl_classifier_score_full(c, e0.ids, e0.n, &ref));
            double md = 0;
            for (int i = 0; i < NE; i++)
                if (fabs(es[i] - ref) > md) md = fabs(es[i] - ref);
            CHECK(md <= SCORE_TOL, "%s: %d empty emails vs whole-prompt forward: max diff %.3g", rel, NE, md);
            pl_tokens_free(&e0);
        }
        /* An email longer than the prompt allows is refused. */
        int32_t longe[101] = {0};
        const int32_t *lp = longe;
        size_t ll = 101;
        double sc;
        CHECK(pl_classifier_score(c, &lp, &ll, 1, &sc) == PL_ERR_RANGE, "over-long email rejected");
        pl_classifier_free(c);
    }
    for (int i = 0; i < 5; i++) pl_tokens_free(&em[i]);
    pl_prompt_free(&p);
    pl_tokenizer_free(t);
    pl_model_free(m);
}

static void test_mismatched_tokenizer(const char *shared) {
    char mp[1024], tp[1024];
    snprintf(mp, sizeof mp, "%s/models/stories260K.gguf", shared);
    snprintf(tp, sizeof tp, "%s/vectors/tokenizer/ggml-vocab-llama3.1-bpe.gguf", shared);
    pl_model *m = NULL;
    pl_tokenizer *t = NULL;
    CHECK_OK(pl_model_load(mp, NULL, &m));
    CHECK_OK(pl_tokenizer_load(tp, &t));
    if (!m || !t) return;
    pl_prompt p;
    CHECK_OK(pl_prompt_init(&p, t, NULL));
    CHECK(p.chat == 1 && p.family == PL_CHAT_LLAMA3, "llama3.1 vocab gets the chat layout");
    pl_classifier *c = NULL;
    pl_status st = pl_classifier_new(m, &p, 0, &c);
    CHECK(st == PL_ERR_RANGE, "a tokenizer of another model is refused (%s)", pl_errmsg());
    pl_classifier_free(c);
    pl_prompt_free(&p);
    pl_tokenizer_free(t);
    pl_model_free(m);
}

static void count_hook(const pl_hook_info *info, float *data, void *user) {
    (void)info;
    (void)data;
    ++*(int *)user;
}

/* Lanes (batches side by side, one runner per thread) give the scores of
 * one thread bit for bit, with and without a head; a foreign hook on the
 * classifier's runner turns them off (it sees every sequence); a failing
 * batch inside a lane reports its own error. */
static void test_lanes(const char *shared, const char *rel, int bf16) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", shared, rel);
    pl_model_opts o = pl_model_opts_default();
    o.bf16_tiles = bf16;
    pl_model *m = NULL;
    pl_tokenizer *t = NULL;
    CHECK_OK(pl_model_load(path, &o, &m));
    CHECK_OK(pl_tokenizer_load(path, &t));
    pl_prompt p;
    pl_prompt_spec spec = pl_prompt_spec_default();
    spec.max_email_tokens = 60;
    if (!m || !t || pl_prompt_init(&p, t, &spec) != PL_OK) {
        CHECK(0, "%s: model, tokenizer and prompt", rel);
        pl_model_free(m);
        pl_tokenizer_free(t);
        return;
    }
    enum { NE = 41 };
    const int nv = pl_model_desc(m)->n_vocab;
    int32_t ids[NE][60];
    const int32_t *ptrs[NE];
    size_t lens[NE];
    uint64_t x = 12345;
    for (int i = 0; i < NE; i++) {
        lens[i] = (size_t)((i * 37) % 61);
        for (size_t k = 0; k < lens[i]; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            ids[i][k] = 3 + (int32_t)((x >> 33) % (uint64_t)(nv - 3));
        }
        ptrs[i] = ids[i];
    }
    const int nt0 = pl_num_threads();
    pl_classifier *c = NULL;
    CHECK_OK(pl_classifier_new(m, &p, 160, &c));
    if (c) {
        double one[NE], many[NE], h1[NE], h3[NE];
        pl_set_num_threads(1);
        CHECK_OK(pl_classifier_score(c, ptrs, lens, NE, one));
        int same = 1;
        for (int nt = 2; nt <= 3; nt++) {
            pl_set_num_threads(nt);
            CHECK_OK(pl_classifier_score(c, ptrs, lens, NE, many));
            same &= memcmp(one, many, sizeof one) == 0;
        }
        CHECK(same, "%s%s: scores with 2 and 3 lanes are one thread's bits", rel, bf16 ? " (bf16 tiles)" : "");
        int d = pl_model_desc(m)->n_embd;
        float *w = calloc((size_t)d, sizeof(float));
        for (int k = 0; w && k < d; k++) w[k] = (float)((k % 5) - 2) / 8.0f;
        CHECK_OK(pl_classifier_set_head(c, w, -0.5f));
        pl_set_num_threads(1);
        CHECK_OK(pl_classifier_score(c, ptrs, lens, NE, h1));
        pl_set_num_threads(3);
        CHECK_OK(pl_classifier_score(c, ptrs, lens, NE, h3));
        CHECK(memcmp(h1, h3, sizeof h1) == 0 && memcmp(h1, one, sizeof h1) != 0,
              "%s: head scores with 3 lanes are one thread's bits (and not the label scores)", rel);
        CHECK_OK(pl_classifier_set_head(c, NULL, 0));
        free(w);
        /* a hook of the caller's: every sequence passes it */
        int calls = 0;
        CHECK_OK(pl_runner_set_hook(pl_classifier_runner(c), PL_HOOK_RESID_POST, 0, count_hook, &calls));
        CHECK_OK(pl_classifier_score(c, ptrs, lens, NE, many));
        CHECK(calls == NE && memcmp(one, many, sizeof one) == 0, "%s: with a caller's hook, %d of %d sequences seen",
              rel, calls, NE);
        pl_runner_clear_hooks(pl_classifier_runner(c));
        /* a token id out of the vocabulary in a late batch */
        ids[35][2] = nv; /* email 35 has 14 ids */
        pl_status st = pl_classifier_score(c, ptrs, lens, NE, many);
        CHECK(st == PL_ERR_RANGE && strstr(pl_errmsg(), "out of range"), "%s: a lane's error comes back (%d: %s)",
              rel, (int)st, pl_errmsg());
        ids[35][2] = 5;
        CHECK_OK(pl_classifier_score(c, ptrs, lens, NE, many));
        pl_classifier_free(c);
    }
    pl_set_num_threads(nt0);
    pl_prompt_free(&p);
    pl_tokenizer_free(t);
    pl_model_free(m);
}

int main(void) {
    T_BEGIN();
    const char *shared = pl_test_shared();
    if (shared) {
        test_model_file(shared, "models/stories260K.gguf");
        test_model_file(shared, "models/fixtures/tiny-gemma2-random.gguf");
        test_model_file(shared, "models/fixtures/tiny-mistral-random-q4_0.gguf");
        test_mismatched_tokenizer(shared);
        test_lanes(shared, "models/stories260K.gguf", 0);
        test_lanes(shared, "models/fixtures/tiny-mistral-random-q4_0.gguf", 0);
        test_lanes(shared, "models/fixtures/tiny-gemma2-random.gguf", 1);
        test_lanes(shared, "models/fixtures/tiny-llama31-random.gguf", 1);
    }
    return T_END();
}
