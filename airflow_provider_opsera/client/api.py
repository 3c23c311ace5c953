"""Every Opsera API call the provider makes: path, method, accepted token scopes, largest answer read.

This table is the only place that knows a URL path. Paths the public documents do
not give are marked ``inferred=True``; correct them here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

# Scope strings as stored on an Opsera personal access token.
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

# Opsera answers list and log reads with at most this many records.
RECORD_CAP = 1000

# The most bytes of an answer a call reads (decompressed): an answer past it is an error, not memory spent.
# A status or a single record is a few KiB; a page of 1000 records or console output can be large.
STATUS_BODY_CAP = 2**20
RECORD_BODY_CAP = 8 * 2**20
LIST_BODY_CAP = 32 * 2**20
LOG_BODY_CAP = 64 * 2**20


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    scopes: tuple[str, ...]
    #: the path is not in Opsera's documents: it follows the naming of its neighbours, or a newer public page
    inferred: bool = False
    #: sending the call twice may do its work twice (start a second run, create a
    #: second record): never resent once it may have reached Opsera
    idempotent: bool = True
    #: Power User role (or higher) needed, instead of object-level RBAC
    needs_power_user: bool = False
    #: the most bytes of the answer read
    body_cap: int = STATUS_BODY_CAP
    #: for a command of the actions endpoint, the ``action`` its body names (see :func:`action_body`)
    action: str | None = None


def _e(name: str, method: str, path: str, *scopes: str, **flags: bool | int | str) -> Endpoint:
    return Endpoint(name=name, method=method, path=path, scopes=scopes, **flags)  # type: ignore[arg-type]


_PIPELINE_WRITE = (API, PIPELINE)
_PIPELINE_READ = (API, API_READONLY, PIPELINE)
# "Pipeline Access (Read Only)" covers a run's status and logs, not the pipeline object.
_PIPELINE_RUN_READ = (API, API_READONLY, PIPELINE, PIPELINE_READONLY)
_REGISTRY_WRITE = (API, REGISTRY)
_REGISTRY_READ = (API, API_READONLY, REGISTRY, REGISTRY_READONLY)
_TASKS_READ = (API, API_READONLY, TASKS, TASKS_READONLY)
_AUDIT_READ = (API, SECURITY_LOGS)
_DATA_WRITE = (API,)
_DATA_READ = (API, API_READONLY)

ACTIONS_PATH = "/api/v2/actions"
_DECISION = {"inferred": True, "idempotent": False}
#: the field of an actions body that carries the reason of a rejection
ACTION_MESSAGE_FIELD = "message"

ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        # Pipelines (v1)
        _e("pipeline_run", "POST", "/api/v1/pipeline/run", *_PIPELINE_WRITE, idempotent=False),
        _e("pipeline_status", "POST", "/api/v1/pipeline/status", *_PIPELINE_RUN_READ),
        _e("pipeline_reset", "POST", "/api/v1/pipeline/reset", *_PIPELINE_WRITE),
        # a stop addresses whatever run is going: resent after a lost answer, it may stop the next one
        _e("pipeline_stop", "POST", "/api/v1/pipeline/stop", *_PIPELINE_WRITE, idempotent=False),
        _e("pipeline_summary", "POST", "/api/v1/pipeline/summary", *_PIPELINE_READ, body_cap=RECORD_BODY_CAP),
        _e("pipeline_logs", "POST", "/api/v1/pipeline/logs", *_PIPELINE_RUN_READ, body_cap=LOG_BODY_CAP),
        _e(
            "pipeline_list",
            "GET",
            "/api/v1/pipeline/pipelines",
            *_PIPELINE_READ,
            needs_power_user=True,
            body_cap=LIST_BODY_CAP,
        ),
        # Tool registry (v1)
        _e(
            "tool_list", "GET", "/api/v1/registry/tools", *_REGISTRY_READ, needs_power_user=True, body_cap=LIST_BODY_CAP
        ),
        _e("tool_summary", "POST", "/api/v1/registry/summary", *_REGISTRY_READ, body_cap=RECORD_BODY_CAP),
        _e("tool_update", "POST", "/api/v1/registry/update", *_REGISTRY_WRITE, body_cap=RECORD_BODY_CAP),
        # Tasks (v1): methods and descriptions are documented, the paths are not.
        _e("task_list", "GET", "/api/v1/task/tasks", *_TASKS_READ, inferred=True, body_cap=LIST_BODY_CAP),
        _e("task_summary", "POST", "/api/v1/task/summary", *_TASKS_READ, inferred=True, body_cap=RECORD_BODY_CAP),
        _e("task_status", "POST", "/api/v1/task/status", *_TASKS_READ, inferred=True),
        _e("task_logs", "GET", "/api/v1/task/logs", *_TASKS_READ, inferred=True, body_cap=LOG_BODY_CAP),
        # Audit logs (v1)
        _e(
            "user_activity",
            "GET",
            "/api/v1/logs/user/actions",
            *_AUDIT_READ,
            needs_power_user=True,
            body_cap=LOG_BODY_CAP,
        ),
        _e(
            "token_activity",
            "GET",
            "/api/v1/logs/user/tokens",
            *_AUDIT_READ,
            needs_power_user=True,
            body_cap=LOG_BODY_CAP,
        ),
        # Insights data (v2)
        _e("project_create", "POST", "/api/v2/data/project", *_DATA_WRITE),
        _e("project_list", "GET", "/api/v2/data/projects", *_DATA_READ, body_cap=LIST_BODY_CAP),
        _e("project_get", "GET", "/api/v2/data/project/{projectId}", *_DATA_READ, body_cap=RECORD_BODY_CAP),
        _e("person_create", "POST", "/api/v2/data/people", *_DATA_WRITE),
        _e("person_list", "GET", "/api/v2/data/people", *_DATA_READ, body_cap=LIST_BODY_CAP),
        _e("person_get", "GET", "/api/v2/data/people/{email}", *_DATA_READ),
        # Opsera rejects neither a duplicate hierarchy link nor a duplicate mapping.
        _e("org_hierarchy_create", "POST", "/api/v2/data/org-hierarchy", *_DATA_WRITE, idempotent=False),
        _e("mapping_create", "POST", "/api/v2/data/mapping", *_DATA_WRITE, idempotent=False),
        # One older page says /mappings for the list; the newer one is used.
        _e("mapping_list", "GET", "/api/v2/data/mapping", *_DATA_READ, body_cap=LIST_BODY_CAP),
        _e("mapping_get", "GET", "/api/v2/data/mapping/{mappingId}", *_DATA_READ),
        # Actions (v2): one path, the command named in the body (action_body). Path, body, action names and
        # scopes come from Opsera's newer API reference, not from its documents: all inferred.
        # A decision sent twice could decide the pipeline's next gate too: never resent once it may have arrived.
        _e("pipeline_approve", "POST", ACTIONS_PATH, *_PIPELINE_WRITE, **_DECISION, action="approve"),
        _e("pipeline_reject", "POST", ACTIONS_PATH, *_PIPELINE_WRITE, **_DECISION, action="reject"),
        _e("pipeline_action_status", "POST", ACTIONS_PATH, *_PIPELINE_RUN_READ, inferred=True, action="status"),
    )
}


def action_body(name: str, pipeline_id: str, message: str | None = None) -> dict[str, object]:
    """The body of the actions endpoint's command ``name`` for one pipeline; ``message`` goes with a rejection."""
    body: dict[str, object] = {
        "action": ENDPOINTS[name].action,
        "type": "pipeline",
        "version": 1,
        "target": [pipeline_id],
    }
    if message is not None:
        body[ACTION_MESSAGE_FIELD] = message
    return body


# Portal page of a pipeline; the portal's base URL is per connection.
PORTAL_PIPELINE_PATH = "/workflow/details/{pipeline_id}/summary"
