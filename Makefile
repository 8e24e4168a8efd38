# The two commands a newcomer needs are `make demo` and `make test`; the rest serve them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test unit lint typecheck stack-up stack-down dev bench faults lock clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(BIN)/.installed

## make demo: start the local stack if needed and run the pipeline end to end, bounded
DAGSTER_HOME ?= $(CURDIR)/.kdp/dagster
demo: install
	$(BIN)/kdp stack up
	mkdir -p $(DAGSTER_HOME) && DAGSTER_HOME=$(DAGSTER_HOME) \
	  $(BIN)/dagster job execute -m orchestration.definitions -j provision_topics
	$(BIN)/kdp generate --count 200000 --rate 50000 --malformed-rate 0.05
	$(BIN)/kdp stream --until-caught-up --log-every 5
	@echo "--- processed-data, decoded through the registry:"
	$(BIN)/kdp tail processed-data -n 3
	@echo "--- dead letters, with their reasons:"
	$(BIN)/kdp tail user-login.dlq -n 3

## make test: unit and integration tests (starts the local stack for the session when none runs)
test: install
	$(BIN)/pytest -m "not faults"

unit: install
	$(BIN)/pytest tests/unit

## make faults: the fault-injection tests (about 10 min; root for the network partition); the full log
## goes to .kdp/faults.log, each scenario's figures are printed at the end
faults: install
	@mkdir -p .kdp
	@$(BIN)/pytest -m faults tests/faults -s -p no:cacheprovider > .kdp/faults.log 2>&1; status=$$?; \
		grep -ao '\[fault\].*' .kdp/faults.log; tail -n 1 .kdp/faults.log; exit $$status

lint: install
	$(BIN)/ruff check streaming orchestration localstack tests bench
	$(BIN)/ruff format --check streaming orchestration localstack tests bench

typecheck: install
	$(BIN)/mypy

stack-up: install
	$(BIN)/kdp stack up

stack-down: install
	$(BIN)/kdp stack down

## make dev: the local stack plus the Dagster UI and daemon on http://localhost:3000
dev: stack-up
	mkdir -p $(DAGSTER_HOME) && DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/dagster dev -w workspace.yaml

## make bench: every benchmark side by side, peers included, written to bench/RESULTS.md (11 min at load 8-20,
## 23 min at load 15-40, measured 2026-11-30); the first run on a machine also builds the Quix Streams peer's venv (2 min)
bench: stack-up
	$(BIN)/python -m bench.run

## make lock: re-pin every dependency after changing pyproject.toml
lock:
	rm -rf /tmp/kdp-lock && $(PYTHON) -m venv /tmp/kdp-lock
	/tmp/kdp-lock/bin/pip install --quiet --upgrade pip && /tmp/kdp-lock/bin/pip install --quiet '.[dev,deploy]'
	/tmp/kdp-lock/bin/pip freeze --exclude-editable | grep -v '^kafka-data-pipeline' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
