"""A run's console output, copied into the Airflow task log once per record, oldest first.

Opsera answers a run's activity records newest first and at most
:data:`~airflow_provider_opsera.client.api.RECORD_CAP` of them, with no way to ask for
"only what is new". So every fetch may repeat records already printed: they are
recognised by their ``_id`` and skipped, and nothing is printed twice.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from airflow_provider_opsera.client.api import RECORD_CAP
from airflow_provider_opsera.exceptions import OpseraError
from airflow_provider_opsera.waiting.log_text import safe_line, safe_lines

CONSOLE_OUTPUT = "console output"
#: console lines kept for a failure message
TAIL_LINES = 20
#: characters of a step's name kept in the prefix of its console lines
LABEL_LIMIT = 80


def is_console_output(record: Any) -> bool:
    action = record.get("action") if isinstance(record, dict) else None
    return isinstance(action, str) and action.strip().lower() == CONSOLE_OUTPUT


def _as_json(value: Any) -> str | None:
    """``value`` as one line of JSON; None when it cannot be written out (nested too deeply, say)."""
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=repr)
    except (RecursionError, TypeError, ValueError):
        return None


def _text_lines(value: Any) -> list[str]:
    if value is None:
        return []
    text = value if isinstance(value, str) else _as_json(value)
    return safe_lines(text) if text is not None else []


def console_lines(record: dict[str, Any]) -> list[str]:
    """The text lines of one console-output record, each safe for a log line.

    ``api_response.consoleLog`` is a string, or an object whose values are strings or
    lists of lines (one entry per tool output, say). Anything else Opsera puts there is
    shown as its JSON text.
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
            lines.extend(_text_lines(text))
    return lines


def step_label(record: dict[str, Any]) -> str:
    """What prefixes a console line: the step's name, else its tool, else its position (one safe line)."""
    for key in ("step_name", "tool_identifier"):
        name = record.get(key)
        if isinstance(name, (int, float)) and not isinstance(name, bool):
            name = str(name)
        if isinstance(name, str) and (label := safe_line(name, limit=LABEL_LIMIT).strip()):
            return label
    index = record.get("step_index")
    if isinstance(index, float) and index.is_integer():
        index = int(index)
    if isinstance(index, int) and not isinstance(index, bool) and index >= 0:
        return f"step {index + 1}"
    return "run"


def _record_key(record: Any) -> str | int:
    """What recognises a record in the next fetch: its ``_id`` (a string, or an object such as
    ``{"$oid": ...}``), else its content."""
    if isinstance(record, dict):
        basis = record.get("_id") or [record.get("createdAt"), record.get("step_id"), record.get("api_response")]
    else:
        basis = record
    # a record too deep to write out is told apart by identity: printed again if fetched again, never lost
    return _as_json(basis) or id(record)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {str: "string", list: "array", int: "number", float: "number"}.get(type(value), type(value).__name__)


class ConsoleLog:
    """Prints the console lines of one run to ``log``, each record once, in the order they happened.

    With ``echo=False`` nothing is printed: only the last lines are kept, for a failure message.
    Whatever a log page holds, reading it never raises: items that are not records are skipped
    (noted once), and text is made safe for a log line.
    """

    def __init__(self, log: logging.Logger | Any, *, echo: bool = True, tail_lines: int = TAIL_LINES) -> None:
        self.log = log
        self.echo = echo
        self._printed: set[Any] = set()
        self._noted_non_records = False
        self._shown_elsewhere: str | None = None
        self.tail: deque[str] = deque(maxlen=tail_lines)
        self.lines_printed = 0
        #: the key of the newest console record printed (or shown elsewhere), to hand on to whoever goes on
        self.shown_through: str | None = None

    def shown_elsewhere_through(self, key: Any) -> None:
        """The task log already shows the console records up to the one whose key is ``key`` (another process
        printed them): the next answer's records up to it are taken as printed, not printed again."""
        self._shown_elsewhere = key if isinstance(key, str) and key else None

    def add(self, records_newest_first: Sequence[Any]) -> int:
        """Print what is new in one answer of the logs call; returns the number of lines printed."""
        records = records_newest_first if isinstance(records_newest_first, (list, tuple)) else ()
        if not self._take_as_shown(records):  # what was shown elsewhere was noted there too
            self._note_non_records(records)
        fresh = [r for r in records if is_console_output(r) and _record_key(r) not in self._printed]
        if not fresh:
            return 0
        oldest = records[-1]
        capped = len(records) >= RECORD_CAP and _record_key(oldest) not in self._printed
        if capped and self.echo:
            created = oldest.get("createdAt") if isinstance(oldest, dict) else None
            self.log.warning(
                "Opsera answers at most %d log records per request: console lines before %s are not "
                "shown here (the Opsera portal has the full log).",
                RECORD_CAP,
                safe_line(created, limit=40) if isinstance(created, str) else "the oldest one shown",
            )
        printed = 0
        for record in reversed(fresh):
            printed += self._print(record, echo=self.echo)
        if self.echo:
            self.lines_printed += printed
        return printed

    def _print(self, record: dict[str, Any], *, echo: bool) -> int:
        key = _record_key(record)
        self._printed.add(key)
        if isinstance(key, str):
            self.shown_through = key
        label = step_label(record)
        lines = console_lines(record)
        for line in lines:
            text = f"[{label}] {line}"
            if echo:
                self.log.info("%s", text)
            self.tail.append(text)
        return len(lines)

    def _take_as_shown(self, records: Sequence[Any]) -> bool:
        """Once: the records up to the one shown elsewhere count as printed (kept for a failure's last lines).

        True when some were: the process that showed them has said what there was to say about them.
        """
        marker, self._shown_elsewhere = self._shown_elsewhere, None
        keys = [_record_key(record) for record in records]
        if marker is None or marker not in keys:
            return False  # nothing shown yet, or shown and since cut off by Opsera's record cap: all of it is newer
        older = [r for r in records[keys.index(marker) :] if is_console_output(r)]
        for record in reversed(older):
            if _record_key(record) not in self._printed:
                self.lines_printed += self._print(record, echo=False)
        return True

    def _note_non_records(self, records: Sequence[Any]) -> None:
        others = [item for item in records if not isinstance(item, dict)]
        if others and self.echo and not self._noted_non_records:
            self._noted_non_records = True
            self.log.warning(
                "Opsera's log answer holds %d item(s) that are not log records (%s); they are skipped.",
                len(others),
                ", ".join(sorted({_json_type(item) for item in others})),
            )

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
