"""Answers that differ from the contract on purpose: a tenant whose API is not quite what was inferred.

Set through ``POST /_emulator/deviations`` (or ``OpseraEmulator.deviate``), cleared by a reset.
Two kinds, applied to answers only (the runs themselves move on as usual):

* ``rename``: per kind of object, a field path and the name it is served under instead,
  e.g. ``{"pipeline": {"workflow.run_count": "runCount"}}`` serves ``workflow.runCount``.
* ``statuses``: a status string and what is reported instead, e.g. ``{"success": "completed"}``,
  wherever a run's or a task's status is answered.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import bad_request

# The kind of object each operation answers (a list answers several of them).
KIND_OF_OPERATION = {
    "pipeline_summary": "pipeline",
    "pipeline_list": "pipeline",
    "pipeline_status": "run_status",
    "pipeline_logs": "log_record",
    "task_list": "task",
    "task_summary": "task",
    "task_logs": "log_record",
}
KINDS = frozenset(KIND_OF_OPERATION.values())

# Where each kind of object carries a status string.
STATUS_PATHS = {
    "pipeline": ("workflow.last_step.status", "workflow.last_step.running.status"),
    "run_status": ("status",),
    "log_record": ("status",),
    "task": ("status",),
}


class ContractDeviations:
    def __init__(self) -> None:
        self.renames: dict[str, dict[str, str]] = {}
        self.statuses: dict[str, str] = {}

    def clear(self) -> None:
        self.renames, self.statuses = {}, {}

    def describe(self) -> dict[str, Any]:
        return {"rename": copy.deepcopy(self.renames), "statuses": dict(self.statuses)}

    def configure(self, spec: dict[str, Any]) -> None:
        """Replace the deviations with ``{"rename": {kind: {path: new_name}}, "statuses": {old: new}}``."""
        unknown = set(spec) - {"rename", "statuses"}
        if unknown:
            raise bad_request(f"unknown deviation keys: {', '.join(sorted(unknown))} (use rename, statuses)")
        renames, statuses = spec.get("rename") or {}, spec.get("statuses") or {}
        if not isinstance(renames, dict) or not isinstance(statuses, dict):
            raise bad_request("rename and statuses must be JSON objects")
        for kind, fields in renames.items():
            if kind not in KINDS:
                raise bad_request(f"rename: unknown kind {kind!r} (one of {', '.join(sorted(KINDS))})")
            if not isinstance(fields, dict) or not all(isinstance(v, str) and v for v in fields.values()):
                raise bad_request(f"rename.{kind} must map field paths to new field names")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in statuses.items()):
            raise bad_request("statuses must map status strings to status strings")
        self.renames = {kind: dict(fields) for kind, fields in renames.items()}
        self.statuses = dict(statuses)

    def apply(self, operation: str, answer: Any) -> Any:
        """The answer of ``operation`` as this deviating tenant would give it."""
        if operation == "task_status":  # a bare string
            return self.statuses.get(answer, answer) if isinstance(answer, str) else answer
        kind = KIND_OF_OPERATION.get(operation)
        if kind is None or not (self.renames or self.statuses):
            return answer
        answer = copy.deepcopy(answer)
        for item in answer if isinstance(answer, list) else [answer]:
            if isinstance(item, dict):
                self._deviate(kind, item)
        return answer

    def _deviate(self, kind: str, item: dict[str, Any]) -> None:
        for path in STATUS_PATHS[kind]:
            parent, leaf = _parent(item, path)
            if parent is not None and isinstance(parent.get(leaf), str):
                parent[leaf] = self.statuses.get(parent[leaf], parent[leaf])
        for path, new_name in self.renames.get(kind, {}).items():
            parent, leaf = _parent(item, path)
            if parent is not None and leaf in parent:
                parent[new_name] = parent.pop(leaf)


def _parent(item: dict[str, Any], path: str) -> tuple[dict[str, Any] | None, str]:
    *parents, leaf = path.split(".")
    node: Any = item
    for key in parents:
        node = node.get(key) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), leaf
