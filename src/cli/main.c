/* main.c — `phishlens <command> [options]`: dispatch, help, version, exit codes. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_quiet;

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
    const char *usage;
} command;

static int cmd_version(int argc, char **argv) {
    (void)argc;
    (void)argv;
    printf("phishlens %s\n", PL_VERSION);
    return 0;
}

static const command commands[] = {
    {"version", cmd_version, "print the version", "phishlens version\n"},
    {"data", cmd_data, "corpus tools: import, dedup, leakage, profile, split, audit, synth",
     "phishlens data <subcommand> [options]   (phishlens data with no subcommand lists them)\n"},
    {"eval", cmd_eval, "evaluation from predictions: metrics, compare, calibrate, matrix",
     "phishlens eval <subcommand> [options]   (phishlens eval with no subcommand lists them)\n"},
    {"logits", cmd_logits, "run a model over token ids: logits to a file or top-5 per position",
     "phishlens logits -m MODEL [--lora FILE[:SCALE]]... (--ids \"1 2 3\" | -p TEXT) [-o OUT.f32] [--exact-matmul] [--exact-gelu]\n"
     "  -o writes little-endian float32 [n_tokens x n_vocab]. See docs/engine.md.\n"},
    {"generate", cmd_generate, "continue a prompt (greedy or sampled)",
     "phishlens generate -m MODEL [--lora FILE[:SCALE]]... (-p TEXT | --ids \"1 2 3\") [-n N] [--temp T] [--seed S]\n"
     "  Greedy at T = 0. See docs/engine.md.\n"},
    {"tokenize", cmd_tokenize, "text on stdin -> token ids (tokenizer.json, directory or .gguf)",
     "phishlens tokenize -t TOKENIZER [--add-special] [--parse-special] [--jsonl] | --decode [--render-special]\n"
     "  stdin is one text (ids printed space-separated on one line); with --jsonl each line is\n"
     "  {\"text\": ...} and each output line a JSON array of ids. See docs/tokenizers.md.\n"},
    {"tokenizer", cmd_tokenizer, "tokenizer tools: train a byte-level BPE",
     "phishlens tokenizer train --vocab-size N --input FILE... -o tokenizer.json [--min-frequency K]\n"
     "  FILE is plain text or records.jsonl (the \"body\" of each record, else \"text\"). tokenizer_config.json\n"
     "  (the special tokens' roles) is written beside the output. See docs/tokenizers.md.\n"},
    {"study", cmd_study, "run a study grid: data, train, eval, explain, interp, diagnose, report",
     "phishlens study run STUDY.json -o DIR [--dry-run] [--force STAGE] | study check STUDY.json\n"
     "  See docs/study.md.\n"},
    {"model", cmd_model, "model files: info (GGUF or HF directory)",
     "phishlens model info FILE.gguf|HF_DIR [--json]\n"},
    {"train", cmd_train, "fine-tune a model (LoRA or head) on records.jsonl",
     "phishlens train -m MODEL --train FILE.jsonl [--val FILE] -o RUNDIR [--objective label|head|lm]\n"
     "  [--lora-rank R] [--lora-alpha A] [--lora-dropout P] [--targets q,v,...|all] [--full-vocab] [--full]\n"
     "  [--lr LR] [--weight-decay WD] [--clip C] [--schedule cosine|linear|constant] [--warmup STEPS]\n"
     "  [--epochs N] [--batch B] [--accum K] [--max-len T] [--seed S] [--threads N]\n"
     "  [--eval-every N] [--ckpt-every N] [--patience N] [--no-checkpointing] [--resume]\n"
     "  [--keep-activations MB] [--precision f32|bf16|f64] [--text-only]\n"
     "  RUNDIR gets adapter.gguf, peft/ (model.safetensors + model.gguf with --full), train_log.jsonl,\n"
     "  config.json, checkpoints/. --text-only (with --objective lm): continued pre-training on the\n"
     "  records' email text, labels ignored.\n"
     "  See docs/training.md.\n"},
    {"interp", cmd_interp, "interpretability on activation caches: cache, probe, transfer, tuned-fit",
     "phishlens interp <subcommand> [options]   (phishlens interp with no subcommand lists them)\n"},
    {"explain", cmd_explain, "SHAP attributions of a classifier's score for emails; global aggregation",
     "phishlens explain -m MODEL --input FILE.jsonl [--method partition|permutation|kernel|exact] [--features word|token|sentence|field] -o OUT.json\n"
     "phishlens explain global RESULT.json... [--by class|source|correct] [--compare OTHER.json] [--profile PROFILE.json] -o GLOBAL.json\n"
     "  phishlens explain --help for all options. See docs/explain.md.\n"},
};
static const size_t n_commands = sizeof commands / sizeof *commands;

static void print_help(void) {
    printf("phishlens %s — why fine-tuned LLM phishing detectors fail to generalize\n\n", PL_VERSION);
    printf("usage: phishlens [--quiet] <command> [options]\n"
           "       phishlens help [command]\n"
           "       phishlens --version\n\ncommands:\n");
    for (size_t i = 0; i < n_commands; i++) printf("  %-10s %s\n", commands[i].name, commands[i].summary);
    printf("\nexit codes:\n"
           "  0  success\n"
           "  1  the operation failed (the message says why)\n"
           "  2  bad command line\n"
           "  3  bad input file (the message names file, field and offset)\n"
           "  4  I/O error\n"
           "  5  numeric failure (NaN/Inf)\n");
}

int cli_fail(pl_status st) {
    fprintf(stderr, "phishlens: error: %s\n", pl_errmsg()[0] ? pl_errmsg() : pl_status_str(st));
    switch (st) {
    case PL_OK: return EXIT_OK_;
    case PL_ERR_INVALID: return EXIT_USAGE;
    case PL_ERR_FORMAT:
    case PL_ERR_UNSUPPORTED:
    case PL_ERR_RANGE:
    case PL_ERR_NOT_FOUND: return EXIT_INPUT;
    case PL_ERR_IO: return EXIT_IO;
    case PL_ERR_NUMERIC: return EXIT_NUMERIC;
    default: return EXIT_FAILURE_;
    }
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "phishlens %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see `phishlens help %s`)\n", cmd);
    return EXIT_USAGE;
}

int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || v < lo || v > hi) {
        cli_usage_error(cmd, "%s expects an integer in [%ld, %ld], got '%s'", opt, lo, hi, s ? s : "(nothing)");
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_double(const char *cmd, const char *opt, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || errno || end == s || *end) {
        cli_usage_error(cmd, "%s expects a number, got '%s'", opt, s ? s : "(nothing)");
        return 0;
    }
    *out = v;
    return 1;
}

static const command *find(const char *name) {
    for (size_t i = 0; i < n_commands; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

/* Training runs OpenBLAS products (their own thread pool) between OpenMP
 * regions; OpenMP's default spin-wait of idle threads then takes the cores
 * the BLAS threads need. Measured on SmolLM2 LoRA (2 threads, quiet 2-core
 * machine): 17.8 tok/s as is, 55 tok/s with GOMP_SPINCOUNT=1000, while
 * decode loses ~10 % with short spins and 65 % with a passive policy. So
 * `train` and `study` (training-bound) re-run themselves once with a short
 * spin count unless the user chose a wait policy. libgomp reads these
 * variables only at start-up, hence the exec. */
