"""The run journal: who started, stopped and reset each pipeline run, who decided its approval gates, and when.

The store already knows each run's steps, status and emulated times. The journal adds
what only the HTTP layer sees: the name of the token behind each request, the wall-clock
time of it (to line runs up with other systems' records), the run requests Opsera refused,
every injected fault, and each decision at a gate: who made it (a token's name through the
API, or whoever decided from outside it), at which step, and how. ``GET /_emulator/runs``
joins the two, so a test or a soak can check afterwards that each run was started, stopped
and decided by whom it should have been.
"""

from __future__ import annotations

import time
from collections import Counter

from . import runs
from .clock import EmulatedClock

PIPELINES = "pipelines"

# The API operations (endpoint names) that change a run, and what the journal calls them.
_RUN_COMMANDS = {"pipeline_stop": "stop", "pipeline_reset": "reset"}
# The API operation of the actions endpoint, whose approve and reject decide gates.
_ACTIONS = "pipeline_actions"
#: where the journal lists each decision at a gate
DECISION_LISTS = {"approve": "approvals", "reject": "rejections"}


class RunJournal:
    def __init__(self, wall_clock=time.time) -> None:
        self._wall = wall_clock
        self.clear()

    def clear(self) -> None:
        # (pipeline id, run count) -> what happened to the run, beyond the store's own record
        self._runs: dict[tuple[str, int], dict] = {}
        self.refused: list[dict] = []
        self.faults: Counter[str] = Counter()
        self.faults_by_route: Counter[str] = Counter()

    # ----- recording

    def fault(self, kind: str, route_key: str) -> None:
        self.faults[kind] += 1
        self.faults_by_route[f"{route_key} {kind}"] += 1

    def journaled(self, operation: str, state, token_name: str, body: dict, perform):
        """Perform an API operation; when it starts, stops, resets or decides a pipeline run, note who and which run."""
        if operation == _ACTIONS:
            answer = perform()
            decision = body.get("action")
            if decision in DECISION_LISTS:
                for result in answer["results"]:
                    self.decided(result["target"], result, decision, token_name, via="api", message=body.get("message"))
            return answer
        if operation != "pipeline_run" and operation not in _RUN_COMMANDS:
            return perform()
        pipeline_id = body.get("pipelineId")
        before = None
        if operation in _RUN_COMMANDS and isinstance(pipeline_id, str) and pipeline_id in state.store[PIPELINES]:
            run = state.latest_run(PIPELINES, pipeline_id)
            before = None if run is None else (run["run_count"], run["status"])
        answer = perform()  # an error answer changed nothing: nothing to note
        if operation == "pipeline_run":
            self._run_requested(pipeline_id, token_name, answer)
        elif before is not None:
            run_count, status = before
            self._entry(pipeline_id, run_count)[f"{_RUN_COMMANDS[operation]}s"].append(
                {"by": token_name, "wall": self._wall(), "run_status": status}
            )
        return answer

    def _run_requested(self, pipeline_id: str, token_name: str, answer: dict) -> None:
        if answer.get("status") == "executed":
            self._entry(pipeline_id, int(answer["runCount"]))["started_by_token"] = token_name
        else:
            self.refused.append(
                {"pipeline_id": pipeline_id, "token": token_name, "wall": self._wall(), "message": answer.get("message")}
            )

    def decided(self, pipeline_id: str, answer: dict, decision: str, who: str, *, via: str, message=None) -> None:
        """A gate of run ``answer["runCount"]`` was decided (approve or reject) by ``who``, ``via`` the API or not."""
        note = {"by": who, "wall": self._wall(), "step": answer["step"], "via": via}
        if decision == "reject":
            note["message"] = message
        self._entry(pipeline_id, answer["runCount"])[DECISION_LISTS[decision]].append(note)

    def _entry(self, pipeline_id: str, run_count: int) -> dict:
        key = (pipeline_id, run_count)
        if key not in self._runs:
            self._runs[key] = {
                "started_by_token": None,
                "started_wall": self._wall(),
                "stops": [],
                "resets": [],
                "approvals": [],
                "rejections": [],
            }
        return self._runs[key]

    # ----- reading

    def pipeline_runs(self, state, clock: EmulatedClock) -> list[dict]:
        """Every pipeline run in the store, oldest first per pipeline, with what the journal saw of it."""
        answer = []
        for pipeline_id, entry in state.store[PIPELINES].items():
            state.latest_run(PIPELINES, pipeline_id)  # bring the live run up to now
            for run in entry["runs"]:
                seen = self._runs.get((pipeline_id, run["run_count"]), {})
                answer.append(
                    {
                        "pipeline_id": pipeline_id,
                        "pipeline_name": entry["object"]["name"],
                        "run_count": run["run_count"],
                        "status": run["status"],
                        "active": run["status"] in runs.ACTIVE_STATUSES,
                        "started_by_user": run["started_by"],
                        "started_by_token": seen.get("started_by_token"),
                        "started_at": run["started_at"],
                        "started_wall": seen.get("started_wall", clock.wall_time(run["started_at"])),
                        "ended_at": run["ended_at"],
                        "ended_wall": None if run["ended_at"] is None else clock.wall_time(run["ended_at"]),
                        "stop_requested": run["stop_requested"],
                        "stops": seen.get("stops", []),
                        "resets": seen.get("resets", []),
                        "approvals": seen.get("approvals", []),
                        "rejections": seen.get("rejections", []),
                    }
                )
        return answer

    def describe(self, state, clock: EmulatedClock) -> dict:
        return {
            "runs": self.pipeline_runs(state, clock),
            "refused_run_requests": list(self.refused),
            "faults_injected": dict(self.faults),
            "faults_by_route": dict(self.faults_by_route),
        }
