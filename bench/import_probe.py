"""One measurement: the cost of importing a provider's classes in this fresh interpreter.

Run as ``python bench/import_probe.py <target> [<module>,...]``. ``airflow.sdk`` (and the
listed modules) are imported first, as a DAG file parse would have them already; then the
wall time and the RSS growth (current and peak, from /proc) of importing the target's
classes are measured. Prints one JSON line.
"""

from __future__ import annotations

import importlib
import json
import sys
import time

TARGETS: dict[str, list[tuple[str, list[str]]]] = {
    # Nothing: what the measurement itself costs.
    "nothing": [],
    "opsera": [
        (
            "airflow_provider_opsera.operators",
            [
                "OpseraRunPipelineOperator",
                "OpseraStopPipelineOperator",
                "OpseraResetPipelineOperator",
                "OpseraUpdateToolOperator",
                "OpseraCreateProjectOperator",
                "OpseraCreatePersonOperator",
                "OpseraCreateOrgHierarchyOperator",
                "OpseraCreateMappingOperator",
            ],
        ),
        ("airflow_provider_opsera.sensors", ["OpseraPipelineRunSensor", "OpseraTaskSensor"]),
    ],
    "dbt_cloud": [
        (
            "airflow.providers.dbt.cloud.operators.dbt",
            ["DbtCloudRunJobOperator", "DbtCloudGetJobRunArtifactOperator", "DbtCloudListJobsOperator"],
        ),
        ("airflow.providers.dbt.cloud.sensors.dbt", ["DbtCloudJobRunSensor"]),
        ("airflow.providers.dbt.cloud.hooks.dbt", ["DbtCloudHook"]),
    ],
}


def _rss() -> tuple[int, int]:
    rss = hwm = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    return rss, hwm


def main() -> None:
    target = sys.argv[1]
    import airflow.sdk  # noqa: F401  (already there when a DAG file is parsed)

    for module_name in filter(None, (sys.argv[2] if len(sys.argv) > 2 else "").split(",")):
        importlib.import_module(module_name)

    print("PROBE-START", file=sys.stderr, flush=True)  # -X importtime lines after this are the target's
    modules_before = set(sys.modules)
    rss0, hwm0 = _rss()
    start = time.perf_counter()
    for module_name, names in TARGETS[target]:
        module = importlib.import_module(module_name)
        for name in names:
            getattr(module, name)
    elapsed = time.perf_counter() - start
    rss1, hwm1 = _rss()
    print(
        "RESULT "
        + json.dumps(
            {
                "target": target,
                "seconds": elapsed,
                "rss_delta": rss1 - rss0,
                "peak_rss_delta": hwm1 - hwm0,
                "rss_after": rss1,
                "new_modules": len(set(sys.modules) - modules_before),
            }
        )
    )


if __name__ == "__main__":
    main()
