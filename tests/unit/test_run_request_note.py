"""A try that ends between asking Opsera for a run and noting it: its retry follows that run, and only it.

Found by the chaos soak. ``worker_success``: the scheduler's kill took the try's worker with it after
the run request reached Opsera and before the started run was noted in ``task_state_store``; the retry
found no note and started a second run. ``worker_failure``: Airflow reset a running try as orphaned and
started the next; the old try started a run, could not note it (its task instance was gone) and failed,
and nothing followed that run. The operator now notes the request before sending it, and a try that
fails while its run goes on leaves the run to its retry, or stops it when no retry is left.
"""

from __future__ import annotations

import pytest

from airflow_provider_opsera._compat import AirflowException, AirflowFailException, AirflowTaskTimeout
from airflow_provider_opsera.exceptions import OpseraBadResponseError
from airflow_provider_opsera.waiting.resumable import HAS_TASK_STATE_STORE
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
    summary,
)
from tests.unit.test_pipeline_operator import calls, clock, make_operator, opsera  # noqa: F401 (fixtures)

RUN_KEY = f"opsera_run_count:{PIPELINE_ID}"
REQUEST_KEY = f"opsera_run_request:{PIPELINE_ID}"

pytestmark = pytest.mark.skipif(not HAS_TASK_STATE_STORE, reason="task_state_store: Airflow 3.3+")


def test_the_request_is_noted_before_it_is_sent_and_forgotten_once_the_run_is_noted(opsera, clock):  # noqa: F811
    seen = {}

    def note_at_request_time(request, context):
        seen.update(store.values)
        return {"status": "executed", "runCount": 3}

    opsera.post(RUN, json=note_at_request_time)
    opsera.post(STATUS, [status("success")])
    store = FakeStateStore()
    assert make_operator(clock).execute(make_context(FakeTI(), store)) == 3
    assert seen == {REQUEST_KEY: {"latest_run_before": 2}}
    assert store.values == {RUN_KEY: 3}


def test_a_retry_after_a_try_killed_before_noting_its_run_follows_that_run(opsera, clock):  # noqa: F811
    killed = StoreThatFailsOn(RUN_KEY, Killed())
    with pytest.raises(Killed):
        make_operator(clock).execute(make_context(FakeTI(try_number=1, max_tries=1), killed))
    assert calls(opsera, RUN) == 1
    assert killed.values == {REQUEST_KEY: {"latest_run_before": 2}}

    opsera.post(SUMMARY, [summary(3)])  # run 3 started
    opsera.post(STATUS, [status("running"), status("success")])
    store = FakeStateStore(**killed.values)
    assert make_operator(clock).execute(make_context(FakeTI(try_number=2, max_tries=1), store)) == 3
    assert calls(opsera, RUN) == 1, "the retry started a second run"
    assert store.values == {RUN_KEY: 3}


def test_a_retry_follows_the_first_run_after_the_request_even_if_others_came_later(opsera, clock):  # noqa: F811
    opsera.post(SUMMARY, [summary(5)])
    opsera.post(STATUS, [status("success")])
    store = FakeStateStore(**{REQUEST_KEY: {"latest_run_before": 2}})
    assert make_operator(clock).execute(make_context(FakeTI(try_number=2, max_tries=1), store)) == 3
    assert calls(opsera, RUN) == 0
    assert opsera.request_history[-1].json()["runCount"] == 3


def test_a_retry_after_a_request_that_started_nothing_starts_the_run(opsera, clock):  # noqa: F811
    opsera.post(STATUS, [status("success")])
    store = FakeStateStore(**{REQUEST_KEY: {"latest_run_before": 2}})  # the summary still says 2
    assert make_operator(clock).execute(make_context(FakeTI(try_number=2, max_tries=1), store)) == 3
    assert calls(opsera, RUN) == 1
    assert store.values == {RUN_KEY: 3}


def test_a_retry_after_the_earlier_tries_run_failed_starts_a_new_run(opsera, clock):  # noqa: F811
    opsera.post(SUMMARY, [summary(3)])
    opsera.post(RUN, json={"status": "executed", "runCount": 4})
    opsera.post(STATUS, [status("failed"), status("success")])  # run 3, then the new run 4
    store = FakeStateStore(**{REQUEST_KEY: {"latest_run_before": 2}})
    assert make_operator(clock).execute(make_context(FakeTI(try_number=2, max_tries=1), store)) == 4
    assert calls(opsera, RUN) == 1
    assert store.values == {RUN_KEY: 4}


def test_a_retry_after_the_earlier_tries_run_was_stopped_fails_without_another(opsera, clock):  # noqa: F811
    opsera.post(SUMMARY, [summary(3)])
    opsera.post(STATUS, [status("stopped"), status("stopped")])
    store = FakeStateStore(**{REQUEST_KEY: {"latest_run_before": 2}})
    with pytest.raises(AirflowFailException, match="run 3 was stopped"):
        make_operator(clock).execute(make_context(FakeTI(try_number=2, max_tries=1), store))
    assert calls(opsera, RUN) == 0


