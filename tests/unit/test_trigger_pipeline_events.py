"""OpseraPipelineRunEventTrigger: one event per run that ends, in order, once; the cursor; faults; on a fake clock."""

from __future__ import annotations

import asyncio
import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_opsera._compat import AIRFLOW_V3
from airflow_provider_opsera.client.connection import OpseraConnectionSettings
from airflow_provider_opsera.exceptions import OpseraInputError, OpseraPermissionError, OpseraServerError
from airflow_provider_opsera.triggers import OpseraPipelineRunEventTrigger
from tests.unit.conftest import PIPELINE_ID
from tests.unit.pipeline_fakes import FakeClock

if not AIRFLOW_V3:
    pytest.skip("event-driven scheduling (asset watchers) is Airflow 3", allow_module_level=True)

CLASSPATH = "airflow_provider_opsera.triggers.pipeline_events.OpseraPipelineRunEventTrigger"
PORTAL = "https://portal.opsera.test"
RUN_URL = f"{PORTAL}/workflow/details/{PIPELINE_ID}/summary"
EXAMPLE_DAG = Path(__file__).resolve().parents[2] / "example_dags" / "example_opsera_asset_events.py"


class Enough(Exception):
    """Raised by the fake clock to end a watcher, which otherwise polls forever."""


class FakeOpsera:
    """A pipeline whose runs change as the fake clock moves; answers what the watcher's client calls."""

    def __init__(self, **runs: str) -> None:
        self.runs = {int(name.removeprefix("run")): status for name, status in runs.items()}
        self.errors: list[BaseException] = []  # raised by the next calls, one each
        self.summary: Any = None  # when set, answered instead of the real summary
        self.calls: list[str] = []

    @property
    def latest(self) -> int:
        return max(self.runs, default=0)

    def _fail_if_told(self) -> None:
        if self.errors:
            raise self.errors.pop(0)

    async def get_pipeline(self, pipeline_id: str) -> Any:
        self.calls.append("summary")
        self._fail_if_told()
        return (
            self.summary if self.summary is not None else {"_id": pipeline_id, "workflow": {"run_count": self.latest}}
        )

    async def get_pipeline_run_status(self, pipeline_id: str, run_count: int) -> dict[str, str]:
        self.calls.append(f"status {run_count}")
        self._fail_if_told()
        return {"status": self.runs[run_count], "message": f"Run {run_count}: {self.runs[run_count]}."}

    async def settings(self) -> OpseraConnectionSettings:
        return OpseraConnectionSettings(base_url="https://opsera.test", token="not-used", portal_url=PORTAL)


class Store:
    """The asset state store's accessors for one asset (Airflow 3.3), in memory; several triggers may share one."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.writes = 0

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.writes += 1
        self.values[key] = value


class SeveralAssets(Store):
    """Accessors for two assets on Airflow 3.3.2: the single-asset calls refuse."""

    async def aget(self, key: str, default: Any = None) -> Any:
        raise ValueError("Task has 2 concrete inlets and outlets — use context['asset_state_store'][MY_ASSET]")


class FlakyStore(Store):
    """Accessors whose first two calls fail, as when the triggerer's supervisor does not answer."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 2

    async def aget(self, key: str, default: Any = None) -> Any:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("supervisor gone")
        return await super().aget(key, default)


class Script:
    """The fake clock's sleeps: each applies the next change to Opsera; the last one ends the watcher."""

    def __init__(self, clock: FakeClock, *changes: Any) -> None:
        self.clock = clock
        self.changes = list(changes)

    async def sleep(self, seconds: float) -> None:
        self.clock.sleep(seconds)
        if not self.changes:
            raise Enough
        change = self.changes.pop(0)
        if change is not None:
            change()


def make_trigger(opsera: FakeOpsera, store: Any = None, **kwargs: Any) -> OpseraPipelineRunEventTrigger:
    trigger = OpseraPipelineRunEventTrigger(pipeline_id=PIPELINE_ID, poll_interval=30, **kwargs)
    trigger._hook = opsera
    trigger.asset_state_store = store  # what the triggerer injects before run() (Airflow 3.3+)
    return trigger


