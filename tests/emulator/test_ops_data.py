"""The Insights data operators against the emulator over real sockets."""

from __future__ import annotations

import pytest

from airflow_provider_opsera.exceptions import OpseraConflictError, OpseraInputError, OpseraPermissionError
from airflow_provider_opsera.operators import (
    OpseraCreateMappingOperator,
    OpseraCreateOrgHierarchyOperator,
    OpseraCreatePersonOperator,
    OpseraCreateProjectOperator,
)
from airflow_provider_opsera.writing.record_sync import OpseraSyncError

CREATE_PROJECT = ("POST", "/api/v2/data/project")
CREATE_PERSON = ("POST", "/api/v2/data/people")
CREATE_ORG = ("POST", "/api/v2/data/org-hierarchy")
CREATE_MAPPING = ("POST", "/api/v2/data/mapping")
ALL_CREATES = (CREATE_PROJECT, CREATE_PERSON, CREATE_ORG, CREATE_MAPPING)

PROJECT = {
    "projectId": "4455",
    "projectName": "Data Platform",
    "projectOwner": {"firstName": "Ada", "lastName": "Admin", "email": "admin@example.com"},
    "organization": "Example Corp",
    "business": "Engineering",
    "assets": {"repositories": [{"name": "lake", "platform": "github.com", "url": "https://github.com/x/lake.git"}]},
}


def execute(operator):
    return operator.execute({"ti": None})


def store(emulator, collection):
    return emulator.state()["store"][collection]


def creates(emulator):
    return sum(emulator.request_count(*route) for route in ALL_CREATES)


def test_a_project_is_created_once_and_a_rerun_skips_it(opsera_conn, captured):  # noqa: F811
    op = OpseraCreateProjectOperator(task_id="project", project=PROJECT)
    created = execute(op)
    again = execute(op)

    assert created["projectName"] == "Data Platform" and "createdAt" in created
    assert again == created
    assert opsera_conn.request_count(*CREATE_PROJECT) == 1
    assert [p["projectId"] for p in store(opsera_conn, "projects")].count("4455") == 1
    assert "project '4455' is already in Opsera with the requested values: skipped" in captured()


def test_a_seeded_project_with_other_values_fails_with_the_differences(opsera_conn):
    with pytest.raises(OpseraConflictError) as caught:
        execute(OpseraCreateProjectOperator(task_id="p", project={"projectId": "2322346", "projectName": "Payments"}))
    assert 'projectName: "Billing" in Opsera, "Payments" requested' in str(caught.value)
    assert opsera_conn.request_count(*CREATE_PROJECT) == 0


def test_if_exists_fail_fails_even_for_an_identical_person(opsera_conn):
    seeded = {"email": "dev@example.com", "firstName": "Dana", "lastName": "Dev"}
    assert execute(OpseraCreatePersonOperator(task_id="p", person=seeded))["email"] == "dev@example.com"
    with pytest.raises(OpseraConflictError, match="if_exists='fail'"):
        execute(OpseraCreatePersonOperator(task_id="p", person=seeded, if_exists="fail"))
    assert opsera_conn.request_count(*CREATE_PERSON) == 0


def test_a_409_from_opsera_is_resolved_by_reading_the_person(opsera_conn):
    # The first read misses (as if the person were created meanwhile): the create answers 409.
    opsera_conn.set_fault(route="GET /api/v2/data/people/{email}", kind="status", status=404, count=1)
    person = execute(OpseraCreatePersonOperator(task_id="p", person={"email": "JD@example.com", "firstName": "John"}))
    assert person["email"] == "jd@example.com"
    assert opsera_conn.request_count(*CREATE_PERSON) == 1  # the one that got the 409


