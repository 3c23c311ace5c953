"""Each call reads at most its endpoint's cap of an answer, announced or streamed, and memory stays near it."""

from __future__ import annotations

import threading

import psutil
import pytest

from airflow_provider_opsera.client.api import ENDPOINTS
from airflow_provider_opsera.exceptions import OpseraError, OpseraResponseTooLargeError
from airflow_provider_opsera.hooks.retry import RetryPolicy

from .loopback import CLIENTS, PIPELINE_ID, RecordingServer, call_with, use_connection

HUGE = 300 * 2**20
CHUNK = b"x" * 2**16
#: what the process may grow by besides the body (interpreter, connection and event-loop upkeep)
NOISE = 8 * 2**20


def huge_answer(announce: bool, understated: bool = False):
    """A JSON string of 300 MiB, with its length announced, or chunked without one (or with a length far too small)."""

    def answer(handler) -> None:
        if handler.path.endswith("/task/status"):  # a small answer, to warm the client up
            handler.send_response(200)
            handler.send_header("Content-Length", "9")
            handler.end_headers()
            handler.wfile.write(b'"running"')
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        if announce:
            handler.send_header("Content-Length", str(HUGE))
        else:
            handler.send_header("Transfer-Encoding", "chunked")
            if understated:
                handler.send_header("Content-Length", "100")
        handler.end_headers()
        for _ in range(HUGE // len(CHUNK)):
            if announce:
                handler.wfile.write(CHUNK)
            else:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
        if not announce:
            handler.wfile.write(b"0\r\n\r\n")

    return answer


class PeakMemory:
    """The most this process's resident memory grew by while the block ran (sampled every 5 ms)."""

    def __enter__(self) -> PeakMemory:
        self.process = psutil.Process()
        self.start = self.peak = self.process.memory_info().rss
        self.done = threading.Event()
        self.sampler = threading.Thread(target=self._sample, daemon=True)
        self.sampler.start()
        return self

    def _sample(self) -> None:
        while not self.done.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.sampler.join()
        self.grew = max(self.peak, self.process.memory_info().rss) - self.start


CASES = [
    ("pipeline_status", {"pipelineId": PIPELINE_ID, "runCount": 1}, True),
    ("pipeline_status", {"pipelineId": PIPELINE_ID, "runCount": 1}, False),
    ("pipeline_logs", {"pipelineId": PIPELINE_ID}, False),
]


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    ("name", "body", "announce"), CASES, ids=["status-announced", "status-chunked", "logs-chunked"]
)
def test_an_answer_past_the_cap_fails_and_is_not_held(client, name, body, announce, monkeypatch):
    cap = ENDPOINTS[name].body_cap
    one_attempt = {"retry_policy": RetryPolicy(max_attempts=1)}
    with RecordingServer(huge_answer(announce)) as opsera:
        use_connection(monkeypatch, opsera.url)
        assert call_with(client, "task_status", hook_kwargs=one_attempt, json={"taskId": PIPELINE_ID})[0] == "running"
        with PeakMemory() as memory, pytest.raises(OpseraResponseTooLargeError) as caught:
            call_with(client, name, hook_kwargs=one_attempt, json=body)
    message = str(caught.value)
    assert ENDPOINTS[name].path in message and f"{cap / 2**20:g} MiB" in message, message
    assert ("announced 300 MiB" in message) is announce
    assert memory.grew < 2 * cap + NOISE, f"grew by {memory.grew / 2**20:.1f} MiB"


@pytest.mark.parametrize("client", CLIENTS)
def test_a_chunked_answer_announcing_a_small_length_is_still_capped(client, monkeypatch):
    """Chunked transfer overrides Content-Length: the announced size must not let a client read the answer whole.

    (aiohttp refuses such an answer outright, as a malformed one; requests reads the chunks.)
    """
    with RecordingServer(huge_answer(announce=False, understated=True)) as opsera:
        use_connection(monkeypatch, opsera.url)
        with PeakMemory() as memory, pytest.raises(OpseraError) as caught:
            call_with(client, "pipeline_status", hook_kwargs={"retry_policy": RetryPolicy(max_attempts=1)}, json={})
    if client == "sync":
        assert isinstance(caught.value, OpseraResponseTooLargeError) and "went past the 1 MiB" in str(caught.value)
    assert memory.grew < 2 * ENDPOINTS["pipeline_status"].body_cap + NOISE


@pytest.mark.parametrize("client", CLIENTS)
def test_an_answer_past_the_cap_is_not_asked_for_again(client, monkeypatch):
    """Reading again would get the same oversized answer: a read that is otherwise retried is sent once."""
    with RecordingServer(huge_answer(announce=True)) as opsera:
        use_connection(monkeypatch, opsera.url)
        with pytest.raises(OpseraResponseTooLargeError):
            call_with(client, "pipeline_status", json={"pipelineId": PIPELINE_ID, "runCount": 1})
    assert len(opsera.requests) == 1
