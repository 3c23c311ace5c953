# Everything runs from a virtualenv this Makefile creates: a fresh machine needs only python3.
PYTHON ?= python3
VENV ?= .venv
AIRFLOW_VERSION ?= 3.3.2
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__LOAD_EXAMPLES ?= False

.PHONY: install test unit demo e2e matrix bench clean

$(VENV)/.installed-$(AIRFLOW_VERSION): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e ".[test]"
	rm -f $(VENV)/.installed-*
	touch $@

install: $(VENV)/.installed-$(AIRFLOW_VERSION)

## The whole suite: unit, emulator (real sockets), real Airflow (dag.test and end to end).
test: install
	$(PY) -m pytest tests $(PYTEST_ARGS)

## The main job on the embedded emulator, in real Airflow.
demo: install
	$(PY) scripts/demo.py

clean:
	rm -rf $(VENV) .airflow .pytest_cache build *.egg-info
