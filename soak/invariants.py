"""The soak's invariants, checked afterwards from the emulator's run journal and Airflow's database.

Each violation names the DAG run, the task and the pipeline run, with the timeline of what
happened to them (the driver's actions, the task's tries, the runs of the pipeline, Airflow's and
people's, with their stops and ends, the run requests Opsera refused, and the chaos that struck
meanwhile), so it can be turned into a focused test.

A task's runs are the runs Airflow's token started on its pipeline while its DAG run held it
(people start runs of the same pipelines meanwhile: those are theirs). A Clear begins a new **try
chain**: the tries after the one it cleared, and the runs those tries started. A run belongs to the
chain of the last try that had started when the run did (a cleared try may still start a run in
the seconds before Airflow terminates it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_provider_opsera.triggers.pipeline_events import DELIVERY_SETTLES
from soak.seed import AIRFLOW_TOKEN, OUTSIDE_TOKEN, PEOPLE
from soak.workload import Case, Clear, Mark

#: two moments closer than this count as one (the journal, the database and the driver read clocks at different moments)
SLACK_SECONDS = 3.0
#: the run outcome -> the task state it implies
IMPLIED_STATE = {"success": "success", "failed": "failed", "stopped": "failed"}
IN_PROGRESS = ("running", "paused")
#: seconds after Airflow took a run's asset event in which a struck triggerer may make the watcher fire it again:
#: its cursor moves past the run at the first poll ``DELIVERY_SETTLES`` seconds after (the soak polls every 3 s)
WATCHER_REDELIVERS_WITHIN = DELIVERY_SETTLES + 10


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


def _airflow_stops(run: dict) -> list[dict]:
    return [stop for stop in run["stops"] if stop["by"] == AIRFLOW_TOKEN]


@dataclass
class Chain:
    """One try chain of a task: its tries and the runs they started, between two Clears."""

    number: int
    #: the Clear that began it (None: the DAG run's first chain) and the one that ended it (None: the last chain)
    cleared_by: Clear | None
    replaced_by: Clear | None
    tries: list[dict] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)
    mark: Mark | None = None

    @property
    def final_try(self) -> dict | None:
        return self.tries[-1] if self.tries else None

    @property
    def start(self) -> float | None:
        starts = [_wall(row["start_date"]) for row in self.tries if row["start_date"] is not None]
        return min(starts) if starts else None

    @property
    def end(self) -> float | None:
        return _wall(self.final_try["end_date"]) if self.final_try else None

    @property
    def ended(self) -> bool:
        """Whether the task ended in this chain (rather than being cleared while it waited)."""
        return self.replaced_by is None or self.replaced_by.of_an_ended_task

    @property
    def task_state(self) -> str | None:
        """The state the chain ended the task in: the state it was cleared in, or its final try's."""
        if self.replaced_by is not None:
            return self.replaced_by.kind
        return self.final_try["state"] if self.final_try else None

    def fresh_runs(self) -> list[dict]:
        """The runs that are not a retry's new run after a run of the chain failed."""
        return [
            run for earlier, run in zip([None, *self.runs], self.runs)
            if earlier is None or not _retry_after_failure(earlier, run)
        ]


