"""The approve and reject operators over real sockets: the gate read first, the decision sent once."""

from __future__ import annotations

import pytest

from airflow_provider_opsera._compat import AirflowException
from airflow_provider_opsera.hooks import OpseraHook
from airflow_provider_opsera.operators import OpseraApprovePipelineOperator, OpseraRejectPipelineOperator
from tests.unit.pipeline_fakes import FakeTI

from .support import APPROVAL, runs_of


def journal_run(emulator, run_count: int = 1) -> dict:
    return runs_of(emulator.run_journal(), APPROVAL)[run_count - 1]


def at_the_gate(emulator) -> int:
    run_count = OpseraHook().run_pipeline(APPROVAL)["runCount"]
    emulator.advance(25)
    return run_count


def test_approve_lets_the_run_go_on_and_the_journal_names_the_token(opsera_conn):
    at_the_gate(opsera_conn)
    answer = OpseraApprovePipelineOperator(task_id="approve", pipeline_name="Release With Approval").execute(
        {"ti": FakeTI()}
    )
    assert answer["status"] == "success" and answer["message"] == "Run 1 approved at step 'approval'"
    opsera_conn.advance(25)
    run = journal_run(opsera_conn)
    assert run["status"] == "success" and [(a["by"], a["via"]) for a in run["approvals"]] == [("admin", "api")]


def test_reject_ends_the_run_with_the_reason(opsera_conn):
    run_count = at_the_gate(opsera_conn)
    OpseraRejectPipelineOperator(
        task_id="reject", pipeline_id=APPROVAL, run_count=str(run_count), message="Freeze week"
    ).execute({"ti": FakeTI()})
    run = journal_run(opsera_conn)
    assert run["status"] == "rejected" and [r["message"] for r in run["rejections"]] == ["Freeze week"]


def test_nothing_is_sent_to_a_run_that_does_not_wait(opsera_conn):
    OpseraHook().run_pipeline(APPROVAL)  # still building
    with pytest.raises(AirflowException, match="its latest run 1 is running. Nothing was sent to Opsera."):
        OpseraApprovePipelineOperator(task_id="approve", pipeline_id=APPROVAL).execute({"ti": FakeTI()})
    opsera_conn.advance(25)
    opsera_conn.approve(APPROVAL, by="grace@example.com")  # decided in Opsera: the task finds it decided
    with pytest.raises(AirflowException, match="its latest run 1 is running"):
        OpseraRejectPipelineOperator(task_id="reject", pipeline_id=APPROVAL, message="no").execute({"ti": FakeTI()})
    assert opsera_conn.request_count("POST", "/api/v2/actions") == 0
