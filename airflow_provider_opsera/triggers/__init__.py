"""Opsera triggers (they run in Airflow's triggerer)."""

from __future__ import annotations

from airflow_provider_opsera._lazy import lazy_exports

_MODULE_OF = {
    "OpseraApprovalGateTrigger": "approval_gate",
    "OpseraGateAnswerTrigger": "approval_gate",
    "OpseraPipelineRunEventTrigger": "pipeline_events",
    "OpseraPipelineRunTrigger": "pipeline",
    "OpseraTaskTrigger": "task",
}

__all__ = sorted(_MODULE_OF)

__getattr__ = lazy_exports(__name__, _MODULE_OF)
