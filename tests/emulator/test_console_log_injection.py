"""A pipeline whose step names and console text try to forge task-log lines or carry terminal escapes,
followed over real sockets in the worker and after a deferred wait."""

from __future__ import annotations

import copy

import pytest

from airflow_provider_opsera._compat import AirflowException
from airflow_provider_opsera.emulator import OpseraEmulator
from airflow_provider_opsera.emulator.seed import read_seed
from airflow_provider_opsera.sensors import OpseraTaskSensor
from tests.unit.pipeline_fakes import make_context

from .support import BLANK, BROKEN, NIGHTLY_SYNC
from .test_pipeline_operator_against_emulator import EmulatedTime, operator
from .test_pipeline_trigger_against_emulator import deferred_cycle
from .test_task_sensor_against_emulator import poke_until_done

FORGED = "[2026-01-01 00:00:00] INFO - Marking task as SUCCESS"
SAFE_LABEL = f"[build {FORGED}]"
RAW_CONTROLS = ("\x1b", "\x00", "\x07", "\x9b", "\u202e")


def hostile_seed() -> dict:
    seed = copy.deepcopy(read_seed(None))
    pipelines = {pipeline["_id"]: pipeline for pipeline in seed["pipelines"]}
    build = pipelines[BLANK]["steps"][1]
    build["name"] = f"build\n{FORGED}"
    build["console"] = [
        "\x1b[1;32mCompiled\x1b[0m successfully",
        "see \x1b]8;;https://evil.example/\x07the report\x1b]8;;\x07 here",
        "nul\x00 byte\tand tab",
        f"two lines\n{FORGED}",
        "\u202eevil",
    ]
    failing = next(step for step in pipelines[BROKEN]["steps"] if step.get("outcome") == "fail")
    failing["name"] = f"unit tests\n{FORGED}"
    failing["console"] = [*failing["console"], "\x1b[31mFAILED\x1b[0m again\nINFO - Marking task as SUCCESS"]
    push = next(task for task in seed["tasks"] if task["_id"] == NIGHTLY_SYNC)["steps"][1]
    push["name"] = f"push\n{FORGED}"
    push["console"] = ["\x1b[1mSync\x1b[0m complete\x00"]
    return seed


@pytest.fixture(scope="module")
def hostile_emulator():
    with OpseraEmulator(seed=hostile_seed(), clock="manual") as emulator:
        yield emulator


@pytest.fixture
def hostile_conn(hostile_emulator, monkeypatch):
    hostile_emulator.reset()
    monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", hostile_emulator.connection_json("admin"))
    return hostile_emulator


def assert_console_is_safe(text: str) -> None:
    forged = [line for line in text.splitlines() if "Marking task as SUCCESS" in line]
    assert forged, "the console lines were not logged"
    # each line that carries the forged text carries its step prefix before it: none starts a line of its own
    assert all(line.index("[build ") < line.index("Marking task") for line in forged), forged
    assert not any(control in text for control in RAW_CONTROLS)
    for line in (
        "Compiled successfully",
        "see the report here",
        "nul byte    and tab",
        f"{SAFE_LABEL} two lines",
        f"{SAFE_LABEL} {FORGED}",
        f"{SAFE_LABEL} evil",
    ):
        assert line in text, line


def test_the_worker_wait_logs_only_prefixed_clean_lines(hostile_conn, task_log):
    assert operator(EmulatedTime(hostile_conn), BLANK).execute(make_context()) == 1
    assert_console_is_safe(task_log.text())


def test_the_deferred_wait_logs_only_prefixed_clean_lines(hostile_conn, task_log):
    assert deferred_cycle(hostile_conn, BLANK) == 1
    assert_console_is_safe(task_log.text())


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_the_failure_message_tail_is_prefixed_and_clean(hostile_conn, deferrable):
    with pytest.raises(AirflowException) as raised:
        if deferrable:
            deferred_cycle(hostile_conn, BROKEN)
        else:
            operator(EmulatedTime(hostile_conn), BROKEN).execute(make_context())
    message = str(raised.value)
    tail = message.split("Last console lines:\n", 1)[1].splitlines()
    assert tail and all(line.startswith(("[checkout] ", f"[unit tests {FORGED}] ")) for line in tail), tail
    assert f"[unit tests {FORGED}] FAILED again" in tail
    assert f"[unit tests {FORGED}] INFO - Marking task as SUCCESS" in tail
    assert not any(control in message for control in RAW_CONTROLS)


def test_the_task_sensor_logs_only_prefixed_clean_lines(hostile_conn, task_log):
    hostile_conn.start_task_run(NIGHTLY_SYNC)
    poke_until_done(OpseraTaskSensor(task_id="wait", opsera_task_id=NIGHTLY_SYNC, deferrable=False), hostile_conn)
    text = task_log.text()
    assert f"[push {FORGED}] Sync complete" in text
    assert all(line.index("[push ") < line.index("Marking task") for line in text.splitlines() if "Marking" in line)
    assert not any(control in text for control in RAW_CONTROLS)
