"""The one table of API routes the emulator serves: path, accepted scopes, access rule.

Everything the contract documents about a route's authorisation lives here, so a
correction to a path or a scope is a one-line change. Handlers are attached by name
in ``app.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

# Token scopes, as stored in a token's ``scope`` claim.
API = "api"
API_READONLY = "api-readonly"
PIPELINE = "pipeline"
PIPELINE_READONLY = "pipeline-readonly"
REGISTRY = "registry"
REGISTRY_READONLY = "registry-readonly"
TASKS = "tasks"
TASKS_READONLY = "tasks-readonly"
SECURITY_LOGS = "security-logs"

ALL_SCOPES = (
    API,
    API_READONLY,
    PIPELINE,
    PIPELINE_READONLY,
    REGISTRY,
    REGISTRY_READONLY,
    TASKS,
    TASKS_READONLY,
    SECURITY_LOGS,
)

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


_PIPELINE_WRITE = (API, PIPELINE)
_PIPELINE_READ = (API, API_READONLY, PIPELINE)
_PIPELINE_RUN_READ = (API, API_READONLY, PIPELINE, PIPELINE_READONLY)
_REGISTRY_WRITE = (API, REGISTRY)
_REGISTRY_READ = (API, API_READONLY, REGISTRY, REGISTRY_READONLY)
_SECURITY_READ = (API, API_READONLY, SECURITY_LOGS)
_TASKS_READ = (API, API_READONLY, TASKS, TASKS_READONLY)
_DATA_WRITE = (API,)
_DATA_READ = (API, API_READONLY)

API_ROUTES: tuple[Route, ...] = (
    # Customer Platform API v1: pipelines
    Route("POST", "/api/v1/pipeline/run", "pipeline_run", _PIPELINE_WRITE, ITEM_RBAC),
    Route("POST", "/api/v1/pipeline/status", "pipeline_status", _PIPELINE_RUN_READ, ITEM_RBAC),
    Route("POST", "/api/v1/pipeline/reset", "pipeline_reset", _PIPELINE_WRITE, ITEM_RBAC),
    Route("POST", "/api/v1/pipeline/stop", "pipeline_stop", _PIPELINE_WRITE, ITEM_RBAC),
    Route("POST", "/api/v1/pipeline/summary", "pipeline_summary", _PIPELINE_READ, ITEM_RBAC),
    Route("POST", "/api/v1/pipeline/logs", "pipeline_logs", _PIPELINE_RUN_READ, ITEM_RBAC),
    Route("GET", "/api/v1/pipeline/pipelines", "pipeline_list", _PIPELINE_READ, ROLE_LIST),
    # v1: tool registry
    Route("GET", "/api/v1/registry/tools", "tool_list", _REGISTRY_READ, ROLE_LIST),
    Route("POST", "/api/v1/registry/summary", "tool_summary", _REGISTRY_READ, ITEM_RBAC),
    Route("POST", "/api/v1/registry/update", "tool_update", _REGISTRY_WRITE, ITEM_RBAC),
    # v1: audit logs
    Route("GET", "/api/v1/logs/user/actions", "user_activity", _SECURITY_READ, ROLE_LIST),
    Route("GET", "/api/v1/logs/user/tokens", "token_activity", _SECURITY_READ, ROLE_LIST),
    # v1: tasks. INFERRED paths: the documents name these calls without paths; they
    # follow the naming of the pipeline and registry calls. The task list is filtered
    # by item RBAC rather than refused, as the documents list it under "Item RBAC".
    Route("GET", "/api/v1/task/tasks", "task_list", _TASKS_READ, SCOPE_ONLY),
    Route("POST", "/api/v1/task/summary", "task_summary", _TASKS_READ, ITEM_RBAC),
    Route("POST", "/api/v1/task/status", "task_status", _TASKS_READ, ITEM_RBAC),
    Route("GET", "/api/v1/task/logs", "task_logs", _TASKS_READ, ITEM_RBAC),
    # Data API v2
    Route("POST", "/api/v2/data/project", "project_create", _DATA_WRITE, SCOPE_ONLY),
    Route("GET", "/api/v2/data/projects", "project_list", _DATA_READ, SCOPE_ONLY),
    Route("GET", "/api/v2/data/project/{projectId}", "project_get", _DATA_READ, SCOPE_ONLY),
    Route("POST", "/api/v2/data/people", "person_create", _DATA_WRITE, SCOPE_ONLY),
    Route("GET", "/api/v2/data/people", "person_list", _DATA_READ, SCOPE_ONLY),
    Route("GET", "/api/v2/data/people/{email}", "person_get", _DATA_READ, SCOPE_ONLY),
    Route("POST", "/api/v2/data/org-hierarchy", "org_hierarchy_create", _DATA_WRITE, SCOPE_ONLY),
    Route("POST", "/api/v2/data/mapping", "mapping_create", _DATA_WRITE, SCOPE_ONLY),
    Route("GET", "/api/v2/data/mapping", "mapping_list", _DATA_READ, SCOPE_ONLY),
    # One older documentation page spells the list path in the plural.
    Route("GET", "/api/v2/data/mappings", "mapping_list", _DATA_READ, SCOPE_ONLY),
    Route("GET", "/api/v2/data/mapping/{mappingId}", "mapping_get", _DATA_READ, SCOPE_ONLY),
)

ROUTES_BY_KEY = {route.key: route for route in API_ROUTES}

# Lists and log reads never return more than this many records.
RECORD_CAP = 1000

# Audit logs without a date cover this many days back from now.
AUDIT_DEFAULT_DAYS = 7
