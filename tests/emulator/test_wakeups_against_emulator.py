"""Many pipeline triggers on one real event loop against the emulator: every poll made over real sockets."""

from __future__ import annotations

import asyncio
import random

import pytest

from airflow_provider_opsera.emulator import OpseraEmulator
from airflow_provider_opsera.hooks import OpseraHook
from airflow_provider_opsera.hooks.opsera_async import OpseraAsyncHook
from airflow_provider_opsera.triggers import OpseraPipelineRunTrigger

from .support import BLANK

WAITS = 30
POLL_INTERVAL = 1.0


@pytest.fixture
def quick_emulator(monkeypatch):
    """Emulated time 20x real: the Blank Template's 90 s run takes 4.5 s."""
    with OpseraEmulator(time_scale=20.0) as emu:
        monkeypatch.setenv("AIRFLOW_CONN_OPSERA_DEFAULT", emu.connection_json("admin"))
        yield emu


class CountingTrigger(OpseraPipelineRunTrigger):
    reads: list[int]

    async def read_status(self, hook):
        self.reads.append(1)
        return await super().read_status(hook)


def test_waits_on_one_loop_make_every_poll(quick_emulator):
    run_count = OpseraHook().run_pipeline(BLANK)["runCount"]
    before = quick_emulator.request_count("POST", "/api/v1/pipeline/status")
    rng = random.Random(5)

    async def main():
        triggers = []
        for _ in range(WAITS):
            trigger = CountingTrigger(BLANK, run_count, poll_interval=POLL_INTERVAL, timeout=120)
            trigger.reads = []
            trigger._hook = OpseraAsyncHook(trigger.opsera_conn_id)
            triggers.append(trigger)

        async def wait(trigger):
            await asyncio.sleep(rng.uniform(0, POLL_INTERVAL))
            async for event in trigger.run():
                return event.payload

        return triggers, await asyncio.wait_for(asyncio.gather(*(wait(t) for t in triggers)), 60)

    triggers, events = asyncio.run(main())
    assert [event["status"] for event in events] == ["success"] * WAITS
    assert {event["run_count"] for event in events} == {run_count}
    reads = sum(len(trigger.reads) for trigger in triggers)
    # every read the triggers made reached the emulator once: none lost, none repeated
    assert quick_emulator.request_count("POST", "/api/v1/pipeline/status") - before == reads
    assert reads >= WAITS * 4  # a 4.5 s run polled every second
