"""``make demo``: the main job in real Airflow against the embedded Opsera emulator.

Starts the emulator, points ``opsera_default`` at it, runs ``example_opsera_pipeline``
with ``airflow dags test`` (one task waiting in the worker, one deferred to the
triggerer), shows the pipeline's console lines as they appear in the Airflow task log,
then runs ``example_opsera_pipeline_failure`` to show how a failed run reaches Airflow.
Exits non-zero when the main job does not succeed or the failure does not surface.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW = [sys.executable, "-m", "airflow"]
# structlog console lines: "<time> [<level>] <message> [<logger>] key=value ..."
LOG_LINE = re.compile(r"^(?P<time>\S+) \[(?P<level>\w+)\s*\] (?P<message>.*?)\s+\[(?P<logger>[\w.]+)\]")
PROVIDER_LOGGER = "airflow_provider_opsera"


def start_emulator(time_scale: float) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_opsera.emulator", "--port", "0", "--time-scale", str(time_scale)],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline() if process.stdout else ""
    match = re.search(r"http://[\d.]+:\d+", line)
    if not match:
        process.kill()
        raise SystemExit(f"the emulator did not start: {line!r}")
    return process, match.group(0)


def admin_connection(url: str) -> str:
    with urllib.request.urlopen(f"{url}/_emulator/tokens", timeout=10) as answer:
        token = json.load(answer)["admin"]
    return json.dumps(
        {"conn_type": "opsera", "host": url, "password": token, "extra": {"portal_url": f"{url}/portal"}}
    )


def show(line: str, task: list[str]) -> None:
    """Print what a reader of the task log cares about: the provider's lines, task by task."""
    if "[DAG TEST] starting task_id=" in line:
        task[0] = re.search(r"task_id=(\S+)", line).group(1)
        print(f"\n--- task {task[0]} (Airflow task log) ---", flush=True)
        return
    if "[DAG TEST] running trigger" in line:
        print("  (deferred: the wait runs in the triggerer, no worker slot held)", flush=True)
        return
    if re.match(r"^[\w.]+(Exception|Error)\b.*: ", line):  # the last line of a traceback
        print(f"           raised  {line[:600]}", flush=True)
        return
    match = LOG_LINE.match(line)
    if match and (PROVIDER_LOGGER in match["logger"] or match["level"] in ("error", "critical")):
        print(f"  {match['time'][11:19]} {match['level']:<7} {match['message'][:400]}", flush=True)
    elif "DagRun Finished" in line:
        state = re.search(r"state=(\w+)", line)
        print(f"\n=== DAG run finished: {state.group(1) if state else '?'} ===", flush=True)


def dags_test(dag_id: str, env: dict[str, str], raw_log: Path) -> str:
    """Run ``airflow dags test`` and return the DAG run's final state; the full output goes to ``raw_log``."""
    print(f"\n$ airflow dags test {dag_id}    (full output: {raw_log})", flush=True)
    process = subprocess.Popen(
        [*AIRFLOW, "dags", "test", dag_id], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    state, task = "unknown", [""]
    assert process.stdout is not None
    with raw_log.open("w") as raw:
        for line in process.stdout:
            raw.write(line)
            show(line.rstrip("\n"), task)
            if "DagRun Finished" in line and (found := re.search(r"state=(\w+)", line)):
                state = found.group(1)
    process.wait()
    return state


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="opsera-demo-airflow-"))
    emulator, url = start_emulator(time_scale=30)
    print(f"Opsera emulator at {url} (30 emulated seconds per second)")
    try:
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_OPSERA_DEFAULT": admin_connection(url),
            "OPSERA_EXAMPLE_POLL_INTERVAL": "1",
        }
        print("Preparing Airflow's database (SQLite) ...", flush=True)
        subprocess.run([*AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)

        main_state = dags_test("example_opsera_pipeline", env, home / "example_opsera_pipeline.log")
        failure_state = dags_test(
            "example_opsera_pipeline_failure", env, home / "example_opsera_pipeline_failure.log"
        )
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
    print(f"\nexample_opsera_pipeline: {main_state} (expected success)")
    print(f"example_opsera_pipeline_failure: {failure_state} (expected failed: the pipeline fails at its tests)")
    return 0 if (main_state, failure_state) == ("success", "failed") else 1


if __name__ == "__main__":
    sys.exit(main())
