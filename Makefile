# marketing_signals — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
export DBT_PROFILES_DIR := $(CURDIR)

DEMO_CUSTOMERS ?= 100000
DEMO_DIR       ?= data/demo
DEMO_DB        ?= data/marketing_signals.duckdb
DEMO_WORM_DIR  ?= data/worm
SEED           ?= 42
BENCH          ?= capture
BENCH_CUSTOMERS ?= 1000000

RETAIL_DIR     ?= data/online_retail
RETAIL_AS_OF   ?= 2011-09-10
RETAIL_VARS    ?= {"marketing_signals__event_time_floor": "2000-01-01", "marketing_signals__as_of": "$(RETAIL_AS_OF)", "marketing_signals__streams_enabled": false}

.PHONY: help venv demo build verify test test-python test-dbt test-snowflake bench example-online-retail clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed  ## create .venv and install the package with its pinned dependencies

demo: venv  ## generate demo data, dbt build on DuckDB, print what was built
	$(BIN)/marketing-signals generate --customers $(DEMO_CUSTOMERS) --seed $(SEED) --out $(DEMO_DIR)
	rm -f $(DEMO_DB)  # new data, new database: membership history is forward-only
	$(MAKE) --no-print-directory build
	$(BIN)/marketing-signals summary --duckdb $(DEMO_DB)
	$(MAKE) --no-print-directory verify

# The demo replays one earlier refresh (DEMO_HISTORY_DAYS before the end of the data) before the
# current one, so membership history, transitions and calibrated confidence have history to
# show. Only into a new database (history is forward-only); DEMO_HISTORY_DAYS=0 skips it.
DEMO_HISTORY_DAYS ?= 7
DEMO_ENV = MARKETING_SIGNALS_RAW_DIR=$(DEMO_DIR)/raw MARKETING_SIGNALS_TRUTH_DIR=$(DEMO_DIR)/truth \
	MARKETING_SIGNALS_DUCKDB_PATH=$(DEMO_DB) MARKETING_SIGNALS_WORM_DIR=$(DEMO_WORM_DIR)

build: venv  ## dbt build against the demo data already generated (an earlier refresh, then the current one)
	mkdir -p $(dir $(DEMO_DB))
	@if [ ! -e "$(DEMO_DB)" ]; then rm -rf $(DEMO_WORM_DIR); fi  # a new database starts a new ledger
	@if [ "$(DEMO_HISTORY_DAYS)" != "0" ] && [ ! -e "$(DEMO_DB)" ]; then \
		as_of=$$($(BIN)/python -c "import json, datetime as d; end = d.date.fromisoformat(json.load(open('$(DEMO_DIR)/manifest.json'))['end_date']); print(end - d.timedelta(days=$(DEMO_HISTORY_DAYS)))"); \
		echo "refresh 1 of 2: as_of $$as_of"; \
		$(DEMO_ENV) $(BIN)/dbt build --vars "{\"marketing_signals__as_of\": \"$$as_of\"}" || exit 1; \
		echo "refresh 2 of 2: as_of = the latest event"; \
	fi
	$(DEMO_ENV) $(BIN)/dbt build

verify: venv  ## check the demo's attestation ledger: hash chain, Merkle roots, signatures (public key only), WORM files
	$(BIN)/marketing-signals verify --duckdb $(DEMO_DB) --worm-dir $(DEMO_WORM_DIR)

# make test runs engine and dbt tests in one pytest session on TEST_WORKERS pytest-xdist workers;
# a module (or the modules sharing a session build) stays on one worker (conftest.py groups
# them, --dist loadgroup). TEST_WORKERS=0 runs serially.
TEST_WORKERS ?= 2
XDIST = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadgroup)

test: venv  ## every test: engine (pytest) and the dbt project (builds, data + unit tests)
	$(BIN)/python -m pytest $(XDIST) --durations=25

test-python: venv  ## engine unit tests
	$(BIN)/python -m pytest -m "not dbt" --durations=10

test-dbt: venv  ## end-to-end dbt builds on small generated data (every dbt test included)
	$(BIN)/python -m pytest -m dbt --durations=15

# the Snowflake path: dbt-snowflake on fakesnow (Python model outputs stand in from a DuckDB build
# of the same demo), sqlglot, and every Python model under a Snowpark local session vs DuckDB
test-snowflake: venv  ## SQL models and tests on fakesnow; SQL parses as Snowflake; Python models on Snowpark = DuckDB
	$(BIN)/python -m pytest -m snowflake $(XDIST) --durations=10

bench: venv  ## named benchmark at a size: make bench BENCH=capture BENCH_CUSTOMERS=1000000
	$(BIN)/marketing-signals bench $(BENCH) --customers $(BENCH_CUSTOMERS) $(if $(BENCH_DATA),--data $(BENCH_DATA))

example-online-retail: venv  ## worked example: UCI Online Retail mapped to events, then dbt build on it
	mkdir -p $(RETAIL_DIR)
	MARKETING_SIGNALS_RAW_DIR= MARKETING_SIGNALS_DUCKDB_PATH=$(RETAIL_DIR)/marketing_signals.duckdb \
		$(BIN)/dbt compile --quiet --select online_retail_as_events --vars '$(RETAIL_VARS)'
	$(BIN)/marketing-signals sql-to-parquet --sql target/compiled/marketing_signals/analyses/online_retail_as_events.sql \
		--out $(RETAIL_DIR)/raw/events
	MARKETING_SIGNALS_RAW_DIR=$(RETAIL_DIR)/raw MARKETING_SIGNALS_DUCKDB_PATH=$(RETAIL_DIR)/marketing_signals.duckdb \
		$(BIN)/dbt build --vars '$(RETAIL_VARS)'
	$(BIN)/marketing-signals summary --duckdb $(RETAIL_DIR)/marketing_signals.duckdb
	$(BIN)/marketing-signals cohort-backtest --duckdb $(RETAIL_DIR)/marketing_signals.duckdb --horizon-days 90 \
		--json $(RETAIL_DIR)/backtest.json

clean:  ## remove build outputs and generated data (keeps .venv)
	rm -rf target logs data bench_results
