"""Operators that create Insights data in Opsera (data API v2): projects, people, org hierarchy, mappings.

Every operator takes one record or a list of them (a list is typically pulled from XCom) and
is safe to re-run: see :mod:`airflow_provider_opsera.writing.record_sync` for what happens to records
that exist already. Fields are checked before anything is sent, because Opsera stores what it
is sent; a field this provider does not know is refused with a suggestion (a misspelt key would
otherwise be stored next to the empty field it was meant for), unless
``allow_unknown_fields=True``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_opsera._compat import BaseOperator
from airflow_provider_opsera.client import validation
from airflow_provider_opsera.client.api import RECORD_CAP
from airflow_provider_opsera.exceptions import OpseraNotFoundError
from airflow_provider_opsera.writing import record_checks
from airflow_provider_opsera.writing.diffing import render
from airflow_provider_opsera.writing.record_sync import IF_EXISTS_CHOICES, RecordKind, sync_records

if TYPE_CHECKING:
    from airflow_provider_opsera.hooks.opsera import OpseraHook

    try:
        from airflow.sdk.definitions.context import Context
    except ImportError:
        from airflow.utils.context import Context  # type: ignore[no-redef]


# -- how each kind of record is checked, found and created ----------------------------------------


class _RecordsReadByKey(RecordKind):
    """Records Opsera answers for by a key: read first, create only when it is not found.

    Reading first rather than relying on a 409: only a person's email is documented as
    unique, so a project posted twice might be stored twice.
    """

    key: str

    def name_of(self, raw: Any) -> str | None:
        return raw.get(self.key)

    def find_existing(self, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return self.read(body[self.key])
        except OpseraNotFoundError:
            return None

    @abstractmethod
    def read(self, key: str) -> dict[str, Any]: ...


class ProjectRecords(_RecordsReadByKey):
    noun, plural, key = "project", "projects", "projectId"

    def prepare(self, raw: Any) -> tuple[dict[str, Any], list[str]]:
        return record_checks.project(raw, allow_unknown_fields=self.allow_unknown_fields)

    def read(self, key: str) -> dict[str, Any]:
        return self.hook.get_project(key)

    def create(self, body: dict[str, Any]) -> Any:
        return self.hook.create_project(body)


class PersonRecords(_RecordsReadByKey):
    noun, plural, key = "person", "people", "email"

    def prepare(self, raw: Any) -> tuple[dict[str, Any], list[str]]:
        return record_checks.person(raw, allow_unknown_fields=self.allow_unknown_fields)

    def read(self, key: str) -> dict[str, Any]:
        return self.hook.get_person(key)

    def create(self, body: dict[str, Any]) -> Any:
        return self.hook.create_person(body)

    def differences(self, body: dict[str, Any], existing: dict[str, Any]) -> list[str]:
        # Opsera matches emails without regard to case; so does this comparison.
        existing = {**existing, "email": str(existing.get("email", "")).lower()}
        return super().differences({**body, "email": body["email"].lower()}, existing)


class MappingRecords(RecordKind):
    """Mappings have no key Opsera enforces, so they are found in the mapping list (read once per run)."""

    noun, plural = "mapping", "mappings"
    #: fields that make two mappings the same mapping; the others must then agree
    identity = ("attribute1", "attribute2", "mappingType")

    def __init__(self, hook: OpseraHook, **kwargs: Any):
        super().__init__(hook, **kwargs)
        self._known: list[dict[str, Any]] | None = None

    def prepare(self, raw: Any) -> tuple[dict[str, Any], list[str]]:
        return record_checks.mapping_record(raw, allow_unknown_fields=self.allow_unknown_fields)

    def name_of(self, raw: Any) -> str | None:
        return f"{raw.get('attribute1')} -> {raw.get('attribute2')}"

    def as_stored(self, body: dict[str, Any]) -> dict[str, Any]:
        """The body in the shape Opsera stores it."""
        return body

    def known(self) -> list[dict[str, Any]]:
        if self._known is None:
            self._known = [m for m in self.hook.list_mappings() if isinstance(m, dict)]
            if len(self._known) >= RECORD_CAP:
                self.log.warning(
                    "Opsera listed %d mappings, its cap: a mapping beyond it cannot be seen, so one that "
                    "exists already may be created again.",
                    len(self._known),
                )
        return self._known

    def find_existing(self, body: dict[str, Any]) -> dict[str, Any] | None:
        stored = self.as_stored(body)
        for record in self.known():
            if all(record.get(field) == stored.get(field) for field in self.identity):
                return record
        return None

    def create(self, body: dict[str, Any]) -> Any:
        return self.hook.create_mapping(body)

    def remember(self, record: dict[str, Any]) -> None:
        self.known().append(record)

    def differences(self, body: dict[str, Any], existing: dict[str, Any]) -> list[str]:
        stored = self.as_stored(body)
        lines = []
        for field, wanted in stored.items():
            if field in self.identity:
                continue
            have = existing.get(field)
            same = (
                str(have).lower() == str(wanted).lower()
                if field in ("parentType", "childType")
                else have == wanted
            )
            if not same:
                lines.append(f"{field}: {render(have)} in Opsera, {render(wanted)} requested")
        return lines


class OrgHierarchyRecords(MappingRecords):
    """Org hierarchy links are mappings (``parent-child`` / ``org-hierarchy``) made through their own call."""

    noun, plural = "org hierarchy link", "org hierarchy links"
    identity = ("attribute1", "attribute2", "mappingType", "relationship")

    def prepare(self, raw: Any) -> tuple[dict[str, Any], list[str]]:
        return record_checks.org_hierarchy(raw, allow_unknown_fields=self.allow_unknown_fields)

    def name_of(self, raw: Any) -> str | None:
        return f"{raw.get('parent')} > {raw.get('child')}"

    def as_stored(self, body: dict[str, Any]) -> dict[str, Any]:
        stored = {
            "attribute1": body["parent"],
            "attribute2": body["child"],
            "mappingType": record_checks.ORG_HIERARCHY_MAPPING_TYPE,
            "relationship": record_checks.ORG_HIERARCHY_RELATIONSHIP,
        }
        stored.update({field: body[field] for field in ("parentType", "childType") if field in body})
        return stored

    def create(self, body: dict[str, Any]) -> Any:
        return self.hook.create_org_hierarchy(
            body["parent"], body["child"], body.get("parentType"), body.get("childType")
        )


# -- operators ------------------------------------------------------------------------------------


class _OpseraCreateRecordsOperator(BaseOperator):
    """Shared shape: a hook, ``if_exists``, and the sync of one record or a list of them."""

    record_kind: type[RecordKind]
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        if_exists: str = "skip",
        allow_unknown_fields: bool = False,
        opsera_conn_id: str = "opsera_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.if_exists = validation.one_of(if_exists, IF_EXISTS_CHOICES, "if_exists")
        self.allow_unknown_fields = allow_unknown_fields
        self.opsera_conn_id = opsera_conn_id

    @cached_property
    def hook(self) -> OpseraHook:
        from airflow_provider_opsera.hooks.opsera import OpseraHook

        return OpseraHook(opsera_conn_id=self.opsera_conn_id)

    def records(self) -> Any:
        """The record or list of records to sync, from the (rendered) arguments."""
        raise NotImplementedError

    def execute(self, context: Context) -> Any:
        kind = self.record_kind(self.hook, allow_unknown_fields=self.allow_unknown_fields, log=self.log)
        return sync_records(kind, self.records(), if_exists=self.if_exists, log=self.log)


class OpseraCreateProjectOperator(_OpseraCreateRecordsOperator):
    """Create an Insights project, or several, unless Opsera has them already.

    :param project: the project in the v2 shape (``projectId`` and ``projectName`` required;
        ``projectOwner``, ``externalId``, ``organization`` ... ``team``, ``assets``), or a list of
        them. Templated: a list pulled from XCom works.
    :param if_exists: ``"skip"`` (default): a project already there with the same values is
        reported and skipped, one with other values fails. ``"fail"``: any existing project fails.
    :param allow_unknown_fields: send fields this provider does not know (with a warning)
        instead of refusing them.
    :param opsera_conn_id: the Opsera connection.
    :return: the project as Opsera holds it, or the list of them.
    """

    template_fields: Sequence[str] = ("project",)
    template_fields_renderers = {"project": "json"}
    record_kind = ProjectRecords

    def __init__(self, *, project: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.project = project

    def records(self) -> Any:
        return self.project


class OpseraCreatePersonOperator(_OpseraCreateRecordsOperator):
    """Create an Insights person, or several, unless Opsera has them already (matched by email).

    :param person: ``{"email": ..., "firstName": ..., "lastName": ..., "displayName": ...,
        "externalId": ..., "organization": ... "team": ...}`` (only ``email`` required), or a
        list of them. Templated.
    :param if_exists: ``"skip"`` (default) or ``"fail"``, as for
        :class:`OpseraCreateProjectOperator`.
    :param allow_unknown_fields: send fields this provider does not know instead of refusing them.
    :param opsera_conn_id: the Opsera connection.
    :return: the person as Opsera holds them, or the list of people.
    """

    template_fields: Sequence[str] = ("person",)
    template_fields_renderers = {"person": "json"}
    record_kind = PersonRecords

    def __init__(self, *, person: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.person = person

    def records(self) -> Any:
        return self.person


class OpseraCreateOrgHierarchyOperator(_OpseraCreateRecordsOperator):
    """Link a child (a business, department, group or team) to its parent in the org hierarchy.

    Levels, highest first: organization > business > department > group > team; the top parent's
    type is ``root``. A child's level must be below its parent's.

    :param parent: the parent's name. Templated.
    :param child: the child's name, or a list for several links. A list item is a child's name
        (linked to ``parent``), or a dict ``{"child", "childType", "parent", "parentType"}`` whose
        keys override the operator's arguments: ``parent=None, child=[{...}, ...]`` syncs a whole
        tree. Templated.
    :param parent_type: the parent's level, or ``root``. Templated.
    :param child_type: the child's level. Templated.
    :param if_exists: ``"skip"`` (default) or ``"fail"``, as for
        :class:`OpseraCreateProjectOperator`.
    :param opsera_conn_id: the Opsera connection.
    :return: the link as Opsera stores it (a mapping record), or the list of them.
    """

    template_fields: Sequence[str] = ("parent", "child", "parent_type", "child_type")
    template_fields_renderers = {"child": "json"}
    record_kind = OrgHierarchyRecords

    def __init__(
        self,
        *,
        parent: str | None,
        child: Any,
        parent_type: str | None = None,
        child_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.parent = parent
        self.child = child
        self.parent_type = parent_type
        self.child_type = child_type

    def records(self) -> Any:
        child = validation.structured(self.child, "child")
        if isinstance(child, list):
            return [self._link(item) for item in child]
        return self._link(child)

    def _link(self, child: Any) -> Any:
        defaults = {"parent": self.parent, "parentType": self.parent_type, "childType": self.child_type}
        if isinstance(child, Mapping):
            return {**defaults, **child}
        return {**defaults, "child": child}


class OpseraCreateMappingOperator(_OpseraCreateRecordsOperator):
    """Create an Insights mapping, or several, unless Opsera has them already.

    A mapping is the same mapping when ``attribute1``, ``attribute2`` and ``mappingType`` match;
    its ``relationship`` must then match too.

    :param mapping: ``{"attribute1", "attribute2", "mappingType": "project-people" | "parent-child",
        "relationship": "many-to-many" | "many-to-one" | "one-to-one" | "one-to-many" |
        "org-hierarchy"}``, or a list of them. Templated.
    :param if_exists: ``"skip"`` (default) or ``"fail"``, as for
        :class:`OpseraCreateProjectOperator`.
    :param allow_unknown_fields: send fields this provider does not know instead of refusing them.
    :param opsera_conn_id: the Opsera connection.
    :return: the mapping as Opsera holds it, or the list of them.
    """

    template_fields: Sequence[str] = ("mapping",)
    template_fields_renderers = {"mapping": "json"}
    record_kind = MappingRecords

    def __init__(self, *, mapping: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mapping = mapping

    def records(self) -> Any:
        return self.mapping
