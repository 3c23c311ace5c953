"""Registration with Airflow: the provider info, the connection form, and a light import."""

from __future__ import annotations

import importlib.resources
import json
import subprocess
import sys

import jsonschema
import pytest

from airflow_provider_opsera.client.connection_form import CONN_FIELDS, UI_FIELD_BEHAVIOUR
from airflow_provider_opsera.get_provider_info import get_provider_info


def test_provider_info_validates_against_airflows_own_schema():
    schema = json.loads((importlib.resources.files("airflow") / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_every_module_the_provider_info_names_imports():
    info = get_provider_info()
    modules = [m for section in ("operators", "sensors", "hooks", "triggers") for e in info[section]
               for m in e["python-modules"]]
    classes = [c["hook-class-name"] for c in info["connection-types"]] + info["extra-links"]
    for module in modules:
        importlib.import_module(module)
    for dotted in classes:
        module, _, name = dotted.rpartition(".")
        assert hasattr(importlib.import_module(module), name), dotted


def test_the_declared_form_and_the_hook_methods_agree():
    from airflow_provider_opsera.hooks import OpseraHook

    behaviour = OpseraHook.get_ui_field_behaviour()
    assert behaviour["hidden_fields"] == UI_FIELD_BEHAVIOUR["hidden-fields"]
    assert behaviour["relabeling"] == UI_FIELD_BEHAVIOUR["relabeling"]
    assert behaviour["placeholders"] == UI_FIELD_BEHAVIOUR["placeholders"]
    assert set(CONN_FIELDS) <= set(behaviour["placeholders"])  # every custom field has a placeholder


def test_the_declared_fields_and_the_legacy_form_widgets_agree():
    """Airflow before 3.2 builds the form from WTForms fields; newer Airflow ships without WTForms."""
    pytest.importorskip("wtforms")
    from airflow_provider_opsera.hooks import OpseraHook

    widgets = OpseraHook.get_connection_form_widgets()
    assert set(widgets) == set(CONN_FIELDS)
    for name, field in widgets.items():
        assert field.args[0] == CONN_FIELDS[name]["label"]
        assert field.kwargs["description"] == CONN_FIELDS[name]["description"]


def test_airflow_reads_the_form_from_the_provider_info():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    behaviour = manager.field_behaviours["opsera"]
    assert behaviour["relabeling"]["password"] == "Personal access token"
    widgets = manager.connection_form_widgets
    field = widgets["extra__opsera__portal_url"].field
    # Airflow 3.2+ reads the provider info (a param dict); older Airflow the hook's WTForms fields
    title = field["schema"]["title"] if isinstance(field, dict) else field.args[0]
    assert title == "Portal URL"
    assert set(CONN_FIELDS) == {k.split("__")[-1] for k in widgets if k.startswith("extra__opsera__")}


def test_airflow_cli_lists_the_provider():
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "get", "airflow-provider-opsera"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "airflow-provider-opsera" in result.stdout


def test_importing_operators_and_sensors_stays_light():
    """A DAG file that imports the provider must not pull in the HTTP stacks, nor Airflow's human-in-the-loop
    modules (the approval gate operator parses on Airflow 2.11, which has none)."""
    probe = (
        "import sys\n"
        "try:\n    import airflow.sdk\n"
        "except ImportError:  # Airflow 2\n    import airflow.models.baseoperator\n"
        "before = set(sys.modules)\n"
        "import airflow_provider_opsera\n"
        "from airflow_provider_opsera.operators import OpseraRunPipelineOperator\n"
        "from airflow_provider_opsera.operators import OpseraApprovalGateOperator, OpseraRejectPipelineOperator\n"
        "from airflow_provider_opsera.sensors import OpseraPipelineRunSensor, OpseraTaskSensor\n"
        "new = set(sys.modules) - before\n"
        "heavy = sorted(m for m in new if m.split('.')[0] in ('requests', 'aiohttp', 'tenacity', 'urllib3')\n"
        "               or 'hitl' in m or m.startswith('airflow.providers.standard'))\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
