"""The connection's timeout bounds a whole request: a server trickling its answer cannot hold one longer."""

from __future__ import annotations

import threading
import time

import pytest

from airflow_provider_opsera.exceptions import OpseraTransportError
from airflow_provider_opsera.hooks.retry import RetryPolicy

from .loopback import CLIENTS, PIPELINE_ID, SocketServer, call_with, use_connection

TIMEOUT = 2.0
SLACK = 1.0
#: seconds between two bytes: far below the timeout, so a timeout per read never fires
STEP = 0.05
ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 62\r\n\r\n"
    b'{"status": "running", "message": "Run 1 is running, slowly."}\n'
)
BODY_START = ANSWER.index(b"\r\n\r\n") + 4


def trickling_server(first_trickled: int, gave_up: threading.Event) -> SocketServer:
    """Sends its answer at once up to ``first_trickled``, then one byte every ``STEP`` seconds (~7 s in all)."""

    def handle(sock) -> None:
        sock.recv(65536)
        sock.sendall(ANSWER[:first_trickled])
        for byte in ANSWER[first_trickled:]:
            if gave_up.wait(STEP):
                return
            sock.sendall(bytes([byte]))

    return SocketServer(handle)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("trickled", ["status line on", "body"])
def test_a_trickled_answer_ends_at_the_timeout(client, trickled, monkeypatch):
    gave_up = threading.Event()
    with trickling_server(0 if trickled == "status line on" else BODY_START, gave_up) as server:
        use_connection(monkeypatch, f"http://127.0.0.1:{server.port}", timeout=TIMEOUT)
        started = time.monotonic()
        try:
            with pytest.raises(
                OpseraTransportError, match="timed out .*within 2 s, the connection's 'timeout' extra"
            ) as caught:
                call_with(
                    client,
                    "pipeline_status",
                    hook_kwargs={"retry_policy": RetryPolicy(max_attempts=1)},
                    json={"pipelineId": PIPELINE_ID, "runCount": 1},
                )
            elapsed = time.monotonic() - started
        finally:
            gave_up.set()
    assert TIMEOUT - 0.1 <= elapsed < TIMEOUT + SLACK, elapsed
    assert caught.value.may_have_reached_server  # the request was sent: a run request would be ambiguous
