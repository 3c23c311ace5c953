"""Event-driven DAGs in a real Airflow 3: runs started in Opsera, not by Airflow, each schedule the DAG once.

The watcher runs in the triggerer; everything is observed from outside: Airflow's REST
API (the consumer DAG's runs, the asset's events, the task's XCom and log) and the
emulator's request counts.
"""

from __future__ import annotations

import contextlib

from airflow_provider_opsera.triggers.pipeline_events import DELIVERY_SETTLES
from tests.e2e.conftest import example_dag

BLANK_TEMPLATE = "5fd56d90979ee048ee660624"
DAG_ID = "example_opsera_asset_events"
ASSET_URI = f"opsera://pipelines/{BLANK_TEMPLATE}"
SUMMARY = "POST /api/v1/pipeline/summary"
WATCHER = "airflow_provider_opsera.triggers.pipeline_events.OpseraPipelineRunEventTrigger"


def consumer_runs(airflow) -> list[dict]:
    answer = airflow.api("GET", f"/dags/{DAG_ID}/dagRuns", params={"order_by": "id", "limit": 100})
    return answer["dag_runs"]


def asset_events(airflow, asset_id: int) -> list[dict]:
    answer = airflow.api("GET", "/assets/events", params={"asset_id": asset_id, "order_by": "timestamp", "limit": 100})
    return answer["asset_events"]


@contextlib.contextmanager
def watching(airflow):
    """The consumer DAG unpaused, once its watcher has polled the pipeline; paused again afterwards."""
    example_dag(airflow, "example_opsera_asset_events.py", DAG_ID)
    summaries_before = airflow.emulator_counts().get(SUMMARY, 0)
    # A watcher is registered for the assets of active DAGs only: unpausing starts it in a triggerer.
    airflow.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
    try:
        # Its first poll reads the pipeline's summary: from then on, every run that ends is reported.
        airflow.wait_for(
            lambda: airflow.check_alive() or airflow.emulator_counts().get(SUMMARY, 0) > summaries_before,
            120,
            "the watcher's first poll of the pipeline",
            interval=2,
        )
        yield
    finally:
        airflow.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": True})


def watcher_row(airflow, asset_id: int) -> dict | None:
    """The watcher's ``trigger`` row (``id``, ``triggerer_id``: a job id) once a triggerer holds it."""
    rows = airflow.query(
        "SELECT t.id, t.triggerer_id FROM trigger t JOIN asset_watcher w ON w.trigger_id = t.id "
        "WHERE w.asset_id = %s AND t.classpath = %s AND t.triggerer_id IS NOT NULL",
        (asset_id, WATCHER),
    )
    return rows[0] if len(rows) == 1 else None


def stored_cursor(airflow, asset_id: int) -> dict:
    store = airflow.api("GET", f"/assets/{asset_id}/state-store")
    return {entry["key"]: entry["value"] for entry in store["asset_state_store"]}


def start_run(airflow) -> int:
    """A person starts the pipeline in Opsera (not Airflow); the run count Opsera gave it."""
    return airflow.opsera("/api/v1/pipeline/run", {"pipelineId": BLANK_TEMPLATE})["runCount"]


def wait_for_consumer_runs(airflow, count: int, what: str) -> list[dict]:
    return airflow.wait_for(
        lambda: airflow.check_alive() or (len(consumer_runs(airflow)) >= count and consumer_runs(airflow)),
        180,
        f"the smoke-test DAG to run after {what}",
        interval=2,
    )


def payload_of(run_count: int, airflow) -> dict:
    return {
        "status": "success",
        "message": f"Pipeline: Blank Template's Run {run_count} was successful.",
        "pipeline_id": BLANK_TEMPLATE,
        "run_count": run_count,
        "run_url": f"{airflow.emulator_url}/portal/workflow/details/{BLANK_TEMPLATE}/summary",
    }


