"""Operators that run, stop and reset Opsera pipelines."""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_opsera._compat import (
    AirflowException,
    AirflowFailException,
    AirflowTaskTimeout,
    BaseOperator,
    TaskDeferred,
    default_deferrable,
)
from airflow_provider_opsera.client import validation
from airflow_provider_opsera.client.pipeline_lookup import check_reference_at_parse, resolve_pipeline_id
from airflow_provider_opsera.client.status import OpseraRunStatus, RunOutcome
from airflow_provider_opsera.client.token import expires_before_wait_ends
from airflow_provider_opsera.exceptions import OpseraAmbiguousRequestError, OpseraError
from airflow_provider_opsera.links.opsera import OpseraPipelineRunLink, publish_run_url, remember_run_url
from airflow_provider_opsera.waiting.events import CONSOLE_SHOWN_THROUGH, checked_event
from airflow_provider_opsera.waiting.lifecycle import (
    IN_PROGRESS,
    STATE_UNKNOWN,
    TIMED_OUT,
    Begin,
    Chain,
    Ending,
    RunNote,
    how_to_begin,
    how_to_settle,
)
from airflow_provider_opsera.waiting.pipeline_run import PipelineRunFollower
from airflow_provider_opsera.waiting.run_facts import PipelineRuns, TaskNote, task_state_now
from airflow_provider_opsera.waiting.watch import EVENT_STATUS_OF, TIMEOUT, Deadline, FailedPolls, outcome_error

#: seconds a run request is asked again while another run of the pipeline is in progress
DEFAULT_START_TIMEOUT = 900.0

if TYPE_CHECKING:
    from airflow_provider_opsera.hooks.opsera import OpseraHook


