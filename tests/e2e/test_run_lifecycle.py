"""The run lifecycle in a real Airflow on PostgreSQL: what a Clear, a mark failed and a mark success do to a run.

Each test names the row of the README's table "How a pipeline task behaves" it shows, and is done as a
person does it in the UI, through Airflow's REST API (``clearTaskInstances``, a task instance's
``new_state``). The evidence is the emulator's run journal: who started each run of the scenario's
pipeline (``admin`` is the token of Airflow's connection, any other name a person's) and who stopped it.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.stack import TRIGGERERS, Stack

TASK = "run_pipeline"
STATUS = "POST /api/v1/pipeline/status"
#: the token of Airflow's connection, as the emulator's journal names it
AIRFLOW_TOKEN = "admin"


def started(runs: list[dict[str, Any]]) -> list[tuple[int, str | None, str, list[str]]]:
    """Each run as (run count, who started it, status, who stopped it)."""
    return [(run["run_count"], run["started_by_token"], run["status"], [s["by"] for s in run["stops"]]) for run in runs]


def scenario(airflow: Stack, dag_id: str, pipeline: str) -> tuple[str, int]:
    """The DAG parsed and its pipeline idle; the pipeline's id and how many runs it had."""
    airflow.sync_dags()
    airflow.wait_for_dag(dag_id)
    pipeline_id = airflow.pipelines[pipeline]
    runs = airflow.run_journal(pipeline_id)
    assert not any(run["active"] for run in runs), f"a run of {pipeline} is still going: {started(runs)}"
    return pipeline_id, len(runs)


def new_runs(airflow: Stack, pipeline_id: str, before: int) -> list[dict[str, Any]]:
    return airflow.run_journal(pipeline_id)[before:]


def deferred_on_its_run(airflow: Stack, dag_id: str, pipeline_id: str, before: int) -> tuple[str, str, dict]:
    """A new DAG run whose task deferred on the run it started, once a triggerer polls that run: the DAG run's id,
    the triggerer that holds the task's trigger, and the run."""
    statuses = airflow.emulator_counts().get(STATUS, 0)
    run_id = airflow.trigger(dag_id)

    def held_and_polling():
        airflow.check_alive()
        state = airflow.task_instance(dag_id, run_id, TASK)["state"]
        if state in ("success", "failed", "up_for_retry"):
            raise AssertionError(f"{TASK} ended {state} before a triggerer was seen polling")
        holder = airflow.triggerer_holding(dag_id, run_id, TASK)
        polled = airflow.emulator_counts().get(STATUS, 0) > statuses
        return holder if state == "deferred" and holder in TRIGGERERS and polled else None

    holder = airflow.wait_for(held_and_polling, 120, f"{TASK} to be deferred and polled by a triggerer")
    [run] = new_runs(airflow, pipeline_id, before)
    assert run["active"] and run["started_by_token"] == AIRFLOW_TOKEN, run
    return run_id, holder, run


def wait_for_try(
    airflow: Stack, dag_id: str, run_id: str, try_number: int, state: str, timeout: float = 180
) -> dict[str, Any]:
    def there():
        airflow.check_alive()
        ti = airflow.task_instance(dag_id, run_id, TASK)
        if ti["try_number"] == try_number and ti["state"] in ("success", "failed") and ti["state"] != state:
            raise AssertionError(f"try {try_number} of {TASK} ended {ti['state']}, not {state}")
        return ti if ti["try_number"] == try_number and ti["state"] == state else None

    return airflow.wait_for(there, timeout, f"try {try_number} of {TASK} to be {state}")


def test_C1_a_clear_after_success_starts_one_new_run_and_succeeds(airflow):
    dag_id = "e2e_opsera_clear_after_success"
    pipeline_id, before = scenario(airflow, dag_id, "clear_after_success")
    run_id = airflow.trigger(dag_id)
    assert airflow.wait_for_run(dag_id, run_id) == "success"
    [first] = new_runs(airflow, pipeline_id, before)
    assert started([first]) == [(first["run_count"], AIRFLOW_TOKEN, "success", [])]
    assert airflow.xcom(dag_id, run_id, TASK) == first["run_count"]

    # the person clears the succeeded task to deploy again, as the UI's Clear button does
    [cleared] = airflow.clear_task(dag_id, run_id, TASK)
    assert cleared["task_id"] == TASK
    wait_for_try(airflow, dag_id, run_id, 2, "success")
    assert airflow.wait_for_run(dag_id, run_id) == "success"

    runs = new_runs(airflow, pipeline_id, before)
    assert started(runs) == [
        (first["run_count"], AIRFLOW_TOKEN, "success", []),
        (first["run_count"] + 1, AIRFLOW_TOKEN, "success", []),
    ], "the Clear started exactly one new run, and nothing was stopped"
    assert airflow.xcom(dag_id, run_id, TASK) == first["run_count"] + 1
    log = airflow.task_log(dag_id, run_id, TASK, try_number=2)
    assert "start a new run (the task was cleared: a Clear deploys again)" in log, log[-3000:]


