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

.PHONY: all test clean fixtures
all: $(BUILD)/ban

$(BUILD):
	@mkdir -p $(BUILD)

$(BUILD)/ban: $(CLI_SRC) $(HEADERS) | $(BUILD)
	$(CC) $(WARN) $(CFLAGS) -o $@ $(CLI_SRC) $(LDLIBS)

test: all
	$(PYTHON) tests/run_tests.py --build $(BUILD)

clean:
	rm -rf $(BUILD)
