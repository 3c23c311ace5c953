"""How a pipeline or task run moves through its steps on the emulated clock.

A run is a plain dict (so it persists as JSON). Nothing ticks in the background:
``advance(run, now)`` replays whatever should have happened between the run's last
known point and ``now``, writing the activity records with the emulated times at
which they happened. Any request that looks at a run advances it first, so a
thousand idle runs cost nothing and a poll costs a few comparisons.

Step script, from the seed: ``{name, tool, duration, outcome, console}`` with
outcome ``success`` (the default), ``fail`` or ``approval`` (the run pauses at
the step until ``approve``, or ends ``rejected`` on ``reject``). Console lines are
spread evenly inside the step.
"""

from __future__ import annotations

from typing import Callable

from .clock import iso

RUNNING = "running"
PAUSED = "paused"
SUCCESS = "success"
FAILED = "failed"
STOPPED = "stopped"
REJECTED = "rejected"
# What a pipeline or task reports before its first run or after a reset.
IDLE = "created"

ACTIVE_STATUSES = frozenset({RUNNING, PAUSED})

CONSOLE_OUTPUT = "console output"


class RunSubject:
    """What a run belongs to: a pipeline or a task, with its step scripts.

    ``new_id(t)`` hands out record ids (24 hex) from the owning store.
    """

    def __init__(self, kind: str, object_id: str, name: str, steps: list[dict], new_id: Callable[[float], str]):
        self.kind = kind  # "pipeline" or "task"
        self.object_id = object_id
        self.name = name
        self.steps = steps
        self.new_id = new_id

    @property
    def label(self) -> str:
        return "Pipeline" if self.kind == "pipeline" else "Task"


def new_run(subject: RunSubject, run_count: int, now: float, user_id: str) -> dict:
    run = {
        "run_count": run_count,
        "started_at": now,
        "started_by": user_id,
        "status": RUNNING,
        "step_index": 0,
        "step_started_at": now,
        "step_start_logged": False,
        "lines_emitted": 0,
        "stop_requested": False,
        "ended_at": None,
        "failed_step_id": None,
        "last_success_step_id": None,
        "records": [],
    }
    _record(subject, run, now, None, "start", f"{subject.label} run {run_count} started", RUNNING, "processing")
    if not subject.steps:
        _end(subject, run, now, SUCCESS)
    return run


def advance(subject: RunSubject, run: dict, now: float) -> None:
    while run["status"] == RUNNING:
        index = run["step_index"]
        step = subject.steps[index]
        started = run["step_started_at"]
        if not run["step_start_logged"]:
            run["step_start_logged"] = True
            _record(subject, run, started, index, "start step", f"Starting step '{step['name']}'", RUNNING, "processing")
            if step["outcome"] == "approval":
                run["status"] = PAUSED
                _record(
                    subject, run, started, index, "approval",
                    f"Step '{step['name']}' is waiting for approval", PAUSED, "paused",
                )
                return
        lines = step["console"]
        duration = step["duration"]
        while run["lines_emitted"] < len(lines):
            k = run["lines_emitted"]
            at = started + duration * (k + 1) / (len(lines) + 1)
            if at > now:
                return
            _record(
                subject, run, at, index, CONSOLE_OUTPUT, "console output", RUNNING, "processing",
                api_response={"consoleLog": lines[k]},
            )
            run["lines_emitted"] += 1
        ends = started + duration
        if ends > now:
            return
        _finish_step(subject, run, ends, succeeded=step["outcome"] != "fail")


def approve(subject: RunSubject, run: dict, now: float, user_id: str) -> bool:
    """Let a paused run continue past its approval gate. False if it was not paused."""
    advance(subject, run, now)
    if run["status"] != PAUSED:
        return False
    index = run["step_index"]
    run["status"] = RUNNING
    _record(
        subject, run, now, index, "approved", f"Step '{subject.steps[index]['name']}' approved", RUNNING,
        "processing", user_id=user_id,
    )
    _finish_step(subject, run, now, succeeded=True)
    advance(subject, run, now)
    return True


def reject(subject: RunSubject, run: dict, now: float, user_id: str, message: str) -> bool:
    """End a paused run at its approval gate, with the reason given. False if it was not paused."""
    advance(subject, run, now)
    if run["status"] != PAUSED:
        return False
    step = subject.steps[run["step_index"]]
    _record(
        subject, run, now, run["step_index"], "rejected", f"Step '{step['name']}' rejected: {message}", REJECTED,
        "rejected", user_id=user_id,
    )
    _end(subject, run, now, REJECTED)
    return True


