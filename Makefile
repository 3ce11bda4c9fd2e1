# coopt: `make test` and `make demo` set up everything they need on a fresh Debian machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: all setup deps test test-slow test-all lint demo bench clean

all: setup

deps:
	@sh scripts/install-deps.sh

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# A real (non-editable) install, so coopt-cc runs the way users get it: the fast -I -S launcher with
# byte-compiled modules. Reinstalled whenever the sources change.
$(VENV)/.installed: $(BIN)/python pyproject.toml setup.py build_fastcc.py scripts/coopt-cc $(shell find src -type f -name '*.py' -o -type f -path '*/data/*' 2>/dev/null)
	$(BIN)/python -m pip install -q --no-build-isolation --upgrade setuptools wheel
	$(BIN)/python -m pip install -q --no-build-isolation ".[test]"
	@touch $@

setup: deps $(VENV)/.installed

# `make test`: every test but the slowest end-to-end runs (marked `slow`: real projects, the local model, whole
# optimize runs), about 16 minutes on 2 cores; `make test-slow`: those; `make test-all`: both in one run.
# CI (.ci/run) runs `make test`, then `make test-slow`.
test: setup
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest -m "not slow" --durations=15 $(PYTEST_ARGS)

test-slow: setup
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest -m slow --durations=30 $(PYTEST_ARGS)

test-all: setup
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

demo: setup
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python examples/demo.py

bench: setup
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python bench/wrapper_overhead.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
