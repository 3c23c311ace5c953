"""The registry, Insights and audit example DAGs through ``dag.test()`` against the emulator."""

from __future__ import annotations

import json

JENKINS = "60a1b2c3d4e5f6a7b8c9d0e1"


def _states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}


def _store(emulator) -> dict:
    return emulator.state()["store"]


def test_registry_example_previews_applies_and_reverts(load_example_dag, opsera_conn, capfd):
    original = _store(opsera_conn)["tools"][JENKINS]
    dag = load_example_dag("example_opsera_registry")

    dag_run = dag.test()

    assert _states(dag_run) == {"preview_change": "success", "apply_change": "success", "revert_change": "success"}
    assert opsera_conn.request_count("POST", "/api/v1/registry/update") == 2  # apply and revert; not the preview
    tool = _store(opsera_conn)["tools"][JENKINS]
    assert tool["description"] == original["description"]
    assert tool["configuration"] == original["configuration"]
    text = "".join(capfd.readouterr())
    assert "Dry run: nothing was sent to Opsera." in text
    assert '"Production Jenkins used by the build steps." -> "Production Jenkins, managed from Airflow"' in text


def test_insights_example_creates_records_and_a_rerun_creates_nothing(load_example_dag, opsera_conn):
    dag = load_example_dag("example_opsera_insights")

    first = dag.test()
    assert set(_states(first).values()) == {"success"}, _states(first)
    store = _store(opsera_conn)
    assert any(p["projectId"] == "4455" for p in store["projects"])
    emails = {p["email"] for p in store["people"]}
    assert {"ada.admin@example.com", "lin.data@example.com", "sam.data@example.com", "kai.data@example.com"} <= emails
    pairs = {(m["attribute1"], m["attribute2"]) for m in store["mappings"]}
    assert {("Engineering", "Data"), ("Engineering", "Platform"), ("4455", "ada.admin@example.com")} <= pairs
    creates = {key: n for key, n in opsera_conn.request_counts().items() if key.startswith("POST /api/v2/")}
    assert sum(creates.values()) == 1 + 1 + 2 + 1 + 3

    second = dag.test()
    assert set(_states(second).values()) == {"success"}, _states(second)
    again = {key: n for key, n in opsera_conn.request_counts().items() if key.startswith("POST /api/v2/")}
    assert again == creates  # everything was found and skipped


def test_audit_example_exports_today_to_a_file(load_example_dag, monkeypatch, tmp_path):
    from airflow_provider_opsera.emulator import OpseraEmulator

    monkeypatch.setenv("OPSERA_AUDIT_EXPORT_DIR", str(tmp_path))
    dag = load_example_dag("example_opsera_audit")

    # Its own emulator: the session's clock has been moved on by other tests, the DAG's {{ ds }} has not.
    with OpseraEmulator(clock="manual") as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", emulator.connection_json("admin"))
        dag_run = dag.test()

    assert _states(dag_run) == {"export_audit_logs": "success", "api_token_use": "success"}
    today = dag_run.logical_date.date().isoformat()
    path = tmp_path / f"opsera-audit-{today}.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records and all(r["createdAt"].startswith(today) for r in records)
    assert {r["log"] for r in records} <= {"user", "token"}
    assert any(r["log"] == "token" for r in records)