def waiting_step(subject: RunSubject, run: dict) -> dict | None:
    """The step a paused run waits at, or None."""
    return subject.steps[run["step_index"]] if run["status"] == PAUSED else None


def request_stop(subject: RunSubject, run: dict, now: float, user_id: str) -> None:
    """A soft stop: the current step finishes, then the run ends ``stopped``.

    A run waiting at an approval gate has no step in flight, so it stops at once.
    """
    advance(subject, run, now)
    if run["status"] == PAUSED:
        _record(subject, run, now, run["step_index"], "stop", "Stop requested while paused", STOPPED, "stopped", user_id=user_id)
        _end(subject, run, now, STOPPED)
    elif run["status"] == RUNNING and not run["stop_requested"]:
        run["stop_requested"] = True
        step = subject.steps[run["step_index"]]
        _record(
            subject, run, now, run["step_index"], "stop",
            f"Stop requested; step '{step['name']}' will finish first", RUNNING, "stopping", user_id=user_id,
        )


def abandon(subject: RunSubject, run: dict, now: float, user_id: str) -> bool:
    """End an active run immediately (a reset). False if it had already ended."""
    advance(subject, run, now)
    if run["status"] not in ACTIVE_STATUSES:
        return False
    _record(subject, run, now, None, "reset", "The run status has been reset", STOPPED, "stopped", user_id=user_id)
    _end(subject, run, now, STOPPED)
    return True


def status_message(subject: RunSubject, run: dict) -> str:
    prefix = f"{subject.label}: {subject.name}'s Run {run['run_count']}"
    status = run["status"]
    step_name = subject.steps[run["step_index"]]["name"] if subject.steps else ""
    if status == SUCCESS:
        return f"{prefix} was successful."
    if status == FAILED:
        return f"{prefix} failed at step '{step_name}'."
    if status == STOPPED:
        return f"{prefix} was stopped."
    if status == REJECTED:
        return f"{prefix} was rejected at step '{step_name}'."
    if status == PAUSED:
        return f"{prefix} is paused at step '{step_name}' waiting for approval."
    return f"{prefix} is running step {run['step_index'] + 1} of {len(subject.steps)} ('{step_name}')."


def _finish_step(subject: RunSubject, run: dict, at: float, succeeded: bool) -> None:
    index = run["step_index"]
    step = subject.steps[index]
    if not succeeded:
        last_line = step["console"][-1] if step["console"] else "the step reported a failure"
        _record(subject, run, at, index, "step failed", f"Step '{step['name']}' failed: {last_line}", FAILED, "failed")
        run["failed_step_id"] = step["_id"]
        _end(subject, run, at, FAILED)
        return
    _record(subject, run, at, index, "step complete", f"Step '{step['name']}' completed successfully", SUCCESS, "completed")
    run["last_success_step_id"] = step["_id"]
    if run["stop_requested"]:
        _end(subject, run, at, STOPPED)
    elif index + 1 >= len(subject.steps):
        _end(subject, run, at, SUCCESS)
    else:
        run["step_index"] = index + 1
        run["step_started_at"] = at
        run["step_start_logged"] = False
        run["lines_emitted"] = 0


def _end(subject: RunSubject, run: dict, at: float, status: str) -> None:
    run["status"] = status
    run["ended_at"] = at
    state = {SUCCESS: "completed", FAILED: "failed", STOPPED: "stopped", REJECTED: "rejected"}[status]
    _record(subject, run, at, None, "end", status_message(subject, run), status, state)


def _record(
    subject: RunSubject,
    run: dict,
    at: float,
    step_index: int | None,
    action: str,
    message: str,
    status: str,
    state: str,
    api_response: dict | None = None,
    user_id: str | None = None,
) -> None:
    step = subject.steps[step_index] if step_index is not None else None
    stamp = iso(at)
    run["records"].append(
        {
            "_id": subject.new_id(at),
            f"{subject.kind}_id": subject.object_id,
            "run_count": run["run_count"],
            "step_id": step["_id"] if step else "",
            "step_index": step_index,
            "step_name": step["name"] if step else "",
            "tool_identifier": step["tool"] if step else "",
            "action": action,
            "message": message,
            "status": status,
            "state": state,
            "api_response": api_response or {},
            "user_id": user_id or run["started_by"],
            "createdAt": stamp,
            "updatedAt": stamp,
        }
    )
