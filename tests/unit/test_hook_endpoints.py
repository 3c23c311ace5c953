"""Every call of the contract: method, path, body or query, Authorization header, parsed answer."""

from __future__ import annotations

import urllib.parse

import pytest

from tests.unit.conftest import BASE_URL, PIPELINE_ID, TASK_ID, TOOL_ID

PIPELINE = {"_id": PIPELINE_ID, "name": "Blank Template", "workflow": {"run_count": 3}}

# (hook method, args, kwargs, HTTP method, path, expected JSON body or query, answer, expected result)
CALLS = [
    ("run_pipeline", (PIPELINE_ID,), {}, "POST", "/api/v1/pipeline/run", {"pipelineId": PIPELINE_ID},
     {"status": "executed", "message": "ok", "runCount": 4}, None),
    ("get_pipeline_run_status", (PIPELINE_ID, 3), {}, "POST", "/api/v1/pipeline/status",
     {"pipelineId": PIPELINE_ID, "runCount": 3}, {"status": "success", "message": "Run 3 was successful."}, None),
    ("stop_pipeline", (PIPELINE_ID,), {}, "POST", "/api/v1/pipeline/stop", {"pipelineId": PIPELINE_ID},
     {"status": "success", "message": "The pipeline has been stopped."}, None),
    ("reset_pipeline", (PIPELINE_ID,), {}, "POST", "/api/v1/pipeline/reset", {"pipelineId": PIPELINE_ID},
     {"status": "success", "message": "The pipeline run status has been reset."}, None),
    ("get_pipeline", (PIPELINE_ID,), {}, "POST", "/api/v1/pipeline/summary", {"pipelineId": PIPELINE_ID},
     PIPELINE, None),
    ("get_pipeline_logs", (PIPELINE_ID, 3), {"console_only": True}, "POST", "/api/v1/pipeline/logs",
     {"pipelineId": PIPELINE_ID, "runCount": 3, "type": "console output"}, [{"_id": "1"}], None),
    ("get_pipeline_logs", (PIPELINE_ID,), {}, "POST", "/api/v1/pipeline/logs", {"pipelineId": PIPELINE_ID},
     [{"_id": "1"}, {"_id": "2"}], None),
    ("list_pipelines", (), {}, "GET", "/api/v1/pipeline/pipelines", None, [PIPELINE], None),
    ("list_tools", (), {}, "GET", "/api/v1/registry/tools", None, [{"_id": TOOL_ID}], None),
    ("get_tool", (TOOL_ID,), {}, "POST", "/api/v1/registry/summary", {"toolId": TOOL_ID}, {"_id": TOOL_ID}, None),
    ("update_tool", (TOOL_ID, {"description": "new"}), {}, "POST", "/api/v1/registry/update",
     {"toolId": TOOL_ID, "tool": {"description": "new"}}, {"_id": TOOL_ID, "description": "new"}, None),
    ("list_tasks", (), {}, "GET", "/api/v1/task/tasks", None, [{"_id": TASK_ID}], None),
    ("get_task", (TASK_ID,), {}, "POST", "/api/v1/task/summary", {"taskId": TASK_ID}, {"_id": TASK_ID}, None),
    ("get_task_status", (TASK_ID,), {}, "POST", "/api/v1/task/status", {"taskId": TASK_ID}, "running", "running"),
    ("get_task_logs", (TASK_ID, 2), {}, "GET", "/api/v1/task/logs", {"taskId": TASK_ID, "runCount": "2"},
     [{"_id": "1"}], None),
    ("get_user_activity_logs", ("2026-11-20",), {"activity_type": "pipeline", "count": 50}, "GET",
     "/api/v1/logs/user/actions", {"date": "2026-11-20", "type": "pipeline", "count": "50"},
     {"count": 1, "data": [{"_id": "x"}]}, None),
    ("get_token_activity_logs", (None,), {"scope": "pipeline"}, "GET", "/api/v1/logs/user/tokens",
     {"scope": "pipeline"}, {"count": 0, "data": []}, None),
    ("create_project", ({"projectId": "2322345", "projectName": "Phase 2"},), {}, "POST", "/api/v2/data/project",
     {"projectId": "2322345", "projectName": "Phase 2"}, {"projectId": "2322345"}, None),
    ("list_projects", (), {}, "GET", "/api/v2/data/projects", None, {"count": 1, "data": [{"projectId": "1"}]},
     [{"projectId": "1"}]),
    ("get_project", ("2322345",), {}, "GET", "/api/v2/data/project/2322345", None, {"projectId": "2322345"}, None),
    ("create_person", ({"email": "jd@example.com", "firstName": "John"},), {}, "POST", "/api/v2/data/people",
     {"email": "jd@example.com", "firstName": "John"}, {"email": "jd@example.com"}, None),
    ("list_people", (), {}, "GET", "/api/v2/data/people", None, {"count": 1, "data": [{"email": "a@b.co"}]},
     [{"email": "a@b.co"}]),
    ("get_person", ("jd@example.com",), {}, "GET", "/api/v2/data/people/jd%40example.com", None,
     {"email": "jd@example.com"}, None),
    ("create_org_hierarchy", ("Opsera", "Engineering", "organization", "business"), {}, "POST",
     "/api/v2/data/org-hierarchy",
     {"parent": "Opsera", "child": "Engineering", "parentType": "organization", "childType": "business"},
     {"mappingType": "parent-child"}, None),
    ("create_mapping", ({"attribute1": "p1", "attribute2": "jd@example.com", "mappingType": "project-people",
                         "relationship": "many-to-many"},), {}, "POST", "/api/v2/data/mapping",
     {"attribute1": "p1", "attribute2": "jd@example.com", "mappingType": "project-people",
      "relationship": "many-to-many"}, {"id": "m1"}, None),
    ("list_mappings", (), {}, "GET", "/api/v2/data/mapping", None, {"count": 1, "data": [{"id": "m1"}]},
     [{"id": "m1"}]),
    ("get_mapping", ("m1",), {}, "GET", "/api/v2/data/mapping/m1", None, {"id": "m1"}, None),
    ("approve_pipeline", (PIPELINE_ID,), {}, "POST", "/api/v2/actions",
     {"action": "approve", "type": "pipeline", "version": 1, "target": [PIPELINE_ID]},
     {"status": "success", "message": "approved"}, None),
    ("reject_pipeline", (PIPELINE_ID, " Not today. "), {}, "POST", "/api/v2/actions",
     {"action": "reject", "type": "pipeline", "version": 1, "target": [PIPELINE_ID], "message": "Not today."},
     {"status": "success", "message": "rejected"}, None),
    ("get_pipeline_action_status", (PIPELINE_ID,), {}, "POST", "/api/v2/actions",
     {"action": "status", "type": "pipeline", "version": 1, "target": [PIPELINE_ID]}, {"status": "success"}, None),
]


