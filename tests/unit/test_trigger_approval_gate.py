"""The gate triggers: reaching a gate, the answer in Airflow, a gate decided in Opsera first, timeouts, bad rows."""

from __future__ import annotations

import asyncio
import importlib
import json
import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_opsera.exceptions import OpseraAuthenticationError, OpseraServerError
from airflow_provider_opsera.triggers import OpseraApprovalGateTrigger, OpseraGateAnswerTrigger
from tests.unit.conftest import PIPELINE_ID
from tests.unit.hitl_fakes import fake_hitl_channel
from tests.unit.test_approval_operators import GATE_STEP, pipeline

TI_ID = str(uuid.UUID(int=7))


class GateHook:
    """What the gate triggers call: summaries and run statuses from a script (an exception is raised)."""

    def __init__(self, *summaries: Any, statuses: list[Any] | None = None) -> None:
        self.summaries = list(summaries)
        self.statuses = list(statuses or [{"status": "success", "message": "Run 3 was successful."}])
        self.summary_reads = 0

    async def settings(self) -> Any:
        return SimpleNamespace(status_map=(), token_expires=None)

    @staticmethod
    def _next(script: list[Any]) -> Any:
        answer = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def get_pipeline(self, pipeline_id: str) -> Any:
        self.summary_reads += 1
        return self._next(self.summaries)

    async def get_pipeline_run_status(self, pipeline_id: str, run_count: int) -> Any:
        return self._next(self.statuses)


def first_event(trigger, hook: GateHook) -> dict:
    trigger._hook = hook

    async def main():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(main())


def gate_trigger(**kwargs) -> OpseraApprovalGateTrigger:
    return OpseraApprovalGateTrigger(**{"pipeline_id": PIPELINE_ID, "run_count": 3, "poll_interval": 10, **kwargs})


def answer_trigger(**kwargs) -> OpseraGateAnswerTrigger:
    return OpseraGateAnswerTrigger(
        **{"ti_id": TI_ID, "pipeline_id": PIPELINE_ID, "run_count": 3, "step_id": GATE_STEP, "step_name": "sign-off",
           "poll_interval": 30, **kwargs}
    )


@pytest.fixture
def hitl(monkeypatch):
    return fake_hitl_channel(monkeypatch)


def ask() -> None:
    """The request the gate task made before deferring (through Airflow's channel, as the task does)."""
    from airflow_provider_opsera.waiting import gate_request

    gate_request.ask(uuid.UUID(TI_ID), subject="Approve?", body="...", defaults=None, assigned_users=None)


# -- stored rows --


@pytest.mark.parametrize(
    "make, classpath",
    [
        (lambda: gate_trigger(timeout=600), "airflow_provider_opsera.triggers.approval_gate.OpseraApprovalGateTrigger"),
        (lambda: answer_trigger(timeout=600, on_response_timeout="reject"),
         "airflow_provider_opsera.triggers.approval_gate.OpseraGateAnswerTrigger"),
    ],
)
def test_a_rebuilt_trigger_is_the_same_and_keeps_its_deadline(trigger_clock, make, classpath):
    trigger = make()
    path, kwargs = trigger.serialize()
    assert path == classpath and kwargs["end_time"] == trigger_clock.now + 600
    trigger_clock.now += 500  # rebuilt by another triggerer later on
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs) and rebuilt.problems == []


def test_no_token_in_what_is_stored(set_conn, token):
    set_conn(host="https://opsera.test", password=token)
    text = json.dumps(answer_trigger().serialize()) + json.dumps(gate_trigger().serialize())
    assert token not in text and "Bearer" not in text


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        ({"pipeline_id": None}, "pipeline_id must be a 24-character hexadecimal Opsera id"),
        ({"run_count": "three"}, "run_count must be a positive whole number"),
        ({"poll_interval": 0}, "poll_interval must be a number of seconds from 1"),
        ({"timeout": -5}, "timeout must be a number of seconds more than 0"),
        ({"end_time": "soon"}, "end_time must be a time in seconds"),
        ({"on_response_timeout": "maybe"}, "on_response_timeout must be one of reject, leave"),
    ],
)
def test_a_row_with_a_bad_value_loads_and_ends_at_once_saying_which(trigger_clock, kwargs, problem):
    trigger = answer_trigger(**kwargs)  # never raises: a stored row must always load
    hook = GateHook(pipeline())
    event = first_event(trigger, hook)
    assert event["status"] == "error" and problem in event["message"]
    assert hook.summary_reads == 0
    if "on_response_timeout" not in kwargs:
        event = first_event(gate_trigger(**kwargs), GateHook(pipeline()))
        assert event["status"] == "error" and problem in event["message"]


