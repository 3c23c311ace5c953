"""A try that ends between asking for a run and noting it, over real sockets: one run, followed to its end.

The emulator's run journal says who started and stopped each run; ``task_state_store`` is the fake one
Airflow's store stands for, shared by the tries as Airflow shares it.
"""

from __future__ import annotations

import pytest

from airflow_provider_opsera._compat import AirflowException
from airflow_provider_opsera.waiting.resumable import HAS_TASK_STATE_STORE
from tests.unit.pipeline_fakes import FakeStateStore, FakeTI, Killed, StoreThatFailsOn, make_context

from .support import BLANK, BROKEN, LONG_SOAK, runs_of
from .test_pipeline_operator_against_emulator import RUN_ROUTE, EmulatedTime, operator

pytestmark = pytest.mark.skipif(not HAS_TASK_STATE_STORE, reason="task_state_store: Airflow 3.3+")


def test_a_retry_follows_the_run_a_killed_try_started_and_never_noted(opsera_conn, task_log):
    killed = StoreThatFailsOn(f"opsera_run_count:{BLANK}", Killed())
    with pytest.raises(Killed):
        operator(EmulatedTime(opsera_conn), BLANK).execute(make_context(FakeTI(1, max_tries=1), killed))

    store = FakeStateStore(**killed.values)
    assert operator(EmulatedTime(opsera_conn), BLANK).execute(make_context(FakeTI(2, max_tries=1), store)) == 1
    assert opsera_conn.request_count(*RUN_ROUTE) == 1
    [run] = runs_of(opsera_conn.run_journal(), BLANK)
    assert (run["status"], run["stops"]) == ("success", [])
    assert "An earlier try started run 1" in task_log.text()
    assert "[deploy] Deployment complete" in task_log.text()


def test_a_try_that_cannot_note_its_run_leaves_it_to_the_last_try_which_follows_it(opsera_conn):
    refused = StoreThatFailsOn(f"opsera_run_count:{BROKEN}", RuntimeError("Task instance not found"))
    with pytest.raises(RuntimeError):
        operator(EmulatedTime(opsera_conn), BROKEN).execute(make_context(FakeTI(4, max_tries=4), refused))
    [run] = runs_of(opsera_conn.run_journal(), BROKEN)
    assert (run["active"], run["stops"]) == (True, [])

    store = FakeStateStore(**refused.values)
    with pytest.raises(AirflowException, match="Run 1 failed at step 'unit tests'"):
        operator(EmulatedTime(opsera_conn), BROKEN).execute(make_context(FakeTI(5, max_tries=4), store))
    assert opsera_conn.request_count(*RUN_ROUTE) == 1
    [run] = runs_of(opsera_conn.run_journal(), BROKEN)
    assert (run["status"], run["stops"]) == ("failed", [])


def test_the_last_try_stops_the_run_it_cannot_follow(opsera_conn):
    refused = StoreThatFailsOn(f"opsera_run_count:{LONG_SOAK}", RuntimeError("API server unreachable"))
    with pytest.raises(RuntimeError):
        operator(EmulatedTime(opsera_conn), LONG_SOAK).execute(make_context(FakeTI(2, max_tries=1), refused))
    opsera_conn.advance(600)  # the soft stop lets the current step finish
    [run] = runs_of(opsera_conn.run_journal(), LONG_SOAK)
    assert run["status"] == "stopped"
    assert [stop["by"] for stop in run["stops"]] == ["admin"]
