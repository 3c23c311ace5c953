"""Triggerer cost: CPU per poll, memory per waiting trigger, polls achieved, completion latency.

For each provider and each N, a fresh process runs N triggers in one event loop
(``bench.trigger_process``) against ``bench.server`` (HTTPS on 127.0.0.1, its own
worker processes). After every trigger has started and polled once, the window is cut
into poll-interval cycles; each cycle gives one sample of

* client CPU per poll   = trigger process CPU time / polls the server answered,
* server CPU per poll   = server workers' CPU time / polls,
* polls achieved        = polls answered / (N x cycle length / poll interval),
* memory per trigger    = (RSS now - RSS after warm-up) / N,
* largest burst         = the most polls the server saw arrive within 10 ms.

Then every run flips to success at a known moment, and the completion latency is the
time until the last trigger yielded its event.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time

from bench.common import ROOT, cpu_seconds, out_dir, proc_status, say, summary
from bench.server import BenchServer
from bench.tls import make_certificates
from bench.trigger_process import DBT_ACCOUNT_ID, DBT_CONN_ID, OPSERA_CONN_ID

TOKEN = "bench-token-0123456789abcdef"
#: the bare loop's wake-up grid, seconds (the provider's triggers wake on their own timers)
GRID_STEP = 0.125


class ReportPipe:
    """JSON lines from the trigger process. Read unbuffered: two lines that arrive together are both seen."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = b""
        self.selector = selectors.DefaultSelector()
        self.selector.register(fd, selectors.EVENT_READ)

    def read(self, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            if not self.selector.select(max(0.0, deadline - time.monotonic())):
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return {"phase": "eof"}
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return json.loads(line)

    def close(self) -> None:
        self.selector.close()
        os.close(self.fd)

    def expect(self, phase: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            message = self.read(max(0.0, deadline - time.monotonic()))
            if message is None:
                raise TimeoutError(f"no {phase!r} report within {timeout} s")
            if message["phase"] == phase:
                return message
            raise RuntimeError(f"expected {phase!r}, got {message}")


def environment(server: BenchServer, ca: str) -> dict[str, str]:
    env = dict(os.environ)
    home = out_dir() / "airflow-home"
    home.mkdir(exist_ok=True)
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # dbt Cloud's hook has no verify option: it trusts the default CA store.
            "SSL_CERT_FILE": ca,
            "AIRFLOW_CONN_" + OPSERA_CONN_ID.upper(): json.dumps(
                {
                    "conn_type": "opsera",
                    "host": f"https://127.0.0.1:{server.port}",
                    "password": TOKEN,
                    "extra": {"verify": ca},
                }
            ),
            "AIRFLOW_CONN_" + DBT_CONN_ID.upper(): json.dumps(
                {
                    "conn_type": "dbt_cloud",
                    "host": f"127.0.0.1:{server.port}",
                    "login": str(DBT_ACCOUNT_ID),
                    "password": TOKEN,
                }
            ),
        }
    )
    return env


