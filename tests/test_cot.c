/* test_cot.c — the chain-of-thought paradigm end to end:
 *   - the synthetic corpus's meta.rationale, checked against each email's
 *     ground-truth cue (meta.synth_cue) and the minimal pairs;
 *   - the answer layout (pl_prompt_answer_ids) on the stories260K vocabulary;
 *   - LoRA fine-tuning with the LM objective on prompt + rationale + label
 *     word: the loss falls, and a run that memorized two answers generates
 *     exactly their rationales;
 *   - the CoT scorer (pl_cot_score) against one whole-sequence forward of
 *     prompt + generated ids: every generated id is that forward's argmax,
 *     and the score is its label-token logit difference at the last position;
 *     batching and the token budget;
 *   - a reduced study with chain-of-thought paradigms, one on a corpus
 *     without rationales, through to the report.
 * The model parts read ../shared/models/stories260K.gguf (skipped without it). */
#include "harness.h"

#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eval/eval.h"
#include "model/model.h"
#include "prompt/prompt.h"
#include "study/study_internal.h"
#include "tokenizer/tokenizer.h"
#include "train/train.h"

/* logits of the batched and the whole-sequence forward differ by float
 * summation order only */
#define SCORE_TOL 1e-3
#define EMAIL_TOKENS 24

static char tmp_root[256];
static char model_path[5000];

/* ---- helpers ------------------------------------------------------------------ */

