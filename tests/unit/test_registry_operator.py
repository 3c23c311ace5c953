"""OpseraUpdateToolOperator against requests-mock: checks, diff, dry run, revert data, verification."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from airflow_provider_opsera.exceptions import OpseraInputError, OpseraPermissionError
from airflow_provider_opsera.operators.registry import OpseraUpdateToolError, OpseraUpdateToolOperator
from tests.unit.conftest import BASE_URL, TOOL_ID

SUMMARY = BASE_URL + "/api/v1/registry/summary"
UPDATE = BASE_URL + "/api/v1/registry/update"

TOOL = {
    "_id": TOOL_ID,
    "name": "Jenkins Prod",
    "description": "Production Jenkins",
    "tool_identifier": "jenkins",
    "active": True,
    "configuration": {
        "jenkinsUrl": "https://jenkins.example.com",
        "userName": "opsera-bot",
        "secretKey": "vault-reference-4f1c9a",
        "nested": {"deeper": [{"password": "hunter2-plain"}]},
    },
    "createdAt": "2026-01-01T00:00:00.000Z",
    "updatedAt": "2026-01-01T00:00:00.000Z",
}


class FakeTaskInstance:
    def __init__(self):
        self.xcom: dict = {}

    def xcom_push(self, key, value):
        self.xcom[key] = value


@pytest.fixture
def context():
    return {"ti": FakeTaskInstance()}


@pytest.fixture
def conn(set_conn, token):
    set_conn(host=BASE_URL, password=token)


@pytest.fixture
def opsera(requests_mock, conn):
    """A tool held in memory: the summary reads it, the update merges root properties like Opsera."""
    state = {"tool": copy.deepcopy(TOOL)}

    def update(request, context):
        state["tool"].update(request.json()["tool"])
        return state["tool"]

    requests_mock.post(SUMMARY, json=lambda request, context: state["tool"])
    requests_mock.post(UPDATE, json=update)
    return state


def sent_updates(requests_mock):
    return [r.json() for r in requests_mock.request_history if r.url == UPDATE]


def operator(**kwargs):
    return OpseraUpdateToolOperator(task_id="update_tool", **{"tool_id": TOOL_ID, **kwargs})


# -- checks before anything is sent ------------------------------------------------------------------


@pytest.mark.parametrize(
    "tool_id, tool, message",
    [
        ("not-an-id", {"description": "x"}, "tool_id must be a 24-character hexadecimal Opsera id"),
        (TOOL_ID, {}, "at least one root property"),
        (TOOL_ID, ["description"], "tool must be a JSON object"),
        (TOOL_ID, {"_id": "60a1b2c3d4e5f6a7b8c9d0ff"}, "tool._id cannot be changed"),
        (TOOL_ID, {"configuration.jenkinsUrl": "x"}, "send the whole root property"),
        (TOOL_ID, {"description": object()}, "tool cannot be sent as JSON"),
        (TOOL_ID, {"updatedAt": "2027-01-01"}, "nothing to change"),
    ],
)
def test_invalid_input_is_refused_before_any_request(requests_mock, conn, context, tool_id, tool, message):
    with pytest.raises(OpseraInputError, match=message):
        operator(tool_id=tool_id, tool=tool).execute(context)
    assert requests_mock.call_count == 0
    assert context["ti"].xcom == {}


def test_constructing_the_operator_reads_no_connection_and_sends_nothing(requests_mock, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_OPSERA_DEFAULT", raising=False)
    op = operator(tool={"description": "x"}, opsera_conn_id="not_defined_anywhere")
    assert requests_mock.call_count == 0
    assert op.template_fields == ("tool_id", "tool")


def test_operator_modules_do_not_import_http_clients():
    code = (
        "import sys; import airflow_provider_opsera._compat; before = set(sys.modules);"
        "import airflow_provider_opsera.operators.registry, airflow_provider_opsera.operators.data,"
        " airflow_provider_opsera.operators.audit;"
        "print(sorted(m for m in {'requests', 'tenacity', 'aiohttp'} if m in set(sys.modules) - before))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


# -- the update --------------------------------------------------------------------------------------


def test_only_changed_keys_are_sent_then_read_back(requests_mock, opsera, context):
    result = operator(tool={"name": "Jenkins Prod", "description": "Rebuilt"}).execute(context)

    assert sent_updates(requests_mock) == [{"toolId": TOOL_ID, "tool": {"description": "Rebuilt"}}]
    assert [r.url for r in requests_mock.request_history] == [SUMMARY, UPDATE, SUMMARY]
    assert result["description"] == "Rebuilt"
    assert context["ti"].xcom["previous_values"] == {"description": "Production Jenkins"}


def test_previous_values_revert_the_change_when_fed_back(requests_mock, opsera, context):
    wanted = {"description": "Rebuilt", "active": False, "owner_team": "platform"}
    operator(tool=wanted, allow_unknown_fields=True).execute(context)
    previous = context["ti"].xcom["previous_values"]
    assert previous == {"description": "Production Jenkins", "active": True, "owner_team": None}

    revert = {"ti": FakeTaskInstance()}
    operator(tool=json.dumps(previous)).execute(revert)  # as a template renders an XCom pull
    assert {k: opsera["tool"][k] for k in ("description", "active")} == {
        "description": "Production Jenkins",
        "active": True,
    }
    assert revert["ti"].xcom["previous_values"]["description"] == "Rebuilt"


def test_nothing_differs_nothing_is_sent(requests_mock, opsera, context, captured):
    result = operator(tool={"name": "Jenkins Prod", "active": True}).execute(context)

    assert sent_updates(requests_mock) == []
    assert requests_mock.call_count == 1
    assert result == TOOL
    assert context["ti"].xcom["previous_values"] == {}
    assert "nothing to send" in captured()


def test_dry_run_shows_the_diff_and_sends_nothing(requests_mock, opsera, context, captured):
    new_config = {**TOOL["configuration"], "jenkinsUrl": "https://jenkins2.example.com"}
    result = operator(tool={"description": "Rebuilt", "configuration": new_config}, dry_run=True).execute(context)

    assert result == {"description": "Rebuilt", "configuration": new_config}
    assert sent_updates(requests_mock) == []
    assert context["ti"].xcom == {}
    log = captured()
    assert '~ description: "Production Jenkins" -> "Rebuilt"' in log
    assert '~ configuration.jenkinsUrl: "https://jenkins.example.com" -> "https://jenkins2.example.com"' in log
    assert "Dry run: nothing was sent" in log


def test_secrets_never_reach_the_log(requests_mock, opsera, context, captured):
    tool = {
        "configuration": {
            "jenkinsUrl": "https://jenkins.example.com",
            "userName": "opsera-bot",
            "secretKey": "vault-reference-NEW-77",
            "nested": {"deeper": [{"password": "hunter3-plain"}]},
        },
        "apiToken": "brand-new-token-value",
    }
    operator(tool=tool, allow_unknown_fields=True).execute(context)
    log = captured()
    for secret in ("vault-reference-4f1c9a", "vault-reference-NEW-77", "hunter2-plain", "hunter3-plain",
                   "brand-new-token-value"):
        assert secret not in log
    assert "configuration.secretKey: " in log and "(changed)" in log
    # The revert data keeps the real values: a masked value fed back would overwrite the secret.
    assert context["ti"].xcom["previous_values"]["configuration"]["secretKey"] == "vault-reference-4f1c9a"


def test_nested_keys_an_update_would_remove_are_named_in_a_dry_run(requests_mock, opsera, context, captured):
    tool = {"configuration": {"jenkinsUrl": "https://new"}}
    operator(tool=tool, dry_run=True, allow_removing_keys=True).execute(context)
    log = captured()
    assert "- configuration.userName" in log
    assert "the update would remove configuration.userName, configuration.secretKey, configuration.nested" in log


def test_server_fields_are_dropped_with_a_warning(requests_mock, opsera, context, captured):
    operator(tool={**TOOL, "description": "Rebuilt"}).execute(context)
    assert sent_updates(requests_mock) == [{"toolId": TOOL_ID, "tool": {"description": "Rebuilt"}}]
    assert "Leaving out _id, createdAt, updatedAt" in captured()


def test_a_change_opsera_did_not_store_fails_clearly(requests_mock, conn, context, captured):
    requests_mock.post(SUMMARY, json=TOOL)  # still the old values after the update
    requests_mock.post(UPDATE, json=TOOL)
    tool = {"description": "Rebuilt", "configuration": {**TOOL["configuration"], "secretKey": "vault-NEW-1"}}

    with pytest.raises(OpseraUpdateToolError) as caught:
        operator(tool=tool).execute(context)

    message = str(caught.value)
    assert "reading it back shows other values" in message
    assert 'description: sent "Rebuilt", Opsera holds "Production Jenkins"' in message
    assert "vault-NEW-1" not in message and "vault-reference-4f1c9a" not in message
    assert context["ti"].xcom["previous_values"]["description"] == "Production Jenkins"


def test_a_token_without_registry_scope_gets_the_accepted_scopes(requests_mock, conn, context):
    requests_mock.post(SUMMARY, status_code=403, json={"status": "failed", "message": "forbidden"})
    with pytest.raises(OpseraPermissionError) as caught:
        operator(tool={"description": "x"}).execute(context)
    assert "api, api-readonly, registry, registry-readonly" in str(caught.value)
    assert sent_updates(requests_mock) == []


def test_a_tool_given_as_rendered_text_is_read_as_a_dict(requests_mock, opsera, context):
    operator(tool="{'description': 'From a template'}").execute(context)
    assert sent_updates(requests_mock)[0]["tool"] == {"description": "From a template"}
