# The two commands a newcomer needs are `make demo` and `make test`; the rest serve them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test unit lint typecheck stack-up stack-down dev bench bench-planner faults soak chaos lock clean

# The install's own output goes to $(VENV)/install.log, shown only when it fails.
# Then the converter's native kernel (native/: Rust through PyO3, built by maturin, pinned in native/pyproject.toml
# and native/Cargo.lock; about 40 s): optional, built only when a Rust toolchain is found (cargo on PATH or in
# ~/.cargo/bin); without one, or if its build fails, the converter uses the pure-Python path (streaming/conversion/native_path.py).
NATIVE_SOURCES := native/pyproject.toml native/Cargo.toml native/Cargo.lock $(wildcard native/src/*.rs)
$(BIN)/.installed: pyproject.toml constraints.txt $(NATIVE_SOURCES)
	@echo "installing the project into $(VENV) (log: $(VENV)/install.log)"
	@$(PYTHON) -m venv $(VENV)
	@{ $(BIN)/pip install --upgrade pip && $(BIN)/pip install -c constraints.txt -e '.[dev,local]'; } \
		> $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@$(BIN)/pip uninstall --yes --quiet kdp-native > /dev/null 2>&1; export PATH="$$PATH:$$HOME/.cargo/bin"; \
	if ! command -v cargo > /dev/null; then \
		echo "no Rust toolchain (cargo): the converter will use its pure-Python path"; \
	elif $(BIN)/pip install ./native > $(VENV)/native.log 2>&1; then \
		echo "built the converter's native kernel (log: $(VENV)/native.log)"; \
	else \
		echo "the native kernel did not build (log: $(VENV)/native.log): the converter will use its pure-Python path"; \
	fi
	@touch $@

install: $(BIN)/.installed

## make demo: start the local stack if needed and run the pipeline end to end, bounded; one line a step,
## progress bars, a summary. `make demo V=1` shows every log line and the Dagster run's output.
## Dagster's instance (runs, sensor cursors) lives in DAGSTER_HOME; telemetry off.
DAGSTER_HOME ?= $(CURDIR)/.kdp/dagster
$(DAGSTER_HOME)/dagster.yaml:
	@mkdir -p $(DAGSTER_HOME) && printf 'telemetry:\n  enabled: false\n' > $@

demo: install $(DAGSTER_HOME)/dagster.yaml
	@DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/kdp $(if $(V),-v) demo

## make test: unit and integration tests (starts the local stack for the session when none runs)
test: install
	$(BIN)/pytest -m "not faults"

unit: install
	$(BIN)/pytest tests/unit

## make faults: the fault-injection tests (about 26 min measured under load; root for the network partition); the full log
## goes to .kdp/faults.log, each scenario's figures are printed at the end
faults: install
	@mkdir -p .kdp
	@$(BIN)/pytest -m faults tests/faults -s -p no:cacheprovider > .kdp/faults.log 2>&1; status=$$?; \
		grep -ao '\[fault\].*' .kdp/faults.log; tail -n 1 .kdp/faults.log; exit $$status

## make soak: SOAK_RUNS runs (3) of 30 min of exactly-once under load, a converter kill -9 every 5 min, the group's
## coordinator restarted; each run's report in docs/soak/run-N/, and docs/soak.md tables them all.
## Quick check of the harness: make soak SOAK_RUNS=1 SOAK_MINUTES=4 SOAK_OUT=.kdp
SOAK_MINUTES ?= 30
SOAK_RUNS ?= 3
SOAK_OUT ?= docs
soak: install
	@mkdir -p .kdp; rm -rf $(SOAK_OUT)/soak; status=0; for run in $$(seq 1 $(SOAK_RUNS)); do \
		KDP_SOAK_MINUTES=$(SOAK_MINUTES) KDP_SOAK_OUT=$(SOAK_OUT)/soak/run-$$run KDP_SOAK_COMMIT=$$(git rev-parse --short HEAD) \
			$(BIN)/pytest -m soak tests/faults/soak.py -s -p no:cacheprovider -o timeout=0 > .kdp/soak-$$run.log 2>&1 \
			|| status=1; grep -ao '\[fault\].*' .kdp/soak-$$run.log; tail -n 1 .kdp/soak-$$run.log; \
	done; $(BIN)/python tests/faults/soak_runs.py $(SOAK_OUT) || status=1; exit $$status

## make chaos: 30 min of exactly-once at 1,000 events/s under a seeded random schedule of faults, overlapping (root:
## a network namespace); writes docs/chaos.md and docs/img/chaos.png. Replay a run: make chaos CHAOS_SEED=<its seed>
CHAOS_MINUTES ?= 30
CHAOS_SEED ?=
CHAOS_OUT ?= docs
chaos: install
	@mkdir -p .kdp
	@KDP_CHAOS_MINUTES=$(CHAOS_MINUTES) KDP_CHAOS_SEED=$(CHAOS_SEED) KDP_CHAOS_OUT=$(CHAOS_OUT) $(BIN)/pytest -m chaos \
		tests/faults/chaos.py -s -p no:cacheprovider -o timeout=0 > .kdp/chaos.log 2>&1; status=$$?; \
		grep -ao '\[chaos\] seed [0-9].*\|^\[fault\].*' .kdp/chaos.log; tail -n 1 .kdp/chaos.log; exit $$status

lint: install
	$(BIN)/ruff check kdp streaming orchestration tests bench
	$(BIN)/ruff format --check kdp streaming orchestration tests bench

typecheck: install
	$(BIN)/mypy

stack-up: install
	$(BIN)/kdp stack up

stack-down: install
	$(BIN)/kdp stack down

## make dev: the local stack plus the Dagster UI and daemon on http://localhost:3000: `dagster dev` loads
## workspace.yaml (`dg dev` loads the same code location through pyproject's [tool.dg]). The resources read
## KDP_BOOTSTRAP and KDP_REGISTRY_URL: those `kdp stack up` prints, unless they are set already.
dev: install $(DAGSTER_HOME)/dagster.yaml
	@set -o pipefail; stack_env="$$($(BIN)/kdp stack up | sed -n 's/^  export //p')" || exit 1; \
	for pair in $$stack_env; do name="$${pair%%=*}"; [ -n "$${!name:-}" ] || export "$$pair"; done; \
	DAGSTER_HOME=$(DAGSTER_HOME) exec $(BIN)/dagster dev -w workspace.yaml

## make bench: every benchmark side by side, peers included, written to bench/RESULTS.md (11 min at load 8-20,
## 23 min at load 15-40, measured 2026-11-30), plus the hourly insights' section (`python -m bench.insights` on its own:
## about 5 min, most of it writing the 4 M records it reads); the first run on a machine also builds the Quix Streams peer's venv (2 min)
bench: stack-up
	$(BIN)/python -m bench.run

## make lock: re-pin every dependency after changing pyproject.toml
lock:
	rm -rf /tmp/kdp-lock && $(PYTHON) -m venv /tmp/kdp-lock
	/tmp/kdp-lock/bin/pip install --quiet --upgrade pip && /tmp/kdp-lock/bin/pip install --quiet '.[dev,deploy,local]'
	/tmp/kdp-lock/bin/pip freeze --exclude-editable | grep -v '^kafka-data-pipeline' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

## make bench-planner: the reassignment planner at 10,000 partitions, RF 3, 30 brokers in 3 racks (time and bound gap)
bench-planner: install
	$(BIN)/python -m bench.planner
