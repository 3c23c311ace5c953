"""opsera-doctor over real sockets: a tenant like the contract, one that deviates from it, and narrow tokens."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from airflow_provider_opsera.client.api import ENDPOINTS
from airflow_provider_opsera.doctor.__main__ import main
from airflow_provider_opsera.doctor.checks import READ_CALLS
from airflow_provider_opsera.hooks.opsera import OpseraHook

from .support import BLANK, NIGHTLY_SYNC

REPO_ROOT = Path(__file__).resolve().parents[2]
DEVIATING = {
    "rename": {"pipeline": {"workflow.run_count": "runCount"}, "log_record": {"step_name": "stepName"}},
    "statuses": {"success": "completed"},
}


@pytest.fixture
def tenant(emu, monkeypatch):
    """The emulator with one finished pipeline run and one finished task run, as the connection ``opsera_default``."""
    monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", emu.connection_json("admin"))
    hook = OpseraHook()
    hook.run_pipeline(BLANK)
    emu.start_task_run(NIGHTLY_SYNC)
    emu.advance(300)
    hook.close()
    return emu


def doctor(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out + err


def verdicts(output: str) -> dict[str, str]:
    """fact -> its verdict line, for the lines after the header."""
    facts = ("pipeline summary", "run status", "log record", "console output", "task path", "task status", "status",
             "actions path")
    found = {}
    for line in output.splitlines():
        if line.startswith(facts):
            fact, _, rest = line.partition("  ")
            found[fact.strip()] = rest.strip()
    return found


def test_the_emulator_tenant_is_confirmed_with_read_calls_only(tenant, capsys):
    before = tenant.request_counts()
    code, out = doctor(capsys)
    assert code == 0, out
    found = verdicts(out)
    assert len(found) == 11 and all(v.startswith("confirmed") for v in found.values()), found
    assert found["actions path POST /api/v2/actions"].startswith("confirmed (status answers object: ")
    assert f"Pipeline examined: {BLANK}" in out and f"Task examined: {NIGHTLY_SYNC}" in out
    assert "console output records" in found and "api_response.consoleLog as string" in found["console output records"]
    sent = {key for key, count in tenant.request_counts().items() if count > before.get(key, 0)}
    assert sent == {f"{ENDPOINTS[name].method} {ENDPOINTS[name].path}" for name in READ_CALLS}
    assert tenant.token("admin") not in out


def test_a_tenant_that_deviates_from_the_contract_differs(tenant, capsys):
    tenant.deviate(**DEVIATING)
    code, out = doctor(capsys, "--pipeline-name", "Blank Template")
    assert code == 1
    found = verdicts(out)
    assert found["pipeline summary fields"].startswith(
        "differs: workflow.run_count is missing (there is workflow.runCount: renamed?)"
    )
    assert found["log record fields"].startswith("differs: step_name is missing (there is stepName: renamed?)")
    assert found["status strings"].startswith("differs: saw 'completed'")
    assert "Blank Template" not in out.split("\n", 5)[-1]  # the findings show no record values


def test_show_values_masks_secret_looking_values_and_never_shows_the_token(tenant, capsys):
    code, out = doctor(capsys, "--pipeline-id", BLANK, "--show-values")
    assert code == 0
    assert '"Blank Template"' in out
    assert tenant.token("admin") not in out and "eyJ" not in out


def test_a_token_without_the_list_role_checks_what_it_can(tenant, capsys, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", tenant.connection_json("pipeline"))  # dev user, pipeline scope
    code, out = doctor(capsys, "--pipeline-id", BLANK)
    assert code == 0, out
    found = verdicts(out)
    assert "Pipeline list: not readable" in out and "Power User" in out
    assert found["pipeline summary fields"].startswith("confirmed")
    assert found["task path GET /api/v1/task/tasks"].startswith("could not check")
    assert "scopes pipeline" in out


def test_an_expired_or_unknown_token_cannot_run(tenant, capsys, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", tenant.connection_json("expired"))
    code, out = doctor(capsys)
    assert code == 2 and "expired" in out and tenant.token("expired") not in out
    connection = tenant.connection_dict("admin")
    connection["password"] = connection["password"][:-4] + "AAAA"  # a bad signature: Opsera answers 401
    monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", json.dumps(connection))
    code, out = doctor(capsys)
    assert code == 2 and "401" in out and connection["password"] not in out


def test_as_a_module_from_the_environment(tenant):
    env = {**os.environ, "AIRFLOW_CONN_OPSERA_DEFAULT": tenant.connection_json("admin")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "airflow_provider_opsera.doctor", "--task-id", NIGHTLY_SYNC],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "11 confirmed, 0 differ, 0 could not be checked." in done.stdout
    assert tenant.token("admin") not in done.stdout + done.stderr


def test_the_console_command_is_declared():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["opsera-doctor"].partition(":")
    assert getattr(importlib.import_module(module), function) is main


def test_deviations_through_the_admin_route(tenant):
    url = f"{tenant.url}/_emulator/deviations"
    assert requests.post(url, json={"rename": {"nope": {}}}, timeout=10).status_code == 400
    assert requests.post(url, json=DEVIATING, timeout=10).json() == DEVIATING
    hook = OpseraHook()
    summary = hook.get_pipeline(BLANK)
    assert summary["workflow"]["runCount"] == 1 and "run_count" not in summary["workflow"]
    assert summary["workflow"]["last_step"]["status"] == "completed"
    assert hook.get_pipeline_run_status(BLANK, 1)["status"] == "completed"
    assert hook.get_task_status(NIGHTLY_SYNC) == "completed"
    assert {record["status"] for record in hook.get_pipeline_logs(BLANK, 1)} >= {"completed", "running"}
    assert all("stepName" in record for record in hook.get_pipeline_logs(BLANK, 1))
    hook.close()
    tenant.reset()
    assert requests.get(url, timeout=10).json() == {"rename": {}, "statuses": {}}
