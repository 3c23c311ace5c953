"""A trigger's on_kill stops the run when a person ended the task (not when they marked it success), never on a stale
copy of the trigger, and only while the run is still the pipeline's latest and in progress."""

from __future__ import annotations

import asyncio
import importlib
import uuid

import pytest

from airflow_provider_opsera.exceptions import OpseraServerError
from airflow_provider_opsera.triggers import OpseraPipelineRunTrigger, OpseraTaskTrigger
from airflow_provider_opsera.triggers.polling import OpseraPollingTrigger
from tests.unit.conftest import PIPELINE_ID, TASK_ID
from tests.unit.pipeline_fakes import FakeAsyncHook, FakeSupervisor

pytest.importorskip("airflow.sdk.execution_time.comms", reason="the Task SDK: Airflow 3")

RUN_ID = "manual__2026-12-01T00:00:00+00:00"
RUNNING = {"status": "running", "message": "step 2"}


@pytest.fixture
def supervisor(monkeypatch):
    """Install a fake supervisor channel; answer ``{"wait": state}`` unless told otherwise."""
    from airflow.sdk.execution_time import task_runner

    def install(states=None, **kwargs) -> FakeSupervisor:
        fake = FakeSupervisor({RUN_ID: states} if isinstance(states, dict) else states, **kwargs)
        monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", fake, raising=False)
        return fake

    return install


def task_instance(map_index: int = -1):
    """What the triggerer gives a trigger when it has no serialised DAG at hand (Airflow 3)."""
    from airflow.executors.workloads.task import TaskInstanceDTO

    return TaskInstanceDTO(
        id=uuid.uuid4(),
        dag_version_id=uuid.uuid4(),
        dag_id="deploy",
        run_id=RUN_ID,
        task_id="wait",
        map_index=map_index,
        try_number=1,
        pool_slots=1,
        priority_weight=1,
    )


def make_trigger(hook: FakeAsyncHook, ti=None) -> OpseraPipelineRunTrigger:
    trigger = OpseraPipelineRunTrigger(pipeline_id=PIPELINE_ID, run_count=3, poll_interval=30)
    trigger._hook = hook
    trigger.task_instance = ti if ti is not None else task_instance()
    return trigger


@pytest.mark.parametrize("state", ["failed", None, "restarting", "upstream_failed"])
def test_a_task_a_person_marked_failed_or_cleared_stops_its_run(supervisor, state):
    supervisor({"wait": state})
    hook = FakeAsyncHook(RUNNING)
    asyncio.run(make_trigger(hook).on_kill())
    assert hook.stops == 1


def test_a_task_marked_success_leaves_its_run_to_finish(supervisor, task_log):
    supervisor({"wait": "success"})
    hook = FakeAsyncHook(RUNNING)
    asyncio.run(make_trigger(hook).on_kill())
    assert hook.stops == 0 and hook.calls == 0
    assert "marked success" in task_log.text()


@pytest.mark.parametrize("state", ["up_for_retry", "scheduled", "queued", "running"])
def test_a_task_another_try_follows_leaves_the_run_to_it(supervisor, task_log, state):
    supervisor({"wait": state})
    hook = FakeAsyncHook(RUNNING)
    asyncio.run(make_trigger(hook).on_kill())
    assert hook.stops == 0
    assert "another try of the task follows the run" in task_log.text()


def test_a_run_that_is_no_longer_the_pipelines_latest_is_not_stopped(supervisor, task_log):
    """The run ended and someone started the next one: Opsera's stop would hit theirs."""
    supervisor({"wait": "failed"})
    hook = FakeAsyncHook(RUNNING, latest=4)
    asyncio.run(make_trigger(hook).on_kill())
    assert hook.stops == 0
    assert "run 4 is the pipeline's latest now, not run 3" in task_log.text()


def test_a_stale_copy_of_a_reassigned_trigger_leaves_the_run_alone(supervisor, task_log):
    supervisor({"wait": "deferred"})
    hook = FakeAsyncHook(RUNNING)
    asyncio.run(make_trigger(hook).on_kill())
    assert hook.stops == 0 and hook.calls == 0
    assert "still deferred" in task_log.text()