def test_a_list_with_bad_records_sends_nothing_and_names_every_one(opsera_conn):
    people = [
        {"email": "ann@example.com", "firstName": "Ann"},
        {"email": "bob@example", "firstName": "Bob"},
        {"email": "jd@example.com", "firstName": "John"},
        {"email": "cy@example.com", "firstName": "Cy", "tema": "Payments"},  # misspelt field
        {"email": "dee@example.com", "firstName": "Dee"},
    ]
    with pytest.raises(OpseraInputError) as caught:
        execute(OpseraCreatePersonOperator(task_id="people", person=people))

    message = str(caught.value)
    assert message.startswith("2 of 5 people failed the checks made before sending; nothing was sent to Opsera")
    assert "person #2 (bob@example): person.email must be an email address" in message
    assert "person #4 (cy@example.com): person: unknown field(s) 'tema' (did you mean 'team'?)" in message
    assert sum(opsera_conn.request_counts().values()) == 0


def test_a_list_of_people_goes_past_a_record_opsera_refuses_and_names_it(opsera_conn, captured):  # noqa: F811
    people = [
        {"email": "ann@example.com", "firstName": "Ann"},
        {"email": "jd@example.com", "firstName": "John"},  # seeded, same: skipped
        {"email": "jd@example.com", "firstName": "Johnny"},  # seeded, other values: refused
        {"email": "dee@example.com", "firstName": "Dee"},
    ]
    with pytest.raises(OpseraSyncError) as caught:
        execute(OpseraCreatePersonOperator(task_id="people", person=people))

    message = str(caught.value)
    assert message.startswith("1 of 4 people failed (2 created, 1 already there, 1 failed)")
    assert 'person #3 (jd@example.com): the record exists in Opsera with other values' in message
    emails = [p["email"] for p in store(opsera_conn, "people")]
    assert {"ann@example.com", "dee@example.com"} <= set(emails) and emails.count("jd@example.com") == 1
    assert opsera_conn.request_count(*CREATE_PERSON) == 2
    assert "Opsera people: 2 created, 1 already there, 1 failed, in" in captured()


def test_org_hierarchy_and_mapping_are_created_once(opsera_conn):
    org = OpseraCreateOrgHierarchyOperator(
        task_id="org", parent="Engineering", parent_type="business", child=["Platform", "Payments"],
        child_type="department",
    )
    mapping = OpseraCreateMappingOperator(
        task_id="mapping",
        mapping={"attribute1": "2322346", "attribute2": "dev@example.com", "mappingType": "project-people",
                 "relationship": "many-to-many"},
    )
    summary, record = execute(org), execute(mapping)
    assert summary["created"] == 2 and len(summary["created_ids"]) == 2
    assert record["relationship"] == "many-to-many"

    org.return_records = True
    links = execute(org)
    assert [link["attribute2"] for link in links] == ["Platform", "Payments"]
    assert [link["id"] for link in links] == summary["created_ids"]

    assert execute(mapping) == record
    assert opsera_conn.request_count(*CREATE_ORG) == 2
    assert opsera_conn.request_count(*CREATE_MAPPING) == 1
    assert opsera_conn.request_count("GET", "/api/v2/data/mapping") == 4  # one list read per run


def test_the_seeded_org_root_link_is_recognised(opsera_conn):
    link = execute(OpseraCreateOrgHierarchyOperator(task_id="org", parent="Example Corp", child="Engineering",
                                                    parent_type="root", child_type="business"))
    assert link["id"] == "62a1b2c3d4e5f6a7b8c9d0e1"
    assert opsera_conn.request_count(*CREATE_ORG) == 0


def test_an_org_level_above_its_parent_is_refused_without_a_request(opsera_conn):
    with pytest.raises(OpseraInputError, match="must be a lower level"):
        execute(OpseraCreateOrgHierarchyOperator(task_id="org", parent="Payments", parent_type="team",
                                                 child="Finance", child_type="business"))
    assert sum(opsera_conn.request_counts().values()) == 0


def test_a_pipeline_token_is_told_which_scopes_the_data_api_accepts(opsera_conn, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", opsera_conn.connection_json("pipeline"))
    with pytest.raises(OpseraPermissionError) as caught:
        execute(OpseraCreatePersonOperator(task_id="p", person=[{"email": "a@example.com"}, {"email": "b@x.io"}]))
    assert "The token's scope must be one of: api, api-readonly" in str(caught.value)
    assert creates(opsera_conn) == 0
