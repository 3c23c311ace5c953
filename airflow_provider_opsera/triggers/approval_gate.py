"""Waits, in Airflow's triggerer, on an Opsera approval gate: for a run to reach one, then for its decision.

:class:`OpseraApprovalGateTrigger` reads the pipeline's summary until run ``run_count``
waits at an approval gate, or ends. :class:`OpseraGateAnswerTrigger` waits for the
answer to the gate's request in Airflow's "Required actions" while it watches the gate in
Opsera: a gate decided there first (in Opsera's UI, Slack, ...) closes the request. Neither
holds a worker slot; neither sends a decision (the task does, after reading the gate again).

Like every trigger of this provider, they are rebuilt from their stored arguments by
whichever triggerer runs them, so ``__init__`` never raises over a value: a value that
cannot be used ends the wait at once with an ``error`` event saying which.
"""

from __future__ import annotations

import sys
from typing import Any

from airflow.triggers.base import TriggerEvent

from airflow_provider_opsera.client import validation
from airflow_provider_opsera.client.status import OpseraRunStatus
from airflow_provider_opsera.exceptions import OpseraError
from airflow_provider_opsera.triggers.polling import OpseraPollingTrigger
from airflow_provider_opsera.waiting import gate_request
from airflow_provider_opsera.waiting.events import event_message
from airflow_provider_opsera.waiting.gates import GateState, gate_state
from airflow_provider_opsera.waiting.wakeups import PollSchedule
from airflow_provider_opsera.waiting.watch import ERROR, EVENT_STATUS_OF, TIMEOUT, Deadline, FailedPolls

#: the run waits at an approval gate (OpseraApprovalGateTrigger)
GATE = "gate"
#: the request was answered: by a person, or on the task's behalf when the response timed out (OpseraGateAnswerTrigger)
ANSWERED = "answered"
#: the gate was decided in Opsera before anyone answered in Airflow (OpseraGateAnswerTrigger)
DECIDED_IN_OPSERA = "decided_in_opsera"

#: seconds between two reads of the request's answer (Airflow's own wait reads it every 5 s)
ANSWER_READ_INTERVAL = 5.0


class _GateWaitTrigger(OpseraPollingTrigger):
    """One read per wake-up until :meth:`poll` has an event, the deadline passes, or reading keeps failing."""

    def __init__(
        self,
        *,
        pipeline_id: Any,
        run_count: Any,
        opsera_conn_id: Any = "opsera_default",
        poll_interval: Any = 30,
        timeout: Any = None,
        end_time: Any = None,
    ) -> None:
        problems = []
        try:
            poll_interval = validation.poll_interval(poll_interval)
        except ValueError as error:
            problems.append(str(error))
            poll_interval = 30
        try:
            timeout = validation.timeout(timeout)
        except ValueError as error:
            problems.append(str(error))
            timeout = None
        if end_time is not None and (isinstance(end_time, bool) or not isinstance(end_time, (int, float))):
            problems.append(f"end_time must be a time in seconds, got {end_time!r}")
            end_time = None
        super().__init__(opsera_conn_id=opsera_conn_id, poll_interval=poll_interval, timeout=timeout, end_time=end_time)
        self.pipeline_id = pipeline_id
        self.run_count = run_count
        try:
            self.pipeline_id = validation.object_id(pipeline_id, "pipeline_id")
            self.run_count = validation.positive_int(run_count, "run_count")
        except ValueError as error:
            problems.append(str(error))
        self.problems = problems

    def ids(self) -> dict[str, Any]:
        return {"pipeline_id": self.pipeline_id, "run_count": self.run_count}

    def event(self, status: str, message: str, **extra: Any) -> TriggerEvent:  # type: ignore[override]
        return TriggerEvent({"status": status, "message": event_message(message), **self.ids(), **extra})

    def wake_interval(self) -> float:
        return self.poll_interval

    async def poll(self, hook: Any) -> TriggerEvent | None:
        """One wake-up's reads: an event to fire, or None to go on."""
        raise NotImplementedError

    async def on_deadline(self) -> TriggerEvent:
        """The event when ``timeout`` has passed."""
        raise NotImplementedError

    async def wait_for_final_event(self) -> TriggerEvent:
        from airflow_provider_opsera.hooks.retry import calls_end_by

        if self.problems:
            return self.event(ERROR, f"{self.subject()} cannot be waited on: {'; '.join(self.problems)}")
        deadline = Deadline(self.end_time, self._clock)
        schedule = PollSchedule(self.wake_interval(), self._clock)
        failed_polls = FailedPolls(self.tolerated_failed_polls)
        self._warn_if_the_token_expires_first(await self._settings_or_none(), deadline)
        while True:
            # the task read the state just before deferring: the first read comes one interval later
            await self._sleep(deadline.next_sleep(schedule.sleep_before_next()))
            try:
                with calls_end_by(deadline.end_time, self._clock):
                    event = await self.poll(self.hook)
            except OpseraError as error:
                if not failed_polls.tolerate(error):
                    return await self.on_error(f"Could not read {self.subject()} in Opsera: {error}")
                self.log.warning(
                    "Reading %s failed (%d in a row); reading on: %s", self.subject(), failed_polls.count, error
                )
            except Exception as error:  # a bug or an answer of an unexpected kind: end the wait with its reason
                return await self.on_error(f"Waiting on {self.subject()} failed: {type(error).__name__}: {error}")
            else:
                failed_polls.ok()
                if event is not None:
                    return event
            if deadline.passed():
                return await self.on_deadline()

    async def on_error(self, message: str) -> TriggerEvent:
        return self.event(ERROR, message)

    async def read_gate(self, hook: Any) -> GateState:
        tenant = (await hook.settings()).status_map
        return gate_state(await hook.get_pipeline(self.pipeline_id), self.pipeline_id, tenant)

    async def run_end(self, hook: Any, state: GateState) -> TriggerEvent | None:
        """The event for the run's end, when the summary shows it ended; None while it goes on."""
        from airflow_provider_opsera.hooks.responses import run_status

        if state.run_count == self.run_count and not state.outcome.is_terminal:
            return None
        answer = await hook.get_pipeline_run_status(self.pipeline_id, self.run_count)
        status, message = run_status(answer, self.subject())
        outcome = OpseraRunStatus.outcome(status, dict((await hook.settings()).status_map))
        if not outcome.is_terminal:
            return None
        return self.event(EVENT_STATUS_OF[outcome], message or f"{self.subject()} ended: {status}", run_status=status)


