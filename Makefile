# The README's two commands: `make demo` and `make test`. Everything else is a helper.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ARGS ?=
PYTEST_ARGS ?=

.PHONY: install demo test bench kafka-up kafka-down clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

## the whole pipeline on the embedded default: local broker + simulators, no tokens
demo: $(STAMP)
	$(BIN)/marketpipe demo $(ARGS)

## unit, property and integration tests (a real Kafka broker is started once for the session)
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## every benchmark in bench/, ratios side by side (bench/README.md); `make bench ARGS=latency` runs one
## Quix Streams (variant d) goes to its own directory: it pins an older confluent-kafka than ours
QUIX := $(VENV)/bench-quix
bench: $(STAMP)
	@test -d $(QUIX) || $(BIN)/python -m pip install -q --target $(QUIX) 'quixstreams>=3.0'
	BENCH_QUIX_PATH=$(abspath $(QUIX)) $(BIN)/python bench/run_all.py $(ARGS)

kafka-up: $(STAMP)
	$(BIN)/marketpipe kafka up

kafka-down: $(STAMP)
	$(BIN)/marketpipe kafka down

clean:
	-$(BIN)/marketpipe kafka down
	rm -rf .marketpipe .pytest_cache .hypothesis
