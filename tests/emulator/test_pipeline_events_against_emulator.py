"""The asset-event watcher over real sockets: runs started in Opsera (not by Airflow) fire once each, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from airflow_provider_opsera._compat import AIRFLOW_V3
from airflow_provider_opsera.hooks import OpseraHook
from airflow_provider_opsera.hooks.opsera_async import OpseraAsyncHook
from airflow_provider_opsera.triggers import OpseraPipelineRunEventTrigger
from tests.unit.test_trigger_pipeline_events import Store

from .support import BLANK, BROKEN, LONG_SOAK

if not AIRFLOW_V3:
    pytest.skip("event-driven scheduling (asset watchers) is Airflow 3", allow_module_level=True)

SUMMARY = "POST /api/v1/pipeline/summary"


class Enough(Exception):
    """Ends a watcher, which otherwise polls forever."""


def watch(trigger: OpseraPipelineRunEventTrigger, emulator, polls: int, during: Callable[[int], None] | None = None):
    """The events of ``polls`` polls; each wait moves the emulator's clock, ``during(n)`` acts after wait n."""
    sleeps: list[float] = []

    async def between_polls(seconds: float) -> None:
        emulator.advance(seconds)
        sleeps.append(seconds)
        if len(sleeps) >= polls:
            raise Enough
        if during is not None:
            during(len(sleeps))

    async def between_retries(seconds: float) -> None:
        emulator.advance(seconds)

    trigger._sleep = between_polls
    trigger._clock = emulator.now
    trigger._hook = OpseraAsyncHook(trigger.opsera_conn_id, sleep=between_retries)
    events: list[dict] = []

    async def main() -> None:
        async for event in trigger.run():
            events.append(event.payload)

    with pytest.raises(Enough):
        asyncio.run(main())
    return events, sleeps


def portal(emulator, pipeline_id: str) -> str:
    return f"{emulator.url}/portal/workflow/details/{pipeline_id}/summary"


def test_runs_started_in_opsera_fire_once_each_in_run_order(opsera_conn):
    hook = OpseraHook()
    hook.run_pipeline(BLANK)
    opsera_conn.advance(200)  # run 1 ended before the watcher started: not reported
    hook.run_pipeline(BLANK)  # run 2 is going when it starts

    def start_runs(poll: int) -> None:
        if poll in (6, 12):  # a person starts runs 3 and 4 in Opsera once the previous one has ended
            hook.run_pipeline(BLANK)

    trigger = OpseraPipelineRunEventTrigger(pipeline_id=BLANK, poll_interval=30)
    trigger.asset_state_store = Store()
    events, _ = watch(trigger, opsera_conn, polls=18, during=start_runs)
    assert events == [
        {
            "status": "success",
            "message": f"Pipeline: Blank Template's Run {run} was successful.",
            "pipeline_id": BLANK,
            "run_count": run,
            "run_url": portal(opsera_conn, BLANK),
        }
        for run in (2, 3, 4)
    ]


def test_a_failed_run_and_a_stopped_one(opsera_conn):
    hook = OpseraHook()
    hook.run_pipeline(BROKEN)
    broken, _ = watch(OpseraPipelineRunEventTrigger(pipeline_id=BROKEN, poll_interval=60), opsera_conn, polls=6)
    assert [(e["run_count"], e["status"]) for e in broken] == [(1, "failed")]
    assert broken[0]["message"] == hook.get_pipeline_run_status(BROKEN, 1)["message"]

    def stop_it(poll: int) -> None:
        if poll == 2:
            hook.stop_pipeline(LONG_SOAK)  # soft: the step in flight ends first

    hook.run_pipeline(LONG_SOAK)
    stopped_only = OpseraPipelineRunEventTrigger(pipeline_id=LONG_SOAK, poll_interval=60, outcomes=["stopped"])
    events, _ = watch(stopped_only, opsera_conn, polls=15, during=stop_it)
    assert [(e["run_count"], e["status"]) for e in events] == [(1, "stopped")]


def test_an_outage_is_ridden_out_and_a_refusal_slows_polls_until_it_passes(opsera_conn, task_log):
    hook = OpseraHook()

    def trouble(poll: int) -> None:
        if poll == 1:
            hook.run_pipeline(BLANK)
            opsera_conn.set_fault(route=SUMMARY, kind="status", status=503, count=6)  # retried by the client
        if poll == 4:
            opsera_conn.set_fault(route=SUMMARY, kind="status", status=404, count=2)  # a refusal: not retried

    trigger = OpseraPipelineRunEventTrigger(pipeline_id=BLANK, poll_interval=30)
    events, sleeps = watch(trigger, opsera_conn, polls=9, during=trouble)
    assert [e["run_count"] for e in events] == [1]
    assert 300.0 in sleeps  # slower polls after the refusal
    assert sleeps[-1] == 30.0  # and back to the usual pace once reading works
    text = task_log.text()
    assert "No run of it is reported until this is fixed" in text and "works again" in text


def test_a_token_without_the_pipeline_scope_is_logged_and_the_watcher_keeps_polling(emulator, monkeypatch, task_log):
    monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", emulator.connection_json("security-logs"))
    trigger = OpseraPipelineRunEventTrigger(pipeline_id=BLANK, poll_interval=30)
    events, sleeps = watch(trigger, emulator, polls=3)
    assert events == [] and sleeps == [300.0, 300.0, 300.0]
    assert emulator.request_count("POST", "/api/v1/pipeline/summary") == 3  # polled on, did not end
    text = task_log.text()
    assert text.count("No run of it is reported until this is fixed") == 1
    assert emulator.token("security-logs") not in text


def test_the_cursor_in_the_state_store_survives_a_rebuild(opsera_conn):
    hook = OpseraHook()
    store = Store()
    first = OpseraPipelineRunEventTrigger(pipeline_id=BLANK, poll_interval=30)
    first.asset_state_store = store
    hook.run_pipeline(BLANK)
    assert [e["run_count"] for e in watch(first, opsera_conn, polls=5)[0]] == [1]
    hook.run_pipeline(BLANK)
    opsera_conn.advance(200)  # run 2 ends while no triggerer runs the watcher
    _, kwargs = first.serialize()
    rebuilt = OpseraPipelineRunEventTrigger(**kwargs)
    rebuilt.asset_state_store = store
    assert [e["run_count"] for e in watch(rebuilt, opsera_conn, polls=2)[0]] == [2]
