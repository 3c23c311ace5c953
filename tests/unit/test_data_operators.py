"""The four Insights data operators against requests-mock: checks, idempotent re-runs, list syncs."""

from __future__ import annotations

import re
import urllib.parse

import pytest

from airflow_provider_opsera.exceptions import OpseraConflictError, OpseraInputError, OpseraPermissionError
from airflow_provider_opsera.operators.data import (
    OpseraCreateMappingOperator,
    OpseraCreateOrgHierarchyOperator,
    OpseraCreatePersonOperator,
    OpseraCreateProjectOperator,
)
from airflow_provider_opsera.writing.record_sync import OpseraSyncError
from tests.unit.conftest import BASE_URL

DATA = BASE_URL + "/api/v2/data"
NOT_FOUND = {"status_code": 404, "json": {"status": "failed", "message": "not found"}}

PROJECT = {"projectId": "2322345", "projectName": "Phase 2", "projectOwner": {"email": "jd@example.com"}}
PERSON = {"email": "jd@example.com", "firstName": "John"}
MAPPING = {"attribute1": "2322345", "attribute2": "jd@example.com", "mappingType": "project-people",
           "relationship": "many-to-many"}


@pytest.fixture(autouse=True)
def conn(set_conn, token):
    set_conn(host=BASE_URL, password=token)


@pytest.fixture
def context():
    return {"ti": None}


def posts(requests_mock, path):
    return [r.json() for r in requests_mock.request_history if r.method == "POST" and r.url == DATA + path]


class FakeData:
    """People and projects held in memory, answering like the v2 data API."""

    def __init__(self, requests_mock, people=(), projects=(), mappings=()):
        self.people = {p["email"].lower(): dict(p) for p in people}
        self.projects = {p["projectId"]: dict(p) for p in projects}
        self.mappings = [dict(m) for m in mappings]
        requests_mock.get(re.compile(re.escape(DATA) + "/people/.+"), json=self._get_person)
        requests_mock.post(f"{DATA}/people", json=self._create_person)
        requests_mock.get(re.compile(re.escape(DATA) + "/project/.+"), json=self._get_project)
        requests_mock.post(f"{DATA}/project", json=self._create_project)
        requests_mock.get(f"{DATA}/mapping", json=lambda r, c: {"count": len(self.mappings), "data": self.mappings})
        requests_mock.post(f"{DATA}/mapping", json=self._create_mapping)
        requests_mock.post(f"{DATA}/org-hierarchy", json=self._create_org)

    @staticmethod
    def _key(request):
        return urllib.parse.unquote(request.path.rsplit("/", 1)[1])

    def _missing(self, context):
        context.status_code = 404
        return {"status": "failed", "message": "not found"}

    def _get_person(self, request, context):
        found = self.people.get(self._key(request).lower())
        return found if found else self._missing(context)

    def _create_person(self, request, context):
        body = request.json()
        self.people[body["email"].lower()] = body
        return body

    def _get_project(self, request, context):
        found = self.projects.get(self._key(request))
        return found if found else self._missing(context)

    def _create_project(self, request, context):
        body = request.json()
        self.projects[body["projectId"]] = body
        return body

    def _create_mapping(self, request, context):
        record = {"id": f"m{len(self.mappings)}", **request.json()}
        self.mappings.append(record)
        return record

    def _create_org(self, request, context):
        body = request.json()
        record = {"id": f"m{len(self.mappings)}", "attribute1": body["parent"], "attribute2": body["child"],
                  "mappingType": "parent-child", "relationship": "org-hierarchy"}
        record.update({k: body[k] for k in ("parentType", "childType") if k in body})
        self.mappings.append(record)
        return record


