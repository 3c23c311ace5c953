"""The Airflow connection (conn_type ``opsera``) that points at an emulator."""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

CONN_TYPE = "opsera"


def connection_dict(base_url: str, token: str) -> dict:
    return {
        "conn_type": CONN_TYPE,
        "host": base_url,
        "password": token,
        "extra": {"portal_url": f"{base_url}/portal"},
    }


def connection_json(base_url: str, token: str) -> str:
    """For ``AIRFLOW_CONN_OPSERA_DEFAULT`` (Airflow reads JSON connections)."""
    return json.dumps(connection_dict(base_url, token))


def connection_uri(base_url: str, token: str) -> str:
    """Airflow's URI form. The host keeps its scheme the way Airflow writes it
    (``opsera://http://:TOKEN@127.0.0.1%3A8765/?...``), so it parses back to
    host ``http://127.0.0.1:8765``."""
    scheme, _, address = base_url.partition("://")
    extra = urlencode({"portal_url": f"{base_url}/portal"})
    return f"{CONN_TYPE}://{scheme}://:{quote(token, safe='')}@{quote(address, safe='')}/?{extra}"
