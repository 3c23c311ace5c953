"""Loaded by the end-to-end Airflow only (``[core] plugins_folder`` is on every component's ``sys.path``).

An asset watcher that kills its own triggerer at the worst moment for delivery: Airflow's trigger
runner has taken the event of a run (the watcher's generator resumed after ``yield``) and holds it in
memory, and the triggerer's supervisor has not written it to the database yet. It does so once, while
the file named by ``OPSERA_E2E_KILL_ON_HANDOVER`` exists: the first copy of the watcher to hand an event
over renames it to ``<name>.fired``, writes there what it knew, and SIGKILLs its process group (the
trigger runner and the triggerer that started it). The watcher's copy on the other triggerer then
carries on from the cursor in the asset state store.
"""

from __future__ import annotations

import json
import os
import signal

from airflow_provider_opsera.triggers.pipeline_events import OpseraPipelineRunEventTrigger


class TriggererKillingWatcher(OpseraPipelineRunEventTrigger):
    def handed_over(self, run_count: int) -> None:
        super().handed_over(run_count)
        armed = os.environ.get("OPSERA_E2E_KILL_ON_HANDOVER")
        if not armed:
            return
        fired = f"{armed}.fired"
        try:
            os.rename(armed, fired)  # atomic: one copy only, the first to get here
        except FileNotFoundError:
            return
        cursor = self.cursor
        seen = {"run_count": run_count, "stored": cursor.kept, "position": cursor.position, "pid": os.getpid()}
        with open(fired, "w") as out:
            json.dump(seen, out)
        os.killpg(os.getpgrp(), signal.SIGKILL)
