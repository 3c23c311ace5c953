"""pipeline_name=: checked when the DAG is parsed, looked up when the task runs, failing with candidates."""

from __future__ import annotations

import pytest

from airflow_provider_opsera.client.api import RECORD_CAP
from airflow_provider_opsera.exceptions import OpseraInputError, OpseraPermissionError, OpseraPipelineLookupError
from airflow_provider_opsera.links import PIPELINE_RUN_URL_KEY
from airflow_provider_opsera.operators import (
    OpseraResetPipelineOperator,
    OpseraRunPipelineOperator,
    OpseraStopPipelineOperator,
)
from airflow_provider_opsera.sensors import OpseraPipelineRunSensor
from tests.unit.conftest import BASE_URL, PIPELINE_ID
from tests.unit.pipeline_fakes import RUN, STATUS, STOP, SUMMARY, FakeStateStore, FakeTI, make_context, status, summary

LIST = f"{BASE_URL}/api/v1/pipeline/pipelines"
OTHER_ID = "5fd56d90979ee048ee660699"
PIPELINES = [
    {"_id": PIPELINE_ID, "name": "deploy-web-portal"},
    {"_id": OTHER_ID, "name": "nightly-billing"},
    {"_id": "5fd56d90979ee048ee66069a", "name": 42},  # a name that is not text is never a match
]
PIPELINE_CLASSES = [OpseraRunPipelineOperator, OpseraStopPipelineOperator, OpseraResetPipelineOperator]


@pytest.fixture
def opsera(set_conn, token, requests_mock):
    set_conn(host=BASE_URL, password=token, extra={"portal_url": "https://portal.opsera.test"})
    requests_mock.get(LIST, json=PIPELINES)
    requests_mock.post(SUMMARY, [summary(2)])
    requests_mock.post(RUN, json={"status": "executed", "message": "submitted", "runCount": 3})
    requests_mock.post(STATUS, [status("success")])
    requests_mock.post(STOP, json={"status": "success", "message": "The pipeline has been stopped."})
    requests_mock.post(f"{BASE_URL}/api/v1/pipeline/logs", json=[])
    return requests_mock


def run_operator(**kwargs) -> OpseraRunPipelineOperator:
    op = OpseraRunPipelineOperator(task_id="run_pipeline", deferrable=False, poll_interval=1, **kwargs)
    op._sleep = lambda seconds: None
    return op


# -- when the DAG is parsed --


@pytest.mark.parametrize("cls", [*PIPELINE_CLASSES, OpseraPipelineRunSensor])
@pytest.mark.parametrize(
    "refs, expected",
    [({}, "Give pipeline_id .* or pipeline_name"), ({"pipeline_id": PIPELINE_ID, "pipeline_name": "x"}, "not both")],
)
def test_exactly_one_of_id_and_name_is_checked_at_parse_time(requests_mock, cls, refs, expected):
    extra = {"run_count": 3} if cls is OpseraPipelineRunSensor else {}
    with pytest.raises(OpseraInputError, match=expected) as error:
        cls(task_id="t", **refs, **extra)
    assert "pipeline_id" in str(error.value) and "pipeline_name" in str(error.value)
    assert not requests_mock.called


@pytest.mark.parametrize("cls", [*PIPELINE_CLASSES, OpseraPipelineRunSensor])
def test_a_name_is_templated_and_never_looked_up_at_parse_time(requests_mock, cls):
    extra = {"run_count": 3} if cls is OpseraPipelineRunSensor else {}
    op = cls(task_id="t", pipeline_name="{{ params.name }}", **extra)
    assert "pipeline_name" in op.template_fields
    assert not requests_mock.called and "hook" not in op.__dict__


def test_templates_that_may_render_empty_are_checked_once_rendered(opsera):
    op = run_operator(pipeline_id="{{ params.id }}", pipeline_name="{{ params.name }}")  # no error yet
    op.pipeline_id, op.pipeline_name = PIPELINE_ID, "deploy-web-portal"  # as rendered: both given
    with pytest.raises(OpseraInputError, match="not both"):
        op.execute(make_context())
    assert not opsera.called


# -- when the task runs --


def test_run_by_name_resolves_logs_and_pushes_the_id_and_keeps_the_link(opsera, task_log):
    ti = FakeTI()
    store = FakeStateStore()
    op = run_operator(pipeline_name="deploy-web-portal")
    assert op.execute(make_context(ti, store)) == 3
    assert ti.xcoms["pipeline_id"] == PIPELINE_ID
    assert ti.xcoms[PIPELINE_RUN_URL_KEY].endswith(f"/workflow/details/{PIPELINE_ID}/summary")
    assert opsera.request_history[0].url == LIST
    assert [r.json() for r in opsera.request_history if r.url == RUN] == [{"pipelineId": PIPELINE_ID}]
    assert f"'deploy-web-portal' is {PIPELINE_ID}" in task_log.text()
    assert store.values[f"opsera_run:{PIPELINE_ID}"]["run"] == 3  # the note names the id, not the name


