"""The run lifecycle carried out by OpseraRunPipelineOperator: requests-mock for Opsera, a fake task state store.

Each test names the row of the README's table "How a pipeline task behaves" it shows (S1, R3, C1...);
tests/unit/test_lifecycle.py has the decisions alone.
"""

from __future__ import annotations

import pytest

from airflow_provider_opsera._compat import AirflowException, AirflowFailException, AirflowTaskTimeout
from airflow_provider_opsera.exceptions import OpseraBadResponseError
from tests.unit.conftest import PIPELINE_ID
from tests.unit.pipeline_fakes import (
    RUN,
    STATUS,
    STOP,
    SUMMARY,
    FakeStateStore,
    FakeTI,
    Killed,
    StoreThatFailsOn,
    make_context,
    status,
    store_failing_on_the_run_note,
    summary,
)
from tests.unit.test_pipeline_operator import (  # noqa: F401 (fixtures)
    BUSY,
    KilledInTheWait,
    calls,
    clock,
    kill_at_first_sleep,
    make_operator,
    opsera,
)

KEY = f"opsera_run:{PIPELINE_ID}"
CHAIN = [1, 0]  # max_tries 1 (one retry), no Clear yet


def note(run=None, *, chain=CHAIN, requested_after=None, stopped=None) -> dict:
    value = {"chain": chain, "run": run} if run is not None else {"chain": chain, "requested_after": requested_after}
    return {**value, "stopped": stopped} if stopped else value


def store_with(value: dict) -> FakeStateStore:
    return FakeStateStore(**{KEY: value})


def run_json(run_count: int) -> dict:
    return {"json": {"status": "executed", "message": "submitted", "runCount": run_count}}


# -- S: starting --


def test_S1_the_request_is_noted_before_it_is_sent_and_then_the_run(opsera, clock):  # noqa: F811
    seen = {}

    def note_at_request_time(request, context):
        seen.update(store.values)
        return {"status": "executed", "runCount": 3}

    opsera.post(RUN, json=note_at_request_time)
    opsera.post(STATUS, [status("success")])
    store = FakeStateStore()
    assert make_operator(clock).execute(make_context(FakeTI(max_tries=1), store)) == 3
    assert seen == {KEY: note(requested_after=2)}
    assert store.values == {KEY: note(3)}


def test_S2_a_refused_request_forgets_its_note(opsera, clock):  # noqa: F811
    opsera.post(SUMMARY, [summary(2)])
    opsera.post(RUN, json={"status": "failed", "message": "Pipeline is disabled."})
    opsera.post(STATUS, [status("success")])
    store = FakeStateStore()
    with pytest.raises(AirflowException, match="did not start"):
        make_operator(clock).execute(make_context(FakeTI(), store))
    assert store.values == {}


def test_S2_a_try_waiting_out_a_run_in_its_way_has_no_request_noted(opsera, clock):  # noqa: F811
    """A refusal started nothing: a try killed while it waits must not leave a note that the next run is its own
    (the person whose run was in the way may start that one)."""
    opsera.post(SUMMARY, [summary(2)])
    opsera.post(RUN, [BUSY])
    opsera.post(STATUS, [status("running")])
    store = FakeStateStore()
    op = make_operator(clock, poll_interval=20)
    kill_at_first_sleep(op, clock)
    with pytest.raises(KilledInTheWait):
        op.execute(make_context(FakeTI(), store))
    assert store.values == {} and calls(opsera, STOP) == 0


def test_S3_an_unreadable_run_count_keeps_the_note_and_the_retry_follows_the_run(opsera, clock):  # noqa: F811
    opsera.post(RUN, json={"status": "executed", "runCount": 7.5})
    store = FakeStateStore()
    with pytest.raises(OpseraBadResponseError, match="a run may have started"):
        make_operator(clock).execute(make_context(FakeTI(try_number=1, max_tries=1), store))
    assert store.values == {KEY: note(requested_after=2)}

    opsera.post(SUMMARY, [summary(3)])
    opsera.post(STATUS, [status("running"), status("success")])
    assert make_operator(clock).execute(make_context(FakeTI(try_number=2, max_tries=1), store)) == 3
    assert calls(opsera, RUN) == 1


