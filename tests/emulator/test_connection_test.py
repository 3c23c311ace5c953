"""The connection test (the UI's Test button) over real sockets, for each kind of seeded token."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def connection_test(emu, monkeypatch):
    from airflow_provider_opsera.hooks import OpseraHook

    def run(token_name: str | None = None, *, token: str | None = None) -> tuple[bool, str]:
        conn = emu.connection_dict(token_name or "admin")
        if token is not None:
            conn["password"] = token
        monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", json.dumps(conn))
        hook = OpseraHook()
        hook._sleep = lambda seconds: None
        return hook.test_connection()

    return run


def test_the_admin_token_passes_with_the_pipeline_count(emu, connection_test):
    ok, message = connection_test("admin")
    assert ok is True
    assert "5 pipelines visible" in message
    assert "scope api; role Power User or higher" in message
    assert emu.request_count("GET", "/api/v1/pipeline/pipelines") == 1


def test_a_pipeline_token_of_a_plain_user_passes_and_says_runs_by_id_only(connection_test):
    ok, message = connection_test("pipeline")
    assert ok is True, message
    assert "dev@example.com; scope pipeline; role below Power User" in message
    assert "It can run, stop and reset pipelines" in message
    assert "cannot list pipelines (its owner lacks the Power User role): runs by id only" in message


def test_a_registry_token_passes_on_the_tool_list(emu, connection_test):
    ok, message = connection_test("registry")
    assert ok is True
    assert "2 tools visible" in message
    assert "It has no access to pipelines, tasks, audit logs or Insights data." in message
    assert emu.request_count("GET", "/api/v1/pipeline/pipelines") == 0


def test_a_read_only_power_user_token_cannot_write(connection_test):
    ok, message = connection_test("power-readonly")
    assert ok is True
    assert "power@example.com; scope api-readonly; role Power User or higher" in message
    assert (
        "It cannot run, stop and reset pipelines; approve or reject approval gates; update tools; write Insights data"
        in message
    )


def test_a_security_logs_token_passes(connection_test):
    ok, message = connection_test("security-logs")
    assert ok is True
    assert "It can read audit logs" in message


def test_an_expired_token_fails_and_is_not_sent(emu, connection_test):
    ok, message = connection_test("expired")
    assert ok is False
    assert "expired" in message
    assert emu.request_counts() == {}


def test_a_token_with_a_bad_signature_fails(emu, connection_test):
    header, payload, _ = emu.token("pipeline").split(".")
    ok, message = connection_test(token=f"{header}.{payload}.Zm9yZ2Vk")
    assert ok is False
    assert "Opsera rejected the token" in message
    assert "401" in message


def test_a_prefix_pasted_into_the_password_fails_before_anything_is_sent(emu, connection_test):
    token = emu.token("admin")
    ok, message = connection_test(token=f"Bearer {token}")
    assert ok is False
    assert "the Password field (\"Personal access token\" in the connection form) starts with 'Bearer '" in message
    assert "auth_prefix extra (\"Authorization prefix\"), here 'Bearer'" in message
    assert token not in message
    assert emu.request_counts() == {}
