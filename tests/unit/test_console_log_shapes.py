"""Any JSON in a log page becomes clean console lines or is skipped: reading it never raises."""

from __future__ import annotations

import json
import logging
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_opsera.hooks.responses import page_records
from airflow_provider_opsera.waiting.run_logs import ConsoleLog, RunLogFollower, console_lines, step_label
from tests.unit.pipeline_fakes import console, newest_first
from tests.unit.test_run_logs import RecordingLog

DIRECTION_MARKS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def is_clean(line: str) -> bool:
    """One line a reader sees as written: no control character (so no escape), direction override or surrogate."""
    return not any(unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in DIRECTION_MARKS for char in line)


def oid(i: int) -> dict:
    return {"$oid": f"{i:024x}"}


def test_records_whose_id_is_an_object_are_printed_once():
    log = RecordingLog()
    stream = ConsoleLog(log)
    first = [{**console(1, "build", "one"), "_id": oid(1)}, {**console(2, "build", "two"), "_id": oid(2)}]
    second = [*first, {**console(3, "build", "three"), "_id": oid(3)}]
    assert stream.add(newest_first(*first)) == 2
    assert stream.add(newest_first(*second)) == 1
    assert log.infos() == ["[build] one", "[build] two", "[build] three"]


def test_items_that_are_not_records_are_skipped_with_one_note():
    log = RecordingLog()
    stream = ConsoleLog(log)
    page = [console(2, "build", "kept"), 42, "text", None, ["a"], True, console(1, "build", "first")]
    assert stream.add(page) == 2
    stream.add(page)
    assert log.infos() == ["[build] first", "[build] kept"]
    assert log.warnings() == [
        "Opsera's log answer holds 5 item(s) that are not log records (array, boolean, null, number, string); "
        "they are skipped."
    ]


def test_a_full_page_ending_in_a_non_record_is_read(monkeypatch):
    monkeypatch.setattr("airflow_provider_opsera.waiting.run_logs.RECORD_CAP", 3)
    log = RecordingLog()
    assert ConsoleLog(log).add([console(2, "build", "b"), console(1, "build", "a"), "junk"]) == 2
    assert log.infos() == ["[build] a", "[build] b"]


def test_console_values_that_are_not_text_are_shown_as_json():
    record = {"api_response": {"consoleLog": {"a": [1, 2.5, True, None, {"k": "v\n"}], "b": False}}}
    assert console_lines(record) == ["1", "2.5", "true", '{"k": "v\\n"}', "false"]


def test_odd_step_fields_give_a_usable_label():
    assert step_label({"step_name": {"$oid": "x"}, "tool_identifier": ["jenkins"], "step_index": 2.0}) == "step 3"
    assert step_label({"step_name": 7, "step_index": -1}) == "7"
    assert step_label({"step_index": True}) == "run"


def test_a_record_nested_too_deeply_to_compare_is_still_printed():
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    log = RecordingLog()
    record = {**console(1, "build", "line"), "_id": deep}
    assert ConsoleLog(log).add([record, {**console(0, "x", "y"), "api_response": {"consoleLog": [deep]}}]) == 1
    assert log.infos() == ["[build] line"]


# -- properties: arbitrary JSON, with the text a hostile tool could write

HOSTILE_PIECES = st.sampled_from(
    [
        "\n",
        "\r\n",
        "\r",
        "\t",
        "\x00",
        "\x1b",
        "\x1b[31m",
        "\x1b[0m",
        "\x9b2J",
        "\x1b]8;;http://evil/\x07",
        "\x1b]8;;\x1b\\",
        "\x1b]0;title",
        "\x1bPdata\x1b\\",
        "\x85",
        "\u2028",
        "\u202e",
        "\u2066",
        "\ud800",
        "\x7f",
        "INFO - Marking task as SUCCESS",
        "[2026-01-01 00:00:00]",
        " ",
    ]
)
TEXT = st.lists(HOSTILE_PIECES | st.text(st.characters(exclude_categories=()), max_size=8), max_size=6).map("".join)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12
)
CONSOLE_LOG = JSON | TEXT | st.dictionaries(TEXT, TEXT | st.lists(TEXT, max_size=3), max_size=3)
RECORD = st.fixed_dictionaries(
    {},
    optional={
        "_id": JSON | st.builds(oid, st.integers(0, 5)) | st.integers(0, 5).map(str),
        "action": st.sampled_from(["console output", " Console Output ", "step complete"]) | JSON,
        "step_name": TEXT | JSON,
        "tool_identifier": TEXT | JSON,
        "step_index": st.integers(-2, 50) | JSON,
        "api_response": st.fixed_dictionaries({"consoleLog": CONSOLE_LOG}) | JSON,
        "createdAt": TEXT | JSON,
    },
)
PAGE = st.lists(RECORD | JSON, max_size=8)


@settings(max_examples=150, deadline=None)
@given(PAGE)
def test_any_page_gives_clean_lines_each_record_once(page):
    log = RecordingLog()
    stream = ConsoleLog(log)
    stream.add(page)
    assert stream.add(page) == 0  # nothing is printed twice
    assert all("\n" not in text and is_clean(text) for _, text in log.lines)
    assert all(is_clean(line) for line in stream.tail_text().split("\n"))


@settings(max_examples=150, deadline=None)
@given(RECORD)
def test_any_record_gives_clean_lines_and_a_clean_label(record):
    assert all(is_clean(line) for line in console_lines(record))
    label = step_label(record)
    assert label and "\n" not in label and is_clean(label)


@settings(max_examples=100, deadline=None)
@given(JSON | PAGE | st.fixed_dictionaries({"data": PAGE}) | st.fixed_dictionaries({"results": PAGE}))
def test_the_follower_survives_any_answer_of_the_logs_call(payload):
    # the answer as it arrives, through the same page reading the hooks use
    wire = json.loads(json.dumps(payload))
    follower = RunLogFollower(lambda: page_records(wire), logging.getLogger("test.console"))
    follower.pull()
    follower.pull()
    assert all(is_clean(line) for line in follower.tail_text().split("\n"))