def test_S3_a_lost_answer_when_the_summary_has_no_run_count_fails_without_a_second_request(opsera, clock):  # noqa: F811
    """A summary without workflow.run_count was read as run 0, which turned the check off: a 502 after Opsera
    started a run led to a second run. Now nobody can tell, and the task says so and is not retried."""
    import requests

    opsera.post(SUMMARY, json={"_id": PIPELINE_ID, "workflow": {"runCount": 6}})
    opsera.post(RUN, exc=requests.exceptions.ConnectionError("connection reset by peer"))
    store = FakeStateStore()
    with pytest.raises(AirflowFailException, match="does not say its latest run count, so whether a run started"):
        make_operator(clock).execute(make_context(FakeTI(max_tries=1), store))
    assert calls(opsera, RUN) == 1
    assert store.values == {KEY: note(requested_after=None)}
    with pytest.raises(AirflowFailException, match="whether a run started is unknown"):  # nor does the retry send one
        make_operator(clock).execute(make_context(FakeTI(try_number=2, max_tries=1), store))
    assert calls(opsera, RUN) == 1


def test_S3_a_lost_answer_follows_the_first_run_after_the_request(opsera, clock):  # noqa: F811
    import requests

    opsera.post(SUMMARY, [summary(2), summary(4)])  # someone started run 4 after run 3 ended, in between
    opsera.post(RUN, exc=requests.exceptions.ConnectionError("connection reset by peer"))
    opsera.post(STATUS, [status("success")])
    assert make_operator(clock).execute(make_context()) == 3
    assert opsera.request_history[-1].json()["runCount"] == 3


def test_S1_a_try_that_cannot_note_its_request_sends_nothing(opsera, clock):  # noqa: F811
    store = StoreThatFailsOn(KEY, RuntimeError("API_SERVER_ERROR: Task instance not found"))
    with pytest.raises(RuntimeError, match="not found"):
        make_operator(clock).execute(make_context(FakeTI(try_number=4, max_tries=4), store))
    assert calls(opsera, RUN) == 0 and calls(opsera, STOP) == 0


def test_a_note_this_provider_did_not_write_is_ignored(opsera, clock, task_log):  # noqa: F811
    opsera.post(STATUS, [status("success")])
    store = store_with({"latest_run_before": "two"})
    assert make_operator(clock).execute(make_context(FakeTI(try_number=2, max_tries=1), store)) == 3
    assert "is not a note this provider wrote" in task_log.text()
    assert store.values == {KEY: note(3)}


# -- R: a retry of the same chain --


def test_R1_a_retry_follows_its_run_still_going(opsera, clock):  # noqa: F811
    opsera.post(SUMMARY, [summary(3)])
    opsera.post(STATUS, [status("running"), status("running"), status("success")])
    assert make_operator(clock).execute(make_context(FakeTI(try_number=2, max_tries=1), store_with(note(3)))) == 3
    assert calls(opsera, RUN) == 0


def test_R2_a_retry_after_its_run_succeeded_returns_at_once(opsera, clock):  # noqa: F811
    opsera.post(SUMMARY, [summary(3)])
    opsera.post(STATUS, [status("success")])
    assert make_operator(clock).execute(make_context(FakeTI(try_number=2, max_tries=1), store_with(note(3)))) == 3
    assert calls(opsera, RUN) == 0 and calls(opsera, STATUS) == 1


def test_R3_a_retry_after_its_run_failed_starts_a_new_run(opsera, clock):  # noqa: F811
    opsera.post(SUMMARY, [summary(3), summary(4)])
    opsera.post(STATUS, [status("failed"), status("success")])
    opsera.post(RUN, [run_json(4)])
    store = store_with(note(3))
    assert make_operator(clock).execute(make_context(FakeTI(try_number=2, max_tries=1), store)) == 4
    assert store.values == {KEY: note(4)}


def test_R4_a_retry_after_someone_stopped_its_run_fails_without_another(opsera, clock):  # noqa: F811
    opsera.post(SUMMARY, [summary(3)])
    opsera.post(STATUS, [status("stopped")])
    with pytest.raises(AirflowFailException, match="was stopped in Opsera"):
        make_operator(clock).execute(make_context(FakeTI(try_number=2, max_tries=1), store_with(note(3))))
    assert calls(opsera, RUN) == 0


