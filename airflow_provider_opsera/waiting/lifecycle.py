"""The run lifecycle of a pipeline task: which Opsera run it follows, and when it may stop one.

The README's table "How a pipeline task behaves" is this module in words; every row of it is a
test in ``tests/unit/test_lifecycle.py``. The decisions are pure: they take what is known (the
task's note in ``task_state_store``, its try chain, the pipeline's latest run and the runs'
outcomes) and answer what to do. The operator, the trigger and the resume methods only gather
those facts and carry the answer out.

Three facts of Opsera shape them:

* a pipeline has one run in progress at a time: a run request while one runs (or waits at an
  approval gate) is refused, so the first run after a request is the one it started;
* a stop addresses the pipeline, not a run: it stops whatever run is going, which on a shared
  pipeline may be a person's. A stop is therefore sent only for the task's own run, and only
  while that run is still the pipeline's latest and in progress (:func:`may_stop`);
* a stop is soft: the run's current step finishes first, so a stopped run reports ``running``
  for a while.

A **try chain** is the tries Airflow makes of one task instance between two Clears: a Clear
gives the task instance a new ``max_tries`` (and counts up its DAG run's ``clear_number``),
retries keep both. The note names the chain that wrote it, so a try tells a retry (same chain:
carry on with the run) from a Clear (a new chain: a new run), on every Airflow version alike.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from airflow_provider_opsera.client.status import RunOutcome

#: Task instance states, as Airflow writes them, in which another try of the task is on its way or running:
#: the run this try leaves behind is followed by that try.
SUCCESSOR_STATES = frozenset({"up_for_retry", "up_for_reschedule", "scheduled", "queued", "running", "deferred"})
#: What a task instance whose state could not be read is called here.
STATE_UNKNOWN = "unknown"
#: A cleared task instance has no state.
CLEARED = "cleared"
RESTARTING = "restarting"

IN_PROGRESS = frozenset({RunOutcome.IN_PROGRESS, RunOutcome.PAUSED})


class Chain(NamedTuple):
    """One try chain: Airflow gives a task instance a new ``max_tries`` on a Clear, and its DAG run a new
    ``clear_number`` (also for a Clear of a running task, which keeps ``max_tries``)."""

    max_tries: int | None
    clear_number: int | None

    @classmethod
    def of(cls, context: Mapping[str, Any]) -> Chain:
        ti, dag_run = context.get("ti"), context.get("dag_run")
        return cls(_int_or_none(getattr(ti, "max_tries", None)), _int_or_none(getattr(dag_run, "clear_number", None)))


@dataclass(frozen=True)
class RunNote:
    """What the task keeps in ``task_state_store`` about its run, under one key per pipeline.

    ``run``: the run the chain follows. Before it is known, ``requested``: a run was asked for
    when the pipeline's latest run was ``requested_after`` (None: the summary did not say), and
    the answer is not known yet (the try may be killed before it is). ``stopped``: why the task
    itself asked Opsera to stop ``run``, if it did.
    """

    chain: Chain
    run: int | None = None
    requested: bool = False
    requested_after: int | None = None
    stopped: str | None = None

    def as_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {"chain": list(self.chain)}
        if self.run is not None:
            value["run"] = self.run
        elif self.requested:
            value["requested_after"] = self.requested_after
        if self.stopped is not None:
            value["stopped"] = self.stopped
        return value

    @classmethod
    def from_json(cls, value: Any) -> RunNote | None:
        """The note, or None when ``value`` is not one (written by hand, or by another version)."""
        if not isinstance(value, dict):
            return None
        chain, run, stopped = value.get("chain"), value.get("run"), value.get("stopped")
        if not (isinstance(chain, list) and len(chain) == 2 and all(_is_count(part, True) for part in chain)):
            return None
        if stopped is not None and not isinstance(stopped, str):
            return None
        if _is_count(run) and run > 0:
            return cls(Chain(*chain), run=run, stopped=stopped)
        if run is None and "requested_after" in value and _is_count(value["requested_after"], True):
            return cls(Chain(*chain), requested=True, requested_after=value["requested_after"])
        return None


# -- at the start of a try --


class Begin(enum.Enum):
    START = "start a new run"
    STOP_THEN_START = "stop the chain's earlier run, then start a new one"
    FOLLOW = "follow a run"
    RETURN = "succeed with a run that succeeded"
    FAIL = "fail"


@dataclass(frozen=True)
class Beginning:
    action: Begin
    why: str
    run: int | None = None


#: ``stopped`` of a note written after the task's ``timeout``: a later try of the chain fails the same way.
TIMED_OUT = "timeout"


def how_to_begin(
    note: RunNote | None,
    chain: Chain,
    *,
    has_store: bool,
    later_try_of_chain: bool,
    stop_on_kill: bool,
    latest: int | None,
    outcome_of: Callable[[int], RunOutcome],
) -> Beginning:
    """What a try does first, from its note, its chain and the pipeline's runs.

    ``latest`` is the pipeline's latest run count (None: the summary does not say), ``outcome_of``
    reads a run's outcome. ``later_try_of_chain`` matters only without a store (before Airflow 3.3):
    there, a retry follows the pipeline's latest run while it is in progress.
    """
    if not has_store:
        if later_try_of_chain and latest:
            outcome = outcome_of(latest)
            if outcome in IN_PROGRESS:
                return Beginning(Begin.FOLLOW, f"a retry, and run {latest} is in progress ({outcome.value})", latest)
        return Beginning(Begin.START, "a first try, or the pipeline has no run in progress to follow")
    if note is None:
        return Beginning(Begin.START, "the task has no run yet")
    if note.chain != chain:
        return _after_a_clear(note, latest, outcome_of, stop_on_kill)
    if note.stopped == TIMED_OUT:
        return Beginning(
            Begin.FAIL,
            f"an earlier try of this task timed out waiting for run {note.run}, asked Opsera to stop it and ended "
            "before it could fail the task: failing now, without retries, and starting no other run",
            note.run,
        )
    if note.run is not None:
        return _carry_on_with(note.run, note.stopped, outcome_of(note.run), stop_on_kill)
    return _after_an_unanswered_request(note.requested_after, latest, outcome_of)


def _after_a_clear(
    note: RunNote, latest: int | None, outcome_of: Callable[[int], RunOutcome], stop_on_kill: bool
) -> Beginning:
    earlier = note.run
    if earlier is None and note.requested_after is not None and latest is not None and latest > note.requested_after:
        earlier = note.requested_after + 1  # the run the cleared chain's last request started
    if earlier is not None and earlier == latest and outcome_of(earlier) in IN_PROGRESS:
        return _replace(earlier, "the task was cleared while its run went on", stop_on_kill)
    return Beginning(Begin.START, "the task was cleared: a Clear deploys again")


def _replace(run: int, why: str, stop_on_kill: bool) -> Beginning:
    """A new run once ``run``, still in progress, has ended: stopped first unless ``stop_on_kill`` is off."""
    if stop_on_kill:
        return Beginning(Begin.STOP_THEN_START, f"{why}: run {run} is stopped and a new run started", run)
    return Beginning(Begin.START, f"{why}: a new run is started once run {run} ends (stop_on_kill is off)", run)


def _carry_on_with(run: int, stopped: str | None, outcome: RunOutcome, stop_on_kill: bool) -> Beginning:
    if outcome is RunOutcome.SUCCEEDED:
        return Beginning(Begin.RETURN, f"run {run}, which an earlier try of this chain followed, succeeded", run)
    if outcome is RunOutcome.FAILED:
        return Beginning(Begin.START, f"run {run}, which an earlier try of this chain followed, failed")
    if stopped:  # the task asked Opsera to stop it; a soft stop lets its current step finish first
        return Beginning(Begin.START, f"this task asked Opsera to stop run {run} ({stopped}): the retry starts its own")
    if outcome is RunOutcome.STOPPED:
        return Beginning(
            Begin.FAIL,
            f"run {run}, which an earlier try of this chain followed, was stopped in Opsera, so it did not succeed",
            run,
        )
    return Beginning(Begin.FOLLOW, f"an earlier try of this chain started run {run} ({outcome.value})", run)


def _after_an_unanswered_request(
    requested_after: int | None, latest: int | None, outcome_of: Callable[[int], RunOutcome]
) -> Beginning:
    if requested_after is None or latest is None:
        return Beginning(
            Begin.FAIL,
            "an earlier try asked Opsera for a run and ended before it knew the answer, and the pipeline's summary "
            "does not say its latest run count, so whether a run started is unknown: check the pipeline in Opsera",
        )
    if latest <= requested_after:
        return Beginning(Begin.START, f"an earlier try's run request started nothing (the latest run is {latest})")
    run = requested_after + 1  # the first run after the request is the one it started
    outcome = outcome_of(run)
    if outcome is RunOutcome.FAILED:
        return Beginning(Begin.START, f"an earlier try started run {run} and ended before noting it; it failed")
    if outcome is RunOutcome.SUCCEEDED:
        return Beginning(Begin.RETURN, f"an earlier try started run {run} and ended before noting it; it succeeded", run)
    return Beginning(Begin.FOLLOW, f"an earlier try started run {run} and ended before noting it", run)


# -- when a try ends before its run did --


class Ending(enum.Enum):
    TIMEOUT = "the wait timed out (timeout)"
    EXECUTION_TIMEOUT = "the try ran out of time (execution_timeout)"
    TRY_FAILED = "the try failed while its run went on"
    KILLED = "the try was ended by Airflow"


@dataclass(frozen=True)
class Settlement:
    stop: bool
    why: str


def how_to_settle(
    ending: Ending,
    *,
    stop_on_kill: bool,
    retries_left: bool,
    task_state: str = STATE_UNKNOWN,
    in_triggerer: bool = False,
    has_store: bool = True,
    can_note: bool = True,
) -> Settlement:
    """Whether a try that ends while its run goes on stops that run, or leaves it (to a later try, or to a person).

    ``task_state`` is the task instance's state read as the try is killed (``cleared`` when a Clear
    removed it, ``unknown`` when it could not be read). ``can_note``: the try can still note a stop in
    ``task_state_store`` (not when the kill interrupted a call to Airflow).
    """
    if not stop_on_kill:
        return Settlement(False, "stop_on_kill is off")
    if ending in (Ending.TIMEOUT, Ending.EXECUTION_TIMEOUT):
        return Settlement(True, ending.value)
    if ending is Ending.TRY_FAILED:
        if retries_left:
            return Settlement(False, "the try failed while the run went on; the next try follows the run")
        return Settlement(True, "the task's last try failed while the run went on")
    return _after_a_kill(task_state, in_triggerer=in_triggerer, has_store=has_store, can_note=can_note)


def _after_a_kill(task_state: str, *, in_triggerer: bool, has_store: bool, can_note: bool) -> Settlement:
    if task_state == "success":
        return Settlement(False, "the task was marked success: the run is left to finish")
    if task_state == STATE_UNKNOWN:
        if in_triggerer:  # also called on the stale copy of a trigger another triggerer took over
            return Settlement(False, "the task instance's state could not be read, so it may still be waiting elsewhere")
        if has_store and not can_note:  # a retry would take a stop it finds no note of for someone else's
            return Settlement(False, "the kill came during a call to Airflow: the task's state cannot be read nor a stop noted")
        return Settlement(True, "the task was killed (its state could not be read)")
    if task_state == "deferred" and in_triggerer:
        return Settlement(
            False, "the task is still deferred: this copy of the trigger was handed to another triggerer, which waits on"
        )
    if task_state in (CLEARED, RESTARTING):
        if not has_store and not in_triggerer:
            return Settlement(False, "the task was cleared; without task_state_store its next try follows the run")
        return Settlement(True, "the task was cleared: its next try starts a new run")
    if task_state in SUCCESSOR_STATES:
        return Settlement(False, f"another try of the task follows the run (the task is {task_state})")
    return Settlement(True, f"the task was marked {task_state}")


def may_stop(run: int, latest: int | None, outcome: RunOutcome) -> Settlement:
    """Whether a stop for ``run`` may be sent now: only while it is the pipeline's latest run and in progress."""
    if latest is None:
        return Settlement(False, f"whether run {run} is still the pipeline's latest cannot be told (no run count)")
    if latest != run:
        return Settlement(False, f"run {latest} is the pipeline's latest now, not run {run}: a stop would hit it")
    if outcome not in IN_PROGRESS:
        return Settlement(False, f"run {run} is not in progress ({outcome.value})")
    return Settlement(True, f"run {run} is the pipeline's latest and {outcome.value}")


def task_state_word(state: Any) -> str:
    """A task instance state as :func:`how_to_settle` takes it."""
    if state is None:
        return CLEARED
    return str(getattr(state, "value", state)).lower()


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _is_count(value: Any, allow_none: bool = False) -> bool:
    if value is None:
        return allow_none
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def state_in_answer(task_states: Any, ti: Any) -> str:
    """The state of task instance ``ti`` in a Task SDK ``GetTaskStates`` answer, ``{run_id: {key: state}}``
    (the key is ``<task_id>_<map_index>`` for a mapped task instance); ``unknown`` when it is not there."""
    map_index = getattr(ti, "map_index", -1)
    map_index = -1 if map_index is None else map_index
    key = ti.task_id if map_index < 0 else f"{ti.task_id}_{map_index}"
    states = (task_states or {}).get(ti.run_id) if isinstance(task_states, dict) else None
    if not isinstance(states, dict) or key not in states:
        return STATE_UNKNOWN
    return task_state_word(states[key])
