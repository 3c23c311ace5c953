"""Measure how the emulator holds up under many concurrent status pollers.

    python -m airflow_provider_opsera.emulator.loadcheck --clients 2000 --seconds 10
    python -m airflow_provider_opsera.emulator.loadcheck --clients 2000 --interval 1

Without ``--url`` it starts an emulator in a separate process (so the clients and
the server do not share one interpreter), starts a run of the Blank Template
pipeline, and has every client poll ``POST /api/v1/pipeline/status`` on its own
keep-alive connection. ``--interval 0`` polls back to back (peak throughput); a
positive interval models DAG tasks polling on a schedule (latency while thousands
of clients wait). Prints requests/s and latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import time
from contextlib import contextmanager

PIPELINE_ID = "5fd56d90979ee048ee660624"
LISTENING = re.compile(r"listening on (http://\S+)")


def process_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process (Linux /proc; None elsewhere)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


@contextmanager
def emulator_process():
    """An emulator subprocess on a free port; yields its base URL and pid."""
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_opsera.emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        line = process.stdout.readline()
        match = LISTENING.search(line)
        if not match:
            raise RuntimeError(f"the emulator did not start: {line!r}")
        yield match.group(1), process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


async def measure(url: str, clients: int, seconds: float, interval: float, token_name: str) -> dict:
    import aiohttp

    from .server import raise_open_file_limit

    raise_open_file_limit()
    # One connection per client, never shared: this is what thousands of waiting
    # Airflow tasks or triggers look like to the server.
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as setup:
        async with setup.get(f"{url}/_emulator/tokens") as response:
            token = (await response.json())[token_name]
        headers = {"Authorization": f"Bearer {token}"}
        async with setup.post(f"{url}/api/v1/pipeline/run", json={"pipelineId": PIPELINE_ID}, headers=headers) as r:
            started = await r.json()
    run_count = started.get("runCount", 1)
    body = json.dumps({"pipelineId": PIPELINE_ID, "runCount": run_count}).encode()
    status_url = f"{url}/api/v1/pipeline/status"

    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def poller(session):
        nonlocal errors
        if interval:
            await asyncio.sleep(random.uniform(0, interval))  # spread the first polls
        while time.monotonic() < deadline:
            began = time.perf_counter()
            try:
                async with session.post(status_url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
            except (aiohttp.ClientError, asyncio.TimeoutError):
                errors += 1
            latencies.append(time.perf_counter() - began)
            if interval:
                await asyncio.sleep(interval)

    sessions = [
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1), timeout=timeout, headers={"Content-Type": "application/json"}
        )
        for _ in range(clients)
    ]
    began = time.monotonic()
    try:
        await asyncio.gather(*(poller(session) for session in sessions))
    finally:
        await asyncio.gather(*(session.close() for session in sessions))
    elapsed = time.monotonic() - began
    latencies.sort()
    return {
        "clients": clients,
        "interval_s": interval,
        "seconds": round(elapsed, 2),
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opsera-emulator-loadcheck", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running emulator (default: start one in a subprocess)")
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=0.0, help="seconds each client waits between polls")
    parser.add_argument("--token", default="admin", help="seeded token name to poll with")
    args = parser.parse_args(argv)

    def run(url: str) -> dict:
        return asyncio.run(measure(url, args.clients, args.seconds, args.interval, args.token))

    if args.url:
        result = run(args.url.rstrip("/"))
    else:
        with emulator_process() as (url, pid):
            cpu_before = process_cpu_seconds(pid)
            result = run(url)
            cpu_after = process_cpu_seconds(pid)
        if cpu_before is not None and cpu_after is not None and result["requests"]:
            # The server's own cost, which a busy machine does not inflate much.
            result["server_cpu_s"] = round(cpu_after - cpu_before, 2)
            result["server_cpu_us_per_request"] = round((cpu_after - cpu_before) / result["requests"] * 1e6)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
