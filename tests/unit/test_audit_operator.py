"""OpseraAuditLogsOperator against requests-mock: filters, both logs, the record cap, JSON Lines export."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from airflow_provider_opsera.exceptions import OpseraInputError, OpseraPermissionError
from airflow_provider_opsera.operators.audit import OpseraAuditLogsOperator
from tests.unit.conftest import BASE_URL

ACTIONS = BASE_URL + "/api/v1/logs/user/actions"
TOKENS = BASE_URL + "/api/v1/logs/user/tokens"
USER_RECORD = {"_id": "u1", "user_email": "admin@example.com", "type": "pipeline", "action": "run",
               "createdAt": "2026-11-20T10:00:00.000Z"}
TOKEN_RECORD = {"_id": "t1", "scope": "api", "target": "/v1/pipeline/run", "createdAt": "2026-11-20T10:00:01.000Z"}


@pytest.fixture(autouse=True)
def conn(set_conn, token):
    set_conn(host=BASE_URL, password=token)


@pytest.fixture
def logs(requests_mock):
    return (
        requests_mock.get(ACTIONS, json={"count": 1, "data": [USER_RECORD]}),
        requests_mock.get(TOKENS, json={"count": 1, "data": [TOKEN_RECORD]}),
    )


def query(adapter):
    return {k: v[0] for k, v in adapter.last_request.qs.items()}


def test_user_log_for_a_day_filtered_by_type(logs):
    actions, tokens = logs
    result = OpseraAuditLogsOperator(task_id="t", date="2026-11-20", activity_type="pipeline").execute({})
    assert result == {"user": [USER_RECORD]}
    assert query(actions) == {"date": "2026-11-20", "type": "pipeline"}
    assert tokens.call_count == 0


def test_token_log_filtered_by_scope_with_a_date_object(logs):
    actions, tokens = logs
    result = OpseraAuditLogsOperator(task_id="t", date=dt.date(2026, 11, 20), log="token", scope="api").execute({})
    assert result == {"token": [TOKEN_RECORD]}
    assert query(tokens) == {"date": "2026-11-20", "scope": "api"}
    assert actions.call_count == 0


def test_both_logs_without_a_date_use_opseras_default_span(logs, captured):
    actions, tokens = logs
    result = OpseraAuditLogsOperator(task_id="t", log="both").execute({})
    assert result == {"user": [USER_RECORD], "token": [TOKEN_RECORD]}
    assert actions.last_request.qs == {} and tokens.last_request.qs == {}
    assert "for the last 7 days: 1 records" in captured()


@pytest.mark.parametrize(
    "answer",
    [
        {"count": 1000, "data": [USER_RECORD] * 10},  # the server says it stopped at the cap
        {"count": 7, "data": [USER_RECORD] * 1000},  # the page itself is full
        [USER_RECORD] * 1000,  # a bare capped array
    ],
)
def test_a_day_at_the_record_cap_warns_that_it_may_be_cut_short(requests_mock, captured, answer):
    requests_mock.get(ACTIONS, json=answer)
    OpseraAuditLogsOperator(task_id="t", date="2026-11-20").execute({})
    log = captured()
    assert "its cap of 1000: later records of that span may be missing" in log
    assert "filtered by activity_type" in log


def test_a_day_below_the_cap_does_not_warn(requests_mock, captured):
    requests_mock.get(ACTIONS, json={"count": 999, "data": [USER_RECORD] * 999})
    OpseraAuditLogsOperator(task_id="t", date="2026-11-20").execute({})
    assert "cap" not in captured()


def test_output_path_gets_json_lines_and_xcom_gets_only_the_summary(logs, tmp_path):
    path = tmp_path / "exports" / "audit-2026-11-20.jsonl"
    result = OpseraAuditLogsOperator(task_id="t", date="2026-11-20", log="both", output_path=str(path)).execute({})

    assert result == {"path": str(path), "date": "2026-11-20", "counts": {"user": 1, "token": 1},
                      "possibly_incomplete": []}
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [{**USER_RECORD, "log": "user"}, {**TOKEN_RECORD, "log": "token"}]
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left


def test_an_export_at_the_cap_says_so_in_its_summary(requests_mock, tmp_path):
    requests_mock.get(TOKENS, json={"count": 1000, "data": [TOKEN_RECORD] * 1000})
    path = tmp_path / "tokens.jsonl"
    result = OpseraAuditLogsOperator(task_id="t", date="2026-11-20", log="token", output_path=str(path)).execute({})
    assert result["possibly_incomplete"] == ["token"]
    assert len(path.read_text().splitlines()) == 1000


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"date": "20-11-2026"}, "date must be a date as YYYY-MM-DD"),
        ({"date": "2026-02-30"}, "date must be a date as YYYY-MM-DD"),
        ({"log": "token", "activity_type": "pipeline"}, "activity_type filters the user log"),
        ({"log": "user", "scope": "api"}, "scope filters the token log"),
        ({"activity_type": 5}, "activity_type must be a non-empty string"),
    ],
)
def test_invalid_arguments_are_refused_before_any_request(requests_mock, kwargs, message):
    with pytest.raises(OpseraInputError, match=message):
        OpseraAuditLogsOperator(task_id="t", **kwargs).execute({})
    assert requests_mock.call_count == 0


def test_an_unknown_log_is_refused_when_the_dag_is_parsed(requests_mock):
    with pytest.raises(OpseraInputError, match="log must be one of user, token, both"):
        OpseraAuditLogsOperator(task_id="t", log="tokens")


def test_a_directory_as_output_path_is_refused(requests_mock, tmp_path):
    with pytest.raises(OpseraInputError, match="is a directory"):
        OpseraAuditLogsOperator(task_id="t", output_path=str(tmp_path)).execute({})
    assert requests_mock.call_count == 0


def test_a_403_names_the_scopes_and_role_the_audit_log_needs(requests_mock):
    requests_mock.get(ACTIONS, status_code=403, json={"status": "failed", "message": "forbidden"})
    with pytest.raises(OpseraPermissionError) as caught:
        OpseraAuditLogsOperator(task_id="t", date="2026-11-20").execute({})
    assert "must be one of: api, security-logs" in str(caught.value)
    assert "Power User role" in str(caught.value)


def test_templated_fields():
    assert set(OpseraAuditLogsOperator.template_fields) == {"date", "activity_type", "scope", "output_path"}
