"""``POST /_emulator/seed``: start over from another seed without restarting the emulator."""

from __future__ import annotations

import requests

from .support import BLANK

OTHER_PIPELINE = "5fd56d90979ee048ee66aaaa"


def _seed(emu, seed) -> requests.Response:
    return requests.post(f"{emu.url}/_emulator/seed", json=seed, timeout=5)


def test_a_new_seed_replaces_the_state_and_keeps_tokens_of_the_same_name(emu, admin):
    admin.run(BLANK)
    seed = {
        "users": [{"id": "a0a0a0a0a0a0a0a0a0a0a0a0", "email": "admin@example.com", "role": "administrator"}],
        "tokens": [{"name": "admin", "owner": "admin@example.com"}],
        "pipelines": [
            {"_id": OTHER_PIPELINE, "name": "Other", "owner": "admin@example.com",
             "steps": [{"name": "only", "tool": "jenkins", "duration": 10}]}
        ],
    }
    answer = _seed(emu, seed)
    assert answer.status_code == 200 and answer.json() == {"status": "ok", "pipelines": 1}
    # the connection's token still works, the old pipeline is gone, the new one runs
    assert admin.post("/api/v1/pipeline/status", {"pipelineId": BLANK}).status_code == 404
    assert admin.run(OTHER_PIPELINE)["runCount"] == 1
    emu.advance(11)
    assert admin.status(OTHER_PIPELINE, 1)["status"] == "success"
    # a reset goes back to the loaded seed
    requests.post(f"{emu.url}/_emulator/reset", timeout=5).raise_for_status()
    assert admin.summary(OTHER_PIPELINE)["workflow"]["run_count"] == 0


def test_an_invalid_seed_is_refused_and_changes_nothing(emu, admin):
    admin.run(BLANK)
    answer = _seed(emu, {"tokens": [{"name": "x", "owner": "nobody@example.com"}]})
    assert answer.status_code == 400
    assert "invalid seed" in answer.json()["message"] and "nobody@example.com" in answer.json()["message"]
    assert admin.status(BLANK, 1)["status"] == "running"
