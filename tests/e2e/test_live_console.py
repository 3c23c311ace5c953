"""A deferred run's console output reaches the task's log while the run goes on, each line once overall.

The takeover DAG's run (three 20-second stages on the emulator's clock) is waited on in a triggerer; the
task's log, read through Airflow's REST API as the UI reads it, shows a console line of the run while the
task is still deferred, and once the task has resumed, every line once, in order.
"""

from __future__ import annotations

from tests.e2e.test_production import CONSOLE_LINES, TAKEOVER_DAG, TASK, assert_console_lines_once_in_order


def test_a_deferred_tasks_log_shows_the_console_of_a_run_that_has_not_ended(airflow):
    airflow.wait_for_dag(TAKEOVER_DAG)
    run_id = airflow.trigger(TAKEOVER_DAG)

    def a_line_while_deferred():
        airflow.check_alive()
        state = airflow.task_instance(TAKEOVER_DAG, run_id, TASK)["state"]
        if state in ("success", "failed", "up_for_retry"):
            raise AssertionError(f"{TASK} ended {state} before its log showed a console line while deferred")
        if state != "deferred":
            return None
        log = airflow.task_log(TAKEOVER_DAG, run_id, TASK)
        # read while deferred, and still deferred after: the line came from the trigger, not the resume
        shown = CONSOLE_LINES[0] in log and airflow.task_instance(TAKEOVER_DAG, run_id, TASK)["state"] == "deferred"
        return log if shown else None

    log = airflow.wait_for(a_line_while_deferred, 120, "a console line in the log of the deferred task")
    assert CONSOLE_LINES[-1] not in log, "the run's last line was already there: the run had ended"

    assert airflow.wait_for_run(TAKEOVER_DAG, run_id, timeout=180) == "success"
    assert_console_lines_once_in_order(airflow.task_log(TAKEOVER_DAG, run_id, TASK))
