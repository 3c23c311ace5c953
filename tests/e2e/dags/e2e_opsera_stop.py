"""A deferred run of the 30-minute "Long Soak" pipeline, for marking it failed while it runs."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_opsera.operators import OpseraRunPipelineOperator

LONG_SOAK = "5fd56d90979ee048ee660627"


@dag(
    dag_id="e2e_opsera_stop_on_mark_failed",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["e2e"],
)
def e2e_opsera_stop_on_mark_failed():
    OpseraRunPipelineOperator(
        task_id="run_long_soak",
        pipeline_id=LONG_SOAK,
        deferrable=True,
        poll_interval=2,
        timeout=600,
    )


e2e_opsera_stop_on_mark_failed()
