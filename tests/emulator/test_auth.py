"""Tokens (401), scopes (403) and role/item RBAC (403)."""

from __future__ import annotations

import base64
import json

import pytest

from airflow_provider_opsera.emulator import OpseraEmulator, tokens
from airflow_provider_opsera.emulator.seed import read_seed

from .support import APPROVAL, BLANK, BROKEN, CERT_ROTATION, JENKINS, NIGHTLY_SYNC, Client

STATUS = "/api/v1/pipeline/status"


def _claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _assert_401(response):
    assert response.status_code == 401
    body = response.json()
    assert body["status"] == "failed"
    assert body["message"]


def test_tokens_are_hs256_jwts_with_the_documented_claims(emu):
    jwt = emu.token("admin")
    assert jwt.startswith("eyJ")
    header = json.loads(base64.urlsafe_b64decode(jwt.split(".")[0] + "=="))
    assert header == {"alg": "HS256", "typ": "JWT"}
    claims = _claims(jwt)
    assert claims["sub"] == "a0a0a0a0a0a0a0a0a0a0a0a0"
    assert claims["email"] == "admin@example.com"
    assert claims["scope"] == "api"
    assert claims["jti"] == "admin"
    assert claims["exp"] - claims["iat"] == 30 * 86400


def test_missing_token_is_401(client_for):
    _assert_401(client_for(None).post(STATUS, {"pipelineId": BLANK}))


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer not-a-jwt", "Bearer a.b.c", "Basic dXNlcjpwYXNz", "Bearer ...", "Bearer \u00e9.\u00e9.\u00e9"]
)
def test_malformed_token_is_401(emu, header):
    response = Client(emu.url, None).post(STATUS, {"pipelineId": BLANK}, headers={"Authorization": header})
    _assert_401(response)


def test_bad_signature_is_401(emu):
    header, payload, signature = emu.token("admin").split(".")
    tampered_signature = ("A" if signature[0] != "A" else "B") + signature[1:]
    _assert_401(Client(emu.url, f"{header}.{payload}.{tampered_signature}").post(STATUS, {"pipelineId": BLANK}))
    # A payload changed after signing (a scope upgrade) is refused too.
    claims = _claims(emu.token("power-readonly"))
    claims["scope"] = "api"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = f"{header}.{forged_payload}.{emu.token('power-readonly').split('.')[2]}"
    _assert_401(Client(emu.url, forged).post(STATUS, {"pipelineId": BLANK}))


def test_unknown_token_name_is_401_even_if_signed(emu):
    claims = tokens.token_claims("ghost", {"id": "a0a0a0a0a0a0a0a0a0a0a0a0", "email": "x@example.com"}, ["api"], 0, 4e9)
    _assert_401(Client(emu.url, tokens.mint(claims)).post(STATUS, {"pipelineId": BLANK}))


def test_expired_token_is_401(client_for):
    response = client_for("expired").post(STATUS, {"pipelineId": BLANK})
    _assert_401(response)
    assert "expired" in response.json()["message"]


def test_expiring_token_works_until_its_expiry(emu, client_for):
    client = client_for("expiring")
    assert client.post(STATUS, {"pipelineId": BLANK}).status_code == 200
    emu.advance(3 * 86400 + 1)
    _assert_401(client.post(STATUS, {"pipelineId": BLANK}))


def test_raw_token_without_bearer_prefix_is_accepted(client_for):
    assert client_for("admin", prefix="").post(STATUS, {"pipelineId": BLANK}).status_code == 200


def _assert_403(response):
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["status"] == "failed"
    assert body["message"] == "forbidden"
    return body


def test_wrong_scope_is_403_and_names_the_accepted_scopes(client_for):
    body = _assert_403(client_for("registry").post("/api/v1/pipeline/run", {"pipelineId": BLANK}))
    assert body["accepted_scopes"] == ["api", "pipeline"]
    _assert_403(client_for("security-logs").get("/api/v1/registry/tools"))
    _assert_403(client_for("pipeline").get("/api/v1/logs/user/actions"))


def test_readonly_scope_reads_but_does_not_write(client_for):
    reader = client_for("power-readonly")
    assert reader.post(STATUS, {"pipelineId": BLANK}).status_code == 200
    assert reader.get("/api/v1/pipeline/pipelines").status_code == 200
    assert reader.post("/api/v1/registry/summary", {"toolId": JENKINS}).status_code == 200
    assert reader.get("/api/v2/data/people").status_code == 200
    # the audit logs take "API Access" or "Security Logs" only, not the read-only API scope
    _assert_403(reader.get("/api/v1/logs/user/tokens"))
    _assert_403(reader.post("/api/v1/pipeline/run", {"pipelineId": BLANK}))
    _assert_403(reader.post("/api/v1/registry/update", {"toolId": JENKINS, "tool": {"name": "x"}}))
    _assert_403(reader.post("/api/v2/data/people", {"email": "new@example.com"}))


def test_scoped_tokens_reach_their_own_routes(client_for):
    assert client_for("registry").get("/api/v1/registry/tools").status_code == 200
    assert client_for("security-logs").get("/api/v1/logs/user/actions").status_code == 200
    assert client_for("pipeline").post("/api/v1/pipeline/run", {"pipelineId": BLANK}).status_code == 200


def test_item_rbac_for_a_user_without_a_privileged_role(client_for):
    dev = client_for("pipeline")  # dev@example.com, role "user", listed on BLANK only
    assert dev.post(STATUS, {"pipelineId": BLANK}).status_code == 200
    _assert_403(dev.post(STATUS, {"pipelineId": BROKEN}))
    _assert_403(dev.post("/api/v1/pipeline/run", {"pipelineId": APPROVAL}))
    # Lists need the power user role or higher.
    _assert_403(dev.get("/api/v1/pipeline/pipelines"))


def test_task_list_shows_only_the_tasks_a_user_may_see():
    # dev@example.com with a tasks-scoped token: a seed of our own adds that token.
    seed = read_seed(None)
    seed["tokens"].append({"name": "dev-tasks", "owner": "dev@example.com", "scopes": ["tasks-readonly"]})
    with OpseraEmulator(seed=seed, clock="manual") as own:
        dev = Client(own.url, own.token("dev-tasks"))
        assert [task["_id"] for task in dev.ok("GET", "/api/v1/task/tasks")] == [NIGHTLY_SYNC]
        _assert_403(dev.post("/api/v1/task/status", {"taskId": CERT_ROTATION}))
        _assert_403(dev.post(STATUS, {"pipelineId": BLANK}))


def test_token_uses_are_recorded_even_when_forbidden(client_for, admin):
    client_for("registry").post("/api/v1/pipeline/run", {"pipelineId": BLANK})
    uses = admin.ok("GET", "/api/v1/logs/user/tokens", params={"scope": "registry"})["data"]
    assert uses[0]["target"] == "/v1/pipeline/run"
    assert uses[0]["token_id"] == tokens.token_id("registry")
