"""Operators that run, stop and reset Opsera pipelines."""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_opsera._compat import (
    AirflowException,
    AirflowTaskTimeout,
    BaseOperator,
    TaskDeferred,
    default_deferrable,
)
from airflow_provider_opsera.client import validation
from airflow_provider_opsera.client.pipeline_lookup import check_reference_at_parse, resolve_pipeline_id
from airflow_provider_opsera.client.status import OpseraRunStatus, RunOutcome
from airflow_provider_opsera.client.token import expires_before_wait_ends
from airflow_provider_opsera.exceptions import OpseraAmbiguousRequestError, OpseraBadResponseError, OpseraError
from airflow_provider_opsera.links.opsera import OpseraPipelineRunLink, publish_run_url, remember_run_url
from airflow_provider_opsera.waiting.events import checked_event
from airflow_provider_opsera.waiting.pipeline_run import PipelineRunFollower
from airflow_provider_opsera.waiting.resumable import ResumableJobMixin
from airflow_provider_opsera.waiting.watch import EVENT_STATUS_OF, TIMEOUT, Deadline, FailedPolls, outcome_error

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


class OpseraRunPipelineOperator(ResumableJobMixin, _PipelineOperator):
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

    No orphaned runs: with ``stop_on_kill`` the run is stopped when the task is killed,
    when ``timeout`` passes (then the task fails without retries), and, while
    deferred on Airflow 3.3+, when the task is marked failed. Opsera's stop is soft:
    the current step finishes first. A try that fails for another reason while the run
    goes on leaves the run to the next try, or stops it when no retry is left.

    One run per task, even when things go wrong:

    * If the request that starts the run gets no clear answer (the connection dropped
      after sending it, a 5xx), it is not resent. The pipeline's summary, read just
      before the request, tells whether Opsera started a run since: if its run count
      moved on, the task follows that run; if not, the task fails and a retry may start
      one.
    * A retry re-attaches to a run an earlier try started and that is still going
      (the worker died, say), instead of starting another.

      On Airflow 3.3+ the run count is kept in ``task_state_store``
      (``ResumableJobMixin``; ``durable=False`` turns it off): a retry follows that run
      while it is in progress, returns its run count if it succeeded, and starts a new
      run if it failed or was stopped. The request, too, is noted before it is sent, with
      the pipeline's latest run count then: a try killed before it learnt which run it
      started has its retry follow the first run after that count (or start a new run
      if that one failed).

      Older Airflow has no such store, so a retry (try 2 or later) reads the
      pipeline's summary and follows its latest run when that run is still in progress
      (running or paused). Opsera does not start a run while another one is running or
      paused, so that run is either the one the earlier try started or one that would
      block a new run anyway. When the latest run has ended, the retry starts a new run.

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
    :param fetch_logs: copy the run's console output into the task log
    :param stop_on_kill: stop the run when the task is killed or times out
    :param opsera_conn_id: the Airflow connection to Opsera; templated
    """

    template_fields: Sequence[str] = ("pipeline_id", "pipeline_name", "opsera_conn_id", "poll_interval", "timeout")
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
        fetch_logs: bool = True,
        stop_on_kill: bool = True,
        opsera_conn_id: str = "opsera_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(pipeline_id=pipeline_id, pipeline_name=pipeline_name, opsera_conn_id=opsera_conn_id, **kwargs)
        self.wait_for_completion = wait_for_completion
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poll_interval = validation.checked_at_parse(validation.poll_interval, poll_interval)
        self.timeout = validation.checked_at_parse(validation.timeout, timeout)
        self.fetch_logs = fetch_logs
        self.stop_on_kill = stop_on_kill
        self.run_count: int | None = None
        self._state_store: Any = None
        self._ti: Any = None
        self._run_ended = False
        self._stop_requested = False

    # ``task_state_store`` key of the started run; the pipeline id keeps a re-templated id from
    # re-attaching to another pipeline's run number.
    @property
    def external_id_key(self) -> str:  # type: ignore[override]
        return f"opsera_run_count:{self.pipeline_id}"

    # ``task_state_store`` key of a run this task timed out on and stopped, with the try chain's ``max_tries``: a
    # try killed before it could fail the task has its retry fail the same way (and start nothing), while a person
    # clearing the task (Airflow then sets ``max_tries`` anew) gets a new run.
    @property
    def timed_out_run_key(self) -> str:
        return f"opsera_timed_out_run:{self.pipeline_id}"

    # ``task_state_store`` key written just before the run request, with the pipeline's latest run count then, and
    # deleted once the started run is noted: a try killed in between leaves it, and its retry finds the run by it.
    @property
    def run_request_key(self) -> str:
        return f"opsera_run_request:{self.pipeline_id}"

    def execute(self, context: Any) -> int:
        # rendered templates are checked before anything is sent
        self.poll_interval = validation.poll_interval(self.poll_interval)
        self.timeout = validation.timeout(self.timeout)
        self.resolve_pipeline(context)
        self._state_store, self._ti = context.get("task_state_store"), context.get("ti")
        publish_run_url(self, context["ti"], self.hook.pipeline_url(self.pipeline_id))
        try:
            return self.execute_resumable(context)
        except (AirflowTaskTimeout, TaskDeferred):
            raise  # execution_timeout: Airflow calls on_kill next, which stops the run; deferred: the triggerer waits
        except Exception:
            self._settle_run_left_behind()
            raise

    def _settle_run_left_behind(self) -> None:
        """This try fails while its run goes on: leave the run to the next try, or stop it if none is left."""
        run_count = self.run_count
        if not (self.stop_on_kill and self.wait_for_completion and run_count):
            return
        if self._run_ended or self._stop_requested:
            return
        try_number = getattr(self._ti, "try_number", None) or 1
        if try_number <= (getattr(self._ti, "max_tries", None) or 0):
            self.log.warning(
                "Try %d ends while Opsera pipeline %s run %d goes on: it is left running for the next try, "
                "which follows it.",
                try_number,
                self.pipeline_id,
                run_count,
            )
            return
        self._stop(self._follower(self.pipeline_id, run_count), "the task's last try failed while the run went on")

    def _stop(self, run: PipelineRunFollower, reason: str) -> bool:
        self._stop_requested = True
        return run.stop(reason)

    # -- starting the run --

    def _durable_store(self, context: Any) -> Any:
        return context.get("task_state_store") if getattr(self, "durable", True) else None

    def submit_job(self, context: Any) -> int:
        store = self._durable_store(context)
        before, _ = self._latest_run()
        earlier = self._run_an_earlier_try_asked_for(store, before)
        if earlier is not None:
            return earlier
        if store is not None:  # before the request: a try killed after sending it leaves this for its retry
            store.set(self.run_request_key, {"latest_run_before": before})
        try:
            run_count = self._started_run_count(self.hook.run_pipeline(self.pipeline_id))
        except OpseraAmbiguousRequestError as error:
            run_count = self._run_started_despite(error, before, store)
        except OpseraBadResponseError:
            raise  # an answer that cannot be read: a run may have started, and the note stays for the retry
        except Exception:
            self._forget_run_request(store)  # a clear refusal: no run started
            raise
        self._note_run(store, run_count)
        url = self.hook.pipeline_url(self.pipeline_id)
        self.log.info("Started Opsera pipeline %s run %d: %s", self.pipeline_id, run_count, url)
        return run_count

    def _note_run(self, store: Any, run_count: int) -> None:
        """The run this try follows, in the store before the note of the request goes (the mixin writes it again)."""
        self.run_count = run_count
        if store is not None:
            store.set(self.external_id_key, run_count)
            self._forget_run_request(store)

    def _forget_run_request(self, store: Any) -> None:
        if store is None:
            return
        try:
            store.delete(self.run_request_key)
        except Exception as error:  # a note left behind is harmless: a retry reads it against the run count
            self.log.warning("Could not delete %s from task_state_store: %s", self.run_request_key, error)

    def _run_an_earlier_try_asked_for(self, store: Any, latest: int) -> int | None:
        """The run an earlier try asked for and ended before noting, when one started and has not failed."""
        note = store.get(self.run_request_key) if store is not None else None
        if note is None:
            return None
        run_count = self._run_started_for(note, latest)
        if run_count is None:
            self._forget_run_request(store)
        else:
            self._note_run(store, run_count)
        return run_count

    def _run_started_for(self, note: Any, latest: int) -> int | None:
        """The first run after the request ``note`` records, to follow; None (and why, in the log) to start anew."""
        noted = note.get("latest_run_before") if isinstance(note, dict) else None
        if not isinstance(noted, int) or isinstance(noted, bool) or noted < 0:
            self.log.warning("Ignoring %s in task_state_store: %r is not a run count.", self.run_request_key, note)
            return None
        if latest <= noted:
            self.log.info(
                "An earlier try asked Opsera for a run of pipeline %s and ended before it knew the answer; no run "
                "started since (the latest is still %d).",
                self.pipeline_id,
                noted,
            )
            return None
        run_count = noted + 1  # the first run after the request; Opsera runs one run of a pipeline at a time
        status = self._run_status(run_count)
        if OpseraRunStatus.outcome(status) is RunOutcome.FAILED:
            self.log.warning(
                "An earlier try started run %d of pipeline %s and ended before noting it; that run failed, so "
                "this try starts a new one.",
                run_count,
                self.pipeline_id,
            )
            return None
        self.log.warning(
            "An earlier try started run %d of pipeline %s (%s now) and ended before noting it: following it instead "
            "of starting another.%s",
            run_count,
            self.pipeline_id,
            status or "status unknown",
            f" Runs up to {latest} started after it." if latest > run_count else "",
        )
        return run_count

    def _latest_run(self) -> tuple[int, str]:
        """The pipeline's latest run count and the status of its last step, from its summary."""
        summary = self.hook.get_pipeline(self.pipeline_id)
        workflow = summary.get("workflow") if isinstance(summary, dict) else None
        workflow = workflow if isinstance(workflow, dict) else {}
        last_step = workflow.get("last_step") if isinstance(workflow.get("last_step"), dict) else {}
        try:
            run_count = int(workflow.get("run_count") or 0)
        except (TypeError, ValueError):
            run_count = 0
        return run_count, OpseraRunStatus.normalise(last_step.get("status"))

    def _started_run_count(self, answer: Any) -> int:
        """The run count from ``run``'s answer, or the task fails with Opsera's reason for not starting."""
        from airflow_provider_opsera.hooks.responses import as_text, run_number

        answer = answer if isinstance(answer, dict) else {"message": answer}
        run_count = answer.get("runCount")
        refused = OpseraRunStatus.outcome(answer.get("status")) is RunOutcome.FAILED
        if refused or run_count is None:
            raise AirflowException(
                f"Opsera did not start pipeline {self.pipeline_id}: {as_text(answer.get('message')) or 'no reason given'}"
            )
        what = f"The runCount Opsera answered to the run request of pipeline {self.pipeline_id} (a run may have started)"
        return run_number(run_count, what)

    def _run_started_despite(self, error: OpseraAmbiguousRequestError, before: int, store: Any) -> int:
        """The run request may or may not have reached Opsera: its summary tells which."""
        self.log.warning("%s. Reading the pipeline's summary to find out whether a run started.", error)
        try:
            after, last_step_status = self._latest_run()
        except OpseraError as read_error:
            # the note of the request stays: a retry reads the summary again and follows a run that started
            raise AirflowException(
                f"{error}; and reading the pipeline's summary to find out failed too: {read_error}. "
                "Check the pipeline in Opsera before retrying."
            ) from error
        if after > before:
            self.log.warning(
                "Opsera started run %d of pipeline %s (its latest run was %d before the request; its last "
                "step is %s): following it.",
                after,
                self.pipeline_id,
                before,
                last_step_status or "unknown",
            )
            return after
        self.log.error("Opsera's latest run of pipeline %s is still %d: no run started.", self.pipeline_id, before)
        self._forget_run_request(store)
        raise error

    # -- ResumableJobMixin: what a retry re-attaches to --

    def get_job_status(self, external_id: Any, context: Any) -> str:
        self._fail_if_an_earlier_try_timed_out(int(external_id), context.get("task_state_store"), context.get("ti"))
        return self._run_status(int(external_id))

    def _run_status(self, run_count: int) -> str:
        answer = self.hook.get_pipeline_run_status(self.pipeline_id, run_count)
        return OpseraRunStatus.normalise(answer.get("status") if isinstance(answer, dict) else answer)

    def _fail_if_an_earlier_try_timed_out(self, run_count: int, store: Any, ti: Any) -> None:
        """An earlier try of this chain timed out on this run and was ended before it failed: end this try so."""
        note = store.get(self.timed_out_run_key) if store is not None else None
        if not isinstance(note, dict) or note.get("run_count") != run_count:
            return
        store.delete(self.timed_out_run_key)
        if note.get("max_tries") != getattr(ti, "max_tries", None):
            return  # a person cleared the task since: it may start a new run
        raise outcome_error(
            TIMEOUT,
            f"An earlier try of this task timed out waiting for Opsera pipeline {self.pipeline_id} run {run_count} "
            "and asked Opsera to stop it, but ended before it could fail the task. Failing it now, without "
            "retries, and starting no other run.",
        )

    def is_job_active(self, status: str) -> bool:
        return not OpseraRunStatus.outcome(status).is_terminal

    def is_job_succeeded(self, status: str) -> bool:
        return OpseraRunStatus.outcome(status) is RunOutcome.SUCCEEDED

    def get_job_result(self, external_id: Any, context: Any) -> int:
        return int(external_id)

    def find_job_to_resume(self, context: Any) -> int | None:
        """Airflow < 3.3: on a retry, the pipeline's latest run if it is still in progress."""
        ti = context.get("ti")
        if ti is None or (getattr(ti, "try_number", 1) or 1) <= 1:
            return None
        latest, _ = self._latest_run()
        if latest < 1:
            return None
        if not self.is_job_active(self.get_job_status(latest, context)):
            return None
        self.log.warning(
            "Try %s: run %d of pipeline %s is still in progress; re-attaching to it instead of starting "
            "another (Opsera would not start one while it runs).",
            ti.try_number,
            latest,
            self.pipeline_id,
        )
        return latest

    # -- waiting --

    def poll_until_complete(self, external_id: Any, context: Any) -> int:
        run_count = self.run_count = int(external_id)
        if not self.wait_for_completion:
            self.log.info("Not waiting for run %d (wait_for_completion=False).", run_count)
            return run_count
        if self.deferrable:
            # imported here: Airflow's trigger base is not needed to parse a DAG
            from airflow_provider_opsera.triggers.pipeline import OpseraPipelineRunTrigger

            self.defer(
                trigger=OpseraPipelineRunTrigger(
                    pipeline_id=self.pipeline_id,
                    run_count=run_count,
                    opsera_conn_id=self.opsera_conn_id,
                    poll_interval=self.poll_interval,
                    timeout=self.timeout,
                ),
                method_name="execute_complete",
            )
        return self._wait_in_worker(run_count)

    def _follower(self, pipeline_id: str, run_count: int) -> PipelineRunFollower:
        return PipelineRunFollower(self.hook, pipeline_id, run_count, self.log, fetch_logs=self.fetch_logs)

    def _wait_in_worker(self, run_count: int) -> int:
        from airflow_provider_opsera.hooks.retry import calls_end_by

        run = self._follower(self.pipeline_id, run_count)
        deadline = Deadline.after(self.timeout, self._clock)
        failed_polls = FailedPolls()
        limit = f", for at most {self.timeout:g} s" if self.timeout is not None else ""
        self.log.info("Waiting for %s: a status read every %g s%s.", run.subject, self.poll_interval, limit)
        expiry_warning = expires_before_wait_ends(self.hook.settings.token_expires, self.timeout)
        if expiry_warning:
            self.log.warning(expiry_warning)
        while True:
            try:
                with calls_end_by(deadline.end_time, self._clock):  # a read's retries end with the wait
                    status, message = run.read_status()
            except OpseraError as error:
                if not failed_polls.tolerate(error):
                    raise
                self.log.warning("Reading the status of %s failed; polling on: %s", run.subject, error)
            else:
                failed_polls.ok()
                outcome = run.watch.observe(status)
                run.pull_logs()
                if outcome.is_terminal:
                    self._run_ended = True
                    return run.conclude(EVENT_STATUS_OF[outcome], message)
            if deadline.passed():
                self._fail_after_timeout(run, f"{run.subject} did not finish within {self.timeout:g} seconds.")
            self._sleep(deadline.next_sleep(self.poll_interval))

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> int:
        """Resume after the deferred wait: copy the console output into the task log, then end like the run."""
        # The event carries the ids: the kwargs given to defer() may not reach this method, and a
        # pipeline given by name is not looked up again.
        event = checked_event(
            event,
            subject=f"the wait for a run of Opsera pipeline {self.pipeline_id or self.pipeline_name}",
            fields={"pipeline_id": validation.object_id, "run_count": validation.positive_int},
        )
        self.pipeline_id = event["pipeline_id"]
        run_count = self.run_count = event["run_count"]
        self._state_store, self._ti = context.get("task_state_store"), context.get("ti")
        run = self._follower(self.pipeline_id, run_count)
        status, message = event["status"], event["message"]
        remember_run_url(self, self.hook.pipeline_url(self.pipeline_id))
        if status != TIMEOUT:
            self._run_ended = status in EVENT_STATUS_OF.values()
        run.pull_logs()
        if status == TIMEOUT:
            self._fail_after_timeout(run, message)
        return run.conclude(status, message)

    def _fail_after_timeout(self, run: PipelineRunFollower, message: str) -> None:
        store = self._state_store if self.stop_on_kill else None
        if store is not None:
            chain = getattr(self._ti, "max_tries", None)
            store.set(self.timed_out_run_key, {"run_count": run.run_count, "max_tries": chain})
        if not self.stop_on_kill:
            note = "The run was left running (stop_on_kill=False)."
        elif self._stop(run, "the wait timed out"):
            note = "The run was asked to stop (Opsera lets the current step finish)."
        else:
            note = "Stopping the run failed (see the log): check it in Opsera."
        raise outcome_error(TIMEOUT, f"{message} {note}")

    def on_kill(self) -> None:
        """The task was killed while waiting in the worker: stop the run (``stop_on_kill``)."""
        if self.stop_on_kill and self.run_count and not self._run_ended and not self._stop_requested:
            self._stop(self._follower(self.pipeline_id, self.run_count), "the task was killed")


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
    """Stop a pipeline's current run. Opsera's stop is soft: the current step finishes first.

    :param pipeline_id: the pipeline's id; templated
    :param pipeline_name: instead of ``pipeline_id``, the pipeline's name, looked up when the task runs; templated
    :param opsera_conn_id: the Airflow connection to Opsera; templated
    :return: Opsera's answer, e.g. ``{"status": "success", "message": "The pipeline has been stopped."}``
    """

    hook_method = "stop_pipeline"


class OpseraResetPipelineOperator(_PipelineCommandOperator):
    """Reset a pipeline's run status (an active run is abandoned), e.g. to clear a stuck run.

    :param pipeline_id: the pipeline's id; templated
    :param pipeline_name: instead of ``pipeline_id``, the pipeline's name, looked up when the task runs; templated
    :param opsera_conn_id: the Airflow connection to Opsera; templated
    :return: Opsera's answer, e.g. ``{"status": "success", "message": "The pipeline run status has been reset."}``
    """

    hook_method = "reset_pipeline"
