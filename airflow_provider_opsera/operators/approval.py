"""Operators that decide the approval gate an Opsera pipeline run waits at: approve it, or reject it saying why.

Opsera's approve and reject address a pipeline, not a run (its actions endpoint, whose
shape is inferred: ``client/api.py``), so nothing is sent before the pipeline's summary
shows that its run waits at a gate; a decision is never sent twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_opsera._compat import AirflowException
from airflow_provider_opsera.client import validation
from airflow_provider_opsera.client.status import OpseraRunStatus, RunOutcome
from airflow_provider_opsera.exceptions import OpseraAmbiguousRequestError
from airflow_provider_opsera.links.opsera import OpseraPipelineRunLink, publish_run_url
from airflow_provider_opsera.operators.pipeline import _PipelineOperator
from airflow_provider_opsera.waiting.gates import GateState, gate_state

APPROVE = "approve"
REJECT = "reject"
_DONE = {APPROVE: "approved", REJECT: "rejected"}


class GateNotWaitingError(AirflowException):
    """The run to decide does not wait at an approval gate (any more): nothing was sent."""

    def __init__(self, message: str, state: GateState) -> None:
        super().__init__(message)
        self.state = state


def read_gate(hook: Any, pipeline_id: str) -> GateState:
    return gate_state(hook.get_pipeline(pipeline_id), pipeline_id, hook.settings.status_map)


def send_decision(
    hook: Any,
    pipeline_id: str,
    decision: str,
    log: Any,
    *,
    message: str | None = None,
    run_count: int | None = None,
    step_id: str = "",
) -> Any:
    """Send ``decision`` for the gate run ``run_count`` (default: the latest run) waits at, and return Opsera's answer.

    The gate's state is read right before sending. When that run does not wait at a gate
    (or at another one than step ``step_id``), nothing is sent: :class:`GateNotWaitingError`
    names the state found. An answer lost on the way is not resent: the state read again
    tells whether the decision took effect.
    """
    state = read_gate(hook, pipeline_id)
    wanted = state.run_count if run_count is None else run_count
    if not state.waits_at(wanted, step_id):
        which = f"run {wanted}" if run_count is not None else "its latest run"
        raise GateNotWaitingError(
            f"Not sending {decision!r}: {which} of Opsera pipeline {pipeline_id} does not wait at "
            f"{'that' if step_id else 'an'} approval gate; {state.describe()}. Nothing was sent to Opsera.",
            state,
        )
    gate = f"run {state.run_count} of Opsera pipeline {pipeline_id}"
    gate += f" at step {state.step!r}" if state.step else ""
    try:
        if decision == APPROVE:
            answer = hook.approve_pipeline(pipeline_id)
        else:
            answer = hook.reject_pipeline(pipeline_id, message)
    except OpseraAmbiguousRequestError as error:
        after = read_gate(hook, pipeline_id)
        if after.waits_at(state.run_count, state.step_id):
            raise  # the gate still waits: the decision did not take effect, and is not resent
        log.warning(
            "%s. The gate of %s no longer waits (%s): the decision reached Opsera.", error, gate, after.describe()
        )
        return {"status": "unknown", "message": f"the answer was lost; {after.describe()}"}
    from airflow_provider_opsera.hooks.responses import as_text

    said = as_text(answer.get("message") if isinstance(answer, dict) else answer)
    if isinstance(answer, dict) and OpseraRunStatus.outcome(answer.get("status")) is RunOutcome.FAILED:
        raise AirflowException(f"Opsera refused to {decision} {gate}: {said or 'no reason given'}")
    log.info("Opsera %s %s: %s", _DONE[decision], gate, said or "no message")
    return answer


class _GateDecisionOperator(_PipelineOperator):
    """Common ground: the run to decide, read before anything is sent."""

    decision: str
    template_fields: Sequence[str] = ("pipeline_id", "pipeline_name", "run_count", "opsera_conn_id")
    operator_extra_links = (OpseraPipelineRunLink(),)

    def __init__(self, *, run_count: int | str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_count = run_count

    def execute(self, context: Any) -> Any:
        run_count = self.checked_inputs()
        self.resolve_pipeline(context)
        publish_run_url(self, context["ti"], self.hook.pipeline_url(self.pipeline_id))
        return send_decision(
            self.hook, self.pipeline_id, self.decision, self.log, message=self.reason(), run_count=run_count
        )

    def checked_inputs(self) -> int | None:
        """The run count to decide, if given; rendered inputs are checked before anything is sent."""
        if self.run_count in (None, "", "None"):
            return None
        return validation.positive_int(self.run_count, "run_count")

    def reason(self) -> str | None:
        return None


class OpseraApprovePipelineOperator(_GateDecisionOperator):
    """Approve the approval gate an Opsera pipeline's run waits at: the run goes on.

    The pipeline's summary is read first: when its latest run (or run ``run_count``) does
    not wait at a gate, the task fails naming the state it found, and sends nothing.

    :param pipeline_id: the pipeline's id; templated
    :param pipeline_name: instead of ``pipeline_id``, the pipeline's name, looked up when the task runs; templated
    :param run_count: approve only when this run waits, e.g. the run an upstream task started
        (``"{{ ti.xcom_pull('start_release') }}"``); default: whichever run waits; templated
    :param opsera_conn_id: the Airflow connection to Opsera; templated
    :return: Opsera's answer
    """

    decision = APPROVE


class OpseraRejectPipelineOperator(_GateDecisionOperator):
    """Reject the approval gate an Opsera pipeline's run waits at, saying why: Opsera ends the run.

    The pipeline's summary is read first: when its latest run (or run ``run_count``) does
    not wait at a gate, the task fails naming the state it found, and sends nothing.

    :param message: why, sent to Opsera with the rejection (not empty); templated
    :param pipeline_id: the pipeline's id; templated
    :param pipeline_name: instead of ``pipeline_id``, the pipeline's name, looked up when the task runs; templated
    :param run_count: reject only when this run waits; default: whichever run waits; templated
    :param opsera_conn_id: the Airflow connection to Opsera; templated
    :return: Opsera's answer
    """

    decision = REJECT
    template_fields: Sequence[str] = (*_GateDecisionOperator.template_fields, "message")

    def __init__(self, *, message: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message = message if validation.is_template(message) else validation.string(message, "message")

    def checked_inputs(self) -> int | None:
        self.message = validation.string(self.message, "message")
        return super().checked_inputs()

    def reason(self) -> str | None:
        return self.message
