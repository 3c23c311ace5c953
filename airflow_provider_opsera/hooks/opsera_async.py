"""The async Opsera client that triggers use, on the same retry policy as :class:`OpseraHook`.

All clients on one event loop share one ``aiohttp`` session: the triggerer may hold
thousands of waits, and a session per call costs several times the CPU per request.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import urllib.parse
import weakref
from functools import lru_cache
from typing import Any

import aiohttp

from airflow_provider_opsera import validation
from airflow_provider_opsera._compat import BaseHook
from airflow_provider_opsera.api import ENDPOINTS, Endpoint
from airflow_provider_opsera.connection import OpseraConnectionSettings
from airflow_provider_opsera.exceptions import (
    OpseraError,
    OpseraTransportError,
)
from airflow_provider_opsera.hooks.opsera import register_secrets, task_status_text
from airflow_provider_opsera.hooks.responses import error_for, page_records, parse_json
from airflow_provider_opsera.hooks.retry import DEFAULT_RETRY_POLICY, RetryPolicy, query_params, retrying_kwargs
from airflow_provider_opsera.token import check_token_expiry

log = logging.getLogger(__name__)

_SESSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)


def shared_session() -> aiohttp.ClientSession:
    """The running event loop's session, created on first use."""
    loop = asyncio.get_running_loop()
    session = _SESSIONS.get(loop)
    if session is None or session.closed:
        session = aiohttp.ClientSession(
            headers={"Accept": "application/json", "User-Agent": "airflow-provider-opsera"},
            # the per-request timeout comes from the connection
            timeout=aiohttp.ClientTimeout(total=None),
        )
        _SESSIONS[loop] = session
    return session


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


@lru_cache(maxsize=16)
def _ssl_for(verify: bool | str) -> ssl.SSLContext | bool:
    if verify is False:
        return False
    if isinstance(verify, str):
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
        self._settings: OpseraConnectionSettings | None = None

    async def settings(self) -> OpseraConnectionSettings:
        if self._settings is None:
            settings = OpseraConnectionSettings.from_connection(await read_connection(self.opsera_conn_id))
            register_secrets(settings)
            warning = check_token_expiry(settings.token)
            if warning:
                log.warning(warning)
            self._settings = settings
        return self._settings

    async def call(
        self,
        name: str,
        *,
        path_params: dict[str, str] | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        import tenacity

        endpoint = ENDPOINTS[name]
        settings = await self.settings()
        check_token_expiry(settings.token)
        url = settings.url_for(endpoint.path, path_params)
        params = query_params(params)
        try:
            async for attempt in tenacity.AsyncRetrying(
                **retrying_kwargs(self.retry_policy, endpoint, sleep=self._sleep, log=log)
            ):
                with attempt:
                    return await self._send_once(endpoint, url, settings, json, params)
        except OpseraError as error:
            final = self.retry_policy.final_error(error, endpoint)
            if final is error:
                raise
            raise final from error
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _send_once(
        self,
        endpoint: Endpoint,
        url: str,
        settings: OpseraConnectionSettings,
        body: Any,
        params: dict[str, str],
    ) -> Any:
        proxy = (settings.proxies or {}).get(urllib.parse.urlsplit(url).scheme)
        try:
            async with shared_session().request(
                endpoint.method,
                url,
                json=body,
                params=params or None,
                headers={"Authorization": settings.authorization},
                timeout=aiohttp.ClientTimeout(total=settings.timeout),
                ssl=_ssl_for(settings.verify),
                proxy=proxy,
            ) as response:
                text = await response.text(errors="replace")
                status, retry_after = response.status, response.headers.get("Retry-After")
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise transport_error(endpoint, settings.base_url, error) from None
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
        return await self.call(
            "pipeline_stop", json={"pipelineId": validation.object_id(pipeline_id, "pipeline_id")}
        )

    async def get_task_status(self, task_id: str) -> str:
        answer = await self.call("task_status", json={"taskId": validation.object_id(task_id, "opsera_task_id")})
        return task_status_text(answer)

    async def get_task(self, task_id: str) -> dict[str, Any]:
        return await self.call("task_summary", json={"taskId": validation.object_id(task_id, "opsera_task_id")})


def transport_error(endpoint: Endpoint, base_url: str, error: BaseException) -> OpseraTransportError:
    """Classify an aiohttp failure by whether the request may have reached Opsera."""
    never_sent = isinstance(error, aiohttp.ClientConnectorError) or isinstance(
        error, getattr(aiohttp, "ConnectionTimeoutError", ())
    )
    kind = "timed out" if isinstance(error, asyncio.TimeoutError) else "failed"
    return OpseraTransportError(
        f"Opsera {endpoint.method} {endpoint.path} {kind} ({type(error).__name__}) talking to {base_url}",
        may_have_reached_server=not never_sent,
        endpoint=endpoint.name,
    )
