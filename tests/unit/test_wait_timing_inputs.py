"""How often and how long a wait polls: one range, refused with its name and value wherever it is given."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from airflow_provider_opsera.client import validation
from airflow_provider_opsera.exceptions import OpseraInputError
from airflow_provider_opsera.operators import OpseraRunPipelineOperator
from airflow_provider_opsera.sensors import OpseraPipelineRunSensor, OpseraTaskSensor
from airflow_provider_opsera.triggers import OpseraPipelineRunEventTrigger, OpseraPipelineRunTrigger, OpseraTaskTrigger
from tests.unit.conftest import BASE_URL, PIPELINE_ID, TASK_ID
from tests.unit.pipeline_fakes import make_context

# a tight loop, a sleep until the deadline, a typo: each was accepted once
BAD_POLL_INTERVALS = [0, "0", 0.5, -1, float("nan"), "nan", float("inf"), "inf", "1e400", 86_401, True, "soon", None]
BAD_TIMEOUTS = [0, "0", -5, float("nan"), "nan", float("inf"), "inf", 367 * 86_400, True, "later"]
POLL_RANGE = r"must be a number of seconds from 1 to 86400 \(a day\), got "
TIMEOUT_RANGE = r"must be a number of seconds more than 0 and at most 31622400 \(366 days\)"

TRIGGERS = {
    "pipeline run": lambda **kw: OpseraPipelineRunTrigger(PIPELINE_ID, 3, **kw),
    "task": lambda **kw: OpseraTaskTrigger(TASK_ID, **kw),
}


@pytest.mark.parametrize("value", [1, "30", " 30 ", 86_400, dt.timedelta(minutes=2)])
def test_a_poll_interval_in_range_is_read_as_seconds(value):
    expected = 120.0 if isinstance(value, dt.timedelta) else float(str(value))
    assert validation.poll_interval(value) == expected


@pytest.mark.parametrize("value, expected", [(None, None), ("", None), ("None", None), (1, 1.0), ("3600", 3600.0)])
def test_a_timeout_in_range_is_read_as_seconds(value, expected):
    assert validation.timeout(value) == expected


@pytest.mark.parametrize("value", BAD_POLL_INTERVALS)
def test_the_operator_refuses_a_bad_poll_interval_when_built(value):
    with pytest.raises(OpseraInputError) as caught:
        OpseraRunPipelineOperator(task_id="run", pipeline_id=PIPELINE_ID, poll_interval=value)
    assert str(caught.value) == f"poll_interval must be a number of seconds from 1 to 86400 (a day), got {value!r}"


@pytest.mark.parametrize("value", BAD_TIMEOUTS)
def test_the_operator_refuses_a_bad_timeout_when_built(value):
    with pytest.raises(OpseraInputError, match=f"^timeout {TIMEOUT_RANGE}, or None for no limit, got ") as caught:
        OpseraRunPipelineOperator(task_id="run", pipeline_id=PIPELINE_ID, timeout=value)
    assert str(caught.value).endswith(f"got {value!r}")


@pytest.mark.parametrize("deferrable", [False, True])
@pytest.mark.parametrize("field, value", [("poll_interval", "0"), ("poll_interval", "nan"), ("timeout", "inf")])
def test_a_templated_value_is_refused_once_rendered_before_anything_is_sent(
    set_conn, token, requests_mock, deferrable, field, value
):
    set_conn(host=BASE_URL, password=token)
    op = OpseraRunPipelineOperator(
        task_id="run", pipeline_id="{{ pipeline }}", deferrable=deferrable, **{field: "{{ value }}"}
    )
    op.render_template_fields({"pipeline": PIPELINE_ID, "value": value})
    assert getattr(op, field) == value
    with pytest.raises(OpseraInputError, match=f"^{field} must be a number of seconds .*, got {value!r}$"):
        op.execute(make_context())
    assert requests_mock.call_count == 0


@pytest.mark.parametrize("sensor", ["pipeline run", "task"])
@pytest.mark.parametrize(
    "timing, complaint",
    [
        ({"poke_interval": 0}, f"^poke_interval {POLL_RANGE}0.0$"),
        ({"poke_interval": dt.timedelta(seconds=0.2)}, f"^poke_interval {POLL_RANGE}0.2$"),
        ({"timeout": 0}, f"^timeout {TIMEOUT_RANGE}, got 0.0$"),
    ],
)
def test_a_deferrable_sensor_refuses_what_its_trigger_would_poll_with(sensor, timing, complaint):
    build = {
        "pipeline run": lambda **kw: OpseraPipelineRunSensor(pipeline_id=PIPELINE_ID, run_count=3, **kw),
        "task": lambda **kw: OpseraTaskSensor(opsera_task_id=TASK_ID, **kw),
    }[sensor]
    with pytest.raises(OpseraInputError, match=complaint):
        build(task_id="wait", deferrable=True, **timing)
    # in the worker, poking stays Airflow's business
    assert build(task_id="wait", deferrable=False, **timing).mode == "poke"


# What a trigger makes of each bad value: Airflow rebuilds triggers from stored rows, so a trigger never refuses one.
POLL_INTERVAL_READ_AS = [1.0, 1.0, 1.0, 1.0, 30.0, 30.0, 86_400.0, 86_400.0, 86_400.0, 86_400.0, 30.0, 30.0, 30.0]
TIMEOUT_READ_AS = [0.0, 0.0, 0.0, None, None, None, None, validation.MAX_TIMEOUT, None, None]


@pytest.mark.parametrize("trigger", sorted(TRIGGERS))
@pytest.mark.parametrize("value, read_as", zip(BAD_POLL_INTERVALS, POLL_INTERVAL_READ_AS))
def test_a_trigger_built_directly_brings_a_bad_poll_interval_into_range_with_a_warning(
    trigger, value, read_as, task_log
):
    assert TRIGGERS[trigger](poll_interval=value).poll_interval == read_as
    assert f"poll_interval {value!r} is" in task_log.text() and f"polling every {read_as:g} s" in task_log.text()


@pytest.mark.parametrize("trigger", sorted(TRIGGERS))
@pytest.mark.parametrize("value, read_as", zip(BAD_TIMEOUTS, TIMEOUT_READ_AS))
def test_a_trigger_built_directly_reads_a_bad_timeout_as_the_versions_that_stored_it_did(
    trigger, value, read_as, task_log
):
    before = time.time()
    built = TRIGGERS[trigger](timeout=value)
    assert built.timeout == read_as
    if read_as is None:  # not finite or not a number: it never ended a wait, and does not now
        assert built.end_time is None and "the wait has no limit" in task_log.text()
    else:  # 0 or less ended the wait at its first poll, and still does; more than 366 days is cut to that
        assert before + read_as <= built.end_time <= time.time() + read_as
    assert f"timeout {value!r} is" in task_log.text()


@pytest.mark.parametrize("value, read_as", zip(BAD_POLL_INTERVALS, POLL_INTERVAL_READ_AS))
def test_the_event_trigger_brings_a_bad_poll_interval_into_range(value, read_as, task_log):
    assert OpseraPipelineRunEventTrigger(PIPELINE_ID, poll_interval=value).poll_interval == read_as
    assert f"poll_interval {value!r} is" in task_log.text()


def test_a_trigger_keeps_its_timing_through_serialisation():
    trigger = OpseraPipelineRunTrigger(PIPELINE_ID, 3, poll_interval="15", timeout=60)
    _, kwargs = trigger.serialize()
    assert (kwargs["poll_interval"], kwargs["timeout"]) == (15.0, 60.0)
    assert OpseraPipelineRunTrigger(**kwargs).serialize() == trigger.serialize()
