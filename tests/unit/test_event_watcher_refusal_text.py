"""The asset watcher's line about a refusal reads as one sentence, whatever Opsera's message ends with."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_opsera._compat import AIRFLOW_V3
from airflow_provider_opsera.exceptions import OpseraPermissionError
from airflow_provider_opsera.waiting.watch import FailedPolls
from tests.unit.conftest import PIPELINE_ID

if not AIRFLOW_V3:
    pytest.skip("event-driven scheduling (asset watchers) is Airflow 3", allow_module_level=True)


def test_a_refusal_ending_in_a_period_is_logged_without_a_doubled_one(caplog):
    from airflow_provider_opsera.triggers import OpseraPipelineRunEventTrigger

    trigger = OpseraPipelineRunEventTrigger(pipeline_id=PIPELINE_ID, poll_interval=30)
    trigger._log = logging.getLogger("test.watcher")
    caplog.set_level(logging.ERROR, logger="test.watcher")
    refusal = OpseraPermissionError("Opsera POST /api/v1/pipeline/summary: 403 forbidden (forbidden).", status_code=403)

    trigger.note_failed_poll(refusal, FailedPolls(), None)

    [line] = [record.getMessage() for record in caplog.records if record.name == "test.watcher"]
    assert "403 forbidden (forbidden). No run of it is reported until this is fixed" in line
    assert ".." not in line
