/* util.h - what every part of the examples shares: a clock, messages, whole-file reading,
   top-k, and the one writer every output goes through.

   util_now()                                  seconds on a monotonic clock
   util_fail(err, errlen, fmt, ...)            a message into err (NULL or 0: none); returns -1
   util_open_file(path, &size, err, errlen)    the descriptor of a regular file and its size
                                               (a FIFO or a device is refused, without waiting
                                               on it); -1 with a message
   util_read_file(path, max, &n, err, errlen)  a regular file of at most max bytes, whole and
                                               NUL-terminated (malloc'd); NULL with a message
   util_top_k(x, n, k, idx)                    idx = the k largest of x (n) by decreasing value,
                                               ties to the lower index, NaN after every number

   OUTPUTS (npy, feature stores, JSON, PNG, text: everything build/ban writes)
     util_out_open(&o, path, err, errlen)      write to o.f
     util_out_commit(&o, err, errlen)          flushed, fsynced and renamed over path
     util_out_abort(&o)                        nothing left behind
   A regular file (or a name not there yet) is written as a temporary beside it with an
   unpredictable name, created exclusively (O_CREAT | O_EXCL | O_NOFOLLOW: never a planted
   file or link, mode 0666 less the umask as any new file), then fsynced and renamed over
   path, so readers see the old file or the new one, never half of one. A symbolic link at
   path is replaced, not followed. What is not a regular file (a device such as /dev/null,
   a FIFO, "-" for stdout) is written directly, never replaced. Messages name path and the
   system's reason, never the temporary. SIGINT, SIGTERM, SIGHUP and SIGPIPE remove every
   temporary still open before the process dies of them (outputs are opened by one thread;
   a signal landing on another is handed to it).

   Define UTIL_IMPLEMENTATION in exactly one C file (in build/ban: examples/impl.c; npy.h
   and store.h use it, so a program with their implementations needs it too), with
   _POSIX_C_SOURCE 200809L defined before any header. */
#ifndef UTIL_H_INCLUDED
#define UTIL_H_INCLUDED
#include <stddef.h>
#include <stdio.h>

#if defined(__GNUC__) || defined(__clang__)
#define UTIL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define UTIL_PRINTF(f, a)
#endif

double util_now(void);
int util_fail(char *err, size_t errlen, const char *fmt, ...) UTIL_PRINTF(3, 4);
int util_open_file(const char *path, unsigned long long *size, char *err, size_t errlen);
char *util_read_file(const char *path, size_t max, size_t *n, char *err, size_t errlen);
void util_top_k(const float *x, int n, int k, int *idx);

typedef struct util_out {
    FILE *f;                   /* write here */
    char *path;                /* the destination, as given */
    char *tmp;                 /* the temporary; NULL when path is written directly */
    int slot;                  /* the temporary's place in the list the signal handler reads */
} util_out;

int util_out_open(util_out *o, const char *path, char *err, size_t errlen);
int util_out_commit(util_out *o, char *err, size_t errlen);
void util_out_abort(util_out *o);

#endif /* UTIL_H_INCLUDED */

#if defined(UTIL_IMPLEMENTATION) && !defined(UTIL__IMPLEMENTED)
#define UTIL__IMPLEMENTED
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double util_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int util_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

int util_open_file(const char *path, unsigned long long *size, char *err, size_t errlen)
{
    /* O_NONBLOCK: opening a FIFO nobody writes to would wait for a writer (a regular file ignores it) */
    const int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return util_fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    /* the size must be known before reading: a device or FIFO could be endless (/dev/zero) */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0) {
        close(fd);
        return util_fail(err, errlen, "%s: not a regular file", path);
    }
    *size = (unsigned long long)st.st_size;
    return fd;
}

