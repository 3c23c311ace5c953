"""Activity logs: record shape, console output, filters, newest first, the 1000 cap."""

from __future__ import annotations

from airflow_provider_opsera.emulator import OpseraEmulator
from airflow_provider_opsera.emulator.seed import read_seed

from .support import BLANK, BROKEN, CHATTY, Client

RECORD_FIELDS = {
    "_id", "pipeline_id", "run_count", "step_id", "step_index", "step_name", "tool_identifier",
    "action", "message", "status", "state", "api_response", "user_id", "createdAt",
}


def test_console_lines_appear_as_the_step_progresses(emu, admin):
    admin.run(BLANK)
    emu.advance(10)  # halfway through checkout: two of its four lines
    console = admin.logs(BLANK, runCount=1, type="console output")
    assert [r["api_response"]["consoleLog"] for r in console] == [
        "remote: Enumerating objects: 1842, done.",
        "Cloning into 'web-portal'...",
    ]
    emu.advance(100)
    console = admin.logs(BLANK, runCount=1, type="console output")
    assert len(console) == 14
    assert console[-1]["api_response"]["consoleLog"] == "Cloning into 'web-portal'..."
    assert console[0]["api_response"]["consoleLog"] == "Deployment complete"
    assert {r["action"] for r in console} == {"console output"}


def test_records_are_newest_first_and_shaped_as_documented(emu, admin):
    admin.run(BLANK)
    emu.advance(100)
    records = admin.logs(BLANK, runCount=1)
    assert RECORD_FIELDS <= set(records[0])
    stamps = [r["createdAt"] for r in records]
    assert stamps == sorted(stamps, reverse=True)
    assert records[0]["status"] == "success"
    assert records[-1]["action"] == "start"
    assert all(r["pipeline_id"] == BLANK and r["run_count"] == 1 for r in records)
    actions = {r["action"] for r in records}
    assert {"start step", "step complete", "console output", "end"} <= actions


def test_type_other_than_console_output_does_not_filter(emu, admin):
    admin.run(BLANK)
    emu.advance(100)
    assert len(admin.logs(BLANK, runCount=1, type="something else")) == len(admin.logs(BLANK, runCount=1))


def test_run_count_selects_one_run_and_is_optional(emu, admin):
    admin.run(BROKEN)
    emu.advance(100)
    admin.run(BROKEN)
    emu.advance(100)
    run1 = admin.logs(BROKEN, runCount=1)
    run2 = admin.logs(BROKEN, runCount=2)
    every = admin.logs(BROKEN)
    assert {r["run_count"] for r in run1} == {1}
    assert len(every) == len(run1) + len(run2)
    assert every[0]["run_count"] == 2
    error_line = admin.logs(BROKEN, runCount=1, type="console output")[0]["api_response"]["consoleLog"]
    assert error_line.startswith("ERROR")
    assert admin.logs(BROKEN, runCount=9) == []


def test_logs_are_capped_at_1000_newest_records(emu, admin):
    admin.run(CHATTY)
    emu.advance(61)
    records = admin.logs(CHATTY, runCount=1)
    assert len(records) == 1000
    assert records[0]["action"] == "end"
    console = admin.logs(CHATTY, runCount=1, type="console output")
    assert len(console) == 1000
    assert console[0]["api_response"]["consoleLog"] == "chatty line 1500 of 1500"
    assert console[-1]["api_response"]["consoleLog"] == "chatty line 501 of 1500"


def test_lists_are_capped_at_1000():
    seed = read_seed(None)
    template_pipeline = seed["pipelines"][0]
    template_tool = seed["tools"][0]
    seed["pipelines"] = [
        {**template_pipeline, "_id": f"{n:024x}", "name": f"pipeline {n}"} for n in range(1, 1101)
    ]
    seed["tools"] = [{**template_tool, "_id": f"{n:024x}", "name": f"tool {n}"} for n in range(1, 1201)]
    seed["tasks"] = []
    seed["user_activity"] = [
        {"days_ago": 0.5, "user": "admin@example.com", "type": "pipeline", "action": "update", "target_id": "x"}
    ] * 1100
    with OpseraEmulator(seed=seed, clock="manual") as emu:
        admin = Client(emu.url, emu.token("admin"))
        assert len(admin.ok("GET", "/api/v1/pipeline/pipelines")) == 1000
        assert len(admin.ok("GET", "/api/v1/registry/tools")) == 1000
        actions = admin.ok("GET", "/api/v1/logs/user/actions")
        assert actions["count"] == len(actions["data"]) == 1000
