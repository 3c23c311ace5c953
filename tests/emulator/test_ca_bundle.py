"""The CA bundle of the ``verify`` extra: a file that is none is named before anything is sent, in both clients;
a bundle is read once per version of its file, and the async client reads it off the event loop."""

from __future__ import annotations

import asyncio
import ssl
import threading

import pytest

from airflow_provider_opsera.exceptions import OpseraTLSError
from airflow_provider_opsera.hooks import transport
from airflow_provider_opsera.hooks.opsera_async import OpseraAsyncHook, close_shared_session

from .loopback import CLIENTS, PIPELINE_ID, RecordingServer, call_with, json_answer, use_connection

trustme = pytest.importorskip("trustme")

STATUS_BODY = {"pipelineId": PIPELINE_ID, "runCount": 1}


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def tls_server(ca):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with RecordingServer(json_answer({"status": "running"}), tls=context) as server:
        yield server


@pytest.fixture
def bundle_reads(monkeypatch):
    """Each time a CA bundle is read: the thread it was read in."""
    monkeypatch.setattr(transport, "CA_BUNDLES", transport.CABundles())
    threads: list[int] = []
    read = transport._read_bundle

    def counted(path: str) -> ssl.SSLContext:
        threads.append(threading.get_ident())
        return read(path)

    monkeypatch.setattr(transport, "_read_bundle", counted)
    return threads


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("content", [b"not a certificate\n", b""])
def test_a_file_that_holds_no_certificate_is_named_before_anything_is_sent(
    client, content, tls_server, tmp_path, monkeypatch
):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(content)
    use_connection(monkeypatch, tls_server.url, verify=str(bundle))
    with pytest.raises(OpseraTLSError) as caught:
        call_with(client, "pipeline_run", json={"pipelineId": PIPELINE_ID})
    message = str(caught.value)
    assert message.startswith(f"The connection extra 'verify' is {str(bundle)!r}, which holds no CA certificate (")
    assert "nothing was sent" in message and "or to true for the system's CAs" in message
    assert tls_server.requests == [] and caught.value.sleeps == []
    assert not caught.value.may_have_reached_server


def test_the_async_client_reads_a_bundle_once_and_off_the_event_loop(ca, tls_server, tmp_path, monkeypatch, bundle_reads):
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    use_connection(monkeypatch, tls_server.url, verify=str(bundle))

    async def polls() -> tuple[list, int]:
        hook = OpseraAsyncHook()
        try:
            answers = [await hook.get_pipeline_run_status(PIPELINE_ID, 1) for _ in range(5)]
        finally:
            await close_shared_session()
        return answers, threading.get_ident()

    answers, loop_thread = asyncio.run(polls())
    assert answers == [{"status": "running"}] * 5
    assert len(bundle_reads) == 1 and bundle_reads[0] != loop_thread


@pytest.mark.parametrize("client", CLIENTS)
def test_a_bundle_is_read_again_only_when_its_file_changed(client, ca, tls_server, tmp_path, monkeypatch, bundle_reads):
    monkeypatch.setattr(transport, "CA_BUNDLE_RECHECK", 0.0)  # look at the file at every request
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    use_connection(monkeypatch, tls_server.url, verify=str(bundle))
    for _ in range(3):
        call_with(client, "pipeline_status", json=STATUS_BODY)
    assert len(bundle_reads) == 1
    bundle.write_bytes(ca.cert_pem.bytes() + b"\n")  # renewed: another size
    call_with(client, "pipeline_status", json=STATUS_BODY)
    assert len(bundle_reads) == 2
