"""A deferred run's console lines in the trigger's log as the run goes on, each once in the task's log overall.

The trigger reads the run's logs only when the status answer changed (the run moved on) and once before it
fires; the event and an XCom say how far it showed them, so neither the resumed task nor a triggerer that
takes the wait over shows them again.
"""

from __future__ import annotations

import asyncio

import pytest

from airflow_provider_opsera.exceptions import OpseraServerError
from airflow_provider_opsera.operators import OpseraRunPipelineOperator
from airflow_provider_opsera.triggers import OpseraPipelineRunTrigger
from airflow_provider_opsera.waiting.events import CONSOLE_SHOWN_THROUGH
from tests.unit.conftest import BASE_URL, PIPELINE_ID
from tests.unit.pipeline_fakes import LOGS, FakeAsyncHook, FakeTI, console, make_context, newest_first

RECORDS = [console(1, "checkout", "Cloning"), console(2, "build", "Compiling..."), console(3, "deploy", "Uploading")]


class RunThatMovesOn(FakeAsyncHook):
    """Each status read is the next step of a script ``(status, message, records so far)``; the last repeats."""

    def __init__(self, *steps) -> None:
        super().__init__({"status": "running", "message": ""})
        self.steps = list(steps)
        self.lines_when_read: list[int] = []

    async def get_pipeline_run_status(self, pipeline_id: str, run_count: int):
        self.calls += 1
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, BaseException):
            raise step
        status, message, records = step
        self.records = newest_first(*records)
        return {"status": status, "message": message}


def make_trigger(hook, **kwargs) -> OpseraPipelineRunTrigger:
    trigger = OpseraPipelineRunTrigger(pipeline_id=PIPELINE_ID, run_count=3, poll_interval=30, **kwargs)
    trigger._hook = hook
    return trigger


def first_event(trigger) -> dict:
    async def main():
        return (await anext(trigger.run())).payload

    return asyncio.run(main())


def test_new_console_lines_are_logged_while_the_run_goes_on_each_once(trigger_clock, task_log):
    hook = RunThatMovesOn(
        ("running", "step 1 of 3", RECORDS[:1]),
        ("running", "step 1 of 3", RECORDS[:1]),  # the same answer: no log read
        ("running", "step 2 of 3", RECORDS[:2]),
        ("success", "Run 3 was successful.", RECORDS),
    )
    event = first_event(make_trigger(hook))
    assert event["status"] == "success"
    assert task_log.in_order("[checkout] Cloning", "[build] Compiling...", "[deploy] Uploading")
    assert [task_log.count(line) for line in ("Cloning", "Compiling...", "Uploading")] == [1, 1, 1]
    assert hook.log_reads == 3  # step 1, step 2, and once before firing; not on the unchanged answer
    assert event[CONSOLE_SHOWN_THROUGH] == '"000000000000000000000003"'


def test_the_resumed_task_prints_only_the_lines_the_trigger_did_not_show(opsera_hook_conn, task_log, requests_mock):
    requests_mock.post(LOGS, json=newest_first(*RECORDS, console(4, "deploy", "Done after the event")))
    op = OpseraRunPipelineOperator(task_id="deploy", pipeline_id=PIPELINE_ID, deferrable=True)
    event = {
        "status": "success",
        "message": "Run 3 was successful.",
        "pipeline_id": PIPELINE_ID,
        "run_count": 3,
        CONSOLE_SHOWN_THROUGH: '"000000000000000000000003"',
    }
    assert op.execute_complete(make_context(), event) == 3
    text = task_log.text()
    assert "Cloning" not in text and "Uploading" not in text
    assert task_log.count("[deploy] Done after the event") == 1
    assert "(4 console lines shown)" in text


def test_a_failed_run_resumed_after_live_lines_still_quotes_its_last_lines(opsera_hook_conn, requests_mock):
    from airflow_provider_opsera._compat import AirflowException

    requests_mock.post(LOGS, json=newest_first(*RECORDS))
    op = OpseraRunPipelineOperator(task_id="deploy", pipeline_id=PIPELINE_ID, deferrable=True)
    event = {
        "status": "failed",
        "message": "Run 3 failed.",
        "pipeline_id": PIPELINE_ID,
        "run_count": 3,
        CONSOLE_SHOWN_THROUGH: '"000000000000000000000003"',
    }
    with pytest.raises(AirflowException, match=r"(?s)Last console lines:\n\[checkout\] Cloning.*\[deploy\] Uploading"):
        op.execute_complete(make_context(FakeTI(max_tries=1)), event)


