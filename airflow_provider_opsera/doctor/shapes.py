"""The shape of an answer: which fields it has and of which JSON types, never what they hold.

Expected fields are dotted paths (``workflow.last_step.status``) with the JSON types the
provider reads there. A missing field is matched against the fields the answer does have
for a did-you-mean (``workflow.runCount``), which is what a maintainer needs to correct
the contract in one line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_opsera.writing.diffing import render

STRING, INTEGER, NUMBER, BOOLEAN, OBJECT, ARRAY, NULL = "string", "integer", "number", "boolean", "object", "array", "null"


def json_type(value: Any) -> str:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, float):
        return NUMBER
    if isinstance(value, str):
        return STRING
    if isinstance(value, Mapping):
        return OBJECT
    if isinstance(value, list):
        return ARRAY
    return type(value).__name__


_MISSING = object()


def value_at(record: Any, path: str) -> Any:
    """The value at a dotted path, or ``_MISSING``."""
    node = record
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return _MISSING
        node = node[key]
    return node


def field_paths(record: Any, prefix: str = "", depth: int = 3) -> dict[str, str]:
    """Every field path of an object down to ``depth`` levels, with its JSON type."""
    paths: dict[str, str] = {}
    if not isinstance(record, Mapping):
        return paths
    for key, value in record.items():
        path = f"{prefix}{key}"
        paths[path] = json_type(value)
        if isinstance(value, Mapping) and depth > 1:
            paths.update(field_paths(value, f"{path}.", depth - 1))
    return paths


@dataclass(frozen=True)
class Field:
    path: str
    types: tuple[str, ...]  # the JSON types the provider can read there


def describe_fields(paths: Mapping[str, str], record: Any = None, *, show_values: bool = False) -> str:
    """``name (type)`` for each field; with ``show_values`` also its value, masked where it looks secret."""
    parts = []
    for path, kind in paths.items():
        text = f"{path} ({kind})"
        if show_values and record is not None and kind not in (OBJECT, ARRAY):
            value = value_at(record, path)
            if value is not _MISSING:
                text += f" = {render(value, path.rsplit('.', 1)[-1])}"
        parts.append(text)
    return ", ".join(parts)


def shape_problems(records: Sequence[Any], expected: Iterable[Field]) -> list[str]:
    """What differs from the expected fields across ``records``: fields none of them has, or of another type.

    A field counts as present when at least one record has it (optional fields are often absent).
    """
    import difflib

    seen: dict[str, set[str]] = {}
    for record in records:
        for path, kind in field_paths(record, depth=4).items():
            seen.setdefault(path, set()).add(kind)
    problems = []
    for field in expected:
        kinds = seen.get(field.path)
        if kinds is None:
            parent, _, leaf = field.path.rpartition(".")
            siblings = {p.rpartition(".")[2]: p for p in seen if p.rpartition(".")[0] == parent}
            near = difflib.get_close_matches(leaf, list(siblings), n=1, cutoff=0.6)
            hint = f" (there is {siblings[near[0]]}: renamed?)" if near else ""
            problems.append(f"{field.path} is missing{hint}")
        elif not kinds & set(field.types):
            problems.append(f"{field.path} is {' or '.join(sorted(kinds))}, expected {' or '.join(field.types)}")
    return problems
