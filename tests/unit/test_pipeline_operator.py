"""OpseraRunPipelineOperator against requests-mock: every outcome, in the worker and after deferral."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_opsera._compat import AirflowException, AirflowFailException
from airflow_provider_opsera.exceptions import OpseraAmbiguousRequestError
from airflow_provider_opsera.links import PIPELINE_RUN_URL_KEY
from airflow_provider_opsera.operators import OpseraRunPipelineOperator
from airflow_provider_opsera.triggers import OpseraPipelineRunTrigger
from tests.unit.conftest import BASE_URL, PIPELINE_ID
from tests.unit.pipeline_fakes import (
    LOGS,
    RUN,
    STATUS,
    STOP,
    SUMMARY,
    FakeClock,
    FakeTI,
    TaskDeferred,
    console,
    make_context,
    newest_first,
    status,
    summary,
)

EXECUTED = {"json": {"status": "executed", "message": "Run pipeline request submitted", "runCount": 3}}
STOPPED_OK = {"json": {"status": "success", "message": "The pipeline has been stopped."}}
LINES = [console(1, "checkout", "Cloning"), console(2, "build", "Compiling..."), console(3, "deploy", "Uploading")]


@pytest.fixture
def opsera(set_conn, token, requests_mock):
    set_conn(host=BASE_URL, password=token, extra={"portal_url": "https://portal.opsera.test"})
    requests_mock.post(SUMMARY, [summary(2), summary(3)])  # before the run request, then after it
    requests_mock.post(RUN, [EXECUTED])
    requests_mock.post(STOP, [STOPPED_OK])
    requests_mock.post(LOGS, json=[])
    return requests_mock


@pytest.fixture
def clock():
    return FakeClock()


def make_operator(clock: FakeClock, **kwargs) -> OpseraRunPipelineOperator:
    kwargs = {"pipeline_id": PIPELINE_ID, "poll_interval": 30, "deferrable": False, **kwargs}
    op = OpseraRunPipelineOperator(task_id="run_pipeline", **kwargs)
    op._sleep = clock.sleep
    op._clock = clock.time
    op.hook._sleep = lambda seconds: None  # the hook's retries, too, wait on nothing
    return op


def calls(mock, url: str) -> int:
    return sum(1 for request in mock.request_history if request.url == url)


def growing_logs(*stages: list[dict]) -> list[dict]:
    """One logs answer per poll, each newest first, each holding what the run printed so far."""
    return [{"json": newest_first(*stage)} for stage in stages]


# -- construction --


def test_no_request_and_no_hook_at_construction(requests_mock):
    op = OpseraRunPipelineOperator(task_id="t", pipeline_id="{{ params.pipeline_id }}", poll_interval="{{ params.p }}")
    assert not requests_mock.called
    assert "hook" not in op.__dict__
    assert set(op.template_fields) >= {"pipeline_id", "poll_interval", "timeout", "opsera_conn_id"}
    assert op.operator_extra_links[0].name == "Opsera pipeline run"


def test_default_deferrable_follows_airflows_setting(monkeypatch):
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert OpseraRunPipelineOperator(task_id="t", pipeline_id=PIPELINE_ID).deferrable is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert OpseraRunPipelineOperator(task_id="t", pipeline_id=PIPELINE_ID).deferrable is False


def test_bad_numbers_fail_at_parse_time():
    with pytest.raises(ValueError, match="poll_interval"):
        OpseraRunPipelineOperator(task_id="t", pipeline_id=PIPELINE_ID, poll_interval=-1)


# -- waiting in the worker --


def test_success_streams_console_lines_in_order_once(opsera, clock, task_log):
    opsera.post(STATUS, [status("running"), status("running"), status("success", "Run 3 was successful.")])
    opsera.post(LOGS, growing_logs(LINES[:1], LINES[:2], LINES))
    ti = FakeTI()
    assert make_operator(clock).execute(make_context(ti)) == 3
    text = task_log.text()
    assert task_log.in_order("[checkout] Cloning", "[build] Compiling...", "[deploy] Uploading")
    assert task_log.count("[build] Compiling...") == 1
    assert "run 3 succeeded (3 console lines shown): Run 3 was successful." in text
    assert ti.xcoms[PIPELINE_RUN_URL_KEY] == f"https://portal.opsera.test/workflow/details/{PIPELINE_ID}/summary"
    assert clock.sleeps == [30, 30]
    assert opsera.request_history[1].json() == {"pipelineId": PIPELINE_ID}  # summary, then run
    assert calls(opsera, LOGS) == 3 and calls(opsera, STOP) == 0


def test_a_failed_run_fails_the_task_with_opseras_message_and_the_last_lines(opsera, clock):
    opsera.post(STATUS, [status("running"), status("failed", "Run 3 failed at step 'build'.")])
    opsera.post(LOGS, growing_logs(LINES[:1], LINES[:2]))
    with pytest.raises(AirflowException) as raised:
        make_operator(clock).execute(make_context())
    assert not isinstance(raised.value, AirflowFailException)  # a retry may do better
    assert "Run 3 failed at step 'build'." in str(raised.value)
    assert str(raised.value).endswith("Last console lines:\n[checkout] Cloning\n[build] Compiling...")


def test_the_last_lines_are_read_even_without_fetch_logs(opsera, clock, task_log):
    opsera.post(STATUS, [status("failed", "failed at 'build'")])
    opsera.post(LOGS, growing_logs(LINES[:2]))
    with pytest.raises(AirflowException, match=r"Last console lines:\n\[checkout\] Cloning"):
        make_operator(clock, fetch_logs=False).execute(make_context())
    assert "[build] Compiling..." not in task_log.text().split("Last console lines")[0]
    assert calls(opsera, LOGS) == 1


def test_fetch_logs_off_reads_no_logs_on_success(opsera, clock):
    opsera.post(STATUS, [status("running"), status("success")])
    make_operator(clock, fetch_logs=False).execute(make_context())
    assert calls(opsera, LOGS) == 0


def test_a_stopped_run_fails_without_retry(opsera, clock):
    opsera.post(STATUS, [status("stopped", "Run 3 was stopped.")])
    with pytest.raises(AirflowFailException, match="was stopped in Opsera"):
        make_operator(clock).execute(make_context())


def test_a_paused_run_is_waited_through_and_logged_once_per_pause(opsera, clock, task_log):
    paused = status("paused", "waiting for approval")
    opsera.post(STATUS, [paused, paused, paused, status("running"), paused, status("success")])
    assert make_operator(clock).execute(make_context()) == 3
    assert task_log.count("waits for an approval in Opsera") == 2
    assert task_log.count("is running again") == 1


def test_an_unknown_status_counts_as_running_and_is_logged_once(opsera, clock, task_log):
    opsera.post(STATUS, [status("spinning"), status("spinning"), status("success")])
    assert make_operator(clock).execute(make_context()) == 3
    assert task_log.count("'spinning'") == 1


def test_transient_status_errors_are_ridden_out(opsera, clock):
    opsera.post(
        STATUS,
        [status("running"), {"status_code": 503, "json": {"message": "down"}}, status("success")],
    )
    op = make_operator(clock)
    op.hook.retry_policy = type(op.hook.retry_policy)(max_attempts=1)  # every failure reaches the wait loop
    assert op.execute(make_context()) == 3


def test_a_refused_run_fails_with_opseras_message(opsera, clock):
    opsera.post(SUMMARY, [summary(2)])
    opsera.post(RUN, json={"status": "failed", "message": "Pipeline Blank Template has no steps."})
    opsera.post(STATUS, [status("success")])  # run 2 has ended: nothing to wait out
    with pytest.raises(AirflowException, match="did not start pipeline .*: Pipeline Blank Template has no steps.$"):
        make_operator(clock).execute(make_context())
    assert calls(opsera, RUN) == 1 and clock.sleeps == []


BUSY = {"json": {"status": "failed", "message": "Pipeline Blank Template is currently running (run 2)."}}


def test_a_run_refused_while_another_is_in_progress_is_asked_again_until_opsera_accepts(opsera, clock, task_log):
    opsera.post(SUMMARY, [summary(2), summary(2), summary(2), summary(3)])
    opsera.post(RUN, [BUSY, BUSY, EXECUTED])
    opsera.post(STATUS, [status("running"), status("running"), status("success")])
    assert make_operator(clock, poll_interval=20).execute(make_context()) == 3
    assert calls(opsera, RUN) == 3 and calls(opsera, STOP) == 0
    assert clock.sleeps[:2] == [20, 20]
    assert "while its run 2 is in_progress" in task_log.text()


def test_a_run_refused_for_longer_than_start_timeout_fails_naming_the_run_in_the_way(opsera, clock):
    opsera.post(SUMMARY, [summary(2)])
    opsera.post(RUN, [BUSY])
    opsera.post(STATUS, [status("paused")])
    with pytest.raises(AirflowException, match=r"currently running \(run 2\)\. \(asked for 50 s: start_timeout\)"):
        make_operator(clock, poll_interval=20, start_timeout=50).execute(make_context())
    assert clock.sleeps == [20, 20, 10] and calls(opsera, STOP) == 0


def test_not_waiting_returns_the_run_count_at_once(opsera, clock):
    assert make_operator(clock, wait_for_completion=False).execute(make_context()) == 3
    assert calls(opsera, STATUS) == 0


def test_templated_numbers_are_read_as_numbers(opsera, clock):
    opsera.post(STATUS, [status("running"), status("success")])
    op = make_operator(clock, poll_interval="1.5", timeout="120")
    assert op.execute(make_context()) == 3
    assert clock.sleeps == [1.5]


# -- timeout and kill: no orphaned runs --


def test_timeout_stops_the_run_and_fails(opsera, clock):
    opsera.post(STATUS, [status("running")])
    with pytest.raises(AirflowFailException, match="did not finish within 70 seconds.*asked to stop"):
        make_operator(clock, timeout=70).execute(make_context())
    assert clock.sleeps == [30, 30, 10]
    assert calls(opsera, STOP) == 1


def test_timeout_without_stop_on_kill_leaves_the_run(opsera, clock):
    opsera.post(STATUS, [status("running")])
    with pytest.raises(AirflowFailException, match="left running"):
        make_operator(clock, timeout=30, stop_on_kill=False).execute(make_context())
    assert calls(opsera, STOP) == 0


def test_a_failed_stop_never_masks_the_timeout(opsera, clock, task_log):
    opsera.post(STATUS, [status("running")])
    opsera.post(STOP, status_code=500, json={"message": "boom"})
    with pytest.raises(AirflowFailException, match="did not finish within 30 seconds.*Stopping the run failed"):
        make_operator(clock, timeout=30).execute(make_context())
    assert "Could not stop" in task_log.text()


def test_a_timeout_after_someone_else_started_the_next_run_stops_nothing(opsera, clock, task_log):
    """Run 3 ended between two polls and a person started run 4: Opsera's stop would hit run 4."""
    opsera.post(SUMMARY, [summary(2), summary(4)])
    opsera.post(STATUS, [status("running")])
    with pytest.raises(AirflowFailException, match="No stop was sent: run 4 is the pipeline's latest now, not run 3"):
        make_operator(clock, timeout=30).execute(make_context())
    assert calls(opsera, STOP) == 0


