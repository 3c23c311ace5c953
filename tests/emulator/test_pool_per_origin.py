"""The async client keeps a pool of connections per origin: a host that does not answer holds up only its own requests.

Against real loopback servers: one that takes requests and never answers (until the test lets
it go), and healthy ones. The time a request waits for a connection counts in its timeout and
in a wait's deadline, and a stop has connections of its own.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from airflow_provider_opsera.exceptions import OpseraTransportError
from airflow_provider_opsera.hooks.opsera_async import POOL_SIZE, OpseraAsyncHook, close_shared_session
from airflow_provider_opsera.hooks.retry import RetryPolicy, calls_end_by

from .loopback import PIPELINE_ID, TOKEN, RecordingServer, SocketServer, json_answer

TASK_ID = "61a1b2c3d4e5f6a7b8c9d0e1"
ONCE = RetryPolicy(max_attempts=1)
#: how long a test waits for what it expects at most (a bound, not a duration it asserts)
BOUND = 20.0


def use(monkeypatch, conn_id: str, url: str, timeout: float) -> None:
    conn = {"conn_type": "opsera", "host": url, "password": TOKEN, "extra": {"timeout": timeout}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def hanging_server(let_go: threading.Event) -> SocketServer:
    """Takes each connection and its request, and answers nothing until ``let_go`` is set."""

    def handle(sock) -> None:
        sock.recv(65536)
        let_go.wait(BOUND * 3)

    return SocketServer(handle)


async def until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {BOUND:g} s: {what}")
        await asyncio.sleep(0.01)


async def fill_the_pool(hook: OpseraAsyncHook, extra: int, opened: Callable[[], int]) -> list[asyncio.Task]:
    """``POOL_SIZE + extra`` polls of ``hook``'s host under way, ``POOL_SIZE`` of them on connections."""
    polls = [asyncio.create_task(hook.get_task_status(TASK_ID)) for _ in range(POOL_SIZE + extra)]
    await until(lambda: opened() >= POOL_SIZE, f"{POOL_SIZE} connections to the hanging host")
    return polls


async def end(polls: list[asyncio.Task]) -> list[Any]:
    for poll in polls:
        poll.cancel()
    outcomes = await asyncio.gather(*polls, return_exceptions=True)
    await close_shared_session()
    return outcomes


def test_a_hanging_host_does_not_hold_up_a_healthy_one(monkeypatch):
    let_go = threading.Event()
    with hanging_server(let_go) as hanging, RecordingServer(json_answer("success")) as healthy:
        use(monkeypatch, "opsera_hanging", f"http://127.0.0.1:{hanging.port}", timeout=60)
        use(monkeypatch, "opsera_default", healthy.url, timeout=5)

        async def scenario() -> tuple[str, list[Any]]:
            polls = await fill_the_pool(OpseraAsyncHook("opsera_hanging"), 4, lambda: hanging.connections)
            try:
                status = await asyncio.wait_for(OpseraAsyncHook(retry_policy=ONCE).get_task_status(TASK_ID), BOUND)
            finally:
                outcomes = await end(polls)
            return status, outcomes

        try:
            status, outcomes = asyncio.run(scenario())
        finally:
            let_go.set()
    assert status == "success"
    assert hanging.connections == POOL_SIZE  # the polls beyond the pool waited for one of its connections
    assert all(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes)


@pytest.mark.parametrize("bound", ["the connection's timeout", "the wait's deadline"])
def test_the_wait_for_a_connection_counts_in_the_request_s_time_and_ends_unsent(monkeypatch, bound):
    let_go = threading.Event()
    with hanging_server(let_go) as hanging:
        url = f"http://127.0.0.1:{hanging.port}"
        use(monkeypatch, "opsera_hanging", url, timeout=60)
        # the same origin through another connection, whose requests may take 1.5 s in all
        use(monkeypatch, "opsera_default", url, timeout=1.5 if bound == "the connection's timeout" else 60)

        async def scenario() -> OpseraTransportError:
            polls = await fill_the_pool(OpseraAsyncHook("opsera_hanging"), 0, lambda: hanging.connections)
            try:
                with calls_end_by(time.time() + 1.5 if bound == "the wait's deadline" else None):
                    with pytest.raises(OpseraTransportError) as caught:
                        await asyncio.wait_for(OpseraAsyncHook(retry_policy=ONCE).get_task_status(TASK_ID), BOUND)
            finally:
                await end(polls)
            return caught.value

        try:
            error = asyncio.run(scenario())
        finally:
            let_go.set()
    assert not error.may_have_reached_server  # safe to send again, even for a run request
    assert re.search(r"was not sent: for 1\.[45] s \(the connection's 'timeout' extra", str(error))
    assert f"none of the {POOL_SIZE} connections to {url} this process keeps came free" in str(error)
    assert hanging.connections == POOL_SIZE


