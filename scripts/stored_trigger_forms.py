"""Collect the trigger arguments every earlier version of the provider could store, one example per distinct form.

Airflow stores what a trigger's ``serialize()`` returns and rebuilds the trigger from it in
the triggerer, perhaps after the provider was upgraded: today's triggers must load every
row an earlier version wrote. For each commit of this repository that changed the package,
the package as it was then is exported and imported in a process of its own; each trigger
is built with the values DAG authors, operators and sensors could hand it (one argument
varied at a time) and, where that version accepted them, what it serialised is kept. Values
are sorted into forms (a number below today's minimum, zero, not finite, text...); the
first example of each form is written to ``tests/emulator/stored_trigger_forms.json`` with the
commits that could write it.

    .venv/bin/python scripts/stored_trigger_forms.py
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "tests" / "emulator" / "stored_trigger_forms.json"
PACKAGE = "airflow_provider_opsera"

# Runs in a process whose import path starts with one commit's package: builds each trigger
# that version has with each probe value and prints what it serialised, one JSON line each.
PROBE = r"""
import inspect, json, math, sys, time
import airflow_provider_opsera
assert airflow_provider_opsera.__file__.startswith(sys.argv[1]), airflow_provider_opsera.__file__

PIPELINE_ID = "5fd56d90979ee048ee660624"
TASK_ID = "61a1b2c3d4e5f6a7b8c9d0e1"
TRIGGERS = [
    ("pipeline", "OpseraPipelineRunTrigger", {"pipeline_id": PIPELINE_ID, "run_count": 3}),
    ("task", "OpseraTaskTrigger", {"opsera_task_id": TASK_ID}),
    ("pipeline_events", "OpseraPipelineRunEventTrigger", {"pipeline_id": PIPELINE_ID}),
]
SECONDS = [30, 0.5, 0, -5, 100_000, 10**9, math.inf, math.nan, "10"]
PROBES = {
    "poll_interval": SECONDS,
    "timeout": [None, 3600, *SECONDS],
    "run_count": ["3", 3.0],
    "outcomes": [None, ["success"], "failed", ["stopped", "success"]],
    "opsera_conn_id": ["opsera_other"],
}

def plain(value):
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value

for module_name, class_name, ids in TRIGGERS:
    try:
        module = __import__(f"airflow_provider_opsera.triggers.{module_name}", fromlist=[class_name])
    except ImportError:
        continue
    trigger_class = getattr(module, class_name, None)
    if trigger_class is None:
        continue
    accepted = inspect.signature(trigger_class.__init__).parameters
    for name, values in PROBES.items():
        if name not in accepted and name not in ids:
            continue
        for value in values:
            kwargs = {**ids, name: value}
            before = time.time()
            try:
                classpath, stored = trigger_class(**kwargs).serialize()
            except Exception:
                continue  # this version refused the value: no row of it can hold it
            end_time = stored.get("end_time")
            if isinstance(end_time, (int, float)) and math.isfinite(end_time):
                stored["end_time"] = {"seconds_after_writing": round(end_time - before)}
            print(json.dumps({"classpath": classpath, "kwargs": {k: plain(v) for k, v in stored.items()}}))
"""


def commits() -> list[str]:
    """Every commit that changed the package, oldest first."""
    out = subprocess.run(
        ["git", "log", "--reverse", "--format=%H", "--", PACKAGE], cwd=REPO, check=True, capture_output=True, text=True
    )
    return out.stdout.split()


def export(commit: str, into: Path) -> bool:
    """The package as it was at ``commit``, in ``into``; False when it had no triggers yet."""
    listing = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", commit, f"{PACKAGE}/triggers"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    if not listing.strip():
        return False
    archive = subprocess.run(["git", "archive", commit, PACKAGE], cwd=REPO, check=True, capture_output=True).stdout
    with tempfile.TemporaryFile() as tar_file:
        tar_file.write(archive)
        tar_file.seek(0)
        with tarfile.open(fileobj=tar_file) as tar:
            tar.extractall(into, filter="data")
    return True


def probe(commit: str) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="opsera-trigger-forms-") as folder:
        if not export(commit, Path(folder)):
            return []
        env = {**os.environ, "PYTHONPATH": folder, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
        out = subprocess.run(
            [sys.executable, "-c", PROBE, folder], env=env, capture_output=True, text=True, cwd=folder, timeout=300
        )
        if out.returncode != 0:
            raise RuntimeError(f"probing {commit[:7]} failed:\n{out.stderr[-3000:]}")
        return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def _number_class(value: float, low: float, high: float, low_included: bool) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value < 0:
        return "negative"
    if value == 0:
        return "zero"
    if value < low or (value == low and not low_included):
        return "below today's minimum"
    if value > high:
        return "above today's maximum"
    return "in range"


def value_form(key: str, value: Any) -> str:
    """What kind of value a stored argument holds, in the terms today's checks use."""
    from airflow_provider_opsera.client import validation

    if isinstance(value, dict) and "float" in value:
        value = float(value["float"])
    if isinstance(value, dict) and "seconds_after_writing" in value:
        return "a time"
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "list"
    if key == "poll_interval":
        return _number_class(value, validation.MIN_POLL_INTERVAL, validation.MAX_POLL_INTERVAL, True)
    if key == "timeout":
        return _number_class(value, 0.0, validation.MAX_TIMEOUT, False)
    if key == "end_time":
        return "a time" if math.isfinite(value) else repr(value)
    return type(value).__name__


def main() -> None:
    forms: dict[str, dict[str, Any]] = {}
    for commit in commits():
        short = commit[:7]
        for row in probe(commit):
            form = {key: value_form(key, value) for key, value in sorted(row["kwargs"].items())}
            key = json.dumps([row["classpath"], form], sort_keys=True)
            entry = forms.setdefault(key, {**row, "form": form, "written_by": []})
            if short not in entry["written_by"]:
                entry["written_by"].append(short)
        print(f"{short}: {len(forms)} forms so far", file=sys.stderr)
    rows = sorted(forms.values(), key=lambda entry: (entry["classpath"], json.dumps(entry["form"], sort_keys=True)))
    for entry in rows:
        shas = entry.pop("written_by")
        entry["written_by"] = {"first": shas[0], "last": shas[-1], "commits": len(shas)}
    OUTPUT.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"{len(rows)} forms written to {OUTPUT.relative_to(REPO)}", file=sys.stderr)


if __name__ == "__main__":
    main()