static const char *meta_str(const pl_record *r, const char *key) {
    const cJSON *v = r->meta ? cJSON_GetObjectItemCaseSensitive(r->meta, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int has_any(const char *s, const char *const *w) {
    for (; *w; w++)
        if (strstr(s, *w)) return 1;
    return 0;
}

static int ci_contains(const char *s, const char *w) {
    size_t n = strlen(w);
    for (; *s; s++)
        if (!strncasecmp(s, w, n)) return 1;
    return 0;
}

static void synth(size_t n, uint64_t seed, size_t pairs, pl_records *rs, pl_records *pr) {
    pl_synth_opts o;
    pl_synth_opts_default(&o);
    o.n = n;
    o.seed = seed;
    o.n_pairs = pairs;
    cJSON *pj = NULL, *man = NULL;
    CHECK_OK(pl_synth_generate(&o, rs, pr, &pj, &man));
    cJSON_Delete(pj);
    cJSON_Delete(man);
}

static const pl_record *find_id(const pl_records *rs, const char *id) {
    for (size_t i = 0; i < rs->n; i++)
        if (!strcmp(rs->v[i].id, id)) return &rs->v[i];
    return NULL;
}

/* ---- rationales in the synthetic corpus ---------------------------------------- */

/* Does the rationale name the cue? The expectations are read off the cue
 * sentence (the generator's ground truth) by what it literally contains. */
static int rationale_matches_cue(const pl_record *r, const char *rat, const char *cue, char *why, size_t nwhy) {
    static const char *const pressure[] = {"pressure", "deadline", NULL};
    why[0] = 0;
    if (r->label == 1) {
        const char *u = strstr(cue, "http");
        int ip = u && isdigit((unsigned char)u[strncmp(u, "https://", 8) ? 7 : 8]);
        if (u && ip && !strstr(rat, "IP address")) snprintf(why, nwhy, "link to an IP address not named");
        else if (u && !ip && !strstr(rat, "look-alike")) snprintf(why, nwhy, "look-alike link not named");
        else if (!u && strchr(cue, '@') && !strstr(rat, "free-mail")) snprintf(why, nwhy, "free-mail address not named");
        else if (!u && strstr(cue, "in gift cards") && !strstr(rat, "gift cards")) snprintf(why, nwhy, "gift cards not named");
        else if (strstr(cue, "password") && !has_any(rat, (const char *const[]){"password", "credentials", "sign-in", NULL}))
            snprintf(why, nwhy, "the password request not named");
        else if ((strstr(cue, "card number") || strstr(cue, "CVV")) && !strstr(rat, "card"))
            snprintf(why, nwhy, "the card request not named");
        else if (strstr(cue, " fee") && !has_any(rat, (const char *const[]){"payment", "money", "fee", NULL}))
            snprintf(why, nwhy, "the fee not named");
        else if (strstr(cue, " hours") && !has_any(rat, pressure)) snprintf(why, nwhy, "the deadline not named");
        else if (!strstr(cue, " hours") && !strstr(cue, "today") && !strstr(cue, "immediately") &&
                 !strstr(cue, "right away") && !strstr(cue, " now") && !strstr(cue, "end of day") &&
                 !strstr(cue, "urgent") && !strstr(cue, " or ") && !strstr(cue, "to avoid") && has_any(rat, pressure))
            snprintf(why, nwhy, "pressure named for a cue without any");
    } else {
        if (has_any(rat, (const char *const[]){"look-alike", "IP address", "free-mail", "asks for a", "requests", NULL}))
            snprintf(why, nwhy, "a legitimate email's rationale names a phishing cue");
        else if (strstr(cue, "https://") && (strstr(rat, "no link") || !strstr(rat, "link")))
            snprintf(why, nwhy, "the real link not named");
        else if (!strstr(cue, "http") && !strstr(rat, "no link")) snprintf(why, nwhy, "\"no link\" not said");
    }
    return why[0] == 0;
}

static void test_synth_rationales(void) {
    pl_records rs = {0}, pr = {0}, rs2 = {0}, pr2 = {0};
    synth(600, 11, 24, &rs, &pr);
    synth(600, 11, 24, &rs2, &pr2);
    size_t n_bad = 0, n_checked = 0, n_same = 0;
    /* distinct openings (first two words) per label */
    char open[2][8][32];
    int n_open[2] = {0, 0};
    for (int part = 0; part < 2; part++) {
        const pl_records *a = part ? &pr : &rs, *b = part ? &pr2 : &rs2;
        for (size_t i = 0; i < a->n; i++) {
            const pl_record *r = &a->v[i];
            const char *rat = meta_str(r, "rationale"), *cue = meta_str(r, "synth_cue");
            if (!rat || !rat[0] || !cue) {
                if (n_bad++ < 5) CHECK(0, "%s: no meta.rationale / synth_cue", r->id);
                continue;
            }
            n_checked++;
            n_same += !strcmp(rat, meta_str(&b->v[i], "rationale") ? meta_str(&b->v[i], "rationale") : "");
            char why[128];
            int ok = !strchr(rat, '\n') && rat[strlen(rat) - 1] == '.' && !ci_contains(rat, "mailshield") &&
                     !ci_contains(rat, "scanned") && !ci_contains(rat, "threat") && !ci_contains(rat, "footer");
            if (!ok) snprintf(why, sizeof why, "not one line ending in '.', or names the shortcut");
            else ok = rationale_matches_cue(r, rat, cue, why, sizeof why);
            if (!ok && n_bad++ < 8) CHECK(0, "%s (label %d): %s\n    cue: %s\n    rationale: %s", r->id, r->label, why, cue, rat);
            char w2[32] = "";
            const char *sp = strchr(rat, ' ');
            sp = sp ? strchr(sp + 1, ' ') : NULL;
            snprintf(w2, sizeof w2, "%.*s", sp ? (int)(sp - rat) : 20, rat);
            int L = r->label == 1, seen = 0;
            for (int k = 0; k < n_open[L]; k++) seen |= !strcmp(open[L][k], w2);
            if (!seen && n_open[L] < 8) snprintf(open[L][n_open[L]++], 32, "%s", w2);
        }
    }
    CHECK(n_bad == 0, "%zu of %zu rationales do not name their email's cue", n_bad, n_checked);
    CHECK(n_same == n_checked, "rationales are deterministic: %zu of %zu equal on a rerun", n_same, n_checked);
    CHECK(n_open[0] >= 3 && n_open[1] >= 3, "phrasings vary: %d legitimate, %d phishing openings", n_open[0], n_open[1]);
    /* minimal pairs: the shortcut does not change the rationale; the cue does */
    size_t sc_pairs = 0, cue_pairs = 0;
    for (size_t i = 0; i < pr.n; i++) {
        const char *id = pr.v[i].id;
        char other[64];
        if (strstr(id, "-without")) {
            snprintf(other, sizeof other, "%.*s-with", (int)(strstr(id, "-without") - id), id);
            const pl_record *w = find_id(&pr, other);
            CHECK(w && !strcmp(meta_str(w, "rationale"), meta_str(&pr.v[i], "rationale")),
                  "pair %s: the planted shortcut changed the rationale", id);
            sc_pairs++;
        } else if (strstr(id, "-legit")) {
            snprintf(other, sizeof other, "%.*s-phish", (int)(strstr(id, "-legit") - id), id);
            const pl_record *w = find_id(&pr, other);
            CHECK(w && w->label == 1 && strcmp(meta_str(w, "rationale"), meta_str(&pr.v[i], "rationale")),
                  "pair %s: phishing and legitimate twins share a rationale", id);
            cue_pairs++;
        }
    }
    CHECK(sc_pairs > 0 && cue_pairs > 0, "minimal pairs checked: %zu shortcut, %zu cue", sc_pairs, cue_pairs);
    printf("synth rationales: %zu checked against their cues; e.g. \"%s\"\n", n_checked,
           rs.n ? meta_str(&rs.v[0], "rationale") : "");
    pl_records_free(&rs);
    pl_records_free(&pr);
    pl_records_free(&rs2);
    pl_records_free(&pr2);
}

/* ---- the model parts ------------------------------------------------------------ */

typedef struct {
    pl_model *m;
    pl_tokenizer *tok;
    pl_prompt pr;
} lm;

static int lm_open(lm *l, const char *adapter) {
    memset(l, 0, sizeof *l);
    pl_status st = pl_model_load(model_path, NULL, &l->m);
    if (!st && adapter) st = pl_model_add_lora(l->m, adapter, 1.0f);
    if (!st) st = pl_tokenizer_load(model_path, &l->tok);
    pl_prompt_spec spec = pl_prompt_spec_default();
    spec.max_email_tokens = EMAIL_TOKENS;
    if (!st) st = pl_prompt_init(&l->pr, l->tok, &spec);
    CHECK_OK(st);
    return st == PL_OK;
}

static void lm_close(lm *l) {
    pl_prompt_free(&l->pr);
    pl_tokenizer_free(l->tok);
    pl_model_free(l->m);
}

static void test_answer_layout(void) {
    lm l;
    if (!lm_open(&l, NULL)) return;
    const char *rat = "The sender asks for a password through a link to a look-alike domain.";
    for (int label = 0; label < 2; label++) {
        pl_tokens a = {0}, nl = {0}, w = {0};
        CHECK_OK(pl_prompt_answer_ids(&l.pr, l.tok, rat, label, &a));
        CHECK_OK(pl_prompt_newline_ids(l.tok, &nl));
        CHECK_OK(pl_prompt_answer_ids(&l.pr, l.tok, NULL, label, &w));
        /* the answer ends with the label word alone, whose first id is the prompt's label token */
        size_t nr = a.n - w.n;
        CHECK(w.n > 0 && a.n > w.n && !memcmp(a.ids + nr, w.ids, w.n * sizeof(int32_t)), "answer ends with the label word");
        CHECK(w.ids[0] == (label ? l.pr.label_pos_id : l.pr.label_neg_id), "label word starts with the label token");
        /* the rationale part decodes to the rationale and a line break, which is the break the scorer appends */
        pl_buf txt = {0};
        CHECK_OK(pl_tokenizer_decode(l.tok, a.ids, nr, 0, &txt));
        pl_buf_append(&txt, "", 1);
        const char *s = txt.data;
        while (*s == ' ') s++;
        CHECK(!strncmp(s, rat, strlen(rat)) && !strcmp(s + strlen(rat), "\n"), "rationale part decodes to '%s'", s);
        CHECK(nl.n > 0 && nr >= nl.n && !memcmp(a.ids + nr - nl.n, nl.ids, nl.n * sizeof(int32_t)),
              "the rationale's closing break is pl_prompt_newline_ids");
        pl_buf_free(&txt);
        pl_tokens_free(&a);
        pl_tokens_free(&nl);
        pl_tokens_free(&w);
    }
    lm_close(&l);
}

/* LM examples as the study builds them: prompt + answer + EOS, scored from
 * the answer position. */
typedef struct {
    pl_tokens *ids;
    pl_tr_example *ex;
    pl_tokens *email;
    size_t n;
} cot_data;

static void cot_data_make(const lm *l, const pl_record *const *recs, size_t n, cot_data *d) {
    d->n = n;
    d->ids = calloc(n, sizeof *d->ids);
    d->ex = calloc(n, sizeof *d->ex);
    d->email = calloc(n, sizeof *d->email);
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(pl_prompt_email_ids(&l->pr, l->tok, recs[i], &d->email[i], NULL));
        CHECK_OK(pl_prompt_full(&l->pr, d->email[i].ids, d->email[i].n, &d->ids[i]));
        int plen = (int)d->ids[i].n;
        CHECK_OK(pl_prompt_answer_ids(&l->pr, l->tok, meta_str(recs[i], "rationale"), recs[i]->label, &d->ids[i]));
        CHECK_OK(pl_tokens_push(&d->ids[i], pl_tokenizer_eos(l->tok)));
        d->ex[i] = (pl_tr_example){d->ids[i].ids, (int)d->ids[i].n, recs[i]->label, plen - 1};
    }
}

static void cot_data_free(cot_data *d) {
    for (size_t i = 0; i < d->n; i++) {
        pl_tokens_free(&d->ids[i]);
        pl_tokens_free(&d->email[i]);
    }
    free(d->ids);
    free(d->ex);
    free(d->email);
}

static double mean_loss(pl_trainer *t, const cot_data *d) {
    double sum = 0;
    int cnt = 0;
    for (size_t i = 0; i < d->n; i++) {
        double loss = 0;
        int ns = 0;
        CHECK_OK(pl_trainer_example(t, &d->ex[i], i, 1.0, 0, &loss, &ns));
        sum += loss;
        cnt += ns;
    }
    return cnt ? sum / cnt : (double)NAN;
}

/* Score the emails with the CoT scorer and check each against one
 * whole-sequence forward of prompt + generated ids. */
static void check_against_full(lm *l, pl_cot *cot, const cot_data *d, size_t n, int max_new, double *scores_out,
                               char **rats_out) {
    const int32_t **eids = calloc(n, sizeof *eids);
    size_t *lens = calloc(n, sizeof *lens);
    double *sc = calloc(n, sizeof *sc);
    pl_tokens *gen = calloc(n, sizeof *gen);
    char **rat = calloc(n, sizeof *rat);
    for (size_t i = 0; i < n; i++) {
        eids[i] = d->email[i].ids;
        lens[i] = d->email[i].n;
    }
    CHECK_OK(pl_cot_score(cot, eids, lens, n, sc, gen, rat));
    pl_tokens nl = {0};
    CHECK_OK(pl_prompt_newline_ids(l->tok, &nl));
    const int nv = pl_model_desc(l->m)->n_vocab;
    for (size_t i = 0; i < n; i++) {
        pl_tokens full = {0};
        CHECK_OK(pl_prompt_full(&l->pr, d->email[i].ids, d->email[i].n, &full));
        size_t p0 = full.n; /* the answer position is p0 - 1 */
        for (size_t k = 0; k < gen[i].n; k++) pl_tokens_push(&full, gen[i].ids[k]);
        pl_runner *run = NULL;
        pl_kv *kv = NULL;
        CHECK_OK(pl_runner_new(l->m, (int)full.n, (int)full.n, &run));
        CHECK_OK(pl_kv_new(l->m, (int)full.n, NULL, &kv));
        float *lg = malloc(full.n * (size_t)nv * sizeof(float));
        pl_seq s = {kv, full.ids, (int)full.n};
        CHECK_OK(pl_forward(run, &s, 1, PL_LOGITS_ALL, lg));
        /* generated ids: the argmax at each position (a forced break is not generated) */
        int forced = gen[i].n >= nl.n && !memcmp(gen[i].ids + gen[i].n - nl.n, nl.ids, nl.n * sizeof(int32_t));
        size_t n_gen = gen[i].n, mism = 0;
        for (size_t k = 0; k < n_gen; k++) {
            const float *row = lg + (p0 - 1 + k) * (size_t)nv;
            int32_t best = 0;
            for (int v = 1; v < nv; v++)
                if (row[v] > row[best]) best = v;
            if (best != gen[i].ids[k]) {
                /* allowed only for the appended break, or a near tie */
                int near = (double)row[best] - (double)row[gen[i].ids[k]] < SCORE_TOL;
                int appended = forced && k >= n_gen - nl.n;
                if (!near && !appended) mism++;
            }
        }
        CHECK(mism == 0, "email %zu: %zu generated ids are not the whole-sequence argmax", i, mism);
        CHECK(gen[i].n >= 1 && (int)gen[i].n <= max_new + (int)nl.n, "email %zu: %zu ids fed (budget %d)", i, gen[i].n, max_new);
        const float *last = lg + (full.n - 1) * (size_t)nv;
        double want = (double)last[l->pr.label_pos_id] - (double)last[l->pr.label_neg_id];
        CHECK(fabs(sc[i] - want) <= SCORE_TOL * (1 + fabs(want)), "email %zu: CoT score %.6f, whole forward %.6f", i,
              sc[i], want);
        double p = pl_sigmoid(sc[i]);
        CHECK(p >= 0 && p <= 1 && isfinite(sc[i]), "email %zu: p_phish %g", i, p);
        /* the rationale is the decoded generated text before its break */
        pl_buf txt = {0};
        pl_tokenizer_decode(l->tok, gen[i].ids, gen[i].n, 0, &txt);
        pl_buf_append(&txt, "", 1);
        char *br = strchr(txt.data, '\n');
        if (br) *br = 0;
        const char *t0 = txt.data;
        while (*t0 == ' ') t0++;
        CHECK(rat[i] && !strcmp(rat[i], t0), "email %zu: rationale '%s' vs decoded '%s'", i, rat[i] ? rat[i] : "(null)", t0);
        pl_buf_free(&txt);
        free(lg);
        pl_kv_free(kv);
        pl_runner_free(run);
        pl_tokens_free(&full);
        if (scores_out) scores_out[i] = sc[i];
        if (rats_out) rats_out[i] = rat[i];
        else free(rat[i]);
        pl_tokens_free(&gen[i]);
    }
    pl_tokens_free(&nl);
    free(eids);
    free(lens);
    free(sc);
    free(gen);
    free(rat);
}

static void test_cot_train_and_score(void) {
    pl_records rs = {0}, pr = {0};
    synth(24, 5, 0, &rs, &pr);
    /* two bank emails of each label: short rationales the tiny model can learn */
    const pl_record *pick[4];
    size_t np = 0;
    for (int want = 0; want < 2; want++)
        for (size_t i = 0, got = 0; i < rs.n && got < 2; i++)
            if (rs.v[i].label == want && !strcmp(rs.v[i].source, "bank")) pick[np++] = &rs.v[i], got++;
    CHECK(np == 4, "picked %zu emails", np);
    lm l;
    if (!lm_open(&l, NULL)) return;
    cot_data d;
    cot_data_make(&l, pick, np, &d);

    /* the untrained scorer agrees with the whole-sequence forward, with and without a tiny budget */
    pl_cot *cot = NULL;
    CHECK_OK(pl_cot_new(l.m, &l.pr, l.tok, 0, 0, &cot));
    CHECK(pl_cot_max_new(cot) == PL_COT_MAX_NEW, "default budget");
    check_against_full(&l, cot, &d, np, PL_COT_MAX_NEW, NULL, NULL);
    pl_cot_free(cot);
    CHECK_OK(pl_cot_new(l.m, &l.pr, l.tok, 3, 0, &cot));
    check_against_full(&l, cot, &d, np, 3, NULL, NULL);
    pl_cot_free(cot);

    /* fine-tune on the answers: LM objective, LoRA on every target */
    pl_tr_config tc = pl_tr_config_default();
    tc.objective = PL_OBJ_LM;
    tc.lora_rank = 8;
    tc.lora_alpha = 16;
    tc.targets = PL_TGT_Q | PL_TGT_K | PL_TGT_V | PL_TGT_O | PL_TGT_GATE | PL_TGT_UP | PL_TGT_DOWN;
    tc.seed = 3;
    pl_trainer *t = NULL;
    CHECK_OK(pl_trainer_new(l.m, &tc, &t));
    double before = mean_loss(t, &d);
    char dir[400];
    snprintf(dir, sizeof dir, "%s/train", tmp_root);
    pl_loop_opts lo = pl_loop_opts_default();
    lo.opt.lr = 1e-2;
    lo.opt.weight_decay = 0;
    lo.epochs = 50;
    lo.batch = 4;
    lo.run_dir = dir;
    lo.base_model = model_path;
    lo.quiet = 1;
    pl_tr_dataset ds = {d.ex, d.n};
    pl_loop_result res;
    CHECK_OK(pl_train_loop(t, &ds, NULL, &lo, &res));
    double after = mean_loss(t, &d);
    printf("CoT fine-tuning (stories260K, %zu answers, %lld steps): LM loss %.3f -> %.3f\n", d.n, (long long)res.steps,
           before, after);
    CHECK(isfinite(before) && after < 0.5 * before, "the LM loss on rationale + label falls: %.3f -> %.3f", before, after);
    pl_trainer_free(t);

    /* the trained adapter, loaded like eval does: it writes the memorized rationales and labels */
    lm la;
    char adapter[500];
    snprintf(adapter, sizeof adapter, "%s/adapter.gguf", dir);
    if (lm_open(&la, adapter)) {
        cot_data d2;
        cot_data_make(&la, pick, np, &d2);
        CHECK_OK(pl_cot_new(la.m, &la.pr, la.tok, 0, 0, &cot));
        double sc[4];
        char *rat[4] = {0};
        check_against_full(&la, cot, &d2, np, PL_COT_MAX_NEW, sc, rat);
        size_t exact = 0, right = 0;
        for (size_t i = 0; i < np; i++) {
            exact += rat[i] && !strcmp(rat[i], meta_str(pick[i], "rationale"));
            right += (sc[i] > 0) == (pick[i]->label == 1);
            if (i < 2) printf("  generated: \"%s\" -> p_phish %.3f (label %d)\n", rat[i], pl_sigmoid(sc[i]), pick[i]->label);
        }
        CHECK(exact == np, "memorized rationales regenerated exactly: %zu of %zu", exact, np);
        CHECK(right == np, "labels read after the generated rationales: %zu of %zu right", right, np);
        /* one at a time = all together (batching changes nothing) */
        for (size_t i = 0; i < np; i++) {
            double s1;
            char *r1 = NULL;
            const int32_t *e = d2.email[i].ids;
            size_t len = d2.email[i].n;
            CHECK_OK(pl_cot_score(cot, &e, &len, 1, &s1, NULL, &r1));
            CHECK(fabs(s1 - sc[i]) <= SCORE_TOL * (1 + fabs(sc[i])) && r1 && rat[i] && !strcmp(r1, rat[i]),
                  "email %zu alone: %.6f vs batched %.6f", i, s1, sc[i]);
            free(r1);
        }
        /* pl_cot_score_records: predictions carry the rationale, which survives predictions.jsonl */
        pl_records sub = {0};
        for (size_t i = 0; i < np; i++) {
            pl_record cp;
            pl_record_copy(&cp, pick[i]);
            pl_records_push(&sub, &cp);
        }
        pl_preds ps = {0}, back = {0};
        pl_score_stats stt;
        CHECK_OK(pl_cot_score_records(cot, la.tok, &sub, NULL, &ps, NULL, &stt));
        char path[1000];
        snprintf(path, sizeof path, "%s/preds.jsonl", tmp_root);
        CHECK_OK(pl_preds_write_jsonl(path, &ps));
        CHECK_OK(pl_preds_read_jsonl(path, &back));
        CHECK(back.n == np, "predictions read back: %zu", back.n);
        for (size_t i = 0; i < back.n && i < np; i++)
            CHECK(back.v[i].rationale && !strcmp(back.v[i].rationale, rat[i]) && fabs(back.v[i].score - sc[i]) < 1e-9 * (1 + fabs(sc[i])),
                  "prediction %zu: rationale and score", i);
        /* the command: phishlens eval --cot writes the same predictions */
        const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
        char bin[300], recs[500], outd[500], cmd[16000];
        snprintf(bin, sizeof bin, "%s/phishlens", build);
        snprintf(recs, sizeof recs, "%s/sub.jsonl", tmp_root);
        snprintf(outd, sizeof outd, "%s/eval_cot", tmp_root);
        CHECK_OK(pl_records_write_jsonl(recs, &sub));
        if (access(bin, X_OK) != 0) {
            SKIP("%s not built: eval --cot not run", bin);
        } else {
            snprintf(cmd, sizeof cmd,
                     "OMP_NUM_THREADS=1 %s --quiet eval -m %s --lora %s --test %s -o %s --cot --max-email-tokens %d "
                     "--bootstrap 20 >/dev/null 2>&1",
                     bin, model_path, adapter, recs, outd, EMAIL_TOKENS);
            CHECK(system(cmd) == 0, "eval --cot exits 0");
            snprintf(path, sizeof path, "%s/predictions.jsonl", outd);
            pl_preds cli = {0};
            CHECK_OK(pl_preds_read_jsonl(path, &cli));
            CHECK(cli.n == ps.n, "eval --cot predictions: %zu", cli.n);
            for (size_t i = 0; i < cli.n && i < ps.n; i++)
                CHECK(cli.v[i].rationale && ps.v[i].rationale && !strcmp(cli.v[i].rationale, ps.v[i].rationale) &&
                          fabs(cli.v[i].score - ps.v[i].score) <= SCORE_TOL * (1 + fabs(ps.v[i].score)),
                      "eval --cot prediction %zu matches the library", i);
            pl_preds_free(&cli);
            snprintf(cmd, sizeof cmd, "%s --quiet eval -m %s --test %s -o %s --cot-max-new 4 >/dev/null 2>&1", bin,
                     model_path, recs, outd);
            int rc = system(cmd);
            CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "--cot-max-new without --cot is a usage error");
        }
        pl_preds_free(&ps);
        pl_preds_free(&back);
        pl_records_free(&sub);
        for (size_t i = 0; i < np; i++) free(rat[i]);
        pl_cot_free(cot);
        cot_data_free(&d2);
        lm_close(&la);
    }
    cot_data_free(&d);
    lm_close(&l);
    pl_records_free(&rs);
    pl_records_free(&pr);
}

