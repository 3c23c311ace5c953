"""Command line: ``python -m airflow_provider_opsera.emulator`` / ``opsera-emulator``.

Prints exactly one line once it is listening (``Opsera emulator listening on
http://HOST:PORT``), plus the connection JSON with ``--print-connection``, then
serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .faults import FAULT_KINDS, FaultSpecError, rule_from_cli
from .seed import SeedError

LISTENING_LINE = "Opsera emulator listening on {url}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="opsera-emulator",
        description="A local emulation of the Opsera API (v1 pipelines, registry, audit logs, tasks; v2 data).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--seed", metavar="FILE", help="seed JSON (default: the packaged default_seed.json)")
    parser.add_argument(
        "--state", metavar="FILE", help="save the state here after every change; load it at start if it exists"
    )
    parser.add_argument(
        "--time-scale", type=float, default=1.0, metavar="FLOAT",
        help="emulated seconds per real second (default 1.0; 60 makes a minute pass every second)",
    )
    parser.add_argument(
        "--manual-clock", action="store_true",
        help="emulated time moves only through POST /_emulator/clock",
    )
    parser.add_argument(
        "--fault", action="append", default=[], metavar="ROUTE:KIND[:VALUE]",
        help=(
            f"inject a fault (repeatable). KIND is one of {', '.join(FAULT_KINDS)}. ROUTE is '*', "
            "'METHOD /path' or '/path'. VALUE is a number (status code, retry-after, latency or hold seconds, "
            "or rate) or field=value pairs, e.g. 'POST /api/v1/pipeline/status:status:status=503,rate=0.3'"
        ),
    )
    parser.add_argument("--fault-seed", type=int, default=0, metavar="INT", help="seed for fault rates (default 0)")
    parser.add_argument(
        "--print-connection", action="store_true",
        help="after the listening line, print an Airflow connection JSON for the admin token",
    )
    parser.add_argument(
        "--readme", action="store_true",
        help="print the emulator's documentation (seed format, admin routes, faults) and exit",
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace, faults: list) -> None:
    from .connection import connection_json
    from .server import make_runtime, raise_open_file_limit, start_server

    raise_open_file_limit()
    # Handlers go in before the listening line: whoever reads it may signal at once.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows
            pass
    runtime = make_runtime(
        seed=args.seed,
        time_scale=args.time_scale,
        manual_clock=args.manual_clock,
        state_path=args.state,
        fault_seed=args.fault_seed,
        faults=faults,
    )
    runner, port = await start_server(runtime, args.host, args.port)
    url = f"http://{args.host}:{port}"
    print(LISTENING_LINE.format(url=url), flush=True)
    if args.print_connection:
        print(connection_json(url, runtime.state.token_jwt(_connection_token(runtime))), flush=True)

    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def _connection_token(runtime) -> str:
    """The admin token, or the first seeded token when a custom seed has no "admin"."""
    names = list(runtime.state.store["tokens"])
    if not names:
        raise ValueError("--print-connection needs a seed with at least one token")
    return "admin" if "admin" in names else names[0]


def packaged_readme() -> str:
    """The emulator's README, shipped inside the package for installed users."""
    from importlib.resources import files

    return files(__package__).joinpath("README.md").read_text(encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.readme:
        print(packaged_readme())
        return 0
    try:
        faults = [rule_from_cli(text) for text in args.fault]
    except FaultSpecError as err:
        print(f"opsera-emulator: --fault: {err}", file=sys.stderr)
        return 2
    if args.time_scale <= 0:
        print("opsera-emulator: --time-scale must be positive", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(args, faults))
    except (SeedError, ValueError, OSError) as err:
        print(f"opsera-emulator: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
