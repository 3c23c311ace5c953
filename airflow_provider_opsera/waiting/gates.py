"""Approval gates: whether a pipeline run waits for a person, read from the pipeline's summary.

A run waits at an approval gate when the summary's ``workflow.last_step`` says
``status: "paused"``, or, the way Opsera's portal derives "paused" (inferred from its
public client), ``status: "stopped"`` with ``running.status: "pending"`` or
``running.paused: true``. The summary describes the pipeline's latest run only; an
earlier run has ended, since Opsera runs one run of a pipeline at a time.
``running.step_id``, where the summary has it, says which step waits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from airflow_provider_opsera.client.pipeline_lookup import record_id
from airflow_provider_opsera.client.status import OpseraRunStatus, RunOutcome


@dataclass(frozen=True)
class GateState:
    """What a pipeline's summary says about its latest run and an approval gate."""

    pipeline_id: str
    #: the latest run's number; 0 when the pipeline has never run
    run_count: int
    #: ``workflow.last_step.status``, normalised ("" when the summary has none)
    status: str
    #: the latest run waits for a person at an approval gate
    waiting: bool
    #: what the last step's status says of the latest run (a gate: paused)
    outcome: RunOutcome
    #: the id of the step that waits, "" when the summary does not say
    step_id: str = ""
    #: that step's name in the pipeline's plan, "" when not known
    step_name: str = ""

    def waits_at(self, run_count: int, step_id: str = "") -> bool:
        """Whether run ``run_count`` waits at the gate of step ``step_id`` (at any gate when a step is not known)."""
        if not self.waiting or self.run_count != run_count:
            return False
        return not (step_id and self.step_id) or step_id == self.step_id

    @property
    def step(self) -> str:
        return self.step_name or self.step_id

    def describe(self) -> str:
        """Where the pipeline stands, for a log line or an error: "its latest run 3 is running"."""
        if self.run_count < 1:
            return "it has never run"
        if self.waiting:
            at = f" (step {self.step!r})" if self.step else ""
            return f"its latest run {self.run_count} waits at an approval gate{at}"
        return f"its latest run {self.run_count} is {self.status or 'in a state its summary does not give'}"


def gate_state(summary: Any, pipeline_id: str, tenant: Iterable[tuple[str, RunOutcome]] = ()) -> GateState:
    """The gate state of a pipeline's summary (``/pipeline/summary``); an OpseraSummaryShapeError when unreadable.

    ``tenant``: the connection's ``status_map``, the tenant's own statuses and their outcomes.
    """
    from airflow_provider_opsera.hooks.responses import latest_run_count

    run_count = latest_run_count(summary, pipeline_id)
    workflow = summary["workflow"]
    last_step = _object(workflow.get("last_step"))
    running = _object(last_step.get("running"))
    status = OpseraRunStatus.normalise(last_step.get("status"))
    outcome = OpseraRunStatus.outcome(status, dict(tenant))
    waiting = run_count > 0 and (
        outcome is RunOutcome.PAUSED
        or (status == "stopped" and (running.get("paused") is True or _word(running.get("status")) == "pending"))
    )
    step_id = _step_id(running.get("step_id")) if waiting else ""
    step_name = _step_name(workflow.get("plan"), step_id)
    return GateState(
        pipeline_id, run_count, status, waiting, RunOutcome.PAUSED if waiting else outcome, step_id, step_name
    )


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _word(value: Any) -> str:
    return OpseraRunStatus.normalise(value) if isinstance(value, str) else ""


def _step_id(value: Any) -> str:
    return record_id({"_id": value}) if isinstance(value, (str, dict)) else ""


def _step_name(plan: Any, step_id: str) -> str:
    if not step_id or not isinstance(plan, list):
        return ""
    for step in plan:
        if isinstance(step, dict) and record_id(step) == step_id and isinstance(step.get("name"), str):
            return step["name"]
    return ""
