"""A closed event loop is freed: nothing the provider keeps per loop holds one after its waits end.

``dag.test()`` runs each trigger on an event loop of its own (``asyncio.run``), as do tests and
short scripts; a process that runs many must not keep every loop it ever ran, with its
connections and its connection reads.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import types
import weakref
from types import SimpleNamespace

from airflow_provider_opsera.hooks.opsera_async import OpseraAsyncHook
from airflow_provider_opsera.triggers import OpseraPipelineRunTrigger, OpseraTaskTrigger
from airflow_provider_opsera.triggers.polling import OpseraPollingTrigger

from .loopback import PIPELINE_ID, RecordingServer, json_answer, use_connection

TASK_ID = "61a1b2c3d4e5f6a7b8c9d0e1"
WAITS = 50


def answer_success(handler) -> None:
    body = {"status": "success", "message": "done"} if "/pipeline/" in handler.path else "success"
    json_answer(body)(handler)


def alive(loops: list[weakref.ref]) -> int:
    gc.collect()
    return sum(1 for loop in loops if loop() is not None)


def held_by_the_provider(loops: list[weakref.ref]) -> int:
    """How many of ``loops`` what the provider's modules hold (caches, class attributes) reaches, strongly.

    asgiref, which Airflow reads connections through, keeps the last loop that used it: not the provider's.
    """
    targets = {id(loop()) for loop in loops if loop() is not None}
    package = [module for name, module in list(sys.modules.items()) if name.startswith("airflow_provider_opsera")]
    pending = [value for module in package for value in vars(module).values()]
    seen: set[int] = set()
    reached = 0
    while pending:
        item = pending.pop()
        if id(item) in seen or isinstance(item, types.ModuleType):
            continue
        seen.add(id(item))
        if id(item) in targets:
            reached += 1
            continue
        if isinstance(item, type) and not item.__module__.startswith("airflow_provider_opsera"):
            continue  # another library's class: its own state, not a cache of the provider
        pending.extend(gc.get_referents(item))
    return reached


def test_fifty_waits_each_on_a_loop_of_its_own_leave_no_loop_behind(monkeypatch):
    async def no_wait(seconds: float) -> None:
        await asyncio.sleep(0)

    monkeypatch.setattr(OpseraPollingTrigger, "_sleep", staticmethod(no_wait))
    loops: list[weakref.ref] = []

    async def wait(number: int) -> dict:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        if number % 2:
            trigger = OpseraPipelineRunTrigger(PIPELINE_ID, 3, poll_interval=1, timeout=60)
            # as in a triggerer: it asks for its task's state early and holds its first event
            trigger.trigger_id = number
            trigger.task_instance = SimpleNamespace(dag_id="d", run_id="r", task_id="t", map_index=-1, try_number=1)
        else:
            trigger = OpseraTaskTrigger(TASK_ID, poll_interval=1)
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    with RecordingServer(answer_success) as server:
        use_connection(monkeypatch, server.url)
        statuses = {asyncio.run(wait(number))["status"] for number in range(WAITS)}
    assert statuses == {"success"}
    assert len(loops) == WAITS and alive(loops[:-1]) == 0
    assert held_by_the_provider(loops) == 0


def test_a_client_used_outside_a_trigger_holds_no_loop_but_the_last_one_it_used(monkeypatch):
    """Without a trigger to close its session, a loop's share goes once another loop uses the client."""
    loops: list[weakref.ref] = []

    async def read() -> str:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        return await OpseraAsyncHook().get_task_status(TASK_ID)

    with RecordingServer(json_answer("success")) as server:
        use_connection(monkeypatch, server.url)
        statuses = {asyncio.run(read()) for _ in range(5)}
    assert statuses == {"success"}
    assert alive(loops[:-1]) == 0  # the last one's share goes when another loop uses the client


def test_a_connection_read_under_way_when_its_loop_ends_is_not_kept(monkeypatch):
    """The read is cancelled with the loop's other tasks: nothing of it stays, and the next loop reads again."""
    monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", json.dumps({"conn_type": "opsera", "host": "http://127.0.0.1:9"}))
    loops: list[weakref.ref] = []

    async def start_a_read_and_leave() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        asyncio.get_running_loop().create_task(OpseraAsyncHook().settings())
        await asyncio.sleep(0)

    for _ in range(3):
        asyncio.run(start_a_read_and_leave())
    assert alive(loops[:-1]) == 0
    assert held_by_the_provider(loops) == 0
