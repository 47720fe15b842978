# Bifrost for Rust — the two commands: `make run` and `make test`.

CARGO   ?= cargo
PROFILE ?= dev
VENV    ?= .venv
PYTHON  ?= python3
CONFIG  ?= config.json
PORT    ?= 8080
GRPC_PORT ?= 50051
comma   := ,
# Where cargo puts binaries (honours CARGO_TARGET_DIR, as a shared CI target dir would set).
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)

.PHONY: run build test test-rust test-python lint fmt bench bench-soak clean

## run: the gateway on :8080 (gRPC on :50051) with the demo config (mock/* models answer offline)
run:
	$(CARGO) run --profile $(PROFILE) -p bifrost-transport-http --bin bifrost-http -- \
		-config $(CONFIG) -port $(PORT) -grpc-port $(GRPC_PORT) -host 0.0.0.0 -log-style pretty

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
	BIFROST_BIN_DIR=$(TARGET_DIR)/debug $(VENV)/bin/pytest tests/python -q

## bench: the benchmark suite (never part of `make test`); writes docs/benchmarks.md.
##   make bench PEERS=litellm     also measures the LiteLLM proxy side by side
##   make bench BENCH_ARGS="--duration 2 --soak 30"   a quicker run
##   make bench-soak              the long form (30-minute soak)
BENCH_VENV ?= .venv-bench
bench:
	$(CARGO) build --release --locked -p bifrost-transport-http -p bifrost-mock-upstream -p bifrost-bench
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || \
		(apt-get update -qq >/dev/null 2>&1; apt-get install -y -qq nginx-light >/dev/null 2>&1 || \
		 apt-get install -y -qq nginx >/dev/null 2>&1) || \
		echo "nginx unavailable: the static-upstream row is skipped"
ifneq ($(filter litellm,$(subst $(comma), ,$(PEERS))),)
	test -x $(BENCH_VENV)/bin/litellm || ($(PYTHON) -m venv $(BENCH_VENV) && \
		$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check 'litellm[proxy]')
endif
	$(TARGET_DIR)/release/bifrost-bench suite --out docs/benchmarks.md \
		--gateway-bin $(TARGET_DIR)/release/bifrost-http --mock-bin $(TARGET_DIR)/release/mock-upstream $(BENCH_ARGS) \
		$(if $(PEERS),--peers $(PEERS) --litellm-bin $(BENCH_VENV)/bin/litellm)

## bench-soak: the long form, with a 30-minute steady-load memory trend (RSS must stay flat).
bench-soak:
	$(MAKE) bench BENCH_ARGS="--soak 1800 $(BENCH_ARGS)"

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf $(VENV)
