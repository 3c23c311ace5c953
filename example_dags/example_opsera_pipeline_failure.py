"""How a failed Opsera pipeline run reaches Airflow.

The pipeline "Broken Build" fails at its unit-test step. The task fails with Opsera's
message and the run's last console lines in the exception, so they show in the task
log, in the failure callback below (where an alert would go), and in the UI. The
console output of every step is in the task log before that. A run that a person
stopped in Opsera would fail the task too, without retries.

Run it against the emulator as ``example_opsera_pipeline`` explains.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG

from airflow_provider_opsera.operators import OpseraRunPipelineOperator

BROKEN_BUILD = "5fd56d90979ee048ee660625"
POLL_INTERVAL = float(os.environ.get("OPSERA_EXAMPLE_POLL_INTERVAL", "10"))


def report_failure(context):
    """Where a DAG would alert: the exception carries Opsera's message and the last console lines."""
    logging.getLogger(__name__).error(
        "Task %s failed; Opsera says: %s", context["task_instance"].task_id, context.get("exception")
    )


with DAG(
    dag_id="example_opsera_pipeline_failure",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "opsera"],
    doc_md=__doc__,
) as dag:
    OpseraRunPipelineOperator(
        task_id="run_broken_build",
        pipeline_id=BROKEN_BUILD,
        poll_interval=POLL_INTERVAL,
        deferrable=True,
        retries=0,  # a failed run is retried like any failed task when retries are set
        on_failure_callback=report_failure,
    )
