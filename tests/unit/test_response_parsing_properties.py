"""Any JSON (or any bytes) Opsera may send becomes data or one of the provider's own errors, never another exception."""

from __future__ import annotations

import asyncio
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_opsera.client.api import ENDPOINTS
from airflow_provider_opsera.client.status import OpseraRunStatus
from airflow_provider_opsera.exceptions import OpseraBadResponseError, OpseraError, OpseraSummaryShapeError
from airflow_provider_opsera.hooks.responses import (
    MAX_MESSAGE_CHARS,
    error_for,
    latest_run_count,
    opsera_message,
    page_records,
    parse_json,
    retry_after_seconds,
    run_number,
    run_status,
    task_status,
)
from airflow_provider_opsera.triggers import OpseraPipelineRunTrigger, OpseraTaskTrigger
from tests.unit.conftest import PIPELINE_ID, TASK_ID
from tests.unit.pipeline_fakes import FakeAsyncHook

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# the fake clock only moves on between examples, which each build their own trigger
WITH_CLOCK = settings(PROPERTY, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
STATUS = ENDPOINTS["pipeline_status"]

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
)
# answers shaped like Opsera's, with any value in each field
status_like = st.fixed_dictionaries(
    {}, optional={"status": json_values, "message": json_values, "runCount": json_values, "data": json_values}
)
answers = json_values | status_like


def deeply_nested(depth: int = 100_000) -> str:
    return "[" * depth + "]" * depth


def _only_our_errors(function, *args):
    try:
        return function(*args)
    except OpseraError:
        return None


@PROPERTY
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode) | answers.map(lambda v: json.dumps(v).encode()))
def test_any_body_parses_or_raises_a_bad_response(body):
    text = body.decode("utf-8", errors="replace")
    _only_our_errors(parse_json, text, STATUS, 200)
    assert isinstance(opsera_message(text), str)


@PROPERTY
@given(
    st.integers(min_value=100, max_value=599),
    answers.map(json.dumps) | st.text(max_size=200),
    st.none() | st.text(max_size=40),
)
def test_any_error_answer_becomes_a_typed_error(status, text, retry_after):
    error = error_for(STATUS, status, text, retry_after)
    assert isinstance(error, OpseraError) and error.status_code == status


@PROPERTY
@given(answers)
def test_readers_of_any_answer_give_data_or_a_bad_response(answer):
    page = _only_our_errors(page_records, answer)
    if page is not None:
        records, cursor = page
        assert isinstance(records, list) and (cursor is None or isinstance(cursor, str))
    read = _only_our_errors(run_status, answer)
    if read is not None:
        status, message = read
        assert isinstance(status, str) and isinstance(message, str) and len(message) < MAX_MESSAGE_CHARS + 100
        OpseraRunStatus.outcome(status)
    assert _only_our_errors(task_status, answer) is None or isinstance(task_status(answer), str)
    count = _only_our_errors(run_number, answer.get("runCount") if isinstance(answer, dict) else answer)
    assert count is None or (isinstance(count, int) and count >= 1)


@PROPERTY
@given(st.text(max_size=60))
def test_any_retry_after_is_a_usable_wait_or_none(header):
    seconds = retry_after_seconds(header)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)


@WITH_CLOCK
@given(answers)
def test_a_trigger_ends_with_an_event_whatever_the_status_answer(trigger_clock, answer):
    """The status a trigger reads, however odd, ends in an event with a short text message, never a crash."""
    for trigger in (
        OpseraPipelineRunTrigger(pipeline_id=PIPELINE_ID, run_count=3, poll_interval=30, timeout=60),
        OpseraTaskTrigger(opsera_task_id=TASK_ID, poll_interval=30, timeout=60),
    ):
        trigger._hook = FakeAsyncHook(answer)
        [event] = asyncio.run(_events(trigger))
        assert event["status"] in ("success", "failed", "stopped", "timeout", "error")
        assert isinstance(event["message"], str) and len(event["message"]) < 2200


async def _events(trigger) -> list[dict]:
    return [event.payload async for event in trigger.run()]


# -- the cases the property tests found or the contract names, spelled out --


@pytest.mark.parametrize("reader", [lambda text: parse_json(text, STATUS, 200), opsera_message])
def test_a_deeply_nested_body_is_a_bad_response_not_a_recursion_error(reader):
    try:
        result = reader(deeply_nested())
    except OpseraBadResponseError as error:
        assert "nested too deeply" in str(error)
    else:
        assert isinstance(result, str)  # opsera_message shows an excerpt instead


def test_a_deeply_nested_error_body_still_gives_the_status_s_error():
    error = error_for(STATUS, 502, deeply_nested())
    assert error.status_code == 502 and "server error 502" in str(error)


@pytest.mark.parametrize("value, expected", [(7, 7), (7.0, 7), ("7", 7), (" 12 ", 12)])
def test_run_numbers_as_opsera_may_write_them(value, expected):
    assert run_number(value) == expected


@pytest.mark.parametrize("value", [7.5, True, False, "7.0", "seven", float("nan"), float("inf"), 0, -3, None, [7], "²"])
def test_what_is_not_a_run_number_says_so(value):
    with pytest.raises(OpseraBadResponseError, match="not a run number"):
        run_number(value)


@pytest.mark.parametrize(
    "answer, words",
    [
        (["success"], "an array"),
        ("success", "text 'success'"),
        (3, "a number 3"),
        (None, "null"),
        ({"message": "no status"}, "null, not a status word"),
        ({"status": {"$oid": "1"}}, "an object"),
        ({"status": "x" * 5000}, "5000 characters"),
    ],
)
def test_a_status_answer_of_the_wrong_shape_is_named(answer, words):
    with pytest.raises(OpseraBadResponseError, match="not") as caught:
        run_status(answer, "Opsera pipeline p run 3")
    assert words in str(caught.value) and "Opsera pipeline p run 3" in str(caught.value)


def test_a_message_of_another_type_is_shown_as_json_and_a_long_one_is_cut():
    assert run_status({"status": "failed", "message": {"step": "build", "code": 2}}) == (
        "failed",
        '{"step":"build","code":2}',
    )
    status, message = run_status({"status": "failed", "message": "x" * 1_000_000})
    assert len(message) < MAX_MESSAGE_CHARS + 100 and message.endswith("more characters cut]")


@pytest.mark.parametrize("run_count, expected", [(7, 7), (7.0, 7), ("7", 7), (None, 0), (0, 0)])
def test_the_latest_run_count_is_read_as_opsera_may_write_it(run_count, expected):
    """One reading for the operator, the asset watcher and the doctor alike."""
    assert latest_run_count({"workflow": {"run_count": run_count}}, PIPELINE_ID) == expected


@pytest.mark.parametrize("run_count", [7.5, True, "²", "7.0", float("inf"), -1, [7]])
def test_a_latest_run_count_that_is_no_run_number_is_named_never_read_as_run_0(run_count):
    with pytest.raises(OpseraSummaryShapeError, match="not a run number"):
        latest_run_count({"workflow": {"run_count": run_count}}, PIPELINE_ID)


@pytest.mark.parametrize("summary", [{}, {"workflow": {}}, {"workflow": {"runCount": 7}}, [], "run 7"])
def test_a_summary_without_its_latest_run_count_is_named(summary):
    with pytest.raises(OpseraSummaryShapeError, match="has no workflow.run_count"):
        latest_run_count(summary, PIPELINE_ID)
