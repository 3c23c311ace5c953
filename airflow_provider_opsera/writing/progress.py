"""Progress of a list sync in the task log: a line at a steady pace, not one per record.

A list of thousands of records would otherwise write thousands of INFO lines; the
per-record lines go to DEBUG and this tally says, every few seconds, how far the sync
is, how fast it goes and how long it has left.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

CREATED, ALREADY_THERE, FAILED = "created", "already there", "failed"
STATUSES = (CREATED, ALREADY_THERE, FAILED)

#: seconds between two progress lines
PROGRESS_EVERY = 10.0


class SyncProgress:
    """Counts of a list sync, safe to update from several threads, logged at most every ``every`` seconds."""

    def __init__(
        self,
        total: int,
        plural: str,
        log: logging.Logger,
        *,
        every: float = PROGRESS_EVERY,
        clock: Any = time.monotonic,
    ) -> None:
        self.total = total
        self.plural = plural
        self.log = log
        self.every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self.started = clock()
        self._last_line = self.started

    def add(self, status: str) -> None:
        with self._lock:
            self._counts[status] += 1

    @property
    def done(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def counts(self) -> str:
        with self._lock:
            return ", ".join(f"{self._counts[status]:,} {status}" for status in STATUSES)

    def elapsed(self) -> float:
        return self._clock() - self.started

    def seconds_to_next_line(self) -> float:
        return max(0.0, self._last_line + self.every - self._clock())

    def tick(self) -> None:
        """Log a progress line when ``every`` seconds have passed since the last one."""
        now = self._clock()
        if now - self._last_line < self.every:
            return
        self._last_line = now
        done, elapsed = self.done, now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        left = f"about {_duration((self.total - done) / rate)} left" if rate > 0 else "time left not known yet"
        self.log.info(
            "Opsera %s: %s of %s done (%s), %.1f/s, %s.",
            self.plural,
            f"{done:,}",
            f"{self.total:,}",
            self.counts(),
            rate,
            left,
        )

    def summary(self) -> str:
        """The one line a finished sync ends with."""
        elapsed = self.elapsed()
        return f"Opsera {self.plural}: {self.counts()}, in {_duration(elapsed)}."


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
