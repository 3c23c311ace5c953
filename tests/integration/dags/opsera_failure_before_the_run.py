"""Two tasks that fail before a pipeline run starts: Opsera refuses the run request; the pipeline name is unknown.

``tests/integration/test_failure_before_the_run.py`` runs it with ``dag.test()`` against the emulator.
"""

from __future__ import annotations

from datetime import datetime

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG

from airflow_provider_opsera.operators import OpseraRunPipelineOperator

BLANK_TEMPLATE = "5fd56d90979ee048ee660624"

with DAG(dag_id="opsera_failure_before_the_run", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    OpseraRunPipelineOperator(task_id="run_refused", pipeline_id=BLANK_TEMPLATE, deferrable=False)
    OpseraRunPipelineOperator(task_id="unknown_name", pipeline_name="No Such Pipeline", deferrable=False)
