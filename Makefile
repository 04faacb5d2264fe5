# ban.h: build the examples and the command-line tool, run the tests.
PYTHON ?= /usr/bin/python3
CC ?= cc
BUILD ?= build

.PHONY: all test clean
all:
	@mkdir -p $(BUILD)

test: all
	$(PYTHON) tests/run_tests.py --build $(BUILD)

clean:
	rm -rf $(BUILD)
