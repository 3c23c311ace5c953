"""Turning an HTTP answer into data or a typed error, the same way for the sync and async clients."""

from __future__ import annotations

import email.utils
import json
import math
import re
import reprlib
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_opsera.client.api import RECORD_CAP, Endpoint
from airflow_provider_opsera.client.redaction import redact, shortened
from airflow_provider_opsera.client.scopes import scope_words, token_scopes
from airflow_provider_opsera.client.token import pasted_prefix_note
from airflow_provider_opsera.exceptions import (
    OpseraAuthenticationError,
    OpseraBadResponseError,
    OpseraConflictError,
    OpseraError,
    OpseraNotFoundError,
    OpseraPermissionError,
    OpseraRateLimitError,
    OpseraServerError,
    OpseraSummaryShapeError,
    OpseraValidationError,
)

if TYPE_CHECKING:
    from airflow_provider_opsera.client.connection import OpseraConnectionSettings

SNIPPET_CHARS = 160
#: a status word is short; a longer "status" is not one (and would flood the log it is reported in)
MAX_STATUS_CHARS = 100
#: Opsera's message as a wait reports it (its event, the task's error) is cut to this many characters
MAX_MESSAGE_CHARS = 2000
_JWT = re.compile(r"eyJ[\w-]*\.[\w-]*\.?[\w-]*")
_BEARER = re.compile(r"(?i)(bearer|authorization)[\s:=\"']+[^\s\"',}]+")
_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def scrub(text: str, limit: int = SNIPPET_CHARS) -> str:
    """A short, single-line excerpt of a body with anything token-like removed."""
    text = redact(text)[: 20 * limit]  # redacted before it is cut: half a token is still a secret
    text = _TAGS.sub(" ", text)
    text = _JWT.sub("***", text)
    text = _BEARER.sub(r"\1 ***", text)
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(endpoint: Endpoint) -> str:
    return f"Opsera {endpoint.method} {endpoint.path}"


def _loads(text: str) -> Any:
    """``json.loads`` that fails with ValueError alone (a deeply nested body exhausts the recursion limit)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def parse_json(text: str, endpoint: Endpoint, status: int) -> Any:
    if not text.strip():
        return None
    try:
        return _loads(text)
    except ValueError as error:
        raise OpseraBadResponseError(
            f"{describe(endpoint)} answered HTTP {status} with a body that is not JSON ({error}): {scrub(text)!r}",
            status_code=status,
            endpoint=endpoint.name,
        ) from None


class _RedactedRepr(reprlib.Repr):
    """A short repr whose strings lose a known secret before they are cut: half a token is still a secret."""

    def repr_str(self, x: str, level: int) -> str:
        return super().repr_str(redact(x), level)


_SHORT_REPR = _RedactedRepr()
_SHORT_REPR.maxlevel = 3
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = 60


def shape(value: Any) -> str:
    """A value from an answer as its JSON kind and a short, scrubbed excerpt, however large or deep it is."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    kind = {dict: "an object", list: "an array", str: "text"}.get(type(value), "a number")
    return f"{kind} {scrub(_SHORT_REPR.repr(value))}"


def as_text(value: Any, limit: int = MAX_MESSAGE_CHARS) -> str:
    """A value from an answer as text for a person: strings as they are, anything else as compact JSON; cut."""
    if value is None:
        return ""
    if not isinstance(value, str):
        try:
            value = json.dumps(value, separators=(",", ":"), default=str)
        except (ValueError, RecursionError):
            value = _SHORT_REPR.repr(value)
    return shortened(redact(value), limit)


def opsera_message(text: str) -> str:
    """Opsera's own words from an error body: ``{"status":"failed","message":...}``, plain text or HTML."""
    try:
        body = _loads(text)
    except ValueError:
        return scrub(text)
    if isinstance(body, dict):
        for key in ("message", "error", "errors", "detail"):
            if body.get(key):
                return scrub(as_text(body[key], limit=4 * SNIPPET_CHARS))
    return scrub(text if not isinstance(body, str) else body)


def retry_after_seconds(header: str | None) -> float | None:
    """``Retry-After`` as seconds: either a number or an HTTP date; None when it says nothing usable.

    A value that is not a finite number of seconds, is negative, or is a date that has passed
    is None: the retry policy's own backoff applies rather than no wait at all.
    """
    if not header or not header.strip():
        return None
    header = header.strip()
    try:
        seconds = float(header)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None or when.tzinfo is None:  # RFC 9110 dates are in GMT; one without a zone is not one
            return None
        seconds = when.timestamp() - time.time()
        return seconds if seconds > 0 else None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _permission_hint(endpoint: Endpoint, settings: OpseraConnectionSettings | None) -> str:
    """What a 403 means for this call: the scopes it accepts, the token's own (when known), the role it needs."""
    accepted = f"The token's scope must be one of: {', '.join(endpoint.scopes)}"
    role = (
        "the Power User role (or higher) in Opsera"
        if endpoint.needs_power_user
        else "the Power User role or access to this object in Opsera"
    )
    scopes = token_scopes(settings.token) if settings is not None else None
    if scopes and set(scopes) & set(endpoint.scopes):
        return (
            f"{accepted}, and the connection's token has {scope_words(scopes)}, so the refusal is about its owner, "
            f"who needs {role}"
        )
    if scopes:
        held = f"; the connection's token has {scope_words(scopes)}"
    elif settings is not None:
        held = " (the connection's token does not say which it has)"
    else:
        held = ""
    return f"{accepted}{held}; and its owner needs {role}"


