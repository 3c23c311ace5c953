"""The Opsera API base URL a connection's Host names, checked before anything is sent to it."""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from typing import NamedTuple

from airflow_provider_opsera.exceptions import OpseraConnectionConfigError

#: the connection extra that lets the token travel over plain HTTP to a host that is not this machine
ALLOW_PLAIN_HTTP = "allow_plain_http"
SCHEMES = ("https", "http")
EXAMPLE = "https://app.opsera.io"

_HOST_NAME = re.compile(r"[\w.-]+")


class BaseUrl(NamedTuple):
    url: str
    #: the Host had no scheme (nor the Schema field): ``https://`` was assumed
    scheme_assumed: bool


def api_base_url(
    conn_id: str, host: str, *, schema: str | None = None, port: int | None = None, allow_plain_http: bool = False
) -> BaseUrl:
    """``scheme://host[:port]`` from the connection's Host (and its Schema and Port fields, when the Host lacks them).

    Refused with a message saying which field to change: another scheme, a path, a query,
    credentials in the URL, and plain HTTP to a host off this machine unless allowed on purpose.
    """
    scheme_assumed = False
    if "://" not in host:
        scheme = (schema or "").strip().lower()
        if scheme and scheme not in SCHEMES:
            raise _refused(conn_id, f"its Schema field is {schema!r}, not a URL scheme: leave it empty or write https")
        scheme_assumed = not scheme
        host = f"{scheme or 'https'}://{host}"
    if port and host.count(":") < 2:
        host = f"{host.rstrip('/')}:{port}"
    parts = urllib.parse.urlsplit(host)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise _refused(conn_id, f"Host {host!r} has the scheme {parts.scheme!r}: write https://, e.g. {EXAMPLE}")
    if "@" in parts.netloc:
        # requests would turn URL credentials into Basic auth in place of the token
        raise _refused(
            conn_id,
            f"Host {_without_credentials(parts)!r} carries a user name or password: "
            "remove them from Host, the token in Password is the only credential sent",
        )
    # A path is refused rather than trimmed: the endpoints live under both /api/v1 and /api/v2, so
    # a Host ending in either is wrong for half of them, and a trimmed Host stays wrong in the stored
    # connection, read again by every task, wait and check.
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise _refused(
            conn_id,
            f"Host {host!r} has a path or query after the server: give only the API "
            f"base URL, e.g. {EXAMPLE} (the provider adds /api/v1/... and /api/v2/... itself)",
        )
    hostname = parts.hostname or ""
    try:
        parts.port
    except ValueError:
        raise _refused(conn_id, f"Host {host!r} has a port that is not a number from 0 to 65535") from None
    if not hostname or not (_HOST_NAME.fullmatch(hostname) or _ip_address(hostname)):
        raise _refused(conn_id, f"Host {host!r} names no valid server: write the API base URL, e.g. {EXAMPLE}")
    url = f"{scheme}://{parts.netloc}"
    if scheme == "http" and not allow_plain_http and not is_loopback(hostname):
        raise _refused(
            conn_id,
            f"Host {url} uses plain http:// to a server that is not this machine, so the token would cross the "
            f"network unencrypted. Write https://, or, if a TLS-terminating proxy or sidecar carries the traffic "
            f'on purpose, set the connection extra "{ALLOW_PLAIN_HTTP}": true',
        )
    return BaseUrl(url, scheme_assumed)


def is_loopback(hostname: str) -> bool:
    """Whether a host name is this machine by its text alone (no DNS): ``localhost``, 127.0.0.0/8, ``::1``."""
    if hostname.rstrip(".").lower() == "localhost":
        return True
    address = _ip_address(hostname)
    if address is None:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def _ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _without_credentials(parts: urllib.parse.SplitResult) -> str:
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _refused(conn_id: str, what: str) -> OpseraConnectionConfigError:
    return OpseraConnectionConfigError(f"Connection {conn_id!r}: {what}. Nothing was sent.")
