"""Real Airflow in-process: ``dag.test()`` needs a metadata database, migrated once per session."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"


@pytest.fixture(scope="session")
def airflow_db():
    """``airflow db migrate`` in the test AIRFLOW_HOME (set by tests/conftest.py)."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return os.environ["AIRFLOW_HOME"]


@pytest.fixture
def load_example_dag(airflow_db, monkeypatch):
    """Import an example DAG file afresh (its module-level settings read the environment) and return its DAG.

    ``dag.test()`` writes the DAGs of the dags folder to the database first, so the
    dags folder is the examples' folder.
    """
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(EXAMPLE_DAGS))
    import airflow

    if airflow.__version__.startswith("2."):  # Airflow 2 checks a sensor's executor; SQLite needs this one
        monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "SequentialExecutor")
    # Airflow reads the setting once, when airflow.settings is first imported; when an earlier
    # test module imported it, the local DAG bundle would look in the cached folder.
    settings = sys.modules.get("airflow.settings")
    if settings is not None:
        monkeypatch.setattr(settings, "DAGS_FOLDER", str(EXAMPLE_DAGS))

    def load(name: str):
        path = EXAMPLE_DAGS / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"example_dag_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        dags = [v for v in vars(module).values() if type(v).__name__ == "DAG"]
        assert len(dags) == 1, dags
        return dags[0]

    return load


@pytest.fixture
def emulator_connection(fast_emulator, monkeypatch):
    """``opsera_default`` pointing at an emulator running 200x real time, polled every second."""
    monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", fast_emulator.connection_json("admin"))
    monkeypatch.setenv("OPSERA_EXAMPLE_POLL_INTERVAL", "1")
    return fast_emulator
