"""The timing a deferrable sensor hands to its trigger, checked when the sensor is built.

Airflow accepts any ``poke_interval`` and ``timeout`` of 0 or more; deferred, they become the
trigger's poll interval and deadline, where 0 means a tight polling loop or a wait that ends at once.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_opsera.client import validation


def check_trigger_timing(sensor: Any) -> None:
    validation.poll_interval(sensor.poke_interval, "poke_interval")
    validation.timeout(sensor.timeout, "timeout", allow_none=False)
