"""The default seed's fixed ids, seed validation, and the Airflow connection helpers."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_provider_opsera.emulator import OpseraEmulator
from airflow_provider_opsera.emulator.seed import SeedError, read_seed

from .support import (
    ADMIN_ID,
    APPROVAL,
    BLANK,
    BROKEN,
    CERT_ROTATION,
    CHATTY,
    DEV_ID,
    JENKINS,
    LONG_SOAK,
    NIGHTLY_SYNC,
    POWER_ID,
    SONAR,
)


def test_default_seed_has_the_fixed_ids():
    seed = read_seed(None)
    users = {user["id"]: (user["email"], user["role"]) for user in seed["users"]}
    assert users[ADMIN_ID] == ("admin@example.com", "administrator")
    assert users[POWER_ID] == ("power@example.com", "power_user")
    assert users[DEV_ID] == ("dev@example.com", "user")
    assert {token["name"] for token in seed["tokens"]} >= {
        "admin", "power-readonly", "pipeline", "registry", "security-logs", "expired", "expiring",
    }
    pipelines = {p["_id"]: p for p in seed["pipelines"]}
    assert [pipelines[i]["name"] for i in (BLANK, BROKEN, APPROVAL, LONG_SOAK, CHATTY)] == [
        "Blank Template", "Broken Build", "Release With Approval", "Long Soak", "Chatty",
    ]
    assert sum(step["duration"] for step in pipelines[BLANK]["steps"]) == 90
    assert {t["_id"]: t["name"] for t in seed["tools"]} == {JENKINS: "Jenkins Prod", SONAR: "SonarQube"}
    assert {t["_id"]: t["name"] for t in seed["tasks"]} == {NIGHTLY_SYNC: "Nightly Sync", CERT_ROTATION: "Cert Rotation"}


@pytest.mark.parametrize(
    "breakage",
    [
        lambda seed: seed["users"][0].update(id="not-hex"),
        lambda seed: seed["tokens"][0].update(owner="ghost@example.com"),
        lambda seed: seed["tokens"][0].update(scopes=["root"]),
        lambda seed: seed["pipelines"][0]["steps"][0].update(outcome="explode"),
    ],
)
def test_a_broken_seed_is_refused_with_a_reason(breakage):
    seed = read_seed(None)
    breakage(seed)
    with pytest.raises(SeedError):
        OpseraEmulator(seed=seed).start()


def test_seed_from_a_file(tmp_path):
    seed = read_seed(None)
    seed["pipelines"] = seed["pipelines"][:1]
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(seed))
    with OpseraEmulator(seed=str(path), clock="manual") as emu:
        assert list(emu.state()["store"]["pipelines"]) == [BLANK]


def test_connection_json_and_uri(emu):
    connection = json.loads(emu.connection_json())
    assert connection == {
        "conn_type": "opsera",
        "host": emu.url,
        "password": emu.token("admin"),
        "extra": {"portal_url": f"{emu.url}/portal"},
    }
    assert json.loads(emu.connection_json("registry"))["password"] == emu.token("registry")
    uri = emu.connection_uri()
    assert uri.startswith("opsera://http://:")
    assert parse_qs(urlsplit(uri).query) == {"portal_url": [f"{emu.url}/portal"]}


def test_connection_uri_parses_back_in_airflow(emu):
    connection_module = pytest.importorskip("airflow.models.connection")
    parsed = connection_module.Connection(conn_id="opsera_default", uri=emu.connection_uri("admin"))
    assert parsed.conn_type == "opsera"
    assert parsed.host == emu.url
    assert parsed.password == emu.token("admin")
    assert parsed.extra_dejson == {"portal_url": f"{emu.url}/portal"}
