"""Tasks: list, summary, status as a plain string, logs, and runs started for tests."""

from __future__ import annotations

import requests

from airflow_provider_opsera.emulator import OpseraEmulator
from airflow_provider_opsera.emulator.seed import read_seed

from .support import CERT_ROTATION, NIGHTLY_SYNC, Client


def _status(client, task_id):
    response = client.post("/api/v1/task/status", {"taskId": task_id})
    assert response.status_code == 200
    return response.json()


def test_list_and_summary(admin):
    tasks = admin.ok("GET", "/api/v1/task/tasks")
    assert {task["_id"] for task in tasks} == {NIGHTLY_SYNC, CERT_ROTATION}
    summary = admin.ok("POST", "/api/v1/task/summary", {"taskId": NIGHTLY_SYNC})
    assert summary["name"] == "Nightly Sync"
    assert summary["run_count"] == 0
    assert [step["name"] for step in summary["steps"]] == ["fetch", "push"]


def test_status_is_a_plain_string_through_a_run(emu, admin):
    assert _status(admin, NIGHTLY_SYNC) == "created"
    started = requests.post(f"{emu.url}/_emulator/tasks/{NIGHTLY_SYNC}/run", timeout=5).json()
    assert started["runCount"] == 1
    assert _status(admin, NIGHTLY_SYNC) == "running"
    emu.advance(59)
    assert _status(admin, NIGHTLY_SYNC) == "running"
    emu.advance(1)
    assert _status(admin, NIGHTLY_SYNC) == "success"
    assert admin.ok("POST", "/api/v1/task/summary", {"taskId": NIGHTLY_SYNC})["run_count"] == 1


def test_failing_task_and_its_logs(emu, admin):
    emu.start_task_run(CERT_ROTATION)
    emu.advance(20)
    assert _status(admin, CERT_ROTATION) == "failed"
    logs = admin.ok("GET", "/api/v1/task/logs", params={"taskId": CERT_ROTATION, "runCount": 1})
    assert logs[0]["task_id"] == CERT_ROTATION
    assert logs[0]["status"] == "failed"
    console = [r["api_response"]["consoleLog"] for r in logs if r["action"] == "console output"]
    assert console[0].startswith("ERROR")
    assert admin.get("/api/v1/task/logs").status_code == 400


def test_second_task_run_is_refused_while_one_runs(emu):
    emu.start_task_run(NIGHTLY_SYNC)
    response = requests.post(f"{emu.url}/_emulator/tasks/{NIGHTLY_SYNC}/run", timeout=5)
    assert response.status_code == 409


def test_seeded_task_can_start_running_at_load():
    seed = read_seed(None)
    seed["tasks"][0]["start_running"] = True
    with OpseraEmulator(seed=seed, clock="manual") as emu:
        admin = Client(emu.url, emu.token("admin"))
        assert _status(admin, NIGHTLY_SYNC) == "running"
        emu.advance(60)
        assert _status(admin, NIGHTLY_SYNC) == "success"
        assert _status(admin, CERT_ROTATION) == "created"
