"""Runs the benchmarks and writes BENCHMARKS.md: ``python -m bench.run [--only PART ...]``.

Parts (each saves bench/out/<part>.json; the report uses the latest of each):

* ``imports``   import cost of the provider's operators and sensors vs dbt Cloud's (~2 min)
* ``triggerer`` N waiting triggers in one event loop vs dbt Cloud's, N = 100, 1,000, 10,000 (~5 min)
* ``floor``     the same waits as a bare aiohttp loop, no Airflow, N = 100, 1,000, 10,000 (~2 min)
* ``wakeups``   the wake-up grid: the provider with and without it against the bare loop, interleaved, 3 times (~15 min)
* ``burst``     200 waits polled every second, started at once and spread over a second, vs dbt Cloud's (~8 min)
* ``hooks``     client CPU per status request, the async client vs bare aiohttp vs dbt Cloud's hook (~1 min)
* ``requests``  HTTP requests per waited run, and console records into the task log (~5 s)
* ``batch``     5,000 people synced against the emulator at 100 ms latency, max_concurrency=1 vs the default, 8 and 16 (~8 min)
* ``real-triggerer`` N = 1,000 and 5,000 waits in one real ``airflow triggerer`` on PostgreSQL, against sleeping
  triggers and dbt Cloud's, at 5 s and 30 s polling, and each of the provider's optimisations off (~50 min)
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import platform
import subprocess
import sys
import time
from importlib import metadata

from bench.common import ROOT, out_dir, save, say

PARTS = ("imports", "triggerer", "floor", "wakeups", "burst", "hooks", "requests", "batch", "real-triggerer")
PACKAGES = (
    "apache-airflow",
    "apache-airflow-task-sdk",
    "airflow-provider-opsera",
    "apache-airflow-providers-dbt-cloud",
    "apache-airflow-providers-http",
    "aiohttp",
    "tenacity",
)


def provider_sources() -> str:
    """A digest of the provider's sources: a run that straddles a code change must say so."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "airflow_provider_opsera").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def machine() -> dict:
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        total_kib = int(meminfo.readline().split()[1])
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "cores": os.cpu_count(),
        "memory_gib": total_kib / 2**20,
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
        "commit": commit,
        "provider_sources": provider_sources(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": os.getloadavg(),
    }


def run_part(part: str) -> dict:
    started = time.monotonic()
    load_before = os.getloadavg()
    if part == "imports":
        from bench import import_cost

        data = import_cost.main()
    elif part == "triggerer":
        from bench import triggerer

        data = triggerer.main()
    elif part == "floor":
        from bench import triggerer

        data = triggerer.main(triggerer.FLOOR_PLAN)
    elif part == "wakeups":
        from bench import triggerer

        data = triggerer.main(triggerer.wakeup_plan(), window=10.0)
    elif part == "burst":
        from airflow_provider_opsera.hooks.opsera_async import POOL_SIZE
        from bench import triggerer

        data = {**triggerer.main(triggerer.burst_plan(), window=10.0), "pool_size": POOL_SIZE}
    elif part == "hooks":
        from bench import hook_overhead

        data = hook_overhead.main()
    elif part == "requests":
        result = out_dir() / "requests.raw.json"
        with open(out_dir() / "requests.log", "wb") as log:
            subprocess.run(
                [sys.executable, "-m", "bench.requests_per_run", str(result)],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
            )
        import json

        data = json.loads(result.read_text())
    elif part == "batch":
        result = out_dir() / "batch.raw.json"
        with open(out_dir() / "batch.log", "wb") as log:
            subprocess.run(
                [sys.executable, "-m", "bench.batch_sync", str(result), "--concurrency", "8", "16"],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
            )
        import json

        data = json.loads(result.read_text())
    elif part == "real-triggerer":
        from bench import real_triggerer

        data = real_triggerer.main()
    else:
        raise ValueError(part)
    data["seconds"] = time.monotonic() - started
    data["load_average_before"] = load_before
    data["load_average_after"] = os.getloadavg()
    save(part.replace("-", "_"), data)
    say(f"{part}: {data['seconds']:.0f} s")
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--report-only", action="store_true", help="rewrite BENCHMARKS.md from bench/out/*.json")
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW_HOME", str(out_dir() / "airflow-home"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    if not args.report_only:
        measured = machine()
        save("machine", measured)
        for part in args.only:
            say(f"{part} ...")
            run_part(part)
        if provider_sources() != measured["provider_sources"]:
            measured["provider_changed_during_run"] = True
            save("machine", measured)
            say("WARNING: the provider's sources changed during the run; its results mix two versions")
    from bench import report

    path = report.write()
    say(f"wrote {path}")


if __name__ == "__main__":
    main()
