"""A tenant whose log records carry ``{"$oid": ...}`` ids and whose log pages hold items that are not
records: a run that succeeds still ends the task successfully, each console line shown once."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from airflow_provider_opsera.emulator.connection import connection_json
from tests.unit.pipeline_fakes import make_context

from .support import BLANK
from .test_pipeline_operator_against_emulator import EmulatedTime, operator
from .test_pipeline_trigger_against_emulator import deferred_cycle

LOGS_PATH = "/api/v1/pipeline/logs"
NON_RECORDS = [7, "stray text", None, ["x"], True]


def odd_page(records: list) -> list:
    """The emulator's log page with object ids and, around the records, items that are not records."""
    return [NON_RECORDS[0], *({**r, "_id": {"$oid": r["_id"]}} for r in records), *NON_RECORDS[1:]]


class OddLogsProxy(BaseHTTPRequestHandler):
    """Passes every request to the emulator; rewrites the answers of the logs call."""

    upstream = ""

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {
            name: value for name, value in self.headers.items() if name.lower() not in ("host", "content-length")
        }
        answer = requests.request(self.command, self.upstream + self.path, data=body, headers=headers, timeout=10)
        content = answer.content
        if self.path.split("?")[0] == LOGS_PATH and answer.status_code == 200:
            content = json.dumps(odd_page(answer.json())).encode()
        self.send_response(answer.status_code)
        self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    def log_message(self, format, *args):  # the test's output is the task log, not the proxy's
        pass


@pytest.fixture
def odd_conn(emulator, monkeypatch):
    handler = type("Handler", (OddLogsProxy,), {"upstream": emulator.url})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proxy_url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", connection_json(proxy_url, emulator.token("admin")))
    yield emulator
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def assert_console_shown_once_with_one_note(task_log) -> None:
    lines = ["[checkout] Cloning into 'web-portal'...", "[build] Compiled successfully", "[deploy] Deployment complete"]
    assert [task_log.count(line) for line in lines] == [1, 1, 1]
    assert task_log.in_order(*lines)
    assert task_log.count("item(s) that are not log records (array, boolean, null, number, string)") == 1


def test_the_worker_wait_succeeds_with_object_ids_and_stray_items(odd_conn, task_log):
    assert operator(EmulatedTime(odd_conn), BLANK).execute(make_context()) == 1
    assert_console_shown_once_with_one_note(task_log)
    assert odd_conn.request_count("POST", LOGS_PATH) > 1  # the same records came back in several pages


def test_the_deferred_wait_succeeds_with_object_ids_and_stray_items(odd_conn, task_log):
    assert deferred_cycle(odd_conn, BLANK) == 1
    assert_console_shown_once_with_one_note(task_log)
