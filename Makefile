# The template's own tasks. `make test` and `make demo` are all a fresh machine needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR := build/demo

.PHONY: help setup test test-tooling test-template test-fast demo bench clean

help: ## List every target with what it does
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Baked projects install the release tooling from this checkout (offline, uncommitted changes too).
export RELEASE_TOOLING_PATH := $(CURDIR)/tooling

$(VENV)/.installed: tests/requirements.txt tooling/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --requirement tests/requirements.txt
	$(PY) -m pip install --quiet --editable tooling
	@touch $@

setup: $(VENV)/.installed ## Create .venv with the pinned template-testing tools and the release tooling

# The two suites side by side: the baked projects' checks spend much of their time waiting on the
# AWS provider's read-back polls, which the tooling's CPU-bound tests fill. Each one's output is
# printed whole when it ends (--output-sync).
test: setup ## Lint and test the release tooling once and run every template test, side by side, including baked projects' own `make lint test` (slow)
	$(MAKE) --no-print-directory -j2 --output-sync=target test-tooling test-template

test-tooling: setup ## Lint and test the release tooling (tooling/) alone
	cd tooling && ../$(VENV)/bin/ruff check . && ../$(VENV)/bin/ruff format --check . && ../$(PY) -m pytest

test-template: setup ## Run every template test alone, including baked projects' own `make lint test` (slow)
	$(PY) -m pytest tests

test-fast: setup ## Run the template tests that take seconds (skips the slow baked-project checks)
	$(PY) -m pytest tests -m "not slow"

demo: setup ## Bake a project into build/demo and run its pipeline locally: a release, then a rollback
	rm -rf $(DEMO_DIR)
	$(VENV)/bin/cookiecutter --no-input --output-dir $(DEMO_DIR) .
	$(MAKE) -C $(DEMO_DIR)/orders-service setup
	$(MAKE) -C $(DEMO_DIR)/orders-service local-demo

bench: setup ## Time the whole `make test` (median of RUNS, default 3) and a baked project's `make bench` (long: about an hour)
	$(PY) tests/bench.py --runs $(or $(RUNS),3)

clean: ## Remove the virtualenv and build outputs
	rm -rf $(VENV) build
