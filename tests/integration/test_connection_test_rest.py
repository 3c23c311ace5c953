"""Airflow's REST API ``POST /api/v2/connections/test`` (what the UI's Test button calls) answers the diagnosis.

Airflow's own API app, in-process, on the test metadata database; Opsera is the emulator over real sockets.
"""

from __future__ import annotations

import json

import pytest

from airflow_provider_opsera._compat import AIRFLOW_V3

if not AIRFLOW_V3:
    pytest.skip("the /api/v2 REST API is Airflow 3", allow_module_level=True)


@pytest.fixture
def api(airflow_db, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    with TestClient(create_app()) as client:
        yield client


def test_the_rest_api_answers_what_a_narrow_token_can_and_cannot_do(api, emulator):
    conn = emulator.connection_dict("pipeline")
    answer = api.post(
        "/api/v2/connections/test",
        json={
            "connection_id": "opsera_rest",
            "conn_type": "opsera",
            "host": conn["host"],
            "password": conn["password"],
            "extra": json.dumps(conn["extra"]),
        },
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["status"] is True
    assert "scope pipeline; role below Power User" in result["message"]
    assert "It cannot list pipelines (its owner lacks the Power User role): runs by id only" in result["message"]
    assert "It has no access to the tool registry, tasks, audit logs or Insights data." in result["message"]
    assert conn["password"] not in answer.text
