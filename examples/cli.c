/* cli.c - the helpers of examples/cli.h: option parsing, messages, help, models, questions. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>

#include "cli.h"

/* ---- messages ---------------------------------------------------------------------------------- */

/* "ban: PREFIX..." and a newline on stderr */
static void cli__say(const char *prefix, const char *fmt, va_list ap)
{
    fprintf(stderr, "ban: %s", prefix);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli__say("error: ", fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli__say("warning: ", fmt, ap);
    va_end(ap);
}

int cli_usage(const cli_args *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ban: ", stderr);
    vfprintf(stderr, fmt, ap);
    if (a && a->cmd) fprintf(stderr, " (see 'ban %s --help')\n", a->cmd->name);
    else fputs(" (see 'ban help')\n", stderr);
    va_end(ap);
    return CLI_USAGE;
}

/* ---- options -------------------------------------------------------------------------------------- */

static int cli__option(const cli_command *cmd, const char *name)
{
    for (int i = 0; cmd->options && cmd->options[i].name; i++)
        if (!strcmp(cmd->options[i].name, name)) return i;
    return -1;
}

/* "--features STORE" */
static void cli__option_text(const cli_option *o, char *out, size_t len)
{
    snprintf(out, len, "%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
}

int cli_parse(const cli_command *cmd, int argc, char **argv, int first, cli_args *a)
{
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->arg = (const char **)malloc(sizeof(char *) * (size_t)(argc > 0 ? argc : 1));
    if (!a->arg) return cli_error("out of memory"), CLI_USAGE;
    const char *model_opt = NULL;
    for (int i = first; i < argc; i++) {
        const char *s = argv[i];
        if (s[0] != '-' || s[1] != '-' || !s[2]) { /* an argument ("-" too) */
            a->arg[a->n_args++] = s;
            continue;
        }
        if (cmd->model && !strcmp(s, "--model")) {
            if (i + 1 >= argc) return cli_usage(a, "--model needs a value (MODEL.ban)");
            if (model_opt) return cli_usage(a, "--model is given twice ('%s' and '%s')", model_opt, argv[i + 1]);
            model_opt = argv[++i];
            continue;
        }
        const int k = cli__option(cmd, s);
        if (k < 0) return cli_usage(a, "unknown option %s", s);
        const cli_option *o = &cmd->options[k];
        if (a->value[k]) return cli_usage(a, "%s is given twice", s);
        if (!o->arg) a->value[k] = "1";
        else if (i + 1 >= argc) return cli_usage(a, "%s needs a value (%s)", s, o->arg);
        else a->value[k] = argv[++i];
    }
    if (cmd->model) { /* the model: --model, or else the first argument */
        if (model_opt) a->model = model_opt;
        else if (a->n_args > 0) {
            a->model = a->arg[0];
            memmove(a->arg, a->arg + 1, sizeof(char *) * (size_t)--a->n_args);
        } else if (cmd->model == CLI_MODEL)
            return cli_usage(a, "a model is required: ban %s MODEL.ban ..., or --model MODEL.ban", cmd->name);
    }
    if (cmd->max_args >= 0 && a->n_args > cmd->max_args) {
        if (model_opt && cmd->max_args == 0)
            return cli_usage(a, "the model is given twice: '%s' and --model '%s'", a->arg[0], model_opt);
        return cli_usage(a, "unexpected argument '%s'", a->arg[cmd->max_args]);
    }
    char missing[512] = "";
    int n_missing = 0;
    for (int i = 0; cmd->options && cmd->options[i].name; i++)
        if (cmd->options[i].required && !a->value[i]) {
            char t[96];
            cli__option_text(&cmd->options[i], t, sizeof t);
            snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s%s", n_missing ? " and " : "", t);
            n_missing++;
        }
    if (n_missing) return cli_usage(a, "%s %s required", missing, n_missing > 1 ? "are" : "is");
    return CLI_OK;
}

void cli_args_free(cli_args *a)
{
    free(a->arg);
    a->arg = NULL;
}

const char *cli_get(const cli_args *a, const char *name)
{
    const int k = cli__option(a->cmd, name);
    if (k < 0) { /* a command reading an option it does not declare: a bug, not an input */
        fprintf(stderr, "ban: internal error: ban %s has no option %s\n", a->cmd->name, name);
        abort();
    }
    return a->value[k];
}

int cli_flag(const cli_args *a, const char *name) { return cli_get(a, name) != NULL; }

int cli_long(const cli_args *a, const char *name, long lo, long hi, long *out)
{
    const char *text = cli_get(a, name);
    if (!text) return CLI_OK;
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (!*text || *end || errno || v < lo || v > hi)
        return cli_usage(a, "%s must be a whole number in %ld..%ld (got '%s')", name, lo, hi, text);
    *out = v;
    return CLI_OK;
}

/* text with each line after the first indented by indent columns */
static void cli__indented(FILE *f, const char *text, int indent)
{
    for (const char *p = text; *p; p++) {
        fputc(*p, f);
        if (*p == '\n' && p[1]) fprintf(f, "%*s", indent, "");
    }
}

void cli_help(FILE *f, const cli_command *cmd)
{
    const char *model = cmd->model == CLI_MODEL ? " MODEL.ban" : cmd->model ? " [MODEL.ban]" : "";
    fprintf(f, "usage: ban %s%s%s%s\n", cmd->name, model, cmd->usage[0] ? " " : "", cmd->usage);
    fputc('\n', f);
    cli__indented(f, cmd->about, 0);
    fputs("\n\noptions:\n", f);
    int width = (int)strlen("--model MODEL.ban");
    for (int i = 0; cmd->options && cmd->options[i].name; i++) {
        char t[96];
        cli__option_text(&cmd->options[i], t, sizeof t);
        if ((int)strlen(t) > width) width = (int)strlen(t);
    }
    for (int i = 0; cmd->options && cmd->options[i].name; i++) {
        char t[96];
        cli__option_text(&cmd->options[i], t, sizeof t);
        fprintf(f, "  %-*s  %s", width, t, cmd->options[i].required ? "(required) " : "");
        cli__indented(f, cmd->options[i].help, width + 4);
        fputc('\n', f);
    }
    if (cmd->model)
        fprintf(f, "  %-*s  the model%s, when it is not the first argument\n", width, "--model MODEL.ban",
                cmd->model == CLI_MODEL_OPTIONAL ? " (see above for the default)" : "");
    fprintf(f, "  %-*s  this help\n\nexample:\n  ", width, "--help");
    cli__indented(f, cmd->example, 2);
    fputc('\n', f);
}

/* ---- models ------------------------------------------------------------------------------------ */

ban_model *cli_load_model(const char *path)
{
    ban_model *m;
    if (ban_model_load(path, &m) == BAN_OK) return m;
    /* the library's message already says what a refused file looks like (a PyTorch checkpoint:
       convert it with tools/ban_export.py) */
    cli_error("%s", m ? ban_model_error(m) : "out of memory");
    ban_model_free(m);
    return NULL;
}

/* ---- questions --------------------------------------------------------------------------------- */

enum { CLI_WARN_QUESTIONS = 5 };   /* questions whose unknown words are named */

/* the start of n bytes of valid UTF-8 for a message: whole characters, control characters as spaces */
static void cli__excerpt(const char *text, size_t n, char *out, size_t len)
{
    size_t k = n;
    if (k > len - 1) {
        k = len - 4;
        while (k > 0 && ((unsigned char)text[k] & 0xc0) == 0x80) k--; /* not inside a character */
    }
    for (size_t i = 0; i < k; i++) out[i] = (unsigned char)text[i] < 0x20 || text[i] == 0x7f ? ' ' : text[i];
    strcpy(out + k, n > k ? "..." : "");
}

int cli_question(ban_ctx *ctx, const char *text, const char *where, int32_t *ids, int max, int *n, cli_words *w,
                 char *err, size_t errlen)
{
    ban_token_info info[BAN_MAX_TOKENS];
    int count;
    if (max > BAN_MAX_TOKENS) max = BAN_MAX_TOKENS;
    /* ban.h's one policy: an empty question, or one without a known word, is refused */
    if (ban_tokenize_info(ctx, text, ids, info, max, &count) != BAN_OK) {
        util_fail(err, errlen, "%s: %s", where, ban_ctx_error(ctx));
        if (text[0] && ban_tokenize(ctx, text, ids, max, &count) == BAN_OK) { /* refused by the policy: show it */
            char shown[64];
            cli__excerpt(text, strlen(text), shown, sizeof shown);
            snprintf(err + strlen(err), errlen - strlen(err), ": \"%s\"", shown);
        }
        return -1;
    }
    const int kept = count < max ? count : max;
    int unknown = 0;
    for (int i = 0; i < kept; i++) unknown += !info[i].known;
    if (unknown) {
        if (w->shown < CLI_WARN_QUESTIONS) {
            char words[256];
            size_t at = 0;
            words[0] = 0;
            for (int i = 0; i < kept && at + 4 < sizeof words; i++)
                if (!info[i].known) {
                    char shown[48];
                    cli__excerpt(text + info[i].start, (size_t)(info[i].end - info[i].start), shown, sizeof shown);
                    at += (size_t)snprintf(words + at, sizeof words - at, "%s%s", at ? ", " : "", shown);
                }
            if (at >= sizeof words) snprintf(words + sizeof words - 4, 4, "...");
            cli_warn("%s: %d of its %d words %s not in the model's vocabulary (%s); read as the unknown word", where,
                     unknown, kept, unknown == 1 ? "is" : "are", words);
            w->shown++;
        }
        w->questions++;
    }
    *n = kept;
    return 0;
}

void cli_words_report(const cli_words *w)
{
    if (w->questions > w->shown)
        cli_warn("%zu more question%s with words not in the model's vocabulary", w->questions - w->shown,
                 w->questions - w->shown == 1 ? "" : "s");
}

void cli_pad_tokens(int32_t *dst, const int32_t *src, int n, int L, int32_t padding_id)
{
    if (n > L) n = L;
    if (dst != src) memcpy(dst, src, sizeof(int32_t) * (size_t)(n > 0 ? n : 0));
    for (int t = n > 0 ? n : 0; t < L; t++) dst[t] = padding_id;
}

int cli_forward_error(const char *msg, cli_position_name name, void *data, const char *prefix)
{
    static const char *kinds[] = {"image ", "example "};
    for (int k = 0; k < 2; k++) {
        const size_t kl = strlen(kinds[k]);
        if (strncmp(msg, kinds[k], kl) != 0 || !isdigit((unsigned char)msg[kl])) continue;
        char *end;
        const long pos = strtol(msg + kl, &end, 10);
        if (*end != ',' && *end != ':' && *end != ' ') break;
        char named[512];
        name(data, k == 0 ? "image" : "example", (int)pos, named, sizeof named);
        return cli_error("%s%s", named, end);
    }
    return cli_error("%s%s", prefix, msg);
}

/* ---- outputs ---------------------------------------------------------------------------------- */

int cli_open_output(util_out *o, const char *path)
{
    char err[4400];
    return util_out_open(o, path, err, sizeof err) ? cli_error("%s", err) : CLI_OK;
}

int cli_commit_output(util_out *o)
{
    char err[4400];
    return util_out_commit(o, err, sizeof err) ? cli_error("%s", err) : CLI_OK;
}

void cli_json_string(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fputc('\\', f), fputc(c, f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

void cli_json_cstr(FILE *f, const char *s) { cli_json_string(f, s, strlen(s)); }
