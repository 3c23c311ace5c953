"""Decide an Opsera approval gate in Airflow: the gate shows in "Required actions" (Airflow 3.1+).

Three tasks, none of which holds a worker slot while it waits:

* ``start_release`` starts a run of the pipeline and returns its run count at once;
* ``approve_release`` waits in the triggerer until that run waits at its approval gate,
  then asks in Airflow's "Required actions" (Browse > Required Actions, or the task's
  "Required Actions" tab): Approve, Reject (the comment goes to Opsera as the reason) or
  Leave to Opsera. It sends the answer to Opsera, unless the gate was decided in Opsera
  first; a rejection fails it with the comment;
* ``wait_for_release`` waits in the triggerer for the run to end, with its console output.

Try it against the local emulator, whose "Release With Approval" pipeline builds, waits at
a gate, then releases::

    opsera-emulator --port 8765 --time-scale 30 --print-connection > /tmp/opsera-emulator.out &
    export AIRFLOW_CONN_OPSERA_DEFAULT="$(sed -n 2p /tmp/opsera-emulator.out)"
    export OPSERA_EXAMPLE_POLL_INTERVAL=2
    export AIRFLOW__CORE__DAGS_FOLDER="$PWD/example_dags" AIRFLOW__CORE__LOAD_EXAMPLES=False
    airflow standalone      # then trigger example_opsera_approval_gate and answer in Required Actions

``poll_interval`` comes from the DAG's ``poll_interval`` param, whose default is the
``OPSERA_EXAMPLE_POLL_INTERVAL`` environment variable (10 s when unset). Against a real
Opsera tenant, 30 s or more is plenty.
"""

from __future__ import annotations

import os
from datetime import datetime

try:
    from airflow.sdk import DAG, Param
except ImportError:  # Airflow 2.11: the DAG parses; the gate task needs Airflow 3.1+ to run
    from airflow import DAG
    from airflow.models.param import Param

from airflow_provider_opsera.operators import OpseraApprovalGateOperator, OpseraRunPipelineOperator
from airflow_provider_opsera.sensors import OpseraPipelineRunSensor

RELEASE_WITH_APPROVAL = "5fd56d90979ee048ee660626"
POLL_INTERVAL = float(os.environ.get("OPSERA_EXAMPLE_POLL_INTERVAL", "10"))

with DAG(
    dag_id="example_opsera_approval_gate",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "pipeline_id": Param(RELEASE_WITH_APPROVAL, type="string", description="The Opsera pipeline to run"),
        "poll_interval": Param(POLL_INTERVAL, type="number", minimum=1, description="Seconds between polls"),
    },
    tags=["example", "opsera"],
    doc_md=__doc__,
) as dag:
    start_release = OpseraRunPipelineOperator(
        task_id="start_release",
        pipeline_id="{{ params.pipeline_id }}",
        wait_for_completion=False,  # returns the run count; the gate and the end are waited on below
    )

    approve_release = OpseraApprovalGateOperator(
        task_id="approve_release",
        pipeline_id="{{ params.pipeline_id }}",
        run_count="{{ ti.xcom_pull(task_ids='start_release') }}",
        body="Check the release notes before approving.",
        poll_interval="{{ params.poll_interval }}",
        timeout=2 * 60 * 60,  # fail if the run has not reached its gate within two hours
        response_timeout=24 * 60 * 60,  # without an answer within a day, leave the gate to Opsera
        on_response_timeout="leave",
    )

    wait_for_release = OpseraPipelineRunSensor(
        task_id="wait_for_release",
        pipeline_id="{{ params.pipeline_id }}",
        run_count="{{ ti.xcom_pull(task_ids='start_release') }}",
        deferrable=True,
        poke_interval=POLL_INTERVAL,
        timeout=2 * 60 * 60,
    )

    start_release >> approve_release >> wait_for_release
