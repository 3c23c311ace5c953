"""Checks made before anything is sent: tool updates and the four kinds of Insights records."""

from __future__ import annotations

import math

import pytest

from airflow_provider_opsera.client import validation
from airflow_provider_opsera.exceptions import OpseraInputError
from airflow_provider_opsera.writing import record_checks

TOOL_ID = "60a1b2c3d4e5f6a7b8c9d0e1"


# -- values rendered from templates -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"name": "x"}', {"name": "x"}),
        ("{'name': 'x', 'on': True}", {"name": "x", "on": True}),
        ('[{"email": "a@b.io"}]', [{"email": "a@b.io"}]),
        ("plain text", "plain text"),
    ],
)
def test_structured_reads_what_a_template_rendered(text, expected):
    assert validation.structured(text, "tool") == expected


def test_structured_refuses_text_that_only_looks_like_a_dict():
    with pytest.raises(OpseraInputError, match="tool looks like a list or dict"):
        validation.structured("{name: x", "tool")


# -- tool updates ---------------------------------------------------------------------------------


def test_tool_update_keeps_root_properties_and_drops_server_fields():
    changes, dropped = record_checks.tool_update(
        {"_id": TOOL_ID, "description": "d", "createdAt": "t", "updatedAt": "t"}, TOOL_ID
    )
    assert changes == {"description": "d"}
    assert dropped == ["_id", "createdAt", "updatedAt"]


@pytest.mark.parametrize(
    "tool, message",
    [
        ({}, "at least one root property"),
        ([], "must be a JSON object"),
        ("description=x", "must be a JSON object"),
        ({"_id": "60a1b2c3d4e5f6a7b8c9d0ff", "name": "x"}, r"tool._id cannot be changed"),
        ({"configuration.jenkinsUrl": "x"}, "not a root property name"),
        ({"$set": {"name": "x"}}, "not a root property name"),
        ({"": "x"}, "non-empty strings"),
        ({1: "x"}, "non-empty strings"),
        ({"createdAt": "x", "updatedAt": "y"}, "nothing to change"),
        ({"name": {1, 2}}, "cannot be sent as JSON"),
        ({"port": math.nan}, "cannot be sent as JSON"),
    ],
)
def test_tool_update_refusals(tool, message):
    with pytest.raises(OpseraInputError, match=message):
        record_checks.tool_update(tool, TOOL_ID)


# -- people ---------------------------------------------------------------------------------------


def test_person_is_accepted_with_names_and_none_values_left_out():
    body, warnings = record_checks.person({"email": " jd@example.com ", "firstName": "John", "team": None})
    assert body == {"email": "jd@example.com", "firstName": "John"}
    assert warnings == []


@pytest.mark.parametrize(
    "person, message",
    [
        ({}, "required field.*email"),
        ({"email": "not-an-email"}, "person.email must be an email address"),
        ({"email": "a@b.io", "firstName": 7}, "person.firstName must be a non-empty string"),
        ({"email": "a@b.io", "lastName": ""}, "person.lastName must be a non-empty string"),
        ({"email": "a@b.io", "displayName": ["x"]}, "person.displayName must be a non-empty string"),
        ({"email": "a@b.io", "team": 3}, "person.team must be a non-empty string"),
        ({"email": "a@b.io", "fristName": "J"}, r"unknown field\(s\) 'fristName' \(did you mean 'firstName'\?\)"),
        ("jd@example.com", "person must be a JSON object"),
    ],
)
def test_person_refusals(person, message):
    with pytest.raises(OpseraInputError, match=message):
        record_checks.person(person)


def test_unknown_person_fields_are_sent_with_a_warning_when_allowed():
    body, warnings = record_checks.person({"email": "a@b.io", "badge": "42"}, allow_unknown_fields=True)
    assert body == {"email": "a@b.io", "badge": "42"}
    assert "'badge'" in warnings[0]


def test_fields_read_back_from_opsera_are_left_out_with_a_warning():
    body, warnings = record_checks.person({"email": "a@b.io", "_id": "x", "createdAt": "t", "__v": 0})
    assert body == {"email": "a@b.io"}
    assert "_id, createdAt, __v" in warnings[0]


# -- projects -------------------------------------------------------------------------------------

FULL_PROJECT = {
    "projectId": "2322345",
    "projectName": "Phase 2",
    "projectOwner": {"firstName": "John", "lastName": "Doe", "email": "jd@example.com"},
    "externalId": "25ce97e1",
    "organization": "Example Corp",
    "business": "Engineering",
    "department": "Platform",
    "group": "Phase 2",
    "team": "AOD",
    "assets": {
        "repositories": [{"name": "web-portal", "platform": "github.com", "url": "https://github.com/x/y.git"}],
        "services": [{"name": "ha-proxy", "identifier": "haprox01", "dependencies": {}, "externalId": "b5"}],
    },
}


def test_a_full_project_in_the_documented_shape_is_accepted():
    body, warnings = record_checks.project(FULL_PROJECT)
    assert body == FULL_PROJECT and warnings == []


