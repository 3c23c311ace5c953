"""A try that timed out and was killed while stopping its run: the retry fails the same way and starts nothing.

Found by the chaos soak (``worker_timeout``): try 1 timed out and stopped run 1; the worker was killed
before the try could report ``AirflowFailException``; Airflow failed the orphaned try as retryable, and
try 2, finding run 1 (stopped) in ``task_state_store``, started run 2. A timeout ends the task without a
retry, so the operator notes the run it stopped, with the try chain's ``max_tries`` (a clear sets it anew).
"""

from __future__ import annotations

import pytest

from airflow_provider_opsera._compat import AirflowException, AirflowFailException
from airflow_provider_opsera.waiting.resumable import HAS_TASK_STATE_STORE
from tests.unit.conftest import PIPELINE_ID
from tests.unit.pipeline_fakes import RUN, STATUS, STOP, FakeStateStore, FakeTI, make_context, status
from tests.unit.test_pipeline_operator import calls, clock, make_operator, opsera  # noqa: F401 (fixtures)

RUN_KEY = f"opsera_run_count:{PIPELINE_ID}"
TIMED_OUT_KEY = f"opsera_timed_out_run:{PIPELINE_ID}"

pytestmark = pytest.mark.skipif(not HAS_TASK_STATE_STORE, reason="task_state_store: Airflow 3.3+")


def test_a_retry_after_a_try_killed_while_stopping_its_timed_out_run_fails_without_another_run(opsera, clock):  # noqa: F811
    opsera.post(STATUS, [status("stopped"), status("success")])
    store = FakeStateStore(**{RUN_KEY: 3, TIMED_OUT_KEY: {"run_count": 3, "max_tries": 2}})  # the killed try's note
    with pytest.raises(AirflowFailException, match="timed out waiting for Opsera pipeline .* run 3"):
        make_operator(clock, timeout=12).execute(make_context(FakeTI(try_number=2, max_tries=2), store))
    assert calls(opsera, RUN) == 0


def test_a_timeout_notes_the_run_it_stopped_for_a_retry_of_the_same_chain(opsera, clock):  # noqa: F811
    opsera.post(STATUS, [status("running")])
    store = FakeStateStore()
    with pytest.raises(AirflowFailException, match="did not finish within"):
        make_operator(clock, timeout=30).execute(make_context(FakeTI(max_tries=2), store))
    assert calls(opsera, STOP) == 1
    assert store.values[TIMED_OUT_KEY] == {"run_count": store.values[RUN_KEY], "max_tries": 2}


def test_a_person_clearing_the_task_after_a_timeout_gets_a_new_run(opsera, clock):  # noqa: F811
    opsera.post(STATUS, [status("stopped"), status("success")])
    store = FakeStateStore(**{RUN_KEY: 3, TIMED_OUT_KEY: {"run_count": 3, "max_tries": 2}})
    cleared = FakeTI(try_number=4, max_tries=5)  # a clear sets max_tries anew: try_number + retries
    assert make_operator(clock, timeout=60).execute(make_context(cleared, store)) == 3
    assert calls(opsera, RUN) == 1
    assert TIMED_OUT_KEY not in store.values


def test_a_stored_run_that_failed_is_retried_with_a_new_run(opsera, clock):  # noqa: F811
    opsera.post(STATUS, [status("failed"), status("failed")])
    store = FakeStateStore(**{RUN_KEY: 3})
    with pytest.raises(AirflowException):
        make_operator(clock, timeout=30).execute(make_context(FakeTI(try_number=2), store))
    assert calls(opsera, RUN) == 1
