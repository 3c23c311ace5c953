"""The waits in a real ``airflow triggerer``: CPU and memory per wait beyond Airflow's own, and resume latency.

PostgreSQL and an Airflow metadata database as the end-to-end tier makes them (``tests/e2e``), then
for each case: N deferred task instances of one DAG run, each with its ``trigger`` row made by
Airflow's own ``Trigger.from_object`` (classpath and encrypted kwargs), written over one poll
interval as tasks defer over time, and ONE ``airflow triggerer --capacity`` N or more that runs them
against ``bench/server.py``. Once every wait has polled once, the triggerer's process group (its
supervisor and its trigger runner) is sampled over a window of whole poll intervals: CPU time and
RSS. The same triggerer holding N sleeping ``DateTimeTrigger`` s (a day ahead) is Airflow's own cost,
taken off. Then every run turns successful, and each task instance's ``updated_at`` (set when the
triggerer hands the event over and the task leaves ``deferred``) gives the flip-to-resumed latency.

Kinds: ``sleep``, ``opsera`` (``OpseraPipelineRunTrigger``), ``dbt`` (``DbtCloudRunJobTrigger``).
An Opsera case may run with one optimisation off (:data:`SWITCHES`): the triggerer is then started
by a launcher that sets the module constant before Airflow's CLI runs; the
trigger runner is a fork of that process and inherits it.

Run as a child for the seeding: ``python -m bench.real_triggerer seed KIND N POLL_INTERVAL SPREAD``.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, cpu_seconds, out_dir, say

DAG_ID = "bench_real_triggerer"
RUN_ID = "bench_waits"
TASK_ID = "wait"
#: the sleeping trigger's moment, this far ahead: it never fires during a case
SLEEP_AHEAD_SECONDS = 2 * 86400
KINDS = ("sleep", "opsera", "dbt")
#: an optimisation of the provider, turned off in the triggerer before Airflow's CLI runs
SWITCHES = {
    "pool": (
        "from airflow_provider_opsera.hooks import opsera_async\n"
        "opsera_async.POOL_SIZE = None\n"
        "value = lambda: opsera_async.POOL_SIZE\n"
    ),
    "caches": (
        "from airflow_provider_opsera.hooks import opsera_async\n"
        "opsera_async.PER_LOOP_CACHES = False\n"
        "value = lambda: opsera_async.PER_LOOP_CACHES\n"
    ),
}
#: every optimisation measured, those since deleted included (their results are still reported)
SWITCH_NAMES = {
    "grid": "wake-up grid (`waiting/wakeups.py`, `GRID_STEP`)",
    "pool": "pool cap (`hooks/opsera_async.py`, `POOL_SIZE`)",
    "first_attempt": "first attempt outside tenacity (`hooks/retry.py`, `FIRST_ATTEMPT_OUTSIDE_TENACITY`)",
    "caches": "per-loop caches (`hooks/opsera_async.py`, `PER_LOOP_CACHES`)",
}
DAG_FILE = f'''"""The DAG whose deferred task instances the real-triggerer benchmark writes (nothing runs it)."""

from datetime import datetime

from airflow.sdk import DAG, task

with DAG("{DAG_ID}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):

    @task
    def runs():
        return []

    @task
    def {TASK_ID}(run):
        return run

    {TASK_ID}.expand(run=runs())
'''


# ----- the arithmetic (pure: unit-tested)


def per_wait_cpu_ms(cpu_seconds_: float, seconds: float, waits: int, interval: float) -> float:
    """CPU milliseconds per wait per poll interval, from ``cpu_seconds_`` spent over ``seconds``."""
    return cpu_seconds_ / seconds * interval * 1000 / waits


def beyond(value: float, baseline: float) -> float:
    """What a figure adds to the sleeping triggerer's (both per wait)."""
    return value - baseline


def polls_achieved(polls: int, waits: int, seconds: float, interval: float) -> float:
    """Polls made over polls intended (one per wait per interval) in ``seconds``."""
    return polls / (waits * seconds / interval)


