# ban.h: `make` builds the examples and build/ban; `make test` runs every test.
PYTHON ?= /usr/bin/python3
CC ?= cc
BUILD ?= build
CFLAGS ?= -O2 -g
WARN = -std=c11 -Wall -Wextra
BLAS_LIBS ?= -lopenblas
LDLIBS = $(BLAS_LIBS) -lm -lpthread

HEADERS = ban.h examples/npy.h examples/cli.h
CLI_SRC = examples/ban.c
FIXTURES = $(BUILD)/fixtures/.stamp

.PHONY: all test clean
all: $(BUILD)/ban

$(BUILD):
	@mkdir -p $(BUILD)

$(BUILD)/ban: $(CLI_SRC) $(HEADERS) | $(BUILD)
	$(CC) $(WARN) $(CFLAGS) -o $@ $(CLI_SRC) $(LDLIBS)

$(BUILD)/test_ban: tests/test_ban.c ban.h examples/npy.h | $(BUILD)
	$(CC) $(WARN) $(CFLAGS) -o $@ tests/test_ban.c $(LDLIBS)

$(FIXTURES): tests/prepare_fixtures.py tools/ban_export.py tools/banfile.py tools/torchfile.py $(wildcard tests/fixtures/*) | $(BUILD)
	$(PYTHON) tests/prepare_fixtures.py $(BUILD)/fixtures

test: all $(BUILD)/test_ban $(FIXTURES)
	$(PYTHON) tests/run_tests.py --build $(BUILD)

clean:
	rm -rf $(BUILD)