class KilledInTheWait(BaseException):
    """The try's process ends after on_kill (Airflow's SIGTERM, then SIGKILL)."""


def kill_at_first_sleep(op, clock):
    def sleep(seconds):
        op.on_kill()
        raise KilledInTheWait

    op._sleep = sleep


def test_on_kill_stops_the_run_being_waited_for(opsera, clock):
    opsera.post(STATUS, [status("running")])
    op = make_operator(clock)
    kill_at_first_sleep(op, clock)
    with pytest.raises(KilledInTheWait):
        op.execute(make_context())
    assert calls(opsera, STOP) == 1
    assert opsera.request_history[-1].json() == {"pipelineId": PIPELINE_ID}


@pytest.mark.parametrize(
    "stop_on_kill, run_count", [(False, 3), (True, None)], ids=["stop_on_kill off", "no run started"]
)
def test_on_kill_stops_nothing_it_should_not(opsera, clock, stop_on_kill, run_count):
    op = make_operator(clock, stop_on_kill=stop_on_kill)
    op.run_count = run_count
    op.on_kill()
    assert calls(opsera, STOP) == 0


def test_on_kill_after_the_run_ended_stops_nothing(opsera, clock):
    opsera.post(STATUS, [status("success")])
    op = make_operator(clock)
    op.execute(make_context())
    op.on_kill()
    assert calls(opsera, STOP) == 0