# -- OpseraApprovalGateTrigger --


def test_fires_once_the_run_waits_at_a_gate(trigger_clock):
    hook = GateHook(pipeline(status="running"), pipeline(status="running"), pipeline())
    assert first_event(gate_trigger(), hook) == {
        "status": "gate",
        "message": f"Opsera pipeline {PIPELINE_ID} run 3 waits at an approval gate.",
        "pipeline_id": PIPELINE_ID,
        "run_count": 3,
        "step_id": GATE_STEP,
        "step_name": "sign-off",
    }
    assert trigger_clock.sleeps == [10, 10, 10]  # a read per poll interval, the first one interval after deferring


@pytest.mark.parametrize(
    "status, event_status",
    [("success", "success"), ("failed", "failed"), ("stopped", "stopped"), ("rejected", "stopped")],
)
def test_a_run_that_ends_without_a_gate_ends_the_wait(trigger_clock, status, event_status):
    hook = GateHook(pipeline(status="running"), pipeline(run_count=4, status="running"),
                    statuses=[{"status": status, "message": f"Run 3: {status}"}])
    event = first_event(gate_trigger(), hook)
    assert (event["status"], event["message"], event["run_status"]) == (event_status, f"Run 3: {status}", status)


def test_waits_for_a_run_the_summary_does_not_show_yet_and_times_out(trigger_clock):
    hook = GateHook(pipeline(run_count=2, status="success"))
    event = first_event(gate_trigger(timeout=35), hook)
    assert event["status"] == "timeout" and "did not wait at an approval gate within 35 seconds" in event["message"]


def test_rides_out_an_outage_and_ends_on_a_refusal(trigger_clock):
    outage = OpseraServerError("HTTP 503", status_code=503)
    assert first_event(gate_trigger(), GateHook(outage, outage, pipeline()))["status"] == "gate"
    event = first_event(gate_trigger(), GateHook(OpseraAuthenticationError("401 unauthorised", status_code=401)))
    assert event["status"] == "error" and "401 unauthorised" in event["message"]


# -- OpseraGateAnswerTrigger --


def test_a_persons_answer_ends_the_wait(trigger_clock, hitl):
    ask()
    hook = GateHook(pipeline())
    reads_before = []

    async def sleep(seconds):
        trigger_clock.sleep(seconds)
        reads_before.append(hitl.reads)
        if len(reads_before) == 3:
            hitl.answer(TI_ID, "Reject", " Not during the freeze ", user="ada")

    trigger = answer_trigger()
    trigger._sleep = sleep
    event = first_event(trigger, hook)
    assert event == {
        "status": "answered",
        "message": "Answered by ada: Reject.",
        "pipeline_id": PIPELINE_ID,
        "run_count": 3,
        "step_id": GATE_STEP,
        "step_name": "sign-off",
        "chosen_options": ["Reject"],
        "params_input": {"comment": "Not during the freeze"},
        "responded_by_user": {"id": "ada", "name": "ada"},
        "timedout": False,
    }
    assert trigger_clock.sleeps == [5, 5, 5]  # the answer is read every 5 s
    assert hook.summary_reads == 1  # and the gate in Opsera every poll_interval (30 s)


