"""The soak's workload: each DAG run waits on one Opsera pipeline run, named in its conf.

``soak_run_deferred`` / ``soak_run_worker`` start a run of ``pipeline_id`` and wait for it in the
triggerer or in the worker; ``soak_sensor_deferred`` / ``soak_sensor_worker`` wait for run
``run_count`` that someone started outside Airflow. Retries let a killed try be retried.
``soak_asset_events`` runs once per asset event of the watcher on ``OPSERA_SOAK_WATCHED_PIPELINE``,
a pipeline that is run from outside Airflow.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, Asset, AssetWatcher, Param, task

from airflow_provider_opsera.operators import OpseraRunPipelineOperator
from airflow_provider_opsera.sensors import OpseraPipelineRunSensor
from airflow_provider_opsera.triggers import OpseraPipelineRunEventTrigger

POLL_INTERVAL = 3
# A try fails at once while the API server is down (a restart takes a minute on a busy machine):
# retries 5, 10, 20 and 40 s apart ride that out.
DEFAULT_ARGS = {
    "retries": 4,
    "retry_delay": timedelta(seconds=5),
    "retry_exponential_backoff": 2,
    "max_retry_delay": timedelta(seconds=60),
}
PARAMS = {
    "pipeline_id": Param("", type="string"),
    "run_count": Param(0, type="integer"),
    "timeout": Param(3600, type="number"),
}


def soak_dag(dag_id: str) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        default_args=DEFAULT_ARGS,
        params=PARAMS,
        max_active_runs=16,
        tags=["soak"],
    )


for mode, deferrable in (("deferred", True), ("worker", False)):
    with soak_dag(f"soak_run_{mode}"):
        OpseraRunPipelineOperator(
            task_id="run",
            pipeline_id="{{ params.pipeline_id }}",
            deferrable=deferrable,
            poll_interval=POLL_INTERVAL,
            timeout="{{ params.timeout }}",
        )
    with soak_dag(f"soak_sensor_{mode}"):
        OpseraPipelineRunSensor(
            task_id="watch",
            pipeline_id="{{ params.pipeline_id }}",
            run_count="{{ params.run_count }}",
            deferrable=deferrable,
            poke_interval=POLL_INTERVAL,
            timeout=600,
        )


WATCHED_PIPELINE = os.environ.get("OPSERA_SOAK_WATCHED_PIPELINE")
if WATCHED_PIPELINE:
    watched_runs = Asset(
        name="soak_watched_runs",
        uri=f"opsera://pipelines/{WATCHED_PIPELINE}",
        watchers=[
            AssetWatcher(
                name="soak_watched_runs",
                trigger=OpseraPipelineRunEventTrigger(pipeline_id=WATCHED_PIPELINE, poll_interval=POLL_INTERVAL),
            )
        ],
    )
    with DAG(
        dag_id="soak_asset_events",
        schedule=[watched_runs],
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["soak"],
    ):

        @task
        def runs_reported(triggering_asset_events=None) -> list[int]:
            return [event.extra["payload"]["run_count"] for event in triggering_asset_events[watched_runs]]

        runs_reported()