def test_a_failed_stop_on_kill_does_not_raise(opsera, clock):
    opsera.post(STOP, exc=requests.exceptions.ConnectionError("refused"))
    op = make_operator(clock)
    op.run_count = 3
    op.on_kill()


# -- deferred --


def test_deferrable_hands_the_wait_to_the_trigger(opsera, clock):
    op = make_operator(clock, deferrable=True, poll_interval=15, timeout=600)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(make_context())
    trigger = deferred.value.trigger
    assert isinstance(trigger, OpseraPipelineRunTrigger)
    assert deferred.value.method_name == "execute_complete"
    assert (trigger.pipeline_id, trigger.run_count, trigger.poll_interval, trigger.timeout) == (PIPELINE_ID, 3, 15, 600)
    assert calls(opsera, STATUS) == 0  # the trigger reads the status; the worker is free at once


def event(status_: str, message: str = "from Opsera", run_count: int = 3) -> dict:
    return {"status": status_, "message": message, "pipeline_id": PIPELINE_ID, "run_count": run_count}


def test_resume_on_success_prints_the_logs_once_and_returns_the_run_count(opsera, clock, task_log):
    opsera.post(LOGS, growing_logs(LINES))
    # a fresh instance: the resume method must not rely on what execute() set
    op = make_operator(clock, deferrable=True, pipeline_id="{{ params.pipeline_id }}")
    assert op.execute_complete(make_context(), event("success", "Run 3 was successful.")) == 3
    for line in ("[checkout] Cloning", "[build] Compiling...", "[deploy] Uploading"):
        assert task_log.count(line) == 1
    assert calls(opsera, LOGS) == 1 and opsera.request_history[-1].json()["runCount"] == 3


