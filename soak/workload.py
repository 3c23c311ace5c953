"""The workload driver: starts DAG runs at a steady pace, each on a pipeline it holds alone, and plays
the people around them (approving at a gate, marking a deferred task failed, starting runs outside Airflow).

Everything it waits on is observable state (the metadata database, the emulator's journal); a call
that fails while a component is down is simply tried again on the next round.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from soak.seed import OUTSIDE_TOKEN, pools, watched_pipeline

#: name -> (DAG, pipeline kind, what the driver does; the task state the run's outcome implies is checked later)
SCENARIOS: dict[str, tuple[str, str, str]] = {
    "deferred_success": ("soak_run_deferred", "ok", ""),
    "worker_success": ("soak_run_worker", "ok", ""),
    "deferred_failure": ("soak_run_deferred", "fail", ""),
    "worker_failure": ("soak_run_worker", "fail", ""),
    "deferred_approval": ("soak_run_deferred", "approval", "approve"),
    "worker_approval": ("soak_run_worker", "approval", "approve"),
    "deferred_timeout": ("soak_run_deferred", "long", "timeout"),
    "worker_timeout": ("soak_run_worker", "long", "timeout"),
    "deferred_marked_failed": ("soak_run_deferred", "long", "mark_failed"),
    "sensor_deferred": ("soak_sensor_deferred", "external", "outside"),
    "sensor_worker": ("soak_sensor_worker", "external", "outside"),
    "sensor_deferred_failure": ("soak_sensor_deferred", "external_fail", "outside"),
}
#: seconds a timeout scenario's task waits before it gives up (its pipeline runs 45 s)
TIMEOUT_SECONDS = 12
#: how long a trigger is held by a triggerer before a person marks its task failed
TRIGGER_RUNNING_SECONDS = 3
#: a driver's call to Airflow or the emulator that does not answer in time is tried again later
CALL_TIMEOUT = 10


@dataclass
class Case:
    """One DAG run of a scenario, on one pipeline, and what the driver did to it."""

    number: int
    scenario: str
    dag_id: str
    pipeline_id: str
    action: str
    run_id: str | None = None
    external_run_count: int | None = None
    allocated_wall: float = field(default_factory=time.time)
    released_wall: float | None = None
    dag_run_state: str | None = None
    events: list[tuple[float, str]] = field(default_factory=list)
    marked_failed_wall: float | None = None
    #: when the driver first saw the deferred task's trigger held by a triggerer
    trigger_held_wall: float | None = None
    #: the mark-failed request got no answer: whether it took effect is read back from Airflow
    mark_unconfirmed: bool = False

    @property
    def task_id(self) -> str:
        return "watch" if self.action == "outside" else "run"

    def note(self, text: str) -> None:
        self.events.append((time.time(), text))

    @property
    def finished(self) -> bool:
        return self.dag_run_state in ("success", "failed")


class Workload:
    def __init__(self, stack: Any, rng: random.Random, concurrency: int, pace: float) -> None:
        self.stack = stack
        self.rng = rng
        self.concurrency = concurrency
        self.pace = pace
        self.cases: list[Case] = []
        self.free = {kind: list(ids) for kind, ids in pools().items()}
        self._next_start = time.monotonic()
        self.watched = watched_pipeline()
        #: when the asset watcher on the watched pipeline was first seen running in a triggerer
        self.watcher_live_wall: float | None = None
        self._next_watched_run = 0.0
        self._outside = requests.Session()
        self._outside.headers["Authorization"] = f"Bearer {stack.emulator_tokens()[OUTSIDE_TOKEN]}"

    @property
    def active(self) -> list[Case]:
        return [case for case in self.cases if case.released_wall is None]

    # ----- one round

    def step(self, starting: bool) -> None:
        journal = self._journal()
        if starting and time.monotonic() >= self._next_start and len(self.active) < self.concurrency:
            self._start_case()
            self._next_start = time.monotonic() + self.pace * self.rng.uniform(0.6, 1.4)
        if starting:
            try:
                self._feed_watched(journal)
            except (requests.RequestException, RuntimeError):
                pass  # tried again next round
        for case in self.active:
            try:
                self._advance(case, journal)
            except (requests.RequestException, RuntimeError) as error:
                case.note(f"driver call failed, trying again: {type(error).__name__}: {str(error)[:200]}")

    def _journal(self) -> dict[str, list[dict]]:
        try:
            answer = requests.get(f"{self.stack.emulator_url}/_emulator/runs", timeout=CALL_TIMEOUT).json()
        except requests.RequestException:
            return {}
        by_pipeline: dict[str, list[dict]] = {}
        for run in answer["runs"]:
            by_pipeline.setdefault(run["pipeline_id"], []).append(run)
        return by_pipeline

    def _feed_watched(self, journal: dict[str, list[dict]]) -> None:
        """Run the watched pipeline from outside Airflow, one run after another, once its watcher runs."""
        if self.watcher_live_wall is None:
            rows = self.stack.query(
                "SELECT triggerer_id FROM trigger WHERE classpath LIKE %s", ("%OpseraPipelineRunEventTrigger",)
            )
            if any(row["triggerer_id"] is not None for row in rows):
                self.watcher_live_wall = time.time()
            return
        # the watcher's first poll sets where it starts from: leave it a moment
        if time.time() < self.watcher_live_wall + 5 or time.monotonic() < self._next_watched_run:
            return
        if any(run["active"] for run in journal.get(self.watched, [])):
            return
        self._outside.post(
            f"{self.stack.emulator_url}/api/v1/pipeline/run", json={"pipelineId": self.watched}, timeout=CALL_TIMEOUT
        )
        self._next_watched_run = time.monotonic() + self.pace * self.rng.uniform(1, 3)

    def _start_case(self) -> None:
        scenario = self.rng.choice(list(SCENARIOS))
        dag_id, kind, action = SCENARIOS[scenario]
        if not self.free[kind]:
            return
        pipeline_id = self.free[kind].pop(0)
        case = Case(len(self.cases) + 1, scenario, dag_id, pipeline_id, action)
        self.cases.append(case)
        case.note(f"holds pipeline {pipeline_id}")

    def _advance(self, case: Case, journal: dict[str, list[dict]]) -> None:
        runs = journal.get(case.pipeline_id, [])
        if case.action == "outside" and case.external_run_count is None:
            # a start whose answer was lost still started a run: take that one
            started = [run for run in runs if run["started_by_token"] == OUTSIDE_TOKEN
                       and run["started_wall"] >= case.allocated_wall]
            if started:
                case.external_run_count = started[0]["run_count"]
                case.note(f"run {case.external_run_count} started outside Airflow (its answer was lost)")
                return
            answer = self._outside.post(
                f"{self.stack.emulator_url}/api/v1/pipeline/run", json={"pipelineId": case.pipeline_id},
                timeout=CALL_TIMEOUT,
            )
            if answer.status_code == 200 and answer.json().get("status") == "executed":
                case.external_run_count = int(answer.json()["runCount"])
                case.note(f"started run {case.external_run_count} outside Airflow")
            return
        if case.run_id is None:
            conf: dict[str, Any] = {"pipeline_id": case.pipeline_id}
            if case.action == "timeout":
                conf["timeout"] = TIMEOUT_SECONDS
            if case.external_run_count is not None:
                conf["run_count"] = case.external_run_count
            run_id = f"soak_{case.number:04d}_{case.scenario}"
            answer = requests.post(
                f"{self.stack.api_url}/api/v2/dags/{case.dag_id}/dagRuns",
                json={"dag_run_id": run_id, "logical_date": None, "conf": conf}, timeout=CALL_TIMEOUT,
            )
            if answer.status_code == 409 or answer.ok:  # 409: an earlier request went through unanswered
                case.run_id = run_id
                case.note(f"triggered DAG run {run_id}")
            return
        if not case.finished:
            self._play_person(case, runs)
            rows = self.stack.query(
                "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (case.dag_id, case.run_id)
            )
            if rows and rows[0]["state"] in ("success", "failed"):
                case.dag_run_state = rows[0]["state"]
                case.note(f"DAG run ended {case.dag_run_state}")
            return
        # the pipeline goes back to the pool once its last run ended (a soft stop finishes the step first)
        if not any(run["active"] for run in runs):
            case.released_wall = time.time()
            case.note("released the pipeline")
            self.free[SCENARIOS[case.scenario][1]].append(case.pipeline_id)

    def _play_person(self, case: Case, runs: list[dict]) -> None:
        if case.action == "approve":
            paused = [run for run in runs if run["status"] == "paused"]
            if paused:
                answer = requests.post(
                    f"{self.stack.emulator_url}/_emulator/pipelines/{case.pipeline_id}/approve", timeout=CALL_TIMEOUT
                )
                if answer.ok:
                    case.note(f"approved run {paused[-1]['run_count']}")
        elif case.action == "mark_failed" and case.mark_unconfirmed:
            self._confirm_mark(case)
        elif case.action == "mark_failed" and case.marked_failed_wall is None:
            self._mark_failed_when_deferred(case, runs)

    def _confirm_mark(self, case: Case) -> None:
        """After a mark-failed request without an answer: once the API server answers again, did it take?"""
        requests.get(f"{self.stack.api_url}/api/v2/monitor/health", timeout=CALL_TIMEOUT).raise_for_status()
        rows = self.stack.query(
            "SELECT state FROM task_instance WHERE dag_id = %s AND run_id = %s AND task_id = %s",
            (case.dag_id, case.run_id, case.task_id),
        )
        case.mark_unconfirmed = False
        if rows and rows[0]["state"] == "deferred":
            case.marked_failed_wall = None
            case.note("the unanswered mark-failed request did not take effect")
        else:
            case.note(f"the unanswered mark-failed request took effect: the task is {rows[0]['state'] if rows else None}")

    def _mark_failed_when_deferred(self, case: Case, runs: list[dict]) -> None:
        """A person marks the task failed a while after it deferred, once a triggerer runs its trigger.

        Sooner, the trigger may not have started anywhere yet, and nothing would stop the run: a
        known limit (SOAK.md), not what this scenario is about.
        """
        held_by = self.stack.triggerer_holding(case.dag_id, case.run_id, case.task_id)
        if held_by not in self.stack.triggerers() or not any(run["active"] for run in runs):
            case.trigger_held_wall = None
            return
        if case.trigger_held_wall is None:
            case.trigger_held_wall = time.time()
            case.note(f"the trigger is held by {held_by}")
        if time.time() - case.trigger_held_wall < TRIGGER_RUNNING_SECONDS or self.rng.random() >= 0.3:
            return
        # noted before it is sent: a request whose answer is lost may still have taken effect
        case.marked_failed_wall = time.time()
        case.note("marking the deferred task failed through Airflow's API")
        try:
            answer = requests.patch(
                f"{self.stack.api_url}/api/v2/dags/{case.dag_id}/dagRuns/{case.run_id}/taskInstances/{case.task_id}",
                json={"new_state": "failed"}, timeout=CALL_TIMEOUT,
            )
        except requests.ConnectionError as error:
            if isinstance(error, requests.ConnectTimeout) or "NewConnectionError" in repr(error):
                case.marked_failed_wall = None  # never sent: the API server was down
            else:
                case.mark_unconfirmed = True
            raise
        except requests.Timeout:
            case.mark_unconfirmed = True  # sent, unanswered (a frozen API server): read back later
            raise
        if not answer.ok:
            case.marked_failed_wall = None
            case.note(f"marking failed was refused: {answer.status_code}")

    def unpause(self) -> None:
        for dag_id in sorted({dag for dag, _, _ in SCENARIOS.values()} | {"soak_asset_events"}):
            self.stack.wait_for_dag(dag_id, timeout=240)
            self.stack.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
