"""Tool registry calls: list, summary, and the partial update of root properties."""

from __future__ import annotations

import copy

from .access import check_item
from .clock import iso
from .errors import bad_request, not_found
from .params import object_id
from .routes import RECORD_CAP
from .state import EmulatorState

# Opsera advises against sending these; it ignores rather than refuses them.
PROTECTED_FIELDS = frozenset({"_id", "createdAt", "updatedAt"})


def _tool(state: EmulatorState, user: dict, body: dict) -> dict:
    tool_id = object_id(body, "toolId")
    tool = state.store["tools"].get(tool_id)
    if tool is None:
        raise not_found(f"Tool {tool_id} not found")
    check_item(user, tool)
    return tool


def list_tools(state: EmulatorState, user: dict) -> list[dict]:
    return [copy.deepcopy(tool) for tool in list(state.store["tools"].values())[:RECORD_CAP]]


def tool_summary(state: EmulatorState, user: dict, body: dict) -> dict:
    return copy.deepcopy(_tool(state, user, body))


def update_tool(state: EmulatorState, user: dict, body: dict) -> dict:
    tool = _tool(state, user, body)
    changes = body.get("tool")
    # The one shape check: a partial update needs properties to merge.
    if not isinstance(changes, dict):
        raise bad_request("tool must be an object of the root properties to change")
    for field, value in changes.items():
        if field not in PROTECTED_FIELDS:
            tool[field] = value
    tool["updatedAt"] = iso(state.now())
    state.record_user_action(user, "tool", "update", tool["_id"])
    state.save()
    return copy.deepcopy(tool)
