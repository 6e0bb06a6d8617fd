# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
# Test processes (pytest-xdist): each runs whole files, with its own databases, Redis namespaces and ports.
TEST_WORKERS ?= 2

.PHONY: run test lint unit clean bench faults

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(STAMP)

## run: create .venv, install, migrate and start everything on embedded defaults (SQLite + embedded Redis)
run: $(STAMP)
	$(BIN)/dispatcher up

## test: create .venv with dev extras, then ruff, mypy, the layering contract and pytest
test: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo --no-cache
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

## unit: only the fast tests that need no services
unit: $(DEV_STAMP)
	$(BIN)/pytest tests/unit -q

bench: $(DEV_STAMP)
	$(BIN)/python -m bench

## faults: the fault suite's long variant (10,000 events per scenario; docs/RELIABILITY.md)
faults: $(DEV_STAMP)
	DISPATCH_FAULTS=long $(BIN)/pytest tests/faults
	$(BIN)/python -m tests.faults.report

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
