"""Trigger arguments read the lenient way: whatever row Airflow's database holds, the trigger loads.

Airflow rebuilds a trigger in the triggerer from the arguments its ``serialize()`` stored,
perhaps by an earlier version of this provider, whose checks were looser (a poll every
0.5 s, a timeout of 0) or had other arguments. Airflow 3.3's trigger runner catches only a
``TypeError`` from a trigger's ``__init__``: any other exception stops every trigger and
asset watcher of that triggerer, and the next triggerer to take the row. So a trigger's
``__init__`` never raises for a value: what is out of today's range is brought into it,
with a warning, and what cannot be read is left for the first poll to refuse (the
client's checks end the wait with an ``error`` event that fails its task).

The operators and sensors still refuse bad values before a trigger is made
(:mod:`airflow_provider_opsera.client.validation`); this module is only for the triggers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from airflow_provider_opsera.client import validation
from airflow_provider_opsera.exceptions import OpseraInputError

Warn = Callable[[str], None]


def warner(trigger: Any) -> Warn:
    """Log a warning about one of ``trigger``'s arguments, naming its class."""
    name = type(trigger).__name__
    return lambda text: trigger.log.warning("%s: %s", name, text)


def poll_interval(value: Any, warn: Warn, default: float = 30.0) -> float:
    """Seconds between polls, brought into today's range (1 s to a day); ``default`` when not a number."""
    low, high = validation.MIN_POLL_INTERVAL, validation.MAX_POLL_INTERVAL
    number = validation.read_seconds(value)
    if number is None or math.isnan(number):
        warn(f"poll_interval {value!r} is not a number of seconds: polling every {default:g} s.")
        return default
    bounded = min(max(number, low), high)
    if bounded != number:
        warn(f"poll_interval {value!r} is outside {low:g} to {high:g} s: polling every {bounded:g} s.")
    return bounded


def deadline(timeout: Any, end_time: Any, clock: Callable[[], float], warn: Warn) -> tuple[float | None, float | None]:
    """``(timeout, end_time)``: the limit in seconds (None: none) and the absolute deadline (epoch seconds).

    A stored ``end_time`` is the deadline the wait was given, whatever ``timeout`` says;
    without one (a trigger just made) it is counted from now. A timeout of 0 or less ends
    the wait at its first poll, as the versions that accepted it did; an infinite or
    unreadable one is no limit, as it was there.
    """
    limit = _limit(timeout, warn)
    at = validation.read_seconds(end_time) if end_time is not None else None
    if at is not None and not math.isfinite(at):
        at = None
    if end_time is not None and at is None:
        warn(f"end_time {end_time!r} is not a point in time: the deadline is counted from the timeout instead.")
    if at is None and limit is not None:
        at = clock() + limit
    return limit, at


def _limit(value: Any, warn: Warn) -> float | None:
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        return None
    number = validation.read_seconds(value)
    if number is None or not math.isfinite(number):
        warn(f"timeout {value!r} is not a finite number of seconds: the wait has no limit.")
        return None
    if number <= 0:
        warn(f"timeout {value!r} is not more than 0: the wait times out at its first poll.")
        return 0.0
    if number > validation.MAX_TIMEOUT:
        warn(f"timeout {value!r} is over {validation.MAX_TIMEOUT:.0f} s (366 days): waiting that long at most.")
        return validation.MAX_TIMEOUT
    return number


def checked_or_kept(check: Callable[[Any, str], Any], value: Any, field: str, warn: Warn) -> Any:
    """``check(value, field)``, or ``value`` as it is when the check refuses it (the first poll refuses it then)."""
    try:
        return check(value, field)
    except OpseraInputError as error:
        warn(f"{error}: the first poll will fail over it.")
        return value


def choices(values: Iterable[str] | str | None, allowed: Iterable[str], field: str, warn: Warn) -> list[str] | None:
    """The known values of ``values``, sorted; None (all of them) when it names none."""
    if values is None:
        return None
    allowed = tuple(allowed)
    given = [values] if isinstance(values, str) else list(values) if isinstance(values, Iterable) else [values]
    known = sorted({str(value).strip().lower() for value in given} & set(allowed))
    unknown = [value for value in given if str(value).strip().lower() not in allowed]
    if unknown:
        warn(f"{field}: {', '.join(map(repr, unknown))} not among {', '.join(allowed)}; left out.")
    if not known:
        warn(f"{field} names none of {', '.join(allowed)}: taking all of them.")
        return None
    return known


def left_out(unknown: dict[str, Any], warn: Warn) -> None:
    """Say which stored arguments this version does not know (another version of the provider wrote them)."""
    if unknown:
        warn(f"arguments this version does not know, left out: {', '.join(sorted(unknown))}.")
