"""The soak's invariant checks on made-up records: each breach is found and named, a clean record passes."""

from __future__ import annotations

from datetime import datetime, timezone

from soak.invariants import Evidence, asset_events, check, tokens_in_logs
from soak.workload import Case

PIPELINE = "50a000000000000000000000"
WATCHED = "50a000060000000000000000"
T0 = 1_800_000_000.0


def _run(run_count, status, started, ended, token="admin", stops=()):
    return {
        "pipeline_id": PIPELINE, "run_count": run_count, "status": status, "active": ended is None,
        "started_by_token": token, "started_wall": started, "ended_wall": ended,
        "stops": [{"by": by, "wall": wall, "run_status": "running"} for by, wall in stops],
        "resets": [], "approvals": [],
    }


def _try(number, state, start, end):
    def at(wall):
        return datetime.fromtimestamp(wall, tz=timezone.utc)

    return {"dag_id": "soak_run_deferred", "run_id": "r1", "task_id": "run", "try_number": number, "state": state,
            "start_date": at(start), "end_date": at(end)}


def _case(action="", marked_failed_wall=None):
    case = Case(1, "deferred_success", "soak_run_deferred", PIPELINE, action, run_id="r1",
                allocated_wall=T0, released_wall=T0 + 100, dag_run_state="success")
    case.marked_failed_wall = marked_failed_wall
    return case


def _violations(case, runs, tries):
    return [(v.invariant, v.what) for v in check(Evidence([case], {"runs": runs}, tries, []), WATCHED)]


def test_a_clean_case_passes():
    runs = [_run(1, "success", T0 + 5, T0 + 20)]
    assert _violations(_case(), runs, [_try(1, "success", T0 + 2, T0 + 21)]) == []


def test_a_second_run_after_a_success_breaks_one_run_per_chain():
    runs = [_run(1, "success", T0 + 5, T0 + 20), _run(2, "success", T0 + 30, T0 + 40)]
    found = _violations(_case(), runs, [_try(1, "up_for_retry", T0 + 2, T0 + 22), _try(2, "success", T0 + 25, T0 + 41)])
    assert found == [("one run per try chain", "run 2 started after run 1 (success): the chain started 2 runs")]


def test_a_retry_after_a_failed_run_may_start_one():
    runs = [_run(1, "failed", T0 + 5, T0 + 20), _run(2, "failed", T0 + 30, T0 + 40)]
    assert _violations(_case(), runs, [_try(1, "up_for_retry", T0 + 2, T0 + 21), _try(2, "failed", T0 + 25, T0 + 41)]) == []


def test_a_stop_nobody_asked_for_and_a_task_that_lies_are_named_with_a_timeline():
    runs = [_run(1, "stopped", T0 + 5, T0 + 30, stops=[("admin", T0 + 10)])]
    evidence = Evidence([_case()], {"runs": runs}, [_try(1, "success", T0 + 2, T0 + 31)], [])
    found = check(evidence, WATCHED)
    assert sorted(v.invariant for v in found) == ["no healthy run stopped", "task state follows the run"]
    timeline = "\n".join(found[0].timeline)
    assert "pipeline run 1 started by token admin" in timeline and "run 1 stop by admin" in timeline
    assert "task try 1 ended success" in timeline


def test_marking_failed_justifies_the_stop_that_follows():
    runs = [_run(1, "stopped", T0 + 5, T0 + 30, stops=[("admin", T0 + 12)])]
    case = _case("mark_failed", marked_failed_wall=T0 + 11)
    assert _violations(case, runs, [_try(1, "failed", T0 + 2, T0 + 12)]) == []


def test_the_last_try_may_stop_the_run_it_fails_without_but_no_earlier_try_may():
    runs = [_run(1, "stopped", T0 + 5, T0 + 30, stops=[("admin", T0 + 12)])]
    assert _violations(_case(), runs, [_try(1, "failed", T0 + 2, T0 + 13)]) == []
    earlier = [_try(1, "up_for_retry", T0 + 2, T0 + 13), _try(2, "failed", T0 + 40, T0 + 41)]
    assert _violations(_case(), runs, earlier) == [("no healthy run stopped", "Airflow stopped a run (running) at 08:00:12.0")]


def test_after_a_stopped_run_one_retry_may_end_the_task_but_not_another():
    runs = [_run(1, "stopped", T0 + 5, T0 + 30, stops=[("admin", T0 + 12)])]
    case = _case("timeout")
    # try 1 was killed before it could fail the task: Airflow retries it, and try 2 fails at once, starting nothing
    ended_by_the_retry = [_try(1, "up_for_retry", T0 + 2, T0 + 13), _try(2, "failed", T0 + 40, T0 + 41)]
    assert _violations(case, runs, ended_by_the_retry) == []
    retried_again = ended_by_the_retry[:1] + [_try(2, "up_for_retry", T0 + 40, T0 + 41), _try(3, "failed", T0 + 50, T0 + 51)]
    assert _violations(case, runs, retried_again) == [
        ("task state follows the run", "tries 2, 3 started after run 1 was stopped: a stopped run fails the task without a retry")
    ]
    assert _violations(case, runs, ended_by_the_retry[:1] + [_try(2, "failed", T0 + 14, T0 + 15)]) == []


def test_a_run_going_on_unstopped_after_its_task_ended_is_left_running():
    runs = [_run(1, "success", T0 + 5, T0 + 60)]
    found = _violations(_case(), runs, [_try(1, "failed", T0 + 2, T0 + 20)])
    assert ("no run left running", "run 1 went on after the task ended, unstopped") in found


def test_runs_nobody_held_the_pipeline_for_are_found():
    stray = _run(1, "success", T0 - 50, T0 - 10)
    found = _violations(_case(), [stray], [_try(1, "failed", T0 + 2, T0 + 3)])
    assert [invariant for invariant, _ in found] == ["no run outside a task"]


def test_asset_events_once_per_finished_run():
    runs = [
        {**_run(n, "success", T0 + n * 10, T0 + n * 10 + 5, token="outside"), "pipeline_id": WATCHED} for n in (1, 2, 3)
    ]
    runs.append({**_run(4, "running", T0 + 40, None, token="outside"), "pipeline_id": WATCHED})
    assert asset_events(runs, [{"run_count": 1}, {"run_count": 2}, {"run_count": 3}], since=T0) == []
    found = asset_events(runs, [{"run_count": 1}, {"run_count": 1}, {"run_count": 9}], since=T0)
    assert [v.what for v in found] == [
        "run 1 of the watched pipeline ended success: 2 events",
        "run 2 of the watched pipeline ended success: 0 events",
        "run 3 of the watched pipeline ended success: 0 events",
        "an event for run 9, which never ran",
    ]


def test_a_token_in_a_log_file_is_found_by_its_signature_too(tmp_path):
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
    (tmp_path / "clean.log").write_text("nothing to see")
    (tmp_path / "task").mkdir()
    (tmp_path / "task" / "attempt=1.log").write_text("header: Bearer ...c2lnbmF0dXJlLW9mLXRoZS10b2tlbg")
    found = tokens_in_logs([tmp_path], {"admin": token})
    assert [v.what for v in found] == [f"token admin (its signature) appears in {tmp_path / 'task' / 'attempt=1.log'}"]