def figures(case: dict, sleeping: dict) -> dict[str, float]:
    """A case's cost per wait beyond the sleeping triggerer's with as many waits: CPU per poll and per minute, memory."""
    waits, interval = case["n"], case["poll_interval"]
    cpu = per_wait_cpu_ms(
        beyond(case["cpu_seconds_per_second"], sleeping["cpu_seconds_per_second"]), 1.0, waits, interval
    )
    return {
        "cpu_ms_per_poll": cpu,
        "cpu_ms_per_minute": cpu * 60 / interval,
        "kib_per_wait": beyond(case["rss_bytes"], sleeping["rss_bytes"]) / waits / 1024,
    }


def cycle_figures(case: dict, sleeping: dict) -> dict[str, list[float]]:
    """:func:`figures` for each poll-interval cycle of the window (CPU) and each RSS sample (memory): the spread.

    Also the CPU per poll made (``cpu_ms_per_poll_made``): when the triggerer falls behind, the CPU per wait
    per interval is that of a busy process whatever it does, and only the CPU per poll it managed compares.
    The window's polls are taken as spread evenly over its cycles.
    """
    waits, interval = case["n"], case["poll_interval"]
    cycles = case.get("cpu_per_cycle_s") or [case["cpu_seconds_per_second"]]
    polls = case.get("polls") or 0
    return {
        "cpu_ms_per_poll": [
            per_wait_cpu_ms(beyond(cpu, sleeping["cpu_seconds_per_second"]), 1.0, waits, interval) for cpu in cycles
        ],
        "cpu_ms_per_poll_made": [
            beyond(cpu, sleeping["cpu_seconds_per_second"]) * case["window_seconds"] * 1000 / polls
            for cpu in cycles
            if polls
        ],
        "kib_per_wait": [
            beyond(rss, sleeping["rss_bytes"]) / waits / 1024 for rss in case.get("rss_samples") or [case["rss_bytes"]]
        ],
    }


#: a case that made fewer of its polls than this fell behind: its memory holds the requests piled up
KEPT_UP = 0.9


def verdict(on: list[float], off: list[float], margin: float = 0.10) -> str:
    """KEPT when turning the optimisation off makes a cost higher beyond noise, else DELETED.

    Beyond noise: every figure with it off is above every figure with it on (the ranges of the
    cycles of every repeat do not overlap), and the medians differ by more than ``margin`` of the
    figure with it on.
    """
    if not on or not off:
        return "not measured"
    separate = min(off) > max(on)
    large = statistics.median(off) - statistics.median(on) > margin * abs(statistics.median(on))
    return "KEPT" if separate and large else "DELETED"


# ----- processes