# -- checks before anything is sent ------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: OpseraCreateProjectOperator(task_id="t", project={"projectName": "x"}), "projectId"),
        (lambda: OpseraCreateProjectOperator(task_id="t", project={**PROJECT, "projectId": 7}), "must be a string"),
        (lambda: OpseraCreateProjectOperator(task_id="t", project={**PROJECT, "projectOwner": {"email": "x"}}),
         "projectOwner.email must be an email address"),
        (lambda: OpseraCreateProjectOperator(task_id="t", project={**PROJECT, "assets": {"services": [{}]}}),
         r"services\[0\].name"),
        (lambda: OpseraCreateProjectOperator(task_id="t", project=None), "project is required"),
        (lambda: OpseraCreateProjectOperator(task_id="t", project="2322345"), "must be a dict or a list"),
        (lambda: OpseraCreatePersonOperator(task_id="t", person={"email": "nobody"}), "must be an email address"),
        (lambda: OpseraCreatePersonOperator(task_id="t", person={**PERSON, "lastName": 1}), "lastName must be"),
        (lambda: OpseraCreatePersonOperator(task_id="t", person={**PERSON, "surname": "Doe"}), "unknown field"),
        (lambda: OpseraCreateOrgHierarchyOperator(task_id="t", parent="A", child="B", parent_type="team",
                                                  child_type="business"), "must be a lower level"),
        (lambda: OpseraCreateOrgHierarchyOperator(task_id="t", parent="A", child="B", parent_type="tribe"),
         "parent_type must be one of"),
        (lambda: OpseraCreateOrgHierarchyOperator(task_id="t", parent=None, child="B"), "parent"),
        (lambda: OpseraCreateMappingOperator(task_id="t", mapping={**MAPPING, "mappingType": "people"}),
         "mappingType must be one of"),
        (lambda: OpseraCreateMappingOperator(task_id="t", mapping={**MAPPING, "relationship": "some"}),
         "relationship must be one of"),
        (lambda: OpseraCreateMappingOperator(task_id="t", mapping={"attribute1": "a"}), "attribute2"),
    ],
)
def test_invalid_records_are_refused_before_any_request(requests_mock, context, make, message):
    with pytest.raises(OpseraInputError, match=message):
        make().execute(context)
    assert requests_mock.call_count == 0


def test_if_exists_is_checked_when_the_dag_is_parsed(requests_mock):
    with pytest.raises(OpseraInputError, match="if_exists must be one of skip, fail"):
        OpseraCreatePersonOperator(task_id="t", person=PERSON, if_exists="overwrite")
    assert requests_mock.call_count == 0


def test_each_operator_templates_its_record_arguments():
    assert OpseraCreateProjectOperator.template_fields == ("project",)
    assert OpseraCreatePersonOperator.template_fields == ("person",)
    assert OpseraCreateMappingOperator.template_fields == ("mapping",)
    assert OpseraCreateOrgHierarchyOperator.template_fields == ("parent", "child", "parent_type", "child_type")


# -- one record ---------------------------------------------------------------------------------------


def test_a_missing_project_is_created_and_returned(requests_mock, context):
    FakeData(requests_mock)
    result = OpseraCreateProjectOperator(task_id="t", project=PROJECT).execute(context)
    assert result == PROJECT
    assert posts(requests_mock, "/project") == [PROJECT]


def test_a_second_run_skips_what_the_first_created(requests_mock, context, captured):
    FakeData(requests_mock)
    op = OpseraCreatePersonOperator(task_id="t", person=PERSON)
    first = op.execute(context)
    second = op.execute(context)
    assert first == second == PERSON
    assert len(posts(requests_mock, "/people")) == 1
    assert "already in Opsera with the requested values: skipped" in captured()


def test_an_existing_record_that_differs_fails_and_is_not_overwritten(requests_mock, context):
    FakeData(requests_mock, people=[{"email": "JD@example.com", "firstName": "Johnny"}])
    with pytest.raises(OpseraConflictError) as caught:
        OpseraCreatePersonOperator(task_id="t", person=PERSON).execute(context)
    assert "person 'jd@example.com' exists in Opsera with other values" in str(caught.value)
    assert 'firstName: "Johnny" in Opsera, "John" requested' in str(caught.value)
    assert posts(requests_mock, "/people") == []


def test_if_exists_fail_fails_on_an_identical_record(requests_mock, context):
    FakeData(requests_mock, projects=[PROJECT])
    with pytest.raises(OpseraConflictError, match=r"exists in Opsera already \(if_exists='fail'\)"):
        OpseraCreateProjectOperator(task_id="t", project=PROJECT, if_exists="fail").execute(context)
    assert posts(requests_mock, "/project") == []


def test_a_409_on_create_is_resolved_by_reading_the_record(requests_mock, context):
    requests_mock.get(f"{DATA}/people/jd%40example.com", [NOT_FOUND, {"json": {**PERSON, "_id": "p1"}}])
    requests_mock.post(f"{DATA}/people", status_code=409, json={"status": "failed", "message": "duplicate email"})
    result = OpseraCreatePersonOperator(task_id="t", person=PERSON).execute(context)
    assert result["_id"] == "p1"


def test_a_403_names_the_scopes_the_data_api_accepts(requests_mock, context):
    requests_mock.get(f"{DATA}/project/2322345", status_code=403, json={"status": "failed", "message": "forbidden"})
    with pytest.raises(OpseraPermissionError) as caught:
        OpseraCreateProjectOperator(task_id="t", project=PROJECT).execute(context)
    assert "The token's scope must be one of: api, api-readonly" in str(caught.value)


