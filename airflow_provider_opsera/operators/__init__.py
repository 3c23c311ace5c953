"""Opsera operators. Classes load on first use, so importing this package stays cheap."""

from __future__ import annotations

from airflow_provider_opsera._lazy import lazy_exports

_MODULE_OF = {
    "OpseraRunPipelineOperator": "pipeline",
    "OpseraStopPipelineOperator": "pipeline",
    "OpseraResetPipelineOperator": "pipeline",
    "OpseraApprovePipelineOperator": "approval",
    "OpseraRejectPipelineOperator": "approval",
    "OpseraApprovalGateOperator": "approval_gate",
    "OpseraUpdateToolOperator": "registry",
    "OpseraCreateProjectOperator": "data",
    "OpseraCreatePersonOperator": "data",
    "OpseraCreateOrgHierarchyOperator": "data",
    "OpseraCreateMappingOperator": "data",
    "OpseraAuditLogsOperator": "audit",
}

__all__ = sorted(_MODULE_OF)

__getattr__ = lazy_exports(__name__, _MODULE_OF)
