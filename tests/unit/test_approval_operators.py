"""Reading a gate from a pipeline's summary, and the approve and reject operators against requests-mock."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_opsera._compat import AirflowException
from airflow_provider_opsera.client.status import RunOutcome
from airflow_provider_opsera.exceptions import OpseraInputError, OpseraSummaryShapeError
from airflow_provider_opsera.operators import OpseraApprovePipelineOperator, OpseraRejectPipelineOperator
from airflow_provider_opsera.waiting.gates import gate_state
from tests.unit.conftest import BASE_URL, PIPELINE_ID
from tests.unit.pipeline_fakes import SUMMARY, make_context

ACTIONS = f"{BASE_URL}/api/v2/actions"
GATE_STEP = "6" * 24


def pipeline(run_count: int = 3, status: str = "paused", **running) -> dict:
    running = {"step_id": GATE_STEP, "paused": status == "paused", "status": status, **running}
    return {
        "_id": PIPELINE_ID,
        "name": "deploy-web-portal",
        "workflow": {
            "run_count": run_count,
            "plan": [{"_id": "5" * 24, "name": "build"}, {"_id": GATE_STEP, "name": "sign-off"}],
            "last_step": {"status": status, "running": running},
        },
    }


# -- what a summary says about a gate --


@pytest.mark.parametrize(
    "summary, waiting, outcome",
    [
        (pipeline(status="paused"), True, RunOutcome.PAUSED),
        (pipeline(status="Paused"), True, RunOutcome.PAUSED),
        # how Opsera's portal derives "paused": a stopped last step whose running part is pending or paused
        (pipeline(status="stopped", paused=False), False, RunOutcome.STOPPED),
        (pipeline(status="stopped", paused=True), True, RunOutcome.PAUSED),
        (pipeline(status="running"), False, RunOutcome.IN_PROGRESS),
        (pipeline(status="success"), False, RunOutcome.SUCCEEDED),
        (pipeline(run_count=0, status="paused"), False, RunOutcome.PAUSED),  # never ran: nothing waits
    ],
)
def test_a_gate_is_read_as_the_portal_reads_it(summary, waiting, outcome):
    state = gate_state(summary, PIPELINE_ID)
    assert state.waiting is waiting
    assert state.outcome is (RunOutcome.PAUSED if waiting else outcome)
    assert (state.step_name, state.step_id) == (("sign-off", GATE_STEP) if waiting else ("", ""))


def test_a_stopped_step_with_a_pending_run_waits():
    summary = pipeline(status="stopped", paused=False)
    summary["workflow"]["last_step"]["running"]["status"] = "pending"
    state = gate_state(summary, PIPELINE_ID)
    assert state.waiting and state.describe() == "its latest run 3 waits at an approval gate (step 'sign-off')"


def test_a_tenants_own_status_and_an_object_id_step():
    summary = pipeline(status="On Hold", paused=False, step_id={"$oid": GATE_STEP})
    assert not gate_state(summary, PIPELINE_ID).waiting
    state = gate_state(summary, PIPELINE_ID, (("on hold", RunOutcome.PAUSED),))
    assert state.waiting and state.step_name == "sign-off"


def test_waits_at_a_run_and_a_step():
    state = gate_state(pipeline(), PIPELINE_ID)
    assert state.waits_at(3) and state.waits_at(3, GATE_STEP)
    assert not state.waits_at(2) and not state.waits_at(3, "7" * 24)
    unnamed = gate_state(pipeline(step_id=None), PIPELINE_ID)
    assert unnamed.waits_at(3, GATE_STEP) and unnamed.step == ""  # a step the summary does not name: any gate
    assert gate_state(pipeline(run_count=0), PIPELINE_ID).describe() == "it has never run"
    assert gate_state(pipeline(status="running"), PIPELINE_ID).describe() == "its latest run 3 is running"


def test_a_summary_without_a_run_count_is_not_read_as_anything():
    with pytest.raises(OpseraSummaryShapeError, match="no workflow.run_count"):
        gate_state({"workflow": {"last_step": {"status": "paused"}}}, PIPELINE_ID)


# -- the operators --


@pytest.fixture
def opsera(hook, requests_mock):
    """requests-mock behind ``opsera_default`` (the ``hook`` fixture defines the connection)."""
    return requests_mock


def sent_actions(opsera) -> list[dict]:
    return [r.json() for r in opsera.request_history if r.url == ACTIONS]


def test_approve_reads_the_gate_then_sends_approve(opsera, task_log):
    opsera.post(SUMMARY, json=pipeline())
    opsera.post(ACTIONS, json={"status": "success", "message": "Run 3 approved"})
    answer = OpseraApprovePipelineOperator(task_id="approve", pipeline_id=PIPELINE_ID).execute(make_context())
    assert answer == {"status": "success", "message": "Run 3 approved"}
    assert [r.url for r in opsera.request_history] == [SUMMARY, ACTIONS]  # read first, then send
    assert sent_actions(opsera) == [{"action": "approve", "type": "pipeline", "version": 1, "target": [PIPELINE_ID]}]
    assert "Opsera approved run 3 of Opsera pipeline" in task_log.text()
    assert "at step 'sign-off': Run 3 approved" in task_log.text()


@pytest.mark.parametrize(
    "summary, found",
    [
        (pipeline(status="running"), "its latest run 3 is running"),
        (pipeline(status="success"), "its latest run 3 is success"),
        (pipeline(run_count=0), "it has never run"),
    ],
)
def test_nothing_is_sent_when_no_run_waits(opsera, summary, found):
    opsera.post(SUMMARY, json=summary)
    with pytest.raises(AirflowException) as failed:
        OpseraRejectPipelineOperator(task_id="reject", pipeline_id=PIPELINE_ID, message="no").execute(make_context())
    assert found in str(failed.value) and "Nothing was sent to Opsera." in str(failed.value)
    assert sent_actions(opsera) == []


def test_a_run_count_given_must_be_the_run_that_waits(opsera):
    opsera.post(SUMMARY, json=pipeline(run_count=4))
    op = OpseraApprovePipelineOperator(task_id="approve", pipeline_id=PIPELINE_ID, run_count="3")
    with pytest.raises(AirflowException, match="run 3 of Opsera pipeline .* its latest run 4 waits at an approval"):
        op.execute(make_context())
    assert sent_actions(opsera) == []


def test_reject_sends_the_message_and_an_opsera_refusal_fails_the_task(opsera):
    opsera.post(SUMMARY, json=pipeline())
    opsera.post(ACTIONS, json={"status": "failed", "message": "User lacks the approver role"})
    op = OpseraRejectPipelineOperator(task_id="reject", pipeline_id=PIPELINE_ID, message=" Freeze week ")
    with pytest.raises(AirflowException, match="Opsera refused to reject run 3 .*: User lacks the approver role"):
        op.execute(make_context())
    assert sent_actions(opsera) == [
        {"action": "reject", "type": "pipeline", "version": 1, "target": [PIPELINE_ID], "message": "Freeze week"}
    ]


def test_a_lost_answer_is_not_resent_the_gate_read_again_says_whether_it_took(opsera, task_log):
    opsera.post(SUMMARY, [{"json": pipeline()}, {"json": pipeline(status="running")}])
    opsera.post(ACTIONS, exc=requests.exceptions.ConnectionError("connection reset"))
    answer = OpseraApprovePipelineOperator(task_id="approve", pipeline_id=PIPELINE_ID).execute(make_context())
    assert answer["status"] == "unknown" and "its latest run 3 is running" in answer["message"]
    assert len(sent_actions(opsera)) == 1
    assert "no longer waits (its latest run 3 is running): the decision reached Opsera" in task_log.text()
    opsera.post(SUMMARY, json=pipeline())  # the gate still waits: the error stands, and nothing is resent
    with pytest.raises(AirflowException):
        OpseraApprovePipelineOperator(task_id="approve", pipeline_id=PIPELINE_ID).execute(make_context())
    assert len(sent_actions(opsera)) == 2


@pytest.mark.parametrize("message", ["", "   ", None, 7])
def test_a_rejection_without_a_reason_is_refused_when_the_dag_is_parsed(message):
    with pytest.raises(OpseraInputError, match="message must be a non-empty string"):
        OpseraRejectPipelineOperator(task_id="reject", pipeline_id=PIPELINE_ID, message=message)


def test_a_templated_reason_and_run_count_are_checked_once_rendered(opsera):
    op = OpseraRejectPipelineOperator(task_id="reject", pipeline_id=PIPELINE_ID, message="{{ params.why }}")
    op.message = " "  # rendered empty
    with pytest.raises(OpseraInputError, match="message must be a non-empty string"):
        op.execute(make_context())
    op = OpseraApprovePipelineOperator(task_id="approve", pipeline_id=PIPELINE_ID, run_count="{{ x }}")
    op.run_count = "three"
    with pytest.raises(OpseraInputError, match="run_count must be a positive whole number"):
        op.execute(make_context())
    assert opsera.request_history == []
