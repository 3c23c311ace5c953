"""Writes BENCHMARKS.md from bench/out/*.json.

Everything but the block between the ``findings`` markers is generated; that block
(what the numbers mean, and what limits them) is kept as it is in the existing file.
"""

from __future__ import annotations

import statistics
from fractions import Fraction
from pathlib import Path

from bench.common import ROOT, load
from bench.triggerer import GRID_STEP

TARGET = ROOT / "BENCHMARKS.md"
FINDINGS_START = "<!-- findings:start -->"
FINDINGS_END = "<!-- findings:end -->"

IMPORT_GOAL = 0.10
CPU_GOAL = 0.20
MEMORY_GOAL = 1 / 3
#: the wake-up grid: the provider's CPU per poll against the un-aligned bare aiohttp loop's
WAKEUP_CPU_GOAL = 0.65
SIDE_NAMES = {
    "opsera": "Opsera `OpseraPipelineRunTrigger`",
    "opsera_unaligned": "Opsera `OpseraPipelineRunTrigger` without the grid (plain `asyncio.sleep`)",
    "dbt": "dbt Cloud `DbtCloudRunJobTrigger`",
    "aiohttp_floor": "floor: bare aiohttp loop, one shared session",
    "aiohttp_floor_grid": "floor on a grid",
    "opsera_unpooled": "Opsera `OpseraPipelineRunTrigger`, its pool unbounded (aiohttp's default 100 connections)",
}


def step_text(step: float) -> str:
    return f"{Fraction(step).limit_denominator(1024)} s"


def side_name(run: dict) -> str:
    """A run's variant; the grid step where it has one."""
    name = SIDE_NAMES.get(run["side"], run["side"])
    step = run.get("grid_step")
    if run["side"] == "opsera" and step:
        return f"{name}, wake-ups on the {step_text(step)} grid"
    if run["side"] == "aiohttp_floor_grid" and step:
        return f"floor on a {step_text(step)} grid"
    return name


def spread(summary: dict, digits: int = 2, unit: str = "") -> str:
    return (
        f"{summary['median']:.{digits}f}{unit} ({summary['min']:.{digits}f}–{summary['max']:.{digits}f})"
    )


def status_text(statuses: dict) -> str:
    """Event statuses with counts; an empty status is a trigger that had not fired."""
    return ", ".join(f"{count:,} {status or 'not fired'}" for status, count in sorted(statuses.items()))


def verdict(ratio: float | None, goal: float) -> str:
    if ratio is None:
        return "n/a"
    return "met" if ratio <= goal else "**not met**"


def ratio(ours: float, theirs: float) -> float | None:
    return ours / theirs if theirs else None


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def machine_section(machine: dict | None) -> list[str]:
    if not machine:
        return ["Machine: not recorded (run `make bench`)."]
    versions = machine["versions"]
    load = ", ".join(f"{x:.2f}" for x in machine["load_average"])
    return [
        "| | |",
        "|---|---|",
        f"| CPU | {machine['cpu_model']}, {machine['cores']} cores |",
        f"| memory | {machine['memory_gib']:.1f} GiB |",
        f"| kernel | Linux {machine['kernel']} |",
        f"| Python | {machine['python']} |",
        f"| Airflow | apache-airflow {versions['apache-airflow']} (task SDK {versions['apache-airflow-task-sdk']}) |",
        f"| provider | airflow-provider-opsera {versions['airflow-provider-opsera']} at `{machine['commit']}`"
        + (" (**its sources changed during the run**)" if machine.get("provider_changed_during_run") else "")
        + " |",
        f"| dbt Cloud provider | apache-airflow-providers-dbt-cloud {versions['apache-airflow-providers-dbt-cloud']} "
        f"(with apache-airflow-providers-http {versions['apache-airflow-providers-http']}) |",
        f"| HTTP client | aiohttp {versions['aiohttp']}, tenacity {versions['tenacity']} |",
        f"| measured | {machine['date']}; load average at the start {load} (the machine is shared) |",
    ]


def with_floor(triggerer: dict | None, floor: dict | None) -> dict | None:
    if not triggerer:
        return floor
    if floor:
        return {**triggerer, "runs": triggerer["runs"] + floor["runs"]}
    return triggerer


def runs_by(triggerer: dict | None) -> dict:
    return {(r["side"], r["n"]): r for r in (triggerer or {}).get("runs", []) if "error" not in r}


