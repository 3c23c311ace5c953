"""Plain HTTP to a host off this machine is refused before any name lookup or socket, in both clients.

The emulator listens on loopback; a name that is not loopback by its text (``opsera.internal``)
is pointed at it by a name lookup this test controls and records.
"""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from airflow_provider_opsera.exceptions import OpseraConnectionConfigError
from airflow_provider_opsera.hooks import OpseraHook
from airflow_provider_opsera.hooks.opsera_async import OpseraAsyncHook, close_shared_session

from .support import BLANK

NAME = "opsera.internal"


@pytest.fixture
def looked_up(monkeypatch):
    """The host names resolved from now on; ``opsera.internal`` resolves to 127.0.0.1."""
    names: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        names.append(host)
        return real("127.0.0.1" if host == NAME else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(variable, raising=False)
    return names


def use_connection(monkeypatch, emulator, **extra) -> None:
    conn = emulator.connection_dict("admin")
    conn["host"] = f"http://{NAME}:{emulator.port}"
    conn["extra"] = {**conn["extra"], **extra}
    monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", json.dumps(conn))


def read_async(call):
    async def main():
        try:
            return await call(OpseraAsyncHook())
        finally:
            await close_shared_session()

    return asyncio.run(main())


def sent(emulator) -> int:
    return sum(emulator.request_counts().values())


def test_both_clients_refuse_plain_http_to_a_named_host_before_looking_it_up(emulator, monkeypatch, looked_up):
    use_connection(monkeypatch, emulator)
    with pytest.raises(OpseraConnectionConfigError, match='"allow_plain_http": true') as sync_refusal:
        OpseraHook().get_pipeline(BLANK)
    with pytest.raises(OpseraConnectionConfigError, match='"allow_plain_http": true'):
        read_async(lambda hook: hook.get_pipeline(BLANK))
    assert "unencrypted" in str(sync_refusal.value)
    assert NAME not in looked_up
    assert sent(emulator) == 0


def test_the_extra_lets_plain_http_through_on_purpose(emulator, monkeypatch, looked_up):
    use_connection(monkeypatch, emulator, allow_plain_http=True)
    assert OpseraHook().get_pipeline(BLANK)["_id"] == BLANK
    assert read_async(lambda hook: hook.get_pipeline(BLANK))["_id"] == BLANK
    assert looked_up.count(NAME) >= 2  # both clients went to the server by that name
    assert emulator.request_count("POST", "/api/v1/pipeline/summary") == 2


def test_the_emulator_on_loopback_needs_no_permission(opsera_conn):
    assert OpseraHook().get_pipeline(BLANK)["_id"] == BLANK
    assert read_async(lambda hook: hook.get_pipeline(BLANK))["_id"] == BLANK
