"""The sync client's side of the transport: what requests needs to keep the rules in :mod:`.transport`.

requests (urllib3) applies its read timeout to every read from the socket, so a server that
trickles its answer a byte at a time holds a request for as long as it likes. Sent inside
:func:`deadline`, each read of the answer waits only for what is left of the request's time.
"""

from __future__ import annotations

import http.client
import io
import re
import threading
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from airflow_provider_opsera.client.api import Endpoint
from airflow_provider_opsera.client.connection import OpseraConnectionSettings
from airflow_provider_opsera.exceptions import OpseraError
from airflow_provider_opsera.hooks.transport import (
    READ_CHUNK,
    CappedBody,
    body_text,
    connect_failure,
    find_cause,
    no_answer,
    tls_error,
    whole_body_size,
)

_current = threading.local()


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Answers read in this thread inside the block end ``seconds`` from now (read past the block too)."""
    _current.at = time.monotonic() + seconds
    try:
        yield
    finally:
        _current.at = None


class _DeadlineReader(io.RawIOBase):
    """A socket's reader that waits for each read at most until the deadline."""

    def __init__(self, raw: io.RawIOBase, sock: Any, at: float) -> None:
        super().__init__()
        self._raw, self._sock, self._at = raw, sock, at

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        left = self._at - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request's timeout passed while its answer was read")
        self._sock.settimeout(left)
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        at = getattr(_current, "at", None)
        if at is not None:
            self.fp = io.BufferedReader(_DeadlineReader(self.fp.detach(), sock, at))


class _Connection(HTTPConnection):
    response_class = _DeadlineResponse


class _TLSConnection(HTTPSConnection):
    response_class = _DeadlineResponse


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


_POOLS = {"http": _Pool, "https": _TLSPool}


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter with connections whose answers keep to the deadline, direct and through HTTP proxies."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is urllib3.ProxyManager:  # a SOCKS manager has connection classes of its own
            manager.pool_classes_by_scheme = _POOLS
        return manager


def deadline_session() -> requests.Session:
    session = requests.Session()
    for prefix in ("https://", "http://"):
        session.mount(prefix, _DeadlineAdapter())
    return session


class TokenAuth(requests.auth.AuthBase):
    """Sets the Authorization header; requests reads ``~/.netrc`` only for a request without auth of its own."""

    def __init__(self, authorization: str) -> None:
        self._authorization = authorization

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._authorization
        return request

    def __repr__(self) -> str:
        return "TokenAuth(***)"


def read_body(endpoint: Endpoint, response: requests.Response) -> str:
    """The answer's text, read no further than the endpoint's cap (a streamed response)."""
    headers = response.headers
    body = CappedBody(endpoint)
    if whole_body_size(endpoint, headers) is not None:
        body.add(response.content)
    else:
        for chunk in response.iter_content(READ_CHUNK):
            body.add(chunk)
    return body_text(body.bytes(), headers.get("Content-Type"))


def quiet_unverified_warnings(base_url: str) -> None:
    """urllib3 warns on every unverified request; the hook has warned once already, for this host."""
    host = urllib.parse.urlsplit(base_url).hostname or ""
    warnings.filterwarnings(
        "ignore",
        message=f"Unverified HTTPS request is being made to host '{re.escape(host)}'",
        category=urllib3.exceptions.InsecureRequestWarning,
    )


def transport_error(
    endpoint: Endpoint, settings: OpseraConnectionSettings, error: BaseException, timeout: float | None = None
) -> OpseraError:
    """Classify a requests failure: a failed TLS handshake, no connection (and why), or by whether it was sent."""
    from urllib3.exceptions import NewConnectionError
    from urllib3.exceptions import TimeoutError as ReadOrConnectTimeout

    handshake = tls_error(endpoint, settings, error)
    if handshake is not None:
        return handshake
    cause = getattr(error.args[0], "reason", None) if getattr(error, "args", None) else None
    never_sent = isinstance(
        error,
        (requests.exceptions.ConnectTimeout, requests.exceptions.InvalidURL, requests.exceptions.MissingSchema),
    ) or isinstance(cause, NewConnectionError)
    # urllib3 2 makes a refused connection (NewConnectionError) a connect timeout: only the others timed out.
    # A whole-request deadline passing while the body streams surfaces as a ConnectionError around a timeout.
    timeout_cause = find_cause(error, (requests.exceptions.Timeout, ReadOrConnectTimeout, TimeoutError))
    timed_out = timeout_cause is not None and connect_failure(error) is None
    via_proxy = isinstance(error, requests.exceptions.ProxyError)
    sent = not never_sent
    return no_answer(endpoint, settings, error, timed_out=timed_out, timeout=timeout, sent=sent, via_proxy=via_proxy)
