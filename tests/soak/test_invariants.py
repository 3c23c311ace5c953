"""The soak's invariant checks on made-up records: each breach is found and named, a clean record passes."""

from __future__ import annotations

from datetime import datetime, timezone

from soak.chaos import ChaosEvent
from soak.invariants import Evidence, asset_events, check, tokens_in_logs
from soak.workload import Case, Clear, Mark

PIPELINE = "50a000000000000000000000"
WATCHED = "50a000060000000000000000"
T0 = 1_800_000_000.0


def _run(run_count, status, started, ended, token="admin", stops=(), stopped_while="running"):
    return {
        "pipeline_id": PIPELINE, "run_count": run_count, "status": status, "active": ended is None,
        "started_by_token": token, "started_wall": started, "ended_wall": ended,
        "stops": [{"by": by, "wall": wall, "run_status": stopped_while} for by, wall in stops],
        "resets": [], "approvals": [],
    }


def _try(number, state, start, end):
    def at(wall):
        return datetime.fromtimestamp(wall, tz=timezone.utc)

    return {"dag_id": "soak_run_deferred", "run_id": "r1", "task_id": "run", "try_number": number, "state": state,
            "start_date": at(start), "end_date": at(end)}


def _case(action="", marked_failed_wall=None, clears=(), mark=None):
    case = Case(1, "deferred_success", "soak_run_deferred", PIPELINE, action, run_id="r1",
                allocated_wall=T0, released_wall=T0 + 200, dag_run_state="success")
    if marked_failed_wall is not None:
        mark = Mark(marked_failed_wall, "failed")
    case.mark = mark
    case.clears = list(clears)
    return case


def _violations(case, runs, tries):
    return [(v.invariant, v.what) for v in check(Evidence([case], {"runs": runs}, tries, []), WATCHED)]


def _invariants(case, runs, tries):
    return sorted(invariant for invariant, _ in _violations(case, runs, tries))


def test_a_clean_case_passes():
    runs = [_run(1, "success", T0 + 5, T0 + 20)]
    assert _violations(_case(), runs, [_try(1, "success", T0 + 2, T0 + 21)]) == []


def test_a_second_run_after_a_success_breaks_one_run_per_chain():
    runs = [_run(1, "success", T0 + 5, T0 + 20), _run(2, "success", T0 + 30, T0 + 40)]
    found = _violations(_case(), runs, [_try(1, "up_for_retry", T0 + 2, T0 + 22), _try(2, "success", T0 + 25, T0 + 41)])
    assert found == [
        ("one run per try chain", "run 2 started after run 1 (success) in the task's first try chain: it started 2 runs")
    ]


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
    assert _violations(_case(), runs, earlier) == [("no healthy run stopped", "Airflow stopped run 1 (running) at 08:00:12.0")]


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


def test_runs_nobody_held_the_pipeline_for_are_found_but_people_run_their_pipelines_when_they_like():
    stray = _run(1, "success", T0 - 50, T0 - 10)
    found = _violations(_case(), [stray], [_try(1, "failed", T0 + 2, T0 + 3)])
    assert [invariant for invariant, _ in found] == ["no run outside a task"]
    persons = _run(1, "success", T0 - 50, T0 - 10, token="person-1")
    assert _violations(_case(), [persons], [_try(1, "failed", T0 + 2, T0 + 3)]) == []


# ----- people share the pipeline


def test_a_persons_runs_before_and_during_the_dag_run_are_not_the_tasks():
    runs = [
        _run(1, "success", T0 - 5, T0 + 8, token="person-1"),  # in the way when the task asks: waited out (S2)
        _run(2, "success", T0 + 9, T0 + 20),
        _run(3, "failed", T0 + 25, T0 + 31, token="person-2"),  # after the task's run, while the DAG run holds it
    ]
    assert _violations(_case(), runs, [_try(1, "success", T0 + 2, T0 + 21)]) == []


