"""One pipeline run as an Airflow task follows it: status, console output, and how it ends.

Shared by :class:`~airflow_provider_opsera.operators.OpseraRunPipelineOperator` and
:class:`~airflow_provider_opsera.sensors.OpseraPipelineRunSensor`, in the worker and
in their resume methods after a deferred wait, so both end a run the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

from airflow_provider_opsera.client.status import OpseraRunStatus
from airflow_provider_opsera.exceptions import OpseraError, OpseraSummaryShapeError
from airflow_provider_opsera.waiting.lifecycle import may_stop
from airflow_provider_opsera.waiting.log_text import safe_line
from airflow_provider_opsera.waiting.run_logs import RunLogFollower
from airflow_provider_opsera.waiting.watch import ERROR, FAILED, STOPPED, SUCCESS, TIMEOUT, StatusWatch, outcome_error


class StopOutcome(NamedTuple):
    sent: bool
    #: what became of the stop, as a sentence for the task's error message
    words: str


class PipelineRunFollower:
    """Reads one run's status and console output through a sync :class:`OpseraHook`."""

    def __init__(
        self,
        hook: Any,
        pipeline_id: str,
        run_count: int,
        log: Any,
        *,
        fetch_logs: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hook = hook
        self.pipeline_id = pipeline_id
        self.run_count = run_count
        self.log = log
        self.fetch_logs = fetch_logs
        self.subject = f"Opsera pipeline {pipeline_id} run {run_count}"
        self.watch = StatusWatch(self.subject, log, tenant=hook.settings.status_map, clock=clock)
        # without fetch_logs the console is read once, silently, for a failure's last lines
        self.logs = RunLogFollower(self._read_console, log, echo=fetch_logs)

    def _read_console(self) -> list[dict[str, Any]]:
        return self.hook.get_pipeline_logs(self.pipeline_id, self.run_count, console_only=True)

    def read_status(self) -> tuple[str, str]:
        from airflow_provider_opsera.hooks.responses import run_status

        return run_status(self.hook.get_pipeline_run_status(self.pipeline_id, self.run_count), self.subject)

    def pull_logs(self, shown_through: Any = None) -> None:
        """Print the run's new console lines; ``shown_through``: the trigger showed them up to that record."""
        self.logs.console.shown_elsewhere_through(shown_through)
        if self.fetch_logs:
            self.logs.pull()

    def console_tail(self) -> str:
        """The last console lines, read once now if they were not being followed."""
        if not self.fetch_logs and not self.logs.pulls:
            self.logs.pull()
        return self.logs.tail_text()

    def conclude(self, event_status: str, message: str) -> int:
        """The run ended (or the wait gave up): return its run count on success, raise otherwise."""
        if event_status in (SUCCESS, FAILED, STOPPED):
            message = safe_line(message)  # Opsera's words about the run, on one line of the task log
        if event_status == SUCCESS:
            self.log.info(
                "%s succeeded (%d console lines shown): %s",
                self.subject,
                self.logs.console.lines_printed,
                message or "no message from Opsera",
            )
            return self.run_count
        if event_status == FAILED:
            raise outcome_error(FAILED, f"{self.subject} failed: {message}", self.console_tail())
        if event_status == STOPPED:
            raise outcome_error(STOPPED, f"{self.subject} was stopped in Opsera, so it did not succeed: {message}")
        if event_status == TIMEOUT:
            raise outcome_error(TIMEOUT, message)
        raise outcome_error(ERROR, message or f"Waiting on {self.subject} failed for an unknown reason.")

    def stop_if_still_ours(self, reason: str) -> StopOutcome:
        """Ask Opsera to stop this run, only while it is the pipeline's latest run and in progress.

        Opsera's stop addresses the pipeline: sent for a run that has ended, it would stop the
        next one, which may be a person's. So the pipeline's latest run count and this run's
        status are read right before; otherwise the log says what was found and nothing is sent.
        Never raises (stopping is a courtesy: it must not mask why the task ends).
        """
        from airflow_provider_opsera.hooks.responses import latest_run_count

        try:
            try:
                latest: int | None = latest_run_count(self.hook.get_pipeline(self.pipeline_id), self.pipeline_id)
            except OpseraSummaryShapeError:
                latest = None
            status, _ = self.read_status()
            check = may_stop(self.run_count, latest, OpseraRunStatus.outcome(status, self.watch.tenant))
            if not check.stop:
                self.log.warning("Not stopping %s (%s): %s.", self.subject, reason, check.why)
                return StopOutcome(False, f"No stop was sent: {check.why}.")
            answer = self.hook.stop_pipeline(self.pipeline_id)
        except Exception as error:
            kind = "" if isinstance(error, OpseraError) else f"{type(error).__name__}: "
            self.log.error("Could not stop %s (%s): %s%s", self.subject, reason, kind, error)
            return StopOutcome(False, "Stopping the run failed (see the log): check it in Opsera.")
        message = answer.get("message") if isinstance(answer, dict) else answer
        self.log.info("Asked Opsera to stop %s (%s; %s): %s", self.subject, reason, check.why, message)
        return StopOutcome(True, "The run was asked to stop (Opsera lets the current step finish).")
