"""Mistakes in a DAG file are refused when the DAG is parsed; templates and XComArgs are checked once rendered."""

from __future__ import annotations

import datetime as dt
import inspect

import pytest

from airflow_provider_opsera.exceptions import OpseraInputError
from airflow_provider_opsera.operators import (
    OpseraAuditLogsOperator,
    OpseraCreateMappingOperator,
    OpseraCreateOrgHierarchyOperator,
    OpseraCreatePersonOperator,
    OpseraCreateProjectOperator,
    OpseraResetPipelineOperator,
    OpseraRunPipelineOperator,
    OpseraStopPipelineOperator,
    OpseraUpdateToolOperator,
)
from airflow_provider_opsera.sensors import OpseraPipelineRunSensor
from tests.unit.conftest import BASE_URL, PIPELINE_ID

TOOL_ID = "6a0b1c2d3e4f5a6b7c8d9e0f"
PIPELINE_OPERATORS = [OpseraRunPipelineOperator, OpseraStopPipelineOperator, OpseraResetPipelineOperator]


def sensor(**kwargs):
    return OpseraPipelineRunSensor(task_id="wait", **{"pipeline_id": PIPELINE_ID, "run_count": 1, **kwargs})


@pytest.fixture
def upstream_output():
    """An XComArg, as ``task.output`` gives inside a DAG: its value exists only when the task runs."""
    from airflow_provider_opsera._compat import AIRFLOW_V3

    if AIRFLOW_V3:
        from airflow.sdk import DAG
    else:
        from airflow import DAG

    with DAG("parse_checks", schedule=None, start_date=dt.datetime(2026, 1, 1)):
        upstream = OpseraRunPipelineOperator(task_id="upstream", pipeline_id=PIPELINE_ID)
        yield upstream.output


# -- pipeline_id ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", PIPELINE_OPERATORS)
def test_a_name_given_as_pipeline_id_is_refused_suggesting_pipeline_name(cls):
    with pytest.raises(OpseraInputError) as caught:
        cls(task_id="t", pipeline_id="deploy-web-portal")
    assert str(caught.value) == (
        "pipeline_id must be a 24-character hexadecimal Opsera id, got 'deploy-web-portal'. If that is the "
        "pipeline's name, give pipeline_name='deploy-web-portal' instead (the id is in the pipeline's portal URL)"
    )


def test_the_sensor_refuses_a_name_given_as_pipeline_id_too():
    with pytest.raises(OpseraInputError, match="give pipeline_name='deploy-web-portal' instead"):
        sensor(pipeline_id="deploy-web-portal")


def test_a_mistyped_id_is_refused_without_suggesting_a_name():
    with pytest.raises(OpseraInputError) as caught:
        OpseraRunPipelineOperator(task_id="t", pipeline_id=PIPELINE_ID[:-1])
    assert "pipeline_name" not in str(caught.value)


def test_a_templated_id_is_checked_once_rendered_before_anything_is_sent(set_conn, token, requests_mock):
    set_conn(host=BASE_URL, password=token)
    operator = OpseraRunPipelineOperator(task_id="t", pipeline_id="{{ params.pipeline }}")
    operator.pipeline_id = "deploy-web-portal"  # as the template rendered
    with pytest.raises(OpseraInputError, match="give pipeline_name='deploy-web-portal' instead"):
        operator.execute({"ti": None})
    assert requests_mock.call_count == 0


# -- the other arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"tool": {}}, "tool must name at least one root property to change, got an empty dict"),
        ({"tool": "{}"}, "tool must name at least one root property to change"),
        ({"tool": ["description"]}, "tool must be a JSON object (a dict), got list"),
        ({"tool": {"configuraton.url": "x"}}, "is not a root property name"),
        ({"tool": {"_id": PIPELINE_ID, "name": "x"}}, "tool._id cannot be changed"),
        ({"tool_id": "jenkins"}, "tool_id must be a 24-character hexadecimal Opsera id, got 'jenkins'"),
    ],
)
def test_a_tool_update_that_cannot_work_is_refused_at_parse_time(kwargs, words):
    with pytest.raises(OpseraInputError) as caught:
        OpseraUpdateToolOperator(task_id="t", **{"tool_id": TOOL_ID, "tool": {"description": "x"}, **kwargs})
    assert words in str(caught.value)


def test_a_tools_id_is_compared_with_a_templated_tool_id_once_rendered():
    operator = OpseraUpdateToolOperator(task_id="t", tool_id="{{ params.tool }}", tool={"_id": TOOL_ID, "name": "x"})
    assert operator.tool == {"_id": TOOL_ID, "name": "x"}


def test_an_audit_date_that_is_not_a_day_is_refused_at_parse_time():
    with pytest.raises(OpseraInputError, match="date must be a date as YYYY-MM-DD, got 'yesterday'"):
        OpseraAuditLogsOperator(task_id="t", date="yesterday")


@pytest.mark.parametrize("date, kept", [("2026-01-02", "2026-01-02"), (dt.date(2026, 1, 2), "2026-01-02"),
                                        ("{{ ds }}", "{{ ds }}"), (None, None)])
def test_audit_dates_that_are_days_or_templates_are_accepted(date, kept):
    assert OpseraAuditLogsOperator(task_id="t", date=date).date == kept


def test_a_run_count_that_is_not_a_number_is_refused_at_parse_time_with_an_example():
    with pytest.raises(OpseraInputError) as caught:
        sensor(run_count="latest")
    assert str(caught.value).startswith("run_count must be a positive whole number, got 'latest': the sensor waits")
    assert "run_count=\"{{ ti.xcom_pull(task_ids='run_pipeline') }}\"" in str(caught.value)


@pytest.mark.parametrize(
    "run_count, kept", [(3, 3), ("3", 3), ("{{ ti.xcom_pull('run') }}", "{{ ti.xcom_pull('run') }}")]
)
def test_run_counts_that_are_numbers_or_templates_are_accepted(run_count, kept):
    assert sensor(run_count=run_count).run_count == kept


def test_a_rendered_run_count_is_checked_before_anything_is_sent(set_conn, token, requests_mock):
    set_conn(host=BASE_URL, password=token)
    waiting = sensor(run_count="{{ params.run }}", deferrable=False)
    waiting.run_count = "latest"  # as the template rendered
    with pytest.raises(OpseraInputError, match="got 'latest': the sensor waits for one run"):
        waiting.execute({"ti": None})
    assert requests_mock.call_count == 0


def test_xcom_args_are_left_for_when_the_task_runs(upstream_output):
    OpseraRunPipelineOperator(task_id="run", pipeline_id=upstream_output)
    sensor(pipeline_id=upstream_output, run_count=upstream_output)
    OpseraUpdateToolOperator(task_id="tool", tool_id=upstream_output, tool=upstream_output)
    OpseraAuditLogsOperator(task_id="audit", date=upstream_output)


# -- the Insights operators' signatures ------------------------------------------------------------

SHARED = {
    "if_exists": "skip",
    "allow_unknown_fields": False,
    "max_concurrency": 10,
    "return_records": False,
    "opsera_conn_id": "opsera_default",
}


@pytest.mark.parametrize(
    "cls", [OpseraCreateProjectOperator, OpseraCreatePersonOperator, OpseraCreateOrgHierarchyOperator,
            OpseraCreateMappingOperator],
)
def test_the_insights_operators_show_their_arguments_to_an_editor(cls):
    parameters = inspect.signature(cls.__init__).parameters
    for name, default in SHARED.items():
        assert name in parameters, name
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters[name].default == default
        assert f":param {name}:" in cls.__doc__, name
