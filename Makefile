# Bifrost for Rust — the two commands: `make run` and `make test`.

CARGO   ?= cargo
PROFILE ?= dev
VENV    ?= .venv
PYTHON  ?= python3
CONFIG  ?= config.json
PORT    ?= 8080
TARGET_DIR := target/$(if $(filter dev,$(PROFILE)),debug,$(PROFILE))

.PHONY: run build test test-rust test-python lint fmt bench clean

## run: the gateway on :8080 with the demo config (mock/* models answer offline)
run:
	$(CARGO) run --profile $(PROFILE) -p bifrost-transport-http --bin bifrost-http -- \
		-config $(CONFIG) -port $(PORT) -host 0.0.0.0 -log-style pretty

## build: every crate, binary and test target, once
build:
	$(CARGO) build --workspace --all-targets --locked

## test: lints, Rust unit + integration tests (nextest), Python SDK tests
test: lint build test-rust test-python

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

test-rust:
	$(CARGO) nextest run --workspace --locked --no-fail-fast

$(VENV)/.installed: tests/python/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	touch $@

test-python: $(VENV)/.installed build
	BIFROST_BIN_DIR=$(CURDIR)/target/debug $(VENV)/bin/pytest tests/python -q

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf $(VENV)
