"""A token rotated while tasks wait on it, in real Airflow: in a worker and in a triggerer.

As a platform team rotates a token: mint a new one, put it in the Airflow connection
(through the REST API: the connection lives in the metadata database), revoke the old
one. Both waits get a 401 on their next poll, read the connection again, and carry on.
"""

from __future__ import annotations

import json

import requests

from airflow_provider_opsera.emulator.tokens import token_id
from tests.e2e.stack import Stack

DAG_ID = "e2e_opsera_token_rotation"
CONN_ID = "opsera_rotation"
RELEASE_WITH_APPROVAL = "5fd56d90979ee048ee660626"
LONG_SOAK = "5fd56d90979ee048ee660627"
ROTATED_NOTE = f"connection '{CONN_ID}' holds another one now (rotated): carrying on with it"


def mint(airflow: Stack, name: str) -> str:
    answer = requests.post(f"{airflow.emulator_url}/_emulator/tokens", json={"name": name}, timeout=10)
    answer.raise_for_status()
    return answer.json()["token"]


def status_polls_with(airflow: Stack, token_name: str) -> int:
    """Status reads Opsera accepted with this token (the emulator's token activity log)."""
    activity = airflow.emulator_state()["store"]["token_activity"]
    wanted = token_id(token_name)
    return sum(1 for use in activity if use["token_id"] == wanted and use["target"] == "/v1/pipeline/status")


def emulator_admin(airflow: Stack, path: str, body: dict | None = None) -> dict:
    method = "POST" if body is not None else "DELETE"
    answer = requests.request(method, f"{airflow.emulator_url}{path}", json=body, timeout=10)
    answer.raise_for_status()
    return answer.json()


def test_both_waits_carry_on_after_the_token_is_rotated(airflow):
    suffix = str(len(airflow.emulator_tokens()))  # token names are unique per emulator
    old_name, new_name = f"rotation-old-{suffix}", f"rotation-new-{suffix}"
    old = mint(airflow, old_name)
    for pipeline_id in (RELEASE_WITH_APPROVAL, LONG_SOAK):  # no run left over from an earlier test
        airflow.opsera("/api/v1/pipeline/reset", {"pipelineId": pipeline_id})
    airflow.api(
        "POST",
        "/connections",
        json={
            "connection_id": CONN_ID,
            "conn_type": "opsera",
            "host": airflow.emulator_url,
            "password": old,
            "extra": json.dumps({"portal_url": f"{airflow.emulator_url}/portal"}),
        },
        expect=(200, 201),
    )
    try:
        run_id = airflow.trigger(DAG_ID)

        def both_waiting():
            airflow.check_alive()
            try:
                states = airflow.task_states(DAG_ID, run_id)
            except requests.exceptions.Timeout:  # the API server was too busy to answer in time: look again
                return None
            if any(state in ("success", "failed", "up_for_retry") for state in states.values()):
                raise AssertionError(f"a task ended before the rotation: {states}")
            gate = airflow.opsera("/api/v1/pipeline/status", {"pipelineId": RELEASE_WITH_APPROVAL})
            held = airflow.triggerer_holding(DAG_ID, run_id, "wait_deferred")
            return (
                states.get("wait_in_worker") == "running"
                and gate.get("status") == "paused"
                and states.get("wait_deferred") == "deferred"
                and held is not None
            )

        airflow.wait_for(both_waiting, 180, "one task waiting in its worker and one deferred in a triggerer")
        polls_before = status_polls_with(airflow, old_name)
        airflow.wait_for(
            lambda: status_polls_with(airflow, old_name) >= polls_before + 4,
            60,
            "both waits to poll with the old token",
        )

        new = mint(airflow, new_name)
        airflow.api(
            "PATCH",
            f"/connections/{CONN_ID}",
            params={"update_mask": "password"},
            json={"connection_id": CONN_ID, "conn_type": "opsera", "password": new},
        )
        emulator_admin(airflow, f"/_emulator/tokens/{old_name}")  # revoked: from now on it gets 401

        airflow.wait_for(
            lambda: status_polls_with(airflow, new_name) >= 4,
            60,
            "both waits to poll with the new token",
        )
        # let both runs end: a person approves the gate, and the long run's time passes at once
        emulator_admin(airflow, f"/_emulator/pipelines/{RELEASE_WITH_APPROVAL}/approve", {})
        emulator_admin(airflow, "/_emulator/clock", {"advance": 1900})

        assert airflow.wait_for_run(DAG_ID, run_id, timeout=180) == "success", airflow.task_states(DAG_ID, run_id)
        for task_id in ("wait_in_worker", "wait_deferred"):
            ti = airflow.task_instance(DAG_ID, run_id, task_id)
            assert ti["state"] == "success" and ti["try_number"] == 1, ti
            log = airflow.task_log(DAG_ID, run_id, task_id)
            assert ROTATED_NOTE in log, f"{task_id}: no word of the rotation in the task log:\n{log[-3000:]}"
            for token in (old, new):
                assert token.split(".")[1] not in log and token.split(".")[2] not in log, f"{task_id}: a token"
            assert "eyJ" not in log, f"{task_id}: a token-like string reached the task log"
    finally:
        airflow.api("DELETE", f"/connections/{CONN_ID}", expect=(204, 404))
