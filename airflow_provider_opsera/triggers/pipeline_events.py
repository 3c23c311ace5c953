"""Opsera pipeline runs as Airflow asset events: one event per run that ends, in run order.

An ``AssetWatcher`` runs this trigger in the triggerer for as long as a DAG is scheduled
on its asset. Airflow keeps iterating the same ``run()`` after each event; it rebuilds the
trigger from its serialised arguments only when the triggerer restarts or another
triggerer takes the trigger over. So the last run reported (the cursor) cannot live in the
arguments: on Airflow 3.3+ it is kept in the asset state store, which survives both; on
older Airflow 3 it lives in memory only.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Iterable
from typing import Any

from airflow.triggers.base import TriggerEvent

from airflow_provider_opsera.client import validation
from airflow_provider_opsera.client.status import OpseraRunStatus, RunOutcome
from airflow_provider_opsera.exceptions import OpseraError
from airflow_provider_opsera.triggers import stored_args
from airflow_provider_opsera.triggers.polling import _WAITS_ON_LOOP, OpseraPollingTrigger, _release_session_if_last
from airflow_provider_opsera.waiting.events import event_message
from airflow_provider_opsera.waiting.wakeups import PollSchedule
from airflow_provider_opsera.waiting.watch import (
    EVENT_STATUS_OF,
    FAILED,
    STOPPED,
    SUCCESS,
    FailedPolls,
    StatusWatch,
    is_transient,
)

try:
    from airflow.triggers.base import BaseEventTrigger
except ImportError:  # Airflow 2.11 has no event-driven scheduling; the module still imports there
    from airflow.triggers.base import BaseTrigger as BaseEventTrigger  # type: ignore[assignment]

#: the status of an event for a run that has ended (a later run has begun) while its own status says otherwise
ENDED_UNKNOWN = "unknown"
#: the outcomes a watcher may be told to report
ALL_OUTCOMES = (SUCCESS, FAILED, STOPPED, ENDED_UNKNOWN)
#: the outcomes a watcher reports unless told otherwise: every run that ends
REPORTED_BY_DEFAULT = ALL_OUTCOMES

#: after a refusal (401, 403, 404...) or an answer this provider cannot read, polls are this many times further apart
REFUSED_SLOWDOWN = 10

#: seconds after Airflow's trigger runner took an event before the cursor in the store moves past its run. The
#: runner hands its events to the triggerer's supervisor, which writes them to the database, within a second or
#: two; a triggerer that dies before that has its successor read the older cursor and fire the event again
#: (at least once), and one that dies after it has written nothing that is lost.
DELIVERY_SETTLES = 30.0


class RunCursor:
    """The last run a watcher has dealt with (reported, or passed over by ``outcomes``).

    Kept in the asset state store where Airflow gives the trigger one (3.3+), under a key
    naming the pipeline and the outcomes, so a copy of the same watcher on another
    triggerer reads the same value; in memory otherwise. A store that cannot be read or
    written is logged and the cursor carries on in memory: the watcher never stops over it.
    """

    def __init__(self, accessors: Any, key: str, log: Any) -> None:
        self.key = key
        self.log = log
        #: the last run dealt with, in memory: the next poll reads the runs after it
        self.position: int | None = None
        #: the last value written to the store; it stays behind events not yet delivered
        self.kept: int | None = None
        self._accessors = self._each_accessor(accessors)

    @staticmethod
    def _each_accessor(accessors: Any) -> list[Any]:
        if accessors is None:
            return []
        # Airflow versions whose accessors iterate give one per asset when several assets share a trigger.
        if hasattr(type(accessors), "__iter__"):
            return list(accessors)
        return [accessors]

    @property
    def persistent(self) -> bool:
        return bool(self._accessors)

    def _store_failed(self, error: BaseException) -> None:
        if isinstance(error, ValueError):  # Airflow 3.3.2 refuses single-asset calls when several assets share it
            self._accessors = []
            self.log.warning(
                "Several assets watch %s and this Airflow cannot keep a cursor for each: the last reported run "
                "is kept in memory. A triggerer restart then starts from the runs that end afterwards.",
                self.key,
            )
        else:
            self.log.warning(
                "The asset state store did not answer (%s: %s): going on from the last run known in memory.",
                type(error).__name__,
                error,
            )

    async def stored(self) -> int | None:
        """The stored position (the oldest, when several assets keep one), or None."""
        try:
            values = [await accessor.aget(self.key) for accessor in self._accessors]
        except Exception as error:  # the store is a help, not a requirement
            self._store_failed(error)
            return None
        positions = [value for value in values if isinstance(value, int) and not isinstance(value, bool)]
        # The oldest: a partial write then repeats an event for one asset rather than skipping one for another.
        return min(positions) if positions else None

    async def move_to(self, run_count: int) -> None:
        """Here in memory and in the store (where the watcher starts, or starts over: also backwards)."""
        self.position = self.kept = run_count
        await self._write(run_count)

    async def keep(self, run_count: int) -> None:
        """Write ``run_count`` to the store: the runs up to it have been dealt with and need no event again.

        Never backwards: another copy of the watcher (after a takeover) may have moved it further.
        """
        if self.kept is not None and run_count <= self.kept:
            return
        stored = await self.stored()
        if stored is not None and stored >= run_count:
            self.kept = stored
        elif await self._write(run_count):
            self.kept = run_count

    async def _write(self, run_count: int) -> bool:
        try:
            for accessor in self._accessors:
                await accessor.aset(self.key, run_count)
        except Exception as error:
            self._store_failed(error)
            return False
        return True


class OpseraPipelineRunEventTrigger(OpseraPollingTrigger, BaseEventTrigger):
    """Fires one asset event per run of pipeline ``pipeline_id`` that ends, however it was started.

    Use it in an ``AssetWatcher``; a DAG scheduled on the asset then runs once per finished
    run and reads the event from ``triggering_asset_events``::

        runs = Asset("opsera://pipelines/<id>", watchers=[AssetWatcher(
            name="deploy_runs", trigger=OpseraPipelineRunEventTrigger(pipeline_id="<id>"))])

    Each event's payload: ``status`` (``success``, ``failed``, ``stopped``, or ``unknown`` for a
    run whose own status still says otherwise once a later run has begun), ``message``
    (Opsera's), ``pipeline_id``, ``run_count`` and ``run_url`` (the pipeline's page in the
    Opsera portal). Runs are reported in run order, at least once each (the cursor in the
    asset state store moves past a run ``DELIVERY_SETTLES`` seconds after Airflow took its
    event); a run that had ended when the watcher first started is not reported. Each poll
    reads the pipeline's summary (its latest run count) and the status of the runs not yet
    reported.

    Faults never end the watcher: the client retries each request, a poll that still fails
    is logged and the next one comes as usual; a refusal (401, 403, 404) or an answer that
    cannot be read is logged as an error and polls slow down ``REFUSED_SLOWDOWN`` times
    until reading works again.

    :param pipeline_id: the pipeline's id (24 hexadecimal characters)
    :param opsera_conn_id: the Airflow connection to Opsera
    :param poll_interval: seconds between two polls, from 1 to 86400 (a day)
    :param outcomes: the outcomes to report, among ``success``, ``failed``, ``stopped`` and ``unknown``
        (None: every run that ends); runs with other outcomes are passed over
    :param unknown: arguments another version of the provider stored that this one does not
        know: logged and left out. A value this version cannot use is brought into range or
        left out with a warning, never refused: Airflow builds the watcher from a stored row.
    """

    def __init__(
        self,
        pipeline_id: str,
        opsera_conn_id: str = "opsera_default",
        poll_interval: float = 60,
        outcomes: Iterable[str] | None = None,
        **unknown: Any,
    ) -> None:
        super().__init__(opsera_conn_id=opsera_conn_id, poll_interval=poll_interval)
        warn = stored_args.warner(self)
        stored_args.left_out(unknown, warn)  # a watcher has no timeout either: it is left out too
        self.pipeline_id = stored_args.checked_or_kept(validation.object_id, pipeline_id, "pipeline_id", warn)
        self.outcomes = stored_args.choices(outcomes, ALL_OUTCOMES, "outcomes", warn)
        self._cursor: RunCursor | None = None
        self._watches: dict[int, StatusWatch] = {}
        self._run_url: str | None = None
        # (run count, when Airflow took its event): events whose delivery the store does not count yet
        self._delivering: collections.deque[tuple[int, float]] = collections.deque()

    def ids(self) -> dict[str, Any]:
        return {"pipeline_id": self.pipeline_id}

    def subject(self) -> str:
        return f"Opsera pipeline {self.pipeline_id}"

    def serialize(self) -> tuple[str, dict[str, Any]]:
        # Airflow tells one watcher from another by these arguments: they must not change while it runs.
        classpath = f"{type(self).__module__}.{type(self).__qualname__}"
        return classpath, {
            "pipeline_id": self.pipeline_id,
            "opsera_conn_id": self.opsera_conn_id,
            "poll_interval": self.poll_interval,
            "outcomes": self.outcomes,
        }

    @property
    def cursor_key(self) -> str:
        return f"opsera.pipeline_runs.{self.pipeline_id}.{'+'.join(self.outcomes or ('all',))}.last_run"

    @property
    def cursor(self) -> RunCursor:
        if self._cursor is None:
            self._cursor = RunCursor(getattr(self, "asset_state_store", None), self.cursor_key, self.log)
        return self._cursor

    # -- the loop --

    async def run(self) -> AsyncIterator[TriggerEvent]:
        loop = asyncio.get_running_loop()
        _WAITS_ON_LOOP[loop] = _WAITS_ON_LOOP.get(loop, 0) + 1
        try:
            async for event in self.watch_runs():
                yield event
        finally:
            await _release_session_if_last(loop)

    async def watch_runs(self) -> AsyncIterator[TriggerEvent]:
        """Poll forever; each poll yields the events of the runs that ended since the last one."""
        failed_polls = FailedPolls(self.tolerated_failed_polls)
        schedule = PollSchedule(self.poll_interval, self._clock)
        refused: str | None = None
        while True:
            try:
                await self.keep_delivered()
                events = await self.poll()
            except Exception as error:  # a watcher logs every failure and carries on
                refused = self.note_failed_poll(error, failed_polls, refused)
                await self._sleep(self.poll_interval * REFUSED_SLOWDOWN if refused else schedule.sleep_before_next())
                continue
            if refused is not None or failed_polls.count:
                self.log.info("Reading the runs of %s works again.", self.subject())
            refused = None
            failed_polls.ok()
            for event in events:
                yield event
                self.handed_over(event.payload["run_count"])  # Airflow's runner asks for more once it holds this one
            await self._sleep(schedule.sleep_before_next())

    def handed_over(self, run_count: int) -> None:
        """Airflow's trigger runner holds the event of ``run_count``; it writes it to the database shortly."""
        self._delivering.append((run_count, self._clock()))

    async def keep_delivered(self) -> None:
        """Move the stored cursor up to the runs whose events have been with Airflow for ``DELIVERY_SETTLES`` s."""
        cursor = self.cursor
        if cursor.position is None:
            return
        now = self._clock()
        while self._delivering and now - self._delivering[0][1] >= DELIVERY_SETTLES:
            self._delivering.popleft()
        await cursor.keep(self._delivering[0][0] - 1 if self._delivering else cursor.position)

    def note_failed_poll(self, error: BaseException, failed_polls: FailedPolls, refused: str | None) -> str | None:
        """Log a failed poll; answer the refusal now in force (polls slow down), or None (they go on as usual)."""
        subject = self.subject()
        reason = event_message(  # bounded and without a known secret, as an event's message would be
            str(error) if isinstance(error, OpseraError) else f"{type(error).__name__}: {error}"
        )
        if isinstance(error, OpseraError) and is_transient(error):
            if failed_polls.tolerate(error):
                self.log.warning(
                    "Reading the runs of %s failed (%d in a row); polling on: %s", subject, failed_polls.count, reason
                )
                return None
            text = (
                f"{subject}: reading its runs keeps failing ({failed_polls.tolerated} times in a row or more): {reason}"
            )
        else:
            text = f"{subject}: {reason}"
        if text != refused:  # once per distinct refusal, not once per slow poll
            self.log.error(
                "%s. No run of it is reported until this is fixed; polling every %g s instead of %g s meanwhile.",
                text.rstrip("."),
                self.poll_interval * REFUSED_SLOWDOWN,
                self.poll_interval,
            )
        return text

    async def poll(self) -> list[TriggerEvent]:
        """One poll: the pipeline's latest run count, then the status of each run not yet dealt with."""
        from airflow_provider_opsera.hooks.responses import latest_run_count

        hook = self.hook
        cursor = self.cursor
        latest = latest_run_count(await hook.get_pipeline(self.pipeline_id), self.pipeline_id)
        if cursor.position is None:
            await self.start_cursor(hook, latest)
            return []
        if latest < cursor.position:
            self.log.warning(
                "%s reports %d runs, fewer than the %d already seen: counting from its latest run again.",
                self.subject(),
                latest,
                cursor.position,
            )
            await cursor.move_to(latest)
            return []
        events = []
        answers: dict[int, tuple[str, str]] = {}
        tenant = (await hook.settings()).status_map
        for run_count in range(cursor.position + 1, latest + 1):
            status, message = answers.get(run_count) or await self.read_run(hook, run_count)
            outcome: RunOutcome | None = self._watch(run_count, tenant).observe(status)
            if not outcome.is_terminal:
                later = await self._a_later_run_that_began(hook, run_count, latest, answers, tenant)
                if later is None:
                    break  # runs are reported in run order: the next ones wait for this one
                outcome = None  # it has ended: a pipeline runs one run at a time
                message = (
                    f"{self.subject()} run {run_count} reports {status!r}, but run {later} has begun since, so it has "
                    "ended; Opsera does not say how."
                )
            event = await self.report(run_count, outcome, status, message)
            if event is not None:
                events.append(event)
        return events

    async def _a_later_run_that_began(
        self, hook: Any, run_count: int, latest: int, answers: dict[int, tuple[str, str]], tenant: Any
    ) -> int | None:
        """The first run after ``run_count`` that has begun (read once per poll), or None."""
        for later in range(run_count + 1, latest + 1):
            if later not in answers:
                answers[later] = await self.read_run(hook, later)
            if OpseraRunStatus.has_begun(answers[later][0], dict(tenant)):
                return later
        return None

    async def start_cursor(self, hook: Any, latest: int) -> None:
        """Where the watcher starts: the stored cursor, else the latest run that had ended when it started."""
        cursor = self.cursor
        stored = await cursor.stored()
        if stored is not None:
            cursor.position = stored
            if latest > stored:
                self.log.info(
                    "%s: carrying on after run %d, the last one reported; runs up to %d are read next.",
                    self.subject(),
                    stored,
                    latest,
                )
            return
        start = latest
        if latest > 0:
            status, _ = await self.read_run(hook, latest)
            if not self._watch(latest, (await hook.settings()).status_map).observe(status).is_terminal:
                start = latest - 1  # still going when the watcher started: reported when it ends
        where = "the asset state store" if cursor.persistent else "memory (no asset state store here)"
        self.log.info(
            "Watching %s from run %d on (its latest run is %d); the last reported run is kept in %s.",
            self.subject(),
            start + 1,
            latest,
            where,
        )
        await cursor.move_to(start)

    async def report(
        self, run_count: int, outcome: RunOutcome | None, status: str, message: str
    ) -> TriggerEvent | None:
        """The event of a run that ended (``outcome`` None: how is not known), or None when ``outcomes`` passes it
        over or another copy reported it."""
        cursor = self.cursor
        self._watches.pop(run_count, None)
        event_status = ENDED_UNKNOWN if outcome is None else EVENT_STATUS_OF[outcome]
        if event_status not in (self.outcomes or REPORTED_BY_DEFAULT):
            cursor.position = run_count
            return None
        # Another triggerer may run a copy of this watcher for a while (it took the trigger over while
        # this one looked dead): the shared cursor, read just before firing, shows a run it delivered.
        stored = await cursor.stored() if cursor.persistent else None
        if stored is not None and stored >= run_count:
            self.log.info("%s run %d was already reported by another triggerer.", self.subject(), run_count)
            cursor.position = cursor.kept = stored
            return None
        # The store moves past this run only once Airflow holds its event (keep_delivered): at least once.
        cursor.position = run_count
        return TriggerEvent(
            {
                "status": event_status,
                "message": event_message(message or f"{self.subject()} run {run_count} ended: {status}"),
                "pipeline_id": self.pipeline_id,
                "run_count": run_count,
                "run_url": await self.run_url(),
            }
        )

    async def read_run(self, hook: Any, run_count: int) -> tuple[str, str]:
        from airflow_provider_opsera.hooks.responses import run_status

        answer = await hook.get_pipeline_run_status(self.pipeline_id, run_count)
        return run_status(answer, f"{self.subject()} run {run_count}")

    async def run_url(self) -> str:
        if self._run_url is None:
            self._run_url = (await self.hook.settings()).pipeline_url(self.pipeline_id)
        return self._run_url

    def _watch(self, run_count: int, tenant: Any = ()) -> StatusWatch:
        if run_count not in self._watches:
            # a watcher never ends: a status nobody knows is logged, not a reason to stop watching
            self._watches[run_count] = StatusWatch(
                f"{self.subject()} run {run_count}", self.log, tenant=tenant, unknown_grace=None
            )
        return self._watches[run_count]

    async def on_kill(self) -> None:
        """Nothing to stop: the watcher only reads."""
