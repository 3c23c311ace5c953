"""The one table that knows which Opsera run and task statuses are terminal.

Only ``success`` appears in Opsera's v1 document; the other strings come from its
portal, so every comparison is case-insensitive and an unknown value is treated as
still in progress (a timeout bounds every wait).
"""

from __future__ import annotations

import enum


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

    @classmethod
    def normalise(cls, status: object) -> str:
        return str(status or "").strip().lower()

    @classmethod
    def outcome(cls, status: object) -> RunOutcome:
        value = cls.normalise(status)
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
    def is_terminal(cls, status: object) -> bool:
        return cls.normalise(status) in cls.TERMINAL_STATUSES