@pytest.mark.parametrize(
    "install, ti, words",
    [
        (None, task_instance(), "no channel to the triggerer's supervisor"),
        ({"other_task": "failed"}, task_instance(), "has no task instance wait"),
        (ConnectionResetError("supervisor gone"), task_instance(), "ConnectionResetError: supervisor gone"),
        ({"wait": "failed"}, None, "given no task instance"),
    ],
)
def test_a_state_that_cannot_be_read_leaves_the_run_alone(supervisor, task_log, install, ti, words):
    if install is not None:
        supervisor(install)
    hook = FakeAsyncHook(RUNNING)
    trigger = make_trigger(hook, ti)
    if ti is None:
        trigger._task_instance = None
    asyncio.run(trigger.on_kill())
    assert hook.stops == 0
    assert "could not be read" in task_log.text() and words in task_log.text()


def test_a_supervisor_that_does_not_answer_leaves_the_run_alone(supervisor, monkeypatch, task_log):
    supervisor(hang=True)
    monkeypatch.setenv("AIRFLOW__TRIGGERER__ON_KILL_TIMEOUT", "0.03")  # the read may take 2/3 of it
    hook = FakeAsyncHook(RUNNING)
    asyncio.run(make_trigger(hook).on_kill())
    assert hook.stops == 0
    assert "did not answer within 0.02 s" in task_log.text()


def test_a_mapped_task_instance_is_read_by_its_map_index(supervisor):
    fake = supervisor({"wait_7": "failed", "wait_8": "deferred"})
    hook = FakeAsyncHook(RUNNING)
    asyncio.run(make_trigger(hook, task_instance(map_index=7)).on_kill())
    assert hook.stops == 1
    [request] = fake.requests
    assert (request.dag_id, request.run_ids, request.task_ids, request.map_index) == ("deploy", [RUN_ID], ["wait"], 7)


def test_a_run_that_ended_already_is_not_stopped(supervisor, task_log):
    supervisor({"wait": "failed"})
    hook = FakeAsyncHook({"status": "success", "message": "done"})
    asyncio.run(make_trigger(hook).on_kill())
    assert hook.stops == 0
    assert "run 3 is not in progress (succeeded)" in task_log.text()


def test_a_run_whose_status_cannot_be_read_is_not_stopped(supervisor, task_log):
    """Whose run a stop would hit cannot be told: nothing is sent, and the log says why."""
    supervisor({"wait": "failed"})
    hook = FakeAsyncHook(OpseraServerError("server error 502", status_code=502))
    asyncio.run(make_trigger(hook).on_kill())
    assert hook.stops == 0
    assert "Could not stop" in task_log.text() and "502" in task_log.text()


def test_a_failed_stop_is_logged_not_raised(supervisor, task_log):
    supervisor({"wait": "failed"})
    hook = FakeAsyncHook(RUNNING, stop_error=OpseraServerError("server error 502", status_code=502))
    asyncio.run(make_trigger(hook).on_kill())
    assert "Could not stop" in task_log.text()


def test_a_task_trigger_has_nothing_to_stop_and_reads_nothing(supervisor):
    fake = supervisor({"wait": "failed"})
    hook = FakeAsyncHook("running")
    trigger = OpseraTaskTrigger(opsera_task_id=TASK_ID, poll_interval=30)
    trigger._hook = hook
    trigger.task_instance = task_instance()
    asyncio.run(trigger.on_kill())
    assert hook.calls == 0 and fake.requests == []


# -- in Airflow's own trigger runner --

airflow_calls_on_kill = pytest.mark.skipif(
    not hasattr(importlib.import_module("airflow.triggers.base").BaseTrigger, "on_kill"),
    reason="BaseTrigger.on_kill: Airflow 3.3+",
)


async def _start_in_triggerer(trigger) -> asyncio.Task:
    """Airflow's own TriggerRunner.run_trigger, once the trigger has polled."""
    from airflow.jobs.triggerer_job_runner import TriggerRunner

    runner = TriggerRunner()
    runner.triggers[1] = {"name": "opsera", "events": 0, "is_watcher": False}
    started = asyncio.Event()
    real_read = trigger.read_status

    async def read_status(hook):
        started.set()
        return await real_read(hook)

    trigger.read_status = read_status
    task = asyncio.create_task(runner.run_trigger(1, trigger, None))
    runner.triggers[1]["task"] = task
    await asyncio.wait_for(started.wait(), 5)
    return task


