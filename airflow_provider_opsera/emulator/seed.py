"""Read a seed document and turn it into the emulator's initial store.

The seed is written for people (emails instead of user ids, ``days_ago`` instead of
timestamps); the store holds what the API serves. The format is documented in
README.md next to this file; ``default_seed.json`` is the example.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from importlib import resources
from pathlib import Path

from . import tokens
from .clock import iso
from .routes import ALL_SCOPES

DEFAULT_SEED_RESOURCE = "default_seed.json"
DAY = 86400.0

OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
STEP_OUTCOMES = ("success", "fail", "approval")
USER_ROLES = ("administrator", "power_user", "user", "guest")


class SeedError(ValueError):
    pass


def read_seed(source: str | Path | dict | None) -> dict:
    """The seed document: the packaged default, a JSON file, or a dict given directly."""
    if source is None:
        text = resources.files(__package__).joinpath(DEFAULT_SEED_RESOURCE).read_text(encoding="utf-8")
        return json.loads(text)
    if isinstance(source, dict):
        return copy.deepcopy(source)
    try:
        return json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SeedError(f"cannot read seed {source}: {err}") from err


def derived_id(*parts: object) -> str:
    """A stable 24-hex id for seed entries that do not name one."""
    return hashlib.sha1(":".join(str(part) for part in parts).encode()).hexdigest()[:24]


def build_store(seed: dict, now: float) -> dict:
    """The whole initial state as JSON-ready data, with tokens minted at ``now``."""
    if not isinstance(seed, dict):
        raise SeedError("the seed is a JSON object")
    account = seed.get("account", "org-emulator-acc0")
    store: dict = {
        "account": account,
        "id_counter": 0,
        "users": {},
        "tokens": {},
        "pipelines": {},
        "tools": {},
        "tasks": {},
        "projects": [],
        "people": [],
        "mappings": [],
        "user_activity": [],
        "token_activity": [],
    }
    for user in seed.get("users", []):
        _add_user(store, user)
    users_by_email = {user["email"].lower(): user for user in store["users"].values()}

    def user_ref(ref: object, where: str) -> dict:
        """Seeds name users by email or id."""
        if isinstance(ref, str):
            found = users_by_email.get(ref.lower()) or store["users"].get(ref)
            if found:
                return found
        raise SeedError(f"{where}: unknown user {ref!r}")

    for token in seed.get("tokens", []):
        add_token(store, token, user_ref, now)
    for pipeline in seed.get("pipelines", []):
        _add_runnable(store, "pipelines", pipeline, user_ref, account, now)
    for task in seed.get("tasks", []):
        _add_runnable(store, "tasks", task, user_ref, account, now)
    for tool in seed.get("tools", []):
        _add_tool(store, tool, user_ref, account, now)
    for project in seed.get("projects", []):
        store["projects"].append(_stamped(project, now))
    for person in seed.get("people", []):
        store["people"].append(_stamped(person, now))
    for mapping in seed.get("mappings", []):
        record = dict(mapping)
        record.setdefault("id", derived_id("mapping", record.get("attribute1"), record.get("attribute2")))
        store["mappings"].append(_stamped(record, now))
    for entry in seed.get("user_activity", []):
        user = user_ref(entry.get("user"), "user_activity")
        at = now - float(entry.get("days_ago", 0)) * DAY
        store["user_activity"].append(
            user_activity_record(store, user, entry.get("type", "pipeline"), entry.get("action", "update"),
                                  entry.get("target_id", ""), at)
        )
    for entry in seed.get("token_activity", []):
        name = entry.get("token")
        if name not in store["tokens"]:
            raise SeedError(f"token_activity: unknown token {name!r}")
        at = now - float(entry.get("days_ago", 0)) * DAY
        store["token_activity"].append(
            token_activity_record(store, store["tokens"][name], entry.get("target", "/v1/pipeline/status"), at)
        )
    # Audit logs are kept oldest first, as they would be appended.
    store["user_activity"].sort(key=lambda record: record["createdAt"])
    store["token_activity"].sort(key=lambda record: record["createdAt"])
    return store


def next_id(store: dict, at: float) -> str:
    """Object-id-like: 8 hex of time then a counter, so ids sort by creation."""
    store["id_counter"] += 1
    return f"{int(at) & 0xFFFFFFFF:08x}{store['id_counter']:016x}"


def user_activity_record(store: dict, user: dict, kind: str, action: str, target_id: str, at: float) -> dict:
    stamp = iso(at)
    return {
        "_id": next_id(store, at),
        "user_id": user["id"],
        "user_email": user["email"],
        "type": kind,
        "action": action,
        "target_id": target_id,
        "account": store["account"],
        "createdAt": stamp,
        "updatedAt": stamp,
        "__v": 0,
    }


def token_activity_record(store: dict, token: dict, target: str, at: float) -> dict:
    stamp = iso(at)
    return {
        "_id": next_id(store, at),
        "token_id": token["token_id"],
        "scope": " ".join(token["scopes"]),
        "target": target,
        "user_id": token["owner_id"],
        "account": store["account"],
        "createdAt": stamp,
        "updatedAt": stamp,
        "__v": 0,
    }


def _add_user(store: dict, user: dict) -> None:
    user_id = user.get("id") if isinstance(user, dict) else None
    if not isinstance(user_id, str) or not OBJECT_ID.match(user_id):
        raise SeedError(f"users: id must be 24 lowercase hex characters: {user!r}")
    if not isinstance(user.get("email"), str) or "@" not in user["email"]:
        raise SeedError(f"users: {user_id} needs an email")
    role = user.get("role", "user")
    if role not in USER_ROLES:
        raise SeedError(f"users: {user_id} role must be one of {USER_ROLES}")
    store["users"][user_id] = {**user, "role": role}


def add_token(store: dict, token: dict, user_ref, now: float) -> None:
    """Mint the token a seed (or the mint admin route) describes into ``store``."""
    name = token.get("name")
    if not isinstance(name, str) or not name:
        raise SeedError(f"tokens: each token needs a name: {token!r}")
    owner = user_ref(token.get("owner"), f"token {name}")
    scopes = token.get("scopes", ["api"])
    if isinstance(scopes, str):
        scopes = scopes.split()
    unknown = [scope for scope in scopes if scope not in ALL_SCOPES]
    if unknown:
        raise SeedError(f"token {name}: unknown scopes {unknown}")
    expires_at = now + float(token.get("expires_in_days", 30)) * DAY
    # An already expired token was issued well before it expired.
    issued_at = min(now, expires_at - DAY)
    claims = tokens.token_claims(name, owner, scopes, issued_at, expires_at)
    store["tokens"][name] = {
        "name": name,
        "token_id": tokens.token_id(name),
        "owner_id": owner["id"],
        "scopes": list(scopes),
        "issued_at": claims["iat"],
        "expires_at": claims["exp"],
        "jwt": tokens.mint(claims),
    }


def _steps(entry: dict, object_id: str) -> list[dict]:
    steps = []
    for index, step in enumerate(entry.get("steps", [])):
        if not isinstance(step, dict) or not step.get("name"):
            raise SeedError(f"{object_id}: step {index} needs a name")
        outcome = step.get("outcome", "success")
        if outcome not in STEP_OUTCOMES:
            raise SeedError(f"{object_id}: step {step['name']} outcome must be one of {STEP_OUTCOMES}")
        console = step.get("console", [])
        if isinstance(console, dict) and "repeat" in console:
            # {"repeat": N, "line": "text {n}"} writes N numbered lines.
            console = [str(console.get("line", "line {n}")).format(n=n + 1) for n in range(int(console["repeat"]))]
        steps.append(
            {
                "_id": step.get("_id") or derived_id(object_id, "step", index),
                "name": step["name"],
                "tool": step.get("tool", "command-line"),
                "duration": float(step.get("duration", 10)),
                "outcome": outcome,
                "console": [str(line) for line in console],
            }
        )
    return steps


def _access_roles(entry: dict, user_ref, where: str) -> list[dict]:
    roles = [dict(role) for role in entry.get("roles", [])]
    for ref in entry.get("access", []):
        user = user_ref(ref, where)
        roles.append({"user": user["email"], "role": "user"})
    return roles


def _add_runnable(store: dict, collection: str, entry: dict, user_ref, account: str, now: float) -> None:
    object_id = entry.get("_id")
    if not isinstance(object_id, str) or not OBJECT_ID.match(object_id):
        raise SeedError(f"{collection}: _id must be 24 lowercase hex characters: {entry.get('name')!r}")
    owner = user_ref(entry.get("owner"), f"{collection} {object_id}")
    created = iso(now - float(entry.get("created_days_ago", 30)) * DAY)
    steps = _steps(entry, object_id)
    public = {
        key: value
        for key, value in entry.items()
        if key not in {"steps", "access", "start_running", "created_days_ago"}
    }
    public.update(
        {
            "owner": owner["id"],
            "owner_name": " ".join(filter(None, [owner.get("firstName"), owner.get("lastName")])) or owner["email"],
            "roles": _access_roles(entry, user_ref, object_id),
            "account": account,
            "active": entry.get("active", True),
            "createdAt": created,
            "updatedAt": created,
        }
    )
    public.setdefault("description", "")
    public.setdefault("tags", [])
    public.setdefault("type", "sdlc" if collection == "pipelines" else "custom")
    store[collection][object_id] = {
        "object": public,
        "steps": steps,
        "runs": [],
        # The run number a reset cleared; the object reports "created" after it.
        "cleared_run": 0,
        "start_running": bool(entry.get("start_running", False)),
    }


def _add_tool(store: dict, entry: dict, user_ref, account: str, now: float) -> None:
    tool_id = entry.get("_id")
    if not isinstance(tool_id, str) or not OBJECT_ID.match(tool_id):
        raise SeedError(f"tools: _id must be 24 lowercase hex characters: {entry.get('name')!r}")
    owner = user_ref(entry.get("owner"), f"tool {tool_id}")
    created = iso(now - float(entry.get("created_days_ago", 60)) * DAY)
    tool = {key: value for key, value in entry.items() if key not in {"access", "created_days_ago"}}
    tool.update(
        {
            "owner": owner["id"],
            "roles": _access_roles(entry, user_ref, tool_id),
            "account": account,
            "createdAt": created,
            "updatedAt": created,
        }
    )
    tool.setdefault("active", True)
    tool.setdefault("tags", [])
    tool.setdefault("description", "")
    tool.setdefault("configuration", {})
    store["tools"][tool_id] = tool


def _stamped(record: dict, now: float) -> dict:
    stamped = dict(record)
    stamp = iso(now - float(stamped.pop("created_days_ago", 20)) * DAY)
    stamped.setdefault("createdAt", stamp)
    stamped.setdefault("updatedAt", stamp)
    return stamped
