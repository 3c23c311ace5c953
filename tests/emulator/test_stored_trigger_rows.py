"""Every trigger row an earlier version of the provider could store loads in Airflow's own trigger runner.

``stored_trigger_forms.json`` holds one row per distinct form of arguments that some commit of
this repository's triggers serialised (``scripts/stored_trigger_forms.py`` walks the history and
writes it). Each row is encrypted the way Airflow stores it and handed to Airflow's real
``TriggerRunner.create_triggers``: the runner must go on creating triggers (a plain
``DateTimeTrigger`` queued after them still fires), and each Opsera trigger must run against the
emulator: a wait ends its task with an event, a watcher keeps polling.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import json
import math
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_opsera.hooks import OpseraHook
from airflow_provider_opsera.triggers.polling import OpseraPollingTrigger

from .support import BLANK, NIGHTLY_SYNC

pytest.importorskip("airflow.executors.workloads.trigger", reason="the trigger runner's workloads: Airflow 3")

FORMS = json.loads((Path(__file__).with_name("stored_trigger_forms.json")).read_text())
WATCHER = "airflow_provider_opsera.triggers.pipeline_events.OpseraPipelineRunEventTrigger"
RUN_COUNT = 3  # what the forms were written with
DATE_TIME_TRIGGER_ID = len(FORMS) + 1
#: the forms of a value today's checks accept (the others are refused by the operators and sensors)
ACCEPTED_TODAY = ("in range", "a time", "None", "True", "False", "list", "int", "text")


def as_stored(kwargs: dict[str, Any], written_at: float, non_finite_as_text: bool) -> dict[str, Any]:
    """The row's arguments: the fixture's placeholders for an absolute time and a float JSON lacks made real.

    Airflow 3 stores ``inf``/``nan`` as JSON's Infinity/NaN; Airflow 2's serialisation wrote them as text.
    """

    def real(value: Any) -> Any:
        if isinstance(value, dict) and "seconds_after_writing" in value:
            return written_at + value["seconds_after_writing"]
        if isinstance(value, dict) and "float" in value:
            return value["float"] if non_finite_as_text else float(value["float"])
        return value

    return {key: real(value) for key, value in kwargs.items()}


def task_instance(number: int):
    from airflow.executors.workloads.task import TaskInstanceDTO

    return TaskInstanceDTO(
        id=uuid.uuid4(),
        dag_version_id=uuid.uuid4(),
        dag_id="stored_rows",
        run_id="manual__2026-12-01T00:00:00+00:00",
        task_id=f"wait_{number}",
        map_index=-1,
        try_number=1,
        pool_slots=1,
        priority_weight=1,
    )


def workloads(non_finite_as_text: bool) -> list[Any]:
    """One workload per stored form, then a plain DateTimeTrigger due now, as the triggerer receives them."""
    from airflow.executors.workloads.trigger import RunTrigger
    from airflow.models.trigger import Trigger
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger

    written_at = time.time() - 60  # stored a minute ago
    queued = [
        RunTrigger(
            id=number,
            classpath=form["classpath"],
            encrypted_kwargs=Trigger.encrypt_kwargs(as_stored(form["kwargs"], written_at, non_finite_as_text)),
            ti=None if form["classpath"] == WATCHER else task_instance(number),
        )
        for number, form in enumerate(FORMS, start=1)
    ]
    classpath, kwargs = DateTimeTrigger(moment=dt.datetime.now(dt.timezone.utc)).serialize()
    queued.append(
        RunTrigger(
            id=DATE_TIME_TRIGGER_ID,
            classpath=classpath,
            encrypted_kwargs=Trigger.encrypt_kwargs(kwargs),
            ti=task_instance(DATE_TIME_TRIGGER_ID),
        )
    )
    return queued


@pytest.fixture
def ended_runs(opsera_conn):
    """Run 3 of the pipeline and a run of the task the forms name, each ended successfully."""
    hook = OpseraHook()
    for _ in range(RUN_COUNT):
        hook.run_pipeline(BLANK)
        opsera_conn.advance(600)
    opsera_conn.start_task_run(NIGHTLY_SYNC)
    opsera_conn.advance(600)
    hook.close()
    return opsera_conn


@pytest.fixture
def quick_waits(monkeypatch):
    """Polls, and the hold before a first event, on a clock that moves when a trigger sleeps."""
    clock = {"now": time.time()}

    async def sleep(seconds: float) -> None:
        clock["now"] += seconds
        await asyncio.sleep(0)

    monkeypatch.setattr(OpseraPollingTrigger, "_clock", staticmethod(lambda: clock["now"]))
    monkeypatch.setattr(OpseraPollingTrigger, "_sleep", staticmethod(sleep))
    monkeypatch.setenv("AIRFLOW_DISABLE_GREENBACK_PORTAL", "true")


async def run_stored_rows(non_finite_as_text: bool, emulator) -> tuple[Any, dict[int, Any]]:
    """Airflow's trigger runner given every stored row: the runner, and the event of each trigger that fired."""
    from airflow.jobs.triggerer_job_runner import TriggerRunner

    runner = TriggerRunner()
    runner.to_create.extend(workloads(non_finite_as_text))
    await runner.create_triggers()  # raised for a stored value before: the whole triggerer went down
    watchers = [number for number, form in enumerate(FORMS, start=1) if form["classpath"] == WATCHER]
    events: dict[int, Any] = {}
    deadline = time.monotonic() + 60
    try:
        while True:
            await runner.cleanup_finished_triggers()
            while runner.events:
                entry = runner.events.popleft()
                events[entry.trigger_id] = entry.event
            summaries = emulator.request_count("POST", "/api/v1/pipeline/summary")
            if len(events) == len(FORMS) + 1 - len(watchers) and summaries >= len(watchers):
                return runner, events
            if time.monotonic() > deadline:
                raise AssertionError(f"after 60 s: events of {sorted(events)}; {summaries} watcher polls")
            await asyncio.sleep(0.05)
    finally:
        for details in runner.triggers.values():
            details["task"].cancel()
        await asyncio.gather(*(details["task"] for details in runner.triggers.values()), return_exceptions=True)