def group_pids(leader: int) -> list[int]:
    """The processes of ``leader``'s process group (the triggerer's supervisor and its trigger runner)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == leader:  # the process group id
            pids.append(int(entry))
    return pids


def group_sample(leader: int) -> dict:
    cpu = rss = 0.0
    for pid in group_pids(leader):
        try:
            cpu += cpu_seconds(pid)
            with open(f"/proc/{pid}/status") as status:
                rss += next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS"))
        except (OSError, StopIteration):
            continue
    return {"t": time.time(), "cpu": cpu, "rss": rss}


def launcher(switch: str | None, capacity: int) -> list[str]:
    """``python -c``: turn ``switch`` off, note its value in each forked child, then run ``airflow triggerer``."""
    code = SWITCHES[switch] if switch else "value = lambda: None\n"
    code += (
        "import os, sys\n"
        f"os.register_at_fork(after_in_child=lambda: print('switch {switch} in', os.getpid(), repr(value()),"
        " file=sys.stderr, flush=True))\n"
        f"sys.argv = ['airflow', 'triggerer', '--capacity', '{capacity}']\n"
        "from airflow.__main__ import main\n"
        "main()\n"
    )
    return [sys.executable, "-c", code]


class Stage:
    """PostgreSQL with a migrated metadata database, the DAG, the poll target and the environment."""

    def __init__(self) -> None:
        from cryptography.fernet import Fernet

        from bench.server import BenchServer
        from bench.tls import make_certificates
        from bench.triggerer import environment
        from tests.e2e.postgres import Postgres
        from tests.e2e.stack import Process, free_port, spawn

        self.home = Path(tempfile.mkdtemp(prefix="opsera-bench-airflow-"))
        (self.home / "dags").mkdir()
        (self.home / "dags" / f"{DAG_ID}.py").write_text(DAG_FILE)
        self.postgres = Postgres(free_port(), spawn)
        self.processes = [Process("postgres", self.postgres.start(), self.postgres.log_path, signal.SIGINT)]
        paths = make_certificates(out_dir() / "tls")
        self.server = BenchServer(paths["cert"], paths["key"]).start()
        env = {k: v for k, v in environment(self.server, paths["ca"]).items() if not k.startswith("AIRFLOW__")}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.home / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url(),
                "AIRFLOW__API__SECRET_KEY": os.urandom(16).hex(),
                "AIRFLOW__API_AUTH__JWT_SECRET": os.urandom(32).hex(),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.env = env
        self._process, self._spawn = Process, spawn
        self.airflow("db", "migrate", timeout=600)
        self.airflow("dags", "reserialize", timeout=300)

    def airflow(self, *args: str, timeout: float) -> None:
        log = self.home / f"{args[0]}-{args[1]}.log"
        with open(log, "w") as out:
            done = subprocess.run(
                [sys.executable, "-m", "airflow", *args], env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        if done.returncode:
            raise RuntimeError(f"airflow {' '.join(args)} exited {done.returncode}:\n{log.read_text()[-3000:]}")

    def reset(self) -> None:
        """No DAG run, task instance or trigger left from the case before."""
        self.postgres.query("TRUNCATE trigger, dag_run, task_instance CASCADE")

    def start_triggerer(self, switch: str | None, capacity: int, log_path: Path):
        with open(log_path, "w") as log:
            popen = self._spawn(launcher(switch, capacity), stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT)
        return self._process("triggerer", popen, log_path)

    def seed(self, kind: str, count: int, interval: float, spread: float, log_path: Path) -> subprocess.Popen:
        command = [sys.executable, "-m", "bench.real_triggerer", "seed", kind, str(count), str(interval), str(spread)]
        with open(log_path, "w") as log:
            return subprocess.Popen(command, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def deferred(self) -> int:
        rows = self.postgres.query(
            "SELECT count(*) AS n FROM task_instance WHERE dag_id = %s AND task_id = %s AND state = 'deferred'",
            (DAG_ID, TASK_ID),
        )
        return rows[0]["n"]

    def assigned(self) -> int:
        return self.postgres.query("SELECT count(*) AS n FROM trigger WHERE triggerer_id IS NOT NULL")[0]["n"]

    def resumed_at(self) -> list[float]:
        rows = self.postgres.query(
            "SELECT extract(epoch FROM updated_at) AS at FROM task_instance "
            "WHERE dag_id = %s AND task_id = %s AND state <> 'deferred'",
            (DAG_ID, TASK_ID),
        )
        return [float(row["at"]) for row in rows]

    def stop(self) -> None:
        from tests.e2e.stack import stop_all

        self.server.stop()
        stop_all(self.processes, grace=5)
        self.postgres.remove_files()
        shutil.rmtree(self.home, ignore_errors=True)


# ----- one case


def wait_until(predicate, timeout: float, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def run_case(stage: Stage, kind: str, count: int, interval: float, switch: str | None = None) -> dict:
    from tests.e2e.stack import stop_all

    name = f"{kind}-{switch or 'shipped'}-{count}-{interval:g}s"
    say(f"  {name} ...")
    load = os.getloadavg()
    stage.reset()
    stage.server.unflip()
    stage.server.forget_runs()
    side = "dbt" if kind == "dbt" else "opsera"
    triggerer = stage.start_triggerer(switch, count + 100, out_dir() / f"real-triggerer-{name}.log")
    try:
        started = time.time()
        spread = min(interval, 30.0)
        seeding = stage.seed(kind, count, interval, spread, out_dir() / f"real-triggerer-seed-{name}.log")
        if seeding.wait(120 + spread):
            raise RuntimeError(f"seeding exited {seeding.returncode}: see bench/out/real-triggerer-seed-{name}.log")
        warm_cap = 3 * interval + 60 + count / 50
        if kind == "sleep":
            wait_until(lambda: stage.assigned() >= count, warm_cap)
            settled = steady_rss(triggerer.popen.pid, warm_cap)
            polled = None
        else:
            # Twice: a wait's first poll is followed by its start-up work (the provider reads its console marker
            # through the triggerer's supervisor), and a window that overlaps that work measures it, not the polls.
            wait_until(lambda: stage.server.polled_runs(side) >= count, warm_cap)
            stage.server.forget_runs()
            wait_until(lambda: stage.server.polled_runs(side) >= count, warm_cap)
            polled = stage.server.polled_runs(side)
            settled = polled >= count
        warm_seconds = time.time() - started
        if not triggerer.alive():
            raise RuntimeError(f"the triggerer exited {triggerer.popen.returncode}: {triggerer.tail(30)}")
        cycles = 6 if kind == "sleep" else max(2, round(20 / interval))
        window = cycles * min(interval, 5.0) if kind == "sleep" else cycles * interval
        served = stage.server.served()[side]
        before = group_sample(triggerer.popen.pid)
        samples = [before]
        for _ in range(cycles):
            time.sleep(window / cycles)
            samples.append(group_sample(triggerer.popen.pid))
        after = samples[-1]
        polls = stage.server.served()[side] - served
        seconds = after["t"] - before["t"]
        result = {
            "kind": kind,
            "switch": switch,
            "n": count,
            "poll_interval": interval,
            "load_average": load,
            "warm_up_seconds": warm_seconds,
            "warmed_up": bool(settled),
            "polled_once": polled,
            "window_seconds": seconds,
            "cpu_seconds": after["cpu"] - before["cpu"],
            "cpu_seconds_per_second": (after["cpu"] - before["cpu"]) / seconds,
            "cpu_per_cycle_s": [(b["cpu"] - a["cpu"]) / (b["t"] - a["t"]) for a, b in zip(samples, samples[1:])],
            "rss_bytes": statistics.median(s["rss"] for s in samples),
            "rss_samples": [s["rss"] for s in samples],
            "processes": len(group_pids(triggerer.popen.pid)),
            "polls": polls,
            "polls_achieved": polls_achieved(polls, count, seconds, interval) if kind != "sleep" else None,
        }
        if kind != "sleep":
            result["resume"] = resume_latency(stage, count, interval)
        say(
            f"    warm-up {warm_seconds:.0f} s, CPU {result['cpu_seconds_per_second']:.3f} s/s, "
            f"RSS {result['rss_bytes'] / 2**20:.0f} MiB, polls achieved "
            f"{result['polls_achieved'] if result['polls_achieved'] is None else round(result['polls_achieved'], 2)}, "
            f"resume {result.get('resume', {}).get('median_s', '-')}/{result.get('resume', {}).get('max_s', '-')} s"
        )
        return result
    finally:
        stop_all([triggerer], grace=15)


def steady_rss(leader: int, timeout: float) -> bool:
    """Wait until the group's RSS stops growing (the runner has made every trigger): two 3 s steps within 1 %."""
    last = [group_sample(leader)["rss"], 0.0]

    def steady() -> bool:
        time.sleep(3)
        now = group_sample(leader)["rss"]
        still = abs(now - last[0]) <= 0.01 * last[0]
        last[1] = last[1] + 1 if still else 0
        last[0] = now
        return last[1] >= 2

    return bool(wait_until(steady, timeout, step=0))


