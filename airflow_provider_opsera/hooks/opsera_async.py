"""The async Opsera client that triggers use, on the same retry policy as :class:`OpseraHook`.

All clients on one event loop share one ``aiohttp`` session: the triggerer may hold
thousands of waits, and a session per call costs several times the CPU per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
import weakref
from collections.abc import AsyncIterator
from functools import lru_cache
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
    first_retry_wait,
    query_params,
    raise_final,
    request_timeout,
    retrying_kwargs,
)
from airflow_provider_opsera.hooks.transport import (
    READ_CHUNK,
    CappedBody,
    body_text,
    checked_ca_bundle,
    no_answer,
    origin_of,
    proxy_for,
    refused_redirect,
    tls_error,
    warn_unverified_once,
    whole_body_size,
)

log = logging.getLogger(__name__)

#: HTTP connections one event loop keeps open at most. Each pooled TLS connection holds a 256 KiB read
#: buffer, and waits that wake together would otherwise open one each (BENCHMARKS.md, "waits in a burst").
POOL_SIZE = 16


class PooledSession:
    """An event loop's one aiohttp session, whose requests first wait for one of ``size`` connections.

    The wait comes before aiohttp's: its total timeout would count the time spent queueing for a
    pooled connection, and a request that timed out there looks like one that may have reached
    Opsera, although it was never sent.
    """

    def __init__(self, session: aiohttp.ClientSession, size: int) -> None:
        self.session = session
        self._free = asyncio.Semaphore(size)

    @property
    def closed(self) -> bool:
        return self.session.closed

    async def close(self) -> None:
        await self.session.close()

    @contextlib.asynccontextmanager
    async def request(self, method: str, url: str, **kwargs: Any) -> AsyncIterator[aiohttp.ClientResponse]:
        async with self._free, self.session.request(method, url, **kwargs) as response:
            yield response


_SESSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PooledSession] = weakref.WeakKeyDictionary()


def shared_session() -> PooledSession:
    """The running event loop's session, created on first use."""
    loop = asyncio.get_running_loop()
    pooled = _SESSIONS.get(loop)
    if pooled is None or pooled.closed:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=POOL_SIZE),
            headers={"Accept": "application/json", "User-Agent": "airflow-provider-opsera"},
            # the per-request timeout comes from the connection
            timeout=aiohttp.ClientTimeout(total=None),
        )
        pooled = _SESSIONS[loop] = PooledSession(session, POOL_SIZE)
    return pooled


async def close_shared_session() -> None:
    """Close the running loop's session (tests and short-lived loops; the triggerer keeps it)."""
    session = _SESSIONS.pop(asyncio.get_running_loop(), None)
    if session is not None and not session.closed:
        await session.close()


async def read_connection(conn_id: str) -> Any:
    """Read a connection without blocking the event loop (Airflow 3's triggerer forbids the sync lookup)."""
    if hasattr(BaseHook, "aget_connection"):
        return await BaseHook.aget_connection(conn_id)
    from asgiref.sync import sync_to_async

    return await sync_to_async(BaseHook.get_connection)(conn_id)


#: seconds a connection read is shared by the waits on one event loop (a refused token is read again at once)
SETTINGS_TTL = 300.0

_SETTINGS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, tuple[asyncio.Task, float]]] = (
    weakref.WeakKeyDictionary()
)


async def connection_settings(conn_id: str) -> OpseraConnectionSettings:
    """The connection's settings, read once per event loop and connection id for ``SETTINGS_TTL``.

    Thousands of waits in one triggerer share a connection: reading it once per wait would
    queue thousands of secrets-backend lookups before the first poll.
    """
    loop = asyncio.get_running_loop()
    cache = _SETTINGS.setdefault(loop, {})
    entry = cache.get(conn_id)
    now = time.monotonic()
    stale = entry is None or now - entry[1] > SETTINGS_TTL
    if not stale and entry[0].done() and entry[0].exception() is not None:
        stale = True  # a failed read is not kept: the next poll tries again
    if stale:
        entry = cache[conn_id] = (loop.create_task(_read_settings(conn_id)), now)
    return await asyncio.shield(entry[0])