@pytest.mark.parametrize(
    "method_name, args, kwargs, http_method, path, sent, answer, expected",
    CALLS,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CALLS)],
)
def test_each_call_sends_what_the_contract_says(
    hook, requests_mock, token, method_name, args, kwargs, http_method, path, sent, answer, expected
):
    adapter = requests_mock.register_uri(http_method, BASE_URL + path, json=answer)

    result = getattr(hook, method_name)(*args, **kwargs)

    assert result == (answer if expected is None else expected)
    assert adapter.call_count == 1
    request = adapter.last_request
    assert request.headers["Authorization"] == f"Bearer {token}"
    if http_method == "POST":
        assert request.json() == sent
    elif sent is not None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.url).query)
        assert {k: v[0] for k, v in query.items()} == {k: str(v) for k, v in sent.items()}


def test_every_endpoint_in_the_table_has_a_hook_method():
    from airflow_provider_opsera.client.api import ENDPOINTS

    covered = {
        "run_pipeline": "pipeline_run", "get_pipeline_run_status": "pipeline_status",
        "stop_pipeline": "pipeline_stop", "reset_pipeline": "pipeline_reset", "get_pipeline": "pipeline_summary",
        "get_pipeline_logs": "pipeline_logs", "list_pipelines": "pipeline_list", "list_tools": "tool_list",
        "get_tool": "tool_summary", "update_tool": "tool_update", "list_tasks": "task_list",
        "get_task": "task_summary", "get_task_status": "task_status", "get_task_logs": "task_logs",
        "get_user_activity_logs": "user_activity", "get_token_activity_logs": "token_activity",
        "create_project": "project_create", "list_projects": "project_list", "get_project": "project_get",
        "create_person": "person_create", "list_people": "person_list", "get_person": "person_get",
        "create_org_hierarchy": "org_hierarchy_create", "create_mapping": "mapping_create",
        "list_mappings": "mapping_list", "get_mapping": "mapping_get", "approve_pipeline": "pipeline_approve",
        "reject_pipeline": "pipeline_reject", "get_pipeline_action_status": "pipeline_action_status",
    }
    assert set(covered.values()) == set(ENDPOINTS)
    assert {c[0] for c in CALLS} == set(covered)


