"""Minting and revoking tokens through the control routes, as a rotation test does."""

from __future__ import annotations

import requests

from airflow_provider_opsera.client.token import token_claims, token_expiry

from .support import BLANK, DEV_ID, Client

STATUS = "/api/v1/pipeline/status"


def _mint(emu, **spec) -> requests.Response:
    return requests.post(f"{emu.url}/_emulator/tokens", json=spec, timeout=5)


def test_a_minted_token_works_with_its_scope_and_owner(emu):
    answer = _mint(emu, name="rotated", scopes=["pipeline"], owner="dev@example.com", expires_in=3600)
    assert answer.status_code == 200, answer.text
    minted = answer.json()
    assert minted["name"] == "rotated" and minted["scopes"] == ["pipeline"]
    assert minted["expires_at"] == int(emu.now() + 3600)
    assert token_expiry(minted["token"]).timestamp() == minted["expires_at"]
    client = Client(emu.url, minted["token"])
    # dev@example.com is listed on the Blank Template: a pipeline-scoped token reads its status
    assert client.post(STATUS, {"pipelineId": BLANK}).status_code == 200
    assert client.get("/api/v1/pipeline/pipelines").status_code == 403  # scope pipeline, role user
    assert requests.get(f"{emu.url}/_emulator/tokens", timeout=5).json()["rotated"] == minted["token"]
    assert token_claims(minted["token"])["sub"] == DEV_ID


def test_a_role_picks_the_owner_and_the_expiry_counts_on_the_emulated_clock(emu):
    token = emu.mint_token("short", role="power_user", expires_in=60)
    client = Client(emu.url, token)
    assert client.get("/api/v1/pipeline/pipelines").status_code == 200
    emu.advance(61)
    refused = client.post(STATUS, {"pipelineId": BLANK})
    assert refused.status_code == 401
    assert refused.json()["message"] == "token expired"


def test_a_revoked_token_gets_401_and_the_others_keep_working(emu, admin):
    new = Client(emu.url, emu.mint_token("next"))
    revoked = requests.delete(f"{emu.url}/_emulator/tokens/admin", timeout=5)
    assert revoked.status_code == 200 and revoked.json() == {"name": "admin", "revoked": True}
    refused = admin.post(STATUS, {"pipelineId": BLANK})
    assert refused.status_code == 401
    assert refused.json() == {"status": "failed", "message": "token revoked"}
    assert new.post(STATUS, {"pipelineId": BLANK}).status_code == 200


def test_reset_undoes_revocations_and_drops_minted_tokens(emu, admin):
    extra = Client(emu.url, emu.mint_token("extra"))
    emu.revoke_token("admin")
    emu.reset()
    assert admin.post(STATUS, {"pipelineId": BLANK}).status_code == 200
    assert extra.post(STATUS, {"pipelineId": BLANK}).json()["message"] == "unknown token"


def test_bad_mint_and_revoke_requests_say_what_is_wrong(emu):
    cases = [
        ({"scopes": ["api"]}, 400, "name"),
        ({"name": "admin"}, 409, "exists already"),
        ({"name": "x", "scopes": ["everything"]}, 400, "unknown scopes"),
        ({"name": "x", "role": "wizard"}, 400, "role must be one of"),
        ({"name": "x", "owner": "nobody@example.com"}, 400, "unknown user"),
        ({"name": "x", "expires_in": "soon"}, 400, "expires_in"),
    ]
    for spec, status, words in cases:
        answer = _mint(emu, **spec)
        assert answer.status_code == status, (spec, answer.text)
        assert words in answer.json()["message"], spec
    missing = requests.delete(f"{emu.url}/_emulator/tokens/nobody", timeout=5)
    assert missing.status_code == 404
