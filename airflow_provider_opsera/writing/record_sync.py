"""Creating Opsera records one at a time or from a list, so that re-running a DAG is safe.

Every record of a list is checked first (fields, value sets, did-you-mean): one bad record
fails the task before anything is sent, naming every bad record. Then each record is looked
up and created only when Opsera does not have it yet. A record already there with the
requested values is reported and skipped; one already there with other values fails, because
Opsera's data API cannot update it and a silent skip would leave the DAG author believing it
matched. A list goes on past a record Opsera refuses and fails at the end naming every record
that failed: nothing is dropped quietly.

A list is synced by up to ``max_concurrency`` workers (see :mod:`.workers`). Records that are
the same record in Opsera (the same email twice, say) go to one worker, in list order, so none
is created twice. The outcome of each record is kept by its position: the summary and the
returned records are in list order whatever order the workers finished in.

What differs between projects, people, org hierarchy links and mappings (how a record is
checked, found and created) lives in a :class:`RecordKind`; the loop below is shared.
"""

from __future__ import annotations

import logging
import reprlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_opsera.client import validation
from airflow_provider_opsera.exceptions import (
    OpseraAuthenticationError,
    OpseraBadResponseError,
    OpseraConflictError,
    OpseraConnectionConfigError,
    OpseraError,
    OpseraInputError,
    OpseraPermissionError,
)
from airflow_provider_opsera.writing.diffing import field_differences
from airflow_provider_opsera.writing.progress import ALREADY_THERE, CREATED, FAILED, PROGRESS_EVERY, SyncProgress
from airflow_provider_opsera.writing.record_checks import OpseraUnknownFieldsError
from airflow_provider_opsera.writing.workers import run_jobs

if TYPE_CHECKING:
    from airflow_provider_opsera.hooks.opsera import OpseraHook

IF_EXISTS_CHOICES = ("skip", "fail")
# Ten at a time: against a tenant answering in 100 ms a list takes under an eighth of the time it takes
# one record after another (BENCHMARKS.md, section 4); eight, with its overhead, cannot.
DEFAULT_MAX_CONCURRENCY = 10
# More threads than this mostly add 429s; Opsera documents no rate limit to size it by.
MAX_CONCURRENCY_LIMIT = 64
# Records named in one line about a warning or a problem many records share.
NAMED_IN_A_LINE = 5

# Not about one record: every record after it would fail the same way, so the sync stops.
STOPS_THE_SYNC = (OpseraAuthenticationError, OpseraPermissionError, OpseraConnectionConfigError)


class OpseraSyncError(OpseraError):
    """Some records of a list were not synced; the message names each one and why.

    ``summary`` is what the task pushes to XCom: the counts, each failed record with its reason,
    and the ids of the records created before the failures were known.
    """

    def __init__(self, message: str, *, failures: list[tuple[str, OpseraError]], summary: dict[str, Any]):
        super().__init__(message)
        self.failures = failures
        self.summary = summary


class OpseraInvalidRecordsError(OpseraSyncError, OpseraInputError):
    """Records of a list failed the checks made before sending: nothing was sent."""


class RecordKind(ABC):
    """How one kind of Insights record is checked, found in Opsera, compared and created."""

    noun = "record"
    plural = "records"

    def __init__(self, *, allow_unknown_fields: bool = False, log: logging.Logger | None = None):
        self.allow_unknown_fields = allow_unknown_fields
        self.log = log or logging.getLogger(__name__)

    @abstractmethod
    def prepare(self, raw: Any) -> tuple[dict[str, Any], list[str]]:
        """The body to send and any warnings; raises OpseraInputError before anything is sent."""

    @abstractmethod
    def name_of(self, raw: Any) -> str | None:
        """What identifies the record to a person (an id, an email), read leniently from raw input."""

    @abstractmethod
    def identity(self, body: dict[str, Any]) -> Hashable:
        """Equal for two bodies that are the same record in Opsera."""

    @abstractmethod
    def id_of(self, record: dict[str, Any], body: dict[str, Any]) -> Any:
        """What names a record just created (``record``, Opsera's answer to ``body``) in the summary."""

    @abstractmethod
    def find_existing(self, hook: OpseraHook, body: dict[str, Any]) -> dict[str, Any] | None:
        """The record as Opsera holds it, or None."""

    @abstractmethod
    def create(self, hook: OpseraHook, body: dict[str, Any]) -> Any:
        """Send the create call; returns Opsera's answer."""

    def differences(self, body: dict[str, Any], existing: dict[str, Any]) -> list[str]:
        """Readable lines for each requested value the existing record does not hold."""
        return field_differences(existing, body)

    def remember(self, record: dict[str, Any]) -> None:
        """Note a record just created, for kinds that look records up in a list read once."""


@dataclass
class Planned:
    """A record of a list that passed the checks: where it was in the list, what names it, what is sent."""

    position: int
    label: str
    body: dict[str, Any]


@dataclass
class Outcome:
    label: str
    status: str
    record: dict[str, Any] | None = None
    error: OpseraError | None = None
    created_id: Any = None


