/* cmd_train.c — `phishlens train`: LoRA (or head) fine-tuning of a model on
 * records.jsonl, with validation, checkpoints and exact resume
 * (docs/training.md).
 *
 * Records become token ids through the classifier view of src/prompt
 * (prefix + email + suffix, ending at the answer position; the label token
 * follows), so training sees exactly what eval and SHAP score. The LM
 * objective appends the label word (after the record's meta.rationale when
 * present) and scores those tokens; unlabeled records (label -1) are plain
 * text for causal-LM training, and --text-only makes every record's email
 * text (no prompt, label ignored) a causal-LM example: continued
 * pre-training on a corpus.
 */
#include "cli.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "model/model.h"
#include "prompt/prompt.h"
#include "train/train.h"

typedef struct {
    const char *model, *train, *val, *out;
    pl_tr_config tc;
    pl_loop_opts lo;
    int max_len, threads;
    int text_only;          /* LM objective on every record's email text, labels ignored */
} train_args;

/* All example token buffers of a dataset. */
typedef struct {
    pl_tr_dataset d;
    pl_tokens *ids;
    size_t n_truncated;
} dataset;

static void dataset_free(dataset *s) {
    for (size_t i = 0; s->ids && i < s->d.n; i++) pl_tokens_free(&s->ids[i]);
    free(s->ids);
    free(s->d.ex);
    memset(s, 0, sizeof *s);
}

/* Label words as the prompt module defines them (class 0 legitimate, 1 phishing). */
static const char *label_word(const pl_prompt_spec *spec, int label) {
    if (label == 1) return spec->label_pos ? spec->label_pos : "phishing";
    return spec->label_neg ? spec->label_neg : "legitimate";
}

static pl_status make_dataset(const char *path, const pl_tokenizer *tok, const pl_prompt *pr, const train_args *a,
                              dataset *out) {
    memset(out, 0, sizeof *out);
    pl_records rs = {0};
    pl_status st = pl_records_read_jsonl(path, &rs);
    if (st) return st;
    out->ids = calloc(rs.n ? rs.n : 1, sizeof *out->ids);
    out->d.ex = calloc(rs.n ? rs.n : 1, sizeof *out->d.ex);
    if (!out->ids || !out->d.ex) st = pl_error(PL_ERR_NOMEM, "out of memory");
    int lm = a->tc.objective == PL_OBJ_LM;
    for (size_t i = 0; i < rs.n && !st; i++) {
        const pl_record *r = &rs.v[i];
        if (!lm && r->label != 0 && r->label != 1) {
            st = pl_error(PL_ERR_FORMAT, "%s: record %zu (id '%s'): label %d, the %s objective needs 0 or 1", path, i + 1,
                          r->id, r->label, a->tc.objective == PL_OBJ_HEAD ? "head" : "label");
            break;
        }
        pl_tokens *p = &out->ids[out->d.n];
        pl_tr_example *ex = &out->d.ex[out->d.n];
        size_t cut = 0;
        if (lm && a->text_only) {
            /* continued pre-training: [BOS] + the email as the prompt renders it, every position scored */
            int32_t bos = pl_tokenizer_bos(tok);
            int trunc = 0;
            if (bos >= 0 && pl_tokenizer_add_bos(tok)) st = pl_tokens_push(p, bos);
            if (!st) st = pl_prompt_email_ids(pr, tok, r, p, &trunc);
            cut = (size_t)trunc;
            ex->loss_start = 0;
            ex->label = -1;
        } else if (lm && r->label < 0) {
            /* plain causal-LM text */
            st = pl_tokenizer_encode(tok, r->body, strlen(r->body), PL_TOK_ADD_SPECIAL, p);
            ex->loss_start = 0;
        } else {
            /* prefix + email (truncated to the prompt's max_email_tokens) + suffix */
            pl_tokens email = {0};
            int trunc = 0;
            st = pl_prompt_email_ids(pr, tok, r, &email, &trunc);
            if (!st) st = pl_prompt_full(pr, email.ids, email.n, p);
            cut = (size_t)trunc;
            pl_tokens_free(&email);
            ex->label = r->label;
            if (!st && lm) {
                /* the answer: [rationale "\n"] label word [EOS] (pl_prompt_answer_ids: the
                 * label word starts with the prompt's label token), scored from the answer position */
                size_t plen = p->n;
                const cJSON *m = r->meta ? cJSON_GetObjectItemCaseSensitive(r->meta, "rationale") : NULL;
                const char *rat = cJSON_IsString(m) ? m->valuestring : NULL;
                st = pl_prompt_answer_ids(pr, tok, rat, r->label, p);
                int32_t eos = pl_tokenizer_eos(tok);
                if (!st && eos >= 0) st = pl_tokens_push(p, eos);
                ex->loss_start = (int)plen - 1;
            }
        }
        if (!st && a->max_len > 0 && p->n > (size_t)a->max_len) {
            if (!lm) {
                st = pl_error(PL_ERR_RANGE, "%s: record %zu (id '%s'): the prompt has %zu tokens without the email part "
                              "cut further; raise --max-len above %d", path, i + 1, r->id, p->n, a->max_len);
                break;
            }
            cut += p->n - (size_t)a->max_len;
            p->n = (size_t)a->max_len;
        }
        if (st) break;
        ex->tokens = p->ids;
        ex->n_tokens = (int)p->n;
        if (cut) out->n_truncated++;
        out->d.n++;
    }
    pl_records_free(&rs);
    if (st) dataset_free(out);
    return st;
}

