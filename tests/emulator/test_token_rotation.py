"""A token rotated mid-wait, over real sockets: the new one in the connection, the old one revoked."""

from __future__ import annotations

import asyncio

import pytest

from airflow_provider_opsera.emulator import connection
from airflow_provider_opsera.hooks import OpseraHook
from airflow_provider_opsera.hooks.opsera_async import OpseraAsyncHook
from airflow_provider_opsera.operators import OpseraRunPipelineOperator
from airflow_provider_opsera.triggers import OpseraPipelineRunTrigger
from tests.unit.pipeline_fakes import make_context

from .support import BLANK

STATUS_ROUTE = ("POST", "/api/v1/pipeline/status")


def rotate(emulator, monkeypatch) -> str:
    """What a person does: mint a token, put it in the connection, revoke the old one."""
    new = emulator.mint_token("rotated")
    monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", connection.connection_json(emulator.url, new))
    emulator.revoke_token("admin")
    return new


def rotated_in_the_middle(emulator, monkeypatch, *, at_sleep: int):
    """A sleep that moves the emulator's clock and rotates the token at the ``at_sleep``-th call."""
    calls = []

    def sleep(seconds: float) -> None:
        calls.append(seconds)
        emulator.advance(seconds)
        if len(calls) == at_sleep:
            rotate(emulator, monkeypatch)

    return sleep


def test_a_worker_wait_carries_on_after_the_token_is_rotated(opsera_conn, monkeypatch, task_log):
    sleep = rotated_in_the_middle(opsera_conn, monkeypatch, at_sleep=3)
    op = OpseraRunPipelineOperator(task_id="run", pipeline_id=BLANK, poll_interval=10, deferrable=False)
    op._sleep = op.hook._sleep = sleep
    assert op.execute(make_context()) == 1
    text = task_log.text()
    assert "holds another one now (rotated)" in text
    assert f"Opsera pipeline {BLANK} run 1 succeeded" in text
    for token in opsera_conn.tokens().values():
        assert token.split(".")[1] not in text


def test_a_deferred_wait_carries_on_after_the_token_is_rotated(opsera_conn, monkeypatch, task_log):
    run_count = OpseraHook().run_pipeline(BLANK)["runCount"]
    sleep = rotated_in_the_middle(opsera_conn, monkeypatch, at_sleep=3)

    async def emulated_sleep(seconds: float) -> None:
        sleep(seconds)

    trigger = OpseraPipelineRunTrigger(BLANK, run_count, poll_interval=10)
    trigger._sleep, trigger._clock = emulated_sleep, opsera_conn.now
    trigger._hook = OpseraAsyncHook(sleep=emulated_sleep)

    async def first_event():
        return (await anext(trigger.run())).payload

    assert asyncio.run(first_event())["status"] == "success"
    assert "holds another one now (rotated)" in task_log.text()


@pytest.mark.parametrize("deferred", [False, True])
def test_a_revoked_token_left_in_the_connection_ends_the_wait_clearly(opsera_conn, deferred):
    run_count = OpseraHook().run_pipeline(BLANK)["runCount"]
    opsera_conn.revoke_token("admin")
    if deferred:
        trigger = OpseraPipelineRunTrigger(BLANK, run_count, poll_interval=1)
        event = asyncio.run(anext(trigger.run())).payload
        assert event["status"] == "error"
        message = event["message"]
    else:
        op = OpseraRunPipelineOperator(task_id="run", pipeline_id=BLANK, poll_interval=1, deferrable=False)
        with pytest.raises(Exception) as caught:
            op._wait_in_worker(run_count)
        message = str(caught.value)
    assert "401 unauthorised (token revoked)" in message
    assert opsera_conn.request_count(*STATUS_ROUTE) == 1  # refused once: not resent, not retried
