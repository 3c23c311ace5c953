"""The run request's answer over a real socket: ``runCount: 7.0`` is run 7, a count that is no run number says so."""

from __future__ import annotations

import time

import pytest

from airflow_provider_opsera._compat import AirflowException
from airflow_provider_opsera.exceptions import OpseraBadResponseError
from airflow_provider_opsera.operators import OpseraRunPipelineOperator
from tests.scripted_http import Answer, Request, ScriptedServer, connection_json
from tests.unit.conftest import PIPELINE_ID, make_jwt
from tests.unit.pipeline_fakes import FakeClock, make_context

TOKEN = make_jwt(time.time() + 30 * 86400)


def answering_run(run_answer: dict):
    def answer(request: Request) -> Answer:
        if request.path.endswith("/summary"):
            return Answer(200, {"_id": PIPELINE_ID, "workflow": {"run_count": 6, "last_step": {"status": "success"}}})
        if request.path.endswith("/run"):
            return Answer(200, run_answer)
        return Answer(404, {"message": f"not scripted: {request.path}"})

    return answer


def start(monkeypatch, run_answer: dict) -> int:
    with ScriptedServer(answering_run(run_answer)) as server:
        monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", connection_json(server.url, TOKEN))
        operator = OpseraRunPipelineOperator(
            task_id="run", pipeline_id=PIPELINE_ID, wait_for_completion=False, deferrable=False
        )
        return operator.execute(make_context())


@pytest.mark.parametrize("run_count", [7, 7.0, "7"])
def test_a_run_count_written_as_a_whole_number_starts_following_that_run(monkeypatch, run_count):
    assert start(monkeypatch, {"status": "executed", "message": "submitted", "runCount": run_count}) == 7


@pytest.mark.parametrize("run_count", [7.5, True, "7.0", {"$numberInt": "7"}])
def test_a_run_count_that_is_no_run_number_says_a_run_may_have_started(monkeypatch, run_count):
    with pytest.raises(OpseraBadResponseError, match="a run may have started.*not a run number"):
        start(monkeypatch, {"status": "executed", "message": "submitted", "runCount": run_count})


def test_a_refused_run_still_says_it_did_not_start(monkeypatch):
    refused = {"status": "failed", "message": "Pipeline is currently in a paused state."}
    with pytest.raises(AirflowException, match="did not start .*paused state"):
        start(monkeypatch, refused)


@pytest.fixture
def follow(monkeypatch):
    servers = []

    def _follow(status_answer, **kwargs):
        server = ScriptedServer(lambda request: _route(request, status_answer))
        servers.append(server.__enter__())
        monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", connection_json(server.url, TOKEN))
        clock = FakeClock()
        operator = OpseraRunPipelineOperator(
            task_id="run", pipeline_id=PIPELINE_ID, deferrable=False, poll_interval=5, **kwargs
        )
        operator._sleep, operator._clock = clock.sleep, clock.time
        operator.hook._sleep = clock.sleep
        return operator.execute(make_context())

    yield _follow
    for server in servers:
        server.__exit__(None, None, None)


def _route(request: Request, status_answer) -> Answer:
    if request.path.endswith("/status"):
        return status_answer(request)
    if request.path.endswith("/logs"):
        return Answer(200, [])
    return answering_run({"status": "executed", "message": "submitted", "runCount": 7})(request)


def test_a_wait_in_the_worker_names_a_status_answer_of_the_wrong_shape(follow):
    with pytest.raises(OpseraBadResponseError, match="run 7 with an array .*not the expected object"):
        follow(lambda request: Answer(200, ["running"]), timeout=3600)


def test_a_wait_in_the_worker_fails_without_the_token_an_answer_echoes(follow):
    def failed_echoing(request: Request) -> Answer:
        return Answer(200, {"status": "failed", "message": f"Run 7 failed for {request.headers['Authorization']}"})

    with pytest.raises(AirflowException, match="Run 7 failed for") as caught:
        follow(failed_echoing)
    assert TOKEN not in str(caught.value)
