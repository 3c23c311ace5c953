"""Where a poll's client CPU goes: the provider's async client against bare aiohttp.

Sends the same status request REQUESTS times (CONCURRENCY at a time, no sleeping) to
``bench.server`` and reports the client's CPU time per request for

* ``aiohttp``        one shared session, a bare ``session.post`` (the floor),
* ``opsera_send_once`` the async client's HTTP request alone, without ``call`` around it,
* ``opsera_hook``    ``OpseraAsyncHook.get_pipeline_run_status`` (what a poll of the trigger costs),
* ``dbt_hook``       ``DbtCloudHook.get_job_status`` (a new session, so a new TLS connection, per call),

and, with ``--profile``, the functions where ``opsera_hook`` spends it (cProfile).
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
import time

from bench.common import ROOT, out_dir, say


def child(variant: str, requests: int, concurrency: int, profile: str | None) -> dict:
    import aiohttp

    from bench.trigger_process import DBT_ACCOUNT_ID, DBT_CONN_ID, OPSERA_CONN_ID, opsera_pipeline_id

    conn = json.loads(os.environ["AIRFLOW_CONN_" + OPSERA_CONN_ID.upper()])

    async def run() -> dict:
        if variant == "aiohttp":
            context = ssl.create_default_context(cafile=conn["extra"]["verify"])
            session = aiohttp.ClientSession(headers={"Accept": "application/json"})
            url = conn["host"] + "/api/v1/pipeline/status"

            async def one(index: int) -> None:
                async with session.post(
                    url,
                    json={"pipelineId": opsera_pipeline_id(index), "runCount": 1},
                    headers={"Authorization": "Bearer " + conn["password"]},
                    ssl=context,
                ) as response:
                    json.loads(await response.text())

            async def close() -> None:
                await session.close()

        elif variant == "opsera_hook":
            from airflow_provider_opsera.hooks.opsera_async import OpseraAsyncHook, close_shared_session

            hooks = [OpseraAsyncHook(OPSERA_CONN_ID) for _ in range(concurrency)]

            async def one(index: int) -> None:
                await hooks[index % concurrency].get_pipeline_run_status(opsera_pipeline_id(index), 1)

            close = close_shared_session
        elif variant == "opsera_send_once":
            # the hook's HTTP request alone: no validation, settings lookup or retry handling
            from airflow_provider_opsera.client.api import ENDPOINTS
            from airflow_provider_opsera.hooks.opsera_async import OpseraAsyncHook, close_shared_session

            hook = OpseraAsyncHook(OPSERA_CONN_ID)
            settings = await hook.settings()
            endpoint = ENDPOINTS["pipeline_status"]
            url = settings.base_url + endpoint.path

            async def one(index: int) -> None:
                body = {"pipelineId": opsera_pipeline_id(index), "runCount": 1}
                await hook._send_once(endpoint, url, settings, body, {})

            close = close_shared_session
        else:
            from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudHook

            hooks = [DbtCloudHook(DBT_CONN_ID) for _ in range(concurrency)]

            async def one(index: int) -> None:
                await hooks[index % concurrency].get_job_status(index + 1, DBT_ACCOUNT_ID)

            async def close() -> None:
                pass

        async def worker(start: int, count: int) -> None:
            for index in range(start, start + count):
                await one(index)

        # warm-up: connections, connection lookups, lazy imports
        await asyncio.gather(*(worker(i * 10, 10) for i in range(concurrency)))
        per_worker = requests // concurrency
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(i * per_worker, per_worker) for i in range(concurrency)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
        await close()
        done = per_worker * concurrency
        return {"variant": variant, "requests": done, "cpu_ms_per_request": cpu * 1000 / done, "per_second": done / wall}

    return asyncio.run(run())


VARIANTS = ("aiohttp", "opsera_send_once", "opsera_hook", "dbt_hook")


def main(requests: int = 4000, concurrency: int = 50, profile: bool = False) -> dict:
    from bench.server import BenchServer
    from bench.tls import make_certificates
    from bench.triggerer import environment

    paths = make_certificates(out_dir() / "tls")
    results = {}
    with BenchServer(paths["cert"], paths["key"], workers=1) as server:
        env = environment(server, paths["ca"])
        for variant in VARIANTS:
            runs = []
            for _ in range(3):
                args = [sys.executable, "-m", "bench.hook_overhead", "--child", variant, str(requests), str(concurrency)]
                if profile and variant == "opsera_hook" and not runs:
                    args.append(str(out_dir() / "opsera_hook.prof"))
                output = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
                line = [x for x in output.stdout.splitlines() if x.startswith("RESULT ")][-1]
                runs.append(json.loads(line[7:]))
            runs.sort(key=lambda r: r["cpu_ms_per_request"])
            results[variant] = runs[1]  # the median of three
            say(f"  {variant:12} {runs[1]['cpu_ms_per_request']:.3f} ms CPU/request ({runs[1]['per_second']:.0f}/s)")
    if profile:
        import pstats

        stats = pstats.Stats(str(out_dir() / "opsera_hook.prof"))
        stats.sort_stats("tottime").print_stats(30)
    return {"requests": requests, "concurrency": concurrency, "variants": results}


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        variant_, requests_, concurrency_ = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        profile_ = sys.argv[5] if len(sys.argv) > 5 else None
        print("RESULT " + json.dumps(child(variant_, requests_, concurrency_, profile_)), flush=True)
    else:
        print(json.dumps(main(profile="--profile" in sys.argv), indent=1))
