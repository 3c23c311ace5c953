"""The run lifecycle over real sockets: the emulator's run journal says who started and stopped each run.

Each test names the row of the README's table "How a pipeline task behaves" it shows. ``task_state_store``
is the fake one Airflow's store stands for, shared by the tries as Airflow shares it; a Clear is a new
``max_tries`` and one more ``clear_number``, as Airflow sets them.
"""

from __future__ import annotations

import pytest

from airflow_provider_opsera._compat import AirflowException
from airflow_provider_opsera.hooks import OpseraHook
from tests.unit.pipeline_fakes import FakeStateStore, FakeTI, Killed, make_context, store_failing_on_the_run_note

from .support import BLANK, BROKEN, LONG_SOAK, Client, runs_of
from .test_pipeline_operator_against_emulator import RUN_ROUTE, EmulatedTime, KilledInTheWait, operator


def journal(emulator, pipeline_id: str) -> list[dict]:
    return runs_of(emulator.run_journal(), pipeline_id)


def stoppers(run: dict) -> list[str]:
    return [stop["by"] for stop in run["stops"]]


def test_R7_a_retry_follows_the_run_a_killed_try_started_and_never_noted(opsera_conn, task_log):
    store = store_failing_on_the_run_note(Killed())
    with pytest.raises(Killed):
        operator(EmulatedTime(opsera_conn), BLANK).execute(make_context(FakeTI(1, max_tries=1), store))

    retry = FakeStateStore(**store.values)
    assert operator(EmulatedTime(opsera_conn), BLANK).execute(make_context(FakeTI(2, max_tries=1), retry)) == 1
    assert opsera_conn.request_count(*RUN_ROUTE) == 1
    [run] = journal(opsera_conn, BLANK)
    assert (run["status"], run["stops"]) == ("success", [])
    assert "an earlier try started run 1 and ended before noting it" in task_log.text()
    assert "[deploy] Deployment complete" in task_log.text()


def test_K6_a_try_that_cannot_note_its_run_leaves_it_to_the_last_try_which_follows_it(opsera_conn):
    refused = store_failing_on_the_run_note(RuntimeError("Task instance not found"))
    with pytest.raises(RuntimeError):
        operator(EmulatedTime(opsera_conn), BROKEN).execute(make_context(FakeTI(4, max_tries=4), refused))
    [run] = journal(opsera_conn, BROKEN)
    assert (run["active"], run["stops"]) == (True, [])

    store = FakeStateStore(**refused.values)
    with pytest.raises(AirflowException, match="Run 1 failed at step 'unit tests'"):
        operator(EmulatedTime(opsera_conn), BROKEN).execute(make_context(FakeTI(5, max_tries=4), store))
    assert opsera_conn.request_count(*RUN_ROUTE) == 1
    [run] = journal(opsera_conn, BROKEN)
    assert (run["status"], run["stops"]) == ("failed", [])


def test_K7_the_last_try_stops_the_run_it_cannot_follow(opsera_conn):
    refused = store_failing_on_the_run_note(RuntimeError("API server unreachable"))
    with pytest.raises(RuntimeError):
        operator(EmulatedTime(opsera_conn), LONG_SOAK).execute(make_context(FakeTI(2, max_tries=1), refused))
    opsera_conn.advance(600)  # the soft stop lets the current step finish
    [run] = journal(opsera_conn, LONG_SOAK)
    assert run["status"] == "stopped" and stoppers(run) == ["admin"]


def test_C1_a_clear_after_success_deploys_again(opsera_conn):
    store = FakeStateStore()
    assert operator(EmulatedTime(opsera_conn), BLANK).execute(make_context(FakeTI(1, max_tries=0), store)) == 1
    # the person clears the succeeded task: Airflow 3.3 keeps its task state
    cleared = make_context(FakeTI(2, max_tries=1), store, clear_number=1)
    assert operator(EmulatedTime(opsera_conn), BLANK).execute(cleared) == 2
    assert [(run["run_count"], run["status"]) for run in journal(opsera_conn, BLANK)] == [(1, "success"), (2, "success")]


def test_C4_a_clear_while_waiting_in_the_worker_stops_the_old_run_and_the_new_try_starts_its_own(opsera_conn):
    store = FakeStateStore()
    old = operator(EmulatedTime(opsera_conn), LONG_SOAK, poll_interval=60)

    def cleared(sleeps: int) -> None:
        if sleeps == 2:
            old.on_kill()  # Airflow terminates the cleared try; its state reads "restarting"
            raise KilledInTheWait

    old._sleep = EmulatedTime(opsera_conn, cleared).sleep
    with pytest.raises(KilledInTheWait):
        old.execute(make_context(FakeTI(1, max_tries=0, state="restarting"), store))

    new = operator(EmulatedTime(opsera_conn), LONG_SOAK, poll_interval=60)
    assert new.execute(make_context(FakeTI(2, max_tries=0), store, clear_number=1)) == 2
    first, second = journal(opsera_conn, LONG_SOAK)
    assert first["status"] == "stopped" and set(stoppers(first)) == {"admin"}
    assert (second["status"], second["stops"]) == ("success", [])
    assert opsera_conn.run_journal()["refused_run_requests"], "the new run was asked for while the old one ended"


