# Wayline: two commands on a fresh Debian/Ubuntu machine.
#   make demo   system packages (mosquitto, gcc, python3-dev) + venv + install + `wayline demo`
#   make test   system packages (mosquitto, chromium, gcc, python3-dev) + venv + whole suite + ruff
# Also: make lint | bench [BENCH_ARGS=--quick] | format | clean | distclean
# Every target is idempotent; pip reruns only when pyproject.toml or the C source of the
# compiled local search changes (stamp files).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test
MAKEFLAGS += --no-print-directory

VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
BENCH_ARGS ?=

# First python3.x >= 3.11 on PATH.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && { command -v $$p; break; }; done)

# sudo only when not root and sudo exists.
SUDO := $(shell [ "$$(id -u)" = 0 ] || ! command -v sudo >/dev/null 2>&1 || echo sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends

STAMP_BASE := $(VENV)/.wayline-base.stamp
STAMP_TEST := $(VENV)/.wayline-test.stamp
STAMP_BENCH := $(VENV)/.wayline-bench.stamp

.PHONY: demo test lint bench format clean distclean system-deps broker-deps build-deps

demo: broker-deps $(STAMP_BASE)
	$(BIN)/wayline demo

test: system-deps $(STAMP_TEST)
	@status=0; \
	$(BIN)/pytest || status=$$?; \
	$(BIN)/ruff check . || status=$$?; \
	exit $$status

lint: $(STAMP_TEST)
	$(BIN)/ruff check .
	$(BIN)/mypy --strict protocol

# Benchmarks print figures and never fail on a time. BENCH_ARGS=--quick for a short run.
bench: system-deps $(STAMP_BENCH)
	@for module in $$(ls bench/*.py | xargs -n1 basename | sed 's/\.py$$//' \
			| grep -v -x -e __init__ -e conftest); do \
		echo "== bench.$$module $(BENCH_ARGS)"; \
		$(BIN)/python -m bench.$$module $(BENCH_ARGS); \
	done

format: $(STAMP_TEST)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The demo starts its own broker: mosquitto from apt when missing.
broker-deps:
	@if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then \
		echo "installing mosquitto with apt-get"; \
		$(SUDO) apt-get update -qq; \
		$(APT_INSTALL) mosquitto; \
	fi

# mosquitto and chromium from apt when missing (/usr/sbin is not always on PATH).
system-deps:
	@missing=""; \
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing with apt-get"; \
		$(SUDO) apt-get update -qq; \
		$(APT_INSTALL) $$missing; \
	fi

# A C compiler and the Python headers, for the compiled local search
# (edge/sequencer/_lsearch.c), from apt when missing.
build-deps: | $(BIN)/python
	@missing=""; \
	command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || missing="gcc"; \
	inc=$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("include"))'); \
	dev=$$($(BIN)/python -c 'import sys; print("python3.%d-dev" % sys.version_info[1])'); \
	[ -f "$$inc/Python.h" ] || missing="$$missing $$dev"; \
	if [ -n "$$missing" ]; then \
		echo "installing $$missing with apt-get"; \
		$(SUDO) apt-get update -qq; \
		$(APT_INSTALL) $$missing || $(APT_INSTALL) $${missing/$$dev/python3-dev}; \
	fi

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required (python3.11 -m venv)" >&2; exit 1; }
	@if ! $(PYTHON) -c 'import ensurepip' 2>/dev/null; then \
		echo "installing python3-venv with apt-get"; \
		$(SUDO) apt-get update -qq; \
		$(APT_INSTALL) python3-venv; \
	fi
	@echo "creating $(VENV) with $(PYTHON)"
	@$(PYTHON) -m venv $(VENV)

$(STAMP_BASE): pyproject.toml edge/sequencer/_lsearch.c | $(BIN)/python build-deps
	@echo "installing wayline[demo] into $(VENV)"
	@$(PIP) install -e '.[demo]'
	@touch $@

$(STAMP_TEST): pyproject.toml edge/sequencer/_lsearch.c | $(BIN)/python build-deps
	@echo "installing wayline[test] into $(VENV)"
	@$(PIP) install -e '.[test]'
	@touch $@

$(STAMP_BENCH): pyproject.toml edge/sequencer/_lsearch.c | $(BIN)/python build-deps
	@echo "installing wayline[test,bench] into $(VENV)"
	@$(PIP) install -e '.[test,bench]'
	@touch $@

clean:
	@rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build report *.egg-info
	@find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	@rm -f $(VENV)/.wayline-*.stamp

distclean: clean
	@rm -rf $(VENV)
