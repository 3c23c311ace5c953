"""Wait for an Opsera task to finish, with its console output in the Airflow task log.

Opsera tasks run on their own schedule (there is no API call that starts one), and
``OpseraTaskSensor`` waits for a task's latest run to end: success, failure (with the
run's last console lines) or stopped. One sensor pokes from the worker, the other
waits deferred in the triggerer.

For a demo against the emulator, ``start_on_emulator`` (on by default) first starts a
run of the task through the emulator's control route; turn it off against a real
Opsera tenant. Run it as ``example_opsera_pipeline`` explains.
"""

from __future__ import annotations

import os
from datetime import datetime

try:
    from airflow.sdk import DAG, Param, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task
    from airflow.models.param import Param

from airflow_provider_opsera.sensors import OpseraTaskSensor

NIGHTLY_SYNC = "61a1b2c3d4e5f6a7b8c9d0e1"
POLL_INTERVAL = float(os.environ.get("OPSERA_EXAMPLE_POLL_INTERVAL", "10"))

with DAG(
    dag_id="example_opsera_task_sensor",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "opsera_task_id": Param(NIGHTLY_SYNC, type="string", description="The Opsera task to wait for"),
        "start_on_emulator": Param(True, type="boolean", description="Start a run first (emulator only)"),
    },
    tags=["example", "opsera"],
    doc_md=__doc__,
) as dag:

    @task
    def start_task_run_on_emulator(params=None) -> str:
        """The emulator's control route starts a task run; a real Opsera tenant has none."""
        if not params["start_on_emulator"]:
            return "not started: start_on_emulator is off"
        from airflow_provider_opsera.hooks import OpseraHook

        hook = OpseraHook()
        url = f"{hook.settings.base_url}/_emulator/tasks/{params['opsera_task_id']}/run"
        response = hook.session.post(url, timeout=hook.settings.timeout)
        if response.status_code == 409:
            return "a run is in progress already"
        response.raise_for_status()
        return f"started run {response.json()['runCount']}"

    wait_in_worker = OpseraTaskSensor(
        task_id="wait_for_task_poke",
        opsera_task_id="{{ params.opsera_task_id }}",
        poke_interval=POLL_INTERVAL,
        timeout=60 * 60,
        deferrable=False,
    )

    wait_deferred = OpseraTaskSensor(
        task_id="wait_for_task_deferred",
        opsera_task_id="{{ params.opsera_task_id }}",
        poke_interval=POLL_INTERVAL,
        timeout=60 * 60,
        deferrable=True,
    )

    start_task_run_on_emulator() >> [wait_in_worker, wait_deferred]
