/* cmd_data.c — `phishlens data <subcommand>`: the corpus tools. Each
 * subcommand lives in its own cmd_data_<name>.c; this file only dispatches. */
#include "cli.h"

#include <string.h>

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} subcommand;

static const subcommand subs[] = {
    {"import", cmd_data_import, "read corpora into normalized records.jsonl"},
    {"dedup", cmd_data_dedup, "drop exact and near-duplicate emails (MinHash/LSH)"},
    {"leakage", cmd_data_leakage, "count test emails duplicated in train"},
    {"profile", cmd_data_profile, "style profile per source, divergence and separability"},
    {"split", cmd_data_split, "grouped, stratified splits and training-set compositions"},
    {"audit", cmd_data_audit, "label-noise audit from out-of-fold predictions"},
    {"synth", cmd_data_synth, "generate the synthetic corpus with a planted shortcut"},
    {NULL, NULL, NULL}
};

static void usage(FILE *fp) {
    fprintf(fp, "usage: phishlens data <subcommand> [options]\n\nsubcommands:\n");
    for (const subcommand *s = subs; s->name; s++) fprintf(fp, "  %-10s %s\n", s->name, s->summary);
    fprintf(fp, "\n`phishlens data <subcommand> --help` for its options.\n");
}

int cmd_data(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    for (const subcommand *s = subs; s->name; s++)
        if (!strcmp(s->name, argv[1])) return s->fn(argc - 1, argv + 1);
    fprintf(stderr, "phishlens data: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
