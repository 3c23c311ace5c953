"""Pipeline and task calls: run, status, stop, reset, summary, logs, lists.

Each function takes the store, the calling user and the parsed request, and returns
the JSON answer or raises ApiError. Route-level checks (token, scope, list role)
have already happened; item RBAC happens here, once the object is known.
"""

from __future__ import annotations

import copy

from . import runs
from .access import can_access, check_item
from .errors import ApiError, not_found
from .params import object_id, optional_int
from .routes import RECORD_CAP
from .state import EmulatorState

PIPELINES = "pipelines"
TASKS = "tasks"


def _entry(state: EmulatorState, collection: str, item_id: str) -> dict:
    try:
        return state.entry(collection, item_id)
    except KeyError:
        noun = "Pipeline" if collection == PIPELINES else "Task"
        raise not_found(f"{noun} {item_id} not found") from None


def _visible_entry(state: EmulatorState, collection: str, item_id: str, user: dict) -> dict:
    entry = _entry(state, collection, item_id)
    check_item(user, entry["object"])
    return entry


def _current_run(state: EmulatorState, collection: str, item_id: str) -> dict | None:
    """The latest run unless a reset cleared it."""
    run = state.latest_run(collection, item_id)
    entry = state.entry(collection, item_id)
    if run is None or run["run_count"] <= entry["cleared_run"]:
        return None
    return run


# ----- pipelines


def run_pipeline(state: EmulatorState, user: dict, body: dict) -> dict:
    pipeline_id = object_id(body, "pipelineId")
    entry = _visible_entry(state, PIPELINES, pipeline_id, user)
    name = entry["object"]["name"]
    run = state.latest_run(PIPELINES, pipeline_id)
    if run and run["status"] == runs.PAUSED:
        return {
            "status": "failed",
            "message": f"Pipeline {name} is currently in a paused state. "
            "Will not start another job until this pending status is resolved.",
        }
    if run and run["status"] == runs.RUNNING:
        return {
            "status": "failed",
            "message": f"Pipeline {name} is currently running (run {run['run_count']}). "
            "Will not start another job until this run has finished.",
        }
    run = state.start_run(PIPELINES, pipeline_id, user["id"])
    state.record_user_action(user, "pipeline", "run", pipeline_id)
    state.save()
    return {
        "status": "executed",
        "message": f"Run pipeline request submitted successfully for ({pipeline_id})",
        "runCount": run["run_count"],
    }


def pipeline_status(state: EmulatorState, user: dict, body: dict) -> dict:
    pipeline_id = object_id(body, "pipelineId")
    entry = _visible_entry(state, PIPELINES, pipeline_id, user)
    run_count = optional_int(body, "runCount", minimum=0)
    subject = state.subject(PIPELINES, pipeline_id)
    if run_count is None or run_count == 0:
        run = _current_run(state, PIPELINES, pipeline_id)
        if run is None:
            return {"status": runs.IDLE, "message": f"Pipeline: {entry['object']['name']} has no active run."}
    else:
        run = state.find_run(PIPELINES, pipeline_id, run_count)
        if run is None:
            raise not_found(f"Pipeline {entry['object']['name']} has no run {run_count}")
    return {"status": run["status"], "message": runs.status_message(subject, run)}


def stop_pipeline(state: EmulatorState, user: dict, body: dict) -> dict:
    pipeline_id = object_id(body, "pipelineId")
    _visible_entry(state, PIPELINES, pipeline_id, user)
    run = state.latest_run(PIPELINES, pipeline_id)
    if run is not None:
        runs.request_stop(state.subject(PIPELINES, pipeline_id), run, state.now(), user["id"])
    state.record_user_action(user, "pipeline", "stop", pipeline_id)
    state.save()
    return {"status": "success", "message": "The pipeline has been stopped."}


def reset_pipeline(state: EmulatorState, user: dict, body: dict) -> dict:
    pipeline_id = object_id(body, "pipelineId")
    entry = _visible_entry(state, PIPELINES, pipeline_id, user)
    run = state.latest_run(PIPELINES, pipeline_id)
    if run is not None:
        runs.abandon(state.subject(PIPELINES, pipeline_id), run, state.now(), user["id"])
        entry["cleared_run"] = run["run_count"]
    state.record_user_action(user, "pipeline", "reset", pipeline_id)
    state.save()
    return {"status": "success", "message": "The pipeline run status has been reset."}


def pipeline_summary(state: EmulatorState, user: dict, body: dict) -> dict:
    pipeline_id = object_id(body, "pipelineId")
    _visible_entry(state, PIPELINES, pipeline_id, user)
    return pipeline_view(state, pipeline_id)


