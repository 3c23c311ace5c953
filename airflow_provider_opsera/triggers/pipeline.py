"""Waits, in Airflow's triggerer, for one Opsera pipeline run to end."""

from __future__ import annotations

from typing import Any

from airflow_provider_opsera.client import validation
from airflow_provider_opsera.client.status import OpseraRunStatus
from airflow_provider_opsera.exceptions import OpseraSummaryShapeError
from airflow_provider_opsera.triggers import stored_args
from airflow_provider_opsera.triggers.live_console import LiveConsole
from airflow_provider_opsera.triggers.polling import OpseraPollingTrigger
from airflow_provider_opsera.triggers.settle import runs_in_a_triggerer
from airflow_provider_opsera.waiting.events import CONSOLE_SHOWN_THROUGH
from airflow_provider_opsera.waiting.lifecycle import may_stop


class OpseraPipelineRunTrigger(OpseraPollingTrigger):
    """Polls the status of run ``run_count`` of pipeline ``pipeline_id`` until it ends.

    Fires one event ``{"status", "message", "pipeline_id", "run_count"}`` with status
    ``success``, ``failed``, ``stopped`` (by a person), ``timeout`` (``timeout``
    seconds passed; the run is still going and the task stops it) or ``error`` (the
    status could not be read). A paused run (an approval gate) is waited through.
    When the task is marked failed while deferred (Airflow 3.3+), the run is stopped.

    :param pipeline_id: the pipeline's id
    :param run_count: the run's number, as ``run`` answered it
    :param opsera_conn_id: the Airflow connection to Opsera
    :param poll_interval: seconds between two status reads, from 1 to 86400 (a day)
    :param timeout: seconds to wait at most, more than 0 and at most 366 days (None: no limit)
    :param end_time: the absolute deadline (epoch seconds); set from ``timeout`` when
        the trigger is created, and kept as is when it is rebuilt in the triggerer
    :param fetch_logs: show the run's new console lines in the trigger's log (Airflow shows them in the
        task's log) as the run moves on; the event says how far they were shown, for the resumed task
    :param unknown: arguments another version of the provider stored that this one does not
        know: logged and left out. Values out of range are brought into it, with a warning
        (``triggers/stored_args.py`` says how).
    """

    def __init__(
        self,
        pipeline_id: str,
        run_count: int,
        opsera_conn_id: str = "opsera_default",
        poll_interval: float = 30,
        timeout: float | None = None,
        end_time: float | None = None,
        fetch_logs: bool = True,
        **unknown: Any,
    ) -> None:
        super().__init__(
            opsera_conn_id=opsera_conn_id, poll_interval=poll_interval, timeout=timeout, end_time=end_time, **unknown
        )
        self.pipeline_id = pipeline_id
        self.run_count = stored_args.checked_or_kept(
            validation.positive_int, run_count, "run_count", stored_args.warner(self)
        )
        self.fetch_logs = fetch_logs
        self._console: LiveConsole | None = None

    def ids(self) -> dict[str, Any]:
        return {"pipeline_id": self.pipeline_id, "run_count": self.run_count}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        classpath, kwargs = super().serialize()
        return classpath, {**kwargs, "fetch_logs": self.fetch_logs}

    async def follow(self, hook: Any, answer: tuple[str, str]) -> None:
        if not self.fetch_logs:
            return
        if self._console is None:
            # only a triggerer hands a wait over to another one: dag.test() keeps no note of how far it showed
            ti = getattr(self, "task_instance", None) if runs_in_a_triggerer(self) else None
            self._console = LiveConsole(self.pipeline_id, self.run_count, self.log, ti)
        await self._console.follow(hook, answer)

    def event_fields(self) -> dict[str, Any]:
        shown = self._console.shown_through if self._console is not None else None
        return {CONSOLE_SHOWN_THROUGH: shown} if shown else {}

    def subject(self) -> str:
        return f"Opsera pipeline {self.pipeline_id} run {self.run_count}"

    async def read_status(self, hook: Any) -> tuple[str, str]:
        from airflow_provider_opsera.hooks.responses import run_status

        return run_status(await hook.get_pipeline_run_status(self.pipeline_id, self.run_count), self.subject())

    async def stop_remote(self, hook: Any, reason: str) -> None:
        """Stop the run, only while it is the pipeline's latest and in progress (see ``lifecycle.may_stop``).

        The reads that decide it go with the stop on the client's connections kept for stops: never behind polls.
        """
        from airflow_provider_opsera.hooks.opsera_async import stop_lane
        from airflow_provider_opsera.hooks.responses import latest_run_count

        with stop_lane():
            try:
                latest: int | None = latest_run_count(await hook.get_pipeline(self.pipeline_id), self.pipeline_id)
            except OpseraSummaryShapeError:
                latest = None
            status, _ = await self.read_status(hook)
            outcome = OpseraRunStatus.outcome(status, (await hook.settings()).status_map)
            check = may_stop(self.run_count, latest, outcome)
            if not check.stop:
                self.log.info("Not stopping %s (%s): %s.", self.subject(), reason, check.why)
                return
            answer = await hook.stop_pipeline(self.pipeline_id)
        message = answer.get("message") if isinstance(answer, dict) else answer
        self.log.info("Asked Opsera to stop %s (%s; %s): %s", self.subject(), reason, check.why, message)
