"""The soak's invariants, checked afterwards from the emulator's run journal and Airflow's database.

Each violation names the DAG run, the task and the pipeline run, with the timeline of what
happened to them (the driver's actions, the task's tries, the run's start, stops and end, and
the chaos that struck meanwhile), so it can be turned into a focused test.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from soak.workload import Case

AIRFLOW_TOKEN = "admin"
#: a run that ends this close after its task counts as ended with it (clocks are read at different moments)
SLACK_SECONDS = 3.0
#: the run outcome -> the task state it implies
IMPLIED_STATE = {"success": "success", "failed": "failed", "stopped": "failed"}


@dataclass
class Violation:
    invariant: str
    case: Case | None
    what: str
    timeline: list[str] = field(default_factory=list)


def _wall(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):  # read back from evidence.json
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def _clock(wall: float | None) -> str:
    if wall is None:
        return "--:--:--.-"
    return time.strftime("%H:%M:%S", time.localtime(wall)) + f".{int(wall * 10) % 10}"


class Evidence:
    """What the checks read: the journal's runs, the task tries, the chaos, the driver's cases."""

    def __init__(self, cases: list[Case], journal: dict, tries: list[dict], chaos: list[Any]) -> None:
        self.cases = cases
        self.journal = journal
        self.chaos = chaos
        self.tries: dict[tuple[str, str], list[dict]] = {}
        for row in tries:
            self.tries.setdefault((row["dag_id"], row["run_id"]), []).append(row)
        for rows in self.tries.values():
            rows.sort(key=lambda row: row["try_number"])
        self.runs_of: dict[str, list[dict]] = {}
        for run in journal["runs"]:
            self.runs_of.setdefault(run["pipeline_id"], []).append(run)

    def runs(self, case: Case) -> list[dict]:
        """The pipeline's runs started while the case held it."""
        end = case.released_wall if case.released_wall is not None else float("inf")
        return sorted(
            (run for run in self.runs_of.get(case.pipeline_id, []) if case.allocated_wall <= run["started_wall"] <= end),
            key=lambda run: run["run_count"],
        )

    def final_try(self, case: Case) -> dict | None:
        rows = self.tries.get((case.dag_id, case.run_id or ""), [])
        return rows[-1] if rows else None

    def timeline(self, case: Case) -> list[str]:
        entries: list[tuple[float, str]] = [(wall, f"driver: {text}") for wall, text in case.events]
        for row in self.tries.get((case.dag_id, case.run_id or ""), []):
            entries.append((_wall(row["start_date"]) or case.allocated_wall, f"task try {row['try_number']} started"))
            if row["end_date"] is not None:
                entries.append((_wall(row["end_date"]), f"task try {row['try_number']} ended {row['state']}"))
        for run in self.runs(case):
            who = run["started_by_token"]
            entries.append((run["started_wall"], f"pipeline run {run['run_count']} started by token {who}"))
            for stop in run["stops"]:
                entries.append((stop["wall"], f"run {run['run_count']} stop by {stop['by']} (was {stop['run_status']})"))
            for reset in run["resets"]:
                entries.append((reset["wall"], f"run {run['run_count']} reset by {reset['by']}"))
            for approval in run["approvals"]:
                entries.append((approval["wall"], f"run {run['run_count']} approved by {approval['by']}"))
            if run["ended_wall"] is not None:
                entries.append((run["ended_wall"], f"run {run['run_count']} ended {run['status']}"))
        end = case.released_wall or time.time()
        for event in self.chaos:
            if case.allocated_wall - 30 <= event.wall <= end:
                entries.append((event.wall, f"chaos: {event.action} {event.component} {event.detail}".rstrip()))
        return [f"{_clock(wall)}  {text}" for wall, text in sorted(entries, key=lambda entry: entry[0])]


