"""Checks run before any request: Opsera stores whatever it is sent, so the client guards it."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from airflow_provider_opsera.exceptions import OpseraInputError

_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")
# Deliberately loose: one @, something on each side, a dot in the domain.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def object_id(value: Any, field: str) -> str:
    """An Opsera object id: 24 hexadecimal characters."""
    text = str(value).strip() if isinstance(value, str) else value
    if not isinstance(text, str) or not _OBJECT_ID.match(text):
        raise OpseraInputError(f"{field} must be a 24-character hexadecimal Opsera id, got {value!r}")
    return text


def positive_int(value: Any, field: str) -> int:
    if isinstance(value, bool):
        value = None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1 or (isinstance(value, float) and not value.is_integer()):
        raise OpseraInputError(f"{field} must be a positive whole number, got {value!r}")
    return number


def email(value: Any, field: str = "email") -> str:
    if not isinstance(value, str) or not _EMAIL.match(value.strip()):
        raise OpseraInputError(f"{field} must be an email address, got {value!r}")
    return value.strip()


def iso_date(value: Any, field: str = "date") -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    raise OpseraInputError(f"{field} must be a date as YYYY-MM-DD, got {value!r}")


def mapping(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise OpseraInputError(f"{field} must be a JSON object (a dict), got {type(value).__name__}")
    return dict(value)


def required(body: Mapping[str, Any], fields: Iterable[str], where: str) -> None:
    missing = [f for f in fields if body.get(f) in (None, "") or (isinstance(body.get(f), str) and not body[f].strip())]
    if missing:
        raise OpseraInputError(f"{where}: required field(s) missing or empty: {', '.join(missing)}")


def one_of(value: Any, allowed: Iterable[str], field: str) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise OpseraInputError(f"{field} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def json_body(body: Any, field: str) -> Any:
    """The body as it will be sent; refuses what JSON cannot carry instead of stringifying it."""
    try:
        json.dumps(body, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise OpseraInputError(f"{field} cannot be sent as JSON: {err}") from None
    return body


# -- values rendered from templates --------------------------------------------------------------


def structured(value: Any, field: str) -> Any:
    """A dict or list given directly, or as the text a template renders it to.

    Without ``render_template_as_native_obj`` a pulled XCom renders as text: JSON, or a
    Python literal such as ``{'name': 'x'}``. Both are read back here rather than refused.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text or text[0] not in "[{":
        return value
    try:
        return json.loads(text)
    except ValueError:
        pass
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise OpseraInputError(f"{field} looks like a list or dict but cannot be read as JSON: {text[:80]!r}") from None


def string(value: Any, field: str) -> str:
    """A non-empty string (surrounding spaces removed)."""
    if not isinstance(value, str) or not value.strip():
        shown = "an empty string" if isinstance(value, str) else f"{type(value).__name__} {value!r}"
        raise OpseraInputError(f"{field} must be a non-empty string, got {shown}")
    return value.strip()


# -- how often and how long a wait polls ---------------------------------------------------------

#: A poll at most once a second: more often only loads Opsera, where a step takes seconds at least.
MIN_POLL_INTERVAL = 1.0
#: A poll at least once a day: a longer gap is a wait nobody watches (and a typo more often than not).
MAX_POLL_INTERVAL = 86_400.0
#: The longest wait with a limit, 366 days; ``timeout=None`` waits without one.
MAX_TIMEOUT = 366 * 86_400.0


def read_seconds(value: Any) -> float | None:
    """A number, a ``timedelta``, or the text a template renders a number to, as seconds (None: none of them).

    The result may be infinite or NaN: what a caller accepts is its own rule.
    """
    if hasattr(value, "total_seconds"):
        value = value.total_seconds()
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _number_of_seconds(value: Any, field: str, accepted: str) -> float:
    number = read_seconds(value)
    if number is None or not math.isfinite(number):
        raise OpseraInputError(f"{field} must be {accepted}, got {value!r}")
    return number


def poll_interval(value: Any, field: str = "poll_interval") -> float:
    """Seconds between two status reads of a wait: finite, from one second to a day."""
    accepted = f"a number of seconds from {MIN_POLL_INTERVAL:g} to {MAX_POLL_INTERVAL:g} (a day)"
    number = _number_of_seconds(value, field, accepted)
    if not MIN_POLL_INTERVAL <= number <= MAX_POLL_INTERVAL:
        raise OpseraInputError(f"{field} must be {accepted}, got {value!r}")
    return number


def timeout(value: Any, field: str = "timeout", *, allow_none: bool = True) -> float | None:
    """Seconds a wait may last: finite, more than 0 and at most 366 days; None (or, rendered, "None") for no limit."""
    if allow_none and (value is None or (isinstance(value, str) and value.strip() in ("", "None"))):
        return None
    accepted = f"a number of seconds more than 0 and at most {MAX_TIMEOUT:.0f} (366 days)"
    if allow_none:
        accepted += ", or None for no limit"
    number = _number_of_seconds(value, field, accepted)
    if not 0 < number <= MAX_TIMEOUT:
        raise OpseraInputError(f"{field} must be {accepted}, got {value!r}")
    return number


def is_template(value: Any) -> bool:
    """Whether ``value`` is Jinja text that Airflow renders before ``execute`` (checked once rendered)."""
    return isinstance(value, str) and any(mark in value for mark in ("{{", "{%", "{#"))


def rendered_later(value: Any) -> bool:
    """Whether ``value`` gets its value only when the task runs: Jinja text, or an XComArg (``task.output``)."""
    return is_template(value) or (hasattr(value, "resolve") and hasattr(value, "iter_references"))


def checked_at_parse(check: Callable[[Any], Any], value: Any) -> Any:
    """A value checked when the DAG is parsed; a template or an XComArg is checked once rendered, in ``execute``."""
    return value if rendered_later(value) else check(value)
