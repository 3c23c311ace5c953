"""The async client triggers use: same errors and retry policy as the sync hook, one shared session."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from airflow_provider_opsera import exceptions as ex
from tests.unit.conftest import PIPELINE_ID, TASK_ID


class ScriptedOpsera:
    """A real HTTP server on loopback answering each route from a queue of scripted answers."""

    def __init__(self) -> None:
        self.answers: dict[str, list] = {}
        self.requests: list[tuple[str, dict, str]] = []

    def script(self, path: str, *answers) -> None:
        self.answers[path] = list(answers)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.text()
        self.requests.append((request.path, dict(request.headers), body))
        queue = self.answers.get(request.path) or [(404, {"message": "no script"})]
        status, payload = queue.pop(0) if len(queue) > 1 else queue[0]
        if status == "drop":
            request.transport.close()
            return web.Response()
        headers = {"Retry-After": "2"} if status == 429 else {}
        return web.Response(status=status, text=json.dumps(payload), content_type="application/json",
                            headers=headers)


async def _serve(scripted: ScriptedOpsera) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", scripted.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
def run_against(set_conn, token):
    """Run ``scenario(hook, scripted)`` on a fresh loop against a scripted server."""

    def _run(scenario, prepare=None):
        scripted = ScriptedOpsera()
        if prepare:
            prepare(scripted)

        async def main():
            from airflow_provider_opsera.hooks.opsera_async import OpseraAsyncHook, close_shared_session

            runner, url = await _serve(scripted)
            set_conn(host=url, password=token)
            sleeps: list[float] = []

            async def fake_sleep(seconds: float) -> None:
                sleeps.append(seconds)

            hook = OpseraAsyncHook(sleep=fake_sleep)
            try:
                return await scenario(hook, scripted, sleeps)
            finally:
                await close_shared_session()
                await runner.cleanup()

        return asyncio.run(main())

    return _run


STATUS = "/api/v1/pipeline/status"


def test_status_is_read_with_the_token(run_against, token):
    async def scenario(hook, scripted, sleeps):
        return await hook.get_pipeline_run_status(PIPELINE_ID, 2)

    def prepare(s):
        s.script(STATUS, (200, {"status": "running", "message": "Run 2 is running"}))

    assert run_against(scenario, prepare) == {"status": "running", "message": "Run 2 is running"}


def test_transient_faults_are_retried_with_the_shared_policy(run_against):
    async def scenario(hook, scripted, sleeps):
        answer = await hook.get_pipeline_run_status(PIPELINE_ID, 2)
        return answer, len(scripted.requests), sleeps

    def prepare(s):
        s.script(STATUS, (503, {"message": "unavailable"}), (429, {"message": "busy"}), (200, {"status": "success"}))

    answer, requests, sleeps = run_against(scenario, prepare)
    assert answer == {"status": "success"}
    assert requests == 3
    assert sleeps[1] == 2.0  # Retry-After honoured


def test_a_dropped_connection_on_a_read_is_retried(run_against):
    async def scenario(hook, scripted, sleeps):
        return await hook.get_task_status(TASK_ID), len(scripted.requests)

    def prepare(s):
        s.script("/api/v1/task/status", ("drop", None), (200, "running"))

    assert run_against(scenario, prepare) == ("running", 2)


def test_client_errors_are_typed_and_not_retried(run_against):
    async def scenario(hook, scripted, sleeps):
        with pytest.raises(ex.OpseraPermissionError, match="scope must be one of") as caught:
            await hook.get_pipeline(PIPELINE_ID)
        return caught.value.status_code, len(scripted.requests)

    def prepare(s):
        s.script("/api/v1/pipeline/summary", (403, {"status": "failed", "message": "forbidden"}))

    assert run_against(scenario, prepare) == (403, 1)


def test_stop_is_sent_once_and_bad_ids_never(run_against):
    async def scenario(hook, scripted, sleeps):
        with pytest.raises(ex.OpseraInputError):
            await hook.stop_pipeline("nope")
        answer = await hook.stop_pipeline(PIPELINE_ID)
        return answer, [(p, json.loads(b)) for p, _, b in scripted.requests]

    def prepare(s):
        s.script("/api/v1/pipeline/stop", (200, {"status": "success", "message": "The pipeline has been stopped."}))

    answer, requests = run_against(scenario, prepare)
    assert answer["status"] == "success"
    assert requests == [("/api/v1/pipeline/stop", {"pipelineId": PIPELINE_ID})]


def test_clients_on_one_loop_share_one_session(run_against):
    async def scenario(hook, scripted, sleeps):
        from airflow_provider_opsera.hooks import opsera_async

        other = opsera_async.OpseraAsyncHook()
        await hook.get_task_status(TASK_ID)
        first = opsera_async.shared_session()
        await asyncio.gather(hook.get_task_status(TASK_ID), other.get_task_status(TASK_ID))
        open_sessions = [share for share in opsera_async._LOOPS.values() if share.session and not share.session.closed]
        return first is opsera_async.shared_session() and len(open_sessions) == 1

    def prepare(s):
        s.script("/api/v1/task/status", (200, "success"))

    assert run_against(scenario, prepare) is True


@pytest.fixture
def connection_reads(monkeypatch) -> list[str]:
    """The connection ids the async client reads from Airflow."""
    from airflow_provider_opsera.hooks import opsera_async

    reads: list[str] = []
    real_read = opsera_async.read_connection

    async def counting_read(conn_id):
        reads.append(conn_id)
        return await real_read(conn_id)

    monkeypatch.setattr(opsera_async, "read_connection", counting_read)
    return reads


def test_waits_on_one_loop_read_the_connection_once(run_against, connection_reads):
    from airflow_provider_opsera.hooks import opsera_async

    async def scenario(hook, scripted, sleeps):
        others = [opsera_async.OpseraAsyncHook() for _ in range(50)]
        await asyncio.gather(*(h.get_task_status(TASK_ID) for h in [hook, *others]))
        return len(connection_reads)

    def prepare(s):
        s.script("/api/v1/task/status", (200, "running"))

    assert run_against(scenario, prepare) == 1


def test_a_401_reads_the_connection_again_and_the_next_call_uses_that_read(run_against, connection_reads):
    async def scenario(hook, scripted, sleeps):
        with pytest.raises(ex.OpseraAuthenticationError):
            await hook.get_task_status(TASK_ID)
        assert await hook.get_task_status(TASK_ID) == "running"
        return len(connection_reads)

    def prepare(s):
        s.script("/api/v1/task/status", (401, {"message": "token expired"}), (200, "running"))

    assert run_against(scenario, prepare) == 2
