"""OpseraPipelineRunSensor: a run started elsewhere, poked or deferred, ends like the operator's."""

from __future__ import annotations

import pytest

from airflow_provider_opsera._compat import AirflowException, AirflowFailException, AirflowSensorTimeout
from airflow_provider_opsera.links import PIPELINE_RUN_URL_KEY
from airflow_provider_opsera.sensors import OpseraPipelineRunSensor
from airflow_provider_opsera.triggers import OpseraPipelineRunTrigger
from tests.unit.conftest import BASE_URL, PIPELINE_ID
from tests.unit.pipeline_fakes import (
    LOGS,
    STATUS,
    STOP,
    FakeTI,
    TaskDeferred,
    console,
    make_context,
    newest_first,
    status,
)

LINES = [console(1, "build", "one"), console(2, "build", "two"), console(3, "deploy", "three")]


@pytest.fixture
def opsera(set_conn, token, requests_mock):
    set_conn(host=BASE_URL, password=token)
    requests_mock.post(LOGS, json=[])
    requests_mock.post(STOP, json={"status": "success"})
    return requests_mock


def make_sensor(**kwargs) -> OpseraPipelineRunSensor:
    kwargs = {"pipeline_id": PIPELINE_ID, "run_count": "3", "poke_interval": 0, "timeout": 60, **kwargs}
    sensor = OpseraPipelineRunSensor(task_id="wait_for_run", **kwargs)
    sensor.hook._sleep = lambda seconds: None
    return sensor


def calls(mock, url: str) -> int:
    return sum(1 for request in mock.request_history if request.url == url)


def test_pokes_until_success_streaming_the_console(opsera, task_log):
    opsera.post(STATUS, [status("running"), status("paused"), status("success", "Run 3 was successful.")])
    opsera.post(LOGS, [{"json": newest_first(*LINES[:n])} for n in (1, 2, 3)])
    ti = FakeTI()
    make_sensor().execute(make_context(ti))
    text = task_log.text()
    assert [task_log.count(f"[build] {n}") for n in ("one", "two")] == [1, 1]
    assert task_log.in_order("[build] one", "[build] two", "[deploy] three")
    assert "Run 3 was successful." in text
    assert PIPELINE_RUN_URL_KEY in ti.xcoms
    assert opsera.request_history[0].json() == {"pipelineId": PIPELINE_ID, "runCount": 3}


def test_a_failed_run_fails_the_sensor_with_the_last_lines(opsera):
    opsera.post(STATUS, [status("failed", "Run 3 failed.")])
    opsera.post(LOGS, json=newest_first(*LINES))
    with pytest.raises(AirflowException, match=r"(?s)Run 3 failed\..*\[deploy\] three"):
        make_sensor().execute(make_context())


def test_a_stopped_run_fails_without_retry(opsera):
    opsera.post(STATUS, [status("stopped")])
    with pytest.raises(AirflowFailException):
        make_sensor().execute(make_context())


def test_in_reschedule_mode_the_console_is_read_once_the_run_ended(opsera):
    opsera.post(STATUS, [status("running"), status("success")])
    sensor = make_sensor(mode="reschedule")
    assert sensor.poke(make_context()) is False
    assert calls(opsera, LOGS) == 0
    sensor.pipeline_id, sensor.run_count = PIPELINE_ID, 3
    assert sensor.poke(make_context()) is True
    assert calls(opsera, LOGS) == 1


def test_a_transient_error_is_a_negative_poke(opsera):
    opsera.post(STATUS, [{"status_code": 503, "json": {}}, status("success")])
    sensor = make_sensor()
    sensor.hook.retry_policy = type(sensor.hook.retry_policy)(max_attempts=1)
    sensor.run_count = 3
    assert sensor.poke(make_context()) is False
    assert sensor.poke(make_context()) is True


def test_deferrable_hands_the_wait_to_the_trigger(opsera):
    with pytest.raises(TaskDeferred) as deferred:
        make_sensor(deferrable=True, poke_interval=20, timeout=300).execute(make_context())
    trigger = deferred.value.trigger
    assert isinstance(trigger, OpseraPipelineRunTrigger)
    assert (trigger.run_count, trigger.poll_interval, trigger.timeout) == (3, 20, 300)
    assert calls(opsera, STATUS) == 0


def event(status_: str, message: str = "from Opsera") -> dict:
    return {"status": status_, "message": message, "pipeline_id": PIPELINE_ID, "run_count": 3}


def test_resume_prints_the_console_and_ends_like_the_run(opsera, task_log):
    opsera.post(LOGS, json=newest_first(*LINES))
    make_sensor(deferrable=True, poke_interval=10).execute_complete(make_context(), event("success"))
    assert task_log.count("[deploy] three") == 1
    with pytest.raises(AirflowFailException):
        make_sensor(deferrable=True, poke_interval=10).execute_complete(make_context(), event("stopped"))


def test_a_timeout_fails_the_sensor_and_leaves_the_run_alone(opsera):
    sensor = make_sensor(deferrable=True, poke_interval=10)
    with pytest.raises(AirflowSensorTimeout, match="left alone"):
        sensor.execute_complete(make_context(), event("timeout", "did not finish."))
    assert calls(opsera, STOP) == 0


def test_soft_fail_turns_a_deferred_timeout_into_a_skip(opsera):
    from airflow_provider_opsera._compat import AirflowSkipException

    sensor = make_sensor(deferrable=True, poke_interval=10, soft_fail=True)
    with pytest.raises(AirflowSkipException):
        sensor.resume_execution("execute_complete", {"event": event("timeout")}, make_context())