def test_a_note_that_is_not_a_run_count_is_ignored(opsera, clock):  # noqa: F811
    opsera.post(STATUS, [status("success")])
    store = FakeStateStore(**{REQUEST_KEY: {"latest_run_before": "two"}})
    assert make_operator(clock).execute(make_context(FakeTI(try_number=2, max_tries=1), store)) == 3
    assert calls(opsera, RUN) == 1
    assert store.values == {RUN_KEY: 3}


def test_a_refused_request_forgets_its_note(opsera, clock):  # noqa: F811
    opsera.post(RUN, json={"status": "failed", "message": "Pipeline is currently running (run 2)."})
    store = FakeStateStore()
    with pytest.raises(AirflowException, match="did not start"):
        make_operator(clock).execute(make_context(FakeTI(), store))
    assert store.values == {}


def test_an_unreadable_run_count_keeps_the_note_and_the_retry_follows_the_run(opsera, clock):  # noqa: F811
    opsera.post(RUN, json={"status": "executed", "runCount": 7.5})
    store = FakeStateStore()
    with pytest.raises(OpseraBadResponseError, match="a run may have started"):
        make_operator(clock).execute(make_context(FakeTI(try_number=1, max_tries=1), store))
    assert store.values == {REQUEST_KEY: {"latest_run_before": 2}}

    opsera.post(SUMMARY, [summary(3)])
    opsera.post(STATUS, [status("running"), status("success")])
    assert make_operator(clock).execute(make_context(FakeTI(try_number=2, max_tries=1), store)) == 3
    assert calls(opsera, RUN) == 1


def test_a_try_that_cannot_note_its_request_sends_nothing(opsera, clock):  # noqa: F811
    store = StoreThatFailsOn(REQUEST_KEY, RuntimeError("API_SERVER_ERROR: Task instance not found"))
    with pytest.raises(RuntimeError, match="not found"):
        make_operator(clock).execute(make_context(FakeTI(try_number=4, max_tries=4), store))
    assert calls(opsera, RUN) == 0
    assert calls(opsera, STOP) == 0


def test_a_try_that_fails_after_starting_its_run_leaves_it_to_the_retry(opsera, clock):  # noqa: F811
    store = StoreThatFailsOn(RUN_KEY, RuntimeError("API_SERVER_ERROR: Task instance not found"))
    with pytest.raises(RuntimeError):
        make_operator(clock).execute(make_context(FakeTI(try_number=4, max_tries=4), store))
    assert calls(opsera, RUN) == 1
    assert calls(opsera, STOP) == 0, "a run the next try will follow was stopped"
    assert store.values == {REQUEST_KEY: {"latest_run_before": 2}}

    opsera.post(SUMMARY, [summary(3)])
    opsera.post(STATUS, [status("running"), status("failed", "Step deploy failed.")])
    with pytest.raises(AirflowException, match="run 3 failed"):
        make_operator(clock).execute(make_context(FakeTI(try_number=5, max_tries=4), FakeStateStore(**store.values)))
    assert calls(opsera, RUN) == 1, "the last try followed run 3 instead of being refused a new one"


def test_the_last_try_failing_after_starting_its_run_stops_it(opsera, clock):  # noqa: F811
    store = StoreThatFailsOn(RUN_KEY, RuntimeError("API server unreachable"))
    with pytest.raises(RuntimeError):
        make_operator(clock).execute(make_context(FakeTI(try_number=2, max_tries=1), store))
    assert calls(opsera, RUN) == 1
    assert calls(opsera, STOP) == 1


def test_the_last_try_failing_while_it_waits_stops_its_run_once(opsera, clock):  # noqa: F811
    opsera.post(STATUS, [status("running"), {"exc": RuntimeError("a bug while waiting")}])
    op = make_operator(clock)
    with pytest.raises(RuntimeError, match="a bug while waiting"):
        op.execute(make_context(FakeTI(try_number=1, max_tries=0), FakeStateStore()))
    op.on_kill()  # Airflow may call it too, e.g. after an execution_timeout
    assert calls(opsera, STOP) == 1


def test_a_run_not_waited_for_is_not_stopped_when_the_try_fails_after_starting_it(opsera, clock):  # noqa: F811
    store = StoreThatFailsOn(RUN_KEY, RuntimeError("API server unreachable"))
    with pytest.raises(RuntimeError):
        make_operator(clock, wait_for_completion=False).execute(make_context(FakeTI(), store))
    assert calls(opsera, STOP) == 0


def test_a_failed_run_is_not_stopped(opsera, clock):  # noqa: F811
    opsera.post(STATUS, [status("failed")])
    with pytest.raises(AirflowException, match="failed"):
        make_operator(clock).execute(make_context(FakeTI(), FakeStateStore()))
    assert calls(opsera, STOP) == 0


def test_an_execution_timeout_leaves_the_stop_to_on_kill_which_airflow_calls_next(opsera, clock):  # noqa: F811
    opsera.post(STATUS, [status("running"), {"exc": AirflowTaskTimeout("Timeout, PID: 42")}])
    op = make_operator(clock)
    with pytest.raises(AirflowTaskTimeout):
        op.execute(make_context(FakeTI(try_number=1, max_tries=3), FakeStateStore()))
    assert calls(opsera, STOP) == 0
    op.on_kill()
    assert calls(opsera, STOP) == 1
