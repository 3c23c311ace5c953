"""A token rotated in the connection while a hook is in use: read again once per 401, carry on with the new one."""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_provider_opsera import exceptions as ex
from tests.unit.conftest import BASE_URL, PIPELINE_ID, make_jwt
from tests.unit.pipeline_fakes import make_context

SUMMARY = BASE_URL + "/api/v1/pipeline/summary"
OLD = make_jwt(time.time() + 30 * 86400, jti="old")
NEW = make_jwt(time.time() + 30 * 86400, jti="new")


@pytest.fixture
def connection_reads(monkeypatch) -> list[str]:
    """The connection ids the sync hook reads from Airflow."""
    from airflow_provider_opsera.hooks import OpseraHook

    reads: list[str] = []
    real = OpseraHook.get_connection

    def counting(conn_id):
        reads.append(conn_id)
        return real(conn_id)

    monkeypatch.setattr(OpseraHook, "get_connection", staticmethod(counting))
    return reads


@pytest.fixture
def sync_hook(set_conn):
    from airflow_provider_opsera.hooks import OpseraHook

    set_conn(host=BASE_URL, password=OLD)
    hook = OpseraHook()
    hook._sleep = lambda seconds: None
    return hook


def _answer_by_token(answers: dict[str, dict]):
    """A requests-mock callback answering by the token presented."""

    def respond(request, context):
        token = request.headers["Authorization"].removeprefix("Bearer ")
        status, body = answers[token]
        context.status_code = status
        return body

    return respond


def test_a_401_after_rotation_is_sent_again_with_the_new_token(sync_hook, set_conn, requests_mock, connection_reads):
    adapter = requests_mock.post(SUMMARY, json=_answer_by_token({OLD: (200, {"_id": PIPELINE_ID})}))
    assert sync_hook.get_pipeline(PIPELINE_ID) == {"_id": PIPELINE_ID}  # the old token is still good
    set_conn(host=BASE_URL, password=NEW)  # rotated in Airflow; the hook has not noticed yet
    requests_mock.post(
        SUMMARY, json=_answer_by_token({OLD: (401, {"message": "token revoked"}), NEW: (200, {"_id": "after"})})
    )
    assert sync_hook.get_pipeline(PIPELINE_ID) == {"_id": "after"}
    assert sync_hook.get_pipeline(PIPELINE_ID) == {"_id": "after"}  # the new token is kept
    tokens = [r.headers["Authorization"] for r in requests_mock.request_history]
    assert tokens == [f"Bearer {OLD}", f"Bearer {OLD}", f"Bearer {NEW}", f"Bearer {NEW}"]
    assert connection_reads == ["opsera_default", "opsera_default"]
    assert adapter.call_count == 1


def test_an_unchanged_token_ends_with_the_401_after_one_read(sync_hook, requests_mock, connection_reads):
    requests_mock.post(SUMMARY, status_code=401, json={"message": "token revoked"})
    with pytest.raises(ex.OpseraAuthenticationError, match="token revoked"):
        sync_hook.get_pipeline(PIPELINE_ID)
    assert requests_mock.call_count == 1
    assert connection_reads == ["opsera_default", "opsera_default"]


def test_a_refused_new_token_is_not_chased_further(sync_hook, set_conn, requests_mock, connection_reads):
    requests_mock.post(SUMMARY, status_code=401, json={"message": "token revoked"})
    sync_hook.settings  # noqa: B018 - the hook read the old token before the rotation
    set_conn(host=BASE_URL, password=NEW)
    with pytest.raises(ex.OpseraAuthenticationError):
        sync_hook.get_pipeline(PIPELINE_ID)
    assert requests_mock.call_count == 2
    assert len(connection_reads) == 2


