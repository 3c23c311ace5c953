"""Waits for an Opsera pipeline run that something else started."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_opsera._compat import AirflowSensorTimeout, BaseSensorOperator, default_deferrable
from airflow_provider_opsera.client import validation
from airflow_provider_opsera.client.pipeline_lookup import check_reference_at_parse, resolve_pipeline_id
from airflow_provider_opsera.exceptions import OpseraError, OpseraInputError
from airflow_provider_opsera.links.opsera import OpseraPipelineRunLink, publish_run_url, remember_run_url
from airflow_provider_opsera.sensors.timing import check_trigger_timing
from airflow_provider_opsera.waiting.events import CONSOLE_SHOWN_THROUGH, checked_event
from airflow_provider_opsera.waiting.pipeline_run import PipelineRunFollower
from airflow_provider_opsera.waiting.watch import EVENT_STATUS_OF, TIMEOUT, FailedPolls

if TYPE_CHECKING:
    from airflow_provider_opsera.hooks.opsera import OpseraHook


def checked_run_count(value: Any) -> int:
    """The number of the run to wait for; anything else is refused with an example of what to give."""
    try:
        return validation.positive_int(value, "run_count")
    except OpseraInputError as error:
        raise OpseraInputError(
            f"{error}: the sensor waits for one run, given by its number, such as the run count "
            "OpseraRunPipelineOperator returns: run_count=\"{{ ti.xcom_pull(task_ids='run_pipeline') }}\""
        ) from None


class OpseraPipelineRunSensor(BaseSensorOperator):
    """Wait for run ``run_count`` of an Opsera pipeline to end, e.g. one an upstream task started.

    Ends like :class:`~airflow_provider_opsera.operators.OpseraRunPipelineOperator`:
    success on success; a failed run fails the task with Opsera's message and the last
    console lines; a stopped run fails it without retries; a paused run is waited
    through. The run's console output goes into the task log (``fetch_logs``): line by
    line as it appears in ``poke`` mode, once the run ended in ``reschedule`` mode
    (each poke is a new process there) and after a deferred wait.

    The sensor does not own the run, so it never stops it: a timeout fails the task
    and leaves the run alone.

    :param pipeline_id: the pipeline's id; templated
    :param pipeline_name: instead of ``pipeline_id``, the pipeline's name in Opsera, looked up in the
        pipeline list when the task runs (Power User role); the id found goes to XCom (``pipeline_id``); templated
    :param run_count: the run's number, e.g. ``"{{ ti.xcom_pull('run_pipeline') }}"``; templated. Checked when
        the DAG is parsed (``"latest"`` is refused then), or once rendered
    :param deferrable: wait in the triggerer; default: Airflow's ``[operators] default_deferrable``.
        The trigger polls every ``poke_interval`` seconds (1 to 86400) for at most ``timeout`` seconds
        (more than 0, at most 366 days); other values are refused when the DAG is parsed
    :param fetch_logs: copy the run's console output into the task log
    :param opsera_conn_id: the Airflow connection to Opsera; templated
    :param poke_interval: Airflow's sensor argument: seconds between two status reads
    :param timeout: Airflow's sensor argument: seconds to wait at most; then the task fails and the run goes on
    :param mode: Airflow's sensor argument: ``poke`` (hold a worker slot) or ``reschedule``
    """

    template_fields: Sequence[str] = ("pipeline_id", "pipeline_name", "run_count", "opsera_conn_id")
    operator_extra_links = (OpseraPipelineRunLink(),)
    ui_color = "#e3f1fc"

    def __init__(
        self,
        *,
        pipeline_id: str | None = None,
        pipeline_name: str | None = None,
        run_count: int | str,
        deferrable: bool | None = None,
        fetch_logs: bool = True,
        opsera_conn_id: str = "opsera_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_reference_at_parse(pipeline_id, pipeline_name)
        self.pipeline_id = pipeline_id
        self.pipeline_name = pipeline_name
        self.run_count = validation.checked_at_parse(checked_run_count, run_count)
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        if self.deferrable:
            check_trigger_timing(self)
        self.fetch_logs = fetch_logs
        self.opsera_conn_id = opsera_conn_id
        self._run: PipelineRunFollower | None = None
        self._failed_polls = FailedPolls()

    @cached_property
    def hook(self) -> OpseraHook:
        from airflow_provider_opsera.hooks.opsera import OpseraHook

        return OpseraHook(self.opsera_conn_id)

    def execute(self, context: Any) -> Any:
        self.run_count = checked_run_count(self.run_count)
        self.pipeline_id = resolve_pipeline_id(self.hook, self.pipeline_id, self.pipeline_name, context, self.log)
        publish_run_url(self, context["ti"], self.hook.pipeline_url(self.pipeline_id))
        if self.deferrable:
            # imported here: Airflow's trigger base is not needed to parse a DAG
            from airflow_provider_opsera.triggers.pipeline import OpseraPipelineRunTrigger

            self.defer(
                trigger=OpseraPipelineRunTrigger(
                    pipeline_id=self.pipeline_id,
                    run_count=self.run_count,
                    opsera_conn_id=self.opsera_conn_id,
                    poll_interval=self.poke_interval,
                    timeout=self.timeout,
                    fetch_logs=self.fetch_logs,
                ),
                method_name="execute_complete",
            )
        return super().execute(context)

    def _follower(self, pipeline_id: str, run_count: int) -> PipelineRunFollower:
        if self._run is None or (self._run.pipeline_id, self._run.run_count) != (pipeline_id, run_count):
            self._run = PipelineRunFollower(self.hook, pipeline_id, run_count, self.log, fetch_logs=self.fetch_logs)
        return self._run

    def poke(self, context: Any) -> bool:
        run = self._follower(self.pipeline_id, int(self.run_count))
        try:
            status, message = run.read_status()
        except OpseraError as error:
            if not self._failed_polls.tolerate(error):
                raise
            self.log.warning("Reading the status of %s failed; trying again next poke: %s", run.subject, error)
            return False
        self._failed_polls.ok()
        streaming = self.mode == "poke"
        if streaming:
            run.pull_logs()  # what the run printed, before what is said of its state
        outcome = run.watch.observe(status)
        if not outcome.is_terminal:
            return False
        if not streaming:
            run.pull_logs()
        run.conclude(EVENT_STATUS_OF[outcome], message)
        return True

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> None:
        """Resume after the deferred wait: copy the console output into the task log, then end like the run."""
        shown_through = event.get(CONSOLE_SHOWN_THROUGH) if isinstance(event, dict) else None
        event = checked_event(
            event,
            subject=f"the wait for run {self.run_count} of Opsera pipeline {self.pipeline_id or self.pipeline_name}",
            fields={"pipeline_id": validation.object_id, "run_count": validation.positive_int},
        )
        remember_run_url(self, self.hook.pipeline_url(event["pipeline_id"]))
        run = self._follower(event["pipeline_id"], event["run_count"])
        status, message = event["status"], event["message"]
        run.pull_logs(shown_through=shown_through)  # the trigger showed those already
        if status == TIMEOUT:
            raise AirflowSensorTimeout(f"{message} The run was left alone: this sensor did not start it.")
        run.conclude(status, message)
