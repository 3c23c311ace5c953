"""Starting and stopping the HTTP server, shared by the CLI and OpseraEmulator."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from .app import Runtime, build_app
from .clock import EmulatedClock
from .faults import FaultInjector, FaultRule
from .state import EmulatorState

# Thousands of clients may connect at once; the default listen backlog is 128.
LISTEN_BACKLOG = 4096


def make_runtime(
    seed=None,
    time_scale: float = 1.0,
    manual_clock: bool = False,
    state_path: str | Path | None = None,
    fault_seed: int = 0,
    faults: list[FaultRule] | None = None,
) -> Runtime:
    clock = EmulatedClock(time_scale=time_scale, manual=manual_clock)
    state = EmulatorState(seed=seed, clock=clock, state_path=state_path)
    injector = FaultInjector(seed=fault_seed)
    for rule in faults or []:
        injector.add(rule)
    return Runtime(state, injector)


async def start_server(runtime: Runtime, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve until ``runner.cleanup()``; returns the runner and the bound port."""
    # No access log: at thousands of requests a second it would cost more than the work.
    # A short shutdown grace: in-flight requests of an emulator being stopped
    # (say, one held by a latency fault) must not keep a test waiting.
    runner = web.AppRunner(build_app(runtime), access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=LISTEN_BACKLOG, reuse_address=True)
    await site.start()
    # The real port, when asked for port 0.
    bound_port = runner.addresses[0][1]
    return runner, bound_port


def raise_open_file_limit() -> None:
    """Each client connection is a file descriptor; allow as many as the hard limit."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
