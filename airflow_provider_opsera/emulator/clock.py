"""Emulated time: runs, token expiry and audit log windows all read this clock.

Emulated time is a unix timestamp. It starts at the real wall time (so audit log
dates look like today) and then moves either with real time multiplied by a scale
factor, or, for deterministic tests, only when ``advance`` is called.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone


class EmulatedClock:
    def __init__(self, time_scale: float = 1.0, manual: bool = False, start: float | None = None):
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = float(time_scale)
        self.manual = manual
        self._start = time.time() if start is None else float(start)
        self._real_start = time.monotonic()
        self._wall_start = time.time()
        self._advanced = 0.0

    def now(self) -> float:
        if self.manual:
            return self._start + self._advanced
        elapsed = time.monotonic() - self._real_start
        return self._start + elapsed * self.time_scale + self._advanced

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._advanced += float(seconds)
        return self.now()

    def resume_from(self, saved_now: float) -> None:
        """Never let time go backwards across a restart from a saved state."""
        current = self.now()
        if saved_now > current:
            self._advanced += saved_now - current

    def wall_time(self, emulated: float) -> float | None:
        """The real unix time at which the scaled clock showed ``emulated`` (None on a manual clock)."""
        if self.manual:
            return None
        return self._wall_start + (emulated - self._start - self._advanced) / self.time_scale

    def describe(self) -> dict:
        return {
            "now": self.now(),
            "iso": iso(self.now()),
            "mode": "manual" if self.manual else "scaled",
            "time_scale": self.time_scale,
        }


def iso(timestamp: float) -> str:
    """Opsera's timestamp format: ``2021-07-30T16:13:52.109Z``."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def utc_date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d")
