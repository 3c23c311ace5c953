"""End-to-end fixtures: one real Airflow 3 on PostgreSQL and one Opsera emulator for the whole session.

Every test in this folder is marked ``e2e``; run them alone with ``make e2e``. Set
``OPSERA_E2E_KEEP_HOME=1`` to keep the temporary AIRFLOW_HOME (component logs, task logs)
and PostgreSQL's data folder after the run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.stack import EXAMPLE_DAGS, Stack, StackError

E2E_DIR = Path(__file__).resolve().parent
_STACK: dict[str, Stack] = {}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    stack = _STACK.get("stack")
    # On any failure of a test that used the stack, attach the components' logs to its report.
    if report.failed and stack is not None and "airflow" in getattr(item, "fixturenames", ()):
        report.sections.append(("Airflow and emulator logs", stack.logs()))


def _airflow_major() -> int:
    try:
        from importlib.metadata import version

        return int(version("apache-airflow").split(".")[0])
    except Exception:
        return 0


@pytest.fixture(scope="session")
def airflow():
    """The running stack. Skips (with the reason) where the tier cannot run."""
    if os.environ.get("OPSERA_SKIP_E2E") == "1":
        pytest.skip("OPSERA_SKIP_E2E=1")
    if _airflow_major() < 3:
        pytest.skip("the end-to-end tier drives Airflow 3's REST API (v2); this environment has Airflow 2")
    failure = None
    try:
        stack = Stack.start()
    except StackError as error:
        failure = f"could not start Airflow and the emulator: {error}"
    if failure:
        pytest.fail(failure, pytrace=False)
    _STACK["stack"] = stack
    try:
        yield stack
    finally:
        _STACK.pop("stack", None)
        stack.stop()


def example_dag(stack: Stack, file_name: str, dag_id: str) -> str:
    """The DAG id, once its example file exists and is parsed; skip while the file is not written."""
    if not (EXAMPLE_DAGS / file_name).exists():
        pytest.skip(f"example_dags/{file_name} does not exist")
    stack.sync_dags()
    stack.wait_for_dag(dag_id)
    return dag_id
