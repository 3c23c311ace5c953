"""Fakes for operator, sensor and trigger tests: task instance, state store, clock, async client."""

from __future__ import annotations

import asyncio
from typing import Any

from airflow_provider_opsera._compat import TaskDeferred
from tests.unit.conftest import BASE_URL, PIPELINE_ID

__all__ = ["TaskDeferred"]

RUN = f"{BASE_URL}/api/v1/pipeline/run"
STATUS = f"{BASE_URL}/api/v1/pipeline/status"
SUMMARY = f"{BASE_URL}/api/v1/pipeline/summary"
LOGS = f"{BASE_URL}/api/v1/pipeline/logs"
STOP = f"{BASE_URL}/api/v1/pipeline/stop"
RESET = f"{BASE_URL}/api/v1/pipeline/reset"
TASK_STATUS = f"{BASE_URL}/api/v1/task/status"
TASK_SUMMARY = f"{BASE_URL}/api/v1/task/summary"
TASK_LOGS = f"{BASE_URL}/api/v1/task/logs"


class FakeTI:
    """A task instance as the Task SDK hands it to a task; ``state``, when given, is what Airflow's
    ``get_task_states`` answers for it now (an exception: the read fails)."""

    def __init__(self, try_number: int = 1, max_tries: int = 0, *, state: Any = "no read") -> None:
        self.try_number = try_number
        self.max_tries = max_tries  # Airflow sets it from retries, and anew when a person clears the task
        self.dag_id, self.run_id, self.task_id, self.map_index = "deploy", "manual__1", "run_pipeline", -1
        self.stats_tags: dict[str, str] = {}
        self.xcoms: dict[str, Any] = {}
        self.state_reads = 0
        if state != "no read":
            self.state = state

    def xcom_push(self, key: str, value: Any, **_: Any) -> None:
        self.xcoms[key] = value

    def __getattr__(self, name: str) -> Any:
        if name == "get_task_states" and "state" in self.__dict__:
            return self._get_task_states
        raise AttributeError(name)

    def _get_task_states(self, dag_id: str, task_ids: list, run_ids: list, map_index: int) -> dict:
        self.state_reads += 1
        if isinstance(self.state, BaseException):
            raise self.state
        assert (dag_id, task_ids, run_ids, map_index) == (self.dag_id, [self.task_id], [self.run_id], -1)
        return {self.run_id: {self.task_id: self.state}}


class FakeStateStore:
    """``task_state_store`` as Airflow 3.3 hands it to a task."""

    def __init__(self, **values: Any) -> None:
        self.values = dict(values)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, **_: Any) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


class Killed(BaseException):
    """The try's process dies here: nothing after it runs, not even the operator's own error handling."""


class StoreThatFailsOn(FakeStateStore):
    """``task_state_store`` whose write of one key raises (a kill, or the API server refusing the try)."""

    def __init__(self, key: str, error: BaseException, **values: Any) -> None:
        super().__init__(**values)
        self.failing_key, self.error = key, error

    def set(self, key: str, value: Any, **kwargs: Any) -> None:
        if key == self.failing_key:
            raise self.error
        super().set(key, value, **kwargs)


def store_failing_on_the_run_note(error: BaseException) -> FakeStateStore:
    """A store that takes the note of a run request, then fails (or the try dies) on the note of the run."""
    store = FakeStateStore()
    original = store.set

    def set_(key: str, value: Any, **kwargs: Any) -> None:
        if "run" in value:
            raise error
        original(key, value, **kwargs)

    store.set = set_  # type: ignore[method-assign]
    return store


def make_context(ti: FakeTI | None = None, store: FakeStateStore | None = None, clear_number: int = 0) -> dict[str, Any]:
    from types import SimpleNamespace

    return {
        "ti": ti or FakeTI(),
        "task_state_store": store if store is not None else FakeStateStore(),
        "dag_run": SimpleNamespace(clear_number=clear_number),  # Airflow counts it up on every Clear
    }