char *util_read_file(const char *path, size_t max, size_t *n, char *err, size_t errlen)
{
    unsigned long long size;
    const int fd = util_open_file(path, &size, err, errlen);
    if (fd < 0) return NULL;
    if (size > max) {
        close(fd);
        return util_fail(err, errlen, "%s: %llu bytes, more than the %zu it may have", path, size, max), NULL;
    }
    char *buf = (char *)malloc((size_t)size + 1);
    if (!buf) return close(fd), util_fail(err, errlen, "%s: out of memory for %llu bytes", path, size), NULL;
    size_t got = 0;
    int e = 0;
    while (got < size) {
        const ssize_t r = read(fd, buf + got, (size_t)size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            e = r < 0 ? errno : 0;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (got != size)
        return free(buf), util_fail(err, errlen, "%s: cannot read: %s", path,
                                    e ? strerror(e) : "shorter than when it was opened"), NULL;
    buf[size] = 0;
    *n = (size_t)size;
    return buf;
}

/* x[i] ranks before x[j]: larger, or equal and earlier; NaN after every number */
static int util__before(const float *x, int i, int j)
{
    if (isnan(x[i]) || isnan(x[j])) return !isnan(x[i]) || (isnan(x[j]) && i < j);
    return x[i] > x[j] || (x[i] == x[j] && i < j);
}

/* sift down in a heap whose root is the one ranking last (the first to leave) */
static void util__sift(const float *x, int *h, int n, int at)
{
    for (;;) {
        int worst = at, l = 2 * at + 1, r = l + 1;
        if (l < n && util__before(x, h[worst], h[l])) worst = l;
        if (r < n && util__before(x, h[worst], h[r])) worst = r;
        if (worst == at) return;
        int t = h[at];
        h[at] = h[worst], h[worst] = t;
        at = worst;
    }
}

void util_top_k(const float *x, int n, int k, int *idx)
{
    if (k > n) k = n;
    if (k <= 0) return;
    /* idx holds a heap of the k best so far, the worst of them at the root: O(n log k) */
    for (int i = 0; i < k; i++) idx[i] = i;
    for (int i = k / 2 - 1; i >= 0; i--) util__sift(x, idx, k, i);
    for (int i = k; i < n; i++)
        if (util__before(x, i, idx[0])) idx[0] = i, util__sift(x, idx, k, 0);
    for (int m = k - 1; m > 0; m--) { /* the worst goes last: sorted best first */
        int t = idx[0];
        idx[0] = idx[m], idx[m] = t;
        util__sift(x, idx, m, 0);
    }
}

/* ---- outputs ------------------------------------------------------------------------------ */

/* The temporaries now open, for the signal handler: a path is complete before its flag is set. */
#define UTIL__TEMPS 16
#define UTIL__PATH 4096
static char util__temp[UTIL__TEMPS][UTIL__PATH];
static volatile sig_atomic_t util__temp_used[UTIL__TEMPS];
static const int util__signals[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
#define UTIL__NSIG ((int)(sizeof util__signals / sizeof util__signals[0]))

static pthread_t util__owner; /* the thread that opens the outputs (and blocks signals while it lists one) */

static void util__on_signal(int sig)
{
    /* A signal for the process may land on any thread that does not block it, such as a
       worker of ban.h's pool, while the owner is between creating a temporary and listing
       it: hand it to the owner, which takes it once the temporary is listed. */
    if (!pthread_equal(pthread_self(), util__owner)) {
        pthread_kill(util__owner, sig);
        return;
    }
    for (int i = 0; i < UTIL__TEMPS; i++)
        if (util__temp_used[i]) unlink(util__temp[i]); /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig); /* delivered once the handler returns: the process ends as the signal says */
}

/* the handlers, once; a signal the process was started ignoring (nohup) stays ignored */
static void util__catch_signals(void)
{
    static int done;
    if (done) return;
    done = 1;
    util__owner = pthread_self();
    for (int i = 0; i < UTIL__NSIG; i++) {
        struct sigaction old, sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = util__on_signal;
        sigemptyset(&sa.sa_mask);
        for (int j = 0; j < UTIL__NSIG; j++) sigaddset(&sa.sa_mask, util__signals[j]);
        if (sigaction(util__signals[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(util__signals[i], &sa, NULL);
    }
}

/* n random characters for a name: the kernel's randomness (or, failing it, the clock and pid) */
static void util__random_name(char *out, int n)
{
    static const char abc[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    static uint64_t counter;
    unsigned char r[32];
    if (n > (int)sizeof r) n = (int)sizeof r;
    if (getrandom(r, (size_t)n, 0) != (ssize_t)n) {
        uint64_t s = (uint64_t)(util_now() * 1e9) ^ ((uint64_t)getpid() << 32) ^ ++counter;
        for (int i = 0; i < n; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            r[i] = (unsigned char)(s >> 56);
        }
    }
    for (int i = 0; i < n; i++) out[i] = abc[r[i] % (sizeof abc - 1)];
    out[n] = 0;
}

static char *util__strdup(const char *s)
{
    const size_t n = strlen(s) + 1;
    char *d = (char *)malloc(n);
    return d ? (char *)memcpy(d, s, n) : NULL;
}

static void util__release(util_out *o)
{
    if (o->slot >= 0) util__temp_used[o->slot] = 0;
    free(o->path), free(o->tmp);
    o->f = NULL, o->path = o->tmp = NULL, o->slot = -1;
}

/* what is not a regular file is written in place: open it without creating or following */
static int util__open_direct(util_out *o, const char *path, char *err, size_t errlen)
{
    if (!strcmp(path, "-")) return o->f = stdout, 0;
    int fd = open(path, O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return util_fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || S_ISREG(st.st_mode)) { /* replaced by a file since it was looked at */
        close(fd);
        return util_fail(err, errlen, "%s: changed while being opened", path);
    }
    if (!(o->f = fdopen(fd, "wb"))) {
        int e = errno;
        close(fd);
        return util_fail(err, errlen, "%s: cannot open: %s", path, strerror(e));
    }
    return 0;
}

int util_out_open(util_out *o, const char *path, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->slot = -1;
    struct stat st;
    const size_t plen = strlen(path);
    if (plen == 0) return util_fail(err, errlen, "an output needs a file name");
    if (!(o->path = util__strdup(path))) return util_fail(err, errlen, "%s: out of memory", path);
    if (!strcmp(path, "-") || (lstat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))) {
        if (strcmp(path, "-") && S_ISDIR(st.st_mode)) {
            util__release(o);
            return util_fail(err, errlen, "%s: cannot write: %s", path, strerror(EISDIR));
        }
        if (util__open_direct(o, path, err, errlen)) return util__release(o), -1;
        return 0;
    }
    if (path[plen - 1] == '/') {
        util__release(o);
        return util_fail(err, errlen, "%s: cannot write: %s", path, strerror(EISDIR));
    }
    /* DIR/.NAME.XXXXXXXXXXXX beside the destination, so that rename() is atomic */
    const char *slash = strrchr(path, '/');
    const int dir_len = slash ? (int)(slash - path) + 1 : 0;
    enum { RANDOM = 12 };
    if (plen + RANDOM + 3 > UTIL__PATH) {
        util__release(o);
        return util_fail(err, errlen, "%s: cannot create: %s", path, strerror(ENAMETOOLONG));
    }
    int slot = 0;
    while (slot < UTIL__TEMPS && util__temp_used[slot]) slot++;
    if (slot == UTIL__TEMPS) {
        util__release(o);
        return util_fail(err, errlen, "%s: more than %d outputs open at once", path, UTIL__TEMPS);
    }
    util__catch_signals();
    /* signals wait until the temporary is listed: none can leave it behind unlisted */
    sigset_t block, old;
    sigemptyset(&block);
    for (int i = 0; i < UTIL__NSIG; i++) sigaddset(&block, util__signals[i]);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int fd = -1, e = 0;
    for (int tries = 0; tries < 100 && fd < 0; tries++) {
        char name[RANDOM + 1];
        util__random_name(name, RANDOM);
        snprintf(util__temp[slot], UTIL__PATH, "%.*s.%s.%s", dir_len, path, path + dir_len, name);
        fd = open(util__temp[slot], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        e = errno;
        if (fd < 0 && e != EEXIST) break;
    }
    if (fd >= 0) util__temp_used[slot] = 1, o->slot = slot;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (fd < 0) {
        util__release(o);
        return util_fail(err, errlen, "%s: cannot create: %s", path, strerror(e));
    }
    if (!(o->tmp = util__strdup(util__temp[slot])) || !(o->f = fdopen(fd, "wb"))) {
        e = o->tmp ? errno : ENOMEM;
        close(fd);
        unlink(util__temp[slot]);
        util__release(o);
        return util_fail(err, errlen, "%s: cannot create: %s", path, strerror(e));
    }
    return 0;
}

/* the folder of path fsynced, so that the rename itself survives a crash */
static void util__sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[UTIL__PATH];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + 1 : 1, slash ? path : ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) fsync(fd), close(fd);
}

int util_out_commit(util_out *o, char *err, size_t errlen)
{
    /* a write that failed earlier left the stream's error flag, and errno its reason */
    int e = ferror(o->f) ? (errno ? errno : EIO) : 0;
    if (!e && fflush(o->f) != 0) e = errno ? errno : EIO;
    if (!o->tmp) { /* written in place */
        if (o->f != stdout && fclose(o->f) != 0 && !e) e = errno ? errno : EIO;
        o->f = NULL;
        int rc = e ? util_fail(err, errlen, "%s: cannot write: %s", o->path, strerror(e)) : 0;
        util__release(o);
        return rc;
    }
    if (!e && fsync(fileno(o->f)) != 0) e = errno;
    if (fclose(o->f) != 0 && !e) e = errno ? errno : EIO;
    o->f = NULL;
    if (!e && rename(o->tmp, o->path) != 0) e = errno;
    if (e) {
        unlink(o->tmp);
        util__release(o);
        return util_fail(err, errlen, "%s: cannot write: %s", o->path, strerror(e));
    }
    util__sync_dir(o->path);
    util__release(o);
    return 0;
}

void util_out_abort(util_out *o)
{
    if (!o->path) return;
    if (o->f && o->f != stdout) fclose(o->f);
    if (o->tmp) unlink(o->tmp);
    util__release(o);
}

#endif /* UTIL_IMPLEMENTATION */
