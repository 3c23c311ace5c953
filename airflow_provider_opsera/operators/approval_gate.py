"""An Opsera approval gate decided in Airflow: a person answers in "Required actions" (human-in-the-loop, Airflow 3.1+).

The task waits in the triggerer, never in a worker slot: first for the run to reach an
approval gate, then for the answer, while it watches the gate in Opsera. Then, in the
worker for a moment, it reads the gate again and sends the decision, unless the gate was
decided in Opsera first. The module imports on every Airflow the provider supports (the
DAG parses there too); the task needs Airflow 3.1+ to run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_opsera._compat import AirflowException, AirflowFailException
from airflow_provider_opsera.client import validation
from airflow_provider_opsera.client.status import OpseraRunStatus, RunOutcome
from airflow_provider_opsera.exceptions import OpseraError
from airflow_provider_opsera.links.opsera import OpseraPipelineRunLink, publish_run_url, remember_run_url
from airflow_provider_opsera.operators.approval import APPROVE, REJECT, GateNotWaitingError, read_gate, send_decision
from airflow_provider_opsera.operators.pipeline import _PipelineOperator
from airflow_provider_opsera.waiting import gate_request
from airflow_provider_opsera.waiting.events import checked_event
from airflow_provider_opsera.waiting.gate_request import GateAnswer
from airflow_provider_opsera.waiting.log_text import safe_line
from airflow_provider_opsera.waiting.watch import ERROR, FAILED, STOPPED, SUCCESS, TIMEOUT, outcome_error

# The events of the provider's gate triggers (triggers/approval_gate.py), by name: no trigger import at parse time.
GATE, ANSWERED, DECIDED_IN_OPSERA = "gate", "answered", "decided_in_opsera"
_IDS = {"pipeline_id": validation.object_id, "run_count": validation.positive_int}


class OpseraApprovalGateOperator(_PipelineOperator):
    """Have a person decide an Opsera approval gate in Airflow's "Required actions" (Airflow 3.1+).

    Put it after the task that starts the run (``OpseraRunPipelineOperator`` with
    ``wait_for_completion=False``) and before a deferrable ``OpseraPipelineRunSensor`` that
    waits for the run's end. The task:

    1. waits in the triggerer until run ``run_count`` waits at an approval gate (a run that
       ends first ends the task: success without a gate, failure otherwise);
    2. asks in "Required actions": the subject, the gate's step, Opsera's message, a link to
       the pipeline in the Opsera portal, and three options: ``Approve``, ``Reject`` (the
       comment is sent to Opsera as the reason) and ``Leave to Opsera`` (nothing is sent);
    3. waits in the triggerer for the answer, reading the gate in Opsera meanwhile: a gate
       decided there first (Opsera's UI, Slack, ...) answers the request ``Leave to Opsera``
       on the task's behalf, saying so, and nothing is sent;
    4. reads the gate once more and sends the answer, unless it no longer waits.

    An approval (or a gate that went on past its step in Opsera) ends the task in success,
    returning ``{"pipeline_id", "run_count", "step", "decision", "answered_by", "comment"}``.
    A rejection, in Airflow or in Opsera, fails it without retries, with the comment. Each
    task decides one gate: a pipeline with two gates takes two tasks, one after the other.

    :param pipeline_id: the pipeline's id; templated
    :param pipeline_name: instead of ``pipeline_id``, the pipeline's name, looked up when the task runs; templated
    :param run_count: the run whose gate to decide, e.g. ``"{{ ti.xcom_pull('start_release') }}"``;
        default: the pipeline's latest run when the task starts; templated
    :param subject: the request's headline; default: names the pipeline, run and step; templated
    :param body: Markdown shown above the gate's details (who should decide, what to check); templated
    :param assigned_users: who may answer, ``{"id", "name"}`` or a list of them (Airflow's auth manager's ids)
    :param notifiers: Airflow notifiers called once the request is made (e.g. a Slack message)
    :param response_timeout: seconds to wait for an answer (a ``timedelta`` is read as its seconds); None waits
        without a limit
    :param on_response_timeout: what an unanswered request does when ``response_timeout`` passes:
        ``"leave"`` (the default: nothing is sent, the gate is left to Opsera, the task succeeds)
        or ``"reject"`` (the gate is rejected, the task fails)
    :param poll_interval: seconds between two reads of the pipeline in Opsera, from 1 to 86400; templated
    :param timeout: seconds to wait for the run to reach its gate (None: no limit); templated
    :param opsera_conn_id: the Airflow connection to Opsera; templated
    """

    template_fields: Sequence[str] = (
        "pipeline_id",
        "pipeline_name",
        "run_count",
        "subject",
        "body",
        "opsera_conn_id",
        "poll_interval",
        "timeout",
    )
    template_fields_renderers = {"body": "md"}
    operator_extra_links = (OpseraPipelineRunLink(),)
    ui_color = "#fdf0d5"

    def __init__(
        self,
        *,
        pipeline_id: str | None = None,
        pipeline_name: str | None = None,
        run_count: int | str | None = None,
        subject: str | None = None,
        body: str | None = None,
        assigned_users: Any = None,
        notifiers: Any = None,
        response_timeout: float | None = None,
        on_response_timeout: str = "leave",
        poll_interval: float | str = 30,
        timeout: float | str | None = None,
        opsera_conn_id: str = "opsera_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(pipeline_id=pipeline_id, pipeline_name=pipeline_name, opsera_conn_id=opsera_conn_id, **kwargs)
        self.run_count = run_count
        self.subject = subject
        self.body = body
        self.assigned_users = [assigned_users] if isinstance(assigned_users, dict) else assigned_users
        self.notifiers = list(notifiers) if isinstance(notifiers, (list, tuple)) else [notifiers] if notifiers else []
        self.response_timeout = validation.timeout(response_timeout, "response_timeout")
        self.on_response_timeout = validation.one_of(on_response_timeout, gate_request.ON_RESPONSE_TIMEOUT, "on_response_timeout")
        self.poll_interval = poll_interval if validation.is_template(poll_interval) else validation.poll_interval(
            poll_interval
        )
        self.timeout = timeout if validation.is_template(timeout) else validation.timeout(timeout)

    # -- 1. the run, until it waits at a gate --

    def execute(self, context: Any) -> Any:
        _check_human_in_the_loop()
        self.poll_interval = validation.poll_interval(self.poll_interval)
        self.timeout = validation.timeout(self.timeout)
        wanted = None if self.run_count in (None, "", "None") else validation.positive_int(self.run_count, "run_count")
        self.resolve_pipeline(context)
        publish_run_url(self, context["ti"], self.hook.pipeline_url(self.pipeline_id))
        state = read_gate(self.hook, self.pipeline_id)
        run_count = state.run_count if wanted is None else wanted
        if run_count < 1:
            raise AirflowException(f"Opsera pipeline {self.pipeline_id} has never run: there is no gate to decide.")
        if state.waits_at(run_count):
            return self._ask(context, run_count, state.step_id, state.step_name)
        from airflow_provider_opsera.triggers.approval_gate import OpseraApprovalGateTrigger

        self.log.info(
            "Waiting for run %d of Opsera pipeline %s to wait at an approval gate (%s now).",
            run_count,
            self.pipeline_id,
            state.describe(),
        )
        self.defer(
            trigger=OpseraApprovalGateTrigger(
                pipeline_id=self.pipeline_id,
                run_count=run_count,
                opsera_conn_id=self.opsera_conn_id,
                poll_interval=self.poll_interval,
                timeout=self.timeout,
            ),
            method_name="execute_at_gate",
        )

    def execute_at_gate(self, context: Any, event: Any = None) -> Any:
        """Resume when the run waits at a gate (then ask), or ended without one."""
        raw = event if isinstance(event, dict) else {}
        event = checked_event(
            event,
            subject=f"the wait for an approval gate of Opsera pipeline {self.pipeline_id or self.pipeline_name}",
            fields=_IDS,
            statuses=(GATE, SUCCESS, FAILED, STOPPED, TIMEOUT, ERROR),
        )
        self.pipeline_id, run_count, status = event["pipeline_id"], event["run_count"], event["status"]
        remember_run_url(self, self.hook.pipeline_url(self.pipeline_id))
        if status == GATE:  # the step's fields are optional: Opsera's summary may not say
            return self._ask(context, run_count, _text(raw.get("step_id")), _text(raw.get("step_name")))
        if status == SUCCESS:
            self.log.info(
                "Run %d of Opsera pipeline %s succeeded without waiting at an approval gate here (it has none, or it "
                "was decided before this task looked): nothing to decide. Opsera says: %s",
                run_count,
                self.pipeline_id,
                safe_line(event["message"]),
            )
            return self._result(run_count, "", "no gate", None)
        if status in (FAILED, STOPPED):
            raise outcome_error(
                status,
                f"Run {run_count} of Opsera pipeline {self.pipeline_id} ended {_text(raw.get('run_status')) or status} "
                f"before it waited at an approval gate: {safe_line(event['message'])}",
            )
        raise outcome_error(status, event["message"])

    # -- 2. the request --

    def _ask(self, context: Any, run_count: int, step_id: str, step_name: str) -> None:
        from airflow_provider_opsera.hooks.responses import as_text
        from airflow_provider_opsera.triggers.approval_gate import OpseraGateAnswerTrigger

        summary = self.hook.get_pipeline(self.pipeline_id)
        name = summary.get("name") if isinstance(summary, dict) and isinstance(summary.get("name"), str) else ""
        status = self.hook.get_pipeline_run_status(self.pipeline_id, run_count)
        said = as_text(status.get("message")) if isinstance(status, dict) else as_text(status)
        step = step_name or self._waiting_step(run_count) or step_id or "not named by Opsera"
        subject = self.subject or f"Opsera: approve {name or self.pipeline_id} run {run_count} at {step!r}?"
        ti = context["ti"]
        gate_request.ask(
            ti.id,
            subject=subject,
            body=gate_request.request_body(
                pipeline_name=name or self.pipeline_id,
                pipeline_id=self.pipeline_id,
                run_count=run_count,
                step=step,
                opsera_message=said,
                portal_url=self.hook.pipeline_url(self.pipeline_id),
                timeout_note=self._timeout_note(),
                preface=self.body,
            ),
            defaults=self._timeout_defaults(),
            assigned_users=self.assigned_users,
        )
        for notifier in self.notifiers:
            notifier(context)
        self.log.info(
            "Run %d of Opsera pipeline %s waits at approval gate %r: asked in Airflow's Required actions (%s).",
            run_count,
            self.pipeline_id,
            step,
            subject,
        )
        self.defer(
            trigger=OpseraGateAnswerTrigger(
                ti_id=str(ti.id),
                pipeline_id=self.pipeline_id,
                run_count=run_count,
                step_id=step_id,
                step_name=step,
                on_response_timeout=self.on_response_timeout,
                opsera_conn_id=self.opsera_conn_id,
                poll_interval=self.poll_interval,
                timeout=self.response_timeout,
            ),
            method_name="execute_complete",
            # Airflow resumes the task with the person's answer alone (3.3+, answered while deferred): the gate
            # travels here too. Under dag.test() these kwargs do not arrive; the trigger's events carry the gate.
            kwargs={
                "gate": {"pipeline_id": self.pipeline_id, "run_count": run_count, "step_id": step_id, "step_name": step}
            },
        )

    def _waiting_step(self, run_count: int) -> str:
        """The step of the run's newest activity record: where it waits, when the summary does not say."""
        try:
            records = self.hook.get_pipeline_logs(self.pipeline_id, run_count)
        except OpseraError as error:
            self.log.warning("Could not read which step waits: %s", error)
            return ""
        for record in records:
            if isinstance(record, dict) and isinstance(record.get("step_name"), str) and record["step_name"].strip():
                return record["step_name"]
        return ""

    def _timeout_defaults(self) -> list[str] | None:
        if self.response_timeout is None:
            return None
        return [gate_request.REJECT if self.on_response_timeout == "reject" else gate_request.LEAVE]

    def _timeout_note(self) -> str:
        if self.response_timeout is None:
            return ""
        then = "the gate is rejected" if self.on_response_timeout == "reject" else "the gate is left to Opsera"
        return f"Without an answer within {self.response_timeout:g} seconds, {then}."

    # -- 3. the answer --

    def execute_complete(self, context: Any, event: Any = None, gate: dict[str, Any] | None = None) -> Any:
        """Resume with the answer (or the news that Opsera decided first), and carry it out."""
        if isinstance(event, dict) and "status" not in event and "chosen_options" in event:
            event = {"status": ANSWERED, "message": "Answered in Airflow.", **(gate or {}), **event}
        raw = event
        event = checked_event(
            event,
            subject=f"the approval gate of Opsera pipeline {self.pipeline_id or self.pipeline_name}",
            fields=_IDS,
            statuses=(ANSWERED, DECIDED_IN_OPSERA, ERROR),
        )
        self.pipeline_id, run_count = event["pipeline_id"], event["run_count"]
        step_id, step_name = _text(raw.get("step_id")), _text(raw.get("step_name"))
        remember_run_url(self, self.hook.pipeline_url(self.pipeline_id))
        if event["status"] == ERROR:
            raise AirflowException(event["message"])
        if event["status"] == DECIDED_IN_OPSERA:
            self.log.info("%s", safe_line(event["message"]))
            return self._after_opsera_decided(run_count, step_name, None)
        try:
            answer = GateAnswer.from_payload(raw)
        except ValueError as error:
            raise AirflowException(f"The answer to the approval gate cannot be read: {error}") from None
        return self._carry_out(answer, run_count, step_id, step_name)

    def _carry_out(self, answer: GateAnswer, run_count: int, step_id: str, step_name: str) -> Any:
        subject = f"run {run_count} of Opsera pipeline {self.pipeline_id}"
        why = " (no answer in time)" if answer.timed_out else ""
        self.log.info("Answered %s%s: %s. Comment: %s", answer.who, why, answer.option, answer.comment or "none")
        if answer.option == gate_request.LEAVE:
            self.log.info("Left to Opsera: nothing sent; the gate of %s waits for a decision in Opsera.", subject)
            return self._result(run_count, step_name, "left to Opsera", answer)
        decision = APPROVE if answer.option == gate_request.APPROVE else REJECT
        try:
            said = send_decision(
                self.hook,
                self.pipeline_id,
                decision,
                self.log,
                message=_reason(answer) if decision == REJECT else None,
                run_count=run_count,
                step_id=step_id,
            )
        except GateNotWaitingError as error:
            self.log.warning(
                "The gate of %s was decided in Opsera before the answer here could be sent (%s): %s was not sent.",
                subject,
                error.state.describe(),
                answer.option,
            )
            return self._after_opsera_decided(run_count, step_name, answer)
        if decision == REJECT:
            message = said.get("message") if isinstance(said, dict) else said
            raise AirflowFailException(
                f"Rejected in Airflow {answer.who}{why}: {answer.comment or 'no comment'}. Opsera ended {subject}"
                f"{': ' + safe_line(str(message)) if message else '.'}"
            )
        return self._result(run_count, step_name, "approved", answer)

    def _after_opsera_decided(self, run_count: int, step_name: str, answer: GateAnswer | None) -> Any:
        """The gate was decided in Opsera: the task ends as the run went on from it."""
        subject = f"run {run_count} of Opsera pipeline {self.pipeline_id}"
        state = read_gate(self.hook, self.pipeline_id)
        going_on = state.run_count == run_count and not state.outcome.is_terminal
        status, message = (state.status, "") if going_on else self._run_status(run_count)
        outcome = OpseraRunStatus.outcome(status, dict(self.hook.settings.status_map))
        if outcome in (RunOutcome.FAILED, RunOutcome.STOPPED):
            raise outcome_error(
                STOPPED if outcome is RunOutcome.STOPPED else FAILED,
                f"The approval gate of {subject} was decided in Opsera and the run ended {status}: "
                f"{safe_line(message) or 'no message from Opsera'}",
            )
        self.log.info("The approval gate of %s was decided in Opsera; %s.", subject, state.describe())
        return self._result(run_count, step_name, "decided in Opsera", answer)

    def _run_status(self, run_count: int) -> tuple[str, str]:
        from airflow_provider_opsera.hooks.responses import run_status

        return run_status(self.hook.get_pipeline_run_status(self.pipeline_id, run_count))

    def _result(self, run_count: int, step: str, decision: str, answer: GateAnswer | None) -> dict[str, Any]:
        return {
            "pipeline_id": self.pipeline_id,
            "run_count": run_count,
            "step": step,
            "decision": decision,
            "answered_by": answer.by if answer else None,
            "comment": answer.comment if answer else "",
        }


def _reason(answer: GateAnswer) -> str:
    """What Opsera is told with a rejection: the comment, and who rejected in Airflow."""
    who = f"rejected in Airflow {answer.who}" if answer.by else "rejected in Airflow"
    return f"{answer.comment} ({who})" if answer.comment else who[0].upper() + who[1:]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _check_human_in_the_loop() -> None:
    try:
        import airflow.sdk.execution_time.hitl  # noqa: F401
    except ImportError:
        raise AirflowException(
            "OpseraApprovalGateOperator asks in Airflow's Required actions (human-in-the-loop), which needs "
            "Airflow 3.1 or later. On older Airflow, decide the gate in Opsera, or with "
            "OpseraApprovePipelineOperator / OpseraRejectPipelineOperator."
        ) from None
