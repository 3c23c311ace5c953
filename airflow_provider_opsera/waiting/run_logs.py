"""A run's console output, copied into the Airflow task log once per record, oldest first.

Opsera answers a run's activity records newest first and at most
:data:`~airflow_provider_opsera.client.api.RECORD_CAP` of them, with no way to ask for
"only what is new". So every fetch may repeat records already printed: they are
recognised by their ``_id`` and skipped, and nothing is printed twice.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from airflow_provider_opsera.client.api import RECORD_CAP
from airflow_provider_opsera.exceptions import OpseraError

CONSOLE_OUTPUT = "console output"
#: console lines kept for a failure message
TAIL_LINES = 20


def is_console_output(record: Any) -> bool:
    return isinstance(record, dict) and str(record.get("action", "")).strip().lower() == CONSOLE_OUTPUT


def console_lines(record: dict[str, Any]) -> list[str]:
    """The text lines of one console-output record.

    ``api_response.consoleLog`` is a string, or an object whose values are strings or
    lists of lines (one entry per tool output, say).
    """
    response = record.get("api_response")
    console = response.get("consoleLog") if isinstance(response, dict) else None
    if console is None:
        return []
    if isinstance(console, dict):
        chunks: Iterable[Any] = console.values()
    elif isinstance(console, list):
        chunks = console
    else:
        chunks = (console,)
    lines: list[str] = []
    for chunk in chunks:
        for text in chunk if isinstance(chunk, list) else (chunk,):
            if text is not None:
                lines.extend(str(text).splitlines())
    return lines


def step_label(record: dict[str, Any]) -> str:
    """What prefixes a console line: the step's name, else its tool, else its position."""
    for key in ("step_name", "tool_identifier"):
        if record.get(key):
            return str(record[key])
    index = record.get("step_index")
    if isinstance(index, int) and not isinstance(index, bool):
        return f"step {index + 1}"
    return "run"


def _record_key(record: dict[str, Any]) -> Any:
    if record.get("_id"):
        return record["_id"]
    # no id: the record's own content identifies it well enough to print it once
    return (record.get("createdAt"), record.get("step_id"), str(record.get("api_response")))


class ConsoleLog:
    """Prints the console lines of one run to ``log``, each record once, in the order they happened.

    With ``echo=False`` nothing is printed: only the last lines are kept, for a failure message.
    """

    def __init__(self, log: logging.Logger | Any, *, echo: bool = True, tail_lines: int = TAIL_LINES) -> None:
        self.log = log
        self.echo = echo
        self._printed: set[Any] = set()
        self.tail: deque[str] = deque(maxlen=tail_lines)
        self.lines_printed = 0

    def add(self, records_newest_first: Sequence[Any]) -> int:
        """Print what is new in one answer of the logs call; returns the number of lines printed."""
        fresh = [r for r in records_newest_first if is_console_output(r) and _record_key(r) not in self._printed]
        if not fresh:
            return 0
        oldest = records_newest_first[-1]
        capped = len(records_newest_first) >= RECORD_CAP and _record_key(oldest) not in self._printed
        if capped and self.echo:
            self.log.warning(
                "Opsera answers at most %d log records per request: console lines before %s are not "
                "shown here (the Opsera portal has the full log).",
                RECORD_CAP,
                oldest.get("createdAt", "the oldest one shown") if isinstance(oldest, dict) else "those",
            )
        printed = 0
        for record in reversed(fresh):
            self._printed.add(_record_key(record))
            label = step_label(record)
            for line in console_lines(record):
                text = f"[{label}] {line}"
                if self.echo:
                    self.log.info("%s", text)
                self.tail.append(text)
                printed += 1
        if self.echo:
            self.lines_printed += printed
        return printed

    def tail_text(self) -> str:
        return "\n".join(self.tail)


class RunLogFollower:
    """Fetches a run's console records and prints the new ones; a failed fetch never fails the wait."""

    def __init__(self, fetch: Callable[[], Sequence[Any]], log: logging.Logger | Any, *, echo: bool = True) -> None:
        self._fetch = fetch
        self.log = log
        self.console = ConsoleLog(log, echo=echo)
        self.pulls = 0
        self._failing = False

    def pull(self) -> int:
        try:
            records = self._fetch()
        except OpseraError as error:
            if not self._failing:  # once per streak of failures, not once per poll
                self.log.warning("Could not read the run's console output from Opsera: %s", error)
            self._failing = True
            return 0
        self._failing = False
        self.pulls += 1
        return self.console.add(records or [])

    def tail_text(self) -> str:
        return self.console.tail_text()