def test_resume_on_failure_raises_with_the_last_lines(opsera, clock):
    opsera.post(LOGS, growing_logs(LINES))
    with pytest.raises(AirflowException, match=r"(?s)failed: Run 3 failed.*\[deploy\] Uploading"):
        make_operator(clock, deferrable=True).execute_complete(make_context(), event("failed", "Run 3 failed."))


def test_resume_on_stopped_fails_without_retry(opsera, clock):
    with pytest.raises(AirflowFailException):
        make_operator(clock, deferrable=True).execute_complete(make_context(), event("stopped"))


def test_resume_on_timeout_stops_the_run_then_fails(opsera, clock):
    opsera.post(SUMMARY, [summary(3)])
    opsera.post(STATUS, [status("running")])
    with pytest.raises(AirflowFailException, match="did not finish.*asked to stop"):
        make_operator(clock, deferrable=True).execute_complete(
            make_context(), event("timeout", "Opsera pipeline run 3 did not finish within 600 seconds.")
        )
    assert calls(opsera, STOP) == 1


def test_resume_on_error_fails_and_leaves_the_run_for_a_retry(opsera, clock):
    opsera.post(SUMMARY, [summary(3)])
    with pytest.raises(AirflowException, match="Could not read the status"):
        make_operator(clock, deferrable=True).execute_complete(
            make_context(FakeTI(try_number=1, max_tries=1)), event("error", "Could not read the status of run 3: 401")
        )
    assert calls(opsera, STOP) == 0


def test_resume_on_error_on_the_last_try_stops_the_run(opsera, clock):
    """No try follows the run after this one: it is stopped rather than left running unwatched."""
    opsera.post(SUMMARY, [summary(3)])
    opsera.post(STATUS, [status("running")])
    with pytest.raises(AirflowException, match="Could not read the status"):
        make_operator(clock, deferrable=True).execute_complete(
            make_context(FakeTI(try_number=2, max_tries=1)), event("error", "Could not read the status of run 3: 401")
        )
    assert calls(opsera, STOP) == 1


# -- exactly one run per task --


def test_a_lost_answer_to_run_attaches_to_the_run_that_started(opsera, clock, task_log):
    opsera.post(SUMMARY, [summary(2), summary(3)])
    opsera.post(RUN, exc=requests.exceptions.ConnectionError("connection reset by peer"))
    opsera.post(STATUS, [status("success")])
    assert make_operator(clock).execute(make_context()) == 3
    assert calls(opsera, RUN) == 1  # never resent
    assert "Opsera started run 3" in task_log.text()


def test_a_lost_answer_with_no_new_run_fails_without_resending(opsera, clock):
    opsera.post(SUMMARY, [summary(2), summary(2)])
    opsera.post(RUN, status_code=502, text="<html>Bad Gateway</html>")
    with pytest.raises(OpseraAmbiguousRequestError):
        make_operator(clock).execute(make_context())
    assert calls(opsera, RUN) == 1 and calls(opsera, STATUS) == 0


def test_a_lost_answer_and_an_unreadable_summary_fail_saying_both(opsera, clock):
    opsera.post(SUMMARY, [summary(2), {"status_code": 404, "json": {"message": "gone"}}])
    opsera.post(RUN, exc=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(AirflowException, match="may or may not.*reading the pipeline's summary.*failed too"):
        make_operator(clock).execute(make_context())