def sync_records(
    kind: RecordKind,
    records: Any,
    *,
    hook: OpseraHook,
    if_exists: str,
    log: logging.Logger,
    max_concurrency: int = 1,
    return_records: bool = False,
    progress_every: float = PROGRESS_EVERY,
) -> Any:
    """Create ``records`` (one dict, or a list of them) that Opsera does not have yet.

    Returns the record as Opsera holds it (created now or already there) for one record; for a
    list, a summary (:func:`summary_of`), or with ``return_records`` every record in list order.
    """
    validation.one_of(if_exists, IF_EXISTS_CHOICES, "if_exists")
    records = validation.structured(records, kind.noun)
    if records is None:
        raise OpseraInputError(f"{kind.noun} is required: a dict, or a list of dicts")
    if not isinstance(records, list):
        if not isinstance(records, Mapping):
            raise OpseraInputError(f"{kind.noun} must be a dict or a list of dicts, got {type(records).__name__}")
        return _sync_single(kind, records, hook, if_exists, log)
    if not records:
        log.info("No %s given: nothing to do.", kind.plural)
        return [] if return_records else summary_of(kind, [], 0.0)

    workers = checked_concurrency(max_concurrency)
    planned = check_all(kind, records, log)
    progress = SyncProgress(len(planned), kind.plural, log, every=progress_every)
    outcomes: list[Outcome | None] = [None] * len(planned)
    stopped: list[tuple[str, OpseraError]] = []
    stop = threading.Event()

    def work(worker_hook: OpseraHook, chain: list[Planned]) -> None:
        for item in chain:
            if stop.is_set():
                return
            try:
                outcome = _sync_one(kind, worker_hook, item.body, item.label, if_exists, log, logging.DEBUG)
            except STOPS_THE_SYNC as error:
                stopped.append((item.label, error))
                stop.set()
                raise
            except Exception as error:  # one record's failure, whatever it is: the others go on and are reported
                if not isinstance(error, OpseraError):
                    log.exception("%s failed unexpectedly", item.label)
                    error = OpseraError(f"{type(error).__name__}: {error}")
                log.debug("%s failed: %s", item.label, error)
                outcome = Outcome(item.label, FAILED, error=error)
            outcomes[item.position - 1] = outcome
            progress.add(outcome.status)

    try:
        run_jobs(
            chains(kind, planned, together=workers > 1),
            work,
            hook=hook,
            workers=workers,
            stop=stop,
            tick=progress.tick,
            seconds_to_next_tick=progress.seconds_to_next_line,
        )
    except STOPS_THE_SYNC:
        log.error(
            "Stopped at %s, as every record after it would fail the same way. Done by then: %s; not attempted: %d.",
            stopped[0][0],
            progress.counts(),
            len(planned) - progress.done - len(stopped),
        )
        raise

    finished = [outcome for outcome in outcomes if outcome is not None]
    log.info("%s", progress.summary())
    summary = summary_of(kind, finished, progress.elapsed())
    failures = [(o.label, o.error) for o in finished if o.status == FAILED and o.error is not None]
    if failures:
        raise OpseraSyncError(
            f"{len(failures)} of {len(planned)} {kind.plural} failed ({progress.counts()}); "
            f"re-running is safe, records already created are skipped:\n{problem_listing(kind, failures)}",
            failures=failures,
            summary=summary,
        )
    return [o.record for o in finished] if return_records else summary


def checked_concurrency(value: Any) -> int:
    workers = validation.positive_int(value, "max_concurrency")
    if workers > MAX_CONCURRENCY_LIMIT:
        raise OpseraInputError(f"max_concurrency must be at most {MAX_CONCURRENCY_LIMIT}, got {value!r}")
    return workers


def check_all(kind: RecordKind, records: list[Any], log: logging.Logger) -> list[Planned]:
    """Every record through the checks that need no request; raises naming every bad one."""
    planned: list[Planned] = []
    bad: list[tuple[str, OpseraError]] = []
    warned: dict[str, list[str]] = {}
    for position, raw in enumerate(records, start=1):
        label = _label(kind, raw, position)
        try:
            body, warnings = kind.prepare(raw)
        except OpseraInputError as error:
            bad.append((label, error))
            continue
        for warning in warnings:
            warned.setdefault(warning, []).append(label)
        planned.append(Planned(position, label, body))
    for warning, labels in warned.items():
        log.warning("%s (%s)", warning, first_few(labels))
    if bad:
        summary = summary_of(kind, [Outcome(label, FAILED, error=error) for label, error in bad], 0.0)
        raise OpseraInvalidRecordsError(
            f"{len(bad)} of {len(records)} {kind.plural} failed the checks made before sending; "
            f"nothing was sent to Opsera:\n{problem_listing(kind, bad)}",
            failures=bad,
            summary={**summary, "total": len(records)},
        )
    return planned


def first_few(labels: list[str]) -> str:
    """The first records of a list that share something, and how many more do."""
    more = len(labels) - NAMED_IN_A_LINE
    return ", ".join(labels[:NAMED_IN_A_LINE]) + (f" and {more:,} more" if more > 0 else "")