class _PipelineOperator(BaseOperator):
    """Common ground: a pipeline given by id or by name, and a lazily built hook (nothing is read before ``execute``)."""

    template_fields: Sequence[str] = ("pipeline_id", "pipeline_name", "opsera_conn_id")
    ui_color = "#e3f1fc"

    def __init__(
        self,
        *,
        pipeline_id: str | None = None,
        pipeline_name: str | None = None,
        opsera_conn_id: str = "opsera_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_reference_at_parse(pipeline_id, pipeline_name)
        self.pipeline_id = pipeline_id
        self.pipeline_name = pipeline_name
        self.opsera_conn_id = opsera_conn_id

    @cached_property
    def hook(self) -> OpseraHook:
        from airflow_provider_opsera.hooks.opsera import OpseraHook

        return OpseraHook(self.opsera_conn_id)

    def resolve_pipeline(self, context: Any) -> str:
        """Settle ``pipeline_id`` once templates are rendered: a name is looked up in Opsera's pipeline list."""
        self.pipeline_id = resolve_pipeline_id(self.hook, self.pipeline_id, self.pipeline_name, context, self.log)
        return self.pipeline_id


class OpseraRunPipelineOperator(_PipelineOperator):
    """Start a run of an Opsera pipeline and, by default, wait for it to end.

    The task succeeds when the run succeeds and returns the run count (XCom
    ``return_value``). A failed run fails the task with Opsera's message and the last
    console lines; a run stopped in Opsera fails it without retries; a run paused at an
    approval gate is waited through. The pipeline's console output goes into the task
    log as the run goes on (``fetch_logs``), each line prefixed with its step, e.g.
    ``[build] Compiling...``. The task's "Opsera pipeline run" link opens the pipeline
    in the Opsera portal.

    Waiting happens in the worker (a poll every ``poll_interval`` seconds) or, with
    ``deferrable=True``, in Airflow's triggerer without holding a worker slot.

    What the task does with its run in every situation (a retry, a Clear, a kill, a
    timeout, a run someone else started) is the table "How a pipeline task behaves" in
    the README, decided in ``airflow_provider_opsera.waiting.lifecycle``. In short:
    one run per try chain (a retry carries on with it, a Clear starts a new one); a run
    request whose answer was lost is never resent; a stop is sent only for the task's own
    run, while it is still the pipeline's latest and in progress.

    :param pipeline_id: the pipeline's id (24 hex characters); templated
    :param pipeline_name: instead of ``pipeline_id``, the pipeline's name in Opsera; templated. It is
        looked up in Opsera's pipeline list when the task runs (the token's owner needs the Power User
        role); the id found is logged and pushed to XCom (``pipeline_id``)
    :param wait_for_completion: wait for the run to end (else return once it started)
    :param deferrable: wait in the triggerer; default: Airflow's
        ``[operators] default_deferrable``
    :param poll_interval: seconds between two status reads, from 1 to 86400 (a day); templated
    :param timeout: seconds to wait at most, more than 0 and at most 366 days (None: no limit); templated.
        Both are checked when the DAG is parsed, or once rendered, before anything is sent
    :param start_timeout: seconds to keep asking for a run while Opsera refuses one because another run of
        the pipeline is in progress (someone else's, or the task's own earlier run finishing its step after
        a stop); then the task fails naming that run; templated
    :param fetch_logs: copy the run's console output into the task log
    :param stop_on_kill: stop the task's own run when the task is killed, marked failed, cleared or times
        out, and on its last try when it fails while the run goes on
    :param durable: keep the task's run in Airflow's ``task_state_store`` (Airflow 3.3+), so that a retry
        carries on with it and a Clear starts a new one
    :param opsera_conn_id: the Airflow connection to Opsera; templated
    """

    template_fields: Sequence[str] = (
        "pipeline_id",
        "pipeline_name",
        "opsera_conn_id",
        "poll_interval",
        "timeout",
        "start_timeout",
    )
    operator_extra_links = (OpseraPipelineRunLink(),)

    # Tests put a fake clock here.
    _sleep = staticmethod(time.sleep)
    _clock = staticmethod(time.monotonic)

    def __init__(
        self,
        *,
        pipeline_id: str | None = None,
        pipeline_name: str | None = None,
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        poll_interval: float = 30,
        timeout: float | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        fetch_logs: bool = True,
        stop_on_kill: bool = True,
        durable: bool = True,
        opsera_conn_id: str = "opsera_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(pipeline_id=pipeline_id, pipeline_name=pipeline_name, opsera_conn_id=opsera_conn_id, **kwargs)
        self.wait_for_completion = wait_for_completion
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poll_interval = validation.checked_at_parse(validation.poll_interval, poll_interval)
        self.timeout = validation.checked_at_parse(validation.timeout, timeout)
        self.start_timeout = validation.checked_at_parse(_start_timeout, start_timeout)
        self.fetch_logs = fetch_logs
        self.stop_on_kill = stop_on_kill
        self.durable = durable
        self.run_count: int | None = None
        self._note = TaskNote(None, "", self.log)
        self._ti: Any = None
        self._chain = Chain(None, None)
        self._run_ended = False  # the task saw its run end: nothing of it is left to settle
        self._settled = False  # the try decided what becomes of its run already
        self._reading_opsera = False  # the try is in its wait loop, not in a call to Airflow's supervisor

    def execute(self, context: Any) -> int:
        # rendered templates are checked before anything is sent
        self.poll_interval = validation.poll_interval(self.poll_interval)
        self.timeout = validation.timeout(self.timeout)
        self.start_timeout = _start_timeout(self.start_timeout)
        self.resolve_pipeline(context)
        self._remember_try(context)
        publish_run_url(self, context["ti"], self.hook.pipeline_url(self.pipeline_id))
        try:
            run_count = self._begin()
            if self._run_ended or not self.wait_for_completion:
                if not self._run_ended:
                    self.log.info("Not waiting for run %d (wait_for_completion=False).", run_count)
                return run_count
            if self.deferrable:
                self._defer(run_count)
            return self._wait_in_worker(run_count)
        except TaskDeferred:
            raise  # the triggerer waits
        except AirflowTaskTimeout:
            self._settle(Ending.EXECUTION_TIMEOUT)
            raise
        except Exception:
            self._settle(Ending.TRY_FAILED)
            raise

    def _remember_try(self, context: Any) -> None:
        self._ti = context.get("ti")
        self._chain = Chain.of(context)
        self._note = TaskNote(context.get("task_state_store") if self.durable else None, self.pipeline_id, self.log)

    # -- the start of a try: carry on, or start a run (waiting/lifecycle.py decides) --

    def _begin(self) -> int:
        """The run this try follows: the chain's own, a new one, or (it succeeded) one to return at once."""
        runs = PipelineRuns(self.hook, self.pipeline_id, self.log)
        latest = runs.latest()
        beginning = how_to_begin(
            self._note.read(),
            self._chain,
            has_store=self._note.store is not None,
            later_try_of_chain=self._later_try_of_chain(),
            stop_on_kill=self.stop_on_kill,
            latest=latest,
            outcome_of=runs.outcome,
        )
        self.log.info("Opsera pipeline %s: %s (%s).", self.pipeline_id, beginning.action.value, beginning.why)
        if beginning.action is Begin.FAIL:
            raise AirflowFailException(f"Opsera pipeline {self.pipeline_id}: {beginning.why}.")
        if beginning.action in (Begin.FOLLOW, Begin.RETURN):
            assert beginning.run is not None
            self._run_ended = beginning.action is Begin.RETURN
            return self._note_run(beginning.run)
        if beginning.action is Begin.STOP_THEN_START and beginning.run is not None:
            self._follower(beginning.run).stop_if_still_ours(beginning.why)
        return self._start_run(runs, latest)

    def _later_try_of_chain(self) -> bool:
        """A retry rather than the first try since the task was cleared: Airflow sets ``max_tries`` to the try
        number plus ``retries`` on a Clear."""
        ti = self._ti
        try_number, max_tries = getattr(ti, "try_number", None) or 1, getattr(ti, "max_tries", None) or 0
        return try_number > max_tries - (self.retries or 0) + 1

    def _start_run(self, runs: PipelineRuns, latest: int | None) -> int:
        """Ask Opsera for a run, noting the request first; refused while another run is going, ask again later."""
        from airflow_provider_opsera.hooks.responses import as_text, run_number

        busy = Deadline.after(self.start_timeout, self._clock)
        while True:
            self._note.write(RunNote(self._chain, requested=True, requested_after=latest))  # before: see the note
            try:
                answer = self.hook.run_pipeline(self.pipeline_id)
            except OpseraAmbiguousRequestError as error:
                return self._note_run(self._run_started_despite(error, runs, latest))
            answer = answer if isinstance(answer, dict) else {"message": answer}
            if OpseraRunStatus.outcome(answer.get("status")) is not RunOutcome.FAILED and "runCount" in answer:
                what = f"The runCount Opsera answered to the run request of pipeline {self.pipeline_id}"
                return self._note_run(run_number(answer["runCount"], f"{what} (a run may have started)"))
            reason = as_text(answer.get("message")) or "no reason given"
            self._note.forget()  # refused: the next run is not this request's, whoever starts it
            latest, in_the_way = runs.in_the_way()
            if in_the_way is None or busy.passed():
                waited = f" (asked for {self.start_timeout:g} s: start_timeout)" if in_the_way is not None else ""
                raise AirflowException(f"Opsera did not start pipeline {self.pipeline_id}: {reason}{waited}")
            self.log.info(
                "Opsera did not start pipeline %s while its run %d is %s (%s); asking again in %g s, for up to "
                "%g s in all (start_timeout).",
                self.pipeline_id,
                latest,
                in_the_way.value,
                reason,
                self.poll_interval,
                self.start_timeout,
            )
            self._sleep(busy.next_sleep(self.poll_interval))
            latest = runs.latest()  # that run may have ended and another begun while the task slept

    def _run_started_despite(self, error: OpseraAmbiguousRequestError, runs: PipelineRuns, before: int | None) -> int:
        """The run request may or may not have reached Opsera: the pipeline's summary tells which."""
        self.log.warning("%s. Reading the pipeline's summary to find out whether a run started.", error)
        if before is None:
            raise AirflowFailException(
                f"{error}; and the pipeline's summary does not say its latest run count, so whether a run started "
                "cannot be told. Check the pipeline in Opsera; the task is not retried, to start no second run."
            ) from error
        try:
            after = runs.latest(strict=True)
        except OpseraError as read_error:
            # the note of the request stays: a retry reads the summary again and follows a run that started
            raise AirflowException(
                f"{error}; and reading the pipeline's summary to find out failed too: {read_error}. "
                "Check the pipeline in Opsera before retrying."
            ) from error
        if after is not None and after > before:
            run_count = before + 1  # the first run after the request is the one it started
            self.log.warning("Opsera started run %d of pipeline %s: following it.", run_count, self.pipeline_id)
            return run_count
        self.log.error("Opsera's latest run of pipeline %s is still %d: no run started.", self.pipeline_id, before)
        self._note.forget()
        raise error

    def _note_run(self, run_count: int) -> int:
        self.run_count = run_count
        self._note.write(RunNote(self._chain, run=run_count))
        return run_count

    # -- waiting --

    def _defer(self, run_count: int) -> None:
        # imported here: Airflow's trigger base is not needed to parse a DAG
        from airflow_provider_opsera.triggers.pipeline import OpseraPipelineRunTrigger

        self.defer(
            trigger=OpseraPipelineRunTrigger(
                pipeline_id=self.pipeline_id,
                run_count=run_count,
                opsera_conn_id=self.opsera_conn_id,
                poll_interval=self.poll_interval,
                timeout=self.timeout,
                fetch_logs=self.fetch_logs,
            ),
            method_name="execute_complete",
        )

    def _follower(self, run_count: int) -> PipelineRunFollower:
        return PipelineRunFollower(
            self.hook, self.pipeline_id, run_count, self.log, fetch_logs=self.fetch_logs, clock=self._clock
        )

    def _wait_in_worker(self, run_count: int) -> int:
        from airflow_provider_opsera.hooks.retry import calls_end_by

        run = self._follower(run_count)
        deadline = Deadline.after(self.timeout, self._clock)
        failed_polls = FailedPolls()
        limit = f", for at most {self.timeout:g} s" if self.timeout is not None else ""
        self.log.info("Waiting for %s: a status read every %g s%s.", run.subject, self.poll_interval, limit)
        expiry_warning = expires_before_wait_ends(self.hook.settings.token_expires, self.timeout)
        if expiry_warning:
            self.log.warning(expiry_warning)
        while True:
            self._reading_opsera = True  # on_kill may read the task's state now (see _task_state_now)
            try:
                with calls_end_by(deadline.end_time, self._clock):  # a read's retries end with the wait
                    status, message = run.read_status()
                run.pull_logs()  # what the run printed, before what is said of its state
                outcome = run.watch.observe(status)
            except OpseraError as error:
                self._reading_opsera = False
                if not failed_polls.tolerate(error):
                    raise
                self.log.warning("Reading the status of %s failed; polling on: %s", run.subject, error)
            else:
                failed_polls.ok()
                self._reading_opsera = False
                if outcome.is_terminal:
                    self._run_ended = True
                    return run.conclude(EVENT_STATUS_OF[outcome], message)
            if deadline.passed():
                self._fail_after_timeout(f"{run.subject} did not finish within {self.timeout:g} seconds.")
            self._reading_opsera = True
            self._sleep(deadline.next_sleep(self.poll_interval))
            self._reading_opsera = False

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> int:
        """Resume after the deferred wait: copy the console output into the task log, then end like the run."""
        # The event carries the ids: the kwargs given to defer() may not reach this method, and a
        # pipeline given by name is not looked up again.
        raw_event = event if isinstance(event, dict) else {}
        event = checked_event(
            event,
            subject=f"the wait for a run of Opsera pipeline {self.pipeline_id or self.pipeline_name}",
            fields={"pipeline_id": validation.object_id, "run_count": validation.positive_int},
        )
        self.pipeline_id = event["pipeline_id"]
        self.run_count = event["run_count"]
        self._remember_try(context)
        status, message = event["status"], event["message"]
        self._run_ended = status in EVENT_STATUS_OF.values()
        remember_run_url(self, self.hook.pipeline_url(self.pipeline_id))
        try:
            run = self._follower(self.run_count)
            run.pull_logs(shown_through=raw_event.get(CONSOLE_SHOWN_THROUGH))  # the trigger showed those already
            if status == TIMEOUT:
                self._fail_after_timeout(message)
            return run.conclude(status, message)
        except Exception:
            self._settle(Ending.TRY_FAILED)
            raise

    # -- a try that ends before its run did (waiting/lifecycle.py decides) --

    def _fail_after_timeout(self, message: str) -> None:
        raise outcome_error(TIMEOUT, f"{message} {self._settle(Ending.TIMEOUT)}")

    def _settle(self, ending: Ending, task_state: str = STATE_UNKNOWN, *, can_note: bool = True) -> str:
        """Stop the try's run or leave it, once per try, as the lifecycle says; what was done, in a sentence."""
        if self._settled or self.run_count is None or self._run_ended or not self.wait_for_completion:
            return ""
        self._settled = True
        ti = self._ti
        retries_left = (getattr(ti, "try_number", None) or 1) <= (getattr(ti, "max_tries", None) or 0)
        settlement = how_to_settle(
            ending,
            stop_on_kill=self.stop_on_kill,
            retries_left=retries_left,
            task_state=task_state,
            has_store=self._note.store is not None,
            can_note=can_note,
        )
        run = self._follower(self.run_count)
        if not settlement.stop:
            self.log.warning("%s goes on: %s.", run.subject, settlement.why)
            return f"The run was left running ({settlement.why})."
        stop = run.stop_if_still_ours(settlement.why)
        if can_note and (stop.sent or ending is Ending.TIMEOUT):
            reason = TIMED_OUT if ending is Ending.TIMEOUT else ending.name.lower()
            try:  # a later try of the chain reads why this one stopped its run
                self._note.write(RunNote(self._chain, run=self.run_count, stopped=reason))
            except Exception as error:
                self.log.warning("Could not note in task_state_store that %s was stopped: %s", run.subject, error)
        return stop.words

    def on_kill(self) -> None:
        """Airflow ended the try while it waited in the worker: stop its run, or leave it, as the lifecycle says.

        The task's state is read over the Task SDK from the SIGTERM handler only while the try is in its wait
        loop: the supervisor's channel takes one request at a time, and a kill that interrupts one would wait
        on it for ever.
        """
        if self.run_count is None or self._settled or self._run_ended:
            return
        in_wait_loop = self._reading_opsera  # no call to Airflow is in flight: the channel is free
        state = task_state_now(self._ti, self.log) if in_wait_loop else STATE_UNKNOWN
        self._settle(Ending.KILLED, state, can_note=in_wait_loop)


def _start_timeout(value: Any) -> float:
    return validation.timeout(value, "start_timeout", allow_none=False)  # type: ignore[return-value]


class _PipelineCommandOperator(_PipelineOperator):
    """Sends one command about a pipeline and returns Opsera's answer."""

    hook_method: str

    def execute(self, context: Any) -> Any:
        self.resolve_pipeline(context)
        answer = getattr(self.hook, self.hook_method)(self.pipeline_id)
        message = answer.get("message") or answer if isinstance(answer, dict) else answer
        self.log.info("Opsera pipeline %s: %s", self.pipeline_id, message)
        return answer


class OpseraStopPipelineOperator(_PipelineCommandOperator):
    """Stop a pipeline's current run, whoever started it. Opsera's stop is soft: the current step finishes first.

    The pipeline's latest run is read first: when none is in progress (running, or paused at an
    approval gate), nothing is sent and the log says what the latest run is.

    :param pipeline_id: the pipeline's id; templated
    :param pipeline_name: instead of ``pipeline_id``, the pipeline's name, looked up when the task runs; templated
    :param opsera_conn_id: the Airflow connection to Opsera; templated
    :return: Opsera's answer, e.g. ``{"status": "success", "message": "The pipeline has been stopped."}``, with the
        ``run_count`` it was sent for; or, with nothing in progress, ``{"status": "not running", "message": ...}``
    """

    hook_method = "stop_pipeline"

    def execute(self, context: Any) -> Any:
        self.resolve_pipeline(context)
        runs = PipelineRuns(self.hook, self.pipeline_id, self.log)
        latest = runs.latest()
        outcome = runs.outcome(latest) if latest else None
        if latest is not None and outcome not in IN_PROGRESS:
            what = f"its latest run {latest} is {outcome.value}" if outcome else "it has never run"
            message = f"Pipeline {self.pipeline_id} has no run in progress ({what}): nothing to stop."
            self.log.info(message)
            return {"status": "not running", "message": message}
        answer = self.hook.stop_pipeline(self.pipeline_id)
        self.log.info(
            "Asked Opsera to stop run %s of pipeline %s (the current step finishes first): %s",
            latest if latest is not None else "(the latest)",
            self.pipeline_id,
            answer.get("message") if isinstance(answer, dict) else answer,
        )
        return {**answer, "run_count": latest} if isinstance(answer, dict) else answer


class OpseraResetPipelineOperator(_PipelineCommandOperator):
    """Reset a pipeline's run status (an active run is abandoned), e.g. to clear a stuck run.

    :param pipeline_id: the pipeline's id; templated
    :param pipeline_name: instead of ``pipeline_id``, the pipeline's name, looked up when the task runs; templated
    :param opsera_conn_id: the Airflow connection to Opsera; templated
    :return: Opsera's answer, e.g. ``{"status": "success", "message": "The pipeline run status has been reset."}``
    """

    hook_method = "reset_pipeline"