def watch(trigger: OpseraPipelineRunEventTrigger, clock: FakeClock, *changes: Any) -> list[dict]:
    """Every event the watcher fires while the changes happen, one per poll interval."""
    trigger._sleep = Script(clock, *changes).sleep
    trigger._clock = clock.time
    events: list[dict] = []

    async def main() -> None:
        async for event in trigger.run():
            events.append(event.payload)

    with pytest.raises(Enough):
        asyncio.run(main())
    return events


def set_run(opsera: FakeOpsera, run_count: int, status: str):
    return lambda: opsera.runs.__setitem__(run_count, status)


def event(run_count: int, status: str, opsera_status: str | None = None) -> dict:
    return {
        "status": status,
        "message": f"Run {run_count}: {opsera_status or status}.",
        "pipeline_id": PIPELINE_ID,
        "run_count": run_count,
        "run_url": RUN_URL,
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# -- what Airflow needs of it --


def test_is_an_event_trigger_an_asset_watcher_accepts():
    from airflow.sdk import Asset, AssetWatcher
    from airflow.triggers.base import BaseEventTrigger

    trigger = OpseraPipelineRunEventTrigger(pipeline_id=PIPELINE_ID)
    assert isinstance(trigger, BaseEventTrigger)
    asset = Asset(f"opsera://pipelines/{PIPELINE_ID}", watchers=[AssetWatcher(name="runs", trigger=trigger)])
    assert asset.watchers[0].trigger is trigger


def test_serialises_its_arguments_only_and_rebuilds_the_same_watcher():
    trigger = OpseraPipelineRunEventTrigger(pipeline_id=PIPELINE_ID, poll_interval=30, outcomes=["stopped", "failed"])
    classpath, kwargs = trigger.serialize()
    assert classpath == CLASSPATH
    assert kwargs == {
        "pipeline_id": PIPELINE_ID,
        "opsera_conn_id": "opsera_default",
        "poll_interval": 30.0,
        "outcomes": ["failed", "stopped"],
    }
    module, _, name = CLASSPATH.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)
    # Airflow tells watchers apart by this hash: a DAG file parsed again must give the same one.
    from airflow.triggers.base import BaseEventTrigger

    assert BaseEventTrigger.hash(*rebuilt.serialize()) == BaseEventTrigger.hash(classpath, kwargs)


def test_defaults():
    _, kwargs = OpseraPipelineRunEventTrigger(pipeline_id=PIPELINE_ID).serialize()
    assert kwargs == {
        "pipeline_id": PIPELINE_ID,
        "opsera_conn_id": "opsera_default",
        "poll_interval": 60.0,
        "outcomes": None,
    }


@pytest.mark.parametrize(
    "kwargs, read_as, warning",
    [
        ({"pipeline_id": "deploy-web-portal"}, {"pipeline_id": "deploy-web-portal"}, "the first poll will fail over it"),
        ({"outcomes": ["succeeded", "Failed"]}, {"outcomes": ["failed"]}, "'succeeded' not among success, failed"),
        ({"outcomes": []}, {"outcomes": None}, "outcomes names none of success, failed, stopped, unknown: taking all"),
        ({"poll_interval": 0}, {"poll_interval": 1.0}, "poll_interval 0 is outside 1 to 86400 s"),
        ({"cursor": 7}, {}, "arguments this version does not know, left out: cursor"),
    ],
)
def test_the_watcher_loads_whatever_a_row_holds_and_says_what_it_changed(kwargs, read_as, warning, task_log):
    """Airflow builds a watcher from its stored row: a bad value is left out or brought into range, never refused."""
    _, stored = OpseraPipelineRunEventTrigger(**{"pipeline_id": PIPELINE_ID, **kwargs}).serialize()
    assert {key: stored[key] for key in read_as} == read_as
    assert warning in task_log.text()