def test_R5_K5_an_execution_timeout_stops_the_run_and_the_retry_starts_its_own(opsera, clock):  # noqa: F811
    opsera.post(STATUS, [status("running"), {"exc": AirflowTaskTimeout("Timeout, PID: 42")}, status("running")])
    op = make_operator(clock)
    store = FakeStateStore()
    with pytest.raises(AirflowTaskTimeout):
        op.execute(make_context(FakeTI(try_number=1, max_tries=1), store))
    assert calls(opsera, STOP) == 1
    op.on_kill()  # Airflow calls it next: the run was dealt with already
    assert calls(opsera, STOP) == 1
    assert store.values == {KEY: note(3, stopped="execution_timeout")}

    # the retry: run 3 is finishing its step after the stop (it is not stopped again), then Opsera accepts run 4
    opsera.post(SUMMARY, [summary(3), summary(3), summary(4)])
    opsera.post(STATUS, [status("running"), status("running"), status("success")])
    opsera.post(RUN, [BUSY, run_json(4)])
    assert make_operator(clock).execute(make_context(FakeTI(try_number=2, max_tries=1), store)) == 4
    assert calls(opsera, RUN) == 3 and calls(opsera, STOP) == 1


def test_R6_a_retry_after_a_try_killed_while_failing_its_timeout_fails_the_same_way(opsera, clock):  # noqa: F811
    opsera.post(SUMMARY, [summary(3)])
    opsera.post(STATUS, [status("stopped")])
    store = store_with(note(3, chain=[2, 0], stopped="timeout"))
    with pytest.raises(AirflowFailException, match="timed out waiting for run 3"):
        make_operator(clock, timeout=12).execute(make_context(FakeTI(try_number=2, max_tries=2), store))
    assert calls(opsera, RUN) == 0


def test_K4_a_timeout_notes_the_run_it_stopped(opsera, clock):  # noqa: F811
    opsera.post(STATUS, [status("running")])
    store = FakeStateStore()
    with pytest.raises(AirflowFailException, match="did not finish within"):
        make_operator(clock, timeout=30).execute(make_context(FakeTI(max_tries=2), store))
    assert calls(opsera, STOP) == 1
    assert store.values == {KEY: note(3, chain=[2, 0], stopped="timeout")}


@pytest.mark.parametrize(
    "latest, statuses, runs, expected",
    [
        (3, ["running", "success"], 0, 3),
        (5, ["success"], 0, 3),  # the first run after the request, whatever came later
        (2, ["success"], 1, 3),  # no run started: this try starts it
        (3, ["failed", "success"], 1, 4),
    ],
    ids=["running", "later runs came", "none started", "failed"],
)
def test_R7_a_retry_after_a_try_killed_between_request_and_answer(opsera, clock, latest, statuses, runs, expected):  # noqa: F811
    opsera.post(SUMMARY, [summary(latest), summary(max(latest, expected))])
    opsera.post(STATUS, [status(s) for s in statuses])
    opsera.post(RUN, [run_json(expected)])
    store = store_with(note(requested_after=2))
    assert make_operator(clock).execute(make_context(FakeTI(try_number=2, max_tries=1), store)) == expected
    assert calls(opsera, RUN) == runs


def test_R7_a_kill_after_the_request_reached_opsera_leaves_the_run_to_the_retry(opsera, clock):  # noqa: F811
    killed = store_failing_on_the_run_note(Killed())  # the kill comes after the request, before the run is noted
    with pytest.raises(Killed):
        make_operator(clock).execute(make_context(FakeTI(try_number=1, max_tries=1), killed))
    assert calls(opsera, RUN) == 1
    assert killed.values == {KEY: note(requested_after=2)}

    opsera.post(SUMMARY, [summary(3)])
    opsera.post(STATUS, [status("running"), status("success")])
    store = FakeStateStore(**killed.values)
    assert make_operator(clock).execute(make_context(FakeTI(try_number=2, max_tries=1), store)) == 3
    assert calls(opsera, RUN) == 1, "the retry started a second run"


# -- K: a try that ends before its run --


def test_K6_a_try_that_fails_after_starting_its_run_leaves_it_to_the_retry(opsera, clock):  # noqa: F811
    store = store_failing_on_the_run_note(RuntimeError("API_SERVER_ERROR: Task instance not found"))
    with pytest.raises(RuntimeError):
        make_operator(clock).execute(make_context(FakeTI(try_number=4, max_tries=4), store))
    assert calls(opsera, RUN) == 1
    assert calls(opsera, STOP) == 0, "a run the next try will follow was stopped"

    opsera.post(SUMMARY, [summary(3)])
    opsera.post(STATUS, [status("running"), status("failed", "Step deploy failed.")])
    retry = FakeStateStore(**store.values)
    with pytest.raises(AirflowException, match="run 3 failed"):
        make_operator(clock).execute(make_context(FakeTI(try_number=5, max_tries=4), retry))
    assert calls(opsera, RUN) == 1, "the last try followed run 3 instead of being refused a new one"


