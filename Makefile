# Two commands for a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT
FLASK := $(BIN)/flask --app cms

.PHONY: run test install install-dev system-deps bench-deps migrate seed plugins bench clean help

help:
	@echo "make run    install, migrate, seed demo data, start Gunicorn on PORT (default 8000)"
	@echo "make test   install dev dependencies and run the whole test suite"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	  || { echo "Python 3.11 or newer is required (found $$($(PYTHON) --version))" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

# Debian's Chromium drives the browser tests (Playwright never downloads a browser here).
system-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  echo "Installing Debian's chromium for the browser tests"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

install-dev: $(VENV)/.installed-dev system-deps

migrate: install
	$(FLASK) db upgrade

seed: migrate
	$(FLASK) seed

# Install the built plugins in wasm/ and precompile their runtime artifacts.
plugins: migrate
	$(FLASK) plugins sync

run: seed plugins
	exec $(BIN)/gunicorn -c gunicorn.conf.py

test: install-dev
	$(BIN)/pytest

bench-deps:
	@command -v wrk >/dev/null 2>&1 || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get install -y -qq wrk >/dev/null; }

bench: install-dev bench-deps
	$(BIN)/python bench/http_bench.py --write

clean:
	rm -rf $(VENV) .pytest_cache
