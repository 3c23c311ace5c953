"""OpseraTaskSensor: an Opsera task's latest run, poked or deferred, with its console in the task log."""

from __future__ import annotations

import pytest

from airflow_provider_opsera._compat import AirflowException, AirflowFailException, AirflowSensorTimeout
from airflow_provider_opsera.sensors import OpseraTaskSensor
from airflow_provider_opsera.triggers import OpseraTaskTrigger
from tests.unit.conftest import BASE_URL, TASK_ID
from tests.unit.pipeline_fakes import TASK_LOGS, TASK_STATUS, TASK_SUMMARY, TaskDeferred, make_context, newest_first

LINES = [
    {"_id": "1" * 24, "step_name": "fetch", "action": "console output", "api_response": {"consoleLog": "Fetching"}},
    {"_id": "2" * 24, "step_name": "fetch", "action": "step complete", "api_response": {}},
    {"_id": "3" * 24, "step_name": "push", "action": "console output", "api_response": {"consoleLog": "Pushed"}},
]


@pytest.fixture
def opsera(set_conn, token, requests_mock):
    set_conn(host=BASE_URL, password=token)
    requests_mock.post(TASK_SUMMARY, json={"_id": TASK_ID, "name": "Nightly Sync", "run_count": 4})
    requests_mock.get(TASK_LOGS, json=newest_first(*LINES))
    return requests_mock


def make_sensor(**kwargs) -> OpseraTaskSensor:
    kwargs = {"opsera_task_id": TASK_ID, "poke_interval": 0, "timeout": 60, **kwargs}
    return OpseraTaskSensor(task_id="wait_for_task", **kwargs)


def test_pokes_until_success_then_prints_the_runs_console(opsera, task_log):
    opsera.post(TASK_STATUS, [{"text": '"running"'}, {"text": '"paused"'}, {"text": '"success"'}])
    make_sensor().execute(make_context())
    text = task_log.text()
    assert task_log.in_order("[fetch] Fetching", "[push] Pushed")
    assert "waits for an approval" in text
    logs_request = [r for r in opsera.request_history if r.path == "/api/v1/task/logs"][0]
    assert logs_request.qs == {"taskid": [TASK_ID.lower()], "runcount": ["4"]}


def test_a_failed_run_fails_with_its_last_lines(opsera):
    opsera.post(TASK_STATUS, text='"failed"')
    with pytest.raises(AirflowException, match=r"(?s)failed.*\[push\] Pushed"):
        make_sensor(fetch_logs=False).execute(make_context())


def test_a_stopped_run_fails_without_retry(opsera):
    opsera.post(TASK_STATUS, text='"aborted"')
    with pytest.raises(AirflowFailException):
        make_sensor().execute(make_context())


def test_deferrable_hands_the_wait_to_the_trigger(opsera):
    with pytest.raises(TaskDeferred) as deferred:
        make_sensor(deferrable=True, poke_interval=15, timeout=120).execute(make_context())
    trigger = deferred.value.trigger
    assert isinstance(trigger, OpseraTaskTrigger)
    assert (trigger.opsera_task_id, trigger.poll_interval, trigger.timeout) == (TASK_ID, 15, 120)


def test_resume(opsera, task_log):
    def event(status: str, message: str) -> dict:
        return {"status": status, "message": message, "opsera_task_id": TASK_ID}

    make_sensor(deferrable=True, poke_interval=10).execute_complete(make_context(), event("success", "done"))
    assert "[push] Pushed" in task_log.text()
    with pytest.raises(AirflowException, match="failed"):
        make_sensor(deferrable=True, poke_interval=10).execute_complete(make_context(), event("failed", "x"))
    with pytest.raises(AirflowSensorTimeout):
        make_sensor(deferrable=True, poke_interval=10).execute_complete(make_context(), event("timeout", "late"))
