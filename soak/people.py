"""The people around the DAG runs: each starts runs of the pipelines the soak shares with them, from Opsera,
with a token of their own, between and during DAG runs (Opsera refuses a request while a run is going:
part of the test), and lets their own runs through an approval gate.

Their requests are not retried: a person whose request was refused or lost tries again later, as
people do. What became of each request is read afterwards from the emulator's journal.
"""

from __future__ import annotations

import random
import time
from collections import Counter

import requests

from soak.seed import person_email, shared_pipelines

#: a driver's call to the emulator that does not answer in time is given up (a person clicks again later)
CALL_TIMEOUT = 10
#: a person's run paused at an approval gate is approved a few seconds later
APPROVAL_CHANCE_PER_ROUND = 0.3


class People:
    def __init__(self, emulator_url: str, rng: random.Random) -> None:
        self.emulator_url = emulator_url
        self.rng = rng
        self.shared = shared_pipelines()
        self.sessions: dict[str, requests.Session] = {}
        #: what the people's run requests came to, as they saw it: executed, refused, or lost (no answer, an error)
        self.requests: Counter[str] = Counter()
        now = time.monotonic()
        self._next_request = {pipeline: now + rng.uniform(0, every) for pipeline, (_, every) in self.shared.items()}

    def mint_tokens(self) -> None:
        """Each person makes a token of their own, so the journal tells their runs apart."""
        for person in sorted({person for person, _ in self.shared.values()}):
            answer = requests.post(
                f"{self.emulator_url}/_emulator/tokens",
                json={"name": person, "owner": person_email(person), "scopes": ["pipeline"]},
                timeout=CALL_TIMEOUT,
            )
            answer.raise_for_status()
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {answer.json()['token']}"
            self.sessions[person] = session

    def step(self, journal: dict[str, list[dict]]) -> None:
        """One round: the requests that are due, and the approvals of the people's own paused runs."""
        now = time.monotonic()
        for pipeline, (person, every) in sorted(self.shared.items()):
            if now >= self._next_request[pipeline]:
                self._next_request[pipeline] = now + every * self.rng.uniform(0.5, 1.5)
                self._request_run(person, pipeline)
            for run in journal.get(pipeline, []):
                if run["status"] == "paused" and run["started_by_token"] == person:
                    if self.rng.random() < APPROVAL_CHANCE_PER_ROUND:
                        self._approve(pipeline)

    def _request_run(self, person: str, pipeline: str) -> None:
        try:
            answer = self.sessions[person].post(
                f"{self.emulator_url}/api/v1/pipeline/run", json={"pipelineId": pipeline}, timeout=CALL_TIMEOUT
            )
            status = answer.json().get("status") if answer.status_code == 200 else None
        except (requests.RequestException, ValueError):
            status = None
        self.requests[{"executed": "executed", "failed": "refused"}.get(status, "lost")] += 1

    def _approve(self, pipeline: str) -> None:
        try:
            requests.post(f"{self.emulator_url}/_emulator/pipelines/{pipeline}/approve", timeout=CALL_TIMEOUT)
        except requests.RequestException:
            pass  # approved on a later round
