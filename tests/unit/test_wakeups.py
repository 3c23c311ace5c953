"""Polls planned one interval apart: every poll made, each wait's phase, order and deadline kept.

The triggers run on an event loop whose clock is virtual: when nothing is ready, the
loop's selector jumps the clock to the next timer, and notes that wake-up.
"""

from __future__ import annotations

import asyncio
import random
import selectors
from collections import defaultdict

import pytest

from airflow_provider_opsera.triggers import OpseraPipelineRunTrigger
from airflow_provider_opsera.triggers.polling import OpseraPollingTrigger
from airflow_provider_opsera.waiting.wakeups import PollSchedule

#: the wall clock is the loop's clock plus this
EPOCH_OFFSET = 1_764_000_000.0371


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None):
        events = super().select(0)
        if not events and timeout:  # nothing to do before the next timer: jump to it
            self._loop.now += timeout
            self._loop.wakeups.append(self._loop.now)
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self, start: float = 5000.0) -> None:
        self.now = start
        self.wakeups: list[float] = []
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self.now


class RecordingHook:
    """Answers ``running`` until ``finish_at`` (loop time), noting when each wait read."""

    def __init__(self, loop: VirtualTimeLoop, finish_at: float) -> None:
        self.loop, self.finish_at = loop, finish_at
        self.reads: dict[str, list[float]] = defaultdict(list)

    def _status(self, key: str) -> str:
        self.reads[key].append(self.loop.time())
        return "success" if self.loop.time() >= self.finish_at else "running"

    async def get_pipeline_run_status(self, pipeline_id: str, run_count: int) -> dict:
        return {"status": self._status(pipeline_id), "message": ""}

    async def get_task_status(self, task_id: str) -> str:
        return self._status(task_id)


@pytest.fixture
def loop(monkeypatch):
    loop = VirtualTimeLoop()
    monkeypatch.setattr(OpseraPollingTrigger, "_clock", staticmethod(lambda: loop.now + EPOCH_OFFSET))
    yield loop
    loop.close()


def run_waits(loop: VirtualTimeLoop, triggers_and_starts, hook: RecordingHook) -> list[tuple[float, dict]]:
    """Start each trigger ``start`` seconds from now; (loop time, payload) of each one's event."""

    async def wait(trigger, start: float):
        await asyncio.sleep(start)
        trigger._hook = hook
        async for event in trigger.run():
            return loop.time(), event.payload

    async def main():
        return await asyncio.gather(*(wait(trigger, start) for trigger, start in triggers_and_starts))

    return loop.run_until_complete(main())


def pipeline_waits(count: int, poll_interval: float, seed: int = 7, **kwargs):
    rng = random.Random(seed)
    return [
        (OpseraPipelineRunTrigger(f"{index:024x}", 1, poll_interval=poll_interval, **kwargs), rng.uniform(0, poll_interval))
        for index in range(count)
    ]


# -- one wait's plan --


def test_polls_stay_one_interval_apart_from_the_start_when_wake_ups_come_late():
    now = [100.0]
    schedule = PollSchedule(5.0, lambda: now[0])
    polls = []
    for late in (0.1, 0.02, 0.124, 0.0, 0.07):
        now[0] += schedule.sleep_before_next() + late  # woken late (a busy loop), then the read takes a moment
        polls.append(now[0] - late)
    assert polls == [105.0, 110.0, 115.0, 120.0, 125.0]


def test_a_read_longer_than_the_interval_plans_again_from_its_end():
    now = [100.0]
    schedule = PollSchedule(5.0, lambda: now[0])
    now[0] += schedule.sleep_before_next()  # polls at 105
    now[0] += 12.0  # the client retried through an outage until 117
    assert schedule.sleep_before_next() == 5.0
    now[0] += 5.0
    assert schedule.sleep_before_next() == 5.0


def test_reads_that_end_within_a_tenth_of_the_interval_keep_the_plan():
    now = [100.0]
    schedule = PollSchedule(5.0, lambda: now[0])
    polls = []
    for late in (0.3, 0.49, 0.1, 0.45):  # the last of a large burst of waits woken together
        now[0] += schedule.sleep_before_next()
        polls.append(now[0])
        now[0] += late
    assert polls == [105.0, 110.0, 115.0, 120.0]


def test_slow_reads_make_polls_less_frequent_instead_of_piling_up():
    now = [100.0]
    schedule = PollSchedule(5.0, lambda: now[0])
    starts = []
    for _ in range(10):
        now[0] += schedule.sleep_before_next()
        starts.append(now[0])
        now[0] += 2.0  # an overloaded server answers in 2 s
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:])]
    assert all(gap == pytest.approx(7.0) for gap in gaps)  # one interval after each read, as without a plan


# -- triggers --


def test_every_poll_is_made_one_interval_apart(loop):
    interval, finish = 5.0, loop.time() + 60
    hook = RecordingHook(loop, finish)
    waits = pipeline_waits(200, interval)
    events = run_waits(loop, waits, hook)
    assert [payload["status"] for _, payload in events] == ["success"] * len(waits)
    for trigger, start in waits:
        reads = hook.reads[trigger.pipeline_id]
        gaps = [later - earlier for earlier, later in zip(reads, reads[1:])]
        # the first read one interval after the start, then one per interval: none skipped, none extra
        assert reads[0] == pytest.approx(5000.0 + start + interval)
        assert all(gap == pytest.approx(interval) for gap in gaps)
        assert reads[-1] - finish < interval  # the run's end seen within one interval


def test_polls_keep_the_order_in_which_the_waits_started(loop):
    interval = 5.0
    hook = RecordingHook(loop, loop.time() + 40)
    waits = pipeline_waits(300, interval, seed=11)
    run_waits(loop, waits, hook)
    by_start = [hook.reads[trigger.pipeline_id] for trigger, _ in sorted(waits, key=lambda pair: pair[1])]
    rounds = min(len(reads) for reads in by_start)
    for k in range(rounds):
        kth = [reads[k] for reads in by_start]
        assert kth == sorted(kth)  # a wait that started later never polls before one that started earlier


@pytest.mark.parametrize("timeout", [0.3, 12.0, 17.01, 29.96, 61.5])
def test_the_deadline_is_kept(loop, timeout):
    hook = RecordingHook(loop, float("inf"))
    trigger = OpseraPipelineRunTrigger("a" * 24, 1, poll_interval=5.0, timeout=timeout)
    [(fired_at, payload)] = run_waits(loop, [(trigger, 0.0)], hook)
    assert payload["status"] == "timeout"
    wall_fired_at = fired_at + EPOCH_OFFSET
    assert wall_fired_at == pytest.approx(trigger.end_time)


def test_a_rebuilt_trigger_keeps_its_deadline(loop):
    first = OpseraPipelineRunTrigger("b" * 24, 1, poll_interval=5.0, timeout=100)
    classpath, kwargs = first.serialize()
    loop.now += 40  # the triggerer restarted 40 s later
    rebuilt = OpseraPipelineRunTrigger(**{k: v for k, v in kwargs.items()})
    [(fired_at, payload)] = run_waits(loop, [(rebuilt, 0.0)], RecordingHook(loop, float("inf")))
    assert payload["status"] == "timeout"
    assert fired_at + EPOCH_OFFSET == pytest.approx(first.end_time)
