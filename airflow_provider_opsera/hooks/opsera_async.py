"""The async Opsera client that triggers use, on the same retry policy as :class:`OpseraHook`.

The waits on one event loop share what they can (:class:`LoopShare`): one ``aiohttp`` session
(the triggerer may hold thousands of waits, and a session per call costs several times the CPU
per request), each connection's settings, read once, and the proxy chosen for each origin.
Nothing shared holds a loop after its waits end, so a closed loop is freed (``dag.test()`` runs
each trigger on a loop of its own).

Requests to one origin (scheme, host and port, with its TLS settings and proxy) share a pool of
connections of its own: a host that does not answer holds up only its own requests. A request
waits its turn for a connection inside its timeout, and a stop has connections of its own, so it
never waits behind polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import ssl
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from airflow_provider_opsera._compat import BaseHook
from airflow_provider_opsera.client import validation
from airflow_provider_opsera.client.api import ENDPOINTS, Endpoint
from airflow_provider_opsera.client.connection import OpseraConnectionSettings
from airflow_provider_opsera.client.token import check_expiry, rotated_token_note
from airflow_provider_opsera.exceptions import OpseraAuthenticationError, OpseraError
from airflow_provider_opsera.hooks.opsera import register_secrets
from airflow_provider_opsera.hooks.responses import error_for, page_records, parse_json, task_status
from airflow_provider_opsera.hooks.retry import (
    DEFAULT_RETRY_POLICY,
    RetryBudget,
    RetryPolicy,
    query_params,
    raise_final,
    request_timeout,
    retrying_kwargs,
)
from airflow_provider_opsera.hooks.transport import (
    CA_BUNDLES,
    READ_CHUNK,
    CappedBody,
    body_text,
    no_answer,
    no_free_connection,
    origin_of,
    proxy_for,
    refused_redirect,
    tls_error,
    warn_unverified_once,
    whole_body_size,
)

log = logging.getLogger(__name__)

#: Connections one event loop keeps open at most to one origin for polls and other calls (None: no cap but
#: aiohttp's own 100 in all). Each pooled TLS connection holds a 256 KiB read buffer, and waits that wake
#: together would otherwise open one each (BENCHMARKS.md, "waits in a burst").
POOL_SIZE: int | None = 16
#: Connections kept for stops on top of those, per origin: a stop sent while the pool is busy with polls
#: (a trigger's on_kill while Opsera is slow) does not wait for one of them.
STOP_LANE_SIZE = 2
#: The waits on one event loop share one HTTP session, each connection's settings and the proxy of each origin
#: (False: a session per request, closed after it; the connection read and the proxy chosen at every call).
PER_LOOP_CACHES = True
#: Seconds a connection read is shared by the waits on one event loop (a refused token is read again at once).
SETTINGS_TTL = 300.0

_STOP_LANE: contextvars.ContextVar[bool] = contextvars.ContextVar("opsera_stop_lane", default=False)


@contextlib.contextmanager
def stop_lane() -> Iterator[None]:
    """Requests made within this block (in this task) use the connections kept for stops."""
    reset = _STOP_LANE.set(True)
    try:
        yield
    finally:
        _STOP_LANE.reset(reset)


class _Origin:
    """The connections of one origin: ``size`` for most calls, ``reserved`` for stops (no cap when ``size`` is None)."""

    def __init__(self, size: int | None, reserved: int) -> None:
        self.lanes = {}
        if size:
            self.lanes = {False: (size, asyncio.Semaphore(size)), True: (reserved, asyncio.Semaphore(reserved))}

    def lane(self) -> tuple[int, asyncio.Semaphore] | tuple[None, None]:
        """The size and the free connections of the lane this request takes."""
        return self.lanes.get(_STOP_LANE.get(), (None, None))


class PooledSession:
    """An event loop's aiohttp session; a request first waits for a connection of its origin's pool.

    The wait counts in the request's time: a request that timed out waiting was never sent,
    and says so, which makes sending it again safe.
    """

    def __init__(self, session: aiohttp.ClientSession, size: int | None, reserved: int) -> None:
        self.session = session
        self._size, self._reserved = size, reserved
        self._origins: dict[tuple, _Origin] = {}

    @property
    def closed(self) -> bool:
        return self.session.closed

    async def close(self) -> None:
        await self.session.close()

    @contextlib.asynccontextmanager
    async def request(
        self, origin: tuple, method: str, url: str, *, seconds: float, **kwargs: Any
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """``seconds``: the time the request may take in all, its wait for a connection included."""
        pool = self._origins.get(origin)
        if pool is None:
            pool = self._origins[origin] = _Origin(self._size, self._reserved)
        size, lane = pool.lane()
        started = time.monotonic()
        if lane is not None and lane.locked():
            try:
                await asyncio.wait_for(lane.acquire(), seconds)
            except asyncio.TimeoutError:
                raise _NoFreeConnection(seconds, size) from None
        elif lane is not None:
            await lane.acquire()  # free: taken at once
        try:
            left = max(0.001, seconds - (time.monotonic() - started))
            async with self.session.request(
                method, url, timeout=aiohttp.ClientTimeout(total=left), **kwargs
            ) as response:
                yield response
        finally:
            if lane is not None:
                lane.release()


class _NoFreeConnection(Exception):
    def __init__(self, seconds: float, in_flight: int) -> None:
        super().__init__(seconds, in_flight)
        self.seconds, self.in_flight = seconds, in_flight


def _new_session() -> PooledSession:
    session = aiohttp.ClientSession(
        # the pools of each origin bound the connections: none for aiohttp to queue for
        connector=aiohttp.TCPConnector(limit=0 if POOL_SIZE else 100),
        headers={"Accept": "application/json", "User-Agent": "airflow-provider-opsera"},
        # the per-request timeout comes from the connection
        timeout=aiohttp.ClientTimeout(total=None),
    )
    return PooledSession(session, POOL_SIZE, STOP_LANE_SIZE)


@dataclass
class LoopShare:
    """What the waits on one event loop share. Only its session refers to the loop, and the last wait closes it."""

    session: PooledSession | None = None
    settings: dict[str, tuple[OpseraConnectionSettings, float]] = field(default_factory=dict)
    #: connection reads under way, each dropped when it ends (a task refers to its loop)
    reads: dict[str, asyncio.Task] = field(default_factory=dict)
    proxies: dict[tuple, str | None] = field(default_factory=dict)


_LOOPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopShare] = weakref.WeakKeyDictionary()


def loop_share() -> LoopShare:
    """The running event loop's share, made on first use."""
    loop = asyncio.get_running_loop()
    share = _LOOPS.get(loop)
    if share is None:
        # A loop closed without its session closed (a client used outside a trigger) would be held by it.
        for closed in [other for other in list(_LOOPS) if other.is_closed()]:
            _LOOPS.pop(closed, None)
        share = _LOOPS[loop] = LoopShare()
    return share


