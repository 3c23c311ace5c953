"""Every resume method takes only the events it knows: anything else fails the task, never succeeds it."""

from __future__ import annotations

import pytest

from airflow_provider_opsera._compat import AirflowException
from airflow_provider_opsera.operators import OpseraRunPipelineOperator
from airflow_provider_opsera.sensors import OpseraPipelineRunSensor, OpseraTaskSensor
from tests.unit.conftest import BASE_URL, PIPELINE_ID, TASK_ID
from tests.unit.pipeline_fakes import LOGS, STOP, TASK_LOGS, TASK_SUMMARY, make_context


@pytest.fixture
def opsera(set_conn, token, requests_mock):
    set_conn(host=BASE_URL, password=token)
    requests_mock.post(LOGS, json=[])
    requests_mock.post(STOP, json={"status": "success"})
    requests_mock.post(TASK_SUMMARY, json={"_id": TASK_ID, "run_count": 1})
    requests_mock.get(TASK_LOGS, json=[])
    return requests_mock


PIPELINE_EVENT = {"status": "success", "message": "Run 3 was successful.", "pipeline_id": PIPELINE_ID, "run_count": 3}
TASK_EVENT = {"status": "success", "message": "done", "opsera_task_id": TASK_ID}

WAITERS = {
    "run operator": (
        lambda: OpseraRunPipelineOperator(task_id="run", pipeline_id=PIPELINE_ID, deferrable=True),
        PIPELINE_EVENT,
    ),
    "run sensor": (
        lambda: OpseraPipelineRunSensor(task_id="wait", pipeline_id=PIPELINE_ID, run_count=3, deferrable=True),
        PIPELINE_EVENT,
    ),
    "task sensor": (lambda: OpseraTaskSensor(task_id="wait", opsera_task_id=TASK_ID, deferrable=True), TASK_EVENT),
}


def without(event: dict, key: str) -> dict:
    return {k: v for k, v in event.items() if k != key}


BAD_EVENTS = {
    "no event": (lambda good: None, "event is NoneType"),
    "not an object": (lambda good: "success", "event is str"),
    "unknown status": (lambda good: {**good, "status": "succeeded"}, "status 'succeeded', which is none of"),
    "status in other case": (lambda good: {**good, "status": "SUCCESS"}, "status 'SUCCESS'"),
    "status not text": (lambda good: {**good, "status": True}, "status True"),
    "no status": (lambda good: without(good, "status"), "status None"),
    "no message": (lambda good: without(good, "message"), "event has no message"),
    "empty": (lambda good: {}, "status None"),
}


@pytest.mark.parametrize("waiter", WAITERS)
@pytest.mark.parametrize("bad", BAD_EVENTS)
def test_an_event_it_does_not_know_fails_the_task(opsera, waiter, bad):
    make, good = WAITERS[waiter]
    build_event, expected = BAD_EVENTS[bad]
    with pytest.raises(AirflowException, match=expected) as error:
        make().execute_complete(make_context(), build_event(good))
    assert "Resuming the wait for" in str(error.value)
    assert not opsera.called  # nothing was read or stopped on the strength of a bad event


@pytest.mark.parametrize("waiter", WAITERS)
def test_an_event_missing_an_id_fails_the_task(opsera, waiter):
    make, good = WAITERS[waiter]
    for key in set(good) - {"status", "message"}:
        with pytest.raises(AirflowException, match=f"does not carry '{key}'"):
            make().execute_complete(make_context(), without(good, key))
    assert not opsera.called


@pytest.mark.parametrize(
    "waiter, field, value",
    [
        ("run operator", "run_count", "three"),
        ("run operator", "run_count", 0),
        ("run sensor", "pipeline_id", "not-an-id"),
        ("task sensor", "opsera_task_id", 12),
    ],
)
def test_a_malformed_id_fails_the_task(opsera, waiter, field, value):
    make, good = WAITERS[waiter]
    with pytest.raises(AirflowException, match=f"event is malformed: {field} must be"):
        make().execute_complete(make_context(), {**good, field: value})


@pytest.mark.parametrize("waiter", WAITERS)
def test_the_known_success_event_still_succeeds(opsera, waiter):
    make, good = WAITERS[waiter]
    result = make().execute_complete(make_context(), dict(good))
    assert result == (3 if waiter == "run operator" else None)
