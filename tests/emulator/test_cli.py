"""The command line: the listening line comes fast, flags work, SIGTERM stops it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import requests

from .support import BLANK

REPO_ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"^Opsera emulator listening on (http://127\.0\.0\.1:(\d+))$")


def _start(*args: str) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_opsera.emulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _read_line(process: subprocess.Popen, timeout: float) -> str:
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert lines, f"no output within {timeout} s"
    return lines[0].rstrip("\n")


def _stop(process: subprocess.Popen) -> int:
    process.terminate()
    try:
        return process.wait(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()


def test_the_emulator_starts_without_importing_airflow():
    """It must start fast on a machine busy with Airflow: nothing of Airflow is imported to run it."""
    probe = (
        "import sys, airflow_provider_opsera.emulator.__main__, airflow_provider_opsera.emulator.app; "
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    answer = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert answer.stdout.strip() == "[]", answer.stdout


def test_listening_line_then_serves():
    process = _start("--port", "0")
    try:
        line = _read_line(process, timeout=30)
        match = LISTENING.match(line)
        assert match, line
        url = match.group(1)
        assert requests.get(f"{url}/_emulator/health", timeout=5).json() == {"status": "ok"}
        token = requests.get(f"{url}/_emulator/tokens", timeout=5).json()["admin"]
        run = requests.post(
            f"{url}/api/v1/pipeline/run", json={"pipelineId": BLANK},
            headers={"Authorization": f"Bearer {token}"}, timeout=5,
        )
        assert run.json()["status"] == "executed"
    finally:
        assert _stop(process) == 0


def test_flags_connection_fault_state_and_clock(tmp_path):
    state_file = tmp_path / "state.json"
    process = _start(
        "--port", "0", "--print-connection", "--manual-clock", "--state", str(state_file),
        "--fault", "POST /api/v1/pipeline/status:status:status=503,count=1", "--fault-seed", "3",
    )
    try:
        url = LISTENING.match(_read_line(process, timeout=5)).group(1)
        connection = json.loads(_read_line(process, timeout=5))
        assert connection["conn_type"] == "opsera"
        assert connection["host"] == url
        assert connection["extra"] == {"portal_url": f"{url}/portal"}
        headers = {"Authorization": f"Bearer {connection['password']}"}
        status = lambda: requests.post(  # noqa: E731
            f"{url}/api/v1/pipeline/status", json={"pipelineId": BLANK}, headers=headers, timeout=5
        )
        assert status().status_code == 503
        assert status().status_code == 200
        requests.post(f"{url}/api/v1/pipeline/run", json={"pipelineId": BLANK}, headers=headers, timeout=5)
        assert requests.get(f"{url}/_emulator/clock", timeout=5).json()["mode"] == "manual"
        assert state_file.exists()
    finally:
        assert _stop(process) == 0
    saved = json.loads(state_file.read_text())
    assert len(saved["store"]["pipelines"][BLANK]["runs"]) == 1


def test_bad_fault_flag_exits_2():
    process = _start("--port", "0", "--fault", "nonsense")
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 2
    assert "--fault" in stderr


def test_unreadable_seed_exits_1_with_a_reason(tmp_path):
    process = _start("--port", "0", "--seed", str(tmp_path / "missing.json"))
    stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 1
    assert "missing.json" in stderr
    assert stdout == ""
