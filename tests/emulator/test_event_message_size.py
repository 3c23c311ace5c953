"""A huge Opsera message does not go whole into a trigger event (events are stored in Airflow's database)."""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_provider_opsera.triggers import OpseraPipelineRunEventTrigger, OpseraPipelineRunTrigger
from airflow_provider_opsera.triggers.polling import OpseraPollingTrigger
from airflow_provider_opsera.waiting.events import MAX_EVENT_MESSAGE_CHARS
from tests.scripted_http import Answer, Request, ScriptedServer, connection_json
from tests.unit.conftest import PIPELINE_ID, make_jwt

TOKEN = make_jwt(time.time() + 30 * 86400)
HUGE = "Step build failed: " + "x" * 900_000  # about 1 MB, within what a status read may be
#: the cut message and the marker saying how much was cut
LIMIT = MAX_EVENT_MESSAGE_CHARS + 100


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    async def no_wait(seconds: float) -> None:
        pass

    monkeypatch.setattr(OpseraPollingTrigger, "_sleep", staticmethod(no_wait))


@pytest.fixture
def connect(monkeypatch):
    def _connect(url: str) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", connection_json(url, TOKEN))

    return _connect


def test_a_run_trigger_s_event_carries_a_cut_message(connect):
    def answer(request: Request) -> Answer:
        return Answer(200, {"status": "failed", "message": HUGE})

    async def first_event() -> dict:
        trigger = OpseraPipelineRunTrigger(pipeline_id=PIPELINE_ID, run_count=3, poll_interval=1, timeout=60)
        return [event.payload async for event in trigger.run()][0]

    with ScriptedServer(answer) as server:
        connect(server.url)
        event = asyncio.run(first_event())
    assert event["status"] == "failed"
    assert event["message"].startswith("Step build failed: xxx")
    assert len(event["message"]) < LIMIT and "more characters cut" in event["message"]


def test_an_asset_watcher_s_event_carries_a_cut_message(connect):
    status_reads: list[int] = []

    def answer(request: Request) -> Answer:
        if request.path.endswith("/summary"):
            return Answer(200, {"_id": PIPELINE_ID, "workflow": {"run_count": 1}})
        status_reads.append(1)
        if len(status_reads) == 1:  # run 1 is still going when the watcher starts: it is reported when it ends
            return Answer(200, {"status": "running", "message": "running"})
        return Answer(200, {"status": "failed", "message": HUGE})

    async def first_event() -> dict:
        trigger = OpseraPipelineRunEventTrigger(pipeline_id=PIPELINE_ID, poll_interval=1)
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    with ScriptedServer(answer) as server:
        connect(server.url)
        event = asyncio.run(first_event())
    assert event["status"] == "failed" and event["run_count"] == 1
    assert len(event["message"]) < LIMIT and "more characters cut" in event["message"]


def test_an_asset_watcher_logs_a_huge_unreadable_run_count_cut(caplog, capsys):
    from airflow_provider_opsera.exceptions import OpseraSummaryShapeError
    from airflow_provider_opsera.hooks.responses import latest_run_count
    from airflow_provider_opsera.waiting.watch import FailedPolls
    from tests.unit.pipeline_fakes import TaskLog

    log = TaskLog(caplog, capsys)
    with pytest.raises(OpseraSummaryShapeError) as caught:
        latest_run_count({"workflow": {"run_count": HUGE}}, PIPELINE_ID)
    trigger = OpseraPipelineRunEventTrigger(pipeline_id=PIPELINE_ID, poll_interval=1)
    trigger.note_failed_poll(caught.value, FailedPolls(), None)
    text = log.text()
    assert "not a run number" in text and len(text) < LIMIT
