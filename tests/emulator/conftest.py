"""Fixtures: a fresh emulator per test on a manual clock, and API clients for its tokens."""

from __future__ import annotations

import pytest

from airflow_provider_opsera.emulator import OpseraEmulator

from .support import Client


@pytest.fixture
def emu():
    with OpseraEmulator(clock="manual") as emulator:
        yield emulator


@pytest.fixture
def client_for(emu):
    clients = []

    def make(token_name: str | None = "admin", prefix: str = "Bearer ") -> Client:
        token = emu.token(token_name) if token_name else None
        client = Client(emu.url, token, prefix)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.session.close()


@pytest.fixture
def admin(client_for) -> Client:
    return client_for("admin")
