"""The run lifecycle's decisions, one test per row of the README's table "How a pipeline task behaves".

Each test names its row (S1, R3, C1...). The operator, the trigger and the resume methods only gather
the facts these functions take; tests/unit/test_pipeline_lifecycle.py and the emulator and real-Airflow
tiers show them carried out.
"""

from __future__ import annotations

import pytest

from airflow_provider_opsera.client.status import RunOutcome
from airflow_provider_opsera.waiting.lifecycle import (
    STATE_UNKNOWN,
    TIMED_OUT,
    Begin,
    Chain,
    Ending,
    RunNote,
    how_to_begin,
    how_to_settle,
    may_stop,
    state_in_answer,
)

CHAIN = Chain(max_tries=2, clear_number=0)
CLEARED_CHAIN = Chain(max_tries=3, clear_number=1)  # a Clear: try number + retries, and one more clear
CLEARED_WHILE_RUNNING = Chain(max_tries=2, clear_number=1)  # a Clear of a running try keeps max_tries

RUNNING, PAUSED, SUCCEEDED, FAILED, STOPPED, UNKNOWN = (
    RunOutcome.IN_PROGRESS,
    RunOutcome.PAUSED,
    RunOutcome.SUCCEEDED,
    RunOutcome.FAILED,
    RunOutcome.STOPPED,
    RunOutcome.UNKNOWN,
)


def begin(note, *, chain=CHAIN, latest=3, outcomes=None, has_store=True, later_try=False, stop_on_kill=True):
    asked: list[int] = []

    def outcome_of(run: int) -> RunOutcome:
        asked.append(run)
        return (outcomes or {})[run]

    beginning = how_to_begin(
        note,
        chain,
        has_store=has_store,
        later_try_of_chain=later_try,
        stop_on_kill=stop_on_kill,
        latest=latest,
        outcome_of=outcome_of,
    )
    return beginning.action, beginning.run, asked


def noted(run=None, *, chain=CHAIN, requested_after=None, stopped=None):
    if run is None:
        return RunNote(chain, requested=True, requested_after=requested_after)
    return RunNote(chain, run=run, stopped=stopped)


# -- starting --


def test_S1_a_first_try_starts_a_run():
    assert begin(None, latest=2) == (Begin.START, None, [])


def test_S3_a_request_whose_answer_was_lost_and_started_nothing_starts_again_on_the_retry():
    assert begin(noted(requested_after=2), latest=2) == (Begin.START, None, [])


def test_S3_a_request_whose_answer_was_lost_is_unknown_when_the_summary_has_no_run_count():
    action, _, asked = begin(noted(requested_after=2), latest=None)
    assert action is Begin.FAIL and asked == []


# -- a retry after a crash: the same chain --


@pytest.mark.parametrize("outcome", [RUNNING, PAUSED, UNKNOWN], ids=["running", "paused", "unknown status"])
def test_R1_a_retry_follows_its_run_in_progress(outcome):
    assert begin(noted(3), outcomes={3: outcome}) == (Begin.FOLLOW, 3, [3])


def test_R2_a_retry_after_its_run_succeeded_returns_it():
    assert begin(noted(3), outcomes={3: SUCCEEDED}) == (Begin.RETURN, 3, [3])


def test_R3_a_retry_after_its_run_failed_starts_a_new_one():
    assert begin(noted(3), outcomes={3: FAILED}) == (Begin.START, None, [3])


def test_R4_a_retry_after_someone_stopped_its_run_fails_and_starts_nothing():
    action, run, _ = begin(noted(3), outcomes={3: STOPPED})
    assert (action, run) == (Begin.FAIL, 3)


@pytest.mark.parametrize("stopped", ["execution_timeout", "killed", "try_failed"])
def test_R5_a_retry_after_the_task_stopped_its_run_starts_a_new_one(stopped):
    assert begin(noted(3, stopped=stopped), outcomes={3: STOPPED}) == (Begin.START, None, [3])


def test_R5_a_run_the_task_asked_to_stop_that_still_finishes_its_step_is_waited_out_not_stopped_again():
    assert begin(noted(3, stopped="execution_timeout"), outcomes={3: RUNNING}) == (Begin.START, None, [3])


def test_R6_a_retry_after_a_timed_out_try_fails_and_starts_nothing():
    action, run, asked = begin(noted(3, stopped=TIMED_OUT), outcomes={3: STOPPED})
    assert (action, run, asked) == (Begin.FAIL, 3, [])


