"""The Airflow side of an Opsera approval gate: a request in "Required actions" (human-in-the-loop, Airflow 3.1+).

A person answers with one of three options and may leave a comment. The request is
closed when the task stops waiting, so that nobody answers a question no longer asked:
by the person, or on the task's behalf when the gate was decided in Opsera first, the
response timed out, or the gate could not be read (then nobody is named as the one who
answered, and the comment says why). Airflow's HITL calls are imported where used: the
module loads on every Airflow the provider supports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_opsera.client.redaction import redact
from airflow_provider_opsera.waiting.log_text import safe_line

APPROVE = "Approve"
REJECT = "Reject"
LEAVE = "Leave to Opsera"
OPTIONS = [APPROVE, REJECT, LEAVE]
#: what a response timeout does: reject the gate, or leave it to Opsera
ON_RESPONSE_TIMEOUT = ("reject", "leave")
COMMENT = "comment"
#: the most characters of Opsera's words shown in a request
MAX_SHOWN_CHARS = 500


class AnswersUnreadable(Exception):
    """Airflow gives no answer to a read of the request: ``dag.test()`` runs a trigger without the triggerer's API."""


@dataclass(frozen=True)
class GateAnswer:
    """The answer to a gate's request: the option chosen, the comment, who chose it."""

    option: str
    comment: str = ""
    #: the person's name; None when the request was answered on the task's behalf
    by: str | None = None
    timed_out: bool = False

    @classmethod
    def from_payload(cls, payload: Any) -> GateAnswer:
        """From an answered request as Airflow hands it to a task (``chosen_options``, ``params_input``, ...).

        ValueError names what is missing or not one of the options.
        """
        if not isinstance(payload, dict):
            raise ValueError(f"the answer is {type(payload).__name__}, not an object")
        chosen = payload.get("chosen_options")
        if not isinstance(chosen, list) or len(chosen) != 1 or chosen[0] not in OPTIONS:
            raise ValueError(f"chosen_options is {chosen!r}, not one of {OPTIONS}")
        params = payload.get("params_input") if isinstance(payload.get("params_input"), dict) else {}
        comment = params.get(COMMENT)
        user = payload.get("responded_by_user")
        name = user.get("name") or user.get("id") if isinstance(user, dict) else getattr(user, "name", None)
        return cls(chosen[0], comment.strip() if isinstance(comment, str) else "", name, bool(payload.get("timedout")))

    def payload(self) -> dict[str, Any]:
        """The answer in the shape Airflow hands a resumed task, for a trigger's event."""
        return {
            "chosen_options": [self.option],
            "params_input": {COMMENT: redact(self.comment)},
            "responded_by_user": {"id": self.by, "name": self.by} if self.by else None,
            "timedout": self.timed_out,
        }

    @property
    def who(self) -> str:
        return f"by {self.by}" if self.by else "on the task's behalf"


def comment_params() -> dict[str, Any]:
    """The request's one form field, a comment: sent to Opsera with a rejection."""
    from airflow.sdk import Param
    from airflow.sdk.definitions.param import ParamsDict

    params = ParamsDict(
        {
            COMMENT: Param(
                None,
                type=["null", "string"],
                title="Comment",
                description="Sent to Opsera with a rejection, and kept with the answer.",
            )
        }
    )
    if _airflow_older_than("3.1.3"):  # the format Airflow's UI reads changed in 3.1.3
        return params.dump()
    return {name: params.get_param(name).serialize() for name in params}


def _airflow_older_than(version: str) -> bool:
    from airflow import __version__
    from packaging.version import Version

    return Version(__version__) < Version(version)


def shown(text: Any) -> str:
    """Opsera's words in a Markdown request: one line, no backticks, cut short, as inline code (nothing rendered)."""
    line = safe_line(str(text or ""), limit=MAX_SHOWN_CHARS).replace("`", "'").strip()
    return f"`{line}`" if line else "_(none)_"


def request_body(
    *,
    pipeline_name: str,
    pipeline_id: str,
    run_count: int,
    step: str,
    opsera_message: str,
    portal_url: str,
    timeout_note: str,
    preface: str | None = None,
) -> str:
    """The request's Markdown: the gate, Opsera's message, a link to the run in the portal, what each option does."""
    parts = [preface.strip()] if preface and preface.strip() else []
    parts += [
        f"Opsera pipeline {shown(pipeline_name)} (`{pipeline_id}`), run **{run_count}**, waits for approval at "
        f"step {shown(step)}.",
        f"Opsera says: {shown(opsera_message)}",
        f"[Open the pipeline in the Opsera portal]({portal_url})",
        f"- **{APPROVE}**: Opsera runs the pipeline on.\n"
        f"- **{REJECT}**: Opsera ends the run; the comment is sent to Opsera as the reason.\n"
        f"- **{LEAVE}**: nothing is sent; the gate waits for a decision in Opsera.",
        "A decision made in Opsera first (its UI, Slack, ...) answers this request for you; nothing is sent twice.",
    ]
    if timeout_note:
        parts.append(timeout_note)
    return "\n\n".join(parts)


def ask(ti_id: Any, *, subject: str, body: str, defaults: list[str], assigned_users: Any) -> None:
    """Write the request (from the worker: Airflow's task runner carries it to the API server)."""
    from airflow.sdk.execution_time.hitl import upsert_hitl_detail

    upsert_hitl_detail(
        ti_id=ti_id,
        options=OPTIONS,
        subject=subject,
        body=body,
        defaults=defaults,
        multiple=False,
        params=comment_params(),
        assigned_users=assigned_users,
    )


async def read_answer(ti_id: Any) -> GateAnswer | None:
    """The answer recorded so far, or None (from a trigger: the triggerer carries the call)."""
    from airflow.sdk.execution_time.hitl import get_hitl_detail_content_detail
    from asgiref.sync import sync_to_async

    detail = await sync_to_async(get_hitl_detail_content_detail)(ti_id=ti_id)
    if detail is None:
        raise AnswersUnreadable("Airflow answered nothing to a read of the request")
    if not (detail.response_received and detail.chosen_options):
        return None
    return GateAnswer.from_payload(
        {
            "chosen_options": list(detail.chosen_options),
            "params_input": detail.params_input or {},
            "responded_by_user": detail.responded_by_user,
        }
    )


async def answer_for_the_task(ti_id: Any, option: str, comment: str) -> GateAnswer | None:
    """Close the request on the task's behalf and return the answer it holds then: a person's answer
    recorded first is kept. None when the request could not be closed (it stays open)."""
    from airflow.sdk.execution_time.hitl import update_hitl_detail_response
    from asgiref.sync import sync_to_async

    try:
        await sync_to_async(update_hitl_detail_response)(
            ti_id=ti_id, chosen_options=[option], params_input={COMMENT: comment}
        )
    except Exception:  # answered meanwhile (Airflow refuses a second answer): that answer stands
        pass
    try:
        return await read_answer(ti_id)
    except AnswersUnreadable:
        return None
