"""The stack itself works: a DAG with no provider code runs, and its sensor really defers."""

from __future__ import annotations

SMOKE = "e2e_smoke"


def test_components_are_up_and_the_dags_folder_parses(airflow):
    health = airflow.api("GET", "/monitor/health")
    for part in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[part]["status"] == "healthy", health
    airflow.wait_for_dag(SMOKE)
    assert "e2e_smoke.py" not in airflow.import_errors()


def test_a_plain_dag_runs_and_its_sensor_defers(airflow):
    run_id = airflow.trigger(SMOKE)
    seen: dict[str, list[str]] = {}

    def record(states):
        for task_id, state in states.items():
            history = seen.setdefault(task_id, [])
            if state and (not history or history[-1] != state):
                history.append(state)

    assert airflow.wait_for_run(SMOKE, run_id, timeout=120, on_poll=record) == "success", seen
    assert "deferred" in seen["wait_deferred"], seen
    log = airflow.task_log(SMOKE, run_id, "say_hello")
    assert "e2e smoke: hello from a real worker" in log
    assert "e2e smoke: resumed after the trigger fired" in airflow.task_log(SMOKE, run_id, "wait_deferred")
