/* cli.h — shared pieces of the phishlens command-line front end.
 *
 * Each command lives in src/cli/cmd_<name>.c and exports
 *     int cmd_<name>(int argc, char **argv);
 * where argv[0] is the command name. It returns an exit code (below).
 * The table in main.c maps names to functions and one-line summaries.
 */
#ifndef PL_CLI_H
#define PL_CLI_H

#include "core/core.h"

/* Exit codes, documented in `phishlens help`. */
enum {
    EXIT_OK_ = 0,
    EXIT_FAILURE_ = 1, /* the operation failed (message on stderr) */
    EXIT_USAGE = 2,    /* bad command line */
    EXIT_INPUT = 3,    /* bad input file (format error, names file and offset) */
    EXIT_IO = 4,       /* I/O error */
    EXIT_NUMERIC = 5   /* numeric failure (NaN/Inf) */
};

/* Print "phishlens: error: <msg>" and map a status to an exit code. */
int cli_fail(pl_status st);
/* Print a usage error and return EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse helpers: return 0 and print a usage error on failure. */
int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
int cli_parse_double(const char *cmd, const char *opt, const char *s, double *out);

/* Global flags set by main before dispatch. */
extern int cli_quiet;

/* Commands (one file each). */
int cmd_data(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_interp(int argc, char **argv);
int cmd_data_import(int argc, char **argv);
int cmd_explain(int argc, char **argv);

/* Model options shared by logits/generate (cmd_logits.c). */
#define CLI_MAX_LORA 8
typedef struct {
    const char *model;
    const char *lora[CLI_MAX_LORA];
    int n_lora, exact_matmul, exact_gelu, bf16;
} cli_model_args;
struct pl_model;
/* 1: argv[*i] was a model option (consumed, *i advanced); 0: not one;
 * -1: usage error already printed. */
int cli_model_opt(cli_model_args *a, const char *cmd, int argc, char **argv, int *i);
pl_status cli_model_load(const cli_model_args *a, struct pl_model **out);
/* "1 2 3" (spaces or commas) -> malloc'd ids. */
pl_status cli_parse_ids(const char *s, int32_t **ids, int *n);
/* Tokenizer helpers (cmd_generate_text.c): the model file's tokenizer. */
struct pl_tokenizer;
pl_status cli_tok_open(const char *model_path, struct pl_tokenizer **out);
void cli_tok_free(struct pl_tokenizer *t);
/* Encode with the model's special tokens (BOS) into malloc'd ids. */
pl_status cli_tok_encode(const struct pl_tokenizer *t, const char *text, int32_t **ids, int *n);
/* Append the text of ids (leading space kept) to out. */
pl_status cli_tok_piece(const struct pl_tokenizer *t, const int32_t *ids, int n, pl_buf *out);
int cmd_tokenize(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);
int cmd_study(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_train(int argc, char **argv);
/* `eval audit` (cmd_eval_audit.c), dispatched by cmd_eval. */
int cmd_eval_audit(int argc, char **argv);
extern const char cmd_eval_audit_usage[];


/* data subcommands: corpus tools (cmd_data_corpus.c) */
int cmd_data_dedup(int argc, char **argv);
int cmd_data_leakage(int argc, char **argv);
int cmd_data_profile(int argc, char **argv);
int cmd_data_split(int argc, char **argv);
int cmd_data_audit(int argc, char **argv);
int cmd_data_synth(int argc, char **argv);

/* interp subcommands that run the model (cmd_interp_model.c) */
int cli_interp_cache_build(int argc, char **argv);
int cli_interp_lens(int argc, char **argv);
int cli_interp_patch(int argc, char **argv);
int cli_interp_dla(int argc, char **argv);
int cli_interp_attn(int argc, char **argv);
int cli_interp_ablate(int argc, char **argv);
#endif