def run_one(
    server: BenchServer,
    env: dict,
    side: str,
    count: int,
    interval: float,
    window: float,
    completion_wait: float,
    spread: float | None = None,
    grid_step: float = 0.0,
) -> dict:
    read_fd, write_fd = os.pipe()
    log_path = out_dir() / f"triggers-{side}-{count}.log"
    command = [
        sys.executable,
        "-m",
        "bench.trigger_process",
        side,
        str(count),
        str(interval),
        str(write_fd),
        str(interval if spread is None else spread),
        str(grid_step),
    ]
    with open(log_path, "wb") as log:
        child = subprocess.Popen(
            command,
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(write_fd,),
        )
    os.close(write_fd)
    pipe = ReportPipe(read_fd)
    served_as = server_side(side)
    server.forget_runs()
    try:
        baseline = pipe.expect("baseline", 120)
        started = pipe.expect("started", 120)
        # ramp: wait until every trigger has polled once (starts are spread over one interval)
        ramp_cap = max(40.0, 8 * interval)
        while server.polled_runs(served_as) < count and time.time() - started["t"] < ramp_cap:
            time.sleep(0.25)
        polled_once = server.polled_runs(served_as)
        ramp_seconds = time.time() - started["t"] if polled_once >= count else None
        time.sleep(interval)
        cycles = max(1, round(window / interval))
        samples = []
        before = sample(server, child.pid, served_as)
        for _ in range(cycles):
            time.sleep(interval)
            after = sample(server, child.pid, served_as)
            samples.append(cycle(before, after, baseline, count, interval))
            samples[-1]["largest_burst"] = server.largest_burst(before["t"], after["t"])
            before = after
        flip_at = server.flip()
        try:
            done = pipe.expect("done", completion_wait)
        except TimeoutError:
            child.terminate()  # the process reports the events it has and stops
            done = pipe.expect("done", 30)
    except BaseException:
        say(f"  see {log_path}")
        raise
    finally:
        server.unflip()
        if child.poll() is None:
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        pipe.close()
    total_polls = sum(s["polls"] for s in samples)
    intended = count * cycles  # one poll per trigger per cycle
    client_cpu = sum(s["client_cpu_ms"] for s in samples)
    server_cpu = sum(s["server_cpu_ms"] for s in samples)
    result = {
        "side": side,
        "n": count,
        "poll_interval": interval,
        "grid_step": grid_step,
        "start_spread": interval if spread is None else spread,
        "largest_burst": summary([s["largest_burst"] for s in samples]),
        "window_seconds": cycles * interval,
        "cycles": samples,
        "load_average": os.getloadavg(),
        "ramp_seconds": ramp_seconds,
        "polled_once": polled_once,
        # over the whole window (the per-cycle figures below give the spread)
        "client_cpu_per_poll_ms_window": client_cpu / max(1, total_polls),
        "server_cpu_per_poll_ms_window": server_cpu / max(1, total_polls),
        "client_cpu_per_poll_ms": summary([s["client_cpu_ms"] / max(1, s["polls"]) for s in samples]),
        "server_cpu_per_poll_ms": summary([s["server_cpu_ms"] / max(1, s["polls"]) for s in samples]),
        "client_cpu_utilisation": summary([s["client_cpu_ms"] / 1000 / interval for s in samples]),
        "server_cpu_utilisation": summary([s["server_cpu_ms"] / 1000 / interval for s in samples]),
        "memory_per_trigger_kib": summary([s["rss_per_trigger_kib"] for s in samples]),
        "open_sockets": summary([s["sockets"] for s in samples]),
        "polls_achieved_ratio": summary([s["polls"] / count for s in samples]),
        "polls": total_polls,
        "polls_intended": intended,
        "other_requests": sum(s["other"] for s in samples),
        "baseline_rss_mib": baseline["rss"] / 2**20,
        "completion": {
            "events": done["events"],
            "statuses": done["statuses"],
            "errors": done["errors"],
            "first_s": done["first"] - flip_at,
            "p50_s": done["p50"] - flip_at,
            "p99_s": done["p99"] - flip_at,
            "last_s": done["last"] - flip_at,
        },
    }
    ramp = f"{ramp_seconds:.1f} s" if ramp_seconds is not None else f"not all within {ramp_cap:.0f} s ({polled_once})"
    say(
        f"  {side:6} N={count:>6}: ramp {ramp}, client {result['client_cpu_per_poll_ms_window']:.3f} ms/poll, "
        f"server {result['server_cpu_per_poll_ms_window']:.3f} ms/poll, "
        f"{result['memory_per_trigger_kib']['median']:.1f} KiB/trigger, "
        f"polls {total_polls}/{intended}, last event {result['completion']['last_s']:.2f} s after the flip "
        f"({done['events']} events: {done['statuses']})"
    )
    return result


def server_side(side: str) -> str:
    """The provider whose endpoint a side polls (the bare aiohttp floor polls Opsera's)."""
    return "dbt" if side == "dbt" else "opsera"


def sample(server: BenchServer, pid: int, side: str) -> dict:
    served = server.served()
    return {
        "t": time.time(),
        "polls": served[side],
        "other": served["other"],
        "client_cpu": cpu_seconds(pid),
        "server_cpu": server.cpu_seconds(),
        "rss": proc_status(pid)["VmRSS"],
        "sockets": open_sockets(pid),
    }


