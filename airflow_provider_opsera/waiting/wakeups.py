"""When a waiting trigger wakes: each wait's own poll times, moved up to a grid shared by the event loop.

Airflow's triggerer runs thousands of deferred waits in one event loop. A wait that sleeps
on a timer of its own wakes the loop on its own: one pass of the loop (a ``select`` call,
the timer heap, the ready queue) for every poll, and its response arrives in yet another
pass. Waits that wake at the very same moment of the loop's clock are popped from the
timer heap in one pass, send their requests together and mostly read their answers in
the same passes, which costs the triggerer noticeably less CPU per poll.

Two things decide a wait's wake-ups:

* :class:`PollSchedule`: its polls are planned one poll interval apart, counted from when
  the wait started, so the phases of many waits stay spread over the poll interval as
  their tasks deferred, and a wait makes one poll per interval (a wake-up moved later
  does not push the next ones back). A read that ends more than a tenth of the interval
  after its planned time (an overloaded triggerer or Opsera, the client's retries during
  an outage) puts the next poll a full interval after it: then the waits poll less
  often, as a wait that sleeps one interval after each read does, instead of piling up
  requests.
* :func:`sleep_on_grid`: the sleep to a planned poll ends at the first point of the grid,
  multiples of :data:`GRID_STEP` seconds of ``loop.time()``, at or after it. Every wait
  of a loop uses the same grid, whatever its poll interval, so the waits due within one
  step share one wake-up. A wake-up is late by less than one step, and so is a deadline
  (a wait never sleeps past it by more than one step).

The step, 1/8 s, was picked from measurements (BENCHMARKS.md, section 2, against 1/16 and
1/4 s): there it halves the CPU per poll at 1,000 waits polled every 5 s and at 200 polled
every second. A slot gathers ``N x step / poll interval`` waits, about 25 of 1,000 waits
polled every 5 s, and there are ``poll interval / step`` slots per interval, 40 at 5 s,
8 at 1 s, so the requests Opsera sees from one triggerer come in small bursts spread over
the interval, never all at once. The price: the waits woken together each need an HTTP
connection at the same time, so the shared session keeps about as many pooled
connections as a slot holds waits (at most its limit of 100). A power of two keeps the
arithmetic exact: every grid point is the same float for every wait. Polls planned
closer together than one step (a poll interval below 1/8 s) are made once per step.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

#: seconds between two points of the wake-up grid (a power of two: exact in binary floating point)
GRID_STEP = 0.125


def grid_point(when: float, step: float = GRID_STEP) -> float:
    """The first point of the grid at or after ``when`` (seconds of the loop's clock)."""
    return math.ceil(when / step) * step


def _wake(future: asyncio.Future) -> None:
    if not future.done():  # cancelled meanwhile
        future.set_result(None)


async def sleep_on_grid(delay: float, step: float = GRID_STEP) -> None:
    """Sleep at least ``delay`` seconds, until the first grid point of the running loop's clock after that.

    Scheduled with ``loop.call_at`` at the grid point itself, so the waits due in one slot
    share the timer deadline and wake in the same pass of the loop.
    """
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    handle = loop.call_at(grid_point(loop.time() + max(0.0, delay), step), _wake, future)
    try:
        await future
    finally:
        handle.cancel()


class PollSchedule:
    """A wait's planned polls: one every ``interval`` seconds on ``clock``, from when it was made.

    A read that ends less than ``slack`` after its planned time (by default a tenth of the
    interval, at least one grid step) leaves the plan as it is; after a later one, the
    next poll comes a full interval after it ended, and the plan goes on from there.
    """

    __slots__ = ("interval", "slack", "_clock", "_due")

    def __init__(self, interval: float, clock: Callable[[], float] = time.time, slack: float | None = None) -> None:
        self.interval = interval
        self.slack = min(interval, max(GRID_STEP, interval / 10) if slack is None else slack)
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
