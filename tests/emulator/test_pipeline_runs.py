"""Pipeline runs on the manual clock: success, failure, approval, soft stop, reset."""

from __future__ import annotations

from .support import APPROVAL, BLANK, BROKEN, LONG_SOAK


def test_run_goes_through_its_steps_to_success(emu, admin):
    started = admin.run(BLANK)
    assert started["status"] == "executed"
    assert started["runCount"] == 1
    assert BLANK in started["message"]

    assert admin.status(BLANK, 1)["status"] == "running"
    emu.advance(19)
    assert "('checkout')" in admin.status(BLANK, 1)["message"]
    emu.advance(2)
    assert "('build')" in admin.status(BLANK, 1)["message"]
    emu.advance(70)
    done = admin.status(BLANK, 1)
    assert done == {"status": "success", "message": "Pipeline: Blank Template's Run 1 was successful."}

    workflow = admin.summary(BLANK)["workflow"]
    assert workflow["run_count"] == 1
    assert workflow["last_step"]["status"] == "success"
    assert workflow["last_step"]["success"]["step_id"] == workflow["plan"][-1]["_id"]
    assert workflow["last_step"]["running"]["paused"] is False


def test_run_counts_increase_and_old_runs_keep_their_status(emu, admin):
    assert admin.run(BLANK)["runCount"] == 1
    emu.advance(100)
    assert admin.run(BLANK)["runCount"] == 2
    assert admin.status(BLANK, 1)["status"] == "success"
    assert admin.status(BLANK, 2)["status"] == "running"
    assert admin.status(BLANK)["message"].startswith("Pipeline: Blank Template's Run 2")
    assert admin.summary(BLANK)["workflow"]["run_count"] == 2


def test_second_run_is_refused_while_one_is_running(emu, admin):
    admin.run(BLANK)
    refused = admin.run(BLANK)
    assert refused["status"] == "failed"
    assert "currently running" in refused["message"]
    assert "runCount" not in refused
    assert admin.summary(BLANK)["workflow"]["run_count"] == 1


def test_failing_step_fails_the_run_and_names_the_step(emu, admin):
    admin.run(BROKEN)
    emu.advance(44)
    assert admin.status(BROKEN, 1)["status"] == "running"
    emu.advance(1)
    failed = admin.status(BROKEN, 1)
    assert failed["status"] == "failed"
    assert "unit tests" in failed["message"]

    workflow = admin.summary(BROKEN)["workflow"]
    assert workflow["last_step"]["status"] == "failed"
    assert workflow["last_step"]["failed"]["step_id"] == workflow["plan"][1]["_id"]
    # The deploy step after the failure never starts.
    assert not [record for record in admin.logs(BROKEN) if record["step_name"] == "deploy"]


def test_approval_gate_pauses_until_approved(emu, admin):
    admin.run(APPROVAL)
    emu.advance(20)
    assert admin.status(APPROVAL, 1)["status"] == "paused"
    emu.advance(10_000)  # a paused run waits for a person, however long
    assert admin.status(APPROVAL, 1)["status"] == "paused"
    running = admin.summary(APPROVAL)["workflow"]["last_step"]["running"]
    assert running["paused"] is True
    assert running["status"] == "paused"

    refused = admin.run(APPROVAL)
    assert refused == {
        "status": "failed",
        "message": "Pipeline Release With Approval is currently in a paused state. "
        "Will not start another job until this pending status is resolved.",
    }

    emu.approve(APPROVAL)
    assert admin.status(APPROVAL, 1)["status"] == "running"
    emu.advance(20)
    assert admin.status(APPROVAL, 1)["status"] == "success"


def test_stop_is_soft_the_current_step_finishes_first(emu, admin):
    admin.run(LONG_SOAK)
    emu.advance(100)
    assert admin.ok("POST", "/api/v1/pipeline/stop", {"pipelineId": LONG_SOAK}) == {
        "status": "success",
        "message": "The pipeline has been stopped.",
    }
    assert admin.status(LONG_SOAK, 1)["status"] == "running"
    emu.advance(499)
    assert admin.status(LONG_SOAK, 1)["status"] == "running"
    emu.advance(2)
    assert admin.status(LONG_SOAK, 1)["status"] == "stopped"

    records = admin.logs(LONG_SOAK, runCount=1)
    steps_completed = [r["step_name"] for r in records if r["action"] == "step complete"]
    assert steps_completed == ["soak 1"]
    assert not [r for r in records if r["step_name"] == "soak 2"]
    assert admin.summary(LONG_SOAK)["workflow"]["last_step"]["status"] == "stopped"


def test_stop_while_paused_ends_the_run_at_once(emu, admin):
    admin.run(APPROVAL)
    emu.advance(25)
    admin.ok("POST", "/api/v1/pipeline/stop", {"pipelineId": APPROVAL})
    assert admin.status(APPROVAL, 1)["status"] == "stopped"


def test_reset_clears_the_current_run(emu, admin):
    admin.run(LONG_SOAK)
    emu.advance(10)
    assert admin.ok("POST", "/api/v1/pipeline/reset", {"pipelineId": LONG_SOAK}) == {
        "status": "success",
        "message": "The pipeline run status has been reset.",
    }
    assert admin.status(LONG_SOAK)["status"] == "created"
    assert admin.summary(LONG_SOAK)["workflow"]["last_step"]["status"] == "created"
    # The run that was cleared ended; it does not finish later.
    emu.advance(5000)
    assert admin.status(LONG_SOAK, 1)["status"] == "stopped"
    assert admin.run(LONG_SOAK)["runCount"] == 2


def test_status_of_unknown_run_is_404(admin):
    response = admin.post("/api/v1/pipeline/status", {"pipelineId": BLANK, "runCount": 7})
    assert response.status_code == 404
    assert response.json()["status"] == "failed"


def test_summary_has_the_plan(admin):
    pipeline = admin.summary(BLANK)
    assert pipeline["_id"] == BLANK
    assert pipeline["name"] == "Blank Template"
    assert pipeline["owner"] == "a0a0a0a0a0a0a0a0a0a0a0a0"
    plan = pipeline["workflow"]["plan"]
    assert [step["name"] for step in plan] == ["checkout", "build", "deploy"]
    assert all(len(step["_id"]) == 24 and step["active"] for step in plan)
    assert plan[1]["tool"]["tool_identifier"] == "jenkins"
    assert pipeline["workflow"]["last_step"]["status"] == "created"


def test_list_pipelines(emu, admin):
    admin.run(BLANK)
    pipelines = admin.ok("GET", "/api/v1/pipeline/pipelines")
    by_id = {pipeline["_id"]: pipeline for pipeline in pipelines}
    assert set(by_id) >= {BLANK, BROKEN, APPROVAL, LONG_SOAK, "5fd56d90979ee048ee660628"}
    assert by_id[BLANK]["workflow"]["last_step"]["status"] == "running"


def test_user_activity_records_every_change(emu, admin):
    admin.run(BLANK)
    admin.post("/api/v1/pipeline/stop", {"pipelineId": BLANK})
    admin.post("/api/v1/pipeline/reset", {"pipelineId": BLANK})
    actions = admin.ok("GET", "/api/v1/logs/user/actions", params={"type": "pipeline"})["data"]
    recent = [(a["action"], a["target_id"]) for a in actions[:3]]
    assert recent == [("reset", BLANK), ("stop", BLANK), ("run", BLANK)]
    assert actions[0]["user_email"] == "admin@example.com"
    assert set(actions[0]) == {
        "_id", "user_id", "user_email", "type", "action", "target_id", "account", "createdAt", "updatedAt", "__v",
    }
