"""Run an Opsera pipeline: once waiting in the worker, once deferred to Airflow's triggerer.

Each task starts a run of the pipeline, copies its console output into the task log
(``[build] ...``), and succeeds or fails with the run; the task returns the run count
and its "Opsera pipeline run" link opens the pipeline in the Opsera portal. The two
tasks run one after the other: Opsera does not start a run while another is running.

Try it against the local emulator::

    opsera-emulator --port 8765 --time-scale 30
    export AIRFLOW_CONN_OPSERA_DEFAULT='{"conn_type": "opsera", "host": "http://127.0.0.1:8765",
        "password": "<the emulator's admin token>"}'
    export OPSERA_EXAMPLE_POLL_INTERVAL=1
    airflow dags test example_opsera_pipeline

``poll_interval`` comes from the DAG's ``poll_interval`` param, whose default is the
``OPSERA_EXAMPLE_POLL_INTERVAL`` environment variable (10 s when unset). Against a
real Opsera tenant, 30 s or more is plenty.
"""

from __future__ import annotations

import os
from datetime import datetime

try:
    from airflow.sdk import DAG, Param
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.models.param import Param

from airflow_provider_opsera.operators import OpseraRunPipelineOperator

BLANK_TEMPLATE = "5fd56d90979ee048ee660624"
POLL_INTERVAL = float(os.environ.get("OPSERA_EXAMPLE_POLL_INTERVAL", "10"))

with DAG(
    dag_id="example_opsera_pipeline",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "pipeline_id": Param(BLANK_TEMPLATE, type="string", description="The Opsera pipeline to run"),
        "poll_interval": Param(POLL_INTERVAL, type="number", minimum=1, description="Seconds between polls"),
    },
    tags=["example", "opsera"],
    doc_md=__doc__,
) as dag:
    run_pipeline_sync = OpseraRunPipelineOperator(
        task_id="run_pipeline_sync",
        pipeline_id="{{ params.pipeline_id }}",
        poll_interval="{{ params.poll_interval }}",
        deferrable=False,
        timeout=60 * 60,  # stop the run and fail the task after an hour
    )

    run_pipeline_deferred = OpseraRunPipelineOperator(
        task_id="run_pipeline_deferred",
        pipeline_id="{{ params.pipeline_id }}",
        poll_interval="{{ params.poll_interval }}",
        deferrable=True,  # the wait frees the worker slot
        timeout=60 * 60,
    )

    run_pipeline_sync >> run_pipeline_deferred
