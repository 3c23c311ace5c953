"""One soak: the stack, the soak's seed and faults, the workload and the chaos for ``minutes``, a drain,
then the invariants and the report."""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections import Counter
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path
from typing import Any

import requests

from soak.chaos import Chaos
from soak.invariants import Evidence, asset_events, case_rows, check, tokens_in_logs
from soak.report import write_report
from soak.seed import AIRFLOW_TOKEN, OUTSIDE_TOKEN, PEOPLE, soak_seed, watched_pipeline
from soak.workload import Workload
from tests.e2e.stack import TIME_SCALE, TRIGGERERS, Stack

SOAK_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = SOAK_DIR / "out"

#: a steady mix the provider is meant to ride out; the first rule seeds the emulator's draws
FAULTS = (
    {"route": "*", "kind": "latency", "seconds": 0.3, "rate": 0.08},
    {"route": "*", "kind": "status", "status": 503, "rate": 0.03},
    {"route": "*", "kind": "status", "status": 500, "rate": 0.01},
    {"route": "*", "kind": "retry_after", "retry_after": 1, "rate": 0.02},
    {"route": "*", "kind": "drop", "rate": 0.01},
    {"route": "POST /api/v1/pipeline/run", "kind": "drop", "rate": 0.15},
)
#: seconds without a heartbeat after which Airflow calls a scheduler or triggerer unhealthy, in the soak
HEALTH_THRESHOLD = 10
FREEZE_SECONDS = HEALTH_THRESHOLD + 4
#: seconds without a heartbeat after which the scheduler fails a task's try and retries it (Airflow's default:
#: 300). A kill of the scheduler takes the LocalExecutor's workers with it; their tries are found only then.
TASK_HEARTBEAT_TIMEOUT = 60
#: how long in-flight DAG runs get to finish once the workload and the chaos stopped: an orphaned try found
#: after the heartbeat timeout, then the DAGs' four retries (5 to 40 s apart) of a short run each
DRAIN_SECONDS = 600
SAMPLE_SECONDS = 5
#: the DAG the asset watcher's events schedule (soak/dags/soak_dags.py)
ASSET_DAG = "soak_asset_events"


def _fault_mix() -> str:
    parts = []
    for rule in FAULTS:
        what = {"status": f"HTTP {rule.get('status')}", "retry_after": "429 + Retry-After 1 s",
                "latency": f"+{rule.get('seconds')} s latency", "drop": "dropped answer"}[rule["kind"]]
        where = "" if rule["route"] == "*" else f" on {rule['route']}"
        parts.append(f"{what}{where} {rule['rate']:.0%}")
    return ", ".join(parts)


def run_soak(minutes: float, seed: int, out: Path = DEFAULT_OUT, concurrency: int = 5, pace: float = 5.0,
             chaos_interval: float = 20.0, log=print) -> dict[str, Any]:
    """The soak's figures (``counts``, with ``invariant violations``); the report is in ``out``."""
    extra_env = {
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": str(HEALTH_THRESHOLD),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(TASK_HEARTBEAT_TIMEOUT),
        "AIRFLOW__CORE__PARALLELISM": str(concurrency + 3),
        # A triggerer restarted by the chaos builds its internal API on its first task-state read (40 s seen
        # on this machine under load): on_kill needs that read to stop the run of a task marked failed.
        "AIRFLOW__TRIGGERER__ON_KILL_TIMEOUT": "120",
        "OPSERA_SOAK_WATCHED_PIPELINE": watched_pipeline(),
    }
    log(f"soak: starting the stack (seed {seed}, {minutes:g} minutes)")
    stack = Stack.start(extra_env=extra_env)
    chaos = Chaos(stack, random.Random(seed + 1), chaos_interval, FREEZE_SECONDS)
    try:
        return _soak(stack, chaos, minutes, seed, out, concurrency, pace, log)
    finally:
        chaos.stop()
        stack.stop()
        chaos.close()


