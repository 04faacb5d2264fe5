/* fuzz.h - what the fuzz targets share (tests/fuzz/fuzz_*.c).

   A target is one file fuzz_NAME.c defining LLVMFuzzerTestOneInput (and, if it needs
   set-up, LLVMFuzzerInitialize), plus its seeds in corpus/NAME/ and the inputs that
   once broke it in regressions/NAME/. The Makefile links every target twice: with
   libFuzzer (clang -fsanitize=fuzzer,address,undefined: build/fuzz/fuzz_NAME), and with
   replay.c under any compiler (build/fuzz/replay_NAME FILE|DIR...), which runs the seeds
   and regressions in `make test`, `make asan` and `make valgrind`. */
#ifndef BAN_FUZZ_H
#define BAN_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* the source folder tests/fuzz, for data a target reads (the Makefile passes it) */
#ifndef FUZZ_DIR
#define FUZZ_DIR "tests/fuzz"
#endif

/* a property that must hold whatever the input: a violation is a crash the fuzzer keeps */
#define FUZZ_CHECK(cond, ...)                                                                     \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "%s:%d: property violated: %s: ", __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fputc('\n', stderr);                                                                  \
            abort();                                                                              \
        }                                                                                         \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
