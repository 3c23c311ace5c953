"""``airflow connections test`` for real, in a subprocess, against the emulator over real sockets.

Airflow's CLI prints only "Connection success!" for a passing test and silences all logging unless
``--verbose`` is given; with it, the provider's diagnosis (logged by the hook) reaches the person.
The CLI also refuses to test anything unless ``[core] test_connection`` is ``Enabled``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

CONN_ID = "opsera_cli"
CLI_TIMEOUT = 180  # seconds: Airflow's CLI takes a few to start on a busy machine


@pytest.fixture
def tokens(emu):
    """The emulator's tokens as a user gets them: ``GET /_emulator/tokens``."""
    return requests.get(f"{emu.url}/_emulator/tokens", timeout=10).json()


def airflow_connections_test(emu, token: str, *args: str, test_connection: str = "Enabled") -> tuple[int, str]:
    conn = emu.connection_dict()
    conn["password"] = token
    env = {
        **os.environ,
        f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(conn),
        "AIRFLOW__CORE__TEST_CONNECTION": test_connection,
    }
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "connections", "test", CONN_ID, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    return done.returncode, done.stdout + done.stderr


def test_with_verbose_the_cli_shows_what_a_narrow_token_cannot_do(emu, tokens):
    code, output = airflow_connections_test(emu, tokens["pipeline"], "--verbose")
    assert code == 0, output
    assert "Connection success!" in output
    diagnosis = next(line for line in output.splitlines() if "Opsera connection 'opsera_cli'" in line)
    assert "warning" in diagnosis.lower()
    assert "scope pipeline; role below Power User" in diagnosis
    assert "cannot list pipelines (its owner lacks the Power User role): runs by id only" in diagnosis
    assert "It has no access to the tool registry, tasks, audit logs or Insights data." in diagnosis
    assert tokens["pipeline"] not in output


def test_with_verbose_the_cli_shows_a_token_expiring_in_days(emu):
    minted = requests.post(
        f"{emu.url}/_emulator/tokens",
        json={"name": "three-days", "scopes": ["api"], "expires_in": 3 * 86400 + 600},
        timeout=10,
    ).json()
    code, output = airflow_connections_test(emu, minted["token"], "--verbose")
    assert code == 0, output
    diagnosis = next(line for line in output.splitlines() if "Opsera connection 'opsera_cli'" in line)
    assert "warning" in diagnosis.lower()
    assert "expires in 3.0 days" in diagnosis and "renew it soon" in diagnosis


def test_without_verbose_airflow_prints_only_success(emu, tokens):
    """What the docs must tell: the CLI hides every log line of a passing test unless --verbose is given."""
    code, output = airflow_connections_test(emu, tokens["pipeline"])
    assert code == 0, output
    assert "Connection success!" in output
    assert "cannot list pipelines" not in output


def test_a_failing_test_shows_the_reason_without_verbose(emu, tokens):
    code, output = airflow_connections_test(emu, f"Bearer {tokens['admin']}")
    assert code == 1, output
    output = " ".join(output.split())  # Airflow's console wraps the message to the terminal's width
    assert "Connection failed!" in output
    assert "starts with 'Bearer ' before the token" in output
    assert "Personal access token" in output
    assert "auth_prefix" in output
    assert emu.request_counts() == {}  # refused before anything was sent
    assert tokens["admin"] not in output


def test_the_cli_tests_nothing_unless_test_connection_is_enabled(emu, tokens):
    code, output = airflow_connections_test(emu, tokens["admin"], test_connection="Disabled")
    assert code == 1, output
    assert "Testing connections is disabled" in output
    assert emu.request_counts() == {}