class OpseraApprovalGateTrigger(_GateWaitTrigger):
    """Reads the summary of pipeline ``pipeline_id`` until its run ``run_count`` waits at an approval gate, or ends.

    Fires one event ``{"status", "message", "pipeline_id", "run_count", ...}``: ``gate`` (with
    ``step_id`` and ``step_name``, "" when the summary does not say), ``success``, ``failed`` or
    ``stopped`` (the run ended without waiting at a gate; with ``run_status``), ``timeout``
    (``timeout`` seconds passed) or ``error``.

    :param pipeline_id: the pipeline's id
    :param run_count: the run's number
    :param opsera_conn_id: the Airflow connection to Opsera
    :param poll_interval: seconds between two reads, from 1 to 86400 (a day)
    :param timeout: seconds to wait at most (None: no limit)
    :param end_time: the absolute deadline (epoch seconds), set from ``timeout`` when the trigger is made
    """

    def subject(self) -> str:
        return f"Opsera pipeline {self.pipeline_id} run {self.run_count}"

    async def poll(self, hook: Any) -> TriggerEvent | None:
        state = await self.read_gate(hook)
        if state.waits_at(self.run_count):
            return self.event(
                GATE, f"{self.subject()} waits at an approval gate.", step_id=state.step_id, step_name=state.step_name
            )
        if state.run_count < self.run_count:  # the run is not in the summary yet
            return None
        return await self.run_end(hook, state)

    async def on_deadline(self) -> TriggerEvent:
        return self.event(TIMEOUT, f"{self.subject()} did not wait at an approval gate within {self.timeout_text()}.")


