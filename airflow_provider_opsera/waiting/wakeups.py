"""When a waiting trigger polls: one poll interval apart, counted from when the wait started.

:class:`PollSchedule` plans a wait's polls one poll interval apart from its start, so the phases of
the many waits of a triggerer stay spread over the poll interval as their tasks deferred, and a wait
makes one poll per interval (a read that takes a moment does not push the next ones back). A read
that ends more than a tenth of the interval after its planned time (an overloaded triggerer or
Opsera, the client's retries during an outage) puts the next poll a full interval after it: then
the waits poll less often, as a wait that sleeps one interval after each read does, instead of
piling up requests.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class PollSchedule:
    """A wait's planned polls: one every ``interval`` seconds on ``clock``, from when it was made.

    A read that ends less than ``slack`` after its planned time (by default a tenth of the
    interval) leaves the plan as it is; after a later one, the next poll comes a full interval
    after it ended, and the plan goes on from there.
    """

    __slots__ = ("interval", "slack", "_clock", "_due")

    def __init__(self, interval: float, clock: Callable[[], float] = time.time, slack: float | None = None) -> None:
        self.interval = interval
        self.slack = min(interval, interval / 10 if slack is None else slack)
        self._clock = clock
        self._due = clock() + interval
    def sleep_before_next(self) -> float:
        """Seconds from now to the next poll, which this call plans."""
        now = self._clock()
        due = self._due
        if due < now + self.interval - self.slack:  # the last read, or a pause, ran late: a full interval from now
            due = now + self.interval
        self._due = due + self.interval
        return due - now
