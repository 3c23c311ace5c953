"""The real-triggerer benchmark's arithmetic: per-wait figures beyond the sleeping triggerer, and the verdicts."""

from __future__ import annotations

import pytest

from bench.real_triggerer import cycle_figures, figures, per_wait_cpu_ms, polls_achieved, verdict
from bench.report import real_triggerer_section


def case(kind: str, n: int, interval: float, cpu_per_second: float, rss_mib: float, switch=None, **extra) -> dict:
    return {
        "kind": kind,
        "n": n,
        "poll_interval": interval,
        "switch": switch,
        "cpu_seconds_per_second": cpu_per_second,
        "rss_bytes": rss_mib * 2**20,
        "polls_achieved": 1.0,
        "polls": n * 4,
        "window_seconds": 20.0,
        "load_average": [0.5, 0.5, 0.5],
        "resume": {"resumed": n, "of": n, "median_s": 2.0, "max_s": 4.5},
        **extra,
    }


def test_cpu_per_wait_per_poll_scales_the_window_to_one_interval_and_one_wait():
    # 3 s of CPU over 60 s is 50 ms per second: 250 ms per 5 s interval, over 1,000 waits
    assert per_wait_cpu_ms(3.0, 60.0, 1000, 5.0) == pytest.approx(0.25)


def test_figures_take_the_sleeping_triggerer_off():
    sleeping = case("sleep", 1000, 5.0, 0.010, 300)
    opsera = case("opsera", 1000, 5.0, 0.060, 310)
    found = figures(opsera, sleeping)
    assert found["cpu_ms_per_poll"] == pytest.approx(0.25)  # 50 ms/s beyond, x 5 s, / 1,000 waits
    assert found["cpu_ms_per_minute"] == pytest.approx(3.0)
    assert found["kib_per_wait"] == pytest.approx(10 * 1024 / 1000)


def test_cycle_figures_give_one_figure_per_cycle_and_per_memory_sample():
    sleeping = case("sleep", 1000, 5.0, 0.010, 300)
    opsera = case("opsera", 1000, 5.0, 0.060, 310, cpu_per_cycle_s=[0.050, 0.070], rss_samples=[309 * 2**20, 311 * 2**20])
    found = cycle_figures(opsera, sleeping)
    assert found["cpu_ms_per_poll"] == pytest.approx([0.2, 0.3])
    assert found["kib_per_wait"] == pytest.approx([9 * 1024 / 1000, 11 * 1024 / 1000])
    # 40 and 60 ms/s beyond the sleeping triggerer over a 20 s window of 4,000 polls
    assert found["cpu_ms_per_poll_made"] == pytest.approx([0.2, 0.3])


def test_polls_achieved_counts_one_poll_per_wait_per_interval():
    assert polls_achieved(3000, 1000, 20.0, 5.0) == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("on", "off", "expected"),
    [
        ([0.30, 0.32], [0.40, 0.45], "KEPT"),
        ([0.30, 0.32], [0.31, 0.45], "DELETED"),  # the ranges overlap: noise
        ([0.30, 0.32], [0.325, 0.33], "DELETED"),  # apart, but by less than 10 %
        ([0.30, 0.32], [0.20, 0.21], "DELETED"),  # cheaper with it off
        ([], [0.5], "not measured"),
    ],
)
def test_an_optimisation_is_kept_only_when_turning_it_off_costs_more_beyond_noise(on, off, expected):
    assert verdict(on, off) == expected


def optimizations_rows(cases: list[dict]) -> dict[str, str]:
    text = "\n".join(real_triggerer_section({"cases": cases}))
    return {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ") and "`" in line}


GRID, POOL = "wake-up grid (`waiting/wakeups.py`, `GRID_STEP`)", "pool cap (`hooks/opsera_async.py`, `POOL_SIZE`)"


def test_the_optimizations_table_keeps_a_switch_whose_cycles_all_cost_more():
    cases = [
        case("sleep", 1000, 5.0, 0.010, 300),
        case("opsera", 1000, 5.0, 0.060, 310, cpu_per_cycle_s=[0.058, 0.062]),
        case("opsera", 1000, 5.0, 0.062, 310, cpu_per_cycle_s=[0.060, 0.064]),
        case("dbt", 1000, 5.0, 0.200, 400),
        case("opsera", 1000, 5.0, 0.120, 310, switch="grid", cpu_per_cycle_s=[0.110, 0.130]),
        case("opsera", 1000, 5.0, 0.0605, 310, switch="pool", cpu_per_cycle_s=[0.050, 0.071]),
    ]
    rows = optimizations_rows(cases)
    assert rows[GRID].rstrip().endswith("| KEPT |")
    assert rows[POOL].rstrip().endswith("| DELETED |")
    assert "| 2 / 1 | 0.255 (0.240–0.270) → 0.550 (0.500–0.600) |" in rows[GRID]


def test_memory_is_not_compared_when_a_run_fell_behind():
    more_memory_off = [
        case("sleep", 1000, 5.0, 0.010, 300),
        case("opsera", 1000, 5.0, 0.060, 310, polls_achieved=0.5),
        case("opsera", 1000, 5.0, 0.060, 350, switch="pool"),
    ]
    row = optimizations_rows(more_memory_off)[POOL]
    assert "not compared: fell behind" in row and row.rstrip().endswith("| DELETED |")
    kept_up = [*more_memory_off[:1], case("opsera", 1000, 5.0, 0.060, 310), more_memory_off[2]]
    assert optimizations_rows(kept_up)[POOL].rstrip().endswith("| KEPT |")


def test_an_optimisation_without_which_the_triggerer_falls_far_behind_is_kept():
    cases = [
        case("sleep", 1000, 5.0, 0.010, 300),
        case("opsera", 1000, 5.0, 0.060, 310, polls_achieved=0.5),
        case("opsera", 1000, 5.0, 0.040, 300, switch="grid", polls_achieved=0.0, polls=0),
    ]
    row = optimizations_rows(cases)[GRID]
    assert "no poll made" in row and row.rstrip().endswith("| KEPT |")
