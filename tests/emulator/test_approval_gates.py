"""Approval gates in the emulator: the actions endpoint (approve, reject, status), outside decisions, the journal."""

from __future__ import annotations

import pytest
import requests

from .support import ADMIN_ID, APPROVAL, BLANK, POWER_ID, runs_of

ACTIONS = "/api/v2/actions"


def action(name: str, *targets: str, **extra) -> dict:
    return {"action": name, "type": "pipeline", "version": 1, "target": list(targets or [APPROVAL]), **extra}


@pytest.fixture
def waiting(emu, admin):
    """Run 1 of "Release With Approval" waiting at its gate (build takes 20 s)."""
    admin.run(APPROVAL)
    emu.advance(25)
    assert admin.status(APPROVAL, 1)["status"] == "paused"
    return emu


def test_status_says_whether_and_where_a_pipeline_waits(waiting, admin):
    answer = admin.ok("POST", ACTIONS, action("status", APPROVAL, BLANK))
    assert answer["status"] == "success"
    paused, idle = answer["data"]
    assert (paused["pipelineId"], paused["runCount"], paused["status"]) == (APPROVAL, 1, "paused")
    assert paused["paused"] is True
    assert paused["stepName"] == "approval" and len(paused["stepId"]) == 24
    assert (idle["pipelineId"], idle["runCount"], idle["paused"], idle["stepName"]) == (BLANK, 0, False, "")


def test_approve_lets_the_run_go_on_and_the_journal_names_the_token(waiting, admin):
    answer = admin.ok("POST", ACTIONS, action("approve"))
    assert answer["status"] == "success" and answer["results"][0]["runCount"] == 1
    assert answer["message"] == "Run 1 approved at step 'approval'"
    assert admin.status(APPROVAL, 1)["status"] == "running"
    waiting.advance(25)
    assert admin.status(APPROVAL, 1)["status"] == "success"
    (run,) = runs_of(waiting.run_journal(), APPROVAL)
    assert [(a["by"], a["via"], a["step"]) for a in run["approvals"]] == [("admin", "api", "approval")]
    assert run["rejections"] == []
    approved = [r for r in admin.logs(APPROVAL, runCount=1) if r["action"] == "approved"]
    assert len(approved) == 1 and approved[0]["step_name"] == "approval"
    assert approved[0]["user_id"] == ADMIN_ID  # the token's owner decided


def test_reject_ends_the_run_rejected_with_the_reason(waiting, admin):
    answer = admin.ok("POST", ACTIONS, action("reject", message="Freeze week"))
    assert answer["message"] == "Run 1 rejected at step 'approval'"
    status = admin.status(APPROVAL, 1)
    assert status["status"] == "rejected"
    assert status["message"] == "Pipeline: Release With Approval's Run 1 was rejected at step 'approval'."
    summary = admin.summary(APPROVAL)["workflow"]["last_step"]
    assert summary["status"] == "rejected" and summary["running"]["paused"] is False
    (rejected,) = [r for r in admin.logs(APPROVAL, runCount=1) if r["action"] == "rejected"]
    assert rejected["message"] == "Step 'approval' rejected: Freeze week"
    (run,) = runs_of(waiting.run_journal(), APPROVAL)
    assert [(r["by"], r["via"], r["message"]) for r in run["rejections"]] == [("admin", "api", "Freeze week")]
    assert admin.run(APPROVAL)["runCount"] == 2  # a rejected run has ended: the next one starts


def test_a_decision_without_a_waiting_gate_is_refused_and_changes_nothing(emu, admin):
    admin.run(APPROVAL)
    refused = admin.post(ACTIONS, action("approve"))
    assert refused.status_code == 409
    assert refused.json()["message"] == "Pipeline Release With Approval is not waiting for approval (run 1 is running)"
    never_ran = admin.post(ACTIONS, action("approve", BLANK))
    assert never_ran.status_code == 409 and "(it has never run)" in never_ran.json()["message"]
    emu.advance(25)
    both = admin.post(ACTIONS, action("approve", APPROVAL, BLANK))  # all or none
    assert both.status_code == 409
    assert admin.status(APPROVAL, 1)["status"] == "paused"
    assert runs_of(emu.run_journal(), APPROVAL)[0]["approvals"] == []


