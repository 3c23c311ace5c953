"""Test-wide setup: an isolated AIRFLOW_HOME, set before Airflow is imported anywhere."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="opsera-airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def emulator_server():
    """One emulator on a manual clock for the session: time moves only by ``advance()``."""
    from airflow_provider_opsera.emulator import OpseraEmulator

    with OpseraEmulator(clock="manual") as emu:
        yield emu


@pytest.fixture
def emulator(emulator_server):
    """The session's emulator, back at its seed state with no faults and zero counts."""
    emulator_server.reset()
    yield emulator_server


@pytest.fixture
def opsera_conn(emulator, monkeypatch):
    """``opsera_default`` pointing at the emulator with the admin token, through the environment."""
    monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", emulator.connection_json("admin"))
    return emulator


@pytest.fixture
def fast_emulator():
    """An emulator whose clock runs 200x real time, for waits that happen in Airflow's own loop."""
    from airflow_provider_opsera.emulator import OpseraEmulator

    with OpseraEmulator(time_scale=200.0) as emu:
        yield emu


@pytest.fixture
def task_log(caplog, capsys):
    """What the code under test logged (Airflow 3 logs through structlog to the console, 2 through logging)."""
    from tests.unit.pipeline_fakes import TaskLog

    return TaskLog(caplog, capsys)


@pytest.fixture
def captured(task_log):
    """A callable answering everything logged or printed so far, as one text."""
    return task_log.text
