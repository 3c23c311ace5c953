"""An asset watcher whose triggerer dies right after it handed a run's event to Airflow, and a DAG scheduled on it.

The watcher is ``tests/e2e/plugins/opsera_e2e_watcher.py``'s, which kills its triggerer when the test
arms it; the pipeline is one the stack adds to the emulator's seed. Outside the stack the file defines
no DAG.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task

PIPELINES = json.loads(os.environ.get("OPSERA_E2E_PIPELINES") or "{}")

if "watcher_delivery" in PIPELINES:
    from opsera_e2e_watcher import TriggererKillingWatcher

    PIPELINE_ID = PIPELINES["watcher_delivery"]
    runs = Asset(
        name="e2e_opsera_watcher_delivery_runs",
        uri=f"opsera://pipelines/{PIPELINE_ID}",
        watchers=[
            AssetWatcher(
                name="e2e_opsera_watcher_delivery",
                trigger=TriggererKillingWatcher(pipeline_id=PIPELINE_ID, poll_interval=2),
            )
        ],
    )

    with DAG(
        dag_id="e2e_opsera_watcher_delivery",
        schedule=[runs],
        start_date=datetime(2024, 1, 1),
        catchup=False,
        tags=["e2e"],
    ):

        @task
        def reported(triggering_asset_events: Any = None) -> list[dict]:
            return [event.extra["payload"] for event in triggering_asset_events[runs]]

        reported()