async def _run_in_triggerer(trigger, cancel_message: str | None) -> None:
    """Airflow's own TriggerRunner.run_trigger, cancelled the way a user action or a shutdown does."""
    task = await _start_in_triggerer(trigger)
    task.cancel(cancel_message)
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.fixture
def real_sleep(monkeypatch):
    """Polls that sleep for real (briefly), so the task can be cancelled mid-wait."""
    monkeypatch.setattr(OpseraPollingTrigger, "_sleep", staticmethod(lambda seconds: asyncio.sleep(0.001)))
    monkeypatch.setenv("AIRFLOW_DISABLE_GREENBACK_PORTAL", "true")


@airflow_calls_on_kill
@pytest.mark.parametrize("state, stops", [("failed", 1), ("deferred", 0)])
def test_airflow_calls_on_kill_and_the_task_state_decides(real_sleep, supervisor, state, stops):
    from airflow.jobs.triggerer_job_runner import _USER_ACTION_CANCEL_MSG

    supervisor({"wait": state})
    hook = FakeAsyncHook(RUNNING)
    asyncio.run(_run_in_triggerer(make_trigger(hook), _USER_ACTION_CANCEL_MSG))
    assert hook.stops == stops


@airflow_calls_on_kill
def test_a_triggerer_shutdown_leaves_the_run_alone(real_sleep, supervisor):
    supervisor({"wait": "failed"})
    hook = FakeAsyncHook(RUNNING)
    asyncio.run(_run_in_triggerer(make_trigger(hook), None))
    assert hook.stops == 0


class SlowStopHook(FakeAsyncHook):
    """A stop that is under way until the test lets it finish (a 429 and its retry, say)."""

    def __init__(self, *answers) -> None:
        super().__init__(*answers)
        self.stop_sent, self.release, self.stopped = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def stop_pipeline(self, pipeline_id: str) -> dict:
        self.stops += 1
        self.stop_sent.set()
        await self.release.wait()
        self.stopped.set()
        return {"status": "stopped"}


@airflow_calls_on_kill
def test_a_stop_under_way_survives_airflow_cancelling_the_trigger_again(real_sleep, supervisor):
    """Airflow cancels a trigger on every state sync until it has ended, on_kill included: the stop still ends."""
    from airflow.jobs.triggerer_job_runner import _USER_ACTION_CANCEL_MSG

    supervisor({"wait": "failed"})
    hook = SlowStopHook(RUNNING)

    async def scenario() -> None:
        task = await _start_in_triggerer(make_trigger(hook))
        task.cancel(_USER_ACTION_CANCEL_MSG)  # the person's action
        await asyncio.wait_for(hook.stop_sent.wait(), 5)
        task.cancel(_USER_ACTION_CANCEL_MSG)  # the next state sync, the trigger not yet ended
        with pytest.raises(asyncio.CancelledError):
            await task
        hook.release.set()
        await asyncio.wait_for(hook.stopped.wait(), 5)

    asyncio.run(scenario())
    assert hook.stops == 1


# -- the state read made once early, so that the one in on_kill is answered in time --


def test_waits_in_a_triggerer_ask_for_one_state_read_per_loop_when_they_start(trigger_clock, supervisor):
    fake = supervisor({"wait": "deferred"})

    async def two_waits():
        triggers = [make_trigger(FakeAsyncHook({"status": "success"})) for _ in range(2)]
        for trigger in triggers:
            trigger.trigger_id = 1
        return await asyncio.gather(*(anext(trigger.run()) for trigger in triggers))

    def state_reads() -> int:
        return sum(type(request).__name__ == "GetTaskStates" for request in fake.requests)

    assert [event.payload["status"] for event in asyncio.run(two_waits())] == ["success", "success"]
    assert state_reads() == 1
    asyncio.run(two_waits())  # another loop (another triggerer process) asks again
    assert state_reads() == 2


def test_waits_outside_a_triggerer_and_waits_with_nothing_to_stop_ask_for_none(trigger_clock, supervisor):
    fake = supervisor({"wait": "deferred"})
    asyncio.run(anext(make_trigger(FakeAsyncHook({"status": "success"})).run()))  # dag.test(): no triggerer
    task_trigger = OpseraTaskTrigger(opsera_task_id=TASK_ID, poll_interval=1)
    task_trigger._hook = FakeAsyncHook("success")
    task_trigger.trigger_id = 1
    asyncio.run(anext(task_trigger.run()))
    assert fake.requests == []