def test_retries_of_a_transient_fault_do_not_read_the_connection(sync_hook, requests_mock, connection_reads):
    requests_mock.post(SUMMARY, [{"status_code": 503}, {"status_code": 502}, {"json": {"_id": PIPELINE_ID}}])
    assert sync_hook.get_pipeline(PIPELINE_ID) == {"_id": PIPELINE_ID}
    assert connection_reads == ["opsera_default"]


def test_a_401_during_retries_reads_the_connection_once(sync_hook, set_conn, requests_mock, connection_reads):
    sync_hook.settings  # noqa: B018
    set_conn(host=BASE_URL, password=NEW)
    requests_mock.post(
        SUMMARY,
        [{"status_code": 503}, {"status_code": 401, "json": {"message": "token revoked"}}, {"json": {"ok": 1}}],
    )
    assert sync_hook.get_pipeline(PIPELINE_ID) == {"ok": 1}
    assert len(connection_reads) == 2


def test_an_expired_token_is_replaced_by_the_rotated_one_without_being_sent(set_conn, requests_mock):
    from airflow_provider_opsera.hooks import OpseraHook

    set_conn(host=BASE_URL, password=make_jwt(time.time() + 60))
    hook = OpseraHook()
    hook.settings  # noqa: B018
    object.__setattr__(hook.settings, "token", make_jwt(time.time() - 1))  # it expired while the task waited
    hook.__dict__["settings"].__dict__.pop("token_expires", None)
    set_conn(host=BASE_URL, password=NEW)
    requests_mock.post(SUMMARY, json={"_id": PIPELINE_ID})
    assert hook.get_pipeline(PIPELINE_ID) == {"_id": PIPELINE_ID}
    assert [r.headers["Authorization"] for r in requests_mock.request_history] == [f"Bearer {NEW}"]


def test_rotation_logs_no_token(sync_hook, set_conn, requests_mock, task_log):
    sync_hook.settings  # noqa: B018
    set_conn(host=BASE_URL, password=NEW)
    requests_mock.post(SUMMARY, json=_answer_by_token({OLD: (401, {"message": f"bad {OLD}"}), NEW: (200, {})}))
    sync_hook.get_pipeline(PIPELINE_ID)
    text = task_log.text()
    assert "holds another one now" in text
    assert OLD.split(".")[1] not in text and NEW.split(".")[1] not in text


# -- the async client, against the emulator over real sockets --


@pytest.fixture
def emulator():
    from airflow_provider_opsera.emulator import OpseraEmulator

    with OpseraEmulator(clock="manual") as emu:
        yield emu


@pytest.fixture
def async_reads(monkeypatch) -> list[str]:
    from airflow_provider_opsera.hooks import opsera_async

    reads: list[str] = []
    real = opsera_async.read_connection

    async def counting(conn_id):
        reads.append(conn_id)
        return await real(conn_id)

    monkeypatch.setattr(opsera_async, "read_connection", counting)
    return reads


def _on_one_loop(scenario):
    async def main():
        from airflow_provider_opsera.hooks.opsera_async import close_shared_session

        try:
            return await scenario()
        finally:
            await close_shared_session()

    return asyncio.run(main())


def test_async_waits_carry_on_with_a_rotated_token_after_one_shared_read(emulator, set_conn, async_reads):
    from airflow_provider_opsera.hooks.opsera_async import OpseraAsyncHook

    set_conn(host=emulator.url, password=emulator.token("admin"))

    async def scenario():
        hooks = [OpseraAsyncHook() for _ in range(20)]
        await asyncio.gather(*(h.get_pipeline(PIPELINE_ID) for h in hooks))
        set_conn(host=emulator.url, password=emulator.mint_token("rotated"))
        emulator.revoke_token("admin")
        answers = await asyncio.gather(*(h.get_pipeline(PIPELINE_ID) for h in hooks))
        return [answer["_id"] for answer in answers]

    assert _on_one_loop(scenario) == [PIPELINE_ID] * 20
    assert len(async_reads) == 2  # the first read, and one after the refusals, shared by all 20
    assert emulator.request_count("POST", "/api/v1/pipeline/summary") == 60  # 20 + 20 refused + 20 resent


