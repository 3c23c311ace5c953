"""The run lifecycle in a real Airflow: a Clear, a task marked failed or success, a worker that lost its heartbeat.

One DAG per scenario of ``tests/e2e/test_run_lifecycle.py``, each on a pipeline of its own that the stack
adds to the emulator's seed (it names them in ``OPSERA_E2E_PIPELINES``); the rows of the README's table
"How a pipeline task behaves" they show are in the DAG ids' docstrings. Outside the stack the file defines
no DAG.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

from airflow.sdk import dag

from airflow_provider_opsera.operators import OpseraRunPipelineOperator

PIPELINES = json.loads(os.environ.get("OPSERA_E2E_PIPELINES") or "{}")
COMMON = {"schedule": None, "start_date": datetime(2024, 1, 1), "catchup": False, "tags": ["e2e", "lifecycle"]}


def deferred(pipeline: str) -> OpseraRunPipelineOperator:
    return OpseraRunPipelineOperator(
        task_id="run_pipeline", pipeline_id=PIPELINES[pipeline], deferrable=True, poll_interval=2, timeout=600
    )


if "clear_after_success" in PIPELINES:

    @dag(dag_id="e2e_opsera_clear_after_success", **COMMON)
    def e2e_opsera_clear_after_success():
        """C1: a 6-second run; the test clears the task once it succeeded."""
        deferred("clear_after_success")

    @dag(dag_id="e2e_opsera_clear_while_deferred", **COMMON)
    def e2e_opsera_clear_while_deferred():
        """C3: a 25-second run of five 5-second steps; the test clears the task while it is deferred."""
        deferred("clear_while_deferred")

    @dag(dag_id="e2e_opsera_mark_success_while_deferred", **COMMON)
    def e2e_opsera_mark_success_while_deferred():
        """K3: a 15-second run; the test marks the task success while it is deferred."""
        deferred("mark_success")

    @dag(dag_id="e2e_opsera_shared_pipeline", **COMMON)
    def e2e_opsera_shared_pipeline():
        """P3: a 12-second run read once a minute in the worker: it ends between two reads, a person starts the
        next run, and the test marks the task failed before it read again."""
        OpseraRunPipelineOperator(
            task_id="run_pipeline", pipeline_id=PIPELINES["shared"], deferrable=False, poll_interval=60, timeout=600
        )

    @dag(dag_id="e2e_opsera_worker_takeover", **COMMON)
    def e2e_opsera_worker_takeover():
        """K8: a run waited on in the worker whose heartbeat the test stops by freezing it; the run waits at an
        approval gate until the test lets it go on."""
        OpseraRunPipelineOperator(
            task_id="run_pipeline",
            pipeline_id=PIPELINES["worker_takeover"],
            deferrable=False,
            poll_interval=2,
            timeout=600,
            retries=1,
            retry_delay=timedelta(seconds=1),
        )

    e2e_opsera_clear_after_success()
    e2e_opsera_clear_while_deferred()
    e2e_opsera_mark_success_while_deferred()
    e2e_opsera_shared_pipeline()
    e2e_opsera_worker_takeover()