def test_K7_the_last_try_failing_after_starting_its_run_stops_it(opsera, clock):  # noqa: F811
    store = store_failing_on_the_run_note(RuntimeError("API server unreachable"))
    opsera.post(STATUS, [status("running")])
    with pytest.raises(RuntimeError):
        make_operator(clock).execute(make_context(FakeTI(try_number=2, max_tries=1), store))
    assert calls(opsera, RUN) == 1 and calls(opsera, STOP) == 1


def test_K7_the_last_try_failing_while_it_waits_stops_its_run_once(opsera, clock):  # noqa: F811
    opsera.post(STATUS, [status("running"), {"exc": RuntimeError("a bug while waiting")}, status("running")])
    op = make_operator(clock)
    with pytest.raises(RuntimeError, match="a bug while waiting"):
        op.execute(make_context(FakeTI(try_number=1, max_tries=0), FakeStateStore()))
    op.on_kill()
    assert calls(opsera, STOP) == 1


def test_a_run_not_waited_for_is_not_stopped_when_the_try_fails_after_starting_it(opsera, clock):  # noqa: F811
    store = store_failing_on_the_run_note(RuntimeError("API server unreachable"))
    with pytest.raises(RuntimeError):
        make_operator(clock, wait_for_completion=False).execute(make_context(FakeTI(), store))
    assert calls(opsera, STOP) == 0


def test_a_failed_run_is_not_stopped(opsera, clock):  # noqa: F811
    opsera.post(STATUS, [status("failed")])
    with pytest.raises(AirflowException, match="failed"):
        make_operator(clock).execute(make_context(FakeTI(), FakeStateStore()))
    assert calls(opsera, STOP) == 0


@pytest.mark.parametrize(
    "state, stops",
    [
        ("failed", 1),  # K2: marked failed
        ("success", 0),  # K3: marked success
        ("restarting", 1),  # C4: cleared while running; the new chain starts its own run
        ("up_for_retry", 0),  # K8: taken over after a lost heartbeat; the retry follows the run
        ("running", 0),  # K8: the retry runs already
        (ConnectionError("supervisor gone"), 1),  # the state cannot be read: a kill stops, as Airflow 2 did
    ],
    ids=["K2 marked failed", "K3 marked success", "C4 cleared", "K8 taken over", "K8 retry running", "unknown"],
)
def test_K_on_kill_in_the_worker_reads_the_task_state_and_stops_only_for_a_person(opsera, clock, state, stops):  # noqa: F811
    opsera.post(STATUS, [status("running")])
    op = make_operator(clock)
    kill_at_first_sleep(op, clock)
    ti = FakeTI(max_tries=1, state=state)
    store = FakeStateStore()
    with pytest.raises(KilledInTheWait):
        op.execute(make_context(ti, store))
    assert ti.state_reads == 1
    assert calls(opsera, STOP) == stops
    assert store.values[KEY] == (note(3, stopped="killed") if stops else note(3))


def test_P3_a_person_started_the_next_run_before_the_task_was_marked_failed(opsera, clock, task_log):  # noqa: F811
    """Worker wait: run 3 ended between two polls, a person started run 4, then the task was marked failed."""
    opsera.post(SUMMARY, [summary(2), summary(4)])
    opsera.post(STATUS, [status("running"), status("success")])
    op = make_operator(clock)
    kill_at_first_sleep(op, clock)
    with pytest.raises(KilledInTheWait):
        op.execute(make_context(FakeTI(state="failed")))
    assert calls(opsera, STOP) == 0
    assert "run 4 is the pipeline's latest now, not run 3" in task_log.text()


# -- C: a Clear starts a new chain --


def test_C1_a_clear_after_success_deploys_again(opsera, clock):  # noqa: F811
    """Airflow 3.3 keeps task state after success: the run count of the first chain must not end the new one."""
    opsera.post(SUMMARY, [summary(3), summary(4)])
    opsera.post(STATUS, [status("success")])
    opsera.post(RUN, [run_json(4)])
    store = store_with(note(3, chain=[0, 0]))
    cleared = FakeTI(try_number=2, max_tries=1)  # Airflow sets max_tries to try number + retries on a Clear
    assert make_operator(clock).execute(make_context(cleared, store, clear_number=1)) == 4
    assert calls(opsera, RUN) == 1
    assert store.values == {KEY: note(4, chain=[1, 1])}


