"""Checking the event a trigger hands back before a resume method reads anything from it.

A resume method decides success or failure from the event alone. Anything it does not
recognise (no event, a status it has no branch for, a missing id) fails the task with
what was wrong: reading such an event as success would end a task green for a run
that may have failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from airflow_provider_opsera._compat import AirflowException
from airflow_provider_opsera.client.redaction import redact, shortened
from airflow_provider_opsera.waiting.watch import ERROR, FAILED, STOPPED, SUCCESS, TIMEOUT

#: every status the provider's own triggers send to a waiting task
WAIT_EVENT_STATUSES = frozenset({SUCCESS, FAILED, STOPPED, TIMEOUT, ERROR})

#: the event field naming the newest console record the trigger showed in the task's log (the resumed task goes on
#: after it)
CONSOLE_SHOWN_THROUGH = "console_shown_through"

#: an event is stored in Airflow's database and its message read by a person: a few KB at most
MAX_EVENT_MESSAGE_CHARS = 2000


def event_message(text: Any) -> str:
    """A trigger event's message: text only, without a known secret, cut to ``MAX_EVENT_MESSAGE_CHARS``."""
    return shortened(redact(text if isinstance(text, str) else str(text)), MAX_EVENT_MESSAGE_CHARS)


def checked_event(
    event: Any,
    *,
    subject: str,
    fields: dict[str, Callable[[Any, str], Any]],
    statuses: Iterable[str] = WAIT_EVENT_STATUSES,
) -> dict[str, Any]:
    """The event with its fields checked (and converted by their checkers), or an exception naming the fault.

    ``fields`` maps each field besides ``status`` and ``message`` to a checker that
    returns the value or raises ``ValueError``, e.g. ``validation.object_id``.
    """
    allowed = frozenset(statuses)
    if not isinstance(event, dict):
        raise AirflowException(
            f"Resuming {subject}: the trigger's event is {type(event).__name__}, not the expected object with a "
            "status, so the outcome is unknown. Failing rather than guessing."
        )
    status = event.get("status")
    if not isinstance(status, str) or status not in allowed:
        raise AirflowException(
            f"Resuming {subject}: the trigger's event has status {status!r}, which is none of "
            f"{', '.join(sorted(allowed))}, so the outcome is unknown. Failing rather than guessing."
        )
    message = event.get("message")
    if not isinstance(message, str):
        raise AirflowException(f"Resuming {subject}: the trigger's {status!r} event has no message.")
    checked: dict[str, Any] = {"status": status, "message": message}
    for name, check in fields.items():
        if event.get(name) in (None, ""):
            raise AirflowException(f"Resuming {subject}: the trigger's {status!r} event does not carry {name!r}.")
        try:
            checked[name] = check(event[name], name)
        except ValueError as error:
            raise AirflowException(f"Resuming {subject}: the trigger's {status!r} event is malformed: {error}") from None
    return checked
