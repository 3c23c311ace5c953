"""Waits that share one triggerer: a row an earlier version of the provider stored, waits on an Opsera that never
answers, and, in another DAG, a wait on a healthy Opsera and another team's timer.

``test_shared_triggerer.py`` runs them; the row, the hanging waits' connection and the timer's moment come
from the DAG run's conf.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import BaseOperator, dag
from airflow.triggers.base import BaseTrigger

from airflow_provider_opsera.operators import OpseraRunPipelineOperator

COMMON = {"schedule": None, "start_date": dt.datetime(2024, 1, 1), "catchup": False, "tags": ["e2e"]}
NIGHTLY_SYNC = "61a1b2c3d4e5f6a7b8c9d0e1"
CHATTY = "5fd56d90979ee048ee660628"  # one 60-second step
#: more waits than the async client's pool has connections to one origin
HANGING_WAITS = 20


class StoredRow(BaseTrigger):
    """Defers with exactly the class path and arguments given: Airflow stores them as a row an older version wrote."""

    def __init__(self, classpath: str, kwargs: dict[str, Any]) -> None:
        super().__init__()
        self.classpath, self.kwargs = classpath, kwargs

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return self.classpath, self.kwargs

    async def run(self):  # never run: the triggerer builds the class the row names
        raise NotImplementedError
        yield


class Resumes(BaseOperator):
    def resume(self, context: Any, event: Any) -> str:
        if not isinstance(event, dict):  # a timer's event is its moment
            self.log.info("resumed with event %s", event)
            return str(event)
        self.log.info("resumed with event status=%s: %s", event.get("status"), event.get("message"))
        if event.get("status") != "success":
            raise RuntimeError(f"the wait ended {event.get('status')}: {event.get('message')}")
        return "success"


class StoredRowWait(Resumes):
    def execute(self, context: Any) -> None:
        row = context["dag_run"].conf["stored_row"]
        kwargs = dict(row["kwargs"])
        if isinstance(kwargs.get("end_time"), dict):  # stored as "so many seconds after it was written"
            kwargs["end_time"] = time.time() + kwargs["end_time"]["seconds_after_writing"]
        self.defer(trigger=StoredRow(row["classpath"], kwargs), method_name="resume")


class HangingWait(Resumes):
    def __init__(self, n: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n = n

    def execute(self, context: Any) -> None:
        from airflow_provider_opsera.triggers import OpseraTaskTrigger

        trigger = OpseraTaskTrigger(NIGHTLY_SYNC, opsera_conn_id="opsera_hanging", poll_interval=1, timeout=600)
        self.defer(trigger=trigger, method_name="resume")


class TimerWait(Resumes):
    def execute(self, context: Any) -> None:
        at = dt.datetime.fromtimestamp(context["dag_run"].conf["timer_at"], dt.timezone.utc)
        self.defer(trigger=DateTimeTrigger(moment=at), method_name="resume")


@dag(dag_id="e2e_opsera_shared_triggerer_load", max_active_tasks=HANGING_WAITS + 1, **COMMON)
def e2e_opsera_shared_triggerer_load():
    StoredRowWait(task_id="stored_row")
    HangingWait.partial(task_id="hanging_wait").expand(n=list(range(HANGING_WAITS)))


@dag(dag_id="e2e_opsera_shared_triggerer_neighbours", **COMMON)
def e2e_opsera_shared_triggerer_neighbours():
    OpseraRunPipelineOperator(
        task_id="healthy_wait", pipeline_id=CHATTY, deferrable=True, poll_interval=1, timeout=300
    )
    TimerWait(task_id="timer")


e2e_opsera_shared_triggerer_load()
e2e_opsera_shared_triggerer_neighbours()
