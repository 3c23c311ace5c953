"""OpseraAuditLogsOperator against the emulator over real sockets."""

from __future__ import annotations

import json

import pytest

from airflow_provider_opsera.emulator import OpseraEmulator
from airflow_provider_opsera.emulator.clock import utc_date
from airflow_provider_opsera.emulator.seed import read_seed
from airflow_provider_opsera.exceptions import OpseraPermissionError
from airflow_provider_opsera.operators import OpseraAuditLogsOperator, OpseraCreatePersonOperator


def execute(**kwargs):
    return OpseraAuditLogsOperator(task_id="audit", **kwargs).execute({"ti": None})


@pytest.fixture
def today(opsera_conn):
    """Today's date as the emulator sees it, with one user action on it."""
    OpseraCreatePersonOperator(task_id="p", person={"email": "audit@example.com"}).execute({"ti": None})
    return utc_date(opsera_conn.now())


def test_both_logs_for_today_are_exported_as_json_lines(opsera_conn, today, tmp_path):
    path = tmp_path / f"opsera-audit-{today}.jsonl"
    summary = execute(date=today, log="both", output_path=str(path))

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert summary["path"] == str(path) and summary["date"] == today
    assert summary["counts"] == {"user": sum(r["log"] == "user" for r in lines),
                                 "token": sum(r["log"] == "token" for r in lines)}
    assert summary["counts"]["user"] >= 1 and summary["counts"]["token"] >= 1
    assert all(r["createdAt"].startswith(today) for r in lines)
    assert any(r["log"] == "user" and r["target_id"] == "audit@example.com" for r in lines)
    assert summary["possibly_incomplete"] == []


def test_user_activity_filtered_by_type(opsera_conn, today):
    records = execute(date=today, activity_type="person")["user"]
    assert records and {r["type"] for r in records} == {"person"}


def test_token_activity_filtered_by_scope(opsera_conn, today):
    records = execute(date=today, log="token", scope="api")["token"]
    assert records and all("api" in r["scope"].split() for r in records)


def test_a_pipeline_token_is_told_which_scopes_and_role_audit_logs_need(opsera_conn, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", opsera_conn.connection_json("pipeline"))
    with pytest.raises(OpseraPermissionError) as caught:
        execute(log="both")
    assert "must be one of: api, security-logs" in str(caught.value)
    assert "Power User role" in str(caught.value)


def test_a_security_logs_token_may_read_them(opsera_conn, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", opsera_conn.connection_json("security-logs"))
    assert execute(log="token")["token"]


def test_a_day_at_the_cap_warns_that_it_may_be_cut_short(monkeypatch, captured, tmp_path):  # noqa: F811
    seed = read_seed(None)
    seed["user_activity"] = [
        {"days_ago": 0, "user": "admin@example.com", "type": "pipeline", "action": "run", "target_id": str(i)}
        for i in range(1005)
    ]
    with OpseraEmulator(seed=seed, clock="manual") as busy:
        monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", busy.connection_json("admin"))
        day = utc_date(busy.now())
        summary = execute(date=day, output_path=str(tmp_path / "busy.jsonl"))

    assert summary["counts"] == {"user": 1000}
    assert summary["possibly_incomplete"] == ["user"]
    assert f"Opsera's user activity log for {day} returned 1000 records, its cap of 1000" in captured()
