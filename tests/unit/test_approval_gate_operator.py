"""OpseraApprovalGateOperator: the request it makes, where it waits, and what it does with each answer."""

from __future__ import annotations

import sys
import uuid

import pytest

from airflow_provider_opsera._compat import AirflowException, AirflowFailException
from airflow_provider_opsera.exceptions import OpseraInputError
from airflow_provider_opsera.operators import OpseraApprovalGateOperator
from airflow_provider_opsera.triggers import OpseraApprovalGateTrigger, OpseraGateAnswerTrigger
from tests.unit.conftest import PIPELINE_ID
from tests.unit.hitl_fakes import fake_hitl_channel
from tests.unit.pipeline_fakes import LOGS, STATUS, SUMMARY, TaskDeferred
from tests.unit.test_approval_operators import ACTIONS, GATE_STEP, pipeline, sent_actions

TI_ID = uuid.UUID(int=11)
PORTAL = f"https://portal.opsera.test/workflow/details/{PIPELINE_ID}/summary"
PAUSED = {"status": "paused", "message": "Pipeline: deploy-web-portal's Run 3 is paused at step 'sign-off'."}


@pytest.fixture
def hitl(monkeypatch):
    return fake_hitl_channel(monkeypatch)


@pytest.fixture
def opsera(hook, requests_mock):
    requests_mock.post(SUMMARY, json=pipeline())
    requests_mock.post(STATUS, json=PAUSED)
    requests_mock.post(ACTIONS, json={"status": "success", "message": "done"})
    return requests_mock


class GateTI:
    id = TI_ID
    dag_id, run_id, task_id, map_index = "release", "manual__1", "approve_release", -1

    def __init__(self) -> None:
        self.xcoms: dict = {}

    def xcom_push(self, key, value, **_):
        self.xcoms[key] = value


def context() -> dict:
    return {"ti": GateTI()}


def gate(**kwargs) -> OpseraApprovalGateOperator:
    return OpseraApprovalGateOperator(**{"task_id": "approve_release", "pipeline_id": PIPELINE_ID, **kwargs})


def person(option: str, comment: str | None = None, name: str = "ada") -> dict:
    """The event Airflow resumes a task with when a person answers while it is deferred (3.3+)."""
    return {"chosen_options": [option], "params_input": {"comment": comment},
            "responded_by_user": {"id": name, "name": name}, "responded_at": None, "timedout": False}


GATE_KWARGS = {"gate": {"pipeline_id": PIPELINE_ID, "run_count": 3, "step_id": GATE_STEP, "step_name": "sign-off"}}


# -- asking --


def test_a_run_at_its_gate_is_asked_about_in_required_actions(opsera, hitl):
    op = gate(body="Check the release notes first.", response_timeout=3600, on_response_timeout="reject",
              assigned_users={"id": "ada", "name": "Ada"})
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context())
    request = hitl.only()
    assert request["subject"] == "Opsera: approve deploy-web-portal run 3 at 'sign-off'?"
    assert request["options"] == ["Approve", "Reject", "Leave to Opsera"]
    assert request["defaults"] == ["Reject"] and request["multiple"] is False
    assert request["assigned_users"] == [{"id": "ada", "name": "Ada"}]
    assert request["params"]["comment"]["schema"]["type"] == ["null", "string"]
    body = request["body"]
    assert body.startswith("Check the release notes first.\n\n")
    assert "Opsera pipeline `deploy-web-portal` (`5fd56d90979ee048ee660624`), run **3**, waits" in body
    assert "at step `sign-off`" in body and f"Opsera says: `{PAUSED['message']}`" in body
    assert f"]({PORTAL})" in body and "Without an answer within 3600 seconds, the gate is rejected." in body
    trigger = deferred.value.trigger
    assert isinstance(trigger, OpseraGateAnswerTrigger) and deferred.value.method_name == "execute_complete"
    _, stored = trigger.serialize()
    assert (stored["ti_id"], stored["run_count"], stored["step_id"], stored["on_response_timeout"]) == (
        str(TI_ID), 3, GATE_STEP, "reject"
    )
    assert deferred.value.kwargs == GATE_KWARGS
    assert sent_actions(opsera) == []


def test_opseras_words_cannot_render_in_the_request(opsera, hitl):
    opsera.post(STATUS, json={"status": "paused", "message": "`x` [click](https://evil.test)\nline two"})
    opsera.post(SUMMARY, json={**pipeline(), "name": "`name`"})
    with pytest.raises(TaskDeferred):
        gate().execute(context())
    body = hitl.only()["body"]
    assert "Opsera says: `'x' [click](https://evil.test) line two`" in body  # inline code: shown, not rendered
    assert "pipeline `'name'`" in body


