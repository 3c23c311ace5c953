"""Comparing JSON records and describing the differences in words a person can review.

Values under secret-looking keys (at any depth) are shown as ``***``: a diff goes to the
task log, and a tool's configuration holds passwords, keys and vault references.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

MASK = "***"
MAX_VALUE_CHARS = 200

# Substrings of a key name that mark its value as secret. Broad on purpose: masking a value
# that was harmless costs a little readability, showing a secret cannot be undone.
SECRET_KEY_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "key",
    "credential",
    "private",
    "auth",
    "cookie",
    "signature",
    "cert",
)
_JWT = re.compile(r"eyJ[\w-]*\.[\w-]*\.?[\w-]*")
_MISSING = object()


def is_secret_key(name: Any) -> bool:
    lowered = str(name).lower().replace("_", "").replace("-", "")
    return any(part in lowered for part in SECRET_KEY_PARTS)


def masked(value: Any, key: Any = None) -> Any:
    """A copy of ``value`` with everything under a secret-looking key replaced by ``***``."""
    if key is not None and is_secret_key(key):
        return MASK
    if isinstance(value, Mapping):
        return {k: masked(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    if isinstance(value, str):
        return _JWT.sub(MASK, value)
    return value


def secret_strings(value: Any, under_secret_key: bool = False) -> Iterator[str]:
    """Every string held under a secret-looking key, for registering with the secrets masker."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from secret_strings(item, under_secret_key or is_secret_key(key))
    elif isinstance(value, list):
        for item in value:
            yield from secret_strings(item, under_secret_key)
    elif under_secret_key and isinstance(value, str) and value:
        yield value


def json_equal(left: Any, right: Any) -> bool:
    """Equal as JSON: ``True`` is not ``1``, ``1`` is ``1.0``, key order does not matter."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        return len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right))
    return type(left) is type(right) and left == right


def contains(existing: Any, wanted: Any) -> bool:
    """``existing`` holds everything ``wanted`` says (objects may carry more keys)."""
    if isinstance(existing, Mapping) and isinstance(wanted, Mapping):
        return all(key in existing and contains(existing[key], value) for key, value in wanted.items())
    return json_equal(existing, wanted)


def render(value: Any, key: Any = None) -> str:
    """One value, masked and shortened, as it appears in a diff line."""
    if value is _MISSING:
        return "(not set)"
    text = json.dumps(masked(value, key), sort_keys=True, default=str)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


@dataclass(frozen=True)
class Change:
    """One difference at ``path`` (``configuration.jenkinsUrl``); ``before``/``after`` may be absent."""

    path: str
    before: Any
    after: Any

    @property
    def secret(self) -> bool:
        return any(is_secret_key(part) for part in self.path.split("."))

    def describe(self) -> str:
        leaf = self.path.rsplit(".", 1)[-1]
        key = leaf if self.secret else None
        if self.before is _MISSING:
            return f"+ {self.path}: {render(self.after, key)}"
        if self.after is _MISSING:
            return f"- {self.path}: {render(self.before, key)} (removed)"
        suffix = " (changed)" if self.secret else ""
        return f"~ {self.path}: {render(self.before, key)} -> {render(self.after, key)}{suffix}"


def changes_between(before: Any, after: Any, path: str) -> list[Change]:
    """Leaf-level differences, descending into objects so a reviewer sees which nested value moves."""
    if isinstance(before, Mapping) and isinstance(after, Mapping) and not is_secret_key(path.rsplit(".", 1)[-1]):
        found: list[Change] = []
        for key in [*before.keys(), *(k for k in after.keys() if k not in before)]:
            found += changes_between(before.get(key, _MISSING), after.get(key, _MISSING), f"{path}.{key}")
        return found
    if before is _MISSING and after is _MISSING:
        return []
    if before is not _MISSING and after is not _MISSING and json_equal(before, after):
        return []
    return [Change(path, before, after)]


def removed_keys(before: Any, after: Any, path: str) -> list[str]:
    """Paths of the keys ``before`` holds, at any depth, that ``after`` no longer has.

    Secret-looking objects are looked into too: only key names are returned, never values.
    """
    if not isinstance(before, Mapping):
        return []
    if not isinstance(after, Mapping):
        return [f"{path}.{key}" for key in before]
    gone: list[str] = []
    for key, value in before.items():
        gone += [f"{path}.{key}"] if key not in after else removed_keys(value, after[key], f"{path}.{key}")
    return gone


@dataclass(frozen=True)
class RootPropertyDiff:
    """How an update of root properties would change a record: the basis of the tool update."""

    changed: dict[str, Any]  # key -> the new value, only keys whose value differs
    previous: dict[str, Any]  # key -> the value now; None for a key the record does not have yet
    unchanged: list[str]
    lines: list[str]  # readable, masked
    removed_keys: list[str]  # paths of nested keys the update would drop, e.g. configuration.secretKey

    @property
    def empty(self) -> bool:
        return not self.changed


def diff_root_properties(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> RootPropertyDiff:
    changed: dict[str, Any] = {}
    previous: dict[str, Any] = {}
    unchanged: list[str] = []
    lines: list[str] = []
    removed: list[str] = []
    for key, value in wanted.items():
        before = current.get(key, _MISSING)
        if before is not _MISSING and json_equal(before, value):
            unchanged.append(key)
            continue
        changed[key] = value
        previous[key] = None if before is _MISSING else before
        found = changes_between(before, value, key)
        lines += [change.describe() for change in found] or [Change(key, before, value).describe()]
        removed += removed_keys(before, value, key)
    return RootPropertyDiff(changed, previous, unchanged, lines, removed)


def field_differences(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """Readable lines for each field of ``wanted`` that ``existing`` does not hold as asked."""
    lines = []
    for key, value in wanted.items():
        before = existing.get(key, _MISSING)
        if before is _MISSING or not contains(before, value):
            secret = key if is_secret_key(key) else None
            lines.append(f"{key}: {render(before, secret)} in Opsera, {render(value, secret)} requested")
    return lines
