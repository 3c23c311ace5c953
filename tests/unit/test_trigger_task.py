"""OpseraTaskTrigger: the same polling loop as the pipeline trigger, on a task's latest run."""

from __future__ import annotations

import asyncio

import pytest

from airflow_provider_opsera.exceptions import OpseraRateLimitError
from airflow_provider_opsera.triggers import OpseraTaskTrigger
from tests.unit.conftest import TASK_ID
from tests.unit.pipeline_fakes import FakeAsyncHook


def events(hook: FakeAsyncHook, **kwargs) -> list[dict]:
    trigger = OpseraTaskTrigger(opsera_task_id=TASK_ID, poll_interval=10, **kwargs)
    trigger._hook = hook

    async def collect():
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


def test_serialises_the_task_id_connection_and_timing(trigger_clock):
    classpath, kwargs = OpseraTaskTrigger(opsera_task_id=TASK_ID, timeout=60).serialize()
    assert classpath == "airflow_provider_opsera.triggers.task.OpseraTaskTrigger"
    assert kwargs == {
        "opsera_task_id": TASK_ID,
        "opsera_conn_id": "opsera_default",
        "poll_interval": 30.0,
        "timeout": 60.0,
        "end_time": trigger_clock.now + 60,
    }
    assert OpseraTaskTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_success_after_the_run_goes_on(trigger_clock):
    rate_limited = OpseraRateLimitError("429 too many requests", retry_after=1)
    [event] = events(FakeAsyncHook("running", rate_limited, "queued", "success"))
    assert event["status"] == "success" and event["opsera_task_id"] == TASK_ID
    assert trigger_clock.sleeps == [10, 10, 10, 10]  # a poll interval before the first read, then between reads


@pytest.mark.parametrize("status, expected", [("failed", "failed"), ("halted", "stopped")])
def test_final_statuses(trigger_clock, status, expected):
    [event] = events(FakeAsyncHook(status))
    assert event["status"] == expected and repr(status) in event["message"]


def test_timeout(trigger_clock):
    [event] = events(FakeAsyncHook("running"), timeout=25)
    assert event["status"] == "timeout" and trigger_clock.sleeps == [10, 10, 5]


def test_killing_the_task_leaves_the_opsera_task_alone(trigger_clock):
    """Opsera has no call that stops a task run."""
    hook = FakeAsyncHook("running")
    trigger = OpseraTaskTrigger(opsera_task_id=TASK_ID)
    trigger._hook = hook
    asyncio.run(trigger.on_kill())
    assert hook.stops == 0
