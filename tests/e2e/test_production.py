"""What Airflow platform teams live with: a triggerer killed or frozen, a task process killed, a fan-out.

Real signals to real processes of the stack (PostgreSQL, two triggerers, LocalExecutor);
who holds a trigger comes from the metadata database (``trigger.triggerer_id`` -> ``job``),
how many runs started or stopped from the emulator's request counts.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest
import requests

from tests.e2e.stack import TRIGGERER_HEALTH_THRESHOLD, TRIGGERERS, Stack

TAKEOVER_DAG = "e2e_opsera_triggerer_takeover"
WORKER_CRASH_DAG = "e2e_opsera_worker_crash"
FAN_OUT_DAG = "e2e_opsera_fan_out"
TASK = "run_pipeline"
RUN = "POST /api/v1/pipeline/run"
STATUS = "POST /api/v1/pipeline/status"
STOP = "POST /api/v1/pipeline/stop"
TIMEOUT = 600  # the takeover DAG's timeout, seconds
CONSOLE_LINES = [f"takeover stage {stage} line {line}" for stage in (1, 2, 3) for line in (1, 2, 3)]
#: a killed or frozen triggerer's triggers move once its heartbeat is this old, plus a loop or two
TAKEOVER_WITHIN = TRIGGERER_HEALTH_THRESHOLD + 60


def delta(airflow: Stack, before: dict[str, int], route: str) -> int:
    return airflow.emulator_counts().get(route, 0) - before.get(route, 0)


def wait_until_a_triggerer_polls(airflow: Stack, run_id: str, before: dict[str, int]) -> tuple[str, dict]:
    """The triggerer that holds the deferred task's trigger once it has read the run's status, and the trigger."""

    def held_and_polling():
        airflow.check_alive()
        state = airflow.task_instance(TAKEOVER_DAG, run_id, TASK)["state"]
        if state in ("success", "failed", "up_for_retry"):
            raise AssertionError(f"{TASK} ended {state} before a triggerer was seen polling")
        holder = airflow.triggerer_holding(TAKEOVER_DAG, run_id, TASK)
        if state != "deferred" or holder not in TRIGGERERS or delta(airflow, before, STATUS) < 1:
            return None
        return holder, airflow.trigger_of(TAKEOVER_DAG, run_id, TASK)

    return airflow.wait_for(held_and_polling, 120, f"{TASK} to be deferred and polled by a triggerer")


def wait_for_takeover(airflow: Stack, run_id: str, trigger: dict, lost_by: str) -> dict:
    """The same trigger row, now held by the other triggerer."""

    def taken_over():
        held = airflow.trigger_of(TAKEOVER_DAG, run_id, TASK)
        if held is None:
            raise AssertionError(f"the trigger disappeared before {lost_by}'s triggers moved: the task ended")
        holder = airflow.triggerer_holding(TAKEOVER_DAG, run_id, TASK)
        return held if holder in TRIGGERERS and holder != lost_by else None

    held = airflow.wait_for(taken_over, TAKEOVER_WITHIN, f"the other triggerer to take over {lost_by}'s trigger")
    assert held["id"] == trigger["id"], "the takeover reuses the trigger row; the task did not defer again"
    return held


def assert_console_lines_once_in_order(log: str) -> None:
    positions = []
    for line in CONSOLE_LINES:
        assert log.count(line) == 1, f"console line {line!r} is {log.count(line)} times in the task log:\n{log[-4000:]}"
        positions.append(log.index(line))
    assert positions == sorted(positions), f"console lines out of order:\n{log[-4000:]}"


def task_pid_once(airflow: Stack, run_id: str, reached: Callable[[], bool], what: str) -> int:
    """The worker-crash task's process id, once it runs in a worker and has ``reached`` the point to kill it at."""

    def running_there():
        airflow.check_alive()
        ti = airflow.task_instance(WORKER_CRASH_DAG, run_id, TASK)
        if ti["state"] in ("success", "failed", "up_for_retry"):
            raise AssertionError(f"{TASK} ended {ti['state']} before its process could be killed")
        pid = airflow.task_pid(WORKER_CRASH_DAG, run_id, TASK)
        return pid if ti["state"] == "running" and pid and reached() else None

    return airflow.wait_for(running_there, 120, f"{TASK} {what} in a worker")


