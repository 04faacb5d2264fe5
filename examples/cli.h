/* cli.h - what the subcommands of build/ban share: option parsing and messages. */
#ifndef BAN_CLI_H
#define BAN_CLI_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ban.h"

/* exit statuses: 0 success, 1 a runtime failure (model, input, i/o), 2 a usage error */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

typedef struct cli_opt {
    const char *name;   /* "--features" */
    int takes_value;    /* 0: a flag */
    const char *value;  /* set by cli_parse; a flag is set to "1" */
} cli_opt;

/* Parse argv[first..argc) into opts (terminated by a NULL name) and at most max_pos
   positional arguments. Prints a message and returns -1 on an unknown option. */
int cli_parse(int argc, char **argv, int first, cli_opt *opts, const char **pos, int max_pos, int *n_pos);
const char *cli_get(const cli_opt *opts, const char *name);
/* a whole number in [lo, hi]; prints a message and returns 0 when it is not */
int cli_int(const char *text, const char *what, long lo, long hi, long *out);
int cli_error(const char *fmt, ...);  /* "ban: error: ..." on stderr; returns CLI_FAIL */
/* a model, or NULL once the reason is printed */
ban_model *cli_load_model(const char *path);
/* A file written atomically: cli_atomic_open makes a temporary file beside path (named into
   tmp); cli_atomic_close flushes, fsyncs and renames it to path, or removes it and reports
   why (returns CLI_FAIL). Readers see the old file or the new one, never half of one. */
FILE *cli_atomic_open(const char *path, char *tmp, size_t tmplen);
int cli_atomic_close(FILE *f, const char *tmp, const char *path);
/* n bytes of s as a JSON string, quotes and control characters escaped */
void cli_json_string(FILE *f, const char *s, size_t n);
void cli_json_cstr(FILE *f, const char *s); /* the same for a NUL-terminated string */
int cli_usage(const char *fmt, ...);  /* "ban: ..." on stderr; returns CLI_USAGE */

/* the benchmark's tools (examples/cmd_bench.c) */
double now_ms(void);                      /* a monotonic clock */
float rand_uniform(void);                 /* a fixed pseudo-random sequence in [-1, 1) */
double median(double *x, int n);          /* sorts x */
long peak_rss_mb(void);
/* a .ban file of that configuration with random weights (words w0, w1, ...) */
int write_random_model(const char *path, const ban_config *c, int panels, size_t *file_size);
/* ban bench --preset paper-flickr (examples/cmd_bench_flickr.c): runs = sentences timed (0: 200) */
int bench_flickr(int threads, int runs, int as_json, const char *model_path, int panels);

/* subcommands */
int cmd_info(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);

#endif
