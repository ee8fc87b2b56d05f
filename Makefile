# Two commands on a fresh Debian/Ubuntu machine: `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages: what `make run` needs, and what the tests need on top of it.
RUN_PACKAGES := softhsm2 openssl ca-certificates
# fonts-noto-cjk: without a Japanese font, Chromium's screenshots show boxes for every kana.
TEST_PACKAGES := $(RUN_PACKAGES) opensc curl chromium openjdk-17-jre-headless nginx-light \
	fonts-noto-cjk
# wrk loads the OCSP responder from a process of its own (bench/ocsp.py).
BENCH_PACKAGES := $(TEST_PACKAGES) wrk

.PHONY: run test lint bench system-run system-test system-bench clean-venv

run: system-run $(BIN)/.installed-run
	$(BIN)/shomei init
	$(BIN)/shomei serve

test: system-test $(BIN)/.installed-dev lint
	$(BIN)/pytest

# Benchmarks are run by hand and never by `make test`; figures go to bench/results/.
# `python -m bench` runs every benchmark module of bench/, each in a process of its own.
bench: system-bench $(BIN)/.installed-dev
	$(BIN)/python -m bench

lint: $(BIN)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Install only the packages that are missing, so a second run touches nothing.
define apt_ensure
	@missing=""; \
	for package in $(1); do dpkg -s $$package >/dev/null 2>&1 || missing="$$missing $$package"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { \
		echo "installing python3-venv"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv python3-pip; }
endef

system-run:
	$(call apt_ensure,$(RUN_PACKAGES))

system-test:
	$(call apt_ensure,$(TEST_PACKAGES))

system-bench:
	$(call apt_ensure,$(BENCH_PACKAGES))

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(BIN)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	@touch $@

$(BIN)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[dev]"
	@touch $@ $(BIN)/.installed-run

clean-venv:
	rm -rf $(VENV)
