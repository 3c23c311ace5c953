"""Turning an HTTP answer into data or a typed error, the same way for the sync and async clients."""

from __future__ import annotations

import email.utils
import json
import re
import time
from typing import Any

from airflow_provider_opsera.client.api import RECORD_CAP, Endpoint
from airflow_provider_opsera.exceptions import (
    OpseraAuthenticationError,
    OpseraBadResponseError,
    OpseraConflictError,
    OpseraError,
    OpseraNotFoundError,
    OpseraPermissionError,
    OpseraRateLimitError,
    OpseraServerError,
    OpseraValidationError,
)

SNIPPET_CHARS = 160
_JWT = re.compile(r"eyJ[\w-]*\.[\w-]*\.?[\w-]*")
_BEARER = re.compile(r"(?i)(bearer|authorization)[\s:=\"']+[^\s\"',}]+")
_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def scrub(text: str, limit: int = SNIPPET_CHARS) -> str:
    """A short, single-line excerpt of a body with anything token-like removed."""
    text = _TAGS.sub(" ", text)
    text = _JWT.sub("***", text)
    text = _BEARER.sub(r"\1 ***", text)
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(endpoint: Endpoint) -> str:
    return f"Opsera {endpoint.method} {endpoint.path}"


def parse_json(text: str, endpoint: Endpoint, status: int) -> Any:
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise OpseraBadResponseError(
            f"{describe(endpoint)} answered HTTP {status} with a body that is not JSON: {scrub(text)!r}",
            status_code=status,
            endpoint=endpoint.name,
        ) from None


def opsera_message(text: str) -> str:
    """Opsera's own words from an error body: ``{"status":"failed","message":...}``, plain text or HTML."""
    try:
        body = json.loads(text)
    except ValueError:
        return scrub(text)
    if isinstance(body, dict):
        for key in ("message", "error", "errors", "detail"):
            if body.get(key):
                value = body[key]
                return scrub(value if isinstance(value, str) else json.dumps(value))
    return scrub(text if not isinstance(body, str) else body)


def retry_after_seconds(header: str | None) -> float | None:
    """``Retry-After`` as seconds: either a number or an HTTP date."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(header) if header else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _permission_hint(endpoint: Endpoint) -> str:
    scopes = ", ".join(endpoint.scopes)
    role = (
        "its owner needs the Power User role (or higher) in Opsera"
        if endpoint.needs_power_user
        else "its owner needs the Power User role or access to this object in Opsera"
    )
    return f"the token's scope must be one of: {scopes}; and {role}"


def error_for(endpoint: Endpoint, status: int, text: str, retry_after: str | None = None) -> OpseraError:
    """The typed error for a non-2xx answer."""
    message = opsera_message(text)
    where = describe(endpoint)
    kwargs: dict[str, Any] = {"status_code": status, "endpoint": endpoint.name}
    looks_html = "<html" in text[:500].lower() or "<!doctype" in text[:500].lower()
    if status == 401:
        return OpseraAuthenticationError(
            f"{where}: 401 unauthorised ({message}). The token is missing, malformed or expired: "
            "check the connection's password and create a new token in the Opsera portal if needed.",
            **kwargs,
        )
    if status == 403:
        return OpseraPermissionError(f"{where}: 403 forbidden ({message}). {_permission_hint(endpoint)}.", **kwargs)
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
    """
    if payload is None:
        return [], None
    if isinstance(payload, list):
        return payload, None
    if isinstance(payload, dict):
        if isinstance(payload.get("results"), list):
            return payload["results"], payload.get("next") or None
        if isinstance(payload.get("data"), list):
            return payload["data"], None
    raise OpseraBadResponseError(f"Expected a list of records, got {type(payload).__name__}: {scrub(str(payload))!r}")


def may_be_capped(records: list[Any]) -> bool:
    return len(records) >= RECORD_CAP