static const char *obj_name(pl_objective o) { return o == PL_OBJ_LABEL ? "label" : o == PL_OBJ_HEAD ? "head" : "lm"; }

static pl_status write_config(const train_args *a, const pl_prompt *pr, const pl_prompt_spec *spec) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return pl_error(PL_ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(j, "model", a->model);
    cJSON_AddStringToObject(j, "train", a->train);
    if (a->val) cJSON_AddStringToObject(j, "val", a->val);
    cJSON_AddStringToObject(j, "objective", obj_name(a->tc.objective));
    cJSON_AddBoolToObject(j, "full", a->tc.full);
    cJSON_AddBoolToObject(j, "text_only", a->text_only);
    cJSON_AddNumberToObject(j, "lora_rank", a->tc.lora_rank);
    cJSON_AddNumberToObject(j, "lora_alpha", a->tc.lora_alpha);
    cJSON_AddNumberToObject(j, "lora_dropout", a->tc.lora_dropout);
    cJSON *tg = cJSON_AddArrayToObject(j, "targets");
    for (int k = 0; k < PL_TGT_COUNT; k++)
        if (a->tc.targets & (1u << k)) cJSON_AddItemToArray(tg, cJSON_CreateString(pl_tr_target_name(k)));
    cJSON *lt = cJSON_AddArrayToObject(j, "label_tokens");
    cJSON_AddItemToArray(lt, cJSON_CreateNumber(a->tc.label_tokens[0]));
    cJSON_AddItemToArray(lt, cJSON_CreateNumber(a->tc.label_tokens[1]));
    cJSON *pj = cJSON_AddObjectToObject(j, "prompt");
    cJSON_AddStringToObject(pj, "layout", pr->chat ? "chat" : "plain");
    if (pr->chat) cJSON_AddStringToObject(pj, "family", pl_chat_family_name(pr->family));
    cJSON_AddStringToObject(pj, "label_word_0", label_word(spec, 0));
    cJSON_AddStringToObject(pj, "label_word_1", label_word(spec, 1));
    cJSON_AddNumberToObject(pj, "max_email_tokens", pr->max_email_tokens);
    cJSON_AddNumberToObject(j, "lr", a->lo.opt.lr);
    cJSON_AddNumberToObject(j, "weight_decay", a->lo.opt.weight_decay);
    cJSON_AddNumberToObject(j, "epochs", a->lo.epochs);
    cJSON_AddNumberToObject(j, "batch", a->lo.batch);
    cJSON_AddNumberToObject(j, "accum", a->lo.accum);
    cJSON_AddNumberToObject(j, "max_len", a->max_len);
    cJSON_AddNumberToObject(j, "warmup", (double)a->lo.opt.warmup);
    cJSON_AddNumberToObject(j, "seed", (double)a->tc.seed);
    cJSON_AddNumberToObject(j, "threads", a->threads);
    cJSON_AddStringToObject(j, "precision", a->tc.precision == PL_PREC_F64 ? "f64" : a->tc.precision == PL_PREC_BF16 ? "bf16" : "f32");
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    if (!s) return pl_error(PL_ERR_NOMEM, "out of memory");
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", a->out);
    pl_status st = pl_write_file_atomic(path, s, strlen(s));
    free(s);
    return st;
}

static int usage(const char *fmt, const char *v) {
    return cli_usage_error("train", fmt, v ? v : "(nothing)");
}

