"""The /_emulator/ control routes, as a subprocess user would call them."""

from __future__ import annotations

import requests

from .support import APPROVAL, BLANK


def _admin(emu, method: str, path: str, **kwargs):
    response = requests.request(method, f"{emu.url}/_emulator/{path}", timeout=5, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def test_health_and_tokens(emu):
    assert _admin(emu, "GET", "health") == {"status": "ok"}
    tokens = _admin(emu, "GET", "tokens")
    assert set(tokens) >= {"admin", "power-readonly", "pipeline", "registry", "security-logs", "expired", "expiring"}
    assert tokens["admin"] == emu.token("admin")


def test_clock_advances_runs(emu, admin):
    admin.run(BLANK)
    before = _admin(emu, "GET", "clock")
    assert before["mode"] == "manual"
    after = _admin(emu, "POST", "clock", json={"advance": 95})
    assert after["now"] - before["now"] == 95
    assert admin.status(BLANK, 1)["status"] == "success"
    bad = requests.post(f"{emu.url}/_emulator/clock", json={"advance": -1}, timeout=5)
    assert bad.status_code == 400


def test_approve_route(emu, admin):
    admin.run(APPROVAL)
    emu.advance(20)
    assert _admin(emu, "POST", f"pipelines/{APPROVAL}/approve")["runCount"] == 1
    assert admin.status(APPROVAL, 1)["status"] == "running"
    again = requests.post(f"{emu.url}/_emulator/pipelines/{APPROVAL}/approve", timeout=5)
    assert again.status_code == 409
    unknown = requests.post(f"{emu.url}/_emulator/pipelines/ffffffffffffffffffffffff/approve", timeout=5)
    assert unknown.status_code == 404


def test_reset_restores_the_seed_and_clears_counts_and_faults(emu, admin):
    admin.run(BLANK)
    admin.ok("POST", "/api/v2/data/people", {"email": "temp@example.com"})
    emu.set_fault("*", "html")
    assert _admin(emu, "POST", "reset") == {"status": "ok"}
    assert _admin(emu, "GET", "requests") == {"counts": {}}
    assert _admin(emu, "GET", "faults") == {"faults": []}
    assert admin.status(BLANK)["status"] == "created"
    assert admin.get("/api/v2/data/people/temp@example.com").status_code == 404
    # Tokens handed out before the reset keep working.
    assert admin.summary(BLANK)["workflow"]["run_count"] == 0


def test_reset_from_python(emu, admin):
    admin.run(BLANK)
    emu.reset()
    assert emu.request_counts() == {}
    assert admin.summary(BLANK)["workflow"]["run_count"] == 0


def test_state_dump(emu, admin):
    admin.run(BLANK)
    dump = _admin(emu, "GET", "state")
    assert dump["clock"]["mode"] == "manual"
    assert dump["store"]["pipelines"][BLANK]["runs"][0]["run_count"] == 1
    assert emu.state()["store"]["pipelines"][BLANK]["object"]["name"] == "Blank Template"


def test_portal_links_open(emu):
    response = requests.get(f"{emu.url}/portal/workflow/details/{BLANK}/summary", timeout=5)
    assert response.status_code == 200
    assert "text/html" in response.headers["Content-Type"]