@pytest.mark.parametrize(
    "latest, outcomes, expected",
    [
        (3, {3: RUNNING}, (Begin.FOLLOW, 3, [3])),
        (5, {3: RUNNING}, (Begin.FOLLOW, 3, [3])),  # the first run after the request is its own
        (3, {3: SUCCEEDED}, (Begin.RETURN, 3, [3])),
        (3, {3: STOPPED}, (Begin.FOLLOW, 3, [3])),  # followed: the wait then fails as stopped in Opsera
        (3, {3: FAILED}, (Begin.START, None, [3])),
        (2, {}, (Begin.START, None, [])),
    ],
    ids=["running", "later runs came", "succeeded", "stopped", "failed", "none started"],
)
def test_R7_a_retry_after_a_try_killed_between_its_request_and_the_answer(latest, outcomes, expected):
    assert begin(noted(requested_after=2), latest=latest, outcomes=outcomes) == expected


# -- a Clear: a new chain --


@pytest.mark.parametrize("outcome", [SUCCEEDED, FAILED, STOPPED], ids=["C1 after success", "C2 after failure", "stop"])
def test_C1_C2_a_clear_of_an_ended_task_starts_a_new_run(outcome):
    assert begin(noted(3), chain=CLEARED_CHAIN, outcomes={3: outcome}) == (Begin.START, None, [3])


@pytest.mark.parametrize("chain", [CLEARED_CHAIN, CLEARED_WHILE_RUNNING], ids=["C3 deferred", "C4 in the worker"])
def test_C3_C4_a_clear_while_the_run_goes_on_stops_it_then_starts_a_new_one(chain):
    assert begin(noted(3), chain=chain, outcomes={3: RUNNING}) == (Begin.STOP_THEN_START, 3, [3])


def test_C3_a_clear_while_the_earlier_request_was_unanswered_stops_the_run_it_started():
    assert begin(noted(requested_after=2), chain=CLEARED_CHAIN, outcomes={3: PAUSED}) == (
        Begin.STOP_THEN_START,
        3,
        [3],
    )


def test_C3_a_clear_never_stops_a_run_that_is_not_the_chains_own():
    """Run 3 was the cleared chain's; run 4, someone else's, is going now."""
    assert begin(noted(3), chain=CLEARED_CHAIN, latest=4, outcomes={3: SUCCEEDED}) == (Begin.START, None, [])


def test_C3_a_clear_with_stop_on_kill_off_waits_the_old_run_out():
    action, run, _ = begin(noted(3), chain=CLEARED_CHAIN, outcomes={3: RUNNING}, stop_on_kill=False)
    assert (action, run) == (Begin.START, 3)


def test_C1_a_clear_after_a_timeout_starts_a_new_run():
    assert begin(noted(3, stopped=TIMED_OUT), chain=CLEARED_CHAIN, outcomes={3: STOPPED})[0] is Begin.START


# -- versions --


@pytest.mark.parametrize(
    "later_try, outcome, expected",
    [
        (False, RUNNING, (Begin.START, None, [])),  # a first try, or the first since a Clear: its own run
        (True, RUNNING, (Begin.FOLLOW, 3, [3])),
        (True, PAUSED, (Begin.FOLLOW, 3, [3])),
        (True, SUCCEEDED, (Begin.START, None, [3])),
        (True, FAILED, (Begin.START, None, [3])),
    ],
)
def test_V1_without_a_store_a_retry_follows_the_pipelines_run_in_progress(later_try, outcome, expected):
    assert begin(None, has_store=False, later_try=later_try, outcomes={3: outcome}) == expected


def test_V3_a_clear_that_dropped_the_store_starts_a_new_run():
    """Airflow 3.4 drops task state on a Clear: the new chain has no note (the old run is waited out: S2)."""
    assert begin(None, chain=CLEARED_CHAIN, outcomes={3: RUNNING}) == (Begin.START, None, [])


# -- a try that ends before its run --


def settle(
    ending, *, state=STATE_UNKNOWN, retries_left=False, stop_on_kill=True, triggerer=False, store=True, can_note=True
):
    settlement = how_to_settle(
        ending,
        stop_on_kill=stop_on_kill,
        retries_left=retries_left,
        task_state=state,
        in_triggerer=triggerer,
        has_store=store,
        can_note=can_note,
    )
    return settlement.stop


@pytest.mark.parametrize("triggerer", [True, False], ids=["K1 deferred", "K2 in the worker"])
def test_K1_K2_a_task_marked_failed_stops_its_run(triggerer):
    assert settle(Ending.KILLED, state="failed", triggerer=triggerer)


@pytest.mark.parametrize("triggerer", [True, False], ids=["deferred", "in the worker"])
def test_K3_a_task_marked_success_leaves_its_run_to_finish(triggerer):
    assert not settle(Ending.KILLED, state="success", triggerer=triggerer)


@pytest.mark.parametrize("retries_left", [True, False])
def test_K4_K5_a_timeout_or_an_execution_timeout_stops_the_run(retries_left):
    assert settle(Ending.TIMEOUT, retries_left=retries_left)
    assert settle(Ending.EXECUTION_TIMEOUT, retries_left=retries_left)


