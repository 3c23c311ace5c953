"""Waits for an Opsera task's latest run to end."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_opsera._compat import AirflowSensorTimeout, BaseSensorOperator, default_deferrable
from airflow_provider_opsera.client import validation
from airflow_provider_opsera.exceptions import OpseraError
from airflow_provider_opsera.sensors.timing import check_trigger_timing
from airflow_provider_opsera.waiting.events import checked_event
from airflow_provider_opsera.waiting.run_logs import RunLogFollower
from airflow_provider_opsera.waiting.watch import (
    EVENT_STATUS_OF,
    FAILED,
    STOPPED,
    SUCCESS,
    TIMEOUT,
    FailedPolls,
    StatusWatch,
    outcome_error,
)

if TYPE_CHECKING:
    from airflow_provider_opsera.hooks.opsera import OpseraHook


class OpseraTaskSensor(BaseSensorOperator):
    """Wait for an Opsera task's latest run to end, and put its console output in the task log.

    Opsera reports the status of a task's *latest* run (a task has no run id to ask
    about), so a task whose latest run already ended satisfies the sensor at once.
    Outcomes follow the pipeline sensor's: success on success; a failed run fails the
    task with the last console lines; a stopped run fails it without retries; a
    paused run is waited through; an unknown status counts as still running for 10 minutes, then fails
    the task naming it (map a tenant's statuses in the connection's ``status_map`` extra).

    :param opsera_task_id: the Opsera task's id; templated
    :param deferrable: wait in the triggerer; default: Airflow's ``[operators] default_deferrable``.
        The trigger polls every ``poke_interval`` seconds (1 to 86400) for at most ``timeout`` seconds
        (more than 0, at most 366 days); other values are refused when the DAG is parsed
    :param fetch_logs: copy the run's console output (``get_task_logs``) into the task log once it ended
    :param opsera_conn_id: the Airflow connection to Opsera; templated
    :param poke_interval: Airflow's sensor argument: seconds between two status reads
    :param timeout: Airflow's sensor argument: seconds to wait at most; then the task fails
    :param mode: Airflow's sensor argument: ``poke`` (hold a worker slot) or ``reschedule``
    """

    template_fields: Sequence[str] = ("opsera_task_id", "opsera_conn_id")
    ui_color = "#e3f1fc"

    def __init__(
        self,
        *,
        opsera_task_id: str,
        deferrable: bool | None = None,
        fetch_logs: bool = True,
        opsera_conn_id: str = "opsera_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.opsera_task_id = opsera_task_id
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        if self.deferrable:
            check_trigger_timing(self)
        self.fetch_logs = fetch_logs
        self.opsera_conn_id = opsera_conn_id
        self._watch: StatusWatch | None = None
        self._failed_polls = FailedPolls()

    @cached_property
    def hook(self) -> OpseraHook:
        from airflow_provider_opsera.hooks.opsera import OpseraHook

        return OpseraHook(self.opsera_conn_id)

    @property
    def subject(self) -> str:
        return f"Opsera task {self.opsera_task_id}"

    def execute(self, context: Any) -> Any:
        self.opsera_task_id = validation.object_id(self.opsera_task_id, "opsera_task_id")
        if self.deferrable:
            # imported here: Airflow's trigger base is not needed to parse a DAG
            from airflow_provider_opsera.triggers.task import OpseraTaskTrigger

            self.defer(
                trigger=OpseraTaskTrigger(
                    opsera_task_id=self.opsera_task_id,
                    opsera_conn_id=self.opsera_conn_id,
                    poll_interval=self.poke_interval,
                    timeout=self.timeout,
                ),
                method_name="execute_complete",
            )
        return super().execute(context)

    def poke(self, context: Any) -> bool:
        if self._watch is None:
            self._watch = StatusWatch(self.subject, self.log, tenant=self.hook.settings.status_map)
        try:
            status = self.hook.get_task_status(self.opsera_task_id)
        except OpseraError as error:
            if not self._failed_polls.tolerate(error):
                raise
            self.log.warning("Reading the status of %s failed; trying again next poke: %s", self.subject, error)
            return False
        self._failed_polls.ok()
        outcome = self._watch.observe(status)
        if not outcome.is_terminal:
            return False
        self._conclude(EVENT_STATUS_OF[outcome], f"its latest run ended with status {status!r}.")
        return True

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> None:
        """Resume after the deferred wait: copy the run's console output into the task log, then end like it."""
        event = checked_event(
            event, subject=f"the wait for {self.subject}", fields={"opsera_task_id": validation.object_id}
        )
        self.opsera_task_id = event["opsera_task_id"]
        status, message = event["status"], event["message"]
        if status == TIMEOUT:
            raise AirflowSensorTimeout(message)
        self._conclude(status, message)

    def _conclude(self, event_status: str, message: str) -> None:
        # without fetch_logs the console is read only for a failure's last lines, and not printed
        logs = RunLogFollower(self._read_latest_run_logs, self.log, echo=self.fetch_logs)
        if self.fetch_logs or event_status == FAILED:
            logs.pull()
        if event_status == SUCCESS:
            self.log.info("%s succeeded: %s", self.subject, message)
            return
        if event_status == FAILED:
            raise outcome_error(FAILED, f"{self.subject} failed: {message}", logs.tail_text())
        if event_status == STOPPED:
            raise outcome_error(STOPPED, f"{self.subject} was stopped in Opsera, so it did not succeed: {message}")
        raise outcome_error(event_status, message or f"Waiting on {self.subject} failed for an unknown reason.")

    def _read_latest_run_logs(self) -> list[dict[str, Any]]:
        task = self.hook.get_task(self.opsera_task_id)
        run_count = task.get("run_count") if isinstance(task, dict) else None
        valid = isinstance(run_count, int) and not isinstance(run_count, bool) and run_count > 0
        return self.hook.get_task_logs(self.opsera_task_id, run_count if valid else None)
