"""Fixtures for hook tests against requests-mock: a connection with a real-looking JWT."""

from __future__ import annotations

import base64
import json
import time

import pytest

BASE_URL = "https://opsera.test"
PIPELINE_ID = "5fd56d90979ee048ee660624"
TOOL_ID = "60a1b2c3d4e5f6a7b8c9d0e1"
TASK_ID = "61a1b2c3d4e5f6a7b8c9d0e1"


def make_jwt(exp: float | None, **claims) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    payload = {"sub": "a0a0a0a0a0a0a0a0a0a0a0a0", **claims}
    if exp is not None:
        payload["exp"] = int(exp)
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(payload)}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk"


@pytest.fixture
def token() -> str:
    return make_jwt(time.time() + 30 * 86400)


@pytest.fixture
def set_conn(monkeypatch):
    """Define ``opsera_default`` (or another id) through the environment."""

    def _set(conn_id: str = "opsera_default", **fields) -> None:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "opsera", **fields}))

    return _set


@pytest.fixture
def hook(set_conn, token):
    from airflow_provider_opsera.hooks import OpseraHook

    set_conn(host=BASE_URL, password=token, extra={"portal_url": "https://portal.opsera.test"})
    hook = OpseraHook()
    hook.sleeps = []
    hook._sleep = hook.sleeps.append  # a fake clock: retries record their waits instead of sleeping
    return hook


@pytest.fixture
def trigger_clock(monkeypatch):
    """A fake clock for the polling triggers: their sleeps move it instead of waiting."""
    from airflow_provider_opsera.triggers.polling import OpseraPollingTrigger
    from tests.unit.pipeline_fakes import FakeClock

    clock = FakeClock()
    monkeypatch.setattr(OpseraPollingTrigger, "_clock", staticmethod(clock.time))
    monkeypatch.setattr(OpseraPollingTrigger, "_sleep", staticmethod(clock.async_sleep))
    return clock
