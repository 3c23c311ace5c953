"""What a pipeline task's try reads before the lifecycle decides: its note, the pipeline's runs, its own state.

:mod:`~airflow_provider_opsera.waiting.lifecycle` decides from these facts; this module only reads
(and writes the note), through the sync hook in the worker and the Task SDK.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_opsera.client.status import OpseraRunStatus, RunOutcome
from airflow_provider_opsera.exceptions import OpseraError, OpseraSummaryShapeError
from airflow_provider_opsera.waiting.lifecycle import IN_PROGRESS, STATE_UNKNOWN, RunNote, state_in_answer


class TaskNote:
    """The task's note of its run in ``task_state_store``, one key per pipeline; without a store, there is none.

    The pipeline id in the key keeps a re-templated id from carrying on with another pipeline's run number.
    """

    def __init__(self, store: Any, pipeline_id: str, log: Any) -> None:
        self.store = store
        self.key = f"opsera_run:{pipeline_id}"
        self.log = log

    def read(self) -> RunNote | None:
        if self.store is None:
            return None
        value = self.store.get(self.key)
        note = RunNote.from_json(value)
        if value is not None and note is None:
            self.log.warning("Ignoring %s in task_state_store: %r is not a note this provider wrote.", self.key, value)
        return note

    def write(self, note: RunNote) -> None:
        """Raises when the store refuses: a try that cannot note its request sends none."""
        if self.store is not None:
            self.store.set(self.key, note.as_json())

    def forget(self) -> None:
        if self.store is None:
            return
        try:
            self.store.delete(self.key)
        except Exception as error:  # a request note left behind is harmless: a retry reads it against the run count
            self.log.warning("Could not delete %s from task_state_store: %s", self.key, error)


class PipelineRuns:
    """The pipeline's latest run and the outcome of its runs, as the try reads them (each outcome once)."""

    def __init__(self, hook: Any, pipeline_id: str, log: Any) -> None:
        self.hook = hook
        self.pipeline_id = pipeline_id
        self.log = log
        self._outcomes: dict[int, RunOutcome] = {}

    def latest(self, *, strict: bool = False) -> int | None:
        """The latest run count from the pipeline's summary; None when the summary does not say it."""
        from airflow_provider_opsera.hooks.responses import latest_run_count

        try:
            return latest_run_count(self.hook.get_pipeline(self.pipeline_id), self.pipeline_id)
        except OpseraSummaryShapeError as error:
            if strict:
                raise
            self.log.warning("%s: a lost run request could not be settled (opsera-doctor checks this).", error)
            return None

    def outcome(self, run_count: int) -> RunOutcome:
        """What the run's status means, read once per try."""
        from airflow_provider_opsera.hooks.responses import run_status

        if run_count not in self._outcomes:
            answer = self.hook.get_pipeline_run_status(self.pipeline_id, run_count)
            status, _ = run_status(answer, f"Opsera pipeline {self.pipeline_id} run {run_count}")
            self._outcomes[run_count] = OpseraRunStatus.outcome(status, self.hook.settings.status_map)
        return self._outcomes[run_count]

    def in_the_way(self) -> tuple[int | None, RunOutcome | None]:
        """The latest run count now, and that run's outcome when it is in progress (a refused request waits it out)."""
        try:
            latest = self.latest()
            if not latest:
                return latest, None
            self._outcomes.pop(latest, None)  # read afresh: it is what Opsera refused the request for
            outcome = self.outcome(latest)
        except OpseraError as error:  # the refusal is what the task reports; what stood in its way is unknown
            self.log.warning("Could not read what run of pipeline %s is in progress: %s", self.pipeline_id, error)
            return None, None
        return latest, outcome if outcome in IN_PROGRESS else None


def task_state_now(ti: Any, log: Any) -> str:
    """The task instance's state in Airflow now, read over the Task SDK (``unknown`` when it cannot be)."""
    read = getattr(ti, "get_task_states", None)
    if read is None:  # Airflow 2: no Task SDK
        return STATE_UNKNOWN
    map_index = getattr(ti, "map_index", -1)
    try:
        answer = read(
            dag_id=ti.dag_id,
            task_ids=[ti.task_id],
            run_ids=[ti.run_id],
            map_index=-1 if map_index is None else map_index,
        )
    except Exception as error:
        log.warning("Could not read the task instance's state: %s", error)
        return STATE_UNKNOWN
    return state_in_answer(answer, ti)
