"""The chaos soak, three minutes of it, so that it never rots: zero invariant violations.

``make test`` runs this folder on its own after the other tiers (it starts its own PostgreSQL,
Airflow and emulator, and they are all the machine runs meanwhile); ``make soak`` runs the long one.
"""

from __future__ import annotations

import os
from importlib.metadata import version

import pytest

SHORT_MINUTES = float(os.environ.get("SOAK_TEST_MINUTES", "3"))


@pytest.mark.skipif(int(version("apache-airflow").split(".")[0]) < 3, reason="the soak drives Airflow 3's REST API")
@pytest.mark.skipif(os.environ.get("OPSERA_SKIP_E2E") == "1", reason="OPSERA_SKIP_E2E=1")
def test_a_short_soak_breaks_no_invariant(tmp_path):
    from soak.run import run_soak

    seed = int(os.environ.get("SOAK_SEED", "1"))
    counts = run_soak(SHORT_MINUTES, seed, tmp_path, log=lambda line: None)["counts"]
    assert counts["invariant violations"] == 0, (tmp_path / "report.md").read_text()
    # the soak did soak (at a pace a busy 2-core machine keeps): runs went through while components were struck
    minutes = SHORT_MINUTES
    # (five pipelines are held at a time, and a case whose try dies with the scheduler waits out Airflow's
    # heartbeat timeout: 5 or 6 DAG runs in three minutes is this machine's pace)
    assert counts["DAG runs (cases)"] >= minutes, counts
    assert counts["pipeline runs started by Airflow"] >= minutes, counts
    assert sum(n for name, n in counts.items() if name.startswith("chaos: ")) >= minutes, counts
    assert counts["faults injected"] > 0 and counts["asset events"] > 0, counts
    # people ran the pipelines they share with the DAG runs (their runs are many: a few a minute per pipeline)
    assert counts["pipeline runs started by people"] >= minutes, counts
    assert (tmp_path / "soak.svg").read_text().startswith("<svg")
