"""Who may do what: the scope check, the role check for lists, and item RBAC."""

from __future__ import annotations

from .errors import forbidden
from .routes import PRIVILEGED_ROLES, ROLE_LIST, Route


def is_privileged(user: dict) -> bool:
    return user.get("role") in PRIVILEGED_ROLES


def check_scope(token: dict, route: Route) -> None:
    if not set(token["scopes"]) & set(route.scopes):
        raise forbidden(
            f"token scope {' '.join(token['scopes'])!r} does not cover {route.key}",
            accepted_scopes=list(route.scopes),
        )


def check_role(user: dict, route: Route) -> None:
    if route.access == ROLE_LIST and not is_privileged(user):
        raise forbidden(f"{route.key} needs the administrator or power_user role")


def can_access(user: dict, obj: dict) -> bool:
    """Item RBAC: privileged users, the owner, or a user listed in the object's roles."""
    if is_privileged(user) or obj.get("owner") == user["id"]:
        return True
    names = {user["id"], user["email"].lower()}
    for role in obj.get("roles") or []:
        if isinstance(role, str):
            listed = role
        elif isinstance(role, dict):
            listed = role.get("user") or role.get("email") or role.get("user_id") or ""
        else:
            continue
        if isinstance(listed, str) and listed.lower() in names:
            return True
    return False


def check_item(user: dict, obj: dict) -> None:
    if not can_access(user, obj):
        raise forbidden(f"{user['email']} has no access to {obj.get('_id')}")
