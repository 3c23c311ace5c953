"""Pipeline runs for the production scenarios: a triggerer killed or frozen, a worker killed, a fan-out.

The pipelines are the ones the stack adds to the emulator's seed; it names them in
``OPSERA_E2E_PIPELINES``. Outside the stack the file defines no DAG.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

from airflow.sdk import dag

from airflow_provider_opsera.operators import OpseraRunPipelineOperator

PIPELINES = json.loads(os.environ.get("OPSERA_E2E_PIPELINES") or "{}")
COMMON = {"schedule": None, "start_date": datetime(2024, 1, 1), "catchup": False, "tags": ["e2e"]}

if PIPELINES:

    @dag(dag_id="e2e_opsera_triggerer_takeover", **COMMON)
    def e2e_opsera_triggerer_takeover():
        # a 60-second run, waited on in a triggerer that the test kills or freezes
        OpseraRunPipelineOperator(
            task_id="run_pipeline",
            pipeline_id=PIPELINES["takeover"],
            deferrable=True,
            poll_interval=2,
            timeout=600,
        )

    @dag(dag_id="e2e_opsera_worker_crash", **COMMON)
    def e2e_opsera_worker_crash():
        # a 30-second run, waited on in the worker whose task process the test kills
        OpseraRunPipelineOperator(
            task_id="run_pipeline",
            pipeline_id=PIPELINES["worker_crash"],
            deferrable=False,
            poll_interval=1,
            timeout=600,
            retries=1,
            retry_delay=timedelta(seconds=1),
        )

    @dag(dag_id="e2e_opsera_fan_out", max_active_tasks=len(PIPELINES["fan_out"]), **COMMON)
    def e2e_opsera_fan_out():
        # 4-second runs polled every 2 s: each trigger fires seconds after its task deferred
        OpseraRunPipelineOperator.partial(
            task_id="run_pipeline",
            deferrable=True,
            poll_interval=2,
            timeout=300,
        ).expand(pipeline_id=PIPELINES["fan_out"])

    e2e_opsera_triggerer_takeover()
    e2e_opsera_worker_crash()
    e2e_opsera_fan_out()
