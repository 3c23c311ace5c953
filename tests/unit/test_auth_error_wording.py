"""What a person reads when the token is refused: a prefix pasted into the password; a 403 with the token's scope."""

from __future__ import annotations

import time

import pytest

from airflow_provider_opsera import exceptions as ex
from airflow_provider_opsera.client.connection import OpseraConnectionSettings
from tests.unit.conftest import BASE_URL, PIPELINE_ID, make_jwt

STATUS_URL = BASE_URL + "/api/v1/pipeline/status"
PIPELINES_URL = BASE_URL + "/api/v1/pipeline/pipelines"
FORBIDDEN = {"status_code": 403, "json": {"status": "failed", "message": "forbidden"}}


class Conn:
    """The fields of an Airflow connection that the settings read."""

    def __init__(self, password: str, **extra):
        self.conn_id, self.host, self.schema, self.port = "opsera_default", BASE_URL, None, None
        self.password = password
        self.extra_dejson = extra


def jwt(scope: str | None = "pipeline") -> str:
    return make_jwt(time.time() + 30 * 86400, **({"scope": scope} if scope else {}))


@pytest.fixture
def hook_for(set_conn):
    from airflow_provider_opsera.hooks import OpseraHook

    def make(password: str, **extra) -> OpseraHook:
        set_conn(host=BASE_URL, password=password, extra=extra)
        hook = OpseraHook()
        hook._sleep = lambda seconds: None
        return hook

    return make


# -- a prefix pasted into the Password ------------------------------------------------------------


@pytest.mark.parametrize("pasted", ["Bearer ", "bearer  ", "Authorization: Bearer ", "Token "])
def test_a_prefix_pasted_before_the_token_is_refused_when_the_settings_are_read(pasted):
    token = jwt()
    with pytest.raises(ex.OpseraConnectionConfigError) as caught:
        OpseraConnectionSettings.from_connection(Conn(pasted + token))
    message = str(caught.value)
    assert (
        f"Connection 'opsera_default': the Password field (\"Personal access token\" in the connection form) "
        f"starts with {pasted!r} before the token."
    ) in message
    assert "The provider writes the auth_prefix extra (\"Authorization prefix\"), here 'Bearer'," in message
    assert "Put only the token (from eyJ on) in the Password field" in message
    assert token not in message and token[:20] not in message


def test_a_password_with_whitespace_and_no_token_after_a_word_is_refused_without_quoting_it():
    with pytest.raises(ex.OpseraConnectionConfigError) as caught:
        OpseraConnectionSettings.from_connection(Conn("abc123\ndef456"))
    message = str(caught.value)
    assert "the Password field (\"Personal access token\" in the connection form) contains whitespace" in message
    assert "the auth_prefix extra (\"Authorization prefix\"), here 'Bearer'" in message
    assert "abc123" not in message


def test_with_auth_prefix_none_the_password_is_the_whole_header_and_may_hold_a_scheme():
    token = jwt()
    settings = OpseraConnectionSettings.from_connection(Conn(f"Bearer {token}", auth_prefix="none"))
    assert settings.authorization == f"Bearer {token}"


def test_nothing_is_sent_with_a_pasted_prefix(hook_for, requests_mock):
    with pytest.raises(ex.OpseraConnectionConfigError, match="starts with 'Bearer ' before the token"):
        hook_for(f"Bearer {jwt()}").get_pipeline_run_status(PIPELINE_ID, 1)
    assert requests_mock.call_count == 0


def test_a_401_for_a_token_with_a_prefix_like_start_says_so(hook_for, requests_mock):
    token = jwt()
    requests_mock.post(STATUS_URL, status_code=401, json={"status": "failed", "message": "malformed token"})
    with pytest.raises(ex.OpseraAuthenticationError) as caught:
        hook_for(f"Bearer:{token}").get_pipeline_run_status(PIPELINE_ID, 1)
    message = str(caught.value)
    assert "401 unauthorised (malformed token)" in message
    assert "The Password field (\"Personal access token\" in the connection form) starts with 'Bearer:'" in message
    assert "the Authorization header becomes 'Bearer Bearer:eyJ…'" in message
    assert "auth_prefix" in message
    assert token not in message


def test_a_401_for_a_plain_token_keeps_the_usual_advice(hook_for, requests_mock):
    requests_mock.post(STATUS_URL, status_code=401, json={"status": "failed", "message": "jwt expired"})
    with pytest.raises(ex.OpseraAuthenticationError) as caught:
        hook_for(jwt()).get_pipeline_run_status(PIPELINE_ID, 1)
    assert "The token is missing, malformed or expired" in str(caught.value)
    assert "starts with" not in str(caught.value)


# -- a 403 names the token's own scope ------------------------------------------------------------


@pytest.mark.parametrize(
    "scope, words",
    [
        (
            "registry",
            "The token's scope must be one of: api, api-readonly, pipeline, pipeline-readonly; "
            "the connection's token has scope registry; and its owner needs",
        ),
        ("registry tasks", "the connection's token has scopes registry tasks;"),
        (None, "(the connection's token does not say which it has)"),
    ],
)
def test_a_403_names_the_scope_the_token_has_when_the_call_does_not_accept_it(hook_for, requests_mock, scope, words):
    requests_mock.post(STATUS_URL, **FORBIDDEN)
    with pytest.raises(ex.OpseraPermissionError) as caught:
        hook_for(jwt(scope)).get_pipeline_run_status(PIPELINE_ID, 1)
    assert words in str(caught.value)


def test_a_403_for_a_scope_the_call_accepts_points_at_the_owners_role(hook_for, requests_mock):
    requests_mock.get(PIPELINES_URL, **FORBIDDEN)
    with pytest.raises(ex.OpseraPermissionError) as caught:
        hook_for(jwt("pipeline")).list_pipelines()
    assert (
        "the connection's token has scope pipeline, so the refusal is about its owner, "
        "who needs the Power User role (or higher) in Opsera"
    ) in str(caught.value)