def assert_retried_once_onto_the_first_run(airflow: Stack, run_id: str, before: dict, retry_says: str) -> None:
    assert airflow.wait_for_run(WORKER_CRASH_DAG, run_id, timeout=240) == "success"
    ti = airflow.task_instance(WORKER_CRASH_DAG, run_id, TASK)
    assert ti["try_number"] == 2, "the killed try was retried once"
    assert delta(airflow, before, RUN) == 1, "the retry started a second run"
    assert delta(airflow, before, STOP) == 0
    assert retry_says in airflow.task_log(WORKER_CRASH_DAG, run_id, TASK, try_number=2)


def test_a_killed_triggerer_hands_its_deferred_run_to_the_other(airflow):
    airflow.wait_for_dag(TAKEOVER_DAG)
    before = airflow.emulator_counts()
    triggered_at = time.time()
    run_id = airflow.trigger(TAKEOVER_DAG)
    holder, trigger = wait_until_a_triggerer_polls(airflow, run_id, before)
    end_time = trigger["kwargs"]["end_time"]
    # the deadline was fixed when the task deferred, from its timeout
    assert triggered_at + TIMEOUT <= end_time <= time.time() + TIMEOUT

    airflow.kill(holder)
    try:
        held = wait_for_takeover(airflow, run_id, trigger, lost_by=holder)
        airflow.restart(holder)  # as a supervisor would: later tests have two triggerers again
        # rebuilt in another process, the trigger keeps the original deadline: the timeout is not extended
        assert held["kwargs"]["end_time"] == end_time

        assert airflow.wait_for_run(TAKEOVER_DAG, run_id, timeout=180) == "success"
        assert delta(airflow, before, RUN) == 1, "exactly one pipeline run was started"
        assert delta(airflow, before, STOP) == 0
        ti = airflow.task_instance(TAKEOVER_DAG, run_id, TASK)
        assert ti["try_number"] == 1, "the takeover is not a retry"
        assert_console_lines_once_in_order(airflow.task_log(TAKEOVER_DAG, run_id, TASK))
    finally:
        if holder not in airflow.triggerers():
            airflow.restart(holder)
    assert sorted(airflow.triggerers()) == sorted(TRIGGERERS)


def test_a_frozen_triggerer_that_wakes_up_does_not_stop_the_run(airflow):
    airflow.wait_for_dag(TAKEOVER_DAG)
    before = airflow.emulator_counts()
    run_id = airflow.trigger(TAKEOVER_DAG)
    holder, trigger = wait_until_a_triggerer_polls(airflow, run_id, before)

    airflow.signal(holder, signal.SIGSTOP)  # a GC pause, a VM migration, a network partition
    try:
        wait_for_takeover(airflow, run_id, trigger, lost_by=holder)
    finally:
        airflow.signal(holder, signal.SIGCONT)  # it wakes up still running its copy of the trigger

    # The woken triggerer finds the trigger is no longer its own and cancels its copy, which is
    # when Airflow 3.3 calls the copy's on_kill (apache/airflow#73454).
    def stale_copy_cancelled():
        return "invoking on_kill" in airflow.trigger_log(TAKEOVER_DAG, run_id, TASK, holder)

    airflow.wait_for(stale_copy_cancelled, TAKEOVER_WITHIN, f"{holder} to cancel its stale copy of the trigger")
    assert airflow.wait_for_run(TAKEOVER_DAG, run_id, timeout=180) == "success"
    assert delta(airflow, before, STOP) == 0, "the woken triggerer's stale copy of the trigger stopped the run"
    assert delta(airflow, before, RUN) == 1
    assert_console_lines_once_in_order(airflow.task_log(TAKEOVER_DAG, run_id, TASK))


