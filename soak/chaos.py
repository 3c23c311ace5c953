"""The chaos: every ~20 s one component is killed (and restarted, as a supervisor would) or frozen
and woken after a pause longer than Airflow's health thresholds. Seeded, so a soak can be replayed.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

COMPONENTS = ("scheduler", "triggerer-1", "triggerer-2", "task", "api-server")
#: the long-running processes a supervisor restarts when they die
SUPERVISED = ("scheduler", "triggerer-1", "triggerer-2", "api-server", "dag-processor")
ACTIONS = ("kill", "freeze")


@dataclass
class ChaosEvent:
    wall: float
    component: str
    action: str
    detail: str = ""
    ended_wall: float | None = None


class Chaos:
    def __init__(self, stack: Any, rng: random.Random, interval: float, freeze_seconds: float) -> None:
        self.stack = stack
        self.rng = rng
        self.interval = interval
        self.freeze_seconds = freeze_seconds
        self.events: list[ChaosEvent] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._closed = threading.Event()
        self._idle = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="soak-chaos", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No more strikes; returns once the one under way (a freeze, a restart) is over."""
        self._stop.set()
        if self._thread.is_alive():
            self._idle.wait(self.freeze_seconds + 300)

    def close(self) -> None:
        """After the stack stopped: the thread may end now."""
        self._closed.set()
        self._thread.join(10)

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.interval * self.rng.uniform(0.75, 1.25)):
                component, action = self.rng.choice(COMPONENTS), self.rng.choice(ACTIONS)
                try:
                    self._revive()
                    self._strike(component, action)
                except Exception as error:  # a failed strike is reported, the soak goes on
                    self.errors.append(f"{component} {action}: {type(error).__name__}: {error}")
        finally:
            self._idle.set()
        # The components this thread restarted die with it (PR_SET_PDEATHSIG follows the thread
        # that spawned them), so it lives on until the stack is stopped.
        self._closed.wait()

    def _revive(self) -> None:
        """A component that died on its own is restarted too, and the report says so."""
        for name in SUPERVISED:
            process = self.stack.processes.get(name)
            if process is not None and not process.alive():
                self.events.append(ChaosEvent(time.time(), name, "crashed", f"exit {process.popen.returncode}"))
                self.stack.restart(name)

    def _strike(self, component: str, action: str) -> None:
        if component == "task":
            self._strike_task(action)
            return
        event = ChaosEvent(time.time(), component, action)
        self.events.append(event)
        if action == "kill":
            self.stack.kill(component)
            self.stack.restart(component)
        else:
            self.stack.signal(component, signal.SIGSTOP)
            self._stop.wait(self.freeze_seconds)
            self.stack.signal(component, signal.SIGCONT)
        event.ended_wall = time.time()

    def _strike_task(self, action: str) -> None:
        """A running task's own process (not its supervisor): SIGKILL, or SIGSTOP then SIGCONT."""
        rows = self.stack.query(
            "SELECT dag_id, run_id, task_id, try_number, pid FROM task_instance "
            "WHERE state = 'running' AND pid IS NOT NULL AND dag_id LIKE 'soak_%%'"
        )
        if not rows:
            return
        row = self.rng.choice(sorted(rows, key=lambda r: r["run_id"]))
        event = ChaosEvent(time.time(), "task", action, f"{row['dag_id']}/{row['run_id']} try {row['try_number']}")
        self.events.append(event)
        try:
            if action == "kill":
                os.kill(row["pid"], signal.SIGKILL)
            else:
                os.kill(row["pid"], signal.SIGSTOP)
                self._stop.wait(self.freeze_seconds)
                os.kill(row["pid"], signal.SIGCONT)
        except ProcessLookupError:
            event.detail += " (already gone)"
        event.ended_wall = time.time()
