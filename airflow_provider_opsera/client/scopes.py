"""What a token's scopes let it do, in words a person can act on.

Built on the endpoint table: an ability is a group of calls, granted when the token's
scopes cover every call of the group. The scopes come from the token's own claims
(unverified); Opsera has the last word on every call.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_opsera.client.api import ENDPOINTS
from airflow_provider_opsera.client.token import token_claims


@dataclass(frozen=True)
class Ability:
    area: str
    words: str
    calls: tuple[str, ...]
    #: said after "cannot <words>" when the ability is missing
    consequence: str = ""

    @property
    def needs_power_user(self) -> bool:
        return any(ENDPOINTS[name].needs_power_user for name in self.calls)

    def granted_by(self, scopes: tuple[str, ...]) -> bool:
        return all(set(scopes) & set(ENDPOINTS[name].scopes) for name in self.calls)


PIPELINES, REGISTRY, TASKS, AUDIT, INSIGHTS = "pipelines", "the tool registry", "tasks", "audit logs", "Insights data"

# Every endpoint belongs to exactly one ability (a unit test keeps them in step).
ABILITIES = (
    Ability(PIPELINES, "run, stop and reset pipelines", ("pipeline_run", "pipeline_stop", "pipeline_reset")),
    Ability(PIPELINES, "read a run's status and logs", ("pipeline_status", "pipeline_logs", "pipeline_action_status")),
    Ability(PIPELINES, "approve or reject approval gates", ("pipeline_approve", "pipeline_reject")),
    Ability(PIPELINES, "read a pipeline by id", ("pipeline_summary",)),
    Ability(
        PIPELINES, "list pipelines", ("pipeline_list",), consequence="runs by id only, pipeline_name= cannot be used"
    ),
    Ability(REGISTRY, "read tools by id", ("tool_summary",)),
    Ability(REGISTRY, "update tools", ("tool_update",)),
    Ability(REGISTRY, "list tools", ("tool_list",)),
    Ability(TASKS, "read tasks", ("task_list", "task_summary", "task_status", "task_logs")),
    Ability(AUDIT, "read audit logs", ("user_activity", "token_activity")),
    Ability(
        INSIGHTS,
        "read Insights data",
        ("project_list", "project_get", "person_list", "person_get", "mapping_list", "mapping_get"),
    ),
    Ability(
        INSIGHTS,
        "write Insights data",
        ("project_create", "person_create", "org_hierarchy_create", "mapping_create"),
    ),
)

# The list calls a connection test may probe, first covered first; each is a cheap read.
PROBE_CALLS = ("pipeline_list", "tool_list", "task_list", "project_list")
PROBE_NOUNS = {"pipeline_list": "pipelines", "tool_list": "tools", "task_list": "tasks", "project_list": "projects"}


def token_scopes(token: str) -> tuple[str, ...] | None:
    """The scopes a JWT says it has (``scope`` space separated, or a ``scopes`` list); None when unreadable."""
    claims = token_claims(token)
    value = claims.get("scope", claims.get("scopes"))
    if isinstance(value, str):
        scopes = value.split()
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        scopes = value
    else:
        return None
    return tuple(scopes) or None


def token_owner(token: str) -> str | None:
    """The email the token says it belongs to, if it says so."""
    email = token_claims(token).get("email")
    return email if isinstance(email, str) and email else None


def probe_call(scopes: tuple[str, ...] | None) -> str:
    """The list call a connection test should make: the first one the scopes cover."""
    for name in PROBE_CALLS:
        if scopes is None or set(scopes) & set(ENDPOINTS[name].scopes):
            return name
    return PROBE_CALLS[0]


@dataclass(frozen=True)
class TokenAbilities:
    """What a token's scopes allow, in words: ``can`` and ``cannot`` name calls, ``no_access`` whole areas."""

    can: list[str]
    cannot: list[str]
    no_access: list[str]


def describe_abilities(scopes: tuple[str, ...], power_user: bool | None) -> TokenAbilities:
    """What the scopes allow and what they do not, given the owner's role (None: not known).

    An area the token cannot touch at all is named once ("the tool registry") rather than call by call.
    """
    can: list[str] = []
    cannot: dict[str, list[str]] = {}
    for ability in ABILITIES:
        missing = cannot.setdefault(ability.area, [])
        if not ability.granted_by(scopes):
            missing.append(_with_consequence(ability))
        elif not ability.needs_power_user or power_user:
            can.append(ability.words)
        elif power_user is None:
            can.append(f"{ability.words} (if its owner has the Power User role)")
        else:
            missing.append(_with_consequence(ability, because="its owner lacks the Power User role"))
    no_access = [area for area in cannot if len(cannot[area]) == _ability_count(area)]
    refused = [words for area, missing in cannot.items() if area not in no_access for words in missing]
    return TokenAbilities(can, refused, no_access)


def either(items: list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return " or ".join(items) if len(items) < 3 else ", ".join(items[:-1]) + " or " + items[-1]


def scope_words(scopes: tuple[str, ...]) -> str:
    """How a message names a token's scopes: ``scope pipeline``, ``scopes pipeline registry``."""
    return f"scope{'s' if len(scopes) > 1 else ''} {' '.join(scopes)}"


def _ability_count(area: str) -> int:
    return sum(ability.area == area for ability in ABILITIES)


def _with_consequence(ability: Ability, because: str = "") -> str:
    words = f"{ability.words} ({because})" if because else ability.words
    return f"{words}: {ability.consequence}" if ability.consequence else words
