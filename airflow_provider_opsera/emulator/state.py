"""The emulator's store: seeded data, runs, audit logs, and their persistence.

Everything lives in one JSON-ready dict (``self.store``) so that ``--state`` can
write it out after every change and read it back at the next start. All access
happens on the server's event loop thread, so no locking is needed.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from . import runs, tokens
from .clock import EmulatedClock
from .errors import ApiError
from .seed import build_store, next_id, read_seed, token_activity_record, user_activity_record

STATE_FORMAT_VERSION = 1

# Token activity grows with every request; beyond this the oldest entries go, so a
# long load test cannot exhaust memory.
TOKEN_ACTIVITY_LIMIT = 200_000
# The state file keeps only the newest token uses: it is rewritten after every
# change, and a load test's worth of polls would make every write slow.
PERSISTED_TOKEN_ACTIVITY = 5_000


class EmulatorState:
    def __init__(self, seed=None, clock: EmulatedClock | None = None, state_path: str | Path | None = None):
        self.clock = clock or EmulatedClock()
        self.seed = read_seed(seed)
        self.state_path = Path(state_path) if state_path else None
        if self.state_path and self.state_path.exists():
            self._load(self.state_path)
        else:
            self.store = build_store(self.seed, self.clock.now())
            self._start_seeded_runs()
            self.save()

    # ----- time and ids

    def now(self) -> float:
        return self.clock.now()

    def new_id(self, at: float | None = None) -> str:
        return next_id(self.store, self.now() if at is None else at)

    # ----- reset and persistence

    def reset(self) -> None:
        """Back to the seed. Seeded tokens stay the same so clients keep working; revocations are undone."""
        minted = self.store["tokens"]
        self.store = build_store(self.seed, self.now())
        for name, token in minted.items():
            if name in self.store["tokens"]:
                self.store["tokens"][name] = {key: value for key, value in token.items() if key != "revoked"}
        self._start_seeded_runs()
        self.save()

    def save(self) -> None:
        if not self.state_path:
            return
        store = {**self.store, "token_activity": self.store["token_activity"][-PERSISTED_TOKEN_ACTIVITY:]}
        document = {"version": STATE_FORMAT_VERSION, "clock_now": self.now(), "store": store}
        directory = self.state_path.parent
        directory.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crash never leaves half a state file behind.
        handle, temporary = tempfile.mkstemp(prefix=".opsera-emulator-", dir=directory)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(document, out, separators=(",", ":"))
            os.replace(temporary, self.state_path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _load(self, path: Path) -> None:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read state file {path}: {err}") from err
        if not isinstance(document, dict) or document.get("version") != STATE_FORMAT_VERSION:
            raise ValueError(f"state file {path} was not written by this emulator version")
        self.store = document["store"]
        self.clock.resume_from(float(document.get("clock_now", 0)))

    def _start_seeded_runs(self) -> None:
        now = self.now()
        for collection in ("pipelines", "tasks"):
            for object_id, entry in self.store[collection].items():
                if entry.get("start_running"):
                    self.start_run(collection, object_id, entry["object"]["owner"], now)

    # ----- users, tokens and the audit logs

    def user(self, user_id: str) -> dict:
        return self.store["users"][user_id]

    def token_jwt(self, name: str) -> str:
        try:
            return self.store["tokens"][name]["jwt"]
        except KeyError:
            raise KeyError(f"no token named {name!r}; seeded: {sorted(self.store['tokens'])}") from None

    def authenticate(self, authorization: str | None) -> tuple[dict, dict]:
        """The token and its owner for an ``Authorization`` header, or a 401."""
        if not authorization or not authorization.strip():
            raise ApiError(401, "missing authorization header")
        value = authorization.strip()
        # Both "Bearer <jwt>" and the bare "<jwt>" one documentation page shows.
        scheme, _, rest = value.partition(" ")
        if rest and scheme.lower() == "bearer":
            value = rest.strip()
        try:
            claims = tokens.verify(value, self.now())
        except tokens.TokenError as err:
            raise ApiError(401, str(err)) from None
        token = self.store["tokens"].get(claims.get("jti"))
        if token is None or token["owner_id"] != claims.get("sub"):
            raise ApiError(401, "unknown token")
        if token.get("revoked"):
            raise ApiError(401, "token revoked")
        user = self.store["users"].get(token["owner_id"])
        if user is None:
            raise ApiError(401, "the token's owner no longer exists")
        return token, user

    def record_token_use(self, token: dict, target: str) -> None:
        log = self.store["token_activity"]
        log.append(token_activity_record(self.store, token, target, self.now()))
        if len(log) > TOKEN_ACTIVITY_LIMIT:
            del log[: len(log) - TOKEN_ACTIVITY_LIMIT]

    def record_user_action(self, user: dict, kind: str, action: str, target_id: str) -> None:
        self.store["user_activity"].append(
            user_activity_record(self.store, user, kind, action, target_id, self.now())
        )

    # ----- runs of pipelines and tasks

    def entry(self, collection: str, object_id: str) -> dict:
        return self.store[collection][object_id]

    def subject(self, collection: str, object_id: str) -> runs.RunSubject:
        entry = self.store[collection][object_id]
        kind = "pipeline" if collection == "pipelines" else "task"
        return runs.RunSubject(kind, object_id, entry["object"]["name"], entry["steps"], self.new_id)

    def latest_run(self, collection: str, object_id: str) -> dict | None:
        """The newest run, advanced to now."""
        entry = self.store[collection][object_id]
        if not entry["runs"]:
            return None
        run = entry["runs"][-1]
        runs.advance(self.subject(collection, object_id), run, self.now())
        return run

    def find_run(self, collection: str, object_id: str, run_count: int) -> dict | None:
        entry = self.store[collection][object_id]
        for run in entry["runs"]:
            if run["run_count"] == run_count:
                runs.advance(self.subject(collection, object_id), run, self.now())
                return run
        return None

    def start_run(self, collection: str, object_id: str, user_id: str, now: float | None = None) -> dict:
        entry = self.store[collection][object_id]
        now = self.now() if now is None else now
        run_count = entry["runs"][-1]["run_count"] + 1 if entry["runs"] else 1
        run = runs.new_run(self.subject(collection, object_id), run_count, now, user_id)
        entry["runs"].append(run)
        runs.advance(self.subject(collection, object_id), run, now)
        return run

    def advance_all(self) -> None:
        for collection in ("pipelines", "tasks"):
            for object_id in self.store[collection]:
                self.latest_run(collection, object_id)

    def dump(self) -> dict:
        self.advance_all()
        return {"clock": self.clock.describe(), "store": self.store}
