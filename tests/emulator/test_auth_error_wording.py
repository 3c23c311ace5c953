"""401 and 403 messages over real sockets: a prefix-like start of the token, and the scope the token has."""

from __future__ import annotations

import json

import pytest

from airflow_provider_opsera.exceptions import OpseraAuthenticationError, OpseraPermissionError

from .support import BLANK


@pytest.fixture
def hook_with(emu, monkeypatch):
    from airflow_provider_opsera.hooks import OpseraHook

    def make(token: str):
        conn = emu.connection_dict()
        conn["password"] = token
        monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", json.dumps(conn))
        hook = OpseraHook()
        hook._sleep = lambda seconds: None
        return hook

    return make


def test_a_401_for_a_token_written_after_a_scheme_and_a_colon_says_what_to_put_in_the_password(emu, hook_with):
    token = emu.token("admin")
    with pytest.raises(OpseraAuthenticationError) as caught:
        hook_with(f"Bearer:{token}").get_pipeline(BLANK)
    message = str(caught.value)
    assert "401 unauthorised" in message
    assert "The Password field (\"Personal access token\" in the connection form) starts with 'Bearer:'" in message
    assert "Put only the token (from eyJ on) in the Password field" in message
    assert token not in message


def test_a_403_names_the_scope_of_a_registry_token_asked_for_a_pipeline(emu, hook_with):
    with pytest.raises(OpseraPermissionError) as caught:
        hook_with(emu.token("registry")).get_pipeline(BLANK)
    assert "the connection's token has scope registry;" in str(caught.value)


def test_a_403_for_a_scope_the_call_accepts_is_about_the_owners_role(emu, hook_with):
    with pytest.raises(OpseraPermissionError) as caught:
        hook_with(emu.token("pipeline")).list_pipelines()
    assert "the connection's token has scope pipeline, so the refusal is about its owner" in str(caught.value)
    assert "Power User role (or higher)" in str(caught.value)


def test_a_wait_in_the_triggerer_names_the_tokens_scope_and_a_pasted_prefix_too(emu, hook_with):
    import asyncio

    from airflow_provider_opsera.hooks.opsera_async import OpseraAsyncHook, close_shared_session

    async def read_with(token: str) -> str:
        hook_with(token)  # the connection the async hook reads
        try:
            await OpseraAsyncHook().get_pipeline(BLANK)
        except (OpseraAuthenticationError, OpseraPermissionError) as error:
            return str(error)
        finally:
            await close_shared_session()
        raise AssertionError("the call was not refused")

    assert "the connection's token has scope registry;" in asyncio.run(read_with(emu.token("registry")))
    token = emu.token("admin")
    message = asyncio.run(read_with(f"Bearer:{token}"))
    assert "starts with 'Bearer:'" in message
    assert token not in message
