# Two commands for a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT
FLASK := $(BIN)/flask --app cms

.PHONY: run test install install-dev system-deps bench-deps migrate seed plugins bench replay clean help

help:
	@echo "make run    install, migrate, seed demo data, start Gunicorn on PORT (default 8000)"
	@echo "make test   install dev dependencies and run the whole test suite"
	@echo "make replay the 10 April incident replayed under load (about 12 min); writes docs/incident-replay.md"
	@echo "make bench  plugin-call, HTTP, flag-propagation and page-cost benchmarks and a short replay; rewrites docs/benchmarks.md"

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

# Debian's Chromium drives the browser tests (Playwright never downloads a browser here); Debian's
# rustc, cargo and wasm32 standard library build the Rust guest crate and its tests.
SYSTEM_PACKAGES := chromium rustc cargo libstd-rust-dev-wasm32
system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian's" $$missing "for the tests"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# axe-core (pinned, from the npm registry) checks the pages' accessibility in the browser tests.
AXE_VERSION := 4.10.3
AXE := .cache/axe/node_modules/axe-core/axe.min.js
$(AXE):
	@command -v npm >/dev/null 2>&1 || { echo "npm (Node.js) is needed for axe-core: apt-get install nodejs npm" >&2; exit 1; }
	npm install --silent --no-audit --no-fund --prefix .cache/axe axe-core@$(AXE_VERSION) >/dev/null

install-dev: $(VENV)/.installed-dev system-deps $(AXE)

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

# Each writes its own block of docs/benchmarks.md (http_bench.py rewrites the top and keeps the
# rest); all need PostgreSQL on 127.0.0.1, the replay and flag benchmarks also redis-server.
bench: install-dev bench-deps
	$(BIN)/python bench/plugin_call.py --write
	$(BIN)/python bench/http_bench.py --write
	$(BIN)/python bench/flag_propagation.py --write
	$(BIN)/python bench/page_cost.py --write
	$(BIN)/python bench/incident_replay.py --short --write

# The whole scenario with the control run; `make replay REPLAY_ARGS=--short` for the 4-minute one.
replay: install-dev
	$(BIN)/python bench/incident_replay.py --write $(REPLAY_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
