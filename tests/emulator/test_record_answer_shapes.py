"""An Insights answer that is not a record fails that record, with a message naming its shape; the others go on.

Over real sockets, against a server whose read of one person answers a JSON array, a string or a
number: the list sync fails that record with an Opsera error, creates the rest and reports them.
"""

from __future__ import annotations

import json
import urllib.parse

import pytest

from airflow_provider_opsera.exceptions import OpseraBadResponseError
from airflow_provider_opsera.operators import OpseraCreatePersonOperator
from airflow_provider_opsera.writing.record_sync import OpseraSyncError
from tests.scripted_http import Answer, Request, ScriptedServer, connection_json
from tests.unit.pipeline_fakes import FakeTI, make_context

ODD = "odd@example.com"


def people_server(odd_answer: object) -> ScriptedServer:
    """Reads answer 404 but for ``ODD``, whose read answers ``odd_answer`` (text is sent as it is); creates answer
    the record."""

    def answer(request: Request) -> Answer:
        if request.method == "GET":
            email = urllib.parse.unquote(request.path.rsplit("/", 1)[1])
            if email == ODD:
                return Answer(200, odd_answer)
            return Answer(404, {"status": "failed", "message": "not found"})
        return Answer(200, {**json.loads(request.body), "_id": "created"})

    return ScriptedServer(answer)


@pytest.mark.parametrize(
    "odd_answer, shape",
    [([ODD], f"a JSON array (['{ODD}'])"), ('"exists"', "a JSON string ('exists')"), (7, "a number (7)")],
)
def test_a_list_sync_fails_the_record_whose_read_is_no_object_and_reports_the_others(odd_answer, shape, monkeypatch):
    with people_server(odd_answer) as server:
        monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", connection_json(server.url, "token-not-a-jwt"))
        people = [{"email": "a@example.com"}, {"email": ODD}, {"email": "b@example.com"}]
        ti = FakeTI()
        with pytest.raises(OpseraSyncError) as caught:
            OpseraCreatePersonOperator(task_id="people", person=people, max_concurrency=2).execute(make_context(ti))
    summary = ti.xcoms["return_value"]
    assert summary["created_ids"] == ["a@example.com", "b@example.com"]
    assert (summary["created"], summary["failed"]) == (2, 1)
    [(label, error)] = caught.value.failures
    assert label == f"person #2 ({ODD})" and isinstance(error, OpseraBadResponseError)
    assert str(error) == (
        f"Opsera answered the read of person #2 ({ODD}) with {shape}, not a record (a JSON object): "
        "whether it exists cannot be told, so it was not created."
    )
    assert [r.method for r in server.requests].count("POST") == 2


def test_one_record_whose_read_is_no_object_fails_with_that_message(monkeypatch):
    with people_server([]) as server:
        monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", connection_json(server.url, "token-not-a-jwt"))
        with pytest.raises(OpseraBadResponseError, match=r"with a JSON array \(\[\]\), not a record"):
            OpseraCreatePersonOperator(task_id="person", person={"email": ODD}).execute(make_context())
    assert [r.method for r in server.requests] == ["GET"]
