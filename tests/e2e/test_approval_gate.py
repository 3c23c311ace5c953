"""An Opsera approval gate decided in a real Airflow 3 ("Required actions"), through Airflow's REST API.

``example_opsera_approval_gate`` starts a run of "Release With Approval", whose second step is
an approval gate. The test waits for the request to show up, as a person in "Required actions"
would see it, answers it through Airflow's REST API (what the UI's buttons call), and follows
the DAG run to its end; the emulator's run journal says who decided the gate in Opsera. The
last test decides the gate in Opsera instead, and the request is answered on the task's behalf.
"""

from __future__ import annotations

import pytest
import requests

from tests.e2e.conftest import example_dag

DAG_ID = "example_opsera_approval_gate"
GATE = "approve_release"
RELEASE_WITH_APPROVAL = "5fd56d90979ee048ee660626"
ACTIONS = "POST /api/v2/actions"


@pytest.fixture(autouse=True)
def nothing_left_at_the_gate(airflow):
    """After each test, no DAG run of the example goes on and no run of the pipeline waits at its gate: a test
    that failed half-way would otherwise have the next one's first task wait out the paused run."""
    yield
    for run in airflow.api("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 100})["dag_runs"]:
        if run["state"] in ("queued", "running"):
            airflow.api("PATCH", f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}", json={"state": "failed"})
    requests.post(  # refused when no run waits at the gate: nothing to do then
        f"{airflow.emulator_url}/_emulator/pipelines/{RELEASE_WITH_APPROVAL}/approve", json={"by": "cleanup"}, timeout=10
    )


def request_path(run_id: str) -> str:
    return f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{GATE}/-1/hitlDetails"


def wait_for_request(airflow, run_id: str) -> dict:
    """The gate's request, once the task has made it (a 404 until then)."""

    def made():
        answer = requests.get(f"{airflow.api_url}/api/v2{request_path(run_id)}", timeout=10)
        return answer.json() if answer.status_code == 200 else None

    return airflow.wait_for(made, 180, "the approval gate's request in Required actions")


def journal_run(airflow, run_count: int) -> dict:
    runs = requests.get(f"{airflow.emulator_url}/_emulator/runs", timeout=10).json()["runs"]
    (run,) = [r for r in runs if r["pipeline_id"] == RELEASE_WITH_APPROVAL and r["run_count"] == run_count]
    return run


def deferred_for_good(airflow, run_id: str) -> None:
    """The gate task waits in a triggerer and the scheduler has handled the exit of the worker that deferred it.

    A person answers seconds after the request shows; a script that answers within a second of it meets
    Airflow's deferral race (apache/airflow#66374): the answer resumes the task before the scheduler has
    handled the deferring worker's exit, and the scheduler fails it ("finished with state success, but the
    task instance's state attribute is queued").
    """
    airflow.wait_for(lambda: airflow.triggerer_holding(DAG_ID, run_id, GATE), 120, "a triggerer to hold the gate")
    handled = f"task_id={GATE}, run_id={run_id},"

    def exit_handled() -> bool:
        log = (airflow.home / "scheduler.log").read_text(errors="replace")
        return any(handled in line and "state=deferred" in line for line in log.splitlines())

    airflow.wait_for(exit_handled, 120, "the scheduler to handle the deferring worker's exit")


def started(airflow) -> tuple[str, dict]:
    dag_id = example_dag(airflow, "example_opsera_approval_gate.py", DAG_ID)
    run_id = airflow.trigger(dag_id)
    request = wait_for_request(airflow, run_id)
    deferred_for_good(airflow, run_id)
    return run_id, request


def test_approved_through_the_rest_api_the_run_and_the_dag_succeed(airflow):
    actions_before = airflow.emulator_counts().get(ACTIONS, 0)
    run_id, request = started(airflow)
    run_count = int(airflow.xcom(DAG_ID, run_id, "start_release"))
    assert request["options"] == ["Approve", "Reject", "Leave to Opsera"]
    assert request["subject"] == f"Opsera: approve Release With Approval run {run_count} at 'approval'?"
    assert "waits for approval at step `approval`" in request["body"]
    assert f"{airflow.emulator_url}/portal/workflow/details/{RELEASE_WITH_APPROVAL}/summary" in request["body"]
    assert request["response_received"] is False
    # while the person decides, the task waits in the triggerer: no worker slot
    assert airflow.task_instance(DAG_ID, run_id, GATE)["state"] == "deferred"

    answer = airflow.api("PATCH", request_path(run_id), json={"chosen_options": ["Approve"], "params_input": {}})
    assert answer["chosen_options"] == ["Approve"]
    assert airflow.wait_for_run(DAG_ID, run_id, timeout=240) == "success"
    assert airflow.task_states(DAG_ID, run_id) == {
        "start_release": "success", "approve_release": "success", "wait_for_release": "success"
    }
    result = airflow.xcom(DAG_ID, run_id, GATE)
    assert (result["decision"], result["answered_by"]) == ("approved", answer["responded_by"]["name"])
    run = journal_run(airflow, run_count)
    assert run["status"] == "success"
    assert [(a["by"], a["via"], a["step"]) for a in run["approvals"]] == [("admin", "api", "approval")]
    assert airflow.emulator_counts().get(ACTIONS, 0) - actions_before == 1
    log = airflow.task_log(DAG_ID, run_id, "wait_for_release")
    assert "Release With Approval's Run" in log and "was successful" in log


def test_rejected_through_the_rest_api_the_gate_task_fails_with_the_comment(airflow):
    run_id, _ = started(airflow)
    run_count = int(airflow.xcom(DAG_ID, run_id, "start_release"))
    comment = "Release notes missing"
    answer = airflow.api(
        "PATCH", request_path(run_id), json={"chosen_options": ["Reject"], "params_input": {"comment": comment}}
    )
    who = answer["responded_by"]["name"]
    assert airflow.wait_for_run(DAG_ID, run_id, timeout=240) == "failed"
    assert airflow.task_states(DAG_ID, run_id) == {
        "start_release": "success", "approve_release": "failed", "wait_for_release": "upstream_failed"
    }
    ti = airflow.task_instance(DAG_ID, run_id, GATE)
    assert ti["try_number"] == 1  # a rejection is not retried
    assert f"Rejected in Airflow by {who}: {comment}" in airflow.task_log(DAG_ID, run_id, GATE)
    run = journal_run(airflow, run_count)
    assert run["status"] == "rejected" and run["approvals"] == []
    assert [(r["by"], r["message"]) for r in run["rejections"]] == [
        ("admin", f"{comment} (rejected in Airflow by {who})")
    ]


def test_a_gate_decided_in_opsera_first_answers_the_request_and_nothing_is_sent(airflow):
    actions_before = airflow.emulator_counts().get(ACTIONS, 0)
    run_id, _ = started(airflow)
    run_count = int(airflow.xcom(DAG_ID, run_id, "start_release"))
    decided = requests.post(
        f"{airflow.emulator_url}/_emulator/pipelines/{RELEASE_WITH_APPROVAL}/approve",
        json={"by": "grace@example.com"},
        timeout=10,
    )
    assert decided.status_code == 200, decided.text
    assert airflow.wait_for_run(DAG_ID, run_id, timeout=240) == "success"
    request = airflow.api("GET", request_path(run_id))
    assert request["chosen_options"] == ["Leave to Opsera"] and request["responded_by_user"] is None
    assert request["params_input"]["comment"].startswith("The gate was decided in Opsera first")
    assert airflow.xcom(DAG_ID, run_id, GATE)["decision"] == "decided in Opsera"
    run = journal_run(airflow, run_count)
    assert [(a["by"], a["via"]) for a in run["approvals"]] == [("grace@example.com", "outside")]
    assert airflow.emulator_counts().get(ACTIONS, 0) == actions_before
