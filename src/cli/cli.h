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
int cmd_tokenize(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);
int cmd_study(int argc, char **argv);


/* data subcommands: corpus tools (cmd_data_corpus.c) */
int cmd_data_dedup(int argc, char **argv);
int cmd_data_leakage(int argc, char **argv);
int cmd_data_profile(int argc, char **argv);
int cmd_data_split(int argc, char **argv);
int cmd_data_audit(int argc, char **argv);
int cmd_data_synth(int argc, char **argv);

#endif
