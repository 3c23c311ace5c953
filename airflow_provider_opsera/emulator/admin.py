"""Control routes under ``/_emulator/``: no authentication, never counted or faulted.

Tests and scripts running the emulator as a subprocess use these to read request
counts, inject faults, move the clock, decide approval gates and reset the state.
Errors are turned into JSON answers by the application's middleware.
"""

from __future__ import annotations

from aiohttp import web

from . import workloads
from .app import RUNTIME, json_answer, read_json_object
from .errors import ApiError, bad_request, not_found
from .faults import FaultSpecError, rule_from_dict
from .params import object_id
from .seed import DAY, USER_ROLES, SeedError, add_token, build_store


def _runtime(request: web.Request):
    return request.app[RUNTIME]


async def health(request: web.Request) -> web.Response:
    return json_answer({"status": "ok"})


async def request_counts(request: web.Request) -> web.Response:
    return json_answer({"counts": dict(_runtime(request).counts)})


async def reset(request: web.Request) -> web.Response:
    _runtime(request).reset()
    return json_answer({"status": "ok"})


async def load_seed(request: web.Request) -> web.Response:
    """Start over from another seed (a soak's many pipelines, say); tokens of the same name keep their value."""
    seed = await read_json_object(request)
    runtime = _runtime(request)
    try:
        build_store(seed, runtime.state.now())  # a bad seed is refused before anything changes
    except (SeedError, TypeError, ValueError, KeyError, AttributeError) as err:
        raise bad_request(f"invalid seed: {err}") from None
    runtime.state.seed = seed
    runtime.reset()
    return json_answer({"status": "ok", "pipelines": len(runtime.state.store["pipelines"])})


async def list_faults(request: web.Request) -> web.Response:
    return json_answer({"faults": _runtime(request).faults.describe()})


async def add_fault(request: web.Request) -> web.Response:
    spec = await read_json_object(request)
    seed = spec.pop("seed", None)
    try:
        rule = rule_from_dict(spec)
        seed = None if seed is None else int(seed)
    except (FaultSpecError, TypeError, ValueError) as err:
        raise bad_request(str(err)) from None
    faults = _runtime(request).faults
    faults.add(rule, seed=seed)
    return json_answer({"faults": faults.describe()})


async def clear_faults(request: web.Request) -> web.Response:
    _runtime(request).faults.clear()
    return json_answer({"faults": []})


async def tokens(request: web.Request) -> web.Response:
    store = _runtime(request).state.store
    return json_answer({name: token["jwt"] for name, token in store["tokens"].items()})


def mint_token(state, spec: dict) -> dict:
    """Mint a new token: ``name``, ``scopes``, an ``owner`` (email or id) or a ``role``, ``expires_in`` seconds.

    Without an owner the token belongs to the first user with ``role`` (default administrator).
    Expiry counts on the emulated clock. A name in use (even revoked) is refused: tokens are
    told apart by name, so reusing one would revive the old token.
    """
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise bad_request("name must be a non-empty string")
    if name in state.store["tokens"]:
        raise ApiError(409, f"a token named {name!r} exists already")
    expires_in = spec.get("expires_in", 30 * DAY)
    if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)):
        raise bad_request("expires_in must be a number of seconds")
    owner = spec.get("owner") or _first_user_with_role(state, spec.get("role", "administrator"))
    users_by_email = {user["email"].lower(): user for user in state.store["users"].values()}

    def user_ref(ref: object, where: str) -> dict:
        found = isinstance(ref, str) and (users_by_email.get(ref.lower()) or state.store["users"].get(ref))
        if not found:
            raise SeedError(f"{where}: unknown user {ref!r}")
        return found

    token = {"name": name, "owner": owner, "scopes": spec.get("scopes", ["api"]), "expires_in_days": expires_in / DAY}
    try:
        add_token(state.store, token, user_ref, state.now())
    except SeedError as err:
        raise bad_request(str(err)) from None
    state.save()
    record = state.store["tokens"][name]
    return {"name": name, "token": record["jwt"], "scopes": record["scopes"], "expires_at": record["expires_at"]}


