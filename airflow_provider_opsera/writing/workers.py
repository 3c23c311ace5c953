"""Running the records of a list sync on a few threads, each with a hook of its own.

A ``requests.Session`` is not guaranteed to be thread-safe, so every worker thread gets
its own copy of the hook (:meth:`OpseraHook.for_another_thread`): its own session, the
connection read once, and one rate-limit gate shared by all, so a 429 slows the whole
batch. The first job runs alone in the calling thread: a token without the right scope
then fails on one request, not on one per worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from airflow_provider_opsera.hooks.opsera import OpseraHook

Job = TypeVar("Job")


def run_jobs(
    jobs: Sequence[Job],
    work: Callable[[OpseraHook, Job], None],
    *,
    hook: OpseraHook,
    workers: int,
    stop: threading.Event,
    tick: Callable[[], None],
    seconds_to_next_tick: Callable[[], float],
) -> None:
    """Call ``work(hook, job)`` for every job, at most ``workers`` at a time, in order of submission.

    An exception from ``work`` (or a set ``stop``) ends the run: jobs not yet started are not
    started, the ones running finish, and the exception is raised here. ``tick`` is called
    from this thread while the workers run, whenever ``seconds_to_next_tick()`` has passed.
    """
    if not jobs:
        return
    work(hook, jobs[0])
    rest = jobs[1:]
    if not rest or stop.is_set():
        return
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    local = threading.local()
    twins: list[OpseraHook] = []
    twins_lock = threading.Lock()

    def own_hook() -> OpseraHook:
        twin = getattr(local, "hook", None)
        if twin is None:
            twin = local.hook = hook.for_another_thread()
            with twins_lock:
                twins.append(twin)
        return twin

    def run(job: Any) -> None:
        if not stop.is_set():
            work(own_hook(), job)

    pool = ThreadPoolExecutor(max_workers=min(workers, len(rest)), thread_name_prefix="opsera-sync")
    try:
        pending = {pool.submit(run, job) for job in rest}
        while pending:
            done, pending = wait(pending, timeout=max(0.05, seconds_to_next_tick()), return_when=FIRST_EXCEPTION)
            tick()
            for future in done:
                if future.exception() is not None:
                    stop.set()
                    raise future.exception()  # type: ignore[misc]
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        for twin in twins:
            twin.close()
