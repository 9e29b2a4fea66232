# The two commands of the README: `make demo` and `make test`. Each sets up what it needs first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-long setup setup-dev system lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[dev]"
	touch $@ $(VENV)/.installed

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

## demo: set up and run the main job (train on the bundled salary survey, table, report)
demo: $(VENV)/.installed
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/mlengineer demo

## system: the Debian packages and services the tests use (PostgreSQL, Chromium, wrk)
system:
	scripts/setup-system.sh

## test: set up with the dev extras and the services, then run the test suite
test: $(VENV)/.installed-dev system
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/python -m pytest

## test-long: the Spark tests that take minutes (a standalone cluster: training, a worker killed mid-job; CLI sessions) and slow end-to-end checks kept out of make test's 30 minutes
test-long: $(VENV)/.installed-dev system
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/python -m pytest -m long

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src

clean:
	rm -rf demo-output mlruns.db mlartifacts .pytest_cache
