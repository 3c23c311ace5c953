"""What Airflow's providers manager reads about this package (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_provider_opsera import __version__
from airflow_provider_opsera.client.connection_form import CONN_FIELDS, CONN_TYPE, HOOK_NAME, UI_FIELD_BEHAVIOUR

_PKG = "airflow_provider_opsera"
INTEGRATION = "Opsera"


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-opsera",
        "name": "Opsera",
        "description": "Run and wait on Opsera pipelines, keep Opsera's tool registry and Insights data "
        "in step, wait on Opsera tasks and export its audit logs.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://www.opsera.io/",
                "tags": ["software"],
            }
        ],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    f"{_PKG}.operators.pipeline",
                    f"{_PKG}.operators.approval",
                    f"{_PKG}.operators.approval_gate",
                    f"{_PKG}.operators.registry",
                    f"{_PKG}.operators.data",
                    f"{_PKG}.operators.audit",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [f"{_PKG}.sensors.pipeline", f"{_PKG}.sensors.task"],
            }
        ],
        "hooks": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [f"{_PKG}.hooks.opsera", f"{_PKG}.hooks.opsera_async"],
            }
        ],
        "triggers": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    f"{_PKG}.triggers.pipeline",
                    f"{_PKG}.triggers.approval_gate",
                    f"{_PKG}.triggers.pipeline_events",
                    f"{_PKG}.triggers.task",
                ],
            }
        ],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": f"{_PKG}.hooks.opsera.OpseraHook",
                "hook-name": HOOK_NAME,
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
        "extra-links": [f"{_PKG}.links.opsera.OpseraPipelineRunLink"],
    }
