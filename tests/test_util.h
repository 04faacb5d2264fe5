/* test_util.h - what the C test programs share: TAP output, checks, the fixture folder and
   loaders for what it holds. Include it after ban.h (and after any BAN_MALLOC hook the
   program installs); it brings examples/npy.h's implementation. */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UTIL_IMPLEMENTATION /* npy.h writes through util.h */
#define NPY_IMPLEMENTATION
#include "../examples/npy.h"

static char g_dir[1024] = "build/fixtures";  /* the folder tests/prepare_fixtures.py fills */
static int g_test_failed;

static void fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("#   %s:%d: ", file, line);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    g_test_failed = 1;
}
#define CHECK(cond, ...) do { if (!(cond)) fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define REQUIRE(cond, ...) do { if (!(cond)) { fail(__FILE__, __LINE__, __VA_ARGS__); return; } } while (0)

/* a fixture's path; eight buffers in turn, so that a few paths can be alive at once */
static inline const char *path_of(const char *name)
{
    static char buf[8][1100];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s", g_dir, name);
    return buf[i];
}

static inline npy_array load(const char *name)
{
    npy_array a;
    char err[512];
    if (npy_load(path_of(name), &a, err, sizeof err)) {
        printf("Bail out! %s\n", err);
        exit(1);
    }
    return a;
}

/* an int32 or int64 array as int32 values (malloc'd) */
static inline int32_t *ints(const npy_array *a)
{
    int32_t *out = (int32_t *)malloc(a->count * sizeof *out);
    char err[256];
    if (!out || npy_to_int32(a, "fixture", out, err, sizeof err)) {
        printf("Bail out! %s\n", out ? err : "out of memory");
        exit(1);
    }
    return out;
}

static inline ban_model *open_model(const char *name)
{
    ban_model *m;
    if (ban_model_load(path_of(name), &m) != BAN_OK) {
        printf("Bail out! %s\n", m ? ban_model_error(m) : "out of memory");
        exit(1);
    }
    return m;
}

typedef struct {
    const char *name;
    void (*fn)(void);
} test_case;

/* The fixture folder: argv[1], else "fixtures" beside the program (build-asan/test_ban
   reads build-asan/fixtures). */
static inline void test_fixture_dir(int argc, char **argv)
{
    const char *slash = strrchr(argv[0], '/');
    if (argc > 1) snprintf(g_dir, sizeof g_dir, "%s", argv[1]);
    else if (slash) snprintf(g_dir, sizeof g_dir, "%.*s/fixtures", (int)(slash - argv[0]), argv[0]);
}

/* every test, one TAP line each; 1 when any failed, for the exit status */
static inline int run_tests(const test_case *tests, int n)
{
    int failed = 0;
    printf("1..%d\n", n);
    for (int i = 0; i < n; i++) {
        g_test_failed = 0;
        tests[i].fn();
        printf("%s %d - %s\n", g_test_failed ? "not ok" : "ok", i + 1, tests[i].name);
        failed += g_test_failed;
        fflush(stdout);
    }
    return failed ? 1 : 0;
}
#endif