def test_airflow_stopping_a_persons_run_is_found_with_the_timeline_of_the_dag_run_then():
    """P3: run 1 ended, a person started run 2, then the task was marked failed: the stop hit the person's run."""
    runs = [_run(1, "success", T0 + 5, T0 + 20),
            _run(2, "stopped", T0 + 21, T0 + 40, token="person-1", stops=[("admin", T0 + 23)])]
    case = _case("mark_failed", marked_failed_wall=T0 + 22)
    evidence = Evidence([case], {"runs": runs}, [_try(1, "failed", T0 + 2, T0 + 23)], [])
    [found] = check(evidence, WATCHED)
    assert (found.invariant, found.what) == (
        "no run stopped that no task owned",
        f"Airflow's stop at 08:00:23.0 hit run 2 of {PIPELINE}, which token person-1 started",
    )
    assert found.case is case and "pipeline run 2 started by token person-1" in "\n".join(found.timeline)


def test_airflow_stopping_the_run_a_sensor_watches_is_found():
    case = Case(1, "sensor_deferred", "soak_sensor_deferred", PIPELINE, "outside", run_id="r1",
                allocated_wall=T0, released_wall=T0 + 200, dag_run_state="failed", external_run_count=1)
    runs = [_run(1, "stopped", T0 + 5, T0 + 30, token="outside", stops=[("admin", T0 + 12)])]
    found = _violations(case, runs, [{**_try(1, "failed", T0 + 2, T0 + 31), "dag_id": "soak_sensor_deferred"}])
    assert found == [("no run stopped that no task owned",
                      f"Airflow's stop at 08:00:12.0 hit run 1 of {PIPELINE}, which token outside started")]


def test_a_stop_sent_after_the_run_ended_is_found_unless_the_run_ended_as_it_was_checked():
    late = [_run(1, "failed", T0 + 5, T0 + 20, stops=[("admin", T0 + 30)], stopped_while="failed")]
    found = _violations(_case(), late, [_try(1, "failed", T0 + 2, T0 + 31)])
    assert found == [("a stop only while its run is the latest and in progress",
                      "Airflow's stop at 08:00:30.0 came when the pipeline's latest run, 1, had ended failed at 08:00:20.0")]
    racing = [_run(1, "failed", T0 + 5, T0 + 20, stops=[("admin", T0 + 21)], stopped_while="failed")]
    assert _violations(_case(), racing, [_try(1, "failed", T0 + 2, T0 + 22)]) == []


# ----- Clears


def test_a_clear_after_success_that_deploys_nothing_is_found():
    """C1: the cleared task went green at once, on the old run."""
    clear = Clear(T0 + 30, "success", try_number=1, clear_number=0)
    runs = [_run(1, "success", T0 + 5, T0 + 20)]
    tries = [_try(1, "success", T0 + 2, T0 + 21), _try(2, "success", T0 + 35, T0 + 36)]
    assert _violations(_case(clears=[clear]), runs, tries) == [
        ("every Clear of an ended task yields one new run", "the Clear of the success task at 08:00:30.0 started 0 new runs"),
        ("task state follows the run", "no run started, yet the task is success"),
    ]
    runs.append(_run(2, "success", T0 + 37, T0 + 50))
    tries[1] = _try(2, "success", T0 + 35, T0 + 51)
    assert _violations(_case(clears=[clear]), runs, tries) == []


def test_a_clear_after_failure_may_retry_its_new_run_but_not_start_two():
    clear = Clear(T0 + 30, "failed", try_number=1, clear_number=0)
    runs = [_run(1, "failed", T0 + 5, T0 + 20), _run(2, "failed", T0 + 37, T0 + 45), _run(3, "success", T0 + 55, T0 + 65)]
    tries = [_try(1, "failed", T0 + 2, T0 + 21), _try(2, "up_for_retry", T0 + 35, T0 + 46),
             _try(3, "success", T0 + 52, T0 + 66)]
    assert _violations(_case(clears=[clear]), runs, tries) == []
    runs[1] = _run(2, "success", T0 + 37, T0 + 45)
    assert _invariants(_case(clears=[clear]), runs, tries) == [
        "every Clear of an ended task yields one new run", "one run per try chain"
    ]