def test_C1_a_clear_after_a_timeout_gets_a_new_run(opsera, clock):  # noqa: F811
    opsera.post(SUMMARY, [summary(3), summary(4)])
    opsera.post(STATUS, [status("stopped"), status("success")])
    opsera.post(RUN, [run_json(4)])
    store = store_with(note(3, chain=[2, 0], stopped="timeout"))
    assert make_operator(clock).execute(make_context(FakeTI(try_number=4, max_tries=5), store, clear_number=1)) == 4


@pytest.mark.parametrize(
    "ti, clear_number",
    [(FakeTI(try_number=2, max_tries=1), 1), (FakeTI(try_number=2, max_tries=0), 1)],
    ids=["C3 cleared while deferred", "C4 cleared while in the worker (max_tries kept)"],
)
def test_C3_C4_a_clear_while_the_run_goes_on_stops_it_and_starts_its_own(opsera, clock, ti, clear_number):  # noqa: F811
    opsera.post(SUMMARY, [summary(3), summary(3), summary(3), summary(4)])
    # run 3: in progress (begin), in progress (the stop's check), still finishing its step (the refusal); run 4
    opsera.post(STATUS, [status("running"), status("running"), status("running"), status("success")])
    opsera.post(RUN, [BUSY, run_json(4)])
    store = store_with(note(3, chain=[0, 0]))
    assert make_operator(clock).execute(make_context(ti, store, clear_number=clear_number)) == 4
    assert calls(opsera, STOP) == 1 and calls(opsera, RUN) == 2
    assert store.values[KEY]["run"] == 4


# -- U: statuses --


def test_U1_an_unknown_status_fails_the_wait_after_its_grace_naming_it_and_how_to_map_it(opsera, clock):  # noqa: F811
    opsera.post(STATUS, [status("deploying-canary")])
    op = make_operator(clock, poll_interval=300)
    with pytest.raises(AirflowException, match="'deploying-canary'.*for 600 s.*'status_map' extra") as raised:
        op.execute(make_context(FakeTI(max_tries=0), FakeStateStore()))
    assert not isinstance(raised.value, AirflowFailException)
    assert sum(clock.sleeps) == 600
    assert calls(opsera, STOP) == 0, "a run whose state is unknown was stopped"


def test_U1_a_tenants_status_mapped_in_the_connection_counts_as_its_outcome(opsera, clock, set_conn, token):  # noqa: F811
    from tests.unit.conftest import BASE_URL

    set_conn(host=BASE_URL, password=token, extra={"status_map": {"Deploying-Canary": "running", "Shipped": "success"}})
    opsera.post(STATUS, [status("deploying-canary")] * 5 + [status("shipped")])
    assert make_operator(clock, poll_interval=300).execute(make_context()) == 3


def test_U1_a_status_map_that_names_no_outcome_is_refused_naming_it(opsera, clock, set_conn, token):  # noqa: F811
    from tests.unit.conftest import BASE_URL

    set_conn(host=BASE_URL, password=token, extra={"status_map": {"shipped": "great"}})
    with pytest.raises(AirflowException, match="'status_map' maps 'shipped' to 'great'"):
        make_operator(clock).execute(make_context())
    assert calls(opsera, RUN) == 0


# -- V: without a task state store (Airflow before 3.3, or durable=False) --


@pytest.mark.parametrize(
    "ti, latest_status, answers, followed",
    [
        (FakeTI(try_number=2, max_tries=1), "running", [], 3),  # a retry follows the run in progress
        (FakeTI(try_number=2, max_tries=1), "success", [run_json(4)], 4),
        (FakeTI(try_number=3, max_tries=3), "running", [BUSY, run_json(4)], 4),  # the first try since a Clear
    ],
    ids=["retry, run going", "retry, run ended", "Clear: the old run is waited out"],
)
def test_V1_without_a_store_a_retry_follows_the_pipelines_run_in_progress(
    opsera, clock, ti, latest_status, answers, followed  # noqa: F811
):
    opsera.post(SUMMARY, [summary(3), summary(3), summary(4)])
    opsera.post(STATUS, [status(latest_status), status("success")])
    opsera.post(RUN, answers or [run_json(99)])
    assert make_operator(clock, retries=1, durable=False).execute({"ti": ti}) == followed
    assert calls(opsera, RUN) == len(answers) and calls(opsera, STOP) == 0