def shared_session() -> PooledSession:
    """The running event loop's session, created on first use."""
    share = loop_share()
    if share.session is None or share.session.closed:
        share.session = _new_session()
    return share.session


async def close_shared_session() -> None:
    """Close the running loop's session (tests and short-lived loops; the triggerer keeps it)."""
    share = _LOOPS.get(asyncio.get_running_loop())
    if share is None or share.session is None:
        return
    session, share.session = share.session, None
    if not session.closed:
        await session.close()


@contextlib.asynccontextmanager
async def _session() -> AsyncIterator[PooledSession]:
    if PER_LOOP_CACHES:
        yield shared_session()
        return
    own = _new_session()
    try:
        yield own
    finally:
        await own.close()


async def read_connection(conn_id: str) -> Any:
    """Read a connection without blocking the event loop (Airflow 3's triggerer forbids the sync lookup)."""
    if hasattr(BaseHook, "aget_connection"):
        return await BaseHook.aget_connection(conn_id)
    from asgiref.sync import sync_to_async

    return await sync_to_async(BaseHook.get_connection)(conn_id)


async def connection_settings(conn_id: str) -> OpseraConnectionSettings:
    """The connection's settings, read once per event loop and connection id for ``SETTINGS_TTL``.

    Thousands of waits in one triggerer share a connection: reading it once per wait would
    queue thousands of secrets-backend lookups before the first poll. A failed read is not
    kept: the next poll tries again.
    """
    if not PER_LOOP_CACHES:
        return await _read_settings(conn_id)
    share = loop_share()
    kept = share.settings.get(conn_id)
    if kept is not None and time.monotonic() - kept[1] <= SETTINGS_TTL:
        return kept[0]
    return await _read_shared(share, conn_id)