def test_the_state_a_task_was_cleared_in_follows_its_run_of_then():
    clear = Clear(T0 + 30, "success", try_number=1, clear_number=0)
    runs = [_run(1, "failed", T0 + 5, T0 + 20), _run(2, "success", T0 + 37, T0 + 50)]
    tries = [_try(1, "success", T0 + 2, T0 + 21), _try(2, "success", T0 + 35, T0 + 51)]
    assert _violations(_case(clears=[clear]), runs, tries) == [
        ("task state follows the run", "run 1 ended failed, the task is success when cleared at 08:00:30.0")
    ]


def test_a_clear_while_the_run_goes_on_stops_it_and_starts_one_new_run():
    """C3/C4: the old try's on_kill (or the new try) stops run 1; the new try starts run 2 once run 1 ended."""
    clear = Clear(T0 + 10, "deferred", try_number=1, clear_number=0)
    tries = [_try(1, "up_for_retry", T0 + 2, T0 + 11), _try(2, "success", T0 + 15, T0 + 60)]
    runs = [_run(1, "stopped", T0 + 5, T0 + 25, stops=[("admin", T0 + 11)]), _run(2, "success", T0 + 26, T0 + 59)]
    assert _violations(_case(clears=[clear]), runs, tries) == []


def test_a_clear_while_the_run_goes_on_that_leaves_it_running_is_found():
    clear = Clear(T0 + 10, "running", try_number=1, clear_number=0)
    tries = [_try(1, "up_for_retry", T0 + 2, T0 + 11), _try(2, "success", T0 + 15, T0 + 60)]
    runs = [_run(1, "success", T0 + 5, T0 + 40), _run(2, "success", T0 + 41, T0 + 59)]
    assert _violations(_case(clears=[clear]), runs, tries) == [
        ("a Clear while the run goes on replaces it",
         "run 1 went on after the Clear of the running task at 08:00:10.0, unstopped (it ended success at 08:00:40.0)")
    ]


def test_a_clear_whose_new_try_dies_before_it_could_stop_the_run_leaves_the_stop_to_its_retry():
    """The scheduler's kill took the new try 0.7 s after it began; the run ended before Airflow retried it."""
    clear = Clear(T0 + 10, "deferred", try_number=1, clear_number=0)
    tries = [_try(1, "failed", T0 + 2, T0 + 10), _try(2, "failed", T0 + 10.3, T0 + 100),
             _try(3, "success", T0 + 101, T0 + 120)]
    runs = [_run(3, "success", T0 + 5, T0 + 14), _run(8, "success", T0 + 102, T0 + 119)]
    struck = [ChaosEvent(T0 + 11, "scheduler", "kill")]
    assert check(Evidence([_case(clears=[clear])], {"runs": runs}, tries, struck), WATCHED) == []
    assert _violations(_case(clears=[clear]), runs, tries) == [
        ("a Clear while the run goes on replaces it",
         "run 3 went on after the Clear of the deferred task at 08:00:10.0, unstopped (it ended success at 08:00:14.0)")
    ]


def test_a_clear_while_deferred_whose_new_try_fails_on_the_stopped_run_is_found():
    """The new try re-attached to the run the Clear stopped and failed "was stopped in Opsera", starting none."""
    clear = Clear(T0 + 10, "deferred", try_number=1, clear_number=0)
    tries = [_try(1, "up_for_retry", T0 + 2, T0 + 11), _try(2, "failed", T0 + 15, T0 + 26)]
    runs = [_run(1, "stopped", T0 + 5, T0 + 25, stops=[("admin", T0 + 11)])]
    assert _violations(_case(clears=[clear]), runs, tries) == [
        ("a Clear while the run goes on replaces it", "the Clear of the deferred task at 08:00:10.0 started 0 new runs")
    ]


def test_a_run_the_cleared_try_started_before_airflow_ended_it_is_the_old_chains():
    """The cleared try's request lands just after the Clear: the new try stops that run and starts its own."""
    clear = Clear(T0 + 10, "running", try_number=1, clear_number=0)
    tries = [_try(1, "up_for_retry", T0 + 2, T0 + 13), _try(2, "success", T0 + 20, T0 + 60)]
    runs = [_run(1, "success", T0 - 5, T0 + 11, token="person-1"),
            _run(2, "stopped", T0 + 12, T0 + 30, stops=[("admin", T0 + 21)]),
            _run(3, "success", T0 + 31, T0 + 59)]
    assert _violations(_case(clears=[clear]), runs, tries) == []