def test_unknown_fields_are_sent_with_a_warning_when_allowed(requests_mock, context, captured):
    FakeData(requests_mock)
    OpseraCreatePersonOperator(task_id="t", person={**PERSON, "badge": "7"}, allow_unknown_fields=True).execute(
        context
    )
    assert posts(requests_mock, "/people") == [{**PERSON, "badge": "7"}]
    assert "does not know: 'badge'" in captured()


# -- lists ----------------------------------------------------------------------------------------


class FakeTI:
    def __init__(self):
        self.xcom = {}

    def xcom_push(self, key, value):
        self.xcom[key] = value


def test_a_list_with_bad_records_fails_before_anything_is_sent_naming_each(requests_mock, context):
    FakeData(requests_mock)
    people = [
        {"email": "ann@example.com"},
        {"email": "not-an-email"},
        {"email": "bo@example.com", "buisness": "Sales"},  # misspelt field
        "bob@example.com",  # not a dict
        {"email": "cy@example.com", "lastName": ""},
    ]
    with pytest.raises(OpseraInputError) as caught:
        OpseraCreatePersonOperator(task_id="t", person=people).execute(context)

    message = str(caught.value)
    assert message.startswith("4 of 5 people failed the checks made before sending; nothing was sent to Opsera")
    assert "person #2 (not-an-email): person.email must be an email address" in message
    assert "person #3 (bo@example.com): person: unknown field(s) 'buisness' (did you mean 'business'?)" in message
    assert "person #4: person must be a JSON object" in message
    assert "person #5 (cy@example.com): person.lastName must be a non-empty string" in message
    assert [label for label, _ in caught.value.failures] == [
        "person #2 (not-an-email)", "person #3 (bo@example.com)", "person #4", "person #5 (cy@example.com)"]
    assert requests_mock.call_count == 0


def test_a_list_goes_past_records_opsera_refuses_and_names_each_at_the_end(requests_mock, captured):
    FakeData(requests_mock, people=[{"email": "dana@example.com", "firstName": "Dana"}])
    requests_mock.post(f"{DATA}/people", [{"json": {"email": "ann@example.com"}},
                                          {"status_code": 422, "json": {"message": "team is not known"}},
                                          {"json": {"email": "cy@example.com"}}])
    people = [
        {"email": "ann@example.com"},
        {"email": "dana@example.com", "firstName": "Dana"},  # already there: skipped
        {"email": "dana@example.com", "firstName": "Daniel"},  # already there, differs: fails
        {"email": "bo@example.com", "team": "Nowhere"},  # Opsera refuses it
        {"email": "cy@example.com"},
    ]
    ti = FakeTI()
    with pytest.raises(OpseraSyncError) as caught:
        OpseraCreatePersonOperator(task_id="t", person=people, max_concurrency=1).execute({"ti": ti})

    message = str(caught.value)
    assert message.startswith("2 of 5 people failed (2 created, 1 already there, 2 failed)")
    assert "person #3 (dana@example.com): the record exists in Opsera with other values" in message
    assert "person #4 (bo@example.com): Opsera POST /api/v2/data/people" in message
    assert [label for label, _ in caught.value.failures] == ["person #3 (dana@example.com)", "person #4 (bo@example.com)"]
    assert [p["email"] for p in posts(requests_mock, "/people")] == [
        "ann@example.com", "bo@example.com", "cy@example.com"]
    assert "Opsera people: 2 created, 1 already there, 2 failed, in" in captured()
    summary = ti.xcom["return_value"]  # pushed although the task fails, for a downstream task to read
    assert (summary["created"], summary["already_there"], summary["failed"]) == (2, 1, 2)
    assert summary["created_ids"] == ["ann@example.com", "cy@example.com"]
    assert [f["record"] for f in summary["failures"]] == ["person #3 (dana@example.com)", "person #4 (bo@example.com)"]
    assert "team is not known" in summary["failures"][1]["error"]


def test_a_list_returns_a_summary_by_default_and_every_record_on_request(requests_mock, context):
    FakeData(requests_mock, projects=[PROJECT])
    other = {"projectId": "2322346", "projectName": "Billing"}
    summary = OpseraCreateProjectOperator(task_id="t", project=[PROJECT, other]).execute(context)
    assert {k: summary[k] for k in ("kind", "total", "created", "already_there", "failed", "created_ids")} == {
        "kind": "projects", "total": 2, "created": 1, "already_there": 1, "failed": 0, "created_ids": ["2322346"]}
    assert summary["failures"] == []

    records = OpseraCreateProjectOperator(task_id="t", project=[PROJECT, other], return_records=True).execute(context)
    assert records == [PROJECT, other]


def test_a_list_rendered_as_text_by_a_template_is_read(requests_mock, context):
    FakeData(requests_mock)
    result = OpseraCreatePersonOperator(task_id="t", person=str([PERSON]), return_records=True).execute(context)
    assert result == [PERSON]