def _retry_after_failure(earlier: dict, later: dict) -> bool:
    ended = earlier["ended_wall"]
    return earlier["status"] == "failed" and ended is not None and later["started_wall"] >= ended - SLACK_SECONDS


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
        for runs in self.runs_of.values():
            runs.sort(key=lambda run: run["run_count"])

    def held(self, case: Case, wall: float) -> bool:
        end = case.released_wall if case.released_wall is not None else float("inf")
        return case.allocated_wall <= wall <= end

    def runs(self, case: Case) -> list[dict]:
        """The runs the case's task started (for a sensor: the run started for it outside Airflow)."""
        token = OUTSIDE_TOKEN if case.action == "outside" else AIRFLOW_TOKEN
        return [
            run for run in self.runs_of.get(case.pipeline_id, [])
            if run["started_by_token"] == token and self.held(case, run["started_wall"])
        ]

    def people_runs(self, case: Case) -> list[dict]:
        return [
            run for run in self.runs_of.get(case.pipeline_id, [])
            if run["started_by_token"] in PEOPLE and self.held(case, run["started_wall"])
        ]

    def task_tries(self, case: Case) -> list[dict]:
        return self.tries.get((case.dag_id, case.run_id or ""), [])

    def final_try(self, case: Case) -> dict | None:
        rows = self.task_tries(case)
        return rows[-1] if rows else None

    def owner(self, pipeline_id: str, wall: float) -> Case | None:
        """The case that held the pipeline at ``wall``."""
        for case in self.cases:
            if case.pipeline_id == pipeline_id and self.held(case, wall):
                return case
        return None

    def chains(self, case: Case) -> list[Chain]:
        """The task's try chains, split by the Clears the driver made (in the order they were made)."""
        clears = sorted(case.clears, key=lambda clear: clear.wall)
        chains = [
            Chain(number, clears[number - 1] if number else None, clears[number] if number < len(clears) else None)
            for number in range(len(clears) + 1)
        ]

        def chain_of_try(row: dict) -> Chain:
            return chains[sum(clear.try_number < row["try_number"] for clear in clears)]

        for row in self.task_tries(case):
            chain_of_try(row).tries.append(row)
        started = sorted(
            (row for row in self.task_tries(case) if row["start_date"] is not None),
            key=lambda row: _wall(row["start_date"]),
        )
        for run in self.runs(case):
            before = [row for row in started if _wall(row["start_date"]) <= run["started_wall"]]
            (chain_of_try(before[-1]) if before else chains[0]).runs.append(run)
        if case.mark is not None:
            chains[sum(clear.wall <= case.mark.wall for clear in clears)].mark = case.mark
        return chains

    def timeline(self, case: Case) -> list[str]:
        entries: list[tuple[float, str]] = [(wall, f"driver: {text}") for wall, text in case.events]
        for row in self.task_tries(case):
            entries.append((_wall(row["start_date"]) or case.allocated_wall, f"task try {row['try_number']} started"))
            if row["end_date"] is not None:
                entries.append((_wall(row["end_date"]), f"task try {row['try_number']} ended {row['state']}"))
        end = case.released_wall or time.time()
        for run in self.runs_of.get(case.pipeline_id, []):
            if not (case.allocated_wall - 60 <= run["started_wall"] <= end):
                continue
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
        for refused in self.journal.get("refused_run_requests", []):
            if refused["pipeline_id"] == case.pipeline_id and case.allocated_wall <= refused["wall"] <= end:
                entries.append((refused["wall"], f"run request by token {refused['token']} refused"))
        for event in self.chaos:
            if case.allocated_wall - 30 <= event.wall <= end:
                entries.append((event.wall, f"chaos: {event.action} {event.component} {event.detail}".rstrip()))
        return [f"{_clock(wall)}  {text}" for wall, text in sorted(entries, key=lambda entry: entry[0])]


def case_rows(evidence: Evidence) -> list[str]:
    """One table row per case: its Clears, its runs and outcomes, people's runs meanwhile, its tries, its final state."""
    rows = []
    for case in evidence.cases:
        runs = ", ".join(f"{run['run_count']} ({run['status']})" for run in evidence.runs(case)) or "none"
        clears = ", ".join(f"{clear.kind} (try {clear.try_number})" for clear in case.clears) or ""
        final = evidence.final_try(case)
        tries = final["try_number"] if final else 0
        rows.append(
            f"| {case.number} | {case.scenario} | `{case.run_id}` | {clears} | {runs} | "
            f"{len(evidence.people_runs(case))} | {tries} | {final['state'] if final else case.dag_run_state} |"
        )
    return rows


