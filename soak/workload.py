"""The workload driver: starts DAG runs at a steady pace, each on a pipeline no other DAG run holds
meanwhile, and plays the people around them: in Opsera (approving at a gate, starting the runs the
sensors watch; the people who share pipelines are ``soak.people``) and in Airflow (marking a waiting
task failed or success, clearing a task while it waits, in the worker or deferred, or after it ended).

Everything it waits on is observable state (the metadata database, the emulator's journal); a call
that fails while a component is down is simply tried again on the next round. Each action on Airflow
is noted with its time before it is sent, and read back from Airflow when its answer was lost.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from soak.people import People
from soak.seed import AIRFLOW_TOKEN, OUTSIDE_TOKEN, PEOPLE, pools, watched_pipeline

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
    "worker_marked_failed": ("soak_run_worker", "long", "mark_failed"),
    "deferred_marked_success": ("soak_run_deferred", "long", "mark_success"),
    "worker_marked_success": ("soak_run_worker", "long", "mark_success"),
    "sensor_deferred": ("soak_sensor_deferred", "external", "outside"),
    "sensor_worker": ("soak_sensor_worker", "external", "outside"),
    "sensor_deferred_failure": ("soak_sensor_deferred", "external_fail", "outside"),
}
#: seconds a timeout scenario's task waits before it gives up (its pipeline runs 45 s)
TIMEOUT_SECONDS = 12
#: how long a task waits on its run (a deferred one: its trigger held by a triggerer) before a person marks it
WAITING_SECONDS_BEFORE_A_MARK = 3
#: the share of DAG runs whose task a person clears while it waits (on its run, or on a run in its way), and
#: the share cleared once ended; each at a random moment within the seconds given
CLEAR_WHILE_WAITING = (0.25, 6.0)
CLEAR_WHEN_ENDED = (0.25, 10.0)
#: the actions after which a task may be cleared while it waits (a marked task has been decided by a person)
CLEARED_WHILE_WAITING = ("", "approve", "timeout")
#: a driver's call to Airflow or the emulator that does not answer in time is tried again later
CALL_TIMEOUT = 10


@dataclass
class Clear:
    """A person cleared the task through Airflow's REST API."""

    wall: float
    #: the task's state when it was cleared: running (waiting in the worker), deferred, success or failed
    kind: str
    #: the task's try then: the tries after it are the new try chain's
    try_number: int
    #: the DAG run's clear_number before: a Clear whose answer was lost took effect if it went up
    clear_number: int
    unconfirmed: bool = False

    @property
    def of_an_ended_task(self) -> bool:
        return self.kind in ("success", "failed")