@pytest.mark.parametrize(
    "body, expected",
    [
        (action("run"), "action must be one of approve, reject, status, got 'run'"),
        (action("approve", type="task"), "type must be 'pipeline', got 'task'"),
        (action("approve", version=2), "version must be 1, got 2"),
        ({**action("approve"), "target": []}, "target must be a non-empty list of pipeline ids"),
        ({**action("approve"), "target": APPROVAL}, "target must be a non-empty list of pipeline ids"),
        (action("approve", "nope"), "target: 'nope' is not a 24 character hexadecimal id"),
        (action("reject"), "reject needs a non-empty message"),
        (action("reject", message="  "), "reject needs a non-empty message"),
    ],
)
def test_a_malformed_action_is_a_400_naming_the_fault(waiting, admin, body, expected):
    answer = admin.post(ACTIONS, body)
    assert answer.status_code == 400 and answer.json()["message"] == expected
    assert admin.status(APPROVAL, 1)["status"] == "paused"


def test_scopes_and_item_access_are_checked_per_action(waiting, client_for):
    readonly = client_for("power-readonly")
    assert readonly.ok("POST", ACTIONS, action("status"))["data"][0]["paused"] is True
    refused = readonly.post(ACTIONS, action("approve"))
    assert refused.status_code == 403 and set(refused.json()["accepted_scopes"]) == {"api", "pipeline"}
    registry = client_for("registry")  # no scope any action accepts: refused before the body is read
    assert registry.post(ACTIONS, {"not": "an action"}).status_code == 403
    dev = client_for("pipeline")  # the dev user is listed on Blank Template only
    assert dev.post(ACTIONS, action("approve")).status_code == 403
    assert dev.ok("POST", ACTIONS, action("status", BLANK))["data"][0]["pipelineId"] == BLANK
    assert waiting.request_count("POST", ACTIONS) == 5


def test_a_gate_decided_from_outside_names_who_in_the_journal(waiting, admin):
    url = f"{waiting.url}/_emulator/pipelines/{APPROVAL}"
    assert requests.post(f"{url}/reject", json={"by": "grace@example.com"}, timeout=5).status_code == 400
    answer = requests.post(f"{url}/reject", json={"by": "grace@example.com", "message": "Not today"}, timeout=5)
    assert answer.status_code == 200 and answer.json()["runCount"] == 1
    assert requests.post(f"{url}/approve", json={}, timeout=5).status_code == 409  # it ended
    admin.run(APPROVAL)
    waiting.advance(25)
    assert waiting.approve(APPROVAL, by="ada@example.com")["step"] == "approval"
    first, second = runs_of(waiting.run_journal(), APPROVAL)
    assert [(r["by"], r["via"], r["message"], r["step"]) for r in first["rejections"]] == [
        ("grace@example.com", "outside", "Not today", "approval")
    ]
    assert [(a["by"], a["via"]) for a in second["approvals"]] == [("ada@example.com", "outside")]
    assert waiting.request_count("POST", ACTIONS) == 0
    # in Opsera's own activity log, the pipeline's owner decided
    (rejected,) = [r for r in admin.logs(APPROVAL, runCount=1) if r["action"] == "rejected"]
    assert rejected["user_id"] == POWER_ID


def test_the_harness_rejects_too_and_refuses_an_empty_reason(waiting):
    from airflow_provider_opsera.emulator.errors import ApiError

    with pytest.raises(ApiError, match="non-empty message"):
        waiting.reject(APPROVAL, "")
    assert waiting.reject(APPROVAL, "Freeze week")["runCount"] == 1
    (run,) = runs_of(waiting.run_journal(), APPROVAL)
    assert [(r["by"], r["via"]) for r in run["rejections"]] == [("emulator-admin", "outside")]