def test_C3_a_clear_while_deferred_stops_the_old_run_and_succeeds_on_one_new_run(airflow):
    dag_id = "e2e_opsera_clear_while_deferred"
    pipeline_id, before = scenario(airflow, dag_id, "clear_while_deferred")
    run_id, holder, first = deferred_on_its_run(airflow, dag_id, pipeline_id, before)

    airflow.clear_task(dag_id, run_id, TASK)
    wait_for_try(airflow, dag_id, run_id, 2, "success")
    assert airflow.wait_for_run(dag_id, run_id) == "success"

    old, new = new_runs(airflow, pipeline_id, before)  # exactly one new run
    assert (old["run_count"], old["started_by_token"], old["status"]) == (first["run_count"], AIRFLOW_TOKEN, "stopped")
    assert old["stops"] and {stop["by"] for stop in old["stops"]} == {AIRFLOW_TOKEN}, "the task stopped its old run"
    assert started([new]) == [(first["run_count"] + 1, AIRFLOW_TOKEN, "success", [])]
    assert airflow.xcom(dag_id, run_id, TASK) == new["run_count"], "the task ended on the run its new try started"
    # Who sent the stop: the trigger's on_kill (Airflow 3.3 calls it on the Clear), or the new try, which
    # stops the old run itself while it is still the pipeline's latest and in progress.
    trigger_log = airflow.trigger_log(dag_id, run_id, TASK, holder)
    assert "invoking on_kill" in trigger_log, trigger_log[-3000:]
    log = airflow.task_log(dag_id, run_id, TASK, try_number=2)
    stop_sent = f"Asked Opsera to stop Opsera pipeline {pipeline_id} run {old['run_count']}"
    assert stop_sent in trigger_log + log, f"{trigger_log[-3000:]}\n-----\n{log[-3000:]}"
    assert f"Opsera pipeline {pipeline_id}: " in log and "the task was cleared" in log, log[-3000:]


def test_P3_the_task_marked_failed_after_its_run_ended_leaves_the_persons_next_run_alone(airflow):
    """Worker wait, poll_interval=60: run 1 ends, a person starts run 2, then the task is marked failed before
    its next read. A stop would be Opsera's stop of the pipeline: it would hit the person's run."""
    dag_id = "e2e_opsera_shared_pipeline"
    pipeline_id, before = scenario(airflow, dag_id, "shared")
    person = airflow.mint_token("p3-person")
    run_id = airflow.trigger(dag_id)

    def own_run_ended():
        airflow.check_alive()
        state = airflow.task_instance(dag_id, run_id, TASK)["state"]
        runs = new_runs(airflow, pipeline_id, before)
        if state in ("success", "failed", "up_for_retry") or (runs and not runs[0]["active"] and state != "running"):
            raise AssertionError(f"{TASK} is {state}: it noticed the end of its run, which it reads once a minute")
        return runs[0] if runs and not runs[0]["active"] else None

    # The run (12 s) ends between the task's first status read and its next one, a minute later.
    own = airflow.wait_for(own_run_ended, 120, f"the task's run of {pipeline_id} to end")
    persons = airflow.opsera("/api/v1/pipeline/run", {"pipelineId": pipeline_id}, as_token=person)["runCount"]
    assert persons == own["run_count"] + 1
    airflow.set_task_state(dag_id, run_id, TASK, "failed")

    why = f"run {persons} is the pipeline's latest now, not run {own['run_count']}: a stop would hit it"

    def task_said_why():
        log = airflow.task_log(dag_id, run_id, TASK, try_number=1)
        return log if why in log else None

    log = airflow.wait_for(task_said_why, 60, "the killed try to log why it sent no stop")
    assert f"Not stopping Opsera pipeline {pipeline_id} run {own['run_count']} (the task was marked failed)" in log
    assert airflow.task_instance(dag_id, run_id, TASK)["state"] == "failed"

    # The person's run goes on to its end, unstopped.
    airflow.wait_for(
        lambda: not new_runs(airflow, pipeline_id, before)[1]["active"], 60, f"the person's run {persons} to end"
    )
    assert started(new_runs(airflow, pipeline_id, before)) == [
        (own["run_count"], AIRFLOW_TOKEN, "success", []),
        (persons, person, "success", []),
    ]


def test_K3_a_task_marked_success_while_deferred_leaves_its_run_to_finish(airflow):
    dag_id = "e2e_opsera_mark_success_while_deferred"
    pipeline_id, before = scenario(airflow, dag_id, "mark_success")
    run_id, holder, run = deferred_on_its_run(airflow, dag_id, pipeline_id, before)

    airflow.set_task_state(dag_id, run_id, TASK, "success")
    left = "the task was marked success: the run is left to finish"
    airflow.wait_for(
        lambda: left in airflow.trigger_log(dag_id, run_id, TASK, holder),
        60,
        "the trigger's on_kill to leave the run",
    )
    airflow.wait_for(lambda: not new_runs(airflow, pipeline_id, before)[0]["active"], 60, "the run to end")
    assert started(new_runs(airflow, pipeline_id, before)) == [(run["run_count"], AIRFLOW_TOKEN, "success", [])]
    ti = airflow.task_instance(dag_id, run_id, TASK)
    assert (ti["state"], ti["try_number"]) == ("success", 1)
    assert airflow.wait_for_run(dag_id, run_id) == "success"
    assert "invoking on_kill" in airflow.trigger_log(dag_id, run_id, TASK, holder)
