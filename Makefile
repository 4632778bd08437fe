# Everything a new machine needs, from Python 3.11 alone: `make run`, `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test browser promtool lint typecheck schema schema-check pytest bench bench-readmodels bench-stages bench-serial bench-retention fuzz clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/hookline serve --host 127.0.0.1 --port 8000

test: $(INSTALLED) browser promtool lint typecheck schema-check pytest

# The console's browser tests drive Debian's Chromium (Playwright uses the system executable).
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# deploy/prometheus/alerts.yml is checked and unit-tested with Debian's promtool (tests/test_deploy.py).
promtool:
	@test -x /usr/bin/promtool || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(INSTALLED)
	$(BIN)/mypy

schema: $(INSTALLED)
	$(BIN)/hookline schema > schema.graphql

schema-check: $(INSTALLED)
	@$(BIN)/hookline schema | diff -u schema.graphql - \
		|| (echo "schema.graphql is out of date: run 'make schema'" && exit 1)

pytest: $(INSTALLED)
	$(BIN)/pytest

bench: $(INSTALLED)
	$(BIN)/python -m bench.e2e $(BENCH_ARGS)

bench-readmodels: $(INSTALLED)
	$(BIN)/python -m bench.readmodels $(BENCH_ARGS)

bench-stages: $(INSTALLED)
	$(BIN)/python -m bench.stages $(BENCH_ARGS)

# Distributed serial share (serve's follower, the events table's lock) and the cluster cap it computes.
bench-serial: $(INSTALLED)
	$(BIN)/python -m bench.serial $(BENCH_ARGS)

bench-retention: $(INSTALLED)
	$(BIN)/python -m bench.retention $(BENCH_ARGS)

fuzz: $(INSTALLED)
	HOOKLINE_FUZZ_EXAMPLES=5000 $(BIN)/pytest -q tests/test_fuzz.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
