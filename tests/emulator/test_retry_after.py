"""``Retry-After``: an unusable value falls back to the normal backoff, and one call never sleeps past the policy."""

from __future__ import annotations

import asyncio
import email.utils
import time

import pytest

from airflow_provider_opsera.exceptions import OpseraRateLimitError
from airflow_provider_opsera.hooks import OpseraHook
from airflow_provider_opsera.hooks.responses import retry_after_seconds
from airflow_provider_opsera.hooks.retry import DEFAULT_RETRY_POLICY, RetryPolicy
from tests.scripted_http import Answer, Request, ScriptedServer, connection_json
from tests.unit.conftest import PIPELINE_ID, make_jwt

TOKEN = make_jwt(time.time() + 30 * 86400)


def past_http_date() -> str:
    return email.utils.formatdate(time.time() - 3600, usegmt=True)


def future_http_date(seconds: float) -> str:
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


@pytest.mark.parametrize("header", ["soon", "-5", "NaN", "inf", "1e400", "", "  ", "Wed, 99 Foo 2015 07:28:00 GMT"])
def test_a_retry_after_that_says_nothing_usable_is_none(header):
    assert retry_after_seconds(header) is None


def test_a_retry_after_date_that_has_passed_is_none():
    assert retry_after_seconds(past_http_date()) is None


@pytest.mark.parametrize("header, seconds", [("0", 0.0), ("5", 5.0), ("2.5", 2.5)])
def test_a_retry_after_in_seconds(header, seconds):
    assert retry_after_seconds(header) == seconds


def test_a_retry_after_date_ahead_is_the_time_until_it():
    assert 25 < retry_after_seconds(future_http_date(30)) <= 30


class Counting:
    """Answers 429 for the first ``limited`` requests, then a running status."""

    def __init__(self, retry_after: str, limited: int | None) -> None:
        self.retry_after, self.limited, self.count = retry_after, limited, 0

    def __call__(self, request: Request) -> Answer:
        self.count += 1
        if self.limited is None or self.count <= self.limited:
            return Answer(429, {"message": "slow down"}, {"Retry-After": self.retry_after})
        return Answer(200, {"status": "running", "message": "Run 3 is running"})


@pytest.fixture
def connect(monkeypatch):
    def _connect(url: str) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", connection_json(url, TOKEN))

    return _connect


def sync_read(url_setter, answer, policy: RetryPolicy = DEFAULT_RETRY_POLICY):
    """The status read by the sync hook, its sleeps recorded instead of slept; (answer or error, sleeps)."""
    with ScriptedServer(answer) as server:
        url_setter(server.url)
        hook = OpseraHook(retry_policy=policy)
        sleeps: list[float] = []
        hook._sleep = sleeps.append
        try:
            result = hook.get_pipeline_run_status(PIPELINE_ID, 3)
        except OpseraRateLimitError as error:
            result = error
    return result, sleeps


def async_read(url_setter, answer, policy: RetryPolicy = DEFAULT_RETRY_POLICY):
    from airflow_provider_opsera.hooks.opsera_async import OpseraAsyncHook, close_shared_session

    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    async def read():
        try:
            return await OpseraAsyncHook(retry_policy=policy, sleep=record).get_pipeline_run_status(PIPELINE_ID, 3)
        except OpseraRateLimitError as error:
            return error
        finally:
            await close_shared_session()

    with ScriptedServer(answer) as server:
        url_setter(server.url)
        result = asyncio.run(read())
    return result, sleeps


CLIENTS = pytest.mark.parametrize("read", [sync_read, async_read], ids=["sync", "async"])


@CLIENTS
@pytest.mark.parametrize("header", ["soon", "-5", "NaN", "past date"])
def test_an_unusable_retry_after_waits_the_normal_backoff(read, header, connect):
    header = past_http_date() if header == "past date" else header
    result, sleeps = read(connect, Counting(header, limited=2))
    assert result == {"status": "running", "message": "Run 3 is running"}
    policy = DEFAULT_RETRY_POLICY
    assert len(sleeps) == 2
    assert policy.initial_wait / 2 <= sleeps[0] <= policy.initial_wait  # the first backoff step, not 0
    assert policy.initial_wait <= sleeps[1] <= 2 * policy.initial_wait


@CLIENTS
def test_a_usable_retry_after_is_honoured(read, connect):
    result, sleeps = read(connect, Counting("7", limited=1))
    assert result["status"] == "running" and sleeps == [7.0]


@CLIENTS
@pytest.mark.parametrize("header", ["120", "100000"])
def test_one_call_sleeps_no_longer_than_the_policy_s_total(read, header, connect):
    result, sleeps = read(connect, Counting(header, limited=None))
    assert isinstance(result, OpseraRateLimitError)
    assert sum(sleeps) <= DEFAULT_RETRY_POLICY.total
    assert sleeps[0] == DEFAULT_RETRY_POLICY.max_retry_after  # the server's wish, up to the policy's cap


@CLIENTS
def test_no_retry_starts_once_the_total_is_slept(read, connect):
    policy = RetryPolicy(max_attempts=20, total=10.0)
    counting = Counting("4", limited=None)
    result, sleeps = read(connect, counting, policy)
    assert isinstance(result, OpseraRateLimitError)
    assert sleeps == [4.0, 4.0, 2.0]  # the last wait is cut to what the total leaves
    assert counting.count == 4
