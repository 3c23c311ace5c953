"""The example DAGs through ``dag.test()``: tasks, triggers (run in-process) and resume methods, for real.

The emulator runs at 200x real time and the DAGs poll every second, so each DAG takes seconds.
"""

from __future__ import annotations


def _states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}


class Output(str):
    """Everything captured: stdout, stderr and log records (where a line lands depends on which logging
    Airflow set up, and on the tests that ran before). ``count`` looks at each channel apart."""

    def __new__(cls, *channels: str):
        text = super().__new__(cls, "".join(channels))
        text.channels = channels
        return text

    def count(self, part: str) -> int:  # type: ignore[override]
        return max(channel.count(part) for channel in self.channels)


def _run(load_example_dag, name: str, capfd, caplog):
    caplog.set_level("INFO")
    dag_run = load_example_dag(name).test()
    return dag_run, Output(*capfd.readouterr(), caplog.text)


def test_pipeline_dag_runs_in_the_worker_and_deferred(load_example_dag, emulator_connection, capfd, caplog):
    dag_run, text = _run(load_example_dag, "example_opsera_pipeline", capfd, caplog)
    assert _states(dag_run) == {"run_pipeline_sync": "success", "run_pipeline_deferred": "success"}
    assert str(getattr(dag_run.state, "value", dag_run.state)) == "success"
    # both runs' console output reached the task log
    assert text.count("[build] Compiled successfully") >= 2
    assert "Blank Template's Run 1 was successful." in text
    assert "Blank Template's Run 2 was successful." in text
    assert "running trigger in line" in text  # the second task really deferred
    assert emulator_connection.request_count("POST", "/api/v1/pipeline/run") == 2


def test_failure_dag_fails_with_opseras_message_and_the_console(load_example_dag, emulator_connection, capfd, caplog):
    dag_run, text = _run(load_example_dag, "example_opsera_pipeline_failure", capfd, caplog)
    assert _states(dag_run) == {"run_broken_build": "failed"}
    assert str(getattr(dag_run.state, "value", dag_run.state)) == "failed"
    assert "[unit tests] FAILED tests/test_pricing.py::test_discount" in text
    assert "Broken Build's Run 1 failed at step 'unit tests'" in text
    assert "Opsera says:" in text  # the failure callback got the exception


def test_task_sensor_dag_waits_in_the_worker_and_deferred(load_example_dag, emulator_connection, capfd, caplog):
    dag_run, text = _run(load_example_dag, "example_opsera_task_sensor", capfd, caplog)
    assert _states(dag_run) == {
        "start_task_run_on_emulator": "success",
        "wait_for_task_poke": "success",
        "wait_for_task_deferred": "success",
    }
    assert text.count("[push] Sync complete") >= 2
