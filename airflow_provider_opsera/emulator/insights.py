"""Data API v2: projects, people, org hierarchy and mappings for Insights.

Unlike v1 this API validates: missing required fields are a 422, a duplicate
person email or project id a 409, an unknown record a 404.
"""

from __future__ import annotations

import copy
import weakref

from .clock import iso
from .errors import ApiError, not_found
from .routes import RECORD_CAP
from .state import EmulatorState

# The contract's value sets. The client's copies are in validation.py, which imports Airflow:
# the emulator starts without it.
MAPPING_TYPES = ("project-people", "parent-child")
RELATIONSHIPS = ("many-to-many", "many-to-one", "one-to-one", "one-to-many", "org-hierarchy")
ORG_LEVELS = ("root", "organization", "business", "department", "group", "team")


def _require(body: dict, *fields: str) -> None:
    missing = [field for field in fields if body.get(field) in (None, "")]
    if missing:
        raise ApiError(422, f"missing required fields: {', '.join(missing)}", errors=missing)


def _envelope(records: list[dict]) -> dict:
    data = [copy.deepcopy(record) for record in records[:RECORD_CAP]]
    return {"count": len(data), "data": data}


def _stamp(state: EmulatorState, record: dict) -> dict:
    stamp = iso(state.now())
    record["createdAt"] = stamp
    record["updatedAt"] = stamp
    return record


def create_project(state: EmulatorState, user: dict, body: dict) -> dict:
    _require(body, "projectId", "projectName")
    project_id = str(body["projectId"])
    if any(str(project.get("projectId")) == project_id for project in state.store["projects"]):
        raise ApiError(409, f"a project with projectId {project_id} already exists")
    record = _stamp(state, dict(body))
    state.store["projects"].append(record)
    state.record_user_action(user, "project", "create", project_id)
    state.save()
    return copy.deepcopy(record)


def list_projects(state: EmulatorState, user: dict) -> dict:
    return _envelope(state.store["projects"])


def get_project(state: EmulatorState, user: dict, project_id: str) -> dict:
    for project in state.store["projects"]:
        if str(project.get("projectId")) == project_id:
            return copy.deepcopy(project)
    raise not_found(f"project {project_id} not found")


# People by lower-cased email, per state: a list of thousands would otherwise be scanned twice per person.
_PEOPLE_BY_EMAIL: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _people_by_email(state: EmulatorState) -> dict[str, dict]:
    """The first person of each email; follows appends, and starts over when the list is replaced or shrinks."""
    people = state.store["people"]
    held = _PEOPLE_BY_EMAIL.get(state)
    if held is None or held[0] is not people or held[1] > len(people):
        held = _PEOPLE_BY_EMAIL[state] = [people, 0, {}]
    for person in people[held[1]:]:
        held[2].setdefault(str(person.get("email", "")).lower(), person)
    held[1] = len(people)
    return held[2]


def create_person(state: EmulatorState, user: dict, body: dict) -> dict:
    _require(body, "email")
    if not isinstance(body["email"], str) or "@" not in body["email"]:
        raise ApiError(422, "email must be an email address", errors=["email"])
    email = body["email"].lower()
    if email in _people_by_email(state):
        raise ApiError(409, f"a person with email {body['email']} already exists")
    record = _stamp(state, dict(body))
    state.store["people"].append(record)
    state.record_user_action(user, "person", "create", body["email"])
    state.save()
    return copy.deepcopy(record)


def list_people(state: EmulatorState, user: dict) -> dict:
    return _envelope(state.store["people"])


def get_person(state: EmulatorState, user: dict, email: str) -> dict:
    person = _people_by_email(state).get(email.lower())
    if person is not None:
        return copy.deepcopy(person)
    raise not_found(f"person {email} not found")


def create_org_hierarchy(state: EmulatorState, user: dict, body: dict) -> dict:
    _require(body, "parent", "child")
    for field in ("parentType", "childType"):
        _one_of(body, field, ORG_LEVELS, fold_case=True)
    mapping = {
        "attribute1": body["parent"],
        "attribute2": body["child"],
        "mappingType": "parent-child",
        "relationship": "org-hierarchy",
    }
    for field in ("parentType", "childType"):
        if field in body:
            mapping[field] = body[field]
    return _store_mapping(state, user, mapping)


def create_mapping(state: EmulatorState, user: dict, body: dict) -> dict:
    _require(body, "attribute1", "attribute2")
    _one_of(body, "mappingType", MAPPING_TYPES)
    _one_of(body, "relationship", RELATIONSHIPS)
    return _store_mapping(state, user, dict(body))


def _one_of(body: dict, field: str, allowed: tuple[str, ...], *, fold_case: bool = False) -> None:
    """422 when an optional field holds a value outside its set (the little Opsera checks)."""
    value = body.get(field)
    if value is not None and (str(value).lower() if fold_case else value) not in allowed:
        raise ApiError(422, f"{field} must be one of {', '.join(allowed)}", errors=[field])


def _store_mapping(state: EmulatorState, user: dict, mapping: dict) -> dict:
    mapping.pop("id", None)
    record = _stamp(state, {"id": state.new_id(), **mapping})
    state.store["mappings"].append(record)
    state.record_user_action(user, "mapping", "create", record["id"])
    state.save()
    return copy.deepcopy(record)


def list_mappings(state: EmulatorState, user: dict) -> dict:
    return _envelope(state.store["mappings"])


def get_mapping(state: EmulatorState, user: dict, mapping_id: str) -> dict:
    for mapping in state.store["mappings"]:
        if mapping.get("id") == mapping_id:
            return copy.deepcopy(mapping)
    raise not_found(f"mapping {mapping_id} not found")
