# Two commands do all the set-up on a machine with Python >= 3.11 and make:
#   make run    create the virtual environment, install from the lock file, start the bot
#   make test   the whole suite (lint, types, tests)
# The versions installed are those of requirements.lock (every dependency, dev tools included,
# for Python 3.11 on Linux); `make lock` regenerates it after a change to pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
STAMP := $(VENV)/.installed
UV := $(BIN)/uv
# `make lock LOCK_FLAGS=--upgrade` moves every pin to the newest release allowed.
LOCK_FLAGS ?=
# `make bench BENCH=webhook BENCH_ARGS=...`: any benchmark of bench/, with its options.
BENCH ?= updates
BENCH_ARGS ?= --quick

.PHONY: run test lint install lock bench clean

# uv installs exactly the locked versions (and removes any other); its own version is pinned
# in the lock too, so a fresh venv starts by taking that one from PyPI with pip.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$$(grep -m1 '^uv==' $(LOCK) | cut -d' ' -f1)"
	$(UV) pip sync --quiet --python $(BIN)/python $(LOCK)
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

lock: $(STAMP)
	$(UV) pip compile --quiet pyproject.toml --extra dev --python-version 3.11 \
		--python-platform linux --generate-hashes --custom-compile-command "make lock" \
		$(LOCK_FLAGS) -o $(LOCK)

run: $(STAMP)
	$(BIN)/consulta run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench.$(BENCH) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
