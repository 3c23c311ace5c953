"""Bad requests get a JSON 4xx, never a stack trace or an HTML/plain 500."""

from __future__ import annotations

import json

import pytest
import requests

from airflow_provider_opsera.emulator import workloads

from .support import BLANK

BAD_REQUESTS = [
    ("POST", "/api/v1/pipeline/run", b"{not json"),
    ("POST", "/api/v1/pipeline/run", b"[1, 2]"),
    ("POST", "/api/v1/pipeline/run", b'"a string"'),
    ("POST", "/api/v1/pipeline/run", b"\xff\xfe\x00"),
    ("POST", "/api/v1/pipeline/run", {}),
    ("POST", "/api/v1/pipeline/run", {"pipelineId": 12345}),
    ("POST", "/api/v1/pipeline/run", {"pipelineId": "short"}),
    ("POST", "/api/v1/pipeline/run", {"pipelineId": "zzzzzzzzzzzzzzzzzzzzzzzz"}),
    ("POST", "/api/v1/pipeline/run", {"pipelineId": ["5fd56d90979ee048ee660624"]}),
    ("POST", "/api/v1/pipeline/run", {"pipelineId": "ffffffffffffffffffffffff"}),
    ("POST", "/api/v1/pipeline/status", {"pipelineId": BLANK, "runCount": "abc"}),
    ("POST", "/api/v1/pipeline/status", {"pipelineId": BLANK, "runCount": True}),
    ("POST", "/api/v1/pipeline/status", {"pipelineId": BLANK, "runCount": 1.5}),
    ("POST", "/api/v1/pipeline/status", {"pipelineId": BLANK, "runCount": {"n": 1}}),
    ("POST", "/api/v1/pipeline/logs", {"pipelineId": BLANK, "runCount": -3}),
    ("POST", "/api/v1/pipeline/summary", {"pipelineId": None}),
    ("POST", "/api/v1/registry/summary", {"toolId": {"$ne": None}}),
    ("POST", "/api/v1/registry/update", {"toolId": "60a1b2c3d4e5f6a7b8c9d0e1", "tool": [1]}),
    ("POST", "/api/v1/task/status", {"taskId": 7}),
    ("GET", "/api/v1/task/logs?taskId=61a1b2c3d4e5f6a7b8c9d0e1&runCount=abc", None),
    ("GET", "/api/v1/logs/user/actions?date=yesterday", None),
    ("GET", "/api/v1/logs/user/actions?count=1e9", None),
    ("POST", "/api/v2/data/people", b"[]"),
    ("POST", "/api/v2/data/people", {"email": 42}),
    ("POST", "/api/v2/data/project", {"projectId": None, "projectName": None}),
    ("GET", "/api/v1/pipeline/run", None),
    ("DELETE", "/api/v1/registry/tools", None),
    ("GET", "/api/v1/no/such/route", None),
    ("POST", "/_emulator/faults", b"{"),
    ("POST", "/_emulator/clock", {"advance": "soon"}),
    ("POST", "/_emulator/tasks/not-an-id/run", None),
]


@pytest.mark.parametrize("method, path, body", BAD_REQUESTS)
def test_bad_request_gets_a_json_4xx(emu, method, path, body):
    headers = {"Authorization": f"Bearer {emu.token('admin')}"}
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    else:
        data = body
    response = requests.request(method, emu.url + path, data=data, headers=headers, timeout=5)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json")
    answer = response.json()
    assert answer["status"] == "failed"
    assert "Traceback" not in response.text


def test_an_unexpected_error_is_a_json_500_without_a_trace(emu, admin, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(workloads, "pipeline_view", explode)
    response = admin.post("/api/v1/pipeline/summary", {"pipelineId": BLANK})
    assert response.status_code == 500
    assert response.json() == {"status": "failed", "message": "internal error in the Opsera emulator"}
    assert "secret internals" not in response.text
