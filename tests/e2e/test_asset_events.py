"""Event-driven DAGs in a real Airflow 3: runs started in Opsera, not by Airflow, each schedule the DAG once.

The watcher runs in the triggerer; everything is observed from outside: Airflow's REST
API (the consumer DAG's runs, the asset's events, the task's XCom and log) and the
emulator's request counts.
"""

from __future__ import annotations

from tests.e2e.conftest import example_dag

BLANK_TEMPLATE = "5fd56d90979ee048ee660624"
DAG_ID = "example_opsera_asset_events"
ASSET_URI = f"opsera://pipelines/{BLANK_TEMPLATE}"
SUMMARY = "POST /api/v1/pipeline/summary"


def consumer_runs(airflow) -> list[dict]:
    answer = airflow.api("GET", f"/dags/{DAG_ID}/dagRuns", params={"order_by": "id", "limit": 100})
    return answer["dag_runs"]


def asset_events(airflow, asset_id: int) -> list[dict]:
    answer = airflow.api("GET", "/assets/events", params={"asset_id": asset_id, "order_by": "timestamp", "limit": 100})
    return answer["asset_events"]


def test_runs_started_in_opsera_each_run_the_asset_scheduled_dag_once(airflow):
    example_dag(airflow, "example_opsera_asset_events.py", DAG_ID)
    [asset] = airflow.api("GET", "/assets", params={"uri_pattern": ASSET_URI})["assets"]
    summaries_before = airflow.emulator_counts().get(SUMMARY, 0)
    # A watcher is registered for the assets of active DAGs only: unpausing starts it in the triggerer.
    airflow.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
    try:
        # Its first poll reads the pipeline's summary: from then on, every run that ends is reported.
        airflow.wait_for(
            lambda: airflow.check_alive() or airflow.emulator_counts().get(SUMMARY, 0) > summaries_before,
            120,
            "the watcher's first poll of the pipeline",
            interval=2,
        )
        assert consumer_runs(airflow) == [], "nothing ran before a run ended"
        started = []
        for expected in (1, 2):
            # a person starts the pipeline in Opsera; the next run starts after the DAG ran for this one
            started.append(airflow.opsera("/api/v1/pipeline/run", {"pipelineId": BLANK_TEMPLATE})["runCount"])
            airflow.wait_for(
                lambda: airflow.check_alive() or len(consumer_runs(airflow)) >= expected,
                180,
                f"the smoke-test DAG to run after Opsera run {started[-1]}",
                interval=2,
            )
        runs = consumer_runs(airflow)
        for run in runs:
            assert airflow.wait_for_run(DAG_ID, run["dag_run_id"], timeout=180, interval=2) == "success"
            assert run["run_type"] == "asset_triggered", run
    finally:
        airflow.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": True})

    # Exactly once each: two Opsera runs, two asset events, two DAG runs, each run on its own event.
    events = asset_events(airflow, asset["id"])
    payloads = [event["extra"]["payload"] for event in events]
    portal = f"{airflow.emulator_url}/portal/workflow/details/{BLANK_TEMPLATE}/summary"
    assert payloads == [
        {
            "status": "success",
            "message": f"Pipeline: Blank Template's Run {run_count} was successful.",
            "pipeline_id": BLANK_TEMPLATE,
            "run_count": run_count,
            "run_url": portal,
        }
        for run_count in started
    ]
    assert all(event["extra"].get("from_trigger") for event in events)
    runs = consumer_runs(airflow)
    assert len(runs) == 2
    # The cursor the watcher keeps in the asset state store (Airflow 3.3), where a restarted triggerer reads it.
    store = airflow.api("GET", f"/assets/{asset['id']}/state-store")
    cursor = {entry["key"]: entry["value"] for entry in store["asset_state_store"]}
    assert cursor == {f"opsera.pipeline_runs.{BLANK_TEMPLATE}.all.last_run": started[-1]}, store
    for run, payload in zip(runs, payloads):
        upstream = airflow.api("GET", f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/upstreamAssetEvents")
        assert [event["extra"]["payload"] for event in upstream["asset_events"]] == [payload]
        # the DAG read the event from triggering_asset_events: its task returns the payload and logs it
        assert airflow.xcom(DAG_ID, run["dag_run_id"], "smoke_test") == [payload]
        log = airflow.task_log(DAG_ID, run["dag_run_id"], "smoke_test")
        assert f"run {payload['run_count']} ended success" in log, log[-3000:]
        assert f"Smoke-testing what run {payload['run_count']} deployed." in log
