"""The connection's Host: what becomes the API base URL, and what is refused with the field to fix."""

from __future__ import annotations

import pytest

from airflow_provider_opsera import exceptions as ex
from airflow_provider_opsera.client.base_url import is_loopback


def settings_for(set_conn, **fields):
    from airflow_provider_opsera.hooks import OpseraHook

    set_conn(**{"password": "t", **fields})
    return OpseraHook().settings


@pytest.mark.parametrize(
    "fields, base_url, assumed",
    [
        ({"host": "https://app.opsera.io"}, "https://app.opsera.io", False),
        ({"host": "https://app.opsera.io/"}, "https://app.opsera.io", False),
        ({"host": "HTTPS://app.opsera.io:8443"}, "https://app.opsera.io:8443", False),
        ({"host": "app.opsera.io"}, "https://app.opsera.io", True),
        ({"host": "app.opsera.io", "schema": "https"}, "https://app.opsera.io", False),
        ({"host": "app.opsera.io", "port": 8443}, "https://app.opsera.io:8443", True),
        ({"host": "http://127.0.0.1:8765"}, "http://127.0.0.1:8765", False),
        ({"host": "http://127.1.2.3"}, "http://127.1.2.3", False),
        ({"host": "http://localhost:8765"}, "http://localhost:8765", False),
        ({"host": "http://[::1]:8765"}, "http://[::1]:8765", False),
        ({"host": "127.0.0.1:8765", "schema": "http"}, "http://127.0.0.1:8765", False),
        ({"host": "http://opsera.internal", "extra": {"allow_plain_http": True}}, "http://opsera.internal", False),
        ({"host": "http://10.0.0.5:80", "extra": {"allow_plain_http": "true"}}, "http://10.0.0.5:80", False),
    ],
)
def test_a_host_becomes_the_base_url(set_conn, fields, base_url, assumed):
    settings = settings_for(set_conn, **fields)
    assert settings.base_url == base_url
    assert settings.scheme_assumed is assumed


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"host": "https://app.opsera.io/api/v1"}, "give only the API base URL"),
        ({"host": "https://app.opsera.io/api/v2/"}, "give only the API base URL"),
        ({"host": "app.opsera.io/api/v1"}, "give only the API base URL"),
        ({"host": "https://app.opsera.io/tenant"}, "give only the API base URL"),
        ({"host": "https://app.opsera.io?x=1"}, "give only the API base URL"),
        ({"host": "ftp://app.opsera.io"}, "has the scheme 'ftp'"),
        ({"host": "app.opsera.io", "schema": "opsera"}, "Schema field is 'opsera'"),
        ({"host": "https://app.opsera.io:99999"}, "port that is not a number"),
        ({"host": "https://app opsera.io"}, "names no valid server"),
        ({"host": "https://"}, "names no valid server"),
        ({"host": "http://opsera.internal:8765"}, '"allow_plain_http": true'),
        ({"host": "http://10.0.0.5"}, "token would cross the network unencrypted"),
        ({"host": "opsera.internal", "schema": "http"}, '"allow_plain_http": true'),
        ({"host": "http://localhost.example.com"}, '"allow_plain_http": true'),
        ({"host": "http://opsera.internal", "extra": {"allow_plain_http": "maybe"}}, "must be true or false"),
    ],
)
def test_a_wrong_host_is_refused_naming_what_to_change(set_conn, requests_mock, fields, words):
    from airflow_provider_opsera.hooks import OpseraHook

    set_conn(**{"password": "t", **fields})
    with pytest.raises(ex.OpseraConnectionConfigError, match=words) as refusal:
        OpseraHook().get_pipeline("5fd56d90979ee048ee660624")
    assert "Nothing was sent" in str(refusal.value) or "must be true or false" in str(refusal.value)
    assert requests_mock.call_count == 0


def test_credentials_in_the_host_are_refused_without_repeating_them(set_conn):
    with pytest.raises(ex.OpseraConnectionConfigError, match="carries a user name or password") as refusal:
        settings_for(set_conn, host="https://someone:s3cret@app.opsera.io")
    assert "s3cret" not in str(refusal.value)
    assert "https://app.opsera.io" in str(refusal.value)


@pytest.mark.parametrize(
    "name, loopback",
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("128.0.0.1", False),
        ("10.0.0.1", False),
        ("localhost.example.com", False),
        ("opsera.internal", False),
        ("0.0.0.0", False),
    ],
)
def test_loopback_is_judged_by_the_name_alone(name, loopback):
    assert is_loopback(name) is loopback