def test_a_gate_decided_in_opsera_first_closes_the_request_and_says_so(trigger_clock, hitl):
    ask()
    hook = GateHook(pipeline(), pipeline(), pipeline(status="rejected", paused=False),
                    statuses=[{"status": "rejected", "message": "Run 3 was rejected at step 'sign-off'."}])
    event = first_event(answer_trigger(), hook)
    assert event["status"] == "decided_in_opsera"
    assert event["message"] == (
        "The gate was decided in Opsera first: its latest run 3 is rejected; "
        "Opsera says: Run 3 was rejected at step 'sign-off'."
    )
    request = hitl.only()
    assert request["chosen_options"] == ["Leave to Opsera"] and request["responded_by"] is None
    assert request["params_input"]["comment"] == event["message"]
    assert hook.summary_reads == 3 and trigger_clock.now - 1_000_000.0 == 65  # 5 s wake-ups, Opsera every 30 s


def test_a_gate_passed_to_the_next_one_counts_as_decided(trigger_clock, hitl):
    ask()
    later = pipeline(step_id="7" * 24)  # the same run waits again, at another step
    event = first_event(answer_trigger(), GateHook(pipeline(), later))
    assert event["status"] == "decided_in_opsera"


def test_an_answer_given_while_the_request_is_closed_wins(trigger_clock, hitl, monkeypatch):
    from airflow_provider_opsera.waiting import gate_request

    ask()
    update = gate_request.answer_for_the_task

    async def a_person_first(ti_id, option, comment):
        hitl.answer(TI_ID, "Approve", "ship it", user="grace")  # Airflow then refuses the task's answer
        return await update(ti_id, option, comment)

    monkeypatch.setattr(gate_request, "answer_for_the_task", a_person_first)
    event = first_event(answer_trigger(), GateHook(pipeline(status="running")))
    assert (event["status"], event["chosen_options"], event["responded_by_user"]["name"]) == (
        "answered", ["Approve"], "grace"
    )
    assert hitl.only()["chosen_options"] == ["Approve"]


@pytest.mark.parametrize("on_timeout, option", [("reject", "Reject"), ("leave", "Leave to Opsera")])
def test_the_response_timeout_answers_as_the_author_chose(trigger_clock, hitl, on_timeout, option):
    ask()
    event = first_event(answer_trigger(timeout=60, on_response_timeout=on_timeout), GateHook(pipeline()))
    assert (event["status"], event["chosen_options"], event["timedout"]) == ("answered", [option], True)
    assert event["responded_by_user"] is None
    assert event["params_input"] == {"comment": "No answer in Airflow within 60 seconds."}
    assert hitl.only()["chosen_options"] == [option]


def test_opsera_being_down_does_not_end_a_persons_chance_to_answer(trigger_clock, hitl):
    ask()
    outage = OpseraServerError("HTTP 503", status_code=503)
    hook = GateHook(*[outage] * 12, pipeline())

    async def sleep(seconds):
        trigger_clock.sleep(seconds)
        if trigger_clock.now - 1_000_000.0 >= 600:
            hitl.answer(TI_ID, "Approve", None, user="ada")

    trigger = answer_trigger()
    trigger._sleep = sleep
    event = first_event(trigger, hook)
    assert event["status"] == "answered" and hook.summary_reads >= 12


def test_a_refusal_ends_the_wait_and_closes_the_request(trigger_clock, hitl):
    ask()
    event = first_event(answer_trigger(), GateHook(OpseraAuthenticationError("401 unauthorised", status_code=401)))
    assert event["status"] == "error" and "401 unauthorised" in event["message"]
    assert hitl.only()["chosen_options"] == ["Leave to Opsera"]


def test_where_answers_cannot_be_read_a_decision_in_opsera_still_ends_the_wait(trigger_clock, monkeypatch, task_log):
    pytest.importorskip("airflow.sdk.execution_time.hitl", reason="human-in-the-loop needs Airflow 3.1+")
    from airflow.sdk.execution_time import task_runner

    class Silent:  # dag.test()'s channel: no answer to a request's read or update
        def send(self, msg):
            return None

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", Silent(), raising=False)
    event = first_event(answer_trigger(), GateHook(pipeline(), pipeline(status="running")))
    assert event["status"] == "decided_in_opsera"
    assert task_log.count("only a decision in Opsera, or the response timeout, ends this wait") == 1
    assert "it stays open in Required actions" in task_log.text()
