# One list of commands for people and CI (.ci/run calls these targets).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
KAFKA_PORT ?= 9092
KAFKA_RUN_DIR ?= .kafka/run
PYTEST_ARGS ?=

.PHONY: install test test-unit test-faults lint format demo bench kafka-up kafka-down clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed  ## virtual env with the package and its test tools

test: install  ## every test; starts its own Kafka broker (or uses $$KAFKA_BOOTSTRAP_SERVERS)
	$(PY) -m worker.kafka.localbroker fetch
	$(PY) -m pytest $(PYTEST_ARGS)

test-faults: install  ## only the fault suite (also part of make test); figures in fault-results.json
	$(PY) -m worker.kafka.localbroker fetch
	$(PY) -m pytest -m faults $(PYTEST_ARGS)

test-unit: install  ## the fast tier: no broker, no subprocess
	$(PY) -m pytest -m "not integration" $(PYTEST_ARGS)

lint: install  ## the quality gates CI runs
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict worker tests

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

demo: install  ## broker, sandbox, worker, generator and Prometheus (if installed); Ctrl-C stops all
	$(PY) -m worker.kafka.localbroker fetch
	$(PY) -m worker.commands.demo

bench: install  ## the benchmark: scenarios on a real broker and the sandbox (not part of make test)
	$(PY) -m worker.kafka.localbroker fetch
	$(PY) -m tests.bench.run --runs 3

kafka-up: install  ## a local Kafka broker in the background on 127.0.0.1:$(KAFKA_PORT)
	$(PY) -m worker.kafka.localbroker up --port $(KAFKA_PORT) --run-dir $(KAFKA_RUN_DIR)

kafka-down:  ## stop the broker kafka-up started
	$(PY) -m worker.kafka.localbroker down --run-dir $(KAFKA_RUN_DIR)

clean:
	rm -rf .kafka/run .pytest_cache .mypy_cache .ruff_cache .hypothesis