def _authentication_hint(settings: OpseraConnectionSettings | None) -> str:
    """What a 401 means: the token is refused; or, when the password holds more than the token, that."""
    note = pasted_prefix_note(settings.token, settings.auth_prefix) if settings is not None else None
    if note:
        return note[0].upper() + note[1:]
    return (
        "The token is missing, malformed or expired: check the connection's password and create a new token "
        "in the Opsera portal if needed"
    )


def error_for(
    endpoint: Endpoint,
    status: int,
    text: str,
    retry_after: str | None = None,
    settings: OpseraConnectionSettings | None = None,
) -> OpseraError:
    """The typed error for a non-2xx answer; ``settings`` (the connection the call was sent with) sharpen it."""
    message = opsera_message(text)
    where = describe(endpoint)
    kwargs: dict[str, Any] = {"status_code": status, "endpoint": endpoint.name}
    looks_html = "<html" in text[:500].lower() or "<!doctype" in text[:500].lower()
    if status == 401:
        return OpseraAuthenticationError(
            f"{where}: 401 unauthorised ({message}). {_authentication_hint(settings)}.", **kwargs
        )
    if status == 403:
        return OpseraPermissionError(
            f"{where}: 403 forbidden ({message}). {_permission_hint(endpoint, settings)}.", **kwargs
        )
    if status == 404:
        return OpseraNotFoundError(f"{where}: 404 not found ({message}).", **kwargs)
    if status == 409:
        return OpseraConflictError(f"{where}: 409 conflict, the record exists already ({message}).", **kwargs)
    if status in (400, 422):
        return OpseraValidationError(f"{where}: {status} rejected the request ({message}).", **kwargs)
    if status == 429:
        return OpseraRateLimitError(
            f"{where}: 429 too many requests ({message}).", retry_after=retry_after_seconds(retry_after), **kwargs
        )
    if status >= 500:
        kind = "an HTML error page (a proxy or gateway answered)" if looks_html else message
        return OpseraServerError(f"{where}: server error {status}: {kind}.", **kwargs)
    return OpseraError(f"{where}: unexpected HTTP {status} ({message}).", **kwargs)


def page_records(payload: Any) -> tuple[list[Any], str | None]:
    """Records and the next cursor of one page, whichever style the endpoint uses.

    Handles a capped array, a ``{count, data}`` envelope and a cursor page ``{next, results}``.
    The records are whatever the page holds: a reader checks each one's shape.
    """
    if payload is None:
        return [], None
    if isinstance(payload, list):
        return payload, None
    if isinstance(payload, dict):
        if isinstance(payload.get("results"), list):
            cursor = payload.get("next")
            if cursor is None or cursor == "":
                return payload["results"], None
            if isinstance(cursor, bool) or not isinstance(cursor, (str, int)):
                raise OpseraBadResponseError(f"A page of records has a 'next' cursor that is not text: {shape(cursor)}")
            return payload["results"], str(cursor)
        if isinstance(payload.get("data"), list):
            return payload["data"], None
    raise OpseraBadResponseError(f"Expected a list of records, got {shape(payload)}")


def _status_word(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise OpseraBadResponseError(
            f"Opsera answered the status of {what} with {shape(value)}, not a status word"
        )
    if len(value) > MAX_STATUS_CHARS:
        raise OpseraBadResponseError(
            f"Opsera answered the status of {what} with {len(value)} characters of text, not a status word"
        )
    return value


def run_status(answer: Any, what: str = "a pipeline run") -> tuple[str, str]:
    """The status and message of a status answer ``{"status", "message"}``, or an OpseraBadResponseError."""
    if not isinstance(answer, dict):
        raise OpseraBadResponseError(
            f"Opsera answered the status of {what} with {shape(answer)}, "
            "not the expected object with a status"
        )
    return _status_word(answer.get("status"), what), as_text(answer.get("message"))


def task_status(answer: Any, what: str = "a task") -> str:
    """A task's status, which Opsera answers as a bare string (an object carrying it is read too)."""
    if isinstance(answer, dict):
        return run_status(answer, what)[0]
    return _status_word(answer, what)


def run_number(value: Any, what: str = "runCount") -> int:
    """A run count from an answer: a positive whole number, also written ``7.0`` or ``"7"``.

    ``7.5``, ``true``, ``NaN`` and ``"7.0"`` are not run numbers: OpseraBadResponseError.
    """
    number: Any = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) < 19:
        number = int(value.strip())
    if number is None or number < 1:
        raise OpseraBadResponseError(f"{what} is {shape(value)}, not a run number (a positive whole number)")
    return number


def latest_run_count(summary: Any, pipeline_id: str) -> int:
    """``workflow.run_count`` of a pipeline's summary: the number of its latest run, 0 when it never ran.

    The one reading of it, for the operator, the asset watcher and the doctor alike: a missing
    field or one that is not a run number is an :class:`OpseraSummaryShapeError`, never run 0.
    """
    workflow = summary.get("workflow") if isinstance(summary, dict) else None
    if not isinstance(workflow, dict) or "run_count" not in workflow:
        raise OpseraSummaryShapeError(f"The summary of pipeline {pipeline_id} has no workflow.run_count")
    value = workflow["run_count"]
    if value is None or (type(value) in (int, float) and value == 0):
        return 0
    try:
        return run_number(value, f"The summary of pipeline {pipeline_id}'s workflow.run_count")
    except OpseraBadResponseError as error:
        raise OpseraSummaryShapeError(str(error)) from None


def may_be_capped(records: list[Any]) -> bool:
    return len(records) >= RECORD_CAP
