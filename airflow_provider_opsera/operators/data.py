"""Operators that create Insights data in Opsera (data API v2): projects, people, org hierarchy, mappings.

Every operator takes one record or a list of them (a list is typically pulled from XCom) and
is safe to re-run: see :mod:`airflow_provider_opsera.writing.record_sync` for what happens to records
that exist already. Fields are checked before anything is sent, because Opsera stores what it
is sent (every record of a list before the first is sent); a field this provider does not know
is refused with a suggestion (a misspelt key would otherwise be stored next to the empty field it
was meant for), unless ``allow_unknown_fields=True``. A list is synced ``max_concurrency`` records
at a time and returns a summary, or every record with ``return_records=True``.
"""

from __future__ import annotations

import json
import threading
from abc import abstractmethod
from collections.abc import Hashable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_opsera._compat import BaseOperator
from airflow_provider_opsera.client import validation
from airflow_provider_opsera.client.api import RECORD_CAP
from airflow_provider_opsera.exceptions import OpseraNotFoundError
from airflow_provider_opsera.writing import record_checks
from airflow_provider_opsera.writing.diffing import render
from airflow_provider_opsera.writing.record_sync import (
    DEFAULT_MAX_CONCURRENCY,
    IF_EXISTS_CHOICES,
    OpseraSyncError,
    RecordKind,
    checked_concurrency,
    sync_records,
)

if TYPE_CHECKING:
    from airflow_provider_opsera.hooks.opsera import OpseraHook

    try:
        from airflow.sdk.definitions.context import Context
    except ImportError:
        from airflow.utils.context import Context  # type: ignore[no-redef]


XCOM_RETURN_KEY = "return_value"  # Airflow's key for what a task returns

# -- how each kind of record is checked, found and created ----------------------------------------


