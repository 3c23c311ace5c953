"""The run journal (``GET /_emulator/runs``): who started, stopped, reset and approved each run; faults injected."""

from __future__ import annotations

import time

import pytest
import requests

from airflow_provider_opsera.emulator import OpseraEmulator

from .support import APPROVAL, BLANK, LONG_SOAK, Client, runs_of


def _journal(emu) -> dict:
    answer = requests.get(f"{emu.url}/_emulator/runs", timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_run_names_the_token_that_started_it_and_its_outcome(emu, admin, client_for):
    before = time.time()
    admin.run(BLANK)
    emu.advance(95)
    client_for("pipeline").run(BLANK)
    (first, second) = runs_of(_journal(emu), BLANK)
    assert (first["run_count"], first["status"], first["active"]) == (1, "success", False)
    assert first["started_by_token"] == "admin"
    assert first["ended_at"] - first["started_at"] == 90
    assert first["started_wall"] >= before
    # a manual clock has no wall time for emulated moments
    assert first["ended_wall"] is None
    assert (second["run_count"], second["status"], second["active"]) == (2, "running", True)
    assert second["started_by_token"] == "pipeline"
    assert second["stops"] == [] and second["resets"] == [] and second["approvals"] == []


def test_stops_resets_and_approvals_name_who_and_the_state_they_found(emu, admin, client_for):
    admin.run(LONG_SOAK)
    client_for("pipeline").ok("POST", "/api/v1/pipeline/stop", {"pipelineId": BLANK})  # no run yet: nothing noted
    admin.ok("POST", "/api/v1/pipeline/stop", {"pipelineId": LONG_SOAK})
    emu.advance(700)
    admin.ok("POST", "/api/v1/pipeline/reset", {"pipelineId": LONG_SOAK})
    admin.run(APPROVAL)
    emu.advance(25)
    emu.approve(APPROVAL)
    journal = _journal(emu)
    (soak,) = runs_of(journal, LONG_SOAK)
    assert soak["status"] == "stopped" and soak["stop_requested"]
    assert [(s["by"], s["run_status"]) for s in soak["stops"]] == [("admin", "running")]
    assert [(r["by"], r["run_status"]) for r in soak["resets"]] == [("admin", "stopped")]
    assert runs_of(journal, BLANK) == []
    (approval,) = runs_of(journal, APPROVAL)
    assert [a["by"] for a in approval["approvals"]] == ["emulator-admin"]
    assert emu.run_journal()["runs"] == journal["runs"]


def test_refused_run_requests_are_listed_and_start_nothing(emu, admin):
    admin.run(BLANK)
    refused = admin.run(BLANK)
    assert refused["status"] == "failed"
    journal = _journal(emu)
    assert len(runs_of(journal, BLANK)) == 1
    assert [(r["pipeline_id"], r["token"]) for r in journal["refused_run_requests"]] == [(BLANK, "admin")]
    assert "currently running" in journal["refused_run_requests"][0]["message"]


def test_a_dropped_answer_still_journals_the_run_it_started(emu, admin):
    emu.set_fault("POST /api/v1/pipeline/run", "drop", count=1)
    with pytest.raises(requests.ConnectionError):
        admin.run(BLANK)
    (run,) = runs_of(_journal(emu), BLANK)
    assert run["started_by_token"] == "admin"
    assert _journal(emu)["faults_injected"] == {"drop": 1}


def test_faults_injected_are_counted_by_kind_and_route(emu, admin):
    emu.set_fault("POST /api/v1/pipeline/status", "status", status=503, count=2)
    # latency first: the first rule of another kind decides the answer and ends the matching
    emu.set_fault("POST /api/v1/pipeline/summary", "latency", seconds=0.01, count=1)
    emu.set_fault("POST /api/v1/pipeline/summary", "retry_after", count=1)
    for _ in range(3):
        admin.post("/api/v1/pipeline/status", {"pipelineId": BLANK})
    admin.post("/api/v1/pipeline/summary", {"pipelineId": BLANK})
    journal = _journal(emu)
    assert journal["faults_injected"] == {"status": 2, "retry_after": 1, "latency": 1}
    assert journal["faults_by_route"] == {
        "POST /api/v1/pipeline/status status": 2,
        "POST /api/v1/pipeline/summary retry_after": 1,
        "POST /api/v1/pipeline/summary latency": 1,
    }


def test_reset_clears_the_journal(emu, admin):
    emu.set_fault("POST /api/v1/pipeline/run", "latency", seconds=0.01, count=1)
    admin.run(BLANK)
    requests.post(f"{emu.url}/_emulator/reset", timeout=5).raise_for_status()
    assert _journal(emu) == {"runs": [], "refused_run_requests": [], "faults_injected": {}, "faults_by_route": {}}


def test_on_a_scaled_clock_runs_carry_wall_times():
    with OpseraEmulator(time_scale=600) as emu:
        client = Client(emu.url, emu.token("admin"))
        started = time.time()
        client.run(BLANK)
        (run,) = runs_of(emu.run_journal(), BLANK)
        while run["active"]:  # 90 emulated seconds: 0.15 s of real time
            assert time.time() - started < 10
            time.sleep(0.01)
            (run,) = runs_of(emu.run_journal(), BLANK)
        client.session.close()
    assert started <= run["started_wall"] <= run["ended_wall"] <= time.time()
    assert run["ended_wall"] - run["started_wall"] == pytest.approx(90 / 600, abs=0.05)
