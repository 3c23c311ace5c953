"""Stop and reset operators; light imports; no token in any log line, exception or event."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from airflow_provider_opsera.operators import OpseraResetPipelineOperator, OpseraStopPipelineOperator
from airflow_provider_opsera.triggers import OpseraPipelineRunTrigger
from tests.unit.conftest import BASE_URL, PIPELINE_ID
from tests.unit.pipeline_fakes import LOGS, RESET, RUN, STATUS, STOP, SUMMARY, FakeClock, make_context, summary

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def opsera(set_conn, token, requests_mock):
    set_conn(host=BASE_URL, password=token)
    return requests_mock


@pytest.mark.parametrize(
    "operator, url, message",
    [
        (OpseraStopPipelineOperator, STOP, "The pipeline has been stopped."),
        (OpseraResetPipelineOperator, RESET, "The pipeline run status has been reset."),
    ],
)
def test_stop_and_reset(opsera, task_log, operator, url, message):
    opsera.post(url, json={"status": "success", "message": message})
    opsera.post(SUMMARY, [summary(3)])
    opsera.post(STATUS, json={"status": "running", "message": "step 2"})
    op = operator(task_id="t", pipeline_id=PIPELINE_ID)
    assert op.template_fields == ("pipeline_id", "pipeline_name", "opsera_conn_id")
    answer = op.execute(make_context())
    assert {key: answer[key] for key in ("status", "message")} == {"status": "success", "message": message}
    assert opsera.last_request.json() == {"pipelineId": PIPELINE_ID}
    assert message in task_log.text()


@pytest.mark.parametrize("latest, status", [(3, "success"), (3, "stopped"), (0, None)])
def test_a_stop_with_no_run_in_progress_sends_nothing_and_says_so(opsera, task_log, latest, status):
    opsera.post(SUMMARY, [summary(latest)])
    opsera.post(STATUS, json={"status": status, "message": ""})
    answer = OpseraStopPipelineOperator(task_id="t", pipeline_id=PIPELINE_ID).execute(make_context())
    assert answer["status"] == "not running"
    assert not any(request.url == STOP for request in opsera.request_history)
    assert "has no run in progress" in task_log.text() and "The pipeline has been stopped." not in task_log.text()


def test_operator_sensor_trigger_and_example_dag_modules_import_light():
    """The DAG processor imports DAG files again and again: no HTTP stack at import."""
    probe = "\n".join(
        [
            "import sys, runpy",
            "import airflow_provider_opsera._compat  # Airflow's base classes: the baseline",
            "from airflow.triggers.base import BaseTrigger",
            "# building any operator makes Airflow 3.0 import its own web stack (aiohttp among it)",
            "airflow_provider_opsera._compat.BaseOperator(task_id='baseline')",
            "before = set(sys.modules)",
            "import airflow_provider_opsera.operators.pipeline",
            "import airflow_provider_opsera.sensors.pipeline, airflow_provider_opsera.sensors.task",
            "import airflow_provider_opsera.triggers.pipeline, airflow_provider_opsera.triggers.task",
            "for name in ('example_opsera_pipeline', 'example_opsera_pipeline_failure', 'example_opsera_task_sensor'):",
            f"    runpy.run_path({str(ROOT / 'example_dags')!r} + '/' + name + '.py')",
            "heavy = sorted(m for m in set(sys.modules) - before",
            "               if m.split('.')[0] in ('requests', 'aiohttp', 'tenacity', 'urllib3'))",
            "print(heavy)",
        ]
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_no_token_in_logs_errors_or_events(opsera, token, task_log):
    """Opsera (or a proxy) may echo the request's Authorization header in an error body."""
    from airflow_provider_opsera._compat import AirflowException
    from airflow_provider_opsera.operators import OpseraRunPipelineOperator

    echo = {"status": "failed", "message": f"bad request, headers: Authorization: Bearer {token}"}
    opsera.post(SUMMARY, [summary(2)])
    opsera.post(RUN, json={"status": "executed", "runCount": 3})
    opsera.post(STATUS, [{"status_code": 503, "json": echo}, {"status_code": 401, "json": echo}])
    opsera.post(LOGS, status_code=500, json=echo)
    opsera.post(STOP, exc=requests.exceptions.ConnectionError(f"reset while sending Bearer {token}"))
    clock = FakeClock()
    op = OpseraRunPipelineOperator(task_id="t", pipeline_id=PIPELINE_ID, deferrable=False, timeout=60)
    op._sleep, op._clock = clock.sleep, clock.time
    op.hook._sleep = lambda seconds: None
    errors = []
    try:
        op.execute(make_context())
    except AirflowException as error:
        errors.append(str(error))
    op.on_kill()

    class AuthFailingHook:
        async def get_pipeline_run_status(self, *args):
            from airflow_provider_opsera.client.api import ENDPOINTS
            from airflow_provider_opsera.hooks.responses import error_for

            raise error_for(ENDPOINTS["pipeline_status"], 401, json.dumps(echo))

    trigger = OpseraPipelineRunTrigger(pipeline_id=PIPELINE_ID, run_count=3)
    trigger._hook = AuthFailingHook()

    async def first_event():
        return [e.payload async for e in trigger.run()]

    events = asyncio.run(first_event())
    text = task_log.text() + "\n".join(errors) + json.dumps(events) + json.dumps(trigger.serialize())
    assert errors and events[0]["status"] == "error"
    assert token not in text
    assert token.split(".")[1] not in text  # not even the JWT's payload