def test_P3_a_person_starts_the_next_run_then_the_task_is_marked_failed_the_persons_run_goes_on(opsera_conn, task_log):
    """Worker wait, poll_interval=60: run 1 ends, a person starts run 2, the task is marked failed."""
    person = Client(opsera_conn.url, opsera_conn.mint_token("person"))
    op = operator(EmulatedTime(opsera_conn), BLANK, poll_interval=60)

    def person_then_mark_failed(sleeps: int) -> None:
        if sleeps == 2:  # 120 s: run 1 ended at 90 s, the task has not read it yet
            assert person.run(BLANK)["runCount"] == 2
            op.on_kill()
            raise KilledInTheWait

    op._sleep = EmulatedTime(opsera_conn, person_then_mark_failed).sleep
    with pytest.raises(KilledInTheWait):
        op.execute(make_context(FakeTI(state="failed")))
    runs = journal(opsera_conn, BLANK)
    assert [(run["run_count"], run["started_by_token"], run["stops"]) for run in runs] == [
        (1, "admin", []),
        (2, "person", []),
    ]
    assert "run 2 is the pipeline's latest now, not run 1" in task_log.text()


def test_S2_P1_a_run_someone_else_started_is_waited_out_never_stopped(opsera_conn, task_log):
    person = Client(opsera_conn.url, opsera_conn.mint_token("person"))
    person.run(BLANK)
    assert operator(EmulatedTime(opsera_conn), BLANK, poll_interval=30).execute(make_context()) == 2
    first, second = journal(opsera_conn, BLANK)
    assert (first["started_by_token"], first["status"], first["stops"]) == ("person", "success", [])
    assert (second["started_by_token"], second["status"]) == ("admin", "success")
    assert "while its run 1 is in_progress" in task_log.text()


def _killed_while_it_waits_out_a_persons_run(opsera_conn, person: Client, ti: FakeTI, store: FakeStateStore) -> None:
    """The try is refused a run while the person's run 1 goes on (S2) and ends in its wait; run 1 ends and the
    person starts run 2 before the next try of the task begins."""
    assert person.run(BLANK)["runCount"] == 1

    def killed(sleeps: int) -> None:
        raise Killed

    with pytest.raises(Killed):
        operator(EmulatedTime(opsera_conn, killed), BLANK, poll_interval=30).execute(make_context(ti, store))
    opsera_conn.advance(120)
    assert person.run(BLANK)["runCount"] == 2


def test_S2_R7_a_retry_after_a_try_killed_while_it_waited_out_a_persons_run_starts_its_own(opsera_conn):
    person, store = Client(opsera_conn.url, opsera_conn.mint_token("person")), FakeStateStore()
    _killed_while_it_waits_out_a_persons_run(opsera_conn, person, FakeTI(1, max_tries=1), store)

    assert operator(EmulatedTime(opsera_conn), BLANK, poll_interval=30).execute(make_context(FakeTI(2, 1), store)) == 3
    runs = journal(opsera_conn, BLANK)
    assert [(run["started_by_token"], run["status"], run["stops"]) for run in runs] == [
        ("person", "success", []), ("person", "success", []), ("admin", "success", [])
    ]


def test_S2_C4_a_clear_while_the_task_waited_out_a_persons_run_never_stops_the_persons_next_one(opsera_conn):
    person, store = Client(opsera_conn.url, opsera_conn.mint_token("person")), FakeStateStore()
    _killed_while_it_waits_out_a_persons_run(opsera_conn, person, FakeTI(1, max_tries=0, state="restarting"), store)

    cleared = make_context(FakeTI(2, max_tries=0), store, clear_number=1)
    assert operator(EmulatedTime(opsera_conn), BLANK, poll_interval=30).execute(cleared) == 3
    runs = journal(opsera_conn, BLANK)
    assert [(run["started_by_token"], run["status"], run["stops"]) for run in runs] == [
        ("person", "success", []), ("person", "success", []), ("admin", "success", [])
    ]


def test_U1_an_unknown_status_ends_the_wait_after_its_grace_and_the_run_is_not_stopped(opsera_conn):
    opsera_conn.deviate(statuses={"running": "deploying"})
    with pytest.raises(AirflowException, match="'deploying'.*'status_map' extra"):
        operator(EmulatedTime(opsera_conn), LONG_SOAK, poll_interval=120).execute(make_context())
    [run] = journal(opsera_conn, LONG_SOAK)
    assert (run["active"], run["stops"]) == (True, [])


def test_U1_a_tenants_statuses_mapped_in_the_connection_end_the_task_as_they_mean(opsera_conn, monkeypatch):
    import json

    opsera_conn.deviate(statuses={"running": "deploying", "success": "completed"})
    connection = opsera_conn.connection_dict()
    connection["extra"] = {**connection.get("extra", {}), "status_map": {"deploying": "running", "completed": "success"}}
    monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", json.dumps(connection))
    assert operator(EmulatedTime(opsera_conn), BLANK).execute(make_context()) == 1


def test_S3_a_lost_answer_on_a_tenant_whose_summary_has_no_run_count_starts_no_second_run(opsera_conn):
    from airflow_provider_opsera._compat import AirflowFailException

    opsera_conn.deviate(rename={"pipeline": {"workflow.run_count": "runCount"}})
    opsera_conn.set_fault(route="POST /api/v1/pipeline/run", kind="drop", count=1)
    store = FakeStateStore()
    with pytest.raises(AirflowFailException, match="whether a run started cannot be told"):
        operator(EmulatedTime(opsera_conn), BLANK).execute(make_context(FakeTI(1, max_tries=1), store))
    with pytest.raises(AirflowFailException, match="whether a run started is unknown"):
        operator(EmulatedTime(opsera_conn), BLANK).execute(make_context(FakeTI(2, max_tries=1), store))
    assert len(journal(opsera_conn, BLANK)) == 1 and opsera_conn.request_count(*RUN_ROUTE) == 1
    assert OpseraHook().get_pipeline_run_status(BLANK, 1)["status"] in ("running", "success")