def case_rows(evidence: Evidence) -> list[str]:
    """One table row per case: its runs and outcomes, its tries, its final task state."""
    rows = []
    for case in evidence.cases:
        runs = ", ".join(f"{run['run_count']} ({run['status']})" for run in evidence.runs(case)) or "none"
        final = evidence.final_try(case)
        tries = final["try_number"] if final else 0
        rows.append(
            f"| {case.number} | {case.scenario} | `{case.run_id}` | {runs} | {tries} | "
            f"{final['state'] if final else case.dag_run_state} |"
        )
    return rows


def check(evidence: Evidence, watched: str) -> list[Violation]:
    """Every invariant but the asset events' and the logs'; ``watched`` runs from outside, no case holds it."""
    violations: list[Violation] = []
    held: list[tuple[str, float, float]] = [(watched, 0.0, float("inf"))]
    for case in evidence.cases:
        held.append((case.pipeline_id, case.allocated_wall, case.released_wall or float("inf")))
        found = _check_sensor(evidence, case) if case.action == "outside" else _check_run(evidence, case)
        for invariant, what in found:
            violations.append(Violation(invariant, case, what, evidence.timeline(case)))
    for run in evidence.journal["runs"]:
        owned = any(p == run["pipeline_id"] and start <= run["started_wall"] <= end for p, start, end in held)
        if not owned:
            violations.append(
                Violation("no run outside a task", None, f"run {run['run_count']} of {run['pipeline_id']} "
                          f"(token {run['started_by_token']}) started while no DAG run held the pipeline")
            )
    return violations


def _unfinished(case: Case) -> list[tuple[str, str]]:
    if case.run_id is None:
        return [("every case ran", "the DAG run was never created")]
    if not case.finished:
        return [("every case ran", "the DAG run did not finish before the soak ended")]
    return []


def _check_run(evidence: Evidence, case: Case) -> list[tuple[str, str]]:
    found = _unfinished(case)
    if found:
        return found
    runs, final = evidence.runs(case), evidence.final_try(case)
    task_state = final["state"] if final else None
    task_end = _wall(final["end_date"]) if final else None
    for run in runs:
        if run["started_by_token"] != AIRFLOW_TOKEN:
            found.append(("one run per try chain", f"run {run['run_count']} was started by {run['started_by_token']}"))
    # a later run is only right after a run that failed (a retry starts anew); never after success or stop
    for earlier, later in zip(runs, runs[1:]):
        ended = earlier["ended_wall"]
        if earlier["status"] != "failed" or ended is None or later["started_wall"] < ended - SLACK_SECONDS:
            found.append(
                ("one run per try chain", f"run {later['run_count']} started after run {earlier['run_count']} "
                 f"({earlier['status']}): the chain started {len(runs)} runs")
            )
    last = runs[-1] if runs else None
    if last is None:
        if task_state != "failed":
            found.append(("task state follows the run", f"no run started, yet the task is {task_state}"))
        return found
    implied = IMPLIED_STATE.get(last["status"])
    if case.action in ("timeout", "mark_failed") and (last["stops"] or case.marked_failed_wall):
        implied = "failed"
    if implied is None:
        found.append(("no run left running", f"run {last['run_count']} is still {last['status']} at the end"))
    elif task_state != implied:
        found.append(
            ("task state follows the run", f"run {last['run_count']} ended {last['status']}, the task is {task_state}")
        )
    airflow_stops = [
        stop for run in runs for stop in run["stops"] if stop["by"] == AIRFLOW_TOKEN and stop["run_status"] != "success"
    ]
    if last["status"] == "stopped" and last["ended_wall"] is not None:
        # Airflow retries a try that was killed before it could fail the task (with the scheduler, say): that
        # retry must end the task, failed, starting nothing. A second try after the stop means it did not.
        after_stop = [
            row
            for row in evidence.tries.get((case.dag_id, case.run_id or ""), [])
            if (_wall(row["start_date"]) or 0) > last["ended_wall"] + SLACK_SECONDS
        ]
        if len(after_stop) > 1:
            numbers = ", ".join(str(row["try_number"]) for row in after_stop)
            found.append(
                ("task state follows the run", f"tries {numbers} started after run {last['run_count']} was "
                 "stopped: a stopped run fails the task without a retry")
            )
    ran_on = last["ended_wall"] is None or (task_end is not None and last["ended_wall"] > task_end + SLACK_SECONDS)
    if ran_on and not last["stops"]:
        found.append(("no run left running", f"run {last['run_count']} went on after the task ended, unstopped"))
    justified = (case.action == "timeout") or (
        case.action == "mark_failed" and case.marked_failed_wall is not None
    )
    final_start = _wall(final["start_date"]) if final else None

    def by_a_last_try_that_failed(stop: dict) -> bool:
        # the task's last try failed while its run went on: nothing would follow the run, so the try stops it
        return (
            task_state == "failed" and final_start is not None and task_end is not None
            and final_start - SLACK_SECONDS <= stop["wall"] <= task_end + SLACK_SECONDS
        )

    for stop in airflow_stops:
        if by_a_last_try_that_failed(stop):
            continue
        if not justified or (case.marked_failed_wall and stop["wall"] < case.marked_failed_wall - SLACK_SECONDS):
            found.append(("no healthy run stopped", f"Airflow stopped a run ({stop['run_status']}) at {_clock(stop['wall'])}"))
    for run in runs:
        for reset in run["resets"]:
            found.append(("no healthy run stopped", f"run {run['run_count']} was reset by {reset['by']}"))
    return found


