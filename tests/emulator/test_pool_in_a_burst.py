"""Waits that poll together share a bounded pool of connections, and every poll gets through.

The emulator answers each status read after a delay, so the burst queues for the pool; the
time a request waits for a connection counts in its timeout, which is above the whole queue.
"""

from __future__ import annotations

import asyncio
import json

from airflow_provider_opsera.hooks import OpseraHook
from airflow_provider_opsera.hooks.opsera_async import POOL_SIZE, OpseraAsyncHook, close_shared_session

from .support import BLANK

WAITS = 4 * POOL_SIZE
ROUNDS = 2
LATENCY = 0.15
TIMEOUT = 5.0  # far above the four waves of the burst (0.6 s)


def client_connections(port: int) -> int:
    """Established TCP connections to ``port`` on this machine (the emulator is this test's alone)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as lines:
                rows = [line.split() for line in list(lines)[1:]]
        except OSError:
            continue
        count += sum(1 for row in rows if int(row[2].rsplit(":", 1)[1], 16) == port and row[3] == "01")
    return count


def test_a_burst_of_waits_gets_every_poll_through_a_bounded_pool(emu, monkeypatch):
    emulator = emu  # its own: no other client's connection to it may still be open
    conn = emulator.connection_dict("admin")
    conn["extra"]["timeout"] = TIMEOUT
    monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", json.dumps(conn))
    starter = OpseraHook()
    run_count = starter.run_pipeline(BLANK)["runCount"]
    starter.close()
    emulator.set_fault(route="POST /api/v1/pipeline/status", kind="latency", seconds=LATENCY)
    retry_waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        retry_waits.append(seconds)

    async def burst():
        hook = OpseraAsyncHook(sleep=no_sleep)
        answers, connections = [], []
        try:
            for _ in range(ROUNDS):
                polls = (hook.get_pipeline_run_status(BLANK, run_count) for _ in range(WAITS))
                answers += await asyncio.gather(*polls, return_exceptions=True)
                connections.append(client_connections(emulator.port))
        finally:
            await close_shared_session()
        return answers, connections

    answers, connections = asyncio.run(burst())
    assert [type(a).__name__ for a in answers if not isinstance(a, dict)] == []
    assert {a["status"] for a in answers} == {"running"}
    assert retry_waits == []  # no poll timed out
    assert emulator.request_count("POST", "/api/v1/pipeline/status") == WAITS * ROUNDS
    assert 0 < max(connections) <= POOL_SIZE
