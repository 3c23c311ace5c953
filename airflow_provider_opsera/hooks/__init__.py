from __future__ import annotations

from airflow_provider_opsera.hooks.opsera import OpseraHook

__all__ = ["OpseraHook"]
