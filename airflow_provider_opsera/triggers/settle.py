"""How soon after deferring a trigger may fire: the guard against Airflow 3's deferral race.

When a task defers, its worker process exits and the executor reports that exit to the
scheduler as the end of the try, "success". The scheduler takes this report in its loop.
If the trigger fires first, the task resumes under the same try number, and a report
handled after the resumed try is queued or running is taken for the end of the resumed
try: the task fails with "finished with state success, but the task instance's state
attribute is queued" (apache/airflow#66374, #67287, #72716; Airflow 3.3.2 tolerates the
report only while the resumed try is still ``scheduled``). With 24 mapped 4-second runs
at ``poll_interval=2``, 2 of 24 tasks failed this way.

Nothing a trigger can read shows that the report was handled (the task instance stays
``deferred`` either way), so a trigger in a triggerer holds its event until the worker
has had time to exit and the scheduler to run its loop: a fixed allowance for the exit
plus two scheduler loops, the idle loop being ``[scheduler] scheduler_idle_sleep_time``.
The hold counts from the trigger's start, which is never before the deferral, so it
delays only runs that end within seconds. ``dag.test()`` runs triggers without a
triggerer or a scheduler (no race): there is no hold.
"""

from __future__ import annotations

from typing import Any

#: seconds a deferring task's process takes to exit and its executor to report it, on a busy machine
WORKER_EXIT_ALLOWANCE = 10.0
#: scheduler loops after the worker's exit, one to collect the report and one to spare
SCHEDULER_LOOPS = 2


def seconds_before_first_event() -> float:
    """How long after deferring a trigger waits at least before it fires, from Airflow's configuration."""
    from airflow.configuration import conf

    idle_loop = conf.getfloat("scheduler", "scheduler_idle_sleep_time", fallback=1.0)
    return WORKER_EXIT_ALLOWANCE + SCHEDULER_LOOPS * max(idle_loop, 0.0)


def runs_in_a_triggerer(trigger: Any) -> bool:
    """Whether a triggerer runs this trigger: it sets the trigger's database id; ``dag.test()`` does not.

    Not ``triggerer_job_id``: Airflow 3.3's trigger runner sets it from a job id it never fills in.
    """
    return getattr(trigger, "trigger_id", None) is not None
