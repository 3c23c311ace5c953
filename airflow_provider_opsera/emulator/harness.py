"""``OpseraEmulator``: the emulator in a background thread, for tests.

::

    with OpseraEmulator(clock="manual") as emu:
        token = emu.token("admin")
        requests.post(f"{emu.url}/api/v1/pipeline/run", json={...},
                      headers={"Authorization": f"Bearer {token}"})
        emu.advance(120)

The server runs on its own event loop in a daemon thread; the helper methods run
their work on that loop, so they never race the request handlers. Importing this
module is cheap: asyncio and aiohttp are imported when the emulator starts.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from . import connection

if TYPE_CHECKING:
    import asyncio

START_TIMEOUT_SECONDS = 10


class OpseraEmulator:
    def __init__(
        self,
        seed: str | Path | dict | None = None,
        time_scale: float = 1.0,
        state_path: str | Path | None = None,
        clock: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        fault_seed: int = 0,
    ):
        """
        seed: a seed file, a seed dict, or None for the packaged default seed.
        time_scale: emulated seconds per real second (ignored with clock="manual").
        state_path: a JSON file the state is saved to after every change and read
            from at start when it exists.
        clock: None or "scaled" for time moving with the real clock times
            time_scale; "manual" for time that moves only by advance().
        port: 0 picks a free port.
        """
        if clock not in (None, "scaled", "manual"):
            raise ValueError('clock must be None, "scaled" or "manual"')
        self._options = {
            "seed": seed,
            "time_scale": time_scale,
            "manual_clock": clock == "manual",
            "state_path": state_path,
            "fault_seed": fault_seed,
        }
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner = None
        self._runtime = None
        self._stopped: asyncio.Event | None = None

    # ----- lifecycle

    def start(self) -> OpseraEmulator:
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._serve, args=(ready, failure), name="opsera-emulator", daemon=True
        )
        self._thread.start()
        if not ready.wait(START_TIMEOUT_SECONDS):
            raise RuntimeError("the Opsera emulator did not start in time")
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(START_TIMEOUT_SECONDS)
        self._thread = None

    def __enter__(self) -> OpseraEmulator:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _serve(self, ready: threading.Event, failure: list) -> None:
        import asyncio

        from .server import make_runtime, start_server

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._runtime = make_runtime(**self._options)
            self._stopped = asyncio.Event()
            self._runner, self.port = loop.run_until_complete(
                start_server(self._runtime, self.host, self._requested_port)
            )
        except BaseException as err:  # reported to the thread that called start()
            failure.append(err)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_until_complete(self._stopped.wait())
        finally:
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

    def _call(self, function, *args):
        """Run ``function(*args)`` on the server's loop and return its result."""
        import asyncio

        if self._loop is None or self._thread is None:
            raise RuntimeError("the emulator is not running")

        async def invoke():
            return function(*args)

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(START_TIMEOUT_SECONDS)

    # ----- addresses and credentials

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the emulator is not running")
        return f"http://{self.host}:{self.port}"

    def token(self, name: str = "admin") -> str:
        return self._call(lambda: self._runtime.state.token_jwt(name))

    def tokens(self) -> dict[str, str]:
        return self._call(lambda: {n: t["jwt"] for n, t in self._runtime.state.store["tokens"].items()})

    def mint_token(
        self,
        name: str,
        scopes: list[str] | tuple[str, ...] = ("api",),
        *,
        owner: str | None = None,
        role: str = "administrator",
        expires_in: float | None = None,
    ) -> str:
        """Mint a new token (see ``POST /_emulator/tokens``) and return its JWT."""
        from .admin import mint_token

        spec = {"name": name, "scopes": list(scopes), "owner": owner, "role": role}
        if expires_in is not None:
            spec["expires_in"] = expires_in
        return self._call(lambda: mint_token(self._runtime.state, spec)["token"])

    def revoke_token(self, name: str) -> None:
        """From now on the token gets 401 "token revoked" (``DELETE /_emulator/tokens/{name}``)."""
        from .admin import revoke_token

        self._call(lambda: revoke_token(self._runtime.state, name))

    def connection_json(self, token_name: str = "admin") -> str:
        return connection.connection_json(self.url, self.token(token_name))

    def connection_uri(self, token_name: str = "admin") -> str:
        return connection.connection_uri(self.url, self.token(token_name))

    def connection_dict(self, token_name: str = "admin") -> dict:
        return connection.connection_dict(self.url, self.token(token_name))

    # ----- observation and control

    def request_counts(self) -> dict[str, int]:
        return self._call(lambda: dict(self._runtime.counts))

    def request_count(self, method: str, path: str) -> int:
        """Requests to a route, e.g. ("POST", "/api/v1/pipeline/run")."""
        return self._call(lambda: self._runtime.counts.get(f"{method.upper()} {path}", 0))

    def set_fault(
        self,
        route: str = "*",
        kind: str = "status",
        status: int = 503,
        rate: float = 1.0,
        count: int | None = None,
        retry_after: float = 1,
        seconds: float = 0.2,
        seed: int | None = None,
    ) -> None:
        """Inject a fault; see faults.py and README.md for the kinds."""
        from .faults import rule_from_dict

        rule = rule_from_dict(
            {
                "route": route,
                "kind": kind,
                "status": status,
                "rate": rate,
                "count": count,
                "retry_after": retry_after,
                "seconds": seconds,
            }
        )
        self._call(lambda: self._runtime.faults.add(rule, seed=seed))

    def clear_faults(self) -> None:
        self._call(lambda: self._runtime.faults.clear())

    def deviate(self, rename: dict | None = None, statuses: dict | None = None) -> None:
        """Answer unlike the contract until reset: renamed fields, other status strings (see deviations.py)."""
        spec = {"rename": rename or {}, "statuses": statuses or {}}
        self._call(lambda: self._runtime.deviations.configure(spec))

    def reset(self) -> None:
        self._call(lambda: self._runtime.reset())

    def advance(self, seconds: float) -> float:
        """Move the emulated clock forward; returns the new emulated time."""

        def move():
            state = self._runtime.state
            now = state.clock.advance(seconds)
            state.advance_all()
            state.save()
            return now

        return self._call(move)

    def now(self) -> float:
        return self._call(lambda: self._runtime.state.now())

    def approve(self, pipeline_id: str, by: str | None = None) -> dict:
        """Approve the gate a run of the pipeline waits at, as a person outside the API would (journal: ``by``)."""
        return self._call(lambda: self._runtime.approve(pipeline_id, by))

    def reject(self, pipeline_id: str, message: str, by: str | None = None) -> dict:
        """Reject the gate a run of the pipeline waits at, from outside the API: the run ends ``rejected``."""
        return self._call(lambda: self._runtime.reject(pipeline_id, message, by))

    def run_journal(self) -> dict:
        """Each pipeline run with who started, stopped and reset it and decided its gates; the faults injected."""
        import copy

        return self._call(lambda: copy.deepcopy(self._runtime.run_journal()))

    def start_task_run(self, task_id: str) -> dict:
        from . import workloads

        return self._call(lambda: workloads.start_task_run(self._runtime.state, task_id))

    def state(self) -> dict:
        """A JSON-ready copy of the whole store, for debugging."""
        import copy

        return self._call(lambda: copy.deepcopy(self._runtime.state.dump()))