def _soak(stack: Stack, chaos: Chaos, minutes, seed, out, concurrency, pace, log) -> dict[str, Any]:
    emulator = stack.emulator_url
    requests.post(f"{emulator}/_emulator/seed", json=soak_seed(TIME_SCALE), timeout=30).raise_for_status()
    for number, rule in enumerate(FAULTS):
        body = {**rule, "seed": seed} if number == 0 else rule
        requests.post(f"{emulator}/_emulator/faults", json=body, timeout=10).raise_for_status()
    link = stack.dags_folder / "soak_dags.py"
    if not link.exists():
        link.symlink_to(SOAK_DIR / "dags" / "soak_dags.py")
    workload = Workload(stack, random.Random(seed), concurrency, pace)
    workload.people.mint_tokens()
    workload.unpause()
    samples: list[dict] = []
    started = time.time()
    log(f"soak: workload and chaos for {minutes:g} minutes")
    chaos.start()
    ends = started + minutes * 60
    next_sample = 0.0
    while time.time() < ends:
        workload.step(starting=True)
        next_sample = _sample(emulator, samples, next_sample)
        time.sleep(1)  # the driver's pace: one round a second
    chaos.stop()
    log(f"soak: chaos over ({len(chaos.events)} strikes); draining {len(workload.active)} DAG runs")
    drain_ends = time.time() + DRAIN_SECONDS
    while (workload.active or not _events_caught_up(stack, emulator, workload)) and time.time() < drain_ends:
        workload.step(starting=False)
        next_sample = _sample(emulator, samples, next_sample)
        time.sleep(1)
    journal = requests.get(f"{emulator}/_emulator/runs", timeout=30).json()
    tries = _tries(stack)
    evidence = Evidence(workload.cases, journal, tries, chaos.events)
    violations = check(evidence, workload.watched)
    events = _asset_events(stack)
    watched_runs = [run for run in journal["runs"] if run["pipeline_id"] == workload.watched]
    violations += asset_events(watched_runs, events, workload.watcher_live_wall, chaos.events)
    roots = [stack.home] + ([stack.postgres.log_path.parent / "postgres.log"] if stack.postgres else [])
    violations += tokens_in_logs([r for r in roots if r.is_dir()], stack.emulator_tokens())
    summary = _summary(evidence, workload, journal, tries, events, chaos, minutes, seed, started, violations)
    actions = [(clear.wall, f"Clear of a {clear.kind} task") for case in workload.cases for clear in case.clears]
    actions += [(case.mark.wall, f"marked {case.mark.state}") for case in workload.cases if case.mark is not None]
    path = write_report(out, summary, violations, samples, chaos.events, actions, case_rows(evidence))
    _keep_evidence(out, workload, journal, tries, events, chaos)
    _keep_logs(stack, out)
    log(f"soak: {len(violations)} invariant violations; report in {path}")
    return summary


def _sample(emulator: str, samples: list[dict], next_sample: float) -> float:
    if time.time() < next_sample:
        return next_sample
    try:
        journal = requests.get(f"{emulator}/_emulator/runs", timeout=10).json()
    except requests.RequestException:
        return next_sample
    samples.append(
        {
            "wall": time.time(),
            "active": sum(run["active"] for run in journal["runs"]),
            "started": len(journal["runs"]),
            "people": sum(run["started_by_token"] in PEOPLE for run in journal["runs"]),
            "faults": sum(journal["faults_injected"].values()),
        }
    )
    return time.time() + SAMPLE_SECONDS


def _keep_evidence(out: Path, workload: Workload, journal, tries, events, chaos: Chaos) -> None:
    """Everything the checks read, as JSON next to the report, to look into a violation afterwards."""
    evidence = {
        "cases": [asdict(case) for case in workload.cases],
        "people_requests": dict(workload.people.requests),
        "journal": journal,
        "tries": tries,
        "asset_events": events,
        "chaos": [asdict(event) for event in chaos.events],
        "chaos_errors": chaos.errors,
    }
    (out / "evidence.json").write_text(json.dumps(evidence, indent=1, default=str))


def _keep_logs(stack: Stack, out: Path) -> None:
    """The components' logs and the soak tasks' logs: the home goes when the stack stops."""
    target = out / "logs"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for process in stack.processes.values():
        if process.log_path.is_file():
            shutil.copy(process.log_path, target / process.log_path.name)
    for task_logs in (stack.home / "logs").glob("dag_id=soak_*"):
        shutil.copytree(task_logs, target / task_logs.name)


def _asset_events(stack: Stack) -> list[dict]:
    """The payloads of the watcher's asset events, from the metadata database, each with when Airflow took it
    (``received_wall``)."""
    rows = stack.query(
        "SELECT ae.extra, ae.timestamp FROM asset_event ae JOIN asset a ON a.id = ae.asset_id "
        "WHERE a.name = 'soak_watched_runs'"
    )
    payloads = []
    for row in rows:
        extra = json.loads(row["extra"]) if isinstance(row["extra"], str) else row["extra"] or {}
        payloads.append({**extra.get("payload", extra), "received_wall": row["timestamp"].timestamp()})
    return payloads


def _events_caught_up(stack: Stack, emulator: str, workload: Workload) -> bool:
    """Whether every watched run that ended has its asset event by now."""
    try:
        journal = requests.get(f"{emulator}/_emulator/runs", timeout=10).json()
        reported = {event.get("run_count") for event in _asset_events(stack)}
    except Exception:
        return False
    since = workload.watcher_live_wall or float("inf")
    return all(
        run["run_count"] in reported
        for run in journal["runs"]
        if run["pipeline_id"] == workload.watched and not run["active"] and run["started_wall"] >= since
    )


