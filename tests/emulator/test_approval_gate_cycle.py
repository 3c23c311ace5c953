"""The approval gate operator's whole cycle over real sockets.

It runs as Airflow would run it, without Airflow's loop: ``execute``
defers, the trigger waits on the emulator (its sleeps move the emulated clock), the resume
method gets the event. Airflow's human-in-the-loop channel is answered in memory
(``tests/unit/hitl_fakes.py``); a person answers there, or decides the gate in Opsera.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from airflow_provider_opsera._compat import AirflowException, AirflowFailException
from airflow_provider_opsera.hooks import OpseraHook
from airflow_provider_opsera.hooks.opsera_async import OpseraAsyncHook
from airflow_provider_opsera.operators import OpseraApprovalGateOperator
from tests.unit.hitl_fakes import fake_hitl_channel
from tests.unit.pipeline_fakes import TaskDeferred

from .support import APPROVAL, BLANK, BROKEN, runs_of

TI_ID = uuid.UUID(int=23)


class GateTI:
    id = TI_ID
    dag_id, run_id, task_id, map_index = "release", "manual__1", "approve_release", -1

    def xcom_push(self, key, value, **_):
        pass


@pytest.fixture
def hitl(monkeypatch):
    return fake_hitl_channel(monkeypatch)


def journal_run(emulator, run_count: int = 1) -> dict:
    return runs_of(emulator.run_journal(), APPROVAL)[run_count - 1]


def first_event(trigger, emulator, on_sleep=None) -> dict:
    """Run a trigger on a fresh loop; its sleeps move the emulator's clock (and may let a person act)."""

    async def emulated_sleep(seconds: float) -> None:
        emulator.advance(seconds)
        if on_sleep is not None:
            on_sleep()

    trigger._sleep = emulated_sleep
    trigger._clock = emulator.now
    trigger._hook = OpseraAsyncHook(trigger.opsera_conn_id, sleep=emulated_sleep)

    async def main():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(main())


def cycle(emulator, op: OpseraApprovalGateOperator, on_sleep=None):
    """execute -> wait for the gate -> ask -> wait for the answer -> carry it out; the result of the last step."""
    context = {"ti": GateTI()}
    step = op.execute
    args: tuple = (context,)
    while True:
        try:
            return step(*args)
        except TaskDeferred as deferred:
            _, kwargs = deferred.trigger.serialize()
            trigger = type(deferred.trigger)(**kwargs)  # rebuilt from its row, as the triggerer does
            event = first_event(trigger, emulator, on_sleep)
            step, args = getattr(op, deferred.method_name), (context, event)


def gate_operator(**kwargs) -> OpseraApprovalGateOperator:
    return OpseraApprovalGateOperator(
        **{"task_id": "approve_release", "pipeline_id": APPROVAL, "run_count": "1", "poll_interval": 10, **kwargs}
    )


class Person:
    """Answers the request once it shows up, after ``after`` of the trigger's sleeps."""

    def __init__(self, hitl, option: str, comment: str | None = None, after: int = 2) -> None:
        self.hitl, self.option, self.comment, self.after, self.sleeps = hitl, option, comment, after, 0

    def __call__(self) -> None:
        if self.hitl.requests:
            self.sleeps += 1
            if self.sleeps == self.after:
                self.hitl.answer(TI_ID, self.option, self.comment, user="ada")


def test_approved_in_airflow_the_run_goes_on_past_its_gate(opsera_conn, hitl):
    OpseraHook().run_pipeline(APPROVAL)
    result = cycle(opsera_conn, gate_operator(), Person(hitl, "Approve"))
    assert result["decision"] == "approved" and result["answered_by"] == "ada" and result["step"] == "approval"
    request = hitl.only()
    assert request["subject"] == "Opsera: approve Release With Approval run 1 at 'approval'?"
    assert "paused at step 'approval' waiting for approval" in request["body"]
    opsera_conn.advance(25)
    run = journal_run(opsera_conn)
    assert run["status"] == "success"
    assert [(a["by"], a["via"], a["step"]) for a in run["approvals"]] == [("admin", "api", "approval")]
    assert opsera_conn.request_count("POST", "/api/v2/actions") == 1


def test_rejected_in_airflow_the_run_ends_and_the_task_fails_with_the_comment(opsera_conn, hitl):
    OpseraHook().run_pipeline(APPROVAL)
    with pytest.raises(AirflowFailException, match="Rejected in Airflow by ada: Release notes missing"):
        cycle(opsera_conn, gate_operator(), Person(hitl, "Reject", "Release notes missing"))
    run = journal_run(opsera_conn)
    assert run["status"] == "rejected"
    assert [r["message"] for r in run["rejections"]] == ["Release notes missing (rejected in Airflow by ada)"]


def test_decided_in_opsera_first_the_request_is_answered_and_nothing_is_sent(opsera_conn, hitl):
    OpseraHook().run_pipeline(APPROVAL)

    def decide_in_opsera():
        if hitl.requests and journal_run(opsera_conn)["status"] == "paused":
            opsera_conn.approve(APPROVAL, by="grace@example.com")

    result = cycle(opsera_conn, gate_operator(), decide_in_opsera)
    assert result["decision"] == "decided in Opsera" and result["answered_by"] is None
    request = hitl.only()
    assert request["chosen_options"] == ["Leave to Opsera"] and request["responded_by"] is None
    assert request["params_input"]["comment"].startswith("The gate was decided in Opsera first: its latest run 1 is")
    with pytest.raises(Exception):
        hitl.answer(TI_ID, "Reject", "late")  # the request is closed: a late answer is refused
    assert opsera_conn.request_count("POST", "/api/v2/actions") == 0
    assert [(a["by"], a["via"]) for a in journal_run(opsera_conn)["approvals"]] == [("grace@example.com", "outside")]


def test_a_response_timeout_that_rejects(opsera_conn, hitl):
    OpseraHook().run_pipeline(APPROVAL)
    expected = "on the task's behalf .no answer in time.: No answer in Airflow within 120 seconds."
    with pytest.raises(AirflowFailException, match=expected):
        cycle(opsera_conn, gate_operator(response_timeout=120, on_response_timeout="reject"))
    assert hitl.only()["chosen_options"] == ["Reject"]
    run = journal_run(opsera_conn)
    assert run["status"] == "rejected" and [r["via"] for r in run["rejections"]] == ["api"]


def test_a_response_timeout_that_leaves_the_gate_to_opsera(opsera_conn, hitl):
    OpseraHook().run_pipeline(APPROVAL)
    result = cycle(opsera_conn, gate_operator(response_timeout=120))
    assert result["decision"] == "left to Opsera" and hitl.only()["chosen_options"] == ["Leave to Opsera"]
    assert journal_run(opsera_conn)["status"] == "paused"
    assert opsera_conn.request_count("POST", "/api/v2/actions") == 0


@pytest.mark.parametrize("pipeline_id, outcome", [(BLANK, "no gate"), (BROKEN, AirflowException)])
def test_a_run_without_a_gate(opsera_conn, hitl, pipeline_id, outcome):
    OpseraHook().run_pipeline(pipeline_id)
    op = gate_operator(pipeline_id=pipeline_id)
    if isinstance(outcome, str):
        assert cycle(opsera_conn, op)["decision"] == outcome
    else:
        with pytest.raises(outcome, match="ended failed before it waited at an approval gate"):
            cycle(opsera_conn, op)
    assert hitl.requests == {}
