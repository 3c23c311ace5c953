"""pipeline_name= over real sockets: found in the pipeline list when the task runs, refused without the role."""

from __future__ import annotations

import pytest

from airflow_provider_opsera._compat import AirflowFailException
from airflow_provider_opsera.exceptions import OpseraPermissionError, OpseraPipelineLookupError
from airflow_provider_opsera.hooks import OpseraHook
from airflow_provider_opsera.operators import OpseraRunPipelineOperator, OpseraStopPipelineOperator
from airflow_provider_opsera.sensors import OpseraPipelineRunSensor
from tests.emulator.test_pipeline_operator_against_emulator import EmulatedTime
from tests.unit.pipeline_fakes import FakeStateStore, FakeTI, TaskDeferred, make_context

from .support import APPROVAL, BLANK, LONG_SOAK

LIST_ROUTE = ("GET", "/api/v1/pipeline/pipelines")


def run_by_name(emulated: EmulatedTime, name: str, **kwargs) -> OpseraRunPipelineOperator:
    op = OpseraRunPipelineOperator(
        task_id="run_pipeline", pipeline_name=name, poll_interval=10, deferrable=False, **kwargs
    )
    op._sleep, op._clock = emulated.sleep, emulated.monotonic
    return op


def test_a_run_by_name_succeeds_and_hands_on_the_id(opsera_conn, task_log):
    ti = FakeTI()
    store = FakeStateStore()
    op = run_by_name(EmulatedTime(opsera_conn), "Blank Template")
    assert opsera_conn.request_count(*LIST_ROUTE) == 0  # nothing is read before the task runs
    assert op.execute(make_context(ti, store)) == 1
    assert ti.xcoms["pipeline_id"] == BLANK
    assert ti.xcoms["opsera_pipeline_run_url"].endswith(f"/workflow/details/{BLANK}/summary")
    assert opsera_conn.request_count(*LIST_ROUTE) == 1
    assert opsera_conn.request_count("POST", "/api/v1/pipeline/run") == 1
    assert f"'Blank Template' is {BLANK}" in task_log.text()
    assert "Blank Template's Run 1 was successful." in task_log.text()


def test_deferred_by_name_resumes_from_the_event_without_a_second_lookup(opsera_conn):
    op = OpseraRunPipelineOperator(task_id="run_pipeline", pipeline_name="Release With Approval", deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(make_context())
    assert deferred.value.trigger.pipeline_id == APPROVAL
    opsera_conn.advance(30)
    opsera_conn.approve(APPROVAL)
    opsera_conn.advance(60)
    event = {"status": "success", "message": "done", "pipeline_id": APPROVAL, "run_count": 1}
    resumed = OpseraRunPipelineOperator(task_id="run_pipeline", pipeline_name="Release With Approval", deferrable=True)
    assert resumed.execute_complete(make_context(), event) == 1
    assert opsera_conn.request_count(*LIST_ROUTE) == 1


def test_stop_and_sensor_by_name(opsera_conn):
    hook = OpseraHook()
    run_count = hook.run_pipeline(LONG_SOAK)["runCount"]
    ti = FakeTI()
    OpseraStopPipelineOperator(task_id="stop", pipeline_name="Long Soak").execute(make_context(ti))
    assert ti.xcoms["pipeline_id"] == LONG_SOAK
    opsera_conn.advance(700)  # the soft stop lets the current step finish
    sensor = OpseraPipelineRunSensor(
        task_id="wait", pipeline_name="Long Soak", run_count=run_count, poke_interval=0, timeout=60
    )
    with pytest.raises(AirflowFailException, match="was stopped in Opsera"):
        sensor.execute(make_context())


def test_a_near_miss_names_the_pipeline_meant(opsera_conn):
    with pytest.raises(OpseraPipelineLookupError, match="Did you mean 'Blank Template'"):
        run_by_name(EmulatedTime(opsera_conn), "Blank Templat").execute(make_context())
    assert opsera_conn.request_count("POST", "/api/v1/pipeline/run") == 0


def test_without_the_power_user_role_the_task_says_what_to_do(opsera_conn, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", opsera_conn.connection_json("pipeline"))  # a plain user
    with pytest.raises(OpseraPermissionError, match="needs the Power User role.*give pipeline_id= instead"):
        run_by_name(EmulatedTime(opsera_conn), "Blank Template").execute(make_context())
    assert OpseraHook().get_pipeline(BLANK)["_id"] == BLANK  # by id the same token is fine
