"""The polling loop both Opsera triggers run in Airflow's triggerer.

A trigger is serialised into Airflow's database and rebuilt in the triggerer (perhaps
another one, after a restart), so it carries only ids, the connection id and timing;
the deadline is stored as an absolute time so a restart does not extend it. The
token is read from the connection at run time by the async client, never serialised.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any

# The same import path on Airflow 2.11 and 3.x: triggers run in the triggerer, not the task SDK.
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_opsera.exceptions import OpseraError, OpseraUnknownStatusError
from airflow_provider_opsera.triggers import stored_args
from airflow_provider_opsera.triggers.background import start_in_background
from airflow_provider_opsera.triggers.settle import runs_in_a_triggerer, seconds_before_first_event
from airflow_provider_opsera.triggers.task_state import TaskStateUnknown, current_task_state, prepare_state_reads
from airflow_provider_opsera.waiting.events import event_message
from airflow_provider_opsera.waiting.lifecycle import STATE_UNKNOWN, Ending, how_to_settle
from airflow_provider_opsera.waiting.wakeups import PollSchedule
from airflow_provider_opsera.waiting.watch import ERROR, EVENT_STATUS_OF, TIMEOUT, Deadline, FailedPolls, StatusWatch

# Waits running on each event loop. The async client shares one HTTP session per loop; the
# last wait to end on a loop closes it, so a short-lived loop (``dag.test()`` runs each
# trigger in its own) leaves no session open, while a busy triggerer keeps reusing it.
_WAITS_ON_LOOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, int] = weakref.WeakKeyDictionary()


async def _release_session_if_last(loop: asyncio.AbstractEventLoop) -> None:
    _WAITS_ON_LOOP[loop] = _WAITS_ON_LOOP.get(loop, 1) - 1
    if _WAITS_ON_LOOP[loop] <= 0:
        del _WAITS_ON_LOOP[loop]
        from airflow_provider_opsera.hooks.opsera_async import close_shared_session

        await close_shared_session()


class OpseraPollingTrigger(BaseTrigger):
    """Reads one status per poll until it is final, the deadline passes, or reading keeps failing.

    Subclasses say what they watch: :meth:`ids` (the event carries them back to the
    task), :meth:`subject`, :meth:`read_status` (one request) and, when the remote work
    can be stopped, :meth:`stop_remote`.

    Errors: the async client retries each request with backoff; on top of that a
    transient failure (5xx, 429, a dropped connection, a garbled body) only ends the
    wait after it repeats for ``tolerated_failed_polls`` polls in a row. A refusal
    (401, 403, 404, a bad id) ends it at once with an ``error`` event.
    """

    tolerated_failed_polls = FailedPolls().tolerated
    # Tests put a fake clock here; neither is part of what is serialised.
    _sleep = staticmethod(asyncio.sleep)
    _clock = staticmethod(time.time)

    def __init__(
        self,
        *,
        opsera_conn_id: str = "opsera_default",
        poll_interval: float = 30,
        timeout: float | None = None,
        end_time: float | None = None,
        **unknown: Any,
    ) -> None:
        super().__init__()
        self.opsera_conn_id = opsera_conn_id
        # Read leniently: Airflow rebuilds a trigger from whatever an earlier version stored (stored_args.py).
        warn = stored_args.warner(self)
        self.poll_interval = stored_args.poll_interval(poll_interval, warn)
        self.timeout, self.end_time = stored_args.deadline(timeout, end_time, self._clock, warn)
        stored_args.left_out(unknown, warn)
        self._hook: Any = None

    # -- what a subclass says --

    def ids(self) -> dict[str, Any]:
        raise NotImplementedError

    def subject(self) -> str:
        raise NotImplementedError

    async def read_status(self, hook: Any) -> tuple[str, str]:
        """One request: the status string and Opsera's message (may be empty)."""
        raise NotImplementedError

    async def stop_remote(self, hook: Any, reason: str) -> None:
        """Stop the watched work, when Opsera offers a way and it is still the work this trigger watches."""

    async def follow(self, hook: Any, answer: tuple[str, str]) -> None:
        """After each status read (``answer``: the status and Opsera's message), before anything is said of it:
        what a subclass shows of the work meanwhile (the default shows nothing). Raises nothing."""

    def event_fields(self) -> dict[str, Any]:
        """What the event carries besides its status, message and ids (the default: nothing)."""
        return {}

    # -- serialisation --

    def serialize(self) -> tuple[str, dict[str, Any]]:
        classpath = f"{type(self).__module__}.{type(self).__qualname__}"
        return classpath, {
            **self.ids(),
            "opsera_conn_id": self.opsera_conn_id,
            "poll_interval": self.poll_interval,
            "timeout": self.timeout,
            "end_time": self.end_time,
        }

    # -- the loop --

    def make_hook(self) -> Any:
        from airflow_provider_opsera.hooks.opsera_async import OpseraAsyncHook

        return OpseraAsyncHook(self.opsera_conn_id)

    @property
    def hook(self) -> Any:
        if self._hook is None:
            self._hook = self.make_hook()
        return self._hook

    def event(self, status: str, message: str) -> TriggerEvent:
        return TriggerEvent({"status": status, "message": event_message(message), **self.ids(), **self.event_fields()})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        loop = asyncio.get_running_loop()
        started = self._clock()
        if self._can_stop() and runs_in_a_triggerer(self):
            prepare_state_reads(self.task_instance)  # so that on_kill can read the task's state in time
        _WAITS_ON_LOOP[loop] = _WAITS_ON_LOOP.get(loop, 0) + 1
        try:
            event = await self.wait_for_final_event()
        finally:
            await _release_session_if_last(loop)
        await self._hold_first_event(started)
        yield event

    async def _hold_first_event(self, started: float) -> None:
        """Fire no sooner after deferring than Airflow 3's deferral race allows (see triggers/settle.py)."""
        if not runs_in_a_triggerer(self):
            return
        hold = started + seconds_before_first_event() - self._clock()
        if hold > 0:
            self.log.info("%s ended within seconds of deferring: firing in %.1f s.", self.subject(), hold)
            await self._sleep(hold)

    async def wait_for_final_event(self) -> TriggerEvent:
        from airflow_provider_opsera.hooks.retry import calls_end_by

        hook = self.hook
        subject = self.subject()
        settings = await self._settings_or_none()
        watch = StatusWatch(subject, self.log, tenant=settings.status_map if settings else (), clock=self._clock)
        failed_polls = FailedPolls(self.tolerated_failed_polls)
        deadline = Deadline(self.end_time, self._clock)
        schedule = PollSchedule(self.poll_interval, self._clock)
        self._warn_if_the_token_expires_first(settings, deadline)
        # The task deferred right after starting the work: nothing to read yet. How soon the
        # event may fire after deferring is for run() to say (Airflow 3's race: triggers/settle.py).
        await self._sleep(deadline.next_sleep(schedule.sleep_before_next()))
        while True:
            try:
                with calls_end_by(deadline.end_time, self._clock):  # a read's retries end with the wait
                    status, message = await self.read_status(hook)
                await self.follow(hook, (status, message))  # what the work showed, before what is said of it
                outcome = watch.observe(status)
            except OpseraError as error:
                if not failed_polls.tolerate(error):
                    unknown = isinstance(error, OpseraUnknownStatusError)
                    return self.event(ERROR, str(error) if unknown else f"Could not read the status of {subject}: {error}")
                self.log.warning(
                    "Reading the status of %s failed (%d in a row, %d tolerated); polling on: %s",
                    subject,
                    failed_polls.count,
                    failed_polls.tolerated - 1,
                    error,
                )
            except Exception as error:  # a bug or an unexpected answer: end the wait with its reason
                return self.event(ERROR, f"Waiting on {subject} failed: {type(error).__name__}: {error}")
            else:
                failed_polls.ok()
                if outcome.is_terminal:
                    return self.event(EVENT_STATUS_OF[outcome], message or f"{subject} ended: {status}")
            if deadline.passed():
                return self.event(TIMEOUT, f"{subject} did not finish within {self.timeout_text()}.")
            await self._sleep(deadline.next_sleep(schedule.sleep_before_next()))

    async def _settings_or_none(self) -> Any:
        try:
            return await self.hook.settings()
        except Exception:  # a connection that cannot be read is for the first poll to report
            return None

    def _warn_if_the_token_expires_first(self, settings: Any, deadline: Deadline) -> None:
        from airflow_provider_opsera.client.token import expires_before_wait_ends

        warning = expires_before_wait_ends(settings.token_expires, deadline.remaining()) if settings else None
        if warning:
            self.log.warning(warning)

    def timeout_text(self) -> str:
        return f"{self.timeout:g} seconds" if self.timeout is not None else "its deadline"

    async def on_kill(self) -> None:
        """Airflow 3.3+: a person ended the deferred task (marked it failed or success, cleared it), or a stale copy.

        Airflow also calls this on a stale copy of a trigger another triggerer took over
        (apache/airflow#73454), so what becomes of the work follows the task instance's own
        state, as :func:`~airflow_provider_opsera.waiting.lifecycle.how_to_settle` says (when in
        doubt it is left running), and a stop is sent only for work that is still this
        trigger's. Not called on a triggerer restart, a trigger timeout or a normal end.
        Raises nothing but its own cancel.
        """
        if not self._can_stop():
            return
        # Airflow cancels a trigger again on every state sync (about once a second) until it has ended,
        # and that cancels on_kill too: the stop runs in a task of its own, which a cancel does not reach.
        stop = start_in_background(self._stop_after_kill())
        try:
            await asyncio.shield(stop)
        except asyncio.CancelledError:
            if not stop.done():
                self.log.info("Airflow ended on_kill early; stopping %s goes on in the triggerer.", self.subject())
            raise

    async def _stop_after_kill(self) -> None:
        try:
            state = await current_task_state(self.task_instance)
        except TaskStateUnknown as error:
            self.log.info("The state of the task waiting on %s could not be read: %s.", self.subject(), error)
            state = STATE_UNKNOWN
        settlement = how_to_settle(
            Ending.KILLED, stop_on_kill=True, retries_left=False, task_state=state, in_triggerer=True
        )
        if not settlement.stop:
            self.log.info("Not stopping %s: %s.", self.subject(), settlement.why)
            return
        loop = asyncio.get_running_loop()
        _WAITS_ON_LOOP[loop] = _WAITS_ON_LOOP.get(loop, 0) + 1
        try:
            await self.stop_remote(self.hook, settlement.why)
        except Exception as error:
            self.log.warning("Could not stop %s after the task was ended: %s", self.subject(), error)
        finally:
            await _release_session_if_last(loop)

    def _can_stop(self) -> bool:
        """Whether Opsera offers a stop for what this trigger watches (the subclass says how)."""
        return type(self).stop_remote is not OpseraPollingTrigger.stop_remote
