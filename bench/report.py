"""Writes BENCHMARKS.md from bench/out/*.json.

Everything but the block between the ``findings`` markers is generated; that block
(what the numbers mean, and what limits them) is kept as it is in the existing file.
"""

from __future__ import annotations

from pathlib import Path

from bench.common import ROOT, load

TARGET = ROOT / "BENCHMARKS.md"
FINDINGS_START = "<!-- findings:start -->"
FINDINGS_END = "<!-- findings:end -->"

IMPORT_GOAL = 0.10
CPU_GOAL = 0.20
MEMORY_GOAL = 1 / 3
SIDE_NAMES = {
    "opsera": "Opsera `OpseraPipelineRunTrigger`",
    "dbt": "dbt Cloud `DbtCloudRunJobTrigger`",
    "aiohttp_floor": "floor: bare aiohttp loop, one shared session",
}


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
        "the event loop's 2 self-pipe sockets). Ramp: from the moment all N triggers were created (their starts spread over one poll "
        "interval) until the server had seen a poll from every one; the Opsera trigger sleeps one poll interval before its "
        "first read, dbt Cloud's trigger and the bare aiohttp loop read at once.",
        "",
        "| triggers | N | client CPU per poll ms | server CPU per poll ms | memory per trigger KiB | polls made / intended "
        "| client CPU use (cores) | open sockets | ramp s | after the flip: median / last event s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in triggerer["runs"]:
        if "error" in run:
            lines.append(f"| {SIDE_NAMES.get(run['side'], run['side'])} | {run['n']:,} | failed: {run['error']} |")
            continue
        completion = run["completion"]
        ended = f"{completion['p50_s']:.1f} / {completion['last_s']:.1f}"
        if completion["events"] < run["n"] or set(completion["statuses"]) - {"success"}:
            ended += f" ({status_text(completion['statuses'])})"
        ramp = f"{run['ramp_seconds']:.1f}" if run["ramp_seconds"] is not None else f"> cap ({run['polled_once']:,} polled)"
        lines.append(
            f"| {SIDE_NAMES.get(run['side'], run['side'])} | {run['n']:,} | "
            f"{run['client_cpu_per_poll_ms_window']:.3f} [{spread(run['client_cpu_per_poll_ms'], 3)}] | "
            f"{run['server_cpu_per_poll_ms_window']:.3f} | {spread(run['memory_per_trigger_kib'], 1)} | "
            f"{run['polls']:,} / {run['polls_intended']:,} ({run['polls'] / run['polls_intended']:.0%}) | "
            f"{spread(run['client_cpu_utilisation'], 2)} | {sockets(run)} | {ramp} | {ended} |"
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


def findings_block() -> str:
    if TARGET.exists():
        text = TARGET.read_text()
        if FINDINGS_START in text and FINDINGS_END in text:
            return text[text.index(FINDINGS_START) : text.index(FINDINGS_END) + len(FINDINGS_END)]
    return f"{FINDINGS_START}\n(No findings written yet.)\n{FINDINGS_END}"


def render() -> str:
    machine, imports, triggerer = load("machine"), load("imports"), with_floor(load("triggerer"), load("floor"))
    hooks, requests = load("hooks"), load("requests")
    durations = ", ".join(
        f"{name} {data['seconds']:.0f} s"
        for name, data in (
            ("imports", imports),
            ("triggerer", load("triggerer")),
            ("floor", load("floor")),
            ("hooks", hooks),
            ("requests", requests),
        )
        if data
    )
    parts = [
        "# Benchmarks",
        "",
        "How much the provider costs where it runs most: in the DAG processor (importing it), in the triggerer "
        "(thousands of deferred waits) and per waited run (HTTP requests, console output into the task log). "
        "Compared with the dbt Cloud provider, whose operators do the same kind of job.",
        "",
        "Reproduce: `make bench` (it creates `.venv-bench` with apache-airflow 3.3.2, this provider installed "
        "editable and the latest apache-airflow-providers-dbt-cloud, then runs `python -m bench.run`). One part: "
        "`.venv-bench/bin/python -m bench.run --only imports|triggerer|floor|hooks|requests`; raw results go to "
        f"`bench/out/*.json`. Durations of the last run: {durations or 'n/a'}. Benchmarks are not tests: nothing "
        "asserts a time.",
        "",
        "## Machine",
        "",
        *machine_section(machine),
        "",
        "## Against the goals",
        "",
        *summary_section(imports, triggerer),
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
        "A process runs N triggers in one asyncio loop, iterating each trigger's `run()` as the triggerer does "
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
        "## 3. Requests per run",
        "",
        *requests_section(requests),
        "",
    ]
    return "\n".join(parts)


def write(path: Path = TARGET) -> Path:
    path.write_text(render())
    return path


if __name__ == "__main__":
    print(write())