def test_a_stop_goes_through_while_polls_fill_the_pool(monkeypatch):
    """on_kill's stop, sent while every pooled connection waits on a slow status read, is not queued behind them."""
    let_go = threading.Event()
    stop_answer = json_answer({"status": "success", "message": "The pipeline has been stopped."})

    def answer(handler: BaseHTTPRequestHandler) -> None:
        if handler.path.endswith("/pipeline/stop"):
            stop_answer(handler)
        else:  # a status read: Opsera is slow
            let_go.wait(BOUND * 3)
            json_answer("running")(handler)

    with RecordingServer(answer) as server:
        use(monkeypatch, "opsera_default", server.url, timeout=60)

        def status_reads() -> int:
            return sum(1 for request in list(server.requests) if "/task/status" in request["line"])

        async def scenario() -> dict:
            hook = OpseraAsyncHook(retry_policy=ONCE)
            polls = await fill_the_pool(hook, 4, status_reads)
            try:
                return await asyncio.wait_for(hook.stop_pipeline(PIPELINE_ID), BOUND)
            finally:
                await end(polls)

        try:
            answered = asyncio.run(scenario())
        finally:
            let_go.set()
    assert answered["message"] == "The pipeline has been stopped."
    assert status_reads() == POOL_SIZE


def test_a_trigger_s_stop_and_the_reads_that_decide_it_go_through_while_polls_fill_the_pool(monkeypatch):
    """What on_kill sends: the summary and status reads before the stop take the stop's connections too."""
    from airflow_provider_opsera.triggers import OpseraPipelineRunTrigger

    let_go = threading.Event()
    lock = threading.Lock()
    status_reads = [0]

    def answer(handler: BaseHTTPRequestHandler) -> None:
        if handler.path.endswith("/pipeline/stop"):
            json_answer({"status": "success", "message": "The pipeline has been stopped."})(handler)
        elif handler.path.endswith("/pipeline/summary"):
            json_answer({"_id": PIPELINE_ID, "workflow": {"run_count": 3}})(handler)
        else:
            with lock:
                status_reads[0] += 1
                polling = status_reads[0] <= POOL_SIZE
            if polling:  # the polls that fill the pool: Opsera is slow
                let_go.wait(BOUND * 3)
            json_answer({"status": "running", "message": "step 2"})(handler)

    with RecordingServer(answer) as server:
        use(monkeypatch, "opsera_default", server.url, timeout=60)

        async def scenario() -> None:
            hook = OpseraAsyncHook(retry_policy=ONCE)
            polls = [asyncio.create_task(hook.get_pipeline_run_status(PIPELINE_ID, 3)) for _ in range(POOL_SIZE + 4)]
            await until(lambda: status_reads[0] >= POOL_SIZE, f"{POOL_SIZE} status reads in flight")
            trigger = OpseraPipelineRunTrigger(PIPELINE_ID, 3)
            try:
                await asyncio.wait_for(trigger.stop_remote(hook, "the task was marked failed"), BOUND)
            finally:
                await end(polls)

        try:
            asyncio.run(scenario())
        finally:
            let_go.set()
    assert [r["line"].split()[1] for r in server.requests if "/pipeline/s" in r["line"]][-3:] == [
        "/api/v1/pipeline/summary",
        "/api/v1/pipeline/status",
        "/api/v1/pipeline/stop",
    ]
