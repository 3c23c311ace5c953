"""Requests per waited run, and the time to bring console records into the task log.

Against the emulator on a manual clock, each case starts a pipeline run with
``OpseraRunPipelineOperator`` and waits for it to end, by the operator's sync wait
path (``deferrable=False``: the worker sleeps, and each sleep moves the emulated clock)
or its deferred path (``deferrable=True``: the trigger's ``run()`` in an event loop,
its sleeps moving the clock, then ``execute_complete``). The emulator counts every
request it answers.

Run as ``python -m bench.requests_per_run RESULT_JSON``; the operator's log (the
console lines it copies) goes to stdout.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time

BLANK_TEMPLATE = "5fd56d90979ee048ee660624"  # 3 steps, 90 s, 14 console lines
CHATTY = "5fd56d90979ee048ee660628"  # 1 step, 60 s, 1500 console lines

CASES = [
    # (pipeline, name, run length in seconds, console lines, poll interval)
    (BLANK_TEMPLATE, "Blank Template", 90, 14, 30),
    (BLANK_TEMPLATE, "Blank Template", 90, 14, 10),
    (CHATTY, "Chatty", 60, 1500, 30),
]

STATUS = "POST /api/v1/pipeline/status"
LOGS = "POST /api/v1/pipeline/logs"


class _TI:
    """What the operator reads from ``context["ti"]`` outside a real task run."""

    stats_tags: dict = {}

    def xcom_push(self, key, value) -> None:
        pass


def _diff(after: dict, before: dict) -> dict:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def wait_one(emu, pipeline_id: str, poll_interval: float, deferrable: bool) -> dict:
    from airflow.sdk.exceptions import TaskDeferred

    from airflow_provider_opsera.operators import OpseraRunPipelineOperator
    from airflow_provider_opsera.triggers.polling import OpseraPollingTrigger
    from airflow_provider_opsera.waiting import run_logs

    printed = []
    add = run_logs.ConsoleLog.add

    def counting_add(self, records):
        lines = add(self, records)
        if self.echo:
            printed.append(lines)
        return lines

    run_logs.ConsoleLog.add = counting_add
    emu.reset()
    op = OpseraRunPipelineOperator(
        task_id="run", pipeline_id=pipeline_id, poll_interval=poll_interval, deferrable=deferrable
    )
    op._sleep = emu.advance  # the worker's sleep moves the emulated clock
    context = {"ti": _TI()}
    before = emu.request_counts()
    started = emu.now()
    try:
        result = op.execute(context)
    except TaskDeferred as deferred:
        trigger = deferred.trigger

        async def advance(seconds: float) -> None:
            emu.advance(seconds)

        async def first_event():
            async for event in trigger.run():
                return event.payload
            return None

        # the trigger's sleeps and the clock it plans its polls by are the emulated ones
        sleep, clock = OpseraPollingTrigger.__dict__["_sleep"], OpseraPollingTrigger.__dict__["_clock"]
        OpseraPollingTrigger._sleep, OpseraPollingTrigger._clock = staticmethod(advance), staticmethod(emu.now)
        try:
            payload = asyncio.run(first_event())
        finally:
            OpseraPollingTrigger._sleep, OpseraPollingTrigger._clock = sleep, clock
        result = getattr(op, deferred.method_name)(context, payload)
    finally:
        run_logs.ConsoleLog.add = add
    counts = _diff(emu.request_counts(), before)
    return {
        "path": "deferred" if deferrable else "sync",
        "poll_interval": poll_interval,
        "run_count": result,
        "emulated_seconds": emu.now() - started,
        "status_polls": counts.get(STATUS, 0),
        "log_fetches": counts.get(LOGS, 0),
        "other": {k: v for k, v in counts.items() if k not in (STATUS, LOGS)},
        "total": sum(counts.values()),
        "console_lines_in_task_log": sum(printed),
    }


def console_timing(emu, repeats: int = 7) -> dict:
    """Fetch the Chatty run's console records (at most 1000) and copy them into the log."""
    import logging

    from airflow_provider_opsera.hooks import OpseraHook
    from airflow_provider_opsera.operators import OpseraRunPipelineOperator
    from airflow_provider_opsera.waiting.run_logs import ConsoleLog

    emu.reset()
    hook = OpseraHook()
    run_count = hook.run_pipeline(CHATTY)["runCount"]
    emu.advance(120)
    records = hook.get_pipeline_logs(CHATTY, run_count, console_only=True)
    task_log = OpseraRunPipelineOperator(task_id="chatty", pipeline_id=CHATTY).log
    quiet = logging.getLogger("bench.quiet")
    quiet.setLevel(logging.WARNING)
    fetch, printed, formatted, lines = [], [], [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        fetched = hook.get_pipeline_logs(CHATTY, run_count, console_only=True)
        fetch.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        lines = ConsoleLog(task_log).add(fetched)
        printed.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ConsoleLog(quiet).add(fetched)  # the provider's own work: the records' lines, no log output
        formatted.append(time.perf_counter() - t0)
    return {
        "records": len(records),
        "lines_printed": lines,
        "fetch_ms": _ms(fetch),
        "into_task_log_ms": _ms(printed),
        "provider_only_ms": _ms(formatted),
        "repeats": repeats,
    }


def _ms(values: list[float]) -> dict:
    return {"median": statistics.median(values) * 1000, "min": min(values) * 1000, "max": max(values) * 1000}


def main(result_path: str) -> None:
    from airflow_provider_opsera.emulator import OpseraEmulator

    results = {"cases": [], "console": None}
    with OpseraEmulator(clock="manual") as emu:
        os.environ["AIRFLOW_CONN_OPSERA_DEFAULT"] = emu.connection_json()
        for pipeline_id, name, seconds, lines, interval in CASES:
            for deferrable in (False, True):
                case = wait_one(emu, pipeline_id, interval, deferrable)
                case.update({"pipeline": name, "run_seconds": seconds, "console_lines": lines})
                results["cases"].append(case)
        results["console"] = console_timing(emu)
    with open(result_path, "w") as out:
        json.dump(results, out, indent=2)


if __name__ == "__main__":
    main(sys.argv[1])