def test_a_watcher_with_an_id_that_is_no_opsera_id_polls_with_the_client_s_refusal():
    """The real client refuses the id before it reads the connection or sends anything (none is defined here)."""
    trigger = OpseraPipelineRunEventTrigger(pipeline_id="deploy-web-portal")
    with pytest.raises(OpseraInputError, match="pipeline_id must be a 24-character hexadecimal Opsera id"):
        asyncio.run(trigger.poll())


def test_the_watcher_and_its_example_dag_import_light_and_operators_do_not_import_it():
    """The DAG processor imports DAG files again and again: no HTTP stack at import, no watcher for operator users."""
    probe = "\n".join(
        [
            "import sys, runpy",
            "import airflow_provider_opsera._compat, airflow.sdk",
            "from airflow.triggers.base import BaseEventTrigger",
            "airflow_provider_opsera._compat.BaseOperator(task_id='baseline')",
            "import airflow_provider_opsera.operators, airflow_provider_opsera.sensors, airflow_provider_opsera.triggers",
            "print('airflow_provider_opsera.triggers.pipeline_events' in sys.modules)",
            "before = set(sys.modules)",
            f"runpy.run_path({str(EXAMPLE_DAG)!r})",
            "heavy = sorted(m for m in set(sys.modules) - before",
            "               if m.split('.')[0] in ('requests', 'aiohttp', 'tenacity', 'urllib3'))",
            "print(heavy)",
        ]
    )
    answer = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=180)
    assert answer.returncode == 0, answer.stderr[-3000:]
    assert answer.stdout.strip().splitlines()[-2:] == ["False", "[]"]


# -- which runs fire, and when --


def test_a_run_that_ended_before_the_watcher_started_is_not_reported(clock):
    opsera = FakeOpsera(run1="success", run2="failed")
    events = watch(make_trigger(opsera, Store()), clock, None, None, set_run(opsera, 3, "running"), None)
    assert events == []


def test_each_run_that_ends_fires_once_in_run_order(clock):
    opsera = FakeOpsera(run1="success", run2="running")  # run 2 is going when the watcher starts
    events = watch(
        make_trigger(opsera, Store()),
        clock,
        None,
        set_run(opsera, 2, "paused"),  # an approval gate: not an end
        set_run(opsera, 2, "success"),
        None,  # nothing new: nothing fires again
        set_run(opsera, 3, "running"),
        set_run(opsera, 3, "failed"),
        set_run(opsera, 4, "stopped"),  # started and stopped between two polls
        set_run(opsera, 5, "rejected"),
        None,
    )
    assert events == [
        event(2, "success"),
        event(3, "failed"),
        event(4, "stopped"),
        event(5, "stopped", "rejected"),
    ]
    assert clock.sleeps == [30.0] * 10


def test_runs_that_end_between_two_polls_fire_together_in_run_order(clock):
    opsera = FakeOpsera()

    def three_runs():
        opsera.runs.update({1: "success", 2: "failed", 3: "success"})

    events = watch(make_trigger(opsera, Store()), clock, three_runs, None)
    assert [(e["run_count"], e["status"]) for e in events] == [(1, "success"), (2, "failed"), (3, "success")]


def test_a_later_run_waits_for_the_one_before_it(clock):
    opsera = FakeOpsera(run1="running")
    events = watch(make_trigger(opsera, Store()), clock, set_run(opsera, 2, "success"), set_run(opsera, 1, "success"))
    assert [e["run_count"] for e in events] == [1, 2]


def test_outcomes_filter_what_fires_and_the_rest_is_passed_over(clock):
    opsera = FakeOpsera()
    store = Store()
    trigger = make_trigger(opsera, store, outcomes=["failed"])
    events = watch(trigger, clock, set_run(opsera, 1, "success"), set_run(opsera, 2, "failed"), None)
    assert events == [event(2, "failed")]
    assert store.values == {trigger.cursor_key: 2}