def summary_section(imports, triggerer) -> list[str]:
    lines = [
        "| measure | Opsera | dbt Cloud | Opsera / dbt Cloud | goal | |",
        "|---|---:|---:|---:|---:|---|",
    ]
    if imports:
        data = imports["after_sdk"]
        ours, theirs = data["opsera"], data["dbt_cloud"]
        r = ratio(ours["ms"]["median"], theirs["ms"]["median"])
        lines.append(
            f"| import wall time | {ours['ms']['median']:.1f} ms | {theirs['ms']['median']:.1f} ms | "
            f"{fmt_ratio(r)} | ≤ {IMPORT_GOAL:.2f} | {verdict(r, IMPORT_GOAL)} |"
        )
        r = ratio(ours["rss_mib"]["median"], theirs["rss_mib"]["median"])
        lines.append(
            f"| import RSS | {ours['rss_mib']['median']:.2f} MiB | {theirs['rss_mib']['median']:.2f} MiB | "
            f"{fmt_ratio(r)} | ≤ {IMPORT_GOAL:.2f} | {verdict(r, IMPORT_GOAL)} |"
        )
    runs = runs_by(triggerer)
    for n in (100, 1000, 10000):
        ours, theirs = runs.get(("opsera", n)), runs.get(("dbt", n))
        if not (ours and theirs):
            continue
        note = ""
        if theirs["polls"] < 0.9 * theirs["polls_intended"]:
            note = f" (dbt Cloud made {theirs['polls'] / theirs['polls_intended']:.0%} of its polls)"
        if ours["polls"] < 0.9 * ours["polls_intended"]:
            note += f" (Opsera made {ours['polls'] / ours['polls_intended']:.0%} of its polls)"
        r = ratio(ours["client_cpu_per_poll_ms_window"], theirs["client_cpu_per_poll_ms_window"])
        judged = verdict(r, CPU_GOAL)
        if theirs["polls"] < 0.9 * theirs["polls_intended"]:
            judged += " (against a dbt Cloud trigger that fell behind)"
        lines.append(
            f"| triggerer CPU per poll, N = {n:,}{note} | {ours['client_cpu_per_poll_ms_window']:.3f} ms | "
            f"{theirs['client_cpu_per_poll_ms_window']:.3f} ms | {fmt_ratio(r)} | ≤ {CPU_GOAL:.2f} | {judged} |"
        )
    for n in (100, 1000, 10000):
        ours, theirs = runs.get(("opsera", n)), runs.get(("dbt", n))
        if not (ours and theirs):
            continue
        r = ratio(ours["memory_per_trigger_kib"]["median"], theirs["memory_per_trigger_kib"]["median"])
        lines.append(
            f"| memory per waiting trigger, N = {n:,} | {ours['memory_per_trigger_kib']['median']:.1f} KiB | "
            f"{theirs['memory_per_trigger_kib']['median']:.1f} KiB | {fmt_ratio(r)} | ≤ {MEMORY_GOAL:.2f} | "
            f"{verdict(r, MEMORY_GOAL)} |"
        )
    ours, theirs = runs.get(("opsera", 10000)), runs.get(("dbt", 10000))
    if ours:
        goal = ours["poll_interval"] + 2
        last = ours["completion"]["last_s"]
        complete = ours["completion"]["events"] == ours["n"]
        their_text = "—"
        if theirs:
            their_text = f"{theirs['completion']['last_s']:.1f} s"
            if theirs["completion"]["events"] < theirs["n"] or set(theirs["completion"]["statuses"]) - {"success"}:
                their_text += f" ({status_text(theirs['completion']['statuses'])})"
        lines.append(
            f"| completion latency at N = 10,000 (flip to success → last event) | {last:.1f} s | {their_text} | — | "
            f"≤ {goal:g} s | {'met' if complete and last <= goal else '**not met**'} |"
        )
    return lines