def test_a_triggerer_that_takes_the_wait_over_goes_on_after_what_the_first_one_showed(trigger_clock, task_log, monkeypatch):
    """The first copy showed the lines up to record 2 (kept in an XCom); the second shows only record 3."""
    from airflow.sdk.execution_time import task_runner

    from tests.unit.pipeline_fakes import FakeSupervisor
    from tests.unit.test_trigger_on_kill import task_instance

    class TriggererDies(BaseException):
        pass

    supervisor = FakeSupervisor({})
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", supervisor, raising=False)
    first = make_trigger(RunThatMovesOn(("running", "step 2 of 3", RECORDS[:2]), TriggererDies()))
    first.task_instance, first.trigger_id = task_instance(), 1
    with pytest.raises(TriggererDies):  # its second poll: the triggerer is killed
        first_event(first)
    assert supervisor.xcoms == {"opsera_console_shown_through": '"000000000000000000000002"'}

    second = make_trigger(RunThatMovesOn(("success", "Run 3 was successful.", RECORDS)))
    second.task_instance, second.trigger_id = task_instance(), 2
    monkeypatch.setattr("airflow_provider_opsera.triggers.polling.seconds_before_first_event", lambda: 0)
    event = first_event(second)
    assert [task_log.count(line) for line in ("Cloning", "Compiling...", "[deploy] Uploading")] == [1, 1, 1]
    assert event[CONSOLE_SHOWN_THROUGH] == '"000000000000000000000003"'


def test_without_fetch_logs_the_trigger_reads_no_logs(trigger_clock):
    hook = RunThatMovesOn(("running", "step 1", RECORDS[:1]), ("success", "done", RECORDS))
    event = first_event(make_trigger(hook, fetch_logs=False))
    assert hook.log_reads == 0 and CONSOLE_SHOWN_THROUGH not in event


def test_a_console_read_that_fails_never_ends_the_wait(trigger_clock, task_log):
    class LogsDown(RunThatMovesOn):
        async def get_pipeline_logs(self, *args, **kwargs):
            self.log_reads += 1
            raise OpseraServerError("server error 502", status_code=502)

    hook = LogsDown(("running", "step 1", []), ("running", "step 2", []), ("success", "done", []))
    assert first_event(make_trigger(hook))["status"] == "success"
    assert task_log.count("Could not read the run's console output from Opsera") == 1


@pytest.fixture
def opsera_hook_conn(set_conn, token):
    set_conn(host=BASE_URL, password=token)


def test_a_wait_asks_the_supervisor_nothing_until_its_run_has_console_lines_to_show(trigger_clock, monkeypatch):
    """The marker of an earlier copy is read once, before the first lines are shown: thousands of waits starting
    together do not queue reads at the triggerer's supervisor, which answers one at a time."""
    from airflow.sdk.execution_time import task_runner

    from tests.unit.pipeline_fakes import FakeSupervisor
    from tests.unit.test_trigger_on_kill import task_instance

    supervisor = FakeSupervisor({})
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", supervisor, raising=False)
    monkeypatch.setattr("airflow_provider_opsera.triggers.polling.seconds_before_first_event", lambda: 0)
    seen: list[list[str]] = []

    class QuietThenChatty(RunThatMovesOn):
        async def get_pipeline_run_status(self, pipeline_id: str, run_count: int):
            seen.append([type(message).__name__ for message in supervisor.requests])
            return await super().get_pipeline_run_status(pipeline_id, run_count)

    trigger = make_trigger(
        QuietThenChatty(("running", "queued", []), ("running", "step 1", RECORDS[:1]), ("success", "done", RECORDS))
    )
    trigger.task_instance, trigger.trigger_id = task_instance(), 1
    first_event(trigger)
    assert seen[:2] == [[], []], "nothing asked of the supervisor before the run had lines"
    kinds = [type(message).__name__ for message in supervisor.requests]
    assert kinds.count("GetXCom") == 1 and kinds.index("GetXCom") < kinds.index("SetXCom")
