"""A connection that cannot be made says why and which setting fixes it, in both clients, over real sockets.

A closed port is refused (the Host's port, or a server that is down: retried, it may come up); a
name under ``.invalid`` never resolves (the Host's name: not retried, nothing would change). Neither
is a timeout, although urllib3 2 raises a refused connection as one.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from airflow_provider_opsera.exceptions import OpseraTransportError
from airflow_provider_opsera.hooks.opsera_async import OpseraAsyncHook
from airflow_provider_opsera.triggers import OpseraTaskTrigger

from .loopback import CLIENTS, PIPELINE_ID, call_with, sync_hook, use_connection

UNKNOWN_HOST = "https://app.opsera.example.invalid"
STATUS = {"pipelineId": PIPELINE_ID, "runCount": 1}


def closed_port() -> int:
    """A loopback port nothing listens on (bound for a moment to pick it, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("call, body", [("pipeline_status", STATUS), ("pipeline_run", {"pipelineId": PIPELINE_ID})])
def test_a_refused_connection_names_the_host_and_is_retried_as_never_sent(client, call, body, monkeypatch):
    port = closed_port()
    use_connection(monkeypatch, f"http://127.0.0.1:{port}")
    with pytest.raises(OpseraTransportError) as caught:
        call_with(client, call, json=body)
    message = str(caught.value)
    assert f"was not sent: 127.0.0.1:{port} refused the connection: nothing listens there" in message
    assert f"Check the connection's Host (now http://127.0.0.1:{port})" in message
    assert "timed out" not in message and "'timeout' extra" not in message
    assert not caught.value.may_have_reached_server  # a run request too: it never left, so it is not ambiguous
    assert len(caught.value.sleeps) == 5  # the server may be restarting: the policy's six attempts


@pytest.mark.parametrize("client", CLIENTS)
def test_a_host_name_that_does_not_resolve_fails_at_once_naming_the_host(client, monkeypatch):
    use_connection(monkeypatch, UNKNOWN_HOST)
    with pytest.raises(OpseraTransportError) as caught:
        call_with(client, "pipeline_status", json=STATUS)
    assert not caught.value.may_have_reached_server and not caught.value.worth_retrying
    assert str(caught.value) == (
        "Opsera POST /api/v1/pipeline/status was not sent: the name 'app.opsera.example.invalid' does not resolve "
        f"(DNS knows no such host). Check the connection's Host (now {UNKNOWN_HOST})."
    )
    assert caught.value.sleeps == []  # asking again changes nothing


@pytest.mark.parametrize("client", CLIENTS)
def test_a_proxy_that_refuses_names_the_proxies_extra(client, monkeypatch):
    proxy = f"http://127.0.0.1:{closed_port()}"
    use_connection(monkeypatch, "http://127.0.0.1:1", proxies=f'{{"http": "{proxy}"}}')
    monkeypatch.setenv("NO_PROXY", "")
    with pytest.raises(OpseraTransportError) as caught:
        call_with(client, "pipeline_status", json=STATUS)
    assert "was not sent: the proxy refused the connection" in str(caught.value)
    assert "Check the connection's 'proxies' extra (or HTTPS_PROXY / HTTP_PROXY)" in str(caught.value)


@pytest.mark.parametrize("host, words", [("closed port", "refused the connection"), ("unknown", "does not resolve")])
def test_the_connection_test_says_what_it_found(host, words, monkeypatch):
    """What ``airflow connections test`` and the Test button print."""
    use_connection(monkeypatch, f"http://127.0.0.1:{closed_port()}" if host == "closed port" else UNKNOWN_HOST)
    passed, message = sync_hook().test_connection()
    assert not passed
    assert words in message and "Check the connection's Host" in message and "timed out" not in message


def test_a_deferred_wait_on_a_closed_port_ends_saying_the_connection_was_refused(monkeypatch):
    port = closed_port()
    use_connection(monkeypatch, f"http://127.0.0.1:{port}")

    async def no_wait(seconds: float) -> None:
        await asyncio.sleep(0)

    trigger = OpseraTaskTrigger("61a1b2c3d4e5f6a7b8c9d0e1", poll_interval=1)
    trigger._sleep = no_wait
    trigger._hook = OpseraAsyncHook(sleep=no_wait)

    async def first_event() -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    event = asyncio.run(first_event())
    assert event["status"] == "error"
    assert f"127.0.0.1:{port} refused the connection" in event["message"]
    assert "Check the connection's Host" in event["message"]
