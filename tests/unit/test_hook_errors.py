"""Typed errors, what is retried and what is not, and the one call that must never be blindly resent."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_opsera import exceptions as ex
from tests.unit.conftest import BASE_URL, PIPELINE_ID

STATUS_URL = BASE_URL + "/api/v1/pipeline/status"
RUN_URL = BASE_URL + "/api/v1/pipeline/run"
SUMMARY_URL = BASE_URL + "/api/v1/pipeline/summary"


@pytest.mark.parametrize(
    "status, error_class, words",
    [
        (400, ex.OpseraValidationError, "rejected the request"),
        (401, ex.OpseraAuthenticationError, "missing, malformed or expired"),
        (403, ex.OpseraPermissionError, "scope must be one of: api, api-readonly, pipeline, pipeline-readonly"),
        (404, ex.OpseraNotFoundError, "not found"),
        (409, ex.OpseraConflictError, "exists already"),
        (422, ex.OpseraValidationError, "rejected the request"),
    ],
)
def test_client_errors_are_typed_and_never_retried(hook, requests_mock, status, error_class, words):
    adapter = requests_mock.post(STATUS_URL, status_code=status, json={"status": "failed", "message": "nope"})

    with pytest.raises(error_class) as caught:
        hook.get_pipeline_run_status(PIPELINE_ID, 1)

    assert caught.value.status_code == status
    assert words in str(caught.value)
    assert "nope" in str(caught.value)  # Opsera's own message is kept
    assert adapter.call_count == 1
    assert hook.sleeps == []


def test_permission_error_on_a_list_call_names_the_power_user_role(hook, requests_mock):
    requests_mock.get(BASE_URL + "/api/v1/pipeline/pipelines", status_code=403, text="forbidden")
    with pytest.raises(ex.OpseraPermissionError, match="Power User role"):
        hook.list_pipelines()


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_on_reads_are_retried_until_success(hook, requests_mock, status):
    adapter = requests_mock.post(
        STATUS_URL,
        [
            {"status_code": status, "text": "boom"},
            {"status_code": status, "text": "boom"},
            {"json": {"status": "running"}},
        ],
    )
    assert hook.get_pipeline_run_status(PIPELINE_ID, 1) == {"status": "running"}
    assert adapter.call_count == 3
    assert len(hook.sleeps) == 2
    assert hook.sleeps[1] > hook.sleeps[0] / 2  # backoff grows (with jitter)


def test_retries_are_bounded(hook, requests_mock):
    adapter = requests_mock.post(STATUS_URL, status_code=503, text="unavailable")
    with pytest.raises(ex.OpseraServerError, match="503"):
        hook.get_pipeline_run_status(PIPELINE_ID, 1)
    assert adapter.call_count == hook.retry_policy.max_attempts
    assert all(0 < s <= hook.retry_policy.max_wait for s in hook.sleeps)


def test_501_is_not_a_transient_fault(hook, requests_mock):
    adapter = requests_mock.post(STATUS_URL, status_code=501, text="not implemented")
    with pytest.raises(ex.OpseraServerError):
        hook.get_pipeline_run_status(PIPELINE_ID, 1)
    assert adapter.call_count == 1


def test_429_honours_retry_after(hook, requests_mock):
    requests_mock.post(
        STATUS_URL,
        [
            {"status_code": 429, "headers": {"Retry-After": "7"}, "json": {"message": "slow down"}},
            {"json": {"status": "success"}},
        ],
    )
    assert hook.get_pipeline_run_status(PIPELINE_ID, 1)["status"] == "success"
    assert hook.sleeps == [7.0]


def test_connection_errors_on_reads_are_retried(hook, requests_mock):
    requests_mock.post(
        STATUS_URL,
        [{"exc": requests.exceptions.ConnectionError("reset")}, {"json": {"status": "running"}}],
    )
    assert hook.get_pipeline_run_status(PIPELINE_ID, 1) == {"status": "running"}


def test_html_error_page_gives_a_short_clear_error(hook, requests_mock):
    page = "<html><head><title>502 Bad Gateway</title></head><body>" + "x" * 5000 + "</body></html>"
    requests_mock.post(STATUS_URL, status_code=502, text=page)
    with pytest.raises(ex.OpseraServerError) as caught:
        hook.get_pipeline_run_status(PIPELINE_ID, 1)
    assert "HTML error page" in str(caught.value)
    assert len(str(caught.value)) < 400


def test_a_body_that_is_not_json_is_reported_with_a_short_snippet(hook, requests_mock):
    requests_mock.post(SUMMARY_URL, text="{not json" + "y" * 1000)
    with pytest.raises(ex.OpseraBadResponseError, match="not JSON") as caught:
        hook.get_pipeline(PIPELINE_ID)
    assert len(str(caught.value)) < 400


# -- the run call: starting work twice is worse than failing once --


@pytest.mark.parametrize(
    "response",
    [
        {"status_code": 500, "text": "internal error"},
        {"status_code": 502, "text": "<html>bad gateway</html>"},
        {"exc": requests.exceptions.ReadTimeout("read timed out")},
        {"exc": requests.exceptions.ConnectionError("Connection aborted: RemoteDisconnected")},
    ],
)
def test_a_run_that_may_have_reached_opsera_is_not_resent(hook, requests_mock, response):
    adapter = requests_mock.post(RUN_URL, [response, {"json": {"status": "executed", "runCount": 9}}])
    with pytest.raises(ex.OpseraAmbiguousRequestError) as caught:
        hook.run_pipeline(PIPELINE_ID)
    assert adapter.call_count == 1
    assert isinstance(caught.value.cause, ex.OpseraError)


@pytest.mark.parametrize(
    "response",
    [
        {"status_code": 429, "headers": {"Retry-After": "1"}, "text": "busy"},
        {"exc": requests.exceptions.ConnectTimeout("connect timed out")},
    ],
)
def test_a_run_that_certainly_did_not_reach_opsera_is_retried(hook, requests_mock, response):
    adapter = requests_mock.post(RUN_URL, [response, {"json": {"status": "executed", "runCount": 9}}])
    assert hook.run_pipeline(PIPELINE_ID)["runCount"] == 9
    assert adapter.call_count == 2


def test_a_refused_connection_is_retried_then_reported(set_conn, token):
    """A real refused socket: nothing listens on port 9 of loopback."""
    from airflow_provider_opsera.hooks import OpseraHook

    set_conn(host="http://127.0.0.1:9", password=token)
    hook = OpseraHook()
    hook._sleep = lambda seconds: None
    with pytest.raises(ex.OpseraTransportError) as caught:
        hook.run_pipeline(PIPELINE_ID)
    assert caught.value.may_have_reached_server is False
    assert "127.0.0.1:9" in str(caught.value)


def test_a_mapping_create_that_may_have_been_stored_is_not_resent(hook, requests_mock):
    """Opsera keeps duplicate mappings, so a second POST could store the record twice."""
    adapter = requests_mock.post(BASE_URL + "/api/v2/data/mapping", [{"status_code": 502, "text": "gateway"}])
    mapping = {"attribute1": "p1", "attribute2": "a@b.co", "mappingType": "project-people",
               "relationship": "many-to-many"}
    with pytest.raises(ex.OpseraAmbiguousRequestError):
        hook.create_mapping(mapping)
    assert adapter.call_count == 1


def test_a_person_create_is_retried_since_a_duplicate_email_is_refused(hook, requests_mock):
    adapter = requests_mock.post(
        BASE_URL + "/api/v2/data/people",
        [{"status_code": 503, "text": "busy"}, {"json": {"email": "a@b.co"}}],
    )
    assert hook.create_person({"email": "a@b.co"}) == {"email": "a@b.co"}
    assert adapter.call_count == 2
