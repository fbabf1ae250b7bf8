# crowdfix: `make demo` runs the whole system, `make test` runs every check.
# Each target creates/updates its own virtual environment in .venv first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv demo test lint fmt typecheck unit bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "crowdfix needs Python 3.11+; run: make PYTHON=python3.11 ...")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## Create or update the virtual environment

demo: $(STAMP) ## Run broker, cloud and simulated devices on embedded defaults (Ctrl-C stops)
	$(BIN)/crowdfix demo

lint: $(STAMP) ## ruff (lint + import order + format check)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP) ## Format and fix what ruff can
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP) ## mypy on the packages
	$(BIN)/mypy

# Two test processes; the tests that run brokers, workers and browsers and wait on them are in
# one xdist group, so no two of them starve each other of the cores (TEST_JOBS=0: one process).
TEST_JOBS ?= 2

unit: $(STAMP) ## pytest (on TEST_JOBS processes, default 2)
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadgroup

test: lint typecheck unit ## Everything CI runs

bench: $(STAMP) ## Benchmarks (prints figures beside their baselines)
	$(BIN)/python -m bench

clean: ## Remove the virtual environment and demo state
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