async def settings_after_refusal(conn_id: str, refused: OpseraConnectionSettings) -> OpseraConnectionSettings | None:
    """The connection read again after Opsera refused ``refused``'s token; None when it holds the same token.

    The waits on one loop that were refused the same token share one read: the first one
    starts it, the others await it (or take its result), so a rotation costs one lookup.
    """
    share = loop_share()
    kept = share.settings.get(conn_id)
    try:
        if kept is not None and kept[0] is not refused:
            settings = kept[0]  # read again since: by another wait refused the same token
        else:
            share.settings.pop(conn_id, None)
            settings = await _read_shared(share, conn_id)
    except Exception as error:  # the refusal is what the caller must see, not a failed re-read
        log.warning("Could not read connection %r again after Opsera refused its token: %s", conn_id, error)
        return None
    return None if settings.token == refused.token else settings


async def _read_shared(share: LoopShare, conn_id: str) -> OpseraConnectionSettings:
    """Join the read of ``conn_id`` under way on this loop, or start one; its result is kept when it ends."""
    read = share.reads.get(conn_id)
    if read is None:
        read = share.reads[conn_id] = asyncio.get_running_loop().create_task(_read_settings(conn_id))

        def ended(task: asyncio.Task) -> None:
            if share.reads.get(conn_id) is task:
                del share.reads[conn_id]
            if not task.cancelled() and task.exception() is None:
                share.settings[conn_id] = (task.result(), time.monotonic())

        read.add_done_callback(ended)
    return await asyncio.shield(read)


async def _read_settings(conn_id: str) -> OpseraConnectionSettings:
    settings = OpseraConnectionSettings.from_connection(await read_connection(conn_id))
    register_secrets(settings)
    warning = check_expiry(settings.token_expires)
    if warning:
        log.warning(warning)
    return settings


def _proxy_for(url: str, configured: dict[str, str] | None) -> str | None:
    """The proxy for ``url``, chosen by the sync client's rules, once per event loop and origin.

    The session does not trust the environment itself: aiohttp would then let ``~/.netrc`` replace the token.
    Reading the environment each time would cost some 8 µs a request (4 % of a poll's client CPU); a triggerer's does
    not change.
    """
    if not PER_LOOP_CACHES:
        return proxy_for(origin_of(url), configured)
    known = loop_share().proxies
    key = (origin_of(url), tuple(sorted((configured or {}).items())))
    if key not in known:
        known[key] = proxy_for(key[0], configured)
    return known[key]


async def _ssl_for(verify: bool | str) -> ssl.SSLContext | bool:
    """What aiohttp's ``ssl`` takes for the ``verify`` extra; a CA bundle is read off the event loop when it changed."""
    if not isinstance(verify, str):
        return bool(verify)
    return CA_BUNDLES.known(verify) or await asyncio.to_thread(CA_BUNDLES.load, verify)