def imports_section(imports: dict | None) -> list[str]:
    if not imports:
        return ["Not measured yet: `python -m bench.run --only imports`."]
    lines = [
        f"Each figure: median (min–max) of {imports['runs']} fresh interpreters per target, measured in turns.",
        "",
        "| already imported | target | wall time ms | RSS growth MiB | peak RSS growth MiB | new modules |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for key, label in (("after_sdk", "`airflow.sdk`"), ("after_sdk_and_trigger_base", "`airflow.sdk`, `airflow.triggers.base`")):
        for target, name in (("opsera", "Opsera operators + sensors"), ("dbt_cloud", "dbt Cloud operators + sensors + hook"), ("nothing", "nothing (the probe itself)")):
            row = imports[key][target]
            lines.append(
                f"| {label} | {name} | {spread(row['ms'], 1)} | {spread(row['rss_mib'], 2)} | "
                f"{spread(row['peak_rss_mib'], 2)} | {row['new_modules']['median']:.0f} |"
            )
    lines += [
        "",
        "The provider's import, heaviest modules first (`python -X importtime`, self time, one run):",
        "",
        "| module | self ms | cumulative ms |",
        "|---|---:|---:|",
    ]
    for row in imports["heaviest_modules"]:
        lines.append(f"| `{row['module']}` | {row['self_ms']:.2f} | {row['cumulative_ms']:.2f} |")
    return lines


def triggerer_section(triggerer: dict | None, hooks: dict | None) -> list[str]:
    if not triggerer:
        return ["Not measured yet: `python -m bench.run --only triggerer`."]
    interval = triggerer["poll_interval"]
    lines = [
        f"Poll interval {interval:g} s; window {triggerer['window']:g} s (after every trigger has polled once), cut "
        f"into {interval:g} s cycles; server: {triggerer['server_workers']} worker processes. CPU per poll is the "
        "process's CPU time over the window divided by the polls the server answered in it; in brackets, median "
        "(min–max) over the cycles. Memory per trigger is (RSS − RSS after a warm-up trigger) / N, median (min–max) "
        "over the cycles. Open sockets: the trigger process's, at the end of each cycle (its HTTP connections plus "
        "the event loop's 2 self-pipe sockets). Largest burst: the most polls the server saw arrive within 10 ms, "
        "largest over the window (evenly spread, N polls per 5 s would be N / 500 per 10 ms). Ramp: from the moment all N triggers were created (their starts spread over one poll "
        "interval) until the server had seen a poll from every one; the Opsera trigger sleeps one poll interval before its "
        "first read, dbt Cloud's trigger and the bare aiohttp loop read at once.",
        "",
        "| triggers | N | client CPU per poll ms | server CPU per poll ms | memory per trigger KiB | polls made / intended "
        "| largest burst | client CPU use (cores) | open sockets | ramp s | after the flip: median / last event s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in triggerer["runs"]:
        if "error" in run:
            lines.append(f"| {side_name(run)} | {run['n']:,} | failed: {run['error']} |")
            continue
        completion = run["completion"]
        ended = f"{completion['p50_s']:.1f} / {completion['last_s']:.1f}"
        if completion["events"] < run["n"] or set(completion["statuses"]) - {"success"}:
            ended += f" ({status_text(completion['statuses'])})"
        ramp = f"{run['ramp_seconds']:.1f}" if run["ramp_seconds"] is not None else f"> cap ({run['polled_once']:,} polled)"
        lines.append(
            f"| {side_name(run)} | {run['n']:,} | "
            f"{run['client_cpu_per_poll_ms_window']:.3f} [{spread(run['client_cpu_per_poll_ms'], 3)}] | "
            f"{run['server_cpu_per_poll_ms_window']:.3f} | {spread(run['memory_per_trigger_kib'], 1)} | "
            f"{run['polls']:,} / {run['polls_intended']:,} ({run['polls'] / run['polls_intended']:.0%}) | "
            f"{burst(run)} | {spread(run['client_cpu_utilisation'], 2)} | {sockets(run)} | {ramp} | {ended} |"
        )
    if hooks:
        lines += [
            "",
            f"Client CPU per status request, {hooks['requests']:,} requests, {hooks['concurrency']} at a time, "
            "no sleeping (median of 3 processes; `bench/hook_overhead.py`):",
            "",
            "| client | CPU per request ms | requests/s |",
            "|---|---:|---:|",
        ]
        labels = {
            "aiohttp": "bare aiohttp, one shared session (floor)",
            "opsera_send_once": "`OpseraAsyncHook._send_once` (the HTTP request alone, without `call` around it)",
            "opsera_hook": "`OpseraAsyncHook.get_pipeline_run_status` (as the trigger calls it)",
            "dbt_hook": "`DbtCloudHook.get_job_status` (new session per call)",
        }
        for name, row in hooks["variants"].items():
            lines.append(f"| {labels.get(name, name)} | {row['cpu_ms_per_request']:.3f} | {row['per_second']:.0f} |")
    return lines


def burst(run: dict) -> str:
    if "largest_burst" not in run:
        return "—"
    return f"{run['largest_burst']['max']:,.0f}"


def wakeup_groups(wakeups: dict | None) -> dict:
    """The A/B runs by (N, poll interval), then by (side, grid step), in the order they were planned."""
    groups: dict = {}
    for run in (wakeups or {}).get("runs", []):
        if "error" in run:
            continue
        case = groups.setdefault((run["n"], run["poll_interval"]), {})
        case.setdefault((run["side"], run.get("grid_step", 0.0)), []).append(run)
    return groups


def median_of(runs: list[dict], key) -> float:
    return statistics.median(key(run) for run in runs)


def cpu_per_poll(run: dict) -> float:
    return run["client_cpu_per_poll_ms_window"]


def memory_per_trigger(run: dict) -> float:
    return run["memory_per_trigger_kib"]["median"]


def goal_row(measure: str, ours: float, theirs: float, unit: str, digits: int, goal: float) -> str:
    r = ratio(ours, theirs)
    return (
        f"| {measure} | {ours:.{digits}f} {unit} | {theirs:.{digits}f} {unit} | {fmt_ratio(r)} | ≤ {goal:.2f} | "
        f"{verdict(r, goal)} |"
    )


def wakeup_goal_lines(wakeups: dict | None, triggerer: dict | None) -> list[str]:
    groups = wakeup_groups(wakeups)
    if not groups:
        return []
    lines = [
        "The wake-up grid (section 2, “wake-ups on a grid”; each figure the median of the interleaved repeats), "
        "against the bare aiohttp loop without a grid and the provider without it:",
        "",
        "| measure | Opsera on its grid | compared with | ratio | goal | |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for (n, interval), case in groups.items():
        ours = case.get(("opsera", GRID_STEP))
        floor = case.get(("aiohttp_floor", 0.0))
        unaligned = case.get(("opsera_unaligned", 0.0))
        label = f"N = {n:,}, polled every {interval:g} s"
        if ours and floor:
            lines.append(
                goal_row(
                    f"triggerer CPU per poll, {label}, against the un-aligned bare aiohttp loop",
                    median_of(ours, cpu_per_poll),
                    median_of(floor, cpu_per_poll),
                    "ms",
                    3,
                    WAKEUP_CPU_GOAL,
                )
            )
        if ours and unaligned:
            lines.append(
                goal_row(
                    f"memory per waiting trigger, {label}, against the provider without the grid",
                    median_of(ours, memory_per_trigger),
                    median_of(unaligned, memory_per_trigger),
                    "KiB",
                    1,
                    1.0,
                )
            )
    runs = runs_by(triggerer)
    for n in (100, 1000, 10000):
        ours, unaligned = runs.get(("opsera", n)), runs.get(("opsera_unaligned", n))
        if not (ours and unaligned):
            continue
        label = f"N = {n:,}, polled every {ours['poll_interval']:g} s"
        lines.append(
            goal_row(
                f"memory per waiting trigger, {label}, against the provider without the grid",
                memory_per_trigger(ours),
                memory_per_trigger(unaligned),
                "KiB",
                1,
                1.0,
            )
        )
        if "largest_burst" in ours and "largest_burst" in unaligned:
            lines.append(
                f"| largest burst at the server (polls within 10 ms), {label} | {burst(ours)} | {burst(unaligned)} | "
                f"— | — | evenly spread: {n / 500:,.1f} |"
            )
    return lines


def wakeups_section(wakeups: dict | None) -> list[str]:
    groups = wakeup_groups(wakeups)
    if not groups:
        return ["Not measured yet: `python -m bench.run --only wakeups`."]
    repeats = max(len(runs) for case in groups.values() for runs in case.values())
    lines = [
        f"The same harness, one fresh process per run, {wakeups['window']:g} s windows; every variant once per "
        f"repeat, {repeats} repeats, the order rotated from one repeat to the next so that the load of other work on "
        "the machine falls on all of them alike. Each figure: the median over the repeats (in brackets min–max). "
        "“vs floor” is the variant's median CPU per poll over the un-aligned bare aiohttp loop's. The floor on a "
        "grid plans its polls as the provider does (one interval apart from its start) and sleeps until the grid "
        "point with `loop.call_at`, written out in `bench/trigger_process.py`.",
        "",
        "| N, poll interval | variant | client CPU per poll ms | vs floor | server CPU per poll ms | memory per "
        "trigger KiB | open sockets | largest burst | polls made / intended | last event after the flip s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (n, interval), case in groups.items():
        floor = case.get(("aiohttp_floor", 0.0))
        floor_cpu = median_of(floor, cpu_per_poll) if floor else None
        for runs in case.values():
            cpu = [cpu_per_poll(run) for run in runs]
            memory = [memory_per_trigger(run) for run in runs]
            sockets_ = [run["open_sockets"]["median"] for run in runs]
            bursts = [run["largest_burst"]["max"] for run in runs]
            polls = sum(run["polls"] for run in runs)
            intended = sum(run["polls_intended"] for run in runs)
            last = [run["completion"]["last_s"] for run in runs]
            lines.append(
                f"| {n:,}, {interval:g} s | {side_name(runs[0])} | {spread_of(cpu, 3)} | "
                f"{fmt_ratio(ratio(statistics.median(cpu), floor_cpu) if floor_cpu else None)} | "
                f"{statistics.median(run['server_cpu_per_poll_ms_window'] for run in runs):.3f} | "
                f"{spread_of(memory, 1)} | {statistics.median(sockets_):.0f} | {spread_of(bursts, 0)} | "
                f"{polls:,} / {intended:,} ({polls / intended:.0%}) | {spread_of(last, 2)} |"
            )
    return lines


def burst_groups(bursts: dict | None) -> dict:
    """The burst part's runs by start spread, then by side, in the order they were planned."""
    groups: dict = {}
    for run in (bursts or {}).get("runs", []):
        if "error" not in run:
            groups.setdefault(run["start_spread"], {}).setdefault(run["side"], []).append(run)
    return groups


def start_text(start_spread: float) -> str:
    return "started at once" if not start_spread else f"started over {start_spread:g} s"


def burst_goal_lines(bursts: dict | None) -> list[str]:
    groups = burst_groups(bursts)
    if not groups:
        return []
    lines = [
        "Waits in a burst (section 2, “waits in a burst”; each figure the median of the interleaved repeats):",
        "",
        "| measure | Opsera | dbt Cloud | Opsera / dbt Cloud | goal | |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for start_spread, case in groups.items():
        ours, theirs = case.get("opsera"), case.get("dbt")
        if ours and theirs:
            n, interval = ours[0]["n"], ours[0]["poll_interval"]
            lines.append(
                goal_row(
                    f"memory per waiting trigger, {n:,} waits polled every {interval:g} s, {start_text(start_spread)}",
                    median_of(ours, memory_per_trigger),
                    median_of(theirs, memory_per_trigger),
                    "KiB",
                    1,
                    MEMORY_GOAL,
                )
            )
    return lines


def burst_section(bursts: dict | None) -> list[str]:
    groups = burst_groups(bursts)
    if not groups:
        return ["Not measured yet: `python -m bench.run --only burst`."]
    repeats = max(len(runs) for case in groups.values() for runs in case.values())
    lines = [
        f"The same harness, {bursts['window']:g} s windows, {repeats} repeats in a rotating order. The waits start "
        "either all at once, as a mapped task's instances deferring together, or at random moments over one poll "
        "interval. Started at once, they wake on the same grid point every interval and send their polls together. "
        "The provider's shared session keeps at most "
        f"{bursts['pool_size']} connections per event loop "
        "(`POOL_SIZE` in `airflow_provider_opsera/hooks/opsera_async.py`), and a poll waits for a free one before "
        "its timeout starts; “pool unbounded” is the same trigger with aiohttp's default limit of 100. Each figure: "
        "the median over the repeats (in brackets min–max); “vs dbt Cloud” is the median memory per trigger over "
        "dbt Cloud's with the same start.",
        "",
        "| N, poll interval | start | variant | memory per trigger KiB | vs dbt Cloud | open sockets | client CPU per "
        "poll ms | largest burst | polls made / intended | last event after the flip s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for start_spread, case in groups.items():
        theirs = case.get("dbt")
        their_memory = median_of(theirs, memory_per_trigger) if theirs else None
        for runs in case.values():
            memory = [memory_per_trigger(run) for run in runs]
            polls = sum(run["polls"] for run in runs)
            intended = sum(run["polls_intended"] for run in runs)
            lines.append(
                f"| {runs[0]['n']:,}, {runs[0]['poll_interval']:g} s | {start_text(start_spread)} | "
                f"{side_name(runs[0])} | {spread_of(memory, 1)} | "
                f"{fmt_ratio(ratio(statistics.median(memory), their_memory) if their_memory else None)} | "
                f"{statistics.median(run['open_sockets']['median'] for run in runs):.0f} | "
                f"{spread_of([cpu_per_poll(run) for run in runs], 3)} | "
                f"{spread_of([run['largest_burst']['max'] for run in runs], 0)} | "
                f"{polls:,} / {intended:,} ({polls / intended:.0%}) | "
                f"{spread_of([run['completion']['last_s'] for run in runs], 2)} |"
            )
    load = bursts.get("load_average_before")
    if load:
        lines += ["", f"Load average at the start of the part: {', '.join(f'{x:.2f}' for x in load)}."]
    return lines


def spread_of(values: list[float], digits: int) -> str:
    return spread({"median": statistics.median(values), "min": min(values), "max": max(values)}, digits)


def sockets(run: dict) -> str:
    if "open_sockets" not in run:
        return "—"
    return spread(run["open_sockets"], 0)


def requests_section(requests: dict | None) -> list[str]:
    if not requests:
        return ["Not measured yet: `python -m bench.run --only requests`."]
    lines = [
        "Against `OpseraEmulator(clock=\"manual\")`; each wait's sleeps move the emulated clock, so a run of known "
        "length costs a known number of polls.",
        "",
        "| pipeline (run length, console lines) | wait | poll interval s | status polls | log fetches | other requests "
        "| total | console lines in the task log |",
        "|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for case in requests["cases"]:
        other = ", ".join(f"{k.split()[1].rsplit('/', 1)[-1]} {v}" for k, v in sorted(case["other"].items()))
        lines.append(
            f"| {case['pipeline']} ({case['run_seconds']} s, {case['console_lines']:,}) | {case['path']} | "
            f"{case['poll_interval']:g} | {case['status_polls']} | {case['log_fetches']} | {other} | {case['total']} | "
            f"{case['console_lines_in_task_log']:,} |"
        )
    console = requests["console"]
    lines += [
        "",
        f"Bringing one log read of the Chatty run ({console['records']:,} console records, "
        f"{console['lines_printed']:,} lines) into the task log; median (min–max) of {console['repeats']}:",
        "",
        "| step | ms |",
        "|---|---:|",
        f"| the log read (HTTP, JSON) | {spread(console['fetch_ms'], 1)} |",
        f"| into the task log (`ConsoleLog.add` through the operator's logger) | {spread(console['into_task_log_ms'], 1)} |",
        f"| the provider's part alone (`ConsoleLog.add` to a logger that drops INFO) | {spread(console['provider_only_ms'], 2)} |",
    ]
    return lines


BATCH_GOAL = 1 / 8


def batch_goal_lines(batch: dict | None) -> list[str]:
    if not batch:
        return []
    default = next(case for case in batch["cases"] if case["case"] == "default")
    checked = all(case["missing"] == 0 and case["stored_twice_or_more"] == 0 for case in batch["cases"])
    return [
        f"A list of {batch['people']:,} people against the emulator at {batch['latency_s'] * 1000:.0f} ms per request "
        "(section 4):",
        "",
        "| measure | default | sequential | default / sequential | goal | |",
        "|---|---:|---:|---:|---:|---|",
        f"| sync time, `max_concurrency` {default['max_concurrency']} against 1 | {default['seconds']:,.0f} s | "
        f"{batch['sequential_scaled_seconds']:,.0f} s{scaled_note(batch)} | {batch['ratio']:.3f} | ≤ {BATCH_GOAL:.3f} | "
        f"{verdict(batch['ratio'], BATCH_GOAL)} |",
        f"| every person stored once, none twice, the same records | {'yes' if checked else '**no**'} | "
        f"{'yes' if checked else '**no**'} | — | all | {'met' if checked and batch['same_records'] else '**not met**'} |",
    ]


def scaled_note(batch: dict) -> str:
    if batch["sequential_people"] == batch["people"]:
        return ""
    return f" (scaled from {batch['sequential_people']:,})"


def batch_section(batch: dict | None) -> list[str]:
    if not batch:
        return ["Not measured yet: `python -m bench.run --only batch`."]
    lines = [
        f"`OpseraCreatePersonOperator` syncs {batch['people']:,} new people (`bench/batch_sync.py`). The emulator runs "
        f"in its own process with a `latency` fault of {batch['latency_s'] * 1000:.0f} ms on every API request; each "
        "case starts from its seed. A new person costs two requests (the read that finds it missing, then the "
        f"create). The sequential case ran on the first {batch['sequential_people']:,} people"
        + (
            f" and its time is scaled to {batch['people']:,} (`--sequential-people {batch['people']}` runs all)."
            if batch["sequential_people"] != batch["people"]
            else "."
        )
        + " After each case the emulator's store is read back. Client CPU is the bench process's, all threads. "
        "The task log is what the operator wrote at INFO and above.",
        "",
        "| case | people | max_concurrency | time s | people/s | creates sent | stored once / twice / missing "
        "| client CPU s | task log lines (bytes) | progress lines | XCom: summary bytes (full list bytes) |",
        "|---|---:|---:|---:|---:|---:|---|---:|---|---:|---|",
    ]
    for case in batch["cases"]:
        lines.append(
            f"| {case['case']} | {case['people']:,} | {case['max_concurrency']} | {case['seconds']:.1f} | "
            f"{case['records_per_second']:.1f} | {case['creates_sent']:,} | {case['stored_once']:,} / "
            f"{case['stored_twice_or_more']} / {case['missing']} | {case['client_cpu_seconds']:.1f} | "
            f"{case['log_lines']} ({case['log_bytes']:,}) | {case['progress_lines']} | "
            f"{case['xcom_summary_bytes']:,} ({case['xcom_full_list_bytes']:,}) |"
        )
    load = batch.get("load_average_before")
    if load:
        lines += ["", f"Load average at the start of the part: {', '.join(f'{x:.2f}' for x in load)}."]
    return lines


def real_cases(real: dict | None) -> tuple[dict, list[dict]]:
    """The sleeping triggerer's case of each N, and every case that measured something."""
    cases = [case for case in (real or {}).get("cases", []) if "error" not in case and "skipped" not in case]
    sleeping = {case["n"]: case for case in cases if case["kind"] == "sleep"}
    return sleeping, [case for case in cases if case["kind"] != "sleep" and case["n"] in sleeping]


def resume_text(case: dict) -> str:
    resume = case.get("resume") or {}
    if "median_s" not in resume:
        return "n/a"
    missing = resume["of"] - resume["resumed"]
    return f"{resume['median_s']:.1f} / {resume['max_s']:.1f} s" + (f" ({missing:,} not resumed)" if missing else "")


def real_triggerer_section(real: dict | None) -> list[str]:
    from bench.real_triggerer import KEPT_UP, SWITCH_NAMES, cycle_figures, figures, verdict

    sleeping, cases = real_cases(real)
    if not sleeping or not cases:
        return ["Not measured yet: `python -m bench.run --only real-triggerer`."]
    lines = [
        "Airflow's own cost, the same triggerer holding N sleeping `DateTimeTrigger`s (taken off every figure below):",
        "",
        "| N | triggerer CPU | RSS (supervisor + trigger runner) | 1-min load at start |",
        "|---:|---:|---:|---:|",
    ]
    for n, case in sorted(sleeping.items()):
        lines.append(
            f"| {n:,} | {case['cpu_seconds_per_second'] * 1000:.0f} ms/s | {case['rss_bytes'] / 2**20:.0f} MiB "
            f"| {case['load_average'][0]:.1f} |"
        )
    lines += [
        "",
        "Cost per wait beyond the sleeping trigger. CPU: the triggerer's process group over the window, per wait per "
        "poll interval and per minute; memory: RSS per wait; polls achieved: polls the server answered over one per "
        "wait per interval; resumed: seconds from every run turning successful to each task instance leaving "
        "`deferred` (median / max, from `task_instance.updated_at`). The provider as shipped; where it ran more "
        "than once (5 s polling), the median and each figure.",
        "",
        "| poll interval | N | kind | CPU ms / wait / poll | CPU ms / wait / min | CPU ms / poll made | KiB / wait "
        "| Opsera ÷ dbt Cloud (CPU per poll made, memory) | polls achieved | resumed (median / max) |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    shipped = [case for case in cases if not case.get("switch")]
    groups: dict[tuple, list[dict]] = {}
    for case in shipped:
        groups.setdefault((case["poll_interval"], case["n"], case["kind"]), []).append(case)

    def median_figure(group: list[dict], key: str) -> float:
        if key == "cpu_ms_per_poll_made":
            return statistics.median(
                statistics.median(cycle_figures(case, sleeping[case["n"]])[key] or [float("nan")]) for case in group
            )
        return statistics.median(figures(case, sleeping[case["n"]])[key] for case in group)

    for (interval, n, kind), group in sorted(groups.items(), key=lambda item: (*item[0][:2], item[0][2] != "opsera")):
        each = [figures(case, sleeping[n]) for case in group]
        theirs = groups.get((interval, n, "dbt"))
        versus = "—"
        if kind == "opsera" and theirs:
            versus = ", ".join(
                fmt_ratio(ratio(median_figure(group, key), median_figure(theirs, key)))
                if median_figure(theirs, key) == median_figure(theirs, key)  # not NaN: the other made polls
                else "—"
                for key in ("cpu_ms_per_poll_made", "kib_per_wait")
            )
        cpu = f"{median_figure(group, 'cpu_ms_per_poll'):.3f}"
        if len(each) > 1:
            cpu += " (" + ", ".join(f"{f['cpu_ms_per_poll']:.3f}" for f in each) + ")"
        achieved = statistics.median(case["polls_achieved"] for case in group)
        per_minute, per_poll = f"{median_figure(group, 'cpu_ms_per_minute'):.2f}", "no poll made"
        if not achieved:  # a triggerer that polled nothing: its CPU is not the waits' cost
            cpu = per_minute = "—"
        else:
            per_poll = f"{median_figure(group, 'cpu_ms_per_poll_made'):.2f}"
        lines.append(
            f"| {interval:g} s | {n:,} | {'Opsera' if kind == 'opsera' else 'dbt Cloud'} | {cpu} "
            f"| {per_minute} | {per_poll} | {median_figure(group, 'kib_per_wait'):.1f} "
            f"| {versus} | {achieved:.0%} | {resume_text(group[0])} |"
        )
    lines += [
        "",
        "### Optimizations",
        "",
        "Each optimisation of the provider turned off in turn in the same triggerer (5 s polling; the launcher sets "
        "the module constant, or puts back plain `asyncio.sleep` for the grid, before Airflow's CLI runs), against "
        "the provider as shipped. Figures beyond the sleeping trigger: the median and, in brackets, the range over "
        "every 5 s cycle of the window (CPU) and every RSS sample (memory), of every run. The CPU is compared per "
        "poll made: a triggerer that falls behind is busy whatever it does, so its CPU per wait per interval says "
        "nothing of the code; memory is compared only between runs that both made at least "
        f"{KEPT_UP:.0%} of their polls (one that falls behind holds its piled-up requests). Noise criterion: an "
        "optimisation is KEPT when, turned off, a cost is higher in every cycle or sample than in every one as "
        "shipped (the ranges do not overlap), by more than 10 % of the median, or when the triggerer made less than "
        "half as many of its polls without it, at either N; otherwise DELETED.",
        "",
        "| optimisation | N | runs on / off | CPU ms / poll made, on → off | KiB / wait, on → off | "
        "polls achieved, on → off | verdict |",
        "|---|---:|---:|---|---|---|---|",
    ]
    for switch in SWITCH_NAMES:
        verdicts = []
        rows = []
        for n in sorted(sleeping):
            on = [
                case
                for case in cases
                if case["kind"] == "opsera" and not case.get("switch") and case["n"] == n and case["poll_interval"] == 5.0
            ]
            off = [case for case in cases if case.get("switch") == switch and case["n"] == n]
            if not on or not off:
                continue
            found = {}
            kept_up = all(case["polls_achieved"] >= KEPT_UP for case in on + off)
            for key, digits in (("cpu_ms_per_poll_made", 3), ("kib_per_wait", 1)):
                before = [v for case in on for v in cycle_figures(case, sleeping[n])[key]]
                after = [v for case in off for v in cycle_figures(case, sleeping[n])[key]]
                if not after:
                    found[key] = "no poll made"
                    continue
                if key == "kib_per_wait" and not kept_up:
                    found[key] = "not compared: fell behind"
                    continue
                verdicts.append(verdict(before, after))
                found[key] = f"{spread_of(before, digits)} → {spread_of(after, digits)}"
            if max(case["polls_achieved"] for case in off) < min(case["polls_achieved"] for case in on) / 2:
                verdicts.append("KEPT")  # without it the triggerer made less than half the polls it made with it
            achieved = (
                ", ".join(f"{case['polls_achieved']:.0%}" for case in on)
                + " → "
                + ", ".join(f"{case['polls_achieved']:.0%}" for case in off)
            )
            rows.append((n, f"{len(on)} / {len(off)}", found, achieved))
        overall = "KEPT" if "KEPT" in verdicts else ("DELETED" if verdicts else "not measured")
        for n, runs, found, achieved in rows:
            lines.append(
                f"| {SWITCH_NAMES[switch]} | {n:,} | {runs} | {found['cpu_ms_per_poll_made']} "
                f"| {found['kib_per_wait']} | {achieved} | {overall} |"
            )
    failed = [case for case in (real or {}).get("cases", []) if "error" in case or "skipped" in case]
    if failed:
        lines += ["", "Cases not measured: " + "; ".join(
            f"{case['kind']} {case.get('switch') or 'as shipped'} N={case['n']:,} {case['poll_interval']:g} s: "
            f"{case.get('error', case.get('skipped'))[:200]}" for case in failed)]
    return lines


def real_triggerer_part(real: dict | None) -> list[str]:
    """The section of the real triggerer, heading and method included."""
    return [
        "## In a real triggerer",
        "",
        "The parts above run triggers in a plain process. This one runs them in ONE real `airflow triggerer` "
        "(Airflow 3.3.2, its supervisor and its trigger runner) on a PostgreSQL metadata database "
        "(`bench/real_triggerer.py`): N task instances deferred in the database with their `trigger` rows made by "
        "Airflow's `Trigger.from_object` (written over one poll interval, at most 30 s, as tasks defer over time), "
        "`--capacity` N + 100, polling `bench/server.py`. After every wait has polled twice (a wait's first poll is "
        "followed by its start-up work), the triggerer's whole process group is sampled over whole poll intervals "
        "(at least two, at least 20 s); then every run turns "
        "successful. No scheduler runs: a resumed task instance stays `scheduled`.",
        "",
        *real_triggerer_section(real),
    ]


def findings_block() -> str:
    if TARGET.exists():
        text = TARGET.read_text()
        if FINDINGS_START in text and FINDINGS_END in text:
            return text[text.index(FINDINGS_START) : text.index(FINDINGS_END) + len(FINDINGS_END)]
    return f"{FINDINGS_START}\n(No findings written yet.)\n{FINDINGS_END}"


def render() -> str:
    machine, imports, triggerer = load("machine"), load("imports"), with_floor(load("triggerer"), load("floor"))
    hooks, requests, wakeups = load("hooks"), load("requests"), load("wakeups")
    batch, bursts, real = load("batch"), load("burst"), load("real_triggerer")
    durations = ", ".join(
        f"{name} {data['seconds']:.0f} s"
        for name, data in (
            ("imports", imports),
            ("triggerer", load("triggerer")),
            ("floor", load("floor")),
            ("wakeups", wakeups),
            ("burst", bursts),
            ("hooks", hooks),
            ("requests", requests),
            ("batch", batch),
            ("real-triggerer", real),
        )
        if data and "seconds" in data
    )
    parts = [
        "# Benchmarks",
        "",
        "How much the provider costs where it runs most: in the DAG processor (importing it), in the triggerer "
        "(thousands of deferred waits), per waited run (HTTP requests, console output into the task log) and on a "
        "big Insights list (5,000 people). "
        "Compared with the dbt Cloud provider, whose operators do the same kind of job.",
        "",
        "Reproduce: `make bench` (it creates `.venv-bench` with apache-airflow 3.3.2, this provider installed "
        "editable and the latest apache-airflow-providers-dbt-cloud, then runs `python -m bench.run`). One part: "
        "`.venv-bench/bin/python -m bench.run --only imports|triggerer|floor|wakeups|burst|hooks|requests|batch|real-triggerer`; raw results go to "
        f"`bench/out/*.json`. Durations of the last run: {durations or 'n/a'}. Benchmarks are not tests: nothing "
        "asserts a time.",
        "",
        "## Machine",
        "",
        *machine_section(machine),
        "",
        "## Against the goals",
        "",
        "The triggerer's figures here were measured in a plain process running the triggers (section 2); what they "
        "cost in a real `airflow triggerer` is in \"In a real triggerer\".",
        "",
        *summary_section(imports, triggerer),
        "",
        *wakeup_goal_lines(wakeups, triggerer),
        "",
        *burst_goal_lines(bursts),
        "",
        *batch_goal_lines(batch),
        "",
        findings_block(),
        "",
        "## 1. Import cost",
        "",
        "A fresh interpreter imports `airflow.sdk` (a DAG file has it already), then the provider's classes: "
        "`OpseraRunPipelineOperator`, `OpseraStopPipelineOperator`, `OpseraResetPipelineOperator`, "
        "`OpseraUpdateToolOperator`, `OpseraCreateProjectOperator`, `OpseraCreatePersonOperator`, "
        "`OpseraCreateOrgHierarchyOperator`, `OpseraCreateMappingOperator`, `OpseraPipelineRunSensor`, "
        "`OpseraTaskSensor`; against `DbtCloudRunJobOperator`, `DbtCloudGetJobRunArtifactOperator`, "
        "`DbtCloudListJobsOperator`, `DbtCloudJobRunSensor` and `DbtCloudHook`. Wall time by `perf_counter`; RSS "
        "and peak RSS (VmRSS, VmHWM) from `/proc/self/status` before and after. The provider's bytecode is compiled "
        "first (`compileall`), as a wheel install would have it.",
        "",
        *imports_section(imports),
        "",
        "## 2. Triggerer cost",
        "",
        "A plain process (not Airflow's triggerer: see \"In a real triggerer\" below) runs N triggers in one "
        "asyncio loop, iterating each trigger's `run()` as the triggerer does "
        "(each trigger is built, serialized and rebuilt from its serialized form first). The connections come "
        "from `AIRFLOW_CONN_*` JSON. The server (`bench/server.py`) is aiohttp over HTTPS on 127.0.0.1 with a "
        "certificate from a throwaway CA the harness makes; it answers `POST /api/v1/pipeline/status` with "
        "`{\"status\": \"running\"}` and dbt Cloud's `GET /api/v2/accounts/{account_id}/runs/{run_id}/` with "
        "`{\"data\": {\"status\": 3}}` until the flip, then success for every run. The Opsera connection trusts the "
        "CA through its `verify` extra; dbt Cloud's hook has no such option, so its process gets `SSL_CERT_FILE`. "
        "The server runs in its own processes and its CPU is counted apart. Both sides' logs go to files in "
        "`bench/out/`, as a triggerer writes them.",
        "",
        *triggerer_section(triggerer, hooks),
        "",
        "### Wake-ups on a grid",
        "",
        "Measured before the grid was removed from the provider (it did not show in a real triggerer: see "
        "\"In a real triggerer\"). "
        "Each wait plans its polls one poll interval apart from its start, and each sleep ends at the first point "
        "at or after the planned time of a grid of the event loop's clock shared by every wait "
        f"(`airflow_provider_opsera/waiting/wakeups.py`, step {step_text(GRID_STEP)}): the waits due within one "
        "step wake in one pass of the loop. The goal: the provider's CPU per poll at most "
        f"{WAKEUP_CPU_GOAL:.2f} of the bare aiohttp loop's without a grid, memory per trigger no worse than without "
        "the grid, and the polls still spread over the poll interval (largest burst: the most polls the server saw "
        "arrive within 10 ms).",
        "",
        *wakeups_section(wakeups),
        "",
        "### Waits in a burst",
        "",
        *burst_section(bursts),
        "",
        *real_triggerer_part(real),
        "",
        "## 3. Requests per run",
        "",
        *requests_section(requests),
        "",
        "## 4. Big Insights batches",
        "",
        *batch_section(batch),
        "",
    ]
    return "\n".join(parts)


def write(path: Path = TARGET) -> Path:
    path.write_text(render())
    return path


if __name__ == "__main__":
    print(write())