@pytest.mark.parametrize(
    "change, message",
    [
        ({"projectId": None}, r"required field.*projectId"),
        ({"projectName": "  "}, r"required field.*projectName"),
        ({"projectId": 2322345}, r"project.projectId must be a string.*write it as '2322345'"),
        ({"projectName": ["Phase 2"]}, "project.projectName must be a string"),
        ({"projectOwner": "jd@example.com"}, "project.projectOwner must be a JSON object"),
        ({"projectOwner": {"firstName": "John"}}, r"project.projectOwner: required field.*email"),
        ({"projectOwner": {"email": "jd"}}, "project.projectOwner.email must be an email address"),
        ({"projectOwner": {"email": "jd@example.com", "mail": "x"}}, "unknown field"),
        ({"assets": [{"repositories": []}]}, r"project.assets must be an object"),
        ({"assets": {"repositories": {"name": "x"}}}, "project.assets.repositories must be a list"),
        ({"assets": {"repositories": ["web-portal"]}}, r"project.assets.repositories\[0\] must be a JSON object"),
        ({"assets": {"repositories": [{"platform": "github.com"}]}}, r"repositories\[0\].name must be"),
        ({"assets": {"services": [{"name": "a"}, {"name": ""}]}}, r"services\[1\].name must be"),
        ({"assets": {"services": [{"name": "a", "dependencies": "b"}]}}, "dependencies must be an object or a list"),
        ({"assets": {"repository": []}}, r"'repository' \(did you mean 'repositories'\?\)"),
        ({"buisness": "Engineering"}, r"'buisness' \(did you mean 'business'\?\)"),
        ({"team": 5}, "project.team must be a non-empty string"),
    ],
)
def test_project_refusals(change, message):
    with pytest.raises(OpseraInputError, match=message):
        record_checks.project({**FULL_PROJECT, **change})


# -- org hierarchy --------------------------------------------------------------------------------


def test_org_levels_are_read_without_regard_to_case():
    body, _ = record_checks.org_hierarchy(
        {"parent": "Example Corp", "child": "R&D", "parentType": "Root", "childType": "Department"}
    )
    assert body == {"parent": "Example Corp", "child": "R&D", "parentType": "root", "childType": "department"}


@pytest.mark.parametrize(
    "link, message",
    [
        ({"child": "R&D"}, r"required field.*parent"),
        ({"parent": "Example Corp"}, r"required field.*child"),
        ({"parent": "A", "child": "A"}, "parent and child are both 'A'"),
        ({"parent": "A", "child": "B", "parentType": "division"}, "parent_type must be one of root, organization"),
        ({"parent": "A", "child": "B", "childType": "root"}, "child_type cannot be 'root'"),
        ({"parent": "A", "child": "B", "parentType": "team", "childType": "group"}, "must be a lower level"),
        ({"parent": "A", "child": "B", "parentType": "group", "childType": "group"}, "must be a lower level"),
        ({"parent": "A", "child": 3}, "child must be a non-empty string"),
        ({"parent": "A", "child": "B", "parent_type": "root"}, r"did you mean 'parentType'"),
    ],
)
def test_org_hierarchy_refusals(link, message):
    with pytest.raises(OpseraInputError, match=message):
        record_checks.org_hierarchy(link)


@pytest.mark.parametrize("parent_type, child_type", [("root", "organization"), ("root", "team"), ("business", "team")])
def test_any_lower_level_may_be_a_child(parent_type, child_type):
    record_checks.org_hierarchy({"parent": "A", "child": "B", "parentType": parent_type, "childType": child_type})


# -- mappings -------------------------------------------------------------------------------------

MAPPING = {"attribute1": "2322345", "attribute2": "jd@example.com", "mappingType": "project-people",
           "relationship": "many-to-many"}


def test_a_mapping_read_back_from_opsera_can_be_fed_in_again():
    body, warnings = record_checks.mapping_record({**MAPPING, "id": "62a1", "createdAt": "t"})
    assert body == MAPPING
    assert "id, createdAt" in warnings[0]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"attribute1": ""}, r"required field.*attribute1"),
        ({"attribute2": None}, r"required field.*attribute2"),
        ({"mappingType": None}, r"required field.*mappingType"),
        ({"relationship": None}, r"required field.*relationship"),
        ({"attribute1": 2322345}, "mapping.attribute1 must be a non-empty string"),
        ({"mappingType": "project-person"}, "mapping.mappingType must be one of project-people, parent-child"),
        ({"relationship": "many-to-few"}, "mapping.relationship must be one of many-to-many"),
        ({"relationship": "org-hierarchy"}, "'org-hierarchy' goes with mappingType 'parent-child'"),
        ({"relation": "x"}, r"did you mean 'relationship'"),
    ],
)
def test_mapping_refusals(change, message):
    with pytest.raises(OpseraInputError, match=message):
        record_checks.mapping_record({**MAPPING, **change})