def resume_latency(stage: Stage, count: int, interval: float) -> dict:
    """Flip every run to success; seconds from the flip to each task instance leaving ``deferred``."""
    flip = stage.server.flip()
    bound = 2 * interval + 60 + count / 50
    wait_until(lambda: stage.deferred() == 0, bound)
    delays = sorted(at - flip for at in stage.resumed_at())
    if not delays:
        return {"resumed": 0, "of": count}
    return {
        "resumed": len(delays),
        "of": count,
        "median_s": round(statistics.median(delays), 2),
        "p99_s": round(delays[min(len(delays) - 1, int(0.99 * len(delays)))], 2),
        "max_s": round(delays[-1], 2),
    }


# ----- the plan

#: the three kinds at both poll intervals and both sizes (the sleeping trigger once per size: it does not poll)
SIZES = (1000, 5000)
INTERVALS = (5.0, 30.0)


def default_plan(repeats: int = 2) -> list[tuple]:
    """``(kind, N, poll interval, switch)`` in order of what matters most, so that a run cut short by ``until``
    has the most: at each N, Airflow's own cost, both kinds at 5 s and every switch off (5 s polling only); then
    the kinds at 30 s; then the 5 s cases of the provider again (``repeats`` in all), in a rotating order."""
    fast, slow = INTERVALS
    plan = []
    for n in SIZES:
        plan += [("sleep", n, fast, None), ("opsera", n, fast, None), ("dbt", n, fast, None)]
        plan += [("opsera", n, fast, switch) for switch in SWITCHES]
    plan += [(kind, n, slow, None) for n in SIZES for kind in ("opsera", "dbt")]
    variants = [None, *SWITCHES]
    for repeat in range(1, repeats):
        for n in SIZES:
            shift = repeat % len(variants)
            plan += [("opsera", n, fast, switch) for switch in variants[shift:] + variants[:shift]]
    return plan


