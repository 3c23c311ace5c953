from __future__ import annotations

from airflow_provider_opsera.links.opsera import PIPELINE_RUN_URL_KEY, OpseraPipelineRunLink

__all__ = ["PIPELINE_RUN_URL_KEY", "OpseraPipelineRunLink"]
