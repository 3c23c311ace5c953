"""opsera-doctor against requests-mock: each verdict, the exit codes, and nothing secret in its output."""

from __future__ import annotations

import time

import pytest

from airflow_provider_opsera.client.api import ENDPOINTS
from airflow_provider_opsera.doctor import __main__ as cli
from airflow_provider_opsera.doctor.__main__ import main
from airflow_provider_opsera.doctor.checks import READ_CALLS, Doctor, console_log_kind
from airflow_provider_opsera.doctor.shapes import INTEGER, STRING, Field, shape_problems
from tests.unit.conftest import BASE_URL, PIPELINE_ID, TASK_ID, make_jwt
from tests.unit.pipeline_fakes import LOGS, STATUS, SUMMARY, TASK_LOGS, TASK_STATUS, TASK_SUMMARY

LIST = f"{BASE_URL}/api/v1/pipeline/pipelines"
TASK_LIST = f"{BASE_URL}/api/v1/task/tasks"
ACTIONS = f"{BASE_URL}/api/v2/actions"
ACTIONS_FACT = "actions path POST /api/v2/actions"
SECRET = "hunter2-very-secret"


def pipeline(**workflow) -> dict:
    return {
        "_id": PIPELINE_ID,
        "name": "deploy-web-portal",
        "workflow": {
            "run_count": 3,
            "plan": [],
            "last_step": {"status": "success", "running": {"paused": False}},
            **workflow,
        },
        "vault": {"apiKey": SECRET},
    }


def record(action: str = "console output", console=None, **fields) -> dict:
    return {
        "_id": "6" * 24,
        "pipeline_id": PIPELINE_ID,
        "run_count": 3,
        "step_id": "7" * 24,
        "step_index": 0,
        "step_name": "build",
        "tool_identifier": "jenkins",
        "action": action,
        "message": "console output",
        "status": "running",
        "api_response": {"consoleLog": "Compiled successfully." if console is None else console},
        "user_id": "a" * 24,
        "createdAt": "2026-01-01T00:00:00.000Z",
        **fields,
    }


@pytest.fixture
def token() -> str:
    return make_jwt(time.time() + 10 * 86400, scope="api pipeline", email="ada@example.com")


@pytest.fixture(autouse=True)
def retries_wait_on_nothing(monkeypatch):
    make_hook = cli.make_hook

    def hook_on_a_fake_clock(conn_id):
        hook = make_hook(conn_id)
        hook._sleep = lambda seconds: None
        return hook

    monkeypatch.setattr(cli, "make_hook", hook_on_a_fake_clock)


@pytest.fixture
def opsera(set_conn, token, requests_mock):
    set_conn(host=BASE_URL, password=token)
    requests_mock.get(LIST, json=[pipeline()])
    requests_mock.post(SUMMARY, json=pipeline())
    requests_mock.post(STATUS, json={"status": "success", "message": "Pipeline: deploy-web-portal's Run 3 was successful."})
    requests_mock.post(LOGS, json=[record(), record(action="end", console="")])
    requests_mock.get(TASK_LIST, json=[{"_id": TASK_ID, "name": "Nightly Sync"}])
    requests_mock.post(TASK_SUMMARY, json={"_id": TASK_ID, "status": "success"})
    requests_mock.post(TASK_STATUS, text='"success"')
    requests_mock.get(TASK_LOGS, json=[])
    requests_mock.post(ACTIONS, json={"status": "success", "data": [{"pipelineId": PIPELINE_ID, "paused": False}]})
    return requests_mock


