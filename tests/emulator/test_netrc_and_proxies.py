"""The token always goes out, whatever ~/.netrc says; both clients take proxies from the environment alike."""

from __future__ import annotations

import pytest

from .loopback import CLIENTS, PIPELINE_ID, TOKEN, RecordingServer, call_with, json_answer, use_connection

STATUS = {"pipelineId": PIPELINE_ID, "runCount": 1}
ANSWER = {"status": "running"}


@pytest.fixture
def no_proxy_environment(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


@pytest.fixture
def netrc_for_loopback(tmp_path, monkeypatch):
    """A netrc entry for the host the tests talk to, found through NETRC and through HOME."""
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1\n  login someone\n  password netrc-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    return netrc


@pytest.mark.parametrize("client", CLIENTS)
def test_the_token_wins_over_a_netrc_entry_for_the_host(client, netrc_for_loopback, no_proxy_environment):
    with RecordingServer(json_answer(ANSWER)) as opsera:
        use_connection(no_proxy_environment, opsera.url)
        assert call_with(client, "pipeline_status", json=STATUS)[0] == ANSWER
    assert opsera.requests[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("client", CLIENTS)
def test_the_environment_proxy_carries_the_request_with_the_token(client, netrc_for_loopback, no_proxy_environment):
    with RecordingServer(json_answer(ANSWER)) as proxy, RecordingServer(json_answer(ANSWER)) as opsera:
        no_proxy_environment.setenv("HTTP_PROXY", proxy.url)
        use_connection(no_proxy_environment, opsera.url)
        assert call_with(client, "pipeline_status", json=STATUS)[0] == ANSWER
    assert [r["line"] for r in proxy.requests] == [f"POST {opsera.url}/api/v1/pipeline/status HTTP/1.1"]
    assert proxy.requests[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert opsera.requests == []


@pytest.mark.parametrize("client", CLIENTS)
def test_no_proxy_sends_the_request_directly(client, no_proxy_environment):
    with RecordingServer(json_answer(ANSWER)) as proxy, RecordingServer(json_answer(ANSWER)) as opsera:
        no_proxy_environment.setenv("HTTP_PROXY", proxy.url)
        no_proxy_environment.setenv("NO_PROXY", "localhost,127.0.0.1")
        use_connection(no_proxy_environment, opsera.url)
        assert call_with(client, "pipeline_status", json=STATUS)[0] == ANSWER
    assert proxy.requests == [] and len(opsera.requests) == 1


@pytest.mark.parametrize("client", CLIENTS)
def test_the_connection_proxy_wins_over_the_environment(client, no_proxy_environment):
    with (
        RecordingServer(json_answer(ANSWER)) as environment_proxy,
        RecordingServer(json_answer(ANSWER)) as connection_proxy,
        RecordingServer(json_answer(ANSWER)) as opsera,
    ):
        no_proxy_environment.setenv("HTTP_PROXY", environment_proxy.url)
        use_connection(no_proxy_environment, opsera.url, proxies=f'{{"http": "{connection_proxy.url}"}}')
        assert call_with(client, "pipeline_status", json=STATUS)[0] == ANSWER
    assert environment_proxy.requests == [] and opsera.requests == []
    assert [r["line"].split()[1] for r in connection_proxy.requests] == [f"{opsera.url}/api/v1/pipeline/status"]
