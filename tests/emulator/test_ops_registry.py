"""OpseraUpdateToolOperator against the emulator over real sockets."""

from __future__ import annotations

import pytest

from airflow_provider_opsera.exceptions import OpseraPermissionError
from airflow_provider_opsera.operators import OpseraUpdateToolOperator

from .support import JENKINS

SUMMARY = ("POST", "/api/v1/registry/summary")
UPDATE = ("POST", "/api/v1/registry/update")
SEED_SECRET_KEY = f"{JENKINS}-jenkins-secretKey"


class FakeTaskInstance:
    def __init__(self):
        self.xcom: dict = {}

    def xcom_push(self, key, value):
        self.xcom[key] = value


def run(**kwargs):
    context = {"ti": FakeTaskInstance()}
    result = OpseraUpdateToolOperator(task_id="update_tool", tool_id=JENKINS, **kwargs).execute(context)
    return result, context["ti"].xcom


def stored_tool(emulator):
    return emulator.state()["store"]["tools"][JENKINS]


def test_dry_run_shows_the_diff_with_secrets_masked_and_sends_nothing(opsera_conn, captured):  # noqa: F811
    before = stored_tool(opsera_conn)
    configuration = {**before["configuration"], "jenkinsUrl": "https://jenkins2.example.com",
                     "secretKey": "vault-reference-rotated"}

    result, xcom = run(tool={"description": "Rotated", "configuration": configuration}, dry_run=True)

    assert result == {"description": "Rotated", "configuration": configuration}
    assert xcom == {}
    assert opsera_conn.request_count(*UPDATE) == 0
    assert stored_tool(opsera_conn) == before
    log = captured()
    assert '~ configuration.jenkinsUrl: "https://jenkins.example.com" -> "https://jenkins2.example.com"' in log
    assert "configuration.secretKey" in log and "(changed)" in log
    assert SEED_SECRET_KEY not in log and "vault-reference-rotated" not in log


def test_an_update_sends_only_changes_verifies_them_and_can_be_reverted(opsera_conn):
    original = stored_tool(opsera_conn)

    updated, xcom = run(tool={"name": original["name"], "description": "Managed by Airflow", "active": False})

    assert updated["description"] == "Managed by Airflow" and updated["active"] is False
    assert stored_tool(opsera_conn)["description"] == "Managed by Airflow"
    assert opsera_conn.request_count(*UPDATE) == 1
    assert opsera_conn.request_count(*SUMMARY) == 2  # read before, read back after
    assert xcom["previous_values"] == {"description": original["description"], "active": True}

    run(tool=xcom["previous_values"])
    reverted = stored_tool(opsera_conn)
    assert {k: reverted[k] for k in ("description", "active")} == {
        "description": original["description"], "active": True}


def test_nothing_to_change_sends_no_update(opsera_conn):
    current = stored_tool(opsera_conn)
    result, xcom = run(tool={"name": current["name"], "tags": current["tags"]})
    assert opsera_conn.request_count(*UPDATE) == 0
    assert result["name"] == current["name"]
    assert xcom == {"previous_values": {}}


def test_a_second_identical_run_sends_nothing(opsera_conn):
    run(tool={"description": "Once"})
    run(tool={"description": "Once"})
    assert opsera_conn.request_count(*UPDATE) == 1


def test_a_registry_scoped_token_may_update(opsera_conn, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", opsera_conn.connection_json("registry"))
    result, _ = run(tool={"description": "Via the registry scope"})
    assert result["description"] == "Via the registry scope"


def test_a_pipeline_token_is_told_which_scopes_the_registry_accepts(opsera_conn, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", opsera_conn.connection_json("pipeline"))
    with pytest.raises(OpseraPermissionError) as caught:
        run(tool={"description": "Not allowed"})
    message = str(caught.value)
    assert "403" in message and "api, api-readonly, registry, registry-readonly" in message
    assert opsera_conn.token("pipeline") not in message
    assert opsera_conn.request_count(*UPDATE) == 0