def test_an_empty_list_sends_nothing(requests_mock, context):
    assert OpseraCreateMappingOperator(task_id="t", mapping=[], return_records=True).execute(context) == []
    assert OpseraCreateMappingOperator(task_id="t", mapping=[]).execute(context)["total"] == 0
    assert requests_mock.call_count == 0


@pytest.mark.parametrize("value", [0, -1, "eight", 65, 2.5])
def test_max_concurrency_is_checked_when_the_dag_is_parsed(requests_mock, value):
    with pytest.raises(OpseraInputError, match="max_concurrency must be"):
        OpseraCreatePersonOperator(task_id="t", person=PERSON, max_concurrency=value)
    assert requests_mock.call_count == 0


def test_a_permission_error_stops_the_list_at_once(requests_mock, context, captured):
    forbidden = {"status": "failed", "message": "forbidden"}
    requests_mock.get(re.compile(re.escape(DATA) + "/people/.+"), status_code=403, json=forbidden)
    people = [{"email": f"p{i}@example.com"} for i in range(5)]
    with pytest.raises(OpseraPermissionError, match="api, api-readonly"):
        OpseraCreatePersonOperator(task_id="t", person=people).execute(context)
    assert requests_mock.call_count == 1
    assert "not attempted: 4" in captured()


# -- mappings and the org hierarchy (found in the mapping list) ------------------------------------


def test_mappings_are_read_once_and_duplicates_in_one_list_are_skipped(requests_mock, context):
    FakeData(requests_mock)
    other = {**MAPPING, "attribute2": "dev@example.com"}
    result = OpseraCreateMappingOperator(
        task_id="t", mapping=[MAPPING, other, dict(MAPPING)], return_records=True
    ).execute(context)

    assert len(posts(requests_mock, "/mapping")) == 2
    assert sum(r.method == "GET" for r in requests_mock.request_history) == 1
    assert result[2] == result[0]  # the repeat is found among the records just created


def test_a_mapping_with_another_relationship_fails(requests_mock, context):
    FakeData(requests_mock, mappings=[{"id": "m0", **MAPPING, "relationship": "one-to-one"}])
    with pytest.raises(OpseraConflictError, match='relationship: "one-to-one" in Opsera, "many-to-many" requested'):
        OpseraCreateMappingOperator(task_id="t", mapping=MAPPING).execute(context)


def test_org_hierarchy_links_many_children_and_skips_them_next_time(requests_mock, context):
    fake = FakeData(requests_mock)
    op = OpseraCreateOrgHierarchyOperator(
        task_id="t",
        parent="Engineering",
        parent_type="business",
        child=["Platform", {"child": "Data", "childType": "group"}],
        child_type="department",
        return_records=True,
    )
    first = op.execute(context)
    assert [(m["attribute2"], m["childType"]) for m in first] == [("Platform", "department"), ("Data", "group")]
    assert posts(requests_mock, "/org-hierarchy") == [
        {"parent": "Engineering", "child": "Platform", "parentType": "business", "childType": "department"},
        {"parent": "Engineering", "child": "Data", "parentType": "business", "childType": "group"},
    ]
    assert op.execute(context) == first
    assert len(fake.mappings) == 2


def test_org_hierarchy_link_with_other_levels_fails(requests_mock, context):
    FakeData(requests_mock, mappings=[{"id": "m0", "attribute1": "Example Corp", "attribute2": "Engineering",
                                       "mappingType": "parent-child", "relationship": "org-hierarchy",
                                       "parentType": "root", "childType": "Business"}])
    same = OpseraCreateOrgHierarchyOperator(task_id="t", parent="Example Corp", child="Engineering",
                                            parent_type="root", child_type="business")
    assert same.execute(context)["id"] == "m0"  # levels compare without regard to case
    other = OpseraCreateOrgHierarchyOperator(task_id="t", parent="Example Corp", child="Engineering",
                                             child_type="department")
    with pytest.raises(OpseraConflictError, match='childType: "Business" in Opsera, "department" requested'):
        other.execute(context)
    assert posts(requests_mock, "/org-hierarchy") == []


def test_a_whole_tree_can_come_as_a_list_of_links(requests_mock, context):
    FakeData(requests_mock)
    tree = [
        {"parent": "Example Corp", "parentType": "root", "child": "Engineering", "childType": "business"},
        {"parent": "Engineering", "parentType": "business", "child": "Platform", "childType": "department"},
    ]
    result = OpseraCreateOrgHierarchyOperator(task_id="t", parent=None, child=tree, return_records=True).execute(
        context
    )
    assert [(m["attribute1"], m["attribute2"]) for m in result] == [("Example Corp", "Engineering"),
                                                                    ("Engineering", "Platform")]
