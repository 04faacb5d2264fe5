# ban.h: `make` builds the examples and build/ban; `make test` runs every test;
# `make demo` draws shapes and answers questions about them with the committed easy-VQA model.
PYTHON ?= /usr/bin/python3
CC ?= cc
BUILD ?= build
CFLAGS ?= -O2 -g
WARN = -std=c11 -Wall -Wextra
BLAS_LIBS ?= -lopenblas
LDLIBS = $(BLAS_LIBS) -lm -lpthread
DEPS = libopenblas-dev libstb-dev libcjson-dev libexpat1-dev zlib1g-dev libcairo2-dev fonts-dejavu-core pkg-config \
       libmicrohttpd-dev python3-numpy python3-pytest python3-torch python3-pil python3-dask python3-distributed \
       chromium chromium-driver python3-selenium

HEADERS = ban.h $(wildcard examples/*.h)
# build/ban: the dispatcher (examples/ban.c), the shared helpers (examples/cli.c), the one
# file that compiles the single-header libraries (examples/impl.c), and a file per command
# or group of commands (examples/cmd_*.c, listed in examples/cli.h's CLI_COMMANDS)
CLI_SRC = examples/ban.c examples/cli.c examples/impl.c $(wildcard examples/cmd_*.c)
CLI_LIBS = -lcjson -lexpat -lz
# build/ban draws its pictures with cairo, whose text finds its font through fontconfig
# (examples/picture.h); nothing else links them
PICTURE_CFLAGS = $(shell pkg-config --cflags cairo fontconfig 2>/dev/null)
PICTURE_LIBS = $(shell pkg-config --libs cairo fontconfig 2>/dev/null || echo -lcairo -lfontconfig)
# ban serve (examples/cmd_serve.c) runs on libmicrohttpd; only build/ban links it
SERVE_LIBS = -lmicrohttpd
# every tests/test_*.c is a TAP-speaking program build/test_*, run by make test
C_TESTS = $(patsubst tests/%.c,$(BUILD)/%,$(wildcard tests/test_*.c))
FIXTURES = $(BUILD)/fixtures/.stamp
# each tests/fuzz/fuzz_NAME.c is a libFuzzer target, built twice: $(BUILD)/fuzz/fuzz_NAME with
# clang's libFuzzer (skipped without it), and $(BUILD)/fuzz/replay_NAME with $(CC) and the
# build's flags, which replays its seeds and regressions; $(BUILD)/test_fuzz (tests/fuzz/run.py)
# runs both in make test, with FUZZ_TEST_SECONDS of libFuzzer shared among the targets
FUZZ_CC ?= clang
FUZZ_CFLAGS = -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 30
FUZZ_NAMES = $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS = $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%) $(FUZZ_NAMES:%=$(BUILD)/fuzz/replay_%) $(BUILD)/test_fuzz
FUZZ_DEFS = -DFUZZ_DIR='"$(CURDIR)/tests/fuzz"'
SAN_CFLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
TSAN_CFLAGS = -O1 -g -fsanitize=thread

.PHONY: all help test demo demo-golden deps check-deps clean bench accuracy asan valgrind tsan fuzz install uninstall
## all: build/ban (the command-line tool), build/simple (the README's C example), build/libban.so
all: check-deps $(BUILD)/ban $(BUILD)/simple $(BUILD)/libban.so

# say in one line what to install when something is missing
## help: this list
help:
	@sed -n 's/^## \([a-z-]*\): /\1\t/p' $(firstword $(MAKEFILE_LIST)) | expand -t 14 | sed 's/^/make /'

## check-deps: say in one line which Debian packages the build needs
check-deps:
	@missing=""; \
	echo '#include <cblas.h>' | $(CC) -E -x c - >/dev/null 2>&1 || missing="$$missing libopenblas-dev"; \
	echo '#include <cjson/cJSON.h>' | $(CC) -E -x c - >/dev/null 2>&1 || missing="$$missing libcjson-dev"; \
	echo '#include <expat.h>' | $(CC) -E -x c - >/dev/null 2>&1 || missing="$$missing libexpat1-dev"; \
	echo '#include <stb/stb_image.h>' | $(CC) -E -x c - >/dev/null 2>&1 || missing="$$missing libstb-dev"; \
	echo '#include <microhttpd.h>' | $(CC) -E -x c - >/dev/null 2>&1 || missing="$$missing libmicrohttpd-dev"; \
	echo '#include <zlib.h>' | $(CC) -E -x c - >/dev/null 2>&1 || missing="$$missing zlib1g-dev"; \
	echo '#include <cairo.h>' | $(CC) -E $(PICTURE_CFLAGS) -x c - >/dev/null 2>&1 || missing="$$missing libcairo2-dev"; \
	if [ -n "$$missing" ]; then echo "ban.h needs:$$missing  (install them: make deps, or apt-get install -y $(DEPS))"; exit 1; fi

# everything the tests and examples use, from Debian's packages (run as root)
## deps: install those packages (as root)
deps:
	apt-get update && apt-get install -y --no-install-recommends make gcc clang $(DEPS)

$(BUILD):
	@mkdir -p $(BUILD)

$(BUILD)/ban: $(CLI_SRC) $(HEADERS) | $(BUILD)
	$(CC) $(WARN) $(CFLAGS) $(PICTURE_CFLAGS) -o $@ $(CLI_SRC) $(CLI_LIBS) $(PICTURE_LIBS) $(SERVE_LIBS) $(LDLIBS)

$(BUILD)/simple: examples/simple.c ban.h examples/npy.h | $(BUILD)
	$(CC) $(WARN) $(CFLAGS) -I. -o $@ examples/simple.c $(LDLIBS)

# the shared library: ban.h compiled once with BAN_IMPLEMENTATION, a soname, and only the
# ban_* functions (BANDEF) visible; the Python package (python/ban) loads it
VERSION = $(shell sed -n 's/^\#define BAN_VERSION "\(.*\)"/\1/p' ban.h)
SONAME = libban.so.$(firstword $(subst ., ,$(VERSION)))
$(BUILD)/libban.so: ban.h | $(BUILD)
	$(CC) $(WARN) $(CFLAGS) -fPIC -shared -fvisibility=hidden -DBAN_IMPLEMENTATION \
	  '-DBANDEF=extern __attribute__((visibility("default")))' -Wl,-soname,$(SONAME) \
	  -o $@ -x c ban.h -x none $(LDLIBS)

$(BUILD)/test_%: tests/test_%.c tests/test_util.h tests/test_alloc.h $(HEADERS) | $(BUILD)
	$(CC) $(WARN) $(CFLAGS) -o $@ $< $(CLI_LIBS) $(LDLIBS)

$(BUILD)/test_portable: tests/test_ban.c tests/test_util.h
$(BUILD)/test_quant_portable: tests/test_quant.c tests/test_util.h

$(FIXTURES): tests/prepare_fixtures.py tools/ban_export.py tools/banfile.py tools/torchfile.py tools/openvqa.py $(wildcard tests/fixtures/* tests/fixtures/openvqa/*) | $(BUILD)
	@$(PYTHON) -c 'import numpy, pytest' 2>/dev/null || { echo "the tests need: apt-get install -y $(DEPS) (or make deps)"; exit 1; }
	$(PYTHON) tests/prepare_fixtures.py $(BUILD)/fixtures

## test: every test; the last line reads "N passed, N failed"
test: all $(C_TESTS) $(FIXTURES) $(FUZZ_BINS)
	FUZZ_TEST_SECONDS=$(FUZZ_TEST_SECONDS) PYTHON=$(PYTHON) $(PYTHON) tests/run_tests.py --build $(BUILD)

# ---- untrusted input: sanitizers, valgrind, fuzzing (README.md, "Safety") ------------------
$(BUILD)/fuzz/have-libfuzzer: | $(BUILD)
	@mkdir -p $(@D)
	@if echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return !d && n; }' | \
	  $(FUZZ_CC) -fsanitize=fuzzer -x c - -o $(@D)/probe >/dev/null 2>&1; then echo yes; else echo no; fi > $@
	@rm -f $(@D)/probe

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(HEADERS) $(BUILD)/fuzz/have-libfuzzer
	@if [ "$$(cat $(BUILD)/fuzz/have-libfuzzer)" = yes ]; then \
	  echo "$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $<"; \
	  $(FUZZ_CC) $(WARN) $(FUZZ_CFLAGS) $(FUZZ_DEFS) -o $@ $< $(CLI_LIBS) $(LDLIBS); \
	else echo "($@ not built: $(FUZZ_CC) has no libFuzzer)"; fi

$(BUILD)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c tests/fuzz/fuzz.h $(HEADERS) | $(BUILD)
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) $(FUZZ_DEFS) -o $@ $< tests/fuzz/replay.c $(CLI_LIBS) $(LDLIBS)

$(BUILD)/test_fuzz: | $(BUILD)
	ln -sf $(CURDIR)/tests/fuzz/run.py $@

# every test with AddressSanitizer and UndefinedBehaviorSanitizer, in build-asan (the
# fuzz binaries have them already: their replay runs here, their fuzzing in make test)
## asan: every test with AddressSanitizer and UBSan, in build-asan
asan:
	$(MAKE) test BUILD=build-asan CFLAGS="$(SAN_CFLAGS)" FUZZ_TEST_SECONDS=0

# the C tests, the fuzz replays and build/ban's main paths under valgrind
## valgrind: the C tests, the fuzz replays and build/ban under valgrind
valgrind: all $(C_TESTS) $(FIXTURES) $(FUZZ_BINS)
	$(PYTHON) tests/run_valgrind.py --build $(BUILD)

# the thread tests under ThreadSanitizer (contexts on many threads; a context's own threads in
# the packed product); OpenBLAS's own threads are off (README, "Safety")
## tsan: the thread tests under ThreadSanitizer
tsan: $(FIXTURES)
	@mkdir -p build-tsan
	$(CC) $(WARN) $(TSAN_CFLAGS) -o build-tsan/test_threads tests/test_threads.c $(LDLIBS)
	$(CC) $(WARN) $(TSAN_CFLAGS) -o build-tsan/test_ban tests/test_ban.c $(LDLIBS)
	OPENBLAS_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1 build-tsan/test_threads $(BUILD)/fixtures
	OPENBLAS_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1 build-tsan/test_ban $(BUILD)/fixtures

# libFuzzer on every target, FUZZ_SECONDS each; FUZZ_TARGETS="model npy" for some
## fuzz: libFuzzer on every target, FUZZ_SECONDS each (FUZZ_TARGETS="model npy" for some)
fuzz: $(FUZZ_BINS)
	$(PYTHON) tests/fuzz/run.py fuzz --build $(BUILD) --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# the README's first command: shapes drawn by ban demo, answered by the committed easy-VQA model
## demo: draw shapes and answer questions about them with the committed easy-VQA model
demo: all
	@$(BUILD)/ban demo --model examples/models/easyvqa.ban --out $(BUILD)/demo

# the reference's golden model: export it, then answer its six questions
## demo-golden: export the reference's golden model and answer its six questions
demo-golden: all $(FIXTURES)
	@echo "== the reference's golden VQA model (tests/fixtures/ban_ref_g2.pth), exported to $(BUILD)/fixtures/g2.ban"
	@$(BUILD)/ban info $(BUILD)/fixtures/g2.ban | sed -n '2,3p;5,6p;9,10p'
	@echo "== its six questions, answered by ban.h (features from tests/fixtures/ban_ref_g2.npz)"
	@$(BUILD)/ban run $(BUILD)/fixtures/g2.ban --features $(BUILD)/fixtures/g2_v.npy --spatials $(BUILD)/fixtures/g2_b.npy \
	  --questions $(BUILD)/fixtures/g2_questions.txt --logits $(BUILD)/demo_logits.npy --answers-out - \
	  | paste -d'|' $(BUILD)/fixtures/g2_questions.txt - | sed 's/|/  ->  /'
	@echo "== the reference predicted: $$(tr '\n' ' ' < $(BUILD)/fixtures/g2_answers.txt)"

# speed against PyTorch and against the machine's sgemm (benchmarks/README.md)
## bench: speed of f32, bf16 and int8 weights side by side, against PyTorch and the machine's sgemm (benchmarks/README.md)
bench: all $(BUILD)/bench_products
	$(PYTHON) benchmarks/run.py --build $(BUILD) --threads 2 --batches 1,32
	@echo
	$(BUILD)/bench_products --threads 2

## accuracy: what bf16 and int8 weights change: logit errors, top-1 agreement, easy-VQA accuracy (benchmarks/README.md)
accuracy: all $(FIXTURES)
	$(PYTHON) benchmarks/accuracy.py --build $(BUILD)

$(BUILD)/bench_products: benchmarks/products.c ban.h | $(BUILD)
	$(CC) $(WARN) $(CFLAGS) -o $@ $< $(LDLIBS)

# ---- install (Debian's layout; DESTDIR for staging a package) -----------------------------
PREFIX ?= /usr/local
DESTDIR ?=
INSTALL_INCLUDE = $(DESTDIR)$(PREFIX)/include
INSTALL_LIB = $(DESTDIR)$(PREFIX)/lib
INSTALL_BIN = $(DESTDIR)$(PREFIX)/bin
INSTALL_PY = $(INSTALL_LIB)/python3/dist-packages/ban
PY_MODULES = $(notdir $(wildcard python/ban/*.py))

## install: ban.h, libban.so, ban.pc, build/ban and the Python package under PREFIX (/usr/local)
install: $(BUILD)/ban $(BUILD)/libban.so
	install -d $(INSTALL_INCLUDE) $(INSTALL_LIB)/pkgconfig $(INSTALL_BIN) $(INSTALL_PY)
	install -m 644 ban.h $(INSTALL_INCLUDE)/ban.h
	install -m 644 $(BUILD)/libban.so $(INSTALL_LIB)/libban.so.$(VERSION)
	ln -sf libban.so.$(VERSION) $(INSTALL_LIB)/$(SONAME)
	ln -sf $(SONAME) $(INSTALL_LIB)/libban.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' ban.pc.in > $(INSTALL_LIB)/pkgconfig/ban.pc
	chmod 644 $(INSTALL_LIB)/pkgconfig/ban.pc
	install -m 755 $(BUILD)/ban $(INSTALL_BIN)/ban
	install -m 644 $(addprefix python/ban/,$(PY_MODULES)) $(INSTALL_PY)/

# exactly what install wrote (and the bytecode Python caches beside the package), then the
# package's folder if nothing else is in it; shared folders (bin, lib, ...) stay
## uninstall: remove exactly what make install wrote (the same PREFIX and DESTDIR)
uninstall:
	rm -f $(INSTALL_INCLUDE)/ban.h $(INSTALL_LIB)/libban.so.$(VERSION) $(INSTALL_LIB)/$(SONAME) \
	  $(INSTALL_LIB)/libban.so $(INSTALL_LIB)/pkgconfig/ban.pc $(INSTALL_BIN)/ban \
	  $(addprefix $(INSTALL_PY)/,$(PY_MODULES)) \
	  $(foreach m,$(PY_MODULES:.py=),$(wildcard $(INSTALL_PY)/__pycache__/$(m).*.pyc))
	-rmdir $(INSTALL_PY)/__pycache__ $(INSTALL_PY) 2>/dev/null || true

## clean: remove build/ and build-*/
clean:
	rm -rf $(BUILD) build-*