def test_a_quiet_poll_costs_one_request(clock):
    opsera = FakeOpsera(run1="success")
    watch(make_trigger(opsera, Store()), clock, None, None, None)
    # the start reads the latest run's status once; after that, a summary per poll
    assert opsera.calls == ["summary", "status 1", "summary", "summary", "summary"]


def test_an_unknown_status_is_not_an_end_and_is_logged_once(clock, task_log):
    opsera = FakeOpsera(run1="running")
    events = watch(
        make_trigger(opsera, Store()),
        clock,
        set_run(opsera, 1, "warming up"),
        None,
        set_run(opsera, 1, "success"),
    )
    assert [e["run_count"] for e in events] == [1]
    assert task_log.count("'warming up'") == 1


# -- the cursor --


def test_the_cursor_survives_a_restart_in_the_asset_state_store(clock):
    opsera = FakeOpsera(run1="running")
    store = Store()
    first = watch(make_trigger(opsera, store), clock, set_run(opsera, 1, "success"), None)
    assert [e["run_count"] for e in first] == [1]
    assert store.values == {"opsera.pipeline_runs.5fd56d90979ee048ee660624.all.last_run": 1}
    # The triggerer is down while run 2 ends and run 3 starts; a rebuilt trigger reads the same store.
    opsera.runs.update({2: "failed", 3: "running"})
    _, kwargs = make_trigger(opsera).serialize()
    rebuilt = OpseraPipelineRunEventTrigger(**kwargs)
    rebuilt._hook, rebuilt.asset_state_store = opsera, store
    second = watch(rebuilt, clock, None, set_run(opsera, 3, "success"))
    assert [e["run_count"] for e in second] == [2, 3]  # run 1 not again, run 2 not lost


def test_without_a_state_store_a_restart_starts_afresh(clock, task_log):
    opsera = FakeOpsera(run1="running")
    assert len(watch(make_trigger(opsera), clock, set_run(opsera, 1, "success"))) == 1
    opsera.runs[2] = "success"  # ends while the triggerer is down
    assert watch(make_trigger(opsera), clock, None) == []
    assert "kept in memory (no asset state store here)" in task_log.text()


def test_a_triggerer_that_dies_once_airflow_took_an_event_has_its_successor_fire_it_again(clock):
    """At least once: the store moves past a run only once its event has been with Airflow for a while."""
    from airflow_provider_opsera.triggers.pipeline_events import DELIVERY_SETTLES

    opsera = FakeOpsera(run1="running")
    store = Store()
    first = watch(make_trigger(opsera, store), clock, set_run(opsera, 1, "success"))
    assert [e["run_count"] for e in first] == [1]  # and the triggerer died before its next poll
    assert list(store.values.values()) == [0], f"the cursor moved past run 1 within {DELIVERY_SETTLES} s of its event"
    successor = make_trigger(opsera, store)
    assert [e["run_count"] for e in watch(successor, clock, None)] == [1]


def test_two_triggerers_running_the_same_watcher_repeat_only_what_had_not_settled(clock):
    """A triggerer that took the watcher over while the first one looked dead: both poll for a while."""
    from airflow_provider_opsera.triggers.pipeline_events import DELIVERY_SETTLES

    opsera = FakeOpsera(run1="running")
    store = Store()
    one, other = make_trigger(opsera, store), make_trigger(opsera, store)
    one._clock = other._clock = clock.time

    async def poll(trigger) -> list[int]:
        await trigger.keep_delivered()
        fired = [event.payload["run_count"] for event in await trigger.poll()]
        for run_count in fired:
            trigger.handed_over(run_count)
        return fired

    async def polls() -> list[list[int]]:
        fired = [await poll(one), await poll(other)]
        opsera.runs[1] = "success"
        fired += [await poll(one), await poll(other)]  # both, before either's delivery settled: a duplicate
        clock.sleep(DELIVERY_SETTLES)
        opsera.runs[2] = "failed"
        fired += [await poll(one)]
        clock.sleep(DELIVERY_SETTLES)
        await one.keep_delivered()
        fired += [await poll(other)]  # run 2's event has settled in the store: not again
        return fired

    assert asyncio.run(polls()) == [[], [], [1], [1], [2], []]


