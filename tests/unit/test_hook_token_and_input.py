"""The token's lifecycle and secrecy, the connection's settings, and input refused before sending."""

from __future__ import annotations

import time

import pytest

from airflow_provider_opsera import exceptions as ex
from tests.unit.conftest import BASE_URL, PIPELINE_ID, TOOL_ID, make_jwt


def test_an_expired_token_is_refused_without_sending(set_conn, requests_mock):
    from airflow_provider_opsera.hooks import OpseraHook

    set_conn(host=BASE_URL, password=make_jwt(time.time() - 3600))
    with pytest.raises(ex.OpseraTokenExpiredError, match=r"expired at \d{4}-\d\d-\d\d \d\d:\d\d UTC"):
        OpseraHook().get_pipeline(PIPELINE_ID)
    assert requests_mock.call_count == 0


def test_a_token_expiring_within_a_week_warns_with_its_date(set_conn, requests_mock, task_log):
    from airflow_provider_opsera.hooks import OpseraHook

    set_conn(host=BASE_URL, password=make_jwt(time.time() + 3 * 86400))
    requests_mock.post(BASE_URL + "/api/v1/pipeline/summary", json={})
    OpseraHook().get_pipeline(PIPELINE_ID)
    assert "expires in 3.0 days" in task_log.text()


def test_a_token_that_is_not_a_jwt_is_still_sent(set_conn, requests_mock):
    from airflow_provider_opsera.hooks import OpseraHook

    set_conn(host=BASE_URL, password="opaque-token-value")
    adapter = requests_mock.post(BASE_URL + "/api/v1/pipeline/summary", json={})
    OpseraHook().get_pipeline(PIPELINE_ID)
    assert adapter.last_request.headers["Authorization"] == "Bearer opaque-token-value"


def test_the_token_never_appears_in_logs_or_errors(set_conn, requests_mock, task_log):
    """Opsera (or a proxy) may echo the Authorization header back: nothing of it may surface."""
    from airflow_provider_opsera.hooks import OpseraHook

    token = make_jwt(time.time() + 2 * 86400)
    set_conn(host=BASE_URL, password=token)
    echo = f'{{"message": "invalid token {token}", "headers": {{"Authorization": "Bearer {token}"}}}}'
    requests_mock.post(BASE_URL + "/api/v1/pipeline/status", status_code=401, text=echo)
    requests_mock.post(BASE_URL + "/api/v1/pipeline/summary", status_code=503, text=f"<html>{token}</html>")
    hook = OpseraHook()
    hook._sleep = lambda seconds: None
    messages = []
    for call in (lambda: hook.get_pipeline_run_status(PIPELINE_ID, 1), lambda: hook.get_pipeline(PIPELINE_ID)):
        with pytest.raises(ex.OpseraError) as caught:
            call()
        messages.append(str(caught.value) + repr(caught.value) + repr(caught.value.__cause__))
    everything = task_log.text() + "".join(messages) + repr(hook.settings)
    signature = token.rsplit(".", 1)[1]
    assert token not in everything
    assert token.split(".")[1] not in everything
    assert signature not in everything


def test_the_token_is_registered_with_the_secrets_masker(hook, monkeypatch):
    masked = []
    monkeypatch.setattr("airflow_provider_opsera.hooks.opsera.mask_secret", masked.append)
    settings = hook.settings
    assert settings.token in masked
    assert f"Bearer {settings.token}" in masked


# -- the connection --


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"password": "t"}, "has no Host"),
        ({"host": BASE_URL}, "has no Password"),
        ({"host": BASE_URL, "password": "t", "extra": {"timeout": "soon"}}, "'timeout' must be a positive number"),
        ({"host": BASE_URL, "password": "t", "extra": {"proxies": "[1]"}}, "'proxies' must be a JSON object"),
    ],
)
def test_a_misconfigured_connection_says_what_to_fix(set_conn, requests_mock, fields, words):
    from airflow_provider_opsera.hooks import OpseraHook

    set_conn(**fields)
    with pytest.raises(ex.OpseraConnectionConfigError, match=words):
        OpseraHook().get_pipeline(PIPELINE_ID)
    assert requests_mock.call_count == 0


# -- input checked before any request --


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda h: h.run_pipeline("not-an-id"), "pipeline_id must be a 24-character hexadecimal"),
        (lambda h: h.run_pipeline(None), "pipeline_id must be a 24-character hexadecimal"),
        (lambda h: h.get_pipeline_run_status(PIPELINE_ID, 0), "run_count must be a positive whole number"),
        (lambda h: h.get_pipeline_run_status(PIPELINE_ID, "x"), "run_count must be a positive whole number"),
        (lambda h: h.get_tool("5fd56d90979ee048ee66062"), "tool_id must be a 24-character"),
        (lambda h: h.update_tool(TOOL_ID, {}), "tool must name at least one root property"),
        (lambda h: h.update_tool(TOOL_ID, ["a"]), "tool must be a JSON object"),
        (lambda h: h.update_tool(TOOL_ID, {"when": object()}), "tool cannot be sent as JSON"),
        (lambda h: h.update_tool(TOOL_ID, {"ratio": float("nan")}), "tool cannot be sent as JSON"),
        (lambda h: h.get_task_status("zz" * 12), "opsera_task_id must be a 24-character"),
        (lambda h: h.get_user_activity_logs("23/11/2026"), "date must be a date as YYYY-MM-DD"),
        (lambda h: h.get_user_activity_logs(count=-5), "count must be a positive whole number"),
        (lambda h: h.create_project({"projectName": "x"}), "project: required field(s) missing or empty: projectId"),
        (lambda h: h.create_person({"email": "not-an-email"}), "person.email must be an email address"),
        (lambda h: h.create_person({"firstName": "x"}), "person: required field(s) missing or empty: email"),
        (lambda h: h.create_org_hierarchy("", "child"), "required field(s) missing or empty: parent"),
        (lambda h: h.create_mapping({"attribute1": "a"}), "required field(s) missing or empty: attribute2"),
        (lambda h: h.get_person("nobody"), "email must be an email address"),
    ],
)
def test_bad_input_is_refused_before_any_request(hook, requests_mock, call, words):
    with pytest.raises(ex.OpseraInputError) as caught:
        call(hook)
    assert words in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert requests_mock.call_count == 0
