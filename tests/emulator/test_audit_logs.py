"""Audit logs: the date filter, the default seven days, type/scope/count, token use."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow_provider_opsera.emulator import OpseraEmulator
from airflow_provider_opsera.emulator.seed import read_seed

from .support import BLANK, JENKINS, Client

ACTIONS = "/api/v1/logs/user/actions"
TOKENS = "/api/v1/logs/user/tokens"


def _day(emu, days_ago: float) -> str:
    moment = datetime.fromtimestamp(emu.now(), tz=timezone.utc) - timedelta(days=days_ago)
    return moment.strftime("%Y-%m-%d")


def test_without_a_date_only_the_last_seven_days(emu, client_for):
    logs = client_for("security-logs")
    answer = logs.ok("GET", ACTIONS)
    # The seed spreads 8 actions over 10 days; 6 fall inside the last 7 days.
    assert answer["count"] == len(answer["data"]) == 6
    stamps = [record["createdAt"] for record in answer["data"]]
    assert stamps == sorted(stamps, reverse=True)
    week_ago = (datetime.fromtimestamp(emu.now(), tz=timezone.utc) - timedelta(days=7)).isoformat()
    assert all(stamp > week_ago[:19] for stamp in stamps)


def test_date_selects_one_utc_day(emu, client_for):
    logs = client_for("security-logs")
    day = _day(emu, 9.5)
    answer = logs.ok("GET", ACTIONS, params={"date": day})
    assert answer["count"] >= 1
    assert all(record["createdAt"].startswith(day) for record in answer["data"])
    assert "5fd56d90979ee048ee660628" in {record["target_id"] for record in answer["data"]}


def test_type_and_count_filters(client_for):
    logs = client_for("security-logs")
    tools = logs.ok("GET", ACTIONS, params={"type": "tool"})
    assert tools["count"] == 1 and tools["data"][0]["target_id"] == JENKINS
    assert logs.ok("GET", ACTIONS, params={"count": 2})["count"] == 2


def test_bad_date_or_count_is_400(client_for):
    logs = client_for("security-logs")
    for params in ({"date": "23-11-2026"}, {"count": "many"}, {"count": "-1"}):
        response = logs.get(ACTIONS, params=params)
        assert response.status_code == 400, params
        assert response.json()["status"] == "failed"


def test_every_token_use_is_recorded(emu, client_for):
    client_for("pipeline").post("/api/v1/pipeline/status", {"pipelineId": BLANK})
    client_for("admin").post("/api/v1/pipeline/summary", {"pipelineId": BLANK})
    logs = client_for("security-logs")
    today = logs.ok("GET", TOKENS, params={"date": _day(emu, 0)})["data"]
    # Newest first: the security-logs read itself, then the admin and pipeline calls.
    assert [(r["scope"], r["target"]) for r in today[:3]] == [
        ("security-logs", "/v1/logs/user/tokens"),
        ("api", "/v1/pipeline/summary"),
        ("pipeline", "/v1/pipeline/status"),
    ]
    assert set(today[0]) == {
        "_id", "token_id", "scope", "target", "user_id", "account", "createdAt", "updatedAt", "__v",
    }
    assert today[2]["user_id"] == "a2a2a2a2a2a2a2a2a2a2a2a2"
    pipeline_only = logs.ok("GET", TOKENS, params={"scope": "pipeline"})["data"]
    assert pipeline_only and {r["scope"] for r in pipeline_only} == {"pipeline"}


def test_old_token_activity_from_the_seed_follows_the_window(emu, client_for):
    logs = client_for("security-logs")
    seeded_older = logs.ok("GET", TOKENS, params={"date": _day(emu, 8.8)})["data"]
    assert any(r["target"] == "/v1/pipeline/pipelines" for r in seeded_older)
    recent = logs.ok("GET", TOKENS)["data"]
    assert not any(r["target"] == "/v1/pipeline/pipelines" for r in recent)


def test_audit_logs_need_a_privileged_role():
    seed = read_seed(None)
    seed["tokens"].append({"name": "dev-logs", "owner": "dev@example.com", "scopes": ["security-logs"]})
    with OpseraEmulator(seed=seed, clock="manual") as emu:
        response = Client(emu.url, emu.token("dev-logs")).get(ACTIONS)
        assert response.status_code == 403
        assert response.json()["message"] == "forbidden"
