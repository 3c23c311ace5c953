"""OpseraRunPipelineOperator over real sockets: the emulator's clock moves only when the task "sleeps"."""

from __future__ import annotations

import pytest

from airflow_provider_opsera._compat import AirflowException, AirflowFailException
from airflow_provider_opsera.hooks import OpseraHook
from airflow_provider_opsera.operators import OpseraRunPipelineOperator
from tests.unit.pipeline_fakes import FakeStateStore, FakeTI, make_context

from .support import APPROVAL, BLANK, BROKEN, CHATTY, LONG_SOAK

RUN_ROUTE = ("POST", "/api/v1/pipeline/run")


class EmulatedTime:
    """The task's sleep: moves the emulator's clock instead of waiting, and can act in between."""

    def __init__(self, emulator, on_sleep=None) -> None:
        self.emulator = emulator
        self.on_sleep = on_sleep
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.emulator.advance(seconds)
        if self.on_sleep:
            self.on_sleep(len(self.sleeps))

    def monotonic(self) -> float:
        return self.now


def operator(emulated: EmulatedTime, pipeline_id: str, **kwargs) -> OpseraRunPipelineOperator:
    kwargs = {"poll_interval": 10, "deferrable": False, **kwargs}
    op = OpseraRunPipelineOperator(task_id="run_pipeline", pipeline_id=pipeline_id, **kwargs)
    op._sleep, op._clock = emulated.sleep, emulated.monotonic
    op.hook._sleep = emulated.sleep  # the hook's retry waits move the clock too
    return op


def run_count(pipeline_id: str) -> int:
    return OpseraHook().get_pipeline(pipeline_id)["workflow"]["run_count"]


def test_success_with_every_console_line_once_in_order(opsera_conn, task_log):
    emulated = EmulatedTime(opsera_conn)
    ti = FakeTI()
    assert operator(emulated, BLANK).execute(make_context(ti)) == 1
    text = task_log.text()
    lines = ["[checkout] Cloning into 'web-portal'...", "[build] Compiled successfully", "[deploy] Deployment complete"]
    assert [task_log.count(line) for line in lines] == [1, 1, 1]
    assert task_log.in_order(*lines)
    assert "Blank Template's Run 1 was successful." in text
    assert ti.xcoms["opsera_pipeline_run_url"].endswith(f"/portal/workflow/details/{BLANK}/summary")
    assert 80 <= sum(emulated.sleeps) <= 100  # the run takes 90 emulated seconds


def test_failure_carries_opseras_message_and_the_failing_output(opsera_conn):
    with pytest.raises(AirflowException) as raised:
        operator(EmulatedTime(opsera_conn), BROKEN).execute(make_context())
    message = str(raised.value)
    assert not isinstance(raised.value, AirflowFailException)
    assert "Broken Build's Run 1 failed at step 'unit tests'" in message
    assert "[unit tests] FAILED tests/test_pricing.py::test_discount" in message


def test_a_run_stopped_by_a_person_fails_the_task(opsera_conn):
    def person_stops_it(sleeps: int) -> None:
        if sleeps == 2:
            OpseraHook().stop_pipeline(LONG_SOAK)  # as someone would in the portal

    with pytest.raises(AirflowFailException, match="stopped in Opsera"):
        operator(EmulatedTime(opsera_conn, person_stops_it), LONG_SOAK, poll_interval=60).execute(make_context())


def test_paused_at_the_approval_gate_then_approved(opsera_conn, task_log):
    def approve_later(sleeps: int) -> None:
        if sleeps == 5:
            opsera_conn.approve(APPROVAL)

    assert operator(EmulatedTime(opsera_conn, approve_later), APPROVAL).execute(make_context()) == 1
    text = task_log.text()
    assert task_log.count("waits for an approval in Opsera") == 1
    assert task_log.in_order("[build] Finished: SUCCESS", "waits for an approval in Opsera"), "the gate was said first"
    assert "[release] Release published" in text


def test_a_dropped_answer_to_run_still_means_exactly_one_run(opsera_conn, task_log):
    opsera_conn.set_fault(route="POST /api/v1/pipeline/run", kind="drop", count=1)
    assert operator(EmulatedTime(opsera_conn), BLANK).execute(make_context()) == 1
    assert opsera_conn.request_count(*RUN_ROUTE) == 1
    assert run_count(BLANK) == 1
    assert "Opsera started run 1" in task_log.text()


def test_status_outages_during_the_wait_are_ridden_out(opsera_conn):
    # more failures in a row than the hook retries: the wait loop rides out the rest
    opsera_conn.set_fault(route="POST /api/v1/pipeline/status", kind="status", status=503, count=8)
    assert operator(EmulatedTime(opsera_conn), BLANK).execute(make_context()) == 1
    assert opsera_conn.request_count("POST", "/api/v1/pipeline/status") > 8


def test_timeout_stops_the_run(opsera_conn):
    with pytest.raises(AirflowFailException, match="did not finish within 100 seconds"):
        operator(EmulatedTime(opsera_conn), LONG_SOAK, timeout=100).execute(make_context())
    opsera_conn.advance(600)  # the soft stop lets the current step finish
    assert OpseraHook().get_pipeline_run_status(LONG_SOAK, 1)["status"] == "stopped"


class KilledInTheWait(BaseException):
    """The try's process ends after on_kill (Airflow's SIGTERM, then SIGKILL)."""


def test_killing_the_task_stops_the_run(opsera_conn):
    op = operator(EmulatedTime(opsera_conn), LONG_SOAK)

    def kill(sleeps: int) -> None:
        op.on_kill()
        raise KilledInTheWait

    op._sleep = EmulatedTime(opsera_conn, kill).sleep
    with pytest.raises(KilledInTheWait):
        op.execute(make_context())
    opsera_conn.advance(600)
    assert OpseraHook().get_pipeline_run_status(LONG_SOAK, 1)["status"] == "stopped"


def test_a_retry_after_a_crash_reattaches_instead_of_starting_another(opsera_conn):
    store = FakeStateStore()
    # try 1 starts the run, then its worker dies (modelled by not waiting)
    operator(EmulatedTime(opsera_conn), BLANK, wait_for_completion=False).execute(make_context(FakeTI(1), store))
    assert operator(EmulatedTime(opsera_conn), BLANK).execute(make_context(FakeTI(2), store)) == 1
    assert opsera_conn.request_count(*RUN_ROUTE) == 1


def test_a_chatty_run_notes_the_log_cap(opsera_conn, task_log):
    op = operator(EmulatedTime(opsera_conn), CHATTY, poll_interval=120)
    assert op.execute(make_context()) == 1
    text = task_log.text()
    assert "at most 1000 log records" in text
    assert "chatty line 1500 of 1500" in text and task_log.count("chatty line 1500 of 1500") == 1
