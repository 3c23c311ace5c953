"""The approval gate example through ``dag.test()`` (Airflow 3.1+): the request it makes, a gate decided in Opsera.

``dag.test()`` runs triggers in-process without the triggerer's API, so a trigger cannot read
the answer to a request there: an answer given in Airflow is tested in tests/e2e, through
Airflow's REST API. Here the gate is decided in Opsera, through the emulator's admin route, as
a person in Opsera's own UI would, once the request shows in Airflow's database.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time

import pytest

GATE_TASK = "approve_release"
DAG_ID = "example_opsera_approval_gate"
RELEASE_WITH_APPROVAL = "5fd56d90979ee048ee660626"


@pytest.fixture(autouse=True)
def needs_human_in_the_loop():
    pytest.importorskip("airflow.sdk.execution_time.hitl", reason="human-in-the-loop needs Airflow 3.1+")


def _requests(database: str) -> dict[str, dict]:
    """The gate task's requests in Airflow's SQLite database, by task instance id.

    Read while ``dag.test()`` runs in another thread, so through ``sqlite3`` alone: a thread that
    imports Airflow's modules while the main thread does can deadlock on Python's import locks.
    """
    query = (
        "SELECT h.ti_id, h.subject, h.body, h.options, h.params FROM hitl_detail h "
        "JOIN task_instance t ON t.id = h.ti_id WHERE t.dag_id = ? AND t.task_id = ?"
    )
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as connection:
        rows = connection.execute(query, (DAG_ID, GATE_TASK)).fetchall()
    return {
        ti_id: {"subject": subject, "body": body, "options": json.loads(options), "params": json.loads(params)}
        for ti_id, subject, body, options, params in rows
    }


def _new_request(database: str, known: set[str], timeout: float = 120) -> dict | None:
    """A request of the gate task that was not there before, once it is (None after ``timeout``)."""
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        new = [request for ti_id, request in _requests(database).items() if ti_id not in known]
        if new:
            return new[0]
        time.sleep(0.1)
    return None


class Person(threading.Thread):
    """Someone who, once the request shows up in Airflow, decides the gate in Opsera instead."""

    def __init__(self, database: str, emulator, act):
        super().__init__(daemon=True)
        self.database = database
        self.emulator = emulator
        self.act = act
        self.known = set(_requests(database))
        self.request: dict | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.request = _new_request(self.database, self.known)
            if self.request is not None:
                self.act(self.request)
        except BaseException as error:  # reported by the test
            self.error = error
        finally:  # whatever went wrong, no gate is left waiting: dag.test() ends
            if any(run["active"] and run["status"] == "paused" for run in self.emulator.run_journal()["runs"]):
                self.emulator.reject(RELEASE_WITH_APPROVAL, "the test ends the run", by="the test")


def _run(load_example_dag, emulator, act, capfd, caplog):
    caplog.set_level("INFO")
    from airflow.configuration import conf

    dag = load_example_dag(DAG_ID)
    url = conf.get("database", "sql_alchemy_conn")
    assert url.startswith("sqlite:///"), url
    person = Person(url[len("sqlite:///"):], emulator, act)
    person.start()
    dag_run = dag.test()
    person.join(30)
    assert person.error is None, person.error
    assert person.request is not None, "the gate task never asked in Required actions"
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}
    return dag_run, states, person.request, "".join(capfd.readouterr()) + caplog.text


def _decisions(emulator) -> dict:
    (run,) = [r for r in emulator.run_journal()["runs"] if r["pipeline_id"] == RELEASE_WITH_APPROVAL]
    return run


def test_the_request_shows_the_gate_and_a_gate_approved_in_opsera_lets_the_run_finish(
    load_example_dag, emulator_connection, capfd, caplog
):
    def approve_in_opsera(request):
        emulator_connection.approve(RELEASE_WITH_APPROVAL, by="grace@example.com")

    dag_run, states, request, text = _run(load_example_dag, emulator_connection, approve_in_opsera, capfd, caplog)
    assert states == {"start_release": "success", "approve_release": "success", "wait_for_release": "success"}
    assert request["options"] == ["Approve", "Reject", "Leave to Opsera"] and "comment" in request["params"]
    assert "Release With Approval" in request["subject"] and "'approval'" in request["subject"]
    assert request["body"].startswith("Check the release notes before approving.")
    assert "run **1**, waits for approval at step `approval`" in request["body"]
    assert "is paused at step 'approval' waiting for approval" in request["body"]  # Opsera's message
    assert f"({emulator_connection.url}/portal/workflow/details/{RELEASE_WITH_APPROVAL}/summary)" in request["body"]
    run = _decisions(emulator_connection)
    assert run["status"] == "success"
    assert [(a["by"], a["via"]) for a in run["approvals"]] == [("grace@example.com", "outside")]  # none sent
    assert run["rejections"] == []
    assert "The gate was decided in Opsera first" in text
    assert "Release With Approval's Run 1 was successful." in text


def test_a_gate_rejected_in_opsera_fails_the_gate_task_and_sends_nothing(
    load_example_dag, emulator_connection, capfd, caplog
):
    def reject_in_opsera(request):
        emulator_connection.reject(RELEASE_WITH_APPROVAL, "Freeze week", by="grace@example.com")

    dag_run, states, request, text = _run(load_example_dag, emulator_connection, reject_in_opsera, capfd, caplog)
    assert states == {"start_release": "success", "approve_release": "failed", "wait_for_release": "upstream_failed"}
    run = _decisions(emulator_connection)
    assert run["status"] == "rejected" and run["approvals"] == []
    rejections = [(r["by"], r["via"], r["message"]) for r in run["rejections"]]
    assert rejections == [("grace@example.com", "outside", "Freeze week")]
    assert "was decided in Opsera and the run ended rejected" in text