class _RecordsReadByKey(RecordKind):
    """Records Opsera answers for by a key: read first, create only when it is not found.

    Reading first rather than relying on a 409: only a person's email is documented as
    unique, so a project posted twice might be stored twice.
    """

    key: str

    def name_of(self, raw: Any) -> str | None:
        return raw.get(self.key)

    def identity(self, body: dict[str, Any]) -> Hashable:
        return body[self.key]

    def id_of(self, record: dict[str, Any], body: dict[str, Any]) -> Any:
        return record.get(self.key) or body[self.key]

    def find_existing(self, hook: OpseraHook, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return self.read(hook, body[self.key])
        except OpseraNotFoundError:
            return None

    @abstractmethod
    def read(self, hook: OpseraHook, key: str) -> dict[str, Any]: ...


class ProjectRecords(_RecordsReadByKey):
    noun, plural, key = "project", "projects", "projectId"

    def prepare(self, raw: Any) -> tuple[dict[str, Any], list[str]]:
        return record_checks.project(raw, allow_unknown_fields=self.allow_unknown_fields)

    def read(self, hook: OpseraHook, key: str) -> dict[str, Any]:
        return hook.get_project(key)

    def create(self, hook: OpseraHook, body: dict[str, Any]) -> Any:
        return hook.create_project(body)


class PersonRecords(_RecordsReadByKey):
    noun, plural, key = "person", "people", "email"

    def prepare(self, raw: Any) -> tuple[dict[str, Any], list[str]]:
        return record_checks.person(raw, allow_unknown_fields=self.allow_unknown_fields)

    def identity(self, body: dict[str, Any]) -> Hashable:
        return body["email"].lower()  # Opsera matches emails without regard to case

    def read(self, hook: OpseraHook, key: str) -> dict[str, Any]:
        return hook.get_person(key)

    def create(self, hook: OpseraHook, body: dict[str, Any]) -> Any:
        return hook.create_person(body)

    def differences(self, body: dict[str, Any], existing: dict[str, Any]) -> list[str]:
        # Opsera matches emails without regard to case; so does this comparison.
        existing = {**existing, "email": str(existing.get("email", "")).lower()}
        return super().differences({**body, "email": body["email"].lower()}, existing)


class MappingRecords(RecordKind):
    """Mappings have no key Opsera enforces, so they are found in the mapping list (read once per run).

    The list is shared by the workers of a list sync: read once, under a lock, and added to as
    mappings are created.
    """

    noun, plural = "mapping", "mappings"
    #: fields that make two mappings the same mapping; the others must then agree
    identity_fields = ("attribute1", "attribute2", "mappingType")

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._known: dict[str, dict[str, Any]] | None = None
        self._known_lock = threading.Lock()

    def prepare(self, raw: Any) -> tuple[dict[str, Any], list[str]]:
        return record_checks.mapping_record(raw, allow_unknown_fields=self.allow_unknown_fields)

    def name_of(self, raw: Any) -> str | None:
        return f"{raw.get('attribute1')} -> {raw.get('attribute2')}"

    def as_stored(self, body: dict[str, Any]) -> dict[str, Any]:
        """The body in the shape Opsera stores it."""
        return body

    def identity(self, body: dict[str, Any]) -> Hashable:
        return self._key(self.as_stored(body))

    def id_of(self, record: dict[str, Any], body: dict[str, Any]) -> Any:
        return record.get("id", record.get("_id"))

    def _key(self, record: dict[str, Any]) -> str:
        # Values read from Opsera may be of any JSON type, so the key is their JSON text.
        return json.dumps([record.get(field) for field in self.identity_fields], sort_keys=True, default=str)

    def known(self, hook: OpseraHook) -> dict[str, dict[str, Any]]:
        """The mappings Opsera holds by identity, the first of each when Opsera holds one twice."""
        with self._known_lock:
            if self._known is None:
                listed = [m for m in hook.list_mappings() if isinstance(m, dict)]
                if len(listed) >= RECORD_CAP:
                    self.log.warning(
                        "Opsera listed %d mappings, its cap: a mapping beyond it cannot be seen, so one that "
                        "exists already may be created again.",
                        len(listed),
                    )
                self._known = {}
                for record in listed:
                    self._known.setdefault(self._key(record), record)
            return self._known

    def find_existing(self, hook: OpseraHook, body: dict[str, Any]) -> dict[str, Any] | None:
        return self.known(hook).get(self.identity(body))

    def create(self, hook: OpseraHook, body: dict[str, Any]) -> Any:
        return hook.create_mapping(body)

    def remember(self, record: dict[str, Any]) -> None:
        with self._known_lock:
            if self._known is not None:
                self._known.setdefault(self._key(record), record)

    def differences(self, body: dict[str, Any], existing: dict[str, Any]) -> list[str]:
        stored = self.as_stored(body)
        lines = []
        for field, wanted in stored.items():
            if field in self.identity_fields:
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
    identity_fields = ("attribute1", "attribute2", "mappingType", "relationship")

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

    def create(self, hook: OpseraHook, body: dict[str, Any]) -> Any:
        return hook.create_org_hierarchy(
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
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        return_records: bool = False,
        opsera_conn_id: str = "opsera_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.if_exists = validation.one_of(if_exists, IF_EXISTS_CHOICES, "if_exists")
        self.allow_unknown_fields = allow_unknown_fields
        self.max_concurrency = checked_concurrency(max_concurrency)
        self.return_records = return_records
        self.opsera_conn_id = opsera_conn_id

    @cached_property
    def hook(self) -> OpseraHook:
        from airflow_provider_opsera.hooks.opsera import OpseraHook

        return OpseraHook(opsera_conn_id=self.opsera_conn_id)

    def records(self) -> Any:
        """The record or list of records to sync, from the (rendered) arguments."""
        raise NotImplementedError

    def execute(self, context: Context) -> Any:
        kind = self.record_kind(allow_unknown_fields=self.allow_unknown_fields, log=self.log)
        try:
            return sync_records(
                kind,
                self.records(),
                hook=self.hook,
                if_exists=self.if_exists,
                log=self.log,
                max_concurrency=self.max_concurrency,
                return_records=self.return_records,
            )
        except OpseraSyncError as error:
            # The task fails, and a downstream task (trigger_rule="all_done") can still read what failed.
            ti = context.get("ti")
            if ti is not None:
                ti.xcom_push(key=XCOM_RETURN_KEY, value=error.summary)
            raise


class OpseraCreateProjectOperator(_OpseraCreateRecordsOperator):
    """Create an Insights project, or several, unless Opsera has them already.

    :param project: the project in the v2 shape (``projectId`` and ``projectName`` required;
        ``projectOwner``, ``externalId``, ``organization`` ... ``team``, ``assets``), or a list of
        them. Templated: a list pulled from XCom works.
    :param if_exists: ``"skip"`` (default): a project already there with the same values is
        reported and skipped, one with other values fails. ``"fail"``: any existing project fails.
    :param allow_unknown_fields: send fields this provider does not know (with a warning)
        instead of refusing them.
    :param max_concurrency: for a list, how many records are synced at a time (default 10; 1 syncs
        them one after another in list order). Records that are the same record in Opsera are
        synced one after another whatever this is, so none is created twice.
    :param return_records: for a list, return every record as Opsera holds it, in list order,
        instead of the summary.
    :param opsera_conn_id: the Opsera connection.
    :return: the project as Opsera holds it; for a list, a summary ``{"kind", "total", "created",
        "already_there", "failed", "created_ids", "failures": [{"record", "error"}], "seconds"}``
        (also pushed to XCom when some records fail and the task fails), or with
        ``return_records=True`` the list of projects.
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
    :param max_concurrency: as for :class:`OpseraCreateProjectOperator`.
    :param return_records: as for :class:`OpseraCreateProjectOperator`.
    :param opsera_conn_id: the Opsera connection.
    :return: the person as Opsera holds them; for a list, a summary (``created_ids`` are emails), or
        with ``return_records=True`` the list of people.
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
    :param allow_unknown_fields: send fields this provider does not know instead of refusing them.
    :param max_concurrency: as for :class:`OpseraCreateProjectOperator`.
    :param return_records: as for :class:`OpseraCreateProjectOperator`.
    :param opsera_conn_id: the Opsera connection.
    :return: the link as Opsera stores it (a mapping record); for a list, a summary (``created_ids``
        are mapping ids), or with ``return_records=True`` the list of links.
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
    :param max_concurrency: as for :class:`OpseraCreateProjectOperator`.
    :param return_records: as for :class:`OpseraCreateProjectOperator`.
    :param opsera_conn_id: the Opsera connection.
    :return: the mapping as Opsera holds it; for a list, a summary (``created_ids`` are mapping ids),
        or with ``return_records=True`` the list of mappings.
    """

    template_fields: Sequence[str] = ("mapping",)
    template_fields_renderers = {"mapping": "json"}
    record_kind = MappingRecords

    def __init__(self, *, mapping: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mapping = mapping

    def records(self) -> Any:
        return self.mapping
