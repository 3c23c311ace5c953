"""A trigger's deadline bounds the retries inside one poll: against a failing server the wait ends on time."""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_provider_opsera.exceptions import OpseraServerError, OpseraTransportError
from airflow_provider_opsera.hooks import OpseraHook
from airflow_provider_opsera.hooks.retry import RetryPolicy, calls_end_by
from airflow_provider_opsera.triggers import OpseraPipelineRunTrigger
from tests.scripted_http import Answer, Request, ScriptedServer, connection_json
from tests.unit.conftest import PIPELINE_ID, make_jwt
from tests.unit.pipeline_fakes import FakeClock

TOKEN = make_jwt(time.time() + 30 * 86400)
SLACK = 2.0


def slow_unavailable(request: Request) -> Answer:
    return Answer(503, {"message": "service unavailable"}, delay=0.3)


def unavailable(request: Request) -> Answer:
    return Answer(503, {"message": "service unavailable"})


@pytest.fixture
def connect(monkeypatch):
    def _connect(url: str) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", connection_json(url, TOKEN))

    return _connect


def wait_against(answer, connect, timeout: float) -> tuple[dict, float, ScriptedServer]:
    """A pipeline-run trigger's event against a server answering ``answer``, and how long the wait took."""
    from airflow_provider_opsera.hooks.opsera_async import close_shared_session

    async def wait() -> dict:
        trigger = OpseraPipelineRunTrigger(pipeline_id=PIPELINE_ID, run_count=3, poll_interval=1, timeout=timeout)
        try:
            return [event.payload async for event in trigger.run()][0]
        finally:
            await close_shared_session()

    with ScriptedServer(answer) as server:
        connect(server.url)
        started = time.monotonic()
        event = asyncio.run(wait())
        return event, time.monotonic() - started, server


def test_a_wait_against_a_slowly_failing_server_ends_within_its_timeout(connect):
    event, elapsed, server = wait_against(slow_unavailable, connect, timeout=2.0)
    assert event["status"] == "timeout", event
    assert len(server.requests) >= 2  # the read was retried within the time it had
    assert elapsed < 2.0 + SLACK


def sync_read_failing(connect, end_time) -> tuple[FakeClock, ScriptedServer, OpseraHook]:
    """A status read by the sync hook against a server that keeps answering 503, with ``end_time`` in force."""
    clock = FakeClock()
    with ScriptedServer(unavailable) as server:
        connect(server.url)
        hook = OpseraHook()
        hook._sleep = clock.sleep
        with calls_end_by(end_time(clock), clock.time), pytest.raises(OpseraServerError):
            hook.get_pipeline_run_status(PIPELINE_ID, 3)
    return clock, server, hook


def test_the_sync_client_s_retries_stop_at_the_deadline(connect):
    clock, server, _ = sync_read_failing(connect, lambda clock: clock.now + 5)
    assert 0 < sum(clock.sleeps) <= 5 + 1e-6
    assert len(server.requests) == len(clock.sleeps) + 1


def test_the_async_client_s_retries_stop_at_the_deadline(connect):
    from airflow_provider_opsera.hooks.opsera_async import OpseraAsyncHook, close_shared_session

    clock = FakeClock()

    async def read() -> None:
        try:
            with calls_end_by(clock.now + 5, clock.time), pytest.raises(OpseraServerError):
                await OpseraAsyncHook(sleep=clock.async_sleep).get_pipeline_run_status(PIPELINE_ID, 3)
        finally:
            await close_shared_session()

    with ScriptedServer(unavailable) as server:
        connect(server.url)
        asyncio.run(read())
    assert 0 < sum(clock.sleeps) <= 5 + 1e-6
    assert len(server.requests) == len(clock.sleeps) + 1


def test_a_deadline_that_has_passed_leaves_no_retry(connect):
    clock, server, _ = sync_read_failing(connect, lambda clock: clock.now - 1)
    assert clock.sleeps == [] and len(server.requests) == 1


def test_without_a_deadline_the_policy_alone_bounds_the_retries(connect):
    clock, server, hook = sync_read_failing(connect, lambda clock: None)
    assert len(server.requests) == hook.retry_policy.max_attempts


def hanging(request: Request) -> Answer:
    return Answer(200, {"status": "running"}, delay=60)


def test_a_read_under_way_at_the_deadline_is_cut_there(connect):
    """The connection's timeout (30 s) does not carry a wait past its own (2 s): the read in flight ends with it."""
    event, elapsed, server = wait_against(hanging, connect, timeout=2.0)
    assert event["status"] == "timeout", event
    assert len(server.requests) >= 1
    assert elapsed < 2.0 + SLACK


def test_the_sync_client_s_read_under_way_at_the_deadline_is_cut_there(connect):
    """As a trigger's wait, the worker's: a read sent 2 s before the wait's deadline ends by then, not after 30 s."""
    with ScriptedServer(hanging) as server:
        connect(server.url)
        hook = OpseraHook(retry_policy=RetryPolicy(max_attempts=1))
        started = time.monotonic()
        with calls_end_by(time.time() + 2.0), pytest.raises(OpseraTransportError, match="timed out"):
            hook.get_pipeline_run_status(PIPELINE_ID, 3)
        elapsed = time.monotonic() - started
    assert len(server.requests) == 1
    assert elapsed < 2.0 + SLACK
