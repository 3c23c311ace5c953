"""A trigger in a triggerer fires no sooner after deferring than Airflow 3's deferral race allows."""

from __future__ import annotations

import asyncio

import pytest

from airflow_provider_opsera.triggers import OpseraPipelineRunTrigger
from airflow_provider_opsera.triggers.settle import SCHEDULER_LOOPS, WORKER_EXIT_ALLOWANCE, seconds_before_first_event
from tests.unit.conftest import PIPELINE_ID
from tests.unit.pipeline_fakes import FakeAsyncHook, FakeClock

DEFAULT_HOLD = WORKER_EXIT_ALLOWANCE + SCHEDULER_LOOPS * 1.0  # scheduler_idle_sleep_time defaults to 1 s
SUCCESS = {"status": "success", "message": "done"}
RUNNING = {"status": "running", "message": "step 2"}


def fired_at(
    trigger_clock: FakeClock, hook: FakeAsyncHook, *, in_triggerer: bool = True, **kwargs
) -> tuple[float, dict]:
    """Seconds from the trigger's start to its event, and the event."""
    trigger = OpseraPipelineRunTrigger(pipeline_id=PIPELINE_ID, run_count=3, **kwargs)
    trigger._hook = hook
    if in_triggerer:
        trigger.trigger_id = 7  # what Airflow's triggerer sets on each trigger it runs
    start = trigger_clock.time()

    async def first_event():
        return await anext(trigger.run())

    event = asyncio.run(first_event())
    return trigger_clock.time() - start, event.payload


def test_the_hold_is_derived_from_the_scheduler_loop(monkeypatch):
    assert seconds_before_first_event() == DEFAULT_HOLD
    monkeypatch.setenv("AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME", "3")
    assert seconds_before_first_event() == WORKER_EXIT_ALLOWANCE + SCHEDULER_LOOPS * 3


@pytest.mark.parametrize("poll_interval", [1, 2, 5])
def test_a_run_ending_within_seconds_fires_after_the_hold_at_any_poll_interval(trigger_clock, poll_interval):
    hook = FakeAsyncHook(SUCCESS)
    seconds, event = fired_at(trigger_clock, hook, poll_interval=poll_interval)
    assert seconds == pytest.approx(DEFAULT_HOLD)
    assert event["status"] == "success" and hook.calls == 1  # read once, at the poll interval


def test_every_event_is_held_a_timeout_and_an_error_too(trigger_clock):
    seconds, event = fired_at(trigger_clock, FakeAsyncHook(RUNNING), poll_interval=1, timeout=3)
    assert event["status"] == "timeout" and seconds == pytest.approx(DEFAULT_HOLD)
    seconds, event = fired_at(trigger_clock, FakeAsyncHook(KeyError("status")), poll_interval=1)
    assert event["status"] == "error" and seconds == pytest.approx(DEFAULT_HOLD)


def test_a_run_ending_after_the_hold_fires_at_once(trigger_clock):
    hook = FakeAsyncHook(RUNNING, RUNNING, SUCCESS)
    seconds, event = fired_at(trigger_clock, hook, poll_interval=30)
    assert seconds == pytest.approx(90) and event["status"] == "success"


def test_dag_test_runs_triggers_without_a_triggerer_and_without_a_hold(trigger_clock):
    seconds, event = fired_at(trigger_clock, FakeAsyncHook(SUCCESS), in_triggerer=False, poll_interval=2)
    assert seconds == pytest.approx(2) and event["status"] == "success"


def test_the_hold_is_logged(trigger_clock, task_log):
    fired_at(trigger_clock, FakeAsyncHook(SUCCESS), poll_interval=2)
    assert "ended within seconds of deferring: firing in 10.0 s" in task_log.text()
