"""Airflow's human-in-the-loop calls answered in memory: the request a task makes, the answer a person gives.

The provider's code talks to Airflow through its supervisor channel (``SUPERVISOR_COMMS``),
with Airflow's own message types; this fake answers those messages as Airflow's API server
does: one request per task instance, one answer, a second answer refused.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest


class AnsweredAlready(Exception):
    """What Airflow's API answers a second answer with (HTTP 409)."""


class FakeRequests:
    """Requests by task instance id, as Airflow's ``hitl_detail`` table holds them."""

    def __init__(self) -> None:
        self.requests: dict[str, dict[str, Any]] = {}
        self.reads = 0

    # -- what a person does --

    def answer(self, ti_id: Any, option: str, comment: str | None = None, user: str | None = "ada") -> None:
        request = self.requests[str(ti_id)]
        if request["responded_at"] is not None:
            raise AnsweredAlready(str(ti_id))
        request.update(
            responded_at=dt.datetime.now(dt.timezone.utc),
            responded_by={"id": user, "name": user} if user else None,
            chosen_options=[option],
            params_input={"comment": comment},
        )

    def only(self) -> dict[str, Any]:
        (request,) = self.requests.values()
        return request

    # -- Airflow's side of the channel --

    def send(self, msg: Any) -> Any:
        from airflow.sdk.api.datamodels._generated import HITLDetailResponse, HITLUser

        kind = type(msg).__name__
        ti_id = str(msg.ti_id)
        if kind == "CreateHITLDetailPayload":
            self.requests[ti_id] = {
                **msg.model_dump(exclude={"type", "ti_id"}),
                "responded_at": None,
                "responded_by": None,
                "chosen_options": None,
                "params_input": {},
            }
            return None
        if kind == "UpdateHITLDetail":
            request = self.requests[ti_id]
            if request["responded_at"] is not None:
                raise AnsweredAlready(ti_id)
            self.answer(ti_id, msg.chosen_options[0], msg.params_input.get("comment"), user=None)
        elif kind != "GetHITLDetailResponse":
            raise AssertionError(f"unexpected message {kind}")
        self.reads += kind == "GetHITLDetailResponse"
        request = self.requests[ti_id]
        user = request["responded_by"]
        return HITLDetailResponse(
            response_received=request["responded_at"] is not None,
            responded_by_user=HITLUser(**user) if user else None,
            responded_at=request["responded_at"],
            chosen_options=request["chosen_options"],
            params_input=request["params_input"],
        )


def fake_hitl_channel(monkeypatch) -> FakeRequests:
    """Airflow's HITL channel, answered by a :class:`FakeRequests` (Airflow 3.1+), for a test's ``hitl`` fixture."""
    pytest.importorskip("airflow.sdk.execution_time.hitl", reason="human-in-the-loop needs Airflow 3.1+")
    from airflow.sdk.execution_time import task_runner

    requests = FakeRequests()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", requests, raising=False)
    return requests
