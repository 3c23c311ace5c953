"""The example DAGs in a real Airflow 3: scheduler, LocalExecutor workers, triggerer, API server.

Everything is observed from outside, as a person or a monitoring system would: Airflow's
REST API (states, logs, extra links, XComs) and the emulator's request counts.
"""

from __future__ import annotations

import pytest
import requests

from tests.e2e.conftest import example_dag

BLANK_TEMPLATE = "5fd56d90979ee048ee660624"  # three steps, about 90 emulated seconds
BROKEN_BUILD = "5fd56d90979ee048ee660625"  # fails at its second step
LONG_SOAK = "5fd56d90979ee048ee660627"  # three steps of 600 emulated seconds
LINK_NAME = "Opsera pipeline run"
RUN = "POST /api/v1/pipeline/run"
STATUS = "POST /api/v1/pipeline/status"
STOP = "POST /api/v1/pipeline/stop"


class StateRecorder:
    """Every state each task passed through, as seen by polling the REST API."""

    def __init__(self) -> None:
        self.seen: dict[str, list[str]] = {}

    def __call__(self, states: dict[str, str | None]) -> None:
        for task_id, state in states.items():
            history = self.seen.setdefault(task_id, [])
            if state and (not history or history[-1] != state):
                history.append(state)

    def __getitem__(self, task_id: str) -> list[str]:
        return self.seen.get(task_id, [])


def portal_link(airflow, pipeline_id: str) -> str:
    return f"{airflow.emulator_url}/portal/workflow/details/{pipeline_id}/summary"


def test_example_pipeline_runs_in_a_worker_and_deferred(airflow):
    dag_id = example_dag(airflow, "example_opsera_pipeline.py", "example_opsera_pipeline")
    runs_before = airflow.emulator_counts().get(RUN, 0)
    run_id = airflow.trigger(dag_id)
    states = StateRecorder()
    final = airflow.wait_for_run(dag_id, run_id, timeout=240, on_poll=states)
    assert final == "success", states.seen

    # The deferrable task really went to the triggerer and came back; the other never left its worker.
    assert "deferred" in states["run_pipeline_deferred"], states.seen
    assert states["run_pipeline_deferred"][-1] == "success", states.seen
    assert "deferred" not in states["run_pipeline_sync"], states.seen
    deferred_ti = airflow.task_instance(dag_id, run_id, "run_pipeline_deferred")
    assert deferred_ti["try_number"] == 1, "resuming after the trigger is the same try, not a retry"

    # One Opsera run per task: no duplicate start on resume.
    assert airflow.emulator_counts().get(RUN, 0) - runs_before == 2

    # Each returns its run count; the deferred one ran after the other.
    sync_run = airflow.xcom(dag_id, run_id, "run_pipeline_sync")
    deferred_run = airflow.xcom(dag_id, run_id, "run_pipeline_deferred")
    assert int(deferred_run) == int(sync_run) + 1

    for task_id in ("run_pipeline_sync", "run_pipeline_deferred"):
        log = airflow.task_log(dag_id, run_id, task_id)
        # the pipeline's console output, copied into Airflow's task log
        for line in ("Cloning into 'web-portal'...", "npm run build", "Uploading dist/ to s3://web-portal-staging"):
            assert line in log, f"{task_id}: console line {line!r} not in the task log:\n{log[-3000:]}"
        assert "eyJ" not in log, f"{task_id}: a token-like string reached the task log"
        # the button in the UI points at the pipeline's page in the portal
        links = airflow.task_links(dag_id, run_id, task_id)
        assert links.get(LINK_NAME) == portal_link(airflow, BLANK_TEMPLATE), links

    # The resume method ran in a worker after the trigger fired: the log shows both halves.
    deferred_log = airflow.task_log(dag_id, run_id, "run_pipeline_deferred")
    assert "Pausing task as DEFERRED" in deferred_log, deferred_log[-3000:]
    assert "trigger" in deferred_log.lower()


def test_example_pipeline_failure_fails_with_opseras_message(airflow):
    dag_id = example_dag(airflow, "example_opsera_pipeline_failure.py", "example_opsera_pipeline_failure")
    run_id = airflow.trigger(dag_id)
    states = StateRecorder()
    assert airflow.wait_for_run(dag_id, run_id, timeout=180, on_poll=states) == "failed", states.seen
    assert states["run_broken_build"][-1] == "failed", states.seen
    assert "deferred" in states["run_broken_build"], states.seen

    ti = airflow.task_instance(dag_id, run_id, "run_broken_build")
    assert ti["try_number"] == 1, "a failed pipeline run is not retried (retries=0)"
    log = airflow.task_log(dag_id, run_id, "run_broken_build")
    # Opsera's own words for the run, as its status call answers them
    run_count = _last_run_count(airflow, BROKEN_BUILD)
    message = airflow.pipeline_run_status(BROKEN_BUILD, run_count)["message"]
    assert "failed" in message
    assert message in log, f"Opsera's message {message!r} not in the task log:\n{log[-4000:]}"
    assert "Cloning into 'billing-service'..." in log  # the console lines before the failure
    links = airflow.task_links(dag_id, run_id, "run_broken_build")
    assert links.get(LINK_NAME) == portal_link(airflow, BROKEN_BUILD), links