def test_several_assets_on_one_trigger_keep_the_cursor_in_memory(clock, task_log):
    opsera = FakeOpsera(run1="running")
    events = watch(make_trigger(opsera, SeveralAssets()), clock, set_run(opsera, 1, "success"))
    assert [e["run_count"] for e in events] == [1]
    assert "the last reported run is kept in memory" in task_log.text()


def test_a_state_store_that_does_not_answer_is_logged_and_tried_again(clock, task_log):
    opsera = FakeOpsera(run1="running")
    store = FlakyStore()
    events = watch(make_trigger(opsera, store), clock, set_run(opsera, 1, "success"), set_run(opsera, 2, "success"))
    assert [e["run_count"] for e in events] == [1, 2]
    assert store.values  # written once it answered again
    assert "The asset state store did not answer (ConnectionError: supervisor gone)" in task_log.text()


# -- faults --


def fail_three_times_then_end(opsera: FakeOpsera, error: Exception):
    """A change: the next three calls fail with ``error``, and run 1 ends meanwhile."""

    def change():
        opsera.errors.extend([error] * 3)
        opsera.runs[1] = "success"

    return change


def test_transient_errors_are_ridden_out_at_the_usual_pace(clock, task_log):
    opsera = FakeOpsera(run1="running")
    outage = OpseraServerError("Opsera POST /api/v1/pipeline/summary: server error 503", status_code=503)

    events = watch(make_trigger(opsera, Store()), clock, fail_three_times_then_end(opsera, outage), None, None, None)
    assert [e["run_count"] for e in events] == [1]
    assert clock.sleeps == [30.0] * 5
    assert task_log.count("failed (3 in a row); polling on") == 1
    assert task_log.count("works again") == 1


def test_a_refusal_is_logged_once_and_polls_slow_down_until_it_is_fixed(clock, task_log):
    opsera = FakeOpsera(run1="running")
    refusal = OpseraPermissionError("Opsera POST /api/v1/pipeline/summary: 403 forbidden", status_code=403)

    events = watch(make_trigger(opsera, Store()), clock, fail_three_times_then_end(opsera, refusal), *[None] * 4)
    assert [e["run_count"] for e in events] == [1]  # nothing lost: it fires once reading works again
    assert clock.sleeps == [30.0, 300.0, 300.0, 300.0, 30.0, 30.0]
    text = task_log.text()
    assert text.count("403 forbidden. No run of it is reported until this is fixed; polling every 300 s") == 1
    assert "works again" in text


def test_an_outage_that_lasts_slows_polls_down_too(clock, task_log):
    opsera = FakeOpsera(run1="running")
    opsera.errors = [OpseraServerError("server error 502", status_code=502)] * 7
    watch(make_trigger(opsera, Store()), clock, *[None] * 7)
    assert clock.sleeps == [30.0] * 4 + [300.0] * 3 + [30.0]
    assert task_log.count("reading its runs keeps failing (5 times in a row or more): server error 502") == 1


def test_a_summary_without_a_run_count_is_an_error_not_silence(clock, task_log):
    opsera = FakeOpsera(run1="running")
    opsera.summary = {"_id": PIPELINE_ID, "workflow": {"runCount": 1}}
    watch(make_trigger(opsera, Store()), clock, None)
    assert "has no workflow.run_count" in task_log.text()
    assert clock.sleeps == [300.0, 300.0]


def test_on_kill_touches_nothing():
    opsera = FakeOpsera(run1="running")
    asyncio.run(make_trigger(opsera).on_kill())
    assert opsera.calls == []
