"""The UI's Test button and ``airflow connections test``: what a token can do, and when it fails."""

from __future__ import annotations

import logging
import time

import pytest

from airflow_provider_opsera.client.api import ENDPOINTS
from airflow_provider_opsera.client.scopes import ABILITIES, describe_abilities, probe_call, token_scopes
from tests.unit.conftest import BASE_URL, PIPELINE_ID, make_jwt

PIPELINES = BASE_URL + "/api/v1/pipeline/pipelines"
TOOLS = BASE_URL + "/api/v1/registry/tools"
FORBIDDEN = {"status_code": 403, "json": {"status": "failed", "message": "forbidden"}}


@pytest.fixture
def hook_with(set_conn):
    from airflow_provider_opsera.hooks import OpseraHook

    def make(token: str) -> OpseraHook:
        set_conn(host=BASE_URL, password=token)
        hook = OpseraHook()
        hook._sleep = lambda seconds: None
        return hook

    return make


def scoped(scope: str, email: str = "dev@example.com") -> str:
    return make_jwt(time.time() + 30 * 86400, scope=scope, email=email)


def test_a_full_token_lists_pipelines_and_says_it_can_do_everything(hook_with, requests_mock):
    requests_mock.get(PIPELINES, json=[{"_id": PIPELINE_ID}])
    ok, message = hook_with(scoped("api", "admin@example.com")).test_connection()
    assert ok is True
    assert "1 pipelines visible" in message
    assert "admin@example.com; scope api; role Power User or higher" in message
    assert "every call" in message
    assert "cannot" not in message
    assert "the token expires" in message.lower()


def test_a_pipeline_token_below_power_user_passes_and_says_runs_by_id_only(hook_with, requests_mock):
    requests_mock.get(PIPELINES, **FORBIDDEN)
    ok, message = hook_with(scoped("pipeline")).test_connection()
    assert ok is True, message
    assert "valid token (dev@example.com; scope pipeline; role below Power User)" in message
    assert (
        "It can run, stop and reset pipelines; read a run's status and logs; approve or reject approval gates; "
        "read a pipeline by id." in message
    )
    assert "cannot list pipelines (its owner lacks the Power User role): runs by id only" in message
    assert "It has no access to the tool registry, tasks, audit logs or Insights data." in message
    assert "; use " not in message  # a statement of what the token reaches, not advice


def test_a_registry_token_is_tested_on_the_tool_list(hook_with, requests_mock):
    pipelines = requests_mock.get(PIPELINES, json=[])
    requests_mock.get(TOOLS, json=[{"_id": "t1"}, {"_id": "t2"}])
    ok, message = hook_with(scoped("registry", "admin@example.com")).test_connection()
    assert ok is True
    assert "2 tools visible" in message
    assert "It can read tools by id; update tools; list tools." in message
    assert "It has no access to pipelines, tasks, audit logs or Insights data." in message
    assert pipelines.call_count == 0


def test_a_token_whose_scope_covers_no_list_still_proves_itself_valid(hook_with, requests_mock):
    requests_mock.get(PIPELINES, **FORBIDDEN)
    ok, message = hook_with(scoped("security-logs", "admin@example.com")).test_connection()
    assert ok is True
    assert "role not known" in message
    assert "It can read audit logs (if its owner has the Power User role)." in message


def test_an_opaque_token_refused_the_list_passes_and_quotes_opsera(hook_with, requests_mock):
    requests_mock.get(PIPELINES, **FORBIDDEN)
    ok, message = hook_with("opaque-token-value").test_connection()
    assert ok is True
    assert "scopes not readable from the token" in message
    assert "cannot list pipelines: runs by id only" in message
    assert "403 forbidden" in message


def test_an_unexpected_list_shape_still_passes(hook_with, requests_mock):
    requests_mock.get(PIPELINES, json={"unexpected": True})
    ok, message = hook_with(scoped("api")).test_connection()
    assert ok is True
    assert "some pipelines visible" in message


@pytest.mark.parametrize(
    "answer, words",
    [
        ({"status_code": 401, "json": {"message": "invalid token"}}, ["Opsera rejected the token", "invalid token"]),
        ({"status_code": 500, "json": {"message": "boom"}}, ["server error 500", "boom"]),
    ],
)
def test_a_wrong_token_or_a_failing_server_fails(hook_with, requests_mock, answer, words):
    requests_mock.get(PIPELINES, **answer)
    ok, message = hook_with(scoped("pipeline")).test_connection()
    assert ok is False
    for word in words:
        assert word in message