def test_K6_a_try_with_retries_left_failing_leaves_its_run_to_the_retry():
    assert not settle(Ending.TRY_FAILED, retries_left=True)


def test_K7_the_last_try_failing_stops_its_run():
    assert settle(Ending.TRY_FAILED, retries_left=False)


@pytest.mark.parametrize("state", ["up_for_retry", "scheduled", "queued", "running", "deferred"])
def test_K8_a_try_taken_over_by_a_retry_leaves_the_run_to_it(state):
    assert not settle(Ending.KILLED, state=state)


@pytest.mark.parametrize("state", ["deferred", STATE_UNKNOWN])
def test_K9_a_stale_copy_of_a_trigger_leaves_the_run(state):
    assert not settle(Ending.KILLED, state=state, triggerer=True)


def test_K10_a_kill_while_the_try_talks_to_airflow_leaves_the_run_to_the_next_try():
    assert not settle(Ending.KILLED, can_note=False)
    assert settle(Ending.KILLED, can_note=True), "a kill in the wait loop whose state cannot be read still stops"


def test_K2_a_kill_in_the_worker_whose_state_cannot_be_read_stops_the_run():
    """Airflow before 3.1 has no state to read, and a read is not made while the try talks to its supervisor."""
    assert settle(Ending.KILLED, state=STATE_UNKNOWN)


@pytest.mark.parametrize("state", ["cleared", "restarting"])
@pytest.mark.parametrize("triggerer", [True, False], ids=["C3 deferred", "C4 in the worker"])
def test_C3_C4_a_cleared_try_stops_its_run_for_the_new_chain(state, triggerer):
    assert settle(Ending.KILLED, state=state, triggerer=triggerer)


def test_V1_without_a_store_a_clear_in_the_worker_leaves_the_run_to_the_next_try():
    assert not settle(Ending.KILLED, state="restarting", store=False)


@pytest.mark.parametrize("ending", list(Ending))
def test_stop_on_kill_off_never_stops(ending):
    assert not settle(ending, state="failed", stop_on_kill=False)


# -- a stop names its run --


@pytest.mark.parametrize(
    "latest, outcome, stops",
    [
        (3, RUNNING, True),
        (3, PAUSED, True),
        (4, RUNNING, False),  # P3: a person's run 4 is going; Opsera's stop would hit it
        (3, SUCCEEDED, False),
        (3, STOPPED, False),
        (3, UNKNOWN, False),  # U1: whose run is going cannot be told
        (None, RUNNING, False),  # the summary does not say which run is the latest
    ],
    ids=["running", "paused", "P3 not the latest", "ended", "stopped", "U1 unknown status", "no run count"],
)
def test_P3_a_stop_is_sent_only_while_the_run_is_the_latest_and_in_progress(latest, outcome, stops):
    assert may_stop(3, latest, outcome).stop is stops


# -- the note --


@pytest.mark.parametrize(
    "note",
    [noted(3), noted(3, stopped=TIMED_OUT), noted(requested_after=2), noted(requested_after=None), noted(requested_after=0)],
)
def test_a_note_reads_back_as_written(note):
    assert RunNote.from_json(note.as_json()) == note


@pytest.mark.parametrize(
    "value",
    [None, 3, "3", {}, {"run": 3}, {"chain": [1], "run": 3}, {"chain": [1, 0], "run": "3"}, {"chain": [1, 0]},
     {"chain": [1, 0], "run": 0}, {"chain": [True, 0], "run": 3}, {"chain": [1, 0], "run": 3, "stopped": 1}],
)
def test_a_value_that_is_not_a_note_is_not_taken_for_one(value):
    assert RunNote.from_json(value) is None


def test_the_chain_is_read_from_the_task_instance_and_its_dag_run():
    from types import SimpleNamespace

    context = {"ti": SimpleNamespace(max_tries=4), "dag_run": SimpleNamespace(clear_number=2)}
    assert Chain.of(context) == Chain(4, 2)
    assert Chain.of({}) == Chain(None, None)


@pytest.mark.parametrize(
    "answer, map_index, state",
    [
        ({"r": {"deploy": "failed"}}, -1, "failed"),
        ({"r": {"deploy": None}}, -1, "cleared"),
        ({"r": {"deploy_7": "success", "deploy": "failed"}}, 7, "success"),
        ({"r": {"other": "failed"}}, -1, STATE_UNKNOWN),
        ({}, -1, STATE_UNKNOWN),
        (None, -1, STATE_UNKNOWN),
    ],
)
def test_the_task_instances_state_is_found_in_the_supervisors_answer(answer, map_index, state):
    from types import SimpleNamespace

    ti = SimpleNamespace(task_id="deploy", run_id="r", map_index=map_index)
    assert state_in_answer(answer, ti) == state
