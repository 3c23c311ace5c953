"""The aiohttp application: API routes, request counting, faults, and error bodies.

Order of work for an ``/api/`` request: count it, apply any injected fault, then
authenticate, log the token use, check scope and role, parse the body, run the
operation. Every failure becomes a JSON ``{"status":"failed","message":...}``
answer; a traceback only ever goes to the server's stderr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections import Counter

from aiohttp import web

from . import audit, gates, insights, registry, workloads
from .access import check_role, check_scope
from .deviations import ContractDeviations
from .errors import ApiError, bad_request
from .faults import FaultInjector, FaultRule
from .journal import RunJournal
from .routes import ACTIONS, API_ROUTES, COMMAND_ROUTES, Route
from .state import EmulatorState

log = logging.getLogger("opsera_emulator")

MAX_BODY_BYTES = 8 * 1024 * 1024


class Runtime:
    """What the handlers share: the store, the fault rules, the request counts."""

    def __init__(self, state: EmulatorState, faults: FaultInjector | None = None):
        self.state = state
        self.faults = faults or FaultInjector()
        self.counts: Counter[str] = Counter()
        self.journal = RunJournal()
        self.deviations = ContractDeviations()

    def reset(self) -> None:
        self.state.reset()
        self.deviations.clear()
        self.faults.clear()
        self.counts.clear()
        self.journal.clear()

    def approve(self, pipeline_id: str, by: str | None = None) -> dict:
        """A person lets a run paused at an approval gate go on, from outside the API (the admin route, the harness)."""
        return self.decide(pipeline_id, gates.APPROVE, by)

    def reject(self, pipeline_id: str, message: str, by: str | None = None) -> dict:
        """A person rejects a run paused at an approval gate, from outside the API: the run ends ``rejected``."""
        if not isinstance(message, str) or not message.strip():
            raise bad_request("a rejection needs a non-empty message")
        return self.decide(pipeline_id, gates.REJECT, by, message)

    def decide(self, pipeline_id: str, decision: str, by: str | None, message: str = "") -> dict:
        if by is not None and (not isinstance(by, str) or not by.strip()):
            raise bad_request("by must be a non-empty string naming who decided")
        answer = gates.decide_gate(self.state, pipeline_id, decision, message=message)
        self.journal.decided(pipeline_id, answer, decision, by or APPROVER, via=OUTSIDE, message=message)
        return answer

    def run_journal(self) -> dict:
        return self.journal.describe(self.state, self.state.clock)


# Who the journal says decided a gate from outside the API when the caller does not say (a person at the gate).
APPROVER = "emulator-admin"
# How the journal says a gate was decided: through the API's actions endpoint, or from outside it.
OUTSIDE = "outside"

RUNTIME = web.AppKey("runtime", Runtime)

# How each operation takes its input: the JSON body, the query string, one path
# parameter, or nothing beyond the caller.
BODY, QUERY, PATH, NOTHING = "body", "query", "path", "nothing"

OPERATIONS = {
    "pipeline_run": (workloads.run_pipeline, BODY),
    "pipeline_status": (workloads.pipeline_status, BODY),
    "pipeline_reset": (workloads.reset_pipeline, BODY),
    "pipeline_stop": (workloads.stop_pipeline, BODY),
    "pipeline_summary": (workloads.pipeline_summary, BODY),
    "pipeline_logs": (workloads.pipeline_logs, BODY),
    "pipeline_list": (workloads.list_pipelines, NOTHING),
    "tool_list": (registry.list_tools, NOTHING),
    "tool_summary": (registry.tool_summary, BODY),
    "tool_update": (registry.update_tool, BODY),
    "user_activity": (audit.user_actions, QUERY),
    "token_activity": (audit.token_uses, QUERY),
    "task_list": (workloads.list_tasks, NOTHING),
    "task_summary": (workloads.task_summary, BODY),
    "task_status": (workloads.task_status, BODY),
    "task_logs": (workloads.task_logs, QUERY),
    "project_create": (insights.create_project, BODY),
    "project_list": (insights.list_projects, NOTHING),
    "project_get": (insights.get_project, PATH),
    "person_create": (insights.create_person, BODY),
    "person_list": (insights.list_people, NOTHING),
    "person_get": (insights.get_person, PATH),
    "org_hierarchy_create": (insights.create_org_hierarchy, BODY),
    "mapping_create": (insights.create_mapping, BODY),
    "mapping_list": (insights.list_mappings, NOTHING),
    "mapping_get": (insights.get_mapping, PATH),
    ACTIONS: (gates.pipeline_actions, BODY),
}


def json_answer(payload, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(payload, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_answer(err: ApiError) -> web.Response:
    return json_answer(err.body(), status=err.http_status)


async def read_json_object(request: web.Request) -> dict:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    return body


def api_handler(route: Route):
    operation, takes = OPERATIONS[route.handler]

    async def handle(request: web.Request) -> web.Response:
        runtime = request.app[RUNTIME]
        state = runtime.state
        token, user = state.authenticate(request.headers.get("Authorization"))
        # The activity log shows the path below /api, e.g. "/v1/pipeline/run".
        state.record_token_use(token, request.path[len("/api"):])
        check_scope(token, route)
        check_role(user, route)
        if takes == BODY:
            body = await read_json_object(request)
            if route.handler == ACTIONS:  # one path, several commands: the one named decides the scopes
                check_scope(token, COMMAND_ROUTES[gates.action_request(body)[0]])
            result = runtime.journal.journaled(
                route.handler, state, token["name"], body, lambda: operation(state, user, body)
            )
        elif takes == QUERY:
            result = operation(state, user, dict(request.query))
        elif takes == PATH:
            (value,) = request.match_info.values()
            result = operation(state, user, value)
        else:
            result = operation(state, user)
        return json_answer(runtime.deviations.apply(route.handler, result))

    handle.__name__ = route.handler
    return handle


# ----- faults


PROXY_ERROR_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


class DroppedResponse(web.StreamResponse):
    """Closes the connection instead of answering: the client cannot tell whether
    the request took effect (it did)."""

    async def prepare(self, request):  # type: ignore[override]
        if request.transport is not None:
            request.transport.close()
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


def fault_answer(rule: FaultRule) -> web.StreamResponse:
    if rule.kind == "status":
        return json_answer(
            {"status": "failed", "message": f"emulated fault: HTTP {rule.status}"}, status=rule.status
        )
    if rule.kind == "retry_after":
        # Retry-After carries whole seconds.
        seconds = max(0, math.ceil(rule.retry_after))
        return json_answer(
            {"status": "failed", "message": "Too Many Requests"}, status=429, headers={"Retry-After": str(seconds)}
        )
    if rule.kind == "html":
        return web.Response(text=PROXY_ERROR_PAGE, status=502, content_type="text/html")
    # "malformed": a success status with a body no JSON parser accepts.
    return web.Response(body=b'{"status": "success", "message": "Pipel', status=200, content_type="application/json")


# ----- middleware


def route_key(request: web.Request) -> str:
    resource = request.match_info.route.resource
    template = resource.canonical if resource is not None else request.path
    return f"{request.method} {template}"


async def answer_safely(handler, request: web.Request) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as err:
        return error_answer(err)
    except web.HTTPException as exc:
        # Router answers (404, 405) and aiohttp's own 413 etc., in the API's error shape.
        message = {404: "Not found", 405: "Method not allowed"}.get(exc.status, exc.reason)
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return json_answer({"status": "failed", "message": message}, status=exc.status, headers=headers)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return json_answer({"status": "failed", "message": "internal error in the Opsera emulator"}, status=500)


@web.middleware
async def api_middleware(request: web.Request, handler) -> web.StreamResponse:
    if not request.path.startswith("/api/"):
        return await answer_safely(handler, request)
    runtime = request.app[RUNTIME]
    key = route_key(request)
    runtime.counts[key] += 1
    dropping, held = False, 0.0
    for rule in runtime.faults.firing(key):
        runtime.journal.fault(rule.kind, key)
        if rule.kind == "latency":
            await asyncio.sleep(rule.seconds)
        elif rule.kind == "hold":
            held += rule.seconds
        elif rule.kind == "drop":
            dropping = True
        else:
            return fault_answer(rule)
    response = await answer_safely(handler, request)
    if held:  # the request has had its effect (a run started); its answer is late
        await asyncio.sleep(held)
    return DroppedResponse() if dropping else response


async def portal_page(request: web.Request) -> web.Response:
    """Stands in for the Opsera portal, so links built from ``portal_url`` open."""
    path = request.match_info.get("tail", "")
    return web.Response(
        text=f"<html><body><h1>Opsera emulator portal</h1><p>/{path}</p></body></html>",
        content_type="text/html",
    )


async def index(request: web.Request) -> web.Response:
    return json_answer({"service": "opsera-emulator", "health": "/_emulator/health"})


def build_app(runtime: Runtime) -> web.Application:
    from .admin import add_admin_routes

    app = web.Application(middlewares=[api_middleware], client_max_size=MAX_BODY_BYTES)
    app[RUNTIME] = runtime
    for route in API_ROUTES:
        app.router.add_route(route.method, route.path, api_handler(route))
    add_admin_routes(app)
    app.router.add_get("/portal", portal_page)
    app.router.add_get("/portal/{tail:.*}", portal_page)
    app.router.add_get("/", index)
    return app
