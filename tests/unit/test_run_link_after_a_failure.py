"""The "Opsera pipeline run" link: the task's own URL on Airflow 3, no XCom read for a task that never had one."""

from __future__ import annotations

import pytest

from airflow_provider_opsera._compat import AIRFLOW_V3
from airflow_provider_opsera.exceptions import OpseraInputError
from airflow_provider_opsera.links import PIPELINE_RUN_URL_KEY, OpseraPipelineRunLink
from airflow_provider_opsera.operators import OpseraRunPipelineOperator
from airflow_provider_opsera.sensors import OpseraPipelineRunSensor
from tests.unit.conftest import BASE_URL, PIPELINE_ID
from tests.unit.pipeline_fakes import RUN, SUMMARY, FakeTI, make_context, summary

pytestmark = pytest.mark.skipif(not AIRFLOW_V3, reason="Airflow 2 reads the link from XCom in the webserver")

PORTAL = "https://portal.opsera.test"
URL = f"{PORTAL}/workflow/details/{PIPELINE_ID}/summary"
EVENT = {"status": "success", "message": "done", "pipeline_id": PIPELINE_ID, "run_count": 3}


@pytest.fixture
def no_xcom_reads(monkeypatch):
    from airflow.sdk.execution_time.xcom import XCom

    reads = []
    monkeypatch.setattr(XCom, "get_value", classmethod(lambda cls, **kwargs: reads.append(kwargs)))
    return reads


@pytest.fixture
def opsera(set_conn, token, requests_mock):
    set_conn(host=BASE_URL, password=token, extra={"portal_url": PORTAL})
    requests_mock.post(SUMMARY, [summary(2)])
    return requests_mock


def link(task) -> str:
    return OpseraPipelineRunLink().get_link(task, ti_key=FakeTI())


def test_a_task_that_failed_before_knowing_its_pipeline_has_no_link_and_reads_no_xcom(opsera, no_xcom_reads):
    op = OpseraRunPipelineOperator(task_id="run_pipeline", pipeline_id="{{ params.pipeline }}")
    op.pipeline_id = "not-an-id"  # as the template rendered (a literal one is refused when the DAG is parsed)
    with pytest.raises(OpseraInputError):
        op.execute(make_context())
    assert link(op) == ""
    assert no_xcom_reads == []


def test_a_run_refused_after_the_url_was_known_keeps_its_link(opsera, no_xcom_reads):
    opsera.post(RUN, status_code=403, json={"status": "failed", "message": "forbidden"})
    ti = FakeTI()
    op = OpseraRunPipelineOperator(task_id="run_pipeline", pipeline_id=PIPELINE_ID, deferrable=False)
    op.hook._sleep = lambda seconds: None
    with pytest.raises(Exception, match="403"):
        op.execute(make_context(ti))
    assert ti.xcoms[PIPELINE_RUN_URL_KEY] == URL
    assert link(op) == URL
    assert no_xcom_reads == []


@pytest.mark.parametrize(
    "make_task",
    [
        lambda: OpseraRunPipelineOperator(task_id="run_pipeline", pipeline_id=PIPELINE_ID, deferrable=True),
        lambda: OpseraPipelineRunSensor(task_id="wait", pipeline_id=PIPELINE_ID, run_count=3, deferrable=True),
    ],
)
def test_a_resumed_task_links_its_pipeline_again(opsera, no_xcom_reads, make_task):
    opsera.post(f"{BASE_URL}/api/v1/pipeline/logs", json=[])
    task = make_task()
    task.execute_complete(make_context(), dict(EVENT))
    assert link(task) == URL
    assert no_xcom_reads == []
