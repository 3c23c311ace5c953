"""A task that fails before its run starts logs that failure, and nothing after it that reads as another."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration import conftest

RUN = ("POST", "/api/v1/pipeline/run")


@pytest.fixture
def load_test_dag(monkeypatch, request):
    """``load_example_dag``, with this folder's DAGs as the dags folder."""
    monkeypatch.setattr(conftest, "EXAMPLE_DAGS", Path(__file__).parent / "dags")
    return request.getfixturevalue("load_example_dag")


def test_a_refused_run_request_and_an_unknown_pipeline_name_are_the_only_errors(
    load_test_dag, emulator_connection, capfd, caplog
):
    emulator_connection.set_fault(route=" ".join(RUN), kind="status", status=403)
    caplog.set_level("INFO")

    dag_run = load_test_dag("opsera_failure_before_the_run").test()

    text = "".join(capfd.readouterr()) + caplog.text
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}
    assert states == {"run_refused": "failed", "unknown_name": "failed"}
    assert emulator_connection.request_count(*RUN) == 1  # the refused one; the unknown name sent none
    assert "403" in text and "No Such Pipeline" in text
    assert "XCom not found" not in text
    assert "Failed to push an xcom for task operator extra link" not in text