def open_sockets(pid: int) -> int:
    """The process's open sockets: its HTTP connections (plus a handful of its own)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return count


def cycle(before: dict, after: dict, baseline: dict, count: int, interval: float) -> dict:
    scale = interval / (after["t"] - before["t"])  # the sleeps overshoot a little
    return {
        "polls": round((after["polls"] - before["polls"]) * scale),
        "other": after["other"] - before["other"],
        "client_cpu_ms": (after["client_cpu"] - before["client_cpu"]) * 1000 * scale,
        "server_cpu_ms": (after["server_cpu"] - before["server_cpu"]) * 1000 * scale,
        "rss_per_trigger_kib": (after["rss"] - baseline["rss"]) / count / 1024,
        "sockets": after["sockets"],
    }


#: both providers at each N, this one with and without its wake-up grid
DEFAULT_PLAN = [(side, n) for n in (100, 1000, 10000) for side in ("opsera", "opsera_unaligned", "dbt")]
#: the same wait as a bare aiohttp loop: the least a poll costs with aiohttp over TLS here, without and with a grid
FLOOR_PLAN = [(side, n) for n in (100, 1000, 10000) for side in ("aiohttp_floor", "aiohttp_floor_grid")]
#: the wake-up grid's goal, (N, poll interval): the provider with and without it against the un-aligned floor
WAKEUP_CASES = ((1000, 5.0), (200, 1.0))
#: (side, grid step): the floor also on a finer and a coarser grid than the provider's
WAKEUP_SIDES = (
    ("aiohttp_floor", 0.0),
    ("aiohttp_floor_grid", GRID_STEP / 2),
    ("aiohttp_floor_grid", GRID_STEP),
    ("aiohttp_floor_grid", GRID_STEP * 2),
    ("opsera_unaligned", 0.0),
    ("opsera", GRID_STEP / 2),
    ("opsera", GRID_STEP),
)


#: waits in a burst, (N, poll interval): started all at once (a mapped task's instances deferring
#: together) and started over one interval, the provider against dbt Cloud's and its pool unbounded
BURST_CASE = (200, 1.0)
BURST_SIDES = ("opsera", "opsera_unpooled", "dbt")


def burst_plan(repeats: int = 3) -> list[tuple]:
    """Each side started at once and spread over one interval, once per repeat, in an order that rotates."""
    n, interval = BURST_CASE
    runs = [(side, n, interval, 0.0, spread) for spread in (0.0, interval) for side in BURST_SIDES]
    return [run for repeat in range(repeats) for run in runs[repeat % len(runs) :] + runs[: repeat % len(runs)]]


def wakeup_plan(repeats: int = 3) -> list[tuple]:
    """Every variant once per repeat, in an order that rotates, so that a load that comes and goes hits them all."""
    plan = []
    for repeat in range(repeats):
        for n, interval in WAKEUP_CASES:
            shift = repeat % len(WAKEUP_SIDES)
            for side, step in WAKEUP_SIDES[shift:] + WAKEUP_SIDES[:shift]:
                plan.append((side, n, interval, step))
    return plan


def main(
    plan=DEFAULT_PLAN,
    interval=5.0,
    window=20.0,
    workers=2,
    completion_wait=30.0,
    spread=None,
    grid_step=GRID_STEP,
) -> dict:
    """Each plan entry is ``(side, N)``, ``(side, N, poll interval, grid step)`` or that and the start spread."""
    paths = make_certificates(out_dir() / "tls")
    results = []
    with BenchServer(paths["cert"], paths["key"], workers=workers) as server:
        env = environment(server, paths["ca"])
        for side, count, *timing in plan:
            every, step, *starts = timing or (interval, grid_step)
            step = (step or GRID_STEP) if side in ("opsera", "opsera_unpooled", "aiohttp_floor_grid") else 0.0
            start_spread = starts[0] if starts else spread
            try:
                results.append(run_one(server, env, side, count, every, window, completion_wait, start_spread, step))
            except Exception as error:  # one broken run must not cost the others
                say(f"  {side} N={count}: failed: {error}")
                results.append(
                    {"side": side, "n": count, "poll_interval": every, "error": f"{type(error).__name__}: {error}"[:500]}
                )
    return {"server_workers": workers, "poll_interval": interval, "window": window, "runs": results}


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--sides", nargs="+", default=["opsera", "dbt"])
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--spread", type=float, default=None, help="seconds over which triggers start (default: one interval)")
    parser.add_argument("--steps", type=float, nargs="+", default=[GRID_STEP], help="grid steps of the grid sides")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    plan_ = [
        (side, n, args.interval, step)
        for _ in range(args.repeats)
        for n in args.n
        for side in args.sides
        for step in (args.steps if side in ("opsera", "aiohttp_floor_grid") else [0.0])
    ]
    data = main(plan_, args.interval, args.window, args.workers, spread=args.spread)
    print(json.dumps(data, indent=1))
