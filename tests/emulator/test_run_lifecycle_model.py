"""Interleavings of a pipeline task with Airflow, a person on the same pipeline and lost answers.

Each test is an interleaving a model of the run lifecycle found, shrunk, against the emulator over real
sockets; its name says the promise of the README's table "How a pipeline task behaves" it keeps.
"""

from __future__ import annotations

import pytest

from airflow_provider_opsera._compat import AirflowException
from tests.unit.pipeline_fakes import FakeStateStore, FakeTI, Killed, make_context

from .support import APPROVAL, BLANK, Client, runs_of
from .test_pipeline_operator_against_emulator import EmulatedTime, operator


def journal(emulator, pipeline_id: str) -> list[tuple[int, str, str, list[str]]]:
    """Each run of the pipeline: its count, who started it, its status, and who stopped it."""
    return [
        (run["run_count"], run["started_by_token"], run["status"], [stop["by"] for stop in run["stops"]])
        for run in runs_of(emulator.run_journal(), pipeline_id)
    ]


def test_P3_a_stop_whose_answer_was_lost_is_not_resent_to_the_run_someone_started_since(opsera_conn):
    """The task's run waits at an approval gate until ``timeout``; the stop reaches Opsera (a paused run stops at
    once) but its answer is lost; while the client would wait to send it again, a person starts the next run."""
    person = Client(opsera_conn.url, opsera_conn.mint_token("person"))
    op = operator(EmulatedTime(opsera_conn), APPROVAL, poll_interval=30, timeout=100)

    def person_starts_a_run(seconds: float) -> None:
        opsera_conn.advance(seconds)
        person.run(APPROVAL)

    op.hook._sleep = person_starts_a_run
    opsera_conn.set_fault(route="POST /api/v1/pipeline/stop", kind="drop", count=1)
    with pytest.raises(AirflowException, match="did not finish within 100 seconds"):
        op.execute(make_context())
    assert opsera_conn.request_count("POST", "/api/v1/pipeline/stop") == 1
    assert journal(opsera_conn, APPROVAL) == [(1, "admin", "stopped", ["admin"])]


def test_P1_a_try_that_died_waiting_out_someone_elses_run_leaves_no_request_for_a_clear_to_take_for_its_own(
    opsera_conn,
):
    """A person's run is in progress: the task's request is refused and it waits; it is marked failed in that wait.
    A person starts the next run, then the task is cleared: the next run is theirs, not the task's."""
    person = Client(opsera_conn.url, opsera_conn.mint_token("person"))
    person.run(BLANK)
    store = FakeStateStore()

    def marked_failed(sleeps: int) -> None:
        raise Killed

    with pytest.raises(Killed):
        operator(EmulatedTime(opsera_conn, marked_failed), BLANK, poll_interval=30).execute(
            make_context(FakeTI(1, max_tries=0), store)
        )
    opsera_conn.advance(90)
    person.run(BLANK)
    cleared = make_context(FakeTI(2, max_tries=1), store, clear_number=1)
    assert operator(EmulatedTime(opsera_conn), BLANK, poll_interval=30).execute(cleared) == 3
    assert journal(opsera_conn, BLANK) == [
        (1, "person", "success", []),
        (2, "person", "success", []),
        (3, "admin", "success", []),
    ]


def test_S3_a_lost_answer_after_waiting_out_someone_elses_run_is_settled_against_the_count_read_after_the_wait(
    opsera_conn,
):
    """The task waits out a person's run; while it sleeps, that run ends and the person starts the next. The task's
    next request is refused and its answer lost: the person's new run is not the task's."""
    person = Client(opsera_conn.url, opsera_conn.mint_token("person"))
    person.run(BLANK)

    def person_starts_the_next_run(sleeps: int) -> None:
        if sleeps == 2:  # 120 s: the person's run 1 ended at 90 s
            person.run(BLANK)
            opsera_conn.set_fault(route="POST /api/v1/pipeline/run", kind="drop", count=1)

    op = operator(EmulatedTime(opsera_conn, person_starts_the_next_run), BLANK, poll_interval=60)
    with pytest.raises(AirflowException, match="may or may not have been carried out"):
        op.execute(make_context(FakeTI(1, max_tries=1)))
    opsera_conn.advance(90)
    assert journal(opsera_conn, BLANK) == [(1, "person", "success", []), (2, "person", "success", [])]
    assert len(opsera_conn.run_journal()["refused_run_requests"]) == 3


def test_K8_a_try_taken_over_while_it_notes_its_run_leaves_the_run_to_its_retry(opsera_conn):
    """Airflow gives up on a try whose heartbeat was lost and retries it; the try is terminated while it writes the
    note of the run it just started (on_kill cannot read the task's state then, nor note a stop)."""
    op = operator(EmulatedTime(opsera_conn), BLANK)
    store = FakeStateStore()
    write = store.set

    def terminated_while_noting_the_run(key: str, value: dict, **kwargs) -> None:
        if "run" in value:
            op.on_kill()
            raise Killed
        write(key, value, **kwargs)

    store.set = terminated_while_noting_the_run
    with pytest.raises(Killed):
        op.execute(make_context(FakeTI(1, max_tries=1, state="up_for_retry"), store))
    retry = FakeStateStore(**store.values)
    assert operator(EmulatedTime(opsera_conn), BLANK).execute(make_context(FakeTI(2, max_tries=1), retry)) == 1
    assert journal(opsera_conn, BLANK) == [(1, "admin", "success", [])]
