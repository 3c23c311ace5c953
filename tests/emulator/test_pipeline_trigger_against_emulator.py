"""The pipeline trigger on asyncio over real sockets, and the deferred operator's whole cycle without Airflow's loop."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from airflow_provider_opsera._compat import AirflowException
from airflow_provider_opsera.hooks import OpseraHook
from airflow_provider_opsera.hooks.opsera_async import OpseraAsyncHook
from airflow_provider_opsera.operators import OpseraRunPipelineOperator
from airflow_provider_opsera.triggers import OpseraPipelineRunTrigger
from tests.unit.pipeline_fakes import FakeSupervisor, TaskDeferred, make_context

from .support import BLANK, BROKEN, LONG_SOAK


def first_event(trigger, emulator) -> dict:
    """Run the trigger on a fresh loop; its waits (and its client's retry waits) move the emulator's clock."""

    async def emulated_sleep(seconds: float) -> None:
        emulator.advance(seconds)

    trigger._sleep = emulated_sleep
    trigger._clock = emulator.now  # the deadline, too, is on the emulator's clock
    trigger._hook = OpseraAsyncHook(trigger.opsera_conn_id, sleep=emulated_sleep)

    async def main():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(main())


def test_pipeline_trigger_follows_a_run_to_success_showing_its_console_as_it_goes(opsera_conn, task_log):
    run_count = OpseraHook().run_pipeline(BLANK)["runCount"]
    event = first_event(OpseraPipelineRunTrigger(BLANK, run_count, poll_interval=15), opsera_conn)
    newest_console_record = OpseraHook().get_pipeline_logs(BLANK, 1, console_only=True)[0]["_id"]
    assert event == {
        "status": "success",
        "message": "Pipeline: Blank Template's Run 1 was successful.",
        "pipeline_id": BLANK,
        "run_count": 1,
        "console_shown_through": f'"{newest_console_record}"',  # the resumed task goes on after it
    }
    lines = ["[checkout] Cloning into 'web-portal'...", "[build] Compiled successfully", "[deploy] Deployment complete"]
    assert task_log.in_order(*lines) and [task_log.count(line) for line in lines] == [1, 1, 1]


def test_pipeline_trigger_rides_out_an_outage(opsera_conn):
    run_count = OpseraHook().run_pipeline(BLANK)["runCount"]
    opsera_conn.set_fault(route="POST /api/v1/pipeline/status", kind="status", status=503, count=9)
    event = first_event(OpseraPipelineRunTrigger(BLANK, run_count, poll_interval=15), opsera_conn)
    assert event["status"] == "success"
    opsera_conn.set_fault(route="POST /api/v1/pipeline/status", kind="html", count=2)
    opsera_conn.set_fault(route="POST /api/v1/pipeline/status", kind="malformed", count=2)
    assert first_event(OpseraPipelineRunTrigger(BLANK, run_count), opsera_conn)["status"] == "success"


def test_pipeline_trigger_times_out_and_on_kill_stops_the_run(opsera_conn, monkeypatch):
    pytest.importorskip("airflow.sdk.execution_time.comms", reason="on_kill reads the task's state: Airflow 3")
    from airflow.sdk.execution_time import task_runner

    run_count = OpseraHook().run_pipeline(LONG_SOAK)["runCount"]
    trigger = OpseraPipelineRunTrigger(
        LONG_SOAK, run_count, poll_interval=60, timeout=300, end_time=opsera_conn.now() + 300
    )
    assert first_event(trigger, opsera_conn)["status"] == "timeout"
    # a person marked the task failed: the supervisor says so when the trigger asks
    trigger.task_instance = SimpleNamespace(dag_id="d", run_id="r", task_id="t", map_index=-1)
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", FakeSupervisor({"r": {"t": "failed"}}), raising=False)
    asyncio.run(trigger.on_kill())
    opsera_conn.advance(600)
    assert OpseraHook().get_pipeline_run_status(LONG_SOAK, run_count)["status"] == "stopped"


def deferred_cycle(emulator, pipeline_id: str):
    """execute() defers; the trigger waits; execute_complete() gets the event (and nothing else)."""
    op = OpseraRunPipelineOperator(task_id="run", pipeline_id=pipeline_id, deferrable=True, poll_interval=20)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(make_context())
    classpath, kwargs = deferred.value.trigger.serialize()
    event = first_event(OpseraPipelineRunTrigger(**kwargs), emulator)
    resumed = OpseraRunPipelineOperator(task_id="run", pipeline_id=pipeline_id, deferrable=True)
    return resumed.execute_complete(make_context(), event)


def test_deferred_success_puts_the_console_in_the_task_log(opsera_conn, task_log):
    assert deferred_cycle(opsera_conn, BLANK) == 1
    assert task_log.count("[build] Compiled successfully") == 1
    assert task_log.in_order("[checkout] Cloning", "[deploy] Deployment complete")


def test_deferred_failure_reaches_the_task(opsera_conn):
    with pytest.raises(AirflowException, match=r"(?s)failed at step 'unit tests'.*test_discount"):
        deferred_cycle(opsera_conn, BROKEN)