#: about how long a case takes at each poll interval (start, seeding, warm-up, window, resume, stop), in seconds
CASE_SECONDS = {5.0: 100.0, 30.0: 240.0}


def main(plan: list[tuple] | None = None, until: float | None = None, earlier: list[dict] | None = None) -> dict:
    """Every case of ``plan``; with ``until`` (epoch seconds), none that would not end by then. ``earlier``: the
    cases of a run cut short, kept in front of these."""
    plan = default_plan() if plan is None else plan
    started = time.monotonic()
    stage = Stage()
    say(f"  metadata database ready in {time.monotonic() - started:.0f} s")
    cases = list(earlier or [])
    try:
        for kind, count, interval, switch in plan:
            if until is not None and time.time() + CASE_SECONDS.get(interval, 4 * interval + 60) > until:
                say(f"  {kind} {switch or 'as shipped'} N={count} {interval:g} s: left out, no time left")
                cases.append(
                    {"kind": kind, "n": count, "poll_interval": interval, "switch": switch, "skipped": "no time left"}
                )
                continue
            try:
                cases.append(run_case(stage, kind, count, interval, switch))
            except Exception as error:  # one broken case must not cost the others
                say(f"    failed: {error}")
                cases.append(
                    {"kind": kind, "n": count, "poll_interval": interval, "switch": switch, "error": str(error)[:800]}
                )
            from bench.common import save

            save("real_triggerer", {"cases": cases, "partial": True})
    finally:
        stage.stop()
    return {"cases": cases, "partial": False}


# ----- the seeding child


def make_wait_trigger(kind: str, index: int, interval: float):
    if kind == "sleep":
        import datetime as dt

        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        return DateTimeTrigger(moment=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=SLEEP_AHEAD_SECONDS))
    from bench.trigger_process import make_trigger

    return make_trigger(kind, index, interval)


