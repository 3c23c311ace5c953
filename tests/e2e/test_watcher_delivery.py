"""The asset watcher delivers each run at least once: its triggerer killed at the worst moment loses no event.

The worst moment for delivery is right after the watcher handed a run's event to Airflow (its generator
resumed after ``yield``: Airflow's trigger runner holds the event in memory) and before the triggerer's
supervisor wrote the asset event to the database. ``tests/e2e/plugins/opsera_e2e_watcher.py`` is the
watcher with one addition: armed by the test, it SIGKILLs its triggerer's process group (the runner and
its supervisor) at that moment. The event dies with the process. The cursor in the asset state store,
which the watcher's copy on the other triggerer starts from, moves past a run only once Airflow has held
its event for ``DELIVERY_SETTLES`` seconds, so it had not moved: the other triggerer reports the run.
A watcher that moved its cursor before handing the event over (at most once) would have lost it.
"""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.stack import TRIGGERER_HEALTH_THRESHOLD, TRIGGERERS, Stack

DAG_ID = "e2e_opsera_watcher_delivery"
WATCHER = "opsera_e2e_watcher.TriggererKillingWatcher"
#: the other triggerer takes the watcher over once the dead one's heartbeat is this old, plus a loop or two
TAKEOVER_WITHIN = TRIGGERER_HEALTH_THRESHOLD + 90


def watcher_row(airflow: Stack, asset_id: int) -> dict[str, Any] | None:
    """The watcher's ``trigger`` row (``id``, ``triggerer_id``: a job id) once a triggerer holds it."""
    rows = airflow.query(
        "SELECT t.id, t.triggerer_id FROM trigger t JOIN asset_watcher w ON w.trigger_id = t.id "
        "WHERE w.asset_id = %s AND t.classpath = %s AND t.triggerer_id IS NOT NULL",
        (asset_id, WATCHER),
    )
    return rows[0] if len(rows) == 1 else None


def stored_cursor(airflow: Stack, asset_id: int, key: str) -> int | None:
    store = airflow.api("GET", f"/assets/{asset_id}/state-store")["asset_state_store"]
    return {entry["key"]: entry["value"] for entry in store}.get(key)


def reported(airflow: Stack, asset_id: int) -> list[int]:
    """The run counts of the asset's events, oldest first."""
    answer = airflow.api("GET", "/assets/events", params={"asset_id": asset_id, "order_by": "timestamp", "limit": 100})
    return [event["extra"]["payload"]["run_count"] for event in answer["asset_events"]]


def test_a_run_handed_to_airflow_by_a_triggerer_that_dies_before_airflow_wrote_it_is_reported(airflow):
    airflow.sync_dags()
    airflow.wait_for_dag(DAG_ID)
    pipeline_id = airflow.pipelines["watcher_delivery"]
    [asset] = airflow.api("GET", "/assets", params={"uri_pattern": f"opsera://pipelines/{pipeline_id}"})["assets"]
    key = f"opsera.pipeline_runs.{pipeline_id}.all.last_run"
    armed = airflow.kill_on_handover
    fired = armed.with_name(f"{armed.name}.fired")
    armed.write_text("")
    # A watcher runs for the assets of active DAGs only: unpausing starts it in a triggerer.
    airflow.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
    holder = None
    try:

        def watching():  # its first poll places the cursor where it starts: the pipeline's latest run
            airflow.check_alive()
            row = watcher_row(airflow, asset["id"])
            start = stored_cursor(airflow, asset["id"], key)
            return row is not None and start is not None and (row, start)

        watcher, start = airflow.wait_for(watching, 120, "the watcher to run in a triggerer and place its cursor")
        holder = {job: name for name, job in airflow.triggerer_jobs.items()}[watcher["triggerer_id"]]
        run_count = airflow.opsera("/api/v1/pipeline/run", {"pipelineId": pipeline_id})["runCount"]
        assert run_count == start + 1

        # The run ends in 2 s; the next poll reports it, and its triggerer dies as it hands the event over.
        airflow.wait_for(fired.exists, 60, f"{holder} to kill itself as it hands over run {run_count}'s event")
        airflow.lost(holder)
        seen = json.loads(fired.read_text())
        assert seen["run_count"] == run_count
        assert run_count not in reported(airflow, asset["id"]), "the kill came after Airflow wrote the event"
        # What the other triggerer's copy starts from: the run is still to report. At most once, the cursor
        # would have been at the run before its event was handed over, and the run would be skipped.
        assert seen["stored"] < run_count, seen
        assert stored_cursor(airflow, asset["id"], key) < run_count
        assert airflow.query("SELECT triggerer_id FROM trigger WHERE id = %s", (watcher["id"],)) == [
            {"triggerer_id": watcher["triggerer_id"]}
        ], "the other triggerer took the watcher over before the stored cursor was read"

        airflow.wait_for(
            lambda: run_count in reported(airflow, asset["id"]),
            TAKEOVER_WITHIN,
            f"the other triggerer to take the watcher over and report run {run_count}",
            interval=1,
        )
        [taken_over] = airflow.query("SELECT triggerer_id FROM trigger WHERE id = %s", (watcher["id"],))
        assert taken_over["triggerer_id"] == airflow.triggerer_jobs[next(iter(airflow.triggerers()))]
        runs = airflow.wait_for(
            lambda: airflow.api("GET", f"/dags/{DAG_ID}/dagRuns", params={"order_by": "id"})["dag_runs"],
            120,
            "the DAG scheduled on the asset to run",
        )
        assert airflow.wait_for_run(DAG_ID, runs[-1]["dag_run_id"], timeout=120) == "success"
        payloads = airflow.xcom(DAG_ID, runs[-1]["dag_run_id"], "reported")
        assert [payload["run_count"] for payload in payloads] == [run_count]
        assert payloads[0]["status"] == "success"
        # at least once: the dead triggerer wrote nothing, so the other's event is the only one here
        assert reported(airflow, asset["id"]).count(run_count) >= 1
    finally:
        airflow.api("PATCH", f"/dags/{DAG_ID}", json={"is_paused": True})
        armed.unlink(missing_ok=True)
        for name in TRIGGERERS:
            if name not in airflow.triggerers():
                airflow.restart(name)  # as a supervisor would: later tests have two triggerers again