def test_runs_started_in_opsera_each_run_the_asset_scheduled_dag_once(airflow):
    example_dag(airflow, "example_opsera_asset_events.py", DAG_ID)
    [asset] = airflow.api("GET", "/assets", params={"uri_pattern": ASSET_URI})["assets"]
    events_before = len(asset_events(airflow, asset["id"]))
    runs_before = len(consumer_runs(airflow))
    started = []
    with watching(airflow):
        assert len(consumer_runs(airflow)) == runs_before, "nothing ran before a run ended"
        for expected in (1, 2):
            # the next run starts once the DAG ran for this one, as a person would start it
            started.append(start_run(airflow))
            wait_for_consumer_runs(airflow, runs_before + expected, f"Opsera run {started[-1]}")
        runs = consumer_runs(airflow)[runs_before:]
        for run in runs:
            assert airflow.wait_for_run(DAG_ID, run["dag_run_id"], timeout=180, interval=2) == "success"
            assert run["run_type"] == "asset_triggered", run
        # The cursor the watcher keeps in the asset state store (Airflow 3.3), where a restarted triggerer reads
        # it, moves past a run once Airflow has held its event for DELIVERY_SETTLES seconds (at least once).
        key = f"opsera.pipeline_runs.{BLANK_TEMPLATE}.all.last_run"
        airflow.wait_for(
            lambda: stored_cursor(airflow, asset["id"]) == {key: started[-1]},
            DELIVERY_SETTLES + 60,
            f"the stored cursor to move past run {started[-1]}",
            interval=2,
        )

    # Exactly once each: two Opsera runs, two asset events, two DAG runs, each run on its own event.
    events = asset_events(airflow, asset["id"])[events_before:]
    payloads = [event["extra"]["payload"] for event in events]
    assert payloads == [payload_of(run_count, airflow) for run_count in started]
    assert all(event["extra"].get("from_trigger") for event in events)
    runs = consumer_runs(airflow)[runs_before:]
    assert len(runs) == 2
    for run, payload in zip(runs, payloads):
        upstream = airflow.api("GET", f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/upstreamAssetEvents")
        assert [event["extra"]["payload"] for event in upstream["asset_events"]] == [payload]
        # the DAG read the event from triggering_asset_events: its task returns the payload and logs it
        assert airflow.xcom(DAG_ID, run["dag_run_id"], "smoke_test") == [payload]
        log = airflow.task_log(DAG_ID, run["dag_run_id"], "smoke_test")
        assert f"run {payload['run_count']} ended success" in log, log[-3000:]
        assert f"Smoke-testing what run {payload['run_count']} deployed." in log


def test_a_run_that_ends_while_its_triggerer_is_down_is_reported_once_by_the_other(airflow):
    """The cursor lives in the asset state store: the triggerer that takes the watcher over carries on from it."""
    example_dag(airflow, "example_opsera_asset_events.py", DAG_ID)
    [asset] = airflow.api("GET", "/assets", params={"uri_pattern": ASSET_URI})["assets"]
    runs_before = len(consumer_runs(airflow))
    with watching(airflow):
        watcher = airflow.wait_for(lambda: watcher_row(airflow, asset["id"]), 60, "the watcher to run in a triggerer")
        holder = {job: name for name, job in airflow.triggerer_jobs.items()}[watcher["triggerer_id"]]
        airflow.kill(holder)
        try:
            # The run starts and ends while no triggerer runs the watcher (a takeover waits for missed heartbeats).
            run_count = start_run(airflow)
            airflow.wait_for(
                lambda: airflow.pipeline_run_status(BLANK_TEMPLATE, run_count)["status"] == "success",
                60,
                f"Opsera run {run_count} to end",
                interval=1,
            )
            assert airflow.query("SELECT triggerer_id FROM trigger WHERE id = %s", (watcher["id"],)) == [
                {"triggerer_id": watcher["triggerer_id"]}
            ], "the run ended before the takeover"
            [run] = wait_for_consumer_runs(airflow, runs_before + 1, f"Opsera run {run_count}")[runs_before:]
            [taken_over] = airflow.query("SELECT triggerer_id FROM trigger WHERE id = %s", (watcher["id"],))
            assert taken_over["triggerer_id"] == airflow.triggerer_jobs[next(iter(airflow.triggerers()))]
            assert airflow.wait_for_run(DAG_ID, run["dag_run_id"], timeout=180, interval=2) == "success"
            assert airflow.xcom(DAG_ID, run["dag_run_id"], "smoke_test") == [payload_of(run_count, airflow)]
            # Two more polls after it: the watcher does not report the run again.
            summaries = airflow.emulator_counts().get(SUMMARY, 0)
            airflow.wait_for(
                lambda: airflow.emulator_counts().get(SUMMARY, 0) >= summaries + 2, 120, "two more polls", interval=2
            )
            assert len(consumer_runs(airflow)) == runs_before + 1
            reported = [e["extra"]["payload"]["run_count"] for e in asset_events(airflow, asset["id"])]
            assert reported.count(run_count) == 1, reported
        finally:
            airflow.restart(holder)  # as a supervisor would: later tests have two triggerers again