class OpseraGateAnswerTrigger(_GateWaitTrigger):
    """Waits for the answer to an approval gate's request in Airflow, while watching the gate in Opsera.

    Reads the request's answer every few seconds and the pipeline's summary every
    ``poll_interval`` seconds. Fires one event ``{"status", "message", "pipeline_id",
    "run_count", "step_id", "step_name", ...}``:

    * ``answered``: a person answered (``chosen_options``, ``params_input``,
      ``responded_by_user``, ``timedout``, as Airflow hands an answer to a task), or the
      response timed out (``timeout`` seconds) and the request was answered on the task's
      behalf with ``Reject`` or ``Leave to Opsera``, as ``on_response_timeout`` says;
    * ``decided_in_opsera``: the run no longer waits at that gate (decided in Opsera, Slack...):
      the request was answered ``Leave to Opsera`` on the task's behalf, saying so;
    * ``error``: the gate cannot be read (a refusal, or failures past what a wait rides out;
      Opsera being down only delays the watch): the request was closed the same way.

    :param ti_id: the task instance whose request this is
    :param pipeline_id: the pipeline's id
    :param run_count: the run that waits
    :param step_id: the step it waits at ("" when not known: any gate of that run)
    :param step_name: that step's name, for messages
    :param on_response_timeout: ``reject`` or ``leave``
    :param opsera_conn_id: the Airflow connection to Opsera
    :param poll_interval: seconds between two reads of the gate in Opsera, from 1 to 86400 (the
        answer is read every 5 s, or every ``poll_interval`` when that is shorter)
    :param timeout: seconds to wait for an answer (None: no limit)
    :param end_time: the absolute deadline (epoch seconds), set from ``timeout`` when the trigger is made
    """

    # Opsera unreachable for a while must not end a person's chance to answer: reads go on, the send reads again.
    tolerated_failed_polls = sys.maxsize

    def __init__(
        self,
        *,
        ti_id: Any,
        pipeline_id: Any,
        run_count: Any,
        step_id: Any = "",
        step_name: Any = "",
        on_response_timeout: Any = "leave",
        opsera_conn_id: Any = "opsera_default",
        poll_interval: Any = 30,
        timeout: Any = None,
        end_time: Any = None,
    ) -> None:
        super().__init__(
            pipeline_id=pipeline_id,
            run_count=run_count,
            opsera_conn_id=opsera_conn_id,
            poll_interval=poll_interval,
            timeout=timeout,
            end_time=end_time,
        )
        self.ti_id = str(ti_id)
        self.step_id = step_id if isinstance(step_id, str) else ""
        self.step_name = step_name if isinstance(step_name, str) else ""
        self.on_response_timeout = on_response_timeout
        if on_response_timeout not in gate_request.ON_RESPONSE_TIMEOUT:
            self.problems.append(
                f"on_response_timeout must be one of {', '.join(gate_request.ON_RESPONSE_TIMEOUT)}, got {on_response_timeout!r}"
            )
        self._next_gate_read: float | None = None
        self._answers_readable = True

    def serialize(self) -> tuple[str, dict[str, Any]]:
        classpath, kwargs = super().serialize()
        return classpath, {**kwargs, "ti_id": self.ti_id, "on_response_timeout": self.on_response_timeout}

    def ids(self) -> dict[str, Any]:
        return {**super().ids(), "step_id": self.step_id, "step_name": self.step_name}

    def subject(self) -> str:
        step = f" at step {self.step_name or self.step_id!r}" if self.step_name or self.step_id else ""
        return f"the approval gate of Opsera pipeline {self.pipeline_id} run {self.run_count}{step}"

    def wake_interval(self) -> float:
        return min(ANSWER_READ_INTERVAL, self.poll_interval)

    async def poll(self, hook: Any) -> TriggerEvent | None:
        answer = None
        if self._answers_readable:
            try:
                answer = await gate_request.read_answer(self.ti_id)
            except gate_request.AnswersUnreadable:
                self._answers_readable = False
                self.log.warning(
                    "Airflow answers no read of the request of %s here (dag.test() runs triggers without the "
                    "triggerer's API): only a decision in Opsera, or the response timeout, ends this wait.",
                    self.subject(),
                )
        if answer is not None:
            return self.event(ANSWERED, f"Answered {answer.who}: {answer.option}.", **answer.payload())
        now = self._clock()
        if self._next_gate_read is not None and now < self._next_gate_read:
            return None
        self._next_gate_read = now + self.poll_interval
        state = await self.read_gate(hook)
        if state.waits_at(self.run_count, self.step_id):
            return None
        ended = await self.run_end(hook, state)
        said = f"; Opsera says: {ended.payload['message']}" if ended is not None else ""
        return await self.closing(DECIDED_IN_OPSERA, f"The gate was decided in Opsera first: {state.describe()}{said}")

    async def on_deadline(self) -> TriggerEvent:
        option = gate_request.REJECT if self.on_response_timeout == "reject" else gate_request.LEAVE
        comment = f"No answer in Airflow within {self.timeout_text()}."
        answer = await gate_request.answer_for_the_task(self.ti_id, option, comment)
        if answer is None:
            self.log.warning("Could not answer the request of %s after the response timeout.", self.subject())
        if answer is None or answer.by is None:  # answered on the task's behalf: the timeout's answer
            answer = gate_request.GateAnswer(option, comment, None, timed_out=True)
        return self.event(ANSWERED, f"Answered {answer.who}: {answer.option}.", **answer.payload())

    async def on_error(self, message: str) -> TriggerEvent:
        return await self.closing(ERROR, message)

    async def closing(self, status: str, message: str) -> TriggerEvent:
        """The event ``status``, once the request is answered ``Leave to Opsera`` on the task's behalf.

        A person who answered meanwhile is not overruled: then the event is theirs (``answered``).
        """
        answer = await gate_request.answer_for_the_task(self.ti_id, gate_request.LEAVE, message)
        if answer is None:
            self.log.warning("Could not close the request of %s: it stays open in Required actions.", self.subject())
        elif answer.by is not None:
            return self.event(ANSWERED, f"Answered {answer.who}: {answer.option}.", **answer.payload())
        return self.event(status, message)


