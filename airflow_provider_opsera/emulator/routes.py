"""The routes the emulator serves: the provider's endpoint table plus an access rule each.

Paths and accepted scopes come from :mod:`airflow_provider_opsera.client.api`, the one place
that records what the contract says (and which paths are inferred), so a correction
there moves the client and the emulator together. Handlers are attached by name in
``app.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_opsera.client.api import ALL_SCOPES, ENDPOINTS, RECORD_CAP  # noqa: F401 (re-exported to the emulator)

# Access rules applied after the scope check.
ROLE_LIST = "list"  # the token's owner needs role administrator or power_user
ITEM_RBAC = "item"  # admin/power user, or the owner/a listed user of the object
SCOPE_ONLY = "scope"  # the scope is the whole rule (v2 data API)

PRIVILEGED_ROLES = frozenset({"administrator", "power_user"})


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: str  # name of the handler function in app.py
    scopes: tuple[str, ...]
    access: str

    @property
    def key(self) -> str:
        """How requests to this route are counted and how faults address it."""
        return f"{self.method} {self.path}"


# The task list is filtered by item access rather than refused: the documents list it
# under "Item RBAC". The v2 data API knows no object access: the scope is the rule.
_SCOPE_ONLY_ENDPOINTS = frozenset({"task_list"})


def _access(name: str) -> str:
    endpoint = ENDPOINTS[name]
    if endpoint.needs_power_user:
        return ROLE_LIST
    if name in _SCOPE_ONLY_ENDPOINTS or endpoint.path.startswith("/api/v2/"):
        return SCOPE_ONLY
    return ITEM_RBAC


# The actions endpoint serves several commands on one path, each an entry of the endpoint table with an
# ``action``: one route, whose handler checks the scopes of the command its body names (app.py).
ACTIONS = "pipeline_actions"
COMMAND_ROUTES = {
    e.action: Route(e.method, e.path, e.name, e.scopes, ITEM_RBAC) for e in ENDPOINTS.values() if e.action
}


def _actions_routes() -> tuple[Route, ...]:
    """One route per path of the commands; a token none of its commands accepts is refused before the body is read."""
    scopes_of_path: dict[tuple[str, str], dict[str, None]] = {}
    for command in COMMAND_ROUTES.values():
        scopes_of_path.setdefault((command.method, command.path), {}).update(dict.fromkeys(command.scopes))
    return tuple(
        Route(method, path, ACTIONS, tuple(scopes), ITEM_RBAC) for (method, path), scopes in scopes_of_path.items()
    )


API_ROUTES: tuple[Route, ...] = (
    tuple(Route(e.method, e.path, e.name, e.scopes, _access(e.name)) for e in ENDPOINTS.values() if not e.action)
    + _actions_routes()
    + (
        # One older documentation page spells the mapping list in the plural.
        Route("GET", "/api/v2/data/mappings", "mapping_list", ENDPOINTS["mapping_list"].scopes, SCOPE_ONLY),
    )
)

ROUTES_BY_KEY = {route.key: route for route in API_ROUTES}

# Audit logs without a date cover this many days back from now.
AUDIT_DEFAULT_DAYS = 7
