"""The state of the task a trigger waits for, read when Airflow calls the trigger's ``on_kill``.

Airflow 3.3 calls ``on_kill`` when a person marks a deferred task failed or success or
clears it, and also on the stale copy of a trigger that another triggerer has taken over
(a triggerer that froze and woke up: apache/airflow#73454). Only the task instance's own
state tells them apart (what each means is :func:`~airflow_provider_opsera.waiting.lifecycle.how_to_settle`'s
to say): after a person's action it is no longer ``deferred``; after a reassignment it still
is, since the trigger goes on waiting elsewhere. The triggerer's supervisor answers Task SDK
reads (``GetTaskStates``) over the trigger runner's comms.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import Any

from airflow_provider_opsera.triggers.background import start_in_background
from airflow_provider_opsera.waiting.lifecycle import STATE_UNKNOWN, state_in_answer

#: the share of Airflow's bound on ``on_kill`` (``[triggerer] on_kill_timeout``) the state read may take; the
#: rest is for stopping the work. The supervisor answers its first Task SDK read only once it has built its
#: in-process API: seconds on an idle machine, and 40 s was seen on an overloaded one.
STATE_READ_SHARE = 2 / 3


def state_read_timeout() -> float:
    """Seconds to wait for the supervisor's answer."""
    from airflow.configuration import conf

    return conf.getfloat("triggerer", "on_kill_timeout", fallback=30.0) * STATE_READ_SHARE


class TaskStateUnknown(Exception):
    """The task instance's current state could not be read; the message says why."""


async def current_task_state(ti: Any) -> str:
    """The state of the task instance ``ti`` now, as the metadata database holds it (``cleared``: none)."""
    if ti is None:
        raise TaskStateUnknown("the trigger was given no task instance")
    try:
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.comms import GetTaskStates
    except ImportError:
        raise TaskStateUnknown("this Airflow has no Task SDK to read it with") from None
    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    if comms is None or not hasattr(comms, "asend"):
        raise TaskStateUnknown("there is no channel to the triggerer's supervisor")
    map_index = getattr(ti, "map_index", -1)
    map_index = -1 if map_index is None else map_index
    request = GetTaskStates(dag_id=ti.dag_id, run_ids=[ti.run_id], task_ids=[ti.task_id], map_index=map_index)
    timeout = state_read_timeout()
    try:
        answer = await asyncio.wait_for(comms.asend(request), timeout)
    except asyncio.TimeoutError:
        raise TaskStateUnknown(f"the supervisor did not answer within {timeout:g} s") from None
    except Exception as error:
        raise TaskStateUnknown(f"{type(error).__name__}: {error}") from None
    state = state_in_answer(getattr(answer, "task_states", None), ti)
    if state == STATE_UNKNOWN:
        raise TaskStateUnknown(f"the supervisor's answer has no task instance {ti.task_id} in run {ti.run_id}")
    return state


# Event loops whose supervisor was asked for a state read already.
_PREPARED: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def prepare_state_reads(ti: Any) -> None:
    """Ask the supervisor for one state read in the background, once per event loop, when a wait starts.

    The supervisor builds its in-process API on its first Task SDK read, which can outlast
    the time Airflow gives ``on_kill``; reading once early makes the read in ``on_kill``
    quick. (A connection kept in the metadata database has the same first read made anyway.)
    """
    loop = asyncio.get_running_loop()
    if ti is None or loop in _PREPARED:
        return
    _PREPARED.add(loop)
    start_in_background(_read_ignoring_failure(ti))


async def _read_ignoring_failure(ti: Any) -> None:
    with contextlib.suppress(TaskStateUnknown):  # on_kill reads again, and says why when it cannot
        await current_task_state(ti)
