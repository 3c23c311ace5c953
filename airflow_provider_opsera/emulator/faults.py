"""Injected faults: the failures a client of a remote API must survive.

A rule matches a route key (``"POST /api/v1/pipeline/status"``), a path with any
method, or ``"*"``. It fires with probability ``rate`` (drawn from a seeded
``random.Random`` so a run of tests is repeatable) and, when ``count`` is set, only
for that many firings.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

FAULT_KINDS = ("status", "retry_after", "latency", "hold", "drop", "html", "malformed")

# Kinds that answer in place of the real handler.
REPLACING_KINDS = frozenset({"status", "retry_after", "html", "malformed"})


#: kinds that only delay an answer: they add up, and a rule of another kind may still fire with them
DELAYS = ("latency", "hold")


class FaultSpecError(ValueError):
    pass


@dataclass
class FaultRule:
    route: str = "*"
    kind: str = "status"
    status: int = 503
    rate: float = 1.0
    count: int | None = None
    retry_after: float = 1
    seconds: float = 0.2

    def matches(self, route_key: str) -> bool:
        if self.route == "*" or self.route == route_key:
            return True
        # A bare path matches every method.
        return " " not in self.route and route_key.split(" ", 1)[-1] == self.route

    def to_dict(self) -> dict:
        return asdict(self)


def rule_from_dict(spec: dict) -> FaultRule:
    if not isinstance(spec, dict):
        raise FaultSpecError("a fault is a JSON object")
    known = set(FaultRule.__dataclass_fields__) | {"seed"}
    unknown = set(spec) - known
    if unknown:
        raise FaultSpecError(f"unknown fault fields: {sorted(unknown)}")
    kind = spec.get("kind", "status")
    if kind not in FAULT_KINDS:
        raise FaultSpecError(f"kind must be one of {list(FAULT_KINDS)}")
    try:
        rule = FaultRule(
            route=str(spec.get("route", "*")),
            kind=kind,
            status=int(spec.get("status", 503)),
            rate=float(spec.get("rate", 1.0)),
            count=None if spec.get("count") is None else int(spec["count"]),
            retry_after=float(spec.get("retry_after", 1)),
            seconds=float(spec.get("seconds", 0.2)),
        )
    except (TypeError, ValueError):
        raise FaultSpecError("status/count must be integers; rate/retry_after/seconds numbers") from None
    if not 0.0 <= rule.rate <= 1.0:
        raise FaultSpecError("rate must be between 0 and 1")
    if not 100 <= rule.status <= 599:
        raise FaultSpecError("status must be an HTTP status code")
    if rule.count is not None and rule.count < 0:
        raise FaultSpecError("count must not be negative")
    return rule


# The value after KIND in ``--fault ROUTE:KIND:VALUE`` when it is a bare number.
_PRIMARY_FIELD = {
    "status": "status",
    "retry_after": "retry_after",
    "latency": "seconds",
    "hold": "seconds",
    "drop": "rate",
    "html": "rate",
    "malformed": "rate",
}


def rule_from_cli(text: str) -> FaultRule:
    """Parse ``ROUTE:KIND[:VALUE]``.

    VALUE is either a number (status code for ``status``, seconds for
    ``retry_after``, ``latency`` and ``hold``, rate for the others) or comma-separated
    ``field=value`` pairs, e.g. ``POST /api/v1/pipeline/run:drop:count=1``.
    """
    parts = text.split(":")
    if parts[-1] in FAULT_KINDS:
        route, kind, value = ":".join(parts[:-1]), parts[-1], ""
    elif len(parts) >= 3 and parts[-2] in FAULT_KINDS:
        route, kind, value = ":".join(parts[:-2]), parts[-2], parts[-1]
    else:
        raise FaultSpecError(f"expected ROUTE:KIND[:VALUE] with KIND in {list(FAULT_KINDS)}: {text!r}")
    spec: dict = {"route": route.strip() or "*", "kind": kind}
    value = value.strip()
    if value:
        if "=" in value:
            for pair in value.split(","):
                field, _, field_value = pair.partition("=")
                spec[field.strip()] = field_value.strip()
        else:
            spec[_PRIMARY_FIELD[kind]] = value
    return rule_from_dict(spec)


class FaultInjector:
    def __init__(self, seed: int = 0):
        self.seed = seed
        self.rules: list[FaultRule] = []
        self._random = random.Random(seed)

    def add(self, rule: FaultRule, seed: int | None = None) -> None:
        if seed is not None:
            self.reseed(seed)
        self.rules.append(rule)

    def clear(self) -> None:
        self.rules.clear()
        self._random = random.Random(self.seed)

    def reseed(self, seed: int) -> None:
        self.seed = seed
        self._random = random.Random(seed)

    def firing(self, route_key: str) -> list[FaultRule]:
        """The rules that fire for this request, in the order they were added.

        Latency rules add up; the first rule of any other kind decides the answer,
        and rules after it are not consulted (so their counts are not used up).
        """
        fired = []
        for rule in self.rules:
            if not rule.matches(route_key):
                continue
            if rule.count is not None and rule.count <= 0:
                continue
            # Draw only for partial rates so that rate=1 rules do not shift the
            # random sequence that partial-rate rules depend on.
            if rule.rate < 1.0 and self._random.random() >= rule.rate:
                continue
            if rule.count is not None:
                rule.count -= 1
            fired.append(rule)
            if rule.kind not in DELAYS:
                break
        self.rules = [rule for rule in self.rules if rule.count is None or rule.count > 0]
        return fired

    def describe(self) -> list[dict]:
        return [rule.to_dict() for rule in self.rules]