@pytest.mark.parametrize("non_finite_as_text", [False, True], ids=["airflow 3 json", "airflow 2 text"])
def test_every_stored_form_loads_in_airflow_s_trigger_runner_and_ends_its_own_task(
    ended_runs, quick_waits, non_finite_as_text
):
    runner, events = asyncio.run(run_stored_rows(non_finite_as_text, ended_runs))
    assert list(runner.failed_triggers) == []
    assert events.pop(DATE_TIME_TRIGGER_ID) is not None  # another team's trigger, queued after ours, fired
    for number, form in enumerate(FORMS, start=1):
        if form["classpath"] == WATCHER:
            assert number not in events  # a watcher never ends; it polled (counted above)
        else:
            assert events[number].payload["status"] == "success", (form, events[number].payload)


def form_id(form: dict[str, Any]) -> str:
    odd = [f"{key} {value}" for key, value in sorted(form["form"].items()) if value not in ACCEPTED_TODAY]
    return f"{form['classpath'].rpartition('.')[2]}: {', '.join(odd) or 'accepted today'}"


@pytest.mark.parametrize("form", FORMS, ids=form_id)
def test_each_stored_form_is_read_as_a_wait_today_s_checks_accept(form, task_log):
    """Every value is brought into today's range (or, for a limit that was never finite, to none), with a warning."""
    from airflow_provider_opsera.client import validation

    module, _, name = form["classpath"].rpartition(".")
    trigger = getattr(importlib.import_module(module), name)(**as_stored(form["kwargs"], time.time(), False))
    assert validation.poll_interval(trigger.poll_interval) == trigger.poll_interval
    timeout = getattr(trigger, "timeout", None)
    if timeout is not None and timeout > 0:
        assert validation.timeout(timeout) == timeout
    end_time = getattr(trigger, "end_time", None)
    assert end_time is None or math.isfinite(end_time)
    refused_today = any(value not in ACCEPTED_TODAY for value in form["form"].values())
    warned = any(words in task_log.text() for words in ("is not", "is outside", "is over"))
    assert warned == refused_today


def test_arguments_another_version_stored_are_left_out_with_a_warning(task_log):
    from airflow_provider_opsera.triggers import OpseraPipelineRunTrigger

    trigger = OpseraPipelineRunTrigger(BLANK, RUN_COUNT, poll_jitter=0.5, poll_interval=30)
    assert "poll_jitter" not in trigger.serialize()[1]
    assert "arguments this version does not know, left out: poll_jitter" in task_log.text()
