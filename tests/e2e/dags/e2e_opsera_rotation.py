"""Two waits on one connection whose token is rotated while they wait: one in a worker, one deferred.

The connection ``opsera_rotation`` lives in Airflow's metadata database (the test creates
it and changes its password through the REST API), not in the environment, which a
running process cannot see change.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_opsera.operators import OpseraRunPipelineOperator

RELEASE_WITH_APPROVAL = "5fd56d90979ee048ee660626"  # waits at an approval gate until the test approves it
LONG_SOAK = "5fd56d90979ee048ee660627"  # three 600-second steps (emulated), until the test moves the clock


@dag(dag_id="e2e_opsera_token_rotation", schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["e2e"])
def e2e_opsera_token_rotation():
    OpseraRunPipelineOperator(
        task_id="wait_in_worker",
        pipeline_id=RELEASE_WITH_APPROVAL,
        opsera_conn_id="opsera_rotation",
        deferrable=False,
        poll_interval=1,
        timeout=600,
    )
    OpseraRunPipelineOperator(
        task_id="wait_deferred",
        pipeline_id=LONG_SOAK,
        opsera_conn_id="opsera_rotation",
        deferrable=True,
        poll_interval=1,
        timeout=600,
    )


e2e_opsera_token_rotation()
