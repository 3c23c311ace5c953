"""The emulator seed of the soak: pools of pipelines by behaviour, timed in real seconds, and the people
who run some of them from outside Airflow.

The soak gives each DAG run a pipeline of its own from a pool, so the runs Airflow's token starts
on a pipeline while a DAG run holds it are that DAG run's. People share part of each pool: they
start runs of those pipelines between and during DAG runs, each with a token of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

ADMIN = "admin@example.com"
OUTSIDER = "outsider@example.com"
#: the token Airflow's connection holds (the emulator's journal names each run's token)
AIRFLOW_TOKEN = "admin"
#: the token a person outside Airflow starts runs with (the sensors' runs, the watched pipeline's)
OUTSIDE_TOKEN = "outside"


#: the people who start runs of the shared pipelines, each a user of their own: token name -> first name
PEOPLE = {"person-1": "Pia", "person-2": "Paul", "person-3": "Priya"}


def person_email(token_name: str) -> str:
    return f"{PEOPLE[token_name].lower()}@example.com"



@dataclass(frozen=True)
class Kind:
    name: str
    pool: int
    #: (step name, real seconds, outcome)
    steps: tuple[tuple[str, float, str], ...]
    #: how many of the pool's pipelines people run too, and the mean real seconds between two of a
    #: person's run requests on one of them (a request while a run is going is refused)
    shared: int = 0
    person_every: float = 0.0


KINDS = {
    kind.name: kind
    for kind in (
        Kind("ok", 8, (("checkout", 3, "success"), ("build", 4, "success"), ("deploy", 3, "success")), 4, 20),
        Kind("fail", 4, (("build", 3, "success"), ("unit tests", 3, "fail")), 2, 20),
        Kind(
            "approval", 4, (("build", 3, "success"), ("approval", 0, "approval"), ("release", 3, "success")), 2, 25
        ),
        # long enough to be marked failed, cleared or to time out while waited on; a stop lets the step finish
        Kind(
            "long", 8, (("stage 1", 15, "success"), ("stage 2", 15, "success"), ("stage 3", 15, "success")), 4, 90
        ),
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


def shared_pipelines() -> dict[str, tuple[str, float]]:
    """The pipelines people run too: pipeline id -> (the person's token name, mean seconds between requests)."""
    people = list(PEOPLE)
    shared: dict[str, tuple[str, float]] = {}
    for index, kind in enumerate(KINDS.values()):
        for number in range(kind.shared):
            shared[pipeline_id(index, number)] = (people[len(shared) % len(people)], kind.person_every)
    return shared


def watched_pipeline() -> str:
    """The pipeline of the asset watcher (``OPSERA_SOAK_WATCHED_PIPELINE`` in the DAG file)."""
    return pools()["watched"][0]


def soak_seed(time_scale: float) -> dict:
    """A seed document for ``POST /_emulator/seed``; the ``admin`` token keeps the value Airflow holds.

    The people's tokens are minted afterwards (``POST /_emulator/tokens``), as a person would make one."""
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
            *(
                {"id": f"a4a4a4a4a4a4a4a4a4a4a4{n:02x}", "email": person_email(token), "role": "power_user",
                 "firstName": name}
                for n, (token, name) in enumerate(PEOPLE.items())
            ),
        ],
        "tokens": [
            {"name": AIRFLOW_TOKEN, "owner": ADMIN, "scopes": ["api"], "expires_in_days": 30},
            {"name": OUTSIDE_TOKEN, "owner": OUTSIDER, "scopes": ["pipeline"], "expires_in_days": 30},
        ],
        "pipelines": pipelines,
    }
