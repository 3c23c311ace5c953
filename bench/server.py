"""A local HTTPS server that answers both providers' run-status polls.

It serves
  POST /api/v1/pipeline/status                      (Opsera: ``{"status": "running"}``)
  GET  /api/v2/accounts/{account_id}/runs/{run_id}/ (dbt Cloud: ``{"data": {"status": 3}}``)
from several worker processes sharing one port (SO_REUSEPORT), so that the server is
not what limits the clients. Runs stay in progress until ``flip()``: from then on
every poll answers success. Every worker counts the polls it served in shared memory,
and when they arrived, in 10 ms buckets (``largest_burst``).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
import ssl
import time

OPSERA, DBT, OTHER = 0, 1, 2
SIDES = ("opsera", "dbt", "other")
#: a pipeline / run that is always finished: the clients' warm-up poll
WARMUP_PIPELINE_ID = "f" * 24
WARMUP_RUN_ID = 999_999_999
#: runs whose first poll the server notes, per provider (run i is pipeline id i+1 in hex / run id i+1)
MAX_RUNS = 20_000
#: the arrival timeline: polls per BURST_BUCKET seconds, a ring of the last BURST_RING buckets per worker
BURST_BUCKET = 0.01
BURST_RING = 4096


def _worker(index, port, cert, key, counts, seen, flip_at, ready, stop, arrivals, stamps) -> None:
    import asyncio

    from aiohttp import web

    base = index * len(SIDES)

    def arrived(now: float) -> None:
        bucket = int(now / BURST_BUCKET)
        slot = index * BURST_RING + bucket % BURST_RING
        if stamps[slot] != bucket:
            stamps[slot], arrivals[slot] = bucket, 0
        arrivals[slot] += 1

    def finished(now: float) -> bool:
        at = flip_at.value
        return at > 0 and now >= at

    def note(side: int, run: int) -> None:
        if 0 <= run < MAX_RUNS:
            seen[side * MAX_RUNS + run] = 1

    async def opsera_status(request: web.Request) -> web.Response:
        if not request.headers.get("Authorization"):
            return web.json_response({"status": "failed", "message": "Unauthorized"}, status=401)
        arrived(time.time())
        body = json.loads(await request.read())
        counts[base + OPSERA] += 1
        pipeline_id = body.get("pipelineId")
        done = pipeline_id == WARMUP_PIPELINE_ID or finished(time.time())
        if not done:
            note(OPSERA, int(pipeline_id, 16) - 1)
        run = body.get("runCount")
        if done:
            return web.json_response(
                {"status": "success", "message": f"Pipeline: Bench's Run {run} was successful."}
            )
        return web.json_response({"status": "running", "message": f"Pipeline: Bench's Run {run} is running."})

    async def dbt_run(request: web.Request) -> web.Response:
        if not request.headers.get("Authorization"):
            return web.json_response({"status": {"code": 401, "is_success": False}}, status=401)
        arrived(time.time())
        counts[base + DBT] += 1
        run_id = int(request.match_info["run_id"])
        done = run_id == WARMUP_RUN_ID or finished(time.time())
        if not done:
            note(DBT, run_id - 1)
        status = 10 if done else 3
        return web.json_response(
            {
                "status": {"code": 200, "is_success": True, "user_message": "Success!", "developer_message": ""},
                "data": {
                    "id": run_id,
                    "account_id": int(request.match_info["account_id"]),
                    "status": status,
                    "status_humanized": "Success" if done else "Running",
                    "in_progress": not done,
                    "is_complete": done,
                },
            }
        )

    async def other(request: web.Request) -> web.Response:
        counts[base + OTHER] += 1
        await request.read()
        return web.json_response({"status": "failed", "message": f"not served: {request.path}"}, status=404)

    async def serve() -> None:
        app = web.Application()
        app.router.add_post("/api/v1/pipeline/status", opsera_status)
        app.router.add_get("/api/v2/accounts/{account_id}/runs/{run_id}/", dbt_run)
        app.router.add_route("*", "/{tail:.*}", other)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=75)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=context, backlog=4096, reuse_port=True)
        await site.start()
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.2)
        await runner.cleanup()

    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(serve())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BenchServer:
    def __init__(self, cert: str, key: str, workers: int = 2) -> None:
        self.cert, self.key, self.workers = cert, key, workers
        context = mp.get_context("spawn")
        self._context = context
        self.counts = context.Array("q", workers * len(SIDES), lock=False)
        self.seen = context.Array("b", 2 * MAX_RUNS, lock=False)
        self.flip_at = context.Value("d", 0.0, lock=False)
        self.arrivals = context.Array("i", workers * BURST_RING, lock=False)
        self.stamps = context.Array("q", workers * BURST_RING, lock=False)
        self._stop = context.Event()
        self.port = free_port()
        self.processes: list = []

    def start(self) -> BenchServer:
        readies = []
        for index in range(self.workers):
            ready = self._context.Event()
            process = self._context.Process(
                target=_worker,
                args=(
                    index,
                    self.port,
                    self.cert,
                    self.key,
                    self.counts,
                    self.seen,
                    self.flip_at,
                    ready,
                    self._stop,
                    self.arrivals,
                    self.stamps,
                ),
                daemon=True,
                name=f"bench-server-{index}",
            )
            process.start()
            self.processes.append(process)
            readies.append(ready)
        for ready in readies:
            if not ready.wait(30):
                self.stop()
                raise RuntimeError("a bench server worker did not start")
        return self

    def stop(self) -> None:
        self._stop.set()
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.kill()
        self.processes = []

    def __enter__(self) -> BenchServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def served(self) -> dict[str, int]:
        totals = dict.fromkeys(SIDES, 0)
        for index in range(self.workers):
            for side, name in enumerate(SIDES):
                totals[name] += self.counts[index * len(SIDES) + side]
        return totals

    def polled_runs(self, side: str) -> int:
        """How many distinct runs of a provider have been polled since ``forget_runs()``."""
        offset = SIDES.index(side) * MAX_RUNS
        return bytes(self.seen[offset : offset + MAX_RUNS]).count(1)

    def largest_burst(self, since: float, until: float) -> int:
        """The most polls that arrived within one BURST_BUCKET between two moments (all workers together)."""
        first, last = int(since / BURST_BUCKET), int(until / BURST_BUCKET)
        largest = 0
        for bucket in range(max(first, last - BURST_RING + 1), last + 1):
            slot = bucket % BURST_RING
            largest = max(
                largest,
                sum(
                    self.arrivals[worker * BURST_RING + slot]
                    for worker in range(self.workers)
                    if self.stamps[worker * BURST_RING + slot] == bucket
                ),
            )
        return largest

    def forget_runs(self) -> None:
        self.seen[:] = bytes(2 * MAX_RUNS)

    def flip(self, at: float | None = None) -> float:
        """From ``at`` (now by default) on, every run answers success."""
        at = time.time() if at is None else at
        self.flip_at.value = at
        return at

    def unflip(self) -> None:
        self.flip_at.value = 0.0

    def cpu_seconds(self) -> float:
        from bench.common import cpu_seconds

        return sum(cpu_seconds(pid) for pid in self.pids)


if __name__ == "__main__":  # a quick manual check: python -m bench.server
    from bench.common import out_dir
    from bench.tls import make_certificates

    paths = make_certificates(out_dir() / "tls")
    with BenchServer(paths["cert"], paths["key"]) as server:
        print(f"https://127.0.0.1:{server.port}  CA {paths['ca']}  pids {server.pids}", flush=True)
        os.system(
            f"curl -s --cacert {paths['ca']} -H 'Authorization: Token x' "
            f"https://127.0.0.1:{server.port}/api/v2/accounts/1/runs/5/; echo; "
            f"curl -s --cacert {paths['ca']} -H 'Authorization: Bearer x' -d '{{\"pipelineId\":\"a\",\"runCount\":1}}' "
            f"https://127.0.0.1:{server.port}/api/v1/pipeline/status; echo"
        )
        server.flip()
        os.system(
            f"curl -s --cacert {paths['ca']} -H 'Authorization: Token x' "
            f"https://127.0.0.1:{server.port}/api/v2/accounts/1/runs/5/; echo"
        )
        print(server.served(), server.cpu_seconds())
