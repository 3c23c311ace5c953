"""The harness's own check: a plain task and a deferring task, no provider code involved."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
from airflow.sdk import BaseOperator, dag, task


class WaitInTriggerer(BaseOperator):
    """Defers at once for ten seconds, then finishes in its resume method.

    A much shorter wait can meet a known Airflow 3 scheduler race: the executor's late
    "success" for the attempt that deferred arrives after the task was queued again, and
    the scheduler fails the task.
    """

    def execute(self, context):
        self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=10)), method_name="resume")

    def resume(self, context, event=None):
        print("e2e smoke: resumed after the trigger fired")


@dag(dag_id="e2e_smoke", schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["e2e"])
def e2e_smoke():
    @task
    def say_hello():
        print("e2e smoke: hello from a real worker")
        return 42

    say_hello() >> WaitInTriggerer(task_id="wait_deferred")


e2e_smoke()
