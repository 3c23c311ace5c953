"""A big Insights list: 5,000 people synced by ``OpseraCreatePersonOperator`` against the emulator.

The emulator runs in its own process (its CPU does not compete with the client's for one
interpreter lock) with a ``latency`` fault of 100 ms on every API request, as a tenant far
away would answer. Each case starts from the emulator's seed and syncs new people:
``max_concurrency=1`` (one record after another, as before) and the default. The sequential
case takes about 17 minutes for 5,000 people at 100 ms (two requests per new person), so by
default it runs on the first 500 and its time is scaled to 5,000 (``--sequential-people
5000`` runs it in full). After each case the emulator's store is read back: every person must
be there exactly once, and the creates counted by the emulator must equal the people created.

Run as ``python -m bench.batch_sync RESULT_JSON [--people N] [--sequential-people N]
[--concurrency N ...]``; the operator's log goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter

from bench.common import ROOT, say

LATENCY = 0.1
CREATE = "POST /api/v2/data/people"
READ = "GET /api/v2/data/people/{email}"


class Emulator:
    """``opsera-emulator`` in a child process, driven through its admin routes."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "airflow_provider_opsera.emulator", "--port", "0", "--print-connection"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        listening = self.process.stdout.readline()
        if "listening on" not in listening:
            self.process.kill()
            raise RuntimeError(f"the emulator did not start: {listening!r}")
        self.url = listening.rsplit(" ", 1)[1].strip()
        self.connection = self.process.stdout.readline().strip()

    def admin(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())

    def fresh(self, latency: float) -> None:
        self.admin("POST", "/_emulator/reset")
        self.admin("POST", "/_emulator/faults", {"route": "*", "kind": "latency", "seconds": latency})

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class CapturedOutput:
    """Everything the process writes to stdout and stderr meanwhile (where Airflow's task logging writes
    outside a task), kept in a file: the lines and bytes a task log would receive."""

    def __enter__(self) -> CapturedOutput:
        sys.stdout.flush()
        sys.stderr.flush()
        self.file = tempfile.TemporaryFile()
        self.saved = [os.dup(1), os.dup(2)]
        os.dup2(self.file.fileno(), 1)
        os.dup2(self.file.fileno(), 2)
        return self

    def __exit__(self, *exc_info) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, saved in zip((1, 2), self.saved):
            os.dup2(saved, fd)
            os.close(saved)
        self.file.seek(0)
        self.text = self.file.read().decode(errors="replace")
        self.file.close()
        sys.stdout.write(self.text)  # kept in the part's log file

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


def people(n: int) -> list[dict]:
    return [
        {"email": f"person{i:05d}@bench.example.com", "firstName": f"Person {i}", "team": f"Team {i % 40}"}
        for i in range(n)
    ]


def run_case(emu: Emulator, records: list[dict], concurrency: int | None, latency: float) -> dict:
    from airflow_provider_opsera.operators import OpseraCreatePersonOperator

    emu.fresh(latency)
    kwargs = {} if concurrency is None else {"max_concurrency": concurrency}
    operator = OpseraCreatePersonOperator(task_id="sync_people", person=records, **kwargs)
    with CapturedOutput() as output:
        cpu, started = time.process_time(), time.perf_counter()
        summary = operator.execute({"ti": None})
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    counts = emu.admin("GET", "/_emulator/requests")["counts"]
    stored = [p for p in emu.admin("GET", "/_emulator/state")["store"]["people"] if "@bench." in p["email"]]
    full_list = json.dumps(stored)  # what return_records=True would push: every record as Opsera holds it
    copies = Counter(p["email"] for p in stored)
    wanted = {r["email"] for r in records}
    return {
        "people": len(records),
        "max_concurrency": operator.max_concurrency,
        "seconds": seconds,
        "client_cpu_seconds": cpu,
        "records_per_second": len(records) / seconds,
        "requests": dict(counts),
        "created": summary["created"],
        "failed": summary["failed"],
        "stored_once": sum(1 for email in wanted if copies[email] == 1),
        "stored_twice_or_more": sum(1 for count in copies.values() if count > 1),
        "missing": len(wanted - set(copies)),
        "creates_sent": counts.get(CREATE, 0),
        "stored": {p["email"]: {k: v for k, v in p.items() if k not in ("createdAt", "updatedAt", "_id")}
                   for p in stored},
        "log_lines": len(output.lines),
        "log_bytes": len(output.text.encode()),
        "progress_lines": sum(" done (" in line for line in output.lines),
        "last_log_lines": output.lines[-3:],
        "xcom_summary_bytes": len(json.dumps(summary)),
        "xcom_full_list_bytes": len(full_list),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("result", nargs="?")
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--sequential-people", type=int, default=500)
    parser.add_argument("--concurrency", type=int, nargs="*", default=[],
                        help="further max_concurrency values to measure on all the people")
    parser.add_argument("--latency", type=float, default=LATENCY)
    args = parser.parse_args(argv)
    # Stopped from outside (make bench interrupted), still stop the emulator child.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    emu = Emulator()
    os.environ["AIRFLOW_CONN_OPSERA_DEFAULT"] = emu.connection
    everyone = people(args.people)
    cases = []
    try:
        say(f"batch: default max_concurrency, {args.people:,} people ...")
        default = run_case(emu, everyone, None, args.latency)
        cases.append({"case": "default", **default})
        say(f"batch: max_concurrency=1, {args.sequential_people:,} people ...")
        sequential = run_case(emu, everyone[: args.sequential_people], 1, args.latency)
        cases.append({"case": "sequential", **sequential})
        for concurrency in args.concurrency:
            say(f"batch: max_concurrency={concurrency}, {args.people:,} people ...")
            cases.append({"case": f"max_concurrency={concurrency}", **run_case(emu, everyone, concurrency,
                                                                                args.latency)})
    finally:
        emu.stop()
    same = all(default["stored"].get(email) == record for email, record in sequential["stored"].items())
    scale = args.people / args.sequential_people
    for case in cases:
        del case["stored"]
    data = {
        "latency_s": args.latency,
        "people": args.people,
        "sequential_people": args.sequential_people,
        "sequential_scaled_seconds": sequential["seconds"] * scale,
        "ratio": default["seconds"] / (sequential["seconds"] * scale),
        "same_records": same,
        "cases": cases,
    }
    if args.result:
        with open(args.result, "w") as out:
            json.dump(data, out, indent=2)
    return data


if __name__ == "__main__":
    main()
