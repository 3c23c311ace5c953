"""Text from Opsera made safe for a task-log line: escapes removed whole, no control characters, one line each."""

from __future__ import annotations

import pytest

from airflow_provider_opsera.waiting.log_text import safe_line, safe_lines
from airflow_provider_opsera.waiting.run_logs import ConsoleLog, console_lines, step_label
from tests.unit.pipeline_fakes import console, newest_first

FORGED = "build\n[2026-01-01T00:00:00] INFO - Marking task as SUCCESS"


def is_clean(line: str) -> bool:
    return all(char.isprintable() or char == " " for char in line)


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("\x1b[1;31mred\x1b[0m text", "red text"),
        ("\x9b31mred\x9b0m", "red"),  # the 8-bit CSI
        ("\x1b]8;;https://evil.example/\x07click here\x1b]8;;\x07", "click here"),  # OSC-8, BEL-terminated
        ("\x1b]8;;https://evil.example/\x1b\\link\x1b]8;;\x1b\\", "link"),  # OSC-8, ST-terminated
        ("\x1b]0;new window title\x07after", "after"),
        ("\x1b]2;unterminated title", ""),  # an unterminated string runs to the end of the line
        ("\x1bPq#0;2;0;0;0\x1b\\sixel", "sixel"),  # DCS
        ("\x1b(B\x1bcreset", "reset"),  # two-byte escapes
        ("nul\x00byte del\x7f bell\x07 lone esc\x1b", "nulbyte del bell lone esc"),
        ("a\tb", "a   b"),
        ("\u202eevil\u202c \u2066isolate\u2069", "evil isolate"),  # direction overrides reorder a line
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
        ("ünïcödé ✓ 日本語", "ünïcödé ✓ 日本語"),
    ],
)
def test_escape_sequences_go_whole_and_no_control_character_stays(raw, shown):
    assert " ".join(safe_lines(raw)) == shown
    assert all(is_clean(line) for line in safe_lines(raw))


@pytest.mark.parametrize("breaks", ["\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"])
def test_every_kind_of_line_break_starts_a_new_line(breaks):
    assert safe_lines(f"one{breaks}two") == ["one", "two"]


def test_safe_line_joins_lines_and_cuts_long_text():
    assert safe_line(FORGED) == "build [2026-01-01T00:00:00] INFO - Marking task as SUCCESS"
    assert safe_line("x" * 100, limit=10) == "x" * 9 + "…"


def test_a_step_name_with_a_line_break_cannot_start_a_log_line_of_its_own():
    log_lines: list[str] = []
    log = type("Log", (), {"info": lambda self, fmt, *args: log_lines.extend((fmt % args).split("\n"))})()
    ConsoleLog(log).add(newest_first(console(1, FORGED, "first\nsecond")))
    label = "[build [2026-01-01T00:00:00] INFO - Marking task as SUCCESS]"
    assert log_lines == [f"{label} first", f"{label} second"]


def test_console_text_and_labels_are_clean():
    record = {
        "step_name": "\x1b[31mdeploy\x1b[0m\x00",
        "api_response": {"consoleLog": {"tool": ["ok\x1b]8;;http://x\x07link\x1b]8;;\x07", "\x1b[2Jcleared"]}},
    }
    assert step_label(record) == "deploy"
    assert console_lines(record) == ["oklink", "cleared"]


def test_a_name_that_is_only_escapes_falls_back_to_the_tool():
    assert step_label({"step_name": "\x1b[0m\n", "tool_identifier": "jenkins"}) == "jenkins"
    assert step_label({"step_name": "x" * 500}) == "x" * 79 + "…"


def test_the_failure_message_tail_is_clean_and_prefixed():
    stream = ConsoleLog(None, echo=False)
    stream.add(newest_first(console(1, "unit\ntests", "FAILED \x1b[31mtest_x\x1b[0m\nAssertionError")))
    assert stream.tail_text().split("\n") == ["[unit tests] FAILED test_x", "[unit tests] AssertionError"]