class OpseraAsyncHook:
    """The calls a deferred wait needs, asynchronously."""

    def __init__(
        self,
        opsera_conn_id: str = "opsera_default",
        *,
        retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY,
        sleep: Any = None,
    ) -> None:
        self.opsera_conn_id = opsera_conn_id
        self.retry_policy = retry_policy
        self._sleep = sleep or asyncio.sleep

    async def settings(self) -> OpseraConnectionSettings:
        return await connection_settings(self.opsera_conn_id)

    async def call(
        self,
        name: str,
        *,
        path_params: dict[str, str] | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """One API call with retries; after a refused token, once more with a rotated one (as :class:`OpseraHook`)."""
        endpoint = ENDPOINTS[name]
        params = query_params(params)
        settings = await self.settings()
        try:
            return await self._call_with(settings, endpoint, path_params, json, params)
        except OpseraAuthenticationError:
            rotated = await settings_after_refusal(self.opsera_conn_id, settings)
            if rotated is None:
                raise
        log.warning(rotated_token_note(self.opsera_conn_id))
        return await self._call_with(rotated, endpoint, path_params, json, params)

    async def _call_with(
        self,
        settings: OpseraConnectionSettings,
        endpoint: Endpoint,
        path_params: dict[str, str] | None,
        json: Any,
        params: dict[str, str],
    ) -> Any:
        check_expiry(settings.token_expires)
        url = settings.url_for(endpoint.path, path_params)
        budget = RetryBudget(self.retry_policy)
        import tenacity

        try:
            async for attempt in tenacity.AsyncRetrying(
                **retrying_kwargs(self.retry_policy, endpoint, sleep=self._sleep, log=log, budget=budget)
            ):
                with attempt:
                    return await self._send_once(endpoint, url, settings, json, params)
        except OpseraError as error:
            raise_final(self.retry_policy, error, endpoint)
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _send_once(
        self,
        endpoint: Endpoint,
        url: str,
        settings: OpseraConnectionSettings,
        body: Any,
        params: dict[str, str],
    ) -> Any:
        if settings.verify is False:
            warn_unverified_once("async", settings.base_url, log)
        seconds = request_timeout(settings.timeout)  # the wait for a connection counts in it
        tls = await _ssl_for(settings.verify)  # a bundle that is none raises here, before anything is sent
        proxy = _proxy_for(url, settings.proxies)
        try:
            async with _session() as pooled, pooled.request(
                (origin_of(url), settings.verify, proxy),
                endpoint.method,
                url,
                seconds=seconds,
                json=body,
                params=params or None,
                headers={"Authorization": settings.authorization},
                ssl=tls,
                proxy=proxy,
                allow_redirects=False,
            ) as response:
                status, headers = response.status, response.headers
                refusal = refused_redirect(endpoint, status, headers.get("Location"), settings.base_url)
                if refusal is not None:
                    raise refusal
                text = await _read_body(endpoint, response)
                retry_after = headers.get("Retry-After")
        except _NoFreeConnection as queued:
            raise no_free_connection(endpoint, settings.base_url, queued.seconds, queued.in_flight) from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise transport_error(endpoint, settings, error, seconds) from None
        if 200 <= status < 300:
            return parse_json(text, endpoint, status)
        raise error_for(endpoint, status, text, retry_after, settings)

    # -- the calls a wait needs --

    async def get_pipeline_run_status(self, pipeline_id: str, run_count: int) -> dict[str, Any]:
        body = {
            "pipelineId": validation.object_id(pipeline_id, "pipeline_id"),
            "runCount": validation.positive_int(run_count, "run_count"),
        }
        return await self.call("pipeline_status", json=body)

    async def get_pipeline(self, pipeline_id: str) -> dict[str, Any]:
        return await self.call(
            "pipeline_summary", json={"pipelineId": validation.object_id(pipeline_id, "pipeline_id")}
        )

    async def get_pipeline_logs(
        self, pipeline_id: str, run_count: int | None = None, *, console_only: bool = False
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"pipelineId": validation.object_id(pipeline_id, "pipeline_id")}
        if run_count is not None:
            body["runCount"] = validation.positive_int(run_count, "run_count")
        if console_only:
            body["type"] = "console output"
        records, _ = page_records(await self.call("pipeline_logs", json=body))
        return records

    async def stop_pipeline(self, pipeline_id: str) -> dict[str, Any]:
        """Soft stop, on the connections kept for stops: it never waits behind polls."""
        with stop_lane():
            return await self.call(
                "pipeline_stop", json={"pipelineId": validation.object_id(pipeline_id, "pipeline_id")}
            )

    async def get_task_status(self, task_id: str) -> str:
        answer = await self.call("task_status", json={"taskId": validation.object_id(task_id, "opsera_task_id")})
        return task_status(answer)

    async def get_task(self, task_id: str) -> dict[str, Any]:
        return await self.call("task_summary", json={"taskId": validation.object_id(task_id, "opsera_task_id")})


async def _read_body(endpoint: Endpoint, response: aiohttp.ClientResponse) -> str:
    """The answer's text, read no further than the endpoint's cap."""
    headers = response.headers
    body = CappedBody(endpoint)
    if whole_body_size(endpoint, headers) is not None:
        body.add(await response.read())
    else:
        async for chunk in response.content.iter_chunked(READ_CHUNK):
            body.add(chunk)
    return body_text(body.bytes(), headers.get("Content-Type"))


def transport_error(
    endpoint: Endpoint, settings: OpseraConnectionSettings, error: BaseException, timeout: float | None = None
) -> OpseraError:
    """Classify an aiohttp failure: a failed TLS handshake, no connection (and why), or by whether it was sent."""
    if isinstance(error, aiohttp.ClientConnectorError):  # a handshake fails while connecting, before sending
        handshake = tls_error(endpoint, settings, error)
        if handshake is not None:
            return handshake
    never_sent = isinstance(error, aiohttp.ClientConnectorError) or isinstance(
        error, getattr(aiohttp, "ConnectionTimeoutError", ())
    )
    timed_out = isinstance(error, asyncio.TimeoutError)
    via_proxy = isinstance(error, aiohttp.ClientProxyConnectionError)
    sent = not never_sent
    return no_answer(endpoint, settings, error, timed_out=timed_out, timeout=timeout, sent=sent, via_proxy=via_proxy)