def _check_sensor(evidence: Evidence, case: Case) -> list[tuple[str, str]]:
    found = _unfinished(case)
    if found:
        return found
    runs, final = evidence.runs(case), evidence.final_try(case)
    task_state = final["state"] if final else None
    for run in runs:
        if run["started_by_token"] == AIRFLOW_TOKEN:
            found.append(("one run per try chain", f"the sensor's task started run {run['run_count']}"))
        for stop in run["stops"] + run["resets"]:
            if stop["by"] == AIRFLOW_TOKEN:
                found.append(("no healthy run stopped", f"Airflow stopped run {run['run_count']} a sensor watched"))
    watched = [run for run in runs if run["run_count"] == case.external_run_count]
    if watched:
        implied = IMPLIED_STATE.get(watched[0]["status"])
        if task_state != implied:
            found.append(
                ("task state follows the run", f"run {case.external_run_count} ended {watched[0]['status']}, "
                 f"the sensor is {task_state}")
            )
    return found


def asset_events(runs: list[dict], events: list[dict], since: float | None) -> list[Violation]:
    """Each run of the watched pipeline that ended (started once its watcher ran) has exactly one event."""
    if since is None:
        return [Violation("every asset event once per finished run", None, "the asset watcher never ran")]
    reported: dict[int, int] = {}
    for event in events:
        reported[event["run_count"]] = reported.get(event["run_count"], 0) + 1
    violations = []
    known = {run["run_count"] for run in runs}
    for run in runs:
        if run["active"] or run["started_wall"] < since:
            continue
        count = reported.get(run["run_count"], 0)
        if count != 1:
            violations.append(
                Violation("every asset event once per finished run", None,
                          f"run {run['run_count']} of the watched pipeline ended {run['status']}: {count} events")
            )
    for run_count in sorted(set(reported) - known):
        violations.append(
            Violation("every asset event once per finished run", None, f"an event for run {run_count}, which never ran")
        )
    return violations


def tokens_in_logs(roots: list[Path], tokens: dict[str, str]) -> list[Violation]:
    """Every file under the logs' roots, read as bytes, for each token's full text and its signature."""
    violations = []
    needles = {}
    for name, jwt in tokens.items():
        needles[jwt.encode()] = name
        needles[jwt.rsplit(".", 1)[-1].encode()] = f"{name} (its signature)"
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if path.suffix in (".db", ".json") and "log" not in path.name:
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            for needle, name in needles.items():
                if needle in data:
                    violations.append(Violation("no token in any log", None, f"token {name} appears in {path}"))
    return violations
