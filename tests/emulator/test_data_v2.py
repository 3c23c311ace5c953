"""Data API v2: required fields (422), duplicates (409), lookups (404), envelopes."""

from __future__ import annotations

import re

import pytest


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/v2/data/project", {"projectName": "No id"}),
        ("/api/v2/data/project", {"projectId": "9"}),
        ("/api/v2/data/people", {"firstName": "No", "lastName": "Email"}),
        ("/api/v2/data/org-hierarchy", {"parent": "Example Corp"}),
        ("/api/v2/data/mapping", {"attribute1": "2322345"}),
    ],
)
def test_missing_required_fields_are_422(admin, path, body):
    response = admin.post(path, body)
    assert response.status_code == 422
    assert response.json()["status"] == "failed"
    assert "missing required fields" in response.json()["message"]


def test_create_and_read_a_project(admin):
    project = {"projectId": "777", "projectName": "Launch", "team": "Rockets",
               "assets": {"repositories": [{"name": "rocket", "platform": "github.com", "url": "u"}]}}
    created = admin.ok("POST", "/api/v2/data/project", project)
    assert created["projectName"] == "Launch"
    assert admin.ok("GET", "/api/v2/data/project/777")["assets"] == project["assets"]
    listing = admin.ok("GET", "/api/v2/data/projects")
    assert listing["count"] == len(listing["data"]) == 3
    duplicate = admin.post("/api/v2/data/project", project)
    assert duplicate.status_code == 409
    assert admin.get("/api/v2/data/project/does-not-exist").status_code == 404


def test_duplicate_person_email_is_409(admin):
    admin.ok("POST", "/api/v2/data/people", {"email": "new@example.com", "firstName": "New"})
    assert admin.ok("GET", "/api/v2/data/people/new@example.com")["firstName"] == "New"
    assert admin.post("/api/v2/data/people", {"email": "NEW@example.com"}).status_code == 409
    assert admin.post("/api/v2/data/people", {"email": "jd@example.com"}).status_code == 409
    assert admin.get("/api/v2/data/people/nobody@example.com").status_code == 404
    assert admin.ok("GET", "/api/v2/data/people")["count"] == 3


def test_org_hierarchy_creates_a_parent_child_mapping(admin):
    record = admin.ok(
        "POST", "/api/v2/data/org-hierarchy",
        {"parent": "Engineering", "parentType": "business", "child": "Platform", "childType": "department"},
    )
    assert re.fullmatch(r"[0-9a-f]{24}", record["id"])
    assert record["mappingType"] == "parent-child"
    assert record["relationship"] == "org-hierarchy"
    assert (record["attribute1"], record["attribute2"]) == ("Engineering", "Platform")
    assert admin.ok("GET", f"/api/v2/data/mapping/{record['id']}") == record


def test_mappings(admin):
    first = admin.ok("POST", "/api/v2/data/mapping", {
        "attribute1": "2322346", "attribute2": "dev@example.com",
        "mappingType": "project-people", "relationship": "many-to-many",
    })
    second = admin.ok("POST", "/api/v2/data/mapping", {"attribute1": "a", "attribute2": "b"})
    assert first["id"] != second["id"]
    listing = admin.ok("GET", "/api/v2/data/mapping")
    assert listing["count"] == 4
    assert {"id", "attribute1", "attribute2", "mappingType", "relationship"} <= set(listing["data"][0])
    assert admin.ok("GET", "/api/v2/data/mappings") == listing
    assert admin.get("/api/v2/data/mapping/ffffffffffffffffffffffff").status_code == 404
    bad = admin.post("/api/v2/data/mapping", {"attribute1": "a", "attribute2": "b", "mappingType": "nonsense"})
    assert bad.status_code == 422


def test_creates_are_recorded_as_user_activity(admin):
    admin.ok("POST", "/api/v2/data/people", {"email": "audit@example.com"})
    latest = admin.ok("GET", "/api/v1/logs/user/actions", params={"count": 1})["data"][0]
    assert (latest["type"], latest["action"], latest["target_id"]) == ("person", "create", "audit@example.com")