async def settings_after_refusal(conn_id: str, refused: OpseraConnectionSettings) -> OpseraConnectionSettings | None:
    """The connection read again after Opsera refused ``refused``'s token; None when it holds the same token.

    The waits on one loop that were refused the same token share one read: the first one
    starts it, the others await it (or take its result), so a rotation costs one lookup.
    """
    loop = asyncio.get_running_loop()
    cache = _SETTINGS.setdefault(loop, {})
    entry = cache.get(conn_id)
    if entry is None or _holds(entry[0], refused):
        entry = cache[conn_id] = (loop.create_task(_read_settings(conn_id)), time.monotonic())
    try:
        settings = await asyncio.shield(entry[0])
    except Exception as error:  # the refusal is what the caller must see, not a failed re-read
        log.warning("Could not read connection %r again after Opsera refused its token: %s", conn_id, error)
        return None
    return None if settings.token == refused.token else settings


def _holds(read: asyncio.Task, settings: OpseraConnectionSettings) -> bool:
    """Whether a finished connection read gave exactly these settings (read before the refusal)."""
    return read.done() and not read.cancelled() and read.exception() is None and read.result() is settings


async def _read_settings(conn_id: str) -> OpseraConnectionSettings:
    settings = OpseraConnectionSettings.from_connection(await read_connection(conn_id))
    register_secrets(settings)
    warning = check_expiry(settings.token_expires)
    if warning:
        log.warning(warning)
    return settings


_PROXIES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple, str | None]] = weakref.WeakKeyDictionary()


def _proxy_for(url: str, configured: dict[str, str] | None) -> str | None:
    """The proxy for ``url``, chosen by the sync client's rules, once per event loop and origin.

    The session does not trust the environment itself: aiohttp would then let ``~/.netrc`` replace the token.
    Reading the environment each time would cost some 8 µs a request (4 % of a poll's client CPU); a triggerer's does
    not change.
    """
    known = _PROXIES.setdefault(asyncio.get_running_loop(), {})
    key = (origin_of(url), tuple(sorted((configured or {}).items())))
    if key not in known:
        known[key] = proxy_for(key[0], configured)
    return known[key]


@lru_cache(maxsize=16)
def _ssl_for(verify: bool | str) -> ssl.SSLContext | bool:
    if verify is False:
        return False
    if isinstance(verify, str):
        checked_ca_bundle(verify)
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return True


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
        try:
            return await self._send_once(endpoint, url, settings, json, params)
        except OpseraError as error:
            budget = RetryBudget(self.retry_policy)  # made only once an attempt failed: most calls never need it
            await self._sleep(first_retry_wait(self.retry_policy, endpoint, error, log, budget))
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
        try:
            async with shared_session().request(
                endpoint.method,
                url,
                json=body,
                params=params or None,
                headers={"Authorization": settings.authorization},
                timeout=aiohttp.ClientTimeout(total=request_timeout(settings.timeout)),
                ssl=_ssl_for(settings.verify),
                proxy=_proxy_for(url, settings.proxies),
                allow_redirects=False,
            ) as response:
                status, headers = response.status, response.headers
                refusal = refused_redirect(endpoint, status, headers.get("Location"), settings.base_url)
                if refusal is not None:
                    raise refusal
                text = await _read_body(endpoint, response)
                retry_after = headers.get("Retry-After")
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise transport_error(endpoint, settings, error, settings.timeout) from None
        if 200 <= status < 300:
            return parse_json(text, endpoint, status)
        raise error_for(endpoint, status, text, retry_after)

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
        return await self.call("pipeline_stop", json={"pipelineId": validation.object_id(pipeline_id, "pipeline_id")})

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
    """Classify an aiohttp failure: a failed TLS handshake, or else by whether the request may have reached Opsera."""
    if isinstance(error, aiohttp.ClientConnectorError):  # a handshake fails while connecting, before sending
        handshake = tls_error(endpoint, settings, error)
        if handshake is not None:
            return handshake
    never_sent = isinstance(error, aiohttp.ClientConnectorError) or isinstance(
        error, getattr(aiohttp, "ConnectionTimeoutError", ())
    )
    timed_out = isinstance(error, asyncio.TimeoutError)
    return no_answer(endpoint, settings.base_url, error, timed_out=timed_out, timeout=timeout, sent=not never_sent)
