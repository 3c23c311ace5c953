"""A failed TLS handshake is one attempt, never ambiguous, and says what is wrong and which setting fixes it."""

from __future__ import annotations

import datetime as dt
import shutil
import ssl
import subprocess
import warnings

import pytest

from airflow_provider_opsera.exceptions import OpseraAmbiguousRequestError, OpseraConnectionConfigError, OpseraTLSError
from airflow_provider_opsera.hooks import transport

from .loopback import CLIENTS, PIPELINE_ID, RecordingServer, SocketServer, call_with, json_answer, use_connection

trustme = pytest.importorskip("trustme")

STATUS_BODY = {"pipelineId": PIPELINE_ID, "runCount": 1}


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


def tls_server(ca, *identities: str, **validity):
    """Accepts connections and attempts the handshake with a certificate of ``ca`` for ``identities``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*identities, **validity).configure_cert(context)

    def handle(sock) -> None:
        with context.wrap_socket(sock, server_side=True):
            pass

    return SocketServer(handle)


def plain_http_server():
    """Answers whatever arrives, a TLS ClientHello included, in plain HTTP."""

    def handle(sock) -> None:
        sock.recv(4096)
        sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    return SocketServer(handle)


def ca_bundle(ca, tmp_path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


CASES = {
    "untrusted": ("is not trusted", "'verify' to the path"),
    "expired": ("has expired", "must be renewed"),
    "wrong name": ("issued for another name", "Host to a name the certificate"),
    "plain HTTP": ("in plain HTTP", "Is the scheme wrong?"),
}


def server_for(case: str, ca):
    if case == "expired":
        past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
        return tls_server(ca, "127.0.0.1", not_before=past - dt.timedelta(days=30), not_after=past)
    if case == "wrong name":
        return tls_server(ca, "opsera.test")
    if case == "plain HTTP":
        return plain_http_server()
    return tls_server(ca, "127.0.0.1")


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("case", list(CASES))
def test_a_failed_handshake_is_named_and_tried_once(case, client, ca, tmp_path, monkeypatch):
    what, fix = CASES[case]
    with server_for(case, ca) as server:
        # the untrusted case trusts only the system's CAs; the others trust the test CA
        extra = {} if case == "untrusted" else {"verify": ca_bundle(ca, tmp_path)}
        use_connection(monkeypatch, f"https://127.0.0.1:{server.port}", **extra)
        with pytest.raises(OpseraTLSError) as caught:
            call_with(client, "pipeline_status", json=STATUS_BODY)
    message = str(caught.value)
    assert what in message and fix in message, message
    assert "was not sent" in message
    assert server.connections == 1 and caught.value.sleeps == []


@pytest.mark.parametrize("client", CLIENTS)
def test_a_run_request_refused_by_tls_is_not_ambiguous(client, ca, monkeypatch):
    with server_for("untrusted", ca) as server:
        use_connection(monkeypatch, f"https://127.0.0.1:{server.port}")
        with pytest.raises(OpseraTLSError) as caught:
            call_with(client, "pipeline_run", json={"pipelineId": PIPELINE_ID})
    assert not isinstance(caught.value, OpseraAmbiguousRequestError)
    assert caught.value.may_have_reached_server is False
    assert server.connections == 1


def test_unchecked_certificates_are_warned_about_once_per_client_kind(ca, monkeypatch, captured):
    monkeypatch.setattr(transport, "_warned_unverified", set())
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with RecordingServer(json_answer({"status": "running"}), tls=context) as server:
        use_connection(monkeypatch, server.url, verify="false")
        with warnings.catch_warnings(record=True) as raised:
            warnings.simplefilter("always")
            for client in CLIENTS:
                for _ in range(3):
                    assert call_with(client, "pipeline_status", json=STATUS_BODY)[0] == {"status": "running"}
    assert len(server.requests) == 6
    assert captured().count("are not checked (connection extra 'verify' is false)") == 2
    assert [w for w in raised if "Unverified HTTPS request" in str(w.message)] == []


@pytest.mark.parametrize("client", CLIENTS)
def test_a_ca_bundle_that_cannot_be_read_is_named_before_anything_is_sent(client, ca, tmp_path, monkeypatch):
    with server_for("untrusted", ca) as server:
        use_connection(monkeypatch, f"https://127.0.0.1:{server.port}", verify=str(tmp_path / "missing-ca.pem"))
        with pytest.raises(OpseraConnectionConfigError, match="extra 'verify' is .*missing-ca.pem.* no CA bundle"):
            call_with(client, "pipeline_status", json=STATUS_BODY)
    assert server.connections == 0


@pytest.mark.parametrize("client", CLIENTS)
def test_a_directory_of_cas_is_a_ca_bundle_too(client, ca, tmp_path, monkeypatch):
    if shutil.which("openssl") is None:
        pytest.skip("naming certificates in a CA directory by their hash needs the openssl command")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_bundle(ca, tmp_path)
    subprocess.run(["openssl", "rehash", str(tmp_path)], check=True, capture_output=True)
    with RecordingServer(json_answer({"status": "running"}), tls=context) as server:
        use_connection(monkeypatch, server.url, verify=str(tmp_path))
        assert call_with(client, "pipeline_status", json=STATUS_BODY)[0] == {"status": "running"}


@pytest.mark.parametrize("client", CLIENTS)
def test_a_host_without_a_scheme_that_speaks_plain_http_is_told_https_was_assumed(client, monkeypatch):
    with plain_http_server() as server:
        use_connection(monkeypatch, f"127.0.0.1:{server.port}")
        with pytest.raises(OpseraTLSError) as caught:
            call_with(client, "pipeline_status", json=STATUS_BODY)
    assert "has no scheme, so https:// was assumed" in str(caught.value), caught.value
    assert server.connections == 1 and caught.value.sleeps == []
