"""Event-driven: smoke tests that run once per finished run of an Opsera pipeline, however it was started.

A person, a webhook or a schedule starts the ``deploy-web-portal`` pipeline in Opsera, not
Airflow. The asset below has a watcher, ``OpseraPipelineRunEventTrigger``, which polls the
pipeline from Airflow's triggerer and records one asset event per run that ends (success,
failed or stopped). The DAG is scheduled on the asset: it runs once per event and reads
the run from ``triggering_asset_events``.

Try it against the local emulator (Airflow 3; the scheduler, the DAG processor and the
triggerer must run, as in ``airflow standalone``)::

    # the second line it prints is the whole connection, the admin token in it
    opsera-emulator --port 8765 --time-scale 30 --print-connection > /tmp/opsera-emulator.out &
    export AIRFLOW_CONN_OPSERA_DEFAULT="$(sed -n 2p /tmp/opsera-emulator.out)"
    export OPSERA_EXAMPLE_POLL_INTERVAL=5
    airflow dags unpause example_opsera_asset_events
    # then start runs in Opsera, e.g. the emulator's, with its admin token (GET /_emulator/tokens lists them):
    TOKEN=$(curl -s http://127.0.0.1:8765/_emulator/tokens | python3 -c 'import json,sys; print(json.load(sys.stdin)["admin"])')
    curl -X POST http://127.0.0.1:8765/api/v1/pipeline/run -H "Authorization: Bearer $TOKEN" \\
        -H "Content-Type: application/json" -d '{"pipelineId": "5fd56d90979ee048ee660624"}'

The watcher polls every ``OPSERA_EXAMPLE_POLL_INTERVAL`` seconds (10 s when unset); against
a real tenant, a minute is plenty. The watcher starts when the DAG is unpaused: runs that
had ended before then are not reported.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_opsera.triggers import OpseraPipelineRunEventTrigger

PIPELINE_ID = "5fd56d90979ee048ee660624"  # the emulator's "Blank Template": deploys the web portal
POLL_INTERVAL = float(os.environ.get("OPSERA_EXAMPLE_POLL_INTERVAL", "10"))

log = logging.getLogger(__name__)

deploy_runs = Asset(
    name="opsera_deploy_web_portal_runs",
    uri=f"opsera://pipelines/{PIPELINE_ID}",
    watchers=[
        AssetWatcher(
            name="deploy_web_portal_runs",
            trigger=OpseraPipelineRunEventTrigger(pipeline_id=PIPELINE_ID, poll_interval=POLL_INTERVAL),
        )
    ],
)

with DAG(
    dag_id="example_opsera_asset_events",
    schedule=[deploy_runs],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["opsera", "example", "event-driven"],
):

    @task
    def smoke_test(triggering_asset_events: Any = None) -> list[dict]:
        """Test what each finished run deployed; return the runs' payloads."""
        runs = [event.extra["payload"] for event in triggering_asset_events[deploy_runs]]
        for run in runs:
            log.info(
                "Opsera pipeline %s run %s ended %s: %s (%s)",
                run["pipeline_id"],
                run["run_count"],
                run["status"],
                run["message"],
                run["run_url"],
            )
            if run["status"] == "success":
                log.info("Smoke-testing what run %s deployed.", run["run_count"])
            else:
                log.info("Run %s deployed nothing: no smoke test.", run["run_count"])
        return runs

    smoke_test()
