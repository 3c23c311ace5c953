"""A server that echoes the Authorization header back: the token, whatever its shape, reaches no message.

Each error page below repeats what it was sent in a form no shape-based scrub recognises
(no ``Bearer`` before it, no JWT look). The token must still be absent from the raised
error, a trigger's event, ``test_connection()``'s message and everything logged.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse

import pytest

from airflow_provider_opsera.exceptions import OpseraError
from airflow_provider_opsera.hooks import OpseraHook
from airflow_provider_opsera.hooks.retry import RetryPolicy
from airflow_provider_opsera.triggers import OpseraPipelineRunTrigger
from airflow_provider_opsera.triggers.polling import OpseraPollingTrigger
from tests.scripted_http import Answer, Request, ScriptedServer, connection_json
from tests.unit.conftest import PIPELINE_ID, make_jwt
from tests.unit.pipeline_fakes import TaskLog

QUICK = RetryPolicy(max_attempts=3, initial_wait=0.01, max_wait=0.02)

TOKENS = {
    "opaque": ("abc123opaqueTokenValue9f8e7d", None),
    "jwt": (make_jwt(time.time() + 30 * 86400, scope="api"), None),
    "prefix none": ("zz9OpaqueWithoutPrefix42", "none"),
    "escapes in JSON and URLs": ("s3cr3t/with+plus=and\\back", "none"),
}


def echoing(status: int):
    """Answers every request with ``status`` and a body repeating the Authorization header several ways."""

    def answer(request: Request) -> Answer:
        sent = request.headers.get("Authorization", "")
        if status >= 500:  # a proxy's plain-text page
            return Answer(status, f"Upstream error. Request carried: {sent}", {"Content-Type": "text/plain"})
        message = {
            "status": "failed",
            "message": f"credential {sent} refused; as query: {urllib.parse.quote(sent, safe='')}",
            "detail": {"received": sent},
        }
        return Answer(status, message)

    return answer


def failed_run_echoing(request: Request) -> Answer:
    """A status answer whose message echoes the header: it goes into the trigger's event."""
    return Answer(200, {"status": "failed", "message": f"Run 3 failed. You sent {request.headers['Authorization']}"})


@pytest.fixture(params=sorted(TOKENS))
def token_and_prefix(request):
    return TOKENS[request.param]


@pytest.fixture
def connect(monkeypatch):
    def _connect(url: str, token: str, prefix: str | None) -> None:
        extra = {"auth_prefix": prefix} if prefix else {}
        monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", connection_json(url, token, **extra))

    return _connect


@pytest.fixture
def log(caplog, capsys):
    return TaskLog(caplog, capsys)


def _assert_absent(token: str, *texts: str) -> None:
    everything = "\n".join(texts)
    for spelling in (token, urllib.parse.quote(token, safe=""), token.replace("\\", "\\\\")):
        assert spelling not in everything
    if token.count(".") == 2:  # a JWT: no part of its payload or signature either
        for part in token.split(".")[1:]:
            assert part not in everything


def quick_hook() -> OpseraHook:
    hook = OpseraHook(retry_policy=QUICK)
    hook._sleep = lambda seconds: None
    return hook


def _error_texts(error: BaseException) -> list[str]:
    texts = []
    while error is not None:
        texts += [str(error), repr(error), repr(error.args), str(getattr(error, "message", ""))]
        error = error.__cause__ or error.__context__
    return texts


@pytest.mark.parametrize("status", [401, 400, 500])
def test_the_sync_client_s_errors_and_retry_warnings_carry_no_token(token_and_prefix, status, connect, log):
    token, prefix = token_and_prefix
    with ScriptedServer(echoing(status)) as server:
        connect(server.url, token, prefix)
        with pytest.raises(OpseraError) as caught:
            quick_hook().get_pipeline_run_status(PIPELINE_ID, 3)
    assert caught.value.status_code == status
    assert len(server.requests) == (3 if status == 500 else 1)  # the 5xx was retried, with warnings
    assert server.requests[0].headers["Authorization"].endswith(token)  # the echo really held it
    _assert_absent(token, *_error_texts(caught.value), log.text())


@pytest.mark.parametrize("status", [401, 400, 500])
def test_the_async_client_s_errors_and_retry_warnings_carry_no_token(token_and_prefix, status, connect, log):
    from airflow_provider_opsera.hooks.opsera_async import OpseraAsyncHook, close_shared_session

    token, prefix = token_and_prefix

    async def no_wait(seconds: float) -> None:
        pass

    async def read() -> BaseException:
        try:
            await OpseraAsyncHook(retry_policy=QUICK, sleep=no_wait).get_pipeline_run_status(PIPELINE_ID, 3)
        except OpseraError as error:
            return error
        finally:
            await close_shared_session()
        raise AssertionError("the read succeeded")

    with ScriptedServer(echoing(status)) as server:
        connect(server.url, token, prefix)
        error = asyncio.run(read())
    assert error.status_code == status
    _assert_absent(token, *_error_texts(error), log.text())


@pytest.mark.parametrize("status", [401, 403, 500])
def test_test_connection_s_message_carries_no_token(token_and_prefix, status, connect, log):
    token, prefix = token_and_prefix
    with ScriptedServer(echoing(status)) as server:
        connect(server.url, token, prefix)
        ok, message = quick_hook().test_connection()
    assert ok is (status == 403)  # a 403 proves the token valid; the others fail the test
    _assert_absent(token, message, log.text())


@pytest.mark.parametrize("answer", [failed_run_echoing, echoing(401)], ids=["failed run", "401"])
def test_a_trigger_event_carries_no_token(token_and_prefix, answer, connect, log, monkeypatch):
    token, prefix = token_and_prefix

    async def no_wait(seconds: float) -> None:
        pass

    monkeypatch.setattr(OpseraPollingTrigger, "_sleep", staticmethod(no_wait))

    async def first_event() -> dict:
        trigger = OpseraPipelineRunTrigger(pipeline_id=PIPELINE_ID, run_count=3, poll_interval=1, timeout=60)
        return [event.payload async for event in trigger.run()][0]

    with ScriptedServer(answer) as server:
        connect(server.url, token, prefix)
        event = asyncio.run(first_event())
    assert event["status"] in ("failed", "error") and event["message"]
    _assert_absent(token, repr(event), log.text())


def test_airflow_s_masker_learns_the_token_whatever_its_shape(token_and_prefix, connect):
    from airflow.sdk._shared.secrets_masker import redact

    token, prefix = token_and_prefix
    connect("http://127.0.0.1:9", token, prefix)
    settings = OpseraHook().settings  # reading the connection registers what it holds
    assert token not in redact(f"echoed: {token}")
    assert settings.authorization not in redact(f"echoed: {settings.authorization}")
