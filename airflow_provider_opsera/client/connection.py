"""What the hooks read from an Airflow connection of type ``opsera``."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from airflow_provider_opsera.client.api import PORTAL_PIPELINE_PATH
from airflow_provider_opsera.client.base_url import ALLOW_PLAIN_HTTP, api_base_url
from airflow_provider_opsera.client.connection_form import AUTH_PREFIX_EXTRA, PASSWORD_FIELD
from airflow_provider_opsera.client.status import RunOutcome, tenant_statuses
from airflow_provider_opsera.client.token import pasted_prefix_note, token_expiry
from airflow_provider_opsera.exceptions import OpseraConnectionConfigError

DEFAULT_TIMEOUT = 30.0
DEFAULT_AUTH_PREFIX = "Bearer"


@dataclass(frozen=True)
class OpseraConnectionSettings:
    base_url: str
    token: str = field(repr=False)
    auth_prefix: str = DEFAULT_AUTH_PREFIX
    timeout: float = DEFAULT_TIMEOUT
    verify: bool | str = True
    proxies: dict[str, str] | None = None
    portal_url: str | None = None
    #: the Host had no scheme, so https:// was assumed (worth saying when TLS then fails)
    scheme_assumed: bool = False
    #: the tenant's own run statuses and their outcomes (the ``status_map`` extra)
    status_map: tuple[tuple[str, RunOutcome], ...] = ()

    @cached_property
    def token_expires(self) -> dt.datetime | None:
        """The token's ``exp`` claim, read once (every request checks it)."""
        return token_expiry(self.token)

    @property
    def authorization(self) -> str:
        return f"{self.auth_prefix} {self.token}" if self.auth_prefix else self.token

    def pipeline_url(self, pipeline_id: str) -> str:
        """The portal page of a pipeline (the API host when no portal URL is set)."""
        return (self.portal_url or self.base_url) + PORTAL_PIPELINE_PATH.format(pipeline_id=pipeline_id)

    def url_for(self, path: str, path_params: dict[str, Any] | None = None) -> str:
        """The full URL of an endpoint path such as ``/api/v2/data/people/{email}``."""
        quoted = {k: urllib.parse.quote(str(v), safe="") for k, v in (path_params or {}).items()}
        return self.base_url + path.format(**quoted)

    @classmethod
    def from_connection(cls, conn: Any) -> OpseraConnectionSettings:
        conn_id = getattr(conn, "conn_id", None) or "?"
        extra = _extras(conn)
        host = (conn.host or "").strip()
        if not host:
            raise OpseraConnectionConfigError(
                f"Connection {conn_id!r} has no Host: set it to the Opsera API base URL, "
                "e.g. https://app.opsera.io"
            )
        token = (conn.password or "").strip()
        if not token:
            raise OpseraConnectionConfigError(
                f"Connection {conn_id!r} has no Password: set it to an Opsera personal access token"
            )
        auth_prefix = _auth_prefix(extra.get("auth_prefix"))
        _check_token_alone(token, auth_prefix, conn_id)
        base_url = api_base_url(
            conn_id,
            host,
            schema=conn.schema,
            port=conn.port,
            allow_plain_http=_flag(extra.get(ALLOW_PLAIN_HTTP, False), ALLOW_PLAIN_HTTP, conn_id),
        )
        return cls(
            base_url=base_url.url,
            scheme_assumed=base_url.scheme_assumed,
            token=token,
            auth_prefix=auth_prefix,
            timeout=_timeout(extra.get("timeout"), conn_id),
            verify=_verify(extra.get("verify", True)),
            proxies=_proxies(extra.get("proxies"), conn_id),
            portal_url=(str(extra["portal_url"]).rstrip("/") if extra.get("portal_url") else None),
            status_map=_status_map(extra.get("status_map"), conn_id),
        )


def _extras(conn: Any) -> dict[str, Any]:
    extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else {}
    # Older forms stored custom fields as extra__opsera__<name>.
    return {key.removeprefix("extra__opsera__"): value for key, value in (extra or {}).items() if value != ""}


def _auth_prefix(value: Any) -> str:
    # An empty form field means "the default"; "none" asks for the raw token some Opsera pages show.
    text = str(value or "").strip()
    if not text:
        return DEFAULT_AUTH_PREFIX
    return "" if text.lower() == "none" else text


def _check_token_alone(token: str, auth_prefix: str, conn_id: str) -> None:
    """Refuse a Password that holds more than the token ("Bearer eyJ…") before it is ever sent.

    A personal access token has no whitespace; with an auth_prefix the provider writes one itself.
    """
    if not auth_prefix or not any(char.isspace() for char in token):
        return
    note = pasted_prefix_note(token, auth_prefix) or (
        f"{PASSWORD_FIELD} contains whitespace (a space or a line break), which a personal access token never "
        f"does. Put only the token there; the provider writes {AUTH_PREFIX_EXTRA}, here {auth_prefix!r}, "
        "in front of it"
    )
    raise OpseraConnectionConfigError(f"Connection {conn_id!r}: {note}.")


def _timeout(value: Any, conn_id: str) -> float:
    if value in (None, ""):
        return DEFAULT_TIMEOUT
    try:
        timeout = float(value)
    except (TypeError, ValueError):
        timeout = -1
    if timeout <= 0:
        raise OpseraConnectionConfigError(
            f"Connection {conn_id!r}: extra 'timeout' must be a positive number of seconds, got {value!r}"
        )
    return timeout


def _verify(value: Any) -> bool | str:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", ""):
            return True
        if lowered in ("false", "0", "no"):
            return False
        return value  # a CA bundle path
    return bool(value)


def _flag(value: Any, name: str, conn_id: str) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    raise OpseraConnectionConfigError(f"Connection {conn_id!r}: extra {name!r} must be true or false, got {value!r}")


def _status_map(value: Any, conn_id: str) -> tuple[tuple[str, RunOutcome], ...]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    try:
        return tenant_statuses(value)
    except ValueError as error:
        raise OpseraConnectionConfigError(f"Connection {conn_id!r}: extra 'status_map' {error}") from None


def _proxies(value: Any, conn_id: str) -> dict[str, str] | None:
    if not value:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise OpseraConnectionConfigError(
            f"Connection {conn_id!r}: extra 'proxies' must be a JSON object such as "
            '{"https": "http://proxy:3128"}'
        )
    return {str(k): str(v) for k, v in value.items()}