static void tune_openmp_for_training(char **argv, const char *cmd) {
#ifdef _OPENMP
    if (strcmp(cmd, "train") && strcmp(cmd, "study")) return;
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("GOMP_SPINCOUNT", "1000", 1) != 0) return;
    execv("/proc/self/exe", argv); /* returns only on failure: carry on as is */
#else
    (void)argv;
    (void)cmd;
#endif
}

int main(int argc, char **argv) {
    int i = 1;
    for (int k = 1; k < argc; k++)
        if (argv[k][0] != '-') {
            tune_openmp_for_training(argv, argv[k]);
            break;
        }
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
            printf("phishlens %s\n", PL_VERSION);
            return 0;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            print_help();
            return 0;
        } else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
            cli_quiet = 1;
            pl_progress_set_quiet(1);
        } else {
            fprintf(stderr, "phishlens: unknown option '%s' (see `phishlens help`)\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        print_help();
        return EXIT_USAGE;
    }
    if (!strcmp(argv[i], "help")) {
        if (i + 1 < argc) {
            const command *c = find(argv[i + 1]);
            if (!c) {
                fprintf(stderr, "phishlens: no command '%s'\n", argv[i + 1]);
                return EXIT_USAGE;
            }
            printf("%s", c->usage);
            return 0;
        }
        print_help();
        return 0;
    }
    const command *c = find(argv[i]);
    if (!c) {
        fprintf(stderr, "phishlens: unknown command '%s' (see `phishlens help`)\n", argv[i]);
        return EXIT_USAGE;
    }
    /* "--help" right after the command name shows its usage. */
    if (i + 1 < argc && (!strcmp(argv[i + 1], "--help") || !strcmp(argv[i + 1], "-h"))) {
        printf("%s", c->usage);
        return 0;
    }
    return c->fn(argc - i, argv + i);
}
