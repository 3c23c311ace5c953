"""Approval gates: a person's decision at the gate a pipeline run waits at, and the actions endpoint.

A run pauses at an ``approval`` step (``runs.py``) until someone decides: through the
API's actions endpoint (``POST /api/v2/actions`` with ``approve``, or ``reject`` and a
``message``; the token's owner decides), or from outside, as a person in Opsera's own UI,
Slack or Jira would (the admin routes ``/_emulator/pipelines/{id}/approve|reject``).
An approval lets the run go on; a rejection ends it ``rejected``. The endpoint's shape is
the provider's inferred one (``client/api.py``); a command addresses pipelines, not runs.
"""

from __future__ import annotations

from airflow_provider_opsera.client.api import ACTION_MESSAGE_FIELD

from . import runs
from .access import check_item
from .errors import ApiError, bad_request, not_found
from .routes import COMMAND_ROUTES
from .seed import OBJECT_ID
from .state import EmulatorState

PIPELINES = "pipelines"
APPROVE, REJECT, STATUS = "approve", "reject", "status"
_DONE = {APPROVE: "approved", REJECT: "rejected"}

def action_request(body: dict) -> tuple[str, list[str]]:
    """The action and the target pipeline ids of an actions body, or a 400 naming what is wrong."""
    action = body.get("action")
    if action not in COMMAND_ROUTES:
        raise bad_request(f"action must be one of {', '.join(sorted(COMMAND_ROUTES))}, got {action!r}")
    if body.get("type") != "pipeline":
        raise bad_request(f"type must be 'pipeline', got {body.get('type')!r}")
    if body.get("version") != 1:
        raise bad_request(f"version must be 1, got {body.get('version')!r}")
    targets = body.get("target")
    if not isinstance(targets, list) or not targets:
        raise bad_request("target must be a non-empty list of pipeline ids")
    for target in targets:
        if not isinstance(target, str) or not OBJECT_ID.match(target):
            raise bad_request(f"target: {target!r} is not a 24 character hexadecimal id")
    return action, targets


def pipeline_actions(state: EmulatorState, user: dict, body: dict) -> dict:
    """``POST /api/v2/actions``: the status of each target, or a decision at each target's gate (all or none)."""
    action, targets = action_request(body)
    for target in targets:
        try:
            check_item(user, state.entry(PIPELINES, target)["object"])
        except KeyError:
            raise not_found(f"Pipeline {target} not found") from None
    if action == STATUS:
        data = [gate_status(state, target) for target in targets]
        return {"status": "success", "message": f"Status of {len(data)} pipeline(s)", "data": data}
    message = body.get(ACTION_MESSAGE_FIELD)
    if action == REJECT and (not isinstance(message, str) or not message.strip()):
        raise bad_request(f"reject needs a non-empty {ACTION_MESSAGE_FIELD}")
    for target in targets:  # every target must wait at a gate before any is decided
        _waiting_run(state, target)
    results = [decide_gate(state, target, action, user["id"], message or "") for target in targets]
    for target in targets:
        state.record_user_action(user, "pipeline", action, target)
    state.save()
    return {"status": "success", "message": "; ".join(r["message"] for r in results), "results": results}


def decide_gate(
    state: EmulatorState, pipeline_id: str, decision: str, user_id: str | None = None, message: str = ""
) -> dict:
    """Approve or reject the gate the pipeline's latest run waits at (409 when none waits)."""
    run, step = _waiting_run(state, pipeline_id)
    subject = state.subject(PIPELINES, pipeline_id)
    who = user_id or state.entry(PIPELINES, pipeline_id)["object"]["owner"]
    if decision == APPROVE:
        runs.approve(subject, run, state.now(), who)
    else:
        runs.reject(subject, run, state.now(), who, message)
    state.save()
    return {
        "target": pipeline_id,
        "status": "success",
        "message": f"Run {run['run_count']} {_DONE[decision]} at step '{step['name']}'",
        "runCount": run["run_count"],
        "step": step["name"],
    }


def gate_status(state: EmulatorState, pipeline_id: str) -> dict:
    entry = state.entry(PIPELINES, pipeline_id)
    run = state.latest_run(PIPELINES, pipeline_id)
    step = runs.waiting_step(state.subject(PIPELINES, pipeline_id), run) if run else None
    return {
        "pipelineId": pipeline_id,
        "name": entry["object"]["name"],
        "runCount": run["run_count"] if run else 0,
        "status": run["status"] if run else runs.IDLE,
        "paused": step is not None,
        "stepId": step["_id"] if step else "",
        "stepName": step["name"] if step else "",
    }


def _waiting_run(state: EmulatorState, pipeline_id: str) -> tuple[dict, dict]:
    try:
        entry = state.entry(PIPELINES, pipeline_id)
    except KeyError:
        raise not_found(f"Pipeline {pipeline_id} not found") from None
    run = state.latest_run(PIPELINES, pipeline_id)
    step = runs.waiting_step(state.subject(PIPELINES, pipeline_id), run) if run else None
    if step is None:
        found = f" (run {run['run_count']} is {run['status']})" if run else " (it has never run)"
        raise ApiError(409, f"Pipeline {entry['object']['name']} is not waiting for approval{found}")
    return run, step
