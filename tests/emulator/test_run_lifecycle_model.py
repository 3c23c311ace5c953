"""A model of one pipeline task's run lifecycle, explored by Hypothesis against the emulator.

One task instance goes through Airflow's tries, retries and Clears, is marked failed or success, killed or
taken over, in the worker or deferred, while a person uses the same pipeline (starts runs, approves its
gate, stops whatever run is going) and answers get lost. The task's processes are the provider's real code
over real sockets: the operator's ``execute`` and ``execute_complete``, and the trigger's wait. Each runs
in a thread of its own that stops at each of its sleeps (after the emulator's manual clock has moved) and
before and after each write to ``task_state_store``: there the model acts, and may end the process as
Airflow would. Airflow is simulated only where the task meets it: the try number, ``max_tries`` and state
of the task instance, the DAG run's ``clear_number``, and the store the tries share, set as Airflow sets
them. After every step the emulator's run journal is held against the promises of the README's table "How
a pipeline task behaves" (see :class:`PipelineTaskLifecycle`).

Outside the model: a person's run that starts between the task's reading of the latest run count and the
answer to its run request, when that answer is lost or the try dies before it. Opsera's run request has
no key and its answer names no run, so rows S3 and R7 take the first run after the noted count for the
task's, and that run would be the person's.

The tests after the model are the interleavings it found, as they were shrunk, each kept as a plain test.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import threading
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from airflow_provider_opsera._compat import AirflowException, AirflowFailException, TaskDeferred
from airflow_provider_opsera.emulator.errors import ApiError
from airflow_provider_opsera.hooks.opsera_async import OpseraAsyncHook
from airflow_provider_opsera.operators import OpseraRunPipelineOperator
from airflow_provider_opsera.triggers import OpseraPipelineRunTrigger
from airflow_provider_opsera.triggers.polling import OpseraPollingTrigger
from airflow_provider_opsera.waiting.lifecycle import TIMED_OUT
from tests.unit.pipeline_fakes import FakeStateStore, FakeSupervisor, FakeTI, Killed, make_context

from .support import APPROVAL, BLANK, BROKEN, Client, runs_of
from .test_pipeline_operator_against_emulator import EmulatedTime, operator

#: the tokens the journal names: the task's connection, and a person's own
TASK_TOKEN, PERSON_TOKEN = "admin", "person"
POLL_INTERVAL = 30.0
START_TIMEOUT = 90.0
#: seconds of real time a process may take between two of its stops before the model gives up on it
PROCESS_BOUND = 60.0
#: the examples one test run tries; more for a longer search: OPSERA_MODEL_EXAMPLES=2000
EXAMPLES = int(os.environ.get("OPSERA_MODEL_EXAMPLES", "60"))
ACTIVE = ("running", "paused")
#: the task instance as a trigger's on_kill asks the supervisor for it
TI_KEY = SimpleNamespace(dag_id="deploy", run_id="manual__1", task_id="run_pipeline", map_index=-1)


class Process:
    """One process of the task (a try in the worker, its resume after a deferral, or the trigger's wait) in
    a thread of its own. It runs only while the model waits for it, and stops where :meth:`stop_here` is
    called; there the model acts, then lets it go on or ends it with an exception raised right there."""

    def __init__(self, role: str, work: Any, *, operator: Any = None, trigger: Any = None, ti: Any = None) -> None:
        self.role, self.operator, self.trigger, self.ti = role, operator, trigger, ti
        self.stopped_at: tuple[str, Any] | None = None
        self.result: tuple[str, Any] | None = None  # ("returned", value) or ("raised", error)
        self._orders: queue.Queue = queue.Queue()
        self._reports: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._main, args=(work,), name=f"task {role}", daemon=True)

    @property
    def alive(self) -> bool:
        return self.result is None

    def _main(self, work: Any) -> None:
        try:
            outcome: tuple[str, Any] = ("returned", work())
        except BaseException as error:  # the model judges what ended the process
            outcome = ("raised", error)
        self._reports.put(("ended", outcome))

    def stop_here(self, where: tuple[str, Any]) -> None:
        """Called by the process itself: wait for the model's order."""
        if threading.current_thread() is not self._thread:
            return  # on_kill writing from the model's side, as Airflow's signal handler
        self._reports.put(("stopped", where))
        order = self._orders.get()
        if order is not None:
            raise order

    def start(self) -> None:
        self._thread.start()
        self._wait()

    def go_on(self) -> None:
        self._orders.put(None)
        self._wait()

    def end(self, error: BaseException) -> None:
        self._orders.put(error)
        self._wait()

    def _wait(self) -> None:
        try:
            kind, value = self._reports.get(timeout=PROCESS_BOUND)
        except queue.Empty:
            raise AssertionError(f"the task's {self.role} neither stopped nor ended within {PROCESS_BOUND:g} s") from None
        if kind == "stopped":
            self.stopped_at = value
            return
        self.stopped_at, self.result = None, value
        self._thread.join(PROCESS_BOUND)


class StoreWithKillPoints(FakeStateStore):
    """``task_state_store`` shared by the tries. The process writing stops before it notes a run (the run has
    started, and nothing says so yet) and after it notes a run request (the request is not sent yet)."""

    def __init__(self) -> None:
        super().__init__()
        self.writer: Process | None = None

    def set(self, key: str, value: Any, **kwargs: Any) -> None:
        if self.writer is not None and "run" in value:
            self.writer.stop_here(("before writing", dict(value)))
        super().set(key, value, **kwargs)
        if self.writer is not None and "run" not in value:
            self.writer.stop_here(("after writing", dict(value)))


async def first_event(trigger: OpseraPipelineRunTrigger) -> dict:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


def run_named(pattern: str, text: str) -> int | None:
    found = re.search(pattern, text)
    return int(found.group(1)) if found else None


class PipelineTaskLifecycle(RuleBasedStateMachine):
    """Airflow, a person and lost answers against one ``OpseraRunPipelineOperator`` task on a shared pipeline.

    The task: a pipeline of the default seed (Blank Template succeeds after 90 s, Broken Build fails after
    45 s, Release With Approval pauses at a gate until someone approves it), ``retries`` 0 to 2, the worker
    or the deferred wait, ``timeout`` or none, Airflow 3.3 or 3.4 (a Clear drops the task's state). Its
    task instance is new, running, deferred, up for retry, success or failed.

    Rules: the task goes on (its process wakes or writes; Airflow runs the next try of a cleared or
    retried task); a person asks for a run, approves the gate or stops the pipeline; the next answer to a
    run, status, summary or stop request is lost; time passes between tries; Airflow ends the running or
    deferred process because a person marked the task failed or success or cleared it, or because it lost
    the process (a worker's heartbeat: a retry; a trigger: another triggerer's copy), with or without
    ``on_kill`` (a SIGKILL; the triggerer's before Airflow 3.3); a person clears an ended task.

    Promises, after every step, from the emulator's run journal and what the task did:

    1. **no stop of a run that is not the task's own**: every stop the task's token sent landed on a run
       the task started, while that run was in progress (Opsera's stop addresses the pipeline);
    2. **one run per try chain**: a chain (the tries between two Clears) starts another run only after
       its run failed or the task itself stopped it;
    3. **each Clear of an ended task starts exactly one new run**: when the first try of the cleared chain
       follows a run or succeeds, that is the one run the chain started;
    4. **the task's outcome follows its own run**: a try follows only runs its chain started; it succeeds
       with its chain's latest run, which succeeded; it fails naming a failed run only when that run
       failed, and as "stopped in Opsera" only when someone other than the task stopped or reset it.
    """

    def __init__(self, emulator: Any, supervisor: FakeSupervisor) -> None:
        super().__init__()
        self.emulator, self.supervisor = emulator, supervisor
        emulator.reset()
        self.person = Client(emulator.url, emulator.mint_token(PERSON_TOKEN))
        self.store = StoreWithKillPoints()
        self.process: Process | None = None
        self.lost_answers = 0
        self.died_requesting_after: int | None = None  # a try died after noting its run request, before its answer
        self.died_timing_out: set[int] = set()  # runs a try stopped for its timeout, and died before noting it
        # the task instance as Airflow keeps it, and its DAG run's clear_number
        self.try_number, self.state, self.clear_number = 0, None, 0
        self.chain = 0  # the try chain the next try belongs to: one more per Clear
        self.try_chain = 0  # the chain of the try that ran last
        self.chain_of_run: dict[int, int] = {}  # the task's runs, by the chain that started them
        self.cleared_after_end: set[int] = set()  # the chains a Clear of an ended task began

    @initialize(
        pipeline=st.sampled_from([BLANK, BROKEN, APPROVAL]),
        retries=st.integers(0, 2),
        deferrable=st.booleans(),
        timeout=st.sampled_from([None, 240.0]),
        clear_drops_state=st.booleans(),
    )
    def a_task_on_a_shared_pipeline(self, pipeline, retries, deferrable, timeout, clear_drops_state):
        self.pipeline, self.retries, self.deferrable, self.timeout = pipeline, retries, deferrable, timeout
        self.clear_drops_state = clear_drops_state  # Airflow 3.4 (README row V3)
        self.max_tries = retries

    # -- the task's processes --

    def operator(self) -> OpseraRunPipelineOperator:
        op = OpseraRunPipelineOperator(
            task_id=TI_KEY.task_id,
            pipeline_id=self.pipeline,
            deferrable=self.deferrable,
            poll_interval=POLL_INTERVAL,
            timeout=self.timeout,
            start_timeout=START_TIMEOUT,
            retries=self.retries,
        )
        op._clock = self.emulator.now
        op.hook._sleep = self.emulator.advance  # the client's retry waits
        return op

    def task_instance(self) -> FakeTI:
        """What a process is handed: the try number and ``max_tries`` as they were when it started."""
        return FakeTI(self.try_number, self.max_tries, state="running")

    @rule()
    def the_task_goes_on(self):
        """Its process wakes (or writes), or Airflow runs the next try of a new or retried task, or a person
        clears the ended task (README rows C1, C2) and Airflow runs the first try of the new chain.

        Every rule but Airflow's ending of a process ends so: what it did happened while the task slept (or
        wrote), or before Airflow ran its next try, or between the task's end and the Clear."""
        if self.process is not None:
            self.process.go_on()
            self.after_the_process()
            return
        if self.state in ("success", "failed"):
            self.cleared_after_end.add(self.chain + 1)
            self.clear()
        self.died_requesting_after = None  # the try about to begin reads the note first
        self.try_number += 1
        self.state = "running"
        self.try_chain = self.chain
        op, ti = self.operator(), self.task_instance()
        context = make_context(ti, self.store, self.clear_number)
        process = Process("worker", lambda: op.execute(context), operator=op, ti=ti)
        op._sleep = lambda seconds: self.asleep(process, seconds)
        self.begin(process)

    def asleep(self, process: Process, seconds: float) -> None:
        self.emulator.advance(seconds)
        process.stop_here(("sleep", seconds))  # the model acts at the end of the sleep, before the task wakes

    def begin(self, process: Process) -> None:
        self.process = self.store.writer = process
        process.start()
        self.after_the_process()

    def after_the_process(self) -> None:
        """What Airflow makes of a process that ended: the trigger, the resume, a retry, or a final state."""
        process = self.process
        if process is None or process.alive:
            return
        self.process = self.store.writer = None
        kind, value = process.result
        if process.role == "trigger":
            if kind != "returned":
                raise value
            return self.resume(value)
        if kind == "returned":
            self.task_ended_by_itself(value, None)
            self.state = "success"
        elif isinstance(value, TaskDeferred):
            return self.defer(value)
        elif isinstance(value, AirflowFailException):
            self.task_ended_by_itself(None, value)
            self.state = "failed"
        elif isinstance(value, AirflowException):
            self.task_ended_by_itself(None, value)
            self.state = "up_for_retry" if self.retries_left() else "failed"
        else:
            raise value  # not how the provider ends a try
        note(f"try {self.try_number} ended {self.state}: {value}")

    def retries_left(self) -> bool:
        """Airflow's rule: a failed try is retried while its try number is at most ``max_tries``."""
        return self.max_tries != 0 and self.try_number <= self.max_tries

    def defer(self, deferred: TaskDeferred) -> None:
        self.state = "deferred"
        _, kwargs = deferred.trigger.serialize()  # the triggerer builds the trigger from what was stored
        self.start_trigger(kwargs)

    def start_trigger(self, kwargs: dict) -> None:
        trigger = OpseraPipelineRunTrigger(**kwargs)
        process = Process("trigger", lambda: asyncio.run(first_event(trigger)), trigger=trigger)

        async def sleep(seconds: float) -> None:
            self.asleep(process, seconds)

        async def retry_wait(seconds: float) -> None:
            self.emulator.advance(seconds)

        trigger._sleep = sleep
        trigger._hook = OpseraAsyncHook(trigger.opsera_conn_id, sleep=retry_wait)
        trigger.task_instance = TI_KEY
        self.begin(process)

    def resume(self, event: dict) -> None:
        """The trigger fired: the same try resumes in a worker with ``execute_complete``."""
        note(f"the trigger fired: {event['status']}, run {event['run_count']}")
        self.state = "running"
        op, ti = self.operator(), self.task_instance()
        context = make_context(ti, self.store, self.clear_number)
        self.begin(Process("resume", lambda: op.execute_complete(context, event), operator=op, ti=ti))

    # -- a person, the network, the clock --

    @rule(action=st.sampled_from(["asks for a run", "approves the gate", "stops the pipeline"]))
    def someone_uses_the_pipeline(self, action):
        """A person with a token of their own; then the task wakes (or writes) if it was waiting."""
        try:
            if action == "asks for a run" and not self.request_unanswered():
                answer = self.person.post("/api/v1/pipeline/run", {"pipelineId": self.pipeline}).json()
                note(f"a person asked for a run: {answer.get('runCount') or answer.get('message')}")
            elif action == "approves the gate" and self.pipeline == APPROVAL:
                self.emulator.approve(self.pipeline)
            elif action == "stops the pipeline":
                self.person.post("/api/v1/pipeline/stop", {"pipelineId": self.pipeline})
        except (requests.RequestException, ValueError, ApiError) as error:  # a lost answer; nothing at the gate
            note(f"a person {action}: {type(error).__name__}")
        self.the_task_goes_on()

    def request_unanswered(self) -> bool:
        """Whether the task is between reading the latest run count it notes and its run request's answer, or a
        try died there and no run started since (outside the model: see the module's docstring)."""
        latest = max(self.journal(), default=0)
        return self.requested_after(self.process) is not None or self.died_requesting_after == latest

    @staticmethod
    def requested_after(process: Process | None) -> int | None:
        """The count a process stopped at the note of its run request noted."""
        where = process.stopped_at if process is not None else None
        if where is None or not where[0].endswith("writing") or "requested_after" not in where[1]:
            return None
        return where[1]["requested_after"]

    @precondition(lambda self: self.process is not None and not self.lost_answer_pending())
    @rule(route=st.sampled_from(["run", "status", "summary", "stop"]))
    def the_next_answer_is_lost(self, route):
        """The next such request is carried out, and its connection closed without an answer."""
        self.emulator.set_fault(route=f"POST /api/v1/pipeline/{route}", kind="drop", count=1)
        self.lost_answers += 1
        self.the_task_goes_on()

    def lost_answer_pending(self) -> bool:
        return self.lost_answers > self.emulator.run_journal()["faults_injected"].get("drop", 0)

    @precondition(lambda self: self.process is None)
    @rule(seconds=st.sampled_from([10, 30, 60, 120]))
    def time_passes_between_tries(self, seconds):
        self.emulator.advance(seconds)
        self.the_task_goes_on()

    # -- Airflow, and a person acting on the task instance --

    @precondition(lambda self: self.process is not None)
    @rule(how=st.sampled_from(["marked failed", "marked success", "cleared", "lost"]), on_kill=st.booleans())
    def airflow_ends_the_process(self, how, on_kill):
        """A person marks or clears the running or deferred task, or Airflow loses its process.

        ``on_kill``: Airflow's SIGTERM reaches the worker's ``on_kill`` (else the process is gone at once:
        a SIGKILL, a lost machine), or the triggerer calls the trigger's (Airflow 3.3+; not before).
        "lost", in the worker: its heartbeat is lost; Airflow retries the try when a try is left, and
        terminates it when it wakes (row K8). Deferred: another triggerer takes the trigger over; Airflow
        calls ``on_kill`` on the stale copy, and the wait goes on in a new one (row K9).
        """
        deferred = self.process.role == "trigger"
        if how == "lost" and deferred:
            return self.another_triggerer_takes_the_trigger_over(on_kill)
        if how == "lost":
            state = "up_for_retry" if self.retries_left() else "failed"
            self.kill(state, on_kill)
        elif how.startswith("marked"):
            state = how.split()[1]
            self.kill(state, on_kill)
        elif deferred:  # not running: cleared like an ended task, and the trigger's on_kill finds no state
            self.kill(None, on_kill)
            return self.clear()
        else:  # a running try keeps max_tries; Airflow terminates it and always retries it
            self.clear_number += 1
            self.chain += 1
            self.drop_state_on_clear()
            self.kill("restarting", on_kill)
            state = "up_for_retry"
        self.state = state

    def another_triggerer_takes_the_trigger_over(self, on_kill: bool) -> None:
        stale = self.process
        if on_kill:
            self.supervisor.states = {TI_KEY.run_id: {TI_KEY.task_id: "deferred"}}
            asyncio.run(stale.trigger.on_kill())
        stale.end(asyncio.CancelledError())
        self.process = self.store.writer = None
        self.start_trigger(stale.trigger.serialize()[1])

    def kill(self, state: str | None, on_kill: bool) -> None:
        """End the live process; ``state`` is the task instance's state when its ``on_kill`` reads it."""
        process = self.process
        note(f"the task's {process.role} is ended, the task instance {state} (on_kill: {on_kill})")
        where, what = process.stopped_at or (None, None)
        if where == "after writing":
            self.died_requesting_after = self.requested_after(process)
        if where == "before writing" and what.get("stopped") == TIMED_OUT:
            self.died_timing_out.add(what["run"])
        if process.role == "trigger":
            self.supervisor.states = {TI_KEY.run_id: {TI_KEY.task_id: state}}
            if on_kill:
                asyncio.run(process.trigger.on_kill())
            process.end(asyncio.CancelledError())
        else:
            process.ti.state = state
            if on_kill:
                process.operator.on_kill()
            process.end(Killed())
        self.process = self.store.writer = None

    @precondition(lambda self: self.process is None and self.state == "up_for_retry")
    @rule()
    def a_person_clears_the_task_waiting_for_its_retry(self):
        self.clear()
        self.the_task_goes_on()

    def clear(self) -> None:
        """Airflow's Clear of a task instance that is not running: a new try chain."""
        self.max_tries = self.try_number + self.retries
        self.clear_number += 1
        self.chain += 1
        self.state = None
        self.drop_state_on_clear()

    def drop_state_on_clear(self) -> None:
        if self.clear_drops_state:
            self.store.values.clear()

    # -- the promises --

    def journal(self) -> dict[int, dict]:
        """The pipeline's runs by count; a run the task's token started belongs to the chain of the try that ran."""
        runs = {run["run_count"]: run for run in runs_of(self.emulator.run_journal(), self.pipeline)}
        for count, run in runs.items():
            if run["started_by_token"] == TASK_TOKEN and count not in self.chain_of_run:
                self.chain_of_run[count] = self.try_chain
        return runs

    def runs_of_chain(self, chain: int) -> list[int]:
        return sorted(count for count, of in self.chain_of_run.items() if of == chain)

    def followed_run(self) -> int | None:
        process = self.process
        if process is None:
            return None
        return process.trigger.run_count if process.trigger is not None else process.operator.run_count

    @invariant()
    def no_stop_of_a_run_that_is_not_the_tasks_own(self):
        for count, run in self.journal().items():
            for stop in run["stops"]:
                if stop["by"] == TASK_TOKEN:
                    assert run["started_by_token"] == TASK_TOKEN, f"the task stopped run {count}, {run['started_by_token']}'s"
                    assert stop["run_status"] in ACTIVE, f"the task sent a stop while run {count} was {stop['run_status']}"

    @invariant()
    def one_run_per_try_chain(self):
        runs = self.journal()
        for chain in set(self.chain_of_run.values()):
            counts = self.runs_of_chain(chain)
            for earlier, later in zip(counts, counts[1:]):
                before = runs[earlier]
                stopped_by_task = before["status"] == "stopped" and TASK_TOKEN in [stop["by"] for stop in before["stops"]]
                assert before["status"] == "failed" or stopped_by_task, (
                    f"chain {chain} started run {later} after its run {earlier} ended {before['status']}"
                )

    @invariant()
    def each_clear_of_an_ended_task_starts_exactly_one_new_run(self):
        self.journal()
        followed, first_try = self.followed_run(), self.try_number == self.max_tries - self.retries + 1
        if self.try_chain in self.cleared_after_end and followed is not None and first_try:
            own = self.runs_of_chain(self.try_chain)
            assert own == [followed], f"the cleared task's first try follows run {followed}; its chain started {own}"

    @invariant()
    def the_task_follows_only_its_own_runs(self):
        self.journal()
        followed = self.followed_run()
        if followed is not None:
            assert self.chain_of_run.get(followed) == self.try_chain, (
                f"try {self.try_number} (chain {self.try_chain}) follows run {followed}, "
                f"which chain {self.chain_of_run.get(followed)} started"
            )

    def task_ended_by_itself(self, returned: int | None, error: Exception | None) -> None:
        """Promises 3 and 4 as a try ends by itself."""
        runs = self.journal()
        own = self.runs_of_chain(self.try_chain)
        if error is None:
            assert own and returned == own[-1], f"the task succeeded with run {returned}; its chain started {own}"
            assert runs[returned]["status"] == "success", f"the task succeeded; run {returned} {runs[returned]['status']}"
            if self.try_chain in self.cleared_after_end:
                assert len(own) == 1, f"the cleared task started runs {own}"
            return
        text = str(error)
        failed = run_named(r"run (\d+) failed", text)
        if failed is not None:
            assert failed in own and runs[failed]["status"] == "failed", f"{text!r}: run {failed} is {runs.get(failed)}"
        stopped = run_named(r"run (\d+)[^.]*was stopped in Opsera", text)
        if stopped is not None:
            run = runs[stopped]
            assert stopped in own and run["status"] == "stopped", f"{text!r}: run {stopped} is {run['status']}"
            by_others = [stop for stop in run["stops"] if stop["by"] != TASK_TOKEN] + run["resets"]
            # row R6: a try that timed out stopped the run and died before noting why; its retry fails all the same
            timed_out = stopped in self.died_timing_out
            assert by_others or timed_out, f"the task failed as if someone stopped run {stopped}; only the task did"

    def teardown(self):
        if self.process is not None and self.process.alive:
            self.process.end(asyncio.CancelledError() if self.process.role == "trigger" else Killed())


def test_one_run_per_try_chain_whatever_airflow_a_person_and_the_network_do(opsera_conn, monkeypatch):
    """The promises of :class:`PipelineTaskLifecycle` hold after every step of every interleaving tried."""
    pytest.importorskip("airflow.sdk.execution_time.comms", reason="a trigger's on_kill reads the task's state: Airflow 3")
    from airflow.sdk.execution_time import task_runner

    supervisor = FakeSupervisor({})
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", supervisor, raising=False)
    monkeypatch.setattr(OpseraPollingTrigger, "_clock", staticmethod(opsera_conn.now))  # the trigger's deadline
    run_state_machine_as_test(
        lambda: PipelineTaskLifecycle(opsera_conn, supervisor),
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=50,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


# -- interleavings the model found, as they were shrunk --


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
