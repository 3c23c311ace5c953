"""Creating Opsera records one at a time or from a list, so that re-running a DAG is safe.

Each record is validated, looked up, and created only when Opsera does not have it yet.
A record already there with the requested values is reported and skipped; one already
there with other values fails, because Opsera's data API cannot update it and a silent
skip would leave the DAG author believing it matched. A list goes on past a bad record
and fails at the end naming every record that failed: nothing is dropped quietly.

What differs between projects, people, org hierarchy links and mappings (how a record is
checked, found and created) lives in a :class:`RecordKind`; the loop below is shared.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_opsera.client import validation
from airflow_provider_opsera.exceptions import (
    OpseraAuthenticationError,
    OpseraConflictError,
    OpseraConnectionConfigError,
    OpseraError,
    OpseraInputError,
    OpseraPermissionError,
)
from airflow_provider_opsera.writing.diffing import field_differences

if TYPE_CHECKING:
    from airflow_provider_opsera.hooks.opsera import OpseraHook

IF_EXISTS_CHOICES = ("skip", "fail")

# Not about one record: every record after it would fail the same way, so the sync stops.
STOPS_THE_SYNC = (OpseraAuthenticationError, OpseraPermissionError, OpseraConnectionConfigError)

CREATED, ALREADY_THERE, FAILED = "created", "already there", "failed"


class OpseraSyncError(OpseraError):
    """Some records of a list were not synced; the message names each one and why."""

    def __init__(self, message: str, *, failures: list[tuple[str, OpseraError]]):
        super().__init__(message)
        self.failures = failures


class RecordKind(ABC):
    """How one kind of Insights record is checked, found in Opsera, compared and created."""

    noun = "record"
    plural = "records"

    def __init__(
        self, hook: OpseraHook, *, allow_unknown_fields: bool = False, log: logging.Logger | None = None
    ):
        self.hook = hook
        self.allow_unknown_fields = allow_unknown_fields
        self.log = log or logging.getLogger(__name__)

    @abstractmethod
    def prepare(self, raw: Any) -> tuple[dict[str, Any], list[str]]:
        """The body to send and any warnings; raises OpseraInputError before anything is sent."""

    @abstractmethod
    def name_of(self, raw: Any) -> str | None:
        """What identifies the record to a person (an id, an email), read leniently from raw input."""

    @abstractmethod
    def find_existing(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """The record as Opsera holds it, or None."""

    @abstractmethod
    def create(self, body: dict[str, Any]) -> Any:
        """Send the create call; returns Opsera's answer."""

    def differences(self, body: dict[str, Any], existing: dict[str, Any]) -> list[str]:
        """Readable lines for each requested value the existing record does not hold."""
        return field_differences(existing, body)

    def remember(self, record: dict[str, Any]) -> None:
        """Note a record just created, for kinds that look records up in a list read once."""


@dataclass
class Outcome:
    label: str
    status: str
    record: dict[str, Any] | None = None
    error: OpseraError | None = None


def sync_records(kind: RecordKind, records: Any, *, if_exists: str, log: logging.Logger) -> Any:
    """Create ``records`` (one dict, or a list of them) that Opsera does not have yet.

    Returns the record (for one) or the records in input order (for a list), each as Opsera
    holds it: created now or already there.
    """
    validation.one_of(if_exists, IF_EXISTS_CHOICES, "if_exists")
    records = validation.structured(records, kind.noun)
    if records is None:
        raise OpseraInputError(f"{kind.noun} is required: a dict, or a list of dicts")
    single = not isinstance(records, list)
    if single and not isinstance(records, Mapping):
        raise OpseraInputError(f"{kind.noun} must be a dict or a list of dicts, got {type(records).__name__}")
    items = [records] if single else records
    if not items:
        log.info("No %s given: nothing to do.", kind.plural)
        return []

    outcomes: list[Outcome] = []
    for position, raw in enumerate(items, start=1):
        label = _label(kind, raw, None if single else position)
        try:
            outcomes.append(_sync_one(kind, raw, label, if_exists, log, subject=label if single else "the record"))
        except STOPS_THE_SYNC:
            if not single:
                log.error(
                    "Stopped at %s, as every record after it would fail the same way. Before it: %s; "
                    "not attempted: %d.",
                    label,
                    _counts(outcomes),
                    len(items) - position,
                )
            raise
        except OpseraError as error:
            log.error("%s failed: %s", label, error)
            outcomes.append(Outcome(label, FAILED, error=error))

    failures = [(o.label, o.error) for o in outcomes if o.status == FAILED and o.error is not None]
    log.info("Opsera %s: %s.", kind.plural, _counts(outcomes))
    if failures:
        if single:
            raise failures[0][1]
        listing = "\n".join(f"  - {label}: {error}" for label, error in failures)
        raise OpseraSyncError(
            f"{len(failures)} of {len(items)} {kind.plural} failed ({_counts(outcomes)}); "
            f"re-running is safe, records already created are skipped:\n{listing}",
            failures=failures,
        )
    results = [o.record for o in outcomes]
    return results[0] if single else results


def _sync_one(
    kind: RecordKind, raw: Any, label: str, if_exists: str, log: logging.Logger, *, subject: str
) -> Outcome:
    """One record: created, already there, or an OpseraError; ``subject`` names it in error messages."""
    body, warnings = kind.prepare(raw)
    for warning in warnings:
        log.warning("%s: %s", label, warning)
    existing = kind.find_existing(body)
    if existing is None:
        try:
            answer = kind.create(body)
        except OpseraConflictError:
            # Created meanwhile by someone else (or Opsera knows it by a key we could not read).
            existing = kind.find_existing(body)
            if existing is None:
                raise
        else:
            record = answer if isinstance(answer, dict) and answer else body
            kind.remember(record)
            log.info("Created %s.", label)
            return Outcome(label, CREATED, record=record)
    if if_exists == "fail":
        raise OpseraConflictError(f"{subject} exists in Opsera already (if_exists='fail').")
    differences = kind.differences(body, existing)
    if differences:
        raise OpseraConflictError(
            f"{subject} exists in Opsera with other values, and Opsera's data API cannot update it: "
            + "; ".join(differences)
            + ". Make the requested record match, or change the record in Opsera."
        )
    log.info("%s is already in Opsera with the requested values: skipped.", label)
    return Outcome(label, ALREADY_THERE, record=existing)


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


def _counts(outcomes: list[Outcome]) -> str:
    tally = {status: sum(1 for o in outcomes if o.status == status) for status in (CREATED, ALREADY_THERE, FAILED)}
    return ", ".join(f"{count} {status}" for status, count in tally.items())
