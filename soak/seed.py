"""The emulator seed of the soak: pools of pipelines by behaviour, timed in real seconds.

Opsera runs one run of a pipeline at a time, so the soak gives each DAG run a pipeline of its
own from a pool, and the runs of a pipeline while a DAG run holds it are that DAG run's.
"""

from __future__ import annotations

from dataclasses import dataclass

ADMIN = "admin@example.com"
OUTSIDER = "outsider@example.com"
#: the token a person outside Airflow starts runs with (the sensors' runs)
OUTSIDE_TOKEN = "outside"


@dataclass(frozen=True)
class Kind:
    name: str
    pool: int
    #: (step name, real seconds, outcome)
    steps: tuple[tuple[str, float, str], ...]


KINDS = {
    kind.name: kind
    for kind in (
        Kind("ok", 8, (("checkout", 3, "success"), ("build", 4, "success"), ("deploy", 3, "success"))),
        Kind("fail", 4, (("build", 3, "success"), ("unit tests", 3, "fail"))),
        Kind("approval", 4, (("build", 3, "success"), ("approval", 0, "approval"), ("release", 3, "success"))),
        # long enough to be marked failed or to time out while deferred; a stop lets the step finish
        Kind("long", 8, (("stage 1", 15, "success"), ("stage 2", 15, "success"), ("stage 3", 15, "success"))),
        Kind("external", 6, (("build", 4, "success"), ("deploy", 5, "success"))),
        Kind("external_fail", 3, (("build", 4, "success"), ("deploy", 3, "fail"))),
        # run from outside again and again; an asset watcher reports each run that ends
        Kind("watched", 1, (("build", 3, "success"), ("deploy", 3, "success"))),
    )
}


def pipeline_id(kind_index: int, number: int) -> str:
    return f"50a0{kind_index:04x}{number:016x}"


def pools() -> dict[str, list[str]]:
    return {kind.name: [pipeline_id(i, n) for n in range(kind.pool)] for i, kind in enumerate(KINDS.values())}


def watched_pipeline() -> str:
    """The pipeline of the asset watcher (``OPSERA_SOAK_WATCHED_PIPELINE`` in the DAG file)."""
    return pools()["watched"][0]


def soak_seed(time_scale: float) -> dict:
    """A seed document for ``POST /_emulator/seed``; the ``admin`` token keeps the value Airflow holds."""
    pipelines = []
    for i, kind in enumerate(KINDS.values()):
        for n in range(kind.pool):
            pipelines.append(
                {
                    "_id": pipeline_id(i, n),
                    "name": f"Soak {kind.name} {n}",
                    "owner": ADMIN,
                    "type": "sdlc",
                    "steps": [
                        {
                            "name": step,
                            "tool": "jenkins",
                            "duration": seconds * time_scale,
                            "outcome": outcome,
                            "console": [f"{kind.name} {n} {step} line {line}" for line in (1, 2)],
                        }
                        for step, seconds, outcome in kind.steps
                    ],
                }
            )
    return {
        "users": [
            {"id": "a0a0a0a0a0a0a0a0a0a0a0a0", "email": ADMIN, "role": "administrator", "firstName": "Ada"},
            {"id": "a3a3a3a3a3a3a3a3a3a3a3a3", "email": OUTSIDER, "role": "power_user", "firstName": "Otto"},
        ],
        "tokens": [
            {"name": "admin", "owner": ADMIN, "scopes": ["api"], "expires_in_days": 30},
            {"name": OUTSIDE_TOKEN, "owner": OUTSIDER, "scopes": ["pipeline"], "expires_in_days": 30},
        ],
        "pipelines": pipelines,
    }
