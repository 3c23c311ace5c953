"""Each optimisation of the clients can be turned off for a benchmark, and the calls still behave the same.

The switches: ``hooks.opsera_async.POOL_SIZE`` (None: no pool cap) and ``hooks.opsera_async.PER_LOOP_CACHES``
(False: a session, a connection read and a proxy choice per call).
"""

from __future__ import annotations

import pytest

from airflow_provider_opsera.hooks import opsera_async

from .loopback import CLIENTS, PIPELINE_ID, RecordingServer, call_with, json_answer, use_connection

SWITCHES = {
    "no pool cap": (opsera_async, "POOL_SIZE", None),
    "no per-loop caches": (opsera_async, "PER_LOOP_CACHES", False),
}


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("switch", list(SWITCHES))
def test_a_call_retried_twice_answers_the_same_with_an_optimisation_off(client, switch, monkeypatch):
    module, name, off = SWITCHES[switch]
    monkeypatch.setattr(module, name, off)
    answers = iter([json_answer({"status": "failed"}, status=503)] * 2)

    def answer(handler) -> None:
        next(answers, json_answer({"status": "running", "message": "step 2"}))(handler)

    with RecordingServer(answer) as server:
        use_connection(monkeypatch, server.url)
        answered, waits = call_with(client, "pipeline_status", json={"pipelineId": PIPELINE_ID, "runCount": 1})
    assert answered == {"status": "running", "message": "step 2"}
    assert len(waits) == 2 and len(server.requests) == 3