def _first_user_with_role(state, role: object) -> str:
    if role not in USER_ROLES:
        raise bad_request(f"role must be one of {list(USER_ROLES)}")
    for user_id in sorted(state.store["users"]):
        if state.store["users"][user_id]["role"] == role:
            return user_id
    raise bad_request(f"no user has the role {role!r}")


def revoke_token(state, name: str) -> dict:
    """Revoke a token: from now on every request that presents it gets 401 "token revoked"."""
    token = state.store["tokens"].get(name)
    if token is None:
        raise not_found(f"no token named {name!r}")
    token["revoked"] = True
    state.save()
    return {"name": name, "revoked": True}


async def create_token(request: web.Request) -> web.Response:
    return json_answer(mint_token(_runtime(request).state, await read_json_object(request)))


async def delete_token(request: web.Request) -> web.Response:
    return json_answer(revoke_token(_runtime(request).state, request.match_info["name"]))


async def clock(request: web.Request) -> web.Response:
    return json_answer(_runtime(request).state.clock.describe())


async def advance_clock(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    seconds = body.get("advance", 0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise bad_request("advance must be a non-negative number of seconds")
    state = _runtime(request).state
    state.clock.advance(seconds)
    state.advance_all()
    state.save()
    return json_answer(state.clock.describe())


async def dump_state(request: web.Request) -> web.Response:
    return json_answer(_runtime(request).state.dump())


async def approve(request: web.Request) -> web.Response:
    """A person approves the gate from outside the API (in Opsera's UI, Slack...): ``{"by": "<who>"}``, optional."""
    pipeline_id = object_id(dict(request.match_info), "id")
    body = await read_json_object(request)
    return json_answer(_runtime(request).approve(pipeline_id, by=body.get("by")))


async def reject(request: web.Request) -> web.Response:
    """A person rejects the gate from outside the API: ``{"message": "<why>", "by": "<who>"}``; the run ends."""
    pipeline_id = object_id(dict(request.match_info), "id")
    body = await read_json_object(request)
    return json_answer(_runtime(request).reject(pipeline_id, body.get("message"), by=body.get("by")))


async def run_journal(request: web.Request) -> web.Response:
    return json_answer(_runtime(request).run_journal())


async def run_task(request: web.Request) -> web.Response:
    task_id = object_id(dict(request.match_info), "id")
    return json_answer(workloads.start_task_run(_runtime(request).state, task_id))


async def deviations(request: web.Request) -> web.Response:
    return json_answer(_runtime(request).deviations.describe())


async def set_deviations(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    runtime.deviations.configure(await read_json_object(request))
    return json_answer(runtime.deviations.describe())


async def clear_deviations(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    runtime.deviations.clear()
    return json_answer(runtime.deviations.describe())


def add_admin_routes(app: web.Application) -> None:
    routes = [
        ("GET", "/_emulator/health", health),
        ("GET", "/_emulator/requests", request_counts),
        ("POST", "/_emulator/reset", reset),
        ("POST", "/_emulator/seed", load_seed),
        ("GET", "/_emulator/faults", list_faults),
        ("POST", "/_emulator/faults", add_fault),
        ("DELETE", "/_emulator/faults", clear_faults),
        ("GET", "/_emulator/tokens", tokens),
        ("POST", "/_emulator/tokens", create_token),
        ("DELETE", "/_emulator/tokens/{name}", delete_token),
        ("GET", "/_emulator/clock", clock),
        ("POST", "/_emulator/clock", advance_clock),
        ("GET", "/_emulator/state", dump_state),
        ("GET", "/_emulator/runs", run_journal),
        ("POST", "/_emulator/pipelines/{id}/approve", approve),
        ("POST", "/_emulator/pipelines/{id}/reject", reject),
        ("GET", "/_emulator/deviations", deviations),
        ("POST", "/_emulator/deviations", set_deviations),
        ("DELETE", "/_emulator/deviations", clear_deviations),
        ("POST", "/_emulator/tasks/{id}/run", run_task),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)

