"""Import cost: the provider's operators and sensors against the dbt Cloud provider's.

Each measurement is a fresh interpreter (``bench/import_probe.py``) that has already
imported ``airflow.sdk``; the targets are measured in turns (nothing, opsera,
dbt_cloud, nothing, ...) so a slow moment of the machine hits them alike. A first
round, not counted, warms the file cache.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

from bench.common import ROOT, say, summary

PROBE = str(ROOT / "bench" / "import_probe.py")
TARGETS = ("nothing", "opsera", "dbt_cloud")
#: also measured with this already imported: both providers' operators import it for their triggers
TRIGGER_BASE = "airflow.triggers.base"


def probe(target: str, preload: str = "", *, importtime: bool = False) -> tuple[dict, str]:
    args = [sys.executable] + (["-X", "importtime"] if importtime else []) + [PROBE, target, preload]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True)
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[7:]), done.stderr


def measure(runs: int, preload: str = "") -> dict:
    for target in TARGETS:
        probe(target, preload)  # warm-up, not counted
    raw: dict[str, list[dict]] = {t: [] for t in TARGETS}
    for _ in range(runs):
        for target in TARGETS:
            raw[target].append(probe(target, preload)[0])
    out = {}
    for target, results in raw.items():
        out[target] = {
            "ms": summary([r["seconds"] * 1000 for r in results]),
            "rss_mib": summary([r["rss_delta"] / 2**20 for r in results]),
            "peak_rss_mib": summary([r["peak_rss_delta"] / 2**20 for r in results]),
            "new_modules": summary([r["new_modules"] for r in results]),
        }
    return out


def heaviest_modules(limit: int = 8) -> list[dict]:
    """The provider's import, module by module (``-X importtime``, self time), heaviest first."""
    _, stderr = probe("opsera", importtime=True)
    rows = []
    for line in stderr.partition("PROBE-START")[2].splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            rows.append(
                {
                    "module": match.group(4),
                    "self_ms": int(match.group(1)) / 1000,
                    "cumulative_ms": int(match.group(2)) / 1000,
                }
            )
    rows.sort(key=lambda r: r["self_ms"], reverse=True)
    return rows[:limit]


def main(runs: int = 15) -> dict:
    # An installed wheel has its bytecode compiled; an editable install under
    # PYTHONDONTWRITEBYTECODE would compile the provider's sources on every import.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "airflow_provider_opsera")], check=True)
    result = {
        "runs": runs,
        "after_sdk": measure(runs),
        "after_sdk_and_trigger_base": measure(max(5, runs // 2), TRIGGER_BASE),
        "heaviest_modules": heaviest_modules(),
    }
    for name in ("after_sdk", "after_sdk_and_trigger_base"):
        data = result[name]
        say(
            f"  {name}: opsera {data['opsera']['ms']['median']:.1f} ms {data['opsera']['rss_mib']['median']:.2f} MiB; "
            f"dbt {data['dbt_cloud']['ms']['median']:.1f} ms {data['dbt_cloud']['rss_mib']['median']:.2f} MiB; "
            f"nothing {data['nothing']['ms']['median']:.3f} ms {data['nothing']['rss_mib']['median']:.2f} MiB"
        )
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))