def pipeline_logs(state: EmulatorState, user: dict, body: dict) -> list[dict]:
    pipeline_id = object_id(body, "pipelineId")
    _visible_entry(state, PIPELINES, pipeline_id, user)
    run_count = optional_int(body, "runCount", minimum=0) or None
    # Only that exact string filters; anything else returns every record, as documented.
    console_only = body.get("type") == runs.CONSOLE_OUTPUT
    return _activity(state, PIPELINES, pipeline_id, run_count, console_only)


def list_pipelines(state: EmulatorState, user: dict) -> list[dict]:
    return [pipeline_view(state, pipeline_id) for pipeline_id in list(state.store[PIPELINES])[:RECORD_CAP]]


def pipeline_view(state: EmulatorState, pipeline_id: str) -> dict:
    entry = state.entry(PIPELINES, pipeline_id)
    run = _current_run(state, PIPELINES, pipeline_id)
    latest = state.latest_run(PIPELINES, pipeline_id)
    view = copy.deepcopy(entry["object"])
    workflow = view.setdefault("workflow", {})
    workflow["run_count"] = latest["run_count"] if latest else 0
    workflow["plan"] = [
        {
            "_id": step["_id"],
            "name": step["name"],
            "active": True,
            "type": [step["tool"]],
            "tool": {"tool_identifier": step["tool"], "configuration": {}},
        }
        for step in entry["steps"]
    ]
    workflow["last_step"] = _last_step(entry, run)
    return view


def _last_step(entry: dict, run: dict | None) -> dict:
    if run is None:
        return {
            "status": runs.IDLE,
            "run_count": 0,
            "success": {"step_id": ""},
            "failed": {"step_id": ""},
            "running": {"step_id": "", "paused": False, "status": ""},
        }
    active = run["status"] in runs.ACTIVE_STATUSES
    current = entry["steps"][run["step_index"]]["_id"] if entry["steps"] else ""
    return {
        "status": run["status"],
        "run_count": run["run_count"],
        "success": {"step_id": run["last_success_step_id"] or ""},
        "failed": {"step_id": run["failed_step_id"] or ""},
        "running": {
            "step_id": current if active else "",
            "paused": run["status"] == runs.PAUSED,
            "status": run["status"] if active else "",
        },
    }


# ----- tasks


def list_tasks(state: EmulatorState, user: dict) -> list[dict]:
    visible = [
        task_id for task_id, entry in state.store[TASKS].items() if can_access(user, entry["object"])
    ]
    return [task_view(state, task_id) for task_id in visible[:RECORD_CAP]]


def task_summary(state: EmulatorState, user: dict, body: dict) -> dict:
    task_id = object_id(body, "taskId")
    _visible_entry(state, TASKS, task_id, user)
    return task_view(state, task_id)


def task_status(state: EmulatorState, user: dict, body: dict) -> str:
    task_id = object_id(body, "taskId")
    _visible_entry(state, TASKS, task_id, user)
    run = state.latest_run(TASKS, task_id)
    return run["status"] if run else runs.IDLE


def task_logs(state: EmulatorState, user: dict, query: dict) -> list[dict]:
    task_id = object_id(query, "taskId")
    _visible_entry(state, TASKS, task_id, user)
    run_count = optional_int(query, "runCount", minimum=0) or None
    console_only = query.get("type") == runs.CONSOLE_OUTPUT
    return _activity(state, TASKS, task_id, run_count, console_only)


def start_task_run(state: EmulatorState, task_id: str) -> dict:
    entry = _entry(state, TASKS, task_id)
    run = state.latest_run(TASKS, task_id)
    if run and run["status"] in runs.ACTIVE_STATUSES:
        raise ApiError(409, f"Task {entry['object']['name']} already has run {run['run_count']} in progress")
    run = state.start_run(TASKS, task_id, entry["object"]["owner"])
    state.save()
    return {"status": "executed", "runCount": run["run_count"]}


def task_view(state: EmulatorState, task_id: str) -> dict:
    entry = state.entry(TASKS, task_id)
    run = state.latest_run(TASKS, task_id)
    view = copy.deepcopy(entry["object"])
    view["run_count"] = run["run_count"] if run else 0
    view["status"] = run["status"] if run else runs.IDLE
    view["steps"] = [
        {"_id": step["_id"], "name": step["name"], "tool_identifier": step["tool"]} for step in entry["steps"]
    ]
    return view


# ----- shared


def _activity(state: EmulatorState, collection: str, item_id: str, run_count: int | None, console_only: bool) -> list[dict]:
    """Activity records, newest first, at most RECORD_CAP of them."""
    state.latest_run(collection, item_id)  # bring the live run up to now
    chosen = []
    for run in reversed(state.entry(collection, item_id)["runs"]):
        if run_count is not None and run["run_count"] != run_count:
            continue
        for record in reversed(run["records"]):
            if console_only and record["action"] != runs.CONSOLE_OUTPUT:
                continue
            chosen.append(record)
            if len(chosen) >= RECORD_CAP:
                return chosen
    return chosen
