"""A deferred run's console output, in the trigger's log while the run goes on.

Airflow shows a trigger's log lines in its task's log, so a deferred deploy of an hour is
not a blank log for an hour. Each line reaches the task's log once overall:

* the run's logs are read only when its status answer has changed since the last read (the
  run has moved on, or ended): no extra request on a quiet poll;
* the newest console record shown so far is kept in an XCom of the task instance
  (``opsera_console_shown_through``), so a triggerer that takes the wait over goes on after it.
  That XCom is read once, when the first records are to be shown, not when the wait starts: each
  read goes through the triggerer's supervisor, which answers one at a time (about 20 a second
  in the real-triggerer bench), so thousands of waits reading it at start held up their polls;
* the event carries it too, so the resumed task prints only what came after.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_opsera.client.redaction import redact
from airflow_provider_opsera.exceptions import OpseraError
from airflow_provider_opsera.waiting.run_logs import ConsoleLog

#: XCom key of the newest console record the task's log shows, written by the trigger that shows it
SHOWN_THROUGH_KEY = "opsera_console_shown_through"
#: a record key longer than this is not handed on (the lines after it may then be shown twice, never lost)
MAX_KEY_CHARS = 500


class LiveConsole:
    """Prints the new console lines of one run to a trigger's log, as the run moves on."""

    def __init__(self, pipeline_id: str, run_count: int, log: Any, ti: Any) -> None:
        self.pipeline_id = pipeline_id
        self.run_count = run_count
        self.log = log
        self.ti = ti
        self.console = ConsoleLog(log)
        self._last_answer: tuple[str, str] | None = None
        self._kept: str | None = None
        self._marker_read = False
        self._failing = False

    async def _go_on_after_an_earlier_copy(self) -> None:
        """Go on after what an earlier copy of this trigger showed (another triggerer, before a takeover)."""
        self._marker_read = True
        self._kept = await _read_marker(self.ti)
        self.console.shown_elsewhere_through(self._kept)

    @property
    def shown_through(self) -> str | None:
        key = self.console.shown_through or self._kept
        return key if key is not None and len(key) <= MAX_KEY_CHARS else None

    async def follow(self, hook: Any, answer: tuple[str, str]) -> None:
        """After a status read (``answer``: its status and message): print what is new, if the run moved on."""
        if answer == self._last_answer:
            return
        self._last_answer = answer
        try:
            records = await hook.get_pipeline_logs(self.pipeline_id, self.run_count, console_only=True)
        except Exception as error:  # showing the console is a courtesy: it never ends the wait
            if not self._failing:  # once per streak of failures
                kind = "" if isinstance(error, OpseraError) else f"{type(error).__name__}: "
                self.log.warning("Could not read the run's console output from Opsera: %s%s", kind, redact(str(error)))
            self._failing = True
            return
        self._failing = False
        if records and not self._marker_read:
            await self._go_on_after_an_earlier_copy()
        if self.console.add(records or []) and self.shown_through != self._kept:
            self._kept = self.shown_through
            await _write_marker(self.ti, self._kept, self.log)


async def _read_marker(ti: Any) -> str | None:
    xcom = _xcom_backend(ti)
    if xcom is None:
        return None
    try:
        value = await xcom.aget_one(key=SHOWN_THROUGH_KEY, **_where(ti))
    except Exception:  # nothing shown yet, or no supervisor to ask (dag.test()): start from the first line
        return None
    return value if isinstance(value, str) else None


async def _write_marker(ti: Any, key: str | None, log: Any) -> None:
    xcom = _xcom_backend(ti)
    if xcom is None or key is None:
        return
    try:
        await xcom.aset(SHOWN_THROUGH_KEY, key, **_where(ti))
    except Exception as error:  # a triggerer taking the wait over would show some lines again: said, not fatal
        log.debug("Could not keep how far the console output was shown: %s", error)


def _xcom_backend(ti: Any) -> Any:
    if ti is None or getattr(ti, "run_id", None) is None:
        return None
    try:
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.xcom import XCom
    except ImportError:  # Airflow 2: no Task SDK in the triggerer
        return None
    if getattr(task_runner, "SUPERVISOR_COMMS", None) is None or not hasattr(XCom, "aset"):
        return None
    return XCom


def _where(ti: Any) -> dict[str, Any]:
    map_index = getattr(ti, "map_index", -1)
    return {
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "run_id": ti.run_id,
        "map_index": -1 if map_index is None else map_index,
    }
