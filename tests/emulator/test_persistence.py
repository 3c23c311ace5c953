"""--state: the store survives a restart, and so do tokens and run progress."""

from __future__ import annotations

import json

from airflow_provider_opsera.emulator import OpseraEmulator

from .support import BLANK, JENKINS, Client


def test_state_survives_a_restart(tmp_path):
    state_file = tmp_path / "emulator-state.json"
    with OpseraEmulator(clock="manual", state_path=state_file) as first:
        token = first.token("admin")
        admin = Client(first.url, token)
        assert admin.run(BLANK)["runCount"] == 1
        first.advance(30)  # in the build step
        admin.ok("POST", "/api/v1/registry/update", {"toolId": JENKINS, "tool": {"description": "kept"}})
        admin.ok("POST", "/api/v2/data/people", {"email": "kept@example.com"})
    assert json.loads(state_file.read_text())["version"] == 1

    with OpseraEmulator(clock="manual", state_path=state_file) as second:
        assert second.token("admin") == token
        admin = Client(second.url, token)
        status = admin.status(BLANK, 1)
        assert status["status"] == "running"
        assert "('build')" in status["message"]
        second.advance(100)
        assert admin.status(BLANK, 1)["status"] == "success"
        assert admin.ok("POST", "/api/v1/registry/summary", {"toolId": JENKINS})["description"] == "kept"
        assert admin.ok("GET", "/api/v2/data/people/kept@example.com")["email"] == "kept@example.com"
        assert admin.run(BLANK)["runCount"] == 2


def test_reset_rewrites_the_state_file(tmp_path):
    state_file = tmp_path / "state.json"
    with OpseraEmulator(clock="manual", state_path=state_file) as emu:
        Client(emu.url, emu.token("admin")).run(BLANK)
        emu.reset()
    saved = json.loads(state_file.read_text())
    assert saved["store"]["pipelines"][BLANK]["runs"] == []
