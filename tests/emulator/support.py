"""Ids from the default seed and a small requests client for the emulator tests."""

from __future__ import annotations

import requests

BLANK = "5fd56d90979ee048ee660624"
BROKEN = "5fd56d90979ee048ee660625"
APPROVAL = "5fd56d90979ee048ee660626"
LONG_SOAK = "5fd56d90979ee048ee660627"
CHATTY = "5fd56d90979ee048ee660628"
JENKINS = "60a1b2c3d4e5f6a7b8c9d0e1"
SONAR = "60a1b2c3d4e5f6a7b8c9d0e2"
NIGHTLY_SYNC = "61a1b2c3d4e5f6a7b8c9d0e1"
CERT_ROTATION = "61a1b2c3d4e5f6a7b8c9d0e2"
ADMIN_ID = "a0a0a0a0a0a0a0a0a0a0a0a0"
POWER_ID = "a1a1a1a1a1a1a1a1a1a1a1a1"
DEV_ID = "a2a2a2a2a2a2a2a2a2a2a2a2"


class Client:
    """requests against the emulator with one token's Authorization header."""

    def __init__(self, base_url: str, token: str | None, prefix: str = "Bearer "):
        self.base_url = base_url
        self.session = requests.Session()
        if token is not None:
            self.session.headers["Authorization"] = f"{prefix}{token}"

    def post(self, path: str, body=None, **kwargs) -> requests.Response:
        return self.session.post(self.base_url + path, json=body, timeout=10, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=10, **kwargs)

    def ok(self, method: str, path: str, body=None, **kwargs):
        response = self.post(path, body, **kwargs) if method == "POST" else self.get(path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    # Pipeline shorthands
    def run(self, pipeline_id: str) -> dict:
        return self.ok("POST", "/api/v1/pipeline/run", {"pipelineId": pipeline_id})

    def status(self, pipeline_id: str, run_count: int | None = None) -> dict:
        body = {"pipelineId": pipeline_id}
        if run_count is not None:
            body["runCount"] = run_count
        return self.ok("POST", "/api/v1/pipeline/status", body)

    def logs(self, pipeline_id: str, **extra) -> list:
        return self.ok("POST", "/api/v1/pipeline/logs", {"pipelineId": pipeline_id, **extra})

    def summary(self, pipeline_id: str) -> dict:
        return self.ok("POST", "/api/v1/pipeline/summary", {"pipelineId": pipeline_id})


def runs_of(journal: dict, pipeline_id: str) -> list[dict]:
    """One pipeline's runs in the emulator's run journal, oldest first."""
    return [run for run in journal["runs"] if run["pipeline_id"] == pipeline_id]
