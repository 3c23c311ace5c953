"""Console output in the task log: oldest first, each record once, step-prefixed, the cap noted."""

from __future__ import annotations

import pytest

from airflow_provider_opsera.exceptions import OpseraServerError
from airflow_provider_opsera.waiting.run_logs import ConsoleLog, RunLogFollower, console_lines, step_label
from tests.unit.pipeline_fakes import console, newest_first


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def _add(self, level: str, message: str, *args) -> None:
        self.lines.append((level, message % args if args else message))

    def info(self, message, *args):
        self._add("info", message, *args)

    def warning(self, message, *args):
        self._add("warning", message, *args)

    def infos(self) -> list[str]:
        return [text for level, text in self.lines if level == "info"]

    def warnings(self) -> list[str]:
        return [text for level, text in self.lines if level == "warning"]


def test_lines_come_out_oldest_first_with_their_step():
    log = RecordingLog()
    ConsoleLog(log).add(newest_first(console(1, "checkout", "Cloning"), console(2, "build", "Compiling...")))
    assert log.infos() == ["[checkout] Cloning", "[build] Compiling..."]


def test_overlapping_fetches_print_each_record_once():
    log = RecordingLog()
    stream = ConsoleLog(log)
    first = [console(1, "build", "one"), console(2, "build", "two")]
    second = [*first, console(3, "build", "three"), console(4, "deploy", "four")]
    assert stream.add(newest_first(*first)) == 2
    assert stream.add(newest_first(*second)) == 2
    assert stream.add(newest_first(*second)) == 0
    assert log.infos() == ["[build] one", "[build] two", "[build] three", "[deploy] four"]


@pytest.mark.parametrize(
    "console_log, lines",
    [
        ("single line", ["single line"]),
        ("first\nsecond\n", ["first", "second"]),
        ({"jenkins": "a\nb", "sonar": ["c", "d"]}, ["a", "b", "c", "d"]),
        (["x", "y"], ["x", "y"]),
        (None, []),
    ],
)
def test_console_log_shapes(console_log, lines):
    assert console_lines({"api_response": {"consoleLog": console_log}}) == lines


def test_the_prefix_falls_back_to_the_tool_then_the_position():
    assert step_label({"step_name": "build", "tool_identifier": "jenkins"}) == "build"
    assert step_label({"step_name": "", "tool_identifier": "jenkins"}) == "jenkins"
    assert step_label({"step_index": 1}) == "step 2"
    assert step_label({}) == "run"


def test_records_other_than_console_output_are_skipped():
    log = RecordingLog()
    other = {**console(1, "build", "not console"), "action": "step complete"}
    ConsoleLog(log).add([console(2, "build", "console"), other])
    assert log.infos() == ["[build] console"]


def test_a_full_page_that_skips_records_is_noted_once_per_gap(monkeypatch):
    monkeypatch.setattr("airflow_provider_opsera.waiting.run_logs.RECORD_CAP", 3)
    log = RecordingLog()
    stream = ConsoleLog(log)
    stream.add(newest_first(console(1, "s", "1"), console(2, "s", "2"), console(3, "s", "3")))
    assert len(log.warnings()) == 1 and "at most 3 log records" in log.warnings()[0]
    # the next page overlaps what was printed: nothing was skipped, nothing to note
    stream.add(newest_first(console(2, "s", "2"), console(3, "s", "3"), console(4, "s", "4")))
    assert len(log.warnings()) == 1
    assert log.infos() == ["[s] 1", "[s] 2", "[s] 3", "[s] 4"]


def test_without_echo_nothing_is_printed_but_the_tail_is_kept():
    log = RecordingLog()
    stream = ConsoleLog(log, echo=False, tail_lines=2)
    stream.add(newest_first(console(1, "a", "1"), console(2, "b", "2"), console(3, "c", "3")))
    assert log.lines == []
    assert stream.tail_text() == "[b] 2\n[c] 3"


def test_a_failed_fetch_is_reported_once_per_streak_and_never_raises():
    log = RecordingLog()
    answers = [OpseraServerError("503"), OpseraServerError("503"), [console(1, "s", "back")], OpseraServerError("x")]

    def fetch():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    follower = RunLogFollower(fetch, log)
    assert [follower.pull() for _ in range(4)] == [0, 0, 1, 0]
    assert len(log.warnings()) == 2
    assert log.infos() == ["[s] back"]
