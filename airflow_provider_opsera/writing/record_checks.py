"""Checks on what a write sends: tool registry updates and Insights (v2) records.

Opsera stores whatever it is sent, so these run over every record before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_opsera.client.validation import email, json_body, mapping, one_of, required, string, structured
from airflow_provider_opsera.exceptions import OpseraInputError

# -- tool registry updates -----------------------------------------------------------------------

# Opsera maintains these; an update that carries them changes nothing or breaks the record.
SERVER_MANAGED_FIELDS = ("createdAt", "updatedAt", "__v")


def tool_update(tool: Any, tool_id: str | None) -> tuple[dict[str, Any], list[str]]:
    """The root properties to send to ``/registry/update`` and the keys dropped from them.

    ``tool_id`` is None when it is not known yet (a template, when the DAG is parsed): ``tool._id`` is
    then compared with it once it is rendered.

    Refuses: a non-dict or empty ``tool``, an ``_id`` other than ``tool_id``, keys that are not
    plain root property names (``configuration.url`` or ``$set`` would be read as a nested path or
    an operator by the database behind Opsera), and values JSON cannot carry. Drops, for the caller
    to warn about: ``createdAt``, ``updatedAt``, ``__v`` and an ``_id`` equal to ``tool_id``.
    """
    tool = mapping(structured(tool, "tool"), "tool")
    if not tool:
        raise OpseraInputError("tool must name at least one root property to change, got an empty dict")
    dropped: list[str] = []
    changes: dict[str, Any] = {}
    for key, value in tool.items():
        if not isinstance(key, str) or not key.strip():
            raise OpseraInputError(f"tool property names must be non-empty strings, got {key!r}")
        if key.startswith("$") or "." in key:
            raise OpseraInputError(
                f"tool property {key!r} is not a root property name: to change a nested value, "
                "send the whole root property (e.g. the complete 'configuration' object)"
            )
        if key == "_id":
            if tool_id is not None and str(value) != tool_id:
                raise OpseraInputError(f"tool._id cannot be changed: the tool is {tool_id}, tool._id is {value!r}")
            dropped.append(key)
        elif key in SERVER_MANAGED_FIELDS:
            dropped.append(key)
        else:
            changes[key] = value
    if not changes:
        raise OpseraInputError(
            f"tool has nothing to change once {', '.join(dropped)} (set by Opsera) are left out"
        )
    json_body(changes, "tool")
    return changes, dropped


# Root properties of every tool in Opsera's registry; a tool may carry more, which count as known too.
TOOL_FIELDS = (
    "name",
    "description",
    "tool_identifier",
    "tool_type_identifier",
    "owner",
    "roles",
    "tags",
    "active",
    "configuration",
    "account",
)


def tool_root_keys(wanted: Mapping[str, Any], current: Mapping[str, Any], *, allow_unknown: bool) -> list[str]:
    """Refuse root keys the tool does not have and tools do not carry (or, with ``allow_unknown``, warn).

    Opsera stores any root key it is sent: a misspelt ``configuraton`` would sit beside the
    ``configuration`` it was meant to change.
    """
    extra = [key for key in current if key not in TOOL_FIELDS and key != "_id" and key not in SERVER_MANAGED_FIELDS]
    return known_fields(wanted, (*TOOL_FIELDS, *extra), "tool", allow_unknown=allow_unknown)


# -- Insights data (v2) records ------------------------------------------------------------------
#
# Opsera stores whatever it is sent, so a misspelt key ("buisness") would be stored beside the
# empty field it was meant for and the record would silently drop out of Insights filters.
# Unknown keys are therefore refused, naming the closest known key; ``allow_unknown_fields=True``
# sends them anyway (with a warning) for fields newer than this provider.

ORG_LEVELS = ("organization", "business", "department", "group", "team")  # highest first
ROOT_LEVEL = "root"
MAPPING_TYPES = ("project-people", "parent-child")
RELATIONSHIPS = ("many-to-many", "many-to-one", "one-to-one", "one-to-many", "org-hierarchy")
ORG_HIERARCHY_RELATIONSHIP = "org-hierarchy"
ORG_HIERARCHY_MAPPING_TYPE = "parent-child"

# People and projects name their place in the hierarchy with one field per level.
PERSON_FIELDS = ("email", "firstName", "lastName", "displayName", "externalId", *ORG_LEVELS)
PROJECT_FIELDS = ("projectId", "projectName", "projectOwner", "externalId", "assets", *ORG_LEVELS)
PROJECT_OWNER_FIELDS = ("firstName", "lastName", "email")
ASSET_KINDS = ("repositories", "services")
REPOSITORY_FIELDS = ("name", "platform", "url")
SERVICE_FIELDS = ("name", "identifier", "dependencies", "externalId")
MAPPING_FIELDS = ("attribute1", "attribute2", "mappingType", "relationship", "parentType", "childType")
ORG_HIERARCHY_FIELDS = ("parent", "child", "parentType", "childType")
# Keys a record read back from Opsera carries; dropped (with a warning) when one is fed back in.
RECORD_SERVER_FIELDS = ("_id", "id", "createdAt", "updatedAt", "__v")


class OpseraUnknownFieldsError(OpseraInputError):
    """A record has keys this provider does not know.

    ``problem`` names them (with a did-you-mean); ``advice`` lists the known fields. A list of
    records with the same problem is reported with the problem once and the advice once.
    """

    def __init__(self, problem: str, advice: str):
        super().__init__(f"{problem}. {advice}")
        self.problem = problem
        self.advice = advice


def known_fields(
    record: Mapping[str, Any], allowed: Iterable[str], where: str, *, allow_unknown: bool
) -> list[str]:
    """Refuse keys outside ``allowed`` (or, with ``allow_unknown``, return warnings about them)."""
    import difflib

    allowed = tuple(allowed)
    unknown = [key for key in record if key not in allowed]
    if not unknown:
        return []
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        if not close:
            close = [name for name in allowed if name.lower() == str(key).lower()]
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    if allow_unknown:
        return [f"{where}: sending field(s) this provider does not know: {', '.join(hints)}"]
    # the same advice for every item of a list: "project.assets.repositories[3]" is a repository like any other
    kind = re.sub(r"\[\d+\]", "", where)
    raise OpseraUnknownFieldsError(
        f"{where}: unknown field(s) {', '.join(hints)}",
        f"Known fields of {kind}: {', '.join(allowed)}. "
        "Opsera would store unknown fields as given; pass allow_unknown_fields=True to send them anyway.",
    )


def _drop_server_fields(record: dict[str, Any], where: str, warnings: list[str]) -> None:
    present = [key for key in RECORD_SERVER_FIELDS if key in record]
    for key in present:
        del record[key]
    if present:
        warnings.append(f"{where}: left out {', '.join(present)}, which Opsera sets itself")


def _optional_strings(record: Mapping[str, Any], fields: Iterable[str], where: str) -> None:
    for name in fields:
        if name in record:
            string(record[name], f"{where}.{name}")


def _record(value: Any, where: str) -> dict[str, Any]:
    record = mapping(value, where)
    # A None value is an absent value: Opsera would store a null in its place.
    return {key: item for key, item in record.items() if item is not None}


def person(value: Any, *, allow_unknown_fields: bool = False) -> tuple[dict[str, Any], list[str]]:
    """A v2 person: a valid ``email``; names and org fields, when given, non-empty strings."""
    where = "person"
    record, warnings = _record(value, where), []
    _drop_server_fields(record, where, warnings)
    warnings += known_fields(record, PERSON_FIELDS, where, allow_unknown=allow_unknown_fields)
    required(record, ("email",), where)
    record["email"] = email(record["email"], "person.email")
    _optional_strings(record, PERSON_FIELDS[1:], where)
    return json_body(record, where), warnings


def project(value: Any, *, allow_unknown_fields: bool = False) -> tuple[dict[str, Any], list[str]]:
    """A v2 project: string ``projectId`` and ``projectName``, a valid owner, well-formed assets."""
    where = "project"
    record, warnings = _record(value, where), []
    _drop_server_fields(record, where, warnings)
    warnings += known_fields(record, PROJECT_FIELDS, where, allow_unknown=allow_unknown_fields)
    required(record, ("projectId", "projectName"), where)
    for name in ("projectId", "projectName"):
        if not isinstance(record[name], str):
            raise OpseraInputError(
                f"project.{name} must be a string, got {type(record[name]).__name__} {record[name]!r}"
                + (f" (write it as {str(record[name])!r})" if isinstance(record[name], int) else "")
            )
    _optional_strings(record, ("externalId", *ORG_LEVELS), where)
    if "projectOwner" in record:
        owner = mapping(record["projectOwner"], "project.projectOwner")
        warnings += known_fields(
            owner, PROJECT_OWNER_FIELDS, "project.projectOwner", allow_unknown=allow_unknown_fields
        )
        required(owner, ("email",), "project.projectOwner")
        email(owner["email"], "project.projectOwner.email")
        _optional_strings(owner, ("firstName", "lastName"), "project.projectOwner")
    if "assets" in record:
        warnings += _assets(record["assets"], allow_unknown_fields)
    return json_body(record, where), warnings


def _assets(value: Any, allow_unknown_fields: bool) -> list[str]:
    if isinstance(value, list):
        raise OpseraInputError(
            'project.assets must be an object {"repositories": [...], "services": [...]}, got a list'
        )
    assets = mapping(value, "project.assets")
    warnings = known_fields(assets, ASSET_KINDS, "project.assets", allow_unknown=allow_unknown_fields)
    for kind, fields in (("repositories", REPOSITORY_FIELDS), ("services", SERVICE_FIELDS)):
        if kind not in assets:
            continue
        items = assets[kind]
        if not isinstance(items, list):
            raise OpseraInputError(f"project.assets.{kind} must be a list of objects, got {type(items).__name__}")
        for index, item in enumerate(items):
            where = f"project.assets.{kind}[{index}]"
            item = mapping(item, where)
            warnings += known_fields(item, fields, where, allow_unknown=allow_unknown_fields)
            string(item.get("name"), f"{where}.name")
            _optional_strings(item, [name for name in fields if name not in ("name", "dependencies")], where)
            if "dependencies" in item and not isinstance(item["dependencies"], (dict, list)):
                raise OpseraInputError(f"{where}.dependencies must be an object or a list")
    return warnings


def org_level(value: Any, field: str, *, root_allowed: bool) -> str:
    """An org hierarchy level, lower-cased: organization > business > department > group > team."""
    levels = (ROOT_LEVEL, *ORG_LEVELS) if root_allowed else ORG_LEVELS
    if isinstance(value, str) and value.strip().lower() in levels:
        return value.strip().lower()
    if isinstance(value, str) and value.strip().lower() == ROOT_LEVEL:
        raise OpseraInputError(f"{field} cannot be {ROOT_LEVEL!r}: only the top parent of the hierarchy is the root")
    raise OpseraInputError(f"{field} must be one of {', '.join(levels)}; got {value!r}")


def org_hierarchy(value: Any, *, allow_unknown_fields: bool = False) -> tuple[dict[str, Any], list[str]]:
    """One parent-child link: names given, known levels, and the child a level below its parent."""
    where = "org hierarchy"
    record, warnings = _record(value, where), []
    warnings += known_fields(record, ORG_HIERARCHY_FIELDS, where, allow_unknown=allow_unknown_fields)
    required(record, ("parent", "child"), where)
    record["parent"] = string(record["parent"], "parent")
    record["child"] = string(record["child"], "child")
    if record["parent"] == record["child"]:
        raise OpseraInputError(f"{where}: parent and child are both {record['parent']!r}")
    if "parentType" in record:
        record["parentType"] = org_level(record["parentType"], "parent_type", root_allowed=True)
    if "childType" in record:
        record["childType"] = org_level(record["childType"], "child_type", root_allowed=False)
    if "parentType" in record and "childType" in record:
        rank = (ROOT_LEVEL, *ORG_LEVELS).index
        if rank(record["childType"]) <= rank(record["parentType"]):
            raise OpseraInputError(
                f"{where}: child_type {record['childType']!r} must be a lower level than parent_type "
                f"{record['parentType']!r} (levels, highest first: {' > '.join(ORG_LEVELS)})"
            )
    return json_body(record, where), warnings


def mapping_record(value: Any, *, allow_unknown_fields: bool = False) -> tuple[dict[str, Any], list[str]]:
    """A v2 mapping: both attributes, a known ``mappingType`` and a ``relationship`` that fits it."""
    where = "mapping"
    record, warnings = _record(value, where), []
    _drop_server_fields(record, where, warnings)
    warnings += known_fields(record, MAPPING_FIELDS, where, allow_unknown=allow_unknown_fields)
    required(record, ("attribute1", "attribute2", "mappingType", "relationship"), where)
    for name in ("attribute1", "attribute2"):
        record[name] = string(record[name], f"mapping.{name}")
    one_of(record["mappingType"], MAPPING_TYPES, "mapping.mappingType")
    one_of(record["relationship"], RELATIONSHIPS, "mapping.relationship")
    if record["relationship"] == ORG_HIERARCHY_RELATIONSHIP and record["mappingType"] != ORG_HIERARCHY_MAPPING_TYPE:
        raise OpseraInputError(
            f"mapping.relationship {ORG_HIERARCHY_RELATIONSHIP!r} goes with mappingType "
            f"{ORG_HIERARCHY_MAPPING_TYPE!r}, got {record['mappingType']!r}"
        )
    if "parentType" in record:
        record["parentType"] = org_level(record["parentType"], "mapping.parentType", root_allowed=True)
    if "childType" in record:
        record["childType"] = org_level(record["childType"], "mapping.childType", root_allowed=False)
    return json_body(record, where), warnings
