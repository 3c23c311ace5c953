"""The soak's report: figures, invariant results, each violation's timeline, and an SVG plot of
pipeline runs, faults and chaos over time (written by hand: no plotting library needed)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from soak.invariants import Violation

INVARIANTS = (
    "one run per try chain",
    "every Clear of an ended task yields one new run",
    "a Clear while the run goes on replaces it",
    "no run left running",
    "no run stopped that no task owned",
    "a stop only while its run is the latest and in progress",
    "no healthy run stopped",
    "task state follows the run",
    "no run outside a task",
    "every finished run has its asset event",
    "every case ran",
    "no token in any log",
)


def write_report(out: Path, summary: dict[str, Any], violations: list[Violation], samples: list[dict],
                 chaos: list[Any], actions: list[tuple[float, str]], cases: list[str]) -> Path:
    """``actions``: what people did in Airflow (Clears, marks), with when."""
    out.mkdir(parents=True, exist_ok=True)
    plot = out / "soak.svg"
    plot.write_text(svg_plot(samples, chaos, actions, summary["started_wall"]))
    by_invariant = Counter(v.invariant for v in violations)
    lines = [
        "# Chaos soak report",
        "",
        f"- started {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(summary['started_wall']))}, "
        f"{summary['minutes']:g} minutes of workload and chaos, seed `{summary['seed']}`",
        f"- Airflow {summary['airflow_version']}: {summary['topology']}",
        f"- emulator time scale {summary['time_scale']:g}; faults: {summary['fault_mix']}",
        f"- **invariant violations: {len(violations)}**",
        "",
        "![runs, faults and chaos over time](soak.svg)",
        "",
        "## Counts",
        "",
        "| what | count |",
        "|---|---|",
    ]
    for name, value in summary["counts"].items():
        lines.append(f"| {name} | {value} |")
    lines += ["", "## Invariants", "", "| invariant | violations |", "|---|---|"]
    for name in INVARIANTS:
        lines.append(f"| {name} | {by_invariant.get(name, 0)} |")
    if summary.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {note}" for note in summary["notes"]]
    if violations:
        lines += ["", "## Violations", ""]
        for number, violation in enumerate(violations, 1):
            case = violation.case
            where = (
                f"DAG run `{case.dag_id}/{case.run_id}`, task `{case.task_id}`, pipeline `{case.pipeline_id}` "
                f"({case.scenario})" if case else "outside any DAG run"
            )
            lines += [f"### {number}. {violation.invariant}: {violation.what}", "", where, ""]
            if violation.timeline:
                lines += ["```", *violation.timeline, "```", ""]
    lines += ["", "## Every DAG run", "",
              "| # | scenario | DAG run | Clears (task state, try) | pipeline runs (outcome) | people's runs meanwhile "
              "| task tries | task |",
              "|---|---|---|---|---|---|---|---|", *cases]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def svg_plot(samples: list[dict], chaos: list[Any], actions: list[tuple[float, str]], started: float,
             width: int = 900, height: int = 320) -> str:
    """Active pipeline runs, runs started (all, and people's) and faults injected (cumulative) over time; a tick
    under the axis per chaos strike, one above it per Clear or mark."""
    left, right, top, bottom = 60, 20, 30, 50
    span = max([s["wall"] for s in samples] + [started + 1]) - started
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(wall: float) -> float:
        return left + plot_w * (wall - started) / span

    series = (("active runs", "active", "#1f77b4"), ("runs started", "started", "#2ca02c"),
              ("people's runs", "people", "#ff7f0e"), ("faults injected", "faults", "#d62728"))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#333"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#333"/>',
    ]
    for minute in range(0, int(span // 60) + 1, max(1, int(span // 600) or 1)):
        px = x(started + minute * 60)
        parts.append(f'<text x="{px:.1f}" y="{top + plot_h + 14}" text-anchor="middle">{minute}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 22}" text-anchor="middle">minutes</text>')
    for index, (label, key, colour) in enumerate(series):
        peak = max([s.get(key, 0) for s in samples] + [1])
        points = " ".join(f"{x(s['wall']):.1f},{top + plot_h * (1 - s.get(key, 0) / peak):.1f}" for s in samples)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>')
        parts.append(
            f'<text x="{left + 10 + index * 205}" y="{top - 12}" fill="{colour}">{label} (top = {peak})</text>'
        )
    colours = {"kill": "#000", "freeze": "#9467bd"}
    for event in chaos:
        px = x(event.wall)
        parts.append(
            f'<line x1="{px:.1f}" y1="{top + plot_h}" x2="{px:.1f}" y2="{top + plot_h + 6}" '
            f'stroke="{colours.get(event.action, "#000")}" stroke-width="1.5"><title>{event.action} '
            f'{event.component}</title></line>'
        )
    for wall, what in actions:
        px = x(wall)
        parts.append(
            f'<line x1="{px:.1f}" y1="{top + plot_h - 6}" x2="{px:.1f}" y2="{top + plot_h}" stroke="#e377c2" '
            f'stroke-width="1.5"><title>{what}</title></line>'
        )
    parts.append(
        f'<text x="{left + plot_w}" y="{height - 6}" text-anchor="end">ticks under the axis: '
        'kills (black) and freezes (purple); above it: Clears and marks in Airflow (pink)</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