def test_an_expired_token_fails_without_a_request(set_conn, requests_mock):
    from airflow_provider_opsera.hooks import OpseraHook

    set_conn(host=BASE_URL, password=make_jwt(time.time() - 60, scope="pipeline"))
    ok, message = OpseraHook().test_connection()
    assert ok is False
    assert "expired" in message
    assert requests_mock.call_count == 0


def test_an_unreachable_host_fails_naming_it(hook_with, set_conn, token):
    from airflow_provider_opsera.hooks import OpseraHook

    set_conn(host="http://127.0.0.1:9", password=token)
    hook = OpseraHook()
    hook._sleep = lambda seconds: None
    ok, message = hook.test_connection()
    assert ok is False
    assert "127.0.0.1:9" in message


# -- the diagnosis in the log (Airflow's CLI prints only "Connection success!" for a passing test) --


@pytest.fixture
def logged(caplog):
    """The hook's log lines as (level, text); the hook logs to a plain logger here, whatever Airflow's logging."""
    logger = logging.getLogger("test.connection_test")
    caplog.set_level(logging.DEBUG, logger=logger.name)

    def attach(hook):
        hook._log = logger
        return hook

    def lines():
        return [(record.levelname, record.getMessage()) for record in caplog.records if record.name == logger.name]

    attach.lines = lines
    return attach


def test_a_token_that_can_do_everything_is_logged_at_info(hook_with, requests_mock, logged):
    requests_mock.get(PIPELINES, json=[{"_id": PIPELINE_ID}])
    hook = logged(hook_with(scoped("api", "admin@example.com")))
    ok, message = hook.test_connection()
    assert ok is True
    assert logged.lines() == [("INFO", f"Opsera connection 'opsera_default': {message}")]


def test_a_narrow_token_is_logged_at_warning_with_what_it_cannot_do(hook_with, requests_mock, logged):
    requests_mock.get(PIPELINES, **FORBIDDEN)
    hook = logged(hook_with(scoped("pipeline")))
    ok, message = hook.test_connection()
    assert ok is True
    assert logged.lines() == [("WARNING", f"Opsera connection 'opsera_default': {message}")]
    assert "cannot list pipelines" in message


def test_a_token_expiring_within_days_says_so_and_is_logged_at_warning(hook_with, requests_mock, logged):
    requests_mock.get(PIPELINES, json=[])
    hook = logged(hook_with(make_jwt(time.time() + 3 * 86400 + 600, scope="api", email="admin@example.com")))
    ok, message = hook.test_connection()
    assert ok is True
    assert "It can make every call this provider makes." in message
    assert "The Opsera token expires in 3.0 days" in message and "renew it soon" in message
    diagnosis = [line for line in logged.lines() if line[1].startswith("Opsera connection")]
    assert diagnosis == [("WARNING", f"Opsera connection 'opsera_default': {message}")]


def test_a_failed_test_is_not_logged_as_a_diagnosis(hook_with, requests_mock, logged):
    requests_mock.get(PIPELINES, status_code=401, json={"message": "invalid token"})
    hook = logged(hook_with(scoped("pipeline")))
    ok, _ = hook.test_connection()
    assert ok is False
    assert not [line for line in logged.lines() if line[1].startswith("Opsera connection")]


# -- the scope table behind the message --


def test_every_endpoint_belongs_to_exactly_one_ability():
    calls = [name for ability in ABILITIES for name in ability.calls]
    assert sorted(calls) == sorted(ENDPOINTS)


@pytest.mark.parametrize(
    "claims, scopes",
    [
        ({"scope": "pipeline registry"}, ("pipeline", "registry")),
        ({"scopes": ["tasks"]}, ("tasks",)),
        ({"scope": ""}, None),
        ({"scope": 3}, None),
        ({}, None),
    ],
)
def test_scopes_are_read_from_either_claim(claims, scopes):
    assert token_scopes(make_jwt(None, **claims)) == scopes


def test_scopes_of_a_token_that_is_not_a_jwt_are_unknown():
    assert token_scopes("not.a-jwt.at-all") is None
    assert token_scopes("opaque") is None


@pytest.mark.parametrize(
    "scopes, probe",
    [
        (None, "pipeline_list"),
        (("pipeline-readonly",), "pipeline_list"),
        (("registry-readonly",), "tool_list"),
        (("tasks-readonly",), "task_list"),
        (("security-logs",), "pipeline_list"),
    ],
)
def test_the_probe_is_a_list_the_scopes_cover(scopes, probe):
    assert probe_call(scopes) == probe


def test_a_read_only_pipeline_token_can_read_runs_only():
    abilities = describe_abilities(("pipeline-readonly",), power_user=None)
    assert abilities.can == ["read a run's status and logs"]
    assert "run, stop and reset pipelines" in abilities.cannot
    assert abilities.no_access == ["the tool registry", "tasks", "audit logs", "Insights data"]
