"""Opsera sensors. Classes load on first use, so importing this package stays cheap."""

from __future__ import annotations

from airflow_provider_opsera._lazy import lazy_exports

_MODULE_OF = {
    "OpseraPipelineRunSensor": "pipeline",
    "OpseraTaskSensor": "task",
}

__all__ = sorted(_MODULE_OF)

__getattr__ = lazy_exports(__name__, _MODULE_OF)
