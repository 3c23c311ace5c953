"""The one table that knows which Opsera run and task statuses are terminal.

Only ``success`` appears in Opsera's v1 document; the other strings come from its
portal, so every comparison is case-insensitive. A tenant whose runs report other
strings maps them to outcomes in its connection's ``status_map`` extra
(:func:`tenant_statuses`); a status still unknown is waited through for a while and then
fails the wait naming it (:mod:`airflow_provider_opsera.waiting.watch`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any


class RunOutcome(str, enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    PAUSED = "paused"
    IN_PROGRESS = "in_progress"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        return self in (RunOutcome.SUCCEEDED, RunOutcome.FAILED, RunOutcome.STOPPED)


class OpseraRunStatus:
    """Status strings of pipeline runs and task runs, grouped by what they mean."""

    SUCCEEDED = frozenset({"success", "passed", "successful"})
    FAILED = frozenset({"failed", "failure", "error"})
    STOPPED = frozenset({"stopped", "aborted", "halted", "rejected"})
    IN_PROGRESS = frozenset({"running", "queued", "created", "pending", "processing event"})
    PAUSED = frozenset({"paused"})

    TERMINAL_STATUSES = SUCCEEDED | FAILED | STOPPED
    NON_TERMINAL_STATUSES = IN_PROGRESS | PAUSED
    #: in progress, but not begun: Opsera may queue a run requested while another one runs
    NOT_BEGUN = frozenset({"queued", "created", "pending"})

    @classmethod
    def normalise(cls, status: object) -> str:
        return str(status or "").strip().lower()

    @classmethod
    def outcome(cls, status: object, tenant: Mapping[str, RunOutcome] | None = None) -> RunOutcome:
        """What ``status`` means; ``tenant`` maps a tenant's own strings (and wins over the table)."""
        value = cls.normalise(status)
        if tenant and value in tenant:
            return tenant[value]
        for group, outcome in (
            (cls.SUCCEEDED, RunOutcome.SUCCEEDED),
            (cls.FAILED, RunOutcome.FAILED),
            (cls.STOPPED, RunOutcome.STOPPED),
            (cls.PAUSED, RunOutcome.PAUSED),
            (cls.IN_PROGRESS, RunOutcome.IN_PROGRESS),
        ):
            if value in group:
                return outcome
        return RunOutcome.UNKNOWN

    @classmethod
    def has_begun(cls, status: object, tenant: Mapping[str, RunOutcome] | None = None) -> bool:
        """Whether a run reporting ``status`` has begun (a pipeline runs one run at a time: the run before has ended)."""
        outcome = cls.outcome(status, tenant)
        return outcome is not RunOutcome.UNKNOWN and cls.normalise(status) not in cls.NOT_BEGUN

    @classmethod
    def is_terminal(cls, status: object) -> bool:
        return cls.normalise(status) in cls.TERMINAL_STATUSES


#: the words a ``status_map`` extra may map a status to, and the outcome each one names
STATUS_MAP_WORDS = {
    "success": RunOutcome.SUCCEEDED,
    "failed": RunOutcome.FAILED,
    "stopped": RunOutcome.STOPPED,
    "paused": RunOutcome.PAUSED,
    "running": RunOutcome.IN_PROGRESS,
}


def tenant_statuses(value: Any) -> tuple[tuple[str, RunOutcome], ...]:
    """A ``status_map`` extra (``{"deployed": "success", ...}``) as pairs; ValueError naming what is wrong."""
    if value in (None, "", {}):
        return ()
    if not isinstance(value, Mapping):
        raise ValueError('must be a JSON object mapping a status to an outcome, e.g. {"deployed": "success"}')
    pairs = []
    for status, word in value.items():
        outcome = STATUS_MAP_WORDS.get(OpseraRunStatus.normalise(word))
        if not OpseraRunStatus.normalise(status) or outcome is None:
            raise ValueError(
                f"maps {status!r} to {word!r}: each status must map to one of {', '.join(STATUS_MAP_WORDS)}"
            )
        pairs.append((OpseraRunStatus.normalise(status), outcome))
    return tuple(sorted(pairs))
