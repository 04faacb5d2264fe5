/* ban - the command-line tool of ban.h.

   ban COMMAND [MODEL.ban] [OPTIONS]      ban help [COMMAND]      ban COMMAND --help
   ban --version

   Arrays travel as NumPy .npy files so that research code can call the library without
   writing C. The commands are the table of examples/cli.h (CLI_COMMANDS), each defined in
   its examples/cmd_*.c file with its usage; this file finds the one asked for, parses its
   options and runs it. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "store.h"

#define CLI_ENTRY(name) &cli_##name,
static const cli_command *const commands[] = {CLI_COMMANDS(CLI_ENTRY)};
#undef CLI_ENTRY
#define N_COMMANDS ((int)(sizeof commands / sizeof commands[0]))

/* the first word of a command's name ("features" of "features import") is word */
static int in_group(const cli_command *c, const char *word)
{
    const size_t n = strlen(word);
    return !strncmp(c->name, word, n) && (c->name[n] == 0 || c->name[n] == ' ');
}

/* the command argv names (one word, or two for a group), or NULL; *words: how many it took */
static const cli_command *find_command(int argc, char **argv, int *words)
{
    for (int i = 0; i < N_COMMANDS; i++) {
        const char *name = commands[i]->name, *space = strchr(name, ' ');
        if (!space && !strcmp(argv[1], name)) return *words = 1, commands[i];
        if (space && argc > 2 && in_group(commands[i], argv[1]) && !strcmp(space + 1, argv[2]))
            return *words = 2, commands[i];
    }
    return NULL;
}

static int is_help(const char *s) { return !strcmp(s, "--help") || !strcmp(s, "-h"); }

static void overview(FILE *f)
{
    fprintf(f, "ban %s - Bilinear Attention Networks (ban.h)\n\n"
               "usage: ban COMMAND [MODEL.ban] [OPTIONS]\n"
               "       ban COMMAND --help, ban help COMMAND   its usage, options with their defaults, an example\n"
               "       ban --version                          versions, and the kernels of this machine\n\n"
               "commands:\n", BAN_VERSION);
    for (int i = 0; i < N_COMMANDS; i++) {
        const char *about = commands[i]->about, *nl = strchr(about, '\n');
        fprintf(f, "  %-17s %.*s\n", commands[i]->name, nl ? (int)(nl - about) : (int)strlen(about), about);
    }
}

/* every command of a group (or the one command) named by word */
static int help_for(const char *word, const char *sub)
{
    int shown = 0;
    for (int i = 0; i < N_COMMANDS; i++) {
        const char *space = strchr(commands[i]->name, ' ');
        if (!in_group(commands[i], word) || (sub && (!space || strcmp(space + 1, sub)))) continue;
        if (shown++) fputc('\n', stdout);
        cli_help(stdout, commands[i]);
    }
    if (!shown) return cli_usage(NULL, "unknown command '%s%s%s'", word, sub ? " " : "", sub ? sub : "");
    return CLI_OK;
}

/* ---- ban --version: the library, the formats, the kernels of this machine ------------------- */

/* ban.h's kernels, best first, and the level BAN_SIMD caps them at (ban.h: ban__simd_cap) */
static const struct {
    const char *id, *name;
    int level;
} kernels[] = {{"avx512", "AVX-512", 2}, {"avx2", "AVX2+FMA", 1}, {"c", "plain C", 0}};

static int version(void)
{
    const char *have = ban_kernels_available(), *cap = getenv("BAN_SIMD"), *used = NULL;
    if (cap && !*cap) cap = NULL;
    const int level = cap && !ban_simd_warning() ? (!strcmp(cap, "none") ? 0 : !strcmp(cap, "avx2") ? 1 : 2) : 2;
    char available[128] = "";
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++) {
        const size_t n = strlen(kernels[i].id);
        const char *at = strstr(have, kernels[i].id);
        if (!at || (at[n] != ' ' && at[n] != 0)) continue;
        snprintf(available + strlen(available), sizeof available - strlen(available), "%s%s", available[0] ? ", " : "",
                 kernels[i].name);
        if (!used && kernels[i].level <= level) used = kernels[i].name; /* what a context picks */
    }
    printf("ban %s (ban.h %s)\n", BAN_VERSION, BAN_VERSION);
    printf("model files:     .ban format version %d (tools/ban_export.py writes them)\n", BAN_FILE_VERSION);
    printf("feature stores:  version %d (ban features import writes them)\n", STORE_VERSION);
    printf("kernels:         %s on this machine; %s used for models in panels%s%s%s\n", available,
           used ? used : "plain C", cap ? " (BAN_SIMD=" : "", cap ? cap : "", cap ? ")" : "");
    return CLI_OK;
}

int main(int argc, char **argv)
{
    if (ban_simd_warning()) cli_warn("%s (BAN_SIMD=%s)", ban_simd_warning(), getenv("BAN_SIMD"));
    if (argc < 2) return overview(stderr), CLI_USAGE;
    if (!strcmp(argv[1], "--version")) return version();
    if (!strcmp(argv[1], "help") || is_help(argv[1])) {
        if (argc > 2 && !strcmp(argv[1], "help")) return help_for(argv[2], argc > 3 ? argv[3] : NULL);
        return overview(stdout), CLI_OK;
    }
    int words = 0;
    const cli_command *cmd = find_command(argc, argv, &words);
    if (!cmd) {
        for (int i = 0; i < N_COMMANDS; i++)
            if (in_group(commands[i], argv[1])) { /* a group without (or with an unknown) subcommand */
                if (argc > 2 && is_help(argv[2])) return help_for(argv[1], NULL);
                char subs[256] = "";
                for (int k = 0; k < N_COMMANDS; k++)
                    if (in_group(commands[k], argv[1]))
                        snprintf(subs + strlen(subs), sizeof subs - strlen(subs), "%s%s", subs[0] ? " or " : "",
                                 strchr(commands[k]->name, ' ') + 1);
                if (argc > 2) fprintf(stderr, "ban: unknown subcommand 'ban %s %s': %s", argv[1], argv[2], subs);
                else fprintf(stderr, "ban: 'ban %s' needs a subcommand: %s", argv[1], subs);
                fprintf(stderr, " (see 'ban help %s')\n", argv[1]);
                return CLI_USAGE;
            }
        return cli_usage(NULL, "unknown command '%s'", argv[1]);
    }
    for (int i = 1 + words; i < argc; i++)
        if (is_help(argv[i])) return cli_help(stdout, cmd), CLI_OK;
    cli_args a;
    int rc = cli_parse(cmd, argc, argv, 1 + words, &a);
    if (rc == CLI_OK) rc = cmd->run(&a);
    cli_args_free(&a);
    return rc;
}