def doctor(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out + err


def verdict(output: str, fact: str) -> str:
    line = next(line for line in output.splitlines() if line.startswith(fact))
    return line[len(fact):].strip()


def test_a_tenant_like_the_contract_is_confirmed(opsera, capsys, token):
    code, out = doctor(capsys)
    assert code == 0
    for fact in ("pipeline summary fields", "run status answer", "log record fields", "console output records",
                 "task path GET /api/v1/task/tasks", "task path POST /api/v1/task/status",
                 "task status answer", "status strings", ACTIONS_FACT):
        assert verdict(out, fact).startswith("confirmed"), fact
    assert "scopes api pipeline" in out and ("in 10.0 days" in out or "in 9.9 days" in out)
    assert "saw 'success' (succeeded)" in out
    assert token not in out and SECRET not in out and "ada@example.com" not in out
    assert "deploy-web-portal" not in out  # record values only with --show-values


def test_only_read_calls_are_made(opsera, capsys):
    doctor(capsys, "--pipeline-id", PIPELINE_ID, "--task-id", TASK_ID)
    sent = {(r.method, r.path) for r in opsera.request_history}
    reads = {(ENDPOINTS[name].method, ENDPOINTS[name].path) for name in READ_CALLS}
    assert sent <= reads and len(sent) == 9
    assert not READ_CALLS & {"pipeline_run", "pipeline_stop", "pipeline_reset", "tool_update"}
    assert not READ_CALLS & {"pipeline_approve", "pipeline_reject"}  # they share the actions path with status
    actions = [r.json() for r in opsera.request_history if r.path == "/api/v2/actions"]
    assert actions == [{"action": "status", "type": "pipeline", "version": 1, "target": [PIPELINE_ID]}]
    assert not any(name.endswith("_create") for name in READ_CALLS)


def test_show_values_shows_values_but_masks_secret_looking_ones(opsera, capsys, token):
    opsera.post(SUMMARY, json=pipeline(run_count="3"))  # a string where a number is expected: differs
    code, out = doctor(capsys, "--show-values")
    assert code == 1
    assert "workflow.run_count is string, expected integer" in verdict(out, "pipeline summary fields")
    assert '"deploy-web-portal"' in out
    assert SECRET not in out and token not in out


def test_a_renamed_field_differs_and_names_the_likely_new_name(opsera, capsys):
    renamed = pipeline()
    renamed["workflow"]["runCount"] = renamed["workflow"].pop("run_count")
    opsera.post(SUMMARY, json=renamed)
    code, out = doctor(capsys)
    assert code == 1
    assert "workflow.run_count is missing (there is workflow.runCount: renamed?)" in out
    assert "Latest run: 3, found in the activity records" in out
    assert verdict(out, "run status answer").startswith("confirmed (run 3:")


def test_without_a_run_number_anywhere_the_status_strings_are_not_called_confirmed(opsera, capsys):
    renamed = pipeline()
    renamed["workflow"]["runCount"] = renamed["workflow"].pop("run_count")
    opsera.post(SUMMARY, json=renamed)
    opsera.post(LOGS, json=[])
    opsera.get(TASK_LIST, status_code=404, json={"message": "not found"})
    code, out = doctor(capsys)
    assert verdict(out, "run status answer").startswith("could not check")
    assert verdict(out, "status strings").startswith("could not check")


def test_an_unknown_status_differs(opsera, capsys):
    opsera.post(STATUS, json={"status": "Completed", "message": "done"})
    code, out = doctor(capsys)
    assert code == 1
    assert "saw 'Completed' in pipeline run 3, which the status table does not know" in verdict(out, "status strings")


@pytest.mark.parametrize(
    "console, expected",
    [
        ({"jenkins": ["line 1", "line 2"]}, "object"),
        (["line 1"], "array"),
        ("text", "string"),
        (7, "!integer"),
        ({"jenkins": 7}, "!object"),
    ],
)
def test_console_log_shapes(console, expected):
    assert console_log_kind(record(console=console)) == expected


def test_an_unreadable_console_record_differs(opsera, capsys):
    opsera.post(LOGS, json=[record(api_response={"consoleOutput": "text"})])
    code, out = doctor(capsys)
    assert code == 1
    assert "consoleLog is missing in 1 of 1 console records" in out and "consoleOutput (string)" in out


def test_a_task_path_answering_404_differs_and_a_403_is_not_checkable(opsera, capsys):
    opsera.get(TASK_LIST, status_code=404, json={"status": "failed", "message": "Not found"})
    opsera.post(TASK_STATUS, status_code=403, json={"status": "failed", "message": "forbidden"})
    code, out = doctor(capsys, "--task-id", TASK_ID)
    assert code == 1
    assert verdict(out, "task path GET /api/v1/task/tasks").startswith("differs: answered 404")
    assert verdict(out, "task path POST /api/v1/task/status").startswith("could not check: ")
    assert "tasks-readonly" in verdict(out, "task path POST /api/v1/task/status")  # the scopes it accepts


@pytest.mark.parametrize(
    "answer, expected",
    [
        ({"status_code": 404, "json": {"status": "failed", "message": "Not found"}}, "differs: answered 404"),
        ({"status_code": 405, "json": {"status": "failed", "message": "Method"}}, "differs: answered 405"),
        ({"status_code": 400, "json": {"status": "failed", "message": "unknown action"}},
         "differs: answered 400: the body it was sent differs"),
        ({"status_code": 403, "json": {"status": "failed", "message": "forbidden"}}, "could not check: "),
        ({"json": "paused"}, "differs: status answers string, expected an object"),
        ({"json": {"status": "success", "data": []}}, "confirmed (status answers object: status (string), data"),
    ],
)
def test_the_actions_path_is_checked_with_its_status_command(opsera, capsys, answer, expected):
    opsera.post(ACTIONS, **answer)
    code, out = doctor(capsys)
    assert verdict(out, ACTIONS_FACT).startswith(expected), out
    assert code == (1 if expected.startswith("differs") else 0)


def test_without_a_pipeline_the_actions_path_is_not_checked(opsera, capsys):
    opsera.get(LIST, json=[])
    code, out = doctor(capsys)
    assert verdict(out, ACTIONS_FACT) == "could not check: the token sees no pipeline: give --pipeline-id"
    assert not any(r.path == "/api/v2/actions" for r in opsera.request_history)


def test_a_task_status_as_an_object_differs(opsera, capsys):
    opsera.post(TASK_STATUS, json={"status": "running"})
    code, out = doctor(capsys)
    assert code == 1
    assert verdict(out, "task status answer").startswith("differs: the answer is object: status (string)")


def test_without_the_list_role_pipeline_facts_need_an_id(opsera, capsys):
    opsera.get(LIST, status_code=403, json={"status": "failed", "message": "forbidden"})
    code, out = doctor(capsys)
    assert code == 0
    assert "Pipeline list: not readable" in out and "Power User" in out
    assert verdict(out, "pipeline summary fields") == "could not check: no pipeline to read: give --pipeline-id"
    code, out = doctor(capsys, "--pipeline-id", PIPELINE_ID)
    assert code == 0 and verdict(out, "pipeline summary fields").startswith("confirmed")


def test_a_pipeline_by_name_and_a_name_that_matches_nothing(opsera, capsys):
    code, out = doctor(capsys, "--pipeline-name", "deploy-web-portal")
    assert code == 0 and f"Pipeline examined: {PIPELINE_ID}" in out
    code, out = doctor(capsys, "--pipeline-name", "deploy-web-portl")
    assert code == 2 and "Did you mean 'deploy-web-portal'?" in out


@pytest.mark.parametrize(
    "answer, expected",
    [
        ({"status_code": 401, "json": {"status": "failed", "message": "jwt expired"}}, "401 unauthorised"),
        ({"exc": __import__("requests").exceptions.ConnectionError("refused")}, "failed"),
    ],
)
def test_a_refused_token_or_an_unreachable_host_cannot_run(opsera, capsys, token, answer, expected):
    opsera.get(LIST, **answer)
    code, out = doctor(capsys)
    assert code == 2 and "opsera-doctor could not run" in out and expected in out
    assert token not in out


def test_a_missing_connection_or_an_expired_token_cannot_run(set_conn, capsys, requests_mock):
    code, out = doctor(capsys, "--conn-id", "nowhere")
    assert code == 2 and "nowhere" in out
    expired = make_jwt(time.time() - 60)
    set_conn(host=BASE_URL, password=expired)
    code, out = doctor(capsys)
    assert code == 2 and "expired" in out and expired not in out
    assert not requests_mock.called


@pytest.mark.parametrize(
    "args, expected",
    [
        (("--pipeline-id", "5fd56d90"), "--pipeline-id must be a 24-character hexadecimal Opsera id"),
        (("--task-id", "nightly"), "--task-id must be a 24-character hexadecimal Opsera id"),
        (("--pipeline-name", "  "), "pipeline_name must be a pipeline's name"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_sent(opsera, capsys, args, expected):
    code, out = doctor(capsys, *args)
    assert code == 2 and expected in out
    assert not opsera.called


def test_an_id_and_a_name_together_are_refused(opsera):
    with pytest.raises(SystemExit) as exited:
        main(["--pipeline-id", PIPELINE_ID, "--pipeline-name", "deploy-web-portal"])
    assert exited.value.code == 2 and not opsera.called


def test_a_token_that_is_not_a_jwt(set_conn, opsera, capsys):
    set_conn(host=BASE_URL, password="plain-opaque-token")
    code, out = doctor(capsys)
    assert "not a readable JWT" in out and "plain-opaque-token" not in out


def test_the_token_never_appears_even_when_a_message_quotes_it(opsera, capsys, token):
    opsera.post(TASK_STATUS, status_code=500, text=f"crash while checking {token}")
    code, out = doctor(capsys)
    assert token not in out


def test_shape_problems_across_records():
    fields = (Field("run_count", (INTEGER,)), Field("step_name", (STRING,)))
    assert shape_problems([{"run_count": 1}, {"step_name": "x"}], fields) == []  # each seen somewhere
    assert shape_problems([{"run_count": "1", "stepName": "x"}], fields) == [
        "run_count is string, expected integer",
        "step_name is missing (there is stepName: renamed?)",
    ]


def test_the_doctor_reads_only_through_its_allow_list(hook):
    with pytest.raises(ValueError, match="read calls only, not pipeline_run"):
        Doctor(hook).read("pipeline_run", json={"pipelineId": PIPELINE_ID})
