"""A production-shaped Airflow and an Opsera emulator for the end-to-end tests.

PostgreSQL as the metadata database, the LocalExecutor, and the api-server, scheduler,
dag-processor and two triggerers, each a separate process in its own process group with
its own log file. The tests signal, freeze, kill and restart these processes and read
the metadata database to see who holds which trigger.

Everything started here is stopped by :meth:`Stack.stop`, which the session fixture
calls in a finalizer and which is also registered with :mod:`atexit`; each child is
additionally asked by the kernel to stop when the test process dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import requests

from tests.e2e.postgres import Postgres, PostgresError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = REPO / "example_dags"
E2E_DAGS = Path(__file__).resolve().parent / "dags"
E2E_PLUGINS = Path(__file__).resolve().parent / "plugins"
ARTIFACTS = REPO / "artifacts"

#: emulated seconds per real second: the 90 s pipeline takes 3 s, the 30 min soak one minute
TIME_SCALE = float(os.environ.get("OPSERA_E2E_TIME_SCALE", "30"))
STARTUP_TIMEOUT = float(os.environ.get("OPSERA_E2E_STARTUP_TIMEOUT", "240"))
LISTENING = re.compile(r"Opsera emulator listening on (http://\S+)")
TRIGGERERS = ("triggerer-1", "triggerer-2")
#: seconds without a heartbeat after which a triggerer's triggers go to another one (Airflow's default: 30)
TRIGGERER_HEALTH_THRESHOLD = 20
#: seconds without a heartbeat after which the scheduler fails (or retries) a task running in a worker (Airflow's
#: default: 300), and how often it looks (default: 10); a worker's supervisor heartbeats every 5 s
TASK_HEARTBEAT_TIMEOUT = 30
TASK_HEARTBEAT_CHECK_INTERVAL = 5


class StackError(RuntimeError):
    pass


def scenario_pipeline(
    object_id: str, name: str, stages: int, seconds: float, *, approval_after: int | None = None
) -> dict[str, Any]:
    """A seed pipeline of ``stages`` steps of ``seconds`` real seconds each, each printing one console line; with
    ``approval_after``, an approval gate after that stage, where a run waits until :meth:`Stack.approve`."""
    steps = [
        {
            "name": f"stage {stage}",
            "tool": "jenkins",
            "duration": seconds * TIME_SCALE,
            "console": [f"{name} stage {stage} done"],
        }
        for stage in range(1, stages + 1)
    ]
    if approval_after is not None:
        steps.insert(approval_after, {"name": "approval", "tool": "approval", "outcome": "approval"})
    return {"_id": object_id, "name": name, "owner": "admin@example.com", "type": "sdlc", "steps": steps}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _load_prctl():
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except Exception:  # not Linux: the finalizers and atexit still stop the groups
        return None


_PRCTL = _load_prctl()  # loaded here: a child between fork and exec must not load libraries
_PR_SET_PDEATHSIG = 1


def _die_with_parent(death_signal: int, run_as: str | None) -> Callable[[], None]:
    ids = None
    if run_as is not None:
        import pwd

        entry = pwd.getpwnam(run_as)
        ids = (entry.pw_uid, entry.pw_gid)

    def in_child() -> None:
        """Runs in the child before exec: become ``run_as``, then ask for ``death_signal`` when the test process dies.

        In this order: the kernel forgets the parent-death signal when the user changes.
        """
        if ids is not None:
            os.setgroups([])
            os.setgid(ids[1])
            os.setuid(ids[0])
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, death_signal)

    return in_child


def spawn(
    args: list[str], *, death_signal: int = signal.SIGTERM, run_as: str | None = None, **kwargs: Any
) -> subprocess.Popen:
    """A child in its own process group (so the whole group can be signalled) that dies with us."""
    in_child = _die_with_parent(death_signal, run_as)
    return subprocess.Popen(args, start_new_session=True, preexec_fn=in_child, **kwargs)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path
    #: what asks it to stop; PostgreSQL's SIGTERM would wait for every client to leave
    stop_signal: int = signal.SIGTERM

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)  # the leader of its own group (start_new_session)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, grace: float = 10.0) -> None:
        stop_all([self], grace)

    def tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def stop_all(processes: list[Process], grace: float = 10.0) -> None:
    """Ask every process group to stop at once, wait up to ``grace`` seconds, then SIGKILL what is left."""
    for process in processes:
        if process.alive():
            process.signal_group(process.stop_signal)
            process.signal_group(signal.SIGCONT)  # a frozen process cannot act on the request
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.popen.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for process in processes:
        process.signal_group(signal.SIGKILL)  # also the children that outlived their leader
        try:
            process.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass


@dataclass
class Stack:
    """PostgreSQL, the emulator and the Airflow components, with helpers for their HTTP APIs and processes.

    Component names: ``postgres``, ``emulator``, ``api-server``, ``scheduler``,
    ``dag-processor`` and the :data:`TRIGGERERS`. Each has its log in ``home``
    (``<name>.log``); a restarted component appends to its log.
    """

    home: Path
    dags_folder: Path
    processes: dict[str, Process] = field(default_factory=dict)
    emulator_url: str = ""
    api_url: str = ""
    env: dict[str, str] = field(default_factory=dict, repr=False)
    postgres: Postgres | None = None
    #: the ``job`` table's id of each running triggerer (a restart gets a new one)
    triggerer_jobs: dict[str, int] = field(default_factory=dict)
    #: the pipelines the stack's emulator has on top of its default seed
    pipelines: dict[str, Any] = field(default_factory=dict)
    _commands: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _component_env: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    _down: set[str] = field(default_factory=set, repr=False)
    _fernet_key: str = field(default="", repr=False)
    _secrets: list[str] = field(default_factory=list, repr=False)
    _minted: dict[str, str] = field(default_factory=dict, repr=False)
    _stopped: bool = False

    # ----- lifecycle

    @classmethod
    def start(cls, *, extra_env: dict[str, str] | None = None) -> Stack:
        home = Path(tempfile.mkdtemp(prefix="opsera-e2e-home-"))
        stack = cls(home=home, dags_folder=home / "dags")
        atexit.register(stack.stop)
        stack._stop_on_sigterm()
        try:
            stack._start(extra_env or {})
        except (StackError, PostgresError) as error:
            logs = stack.logs()
            stack.stop()
            raise StackError(f"{error}\n{logs}") from None
        except BaseException:
            stack.stop()
            raise
        return stack

    def _stop_on_sigterm(self) -> None:
        """A SIGTERM to the test process (a CI timeout, say) stops the stack before the process ends."""
        import threading

        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum, frame):
            self.stop()
            signal.signal(signal.SIGTERM, previous if callable(previous) else signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

        signal.signal(signal.SIGTERM, on_sigterm)

    def _start(self, extra_env: dict[str, str]) -> None:
        (self.home / "logs").mkdir(parents=True)
        self.dags_folder.mkdir()
        self.sync_dags()
        self._start_postgres()
        self._start_emulator(self._write_seed())
        token = self.emulator_tokens()["admin"]
        self._secrets.append(token)
        api_port = free_port()
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.env = self._airflow_env(api_port, token, extra_env)
        self._run_once("db-migrate", ["db", "migrate"], timeout=300)
        self._spawn("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(api_port), "--workers", "1"])
        for name in ("scheduler", "dag-processor"):
            self._spawn(name, [name])
        for name in TRIGGERERS:
            # each serves its own trigger logs, so each needs its own port
            self._component_env[name] = {"AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())}
            self._start_triggerer(name)
        self.wait_until_healthy()

    @property
    def kill_on_handover(self) -> Path:
        """While this file exists, the delivery test's watcher kills its triggerer the next time it hands an event
        over (``tests/e2e/plugins/opsera_e2e_watcher.py``), and renames it with ``.fired`` after it."""
        return self.home / "kill-on-handover"

    def _start_postgres(self) -> None:
        self.postgres = Postgres(free_port(), spawn)
        popen = self.postgres.start()
        # SIGINT: PostgreSQL's fast shutdown, which does not wait for clients to disconnect
        self.processes["postgres"] = Process("postgres", popen, self.postgres.log_path, stop_signal=signal.SIGINT)

    def _write_seed(self) -> Path:
        """The emulator's default seed plus the pipelines of the scenario tests, timed in real seconds."""
        from airflow_provider_opsera.emulator.seed import read_seed

        seed = read_seed(None)
        takeover = {
            "_id": "e2e0000000000000000000a1",
            "name": "E2E Takeover",
            "owner": "admin@example.com",
            "type": "sdlc",
            "steps": [
                {
                    "name": f"stage {step}",
                    "tool": "jenkins",
                    "duration": 20 * TIME_SCALE,
                    "console": [f"takeover stage {step} line {line}" for line in (1, 2, 3)],
                }
                for step in (1, 2, 3)
            ],
        }
        worker_crash = {
            **takeover,
            "_id": "e2e0000000000000000000b1",
            "name": "E2E Worker Crash",
            "steps": [{**step, "duration": 10 * TIME_SCALE} for step in takeover["steps"]],
        }
        fan_out = [
            {
                "_id": f"e2e00000000000000000{n:04d}",
                "name": f"E2E Fan-out {n}",
                "owner": "admin@example.com",
                "type": "sdlc",
                "steps": [
                    {
                        "name": "quick",
                        "tool": "command-line",
                        "duration": 4 * TIME_SCALE,
                        "console": [f"fan-out {n} start", f"fan-out {n} done"],
                    }
                ],
            }
            for n in range(1, 25)
        ]
        # the run lifecycle's scenarios: one pipeline each, so that each journal holds one scenario's runs
        lifecycle = {
            "clear_after_success": scenario_pipeline("e2e0000000000000000000c1", "E2E Clear After Success", 2, 3),
            "clear_while_deferred": scenario_pipeline("e2e0000000000000000000c3", "E2E Clear While Deferred", 5, 5),
            "shared": scenario_pipeline("e2e0000000000000000000d3", "E2E Shared Pipeline", 2, 6),
            "mark_success": scenario_pipeline("e2e0000000000000000000e3", "E2E Mark Success", 3, 5),
            "worker_takeover": scenario_pipeline(
                "e2e0000000000000000000f8", "E2E Worker Takeover", 2, 2, approval_after=1
            ),
            "watcher_delivery": scenario_pipeline("e2e0000000000000000000a4", "E2E Watcher Delivery", 1, 2),
        }
        seed["pipelines"] += [takeover, worker_crash, *fan_out, *lifecycle.values()]
        self.pipelines = {
            "takeover": takeover["_id"],
            "worker_crash": worker_crash["_id"],
            "fan_out": [p["_id"] for p in fan_out],
            **{name: pipeline["_id"] for name, pipeline in lifecycle.items()},
        }
        path = self.home / "emulator-seed.json"
        path.write_text(json.dumps(seed, indent=1))
        return path

    def _airflow_env(self, api_port: int, token: str, extra_env: dict[str, str]) -> dict[str, str]:
        from cryptography.fernet import Fernet

        # Nothing from the test process's own Airflow settings (unit test mode, its home) leaks in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        connection = {
            "conn_type": "opsera",
            "host": self.emulator_url,
            "password": token,
            "extra": {"portal_url": f"{self.emulator_url}/portal"},
        }
        self._fernet_key = Fernet.generate_key().decode()
        self._secrets.append(self._fernet_key)
        assert self.postgres is not None
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(E2E_PLUGINS),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__CORE__FERNET_KEY": self._fernet_key,
                # nothing runs on a schedule; a test unpauses the DAG it triggers
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
                "AIRFLOW__API__SECRET_KEY": os.urandom(16).hex(),
                "AIRFLOW__API_AUTH__JWT_SECRET": os.urandom(32).hex(),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url(),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "10",
                # HA triggerers: a silent triggerer's triggers move to the other within seconds
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(TRIGGERER_HEALTH_THRESHOLD),
                # a worker that lost its heartbeat is retried within a minute, not five
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(TASK_HEARTBEAT_TIMEOUT),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": str(
                    TASK_HEARTBEAT_CHECK_INTERVAL
                ),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "False",
                "AIRFLOW_CONN_OPSERA_DEFAULT": json.dumps(connection),
                # the example DAGs' default wait between status polls, in real seconds
                "OPSERA_EXAMPLE_POLL_INTERVAL": os.environ.get("OPSERA_EXAMPLE_POLL_INTERVAL", "10"),
                "OPSERA_AUDIT_EXPORT_DIR": str(self.home / "audit-export"),
                # the scenario DAGs read their pipelines from here
                "OPSERA_E2E_PIPELINES": json.dumps(self.pipelines),
                # a test creates this file to have the delivery test's watcher kill its triggerer once
                "OPSERA_E2E_KILL_ON_HANDOVER": str(self.kill_on_handover),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra_env)
        return env

    def _start_emulator(self, seed: Path) -> None:
        log_path = self.home / "emulator.log"
        log = open(log_path, "w")
        command = [sys.executable, "-m", "airflow_provider_opsera.emulator", "--port", "0"]
        command += ["--time-scale", str(TIME_SCALE), "--seed", str(seed)]
        popen = spawn(command, stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO)
        self.processes["emulator"] = Process("emulator", popen, log_path)
        deadline = time.monotonic() + 30
        assert popen.stdout is not None
        while time.monotonic() < deadline:
            line = popen.stdout.readline()
            if not line:
                raise StackError(f"the emulator exited early:\n{self.processes['emulator'].tail()}")
            log.write(line)
            log.flush()
            match = LISTENING.search(line)
            if match:
                self.emulator_url = match.group(1)
                # keep draining its stdout so it never blocks on a full pipe
                _drain(popen.stdout, log)
                return
        raise StackError("the emulator did not print its listening line in 30 s")

    def _airflow(self) -> list[str]:
        return [sys.executable, "-m", "airflow"]

    def _run_once(self, name: str, args: list[str], timeout: float) -> None:
        log_path = self.home / f"{name}.log"
        with open(log_path, "w") as log:
            popen = spawn(self._airflow() + args, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.home)
            process = Process(name, popen, log_path)
            self.processes[name] = process
            try:
                code = popen.wait(timeout)
            except subprocess.TimeoutExpired:
                process.stop()
                raise StackError(f"airflow {' '.join(args)} took more than {timeout} s:\n{process.tail()}") from None
        if code != 0:
            raise StackError(f"airflow {' '.join(args)} exited {code}:\n{self.scrub(process.tail())}")
        del self.processes[name]

    def _spawn(self, name: str, args: list[str], extra_env: dict[str, str] | None = None) -> None:
        log_path = self.home / f"{name}.log"
        self._commands[name] = args
        log = open(log_path, "a")
        env = {**self.env, **self._component_env.get(name, {}), **(extra_env or {})}
        popen = spawn(self._airflow() + args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.home)
        log.close()
        self.processes[name] = Process(name, popen, log_path)
        self._down.discard(name)

    def _start_triggerer(self, name: str) -> None:
        """Start it and learn its job id: the one triggerer job that appears after the start is this one."""
        known = set(self.triggerer_jobs.values()) | {row["id"] for row in self._triggerer_job_rows()}
        self._spawn(name, ["triggerer"])

        def new_job():
            self.check_alive()
            fresh = [row["id"] for row in self._triggerer_job_rows() if row["id"] not in known]
            return fresh[0] if fresh else None

        self.triggerer_jobs[name] = self.wait_for(new_job, STARTUP_TIMEOUT, f"{name} to register its job")

    def _triggerer_job_rows(self) -> list[dict[str, Any]]:
        try:
            return self.query("SELECT id FROM job WHERE job_type = 'TriggererJob' ORDER BY id")
        except Exception:  # the tables may not exist yet
            return []

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        # Airflow first (its tasks may still call the emulator), then the emulator, the database last.
        stop_all([p for n, p in self.processes.items() if n not in ("emulator", "postgres")])
        for name in ("emulator", "postgres"):
            if name in self.processes:
                stop_all([self.processes[name]], grace=5)
        if os.environ.get("OPSERA_E2E_KEEP_HOME") != "1":
            shutil.rmtree(self.home, ignore_errors=True)
            if self.postgres is not None:
                self.postgres.remove_files()

    # ----- component processes: signal, kill, restart

    def signal(self, name: str, sig: int) -> None:
        """Send ``sig`` to the component's whole process group (its supervisor and every child)."""
        self.processes[name].signal_group(sig)

    def kill(self, name: str, timeout: float = 30) -> None:
        """SIGKILL the component's process group and wait until it is gone; :meth:`check_alive` expects it down."""
        process = self.processes[name]
        self._down.add(name)
        process.signal_group(signal.SIGKILL)
        try:
            process.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise StackError(f"{name} still running {timeout:.0f} s after SIGKILL") from None
        if name in self.triggerer_jobs:
            del self.triggerer_jobs[name]

    def restart(self, name: str, extra_env: dict[str, str] | None = None) -> None:
        """Start a stopped component again with the same command, as a supervisor would.

        ``extra_env`` changes its settings until it is restarted without them (not for the triggerers).
        """
        if self.processes[name].alive():
            raise StackError(f"{name} is still running; kill it first")
        if name in TRIGGERERS:
            self._start_triggerer(name)
        else:
            self._spawn(name, self._commands[name], extra_env)

    def lost(self, name: str, timeout: float = 30) -> None:
        """A component that a test made end itself: wait until it is gone; :meth:`check_alive` expects it down."""
        process = self.processes[name]
        self._down.add(name)
        try:
            process.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise StackError(f"{name} still running {timeout:.0f} s after it was to end itself") from None
        process.signal_group(signal.SIGKILL)  # whatever of its group outlived it
        self.triggerer_jobs.pop(name, None)

    def wait_until_healthy(self) -> None:
        """Every component answers the API server's health check (after a restart, say)."""
        self.wait_for(self._api_healthy, STARTUP_TIMEOUT, "the Airflow API server and scheduler to be healthy")

    def triggerers(self) -> list[str]:
        """The triggerers that run now, by component name."""
        return [name for name in TRIGGERERS if name in self.processes and self.processes[name].alive()]

    # ----- the metadata database

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        """Rows of one SQL statement against Airflow's metadata database (PostgreSQL), as dicts."""
        assert self.postgres is not None
        return self.postgres.query(sql, params)

    def _task_instance_row(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> dict[str, Any] | None:
        rows = self.query(
            "SELECT pid, trigger_id, state, try_number FROM task_instance "
            "WHERE dag_id = %s AND run_id = %s AND task_id = %s AND map_index = %s",
            (dag_id, run_id, task_id, map_index),
        )
        return rows[0] if rows else None

    def task_pid(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> int | None:
        """The pid of the process running the task's code now (Airflow records it when the try starts)."""
        row = self._task_instance_row(dag_id, run_id, task_id, map_index)
        return row["pid"] if row else None

    def trigger_of(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any] | None:
        """The deferred task's ``trigger`` row: ``id``, ``triggerer_id`` (a job id), ``kwargs`` (decrypted)."""
        row = self._task_instance_row(dag_id, run_id, task_id, map_index)
        if not row or row["trigger_id"] is None:
            return None
        rows = self.query("SELECT id, triggerer_id, kwargs FROM trigger WHERE id = %s", (row["trigger_id"],))
        if not rows:
            return None
        trigger = rows[0]
        trigger["kwargs"] = self._trigger_kwargs(trigger["kwargs"])
        return trigger

    def _trigger_kwargs(self, stored: str) -> dict[str, Any]:
        from cryptography.fernet import Fernet

        text = stored if stored.startswith("{") else Fernet(self._fernet_key.encode()).decrypt(stored.encode()).decode()
        return _plain(json.loads(text))

    def triggerer_holding(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str | None:
        """Which triggerer (component name) the deferred task's trigger is assigned to, if any."""
        trigger = self.trigger_of(dag_id, run_id, task_id, map_index)
        if trigger is None or trigger["triggerer_id"] is None:
            return None
        for name, job_id in self.triggerer_jobs.items():
            if job_id == trigger["triggerer_id"]:
                return name
        return f"job {trigger['triggerer_id']}"  # a triggerer that was killed: its job id is all that is left

    def trigger_log(self, dag_id: str, run_id: str, task_id: str, triggerer: str, map_index: int = -1) -> str:
        """What the triggerer's copy of the task's trigger logged: Airflow writes one file per triggerer job."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder /= f"map_index={map_index}"
        job_id = self.triggerer_jobs[triggerer]
        return "\n".join(path.read_text(errors="replace") for path in sorted(folder.glob(f"*.trigger.{job_id}.log")))

    def triggerer_heartbeat(self, name: str) -> float:
        """When the triggerer last heartbeated (epoch seconds), from its ``job`` row."""
        rows = self.query(
            "SELECT extract(epoch FROM latest_heartbeat) AS at FROM job WHERE id = %s", (self.triggerer_jobs[name],)
        )
        return float(rows[0]["at"]) if rows and rows[0]["at"] is not None else 0.0

    # ----- DAG files

    def sync_dags(self) -> list[str]:
        """Link the example DAGs and the test DAGs into the DAGs folder; new files appear as they are written."""
        added = []
        for source_dir in (EXAMPLE_DAGS, E2E_DAGS):
            if not source_dir.is_dir():
                continue
            for path in sorted(source_dir.iterdir()):
                if path.name.startswith((".", "_")) and path.name != "__init__.py" or path.name == "__pycache__":
                    continue
                if path.suffix != ".py" and not path.is_dir():
                    continue
                if path.name == "__init__.py":
                    continue
                target = self.dags_folder / path.name
                if not target.exists() and not target.is_symlink():
                    target.symlink_to(path)
                    added.append(path.name)
        return added

    # ----- health and diagnostics

    def check_alive(self) -> None:
        """Raise if a component stopped that no test stopped on purpose."""
        dead = [p for p in self.processes.values() if not p.alive() and p.name not in self._down]
        if dead:
            raise StackError(
                "stopped unexpectedly: " + ", ".join(f"{p.name} (exit {p.popen.returncode})" for p in dead)
            )

    def _api_healthy(self) -> bool:
        self.check_alive()
        try:
            answer = requests.get(f"{self.api_url}/api/v2/monitor/health", timeout=5)
        except requests.RequestException:
            return False
        if answer.status_code != 200:
            return False
        health = answer.json()
        return all(
            (health.get(part) or {}).get("status") == "healthy"
            for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
        )

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def logs(self, lines: int = 120) -> str:
        parts = []
        for name, process in self.processes.items():
            parts.append(f"----- {name} (last {lines} lines of {process.log_path.name}) -----\n{process.tail(lines)}")
        return self.scrub("\n".join(parts))

    @staticmethod
    def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise StackError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(interval)

    # ----- the emulator's admin routes

    def emulator_tokens(self) -> dict[str, str]:
        return requests.get(f"{self.emulator_url}/_emulator/tokens", timeout=10).json()

    def emulator_counts(self) -> dict[str, int]:
        return requests.get(f"{self.emulator_url}/_emulator/requests", timeout=10).json()["counts"]

    def emulator_state(self) -> dict[str, Any]:
        return requests.get(f"{self.emulator_url}/_emulator/state", timeout=10).json()

    def opsera(self, path: str, body: dict[str, Any], *, as_token: str | None = None) -> Any:
        """A call to the emulated Opsera API with the admin token, the one Airflow's connection has (or the token
        named ``as_token``, minted by :meth:`mint_token`); tokens never leave this process."""
        token = self._secrets[0] if as_token is None else self._minted[as_token]
        answer = requests.post(
            f"{self.emulator_url}{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        answer.raise_for_status()
        return answer.json()

    def approve(self, pipeline_id: str) -> dict[str, Any]:
        """A person lets the pipeline's run waiting at its approval gate go on."""
        answer = requests.post(f"{self.emulator_url}/_emulator/pipelines/{pipeline_id}/approve", timeout=10)
        answer.raise_for_status()
        return answer.json()

    def mint_token(self, name: str) -> str:
        """A new emulator token, of a person other than Airflow's connection; its name for :meth:`opsera`."""
        answer = requests.post(f"{self.emulator_url}/_emulator/tokens", json={"name": name}, timeout=10)
        answer.raise_for_status()
        self._minted[name] = answer.json()["token"]
        self._secrets.append(self._minted[name])
        return name

    def run_journal(self, pipeline_id: str) -> list[dict[str, Any]]:
        """The pipeline's runs, oldest first, as the emulator's run journal has them: who started each
        (``started_by_token``: the token's name, ``admin`` for Airflow's connection) and each stop (``stops``:
        ``by``, ``run_status`` when it came)."""
        answer = requests.get(f"{self.emulator_url}/_emulator/runs", timeout=10)
        answer.raise_for_status()
        return [run for run in answer.json()["runs"] if run["pipeline_id"] == pipeline_id]

    def pipeline_run_status(self, pipeline_id: str, run_count: int) -> dict[str, Any]:
        return self.opsera("/api/v1/pipeline/status", {"pipelineId": pipeline_id, "runCount": run_count})

    # ----- Airflow's REST API (v2)

    def api(self, method: str, path: str, *, expect: int | tuple[int, ...] = 200, **kwargs: Any) -> Any:
        answer = requests.request(method, f"{self.api_url}/api/v2{path}", timeout=30, **kwargs)
        expected = (expect,) if isinstance(expect, int) else expect
        if answer.status_code not in expected:
            raise StackError(f"{method} /api/v2{path} answered {answer.status_code}: {self.scrub(answer.text[:2000])}")
        if not answer.content:
            return None
        try:
            return answer.json()
        except ValueError:
            return answer.text

    def import_errors(self) -> dict[str, str]:
        errors = self.api("GET", "/importErrors", params={"limit": 100})["import_errors"]
        return {Path(e["filename"]).name: e["stack_trace"] for e in errors}

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict[str, Any]:
        def parsed():
            self.check_alive()
            answer = requests.get(f"{self.api_url}/api/v2/dags/{dag_id}", timeout=10)
            return answer.json() if answer.status_code == 200 else None

        try:
            return self.wait_for(parsed, timeout, f"DAG {dag_id} to be parsed", interval=1)
        except StackError:
            raise StackError(f"DAG {dag_id} was not parsed; import errors: {self.import_errors()}") from None

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        self.wait_for_dag(dag_id)
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        # a logical date, as the scheduler would give: templates such as {{ ds }} need one
        logical_date = datetime.now(timezone.utc).isoformat()
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": logical_date, "conf": conf or {}})
        return run["dag_run_id"]

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_instance(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
        mapped = f"/{map_index}" if map_index >= 0 else ""
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}{mapped}")

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        answer = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti["state"] for ti in answer["task_instances"]}

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        timeout: float = 180,
        on_poll: Callable[[dict[str, str | None]], None] | None = None,
        interval: float = 0.25,
    ) -> str:
        """Poll until the run finishes; ``on_poll`` sees every task state snapshot on the way."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            if on_poll is not None:
                on_poll(self.task_states(dag_id, run_id))
            state = self.dag_run(dag_id, run_id)["state"]
            if state in ("success", "failed"):
                if on_poll is not None:
                    on_poll(self.task_states(dag_id, run_id))
                return state
            if time.monotonic() > deadline:
                raise StackError(
                    f"DAG run {dag_id}/{run_id} still {state} after {timeout:.0f} s; "
                    f"tasks: {self.task_states(dag_id, run_id)}"
                )
            time.sleep(interval)

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int | None = None, map_index: int = -1
    ) -> str:
        if try_number is None:
            try_number = self.task_instance(dag_id, run_id, task_id, map_index)["try_number"] or 1
        params = {"full_content": "true", **({"map_index": map_index} if map_index >= 0 else {})}
        answer = self.api(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params=params,
            headers={"Accept": "application/json"},
        )
        return flatten_log(answer.get("content"))

    def task_links(self, dag_id: str, run_id: str, task_id: str) -> dict[str, str | None]:
        answer = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links")
        return answer.get("extra_links", answer)

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        return self.api("GET", path, params={"deserialize": "true"})["value"]

    def set_task_state(self, dag_id: str, run_id: str, task_id: str, state: str) -> Any:
        return self.api("PATCH", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", json={"new_state": state})

    def clear_task(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Clear one task instance as the UI's Clear button does, whatever its state; the task instances cleared."""
        body = {"dry_run": False, "dag_run_id": run_id, "task_ids": [task_id], "only_failed": False}
        return self.api("POST", f"/dags/{dag_id}/clearTaskInstances", json=body)["task_instances"]


def _plain(value: Any) -> Any:
    """Airflow's serialisation of trigger arguments, with its type wrappers (if any) taken off."""
    if isinstance(value, dict):
        if "__classname__" in value and "__data__" in value:
            return _plain(value["__data__"])
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def flatten_log(content: Any) -> str:
    """Airflow 3 answers a task log as structured records; make it the text a person reads."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    lines = []
    for record in content:
        if isinstance(record, dict):
            extra = {k: v for k, v in record.items() if k not in ("event", "timestamp", "level", "logger")}
            text = str(record.get("event", ""))
            if extra:
                text += " " + " ".join(f"{k}={v}" for k, v in extra.items())
            lines.append(f"[{record.get('level', '')}] {text}")
        else:
            lines.append(str(record))
    return "\n".join(lines)


def _drain(stream, log) -> None:
    import threading

    def pump():
        for line in stream:
            log.write(line)
            log.flush()
        log.close()

    threading.Thread(target=pump, name="emulator-stdout", daemon=True).start()