def test_async_wait_ends_with_the_401_when_the_connection_kept_the_revoked_token(emulator, set_conn, async_reads):
    from airflow_provider_opsera.hooks.opsera_async import OpseraAsyncHook

    set_conn(host=emulator.url, password=emulator.token("admin"))

    async def scenario():
        hook = OpseraAsyncHook()
        await hook.get_pipeline(PIPELINE_ID)
        emulator.revoke_token("admin")
        with pytest.raises(ex.OpseraAuthenticationError, match="token revoked"):
            await hook.get_pipeline(PIPELINE_ID)

    _on_one_loop(scenario)
    assert len(async_reads) == 2
    assert emulator.request_count("POST", "/api/v1/pipeline/summary") == 2


# -- a token that expires before the wait's timeout would end it --


def test_the_expiry_warning_compares_with_the_end_of_the_wait():
    import datetime as dt

    from airflow_provider_opsera.client.token import expires_before_wait_ends

    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)
    expires = now + dt.timedelta(hours=1)
    warning = expires_before_wait_ends(expires, 7200, now=now)
    assert "expires at 2026-12-01 13:00 UTC, before this wait's timeout would end it (at 2026-12-01 14:00 UTC)" in (
        warning
    )
    assert expires_before_wait_ends(expires, 600, now=now) is None
    assert expires_before_wait_ends(expires, None, now=now) is None  # no timeout: nothing to compare with
    assert expires_before_wait_ends(None, 7200, now=now) is None  # not a JWT: expiry unknown


@pytest.mark.parametrize("timeout, warned", [(7200, True), (600, False), (None, False)])
def test_a_worker_wait_warns_at_its_start(set_conn, requests_mock, task_log, timeout, warned):
    from airflow_provider_opsera.operators import OpseraRunPipelineOperator

    token = make_jwt(time.time() + 3600)
    set_conn(host=BASE_URL, password=token)
    requests_mock.post(SUMMARY, json={"workflow": {"run_count": 2}})
    requests_mock.post(BASE_URL + "/api/v1/pipeline/run", json={"status": "executed", "runCount": 3})
    requests_mock.post(BASE_URL + "/api/v1/pipeline/status", json={"status": "success", "message": "done"})
    requests_mock.post(BASE_URL + "/api/v1/pipeline/logs", json=[])
    op = OpseraRunPipelineOperator(task_id="t", pipeline_id=PIPELINE_ID, deferrable=False, timeout=timeout)
    assert op.execute(make_context()) == 3
    assert ("before this wait's timeout would end it" in task_log.text()) is warned
    assert token.split(".")[1] not in task_log.text()


class SettingsOnlyHook:
    """An async hook that answers its settings and one final status."""

    def __init__(self, token: str) -> None:
        from airflow_provider_opsera.client.connection import OpseraConnectionSettings

        self._settings = OpseraConnectionSettings(base_url=BASE_URL, token=token)

    async def settings(self):
        return self._settings

    async def get_pipeline_run_status(self, pipeline_id, run_count):
        return {"status": "success", "message": "done"}


@pytest.mark.parametrize("timeout, warned", [(7200, True), (600, False), (None, False)])
def test_a_deferred_wait_warns_at_its_start(trigger_clock, task_log, timeout, warned):
    from airflow_provider_opsera.triggers import OpseraPipelineRunTrigger

    trigger = OpseraPipelineRunTrigger(pipeline_id=PIPELINE_ID, run_count=3, poll_interval=1, timeout=timeout)
    trigger._hook = SettingsOnlyHook(make_jwt(time.time() + 3600))

    async def first_event():
        return await anext(trigger.run())

    assert asyncio.run(first_event()).payload["status"] == "success"
    assert ("before this wait's timeout would end it" in task_log.text()) is warned
