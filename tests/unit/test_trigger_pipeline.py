"""OpseraPipelineRunTrigger: events, deadline, riding out outages, stopping the run when killed."""

from __future__ import annotations

import asyncio
import importlib
import json

import pytest

from airflow_provider_opsera.exceptions import OpseraAuthenticationError, OpseraServerError, OpseraTransportError
from airflow_provider_opsera.triggers import OpseraPipelineRunTrigger
from airflow_provider_opsera.triggers.polling import OpseraPollingTrigger
from tests.unit.conftest import PIPELINE_ID
from tests.unit.pipeline_fakes import FakeAsyncHook

CLASSPATH = "airflow_provider_opsera.triggers.pipeline.OpseraPipelineRunTrigger"


def make_trigger(hook: FakeAsyncHook, **kwargs) -> OpseraPipelineRunTrigger:
    trigger = OpseraPipelineRunTrigger(
        pipeline_id=PIPELINE_ID, run_count=3, opsera_conn_id="opsera_default", poll_interval=30, **kwargs
    )
    trigger._hook = hook
    return trigger


async def _events(trigger) -> list[dict]:
    return [event.payload async for event in trigger.run()]


def run_events(trigger) -> list[dict]:
    return asyncio.run(_events(trigger))


def running(message: str = "running step 2") -> dict:
    return {"status": "running", "message": message}


# -- serialisation --


def test_serialises_ids_connection_and_timing_only(trigger_clock):
    trigger = make_trigger(FakeAsyncHook(running()), timeout=600)
    classpath, kwargs = trigger.serialize()
    assert classpath == CLASSPATH
    assert kwargs == {
        "pipeline_id": PIPELINE_ID,
        "run_count": 3,
        "opsera_conn_id": "opsera_default",
        "poll_interval": 30.0,
        "timeout": 600.0,
        "end_time": trigger_clock.now + 600,
        "fetch_logs": True,
    }


def test_a_rebuilt_trigger_keeps_the_deadline_of_the_first(trigger_clock):
    _, kwargs = make_trigger(FakeAsyncHook(running()), timeout=600).serialize()
    trigger_clock.now += 500  # the triggerer restarted 500 s later
    module, _, name = CLASSPATH.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (CLASSPATH, kwargs)
    assert rebuilt.end_time == kwargs["end_time"]


def test_no_token_in_what_is_serialised(set_conn, token):
    set_conn(host="https://opsera.test", password=token)
    trigger = OpseraPipelineRunTrigger(pipeline_id=PIPELINE_ID, run_count=3)
    assert trigger.hook is not None  # the client exists; it reads the connection when it first calls
    text = json.dumps(trigger.serialize()) + repr(trigger)
    assert token not in text and "Bearer" not in text


# -- events --


def test_success_after_running_polls(trigger_clock):
    hook = FakeAsyncHook(running(), running(), {"status": "success", "message": "Run 3 was successful."})
    assert run_events(make_trigger(hook)) == [
        {"status": "success", "message": "Run 3 was successful.", "pipeline_id": PIPELINE_ID, "run_count": 3}
    ]
    assert hook.calls == 3  # one request per poll
    assert trigger_clock.sleeps == [30, 30, 30]  # the first read waits a poll interval: the run just started


@pytest.mark.parametrize(
    "opsera_status, event_status",
    [("failed", "failed"), ("ERROR", "failed"), ("stopped", "stopped"), ("rejected", "stopped"), ("passed", "success")],
)
def test_final_statuses(trigger_clock, opsera_status, event_status):
    [event] = run_events(make_trigger(FakeAsyncHook({"status": opsera_status, "message": "why"})))
    assert event["status"] == event_status and event["message"] == "why"


def test_a_pause_is_waited_through_and_logged_once(trigger_clock, task_log):
    paused = {"status": "paused", "message": "waiting for approval"}
    hook = FakeAsyncHook(running(), paused, paused, paused, running(), {"status": "success"})
    [event] = run_events(make_trigger(hook))
    assert event["status"] == "success"
    assert task_log.count("waits for an approval") == 1


def test_an_unknown_status_counts_as_running_and_is_logged_once(trigger_clock, task_log):
    hook = FakeAsyncHook({"status": "warming up"}, {"status": "warming up"}, {"status": "success"})
    [event] = run_events(make_trigger(hook))
    assert event["status"] == "success"
    assert task_log.count("'warming up'") == 1


def test_timeout_fires_at_the_deadline(trigger_clock):
    hook = FakeAsyncHook(running())
    [event] = run_events(make_trigger(hook, timeout=100))
    assert event["status"] == "timeout" and "100 seconds" in event["message"]
    assert event["run_count"] == 3
    assert trigger_clock.sleeps == [30, 30, 30, 10]  # the last sleep stops at the deadline
    assert hook.stops == 0  # the task stops the run when it resumes


def test_transient_errors_are_ridden_out(trigger_clock):
    outage = OpseraServerError("Opsera POST /api/v1/pipeline/status: server error 503", status_code=503)
    dropped = OpseraTransportError("connection reset", may_have_reached_server=True)
    hook = FakeAsyncHook(running(), outage, dropped, outage, {"status": "success", "message": "ok"})
    [event] = run_events(make_trigger(hook))
    assert event["status"] == "success"


def test_errors_that_persist_end_the_wait(trigger_clock):
    outage = OpseraServerError("server error 503", status_code=503)
    hook = FakeAsyncHook(outage)
    [event] = run_events(make_trigger(hook))
    assert event["status"] == "error" and "server error 503" in event["message"]
    assert hook.calls == OpseraPollingTrigger.tolerated_failed_polls


def test_a_refusal_ends_the_wait_at_once(trigger_clock):
    hook = FakeAsyncHook(OpseraAuthenticationError("401 unauthorised", status_code=401))
    [event] = run_events(make_trigger(hook))
    assert event["status"] == "error" and "401" in event["message"] and hook.calls == 1


def test_an_unexpected_exception_becomes_an_error_event(trigger_clock):
    [event] = run_events(make_trigger(FakeAsyncHook(KeyError("status"))))
    assert event["status"] == "error" and "KeyError" in event["message"]