def test_a_step_the_summary_does_not_name_comes_from_the_run_log(opsera, hitl):
    opsera.post(SUMMARY, json=pipeline(step_id=None))
    opsera.post(LOGS, json=[{"_id": "1", "step_name": "qa-approval", "action": "approval"}])
    with pytest.raises(TaskDeferred):
        gate(subject="Ship {{ ds }}?").execute(context())
    assert hitl.only()["subject"] == "Ship {{ ds }}?" and "at step `qa-approval`" in hitl.only()["body"]


def test_a_run_not_at_its_gate_yet_is_waited_on_in_the_triggerer(opsera, hitl):
    opsera.post(SUMMARY, json=pipeline(run_count=4, status="running"))
    with pytest.raises(TaskDeferred) as deferred:
        gate(run_count="4", poll_interval="15", timeout=7200).execute(context())
    trigger = deferred.value.trigger
    assert isinstance(trigger, OpseraApprovalGateTrigger) and deferred.value.method_name == "execute_at_gate"
    _, stored = trigger.serialize()
    assert (stored["run_count"], stored["poll_interval"], stored["timeout"]) == (4, 15.0, 7200.0)
    assert hitl.requests == {}


def test_a_pipeline_that_never_ran_has_no_gate(opsera, hitl):
    opsera.post(SUMMARY, json=pipeline(run_count=0))
    with pytest.raises(AirflowException, match="has never run: there is no gate to decide"):
        gate().execute(context())


def test_resumed_at_the_gate_it_asks(opsera, hitl):
    event = {"status": "gate", "message": "waits", "pipeline_id": PIPELINE_ID, "run_count": 3,
             "step_id": GATE_STEP, "step_name": "sign-off"}
    with pytest.raises(TaskDeferred):
        gate(pipeline_name="deploy-web-portal", pipeline_id=None).execute_at_gate(context(), event)
    assert "'sign-off'" in hitl.only()["subject"]


@pytest.mark.parametrize(
    "status, error",
    [("failed", AirflowException), ("stopped", AirflowFailException), ("timeout", AirflowFailException),
     ("error", AirflowException)],
)
def test_a_run_that_ended_before_its_gate_ends_the_task(opsera, status, error):
    event = {"status": status, "message": "it ended", "pipeline_id": PIPELINE_ID, "run_count": 3}
    with pytest.raises(error, match="it ended"):
        gate().execute_at_gate(context(), event)


def test_a_run_that_succeeded_without_a_gate_leaves_nothing_to_decide(opsera):
    event = {"status": "success", "message": "Run 3 was successful.", "pipeline_id": PIPELINE_ID, "run_count": 3}
    assert gate().execute_at_gate(context(), event)["decision"] == "no gate"
    assert sent_actions(opsera) == []


# -- the answer --


def test_an_approval_is_sent_after_reading_the_gate_again(opsera):
    result = gate().execute_complete(context(), person("Approve"), **GATE_KWARGS)
    assert result == {"pipeline_id": PIPELINE_ID, "run_count": 3, "step": "sign-off", "decision": "approved",
                      "answered_by": "ada", "comment": ""}
    assert [r.url for r in opsera.request_history][-2:] == [SUMMARY, ACTIONS]
    assert sent_actions(opsera) == [{"action": "approve", "type": "pipeline", "version": 1, "target": [PIPELINE_ID]}]


def test_a_rejection_is_sent_with_the_comment_and_fails_the_task_saying_it(opsera):
    event = {"status": "answered", "message": "Answered", "pipeline_id": PIPELINE_ID, "run_count": 3,
             "step_id": GATE_STEP, **person("Reject", "Release notes missing")}
    with pytest.raises(AirflowFailException) as failed:
        gate().execute_complete(context(), event)
    assert str(failed.value).startswith("Rejected in Airflow by ada: Release notes missing. Opsera ended run 3")
    (sent,) = sent_actions(opsera)
    assert sent["action"] == "reject" and sent["message"] == "Release notes missing (rejected in Airflow by ada)"


def test_a_rejection_without_a_comment_still_says_who(opsera):
    with pytest.raises(AirflowFailException, match="Rejected in Airflow by ada: no comment"):
        gate().execute_complete(context(), person("Reject"), **GATE_KWARGS)
    assert sent_actions(opsera)[0]["message"] == "Rejected in Airflow by ada"


