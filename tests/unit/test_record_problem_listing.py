"""Many records with the same problem: one line per distinct problem, the known fields once."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_opsera.exceptions import OpseraInputError
from airflow_provider_opsera.operators.data import PersonRecords, ProjectRecords
from airflow_provider_opsera.writing.record_sync import OpseraInvalidRecordsError, check_all
from tests.unit.conftest import BASE_URL

LOG = logging.getLogger("test.record_problems")


@pytest.fixture(autouse=True)
def conn(set_conn, token):
    set_conn(host=BASE_URL, password=token)


def people_with_team_misspelt(n: int) -> list[dict]:
    return [{"email": f"p{i}@example.com", "Team": "Payments"} for i in range(n)]


def test_200_people_with_the_same_misspelt_field_make_one_line(requests_mock):
    with pytest.raises(OpseraInvalidRecordsError) as caught:
        check_all(PersonRecords(), people_with_team_misspelt(200), LOG)

    lines = str(caught.value).splitlines()
    assert lines == [
        "200 of 200 people failed the checks made before sending; nothing was sent to Opsera:",
        "  - 200 people (#1 (p0@example.com), #2 (p1@example.com), #3 (p2@example.com), #4 (p3@example.com), "
        "#5 (p4@example.com) and 195 more): person: unknown field(s) 'Team' (did you mean 'team'?)",
        "Known fields of person: email, firstName, lastName, displayName, externalId, organization, business, "
        "department, group, team. Opsera would store unknown fields as given; pass allow_unknown_fields=True to "
        "send them anyway.",
    ]
    assert len(caught.value.failures) == 200  # every record is still named in the summary pushed to XCom
    assert requests_mock.call_count == 0


def test_distinct_problems_get_a_line_each_and_a_single_record_keeps_its_own_line():
    records = [
        *people_with_team_misspelt(3),
        {"email": "not-an-email"},
        {"email": "q@example.com", "buisness": "Sales"},
        {"email": "r@example.com", "lastName": ""},
        {"email": "s@example.com", "lastName": ""},
    ]
    with pytest.raises(OpseraInputError) as caught:
        check_all(PersonRecords(), records, LOG)

    message = str(caught.value)
    assert message.splitlines()[1:] == [
        "  - 3 people (#1 (p0@example.com), #2 (p1@example.com), #3 (p2@example.com)): "
        "person: unknown field(s) 'Team' (did you mean 'team'?)",
        "  - person #4 (not-an-email): person.email must be an email address, got 'not-an-email'",
        "  - person #5 (q@example.com): person: unknown field(s) 'buisness' (did you mean 'business'?)",
        "  - 2 people (#6 (r@example.com), #7 (s@example.com)): person.lastName must be a non-empty string, "
        "got an empty string",
        "Known fields of person: email, firstName, lastName, displayName, externalId, organization, business, "
        "department, group, team. Opsera would store unknown fields as given; pass allow_unknown_fields=True to "
        "send them anyway.",
    ]


def test_the_known_fields_of_nested_records_are_listed_once_whichever_item_has_the_problem():
    project = {
        "projectId": "1",
        "projectName": "P",
        "assets": {"repositories": [{"name": "a", "branch": "main"}, {"name": "b", "branch": "main"}]},
    }
    with pytest.raises(OpseraInputError) as caught:
        check_all(ProjectRecords(), [project, {**project, "projectId": "2"}], LOG)

    message = str(caught.value)
    assert message.count("Known fields of project.assets.repositories: name, platform, url.") == 1
    assert "  - 2 projects (#1 (1), #2 (2)): project.assets.repositories[0]: unknown field(s) 'branch'" in message


def test_one_record_alone_still_carries_the_known_fields_in_its_error():
    with pytest.raises(OpseraInputError) as caught:
        PersonRecords().prepare({"email": "a@example.com", "Team": "Payments"})
    assert str(caught.value) == (
        "person: unknown field(s) 'Team' (did you mean 'team'?). Known fields of person: email, firstName, "
        "lastName, displayName, externalId, organization, business, department, group, team. Opsera would store "
        "unknown fields as given; pass allow_unknown_fields=True to send them anyway."
    )


def test_records_opsera_refuses_the_same_way_make_one_line(requests_mock):
    import re

    from airflow_provider_opsera.hooks import OpseraHook
    from airflow_provider_opsera.writing.record_sync import OpseraSyncError, sync_records

    data = BASE_URL + "/api/v2/data"
    requests_mock.get(re.compile(re.escape(data) + "/people/.+"), status_code=404, json={"message": "not found"})
    requests_mock.post(f"{data}/people", status_code=422, json={"message": "team is not known"})
    people = [{"email": f"p{i}@example.com", "team": "Nowhere"} for i in range(12)]

    with pytest.raises(OpseraSyncError) as caught:
        sync_records(PersonRecords(), people, hook=OpseraHook(), if_exists="skip", log=LOG, max_concurrency=1)

    assert str(caught.value).splitlines()[1:] == [
        "  - 12 people (#1 (p0@example.com), #2 (p1@example.com), #3 (p2@example.com), #4 (p3@example.com), "
        "#5 (p4@example.com) and 7 more): Opsera POST /api/v2/data/people: 422 rejected the request "
        "(team is not known).",
    ]