def test_raw_token_header_when_prefix_is_empty(set_conn, token, requests_mock):
    from airflow_provider_opsera.hooks import OpseraHook

    set_conn(host=BASE_URL, password=token, extra={"auth_prefix": "none"})
    adapter = requests_mock.post(BASE_URL + "/api/v1/pipeline/summary", json={})
    OpseraHook().get_pipeline(PIPELINE_ID)
    assert adapter.last_request.headers["Authorization"] == token


def test_connection_extras_reach_the_request(set_conn, token, requests_mock):
    from airflow_provider_opsera.hooks import OpseraHook

    set_conn(
        host="opsera.test",
        password=token,
        extra={"timeout": "7", "verify": "false", "proxies": '{"https": "http://proxy:3128"}'},
    )
    hook = OpseraHook()
    requests_mock.post(BASE_URL + "/api/v1/pipeline/summary", json={})
    hook.get_pipeline(PIPELINE_ID)
    request = requests_mock.last_request
    assert request.url.startswith("https://opsera.test/")
    assert request.timeout == 7.0
    assert request.verify is False
    assert request.proxies == {"https": "http://proxy:3128"}


def test_cursor_pages_are_followed_and_envelopes_unwrapped(hook, requests_mock):
    requests_mock.get(
        BASE_URL + "/api/v2/data/people",
        [
            {"json": {"results": [{"email": "a@x.io"}], "next": "c2"}},
            {"json": {"results": [{"email": "b@x.io"}], "next": None}},
        ],
    )
    assert hook.list_people() == [{"email": "a@x.io"}, {"email": "b@x.io"}]
    assert requests_mock.last_request.qs == {"cursor": ["c2"]}


def test_a_full_page_warns_that_records_may_be_missing(hook, requests_mock, task_log):
    requests_mock.get(BASE_URL + "/api/v1/registry/tools", json=[{"_id": str(i)} for i in range(1000)])
    assert len(hook.list_tools()) == 1000
    assert "there may be more than were returned" in task_log.text()


def test_pipeline_url_uses_the_portal(hook):
    assert hook.pipeline_url(PIPELINE_ID) == f"https://portal.opsera.test/workflow/details/{PIPELINE_ID}/summary"


def test_hook_init_reads_no_connection_and_sends_nothing(requests_mock, monkeypatch):
    from airflow_provider_opsera.hooks import OpseraHook

    monkeypatch.delenv("AIRFLOW_CONN_OPSERA_DEFAULT", raising=False)
    OpseraHook("does_not_exist")  # a missing connection only matters once a call is made
    assert requests_mock.call_count == 0
