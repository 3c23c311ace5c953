"""The triggerer side: N triggers of one provider, each ``run()`` iterated in one event loop.

Run by ``bench.triggerer``::

    python -m bench.trigger_process SIDE N POLL_INTERVAL REPORT_FD SPREAD_SECONDS [GRID_STEP]

The connection comes from ``AIRFLOW_CONN_*`` in the environment. Every trigger is
built, serialized and rebuilt from its serialized form (as the triggerer does), then
started at a random moment within SPREAD_SECONDS, as deferred tasks arrive over time.
A first trigger on an always-finished run warms up the process (lazy imports, the
connection, TLS context) before the baseline memory and CPU are taken. Progress is
reported as JSON lines on REPORT_FD; stdout and stderr take the providers' logs.

Sides: ``opsera`` (the provider as it ships), ``opsera_unaligned`` (the same: the name of the provider
without the wake-up grid it had, in earlier results), ``opsera_unpooled`` (as shipped, but
the shared session may open aiohttp's default 100 connections, as before its pool was bounded), ``dbt``,
``aiohttp_floor`` (a bare aiohttp loop, each wait on its own timer) and
``aiohttp_floor_grid`` (the same loop, each wake-up moved up to a GRID_STEP grid).
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import math
import os
import random
import signal
import sys
import time

from bench.common import cpu_seconds, proc_status, raise_open_file_limit
from bench.server import WARMUP_PIPELINE_ID, WARMUP_RUN_ID

OPSERA_CONN_ID = "opsera_bench"
DBT_CONN_ID = "dbt_bench"
DBT_ACCOUNT_ID = 4242
TIMEOUT = 3600
OPSERA_SIDES = ("opsera", "opsera_unaligned", "opsera_unpooled")
#: aiohttp's own default limit, the provider's pool before it was bounded
UNBOUNDED_POOL = 100


def opsera_pipeline_id(index: int) -> str:
    return f"{index + 1:024x}"


def make_trigger(side: str, index: int | None, poll_interval: float, grid_step: float = 0.0):
    """A trigger for run ``index`` (None: the always-finished warm-up run)."""
    if side in OPSERA_SIDES:
        from airflow_provider_opsera.triggers import OpseraPipelineRunTrigger

        trigger = OpseraPipelineRunTrigger(
            pipeline_id=WARMUP_PIPELINE_ID if index is None else opsera_pipeline_id(index),
            run_count=1,
            opsera_conn_id=OPSERA_CONN_ID,
            poll_interval=poll_interval,
            timeout=TIMEOUT,
        )
    elif side in ("aiohttp_floor", "aiohttp_floor_grid"):
        step = grid_step if side == "aiohttp_floor_grid" else 0.0
        return BareAiohttpWait(WARMUP_PIPELINE_ID if index is None else opsera_pipeline_id(index), poll_interval, step)
    elif side == "dbt":
        from airflow.providers.dbt.cloud.triggers.dbt import DbtCloudRunJobTrigger

        trigger = DbtCloudRunJobTrigger(
            conn_id=DBT_CONN_ID,
            run_id=WARMUP_RUN_ID if index is None else index + 1,
            end_time=time.time() + TIMEOUT,
            poll_interval=poll_interval,
            account_id=DBT_ACCOUNT_ID,
        )
    else:
        raise ValueError(side)
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**kwargs)


class BareAiohttpWait:
    """Side ``aiohttp_floor``: the same wait as a bare loop over one shared aiohttp session.

    No Airflow, no retries, no connection read: the least a poll can cost with aiohttp.
    With ``grid_step``, polls are planned one interval apart and each sleep ends at the next
    multiple of ``grid_step`` of the loop's clock (written out here, not the provider's code).
    """

    _session = None
    _ssl = None

    def __init__(self, pipeline_id: str, poll_interval: float, grid_step: float = 0.0) -> None:
        self.pipeline_id, self.poll_interval, self.grid_step = pipeline_id, poll_interval, grid_step

    async def sleep(self, loop, due: float) -> float:
        """Sleep one interval (on the grid: until the grid point at or after ``due``); the next due time."""
        if not self.grid_step:
            await asyncio.sleep(self.poll_interval)
            return 0.0
        due = max(due, loop.time())
        woken = loop.create_future()
        loop.call_at(math.ceil(due / self.grid_step) * self.grid_step, woken.set_result, None)
        await woken
        return due + self.poll_interval

    async def run(self):
        import ssl

        import aiohttp

        conn = json.loads(os.environ["AIRFLOW_CONN_" + OPSERA_CONN_ID.upper()])
        cls = type(self)
        if cls._session is None or cls._session.closed:
            cls._ssl = ssl.create_default_context(cafile=conn["extra"]["verify"])
            cls._session = aiohttp.ClientSession()
        headers = {"Authorization": "Bearer " + conn["password"]}
        loop = asyncio.get_running_loop()
        due = loop.time() + self.poll_interval
        while True:
            async with cls._session.post(
                conn["host"] + "/api/v1/pipeline/status",
                json={"pipelineId": self.pipeline_id, "runCount": 1},
                headers=headers,
                ssl=cls._ssl,
            ) as response:
                status = json.loads(await response.text())["status"]
            if status == "success":
                yield type("Event", (), {"payload": {"status": status}})()
                return
            due = await self.sleep(loop, due)


async def wait_for(trigger, delay: float, index: int, times: list, statuses: list, errors: list) -> None:
    await asyncio.sleep(delay)
    try:
        async for event in trigger.run():
            times[index] = time.time()
            payload = event.payload if isinstance(event.payload, dict) else {"status": repr(event.payload)}
            statuses[index] = str(payload.get("status"))
            if statuses[index] not in ("success", "succeeded") and len(errors) < 5:
                errors.append(payload)
            break
    except Exception as error:  # noqa: BLE001 - reported, not raised
        times[index] = time.time()
        statuses[index] = f"raised {type(error).__name__}"
        if len(errors) < 5:
            errors.append(repr(error))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main(side: str, count: int, poll_interval: float, report, spread: float, grid_step: float = 0.0) -> None:
    if side in OPSERA_SIDES:
        from airflow_provider_opsera.hooks import opsera_async

        if side == "opsera_unpooled":
            opsera_async.POOL_SIZE = UNBOUNDED_POOL

    def report_line(**data) -> None:
        report.write(json.dumps(data) + "\n")
        report.flush()

    # warm-up: one trigger on a finished run, to completion
    times, statuses, errors = [0.0], [""], []
    await wait_for(make_trigger(side, None, poll_interval, grid_step), 0.0, 0, times, statuses, errors)
    if statuses[0] not in ("success", "succeeded"):
        report_line(phase="failed", where="warm-up", status=statuses[0], errors=errors)
        return
    gc.collect()
    memory = proc_status()
    report_line(phase="baseline", t=time.time(), rss=memory["VmRSS"], cpu=cpu_seconds())

    rng = random.Random(1)
    times, statuses, errors = [0.0] * count, [""] * count, []
    tasks = [
        asyncio.ensure_future(
            wait_for(
                make_trigger(side, index, poll_interval, grid_step),
                rng.uniform(0, spread),
                index,
                times,
                statuses,
                errors,
            )
        )
        for index in range(count)
    ]
    report_line(phase="started", t=time.time(), rss=proc_status()["VmRSS"], cpu=cpu_seconds())
    # SIGTERM: report the events so far and stop waiting for the rest
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait([asyncio.gather(*tasks), stopper], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    for task in tasks:
        task.cancel()
    fired = [t for t in times if t] or [0.0]
    counted: dict[str, int] = {}
    for status in statuses:
        counted[status] = counted.get(status, 0) + 1
    report_line(
        phase="done",
        t=time.time(),
        events=sum(1 for t in times if t),
        statuses=counted,
        errors=[str(e)[:300] for e in errors],
        first=min(fired),
        p50=percentile(fired, 0.5),
        p99=percentile(fired, 0.99),
        last=max(fired),
    )
    if side.startswith("opsera"):
        from airflow_provider_opsera.hooks.opsera_async import close_shared_session

        await close_shared_session()


if __name__ == "__main__":
    side_, count_, interval_, fd_, spread_ = sys.argv[1:6]
    step_ = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
    raise_open_file_limit()
    with os.fdopen(int(fd_), "w") as report_:
        asyncio.run(main(side_, int(count_), float(interval_), report_, float(spread_), step_))