@dataclass
class Mark:
    """A person set the waiting task's state through Airflow's REST API."""

    wall: float
    state: str
    unconfirmed: bool = False


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
    mark: Mark | None = None
    clears: list[Clear] = field(default_factory=list)
    #: seconds after the task is seen waiting that a person clears it, and after the DAG run ended (None: never)
    clear_while_waiting_after: float | None = None
    clear_when_ended_after: float | None = None
    #: when the driver first saw the task waiting (for a mark: on its own run, a deferred one held by a triggerer)
    waiting_seen_wall: float | None = None
    ended_seen_wall: float | None = None

    @property
    def task_id(self) -> str:
        return "watch" if self.action == "outside" else "run"

    def note(self, text: str) -> None:
        self.events.append((time.time(), text))

    @property
    def finished(self) -> bool:
        return self.dag_run_state in ("success", "failed")

    @property
    def unconfirmed(self) -> bool:
        return (self.mark is not None and self.mark.unconfirmed) or any(clear.unconfirmed for clear in self.clears)


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
        # their own draws: how often people click does not change which scenarios the seed gives
        self.people = People(stack.emulator_url, random.Random(rng.random()))

    @property
    def active(self) -> list[Case]:
        return [case for case in self.cases if case.released_wall is None]

    # ----- one round

    def step(self, starting: bool) -> None:
        """One round; ``starting`` is off while the soak drains: no new DAG runs, no new runs by people, no Clears."""
        journal = self._journal()
        if starting and time.monotonic() >= self._next_start and len(self.active) < self.concurrency:
            self._start_case()
            self._next_start = time.monotonic() + self.pace * self.rng.uniform(0.6, 1.4)
        if starting:
            self.people.step(journal)
            try:
                self._feed_watched(journal)
            except (requests.RequestException, RuntimeError):
                pass  # tried again next round
        for case in self.active:
            try:
                self._advance(case, journal, starting)
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
        # drawn for every case, so that the seed gives the same scenarios whatever is planned for each
        plans = [self.rng.random() < share and self.rng.uniform(0, within) for share, within in
                 (CLEAR_WHILE_WAITING, CLEAR_WHEN_ENDED)]
        if not self.free[kind]:
            return
        pipeline_id = self.free[kind].pop(0)
        case = Case(len(self.cases) + 1, scenario, dag_id, pipeline_id, action)
        if action != "outside":
            if action in CLEARED_WHILE_WAITING and plans[0] is not False:
                case.clear_while_waiting_after = plans[0]
            if plans[1] is not False:
                case.clear_when_ended_after = plans[1]
        self.cases.append(case)
        case.note(f"holds pipeline {pipeline_id}")

    def _advance(self, case: Case, journal: dict[str, list[dict]], starting: bool) -> None:
        pipeline_runs = journal.get(case.pipeline_id, [])
        runs = [run for run in pipeline_runs if run["started_wall"] >= case.allocated_wall]
        if case.action == "outside" and case.external_run_count is None:
            self._start_the_watched_run(case, runs)
            return
        if case.run_id is None:
            self._trigger(case)
            return
        if case.unconfirmed:
            self._confirm(case)
            return
        if not case.finished:
            self._play_person(case, pipeline_runs, starting)
            rows = self.stack.query(
                "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (case.dag_id, case.run_id)
            )
            if rows and rows[0]["state"] in ("success", "failed"):
                case.dag_run_state = rows[0]["state"]
                case.ended_seen_wall = time.time()
                case.note(f"DAG run ended {case.dag_run_state}")
            return
        if case.clear_when_ended_after is not None and not any(clear.of_an_ended_task for clear in case.clears):
            if not starting:
                case.clear_when_ended_after = None  # the soak drains: nothing new starts
            elif time.time() >= (case.ended_seen_wall or 0) + case.clear_when_ended_after:
                task = self._task(case)
                if task is not None and task["state"] in ("success", "failed"):
                    self._clear(case, task, ended=True)
                else:
                    case.clear_when_ended_after = None
                    case.note(f"not clearing: the task is {task and task['state']}")
            return
        # the pipeline goes back to the pool once its last run of Airflow's (or of the sensor's) ended: a soft
        # stop finishes the step first. People's runs are theirs: they go on across DAG runs
        if not any(run["active"] and run["started_by_token"] not in PEOPLE for run in runs):
            case.released_wall = time.time()
            case.note("released the pipeline")
            self.free[SCENARIOS[case.scenario][1]].append(case.pipeline_id)

    def _start_the_watched_run(self, case: Case, runs: list[dict]) -> None:
        """The run a sensor watches, started outside Airflow (a start whose answer was lost still started it)."""
        started = [run for run in runs if run["started_by_token"] == OUTSIDE_TOKEN]
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

    def _trigger(self, case: Case) -> None:
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

    # ----- the people in Airflow and at the approval gate

    def _play_person(self, case: Case, pipeline_runs: list[dict], starting: bool) -> None:
        own = [run for run in pipeline_runs
               if run["started_by_token"] == AIRFLOW_TOKEN and run["started_wall"] >= case.allocated_wall]
        if case.action == "approve":
            paused = [run for run in own if run["status"] == "paused"]
            if paused:
                answer = requests.post(
                    f"{self.stack.emulator_url}/_emulator/pipelines/{case.pipeline_id}/approve", timeout=CALL_TIMEOUT
                )
                if answer.ok:
                    case.note(f"approved run {paused[-1]['run_count']}")
        if case.action == "outside":
            return
        task = self._task(case)
        if task is None:
            return
        own_run_going = any(run["active"] for run in own)
        if case.action in ("mark_failed", "mark_success") and case.mark is None:
            self._mark_when_waiting(case, task, own_run_going)
        elif case.clear_while_waiting_after is not None and not case.clears:
            if not starting:
                case.clear_while_waiting_after = None
                return
            # waiting in the worker on its run or on one in its way, or deferred
            waiting = task["state"] == "deferred" or (
                task["state"] == "running" and any(run["active"] for run in pipeline_runs)
            )
            if not waiting:
                case.waiting_seen_wall = None
            elif case.waiting_seen_wall is None:
                case.waiting_seen_wall = time.time()
            elif time.time() >= case.waiting_seen_wall + case.clear_while_waiting_after:
                self._clear(case, task, ended=False)

    def _task(self, case: Case) -> dict | None:
        rows = self.stack.query(
            "SELECT state, try_number FROM task_instance WHERE dag_id = %s AND run_id = %s AND task_id = %s",
            (case.dag_id, case.run_id, case.task_id),
        )
        return rows[0] if rows else None

    def _mark_when_waiting(self, case: Case, task: dict, own_run_going: bool) -> None:
        """A person marks the task failed or success a while after it started waiting on its run; a deferred
        task once a triggerer runs its trigger.

        Sooner, a deferred task's trigger may not have started anywhere yet, and nothing would stop the run of
        a task marked failed: a known limit (SOAK.md), not what these scenarios are about.
        """
        deferred = SCENARIOS[case.scenario][0] == "soak_run_deferred"
        if deferred:
            held_by = self.stack.triggerer_holding(case.dag_id, case.run_id, case.task_id)
            waiting = task["state"] == "deferred" and held_by in self.stack.triggerers()
        else:
            waiting = task["state"] == "running"
        if not (waiting and own_run_going):
            case.waiting_seen_wall = None
            return
        if case.waiting_seen_wall is None:
            case.waiting_seen_wall = time.time()
            case.note(f"the trigger is held by {held_by}" if deferred else "the task waits in the worker")
        if time.time() - case.waiting_seen_wall < WAITING_SECONDS_BEFORE_A_MARK or self.rng.random() >= 0.3:
            return
        state = case.action.removeprefix("mark_")
        # noted before it is sent: a request whose answer is lost may still have taken effect
        case.mark = Mark(time.time(), state)
        case.note(f"marking the {task['state']} task {state} through Airflow's API")
        path = f"/api/v2/dags/{case.dag_id}/dagRuns/{case.run_id}/taskInstances/{case.task_id}"
        sent = self._send(case, "PATCH", path, {"new_state": state})
        if sent == "unanswered":
            case.mark.unconfirmed = True
        elif sent != "done":
            case.mark = None

    def _clear(self, case: Case, task: dict | None, ended: bool) -> None:
        """A person clears the task (and, when it ended, its DAG run) through Airflow's REST API."""
        rows = self.stack.query(
            "SELECT clear_number FROM dag_run WHERE dag_id = %s AND run_id = %s", (case.dag_id, case.run_id)
        )
        if task is None or not rows:
            return
        clear = Clear(time.time(), task["state"], task["try_number"], rows[0]["clear_number"])
        case.clears.append(clear)
        case.note(f"clearing the {clear.kind} task (try {clear.try_number}) through Airflow's API")
        body = {"dry_run": False, "dag_run_id": case.run_id, "task_ids": [case.task_id], "only_failed": False,
                "reset_dag_runs": True}
        sent = self._send(case, "POST", f"/api/v2/dags/{case.dag_id}/clearTaskInstances", body)
        if sent == "unanswered":
            clear.unconfirmed = True
        elif sent == "refused":
            case.clears.remove(clear)
            case.clear_when_ended_after = case.clear_while_waiting_after = None  # not tried again
            return
        elif sent != "done":
            case.clears.remove(clear)
            return
        if ended:
            case.dag_run_state = None  # the DAG run runs again (read back from Airflow if the answer was lost)

    def _send(self, case: Case, method: str, path: str, body: dict) -> str:
        """A person's request to Airflow's REST API: ``done``, ``refused``, ``never sent`` (the API server
        was down) or ``unanswered`` (sent; whether it took effect is read back later)."""
        try:
            answer = requests.request(method, f"{self.stack.api_url}{path}", json=body, timeout=CALL_TIMEOUT)
        except requests.ConnectionError as error:
            if isinstance(error, requests.ConnectTimeout) or "NewConnectionError" in repr(error):
                case.note("the request was never sent: the API server is down")
                return "never sent"
            return "unanswered"
        except requests.Timeout:
            return "unanswered"  # a frozen API server
        if not answer.ok:
            case.note(f"the request was refused: {answer.status_code} {answer.text[:200]}")
            return "refused"
        return "done"

    def _confirm(self, case: Case) -> None:
        """After a request without an answer: once the API server answers again, did it take effect?"""
        requests.get(f"{self.stack.api_url}/api/v2/monitor/health", timeout=CALL_TIMEOUT).raise_for_status()
        if case.mark is not None and case.mark.unconfirmed:
            task = self._task(case)
            case.mark.unconfirmed = False
            if task is None or task["state"] != case.mark.state:
                case.mark = None
                case.note("the unanswered request to mark the task did not take effect")
            else:
                case.note("the unanswered request to mark the task took effect")
        for clear in [clear for clear in case.clears if clear.unconfirmed]:
            rows = self.stack.query(
                "SELECT clear_number FROM dag_run WHERE dag_id = %s AND run_id = %s", (case.dag_id, case.run_id)
            )
            clear.unconfirmed = False
            if rows and rows[0]["clear_number"] > clear.clear_number:
                case.note("the unanswered Clear took effect")
            else:
                case.clears.remove(clear)
                case.note("the unanswered Clear did not take effect")

    def unpause(self) -> None:
        for dag_id in sorted({dag for dag, _, _ in SCENARIOS.values()} | {"soak_asset_events"}):
            self.stack.wait_for_dag(dag_id, timeout=240)
            self.stack.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
