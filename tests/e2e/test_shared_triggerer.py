"""A triggerer that runs other teams' triggers too survives what the provider's waits can bring it.

One real ``airflow triggerer`` (the other is frozen for the test, so this one holds every trigger)
is given a trigger row in a form an earlier version of the provider wrote and today's checks refuse
(``poll_interval``/``timeout`` of ``stored_trigger_forms.json``), more waits on an Opsera host that
takes requests and never answers than the client's pool has connections to it, then a wait on the
healthy emulator and a plain ``DateTimeTrigger``. The triggerer keeps running, the old row ends its
own task through its trigger's event, the healthy wait and the timer end in time.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

from airflow_provider_opsera.hooks.opsera_async import POOL_SIZE
from tests.e2e.stack import Stack
from tests.emulator.loopback import SocketServer

LOAD_DAG = "e2e_opsera_shared_triggerer_load"
NEIGHBOURS_DAG = "e2e_opsera_shared_triggerer_neighbours"
HOLDER, FROZEN = "triggerer-1", "triggerer-2"
HANGING_WAITS = 20  # as many as the load DAG maps
LONG_SOAK = "5fd56d90979ee048ee660627"  # 1800 emulated seconds: still running when the old row's wait reads it
FORMS = json.loads((Path(__file__).resolve().parents[1] / "emulator" / "stored_trigger_forms.json").read_text())
#: seconds from triggering the timer's DAG to its moment: time for its worker to start and defer
TIMER_LEAD = 45
#: how late after its moment the timer may be seen to have fired (the triggerer's loop and event handling)
TIMER_SLACK = 10


def old_row(run_count: int) -> dict:
    """A pipeline-run row with ``timeout=0`` (accepted until the checks were tightened) and without ``fetch_logs``
    (added since), on a run that is going."""
    [form] = [
        form
        for form in FORMS
        if form["classpath"].endswith("OpseraPipelineRunTrigger")
        and form["form"]["timeout"] == "zero"
        and "fetch_logs" not in form["kwargs"]
    ]
    kwargs = {**form["kwargs"], "pipeline_id": LONG_SOAK, "run_count": run_count}
    return {"classpath": form["classpath"], "kwargs": kwargs}


def hanging_server(let_go: threading.Event) -> SocketServer:
    def handle(sock) -> None:
        sock.recv(65536)
        let_go.wait(600)

    return SocketServer(handle)


def ti_state(airflow: Stack, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str | None:
    rows = airflow.query(
        "SELECT state FROM task_instance WHERE dag_id = %s AND run_id = %s AND task_id = %s AND map_index = %s",
        (dag_id, run_id, task_id, map_index),
    )
    return rows[0]["state"] if rows else None


def test_a_shared_triggerer_survives_an_old_row_and_a_hanging_host_and_fires_other_triggers_on_time(airflow):
    airflow.sync_dags()
    for dag_id in (LOAD_DAG, NEIGHBOURS_DAG):
        airflow.wait_for_dag(dag_id)
    airflow.opsera("/api/v1/pipeline/reset", {"pipelineId": LONG_SOAK})
    let_go = threading.Event()
    load_run = None
    airflow.signal(FROZEN, signal.SIGSTOP)
    try:
        with hanging_server(let_go) as hanging:
            airflow.api(
                "POST",
                "/connections",
                json={
                    "connection_id": "opsera_hanging",
                    "conn_type": "opsera",
                    "host": f"http://127.0.0.1:{hanging.port}",
                    "password": "hanging-host-token",
                    "extra": json.dumps({"timeout": 300}),
                },
                expect=(200, 201, 409),
            )
            run_count = airflow.opsera("/api/v1/pipeline/run", {"pipelineId": LONG_SOAK})["runCount"]
            load_run = airflow.trigger(LOAD_DAG, conf={"stored_row": old_row(run_count)})

            def pool_full() -> bool:
                airflow.check_alive()
                return hanging.connections >= POOL_SIZE

            airflow.wait_for(pool_full, 240, f"{POOL_SIZE} requests in flight to the hanging host")

            timer_at = time.time() + TIMER_LEAD
            neighbours = airflow.trigger(NEIGHBOURS_DAG, conf={"timer_at": timer_at})
            seen: dict[str, float] = {}

            def neighbours_done() -> bool:
                airflow.check_alive()
                state = ti_state(airflow, NEIGHBOURS_DAG, neighbours, "timer")
                if state == "deferred":
                    seen.setdefault("deferred", time.time())
                elif "deferred" in seen:
                    seen.setdefault("fired", time.time())
                return airflow.dag_run(NEIGHBOURS_DAG, neighbours)["state"] in ("success", "failed")

            airflow.wait_for(neighbours_done, TIMER_LEAD + 180, "the healthy wait and the timer to end", 0.25)
            states = airflow.task_states(NEIGHBOURS_DAG, neighbours)
            hanging_states = {ti_state(airflow, LOAD_DAG, load_run, "hanging_wait", n) for n in range(HANGING_WAITS)}
            connections = hanging.connections

            airflow.wait_for(
                lambda: ti_state(airflow, LOAD_DAG, load_run, "stored_row") in ("success", "failed"),
                120,
                "the old row's task to end",
            )
            stored_row_log = airflow.task_log(LOAD_DAG, load_run, "stored_row")
            holder_log = airflow.processes[HOLDER].tail(100_000)
    finally:
        let_go.set()
        if load_run is not None:
            airflow.api("PATCH", f"/dags/{LOAD_DAG}/dagRuns/{load_run}", json={"state": "failed"}, expect=(200, 404))
        airflow.api("DELETE", "/connections/opsera_hanging", expect=(204, 404))
        airflow.opsera("/api/v1/pipeline/reset", {"pipelineId": LONG_SOAK})
        airflow.signal(FROZEN, signal.SIGCONT)

    assert states == {"healthy_wait": "success", "timer": "success"}, states
    assert seen.get("deferred", float("inf")) < timer_at, "the timer deferred only after its moment"
    assert seen["fired"] - timer_at <= TIMER_SLACK, f"the timer fired {seen['fired'] - timer_at:.1f} s late"
    assert hanging_states == {"deferred"}  # still waiting on the hanging host, which never answered
    assert connections == POOL_SIZE  # the pool held: the waits beyond it queued for a connection
    assert "resumed with event status=timeout" in stored_row_log, stored_row_log[-3000:]
    assert "Trigger runner failed" not in holder_log
    assert airflow.processes[HOLDER].alive()
