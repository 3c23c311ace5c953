"""Airflow 2.11 and 3.x expose the same building blocks from different modules.

Everything version-dependent is imported here once, so the rest of the package
reads the same on every supported Airflow.
"""

from __future__ import annotations

try:  # Airflow 3: the task SDK
    from airflow.sdk import BaseOperator, BaseOperatorLink, BaseSensorOperator

    AIRFLOW_V3 = True
except ImportError:  # Airflow 2.11
    from airflow.models import BaseOperator, BaseOperatorLink  # type: ignore[no-redef]
    from airflow.sensors.base import BaseSensorOperator  # type: ignore[no-redef]

    AIRFLOW_V3 = False

# Airflow 3.0's task SDK has the operators but not yet the hook base, the config or the
# exceptions: those come from the core modules there, as on Airflow 2.
try:
    from airflow.sdk import BaseHook
except ImportError:
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef]

try:
    from airflow.sdk import conf
except ImportError:
    from airflow.configuration import conf  # type: ignore[no-redef]

try:
    from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
except ImportError:
    from airflow.exceptions import AirflowException, AirflowFailException, AirflowSkipException  # type: ignore[no-redef]

try:  # not every task SDK version exports them; the core module always has them
    from airflow.sdk.exceptions import AirflowSensorTimeout
except ImportError:
    from airflow.exceptions import AirflowSensorTimeout  # type: ignore[no-redef]
try:
    from airflow.sdk.exceptions import AirflowTaskTimeout
except ImportError:
    from airflow.exceptions import AirflowTaskTimeout  # type: ignore[no-redef]
try:  # what defer() raises
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:
    from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]


def mask_secret(secret: str) -> None:
    """Register a value with Airflow's secrets masker so no log line shows it."""
    try:
        from airflow.sdk.log import mask_secret as _mask
    except ImportError:
        from airflow.utils.log.secrets_masker import mask_secret as _mask  # type: ignore[no-redef]
    _mask(secret)


def default_deferrable() -> bool:
    return conf.getboolean("operators", "default_deferrable", fallback=False)


__all__ = [
    "AIRFLOW_V3",
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "AirflowTaskTimeout",
    "BaseHook",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "TaskDeferred",
    "conf",
    "default_deferrable",
    "mask_secret",
]
