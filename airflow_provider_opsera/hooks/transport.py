"""What both HTTP clients do alike with the wire: redirects refused, TLS failures named, bodies capped, proxies chosen.

The sync hook (requests) and the async client (aiohttp) raise the same errors with the
same words; each only adapts its library's objects to these functions.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from airflow_provider_opsera.client.api import Endpoint
from airflow_provider_opsera.exceptions import (
    OpseraConnectionConfigError,
    OpseraRedirectError,
    OpseraResponseTooLargeError,
    OpseraTLSError,
    OpseraTransportError,
)
from airflow_provider_opsera.hooks.responses import describe, scrub

if TYPE_CHECKING:
    from airflow_provider_opsera.client.connection import OpseraConnectionSettings

#: bytes asked of the network per read while a body of unknown size is collected
READ_CHUNK = 64 * 1024
LOCATION_CHARS = 200


# -- redirects --


def refused_redirect(
    endpoint: Endpoint, status: int, location: str | None, base_url: str
) -> OpseraRedirectError | None:
    """The error for a redirect answer (both clients send with redirects off), or None for any other answer.

    Following one would resend a POST (a run request, a record) to wherever it points, with the token.
    """
    if not (300 <= status < 400 and location):
        return None
    return OpseraRedirectError(
        f"{describe(endpoint)} answered HTTP {status}, a redirect to {scrub(location, LOCATION_CHARS)!r}, "
        "which the provider does not follow: a redirect could carry the request and its token elsewhere. "
        f"If the Opsera API has moved, set the connection's Host (now {base_url}) to its new address.",
        status_code=status,
        endpoint=endpoint.name,
    )


# -- no answer --

# Why a connection could not be made: each says what happened and which setting fixes it.
REFUSED = "refused"
NO_SUCH_HOST = "no such host"
LOOKUP_FAILED = "lookup failed"
#: getaddrinfo's answers for a name that does not exist (or has no address): asking again changes nothing
_NAME_UNKNOWN = {getattr(socket, name) for name in ("EAI_NONAME", "EAI_NODATA") if hasattr(socket, name)}


def connect_failure(error: BaseException) -> str | None:
    """Why ``error`` (as either HTTP library raised it) kept a connection from being made, or None when it did not."""
    lookup = find_cause(error, socket.gaierror)
    if lookup is not None:
        return NO_SUCH_HOST if lookup.errno in _NAME_UNKNOWN else LOOKUP_FAILED
    if find_cause(error, ConnectionRefusedError) is not None:
        return REFUSED
    return None


def no_answer(
    endpoint: Endpoint,
    settings: OpseraConnectionSettings,
    error: BaseException,
    *,
    timed_out: bool,
    timeout: float | None,
    sent: bool,
    via_proxy: bool = False,
) -> OpseraTransportError:
    """The error for a request that got no whole answer: refused, a name that does not resolve, a timeout, a reset."""
    base_url = settings.base_url
    failure = connect_failure(error)
    if failure is not None:
        return _not_connected(endpoint, settings, error, failure, via_proxy)
    kind = "timed out" if timed_out else "failed"
    message = f"{describe(endpoint)} {kind} ({type(error).__name__}) talking to {base_url}"
    if timed_out and timeout:
        message += f": no whole answer within {timeout:g} s, the connection's 'timeout' extra"
    return OpseraTransportError(message, may_have_reached_server=sent, endpoint=endpoint.name)


def _not_connected(
    endpoint: Endpoint, settings: OpseraConnectionSettings, error: BaseException, failure: str, via_proxy: bool
) -> OpseraTransportError:
    parts = urllib.parse.urlsplit(settings.base_url)
    host, port = parts.hostname or parts.netloc, parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    where, fix = f"{host}:{port}", f"Check the connection's Host (now {settings.base_url})"
    if via_proxy:
        where, fix = "the proxy", "Check the connection's 'proxies' extra (or HTTPS_PROXY / HTTP_PROXY)"
    if failure == NO_SUCH_HOST:
        name = where if via_proxy else f"the name {host!r}"
        return OpseraTransportError(
            f"{describe(endpoint)} was not sent: {name} does not resolve (DNS knows no such host). {fix}.",
            may_have_reached_server=False,
            worth_retrying=False,
            endpoint=endpoint.name,
        )
    if failure == LOOKUP_FAILED:
        what = f"the name of {where} could not be looked up ({find_cause(error, socket.gaierror)})"
        fix += "; if it is right, the machine's DNS did not answer"
    else:
        what = f"{where} refused the connection: nothing listens there (a wrong port, or the server is down)"
    return OpseraTransportError(
        f"{describe(endpoint)} was not sent: {what}. {fix}.", may_have_reached_server=False, endpoint=endpoint.name
    )


def no_free_connection(endpoint: Endpoint, base_url: str, seconds: float, in_flight: int) -> OpseraTransportError:
    """The error for a request that waited its whole time for one of the connections to its origin (never sent)."""
    return OpseraTransportError(
        f"{describe(endpoint)} was not sent: for {round(seconds, 1):g} s (the connection's 'timeout' extra, or what "
        f"was left of the wait) none of the {in_flight} connections to {base_url} this process keeps came free; the "
        "requests on them get no answer.",
        may_have_reached_server=False,
        endpoint=endpoint.name,
    )


# -- TLS --

_EXPIRED = {9: "is not valid yet", 10: "has expired"}
_WRONG_NAME = {62, 63, 64}  # host name, email, IP address mismatch
_UNTRUSTED = {2, 18, 19, 20, 21}  # no issuer, self-signed, unknown CA
_PLAIN_HTTP = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL")
_HANDSHAKE = ("HANDSHAKE", "ALERT", "NO_PROTOCOLS_AVAILABLE", "UNSUPPORTED_PROTOCOL", "NO_SHARED_CIPHER")
_VERIFY_OFF = (
    "Setting the extra 'verify' to false skips the check: do that only on purpose, "
    "as anyone in between can then read the token."
)


# -- CA bundles --

#: seconds a CA bundle is used as read before its file is looked at again (a renewed bundle is then read anew)
CA_BUNDLE_RECHECK = 60.0


def _unreadable_bundle(path: str) -> OpseraConnectionConfigError:
    return OpseraConnectionConfigError(
        f"The connection extra 'verify' is {path!r}, which is no CA bundle this process can read: set it to "
        "the path of a PEM file (or a directory of them) with the CA of the server's certificate, or to true "
        "for the system's CAs."
    )


def _read_bundle(path: str) -> ssl.SSLContext:
    if os.path.isdir(path):
        return ssl.create_default_context(capath=path)  # its files are read as certificates are checked
    if not os.access(path, os.R_OK):
        raise _unreadable_bundle(path)
    try:
        return ssl.create_default_context(cafile=path)
    except ssl.SSLError as error:
        raise OpseraTLSError(
            f"The connection extra 'verify' is {path!r}, which holds no CA certificate ({error.reason or error}); "
            "nothing was sent. Set it to the path of a PEM file with the CA of the server's certificate (or a "
            "directory of them), or to true for the system's CAs."
        ) from None
    except OSError:
        raise _unreadable_bundle(path) from None


class CABundles:
    """The CA bundles that connections' ``verify`` extra names, each read once per version of its file.

    Reading a bundle parses every certificate in it: the async client would do that on the
    event loop at every request. A bundle's file is looked at again (its size and modification
    time, with :meth:`load`) at most every :data:`CA_BUNDLE_RECHECK` seconds, and read again
    only when those changed. A file that is no bundle raises an error naming the extra, before
    anything is sent; it is not remembered, so a fixed file is read at the next request.
    """

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._read: dict[str, tuple[tuple[int, int], ssl.SSLContext, float]] = {}

    def known(self, path: str) -> ssl.SSLContext | None:
        """The bundle as read, when its file was looked at lately; None when :meth:`load` must look (no I/O here)."""
        entry = self._read.get(path)
        if entry is None or self._clock() - entry[2] > CA_BUNDLE_RECHECK:
            return None
        return entry[1]

    def load(self, path: str) -> ssl.SSLContext:
        """The bundle, read again when its file changed (file I/O: off the event loop)."""
        try:
            info = os.stat(path)
        except OSError:
            raise _unreadable_bundle(path) from None
        version = (info.st_mtime_ns, info.st_size)
        with self._lock:
            entry = self._read.get(path)
            context = entry[1] if entry is not None and entry[0] == version else _read_bundle(path)
            self._read[path] = (version, context, self._clock())
            return context


CA_BUNDLES = CABundles()


def checked_ca_bundle(verify: bool | str) -> bool | str:
    """``verify`` as given once a CA bundle path in it holds certificates; else an error naming the extra.

    For the sync client, which hands the path to requests.
    """
    if isinstance(verify, str) and CA_BUNDLES.known(verify) is None:
        CA_BUNDLES.load(verify)
    return verify


def find_cause(error: BaseException, kinds: type | tuple[type, ...], *, own: bool = False) -> BaseException | None:
    """The first exception of ``kinds`` among ``error``, its causes and the errors libraries wrap in their args.

    ``own``: only an exception of the module that defines ``kinds`` (aiohttp's errors subclass ssl's too).
    """
    modules = {kind.__module__ for kind in (kinds if isinstance(kinds, tuple) else (kinds,))}
    seen: set[int] = set()
    pending: list[Any] = [error]
    while pending:
        item = pending.pop(0)
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, kinds) and (not own or type(item).__module__ in modules):
            return item
        pending.extend(item.args)
        pending.extend(getattr(item, name, None) for name in ("reason", "certificate_error", "os_error"))
        pending.extend((item.__cause__, item.__context__))
    return None


def tls_error(endpoint: Endpoint, settings: OpseraConnectionSettings, error: BaseException) -> OpseraTLSError | None:
    """The error for a failed TLS handshake, saying what is wrong and which setting fixes it; None for others."""
    cause = find_cause(error, ssl.SSLError, own=True)
    if cause is None:
        return None
    base_url = settings.base_url
    if isinstance(cause, ssl.SSLCertVerificationError):
        what, fix = _certificate_problem(base_url, cause)
    else:
        reason = str(getattr(cause, "reason", None) or cause).upper()
        if any(word in reason for word in _PLAIN_HTTP):
            what = f"{base_url} answered the TLS handshake in plain HTTP ({cause.reason or cause})"
            fix = "Is the scheme wrong? The connection's Host must start with the scheme the server speaks."
            if settings.scheme_assumed:  # the Host had no scheme
                fix = (
                    "Is the scheme wrong? The connection's Host has no scheme, so https:// was assumed; "
                    "write the scheme the server speaks in the Host."
                )
        elif any(word in reason for word in _HANDSHAKE):
            what = f"the TLS handshake with {base_url} failed ({cause.reason or cause})"
            fix = "The server accepts no TLS version or cipher this Python offers, or wants a client certificate."
        else:
            return None  # e.g. a connection cut in the middle of an answer: not known to be before sending
    return OpseraTLSError(f"{describe(endpoint)} was not sent: {what}. {fix}", endpoint=endpoint.name)


def _certificate_problem(base_url: str, cause: ssl.SSLCertVerificationError) -> tuple[str, str]:
    code, detail = cause.verify_code, cause.verify_message or cause.reason or str(cause)
    if code in _EXPIRED:
        return (
            f"the TLS certificate of {base_url} {_EXPIRED[code]} ({detail})",
            f"The server's certificate must be renewed (or the machine's clock is wrong). {_VERIFY_OFF}",
        )
    if code in _WRONG_NAME:
        return (
            f"the TLS certificate of {base_url} is issued for another name ({detail})",
            f"Set the connection's Host to a name the certificate is issued for. {_VERIFY_OFF}",
        )
    problem = "is not trusted" if code in _UNTRUSTED else "was refused"
    return (
        f"the TLS certificate of {base_url} {problem} ({detail})",
        "If the server's certificate comes from a private CA, set the connection extra 'verify' to the path "
        f"of that CA's bundle (PEM). {_VERIFY_OFF}",
    )


_warned_unverified: set[str] = set()
_warned_lock = threading.Lock()


def warn_unverified_once(client: str, base_url: str, log: Any) -> bool:
    """With ``verify`` false, say so once per process and client kind, not on every request; True the first time."""
    if client in _warned_unverified:
        return False
    with _warned_lock:
        if client in _warned_unverified:
            return False
        _warned_unverified.add(client)
    log.warning(
        "TLS certificates of %s are not checked (connection extra 'verify' is false): anyone in between can read "
        "the token. Set 'verify' to the path of the server's CA bundle instead.",
        base_url,
    )
    return True


# -- body size --


def _size(count: int) -> str:
    return f"{count / 2**20:g} MiB" if count >= 2**20 else f"{count:,} bytes"


def too_large(endpoint: Endpoint, announced: int | None = None) -> OpseraResponseTooLargeError:
    cap = _size(endpoint.body_cap)
    if announced is not None:
        what = (
            f"the answer announced {_size(announced)}, more than the {cap} this call reads at most; none of it was read"
        )
    else:
        what = f"the answer went past the {cap} this call reads at most; the rest of it was not read"
    return OpseraResponseTooLargeError(f"{describe(endpoint)}: {what}.", endpoint=endpoint.name)


def whole_body_size(endpoint: Endpoint, headers: Any) -> int | None:
    """The announced size when the body may be read in one go; raise when it is over the cap; None to stream it.

    A compressed or chunked body is streamed whatever its announced size: the size does not bound what is read.
    """
    try:
        announced = int(headers.get("Content-Length"))
    except (TypeError, ValueError):
        return None
    if announced < 0:
        return None
    if announced > endpoint.body_cap:
        raise too_large(endpoint, announced)
    encoded = headers.get("Content-Encoding") not in (None, "", "identity") or headers.get("Transfer-Encoding")
    return None if encoded else announced


class CappedBody:
    """Collects a streamed body, refusing to hold more than the endpoint's cap."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.endpoint.body_cap:
            self.chunks.clear()
            raise too_large(self.endpoint)
        self.chunks.append(chunk)

    def bytes(self) -> bytes:
        return b"".join(self.chunks)


_CHARSET = re.compile(r"charset\s*=\s*\"?([\w.:-]+)", re.IGNORECASE)


def body_text(data: bytes, content_type: str | None) -> str:
    """The body as text, in the charset the answer names (JSON's UTF-8 when it names none or an unknown one)."""
    found = _CHARSET.search(content_type or "")
    try:
        return data.decode(found.group(1) if found else "utf-8", errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


# -- proxies --


def origin_of(url: str) -> str:
    """``scheme://host:port`` of a URL: all a proxy choice depends on."""
    found = re.match(r"[^:/]+://[^/?#]*", url)
    return found.group(0) if found else url


def proxy_for(origin: str, configured: dict[str, str] | None) -> str | None:
    """The proxy a request to ``origin`` goes through, by the rules requests applies in the sync client.

    The environment's ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` apply unless ``NO_PROXY`` covers
    the host; the connection's ``proxies`` extra wins over the environment.
    """
    from requests.utils import get_environ_proxies, select_proxy

    proxies = dict(get_environ_proxies(origin))
    proxies.update(configured or {})
    return select_proxy(origin, proxies)