def test_a_killed_task_process_is_retried_and_reattaches_to_its_run(airflow):
    airflow.wait_for_dag(WORKER_CRASH_DAG)
    before = airflow.emulator_counts()
    run_id = airflow.trigger(WORKER_CRASH_DAG)

    # the run started and the worker has read its status since: it is in its wait loop
    pid = task_pid_once(
        airflow, run_id, lambda: delta(airflow, before, RUN) == 1 and delta(airflow, before, STATUS) >= 1, "to wait for its run"
    )
    os.kill(pid, signal.SIGKILL)  # an OOM kill of the task process
    assert_retried_once_onto_the_first_run(airflow, run_id, before, "an earlier try of this chain started run")


def test_a_task_killed_before_it_learns_its_run_count_is_retried_onto_that_run(airflow):
    airflow.wait_for_dag(WORKER_CRASH_DAG)
    # Opsera starts the run at once but answers the request two minutes later: the try dies in between
    hold = {"route": RUN, "kind": "hold", "seconds": 120, "count": 1}
    requests.post(f"{airflow.emulator_url}/_emulator/faults", json=hold, timeout=10).raise_for_status()
    before = airflow.emulator_counts()
    run_id = airflow.trigger(WORKER_CRASH_DAG)

    pid = task_pid_once(airflow, run_id, lambda: delta(airflow, before, RUN) == 1, "to send its run request")
    os.kill(pid, signal.SIGKILL)
    assert_retried_once_onto_the_first_run(airflow, run_id, before, "an earlier try started run")


def test_a_fan_out_of_24_short_deferred_runs_all_succeed(airflow):
    pipelines = airflow.pipelines["fan_out"]
    assert len(pipelines) == 24
    airflow.wait_for_dag(FAN_OUT_DAG)
    before = airflow.emulator_counts()
    runs_before = {pipeline: last_run_count(airflow, pipeline) for pipeline in pipelines}
    run_id = airflow.trigger(FAN_OUT_DAG)

    assert airflow.wait_for_run(FAN_OUT_DAG, run_id, timeout=300) == "success"
    mapped = airflow.api("GET", f"/dags/{FAN_OUT_DAG}/dagRuns/{run_id}/taskInstances/{TASK}/listMapped")
    instances = mapped["task_instances"]
    assert len(instances) == 24
    failed = [ti["map_index"] for ti in instances if ti["state"] != "success" or ti["try_number"] != 1]
    assert not failed, f"mapped tasks that failed or were retried: {failed}"
    assert delta(airflow, before, RUN) == 24
    started = {pipeline: last_run_count(airflow, pipeline) - runs_before[pipeline] for pipeline in pipelines}
    assert set(started.values()) == {1}, f"pipelines not started exactly once: {started}"
    for ti in instances:
        log = airflow.task_log(FAN_OUT_DAG, run_id, TASK, try_number=1, map_index=ti["map_index"])
        assert "Pausing task as DEFERRED" in log, f"map index {ti['map_index']} did not defer:\n{log[-2000:]}"


def last_run_count(airflow: Stack, pipeline_id: str) -> int:
    summary = airflow.opsera("/api/v1/pipeline/summary", {"pipelineId": pipeline_id})
    return int((summary.get("workflow") or {}).get("run_count") or 0)


@pytest.fixture(autouse=True)
def _two_triggerers(airflow):
    """Every scenario starts with both triggerers up and heartbeating."""
    assert sorted(airflow.triggerers()) == sorted(TRIGGERERS)

    def both_heartbeating():
        fresh_since = time.time() - TRIGGERER_HEALTH_THRESHOLD / 2
        return all(airflow.triggerer_heartbeat(name) > fresh_since for name in TRIGGERERS)

    airflow.wait_for(both_heartbeating, TAKEOVER_WITHIN, "both triggerers to heartbeat")