int cmd_train(int argc, char **argv) {
    train_args a;
    memset(&a, 0, sizeof a);
    a.tc = pl_tr_config_default();
    a.lo = pl_loop_opts_default();
    a.lo.opt.lr = 2e-4;
    a.max_len = 512;
    int rank_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        double d;
#define NEED_INT(lo_, hi_) do { if (!cli_parse_int("train", o, v, lo_, hi_, &n)) return EXIT_USAGE; i++; } while (0)
#define NEED_DBL() do { if (!cli_parse_double("train", o, v, &d)) return EXIT_USAGE; i++; } while (0)
        if (!strcmp(o, "-m") || !strcmp(o, "--model")) { if (!v) return usage("%s needs a path", o); a.model = argv[++i]; }
        else if (!strcmp(o, "--train")) { if (!v) return usage("%s needs a file", o); a.train = argv[++i]; }
        else if (!strcmp(o, "--val")) { if (!v) return usage("%s needs a file", o); a.val = argv[++i]; }
        else if (!strcmp(o, "-o") || !strcmp(o, "--output")) { if (!v) return usage("%s needs a directory", o); a.out = argv[++i]; }
        else if (!strcmp(o, "--objective")) {
            if (!v) return usage("%s needs label, head or lm", o);
            if (!strcmp(v, "label")) a.tc.objective = PL_OBJ_LABEL;
            else if (!strcmp(v, "head")) a.tc.objective = PL_OBJ_HEAD;
            else if (!strcmp(v, "lm")) a.tc.objective = PL_OBJ_LM;
            else return usage("--objective expects label, head or lm, got '%s'", v);
            i++;
        } else if (!strcmp(o, "--full-vocab")) a.tc.label_full_vocab = 1;
        else if (!strcmp(o, "--text-only")) a.text_only = 1;
        else if (!strcmp(o, "--lora-rank")) { NEED_INT(0, 4096); a.tc.lora_rank = (int)n; rank_given = 1; }
        else if (!strcmp(o, "--lora-alpha")) { NEED_DBL(); a.tc.lora_alpha = d; }
        else if (!strcmp(o, "--lora-dropout")) { NEED_DBL(); a.tc.lora_dropout = d; }
        else if (!strcmp(o, "--targets")) {
            if (!v) return usage("%s needs a list like q,v", o);
            if (pl_tr_parse_targets(v, &a.tc.targets) != PL_OK) return cli_usage_error("train", "%s", pl_errmsg());
            i++;
        } else if (!strcmp(o, "--full")) {
            a.tc.full = 1;
        } else if (!strcmp(o, "--lr")) { NEED_DBL(); a.lo.opt.lr = d; }
        else if (!strcmp(o, "--weight-decay")) { NEED_DBL(); a.lo.opt.weight_decay = d; }
        else if (!strcmp(o, "--clip")) { NEED_DBL(); a.lo.opt.clip = d; }
        else if (!strcmp(o, "--schedule")) {
            if (!v) return usage("%s needs cosine, linear or constant", o);
            if (!strcmp(v, "cosine")) a.lo.opt.sched = PL_SCHED_COSINE;
            else if (!strcmp(v, "linear")) a.lo.opt.sched = PL_SCHED_LINEAR;
            else if (!strcmp(v, "constant")) a.lo.opt.sched = PL_SCHED_CONSTANT;
            else return usage("--schedule expects cosine, linear or constant, got '%s'", v);
            i++;
        } else if (!strcmp(o, "--epochs")) { NEED_INT(1, 100000); a.lo.epochs = (int)n; }
        else if (!strcmp(o, "--batch")) { NEED_INT(1, 1 << 20); a.lo.batch = (int)n; }
        else if (!strcmp(o, "--accum")) { NEED_INT(1, 1 << 20); a.lo.accum = (int)n; }
        else if (!strcmp(o, "--max-len")) { NEED_INT(8, 1 << 20); a.max_len = (int)n; }
        else if (!strcmp(o, "--warmup")) { NEED_INT(0, 1L << 40); a.lo.opt.warmup = n; }
        else if (!strcmp(o, "--seed")) { NEED_INT(0, 1L << 62); a.tc.seed = (uint64_t)n; }
        else if (!strcmp(o, "--threads")) { NEED_INT(1, 1024); a.threads = (int)n; }
        else if (!strcmp(o, "--eval-every")) { NEED_INT(0, 1L << 40); a.lo.eval_every = (int)n; }
        else if (!strcmp(o, "--ckpt-every")) { NEED_INT(0, 1L << 40); a.lo.ckpt_every = (int)n; }
        else if (!strcmp(o, "--patience")) { NEED_INT(0, 1L << 20); a.lo.patience = (int)n; }
        else if (!strcmp(o, "--no-checkpointing")) a.tc.checkpoint = 0;
        else if (!strcmp(o, "--keep-activations")) { NEED_INT(0, 1L << 24); a.tc.keep_bytes = (size_t)n << 20; }
        else if (!strcmp(o, "--precision")) {
            if (!v) return usage("%s needs f32, bf16 or f64", o);
            pl_precision pr;
            if (pl_tr_parse_precision(v, &pr) != PL_OK) return usage("--precision expects f32, bf16 or f64, got '%s'", v);
            a.tc.precision = pr;
            i++;
        }
        else if (!strcmp(o, "--resume")) a.lo.resume = 1;
        else return usage("unknown option '%s'", o);
#undef NEED_INT
#undef NEED_DBL
    }
    if (!a.model || !a.train || !a.out) return cli_usage_error("train", "-m MODEL, --train FILE and -o RUNDIR are required");
    if (a.text_only && a.tc.objective != PL_OBJ_LM) return cli_usage_error("train", "--text-only needs --objective lm");
    if (a.tc.full && !rank_given) a.tc.lora_rank = 0; /* --full alone: no adapter on top */
    if (a.threads > 0) pl_set_num_threads(a.threads);
    a.lo.run_dir = a.out;
    a.lo.base_model = a.model;
    a.lo.quiet = cli_quiet;

    pl_model *m = NULL;
    pl_tokenizer *tok = NULL;
    dataset tr = {0}, va = {0};
    pl_trainer *t = NULL;
    pl_prompt pr;
    memset(&pr, 0, sizeof pr);
    pl_prompt_spec spec = pl_prompt_spec_default();
    pl_status st = pl_model_load(a.model, NULL, &m);
    if (!st) st = pl_tokenizer_load(a.model, &tok);
    if (!st) st = pl_prompt_init(&pr, tok, &spec);
    if (!st) {
        /* the email part gets what --max-len leaves (LM: 64 tokens kept for the answer) */
        long room = a.text_only ? (long)a.max_len - 1
                                : (long)a.max_len - (long)pr.prefix.n - (long)pr.suffix.n - (a.tc.objective == PL_OBJ_LM ? 64 : 0);
        if (room < 1)
            st = pl_error(PL_ERR_RANGE, "train: --max-len %d leaves no room for the email (the prompt alone has %zu tokens)",
                          a.max_len, pr.prefix.n + pr.suffix.n);
        else pr.max_email_tokens = (int)room;
    }
    a.tc.label_tokens[0] = pr.label_neg_id;
    a.tc.label_tokens[1] = pr.label_pos_id;
    if (!st) st = make_dataset(a.train, tok, &pr, &a, &tr);
    if (!st && a.val) st = make_dataset(a.val, tok, &pr, &a, &va);
    if (!st && (tr.n_truncated || va.n_truncated))
        fprintf(stderr, "train: %zu training and %zu validation examples truncated to --max-len %d tokens\n",
                tr.n_truncated, va.n_truncated, a.max_len);
    if (!st) st = pl_mkdirs(a.out);
    if (!st) st = write_config(&a, &pr, &spec);
    if (!st) st = pl_trainer_new(m, &a.tc, &t);
    pl_loop_result res;
    if (!st) st = pl_train_loop(t, &tr.d, a.val ? &va.d : NULL, &a.lo, &res);
    if (!st) {
        if (res.resumed_from >= 0) fprintf(stderr, "train: resumed from step %d\n", res.resumed_from);
        printf("trained %lld steps: last loss %.4f", (long long)res.steps, res.last_loss);
        if (isfinite(res.val_loss)) printf(", val loss %.4f", res.val_loss);
        if (isfinite(res.val_f1)) printf(", val F1 %.3f", res.val_f1);
        if (res.early_stopped) printf(" (early stop)");
        if (a.tc.full) {
            char g[4096];
            snprintf(g, sizeof g, "%s/model.gguf", a.out);
            FILE *f = fopen(g, "rb");
            if (f) fclose(f);
            printf("\n-> %s/model.safetensors%s%s\n", a.out, f ? ", model.gguf" : "",
                   a.tc.lora_rank ? " (+ adapter.gguf, peft/)" : "");
        }
        else printf("\n-> %s/adapter.gguf, %s/peft/\n", a.out, a.out);
    }
    pl_trainer_free(t);
    dataset_free(&tr);
    dataset_free(&va);
    pl_prompt_free(&pr);
    pl_tokenizer_free(tok);
    pl_model_free(m);
    return st ? cli_fail(st) : 0;
}