def test_a_given_id_is_not_looked_up_and_not_pushed(opsera):
    ti = FakeTI()
    run_operator(pipeline_id=PIPELINE_ID).execute(make_context(ti))
    assert "pipeline_id" not in ti.xcoms
    assert all(r.url != LIST for r in opsera.request_history)


@pytest.mark.parametrize("cls, url", [(OpseraStopPipelineOperator, STOP), (OpseraResetPipelineOperator, None)])
def test_stop_and_reset_by_name_send_the_resolved_id(opsera, cls, url):
    reset = f"{BASE_URL}/api/v1/pipeline/reset"
    opsera.post(reset, json={"status": "success", "message": "The pipeline run status has been reset."})
    opsera.post(STATUS, [status("running")])  # the stop reads the latest run first: it is in progress
    ti = FakeTI()
    cls(task_id="t", pipeline_name="nightly-billing").execute(make_context(ti))
    assert opsera.last_request.url == (url or reset)
    assert opsera.last_request.json() == {"pipelineId": OTHER_ID}
    assert ti.xcoms["pipeline_id"] == OTHER_ID


def test_sensor_by_name(opsera):
    ti = FakeTI()
    sensor = OpseraPipelineRunSensor(
        task_id="wait", pipeline_name=" deploy-web-portal ", run_count="3", poke_interval=0, timeout=60
    )
    sensor.execute(make_context(ti))
    assert ti.xcoms["pipeline_id"] == PIPELINE_ID
    assert opsera.last_request.url != LIST and opsera.request_history[0].url == LIST


@pytest.mark.parametrize(
    "name, expected",
    [
        ("deploy-web-portl", r"No Opsera pipeline .* named 'deploy-web-portl'\. Did you mean 'deploy-web-portal'\?"),
        ("Deploy-Web-Portal", r"Did you mean 'deploy-web-portal'\?"),
        ("payments", r"Pipelines visible: 'deploy-web-portal', 'nightly-billing'\."),
    ],
)
def test_no_match_fails_naming_candidates(opsera, name, expected):
    with pytest.raises(OpseraPipelineLookupError, match=expected) as error:
        run_operator(pipeline_name=name).execute(make_context())
    assert "may be incomplete" not in str(error.value)
    assert all(r.url != RUN for r in opsera.request_history)


def test_several_matches_fail_naming_their_ids(opsera):
    opsera.get(LIST, json=[*PIPELINES, {"_id": {"$oid": OTHER_ID[:-1] + "b"}, "name": "deploy-web-portal"}])
    with pytest.raises(OpseraPipelineLookupError, match=f"2 Opsera pipelines .*{PIPELINE_ID}, {OTHER_ID[:-1]}b"):
        run_operator(pipeline_name="deploy-web-portal").execute(make_context())
    assert all(r.url != RUN for r in opsera.request_history)


def test_a_list_at_the_cap_may_be_incomplete(hook, requests_mock):
    many = [{"_id": f"{i:024x}", "name": f"pipeline {i}"} for i in range(RECORD_CAP)]
    requests_mock.get(LIST, json=many)
    with pytest.raises(OpseraPipelineLookupError, match="its cap of 1000: the list may be incomplete"):
        hook.find_pipeline("deploy-web-portal")
    assert hook.find_pipeline("pipeline 7") == f"{7:024x}"


def test_without_the_power_user_role_the_error_says_so(hook, requests_mock):
    requests_mock.get(LIST, status_code=403, json={"status": "failed", "message": "forbidden"})
    with pytest.raises(OpseraPermissionError, match="needs the Power User role .* give pipeline_id= instead") as error:
        hook.find_pipeline("deploy-web-portal")
    assert error.value.status_code == 403


def test_find_pipeline_for_hook_users(hook, requests_mock):
    requests_mock.get(LIST, json=[{"_id": {"$oid": PIPELINE_ID}, "name": "deploy-web-portal"}])
    assert hook.find_pipeline("deploy-web-portal") == PIPELINE_ID


@pytest.mark.parametrize("name", ["", "   ", None, 7])
def test_find_pipeline_refuses_a_blank_name_before_sending(hook, requests_mock, name):
    with pytest.raises(OpseraInputError, match="pipeline_name must be a pipeline's name"):
        hook.find_pipeline(name)
    assert not requests_mock.called