def test_leave_to_opsera_sends_nothing(opsera):
    result = gate().execute_complete(context(), person("Leave to Opsera", "ask the release manager"), **GATE_KWARGS)
    assert (result["decision"], result["comment"]) == ("left to Opsera", "ask the release manager")
    assert sent_actions(opsera) == []


def test_an_answer_that_comes_after_opsera_decided_is_not_sent(opsera, task_log):
    opsera.post(SUMMARY, json=pipeline(status="running"))
    result = gate().execute_complete(context(), person("Reject", "too late"), **GATE_KWARGS)
    assert result["decision"] == "decided in Opsera"
    assert sent_actions(opsera) == []
    assert "was decided in Opsera before the answer here could be sent (its latest run 3 is running)" in task_log.text()


def test_a_gate_rejected_in_opsera_fails_the_task(opsera):
    opsera.post(SUMMARY, json=pipeline(status="rejected", paused=False))
    opsera.post(STATUS, json={"status": "rejected", "message": "Run 3 was rejected at step 'sign-off'."})
    event = {"status": "decided_in_opsera", "message": "decided first", "pipeline_id": PIPELINE_ID, "run_count": 3}
    with pytest.raises(AirflowFailException, match="decided in Opsera and the run ended rejected: Run 3 was rejected"):
        gate().execute_complete(context(), event)
    assert sent_actions(opsera) == []


def test_a_timeout_that_rejects_is_sent_and_fails_the_task(opsera):
    event = {**person("Reject", "No answer in Airflow within 60 seconds."), "responded_by_user": None,
             "timedout": True}
    expected = r"Rejected in Airflow on the task's behalf \(no answer in time\): No answer in Airflow within 60 s"
    with pytest.raises(AirflowFailException, match=expected):
        gate(response_timeout=60, on_response_timeout="reject").execute_complete(context(), event, **GATE_KWARGS)
    assert sent_actions(opsera)[0]["message"] == "No answer in Airflow within 60 seconds. (rejected in Airflow)"


@pytest.mark.parametrize(
    "event, expected",
    [
        (None, "not the expected object with a status"),
        ({"status": "success", "message": "x", "pipeline_id": PIPELINE_ID, "run_count": 3}, "none of"),
        ({"status": "answered", "message": "x", "pipeline_id": PIPELINE_ID, "run_count": 3,
          "chosen_options": ["Maybe"]}, r"not one of \['Approve', 'Reject', 'Leave to Opsera'\]"),
        ({"chosen_options": ["Approve"]}, "does not carry 'pipeline_id'"),  # Airflow's event, no gate kwargs
    ],
)
def test_an_unreadable_resume_fails_without_sending(opsera, event, expected):
    with pytest.raises(AirflowException, match=expected):
        gate().execute_complete(context(), event)
    assert sent_actions(opsera) == []


# -- inputs and older Airflow --


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"on_response_timeout": "approve"}, "on_response_timeout must be one of reject, leave"),
        ({"response_timeout": -1}, "response_timeout must be a number of seconds more than 0"),
        ({"poll_interval": 0}, "poll_interval must be a number of seconds from 1"),
        ({"timeout": "soon"}, "timeout must be a number of seconds"),
    ],
)
def test_bad_inputs_are_refused_when_the_dag_is_parsed(kwargs, expected):
    with pytest.raises(OpseraInputError, match=expected):
        gate(**kwargs)


def test_on_airflow_without_human_in_the_loop_it_says_what_it_needs(opsera, monkeypatch):
    monkeypatch.setitem(sys.modules, "airflow.sdk.execution_time.hitl", None)  # as on Airflow 2.11 to 3.0
    with pytest.raises(AirflowException, match="needs Airflow 3.1 or later"):
        gate().execute(context())
    assert opsera.request_history == []


def test_notifiers_are_called_once_the_request_is_made(opsera, hitl):
    seen = []

    def notifier(ctx):
        seen.append(len(hitl.requests))

    with pytest.raises(TaskDeferred):
        gate(notifiers=[notifier]).execute(context())
    assert seen == [1]


def test_the_portal_link_is_the_tasks_link(opsera, hitl):
    ti = GateTI()
    with pytest.raises(TaskDeferred):
        gate().execute({"ti": ti})
    assert ti.xcoms["opsera_pipeline_run_url"] == PORTAL
