# The README's two commands: `make demo` and `make test`. Everything else is a helper.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ARGS ?=
PYTEST_ARGS ?=

.PHONY: install demo test test-fast lint bench chaos kafka-up kafka-down images compose-smoke clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

## the whole pipeline on the embedded default: local broker + simulators, no tokens
demo: $(STAMP)
	$(BIN)/marketpipe demo $(ARGS)

## lint and types, then unit, property and integration tests (one real Kafka broker for the session)
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## the fast tier: lint and every test that needs no broker and no Docker (under a minute)
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 -m "not integration and not docker" $(PYTEST_ARGS)

## ruff (pyflakes, pycodestyle, isort, bugbear rules) and mypy over the package
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

## the broker fault suite on a local three-node cluster, full form, all six faults: a. 5 SIGKILLs of the
## raw partition's leader, b. 5 of the md.tick / order.commands / order.ledger leaders in turn, c. a 30 s
## SIGSTOP, d. a rolling restart, e. the ledger leader's SIGKILL during a /buy, f. a worker's SIGKILL during
## an election (CI runs a short form: tests/integration/test_fault_suite.py says which)
CHAOS_KILLS ?= 5
CHAOS_FAULTS ?= a,b,c,d,e,f
chaos: $(STAMP)
	MARKETPIPE_TEST_BROKER=local FAULT_SUITE_KILLS=$(CHAOS_KILLS) FAULT_SUITE_FAULTS=$(CHAOS_FAULTS) \
		$(BIN)/python -m pytest -q -s -m integration tests/integration/test_fault_suite.py $(PYTEST_ARGS)

## every benchmark in bench/, ratios side by side (bench/README.md); `make bench ARGS=latency` runs one
## Quix Streams (variant d) goes to its own directory: it pins an older confluent-kafka than ours
QUIX := $(VENV)/bench-quix
bench: $(STAMP)
	@test -d $(QUIX) || $(BIN)/python -m pip install -q --target $(QUIX) 'quixstreams>=3.0'
	BENCH_QUIX_PATH=$(abspath $(QUIX)) $(BIN)/python bench/run_all.py $(ARGS)

## the container images marketpipe/marketpipe:local and marketpipe/kafka:local (needs a Docker engine;
## official base images where a registry answers, else a Debian base made with debootstrap)
images:
	deploy/images.sh

## the whole docker-compose stack up, records on md.tick and order events seen, then down -v
compose-smoke: $(STAMP)
	$(BIN)/python -m pytest -m docker tests/deploy/docker/test_compose_smoke.py $(PYTEST_ARGS)

kafka-up: $(STAMP)
	$(BIN)/marketpipe kafka up

kafka-down: $(STAMP)
	$(BIN)/marketpipe kafka down

clean:
	-$(BIN)/marketpipe registry down
	-$(BIN)/marketpipe kafka down
	rm -rf .marketpipe .pytest_cache .hypothesis