# ----- marks


def test_a_task_marked_success_leaves_its_run_to_finish():
    mark = Mark(T0 + 10, "success")
    tries = [_try(1, "success", T0 + 2, T0 + 11)]
    assert _violations(_case("mark_success", mark=mark), [_run(1, "success", T0 + 5, T0 + 50)], tries) == []
    stopped = [_run(1, "stopped", T0 + 5, T0 + 25, stops=[("admin", T0 + 12)])]
    assert _violations(_case("mark_success", mark=mark), stopped, tries) == [
        ("no healthy run stopped", "the task was marked success at 08:00:10.0, so its run is left to finish; "
         "Airflow stopped run 1 at 08:00:12.0")
    ]


def test_a_clear_after_a_mark_success_replaces_the_run_the_mark_left_going():
    """K3 then C1: the run the person left to finish still goes on when the task is cleared: as in C3, the new try
    stops it and starts its own once it ended."""
    mark, clear = Mark(T0 + 10, "success"), Clear(T0 + 20, "success", try_number=1, clear_number=0)
    tries = [_try(1, "success", T0 + 2, T0 + 11), _try(2, "success", T0 + 21, T0 + 51)]
    replaced = [_run(1, "stopped", T0 + 5, T0 + 30, stops=[("admin", T0 + 22)]), _run(2, "success", T0 + 31, T0 + 50)]
    assert _violations(_case("mark_success", mark=mark, clears=[clear]), replaced, tries) == []
    waited_out = [_run(1, "success", T0 + 5, T0 + 45), _run(2, "success", T0 + 46, T0 + 50)]
    assert _violations(_case("mark_success", mark=mark, clears=[clear]), waited_out, tries) == [
        ("a Clear while the run goes on replaces it",
         "run 1 went on after the Clear of the success task at 08:00:20.0, unstopped (it ended success at 08:00:45.0)")
    ]


# ----- the asset watcher, the logs


def test_every_finished_run_has_its_asset_event_again_only_across_a_struck_triggerer():
    runs = [
        {**_run(n, "success", T0 + n * 10, T0 + n * 10 + 5, token="outside"), "pipeline_id": WATCHED} for n in (1, 2, 3)
    ]
    runs.append({**_run(4, "running", T0 + 40, None, token="outside"), "pipeline_id": WATCHED})

    def event(run_count, wall):
        return {"run_count": run_count, "received_wall": wall}

    delivered = [event(1, T0 + 16), event(2, T0 + 26), event(3, T0 + 36)]
    assert asset_events(runs, delivered, since=T0, chaos=[]) == []
    killed = [ChaosEvent(T0 + 30, "triggerer-1", "kill")]
    assert asset_events(runs, [*delivered, event(2, T0 + 60)], since=T0, chaos=killed) == []
    found = asset_events(runs, [event(1, T0 + 16), event(1, T0 + 50), event(9, T0 + 60)], since=T0, chaos=[])
    assert [v.what for v in found] == [
        "run 1 of the watched pipeline ended success: 2 events, the first at 08:00:16.0, and no triggerer was "
        "struck within 40 s",
        "run 2 of the watched pipeline ended success: no event",
        "run 3 of the watched pipeline ended success: no event",
        "an event for run 9, which never ran",
    ]


def test_a_token_in_a_log_file_is_found_by_its_signature_too(tmp_path):
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
    (tmp_path / "clean.log").write_text("nothing to see")
    (tmp_path / "task").mkdir()
    (tmp_path / "task" / "attempt=1.log").write_text("header: Bearer ...c2lnbmF0dXJlLW9mLXRoZS10b2tlbg")
    found = tokens_in_logs([tmp_path], {"admin": token})
    assert [v.what for v in found] == [f"token admin (its signature) appears in {tmp_path / 'task' / 'attempt=1.log'}"]