class FakeClock:
    """Time that moves only when something sleeps."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def console(i: int, step: str, line: str, run_count: int = 3) -> dict[str, Any]:
    """One console-output record, its id ordered by ``i``."""
    return {
        "_id": f"{i:024x}",
        "pipeline_id": PIPELINE_ID,
        "run_count": run_count,
        "step_name": step,
        "action": "console output",
        "api_response": {"consoleLog": line},
        "createdAt": f"2026-01-01T00:00:{i:02d}.000Z",
    }


def newest_first(*records: dict[str, Any]) -> list[dict[str, Any]]:
    return list(reversed(records))


def status(value: str, message: str = "") -> dict[str, Any]:
    return {"json": {"status": value, "message": message or f"Pipeline: Blank Template's Run 3 is {value}."}}


def summary(run_count: int) -> dict[str, Any]:
    return {"json": {"_id": PIPELINE_ID, "name": "Blank Template", "workflow": {"run_count": run_count}}}


class FakeAsyncHook:
    """What a trigger calls, answering status reads from a script: a value, or an exception to raise.

    ``latest`` is the pipeline's latest run count its summary gives (3, the run the tests follow)."""

    def __init__(self, *answers: Any, stop_error: Exception | None = None, latest: int = 3) -> None:
        self.answers = list(answers)
        self.calls = 0
        self.stops = 0
        self.stop_error = stop_error
        self.latest = latest
        self.records: list[dict[str, Any]] = []  # the run's log records, newest first
        self.log_reads = 0

    async def settings(self) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(status_map=(), token_expires=None, pipeline_url=lambda pipeline_id: "")

    async def get_pipeline(self, pipeline_id: str) -> dict[str, Any]:
        return {"_id": pipeline_id, "workflow": {"run_count": self.latest}}

    async def get_pipeline_logs(self, pipeline_id: str, run_count: int, *, console_only: bool = False) -> list:
        self.log_reads += 1
        return list(self.records)

    def _next(self) -> Any:
        self.calls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def get_pipeline_run_status(self, pipeline_id: str, run_count: int) -> Any:
        return self._next()

    async def get_task_status(self, task_id: str) -> Any:
        return self._next()

    async def stop_pipeline(self, pipeline_id: str) -> dict[str, Any]:
        self.stops += 1
        if self.stop_error:
            raise self.stop_error
        return {"status": "success", "message": "The pipeline has been stopped."}


class TaskLog:
    """What was logged so far. Airflow 2 logs through ``logging`` (caplog) and echoes to the console;
    Airflow 3 logs through structlog to the console only. Counts look at one channel at a time."""

    def __init__(self, caplog: Any, capsys: Any) -> None:
        caplog.set_level("DEBUG")
        self._caplog, self._capsys = caplog, capsys
        self._records = self._console = ""

    def _read(self) -> tuple[str, str]:
        out, err = self._capsys.readouterr()
        self._console += out + err
        self._records += "".join(f"{record.getMessage()}\n" for record in self._caplog.records)
        self._caplog.clear()
        return self._records, self._console

    def text(self) -> str:
        return "\n".join(self._read())

    def count(self, part: str) -> int:
        return max(channel.count(part) for channel in self._read())

    def in_order(self, *parts: str) -> bool:
        for channel in self._read():
            if all(part in channel for part in parts):
                positions = [channel.index(part) for part in parts]
                return positions == sorted(positions)
        return False


class FakeSupervisor:
    """The triggerer's supervisor as a trigger reaches it (Airflow 3): answers GetTaskStates with ``states``,
    ``{run_id: {task_id: state}}``, raises it when it is an exception, or never answers (``hang``); keeps the
    XComs triggers set, by key, in ``xcoms``."""

    def __init__(self, states: dict[str, dict] | Exception | None = None, *, hang: bool = False) -> None:
        self.states = states
        self.hang = hang
        self.requests: list = []
        self.xcoms: dict[str, Any] = {}

    async def asend(self, message):
        self.requests.append(message)
        if self.hang:
            await asyncio.Event().wait()
        kind = type(message).__name__
        if kind == "SetXCom":
            self.xcoms[message.key] = message.value
            return None
        if kind == "GetXCom":
            from airflow.sdk.execution_time.comms import XComResult

            return XComResult(key=message.key, value=self.xcoms.get(message.key))
        if isinstance(self.states, Exception):
            raise self.states
        from airflow.sdk.execution_time.comms import TaskStatesResult

        return TaskStatesResult(task_states=dict(self.states or {}))