def problem_listing(kind: RecordKind, failures: list[tuple[str, OpseraError]]) -> str:
    """One line per distinct problem, naming how many records have it and the first few; shared advice once, last.

    200 records with the same misspelt field make one line, not 200 lines that each repeat the known fields.
    """
    by_problem: dict[str, list[str]] = {}
    advice: dict[str, None] = {}  # in first-seen order, each once
    for label, error in failures:
        if isinstance(error, OpseraUnknownFieldsError):
            problem = error.problem
            advice[error.advice] = None
        else:
            problem = str(error)
        by_problem.setdefault(problem, []).append(label)
    lines = []
    for problem, labels in by_problem.items():
        if len(labels) == 1:
            lines.append(f"  - {labels[0]}: {problem}")
        else:
            which = first_few([label.removeprefix(f"{kind.noun} ") for label in labels])
            lines.append(f"  - {len(labels):,} {kind.plural} ({which}): {problem}")
    return "\n".join([*lines, *advice])


def chains(kind: RecordKind, planned: list[Planned], *, together: bool) -> list[list[Planned]]:
    """The records in list order, as jobs for the workers.

    With ``together``, records that are the same record in Opsera share one job, so one worker
    handles them in list order (the first creates, the next find it) and none is created twice.
    """
    if not together:
        return [[item] for item in planned]
    by_identity: dict[Hashable, list[Planned]] = {}
    for item in planned:
        by_identity.setdefault(kind.identity(item.body), []).append(item)
    return list(by_identity.values())


def summary_of(kind: RecordKind, outcomes: list[Outcome], seconds: float) -> dict[str, Any]:
    """What a list sync pushes to XCom: counts, the failures with their reasons, the ids created."""
    count = {status: sum(1 for o in outcomes if o.status == status) for status in (CREATED, ALREADY_THERE, FAILED)}
    return {
        "kind": kind.plural,
        "total": len(outcomes),
        "created": count[CREATED],
        "already_there": count[ALREADY_THERE],
        "failed": count[FAILED],
        "created_ids": [o.created_id for o in outcomes if o.status == CREATED],
        "failures": [{"record": o.label, "error": str(o.error)} for o in outcomes if o.status == FAILED],
        "seconds": round(seconds, 3),
    }


def _sync_single(kind: RecordKind, raw: Mapping[str, Any], hook: OpseraHook, if_exists: str, log: logging.Logger):
    label = _label(kind, raw, None)
    body, warnings = kind.prepare(raw)
    for warning in warnings:
        log.warning("%s: %s", label, warning)
    outcome = _sync_one(kind, hook, body, label, if_exists, log, logging.INFO, subject=label)
    return outcome.record


def _sync_one(
    kind: RecordKind,
    hook: OpseraHook,
    body: dict[str, Any],
    label: str,
    if_exists: str,
    log: logging.Logger,
    level: int,
    *,
    subject: str = "the record",
) -> Outcome:
    """One checked record: created, already there, or an OpseraError; ``subject`` names it in error messages."""
    existing = kind.find_existing(hook, body)
    if existing is not None and not isinstance(existing, Mapping):
        raise OpseraBadResponseError(
            f"Opsera answered the read of {label} with {json_shape(existing)}, not a record (a JSON object): "
            "whether it exists cannot be told, so it was not created."
        )
    if existing is None:
        try:
            answer = kind.create(hook, body)
        except OpseraConflictError:
            # Created meanwhile by someone else (or Opsera knows it by a key we could not read).
            existing = kind.find_existing(hook, body)
            if existing is None:
                raise
        else:
            record = answer if isinstance(answer, dict) and answer else body
            kind.remember(record)
            log.log(level, "Created %s.", label)
            return Outcome(label, CREATED, record=record, created_id=kind.id_of(record, body))
    if if_exists == "fail":
        raise OpseraConflictError(f"{subject} exists in Opsera already (if_exists='fail').")
    differences = kind.differences(body, existing)
    if differences:
        raise OpseraConflictError(
            f"{subject} exists in Opsera with other values, and Opsera's data API cannot update it: "
            + "; ".join(differences)
            + ". Make the requested record match, or change the record in Opsera."
        )
    log.log(level, "%s is already in Opsera with the requested values: skipped.", label)
    return Outcome(label, ALREADY_THERE, record=existing)


def json_shape(value: Any) -> str:
    """What kind of JSON value ``value`` is, in words, with a short sample."""
    kinds = {list: "a JSON array", str: "a JSON string", bool: "a JSON boolean", int: "a number", float: "a number"}
    shown = reprlib.repr(value)
    return f"{kinds.get(type(value), type(value).__name__)} ({shown})"


def _label(kind: RecordKind, raw: Any, position: int | None) -> str:
    try:
        name = kind.name_of(raw) if isinstance(raw, Mapping) else None
    except Exception:  # a label must never be what fails
        name = None
    parts = [kind.noun]
    if position is not None:
        parts.append(f"#{position}")
    if name:
        parts.append(repr(name) if position is None else f"({name})")
    return " ".join(parts)