def seed(kind: str, count: int, interval: float, spread: float, batches: int = 10) -> None:
    """One DAG run; ``count`` deferred task instances of its mapped task, each with its trigger row, written in
    ``batches`` over ``spread`` seconds."""
    import datetime as dt

    from airflow.models.dagbag import DBDagBag
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    now = dt.datetime.now(dt.timezone.utc)
    with create_session() as session:
        dag = DBDagBag().get_latest_version_of_dag(DAG_ID, session=session)
        run = dag.create_dagrun(
            run_id=RUN_ID,
            logical_date=now,
            data_interval=(now, now),
            run_after=now,
            run_type=DagRunType.MANUAL,
            triggered_by=DagRunTriggeredByType.TEST,
            state=DagRunState.RUNNING,
            start_date=now,
            session=session,
        )
        session.flush()
        version_id = run.created_dag_version_id
        for ti in run.get_task_instances(session=session):
            if ti.task_id == TASK_ID:
                session.delete(ti)  # the unexpanded placeholder: the waits take map indexes 0..N-1
        session.commit()
    task = dag.get_task(TASK_ID)
    size = -(-count // batches)
    began = time.monotonic()
    for batch, first in enumerate(range(0, count, size)):
        time.sleep(max(0.0, began + batch * spread / batches - time.monotonic()))
        with create_session() as session:
            for index in range(first, min(count, first + size)):
                ti = TaskInstance(task, version_id, run_id=RUN_ID, map_index=index, state=TaskInstanceState.DEFERRED)
                ti.try_number = 1
                ti.start_date = dt.datetime.now(dt.timezone.utc)
                ti.next_method = "execute_complete"
                ti.trigger = Trigger.from_object(make_wait_trigger(kind, index, interval))
                session.add(ti)
        print(f"batch {batch}: {min(count, first + size)} of {count} waits", flush=True)


def run(until: float | None = None, plan: list[tuple] | None = None, earlier: list[dict] | None = None) -> dict:
    """The part on its own, as ``bench.run`` would run it, saved to ``bench/out/real_triggerer.json``."""
    from bench.common import save

    started, load = time.monotonic(), os.getloadavg()
    data = main(plan, until, earlier)
    data.update(seconds=time.monotonic() - started, load_average_before=load, load_average_after=os.getloadavg())
    save("real_triggerer", data)
    return data


if __name__ == "__main__":
    if sys.argv[1] == "seed":
        kind_, count_, interval_, spread_ = sys.argv[2:6]
        seed(kind_, int(count_), float(interval_), float(spread_))
    elif sys.argv[1] == "run":
        # run [--until HH:MM (UTC, today)] [--after EARLIER.json] [--cases KIND:N:INTERVAL[:SWITCH] ...]
        import argparse
        import datetime as dt
        import json

        parser = argparse.ArgumentParser(prog="python -m bench.real_triggerer run")
        parser.add_argument("--until", help="leave out the cases that would end after HH:MM UTC")
        parser.add_argument("--after", help="the JSON of a run cut short: its cases are kept")
        parser.add_argument("--cases", nargs="+", help="KIND:N:INTERVAL[:SWITCH] instead of the default plan")
        args = parser.parse_args(sys.argv[2:])
        until_ = None
        if args.until:
            hours, minutes = map(int, args.until.split(":"))
            moment = dt.datetime.now(dt.timezone.utc).replace(hour=hours, minute=minutes, second=0, microsecond=0)
            until_ = moment.timestamp()
        plan_ = None
        if args.cases:
            plan_ = []
            for text in args.cases:
                kind_, n_, every_, *switch_ = text.split(":")
                plan_.append((kind_, int(n_), float(every_), switch_[0] if switch_ else None))
        earlier_ = None
        if args.after:
            earlier_ = [case for case in json.loads(Path(args.after).read_text())["cases"] if "skipped" not in case]
        run(until_, plan_, earlier_)
    else:
        raise SystemExit(__doc__)