def check(evidence: Evidence, watched: str) -> list[Violation]:
    """Every invariant but the asset events' and the logs'; ``watched`` runs from outside, no case holds it."""
    violations: list[Violation] = []
    for case in evidence.cases:
        found = _check_sensor(evidence, case) if case.action == "outside" else _check_run(evidence, case)
        for invariant, what in found:
            violations.append(Violation(invariant, case, what, evidence.timeline(case)))
    violations += _check_stops(evidence)
    for run in evidence.journal["runs"]:
        if run["started_by_token"] in PEOPLE:
            continue  # people run the shared pipelines whenever they like
        held = run["pipeline_id"] == watched or evidence.owner(run["pipeline_id"], run["started_wall"]) is not None
        if not held:
            violations.append(
                Violation("no run outside a task", None, f"run {run['run_count']} of {run['pipeline_id']} "
                          f"(token {run['started_by_token']}) started while no DAG run held the pipeline")
            )
    return violations


def _check_stops(evidence: Evidence) -> list[Violation]:
    """Every stop Airflow sent hit a run a task of its own started, while that run was in progress."""
    violations = []
    for run in evidence.journal["runs"]:
        for stop in _airflow_stops(run):
            case = evidence.owner(run["pipeline_id"], stop["wall"])
            timeline = evidence.timeline(case) if case else []
            owner = evidence.owner(run["pipeline_id"], run["started_wall"])
            if run["started_by_token"] != AIRFLOW_TOKEN or owner is None or owner.action == "outside":
                violations.append(
                    Violation("no run stopped that no task owned", case,
                              f"Airflow's stop at {_clock(stop['wall'])} hit run {run['run_count']} of "
                              f"{run['pipeline_id']}, which token {run['started_by_token']} started", timeline)
                )
            ended = run["ended_wall"]
            if stop["run_status"] not in IN_PROGRESS and (ended is None or stop["wall"] - ended > SLACK_SECONDS):
                violations.append(
                    Violation("a stop only while its run is the latest and in progress", case,
                              f"Airflow's stop at {_clock(stop['wall'])} came when the pipeline's latest run, "
                              f"{run['run_count']}, had ended {stop['run_status']} at {_clock(ended)}", timeline)
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
    chains = evidence.chains(case)
    for chain in chains:
        found += _one_run_per_chain(chain)
        if chain.cleared_by is not None:
            earlier = chains[chain.number - 1]
            found += _after_a_clear(chain, earlier.runs[-1] if earlier.runs else None, evidence.chaos)
        if chain.ended:
            found += _outcome_follows_the_run(case, chain)
            found += _left_running(chain)
        found += _stops_with_a_reason(case, chain)
    for run in evidence.runs(case):
        for reset in run["resets"]:
            found.append(("no healthy run stopped", f"run {run['run_count']} was reset by {reset['by']}"))
    return found


def _chain_words(chain: Chain) -> str:
    if chain.cleared_by is None:
        return "the task's first try chain"
    return f"the try chain after the Clear at {_clock(chain.cleared_by.wall)}"


def _one_run_per_chain(chain: Chain) -> list[tuple[str, str]]:
    """A later run of a chain only follows one of its runs that failed (a retry starts anew)."""
    found = []
    for earlier, later in zip(chain.runs, chain.runs[1:]):
        if not _retry_after_failure(earlier, later):
            found.append(
                ("one run per try chain", f"run {later['run_count']} started after run {earlier['run_count']} "
                 f"({earlier['status']}) in {_chain_words(chain)}: it started {len(chain.runs)} runs")
            )
    return found


def _after_a_clear(chain: Chain, old: dict | None, chaos: list[Any]) -> list[tuple[str, str]]:
    """A Clear deploys again: one new run. A Clear while the run goes on (the task waited on it, or a person who
    marked the task success left it to finish) also stops that run."""
    clear = chain.cleared_by
    assert clear is not None
    what = f"the Clear of the {clear.kind} task at {_clock(clear.wall)}"
    found = []
    fresh = chain.fresh_runs()
    if len(fresh) != 1:
        invariant = (
            "every Clear of an ended task yields one new run" if clear.of_an_ended_task
            else "a Clear while the run goes on replaces it"
        )
        numbers = ", ".join(str(run["run_count"]) for run in fresh)
        found.append((invariant, f"{what} started {len(fresh)} new runs{f' ({numbers})' if fresh else ''}"))
    if old is not None and _going_when_a_try_could_stop_it(chain, old, chaos) and not _stopped_after_the_clear(
        chain, old
    ):
        found.append(
            ("a Clear while the run goes on replaces it", f"run {old['run_count']} went on after {what}, unstopped "
             f"(it ended {old['status']} at {_clock(old['ended_wall'])})")
        )
    return found


def _going_when_a_try_could_stop_it(chain: Chain, old: dict, chaos: list[Any]) -> bool:
    """Whether the earlier chain's run still went on after the Clear when a try of the new chain began, which reads
    it and stops it (a run that ended by then needs no stop).

    A try struck by the chaos in the seconds it takes to get there (killed with the scheduler, frozen, its API
    server down) never did: the next try of the chain, once Airflow retries it, stops the run if it still goes on.
    """
    clear = chain.cleared_by
    assert clear is not None
    for row in sorted(chain.tries, key=lambda row: _wall(row["start_date"]) or float("inf")):
        began = max(clear.wall, _wall(row["start_date"]) or clear.wall)
        if not (old["ended_wall"] is None or old["ended_wall"] > began + SLACK_SECONDS):
            return False
        if not any(began - SLACK_SECONDS <= event.wall <= began + SLACK_SECONDS for event in chaos):
            return True
    return False


def _stopped_after_the_clear(chain: Chain, old: dict) -> bool:
    clear = chain.cleared_by
    assert clear is not None
    return any(stop["wall"] >= clear.wall - SLACK_SECONDS for stop in _airflow_stops(old))


def _outcome_follows_the_run(case: Case, chain: Chain) -> list[tuple[str, str]]:
    """The task ends as its own run did: marked by a person, as marked; timed out or stopped, failed."""
    found: list[tuple[str, str]] = []
    state = chain.task_state
    last = chain.runs[-1] if chain.runs else None
    where = "" if chain.replaced_by is None else f" when cleared at {_clock(chain.replaced_by.wall)}"
    if chain.mark is not None:
        if state != chain.mark.state:
            found.append(("task state follows the run", f"the task was marked {chain.mark.state}, it is {state}{where}"))
        return found
    if last is None:
        if state != "failed":
            found.append(("task state follows the run", f"no run started, yet the task is {state}{where}"))
        return found
    implied = IMPLIED_STATE.get(last["status"])
    if case.action == "timeout" and _airflow_stops(last):
        implied = "failed"
    if implied is not None and state != implied:
        found.append(
            ("task state follows the run", f"run {last['run_count']} ended {last['status']}, the task is {state}{where}")
        )
    if last["status"] == "stopped" and last["ended_wall"] is not None:
        # Airflow retries a try that was killed before it could fail the task (with the scheduler, say): that
        # retry must end the task, failed, starting nothing. A second try after the stop means it did not.
        after_stop = [
            row for row in chain.tries
            if (_wall(row["start_date"]) or 0) > last["ended_wall"] + SLACK_SECONDS
        ]
        if len(after_stop) > 1:
            numbers = ", ".join(str(row["try_number"]) for row in after_stop)
            found.append(
                ("task state follows the run", f"tries {numbers} started after run {last['run_count']} was "
                 "stopped: a stopped run fails the task without a retry")
            )
    return found


def _left_running(chain: Chain) -> list[tuple[str, str]]:
    """No run goes on after its task ended unless Airflow asked it to stop, or a person marked the task success."""
    last = chain.runs[-1] if chain.runs else None
    if last is None:
        return []
    if last["ended_wall"] is None:
        return [("no run left running", f"run {last['run_count']} is still {last['status']} at the end")]
    end = chain.end
    marked_success = chain.mark is not None and chain.mark.state == "success"
    if end is not None and last["ended_wall"] > end + SLACK_SECONDS and not last["stops"] and not marked_success:
        return [("no run left running", f"run {last['run_count']} went on after the task ended, unstopped")]
    return []


def _stops_with_a_reason(case: Case, chain: Chain) -> list[tuple[str, str]]:
    """Airflow stops a run of its own only when the task times out, is marked failed, or its last try fails
    while the run goes on, or when a Clear comes while the run goes on; a task marked success leaves its run."""
    found = []
    final = chain.final_try
    final_start = _wall(final["start_date"]) if final else None
    end = chain.end
    replaced = chain.replaced_by
    for run in chain.runs:
        for stop in _airflow_stops(run):
            wall = stop["wall"]
            if replaced is not None and wall >= replaced.wall - SLACK_SECONDS:
                continue  # the Clear replaces the run (checked with the chain after it)
            if chain.mark is not None and chain.mark.state == "success" and wall >= chain.mark.wall - SLACK_SECONDS:
                found.append(
                    ("no healthy run stopped", f"the task was marked success at {_clock(chain.mark.wall)}, so its "
                     f"run is left to finish; Airflow stopped run {run['run_count']} at {_clock(wall)}")
                )
                continue
            reasons = (
                case.action == "timeout",
                chain.mark is not None and chain.mark.state == "failed" and wall >= chain.mark.wall - SLACK_SECONDS,
                # the chain's last try failed while its run went on: nothing would follow the run, so it stops it
                chain.task_state == "failed" and final_start is not None and end is not None
                and final_start - SLACK_SECONDS <= wall <= end + SLACK_SECONDS,
            )
            if not any(reasons):
                found.append(
                    ("no healthy run stopped", f"Airflow stopped run {run['run_count']} ({stop['run_status']}) at "
                     f"{_clock(wall)}")
                )
    return found


def _check_sensor(evidence: Evidence, case: Case) -> list[tuple[str, str]]:
    found = _unfinished(case)
    if found:
        return found
    final = evidence.final_try(case)
    task_state = final["state"] if final else None
    for run in evidence.runs_of.get(case.pipeline_id, []):
        if run["started_by_token"] == AIRFLOW_TOKEN and evidence.held(case, run["started_wall"]):
            found.append(("one run per try chain", f"the sensor's task started run {run['run_count']}"))
    for run in evidence.runs(case):
        for reset in run["resets"]:
            if reset["by"] == AIRFLOW_TOKEN:
                found.append(("no healthy run stopped", f"Airflow reset run {run['run_count']} a sensor watched"))
    watched = [run for run in evidence.runs(case) if run["run_count"] == case.external_run_count]
    if watched:
        implied = IMPLIED_STATE.get(watched[0]["status"])
        if task_state != implied:
            found.append(
                ("task state follows the run", f"run {case.external_run_count} ended {watched[0]['status']}, "
                 f"the sensor is {task_state}")
            )
    return found


def asset_events(runs: list[dict], events: list[dict], since: float | None, chaos: list[Any]) -> list[Violation]:
    """Each run of the watched pipeline that ended (started once its watcher ran) has its event, at least once.

    Delivery is at least once: the watcher's cursor moves past a run ``DELIVERY_SETTLES`` seconds after
    Airflow took its event, so a triggerer killed or frozen (its watcher taken over) before that may
    fire the run's event again. A second event is a violation when no triggerer was struck meanwhile.
    """
    if since is None:
        return [Violation("every finished run has its asset event", None, "the asset watcher never ran")]
    reported: dict[int, list[float]] = {}
    for event in events:
        reported.setdefault(event["run_count"], []).append(event["received_wall"])
    strikes = [event.wall for event in chaos if event.component.startswith("triggerer")]
    violations = []
    known = {run["run_count"] for run in runs}
    for run in runs:
        if run["active"] or run["started_wall"] < since:
            continue
        received = sorted(reported.get(run["run_count"], []))
        if not received:
            violations.append(
                Violation("every finished run has its asset event", None,
                          f"run {run['run_count']} of the watched pipeline ended {run['status']}: no event")
            )
        elif len(received) > 1 and not any(
            received[0] - SLACK_SECONDS <= wall <= received[0] + WATCHER_REDELIVERS_WITHIN for wall in strikes
        ):
            violations.append(
                Violation("every finished run has its asset event", None,
                          f"run {run['run_count']} of the watched pipeline ended {run['status']}: {len(received)} "
                          f"events, the first at {_clock(received[0])}, and no triggerer was struck within "
                          f"{WATCHER_REDELIVERS_WITHIN:g} s")
            )
    for run_count in sorted(set(reported) - known):
        violations.append(
            Violation("every finished run has its asset event", None, f"an event for run {run_count}, which never ran")
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