@pytest.mark.parametrize("first_stop_refused", [False, True], ids=["stop-accepted", "first-stop-refused-429"])
def test_marking_a_deferred_task_failed_stops_its_pipeline_run(airflow, first_stop_refused):
    """Refused with 429 and Retry-After 3 s, the stop is retried after Airflow has cancelled the trigger again."""
    dag_id = "e2e_opsera_stop_on_mark_failed"
    task_id = "run_long_soak"
    airflow.sync_dags()
    airflow.wait_for_dag(dag_id)
    before = airflow.emulator_counts()
    run_id = airflow.trigger(dag_id)

    def deferred_and_polling():
        airflow.check_alive()
        state = airflow.task_instance(dag_id, run_id, task_id)["state"]
        if state in ("failed", "success", "upstream_failed"):
            raise AssertionError(f"{task_id} ended {state} before it could be marked failed")
        counts = airflow.emulator_counts()
        started = counts.get(RUN, 0) > before.get(RUN, 0)
        # the trigger has asked for the run's status at least once: it runs in the triggerer
        polled = counts.get(STATUS, 0) > before.get(STATUS, 0)
        return state == "deferred" and started and polled

    airflow.wait_for(deferred_and_polling, 120, f"{task_id} to be deferred and its trigger polling Opsera")
    run_count = _last_run_count(airflow, LONG_SOAK)
    assert airflow.pipeline_run_status(LONG_SOAK, run_count)["status"] == "running"

    stops = 2 if first_stop_refused else 1
    if first_stop_refused:
        fault = {"route": STOP, "kind": "retry_after", "retry_after": 3, "count": 1}
        requests.post(f"{airflow.emulator_url}/_emulator/faults", json=fault, timeout=10).raise_for_status()
    try:
        airflow.set_task_state(dag_id, run_id, task_id, "failed")
        airflow.wait_for(
            lambda: airflow.emulator_counts().get(STOP, 0) - before.get(STOP, 0) >= stops,
            90,
            f"the emulator to receive {stops} POST /api/v1/pipeline/stop after the task was marked failed",
        )
    finally:
        requests.delete(f"{airflow.emulator_url}/_emulator/faults", timeout=10)
    assert airflow.emulator_counts().get(STOP, 0) - before.get(STOP, 0) == stops
    assert airflow.task_instance(dag_id, run_id, task_id)["state"] == "failed"
    # Opsera's stop is soft: the step in flight finishes, then the run ends stopped.
    airflow.wait_for(
        lambda: airflow.pipeline_run_status(LONG_SOAK, run_count)["status"] == "stopped",
        90,
        "the Long Soak run to end stopped",
        interval=1,
    )
    # and once the run has ended, the task is still failed on its first try: nothing restarted it
    ti = airflow.task_instance(dag_id, run_id, task_id)
    assert (ti["state"], ti["try_number"]) == ("failed", 1)


def _last_run_count(airflow, pipeline_id: str) -> int:
    summary = airflow.opsera("/api/v1/pipeline/summary", {"pipelineId": pipeline_id})
    count = (summary.get("workflow") or {}).get("run_count")
    if not count:
        pytest.fail(f"the emulator reports no run of {pipeline_id}")
    return int(count)


# The other example DAGs: each runs to success in real Airflow; the deferrable tasks defer.
OTHER_EXAMPLES = {
    "example_opsera_task_sensor": ["wait_for_task_deferred"],
    "example_opsera_registry": [],
    "example_opsera_insights": [],
    "example_opsera_audit": [],
}


@pytest.mark.parametrize("dag_id", sorted(OTHER_EXAMPLES))
def test_other_example_dags_succeed(airflow, dag_id):
    example_dag(airflow, f"{dag_id}.py", dag_id)
    run_id = airflow.trigger(dag_id)
    states = StateRecorder()
    assert airflow.wait_for_run(dag_id, run_id, timeout=240, on_poll=states) == "success", states.seen
    assert all(history and history[-1] in ("success", "skipped") for history in states.seen.values()), states.seen
    for task_id in OTHER_EXAMPLES[dag_id]:
        if task_id in states.seen:
            assert "deferred" in states[task_id], states.seen
