/* cli.h - what the subcommands of build/ban share: the command table, option parsing,
   messages, models, questions and outputs.

   A subcommand is a cli_command (in its examples/cmd_*.c file): its name, its usage and
   options written once (the parser, `ban CMD --help`, `ban help CMD` and the usage errors
   all read them), an example, and the function that runs it. CLI_COMMANDS lists them in the
   order `ban help` shows them. A new subcommand: its cli_command and function in a cmd_*.c
   file, and its name in CLI_COMMANDS. */
#ifndef BAN_CLI_H
#define BAN_CLI_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ban.h"
#include "util.h"

/* exit statuses: 0 success, 1 a runtime failure (model, input, i/o), 2 a usage error */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };
/* how a command takes a model: as its first argument or --model (or neither) */
enum { CLI_NO_MODEL = 0, CLI_MODEL, CLI_MODEL_OPTIONAL };
#define CLI_MAX_OPTIONS 32

typedef struct cli_option {
    const char *name;              /* "--batch" */
    const char *arg;               /* what its value is ("N"), or NULL for a flag */
    int required;
    const char *help;              /* what it does, and its default; '\n' starts a new line */
} cli_option;

typedef struct cli_args cli_args;

typedef struct cli_command {
    const char *name;              /* "vqa"; "features import" for a command of a group */
    int (*run)(const cli_args *a);
    int model;                     /* CLI_NO_MODEL, CLI_MODEL or CLI_MODEL_OPTIONAL */
    const char *usage;             /* what follows "ban NAME MODEL.ban" in the synopsis */
    const char *about;             /* what it does; the first line is its summary in `ban help` */
    const cli_option *options;     /* up to CLI_MAX_OPTIONS, then a NULL name */
    int max_args;                  /* arguments after the model (-1: any number) */
    const char *example;           /* command lines, one a line */
} cli_command;

struct cli_args {
    const cli_command *cmd;
    const char *model;             /* the model's path (NULL when an optional one is not given) */
    const char *value[CLI_MAX_OPTIONS]; /* per option: its value ("1" for a flag), or NULL */
    const char **arg;              /* the arguments after the model */
    int n_args;
};

#define CLI_COMMANDS(X) \
    X(info) X(quantize) X(tokenize) X(run) X(encode) X(ask) X(easyvqa_eval) X(demo) X(vqa) X(ground) \
    X(features_import) X(features_info) X(serve) X(bench)
#define CLI_DECLARE(name) extern const cli_command cli_##name;
CLI_COMMANDS(CLI_DECLARE)
#undef CLI_DECLARE

/* ---- options and messages ------------------------------------------------------------------ */

/* argv[first..argc) by cmd's options into *a (a->arg points into argv: malloc'd, cli_args_free);
   CLI_OK, or CLI_USAGE once the message naming the missing, unknown or conflicting option
   is printed. */
int cli_parse(const cli_command *cmd, int argc, char **argv, int first, cli_args *a);
void cli_args_free(cli_args *a);
const char *cli_get(const cli_args *a, const char *name);   /* the value, or NULL when not given */
int cli_flag(const cli_args *a, const char *name);
/* an option's whole number in [lo, hi] into *out (unchanged when the option is absent):
   CLI_OK, or CLI_USAGE with the message printed */
int cli_long(const cli_args *a, const char *name, long lo, long hi, long *out);
/* "ban: MESSAGE (see 'ban CMD --help')" on stderr; returns CLI_USAGE */
int cli_usage(const cli_args *a, const char *fmt, ...) UTIL_PRINTF(2, 3);
int cli_error(const char *fmt, ...) UTIL_PRINTF(1, 2);    /* "ban: error: ..."; returns CLI_FAIL */
void cli_warn(const char *fmt, ...) UTIL_PRINTF(1, 2);    /* "ban: warning: ..." */
void cli_help(FILE *f, const cli_command *cmd);           /* usage, options, example */

/* ---- models, questions, tokens ------------------------------------------------------------- */

/* a model, or NULL once the reason is printed (with the way to convert a PyTorch checkpoint) */
ban_model *cli_load_model(const char *path);

/* The unknown words of a command's questions, for its warnings (the first few questions
   named; cli_words_report counts the rest). */
typedef struct cli_words {
    size_t questions, shown;
} cli_words;

/* The tokens of one question as every command reads it: ids[0..*n) of at most max (the rest
   dropped, as the model's trained length drops them), by ban.h's one policy
   (ban_tokenize_info): an empty question and a question with no word in the model's
   vocabulary are refused (-1, a message in err naming where); words not in the vocabulary
   are read as the unknown word, with a warning on stderr giving their count and the words. */
int cli_question(ban_ctx *ctx, const char *text, const char *where, int32_t *ids, int max, int *n, cli_words *w,
                 char *err, size_t errlen);
void cli_words_report(const cli_words *w);

/* dst (L) = the n tokens of src, then the padding id; src may be dst */
void cli_pad_tokens(int32_t *dst, const int32_t *src, int n, int L, int32_t padding_id);

/* ban_forward's message with a batch position at its start ("image 3, box 2: ...", "example 5
   has ...") named by name(data, kind, position) ("image 458752"); otherwise prefix, then it */
typedef void (*cli_position_name)(void *data, const char *kind, int position, char *out, size_t len);
int cli_forward_error(const char *msg, cli_position_name name, void *data, const char *prefix);

/* ---- outputs ------------------------------------------------------------------------------ */

/* util_out_open / _commit with the reason printed: CLI_OK or CLI_FAIL */
int cli_open_output(util_out *o, const char *path);
int cli_commit_output(util_out *o);
/* n bytes of s as a JSON string, quotes and control characters escaped */
void cli_json_string(FILE *f, const char *s, size_t n);
void cli_json_cstr(FILE *f, const char *s); /* the same for a NUL-terminated string */

/* ---- the benchmark's tools (examples/cmd_bench.c) --------------------------------------------- */
float rand_uniform(void);                 /* a fixed pseudo-random sequence in [-1, 1) */
double median(double *x, int n);          /* sorts x */
long peak_rss_mb(void);
/* a .ban file of that configuration with random weights (words w0, w1, ...), in dtype "f32",
   "bf16" or "int8" (examples/banwrite.h) */
int write_random_model(const char *path, const ban_config *c, int panels, const char *dtype, size_t *file_size);
/* ban bench --preset paper-flickr (examples/cmd_bench_flickr.c): runs = sentences timed (0: 200) */
int bench_flickr(int threads, int runs, int as_json, const char *model_path, int panels, const char *dtype);

#endif