/* ---- a reduced study ------------------------------------------------------------- */

static void write_corpus(const char *path, const pl_records *rs, const char *style, int strip) {
    pl_records part = {0};
    for (size_t i = 0; i < rs->n; i++) {
        if (strcmp(rs->v[i].source, style)) continue;
        pl_record cp;
        pl_record_copy(&cp, &rs->v[i]);
        if (strip) cJSON_DeleteItemFromObjectCaseSensitive(cp.meta, "rationale");
        pl_records_push(&part, &cp);
    }
    CHECK_OK(pl_records_write_jsonl(path, &part));
    pl_records_free(&part);
}

static cJSON *read_json(const char *path) {
    char *txt = NULL;
    size_t len = 0;
    if (pl_read_file(path, &txt, &len)) return NULL;
    cJSON *j = cJSON_ParseWithLength(txt, len);
    free(txt);
    return j;
}

static void test_study(void) {
    char dir[400], path[1200], cfg[700], out[700];
    snprintf(dir, sizeof dir, "%s/study", tmp_root);
    CHECK_OK(pl_mkdirs(dir));
    pl_records rs = {0}, pr = {0};
    synth(180, 9, 0, &rs, &pr);
    snprintf(path, sizeof path, "%s/bank.jsonl", dir);
    write_corpus(path, &rs, "bank", 0);
    snprintf(path, sizeof path, "%s/parcel.jsonl", dir);
    write_corpus(path, &rs, "parcel", 1); /* a corpus without rationales */
    pl_records_free(&rs);
    pl_records_free(&pr);
    snprintf(cfg, sizeof cfg, "%s/study.json", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    char json[8000];
    snprintf(json, sizeof json,
             "{\"name\": \"cot\", \"seed\": 4,"
             " \"corpora\": [{\"name\": \"bank\", \"path\": \"bank.jsonl\"}, {\"name\": \"parcel\", \"path\": \"parcel.jsonl\"}],"
             " \"models\": [{\"name\": \"stories\", \"family\": \"llama\", \"path\": \"%s\"}],"
             " \"paradigms\": [\"chain-of-thought:bank\", \"chain-of-thought:parcel\"],"
             " \"hyperparameters\": {\"max_tokens\": %d, \"epochs\": 1, \"batch\": 8, \"lr\": 1e-3},"
             " \"test\": {\"test_frac\": 0.3, \"bootstrap\": 20, \"max_per_corpus\": 10},"
             " \"interp\": {\"probe_examples\": 4}, \"explain\": {\"examples\": 2}}",
             model_path, EMAIL_TOKENS);
    FILE *f = fopen(cfg, "w");
    if (f) {
        fputs(json, f);
        fclose(f);
    }
    pl_study_config c;
    CHECK_OK(pl_study_config_load(cfg, &c));
    pl_study_plan pl;
    pl_study_summary s;
    pl_study_opts o;
    pl_study_opts_default(&o);
    CHECK_OK(pl_study_plan_build(&c, out, &pl));
    CHECK_OK(pl_study_execute(&pl, &o, &s));
    int st_train = -1, st_eval = -1, st_plain = -1, st_x = -1, st_i = -1;
    const char *why_plain = "", *why_x = "";
    for (size_t i = 0; i < pl.n_tasks; i++) {
        const pl_study_task *t = &pl.tasks[i];
        if (!strcmp(t->name, "train/stories/cot-bank")) st_train = t->state;
        if (!strcmp(t->name, "eval/stories/cot-bank/bank")) st_eval = t->state;
        if (!strcmp(t->name, "train/stories/cot-parcel")) st_plain = t->state, why_plain = t->unavailable ? t->unavailable : "";
        if (!strcmp(t->name, "explain/stories/cot-bank")) st_x = t->state, why_x = t->unavailable ? t->unavailable : "";
        if (!strcmp(t->name, "interp/stories/cot-bank")) st_i = t->state;
    }
    CHECK(st_train == PL_TASK_RAN && st_eval == PL_TASK_RAN, "CoT train %d and eval %d ran", st_train, st_eval);
    CHECK(st_plain == PL_TASK_UNAVAILABLE && strstr(why_plain, "parcel (0 of ") && strstr(why_plain, "rationale"),
          "a corpus without rationales: %d (%s)", st_plain, why_plain);
    CHECK(st_x == PL_TASK_UNAVAILABLE && st_i == PL_TASK_UNAVAILABLE && !strcmp(why_x, PL_STUDY_COT_NA),
          "SHAP and interp marked not applicable for CoT: %d %d (%s)", st_x, st_i, why_x);
    pl_study_plan_free(&pl);
    pl_study_config_free(&c);
    /* predictions carry generated rationales */
    snprintf(path, sizeof path, "%s/runs/stories/cot-bank/eval/bank/predictions.jsonl", out);
    pl_preds ps = {0};
    CHECK_OK(pl_preds_read_jsonl(path, &ps));
    size_t with = 0;
    for (size_t i = 0; i < ps.n; i++) with += ps.v[i].rationale != NULL;
    CHECK(ps.n > 0 && with == ps.n, "predictions with a rationale: %zu of %zu", with, ps.n);
    pl_preds_free(&ps);
    snprintf(path, sizeof path, "%s/runs/stories/cot-bank/train/train.json", out);
    cJSON *tj = read_json(path);
    const cJSON *obj = tj ? cJSON_GetObjectItemCaseSensitive(tj, "objective") : NULL;
    CHECK(cJSON_IsString(obj) && strstr(obj->valuestring, "rationale"), "train.json names the CoT objective");
    cJSON_Delete(tj);
    /* the report lists the CoT row with an F1, and why the rest did not run */
    snprintf(path, sizeof path, "%s/diagnose/diagnosis.json", out);
    cJSON *dj = read_json(path);
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(dj, "matrix"), "rows");
    double f1 = NAN;
    for (const cJSON *r = rows ? rows->child : NULL; r; r = r->next) {
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(r, "train_set");
        const cJSON *cell = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "cells"), "bank");
        const cJSON *fv = cell ? cJSON_GetObjectItemCaseSensitive(cell, "f1") : NULL;
        if (cJSON_IsString(ts) && !strcmp(ts->valuestring, "cot-bank") && cJSON_IsNumber(fv)) f1 = fv->valuedouble;
    }
    CHECK(f1 >= 0 && f1 <= 1, "diagnosis matrix: cot-bank F1 on bank %g", f1);
    int na_row = 0;
    for (const cJSON *r = cJSON_GetObjectItemCaseSensitive(dj, "runs") ? cJSON_GetObjectItemCaseSensitive(dj, "runs")->child : NULL; r; r = r->next) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(r, "ood_error_features");
        const cJSON *why = x ? cJSON_GetObjectItemCaseSensitive(x, "reason") : NULL;
        na_row += cJSON_IsString(why) && !strcmp(why->valuestring, PL_STUDY_COT_NA);
    }
    CHECK(na_row == 1, "the CoT row's SHAP reason in the diagnosis: %d", na_row);
    cJSON_Delete(dj);
    snprintf(path, sizeof path, "%s/report.html", out);
    char *html = NULL;
    size_t len = 0;
    CHECK_OK(pl_read_file(path, &html, &len));
    CHECK(html && strstr(html, "cot-bank") && strstr(html, "the score depends on generated text") &&
              strstr(html, "needs a rationale"),
          "report.html: the CoT row and both reasons");
    free(html);
}

int main(void) {
    T_BEGIN();
    snprintf(tmp_root, sizeof tmp_root, "/tmp/pl_test_cot_XXXXXX");
    if (!mkdtemp(tmp_root)) {
        printf("FAIL cannot make a temporary folder\n");
        return 1;
    }
    pl_set_num_threads(1); /* a 260K-parameter model: threads only add wake-up latency */
    test_synth_rationales();
    const char *shared = pl_test_shared();
    if (shared) {
        char cwd[512] = "";
        if (shared[0] != '/' && !getcwd(cwd, sizeof cwd)) cwd[0] = 0;
        snprintf(model_path, sizeof model_path, "%s%s%s/models/stories260K.gguf", cwd, cwd[0] ? "/" : "", shared);
        test_answer_layout();
        test_cot_train_and_score();
        test_study();
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmp_root);
    return T_END();
}
