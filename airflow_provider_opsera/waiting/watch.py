"""What waiting on an Opsera run means, shared by the worker poll loop, the sensors and the triggers.

One place turns a status into an outcome (through :mod:`airflow_provider_opsera.client.status`),
says once that a run waits at an approval gate or reports a status nobody knows,
decides which errors a wait may ride out, and turns a final outcome into the task's
result or its exception.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from airflow_provider_opsera._compat import AirflowException, AirflowFailException
from airflow_provider_opsera.client.status import OpseraRunStatus, RunOutcome
from airflow_provider_opsera.exceptions import (
    OpseraBadResponseError,
    OpseraError,
    OpseraRateLimitError,
    OpseraServerError,
    OpseraSummaryShapeError,
    OpseraTransportError,
    OpseraUnknownStatusError,
)

# Event statuses a trigger sends back to the task (the operator's and sensors' resume methods read them).
SUCCESS = "success"
FAILED = "failed"
STOPPED = "stopped"
TIMEOUT = "timeout"
ERROR = "error"

EVENT_STATUS_OF = {RunOutcome.SUCCEEDED: SUCCESS, RunOutcome.FAILED: FAILED, RunOutcome.STOPPED: STOPPED}

#: consecutive failed polls (each already retried by the hook) a wait rides out before giving up
TOLERATED_FAILED_POLLS = 5

#: seconds a wait rides out a status this provider does not know before it fails naming it: long enough for a
#: passing state of a tenant's own to go by, short enough that a status Opsera adds never makes a wait endless
UNKNOWN_STATUS_GRACE = 600.0


class StatusWatch:
    """Turns each status Opsera reports into a :class:`RunOutcome`, logging what a person should know once.

    ``tenant`` maps the tenant's own statuses (the connection's ``status_map`` extra). A status
    neither knows counts as still in progress for ``unknown_grace`` seconds on ``clock``; after
    that, :meth:`observe` raises :class:`OpseraUnknownStatusError` naming it and how to map it
    (``unknown_grace=None``: never, for a watcher that never ends).
    """

    def __init__(
        self,
        subject: str,
        log: Any,
        *,
        tenant: Iterable[tuple[str, RunOutcome]] = (),
        unknown_grace: float | None = UNKNOWN_STATUS_GRACE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.subject = subject
        self.log = log
        self.tenant = dict(tenant)
        self.unknown_grace = unknown_grace
        self._clock = clock
        self._paused = False
        self._unknown: set[str] = set()
        self._unknown_since: float | None = None

    def observe(self, status: object) -> RunOutcome:
        outcome = OpseraRunStatus.outcome(status, self.tenant)
        if outcome is not RunOutcome.UNKNOWN:
            self._unknown_since = None
        if outcome is RunOutcome.PAUSED:
            if not self._paused:  # once per pause, not once per poll
                self.log.info("%s is paused: it waits for an approval in Opsera. Still waiting for it.", self.subject)
            self._paused = True
            return outcome
        if self._paused and not outcome.is_terminal:
            self.log.info("%s is running again.", self.subject)
        self._paused = False
        if outcome is RunOutcome.UNKNOWN:
            self._ride_out_unknown(OpseraRunStatus.normalise(status))
        return outcome

    def _ride_out_unknown(self, value: str) -> None:
        now = self._clock()
        if self._unknown_since is None:
            self._unknown_since = now
        how_to_map = (
            f"If it is a status of your tenant, say what it means in the connection's 'status_map' extra, e.g. "
            f'{{"{value}": "running"}} (or success, failed, stopped, paused).'
        )
        if value not in self._unknown:
            self._unknown.add(value)
            limit = f" for up to {self.unknown_grace:g} s" if self.unknown_grace is not None else ""
            self.log.warning(
                "%s reports status %r, which this provider does not know: treating it as still in progress%s. %s",
                self.subject,
                value,
                limit,
                how_to_map,
            )
        if self.unknown_grace is not None and now - self._unknown_since >= self.unknown_grace:
            raise OpseraUnknownStatusError(
                f"{self.subject} has reported status {value!r}, which this provider does not know, for "
                f"{now - self._unknown_since:.0f} s: failing rather than waiting without end. {how_to_map}"
            )


def is_transient(error: BaseException) -> bool:
    """Whether a failed read is worth making again later (an outage, not a refusal or an answer of another shape)."""
    if isinstance(error, OpseraSummaryShapeError):
        return False
    return isinstance(error, (OpseraServerError, OpseraRateLimitError, OpseraTransportError, OpseraBadResponseError))


class FailedPolls:
    """Counts consecutive failed status reads; a refusal (401, 403, 404...) ends the wait at once."""

    def __init__(self, tolerated: int = TOLERATED_FAILED_POLLS) -> None:
        self.tolerated = tolerated
        self.count = 0

    def ok(self) -> None:
        self.count = 0

    def tolerate(self, error: BaseException) -> bool:
        """Record a failed poll; True while the wait should carry on."""
        if not isinstance(error, OpseraError) or not is_transient(error):
            return False
        self.count += 1
        return self.count < self.tolerated


class Deadline:
    """An absolute point in time on ``clock``, or none.

    Triggers use wall-clock time, so a deadline rebuilt after a triggerer restart is the same.
    """

    def __init__(self, end_time: float | None, clock: Callable[[], float] = time.time) -> None:
        self.end_time = end_time
        self._clock = clock

    @classmethod
    def after(cls, seconds: float | None, clock: Callable[[], float] = time.time) -> Deadline:
        return cls(None if seconds is None else clock() + seconds, clock)

    def remaining(self) -> float | None:
        return None if self.end_time is None else self.end_time - self._clock()

    def passed(self) -> bool:
        remaining = self.remaining()
        return remaining is not None and remaining <= 0

    def next_sleep(self, interval: float) -> float:
        remaining = self.remaining()
        return interval if remaining is None else max(0.0, min(interval, remaining))


def outcome_error(event_status: str, text: str, console_tail: str = "") -> Exception:
    """The exception that fails the task for a final outcome other than success.

    A failed run (or a wait that could not read the status) may do better on a retry, so
    it raises a plain AirflowException. A stopped run does not retry: a person stopped
    it, or this provider did after a timeout (a retry would only follow it).
    """
    if console_tail:
        text = f"{text}\nLast console lines:\n{console_tail}"
    if event_status in (STOPPED, TIMEOUT):
        return AirflowFailException(text)
    return AirflowException(text)