def _tries(stack: Stack) -> list[dict]:
    """Every try of every soak task: the earlier ones from the history table, the last from task_instance."""
    columns = "dag_id, run_id, task_id, try_number, state, start_date, end_date, hostname"
    rows = stack.query(
        f"SELECT {columns} FROM task_instance_history WHERE dag_id LIKE 'soak_%%' "
        f"UNION ALL SELECT {columns} FROM task_instance WHERE dag_id LIKE 'soak_%%'"
    )
    latest: dict[tuple, dict] = {}
    for row in rows:  # task_instance comes last and wins for a try in both
        latest[(row["dag_id"], row["run_id"], row["try_number"])] = row
    return list(latest.values())


def _summary(evidence, workload, journal, tries, events, chaos, minutes, seed, started, violations) -> dict[str, Any]:
    runs = journal["runs"]
    by_outcome = Counter(run["status"] for run in runs)
    finals: dict[tuple, dict] = {}
    asset_tries = [row for row in tries if row["dag_id"] == ASSET_DAG]
    tries = [row for row in tries if row["dag_id"] != ASSET_DAG]  # the cases' tasks only
    for row in tries:
        key = (row["dag_id"], row["run_id"])
        if key not in finals or row["try_number"] > finals[key]["try_number"]:
            finals[key] = row
    tasks_by_state = Counter(row["state"] for row in finals.values())
    refused = Counter("Airflow" if r["token"] == AIRFLOW_TOKEN else "people" if r["token"] in PEOPLE else "others"
                      for r in journal["refused_run_requests"])
    people_runs = [run for run in runs if run["started_by_token"] in PEOPLE]
    clears = Counter(clear.kind for case in workload.cases for clear in case.clears)
    marks = Counter(case.mark.state for case in workload.cases if case.mark is not None)
    counts: dict[str, Any] = {
        "DAG runs (cases)": len(workload.cases),
        **{f"cases: {name}": n for name, n in sorted(Counter(c.scenario for c in workload.cases).items())},
        "pipeline runs started by Airflow": sum(run["started_by_token"] == AIRFLOW_TOKEN for run in runs),
        "pipeline runs started by people": len(people_runs),
        "pipeline runs started by people while a DAG run held the pipeline": sum(
            evidence.owner(run["pipeline_id"], run["started_wall"]) is not None for run in people_runs
        ),
        "pipeline runs started outside Airflow for the sensors and the asset watcher": sum(
            run["started_by_token"] == OUTSIDE_TOKEN for run in runs
        ),
        **{f"pipeline runs ended {status}": n for status, n in sorted(by_outcome.items())},
        "run requests by people": sum(workload.people.requests.values()),
        "run requests refused by Opsera (a run in progress): Airflow's": refused["Airflow"],
        "run requests refused by Opsera (a run in progress): people's": refused["people"],
        "tasks that failed before any run started": sum(
            1 for case in workload.cases if case.action != "outside" and not evidence.runs(case)
            and (evidence.final_try(case) or {}).get("state") == "failed"
        ),
        "stops requested by Airflow": sum(
            1 for run in runs for stop in run["stops"] if stop["by"] == AIRFLOW_TOKEN
        ),
        "task tries": len(tries),
        **{f"tasks ended {state}": n for state, n in sorted(tasks_by_state.items(), key=lambda i: str(i[0]))},
        **{f"tasks marked {state} by a person": marks[state] for state in ("failed", "success")},
        **{f"Clears of a {kind} task": clears[kind] for kind in ("running", "deferred", "success", "failed")},
        **{f"Clears of a {kind} task": n for kind, n in sorted(clears.items())
           if kind not in ("running", "deferred", "success", "failed")},
        "approvals given": sum(len(run["approvals"]) for run in runs),
        "runs of the watched pipeline (asset watcher)": sum(run["pipeline_id"] == workload.watched for run in runs),
        "asset events": len(events),
        "DAG runs scheduled by asset events": len({row["run_id"] for row in asset_tries}),
        "faults injected": sum(journal["faults_injected"].values()),
        **{f"faults: {kind}": n for kind, n in sorted(journal["faults_injected"].items())},
        **{
            f"chaos: {action} {component}": n
            for (component, action), n in sorted(Counter((e.component, e.action) for e in chaos.events).items())
        },
        "invariant violations": len(violations),
    }
    notes = [f"chaos could not strike: {error}" for error in chaos.errors]
    return {
        "started_wall": started,
        "minutes": minutes,
        "seed": seed,
        "airflow_version": version("apache-airflow"),
        "topology": f"PostgreSQL, LocalExecutor, scheduler, dag-processor, api-server, {len(TRIGGERERS)} triggerers",
        "time_scale": TIME_SCALE,
        "fault_mix": _fault_mix(),
        "counts": counts,
        "notes": notes,
    }


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m soak", description="The chaos soak (see SOAK.md).")
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "30")))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED", "1")))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    summary = run_soak(args.minutes, args.seed, args.out)
    return 1 if summary["counts"]["invariant violations"] else 0
