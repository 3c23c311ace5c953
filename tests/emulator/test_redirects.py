"""A redirect is never followed, by either client: not for a run request, not to another origin, not at all."""

from __future__ import annotations

import pytest

from airflow_provider_opsera.exceptions import OpseraRedirectError

from .loopback import CLIENTS, PIPELINE_ID, RecordingServer, call_with, json_answer, use_connection


def redirect_to(location: str, status: int = 307):
    def answer(handler) -> None:
        handler.send_response(status)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


@pytest.mark.parametrize("client", CLIENTS)
def test_a_run_request_redirected_elsewhere_is_not_resent_there(client, monkeypatch):
    with (
        RecordingServer(json_answer({"status": "executed", "runCount": 7})) as elsewhere,
        RecordingServer(redirect_to(elsewhere.url + "/api/v1/pipeline/run")) as opsera,
    ):
        use_connection(monkeypatch, opsera.url)
        with pytest.raises(OpseraRedirectError) as caught:
            call_with(client, "pipeline_run", json={"pipelineId": PIPELINE_ID})

    message = str(caught.value)
    assert "307" in message and elsewhere.url + "/api/v1/pipeline/run" in message
    assert "Host" in message  # which setting to change
    assert elsewhere.requests == []
    assert len(opsera.requests) == 1 and caught.value.sleeps == []  # not retried
    assert caught.value.status_code == 307


@pytest.mark.parametrize("client", CLIENTS)
def test_a_read_redirected_within_its_own_origin_is_refused_too(client, monkeypatch):
    with RecordingServer(redirect_to("/api/v1/registry/tools/", status=301)) as opsera:
        use_connection(monkeypatch, opsera.url)
        with pytest.raises(OpseraRedirectError, match="301, a redirect to '/api/v1/registry/tools/'") as caught:
            call_with(client, "tool_list")
    assert [request["line"].split()[1] for request in opsera.requests] == ["/api/v1/registry/tools"]
    assert caught.value.sleeps == []
