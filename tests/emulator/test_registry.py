"""Tool registry: list, summary and the lightly validated partial update."""

from __future__ import annotations

from .support import JENKINS, SONAR


def test_list_and_summary(client_for):
    registry = client_for("registry")
    tools = registry.ok("GET", "/api/v1/registry/tools")
    assert {tool["_id"] for tool in tools} == {JENKINS, SONAR}
    jenkins = registry.ok("POST", "/api/v1/registry/summary", {"toolId": JENKINS})
    assert jenkins["name"] == "Jenkins Prod"
    assert jenkins["tool_identifier"] == "jenkins"
    assert set(jenkins["configuration"]) >= {"jenkinsUrl", "userName", "secretKey"}
    assert isinstance(jenkins["configuration"]["secretKey"], str)
    assert {"owner", "roles", "tags", "description", "active"} <= set(jenkins)


def test_update_changes_only_the_root_properties_sent(emu, client_for):
    registry = client_for("registry")
    before = registry.ok("POST", "/api/v1/registry/summary", {"toolId": JENKINS})
    emu.advance(5)
    updated = registry.ok("POST", "/api/v1/registry/update", {
        "toolId": JENKINS,
        "tool": {"description": "Updated through the API", "tags": [], "_id": "000000000000000000000000"},
    })
    assert updated["description"] == "Updated through the API"
    assert updated["tags"] == []
    assert updated["_id"] == JENKINS  # sending _id does not break anything
    assert updated["name"] == before["name"]
    assert updated["configuration"] == before["configuration"]
    assert updated["updatedAt"] > before["updatedAt"]
    assert registry.ok("POST", "/api/v1/registry/summary", {"toolId": JENKINS}) == updated


def test_update_stores_what_is_sent_without_validation(client_for):
    registry = client_for("registry")
    updated = registry.ok("POST", "/api/v1/registry/update", {
        "toolId": SONAR, "tool": {"configuration": "not even an object", "active": "maybe"},
    })
    assert updated["configuration"] == "not even an object"
    assert updated["active"] == "maybe"


def test_update_needs_an_object_and_a_known_tool(client_for):
    registry = client_for("registry")
    assert registry.post("/api/v1/registry/update", {"toolId": JENKINS, "tool": "name"}).status_code == 400
    assert registry.post("/api/v1/registry/update", {"toolId": JENKINS}).status_code == 400
    missing = registry.post("/api/v1/registry/update", {"toolId": "ffffffffffffffffffffffff", "tool": {}})
    assert missing.status_code == 404


def test_update_is_recorded(admin):
    admin.ok("POST", "/api/v1/registry/update", {"toolId": SONAR, "tool": {"name": "Sonar"}})
    latest = admin.ok("GET", "/api/v1/logs/user/actions", params={"count": 1})["data"][0]
    assert (latest["type"], latest["action"], latest["target_id"]) == ("tool", "update", SONAR)
