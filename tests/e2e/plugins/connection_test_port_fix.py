"""Loaded by the end-to-end Airflow only (``[core] plugins_folder``).

Airflow 3.3.2's "Test Connection" button sends ``port: 0`` for a connection that has no
port; the API compares it with the stored NULL, finds a "different destination" and
answers 400 Bad Request for every portless connection type (Opsera's included).
Upstream fixed it in the API (apache/airflow pull request 73298: a port of 0 means "no
port" in that comparison). This applies the same one-line fix inside the API server so
the browser test exercises the provider's side of the Test button; it does nothing on an
Airflow that already has the fix.
"""

from __future__ import annotations

import sys

from airflow.plugins_manager import AirflowPlugin

_ROUTES = "airflow.api_fastapi.core_api.routes.public.connections"


def _apply() -> bool:
    if _ROUTES not in sys.modules and "api-server" not in sys.argv:
        return False  # another component: it serves no Test button
    import importlib

    module = importlib.import_module(_ROUTES)
    if not hasattr(module, "_same_endpoint"):
        return False
    original = module._same_endpoint
    if original(0, None):
        return False  # this Airflow already treats port 0 as "no port"

    def same_endpoint(requested, stored):
        def norm(value):
            return None if value in (None, "", 0) else value

        return norm(requested) == norm(stored)

    module._same_endpoint = same_endpoint
    return True


PATCHED = _apply()


class OpseraE2ETestConnectionPortFix(AirflowPlugin):
    name = "opsera_e2e_test_connection_port_fix"
