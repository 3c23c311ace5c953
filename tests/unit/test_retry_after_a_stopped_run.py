"""Found by the chaos soak: a try that stopped its run (timeout) and was killed before it could fail the
task gets retried, and the retry, finding the stopped run in ``task_state_store``, starts another one.

Timeline (soak ``worker_timeout``): try 1 times out and stops run 1; the scheduler's process group is
killed before the try reports ``AirflowFailException``; five minutes later Airflow fails the orphaned
try as retryable; try 2 reads run 1 (stopped) from the store and starts run 2. A stopped run ends the
task without a retry, so the retry should fail the same way and start nothing. Strict xfail until the
operator does so.
"""

from __future__ import annotations

import pytest

from airflow_provider_opsera._compat import AirflowFailException
from airflow_provider_opsera.waiting.resumable import HAS_TASK_STATE_STORE
from tests.unit.conftest import PIPELINE_ID
from tests.unit.pipeline_fakes import RUN, STATUS, FakeStateStore, FakeTI, make_context, status
from tests.unit.test_pipeline_operator import calls, clock, make_operator, opsera  # noqa: F401 (fixtures)


@pytest.mark.skipif(not HAS_TASK_STATE_STORE, reason="task_state_store: Airflow 3.3+")
@pytest.mark.xfail(strict=True, reason="the retry starts a new run after the stored run was stopped")
def test_a_retry_after_its_run_was_stopped_fails_without_starting_another(opsera, clock):  # noqa: F811
    opsera.post(STATUS, [status("stopped"), status("success")])
    store = FakeStateStore(**{f"opsera_run_count:{PIPELINE_ID}": 3})
    with pytest.raises(AirflowFailException):
        make_operator(clock, timeout=12).execute(make_context(FakeTI(try_number=2), store))
    assert calls(opsera, RUN) == 0
